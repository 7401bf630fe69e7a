/* SPDX-License-Identifier: Apache-2.0 */
/*
 * request.c - a request's lifecycle: allocation and reuse, encoding, the
 * public entry points (execute, prepare, batch), completion and closing.
 * Running it (plans, attempts, retries, speculative executions) is exec.c;
 * paging is pager.c.
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
        cql__copy_str(r->route_ks, sizeof(r->route_ks), pr->route_ks);
        cql__copy_str(r->route_table, sizeof(r->route_table), pr->route_table);
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
                        cql__copy_str(r->route_ks, sizeof(r->route_ks), it->prep->route_ks);
                        cql__copy_str(r->route_table, sizeof(r->route_table),
                                      it->prep->route_table);
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

static void finish_session_close_if_idle(cql_session *s);

void cql__req_complete_box(cql_request *r, cql_result_box *box)
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
        cql__req_detach_attempt(r, a);
    }
    s->in_flight--;
    ms_gauge_add(s->m_in_flight, -1);
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
    cql__req_complete_box(r, NULL);
}

static void later_fn(cql_tq_node *n)
{
    cql_request *r = cql__req_of_node(n, offsetof(cql_request, wake));
    cql__req_complete_box(r, NULL);
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
        cql__req_complete_box(r, NULL);
}

static void complete_later_ok(cql_request *r)
{
    cql__status_ok(&r->st);
    if (cql__tq_add(&r->s->tq, &r->wake, uv_now(r->s->loop), later_fn) < 0)
        cql__req_complete_box(r, NULL);
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
                found = cql__req_of_node(s->tq.heap[i], offsetof(cql_request, deadline));
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
        s->request_listener->on_drained(s);
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

/* The process's requests in flight (every session, every loop) and their high-water mark. */
static void count_in_flight(cql_session *s)
{
    int64_t n = atomic_fetch_add_explicit(&s->m_in_flight->value, 1, memory_order_relaxed) + 1;
    int64_t most = atomic_load_explicit(&s->m_in_flight_max->value, memory_order_relaxed);
    while (n > most &&
           !atomic_compare_exchange_weak_explicit(&s->m_in_flight_max->value, &most, n,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

static void arm_deadline(cql_request *r)
{
    cql_session *s = r->s;
    s->in_flight++;
    count_in_flight(s);
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
            cql__copy_str(r->route_ks, sizeof(r->route_ks),
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

/* ---- what prepared.c's waiters hear (cql_prepared_listener) ----------------------- */

static void prepared_waiter_failed(cql_request *r, const cql_status *st, bool later)
{
    if (later)
        cql__req_fail_later(r, st->code, "%s", st->message);
    else
        cql__req_fail(r, st);
}

const cql_prepared_listener cql__request_prepared_listener = {
    cql__req_prepare_entry,
    cql__req_prepared_ready,
    prepared_waiter_failed,
};
