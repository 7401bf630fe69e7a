/*
 * scylla.c - the ScyllaDB / Apache Cassandra backend, through src/cql:
 * dispatch (options, sessions, threads, the operation array, open and close).
 * scylla_internal.h lists the backend's other files and its rules.
 *
 * Threads: a pool of store_options.scylla_threads workers, each with its own
 * CQL session (cql_sync: a session on a private loop), take operations from
 * one queue and run them as straight-line sequences of prepared statements.
 * So at most scylla_threads operations are in flight; callers' loops never
 * block (answers go back through store__op_done).
 */
#include "scylla_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/metrics.h"

#if !defined(MSGSTORE_HAVE_CQL_SESSION)

int store__scylla_open(store *s, const ms_config *cfg, const store_options *opt,
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

int store__scylla_migrate(const ms_config *cfg, store_migrate_progress_fn progress, void *ctx,
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

void sc_options(cql_options *o, const ms_config *cfg, bool keyspace)
{
    cql_options_init(o);
    cql_options_from_config(o, cfg);
    o->keyspace = keyspace ? cfg->scylla_keyspace : NULL;
    o->default_page_size = 0;
    o->wait_schema_agreement = true;
    o->name = "store";
}

/* The statement text with every "@." replaced by "<keyspace>."; malloc'd, NULL on OOM. */
static char *qualify(const char *cql, const char *ks)
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

/* On a session's loop (its thread): tells the other sessions that a host is back. */
static void sc_host_event(cql_session *s, cql_host_event ev, const cql_host_info *h, void *ud)
{
    (void)s;
    (void)h;
    sc_backend *b = ud;
    if (ev == CQL_HOST_UP)
        atomic_fetch_add(&b->hosts_up, 1);
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
    store__scylla_health(c->db, op, &c->queries);
    return op->status;
}

/* ------------------------------------------------------------------ threads, vtable */

static void *worker_main(void *arg)
{
    sc_conn *c = arg;
    sc_backend *b = c->b;
    for (;;) {
        bool closed = false;
        store_op *op = store__queue_take_for(&b->q, 1, NULL, SC_IDLE_TICK_MS, &closed);
        sc_catch_up(c);
        if (!op) {
            if (closed)
                break;
            cql_sync_run_for(c->db, 0); /* what is ready now: no wait */
            continue;
        }
        c->queries = 0;
        sc_ops[op->kind](c, op);
        op->queries = c->queries;
        store__op_done(op);
    }
    return NULL;
}

static int sc_submit(store_backend *base, store_op *op)
{
    sc_backend *b = (sc_backend *)base;
    store__queue_push(&b->q, op);
    return 0;
}

static void conn_close(sc_conn *c)
{
    for (int k = 0; k < SC_NSTMT; k++)
        cql_prepared_release(c->ps[k]);
    cql_values_free(&c->v);
    for (int k = 0; k < 3; k++)
        cql_values_free(&c->bv[k]);
    cql_sync_close(c->db);
}

static void sc_close(store_backend *base)
{
    sc_backend *b = (sc_backend *)base;
    pthread_mutex_lock(&b->nmu);
    b->rstop = true;
    pthread_cond_broadcast(&b->ncv);
    pthread_mutex_unlock(&b->nmu);
    store__queue_close(&b->q);
    for (int i = 0; i < b->started; i++)
        pthread_join(b->threads[i], NULL);
    if (b->rthread_started)
        pthread_join(b->rthread, NULL);
    for (int i = 0; i < b->nthreads; i++)
        conn_close(&b->conns[i]);
    conn_close(&b->rconn);
    if (b->nnotes)
        MS_WARN("store",
                "scylla: %zu counts to repair could not be recorded; they stay as they are",
                b->nnotes);
    free(b->notes);
    store__queue_destroy(&b->q);
    pthread_mutex_destroy(&b->rmu);
    pthread_mutex_destroy(&b->nmu);
    pthread_cond_destroy(&b->ncv);
    pthread_mutex_destroy(&b->known_mu);
    for (int k = 0; k < SC_NSTMT; k++)
        free(b->sql[k]);
    free(b->known);
    free(b->threads);
    free(b->conns);
    free(b);
}

static int sc_inject(store_backend *base, store_fault fault, int times)
{
    sc_backend *b = (sc_backend *)base;
    atomic_store(&b->faults[fault], times);
    return 0;
}

static const store_backend_vtbl sc_vtbl = {
    .name = "scylla",
    .submit = sc_submit,
    .close = sc_close,
    .stats = NULL,
    .repair = sc_repair,
    .inject = sc_inject,
};

int store__scylla_open(store *s, const ms_config *cfg, const store_options *opt,
                       store_backend **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!sc_valid_name(cfg->scylla_keyspace, 48)) {
        snprintf(err, errlen, "SCYLLA_KEYSPACE=\"%s\": expected 1 to 48 letters, digits or '_'",
                 cfg->scylla_keyspace);
        return MS_ERR_INVALID;
    }
    if (!opt->no_migrate) {
        int rc = store__scylla_migrate(cfg, NULL, NULL, NULL, err, errlen);
        if (rc)
            return rc;
    }
    sc_backend *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return MS_ERR_NOMEM;
    }
    b->base.vt = &sc_vtbl;
    b->base.s = s;
    b->cfg = cfg;
    b->nthreads = opt->scylla_threads;
    store__queue_init(&b->q);
    pthread_mutex_init(&b->known_mu, NULL);
    pthread_mutex_init(&b->rmu, NULL);
    pthread_mutex_init(&b->nmu, NULL);
    pthread_cond_init(&b->ncv, NULL);
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
    b->known = calloc(KNOWN_SLOTS, sizeof *b->known);
    b->threads = calloc((size_t)b->nthreads, sizeof *b->threads);
    b->conns = calloc((size_t)b->nthreads, sizeof *b->conns);
    int rc = 0;
    if (!b->known || !b->threads || !b->conns) {
        snprintf(err, errlen, "out of memory");
        rc = MS_ERR_NOMEM;
        goto fail;
    }
    for (int k = 0; k < SC_NSTMT; k++) {
        b->sql[k] = qualify(sc_stmt[k].cql, cfg->scylla_keyspace);
        if (!b->sql[k]) {
            snprintf(err, errlen, "out of memory");
            rc = MS_ERR_NOMEM;
            goto fail;
        }
    }
    /* Statements name their keyspace (no USE: prepared statements stay unambiguous). */
    cql_options o;
    sc_options(&o, cfg, false);
    o.on_host_event = sc_host_event;
    o.on_host_event_ud = b;
    for (int i = 0; i <= b->nthreads; i++) {
        sc_conn *c = i < b->nthreads ? &b->conns[i] : &b->rconn;
        c->b = b;
        c->repair = c == &b->rconn;
        cql_values_init(&c->v);
        for (int k = 0; k < 3; k++)
            cql_values_init(&c->bv[k]);
        cql_status st;
        if (cql_sync_connect(&o, &c->db, &st) != 0 || !c->db) {
            snprintf(err, errlen, "cannot connect to %s (keyspace %s): %s",
                     cfg->scylla_contact_points, cfg->scylla_keyspace, st.message);
            rc = st.code ? st.code : MS_ERR_UNAVAILABLE;
            goto fail;
        }
    }
    /* the schema must be there */
    {
        sc_conn *c = &b->conns[0];
        store_op probe = {.kind = STORE_OP_PING, .s = s};
        sc_op_ping(c, &probe);
        int version = probe.res ? ((store_ping_result *)probe.res)->schema_version : 0;
        if (probe.res)
            store_free(probe.res);
        size_t n = 0;
        const store_migration *m = store_migrations(MS_BACKEND_SCYLLA, &n);
        int want = n ? m[n - 1].version : 0;
        if (probe.status || version != want) {
            snprintf(err, errlen,
                     "keyspace %s has schema version %d, this binary needs %d%s%s: run `msgstore "
                     "migrate`",
                     cfg->scylla_keyspace, version, want, probe.status ? ": " : "",
                     probe.status ? probe.detail : "");
            rc = MS_ERR_UNAVAILABLE;
            goto fail;
        }
    }
    for (int i = 0; i < b->nthreads; i++) {
        if (pthread_create(&b->threads[i], NULL, worker_main, &b->conns[i]) != 0) {
            snprintf(err, errlen, "cannot start the ScyllaDB worker threads");
            rc = MS_ERR_INTERNAL;
            goto fail;
        }
        b->started++;
    }
    if (b->interval_ms > 0) {
        if (pthread_create(&b->rthread, NULL, sc_repair_main, b) != 0) {
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
