/* SPDX-License-Identifier: Apache-2.0 */
/* Snowflake ids: uniqueness under threads, clock steps, fields, buckets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/error.h"
#include "core/snowflake.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define THREADS    4
#define PER_THREAD 250000 /* 1M ids in all */
#define EPOCH      MS_SNOWFLAKE_EPOCH_DISCORD

typedef struct {
    ms_snowflake *g;
    uint64_t *ids;
    int failures;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    for (int i = 0; i < PER_THREAD; i++)
        if (ms_snowflake_next(a->g, &a->ids[i]) != 0)
            a->failures++;
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_million_ids_four_threads(void **state)
{
    (void)state;
    ms_snowflake g;
    assert_int_equal(ms_snowflake_init(&g, EPOCH, 7, 2000, NULL, NULL), 0);
    uint64_t *all = malloc(sizeof(uint64_t) * THREADS * PER_THREAD);
    assert_non_null(all);
    pthread_t th[THREADS];
    worker_arg args[THREADS];
    for (int t = 0; t < THREADS; t++) {
        args[t] = (worker_arg){.g = &g, .ids = all + (size_t)t * PER_THREAD, .failures = 0};
        assert_int_equal(pthread_create(&th[t], NULL, worker, &args[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(args[t].failures, 0);
        for (int i = 1; i < PER_THREAD; i++)
            assert_true(args[t].ids[i] > args[t].ids[i - 1]); /* increasing per thread */
        assert_int_equal(ms_snowflake_worker(args[t].ids[0]), 7);
    }
    qsort(all, (size_t)THREADS * PER_THREAD, sizeof(uint64_t), cmp_u64);
    for (size_t i = 1; i < (size_t)THREADS * PER_THREAD; i++)
        assert_true(all[i] != all[i - 1]); /* unique */
    free(all);
}

/* A clock the test moves by hand; each call can also advance it. */
typedef struct {
    uint64_t now;
    uint64_t step_after_calls; /* when non-zero: jump forward 1 ms every so many calls */
    uint64_t calls;
} fake_clock;

static uint64_t fake_now(void *ctx)
{
    fake_clock *c = ctx;
    c->calls++;
    if (c->step_after_calls && c->calls % c->step_after_calls == 0)
        c->now++;
    return c->now;
}

static void test_clock_step_back_no_duplicate(void **state)
{
    (void)state;
    fake_clock clk = {.now = EPOCH + 1000000};
    ms_snowflake g;
    assert_int_equal(ms_snowflake_init(&g, EPOCH, 1, 50, fake_now, &clk), 0);
    uint64_t a, b, c;
    assert_int_equal(ms_snowflake_next(&g, &a), 0);
    assert_int_equal(ms_snowflake_next(&g, &b), 0);
    assert_true(b > a);

    /* The clock steps back 10 ms: ids continue the last millisecond's
     * sequence, still increasing, never repeating. */
    clk.now -= 10;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(ms_snowflake_next(&g, &c), 0);
        assert_true(c > b);
        b = c;
    }
    assert_int_equal(ms_snowflake_time(c), 1000000);

    /* Exhaust the sequence of that millisecond while the clock is behind by
     * more than the allowed wait: the generator fails instead of running ahead. */
    clk.now -= 100;
    int rc = 0;
    for (int i = 0; i < 5000 && rc == 0; i++) {
        rc = ms_snowflake_next(&g, &c);
        if (rc == 0) {
            assert_true(c > b);
            b = c;
        }
    }
    assert_int_equal(rc, MS_ERR_CLOCK);

    /* The clock catches up: ids resume, above everything issued. */
    clk.now = EPOCH + 1000005;
    assert_int_equal(ms_snowflake_next(&g, &c), 0);
    assert_true(c > b);
    assert_int_equal(ms_snowflake_time(c), 1000005);
}

static void test_sequence_exhaustion_waits(void **state)
{
    (void)state;
    /* The clock advances 1 ms every 4200 reads, slower than ids are asked
     * for: 4096 ids per ms at most, so the generator must wait on the clock
     * rather than overflow the sequence or run ahead of the clock. */
    fake_clock clk = {.now = EPOCH + 5000, .step_after_calls = 4200};
    ms_snowflake g;
    assert_int_equal(ms_snowflake_init(&g, EPOCH, 3, 1000, fake_now, &clk), 0);
    uint64_t prev = 0, id;
    int full_ms = 0;
    for (int i = 0; i < 13000; i++) {
        assert_int_equal(ms_snowflake_next(&g, &id), 0);
        assert_true(id > prev);
        assert_true(ms_snowflake_time(id) <= clk.now - EPOCH); /* never ahead of the clock */
        if (ms_snowflake_seq(id) == MS_SNOWFLAKE_MAX_SEQ)
            full_ms++;
        prev = id;
    }
    assert_true(full_ms >= 2);
}

static void test_fields_and_epoch(void **state)
{
    (void)state;
    fake_clock clk = {.now = EPOCH + 123456789};
    ms_snowflake g;
    assert_int_equal(ms_snowflake_init(&g, EPOCH, 1023, 10, fake_now, &clk), 0);
    uint64_t id;
    assert_int_equal(ms_snowflake_next(&g, &id), 0);
    assert_int_equal(ms_snowflake_time(id), 123456789);
    assert_int_equal(ms_snowflake_worker(id), 1023);
    assert_int_equal(ms_snowflake_seq(id), 0);
    assert_int_equal(ms_snowflake_unix_ms(id, EPOCH), EPOCH + 123456789);
    assert_int_equal(ms_snowflake_next(&g, &id), 0);
    assert_int_equal(ms_snowflake_seq(id), 1);

    /* A known Discord id: 175928847299117063 was made at 1462015105796 ms. */
    assert_int_equal(ms_snowflake_unix_ms(175928847299117063ULL, EPOCH), 1462015105796ULL);
    assert_int_equal(ms_snowflake_worker(175928847299117063ULL), (0x1 << 5) | 0x0);
    assert_int_equal(ms_snowflake_seq(175928847299117063ULL), 7);

    /* id <-> time: the id of a time is the smallest id at or after it */
    uint64_t t = 1700000000000ULL;
    uint64_t lo = ms_snowflake_from_unix_ms(t, EPOCH);
    assert_int_equal(ms_snowflake_unix_ms(lo, EPOCH), t);
    assert_int_equal(ms_snowflake_worker(lo), 0);
    assert_int_equal(ms_snowflake_seq(lo), 0);
    assert_true(ms_snowflake_from_unix_ms(t - 1, EPOCH) < lo);
    assert_int_equal(ms_snowflake_from_unix_ms(EPOCH - 5, EPOCH), 0);

    /* invalid set-ups */
    assert_int_equal(ms_snowflake_init(&g, EPOCH, 1024, 10, fake_now, &clk), MS_ERR_INVALID);
    assert_int_equal(ms_snowflake_init(&g, clk.now + 1, 0, 10, fake_now, &clk), MS_ERR_INVALID);
}

static void test_bucket_boundaries(void **state)
{
    (void)state;
    const uint64_t day = 24ULL * 3600 * 1000;
    assert_int_equal(MS_BUCKET_MS, 10 * day);
    /* 9.9, 10 and 10.1 days after the epoch */
    uint64_t a = ms_snowflake_from_unix_ms(EPOCH + 99 * day / 10, EPOCH);
    uint64_t b = ms_snowflake_from_unix_ms(EPOCH + 10 * day, EPOCH);
    uint64_t c = ms_snowflake_from_unix_ms(EPOCH + 101 * day / 10, EPOCH);
    assert_int_equal(ms_bucket_of(a), 0);
    assert_int_equal(ms_bucket_of(b), 1);
    assert_int_equal(ms_bucket_of(c), 1);
    assert_int_equal(ms_bucket_of(b - 1), 0);
    /* first and last id of a bucket */
    for (uint32_t k = 0; k < 5000; k += 997) {
        assert_int_equal(ms_bucket_of(ms_bucket_first_id(k)), k);
        assert_int_equal(ms_bucket_of(ms_bucket_last_id(k)), k);
        assert_int_equal(ms_bucket_of(ms_bucket_last_id(k) + 1), k + 1);
        assert_int_equal(ms_bucket_last_id(k) + 1, ms_bucket_first_id(k + 1));
    }
    /* Discord's example id lands in bucket 1462015105796-epoch / 10 days */
    assert_int_equal(ms_bucket_of(175928847299117063ULL),
                     (1462015105796ULL - EPOCH) / MS_BUCKET_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_million_ids_four_threads),
        cmocka_unit_test(test_clock_step_back_no_duplicate),
        cmocka_unit_test(test_sequence_exhaustion_waits),
        cmocka_unit_test(test_fields_and_epoch),
        cmocka_unit_test(test_bucket_boundaries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
