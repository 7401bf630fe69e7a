/* SPDX-License-Identifier: Apache-2.0 */
/*
 * result.c - RESULT bodies (section 4.2.5): Void, Rows (metadata, paging
 * state, lazy row cursor), Set_keyspace, Prepared, Schema_change; typed
 * getters on the current row; deep copy of metadata for prepared caches.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cql/proto.h"
#include "cql/wire.h"

/* Zero a result without touching the arena's 1 KiB inline block (hot path). */
static void result_clear(cql_result *r)
{
    memset(r, 0, offsetof(cql_result, _arena));
    cql_arena_init(&r->_arena);
}

void cql_result_free(cql_result *r)
{
    cql_arena_free(&r->_arena);
    free(r->_owned);
    result_clear(r);
}

/*
 * <flags><columns_count>[<paging_state>][<global_table_spec>?<col_spec_1>...]
 * for Rows (prepared = false), or the prepared bind metadata
 * <flags><columns_count><pk_count>[<pk_index>...][<global_table_spec>?<col_spec>...]
 */
static int parse_metadata(cql_rd *r, cql_arena *a, bool prepared, cql_metadata *m)
{
    int32_t flags, n;
    memset(m, 0, sizeof *m);
    m->paging_state.len = -1;
    if (cql__rd_int(r, &flags) < 0 || cql__rd_int(r, &n) < 0 || n < 0)
        return MS_ERR_INVALID;
    m->flags = (uint32_t)flags;
    m->column_count = n;
    if (prepared) {
        int32_t pk;
        if (cql__rd_int(r, &pk) < 0 || pk < 0 || (size_t)pk * 2 > cql__rd_left(r))
            return MS_ERR_INVALID;
        m->pk_count = (uint32_t)pk;
        if (pk) {
            uint16_t *idx = cql_arena_alloc(a, sizeof *idx * (size_t)pk);
            if (idx == NULL)
                return MS_ERR_NOMEM;
            for (int32_t i = 0; i < pk; i++) {
                if (cql__rd_short(r, &idx[i]) < 0)
                    return MS_ERR_INVALID;
                if (idx[i] >= n)
                    return MS_ERR_INVALID;
            }
            m->pk_indexes = idx;
        }
    } else if (m->flags & CQL_META_HAS_MORE_PAGES) {
        if (cql__rd_bytes(r, &m->paging_state) < 0 || m->paging_state.len == -2)
            return MS_ERR_INVALID;
    }
    if (m->flags & CQL_META_NO_METADATA)
        return 0;
    cql_str ks = {"", 0}, table = {"", 0};
    bool global = (m->flags & CQL_META_GLOBAL_TABLES_SPEC) != 0;
    if (global && (cql__rd_string(r, &ks) < 0 || cql__rd_string(r, &table) < 0))
        return MS_ERR_INVALID;
    /* A column spec takes at least 4 bytes (name + type id). */
    if ((size_t)n * 4 > cql__rd_left(r))
        return MS_ERR_INVALID;
    if (n == 0)
        return 0;
    cql_column *cols = cql_arena_alloc(a, sizeof *cols * (size_t)n);
    if (cols == NULL)
        return MS_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        cols[i].keyspace = ks;
        cols[i].table = table;
        if (!global &&
            (cql__rd_string(r, &cols[i].keyspace) < 0 || cql__rd_string(r, &cols[i].table) < 0))
            return MS_ERR_INVALID;
        if (cql__rd_string(r, &cols[i].name) < 0)
            return MS_ERR_INVALID;
        int rc = cql__type_parse(r, a, 0, &cols[i].type);
        if (rc < 0)
            return rc;
    }
    m->columns = cols;
    return 0;
}

static int decode(cql_result *res, const uint8_t *body, size_t len, const cql_metadata *cached)
{
    cql_rd r = cql__rd(body, len);
    int32_t kind;
    if (cql__rd_int(&r, &kind) < 0)
        return MS_ERR_INVALID;
    res->kind = (cql_result_kind)kind;
    res->meta.paging_state.len = -1;
    res->bind.paging_state.len = -1;
    res->prepared_id.len = -1;
    switch (kind) {
    case CQL_RESULT_VOID:
        return 0;
    case CQL_RESULT_SET_KEYSPACE:
        return cql__rd_string(&r, &res->keyspace);
    case CQL_RESULT_SCHEMA_CHANGE:
        return cql__schema_change_parse(&r, &res->schema);
    case CQL_RESULT_PREPARED: {
        int rc;
        if (cql__rd_short_bytes(&r, &res->prepared_id) < 0 || res->prepared_id.len == 0)
            return MS_ERR_INVALID;
        if ((rc = parse_metadata(&r, &res->_arena, true, &res->bind)) < 0)
            return rc;
        return parse_metadata(&r, &res->_arena, false, &res->meta);
    }
    case CQL_RESULT_ROWS: {
        int rc = parse_metadata(&r, &res->_arena, false, &res->meta);
        if (rc < 0)
            return rc;
        if (res->meta.flags & CQL_META_NO_METADATA) {
            if (cached && cached->column_count == res->meta.column_count && cached->columns) {
                res->meta.columns = cached->columns;
            } else if (cached) {
                return MS_ERR_INVALID; /* cached metadata does not match: re-prepare */
            }
        }
        int32_t rows;
        if (cql__rd_int(&r, &rows) < 0 || rows < 0)
            return MS_ERR_INVALID;
        int32_t n = res->meta.column_count;
        /* Every cell takes at least its 4-byte length. */
        if ((uint64_t)rows * (uint64_t)n * 4u > cql__rd_left(&r))
            return MS_ERR_INVALID;
        /* Cells are needed only to read rows; with rows > 0 the check above
         * also bounds n by the body size (NO_METADATA alone does not). */
        if (n > 0 && rows > 0) {
            res->_cells = cql_arena_alloc(&res->_arena, sizeof *res->_cells * (size_t)n);
            if (res->_cells == NULL)
                return MS_ERR_NOMEM;
        }
        res->row_count = rows;
        res->_rows_start = res->_p = r.p;
        res->_end = r.end;
        res->_row = 0;
        return 0;
    }
    default:
        return MS_ERR_INVALID;
    }
}

int cql__result_decode(cql_result *r, const uint8_t *body, size_t len, void *owned,
                       const cql_metadata *cached)
{
    result_clear(r);
    r->_owned = owned;
    int rc = decode(r, body, len, cached);
    if (rc < 0)
        r->row_count = 0; /* nothing readable */
    return rc;
}

bool cql_result_has_more_pages(const cql_result *r)
{
    return r->kind == CQL_RESULT_ROWS && (r->meta.flags & CQL_META_HAS_MORE_PAGES) &&
           r->meta.paging_state.len >= 0;
}

cql_bytes cql_result_paging_state(const cql_result *r)
{
    if (cql_result_has_more_pages(r))
        return r->meta.paging_state;
    cql_bytes none = {NULL, -1};
    return none;
}

int cql_result_column_count(const cql_result *r)
{
    if (r->meta.column_count > 0 && r->meta.columns == NULL)
        return -1;
    return r->meta.column_count;
}

const cql_column *cql_result_column(const cql_result *r, int i)
{
    if (r->meta.columns == NULL || i < 0 || i >= r->meta.column_count)
        return NULL;
    return &r->meta.columns[i];
}

int cql_result_column_index(const cql_result *r, const char *name)
{
    if (r->meta.columns == NULL || name == NULL)
        return MS_ERR_NOT_FOUND;
    for (int32_t i = 0; i < r->meta.column_count; i++)
        if (cql_str_eq(r->meta.columns[i].name, name))
            return (int)i;
    return MS_ERR_NOT_FOUND;
}

int cql_result_next_row(cql_result *r)
{
    if (r->kind != CQL_RESULT_ROWS)
        return MS_ERR_UNPROCESSABLE;
    if (r->_row >= r->row_count)
        return MS_ERR_NOT_FOUND;
    cql_rd rd = {r->_p, r->_end};
    for (int32_t i = 0; i < r->meta.column_count; i++) {
        if (cql__rd_bytes(&rd, &r->_cells[i]) < 0 || r->_cells[i].len == -2) {
            r->_row = r->row_count;
            r->_p = r->_end;
            return MS_ERR_INVALID;
        }
    }
    r->_p = rd.p;
    r->_row++;
    return 0;
}

void cql_result_rewind(cql_result *r)
{
    r->_p = r->_rows_start;
    r->_row = 0;
}

int cql_row_raw(const cql_result *r, int col, cql_bytes *out)
{
    if (r->kind != CQL_RESULT_ROWS || r->_row == 0 || col < 0 || col >= r->meta.column_count)
        return MS_ERR_INVALID;
    *out = r->_cells[col];
    return 0;
}

bool cql_row_is_null(const cql_result *r, int col)
{
    cql_bytes b;
    return cql_row_raw(r, col, &b) < 0 || b.len < 0;
}

/* The cell of col when the column's type is a or b; legacy empty values of fixed-size types read as
 * null. */
static int typed_cell(const cql_result *r, int col, cql_type_id a, cql_type_id b, cql_bytes *out)
{
    int rc = cql_row_raw(r, col, out);
    if (rc < 0)
        return rc;
    if (r->meta.columns == NULL)
        return MS_ERR_UNPROCESSABLE;
    cql_type_id t = r->meta.columns[col].type->id;
    if (t != a && t != b)
        return MS_ERR_UNPROCESSABLE;
    if (out->len < 0)
        return MS_ERR_NOT_FOUND;
    return 0;
}

static int fixed_cell(const cql_result *r, int col, cql_type_id a, cql_type_id b, cql_bytes *out)
{
    int rc = typed_cell(r, col, a, b, out);
    if (rc == 0 && out->len == 0)
        return MS_ERR_NOT_FOUND;
    return rc;
}

#define GETTER(NAME, CT, TA, TB, DEC)                                                              \
    int cql_row_get_##NAME(const cql_result *r, int col, CT *out)                                  \
    {                                                                                              \
        cql_bytes b;                                                                               \
        int rc = fixed_cell(r, col, TA, TB, &b);                                                   \
        return rc < 0 ? rc : DEC(b, out);                                                          \
    }

GETTER(bool, bool, CQL_TYPE_BOOLEAN, CQL_TYPE_BOOLEAN, cql_decode_bool)
GETTER(tinyint, int8_t, CQL_TYPE_TINYINT, CQL_TYPE_TINYINT, cql_decode_tinyint)
GETTER(smallint, int16_t, CQL_TYPE_SMALLINT, CQL_TYPE_SMALLINT, cql_decode_smallint)
GETTER(int, int32_t, CQL_TYPE_INT, CQL_TYPE_INT, cql_decode_int)
GETTER(bigint, int64_t, CQL_TYPE_BIGINT, CQL_TYPE_COUNTER, cql_decode_bigint)
GETTER(timestamp, int64_t, CQL_TYPE_TIMESTAMP, CQL_TYPE_TIMESTAMP, cql_decode_bigint)
GETTER(time, int64_t, CQL_TYPE_TIME, CQL_TYPE_TIME, cql_decode_bigint)
GETTER(float, float, CQL_TYPE_FLOAT, CQL_TYPE_FLOAT, cql_decode_float)
GETTER(double, double, CQL_TYPE_DOUBLE, CQL_TYPE_DOUBLE, cql_decode_double)
GETTER(varint_i64, int64_t, CQL_TYPE_VARINT, CQL_TYPE_VARINT, cql_varint_to_i64)

int cql_row_get_date(const cql_result *r, int col, uint32_t *cql_days)
{
    cql_bytes b;
    int32_t x;
    int rc = fixed_cell(r, col, CQL_TYPE_DATE, CQL_TYPE_DATE, &b);
    if (rc < 0 || (rc = cql_decode_int(b, &x)) < 0)
        return rc;
    *cql_days = (uint32_t)x;
    return 0;
}

int cql_row_get_uuid(const cql_result *r, int col, uint8_t out[16])
{
    cql_bytes b;
    int rc = fixed_cell(r, col, CQL_TYPE_UUID, CQL_TYPE_TIMEUUID, &b);
    return rc < 0 ? rc : cql_decode_uuid(b, out);
}

int cql_row_get_inet(const cql_result *r, int col, uint8_t out[16], size_t *len)
{
    cql_bytes b;
    int rc = fixed_cell(r, col, CQL_TYPE_INET, CQL_TYPE_INET, &b);
    return rc < 0 ? rc : cql_decode_inet(b, out, len);
}

int cql_row_get_text(const cql_result *r, int col, cql_str *out)
{
    cql_bytes b;
    int rc = typed_cell(r, col, CQL_TYPE_VARCHAR, CQL_TYPE_ASCII, &b);
    if (rc < 0)
        return rc;
    out->ptr = b.len ? (const char *)b.ptr : "";
    out->len = (size_t)b.len;
    return 0;
}

int cql_row_get_blob(const cql_result *r, int col, cql_bytes *out)
{
    return typed_cell(r, col, CQL_TYPE_BLOB, CQL_TYPE_BLOB, out);
}

int cql_row_get_value(const cql_result *r, int col, cql_arena *arena, cql_value *out)
{
    cql_bytes b;
    int rc = cql_row_raw(r, col, &b);
    if (rc < 0)
        return rc;
    if (r->meta.columns == NULL)
        return MS_ERR_UNPROCESSABLE;
    return cql_value_decode(r->meta.columns[col].type, b, arena, out);
}

/* ---- deep copy of metadata ---- */

typedef struct cloner {
    uint8_t *p; /* NULL while measuring */
    size_t used;
} cloner;

static void *cl_alloc(cloner *c, size_t n)
{
    size_t off = (c->used + 15) & ~(size_t)15;
    c->used = off + n;
    return c->p ? c->p + off : NULL;
}

static cql_str cl_str(cloner *c, cql_str s)
{
    char *d = cl_alloc(c, s.len + 1);
    cql_str out = {"", s.len};
    if (d) {
        if (s.len)
            memcpy(d, s.ptr, s.len);
        d[s.len] = '\0';
        out.ptr = d;
    }
    return out;
}

static const cql_type *cl_type(cloner *c, const cql_type *t, int depth)
{
    if (t == NULL || depth > 64)
        return NULL;
    if (cql_type_of(t->id) == t)
        return t; /* static primitive */
    cql_type *d = cl_alloc(c, sizeof *d);
    const cql_type **sub = t->n ? cl_alloc(c, sizeof *sub * t->n) : NULL;
    cql_str *names = t->field_names && t->n ? cl_alloc(c, sizeof *names * t->n) : NULL;
    cql_str ks = cl_str(c, t->keyspace), name = cl_str(c, t->name);
    for (uint16_t i = 0; i < t->n; i++) {
        const cql_type *s = cl_type(c, t->sub[i], depth + 1);
        cql_str fname = {"", 0};
        if (t->field_names)
            fname = cl_str(c, t->field_names[i]);
        if (c->p) {
            sub[i] = s;
            if (names)
                names[i] = fname;
        }
    }
    if (d == NULL)
        return NULL;
    d->id = t->id;
    d->n = t->n;
    d->sub = sub;
    d->field_names = names;
    d->keyspace = ks;
    d->name = name;
    return d;
}

static cql_metadata *cl_meta(cloner *c, const cql_metadata *m)
{
    cql_metadata *d = cl_alloc(c, sizeof *d);
    cql_column *cols = m->columns && m->column_count > 0
                           ? cl_alloc(c, sizeof *cols * (size_t)m->column_count)
                           : NULL;
    uint16_t *pk = m->pk_count ? cl_alloc(c, sizeof *pk * m->pk_count) : NULL;
    if (m->columns) {
        for (int32_t i = 0; i < m->column_count; i++) {
            cql_column col;
            col.keyspace = cl_str(c, m->columns[i].keyspace);
            col.table = cl_str(c, m->columns[i].table);
            col.name = cl_str(c, m->columns[i].name);
            col.type = cl_type(c, m->columns[i].type, 0);
            if (cols)
                cols[i] = col;
        }
    }
    if (d == NULL)
        return NULL;
    if (pk)
        memcpy(pk, m->pk_indexes, sizeof *pk * m->pk_count);
    d->flags = m->flags & ~(uint32_t)CQL_META_HAS_MORE_PAGES;
    d->column_count = m->column_count;
    d->columns = cols;
    d->paging_state.ptr = NULL;
    d->paging_state.len = -1;
    d->pk_count = m->pk_count;
    d->pk_indexes = pk;
    return d;
}

int cql__metadata_clone(const cql_metadata *m, cql_metadata **out)
{
    if (m == NULL || m->column_count < 0)
        return MS_ERR_INVALID;
    cloner c = {NULL, 0};
    cl_meta(&c, m);
    c.p = malloc(c.used ? c.used : 1);
    if (c.p == NULL)
        return MS_ERR_NOMEM;
    c.used = 0;
    *out = cl_meta(&c, m);
    return 0;
}
