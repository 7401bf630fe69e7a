/* SPDX-License-Identifier: Apache-2.0 */
/*
 * buf.c - growable byte buffer, bump arena and the primitive [notation]
 * appenders of section 3 of the v4 spec.
 */
#include <stdlib.h>
#include <string.h>

#include "cql/proto.h"
#include "cql/wire.h"

bool cql_str_eq(cql_str s, const char *z)
{
    size_t n = strlen(z);
    return s.len == n && (n == 0 || memcmp(s.ptr, z, n) == 0);
}

void cql_buf_init(cql_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->err = 0;
}

void cql_buf_free(cql_buf *b)
{
    free(b->data);
    cql_buf_init(b);
}

void cql_buf_reset(cql_buf *b)
{
    b->len = 0;
    b->err = 0;
}

int cql_buf_reserve(cql_buf *b, size_t extra)
{
    if (b->err)
        return b->err;
    if (b->cap - b->len >= extra)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->err = MS_ERR_TOO_LARGE;
        return b->err;
    }
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL) {
        b->err = MS_ERR_NOMEM;
        return b->err;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void cql_buf_append(cql_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    uint8_t *d = cql__wr(b, n);
    if (d)
        memcpy(d, p, n);
}

/* ---- arena ---- */

struct cql_arena_chunk {
    cql_arena_chunk *next;
    size_t used;
    size_t cap;
    _Alignas(16) uint8_t data[];
};

void cql_arena_init(cql_arena *a)
{
    a->chunks = NULL;
    a->used = 0;
}

void cql_arena_free(cql_arena *a)
{
    cql_arena_chunk *c = a->chunks;
    while (c) {
        cql_arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    cql_arena_init(a);
}

void *cql_arena_alloc(cql_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    if (sizeof a->inline_block - a->used >= n) {
        void *p = a->inline_block + a->used;
        a->used += n;
        return p;
    }
    cql_arena_chunk *c = a->chunks;
    if (c && c->cap - c->used >= n) {
        void *p = c->data + c->used;
        c->used += n;
        return p;
    }
    size_t cap = 4096;
    while (cap < n) {
        if (cap > SIZE_MAX / 4)
            return NULL;
        cap *= 2;
    }
    c = malloc(sizeof *c + cap);
    if (c == NULL)
        return NULL;
    c->cap = cap;
    c->used = n;
    c->next = a->chunks;
    a->chunks = c;
    return c->data;
}

/* ---- section 3 notations ---- */

void cql__put_byte(cql_buf *b, uint8_t x)
{
    uint8_t *p = cql__wr(b, 1);
    if (p)
        *p = x;
}

void cql__put_short(cql_buf *b, uint16_t x)
{
    uint8_t *p = cql__wr(b, 2);
    if (p)
        cql__wbe16(p, x);
}

void cql__put_int(cql_buf *b, int32_t x)
{
    uint8_t *p = cql__wr(b, 4);
    if (p)
        cql__wbe32(p, (uint32_t)x);
}

void cql__put_long(cql_buf *b, int64_t x)
{
    uint8_t *p = cql__wr(b, 8);
    if (p)
        cql__wbe64(p, (uint64_t)x);
}

void cql__put_string(cql_buf *b, const char *s, size_t len)
{
    if (len > UINT16_MAX) {
        if (!b->err)
            b->err = MS_ERR_TOO_LARGE;
        return;
    }
    uint8_t *p = cql__wr(b, 2 + len);
    if (p) {
        cql__wbe16(p, (uint16_t)len);
        if (len)
            memcpy(p + 2, s, len);
    }
}

void cql__put_long_string(cql_buf *b, const char *s, size_t len)
{
    if (len > INT32_MAX) {
        if (!b->err)
            b->err = MS_ERR_TOO_LARGE;
        return;
    }
    uint8_t *p = cql__wr(b, 4 + len);
    if (p) {
        cql__wbe32(p, (uint32_t)len);
        if (len)
            memcpy(p + 4, s, len);
    }
}

void cql__put_bytes(cql_buf *b, const void *s, int32_t len)
{
    if (len < 0) {
        cql__put_int(b, -1);
        return;
    }
    uint8_t *p = cql__wr(b, 4 + (size_t)len);
    if (p) {
        cql__wbe32(p, (uint32_t)len);
        if (len)
            memcpy(p + 4, s, (size_t)len);
    }
}

void cql__put_short_bytes(cql_buf *b, const void *s, size_t len)
{
    cql__put_string(b, (const char *)s, len);
}

void cql__put_string_map(cql_buf *b, const char *const *kv, size_t npairs)
{
    if (npairs > UINT16_MAX) {
        if (!b->err)
            b->err = MS_ERR_TOO_LARGE;
        return;
    }
    cql__put_short(b, (uint16_t)npairs);
    for (size_t i = 0; i < 2 * npairs; i++)
        cql__put_string(b, kv[i], strlen(kv[i]));
}
