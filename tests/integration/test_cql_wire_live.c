/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire codec against a real Cassandra node ($MSGSTORE_TEST_CASSANDRA,
 * default 127.0.0.1:9042), over a plain blocking socket so only the codec is
 * under test (the I/O client has its own tests): OPTIONS/SUPPORTED, STARTUP
 * with LZ4, PREPARE/EXECUTE of every CQL type and reading them back, the
 * Murmur3 token of a composite key against the server's token(), paging,
 * BATCH, warnings, tracing, error bodies and a SCHEMA_CHANGE event.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "raw_socket.h"

#include "core/error.h"
#include "cql/proto.h"

#define KS "msgstore_cqlwire_it"

typedef struct conn {
    int fd;
    bool lz4;
    int16_t stream;
    cql_buf out, scratch, body;
    cql_frame_header h; /* last response */
    cql_response resp;
    int events;         /* EVENT frames seen */
    int compressed;     /* responses that arrived LZ4-compressed */
    cql_buf last_event; /* body of the last EVENT */
} conn;

static conn C;

static void read_full(int fd, uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            fail_msg("read: %s", r == 0 ? "connection closed" : strerror(errno));
        got += (size_t)r;
    }
}

/* Send the frame(s) in C.out (compressing the last one if negotiated). */
static void send_out(size_t start, bool compressible)
{
    if (C.lz4 && compressible)
        assert_int_equal(cql__frame_compress(&C.out, start, &C.scratch), 0);
    size_t off = 0;
    while (off < C.out.len) {
        ssize_t w = write(C.fd, C.out.data + off, C.out.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        assert_true(w > 0);
        off += (size_t)w;
    }
    cql_buf_reset(&C.out);
}

/* Receive the response to stream; EVENT frames (stream -1) are counted and kept. */
static void recv_resp(int16_t stream)
{
    for (;;) {
        uint8_t hdr[CQL_HEADER_LEN];
        read_full(C.fd, hdr, sizeof hdr);
        size_t flen, need;
        assert_int_equal(cql__frame_parse(hdr, sizeof hdr, 0, &C.h, &flen, &need), 0);
        assert_int_equal(C.h.version, 0x84);
        uint8_t *raw = malloc(C.h.length ? C.h.length : 1);
        assert_non_null(raw);
        read_full(C.fd, raw, C.h.length);
        cql_buf_reset(&C.body);
        if (C.h.flags & CQL_FLAG_COMPRESSION) {
            assert_true(C.lz4);
            C.compressed++;
            assert_int_equal(cql__lz4_decompress(&C.body, raw, C.h.length, 0), 0);
        } else {
            cql_buf_append(&C.body, raw, C.h.length);
        }
        free(raw);
        assert_int_equal(C.body.err, 0);
        assert_int_equal(cql__response_open(&C.h, C.body.data, C.body.len, &C.resp), 0);
        if (C.h.opcode == CQL_OP_EVENT) {
            assert_int_equal(C.h.stream, -1);
            C.events++;
            cql_buf_reset(&C.last_event);
            cql_buf_append(&C.last_event, C.resp.body, C.resp.body_len);
            continue;
        }
        assert_int_equal(C.h.stream, stream);
        return;
    }
}

static void fail_with_error(void)
{
    cql_error e;
    if (C.h.opcode == CQL_OP_ERROR && cql__error_decode(C.resp.body, C.resp.body_len, &e) == 0)
        fail_msg("server error 0x%04x %s: %.*s", (unsigned)e.code, cql_error_code_name(e.code),
                 (int)e.message.len, e.message.ptr);
    fail_msg("unexpected opcode %s", cql__opcode_name(C.h.opcode));
}

/* QUERY; the RESULT is decoded into r (caller frees). */
static void query_p(const char *q, const cql_query_params *p, uint8_t flags, cql_result *r)
{
    int16_t s = ++C.stream;
    size_t start = C.out.len;
    assert_int_equal(cql__enc_query(&C.out, s, flags, q, strlen(q), p), 0);
    send_out(start, true);
    recv_resp(s);
    if (C.h.opcode != CQL_OP_RESULT)
        fail_with_error();
    assert_int_equal(cql__result_decode(r, C.resp.body, C.resp.body_len, NULL, NULL), 0);
}

static void query(const char *q, cql_result *r)
{
    cql_query_params p;
    cql__query_params_init(&p);
    query_p(q, &p, 0, r);
}

static void exec_ok(const char *q)
{
    cql_result r;
    query(q, &r);
    cql_result_free(&r);
}

/* Expect an ERROR for q; decoded into e (views into C.body). */
static void query_error(const char *q, cql_error *e)
{
    int16_t s = ++C.stream;
    size_t start = C.out.len;
    cql_query_params p;
    cql__query_params_init(&p);
    assert_int_equal(cql__enc_query(&C.out, s, 0, q, strlen(q), &p), 0);
    send_out(start, true);
    recv_resp(s);
    assert_int_equal(C.h.opcode, CQL_OP_ERROR);
    assert_int_equal(cql__error_decode(C.resp.body, C.resp.body_len, e), 0);
}

/* PREPARE; the PREPARED result is returned in r, its body kept alive by the result. */
static void prepare(const char *q, cql_result *r)
{
    int16_t s = ++C.stream;
    size_t start = C.out.len;
    assert_int_equal(cql__enc_prepare(&C.out, s, 0, q, strlen(q)), 0);
    send_out(start, true);
    recv_resp(s);
    if (C.h.opcode != CQL_OP_RESULT)
        fail_with_error();
    uint8_t *own = malloc(C.resp.body_len);
    memcpy(own, C.resp.body, C.resp.body_len);
    assert_int_equal(cql__result_decode(r, own, C.resp.body_len, own, NULL), 0);
    assert_int_equal(r->kind, CQL_RESULT_PREPARED);
}

static void execute(const cql_result *prep, const cql_query_params *p, const cql_metadata *cached,
                    cql_result *r)
{
    int16_t s = ++C.stream;
    size_t start = C.out.len;
    assert_int_equal(
        cql__enc_execute(&C.out, s, 0, prep->prepared_id.ptr, (size_t)prep->prepared_id.len, p), 0);
    send_out(start, true);
    recv_resp(s);
    if (C.h.opcode != CQL_OP_RESULT)
        fail_with_error();
    assert_int_equal(cql__result_decode(r, C.resp.body, C.resp.body_len, NULL, cached), 0);
}

static int setup(void **state)
{
    (void)state;
    const char *addr = getenv("MSGSTORE_TEST_CASSANDRA");
    if (!addr || !*addr)
        addr = "127.0.0.1:9042";
    memset(&C, 0, sizeof C);
    C.fd = rawsock_connect(addr, 60);
    if (C.fd < 0) {
        fprintf(stderr, "cannot connect to %s (is the cassandra fixture up?)\n", addr);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (C.fd >= 0)
        close(C.fd);
    cql_buf_free(&C.out);
    cql_buf_free(&C.scratch);
    cql_buf_free(&C.body);
    cql_buf_free(&C.last_event);
    return 0;
}

/* ------------------------------------------------------------------ tests */

static void test_handshake_lz4(void **state)
{
    (void)state;
    assert_int_equal(cql__enc_options(&C.out, 0), 0);
    send_out(0, false);
    recv_resp(0);
    assert_int_equal(C.h.opcode, CQL_OP_SUPPORTED);
    cql_multimap m;
    assert_int_equal(cql__supported_decode(C.resp.body, C.resp.body_len, &m), 0);
    assert_true(cql__multimap_has(&m, "COMPRESSION", "lz4"));
    cql_str v;
    assert_int_equal(cql__multimap_get(&m, "CQL_VERSION", &v, NULL), 0);
    assert_true(v.len > 2 && v.ptr[0] == '3');
    assert_int_equal(cql__multimap_value(&m, "PROTOCOL_VERSIONS", 0, &v), 0);
    cql_scylla_info si;
    assert_int_equal(cql__scylla_parse(&m, &si), 0);
    assert_false(si.present); /* Cassandra, not Scylla */

    const char *kv[] = {"CQL_VERSION", "3.0.0", "COMPRESSION", "lz4"};
    assert_int_equal(cql__enc_startup(&C.out, 1, kv, 2), 0);
    send_out(0, false);
    C.lz4 = true; /* responses from now on may be compressed */
    recv_resp(1);
    assert_int_equal(C.h.opcode, CQL_OP_READY);

    const char *ev[] = {"SCHEMA_CHANGE"};
    assert_int_equal(cql__enc_register(&C.out, 2, ev, 1), 0);
    send_out(0, true);
    recv_resp(2);
    assert_int_equal(C.h.opcode, CQL_OP_READY);
    C.stream = 2;

    exec_ok("CREATE KEYSPACE IF NOT EXISTS " KS " WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}");
    exec_ok("DROP TABLE IF EXISTS " KS ".all_types");
    exec_ok("DROP TYPE IF EXISTS " KS ".attachment");
    int before = C.events;
    cql_result r;
    query("CREATE TYPE " KS ".attachment (url text, size bigint, extra int)", &r);
    assert_int_equal(r.kind, CQL_RESULT_SCHEMA_CHANGE);
    assert_true(cql_str_eq(r.schema.change_type, "CREATED"));
    assert_true(cql_str_eq(r.schema.target, "TYPE"));
    assert_true(cql_str_eq(r.schema.keyspace, KS));
    assert_true(cql_str_eq(r.schema.name, "attachment"));
    cql_result_free(&r);
    /* the registered connection got the SCHEMA_CHANGE event (before or with the result) */
    assert_true(C.events > before);
    cql_event e;
    assert_int_equal(cql__event_decode(C.last_event.data, C.last_event.len, &e), 0);
    assert_int_equal(e.kind, CQL_EVENT_SCHEMA_CHANGE);
    assert_true(cql_str_eq(e.schema.target, "TYPE"));
    assert_true(cql_str_eq(e.schema.name, "attachment"));
    assert_true(C.compressed > 0); /* the server really answered in LZ4 */
}

/* Types of the live table, in column order after (a, b). */
#define TABLE_COLS                                                                                 \
    "c_ascii ascii, c_text text, c_bigint bigint, c_int int, c_smallint smallint, "                \
    "c_tinyint tinyint, c_bool boolean, c_blob blob, c_uuid uuid, c_timeuuid timeuuid, "           \
    "c_ts timestamp, c_date date, c_time time, c_double double, c_float float, "                   \
    "c_decimal decimal, c_varint varint, c_inet inet, c_inet6 inet, c_list list<int>, "            \
    "c_set set<text>, c_map map<text, bigint>, c_tuple frozen<tuple<int, text, double>>, "         \
    "c_udt frozen<attachment>, c_null int"

static const uint8_t U1[16] = {0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b, 0x41, 0xd4,
                               0xa7, 0x16, 0x44, 0x66, 0x55, 0x44, 0x00, 0x00};
static const uint8_t TU[16] = {0xd2, 0x17, 0x7d, 0xd0, 0xea, 0xa2, 0x11, 0xde,
                               0xa5, 0x72, 0x00, 0x1b, 0x77, 0x9c, 0x76, 0xe3};
static const uint8_t BIGV[] = {0x0c, 0x9f, 0x2c, 0x9c, 0xd0, 0x46, 0x74,
                               0xed, 0xea, 0x40, 0,    0,    0}; /* 10^30 */

static void bind_row(cql_values *v, const char *a, int32_t b)
{
    cql_values_add_text(v, a, strlen(a));
    cql_values_add_int(v, b);
    cql_values_add_text(v, "ascii!", 6);
    cql_values_add_text(v, "zażółć 🙂", strlen("zażółć 🙂"));
    cql_values_add_bigint(v, INT64_MIN + 1);
    cql_values_add_int(v, -7);
    cql_values_add_smallint(v, 32767);
    cql_values_add_tinyint(v, -128);
    cql_values_add_bool(v, true);
    cql_values_add_blob(v, "\x00\xff\x10", 3);
    cql_values_add_uuid(v, U1);
    cql_values_add_uuid(v, TU);
    cql_values_add_timestamp(v, 1700000000123LL);
    cql_values_add_date(v, cql_date_from_days(-1)); /* 1969-12-31 */
    cql_values_add_time(v, 3723000000001LL);
    cql_values_add_double(v, 2.718281828459045);
    cql_values_add_float(v, -0.25f);
    cql_values_add_decimal_i64(v, 3, -1234567); /* -1234.567 */
    cql_values_add_varint_raw(v, BIGV, sizeof BIGV);
    cql_values_add_inet(v, (const uint8_t *)"\x7f\x00\x00\x01", 4);
    cql_values_add_inet(v, (const uint8_t *)"\xfe\x80\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
    cql_values_begin_list(v);
    cql_values_add_int(v, 3);
    cql_values_add_int(v, 1);
    cql_values_add_int(v, 2);
    cql_values_end(v);
    cql_values_begin_list(v);
    cql_values_add_text(v, "x", 1);
    cql_values_add_text(v, "y", 1);
    cql_values_end(v);
    cql_values_begin_map(v);
    cql_values_add_text(v, "one", 3);
    cql_values_add_bigint(v, 1);
    cql_values_add_text(v, "two", 3);
    cql_values_add_bigint(v, 2);
    cql_values_end(v);
    cql_values_begin_tuple(v);
    cql_values_add_int(v, 9);
    cql_values_add_null(v);
    cql_values_add_double(v, 0.5);
    cql_values_end(v);
    cql_values_begin_tuple(v);
    cql_values_add_text(v, "https://x/y", 11);
    cql_values_add_bigint(v, 1 << 20);
    cql_values_add_null(v);
    cql_values_end(v);
    cql_values_add_unset(v); /* c_null: not written at all */
}

static void test_all_types_live(void **state)
{
    (void)state;
    exec_ok("CREATE TABLE " KS ".all_types (a text, b int, " TABLE_COLS ", PRIMARY KEY ((a, b)))");
    cql_result ins;
    prepare("INSERT INTO " KS ".all_types (a, b, c_ascii, c_text, c_bigint, c_int, c_smallint, "
            "c_tinyint, c_bool, c_blob, c_uuid, c_timeuuid, c_ts, c_date, c_time, c_double, "
            "c_float, c_decimal, c_varint, c_inet, c_inet6, c_list, c_set, c_map, c_tuple, "
            "c_udt, c_null) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            &ins);
    /* bind metadata: 27 markers, partition key (a, b) = markers 0, 1 */
    assert_int_equal(ins.bind.column_count, 27);
    assert_int_equal(ins.bind.pk_count, 2);
    assert_int_equal(ins.bind.pk_indexes[0], 0);
    assert_int_equal(ins.bind.pk_indexes[1], 1);
    assert_int_equal(ins.bind.columns[25].type->id, CQL_TYPE_UDT);
    assert_true(cql_str_eq(ins.bind.columns[25].type->field_names[2], "extra"));
    char tname[128];
    cql_type_format(ins.bind.columns[23].type, tname, sizeof tname);
    assert_string_equal(tname, "map<text, bigint>");

    cql_values v;
    cql_values_init(&v);
    bind_row(&v, "chan-42", 7);
    assert_int_equal(cql_values_error(&v), 0);
    int bad;
    assert_int_equal(cql__values_check(&v, &ins.bind, &bad), 0); /* server metadata agrees */
    cql_query_params p;
    cql__query_params_init(&p);
    p.consistency = CQL_CONSISTENCY_ONE;
    p.values = &v;
    p.timestamp = 1700000000000000LL;
    cql_result r;
    execute(&ins, &p, NULL, &r);
    assert_int_equal(r.kind, CQL_RESULT_VOID);
    cql_result_free(&r);

    /* our token of the composite key equals the server's token(a, b) */
    int64_t ours;
    cql_buf scratch = {0};
    assert_int_equal(
        cql__token_of_values(&v, ins.bind.pk_indexes, ins.bind.pk_count, &scratch, &ours), 0);
    cql_buf_free(&scratch);
    query("SELECT token(a, b), writetime(c_int) FROM " KS
          ".all_types WHERE a = 'chan-42' AND b = 7",
          &r);
    assert_int_equal(cql_result_next_row(&r), 0);
    int64_t theirs, wt;
    assert_int_equal(cql_row_get_bigint(&r, 0, &theirs), 0);
    assert_true(ours == theirs);
    assert_int_equal(cql_row_get_bigint(&r, 1, &wt), 0);
    assert_true(wt == 1700000000000000LL); /* the default timestamp flag was honoured */
    cql_result_free(&r);

    /* read back every type */
    cql_result sel;
    prepare("SELECT * FROM " KS ".all_types WHERE a = ? AND b = ?", &sel);
    cql_values key;
    cql_values_init(&key);
    cql_values_add_text(&key, "chan-42", 7);
    cql_values_add_int(&key, 7);
    cql__query_params_init(&p);
    p.values = &key;
    execute(&sel, &p, NULL, &r);
    assert_int_equal(r.row_count, 1);
    assert_int_equal(cql_result_next_row(&r), 0);
#define COL(n) cql_result_column_index(&r, n)
    cql_str s;
    assert_int_equal(cql_row_get_text(&r, COL("c_ascii"), &s), 0);
    assert_true(cql_str_eq(s, "ascii!"));
    assert_int_equal(cql_row_get_text(&r, COL("c_text"), &s), 0);
    assert_true(cql_str_eq(s, "zażółć 🙂"));
    int64_t i64;
    assert_int_equal(cql_row_get_bigint(&r, COL("c_bigint"), &i64), 0);
    assert_true(i64 == INT64_MIN + 1);
    int32_t i32;
    assert_int_equal(cql_row_get_int(&r, COL("c_int"), &i32), 0);
    assert_int_equal(i32, -7);
    int16_t i16;
    assert_int_equal(cql_row_get_smallint(&r, COL("c_smallint"), &i16), 0);
    assert_int_equal(i16, 32767);
    int8_t i8;
    assert_int_equal(cql_row_get_tinyint(&r, COL("c_tinyint"), &i8), 0);
    assert_int_equal(i8, -128);
    bool bo;
    assert_int_equal(cql_row_get_bool(&r, COL("c_bool"), &bo), 0);
    assert_true(bo);
    cql_bytes by;
    assert_int_equal(cql_row_get_blob(&r, COL("c_blob"), &by), 0);
    assert_int_equal(by.len, 3);
    assert_memory_equal(by.ptr, "\x00\xff\x10", 3);
    uint8_t u[16];
    assert_int_equal(cql_row_get_uuid(&r, COL("c_uuid"), u), 0);
    assert_memory_equal(u, U1, 16);
    assert_int_equal(cql_row_get_uuid(&r, COL("c_timeuuid"), u), 0);
    assert_memory_equal(u, TU, 16);
    assert_int_equal(cql_result_column(&r, COL("c_timeuuid"))->type->id, CQL_TYPE_TIMEUUID);
    assert_int_equal(cql_row_get_timestamp(&r, COL("c_ts"), &i64), 0);
    assert_true(i64 == 1700000000123LL);
    uint32_t d;
    assert_int_equal(cql_row_get_date(&r, COL("c_date"), &d), 0);
    assert_int_equal(cql_date_to_days(d), -1);
    assert_int_equal(cql_row_get_time(&r, COL("c_time"), &i64), 0);
    assert_true(i64 == 3723000000001LL);
    double dbl;
    assert_int_equal(cql_row_get_double(&r, COL("c_double"), &dbl), 0);
    assert_true(dbl == 2.718281828459045);
    float fl;
    assert_int_equal(cql_row_get_float(&r, COL("c_float"), &fl), 0);
    assert_true(fl == -0.25f);
    char str[64];
    assert_int_equal(cql_row_raw(&r, COL("c_decimal"), &by), 0);
    assert_true(cql_decimal_to_string(by, str, sizeof str) > 0);
    assert_string_equal(str, "-1234.567");
    assert_int_equal(cql_row_raw(&r, COL("c_varint"), &by), 0);
    assert_true(cql_varint_to_string(by, str, sizeof str) > 0);
    assert_string_equal(str, "1000000000000000000000000000000");
    assert_int_equal(cql_row_get_varint_i64(&r, COL("c_varint"), &i64), MS_ERR_TOO_LARGE);
    uint8_t addr[16];
    size_t alen;
    assert_int_equal(cql_row_get_inet(&r, COL("c_inet"), addr, &alen), 0);
    assert_int_equal(alen, 4);
    assert_memory_equal(addr, "\x7f\x00\x00\x01", 4);
    assert_int_equal(cql_row_get_inet(&r, COL("c_inet6"), addr, &alen), 0);
    assert_int_equal(alen, 16);
    assert_int_equal(addr[0], 0xfe);
    assert_int_equal(cql_row_get_int(&r, COL("c_null"), &i32), MS_ERR_NOT_FOUND);
    assert_int_equal(cql_row_get_int(&r, COL("c_text"), &i32), MS_ERR_UNPROCESSABLE);

    cql_arena a;
    cql_arena_init(&a);
    cql_value val;
    assert_int_equal(cql_row_get_value(&r, COL("c_list"), &a, &val), 0);
    assert_int_equal(val.v.coll.n, 3);
    assert_int_equal(val.v.coll.items[0].v.i, 3); /* lists keep insertion order */
    assert_int_equal(cql_row_get_value(&r, COL("c_set"), &a, &val), 0);
    assert_int_equal(val.type->id, CQL_TYPE_SET);
    assert_int_equal(val.v.coll.n, 2);
    assert_int_equal(cql_row_get_value(&r, COL("c_map"), &a, &val), 0);
    assert_int_equal(val.v.coll.n, 2);
    assert_true(val.v.coll.items[0].v.raw.len == 3 &&
                memcmp(val.v.coll.items[0].v.raw.ptr, "one", 3) == 0);
    assert_int_equal(val.v.coll.items[3].v.i, 2);
    assert_int_equal(cql_row_get_value(&r, COL("c_tuple"), &a, &val), 0);
    assert_int_equal(val.v.coll.n, 3);
    assert_int_equal(val.v.coll.items[0].v.i, 9);
    assert_true(val.v.coll.items[1].is_null);
    assert_true(val.v.coll.items[2].v.d == 0.5);
    assert_int_equal(cql_row_get_value(&r, COL("c_udt"), &a, &val), 0);
    assert_int_equal(val.type->id, CQL_TYPE_UDT);
    assert_true(cql_str_eq(val.type->name, "attachment"));
    assert_int_equal(val.v.coll.items[1].v.i, 1 << 20);
    assert_true(val.v.coll.items[2].is_null);
    cql_arena_free(&a);
#undef COL
    cql_result_free(&r);

    /* skip_metadata with cached result metadata (what a prepared cache does) */
    cql_metadata *cached;
    assert_int_equal(cql__metadata_clone(&sel.meta, &cached), 0);
    p.skip_metadata = true;
    execute(&sel, &p, cached, &r);
    assert_true(r.meta.flags & CQL_META_NO_METADATA);
    assert_int_equal(cql_result_next_row(&r), 0);
    assert_int_equal(cql_row_get_int(&r, cql_result_column_index(&r, "c_int"), &i32), 0);
    assert_int_equal(i32, -7);
    cql_result_free(&r);
    free(cached);

    cql_values_free(&v);
    cql_values_free(&key);
    cql_result_free(&ins);
    cql_result_free(&sel);
}

static void test_paging_batch_warnings(void **state)
{
    (void)state;
    exec_ok("CREATE TABLE IF NOT EXISTS " KS ".paged (k int, c int, v text, PRIMARY KEY (k, c))");
    exec_ok("TRUNCATE " KS ".paged");
    cql_result ins;
    prepare("INSERT INTO " KS ".paged (k, c, v) VALUES (?, ?, ?)", &ins);

    /* an unlogged batch over 12 partitions: query and prepared entries mixed; the server warns */
    cql_values vals[12];
    cql_batch_entry e[12];
    char qs[12][96];
    for (int i = 0; i < 12; i++) {
        cql_values_init(&vals[i]);
        memset(&e[i], 0, sizeof e[i]);
        if (i % 2) {
            cql_values_add_int(&vals[i], 1000 + i);
            cql_values_add_int(&vals[i], 0);
            cql_values_add_text(&vals[i], "b", 1);
            e[i].id = ins.prepared_id.ptr;
            e[i].id_len = (size_t)ins.prepared_id.len;
        } else {
            snprintf(qs[i], sizeof qs[i], "INSERT INTO " KS ".paged (k, c, v) VALUES (%d, 0, ?)",
                     1000 + i);
            cql_values_add_text(&vals[i], "q", 1);
            e[i].query = qs[i];
            e[i].query_len = strlen(qs[i]);
        }
        e[i].values = &vals[i];
    }
    cql_batch batch = {.type = CQL_BATCH_UNLOGGED,
                       .entries = e,
                       .count = 12,
                       .consistency = CQL_CONSISTENCY_ONE,
                       .timestamp = CQL_NO_TIMESTAMP};
    int16_t s = ++C.stream;
    size_t start = C.out.len;
    assert_int_equal(cql__enc_batch(&C.out, s, 0, &batch), 0);
    send_out(start, true);
    recv_resp(s);
    if (C.h.opcode != CQL_OP_RESULT)
        fail_with_error();
    assert_true(C.h.flags & CQL_FLAG_WARNING);
    assert_true(C.resp.warning_count >= 1);
    cql_str w;
    assert_int_equal(cql__response_warning(&C.resp, 0, &w), 0);
    assert_non_null(memmem(w.ptr, w.len, "batch", 5));
    for (int i = 0; i < 12; i++)
        cql_values_free(&vals[i]);

    /* 25 rows in one partition, read 10 per page */
    cql_values v;
    cql_values_init(&v);
    cql_query_params p;
    for (int c = 0; c < 25; c++) {
        cql_values_reset(&v);
        cql_values_add_int(&v, 1);
        cql_values_add_int(&v, c);
        cql_values_add_text(&v, "row", 3);
        cql__query_params_init(&p);
        p.values = &v;
        cql_result r;
        execute(&ins, &p, NULL, &r);
        cql_result_free(&r);
    }
    cql_values_free(&v);
    int total = 0, pages = 0, expect_c = 0;
    uint8_t state_buf[512];
    cql_bytes ps = {NULL, -1};
    for (;;) {
        cql__query_params_init(&p);
        p.page_size = 10;
        p.paging_state = ps;
        cql_result r;
        query_p("SELECT c FROM " KS ".paged WHERE k = 1", &p, 0, &r);
        pages++;
        while (cql_result_next_row(&r) == 0) {
            int32_t c;
            assert_int_equal(cql_row_get_int(&r, 0, &c), 0);
            assert_int_equal(c, expect_c++);
            total++;
        }
        bool more = cql_result_has_more_pages(&r);
        if (more) {
            cql_bytes next = cql_result_paging_state(&r);
            assert_true(next.len > 0 && (size_t)next.len <= sizeof state_buf);
            memcpy(state_buf, next.ptr, (size_t)next.len);
            ps.ptr = state_buf;
            ps.len = next.len;
        }
        cql_result_free(&r);
        if (!more)
            break;
        assert_true(pages < 10);
    }
    assert_int_equal(total, 25);
    assert_true(pages >= 3);

    /* tracing: the response carries a tracing id */
    cql__query_params_init(&p);
    cql_result r;
    query_p("SELECT c FROM " KS ".paged WHERE k = 1 LIMIT 1", &p, CQL_FLAG_TRACING, &r);
    assert_true(C.resp.has_tracing);
    cql_result_free(&r);
    cql_result_free(&ins);
}

static void test_errors_live(void **state)
{
    (void)state;
    cql_error e;
    query_error("SELEKT * FROM nowhere", &e);
    assert_int_equal(e.code, CQL_ERR_SYNTAX);
    assert_true(e.message.len > 0);
    query_error("SELECT * FROM " KS ".no_such_table", &e);
    assert_int_equal(e.code, CQL_ERR_INVALID);
    query_error("CREATE TABLE " KS ".paged (k int PRIMARY KEY)", &e);
    assert_int_equal(e.code, CQL_ERR_ALREADY_EXISTS);
    assert_true(cql_str_eq(e.keyspace, KS));
    assert_true(cql_str_eq(e.table, "paged"));
    query_error("CREATE KEYSPACE " KS " WITH replication = "
                "{'class': 'SimpleStrategy', 'replication_factor': 1}",
                &e);
    assert_int_equal(e.code, CQL_ERR_ALREADY_EXISTS);
    assert_true(cql_str_eq(e.table, ""));
    /* EXECUTE of an id the server does not know: Unprepared echoes the id */
    const uint8_t bogus[16] = {0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    cql_query_params p;
    cql__query_params_init(&p);
    int16_t s = ++C.stream;
    size_t start = C.out.len;
    assert_int_equal(cql__enc_execute(&C.out, s, 0, bogus, 16, &p), 0);
    send_out(start, true);
    recv_resp(s);
    assert_int_equal(C.h.opcode, CQL_OP_ERROR);
    assert_int_equal(cql__error_decode(C.resp.body, C.resp.body_len, &e), 0);
    assert_int_equal(e.code, CQL_ERR_UNPREPARED);
    assert_int_equal(e.unprepared_id.len, 16);
    assert_memory_equal(e.unprepared_id.ptr, bogus, 16);
    /* an uncompressed request is still accepted after LZ4 was negotiated */
    s = ++C.stream;
    start = C.out.len;
    assert_int_equal(
        cql__enc_query(&C.out, s, 0, "SELECT release_version FROM system.local", 40, &p), 0);
    send_out(start, false);
    recv_resp(s);
    assert_int_equal(C.h.opcode, CQL_OP_RESULT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_lz4),
        cmocka_unit_test(test_all_types_live),
        cmocka_unit_test(test_paging_batch_warnings),
        cmocka_unit_test(test_errors_live),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
