/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CQL client against a real Cassandra node ($MSGSTORE_TEST_CASSANDRA):
 * every type round-trips through a table, null and unset, counters,
 * batches, paging over 10k rows, the prepared cache (eviction, UNPREPARED
 * after DROP/CREATE TABLE), 10k requests in flight on one connection, LZ4,
 * errors as values, connect failures and timeouts, graceful close.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cql_test.h"
#include "core/error.h"
#include "core/metrics.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <sys/socket.h>

static char ks[64];
static cql_sync *db;

static int setup(void **state)
{
    (void)state;
    cql_options o;
    cqlt_options(&o, "MSGSTORE_TEST_CASSANDRA", "127.0.0.1:9042");
    o.name = "it"; /* its own metric labels */
    cql_status st;
    if (cql_sync_connect(&o, &db, &st) != 0) {
        fprintf(stderr, "connect: %s\n", st.message);
        return -1;
    }
    cqlt_keyspace(ks, sizeof(ks), "cqlnet_it");
    char q[256];
    snprintf(q, sizeof(q),
             "CREATE KEYSPACE IF NOT EXISTS %s WITH replication = "
             "{'class': 'SimpleStrategy', 'replication_factor': 1}",
             ks);
    return cql_sync_query(db, q, NULL, &st) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char q[128];
    snprintf(q, sizeof(q), "DROP KEYSPACE IF EXISTS %s", ks);
    cql_status st;
    cql_sync_query(db, q, NULL, &st);
    cql_sync_close(db);
    return 0;
}

static void q_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void q_ok(const char *fmt, ...)
{
    char q[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof(q), fmt, ap);
    va_end(ap);
    CQLT_OK(db, q);
}

static cql_prepared *prep(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static cql_prepared *prep(const char *fmt, ...)
{
    char q[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof(q), fmt, ap);
    va_end(ap);
    cql_prepared *p;
    cql_status st;
    int rc = cql_sync_prepare(db, q, &p, &st);
    if (rc)
        fprintf(stderr, "prepare %s: %s\n", q, st.message);
    assert_int_equal(rc, 0);
    return p;
}

static int exec(cql_prepared *p, cql_values *v, cql_result **res, cql_status *st)
{
    cql_statement s;
    cql_statement_init(&s);
    s.prepared = p;
    s.values = v;
    return cql_sync_execute(db, &s, res, st);
}

/* ---- every type ------------------------------------------------------------------- */

static const uint8_t UUID1[16] = {0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b, 0x41, 0xd4,
                                  0xa7, 0x16, 0x44, 0x66, 0x55, 0x44, 0x00, 0x00};
/* a version-1 (time) UUID */
static const uint8_t TUUID[16] = {0xd2, 0x17, 0x7d, 0xd0, 0xea, 0xa2, 0x11, 0xde,
                                  0xa5, 0x72, 0x00, 0x1b, 0x77, 0x9c, 0x76, 0xe3};

static void test_types_roundtrip(void **state)
{
    (void)state;
    q_ok("CREATE TYPE IF NOT EXISTS %s.addr (street text, num int)", ks);
    q_ok("CREATE TABLE IF NOT EXISTS %s.types (k int PRIMARY KEY, a ascii, b bigint, bl blob, "
         "bo boolean, d decimal, db double, f float, i int, ts timestamp, u uuid, tu timeuuid, "
         "t text, vc varchar, vi varint, ip inet, ip6 inet, dt date, tm time, si smallint, "
         "ti tinyint, l list<int>, st set<text>, m map<text, int>, tup tuple<int, text>, "
         "ud frozen<addr>, nest map<text, frozen<list<int>>>, big varint)",
         ks);
    cql_prepared *ins = prep("INSERT INTO %s.types (k, a, b, bl, bo, d, db, f, i, ts, u, tu, t, "
                             "vc, vi, ip, ip6, dt, tm, si, ti, l, st, m, tup, ud, nest, big) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                             "?, ?, ?, ?, ?, ?, ?, ?)",
                             ks);
    assert_int_equal(cql_prepared_params(ins)->column_count, 28);
    cql_values v;
    cql_values_init(&v);
    cql_values_add_int(&v, 7);
    cql_values_add_text(&v, "ascii!", 6);
    cql_values_add_bigint(&v, -9007199254740993LL);
    const uint8_t blob[] = {0, 1, 2, 0xff, 0xfe};
    cql_values_add_blob(&v, blob, sizeof(blob));
    cql_values_add_bool(&v, true);
    cql_values_add_decimal_i64(&v, 3, -123456); /* -123.456 */
    cql_values_add_double(&v, 2.718281828459045);
    cql_values_add_float(&v, 1.5f);
    cql_values_add_int(&v, INT32_MIN);
    cql_values_add_timestamp(&v, 1700000000123LL);
    cql_values_add_uuid(&v, UUID1);
    cql_values_add_uuid(&v, TUUID);
    const char *utf = "kremówki ✓";
    cql_values_add_text(&v, utf, strlen(utf));
    cql_values_add_text(&v, "varchar", 7);
    cql_values_add_varint_i64(&v, -1234567890123LL);
    const uint8_t ip4[4] = {10, 1, 2, 3};
    cql_values_add_inet(&v, ip4, 4);
    uint8_t ip6[16];
    inet_pton(AF_INET6, "2001:db8::42", ip6);
    cql_values_add_inet(&v, ip6, 16);
    cql_values_add_date(&v, cql_date_from_days(19000));
    cql_values_add_time(&v, 3600LL * 1000000000LL + 5);
    cql_values_add_smallint(&v, -32768);
    cql_values_add_tinyint(&v, 127);
    cql_values_begin_list(&v);
    cql_values_add_int(&v, 3);
    cql_values_add_int(&v, 1);
    cql_values_add_int(&v, 2);
    cql_values_end(&v);
    cql_values_begin_list(&v); /* a set is serialized like a list */
    cql_values_add_text(&v, "b", 1);
    cql_values_add_text(&v, "a", 1);
    cql_values_end(&v);
    cql_values_begin_map(&v);
    cql_values_add_text(&v, "one", 3);
    cql_values_add_int(&v, 1);
    cql_values_add_text(&v, "two", 3);
    cql_values_add_int(&v, 2);
    cql_values_end(&v);
    cql_values_begin_tuple(&v);
    cql_values_add_int(&v, 42);
    cql_values_add_text(&v, "tuple", 5);
    cql_values_end(&v);
    cql_values_begin_tuple(&v); /* UDT fields in declaration order */
    cql_values_add_text(&v, "Main St", 7);
    cql_values_add_int(&v, 221);
    cql_values_end(&v);
    cql_values_begin_map(&v);
    cql_values_add_text(&v, "x", 1);
    cql_values_begin_list(&v);
    cql_values_add_int(&v, 9);
    cql_values_add_int(&v, 8);
    cql_values_end(&v);
    cql_values_end(&v);
    const uint8_t bigv[] = {0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}; /* 2^72 */
    cql_values_add_varint_raw(&v, bigv, sizeof(bigv));
    assert_int_equal(cql_values_error(&v), 0);
    cql_status st;
    assert_int_equal(exec(ins, &v, NULL, &st), 0);
    cql_values_free(&v);

    cql_result *r;
    char q[256];
    snprintf(q, sizeof(q), "SELECT * FROM %s.types WHERE k = 7", ks);
    assert_int_equal(cql_sync_query(db, q, &r, &st), 0);
    assert_int_equal(r->row_count, 1);
    assert_int_equal(cql_result_next_row(r), 0);
#define COL(name) cql_result_column_index(r, name)
    cql_str s;
    assert_int_equal(cql_row_get_text(r, COL("a"), &s), 0);
    assert_true(cql_str_eq(s, "ascii!"));
    int64_t i64;
    assert_int_equal(cql_row_get_bigint(r, COL("b"), &i64), 0);
    assert_true(i64 == -9007199254740993LL);
    cql_bytes by;
    assert_int_equal(cql_row_get_blob(r, COL("bl"), &by), 0);
    assert_int_equal(by.len, sizeof(blob));
    assert_memory_equal(by.ptr, blob, sizeof(blob));
    bool bo;
    assert_int_equal(cql_row_get_bool(r, COL("bo"), &bo), 0);
    assert_true(bo);
    char dec[64];
    cql_bytes raw;
    assert_int_equal(cql_row_raw(r, COL("d"), &raw), 0);
    assert_true(cql_decimal_to_string(raw, dec, sizeof(dec)) > 0);
    assert_string_equal(dec, "-123.456");
    double d;
    assert_int_equal(cql_row_get_double(r, COL("db"), &d), 0);
    assert_true(d == 2.718281828459045);
    float f;
    assert_int_equal(cql_row_get_float(r, COL("f"), &f), 0);
    assert_true(f == 1.5f);
    int32_t i32;
    assert_int_equal(cql_row_get_int(r, COL("i"), &i32), 0);
    assert_int_equal(i32, INT32_MIN);
    assert_int_equal(cql_row_get_timestamp(r, COL("ts"), &i64), 0);
    assert_true(i64 == 1700000000123LL);
    uint8_t u[16];
    assert_int_equal(cql_row_get_uuid(r, COL("u"), u), 0);
    assert_memory_equal(u, UUID1, 16);
    assert_int_equal(cql_row_get_uuid(r, COL("tu"), u), 0);
    assert_memory_equal(u, TUUID, 16);
    assert_int_equal(cql_row_get_text(r, COL("t"), &s), 0);
    assert_true(cql_str_eq(s, utf));
    assert_int_equal(cql_row_get_text(r, COL("vc"), &s), 0);
    assert_true(cql_str_eq(s, "varchar"));
    assert_int_equal(cql_row_get_varint_i64(r, COL("vi"), &i64), 0);
    assert_true(i64 == -1234567890123LL);
    uint8_t a[16];
    size_t alen;
    assert_int_equal(cql_row_get_inet(r, COL("ip"), a, &alen), 0);
    assert_int_equal(alen, 4);
    assert_memory_equal(a, ip4, 4);
    assert_int_equal(cql_row_get_inet(r, COL("ip6"), a, &alen), 0);
    assert_int_equal(alen, 16);
    assert_memory_equal(a, ip6, 16);
    uint32_t days;
    assert_int_equal(cql_row_get_date(r, COL("dt"), &days), 0);
    assert_int_equal(cql_date_to_days(days), 19000);
    assert_int_equal(cql_row_get_time(r, COL("tm"), &i64), 0);
    assert_true(i64 == 3600LL * 1000000000LL + 5);
    int16_t i16;
    assert_int_equal(cql_row_get_smallint(r, COL("si"), &i16), 0);
    assert_int_equal(i16, -32768);
    int8_t i8;
    assert_int_equal(cql_row_get_tinyint(r, COL("ti"), &i8), 0);
    assert_int_equal(i8, 127);
    /* a type mismatch is an error value, not a crash */
    assert_int_equal(cql_row_get_int(r, COL("t"), &i32), MS_ERR_UNPROCESSABLE);

    cql_arena ar;
    cql_arena_init(&ar);
    cql_value val;
    assert_int_equal(cql_row_get_value(r, COL("l"), &ar, &val), 0);
    assert_int_equal(val.type->id, CQL_TYPE_LIST);
    assert_int_equal(val.v.coll.n, 3);
    assert_int_equal(val.v.coll.items[0].v.i, 3);
    assert_int_equal(val.v.coll.items[2].v.i, 2);
    assert_int_equal(cql_row_get_value(r, COL("st"), &ar, &val), 0);
    assert_int_equal(val.type->id, CQL_TYPE_SET);
    assert_int_equal(val.v.coll.n, 2);
    assert_int_equal(val.v.coll.items[0].v.raw.ptr[0], 'a'); /* sets come back sorted */
    assert_int_equal(cql_row_get_value(r, COL("m"), &ar, &val), 0);
    assert_int_equal(val.type->id, CQL_TYPE_MAP);
    assert_int_equal(val.v.coll.n, 2);
    assert_int_equal(val.v.coll.items[3].v.i, 2);
    assert_int_equal(cql_row_get_value(r, COL("tup"), &ar, &val), 0);
    assert_int_equal(val.type->id, CQL_TYPE_TUPLE);
    assert_int_equal(val.v.coll.items[0].v.i, 42);
    assert_int_equal(val.v.coll.items[1].v.raw.len, 5);
    assert_int_equal(cql_row_get_value(r, COL("ud"), &ar, &val), 0);
    assert_int_equal(val.type->id, CQL_TYPE_UDT);
    assert_int_equal(val.v.coll.n, 2);
    assert_true(cql_str_eq(val.type->field_names[0], "street"));
    assert_int_equal(val.v.coll.items[1].v.i, 221);
    assert_int_equal(cql_row_get_value(r, COL("nest"), &ar, &val), 0);
    assert_int_equal(val.v.coll.n, 1);
    assert_int_equal(val.v.coll.items[1].v.coll.n, 2);
    assert_int_equal(val.v.coll.items[1].v.coll.items[1].v.i, 8);
    char vs[64];
    assert_int_equal(cql_row_raw(r, COL("big"), &raw), 0);
    assert_true(cql_varint_to_string(raw, vs, sizeof(vs)) > 0);
    assert_string_equal(vs, "4722366482869645213696");
    assert_int_equal(cql_row_get_varint_i64(r, COL("big"), &i64), MS_ERR_TOO_LARGE);
    cql_arena_free(&ar);
#undef COL
    cql_result_destroy(r);
    cql_prepared_release(ins);
}

static void test_null_unset_counter(void **state)
{
    (void)state;
    q_ok("CREATE TABLE IF NOT EXISTS %s.nu (k int PRIMARY KEY, a text, b int)", ks);
    cql_prepared *ins = prep("INSERT INTO %s.nu (k, a, b) VALUES (?, ?, ?)", ks);
    cql_values v;
    cql_values_init(&v);
    cql_values_add_int(&v, 1);
    cql_values_add_text(&v, "first", 5);
    cql_values_add_int(&v, 10);
    cql_status st;
    assert_int_equal(exec(ins, &v, NULL, &st), 0);
    /* unset leaves a column alone; null clears it */
    cql_values_reset(&v);
    cql_values_add_int(&v, 1);
    cql_values_add_unset(&v);
    cql_values_add_null(&v);
    assert_int_equal(exec(ins, &v, NULL, &st), 0);
    cql_result *r;
    char q[128];
    snprintf(q, sizeof(q), "SELECT a, b FROM %s.nu WHERE k = 1", ks);
    assert_int_equal(cql_sync_query(db, q, &r, &st), 0);
    assert_int_equal(cql_result_next_row(r), 0);
    cql_str s;
    assert_int_equal(cql_row_get_text(r, 0, &s), 0);
    assert_true(cql_str_eq(s, "first"));
    int32_t b;
    assert_int_equal(cql_row_get_int(r, 1, &b), MS_ERR_NOT_FOUND);
    assert_true(cql_row_is_null(r, 1));
    cql_result_destroy(r);
    /* wrong value for a marker: a clear local error, nothing sent */
    cql_values_reset(&v);
    cql_values_add_int(&v, 2);
    cql_values_add_text(&v, "x", 1);
    cql_values_add_bigint(&v, 5); /* b is an int */
    assert_int_equal(exec(ins, &v, NULL, &st), MS_ERR_INVALID);
    assert_non_null(strstr(st.message, "value 2"));
    cql_values_reset(&v);
    cql_values_add_int(&v, 2);
    assert_int_equal(exec(ins, &v, NULL, &st), MS_ERR_INVALID);
    cql_prepared_release(ins);

    q_ok("CREATE TABLE IF NOT EXISTS %s.cnt (k int PRIMARY KEY, c counter)", ks);
    cql_prepared *up = prep("UPDATE %s.cnt SET c = c + ? WHERE k = ?", ks);
    for (int i = 1; i <= 5; i++) {
        cql_values_reset(&v);
        cql_values_add_bigint(&v, i);
        cql_values_add_int(&v, 1);
        assert_int_equal(exec(up, &v, NULL, &st), 0);
    }
    snprintf(q, sizeof(q), "SELECT c FROM %s.cnt WHERE k = 1", ks);
    assert_int_equal(cql_sync_query(db, q, &r, &st), 0);
    assert_int_equal(cql_result_next_row(r), 0);
    int64_t c;
    assert_int_equal(cql_row_get_bigint(r, 0, &c), 0);
    assert_int_equal(c, 15);
    cql_result_destroy(r);
    cql_prepared_release(up);
    cql_values_free(&v);
}

static void test_batch(void **state)
{
    (void)state;
    q_ok("CREATE TABLE IF NOT EXISTS %s.bt (k int, c int, v text, PRIMARY KEY (k, c))", ks);
    cql_prepared *ins = prep("INSERT INTO %s.bt (k, c, v) VALUES (?, ?, ?)", ks);
    cql_values v[3];
    cql_statement sts[4];
    for (int i = 0; i < 3; i++) {
        cql_values_init(&v[i]);
        cql_values_add_int(&v[i], 1);
        cql_values_add_int(&v[i], i);
        cql_values_add_text(&v[i], "batched", 7);
        cql_statement_init(&sts[i]);
        sts[i].prepared = ins;
        sts[i].values = &v[i];
    }
    char q[160];
    snprintf(q, sizeof(q), "INSERT INTO %s.bt (k, c, v) VALUES (1, 99, 'simple')", ks);
    cql_statement_init(&sts[3]);
    sts[3].query = q;
    cql_batch_request b;
    cql_batch_request_init(&b);
    b.kind = CQL_BATCH_KIND_LOGGED;
    b.statements = sts;
    b.count = 4;
    b.idempotent = true;
    cql_status st;
    assert_int_equal(cql_sync_batch(db, &b, &st), 0);
    cql_result *r;
    char sel[128];
    snprintf(sel, sizeof(sel), "SELECT count(*) FROM %s.bt WHERE k = 1", ks);
    assert_int_equal(cql_sync_query(db, sel, &r, &st), 0);
    assert_int_equal(cql_result_next_row(r), 0);
    int64_t n;
    assert_int_equal(cql_row_get_bigint(r, 0, &n), 0);
    assert_int_equal(n, 4);
    cql_result_destroy(r);
    for (int i = 0; i < 3; i++)
        cql_values_free(&v[i]);
    /* an invalid batch (unknown table) is a server error value */
    cql_statement bad;
    cql_statement_init(&bad);
    char q2[128];
    snprintf(q2, sizeof(q2), "INSERT INTO %s.nope (k) VALUES (1)", ks);
    bad.query = q2;
    b.statements = &bad;
    b.count = 1;
    assert_int_equal(cql_sync_batch(db, &b, &st), MS_ERR_INVALID);
    assert_int_equal(st.server_code, CQL_ERR_INVALID);
    cql_prepared_release(ins);
}

/* ---- paging ----------------------------------------------------------------------------- */

static void test_paging_10k(void **state)
{
    (void)state;
    q_ok("CREATE TABLE IF NOT EXISTS %s.pg (p int, c int, v text, PRIMARY KEY (p, c))", ks);
    cql_prepared *ins = prep("INSERT INTO %s.pg (p, c, v) VALUES (?, ?, ?)", ks);
    cql_statement sts[100];
    cql_values v[100];
    for (int i = 0; i < 100; i++)
        cql_values_init(&v[i]);
    cql_status st;
    for (int chunk = 0; chunk < 100; chunk++) {
        for (int i = 0; i < 100; i++) {
            cql_values_reset(&v[i]);
            cql_values_add_int(&v[i], 1);
            cql_values_add_int(&v[i], chunk * 100 + i);
            cql_values_add_text(&v[i], "row", 3);
            cql_statement_init(&sts[i]);
            sts[i].prepared = ins;
            sts[i].values = &v[i];
        }
        cql_batch_request b;
        cql_batch_request_init(&b);
        b.kind = CQL_BATCH_KIND_UNLOGGED;
        b.statements = sts;
        b.count = 100;
        assert_int_equal(cql_sync_batch(db, &b, &st), 0);
    }
    for (int i = 0; i < 100; i++)
        cql_values_free(&v[i]);
    cql_prepared_release(ins);

    char q[128];
    snprintf(q, sizeof(q), "SELECT c FROM %s.pg WHERE p = 1", ks);
    cql_statement s;
    cql_statement_init(&s);
    s.query = q;
    s.prepare = true;
    s.page_size = 1000;
    cql_pager *pg;
    assert_int_equal(cql_pager_new(cql_sync_session(db), &s, &pg), 0);
    int pages = 0, rows = 0, expect = 0;
    while (cql_pager_has_more(pg)) {
        cql_result *r;
        int rc = cql_sync_pager_next(db, pg, &r, &st);
        if (rc)
            fprintf(stderr, "page: %s\n", st.message);
        assert_int_equal(rc, 0);
        pages++;
        assert_true(r->row_count <= 1000);
        while (cql_result_next_row(r) == 0) {
            int32_t c;
            assert_int_equal(cql_row_get_int(r, 0, &c), 0);
            assert_int_equal(c, expect); /* clustering order, no row twice, none missing */
            expect++;
            rows++;
        }
        cql_result_destroy(r);
    }
    assert_int_equal(rows, 10000);
    assert_true(pages >= 10 && pages <= 11);
    cql_result *r;
    assert_int_equal(cql_sync_pager_next(db, pg, &r, &st), MS_ERR_NOT_FOUND);
    cql_pager_free(pg);

    /* manual paging with the paging state, simple (unprepared) query */
    cql_statement_init(&s);
    s.query = q;
    s.page_size = 4000;
    rows = 0;
    uint8_t state_buf[256];
    for (;;) {
        assert_int_equal(cql_sync_execute(db, &s, &r, &st), 0);
        rows += r->row_count;
        if (!cql_result_has_more_pages(r)) {
            cql_result_destroy(r);
            break;
        }
        cql_bytes ps = cql_result_paging_state(r);
        assert_true(ps.len > 0 && (size_t)ps.len <= sizeof(state_buf));
        memcpy(state_buf, ps.ptr, (size_t)ps.len);
        s.paging_state.ptr = state_buf;
        s.paging_state.len = ps.len;
        cql_result_destroy(r);
    }
    assert_int_equal(rows, 10000);
}

/* ---- prepared cache ------------------------------------------------------------------------ */

static void test_prepared_cache_eviction(void **state)
{
    (void)state;
    cql_options o;
    cqlt_options(&o, "MSGSTORE_TEST_CASSANDRA", "127.0.0.1:9042");
    o.prepared_cache_size = 4;
    o.keyspace = ks;
    cql_sync *c;
    cql_status st;
    assert_int_equal(cql_sync_connect(&o, &c, &st), 0);
    q_ok("CREATE TABLE IF NOT EXISTS %s.pc (k int PRIMARY KEY, v int)", ks);
    char q[128];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 10; i++) {
            /* ten distinct statements, unqualified names: the session keyspace is the key */
            snprintf(q, sizeof(q), "SELECT v FROM pc WHERE k = %d", i);
            cql_statement s;
            cql_statement_init(&s);
            s.query = q;
            s.prepare = true;
            assert_int_equal(cql_sync_execute(c, &s, NULL, &st), 0);
        }
    }
    cql_session_stats ss;
    cql_sync_stats(c, &ss);
    assert_int_equal(ss.prepared_cached, 4);
    assert_int_equal(ss.prepared_misses, 20); /* the LRU never holds the next one */
    assert_int_equal(ss.prepared_evictions, 16);
    /* the most recent ones hit */
    for (int i = 6; i < 10; i++) {
        snprintf(q, sizeof(q), "SELECT v FROM pc WHERE k = %d", i);
        cql_statement s;
        cql_statement_init(&s);
        s.query = q;
        s.prepare = true;
        assert_int_equal(cql_sync_execute(c, &s, NULL, &st), 0);
    }
    cql_sync_stats(c, &ss);
    assert_int_equal(ss.prepared_hits, 4);
    assert_int_equal(ss.prepared_misses, 20);
    cql_sync_close(c);
}

static void test_unprepared_recovery(void **state)
{
    (void)state;
    q_ok("CREATE TABLE IF NOT EXISTS %s.up (k int PRIMARY KEY, v text)", ks);
    cql_prepared *ins = prep("INSERT INTO %s.up (k, v) VALUES (?, ?)", ks);
    cql_prepared *sel = prep("SELECT k, v FROM %s.up WHERE k = ?", ks);
    cql_values v;
    cql_values_init(&v);
    cql_values_add_int(&v, 1);
    cql_values_add_text(&v, "before", 6);
    cql_status st;
    assert_int_equal(exec(ins, &v, NULL, &st), 0);
    cql_session_stats before;
    cql_sync_stats(db, &before);
    /* dropping the table makes the server forget both statements */
    q_ok("DROP TABLE %s.up", ks);
    q_ok("CREATE TABLE %s.up (k int PRIMARY KEY, v text)", ks);
    cql_values_reset(&v);
    cql_values_add_int(&v, 2);
    cql_values_add_text(&v, "after", 5);
    int rc = exec(ins, &v, NULL, &st);
    if (rc)
        fprintf(stderr, "insert after recreate: %s\n", st.message);
    assert_int_equal(rc, 0);
    cql_values_reset(&v);
    cql_values_add_int(&v, 2);
    cql_result *r;
    assert_int_equal(exec(sel, &v, &r, &st), 0);
    assert_int_equal(r->row_count, 1);
    assert_int_equal(cql_result_next_row(r), 0);
    cql_str s;
    assert_int_equal(cql_row_get_text(r, 1, &s), 0);
    assert_true(cql_str_eq(s, "after"));
    cql_result_destroy(r);
    cql_session_stats after;
    cql_sync_stats(db, &after);
    assert_true(after.reprepares >= before.reprepares + 2);
    cql_values_free(&v);
    cql_prepared_release(ins);
    cql_prepared_release(sel);
}

/* ---- 10k requests in flight on one connection ----------------------------------------------- */

typedef struct flood {
    int done, ok, max_in_flight;
    cql_session *s;
    char err[256];
} flood;

static void flood_cb(cql_result *res, const cql_status *st, void *ud)
{
    flood *f = ud;
    (void)res;
    f->done++;
    if (st->code == 0)
        f->ok++;
    else if (!f->err[0])
        snprintf(f->err, sizeof(f->err), "%s", st->message);
    cql_host_info h;
    if (cql_session_hosts(f->s, &h, 1) == 1 && h.in_flight > f->max_in_flight)
        f->max_in_flight = h.in_flight;
}

static void closed_cb(void *ud)
{
    *(int *)ud = 1;
}

static void test_10k_in_flight(void **state)
{
    (void)state;
    q_ok("CREATE TABLE IF NOT EXISTS %s.fl (k int PRIMARY KEY, v int)", ks);
    uv_loop_t loop;
    uv_loop_init(&loop);
    cql_options o;
    cqlt_options(&o, "MSGSTORE_TEST_CASSANDRA", "127.0.0.1:9042");
    o.pool_size = 1;
    o.request_timeout_ms = 60000;
    cql_session *s;
    assert_int_equal(cqlt_session_up(&loop, &o, &s), 1);
    enum { N = 10000 };
    flood f = {0};
    f.s = s;
    char q[128];
    snprintf(q, sizeof(q), "INSERT INTO %s.fl (k, v) VALUES (?, ?)", ks);
    for (int i = 0; i < N; i++) {
        cql_values v;
        cql_values_init(&v);
        cql_values_add_int(&v, i);
        cql_values_add_int(&v, i * 2);
        cql_statement st;
        cql_statement_init(&st);
        st.query = q;
        st.prepare = true;
        st.values = &v;
        assert_int_equal(cql_session_execute(s, &st, flood_cb, &f), 0);
        cql_values_free(&v);
    }
    cql_session_stats ss;
    cql_session_stats_get(s, &ss);
    assert_int_equal(ss.in_flight, N);
    while (f.done < N)
        uv_run(&loop, UV_RUN_ONCE);
    if (f.ok != N)
        fprintf(stderr, "flood: %d/%d ok, first error: %s\n", f.ok, N, f.err);
    assert_int_equal(f.ok, N);
    /* all of them were on the wire at once, on the one connection */
    assert_true(f.max_in_flight >= N - 1);
    cql_host_info h;
    assert_int_equal(cql_session_hosts(s, &h, 1), 1);
    assert_int_equal(h.connections, 1);
    assert_int_equal(h.in_flight, 0);
    int closed = 0;
    cql_session_close(s, 1000, closed_cb, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- LZ4 ------------------------------------------------------------------------------------ */

static void lz4_round(bool compression)
{
    cql_options o;
    cqlt_options(&o, "MSGSTORE_TEST_CASSANDRA", "127.0.0.1:9042");
    o.compression = compression;
    cql_sync *c;
    cql_status st;
    assert_int_equal(cql_sync_connect(&o, &c, &st), 0);
    cql_host_info h;
    assert_int_equal(cql_sync_hosts(c, &h, 1), 1);
    assert_int_equal(h.lz4, compression);
    char q[128];
    snprintf(q, sizeof(q), "INSERT INTO %s.lz (k, v) VALUES (?, ?)", ks);
    /* 200 KB of text: compressible, bigger than a read chunk */
    size_t n = 200000;
    char *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + (i * 7 + i / 13) % 26);
    cql_values v;
    cql_values_init(&v);
    cql_values_add_int(&v, compression);
    cql_values_add_text(&v, big, n);
    cql_statement s;
    cql_statement_init(&s);
    s.query = q;
    s.prepare = true;
    s.values = &v;
    assert_int_equal(cql_sync_execute(c, &s, NULL, &st), 0);
    snprintf(q, sizeof(q), "SELECT v FROM %s.lz WHERE k = %d", ks, compression);
    cql_result *r;
    assert_int_equal(cql_sync_query(c, q, &r, &st), 0);
    assert_int_equal(cql_result_next_row(r), 0);
    cql_str got;
    assert_int_equal(cql_row_get_text(r, 0, &got), 0);
    assert_int_equal(got.len, n);
    assert_memory_equal(got.ptr, big, n);
    cql_result_destroy(r);
    cql_values_free(&v);
    free(big);
    cql_sync_close(c);
}

static void test_lz4(void **state)
{
    (void)state;
    q_ok("CREATE TABLE IF NOT EXISTS %s.lz (k int PRIMARY KEY, v text)", ks);
    lz4_round(true);
    lz4_round(false);
}

/* ---- errors ---------------------------------------------------------------------------------- */

static void test_errors_are_values(void **state)
{
    (void)state;
    cql_status st;
    cql_result *r = (cql_result *)1;
    assert_int_equal(cql_sync_query(db, "SELEC nonsense", &r, &st), MS_ERR_INVALID);
    assert_null(r);
    assert_int_equal(st.server_code, CQL_ERR_SYNTAX);
    assert_non_null(strstr(st.message, "Syntax_error"));
    assert_string_equal(st.host, "127.0.0.1:9042");
    assert_int_equal(cql_sync_query(db, "SELECT * FROM no_such_ks.t", NULL, &st), MS_ERR_INVALID);
    assert_int_equal(st.server_code, CQL_ERR_INVALID);
    char q[160];
    snprintf(q, sizeof(q), "CREATE TABLE %s.pg (p int PRIMARY KEY)", ks);
    assert_int_equal(cql_sync_query(db, q, NULL, &st), MS_ERR_CONFLICT);
    assert_int_equal(st.server_code, CQL_ERR_ALREADY_EXISTS);
    cql_prepared *p;
    assert_int_equal(cql_sync_prepare(db, "SELECT * FROM no_such_ks.t WHERE k = ?", &p, &st),
                     MS_ERR_INVALID);
    assert_null(p);
    /* a failed prepare is not cached: the same text fails again, cleanly */
    assert_int_equal(cql_sync_prepare(db, "SELECT * FROM no_such_ks.t WHERE k = ?", &p, &st),
                     MS_ERR_INVALID);
    /* a session still works after all that */
    assert_int_equal(cql_sync_query(db, "SELECT now() FROM system.local", NULL, &st), 0);
    /* bad options are refused up front */
    cql_options o;
    cqlt_options(&o, "MSGSTORE_TEST_CASSANDRA", "127.0.0.1:9042");
    o.keyspace = "bad-name";
    cql_sync *c;
    assert_int_equal(cql_sync_connect(&o, &c, &st), MS_ERR_INVALID);
    assert_non_null(strstr(st.message, "keyspace"));
}

static void test_connect_failures(void **state)
{
    (void)state;
    cql_options o;
    cqlt_options(&o, "MSGSTORE_TEST_CASSANDRA", "127.0.0.1:9042");
    cql_sync *c;
    cql_status st;
    /* nothing listens there */
    o.contact_points = "127.0.0.1:1";
    assert_int_equal(cql_sync_connect(&o, &c, &st), MS_ERR_UNAVAILABLE);
    assert_null(c);
    assert_non_null(strstr(st.message, "connection refused"));
    /* the NULL handle it leaves fails every call cleanly (no crash, a clear status) */
    assert_int_equal(cql_sync_query(c, "SELECT now() FROM system.local", NULL, &st),
                     MS_ERR_INVALID);
    assert_non_null(strstr(st.message, "no session"));
    cql_prepared *prep = (cql_prepared *)&st; /* reset to NULL by the call */
    assert_int_equal(cql_sync_prepare(c, "SELECT now() FROM system.local", &prep, &st),
                     MS_ERR_INVALID);
    assert_null(prep);
    cql_host_info hi[2];
    assert_int_equal(cql_sync_hosts(c, hi, 2), 0);
    cql_session_stats ss;
    memset(&ss, 0xff, sizeof ss);
    cql_sync_stats(c, &ss);
    assert_int_equal(ss.in_flight, 0);
    cql_sync_run_for(c, 0);
    cql_sync_close(c);
    /* a listener that never answers: the connect timeout fires during OPTIONS */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    char cp[64];
    snprintf(cp, sizeof(cp), "127.0.0.1:%d", ntohs(sa.sin_port));
    o.contact_points = cp;
    o.connect_timeout_ms = 300;
    assert_int_equal(cql_sync_connect(&o, &c, &st), MS_ERR_UNAVAILABLE);
    assert_non_null(strstr(st.message, "connect timeout after 300 ms (during OPTIONS)"));
    close(fd);
    /* an unknown local DC is named */
    cqlt_options(&o, "MSGSTORE_TEST_CASSANDRA", "127.0.0.1:9042");
    o.local_dc = "mars";
    assert_int_equal(cql_sync_connect(&o, &c, &st), MS_ERR_INVALID);
    assert_non_null(strstr(st.message, "no host in the local DC \"mars\""));
    /* a host name that does not resolve */
    cqlt_options(&o, "MSGSTORE_TEST_CASSANDRA", "127.0.0.1:9042");
    o.contact_points = "no-such-host.invalid";
    assert_int_equal(cql_sync_connect(&o, &c, &st), MS_ERR_UNAVAILABLE);
    assert_non_null(strstr(st.message, "cannot resolve"));
}

/* ---- graceful close ---------------------------------------------------------------------------
 */

typedef struct closing {
    int done, ok, shutdown;
} closing;

static void closing_cb(cql_result *res, const cql_status *st, void *ud)
{
    closing *c = ud;
    (void)res;
    c->done++;
    if (st->code == 0)
        c->ok++;
    else if (st->code == MS_ERR_SHUTDOWN)
        c->shutdown++;
}

static void test_graceful_close(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    cql_options o;
    cqlt_options(&o, "MSGSTORE_TEST_CASSANDRA", "127.0.0.1:9042");
    cql_session *s;
    assert_int_equal(cqlt_session_up(&loop, &o, &s), 1);
    closing c = {0};
    char q[128];
    snprintf(q, sizeof(q), "SELECT * FROM %s.pg WHERE p = 1", ks);
    for (int i = 0; i < 50; i++) {
        cql_statement st;
        cql_statement_init(&st);
        st.query = q;
        assert_int_equal(cql_session_execute(s, &st, closing_cb, &c), 0);
    }
    /* in flight requests may finish (generous deadline): all complete, none lost */
    int closed = 0;
    cql_session_close(s, 10000, closed_cb, &closed);
    /* after close: refused with a clear error, reported through the callback */
    cql_statement st;
    cql_statement_init(&st);
    st.query = q;
    assert_int_equal(cql_session_execute(s, &st, closing_cb, &c), 0);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(c.done, 51);
    assert_int_equal(c.ok, 50);
    assert_int_equal(c.shutdown, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);

    /* a zero deadline: whatever is still in flight completes with MS_ERR_SHUTDOWN */
    uv_loop_init(&loop);
    assert_int_equal(cqlt_session_up(&loop, &o, &s), 1);
    memset(&c, 0, sizeof(c));
    for (int i = 0; i < 50; i++) {
        cql_statement_init(&st);
        st.query = q;
        assert_int_equal(cql_session_execute(s, &st, closing_cb, &c), 0);
    }
    closed = 0;
    cql_session_close(s, 0, closed_cb, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(c.done, 50);
    assert_int_equal(c.ok + c.shutdown, 50);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- metrics ----------------------------------------------------------------------------------
 */

static void test_metrics(void **state)
{
    (void)state;
    cql_status st;
    /* one success and one failure on the shared session */
    assert_int_equal(cql_sync_query(db, "SELECT now() FROM system.local", NULL, &st), 0);
    assert_int_equal(cql_sync_query(db, "SELEC 1", NULL, &st), MS_ERR_INVALID);
    size_t len;
    char *text = ms_metrics_render(&len);
    assert_non_null(text);
    const char *want[] = {
        "msgstore_cql_requests_total{session=\"it\"}",
        "msgstore_cql_errors_total{session=\"it\",kind=\"invalid_argument\"}",
        "msgstore_cql_request_duration_seconds_bucket{session=\"it\",le=",
        "msgstore_cql_host_requests_total{session=\"it\",host=\"127.0.0.1:9042\"}",
        "msgstore_cql_host_in_flight{session=\"it\",host=\"127.0.0.1:9042\"} 0",
        "msgstore_cql_breaker_state{session=\"it\",host=\"127.0.0.1:9042\"} 0",
        "msgstore_cql_host_up{session=\"it\",host=\"127.0.0.1:9042\"} 1",
        "msgstore_cql_retries_total{session=\"it\"}",
        "msgstore_cql_timeouts_total{session=\"it\"}",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (!strstr(text, want[i]))
            fprintf(stderr, "missing: %s\n", want[i]);
        assert_non_null(strstr(text, want[i]));
    }
    free(text);
}

/* The value of an unlabelled metric in the rendered text (-1: absent). */
static long long metric_value(const char *name)
{
    size_t len;
    char *text = ms_metrics_render(&len);
    assert_non_null(text);
    char key[128];
    snprintf(key, sizeof(key), "\n%s ", name);
    const char *p = strstr(text, key);
    long long v = p ? strtoll(p + strlen(key), NULL, 10) : -1;
    free(text);
    return v;
}

/*
 * msgstore_cql_in_flight counts the requests in flight over every session of
 * the process, msgstore_cql_in_flight_max their high-water mark: 300 requests
 * submitted on one loop are all in flight at once, then none.
 */
static void test_in_flight_gauge(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    cql_options o;
    cqlt_options(&o, "MSGSTORE_TEST_CASSANDRA", "127.0.0.1:9042");
    cql_session *s;
    assert_int_equal(cqlt_session_up(&loop, &o, &s), 1);
    long long before = metric_value("msgstore_cql_in_flight");
    assert_true(before >= 0);
    closing c = {0};
    for (int i = 0; i < 300; i++) {
        cql_statement st;
        cql_statement_init(&st);
        st.query = "SELECT release_version FROM system.local";
        assert_int_equal(cql_session_execute(s, &st, closing_cb, &c), 0);
    }
    assert_int_equal(metric_value("msgstore_cql_in_flight"), before + 300);
    assert_true(metric_value("msgstore_cql_in_flight_max") >= before + 300);
    while (c.done < 300)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(c.ok, 300);
    assert_int_equal(metric_value("msgstore_cql_in_flight"), before);
    assert_true(metric_value("msgstore_cql_in_flight_max") >= before + 300);
    int closed = 0;
    cql_session_close(s, 1000, closed_cb, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types_roundtrip),
        cmocka_unit_test(test_null_unset_counter),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_paging_10k),
        cmocka_unit_test(test_prepared_cache_eviction),
        cmocka_unit_test(test_unprepared_recovery),
        cmocka_unit_test(test_10k_in_flight),
        cmocka_unit_test(test_lz4),
        cmocka_unit_test(test_errors_are_values),
        cmocka_unit_test(test_connect_failures),
        cmocka_unit_test(test_graceful_close),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_in_flight_gauge),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
