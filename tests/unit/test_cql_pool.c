/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pool's shard logic with a faked SUPPORTED map (there is no ScyllaDB
 * server here): shard counts from SCYLLA_* keys, one slot set per shard,
 * extra connections refused ("basic" mode: connect until every shard is
 * covered), requests sent to the connection of their token's shard (the
 * published shard vectors), source ports for the shard-aware port, and the
 * Cassandra case (no extension: one pool per host).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cql/session.h"

#include <string.h>

/* Builds a SUPPORTED body: [string multimap] of single-valued keys. */
static size_t supported(uint8_t *out, const char *const *kv, size_t npairs)
{
    cql_buf b;
    cql_buf_init(&b);
    cql__put_short(&b, (uint16_t)npairs);
    for (size_t i = 0; i < npairs; i++) {
        cql__put_string(&b, kv[2 * i], strlen(kv[2 * i]));
        cql__put_short(&b, 1);
        cql__put_string(&b, kv[2 * i + 1], strlen(kv[2 * i + 1]));
    }
    memcpy(out, b.data, b.len);
    size_t n = b.len;
    cql_buf_free(&b);
    return n;
}

typedef struct fake_conn {
    int shard;
    int load;
} fake_conn;

static int load_of(const void *c)
{
    return ((const fake_conn *)c)->load;
}

static void test_scylla_pool(void **state)
{
    (void)state;
    const char *kv[] = {"SCYLLA_SHARD",
                        "1",
                        "SCYLLA_NR_SHARDS",
                        "4",
                        "SCYLLA_SHARDING_IGNORE_MSB",
                        "12",
                        "SCYLLA_PARTITIONER",
                        "org.apache.cassandra.dht.Murmur3Partitioner",
                        "SCYLLA_SHARDING_ALGORITHM",
                        "biased-token-round-robin",
                        "SCYLLA_SHARD_AWARE_PORT",
                        "19042",
                        "COMPRESSION",
                        "lz4"};
    uint8_t body[512];
    size_t n = supported(body, kv, 7);
    cql_multimap mm;
    assert_int_equal(cql__supported_decode(body, n, &mm), 0);
    cql_scylla_info si;
    assert_int_equal(cql__scylla_parse(&mm, &si), 0);
    assert_true(si.present);
    assert_true(cql__scylla_sharding_supported(&si));
    assert_int_equal(si.nr_shards, 4);
    assert_int_equal(si.ignore_msb, 12);
    assert_int_equal(si.shard_aware_port, 19042);

    cql_shard_pool p;
    assert_int_equal(cql__spool_init(&p, si.nr_shards, si.ignore_msb, 2), 0);
    assert_int_equal(cql__spool_missing_shard(&p), 0);
    /* basic mode: connections land wherever the server puts them */
    const int landing[] = {1, 1, 1, 3, 0, 3, 3, 2, 0, 2, 2};
    fake_conn conns[11];
    int kept = 0, extra = 0;
    for (int i = 0; i < 11; i++) {
        conns[i] = (fake_conn){landing[i], 0};
        if (cql__spool_add(&p, (uint32_t)landing[i], &conns[i]) >= 0)
            kept++;
        else
            extra++; /* the third on shard 1, the third on shard 3, the third on shard 2 */
    }
    assert_int_equal(kept, 8);
    assert_int_equal(extra, 3);
    assert_int_equal(p.total, 8);
    assert_int_equal(cql__spool_missing_shard(&p), -1);

    /* published vectors: both tokens belong to shard 3 (nr_shards 4, ignore_msb 12) */
    const int64_t tokens[] = {-9219783007514621794LL, 9222582454147032830LL};
    for (int t = 0; t < 2; t++) {
        assert_int_equal(cql__scylla_shard_of(tokens[t], 4, 12), 3);
        fake_conn *c = cql__spool_pick(&p, true, tokens[t], -1, load_of);
        assert_non_null(c);
        assert_int_equal(c->shard, 3);
    }
    /* the less loaded of shard 3's two connections */
    conns[3].load = 10;
    conns[5].load = 2;
    assert_ptr_equal(cql__spool_pick(&p, true, tokens[0], -1, load_of), &conns[5]);
    conns[5].load = 20;
    assert_ptr_equal(cql__spool_pick(&p, true, tokens[0], -1, load_of), &conns[3]);

    /* shard 3 loses its connections: requests still go out, on another shard,
     * and shard 3 is the one to reconnect */
    assert_true(cql__spool_remove(&p, &conns[3]) >= 0);
    assert_true(cql__spool_remove(&p, &conns[5]) >= 0);
    assert_int_equal(cql__spool_remove(&p, &conns[5]), -1);
    assert_int_equal(cql__spool_missing_shard(&p), 3);
    fake_conn *c = cql__spool_pick(&p, true, tokens[0], -1, load_of);
    assert_non_null(c);
    assert_int_not_equal(c->shard, 3);

    /* with the shard-aware port: a source port that lands on shard 3 */
    uint16_t cursor = 0, lp;
    int shard;
    cql__spool_plan(&p, si.shard_aware_port, 49152, 65535, &cursor, &shard, &lp);
    assert_int_equal(shard, 3);
    assert_true(lp >= 49152);
    assert_int_equal(lp % 4, 3);
    uint16_t first = lp;
    cql__spool_plan(&p, si.shard_aware_port, 49152, 65535, &cursor, &shard, &lp);
    assert_int_equal(lp % 4, 3);
    assert_true(lp > first); /* a bind failure moves on to the next candidate */
    /* wraps around at the top of the range */
    cursor = 65534;
    cql__spool_plan(&p, si.shard_aware_port, 49152, 65535, &cursor, &shard, &lp);
    assert_int_equal(lp % 4, 3);
    /* no shard-aware port: no source port, basic mode */
    cql__spool_plan(&p, 0, 49152, 65535, &cursor, &shard, &lp);
    assert_int_equal(shard, 3);
    assert_int_equal(lp, 0);
    /* refilled */
    assert_true(cql__spool_add(&p, 3, &conns[3]) >= 0);
    assert_true(cql__spool_add(&p, 3, &conns[5]) >= 0);
    assert_int_equal(cql__spool_missing_shard(&p), -1);
    cql__spool_plan(&p, si.shard_aware_port, 49152, 65535, &cursor, &shard, &lp);
    assert_int_equal(shard, -1);
    cql__spool_free(&p);
}

static void test_cassandra_pool(void **state)
{
    (void)state;
    /* Cassandra's SUPPORTED has no SCYLLA_* keys */
    const char *kv[] = {"CQL_VERSION", "3.4.7", "COMPRESSION", "lz4", "PROTOCOL_VERSIONS", "4/v4"};
    uint8_t body[256];
    size_t n = supported(body, kv, 3);
    cql_multimap mm;
    assert_int_equal(cql__supported_decode(body, n, &mm), 0);
    cql_scylla_info si;
    assert_int_equal(cql__scylla_parse(&mm, &si), 0);
    assert_false(si.present);
    cql_shard_pool p;
    assert_int_equal(cql__spool_init(&p, 1, 0, 3), 0); /* pool_size 3, one "shard" */
    fake_conn c[4] = {{0, 5}, {0, 1}, {0, 3}, {0, 0}};
    for (int i = 0; i < 3; i++)
        assert_true(cql__spool_add(&p, 0, &c[i]) >= 0);
    assert_int_equal(cql__spool_add(&p, 0, &c[3]), -1); /* pool full */
    /* tokens do not matter: the least loaded connection */
    assert_ptr_equal(cql__spool_pick(&p, true, 12345, -1, load_of), &c[1]);
    assert_ptr_equal(cql__spool_pick(&p, false, 0, -1, load_of), &c[1]);
    c[1].load = 9;
    assert_ptr_equal(cql__spool_pick(&p, false, 0, -1, load_of), &c[2]);
    cql__spool_free(&p);

    /* inconsistent sharding info is refused, not trusted */
    const char *bad[] = {"SCYLLA_SHARD", "4", "SCYLLA_NR_SHARDS", "4"};
    n = supported(body, bad, 2);
    assert_int_equal(cql__supported_decode(body, n, &mm), 0);
    assert_true(cql__scylla_parse(&mm, &si) < 0);
    /* an empty pool gives no connection */
    assert_int_equal(cql__spool_init(&p, 2, 0, 1), 0);
    assert_null(cql__spool_pick(&p, true, 1, -1, load_of));
    cql__spool_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scylla_pool),
        cmocka_unit_test(test_cassandra_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
