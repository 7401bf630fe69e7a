/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ScyllaDB backend's statement table (src/store/scylla_internal.h): each
 * statement's value list has one entry per ? marker of its text (so
 * sc_stmt[].nparams, generated from the list, is the marker count), and each
 * generated binder sc_bind_<NAME> appends exactly nparams values, in either
 * id format, with optional values present or absent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "scylla_internal.h"

#include <stdio.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_markers_counted),
        cmocka_unit_test(test_values_match_markers),
        cmocka_unit_test(test_binders_append_nparams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
