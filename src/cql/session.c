/* SPDX-License-Identifier: Apache-2.0 */
/*
 * session.c - a CQL session: options, hosts, load-balancing views, the token
 * ring per keyspace, housekeeping, stats and closing.
 */
#include "cql/session.h"

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "cql/retry.h"
#include "cql/status.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uv_loop_t *cql_session_loop(const cql_session *s)
{
    return s->loop;
}

/* ---- options ----------------------------------------------------------------- */

void cql_options_init(cql_options *o)
{
    memset(o, 0, sizeof(*o));
    o->contact_points = "127.0.0.1";
    o->port = 9042;
    o->connect_timeout_ms = 5000;
    o->request_timeout_ms = 10000;
    o->heartbeat_ms = 30000;
    o->idle_timeout_ms = 60000;
    o->pool_size = 1;
    o->prepared_cache_size = 1000;
    o->prepare_on_all_hosts = true;
    o->retry = (cql_backoff){CQL_BACKOFF_EXPONENTIAL, CQL_JITTER_FULL, 100, 2000, 2};
    o->reconnect = (cql_backoff){CQL_BACKOFF_EXPONENTIAL, CQL_JITTER_EQUAL, 500, 30000, 0};
    o->breaker_threshold = 5;
    o->breaker_reset_ms = 30000;
    o->compression = true;
    o->token_aware = true;
    o->shard_aware = true;
    o->shard_port_lo = 49152;
    o->shard_port_hi = 65535;
    o->default_consistency = CQL_CONSISTENCY_LOCAL_QUORUM;
    o->default_serial_consistency = CQL_CONSISTENCY_LOCAL_SERIAL;
    o->default_page_size = 5000;
    o->client_timestamps = true;
    o->speculative_delay_ms = 0;
    o->speculative_max = 1;
    o->wait_schema_agreement = true;
    o->schema_agreement_ms = 10000;
    o->tls.verify_peer = true;
    o->tls.verify_hostname = true;
    o->name = "default";
}

static char *dup_opt(const char *s)
{
    return s && s[0] ? strdup(s) : NULL;
}

static bool valid_ident(const char *s)
{
    if (!s || !s[0] || strlen(s) > 48)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return false;
    return true;
}

static int check_backoff(const cql_backoff *b)
{
    return b->base_ms >= 0 && b->cap_ms >= 0 && b->max_attempts >= 0 &&
           (b->kind == CQL_BACKOFF_EXPONENTIAL || b->kind == CQL_BACKOFF_CONSTANT);
}

static int validate(const cql_options *o, char *err, size_t errlen)
{
#define BAD(...)                                                                                   \
    do {                                                                                           \
        if (errlen)                                                                                \
            snprintf(err, errlen, __VA_ARGS__);                                                    \
        return MS_ERR_INVALID;                                                                     \
    } while (0)
    if (!o->contact_points || !o->contact_points[0])
        BAD("contact_points: at least one host is needed");
    if (o->port < 1 || o->port > 65535)
        BAD("port %d: expected 1 to 65535", o->port);
    if (o->keyspace && o->keyspace[0] && !valid_ident(o->keyspace))
        BAD("keyspace \"%s\": expected letters, digits and underscores (at most 48)", o->keyspace);
    if (o->connect_timeout_ms < 1 || o->request_timeout_ms < 1)
        BAD("connect and request timeouts must be positive");
    if (o->pool_size < 1 || o->pool_size > 64)
        BAD("pool_size %d: expected 1 to 64", o->pool_size);
    if (o->prepared_cache_size < 1)
        BAD("prepared_cache_size %d: expected at least 1", o->prepared_cache_size);
    if (!check_backoff(&o->retry) || !check_backoff(&o->reconnect))
        BAD("retry/reconnect backoff: negative values");
    if (o->breaker_threshold < 1 || o->breaker_reset_ms < 1)
        BAD("breaker threshold and reset timeout must be positive");
    if (o->default_consistency < 0 || o->default_consistency > CQL_CONSISTENCY_LOCAL_ONE)
        BAD("default consistency %d is not a consistency level", o->default_consistency);
    if (o->default_serial_consistency != CQL_CONSISTENCY_SERIAL &&
        o->default_serial_consistency != CQL_CONSISTENCY_LOCAL_SERIAL)
        BAD("default serial consistency must be SERIAL or LOCAL_SERIAL");
    if (o->speculative_max < 0 || o->speculative_max > CQL_MAX_ATTEMPTS_ACTIVE - 1)
        BAD("speculative_max %d: expected 0 to %d", o->speculative_max,
            CQL_MAX_ATTEMPTS_ACTIVE - 1);
    if (o->shard_port_lo > o->shard_port_hi || o->shard_port_lo == 0)
        BAD("shard source port range %u-%u is empty", o->shard_port_lo, o->shard_port_hi);
    if ((o->username && o->username[0]) != (o->password != NULL))
        BAD("username and password: set both, or neither");
    return 0;
#undef BAD
}

/* ---- lifecycle ------------------------------------------------------------------ */

static void house_fn(uv_timer_t *t);
static const cql_pool_listener session_pool_listener;
static const cql_cluster_listener session_cluster_listener;
static const cql_request_listener session_request_listener;

/* Frees the strings copied from the options (NULL ones are fine). */
static void free_option_strings(cql_session *s)
{
    free(s->contact_points);
    free(s->keyspace);
    free(s->username);
    free(s->password);
    free(s->local_dc);
    free(s->name);
    free(s->tls_ca);
    free(s->tls_cert);
    free(s->tls_key);
}

int cql_session_new(uv_loop_t *loop, const cql_options *o, cql_session **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    if (!loop || !o)
        return MS_ERR_INVALID;
    int rc = validate(o, err, errlen);
    if (rc < 0)
        return rc;
    cql_session *s = calloc(1, sizeof(*s));
    if (!s)
        return MS_ERR_NOMEM;
    s->loop = loop;
    s->pool_listener = &session_pool_listener;
    s->cluster_listener = &session_cluster_listener;
    s->request_listener = &session_request_listener;
    s->prepared_listener = &cql__request_prepared_listener;
    s->o = *o;
    s->contact_points = strdup(o->contact_points);
    s->keyspace = dup_opt(o->keyspace);
    s->username = dup_opt(o->username);
    s->password = o->password ? strdup(o->password) : NULL;
    s->local_dc = dup_opt(o->local_dc);
    s->name = strdup(o->name && o->name[0] ? o->name : "default");
    s->tls_ca = dup_opt(o->tls.ca_file);
    s->tls_cert = dup_opt(o->tls.cert_file);
    s->tls_key = dup_opt(o->tls.key_file);
    s->rng = cql__rand_seed();
    cql_buf_init(&s->scratch);
    bool nomem = !s->contact_points || !s->name ||
                 (o->keyspace && o->keyspace[0] && !s->keyspace) ||
                 (o->username && o->username[0] && !s->username) || (o->password && !s->password);
    if (nomem || cql__prepared_cache_init(s) < 0) {
        rc = MS_ERR_NOMEM;
        goto fail;
    }
    if (o->tls.enabled) {
        cql_tls_cfg tc = {s->tls_ca, s->tls_cert, s->tls_key, o->tls.verify_peer,
                          o->tls.verify_hostname};
        rc = cql__tls_ctx_new(&tc, &s->ssl_ctx, err, errlen);
        if (rc < 0)
            goto fail;
    }
    s->pool_cfg = (cql_conn_cfg){
        .loop = loop,
        .ssl_ctx = s->ssl_ctx,
        .verify_hostname = o->tls.verify_hostname && o->tls.verify_peer,
        .username = s->username,
        .password = s->password,
        .keyspace = s->keyspace,
        .compression = o->compression,
        .register_events = false,
        .connect_timeout_ms = o->connect_timeout_ms,
        .max_frame = 0,
    };
    s->control_cfg = s->pool_cfg;
    s->control_cfg.keyspace = NULL;
    s->control_cfg.register_events = true;
    if (cql__tq_init(&s->tq, loop) < 0 || uv_timer_init(loop, &s->house) < 0) {
        rc = MS_ERR_IO;
        goto fail;
    }
    s->house.data = s;
    s->open_handles = 2;
    snprintf(s->mlabel, sizeof(s->mlabel), "session=\"%.60s\"", s->name);
    s->m_requests =
        ms_counter_get("msgstore_cql_requests_total", s->mlabel, "CQL requests completed");
    s->m_retries = ms_counter_get("msgstore_cql_retries_total", s->mlabel,
                                  "CQL attempts repeated after a failure");
    s->m_timeouts = ms_counter_get("msgstore_cql_timeouts_total", s->mlabel,
                                   "CQL requests whose deadline passed");
    s->m_spec = ms_counter_get("msgstore_cql_speculative_total", s->mlabel,
                               "CQL speculative executions started");
    s->m_breaker_rej = ms_counter_get("msgstore_cql_breaker_rejections_total", s->mlabel,
                                      "CQL attempts refused by an open circuit breaker");
    s->m_reprepares = ms_counter_get("msgstore_cql_reprepares_total", s->mlabel,
                                     "CQL statements re-prepared after UNPREPARED");
    s->m_latency = ms_histogram_get("msgstore_cql_request_duration_seconds", s->mlabel,
                                    "CQL request latency, retries included");
    s->m_in_flight = ms_gauge_get("msgstore_cql_in_flight", NULL,
                                  "CQL requests in flight over every session of the process");
    s->m_in_flight_max =
        ms_gauge_get("msgstore_cql_in_flight_max", NULL,
                     "The most CQL requests in flight at once over every session of the process");
    s->state = CQL_S_NEW;
    *out = s;
    return 0;
fail:
    if (s->ssl_ctx)
        SSL_CTX_free(s->ssl_ctx);
    cql__lru_destroy(&s->cache);
    free_option_strings(s);
    free(s);
    return rc;
}

int cql_session_connect(cql_session *s, cql_connect_cb cb, void *ud)
{
    if (!s || s->state != CQL_S_NEW)
        return MS_ERR_INVALID;
    s->connect_cb = cb;
    s->connect_ud = ud;
    s->state = CQL_S_CONNECTING;
    uv_timer_start(&s->house, house_fn, 1000, 1000);
    int rc = cql__cluster_start(s);
    if (rc < 0) {
        s->state = CQL_S_NEW;
        uv_timer_stop(&s->house);
        return rc;
    }
    return 0;
}

void cql__connect_done(cql_session *s, const cql_status *st)
{
    if (s->state != CQL_S_CONNECTING)
        return;
    cql_status fail;
    if (!st) {
        /* a pool connection failed: give up only when no host can still make it */
        if (!cql__cluster_ready(s))
            return;
        for (size_t i = 0; i < s->nhosts; i++) {
            cql_host *h = s->hosts[i];
            if (h->pooled && !h->removed && (h->up || h->connecting > 0))
                return;
        }
        char msg[200] = "";
        for (size_t i = 0; i < s->nhosts; i++)
            if (s->hosts[i]->pooled && s->hosts[i]->last_error[0]) {
                snprintf(msg, sizeof(msg), "%s", s->hosts[i]->last_error);
                break;
            }
        cql__status_set(&fail, MS_ERR_UNAVAILABLE, NULL,
                        "no host of the local DC accepted a "
                        "connection%s%s",
                        msg[0] ? ": " : "", msg);
        st = &fail;
    }
    if (st->code < 0 && !cql__cluster_ready(s))
        s->state = CQL_S_FAILED; /* no control connection: nothing to retry */
    else
        s->state = CQL_S_READY; /* hosts keep reconnecting in the background */
    if (st->code == 0)
        MS_INFO("cql", "session %s connected (%zu hosts, local DC %s)", s->name, s->nhosts,
                s->local_dc ? s->local_dc : "?");
    if (st->code < 0) {
        /* requests waiting for the connection get the reason */
        while (s->waiting) {
            cql_request *r = s->waiting;
            s->waiting = r->next;
            r->waiting = false;
            r->next = NULL;
            cql__req_fail_later(r, st->code, "%s", st->message);
        }
    } else {
        cql__req_resume_waiting(s);
    }
    if (!s->connect_reported) {
        s->connect_reported = true;
        if (s->connect_cb)
            s->connect_cb(s, st, s->connect_ud);
    }
}

static void house_fn(uv_timer_t *t)
{
    cql_session *s = t->data;
    int64_t now = cql__now(s);
    for (size_t i = 0; i < s->nhosts; i++) {
        cql_host *h = s->hosts[i];
        cql__pool_tick(h, now);
        if (h->pooled)
            ms_gauge_set(h->g_breaker, cql__breaker_state(&h->breaker, now));
    }
    cql__cluster_tick(s, now);
    /* trim the request free list slowly when idle */
    if (s->in_flight == 0 && s->nfree_reqs > 64) {
        cql_request *r = s->free_reqs;
        s->free_reqs = r->next;
        s->nfree_reqs--;
        cql_buf_free(&r->frame);
        cql_values_free(&r->vals);
        cql_buf_free(&r->paging_state);
        free(r);
    }
}

static void free_hosts(cql_session *s)
{
    for (size_t i = 0; i < s->nhosts; i++) {
        cql_host *h = s->hosts[i];
        cql__spool_free(&h->spool);
        free(h->conns);
        free(h->tokens);
        free(h);
    }
    free(s->hosts);
    free(s->lb_up);
    free(s->lb_local);
    free(s->lb_locals);
    free(s->lb_remotes);
    for (size_t i = 0; i < s->nmaps; i++)
        cql__replica_map_free(&s->maps[i]);
    free(s->maps);
    free(s->ks);
    cql__ring_free(&s->ring);
    cql__tablets_clear(&s->tablets);
}

static void on_session_handle_closed(uv_handle_t *h)
{
    cql_session *s = h->data;
    if (--s->open_handles > 0)
        return;
    cql__tq_free(&s->tq);
    cql_close_cb cb = s->close_cb;
    void *ud = s->close_ud;
    s->state = CQL_S_CLOSED;
    cql__prepared_detach(s);
    cql__lru_destroy(&s->cache);
    while (s->free_reqs) {
        cql_request *r = s->free_reqs;
        s->free_reqs = r->next;
        cql_buf_free(&r->frame);
        cql_values_free(&r->vals);
        cql_buf_free(&r->paging_state);
        free(r);
    }
    free_hosts(s);
    if (s->ssl_ctx)
        SSL_CTX_free(s->ssl_ctx);
    cql_buf_free(&s->scratch);
    free_option_strings(s);
    if (cb)
        cb(ud);
    free(s);
}

static void on_tq_closed(uv_handle_t *h)
{
    cql_tq *q = h->data;
    cql_session *s = (cql_session *)(void *)((char *)q - offsetof(cql_session, tq));
    h->data = s;
    on_session_handle_closed(h);
}

void cql__session_finish_close(cql_session *s)
{
    if (s->state != CQL_S_CLOSING || s->open_handles == 0 ||
        uv_is_closing((uv_handle_t *)&s->house))
        return;
    cql__tq_remove(&s->tq, &s->close_deadline);
    cql__cluster_close(s);
    for (size_t i = 0; i < s->nhosts; i++)
        cql__pool_close(s->hosts[i], "session closed");
    uv_timer_stop(&s->house);
    s->house.data = s;
    uv_close((uv_handle_t *)&s->house, on_session_handle_closed);
    cql__tq_close(&s->tq, on_tq_closed);
}

static void close_deadline_fn(cql_tq_node *n)
{
    cql_session *s = (cql_session *)((char *)n - offsetof(cql_session, close_deadline));
    cql__session_close_requests(s, MS_ERR_SHUTDOWN,
                                "the CQL session closed before the request completed");
    cql__session_finish_close(s);
}

void cql_session_close(cql_session *s, int64_t deadline_ms, cql_close_cb cb, void *ud)
{
    if (!s || s->state >= CQL_S_CLOSING)
        return;
    bool was_connecting = s->state == CQL_S_CONNECTING;
    s->close_cb = cb;
    s->close_ud = ud;
    s->state = CQL_S_CLOSING;
    /* parked requests have nothing to wait for any more */
    cql__req_close_all(s, MS_ERR_SHUTDOWN, "the CQL session is closing");
    if (was_connecting && !s->connect_reported) {
        s->connect_reported = true;
        cql_status st;
        cql__status_set(&st, MS_ERR_SHUTDOWN, NULL, "the CQL session was closed while connecting");
        if (s->connect_cb)
            s->connect_cb(s, &st, s->connect_ud);
    }
    if (s->in_flight == 0) {
        cql__session_finish_close(s);
        return;
    }
    cql__tq_add(&s->tq, &s->close_deadline,
                uv_now(s->loop) + (uint64_t)(deadline_ms > 0 ? deadline_ms : 0), close_deadline_fn);
}

/* ---- what the control connection reports (cql_cluster_listener) ------------------- */

/* The hosts, tokens or keyspaces changed: rebuild the views, then open or close pools. */
static void cluster_topology(cql_session *s)
{
    cql__hosts_rebuild(s);
    /* pools: local hosts always, remote ones when allowed */
    for (size_t i = 0; i < s->nhosts; i++) {
        cql_host *h = s->hosts[i];
        bool want = !h->removed && (h->local || s->o.allow_remote_dc) &&
                    (!s->o.only_contact_points || h->contact);
        if (want && !h->pooled) {
            h->pooled = true;
            cql__pool_fill(h);
        } else if (!want && h->pooled) {
            cql__pool_close(h, h->removed ? "host removed" : "host not in the local DC");
        }
    }
}

static void cluster_host_event(cql_session *s, cql_host *h, cql_host_event ev)
{
    cql__host_event(s, h, ev);
}

static void cluster_status_up(cql_session *s, cql_host *h)
{
    (void)s;
    cql__pool_status_up(h);
}

static void cluster_schema_changed(cql_session *s, cql_str ks, cql_str table)
{
    cql__prepared_schema_changed(s, ks, table);
}

static void cluster_schema_agreed(cql_session *s, cql_request *r, void *box)
{
    (void)s;
    cql__req_complete_box(r, box);
}

static const cql_cluster_listener session_cluster_listener = {
    cluster_topology,       cluster_host_event,    cluster_status_up,
    cluster_schema_changed, cluster_schema_agreed, cql__connect_done,
};

/* ---- what the pools report (cql_pool_listener) ------------------------------------ */

static void pool_host_up(cql_host *h, cql_conn *c, bool again)
{
    cql_session *s = h->s;
    if (again)
        cql__reprepare_all_on(s, h, c); /* the node may have restarted and forgotten them */
    cql__host_event(s, h, CQL_HOST_UP);
    if (s->state == CQL_S_CONNECTING) {
        cql_status st;
        memset(&st, 0, sizeof(st));
        st.server_code = -1;
        snprintf(st.host, sizeof(st.host), "%s", h->label);
        cql__connect_done(s, &st);
    }
}

static void pool_host_down(cql_host *h, const char *why)
{
    (void)why;
    cql__host_event(h->s, h, CQL_HOST_DOWN);
}

static void pool_conn_failed(cql_host *h)
{
    if (h->s->state == CQL_S_CONNECTING)
        cql__connect_done(h->s, NULL);
}

static const cql_pool_listener session_pool_listener = {pool_host_up, pool_host_down,
                                                        pool_conn_failed};

void cql__host_event(cql_session *s, cql_host *h, cql_host_event ev)
{
    if (!s->o.on_host_event)
        return;
    cql_host_info info;
    cql__host_info(s, h, &info);
    s->o.on_host_event(s, ev, &info, s->o.on_host_event_ud);
}

void cql_session_reconnect_now(cql_session *s)
{
    if (!s || s->state >= CQL_S_CLOSING)
        return;
    for (size_t i = 0; i < s->nhosts; i++)
        cql__pool_reconnect_now(s->hosts[i]);
    cql__cluster_reconnect_now(s);
}

void cql__session_keyspace_changed(cql_session *s, const char *ks)
{
    if (!valid_ident(ks) || (s->keyspace && strcmp(s->keyspace, ks) == 0))
        return;
    char *k = strdup(ks);
    if (!k)
        return;
    free(s->keyspace);
    s->keyspace = k;
    s->pool_cfg.keyspace = k;
    /* switch the connections opened before */
    char q[80];
    snprintf(q, sizeof(q), "USE \"%s\"", ks);
    for (size_t i = 0; i < s->nhosts; i++) {
        cql_host *h = s->hosts[i];
        for (int j = 0; j < h->nconns; j++)
            if (cql__conn_ready(h->conns[j]))
                cql__conn_send_simple(h->conns[j], q);
    }
    MS_INFO("cql", "session %s: keyspace is now %s", s->name, ks);
}

void cql_session_server_features(const cql_session *s, cql_server_features *out)
{
    *out = s->server;
}

void cql_session_stats_get(cql_session *s, cql_session_stats *out)
{
    *out = s->stats;
    out->prepared_hits = s->cache.hits;
    out->prepared_misses = s->cache.misses;
    out->prepared_evictions = s->cache.evictions;
    out->prepared_cached = s->cache.count;
    out->in_flight = s->in_flight - s->internal_in_flight;
    int c = 0;
    for (size_t i = 0; i < s->nhosts; i++)
        c += s->hosts[i]->ready;
    out->connections = c;
}

/* ---- what the requests report (cql_request_listener) ------------------------------ */

static const cql_request_listener session_request_listener = {
    cql__session_keyspace_changed,
    cql__session_finish_close,
};
