/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.c - the server's life: options, listening sockets (SO_REUSEPORT, one
 * per worker), worker threads with their loops and h2o contexts, connection
 * bookkeeping, the sweep that enforces the request timeout and the header
 * limit on requests still arriving, and graceful stop.
 *
 * Why a sweep: h2o 2.2.5 has a single HTTP/1 timer covering "waiting for the
 * next request" and "reading it", and closes a connection silently when the
 * header block outgrows its 400 KiB buffer. Idle keep-alive and slow senders
 * need different limits and a clear answer, so the h2o timer is only a
 * backstop and every worker looks at its connections four times per timeout:
 * a connection with nothing moving for the idle timeout is closed; bytes of
 * an unfinished request older than the request timeout get 408; an
 * unterminated header block over the limit gets 431.
 * Closing goes through shutdown(2) on the descriptor, never behind h2o's
 * back: h2o sees end-of-file or a write error and closes its side cleanly.
 */
#include "server/http_internal.h"
#include "core/error.h"
#include "core/log.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_HEADER_BYTES (16 * 1024)
#define LISTEN_BACKLOG           1024
#define FORCE_GRACE_MS           1000
#define ABANDON_AFTER_MS         30000
#define STUCK_MS                 1000

/* Connections by descriptor, so a request finds its connection in O(1).
 * A slot is written only by the worker that owns the descriptor. */
static _Atomic(http__conn *) *fdtab;
static size_t fdtab_size;
static pthread_once_t fdtab_once = PTHREAD_ONCE_INIT;

static void fdtab_init(void)
{
    struct rlimit rl;
    size_t n = 65536;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) { /* more connections than the soft default of 1024 */
            rl.rlim_cur = rl.rlim_max;
            (void)setrlimit(RLIMIT_NOFILE, &rl);
            (void)getrlimit(RLIMIT_NOFILE, &rl);
        }
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (1u << 20))
            n = (size_t)rl.rlim_cur;
        else
            n = 1u << 20;
    }
    fdtab = calloc(n, sizeof *fdtab);
    fdtab_size = fdtab ? n : 0;
}

uint64_t http__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

http__conn *http__conn_of(h2o_req_t *req)
{
    if (!req->conn->callbacks->get_socket)
        return NULL;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (!sock)
        return NULL;
    int fd = h2o_socket_get_fd(sock);
    if (fd < 0 || (size_t)fd >= fdtab_size)
        return NULL;
    http__conn *c = atomic_load_explicit(&fdtab[fd], memory_order_relaxed);
    return c && c->sock == sock ? c : NULL;
}

/* ------------------------------------------------------------------ */
/* Options                                                            */

static char *dup_opt(const char *s)
{
    return strdup(s ? s : "");
}

int http_server_new(const http_server_options *opts, http_server **out, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (!opts->bind || !opts->bind[0] || opts->port < 0 || opts->port > 65535 ||
        opts->workers < 0 || opts->max_body_bytes == 0 || opts->max_connections <= 0) {
        snprintf(err, errlen, "invalid http server options");
        return MS_ERR_INVALID;
    }
    http_server *s = calloc(1, sizeof *s);
    if (!s)
        return MS_ERR_NOMEM;
    s->o = *opts;
    s->bind = dup_opt(opts->bind);
    s->tls_cert = dup_opt(opts->tls_cert_file);
    s->tls_key = dup_opt(opts->tls_key_file);
    if (!s->bind || !s->tls_cert || !s->tls_key) {
        http_server_free(s);
        return MS_ERR_NOMEM;
    }
    s->o.bind = s->bind;
    s->o.tls_cert_file = s->tls_cert;
    s->o.tls_key_file = s->tls_key;
    if (!s->o.max_header_bytes)
        s->o.max_header_bytes = DEFAULT_MAX_HEADER_BYTES;
    if (!s->o.idle_timeout_ms)
        s->o.idle_timeout_ms = 60000;
    if (!s->o.request_timeout_ms)
        s->o.request_timeout_ms = 10000;
    if (!s->o.ws_max_queued)
        s->o.ws_max_queued = 1024 * 1024;
    pthread_mutex_init(&s->done_mu, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    s->o.cors_origins = NULL;
    if (http__cors_init(&s->cors, opts->cors_origins, opts->cors_max_age_s) != 0) {
        snprintf(err, errlen, "MSGSTORE_CORS_ORIGINS: at most %d origins", HTTP__MAX_ORIGINS);
        http_server_free(s);
        return MS_ERR_INVALID;
    }
    http__route_compile(&s->unmatched, "/unmatched");
    free(s->unmatched.pattern);
    s->unmatched.pattern = strdup("unmatched");
    s->unmatched.method = HTTP_METHOD_OTHER;
    s->unmatched.latency = ms_histogram_get(
        "msgstore_http_request_duration_seconds", "route=\"unmatched\",method=\"OTHER\"",
        "HTTP request latency, from the request fully read to the answer");
    s->g_in_flight = ms_gauge_get("msgstore_http_in_flight_requests", NULL,
                                  "HTTP requests being handled (read, not answered yet)");
    s->g_conns = ms_gauge_get("msgstore_http_connections", NULL, "open client connections");
    s->c_rejected_conns = ms_counter_get("msgstore_http_rejected_connections_total", NULL,
                                         "connections refused over MSGSTORE_MAX_CONNECTIONS");
    s->c_ws_overflows =
        ms_counter_get("msgstore_http_ws_queue_overflows_total", NULL,
                       "WebSockets closed (1008) for not reading: more than MSGSTORE_WS_MAX_QUEUED "
                       "bytes of answers waited for them");
    s->c_timeouts = ms_counter_get("msgstore_http_request_timeouts_total", NULL,
                                   "requests cut for arriving slower than MSGSTORE_REQUEST_TIMEOUT "
                                   "or with oversized headers");
    *out = s;
    return 0;
}

int http_server_route(http_server *srv, http_method method, const char *pattern, unsigned flags,
                      http_handler_fn fn, void *ctx)
{
    if (srv->started || !fn || !pattern || method == HTTP_METHOD_OTHER)
        return MS_ERR_INVALID;
    for (size_t i = 0; i < srv->nroutes; i++)
        if (srv->routes[i].method == method && strcmp(srv->routes[i].pattern, pattern) == 0)
            return MS_ERR_INVALID;
    if (srv->nroutes == srv->caproutes) {
        size_t cap = srv->caproutes ? srv->caproutes * 2 : 32;
        http__route *r = realloc(srv->routes, cap * sizeof *r);
        if (!r)
            return MS_ERR_NOMEM;
        srv->routes = r;
        srv->caproutes = cap;
    }
    http__route *rt = &srv->routes[srv->nroutes];
    memset(rt, 0, sizeof *rt);
    int rc = http__route_compile(rt, pattern);
    if (rc)
        return rc;
    rt->method = method;
    rt->flags = flags;
    rt->fn = fn;
    rt->ctx = ctx;
    char labels[512];
    snprintf(labels, sizeof labels, "route=\"%s\",method=\"%s\"", pattern,
             http_method_name(method));
    rt->latency =
        ms_histogram_get("msgstore_http_request_duration_seconds", labels,
                         "HTTP request latency, from the request fully read to the answer");
    srv->nroutes++;
    return 0;
}

int http_server_port(const http_server *srv)
{
    return srv->port;
}

int http_server_workers(const http_server *srv)
{
    return srv->nworkers;
}

int http_workers_for(int configured)
{
    int n = configured;
    if (n <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (int)cpus : 1;
    }
    return n > HTTP_MAX_WORKERS ? HTTP_MAX_WORKERS : n;
}

/* ------------------------------------------------------------------ */
/* Connections                                                        */

static void conn_list_insert(http__worker *w, http__conn *c)
{
    c->next = w->conns.next;
    c->prev = &w->conns;
    w->conns.next->prev = c;
    w->conns.next = c;
    w->nconns++;
}

static void conn_list_remove(http__worker *w, http__conn *c)
{
    c->prev->next = c->next;
    c->next->prev = c->prev;
    c->prev = c->next = c;
    w->nconns--;
}

static void worker_maybe_finish(http__worker *w);
static void worker_finish(http__worker *w);

static void on_conn_closed(uv_handle_t *h)
{
    http__conn *c = (http__conn *)h;
    http__worker *w = c->w;
    http_server *s = w->srv;
    if (c->fd >= 0 && (size_t)c->fd < fdtab_size) {
        http__conn *expect = c;
        atomic_compare_exchange_strong(&fdtab[c->fd], &expect, NULL);
    }
    conn_list_remove(w, c);
    atomic_fetch_sub(&s->nconns, 1);
    ms_gauge_add(s->g_conns, -1);
    free(c);
    if (w->stopping)
        worker_maybe_finish(w);
}

static void on_raw_closed(uv_handle_t *h)
{
    free(h);
}

/* Reads and drops what the client already sent, so closing does not reset
 * the connection before it reads our answer. */
static void drain(int fd)
{
    char buf[4096];
    for (int i = 0; i < 16; i++)
        if (recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0)
            break;
}

/* Writes a complete answer straight to a plain-HTTP socket that h2o is not
 * writing to (a request still arriving, or a connection h2o never saw). */
static void write_raw_error(http_server *s, int fd, int status, const char *code,
                            const char *message, const char *extra_headers)
{
    if (s->ssl)
        return; /* TLS: we cannot speak outside the session; closing is the answer */
    char rid[24];
    snprintf(rid, sizeof rid, "%016llx", (unsigned long long)http__now_ns());
    char body[256];
    int blen = snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code,
                        message);
    char buf[768];
    int n =
        snprintf(buf, sizeof buf,
                 "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: application/json\r\n"
                 "X-Request-Id: %s\r\n%sContent-Length: %d\r\n\r\n%s",
                 status, http__reason(status), rid, extra_headers ? extra_headers : "", blen, body);
    if (n > 0 && (size_t)n < sizeof buf) {
        ssize_t rc = send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)rc;
    }
}

/* Ends a connection h2o owns: h2o notices on its next read or write. */
static void conn_cut(http__conn *c)
{
    if (c->cut || uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    c->cut = true;
    c->cut_at = uv_now(&c->w->loop);
    drain(c->fd);
    shutdown(c->fd, SHUT_RDWR);
}

static void on_accept(uv_stream_t *listener, int status)
{
    http__worker *w = listener->data;
    http_server *s = w->srv;
    if (status != 0)
        return;
    http__conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    uv_tcp_init(&w->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_raw_closed);
        return;
    }
    uv_os_fd_t fd = -1;
    uv_fileno((uv_handle_t *)&c->tcp, &fd);
    c->fd = fd;
    if (atomic_fetch_add(&s->nconns, 1) >= s->o.max_connections) {
        atomic_fetch_sub(&s->nconns, 1);
        ms_counter_add(s->c_rejected_conns, 1);
        drain(fd);
        write_raw_error(s, fd, 503, ms_err_name(MS_ERR_UNAVAILABLE),
                        "too many connections; try again", "Retry-After: 1\r\n");
        shutdown(fd, SHUT_WR);
        uv_close((uv_handle_t *)&c->tcp, on_raw_closed);
        return;
    }
    ms_gauge_add(s->g_conns, 1);
    uv_tcp_nodelay(&c->tcp, 1);
    c->w = w;
    c->sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_closed);
    if (fd >= 0 && (size_t)fd < fdtab_size)
        atomic_store_explicit(&fdtab[fd], c, memory_order_relaxed);
    conn_list_insert(w, c);
    h2o_accept(&w->accept_ctx, c->sock);
}

/* A connection is idle when h2o waits for a request and nothing of it came. */
static bool conn_idle(const http__conn *c)
{
    /* a socket h2o closed (uv_close pending) has no input buffer anymore */
    return !uv_is_closing((const uv_handle_t *)&c->tcp) && !c->upgraded && c->in_handler == 0 &&
           h2o_socket_is_reading(c->sock) && !h2o_socket_is_writing(c->sock) &&
           c->sock->input->size == 0;
}

static void on_sweep(uv_timer_t *t)
{
    http__worker *w = t->data;
    http_server *s = w->srv;
    uint64_t now = uv_now(&w->loop);
    /* stopping: are all that is left connections we cut that h2o does not close? */
    bool all_stuck = w->stopping && w->in_flight == 0 && w->nconns > 0;
    for (http__conn *c = w->conns.next, *next; c != &w->conns; c = next) {
        next = c->next;
        if (uv_is_closing((uv_handle_t *)&c->tcp)) {
            all_stuck = false;
            continue;
        }
        if (c->cut) {
            if (now - c->cut_at < STUCK_MS)
                all_stuck = false;
            continue;
        }
        all_stuck = false;
        if (c->upgraded || c->in_handler) {
            c->partial_since = 0; /* the request arrived: its clock stops */
            continue;
        }
        h2o_socket_t *sock = c->sock;
        size_t io = sock->bytes_read + sock->bytes_written;
        bool moved = io != c->io_seen;
        c->io_seen = io;
        if (w->stopping && h2o_socket_is_writing(sock)) {
            /* an answer that does not move while we stop (seen with TLS
             * connections the client dropped): cut it */
            if (moved || !c->stall_since)
                c->stall_since = now;
            else if (now - c->stall_since >= STUCK_MS)
                conn_cut(c);
            continue;
        }
        if (conn_idle(c)) {
            c->partial_since = 0;
            if (moved || !c->idle_since)
                c->idle_since = now;
            if (w->stopping || now - c->idle_since >= s->o.idle_timeout_ms)
                conn_cut(c);
            continue;
        }
        c->idle_since = 0;
        bool arriving =
            h2o_socket_is_reading(sock) && !h2o_socket_is_writing(sock) && sock->input->size > 0;
        if (!arriving) {
            c->partial_since = 0;
            continue;
        }
        if (!c->partial_since) {
            c->partial_since = now;
        } else if (now - c->partial_since >= s->o.request_timeout_ms) {
            ms_counter_add(s->c_timeouts, 1);
            MS_INFO("http", "request not complete after %llu ms: answering 408, closing",
                    (unsigned long long)s->o.request_timeout_ms);
            write_raw_error(s, c->fd, 408, ms_err_name(MS_ERR_TIMEOUT),
                            "the request did not arrive within MSGSTORE_REQUEST_TIMEOUT", NULL);
            conn_cut(c);
            continue;
        }
        size_t look = sock->input->size;
        if (look > s->o.max_header_bytes + 4)
            look = s->o.max_header_bytes + 4;
        if (sock->input->size > s->o.max_header_bytes &&
            !memmem(sock->input->bytes, look, "\r\n\r\n", 4)) {
            ms_counter_add(s->c_timeouts, 1);
            write_raw_error(s, c->fd, 431, "headers_too_large",
                            "the request header block is too large", NULL);
            conn_cut(c);
        }
    }
    if (all_stuck) {
        MS_WARN("http", "worker %d: %d connection(s) do not close after being cut; leaving them",
                w->index, w->nconns);
        w->forced = true;
        worker_finish(w);
    }
}

/* ------------------------------------------------------------------ */
/* Workers                                                            */

static void close_if_open(uv_handle_t *h)
{
    if (h->loop && !uv_is_closing(h))
        uv_close(h, NULL);
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    close_if_open(h);
}

static void run_posts(http__worker *w)
{
    pthread_mutex_lock(&w->mu);
    http__post *p = w->posts;
    w->posts = w->posts_tail = NULL;
    pthread_mutex_unlock(&w->mu);
    while (p) {
        http__post *next = p->next;
        p->fn(p->arg);
        free(p);
        p = next;
    }
}

/* Everything is over on this worker: close our handles and h2o's; the loop
 * then runs out of work and uv_run() returns in worker_main(). */
static void worker_finish(http__worker *w)
{
    if (w->finished)
        return;
    w->finished = true;
    pthread_mutex_lock(&w->mu);
    w->closed = true;
    pthread_mutex_unlock(&w->mu);
    run_posts(w);
    if (w->srv->o.on_worker_stop)
        w->srv->o.on_worker_stop(w->srv, w->index, &w->loop, w->srv->o.hook_ctx);
    uv_timer_stop(&w->sweep);
    uv_timer_stop(&w->force_timer);
    close_if_open((uv_handle_t *)&w->sweep);
    close_if_open((uv_handle_t *)&w->force_timer);
    close_if_open((uv_handle_t *)&w->async);
    if (w->listening) {
        w->listening = false;
        close_if_open((uv_handle_t *)&w->listener);
    }
    if (!w->forced) {
        h2o_context_dispose(&w->ctx);
    } else {
        /* connections h2o still owns cannot be torn down under it */
        uv_stop(&w->loop);
    }
}

static void worker_maybe_finish(http__worker *w)
{
    if (w->stopping && w->nconns == 0 && w->in_flight == 0)
        worker_finish(w);
}

static void on_force_timer(uv_timer_t *t)
{
    http__worker *w = t->data;
    if (!w->force_waiting && w->in_flight > 0) {
        /* Connections still open after the cut hold requests whose handler
         * waits for the store (a database timing out). Their answers will hit
         * cut sockets and close them; keep the loop running for the store's
         * callbacks, so it can be closed cleanly afterwards. */
        w->force_waiting = true;
        MS_WARN("http", "worker %d: %d request(s) still wait for the store; giving them up to %d s",
                w->index, w->in_flight, ABANDON_AFTER_MS / 1000);
        uv_timer_start(&w->force_timer, on_force_timer, ABANDON_AFTER_MS, 0);
        return;
    }
    /* last resort: a handler never answered; leave its connection behind */
    MS_ERROR("http", "worker %d: abandoning %d connection(s) at shutdown", w->index, w->nconns);
    w->forced = true;
    worker_finish(w);
}

static void worker_begin_stop(http__worker *w)
{
    if (w->stopping)
        return;
    w->stopping = true;
    if (w->listening) {
        w->listening = false;
        uv_close((uv_handle_t *)&w->listener, NULL);
    }
    /* what h2o_context_request_shutdown() does for HTTP/1 (keep-alive off for
     * requests parsed from now on), without its HTTP/2 GOAWAY timer, which
     * would still be linked when the context is disposed */
    w->ctx.shutdown_requested = 1;
    if (w->srv->o.on_shutdown)
        w->srv->o.on_shutdown(w->srv, w->index, &w->loop, w->srv->o.hook_ctx);
    for (http__conn *c = w->conns.next, *next; c != &w->conns; c = next) {
        next = c->next;
        if (conn_idle(c))
            conn_cut(c);
    }
    worker_maybe_finish(w);
}

static void worker_force(http__worker *w)
{
    if (w->finished)
        return;
    for (http__conn *c = w->conns.next; c != &w->conns; c = c->next) {
        bool closing = uv_is_closing((uv_handle_t *)&c->tcp);
        struct sockaddr_storage sa;
        int peer_port = 0;
        if (!closing && h2o_socket_getpeername(c->sock, (struct sockaddr *)&sa) > 0)
            peer_port = h2o_socket_getport((struct sockaddr *)&sa);
        MS_WARN("http",
                "worker %d: cutting a connection (peer port %d): %s%s%s%s%s, %d request(s) in "
                "its handler",
                w->index, peer_port, closing ? "closing" : "open",
                !closing && h2o_socket_is_reading(c->sock) ? ", reading" : "",
                !closing && h2o_socket_is_writing(c->sock) ? ", writing" : "",
                c->upgraded ? ", websocket" : "", c->cut ? ", already cut" : "", c->in_handler);
        conn_cut(c);
    }
    uv_timer_start(&w->force_timer, on_force_timer, FORCE_GRACE_MS, 0);
}

static void on_async(uv_async_t *a)
{
    http__worker *w = a->data;
    pthread_mutex_lock(&w->mu);
    bool stop = w->stop_asked, force = w->force_asked;
    pthread_mutex_unlock(&w->mu);
    run_posts(w);
    if (stop)
        worker_begin_stop(w);
    if (force)
        worker_force(w);
}

/* h2o keeps freed socket buffers in a per-thread cache that dies with the
 * thread; hand them back to malloc before the worker ends. (Its memory-pool
 * cache is private to libh2o: up to 16 chunks of 4 KiB per worker stay
 * unreachable at exit; tests/lsan.supp names them.) */
static void drain_recycled_buffers(void)
{
    h2o_mem_recycle_t *a = &h2o_socket_buffer_prototype.allocator;
    void *p = a->_link;
    while (p) {
        void *next = *(void **)p; /* a free chunk starts with the link to the next */
        free(p);
        p = next;
    }
    a->_link = NULL;
    a->cnt = 0;
}

static void worker_main(void *arg)
{
    http__worker *w = arg;
    http_server *s = w->srv;
    h2o_context_init(&w->ctx, &w->loop, &s->conf);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = s->conf.hosts;
    w->accept_ctx.ssl_ctx = s->ssl;
    if (s->o.on_worker_start)
        s->o.on_worker_start(s, w->index, &w->loop, s->o.hook_ctx);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (!w->forced) {
        /* close whatever someone left open, then let the close callbacks run */
        if (uv_loop_close(&w->loop) == UV_EBUSY) {
            MS_WARN("http", "worker %d: handles left open at exit; closing them", w->index);
            uv_walk(&w->loop, walk_close, NULL);
            uv_run(&w->loop, UV_RUN_DEFAULT);
            uv_loop_close(&w->loop);
        }
    }
    drain_recycled_buffers();
    pthread_mutex_lock(&s->done_mu);
    s->workers_done++;
    pthread_cond_broadcast(&s->done_cv);
    pthread_mutex_unlock(&s->done_mu);
}

int http_worker_post(http_server *srv, int worker, void (*fn)(void *arg), void *arg)
{
    if (!srv->started || worker < 0 || worker >= srv->nworkers || !fn)
        return MS_ERR_INVALID;
    http__worker *w = &srv->workers[worker];
    http__post *p = malloc(sizeof *p);
    if (!p)
        return MS_ERR_NOMEM;
    p->fn = fn;
    p->arg = arg;
    p->next = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->closed) {
        pthread_mutex_unlock(&w->mu);
        free(p);
        return MS_ERR_SHUTDOWN;
    }
    if (w->posts_tail)
        w->posts_tail->next = p;
    else
        w->posts = p;
    w->posts_tail = p;
    uv_async_send(&w->async); /* under mu: the handle is not closed before closed is set */
    pthread_mutex_unlock(&w->mu);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                     */

static int open_listener(const struct addrinfo *ai, int port, int *out, char *err, size_t errlen,
                         const char *bind_name)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return MS_ERR_IO;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        snprintf(err, errlen, "SO_REUSEPORT: %s", strerror(errno));
        close(fd);
        return MS_ERR_IO;
    }
    struct sockaddr_storage sa;
    memcpy(&sa, ai->ai_addr, ai->ai_addrlen);
    if (sa.ss_family == AF_INET)
        ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&sa, ai->ai_addrlen) != 0) {
        snprintf(err, errlen, "cannot listen on %s port %d: %s", bind_name, port, strerror(errno));
        close(fd);
        return errno == EADDRINUSE ? MS_ERR_CONFLICT : MS_ERR_IO;
    }
    if (listen(fd, LISTEN_BACKLOG) != 0) {
        snprintf(err, errlen, "listen: %s", strerror(errno));
        close(fd);
        return MS_ERR_IO;
    }
    *out = fd;
    return 0;
}

static int bound_port(int fd)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        return 0;
    if (sa.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&sa)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
}

static int setup_tls(http_server *s, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "TLS: cannot create a context");
        return MS_ERR_NOMEM;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ctx, s->tls_cert) != 1) {
        snprintf(err, errlen, "MSGSTORE_TLS_CERT=\"%s\": cannot load a PEM certificate chain",
                 s->tls_cert);
        SSL_CTX_free(ctx);
        return MS_ERR_INVALID;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, s->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen,
                 "MSGSTORE_TLS_KEY=\"%s\": cannot load a PEM private key matching the certificate",
                 s->tls_key);
        SSL_CTX_free(ctx);
        return MS_ERR_INVALID;
    }
    ERR_clear_error();
    s->ssl = ctx;
    return 0;
}

static void setup_h2o(http_server *s)
{
    h2o_config_init(&s->conf);
    s->conf.server_name = h2o_iovec_init("", 0); /* no Server header */
    s->conf.max_request_entity_size = s->o.max_body_bytes;
    /* a backstop only: the sweep applies the idle and request timeouts */
    s->conf.http1.req_timeout =
        (s->o.idle_timeout_ms > s->o.request_timeout_ms ? s->o.idle_timeout_ms
                                                        : s->o.request_timeout_ms) +
        1000;
    s->conf.http1.upgrade_to_http2 = 0;
    s->conf.handshake_timeout = s->o.request_timeout_ms;
    s->host = h2o_config_register_host(&s->conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(s->host, "/", 0);
    struct {
        h2o_handler_t super;
        http_server *srv;
    } *h = (void *)h2o_create_handler(path, sizeof *h);
    h->super.on_req = http__on_req;
    h->srv = s;
    http__install_error_filter(path, s);
    http__install_error_filter(&s->host->fallback_path, s);
}

int http_server_start(http_server *s, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (s->started)
        return MS_ERR_INVALID;
    signal(SIGPIPE, SIG_IGN);
    pthread_once(&fdtab_once, fdtab_init);
    if (!fdtab) {
        snprintf(err, errlen, "out of memory");
        return MS_ERR_NOMEM;
    }
    int n = http_workers_for(s->o.workers);

    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(s->bind, "0", &hints, &ai);
    if (gai != 0 || !ai) {
        snprintf(err, errlen, "MSGSTORE_BIND=\"%s\": %s", s->bind, gai_strerror(gai));
        return MS_ERR_INVALID;
    }

    if (s->tls_cert[0]) {
        int rc = setup_tls(s, err, errlen);
        if (rc) {
            freeaddrinfo(ai);
            return rc;
        }
    }

    s->workers = calloc((size_t)n, sizeof *s->workers);
    if (!s->workers) {
        freeaddrinfo(ai);
        return MS_ERR_NOMEM;
    }
    int port = s->o.port, rc = 0, i;
    for (i = 0; i < n; i++) {
        s->workers[i].listen_fd = -1;
        rc = open_listener(ai, port, &s->workers[i].listen_fd, err, errlen, s->bind);
        if (rc)
            break;
        if (port == 0)
            port = bound_port(s->workers[i].listen_fd);
    }
    freeaddrinfo(ai);
    if (rc) {
        for (int j = 0; j < i; j++)
            close(s->workers[j].listen_fd);
        free(s->workers);
        s->workers = NULL;
        return rc;
    }
    s->port = port;
    s->nworkers = n;
    setup_h2o(s);
    s->started = true;

    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
        seed = http__now_ns();
    uint64_t sweep_ms = (s->o.request_timeout_ms < s->o.idle_timeout_ms ? s->o.request_timeout_ms
                                                                        : s->o.idle_timeout_ms) /
                        4;
    if (sweep_ms < 25)
        sweep_ms = 25;
    if (sweep_ms > 1000)
        sweep_ms = 1000;
    for (i = 0; i < n; i++) {
        http__worker *w = &s->workers[i];
        w->srv = s;
        w->index = i;
        w->conns.next = w->conns.prev = &w->conns;
        w->rid_prefix = ((seed >> 8) & 0xffffffff00ull) | (uint64_t)(i & 0xff);
        pthread_mutex_init(&w->mu, NULL);
        uv_loop_init(&w->loop);
        uv_async_init(&w->loop, &w->async, on_async);
        w->async.data = w;
        uv_timer_init(&w->loop, &w->sweep);
        w->sweep.data = w;
        uv_timer_start(&w->sweep, on_sweep, sweep_ms, sweep_ms);
        uv_timer_init(&w->loop, &w->force_timer);
        w->force_timer.data = w;
        uv_tcp_init(&w->loop, &w->listener);
        w->listener.data = w;
        uv_tcp_open(&w->listener, w->listen_fd);
        if (uv_listen((uv_stream_t *)&w->listener, LISTEN_BACKLOG, on_accept) == 0)
            w->listening = true;
    }
    for (i = 0; i < n; i++)
        uv_thread_create(&s->workers[i].thread, worker_main, &s->workers[i]);
    MS_INFO("http", "listening on %s port %d (%s, %d workers)", s->bind, port,
            s->ssl ? "https" : "http", n);
    return 0;
}

static void ask_all(http_server *s, bool force)
{
    for (int i = 0; i < s->nworkers; i++) {
        http__worker *w = &s->workers[i];
        pthread_mutex_lock(&w->mu);
        if (force)
            w->force_asked = true;
        else
            w->stop_asked = true;
        if (!w->closed)
            uv_async_send(&w->async);
        pthread_mutex_unlock(&w->mu);
    }
}

/* Waits until every worker ended or the deadline (CLOCK_REALTIME) passed. */
static bool wait_done(http_server *s, const struct timespec *deadline)
{
    pthread_mutex_lock(&s->done_mu);
    while (s->workers_done < s->nworkers) {
        if (pthread_cond_timedwait(&s->done_cv, &s->done_mu, deadline) == ETIMEDOUT)
            break;
    }
    bool all = s->workers_done == s->nworkers;
    pthread_mutex_unlock(&s->done_mu);
    return all;
}

int http_server_stop(http_server *s)
{
    if (!s || !s->started)
        return 0;
    ask_all(s, false);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)(s->o.shutdown_timeout_ms / 1000);
    deadline.tv_nsec += (long)(s->o.shutdown_timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    int cut = 0;
    if (!wait_done(s, &deadline)) {
        cut = (int)atomic_load(&s->in_flight);
        MS_WARN("http",
                "shutdown: %d request(s) still in flight and %d connection(s) open after "
                "MSGSTORE_SHUTDOWN_TIMEOUT; cutting them",
                cut, atomic_load(&s->nconns));
        ask_all(s, true);
    }
    for (int i = 0; i < s->nworkers; i++)
        uv_thread_join(&s->workers[i].thread);
    s->started = false;
    return cut;
}

void http_server_free(http_server *s)
{
    if (!s)
        return;
    if (s->workers) {
        for (int i = 0; i < s->nworkers; i++) {
            http__worker *w = &s->workers[i];
            pthread_mutex_destroy(&w->mu);
            http__post *p = w->posts;
            while (p) {
                http__post *next = p->next;
                free(p);
                p = next;
            }
        }
        free(s->workers);
        h2o_config_dispose(&s->conf);
    }
    if (s->ssl)
        SSL_CTX_free(s->ssl);
    for (size_t i = 0; i < s->nroutes; i++)
        http__route_free(&s->routes[i]);
    http__route_free(&s->unmatched);
    http__cors_free(&s->cors);
    free(s->routes);
    free(s->bind);
    free(s->tls_cert);
    free(s->tls_key);
    pthread_mutex_destroy(&s->done_mu);
    pthread_cond_destroy(&s->done_cv);
    free(s);
}
