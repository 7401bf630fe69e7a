/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xid.c - channel and user ids (include/msgstore/id.h): parse, format, bytes.
 */
#include "msgstore/id.h"

#include <string.h>

static const char *const format_names[] = {[MS_ID_UUID] = "uuid", [MS_ID_INT64] = "int64"};

const char *ms_id_format_name(ms_id_format f)
{
    return (unsigned)f < sizeof format_names / sizeof format_names[0] ? format_names[f] : NULL;
}

int ms_id_format_parse(const char *name, ms_id_format *out)
{
    for (unsigned i = 0; i < sizeof format_names / sizeof format_names[0]; i++)
        if (name && strcmp(name, format_names[i]) == 0) {
            *out = (ms_id_format)i;
            return 0;
        }
    return -1;
}

uint64_t ms_xid_hash(ms_xid a)
{
    /* splitmix64 finalizer over both halves */
    uint64_t x = a.hi * 0x9e3779b97f4a7c15ull ^ a.lo;
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ms_uuid_parse(const char *s, size_t len, uint8_t out[16])
{
    if (!s || len != 36)
        return -1;
    uint8_t b[16];
    size_t n = 0;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return -1;
            i++;
            continue;
        }
        int h = hexval(s[i]), l = hexval(s[i + 1]);
        if (h < 0 || l < 0)
            return -1;
        b[n++] = (uint8_t)(h << 4 | l);
        i += 2;
    }
    memcpy(out, b, 16);
    return 0;
}

void ms_uuid_format(const uint8_t b[16], char out[MS_XID_STRLEN])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

static int parse_uuid(const char *s, size_t len, ms_xid *out)
{
    uint8_t b[16];
    if (ms_uuid_parse(s, len, b) != 0)
        return -1;
    ms_xid x = ms_xid_from_bytes(b);
    if (ms_xid_is_none(x))
        return -1;
    *out = x;
    return 0;
}

static int parse_int(const char *s, size_t len, ms_xid *out)
{
    if (len == 0 || len > 19 || s[0] == '0')
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX) /* 19 digits fit in uint64_t, so no wrap above */
        return -1;
    *out = ms_xid_int(v);
    return 0;
}

int ms_xid_parse(ms_id_format f, const char *s, size_t len, ms_xid *out)
{
    if (!s || !out)
        return -1;
    switch (f) {
    case MS_ID_UUID:
        return parse_uuid(s, len, out);
    case MS_ID_INT64:
        return parse_int(s, len, out);
    }
    return -1;
}

size_t ms_xid_format(ms_id_format f, ms_xid id, char out[MS_XID_STRLEN])
{
    if (f == MS_ID_INT64 && id.hi == 0) {
        char tmp[24];
        size_t n = 0;
        uint64_t v = id.lo;
        do {
            tmp[n++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        for (size_t i = 0; i < n; i++)
            out[i] = tmp[n - 1 - i];
        out[n] = '\0';
        return n;
    }
    uint8_t b[16];
    ms_xid_to_bytes(id, b);
    ms_uuid_format(b, out);
    return 36;
}

void ms_xid_to_bytes(ms_xid id, uint8_t out[16])
{
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(id.hi >> (56 - 8 * i));
        out[8 + i] = (uint8_t)(id.lo >> (56 - 8 * i));
    }
}

ms_xid ms_xid_from_bytes(const uint8_t b[16])
{
    ms_xid x = {0, 0};
    for (int i = 0; i < 8; i++) {
        x.hi = x.hi << 8 | b[i];
        x.lo = x.lo << 8 | b[8 + i];
    }
    return x;
}

bool ms_xid_valid(ms_id_format f, ms_xid id)
{
    if (ms_xid_is_none(id))
        return false;
    if (f == MS_ID_INT64)
        return id.hi == 0 && id.lo <= (uint64_t)INT64_MAX;
    return true;
}
