/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_internal.h - what the http_*.c files share. Only they include h2o.
 */
#ifndef MS_SERVER_HTTP_INTERNAL_H
#define MS_SERVER_HTTP_INTERNAL_H

#include "server/http.h"
#include "core/metrics.h"

#include <h2o.h>
#include <pthread.h>
#include <stdatomic.h>

#define HTTP__MAX_PARAMS   8
#define HTTP__MAX_SEGMENTS 16
#define HTTP__STATUS_SLOTS 24

#define HTTP__MAX_ORIGINS 32

typedef struct http__cors {
    bool on;  /* some origin is allowed */
    bool any; /* "*" */
    char *origins[HTTP__MAX_ORIGINS];
    size_t n;
    int max_age_s;
} http__cors;

typedef struct http__route {
    http_method method;
    char *pattern;
    int nsegs;
    char *segs[HTTP__MAX_SEGMENTS]; /* literal text, or the parameter's name */
    bool is_param[HTTP__MAX_SEGMENTS];
    unsigned flags;
    http_handler_fn fn;
    void *ctx;
    ms_histogram *latency;
    _Atomic(ms_counter *) by_status[HTTP__STATUS_SLOTS]; /* filled on first use */
} http__route;

/* One client connection; tcp first: libuv's close callback gets its address. */
typedef struct http__conn {
    uv_tcp_t tcp;
    struct http__worker *w;
    h2o_socket_t *sock;
    int fd;
    struct http__conn *prev, *next;
    uint64_t partial_since; /* loop ms when bytes of an unfinished request were first seen */
    uint64_t idle_since;    /* loop ms since which nothing moved on an idle connection */
    size_t io_seen;         /* bytes read + written at the last sweep */
    uint64_t stall_since;   /* stopping: loop ms since which a pending write has not moved */
    uint64_t cut_at;        /* loop ms of conn_cut() */
    bool upgraded;          /* a WebSocket now: the request sweep leaves it alone */
    bool cut;               /* shut down by us; h2o closes it on its next read/write */
    int in_handler;         /* requests dispatched and not answered yet */
} http__conn;

typedef struct http__post {
    struct http__post *next;
    void (*fn)(void *arg);
    void *arg;
} http__post;

typedef struct http__worker {
    struct http_server *srv;
    int index;
    uv_thread_t thread;
    uv_loop_t loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    int listen_fd;
    uv_tcp_t listener;
    bool listening;
    uv_async_t async;
    uv_timer_t sweep;
    uv_timer_t force_timer;
    pthread_mutex_t mu; /* guards posts and closed */
    http__post *posts, *posts_tail;
    bool closed;        /* no more posts accepted */
    bool stop_asked;    /* set under mu by http_server_stop */
    bool force_asked;   /* ditto, the deadline passed */
    bool stopping;      /* loop-side view of stop_asked */
    bool force_waiting; /* cut; waiting for handlers to answer into the cut sockets */
    bool forced;        /* gave up on them: the loop is abandoned, not closed */
    bool finished;
    http__conn conns; /* list head */
    int nconns;
    int in_flight;
    uint64_t rid_prefix;
    uint64_t rid_seq;
} http__worker;

struct http_server {
    http_server_options o;
    char *bind, *tls_cert, *tls_key;
    h2o_globalconf_t conf;
    h2o_hostconf_t *host;
    SSL_CTX *ssl;
    http__route *routes;
    size_t nroutes, caproutes;
    http__route unmatched; /* pseudo route for metrics of 404/405/h2o errors */
    http__cors cors;
    http__worker *workers;
    int nworkers;
    int port;
    bool started;
    _Atomic int nconns;
    _Atomic int64_t in_flight;
    pthread_mutex_t done_mu;
    pthread_cond_t done_cv;
    int workers_done;
    ms_gauge *g_in_flight, *g_conns;
    ms_counter *c_rejected_conns, *c_timeouts, *c_ws_overflows;
};

struct http_request {
    h2o_req_t *h;
    http__worker *w;
    http__conn *conn;
    http__route *route;
    int nparams;
    const char *param_names[HTTP__MAX_PARAMS];
    char *param_values[HTTP__MAX_PARAMS];
    size_t param_lens[HTTP__MAX_PARAMS];
    bool query_parsed;
    int nquery;
    char **query_kv; /* 2 * nquery: decoded names and values */
    char rid[72];
    uint64_t start_ns;
    bool answered;
    bool head; /* HEAD served by a GET route: no body */
    void *user;
};

/* http.c */
http__conn *http__conn_of(h2o_req_t *req);
uint64_t http__now_ns(void);
void http__request_done(http_request *r, int status, size_t bytes_out);

/* http_request.c */
int http__on_req(h2o_handler_t *self, h2o_req_t *req);
void http__install_error_filter(h2o_pathconf_t *pathconf, http_server *srv);
int http__route_compile(http__route *rt, const char *pattern);
void http__route_free(http__route *rt);
int http__cors_init(http__cors *c, const char *origins, int max_age_s);
void http__cors_free(http__cors *c);
const char *http__reason(int status);
void http__access_log(http_request *r, int status, size_t bytes_out);
void http__count(http_server *srv, http__route *rt, http_method m, int status, uint64_t us);

/* percent-decodes src[0..len) into dst (room for len + 1); returns the
 * decoded length or -1 on a malformed escape. plus_is_space for queries. */
long http__pct_decode(char *dst, const char *src, size_t len, bool plus_is_space);

#endif
