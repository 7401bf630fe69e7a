/* SPDX-License-Identifier: Apache-2.0 */
/* Prepared-statement LRU: lookups, eviction order, replacement, ownership. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cql/lru.h"
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int freed[64];

static void free_val(void *v, void *ctx)
{
    (void)ctx;
    freed[(intptr_t)v]++;
}

static void *V(int i)
{
    return (void *)(intptr_t)i;
}

static void *get(cql_lru *l, const char *ks, const char *q)
{
    return cql__lru_get(l, ks, q, strlen(q));
}

static int put(cql_lru *l, const char *ks, const char *q, int v)
{
    return cql__lru_put(l, ks, q, strlen(q), V(v));
}

static void test_basic(void **state)
{
    (void)state;
    memset(freed, 0, sizeof(freed));
    cql_lru l;
    assert_int_equal(cql__lru_init(&l, 0, NULL, NULL), MS_ERR_INVALID);
    assert_int_equal(cql__lru_init(&l, 3, free_val, NULL), 0);
    assert_null(get(&l, "ks", "SELECT 1"));
    assert_int_equal(put(&l, "ks", "q1", 1), 0);
    assert_int_equal(put(&l, "ks", "q2", 2), 0);
    assert_int_equal(put(&l, "other", "q1", 3), 0); /* same query, other keyspace: distinct */
    assert_int_equal(l.count, 3);
    assert_ptr_equal(get(&l, "ks", "q1"), V(1));
    assert_ptr_equal(get(&l, "other", "q1"), V(3));
    assert_null(get(&l, NULL, "q1"));
    /* replacing releases the old value */
    assert_int_equal(put(&l, "ks", "q2", 4), 0);
    assert_int_equal(freed[2], 1);
    assert_ptr_equal(get(&l, "ks", "q2"), V(4));
    assert_int_equal(l.count, 3);
    /* take hands the value back without releasing it */
    assert_ptr_equal(cql__lru_take(&l, "ks", "q2", 2), V(4));
    assert_int_equal(freed[4], 0);
    assert_null(get(&l, "ks", "q2"));
    assert_int_equal(l.count, 2);
    cql__lru_destroy(&l);
    assert_int_equal(freed[1], 1);
    assert_int_equal(freed[3], 1);
}

static void test_eviction_order(void **state)
{
    (void)state;
    memset(freed, 0, sizeof(freed));
    cql_lru l;
    assert_int_equal(cql__lru_init(&l, 3, free_val, NULL), 0);
    put(&l, "", "a", 1);
    put(&l, "", "b", 2);
    put(&l, "", "c", 3);
    /* touch a: b is now the least recently used */
    assert_ptr_equal(get(&l, "", "a"), V(1));
    put(&l, "", "d", 4);
    assert_int_equal(freed[2], 1);
    assert_null(get(&l, "", "b"));
    assert_int_equal(l.evictions, 1);
    /* c is next */
    put(&l, "", "e", 5);
    assert_int_equal(freed[3], 1);
    assert_non_null(get(&l, "", "a"));
    assert_non_null(get(&l, "", "d"));
    assert_non_null(get(&l, "", "e"));
    assert_int_equal(l.count, 3);
    cql__lru_clear(&l);
    assert_int_equal(l.count, 0);
    assert_int_equal(freed[1] + freed[4] + freed[5], 3);
    put(&l, "", "x", 6);
    assert_ptr_equal(get(&l, "", "x"), V(6));
    cql__lru_destroy(&l);
    assert_int_equal(freed[6], 1);
}

static void test_many(void **state)
{
    (void)state;
    /* a default-sized cache under churn: always exactly capacity entries, the newest present */
    cql_lru l;
    assert_int_equal(cql__lru_init(&l, 1000, NULL, NULL), 0);
    char q[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(q, sizeof(q), "SELECT * FROM t WHERE k = %d", i);
        assert_int_equal(cql__lru_put(&l, "ks", q, strlen(q), V(i % 64)), 0);
    }
    assert_int_equal(l.count, 1000);
    assert_int_equal(l.evictions, 4000);
    for (int i = 0; i < 5000; i++) {
        snprintf(q, sizeof(q), "SELECT * FROM t WHERE k = %d", i);
        void *v = cql__lru_get(&l, "ks", q, strlen(q));
        if (i < 4000)
            assert_null(v);
        else
            assert_ptr_equal(v, V(i % 64));
    }
    int n = 0;
    cql_lru_link *it = l.head.next;
    while (it != &l.head) {
        n++;
        it = it->next;
    }
    assert_int_equal(n, 1000);
    cql__lru_destroy(&l);
}

static void test_capacity_one(void **state)
{
    (void)state;
    memset(freed, 0, sizeof(freed));
    cql_lru l;
    assert_int_equal(cql__lru_init(&l, 1, free_val, NULL), 0);
    put(&l, "k", "a", 1);
    put(&l, "k", "b", 2);
    assert_int_equal(freed[1], 1);
    assert_null(get(&l, "k", "a"));
    assert_ptr_equal(get(&l, "k", "b"), V(2));
    cql__lru_destroy(&l);
    assert_int_equal(freed[2], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_eviction_order),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_capacity_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
