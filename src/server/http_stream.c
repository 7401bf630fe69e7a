/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_stream.c - responses that stay open: streamed bodies (Server-Sent
 * Events) through an h2o generator, and WebSockets through h2o + wslay.
 *
 * h2o 2.2.5 keeps one write in flight per response and does not read from an
 * HTTP/1 connection while it answers, so a client that went away is noticed
 * on the next write: streams should send something (an SSE comment) every
 * few seconds. WebSocket writes made outside wslay's message callback must be
 * flushed with h2o_websocket_proceed() (h2o #1591), which http_ws_send() does.
 */
#include "server/http_internal.h"
#include "core/error.h"
#include "core/log.h"

#include <h2o/websocket.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define STREAM_MAX_QUEUED (1024 * 1024)

struct http_stream {
    h2o_generator_t gen; /* first: h2o hands it back to proceed/stop */
    h2o_req_t *req;
    http_stream_closed_fn on_closed;
    void *ctx;
    int fd;         /* the connection's socket, for http_stream_abort() */
    char *inflight; /* being written; freed when h2o asks for more */
    char *pending;
    size_t pending_len, pending_cap;
    bool writing, ending, final_sent, closed;
    http_stream_drain_fn on_drain; /* see http_stream_set_drain() */
    void *drain_ctx;
};

static void stream_closed(http_stream *s)
{
    if (s->closed)
        return;
    s->closed = true;
    if (s->on_closed)
        s->on_closed(s, s->ctx);
}

static void stream_flush(http_stream *s)
{
    if (s->writing || s->final_sent || s->closed)
        return;
    if (s->pending_len == 0 && !s->ending)
        return;
    h2o_iovec_t buf = h2o_iovec_init(s->pending, s->pending_len);
    free(s->inflight);
    s->inflight = s->pending;
    s->pending = NULL;
    s->pending_len = s->pending_cap = 0;
    s->writing = true;
    if (s->ending) {
        s->final_sent = true;
        h2o_send(s->req, buf.len ? &buf : NULL, buf.len ? 1 : 0, H2O_SEND_STATE_FINAL);
        /* the request is over: h2o disposes it (and us, via the pool) */
    } else {
        h2o_send(s->req, &buf, 1, H2O_SEND_STATE_IN_PROGRESS);
    }
}

static void stream_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    (void)req;
    http_stream *s = (http_stream *)g;
    s->writing = false;
    free(s->inflight);
    s->inflight = NULL;
    stream_flush(s);
    /* last: the callback may end the stream, and h2o then disposes it */
    if (s->on_drain && s->pending_len == 0 && !s->closed && !s->ending)
        s->on_drain(s, s->drain_ctx);
}

static void stream_stop(h2o_generator_t *g, h2o_req_t *req)
{
    (void)req;
    stream_closed((http_stream *)g);
}

static void stream_dispose(void *p)
{
    http_stream *s = p;
    stream_closed(s);
    free(s->inflight);
    free(s->pending);
}

http_stream *http_stream_start(http_request *r, int status, const char *content_type,
                               http_stream_closed_fn on_closed, void *ctx)
{
    h2o_req_t *req = r->h;
    http_stream *s = h2o_mem_alloc_shared(&req->pool, sizeof *s, stream_dispose);
    memset(s, 0, sizeof *s);
    s->gen.proceed = stream_proceed;
    s->gen.stop = stream_stop;
    s->req = req;
    s->fd = r->conn ? r->conn->fd : -1;
    s->on_closed = on_closed;
    s->ctx = ctx;
    r->answered = true;
    req->res.status = status;
    req->res.reason = http__reason(status);
    req->res.content_length = SIZE_MAX;
    if (content_type)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                       strlen(content_type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-cache"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
                          r->rid, strlen(r->rid));
    req->http1_is_persistent = 0; /* a stream ends with its connection */
    http__request_done(r, status, 0);
    h2o_start_response(req, &s->gen);
    /* nothing to send yet: the headers go out with the first write */
    return s;
}

int http_stream_writev(http_stream *s, const http_str *bufs, size_t n)
{
    if (s->closed || s->ending)
        return MS_ERR_SHUTDOWN;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += bufs[i].len;
    if (len == 0)
        return 0;
    /* All or nothing: a part queued without the rest would corrupt the
     * stream's framing. One piece larger than the limit goes into an empty
     * queue: the limit bounds a slow client's backlog, not a piece. */
    if (s->pending_len > 0 && s->pending_len + len > STREAM_MAX_QUEUED)
        return MS_ERR_TOO_LARGE;
    if (s->pending_len + len > s->pending_cap) {
        size_t cap = s->pending_cap ? s->pending_cap : 4096;
        while (cap < s->pending_len + len)
            cap *= 2;
        char *p = realloc(s->pending, cap);
        if (!p)
            return MS_ERR_NOMEM;
        s->pending = p;
        s->pending_cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        if (bufs[i].len)
            memcpy(s->pending + s->pending_len, bufs[i].base, bufs[i].len);
        s->pending_len += bufs[i].len;
    }
    stream_flush(s);
    return 0;
}

int http_stream_write(http_stream *s, const void *data, size_t len)
{
    http_str b = {data, len};
    return http_stream_writev(s, &b, 1);
}

void http_stream_end(http_stream *s)
{
    if (s->closed || s->ending)
        return;
    s->ending = true;
    stream_flush(s);
}

void http_stream_set_drain(http_stream *s, http_stream_drain_fn fn, void *ctx)
{
    s->on_drain = fn;
    s->drain_ctx = ctx;
}

size_t http_stream_queued(const http_stream *s)
{
    return s->pending_len;
}

void http_stream_abort(http_stream *s)
{
    if (!s->closed && s->fd >= 0)
        shutdown(s->fd, SHUT_RDWR); /* h2o fails the pending write and closes */
}

/* ------------------------------------------------------------------ */
/* WebSocket                                                          */

#define WS_BATCH_MAX 64 /* messages in one http_ws_send_batch */

struct http_ws {
    h2o_websocket_conn_t *conn;
    http__worker *w;
    http_ws_message_fn cb;
    void *ctx;
    int in_callback;
    int fd;           /* the connection's socket, for http_ws_abort() */
    uv_stream_t *tcp; /* the same, for direct writes; NULL under TLS */
    http_ws_drain_fn on_drain;
    void *drain_ctx;
    char *tail; /* what a direct write left, being written by h2o */
    bool closing;
    uv_timer_t *cut; /* over the queue limit: cuts the connection after the grace */
};

static void cut_closed(uv_handle_t *h)
{
    free(h);
}

static void on_cut(uv_timer_t *t)
{
    http_ws *ws = t->data;
    MS_INFO("http", "closing a WebSocket that does not read (over MSGSTORE_WS_MAX_QUEUED)");
    http_ws_abort(ws);
}

/*
 * The peer sends faster than it reads what we answer (pongs to its pings,
 * replies to its requests): wslay's queue would grow without bound. Stop
 * reading it (wslay no longer asks for input, h2o stops reading the socket:
 * the peer's own sends block), queue a close frame with 1008 behind what is
 * queued, and cut the connection if that does not go out within the grace.
 */
static void ws_check_queue(http_ws *ws)
{
    /* Events the server sends itself go into wslay only when it is empty (a
     * batch of at most WS_BATCH_MAX; under TLS, or when a direct write could
     * not start), and may be large: a queue over the limit is the peer's
     * doing only when it also holds more messages than a batch. */
    if (ws->cut || wslay_event_get_queued_msg_count(ws->conn->ws_ctx) <= WS_BATCH_MAX ||
        http_ws_queued(ws) <= ws->w->srv->o.ws_max_queued)
        return;
    ms_counter_add(ws->w->srv->c_ws_overflows, 1);
    wslay_event_shutdown_read(ws->conn->ws_ctx);
    if (!ws->closing) {
        ws->closing = true;
        static const char why[] = "send queue over the limit: the client does not read";
        wslay_event_queue_close(ws->conn->ws_ctx, 1008, (const uint8_t *)why, sizeof why - 1);
    }
    ws->cut = malloc(sizeof *ws->cut);
    if (!ws->cut) {
        http_ws_abort(ws);
        return;
    }
    uv_timer_init(&ws->w->loop, ws->cut);
    ws->cut->data = ws;
    uv_timer_start(ws->cut, on_cut, HTTP_WS_CLOSE_GRACE_MS, 0);
}

static void ws_free(http_ws *ws)
{
    if (ws->cut) {
        uv_timer_stop(ws->cut);
        uv_close((uv_handle_t *)ws->cut, cut_closed);
    }
    free(ws->tail);
    free(ws);
}

static void ws_on_msg(h2o_websocket_conn_t *conn, const struct wslay_event_on_msg_recv_arg *arg)
{
    http_ws *ws = conn->data;
    if (!arg) {
        ws->cb(ws, NULL, 0, false, ws->ctx);
        h2o_websocket_close(conn);
        ws_free(ws);
        return;
    }
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) {
        ws->in_callback++;
        ws->cb(ws, arg->msg, arg->msg_length, arg->opcode == WSLAY_BINARY_FRAME, ws->ctx);
        ws->in_callback--;
    }
    /* every message counts, pings too: wslay queued a pong for each */
    ws_check_queue(ws);
}

bool http_ws_is_handshake(http_request *r)
{
    const char *key = NULL;
    return h2o_is_websocket_handshake(r->h, &key) == 0 && key != NULL;
}

http_ws *http_ws_accept(http_request *r, http_ws_message_fn on_message, void *ctx)
{
    const char *key = NULL;
    if (h2o_is_websocket_handshake(r->h, &key) != 0 || key == NULL || r->answered)
        return NULL;
    http_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->w = r->w;
    ws->fd = r->conn ? r->conn->fd : -1;
    /* direct writes bypass h2o: only on plain TCP, never under TLS */
    ws->tcp = r->conn && !r->conn->sock->ssl ? (uv_stream_t *)&r->conn->tcp : NULL;
    ws->cb = on_message;
    ws->ctx = ctx;
    if (r->conn)
        r->conn->upgraded = true;
    r->answered = true;
    h2o_add_header_by_str(&r->h->pool, &r->h->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
                          r->rid, strlen(r->rid));
    http__request_done(r, 101, 0);
    ws->conn = h2o_upgrade_to_websocket(r->h, key, ws, ws_on_msg);
    /* wslay assembles a message whole before handing it over, of any size by
     * default: bound it like a request body (larger: closed with 1009). */
    wslay_event_config_set_max_recv_msg_length(ws->conn->ws_ctx, r->w->srv->o.max_body_bytes);
    return ws;
}

/*
 * Direct writes. h2o 2.2.5 sends a WebSocket message through wslay with one
 * write in flight, header and payload as two writes in two loop turns, after
 * copying it twice. When nothing is queued in wslay and h2o is not writing,
 * the frames are written here instead, straight from the caller's buffers
 * with one writev (uv_try_write); what the socket does not take at once is
 * copied once and handed to h2o, which writes it when the socket drains.
 * Frames never interleave with wslay's: only one of the two writes at a time.
 */
static size_t ws_frame_header(uint8_t *h, size_t len, bool binary)
{
    h[0] = (uint8_t)(0x80 | (binary ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME));
    if (len < 126) {
        h[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

static void ws_tail_written(h2o_socket_t *sock, const char *err)
{
    h2o_websocket_conn_t *conn = sock->data;
    http_ws *ws = conn->data;
    free(ws->tail);
    ws->tail = NULL;
    if (err) {
        ws_on_msg(conn, NULL); /* as h2o does when its own write fails */
        return;
    }
    if (ws->on_drain) {
        /* sends and closes from the callback are queued, flushed by the proceed below */
        ws->in_callback++;
        ws->on_drain(ws, ws->drain_ctx);
        ws->in_callback--;
    }
    h2o_websocket_proceed(conn); /* wslay may have queued a pong or a close meanwhile */
}

void http_ws_set_drain(http_ws *ws, http_ws_drain_fn fn, void *ctx)
{
    ws->on_drain = fn;
    ws->drain_ctx = ctx;
}

bool http_ws_direct(const http_ws *ws)
{
    return ws->tcp != NULL;
}

bool http_ws_draining(const http_ws *ws)
{
    return ws->tail != NULL;
}

bool http_ws_writable(const http_ws *ws)
{
    const h2o_websocket_conn_t *c = ws->conn;
    return !ws->closing && c->sock && !h2o_socket_is_writing(c->sock) &&
           !wslay_event_want_write(c->ws_ctx);
}

int http_ws_send_batch(http_ws *ws, const http_str *msgs, size_t n)
{
    if (ws->closing)
        return MS_ERR_SHUTDOWN;
    if (n == 0)
        return 0;
    if (n > WS_BATCH_MAX)
        return MS_ERR_INVALID;
    if (!ws->tcp || !http_ws_writable(ws)) { /* TLS, or busy: through wslay and h2o */
        for (size_t i = 0; i < n; i++) {
            struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, (const uint8_t *)msgs[i].base,
                                          msgs[i].len};
            if (wslay_event_queue_msg(ws->conn->ws_ctx, &msg) != 0)
                return MS_ERR_NOMEM;
        }
        if (!ws->in_callback && ws->conn->sock)
            h2o_websocket_proceed(ws->conn); /* may end in ws_on_msg(NULL): ws is gone then */
        return 0;
    }
    uint8_t hdr[WS_BATCH_MAX][10];
    uv_buf_t b[2 * WS_BATCH_MAX];
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t hl = ws_frame_header(hdr[i], msgs[i].len, false);
        b[2 * i] = uv_buf_init((char *)hdr[i], (unsigned)hl);
        b[2 * i + 1] = uv_buf_init((char *)msgs[i].base, (unsigned)msgs[i].len);
        total += hl + msgs[i].len;
    }
    int w = uv_try_write(ws->tcp, b, (unsigned)(2 * n));
    if (w == UV_EAGAIN)
        w = 0;
    if (w < 0) {
        /* a broken connection: h2o's read side notices and closes it */
        return 0;
    }
    if ((size_t)w == total)
        return 0;
    size_t skip = (size_t)w, rest = total - skip;
    char *tail = malloc(rest);
    if (!tail) {
        shutdown(ws->fd, SHUT_RDWR); /* a frame cut in half cannot be continued otherwise */
        return MS_ERR_NOMEM;
    }
    size_t off = 0;
    for (size_t i = 0; i < 2 * n; i++) {
        size_t l = b[i].len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        memcpy(tail + off, b[i].base + skip, l - skip);
        off += l - skip;
        skip = 0;
    }
    ws->tail = tail;
    h2o_iovec_t iov = h2o_iovec_init(tail, rest);
    h2o_socket_write(ws->conn->sock, &iov, 1, ws_tail_written);
    return 0;
}

int http_ws_send(http_ws *ws, const void *data, size_t len, bool binary)
{
    if (ws->closing)
        return MS_ERR_SHUTDOWN;
    if (!binary) {
        http_str m = {data, len};
        return http_ws_send_batch(ws, &m, 1);
    }
    struct wslay_event_msg msg = {WSLAY_BINARY_FRAME, data, len};
    if (wslay_event_queue_msg(ws->conn->ws_ctx, &msg) != 0)
        return MS_ERR_NOMEM;
    if (!ws->in_callback && ws->conn->sock)
        h2o_websocket_proceed(ws->conn); /* may end in ws_on_msg(NULL): ws is gone then */
    return 0;
}

void http_ws_close(http_ws *ws)
{
    if (ws->closing)
        return;
    ws->closing = true;
    wslay_event_queue_close(ws->conn->ws_ctx, 1001, NULL, 0);
    if (!ws->in_callback && ws->conn->sock)
        h2o_websocket_proceed(ws->conn);
}

int http_ws_ping(http_ws *ws)
{
    if (ws->closing || !ws->conn->sock)
        return MS_ERR_SHUTDOWN;
    struct wslay_event_msg msg = {WSLAY_PING, (const uint8_t *)"", 0};
    if (wslay_event_queue_msg(ws->conn->ws_ctx, &msg) != 0)
        return MS_ERR_NOMEM;
    if (!ws->in_callback)
        h2o_websocket_proceed(ws->conn); /* may end in ws_on_msg(NULL): ws is gone then */
    return 0;
}

size_t http_ws_queued(const http_ws *ws)
{
    wslay_event_context_ptr c = ws->conn->ws_ctx;
    return wslay_event_get_queued_msg_length(c) +
           wslay_event_get_queued_msg_count(c) * HTTP_WS_MSG_OVERHEAD;
}

void http_ws_abort(http_ws *ws)
{
    /* h2o notices on its pending write or next read and closes (ws_on_msg(NULL)). */
    if (ws->fd >= 0)
        shutdown(ws->fd, SHUT_RDWR);
}

int http_ws_worker(const http_ws *ws)
{
    return ws->w->index;
}
