/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the CQL v4 response path: incremental framing, LZ4
 * bodies, frame prefixes, and every response decoder (ERROR, RESULT with full
 * row iteration and value trees, EVENT, SUPPORTED + Scylla keys, auth).
 *
 * The first input byte picks a mode so raw bodies are reachable without a
 * valid header:
 *   0: a byte stream of frames (the connection's view)
 *   1: a RESULT body   2: an ERROR body   3: an EVENT body
 *   4: a SUPPORTED body   5: an LZ4 body   6: a type [option] + a value
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "cql/proto.h"
#include "cql/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BODY (1u << 20)

static void consume_result(const uint8_t *p, size_t n)
{
    cql_result r;
    if (cql__result_decode(&r, p, n, NULL, NULL) == 0) {
        int cols = cql_result_column_count(&r);
        (void)cql_result_paging_state(&r);
        (void)cql_result_has_more_pages(&r);
        for (int c = 0; c < cols; c++) {
            char buf[64];
            (void)cql_type_format(cql_result_column(&r, c)->type, buf, sizeof buf);
        }
        if (r.kind == CQL_RESULT_PREPARED || r.kind == CQL_RESULT_ROWS) {
            cql_metadata *m;
            if (cql__metadata_clone(r.kind == CQL_RESULT_PREPARED ? &r.bind : &r.meta, &m) == 0)
                free(m);
        }
        cql_arena a;
        cql_arena_init(&a);
        int rows = 0;
        while (cql_result_next_row(&r) == 0 && rows++ < 1000) {
            for (int c = 0; c < cols; c++) {
                cql_value v;
                (void)cql_row_get_value(&r, c, &a, &v);
                int64_t i;
                cql_str s;
                (void)cql_row_get_bigint(&r, c, &i);
                (void)cql_row_get_text(&r, c, &s);
                cql_bytes b;
                if (cql_row_raw(&r, c, &b) == 0 && b.len >= 0 && b.len < 4096) {
                    char str[12000];
                    (void)cql_varint_to_string(b, str, sizeof str);
                    (void)cql_decimal_to_string(b, str, sizeof str);
                }
            }
        }
        cql_arena_free(&a);
    }
    cql_result_free(&r);
}

static void consume_error(const uint8_t *p, size_t n)
{
    cql_error e;
    if (cql__error_decode(p, n, &e) == 0) {
        cql_str s;
        for (uint16_t i = 0; i < e.arg_count; i++)
            (void)cql_error_arg_type(&e, i, &s);
        (void)cql_error_code_name(e.code);
    }
}

static void consume_event(const uint8_t *p, size_t n)
{
    cql_event ev;
    if (cql__event_decode(p, n, &ev) == 0) {
        cql_str s;
        for (uint16_t i = 0; i < ev.schema.arg_count; i++)
            (void)cql_schema_change_arg(&ev.schema, i, &s);
    }
}

static void consume_supported(const uint8_t *p, size_t n)
{
    cql_multimap m;
    if (cql__supported_decode(p, n, &m) == 0) {
        cql_scylla_info s;
        if (cql__scylla_parse(&m, &s) == 0 && s.present)
            (void)cql__scylla_shard_of(cql__murmur3_token(p, n), s.nr_shards, s.ignore_msb);
        (void)cql__multimap_has(&m, "COMPRESSION", "lz4");
        cql_str v;
        (void)cql__multimap_value(&m, "COMPRESSION", 1, &v);
    }
}

static void consume_body(const cql_frame_header *h, const uint8_t *p, size_t n)
{
    cql_response r;
    if (cql__response_open(h, p, n, &r) < 0)
        return;
    cql_str s;
    for (uint16_t i = 0; i < r.warning_count; i++)
        (void)cql__response_warning(&r, i, &s);
    cql_bytes v;
    for (uint16_t i = 0; i < r.payload_count; i++)
        (void)cql__response_payload(&r, i, &s, &v);
    switch (h->opcode) {
    case CQL_OP_ERROR:
        consume_error(r.body, r.body_len);
        break;
    case CQL_OP_RESULT:
        consume_result(r.body, r.body_len);
        break;
    case CQL_OP_EVENT:
        consume_event(r.body, r.body_len);
        break;
    case CQL_OP_SUPPORTED:
        consume_supported(r.body, r.body_len);
        break;
    case CQL_OP_AUTHENTICATE:
        (void)cql__authenticate_decode(r.body, r.body_len, &s);
        break;
    case CQL_OP_AUTH_CHALLENGE:
    case CQL_OP_AUTH_SUCCESS:
        (void)cql__auth_token_decode(r.body, r.body_len, &v);
        break;
    default:
        break;
    }
}

static void consume_stream(const uint8_t *p, size_t n)
{
    cql_buf plain = {0};
    while (n > 0) {
        cql_frame_header h;
        size_t flen, need;
        if (cql__frame_parse(p, n, MAX_BODY, &h, &flen, &need) < 0 || flen == 0)
            break;
        const uint8_t *body = p + CQL_HEADER_LEN;
        size_t blen = h.length;
        if (h.flags & CQL_FLAG_COMPRESSION) {
            cql_buf_reset(&plain);
            if (cql__lz4_decompress(&plain, body, blen, MAX_BODY) < 0)
                break;
            body = plain.data;
            blen = plain.len;
        }
        /* exact-size copy so ASan sees any overread of the body */
        uint8_t *copy = malloc(blen ? blen : 1);
        if (copy == NULL)
            break;
        if (blen)
            memcpy(copy, body, blen);
        consume_body(&h, copy, blen);
        free(copy);
        p += flen;
        n -= flen;
    }
    cql_buf_free(&plain);
}

static void consume_typed_value(const uint8_t *p, size_t n)
{
    cql_arena a;
    cql_arena_init(&a);
    cql_rd r = cql__rd(p, n);
    const cql_type *t;
    if (cql__type_parse(&r, &a, 0, &t) == 0) {
        cql_bytes b = {r.p, (int32_t)cql__rd_left(&r)};
        cql_value v;
        (void)cql_value_decode(t, b, &a, &v);
        char buf[256];
        (void)cql_type_format(t, buf, sizeof buf);
        int64_t i;
        (void)cql_varint_to_i64(b, &i);
        cql_coll_iter it;
        uint32_t cnt;
        if (cql_coll_begin(&it, b, t->id == CQL_TYPE_MAP, &cnt) == 0) {
            cql_bytes e;
            while (cql_coll_next(&it, &e) == 0) {
            }
        }
    }
    cql_arena_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4 * MAX_BODY)
        return 0;
    uint8_t mode = data[0] % 7;
    /* exact-size copy of the payload */
    size_t n = size - 1;
    uint8_t *p = malloc(n ? n : 1);
    if (p == NULL)
        return 0;
    if (n)
        memcpy(p, data + 1, n);
    switch (mode) {
    case 0:
        consume_stream(p, n);
        break;
    case 1:
        consume_result(p, n);
        break;
    case 2:
        consume_error(p, n);
        break;
    case 3:
        consume_event(p, n);
        break;
    case 4:
        consume_supported(p, n);
        break;
    case 5: {
        cql_buf out = {0};
        if (cql__lz4_decompress(&out, p, n, MAX_BODY) == 0)
            consume_result(out.data, out.len);
        cql_buf_free(&out);
        break;
    }
    case 6:
        consume_typed_value(p, n);
        break;
    }
    free(p);
    return 0;
}
