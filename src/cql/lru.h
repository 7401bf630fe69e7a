/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lru.h - a bounded least-recently-used map from (namespace, key) strings to
 * values, used for the prepared-statement cache (namespace = keyspace, key =
 * query text).
 *
 * Not thread-safe: one cache belongs to one session, on one loop thread.
 * The cache owns its entries; values are handed to free_fn when they are
 * evicted, replaced, removed or when the cache is destroyed.
 */
#ifndef MS_CQL_LRU_H
#define MS_CQL_LRU_H

#include <stddef.h>
#include <stdint.h>

typedef void (*cql_lru_free_fn)(void *value, void *ctx);

/* Recency list links; the first member of a node, so a link is its node. */
typedef struct cql_lru_link {
    struct cql_lru_link *prev, *next; /* most recent first */
} cql_lru_link;

typedef struct cql_lru_node {
    cql_lru_link link;
    struct cql_lru_node *hnext; /* hash chain */
    uint64_t hash;
    void *value;
    size_t nslen, keylen;
    char data[]; /* ns, '\0', key, '\0' */
} cql_lru_node;

typedef struct cql_lru {
    size_t capacity;
    size_t count;
    size_t nbuckets; /* power of two */
    cql_lru_node **buckets;
    cql_lru_link head; /* sentinel of the recency list */
    cql_lru_free_fn free_fn;
    void *free_ctx;
    uint64_t hits, misses, evictions;
} cql_lru;

/*
 * Initialises an empty cache holding at most capacity (>= 1) entries.
 * free_fn (may be NULL) releases values. Returns 0, MS_ERR_INVALID for a
 * zero capacity or MS_ERR_NOMEM.
 */
int cql__lru_init(cql_lru *l, size_t capacity, cql_lru_free_fn free_fn, void *free_ctx);

/* Frees every entry (values through free_fn) and the table. l may be re-initialised. */
void cql__lru_destroy(cql_lru *l);

/* Hash of (ns, key) as used by the cache; exposed so callers can precompute it. */
uint64_t cql__lru_hash(const char *ns, size_t nslen, const char *key, size_t keylen);

/*
 * Returns the value stored under (ns, key) and marks it most recently used,
 * or NULL. ns may be NULL (treated as ""). Counts a hit or a miss.
 */
void *cql__lru_get(cql_lru *l, const char *ns, const char *key, size_t keylen);

/*
 * Stores value under (ns, key) as the most recently used entry. An existing
 * value under the same key is released (free_fn) and replaced. When the cache
 * is full the least recently used entry is evicted (free_fn). On failure
 * (MS_ERR_NOMEM) nothing changes and the caller keeps value.
 */
int cql__lru_put(cql_lru *l, const char *ns, const char *key, size_t keylen, void *value);

/*
 * Removes (ns, key) and returns its value WITHOUT calling free_fn (the caller
 * takes it over), or NULL when absent.
 */
void *cql__lru_take(cql_lru *l, const char *ns, const char *key, size_t keylen);

/* Calls fn for every entry, most recent first. fn must not modify the cache. */
void cql__lru_foreach(const cql_lru *l, void (*fn)(void *value, void *ctx), void *ctx);

/* Releases every entry (free_fn); the cache stays usable. */
void cql__lru_clear(cql_lru *l);

#endif
