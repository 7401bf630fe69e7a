/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CQL v4 frame codec: header, incremental framing, every request body, LZ4
 * body compression. Expected bytes are written out by hand from
 * native_protocol_v4.spec (sections 2, 3, 4.1, 5).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "cql/proto.h"
#include "cql/wire.h"

static void assert_bytes(const cql_buf *b, size_t off, const uint8_t *want, size_t n)
{
    assert_true(b->len >= off + n);
    assert_memory_equal(b->data + off, want, n);
}

static void test_header_roundtrip(void **state)
{
    (void)state;
    const uint8_t raw[9] = {0x84, 0x0A, 0x80, 0x01, 0x08, 0x00, 0x01, 0x02, 0x03};
    cql_frame_header h;
    assert_int_equal(cql__header_decode(raw, 9, 0, &h), 0);
    assert_int_equal(h.version, 0x84);
    assert_int_equal(h.flags, CQL_FLAG_TRACING | CQL_FLAG_WARNING);
    assert_int_equal(h.stream, -32767); /* 0x8001 as signed short */
    assert_int_equal(h.opcode, CQL_OP_RESULT);
    assert_int_equal(h.length, 0x010203);
    uint8_t out[9];
    cql__header_encode(&h, out);
    assert_memory_equal(out, raw, 9);

    /* EVENT frames use stream -1 */
    const uint8_t ev[9] = {0x84, 0, 0xFF, 0xFF, 0x0C, 0, 0, 0, 0};
    assert_int_equal(cql__header_decode(ev, 9, 0, &h), 0);
    assert_int_equal(h.stream, -1);
    assert_int_equal(h.opcode, CQL_OP_EVENT);
}

static void test_header_rejects(void **state)
{
    (void)state;
    cql_frame_header h;
    uint8_t raw[9] = {0x83, 0, 0, 0, 0x08, 0, 0, 0, 0};
    assert_int_equal(cql__header_decode(raw, 9, 0, &h), MS_ERR_INVALID); /* v3 */
    raw[0] = 0x85;
    assert_int_equal(cql__header_decode(raw, 9, 0, &h), MS_ERR_INVALID); /* v5 */
    raw[0] = 0x84;
    assert_int_equal(cql__header_decode(raw, 8, 0, &h), MS_ERR_INVALID); /* short */
    /* 256 MB is the spec's limit */
    raw[5] = 0x10, raw[6] = 0x00, raw[7] = 0x00, raw[8] = 0x00; /* exactly 256 MiB */
    assert_int_equal(cql__header_decode(raw, 9, 0, &h), 0);
    raw[8] = 0x01;
    assert_int_equal(cql__header_decode(raw, 9, 0, &h), MS_ERR_TOO_LARGE);
    raw[5] = 0xFF; /* negative as int32 */
    assert_int_equal(cql__header_decode(raw, 9, 0, &h), MS_ERR_TOO_LARGE);
    /* configurable lower limit */
    raw[5] = 0, raw[6] = 0, raw[7] = 0x04, raw[8] = 0x01; /* 1025 */
    assert_int_equal(cql__header_decode(raw, 9, 1024, &h), MS_ERR_TOO_LARGE);
    assert_int_equal(cql__header_decode(raw, 9, 1025, &h), 0);
}

static void test_incremental_parse(void **state)
{
    (void)state;
    cql_buf b = {0};
    /* two frames back to back: READY (empty) and a RESULT Void */
    const uint8_t stream[] = {0x84, 0, 0,    1, 0x02, 0, 0, 0, 0, 0x84, 0,
                              0,    2, 0x08, 0, 0,    0, 4, 0, 0, 0,    1};
    size_t off = 0;
    int frames = 0;
    for (size_t avail = 0; avail <= sizeof stream; avail++) {
        for (;;) {
            cql_frame_header h;
            size_t flen, need;
            assert_int_equal(cql__frame_parse(stream + off, avail - off, 0, &h, &flen, &need), 0);
            if (flen == 0) {
                assert_true(need > avail - off);
                if (avail - off >= 9)
                    assert_int_equal(need, 9 + h.length);
                else
                    assert_int_equal(need, 9);
                break;
            }
            frames++;
            if (frames == 1) {
                assert_int_equal(h.opcode, CQL_OP_READY);
                assert_int_equal(flen, 9);
            } else {
                assert_int_equal(h.opcode, CQL_OP_RESULT);
                assert_int_equal(h.stream, 2);
                assert_int_equal(flen, 13);
            }
            off += flen;
        }
    }
    assert_int_equal(frames, 2);
    assert_int_equal(off, sizeof stream);
    /* a bad header is an error, not "need more" */
    const uint8_t bad[] = {0x42, 0, 0, 0, 0, 0, 0, 0, 0};
    cql_frame_header h;
    size_t flen;
    assert_int_equal(cql__frame_parse(bad, sizeof bad, 0, &h, &flen, NULL), MS_ERR_INVALID);
    cql_buf_free(&b);
}

static void test_startup_options(void **state)
{
    (void)state;
    cql_buf b = {0};
    const char *kv[] = {"CQL_VERSION", "3.0.0", "COMPRESSION", "lz4"};
    assert_int_equal(cql__enc_startup(&b, 0, kv, 2), 0);
    const uint8_t want[] = {0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x28, /* header */
                            0x00, 0x02,                                           /* 2 pairs */
                            0x00, 0x0B, 'C',  'Q',  'L',  '_',  'V',  'E',  'R',  'S',
                            'I',  'O',  'N',  0x00, 0x05, '3',  '.',  '0',  '.',  '0',
                            0x00, 0x0B, 'C',  'O',  'M',  'P',  'R',  'E',  'S',  'S',
                            'I',  'O',  'N',  0x00, 0x03, 'l',  'z',  '4'};
    assert_int_equal(b.len, sizeof want);
    assert_bytes(&b, 0, want, sizeof want);

    cql_buf_reset(&b);
    assert_int_equal(cql__enc_options(&b, 7), 0);
    const uint8_t opt[] = {0x04, 0, 0x00, 0x07, 0x05, 0, 0, 0, 0};
    assert_int_equal(b.len, 9);
    assert_bytes(&b, 0, opt, 9);
    cql_buf_free(&b);
}

static void test_auth_register_prepare(void **state)
{
    (void)state;
    cql_buf b = {0};
    assert_int_equal(cql__enc_auth_plain(&b, 1, "cassandra", "pw"), 0);
    const uint8_t want[] = {0x04, 0,   0,   1,   0x0F, 0,   0,   0,   17,  0,   0, 0,   13,
                            0,    'c', 'a', 's', 's',  'a', 'n', 'd', 'r', 'a', 0, 'p', 'w'};
    assert_int_equal(b.len, sizeof want);
    assert_bytes(&b, 0, want, sizeof want);

    cql_buf_reset(&b);
    assert_int_equal(cql__enc_auth_response(&b, 1, NULL, -1), 0); /* null token */
    const uint8_t nul[] = {0x04, 0, 0, 1, 0x0F, 0, 0, 0, 4, 0xFF, 0xFF, 0xFF, 0xFF};
    assert_int_equal(b.len, sizeof nul);
    assert_bytes(&b, 0, nul, sizeof nul);

    cql_buf_reset(&b);
    const char *ev[] = {"STATUS_CHANGE", "TOPOLOGY_CHANGE"};
    assert_int_equal(cql__enc_register(&b, 3, ev, 2), 0);
    cql_rd r = cql__rd(b.data + 9, b.len - 9);
    uint16_t n;
    cql_str s;
    assert_int_equal(b.data[4], CQL_OP_REGISTER);
    assert_int_equal(cql__be32(b.data + 5), b.len - 9);
    assert_int_equal(cql__rd_short(&r, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(cql__rd_string(&r, &s), 0);
    assert_true(cql_str_eq(s, "STATUS_CHANGE"));
    assert_int_equal(cql__rd_string(&r, &s), 0);
    assert_true(cql_str_eq(s, "TOPOLOGY_CHANGE"));
    assert_int_equal(cql__rd_left(&r), 0);

    cql_buf_reset(&b);
    const char *q = "SELECT * FROM t WHERE k = ?";
    assert_int_equal(cql__enc_prepare(&b, 9, CQL_FLAG_TRACING, q, strlen(q)), 0);
    assert_int_equal(b.data[1], CQL_FLAG_TRACING);
    assert_int_equal(b.data[4], CQL_OP_PREPARE);
    r = cql__rd(b.data + 9, b.len - 9);
    assert_int_equal(cql__rd_long_string(&r, &s), 0);
    assert_true(cql_str_eq(s, q));
    assert_int_equal(cql__rd_left(&r), 0);
    cql_buf_free(&b);
}

/* Parse <query_parameters> back (the test's own reading of 4.1.4). */
typedef struct parsed {
    uint16_t cl;
    uint8_t flags;
    uint16_t nvalues;
    cql_bytes values[8];
    int32_t page_size;
    cql_bytes paging_state;
    uint16_t serial;
    int64_t ts;
} parsed;

static void parse_params(cql_rd *r, parsed *p)
{
    memset(p, 0, sizeof *p);
    assert_int_equal(cql__rd_short(r, &p->cl), 0);
    assert_int_equal(cql__rd_byte(r, &p->flags), 0);
    if (p->flags & 0x01) {
        assert_int_equal(cql__rd_short(r, &p->nvalues), 0);
        assert_true(p->nvalues <= 8);
        for (int i = 0; i < p->nvalues; i++)
            assert_int_equal(cql__rd_bytes(r, &p->values[i]), 0);
    }
    if (p->flags & 0x04)
        assert_int_equal(cql__rd_int(r, &p->page_size), 0);
    if (p->flags & 0x08)
        assert_int_equal(cql__rd_bytes(r, &p->paging_state), 0);
    if (p->flags & 0x10)
        assert_int_equal(cql__rd_short(r, &p->serial), 0);
    if (p->flags & 0x20)
        assert_int_equal(cql__rd_long(r, &p->ts), 0);
    assert_int_equal(cql__rd_left(r), 0);
}

static void test_query_all_flags(void **state)
{
    (void)state;
    cql_buf b = {0};
    cql_values v;
    cql_values_init(&v);
    cql_values_add_int(&v, 42);
    cql_values_add_null(&v);
    cql_values_add_unset(&v);
    cql_values_add_text(&v, "hi", 2);
    assert_int_equal(cql_values_error(&v), 0);

    cql_query_params p;
    cql__query_params_init(&p);
    p.consistency = CQL_CONSISTENCY_LOCAL_QUORUM;
    p.values = &v;
    p.skip_metadata = true;
    p.page_size = 5000;
    const uint8_t ps[] = {1, 2, 3};
    p.paging_state.ptr = ps;
    p.paging_state.len = 3;
    p.serial_consistency = CQL_CONSISTENCY_LOCAL_SERIAL;
    p.timestamp = 1700000000000000LL;
    const char *q = "INSERT INTO t (a,b,c,d) VALUES (?,?,?,?)";
    assert_int_equal(cql__enc_query(&b, 5, 0, q, strlen(q), &p), 0);

    cql_frame_header h;
    size_t flen;
    assert_int_equal(cql__frame_parse(b.data, b.len, 0, &h, &flen, NULL), 0);
    assert_int_equal(flen, b.len);
    assert_int_equal(h.version, 0x04);
    assert_int_equal(h.stream, 5);
    assert_int_equal(h.opcode, CQL_OP_QUERY);
    cql_rd r = cql__rd(b.data + 9, h.length);
    cql_str s;
    assert_int_equal(cql__rd_long_string(&r, &s), 0);
    assert_true(cql_str_eq(s, q));
    parsed x;
    parse_params(&r, &x);
    assert_int_equal(x.cl, 0x0006);
    assert_int_equal(x.flags, 0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x20);
    assert_int_equal(x.nvalues, 4);
    assert_int_equal(x.values[0].len, 4);
    assert_int_equal(cql__be32(x.values[0].ptr), 42);
    assert_int_equal(x.values[1].len, -1);
    assert_int_equal(x.values[2].len, -2);
    assert_int_equal(x.values[3].len, 2);
    assert_memory_equal(x.values[3].ptr, "hi", 2);
    assert_int_equal(x.page_size, 5000);
    assert_int_equal(x.paging_state.len, 3);
    assert_memory_equal(x.paging_state.ptr, ps, 3);
    assert_int_equal(x.serial, 0x0009);
    assert_true(x.ts == 1700000000000000LL);

    /* minimal QUERY: exact bytes */
    cql_buf_reset(&b);
    cql__query_params_init(&p);
    assert_int_equal(cql__enc_query(&b, 0, 0, "USE ks", 6, &p), 0);
    const uint8_t want[] = {0x04, 0, 0,   0,   0x07, 0,   0,   0,   13,   0,    0,
                            0,    6, 'U', 'S', 'E',  ' ', 'k', 's', 0x00, 0x01, 0x00};
    assert_int_equal(b.len, sizeof want);
    assert_bytes(&b, 0, want, sizeof want);

    /* negative default timestamp is forbidden by the spec */
    cql_buf_reset(&b);
    p.timestamp = -5;
    assert_int_equal(cql__enc_query(&b, 0, 0, "x", 1, &p), MS_ERR_INVALID);
    assert_int_equal(b.len, 0);
    /* values with a recorded error are refused, nothing written */
    cql__query_params_init(&p);
    cql_values_add_inet(&v, (const uint8_t *)"abc", 3);
    p.values = &v;
    assert_int_equal(cql__enc_query(&b, 0, 0, "x", 1, &p), MS_ERR_INVALID);
    assert_int_equal(b.len, 0);
    cql_values_free(&v);
    cql_buf_free(&b);
}

static void test_execute(void **state)
{
    (void)state;
    cql_buf b = {0};
    cql_values v;
    cql_values_init(&v);
    cql_values_add_bigint(&v, -2);
    const uint8_t id[16] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    cql_query_params p;
    cql__query_params_init(&p);
    p.consistency = CQL_CONSISTENCY_QUORUM;
    p.values = &v;
    p.skip_metadata = true;
    assert_int_equal(cql__enc_execute(&b, 300, CQL_FLAG_TRACING, id, 16, &p), 0);
    assert_int_equal(b.data[1], CQL_FLAG_TRACING);
    assert_int_equal(cql__be16(b.data + 2), 300);
    assert_int_equal(b.data[4], CQL_OP_EXECUTE);
    cql_rd r = cql__rd(b.data + 9, b.len - 9);
    cql_bytes got;
    assert_int_equal(cql__rd_short_bytes(&r, &got), 0);
    assert_int_equal(got.len, 16);
    assert_memory_equal(got.ptr, id, 16);
    parsed x;
    parse_params(&r, &x);
    assert_int_equal(x.cl, 4);
    assert_int_equal(x.flags, 0x03);
    assert_int_equal(x.nvalues, 1);
    assert_int_equal(x.values[0].len, 8);
    assert_true((int64_t)cql__be64(x.values[0].ptr) == -2);
    assert_int_equal(cql__enc_execute(&b, 1, 0, id, 0, &p), MS_ERR_INVALID);
    cql_values_free(&v);
    cql_buf_free(&b);
}

static void test_batch(void **state)
{
    (void)state;
    cql_buf b = {0};
    cql_values v1, v2;
    cql_values_init(&v1);
    cql_values_init(&v2);
    cql_values_add_int(&v1, 1);
    cql_values_add_text(&v2, "x", 1);
    cql_values_add_null(&v2);
    const uint8_t id[2] = {0xAB, 0xCD};
    cql_batch_entry e[3] = {
        {.query = "INSERT INTO t (k) VALUES (?)", .query_len = 28, .values = &v1},
        {.id = id, .id_len = 2, .values = &v2},
        {.query = "DELETE FROM t WHERE k = 0", .query_len = 25},
    };
    for (uint8_t type = CQL_BATCH_LOGGED; type <= CQL_BATCH_COUNTER; type++) {
        cql_buf_reset(&b);
        cql_batch batch = {.type = type,
                           .entries = e,
                           .count = 3,
                           .consistency = CQL_CONSISTENCY_ONE,
                           .serial_consistency = CQL_CONSISTENCY_SERIAL,
                           .timestamp = 123};
        assert_int_equal(cql__enc_batch(&b, 2, 0, &batch), 0);
        assert_int_equal(b.data[4], CQL_OP_BATCH);
        cql_rd r = cql__rd(b.data + 9, b.len - 9);
        uint8_t t, kind, flags;
        uint16_t n, nv, cl, serial;
        cql_str s;
        cql_bytes by;
        int64_t ts;
        assert_int_equal(cql__rd_byte(&r, &t), 0);
        assert_int_equal(t, type);
        assert_int_equal(cql__rd_short(&r, &n), 0);
        assert_int_equal(n, 3);
        /* entry 0: query string with one value */
        assert_int_equal(cql__rd_byte(&r, &kind), 0);
        assert_int_equal(kind, 0);
        assert_int_equal(cql__rd_long_string(&r, &s), 0);
        assert_true(cql_str_eq(s, "INSERT INTO t (k) VALUES (?)"));
        assert_int_equal(cql__rd_short(&r, &nv), 0);
        assert_int_equal(nv, 1);
        assert_int_equal(cql__rd_bytes(&r, &by), 0);
        assert_int_equal(by.len, 4);
        /* entry 1: prepared id with two values */
        assert_int_equal(cql__rd_byte(&r, &kind), 0);
        assert_int_equal(kind, 1);
        assert_int_equal(cql__rd_short_bytes(&r, &by), 0);
        assert_int_equal(by.len, 2);
        assert_memory_equal(by.ptr, id, 2);
        assert_int_equal(cql__rd_short(&r, &nv), 0);
        assert_int_equal(nv, 2);
        assert_int_equal(cql__rd_bytes(&r, &by), 0);
        assert_int_equal(by.len, 1);
        assert_int_equal(cql__rd_bytes(&r, &by), 0);
        assert_int_equal(by.len, -1);
        /* entry 2: no values */
        assert_int_equal(cql__rd_byte(&r, &kind), 0);
        assert_int_equal(kind, 0);
        assert_int_equal(cql__rd_long_string(&r, &s), 0);
        assert_int_equal(cql__rd_short(&r, &nv), 0);
        assert_int_equal(nv, 0);
        /* trailer */
        assert_int_equal(cql__rd_short(&r, &cl), 0);
        assert_int_equal(cl, 1);
        assert_int_equal(cql__rd_byte(&r, &flags), 0);
        assert_int_equal(flags, 0x30);
        assert_int_equal(cql__rd_short(&r, &serial), 0);
        assert_int_equal(serial, 8);
        assert_int_equal(cql__rd_long(&r, &ts), 0);
        assert_int_equal(ts, 123);
        assert_int_equal(cql__rd_left(&r), 0);
    }
    cql_batch empty = {.type = 0, .entries = e, .count = 0};
    assert_int_equal(cql__enc_batch(&b, 2, 0, &empty), MS_ERR_INVALID);
    cql_batch badtype = {.type = 3, .entries = e, .count = 1, .timestamp = CQL_NO_TIMESTAMP};
    assert_int_equal(cql__enc_batch(&b, 2, 0, &badtype), MS_ERR_INVALID);
    cql_values_free(&v1);
    cql_values_free(&v2);
    cql_buf_free(&b);
}

static void test_frames_append(void **state)
{
    (void)state;
    /* several frames in one buffer (a write batch); a failing one leaves the others intact */
    cql_buf b = {0};
    assert_int_equal(cql__enc_options(&b, 1), 0);
    cql_query_params p;
    cql__query_params_init(&p);
    assert_int_equal(cql__enc_query(&b, 2, 0, "SELECT 1", 8, &p), 0);
    size_t len = b.len;
    char *huge = malloc(70000);
    assert_non_null(huge);
    memset(huge, 'a', 70000);
    const char *ev[] = {huge};
    huge[69999] = '\0';
    assert_int_equal(cql__enc_register(&b, 3, ev, 1), MS_ERR_TOO_LARGE); /* [string] > 65535 */
    assert_int_equal(b.len, len);
    assert_int_equal(b.err, 0);
    free(huge);
    cql_frame_header h;
    size_t flen;
    assert_int_equal(cql__frame_parse(b.data, b.len, 0, &h, &flen, NULL), 0);
    assert_int_equal(h.stream, 1);
    assert_int_equal(cql__frame_parse(b.data + flen, b.len - flen, 0, &h, &flen, NULL), 0);
    assert_int_equal(h.stream, 2);
    cql_buf_free(&b);
}

static void test_lz4_roundtrip(void **state)
{
    (void)state;
    cql_buf c = {0}, d = {0};
    /* compressible and incompressible inputs, and sizes around block boundaries */
    size_t sizes[] = {1, 15, 16, 100, 4096, 65536, 300000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        uint8_t *in = malloc(n);
        assert_non_null(in);
        uint32_t x = 12345;
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            in[i] = (k % 2) ? (uint8_t)(x >> 16) : (uint8_t)(i % 7);
        }
        cql_buf_reset(&c);
        cql_buf_reset(&d);
        assert_int_equal(cql__lz4_compress(&c, in, n), 0);
        assert_int_equal(cql__be32(c.data), n); /* 4-byte big-endian uncompressed length */
        assert_int_equal(cql__lz4_decompress(&d, c.data, c.len, 0), 0);
        assert_int_equal(d.len, n);
        assert_memory_equal(d.data, in, n);
        /* declared length over the cap */
        if (n > 1)
            assert_int_equal(cql__lz4_decompress(&d, c.data, c.len, n - 1), MS_ERR_TOO_LARGE);
        /* wrong declared length */
        cql__wbe32(c.data, (uint32_t)n + 1);
        size_t before = d.len;
        assert_int_equal(cql__lz4_decompress(&d, c.data, c.len, 0), MS_ERR_INVALID);
        assert_int_equal(d.len, before);
        /* truncated block */
        cql__wbe32(c.data, (uint32_t)n);
        assert_int_equal(cql__lz4_decompress(&d, c.data, c.len - 1, 0), MS_ERR_INVALID);
        free(in);
    }
    /* a claim of 200 MB from 10 bytes is rejected before allocating */
    const uint8_t bomb[] = {0x0C, 0x00, 0x00, 0x00, 0x1F, 0, 1, 0, 0, 0};
    cql_buf_reset(&d);
    assert_int_equal(cql__lz4_decompress(&d, bomb, sizeof bomb, 0), MS_ERR_INVALID);
    assert_int_equal(d.len, 0);
    assert_int_equal(cql__lz4_decompress(&d, bomb, 3, 0), MS_ERR_INVALID);
    const uint8_t huge[] = {0x7F, 0xFF, 0xFF, 0xFF, 0};
    assert_int_equal(cql__lz4_decompress(&d, huge, sizeof huge, 0), MS_ERR_TOO_LARGE);
    cql_buf_free(&c);
    cql_buf_free(&d);
}

static void test_frame_compress(void **state)
{
    (void)state;
    cql_buf b = {0}, scratch = {0}, d = {0};
    cql_query_params p;
    cql__query_params_init(&p);
    char q[2000];
    memset(q, 'a', sizeof q);
    memcpy(q, "SELECT ", 7);
    assert_int_equal(cql__enc_options(&b, 1), 0); /* an earlier frame stays untouched */
    size_t start = b.len;
    assert_int_equal(cql__enc_query(&b, 4, 0, q, sizeof q, &p), 0);
    size_t plain_len = b.len - start - 9;
    uint8_t *plain = malloc(plain_len);
    memcpy(plain, b.data + start + 9, plain_len);
    assert_int_equal(cql__frame_compress(&b, start, &scratch), 0);
    cql_frame_header h;
    size_t flen;
    assert_int_equal(cql__frame_parse(b.data + start, b.len - start, 0, &h, &flen, NULL), 0);
    assert_int_equal(flen, b.len - start);
    assert_true(h.flags & CQL_FLAG_COMPRESSION);
    assert_true(h.length < plain_len);
    assert_int_equal(cql__lz4_decompress(&d, b.data + start + 9, h.length, 0), 0);
    assert_int_equal(d.len, plain_len);
    assert_memory_equal(d.data, plain, plain_len);
    /* empty bodies stay uncompressed */
    size_t s2 = b.len;
    assert_int_equal(cql__enc_options(&b, 2), 0);
    assert_int_equal(cql__frame_compress(&b, s2, &scratch), 0);
    assert_int_equal(b.data[s2 + 1], 0);
    assert_int_equal(b.len, s2 + 9);
    free(plain);
    cql_buf_free(&b);
    cql_buf_free(&scratch);
    cql_buf_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_roundtrip),
        cmocka_unit_test(test_header_rejects),
        cmocka_unit_test(test_incremental_parse),
        cmocka_unit_test(test_startup_options),
        cmocka_unit_test(test_auth_register_prepare),
        cmocka_unit_test(test_query_all_flags),
        cmocka_unit_test(test_execute),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_frames_append),
        cmocka_unit_test(test_lz4_roundtrip),
        cmocka_unit_test(test_frame_compress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
