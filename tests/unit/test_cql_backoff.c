/* SPDX-License-Identifier: Apache-2.0 */
/* Backoff bounds (exponential with full/equal jitter, constant), retry
 * decisions, and client-side monotonic timestamps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/config.h"
#include "cql/clock.h"
#include "cql/retry.h"
#include "msgstore/store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void test_full_jitter_bounds(void **state)
{
    (void)state;
    /* the seed's retry defaults: 100 ms base, 2 s cap, 3 tries (2 retries) */
    cql_backoff p = {CQL_BACKOFF_EXPONENTIAL, CQL_JITTER_FULL, 100, 2000, 0};
    uint64_t rng = 42;
    for (int attempt = 0; attempt < 10; attempt++) {
        int64_t bound = 100LL << attempt;
        if (bound > 2000)
            bound = 2000;
        int64_t lo = INT64_MAX, hi = -1;
        for (int i = 0; i < 20000; i++) {
            int64_t d = cql__backoff_delay(&p, attempt, &rng);
            assert_true(d >= 0 && d <= bound);
            if (d < lo)
                lo = d;
            if (d > hi)
                hi = d;
        }
        /* the whole range is used: full jitter, not a constant */
        assert_true(lo <= bound / 20);
        assert_true(hi >= bound - bound / 20);
    }
}

static void test_max_attempts(void **state)
{
    (void)state;
    cql_backoff p = {CQL_BACKOFF_EXPONENTIAL, CQL_JITTER_FULL, 100, 2000, 2};
    uint64_t rng = 7;
    assert_true(cql__backoff_delay(&p, 0, &rng) >= 0);
    assert_true(cql__backoff_delay(&p, 1, &rng) >= 0);
    assert_int_equal(cql__backoff_delay(&p, 2, &rng), -1);
    assert_int_equal(cql__backoff_delay(&p, 50, &rng), -1);
}

static void test_constant(void **state)
{
    (void)state;
    /* the seed's reconnection policy: 1 s, 10 attempts */
    cql_backoff p = {CQL_BACKOFF_CONSTANT, CQL_JITTER_NONE, 1000, 1000, 10};
    uint64_t rng = 9;
    for (int i = 0; i < 10; i++)
        assert_int_equal(cql__backoff_delay(&p, i, &rng), 1000);
    assert_int_equal(cql__backoff_delay(&p, 10, &rng), -1);
}

static void test_equal_jitter_and_huge_attempts(void **state)
{
    (void)state;
    cql_backoff p = {CQL_BACKOFF_EXPONENTIAL, CQL_JITTER_EQUAL, 500, 60000, 0};
    uint64_t rng = 99;
    for (int attempt = 0; attempt < 200; attempt++) {
        int64_t bound = attempt < 20 ? 500LL << attempt : 60000;
        if (bound > 60000)
            bound = 60000;
        for (int i = 0; i < 200; i++) {
            int64_t d = cql__backoff_delay(&p, attempt, &rng);
            assert_true(d >= bound / 2 && d <= bound);
        }
    }
    cql_backoff none = {CQL_BACKOFF_EXPONENTIAL, CQL_JITTER_NONE, 100, 2000, 0};
    assert_int_equal(cql__backoff_delay(&none, 0, &rng), 100);
    assert_int_equal(cql__backoff_delay(&none, 3, &rng), 800);
    assert_int_equal(cql__backoff_delay(&none, 5, &rng), 2000);
    assert_int_equal(cql__backoff_delay(&none, 1000000, &rng), 2000);
}

static void test_retry_decisions(void **state)
{
    (void)state;
    /* never sent: always safe */
    assert_int_equal(cql__retry_decide(CQL_FAIL_NOT_SENT, -1, false), CQL_RETRY_NEXT_HOST);
    /* may have reached a server: idempotent only */
    assert_int_equal(cql__retry_decide(CQL_FAIL_CONNECTION, -1, false), CQL_RETRY_FAIL);
    assert_int_equal(cql__retry_decide(CQL_FAIL_CONNECTION, -1, true), CQL_RETRY_NEXT_HOST);
    assert_int_equal(cql__retry_decide(CQL_FAIL_CLIENT_TIMEOUT, -1, false), CQL_RETRY_FAIL);
    assert_int_equal(cql__retry_decide(CQL_FAIL_CLIENT_TIMEOUT, -1, true), CQL_RETRY_NEXT_HOST);
    /* nothing executed: Unavailable, Is_bootstrapping */
    assert_int_equal(cql__retry_decide(CQL_FAIL_SERVER, 0x1000, false), CQL_RETRY_NEXT_HOST);
    assert_int_equal(cql__retry_decide(CQL_FAIL_SERVER, 0x1002, false), CQL_RETRY_NEXT_HOST);
    /* may have been applied: idempotent only (a counter update is never idempotent) */
    int maybe[] = {0x1001, 0x1100, 0x1200, 0x0000};
    for (size_t i = 0; i < sizeof(maybe) / sizeof(maybe[0]); i++) {
        assert_int_equal(cql__retry_decide(CQL_FAIL_SERVER, maybe[i], false), CQL_RETRY_FAIL);
        assert_int_equal(cql__retry_decide(CQL_FAIL_SERVER, maybe[i], true), CQL_RETRY_NEXT_HOST);
    }
    /* errors about the statement or the data: never */
    int never[] = {0x000A, 0x0100, 0x1003, 0x1300, 0x1400, 0x1500,
                   0x2000, 0x2100, 0x2200, 0x2300, 0x2400, 0xF000};
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        assert_int_equal(cql__retry_decide(CQL_FAIL_SERVER, never[i], true), CQL_RETRY_FAIL);
}

static const char *cfg_lookup(const char *name, void *ctx)
{
    const char *const *kv = ctx;
    for (; kv[0]; kv += 2)
        if (strcmp(kv[0], name) == 0)
            return kv[1];
    return NULL;
}

/* The settings reach the session's options: reconnection policy and speculative reads. */
static void test_options_from_settings(void **state)
{
    (void)state;
    ms_config c;
    char err[256];
    const char *dflt[] = {NULL};
    assert_int_equal(ms_config_load(&c, cfg_lookup, (void *)dflt, err, sizeof err), 0);
    cql_options o;
    store_cql_options(&c.store, &o);
    assert_int_equal(o.reconnect.kind, CQL_BACKOFF_EXPONENTIAL);
    assert_int_equal(o.reconnect.jitter, CQL_JITTER_EQUAL);
    assert_int_equal(o.reconnect.base_ms, 500);
    assert_int_equal(o.reconnect.cap_ms, 30000);
    assert_int_equal(o.reconnect.max_attempts, 0);
    assert_int_equal(o.speculative_delay_ms, 200);
    assert_int_equal(o.speculative_max, 1);
    /* the seed's policy: 1 s, 10 times; speculation off */
    const char *seed[] = {"SCYLLA_RECONNECT_POLICY",
                          "constant",
                          "SCYLLA_RECONNECT_BASE_DELAY",
                          "1s",
                          "SCYLLA_RECONNECT_MAX_ATTEMPTS",
                          "10",
                          "SCYLLA_SPECULATIVE_DELAY",
                          "0",
                          NULL};
    assert_int_equal(ms_config_load(&c, cfg_lookup, (void *)seed, err, sizeof err), 0);
    store_cql_options(&c.store, &o);
    assert_int_equal(o.reconnect.kind, CQL_BACKOFF_CONSTANT);
    assert_int_equal(o.reconnect.jitter, CQL_JITTER_NONE);
    assert_int_equal(o.reconnect.base_ms, 1000);
    assert_int_equal(o.reconnect.max_attempts, 10);
    assert_int_equal(o.speculative_delay_ms, 0);
    uint64_t rng = 1;
    for (int i = 0; i < 10; i++)
        assert_int_equal(cql__backoff_delay(&o.reconnect, i, &rng), 1000);
    assert_int_equal(cql__backoff_delay(&o.reconnect, 10, &rng), -1); /* gave up */
}

static void test_timestamps_monotonic(void **state)
{
    (void)state;
    cql_tsgen g = {0};
    assert_int_equal(cql__tsgen_next_at(&g, 1000), 1000);
    assert_int_equal(cql__tsgen_next_at(&g, 1000), 1001); /* clock stood still */
    assert_int_equal(cql__tsgen_next_at(&g, 500), 1002);  /* clock stepped back */
    assert_int_equal(cql__tsgen_next_at(&g, 5000), 5000);
    int64_t prev = cql__tsgen_next(&g);
    for (int i = 0; i < 100000; i++) {
        int64_t t = cql__tsgen_next(&g);
        assert_true(t > prev);
        prev = t;
    }
    /* close to the wall clock (µs since 1970, after 2020) */
    assert_true(prev > 1577836800LL * 1000000);
}

static cql_tsgen shared_gen;
#define TS_PER_THREAD 50000

static void *ts_thread(void *p)
{
    int64_t *out = p;
    for (int i = 0; i < TS_PER_THREAD; i++)
        out[i] = cql__tsgen_next(&shared_gen);
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_timestamps_threads_unique(void **state)
{
    (void)state;
    int64_t *all = malloc(2 * TS_PER_THREAD * sizeof(int64_t));
    assert_non_null(all);
    pthread_t a, b;
    pthread_create(&a, NULL, ts_thread, all);
    pthread_create(&b, NULL, ts_thread, all + TS_PER_THREAD);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    qsort(all, 2 * TS_PER_THREAD, sizeof(int64_t), cmp64);
    for (int i = 1; i < 2 * TS_PER_THREAD; i++)
        assert_true(all[i] > all[i - 1]);
    free(all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_jitter_bounds),
        cmocka_unit_test(test_max_attempts),
        cmocka_unit_test(test_constant),
        cmocka_unit_test(test_equal_jitter_and_huge_attempts),
        cmocka_unit_test(test_retry_decisions),
        cmocka_unit_test(test_options_from_settings),
        cmocka_unit_test(test_timestamps_monotonic),
        cmocka_unit_test(test_timestamps_threads_unique),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
