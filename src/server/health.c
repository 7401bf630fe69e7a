/* SPDX-License-Identifier: Apache-2.0 */
/*
 * health.c - probes and metrics:
 *   /health/live   the process answers (no database call: a stuck database
 *                  must not get the process restarted)
 *   /health/ready  a ping through the store's read path answered within
 *                  MSGSTORE_READY_THRESHOLD; else 503 as soon as the
 *                  threshold passes (the probe never waits on a dead backend);
 *                  the answer is reused for MSGSTORE_READY_CACHE
 *   /health        details: backend, schema, the last background check, and
 *                  the store's own details (store_health: hosts, keyspace,
 *                  tables, breaker) from the same checker
 *   /metrics       Prometheus text
 * The background checker is a thread that pings with the blocking API every
 * MSGSTORE_HEALTH_INTERVAL and keeps the last result for /health.
 */
#include "server/server_internal.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* Background checker                                                 */

static void record(srv *s, int status, const char *detail, const store_ping_result *res,
                   uint64_t wall_us)
{
    srv__health *h = &s->health;
    pthread_mutex_lock(&h->mu);
    bool was_ok = h->ok, first = !h->checked;
    h->checked = true;
    h->checks++;
    h->at_ms = srv__unix_ms();
    h->status = status;
    if (status == 0) {
        h->latency_us = res->latency_us > wall_us ? res->latency_us : wall_us;
        h->schema_version = res->schema_version;
        h->ok = h->latency_us <= (uint64_t)s->cfg.ready_threshold_ms * 1000;
        if (h->ok)
            h->detail[0] = '\0';
        else
            snprintf(h->detail, sizeof h->detail,
                     "the database answered in %.1f ms, over MSGSTORE_READY_THRESHOLD",
                     (double)h->latency_us / 1000.0);
    } else {
        h->ok = false;
        h->latency_us = wall_us;
        snprintf(h->detail, sizeof h->detail, "%s",
                 detail && detail[0] ? detail : ms_err_str(status));
    }
    if (!h->ok)
        h->failures++;
    h->inflight_since_ms = 0;
    bool ok = h->ok;
    char d[256];
    snprintf(d, sizeof d, "%s", h->detail);
    pthread_mutex_unlock(&h->mu);
    if (ok && !was_ok && !first)
        MS_INFO("health", "database reachable again");
    else if (!ok && (was_ok || first))
        MS_WARN("health", "database check failed: %s", d);
}

/*
 * The store's details (store_health) for /health: asked after each ping,
 * also when the ping failed (an outage is when the hosts and breakers
 * matter). Kept apart from the ping's result so a slow details query never
 * makes the check look hung.
 */
static void record_details(srv *s)
{
    srv__health *h = &s->health;
    char detail[256] = "";
    store_health_result *res = NULL;
    int rc = store_health_sync(s->st, &res, detail, sizeof detail);
    pthread_mutex_lock(&h->mu);
    bool was_ok = h->store && h->store->ok;
    store_health_result *old = h->store;
    h->store = res;
    h->store_status = rc;
    snprintf(h->store_error, sizeof h->store_error, "%s",
             rc == 0     ? ""
             : detail[0] ? detail
                         : ms_err_str(rc));
    h->store_at_ms = srv__unix_ms();
    pthread_mutex_unlock(&h->mu);
    store_free(old);
    if (res && !res->ok && (was_ok || !old))
        MS_WARN("health", "store: %s", res->error ? res->error : "not healthy");
    else if (res && res->ok && old && !was_ok)
        MS_INFO("health", "store healthy again");
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void *checker(void *arg)
{
    srv *s = arg;
    srv__health *h = &s->health;
    for (;;) {
        char detail[256] = "";
        store_ping_result *res = NULL;
        uint64_t t0 = mono_us();
        pthread_mutex_lock(&h->mu);
        h->inflight_since_ms = srv__unix_ms();
        pthread_mutex_unlock(&h->mu);
        int rc = store_ping_sync(s->st, &res, detail, sizeof detail);
        record(s, rc, detail, res, mono_us() - t0);
        store_free(res);
        record_details(s);

        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        int64_t ms = s->cfg.health_interval_ms;
        deadline.tv_sec += (time_t)(ms / 1000);
        deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&h->mu);
        while (!h->stop && pthread_cond_timedwait(&h->cv, &h->mu, &deadline) != ETIMEDOUT)
            ;
        bool stop = h->stop;
        pthread_mutex_unlock(&h->mu);
        if (stop)
            return NULL;
    }
}

int srv__health_start(srv *s)
{
    if (pthread_create(&s->health.thread, NULL, checker, s) != 0)
        return MS_ERR_NOMEM;
    s->health.running = true;
    return 0;
}

void srv__health_stop(srv *s)
{
    if (!s->health.running)
        return;
    pthread_mutex_lock(&s->health.mu);
    s->health.stop = true;
    pthread_cond_broadcast(&s->health.cv);
    pthread_mutex_unlock(&s->health.mu);
    pthread_join(s->health.thread, NULL);
    s->health.running = false;
    store_free(s->health.store);
    s->health.store = NULL;
}

/* ------------------------------------------------------------------ */
/* /health/live, /health/ready                                        */

static void h_live(http_request *r, void *ctx)
{
    (void)ctx;
    static const char body[] = "{\"status\":\"alive\"}\n";
    http_respond(r, 200, "application/json", body, sizeof body - 1);
}

/*
 * /health/ready is open (load balancers and orchestrators call it without a
 * token), so one call must not cost a database round trip: the answer is
 * kept for MSGSTORE_READY_CACHE and reused by every worker, and while one
 * check runs, calls get the last answer. Where /health is behind a token
 * (MSGSTORE_AUTH_METRICS), a failure says only which kind it was: the
 * database's own error text is for /health.
 */
typedef struct {
    srv *s;
    http_request *r;
    uv_timer_t timer;
    uint64_t t0;
    bool answered, ping_done, timer_closed;
} ready_call;

static void ready_maybe_free(ready_call *c)
{
    if (c->ping_done && c->timer_closed)
        free(c);
}

static void on_ready_timer_closed(uv_handle_t *h)
{
    ready_call *c = h->data;
    c->timer_closed = true;
    ready_maybe_free(c);
}

static void ready_send(http_request *r, int status, const char *body, size_t len)
{
    if (status != 200)
        http_response_header(r, "retry-after", "1");
    http_respond(r, status, "application/json", body, len);
}

/* Answers the call and keeps the answer for the next ones. */
static void ready_answer(ready_call *c, int status, json_t *body)
{
    srv__health *h = &c->s->health;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    pthread_mutex_lock(&h->mu);
    h->ready_inflight = false;
    if (text && strlen(text) < sizeof h->ready_body) {
        memcpy(h->ready_body, text, strlen(text) + 1);
        h->ready_status = status;
        h->ready_at_ms = mono_us() / 1000;
        if (h->ready_at_ms == 0)
            h->ready_at_ms = 1;
    }
    pthread_mutex_unlock(&h->mu);
    if (text)
        ready_send(c->r, status, text, strlen(text));
    else
        http_respond_error(c->r, 503, ms_err_name(MS_ERR_NOMEM), "out of memory");
    free(text);
}

static void ready_fail(ready_call *c, const char *code, const char *detail)
{
    const char *msg = c->s->cfg.auth_metrics && !c->s->open_api
                          ? "the database check failed (details: /health)"
                          : detail;
    ready_answer(c, 503, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

static void on_ready_timeout(uv_timer_t *t)
{
    ready_call *c = t->data;
    if (!c->answered) {
        c->answered = true;
        char msg[160];
        snprintf(msg, sizeof msg,
                 "the database did not answer within %lld ms "
                 "(MSGSTORE_READY_THRESHOLD)",
                 (long long)c->s->cfg.ready_threshold_ms);
        ready_fail(c, ms_err_name(MS_ERR_TIMEOUT), msg);
    }
    uv_close((uv_handle_t *)&c->timer, on_ready_timer_closed);
}

static void on_ready_ping(int status, const char *detail, const store_ping_result *res, void *ud)
{
    ready_call *c = ud;
    c->ping_done = true;
    if (!c->answered) {
        c->answered = true;
        uint64_t wall_us = (mono_us() - c->t0);
        uint64_t us = status == 0 && res->latency_us > wall_us ? res->latency_us : wall_us;
        if (status) {
            ready_fail(c, ms_err_name(status), detail && detail[0] ? detail : ms_err_str(status));
        } else if (us > (uint64_t)c->s->cfg.ready_threshold_ms * 1000) {
            ready_fail(c, ms_err_name(MS_ERR_TIMEOUT),
                       "the database answered slower than MSGSTORE_READY_THRESHOLD");
        } else {
            ready_answer(c, 200,
                         json_pack("{s:s,s:s,s:f}", "status", "ready", "backend",
                                   res->backend ? res->backend : "?", "latency_ms",
                                   (double)us / 1000.0));
        }
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, on_ready_timer_closed);
        return;
    }
    ready_maybe_free(c);
}

/* Answers from the kept answer when it is fresh, or when a check runs and
 * there is one; else marks a check as running. Returns true when answered. */
static bool ready_cached(srv *s, http_request *r)
{
    srv__health *h = &s->health;
    char body[sizeof h->ready_body];
    int status = 0;
    uint64_t now = mono_us() / 1000;
    pthread_mutex_lock(&h->mu);
    bool fresh = h->ready_at_ms && now - h->ready_at_ms < (uint64_t)s->cfg.ready_cache_ms;
    if (h->ready_at_ms && (fresh || h->ready_inflight)) {
        status = h->ready_status;
        memcpy(body, h->ready_body, sizeof body);
    } else {
        h->ready_inflight = true;
    }
    pthread_mutex_unlock(&h->mu);
    if (!status)
        return false;
    ready_send(r, status, body, strlen(body));
    return true;
}

static void h_ready(http_request *r, void *ctx)
{
    srv *s = ctx;
    if (ready_cached(s, r))
        return;
    ready_call *c = calloc(1, sizeof *c);
    if (!c) {
        pthread_mutex_lock(&s->health.mu);
        s->health.ready_inflight = false;
        pthread_mutex_unlock(&s->health.mu);
        http_respond_error(r, 503, ms_err_name(MS_ERR_NOMEM), "out of memory");
        return;
    }
    c->s = s;
    c->r = r;
    c->t0 = mono_us();
    int rc = store_ping(s->st, http_request_loop(r), on_ready_ping, c);
    if (rc) {
        c->answered = c->ping_done = c->timer_closed = true;
        ready_fail(c, ms_err_name(rc), ms_err_str(rc));
        free(c);
        return;
    }
    uv_timer_init(http_request_loop(r), &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, on_ready_timeout, (uint64_t)s->cfg.ready_threshold_ms, 0);
}

/* ------------------------------------------------------------------ */
/* /health                                                            */

static json_t *iso_time(uint64_t unix_ms)
{
    if (!unix_ms)
        return json_null();
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char b[40];
    size_t n = strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(b + n, sizeof b - n, ".%03dZ", (int)(unix_ms % 1000));
    return json_string(b);
}

static json_t *tables_json(const store_health_result *d)
{
    json_t *present = json_array(), *missing = json_array();
    for (size_t i = 0; i < d->ntables; i++)
        json_array_append_new(d->tables[i].present ? present : missing,
                              json_string(d->tables[i].name));
    return json_pack("{s:b,s:I,s:o,s:o}", "checked", d->tables_checked, "expected",
                     (json_int_t)d->ntables, "present", present, "missing", missing);
}

static json_t *hosts_json(const store_health_result *d)
{
    json_t *a = json_array();
    for (size_t i = 0; i < d->nhosts; i++) {
        const store_health_host *x = &d->hosts[i];
        json_array_append_new(
            a, json_pack("{s:s,s:i,s:s,s:s,s:s,s:b,s:b,s:s,s:i,s:i,s:I,s:s}", "address", x->address,
                         "port", x->port, "dc", x->dc, "rack", x->rack, "state", x->state, "up",
                         x->up, "local", x->local, "breaker", x->breaker, "connections",
                         x->connections, "sessions_up", x->sessions_up, "in_flight",
                         (json_int_t)x->in_flight, "release_version", x->release_version));
    }
    return a;
}

/* The "store" section: the last details (h->mu held). */
static json_t *store_json(const srv__health *h)
{
    const store_health_result *d = h->store;
    if (!d) {
        if (!h->store_at_ms)
            return json_null(); /* not asked yet */
        return json_pack("{s:o,s:b,s:s}", "at", iso_time(h->store_at_ms), "ok", false, "error",
                         h->store_error);
    }
    json_t *o = json_pack("{s:o,s:b,s:o,s:f,s:s,s:i,s:i,s:o}", "at", iso_time(h->store_at_ms), "ok",
                          d->ok, "error", d->error ? json_string(d->error) : json_null(),
                          "latency_ms", (double)d->latency_us / 1000.0, "backend", d->backend,
                          "schema_version", d->schema_version, "schema_expected",
                          d->schema_expected, "tables", tables_json(d));
    if (!o)
        return json_null();
    if (strcmp(d->backend, "sqlite") == 0) {
        json_object_set_new(o, "sqlite",
                            json_pack("{s:s,s:s,s:I}", "path", d->path ? d->path : "",
                                      "journal_mode", d->journal_mode ? d->journal_mode : "",
                                      "size_bytes", (json_int_t)d->size_bytes));
        return o;
    }
    json_t *repl = json_object();
    for (size_t i = 0; i < d->nreplication; i++)
        json_object_set_new(repl, d->replication[i].key, json_string(d->replication[i].value));
    json_object_set_new(o, "keyspace",
                        json_pack("{s:s,s:b,s:o}", "name", d->keyspace ? d->keyspace : "", "exists",
                                  d->keyspace_found, "replication", repl));
    json_object_set_new(
        o, "cluster",
        json_pack("{s:s,s:I,s:I,s:i,s:o,s:o}", "local_dc", d->local_dc ? d->local_dc : "",
                  "hosts_up", (json_int_t)d->hosts_up, "hosts_down", (json_int_t)d->hosts_down,
                  "schema_versions", d->schema_versions, "schema_agreement",
                  d->schema_versions ? json_boolean(d->schema_versions == 1) : json_null(), "hosts",
                  hosts_json(d)));
    json_object_set_new(o, "breaker", json_string(d->breaker ? d->breaker : "open"));
    json_object_set_new(o, "breakers_open", json_integer((json_int_t)d->breakers_open));
    return o;
}

static void h_health(http_request *r, void *ctx)
{
    srv *s = ctx;
    srv__health *h = &s->health;
    pthread_mutex_lock(&h->mu);
    bool checked = h->checked, ok = h->ok;
    uint64_t now = srv__unix_ms();
    json_t *error = checked && !ok ? json_string(h->detail) : json_null();
    /* a check that has been waiting longer than the ready threshold is a
     * failure already: do not show the last (older) result as current */
    if (h->inflight_since_ms && now > h->inflight_since_ms &&
        now - h->inflight_since_ms > (uint64_t)s->cfg.ready_threshold_ms) {
        char msg[160];
        snprintf(msg, sizeof msg, "the database has not answered the check for %llu ms",
                 (unsigned long long)(now - h->inflight_since_ms));
        json_decref(error);
        error = json_string(msg);
        checked = true;
        ok = false;
    }
    json_t *last =
        json_pack("{s:o,s:b,s:o,s:o,s:I,s:I}", "at", iso_time(h->at_ms), "ok", ok, "latency_ms",
                  h->checked ? json_real((double)h->latency_us / 1000.0) : json_null(), "error",
                  error, "checks", (json_int_t)h->checks, "failures", (json_int_t)h->failures);
    int schema = h->schema_version;
    json_t *details = store_json(h);
    bool store_ok = !h->store || h->store->ok;
    pthread_mutex_unlock(&h->mu);

    store_stats st;
    store_get_stats(s->st, &st);
    const char *status = !checked ? "starting" : ok ? "ok" : "unavailable";
    json_t *o = json_pack(
        "{s:s,s:s,s:s,s:{s:s,s:i,s:I},s:o,s:I,s:I,s:{s:i,s:i},s:{s:b,s:b,s:b}}", "status", status,
        "version", MSGSTORE_VERSION, "profile", ms_profile_name(s->cfg.profile), "database",
        "backend", store_backend_name(s->st), "schema_version", schema, "queue_depth",
        (json_int_t)st.queue_depth, "last_check", last, "uptime_s",
        (json_int_t)((srv__unix_ms() - s->started_ms) / 1000), "check_interval_ms",
        (json_int_t)s->cfg.health_interval_ms, "http", "workers", http_server_workers(s->http),
        "port", http_server_port(s->http), "auth", "api_tokens", !s->open_api, "probes",
        s->cfg.auth_probes && !s->open_api, "metrics", s->cfg.auth_metrics && !s->open_api);
    if (o && ms_config_backend(&s->cfg) == MS_BACKEND_SCYLLA) {
        json_t *db = json_object_get(o, "database");
        json_object_set_new(db, "contact_points", json_string(s->cfg.store.scylla_contact_points));
        json_object_set_new(db, "keyspace", json_string(s->cfg.store.scylla_keyspace));
        json_object_set_new(db, "local_datacenter",
                            json_string(s->cfg.store.scylla_local_datacenter));
    }
    if (o) {
        json_object_set_new(o, "store", details);
        details = NULL;
        /* serving, but something the details show is wrong (a host down, a table missing) */
        if (!store_ok && checked && ok)
            json_object_set_new(o, "status", json_string("degraded"));
    }
    json_decref(details);
    for (int i = 0; o && i < s->nhx; i++) {
        bool degraded = false;
        json_t *x = s->hx[i].fn(s->hx[i].ctx, &degraded);
        if (x)
            json_object_set_new(o, s->hx[i].name, x);
        if (degraded && checked && ok)
            json_object_set_new(o, "status", json_string("degraded"));
    }
    http_respond_json(r, checked && !ok ? 503 : 200, o);
}

/* ------------------------------------------------------------------ */
/* /metrics                                                           */

static void h_metrics(http_request *r, void *ctx)
{
    (void)ctx;
    size_t len = 0;
    char *text = ms_metrics_render(&len);
    if (!text) {
        http_respond_error(r, 503, ms_err_name(MS_ERR_NOMEM), "out of memory");
        return;
    }
    http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

int srv__routes_ops(srv *s)
{
    http_server *h = s->http;
    const unsigned P = HTTP_ROUTE_AUTH_PROBE;
    int rc = 0;
    rc |= http_server_route(h, HTTP_GET, "/health/live", P | HTTP_ROUTE_NO_LOG, h_live, s);
    rc |= http_server_route(h, HTTP_GET, "/health/ready", P | HTTP_ROUTE_NO_LOG, h_ready, s);
    /* the details (paths, hosts, versions, errors) go with /metrics: token in production */
    rc |= http_server_route(h, HTTP_GET, "/health", HTTP_ROUTE_AUTH_METRICS, h_health, s);
    rc |= http_server_route(h, HTTP_GET, "/metrics", HTTP_ROUTE_AUTH_METRICS | HTTP_ROUTE_NO_LOG,
                            h_metrics, s);
    return rc ? MS_ERR_INVALID : 0;
}
