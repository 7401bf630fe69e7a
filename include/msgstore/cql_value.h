/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cql_value.h - CQL values and results: the pure (no I/O) half of msgstore's
 * CQL native protocol v4 client that callers see.
 *
 *  - cql_buf:     a growable byte buffer owned by the caller (encoders append).
 *  - cql_values:  a builder for bound values (QUERY/EXECUTE/BATCH); typed
 *                 appends, nested collections/tuples/UDTs, null and unset.
 *  - cql_type:    type descriptors (parsed from result metadata, recursive).
 *  - cql_result:  a decoded RESULT (Void, Rows, Set_keyspace, Prepared,
 *                 Schema_change) with a lazy row reader and typed getters.
 *  - cql_error:   a decoded ERROR body with every code's extra fields.
 *  - cql_event:   a decoded EVENT body.
 *  - cql_value:   a generic tagged tree for any value (collections, tuples, UDTs).
 *
 * Error convention: every function returning int returns 0 or a negative
 * ms_err code (msgstore/error.h):
 *   MS_ERR_INVALID        malformed bytes / bad argument
 *   MS_ERR_NOT_FOUND      the value is null (getters), or no such column/key
 *   MS_ERR_UNPROCESSABLE  the column/value has another CQL type than asked for
 *   MS_ERR_TOO_LARGE      a length over a limit, or a number does not fit
 *   MS_ERR_NOMEM          allocation failed
 *
 * Borrowing: cql_str / cql_bytes are (pointer, length) views. Views returned
 * by decoders point into the buffer that was decoded and stay valid as long as
 * that buffer (for a cql_result: until cql_result_free). Strings are NOT
 * NUL-terminated.
 *
 * Thread-safety: none of these objects are shared; each belongs to one thread
 * at a time. Static type descriptors (cql_type_of) are immutable and shared.
 */
#ifndef MSGSTORE_CQL_VALUE_H
#define MSGSTORE_CQL_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msgstore/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------- */
/* Views and buffers                                                          */

/** A borrowed string view (not NUL-terminated). */
typedef struct cql_str {
    const char *ptr;
    size_t len;
} cql_str;

/** A borrowed byte view. len < 0 means null (-1) or, in bound values, unset (-2). */
typedef struct cql_bytes {
    const uint8_t *ptr;
    int32_t len;
} cql_bytes;

/** True when s equals the NUL-terminated string z. */
bool cql_str_eq(cql_str s, const char *z);

/**
 * A growable byte buffer. Zero-initialise or call cql_buf_init. Appends never
 * fail loudly: on allocation failure (or growth past max) the buffer records
 * `err` (sticky, a negative ms_err) and ignores further appends, so encoders can
 * append freely and check once at the end. The caller owns `data`
 * (cql_buf_free releases it).
 */
typedef struct cql_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    int err;
} cql_buf;

/** Initialise an empty buffer (no allocation). Cannot fail. */
void cql_buf_init(cql_buf *b);
/** Release memory and reset to empty. Safe on a zeroed or freed buffer. */
void cql_buf_free(cql_buf *b);
/** Forget the contents and the sticky error, keep the memory for reuse. */
void cql_buf_reset(cql_buf *b);
/** Make room for `extra` more bytes. 0, or MS_ERR_NOMEM (also recorded in err). */
int cql_buf_reserve(cql_buf *b, size_t extra);
/** Append n bytes (n may be 0). Records err on failure. */
void cql_buf_append(cql_buf *b, const void *p, size_t n);

/* ------------------------------------------------------------------------- */
/* Consistency                                                                */

typedef enum cql_consistency {
    CQL_CONSISTENCY_ANY = 0x0000,
    CQL_CONSISTENCY_ONE = 0x0001,
    CQL_CONSISTENCY_TWO = 0x0002,
    CQL_CONSISTENCY_THREE = 0x0003,
    CQL_CONSISTENCY_QUORUM = 0x0004,
    CQL_CONSISTENCY_ALL = 0x0005,
    CQL_CONSISTENCY_LOCAL_QUORUM = 0x0006,
    CQL_CONSISTENCY_EACH_QUORUM = 0x0007,
    CQL_CONSISTENCY_SERIAL = 0x0008,
    CQL_CONSISTENCY_LOCAL_SERIAL = 0x0009,
    CQL_CONSISTENCY_LOCAL_ONE = 0x000A,
} cql_consistency;

/** "LOCAL_QUORUM" etc.; "UNKNOWN" for other values. Static string. */
const char *cql_consistency_name(int cl);
/** Parse a name (case-insensitive, "LOCAL_QUORUM"). 0 or MS_ERR_INVALID. */
int cql_consistency_parse(const char *name, cql_consistency *out);

/* ------------------------------------------------------------------------- */
/* Types                                                                      */

/** [option] ids of section 4.2.5.2 (values are the wire ids). */
typedef enum cql_type_id {
    CQL_TYPE_CUSTOM = 0x0000,
    CQL_TYPE_ASCII = 0x0001,
    CQL_TYPE_BIGINT = 0x0002,
    CQL_TYPE_BLOB = 0x0003,
    CQL_TYPE_BOOLEAN = 0x0004,
    CQL_TYPE_COUNTER = 0x0005,
    CQL_TYPE_DECIMAL = 0x0006,
    CQL_TYPE_DOUBLE = 0x0007,
    CQL_TYPE_FLOAT = 0x0008,
    CQL_TYPE_INT = 0x0009,
    CQL_TYPE_TIMESTAMP = 0x000B,
    CQL_TYPE_UUID = 0x000C,
    CQL_TYPE_VARCHAR = 0x000D, /* text */
    CQL_TYPE_VARINT = 0x000E,
    CQL_TYPE_TIMEUUID = 0x000F,
    CQL_TYPE_INET = 0x0010,
    CQL_TYPE_DATE = 0x0011,
    CQL_TYPE_TIME = 0x0012,
    CQL_TYPE_SMALLINT = 0x0013,
    CQL_TYPE_TINYINT = 0x0014,
    CQL_TYPE_DURATION = 0x0015, /* v5 type; decoded as raw bytes only */
    CQL_TYPE_LIST = 0x0020,
    CQL_TYPE_MAP = 0x0021,
    CQL_TYPE_SET = 0x0022,
    CQL_TYPE_UDT = 0x0030,
    CQL_TYPE_TUPLE = 0x0031,
} cql_type_id;

/**
 * A type descriptor. Primitive descriptors are static (cql_type_of); composite
 * ones live in the arena of the result they were parsed from.
 *   list/set: n = 1, sub[0] = element type
 *   map:      n = 2, sub[0] = key, sub[1] = value
 *   tuple:    n = field count, sub[i]
 *   udt:      n = field count, sub[i], field_names[i], keyspace, name
 *   custom:   name = Java class name
 */
typedef struct cql_type {
    cql_type_id id;
    uint16_t n;
    const struct cql_type *const *sub;
    const cql_str *field_names; /* UDT only, else NULL */
    cql_str keyspace;           /* UDT only */
    cql_str name;               /* UDT name or custom class */
} cql_type;

/** Static descriptor of a primitive type id; NULL for composite/unknown ids. */
const cql_type *cql_type_of(cql_type_id id);
/** CQL name of a type id ("bigint", "list", ...); "unknown" otherwise. */
const char *cql_type_name(cql_type_id id);
/**
 * Write the CQL form of a type ("map<text, frozen<list<int>>>" without frozen)
 * into out (always NUL-terminated when cap > 0). Returns the length it needed,
 * like snprintf, or a negative code for a NULL type.
 */
int cql_type_format(const cql_type *t, char *out, size_t cap);

/* ------------------------------------------------------------------------- */
/* Arena: bump allocator for decoded metadata and value trees                 */

typedef struct cql_arena_chunk cql_arena_chunk;

/**
 * A bump allocator with an inline first block. Zero-initialise or call
 * cql_arena_init; cql_arena_free releases everything allocated from it.
 */
typedef struct cql_arena {
    cql_arena_chunk *chunks;
    size_t used; /* in inline_block */
    _Alignas(16) uint8_t inline_block[1024];
} cql_arena;

void cql_arena_init(cql_arena *a);
void cql_arena_free(cql_arena *a);
/** 16-byte aligned memory valid until cql_arena_free; NULL when out of memory. */
void *cql_arena_alloc(cql_arena *a, size_t n);

/* ------------------------------------------------------------------------- */
/* Bound values builder                                                       */

#define CQL_VALUES_MAX_DEPTH 8

/**
 * Serialized bound values: `buf` holds n consecutive [value]s exactly as
 * QUERY/EXECUTE/BATCH carry them (without the leading [short] count), and
 * `count` says how many. Appends never fail individually: the first failure is
 * recorded in `err` and reported by cql_values_error (and by the encoders,
 * which refuse a values list with err != 0). Reuse with cql_values_reset to
 * avoid allocations in a hot path.
 *
 * Collections/tuples/UDTs: call cql_values_begin_*, append the elements with
 * the same add functions (for a map: key, value, key, value ...), then
 * cql_values_end. Nesting up to CQL_VALUES_MAX_DEPTH levels.
 */
typedef struct cql_values {
    cql_buf buf;
    uint16_t count; /* top-level values */
    int err;
    uint8_t depth;
    struct {
        uint32_t start; /* offset of the [int] length of the open value */
        uint32_t items; /* elements appended at this level */
        uint8_t kind;   /* 0 collection, 1 map, 2 tuple/udt */
    } stack[CQL_VALUES_MAX_DEPTH];
} cql_values;

/** Initialise an empty list (no allocation). Cannot fail. */
void cql_values_init(cql_values *v);
/** Release memory. */
void cql_values_free(cql_values *v);
/** Empty the list and clear err, keep the memory. */
void cql_values_reset(cql_values *v);
/** 0 when every append so far succeeded and no collection is left open, else the first error. */
int cql_values_error(const cql_values *v);

void cql_values_add_null(cql_values *v);
/** "not set" (-2): leaves the column unchanged (no tombstone). Top level only. */
void cql_values_add_unset(cql_values *v);
void cql_values_add_bool(cql_values *v, bool x);
void cql_values_add_tinyint(cql_values *v, int8_t x);
void cql_values_add_smallint(cql_values *v, int16_t x);
void cql_values_add_int(cql_values *v, int32_t x);
/** bigint and counter. */
void cql_values_add_bigint(cql_values *v, int64_t x);
void cql_values_add_float(cql_values *v, float x);
void cql_values_add_double(cql_values *v, double x);
/** Milliseconds since the Unix epoch. */
void cql_values_add_timestamp(cql_values *v, int64_t ms);
/** date: days since the epoch as CQL stores it (2^31 = 1970-01-01). See cql_date_from_days. */
void cql_values_add_date(cql_values *v, uint32_t cql_days);
/** time: nanoseconds since midnight (0..86399999999999). */
void cql_values_add_time(cql_values *v, int64_t ns);
/** uuid and timeuuid: 16 bytes. */
void cql_values_add_uuid(cql_values *v, const uint8_t uuid[16]);
/** text/varchar/ascii: s may contain anything; NUL-terminated form: use strlen. */
void cql_values_add_text(cql_values *v, const char *s, size_t len);
void cql_values_add_blob(cql_values *v, const void *p, size_t len);
/** inet: len 4 (IPv4) or 16 (IPv6) address bytes in network order. Other lengths set
 * MS_ERR_INVALID. */
void cql_values_add_inet(cql_values *v, const uint8_t *addr, size_t len);
/** varint from int64 (minimal two's complement). */
void cql_values_add_varint_i64(cql_values *v, int64_t x);
/** varint from its two's complement big-endian bytes (copied as is). */
void cql_values_add_varint_raw(cql_values *v, const uint8_t *p, size_t len);
/** decimal = unscaled * 10^-scale; unscaled as int64. */
void cql_values_add_decimal_i64(cql_values *v, int32_t scale, int64_t unscaled);
/** decimal from scale and raw varint bytes of the unscaled value. */
void cql_values_add_decimal_raw(cql_values *v, int32_t scale, const uint8_t *p, size_t len);
/** Append an already-serialized value (len -1 null, -2 unset). */
void cql_values_add_raw(cql_values *v, cql_bytes raw);

/** Open a list or set; elements follow. */
void cql_values_begin_list(cql_values *v);
/** Open a map; append key, value, key, value, ... */
void cql_values_begin_map(cql_values *v);
/** Open a tuple or UDT; fields follow in declaration order (null allowed). */
void cql_values_begin_tuple(cql_values *v);
/** Close the innermost open collection/tuple, patching its length and count. */
void cql_values_end(cql_values *v);

/* ------------------------------------------------------------------------- */
/* Scalar codecs on raw value bytes (no allocation)                          */

/*
 * Each returns 0, MS_ERR_NOT_FOUND for null (len < 0), or MS_ERR_INVALID when
 * the byte length is wrong for the type. These do not know the column type;
 * the row getters below add the type check.
 */
int cql_decode_bool(cql_bytes b, bool *out);
int cql_decode_tinyint(cql_bytes b, int8_t *out);
int cql_decode_smallint(cql_bytes b, int16_t *out);
int cql_decode_int(cql_bytes b, int32_t *out);
int cql_decode_bigint(cql_bytes b, int64_t *out);
int cql_decode_float(cql_bytes b, float *out);
int cql_decode_double(cql_bytes b, double *out);
int cql_decode_uuid(cql_bytes b, uint8_t out[16]);
/** out_len receives 4 or 16. */
int cql_decode_inet(cql_bytes b, uint8_t out[16], size_t *out_len);
/** varint to int64; MS_ERR_TOO_LARGE when it does not fit. Empty = invalid. */
int cql_varint_to_i64(cql_bytes b, int64_t *out);
/**
 * Decimal string of a varint ("-1234"); needs about 2.5 chars per byte + 2.
 * Returns the length written (excluding NUL) or MS_ERR_TOO_LARGE if cap is too small.
 */
int cql_varint_to_string(cql_bytes b, char *out, size_t cap);
/** Minimal two's complement bytes of x into out[8]; returns the length (1..8). */
size_t cql_varint_from_i64(int64_t x, uint8_t out[8]);
/** decimal: split into scale and unscaled varint bytes (a view into b). */
int cql_decode_decimal(cql_bytes b, int32_t *scale, cql_bytes *unscaled);
/** Plain decimal string ("-12.345", "1200" for scale -2). Same return as cql_varint_to_string. */
int cql_decimal_to_string(cql_bytes b, char *out, size_t cap);
/** CQL date value (2^31-centred) from days since 1970-01-01, and back. */
uint32_t cql_date_from_days(int32_t days);
int32_t cql_date_to_days(uint32_t cql_days);
/** Canonical 36-char form "xxxxxxxx-xxxx-..." into out[37]. */
void cql_uuid_format(const uint8_t uuid[16], char out[37]);
/** Parse the canonical form. 0 or MS_ERR_INVALID. */
int cql_uuid_parse(const char *s, uint8_t out[16]);

/**
 * Iterate over a list/set/map value without building a tree. begin reads the
 * element count (for a map: the number of pairs; next then yields 2*count
 * elements, key first). Each element is a view into b.
 */
typedef struct cql_coll_iter {
    const uint8_t *p;
    const uint8_t *end;
    uint32_t remaining; /* elements left */
    bool _tuple;        /* tuple/UDT: fields missing at the end are null */
} cql_coll_iter;

/** 0, MS_ERR_NOT_FOUND (null), or MS_ERR_INVALID. count receives the element count (pairs for
 * maps). */
int cql_coll_begin(cql_coll_iter *it, cql_bytes b, bool is_map, uint32_t *count);
/** 0 and an element; MS_ERR_NOT_FOUND at the end; MS_ERR_INVALID if truncated. */
int cql_coll_next(cql_coll_iter *it, cql_bytes *elem);
/** Tuple/UDT fields: same iterator, no count prefix; `remaining` is the field count of the type. */
int cql_tuple_begin(cql_coll_iter *it, cql_bytes b, uint32_t nfields);

/* ------------------------------------------------------------------------- */
/* Generic value tree                                                         */

/**
 * A decoded value of any type. Scalars are decoded; text/blob/varint/decimal
 * keep views into the source bytes; collections, tuples and UDTs hold child
 * arrays allocated from an arena. For maps, items holds 2*n entries (k0, v0,
 * k1, v1, ...). Tuple/UDT fields missing at the end of the value are null.
 */
typedef struct cql_value {
    const cql_type *type;
    bool is_null;
    union {
        bool b;
        int64_t i; /* tinyint, smallint, int, bigint, counter, timestamp, time, date */
        float f;
        double d;
        uint8_t uuid[16];
        struct {
            uint8_t len;
            uint8_t addr[16];
        } inet;
        cql_bytes raw; /* text, ascii, blob, varint, decimal, custom, duration */
        struct {
            uint32_t n; /* elements (list/set), pairs (map), fields (tuple/udt) */
            struct cql_value *items;
        } coll;
    } v;
} cql_value;

/**
 * Decode raw bytes of type t into a tree allocated from arena (the tree
 * borrows b). Depth is limited (32) against hostile nesting.
 */
int cql_value_decode(const cql_type *t, cql_bytes b, cql_arena *arena, cql_value *out);

/* ------------------------------------------------------------------------- */
/* Results                                                                    */

typedef enum cql_result_kind {
    CQL_RESULT_VOID = 0x0001,
    CQL_RESULT_ROWS = 0x0002,
    CQL_RESULT_SET_KEYSPACE = 0x0003,
    CQL_RESULT_PREPARED = 0x0004,
    CQL_RESULT_SCHEMA_CHANGE = 0x0005,
} cql_result_kind;

/* Rows metadata flags (4.2.5.2). */
#define CQL_META_GLOBAL_TABLES_SPEC 0x0001
#define CQL_META_HAS_MORE_PAGES     0x0002
#define CQL_META_NO_METADATA        0x0004

/** One column of a result (or one bind marker of a prepared statement). */
typedef struct cql_column {
    cql_str keyspace;
    cql_str table;
    cql_str name;
    const cql_type *type;
} cql_column;

/**
 * Rows or prepared metadata. For a Rows result with NO_METADATA, columns is
 * NULL unless a cached metadata was supplied at decode time (then columns
 * points into that cached object, which must outlive the result).
 */
typedef struct cql_metadata {
    uint32_t flags;
    int32_t column_count;
    const cql_column *columns;
    cql_bytes paging_state;     /* len -1 when absent */
    uint32_t pk_count;          /* prepared bind metadata only */
    const uint16_t *pk_indexes; /* prepared bind metadata only */
} cql_metadata;

/** SCHEMA_CHANGE (result kind 5 and EVENT). */
typedef struct cql_schema_change {
    cql_str change_type; /* CREATED, UPDATED, DROPPED */
    cql_str target;      /* KEYSPACE, TABLE, TYPE, FUNCTION, AGGREGATE */
    cql_str keyspace;
    cql_str name;              /* empty for KEYSPACE */
    uint16_t arg_count;        /* FUNCTION/AGGREGATE only */
    const uint8_t *_arg_types; /* raw [string]s, read with cql_schema_change_arg */
} cql_schema_change;

/** FUNCTION/AGGREGATE argument type i (i < arg_count). 0 or MS_ERR_INVALID. */
int cql_schema_change_arg(const cql_schema_change *s, uint16_t i, cql_str *out);

/**
 * A decoded RESULT message. Create with the decoder in src/cql/proto.h
 * (cql__result_decode); release with cql_result_free. The views in it borrow
 * the frame body the result was decoded from (owned by the result when the
 * decoder was given ownership).
 */
typedef struct cql_result {
    cql_result_kind kind;
    cql_metadata meta;        /* ROWS: result metadata; PREPARED: result metadata */
    cql_metadata bind;        /* PREPARED: bound variables metadata (with pk_indexes) */
    cql_bytes prepared_id;    /* PREPARED */
    cql_str keyspace;         /* SET_KEYSPACE */
    cql_schema_change schema; /* SCHEMA_CHANGE */
    int32_t row_count;        /* ROWS */
    /* row cursor (private) */
    int32_t _row;               /* rows consumed so far */
    const uint8_t *_p;          /* next unread row */
    const uint8_t *_rows_start; /* first row */
    const uint8_t *_end;        /* end of the body */
    cql_bytes *_cells;          /* column_count cells of the current row */
    void *_owned;               /* freed by cql_result_free */
    cql_arena _arena;
} cql_result;

/** Release everything the result owns. Safe on a zeroed result; leaves it zeroed. */
void cql_result_free(cql_result *r);

/** True when a Rows result says more pages follow (paging_state is then set). */
bool cql_result_has_more_pages(const cql_result *r);
/** The paging state to send for the next page (len -1 when none). Borrowed. */
cql_bytes cql_result_paging_state(const cql_result *r);

/** Number of columns (-1 if unknown: NO_METADATA without cached metadata). */
int cql_result_column_count(const cql_result *r);
/** Column i's spec or NULL. */
const cql_column *cql_result_column(const cql_result *r, int i);
/** Index of the column named `name` (NUL-terminated), or MS_ERR_NOT_FOUND. */
int cql_result_column_index(const cql_result *r, const char *name);

/**
 * Advance to the next row. 0 when a row is available, MS_ERR_NOT_FOUND after
 * the last row, MS_ERR_INVALID if the body is malformed (the cursor then
 * stays at the end), MS_ERR_UNPROCESSABLE when the result is not ROWS or the
 * columns are unknown. Rows are parsed lazily from the body, no copy.
 */
int cql_result_next_row(cql_result *r);
/** Restart iteration at the first row. */
void cql_result_rewind(cql_result *r);

/** Raw bytes of column i in the current row (len -1 = null). MS_ERR_INVALID for a bad index/no row.
 */
int cql_row_raw(const cql_result *r, int col, cql_bytes *out);
/** True when column col of the current row is null (or the index is bad). */
bool cql_row_is_null(const cql_result *r, int col);

/*
 * Typed getters on the current row: check the column's type (listed), then
 * decode. 0, MS_ERR_NOT_FOUND for null, MS_ERR_UNPROCESSABLE on a type
 * mismatch, MS_ERR_INVALID for a bad column index or malformed bytes.
 */
int cql_row_get_bool(const cql_result *r, int col, bool *out);          /* boolean */
int cql_row_get_tinyint(const cql_result *r, int col, int8_t *out);     /* tinyint */
int cql_row_get_smallint(const cql_result *r, int col, int16_t *out);   /* smallint */
int cql_row_get_int(const cql_result *r, int col, int32_t *out);        /* int */
int cql_row_get_bigint(const cql_result *r, int col, int64_t *out);     /* bigint, counter */
int cql_row_get_timestamp(const cql_result *r, int col, int64_t *ms);   /* timestamp */
int cql_row_get_date(const cql_result *r, int col, uint32_t *cql_days); /* date */
int cql_row_get_time(const cql_result *r, int col, int64_t *ns);        /* time */
int cql_row_get_float(const cql_result *r, int col, float *out);        /* float */
int cql_row_get_double(const cql_result *r, int col, double *out);      /* double */
int cql_row_get_uuid(const cql_result *r, int col, uint8_t out[16]);    /* uuid, timeuuid */
int cql_row_get_text(const cql_result *r, int col, cql_str *out);       /* ascii, varchar */
int cql_row_get_blob(const cql_result *r, int col,
                     cql_bytes *out); /* blob (any type with raw=true: see cql_row_raw) */
int cql_row_get_inet(const cql_result *r, int col, uint8_t out[16], size_t *len); /* inet */
int cql_row_get_varint_i64(const cql_result *r, int col,
                           int64_t *out); /* varint (MS_ERR_TOO_LARGE if > 64 bits) */
/** Any type: decode into a tree allocated from arena (caller-owned). */
int cql_row_get_value(const cql_result *r, int col, cql_arena *arena, cql_value *out);

/* ------------------------------------------------------------------------- */
/* Server errors                                                              */

typedef enum cql_error_code {
    CQL_ERR_SERVER = 0x0000,
    CQL_ERR_PROTOCOL = 0x000A,
    CQL_ERR_BAD_CREDENTIALS = 0x0100,
    CQL_ERR_UNAVAILABLE = 0x1000,
    CQL_ERR_OVERLOADED = 0x1001,
    CQL_ERR_IS_BOOTSTRAPPING = 0x1002,
    CQL_ERR_TRUNCATE = 0x1003,
    CQL_ERR_WRITE_TIMEOUT = 0x1100,
    CQL_ERR_READ_TIMEOUT = 0x1200,
    CQL_ERR_READ_FAILURE = 0x1300,
    CQL_ERR_FUNCTION_FAILURE = 0x1400,
    CQL_ERR_WRITE_FAILURE = 0x1500,
    CQL_ERR_CDC_WRITE_FAILURE = 0x1600, /* v5 spec, no extra fields */
    CQL_ERR_CAS_WRITE_UNKNOWN = 0x1700, /* v5 spec: <cl><received><blockfor> */
    CQL_ERR_SYNTAX = 0x2000,
    CQL_ERR_UNAUTHORIZED = 0x2100,
    CQL_ERR_INVALID = 0x2200,
    CQL_ERR_CONFIG = 0x2300,
    CQL_ERR_ALREADY_EXISTS = 0x2400,
    CQL_ERR_UNPREPARED = 0x2500,
} cql_error_code;

/**
 * A decoded ERROR body. Fields that the code does not carry are zero/empty.
 * Views borrow the decoded body.
 */
typedef struct cql_error {
    int32_t code; /* cql_error_code (unknown codes are kept) */
    cql_str message;
    /* Unavailable, *_timeout, *_failure, CAS_write_unknown */
    uint16_t consistency;
    int32_t required; /* Unavailable */
    int32_t alive;    /* Unavailable */
    int32_t received;
    int32_t block_for;
    int32_t num_failures; /* Read/Write_failure */
    bool data_present;    /* Read_timeout/Read_failure */
    cql_str write_type;   /* Write_timeout/Write_failure: SIMPLE, BATCH, ... */
    /* Function_failure */
    cql_str function_keyspace;
    cql_str function_name;
    uint16_t arg_count;
    const uint8_t *_arg_types; /* raw [string]s, read with cql_error_arg_type */
    /* Already_exists */
    cql_str keyspace;
    cql_str table;
    /* Unprepared */
    cql_bytes unprepared_id;
} cql_error;

/** Symbolic name of a server error code ("Unavailable", "Write_timeout", ...). */
const char *cql_error_code_name(int32_t code);
/** Function_failure argument type i (i < arg_count). 0 or MS_ERR_INVALID. */
int cql_error_arg_type(const cql_error *e, uint16_t i, cql_str *out);

/* ------------------------------------------------------------------------- */
/* Events                                                                     */

typedef enum cql_event_kind {
    CQL_EVENT_TOPOLOGY_CHANGE = 1,
    CQL_EVENT_STATUS_CHANGE = 2,
    CQL_EVENT_SCHEMA_CHANGE = 3,
} cql_event_kind;

/** A decoded EVENT body. Views borrow the body. */
typedef struct cql_event {
    cql_event_kind kind;
    cql_str change;   /* NEW_NODE, REMOVED_NODE, MOVED_NODE, UP, DOWN; schema: see schema */
    uint8_t addr_len; /* 4 or 16 */
    uint8_t addr[16];
    int32_t port;
    cql_schema_change schema;
} cql_event;

#ifdef __cplusplus
}
#endif
#endif
