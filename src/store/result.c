/*
 * result.c - result objects: a struct and its strings in one arena, shared by
 * reference count (coalesced readers receive the same result).
 */
#include "store_internal.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

typedef struct chunk {
    struct chunk *next;
    size_t used, size;
    alignas(max_align_t) unsigned char data[];
} chunk;

typedef struct res_block {
    _Atomic int refs;
    chunk *chunks;
    alignas(max_align_t) unsigned char body[]; /* the result struct */
} res_block;

#define CHUNK_MIN 4096

void *store__res_new(size_t size)
{
    res_block *b = calloc(1, sizeof *b + size);
    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    store_result_hdr *h = (store_result_hdr *)b->body;
    h->_priv = b;
    return h;
}

void *store__res_alloc(store_result_hdr *res, size_t n)
{
    res_block *b = res->_priv;
    n = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    if (n == 0)
        n = alignof(max_align_t);
    chunk *c = b->chunks;
    if (!c || c->size - c->used < n) {
        size_t sz = n > CHUNK_MIN ? n : CHUNK_MIN;
        c = malloc(sizeof *c + sz);
        if (!c)
            return NULL;
        c->size = sz;
        c->used = 0;
        c->next = b->chunks;
        b->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

char *store__res_strndup(store_result_hdr *res, const char *s, size_t len)
{
    if (!s)
        return NULL;
    char *d = store__res_alloc(res, len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

void store__res_ref(store_result_hdr *res)
{
    res_block *b = res->_priv;
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

void store_free(const void *result)
{
    if (!result)
        return;
    const store_result_hdr *h = result;
    res_block *b = h->_priv;
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    chunk *c = b->chunks;
    while (c) {
        chunk *n = c->next;
        free(c);
        c = n;
    }
    free(b);
}
