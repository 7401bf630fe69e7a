/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CQL types: every type goes through the value builder, into a Rows result
 * (row cells have the same [bytes] layout as bound values) and back out
 * through the typed getters and the generic value tree. Plus the byte-exact
 * encodings of section 6 (varint examples of 6.23, date epoch of 6.5) and
 * varint/decimal strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "cql/proto.h"
#include "cql/wire.h"

#define S(b, s) cql__put_string(b, s, strlen(s))

/* Column types of the test row, in order. Composite types are written raw. */
enum {
    C_ASCII,
    C_TEXT,
    C_BIGINT,
    C_INT,
    C_SMALLINT,
    C_TINYINT,
    C_COUNTER,
    C_BOOL,
    C_BLOB,
    C_UUID,
    C_TIMEUUID,
    C_TIMESTAMP,
    C_DATE,
    C_TIME,
    C_DOUBLE,
    C_FLOAT,
    C_DECIMAL,
    C_VARINT,
    C_INET4,
    C_INET6,
    C_LIST,
    C_SET,
    C_MAP,
    C_TUPLE,
    C_UDT,
    C_NULL_INT,
    C_EMPTY_INT,
    C_NESTED,
    NCOLS
};

static void put_type(cql_buf *b, int c)
{
    switch (c) {
    case C_ASCII:
        cql__put_short(b, CQL_TYPE_ASCII);
        break;
    case C_TEXT:
        cql__put_short(b, CQL_TYPE_VARCHAR);
        break;
    case C_BIGINT:
        cql__put_short(b, CQL_TYPE_BIGINT);
        break;
    case C_INT:
    case C_NULL_INT:
    case C_EMPTY_INT:
        cql__put_short(b, CQL_TYPE_INT);
        break;
    case C_SMALLINT:
        cql__put_short(b, CQL_TYPE_SMALLINT);
        break;
    case C_TINYINT:
        cql__put_short(b, CQL_TYPE_TINYINT);
        break;
    case C_COUNTER:
        cql__put_short(b, CQL_TYPE_COUNTER);
        break;
    case C_BOOL:
        cql__put_short(b, CQL_TYPE_BOOLEAN);
        break;
    case C_BLOB:
        cql__put_short(b, CQL_TYPE_BLOB);
        break;
    case C_UUID:
        cql__put_short(b, CQL_TYPE_UUID);
        break;
    case C_TIMEUUID:
        cql__put_short(b, CQL_TYPE_TIMEUUID);
        break;
    case C_TIMESTAMP:
        cql__put_short(b, CQL_TYPE_TIMESTAMP);
        break;
    case C_DATE:
        cql__put_short(b, CQL_TYPE_DATE);
        break;
    case C_TIME:
        cql__put_short(b, CQL_TYPE_TIME);
        break;
    case C_DOUBLE:
        cql__put_short(b, CQL_TYPE_DOUBLE);
        break;
    case C_FLOAT:
        cql__put_short(b, CQL_TYPE_FLOAT);
        break;
    case C_DECIMAL:
        cql__put_short(b, CQL_TYPE_DECIMAL);
        break;
    case C_VARINT:
        cql__put_short(b, CQL_TYPE_VARINT);
        break;
    case C_INET4:
    case C_INET6:
        cql__put_short(b, CQL_TYPE_INET);
        break;
    case C_LIST:
        cql__put_short(b, CQL_TYPE_LIST);
        cql__put_short(b, CQL_TYPE_INT);
        break;
    case C_SET:
        cql__put_short(b, CQL_TYPE_SET);
        cql__put_short(b, CQL_TYPE_VARCHAR);
        break;
    case C_MAP:
        cql__put_short(b, CQL_TYPE_MAP);
        cql__put_short(b, CQL_TYPE_VARCHAR);
        cql__put_short(b, CQL_TYPE_BIGINT);
        break;
    case C_TUPLE:
        cql__put_short(b, CQL_TYPE_TUPLE);
        cql__put_short(b, 3);
        cql__put_short(b, CQL_TYPE_INT);
        cql__put_short(b, CQL_TYPE_VARCHAR);
        cql__put_short(b, CQL_TYPE_DOUBLE);
        break;
    case C_UDT:
        cql__put_short(b, CQL_TYPE_UDT);
        S(b, "ks");
        S(b, "attachment");
        cql__put_short(b, 3);
        S(b, "url");
        cql__put_short(b, CQL_TYPE_VARCHAR);
        S(b, "size");
        cql__put_short(b, CQL_TYPE_BIGINT);
        S(b, "extra"); /* omitted at the end of the value: null */
        cql__put_short(b, CQL_TYPE_INT);
        break;
    case C_NESTED: /* map<int, frozen<list<frozen<set<text>>>>> */
        cql__put_short(b, CQL_TYPE_MAP);
        cql__put_short(b, CQL_TYPE_INT);
        cql__put_short(b, CQL_TYPE_LIST);
        cql__put_short(b, CQL_TYPE_SET);
        cql__put_short(b, CQL_TYPE_VARCHAR);
        break;
    }
}

static const uint8_t U1[16] = {0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b, 0x41, 0xd4,
                               0xa7, 0x16, 0x44, 0x66, 0x55, 0x44, 0x00, 0x00};
static const uint8_t U2[16] = {0xd2, 0x17, 0x7d, 0xd0, 0xea, 0xa2, 0x11, 0xde,
                               0xa5, 0x72, 0x00, 0x1b, 0x77, 0x9c, 0x76, 0xe3};

static void bind_all(cql_values *v)
{
    cql_values_add_text(v, "plain ascii", 11);
    cql_values_add_text(v, "zażółć 🙂", strlen("zażółć 🙂"));
    cql_values_add_bigint(v, INT64_MIN);
    cql_values_add_int(v, -123456789);
    cql_values_add_smallint(v, -32768);
    cql_values_add_tinyint(v, -128);
    cql_values_add_bigint(v, 987654321012LL);
    cql_values_add_bool(v, true);
    cql_values_add_blob(v, "\x00\x01\xfe\xff", 4);
    cql_values_add_uuid(v, U1);
    cql_values_add_uuid(v, U2);
    cql_values_add_timestamp(v, 1700000000123LL);
    cql_values_add_date(v, cql_date_from_days(19000));
    cql_values_add_time(v, 86399999999999LL);
    cql_values_add_double(v, -1.5e300);
    cql_values_add_float(v, 3.25f);
    cql_values_add_decimal_i64(v, 2, -12345); /* -123.45 */
    cql_values_add_varint_i64(v, 128);
    cql_values_add_inet(v, (const uint8_t *)"\xc0\xa8\x00\x01", 4);
    cql_values_add_inet(v, (const uint8_t *)"\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
    cql_values_begin_list(v);
    for (int i = 1; i <= 3; i++)
        cql_values_add_int(v, i * 10);
    cql_values_end(v);
    cql_values_begin_list(v); /* sets use the list layout */
    cql_values_add_text(v, "a", 1);
    cql_values_add_text(v, "b", 1);
    cql_values_end(v);
    cql_values_begin_map(v);
    cql_values_add_text(v, "one", 3);
    cql_values_add_bigint(v, 1);
    cql_values_add_text(v, "two", 3);
    cql_values_add_bigint(v, 2);
    cql_values_end(v);
    cql_values_begin_tuple(v);
    cql_values_add_int(v, 7);
    cql_values_add_null(v);
    cql_values_add_double(v, 0.5);
    cql_values_end(v);
    cql_values_begin_tuple(v); /* UDT: 2 of 3 fields */
    cql_values_add_text(v, "https://x", 9);
    cql_values_add_bigint(v, 4096);
    cql_values_end(v);
    cql_values_add_null(v);
    cql_values_add_blob(v, "", 0); /* legacy empty int */
    cql_values_begin_map(v);
    cql_values_add_int(v, 1);
    cql_values_begin_list(v);
    cql_values_begin_list(v);
    cql_values_add_text(v, "x", 1);
    cql_values_end(v);
    cql_values_begin_list(v);
    cql_values_end(v);
    cql_values_end(v);
    cql_values_end(v);
}

/* One-row Rows body: metadata for every column, then the bound values as the row. */
static void build_result(cql_buf *b, const cql_values *v)
{
    cql__put_int(b, CQL_RESULT_ROWS);
    cql__put_int(b, CQL_META_GLOBAL_TABLES_SPEC);
    cql__put_int(b, NCOLS);
    S(b, "ks");
    S(b, "all_types");
    for (int c = 0; c < NCOLS; c++) {
        char name[16];
        snprintf(name, sizeof name, "c%d", c);
        S(b, name);
        put_type(b, c);
    }
    cql__put_int(b, 1);
    cql_buf_append(b, v->buf.data, v->buf.len);
}

static void test_all_types_roundtrip(void **state)
{
    (void)state;
    cql_values v;
    cql_values_init(&v);
    bind_all(&v);
    assert_int_equal(cql_values_error(&v), 0);
    assert_int_equal(v.count, NCOLS);
    cql_buf b = {0};
    build_result(&b, &v);
    cql_result r;
    assert_int_equal(cql__result_decode(&r, b.data, b.len, NULL, NULL), 0);
    assert_int_equal(cql_result_next_row(&r), 0);

    cql_str s;
    assert_int_equal(cql_row_get_text(&r, C_ASCII, &s), 0);
    assert_true(cql_str_eq(s, "plain ascii"));
    assert_int_equal(cql_row_get_text(&r, C_TEXT, &s), 0);
    assert_true(cql_str_eq(s, "zażółć 🙂"));
    int64_t i64;
    assert_int_equal(cql_row_get_bigint(&r, C_BIGINT, &i64), 0);
    assert_true(i64 == INT64_MIN);
    assert_int_equal(cql_row_get_bigint(&r, C_COUNTER, &i64), 0);
    assert_true(i64 == 987654321012LL);
    int32_t i32;
    assert_int_equal(cql_row_get_int(&r, C_INT, &i32), 0);
    assert_int_equal(i32, -123456789);
    int16_t i16;
    assert_int_equal(cql_row_get_smallint(&r, C_SMALLINT, &i16), 0);
    assert_int_equal(i16, -32768);
    int8_t i8;
    assert_int_equal(cql_row_get_tinyint(&r, C_TINYINT, &i8), 0);
    assert_int_equal(i8, -128);
    bool bo;
    assert_int_equal(cql_row_get_bool(&r, C_BOOL, &bo), 0);
    assert_true(bo);
    cql_bytes by;
    assert_int_equal(cql_row_get_blob(&r, C_BLOB, &by), 0);
    assert_int_equal(by.len, 4);
    assert_memory_equal(by.ptr, "\x00\x01\xfe\xff", 4);
    uint8_t u[16];
    assert_int_equal(cql_row_get_uuid(&r, C_UUID, u), 0);
    assert_memory_equal(u, U1, 16);
    assert_int_equal(cql_row_get_uuid(&r, C_TIMEUUID, u), 0);
    assert_memory_equal(u, U2, 16);
    assert_int_equal(cql_row_get_timestamp(&r, C_TIMESTAMP, &i64), 0);
    assert_true(i64 == 1700000000123LL);
    uint32_t d;
    assert_int_equal(cql_row_get_date(&r, C_DATE, &d), 0);
    assert_int_equal(cql_date_to_days(d), 19000);
    assert_int_equal(cql_row_get_time(&r, C_TIME, &i64), 0);
    assert_true(i64 == 86399999999999LL);
    double dbl;
    assert_int_equal(cql_row_get_double(&r, C_DOUBLE, &dbl), 0);
    assert_true(dbl == -1.5e300);
    float fl;
    assert_int_equal(cql_row_get_float(&r, C_FLOAT, &fl), 0);
    assert_true(fl == 3.25f);
    char str[64];
    assert_int_equal(cql_row_raw(&r, C_DECIMAL, &by), 0);
    assert_int_equal(cql_decimal_to_string(by, str, sizeof str), 7);
    assert_string_equal(str, "-123.45");
    assert_int_equal(cql_row_get_varint_i64(&r, C_VARINT, &i64), 0);
    assert_int_equal(i64, 128);
    uint8_t addr[16];
    size_t alen;
    assert_int_equal(cql_row_get_inet(&r, C_INET4, addr, &alen), 0);
    assert_int_equal(alen, 4);
    assert_memory_equal(addr, "\xc0\xa8\x00\x01", 4);
    assert_int_equal(cql_row_get_inet(&r, C_INET6, addr, &alen), 0);
    assert_int_equal(alen, 16);
    assert_int_equal(addr[15], 1);
    assert_int_equal(cql_row_get_int(&r, C_NULL_INT, &i32), MS_ERR_NOT_FOUND);
    assert_int_equal(cql_row_get_int(&r, C_EMPTY_INT, &i32), MS_ERR_NOT_FOUND);

    /* type mismatches */
    assert_int_equal(cql_row_get_int(&r, C_BIGINT, &i32), MS_ERR_UNPROCESSABLE);
    assert_int_equal(cql_row_get_bigint(&r, C_TIMESTAMP, &i64), MS_ERR_UNPROCESSABLE);
    assert_int_equal(cql_row_get_text(&r, C_BLOB, &s), MS_ERR_UNPROCESSABLE);
    assert_int_equal(cql_row_get_uuid(&r, C_TEXT, u), MS_ERR_UNPROCESSABLE);
    assert_int_equal(cql_row_get_double(&r, C_FLOAT, &dbl), MS_ERR_UNPROCESSABLE);

    /* collections without a tree */
    assert_int_equal(cql_row_raw(&r, C_LIST, &by), 0);
    cql_coll_iter it;
    uint32_t n;
    assert_int_equal(cql_coll_begin(&it, by, false, &n), 0);
    assert_int_equal(n, 3);
    for (int k = 1; k <= 3; k++) {
        cql_bytes e;
        assert_int_equal(cql_coll_next(&it, &e), 0);
        assert_int_equal(cql_decode_int(e, &i32), 0);
        assert_int_equal(i32, k * 10);
    }
    cql_bytes e;
    assert_int_equal(cql_coll_next(&it, &e), MS_ERR_NOT_FOUND);

    /* the generic tree */
    cql_arena a;
    cql_arena_init(&a);
    cql_value val;
    assert_int_equal(cql_row_get_value(&r, C_MAP, &a, &val), 0);
    assert_int_equal(val.type->id, CQL_TYPE_MAP);
    assert_int_equal(val.v.coll.n, 2);
    assert_int_equal(val.v.coll.items[2].v.raw.len, 3);
    assert_memory_equal(val.v.coll.items[2].v.raw.ptr, "two", 3);
    assert_int_equal(val.v.coll.items[3].v.i, 2);
    assert_int_equal(cql_row_get_value(&r, C_SET, &a, &val), 0);
    assert_int_equal(val.v.coll.n, 2);
    assert_int_equal(cql_row_get_value(&r, C_TUPLE, &a, &val), 0);
    assert_int_equal(val.v.coll.n, 3);
    assert_int_equal(val.v.coll.items[0].v.i, 7);
    assert_true(val.v.coll.items[1].is_null);
    assert_true(val.v.coll.items[2].v.d == 0.5);
    assert_int_equal(cql_row_get_value(&r, C_UDT, &a, &val), 0);
    assert_int_equal(val.v.coll.n, 3);
    assert_true(cql_str_eq(val.type->field_names[1], "size"));
    assert_int_equal(val.v.coll.items[1].v.i, 4096);
    assert_true(val.v.coll.items[2].is_null); /* omitted trailing field */
    assert_int_equal(cql_row_get_value(&r, C_NESTED, &a, &val), 0);
    assert_int_equal(val.v.coll.n, 1);
    assert_int_equal(val.v.coll.items[0].v.i, 1);
    const cql_value *lst = &val.v.coll.items[1];
    assert_int_equal(lst->type->id, CQL_TYPE_LIST);
    assert_int_equal(lst->v.coll.n, 2);
    assert_int_equal(lst->v.coll.items[0].v.coll.n, 1);
    assert_int_equal(lst->v.coll.items[1].v.coll.n, 0);
    assert_int_equal(cql_row_get_value(&r, C_UUID, &a, &val), 0);
    assert_memory_equal(val.v.uuid, U1, 16);
    assert_int_equal(cql_row_get_value(&r, C_INET6, &a, &val), 0);
    assert_int_equal(val.v.inet.len, 16);
    assert_int_equal(cql_row_get_value(&r, C_EMPTY_INT, &a, &val), 0);
    assert_true(val.is_null);
    assert_int_equal(cql_row_get_value(&r, C_DATE, &a, &val), 0);
    assert_int_equal(val.v.i, (int64_t)cql_date_from_days(19000));
    for (int c = 0; c < NCOLS; c++)
        assert_int_equal(cql_row_get_value(&r, c, &a, &val), 0);
    cql_arena_free(&a);

    assert_int_equal(cql_result_next_row(&r), MS_ERR_NOT_FOUND);
    cql_result_free(&r);
    cql_buf_free(&b);
    cql_values_free(&v);
}

static void test_builder_bytes(void **state)
{
    (void)state;
    cql_values v;
    cql_values_init(&v);
    cql_values_add_unset(&v);
    cql_values_add_null(&v);
    cql_values_begin_map(&v);
    cql_values_add_int(&v, 1);
    cql_values_add_bool(&v, false);
    cql_values_end(&v);
    const uint8_t want[] = {0xFF, 0xFF, 0xFF, 0xFE, /* unset */
                            0xFF, 0xFF, 0xFF, 0xFF, /* null */
                            0,    0,    0,    17,   /* map: 17 bytes */
                            0,    0,    0,    1,    /* 1 pair */
                            0,    0,    0,    4,    0, 0, 0, 1, 0, 0, 0, 1, 0};
    assert_int_equal(cql_values_error(&v), 0);
    assert_int_equal(v.count, 3);
    assert_int_equal(v.buf.len, sizeof want);
    assert_memory_equal(v.buf.data, want, sizeof want);

    /* misuse is recorded, not crashed on */
    cql_values_reset(&v);
    cql_values_begin_list(&v);
    assert_int_equal(cql_values_error(&v), MS_ERR_INVALID); /* left open */
    cql_values_add_unset(&v);                               /* unset inside a collection */
    assert_int_equal(cql_values_error(&v), MS_ERR_INVALID);
    cql_values_reset(&v);
    cql_values_end(&v);
    assert_int_equal(cql_values_error(&v), MS_ERR_INVALID);
    cql_values_reset(&v);
    cql_values_begin_map(&v);
    cql_values_add_int(&v, 1);
    cql_values_end(&v); /* key without a value */
    assert_int_equal(cql_values_error(&v), MS_ERR_INVALID);
    cql_values_reset(&v);
    for (int i = 0; i <= CQL_VALUES_MAX_DEPTH; i++)
        cql_values_begin_list(&v);
    assert_int_equal(cql_values_error(&v), MS_ERR_TOO_LARGE);
    cql_values_reset(&v);
    cql_values_add_time(&v, -1);
    assert_int_equal(cql_values_error(&v), MS_ERR_INVALID);
    cql_values_reset(&v);
    for (int i = 0; i < 65535; i++)
        cql_values_add_null(&v);
    assert_int_equal(cql_values_error(&v), 0);
    cql_values_add_null(&v);
    assert_int_equal(cql_values_error(&v), MS_ERR_TOO_LARGE);
    cql_values_reset(&v);
    assert_int_equal(cql_values_error(&v), 0);
    assert_int_equal(v.count, 0);
    cql_values_free(&v);
}

static void test_varint(void **state)
{
    (void)state;
    /* native_protocol_v4.spec section 6.23 examples */
    struct {
        int64_t x;
        const char *enc;
        size_t len;
    } ex[] = {{0, "\x00", 1},       {1, "\x01", 1},  {127, "\x7F", 1},  {128, "\x00\x80", 2},
              {129, "\x00\x81", 2}, {-1, "\xFF", 1}, {-128, "\x80", 1}, {-129, "\xFF\x7F", 2}};
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        uint8_t out[8];
        size_t n = cql_varint_from_i64(ex[i].x, out);
        assert_int_equal(n, ex[i].len);
        assert_memory_equal(out, ex[i].enc, n);
        cql_bytes b = {out, (int32_t)n};
        int64_t back;
        assert_int_equal(cql_varint_to_i64(b, &back), 0);
        assert_true(back == ex[i].x);
        char s[32];
        assert_true(cql_varint_to_string(b, s, sizeof s) > 0);
        char want[32];
        snprintf(want, sizeof want, "%lld", (long long)ex[i].x);
        assert_string_equal(s, want);
    }
    int64_t extremes[] = {INT64_MIN, INT64_MAX, INT64_MIN + 1, 1LL << 40, -(1LL << 40)};
    for (size_t i = 0; i < 5; i++) {
        uint8_t out[8];
        size_t n = cql_varint_from_i64(extremes[i], out);
        int64_t back;
        cql_bytes b = {out, (int32_t)n};
        assert_int_equal(cql_varint_to_i64(b, &back), 0);
        assert_true(back == extremes[i]);
        char s[32], want[32];
        assert_true(cql_varint_to_string(b, s, sizeof s) > 0);
        snprintf(want, sizeof want, "%lld", (long long)extremes[i]);
        assert_string_equal(s, want);
    }
    /* beyond 64 bits */
    const uint8_t two64[] = {0x01, 0, 0, 0, 0, 0, 0, 0, 0};
    cql_bytes b = {two64, 9};
    int64_t x;
    assert_int_equal(cql_varint_to_i64(b, &x), MS_ERR_TOO_LARGE);
    char s[80];
    assert_int_equal(cql_varint_to_string(b, s, sizeof s), 20);
    assert_string_equal(s, "18446744073709551616");
    const uint8_t neg2_64[] = {0xFF, 0, 0, 0, 0, 0, 0, 0, 0}; /* -2^64 */
    b.ptr = neg2_64;
    assert_int_equal(cql_varint_to_string(b, s, sizeof s), 21);
    assert_string_equal(s, "-18446744073709551616");
    /* 10^30 = 0x0c9f2c9cd04674edea40000000 */
    const uint8_t e30[] = {0x0c, 0x9f, 0x2c, 0x9c, 0xd0, 0x46, 0x74, 0xed, 0xea, 0x40, 0, 0, 0};
    b.ptr = e30;
    b.len = sizeof e30;
    assert_int_equal(cql_varint_to_string(b, s, sizeof s), 31);
    assert_string_equal(s, "1000000000000000000000000000000");
    assert_int_equal(cql_varint_to_string(b, s, 10), MS_ERR_TOO_LARGE);
    /* redundant sign bytes are accepted */
    const uint8_t padded[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05};
    b.ptr = padded;
    b.len = sizeof padded;
    assert_int_equal(cql_varint_to_i64(b, &x), 0);
    assert_int_equal(x, 5);
    b.len = 0;
    assert_int_equal(cql_varint_to_i64(b, &x), MS_ERR_INVALID);
    b.len = -1;
    assert_int_equal(cql_varint_to_i64(b, &x), MS_ERR_NOT_FOUND);
}

static void test_decimal_strings(void **state)
{
    (void)state;
    struct {
        int32_t scale;
        int64_t unscaled;
        const char *want;
    } t[] = {{2, 12345, "123.45"}, {5, -12, "-0.00012"}, {-2, 12, "1200"}, {0, -7, "-7"},
             {3, 1000, "1.000"},   {1, 0, "0.0"},        {-3, 0, "0"},     {2, 5, "0.05"}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        cql_values v;
        cql_values_init(&v);
        cql_values_add_decimal_i64(&v, t[i].scale, t[i].unscaled);
        cql_bytes b = {v.buf.data + 4, (int32_t)(v.buf.len - 4)};
        char s[64];
        int n = cql_decimal_to_string(b, s, sizeof s);
        assert_int_equal(n, (int)strlen(t[i].want));
        assert_string_equal(s, t[i].want);
        int32_t scale;
        cql_bytes un;
        assert_int_equal(cql_decode_decimal(b, &scale, &un), 0);
        assert_int_equal(scale, t[i].scale);
        int64_t x;
        assert_int_equal(cql_varint_to_i64(un, &x), 0);
        assert_true(x == t[i].unscaled);
        cql_values_free(&v);
    }
}

static void test_misc_codecs(void **state)
{
    (void)state;
    /* date: 2^31 is 1970-01-01 (6.5) */
    assert_int_equal(cql_date_from_days(0), 2147483648u);
    assert_int_equal(cql_date_to_days(0), INT32_MIN);
    assert_int_equal(cql_date_to_days(4294967295u), INT32_MAX);
    char s[37];
    cql_uuid_format(U1, s);
    assert_string_equal(s, "550e8400-e29b-41d4-a716-446655440000");
    uint8_t u[16];
    assert_int_equal(cql_uuid_parse("550E8400-E29B-41D4-A716-446655440000", u), 0);
    assert_memory_equal(u, U1, 16);
    assert_int_equal(cql_uuid_parse("550e8400e29b41d4a716446655440000", u), MS_ERR_INVALID);
    assert_int_equal(cql_uuid_parse("550e8400-e29b-41d4-a716-44665544000g", u), MS_ERR_INVALID);
    cql_consistency cl;
    assert_int_equal(cql_consistency_parse("local_quorum", &cl), 0);
    assert_int_equal(cl, CQL_CONSISTENCY_LOCAL_QUORUM);
    assert_int_equal(cql_consistency_parse("BOGUS", &cl), MS_ERR_INVALID);
    assert_string_equal(cql_consistency_name(CQL_CONSISTENCY_LOCAL_ONE), "LOCAL_ONE");
    /* wrong lengths */
    cql_bytes b = {(const uint8_t *)"\x01\x02\x03", 3};
    int32_t i32;
    assert_int_equal(cql_decode_int(b, &i32), MS_ERR_INVALID);
    uint8_t addr[16];
    size_t alen;
    assert_int_equal(cql_decode_inet(b, addr, &alen), MS_ERR_INVALID);
    b.len = -1;
    assert_int_equal(cql_decode_int(b, &i32), MS_ERR_NOT_FOUND);
    /* collection iterator rejects counts the bytes cannot hold */
    const uint8_t lie[] = {0x7F, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0};
    cql_bytes lb = {lie, sizeof lie};
    cql_coll_iter it;
    assert_int_equal(cql_coll_begin(&it, lb, false, NULL), MS_ERR_INVALID);
    const uint8_t trunc[] = {0, 0, 0, 1, 0, 0, 0, 9, 1};
    cql_bytes tb = {trunc, sizeof trunc};
    assert_int_equal(cql_coll_begin(&it, tb, false, NULL), 0);
    cql_bytes e;
    assert_int_equal(cql_coll_next(&it, &e), MS_ERR_INVALID);
    /* type names */
    assert_string_equal(cql_type_name(CQL_TYPE_VARCHAR), "text");
    assert_non_null(cql_type_of(CQL_TYPE_INT));
    assert_null(cql_type_of(CQL_TYPE_LIST));
    assert_null(cql_type_of((cql_type_id)0x000A));
    /* the value tree rejects a list whose bytes hold trailing garbage */
    cql_arena a;
    cql_arena_init(&a);
    cql_type sub = {.id = CQL_TYPE_INT};
    const cql_type *subs[1] = {&sub};
    cql_type lt = {.id = CQL_TYPE_LIST, .n = 1, .sub = subs};
    const uint8_t extra[] = {0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 5, 9};
    cql_bytes xb = {extra, sizeof extra};
    cql_value v;
    assert_int_equal(cql_value_decode(&lt, xb, &a, &v), MS_ERR_INVALID);
    xb.len--;
    assert_int_equal(cql_value_decode(&lt, xb, &a, &v), 0);
    assert_int_equal(v.v.coll.items[0].v.i, 5);
    cql_arena_free(&a);
}

static void test_values_check(void **state)
{
    (void)state;
    /* bind metadata of all the test columns: the row values match it */
    cql_values v;
    cql_values_init(&v);
    bind_all(&v);
    cql_buf b = {0};
    build_result(&b, &v);
    cql_result r;
    assert_int_equal(cql__result_decode(&r, b.data, b.len, NULL, NULL), 0);
    int bad;
    assert_int_equal(cql__values_check(&v, &r.meta, &bad), 0);
    assert_int_equal(bad, -1);
    /* one value too few */
    cql_values w;
    cql_values_init(&w);
    cql_values_add_int(&w, 1);
    assert_int_equal(cql__values_check(&w, &r.meta, &bad), MS_ERR_INVALID);
    assert_int_equal(bad, -1);
    /* a bigint where the int column is, and a null inside a list */
    cql_values_reset(&w);
    cql_bytes raw;
    cql_rd rd = cql__rd(v.buf.data, v.buf.len);
    for (int c = 0; c < NCOLS; c++) {
        assert_int_equal(cql__rd_bytes(&rd, &raw), 0);
        if (c == C_INT)
            cql_values_add_bigint(&w, 5);
        else if (c == C_LIST) {
            cql_values_begin_list(&w);
            cql_values_add_null(&w);
            cql_values_end(&w);
        } else
            cql_values_add_raw(&w, raw);
    }
    assert_int_equal(cql__values_check(&w, &r.meta, &bad), MS_ERR_INVALID);
    assert_int_equal(bad, C_INT);
    cql_result_free(&r);
    cql_buf_free(&b);
    cql_values_free(&v);
    cql_values_free(&w);
}

static void test_arena(void **state)
{
    (void)state;
    cql_arena a;
    cql_arena_init(&a);
    /* inline block first, then chunks; all 16-byte aligned; big requests work */
    for (int i = 0; i < 1000; i++) {
        size_t n = (size_t)(i % 97) + 1;
        uint8_t *p = cql_arena_alloc(&a, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, 0xAB, n);
    }
    uint8_t *big = cql_arena_alloc(&a, 1 << 20);
    assert_non_null(big);
    memset(big, 1, 1 << 20);
    cql_arena_free(&a);
    cql_arena_free(&a); /* idempotent */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_types_roundtrip),
        cmocka_unit_test(test_builder_bytes),
        cmocka_unit_test(test_varint),
        cmocka_unit_test(test_decimal_strings),
        cmocka_unit_test(test_misc_codecs),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_values_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
