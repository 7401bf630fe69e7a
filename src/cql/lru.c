/* SPDX-License-Identifier: Apache-2.0 */
/* lru.c - bounded LRU map for the prepared-statement cache (see lru.h). */
#include "cql/lru.h"

#include "core/error.h"

#include <stdlib.h>
#include <string.h>

uint64_t cql__lru_hash(const char *ns, size_t nslen, const char *key, size_t keylen)
{
    /* FNV-1a over ns, a separator and key; good enough for cache keys and
     * cheap for the short strings we see. */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < nslen; i++) {
        h ^= (unsigned char)ns[i];
        h *= 0x100000001b3ULL;
    }
    h ^= 0xff;
    h *= 0x100000001b3ULL;
    for (size_t i = 0; i < keylen; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ULL;
    }
    return h ^ (h >> 29);
}

int cql__lru_init(cql_lru *l, size_t capacity, cql_lru_free_fn free_fn, void *free_ctx)
{
    memset(l, 0, sizeof(*l));
    if (capacity == 0)
        return MS_ERR_INVALID;
    size_t nb = 16;
    while (nb < capacity && nb < ((size_t)1 << 30))
        nb <<= 1;
    l->buckets = calloc(nb, sizeof(*l->buckets));
    if (!l->buckets)
        return MS_ERR_NOMEM;
    l->nbuckets = nb;
    l->capacity = capacity;
    l->free_fn = free_fn;
    l->free_ctx = free_ctx;
    l->head.prev = l->head.next = &l->head;
    return 0;
}

static cql_lru_node *node_of(cql_lru_link *k)
{
    return (cql_lru_node *)(void *)k;
}

static void list_unlink(cql_lru_node *n)
{
    n->link.prev->next = n->link.next;
    n->link.next->prev = n->link.prev;
}

static void list_push_front(cql_lru *l, cql_lru_node *n)
{
    n->link.next = l->head.next;
    n->link.prev = &l->head;
    l->head.next->prev = &n->link;
    l->head.next = &n->link;
}

static cql_lru_node **find_slot(cql_lru *l, uint64_t h, const char *ns, size_t nslen,
                                const char *key, size_t keylen)
{
    cql_lru_node **pp = &l->buckets[h & (l->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->hnext) {
        cql_lru_node *n = *pp;
        if (n->hash == h && n->nslen == nslen && n->keylen == keylen &&
            memcmp(n->data, ns, nslen) == 0 && memcmp(n->data + nslen + 1, key, keylen) == 0)
            return pp;
    }
    return pp;
}

/* Unlinks *pp from its chain and the list; returns the node. */
static cql_lru_node *detach(cql_lru *l, cql_lru_node **pp)
{
    cql_lru_node *n = *pp;
    *pp = n->hnext;
    list_unlink(n);
    l->count--;
    return n;
}

static void release(cql_lru *l, cql_lru_node *n)
{
    if (l->free_fn)
        l->free_fn(n->value, l->free_ctx);
    free(n);
}

void *cql__lru_get(cql_lru *l, const char *ns, const char *key, size_t keylen)
{
    if (!ns)
        ns = "";
    size_t nslen = strlen(ns);
    uint64_t h = cql__lru_hash(ns, nslen, key, keylen);
    cql_lru_node *n = *find_slot(l, h, ns, nslen, key, keylen);
    if (!n) {
        l->misses++;
        return NULL;
    }
    l->hits++;
    if (l->head.next != &n->link) {
        list_unlink(n);
        list_push_front(l, n);
    }
    return n->value;
}

static void evict_oldest(cql_lru *l)
{
    cql_lru_node *old = node_of(l->head.prev);
    cql_lru_node **pp = &l->buckets[old->hash & (l->nbuckets - 1)];
    while (*pp != old)
        pp = &(*pp)->hnext;
    detach(l, pp);
    l->evictions++;
    release(l, old);
}

int cql__lru_put(cql_lru *l, const char *ns, const char *key, size_t keylen, void *value)
{
    if (!ns)
        ns = "";
    size_t nslen = strlen(ns);
    uint64_t h = cql__lru_hash(ns, nslen, key, keylen);
    cql_lru_node **pp = find_slot(l, h, ns, nslen, key, keylen);
    if (*pp) {
        cql_lru_node *n = *pp;
        void *old = n->value;
        n->value = value;
        if (l->head.next != &n->link) {
            list_unlink(n);
            list_push_front(l, n);
        }
        if (old != value && l->free_fn)
            l->free_fn(old, l->free_ctx);
        return 0;
    }
    cql_lru_node *n = malloc(sizeof(*n) + nslen + keylen + 2);
    if (!n)
        return MS_ERR_NOMEM;
    n->hash = h;
    n->value = value;
    n->nslen = nslen;
    n->keylen = keylen;
    memcpy(n->data, ns, nslen);
    n->data[nslen] = '\0';
    memcpy(n->data + nslen + 1, key, keylen);
    n->data[nslen + 1 + keylen] = '\0';
    if (l->count >= l->capacity) {
        evict_oldest(l);
        pp = find_slot(l, h, ns, nslen, key, keylen); /* the chain may have changed */
    }
    n->hnext = NULL;
    *pp = n;
    list_push_front(l, n);
    l->count++;
    return 0;
}

void *cql__lru_take(cql_lru *l, const char *ns, const char *key, size_t keylen)
{
    if (!ns)
        ns = "";
    size_t nslen = strlen(ns);
    uint64_t h = cql__lru_hash(ns, nslen, key, keylen);
    cql_lru_node **pp = find_slot(l, h, ns, nslen, key, keylen);
    if (!*pp)
        return NULL;
    cql_lru_node *n = detach(l, pp);
    void *v = n->value;
    free(n);
    return v;
}

void cql__lru_foreach(const cql_lru *l, void (*fn)(void *value, void *ctx), void *ctx)
{
    for (const cql_lru_link *k = l->head.next; k != &l->head; k = k->next)
        fn(((const cql_lru_node *)(const void *)k)->value, ctx);
}

void cql__lru_clear(cql_lru *l)
{
    while (l->count > 0) {
        cql_lru_node *n = node_of(l->head.next);
        cql_lru_node **pp = &l->buckets[n->hash & (l->nbuckets - 1)];
        while (*pp != n)
            pp = &(*pp)->hnext;
        detach(l, pp);
        release(l, n);
    }
}

void cql__lru_destroy(cql_lru *l)
{
    if (!l->buckets)
        return;
    cql__lru_clear(l);
    free(l->buckets);
    memset(l, 0, sizeof(*l));
}
