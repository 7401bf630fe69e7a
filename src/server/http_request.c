/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_request.c - one request's way through the layer: routing, path and
 * query parameters, the guard, the answer, metrics and the access log; and
 * the filter that turns h2o's own plain-text errors (413, 400 for broken
 * framing) into the API's JSON errors.
 */
#include "server/http_internal.h"
#include "core/error.h"
#include "core/log.h"

#include <dlfcn.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    h2o_handler_t super;
    http_server *srv;
} root_handler;

typedef struct {
    h2o_filter_t super;
    http_server *srv;
} error_filter;

static const char *const method_names[] = {"GET",   "HEAD",   "POST",    "PUT",
                                           "PATCH", "DELETE", "OPTIONS", "OTHER"};

const char *http_method_name(http_method m)
{
    return (unsigned)m <= HTTP_METHOD_OTHER ? method_names[m] : "OTHER";
}

static http_method parse_method(h2o_iovec_t m)
{
    for (int i = 0; i < HTTP_METHOD_OTHER; i++)
        if (m.len == strlen(method_names[i]) && memcmp(m.base, method_names[i], m.len) == 0)
            return (http_method)i;
    return HTTP_METHOD_OTHER;
}

const char *http__reason(int status)
{
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

int http_status_of(int err)
{
    switch (err) {
    case MS_OK:
        return 200;
    case MS_ERR_INVALID:
        return 400;
    case MS_ERR_NOT_FOUND:
        return 404;
    case MS_ERR_CONFLICT:
        return 409;
    case MS_ERR_TOO_LARGE:
        return 413;
    case MS_ERR_UNPROCESSABLE:
        return 422;
    case MS_ERR_UNAUTHORIZED:
        return 401;
    case MS_ERR_FORBIDDEN:
        return 403;
    case MS_ERR_RATE_LIMITED:
        return 429;
    case MS_ERR_UNAVAILABLE:
    case MS_ERR_TIMEOUT:
    case MS_ERR_SHUTDOWN:
    case MS_ERR_CLOCK:
    case MS_ERR_IO:
        return 503;
    default:
        return 500;
    }
}

/* ------------------------------------------------------------------ */
/* Routes                                                             */

int http__route_compile(http__route *rt, const char *pattern)
{
    if (pattern[0] != '/')
        return MS_ERR_INVALID;
    rt->pattern = strdup(pattern);
    if (!rt->pattern)
        return MS_ERR_NOMEM;
    const char *p = pattern + 1;
    int n = 0;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (n == HTTP__MAX_SEGMENTS || len == 0) {
            http__route_free(rt);
            return MS_ERR_INVALID;
        }
        bool param = len >= 3 && p[0] == '{' && p[len - 1] == '}';
        rt->is_param[n] = param;
        rt->segs[n] = param ? strndup(p + 1, len - 2) : strndup(p, len);
        if (!rt->segs[n]) {
            http__route_free(rt);
            return MS_ERR_NOMEM;
        }
        n++;
        rt->nsegs = n;
        if (!e)
            break;
        p = e + 1;
    }
    int nparams = 0;
    for (int i = 0; i < n; i++)
        nparams += rt->is_param[i];
    if (nparams > HTTP__MAX_PARAMS) {
        http__route_free(rt);
        return MS_ERR_INVALID;
    }
    return 0;
}

void http__route_free(http__route *rt)
{
    for (int i = 0; i < rt->nsegs; i++)
        free(rt->segs[i]);
    rt->nsegs = 0;
    free(rt->pattern);
    rt->pattern = NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long http__pct_decode(char *dst, const char *src, size_t len, bool plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = hexval(src[i + 1]), lo = hexval(src[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            dst[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            dst[o++] = ' ';
        } else {
            dst[o++] = c;
        }
    }
    dst[o] = '\0';
    return (long)o;
}

typedef struct {
    const char *base;
    size_t len;
} seg;

/* Splits "/a/b/c" into segments; returns their number, or -1 when there are too many. */
static int split_path(const char *path, size_t len, seg *out)
{
    if (len == 0 || path[0] != '/')
        return -1;
    int n = 0;
    size_t i = 1, start = 1;
    for (;; i++) {
        if (i == len || path[i] == '/') {
            if (n == HTTP__MAX_SEGMENTS)
                return -1;
            out[n].base = path + start;
            out[n].len = i - start;
            n++;
            if (i == len)
                break;
            start = i + 1;
        }
    }
    return n;
}

static bool route_matches_path(const http__route *rt, const seg *segs, int n)
{
    if (rt->nsegs != n)
        return false;
    for (int i = 0; i < n; i++) {
        if (rt->is_param[i]) {
            if (segs[i].len == 0)
                return false;
        } else if (segs[i].len != strlen(rt->segs[i]) ||
                   memcmp(segs[i].base, rt->segs[i], segs[i].len) != 0) {
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Metrics and access log                                             */

static int status_slot(int status)
{
    static const int known[] = {101, 200, 201, 204, 400, 401, 403, 404, 405, 408, 409,
                                411, 413, 415, 417, 422, 429, 431, 500, 503, 504};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (known[i] == status)
            return (int)i;
    return -1;
}

void http__count(http_server *srv, http__route *rt, http_method m, int status, uint64_t us)
{
    (void)srv;
    int slot = status_slot(status);
    ms_counter *c =
        slot >= 0 ? atomic_load_explicit(&rt->by_status[slot], memory_order_acquire) : NULL;
    if (!c) {
        char labels[512];
        snprintf(labels, sizeof labels, "route=\"%s\",method=\"%s\",status=\"%d\"", rt->pattern,
                 rt == &srv->unmatched ? http_method_name(m) : http_method_name(rt->method),
                 status);
        c = ms_counter_get("msgstore_http_requests_total", labels,
                           "HTTP requests answered, by route, method and status");
        /* the unmatched pseudo route serves every method: cache only for GET */
        if (slot >= 0 && (rt != &srv->unmatched || m == HTTP_GET))
            atomic_store_explicit(&rt->by_status[slot], c, memory_order_release);
    }
    ms_counter_add(c, 1);
    ms_histogram_observe_us(rt->latency, us);
}

/* Appends s as the inside of a JSON string. */
/* The length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629: no
 * overlong forms, no surrogates, at most U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

/* Appends s as the inside of a JSON string: valid UTF-8 as it is, bytes that
 * are not part of a well-formed sequence percent-encoded (%FF), so the line
 * is always valid UTF-8 JSON. */
static size_t json_esc(char *buf, size_t len, size_t cap, const char *s, size_t slen)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < slen && len + 8 < cap; i++) {
        unsigned char c = u[i];
        if (c == '"' || c == '\\') {
            buf[len++] = '\\';
            buf[len++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            len += (size_t)snprintf(buf + len, cap - len, "\\u%04x", c);
        } else if (c < 0x80) {
            buf[len++] = (char)c;
        } else {
            size_t n = utf8_seq(u + i, slen - i);
            if (n == 0) {
                len += (size_t)snprintf(buf + len, cap - len, "%%%02X", c);
            } else {
                memcpy(buf + len, u + i, n);
                len += n;
                i += n - 1;
            }
        }
    }
    return len;
}

static void format_ts(char *when, size_t cap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t w = strftime(when, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + w, cap - w, ".%03ldZ", ts.tv_nsec / 1000000L);
}

static void log_line(bool json, const char *rid, const char *method, const char *path,
                     size_t pathlen, const char *route, int status, double ms, size_t bytes)
{
    char when[40];
    format_ts(when, sizeof when);
    char line[2048];
    size_t len;
    if (json) {
        len = (size_t)snprintf(line, sizeof line,
                               "{\"ts\":\"%s\",\"level\":\"info\",\"component\":\"http\","
                               "\"msg\":\"request\",\"request_id\":\"",
                               when);
        len = json_esc(line, len, sizeof line, rid, strlen(rid));
        len += (size_t)snprintf(line + len, sizeof line - len, "\",\"method\":\"%s\",\"path\":\"",
                                method);
        len = json_esc(line, len, sizeof line, path, pathlen < 512 ? pathlen : 512);
        len += (size_t)snprintf(line + len, sizeof line - len, "\",\"route\":\"");
        len = json_esc(line, len, sizeof line, route, strlen(route));
        len += (size_t)snprintf(line + len, sizeof line - len,
                                "\",\"status\":%d,\"duration_ms\":%.3f,\"bytes\":%zu}\n", status,
                                ms, bytes);
    } else {
        char p[520];
        size_t pl = pathlen < 512 ? pathlen : 512;
        for (size_t i = 0; i < pl; i++)
            p[i] = (path[i] < 0x20 || path[i] == 0x7f) ? '?' : path[i];
        p[pl] = '\0';
        len = (size_t)snprintf(line, sizeof line,
                               "%s info  [http] %s %s %d %.3fms %zuB rid=%s route=%s\n", when,
                               method, p, status, ms, bytes, rid, route);
    }
    if (len >= sizeof line) {
        len = sizeof line - 1;
        line[len - 1] = '\n';
    }
    ssize_t rc = write(STDERR_FILENO, line, len);
    (void)rc;
}

void http__access_log(http_request *r, int status, size_t bytes_out)
{
    http_server *s = r->w->srv;
    if (!s->o.access_log || !ms_log_enabled(MS_LOG_INFO))
        return;
    if (r->route && (r->route->flags & HTTP_ROUTE_NO_LOG) && status < 400)
        return;
    http_str path = http_request_path(r);
    double ms = (double)(http__now_ns() - r->start_ns) / 1e6;
    char method[16];
    size_t ml = r->h->method.len < sizeof method - 1 ? r->h->method.len : sizeof method - 1;
    for (size_t i = 0; i < ml; i++) {
        char c = r->h->method.base[i];
        method[i] = (c >= 'A' && c <= 'Z') ? c : '?';
    }
    method[ml] = '\0';
    log_line(s->o.log_json, r->rid, method, path.base, path.len,
             r->route ? r->route->pattern : "unmatched", status, ms, bytes_out);
}

void http__request_done(http_request *r, int status, size_t bytes_out)
{
    http__worker *w = r->w;
    http_server *s = w->srv;
    uint64_t us = (http__now_ns() - r->start_ns) / 1000;
    http__count(s, r->route ? r->route : &s->unmatched, http_request_method(r), status, us);
    http__access_log(r, status, bytes_out);
    atomic_fetch_sub(&s->in_flight, 1);
    ms_gauge_add(s->g_in_flight, -1);
    w->in_flight--;
    if (r->conn)
        r->conn->in_handler--;
}

/* ------------------------------------------------------------------ */
/* Request framing (RFC 9112 §6.1, §6.3)                              */

/*
 * h2o 2.2.5 frames a request with both Transfer-Encoding and Content-Length
 * as chunked and one with several Content-Length values by the first, and
 * keeps the connection: what a proxy in front framed differently is then
 * served as another request (smuggling). RFC 9112 wants 400 and a closed
 * connection for both. h2o keeps neither header where a handler could see
 * it, so the check sits where h2o parses the head: libh2o calls
 * picohttpparser's phr_parse_request through its PLT, and this definition in
 * the executable comes first. It calls libh2o's own; for a head it must
 * refuse it renames the Content-Length fields h2o would not frame by to
 * FRAMING_MARK, with the reason as the value. h2o then reads the body as it
 * would have (chunked, or by the first Content-Length), and http__on_req
 * answers 400 with the reason and closes the connection before anything
 * else: the bytes after the body are never parsed.
 */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
                      const char **path, size_t *path_len, int *minor_version,
                      struct phr_header *headers, size_t *num_headers, size_t last_len);

typedef int (*phr_parse_request_fn)(const char *, size_t, const char **, size_t *, const char **,
                                    size_t *, int *, struct phr_header *, size_t *, size_t);

#define FRAMING_MARK "x-msgstore-framing-error"
/* h2o lowercases header names in place: the name must be writable, and it
 * outlives the request on the worker's thread. */
static _Thread_local char framing_mark[] = FRAMING_MARK;

static bool header_is(const struct phr_header *h, const char *name)
{
    return h->name && h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

static void mark(struct phr_header *h, const char *why)
{
    h->name = framing_mark;
    h->name_len = sizeof framing_mark - 1;
    h->value = why;
    h->value_len = strlen(why);
}

/* Marks a head whose framing must be refused (see above). */
static void framing_check(struct phr_header *h, size_t n)
{
    static const char two_cl[] = "the request has two different Content-Length values";
    static const char cl_te[] = "the request has both Transfer-Encoding and Content-Length";
    struct phr_header *cl = NULL;
    bool te = false, differ = false;
    for (size_t i = 0; i < n; i++) {
        if (header_is(&h[i], "transfer-encoding")) {
            te = true;
        } else if (header_is(&h[i], "content-length")) {
            if (!cl)
                cl = &h[i];
            else if (cl->value_len != h[i].value_len ||
                     memcmp(cl->value, h[i].value, h[i].value_len) != 0)
                differ = true;
        }
    }
    if (!cl || (!te && !differ))
        return;
    for (size_t i = 0; i < n; i++)
        if (header_is(&h[i], "content-length") && (te || &h[i] != cl))
            mark(&h[i], te ? cl_te : two_cl);
}

int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
                      const char **path, size_t *path_len, int *minor_version,
                      struct phr_header *headers, size_t *num_headers, size_t last_len)
{
    static _Atomic(phr_parse_request_fn) real;
    phr_parse_request_fn fn = atomic_load_explicit(&real, memory_order_acquire);
    if (!fn) {
        void *sym = dlsym(RTLD_NEXT, "phr_parse_request");
        memcpy(&fn, &sym, sizeof fn); /* POSIX: dlsym's object pointer is the function */
        if (!fn)
            abort(); /* libh2o always has it: the server cannot parse anything */
        atomic_store_explicit(&real, fn, memory_order_release);
    }
    int rc = fn(buf, len, method, method_len, path, path_len, minor_version, headers, num_headers,
                last_len);
    if (rc > 0)
        framing_check(headers, *num_headers);
    return rc;
}

/* ------------------------------------------------------------------ */
/* CORS                                                               */

int http__cors_init(http__cors *c, const char *origins, int max_age_s)
{
    memset(c, 0, sizeof *c);
    c->max_age_s = max_age_s;
    if (!origins)
        return 0;
    const char *p = origins;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        if (n == 0)
            break;
        if (n == 1 && *p == '*') {
            c->any = true;
        } else {
            if (c->n == HTTP__MAX_ORIGINS)
                return MS_ERR_INVALID;
            c->origins[c->n] = strndup(p, n);
            if (!c->origins[c->n])
                return MS_ERR_NOMEM;
            c->n++;
        }
        p += n;
    }
    c->on = c->any || c->n > 0;
    return 0;
}

void http__cors_free(http__cors *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->origins[i]);
    c->n = 0;
}

/* The request's Origin when CORS allows it; .base NULL otherwise. */
static h2o_iovec_t cors_origin(http_request *r)
{
    http__cors *c = &r->w->srv->cors;
    ssize_t i = h2o_find_header_by_str(&r->h->headers, H2O_STRLIT("origin"), -1);
    if (i < 0)
        return h2o_iovec_init(NULL, 0);
    h2o_iovec_t o = r->h->headers.entries[i].value;
    if (c->any)
        return o;
    for (size_t k = 0; k < c->n; k++)
        if (strlen(c->origins[k]) == o.len && strncasecmp(c->origins[k], o.base, o.len) == 0)
            return o;
    return h2o_iovec_init(NULL, 0);
}

static void cors_allow_origin(http_request *r, h2o_iovec_t origin)
{
    h2o_mem_pool_t *pool = &r->h->pool;
    h2o_headers_t *hs = &r->h->res.headers;
    if (r->w->srv->cors.any) {
        h2o_add_header(pool, hs, H2O_TOKEN_ACCESS_CONTROL_ALLOW_ORIGIN, NULL, H2O_STRLIT("*"));
    } else {
        h2o_iovec_t v = h2o_strdup(pool, origin.base, origin.len);
        h2o_add_header(pool, hs, H2O_TOKEN_ACCESS_CONTROL_ALLOW_ORIGIN, NULL, v.base, v.len);
        h2o_add_header(pool, hs, H2O_TOKEN_VARY, NULL, H2O_STRLIT("Origin"));
    }
}

/* An actual (not preflight) request from an allowed origin: say so in the answer. */
static void cors_actual(http_request *r)
{
    h2o_iovec_t o = cors_origin(r);
    if (!o.base)
        return;
    cors_allow_origin(r, o);
    h2o_add_header_by_str(&r->h->pool, &r->h->res.headers,
                          H2O_STRLIT("access-control-expose-headers"), 0, NULL,
                          H2O_STRLIT("X-Request-Id, Retry-After, Location, WWW-Authenticate"));
}

/* OPTIONS with Access-Control-Request-Method on a path with routes: answers it
 * (204 with the allowed methods and headers, or 403 without CORS headers for
 * an origin not listed) and returns true; false when it is not a preflight. */
static bool cors_preflight(http_request *r, unsigned allowed)
{
    if (h2o_find_header_by_str(&r->h->headers, H2O_STRLIT("access-control-request-method"), -1) <
            0 ||
        h2o_find_header_by_str(&r->h->headers, H2O_STRLIT("origin"), -1) < 0)
        return false;
    h2o_iovec_t o = cors_origin(r);
    if (!o.base) {
        /* cors_actual added nothing: the answer carries no CORS header */
        http_respond_error(r, 403, ms_err_name(MS_ERR_FORBIDDEN),
                           "this origin may not call the API (MSGSTORE_CORS_ORIGINS)");
        return true;
    }
    char methods[96] = "";
    for (int i = 0; i < HTTP_METHOD_OTHER; i++) {
        if (allowed & (1u << i)) {
            if (methods[0])
                strcat(methods, ", ");
            strcat(methods, method_names[i]);
        }
    }
    if (allowed & (1u << HTTP_GET) && !(allowed & (1u << HTTP_HEAD)))
        strcat(methods, ", HEAD");
    char age[16];
    snprintf(age, sizeof age, "%d", r->w->srv->cors.max_age_s);
    http_response_header(r, "access-control-allow-methods", methods);
    http_response_header(r, "access-control-allow-headers",
                         "Authorization, Content-Type, X-Request-Id, Last-Event-ID");
    http_response_header(r, "access-control-max-age", age);
    http_respond_empty(r, 204);
    return true;
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                           */

/*
 * A generated request id: the worker's prefix (40 bits) in 10 hex digits, then
 * the low 24 bits of its counter in 6 (what "%010" PRIx64 "%06" PRIx64 gave,
 * without snprintf on every request).
 */
static void rid_format(char out[17], uint64_t prefix, uint64_t seq)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 9; i >= 0; i--, prefix >>= 4)
        out[i] = hex[prefix & 15];
    for (int i = 15; i >= 10; i--, seq >>= 4)
        out[i] = hex[seq & 15];
    out[16] = '\0';
}

static bool rid_ok(h2o_iovec_t v)
{
    if (v.len == 0 || v.len > 64)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.base[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':'))
            return false;
    }
    return true;
}

static size_t header_bytes(const h2o_req_t *req)
{
    size_t n = req->input.method.len + req->input.path.len + req->input.authority.len + 16;
    for (size_t i = 0; i < req->headers.size; i++)
        n += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    return n;
}

int http__on_req(h2o_handler_t *self, h2o_req_t *req)
{
    http_server *s = ((root_handler *)self)->srv;
    http__worker *w = (http__worker *)((char *)req->conn->ctx - offsetof(http__worker, ctx));
    http_request *r = h2o_mem_alloc_pool(&req->pool, sizeof *r);
    memset(r, 0, sizeof *r);
    r->h = req;
    r->w = w;
    r->start_ns = http__now_ns();
    r->conn = http__conn_of(req);

    ssize_t hi = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    if (hi >= 0 && rid_ok(req->headers.entries[hi].value)) {
        memcpy(r->rid, req->headers.entries[hi].value.base, req->headers.entries[hi].value.len);
        r->rid[req->headers.entries[hi].value.len] = '\0';
    } else {
        rid_format(r->rid, w->rid_prefix, ++w->rid_seq);
    }

    atomic_fetch_add(&s->in_flight, 1);
    ms_gauge_add(s->g_in_flight, 1);
    w->in_flight++;
    if (r->conn) {
        r->conn->in_handler++;
        r->conn->partial_since =
            0; /* MSGSTORE_REQUEST_TIMEOUT is per request, not per connection */
    }

    ssize_t fi = h2o_find_header_by_str(&req->headers, H2O_STRLIT(FRAMING_MARK), -1);
    if (fi >= 0) {
        req->http1_is_persistent = 0; /* what follows the body was framed by a guess */
        http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID), "%.*s (RFC 9112 section 6.3)",
                           (int)req->headers.entries[fi].value.len,
                           req->headers.entries[fi].value.base);
        return 0;
    }
    if (header_bytes(req) > s->o.max_header_bytes) {
        http_respond_error(r, 431, "headers_too_large",
                           "the request header block is larger than %zu bytes",
                           s->o.max_header_bytes);
        return 0;
    }

    if (s->cors.on)
        cors_actual(r);

    http_method m = parse_method(req->method);
    size_t plen = req->path.len;
    if (req->query_at != SIZE_MAX && req->query_at < plen)
        plen = req->query_at;
    seg segs[HTTP__MAX_SEGMENTS];
    int n = split_path(req->path.base, plen, segs);

    http__route *found = NULL;
    unsigned allowed = 0;
    if (n > 0) {
        for (size_t i = 0; i < s->nroutes; i++) {
            http__route *rt = &s->routes[i];
            if (!route_matches_path(rt, segs, n))
                continue;
            allowed |= 1u << rt->method;
            if (rt->method == m)
                found = rt;
        }
        if (!found && m == HTTP_HEAD && (allowed & (1u << HTTP_GET))) {
            for (size_t i = 0; i < s->nroutes && !found; i++)
                if (s->routes[i].method == HTTP_GET && route_matches_path(&s->routes[i], segs, n))
                    found = &s->routes[i];
            r->head = true;
        }
    }
    if (!found && allowed && m == HTTP_OPTIONS && s->cors.on && cors_preflight(r, allowed))
        return 0;
    if (!found) {
        if (allowed) {
            char allow[96] = "";
            for (int i = 0; i < HTTP_METHOD_OTHER; i++) {
                if (allowed & (1u << i)) {
                    if (allow[0])
                        strcat(allow, ", ");
                    strcat(allow, method_names[i]);
                }
            }
            if (allowed & (1u << HTTP_GET) && !(allowed & (1u << HTTP_HEAD)))
                strcat(allow, ", HEAD");
            http_response_header(r, "allow", allow);
            http_respond_error(r, 405, "method_not_allowed", "%.*s is not allowed here; use %s",
                               (int)(req->method.len < 16 ? req->method.len : 16), req->method.base,
                               allow);
        } else {
            http_respond_error(r, 404, ms_err_name(MS_ERR_NOT_FOUND), "no route for %.*s %.*s",
                               (int)(req->method.len < 16 ? req->method.len : 16), req->method.base,
                               (int)(plen < 200 ? plen : 200), req->path.base);
        }
        return 0;
    }
    r->route = found;
    for (int i = 0; i < n; i++) {
        if (!found->is_param[i])
            continue;
        char *dst = h2o_mem_alloc_pool(&req->pool, segs[i].len + 1);
        long dl = http__pct_decode(dst, segs[i].base, segs[i].len, false);
        if (dl < 0) {
            http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID),
                               "path parameter %s: malformed percent-encoding", found->segs[i]);
            return 0;
        }
        r->param_names[r->nparams] = found->segs[i];
        r->param_values[r->nparams] = dst;
        r->param_lens[r->nparams] = (size_t)dl;
        r->nparams++;
    }
    if (found->flags & (HTTP_ROUTE_AUTH_API | HTTP_ROUTE_AUTH_PROBE | HTTP_ROUTE_AUTH_METRICS) &&
        s->o.guard) {
        if (s->o.guard(r, found->flags, s->o.guard_ctx) != 0)
            return 0; /* answered, or the guard runs the handler later */
    }
    found->fn(r, found->ctx);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Request accessors                                                  */

http_method http_request_method(const http_request *req)
{
    return parse_method(req->h->method);
}

http_str http_request_path(const http_request *req)
{
    size_t plen = req->h->path.len;
    if (req->h->query_at != SIZE_MAX && req->h->query_at < plen)
        plen = req->h->query_at;
    return (http_str){req->h->path.base, plen};
}

const char *http_request_route(const http_request *req)
{
    return req->route ? req->route->pattern : "unmatched";
}

const char *http_request_param(const http_request *req, const char *name, size_t *len)
{
    for (int i = 0; i < req->nparams; i++) {
        if (strcmp(req->param_names[i], name) == 0) {
            if (len)
                *len = req->param_lens[i];
            return req->param_values[i];
        }
    }
    return NULL;
}

static void parse_query(http_request *r)
{
    r->query_parsed = true;
    h2o_req_t *h = r->h;
    if (h->query_at == SIZE_MAX || h->query_at >= h->path.len)
        return;
    const char *q = h->path.base + h->query_at + 1;
    size_t qlen = h->path.len - h->query_at - 1;
    int cap = 1;
    for (size_t i = 0; i < qlen; i++)
        cap += q[i] == '&';
    if (cap > 64)
        cap = 64;
    r->query_kv = h2o_mem_alloc_pool(&h->pool, sizeof(char *) * 2 * (size_t)cap);
    size_t i = 0;
    while (i < qlen && r->nquery < cap) {
        size_t end = i;
        while (end < qlen && q[end] != '&')
            end++;
        size_t eq = i;
        while (eq < end && q[eq] != '=')
            eq++;
        if (end > i) {
            size_t klen = eq - i, vlen = eq < end ? end - eq - 1 : 0;
            char *k = h2o_mem_alloc_pool(&h->pool, klen + 1);
            char *v = h2o_mem_alloc_pool(&h->pool, vlen + 1);
            const char *vsrc = eq < end ? q + eq + 1 : "";
            long kl = http__pct_decode(k, q + i, klen, true);
            long vl = http__pct_decode(v, vsrc, vlen, true);
            if (kl >= 0 && (size_t)kl == strlen(k)) {
                if (vl < 0 || (size_t)vl != strlen(v)) {
                    /* a malformed escape or a NUL: hand out the raw text, which no
                     * validator accepts ("%zz", "5%00"), rather than a cut value */
                    memcpy(v, vsrc, vlen);
                    v[vlen] = '\0';
                }
                r->query_kv[2 * r->nquery] = k;
                r->query_kv[2 * r->nquery + 1] = v;
                r->nquery++;
            }
        }
        i = end + 1;
    }
}

const char *http_request_query(http_request *req, const char *name)
{
    if (!req->query_parsed)
        parse_query(req);
    for (int i = 0; i < req->nquery; i++)
        if (strcmp(req->query_kv[2 * i], name) == 0)
            return req->query_kv[2 * i + 1];
    return NULL;
}

http_str http_request_header(const http_request *req, const char *lname)
{
    ssize_t i = h2o_find_header_by_str(&req->h->headers, lname, strlen(lname), -1);
    if (i < 0)
        return (http_str){NULL, 0};
    return (http_str){req->h->headers.entries[i].value.base, req->h->headers.entries[i].value.len};
}

http_str http_request_body(const http_request *req)
{
    return (http_str){req->h->entity.base, req->h->entity.base ? req->h->entity.len : 0};
}

void http_request_set_body(http_request *req, const char *body, size_t len)
{
    req->h->entity = h2o_strdup(&req->h->pool, body, len);
}

void http_request_continue(http_request *req)
{
    req->route->fn(req, req->route->ctx);
}

const char *http_request_id(const http_request *req)
{
    return req->rid;
}

int http_request_worker(const http_request *req)
{
    return req->w->index;
}

uv_loop_t *http_request_loop(const http_request *req)
{
    return &req->w->loop;
}

http_server *http_request_server(const http_request *req)
{
    return req->w->srv;
}

void *http_request_alloc(http_request *req, size_t size)
{
    return h2o_mem_alloc_pool(&req->h->pool, size);
}

void http_request_set_user(http_request *req, void *user)
{
    req->user = user;
}

void *http_request_user(const http_request *req)
{
    return req->user;
}

/* ------------------------------------------------------------------ */
/* Responses                                                          */

void http_response_header(http_request *req, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    char *n = h2o_mem_alloc_pool(&req->h->pool, nl + 1);
    for (size_t i = 0; i < nl; i++)
        n[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] + 32) : name[i];
    n[nl] = '\0';
    h2o_iovec_t v = h2o_strdup(&req->h->pool, value, vl);
    h2o_add_header_by_str(&req->h->pool, &req->h->res.headers, n, nl, 1, NULL, v.base, v.len);
}

/* Sends status with body (in pool memory or static). */
static void send_final(http_request *r, int status, const char *ctype, h2o_iovec_t body)
{
    if (r->answered) {
        MS_ERROR("http", "%s: answered twice (bug)", r->route ? r->route->pattern : "?");
        return;
    }
    r->answered = true;
    h2o_req_t *req = r->h;
    req->res.status = status;
    req->res.reason = http__reason(status);
    if (ctype)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ctype,
                       strlen(ctype));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
                          r->rid, strlen(r->rid));
    if (r->w->stopping)
        req->http1_is_persistent = 0;
    req->res.content_length = status == 204 ? SIZE_MAX : body.len;
    http__request_done(r, status, body.len);
    static h2o_generator_t gen = {NULL, NULL};
    h2o_start_response(req, &gen);
    if (r->head || body.len == 0)
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
}

/* Frees the body of http_respond_take when the request's memory goes. */
static void free_taken(void *slot)
{
    free(*(void **)slot);
}

void http_respond_take(http_request *req, int status, const char *content_type, void *body,
                       size_t len)
{
    if (len == 0) {
        free(body);
        send_final(req, status, content_type, h2o_iovec_init(NULL, 0));
        return;
    }
    void **slot = h2o_mem_alloc_shared(&req->h->pool, sizeof *slot, free_taken);
    *slot = body;
    send_final(req, status, content_type, h2o_iovec_init(body, len));
}

void http_respond(http_request *req, int status, const char *content_type, const void *body,
                  size_t len)
{
    h2o_iovec_t b = len ? h2o_strdup(&req->h->pool, body, len) : h2o_iovec_init(NULL, 0);
    send_final(req, status, content_type, b);
}

void http_respond_json(http_request *req, int status, json_t *body)
{
    size_t n = body ? json_dumpb(body, NULL, 0, JSON_COMPACT | JSON_REAL_PRECISION(6)) : 0;
    if (!body || n == 0) {
        json_decref(body);
        send_final(req, 500, "application/json",
                   h2o_iovec_init(H2O_STRLIT("{\"error\":{\"code\":\"internal\",\"message\":"
                                             "\"cannot serialize the answer\"}}")));
        return;
    }
    char *buf = h2o_mem_alloc_pool(&req->h->pool, n + 1);
    json_dumpb(body, buf, n, JSON_COMPACT | JSON_REAL_PRECISION(6));
    buf[n] = '\n';
    json_decref(body);
    send_final(req, status, "application/json", h2o_iovec_init(buf, n + 1));
}

void http_respond_empty(http_request *req, int status)
{
    send_final(req, status, NULL, h2o_iovec_init(NULL, 0));
}

static void respond_verror(http_request *req, int status, const char *code, const char *fmt,
                           va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
    if (!j) /* the message was not valid UTF-8 (echoed input); say it without it */
        j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
                      ms_err_str(MS_ERR_INVALID));
    http_respond_json(req, status, j);
}

void http_respond_error(http_request *req, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    respond_verror(req, status, code, fmt, ap);
    va_end(ap);
}

void http_respond_ms_error(http_request *req, int err, int retry_after_s, const char *fmt, ...)
{
    int status = http_status_of(err);
    if (status == 503 || status == 429) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry_after_s > 0 ? retry_after_s : 1);
        http_response_header(req, "retry-after", ra);
    }
    va_list ap;
    va_start(ap, fmt);
    respond_verror(req, status, ms_err_name(err), fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* h2o's own errors as JSON                                           */

typedef struct {
    h2o_ostream_t super;
    h2o_iovec_t body;
    bool sent;
} replace_ostream;

static void replace_do_send(h2o_ostream_t *self_, h2o_req_t *req, h2o_iovec_t *bufs, size_t n,
                            h2o_send_state_t state)
{
    (void)bufs;
    (void)n;
    replace_ostream *self = (replace_ostream *)self_;
    if (!self->sent) {
        self->sent = true;
        h2o_ostream_send_next(&self->super, req, &self->body, 1, state);
    } else {
        h2o_ostream_send_next(&self->super, req, NULL, 0, state);
    }
}

static void error_filter_setup(h2o_filter_t *self_, h2o_req_t *req, h2o_ostream_t **slot)
{
    error_filter *self = (error_filter *)self_;
    if (req->res.status < 400 ||
        h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1) >= 0) {
        h2o_setup_next_ostream(req, slot);
        return;
    }
    /* h2o answered by itself (body too large, broken framing...) */
    int status = req->res.status;
    const char *code, *msg;
    switch (status) {
    case 413:
        code = ms_err_name(MS_ERR_TOO_LARGE);
        msg = "the request body is larger than MSGSTORE_MAX_BODY_BYTES";
        break;
    case 404:
        code = ms_err_name(MS_ERR_NOT_FOUND);
        msg = "not found";
        break;
    default:
        code = ms_err_name(status >= 500 ? MS_ERR_INTERNAL : MS_ERR_INVALID);
        msg = status >= 500 ? "internal error" : "malformed request";
        break;
    }
    char body[256];
    int n;
    if (status == 413)
        n = snprintf(body, sizeof body,
                     "{\"error\":{\"code\":\"%s\",\"message\":\"the request body is larger "
                     "than %zu bytes (MSGSTORE_MAX_BODY_BYTES)\"}}\n",
                     code, self->srv->o.max_body_bytes);
    else
        n = snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n", code,
                     msg);
    char rid[24];
    snprintf(rid, sizeof rid, "%016" PRIx64, http__now_ns());
    h2o_iovec_t b = h2o_strdup(&req->pool, body, (size_t)n);
    h2o_iovec_t rv = h2o_strdup(&req->pool, rid, strlen(rid));
    h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE,
                   H2O_STRLIT("application/json"), 1);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
                          rv.base, rv.len);
    req->res.content_length = b.len;
    http__count(self->srv, &self->srv->unmatched, parse_method(req->input.method), status, 0);
    if (self->srv->o.access_log && ms_log_enabled(MS_LOG_INFO)) {
        size_t plen = req->input.path.len; /* without the query: it may hold ?access_token= */
        const char *q = memchr(req->input.path.base, '?', plen);
        if (q)
            plen = (size_t)(q - req->input.path.base);
        char method[16];
        size_t ml = req->input.method.len < sizeof method - 1 ? req->input.method.len : 0;
        for (size_t i = 0; i < ml; i++) {
            char c = req->input.method.base[i];
            method[i] = (c >= 'A' && c <= 'Z') ? c : '?';
        }
        method[ml] = '\0';
        log_line(self->srv->o.log_json, rid, ml ? method : "-", req->input.path.base, plen,
                 "unmatched", status, 0.0, b.len);
    }
    replace_ostream *os = (replace_ostream *)h2o_add_ostream(req, sizeof *os, slot);
    os->super.do_send = replace_do_send;
    os->body = b;
    os->sent = false;
    h2o_setup_next_ostream(req, &os->super.next);
}

void http__install_error_filter(h2o_pathconf_t *pathconf, http_server *srv)
{
    error_filter *f = (error_filter *)h2o_create_filter(pathconf, sizeof *f);
    f->super.on_setup_ostream = error_filter_setup;
    f->srv = srv;
}
