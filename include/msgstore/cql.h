/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cql.h - msgstore's CQL native protocol v4 client (Cassandra, ScyllaDB).
 *
 * A session talks to one cluster from ONE libuv loop: it owns its control
 * connection, a connection pool per host, the token ring, a prepared
 * statement cache, circuit breakers and timers, and calls every callback on
 * that loop. Nothing in a session is locked: a program with several worker
 * threads creates one session per worker loop. A small synchronous layer
 * (cql_sync_*) runs a session on a private loop for command-line tools and
 * tests.
 *
 * Values are bound with cql_values and rows are read with the cql_result
 * accessors of msgstore/cql_value.h.
 *
 * What a session does for every request:
 *  - routing: the Murmur3 token of the bound partition key (prepared
 *    statements), the replicas of that token for the statement's keyspace
 *    (SimpleStrategy, NetworkTopologyStrategy), local DC first, remote DCs
 *    only when allowed, round-robin over replicas; with ScyllaDB the
 *    connection of the token's shard;
 *  - a deadline (request timeout) on every request and every connect;
 *  - retries with backoff only where that is safe: a request that never left
 *    the client, errors that guarantee nothing was executed (Unavailable,
 *    Is_bootstrapping), and, for statements marked idempotent only, timeouts,
 *    Overloaded, server errors and broken connections; a counter update or
 *    other non-idempotent write is never retried blindly;
 *  - UNPREPARED: re-prepare on that host and re-execute;
 *  - a circuit breaker per host that fails fast while open;
 *  - optional speculative executions for idempotent statements.
 *
 * Errors are values: a cql_status with an ms_err code (msgstore/error.h), the
 * server's error code when there was one, and a message. Nothing a server or
 * the network does makes the client abort.
 */
#ifndef MSGSTORE_CQL_H
#define MSGSTORE_CQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "msgstore/cql_value.h"
#include "msgstore/error.h"
#include "msgstore/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------- */
/* Status                                                                     */

/**
 * The outcome of a request (or of connecting). code is 0 on success or a
 * negative ms_err:
 *   MS_ERR_INVALID       bad statement or value (server Syntax/Invalid/Config)
 *   MS_ERR_UNAUTHORIZED  bad credentials
 *   MS_ERR_FORBIDDEN     server Unauthorized
 *   MS_ERR_CONFLICT      server Already_exists
 *   MS_ERR_UNAVAILABLE   no host could take it: all down, breakers open,
 *                        server Unavailable/Overloaded/Is_bootstrapping
 *   MS_ERR_TIMEOUT       the request deadline passed, or server Read/Write
 *                        timeout
 *   MS_ERR_IO            connection broken, protocol error, server failures
 *   MS_ERR_SHUTDOWN      the session is closing
 *   MS_ERR_INTERNAL      server error
 * server_code is the CQL error code (cql_error_code) when a server answered
 * with ERROR, else -1; the fields after it copy that error's details.
 */
typedef struct cql_status {
    int code;
    int32_t server_code;
    uint16_t consistency; /* Unavailable, timeouts, failures */
    int32_t required, alive;
    int32_t received, block_for;
    bool data_present;
    char write_type[16];
    char host[64];     /* host that answered (success too), "" if none */
    int attempts;      /* requests sent, retries and speculative ones included */
    uint16_t warnings; /* server warnings (logged) */
    bool has_tracing;
    uint8_t tracing_id[16];
    char message[256]; /* for humans; "" on success */
} cql_status;

/* ------------------------------------------------------------------------- */
/* Options                                                                    */

typedef enum cql_backoff_kind {
    CQL_BACKOFF_EXPONENTIAL = 0, /* base * 2^n up to cap, with jitter */
    CQL_BACKOFF_CONSTANT = 1,    /* base every time */
} cql_backoff_kind;

typedef enum cql_jitter {
    CQL_JITTER_FULL = 0,  /* uniform in [0, d] */
    CQL_JITTER_EQUAL = 1, /* d/2 + uniform in [0, d/2] */
    CQL_JITTER_NONE = 2,
} cql_jitter;

/** A backoff policy. max_attempts counts attempts after the first (0: no limit). */
typedef struct cql_backoff {
    cql_backoff_kind kind;
    cql_jitter jitter;
    int64_t base_ms;
    int64_t cap_ms;
    int max_attempts;
} cql_backoff;

typedef enum cql_breaker_state {
    CQL_BREAKER_CLOSED = 0,
    CQL_BREAKER_OPEN = 1,
    CQL_BREAKER_HALF_OPEN = 2,
} cql_breaker_state;

/** "closed", "open", "half_open". */
const char *cql_breaker_state_name(cql_breaker_state s);

typedef struct cql_session cql_session;

typedef enum cql_host_event {
    CQL_HOST_ADDED = 1,
    CQL_HOST_REMOVED = 2,
    CQL_HOST_UP = 3,   /* a pool connection is ready */
    CQL_HOST_DOWN = 4, /* no pool connection left */
} cql_host_event;

/** What a session knows about one host. */
typedef struct cql_host_info {
    char address[48]; /* as connected to, "127.0.0.1" */
    int port;
    char dc[64];
    char rack[64];
    char host_id[37];
    char release_version[32];
    bool up;    /* at least one pool connection ready */
    bool local; /* in the local DC */
    cql_breaker_state breaker;
    int connections;    /* ready pool connections */
    int in_flight;      /* requests on those connections */
    uint64_t requests;  /* requests sent to it */
    uint64_t errors;    /* failed attempts on it */
    uint32_t nr_shards; /* ScyllaDB shards, 0 for Cassandra */
    bool lz4;           /* the pool's connections negotiated LZ4 */
    bool tls;           /* the connections use TLS */
    bool pooled;        /* the session keeps connections to it (local DC, or remote DCs
                           allowed): up/down are meaningful only then */
} cql_host_info;

typedef void (*cql_host_event_cb)(cql_session *s, cql_host_event ev, const cql_host_info *host,
                                  void *ud);

/**
 * Session settings. Fill with cql_options_init (library defaults; msgstore
 * itself maps its SCYLLA_* settings with store_cql_options), then adjust.
 * Strings are copied by cql_session_new.
 */
typedef struct cql_options {
    const char *contact_points; /* "host[:port],host[:port]"; names resolve at connect */
    int port;                   /* default 9042 */
    const char *keyspace;       /* USE on every connection; NULL/"" for none */
    const char *username;       /* PasswordAuthenticator (SASL PLAIN); NULL for none */
    const char *password;
    const char *local_dc;       /* NULL/"": the DC of the contact point answering first */
    bool allow_remote_dc;       /* route to other DCs when the local one has no host up */
    bool only_contact_points;   /* pools only to the contact points (admin tools, tests) */
    int64_t connect_timeout_ms; /* TCP + TLS + handshake of one connection */
    int64_t request_timeout_ms; /* default deadline of a request, retries included */
    int64_t heartbeat_ms;       /* OPTIONS on a connection idle this long (0: off) */
    int64_t idle_timeout_ms;    /* no byte read this long while waiting: connection defunct */
    int pool_size;              /* connections per host (per shard on ScyllaDB) */
    int prepared_cache_size;    /* prepared statements kept (LRU) */
    bool prepare_on_all_hosts;  /* prepare a new statement on every up host */
    cql_backoff retry;          /* between retries of one request */
    cql_backoff reconnect;      /* between reconnection attempts to a host */
    int breaker_threshold;      /* consecutive failures that open a host's breaker */
    int64_t breaker_reset_ms;   /* open time before a probe */
    bool compression;           /* LZ4 when the server offers it */
    bool token_aware;
    bool shard_aware;       /* ScyllaDB: connections per shard */
    uint16_t shard_port_lo; /* source ports for the shard-aware port */
    uint16_t shard_port_hi;
    int default_consistency;        /* cql_consistency */
    int default_serial_consistency; /* SERIAL or LOCAL_SERIAL */
    int32_t default_page_size; /* rows per page when a statement does not say (<= 0: no paging) */
    bool client_timestamps;    /* send a monotonic client timestamp with writes */
    int64_t speculative_delay_ms; /* > 0: start another execution of an idempotent
                                     statement after this long without an answer */
    int speculative_max;          /* extra executions at most (default 1) */
    bool wait_schema_agreement;   /* after DDL, wait until every host has the same schema */
    int64_t schema_agreement_ms;
    struct {
        bool enabled;
        const char *ca_file;   /* PEM CAs; NULL: the system store */
        const char *cert_file; /* client certificate (PEM), optional */
        const char *key_file;  /* its key (PEM) */
        bool verify_peer;      /* default true */
        bool verify_hostname;  /* default true: the name or IP we connect to */
    } tls;
    const char *name;                /* label of this session in metrics ("default") */
    cql_host_event_cb on_host_event; /* optional */
    void *on_host_event_ud;
} cql_options;

/**
 * The version of the library the program runs against
 * (MSGSTORE_VERSION_STRING of the build that made it), e.g. "0.1.0".
 */
const char *cql_version_string(void);

/**
 * Library defaults (127.0.0.1:9042, LOCAL_QUORUM and LOCAL_SERIAL, 5 s connect and 10 s
 * request timeouts... see docs/cql-client.md). Cannot fail.
 */
void cql_options_init(cql_options *o);

/* ------------------------------------------------------------------------- */
/* Sessions                                                                   */

typedef void (*cql_connect_cb)(cql_session *s, const cql_status *st, void *ud);
typedef void (*cql_close_cb)(void *ud);

/**
 * Creates a session on loop (not connected yet). Copies o. Returns 0,
 * MS_ERR_INVALID (bad options, message in err if errlen > 0) or MS_ERR_NOMEM.
 * The caller closes it with cql_session_close.
 */
int cql_session_new(uv_loop_t *loop, const cql_options *o, cql_session **out, char *err,
                    size_t errlen);

/**
 * Connects: the control connection to the first contact point that answers,
 * the cluster's hosts and keyspaces, then the pools. cb runs once, on the
 * loop, when a pool connection is ready (st->code 0) or everything failed.
 * Requests submitted before that wait for it (until their deadline).
 * Returns 0, or MS_ERR_INVALID when called twice.
 */
int cql_session_connect(cql_session *s, cql_connect_cb cb, void *ud);

/**
 * Closes the session: new requests fail with MS_ERR_SHUTDOWN, requests in
 * flight may finish until deadline_ms from now, then complete with
 * MS_ERR_SHUTDOWN; every connection and timer is closed and cb (may be
 * NULL) runs; the session is freed right after cb returns. Call once, on the
 * loop's thread; the loop must keep running until cb.
 */
void cql_session_close(cql_session *s, int64_t deadline_ms, cql_close_cb cb, void *ud);

/** The loop the session runs on. */
uv_loop_t *cql_session_loop(const cql_session *s);

/**
 * Copies what the session knows about its hosts into out (at most max) and
 * returns the number of hosts (which may exceed max).
 */
size_t cql_session_hosts(cql_session *s, cql_host_info *out, size_t max);

/**
 * The replicas of a token in keyspace (NULL: the session's keyspace), primary
 * first, as host infos. Returns their number (0 when the keyspace or the
 * ring is unknown).
 */
size_t cql_session_replicas(cql_session *s, const char *keyspace, int64_t token, cql_host_info *out,
                            size_t max);

/** A host's totals over every session of one name (cql_host_totals_get). */
typedef struct cql_host_totals {
    int64_t sessions_up; /* sessions with a ready pool connection to it */
    int64_t in_flight;   /* their requests in flight to it */
} cql_host_totals;

/**
 * The totals for host address:port over every session named session_name
 * (cql_options.name; a program's sessions of one pool share it), read from
 * the client's metrics: callable from any thread, while those sessions run
 * on theirs. Call it for a host such a session knows (cql_session_hosts):
 * for others the metrics are created, at zero. Cannot fail.
 */
void cql_host_totals_get(const char *session_name, const char *address, int port,
                         cql_host_totals *out);

/**
 * Reconnects now to every host of the session that is down, and the control
 * connection if it is lost: their reconnection backoff starts over, as when
 * a node announces itself UP. For programs that keep several sessions to one
 * cluster (one per thread): when one session sees a host come back
 * (CQL_HOST_UP), the others need not wait out their own backoff (up to
 * reconnect.cap_ms). The attempts start from the loop, not inside this call.
 * Call on the loop's thread; NULL or a closing session: nothing happens.
 */
void cql_session_reconnect_now(cql_session *s);

/** Counters of a session (for tests, tools and metrics). */
typedef struct cql_session_stats {
    uint64_t requests;           /* user requests completed */
    uint64_t errors;             /* of which failed */
    uint64_t retries;            /* extra attempts after a failure */
    uint64_t speculative;        /* speculative executions started */
    uint64_t timeouts;           /* requests whose deadline passed */
    uint64_t breaker_rejections; /* attempts refused by an open breaker */
    uint64_t reprepares;         /* UNPREPARED answered by a re-prepare */
    uint64_t prepared_hits, prepared_misses, prepared_evictions;
    size_t prepared_cached;
    int in_flight;   /* user requests not completed yet */
    int connections; /* ready pool connections */
} cql_session_stats;

void cql_session_stats_get(cql_session *s, cql_session_stats *out);

/**
 * What the server of the control connection said about itself in SUPPORTED
 * (the same for every node of a cluster). Decides "this is ScyllaDB" without
 * waiting for a pool connection.
 */
typedef struct cql_server_features {
    bool known;              /* a control connection has been ready: the rest is meaningful */
    bool scylla;             /* ScyllaDB: SUPPORTED carries its SCYLLA_* keys */
    bool sharded;            /* ScyllaDB sharding usable (shard-aware pools) */
    bool rate_limit_error;   /* SCYLLA_RATE_LIMIT_ERROR negotiated: such errors are
                                MS_ERR_RATE_LIMITED and never retried */
    int32_t rate_limit_code; /* the error code the server advertised for it */
    bool tablets_routing;    /* TABLETS_ROUTING_V1 negotiated: tablet-aware routing */
} cql_server_features;

/** Fills *out (all false before the first control connection). Loop thread only. */
void cql_session_server_features(const cql_session *s, cql_server_features *out);

/* ------------------------------------------------------------------------- */
/* Statements                                                                 */

typedef struct cql_prepared cql_prepared;

/** Use the session default (consistency, serial consistency, page size). */
#define CQL_DEFAULT (-1)

/**
 * One request. Initialise with cql_statement_init, then set query or
 * prepared. Everything it points to is copied when the request is submitted,
 * so it may live on the caller's stack.
 */
typedef struct cql_statement {
    const char *query;        /* CQL text (simple or to prepare) */
    size_t query_len;         /* 0: strlen(query) */
    cql_prepared *prepared;   /* execute this prepared statement instead */
    bool prepare;             /* query: prepare it through the session's cache first */
    const cql_values *values; /* bound values or NULL */
    int consistency;          /* cql_consistency or CQL_DEFAULT */
    int serial_consistency;   /* SERIAL/LOCAL_SERIAL, CQL_DEFAULT, or 0 for none */
    int32_t page_size;        /* CQL_DEFAULT, > 0 rows, or 0 for no paging */
    cql_bytes paging_state;   /* from the previous page; ptr NULL for the first */
    bool idempotent;          /* may be applied twice safely: allows retries */
    int64_t timestamp;        /* µs; INT64_MIN: the client's (if enabled) */
    int64_t timeout_ms;       /* 0: the session default */
    const char *keyspace;     /* routing keyspace of a simple query (NULL: session's) */
    bool tracing;
    bool no_speculative; /* an idempotent statement that must not be sent twice at once
                            (speculative_delay_ms): writes, whose second copy costs the
                            cluster a full write to save a little latency */
} cql_statement;

void cql_statement_init(cql_statement *st);

/**
 * Callback of a request. st is never NULL; st->code is 0 on success. res is
 * NULL on failure; otherwise it is lent to the callback and freed when it
 * returns, unless the callback keeps it with cql_result_keep.
 */
typedef void (*cql_result_cb)(cql_result *res, const cql_status *st, void *ud);

/**
 * Submits a statement. Returns 0 and cb runs exactly once, later, on the
 * session's loop (never from inside this call); or MS_ERR_INVALID for a
 * NULL argument or a statement with neither query nor prepared (cb is then
 * not called). Everything else (closed session, breaker open, no host) is
 * reported through cb.
 */
int cql_session_execute(cql_session *s, const cql_statement *st, cql_result_cb cb, void *ud);

/**
 * Takes ownership of a result lent to a callback; free it with
 * cql_result_destroy. Returns res.
 */
cql_result *cql_result_keep(cql_result *res);

/** Frees a result kept with cql_result_keep (or returned by cql_sync_*). NULL is fine. */
void cql_result_destroy(cql_result *res);

typedef void (*cql_prepare_cb)(cql_prepared *p, const cql_status *st, void *ud);

/**
 * Prepares query through the session's cache (key: keyspace + query). cb
 * gets a reference the caller owns (release with cql_prepared_release) or
 * NULL on failure. Same calling rules as cql_session_execute.
 */
int cql_session_prepare(cql_session *s, const char *query, cql_prepare_cb cb, void *ud);

/** Another reference to p. */
cql_prepared *cql_prepared_ref(cql_prepared *p);
/** Drops a reference; the statement is freed with the last one. NULL is fine. */
void cql_prepared_release(cql_prepared *p);
/** Bind markers and their types (the PREPARED bind metadata); borrowed. */
const cql_metadata *cql_prepared_params(const cql_prepared *p);
/** Result columns (may have column_count 0); borrowed. */
const cql_metadata *cql_prepared_result(const cql_prepared *p);
/** The query text. */
const char *cql_prepared_query(const cql_prepared *p);

/** Kinds of batches (the protocol's values). */
typedef enum cql_batch_kind {
    CQL_BATCH_KIND_LOGGED = 0,
    CQL_BATCH_KIND_UNLOGGED = 1,
    CQL_BATCH_KIND_COUNTER = 2,
} cql_batch_kind;

/**
 * A batch of statements (query or prepared, with values; their consistency
 * and paging fields are ignored). A counter batch is never retried after it
 * may have reached a server; other batches only when idempotent.
 */
typedef struct cql_batch_request {
    cql_batch_kind kind;
    const cql_statement *statements;
    size_t count;    /* 1..65535 */
    int consistency; /* CQL_DEFAULT or a level */
    int serial_consistency;
    bool idempotent;
    int64_t timestamp; /* INT64_MIN: the client's (if enabled) */
    int64_t timeout_ms;
    bool no_speculative; /* as cql_statement.no_speculative */
} cql_batch_request;

void cql_batch_request_init(cql_batch_request *b);

/** Submits a batch; same rules as cql_session_execute. */
int cql_session_batch(cql_session *s, const cql_batch_request *b, cql_result_cb cb, void *ud);

/* ------------------------------------------------------------------------- */
/* Paging                                                                     */

typedef struct cql_pager cql_pager;

/**
 * An iterator over the pages of a statement (copied). Returns 0 or
 * MS_ERR_NOMEM / MS_ERR_INVALID. Free with cql_pager_free (not while a page
 * is being fetched).
 */
int cql_pager_new(cql_session *s, const cql_statement *st, cql_pager **out);

/**
 * Fetches the next page: cb gets its rows; the pager remembers the paging
 * state. Returns MS_ERR_NOT_FOUND when the last page was already fetched,
 * MS_ERR_CONFLICT while a fetch is in progress, else 0 (cb will run).
 */
int cql_pager_next(cql_pager *p, cql_result_cb cb, void *ud);

/** True until a page without a paging state has been received. */
bool cql_pager_has_more(const cql_pager *p);

void cql_pager_free(cql_pager *p);

/* ------------------------------------------------------------------------- */
/* Synchronous layer (command-line tools, tests)                              */

/**
 * A session on a private loop; each call runs that loop until its request
 * completes (see cql_sync_run_for for threads that keep one idle). Not for
 * event-loop threads. Use from one thread at a time. Every call below accepts
 * the NULL a failed cql_sync_connect leaves: requests fail with MS_ERR_INVALID
 * ("no session"), queries of state answer empty (0 hosts, zeroed counters).
 */
typedef struct cql_sync cql_sync;

/** Creates and connects. On failure *out is NULL and st says why. */
int cql_sync_connect(const cql_options *o, cql_sync **out, cql_status *st);

/** Runs a statement; *res (may be NULL to discard) must be freed with cql_result_destroy. */
int cql_sync_execute(cql_sync *c, const cql_statement *stmt, cql_result **res, cql_status *st);

/** Runs a simple query (no values) at the default consistency. */
int cql_sync_query(cql_sync *c, const char *query, cql_result **res, cql_status *st);

/** Prepares; *out is a reference to release with cql_prepared_release. */
int cql_sync_prepare(cql_sync *c, const char *query, cql_prepared **out, cql_status *st);

int cql_sync_batch(cql_sync *c, const cql_batch_request *b, cql_status *st);

/** Fetches the next page of a pager created on cql_sync_session(c). */
int cql_sync_pager_next(cql_sync *c, cql_pager *p, cql_result **res, cql_status *st);

/** What the session knows about its hosts (as cql_session_hosts). */
size_t cql_sync_hosts(cql_sync *c, cql_host_info *out, size_t max);

/** The replicas of a token (as cql_session_replicas). */
size_t cql_sync_replicas(cql_sync *c, const char *keyspace, int64_t token, cql_host_info *out,
                         size_t max);

/** The session's counters (as cql_session_stats_get). */
void cql_sync_stats(cql_sync *c, cql_session_stats *out);

/** The server's features (as cql_session_server_features). */
void cql_sync_server_features(cql_sync *c, cql_server_features *out);

/**
 * Runs the private loop for about ms milliseconds (lets timers and events
 * run); ms <= 0: handles what is ready now and returns without waiting. The
 * loop runs only inside cql_sync calls: a thread that keeps a session and
 * has nothing to send must call this now and then (every 50-100 ms), or the
 * session stalls: no reconnection after an outage (handshakes start and
 * never finish), no heartbeats, server events unread.
 */
void cql_sync_run_for(cql_sync *c, int64_t ms);

/**
 * The underlying session (pagers, async calls driven with cql_sync_run_for).
 * Call it only from the thread that uses c.
 */
cql_session *cql_sync_session(cql_sync *c);

/** Closes gracefully (deadline 5 s) and frees. NULL is fine. */
void cql_sync_close(cql_sync *c);

#ifdef __cplusplus
}
#endif
#endif
