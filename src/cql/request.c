/*
 * request.c - executing statements: plans, attempts, retries, speculative
 * executions, UNPREPARED recovery, deadlines and results.
 */
#include "cql/session.h"

#include "core/error.h"
#include "core/log.h"
#include "cql/retry.h"
#include "cql/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FREE_REQS_MAX 1024

/* A result handed to callbacks: the decoded RESULT plus what keeps its
 * metadata alive. */
typedef struct cql_result_box {
    cql_result res; /* first member: a cql_result * is a box */
    cql_prepared *prep;
    bool kept;
} cql_result_box;

static bool try_next(cql_request *r);
static void complete(cql_request *r, cql_result_box *box);
static void fail_no_host(cql_request *r);

/* ---- allocation -------------------------------------------------------------- */

cql_request *cql__req_alloc(cql_session *s)
{
    cql_request *r = s->free_reqs;
    if (r) {
        s->free_reqs = r->next;
        s->nfree_reqs--;
    } else {
        r = calloc(1, sizeof(*r));
        if (!r)
            return NULL;
        cql_buf_init(&r->frame);
        cql_values_init(&r->vals);
        cql_buf_init(&r->paging_state);
    }
    r->s = s;
    r->next = NULL;
    cql__status_ok(&r->st);
    r->start_us = cql__now_us();
    r->consistency = s->o.default_consistency;
    r->serial_consistency = 0;
    r->timestamp = CQL_NO_TIMESTAMP;
    r->timeout_ms = s->o.request_timeout_ms;
    return r;
}

void cql__req_release(cql_request *r)
{
    cql_session *s = r->s;
    cql_prepared_release(r->prep);
    free(r->query);
    for (size_t i = 0; i < r->nitems; i++) {
        free(r->items[i].query);
        cql_prepared_release(r->items[i].prep);
    }
    free(r->items);
    cql_buf frame = r->frame;
    cql_values vals = r->vals;
    cql_buf ps = r->paging_state;
    cql_buf_reset(&frame);
    cql_values_reset(&vals);
    cql_buf_reset(&ps);
    /* keep big buffers out of the free list */
    if (frame.cap > 65536)
        cql_buf_free(&frame);
    if (vals.buf.cap > 65536)
        cql_values_free(&vals);
    if (s->nfree_reqs >= FREE_REQS_MAX || s->state >= CQL_S_CLOSED) {
        cql_buf_free(&frame);
        cql_values_free(&vals);
        cql_buf_free(&ps);
        free(r);
        return;
    }
    /* field by field rather than a memset of the whole (large) request: the
     * strings only need their first byte, the buffers are kept */
    r->frame = frame;
    r->vals = vals;
    r->paging_state = ps;
    r->kind = 0;
    r->cb = NULL;
    r->pcb = NULL;
    r->ud = NULL;
    r->query = NULL;
    r->query_len = 0;
    r->prep = NULL;
    r->items = NULL;
    r->nitems = 0;
    r->batch_kind = 0;
    r->page_size = 0;
    r->has_paging = false;
    r->tracing = false;
    r->idempotent = false;
    r->speculative = false;
    r->skip_metadata = false;
    r->route_ks[0] = '\0';
    r->route_table[0] = '\0';
    r->ntrep = 0;
    r->has_token = false;
    r->token = 0;
    r->nplan = r->plan_pos = 0;
    r->planned = false;
    for (int i = 0; i < CQL_MAX_ATTEMPTS_ACTIVE; i++) {
        r->att[i].active = false;
        r->att[i].repreparing = false;
        r->att[i].probe = false;
    }
    r->nactive = r->tries = r->retries = r->reprepares = r->nspec = 0;
    r->reprep = NULL;
    r->done = false;
    r->waiting = false;
    r->internal = false;
    r->breaker_refusals = 0;
    r->next = s->free_reqs;
    s->free_reqs = r;
    s->nfree_reqs++;
}

/* ---- results ---------------------------------------------------------------- */

cql_result *cql_result_keep(cql_result *res)
{
    if (res)
        ((cql_result_box *)res)->kept = true;
    return res;
}

void cql_result_destroy(cql_result *res)
{
    if (!res)
        return;
    cql_result_box *b = (cql_result_box *)res;
    cql_result_free(&b->res);
    cql_prepared_release(b->prep);
    free(b);
}

/* ---- encoding ----------------------------------------------------------------- */

/* strlcpy: the hot path copies names without going through printf */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void values_view(const cql_request *r, size_t off, size_t len, uint16_t count,
                        cql_values *out)
{
    cql_values_init(out);
    out->buf.data = r->vals.buf.data ? r->vals.buf.data + off : NULL;
    out->buf.len = len;
    out->buf.cap = len;
    out->count = count;
}

int cql__req_encode(cql_request *r)
{
    cql_session *s = r->s;
    cql_buf_reset(&r->frame);
    cql_query_params p;
    cql__query_params_init(&p);
    p.consistency = (cql_consistency)r->consistency;
    p.values = r->vals.count ? &r->vals : NULL;
    p.page_size = r->page_size > 0 ? r->page_size : 0;
    if (r->has_paging) {
        p.paging_state.ptr = r->paging_state.data ? r->paging_state.data : (const uint8_t *)"";
        p.paging_state.len = (int32_t)r->paging_state.len;
    }
    p.serial_consistency = (uint16_t)r->serial_consistency;
    p.timestamp = r->timestamp;
    uint8_t flags = r->tracing ? CQL_FLAG_TRACING : 0;
    int rc;
    r->has_token = false;
    switch (r->kind) {
    case CQL_REQ_QUERY:
        rc = cql__enc_query(&r->frame, 0, flags, r->query, r->query_len, &p);
        break;
    case CQL_REQ_EXECUTE: {
        cql_prepared *pr = r->prep;
        p.skip_metadata = pr->skip_metadata && pr->result != NULL;
        r->skip_metadata = p.skip_metadata;
        rc = cql__enc_execute(&r->frame, 0, flags, pr->id, pr->id_len, &p);
        copy_str(r->route_ks, sizeof(r->route_ks), pr->route_ks);
        copy_str(r->route_table, sizeof(r->route_table), pr->route_table);
        if (s->o.token_aware && pr->bind && pr->bind->pk_count > 0 && r->vals.count) {
            cql_buf_reset(&s->scratch);
            if (cql__token_of_values(&r->vals, pr->bind->pk_indexes, pr->bind->pk_count,
                                     &s->scratch, &r->token) == 0)
                r->has_token = true;
        }
        break;
    }
    case CQL_REQ_BATCH: {
        cql_batch_entry *e = calloc(r->nitems, sizeof(*e));
        cql_values *v = calloc(r->nitems, sizeof(*v));
        if (!e || !v) {
            free(e);
            free(v);
            return MS_ERR_NOMEM;
        }
        for (size_t i = 0; i < r->nitems; i++) {
            cql_batch_item *it = &r->items[i];
            if (it->prep) {
                e[i].id = it->prep->id;
                e[i].id_len = it->prep->id_len;
            } else {
                e[i].query = it->query;
                e[i].query_len = it->query_len;
            }
            if (it->vcount) {
                values_view(r, it->voff, it->vlen, it->vcount, &v[i]);
                e[i].values = &v[i];
                if (!r->has_token && s->o.token_aware && it->prep && it->prep->bind &&
                    it->prep->bind->pk_count > 0) {
                    cql_buf_reset(&s->scratch);
                    if (cql__token_of_values(&v[i], it->prep->bind->pk_indexes,
                                             it->prep->bind->pk_count, &s->scratch,
                                             &r->token) == 0) {
                        r->has_token = true;
                        copy_str(r->route_ks, sizeof(r->route_ks), it->prep->route_ks);
                        copy_str(r->route_table, sizeof(r->route_table), it->prep->route_table);
                    }
                }
            }
        }
        cql_batch b = {r->batch_kind,
                       e,
                       (uint16_t)r->nitems,
                       (cql_consistency)r->consistency,
                       (uint16_t)r->serial_consistency,
                       r->timestamp};
        rc = cql__enc_batch(&r->frame, 0, flags, &b);
        free(e);
        free(v);
        break;
    }
    case CQL_REQ_PREPARE:
        rc = cql__enc_prepare(&r->frame, 0, 0, r->query, r->query_len);
        break;
    default:
        rc = MS_ERR_INTERNAL;
    }
    return rc;
}

/* ---- completion ---------------------------------------------------------------- */

static cql_request *req_of_node(cql_tq_node *n, size_t off)
{
    return (cql_request *)(void *)((char *)n - off);
}

static void unlink_waiting(cql_request *r)
{
    if (!r->waiting)
        return;
    r->waiting = false;
    cql_session *s = r->s;
    /* parked on the session (connecting) or on a prepared statement */
    for (cql_request **pp = &s->waiting; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            return;
        }
    }
    /* prepared waiters: scan every cached statement that is being prepared */
    for (cql_lru_link *k = s->cache.head.next; k != &s->cache.head; k = k->next) {
        cql_prepared *p = ((cql_lru_node *)(void *)k)->value;
        for (cql_request **pp = &p->waiters; *pp; pp = &(*pp)->next) {
            if (*pp == r) {
                *pp = r->next;
                return;
            }
        }
    }
}

static void detach_attempt(cql_request *r, cql_attempt *a)
{
    a->active = false;
    r->nactive--;
    a->host->in_flight--;
    ms_gauge_add(a->host->g_in_flight, -1);
}

static void finish_session_close_if_idle(cql_session *s);

static void complete(cql_request *r, cql_result_box *box)
{
    cql_session *s = r->s;
    if (r->done) {
        if (box)
            cql_result_destroy(&box->res);
        return;
    }
    r->done = true;
    cql__tq_remove(&s->tq, &r->deadline);
    cql__tq_remove(&s->tq, &r->wake);
    cql__tq_remove(&s->tq, &r->spec);
    unlink_waiting(r);
    for (int i = 0; i < CQL_MAX_ATTEMPTS_ACTIVE; i++) {
        cql_attempt *a = &r->att[i];
        if (!a->active)
            continue;
        cql__conn_abandon(a->conn, &a->p);
        if (a->probe)
            cql__breaker_probe_cancelled(&a->host->breaker);
        detach_attempt(r, a);
    }
    s->in_flight--;
    r->st.attempts = r->tries;
    if (r->internal) {
        s->internal_in_flight--;
    } else {
        uint64_t us = (uint64_t)(cql__now_us() - r->start_us);
        s->stats.requests++;
        ms_counter_add(s->m_requests, 1);
        ms_histogram_observe_us(s->m_latency, us);
    }
    if (r->st.code < 0 && !r->internal) {
        s->stats.errors++;
        int k = -r->st.code < CQL_ERR_KINDS ? -r->st.code : 0;
        if (!s->m_errors[k]) {
            char lab[160];
            snprintf(lab, sizeof(lab), "%s,kind=\"%s\"", s->mlabel, ms_err_name(r->st.code));
            s->m_errors[k] = ms_counter_get("msgstore_cql_errors_total", lab,
                                            "CQL requests that failed, by error kind");
        }
        ms_counter_add(s->m_errors[k], 1);
    }
    if (r->kind == CQL_REQ_PREPARE && !r->pcb && r->st.code < 0 && r->prep)
        cql__prepared_failed(r->prep, &r->st); /* an internal PREPARE: its waiters fail */
    if (r->kind == CQL_REQ_PREPARE && r->pcb) {
        cql_prepared *p = r->st.code == 0 ? cql_prepared_ref(r->prep) : NULL;
        r->pcb(p, &r->st, r->ud);
        if (box)
            cql_result_destroy(&box->res);
    } else if (r->cb) {
        r->cb(box ? &box->res : NULL, &r->st, r->ud);
        if (box && !box->kept)
            cql_result_destroy(&box->res);
    } else if (box) {
        cql_result_destroy(&box->res);
    }
    cql__req_release(r);
    finish_session_close_if_idle(s);
}

void cql__req_fail(cql_request *r, const cql_status *st)
{
    int tries = r->tries;
    r->st = *st;
    r->st.attempts = tries;
    complete(r, NULL);
}

static void later_fn(cql_tq_node *n)
{
    cql_request *r = req_of_node(n, offsetof(cql_request, wake));
    complete(r, NULL);
}

void cql__req_fail_later(cql_request *r, int code, const char *fmt, ...)
{
    r->st.code = code;
    r->st.server_code = -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->st.message, sizeof(r->st.message), fmt, ap);
    va_end(ap);
    unlink_waiting(r);
    if (cql__tq_add(&r->s->tq, &r->wake, uv_now(r->s->loop), later_fn) < 0)
        complete(r, NULL);
}

static void complete_later_ok(cql_request *r)
{
    cql__status_ok(&r->st);
    if (cql__tq_add(&r->s->tq, &r->wake, uv_now(r->s->loop), later_fn) < 0)
        complete(r, NULL);
}

/* ---- closing ------------------------------------------------------------------- */

void cql__req_close_all(cql_session *s, int code, const char *why)
{
    /* every request not completed yet: parked ones and those with attempts */
    while (s->waiting) {
        cql_request *r = s->waiting;
        cql_status st;
        cql__status_set(&st, code, NULL, "%s", why);
        cql__req_fail(r, &st);
    }
}

/* Fails every request not completed yet (closing): the parked ones, then
 * those with attempts, found through their deadlines (every live request has
 * one queued). */
void cql__session_close_requests(cql_session *s, int code, const char *why)
{
    cql__req_close_all(s, code, why);
    for (;;) {
        cql_request *found = NULL;
        for (size_t i = 0; i < s->tq.n && !found; i++)
            if (s->tq.heap[i]->fn == cql__req_deadline_fn)
                found = req_of_node(s->tq.heap[i], offsetof(cql_request, deadline));
        if (!found)
            break;
        cql_status st;
        cql__status_set(&st, code, NULL, "%s", why);
        cql__req_fail(found, &st);
    }
}

static void finish_session_close_if_idle(cql_session *s)
{
    if (s->state == CQL_S_CLOSING && s->in_flight == 0)
        cql__session_finish_close(s);
}

/* ---- deadlines, retries, speculative executions ------------------------------- */

void cql__req_deadline_fn(cql_tq_node *n)
{
    cql_request *r = req_of_node(n, offsetof(cql_request, deadline));
    cql_session *s = r->s;
    s->stats.timeouts++;
    ms_counter_add(s->m_timeouts, 1);
    char last[200] = "";
    if (r->st.code < 0 && r->st.message[0])
        snprintf(last, sizeof(last), "; last error: %.150s", r->st.message);
    const char *where = "";
    for (int i = 0; i < CQL_MAX_ATTEMPTS_ACTIVE; i++) {
        cql_attempt *a = &r->att[i];
        if (!a->active)
            continue;
        where = a->host->label;
        cql__breaker_failure(&a->host->breaker, cql__now(s));
        ms_gauge_set(a->host->g_breaker, cql__breaker_state(&a->host->breaker, cql__now(s)));
        a->host->errors++;
        a->probe = false;
    }
    int tries = r->tries;
    cql__status_set(&r->st, MS_ERR_TIMEOUT, where[0] ? where : NULL,
                    "request timed out after %lld ms (%d attempt%s%s%s)%s",
                    (long long)r->timeout_ms, tries, tries == 1 ? "" : "s",
                    where[0] ? ", waiting for " : "", where, last);
    r->st.attempts = tries;
    complete(r, NULL);
}

static void wake_fn(cql_tq_node *n)
{
    cql_request *r = req_of_node(n, offsetof(cql_request, wake));
    if (r->done)
        return;
    if (!try_next(r) && r->nactive == 0)
        fail_no_host(r);
}

static void spec_fn(cql_tq_node *n)
{
    cql_request *r = req_of_node(n, offsetof(cql_request, spec));
    cql_session *s = r->s;
    if (r->done || !r->speculative || r->nspec >= s->o.speculative_max ||
        r->nactive >= CQL_MAX_ATTEMPTS_ACTIVE || r->nactive == 0)
        return;
    r->nspec++;
    if (try_next(r)) {
        s->stats.speculative++;
        ms_counter_add(s->m_spec, 1);
        if (r->nspec < s->o.speculative_max)
            cql__tq_add(&s->tq, &r->spec, uv_now(s->loop) + (uint64_t)s->o.speculative_delay_ms,
                        spec_fn);
    }
}

static void fail_no_host(cql_request *r)
{
    cql_session *s = r->s;
    char msg[240];
    size_t len = 0;
    int shown = 0;
    msg[0] = '\0';
    for (size_t i = 0; i < s->nhosts && len < sizeof(msg) - 40; i++) {
        cql_host *h = s->hosts[i];
        if (h->removed || !h->pooled)
            continue;
        cql_breaker_state bs = cql__breaker_state(&h->breaker, cql__now(s));
        int n;
        if (h->up && bs != CQL_BREAKER_CLOSED)
            n = snprintf(msg + len, sizeof(msg) - len, "%s%s: circuit breaker %s",
                         shown ? "; " : "", h->label, cql_breaker_state_name(bs));
        else if (!h->up)
            n = snprintf(msg + len, sizeof(msg) - len, "%s%s: down%s%.100s%s", shown ? "; " : "",
                         h->label, h->last_error[0] ? " (" : "", h->last_error,
                         h->last_error[0] ? ")" : "");
        else
            n = snprintf(msg + len, sizeof(msg) - len, "%s%s: busy", shown ? "; " : "", h->label);
        if (n > 0)
            len += (size_t)n < sizeof(msg) - len ? (size_t)n : sizeof(msg) - len - 1;
        shown++;
    }
    if (r->st.code < 0 && r->tries > 0) {
        /* the last real error says more than "no host" */
        char prev[256];
        snprintf(prev, sizeof(prev), "%s", r->st.message);
        cql_status st = r->st;
        snprintf(st.message, sizeof(st.message), "%.200s (no other host to try)", prev);
        cql__req_fail(r, &st);
        return;
    }
    cql_status st;
    cql__status_set(&st, MS_ERR_UNAVAILABLE, NULL, "no host available%s%s",
                    shown ? ": " : " (no host in the local DC)", msg);
    cql__req_fail(r, &st);
}

static int retry_budget(const cql_session *s)
{
    return s->o.retry.max_attempts > 0 ? s->o.retry.max_attempts : 0;
}

static void handle_failure(cql_request *r, cql_failure_kind kind, int32_t code)
{
    cql_session *s = r->s;
    if (r->done || r->nactive > 0)
        return; /* another execution is still running: let it answer */
    cql_retry_action act = cql__retry_decide(kind, code, r->idempotent);
    if (act == CQL_RETRY_FAIL || r->retries >= retry_budget(s) || s->state >= CQL_S_CLOSING) {
        if (act != CQL_RETRY_FAIL && r->retries >= retry_budget(s) && r->retries > 0) {
            size_t l = strlen(r->st.message);
            snprintf(r->st.message + l, sizeof(r->st.message) - l, " (after %d attempts)",
                     r->tries);
        }
        complete(r, NULL);
        return;
    }
    int64_t delay =
        kind == CQL_FAIL_NOT_SENT ? 0 : cql__backoff_delay(&s->o.retry, r->retries, &s->rng);
    if (delay < 0) {
        complete(r, NULL);
        return;
    }
    r->retries++;
    s->stats.retries++;
    ms_counter_add(s->m_retries, 1);
    if (r->plan_pos >= r->nplan)
        r->plan_pos = 0; /* every host was tried: go round again */
    if (delay == 0) {
        if (!try_next(r) && r->nactive == 0)
            fail_no_host(r);
        return;
    }
    if (cql__tq_add(&s->tq, &r->wake, uv_now(s->loop) + (uint64_t)delay, wake_fn) < 0)
        complete(r, NULL);
}

/* ---- attempts ---------------------------------------------------------------------- */

static void attempt_fn(cql_pending *p, cql_conn *c, int status, const cql_frame *f);
static void learn_tablet(cql_request *r, cql_conn *c, const cql_response *resp);

static void send_reprepare(cql_request *r, cql_attempt *a, cql_prepared *target)
{
    cql_session *s = r->s;
    cql_buf b;
    cql_buf_init(&b);
    int rc = cql__enc_prepare(&b, 0, 0, target->query, target->query_len);
    if (rc == 0)
        rc = cql__conn_send(a->conn, &a->p, b.data, b.len);
    cql_buf_free(&b);
    if (rc < 0) {
        cql__status_set(&r->st, MS_ERR_IO, a->host->label, "%s: cannot re-prepare (%s)",
                        a->host->label, ms_err_name(rc));
        handle_failure(r, CQL_FAIL_NOT_SENT, -1);
        return;
    }
    a->active = true;
    a->repreparing = true;
    r->nactive++;
    a->host->in_flight++;
    ms_gauge_add(a->host->g_in_flight, 1);
    s->stats.reprepares++;
    ms_counter_add(s->m_reprepares, 1);
    r->reprepares++;
    r->reprep = target;
}

/* The prepared statement an UNPREPARED error is about. */
static cql_prepared *unprepared_target(cql_request *r, cql_bytes id)
{
    if (r->kind == CQL_REQ_EXECUTE && r->prep)
        return r->prep;
    if (r->kind == CQL_REQ_BATCH)
        for (size_t i = 0; i < r->nitems; i++) {
            cql_prepared *p = r->items[i].prep;
            if (p && id.len >= 0 && (size_t)id.len == p->id_len &&
                memcmp(p->id, id.ptr, p->id_len) == 0)
                return p;
        }
    return NULL;
}

static bool breaker_counts(int32_t code)
{
    return code == CQL_ERR_OVERLOADED || code == CQL_ERR_IS_BOOTSTRAPPING || code == CQL_ERR_SERVER;
}

static void note_breaker(cql_session *s, cql_host *h, bool failure)
{
    if (failure) {
        cql__breaker_failure(&h->breaker, cql__now(s));
        h->errors++;
    } else {
        cql__breaker_success(&h->breaker);
    }
    ms_gauge_set(h->g_breaker, cql__breaker_state(&h->breaker, cql__now(s)));
}

static void on_result(cql_request *r, cql_attempt *a, cql_conn *c, const cql_frame *f)
{
    cql_session *s = r->s;
    uint8_t *body = cql__conn_take_body(c, f);
    cql_result_box *box = body ? malloc(sizeof(*box)) : NULL; /* the decoder sets res */
    if (box) {
        box->prep = NULL;
        box->kept = false;
    }
    if (!box) {
        free(body);
        cql__status_set(&r->st, MS_ERR_NOMEM, a->host->label, "out of memory");
        complete(r, NULL);
        return;
    }
    /* an earlier failed attempt may have left its error: this one succeeded */
    cql__status_ok(&r->st);
    cql_response resp;
    int rc = cql__response_open(&f->h, body, f->len, &resp);
    if (rc == 0) {
        learn_tablet(r, c, &resp);
        r->st.warnings = resp.warning_count;
        for (uint16_t i = 0; i < resp.warning_count; i++) {
            cql_str w;
            if (cql__response_warning(&resp, i, &w) < 0)
                continue;
            /* at most one line every 10 s: a hot statement must not flood the log */
            int64_t now = cql__now(s);
            if (s->warn_at && now - s->warn_at < 10000) {
                s->warn_suppressed++;
                continue;
            }
            MS_WARN("cql", "%s: server warning: %.*s%s", a->host->label, (int)w.len, w.ptr,
                    s->warn_suppressed ? " (and earlier warnings not shown)" : "");
            s->warn_at = now;
            s->warn_suppressed = 0;
        }
        r->st.has_tracing = resp.has_tracing;
        if (resp.has_tracing)
            memcpy(r->st.tracing_id, resp.tracing_id, 16);
        const cql_metadata *cached = r->skip_metadata && r->prep ? r->prep->result : NULL;
        rc = cql__result_decode(&box->res, resp.body, resp.body_len, body, cached);
    } else {
        free(body);
    }
    if (rc < 0) {
        cql_result_free(&box->res);
        free(box);
        cql__status_set(&r->st, MS_ERR_IO, a->host->label, "%s: undecodable RESULT (%s)",
                        a->host->label, ms_err_name(rc));
        complete(r, NULL);
        return;
    }
    if (r->skip_metadata && r->prep)
        box->prep = cql_prepared_ref(r->prep);
    copy_str(r->st.host, sizeof(r->st.host), a->host->label);
    switch (box->res.kind) {
    case CQL_RESULT_PREPARED:
        if (r->kind == CQL_REQ_PREPARE && r->prep) {
            rc = cql__prepared_set(r->prep, &box->res, s->keyspace);
            cql_result_destroy(&box->res);
            if (rc < 0) {
                cql__status_set(&r->st, rc, a->host->label, "%s: bad PREPARED result",
                                a->host->label);
                cql__prepared_failed(r->prep, &r->st);
                complete(r, NULL);
                return;
            }
            /* the other hosts first: their PREPARE then goes out ahead of the
             * waiters' EXECUTEs, which would otherwise meet UNPREPARED there */
            if (s->o.prepare_on_all_hosts)
                for (size_t i = 0; i < s->nhosts; i++)
                    if (s->hosts[i] != a->host && s->hosts[i]->up)
                        cql__prepare_on_host(s, r->prep, s->hosts[i], NULL);
            cql__prepared_ready(r->prep);
            complete(r, NULL);
            return;
        }
        break;
    case CQL_RESULT_SET_KEYSPACE: {
        char ks[64];
        snprintf(ks, sizeof(ks), "%.*s", (int)box->res.keyspace.len, box->res.keyspace.ptr);
        cql__session_keyspace_changed(s, ks);
        break;
    }
    case CQL_RESULT_SCHEMA_CHANGE:
        if (s->o.wait_schema_agreement) {
            cql__cluster_schema_wait_box(s, r, box);
            return;
        }
        break;
    default:
        break;
    }
    complete(r, box);
}

/* Completes a request whose schema change has been waited for (cluster.c). */
void cql__req_complete_box(cql_request *r, void *box)
{
    complete(r, box);
}

static void attempt_fn(cql_pending *p, cql_conn *c, int status, const cql_frame *f)
{
    cql_attempt *a = (cql_attempt *)p;
    cql_request *r = a->req;
    cql_host *h = a->host;
    cql_session *s = r->s;
    bool reprep = a->repreparing;
    a->repreparing = false;
    detach_attempt(r, a);
    if (status < 0) {
        /* a broken connection counts against the host only when it was its
         * last one: with other connections ready the host still serves */
        if (h->ready <= 1)
            note_breaker(s, h, true);
        if (a->probe)
            a->probe = false;
        cql__status_set(&r->st, MS_ERR_IO, h->label, "%s",
                        c->close_why[0] ? c->close_why : "connection lost");
        handle_failure(r, p->sent ? CQL_FAIL_CONNECTION : CQL_FAIL_NOT_SENT, -1);
        return;
    }
    a->probe = false;
    if (f->h.opcode == CQL_OP_RESULT) {
        note_breaker(s, h, false);
        if (reprep) {
            /* the statement is known again on this host: update it and re-execute */
            uint8_t *body = cql__conn_take_body(c, f);
            cql_result res;
            memset(&res, 0, sizeof(res));
            cql_response resp;
            int rc = body ? cql__response_open(&f->h, body, f->len, &resp) : MS_ERR_NOMEM;
            if (rc == 0)
                rc = cql__result_decode(&res, resp.body, resp.body_len, body, NULL);
            else
                free(body);
            cql_prepared *target = r->reprep;
            if (rc == 0 && res.kind == CQL_RESULT_PREPARED && target)
                rc = cql__prepared_set(target, &res, target->keyspace);
            else if (rc == 0)
                rc = MS_ERR_IO;
            cql_result_free(&res);
            if (rc == 0)
                rc = cql__req_encode(r);
            if (rc == 0) {
                rc = cql__conn_send(c, &a->p, r->frame.data, r->frame.len);
                if (rc == 0) {
                    a->active = true;
                    r->nactive++;
                    h->in_flight++;
                    ms_gauge_add(h->g_in_flight, 1);
                    r->tries++;
                    return;
                }
                cql__status_set(&r->st, MS_ERR_IO, h->label, "%s: cannot re-execute (%s)", h->label,
                                ms_err_name(rc));
                handle_failure(r, CQL_FAIL_NOT_SENT, -1);
                return;
            }
            cql__status_set(&r->st, rc, h->label, "%s: re-prepare failed (%s)", h->label,
                            ms_err_name(rc));
            complete(r, NULL);
            return;
        }
        on_result(r, a, c, f);
        return;
    }
    if (f->h.opcode == CQL_OP_ERROR) {
        cql_response resp;
        cql_error e;
        if (cql__response_open(&f->h, f->body, f->len, &resp) < 0 ||
            cql__error_decode(resp.body, resp.body_len, &e) < 0) {
            note_breaker(s, h, true);
            cql__status_set(&r->st, MS_ERR_IO, h->label, "%s: undecodable ERROR", h->label);
            handle_failure(r, CQL_FAIL_CONNECTION, -1);
            return;
        }
        if (e.code == CQL_ERR_UNPREPARED && !reprep && r->reprepares < CQL_MAX_REPREPARES) {
            cql_prepared *target = unprepared_target(r, e.unprepared_id);
            if (target) {
                note_breaker(s, h, false);
                MS_DEBUG("cql", "%s: statement unprepared, re-preparing: %.80s", h->label,
                         target->query);
                send_reprepare(r, a, target);
                return;
            }
        }
        note_breaker(s, h, breaker_counts(e.code));
        cql__status_server(&r->st, &e, h->label, cql__conn_rate_limit_code(c, e.code));
        handle_failure(r, CQL_FAIL_SERVER, e.code);
        return;
    }
    note_breaker(s, h, true);
    cql__status_set(&r->st, MS_ERR_IO, h->label, "%s: unexpected %s answer", h->label,
                    cql__opcode_name(f->h.opcode));
    handle_failure(r, CQL_FAIL_CONNECTION, -1);
}

/* The replicas of the cached tablet owning r's token, as host indexes (0: none cached). */
static size_t tablet_replicas(cql_request *r)
{
    cql_session *s = r->s;
    r->ntrep = 0;
    if (!r->has_token || !r->route_table[0] || cql__tablets_empty(&s->tablets))
        return 0;
    const cql_tablet *t = cql__tablets_find(&s->tablets, r->route_ks, r->route_table, r->token);
    for (int i = 0; t && i < t->nrep; i++)
        for (size_t k = 0; k < s->nhosts; k++) {
            cql_host *h = s->hosts[k];
            if (!h->removed && strcmp(h->host_id, t->rep[i].host_id) == 0) {
                r->trep_host[r->ntrep] = (uint32_t)k;
                r->trep_shard[r->ntrep++] = t->rep[i].shard;
                break;
            }
        }
    return (size_t)r->ntrep;
}

/* The shard a tablet gives host h for r, or -1 (then the token's vnode shard is used). */
static int tablet_shard(const cql_request *r, const cql_host *h)
{
    for (int i = 0; i < r->ntrep; i++)
        if (r->trep_host[i] == h->idx)
            return r->trep_shard[i];
    return -1;
}

/* Learns the tablet a node sent back with a RESULT (it was not the right node or shard). */
static void learn_tablet(cql_request *r, cql_conn *c, const cql_response *resp)
{
    if (!c->info.ext.tablets_routing || !r->route_table[0] || resp->payload_count == 0)
        return;
    for (uint16_t i = 0; i < resp->payload_count; i++) {
        cql_str key;
        cql_bytes val;
        cql_tablet t;
        if (cql__response_payload(resp, i, &key, &val) == 0 &&
            cql_str_eq(key, CQL_TABLETS_PAYLOAD_KEY) && val.len > 0 &&
            cql__tablet_decode(val.ptr, (size_t)val.len, &t) == 0)
            cql__tablets_put(&r->s->tablets, r->route_ks, r->route_table, &t);
    }
}

static void make_plan(cql_request *r)
{
    cql_session *s = r->s;
    const uint32_t *reps = NULL;
    size_t nreps = tablet_replicas(r);
    if (nreps > 0) {
        reps = r->trep_host;
    } else if (r->has_token && s->ring_ok && r->route_ks[0]) {
        int ki;
        cql_prepared *p = r->prep;
        if (p && p->ks_gen == s->ks_gen && p->ks_idx >= 0) {
            ki = p->ks_idx; /* no string compare per request */
        } else {
            ki = cql__ks_index(s, r->route_ks);
            if (p && strcmp(p->route_ks, r->route_ks) == 0) {
                p->ks_idx = ki;
                p->ks_gen = s->ks_gen;
            }
        }
        const cql_replica_map *m = ki >= 0 ? cql__ks_map(s, ki) : NULL;
        if (m)
            reps = cql__replica_map_get(m, &s->ring, r->token, &nreps);
    }
    cql_lb_view v = {s->nhosts,     s->lb_up,    s->lb_locals, s->nlocals,
                     s->lb_remotes, s->nremotes, s->lb_local,  s->o.allow_remote_dc};
    bool ordered = r->prep && r->prep->lwt;
    r->nplan = (int)cql__lb_plan(&v, reps, nreps, s->rr++, ordered, r->plan, CQL_PLAN_MAX);
    r->plan_pos = 0;
    r->planned = true;
}

static bool try_next(cql_request *r)
{
    cql_session *s = r->s;
    int64_t now = cql__now(s);
    while (r->plan_pos < r->nplan) {
        cql_host *h = s->hosts[r->plan[r->plan_pos++]];
        if (!h->up || h->removed)
            continue;
        bool was_closed = h->breaker.state == CQL_BREAKER_CLOSED;
        if (!cql__breaker_allow(&h->breaker, now)) {
            r->breaker_refusals++;
            s->stats.breaker_rejections++;
            ms_counter_add(s->m_breaker_rej, 1);
            continue;
        }
        bool probe = !was_closed;
        cql_conn *c = cql__pool_pick(h, r->has_token, r->token, tablet_shard(r, h));
        if (!c) {
            if (probe)
                cql__breaker_probe_cancelled(&h->breaker);
            continue;
        }
        cql_attempt *a = NULL;
        for (int i = 0; i < CQL_MAX_ATTEMPTS_ACTIVE; i++)
            if (!r->att[i].active) {
                a = &r->att[i];
                break;
            }
        if (!a)
            return false;
        a->req = r;
        a->host = h;
        a->conn = c;
        a->p.fn = attempt_fn;
        a->probe = probe;
        a->repreparing = false;
        if (cql__conn_send(c, &a->p, r->frame.data, r->frame.len) < 0) {
            if (probe)
                cql__breaker_probe_cancelled(&h->breaker);
            continue;
        }
        a->active = true;
        a->start_us = cql__now_us();
        r->nactive++;
        r->tries++;
        h->requests++;
        h->in_flight++;
        ms_gauge_add(h->g_in_flight, 1);
        ms_counter_add(h->c_requests, 1);
        if (r->tries == 1 && s->o.speculative_delay_ms > 0 && r->speculative &&
            s->o.speculative_max > 0)
            cql__tq_add(&s->tq, &r->spec, uv_now(s->loop) + (uint64_t)s->o.speculative_delay_ms,
                        spec_fn);
        return true;
    }
    return false;
}

void cql__req_start(cql_request *r)
{
    cql_session *s = r->s;
    if (s->state >= CQL_S_CLOSING) {
        cql__req_fail_later(r, MS_ERR_SHUTDOWN, "the CQL session is closing");
        return;
    }
    if (s->state == CQL_S_NEW || s->state == CQL_S_CONNECTING) {
        r->waiting = true;
        r->next = s->waiting;
        s->waiting = r;
        return;
    }
    if (s->state == CQL_S_FAILED) {
        cql__req_fail_later(r, MS_ERR_UNAVAILABLE, "the CQL session is not connected");
        return;
    }
    make_plan(r);
    if (!try_next(r)) {
        /* report from the loop, never from inside the caller's submit */
        if (cql__tq_add(&s->tq, &r->wake, uv_now(s->loop), wake_fn) < 0)
            fail_no_host(r);
    }
}

/* Re-plans and starts requests that were waiting for the session. */
void cql__req_resume_waiting(cql_session *s)
{
    cql_request *list = s->waiting;
    s->waiting = NULL;
    /* restore submission order */
    cql_request *rev = NULL;
    while (list) {
        cql_request *n = list->next;
        list->next = rev;
        rev = list;
        list = n;
    }
    while (rev) {
        cql_request *n = rev->next;
        rev->next = NULL;
        rev->waiting = false;
        cql__req_start(rev);
        rev = n;
    }
}

/* ---- public entry points -------------------------------------------------------- */

/* Bound values against the bind markers: a clear local error instead of a
 * server round trip. Returns 0 or fails r (later) and returns -1. */
static int check_values(cql_request *r)
{
    if (r->kind != CQL_REQ_EXECUTE || !r->prep || !r->prep->bind)
        return 0;
    if (r->prep->bind->column_count == 0 && r->vals.count == 0)
        return 0;
    int bad = -1;
    if (cql__values_check(&r->vals, r->prep->bind, &bad) == 0)
        return 0;
    if (bad < 0)
        cql__req_fail_later(r, MS_ERR_INVALID, "%u values bound, the statement has %d markers",
                            (unsigned)r->vals.count, (int)r->prep->bind->column_count);
    else
        cql__req_fail_later(
            r, MS_ERR_INVALID, "bound value %d does not fit its marker (%s %.*s)", bad,
            bad < r->prep->bind->column_count ? cql_type_name(r->prep->bind->columns[bad].type->id)
                                              : "?",
            bad < r->prep->bind->column_count ? (int)r->prep->bind->columns[bad].name.len : 0,
            bad < r->prep->bind->column_count ? r->prep->bind->columns[bad].name.ptr : "");
    return -1;
}

void cql_statement_init(cql_statement *st)
{
    memset(st, 0, sizeof(*st));
    st->consistency = CQL_DEFAULT;
    st->serial_consistency = CQL_DEFAULT;
    st->page_size = CQL_DEFAULT;
    st->timestamp = INT64_MIN;
}

void cql_batch_request_init(cql_batch_request *b)
{
    memset(b, 0, sizeof(*b));
    b->kind = CQL_BATCH_KIND_LOGGED;
    b->consistency = CQL_DEFAULT;
    b->serial_consistency = CQL_DEFAULT;
    b->timestamp = INT64_MIN;
}

static int copy_params(cql_request *r, int consistency, int serial, int64_t timestamp,
                       int64_t timeout_ms)
{
    cql_session *s = r->s;
    r->consistency = consistency == CQL_DEFAULT ? s->o.default_consistency : consistency;
    if (serial == CQL_DEFAULT)
        r->serial_consistency = 0; /* the server's default (SERIAL) unless asked */
    else
        r->serial_consistency = serial;
    if (serial == CQL_DEFAULT && s->o.default_serial_consistency != CQL_CONSISTENCY_SERIAL)
        r->serial_consistency = s->o.default_serial_consistency;
    if (timestamp != INT64_MIN)
        r->timestamp = timestamp;
    else if (s->o.client_timestamps)
        r->timestamp = cql__tsgen_next(&s->ts);
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : s->o.request_timeout_ms;
    if (r->consistency < 0 || r->consistency > CQL_CONSISTENCY_LOCAL_ONE)
        return MS_ERR_INVALID;
    return 0;
}

static void arm_deadline(cql_request *r)
{
    cql_session *s = r->s;
    s->in_flight++;
    cql__tq_add(&s->tq, &r->deadline, uv_now(s->loop) + (uint64_t)r->timeout_ms,
                cql__req_deadline_fn);
}

static int copy_values(cql_request *r, const cql_values *v)
{
    if (!v || v->count == 0)
        return 0;
    if (cql_values_error(v) < 0)
        return MS_ERR_INVALID;
    cql_buf_append(&r->vals.buf, v->buf.data, v->buf.len);
    r->vals.count = v->count;
    return r->vals.buf.err;
}

int cql_session_execute(cql_session *s, const cql_statement *st, cql_result_cb cb, void *ud)
{
    if (!s || !st || !cb || (!st->query && !st->prepared))
        return MS_ERR_INVALID;
    cql_request *r = cql__req_alloc(s);
    if (!r)
        return MS_ERR_NOMEM;
    r->cb = cb;
    r->ud = ud;
    int rc = copy_params(r, st->consistency, st->serial_consistency, st->timestamp, st->timeout_ms);
    r->page_size = st->page_size == CQL_DEFAULT ? s->o.default_page_size : st->page_size;
    r->idempotent = st->idempotent;
    r->speculative = st->idempotent && !st->no_speculative;
    r->tracing = st->tracing;
    if (st->paging_state.ptr && st->paging_state.len >= 0) {
        cql_buf_append(&r->paging_state, st->paging_state.ptr, (size_t)st->paging_state.len);
        r->has_paging = true;
    }
    arm_deadline(r);
    if (rc == 0)
        rc = copy_values(r, st->values);
    if (rc < 0) {
        cql__req_fail_later(r, MS_ERR_INVALID, "invalid statement: %s",
                            rc == MS_ERR_INVALID ? "bad consistency or values" : ms_err_name(rc));
        return 0;
    }
    if (s->state >= CQL_S_CLOSING) {
        cql__req_fail_later(r, MS_ERR_SHUTDOWN, "the CQL session is closing");
        return 0;
    }
    if (st->prepared) {
        r->kind = CQL_REQ_EXECUTE;
        r->prep = cql_prepared_ref(st->prepared);
    } else {
        size_t qlen = st->query_len ? st->query_len : strlen(st->query);
        r->query = malloc(qlen + 1);
        if (!r->query) {
            cql__req_fail_later(r, MS_ERR_NOMEM, "out of memory");
            return 0;
        }
        memcpy(r->query, st->query, qlen);
        r->query[qlen] = '\0';
        r->query_len = qlen;
        if (st->prepare) {
            r->kind = CQL_REQ_EXECUTE;
            cql_prepared *p = NULL;
            cql__prepared_lookup(s, r->query, qlen, r, &p);
            if (!p)
                return 0; /* parked until the PREPARE answers (or failed later) */
            r->prep = p;
        } else {
            r->kind = CQL_REQ_QUERY;
            copy_str(r->route_ks, sizeof(r->route_ks),
                     st->keyspace ? st->keyspace : (s->keyspace ? s->keyspace : ""));
        }
    }
    if (check_values(r) < 0)
        return 0;
    rc = cql__req_encode(r);
    if (rc < 0) {
        cql__req_fail_later(r, rc == MS_ERR_NOMEM ? MS_ERR_NOMEM : MS_ERR_INVALID,
                            "cannot encode the request (%s)", ms_err_name(rc));
        return 0;
    }
    cql__req_start(r);
    return 0;
}

/* A waiter whose prepared statement became ready (prepared.c). */
void cql__req_prepared_ready(cql_request *r, cql_prepared *p)
{
    r->waiting = false;
    if (r->kind == CQL_REQ_PREPARE && !r->pcb && r->st.code < 0 && r->prep)
        cql__prepared_failed(r->prep, &r->st); /* an internal PREPARE: its waiters fail */
    if (r->kind == CQL_REQ_PREPARE && r->pcb) {
        r->prep = cql_prepared_ref(p);
        complete_later_ok(r);
        return;
    }
    if (r->kind == CQL_REQ_BATCH) {
        cql__batch_resolve(r);
        return;
    }
    r->prep = cql_prepared_ref(p);
    if (check_values(r) < 0)
        return;
    int rc = cql__req_encode(r);
    if (rc < 0) {
        cql__req_fail_later(r, MS_ERR_INVALID, "cannot encode the request (%s)", ms_err_name(rc));
        return;
    }
    cql__req_start(r);
}

int cql_session_prepare(cql_session *s, const char *query, cql_prepare_cb cb, void *ud)
{
    if (!s || !query || !cb)
        return MS_ERR_INVALID;
    cql_request *r = cql__req_alloc(s);
    if (!r)
        return MS_ERR_NOMEM;
    r->kind = CQL_REQ_PREPARE;
    r->pcb = cb;
    r->ud = ud;
    arm_deadline(r);
    if (s->state >= CQL_S_CLOSING) {
        cql__req_fail_later(r, MS_ERR_SHUTDOWN, "the CQL session is closing");
        return 0;
    }
    cql_prepared *p = NULL;
    cql__prepared_lookup(s, query, strlen(query), r, &p);
    if (p) {
        r->prep = p;
        complete_later_ok(r);
    }
    return 0;
}

/* Starts the internal PREPARE of a cache entry (prepared.c). */
int cql__req_prepare_entry(cql_session *s, cql_prepared *p)
{
    cql_request *r = cql__req_alloc(s);
    if (!r)
        return MS_ERR_NOMEM;
    r->kind = CQL_REQ_PREPARE;
    r->internal = true;
    s->internal_in_flight++;
    r->prep = cql_prepared_ref(p);
    r->idempotent = true;
    r->speculative = true;
    r->query = malloc(p->query_len + 1);
    if (!r->query) {
        cql__req_release(r);
        return MS_ERR_NOMEM;
    }
    memcpy(r->query, p->query, p->query_len + 1);
    r->query_len = p->query_len;
    r->cb = NULL;
    r->pcb = NULL;
    arm_deadline(r);
    int rc = cql__req_encode(r);
    if (rc < 0) {
        cql__req_fail_later(r, MS_ERR_INVALID, "cannot encode PREPARE (%s)", ms_err_name(rc));
        return 0;
    }
    cql__req_start(r);
    return 0;
}

/* ---- batches -------------------------------------------------------------------- */

void cql__batch_resolve(cql_request *r)
{
    cql_session *s = r->s;
    for (size_t i = 0; i < r->nitems; i++) {
        cql_batch_item *it = &r->items[i];
        if (it->prep || !it->query || !it->prep_wanted)
            continue;
        cql_prepared *p = NULL;
        cql__prepared_lookup(s, it->query, it->query_len, r, &p);
        if (!p)
            return; /* parked: resumes here when ready */
        it->prep = p;
    }
    int rc = cql__req_encode(r);
    if (rc < 0) {
        cql__req_fail_later(r, MS_ERR_INVALID, "cannot encode the batch (%s)", ms_err_name(rc));
        return;
    }
    cql__req_start(r);
}

int cql_session_batch(cql_session *s, const cql_batch_request *b, cql_result_cb cb, void *ud)
{
    if (!s || !b || !cb || b->count == 0 || b->count > 65535 || !b->statements)
        return MS_ERR_INVALID;
    for (size_t i = 0; i < b->count; i++)
        if (!b->statements[i].query && !b->statements[i].prepared)
            return MS_ERR_INVALID;
    cql_request *r = cql__req_alloc(s);
    if (!r)
        return MS_ERR_NOMEM;
    r->kind = CQL_REQ_BATCH;
    r->cb = cb;
    r->ud = ud;
    r->batch_kind = (uint8_t)b->kind;
    int rc = copy_params(r, b->consistency, b->serial_consistency, b->timestamp, b->timeout_ms);
    r->idempotent = b->idempotent && b->kind != CQL_BATCH_KIND_COUNTER;
    r->speculative = r->idempotent && !b->no_speculative;
    arm_deadline(r);
    if (rc < 0) {
        cql__req_fail_later(r, MS_ERR_INVALID, "invalid batch: bad consistency");
        return 0;
    }
    if (s->state >= CQL_S_CLOSING) {
        cql__req_fail_later(r, MS_ERR_SHUTDOWN, "the CQL session is closing");
        return 0;
    }
    r->items = calloc(b->count, sizeof(*r->items));
    if (!r->items) {
        cql__req_fail_later(r, MS_ERR_NOMEM, "out of memory");
        return 0;
    }
    r->nitems = b->count;
    for (size_t i = 0; i < b->count; i++) {
        const cql_statement *st = &b->statements[i];
        cql_batch_item *it = &r->items[i];
        if (st->prepared) {
            it->prep = cql_prepared_ref(st->prepared);
        } else {
            size_t ql = st->query_len ? st->query_len : strlen(st->query);
            it->query = malloc(ql + 1);
            if (!it->query) {
                cql__req_fail_later(r, MS_ERR_NOMEM, "out of memory");
                return 0;
            }
            memcpy(it->query, st->query, ql);
            it->query[ql] = '\0';
            it->query_len = ql;
            it->prep_wanted = st->prepare;
        }
        if (st->values && st->values->count) {
            if (cql_values_error(st->values) < 0) {
                cql__req_fail_later(r, MS_ERR_INVALID, "invalid batch: statement %zu values", i);
                return 0;
            }
            it->voff = r->vals.buf.len;
            it->vlen = st->values->buf.len;
            it->vcount = st->values->count;
            cql_buf_append(&r->vals.buf, st->values->buf.data, st->values->buf.len);
        }
    }
    if (r->vals.buf.err) {
        cql__req_fail_later(r, MS_ERR_NOMEM, "out of memory");
        return 0;
    }
    r->vals.count = 0; /* the per-statement views carry the values */
    cql__batch_resolve(r);
    return 0;
}

/* ---- pager -------------------------------------------------------------------------- */

struct cql_pager {
    cql_session *s;
    cql_statement st;
    char *query;
    cql_prepared *prep;
    cql_values vals;
    cql_buf state;
    bool has_state;
    bool started, done, busy;
    cql_result_cb cb;
    void *ud;
};

int cql_pager_new(cql_session *s, const cql_statement *st, cql_pager **out)
{
    *out = NULL;
    if (!s || !st || (!st->query && !st->prepared))
        return MS_ERR_INVALID;
    cql_pager *p = calloc(1, sizeof(*p));
    if (!p)
        return MS_ERR_NOMEM;
    p->s = s;
    p->st = *st;
    cql_values_init(&p->vals);
    cql_buf_init(&p->state);
    if (st->query) {
        size_t ql = st->query_len ? st->query_len : strlen(st->query);
        p->query = malloc(ql + 1);
        if (!p->query) {
            free(p);
            return MS_ERR_NOMEM;
        }
        memcpy(p->query, st->query, ql);
        p->query[ql] = '\0';
        p->st.query = p->query;
        p->st.query_len = ql;
    }
    if (st->prepared)
        p->prep = cql_prepared_ref(st->prepared);
    p->st.prepared = p->prep;
    if (st->values && st->values->count) {
        cql_buf_append(&p->vals.buf, st->values->buf.data, st->values->buf.len);
        p->vals.count = st->values->count;
        p->st.values = &p->vals;
    } else {
        p->st.values = NULL;
    }
    p->st.keyspace = NULL;
    if (st->paging_state.ptr && st->paging_state.len >= 0) {
        cql_buf_append(&p->state, st->paging_state.ptr, (size_t)st->paging_state.len);
        p->has_state = true;
    }
    if (p->vals.buf.err || p->state.err) {
        cql_pager_free(p);
        return MS_ERR_NOMEM;
    }
    *out = p;
    return 0;
}

static void pager_cb(cql_result *res, const cql_status *st, void *ud)
{
    cql_pager *p = ud;
    p->busy = false;
    if (res) {
        p->started = true;
        cql_bytes ps = cql_result_paging_state(res);
        cql_buf_reset(&p->state);
        if (cql_result_has_more_pages(res) && ps.len >= 0) {
            cql_buf_append(&p->state, ps.ptr, (size_t)ps.len);
            p->has_state = true;
        } else {
            p->has_state = false;
            p->done = true;
        }
    }
    p->cb(res, st, p->ud);
}

int cql_pager_next(cql_pager *p, cql_result_cb cb, void *ud)
{
    if (!p || !cb)
        return MS_ERR_INVALID;
    if (p->busy)
        return MS_ERR_CONFLICT;
    if (p->done)
        return MS_ERR_NOT_FOUND;
    cql_statement st = p->st;
    if (p->has_state) {
        st.paging_state.ptr = p->state.data ? p->state.data : (const uint8_t *)"";
        st.paging_state.len = (int32_t)p->state.len;
    } else {
        st.paging_state.ptr = NULL;
        st.paging_state.len = -1;
    }
    p->cb = cb;
    p->ud = ud;
    p->busy = true;
    int rc = cql_session_execute(p->s, &st, pager_cb, p);
    if (rc < 0)
        p->busy = false;
    return rc;
}

bool cql_pager_has_more(const cql_pager *p)
{
    return p && !p->done;
}

void cql_pager_free(cql_pager *p)
{
    if (!p)
        return;
    free(p->query);
    cql_prepared_release(p->prep);
    cql_values_free(&p->vals);
    cql_buf_free(&p->state);
    free(p);
}
