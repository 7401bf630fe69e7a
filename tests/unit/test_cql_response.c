/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CQL v4 responses decoded from hand-built bodies: frame prefixes (tracing
 * id, warnings, custom payload), every ERROR code with its extra fields,
 * AUTHENTICATE/AUTH_CHALLENGE/AUTH_SUCCESS, every RESULT kind, EVENTs; and
 * hostile input: every truncation and random corruption of each body must
 * give an error (ASan checks that nothing is read out of bounds: each body is
 * copied into an exactly-sized heap block first).
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

#define S(b, s) cql__put_string(b, s, strlen(s))

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    assert_non_null(d);
    if (n)
        memcpy(d, p, n);
    return d;
}

/* ---------------------------------------------------------------- prefixes */

static void test_prefixes(void **state)
{
    (void)state;
    cql_buf b = {0};
    const uint8_t trace[16] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                               0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00};
    cql_buf_append(&b, trace, 16);
    cql__put_short(&b, 2); /* warnings */
    S(&b, "Aggregation query used without partition key");
    S(&b, "second");
    cql__put_short(&b, 1); /* custom payload */
    S(&b, "tablets-routing-v1");
    cql__put_bytes(&b, "\x01\x02", 2);
    cql__put_int(&b, CQL_RESULT_VOID); /* body proper */
    cql_frame_header h = {0x84, CQL_FLAG_TRACING | CQL_FLAG_WARNING | CQL_FLAG_CUSTOM_PAYLOAD, 3,
                          CQL_OP_RESULT, (uint32_t)b.len};
    uint8_t *body = dup_exact(b.data, b.len);
    cql_response r;
    assert_int_equal(cql__response_open(&h, body, b.len, &r), 0);
    assert_true(r.has_tracing);
    assert_memory_equal(r.tracing_id, trace, 16);
    assert_int_equal(r.warning_count, 2);
    cql_str w;
    assert_int_equal(cql__response_warning(&r, 0, &w), 0);
    assert_true(cql_str_eq(w, "Aggregation query used without partition key"));
    assert_int_equal(cql__response_warning(&r, 1, &w), 0);
    assert_true(cql_str_eq(w, "second"));
    assert_int_equal(cql__response_warning(&r, 2, &w), MS_ERR_INVALID);
    assert_int_equal(r.payload_count, 1);
    cql_str k;
    cql_bytes v;
    assert_int_equal(cql__response_payload(&r, 0, &k, &v), 0);
    assert_true(cql_str_eq(k, "tablets-routing-v1"));
    assert_int_equal(v.len, 2);
    assert_int_equal(r.body_len, 4);
    cql_result res;
    assert_int_equal(cql__result_decode(&res, r.body, r.body_len, NULL, NULL), 0);
    assert_int_equal(res.kind, CQL_RESULT_VOID);
    cql_result_free(&res);
    /* every truncation fails */
    for (size_t n = 0; n < b.len - 4; n++) {
        uint8_t *t = dup_exact(b.data, n);
        assert_int_not_equal(cql__response_open(&h, t, n, &r), 0);
        free(t);
    }
    /* only warnings (no tracing): warnings come first */
    cql_frame_header h2 = {0x84, CQL_FLAG_WARNING, 0, CQL_OP_RESULT, 0};
    const uint8_t wb[] = {0, 1, 0, 2, 'o', 'k', 0, 0, 0, 1};
    assert_int_equal(cql__response_open(&h2, wb, sizeof wb, &r), 0);
    assert_false(r.has_tracing);
    assert_int_equal(r.warning_count, 1);
    assert_int_equal(r.body_len, 4);
    free(body);
    cql_buf_free(&b);
}

/* ------------------------------------------------------------------ errors */

typedef void (*build_fn)(cql_buf *b);

static void err_unavailable(cql_buf *b)
{
    cql__put_int(b, 0x1000);
    S(b, "Cannot achieve consistency level QUORUM");
    cql__put_short(b, 0x0004);
    cql__put_int(b, 2);
    cql__put_int(b, 1);
}
static void err_write_timeout(cql_buf *b)
{
    cql__put_int(b, 0x1100);
    S(b, "Operation timed out");
    cql__put_short(b, 0x0006);
    cql__put_int(b, 1);
    cql__put_int(b, 2);
    S(b, "BATCH_LOG");
}
static void err_read_timeout(cql_buf *b)
{
    cql__put_int(b, 0x1200);
    S(b, "Operation timed out");
    cql__put_short(b, 0x000A);
    cql__put_int(b, 0);
    cql__put_int(b, 1);
    cql__put_byte(b, 1);
}
static void err_read_failure(cql_buf *b)
{
    cql__put_int(b, 0x1300);
    S(b, "Operation failed");
    cql__put_short(b, 0x0001);
    cql__put_int(b, 0);
    cql__put_int(b, 1);
    cql__put_int(b, 1);
    cql__put_byte(b, 0);
}
static void err_write_failure(cql_buf *b)
{
    cql__put_int(b, 0x1500);
    S(b, "Operation failed");
    cql__put_short(b, 0x0005);
    cql__put_int(b, 2);
    cql__put_int(b, 3);
    cql__put_int(b, 1);
    S(b, "COUNTER");
}
static void err_function_failure(cql_buf *b)
{
    cql__put_int(b, 0x1400);
    S(b, "execution of 'ks.f[int, text]' failed");
    S(b, "ks");
    S(b, "f");
    cql__put_short(b, 2);
    S(b, "int");
    S(b, "text");
}
static void err_already_exists(cql_buf *b)
{
    cql__put_int(b, 0x2400);
    S(b, "Cannot add already existing table");
    S(b, "msgstore");
    S(b, "messages");
}
static void err_unprepared(cql_buf *b)
{
    cql__put_int(b, 0x2500);
    S(b, "Prepared query with ID 0a0b not found");
    cql__put_short_bytes(b, "\x0a\x0b\x0c", 3);
}
static void err_cas_unknown(cql_buf *b)
{
    cql__put_int(b, 0x1700);
    S(b, "CAS operation result is unknown");
    cql__put_short(b, 0x0008);
    cql__put_int(b, 1);
    cql__put_int(b, 2);
}

static void check_truncations(build_fn f)
{
    cql_buf b = {0};
    f(&b);
    cql_error e;
    for (size_t n = 0; n < b.len; n++) {
        uint8_t *t = dup_exact(b.data, n);
        assert_int_equal(cql__error_decode(t, n, &e), MS_ERR_INVALID);
        free(t);
    }
    uint8_t *t = dup_exact(b.data, b.len);
    assert_int_equal(cql__error_decode(t, b.len, &e), 0);
    free(t);
    cql_buf_free(&b);
}

static void decode_built(build_fn f, cql_buf *b, cql_error *e)
{
    cql_buf_reset(b);
    f(b);
    assert_int_equal(cql__error_decode(b->data, b->len, e), 0);
}

static void test_errors_with_fields(void **state)
{
    (void)state;
    cql_buf b = {0};
    cql_error e;

    decode_built(err_unavailable, &b, &e);
    assert_int_equal(e.code, CQL_ERR_UNAVAILABLE);
    assert_true(cql_str_eq(e.message, "Cannot achieve consistency level QUORUM"));
    assert_int_equal(e.consistency, CQL_CONSISTENCY_QUORUM);
    assert_int_equal(e.required, 2);
    assert_int_equal(e.alive, 1);
    assert_string_equal(cql_error_code_name(e.code), "Unavailable");

    decode_built(err_write_timeout, &b, &e);
    assert_int_equal(e.code, CQL_ERR_WRITE_TIMEOUT);
    assert_int_equal(e.consistency, CQL_CONSISTENCY_LOCAL_QUORUM);
    assert_int_equal(e.received, 1);
    assert_int_equal(e.block_for, 2);
    assert_true(cql_str_eq(e.write_type, "BATCH_LOG"));

    decode_built(err_read_timeout, &b, &e);
    assert_int_equal(e.code, CQL_ERR_READ_TIMEOUT);
    assert_int_equal(e.consistency, CQL_CONSISTENCY_LOCAL_ONE);
    assert_int_equal(e.received, 0);
    assert_int_equal(e.block_for, 1);
    assert_true(e.data_present);

    decode_built(err_read_failure, &b, &e);
    assert_int_equal(e.code, CQL_ERR_READ_FAILURE);
    assert_int_equal(e.num_failures, 1);
    assert_false(e.data_present);
    assert_int_equal(e.block_for, 1);

    decode_built(err_write_failure, &b, &e);
    assert_int_equal(e.code, CQL_ERR_WRITE_FAILURE);
    assert_int_equal(e.consistency, CQL_CONSISTENCY_ALL);
    assert_int_equal(e.received, 2);
    assert_int_equal(e.block_for, 3);
    assert_int_equal(e.num_failures, 1);
    assert_true(cql_str_eq(e.write_type, "COUNTER"));

    decode_built(err_function_failure, &b, &e);
    assert_int_equal(e.code, CQL_ERR_FUNCTION_FAILURE);
    assert_true(cql_str_eq(e.function_keyspace, "ks"));
    assert_true(cql_str_eq(e.function_name, "f"));
    assert_int_equal(e.arg_count, 2);
    cql_str a;
    assert_int_equal(cql_error_arg_type(&e, 0, &a), 0);
    assert_true(cql_str_eq(a, "int"));
    assert_int_equal(cql_error_arg_type(&e, 1, &a), 0);
    assert_true(cql_str_eq(a, "text"));
    assert_int_equal(cql_error_arg_type(&e, 2, &a), MS_ERR_INVALID);

    decode_built(err_already_exists, &b, &e);
    assert_int_equal(e.code, CQL_ERR_ALREADY_EXISTS);
    assert_true(cql_str_eq(e.keyspace, "msgstore"));
    assert_true(cql_str_eq(e.table, "messages"));

    decode_built(err_unprepared, &b, &e);
    assert_int_equal(e.code, CQL_ERR_UNPREPARED);
    assert_int_equal(e.unprepared_id.len, 3);
    assert_memory_equal(e.unprepared_id.ptr, "\x0a\x0b\x0c", 3);

    decode_built(err_cas_unknown, &b, &e);
    assert_int_equal(e.code, CQL_ERR_CAS_WRITE_UNKNOWN);
    assert_int_equal(e.consistency, CQL_CONSISTENCY_SERIAL);
    assert_int_equal(e.block_for, 2);

    build_fn all[] = {err_unavailable,    err_write_timeout, err_read_timeout,
                      err_read_failure,   err_write_failure, err_function_failure,
                      err_already_exists, err_unprepared,    err_cas_unknown};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        check_truncations(all[i]);
    cql_buf_free(&b);
}

static void test_errors_plain(void **state)
{
    (void)state;
    /* codes with no extra fields: <int code><string message> */
    const int32_t codes[] = {0x0000, 0x000A, 0x0100, 0x1001, 0x1002, 0x1003,
                             0x1600, 0x2000, 0x2100, 0x2200, 0x2300, 0x7777 /* unknown, kept */};
    const char *names[] = {"Server_error",      "Protocol_error",   "Bad_credentials",
                           "Overloaded",        "Is_bootstrapping", "Truncate_error",
                           "CDC_write_failure", "Syntax_error",     "Unauthorized",
                           "Invalid",           "Config_error",     "Unknown_error"};
    cql_buf b = {0};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        cql_buf_reset(&b);
        cql__put_int(&b, codes[i]);
        S(&b, "msg");
        uint8_t *t = dup_exact(b.data, b.len);
        cql_error e;
        assert_int_equal(cql__error_decode(t, b.len, &e), 0);
        assert_int_equal(e.code, codes[i]);
        assert_true(cql_str_eq(e.message, "msg"));
        assert_string_equal(cql_error_code_name(e.code), names[i]);
        for (size_t n = 0; n < b.len; n++)
            assert_int_equal(cql__error_decode(t, n, &e), MS_ERR_INVALID);
        free(t);
    }
    /* literal bytes: Bad credentials from an auth node */
    const uint8_t raw[] = {0x00, 0x00, 0x01, 0x00, 0x00, 0x05, 'b', 'a', 'd', '!', '!'};
    cql_error e;
    assert_int_equal(cql__error_decode(raw, sizeof raw, &e), 0);
    assert_int_equal(e.code, CQL_ERR_BAD_CREDENTIALS);
    assert_int_equal(e.message.len, 5);
    cql_buf_free(&b);
}

/* -------------------------------------------------------- auth + events */

static void test_auth_bodies(void **state)
{
    (void)state;
    const char *cls = "org.apache.cassandra.auth.PasswordAuthenticator";
    cql_buf b = {0};
    S(&b, cls);
    cql_str s;
    assert_int_equal(cql__authenticate_decode(b.data, b.len, &s), 0);
    assert_true(cql_str_eq(s, cls));
    assert_int_equal(cql__authenticate_decode(b.data, b.len - 1, &s), MS_ERR_INVALID);
    cql_bytes tok;
    const uint8_t succ_null[] = {0xFF, 0xFF, 0xFF, 0xFF};
    assert_int_equal(cql__auth_token_decode(succ_null, 4, &tok), 0);
    assert_int_equal(tok.len, -1);
    const uint8_t chal[] = {0, 0, 0, 2, 0xAA, 0xBB};
    assert_int_equal(cql__auth_token_decode(chal, 6, &tok), 0);
    assert_int_equal(tok.len, 2);
    assert_int_equal(cql__auth_token_decode(chal, 5, &tok), MS_ERR_INVALID);
    const uint8_t unset[] = {0xFF, 0xFF, 0xFF, 0xFE};
    assert_int_equal(cql__auth_token_decode(unset, 4, &tok), MS_ERR_INVALID);
    const uint8_t neg[] = {0x80, 0, 0, 0};
    assert_int_equal(cql__auth_token_decode(neg, 4, &tok), MS_ERR_INVALID);
    cql_buf_free(&b);
}

static void test_events(void **state)
{
    (void)state;
    cql_event ev;
    /* TOPOLOGY_CHANGE NEW_NODE 127.0.1.4:9042 */
    cql_buf b = {0};
    S(&b, "TOPOLOGY_CHANGE");
    S(&b, "NEW_NODE");
    cql__put_byte(&b, 4);
    cql_buf_append(&b, "\x7f\x00\x01\x04", 4);
    cql__put_int(&b, 9042);
    assert_int_equal(cql__event_decode(b.data, b.len, &ev), 0);
    assert_int_equal(ev.kind, CQL_EVENT_TOPOLOGY_CHANGE);
    assert_true(cql_str_eq(ev.change, "NEW_NODE"));
    assert_int_equal(ev.addr_len, 4);
    assert_memory_equal(ev.addr, "\x7f\x00\x01\x04", 4);
    assert_int_equal(ev.port, 9042);
    for (size_t n = 0; n < b.len; n++) {
        uint8_t *t = dup_exact(b.data, n);
        assert_int_equal(cql__event_decode(t, n, &ev), MS_ERR_INVALID);
        free(t);
    }
    /* STATUS_CHANGE DOWN [::1]:9042 */
    cql_buf_reset(&b);
    S(&b, "STATUS_CHANGE");
    S(&b, "DOWN");
    cql__put_byte(&b, 16);
    uint8_t v6[16] = {0};
    v6[15] = 1;
    cql_buf_append(&b, v6, 16);
    cql__put_int(&b, 9042);
    assert_int_equal(cql__event_decode(b.data, b.len, &ev), 0);
    assert_int_equal(ev.kind, CQL_EVENT_STATUS_CHANGE);
    assert_true(cql_str_eq(ev.change, "DOWN"));
    assert_int_equal(ev.addr_len, 16);
    assert_memory_equal(ev.addr, v6, 16);
    /* an address of 5 bytes is invalid */
    b.data[2 + 13 + 2 + 4] = 5;
    assert_int_equal(cql__event_decode(b.data, b.len, &ev), MS_ERR_INVALID);
    /* SCHEMA_CHANGE: keyspace, table, type, function, aggregate */
    struct {
        const char *target;
        int extra; /* 0 none, 1 name, 2 name + args */
    } t[] = {{"KEYSPACE", 0}, {"TABLE", 1}, {"TYPE", 1}, {"FUNCTION", 2}, {"AGGREGATE", 2}};
    for (size_t i = 0; i < 5; i++) {
        cql_buf_reset(&b);
        S(&b, "SCHEMA_CHANGE");
        S(&b, "UPDATED");
        S(&b, t[i].target);
        S(&b, "ks");
        if (t[i].extra >= 1)
            S(&b, "obj");
        if (t[i].extra == 2) {
            cql__put_short(&b, 2);
            S(&b, "int");
            S(&b, "frozen<list<text>>");
        }
        assert_int_equal(cql__event_decode(b.data, b.len, &ev), 0);
        assert_int_equal(ev.kind, CQL_EVENT_SCHEMA_CHANGE);
        assert_true(cql_str_eq(ev.schema.change_type, "UPDATED"));
        assert_true(cql_str_eq(ev.schema.target, t[i].target));
        assert_true(cql_str_eq(ev.schema.keyspace, "ks"));
        assert_true(cql_str_eq(ev.schema.name, t[i].extra ? "obj" : ""));
        assert_int_equal(ev.schema.arg_count, t[i].extra == 2 ? 2 : 0);
        if (t[i].extra == 2) {
            cql_str a;
            assert_int_equal(cql_schema_change_arg(&ev.schema, 1, &a), 0);
            assert_true(cql_str_eq(a, "frozen<list<text>>"));
        }
        for (size_t n = 0; n < b.len; n++) {
            uint8_t *c = dup_exact(b.data, n);
            assert_int_equal(cql__event_decode(c, n, &ev), MS_ERR_INVALID);
            free(c);
        }
    }
    cql_buf_reset(&b);
    S(&b, "SOMETHING_NEW");
    assert_int_equal(cql__event_decode(b.data, b.len, &ev), MS_ERR_INVALID);
    cql_buf_free(&b);
}

/* ---------------------------------------------------------------- results */

static void put_col(cql_buf *b, bool global, const char *name, uint16_t type)
{
    if (!global) {
        S(b, "ks");
        S(b, "tbl");
    }
    S(b, name);
    cql__put_short(b, type);
}

/* Rows: (id bigint, name text, tags list<text>) x 2 rows; one null cell. */
static void build_rows(cql_buf *b, bool global, bool more)
{
    cql__put_int(b, CQL_RESULT_ROWS);
    cql__put_int(b, (global ? 1 : 0) | (more ? 2 : 0));
    cql__put_int(b, 3);
    if (more)
        cql__put_bytes(b, "\x00\x07page", 6);
    if (global) {
        S(b, "ks");
        S(b, "tbl");
    }
    put_col(b, global, "id", CQL_TYPE_BIGINT);
    put_col(b, global, "name", CQL_TYPE_VARCHAR);
    put_col(b, global, "tags", CQL_TYPE_LIST);
    cql__put_short(b, CQL_TYPE_VARCHAR);
    cql__put_int(b, 2); /* rows */
    /* row 1 */
    cql__put_bytes(b, "\x00\x00\x00\x00\x00\x00\x00\x2a", 8);
    cql__put_bytes(b, "alice", 5);
    cql__put_bytes(b, "\x00\x00\x00\x02\x00\x00\x00\x01x\x00\x00\x00\x02yz", 15);
    /* row 2 */
    cql__put_bytes(b, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
    cql__put_bytes(b, NULL, -1);
    cql__put_bytes(b, "\x00\x00\x00\x00", 4);
}

static void check_rows(cql_result *r, bool more)
{
    assert_int_equal(r->kind, CQL_RESULT_ROWS);
    assert_int_equal(r->row_count, 2);
    assert_int_equal(cql_result_column_count(r), 3);
    const cql_column *c = cql_result_column(r, 1);
    assert_non_null(c);
    assert_true(cql_str_eq(c->keyspace, "ks"));
    assert_true(cql_str_eq(c->table, "tbl"));
    assert_true(cql_str_eq(c->name, "name"));
    assert_int_equal(c->type->id, CQL_TYPE_VARCHAR);
    assert_int_equal(cql_result_column(r, 2)->type->id, CQL_TYPE_LIST);
    assert_int_equal(cql_result_column(r, 2)->type->sub[0]->id, CQL_TYPE_VARCHAR);
    assert_null(cql_result_column(r, 3));
    assert_int_equal(cql_result_column_index(r, "tags"), 2);
    assert_int_equal(cql_result_column_index(r, "nope"), MS_ERR_NOT_FOUND);
    assert_int_equal(cql_result_has_more_pages(r), more);
    cql_bytes ps = cql_result_paging_state(r);
    if (more) {
        assert_int_equal(ps.len, 6);
        assert_memory_equal(ps.ptr, "\x00\x07page", 6);
    } else {
        assert_int_equal(ps.len, -1);
    }
    for (int pass = 0; pass < 2; pass++) {
        int64_t id;
        cql_str name;
        assert_int_equal(cql_row_get_bigint(r, 0, &id), MS_ERR_INVALID); /* no row yet */
        assert_int_equal(cql_result_next_row(r), 0);
        assert_int_equal(cql_row_get_bigint(r, 0, &id), 0);
        assert_int_equal(id, 42);
        assert_int_equal(cql_row_get_text(r, 1, &name), 0);
        assert_true(cql_str_eq(name, "alice"));
        assert_int_equal(cql_row_get_int(r, 0, &(int32_t){0}), MS_ERR_UNPROCESSABLE);
        assert_int_equal(cql_row_get_text(r, 0, &name), MS_ERR_UNPROCESSABLE);
        assert_int_equal(cql_row_get_bigint(r, 3, &id), MS_ERR_INVALID);
        assert_int_equal(cql_row_get_bigint(r, -1, &id), MS_ERR_INVALID);
        cql_arena a;
        cql_arena_init(&a);
        cql_value v;
        assert_int_equal(cql_row_get_value(r, 2, &a, &v), 0);
        assert_int_equal(v.v.coll.n, 2);
        assert_int_equal(v.v.coll.items[1].v.raw.len, 2);
        assert_memory_equal(v.v.coll.items[1].v.raw.ptr, "yz", 2);
        cql_arena_free(&a);
        assert_int_equal(cql_result_next_row(r), 0);
        assert_int_equal(cql_row_get_bigint(r, 0, &id), 0);
        assert_int_equal(id, -1);
        assert_true(cql_row_is_null(r, 1));
        assert_int_equal(cql_row_get_text(r, 1, &name), MS_ERR_NOT_FOUND);
        assert_int_equal(cql_result_next_row(r), MS_ERR_NOT_FOUND);
        assert_int_equal(cql_result_next_row(r), MS_ERR_NOT_FOUND);
        cql_result_rewind(r);
    }
}

static void test_result_rows(void **state)
{
    (void)state;
    for (int g = 0; g < 2; g++) {
        for (int more = 0; more < 2; more++) {
            cql_buf b = {0};
            build_rows(&b, g, more);
            cql_result r;
            /* hand the buffer over: freed by cql_result_free */
            uint8_t *body = dup_exact(b.data, b.len);
            assert_int_equal(cql__result_decode(&r, body, b.len, body, NULL), 0);
            check_rows(&r, more);
            cql_result_free(&r);
            cql_buf_free(&b);
        }
    }
}

static void test_result_rows_no_metadata(void **state)
{
    (void)state;
    /* metadata of a prepared SELECT, as cached by a prepared cache */
    cql_buf pb = {0};
    build_rows(&pb, true, false);
    cql_result full;
    assert_int_equal(cql__result_decode(&full, pb.data, pb.len, NULL, NULL), 0);
    cql_metadata *cached;
    assert_int_equal(cql__metadata_clone(&full.meta, &cached), 0);
    cql_result_free(&full);
    cql_buf_free(&pb); /* the clone owns its strings and types */

    cql_buf b = {0};
    cql__put_int(&b, CQL_RESULT_ROWS);
    cql__put_int(&b, CQL_META_NO_METADATA | CQL_META_HAS_MORE_PAGES);
    cql__put_int(&b, 3);
    cql__put_bytes(&b, "PS", 2);
    cql__put_int(&b, 1);
    cql__put_bytes(&b, "\x00\x00\x00\x00\x00\x00\x00\x07", 8);
    cql__put_bytes(&b, "bob", 3);
    cql__put_bytes(&b, NULL, -1);
    cql_result r;
    assert_int_equal(cql__result_decode(&r, b.data, b.len, NULL, cached), 0);
    assert_int_equal(cql_result_column_count(&r), 3);
    assert_true(cql_result_has_more_pages(&r));
    assert_int_equal(cql_result_next_row(&r), 0);
    cql_str name;
    assert_int_equal(cql_row_get_text(&r, 1, &name), 0);
    assert_true(cql_str_eq(name, "bob"));
    assert_true(cql_str_eq(cql_result_column(&r, 2)->name, "tags"));
    cql_result_free(&r);
    /* without cached metadata: rows are countable, columns unknown */
    assert_int_equal(cql__result_decode(&r, b.data, b.len, NULL, NULL), 0);
    assert_int_equal(cql_result_column_count(&r), -1);
    assert_int_equal(r.row_count, 1);
    assert_int_equal(cql_result_next_row(&r), 0);
    cql_bytes raw;
    assert_int_equal(cql_row_raw(&r, 1, &raw), 0);
    assert_int_equal(raw.len, 3);
    assert_int_equal(cql_row_get_text(&r, 1, &name), MS_ERR_UNPROCESSABLE);
    cql_result_free(&r);
    /* cached metadata with another column count: refuse (stale, re-prepare) */
    cached->column_count = 2;
    assert_int_equal(cql__result_decode(&r, b.data, b.len, NULL, cached), MS_ERR_INVALID);
    cql_result_free(&r);
    free(cached);
    cql_buf_free(&b);
}

static void build_prepared(cql_buf *b)
{
    cql__put_int(b, CQL_RESULT_PREPARED);
    cql__put_short_bytes(b, "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10", 16);
    /* bind metadata: global spec, 3 markers, partition key (channel_id, bucket) = markers 1, 0 */
    cql__put_int(b, CQL_META_GLOBAL_TABLES_SPEC);
    cql__put_int(b, 3);
    cql__put_int(b, 2);
    cql__put_short(b, 1);
    cql__put_short(b, 0);
    S(b, "msgstore");
    S(b, "messages");
    put_col(b, true, "bucket", CQL_TYPE_INT);
    put_col(b, true, "channel_id", CQL_TYPE_BIGINT);
    put_col(b, true, "m", CQL_TYPE_MAP);
    cql__put_short(b, CQL_TYPE_VARCHAR);
    cql__put_short(b, CQL_TYPE_UDT);
    S(b, "msgstore");
    S(b, "attachment");
    cql__put_short(b, 2);
    S(b, "url");
    cql__put_short(b, CQL_TYPE_VARCHAR);
    S(b, "size");
    cql__put_short(b, CQL_TYPE_TUPLE);
    cql__put_short(b, 2);
    cql__put_short(b, CQL_TYPE_INT);
    cql__put_short(b, CQL_TYPE_CUSTOM);
    S(b, "org.apache.cassandra.db.marshal.DurationType");
    /* result metadata: one column, per-column spec */
    cql__put_int(b, 0);
    cql__put_int(b, 1);
    put_col(b, false, "[applied]", CQL_TYPE_BOOLEAN);
}

static void test_result_prepared(void **state)
{
    (void)state;
    cql_buf b = {0};
    build_prepared(&b);
    cql_result r;
    assert_int_equal(cql__result_decode(&r, b.data, b.len, NULL, NULL), 0);
    assert_int_equal(r.kind, CQL_RESULT_PREPARED);
    assert_int_equal(r.prepared_id.len, 16);
    assert_int_equal(r.prepared_id.ptr[15], 0x10);
    assert_int_equal(r.bind.column_count, 3);
    assert_int_equal(r.bind.pk_count, 2);
    assert_int_equal(r.bind.pk_indexes[0], 1);
    assert_int_equal(r.bind.pk_indexes[1], 0);
    assert_true(cql_str_eq(r.bind.columns[1].name, "channel_id"));
    assert_true(cql_str_eq(r.bind.columns[1].keyspace, "msgstore"));
    const cql_type *m = r.bind.columns[2].type;
    assert_int_equal(m->id, CQL_TYPE_MAP);
    const cql_type *udt = m->sub[1];
    assert_int_equal(udt->id, CQL_TYPE_UDT);
    assert_true(cql_str_eq(udt->keyspace, "msgstore"));
    assert_true(cql_str_eq(udt->name, "attachment"));
    assert_int_equal(udt->n, 2);
    assert_true(cql_str_eq(udt->field_names[1], "size"));
    assert_int_equal(udt->sub[1]->id, CQL_TYPE_TUPLE);
    assert_int_equal(udt->sub[1]->sub[1]->id, CQL_TYPE_CUSTOM);
    char buf[128];
    int n = cql_type_format(m, buf, sizeof buf);
    assert_string_equal(buf, "map<text, msgstore.attachment>");
    assert_int_equal(n, (int)strlen(buf));
    n = cql_type_format(udt->sub[1], buf, sizeof buf);
    assert_string_equal(buf, "tuple<int, 'org.apache.cassandra.db.marshal.DurationType'>");
    n = cql_type_format(m, buf, 5); /* truncated, still terminated, full length reported */
    assert_string_equal(buf, "map<");
    assert_int_equal(n, 30);
    assert_int_equal(r.meta.column_count, 1);
    assert_true(cql_str_eq(r.meta.columns[0].name, "[applied]"));
    assert_true(cql_str_eq(r.meta.columns[0].table, "tbl"));

    /* clone bind metadata and drop the source */
    cql_metadata *c;
    assert_int_equal(cql__metadata_clone(&r.bind, &c), 0);
    cql_result_free(&r);
    memset(b.data, 0xEE, b.len);
    cql_buf_free(&b);
    assert_int_equal(c->pk_count, 2);
    assert_int_equal(c->pk_indexes[0], 1);
    assert_true(cql_str_eq(c->columns[2].name, "m"));
    assert_true(cql_str_eq(c->columns[2].type->sub[1]->field_names[0], "url"));
    assert_int_equal(cql_type_format(c->columns[2].type, buf, sizeof buf), 30);
    assert_string_equal(buf, "map<text, msgstore.attachment>");
    free(c);

    /* pk index out of range is rejected */
    cql_buf_init(&b);
    build_prepared(&b);
    b.data[4 + 18 + 12 + 1] = 9; /* first pk_index low byte */
    assert_int_equal(cql__result_decode(&r, b.data, b.len, NULL, NULL), MS_ERR_INVALID);
    cql_result_free(&r);
    cql_buf_free(&b);
}

static void test_result_other_kinds(void **state)
{
    (void)state;
    cql_result r;
    const uint8_t void_body[] = {0, 0, 0, 1};
    assert_int_equal(cql__result_decode(&r, void_body, 4, NULL, NULL), 0);
    assert_int_equal(r.kind, CQL_RESULT_VOID);
    assert_int_equal(cql_result_next_row(&r), MS_ERR_UNPROCESSABLE);
    cql_result_free(&r);
    const uint8_t ks[] = {0, 0, 0, 3, 0, 8, 'm', 's', 'g', 's', 't', 'o', 'r', 'e'};
    assert_int_equal(cql__result_decode(&r, ks, sizeof ks, NULL, NULL), 0);
    assert_int_equal(r.kind, CQL_RESULT_SET_KEYSPACE);
    assert_true(cql_str_eq(r.keyspace, "msgstore"));
    cql_result_free(&r);
    cql_buf b = {0};
    cql__put_int(&b, CQL_RESULT_SCHEMA_CHANGE);
    S(&b, "CREATED");
    S(&b, "TABLE");
    S(&b, "msgstore");
    S(&b, "messages");
    assert_int_equal(cql__result_decode(&r, b.data, b.len, NULL, NULL), 0);
    assert_int_equal(r.kind, CQL_RESULT_SCHEMA_CHANGE);
    assert_true(cql_str_eq(r.schema.change_type, "CREATED"));
    assert_true(cql_str_eq(r.schema.target, "TABLE"));
    assert_true(cql_str_eq(r.schema.name, "messages"));
    cql_result_free(&r);
    const uint8_t bad_kind[] = {0, 0, 0, 6};
    assert_int_equal(cql__result_decode(&r, bad_kind, 4, NULL, NULL), MS_ERR_INVALID);
    cql_result_free(&r);
    cql_buf_free(&b);
}

/* Decode and read everything; returns the first error or 0. */
static int consume_result(const uint8_t *p, size_t n)
{
    cql_result r;
    int rc = cql__result_decode(&r, p, n, NULL, NULL);
    if (rc == 0 && r.kind == CQL_RESULT_ROWS) {
        int cols = cql_result_column_count(&r);
        while ((rc = cql_result_next_row(&r)) == 0) {
            for (int c = 0; c < cols; c++) {
                cql_arena a;
                cql_arena_init(&a);
                cql_value v;
                int vr = cql_row_get_value(&r, c, &a, &v);
                (void)vr;
                cql_arena_free(&a);
            }
        }
        rc = rc == MS_ERR_NOT_FOUND ? 0 : rc;
    }
    cql_result_free(&r);
    return rc;
}

static void test_hostile_results(void **state)
{
    (void)state;
    void (*builders[])(cql_buf *) = {build_prepared};
    cql_buf b = {0};
    /* every strict prefix of a rows body or a prepared body fails */
    for (int k = 0; k < 3; k++) {
        cql_buf_reset(&b);
        if (k < 2)
            build_rows(&b, k, k);
        else
            builders[0](&b);
        for (size_t n = 0; n < b.len; n++) {
            uint8_t *t = dup_exact(b.data, n);
            assert_int_not_equal(consume_result(t, n), 0);
            free(t);
        }
        uint8_t *t = dup_exact(b.data, b.len);
        assert_int_equal(consume_result(t, b.len), 0);
        /* random corruption: any outcome but no out-of-bounds access (ASan) */
        uint32_t x = 2463534242u;
        for (int i = 0; i < 20000; i++) {
            memcpy(t, b.data, b.len);
            for (int f = 0; f < 3; f++) {
                x ^= x << 13, x ^= x >> 17, x ^= x << 5;
                t[x % b.len] = (uint8_t)(x >> 8);
            }
            (void)consume_result(t, b.len);
        }
        free(t);
    }
    /* absurd counts are rejected before allocating */
    cql_buf_reset(&b);
    cql__put_int(&b, CQL_RESULT_ROWS);
    cql__put_int(&b, 0);
    cql__put_int(&b, 0x7FFFFFFF);
    assert_int_equal(consume_result(b.data, b.len), MS_ERR_INVALID);
    cql_buf_reset(&b);
    cql__put_int(&b, CQL_RESULT_ROWS);
    cql__put_int(&b, 1);
    cql__put_int(&b, 1);
    S(&b, "k");
    S(&b, "t");
    put_col(&b, true, "c", CQL_TYPE_INT);
    cql__put_int(&b, 0x40000000); /* rows */
    assert_int_equal(consume_result(b.data, b.len), MS_ERR_INVALID);
    /* fuzzer finds: NO_METADATA with a huge column count and no rows must not
     * allocate per column; an empty body may come as (NULL, 0) */
    cql_buf_reset(&b);
    cql__put_int(&b, CQL_RESULT_ROWS);
    cql__put_int(&b, CQL_META_NO_METADATA);
    cql__put_int(&b, 0x76866c00);
    cql__put_int(&b, 0);
    assert_int_equal(consume_result(b.data, b.len), 0);
    assert_int_equal(consume_result(NULL, 0), MS_ERR_INVALID);
    cql_error err;
    assert_int_equal(cql__error_decode(NULL, 0, &err), MS_ERR_INVALID);
    cql_event ev;
    assert_int_equal(cql__event_decode(NULL, 0, &ev), MS_ERR_INVALID);
    /* negative column count, unknown type id, -2 (unset) cell in a result */
    cql_buf_reset(&b);
    cql__put_int(&b, CQL_RESULT_ROWS);
    cql__put_int(&b, 0);
    cql__put_int(&b, -1);
    assert_int_equal(consume_result(b.data, b.len), MS_ERR_INVALID);
    cql_buf_reset(&b);
    cql__put_int(&b, CQL_RESULT_ROWS);
    cql__put_int(&b, 1);
    cql__put_int(&b, 1);
    S(&b, "k");
    S(&b, "t");
    put_col(&b, true, "c", 0x0099);
    cql__put_int(&b, 0);
    assert_int_equal(consume_result(b.data, b.len), MS_ERR_INVALID);
    cql_buf_reset(&b);
    cql__put_int(&b, CQL_RESULT_ROWS);
    cql__put_int(&b, 1);
    cql__put_int(&b, 1);
    S(&b, "k");
    S(&b, "t");
    put_col(&b, true, "c", CQL_TYPE_INT);
    cql__put_int(&b, 1);
    cql__put_int(&b, -2);
    assert_int_equal(consume_result(b.data, b.len), MS_ERR_INVALID);
    /* type nesting deeper than the limit */
    cql_buf_reset(&b);
    cql__put_int(&b, CQL_RESULT_ROWS);
    cql__put_int(&b, 1);
    cql__put_int(&b, 1);
    S(&b, "k");
    S(&b, "t");
    S(&b, "c");
    for (int i = 0; i < 40; i++)
        cql__put_short(&b, CQL_TYPE_LIST);
    cql__put_short(&b, CQL_TYPE_INT);
    cql__put_int(&b, 0);
    assert_int_equal(consume_result(b.data, b.len), MS_ERR_INVALID);
    cql_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_errors_with_fields),
        cmocka_unit_test(test_errors_plain),
        cmocka_unit_test(test_auth_bodies),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_result_rows),
        cmocka_unit_test(test_result_rows_no_metadata),
        cmocka_unit_test(test_result_prepared),
        cmocka_unit_test(test_result_other_kinds),
        cmocka_unit_test(test_hostile_results),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
