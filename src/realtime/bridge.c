/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bridge.c - events between instances over Redis pub/sub.
 *
 * The bridge runs its own thread and libuv loop with two hiredis async
 * connections (hiredis' libuv adapter): one in subscribe mode, one for
 * PUBLISH, SET PX, DEL and a PING watchdog. Events are published to the
 * Redis channel msgstore:rt:<shard> of their channel (shard = a hash of the
 * channel id modulo the shard count, equal on every instance); an instance
 * subscribes only to the shards its local subscribers need, and keeps a
 * shard 30 s after its last subscriber left so that quick reconnects stay
 * covered. A message on Redis is one header line and the event's JSON:
 *
 *   E <instance hex> <kind> <channel> <position> <created µs>\n<event json>
 *                          (<channel>: the id's text, decimal or UUID per the store)
 *   G <instance hex>          (the instance dropped events of this shard)
 *
 * Redis down: local delivery goes on; events of this instance are dropped
 * for the others (counted) and the shards' replay coverage is withdrawn.
 * hiredis 0.14.1's libuv adapter (adapters/libuv.h) returns early when
 * uv_poll reports an error, and libuv reports a refused connection that way
 * (UV_EBADF after POLLERR): hiredis would never learn that the connection
 * failed. The adapter below is the same with that fixed (as in hiredis
 * 1.0: on an error, let hiredis handle the events it asked for).
 *
 * rediss:// (TLS): hiredis 0.14 has no TLS, so each connection is carried
 * by a tunnel in the bridge thread: hiredis talks plain RESP over a Unix
 * socket pair (made with a listener in a private directory, removed at
 * once), and the tunnel moves those bytes through OpenSSL memory BIOs
 * (cql/tls.c, the CQL client's TLS) to a libuv TCP connection to Redis.
 * The certificate is verified against MSGSTORE_REDIS_TLS_CA_FILE (or the
 * system store) and the URL's host name or IP address. A failed TLS
 * handshake closes the pair: hiredis sees the connection end, the bridge
 * goes down as for a plain one, and /health shows the TLS error.
 *
 * Reconnect: with backoff (100 ms doubling to 2 s); once a shard is
 * subscribed again its local subscribers get a resync event ("redis_gap"),
 * and shards whose events this instance dropped get a G message so that
 * the other instances resync theirs ("peer_gap").
 */
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "cql/tls.h"
#include "realtime/internal.h"

#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <jansson.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define TICK_MS         250
#define PING_EVERY_MS   1000
#define PING_TIMEOUT_MS 3000
#define BACKOFF_MIN_MS  100
#define BACKOFF_MAX_MS  2000
#define SHARD_LINGER_MS 30000
#define OUTBOX_MAX      65536 /* events waiting for the bridge thread */
#define INFLIGHT_MAX    16384 /* commands sent and not yet answered */

enum { SH_NONE = 0, SH_SUBSCRIBING, SH_SUBSCRIBED, SH_UNSUBSCRIBING };

typedef struct out_node {
    struct out_node *next;
    rt_msg *msg;    /* an event to publish, or NULL for a command */
    int64_t ttl_ms; /* command: SET key PX ttl_ms; 0: DEL key */
    char key[96];
} out_node;

struct rt_bridge {
    rt_hub *hub;
    rt_redis_url url;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wake;
    uv_timer_t tick;
    _Atomic bool stopping;
    _Atomic bool alive;

    redisAsyncContext *pub, *sub;
    SSL_CTX *tls;      /* rediss:// only */
    char tls_err[200]; /* the last tunnel's failure, for the next go_down */
    bool pub_up, sub_up;
    bool up;
    int64_t next_connect_ms;
    int64_t backoff_ms;
    int64_t ping_sent_ms; /* 0: none outstanding */
    int64_t last_ping_ms;
    uint32_t inflight;

    uint32_t nshards;
    uint8_t *sh_state;
    bool *sh_lost;            /* subscribers of this shard may have missed remote events */
    _Atomic bool *sh_dropped; /* this instance dropped events of the shard (any thread sets) */
    int64_t *sh_unused_ms;    /* since when no local subscriber needs the shard */

    _Atomic(out_node *) outbox;
    _Atomic uint32_t outbox_len;

    _Atomic int state;
    bool ever_up;
    pthread_mutex_t errmu;
    char err[256];

    _Atomic uint64_t published, received, dropped, reconnects, invalid;
    ms_counter *m_dropped, *m_received, *m_invalid;
    ms_gauge *m_up;
};

const char *rt_bridge_state_name(rt_bridge_state s)
{
    switch (s) {
    case RT_BRIDGE_DISABLED:
        return "disabled";
    case RT_BRIDGE_CONNECTING:
        return "connecting";
    case RT_BRIDGE_UP:
        return "up";
    case RT_BRIDGE_DOWN:
        return "down";
    }
    return "unknown";
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decodes s[0..n) into out (cap bytes, NUL-terminated); -1 when it does not fit or a
 * %XX is malformed or decodes to NUL. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

int rt_redis_url_parse(const char *url, rt_redis_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->port = 6379;
#define URL_FAIL(...)                                                                              \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return MS_ERR_INVALID;                                                                     \
    } while (0)
    if (!url || !*url)
        URL_FAIL("empty");
    const char *p = url;
    if (strncmp(p, "redis://", 8) == 0) {
        p += 8;
    } else if (strncmp(p, "rediss://", 9) == 0) {
        p += 9;
        out->tls = true;
    } else if (strstr(p, "://")) {
        URL_FAIL("expected redis:// or rediss://");
    }
    const char *end = p + strcspn(p, "/?#");
    if (*end == '?' || *end == '#')
        URL_FAIL("no query or fragment expected");
    /* userinfo: everything up to the last '@' of the authority */
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *uend = colon ? colon : at;
        if (pct_decode(p, (size_t)(uend - p), out->user, sizeof out->user) != 0)
            URL_FAIL("bad user name");
        if (!colon)
            URL_FAIL("user without a password: expected redis://user:password@host");
        if (pct_decode(colon + 1, (size_t)(at - colon - 1), out->password, sizeof out->password) !=
                0 ||
            !out->password[0])
            URL_FAIL("bad or empty password (percent-encode special characters)");
        p = at + 1;
    }
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *hend = colon ? colon : end;
    size_t hl = (size_t)(hend - p);
    if (hl == 0 || hl >= sizeof out->host)
        URL_FAIL("expected a host name");
    memcpy(out->host, p, hl);
    out->host[hl] = '\0';
    if (colon) {
        char *e;
        long v = strtol(colon + 1, &e, 10);
        if (e != end || e == colon + 1 || v < 1 || v > 65535)
            URL_FAIL("port: expected 1 to 65535");
        out->port = (int)v;
    }
    if (*end == '/' && end[1]) {
        char *e;
        long v = strtol(end + 1, &e, 10);
        if (*e || e == end + 1 || end[1] == '-' || end[1] == '+' || v < 0 || v > 100000)
            URL_FAIL("database: expected a number after the last '/'");
        out->db = (int)v;
    }
    return 0;
#undef URL_FAIL
}

static void set_err(rt_bridge *b, const char *what, const char *detail)
{
    pthread_mutex_lock(&b->errmu);
    snprintf(b->err, sizeof b->err, "%s%s%s", what, detail && *detail ? ": " : "",
             detail ? detail : "");
    pthread_mutex_unlock(&b->errmu);
}

static void set_state(rt_bridge *b, rt_bridge_state s)
{
    atomic_store(&b->state, (int)s);
    ms_gauge_set(b->m_up, s == RT_BRIDGE_UP);
}

rt_bridge_state rt_bridge_status(rt_bridge *b, char *err, size_t errlen)
{
    if (!b) {
        if (err && errlen)
            err[0] = '\0';
        return RT_BRIDGE_DISABLED;
    }
    if (err && errlen) {
        pthread_mutex_lock(&b->errmu);
        snprintf(err, errlen, "%s", b->err);
        pthread_mutex_unlock(&b->errmu);
    }
    return (rt_bridge_state)atomic_load(&b->state);
}

void rt_bridge_stats_get(rt_bridge *b, rt_bridge_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!b)
        return;
    out->published = atomic_load(&b->published);
    out->received = atomic_load(&b->received);
    out->dropped = atomic_load(&b->dropped);
    out->reconnects = atomic_load(&b->reconnects);
}

bool rt__bridge_up(rt_bridge *b)
{
    return atomic_load(&b->state) == RT_BRIDGE_UP;
}

/* ------------------------------------------------------- other threads */

static void outbox_push(rt_bridge *b, out_node *n)
{
    out_node *head = atomic_load_explicit(&b->outbox, memory_order_relaxed);
    do {
        n->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&b->outbox, &head, n, memory_order_release,
                                                    memory_order_relaxed));
    if (atomic_load(&b->alive))
        uv_async_send(&b->wake);
}

static void drop_event(rt_bridge *b, const rt_msg *msg)
{
    atomic_fetch_add(&b->dropped, 1);
    ms_counter_add(b->m_dropped, 1);
    if (msg)
        atomic_store(&b->sh_dropped[rt__hub_shard(b->hub, msg->channel)], true);
}

void rt__bridge_enqueue(rt_bridge *b, rt_msg *msg)
{
    /* Down: drop at once rather than queue for a Redis that may not return. */
    bool drop = !rt__bridge_up(b);
    if (!drop && atomic_fetch_add(&b->outbox_len, 1) >= OUTBOX_MAX) {
        atomic_fetch_sub(&b->outbox_len, 1);
        drop = true;
    }
    if (drop) {
        drop_event(b, msg);
        return;
    }
    out_node *n = calloc(1, sizeof *n);
    if (!n) {
        atomic_fetch_sub(&b->outbox_len, 1);
        atomic_fetch_add(&b->dropped, 1);
        return;
    }
    n->msg = rt_msg_ref(msg);
    outbox_push(b, n);
}

static void command(rt_bridge *b, const char *key, int64_t ttl_ms)
{
    if (!rt__bridge_up(b))
        return; /* the in-process table still has it */
    out_node *n = calloc(1, sizeof *n);
    if (!n)
        return;
    n->ttl_ms = ttl_ms;
    snprintf(n->key, sizeof n->key, "%s", key);
    outbox_push(b, n);
}

void rt__bridge_set_ttl(rt_bridge *b, const char *key, int64_t ttl_ms)
{
    command(b, key, ttl_ms > 0 ? ttl_ms : 1);
}

void rt__bridge_del(rt_bridge *b, const char *key)
{
    command(b, key, 0);
}

void rt__bridge_wake(rt_bridge *b)
{
    if (atomic_load(&b->alive))
        uv_async_send(&b->wake);
}

/* ------------------------------------------------ hiredis libuv adapter */

typedef struct {
    redisAsyncContext *ac;
    uv_poll_t handle;
    int events;
} uv_events;

static void ev_poll(uv_poll_t *handle, int status, int events)
{
    uv_events *p = handle->data;
    int ev = status ? p->events : events;
    if (p->ac && (ev & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac && (ev & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

/* hiredis asks for readable/writable interest one flag at a time */
static void ev_set(void *d, int flag, bool on)
{
    uv_events *p = d;
    p->events = on ? p->events | flag : p->events & ~flag;
    if (p->events)
        uv_poll_start(&p->handle, p->events, ev_poll);
    else
        uv_poll_stop(&p->handle);
}

static void ev_add_read(void *d)
{
    ev_set(d, UV_READABLE, true);
}

static void ev_del_read(void *d)
{
    ev_set(d, UV_READABLE, false);
}

static void ev_add_write(void *d)
{
    ev_set(d, UV_WRITABLE, true);
}

static void ev_del_write(void *d)
{
    ev_set(d, UV_WRITABLE, false);
}

static void ev_closed(uv_handle_t *h)
{
    free(h->data);
}

static void ev_cleanup(void *d)
{
    uv_events *p = d;
    p->ac = NULL; /* hiredis frees the context right after */
    uv_close((uv_handle_t *)&p->handle, ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (ac->ev.data)
        return REDIS_ERR;
    uv_events *p = calloc(1, sizeof *p);
    if (!p)
        return REDIS_ERR;
    if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
        free(p);
        return REDIS_ERR;
    }
    p->ac = ac;
    p->handle.data = p;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    ac->ev.data = p;
    return REDIS_OK;
}

/* ------------------------------------------------------- bridge thread */

static void teardown(rt_bridge *b);
static void reconcile(rt_bridge *b);

static void go_down(rt_bridge *b, const char *why, const char *detail)
{
    bool was_up = b->up;
    char tls_err[sizeof b->tls_err];
    snprintf(tls_err, sizeof tls_err, "%s", b->tls_err);
    b->tls_err[0] = '\0';
    if (tls_err[0])
        detail = tls_err; /* what hiredis saw (the pair closed) follows from it */
    teardown(b);
    if (b->stopping)
        return;
    set_err(b, why, detail);
    set_state(b, b->ever_up ? RT_BRIDGE_DOWN : RT_BRIDGE_CONNECTING);
    if (was_up)
        MS_WARN("realtime", "redis %s:%d lost (%s%s%s): delivering locally, reconnecting",
                b->url.host, b->url.port, why, detail && *detail ? ": " : "", detail ? detail : "");
    b->next_connect_ms = rt__now_ms() + b->backoff_ms;
    b->backoff_ms = b->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b->backoff_ms * 2;
}

/* Frees both connections; every shard loses its subscription and coverage. */
static void teardown(rt_bridge *b)
{
    redisAsyncContext *p = b->pub, *s = b->sub;
    b->pub = b->sub = NULL;
    b->pub_up = b->sub_up = false;
    b->up = false;
    b->ping_sent_ms = 0;
    b->inflight = 0;
    if (p)
        redisAsyncFree(p);
    if (s)
        redisAsyncFree(s);
    for (uint32_t i = 0; i < b->nshards; i++) {
        if (b->sh_state[i] != SH_NONE || rt__hub_shard_wanted(b->hub, i))
            b->sh_lost[i] = true;
        b->sh_state[i] = SH_NONE;
        rt__hub_shard_since_set(b->hub, i, UINT64_MAX);
    }
}

/* Tells the others which shards lost events of ours (Redis was down, or the backlog full). */
static void publish_gaps(rt_bridge *b)
{
    char chan[48], payload[40];
    snprintf(payload, sizeof payload, "G %016" PRIx64, rt_hub_instance(b->hub));
    for (uint32_t i = 0; i < b->nshards; i++) {
        if (!atomic_exchange(&b->sh_dropped[i], false))
            continue;
        snprintf(chan, sizeof chan, "msgstore:rt:%" PRIu32, i);
        redisAsyncCommand(b->pub, NULL, NULL, "PUBLISH %s %s", chan, payload);
    }
}

static void both_up(rt_bridge *b)
{
    b->up = true;
    b->backoff_ms = BACKOFF_MIN_MS;
    if (b->ever_up) {
        atomic_fetch_add(&b->reconnects, 1);
        MS_INFO("realtime", "redis %s:%d back", b->url.host, b->url.port);
    } else {
        MS_INFO("realtime", "redis %s:%d connected", b->url.host, b->url.port);
    }
    b->ever_up = true;
    set_err(b, "", NULL);
    set_state(b, RT_BRIDGE_UP);
    publish_gaps(b);
    reconcile(b);
}

static void conn_ready(rt_bridge *b, const redisAsyncContext *ac)
{
    if (ac == b->pub)
        b->pub_up = true;
    if (ac == b->sub)
        b->sub_up = true;
    if (b->pub_up && b->sub_up)
        both_up(b);
}

/* The answer to AUTH, SELECT or (TLS) PING; priv is 1 for the last command of the handshake. */
static void on_hello(redisAsyncContext *ac, void *r, void *priv)
{
    rt_bridge *b = ac->data;
    redisReply *reply = r;
    if (!reply || (ac != b->pub && ac != b->sub))
        return; /* the connection is being freed */
    if (reply->type == REDIS_REPLY_ERROR) {
        char detail[200];
        snprintf(detail, sizeof detail, "%s", reply->str ? reply->str : "error");
        go_down(b, priv ? "redis refused SELECT or AUTH" : "redis refused AUTH", detail);
        return;
    }
    if (priv)
        conn_ready(b, ac);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    rt_bridge *b = ac->data;
    if (status != REDIS_OK) {
        /* hiredis frees ac after this returns. */
        if (ac == b->pub)
            b->pub = NULL;
        if (ac == b->sub)
            b->sub = NULL;
        go_down(b, "connect failed", ac->errstr);
        return;
    }
    if (!b->tls && !b->url.password[0] && (ac == b->sub || b->url.db == 0))
        conn_ready(b, ac); /* else when the handshake's last answer comes (on_hello) */
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    rt_bridge *b = ac->data;
    if (ac != b->pub && ac != b->sub)
        return; /* one we freed ourselves */
    if (ac == b->pub)
        b->pub = NULL;
    if (ac == b->sub)
        b->sub = NULL;
    go_down(b, "connection lost", status == REDIS_OK ? "closed" : ac->errstr);
}

/* ------------------------------------------------------- TLS tunnel */

typedef struct tunnel {
    rt_bridge *b;
    uv_pipe_t plain; /* our end of hiredis' socket */
    uv_tcp_t net;
    uv_connect_t conn;
    cql_tls tls;
    cql_buf pending; /* plaintext from hiredis before the handshake is done */
    cql_buf out;
    int handles; /* open libuv handles; freed when 0 */
    bool closing;
} tunnel;

typedef struct {
    uv_write_t req;
    uv_buf_t buf;
} tun_write;

static void tun_closed(uv_handle_t *h)
{
    tunnel *t = h->data;
    if (--t->handles > 0)
        return;
    cql__tls_free(&t->tls);
    cql_buf_free(&t->pending);
    cql_buf_free(&t->out);
    free(t);
}

/* Closes both sides; why (NULL: hiredis closed its end) is kept for /health. */
static void tun_close(tunnel *t, const char *why)
{
    if (t->closing)
        return;
    t->closing = true;
    if (why && !t->b->stopping)
        snprintf(t->b->tls_err, sizeof t->b->tls_err, "%s", why);
    uv_close((uv_handle_t *)&t->plain, tun_closed);
    uv_close((uv_handle_t *)&t->net, tun_closed);
}

static void tun_wrote(uv_write_t *req, int status)
{
    tun_write *w = (tun_write *)req;
    tunnel *t = req->data;
    free(w->buf.base);
    free(w);
    if (status < 0 && status != UV_ECANCELED)
        tun_close(t, uv_strerror(status));
}

/* Writes and empties buf (ownership of its bytes moves to the write). */
static void tun_send(tunnel *t, uv_stream_t *s, cql_buf *buf)
{
    if (!buf->len || t->closing)
        return;
    tun_write *w = malloc(sizeof *w);
    if (!w) {
        tun_close(t, "out of memory");
        return;
    }
    w->buf = uv_buf_init((char *)buf->data, (unsigned)buf->len);
    w->req.data = t;
    cql_buf_init(buf);
    if (uv_write(&w->req, s, &w->buf, 1, tun_wrote) != 0) {
        free(w->buf.base);
        free(w);
        tun_close(t, "write failed");
    }
}

static void tun_flush(tunnel *t)
{
    if (cql__tls_drain(&t->tls, &t->out) != 0) {
        tun_close(t, "out of memory");
        return;
    }
    tun_send(t, (uv_stream_t *)&t->net, &t->out);
}

static void tun_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void tun_plain_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    tunnel *t = s->data;
    if (n < 0)
        tun_close(t, NULL); /* hiredis closed (freed) its context */
    else if (n > 0 && !t->tls.handshake_done) {
        cql_buf_append(&t->pending, buf->base, (size_t)n);
        if (t->pending.err)
            tun_close(t, "out of memory");
    } else if (n > 0 && cql__tls_write(&t->tls, buf->base, (size_t)n) != 0)
        tun_close(t, "TLS write failed");
    else if (n > 0)
        tun_flush(t);
    free(buf->base);
}

static void tun_net_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    tunnel *t = s->data;
    char err[200];
    if (n < 0) {
        snprintf(err, sizeof err, "TLS: %s",
                 n == UV_EOF ? "the server closed the connection" : uv_strerror((int)n));
        tun_close(t, err);
    } else if (n > 0 && cql__tls_feed(&t->tls, buf->base, (size_t)n) != 0) {
        tun_close(t, "out of memory");
    }
    free(buf->base);
    if (n <= 0 || t->closing)
        return;
    if (!t->tls.handshake_done) {
        int rc = cql__tls_handshake(&t->tls, err, sizeof err);
        if (rc < 0) {
            tun_close(t, err);
            return;
        }
        if (rc == 1 && t->pending.len) {
            if (cql__tls_write(&t->tls, t->pending.data, t->pending.len) != 0) {
                tun_close(t, "TLS write failed");
                return;
            }
            cql_buf_reset(&t->pending);
        }
    }
    if (t->tls.handshake_done) {
        cql_buf plain = {0};
        if (cql__tls_read(&t->tls, &plain, err, sizeof err) != 0) {
            cql_buf_free(&plain);
            tun_close(t, err);
            return;
        }
        tun_send(t, (uv_stream_t *)&t->plain, &plain);
        cql_buf_free(&plain);
    }
    tun_flush(t);
}

static void tun_connected(uv_connect_t *req, int status)
{
    tunnel *t = req->data;
    char err[200];
    if (t->closing)
        return;
    if (status < 0) {
        snprintf(err, sizeof err, "%s", uv_strerror(status));
        tun_close(t, err);
        return;
    }
    uv_read_start((uv_stream_t *)&t->net, tun_alloc, tun_net_read);
    if (cql__tls_handshake(&t->tls, err, sizeof err) < 0) {
        tun_close(t, err);
        return;
    }
    tun_flush(t);
}

/* A connected Unix socket pair: hiredis' context on one end, the other's fd in *fd. */
static redisAsyncContext *plain_pair(int *fd, char *err, size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    char dir[80], path[sizeof dir + 4];
    snprintf(dir, sizeof dir, "%s/msgstore-redis-XXXXXX",
             tmp && *tmp && strlen(tmp) < 50 ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        snprintf(err, errlen, "TLS tunnel: %s: %s", dir, strerror(errno));
        return NULL;
    }
    snprintf(path, sizeof path, "%s/s", dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    redisAsyncContext *ac = NULL;
    *fd = -1;
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (l >= 0 && bind(l, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(l, 1) == 0) {
        ac = redisAsyncConnectUnix(path);
        if (ac && !ac->err)
            *fd = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    }
    if (*fd < 0) {
        snprintf(err, errlen, "TLS tunnel: %s", ac && ac->err ? ac->errstr : strerror(errno));
        if (ac)
            redisAsyncFree(ac);
        ac = NULL;
    }
    if (l >= 0)
        close(l);
    unlink(path);
    rmdir(dir);
    return ac;
}

/* Opens a tunnel to the URL's host and a hiredis context that talks through it. */
static redisAsyncContext *open_tunnel(rt_bridge *b, char *err, size_t errlen)
{
    char port[8];
    snprintf(port, sizeof port, "%d", b->url.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int gai = getaddrinfo(b->url.host, port, &hints, &ai);
    if (gai != 0) {
        snprintf(err, errlen, "%s", gai_strerror(gai));
        return NULL;
    }
    int fd;
    redisAsyncContext *ac = plain_pair(&fd, err, errlen);
    tunnel *t = ac ? calloc(1, sizeof *t) : NULL;
    if (!t || cql__tls_start(&t->tls, b->tls, b->url.host, true) != 0) {
        if (ac && !err[0])
            snprintf(err, errlen, "TLS: cannot start a session");
        free(t);
        if (ac) {
            close(fd);
            redisAsyncFree(ac);
        }
        freeaddrinfo(ai);
        return NULL;
    }
    t->b = b;
    uv_pipe_init(&b->loop, &t->plain, 0);
    uv_tcp_init(&b->loop, &t->net);
    t->plain.data = t->net.data = t->conn.data = t;
    t->handles = 2;
    int rc = uv_pipe_open(&t->plain, fd);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&t->plain, tun_alloc, tun_plain_read);
    if (rc == 0)
        rc = uv_tcp_connect(&t->conn, &t->net, ai->ai_addr, tun_connected);
    freeaddrinfo(ai);
    if (rc != 0) {
        snprintf(err, errlen, "%s", uv_strerror(rc));
        tun_close(t, NULL);
        redisAsyncFree(ac);
        return NULL;
    }
    return ac;
}

static redisAsyncContext *open_one(rt_bridge *b)
{
    redisAsyncContext *ac;
    if (b->tls) {
        char err[200] = "";
        ac = open_tunnel(b, err, sizeof err);
        if (!ac) {
            set_err(b, "connect failed", err);
            return NULL;
        }
    } else {
        ac = redisAsyncConnect(b->url.host, b->url.port);
    }
    if (!ac)
        return NULL;
    if (ac->err) {
        set_err(b, "connect failed", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = b;
    if (ev_attach(ac, &b->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

/* AUTH and (on the publishing connection: keys live in a database, pub/sub
 * spans them all) SELECT, sent first: hiredis writes them once connected. */
static void hello(rt_bridge *b, redisAsyncContext *ac, bool select)
{
    bool sel = select && b->url.db != 0;
    if (b->url.password[0]) {
        void *last = (void *)(uintptr_t)!sel;
        if (b->url.user[0])
            redisAsyncCommand(ac, on_hello, last, "AUTH %s %s", b->url.user, b->url.password);
        else
            redisAsyncCommand(ac, on_hello, last, "AUTH %s", b->url.password);
    }
    if (sel)
        redisAsyncCommand(ac, on_hello, (void *)(uintptr_t)1, "SELECT %d", b->url.db);
    else if (b->tls && !b->url.password[0])
        /* hiredis' end of the tunnel is up at once: up is when Redis answers through TLS */
        redisAsyncCommand(ac, on_hello, (void *)(uintptr_t)1, "PING");
}

static void try_connect(rt_bridge *b)
{
    b->pub = open_one(b);
    b->sub = b->pub ? open_one(b) : NULL;
    if (b->pub && b->sub) {
        hello(b, b->pub, true);
        hello(b, b->sub, false);
    }
    if (!b->pub || !b->sub) {
        char err[256];
        pthread_mutex_lock(&b->errmu);
        snprintf(err, sizeof err, "%s", b->err);
        pthread_mutex_unlock(&b->errmu);
        go_down(b, err[0] ? err : "connect failed", NULL);
    }
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    rt_bridge *b = ac->data;
    redisReply *reply = r;
    (void)priv;
    if (b->inflight)
        b->inflight--;
    if (reply && reply->type != REDIS_REPLY_ERROR)
        return;
    if (reply)
        MS_WARN("realtime", "redis command failed: %s", reply->str);
}

static void on_published(redisAsyncContext *ac, void *r, void *priv)
{
    rt_bridge *b = ac->data;
    on_reply(ac, r, priv);
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_INTEGER)
        atomic_fetch_add(&b->published, 1);
}

static void on_pong(redisAsyncContext *ac, void *r, void *priv)
{
    rt_bridge *b = ac->data;
    redisReply *reply = r;
    on_reply(ac, r, priv);
    if (reply && reply->type == REDIS_REPLY_ERROR && ac == b->pub) {
        char detail[200]; /* NOAUTH: a password is needed (MSGSTORE_REDIS_URL) */
        snprintf(detail, sizeof detail, "%s", reply->str ? reply->str : "error");
        go_down(b, "redis refused PING", detail);
        return;
    }
    if (r)
        b->ping_sent_ms = 0;
}

/* Something on our Redis channels that no instance of ours sent: dropped, counted, logged
 * (the first and every 1000th: a flood must not flood the log too). */
static void invalid(rt_bridge *b, const char *why)
{
    uint64_t n = atomic_fetch_add(&b->invalid, 1);
    ms_counter_add(b->m_invalid, 1);
    if (n % 1000 == 0)
        MS_WARN("realtime", "dropped a message from redis (%" PRIu64 " so far): %s", n + 1, why);
}

/*
 * Whether an event from Redis is one an instance of ours rendered: the
 * header in its canonical form, a kind that is published, a channel and a
 * position, and as JSON exactly {"type","channel","position","data"} with
 * the header's values and an object as data. Its bytes go to subscribers
 * as they are (an SSE data line, a WebSocket text frame): no byte below
 * 0x20 may be in them (a raw newline would end the SSE data line and let
 * the rest forge events), and it must be valid UTF-8 (jansson checks).
 * Returns NULL or why not.
 */
static const char *check_event(const char *head, size_t hl, uint64_t inst, int kind, ms_id_format f,
                               ms_xid channel, uint64_t position, int64_t created, const char *json,
                               size_t len)
{
    if (kind < 0 || kind >= RT_KIND_COUNT || kind == RT_RESYNC)
        return "an unknown event kind";
    if (ms_xid_is_none(channel) || position == 0)
        return "channel or position 0";
    char canon[128], num[MS_XID_STRLEN];
    ms_xid_format(f, channel, num);
    int n = snprintf(canon, sizeof canon, "E %016" PRIx64 " %d %s %" PRIu64 " %" PRId64, inst, kind,
                     num, position, created);
    if (n < 0 || (size_t)n != hl || memcmp(canon, head, hl) != 0)
        return "a malformed event header";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)json[i] < 0x20)
            return "a control character (a raw newline?) in the event";
    json_error_t e;
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &e);
    const char *why = NULL;
    if (!json_is_object(o)) {
        why = "the event is not a JSON object (or not UTF-8)";
    } else if (json_object_size(o) != 4 || !json_is_object(json_object_get(o, "data"))) {
        why = "the event is not {type, channel, position, data}";
    } else if (!json_is_string(json_object_get(o, "type")) ||
               strcmp(json_string_value(json_object_get(o, "type")), rt_kind_name(kind)) != 0) {
        why = "the event's type is not its header's kind";
    } else {
        const char *c = json_string_value(json_object_get(o, "channel"));
        snprintf(canon, sizeof canon, "%" PRIu64, position);
        const char *p = json_string_value(json_object_get(o, "position"));
        if (!c || strcmp(c, num) != 0 || !p || strcmp(p, canon) != 0)
            why = "the event's channel or position is not its header's";
    }
    json_decref(o);
    return why;
}

/* An event or a gap notice from some instance. */
static void on_message(rt_bridge *b, uint32_t shard, const char *p, size_t len)
{
    rt_hub *h = b->hub;
    char head[128];
    const char *nl = memchr(p, '\n', len);
    size_t hl = nl ? (size_t)(nl - p) : len;
    if (hl >= sizeof head) {
        invalid(b, "a header line over 127 bytes");
        return;
    }
    memcpy(head, p, hl);
    head[hl] = '\0';
    uint64_t inst = 0, position = 0;
    ms_xid channel = {0, 0};
    char chtext[MS_XID_STRLEN + 1];
    int64_t created = 0;
    int kind = -1;
    if (head[0] == 'G' && !nl && hl == 18 && sscanf(head, "G %" SCNx64, &inst) == 1) {
        if (inst == rt_hub_instance(h))
            return;
        /* Another instance dropped events of this shard: what our rings
         * hold is incomplete up to now, and subscribers may have missed some. */
        rt__hub_shard_since_set(h, shard, rt__hub_position_at(h, rt__now_ms()));
        rt__hub_shard_gap(h, shard, "peer_gap");
        return;
    }
    if (!nl ||
        sscanf(head, "E %" SCNx64 " %d %37s %" SCNu64 " %" SCNd64, &inst, &kind, chtext, &position,
               &created) != 5 ||
        ms_xid_parse(rt__hub_id_format(h), chtext, strlen(chtext), &channel) != 0) {
        invalid(b, "a message that is neither an event nor a gap notice");
        return;
    }
    if (inst == rt_hub_instance(h))
        return; /* delivered locally when it was published */
    const char *why = check_event(head, hl, inst, kind, rt__hub_id_format(h), channel, position,
                                  created, nl + 1, len - hl - 1);
    if (why) {
        invalid(b, why);
        return;
    }
    rt_msg *m = rt__msg_raw((rt_kind)kind, channel, position, nl + 1, len - hl - 1);
    if (!m)
        return;
    m->remote = 1;
    m->origin = inst;
    m->created_us = created;
    atomic_fetch_add(&b->received, 1);
    ms_counter_add(b->m_received, 1);
    if (rt_kind_ephemeral((rt_kind)kind))
        rt__ephemeral_remote(h, m);
    rt__hub_dispatch(h, m, false);
}

static void on_sub_reply(redisAsyncContext *ac, void *r, void *priv)
{
    rt_bridge *b = ac->data;
    redisReply *reply = r;
    uint32_t shard = (uint32_t)(uintptr_t)priv;
    if (reply && reply->type == REDIS_REPLY_ERROR && (ac == b->sub)) {
        char detail[200];
        snprintf(detail, sizeof detail, "%s", reply->str ? reply->str : "error");
        go_down(b, "redis refused SUBSCRIBE", detail);
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 || shard >= b->nshards)
        return;
    const redisReply *what = reply->element[0];
    if (what->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(what->str, "message") == 0 && reply->element[2]->type == REDIS_REPLY_STRING) {
        on_message(b, shard, reply->element[2]->str, reply->element[2]->len);
    } else if (strcmp(what->str, "subscribe") == 0) {
        b->sh_state[shard] = SH_SUBSCRIBED;
        /* From here on this shard's stream is complete. */
        rt__hub_shard_since_set(b->hub, shard, rt__hub_position_at(b->hub, rt__now_ms()));
        if (b->sh_lost[shard]) {
            b->sh_lost[shard] = false;
            rt__hub_shard_gap(b->hub, shard, "redis_gap");
        }
    } else if (strcmp(what->str, "unsubscribe") == 0) {
        b->sh_state[shard] = SH_NONE;
        reconcile(b); /* wanted again in the meantime? */
    }
}

/* Subscribes to the shards local subscribers need, drops the others after the linger. */
static void reconcile(rt_bridge *b)
{
    int64_t now = rt__now_ms();
    for (uint32_t i = 0; i < b->nshards; i++) {
        bool wanted = rt__hub_shard_wanted(b->hub, i);
        if (wanted)
            b->sh_unused_ms[i] = 0;
        else if (b->sh_unused_ms[i] == 0)
            b->sh_unused_ms[i] = now;
        if (!b->up) {
            if (wanted)
                b->sh_lost[i] = true;
            continue;
        }
        char chan[48];
        snprintf(chan, sizeof chan, "msgstore:rt:%" PRIu32, i);
        if (wanted && b->sh_state[i] == SH_NONE) {
            b->sh_state[i] = SH_SUBSCRIBING;
            redisAsyncCommand(b->sub, on_sub_reply, (void *)(uintptr_t)i, "SUBSCRIBE %s", chan);
        } else if (!wanted && b->sh_state[i] == SH_SUBSCRIBED &&
                   now - b->sh_unused_ms[i] >= SHARD_LINGER_MS) {
            b->sh_state[i] = SH_UNSUBSCRIBING;
            b->sh_lost[i] = false;
            rt__hub_shard_since_set(b->hub, i, UINT64_MAX);
            redisAsyncCommand(b->sub, on_sub_reply, (void *)(uintptr_t)i, "UNSUBSCRIBE %s", chan);
        }
    }
}

static void publish_one(rt_bridge *b, rt_msg *m)
{
    if (!b->up || b->inflight >= INFLIGHT_MAX) {
        drop_event(b, m);
        return;
    }
    char head[128], ch[MS_XID_STRLEN];
    ms_xid_format(rt__hub_id_format(b->hub), m->channel, ch);
    int hl = snprintf(head, sizeof head, "E %016" PRIx64 " %d %s %" PRIu64 " %" PRId64 "\n",
                      m->origin, (int)m->kind, ch, m->position, m->created_us);
    char *buf = malloc((size_t)hl + m->len);
    if (!buf) {
        drop_event(b, m);
        return;
    }
    memcpy(buf, head, (size_t)hl);
    memcpy(buf + hl, m->json, m->len);
    char chan[48];
    snprintf(chan, sizeof chan, "msgstore:rt:%" PRIu32, rt__hub_shard(b->hub, m->channel));
    if (redisAsyncCommand(b->pub, on_published, NULL, "PUBLISH %s %b", chan, buf,
                          (size_t)hl + m->len) == REDIS_OK)
        b->inflight++;
    else
        drop_event(b, m);
    free(buf);
}

static void drain_outbox(rt_bridge *b)
{
    out_node *list = atomic_exchange_explicit(&b->outbox, NULL, memory_order_acquire);
    out_node *rev = NULL;
    while (list) {
        out_node *n = list->next;
        list->next = rev;
        rev = list;
        list = n;
    }
    char inst[24];
    snprintf(inst, sizeof inst, "%016" PRIx64, rt_hub_instance(b->hub));
    while (rev) {
        out_node *n = rev;
        rev = n->next;
        if (n->msg) {
            atomic_fetch_sub(&b->outbox_len, 1);
            publish_one(b, n->msg);
            rt_msg_unref(n->msg);
        } else if (b->up && b->inflight < INFLIGHT_MAX) {
            int rc = n->ttl_ms > 0 ? redisAsyncCommand(b->pub, on_reply, NULL, "SET %s %s PX %lld",
                                                       n->key, inst, (long long)n->ttl_ms)
                                   : redisAsyncCommand(b->pub, on_reply, NULL, "DEL %s", n->key);
            if (rc == REDIS_OK)
                b->inflight++;
        }
        free(n);
    }
}

static void on_wake(uv_async_t *a)
{
    rt_bridge *b = a->data;
    if (b->stopping) {
        teardown(b);
        uv_close((uv_handle_t *)&b->wake, NULL);
        uv_timer_stop(&b->tick);
        uv_close((uv_handle_t *)&b->tick, NULL);
        return;
    }
    drain_outbox(b);
    reconcile(b);
}

static void on_tick(uv_timer_t *t)
{
    rt_bridge *b = t->data;
    int64_t now = rt__now_ms();
    if (!b->pub && !b->sub && now >= b->next_connect_ms) {
        try_connect(b);
        return;
    }
    if (b->up) {
        if (b->ping_sent_ms && now - b->ping_sent_ms > PING_TIMEOUT_MS) {
            go_down(b, "no answer to PING", "3 s");
            return;
        }
        if (!b->ping_sent_ms && now - b->last_ping_ms >= PING_EVERY_MS) {
            if (redisAsyncCommand(b->pub, on_pong, NULL, "PING") == REDIS_OK) {
                b->inflight++;
                b->ping_sent_ms = now;
                b->last_ping_ms = now;
            }
        }
        publish_gaps(b);
        reconcile(b);
    } else if ((b->pub || b->sub) && b->next_connect_ms && now - b->next_connect_ms > 5000) {
        go_down(b, "connect timed out", NULL); /* a Redis that accepts and never answers */
    }
}

static void thread_main(void *arg)
{
    rt_bridge *b = arg;
    b->next_connect_ms = rt__now_ms();
    try_connect(b);
    uv_run(&b->loop, UV_RUN_DEFAULT);
}

int rt_bridge_start(rt_hub *h, const char *url, const rt_redis_tls *tls, rt_bridge **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    rt_bridge *b = calloc(1, sizeof *b);
    if (!b)
        return MS_ERR_NOMEM;
    if (rt_redis_url_parse(url, &b->url, err, errlen) != 0) {
        free(b);
        return MS_ERR_INVALID;
    }
    if (b->url.tls) {
        cql_tls_cfg c = {.ca_file = tls ? tls->ca_file : NULL,
                         .cert_file = tls ? tls->cert_file : NULL,
                         .key_file = tls ? tls->key_file : NULL,
                         .verify_peer = true,
                         .verify_hostname = true};
        int rc = cql__tls_ctx_new(&c, &b->tls, err, errlen);
        if (rc != 0) {
            free(b);
            return rc;
        }
    }
    b->hub = h;
    b->nshards = rt__hub_shards(h);
    b->sh_state = calloc(b->nshards, 1);
    b->sh_lost = calloc(b->nshards, sizeof *b->sh_lost);
    b->sh_dropped = calloc(b->nshards, sizeof *b->sh_dropped);
    b->sh_unused_ms = calloc(b->nshards, sizeof *b->sh_unused_ms);
    if (!b->sh_state || !b->sh_lost || !b->sh_dropped || !b->sh_unused_ms ||
        uv_loop_init(&b->loop) != 0) {
        free(b->sh_state);
        free(b->sh_lost);
        free((void *)b->sh_dropped);
        free(b->sh_unused_ms);
        SSL_CTX_free(b->tls);
        free(b);
        return MS_ERR_NOMEM;
    }
    pthread_mutex_init(&b->errmu, NULL);
    b->backoff_ms = BACKOFF_MIN_MS;
    b->m_dropped = ms_counter_get("msgstore_rt_redis_dropped_total", NULL,
                                  "events not sent to Redis (down or backlog full)");
    b->m_received = ms_counter_get("msgstore_rt_redis_received_total", NULL,
                                   "events received from other instances");
    b->m_invalid = ms_counter_get("msgstore_rt_redis_invalid_total", NULL,
                                  "messages on msgstore's Redis channels dropped as not ours "
                                  "(malformed or forged)");
    b->m_up = ms_gauge_get("msgstore_rt_redis_up", NULL, "1 when the Redis bridge is connected");
    set_state(b, RT_BRIDGE_CONNECTING);
    uv_async_init(&b->loop, &b->wake, on_wake);
    b->wake.data = b;
    uv_timer_init(&b->loop, &b->tick);
    b->tick.data = b;
    uv_timer_start(&b->tick, on_tick, TICK_MS, TICK_MS);
    atomic_store(&b->alive, true);
    rt__hub_set_bridge(h, b);
    if (uv_thread_create(&b->thread, thread_main, b) != 0) {
        rt__hub_set_bridge(h, NULL);
        atomic_store(&b->alive, false);
        uv_close((uv_handle_t *)&b->wake, NULL);
        uv_close((uv_handle_t *)&b->tick, NULL);
        uv_run(&b->loop, UV_RUN_DEFAULT);
        uv_loop_close(&b->loop);
        free(b->sh_state);
        free(b->sh_lost);
        free((void *)b->sh_dropped);
        free(b->sh_unused_ms);
        SSL_CTX_free(b->tls);
        pthread_mutex_destroy(&b->errmu);
        free(b);
        return MS_ERR_NOMEM;
    }
    *out = b;
    return 0;
}

void rt_bridge_stop(rt_bridge *b)
{
    if (!b)
        return;
    /* After this no other thread holds b. */
    rt__hub_set_bridge(b->hub, NULL);
    for (uint32_t i = 0; i < b->nshards; i++)
        rt__hub_shard_since_set(b->hub, i, 0);
    b->stopping = true; /* read by the bridge thread after the wake below */
    uv_async_send(&b->wake);
    uv_thread_join(&b->thread);
    atomic_store(&b->alive, false);
    /* Loop closed its handles; run once more for hiredis' deferred frees. */
    uv_run(&b->loop, UV_RUN_DEFAULT);
    uv_loop_close(&b->loop);
    out_node *list = atomic_exchange(&b->outbox, NULL);
    while (list) {
        out_node *n = list->next;
        rt_msg_unref(list->msg);
        free(list);
        list = n;
    }
    free(b->sh_state);
    free(b->sh_lost);
    free((void *)b->sh_dropped);
    free(b->sh_unused_ms);
    SSL_CTX_free(b->tls);
    pthread_mutex_destroy(&b->errmu);
    free(b);
}
