/* SPDX-License-Identifier: Apache-2.0 */
/* Token ring and replica placement: SimpleStrategy and NetworkTopologyStrategy
 * (Cassandra 4+ rack-aware walk), replication options, replica map lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cql/ring.h"
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { A, B, C, D, E, F };

static void expect(const cql_ring *r, const cql_replication *rep, int64_t token,
                   const uint32_t *want, size_t nwant)
{
    uint32_t got[16];
    size_t n = cql__ring_replicas_at(r, rep, cql__ring_index(r, token), got, 16);
    assert_int_equal(n, nwant);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i], want[i]);
    /* the precomputed map agrees */
    cql_replica_map m;
    assert_int_equal(cql__replica_map_build(&m, r, rep), 0);
    size_t mn;
    const uint32_t *mh = cql__replica_map_get(&m, r, token, &mn);
    assert_int_equal(mn, nwant);
    for (size_t i = 0; i < mn; i++)
        assert_int_equal(mh[i], want[i]);
    cql__replica_map_free(&m);
}

#define EXPECT(r, rep, tok, ...)                                                                   \
    do {                                                                                           \
        const uint32_t w_[] = {__VA_ARGS__};                                                       \
        expect(r, rep, tok, w_, sizeof(w_) / sizeof(w_[0]));                                       \
    } while (0)

static cql_replication simple(int rf)
{
    const char *k[] = {"class", "replication_factor"};
    char v1[8];
    snprintf(v1, sizeof(v1), "%d", rf);
    const char *v[] = {"org.apache.cassandra.locator.SimpleStrategy", v1};
    cql_replication r;
    assert_int_equal(cql__replication_parse(&r, k, v, 2), 0);
    assert_int_equal(r.cls, CQL_REPL_SIMPLE);
    return r;
}

static void test_ring_index(void **state)
{
    (void)state;
    const int64_t ta[] = {0, 300}, tb[] = {100, 400}, tc[] = {200, 500};
    cql_ring_host_in h[] = {{"dc1", "r1", ta, 2}, {"dc1", "r1", tb, 2}, {"dc1", "r1", tc, 2}};
    cql_ring r;
    assert_int_equal(cql__ring_build(&r, h, 3), 0);
    assert_int_equal(r.ntokens, 6);
    /* a token belongs to the first ring token >= it, wrapping */
    assert_int_equal(r.tokens[cql__ring_index(&r, -5)], 0);
    assert_int_equal(r.tokens[cql__ring_index(&r, 0)], 0);
    assert_int_equal(r.tokens[cql__ring_index(&r, 1)], 100);
    assert_int_equal(r.tokens[cql__ring_index(&r, 500)], 500);
    assert_int_equal(r.tokens[cql__ring_index(&r, 501)], 0);
    assert_int_equal(r.tokens[cql__ring_index(&r, INT64_MAX)], 0);
    assert_int_equal(r.tokens[cql__ring_index(&r, INT64_MIN)], 0);
    cql__ring_free(&r);
}

static void test_simple_strategy(void **state)
{
    (void)state;
    const int64_t ta[] = {0, 300}, tb[] = {100, 400}, tc[] = {200, 500};
    cql_ring_host_in h[] = {{"dc1", "r1", ta, 2}, {"dc2", "r9", tb, 2}, {"dc1", "r1", tc, 2}};
    cql_ring r;
    assert_int_equal(cql__ring_build(&r, h, 3), 0);
    cql_replication rf1 = simple(1), rf2 = simple(2), rf3 = simple(3), rf5 = simple(5);
    EXPECT(&r, &rf1, 50, B);
    EXPECT(&r, &rf2, 50, B, C);
    EXPECT(&r, &rf2, 300, A, B);
    EXPECT(&r, &rf2, 450, C, A);
    EXPECT(&r, &rf2, 600, A, B); /* wraps */
    EXPECT(&r, &rf3, 450, C, A, B);
    /* SimpleStrategy ignores DCs and racks; RF above the host count: every host once */
    EXPECT(&r, &rf5, 150, C, A, B);
    cql__ring_free(&r);
}

static void test_nts_racks(void **state)
{
    (void)state;
    /* dc1: A r1 @0, B r1 @100, C r1 @200, E r2 @250; dc2: D r1 @300, F r2 @350 */
    const int64_t ta[] = {0}, tb[] = {100}, tc[] = {200}, td[] = {300}, te[] = {250}, tf[] = {350};
    cql_ring_host_in h[] = {{"dc1", "r1", ta, 1}, {"dc1", "r1", tb, 1}, {"dc1", "r1", tc, 1},
                            {"dc2", "r1", td, 1}, {"dc1", "r2", te, 1}, {"dc2", "r2", tf, 1}};
    cql_ring r;
    assert_int_equal(cql__ring_build(&r, h, 6), 0);
    assert_int_equal(r.ndcs, 2);
    assert_int_equal(r.dc_racks[cql__ring_dc_id(&r, "dc1")], 2);
    assert_int_equal(r.dc_hosts[cql__ring_dc_id(&r, "dc1")], 4);

    const char *k[] = {"class", "dc1", "dc2"};
    const char *v[] = {"org.apache.cassandra.locator.NetworkTopologyStrategy", "2", "1"};
    cql_replication rep;
    assert_int_equal(cql__replication_parse(&rep, k, v, 3), 0);
    /* RF 2 with 2 racks: B and C share A's rack and are skipped for E */
    EXPECT(&r, &rep, 0, A, E, D);
    EXPECT(&r, &rep, 150, C, E, D);
    /* from D: dc2 filled by D; dc1 wraps around: A (r1), then E (r2) */
    EXPECT(&r, &rep, 260, D, A, E);

    /* RF 3 in dc1 with 2 racks: one rack repeat allowed, taken first come */
    const char *v3[] = {"NetworkTopologyStrategy", "3", "2"};
    assert_int_equal(cql__replication_parse(&rep, k, v3, 3), 0);
    EXPECT(&r, &rep, 0, A, B, E, D, F);
    EXPECT(&r, &rep, 210, E, D, F, A, B);

    /* RF above the DC's hosts: capped by the host count */
    const char *v9[] = {"NetworkTopologyStrategy", "9", "0"};
    assert_int_equal(cql__replication_parse(&rep, k, v9, 3), 0);
    EXPECT(&r, &rep, 0, A, B, C, E);

    /* a DC the ring does not know, and dc2 only */
    const char *k2[] = {"class", "dc2", "nowhere"};
    const char *v2[] = {"NetworkTopologyStrategy", "1", "3"};
    assert_int_equal(cql__replication_parse(&rep, k2, v2, 3), 0);
    EXPECT(&r, &rep, 0, D);
    EXPECT(&r, &rep, 340, F);
    cql__ring_free(&r);
}

/* Properties over a bigger random ring: distinct replicas, the right count per
 * DC, distinct racks whenever the DC has enough of them. */
static void test_nts_properties(void **state)
{
    (void)state;
    enum { NH = 12, NT = 16 };
    int64_t toks[NH][NT];
    cql_ring_host_in h[NH];
    const char *dcs[] = {"dc1", "dc2", "dc3"};
    const char *racks[] = {"ra", "rb", "rc", "rd"};
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < NH; i++) {
        for (int j = 0; j < NT; j++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            toks[i][j] = (int64_t)x;
        }
        /* dc1: 6 hosts on 3 racks; dc2: 4 hosts on 1 rack; dc3: 2 hosts on 2 racks */
        int dc = i < 6 ? 0 : (i < 10 ? 1 : 2);
        int rack = dc == 0 ? i % 3 : (dc == 1 ? 0 : i % 2);
        h[i] = (cql_ring_host_in){dcs[dc], racks[rack], toks[i], NT};
    }
    cql_ring r;
    assert_int_equal(cql__ring_build(&r, h, NH), 0);
    assert_int_equal(r.ntokens, NH * NT);
    const char *k[] = {"class", "dc1", "dc2", "dc3"};
    const char *v[] = {"NetworkTopologyStrategy", "3", "2", "3"};
    cql_replication rep;
    assert_int_equal(cql__replication_parse(&rep, k, v, 4), 0);
    for (size_t i = 0; i < r.ntokens; i++) {
        uint32_t out[NH];
        size_t n = cql__ring_replicas_at(&r, &rep, i, out, NH);
        assert_int_equal(n, 3 + 2 + 2); /* dc3 capped at its 2 hosts */
        int per_dc[3] = {0};
        int rack_seen[3][4] = {{0}};
        for (size_t a = 0; a < n; a++) {
            for (size_t b = a + 1; b < n; b++)
                assert_int_not_equal(out[a], out[b]);
            int dc = out[a] < 6 ? 0 : (out[a] < 10 ? 1 : 2);
            per_dc[dc]++;
            int rack = dc == 0 ? (int)out[a] % 3 : (dc == 1 ? 0 : (int)out[a] % 2);
            rack_seen[dc][rack]++;
        }
        assert_int_equal(per_dc[0], 3);
        assert_int_equal(per_dc[1], 2);
        assert_int_equal(per_dc[2], 2);
        for (int rk = 0; rk < 3; rk++)
            assert_int_equal(rack_seen[0][rk], 1); /* dc1: one per rack */
        /* the primary replica is the owner of the range */
        assert_int_equal(out[0], r.owners[i]);
    }
    cql__ring_free(&r);
}

static void test_replication_parse(void **state)
{
    (void)state;
    cql_replication rep;
    const char *k[] = {"class", "replication_factor"};
    const char *v[] = {"SimpleStrategy", "3/1"};
    assert_int_equal(cql__replication_parse(&rep, k, v, 2), 0);
    assert_int_equal(rep.cls, CQL_REPL_SIMPLE);
    assert_int_equal(rep.rf, 3);
    const char *bad[] = {"SimpleStrategy", "three"};
    assert_int_equal(cql__replication_parse(&rep, k, bad, 2), MS_ERR_INVALID);
    assert_int_equal(rep.cls, CQL_REPL_NONE);
    const char *local[] = {"org.apache.cassandra.locator.LocalStrategy"};
    assert_int_equal(cql__replication_parse(&rep, k, local, 1), 0);
    assert_int_equal(rep.cls, CQL_REPL_NONE);
    const char *every[] = {"org.apache.cassandra.locator.EverywhereStrategy"};
    assert_int_equal(cql__replication_parse(&rep, k, every, 1), 0);
    assert_int_equal(rep.cls, CQL_REPL_EVERYWHERE);
    assert_int_equal(cql__replication_parse(&rep, NULL, NULL, 0), 0);
    assert_int_equal(rep.cls, CQL_REPL_NONE);
    /* NTS options are sorted, so equal maps compare equal whatever their order */
    const char *k1[] = {"class", "dc2", "dc1"}, *v1[] = {"NetworkTopologyStrategy", "1", "3"};
    const char *k2[] = {"dc1", "class", "dc2"}, *v2[] = {"3", "NetworkTopologyStrategy", "1"};
    cql_replication a, b;
    assert_int_equal(cql__replication_parse(&a, k1, v1, 3), 0);
    assert_int_equal(cql__replication_parse(&b, k2, v2, 3), 0);
    assert_true(cql__replication_equal(&a, &b));
    assert_string_equal(a.dcs[0].dc, "dc1");
    b.dcs[1].rf = 2;
    assert_false(cql__replication_equal(&a, &b));
}

static void test_everywhere_and_empty(void **state)
{
    (void)state;
    cql_ring r;
    assert_int_equal(cql__ring_build(&r, NULL, 0), 0);
    cql_replication rep = simple(3);
    uint32_t out[4];
    assert_int_equal(cql__ring_replicas_at(&r, &rep, 0, out, 4), 0);
    cql_replica_map m;
    assert_int_equal(cql__replica_map_build(&m, &r, &rep), 0);
    size_t n;
    assert_null(cql__replica_map_get(&m, &r, 5, &n));
    assert_int_equal(n, 0);
    cql__replica_map_free(&m);
    cql__ring_free(&r);

    const int64_t ta[] = {10}, tb[] = {20};
    cql_ring_host_in h[] = {{"a", "x", ta, 1}, {"b", "y", tb, 1}, {"a", "x", NULL, 0}};
    assert_int_equal(cql__ring_build(&r, h, 3), 0);
    rep.cls = CQL_REPL_EVERYWHERE;
    EXPECT(&r, &rep, 15, B, A); /* a host without tokens is not a replica */
    cql__ring_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_index),        cmocka_unit_test(test_simple_strategy),
        cmocka_unit_test(test_nts_racks),         cmocka_unit_test(test_nts_properties),
        cmocka_unit_test(test_replication_parse), cmocka_unit_test(test_everywhere_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
