/* SPDX-License-Identifier: Apache-2.0 */
/*
 * realtime_api.c - WebSocket and SSE subscriptions, typing and presence
 * endpoints, and the commit hook that feeds the realtime hub.
 *
 * A session is one WebSocket or one SSE stream. It owns an rt_sub (the
 * hub's bounded queue) and moves events from it to its transport only while
 * the transport can take them (a WebSocket: batches written straight from
 * the shared buffers while the socket takes them; SSE: SSE_WINDOW bytes in
 * the stream's buffer): the backlog of a slow client stays in the
 * hub queue as shared references, and when that overflows the client gets a
 * resync event and is closed (cut after CLOSE_GRACE_MS when it does not even
 * read the close). A session whose socket is full is flushed again from the
 * transport's drain callback (the remainder of a direct WebSocket write went
 * out; the SSE stream's buffer was handed over); only the rare others (wslay
 * or h2o writing, TLS) wait on their worker's blocked list, looked at after
 * every loop turn (uv_check): scanning every full socket on every turn cost
 * O(subscribers) per write completion at 10k subscribers.
 *
 * Lifetime: a transport's close callback may run inside a send (h2o closes
 * a WebSocket from h2o_websocket_proceed on a write error). A session is
 * therefore freed only when it is not in a flush (busy == 0).
 */
#include "server/realtime_api.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "server/server_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WS_BATCH           32 /* events per write */
#define WS_BATCH_BYTES     (256 * 1024)
#define SSE_WINDOW         (64 * 1024)
#define CLOSE_GRACE_MS     2000
#define PING_MS            15000
#define MAX_CLIENT_MESSAGE (64 * 1024)
#define MAX_PING_ID        128 /* bytes of JSON echoed in a pong */

typedef struct session session;

typedef struct wstate {
    srv_rt *rt;
    int idx;
    uv_loop_t *loop;
    bool attached;
    uv_check_t check;
    bool check_on;
    uv_timer_t ping;
    session *all;
    session *blocked;
} wstate;

struct srv_rt {
    srv *s;
    ms_histogram *m_latency;
    rt_hub *hub;
    rt_bridge *bridge;
    bool has_redis;
    int64_t presence_ttl_ms;
    int nworkers; /* the server's worker threads: one wstate and hub slot each */
    wstate *w;
};

struct session {
    wstate *w;
    http_ws *ws;
    http_stream *st;
    rt_sub *sub;
    rt_msg *held;           /* SSE: popped, waits for the stream's queue to drain */
    session *next, *prev;   /* all sessions of the worker */
    session *bnext, *bprev; /* blocked list */
    bool blocked;
    bool gone;    /* the transport closed: nothing may touch ws/st */
    bool closing; /* we asked the transport to close */
    int busy;
    uv_timer_t *kill;  /* CLOSE_GRACE_MS after closing */
    ms_xid (*pres)[2]; /* (channel, user) this session sent presence for */
    uint32_t npres, pres_cap;
    srv__caller *user; /* a user token's claims (malloc'd); NULL: service token, open API */
    srv__caller svc;   /* the service token's caller (kind 0: none) */
};

/* ------------------------------------------------------------ sessions */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* rt_msg.created_us is CLOCK_REALTIME */
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_check(uv_check_t *c);

static void block_link(session *ss)
{
    if (ss->blocked)
        return;
    wstate *w = ss->w;
    ss->blocked = true;
    ss->bprev = NULL;
    ss->bnext = w->blocked;
    if (w->blocked)
        w->blocked->bprev = ss;
    w->blocked = ss;
    if (!w->check_on) {
        w->check_on = true;
        uv_check_start(&w->check, on_check);
    }
}

static void block_unlink(session *ss)
{
    if (!ss->blocked)
        return;
    if (ss->bprev)
        ss->bprev->bnext = ss->bnext;
    else
        ss->w->blocked = ss->bnext;
    if (ss->bnext)
        ss->bnext->bprev = ss->bprev;
    ss->blocked = false;
    ss->bnext = ss->bprev = NULL;
}

static void kill_closed(uv_handle_t *h)
{
    free(h);
}

static void session_free(session *ss)
{
    wstate *w = ss->w;
    block_unlink(ss);
    if (ss->prev)
        ss->prev->next = ss->next;
    else
        w->all = ss->next;
    if (ss->next)
        ss->next->prev = ss->prev;
    for (uint32_t i = 0; i < ss->npres; i++)
        rt_presence_leave(w->rt->hub, ss->pres[i][0], ss->pres[i][1]);
    free(ss->pres);
    rt_msg_unref(ss->held);
    free(ss->user);
    rt_sub_destroy(ss->sub);
    if (ss->kill) {
        uv_timer_stop(ss->kill);
        uv_close((uv_handle_t *)ss->kill, kill_closed);
    }
    free(ss);
}

/* Ends a section that held the session; frees it if its transport went away
 * meanwhile. Returns true when it was freed (then it must not be touched). */
static bool release(session *ss)
{
    ss->busy--;
    if (ss->gone && ss->busy == 0) {
        session_free(ss);
        return true;
    }
    return false;
}

/* One SSE event, whole or not at all (http_stream_writev). */
static int send_msg(session *ss, const rt_msg *m)
{
    char head[96];
    int n;
    if (m->kind == RT_RESYNC)
        n = snprintf(head, sizeof head, "event: resync\ndata: ");
    else
        n = snprintf(head, sizeof head, "id: %" PRIu64 "\nevent: %s\ndata: ", m->position,
                     rt_kind_name((rt_kind)m->kind));
    /* The JSON has no raw newline (escaped inside strings): one data line. */
    http_str parts[3] = {{head, (size_t)n}, {m->json, m->len}, {"\n\n", 2}};
    return http_stream_writev(ss->st, parts, 3);
}

static void on_kill(uv_timer_t *t)
{
    session *ss = t->data;
    if (ss->gone)
        return;
    MS_DEBUG("realtime", "closing a subscriber that does not read");
    if (ss->ws)
        http_ws_abort(ss->ws); /* its close callback frees the session */
    else if (ss->st)
        http_stream_abort(ss->st);
}

static void arm_kill(session *ss)
{
    ss->kill = malloc(sizeof *ss->kill);
    if (ss->kill) {
        uv_timer_init(ss->w->loop, ss->kill);
        ss->kill->data = ss;
        uv_timer_start(ss->kill, on_kill, CLOSE_GRACE_MS, 0);
    }
}

static void begin_close(session *ss)
{
    ss->closing = true;
    if (!ss->kill)
        arm_kill(ss);
    if (ss->ws)
        http_ws_close(ss->ws);
    else
        http_stream_end(ss->st);
}

static void observe(session *ss, const rt_msg *m)
{
    if (m->created_us > 0) {
        int64_t d = now_us() - m->created_us;
        ms_histogram_observe_us(ss->w->rt->m_latency, d > 0 ? (uint64_t)d : 0);
    }
}

/* WebSocket: batches of events in one write, straight from the shared buffers. */
static void flush_ws(session *ss)
{
    while (!ss->gone && http_ws_writable(ss->ws)) {
        rt_msg *batch[WS_BATCH];
        http_str bufs[WS_BATCH];
        size_t n = 0, bytes = 0;
        while (n < WS_BATCH && bytes < WS_BATCH_BYTES) {
            rt_msg *m = rt_sub_pop(ss->sub);
            if (!m)
                break;
            observe(ss, m);
            batch[n] = m;
            bufs[n] = (http_str){m->json, m->len};
            bytes += m->len;
            n++;
        }
        if (n == 0)
            break;
        http_ws_send_batch(ss->ws, bufs, n); /* may end in the close callback: gone */
        for (size_t i = 0; i < n; i++)
            rt_msg_unref(batch[i]);
    }
}

/* SSE: through the stream's own buffer, a window at a time. An event that
 * does not fit behind what is queued (one near the stream's 1 MiB limit) is
 * held and goes out whole once the queue drained: never a part of one. */
static void flush_sse(session *ss)
{
    while (!ss->gone && http_stream_queued(ss->st) < SSE_WINDOW) {
        rt_msg *m = ss->held;
        ss->held = NULL;
        if (!m) {
            m = rt_sub_pop(ss->sub);
            if (!m)
                break;
            observe(ss, m);
        }
        int rc = send_msg(ss, m);
        if (rc == MS_ERR_TOO_LARGE) {
            MS_DEBUG("realtime", "an SSE event of %zu bytes waits for the stream to drain", m->len);
            ss->held = m; /* the drain callback comes when the queue is empty */
            break;
        }
        rt_msg_unref(m);
        if (rc == MS_ERR_NOMEM) {
            /* lost for this client: end the stream, its resume replays or resyncs */
            http_stream_abort(ss->st);
            break;
        }
    }
}

/* Moves queued events to the transport while it takes them. */
static void flush(session *ss)
{
    if (ss->gone || ss->closing)
        return;
    ss->busy++;
    if (ss->ws)
        flush_ws(ss);
    else
        flush_sse(ss);
    if (!ss->gone) {
        bool left = rt_sub_queued(ss->sub) > 0 || ss->held;
        /* Waiting for the socket: a drain callback follows a direct write's
         * remainder and an SSE stream's buffer; anything else (wslay or h2o
         * writing, TLS) is looked at again after every loop turn. */
        bool called_back = ss->st || http_ws_draining(ss->ws);
        if (left && !called_back)
            block_link(ss);
        else
            block_unlink(ss);
        if (rt_sub_closing(ss->sub)) {
            if (!left)
                begin_close(ss); /* the resync went out: close */
            else if (!ss->kill)
                arm_kill(ss); /* it does not even take the resync */
        }
    }
    release(ss);
}

static void on_sub_ready(rt_sub *sub, void *ctx)
{
    (void)sub;
    flush(ctx);
}

static void on_ws_drain(http_ws *ws, void *ctx)
{
    (void)ws;
    flush(ctx);
}

static void on_sse_drain(http_stream *st, void *ctx)
{
    (void)st;
    flush(ctx);
}

/* The transport is gone (client left, server stopping, we closed it). */
static void transport_gone(session *ss)
{
    ss->gone = true;
    ss->ws = NULL;
    ss->st = NULL;
    block_unlink(ss);
    if (ss->busy == 0)
        session_free(ss);
}

static void on_check(uv_check_t *c)
{
    wstate *w = c->data;
    /* Detach the list: flushing may relink a session. */
    session *list = w->blocked;
    w->blocked = NULL;
    for (session *ss = list; ss; ss = ss->bnext)
        ss->blocked = false;
    while (list) {
        session *ss = list;
        list = ss->bnext;
        ss->bnext = ss->bprev = NULL;
        if (list)
            list->bprev = NULL;
        flush(ss);
    }
    if (!w->blocked) {
        uv_check_stop(&w->check);
        w->check_on = false;
    }
}

static session *session_new(wstate *w)
{
    session *ss = calloc(1, sizeof *ss);
    if (!ss)
        return NULL;
    ss->w = w;
    if (rt_sub_create(w->rt->hub, w->idx, on_sub_ready, ss, &ss->sub) != 0) {
        free(ss);
        return NULL;
    }
    ss->next = w->all;
    if (w->all)
        w->all->prev = ss;
    w->all = ss;
    return ss;
}

/* True when the session's user token has expired (past the leeway). */
static bool session_expired(const session *ss)
{
    return ss->user && srv__unix_s() > ss->user->exp + ss->w->rt->s->cfg.jwt_leeway_ms / 1000;
}

/* ------------------------------------------------------------- parsing */

/* An id given as a decimal string or a non-negative JSON integer; 0 when not one. */
static uint64_t json_to_id(json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
    const char *s = json_string_value(v);
    if (!s || !*s || strlen(s) > 20)
        return 0;
    uint64_t x = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        uint64_t d = (uint64_t)(*p - '0');
        if (x > (UINT64_MAX - d) / 10)
            return 0;
        x = x * 10 + d;
    }
    return x;
}

/* A channel or user id in the store's format (a JSON string; an integer in int64 stores); none
 * when it is not one. */
static ms_xid json_to_xid(const srv *s, json_t *v)
{
    ms_xid x = {0, 0};
    if (json_is_integer(v)) {
        if (s->idf == MS_ID_INT64 && json_integer_value(v) > 0)
            x = ms_xid_int((uint64_t)json_integer_value(v));
        return x;
    }
    const char *t = json_string_value(v);
    if (!t || strlen(t) != json_string_length(v) || !srv__parse_xid(s->idf, t, &x))
        return (ms_xid){0, 0};
    return x;
}

static uint64_t str_to_id(const char *s)
{
    json_t *v = json_string(s);
    uint64_t x = json_to_id(v);
    json_decref(v);
    return x;
}

/* --------------------------------------------------------- WebSocket */

static void ws_send_json(session *ss, json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text || !ss->ws)
        return;
    ss->busy++;
    http_ws_send(ss->ws, text, strlen(text), false);
    free(text);
    release(ss);
}

static void ws_error(session *ss, const char *op, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void ws_error(session *ss, const char *op, int code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ws_send_json(ss, json_pack("{s:s, s:s, s:s, s:s?}", "type", "error", "code", ms_err_name(code),
                               "message", msg, "op", op));
}

/* A user token's rights for an op: still valid, scope. 0, or -1 after an error message. */
static int ws_user_ok(session *ss, const char *op, unsigned scope)
{
    const srv__caller *c = ss->user;
    if (!c)
        return 0;
    if (session_expired(ss)) {
        ws_error(ss, op, MS_ERR_UNAUTHORIZED, "the token has expired");
        begin_close(ss);
        return -1;
    }
    if (!(c->scope & scope)) {
        ws_error(ss, op, MS_ERR_FORBIDDEN, "the token's scope does not include %s",
                 scope == JWT_SCOPE_WRITE ? "write" : "read");
        return -1;
    }
    return 0;
}

/* The op's user_id: the sub of a user token when left out, 403 when another. 0 or -1. */
static int ws_user_id(session *ss, const char *op, json_t *req, ms_xid *user)
{
    json_t *v = json_object_get(req, "user_id");
    *user = json_to_xid(ss->w->rt->s, v);
    const srv__caller *c = ss->user;
    if (!c)
        return 0;
    if (!v || json_is_null(v)) {
        *user = c->sub;
        return 0;
    }
    if (!ms_xid_is_none(*user) && !ms_xid_eq(*user, c->sub)) {
        ws_error(ss, op, MS_ERR_FORBIDDEN, "user_id: a user token acts only as its own user (sub)");
        return -1;
    }
    return 0;
}

/* 0 when the session may use channel; -1 after an error message. */
static int ws_channel_ok(session *ss, const char *op, ms_xid channel)
{
    if (srv__caller_channel_ok(ss->user, channel))
        return 0;
    char ch[MS_XID_STRLEN];
    ms_xid_format(ss->w->rt->s->idf, channel, ch);
    ws_error(ss, op, MS_ERR_FORBIDDEN,
             "channel %s: the token does not cover this channel (channels claim)", ch);
    return -1;
}

/* Reads a "channels" array into ids (at most max); -1 on a bad entry. */
static int read_channels(const srv *s, json_t *arr, ms_xid *ids, size_t max, size_t *n)
{
    *n = 0;
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > max)
        return -1;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        ms_xid id = json_to_xid(s, v);
        if (ms_xid_is_none(id))
            return -1;
        ids[(*n)++] = id;
    }
    return 0;
}

static json_t *ids_json(const srv *s, const ms_xid *ids, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, srv__xid(s, ids[i]));
    return a;
}

/* The position `since` maps channel id to (its key in any accepted spelling); NULL when none. */
static json_t *since_of(const srv *s, json_t *since, ms_xid channel)
{
    const char *key;
    json_t *v;
    ms_xid k;
    if (!json_is_object(since))
        return NULL;
    json_object_foreach(since, key, v)
    {
        if (srv__parse_xid(s->idf, key, &k) && ms_xid_eq(k, channel))
            return v;
    }
    return NULL;
}

static void op_subscribe(session *ss, json_t *req)
{
    const srv *s = ss->w->rt->s;
    ms_xid ids[RT_SUB_MAX_CHANNELS];
    size_t n;
    if (read_channels(s, json_object_get(req, "channels"), ids, RT_SUB_MAX_CHANNELS, &n) != 0) {
        ws_error(ss, "subscribe", MS_ERR_INVALID, "channels: expected 1 to %d channel ids (%s)",
                 RT_SUB_MAX_CHANNELS, s->idf == MS_ID_UUID ? "UUID strings" : "decimal strings");
        return;
    }
    json_t *since = json_object_get(req, "since");
    if (since && !json_is_object(since) && !json_is_null(since)) {
        ws_error(ss, "subscribe", MS_ERR_INVALID, "since: expected {\"<channel>\":\"<position>\"}");
        return;
    }
    if (ws_user_ok(ss, "subscribe", JWT_SCOPE_READ) != 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (ws_channel_ok(ss, "subscribe", ids[i]) != 0)
            return;
    /* Validate everything before following anything: bad input changes nothing. */
    const char *key;
    json_t *v;
    if (json_is_object(since)) {
        json_object_foreach(since, key, v)
        {
            ms_xid k;
            if (!json_to_id(v) || !srv__parse_xid(s->idf, key, &k)) {
                ws_error(ss, "subscribe", MS_ERR_INVALID,
                         "since.%s: expected a channel id mapped to a position", key);
                return;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        json_t *p = since_of(s, since, ids[i]);
        int rc = rt_sub_add(ss->sub, ids[i], p != NULL, p ? json_to_id(p) : 0);
        if (rc != 0) {
            char ch[MS_XID_STRLEN];
            ms_xid_format(s->idf, ids[i], ch);
            ws_error(ss, "subscribe", rc, "channel %s: %s", ch, ms_err_str(rc));
            return;
        }
    }
    ws_send_json(ss,
                 json_pack("{s:s, s:o}", "type", "subscribed", "channels", ids_json(s, ids, n)));
}

static void op_unsubscribe(session *ss, json_t *req)
{
    const srv *s = ss->w->rt->s;
    ms_xid ids[RT_SUB_MAX_CHANNELS];
    size_t n;
    if (read_channels(s, json_object_get(req, "channels"), ids, RT_SUB_MAX_CHANNELS, &n) != 0) {
        ws_error(ss, "unsubscribe", MS_ERR_INVALID, "channels: expected channel ids");
        return;
    }
    for (size_t i = 0; i < n; i++)
        rt_sub_remove(ss->sub, ids[i]);
    ws_send_json(ss,
                 json_pack("{s:s, s:o}", "type", "unsubscribed", "channels", ids_json(s, ids, n)));
}

static int pres_remember(session *ss, ms_xid channel, ms_xid user)
{
    for (uint32_t i = 0; i < ss->npres; i++)
        if (ms_xid_eq(ss->pres[i][0], channel) && ms_xid_eq(ss->pres[i][1], user))
            return 0;
    if (ss->npres >= RT_SUB_MAX_CHANNELS)
        return MS_ERR_TOO_LARGE;
    if (ss->npres == ss->pres_cap) {
        uint32_t cap = ss->pres_cap ? ss->pres_cap * 2 : 4;
        void *p = realloc(ss->pres, cap * sizeof *ss->pres);
        if (!p)
            return MS_ERR_NOMEM;
        ss->pres = p;
        ss->pres_cap = cap;
    }
    ss->pres[ss->npres][0] = channel;
    ss->pres[ss->npres][1] = user;
    ss->npres++;
    return 0;
}

static void op_typing(session *ss, json_t *req)
{
    const srv *s = ss->w->rt->s;
    ms_xid ch = json_to_xid(s, json_object_get(req, "channel"));
    ms_xid user;
    if (ws_user_ok(ss, "typing", JWT_SCOPE_WRITE) != 0 || ws_user_id(ss, "typing", req, &user) != 0)
        return;
    if (ms_xid_is_none(ch) || ms_xid_is_none(user)) {
        ws_error(ss, "typing", MS_ERR_INVALID, "expected channel and user_id (ids)");
        return;
    }
    if (ws_channel_ok(ss, "typing", ch) != 0)
        return;
    int rc = rt_typing(ss->w->rt->hub, ch, user);
    if (rc)
        ws_error(ss, "typing", rc, "%s", ms_err_str(rc));
}

static void op_presence(session *ss, json_t *req)
{
    const srv *s = ss->w->rt->s;
    ms_xid user;
    if (ws_user_ok(ss, "presence", JWT_SCOPE_WRITE) != 0 ||
        ws_user_id(ss, "presence", req, &user) != 0)
        return;
    const char *status = json_string_value(json_object_get(req, "status"));
    ms_xid ids[RT_SUB_MAX_CHANNELS];
    size_t n = 0;
    json_t *chs = json_object_get(req, "channels");
    if (ms_xid_is_none(user) ||
        (status && strcmp(status, "online") != 0 && strcmp(status, "offline") != 0) ||
        read_channels(s, chs, ids, RT_SUB_MAX_CHANNELS, &n) != 0) {
        ws_error(ss, "presence", MS_ERR_INVALID,
                 "expected user_id, channels (ids) and optional status online|offline");
        return;
    }
    bool offline = status && strcmp(status, "offline") == 0;
    for (size_t i = 0; i < n; i++)
        if (ws_channel_ok(ss, "presence", ids[i]) != 0)
            return;
    for (size_t i = 0; i < n; i++) {
        int rc;
        if (offline) {
            rc = rt_presence_leave(ss->w->rt->hub, ids[i], user);
        } else {
            rc = pres_remember(ss, ids[i], user);
            if (rc == 0)
                rc =
                    rt_presence_heartbeat(ss->w->rt->hub, ids[i], user, ss->w->rt->presence_ttl_ms);
        }
        if (rc) {
            ws_error(ss, "presence", rc, "%s", ms_err_str(rc));
            return;
        }
    }
}

/* The pong echoes the ping's id: a small one only, or every ping would make
 * the server queue as much as the client sends. */
static void op_ping(session *ss, json_t *req)
{
    json_t *id = json_object_get(req, "id");
    if (id) {
        char *text = json_dumps(id, JSON_COMPACT | JSON_ENCODE_ANY);
        size_t n = text ? strlen(text) : 0;
        free(text);
        if (!n || n > MAX_PING_ID) {
            ws_error(ss, "ping", MS_ERR_INVALID, "id: at most %d bytes of JSON", MAX_PING_ID);
            return;
        }
    }
    ws_send_json(ss, json_pack("{s:s, s:O?}", "type", "pong", "id", id));
}

static void ws_on_message(http_ws *ws, const void *data, size_t len, bool binary, void *ctx)
{
    session *ss = ctx;
    (void)ws;
    if (!data) {
        transport_gone(ss);
        return;
    }
    if (ss->closing)
        return;
    /* every client message is a request: the caller's rate limit applies */
    int wait = srv__rate_take(ss->w->rt->s, ss->user ? ss->user : ss->svc.kind ? &ss->svc : NULL);
    if (wait) {
        ws_error(ss, NULL, MS_ERR_RATE_LIMITED, "too many messages; retry after %d s", wait);
        return;
    }
    if (binary || len > MAX_CLIENT_MESSAGE) {
        ws_error(ss, NULL, MS_ERR_INVALID, "expected a JSON text message of at most %d bytes",
                 MAX_CLIENT_MESSAGE);
        return;
    }
    json_error_t jerr;
    json_t *req = json_loadb(data, len, 0, &jerr);
    const char *op = json_string_value(json_object_get(req, "op"));
    if (!req || !json_is_object(req) || !op) {
        ws_error(ss, NULL, MS_ERR_INVALID, "expected {\"op\":...}: %s", req ? "no op" : jerr.text);
        json_decref(req);
        return;
    }
    ss->busy++;
    if (strcmp(op, "subscribe") == 0)
        op_subscribe(ss, req);
    else if (strcmp(op, "unsubscribe") == 0)
        op_unsubscribe(ss, req);
    else if (strcmp(op, "ping") == 0)
        op_ping(ss, req);
    else if (strcmp(op, "typing") == 0)
        op_typing(ss, req);
    else if (strcmp(op, "presence") == 0)
        op_presence(ss, req);
    else
        ws_error(ss, op, MS_ERR_INVALID,
                 "unknown op (subscribe, unsubscribe, ping, typing, presence)");
    json_decref(req);
    if (release(ss))
        return;
    /* Replays and resyncs queued by subscribe go out now. */
    flush(ss);
}

/* Keeps the request's caller for the session's life (claims, expiry, rate limit). 0 or -1 (OOM). */
static int session_set_caller(session *ss, http_request *r)
{
    const srv__caller *c = srv__caller_of(r);
    if (c && c->kind == SRV_CALLER_SERVICE)
        ss->svc = *c;
    if (!c || c->kind != SRV_CALLER_USER)
        return 0;
    /* one block with the channel list after it */
    ss->user = malloc(sizeof *ss->user + c->nchannels * sizeof(ms_xid));
    if (!ss->user)
        return -1;
    *ss->user = *c;
    ms_xid *ch = (ms_xid *)(ss->user + 1);
    if (c->nchannels)
        memcpy(ch, c->channels, c->nchannels * sizeof *ch);
    ss->user->channels = ch;
    return 0;
}

/* A session on the request's worker with the request's caller; NULL once the request was answered
 * (out of memory). */
static session *session_for(srv_rt *rt, http_request *r)
{
    session *ss = session_new(&rt->w[http_request_worker(r)]);
    if (ss && session_set_caller(ss, r) != 0) {
        session_free(ss);
        ss = NULL;
    }
    if (!ss)
        http_respond_ms_error(r, MS_ERR_NOMEM, 1, "out of memory");
    return ss;
}

static void h_ws(http_request *r, void *ctx)
{
    srv_rt *rt = ctx;
    if (!http_ws_is_handshake(r)) {
        http_response_header(r, "upgrade", "websocket"); /* a 426 must name it (RFC 9110) */
        http_respond_error(r, 426, "upgrade_required",
                           "GET /v1/ws is a WebSocket endpoint (Upgrade: websocket)");
        return;
    }
    session *ss = session_for(rt, r);
    if (!ss)
        return;
    ss->ws = http_ws_accept(r, ws_on_message, ss);
    if (!ss->ws) {
        session_free(ss);
        http_respond_error(r, 400, "invalid_argument", "bad WebSocket handshake");
        return;
    }
    http_ws_set_drain(ss->ws, on_ws_drain, ss);
    char inst[24];
    snprintf(inst, sizeof inst, "%016" PRIx64, rt_hub_instance(rt->hub));
    ws_send_json(ss, json_pack("{s:s, s:i, s:s, s:i, s:i}", "type", "hello", "protocol", 1,
                               "instance", inst, "presence_ttl_ms", (int)rt->presence_ttl_ms,
                               "typing_ttl_ms", RT_TYPING_TTL_MS));
}

/* --------------------------------------------------------------- SSE */

static void sse_closed(http_stream *st, void *ctx)
{
    (void)st;
    transport_gone(ctx);
}

static void h_sse(http_request *r, void *ctx)
{
    srv_rt *rt = ctx;
    ms_xid channel;
    if (srv__path_xid(rt->s, r, "channel_id", &channel))
        return;
    /* Resume from Last-Event-ID (what EventSource sends) or ?since=. */
    bool has_since = false;
    uint64_t since = 0;
    http_str last = http_request_header(r, "last-event-id");
    const char *q = http_request_query(r, "since");
    char buf[32];
    const char *from = NULL;
    if (last.base && last.len > 0) {
        /* Longer than any position: refused below, never ignored (the
         * client would take the live stream for a resume). */
        size_t n = last.len < sizeof buf ? last.len : 0;
        memcpy(buf, last.base, n);
        buf[n] = '\0';
        from = buf;
    } else if (q) {
        from = q;
    }
    if (from) {
        since = str_to_id(from);
        if (!since) {
            http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID),
                               "Last-Event-ID / since: expected a position (decimal id)");
            return;
        }
        has_since = true;
    }
    session *ss = session_for(rt, r);
    if (!ss)
        return;
    int rc = rt_sub_add(ss->sub, channel, has_since, since);
    if (rc) {
        session_free(ss);
        http_respond_ms_error(r, rc, 1, "%s", ms_err_str(rc));
        return;
    }
    http_response_header(r, "x-accel-buffering", "no");
    ss->st = http_stream_start(r, 200, "text/event-stream", sse_closed, ss);
    http_stream_set_drain(ss->st, on_sse_drain, ss);
    /* The headers go with the first bytes; reconnect hint for EventSource. */
    static const char hello[] = "retry: 2000\n: msgstore events\n\n";
    http_stream_write(ss->st, hello, sizeof hello - 1);
    flush(ss);
}

/* A client that left without closing is noticed only by a write: ping
 * every session (an SSE comment, a WebSocket ping). */
static void on_ping(uv_timer_t *t)
{
    wstate *w = t->data;
    for (session *ss = w->all, *next; ss; ss = next) {
        next = ss->next;
        if (ss->gone || ss->closing)
            continue;
        ss->busy++;
        if (session_expired(ss)) {
            /* a user token's session ends with the token (EventSource then gets 401) */
            if (ss->ws)
                ws_error(ss, NULL, MS_ERR_UNAUTHORIZED, "the token has expired");
            if (!ss->gone)
                begin_close(ss);
        } else if (ss->st)
            http_stream_write(ss->st, ": ping\n\n", 8);
        else if (ss->ws)
            http_ws_ping(ss->ws);
        release(ss); /* only ss can have closed */
    }
}

/* ------------------------------------------------- typing / presence */

static void h_typing(http_request *r, void *ctx)
{
    srv_rt *rt = ctx;
    static const char *const fields[] = {"user_id", NULL};
    ms_xid channel, user;
    if (srv__path_xid(rt->s, r, "channel_id", &channel))
        return;
    json_t *b = srv__body(r, true, fields);
    if (!b)
        return;
    if (srv__field_xid(rt->s, r, b, "user_id", true, &user) == 0) {
        int rc = rt_typing(rt->hub, channel, user);
        if (rc)
            http_respond_ms_error(r, rc, 1, "%s", ms_err_str(rc));
        else
            http_respond_empty(r, 204);
    }
    json_decref(b);
}

static void h_presence(http_request *r, void *ctx)
{
    srv_rt *rt = ctx;
    ms_xid channel;
    if (srv__path_xid(rt->s, r, "channel_id", &channel))
        return;
    ms_xid users[512];
    json_t *o = json_object();
    size_t n = rt_ephemeral_list(rt->hub, channel, false, users, 512);
    json_object_set_new(o, "channel_id", srv__xid(rt->s, channel));
    json_object_set_new(o, "online", ids_json(rt->s, users, n));
    n = rt_ephemeral_list(rt->hub, channel, true, users, 512);
    json_object_set_new(o, "typing", ids_json(rt->s, users, n));
    http_respond_json(r, 200, o);
}

/* ---------------------------------------------------- hooks, install */

static void on_commit(const srv_event *ev, void *ctx)
{
    srv_rt *rt = ctx;
    int kind = rt_kind_parse(srv_event_name(ev->kind));
    if (kind < 0 || ms_xid_is_none(ev->channel_id))
        return;
    int rc = rt_publish(rt->hub, (rt_kind)kind, ev->channel_id, ev->json, ev->json_len, NULL);
    if (rc) {
        char ch[MS_XID_STRLEN];
        ms_xid_format(rt->s->idf, ev->channel_id, ch);
        MS_WARN("realtime", "event %s of channel %s not published: %s", srv_event_name(ev->kind),
                ch, ms_err_str(rc));
    }
}

static void on_worker_start(http_server *h, int worker, uv_loop_t *loop, void *ctx)
{
    (void)h;
    srv_rt *rt = ctx;
    if (worker < 0 || worker >= rt->nworkers)
        return;
    wstate *w = &rt->w[worker];
    w->rt = rt;
    w->idx = worker;
    w->loop = loop;
    if (rt_hub_attach(rt->hub, worker, loop) != 0) {
        MS_ERROR("realtime", "worker %d: cannot attach to the hub", worker);
        return;
    }
    uv_check_init(loop, &w->check);
    w->check.data = w;
    uv_timer_init(loop, &w->ping);
    w->ping.data = w;
    uv_timer_start(&w->ping, on_ping, PING_MS, PING_MS);
    uv_unref((uv_handle_t *)&w->ping);
    w->attached = true;
}

static void on_shutdown(http_server *h, int worker, uv_loop_t *loop, void *ctx)
{
    (void)h;
    (void)loop;
    srv_rt *rt = ctx;
    if (worker < 0 || worker >= rt->nworkers || !rt->w[worker].attached)
        return;
    wstate *w = &rt->w[worker];
    for (session *ss = w->all, *next; ss; ss = next) {
        next = ss->next;
        if (ss->gone || ss->closing)
            continue;
        /* A close frame (WebSocket) or the end of the stream (SSE); a client
         * that does not answer is cut after CLOSE_GRACE_MS. */
        ss->busy++;
        begin_close(ss);
        release(ss);
    }
}

static void on_worker_stop(http_server *h, int worker, uv_loop_t *loop, void *ctx)
{
    (void)h;
    (void)loop;
    srv_rt *rt = ctx;
    if (worker < 0 || worker >= rt->nworkers || !rt->w[worker].attached)
        return;
    wstate *w = &rt->w[worker];
    /* Connections cut at the deadline may not have called back. */
    while (w->all) {
        session *ss = w->all;
        ss->gone = true;
        session_free(ss);
    }
    uv_check_stop(&w->check);
    uv_close((uv_handle_t *)&w->check, NULL);
    uv_timer_stop(&w->ping);
    uv_close((uv_handle_t *)&w->ping, NULL);
    rt_hub_detach(rt->hub, worker);
    w->attached = false;
}

static json_t *health_section(void *ctx, bool *degraded)
{
    return srv_rt_health(ctx, degraded);
}

int srv_rt_install(srv *s, const ms_config *cfg, srv_rt **out, char *err, size_t errlen)
{
    *out = NULL;
    srv_rt *rt = calloc(1, sizeof *rt);
    if (!rt) {
        snprintf(err, errlen, "out of memory");
        return MS_ERR_NOMEM;
    }
    rt->s = s;
    rt->presence_ttl_ms = cfg->presence_ttl_ms;
    rt->m_latency = ms_histogram_get("msgstore_rt_delivery_seconds", NULL,
                                     "from publish (or arrival from Redis: the publishing "
                                     "instance's clock) to the hand-over to a subscriber's socket");
    /* Sized by the server's worker count (MSGSTORE_WORKERS, up to 256), never a fixed 64. */
    rt->nworkers = http_workers_for(cfg->workers);
    rt->w = calloc((size_t)rt->nworkers, sizeof *rt->w);
    if (!rt->w) {
        snprintf(err, errlen, "out of memory");
        free(rt);
        return MS_ERR_NOMEM;
    }
    rt_hub_options o;
    rt_hub_options_default(&o);
    o.workers = rt->nworkers;
    o.worker_id = cfg->store.worker_id;
    o.epoch_ms = cfg->store.epoch_ms;
    o.queue_max = (uint32_t)cfg->rt_queue_max;
    o.id_format = s->idf;
    int rc = rt_hub_create(&o, &rt->hub);
    if (rc) {
        snprintf(err, errlen, "realtime hub: %s", ms_err_str(rc));
        free(rt->w);
        free(rt);
        return rc;
    }
    if (cfg->redis_url[0]) {
        char why[256];
        rt_redis_tls tls = {.ca_file = cfg->redis_tls_ca_file,
                            .cert_file = cfg->redis_tls_cert_file,
                            .key_file = cfg->redis_tls_key_file};
        rc = rt_bridge_start(rt->hub, cfg->redis_url, &tls, &rt->bridge, why, sizeof why);
        if (rc) {
            /* never the URL itself: it may hold the password */
            snprintf(err, errlen,
                     "MSGSTORE_REDIS_URL: %s; expected "
                     "redis[s]://[[user]:password@]host[:port][/db]",
                     rc == MS_ERR_NOMEM ? "out of memory" : why);
            rt_hub_destroy(rt->hub);
            free(rt->w);
            free(rt);
            return rc;
        }
        rt->has_redis = true;
    }
    http_server *h = srv_http(s);
    unsigned A = HTTP_ROUTE_AUTH_API;
    rc = 0;
    rc |= http_server_route(h, HTTP_GET, "/v1/ws", A, h_ws, rt);
    rc |= http_server_route(h, HTTP_GET, "/v1/channels/{channel_id}/events", A, h_sse, rt);
    rc |= http_server_route(h, HTTP_POST, "/v1/channels/{channel_id}/typing", A, h_typing, rt);
    rc |= http_server_route(h, HTTP_GET, "/v1/channels/{channel_id}/presence", A, h_presence, rt);
    if (rc) {
        snprintf(err, errlen, "realtime routes: %s", ms_err_str(rc));
        srv_rt_free(rt);
        return MS_ERR_INTERNAL;
    }
    srv_set_commit_hook(s, on_commit, rt);
    srv_set_health_section(s, "realtime", health_section, rt);
    srv_set_worker_hooks(s, on_worker_start, on_shutdown, on_worker_stop, rt);
    *out = rt;
    return 0;
}

void srv_rt_free(srv_rt *rt)
{
    if (!rt)
        return;
    rt_bridge_stop(rt->bridge);
    rt_hub_destroy(rt->hub);
    free(rt->w);
    free(rt);
}

rt_hub *srv_rt_hub(srv_rt *rt)
{
    return rt->hub;
}

json_t *srv_rt_health(srv_rt *rt, bool *degraded)
{
    char err[256];
    rt_bridge_state bs = rt_bridge_status(rt->bridge, err, sizeof err);
    rt_hub_stats st;
    rt_hub_stats_get(rt->hub, &st);
    rt_bridge_stats bst;
    rt_bridge_stats_get(rt->bridge, &bst);
    *degraded = rt->has_redis && bs != RT_BRIDGE_UP;
    json_t *o =
        json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "status", *degraded ? "degraded" : "ok",
                  "redis", rt_bridge_state_name(bs), "subscribers", (json_int_t)st.subscribers,
                  "channels", (json_int_t)st.channels, "events_published", (json_int_t)st.published,
                  "redis_dropped", (json_int_t)bst.dropped);
    if (err[0])
        json_object_set_new(o, "redis_error", json_string(err));
    return o;
}
