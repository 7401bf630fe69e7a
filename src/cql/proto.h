/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proto.h - CQL native protocol v4 frame codec (internal to src/cql).
 *
 * Pure functions, no I/O: request frames are appended to a caller-owned
 * cql_buf; response frames are cut out of a byte stream incrementally and
 * their bodies decoded into views (no copy). Also: LZ4 body compression as
 * Cassandra v4 does it, the Murmur3 partitioner token, and ScyllaDB shard
 * math. Every read of received bytes is bounds-checked: hostile input yields
 * MS_ERR_INVALID (or MS_ERR_TOO_LARGE), never an out-of-bounds read.
 *
 * Returns: 0 or a negative ms_err (src/core/error.h) unless stated.
 * Spec: apache/cassandra doc/native_protocol_v4.spec (section numbers below).
 */
#ifndef MS_CQL_PROTO_H
#define MS_CQL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msgstore/cql_value.h"

/* ------------------------------------------------------------------------- */
/* Frame header (section 2)                                                   */

#define CQL_PROTO_VERSION  0x04
#define CQL_PROTO_RESPONSE 0x80
#define CQL_HEADER_LEN     9
#define CQL_MAX_FRAME_BODY (256u * 1024u * 1024u) /* spec limit */
#define CQL_LZ4_MAX_BODY   (256u * 1024u * 1024u) /* sanity cap on declared uncompressed length */

enum cql_frame_flag {
    CQL_FLAG_COMPRESSION = 0x01,
    CQL_FLAG_TRACING = 0x02,
    CQL_FLAG_CUSTOM_PAYLOAD = 0x04,
    CQL_FLAG_WARNING = 0x08,
};

enum cql_opcode {
    CQL_OP_ERROR = 0x00,
    CQL_OP_STARTUP = 0x01,
    CQL_OP_READY = 0x02,
    CQL_OP_AUTHENTICATE = 0x03,
    CQL_OP_OPTIONS = 0x05,
    CQL_OP_SUPPORTED = 0x06,
    CQL_OP_QUERY = 0x07,
    CQL_OP_RESULT = 0x08,
    CQL_OP_PREPARE = 0x09,
    CQL_OP_EXECUTE = 0x0A,
    CQL_OP_REGISTER = 0x0B,
    CQL_OP_EVENT = 0x0C,
    CQL_OP_BATCH = 0x0D,
    CQL_OP_AUTH_CHALLENGE = 0x0E,
    CQL_OP_AUTH_RESPONSE = 0x0F,
    CQL_OP_AUTH_SUCCESS = 0x10,
};

/** Name of an opcode ("RESULT"), "UNKNOWN" otherwise. */
const char *cql__opcode_name(int op);

typedef struct cql_frame_header {
    uint8_t version; /* 0x04 request, 0x84 response */
    uint8_t flags;
    int16_t stream;
    uint8_t opcode;
    uint32_t length; /* body length */
} cql_frame_header;

/** Write the 9 header bytes to out. Cannot fail. */
void cql__header_encode(const cql_frame_header *h, uint8_t out[CQL_HEADER_LEN]);

/**
 * Decode the 9 header bytes at p (n >= 9 required, else MS_ERR_INVALID).
 * Checks: version byte is 0x04 or 0x84 (MS_ERR_INVALID otherwise; a v3/v5
 * answer to our v4 STARTUP shows up here), length <= max_body
 * (MS_ERR_TOO_LARGE; max_body 0 means CQL_MAX_FRAME_BODY).
 */
int cql__header_decode(const uint8_t *p, size_t n, uint32_t max_body, cql_frame_header *h);

/**
 * Incremental framing: look at the bytes received so far (buf, len) and tell
 * whether a complete frame is at the front.
 *  - returns 0 and *frame_len = 9 + body length when complete (h filled);
 *  - returns 0 and *frame_len = 0 when more bytes are needed; *need then says
 *    how many bytes in total the buffer must hold to progress (>= 9; once the
 *    header is known, the whole frame length, so the caller can size its
 *    buffer);
 *  - returns a negative code for a bad header (the connection must be dropped).
 * need may be NULL.
 */
int cql__frame_parse(const uint8_t *buf, size_t len, uint32_t max_body, cql_frame_header *h,
                     size_t *frame_len, size_t *need);

/* ------------------------------------------------------------------------- */
/* Requests (section 4.1): each appends one complete frame to b              */

/**
 * Start a request frame: append a header with length 0 and return the offset
 * of the frame in b (pass it to cql__frame_finish). Use this to write a body
 * by hand; the cql__enc_* functions below do it for you.
 */
size_t cql__frame_start(cql_buf *b, uint8_t flags, int16_t stream, uint8_t opcode);
/**
 * Patch the body length of the frame started at `start`. Returns b->err if
 * any append failed, MS_ERR_TOO_LARGE if the body exceeds CQL_MAX_FRAME_BODY,
 * else 0. On error the frame is removed from b (b->len = start).
 */
int cql__frame_finish(cql_buf *b, size_t start);
/**
 * Compress the body of the complete frame that starts at `start` (the last
 * frame in b) with LZ4 and set the compression flag. Leaves the frame
 * uncompressed (and returns 0) for an empty body. scratch is a reusable buffer
 * owned by the caller. Call only after COMPRESSION=lz4 was negotiated, and
 * never for STARTUP/OPTIONS.
 * Cost: ~0.2 us for a 200-byte EXECUTE (bench_cql_wire), and small bodies
 * barely shrink. Cassandra accepts uncompressed request frames on an LZ4
 * connection (the flag is per frame; tested live), so a caller may compress
 * only bodies above a threshold (e.g. 512 bytes).
 */
int cql__frame_compress(cql_buf *b, size_t start, cql_buf *scratch);

/* Primitive appenders (section 3), exposed for hand-written bodies and tests. */
void cql__put_byte(cql_buf *b, uint8_t x);                   /* [byte] */
void cql__put_short(cql_buf *b, uint16_t x);                 /* [short], big-endian */
void cql__put_int(cql_buf *b, int32_t x);                    /* [int], big-endian */
void cql__put_long(cql_buf *b, int64_t x);                   /* [long], big-endian */
void cql__put_string(cql_buf *b, const char *s, size_t len); /* [string]; len > 65535 sets err */
void cql__put_long_string(cql_buf *b, const char *s, size_t len); /* [long string] */
void cql__put_bytes(cql_buf *b, const void *p, int32_t len);      /* [bytes]; len < 0: null */
void cql__put_short_bytes(cql_buf *b, const void *p, size_t len); /* [short bytes] */
void cql__put_string_map(cql_buf *b, const char *const *kv, size_t npairs);

/** STARTUP: a [string map] of kv[0]=kv[1], kv[2]=kv[3] ... (CQL_VERSION is mandatory: caller passes
 * it). */
int cql__enc_startup(cql_buf *b, int16_t stream, const char *const *kv, size_t npairs);
/** OPTIONS (empty body). */
int cql__enc_options(cql_buf *b, int16_t stream);
/** AUTH_RESPONSE with an arbitrary token ([bytes]; len -1 = null). */
int cql__enc_auth_response(cql_buf *b, int16_t stream, const void *token, int32_t len);
/** AUTH_RESPONSE with the SASL PLAIN token "\0user\0password" (PasswordAuthenticator). */
int cql__enc_auth_plain(cql_buf *b, int16_t stream, const char *user, const char *password);
/** REGISTER for event types ("TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"). */
int cql__enc_register(cql_buf *b, int16_t stream, const char *const *events, size_t n);
/** PREPARE a statement. */
int cql__enc_prepare(cql_buf *b, int16_t stream, uint8_t flags, const char *query, size_t len);

/* Query parameter flags (4.1.4). */
#define CQL_QFLAG_VALUES             0x01
#define CQL_QFLAG_SKIP_METADATA      0x02
#define CQL_QFLAG_PAGE_SIZE          0x04
#define CQL_QFLAG_PAGING_STATE       0x08
#define CQL_QFLAG_SERIAL_CONSISTENCY 0x10
#define CQL_QFLAG_DEFAULT_TIMESTAMP  0x20
#define CQL_QFLAG_NAMES_FOR_VALUES   0x40

/** No default timestamp: use this in cql_query_params.timestamp. */
#define CQL_NO_TIMESTAMP INT64_MIN

/**
 * <query_parameters> of QUERY and EXECUTE. Zero-initialise, then set what you
 * need; set timestamp = CQL_NO_TIMESTAMP unless you send one (0 is a valid
 * timestamp, so cql_query_params_init does that for you).
 */
typedef struct cql_query_params {
    cql_consistency consistency;
    const cql_values *values;    /* NULL or count 0: no values flag */
    bool skip_metadata;          /* EXECUTE with cached result metadata */
    int32_t page_size;           /* > 0: page size flag */
    cql_bytes paging_state;      /* ptr != NULL and len >= 0: paging state flag */
    uint16_t serial_consistency; /* SERIAL/LOCAL_SERIAL, 0 = not sent */
    int64_t timestamp;           /* µs since epoch; CQL_NO_TIMESTAMP = not sent */
} cql_query_params;

/** Defaults: consistency ONE, nothing else, timestamp CQL_NO_TIMESTAMP. */
void cql__query_params_init(cql_query_params *p);

/** QUERY (4.1.4). flags: frame flags (tracing). values must have err 0. */
int cql__enc_query(cql_buf *b, int16_t stream, uint8_t flags, const char *query, size_t len,
                   const cql_query_params *p);
/** EXECUTE (4.1.6) a prepared id. */
int cql__enc_execute(cql_buf *b, int16_t stream, uint8_t flags, const uint8_t *id, size_t id_len,
                     const cql_query_params *p);

enum cql_batch_type {
    CQL_BATCH_LOGGED = 0,
    CQL_BATCH_UNLOGGED = 1,
    CQL_BATCH_COUNTER = 2,
};

/** One statement of a batch: a query string (id == NULL) or a prepared id. */
typedef struct cql_batch_entry {
    const char *query; /* kind 0 when id == NULL */
    size_t query_len;
    const uint8_t *id; /* kind 1 */
    size_t id_len;
    const cql_values *values; /* may be NULL */
} cql_batch_entry;

typedef struct cql_batch {
    uint8_t type; /* cql_batch_type */
    const cql_batch_entry *entries;
    uint16_t count;
    cql_consistency consistency;
    uint16_t serial_consistency; /* 0 = not sent */
    int64_t timestamp;           /* CQL_NO_TIMESTAMP = not sent */
} cql_batch;

/** BATCH (4.1.7). At least one entry; at most 65535. */
int cql__enc_batch(cql_buf *b, int16_t stream, uint8_t flags, const cql_batch *batch);

/* ------------------------------------------------------------------------- */
/* Responses (section 4.2)                                                   */

/**
 * A received response frame, body prefixes decoded. `body` is the message
 * body proper (after the tracing id, warnings and custom payload, in the
 * order Cassandra writes them). Views borrow the bytes given to
 * cql__response_open.
 */
typedef struct cql_response {
    cql_frame_header h;
    bool has_tracing;
    uint8_t tracing_id[16];
    uint16_t warning_count;
    const uint8_t *_warnings; /* raw [string]s; read with cql__response_warning */
    uint16_t payload_count;   /* custom payload [bytes map] entries */
    const uint8_t *_payload;  /* raw; read with cql__response_payload */
    const uint8_t *body;
    size_t body_len;
} cql_response;

/**
 * Split a response into prefixes and message body. h is the decoded header;
 * (body, len) is the (already decompressed) body. Does not look at the
 * compression flag (decompress first with cql__lz4_decompress).
 */
int cql__response_open(const cql_frame_header *h, const uint8_t *body, size_t len,
                       cql_response *out);
/** Warning i (< warning_count). */
int cql__response_warning(const cql_response *r, uint16_t i, cql_str *out);
/** Custom payload entry i (< payload_count). */
int cql__response_payload(const cql_response *r, uint16_t i, cql_str *key, cql_bytes *value);

/** ERROR body (4.2.1, 9). Views borrow body. */
int cql__error_decode(const uint8_t *body, size_t len, cql_error *out);
/** AUTHENTICATE body: the authenticator class name. */
int cql__authenticate_decode(const uint8_t *body, size_t len, cql_str *authenticator);
/** AUTH_CHALLENGE / AUTH_SUCCESS body: a [bytes] token (len -1 = null). */
int cql__auth_token_decode(const uint8_t *body, size_t len, cql_bytes *token);
/** EVENT body (4.2.6). */
int cql__event_decode(const uint8_t *body, size_t len, cql_event *out);

/**
 * RESULT body (4.2.5) into r (which is overwritten; call cql_result_free
 * later even on error). The result borrows body; if `owned` is not NULL it is
 * free()d by cql_result_free (pass the malloc'd buffer that holds body to
 * hand it over; it is freed even when decoding fails).
 * cached: for a Rows result with NO_METADATA (EXECUTE with skip_metadata),
 * the result metadata of the prepared statement; it must outlive r. Without
 * it such rows can be counted but not read.
 */
int cql__result_decode(cql_result *r, const uint8_t *body, size_t len, void *owned,
                       const cql_metadata *cached);

/**
 * Deep-copy metadata (columns, names, types, pk indexes; not the paging
 * state) into one malloc'd block: *out is freed with free(). For prepared
 * caches that outlive the PREPARED result.
 */
int cql__metadata_clone(const cql_metadata *m, cql_metadata **out);

/* [string multimap] (SUPPORTED body, 4.2.4) */
typedef struct cql_multimap {
    const uint8_t *p;
    const uint8_t *end;
    uint16_t count;
} cql_multimap;

/** Validate a SUPPORTED body completely and return a view of it. */
int cql__supported_decode(const uint8_t *body, size_t len, cql_multimap *out);
/**
 * Find key: 0 and the number of values plus the first value (empty if none),
 * or MS_ERR_NOT_FOUND.
 */
int cql__multimap_get(const cql_multimap *m, const char *key, cql_str *first, uint16_t *nvalues);
/** Value j of key (for lists such as COMPRESSION=[lz4,snappy]). */
int cql__multimap_value(const cql_multimap *m, const char *key, uint16_t j, cql_str *out);
/** True when key has value val (exact match). */
bool cql__multimap_has(const cql_multimap *m, const char *key, const char *val);

/**
 * Check bound values against a prepared statement's bind metadata before
 * sending: the count must match and each non-null value must have a length
 * its CQL type allows (4 for int, 8 for bigint, 16 for uuid, 4 or 16 for
 * inet, ...; collections must parse). Catches binding mistakes locally with
 * MS_ERR_INVALID instead of a server round trip; *bad_index (may be NULL)
 * receives the offending position (or -1 for a count mismatch). Empty values
 * are accepted for every type, as Cassandra does (section 6).
 */
int cql__values_check(const cql_values *values, const cql_metadata *bind, int *bad_index);

/* ------------------------------------------------------------------------- */
/* LZ4 body compression (section 5)                                          */

/**
 * Append "4-byte big-endian uncompressed length + raw LZ4 block" of in to out.
 */
int cql__lz4_compress(cql_buf *out, const uint8_t *in, size_t n);
/**
 * Decompress such a body, appending to out. The declared length must be
 * <= max_len (0 = CQL_LZ4_MAX_BODY) and match exactly what decompresses.
 * MS_ERR_INVALID for malformed data, MS_ERR_TOO_LARGE over the cap.
 */
int cql__lz4_decompress(cql_buf *out, const uint8_t *in, size_t n, size_t max_len);

/* ------------------------------------------------------------------------- */
/* Murmur3 partitioner token                                                 */

/**
 * Cassandra's Murmur3Partitioner token of a serialized partition key: x64
 * 128-bit MurmurHash3, seed 0, with Cassandra's sign-extended tail bytes;
 * h1 as int64, INT64_MIN mapped to INT64_MAX. (Cassandra gives the empty key
 * the minimum token; callers route it anywhere.)
 */
int64_t cql__murmur3_token(const void *key, size_t len);

/**
 * Routing key of a partition key: one component is its bytes as is; several
 * are "u16 length | bytes | 0x00" each, in partition key order. Appends to
 * out. A null component or one of 65536+ bytes (with n > 1) gives
 * MS_ERR_INVALID (such keys cannot be routed).
 */
int cql__routing_key(cql_buf *out, const cql_bytes *components, size_t n);

/**
 * Convenience: token of the partition key made of the bound values of a
 * prepared statement. values holds the serialized bound values (as built by
 * cql_values), pk_indexes/pk_count come from the PREPARED bind metadata.
 * scratch is reused for the composite key. MS_ERR_INVALID when the key cannot
 * be computed (null component, not enough values).
 */
int cql__token_of_values(const cql_values *values, const uint16_t *pk_indexes, uint32_t pk_count,
                         cql_buf *scratch, int64_t *token);

/* ------------------------------------------------------------------------- */
/* ScyllaDB shard awareness                                                  */

/** What a Scylla node says about its sharding in SUPPORTED. */
typedef struct cql_scylla_info {
    bool present;              /* SCYLLA_SHARD and SCYLLA_NR_SHARDS were given */
    uint32_t shard;            /* the shard serving this connection */
    uint32_t nr_shards;        /* >= 1 */
    uint32_t ignore_msb;       /* SCYLLA_SHARDING_IGNORE_MSB */
    cql_str partitioner;       /* e.g. org.apache.cassandra.dht.Murmur3Partitioner */
    cql_str algorithm;         /* e.g. biased-token-round-robin */
    uint16_t shard_aware_port; /* 0 when not advertised */
    uint16_t shard_aware_port_ssl;
} cql_scylla_info;

/**
 * Parse Scylla sharding keys from a SUPPORTED multimap. Not a Scylla node:
 * 0 with present = false. Present but inconsistent (nr_shards 0, shard >=
 * nr_shards, unparsable numbers, ignore_msb > 63): MS_ERR_INVALID.
 * Views borrow the SUPPORTED body.
 */
int cql__scylla_parse(const cql_multimap *m, cql_scylla_info *out);

/** ScyllaDB protocol extensions a node offers in SUPPORTED (docs/dev/protocol-extensions.md). */
typedef struct cql_scylla_ext {
    bool scylla;     /* any SCYLLA_* key: the server is ScyllaDB, sharding usable or not */
    bool rate_limit; /* SCYLLA_RATE_LIMIT_ERROR with ERROR_CODE=<n> */
    int32_t rate_limit_code;
    bool tablets_routing; /* TABLETS_ROUTING_V1 */
} cql_scylla_ext;

/**
 * Reads the extensions from a SUPPORTED multimap; never fails (an unreadable
 * ERROR_CODE leaves rate_limit false: the error then stays a plain server error).
 */
void cql__scylla_ext_parse(const cql_multimap *m, cql_scylla_ext *out);

/**
 * True when the node's sharding can be computed by cql__scylla_shard_of:
 * Murmur3 partitioner and biased-token-round-robin.
 */
bool cql__scylla_sharding_supported(const cql_scylla_info *s);

/**
 * Shard owning a token: bias the token by 2^63, shift left by ignore_msb
 * (high bits drop), multiply by nr_shards as a 64x64->128 product and keep
 * the high 64 bits (ScyllaDB docs/dev/protocol-extensions.md).
 */
uint32_t cql__scylla_shard_of(int64_t token, uint32_t nr_shards, uint32_t ignore_msb);

/**
 * Source port for a connection to the shard-aware port that lands on shard:
 * the first port p >= start in [lo, hi] with p % nr_shards == shard, wrapping
 * around to lo once. 0 when none exists (empty range or nr_shards 0). To try
 * the next candidate after a bind failure, call again with start = p + 1.
 */
uint16_t cql__scylla_source_port(uint32_t shard, uint32_t nr_shards, uint16_t lo, uint16_t hi,
                                 uint16_t start);

#endif
