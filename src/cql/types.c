/* SPDX-License-Identifier: Apache-2.0 */
/*
 * types.c - CQL type descriptors: static primitives, [option] parsing from
 * result metadata (recursive, depth-limited, arena-allocated), CQL names, and
 * the generic decoder of any value into a cql_value tree.
 */
#include <stdio.h>
#include <string.h>

#include "cql/proto.h"
#include "cql/wire.h"

#define MAX_TYPE_DEPTH  32
#define MAX_VALUE_DEPTH 32

#define PRIM(ID) [ID] = {.id = ID}
static const cql_type prims[0x16] = {
    PRIM(CQL_TYPE_ASCII),     PRIM(CQL_TYPE_BIGINT),   PRIM(CQL_TYPE_BLOB),
    PRIM(CQL_TYPE_BOOLEAN),   PRIM(CQL_TYPE_COUNTER),  PRIM(CQL_TYPE_DECIMAL),
    PRIM(CQL_TYPE_DOUBLE),    PRIM(CQL_TYPE_FLOAT),    PRIM(CQL_TYPE_INT),
    PRIM(CQL_TYPE_TIMESTAMP), PRIM(CQL_TYPE_UUID),     PRIM(CQL_TYPE_VARCHAR),
    PRIM(CQL_TYPE_VARINT),    PRIM(CQL_TYPE_TIMEUUID), PRIM(CQL_TYPE_INET),
    PRIM(CQL_TYPE_DATE),      PRIM(CQL_TYPE_TIME),     PRIM(CQL_TYPE_SMALLINT),
    PRIM(CQL_TYPE_TINYINT),   PRIM(CQL_TYPE_DURATION),
};

const cql_type *cql_type_of(cql_type_id id)
{
    if ((unsigned)id >= sizeof prims / sizeof prims[0] || id == CQL_TYPE_CUSTOM || id == 0x000A)
        return NULL;
    return &prims[id];
}

const char *cql_type_name(cql_type_id id)
{
    switch (id) {
    case CQL_TYPE_CUSTOM:
        return "custom";
    case CQL_TYPE_ASCII:
        return "ascii";
    case CQL_TYPE_BIGINT:
        return "bigint";
    case CQL_TYPE_BLOB:
        return "blob";
    case CQL_TYPE_BOOLEAN:
        return "boolean";
    case CQL_TYPE_COUNTER:
        return "counter";
    case CQL_TYPE_DECIMAL:
        return "decimal";
    case CQL_TYPE_DOUBLE:
        return "double";
    case CQL_TYPE_FLOAT:
        return "float";
    case CQL_TYPE_INT:
        return "int";
    case CQL_TYPE_TIMESTAMP:
        return "timestamp";
    case CQL_TYPE_UUID:
        return "uuid";
    case CQL_TYPE_VARCHAR:
        return "text";
    case CQL_TYPE_VARINT:
        return "varint";
    case CQL_TYPE_TIMEUUID:
        return "timeuuid";
    case CQL_TYPE_INET:
        return "inet";
    case CQL_TYPE_DATE:
        return "date";
    case CQL_TYPE_TIME:
        return "time";
    case CQL_TYPE_SMALLINT:
        return "smallint";
    case CQL_TYPE_TINYINT:
        return "tinyint";
    case CQL_TYPE_DURATION:
        return "duration";
    case CQL_TYPE_LIST:
        return "list";
    case CQL_TYPE_MAP:
        return "map";
    case CQL_TYPE_SET:
        return "set";
    case CQL_TYPE_UDT:
        return "udt";
    case CQL_TYPE_TUPLE:
        return "tuple";
    }
    return "unknown";
}

/* snprintf-like appender that keeps counting past the end. */
typedef struct fmt {
    char *out;
    size_t cap;
    size_t len;
} fmt;

static void fmt_put(fmt *f, const char *s, size_t n)
{
    if (f->len < f->cap) {
        size_t room = f->cap - f->len;
        memcpy(f->out + f->len, s, n < room ? n : room);
    }
    f->len += n;
}

static void fmt_type(fmt *f, const cql_type *t, int depth)
{
    if (depth > MAX_TYPE_DEPTH) {
        fmt_put(f, "...", 3);
        return;
    }
    switch (t->id) {
    case CQL_TYPE_CUSTOM:
        fmt_put(f, "'", 1);
        fmt_put(f, t->name.ptr, t->name.len);
        fmt_put(f, "'", 1);
        return;
    case CQL_TYPE_UDT:
        if (t->keyspace.len) {
            fmt_put(f, t->keyspace.ptr, t->keyspace.len);
            fmt_put(f, ".", 1);
        }
        fmt_put(f, t->name.ptr, t->name.len);
        return;
    case CQL_TYPE_LIST:
    case CQL_TYPE_SET:
    case CQL_TYPE_MAP:
    case CQL_TYPE_TUPLE: {
        const char *n = cql_type_name(t->id);
        fmt_put(f, n, strlen(n));
        fmt_put(f, "<", 1);
        for (uint16_t i = 0; i < t->n; i++) {
            if (i)
                fmt_put(f, ", ", 2);
            fmt_type(f, t->sub[i], depth + 1);
        }
        fmt_put(f, ">", 1);
        return;
    }
    default: {
        const char *n = cql_type_name(t->id);
        fmt_put(f, n, strlen(n));
        return;
    }
    }
}

int cql_type_format(const cql_type *t, char *out, size_t cap)
{
    if (t == NULL)
        return MS_ERR_INVALID;
    fmt f = {out, cap, 0};
    fmt_type(&f, t, 0);
    if (cap)
        out[f.len < cap ? f.len : cap - 1] = '\0';
    return f.len > INT32_MAX ? MS_ERR_TOO_LARGE : (int)f.len;
}

int cql__type_parse(cql_rd *r, cql_arena *arena, int depth, const cql_type **out)
{
    if (depth > MAX_TYPE_DEPTH)
        return MS_ERR_INVALID;
    uint16_t id;
    if (cql__rd_short(r, &id) < 0)
        return MS_ERR_INVALID;
    const cql_type *prim = cql_type_of((cql_type_id)id);
    if (prim) {
        *out = prim;
        return 0;
    }
    cql_type *t = cql_arena_alloc(arena, sizeof *t);
    if (t == NULL)
        return MS_ERR_NOMEM;
    memset(t, 0, sizeof *t);
    t->id = (cql_type_id)id;
    uint16_t n;
    switch (id) {
    case CQL_TYPE_CUSTOM:
        if (cql__rd_string(r, &t->name) < 0)
            return MS_ERR_INVALID;
        *out = t;
        return 0;
    case CQL_TYPE_LIST:
    case CQL_TYPE_SET:
        n = 1;
        break;
    case CQL_TYPE_MAP:
        n = 2;
        break;
    case CQL_TYPE_UDT:
        if (cql__rd_string(r, &t->keyspace) < 0 || cql__rd_string(r, &t->name) < 0 ||
            cql__rd_short(r, &n) < 0)
            return MS_ERR_INVALID;
        break;
    case CQL_TYPE_TUPLE:
        if (cql__rd_short(r, &n) < 0)
            return MS_ERR_INVALID;
        break;
    default:
        return MS_ERR_INVALID; /* unknown type id */
    }
    /* Each field needs at least 2 bytes: refuse counts the input cannot hold. */
    if ((size_t)n * 2 > cql__rd_left(r))
        return MS_ERR_INVALID;
    const cql_type **sub = cql_arena_alloc(arena, sizeof *sub * (n ? n : 1));
    if (sub == NULL)
        return MS_ERR_NOMEM;
    cql_str *names = NULL;
    if (id == CQL_TYPE_UDT) {
        names = cql_arena_alloc(arena, sizeof *names * (n ? n : 1));
        if (names == NULL)
            return MS_ERR_NOMEM;
    }
    for (uint16_t i = 0; i < n; i++) {
        if (names && cql__rd_string(r, &names[i]) < 0)
            return MS_ERR_INVALID;
        int rc = cql__type_parse(r, arena, depth + 1, &sub[i]);
        if (rc < 0)
            return rc;
    }
    t->n = n;
    t->sub = sub;
    t->field_names = names;
    *out = t;
    return 0;
}

/* ---- generic value tree ---- */

static int decode_value(const cql_type *t, cql_bytes b, cql_arena *a, cql_value *out, int depth);

static int decode_items(const cql_type *t, cql_bytes b, cql_arena *a, cql_value *out, int depth)
{
    cql_coll_iter it;
    uint32_t n;
    uint32_t total;
    int rc;
    bool tuple = t->id == CQL_TYPE_TUPLE || t->id == CQL_TYPE_UDT;
    if (tuple) {
        if (t->n == 0)
            return b.len == 0 ? 0 : MS_ERR_INVALID;
        rc = cql_tuple_begin(&it, b, t->n);
        n = total = t->n;
    } else {
        if (t->n < 1 || (t->id == CQL_TYPE_MAP && t->n < 2))
            return MS_ERR_INVALID;
        rc = cql_coll_begin(&it, b, t->id == CQL_TYPE_MAP, &n);
        total = it.remaining;
    }
    if (rc < 0)
        return rc;
    cql_value *items = NULL;
    if (total) {
        if ((uint64_t)total * sizeof *items > SIZE_MAX / 2)
            return MS_ERR_TOO_LARGE;
        items = cql_arena_alloc(a, sizeof *items * total);
        if (items == NULL)
            return MS_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < total; i++) {
        cql_bytes e;
        rc = cql_coll_next(&it, &e);
        if (rc < 0)
            return MS_ERR_INVALID;
        const cql_type *st;
        if (tuple)
            st = t->sub[i];
        else if (t->id == CQL_TYPE_MAP)
            st = t->sub[i % 2];
        else
            st = t->sub[0];
        rc = decode_value(st, e, a, &items[i], depth + 1);
        if (rc < 0)
            return rc;
    }
    if (it.p != it.end)
        return MS_ERR_INVALID; /* trailing bytes */
    out->v.coll.n = n;
    out->v.coll.items = items;
    return 0;
}

static int decode_value(const cql_type *t, cql_bytes b, cql_arena *a, cql_value *out, int depth)
{
    if (t == NULL || depth > MAX_VALUE_DEPTH)
        return MS_ERR_INVALID;
    memset(out, 0, sizeof *out);
    out->type = t;
    if (b.len < 0) {
        out->is_null = true;
        return 0;
    }
    int rc = 0;
    /* Legacy "empty" values (section 6) of non-string types read as null. */
    if (b.len == 0 && t->id != CQL_TYPE_ASCII && t->id != CQL_TYPE_VARCHAR &&
        t->id != CQL_TYPE_BLOB && t->id != CQL_TYPE_CUSTOM && t->id != CQL_TYPE_TUPLE &&
        t->id != CQL_TYPE_UDT) {
        out->is_null = true;
        return 0;
    }
    switch (t->id) {
    case CQL_TYPE_BOOLEAN:
        return cql_decode_bool(b, &out->v.b);
    case CQL_TYPE_TINYINT: {
        int8_t x;
        rc = cql_decode_tinyint(b, &x);
        out->v.i = x;
        return rc;
    }
    case CQL_TYPE_SMALLINT: {
        int16_t x;
        rc = cql_decode_smallint(b, &x);
        out->v.i = x;
        return rc;
    }
    case CQL_TYPE_INT: {
        int32_t x;
        rc = cql_decode_int(b, &x);
        out->v.i = x;
        return rc;
    }
    case CQL_TYPE_DATE: {
        int32_t x;
        rc = cql_decode_int(b, &x);
        out->v.i = (uint32_t)x;
        return rc;
    }
    case CQL_TYPE_BIGINT:
    case CQL_TYPE_COUNTER:
    case CQL_TYPE_TIMESTAMP:
    case CQL_TYPE_TIME:
        return cql_decode_bigint(b, &out->v.i);
    case CQL_TYPE_FLOAT:
        return cql_decode_float(b, &out->v.f);
    case CQL_TYPE_DOUBLE:
        return cql_decode_double(b, &out->v.d);
    case CQL_TYPE_UUID:
    case CQL_TYPE_TIMEUUID:
        return cql_decode_uuid(b, out->v.uuid);
    case CQL_TYPE_INET: {
        size_t n = 0;
        rc = cql_decode_inet(b, out->v.inet.addr, &n);
        out->v.inet.len = (uint8_t)n;
        return rc;
    }
    case CQL_TYPE_VARINT:
        if (b.len == 0)
            return MS_ERR_INVALID;
        out->v.raw = b;
        return 0;
    case CQL_TYPE_DECIMAL:
        if (b.len < 5)
            return MS_ERR_INVALID;
        out->v.raw = b;
        return 0;
    case CQL_TYPE_LIST:
    case CQL_TYPE_SET:
    case CQL_TYPE_MAP:
    case CQL_TYPE_TUPLE:
    case CQL_TYPE_UDT:
        return decode_items(t, b, a, out, depth);
    default: /* ascii, varchar, blob, custom, duration */
        out->v.raw = b;
        return 0;
    }
}

int cql_value_decode(const cql_type *t, cql_bytes b, cql_arena *arena, cql_value *out)
{
    return decode_value(t, b, arena, out, 0);
}

/* ---- bound values vs. bind metadata ---- */

/* Validate raw bytes b (non-null) against type t, recursively. */
static int check_value(const cql_type *t, cql_bytes b, int depth)
{
    if (depth > MAX_VALUE_DEPTH)
        return MS_ERR_INVALID;
    if (b.len <= 0)
        return b.len == 0 || b.len == -1 ? 0 : MS_ERR_INVALID;
    int32_t n = b.len;
    switch (t->id) {
    case CQL_TYPE_BOOLEAN:
    case CQL_TYPE_TINYINT:
        return n == 1 ? 0 : MS_ERR_INVALID;
    case CQL_TYPE_SMALLINT:
        return n == 2 ? 0 : MS_ERR_INVALID;
    case CQL_TYPE_INT:
    case CQL_TYPE_DATE:
    case CQL_TYPE_FLOAT:
        return n == 4 ? 0 : MS_ERR_INVALID;
    case CQL_TYPE_BIGINT:
    case CQL_TYPE_COUNTER:
    case CQL_TYPE_TIMESTAMP:
    case CQL_TYPE_TIME:
    case CQL_TYPE_DOUBLE:
        return n == 8 ? 0 : MS_ERR_INVALID;
    case CQL_TYPE_UUID:
    case CQL_TYPE_TIMEUUID:
        return n == 16 ? 0 : MS_ERR_INVALID;
    case CQL_TYPE_INET:
        return n == 4 || n == 16 ? 0 : MS_ERR_INVALID;
    case CQL_TYPE_DECIMAL:
        return n >= 5 ? 0 : MS_ERR_INVALID;
    case CQL_TYPE_LIST:
    case CQL_TYPE_SET:
    case CQL_TYPE_MAP:
    case CQL_TYPE_TUPLE:
    case CQL_TYPE_UDT: {
        cql_coll_iter it;
        bool tuple = t->id == CQL_TYPE_TUPLE || t->id == CQL_TYPE_UDT;
        int rc = tuple ? cql_tuple_begin(&it, b, t->n)
                       : cql_coll_begin(&it, b, t->id == CQL_TYPE_MAP, NULL);
        if (rc < 0)
            return MS_ERR_INVALID;
        uint32_t total = it.remaining;
        for (uint32_t i = 0; i < total; i++) {
            cql_bytes e;
            if (cql_coll_next(&it, &e) < 0)
                return MS_ERR_INVALID;
            const cql_type *st = tuple                   ? t->sub[i]
                                 : t->id == CQL_TYPE_MAP ? t->sub[i % 2]
                                                         : t->sub[0];
            if (!tuple && e.len < 0)
                return MS_ERR_INVALID; /* no nulls inside collections */
            if (e.len > 0 && check_value(st, e, depth + 1) < 0)
                return MS_ERR_INVALID;
        }
        return it.p == it.end ? 0 : MS_ERR_INVALID;
    }
    default: /* text, ascii, blob, varint, custom, duration: any bytes */
        return 0;
    }
}

int cql__values_check(const cql_values *values, const cql_metadata *bind, int *bad_index)
{
    if (bad_index)
        *bad_index = -1;
    if (values == NULL || bind == NULL || cql_values_error(values) < 0)
        return MS_ERR_INVALID;
    if (bind->columns == NULL || bind->column_count != (int32_t)values->count)
        return MS_ERR_INVALID;
    cql_rd r = cql__rd(values->buf.data, values->buf.len);
    for (int32_t i = 0; i < bind->column_count; i++) {
        cql_bytes b;
        /* null (-1) and unset (-2) are fine for any top-level marker */
        if (cql__rd_bytes(&r, &b) < 0 ||
            (b.len > 0 && check_value(bind->columns[i].type, b, 0) < 0)) {
            if (bad_index)
                *bad_index = (int)i;
            return MS_ERR_INVALID;
        }
    }
    return 0;
}
