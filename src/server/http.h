/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.h - msgstore's thin HTTP layer over h2o 2.2.5 (libuv flavour).
 *
 * Nothing outside src/server/http*.c includes an h2o header: routes, handlers,
 * WebSocket and streaming code see only the types below, so h2o could be
 * replaced (h2o master, libwebsockets) without touching them.
 *
 * Model
 *   - HTTP/1.1 with keep-alive; HTTP/2 is off (h2o 2.2.5 lacks the Rapid
 *     Reset fix). Optional TLS from a PEM certificate and key.
 *   - N worker threads. Each owns one uv loop, one h2o context and its own
 *     listening socket bound with SO_REUSEPORT to the same address: the kernel
 *     spreads connections over them. A request, its handler, its response
 *     and every callback that completes it run on that worker's loop thread.
 *   - Routes are method + path pattern, "/v1/channels/{channel_id}/messages".
 *     A {name} segment matches one non-empty path segment and is handed to
 *     the handler percent-decoded ("%F0%9F%91%8D" -> the thumbs-up emoji).
 *     No route for the path: 404; a route for the path but not the method:
 *     405 with Allow. Both as JSON errors.
 *   - Limits with clear answers: body larger than max_body_bytes -> 413;
 *     header block larger than max_header_bytes -> 431 (or the connection is
 *     closed when the block never ends); a request that does not arrive
 *     completely within request_timeout -> 408 and close; a keep-alive
 *     connection idle for idle_timeout -> closed; connections beyond
 *     max_connections -> 503 with Retry-After and close.
 *   - Every response carries X-Request-Id (the client's, when it sent a sane
 *     one, else a generated one). One access-log line per request.
 *   - Metrics: msgstore_http_requests_total{route,method,status},
 *     msgstore_http_request_duration_seconds{route} histograms,
 *     msgstore_http_in_flight_requests, msgstore_http_connections.
 *
 * Handlers
 *   A handler must answer exactly once, with one of http_respond*() (or by
 *   upgrading to a WebSocket, or by starting a stream). It may answer later:
 *   return without answering and call http_respond*() from a callback that
 *   runs on the same loop (store callbacks do). Until it answers, the request
 *   and everything allocated with http_request_alloc() stay valid; after it,
 *   the request must not be touched.
 *
 * Extension points (for the realtime layer and others)
 *   - http_server_route(): add routes before http_server_start().
 *   - http_ws_accept(): turn a request into a WebSocket (HTTP/1.1 only).
 *   - http_stream_start(): a streamed response (Server-Sent Events).
 *   - http_server_options.on_worker_start/on_worker_stop/on_shutdown: per
 *     worker hooks, on that worker's thread.
 *   - http_worker_post(): run a function on a worker's loop from any thread.
 */
#ifndef MS_SERVER_HTTP_H
#define MS_SERVER_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct http_server http_server;
typedef struct http_request http_request;
typedef struct http_stream http_stream;
typedef struct http_ws http_ws;

typedef enum http_method {
    HTTP_GET = 0,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_PATCH,
    HTTP_DELETE,
    HTTP_OPTIONS,
    HTTP_METHOD_OTHER,
} http_method;

/* A byte string that is not NUL-terminated. */
typedef struct http_str {
    const char *base;
    size_t len;
} http_str;

/* Route flags: which guard applies (see http_guard_fn). */
enum {
    HTTP_ROUTE_PUBLIC = 0,       /* no guard */
    HTTP_ROUTE_AUTH_API = 1,     /* the API's bearer token */
    HTTP_ROUTE_AUTH_PROBE = 2,   /* health probes: token only if configured */
    HTTP_ROUTE_AUTH_METRICS = 4, /* /health, /metrics: token only if configured */
    HTTP_ROUTE_NO_LOG = 8,       /* no access-log line (probes polled every second) */
};

/* Handles a request; answers it now or later (see above). ctx is the route's. */
typedef void (*http_handler_fn)(http_request *req, void *ctx);

/*
 * Runs before every handler of a route whose flags are not 0. Returns 0 to
 * let the request through, or answers it itself (401, 403) and returns
 * a negative value, or returns a positive value when it decides later (it
 * waits for the store): then it answers the request or calls
 * http_request_continue() from a callback on the same loop. Runs on the
 * worker's loop thread.
 */
typedef int (*http_guard_fn)(http_request *req, unsigned route_flags, void *ctx);

/* Per-worker hook, called on the worker's own thread with its loop. */
typedef void (*http_worker_hook_fn)(http_server *srv, int worker, uv_loop_t *loop, void *ctx);

typedef struct http_server_options {
    const char *bind;             /* address, "127.0.0.1", "::1", "0.0.0.0" */
    int port;                     /* 0: any free port, see http_server_port() */
    int workers;                  /* threads; 0: one per core */
    size_t max_body_bytes;        /* larger bodies get 413 */
    size_t max_header_bytes;      /* larger header blocks get 431; 0: 16 KiB */
    uint64_t idle_timeout_ms;     /* idle keep-alive connection lifetime */
    uint64_t request_timeout_ms;  /* a request must arrive within this */
    int max_connections;          /* per instance; more get 503 */
    uint64_t shutdown_timeout_ms; /* grace for in-flight requests at stop */
    const char *tls_cert_file;    /* PEM; NULL or "": plain HTTP */
    const char *tls_key_file;
    size_t ws_max_queued;     /* a WebSocket's unsent bytes past which it is no longer read and
                                 is closed with 1008; 0: 1 MiB */
    const char *cors_origins; /* comma-separated origins, "*", or NULL/"": no CORS */
    int cors_max_age_s;       /* Access-Control-Max-Age of preflight answers */
    bool log_json;            /* access log as JSON lines (else text) */
    bool access_log;          /* one info line per request */

    http_guard_fn guard;
    void *guard_ctx;
    http_worker_hook_fn on_worker_start; /* after the loop exists, before serving */
    http_worker_hook_fn on_shutdown;     /* stop requested: close streams, sockets */
    http_worker_hook_fn on_worker_stop;  /* the loop is about to be closed */
    void *hook_ctx;
} http_server_options;

/*
 * Creates a server from opts (copied; strings are copied too). Nothing is
 * bound yet. Returns 0 and *out, or MS_ERR_INVALID (bad option, with a
 * message in err) or MS_ERR_NOMEM. The caller frees it with
 * http_server_free().
 */
int http_server_new(const http_server_options *opts, http_server **out, char *err, size_t errlen);

/*
 * Adds a route; before http_server_start() only. pattern is an absolute path
 * whose segments are literals or {name}; name is also the route's label in
 * metrics and logs. ctx is passed to fn. Returns 0, MS_ERR_INVALID (bad
 * pattern, or the same method and pattern twice) or MS_ERR_NOMEM.
 */
int http_server_route(http_server *srv, http_method method, const char *pattern, unsigned flags,
                      http_handler_fn fn, void *ctx);

/*
 * Binds the listening sockets (one per worker, SO_REUSEPORT), loads TLS, and
 * starts the worker threads. Returns 0, or a negative code with a message in
 * err (address in use, bad certificate...). On failure nothing is running.
 */
int http_server_start(http_server *srv, char *err, size_t errlen);

/* The port actually bound (useful with port 0); 0 before start. */
int http_server_port(const http_server *srv);

/* Number of worker threads (valid after start). */
int http_server_workers(const http_server *srv);

/* The worker threads a server started with options.workers == configured
 * runs: configured, or one per online core when 0; at most HTTP_MAX_WORKERS. */
#define HTTP_MAX_WORKERS 256
int http_workers_for(int configured);

/*
 * Graceful stop, from any thread but a worker's: stops accepting, closes
 * idle keep-alive connections, lets requests in flight finish and answers
 * them with Connection: close, calls on_shutdown on each worker, and waits
 * up to shutdown_timeout_ms for every connection to end. Past the deadline,
 * the remaining connections are cut; handlers still waiting (for the store)
 * get up to 30 s more to answer into the cut sockets, so the loops close
 * cleanly; past that a loop is abandoned. Joins the workers. Returns the
 * number of requests that were still in flight when they were cut (0: clean).
 */
int http_server_stop(http_server *srv);

/* Frees a stopped (or never started) server. NULL is fine. */
void http_server_free(http_server *srv);

/*
 * Runs fn(arg) on worker's loop thread soon after; thread-safe. Returns 0,
 * MS_ERR_INVALID (no such worker), MS_ERR_SHUTDOWN (the worker has stopped;
 * fn is not called) or MS_ERR_NOMEM.
 */
int http_worker_post(http_server *srv, int worker, void (*fn)(void *arg), void *arg);

/* ------------------------------------------------------------------ */
/* Requests. Every function below is for the request's loop thread.   */

http_method http_request_method(const http_request *req);
const char *http_method_name(http_method m);

/* The path without the query, as sent (not decoded). */
http_str http_request_path(const http_request *req);

/* The route's pattern ("/v1/channels/{channel_id}"), or "unmatched". */
const char *http_request_route(const http_request *req);

/*
 * The value of path parameter name, percent-decoded and NUL-terminated
 * (*len gets its length when len is not NULL; it may contain NUL bytes).
 * NULL when the route has no such parameter.
 */
const char *http_request_param(const http_request *req, const char *name, size_t *len);

/*
 * The first value of query parameter name, percent-decoded ('+' is a space),
 * NUL-terminated; "" for "?name" without a value; NULL when absent. A value
 * with a malformed escape or an encoded NUL comes back undecoded (raw).
 */
const char *http_request_query(http_request *req, const char *name);

/* Header value by lower-case name; .base NULL when absent. */
http_str http_request_header(const http_request *req, const char *lname);

/* The body (.len 0 and .base possibly NULL when there is none). */
http_str http_request_body(const http_request *req);

/* Replaces the body the handler will see with a copy of body (a guard completing it). */
void http_request_set_body(http_request *req, const char *body, size_t len);

/* Runs the route's handler of a request whose guard decided later (returned > 0). */
void http_request_continue(http_request *req);

/* The request id (X-Request-Id), NUL-terminated. */
const char *http_request_id(const http_request *req);

/* Index of the worker and its loop. */
int http_request_worker(const http_request *req);
uv_loop_t *http_request_loop(const http_request *req);
http_server *http_request_server(const http_request *req);

/*
 * Memory that lives as long as the request (freed after the answer is sent).
 * Never NULL (aborts on out of memory, as h2o does).
 */
void *http_request_alloc(http_request *req, size_t size);

/* A per-request slot for the application (e.g. the authenticated token). */
void http_request_set_user(http_request *req, void *user);
void *http_request_user(const http_request *req);

/* ------------------------------------------------------------------ */
/* Responses: exactly one http_respond*() per request.                */

/* Adds a response header (name and value copied). Before responding. */
void http_response_header(http_request *req, const char *name, const char *value);

/*
 * Answers with status and body, taking body (malloc'd; freed with the
 * request, or now when len is 0): a large answer is not copied again.
 */
void http_respond_take(http_request *req, int status, const char *content_type, void *body,
                       size_t len);

/* Answers with status and body (copied). content_type may be NULL (no body type). */
void http_respond(http_request *req, int status, const char *content_type, const void *body,
                  size_t len);

/* Answers with body serialized as compact JSON; takes the reference to body (decref'd). */
void http_respond_json(http_request *req, int status, json_t *body);

/* Answers 204 No Content. */
void http_respond_empty(http_request *req, int status);

/*
 * Answers {"error":{"code":code,"message":msg}} with status. code is a stable
 * snake_case name (ms_err_name() or an HTTP-layer one such as
 * "method_not_allowed"); message is printf-formatted and read by humans.
 */
void http_respond_error(http_request *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Answers an ms_err code with its HTTP status (400, 404, 409, 413, 422, 401,
 * 403, 429; 503 with Retry-After: retry_after_s for unavailable, timeout,
 * shutting_down, clock_error, io_error; 500 for the rest) and ms_err_name().
 */
void http_respond_ms_error(http_request *req, int ms_err, int retry_after_s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The HTTP status an ms_err code maps to. */
int http_status_of(int ms_err);

/* ------------------------------------------------------------------ */
/* Streamed responses (Server-Sent Events and the like).              */

/*
 * Called once when the stream ends: the client went away, the server is
 * stopping, or after http_stream_end() was written. The stream must not be
 * used after (or from) this callback.
 */
typedef void (*http_stream_closed_fn)(http_stream *s, void *ctx);

/*
 * Answers req with status and content_type and keeps the response open.
 * Data is then written with http_stream_write(). The request counts as
 * answered (it is no longer in flight for graceful shutdown; on_shutdown
 * should end streams). Returns the stream (never NULL).
 */
http_stream *http_stream_start(http_request *req, int status, const char *content_type,
                               http_stream_closed_fn on_closed, void *ctx);

/*
 * Queues data (copied) and sends it as soon as the socket takes it. Returns
 * 0, MS_ERR_SHUTDOWN when the stream has ended, or MS_ERR_TOO_LARGE when
 * bytes are queued and these would take the queue over 1 MiB (a slow client:
 * nothing was queued; write again after the drain callback, or end it). Into
 * an empty queue a write of any size goes.
 */
int http_stream_write(http_stream *s, const void *data, size_t len);

/* The same for the n pieces bufs as one write: all of them are queued, or none. */
int http_stream_writev(http_stream *s, const http_str *bufs, size_t n);

/* Ends the stream after what is queued; on_closed follows. */
void http_stream_end(http_stream *s);

/*
 * Called when h2o asked for more and the stream handed everything queued to
 * it: write more now. Not called after http_stream_end().
 */
typedef void (*http_stream_drain_fn)(http_stream *s, void *ctx);
void http_stream_set_drain(http_stream *s, http_stream_drain_fn fn, void *ctx);

/* Bytes written with http_stream_write() and not yet handed to the socket. */
size_t http_stream_queued(const http_stream *s);

/*
 * Cuts the connection now (shutdown(2), as the server cuts connections), for
 * a client that stopped reading: on_closed follows once h2o notices. Nothing
 * more may be written.
 */
void http_stream_abort(http_stream *s);

/* ------------------------------------------------------------------ */
/* WebSocket (RFC 6455 over HTTP/1.1, via h2o + wslay).               */

/* Called for each complete message; on close, data is NULL (then the ws is gone). */
typedef void (*http_ws_message_fn)(http_ws *ws, const void *data, size_t len, bool binary,
                                   void *ctx);

/* Whether req is a WebSocket handshake (GET with Upgrade: websocket and a key). */
bool http_ws_is_handshake(http_request *req);

/*
 * Answers req with 101 and turns the connection into a WebSocket. on_message
 * gets every message and, once, the close (data NULL). Returns the ws, or
 * NULL when req is not a handshake (req is then still unanswered).
 */
http_ws *http_ws_accept(http_request *req, http_ws_message_fn on_message, void *ctx);

/*
 * Sends one message (copied). On the ws's loop thread only. Returns 0,
 * MS_ERR_SHUTDOWN after close, or MS_ERR_NOMEM.
 */
int http_ws_send(http_ws *ws, const void *data, size_t len, bool binary);

/* Closes the ws (sends a close frame); on_message gets data NULL. */
void http_ws_close(http_ws *ws);

/*
 * Whether the ws can write right now (nothing queued, no write in flight):
 * then http_ws_send_batch() writes straight from the caller's buffers.
 */
bool http_ws_writable(const http_ws *ws);

/*
 * Called when the remainder of a direct write that the socket did not take
 * at once has been written: the ws may be writable again. Sends and closes
 * made from the callback are flushed when it returns. Under TLS (no direct
 * writes) it is never called: poll http_ws_writable() instead.
 */
typedef void (*http_ws_drain_fn)(http_ws *ws, void *ctx);
void http_ws_set_drain(http_ws *ws, http_ws_drain_fn fn, void *ctx);

/* Whether writes bypass h2o (plain TCP; not under TLS). */
bool http_ws_direct(const http_ws *ws);

/* Whether the remainder of a direct write is being written (the drain callback follows). */
bool http_ws_draining(const http_ws *ws);

/*
 * Sends n text messages (at most 64) in one write when the ws is writable,
 * without copying what the socket takes at once (the buffers are the
 * caller's and may be reused on return); otherwise, and always under TLS
 * (frames must go through the TLS session), queues copies for h2o. Returns
 * 0, MS_ERR_SHUTDOWN after close, MS_ERR_INVALID (n > 64) or MS_ERR_NOMEM.
 */
int http_ws_send_batch(http_ws *ws, const http_str *msgs, size_t n);

/*
 * Sends a ping (the client answers with a pong by itself). A connection
 * whose peer vanished without closing is noticed only when something is
 * written to it: ping idle ones. Returns 0, MS_ERR_SHUTDOWN or MS_ERR_NOMEM.
 * The ws may be gone on return (its close callback ran).
 */
int http_ws_ping(http_ws *ws);

/*
 * Bytes queued in the ws (wslay) and not yet handed to the socket, with a
 * per-message overhead (HTTP_WS_MSG_OVERHEAD) so that many empty frames
 * (pongs) count too. Past the server's ws_max_queued, with more messages
 * queued than one batch of the server's own (64), the peer is not read
 * from anymore and gets a close frame with 1008; if it does not take it
 * within HTTP_WS_CLOSE_GRACE_MS the connection is cut.
 */
#define HTTP_WS_MSG_OVERHEAD   64
#define HTTP_WS_CLOSE_GRACE_MS 2000
size_t http_ws_queued(const http_ws *ws);

/*
 * Cuts the connection now without a close handshake (a peer that does not
 * read would never complete one); on_message gets data NULL once h2o
 * notices. Not from inside on_message.
 */
void http_ws_abort(http_ws *ws);

/* The worker (and loop) the ws lives on. */
int http_ws_worker(const http_ws *ws);

#endif
