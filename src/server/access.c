/* SPDX-License-Identifier: Apache-2.0 */
/*
 * access.c - who may call what: the guard in front of every /v1 route.
 *
 * Two kinds of callers:
 *   - service tokens (MSGSTORE_API_TOKENS, _FILE): the platform's backend;
 *     every right, rate-limited per token;
 *   - user tokens (JWT, jwt.h): one user, held to its claims, rate-limited
 *     per sub. A user token acts only as its sub (a user id left out of the
 *     request is filled in from it, another one gets 403), only on its
 *     channels (403), within its scope (read, write), and only on the routes
 *     of the policy table below; every other route (pins, channel metadata,
 *     Telegram) needs a service token.
 * The token comes in the Authorization header, or as ?access_token= on the
 * two routes browsers cannot send headers to (WebSocket, SSE). It is never
 * logged (the access log writes the path without its query) nor echoed.
 */
#include "core/error.h"
#include "core/log.h"
#include "server/server_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    A_READ = 1,             /* needs scope read */
    A_WRITE = 2,            /* needs scope write */
    A_QUERY_TOKEN = 4,      /* ?access_token= accepted (EventSource, browser WebSocket) */
    A_OWN_MESSAGE = 8,      /* the message's sender must be the sub */
    A_PATH_USER = 16,       /* path {user_id} must be the sub */
    A_BODY_SENDER = 32,     /* body sender_id: filled from or checked against the sub */
    A_BODY_USER = 64,       /* body user_id: the same */
    A_QUERY_CHANNELS = 128, /* ?channels=ID,ID...: each must be in the claims */
};

#define CH   "/v1/channels/{channel_id}"
#define MSG  CH "/messages/{message_id}"
#define REAC MSG "/reactions"

/* What a user token may do; a route not listed needs a service token. */
static const struct {
    http_method method;
    const char *pattern;
    unsigned rights;
} policy[] = {
    {HTTP_GET, CH "/messages", A_READ},
    {HTTP_POST, CH "/messages", A_WRITE | A_BODY_SENDER},
    {HTTP_GET, MSG, A_READ},
    {HTTP_PATCH, MSG, A_WRITE | A_OWN_MESSAGE},
    {HTTP_DELETE, MSG, A_WRITE | A_OWN_MESSAGE},
    {HTTP_GET, MSG "/history", A_READ},
    {HTTP_GET, REAC, A_READ},
    {HTTP_GET, REAC "/{emoji}", A_READ},
    {HTTP_PUT, REAC "/{emoji}/{user_id}", A_WRITE | A_PATH_USER},
    {HTTP_DELETE, REAC "/{emoji}/{user_id}", A_WRITE | A_PATH_USER},
    {HTTP_GET, CH "/pins", A_READ},
    {HTTP_PUT, CH "/read-positions/{user_id}", A_WRITE | A_PATH_USER},
    {HTTP_GET, CH "/read-positions/{user_id}", A_READ | A_PATH_USER},
    {HTTP_GET, CH, A_READ},
    {HTTP_GET, "/v1/ws", A_READ | A_QUERY_TOKEN},
    {HTTP_GET, CH "/events", A_READ | A_QUERY_TOKEN},
    {HTTP_POST, CH "/typing", A_WRITE | A_BODY_USER},
    {HTTP_GET, CH "/presence", A_READ},
    {HTTP_GET, CH "/search", A_READ},
    {HTTP_GET, "/v1/search", A_READ | A_QUERY_CHANNELS},
};

/* Rights of a route for user tokens; -1: service token only. */
static int route_rights(http_request *r)
{
    const char *pattern = http_request_route(r);
    http_method m = http_request_method(r);
    if (m == HTTP_HEAD)
        m = HTTP_GET;
    for (size_t i = 0; i < sizeof policy / sizeof policy[0]; i++)
        if (policy[i].method == m && strcmp(policy[i].pattern, pattern) == 0)
            return (int)policy[i].rights;
    return -1;
}

ms_id_format srv__id_format(const srv *s)
{
    return s->idf;
}

bool srv__caller_channel_ok(const srv__caller *c, ms_xid channel)
{
    if (!c || c->kind != SRV_CALLER_USER || c->all_channels)
        return true;
    for (size_t i = 0; i < c->nchannels; i++)
        if (ms_xid_eq(c->channels[i], channel))
            return true;
    return false;
}

const srv__caller *srv__caller_of(const http_request *r)
{
    return http_request_user(r);
}

int64_t srv__unix_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void refuse_401(http_request *r, const char *why)
{
    http_response_header(r, "www-authenticate", "Bearer realm=\"msgstore\"");
    http_respond_error(r, 401, ms_err_name(MS_ERR_UNAUTHORIZED), "%s", why);
}

static void refuse_403(http_request *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void refuse_403(http_request *r, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_respond_error(r, 403, ms_err_name(MS_ERR_FORBIDDEN), "%s", msg);
}

int srv__rate_take(srv *s, const srv__caller *c)
{
    bool user = c && c->kind == SRV_CALLER_USER;
    int rps = user ? s->cfg.rate_user_rps : s->cfg.rate_service_rps;
    if (!c || rps <= 0 || !s->rl)
        return 0;
    int burst = user ? s->cfg.rate_user_burst : s->cfg.rate_service_burst;
    ms_xid key = user ? c->sub : ms_xid_int((uint64_t)c->token);
    int wait = rl_take(s->rl, user ? 1 : 0, key, (double)rps, (double)(burst > 0 ? burst : rps),
                       mono_ns());
    if (wait)
        ms_counter_add(user ? s->c_rl_user : s->c_rl_service, 1);
    return wait;
}

/* Takes a token of the caller's bucket; answers 429 and returns -1 when there is none. */
static int rate_limit(srv *s, http_request *r, const srv__caller *c)
{
    int wait = srv__rate_take(s, c);
    if (wait == 0)
        return 0;
    http_respond_ms_error(r, MS_ERR_RATE_LIMITED, wait,
                          "too many requests for this %s; retry after %d s",
                          c->kind == SRV_CALLER_USER ? "user" : "token", wait);
    return -1;
}

/*
 * Parses an id of the store's format as the handlers do (srv__parse_xid, so
 * that no spelling gets past this check and is then taken by a handler); -1
 * when it is not one (the handler answers 400).
 */
static int parse_id(const srv *s, const char *txt, size_t len, ms_xid *out)
{
    char buf[64];
    if (!txt || len >= sizeof buf || memchr(txt, '\0', len))
        return -1;
    memcpy(buf, txt, len);
    buf[len] = '\0';
    return srv__parse_xid(srv__id_format(s), buf, out) ? 0 : -1;
}

/* A user id in a JSON body: the same as the sub, absent (filled in), or another (403). */
static int body_user(srv *s, http_request *r, const srv__caller *c, const char *field)
{
    http_str b = http_request_body(r);
    json_t *o = b.len ? json_loadb(b.base, b.len, 0, NULL) : json_object();
    if (!json_is_object(o)) {
        json_decref(o); /* the handler says what is wrong with it */
        return 0;
    }
    json_t *v = json_object_get(o, field);
    int rc = 0;
    if (!v || json_is_null(v)) {
        char id[MS_XID_STRLEN];
        ms_xid_format(srv__id_format(s), c->sub, id);
        json_object_set_new(o, field, json_string(id));
        char *text = json_dumps(o, JSON_COMPACT);
        if (text) {
            http_request_set_body(r, text, strlen(text));
            free(text);
        }
    } else {
        ms_xid x;
        bool parsed = false;
        if (json_is_string(v))
            parsed = parse_id(s, json_string_value(v), json_string_length(v), &x) == 0;
        else if (json_is_integer(v) && json_integer_value(v) > 0 &&
                 srv__id_format(s) == MS_ID_INT64) {
            x = ms_xid_int((uint64_t)json_integer_value(v));
            parsed = true;
        }
        if (parsed && !ms_xid_eq(x, c->sub)) {
            refuse_403(r, "%s: a user token acts only as its own user (sub)", field);
            rc = -1;
        }
    }
    json_decref(o);
    return rc;
}

typedef struct {
    srv *s;
    http_request *r;
    ms_xid sub;
} own_check;

static void on_own_message(int status, const char *detail, const store_message_result *res,
                           void *ud)
{
    own_check *oc = ud;
    if (status) {
        srv__store_error(oc->s, oc->r, status, detail, false);
        return;
    }
    if (!ms_xid_eq(res->msg.sender_id, oc->sub)) {
        refuse_403(oc->r, "%s", "a user token may edit or delete only its own messages");
        return;
    }
    http_request_continue(oc->r);
}

/* Looks the message up and runs the handler only when the sub sent it; 1: decided later. */
static int own_message(srv *s, http_request *r, const srv__caller *c, ms_xid channel)
{
    size_t len;
    const char *mid = http_request_param(r, "message_id", &len);
    char *end;
    unsigned long long m = mid && *mid >= '1' && *mid <= '9' ? strtoull(mid, &end, 10) : 0;
    if (!m || *end || ms_xid_is_none(channel))
        return 0; /* the handler refuses the id */
    own_check *oc = http_request_alloc(r, sizeof *oc);
    oc->s = s;
    oc->r = r;
    oc->sub = c->sub;
    store_get_req q = {.channel_id = channel, .message_id = (uint64_t)m};
    int rc = store_get(s->st, http_request_loop(r), &q, on_own_message, oc);
    if (rc) {
        srv__store_error(s, r, rc, NULL, false);
        return -1;
    }
    return 1;
}

/* Holds a user token to its claims on this route; 0, -1 (answered) or 1 (decided later). */
static int authorize_user(srv *s, http_request *r, const srv__caller *c)
{
    int rights = route_rights(r);
    if (rights < 0) {
        refuse_403(r, "%s %s needs a service token", http_method_name(http_request_method(r)),
                   http_request_route(r));
        return -1;
    }
    if ((rights & A_READ) && !(c->scope & JWT_SCOPE_READ)) {
        refuse_403(r, "%s", "the token's scope does not include read");
        return -1;
    }
    if ((rights & A_WRITE) && !(c->scope & JWT_SCOPE_WRITE)) {
        refuse_403(r, "%s", "the token's scope does not include write");
        return -1;
    }
    size_t len;
    const char *p = http_request_param(r, "channel_id", &len);
    ms_xid channel = {0, 0};
    if (p && parse_id(s, p, len, &channel) == 0 && !srv__caller_channel_ok(c, channel)) {
        refuse_403(r, "%s", "the token does not cover this channel (channels claim)");
        return -1;
    }
    if (rights & A_QUERY_CHANNELS) {
        /* every id the handler will accept must be covered; what it refuses is its 400 */
        const char *q = http_request_query(r, "channels");
        for (const char *e; q && *q; q = *e ? e + 1 : e) {
            e = q + strcspn(q, ",");
            ms_xid ch;
            if (parse_id(s, q, (size_t)(e - q), &ch) == 0 && !srv__caller_channel_ok(c, ch)) {
                refuse_403(r, "%s",
                           "the token does not cover every channel asked (channels claim)");
                return -1;
            }
        }
    }
    if (rights & A_PATH_USER) {
        ms_xid u;
        p = http_request_param(r, "user_id", &len);
        if (p && parse_id(s, p, len, &u) == 0 && !ms_xid_eq(u, c->sub)) {
            refuse_403(r, "%s: a user token acts only as its own user (sub)", "user_id");
            return -1;
        }
    }
    if ((rights & A_BODY_SENDER) && body_user(s, r, c, "sender_id") != 0)
        return -1;
    if ((rights & A_BODY_USER) && body_user(s, r, c, "user_id") != 0)
        return -1;
    if (rights & A_OWN_MESSAGE)
        return own_message(s, r, c, channel);
    return 0;
}

/* The caller of a user token, in request memory. */
static srv__caller *user_caller(http_request *r, const jwt_claims *cl)
{
    srv__caller *c = http_request_alloc(r, sizeof *c);
    memset(c, 0, sizeof *c);
    c->kind = SRV_CALLER_USER;
    c->token = -1;
    c->sub = cl->sub;
    c->exp = cl->exp;
    c->scope = cl->scope;
    c->all_channels = cl->all_channels;
    c->nchannels = cl->nchannels;
    if (cl->nchannels) {
        ms_xid *ch = http_request_alloc(r, cl->nchannels * sizeof *ch);
        memcpy(ch, cl->channels, cl->nchannels * sizeof *ch);
        c->channels = ch;
    }
    return c;
}

int srv__guard(http_request *r, unsigned flags, void *ctx)
{
    srv *s = ctx;
    if (!(flags & HTTP_ROUTE_AUTH_API)) {
        /* probes, /health and /metrics: a service token (or, for the last two, an ops
         * token) when configured so; never a user token */
        bool have = auth_count(s->tokens) + auth_count(s->ops_tokens) > 0;
        bool need = false, ops = false;
        if (flags & HTTP_ROUTE_AUTH_PROBE) {
            need = have && s->cfg.auth_probes;
        } else if (flags & HTTP_ROUTE_AUTH_METRICS) {
            need = have && s->cfg.auth_metrics;
            ops = true;
        }
        if (!need)
            return 0;
        http_str h = http_request_header(r, "authorization");
        if (auth_check(s->tokens, h.base, h.len) == 0 ||
            (ops && auth_check(s->ops_tokens, h.base, h.len) == 0))
            return 0;
        refuse_401(r, h.base ? "the bearer token is not valid"
                             : "a bearer token is required: Authorization: Bearer <token>");
        return -1;
    }
    if (s->open_api)
        return 0;
    const char *tok = NULL;
    size_t len = 0;
    http_str h = http_request_header(r, "authorization");
    if (h.base) {
        if (auth_bearer(h.base, h.len, &tok, &len) != 0) {
            refuse_401(r, "the Authorization header is not \"Bearer <token>\"");
            return -1;
        }
    } else {
        int rights = route_rights(r);
        const char *q =
            rights >= 0 && (rights & A_QUERY_TOKEN) ? http_request_query(r, "access_token") : NULL;
        if (!q || !*q) {
            refuse_401(r, rights >= 0 && (rights & A_QUERY_TOKEN)
                              ? "a token is required: Authorization: Bearer <token>, or "
                                "?access_token=<token>"
                              : "a bearer token is required: Authorization: Bearer <token>");
            return -1;
        }
        tok = q;
        len = strlen(q);
    }
    int idx = auth_find(s->tokens, tok, len);
    if (idx >= 0) {
        srv__caller *c = http_request_alloc(r, sizeof *c);
        memset(c, 0, sizeof *c);
        c->kind = SRV_CALLER_SERVICE;
        c->token = idx;
        http_request_set_user(r, c);
        return rate_limit(s, r, c);
    }
    if (!s->jwt || !jwt_looks_like(tok, len)) {
        refuse_401(r, "the bearer token is not valid");
        return -1;
    }
    jwt_claims cl;
    const char *why = NULL;
    int rc = jwt_verify(s->jwt, srv__id_format(s), tok, len, srv__unix_s(), &cl, &why);
    if (rc == MS_ERR_NOMEM) {
        http_respond_ms_error(r, MS_ERR_NOMEM, 1, "out of memory");
        return -1;
    }
    if (rc) {
        refuse_401(r, why);
        return -1;
    }
    srv__caller *c = user_caller(r, &cl);
    jwt_claims_clear(&cl);
    http_request_set_user(r, c);
    if (rate_limit(s, r, c) != 0)
        return -1;
    return authorize_user(s, r, c);
}
