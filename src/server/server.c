/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.c - the msgstore server: configuration to http_server options, the
 * bearer-token guard, store errors to HTTP answers, the commit hook, and the
 * life cycle (start, graceful stop).
 */
#include "server/server_internal.h"
#include "core/error.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const event_names[SRV_EV_COUNT] = {"message.created",  "message.updated",
                                                      "message.deleted",  "reaction.added",
                                                      "reaction.removed", "pin.added",
                                                      "pin.removed",      "read_position.updated",
                                                      "channel.updated",  "telegram_sync.updated"};

const char *srv_event_name(srv_event_kind k)
{
    return (unsigned)k < SRV_EV_COUNT ? event_names[k] : NULL;
}

/* ------------------------------------------------------------------ */
/* Answers                                                            */

void srv__store_error(srv *s, http_request *r, int status, const char *detail, bool from_body)
{
    const char *msg = detail && detail[0] ? detail : ms_err_str(status);
    switch (status) {
    case MS_ERR_INVALID:
        if (from_body)
            http_respond_error(r, 422, ms_err_name(MS_ERR_UNPROCESSABLE), "%s", msg);
        else
            http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID), "%s", msg);
        return;
    case MS_ERR_UNAVAILABLE:
    case MS_ERR_TIMEOUT:
    case MS_ERR_SHUTDOWN:
    case MS_ERR_CLOCK:
    case MS_ERR_IO: { /* a connection to the database broke, a disk failed: try again later */
        char ra[16];
        snprintf(ra, sizeof ra, "%d", s->retry_after_s);
        http_response_header(r, "retry-after", ra);
        if (status == MS_ERR_IO)
            MS_ERROR("http", "rid=%s route=%s: store I/O error: %s", http_request_id(r),
                     http_request_route(r), msg);
        else
            MS_WARN("http", "rid=%s %s: %s", http_request_id(r), ms_err_name(status), msg);
        http_respond_error(r, 503, ms_err_name(status), "%s", msg);
        return;
    }
    case MS_ERR_NOT_FOUND:
    case MS_ERR_CONFLICT:
    case MS_ERR_TOO_LARGE:
    case MS_ERR_UNPROCESSABLE:
    case MS_ERR_UNAUTHORIZED:
    case MS_ERR_FORBIDDEN:
    case MS_ERR_RATE_LIMITED:
        http_respond_ms_error(r, status, s->retry_after_s, "%s", msg);
        return;
    default:
        MS_ERROR("http", "rid=%s route=%s: store failed: %s (%s)", http_request_id(r),
                 http_request_route(r), ms_err_name(status), msg);
        http_respond_error(r, 500, ms_err_name(status), "%s", ms_err_str(status));
        return;
    }
}

void srv__respond_publish_text(srv *s, http_request *r, int status, const char *json, size_t len,
                               bool oom, int ev_kind, ms_xid channel_id, uint64_t message_id)
{
    if (oom || !json) {
        http_respond_error(r, 500, ms_err_name(MS_ERR_NOMEM), "out of memory");
        return;
    }
    if (ev_kind >= 0 && s->hook) {
        size_t evlen = len;
        while (evlen && json[evlen - 1] == '\n')
            evlen--;
        srv_event ev = {.kind = (srv_event_kind)ev_kind,
                        .channel_id = channel_id,
                        .message_id = message_id,
                        .json = json,
                        .json_len = evlen,
                        .worker = http_request_worker(r),
                        .loop = http_request_loop(r),
                        .request_id = http_request_id(r)};
        s->hook(&ev, s->hook_ctx);
    }
    http_respond(r, status, "application/json", json, len);
}

void srv__respond_publish(srv *s, http_request *r, int status, json_t *body, int ev_kind,
                          ms_xid channel_id, uint64_t message_id)
{
    if (ev_kind < 0 || !s->hook || !body) {
        http_respond_json(r, status, body);
        return;
    }
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    srv__respond_publish_text(s, r, status, text, text ? strlen(text) : 0, !text, ev_kind,
                              channel_id, message_id);
    free(text);
}

/* ------------------------------------------------------------------ */
/* Worker hooks                                                       */

static void on_worker_start(http_server *h, int worker, uv_loop_t *loop, void *ctx)
{
    srv *s = ctx;
    if (s->x_start)
        s->x_start(h, worker, loop, s->x_ctx);
}

static void on_shutdown(http_server *h, int worker, uv_loop_t *loop, void *ctx)
{
    srv *s = ctx;
    store_loop_drain(s->st, loop, s->cfg.store.shutdown_timeout_ms);
    if (s->x_shutdown)
        s->x_shutdown(h, worker, loop, s->x_ctx);
}

static void on_worker_stop(http_server *h, int worker, uv_loop_t *loop, void *ctx)
{
    srv *s = ctx;
    if (s->x_stop)
        s->x_stop(h, worker, loop, s->x_ctx);
    store_loop_detach(s->st, loop);
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                         */

int srv_new(const ms_config *cfg, store *st, srv **out, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    srv *s = calloc(1, sizeof *s);
    if (!s)
        return MS_ERR_NOMEM;
    s->cfg = *cfg;
    s->st = st;
    s->idf = store_id_format(st);
    pthread_mutex_init(&s->health.mu, NULL);
    pthread_cond_init(&s->health.cv, NULL);
    int rc = auth_load(cfg, &s->tokens, err, errlen);
    if (rc == 0)
        rc = auth_load_list(cfg->ops_tokens, "MSGSTORE_OPS_TOKENS", &s->ops_tokens, err, errlen);
    if (rc == 0)
        rc = jwt_keys_load(cfg, &s->jwt, err, errlen);
    if (rc) {
        srv_free(s);
        return rc;
    }
    if (cfg->rate_user_rps > 0 || cfg->rate_service_rps > 0) {
        s->rl = rl_new((size_t)cfg->rate_table_size);
        if (!s->rl) {
            srv_free(s);
            return MS_ERR_NOMEM;
        }
    }
    s->c_rl_user = ms_counter_get("msgstore_rate_limited_total", "kind=\"user\"",
                                  "requests refused with 429 by the rate limits, by token kind");
    s->c_rl_service = ms_counter_get("msgstore_rate_limited_total", "kind=\"service\"",
                                     "requests refused with 429 by the rate limits, by token kind");
    if (auth_count(s->tokens) == 0 && !s->jwt) {
        if (cfg->profile == MS_PROFILE_PRODUCTION) {
            snprintf(err, errlen,
                     "the production profile needs API tokens: set MSGSTORE_API_TOKENS or "
                     "MSGSTORE_API_TOKEN_FILE (or user tokens: MSGSTORE_JWT_*)");
            srv_free(s);
            return MS_ERR_INVALID;
        }
        s->open_api = true;
    }
    s->retry_after_s = 1;
    if (ms_config_backend(cfg) == MS_BACKEND_SCYLLA) {
        int64_t r = cfg->store.scylla_breaker_reset_timeout_ms / 1000;
        s->retry_after_s = r < 1 ? 1 : r > 30 ? 30 : (int)r;
    }

    http_server_options o = {
        .bind = cfg->bind,
        .port = cfg->port,
        .workers = cfg->workers,
        .max_body_bytes = (size_t)cfg->max_body_bytes,
        .max_header_bytes = 16 * 1024,
        .idle_timeout_ms = (uint64_t)cfg->idle_timeout_ms,
        .request_timeout_ms = (uint64_t)cfg->request_timeout_ms,
        .max_connections = cfg->max_connections,
        .ws_max_queued = (size_t)cfg->ws_max_queued,
        .shutdown_timeout_ms = (uint64_t)cfg->store.shutdown_timeout_ms,
        .tls_cert_file = cfg->tls_cert,
        .tls_key_file = cfg->tls_key,
        .log_json = strcmp(cfg->log_format, "json") == 0,
        .access_log = true,
        .cors_origins = cfg->cors_origins,
        .cors_max_age_s = (int)(cfg->cors_max_age_ms / 1000),
        .guard = srv__guard,
        .guard_ctx = s,
        .on_worker_start = on_worker_start,
        .on_shutdown = on_shutdown,
        .on_worker_stop = on_worker_stop,
        .hook_ctx = s,
    };
    rc = http_server_new(&o, &s->http, err, errlen);
    if (rc == 0)
        rc = srv__routes_messages(s);
    if (rc == 0)
        rc = srv__routes_other(s);
    if (rc == 0)
        rc = srv__routes_ops(s);
    if (rc == 0)
        rc = srv__routes_search(s);
    if (rc == 0)
        rc = srv__routes_console(s);
    if (rc) {
        if (!err[0])
            snprintf(err, errlen, "cannot set the routes up: %s", ms_err_str(rc));
        srv_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

http_server *srv_http(srv *s)
{
    return s->http;
}

store *srv_store(const srv *s)
{
    return s->st;
}

void srv_set_commit_hook(srv *s, srv_commit_hook_fn fn, void *ctx)
{
    s->hook = fn;
    s->hook_ctx = ctx;
}

void srv_set_worker_hooks(srv *s, http_worker_hook_fn on_start, http_worker_hook_fn on_shutdown_fn,
                          http_worker_hook_fn on_stop, void *ctx)
{
    s->x_start = on_start;
    s->x_shutdown = on_shutdown_fn;
    s->x_stop = on_stop;
    s->x_ctx = ctx;
}

void srv_set_health_section(srv *s, const char *name, srv_health_section_fn fn, void *ctx)
{
    for (int i = 0; i < s->nhx; i++) {
        if (strcmp(s->hx[i].name, name) == 0) { /* the same name again: replaced */
            s->hx[i].fn = fn;
            s->hx[i].ctx = ctx;
            return;
        }
    }
    if (s->nhx == SRV_HEALTH_SECTIONS_MAX) {
        MS_ERROR("http", "srv_set_health_section: more than %d sections, %s left out",
                 SRV_HEALTH_SECTIONS_MAX, name);
        return;
    }
    s->hx[s->nhx].name = name;
    s->hx[s->nhx].fn = fn;
    s->hx[s->nhx].ctx = ctx;
    s->nhx++;
}

int srv_start(srv *s, char *err, size_t errlen)
{
    s->started_ms = srv__unix_ms();
    if (s->open_api)
        MS_WARN("http",
                "NO API TOKEN CONFIGURED: every /v1 route is open to anyone who can reach "
                "%s:%d. Set MSGSTORE_API_TOKENS or MSGSTORE_API_TOKEN_FILE (the "
                "production profile refuses to start without).",
                s->cfg.bind, s->cfg.port);
    int rc = http_server_start(s->http, err, errlen);
    if (rc)
        return rc;
    rc = srv__health_start(s);
    if (rc) {
        snprintf(err, errlen, "cannot start the health checker");
        http_server_stop(s->http);
        return rc;
    }
    return 0;
}

int srv_port(const srv *s)
{
    return http_server_port(s->http);
}

int srv_stop(srv *s)
{
    int cut = http_server_stop(s->http);
    srv__health_stop(s);
    return cut;
}

void srv_free(srv *s)
{
    if (!s)
        return;
    http_server_free(s->http);
    auth_free(s->tokens);
    auth_free(s->ops_tokens);
    jwt_keys_free(s->jwt);
    rl_free(s->rl);
    store_free(s->health.store);
    pthread_mutex_destroy(&s->health.mu);
    pthread_cond_destroy(&s->health.cv);
    free(s);
}
