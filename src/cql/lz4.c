/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lz4.c - frame body compression as Cassandra's v4 LZ4 compressor does it
 * (section 5): a 4-byte big-endian uncompressed length, then one raw LZ4
 * block (not the LZ4 frame format). Uses the system liblz4.
 */
#include <lz4.h>
#include <stdbool.h>

#include "cql/proto.h"
#include "cql/wire.h"

/*
 * One compression state per thread, reset cheaply between frames:
 * LZ4_compress_default() memsets a 16 KiB state on every call, which costs
 * more than compressing a small frame. After LZ4_resetStream_fast() the
 * stream has no dictionary, so each block stays independent (what Cassandra
 * expects: every frame body is decompressed on its own).
 */
static _Thread_local LZ4_stream_t tls_stream;
static _Thread_local bool tls_stream_ready;

int cql__lz4_compress(cql_buf *out, const uint8_t *in, size_t n)
{
    if (n > (size_t)LZ4_MAX_INPUT_SIZE || n > CQL_LZ4_MAX_BODY)
        return MS_ERR_TOO_LARGE;
    int bound = LZ4_compressBound((int)n);
    size_t start = out->len;
    uint8_t *p = cql__wr(out, 4 + (size_t)bound);
    if (p == NULL)
        return out->err;
    cql__wbe32(p, (uint32_t)n);
    if (!tls_stream_ready) {
        LZ4_initStream(&tls_stream, sizeof tls_stream);
        tls_stream_ready = true;
    } else {
        LZ4_resetStream_fast(&tls_stream);
    }
    int c =
        LZ4_compress_fast_continue(&tls_stream, (const char *)in, (char *)p + 4, (int)n, bound, 1);
    if (c <= 0) {
        out->len = start;
        return MS_ERR_INTERNAL;
    }
    out->len = start + 4 + (size_t)c;
    return 0;
}

int cql__lz4_decompress(cql_buf *out, const uint8_t *in, size_t n, size_t max_len)
{
    if (max_len == 0 || max_len > CQL_LZ4_MAX_BODY)
        max_len = CQL_LZ4_MAX_BODY;
    if (n < 4)
        return MS_ERR_INVALID;
    uint32_t ulen = cql__be32(in);
    if (ulen > max_len)
        return MS_ERR_TOO_LARGE;
    if (n - 4 > (size_t)INT32_MAX)
        return MS_ERR_TOO_LARGE;
    if (ulen == 0)
        return n == 4 || (n == 5 && in[4] == 0) ? 0 : MS_ERR_INVALID;
    /* LZ4 cannot expand more than ~255x: reject impossible claims before allocating. */
    if ((uint64_t)ulen > (uint64_t)(n - 4) * 255u + 16u)
        return MS_ERR_INVALID;
    size_t start = out->len;
    uint8_t *p = cql__wr(out, ulen);
    if (p == NULL)
        return out->err;
    int d = LZ4_decompress_safe((const char *)in + 4, (char *)p, (int)(n - 4), (int)ulen);
    if (d < 0 || (uint32_t)d != ulen) {
        out->len = start;
        return MS_ERR_INVALID;
    }
    return 0;
}
