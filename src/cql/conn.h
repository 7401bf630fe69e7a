/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conn.h - one CQL connection on a libuv loop.
 *
 * Connects (with a timeout), optionally wraps the socket in TLS, runs the
 * handshake (OPTIONS -> SUPPORTED, STARTUP with LZ4 when offered and wanted,
 * SASL PLAIN when the server asks, USE keyspace, REGISTER for events), then
 * multiplexes requests over 32768 stream ids with a free list. Frames queued
 * during one loop iteration are written together (one syscall) in the loop's
 * prepare phase. Owned and used by one loop thread: no locks.
 *
 * Lifecycle: cql__conn_new starts connecting; the owner hears on_ready once,
 * then on_close exactly once (also when connecting fails). After on_close the
 * owner must forget the connection; its memory goes when libuv released the
 * handles. Pending requests are failed before on_close.
 */
#ifndef MS_CQL_CONN_H
#define MS_CQL_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "cql/proto.h"
#include "cql/tls.h"

#define CQL_MAX_STREAMS 32768

typedef struct cql_conn cql_conn;

/* A received response, lent to a pending request's callback. */
typedef struct cql_frame {
    cql_frame_header h;
    const uint8_t *body; /* decompressed */
    size_t len;
} cql_frame;

typedef struct cql_pending cql_pending;

/*
 * Called once per request: with status 0 and a frame, or with a negative
 * status and frame NULL when the connection failed (sent tells whether the
 * request may have reached the server) or the request was never queued.
 */
typedef void (*cql_pending_fn)(cql_pending *p, cql_conn *c, int status, const cql_frame *f);

/* Embed in the request; the connection only links it. */
struct cql_pending {
    cql_pending_fn fn;
    uint64_t gen; /* flush generation that carries it */
    int16_t stream;
    bool sent; /* set when the connection fails: the frame may have left */
};

typedef struct cql_conn_cbs {
    void (*on_ready)(cql_conn *c);
    /* status 0 for a close the owner asked for; why is for logs */
    void (*on_close)(cql_conn *c, int status, const char *why);
    void (*on_event)(cql_conn *c, const cql_event *ev); /* control connections */
} cql_conn_cbs;

typedef struct cql_conn_cfg {
    uv_loop_t *loop;
    SSL_CTX *ssl_ctx; /* NULL: plain TCP */
    bool verify_hostname;
    const char *username; /* NULL: no authentication offered */
    const char *password;
    const char *keyspace; /* NULL/"": no USE */
    bool compression;     /* ask for LZ4 when offered */
    bool register_events; /* REGISTER TOPOLOGY/STATUS/SCHEMA changes */
    int64_t connect_timeout_ms;
    size_t max_frame; /* refuse larger frames (0: protocol limit) */
} cql_conn_cfg;

/* What the server said in SUPPORTED. */
typedef struct cql_conn_info {
    bool lz4;    /* negotiated */
    bool scylla; /* sharding info present and usable */
    uint32_t shard, nr_shards, ignore_msb;
    uint16_t shard_aware_port, shard_aware_port_ssl;
    cql_scylla_ext ext; /* offered extensions; rate_limit and tablets_routing are asked for */
    char authenticator[96];
} cql_conn_info;

struct cql_conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_timer_t timer;  /* connect timeout */
    uv_prepare_t prep; /* write coalescing */
    uv_write_t wreq;
    uv_loop_t *loop;
    const cql_conn_cfg *cfg;
    const cql_conn_cbs *cbs;
    void *owner;    /* the owner's object */
    int owner_slot; /* free for the owner */
    char label[80]; /* "127.0.0.1:9042" for messages */
    char host[64];  /* the address connected to (TLS verification) */
    int state;
    int open_handles;
    bool writing;
    bool closed_cb_done;
    /* output */
    cql_buf out;  /* frames waiting for the next flush */
    cql_buf tout; /* TLS ciphertext waiting */
    cql_buf wbuf; /* bytes being written by uv_write */
    cql_buf scratch;
    uint64_t wgen; /* flushes started */
    /* input */
    uint8_t *rbuf;
    size_t rlen, rcap;
    cql_buf dbuf; /* decompressed body */
    cql_buf tin;  /* TLS plaintext */
    /* streams */
    cql_pending **slots; /* NULL free, &orphan abandoned, else pending */
    int16_t *free_ids;
    int nfree;
    int nslots;
    int in_flight; /* streams in use, orphans included */
    int orphans;
    /* TLS */
    bool use_tls;
    cql_tls tls;
    /* handshake and housekeeping */
    cql_pending hs; /* handshake step */
    cql_pending hb; /* heartbeat */
    bool hb_busy;
    int64_t hb_sent_ms;
    int64_t last_read_ms, last_write_ms;
    cql_conn_info info;
    int close_status;
    char close_why[200];
};

/*
 * Starts connecting to addr (host: its text form for TLS and messages),
 * from source port local_port when not 0 (ScyllaDB shard-aware port).
 * cfg must outlive the connection. Returns 0 (on_ready or on_close follow)
 * or MS_ERR_NOMEM / MS_ERR_IO (nothing follows, *out NULL).
 */
int cql__conn_new(const cql_conn_cfg *cfg, const cql_conn_cbs *cbs, void *owner,
                  const struct sockaddr *addr, const char *host, uint16_t local_port,
                  cql_conn **out);

/*
 * Queues a request frame (a complete frame; its stream id is overwritten).
 * Returns 0 (p->fn will be called exactly once), MS_ERR_UNAVAILABLE when
 * no stream id is free, MS_ERR_IO when the connection is not ready, or
 * MS_ERR_NOMEM (p->fn is not called on errors).
 */
int cql__conn_send(cql_conn *c, cql_pending *p, const uint8_t *frame, size_t len);

/*
 * Like cql__conn_send for a frame that is also allowed before the handshake
 * ends (used by the connection itself and for re-preparing).
 */
int cql__conn_send_any(cql_conn *c, cql_pending *p, const uint8_t *frame, size_t len);

/*
 * The request no longer wants its answer (timeout, another execution won):
 * its stream stays reserved until the answer comes, then is freed. p->fn
 * is not called. Too many such streams make the connection defunct.
 */
void cql__conn_abandon(cql_conn *c, cql_pending *p);

/*
 * Closes: pending requests fail with status (MS_ERR_IO if 0), on_close runs
 * (synchronously, once), then the handles close and the memory is freed.
 */
void cql__conn_close(cql_conn *c, int status, const char *why);

/* Heartbeat and idle checks; call about once a second. */
void cql__conn_tick(cql_conn *c, int64_t now_ms, int64_t heartbeat_ms, int64_t idle_timeout_ms);

/* True when c finished its handshake and is not closing: it takes requests. */
bool cql__conn_ready(const cql_conn *c);

/* True when code is the rate-limit error code this connection's server negotiated. */
bool cql__conn_rate_limit_code(const cql_conn *c, int32_t code);

/* Sends a simple query whose answer nobody waits for (USE after a keyspace change). */
void cql__conn_send_simple(cql_conn *c, const char *query);

/*
 * Takes the body of a frame lent to a callback as a malloc'd block (the
 * decompression buffer is handed over when it holds the body, else a copy).
 * Returns NULL when out of memory.
 */
uint8_t *cql__conn_take_body(cql_conn *c, const cql_frame *f);

#endif
