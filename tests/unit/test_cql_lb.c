/* SPDX-License-Identifier: Apache-2.0 */
/* DC-aware, token-aware query plans: local replicas first (round-robin),
 * then other local hosts, remote DCs only when allowed, down hosts skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cql/lb.h"

#include <string.h>

/* hosts 0..3 in dc1 (local), 4..5 in dc2 */
static uint8_t up[6] = {1, 1, 1, 1, 1, 1};
static const uint8_t is_local[6] = {1, 1, 1, 1, 0, 0};
static const uint32_t local[] = {0, 1, 2, 3};
static const uint32_t remote[] = {4, 5};

static cql_lb_view view(bool allow_remote)
{
    cql_lb_view v = {6, up, local, 4, remote, 2, is_local, allow_remote};
    return v;
}

static void test_local_replicas_first_round_robin(void **state)
{
    (void)state;
    memset(up, 1, sizeof(up));
    cql_lb_view v = view(false);
    const uint32_t rep[] = {2, 4, 0}; /* replicas in ring order, one remote */
    uint32_t out[8];
    int first_counts[6] = {0};
    for (uint64_t rr = 0; rr < 100; rr++) {
        size_t n = cql__lb_plan(&v, rep, 3, rr, false, out, 8);
        assert_int_equal(n, 4); /* local only */
        /* the two local replicas come first, in some rotation */
        assert_true((out[0] == 2 && out[1] == 0) || (out[0] == 0 && out[1] == 2));
        assert_true(out[2] == 1 || out[2] == 3);
        first_counts[out[0]]++;
        for (size_t i = 0; i < n; i++)
            assert_true(is_local[out[i]]);
    }
    /* round-robin over the replicas: an even spread */
    assert_int_equal(first_counts[2], 50);
    assert_int_equal(first_counts[0], 50);
}

static void test_remote_allowed(void **state)
{
    (void)state;
    memset(up, 1, sizeof(up));
    cql_lb_view v = view(true);
    const uint32_t rep[] = {5, 1};
    uint32_t out[8];
    size_t n = cql__lb_plan(&v, rep, 2, 0, false, out, 8);
    assert_int_equal(n, 6);
    assert_int_equal(out[0], 1); /* local replica */
    assert_true(is_local[out[1]] && is_local[out[2]] && is_local[out[3]]);
    assert_int_equal(out[4], 5); /* remote replica before the other remote host */
    assert_int_equal(out[5], 4);
}

static void test_down_hosts_and_max(void **state)
{
    (void)state;
    memset(up, 1, sizeof(up));
    up[1] = 0;
    up[2] = 0;
    cql_lb_view v = view(false);
    const uint32_t rep[] = {1, 2};
    uint32_t out[8];
    size_t n = cql__lb_plan(&v, rep, 2, 3, false, out, 8);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        assert_true(out[i] == 0 || out[i] == 3);
    /* whole local DC down: nothing unless remote DCs are allowed */
    memset(up, 0, 4);
    assert_int_equal(cql__lb_plan(&v, rep, 2, 0, false, out, 8), 0);
    v.allow_remote = true;
    n = cql__lb_plan(&v, rep, 2, 0, false, out, 8);
    assert_int_equal(n, 2);
    assert_true(!is_local[out[0]] && !is_local[out[1]]);
    /* max bounds the plan */
    memset(up, 1, sizeof(up));
    assert_int_equal(cql__lb_plan(&v, NULL, 0, 0, false, out, 3), 3);
}

static void test_no_token_round_robin(void **state)
{
    (void)state;
    memset(up, 1, sizeof(up));
    cql_lb_view v = view(false);
    uint32_t out[8];
    int counts[4] = {0};
    for (uint64_t rr = 0; rr < 400; rr++) {
        size_t n = cql__lb_plan(&v, NULL, 0, rr, false, out, 8);
        assert_int_equal(n, 4);
        counts[out[0]]++;
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(counts[i], 100);
}

static void test_ordered_keeps_primary_first(void **state)
{
    (void)state;
    memset(up, 1, sizeof(up));
    cql_lb_view v = view(false);
    const uint32_t rep[] = {3, 1, 0};
    uint32_t out[8];
    for (uint64_t rr = 0; rr < 10; rr++) {
        size_t n = cql__lb_plan(&v, rep, 3, rr, true, out, 8);
        assert_int_equal(n, 4);
        assert_int_equal(out[0], 3);
        assert_int_equal(out[1], 1);
        assert_int_equal(out[2], 0);
        assert_int_equal(out[3], 2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_replicas_first_round_robin),
        cmocka_unit_test(test_remote_allowed),
        cmocka_unit_test(test_down_hosts_and_max),
        cmocka_unit_test(test_no_token_round_robin),
        cmocka_unit_test(test_ordered_keeps_primary_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
