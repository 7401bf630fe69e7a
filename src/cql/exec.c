/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exec.c - running a request: the plan of hosts (token, tablet and DC
 * aware), attempts on pool connections, retries with backoff, speculative
 * executions, UNPREPARED recovery and deadlines. A request's lifecycle
 * (allocation, encoding, completion) is request.c.
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

static bool try_next(cql_request *r);
static void fail_no_host(cql_request *r);

/* ---- deadlines, retries, speculative executions ------------------------------- */

void cql__req_deadline_fn(cql_tq_node *n)
{
    cql_request *r = cql__req_of_node(n, offsetof(cql_request, deadline));
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
    cql__req_complete_box(r, NULL);
}

static void wake_fn(cql_tq_node *n)
{
    cql_request *r = cql__req_of_node(n, offsetof(cql_request, wake));
    if (r->done)
        return;
    if (!try_next(r) && r->nactive == 0)
        fail_no_host(r);
}

static void spec_fn(cql_tq_node *n)
{
    cql_request *r = cql__req_of_node(n, offsetof(cql_request, spec));
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
        cql__req_complete_box(r, NULL);
        return;
    }
    int64_t delay =
        kind == CQL_FAIL_NOT_SENT ? 0 : cql__backoff_delay(&s->o.retry, r->retries, &s->rng);
    if (delay < 0) {
        cql__req_complete_box(r, NULL);
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
        cql__req_complete_box(r, NULL);
}

/* ---- attempts ---------------------------------------------------------------------- */

void cql__req_detach_attempt(cql_request *r, cql_attempt *a)
{
    a->active = false;
    r->nactive--;
    a->host->in_flight--;
    ms_gauge_add(a->host->g_in_flight, -1);
}

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
        cql__req_complete_box(r, NULL);
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
        cql__req_complete_box(r, NULL);
        return;
    }
    if (r->skip_metadata && r->prep)
        box->prep = cql_prepared_ref(r->prep);
    cql__copy_str(r->st.host, sizeof(r->st.host), a->host->label);
    switch (box->res.kind) {
    case CQL_RESULT_PREPARED:
        if (r->kind == CQL_REQ_PREPARE && r->prep) {
            rc = cql__prepared_set(r->prep, &box->res, s->keyspace);
            cql_result_destroy(&box->res);
            if (rc < 0) {
                cql__status_set(&r->st, rc, a->host->label, "%s: bad PREPARED result",
                                a->host->label);
                cql__prepared_failed(r->prep, &r->st);
                cql__req_complete_box(r, NULL);
                return;
            }
            /* the other hosts first: their PREPARE then goes out ahead of the
             * waiters' EXECUTEs, which would otherwise meet UNPREPARED there */
            if (s->o.prepare_on_all_hosts)
                for (size_t i = 0; i < s->nhosts; i++)
                    if (s->hosts[i] != a->host && s->hosts[i]->up)
                        cql__prepare_on_host(s, r->prep, s->hosts[i], NULL);
            cql__prepared_ready(r->prep);
            cql__req_complete_box(r, NULL);
            return;
        }
        break;
    case CQL_RESULT_SET_KEYSPACE: {
        char ks[64];
        snprintf(ks, sizeof(ks), "%.*s", (int)box->res.keyspace.len, box->res.keyspace.ptr);
        s->request_listener->on_keyspace(s, ks);
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
    cql__req_complete_box(r, box);
}

static void attempt_fn(cql_pending *p, cql_conn *c, int status, const cql_frame *f)
{
    cql_attempt *a = (cql_attempt *)p;
    cql_request *r = a->req;
    cql_host *h = a->host;
    cql_session *s = r->s;
    bool reprep = a->repreparing;
    a->repreparing = false;
    cql__req_detach_attempt(r, a);
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
            cql__req_complete_box(r, NULL);
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
