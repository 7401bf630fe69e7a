/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tablet routing cache (src/cql/tablets.c): the "tablets-routing-v1"
 * payload as ScyllaDB encodes it, (first, last] lookups, overlap replacement.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/error.h"
#include "cql/proto.h"
#include "cql/tablets.h"

#include <stdio.h>
#include <string.h>

static void put_i32(cql_buf *b, int32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    cql_buf_append(b, x, 4);
}

static void put_i64_elem(cql_buf *b, int64_t v)
{
    put_i32(b, 8);
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
    cql_buf_append(b, x, 8);
}

/* tuple<bigint, bigint, list<tuple<uuid, int>>> with replicas whose uuid bytes are all `id` */
static void payload(cql_buf *b, int64_t first, int64_t last, int n, const uint8_t *ids,
                    const int32_t *shards)
{
    cql_buf_reset(b);
    put_i64_elem(b, first);
    put_i64_elem(b, last);
    put_i32(b, 4 + n * (4 + 4 + 16 + 4 + 4));
    put_i32(b, n);
    for (int i = 0; i < n; i++) {
        put_i32(b, 4 + 16 + 4 + 4);
        put_i32(b, 16);
        uint8_t u[16];
        memset(u, ids[i], 16);
        cql_buf_append(b, u, 16);
        put_i32(b, 4);
        put_i32(b, shards[i]);
    }
}

static void test_decode(void **state)
{
    (void)state;
    cql_buf b;
    cql_buf_init(&b);
    uint8_t ids[] = {0x11, 0x22};
    int32_t sh[] = {3, 0};
    payload(&b, -100, 200, 2, ids, sh);
    cql_tablet t;
    assert_int_equal(cql__tablet_decode(b.data, b.len, &t), 0);
    assert_true(t.first == -100 && t.last == 200);
    assert_int_equal(t.nrep, 2);
    assert_string_equal(t.rep[0].host_id, "11111111-1111-1111-1111-111111111111");
    assert_int_equal(t.rep[0].shard, 3);
    assert_string_equal(t.rep[1].host_id, "22222222-2222-2222-2222-222222222222");
    /* truncated, trailing bytes, empty range */
    assert_int_equal(cql__tablet_decode(b.data, b.len - 1, &t), MS_ERR_INVALID);
    uint8_t extra = 0;
    cql_buf_append(&b, &extra, 1);
    assert_int_equal(cql__tablet_decode(b.data, b.len, &t), 0); /* outer tuple: rest ignored */
    payload(&b, 5, 5, 1, ids, sh);
    assert_int_equal(cql__tablet_decode(b.data, b.len, &t), MS_ERR_INVALID);
    cql_buf_free(&b);
}

static cql_tablet tablet(int64_t first, int64_t last, int32_t shard)
{
    cql_tablet t;
    memset(&t, 0, sizeof t);
    t.first = first;
    t.last = last;
    t.nrep = 1;
    snprintf(t.rep[0].host_id, sizeof t.rep[0].host_id, "host-%d", (int)shard);
    t.rep[0].shard = shard;
    return t;
}

static int32_t shard_at(const cql_tablets *ts, const char *table, int64_t token)
{
    const cql_tablet *t = cql__tablets_find(ts, "ks", table, token);
    return t ? t->rep[0].shard : -1;
}

static void test_lookup_and_overlap(void **state)
{
    (void)state;
    cql_tablets ts;
    memset(&ts, 0, sizeof ts);
    assert_true(cql__tablets_empty(&ts));
    assert_null(cql__tablets_find(&ts, "ks", "t", 0));
    cql_tablet a = tablet(-100, 0, 1), b = tablet(0, 100, 2), c = tablet(100, 200, 3);
    assert_int_equal(cql__tablets_put(&ts, "ks", "t", &b), 0);
    assert_int_equal(cql__tablets_put(&ts, "ks", "t", &c), 0);
    assert_int_equal(cql__tablets_put(&ts, "ks", "t", &a), 0);
    /* (first, last]: the first token belongs to the tablet before */
    assert_int_equal(shard_at(&ts, "t", -100), -1);
    assert_int_equal(shard_at(&ts, "t", -99), 1);
    assert_int_equal(shard_at(&ts, "t", 0), 1);
    assert_int_equal(shard_at(&ts, "t", 1), 2);
    assert_int_equal(shard_at(&ts, "t", 100), 2);
    assert_int_equal(shard_at(&ts, "t", 200), 3);
    assert_int_equal(shard_at(&ts, "t", 201), -1);
    assert_int_equal(shard_at(&ts, "other", 1), -1);
    /* a merge: (-50, 150] replaces the three it overlaps */
    cql_tablet m = tablet(-50, 150, 7);
    assert_int_equal(cql__tablets_put(&ts, "ks", "t", &m), 0);
    assert_int_equal(shard_at(&ts, "t", -60), -1);
    assert_int_equal(shard_at(&ts, "t", -49), 7);
    assert_int_equal(shard_at(&ts, "t", 150), 7);
    assert_int_equal(shard_at(&ts, "t", 151), -1);
    /* a split inside: (0, 10] */
    cql_tablet s = tablet(0, 10, 9);
    assert_int_equal(cql__tablets_put(&ts, "ks", "t", &s), 0);
    assert_int_equal(shard_at(&ts, "t", 5), 9);
    assert_int_equal(shard_at(&ts, "t", 11), -1);
    assert_int_equal(shard_at(&ts, "t", -10), -1);
    /* the whole ring */
    cql_tablet all = tablet(INT64_MIN, INT64_MAX, 4);
    assert_int_equal(cql__tablets_put(&ts, "ks", "u", &all), 0);
    assert_int_equal(shard_at(&ts, "u", INT64_MAX), 4);
    assert_int_equal(shard_at(&ts, "u", INT64_MIN + 1), 4);
    /* dropping a table, then the keyspace */
    cql__tablets_drop(&ts, "ks", 2, "u", 1);
    assert_int_equal(shard_at(&ts, "u", 0), -1);
    assert_int_equal(shard_at(&ts, "t", 5), 9);
    cql__tablets_drop(&ts, "ks", 2, NULL, 0);
    assert_true(cql__tablets_empty(&ts));
    assert_int_equal(cql__tablets_put(&ts, "ks", "t", &a), 0);
    cql__tablets_clear(&ts);
    assert_true(cql__tablets_empty(&ts));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_lookup_and_overlap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
