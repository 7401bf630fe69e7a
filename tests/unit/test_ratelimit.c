/* SPDX-License-Identifier: Apache-2.0 */
/* Rate-limit buckets: burst, refill, Retry-After, keys apart, bounded memory, threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "server/ratelimit.h"

#include <pthread.h>

#define S 1000000000ull

static void test_burst_then_refill(void **state)
{
    (void)state;
    rl_table *t = rl_new(1024);
    assert_non_null(t);
    ms_xid k = ms_xid_int(42);
    uint64_t now = 5 * S;
    for (int i = 0; i < 3; i++)
        assert_int_equal(rl_take(t, 1, k, 1.0, 3.0, now), 0);
    assert_int_equal(rl_take(t, 1, k, 1.0, 3.0, now), 1);  /* one token a second: wait 1 s */
    assert_int_equal(rl_take(t, 1, k, 0.25, 3.0, now), 4); /* at 0.25/s: 4 s */
    now += S / 2;
    assert_true(rl_take(t, 1, k, 1.0, 3.0, now) > 0); /* half a token */
    now += S / 2;
    assert_int_equal(rl_take(t, 1, k, 1.0, 3.0, now), 0); /* a whole one */
    now += 100 * S;                                       /* refills up to the burst only */
    for (int i = 0; i < 3; i++)
        assert_int_equal(rl_take(t, 1, k, 1.0, 3.0, now), 0);
    assert_true(rl_take(t, 1, k, 1.0, 3.0, now) > 0);
    rl_free(t);
}

static void test_keys_and_kinds_apart(void **state)
{
    (void)state;
    rl_table *t = rl_new(1024);
    ms_xid a = {0x0123456789abcdefull, 0x1122334455667788ull}, b = ms_xid_int(7);
    assert_int_equal(rl_take(t, 1, a, 1.0, 1.0, S), 0);
    assert_true(rl_take(t, 1, a, 1.0, 1.0, S) > 0);
    assert_int_equal(rl_take(t, 1, b, 1.0, 1.0, S), 0); /* another user */
    assert_int_equal(rl_take(t, 0, a, 1.0, 1.0, S), 0); /* a service token with the same key */
    rl_free(t);
}

static void test_memory_bounded(void **state)
{
    (void)state;
    rl_table *t = rl_new(64); /* 64 buckets whatever the callers */
    ms_xid first = ms_xid_int(1);
    assert_int_equal(rl_take(t, 1, first, 1.0, 1.0, S), 0);
    assert_true(rl_take(t, 1, first, 1.0, 1.0, S) > 0);
    /* 100000 other callers, each seen later: first's bucket is reused (least recently used) */
    for (uint64_t i = 2; i < 100002; i++)
        assert_int_equal(rl_take(t, 1, ms_xid_int(i), 1.0, 1.0, S + i), 0);
    /* it comes back with a full bucket, what it would have had after refilling anyway */
    assert_int_equal(rl_take(t, 1, first, 1.0, 1.0, S + 200000), 0);
    rl_free(t);
}

typedef struct {
    rl_table *t;
    int granted;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    for (int i = 0; i < 100000; i++)
        if (rl_take(a->t, 1, ms_xid_int(99), 1e-9, 1000.0, S) == 0)
            a->granted++;
    return NULL;
}

static void test_threads_share_one_bucket(void **state)
{
    (void)state;
    rl_table *t = rl_new(1024);
    pthread_t th[4];
    worker_arg args[4] = {{t, 0}, {t, 0}, {t, 0}, {t, 0}};
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, worker, &args[i]);
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += args[i].granted;
    }
    assert_int_equal(total, 1000); /* exactly the burst, over all workers */
    rl_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refill),
        cmocka_unit_test(test_keys_and_kinds_apart),
        cmocka_unit_test(test_memory_bounded),
        cmocka_unit_test(test_threads_share_one_bucket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
