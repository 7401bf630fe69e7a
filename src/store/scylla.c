/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scylla.c - the ScyllaDB / Apache Cassandra backend, through src/cql:
 * dispatch (options, sessions per loop, the operation array, open, close).
 * scylla_internal.h lists the backend's other files and its rules.
 *
 * Threading: none of its own on the request path. An operation runs on the
 * loop it was called from (a server worker's), on that loop's CQL session,
 * created with the loop's first operation, as it was designed (cql.h): one
 * session per loop, nothing locked. The operation is straight-line code in a
 * coroutine (coro.h) that yields at each request; the request's callback
 * resumes it. So operations in flight are bounded only by
 * SCYLLA_MAX_IN_FLIGHT (past it: MS_ERR_UNAVAILABLE, 503 with Retry-After),
 * no request costs a thread hop, and the loops' sessions run with the loops.
 *
 * Threads remain for what has no loop: the *_sync calls (a private loop,
 * started with the first one), the counter repair (a blocking session), and,
 * when the cluster could not be reached at open, the bootstrap that waits
 * for it and migrates.
 */
#include "scylla_internal.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/metrics.h"

#if !defined(MSGSTORE_HAVE_CQL_SESSION)

int store__scylla_open(store *s, const store_config *cfg, const store_options *opt,
                       store_backend **out, char *err, size_t errlen)
{
    (void)s;
    (void)cfg;
    (void)opt;
    *out = NULL;
    snprintf(err, errlen,
             "this msgstore was built without the CQL client: ScyllaDB/Cassandra "
             "(SCYLLA_ENABLED=true) is not available");
    return MS_ERR_UNAVAILABLE;
}

int store__scylla_migrate(const store_config *cfg, store_migrate_progress_fn progress, void *ctx,
                          int *applied, char *err, size_t errlen)
{
    (void)cfg;
    (void)progress;
    (void)ctx;
    if (applied)
        *applied = 0;
    snprintf(err, errlen,
             "this msgstore was built without the CQL client: ScyllaDB/Cassandra "
             "migrations are not available");
    return MS_ERR_UNAVAILABLE;
}

#else

/* ------------------------------------------------------------------ options */

void store_cql_options(const store_config *c, cql_options *o)
{
    cql_options_init(o);
    o->contact_points = c->scylla_contact_points;
    o->port = c->scylla_port;
    o->keyspace = c->scylla_keyspace[0] ? c->scylla_keyspace : NULL;
    o->username = c->scylla_username[0] ? c->scylla_username : NULL;
    o->password = c->scylla_password[0] ? c->scylla_password : NULL;
    o->local_dc = c->scylla_local_datacenter[0] ? c->scylla_local_datacenter : NULL;
    o->allow_remote_dc = c->scylla_allow_remote_dc;
    o->connect_timeout_ms = c->scylla_connect_timeout_ms;
    o->request_timeout_ms = c->scylla_request_timeout_ms;
    o->pool_size = c->scylla_pool_size;
    o->prepared_cache_size = c->scylla_prepared_cache_size;
    o->retry.base_ms = c->scylla_retry_base_delay_ms;
    o->retry.cap_ms = c->scylla_retry_max_delay_ms;
    o->retry.max_attempts = c->scylla_retry_max_attempts > 0 ? c->scylla_retry_max_attempts - 1 : 0;
    o->breaker_threshold = c->scylla_breaker_failure_threshold;
    o->breaker_reset_ms = c->scylla_breaker_reset_timeout_ms;
    o->speculative_delay_ms = c->scylla_speculative_delay_ms;
    o->speculative_max = c->scylla_speculative_max;
    bool constant = strcmp(c->scylla_reconnect_policy, "constant") == 0;
    o->reconnect = (cql_backoff){
        constant ? CQL_BACKOFF_CONSTANT : CQL_BACKOFF_EXPONENTIAL,
        constant ? CQL_JITTER_NONE : CQL_JITTER_EQUAL, c->scylla_reconnect_base_delay_ms,
        c->scylla_reconnect_max_delay_ms, c->scylla_reconnect_max_attempts};
    o->compression = c->scylla_compression;
    o->default_consistency = (int)c->scylla_default_consistency;
    o->default_serial_consistency = (int)c->scylla_serial_consistency;
    o->tls.enabled = c->scylla_ssl_enabled;
    o->tls.ca_file = c->scylla_ssl_ca_certs[0] ? c->scylla_ssl_ca_certs : NULL;
    o->tls.cert_file = c->scylla_ssl_certfile[0] ? c->scylla_ssl_certfile : NULL;
    o->tls.key_file = c->scylla_ssl_keyfile[0] ? c->scylla_ssl_keyfile : NULL;
    o->tls.verify_hostname = c->scylla_ssl_verify_hostname;
}

void sc_options(cql_options *o, const store_config *cfg, bool keyspace)
{
    store_cql_options(cfg, o);
    o->keyspace = keyspace ? cfg->scylla_keyspace : NULL;
    o->default_page_size = 0;
    o->wait_schema_agreement = true;
    o->name = "store";
}

char *sc_qualify(const char *cql, const char *ks)
{
    size_t n = 0, kl = strlen(ks);
    for (const char *p = cql; *p; p++)
        n += (p[0] == '@' && p[1] == '.') ? kl : 1;
    char *out = malloc(n + 1), *w = out;
    if (!out)
        return NULL;
    for (const char *p = cql; *p; p++) {
        if (p[0] == '@' && p[1] == '.') {
            memcpy(w, ks, kl);
            w += kl;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
    return out;
}

bool sc_valid_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

int64_t sc_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * On a session's loop (its thread): tells the other sessions that a host is
 * back. The loops' sessions are poked (each reconnects on its own thread);
 * the repair's blocking session catches up at its next turn.
 */
static void sc_host_event(cql_session *s, cql_host_event ev, const cql_host_info *h, void *ud)
{
    (void)s;
    (void)h;
    sc_backend *b = ud;
    if (ev != CQL_HOST_UP)
        return;
    atomic_fetch_add(&b->hosts_up, 1);
    pthread_mutex_lock(&b->loops_mu);
    for (sc_loop *lp = b->loops; lp; lp = lp->next)
        if (lp->sess != s)
            uv_async_send(&lp->poke);
    pthread_mutex_unlock(&b->loops_mu);
}

/*
 * When another session saw a host come back, this one reconnects to its down
 * hosts now instead of waiting out its own backoff: after an outage every
 * worker serves again within a handshake of the first one, not up to the
 * backoff cap (30 s) later while the service already reports itself ready.
 */
void sc_catch_up(sc_conn *c)
{
    unsigned up = atomic_load(&c->b->hosts_up);
    if (up == c->up_seen)
        return;
    c->up_seen = up;
    cql_session_reconnect_now(cql_sync_session(c->db));
}

/* ------------------------------------------------------------------ operations */

/* The operations, from the store's table (store.h): sc_op_<label> each. */
#define SC_OP(KIND, label, ...) [STORE_OP_##KIND] = sc_op_##label,
static int (*const sc_ops[STORE_OP_COUNT])(sc_conn *c, store_op *op) = {STORE_OPS(SC_OP)};
#undef SC_OP

/* Search is answered by a search provider (src/search/) when one is attached. */
int sc_op_search(sc_conn *c, store_op *op)
{
    (void)c;
    return store__op_fail(op, MS_ERR_UNPROCESSABLE,
                          "search needs a search index: this ScyllaDB store has none attached");
}

int sc_op_health(sc_conn *c, store_op *op)
{
    sc_health(c, op);
    return op->status;
}

/* ------------------------------------------------------------------ tasks */

/*
 * Each operation runs in a coroutine (coro.h) on the loop it was called
 * from: straight-line code whose requests yield until their callbacks. The
 * stack must hold an operation, the client's encoding of a request (LZ4,
 * TLS) and logging; sanitizers need more.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SC_STACK (1024 * 1024)
#else
#define SC_STACK (256 * 1024)
#endif
/*
 * Finished tasks kept per loop for the next operations: at least
 * SC_IDLE_MIN, and as many as the most operations in flight at once over
 * the last two windows of SC_IDLE_WINDOW operations, so a steady load never
 * maps, faults in and unmaps a stack per operation (with a fixed 64 at 256
 * connections on two loops, that was 10% of the CPU of a latest page). When
 * the load falls, finishing operations free the surplus, two at a time.
 */
#define SC_IDLE_MIN    64
#define SC_IDLE_WINDOW 4096

static void task_main(void *arg)
{
    sc_task *t = arg;
    t->c.queries = 0;
    (void)sc_ops[t->op->kind](&t->c, t->op);
}

static void task_free(sc_task *t)
{
    cql_values_free(&t->c.v);
    for (size_t k = 0; k < sizeof t->c.bv / sizeof t->c.bv[0]; k++)
        cql_values_free(&t->c.bv[k]);
    ms_coro_free(t->co);
    free(t);
}

static sc_task *task_get(sc_loop *lp)
{
    sc_task *t = lp->idle;
    if (t) {
        lp->idle = t->next;
        lp->nidle--;
        t->next = NULL;
        return t;
    }
    t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->co = ms_coro_new(SC_STACK);
    if (!t->co) {
        free(t);
        return NULL;
    }
    t->c.b = lp->b;
    t->c.lp = lp;
    t->c.task = t;
    t->c.ps = lp->ps;
    cql_values_init(&t->c.v);
    for (size_t k = 0; k < sizeof t->c.bv / sizeof t->c.bv[0]; k++)
        cql_values_init(&t->c.bv[k]);
    return t;
}

static void loop_maybe_free(sc_loop *lp);

/* t's operation returned: answers it and keeps t for the next one. */
static void task_finish(sc_task *t, bool here)
{
    sc_loop *lp = t->c.lp;
    sc_backend *b = lp->b;
    store_op *op = t->op;
    t->op = NULL;
    op->queries = t->c.queries;
    lp->inflight--;
    atomic_fetch_sub(&b->inflight, 1);
    ms_gauge_add(b->m_inflight, -1);
    if (++lp->window_ops >= SC_IDLE_WINDOW) {
        lp->peak_prev = lp->peak;
        lp->peak = lp->inflight;
        lp->window_ops = 0;
    }
    size_t keep = lp->peak > lp->peak_prev ? lp->peak : lp->peak_prev;
    if (keep < SC_IDLE_MIN)
        keep = SC_IDLE_MIN;
    if (lp->nidle < keep && !lp->detached) {
        t->next = lp->idle;
        lp->idle = t;
        lp->nidle++;
    } else {
        task_free(t);
    }
    for (int k = 0; k < 2 && lp->nidle > keep; k++) {
        sc_task *surplus = lp->idle;
        lp->idle = surplus->next;
        lp->nidle--;
        task_free(surplus);
    }
    if (here)
        store__op_done_here(op);
    else
        store__op_done(op);
    loop_maybe_free(lp);
}

/* Runs t until its next wait; answers its operation when it returned. */
static void task_run(sc_task *t)
{
    if (ms_coro_resume(t->co))
        task_finish(t, true); /* an idle callback: no store call under way */
}

/*
 * The turn's message-count groups are complete (every insert whose batch
 * answered in this turn has joined): each leader sends its group's update.
 */
static void count_flush(sc_loop *lp)
{
    sc_task *t = lp->count_open;
    if (!t)
        return;
    lp->count_open = lp->count_open_tail = NULL;
    memset(lp->count_slots, 0, sizeof lp->count_slots);
    while (t) {
        sc_task *next = t->cnt.next;
        t->cnt.next = NULL;
        t->ready = true;
        task_run(t);
        t = next;
    }
}

/*
 * A request's callback must not run the operation on: the client frees the
 * result it lent once the callback returns, and the operation may already
 * have freed it. So the task is queued and resumed by the loop's idle
 * handle, right after the callbacks of this turn (the loop does not block
 * while a task is ready). Once they ran, the turn ends for the message
 * counts: the inserts that joined a count group meanwhile are counted.
 */
static void on_resume(uv_idle_t *h)
{
    sc_loop *lp = h->data;
    sc_task *t = lp->ready;
    lp->ready = lp->ready_tail = NULL;
    uv_idle_stop(&lp->resume);
    while (t) {
        sc_task *next = t->next;
        t->next = NULL;
        task_run(t);
        t = next;
    }
    count_flush(lp);
}

/* Waits (yields) until t is resumed by what it waits for. */
static void task_wait(sc_task *t)
{
    t->ready = false;
    while (!t->ready)
        ms_coro_yield(t->co);
}

uint32_t sc_count_join(sc_conn *c, ms_xid ch, int32_t bucket)
{
    sc_loop *lp = c->lp;
    sc_task *t = c->task;
    uint64_t key = (sc_xid_key(ch) ^ ((uint64_t)(uint32_t)bucket << 32)) * 0x9E3779B97F4A7C15ULL;
    sc_task **slot = &lp->count_slots[key >> 56];
    for (sc_task *l = *slot; l; l = l->cnt.hnext) {
        if (l->cnt.bucket == bucket && ms_xid_eq(l->cnt.ch, ch)) {
            t->cnt.next = l->cnt.followers;
            l->cnt.followers = t;
            l->cnt.n++;
            task_wait(t); /* sc_count_done of the leader */
            return 0;
        }
    }
    t->cnt.ch = ch;
    t->cnt.bucket = bucket;
    t->cnt.n = 1;
    t->cnt.followers = NULL;
    t->cnt.next = NULL;
    t->cnt.hnext = *slot;
    *slot = t;
    if (lp->count_open_tail)
        lp->count_open_tail->cnt.next = t;
    else
        lp->count_open = t;
    lp->count_open_tail = t;
    uv_idle_start(&lp->resume, on_resume); /* the turn ends in on_resume */
    task_wait(t);                          /* count_flush */
    return t->cnt.n;
}

void sc_count_done(sc_conn *c)
{
    sc_task *f = c->task->cnt.followers;
    c->task->cnt.followers = NULL;
    while (f) {
        sc_task *next = f->cnt.next;
        f->cnt.next = NULL;
        f->ready = true;
        sc_task_resume(f);
        f = next;
    }
}

void sc_task_resume(sc_task *t)
{
    sc_loop *lp = t->c.lp;
    t->next = NULL;
    if (lp->ready_tail)
        lp->ready_tail->next = t;
    else
        lp->ready = t;
    lp->ready_tail = t;
    uv_idle_start(&lp->resume, on_resume);
}

/* ------------------------------------------------------------------ loops */

static void on_handle_closed(uv_handle_t *h)
{
    sc_loop *lp = h->data;
    if (--lp->handles == 0)
        free(lp);
}

void sc_loop_session_name(const sc_loop *lp, char *out, size_t n)
{
    snprintf(out, n, "store-%u", lp->idx);
}

void sc_host_totals(sc_backend *b, const char *address, int port, cql_host_totals *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&b->loops_mu);
    for (sc_loop *lp = b->loops; lp; lp = lp->next) {
        char name[32];
        cql_host_totals t;
        sc_loop_session_name(lp, name, sizeof name);
        cql_host_totals_get(name, address, port, &t);
        out->sessions_up += t.sessions_up;
        out->in_flight += t.in_flight;
    }
    pthread_mutex_unlock(&b->loops_mu);
}

/* The loop's session reconnects to its down hosts now when another session saw one come back. */
static void loop_catch_up(sc_loop *lp)
{
    unsigned up = atomic_load(&lp->b->hosts_up);
    if (up == lp->up_seen || !lp->sess || lp->failed || lp->detached)
        return;
    lp->up_seen = up;
    cql_session_reconnect_now(lp->sess);
}

static void on_poke(uv_async_t *h)
{
    loop_catch_up(h->data);
}

static sc_loop *loop_new(sc_backend *b, uv_loop_t *loop)
{
    sc_loop *lp = calloc(1, sizeof *lp);
    if (!lp)
        return NULL;
    lp->b = b;
    lp->loop = loop;
    lp->sess_closed = true;
    if (uv_idle_init(loop, &lp->resume) != 0) {
        free(lp);
        return NULL;
    }
    if (uv_async_init(loop, &lp->poke, on_poke) != 0) {
        lp->handles = 1;
        lp->resume.data = lp;
        uv_close((uv_handle_t *)&lp->resume, on_handle_closed); /* frees lp */
        return NULL;
    }
    uv_timer_init(loop, &lp->drain); /* cannot fail */
    lp->handles = 3;
    lp->resume.data = lp;
    lp->poke.data = lp;
    lp->drain.data = lp;
    pthread_mutex_lock(&b->loops_mu);
    lp->idx = b->loops_made++;
    lp->next = b->loops;
    if (b->loops)
        b->loops->prev = lp;
    b->loops = lp;
    pthread_mutex_unlock(&b->loops_mu);
    return lp;
}

static void release_ps(cql_prepared **ps)
{
    for (int k = 0; k < SC_NSTMT; k++) {
        cql_prepared_release(ps[k]);
        ps[k] = NULL;
    }
}

/* Frees a detached loop's state once its session closed and its operations ended. */
static void loop_maybe_free(sc_loop *lp)
{
    if (!lp->detached || !lp->sess_closed || lp->inflight > 0 || lp->freeing)
        return;
    lp->freeing = true;
    sc_backend *b = lp->b;
    while (lp->idle) {
        sc_task *t = lp->idle;
        lp->idle = t->next;
        task_free(t);
    }
    release_ps(lp->ps);
    pthread_mutex_lock(&b->loops_mu);
    if (lp->prev)
        lp->prev->next = lp->next;
    else
        b->loops = lp->next;
    if (lp->next)
        lp->next->prev = lp->prev;
    pthread_mutex_unlock(&b->loops_mu);
    uv_close((uv_handle_t *)&lp->resume, on_handle_closed);
    uv_close((uv_handle_t *)&lp->poke, on_handle_closed);
    uv_close((uv_handle_t *)&lp->drain, on_handle_closed);
}

static void on_loop_session_closed(void *ud)
{
    sc_loop *lp = ud;
    lp->sess = NULL;
    lp->sess_closed = true;
    lp->sess_closing = false;
    loop_maybe_free(lp);
}

/*
 * The loop goes away: its session closes, requests in flight get until the
 * close deadline (then MS_ERR_SHUTDOWN), and the state is freed once every
 * operation answered.
 */
static void loop_close_session(sc_loop *lp, int64_t deadline_ms)
{
    if (lp->sess && !lp->sess_closed && !lp->sess_closing) {
        lp->sess_closing = true;
        cql_session_close(lp->sess, deadline_ms, on_loop_session_closed, lp);
    }
}

static void loop_detach(sc_loop *lp)
{
    lp->detached = true;
    uv_timer_stop(&lp->drain);
    loop_close_session(lp, lp->b->close_ms);
    loop_maybe_free(lp);
}

/* The drain deadline passed: what still waits for the cluster fails now (MS_ERR_SHUTDOWN). */
static void on_drain(uv_timer_t *t)
{
    sc_loop *lp = t->data;
    lp->drained = true;
    loop_close_session(lp, 0);
}

/*
 * Shutdown began on a loop: its operations get deadline_ms, and so do the
 * *_sync calls on the private loop (the server's health checks), which would
 * otherwise keep shutdown waiting for a hung node as long as a request may.
 */
static void sc_drain(store_backend *base, uv_loop_t *loop, void *data, int64_t deadline_ms)
{
    sc_backend *b = (sc_backend *)base;
    (void)loop;
    sc_loop *lp = data;
    if (!lp->detached)
        uv_timer_start(&lp->drain, on_drain, (uint64_t)(deadline_ms > 0 ? deadline_ms : 0), 0);
    pthread_mutex_lock(&b->stop_mu);
    if (!atomic_load(&b->sync_drain)) {
        b->sync_drain_ms = deadline_ms;
        atomic_store(&b->sync_drain, true);
        if (b->sthread_started)
            uv_async_send(&b->sasync);
    }
    pthread_mutex_unlock(&b->stop_mu);
}

static void on_connected(cql_session *s, const cql_status *st, void *ud)
{
    sc_loop *lp = ud;
    if (s != lp->sess || st->code == 0 || lp->detached)
        return;
    lp->failed = true;
    lp->retry_at = sc_mono_ms() + 1000;
    snprintf(lp->error, sizeof lp->error, "%s", st->message);
    MS_WARN("store", "scylla: cannot connect to %s: %s (trying again on the next operation)",
            lp->b->cfg->scylla_contact_points, st->message);
}

static void on_failed_session_closed(void *ud)
{
    (void)ud;
}

/*
 * The loop's session: created on the loop's first operation, connected in
 * the background (requests wait for it). A session that could not connect
 * at all is replaced at the next operation a second later; meanwhile
 * operations fail fast with MS_ERR_UNAVAILABLE.
 */
static int loop_session(sc_loop *lp, char *err, size_t errlen)
{
    sc_backend *b = lp->b;
    if (lp->sess && !lp->failed)
        return 0;
    if (lp->failed) {
        if (sc_mono_ms() < lp->retry_at || lp->inflight > 0) {
            snprintf(err, errlen, "cannot reach the cluster: %.*s",
                     (int)(errlen > 40 ? errlen - 40 : 0), lp->error);
            return MS_ERR_UNAVAILABLE;
        }
        cql_session *old = lp->sess;
        lp->sess = NULL;
        lp->failed = false;
        lp->sess_closed = true;
        release_ps(lp->ps);
        cql_session_close(old, 0, on_failed_session_closed, NULL);
    }
    cql_options o;
    sc_options(&o, b->cfg, false);
    o.on_host_event = sc_host_event;
    o.on_host_event_ud = b;
    /* a name per loop: the client's metrics (breaker state, host up, in flight) are
     * labelled by session, and the loops must not overwrite each other's */
    char name[32];
    sc_loop_session_name(lp, name, sizeof name);
    o.name = name;
    char e[160] = "";
    int rc = cql_session_new(lp->loop, &o, &lp->sess, e, sizeof e);
    if (rc) {
        lp->sess = NULL;
        snprintf(err, errlen, "cannot create a CQL session: %s", e[0] ? e : ms_err_str(rc));
        return rc;
    }
    lp->sess_closed = false;
    lp->up_seen = atomic_load(&b->hosts_up);
    rc = cql_session_connect(lp->sess, on_connected, lp);
    if (rc) {
        lp->failed = true;
        lp->retry_at = sc_mono_ms() + 1000;
        snprintf(lp->error, sizeof lp->error, "%s", ms_err_str(rc));
        snprintf(err, errlen, "cannot connect: %s", ms_err_str(rc));
        return MS_ERR_UNAVAILABLE;
    }
    return 0;
}

/* Starts op on lp (lp's thread). Every path ends in store__op_done. */
static void start_op(sc_loop *lp, store_op *op)
{
    sc_backend *b = lp->b;
    char err[STORE_DETAIL_LEN];
    if (lp->detached || lp->drained) {
        store__op_fail(op, MS_ERR_SHUTDOWN, "the store is closing");
        store__op_done(op);
        return;
    }
    /* until the schema is there, only health runs (it reports what is missing) */
    if (!atomic_load(&b->schema_ok) && op->kind != STORE_OP_HEALTH) {
        pthread_mutex_lock(&b->boot_mu);
        store__op_fail(op, MS_ERR_UNAVAILABLE, "the cluster is not ready: %s", b->boot_error);
        pthread_mutex_unlock(&b->boot_mu);
        store__op_done(op);
        return;
    }
    int rc = loop_session(lp, err, sizeof err);
    if (rc) {
        store__op_fail(op, rc, "%s", err);
        store__op_done(op);
        return;
    }
    loop_catch_up(lp);
    if (atomic_fetch_add(&b->inflight, 1) >= b->inflight_max) {
        atomic_fetch_sub(&b->inflight, 1);
        store__op_fail(op, MS_ERR_UNAVAILABLE,
                       "%d store operations in flight (SCYLLA_MAX_IN_FLIGHT); retry",
                       b->inflight_max);
        store__op_done(op);
        return;
    }
    ms_gauge_add(b->m_inflight, 1);
    sc_task *t = task_get(lp);
    if (!t) {
        atomic_fetch_sub(&b->inflight, 1);
        ms_gauge_add(b->m_inflight, -1);
        store__op_fail(op, MS_ERR_NOMEM, "out of memory");
        store__op_done(op);
        return;
    }
    t->op = op;
    if (++lp->inflight > lp->peak)
        lp->peak = lp->inflight;
    if (ms_coro_start(t->co, task_main, t)) /* within the caller's store call */
        task_finish(t, false);
}

/* ------------------------------------------------------------------ the private loop */

/*
 * The *_sync calls (command-line tools, tests) have no loop: they run on a
 * private one, on a thread started with the first of them.
 */
static void on_sync_ops(uv_async_t *h)
{
    sc_backend *b = h->data;
    store_op *list = store__queue_take(&b->sq, INT_MAX, NULL, false);
    while (list) {
        store_op *next = list->next;
        list->next = NULL;
        start_op(b->slp, list);
        list = next;
    }
    if (atomic_load(&b->sync_drain) && !b->sync_drain_started && !b->slp->detached) {
        b->sync_drain_started = true;
        int64_t ms = b->sync_drain_ms;
        uv_timer_start(&b->slp->drain, on_drain, (uint64_t)(ms > 0 ? ms : 0), 0);
    }
    if (atomic_load(&b->stop) && !b->slp->detached) {
        loop_detach(b->slp);
        uv_close((uv_handle_t *)&b->sasync, NULL);
    }
}

static void thread_done(sc_backend *b)
{
    pthread_mutex_lock(&b->stop_mu);
    b->threads_done++;
    pthread_cond_broadcast(&b->stop_cv);
    pthread_mutex_unlock(&b->stop_mu);
}

static void *sync_main(void *arg)
{
    sc_backend *b = arg;
    uv_run(&b->sloop, UV_RUN_DEFAULT);
    uv_loop_close(&b->sloop);
    thread_done(b);
    return NULL;
}

/* Starts the private loop's thread once (stop_mu held). */
static int start_sync_thread(sc_backend *b)
{
    if (b->sthread_started)
        return 0;
    if (uv_loop_init(&b->sloop) != 0)
        return MS_ERR_NOMEM;
    if (uv_async_init(&b->sloop, &b->sasync, on_sync_ops) != 0) {
        uv_loop_close(&b->sloop);
        return MS_ERR_NOMEM;
    }
    b->sasync.data = b;
    b->slp = loop_new(b, &b->sloop);
    if (!b->slp || pthread_create(&b->sthread, NULL, sync_main, b) != 0) {
        if (b->slp) {
            b->slp->detached = true;
            loop_maybe_free(b->slp);
            b->slp = NULL;
        }
        uv_close((uv_handle_t *)&b->sasync, NULL);
        uv_run(&b->sloop, UV_RUN_DEFAULT);
        uv_loop_close(&b->sloop);
        return MS_ERR_INTERNAL;
    }
    b->sthread_started = true;
    return 0;
}

/* ------------------------------------------------------------------ the schema */

/*
 * Migrates (or, with no_migrate, checks the schema version) over a blocking
 * session. *unreachable: the cluster could not be reached at all (the
 * bootstrap thread tries again).
 */
static int schema_check(sc_backend *b, char *err, size_t errlen, bool *unreachable)
{
    const store_config *cfg = b->cfg;
    *unreachable = false;
    if (!b->no_migrate)
        return sc_migrate(cfg, NULL, NULL, NULL, err, errlen, unreachable);
    cql_options o;
    sc_options(&o, cfg, false);
    cql_sync *db = NULL;
    cql_status st;
    if (cql_sync_connect(&o, &db, &st) != 0 || !db) {
        snprintf(err, errlen, "cannot connect to %s: %s", cfg->scylla_contact_points, st.message);
        *unreachable = st.code != MS_ERR_UNAUTHORIZED && st.code != MS_ERR_INVALID;
        return st.code ? st.code : MS_ERR_UNAVAILABLE;
    }
    char q[160];
    snprintf(q, sizeof q, "SELECT version FROM %s.schema_version WHERE scope = 'msgstore' LIMIT 1",
             cfg->scylla_keyspace);
    cql_result *r = NULL;
    int version = 0;
    int rc = cql_sync_query(db, q, &r, &st);
    if (rc == 0 && st.code == 0 && cql_result_next_row(r) == 0) {
        int32_t v = 0;
        cql_row_get_int(r, 0, &v);
        version = v;
    }
    cql_result_destroy(r);
    ms_id_format fmt = MS_ID_INT64;
    char ferr[256] = "";
    int frc = rc == 0 && st.code == 0 ? sc_id_format(db, cfg, &fmt, ferr, sizeof ferr) : 0;
    cql_sync_close(db);
    size_t n = 0;
    const store_migration *m = store_migrations(MS_BACKEND_SCYLLA, &n);
    int want = n ? m[n - 1].version : 0;
    bool failed = rc != 0 || st.code != 0;
    if (failed || version != want) {
        snprintf(err, errlen,
                 "keyspace %s has schema version %d, this binary needs %d%s%s: run `msgstore "
                 "migrate`",
                 cfg->scylla_keyspace, version, want, failed ? ": " : "", failed ? st.message : "");
        return MS_ERR_UNAVAILABLE;
    }
    if (frc) {
        snprintf(err, errlen, "%s", ferr);
        return frc;
    }
    char what[96];
    snprintf(what, sizeof what, "keyspace %s", cfg->scylla_keyspace);
    return store__id_format_check(what, fmt, cfg->id_format, err, errlen);
}

/* Waits up to ms for store_close; true when it began. */
static bool stop_wait(sc_backend *b, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&b->stop_mu);
    while (!atomic_load(&b->stop))
        if (pthread_cond_timedwait(&b->stop_cv, &b->stop_mu, &ts) != 0)
            break;
    pthread_mutex_unlock(&b->stop_mu);
    return atomic_load(&b->stop);
}

/*
 * The cluster could not be reached at open: msgstore serves anyway (ready
 * answers 503) and this thread tries again every 2 s until the schema is
 * there (migrated, or checked with no_migrate), saying so in the log.
 */
static void *boot_main(void *arg)
{
    sc_backend *b = arg;
    int64_t tries = 0;
    while (!stop_wait(b, 2000)) {
        char err[256] = "";
        bool unreachable = false;
        int rc = schema_check(b, err, sizeof err, &unreachable);
        if (rc == 0) {
            atomic_store(&b->schema_ok, true);
            MS_INFO("store", "scylla: the cluster is reachable and the schema is current: serving");
            break;
        }
        pthread_mutex_lock(&b->boot_mu);
        snprintf(b->boot_error, sizeof b->boot_error, "%s", err);
        pthread_mutex_unlock(&b->boot_mu);
        if (++tries % 15 == 1)
            MS_WARN("store", "scylla: %s; %s", err,
                    unreachable ? "waiting for the cluster (migrations run when it answers)"
                                : "trying again");
    }
    thread_done(b);
    return NULL;
}

/* ------------------------------------------------------------------ vtable */

static int sc_submit(store_backend *base, store_op *op)
{
    sc_backend *b = (sc_backend *)base;
    void **slot = store__op_loop_data(op);
    if (!slot) { /* a _sync call: the private loop */
        pthread_mutex_lock(&b->stop_mu);
        int rc = start_sync_thread(b);
        pthread_mutex_unlock(&b->stop_mu);
        if (rc)
            return rc;
        store__queue_push(&b->sq, op);
        uv_async_send(&b->sasync);
        return 0;
    }
    sc_loop *lp = *slot;
    if (!lp) {
        lp = loop_new(b, store__op_loop(op));
        if (!lp)
            return MS_ERR_NOMEM;
        *slot = lp;
    }
    start_op(lp, op);
    return 0;
}

static void sc_detach(store_backend *base, uv_loop_t *loop, void *data)
{
    (void)base;
    (void)loop;
    loop_detach(data);
}

static void conn_close(sc_conn *c)
{
    release_ps(c->own_ps);
    cql_values_free(&c->v);
    for (size_t k = 0; k < sizeof c->bv / sizeof c->bv[0]; k++)
        cql_values_free(&c->bv[k]);
    cql_sync_close(c->db);
    c->db = NULL;
}

static void free_backend(sc_backend *b)
{
    conn_close(&b->rconn);
    if (b->nnotes)
        MS_WARN("store",
                "scylla: %zu counts to repair could not be recorded; they stay as they are",
                b->nnotes);
    free(b->notes);
    store__queue_destroy(&b->sq);
    pthread_mutex_destroy(&b->rmu);
    pthread_mutex_destroy(&b->nmu);
    pthread_cond_destroy(&b->ncv);
    pthread_mutex_destroy(&b->known.mu);
    pthread_mutex_destroy(&b->listed.mu);
    pthread_mutex_destroy(&b->loops_mu);
    pthread_mutex_destroy(&b->boot_mu);
    pthread_mutex_destroy(&b->stop_mu);
    pthread_cond_destroy(&b->stop_cv);
    for (int k = 0; k < SC_NSTMT; k++)
        free(b->sql[k]);
    free(b->known.slots);
    free(b->listed.slots);
    free(b);
}

/*
 * Stops the threads (private loop, bootstrap, repair) and frees the backend,
 * within close_ms (MSGSTORE_SHUTDOWN_TIMEOUT, at most 10 s) plus a second: a
 * hung cluster (a stopped node) cannot hold shutdown longer. A thread still
 * waiting then is left behind with the backend's memory.
 */
static void sc_close(store_backend *base)
{
    sc_backend *b = (sc_backend *)base;
    pthread_mutex_lock(&b->stop_mu);
    atomic_store(&b->stop, true);
    pthread_cond_broadcast(&b->stop_cv);
    bool sync_started = b->sthread_started;
    pthread_mutex_unlock(&b->stop_mu);
    pthread_mutex_lock(&b->nmu);
    b->rstop = true;
    pthread_cond_broadcast(&b->ncv);
    pthread_mutex_unlock(&b->nmu);
    store__queue_close(&b->sq);
    if (sync_started)
        uv_async_send(&b->sasync);
    int want = (sync_started ? 1 : 0) + (b->boot_started ? 1 : 0) + (b->rthread_started ? 1 : 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = b->close_ms + 1000;
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&b->stop_mu);
    while (b->threads_done < want)
        if (pthread_cond_timedwait(&b->stop_cv, &b->stop_mu, &ts) != 0)
            break;
    bool all = b->threads_done >= want;
    pthread_mutex_unlock(&b->stop_mu);
    if (!all) {
        MS_ERROR("store",
                 "scylla: the cluster did not answer within %lld ms of the close: leaving %d "
                 "thread(s) behind",
                 (long long)ms, want - b->threads_done);
        return; /* they still use b */
    }
    if (sync_started)
        pthread_join(b->sthread, NULL);
    if (b->boot_started)
        pthread_join(b->boot_thread, NULL);
    if (b->rthread_started)
        pthread_join(b->rthread, NULL);
    pthread_mutex_lock(&b->loops_mu);
    bool attached = b->loops != NULL;
    pthread_mutex_unlock(&b->loops_mu);
    if (attached) {
        MS_WARN("store", "scylla: store_close with loops still attached; their state is leaked");
        return;
    }
    free_backend(b);
}

static int sc_inject(store_backend *base, store_fault fault, int times)
{
    sc_backend *b = (sc_backend *)base;
    atomic_store(&b->faults[fault], times);
    return 0;
}

static void sc_stats(store_backend *base, store_stats *out)
{
    (void)out;
    (void)base;
}

static const store_backend_vtbl sc_vtbl = {
    .name = "scylla",
    .submit = sc_submit,
    .close = sc_close,
    .stats = sc_stats,
    .repair = sc_repair,
    .detach = sc_detach,
    .drain = sc_drain,
    .inject = sc_inject,
};

static void *repair_thread(void *arg)
{
    sc_backend *b = arg;
    sc_repair_main(b);
    thread_done(b);
    return NULL;
}

int store__scylla_open(store *s, const store_config *cfg, const store_options *opt,
                       store_backend **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!sc_valid_name(cfg->scylla_keyspace, 48)) {
        snprintf(err, errlen, "SCYLLA_KEYSPACE=\"%s\": expected 1 to 48 letters, digits or '_'",
                 cfg->scylla_keyspace);
        return MS_ERR_INVALID;
    }
    sc_backend *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return MS_ERR_NOMEM;
    }
    b->base.vt = &sc_vtbl;
    b->base.s = s;
    b->cfg = cfg;
    b->no_migrate = opt->no_migrate;
    b->close_ms = cfg->shutdown_timeout_ms > 0 && cfg->shutdown_timeout_ms < 10000
                      ? cfg->shutdown_timeout_ms
                      : 10000;
    b->inflight_max = cfg->scylla_max_in_flight > 0 ? cfg->scylla_max_in_flight : 4096;
    store__queue_init(&b->sq);
    pthread_mutex_init(&b->known.mu, NULL);
    pthread_mutex_init(&b->listed.mu, NULL);
    pthread_mutex_init(&b->rmu, NULL);
    pthread_mutex_init(&b->nmu, NULL);
    pthread_cond_init(&b->ncv, NULL);
    pthread_mutex_init(&b->loops_mu, NULL);
    pthread_mutex_init(&b->boot_mu, NULL);
    pthread_mutex_init(&b->stop_mu, NULL);
    pthread_cond_init(&b->stop_cv, NULL);
    b->settle_ms = opt->scylla_repair_settle_ms > 0 ? opt->scylla_repair_settle_ms
                                                    : 2 * cfg->scylla_request_timeout_ms;
    b->interval_ms = opt->scylla_repair_interval_ms ? opt->scylla_repair_interval_ms : 60000;
    /* a pass: two snapshots settle_ms apart, each a few requests, plus the correction */
    b->lease_ttl_s = (int)((2 * b->settle_ms + 12 * cfg->scylla_request_timeout_ms) / 1000) + 1;
    b->m_noted = ms_counter_get("msgstore_store_count_repairs_total", "result=\"recorded\"",
                                "ScyllaDB counts recorded for recounting (a counter update "
                                "failed or timed out), and what the repair found");
    b->m_fixed = ms_counter_get("msgstore_store_count_repairs_total", "result=\"corrected\"", NULL);
    b->m_clean = ms_counter_get("msgstore_store_count_repairs_total", "result=\"exact\"", NULL);
    b->m_dropped = ms_counter_get("msgstore_store_count_repairs_total", "result=\"dropped\"", NULL);
    b->m_count_updates =
        ms_counter_get("msgstore_store_count_updates_total", "backend=\"scylla\"",
                       "ScyllaDB message-count updates sent: one per (channel, bucket) and "
                       "worker loop turn, however many inserts it counts");
    b->m_count_incs =
        ms_counter_get("msgstore_store_count_increments_total", "backend=\"scylla\"",
                       "ScyllaDB messages counted by those updates (increments carried)");
    b->m_inflight = ms_gauge_get("msgstore_store_in_flight", "backend=\"scylla\"",
                                 "ScyllaDB store operations running now (all worker loops)");
    b->rconn.b = b;
    b->rconn.repair = true;
    b->rconn.ps = b->rconn.own_ps;
    cql_values_init(&b->rconn.v);
    for (size_t k = 0; k < sizeof b->rconn.bv / sizeof b->rconn.bv[0]; k++)
        cql_values_init(&b->rconn.bv[k]);
    b->known.slots = calloc(KNOWN_SLOTS, sizeof *b->known.slots);
    b->listed.slots = calloc(KNOWN_SLOTS, sizeof *b->listed.slots);
    int rc = 0;
    if (!b->known.slots || !b->listed.slots) {
        snprintf(err, errlen, "out of memory");
        rc = MS_ERR_NOMEM;
        goto fail;
    }
    for (int k = 0; k < SC_NSTMT; k++) {
        b->sql[k] = sc_qualify(sc_stmt[k].cql, cfg->scylla_keyspace);
        if (!b->sql[k]) {
            snprintf(err, errlen, "out of memory");
            rc = MS_ERR_NOMEM;
            goto fail;
        }
    }
    bool unreachable = false;
    rc = schema_check(b, err, errlen, &unreachable);
    if (rc == 0) {
        atomic_store(&b->schema_ok, true);
    } else if (unreachable) {
        MS_WARN("store",
                "scylla: %s; serving anyway: /health/ready answers 503 until the cluster "
                "answers%s",
                err, b->no_migrate ? "" : " and the migrations ran");
        snprintf(b->boot_error, sizeof b->boot_error, "%s", err);
        if (pthread_create(&b->boot_thread, NULL, boot_main, b) != 0) {
            snprintf(err, errlen, "cannot start the ScyllaDB bootstrap thread");
            rc = MS_ERR_INTERNAL;
            goto fail;
        }
        b->boot_started = true;
        err[0] = '\0';
        rc = 0;
    } else {
        goto fail;
    }
    if (b->interval_ms > 0) {
        if (pthread_create(&b->rthread, NULL, repair_thread, b) != 0) {
            snprintf(err, errlen, "cannot start the ScyllaDB counter repair thread");
            rc = MS_ERR_INTERNAL;
            goto fail;
        }
        b->rthread_started = true;
    }
    *out = &b->base;
    return 0;
fail:
    sc_close(&b->base);
    return rc;
}

#endif /* MSGSTORE_HAVE_CQL_SESSION */
