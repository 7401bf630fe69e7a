/* SPDX-License-Identifier: Apache-2.0 */
/*
 * frame.c - frame header codec, incremental framing and the request
 * encoders of section 4.1 of the v4 spec.
 */
#include <string.h>

#include "cql/proto.h"
#include "cql/wire.h"

const char *cql__opcode_name(int op)
{
    switch (op) {
    case CQL_OP_ERROR:
        return "ERROR";
    case CQL_OP_STARTUP:
        return "STARTUP";
    case CQL_OP_READY:
        return "READY";
    case CQL_OP_AUTHENTICATE:
        return "AUTHENTICATE";
    case CQL_OP_OPTIONS:
        return "OPTIONS";
    case CQL_OP_SUPPORTED:
        return "SUPPORTED";
    case CQL_OP_QUERY:
        return "QUERY";
    case CQL_OP_RESULT:
        return "RESULT";
    case CQL_OP_PREPARE:
        return "PREPARE";
    case CQL_OP_EXECUTE:
        return "EXECUTE";
    case CQL_OP_REGISTER:
        return "REGISTER";
    case CQL_OP_EVENT:
        return "EVENT";
    case CQL_OP_BATCH:
        return "BATCH";
    case CQL_OP_AUTH_CHALLENGE:
        return "AUTH_CHALLENGE";
    case CQL_OP_AUTH_RESPONSE:
        return "AUTH_RESPONSE";
    case CQL_OP_AUTH_SUCCESS:
        return "AUTH_SUCCESS";
    }
    return "UNKNOWN";
}

void cql__header_encode(const cql_frame_header *h, uint8_t out[CQL_HEADER_LEN])
{
    out[0] = h->version;
    out[1] = h->flags;
    cql__wbe16(out + 2, (uint16_t)h->stream);
    out[4] = h->opcode;
    cql__wbe32(out + 5, h->length);
}

int cql__header_decode(const uint8_t *p, size_t n, uint32_t max_body, cql_frame_header *h)
{
    if (n < CQL_HEADER_LEN)
        return MS_ERR_INVALID;
    if ((p[0] & 0x7F) != CQL_PROTO_VERSION)
        return MS_ERR_INVALID;
    if (max_body == 0 || max_body > CQL_MAX_FRAME_BODY)
        max_body = CQL_MAX_FRAME_BODY;
    h->version = p[0];
    h->flags = p[1];
    h->stream = (int16_t)cql__be16(p + 2);
    h->opcode = p[4];
    h->length = cql__be32(p + 5);
    if (h->length > max_body)
        return MS_ERR_TOO_LARGE;
    return 0;
}

int cql__frame_parse(const uint8_t *buf, size_t len, uint32_t max_body, cql_frame_header *h,
                     size_t *frame_len, size_t *need)
{
    *frame_len = 0;
    if (len < CQL_HEADER_LEN) {
        if (need)
            *need = CQL_HEADER_LEN;
        return 0;
    }
    int rc = cql__header_decode(buf, len, max_body, h);
    if (rc < 0)
        return rc;
    size_t total = CQL_HEADER_LEN + (size_t)h->length;
    if (need)
        *need = total;
    if (len < total)
        return 0;
    *frame_len = total;
    return 0;
}

size_t cql__frame_start(cql_buf *b, uint8_t flags, int16_t stream, uint8_t opcode)
{
    size_t start = b->len;
    uint8_t *p = cql__wr(b, CQL_HEADER_LEN);
    if (p) {
        cql_frame_header h = {CQL_PROTO_VERSION, flags, stream, opcode, 0};
        cql__header_encode(&h, p);
    }
    return start;
}

int cql__frame_finish(cql_buf *b, size_t start)
{
    int rc = b->err;
    if (rc == 0 && (b->len < start + CQL_HEADER_LEN))
        rc = MS_ERR_INTERNAL;
    if (rc == 0 && b->len - start - CQL_HEADER_LEN > CQL_MAX_FRAME_BODY)
        rc = MS_ERR_TOO_LARGE;
    if (rc < 0) {
        /* Drop the partial frame; keep earlier frames intact. */
        if (b->len > start)
            b->len = start;
        b->err = 0;
        return rc;
    }
    cql__wbe32(b->data + start + 5, (uint32_t)(b->len - start - CQL_HEADER_LEN));
    return 0;
}

int cql__frame_compress(cql_buf *b, size_t start, cql_buf *scratch)
{
    if (b->err)
        return b->err;
    if (b->len < start + CQL_HEADER_LEN)
        return MS_ERR_INVALID;
    size_t body = b->len - start - CQL_HEADER_LEN;
    if (body == 0)
        return 0;
    cql_buf_reset(scratch);
    int rc = cql__lz4_compress(scratch, b->data + start + CQL_HEADER_LEN, body);
    if (rc < 0)
        return rc;
    if (scratch->len > CQL_MAX_FRAME_BODY)
        return MS_ERR_TOO_LARGE;
    b->len = start + CQL_HEADER_LEN;
    cql_buf_append(b, scratch->data, scratch->len);
    if (b->err)
        return b->err;
    b->data[start + 1] |= CQL_FLAG_COMPRESSION;
    cql__wbe32(b->data + start + 5, (uint32_t)scratch->len);
    return 0;
}

/* ---- requests ---- */

int cql__enc_startup(cql_buf *b, int16_t stream, const char *const *kv, size_t npairs)
{
    size_t s = cql__frame_start(b, 0, stream, CQL_OP_STARTUP);
    cql__put_string_map(b, kv, npairs);
    return cql__frame_finish(b, s);
}

int cql__enc_options(cql_buf *b, int16_t stream)
{
    size_t s = cql__frame_start(b, 0, stream, CQL_OP_OPTIONS);
    return cql__frame_finish(b, s);
}

int cql__enc_auth_response(cql_buf *b, int16_t stream, const void *token, int32_t len)
{
    size_t s = cql__frame_start(b, 0, stream, CQL_OP_AUTH_RESPONSE);
    cql__put_bytes(b, token, len);
    return cql__frame_finish(b, s);
}

int cql__enc_auth_plain(cql_buf *b, int16_t stream, const char *user, const char *password)
{
    if (user == NULL || password == NULL)
        return MS_ERR_INVALID;
    size_t ul = strlen(user), pl = strlen(password);
    if (ul > 65535 || pl > 65535)
        return MS_ERR_TOO_LARGE;
    size_t s = cql__frame_start(b, 0, stream, CQL_OP_AUTH_RESPONSE);
    cql__put_int(b, (int32_t)(ul + pl + 2));
    cql__put_byte(b, 0);
    cql_buf_append(b, user, ul);
    cql__put_byte(b, 0);
    cql_buf_append(b, password, pl);
    return cql__frame_finish(b, s);
}

int cql__enc_register(cql_buf *b, int16_t stream, const char *const *events, size_t n)
{
    if (n > UINT16_MAX)
        return MS_ERR_TOO_LARGE;
    size_t s = cql__frame_start(b, 0, stream, CQL_OP_REGISTER);
    cql__put_short(b, (uint16_t)n);
    for (size_t i = 0; i < n; i++)
        cql__put_string(b, events[i], strlen(events[i]));
    return cql__frame_finish(b, s);
}

int cql__enc_prepare(cql_buf *b, int16_t stream, uint8_t flags, const char *query, size_t len)
{
    size_t s = cql__frame_start(b, flags & CQL_FLAG_TRACING, stream, CQL_OP_PREPARE);
    cql__put_long_string(b, query, len);
    return cql__frame_finish(b, s);
}

void cql__query_params_init(cql_query_params *p)
{
    memset(p, 0, sizeof *p);
    p->consistency = CQL_CONSISTENCY_ONE;
    p->paging_state.len = -1;
    p->timestamp = CQL_NO_TIMESTAMP;
}

static int check_values(const cql_values *v)
{
    return v ? cql_values_error(v) : 0;
}

static void put_params(cql_buf *b, const cql_query_params *p)
{
    uint8_t f = 0;
    const cql_values *v = p->values;
    if (v && v->count)
        f |= CQL_QFLAG_VALUES;
    if (p->skip_metadata)
        f |= CQL_QFLAG_SKIP_METADATA;
    if (p->page_size > 0)
        f |= CQL_QFLAG_PAGE_SIZE;
    if (p->paging_state.ptr && p->paging_state.len >= 0)
        f |= CQL_QFLAG_PAGING_STATE;
    if (p->serial_consistency)
        f |= CQL_QFLAG_SERIAL_CONSISTENCY;
    if (p->timestamp != CQL_NO_TIMESTAMP)
        f |= CQL_QFLAG_DEFAULT_TIMESTAMP;
    cql__put_short(b, (uint16_t)p->consistency);
    cql__put_byte(b, f);
    if (f & CQL_QFLAG_VALUES) {
        cql__put_short(b, v->count);
        cql_buf_append(b, v->buf.data, v->buf.len);
    }
    if (f & CQL_QFLAG_PAGE_SIZE)
        cql__put_int(b, p->page_size);
    if (f & CQL_QFLAG_PAGING_STATE)
        cql__put_bytes(b, p->paging_state.ptr, p->paging_state.len);
    if (f & CQL_QFLAG_SERIAL_CONSISTENCY)
        cql__put_short(b, p->serial_consistency);
    if (f & CQL_QFLAG_DEFAULT_TIMESTAMP)
        cql__put_long(b, p->timestamp);
}

static int check_params(const cql_query_params *p)
{
    if (p == NULL)
        return MS_ERR_INVALID;
    int rc = check_values(p->values);
    if (rc < 0)
        return rc;
    if (p->timestamp != CQL_NO_TIMESTAMP && p->timestamp < 0)
        return MS_ERR_INVALID; /* "negative values are forbidden" (4.1.4) */
    return 0;
}

int cql__enc_query(cql_buf *b, int16_t stream, uint8_t flags, const char *query, size_t len,
                   const cql_query_params *p)
{
    int rc = check_params(p);
    if (rc < 0)
        return rc;
    size_t s = cql__frame_start(b, flags & CQL_FLAG_TRACING, stream, CQL_OP_QUERY);
    cql__put_long_string(b, query, len);
    put_params(b, p);
    return cql__frame_finish(b, s);
}

int cql__enc_execute(cql_buf *b, int16_t stream, uint8_t flags, const uint8_t *id, size_t id_len,
                     const cql_query_params *p)
{
    int rc = check_params(p);
    if (rc < 0)
        return rc;
    if (id == NULL || id_len == 0 || id_len > UINT16_MAX)
        return MS_ERR_INVALID;
    size_t s = cql__frame_start(b, flags & CQL_FLAG_TRACING, stream, CQL_OP_EXECUTE);
    cql__put_short_bytes(b, id, id_len);
    put_params(b, p);
    return cql__frame_finish(b, s);
}

int cql__enc_batch(cql_buf *b, int16_t stream, uint8_t flags, const cql_batch *batch)
{
    if (batch == NULL || batch->count == 0 || batch->entries == NULL ||
        batch->type > CQL_BATCH_COUNTER)
        return MS_ERR_INVALID;
    if (batch->timestamp != CQL_NO_TIMESTAMP && batch->timestamp < 0)
        return MS_ERR_INVALID;
    for (uint16_t i = 0; i < batch->count; i++) {
        const cql_batch_entry *e = &batch->entries[i];
        int rc = check_values(e->values);
        if (rc < 0)
            return rc;
        if (e->id ? (e->id_len == 0 || e->id_len > UINT16_MAX) : e->query == NULL)
            return MS_ERR_INVALID;
    }
    size_t s = cql__frame_start(b, flags & CQL_FLAG_TRACING, stream, CQL_OP_BATCH);
    cql__put_byte(b, batch->type);
    cql__put_short(b, batch->count);
    for (uint16_t i = 0; i < batch->count; i++) {
        const cql_batch_entry *e = &batch->entries[i];
        if (e->id) {
            cql__put_byte(b, 1);
            cql__put_short_bytes(b, e->id, e->id_len);
        } else {
            cql__put_byte(b, 0);
            cql__put_long_string(b, e->query, e->query_len);
        }
        const cql_values *v = e->values;
        cql__put_short(b, v ? v->count : 0);
        if (v && v->count)
            cql_buf_append(b, v->buf.data, v->buf.len);
    }
    uint8_t f = 0;
    if (batch->serial_consistency)
        f |= CQL_QFLAG_SERIAL_CONSISTENCY;
    if (batch->timestamp != CQL_NO_TIMESTAMP)
        f |= CQL_QFLAG_DEFAULT_TIMESTAMP;
    cql__put_short(b, (uint16_t)batch->consistency);
    cql__put_byte(b, f);
    if (f & CQL_QFLAG_SERIAL_CONSISTENCY)
        cql__put_short(b, batch->serial_consistency);
    if (f & CQL_QFLAG_DEFAULT_TIMESTAMP)
        cql__put_long(b, batch->timestamp);
    return cql__frame_finish(b, s);
}
