/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server_internal.h - what the server's files share (srv__ prefix).
 */
#ifndef MS_SERVER_SERVER_INTERNAL_H
#define MS_SERVER_SERVER_INTERNAL_H

#include "core/metrics.h"
#include "server/auth.h"
#include "server/jwt.h"
#include "server/ratelimit.h"
#include "server/server.h"

#include <msgstore/id.h>

#include <pthread.h>
#include <stdatomic.h>

typedef struct srv__health {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool running, stop;
    /* the last background check */
    bool checked;
    bool ok;
    int status;       /* 0 or the ms_err of the failed ping */
    char detail[256]; /* the failure, for humans */
    uint64_t latency_us;
    int schema_version;
    uint64_t at_ms; /* Unix ms of the check */
    uint64_t checks, failures;
    uint64_t inflight_since_ms; /* Unix ms the running check started; 0: none running */
    /* the last store details (store_health), taken after each ping */
    store_health_result *store; /* owned; NULL until the first one */
    int store_status;           /* 0, or why there are no details (store_error) */
    char store_error[256];
    uint64_t store_at_ms;
    /* /health/ready's last answer, reused for MSGSTORE_READY_CACHE */
    uint64_t ready_at_ms; /* monotonic ms of the answer; 0: none yet */
    int ready_status;     /* 200 or 503 */
    char ready_body[384]; /* the JSON */
    char ready_retry[8];  /* Retry-After of a 503 */
    bool ready_inflight;  /* a check for /health/ready is running */
} srv__health;

/* Who makes a request (http_request_user); NULL on an open API. */
typedef enum srv__caller_kind {
    SRV_CALLER_SERVICE = 1, /* a service token: every right */
    SRV_CALLER_USER = 2,    /* a user token (JWT): its claims */
} srv__caller_kind;

typedef struct srv__caller {
    srv__caller_kind kind;
    int token;  /* service: the token's index */
    ms_xid sub; /* user: the user id */
    int64_t exp;
    unsigned scope; /* JWT_SCOPE_* */
    bool all_channels;
    const ms_xid *channels;
    size_t nchannels;
} srv__caller;

struct srv {
    ms_config cfg;
    store *st;
    http_server *http;
    auth_tokens *tokens;
    auth_tokens *ops_tokens; /* MSGSTORE_OPS_TOKENS: /health and /metrics only */
    jwt_keys *jwt;           /* NULL: user tokens off */
    rl_table *rl;            /* NULL: no rate limit */
    ms_counter *c_rl_user, *c_rl_service;
    bool open_api; /* no token configured: /v1 is open (not in production) */
    srv_commit_hook_fn hook;
    void *hook_ctx;
    http_worker_hook_fn x_start, x_shutdown, x_stop;
    void *x_ctx;
    struct {
        const char *name;
        srv_health_section_fn fn;
        void *ctx;
    } hx[SRV_HEALTH_SECTIONS_MAX]; /* extra /health sections (srv_set_health_section) */
    int nhx;
    srv__health health;
    uint64_t started_ms;
    int retry_after_s; /* Retry-After on 503 from the store */
    ms_id_format idf;  /* the store's channel and user ids (store_id_format) */
};

/* api_json.c: answers the error itself and returns nonzero on bad input. */
int srv__path_id(http_request *r, const char *name, uint64_t *out);
/* Channel and user ids in the store's format (s->idf): 400 naming the parameter or field. */
int srv__path_xid(const srv *s, http_request *r, const char *name, ms_xid *out);
int srv__query_xid(const srv *s, http_request *r, const char *name, ms_xid *out, bool *present);
int srv__field_xid(const srv *s, http_request *r, json_t *o, const char *name, bool required,
                   ms_xid *out);
/* Parses one id of format f from text (what the server accepts; NUL-terminated). */
bool srv__parse_xid(ms_id_format f, const char *text, ms_xid *out);
int srv__path_i64(http_request *r, const char *name, bool nonzero, int64_t min, int64_t *out);
int srv__query_id(http_request *r, const char *name, uint64_t *out, bool *present);
int srv__query_limit(http_request *r, int *out);
json_t *srv__body(http_request *r, bool required, const char *const *allowed);
int srv__field_id(http_request *r, json_t *o, const char *name, bool required, uint64_t *out);
int srv__field_i64(http_request *r, json_t *o, const char *name, bool required, int64_t min,
                   bool nonzero, int64_t *out);
int srv__field_str(http_request *r, json_t *o, const char *name, bool required, const char **out,
                   size_t *len);
int srv__field_u64ms(http_request *r, json_t *o, const char *name, uint64_t *out);

json_t *srv__id(uint64_t id);
json_t *srv__xid(const srv *s, ms_xid id); /* the canonical text: lower-case UUID or decimal */
json_t *srv__i64(int64_t v);
json_t *srv__pin_json(const srv *s, const store_pin_entry *p);
json_t *srv__channel_json(const srv *s, const store_channel *c);
json_t *srv__sync_json(const srv *s, const store_sync_state *st);

/* Answers a failed store call: status from the code, Retry-After on 503. */
void srv__store_error(srv *s, http_request *r, int status, const char *detail, bool from_body);

/* Answers with body (taken) and, when ev_kind >= 0, publishes it through the commit hook. */
void srv__respond_publish(srv *s, http_request *r, int status, json_t *body, int ev_kind,
                          ms_xid channel_id, uint64_t message_id);
/* The same with JSON text (copied); an out-of-memory writer answers 500. */
void srv__respond_publish_text(srv *s, http_request *r, int status, const char *json, size_t len,
                               bool oom, int ev_kind, ms_xid channel_id, uint64_t message_id);

/* json_out.c: a growable buffer of compact JSON for the hot answers. */
#define SRV__JW_XIDS 4
typedef struct srv__jw {
    char *p;
    size_t len, cap;
    bool oom;
    /* the last ids formatted (a page repeats its channel's and a few senders') */
    unsigned nxid, xid_next;
    ms_xid xid[SRV__JW_XIDS];
    ms_id_format xid_fmt[SRV__JW_XIDS];
    unsigned char xid_len[SRV__JW_XIDS];
    char xid_text[SRV__JW_XIDS][MS_XID_STRLEN];
} srv__jw;
void srv__jw_init(srv__jw *w);
void srv__jw_free(srv__jw *w);
/* Room for n more bytes at once (fewer reallocations, each copying what was written). */
void srv__jw_hint(srv__jw *w, size_t n);
void srv__jw_raw(srv__jw *w, const char *s, size_t n);
void srv__jw_lit(srv__jw *w, const char *s);
void srv__jw_str(srv__jw *w, const char *s, size_t n);
void srv__jw_cstr(srv__jw *w, const char *s); /* NULL: null */
void srv__jw_id(srv__jw *w, uint64_t id);
void srv__jw_opt_id(srv__jw *w, uint64_t id); /* 0: null */
void srv__jw_xid(srv__jw *w, ms_id_format f, ms_xid id);
void srv__jw_i64s(srv__jw *w, int64_t v);
void srv__jw_u64(srv__jw *w, uint64_t v);
void srv__jw_opt_ms(srv__jw *w, uint64_t ms);
void srv__jw_bool(srv__jw *w, bool b);
void srv__jw_message(srv__jw *w, ms_id_format f, const store_message *m);

/* Route tables. */
int srv__routes_messages(srv *s);
int srv__routes_other(srv *s);
int srv__routes_ops(srv *s);
int srv__routes_search(srv *s);
int srv__routes_console(srv *s);

/* health.c */
int srv__health_start(srv *s);
void srv__health_stop(srv *s);

uint64_t srv__unix_ms(void);

/* access.c: the guard of every route with flags (service and user tokens, rate limits). */
int srv__guard(http_request *r, unsigned flags, void *ctx);
/* The caller of a request; NULL when the API is open. */
const srv__caller *srv__caller_of(const http_request *r);
/* True when c may act on channel (service tokens and NULL: always). */
bool srv__caller_channel_ok(const srv__caller *c, ms_xid channel);
/* Takes one request from c's rate-limit bucket: 0, or the seconds to wait (counted). */
int srv__rate_take(srv *s, const srv__caller *c);
/* The format of channel and user ids. */
ms_id_format srv__id_format(const srv *s);
int64_t srv__unix_s(void);

#endif
