/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The search query language's PostgreSQL form (store_search_query_pg): every
 * term is a bound parameter, never SQL or tsquery syntax; prefixes are quoted
 * lexemes with quotes and backslashes escaped; exclusions come last, negated;
 * malformed queries are refused with the words the API shows; the change-log
 * shard of a channel is stable and in range.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "msgstore/store.h"

#include <stdlib.h>
#include <string.h>

typedef struct pgq {
    char *expr;
    char *params[STORE_SEARCH_TERMS_MAX];
    int n;
    char detail[256];
    int rc;
} pgq;

static pgq translate(const char *q)
{
    pgq r;
    memset(&r, 0, sizeof r);
    r.rc = store_search_query_pg(q, 1, 5, &r.expr, r.params, &r.n, r.detail, sizeof r.detail);
    return r;
}

static void done(pgq *r)
{
    free(r->expr);
    for (int i = 0; i < r->n; i++)
        free(r->params[i]);
}

static void test_terms_become_parameters(void **state)
{
    (void)state;
    pgq r = translate("hello \"brown fox\" pre* -spam");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.n, 4);
    assert_string_equal(r.expr,
                        "plainto_tsquery($1::regconfig, $5) && phraseto_tsquery($1::regconfig, "
                        "$6) && to_tsquery($1::regconfig, $7) && "
                        "!!(plainto_tsquery($1::regconfig, $8))");
    assert_string_equal(r.params[0], "hello");
    assert_string_equal(r.params[1], "brown fox");
    assert_string_equal(r.params[2], "'pre':*");
    assert_string_equal(r.params[3], "spam");
    done(&r);
}

static void test_hostile_text_stays_data(void **state)
{
    (void)state;
    pgq r = translate("x'); DROP TABLE t; -- a\\b' it's* \"|&!:* z\"");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.n, 7);             /* "--" has nothing to find: ignored */
    for (const char *p = r.expr; *p; p++) /* only our own syntax in the SQL text */
        assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz_(), $:&!0123456789", *p));
    assert_string_equal(r.params[0], "x');");
    assert_string_equal(r.params[4], "a\\b'");
    assert_string_equal(r.params[5], "'it''s':*"); /* the quote doubled inside the lexeme */
    assert_string_equal(r.params[6], "|&!:* z");
    done(&r);
    r = translate("back\\slash*");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.params[0], "'back\\\\slash':*");
    done(&r);
}

static void test_refused(void **state)
{
    (void)state;
    static const struct {
        const char *q, *words;
    } bad[] = {
        {"", "empty"},
        {"   ", "empty"},
        {"\"open", "unbalanced"},
        {"-a -b", "not excluded"},
        {"\"a b\"*", "prefix"},
        {"!!! ---", "no word"},
        {"a b c d e f g h i j k l m n o p q", "more than 16"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pgq r = translate(bad[i].q);
        assert_int_equal(r.rc, MS_ERR_INVALID);
        assert_null(r.expr);
        assert_int_equal(r.n, 0);
        if (!strstr(r.detail, bad[i].words))
            fail_msg("[%s]: \"%s\" lacks \"%s\"", bad[i].q, r.detail, bad[i].words);
    }
    char big[STORE_SEARCH_QUERY_MAX_BYTES + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    pgq r = translate(big);
    assert_int_equal(r.rc, MS_ERR_INVALID);
    big[STORE_SEARCH_QUERY_MAX_BYTES] = '\0';
    r = translate(big);
    assert_int_equal(r.rc, 0);
    done(&r);
}

static void test_shard(void **state)
{
    (void)state;
    int seen[16] = {0};
    for (uint64_t ch = 1; ch <= 1000; ch++) {
        int s = store_search_shard(ms_xid_int(ch), 16);
        assert_true(s >= 0 && s < 16);
        assert_int_equal(s, store_search_shard(ms_xid_int(ch), 16));
        seen[s]++;
    }
    for (int i = 0; i < 16; i++)
        assert_true(seen[i] > 20); /* spread over every shard */
    assert_int_equal(store_search_shard(ms_xid_int(42), 1), 0);
    ms_xid u = {0x0123456789abcdefULL, 0xfedcba9876543210ULL}; /* a UUID channel */
    int su = store_search_shard(u, 16);
    assert_true(su >= 0 && su < 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terms_become_parameters),
        cmocka_unit_test(test_hostile_text_stays_data),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_shard),
    };
    return cmocka_run_group_tests_name("search query translation", tests, NULL, NULL);
}
