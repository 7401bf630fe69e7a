/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ScyllaDB backend's statement table (src/store/scylla_internal.h): each
 * statement's value list has one entry per ? marker of its text (so
 * sc_stmt[].nparams, generated from the list, is the marker count), and each
 * generated binder sc_bind_<NAME> appends exactly nparams values, in either
 * id format, with optional values present or absent; sc_check_types, which
 * every prepare runs against the server's bind metadata, takes the types the
 * binders encode and refuses any other (the real schema is checked by the
 * suites on Cassandra: test_store_conformance_scylla*, e2e_copy).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "scylla_internal.h"

#include <stdio.h>
#include <string.h>

/* The ? markers of a CQL text, outside quoted literals and identifiers. */
static int markers(const char *cql)
{
    int n = 0;
    char quote = 0;
    for (const char *p = cql; *p; p++) {
        if (quote) {
            if (*p == quote)
                quote = 0; /* '' inside a literal closes and reopens it: still inside */
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
        } else if (*p == '?') {
            n++;
        }
    }
    return n;
}

#define NAME_OF(name, kind, cql, params) #name,
static const char *const names[SC_NSTMT] = {SC_STATEMENTS(NAME_OF)};
#undef NAME_OF

static void test_markers_counted(void **state)
{
    (void)state;
    assert_int_equal(markers("SELECT a FROM t WHERE b = ? AND c IN ? LIMIT ?"), 3);
    assert_int_equal(markers("SELECT '?', \"?\" FROM t WHERE s = 'it''s?' AND b = ?"), 1);
    assert_int_equal(markers("SELECT version FROM t LIMIT 1"), 0);
}

/* Every statement's value list has as many entries as its text has markers. */
static void test_values_match_markers(void **state)
{
    (void)state;
    int bad = 0;
    for (int i = 0; i < SC_NSTMT; i++) {
        int want = markers(sc_stmt[i].cql);
        assert_string_equal(sc_stmt[i].name, names[i]);
        assert_int_equal((int)strlen(sc_stmt[i].types), sc_stmt[i].nparams);
        if (sc_stmt[i].nparams != want) {
            fprintf(stderr, "statement %s: %d values listed for %d markers in \"%s\"\n", names[i],
                    sc_stmt[i].nparams, want, sc_stmt[i].cql);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/* Arguments for a binder: one set per value type (SC_PARAM_*). */
static const int32_t ints[] = {3, 1, 4};
static const int64_t bigs[] = {1, 5};
static const int64_t big = 9;
static const int32_t small = 2;
static bool present; /* optional values: given, or NULL */

#define ARG_ID(n)          , ms_xid_int(7)
#define ARG_INT(n)         , 1
#define ARG_BIGINT(n)      , 2
#define ARG_TINYINT(n)     , 3
#define ARG_TEXT(n)        , "text", 4
#define ARG_TEXT_OPT(n)    , present ? "opt" : NULL
#define ARG_BIGINT_OPT(n)  , present ? &big : NULL
#define ARG_INT_OR_NULL(n) , present ? &small : NULL
#define ARG_INT_LIST(n)    , ints, 3
#define ARG_BIGINT_LIST(n) , bigs, 2
#define ARGS_A(T, n)       ARG_##T(n) ARGS_B
#define ARGS_B(T, n)       ARG_##T(n) ARGS_A
#define ARGS_A_END
#define ARGS_B_END

static void check_bound(const cql_values *v, sc_stmt_id id, int *bad)
{
    if (cql_values_error(v) || v->count != sc_stmt[id].nparams) {
        fprintf(stderr, "sc_bind_%s: %u values (error %d) for %d markers\n", names[id],
                (unsigned)v->count, cql_values_error(v), sc_stmt[id].nparams);
        (*bad)++;
    }
}

/* Every binder appends exactly one value per entry of its statement's list. */
static void test_binders_append_nparams(void **state)
{
    (void)state;
    cql_values v;
    cql_values_init(&v);
    int bad = 0, calls = 0;
    const ms_id_format formats[] = {MS_ID_UUID, MS_ID_INT64};
    for (size_t f = 0; f < 2; f++) {
        for (int p = 0; p < 2; p++) {
            present = p;
#define CALL(name, kind, cql, params)                                                              \
    cql_values_reset(&v);                                                                          \
    sc_bind_##name(formats[f], &v SC_SEQ(ARGS, params));                                           \
    check_bound(&v, SC_##name, &bad);                                                              \
    calls++;
            SC_STATEMENTS(CALL)
#undef CALL
        }
    }
    cql_values_free(&v);
    assert_int_equal(calls, 4 * SC_NSTMT);
    assert_int_equal(bad, 0);
}

/* A prepared statement's bind metadata of n markers of the given types. */
static cql_metadata params_of(cql_column *cols, const cql_type *const *types, int n)
{
    for (int i = 0; i < n; i++)
        cols[i] = (cql_column){.name = {"v", 1}, .type = types[i]};
    return (cql_metadata){.column_count = n, .columns = cols};
}

static void test_types_checked(void **state)
{
    (void)state;
    const cql_type *i64 = cql_type_of(CQL_TYPE_BIGINT), *cnt = cql_type_of(CQL_TYPE_COUNTER);
    const cql_type *i32 = cql_type_of(CQL_TYPE_INT), *uuid = cql_type_of(CQL_TYPE_UUID);
    const cql_type *text = cql_type_of(CQL_TYPE_VARCHAR);
    const cql_type *int_sub[1] = {i32}, *big_sub[1] = {i64};
    const cql_type ints_t = {.id = CQL_TYPE_LIST, .n = 1, .sub = int_sub};
    const cql_type bigs_t = {.id = CQL_TYPE_LIST, .n = 1, .sub = big_sub};
    cql_column cols[8];
    char err[256] = "";
    /* COUNT_MSG: (BIGINT, n)(ID, ch)(INT, bucket) */
    cql_metadata m = params_of(cols, (const cql_type *[]){cnt, i64, i32}, 3);
    assert_int_equal(sc_check_types(SC_COUNT_MSG, &m, MS_ID_INT64, err, sizeof err), 0);
    assert_int_equal(sc_check_types(SC_COUNT_MSG, &m, MS_ID_UUID, err, sizeof err),
                     MS_ERR_INTERNAL);
    assert_non_null(strstr(err, "COUNT_MSG"));
    m = params_of(cols, (const cql_type *[]){cnt, uuid, i32}, 3);
    assert_int_equal(sc_check_types(SC_COUNT_MSG, &m, MS_ID_UUID, err, sizeof err), 0);
    m = params_of(cols, (const cql_type *[]){cnt, uuid, i64}, 3); /* bucket is no bigint */
    assert_int_equal(sc_check_types(SC_COUNT_MSG, &m, MS_ID_UUID, err, sizeof err),
                     MS_ERR_INTERNAL);
    m = params_of(cols, (const cql_type *[]){cnt, uuid}, 2); /* a marker short */
    assert_int_equal(sc_check_types(SC_COUNT_MSG, &m, MS_ID_UUID, err, sizeof err),
                     MS_ERR_INTERNAL);
    /* PAGE_BEFORE_IN: (ID, ch)(INT_LIST, buckets)(BIGINT, anchor)(INT, limit) */
    m = params_of(cols, (const cql_type *[]){uuid, &ints_t, i64, i32}, 4);
    assert_int_equal(sc_check_types(SC_PAGE_BEFORE_IN, &m, MS_ID_UUID, err, sizeof err), 0);
    m = params_of(cols, (const cql_type *[]){uuid, &bigs_t, i64, i32}, 4);
    assert_int_equal(sc_check_types(SC_PAGE_BEFORE_IN, &m, MS_ID_UUID, err, sizeof err),
                     MS_ERR_INTERNAL);
    /* COUNT_INC: (ID, ch)(BIGINT, id)(TEXT, emoji); PING: none */
    m = params_of(cols, (const cql_type *[]){i64, i64, text}, 3);
    assert_int_equal(sc_check_types(SC_COUNT_INC, &m, MS_ID_INT64, err, sizeof err), 0);
    m = params_of(cols, (const cql_type *[]){i64, i64, i64}, 3);
    assert_int_equal(sc_check_types(SC_COUNT_INC, &m, MS_ID_INT64, err, sizeof err),
                     MS_ERR_INTERNAL);
    m = params_of(cols, NULL, 0);
    assert_int_equal(sc_check_types(SC_PING, &m, MS_ID_UUID, err, sizeof err), 0);
    /* a blob marker takes any bytes (a server that types nothing: tests/scylla_sim) */
    const cql_type *blob = cql_type_of(CQL_TYPE_BLOB);
    m = params_of(cols, (const cql_type *[]){blob, blob, blob}, 3);
    assert_int_equal(sc_check_types(SC_COUNT_INC, &m, MS_ID_UUID, err, sizeof err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_markers_counted),
        cmocka_unit_test(test_values_match_markers),
        cmocka_unit_test(test_binders_append_nparams),
        cmocka_unit_test(test_types_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
