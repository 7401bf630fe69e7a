/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_http_layer.c - the extension points of src/server/http.h over real
 * loopback sockets: routes with decoded parameters and queries, the guard,
 * answers given later from the loop, Server-Sent Events streams (and a client
 * that goes away), WebSocket echo, http_worker_post, worker hooks, graceful
 * stop. Runs under ASan in make check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/error.h"
#include "server/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static _Atomic int started, stopped, shutdowns, posted, streams_closed, ws_closed;

/* ------------------------------------------------------------------ server side */

static void h_items(http_request *r, void *ctx)
{
    (void)ctx;
    size_t n = 0;
    const char *name = http_request_param(r, "name", &n);
    const char *q = http_request_query(r, "q");
    char buf[256];
    int len = snprintf(buf, sizeof buf, "%.*s|%s|%s", (int)n, name, q ? q : "(none)",
                       http_request_route(r));
    http_respond(r, 200, "text/plain", buf, (size_t)len);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void on_later(uv_timer_t *t)
{
    http_request *r = t->data;
    http_respond_json(r, 200, json_pack("{s:s}", "answer", "later"));
    uv_close((uv_handle_t *)t, free_handle);
}

static void h_async(http_request *r, void *ctx)
{
    (void)ctx;
    uv_timer_t *t = malloc(sizeof *t);
    uv_timer_init(http_request_loop(r), t);
    t->data = r;
    uv_timer_start(t, on_later, 20, 0);
}

typedef struct {
    http_stream *s;
    uv_timer_t timer;
    int sent;
    int limit; /* 0: forever */
} sse;

static void sse_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void sse_closed(http_stream *s, void *ctx)
{
    (void)s;
    sse *e = ctx;
    e->s = NULL;
    atomic_fetch_add(&streams_closed, 1);
    uv_timer_stop(&e->timer);
    uv_close((uv_handle_t *)&e->timer, sse_timer_closed);
}

static void sse_tick(uv_timer_t *t)
{
    sse *e = t->data;
    char line[64];
    int n = snprintf(line, sizeof line, "data: %d\n\n", ++e->sent);
    if (http_stream_write(e->s, line, (size_t)n) != 0 || (e->limit && e->sent >= e->limit)) {
        uv_timer_stop(t);
        http_stream_end(e->s); /* sse_closed follows */
    }
}

static void h_sse(http_request *r, void *ctx)
{
    (void)ctx;
    sse *e = calloc(1, sizeof *e);
    const char *forever = http_request_query(r, "forever");
    e->limit = forever ? 0 : 3;
    uv_timer_init(http_request_loop(r), &e->timer);
    e->timer.data = e;
    e->s = http_stream_start(r, 200, "text/event-stream", sse_closed, e);
    uv_timer_start(&e->timer, sse_tick, 5, 10);
}

static void ws_message(http_ws *ws, const void *data, size_t len, bool binary, void *ctx)
{
    (void)ctx;
    if (!data) {
        atomic_fetch_add(&ws_closed, 1);
        return;
    }
    http_ws_send(ws, data, len, binary);
}

static void h_ws(http_request *r, void *ctx)
{
    (void)ctx;
    if (!http_ws_is_handshake(r)) {
        http_respond_error(r, 400, "invalid_argument", "WebSocket only");
        return;
    }
    assert_non_null(http_ws_accept(r, ws_message, NULL));
}

static void h_guarded(http_request *r, void *ctx)
{
    (void)ctx;
    http_respond_empty(r, 204);
}

static int guard(http_request *r, unsigned flags, void *ctx)
{
    (void)ctx;
    assert_true(flags & HTTP_ROUTE_AUTH_API);
    http_str h = http_request_header(r, "x-test");
    if (h.base && h.len == 3 && memcmp(h.base, "yes", 3) == 0)
        return 0;
    http_respond_ms_error(r, MS_ERR_UNAUTHORIZED, 0, "no");
    return -1;
}

static void hook_start(http_server *s, int w, uv_loop_t *l, void *c)
{
    (void)s, (void)w, (void)l, (void)c;
    atomic_fetch_add(&started, 1);
}

static void hook_shutdown(http_server *s, int w, uv_loop_t *l, void *c)
{
    (void)s, (void)w, (void)l, (void)c;
    atomic_fetch_add(&shutdowns, 1);
}

static void hook_stop(http_server *s, int w, uv_loop_t *l, void *c)
{
    (void)s, (void)w, (void)l, (void)c;
    atomic_fetch_add(&stopped, 1);
}

static void post_fn(void *arg)
{
    atomic_fetch_add(&posted, *(int *)arg);
}

/* ------------------------------------------------------------------ client side */

static int port;

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads until the peer closes (or a timeout); returns the length. */
static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    ssize_t r;
    while (got + 1 < cap && (r = recv(fd, buf + got, cap - 1 - got, 0)) > 0)
        got += (size_t)r;
    buf[got] = '\0';
    return got;
}

static void get(const char *path, const char *extra, char *out, size_t cap)
{
    int fd = dial();
    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s\r\n",
                     path, extra ? extra : "");
    send_all(fd, req, (size_t)n);
    read_all(fd, out, cap);
    close(fd);
}

static http_server *srv;

static int setup(void **state)
{
    (void)state;
    http_server_options o = {.bind = "127.0.0.1",
                             .port = 0,
                             .workers = 2,
                             .max_body_bytes = 4096,
                             .idle_timeout_ms = 5000,
                             .request_timeout_ms = 2000,
                             .max_connections = 100,
                             .shutdown_timeout_ms = 3000,
                             .access_log = false,
                             .guard = guard,
                             .on_worker_start = hook_start,
                             .on_shutdown = hook_shutdown,
                             .on_worker_stop = hook_stop};
    char err[256];
    assert_int_equal(http_server_new(&o, &srv, err, sizeof err), 0);
    assert_int_equal(http_server_route(srv, HTTP_GET, "/items/{name}", 0, h_items, NULL), 0);
    assert_int_equal(http_server_route(srv, HTTP_GET, "/async", 0, h_async, NULL), 0);
    assert_int_equal(http_server_route(srv, HTTP_GET, "/sse", 0, h_sse, NULL), 0);
    assert_int_equal(http_server_route(srv, HTTP_GET, "/ws", 0, h_ws, NULL), 0);
    assert_int_equal(
        http_server_route(srv, HTTP_GET, "/guarded", HTTP_ROUTE_AUTH_API, h_guarded, NULL), 0);
    /* bad patterns and duplicates are refused */
    assert_int_equal(http_server_route(srv, HTTP_GET, "/async", 0, h_async, NULL), MS_ERR_INVALID);
    assert_int_equal(http_server_route(srv, HTTP_GET, "no-slash", 0, h_async, NULL),
                     MS_ERR_INVALID);
    assert_int_equal(http_server_route(srv, HTTP_GET, "/a//b", 0, h_async, NULL), MS_ERR_INVALID);
    assert_int_equal(http_server_start(srv, err, sizeof err), 0);
    port = http_server_port(srv);
    assert_true(port > 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    http_server_free(srv);
    return 0;
}

static void test_params_query_route(void **state)
{
    (void)state;
    char out[4096];
    get("/items/caf%C3%A9%2Fx?q=a+b%21&z=1", NULL, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "caf\xc3\xa9/x|a b!|/items/{name}"));
    get("/items/x", NULL, out, sizeof out);
    assert_non_null(strstr(out, "x|(none)|"));
    get("/items/%zz", NULL, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 400"));
    get("/items", NULL, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 404"));
    assert_non_null(strstr(out, "\"not_found\""));
}

static void test_guard(void **state)
{
    (void)state;
    char out[4096];
    get("/guarded", NULL, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 401"));
    assert_non_null(strstr(out, "\"unauthorized\""));
    get("/guarded", "X-Test: yes\r\n", out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 204"));
    assert_null(strstr(out, "Content-Length")); /* no body, no length on 204 */
}

static void test_answer_later(void **state)
{
    (void)state;
    char out[4096];
    get("/async", NULL, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "{\"answer\":\"later\"}"));
    assert_non_null(strstr(out, "x-request-id: "));
}

static void test_sse(void **state)
{
    (void)state;
    int before = atomic_load(&streams_closed);
    char out[8192];
    get("/sse", NULL, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "text/event-stream"));
    const char *d1 = strstr(out, "data: 1"), *d2 = strstr(out, "data: 2"),
               *d3 = strstr(out, "data: 3");
    assert_true(d1 && d2 && d3 && d1 < d2 && d2 < d3);
    assert_null(strstr(out, "data: 4"));
    for (int i = 0; i < 100 && atomic_load(&streams_closed) == before; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&streams_closed), before + 1);
}

static void test_sse_client_goes_away(void **state)
{
    (void)state;
    int before = atomic_load(&streams_closed);
    int fd = dial();
    const char *req = "GET /sse?forever=1 HTTP/1.1\r\nHost: t\r\n\r\n";
    send_all(fd, req, strlen(req));
    char buf[512];
    assert_true(recv(fd, buf, sizeof buf, 0) > 0);
    close(fd);
    /* the next writes fail: the stream's on_closed runs and its timer stops */
    for (int i = 0; i < 300 && atomic_load(&streams_closed) == before; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&streams_closed), before + 1);
}

static void test_websocket_echo(void **state)
{
    (void)state;
    int before = atomic_load(&ws_closed);
    int fd = dial();
    const char *req = "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n";
    send_all(fd, req, strlen(req));
    char buf[1024] = ""; /* strstr reads it before the first recv */
    size_t got = 0;
    while (!strstr(buf, "\r\n\r\n") && got < sizeof buf - 1) {
        ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        assert_true(r > 0);
        got += (size_t)r;
        buf[got] = '\0';
    }
    assert_non_null(strstr(buf, "HTTP/1.1 101"));
    assert_non_null(strstr(buf, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")); /* RFC 6455's example */
    /* a masked text frame "hello" */
    unsigned char mask[4] = {1, 2, 3, 4};
    unsigned char f[11] = {0x81, 0x80 | 5, 1, 2, 3, 4};
    for (int i = 0; i < 5; i++)
        f[6 + i] = (unsigned char)("hello"[i] ^ mask[i % 4]);
    send_all(fd, f, sizeof f);
    unsigned char in[64];
    size_t n = 0;
    while (n < 7) {
        ssize_t r = recv(fd, in + n, sizeof in - n, 0);
        assert_true(r > 0);
        n += (size_t)r;
    }
    assert_int_equal(in[0], 0x81);
    assert_int_equal(in[1], 5);
    assert_memory_equal(in + 2, "hello", 5);
    /* close frame (masked, code 1000) */
    unsigned char cf[8] = {0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2};
    send_all(fd, cf, sizeof cf);
    for (int i = 0; i < 300 && atomic_load(&ws_closed) == before; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&ws_closed), before + 1);
    close(fd);
}

static void test_worker_post(void **state)
{
    (void)state;
    static int one = 1;
    int before = atomic_load(&posted);
    assert_int_equal(http_server_workers(srv), 2);
    assert_int_equal(http_worker_post(srv, 0, post_fn, &one), 0);
    assert_int_equal(http_worker_post(srv, 1, post_fn, &one), 0);
    assert_int_equal(http_worker_post(srv, 2, post_fn, &one), MS_ERR_INVALID);
    for (int i = 0; i < 300 && atomic_load(&posted) < before + 2; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&posted), before + 2);
    assert_int_equal(atomic_load(&started), 2);
}

static void test_stop_with_open_stream(void **state)
{
    (void)state;
    /* a stream nobody ends: the stop cuts it at the deadline, hooks run */
    int fd = dial();
    const char *req = "GET /sse?forever=1 HTTP/1.1\r\nHost: t\r\n\r\n";
    send_all(fd, req, strlen(req));
    char buf[256];
    assert_true(recv(fd, buf, sizeof buf, 0) > 0);
    int idle = dial(); /* an idle keep-alive connection is closed at once */
    int cut = http_server_stop(srv);
    assert_int_equal(cut, 0); /* a stream is answered, not in flight */
    assert_int_equal(atomic_load(&shutdowns), 2);
    assert_int_equal(atomic_load(&stopped), 2);
    assert_int_equal(recv(idle, buf, sizeof buf, 0), 0);
    static int one = 1;
    assert_int_equal(http_worker_post(srv, 0, post_fn, &one), MS_ERR_INVALID);
    close(fd);
    close(idle);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_query_route),   cmocka_unit_test(test_guard),
        cmocka_unit_test(test_answer_later),         cmocka_unit_test(test_sse),
        cmocka_unit_test(test_sse_client_goes_away), cmocka_unit_test(test_websocket_echo),
        cmocka_unit_test(test_worker_post),          cmocka_unit_test(test_stop_with_open_stream),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
