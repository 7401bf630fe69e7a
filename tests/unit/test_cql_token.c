/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Murmur3Partitioner tokens, routing keys and ScyllaDB shard math, checked
 * against vectors published by real drivers (sources cited per table).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "core/error.h"
#include "cql/proto.h"

typedef struct vec {
    const char *key;
    size_t len;
    int64_t token;
} vec;

#define V(s, t)                                                                                    \
    {                                                                                              \
        s, sizeof(s) - 1, t                                                                        \
    }

/* scylladb/scylla-rust-driver scylla/src/routing/partitioner.rs, test_murmur3_partitioner */
static const vec rust_vectors[] = {
    V("test", -6017608668500074083LL),
    V("xd", 4507812186440344727LL),
    V("primary_key", -1632642444691073360LL),
    V("kremówki", 4354931215268080151LL),
};

/* apache/cassandra-gocql-driver internal/murmur/murmur_test.go, TestMurmur3H1ForCassandra.
 * The 0xc8.. tails exercise Cassandra's sign-extended tail bytes. */
#define P2 "prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\xc8\xc9"
static const vec gocql_vectors[] = {
    V("prefix\x00", -5156414768376541762LL),
    V("prefix\x00\x01", 3700033067394128583LL),
    V("prefix\x00\x01\x02", -3973852022020331202LL),
    V("prefix\x00\x01\x02\x03", 3038655072509758878LL),
    V("prefix\x00\x01\x02\x03\x04", -5681686890369564299LL),
    V("prefix\x00\x01\x02\x03\x04\x05", 8960422816272944721LL),
    V("prefix\x00\x01\x02\x03\x04\x05\x06", -1104872167714568090LL),
    V("prefix\x00\x01\x02\x03\x04\x05\x06\x07", -9199676315897541990LL),
    V("prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08", 4847624695450664884LL),
    V("prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08\t", -2737291859101550625LL),
    V("prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n", -1154133289533387924LL),
    V("prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b", 5781349077088505981LL),
    V("prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c", -681021187788781932LL),
    V("prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r", -3787130296809111096LL),
    V("prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e", -3115393326357146996LL),
    V("prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f", -2684252762052835206LL),
    V("prefix\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\xc8",
      -278181328349571586LL),
    V(P2, -5319761130493488577LL),
    V(P2 "\xca", -4593148434938707926LL),
    V(P2 "\xca\xcb", -575713103357290760LL),
    V(P2 "\xca\xcb\xcc", 4290743753678124926LL),
    V(P2 "\xca\xcb\xcc\xcd", 9164754117279683406LL),
    V(P2 "\xca\xcb\xcc\xcd\xce", -107668053986278786LL),
    V(P2 "\xca\xcb\xcc\xcd\xce\xcf", 64887291506465003LL),
    V(P2 "\xca\xcb\xcc\xcd\xce\xcf\xd0", 6241282934480161521LL),
    V(P2 "\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1", 5150183507841894143LL),
    V(P2 "\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1\xd2", 5645797256444299552LL),
    V(P2 "\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1\xd2\xd3", -908235285856554578LL),
    V(P2 "\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1\xd2\xd3\xd4", -1785405279637408062LL),
    V(P2 "\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1\xd2\xd3\xd4\xd5", 5343233714768265848LL),
    V(P2 "\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1\xd2\xd3\xd4\xd5\xd6", 4936964276934412722LL),
    V(P2 "\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1\xd2\xd3\xd4\xd5\xd6\xd7", 2294903531026336836LL),
};

static void test_murmur3_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rust_vectors / sizeof rust_vectors[0]; i++)
        assert_true(cql__murmur3_token(rust_vectors[i].key, rust_vectors[i].len) ==
                    rust_vectors[i].token);
    for (size_t i = 0; i < sizeof gocql_vectors / sizeof gocql_vectors[0]; i++) {
        int64_t t = cql__murmur3_token(gocql_vectors[i].key, gocql_vectors[i].len);
        if (t != gocql_vectors[i].token)
            fail_msg("vector %zu (len %zu): got %lld", i, gocql_vectors[i].len, (long long)t);
    }
}

static void test_composite_routing_key(void **state)
{
    (void)state;
    /* The last gocql vector (murmur_test.go) is a composite routing key:
     * (uuid 43275 29f-..., 4-byte value 00 06 'j' 'k'), each as u16 len | bytes | 0. */
    const uint8_t uuid[16] = {0x43, 0x27, 0x52, 0x9f, 0xb6, 0x45, 0xdd, 0x00,
                              0xb8, 0x83, 0xec, 0x39, 0xae, 0x44, 0x8b, 0xb8};
    const uint8_t second[4] = {0x00, 0x06, 'j', 'k'};
    cql_bytes comp[2] = {{uuid, 16}, {second, 4}};
    cql_buf key = {0};
    assert_int_equal(cql__routing_key(&key, comp, 2), 0);
    const uint8_t want[] = "\x00\x10\x43'R\x9f\xb6\x45\xdd\x00\xb8\x83\xec\x39\xae\x44\x8b\xb8"
                           "\x00\x00\x04\x00\x06jk\x00";
    assert_int_equal(key.len, sizeof want - 1);
    assert_memory_equal(key.data, want, key.len);
    assert_true(cql__murmur3_token(key.data, key.len) == -9223371632693506265LL);

    /* the same through bound values and pk_indexes in non-declaration order */
    cql_values v;
    cql_values_init(&v);
    cql_values_add_text(&v, "ignored", 7);
    cql_values_add_blob(&v, second, 4);
    cql_values_add_uuid(&v, uuid);
    const uint16_t pk[2] = {2, 1};
    cql_buf scratch = {0};
    int64_t tok;
    assert_int_equal(cql__token_of_values(&v, pk, 2, &scratch, &tok), 0);
    assert_true(tok == -9223371632693506265LL);
    /* single-column key: raw bytes, no framing */
    cql_values_reset(&v);
    cql_values_add_text(&v, "test", 4);
    const uint16_t pk1[1] = {0};
    assert_int_equal(cql__token_of_values(&v, pk1, 1, &scratch, &tok), 0);
    assert_true(tok == -6017608668500074083LL);
    /* null components and out-of-range indexes cannot be routed */
    cql_values_reset(&v);
    cql_values_add_null(&v);
    assert_int_equal(cql__token_of_values(&v, pk1, 1, &scratch, &tok), MS_ERR_INVALID);
    assert_int_equal(cql__token_of_values(&v, pk, 2, &scratch, &tok), MS_ERR_INVALID);
    cql_bytes nul[2] = {{NULL, -1}, {second, 4}};
    assert_int_equal(cql__routing_key(&key, nul, 2), MS_ERR_INVALID);
    cql_values_free(&v);
    cql_buf_free(&key);
    cql_buf_free(&scratch);
}

static void test_shard_of(void **state)
{
    (void)state;
    /* scylladb/scylla-rust-driver scylla/src/routing/sharding.rs test_shard_of
     * ("values taken from the gocql driver"): nr_shards 4, ignore_msb 12 */
    assert_int_equal(cql__scylla_shard_of(-9219783007514621794LL, 4, 12), 3);
    assert_int_equal(cql__scylla_shard_of(9222582454147032830LL, 4, 12), 3);
    /* scylladb/python-driver tests/unit/test_shard_aware.py
     * test_parsing_and_calculating_shard_id: 12 shards, ignore_msb 12, token of key */
    struct {
        const char *key;
        uint32_t shard;
    } py[] = {{"a", 4}, {"b", 6}, {"c", 6}, {"e", 4}, {"100000", 2}};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(
            cql__scylla_shard_of(cql__murmur3_token(py[i].key, strlen(py[i].key)), 12, 12),
            py[i].shard);
    /* edges: one shard; minimum and maximum tokens */
    assert_int_equal(cql__scylla_shard_of(12345, 1, 12), 0);
    assert_int_equal(cql__scylla_shard_of(INT64_MIN, 7, 0), 0);
    assert_int_equal(cql__scylla_shard_of(INT64_MAX, 7, 0), 6);
    /* exactness of the 64x32 high product vs a reference 128-bit computation */
    __extension__ typedef unsigned __int128 u128;
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t nr = (uint32_t)(x % 4096) + 1;
        uint32_t msb = (uint32_t)((x >> 20) % 20);
        int64_t tok = (int64_t)x;
        uint64_t b = ((uint64_t)tok + (1ULL << 63)) << msb;
        uint32_t want = (uint32_t)(((u128)b * nr) >> 64);
        assert_int_equal(cql__scylla_shard_of(tok, nr, msb), want);
    }
}

static void test_source_port(void **state)
{
    (void)state;
    /* Scylla assigns a connection to the shard-aware port to shard (source port % nr_shards). */
    for (uint32_t nr = 1; nr <= 16; nr++) {
        for (uint32_t shard = 0; shard < nr; shard++) {
            uint16_t p = cql__scylla_source_port(shard, nr, 49152, 65535, 0);
            assert_true(p >= 49152);
            assert_int_equal(p % nr, shard);
            assert_true((uint32_t)p - 49152u < nr); /* the lowest one */
            uint16_t q = cql__scylla_source_port(shard, nr, 49152, 65535, (uint16_t)(p + 1));
            assert_int_equal(q, p + nr);
            /* wrap around from the top of the range */
            uint16_t w = cql__scylla_source_port(shard, nr, 49152, 65535, 65535);
            assert_true(w == 65535 ? 65535 % nr == shard : w == p);
        }
    }
    /* scylla-rust-driver sharding.rs: range 49152..=49152 has no port for shard 1 of 4 */
    assert_int_equal(cql__scylla_source_port(1, 4, 49152, 49152, 0), 0);
    assert_int_equal(cql__scylla_source_port(0, 4, 49152, 49152, 0), 49152);
    assert_int_equal(cql__scylla_source_port(4, 4, 49152, 65535, 0), 0);
    assert_int_equal(cql__scylla_source_port(0, 0, 49152, 65535, 0), 0);
}

static void put_entry(cql_buf *b, const char *k, const char *v)
{
    cql__put_string(b, k, strlen(k));
    cql__put_short(b, 1);
    cql__put_string(b, v, strlen(v));
}

static void test_scylla_supported(void **state)
{
    (void)state;
    /* Key set of a real Scylla SUPPORTED (scylladb/python-driver issue #295, notes) */
    cql_buf b = {0};
    cql__put_short(&b, 11);
    put_entry(&b, "SCYLLA_SHARD", "3");
    put_entry(&b, "SCYLLA_NR_SHARDS", "12");
    put_entry(&b, "SCYLLA_SHARDING_IGNORE_MSB", "12");
    put_entry(&b, "SCYLLA_PARTITIONER", "org.apache.cassandra.dht.Murmur3Partitioner");
    put_entry(&b, "SCYLLA_SHARDING_ALGORITHM", "biased-token-round-robin");
    put_entry(&b, "SCYLLA_SHARD_AWARE_PORT", "19042");
    put_entry(&b, "SCYLLA_SHARD_AWARE_PORT_SSL", "19142");
    cql__put_string(&b, "COMPRESSION", 11);
    cql__put_short(&b, 2);
    cql__put_string(&b, "lz4", 3);
    cql__put_string(&b, "snappy", 6);
    put_entry(&b, "CQL_VERSION", "3.3.1");
    put_entry(&b, "SCYLLA_RATE_LIMIT_ERROR", "ERROR_CODE=61440");
    put_entry(&b, "TABLETS_ROUTING_V1", "");
    cql_multimap m;
    assert_int_equal(cql__supported_decode(b.data, b.len, &m), 0);
    assert_int_equal(m.count, 11);
    cql_scylla_ext x;
    cql__scylla_ext_parse(&m, &x);
    assert_true(x.scylla);
    assert_true(x.rate_limit);
    assert_int_equal(x.rate_limit_code, 61440);
    assert_true(x.tablets_routing);
    cql_scylla_info s;
    assert_int_equal(cql__scylla_parse(&m, &s), 0);
    assert_true(s.present);
    assert_int_equal(s.shard, 3);
    assert_int_equal(s.nr_shards, 12);
    assert_int_equal(s.ignore_msb, 12);
    assert_int_equal(s.shard_aware_port, 19042);
    assert_int_equal(s.shard_aware_port_ssl, 19142);
    assert_true(cql__scylla_sharding_supported(&s));
    assert_true(cql__multimap_has(&m, "COMPRESSION", "lz4"));
    assert_true(cql__multimap_has(&m, "COMPRESSION", "snappy"));
    assert_false(cql__multimap_has(&m, "COMPRESSION", "zstd"));
    cql_str v;
    uint16_t nv;
    assert_int_equal(cql__multimap_get(&m, "COMPRESSION", &v, &nv), 0);
    assert_int_equal(nv, 2);
    assert_true(cql_str_eq(v, "lz4"));
    assert_int_equal(cql__multimap_value(&m, "COMPRESSION", 1, &v), 0);
    assert_true(cql_str_eq(v, "snappy"));
    assert_int_equal(cql__multimap_value(&m, "COMPRESSION", 2, &v), MS_ERR_NOT_FOUND);
    assert_int_equal(cql__multimap_get(&m, "NOPE", &v, &nv), MS_ERR_NOT_FOUND);

    /* Cassandra: no Scylla keys */
    cql_buf_reset(&b);
    cql__put_short(&b, 1);
    put_entry(&b, "CQL_VERSION", "3.4.7");
    assert_int_equal(cql__supported_decode(b.data, b.len, &m), 0);
    assert_int_equal(cql__scylla_parse(&m, &s), 0);
    assert_false(s.present);
    assert_false(cql__scylla_sharding_supported(&s));
    cql__scylla_ext_parse(&m, &x);
    assert_false(x.scylla || x.rate_limit || x.tablets_routing);

    /* ScyllaDB whose sharding is unusable (another partitioner) is still ScyllaDB; an
     * unreadable rate-limit code leaves the extension off (the error stays a server error) */
    cql_buf_reset(&b);
    cql__put_short(&b, 2);
    put_entry(&b, "SCYLLA_PARTITIONER", "org.apache.cassandra.dht.RandomPartitioner");
    put_entry(&b, "SCYLLA_RATE_LIMIT_ERROR", "ERROR_CODE=x");
    assert_int_equal(cql__supported_decode(b.data, b.len, &m), 0);
    cql__scylla_ext_parse(&m, &x);
    assert_true(x.scylla);
    assert_false(x.rate_limit);
    assert_false(x.tablets_routing);

    /* inconsistent: shard >= nr_shards, zero shards, garbage numbers, half present */
    const char *bad[][2] = {{"5", "4"}, {"0", "0"}, {"x", "4"}, {"1", "4294967296"}};
    for (size_t i = 0; i < 4; i++) {
        cql_buf_reset(&b);
        cql__put_short(&b, 2);
        put_entry(&b, "SCYLLA_SHARD", bad[i][0]);
        put_entry(&b, "SCYLLA_NR_SHARDS", bad[i][1]);
        assert_int_equal(cql__supported_decode(b.data, b.len, &m), 0);
        assert_int_equal(cql__scylla_parse(&m, &s), MS_ERR_INVALID);
    }
    cql_buf_reset(&b);
    cql__put_short(&b, 1);
    put_entry(&b, "SCYLLA_SHARD", "1");
    assert_int_equal(cql__supported_decode(b.data, b.len, &m), 0);
    assert_int_equal(cql__scylla_parse(&m, &s), MS_ERR_INVALID);
    /* truncated multimap */
    cql_buf_reset(&b);
    cql__put_short(&b, 2);
    put_entry(&b, "SCYLLA_SHARD", "1");
    assert_int_equal(cql__supported_decode(b.data, b.len, &m), MS_ERR_INVALID);
    cql_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_murmur3_vectors),  cmocka_unit_test(test_composite_routing_key),
        cmocka_unit_test(test_shard_of),         cmocka_unit_test(test_source_port),
        cmocka_unit_test(test_scylla_supported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
