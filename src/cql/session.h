/* SPDX-License-Identifier: Apache-2.0 */
/*
 * session.h - internals of a CQL session shared by session.c (lifecycle,
 * hosts, housekeeping), request.c (a request's lifecycle), exec.c (running
 * it), pager.c, prepared.c (prepared statements), cluster.c (control
 * connection, metadata, events) and pool.c (connection pools). Everything
 * here runs on the session's loop thread.
 */
#ifndef MS_CQL_SESSION_H
#define MS_CQL_SESSION_H

#include "msgstore/cql.h"

#include "core/metrics.h"
#include "cql/breaker.h"
#include "cql/clock.h"
#include "cql/conn.h"
#include "cql/lb.h"
#include "cql/lru.h"
#include "cql/proto.h"
#include "cql/ring.h"
#include "cql/tablets.h"
#include "cql/tq.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define CQL_PLAN_MAX            8
#define CQL_MAX_ATTEMPTS_ACTIVE 4 /* one execution + speculative ones */
#define CQL_MAX_REPREPARES      2
#define CQL_ERR_KINDS           32 /* > -MS_ERR_INTERNAL */

typedef struct cql_request cql_request;
typedef struct cql_host cql_host;

/* ---- connection pools (pool.c) -------------------------------------------- */

/*
 * The pure part of a host's pool: connection slots per shard (one shard for
 * Cassandra), which shard needs a connection next, and which connection a
 * request takes. Unit-tested without sockets.
 */
typedef struct cql_shard_pool {
    uint32_t nr_shards; /* 1: not sharded */
    uint32_t ignore_msb;
    int per_shard; /* connections wanted per shard */
    void **conns;  /* nr_shards * per_shard slots, NULL when empty */
    int total;     /* slots in use */
    uint32_t rr;   /* rotation when no token is known */
} cql_shard_pool;

/* Sets up for nr_shards (>= 1) x per_shard. Returns 0 or MS_ERR_NOMEM. */
int cql__spool_init(cql_shard_pool *p, uint32_t nr_shards, uint32_t ignore_msb, int per_shard);
/* Frees the slots (not the connections in them). */
void cql__spool_free(cql_shard_pool *p);

/* Puts a connection that landed on shard into a free slot: the slot index, or -1 when that
 * shard is full (close the connection: it is an extra). */
int cql__spool_add(cql_shard_pool *p, uint32_t shard, void *conn);

/* Removes conn; returns its slot or -1. */
int cql__spool_remove(cql_shard_pool *p, void *conn);

/* The shard with the fewest connections below per_shard (lowest first), or -1 when full. */
int cql__spool_missing_shard(const cql_shard_pool *p);

/*
 * The connection for a request: shard when >= 0 (a tablet's replica shard),
 * else the token's shard when known; when that shard has one (least loaded by load()), else the
 * least loaded of the others (rotating). NULL when the pool is empty.
 */
void *cql__spool_pick(cql_shard_pool *p, bool has_token, int64_t token, int shard,
                      int (*load)(const void *conn));

/*
 * Which connection to open next: *shard (-1: none missing) and, when the
 * host offers a shard-aware port, the source port that lands there
 * (*local_port, 0 otherwise), scanning from *port_cursor within [lo, hi].
 */
void cql__spool_plan(const cql_shard_pool *p, uint16_t shard_aware_port, uint16_t lo, uint16_t hi,
                     uint16_t *port_cursor, int *shard, uint16_t *local_port);

/*
 * What a host's pool reports to its owner (cpp-driver's pool listener): pool.c
 * calls nothing above itself; session.c implements these (host events,
 * re-preparing, finishing cql_session_connect).
 */
typedef struct cql_pool_listener {
    /* h came up: c is its first ready connection; again: it had been up before */
    void (*on_up)(cql_host *h, cql_conn *c, bool again);
    /* h lost its last ready connection (why: for logs) */
    void (*on_down)(cql_host *h, const char *why);
    /* a connection of h closed or failed to open */
    void (*on_conn_failed)(cql_host *h);
} cql_pool_listener;

/*
 * What the control connection reports to the session (cpp-driver's cluster
 * listener): cluster.c fills the host table (hosts.c) and calls nothing else
 * above itself; session.c implements these.
 */
typedef struct cql_cluster_listener {
    /* hosts, tokens or keyspaces changed: rebuild the views, open or close pools */
    void (*on_topology)(cql_session *s);
    /* a host joined (CQL_HOST_ADDED) or left (CQL_HOST_REMOVED) */
    void (*on_host_event)(cql_session *s, cql_host *h, cql_host_event ev);
    /* the cluster says h is up (STATUS_CHANGE): reconnect to it now */
    void (*on_status_up)(cql_session *s, cql_host *h);
    /* a table (table empty: a keyspace) changed: cached result metadata is stale */
    void (*on_schema_changed)(cql_session *s, cql_str ks, cql_str table);
    /* r's DDL reached schema agreement (or gave up waiting): complete it with box */
    void (*on_schema_agreed)(cql_session *s, cql_request *r, void *box);
    /* the first metadata round ended: st NULL (a host failed) or its outcome */
    void (*on_connect_done)(cql_session *s, const cql_status *st);
} cql_cluster_listener;

/*
 * What the prepared-statement cache asks of the requests that wait for it:
 * prepared.c calls no request code; request.c implements these
 * (cql__request_prepared_listener).
 */
typedef struct cql_prepared_listener {
    /* sends the PREPARE of cache entry p; 0, or an MS_ERR (nothing sent) */
    int (*send_prepare)(cql_session *s, cql_prepared *p);
    /* r waited for p, which is now ready: r continues */
    void (*on_ready)(cql_request *r, cql_prepared *p);
    /* r waited for a statement that could not be prepared: r fails with st (later: from
     * the loop's next turn, never inside the caller's call) */
    void (*on_failed)(cql_request *r, const cql_status *st, bool later);
} cql_prepared_listener;
extern const cql_prepared_listener cql__request_prepared_listener;

/*
 * What the requests report to the session: request.c and exec.c call no
 * session code; session.c implements these.
 */
typedef struct cql_request_listener {
    /* a USE through the session changed its keyspace to ks */
    void (*on_keyspace)(cql_session *s, const char *ks);
    /* the last request of a closing session completed */
    void (*on_drained)(cql_session *s);
} cql_request_listener;

/* ---- hosts ------------------------------------------------------------------ */

struct cql_host {
    cql_session *s;
    uint32_t idx;
    char addr[48];
    int port;
    struct sockaddr_storage sa;
    char label[64]; /* addr:port */
    char dc[64];
    char rack[64];
    char host_id[37];
    char release[32];
    char schema_version[37];
    int64_t *tokens;
    size_t ntokens;
    bool removed; /* left the cluster (slot kept) */
    bool local;   /* in the local DC */
    bool pooled;  /* the session keeps a pool to it */
    bool up;      /* a pool connection is ready */
    bool was_up;  /* up at least once: later ups re-prepare */
    bool gave_up; /* reconnection policy exhausted: waits for an UP event */
    bool contact; /* one of the resolved contact points */
    /* pool */
    cql_shard_pool spool;
    cql_conn **conns; /* every connection, ready or connecting */
    int nconns, cap_conns;
    int connecting;
    int ready;
    bool scylla;
    uint16_t shard_port;
    uint16_t port_cursor;
    int excess; /* extra connections closed in this fill round (basic shard mode) */
    /* reconnection */
    cql_tq_node reconnect;
    int reconnect_attempt;
    char last_error[160];
    /* health and stats */
    cql_breaker breaker;
    uint64_t requests, errors;
    int in_flight;
    ms_gauge *g_in_flight, *g_breaker, *g_up;
    ms_counter *c_requests;
};

/* ---- keyspaces ------------------------------------------------------------ */

typedef struct cql_ks {
    char name[64];
    cql_replication rep;
    int map; /* index into session maps, -1 until computed */
} cql_ks;

/* ---- prepared statements (prepared.c) ------------------------------------- */

enum { CQL_PREP_PREPARING = 0, CQL_PREP_READY = 1, CQL_PREP_FAILED = 2 };

struct cql_prepared {
    int refs;
    int state;
    cql_session *s; /* NULL once the session is gone */
    char *keyspace; /* keyspace at prepare time ("" for none) */
    char *query;
    size_t query_len;
    uint8_t *id;
    size_t id_len;
    cql_metadata *bind;     /* clone; pk_indexes for routing */
    cql_metadata *result;   /* clone; NULL when unknown */
    cql_metadata **retired; /* replaced result metadata, kept for results that use it */
    size_t nretired;
    bool skip_metadata; /* EXECUTE may ask for rows without metadata */
    bool lwt;
    char route_ks[64];    /* keyspace of the bound table (routing) */
    char route_table[64]; /* the bound table (tablet routing) */
    int ks_idx;           /* session keyspace index, -1 unknown */
    uint64_t ks_gen;      /* topology generation of ks_idx */
    bool in_cache;
    cql_request *waiters; /* requests waiting for the PREPARE */
};

/* ---- requests (request.c) -------------------------------------------------- */

enum {
    CQL_REQ_QUERY = 1,
    CQL_REQ_EXECUTE = 2,
    CQL_REQ_BATCH = 3,
    CQL_REQ_PREPARE = 4, /* user prepare (answers with the prepared) */
};

typedef struct cql_attempt {
    cql_pending p; /* first member */
    cql_request *req;
    cql_host *host;
    cql_conn *conn;
    bool active;
    bool repreparing;
    bool probe; /* the breaker's half-open probe */
    int64_t start_us;
} cql_attempt;

typedef struct cql_batch_item {
    char *query; /* NULL for prepared */
    size_t query_len;
    cql_prepared *prep;
    bool prep_wanted;  /* query: prepare it through the cache first */
    size_t voff, vlen; /* serialized values in req->vals.buf */
    uint16_t vcount;
} cql_batch_item;

struct cql_request {
    cql_session *s;
    cql_request *next; /* free list, waiting lists */
    int kind;
    cql_result_cb cb;
    cql_prepare_cb pcb;
    void *ud;
    cql_buf frame;   /* the encoded request, stream 0 */
    cql_values vals; /* copy of the bound values */
    char *query;     /* QUERY/PREPARE text (owned) */
    size_t query_len;
    cql_prepared *prep; /* EXECUTE (a reference) */
    cql_batch_item *items;
    size_t nitems;
    uint8_t batch_kind;
    /* parameters */
    int consistency;
    int serial_consistency;
    int32_t page_size;
    cql_buf paging_state; /* len 0 + err 0 and has_paging false: none */
    bool has_paging;
    int64_t timestamp;
    bool tracing;
    bool idempotent;
    bool speculative; /* idempotent and not no_speculative: may run twice at once */
    bool skip_metadata;
    char route_ks[64];
    char route_table[64]; /* "" unless a prepared statement names it */
    bool has_token;
    int64_t token;
    /* the tablet owning token, when one is cached: hosts by index, and their shards */
    int ntrep;
    uint32_t trep_host[CQL_TABLET_MAX_REPLICAS];
    int32_t trep_shard[CQL_TABLET_MAX_REPLICAS];
    /* execution */
    uint32_t plan[CQL_PLAN_MAX];
    int nplan, plan_pos;
    bool planned;
    cql_attempt att[CQL_MAX_ATTEMPTS_ACTIVE];
    int nactive;
    int tries;
    int retries;
    int reprepares;
    cql_prepared *reprep; /* the statement being re-prepared */
    int nspec;
    cql_tq_node deadline, wake, spec;
    int64_t start_us;
    int64_t timeout_ms;
    cql_status st;
    bool done;
    bool waiting;  /* parked until the session is connected or a prepare ends */
    bool internal; /* the client's own (PREPARE of a cache entry): not in user stats */
    int breaker_refusals;
};

/* ---- the session ------------------------------------------------------------ */

enum { CQL_S_NEW = 0, CQL_S_CONNECTING, CQL_S_READY, CQL_S_FAILED, CQL_S_CLOSING, CQL_S_CLOSED };

typedef struct cql_control cql_control;

struct cql_session {
    uv_loop_t *loop;
    int state;
    /* options, strings owned */
    cql_options o;
    char *contact_points, *keyspace, *username, *password, *local_dc, *name;
    char *tls_ca, *tls_cert, *tls_key;
    cql_conn_cfg pool_cfg;    /* keyspace, auth, compression ... */
    cql_conn_cfg control_cfg; /* events, no keyspace */
    SSL_CTX *ssl_ctx;
    /* hosts */
    cql_host **hosts;
    size_t nhosts, cap_hosts;
    uint8_t *lb_up;
    uint8_t *lb_local;
    uint32_t *lb_locals, *lb_remotes;
    size_t nlocals, nremotes;
    uint64_t topo_gen;
    /* ring and keyspaces */
    cql_ring ring;
    bool ring_ok;
    cql_ks *ks;
    size_t nks;
    uint64_t ks_gen; /* bumped whenever ks is replaced (prepared statements cache an index) */
    cql_replica_map *maps;
    size_t nmaps;
    cql_tablets tablets; /* ScyllaDB tablet routing, learnt from routing payloads */
    /* control connection and connecting */
    cql_control *ctl;
    cql_connect_cb connect_cb;
    void *connect_ud;
    bool connect_reported;
    cql_request *waiting; /* requests submitted before connect finished */
    /* prepared statements */
    cql_lru cache;
    /* requests */
    cql_request *free_reqs;
    size_t nfree_reqs;
    int in_flight;          /* every request, internal ones too (closing waits) */
    int internal_in_flight; /* of which the client's own */
    int64_t warn_at;        /* last server warning logged */
    uint64_t warn_suppressed;
    uint64_t rr;
    uint64_t rng;
    cql_tsgen ts;
    cql_tq tq;
    uv_timer_t house; /* housekeeping: heartbeats, idle checks */
    cql_buf scratch;
    /* close */
    cql_close_cb close_cb;
    void *close_ud;
    cql_tq_node close_deadline;
    int open_handles;
    const cql_pool_listener *pool_listener;         /* session.c's */
    const cql_cluster_listener *cluster_listener;   /* session.c's */
    const cql_request_listener *request_listener;   /* session.c's */
    const cql_prepared_listener *prepared_listener; /* request.c's */
    /* what the control connection's server offered (SUPPORTED) */
    cql_server_features server;
    /* stats */
    cql_session_stats stats;
    /* metrics */
    ms_counter *m_requests, *m_retries, *m_timeouts, *m_spec, *m_breaker_rej, *m_reprepares;
    ms_gauge *m_in_flight, *m_in_flight_max; /* every session of the process: now and most */
    ms_histogram *m_latency;
    ms_counter *m_errors[CQL_ERR_KINDS]; /* by -ms_err, looked up on first use */
    char mlabel[96];                     /* session="name" */
};

/* hosts.c: the host table and its views */
/* The host at addr:port, or NULL. */
cql_host *cql__host_find(cql_session *s, const char *addr, int port);
/* The host at addr:port, added (down, no pool yet) when new; NULL: bad address or no memory. */
cql_host *cql__host_add(cql_session *s, const char *addr, int port);
/* Fills the public description of h (state, pool, breaker, counters). */
void cql__host_info(cql_session *s, const cql_host *h, cql_host_info *out);
/* Rebuilds the load-balancing lists, the token ring and the replica maps from the hosts. */
void cql__hosts_rebuild(cql_session *s);
/* The keyspace named name, or NULL. */
cql_ks *cql__ks_find(cql_session *s, const char *name);
/* The index of keyspace name in s->ks, or -1. */
int cql__ks_index(cql_session *s, const char *name);
/* The replica map of keyspace ks_idx, computed on first use; NULL: unknown or no memory. */
const cql_replica_map *cql__ks_map(cql_session *s, int ks_idx);

/* session.c */
/* Calls the user's on_host_event (if any) with h's description. */
void cql__host_event(cql_session *s, cql_host *h, cql_host_event ev);
/* Ends cql_session_connect: st NULL when a host failed (ends it only if no host can still
 * connect), else its outcome; resumes or fails the parked requests; reports once. */
void cql__connect_done(cql_session *s, const cql_status *st);
/* The loop's cached time (uv_now), in ms. */
static inline int64_t cql__now(const cql_session *s)
{
    return (int64_t)uv_now(s->loop);
}
/* A closing session with no request left: closes the control connection, pools and handles. */
void cql__session_finish_close(cql_session *s);
/* The session's keyspace became ks (a USE): new connections use it, ready ones are sent USE. */
void cql__session_keyspace_changed(cql_session *s, const char *ks);

/* pool.c: a host's connections */
/* Opens connections to h until its pool (per shard on ScyllaDB) is full, a few at a time. */
void cql__pool_fill(cql_host *h);
/* Stops pooling h and closes its connections (why: for logs). */
void cql__pool_close(cql_host *h, const char *why);
/* The connection for a request: shard >= 0 (a tablet's) wins, else the token's shard. */
cql_conn *cql__pool_pick(cql_host *h, bool has_token, int64_t token, int shard);
/* Heartbeats and idle checks of h's connections; call about once a second. */
void cql__pool_tick(cql_host *h, int64_t now_ms);
/* The cluster says h is up (STATUS_CHANGE UP): reconnect now, backoff reset. */
void cql__pool_status_up(cql_host *h);
/* h is down: make the next reconnection attempt on the next loop turn. */
void cql__pool_reconnect_now(cql_host *h);

/* A result handed to callbacks: the decoded RESULT plus what keeps its metadata alive. */
typedef struct cql_result_box {
    cql_result res; /* first member: a cql_result * is a box */
    cql_prepared *prep;
    bool kept;
} cql_result_box;

/* The request a timer node is embedded in at offset off (deadline, wake, spec). */
static inline cql_request *cql__req_of_node(cql_tq_node *n, size_t off)
{
    return (cql_request *)(void *)((char *)n - off);
}

/* Copies src (NULL: "") into dst of cap bytes, truncating; always terminated. */
static inline void cql__copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/* request.c: a request's lifecycle */
/* A cleared request from the session's free list or malloc; NULL when out of memory. */
cql_request *cql__req_alloc(cql_session *s);
/* Frees what r owns and returns it to the free list (at most 1024 kept). */
void cql__req_release(cql_request *r);
/* Fails r now with st: its callback runs before this returns, then r is released. */
void cql__req_fail(cql_request *r, const cql_status *st);
/* Fails r with code and a message from the loop's next turn (never inside the caller's call). */
void cql__req_fail_later(cql_request *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* (Re)encodes r's frame from its parameters and sets its routing token. 0 or an MS_ERR. */
int cql__req_encode(cql_request *r);
/* Ends r: stops its timers, abandons its attempts, runs its callback with box (NULL: r->st's
 * error), then releases r and box's reference. Exactly once per request. */
void cql__req_complete_box(cql_request *r, cql_result_box *box);
/* Fails every request parked on the session (waiting for it to connect) with code, why. */
void cql__req_close_all(cql_session *s, int code, const char *why);
/* Fails every request not completed yet: the parked ones, then those with attempts. */
void cql__session_close_requests(cql_session *s, int code, const char *why);
/* A waiter of prepared.c whose statement p became ready (or failed): starts or fails it. */
void cql__req_prepared_ready(cql_request *r, cql_prepared *p);
/* Starts the internal PREPARE of cache entry p. 0, or an MS_ERR (nothing started). */
int cql__req_prepare_entry(cql_session *s, cql_prepared *p);
/* Looks up a batch's statements to prepare; parks r on the first not ready, else starts it. */
void cql__batch_resolve(cql_request *r);

/* exec.c: running a request */
/* Plans r's hosts and sends its first attempt (parks it while the session connects). */
void cql__req_start(cql_request *r);
/* Timer callback of r->deadline: fails r with MS_ERR_TIMEOUT, counting the hosts it waited on. */
void cql__req_deadline_fn(cql_tq_node *n);
/* Plans and starts every request parked on the session (it connected). */
void cql__req_resume_waiting(cql_session *s);
/* Marks attempt a of r finished (no longer counted in flight on its host). */
void cql__req_detach_attempt(cql_request *r, cql_attempt *a);

/* prepared.c */
/* Sets up the session's statement cache (prepared_cache_size entries). 0 or MS_ERR_NOMEM. */
int cql__prepared_cache_init(cql_session *s);
/* A new statement (one reference, PREPARING) for q in keyspace ks; NULL when out of memory. */
cql_prepared *cql__prepared_new(cql_session *s, const char *ks, const char *q, size_t qlen);
/* Takes id, metadata and routing keyspace/table from a PREPARED result; 0 or an MS_ERR. */
int cql__prepared_set(cql_prepared *p, const cql_result *res, const char *session_ks);
/* *out: a reference to q's ready statement; or NULL with waiter parked until it is prepared
 * (or failed, or failing later when out of memory). */
void cql__prepared_lookup(cql_session *s, const char *q, size_t qlen, cql_request *waiter,
                          cql_prepared **out);
/* p was prepared: marks it READY and lets its waiters continue. */
void cql__prepared_ready(cql_prepared *p);
/* p could not be prepared: drops it from the cache and fails its waiters with st. */
void cql__prepared_failed(cql_prepared *p, const cql_status *st);
/* Prepares ready p on h (on c, or a pool connection when c is NULL) in the background. */
void cql__prepare_on_host(cql_session *s, cql_prepared *p, cql_host *h, cql_conn *c);
/* Prepares every ready cached statement on h through c (h came back up). */
void cql__reprepare_all_on(cql_session *s, cql_host *h, cql_conn *c);
/* A table of ks changed: its statements stop skipping result metadata; tablets forgotten. */
void cql__prepared_schema_changed(cql_session *s, cql_str ks, cql_str table);
/* The session is going: cached statements forget it (users may still hold references). */
void cql__prepared_detach(cql_session *s);

/* cluster.c: the control connection */
/* Resolves the contact points and starts the control connection. 0 or MS_ERR_NOMEM. */
int cql__cluster_start(cql_session *s);
/* Closes the control connection; requests waiting for schema agreement complete. */
void cql__cluster_close(cql_session *s);
/* Heartbeat and idle check of the control connection; call about once a second. */
void cql__cluster_tick(cql_session *s, int64_t now_ms);
/* r's DDL answered with box: completes r once every host has the same schema (or the
 * agreement wait ends), through the cluster listener. */
void cql__cluster_schema_wait_box(cql_session *s, cql_request *r, void *box);
/* True once the first metadata round (hosts, tokens, keyspaces) has finished. */
bool cql__cluster_ready(const cql_session *s);
/* The control connection is lost: make the next attempt on the next loop turn. */
void cql__cluster_reconnect_now(cql_session *s);

#endif
