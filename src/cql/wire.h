/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wire.h - bounds-checked big-endian readers and writers shared by the CQL
 * codec files (internal to src/cql). Every reader checks the remaining length
 * before touching a byte and returns MS_ERR_INVALID when it is short; on
 * error the reader position is unspecified and the caller must give up.
 */
#ifndef MS_CQL_WIRE_H
#define MS_CQL_WIRE_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "core/error.h"
#include "msgstore/cql_value.h"

typedef struct cql_rd {
    const uint8_t *p;
    const uint8_t *end;
} cql_rd;

/* A reader over the n bytes at p. */
static inline cql_rd cql__rd(const uint8_t *p, size_t n)
{
    /* (NULL, 0) is a valid empty input; NULL + 0 is not valid C. */
    cql_rd r = {p, p ? p + n : p};
    return r;
}

/* Bytes not read yet. */
static inline size_t cql__rd_left(const cql_rd *r)
{
    return (size_t)(r->end - r->p);
}

/* The big-endian 16-bit value at p. */
static inline uint16_t cql__be16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

/* The big-endian 32-bit value at p. */
static inline uint32_t cql__be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The big-endian 64-bit value at p. */
static inline uint64_t cql__be64(const uint8_t *p)
{
    return (uint64_t)cql__be32(p) << 32 | cql__be32(p + 4);
}

/* Stores x big-endian at p (2 bytes). */
static inline void cql__wbe16(uint8_t *p, uint16_t x)
{
    p[0] = (uint8_t)(x >> 8);
    p[1] = (uint8_t)x;
}

/* Stores x big-endian at p (4 bytes). */
static inline void cql__wbe32(uint8_t *p, uint32_t x)
{
    p[0] = (uint8_t)(x >> 24);
    p[1] = (uint8_t)(x >> 16);
    p[2] = (uint8_t)(x >> 8);
    p[3] = (uint8_t)x;
}

/* Stores x big-endian at p (8 bytes). */
static inline void cql__wbe64(uint8_t *p, uint64_t x)
{
    cql__wbe32(p, (uint32_t)(x >> 32));
    cql__wbe32(p + 4, (uint32_t)x);
}

/* Skips n bytes: 0, or MS_ERR_INVALID (fewer left; nothing read). */
static inline int cql__rd_skip(cql_rd *r, size_t n)
{
    if (cql__rd_left(r) < n)
        return MS_ERR_INVALID;
    r->p += n;
    return 0;
}

/* [byte]: 0, or MS_ERR_INVALID when truncated. */
static inline int cql__rd_byte(cql_rd *r, uint8_t *out)
{
    if (cql__rd_left(r) < 1)
        return MS_ERR_INVALID;
    *out = *r->p++;
    return 0;
}

/* [short]: 0, or MS_ERR_INVALID when truncated. */
static inline int cql__rd_short(cql_rd *r, uint16_t *out)
{
    if (cql__rd_left(r) < 2)
        return MS_ERR_INVALID;
    *out = cql__be16(r->p);
    r->p += 2;
    return 0;
}

/* [int]: 0, or MS_ERR_INVALID when truncated. */
static inline int cql__rd_int(cql_rd *r, int32_t *out)
{
    if (cql__rd_left(r) < 4)
        return MS_ERR_INVALID;
    *out = (int32_t)cql__be32(r->p);
    r->p += 4;
    return 0;
}

/* [long]: 0, or MS_ERR_INVALID when truncated. */
static inline int cql__rd_long(cql_rd *r, int64_t *out)
{
    if (cql__rd_left(r) < 8)
        return MS_ERR_INVALID;
    *out = (int64_t)cql__be64(r->p);
    r->p += 8;
    return 0;
}

/* [string] */
static inline int cql__rd_string(cql_rd *r, cql_str *out)
{
    uint16_t n;
    if (cql__rd_short(r, &n) < 0 || cql__rd_left(r) < n)
        return MS_ERR_INVALID;
    out->ptr = (const char *)r->p;
    out->len = n;
    r->p += n;
    return 0;
}

/* [long string] */
static inline int cql__rd_long_string(cql_rd *r, cql_str *out)
{
    int32_t n;
    if (cql__rd_int(r, &n) < 0 || n < 0 || cql__rd_left(r) < (size_t)n)
        return MS_ERR_INVALID;
    out->ptr = (const char *)r->p;
    out->len = (size_t)n;
    r->p += n;
    return 0;
}

/* [bytes] / [value]: negative lengths are null (-1) or unset (-2); below -2 is invalid. */
static inline int cql__rd_bytes(cql_rd *r, cql_bytes *out)
{
    int32_t n;
    if (cql__rd_int(r, &n) < 0)
        return MS_ERR_INVALID;
    if (n < 0) {
        if (n < -2)
            return MS_ERR_INVALID;
        out->ptr = NULL;
        out->len = n;
        return 0;
    }
    if (cql__rd_left(r) < (size_t)n)
        return MS_ERR_INVALID;
    out->ptr = r->p;
    out->len = n;
    r->p += n;
    return 0;
}

/* [short bytes] */
static inline int cql__rd_short_bytes(cql_rd *r, cql_bytes *out)
{
    uint16_t n;
    if (cql__rd_short(r, &n) < 0 || cql__rd_left(r) < n)
        return MS_ERR_INVALID;
    out->ptr = r->p;
    out->len = n;
    r->p += n;
    return 0;
}

/* [string list]: validate, return count and start. */
static inline int cql__rd_string_list(cql_rd *r, uint16_t *count, const uint8_t **start)
{
    uint16_t n;
    if (cql__rd_short(r, &n) < 0)
        return MS_ERR_INVALID;
    *start = r->p;
    for (uint16_t i = 0; i < n; i++) {
        cql_str s;
        if (cql__rd_string(r, &s) < 0)
            return MS_ERR_INVALID;
    }
    *count = n;
    return 0;
}

/* The i-th [string] of an already validated run of [string]s at p. */
static inline int cql__nth_string(const uint8_t *p, uint16_t count, uint16_t i, cql_str *out)
{
    if (p == NULL || i >= count)
        return MS_ERR_INVALID;
    for (;;) {
        uint16_t n = cql__be16(p);
        if (i == 0) {
            out->ptr = (const char *)p + 2;
            out->len = n;
            return 0;
        }
        p += 2 + (size_t)n;
        i--;
    }
}

/* Writers into a cql_buf with the sticky error. Reserve, then store. */
static inline uint8_t *cql__wr(cql_buf *b, size_t n)
{
    if (b->err || (b->cap - b->len < n && cql_buf_reserve(b, n) < 0))
        return NULL;
    uint8_t *p = b->data + b->len;
    b->len += n;
    return p;
}

/* Cross-file internals of the codec. */

/* Parse one [option] type (recursively, depth-limited) from r into arena. */
int cql__type_parse(cql_rd *r, cql_arena *arena, int depth, const cql_type **out);

/* <change_type><target><options> of SCHEMA_CHANGE (result and event). */
int cql__schema_change_parse(cql_rd *r, cql_schema_change *out);

#endif
