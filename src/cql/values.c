/* SPDX-License-Identifier: Apache-2.0 */
/*
 * values.c - the bound values builder (cql_values) and the scalar codecs on
 * raw value bytes (section 6 of the v4 spec): integers, floats, uuid, inet,
 * varint/decimal (with arbitrary-precision decimal strings), dates,
 * collection and tuple iteration.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cql/proto.h"
#include "cql/wire.h"
#include "msgstore/id.h"

enum { KIND_COLL = 0, KIND_MAP = 1, KIND_TUPLE = 2 };

void cql_values_init(cql_values *v)
{
    memset(v, 0, sizeof *v);
    cql_buf_init(&v->buf);
}

void cql_values_free(cql_values *v)
{
    cql_buf_free(&v->buf);
    cql_values_init(v);
}

void cql_values_reset(cql_values *v)
{
    cql_buf_reset(&v->buf);
    v->count = 0;
    v->err = 0;
    v->depth = 0;
}

int cql_values_error(const cql_values *v)
{
    if (v->err)
        return v->err;
    if (v->buf.err)
        return v->buf.err;
    if (v->depth)
        return MS_ERR_INVALID;
    return 0;
}

static void set_err(cql_values *v, int err)
{
    if (!v->err)
        v->err = err;
}

/* Count one more item at the current level. */
static void count_item(cql_values *v)
{
    if (v->depth == 0) {
        if (v->count == UINT16_MAX) {
            set_err(v, MS_ERR_TOO_LARGE);
            return;
        }
        v->count++;
    } else {
        v->stack[v->depth - 1].items++;
    }
}

/* Append the [int] length n and reserve n bytes of value; NULL on error. */
static uint8_t *val(cql_values *v, size_t n)
{
    if (v->err)
        return NULL;
    uint8_t *p = cql__wr(&v->buf, 4 + n);
    if (p == NULL)
        return NULL;
    cql__wbe32(p, (uint32_t)n);
    count_item(v);
    return p + 4;
}

void cql_values_add_null(cql_values *v)
{
    if (v->err)
        return;
    uint8_t *p = cql__wr(&v->buf, 4);
    if (p) {
        cql__wbe32(p, (uint32_t)-1);
        count_item(v);
    }
}

void cql_values_add_unset(cql_values *v)
{
    if (v->depth) {
        set_err(v, MS_ERR_INVALID); /* unset exists only for top-level bind values */
        return;
    }
    if (v->err)
        return;
    uint8_t *p = cql__wr(&v->buf, 4);
    if (p) {
        cql__wbe32(p, (uint32_t)-2);
        count_item(v);
    }
}

void cql_values_add_bool(cql_values *v, bool x)
{
    uint8_t *p = val(v, 1);
    if (p)
        p[0] = x ? 1 : 0;
}

void cql_values_add_tinyint(cql_values *v, int8_t x)
{
    uint8_t *p = val(v, 1);
    if (p)
        p[0] = (uint8_t)x;
}

void cql_values_add_smallint(cql_values *v, int16_t x)
{
    uint8_t *p = val(v, 2);
    if (p)
        cql__wbe16(p, (uint16_t)x);
}

void cql_values_add_int(cql_values *v, int32_t x)
{
    uint8_t *p = val(v, 4);
    if (p)
        cql__wbe32(p, (uint32_t)x);
}

void cql_values_add_bigint(cql_values *v, int64_t x)
{
    uint8_t *p = val(v, 8);
    if (p)
        cql__wbe64(p, (uint64_t)x);
}

void cql_values_add_float(cql_values *v, float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    uint8_t *p = val(v, 4);
    if (p)
        cql__wbe32(p, u);
}

void cql_values_add_double(cql_values *v, double x)
{
    uint64_t u;
    memcpy(&u, &x, 8);
    uint8_t *p = val(v, 8);
    if (p)
        cql__wbe64(p, u);
}

void cql_values_add_timestamp(cql_values *v, int64_t ms)
{
    cql_values_add_bigint(v, ms);
}

void cql_values_add_date(cql_values *v, uint32_t cql_days)
{
    uint8_t *p = val(v, 4);
    if (p)
        cql__wbe32(p, cql_days);
}

void cql_values_add_time(cql_values *v, int64_t ns)
{
    if (ns < 0 || ns > 86399999999999LL) {
        set_err(v, MS_ERR_INVALID);
        return;
    }
    cql_values_add_bigint(v, ns);
}

void cql_values_add_uuid(cql_values *v, const uint8_t uuid[16])
{
    uint8_t *p = val(v, 16);
    if (p)
        memcpy(p, uuid, 16);
}

void cql_values_add_blob(cql_values *v, const void *s, size_t len)
{
    if (len > INT32_MAX) {
        set_err(v, MS_ERR_TOO_LARGE);
        return;
    }
    uint8_t *p = val(v, len);
    if (p && len)
        memcpy(p, s, len);
}

void cql_values_add_text(cql_values *v, const char *s, size_t len)
{
    cql_values_add_blob(v, s, len);
}

void cql_values_add_inet(cql_values *v, const uint8_t *addr, size_t len)
{
    if (len != 4 && len != 16) {
        set_err(v, MS_ERR_INVALID);
        return;
    }
    cql_values_add_blob(v, addr, len);
}

size_t cql_varint_from_i64(int64_t x, uint8_t out[8])
{
    uint8_t tmp[8];
    cql__wbe64(tmp, (uint64_t)x);
    size_t i = 0;
    /* Drop leading bytes that only repeat the sign of the next byte. */
    while (i < 7 &&
           ((tmp[i] == 0x00 && !(tmp[i + 1] & 0x80)) || (tmp[i] == 0xFF && (tmp[i + 1] & 0x80))))
        i++;
    memcpy(out, tmp + i, 8 - i);
    return 8 - i;
}

void cql_values_add_varint_i64(cql_values *v, int64_t x)
{
    uint8_t b[8];
    size_t n = cql_varint_from_i64(x, b);
    cql_values_add_blob(v, b, n);
}

void cql_values_add_varint_raw(cql_values *v, const uint8_t *p, size_t len)
{
    if (len == 0) {
        set_err(v, MS_ERR_INVALID);
        return;
    }
    cql_values_add_blob(v, p, len);
}

void cql_values_add_decimal_raw(cql_values *v, int32_t scale, const uint8_t *s, size_t len)
{
    if (len == 0 || len > INT32_MAX - 4) {
        set_err(v, MS_ERR_INVALID);
        return;
    }
    uint8_t *p = val(v, 4 + len);
    if (p) {
        cql__wbe32(p, (uint32_t)scale);
        memcpy(p + 4, s, len);
    }
}

void cql_values_add_decimal_i64(cql_values *v, int32_t scale, int64_t unscaled)
{
    uint8_t b[8];
    size_t n = cql_varint_from_i64(unscaled, b);
    cql_values_add_decimal_raw(v, scale, b, n);
}

void cql_values_add_raw(cql_values *v, cql_bytes raw)
{
    if (raw.len == -2) {
        cql_values_add_unset(v);
    } else if (raw.len < 0) {
        if (raw.len != -1)
            set_err(v, MS_ERR_INVALID);
        else
            cql_values_add_null(v);
    } else {
        cql_values_add_blob(v, raw.ptr, (size_t)raw.len);
    }
}

static void begin(cql_values *v, uint8_t kind)
{
    if (v->err)
        return;
    if (v->depth >= CQL_VALUES_MAX_DEPTH) {
        set_err(v, MS_ERR_TOO_LARGE);
        return;
    }
    if (v->buf.len > INT32_MAX) {
        set_err(v, MS_ERR_TOO_LARGE);
        return;
    }
    size_t start = v->buf.len;
    uint8_t *p = cql__wr(&v->buf, kind == KIND_TUPLE ? 4 : 8);
    if (p == NULL)
        return;
    memset(p, 0, kind == KIND_TUPLE ? 4 : 8);
    v->stack[v->depth].start = (uint32_t)start;
    v->stack[v->depth].items = 0;
    v->stack[v->depth].kind = kind;
    v->depth++;
}

void cql_values_begin_list(cql_values *v)
{
    begin(v, KIND_COLL);
}

void cql_values_begin_map(cql_values *v)
{
    begin(v, KIND_MAP);
}

void cql_values_begin_tuple(cql_values *v)
{
    begin(v, KIND_TUPLE);
}

void cql_values_end(cql_values *v)
{
    if (v->err || v->buf.err)
        return;
    if (v->depth == 0) {
        set_err(v, MS_ERR_INVALID);
        return;
    }
    v->depth--;
    size_t start = v->stack[v->depth].start;
    size_t body = v->buf.len - start - 4;
    if (body > INT32_MAX) {
        set_err(v, MS_ERR_TOO_LARGE);
        return;
    }
    uint8_t *p = v->buf.data + start;
    cql__wbe32(p, (uint32_t)body);
    uint32_t items = v->stack[v->depth].items;
    if (v->stack[v->depth].kind == KIND_MAP) {
        if (items % 2) {
            set_err(v, MS_ERR_INVALID); /* a key without its value */
            return;
        }
        items /= 2;
    }
    if (v->stack[v->depth].kind != KIND_TUPLE)
        cql__wbe32(p + 4, items);
    count_item(v);
}

/* ---- scalar codecs ---- */

#define CHECK_LEN(b, n)                                                                            \
    do {                                                                                           \
        if ((b).len < 0)                                                                           \
            return MS_ERR_NOT_FOUND;                                                               \
        if ((b).len != (n))                                                                        \
            return MS_ERR_INVALID;                                                                 \
    } while (0)

int cql_decode_bool(cql_bytes b, bool *out)
{
    CHECK_LEN(b, 1);
    *out = b.ptr[0] != 0;
    return 0;
}

int cql_decode_tinyint(cql_bytes b, int8_t *out)
{
    CHECK_LEN(b, 1);
    *out = (int8_t)b.ptr[0];
    return 0;
}

int cql_decode_smallint(cql_bytes b, int16_t *out)
{
    CHECK_LEN(b, 2);
    *out = (int16_t)cql__be16(b.ptr);
    return 0;
}

int cql_decode_int(cql_bytes b, int32_t *out)
{
    CHECK_LEN(b, 4);
    *out = (int32_t)cql__be32(b.ptr);
    return 0;
}

int cql_decode_bigint(cql_bytes b, int64_t *out)
{
    CHECK_LEN(b, 8);
    *out = (int64_t)cql__be64(b.ptr);
    return 0;
}

int cql_decode_float(cql_bytes b, float *out)
{
    CHECK_LEN(b, 4);
    uint32_t u = cql__be32(b.ptr);
    memcpy(out, &u, 4);
    return 0;
}

int cql_decode_double(cql_bytes b, double *out)
{
    CHECK_LEN(b, 8);
    uint64_t u = cql__be64(b.ptr);
    memcpy(out, &u, 8);
    return 0;
}

int cql_decode_uuid(cql_bytes b, uint8_t out[16])
{
    CHECK_LEN(b, 16);
    memcpy(out, b.ptr, 16);
    return 0;
}

int cql_decode_inet(cql_bytes b, uint8_t out[16], size_t *out_len)
{
    if (b.len < 0)
        return MS_ERR_NOT_FOUND;
    if (b.len != 4 && b.len != 16)
        return MS_ERR_INVALID;
    memcpy(out, b.ptr, (size_t)b.len);
    *out_len = (size_t)b.len;
    return 0;
}

int cql_varint_to_i64(cql_bytes b, int64_t *out)
{
    if (b.len < 0)
        return MS_ERR_NOT_FOUND;
    if (b.len == 0)
        return MS_ERR_INVALID;
    const uint8_t *p = b.ptr;
    size_t n = (size_t)b.len;
    uint8_t sign = (p[0] & 0x80) ? 0xFF : 0x00;
    /* Redundant sign bytes are allowed (non-minimal encodings). */
    while (n > 8 && p[0] == sign && ((p[1] & 0x80) ? 0xFF : 0x00) == sign) {
        p++;
        n--;
    }
    if (n > 8)
        return MS_ERR_TOO_LARGE;
    uint64_t u = sign ? UINT64_MAX : 0;
    for (size_t i = 0; i < n; i++)
        u = (u << 8) | p[i];
    *out = (int64_t)u;
    return 0;
}

/*
 * Decimal string of a two's complement big-endian integer of any length:
 * negate into a magnitude, then repeatedly divide by 10^9 (base 2^8 long
 * division), emitting 9 digits per round.
 */
static int mag_to_string(const uint8_t *src, size_t n, bool neg, char *out, size_t cap)
{
    uint8_t small[64];
    uint8_t *mag = n <= sizeof small ? small : malloc(n);
    if (mag == NULL)
        return MS_ERR_NOMEM;
    memcpy(mag, src, n);
    if (neg) { /* two's complement negate */
        for (size_t i = 0; i < n; i++)
            mag[i] = (uint8_t)~mag[i];
        for (size_t i = n; i-- > 0;)
            if (++mag[i] != 0)
                break;
    }
    /* Worst case digits: n * 2.41 + 1; build right to left in a scratch. */
    size_t maxd = n * 5 / 2 + 12;
    char dsmall[192];
    char *d = maxd <= sizeof dsmall ? dsmall : malloc(maxd);
    if (d == NULL) {
        if (mag != small)
            free(mag);
        return MS_ERR_NOMEM;
    }
    size_t pos = maxd;
    size_t lead = 0;
    for (;;) {
        while (lead < n && mag[lead] == 0)
            lead++;
        if (lead == n)
            break;
        uint64_t rem = 0;
        for (size_t i = lead; i < n; i++) {
            uint64_t cur = (rem << 8) | mag[i];
            mag[i] = (uint8_t)(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        for (int k = 0; k < 9; k++) {
            d[--pos] = (char)('0' + rem % 10);
            rem /= 10;
        }
    }
    while (pos < maxd && d[pos] == '0')
        pos++;
    if (pos == maxd)
        d[--pos] = '0';
    size_t len = maxd - pos + (neg ? 1 : 0);
    int rc;
    if (len + 1 > cap) {
        rc = MS_ERR_TOO_LARGE;
    } else {
        size_t o = 0;
        if (neg)
            out[o++] = '-';
        memcpy(out + o, d + pos, maxd - pos);
        out[len] = '\0';
        rc = (int)len;
    }
    if (mag != small)
        free(mag);
    if (d != dsmall)
        free(d);
    return rc;
}

int cql_varint_to_string(cql_bytes b, char *out, size_t cap)
{
    if (b.len < 0)
        return MS_ERR_NOT_FOUND;
    if (b.len == 0)
        return MS_ERR_INVALID;
    if ((size_t)b.len > 1u << 20)
        return MS_ERR_TOO_LARGE;
    return mag_to_string(b.ptr, (size_t)b.len, (b.ptr[0] & 0x80) != 0, out, cap);
}

int cql_decode_decimal(cql_bytes b, int32_t *scale, cql_bytes *unscaled)
{
    if (b.len < 0)
        return MS_ERR_NOT_FOUND;
    if (b.len < 5)
        return MS_ERR_INVALID;
    *scale = (int32_t)cql__be32(b.ptr);
    unscaled->ptr = b.ptr + 4;
    unscaled->len = b.len - 4;
    return 0;
}

int cql_decimal_to_string(cql_bytes b, char *out, size_t cap)
{
    int32_t scale;
    cql_bytes u;
    int rc = cql_decode_decimal(b, &scale, &u);
    if (rc < 0)
        return rc;
    if (scale > 100000 || scale < -100000)
        return MS_ERR_TOO_LARGE;
    rc = cql_varint_to_string(u, out, cap);
    if (rc < 0)
        return rc;
    size_t len = (size_t)rc;
    bool neg = out[0] == '-';
    size_t digits = len - (neg ? 1 : 0);
    char *dg = out + (neg ? 1 : 0);
    if (scale == 0)
        return (int)len;
    if (scale < 0) {
        if (digits == 1 && dg[0] == '0')
            return (int)len; /* 0 * 10^k = 0 */
        size_t z = (size_t)(-(int64_t)scale);
        if (len + z + 1 > cap)
            return MS_ERR_TOO_LARGE;
        memset(out + len, '0', z);
        out[len + z] = '\0';
        return (int)(len + z);
    }
    size_t s = (size_t)scale;
    if (digits > s) { /* insert a point */
        if (len + 2 > cap)
            return MS_ERR_TOO_LARGE;
        size_t ip = digits - s;
        memmove(dg + ip + 1, dg + ip, s + 1);
        dg[ip] = '.';
        return (int)(len + 1);
    }
    /* 0.000ddd */
    size_t pad = s - digits;
    size_t nlen = len + 2 + pad;
    if (nlen + 1 > cap)
        return MS_ERR_TOO_LARGE;
    memmove(dg + 2 + pad, dg, digits + 1);
    dg[0] = '0';
    dg[1] = '.';
    memset(dg + 2, '0', pad);
    return (int)nlen;
}

uint32_t cql_date_from_days(int32_t days)
{
    return (uint32_t)((int64_t)days + 2147483648LL);
}

int32_t cql_date_to_days(uint32_t cql_days)
{
    return (int32_t)((int64_t)cql_days - 2147483648LL);
}

void cql_uuid_format(const uint8_t u[16], char out[37])
{
    ms_uuid_format(u, out);
}

int cql_uuid_parse(const char *s, uint8_t out[16])
{
    return s && ms_uuid_parse(s, strlen(s), out) == 0 ? 0 : MS_ERR_INVALID;
}

/* ---- collection iteration ---- */

int cql_coll_begin(cql_coll_iter *it, cql_bytes b, bool is_map, uint32_t *count)
{
    if (b.len < 0)
        return MS_ERR_NOT_FOUND;
    cql_rd r = cql__rd(b.ptr, (size_t)b.len);
    int32_t n;
    if (cql__rd_int(&r, &n) < 0 || n < 0)
        return MS_ERR_INVALID;
    /* Each element takes at least 4 bytes: reject counts the body cannot hold. */
    uint64_t elems = (uint64_t)n * (is_map ? 2u : 1u);
    if (elems * 4 > cql__rd_left(&r))
        return MS_ERR_INVALID;
    it->p = r.p;
    it->end = r.end;
    it->remaining = (uint32_t)elems;
    it->_tuple = false;
    if (count)
        *count = (uint32_t)n;
    return 0;
}

int cql_tuple_begin(cql_coll_iter *it, cql_bytes b, uint32_t nfields)
{
    if (b.len < 0)
        return MS_ERR_NOT_FOUND;
    it->p = b.ptr;
    it->end = b.ptr ? b.ptr + b.len : b.ptr;
    it->remaining = nfields;
    it->_tuple = true;
    return 0;
}

int cql_coll_next(cql_coll_iter *it, cql_bytes *elem)
{
    if (it->remaining == 0)
        return MS_ERR_NOT_FOUND;
    cql_rd r = {it->p, it->end};
    if (it->_tuple && r.p == r.end) { /* trailing fields may be omitted: null */
        elem->ptr = NULL;
        elem->len = -1;
        it->remaining--;
        return 0;
    }
    if (cql__rd_bytes(&r, elem) < 0 || elem->len == -2)
        return MS_ERR_INVALID;
    it->p = r.p;
    it->remaining--;
    return 0;
}
