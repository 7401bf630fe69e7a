/* SPDX-License-Identifier: Apache-2.0 */
/* Circuit breaker: closed -> open -> half-open (one probe) -> closed / open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cql/breaker.h"

static void test_opens_after_threshold(void **state)
{
    (void)state;
    cql_breaker b;
    cql__breaker_init(&b, 5, 30000);
    int64_t t = 1000;
    for (int i = 0; i < 4; i++) {
        assert_true(cql__breaker_allow(&b, t));
        cql__breaker_failure(&b, t);
        assert_int_equal(cql__breaker_state(&b, t), CQL_BREAKER_CLOSED);
    }
    cql__breaker_failure(&b, t);
    assert_int_equal(cql__breaker_state(&b, t), CQL_BREAKER_OPEN);
    assert_int_equal(b.opens, 1);
    assert_false(cql__breaker_allow(&b, t));
    assert_false(cql__breaker_allow(&b, t + 29999));
    assert_int_equal(cql__breaker_state(&b, t + 29999), CQL_BREAKER_OPEN);
    assert_int_equal(cql__breaker_state(&b, t + 30000), CQL_BREAKER_HALF_OPEN);
}

static void test_success_resets_count(void **state)
{
    (void)state;
    cql_breaker b;
    cql__breaker_init(&b, 5, 30000);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 4; i++)
            cql__breaker_failure(&b, 0);
        cql__breaker_success(&b);
    }
    assert_int_equal(cql__breaker_state(&b, 0), CQL_BREAKER_CLOSED);
    assert_int_equal(b.opens, 0);
}

static void test_half_open_single_probe(void **state)
{
    (void)state;
    cql_breaker b;
    cql__breaker_init(&b, 2, 1000);
    cql__breaker_failure(&b, 0);
    cql__breaker_failure(&b, 0);
    assert_int_equal(cql__breaker_state(&b, 0), CQL_BREAKER_OPEN);
    /* after the reset timeout exactly one request goes through */
    assert_true(cql__breaker_allow(&b, 1000));
    assert_int_equal(cql__breaker_state(&b, 1000), CQL_BREAKER_HALF_OPEN);
    assert_false(cql__breaker_allow(&b, 1001));
    assert_false(cql__breaker_allow(&b, 1500));
    /* the probe fails: open again, with a fresh timeout */
    cql__breaker_failure(&b, 1600);
    assert_int_equal(cql__breaker_state(&b, 1600), CQL_BREAKER_OPEN);
    assert_int_equal(b.opens, 2);
    assert_false(cql__breaker_allow(&b, 2599));
    assert_true(cql__breaker_allow(&b, 2600));
    assert_false(cql__breaker_allow(&b, 2601));
    /* this probe succeeds: closed, everything flows */
    cql__breaker_success(&b);
    assert_int_equal(cql__breaker_state(&b, 2601), CQL_BREAKER_CLOSED);
    for (int i = 0; i < 10; i++)
        assert_true(cql__breaker_allow(&b, 2602));
    /* and it takes the full threshold to open again */
    cql__breaker_failure(&b, 3000);
    assert_int_equal(cql__breaker_state(&b, 3000), CQL_BREAKER_CLOSED);
    cql__breaker_failure(&b, 3000);
    assert_int_equal(cql__breaker_state(&b, 3000), CQL_BREAKER_OPEN);
}

static void test_probe_lost_or_cancelled(void **state)
{
    (void)state;
    cql_breaker b;
    cql__breaker_init(&b, 1, 100);
    cql__breaker_failure(&b, 0);
    assert_true(cql__breaker_allow(&b, 100));
    assert_false(cql__breaker_allow(&b, 150));
    /* cancelled probe: another may go */
    cql__breaker_probe_cancelled(&b);
    assert_true(cql__breaker_allow(&b, 150));
    assert_false(cql__breaker_allow(&b, 160));
    /* a probe that never reports is considered lost after reset_ms */
    assert_true(cql__breaker_allow(&b, 250));
    /* late failures while open change nothing */
    cql__breaker_failure(&b, 260);
    assert_int_equal(cql__breaker_state(&b, 260), CQL_BREAKER_OPEN);
    cql__breaker_failure(&b, 300);
    assert_int_equal(b.opens, 2);
    assert_int_equal(b.opened_at_ms, 260);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(cql_breaker_state_name(CQL_BREAKER_CLOSED), "closed");
    assert_string_equal(cql_breaker_state_name(CQL_BREAKER_OPEN), "open");
    assert_string_equal(cql_breaker_state_name(CQL_BREAKER_HALF_OPEN), "half_open");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opens_after_threshold),
        cmocka_unit_test(test_success_resets_count),
        cmocka_unit_test(test_half_open_single_probe),
        cmocka_unit_test(test_probe_lost_or_cancelled),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
