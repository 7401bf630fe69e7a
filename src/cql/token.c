/* SPDX-License-Identifier: Apache-2.0 */
/*
 * token.c - Murmur3Partitioner tokens, routing keys and ScyllaDB shard math.
 *
 * The hash is Cassandra's MurmurHash.hash3_x64_128 (seed 0) keeping h1. It
 * differs from reference MurmurHash3 in one place: the tail bytes are read as
 * signed Java bytes and sign-extended before shifting. All arithmetic is on
 * uint64_t (signed overflow is undefined in C).
 */
#include <stdlib.h>
#include <string.h>

#include "cql/proto.h"
#include "cql/wire.h"

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

static inline uint64_t le64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = (x << 8) | p[i];
    return x;
}

/* A tail byte as Java sees it: (long) of a signed byte. */
static inline uint64_t sx(uint8_t b)
{
    return (uint64_t)(int64_t)(int8_t)b;
}

int64_t cql__murmur3_token(const void *key, size_t len)
{
    const uint8_t *data = key;
    const uint64_t c1 = 0x87c37b91114253d5ULL;
    const uint64_t c2 = 0x4cf5ad432745937fULL;
    uint64_t h1 = 0, h2 = 0;
    size_t nblocks = len / 16;
    for (size_t i = 0; i < nblocks; i++) {
        uint64_t k1 = le64(data + i * 16);
        uint64_t k2 = le64(data + i * 16 + 8);
        k1 *= c1;
        k1 = rotl64(k1, 31);
        k1 *= c2;
        h1 ^= k1;
        h1 = rotl64(h1, 27);
        h1 += h2;
        h1 = h1 * 5 + 0x52dce729;
        k2 *= c2;
        k2 = rotl64(k2, 33);
        k2 *= c1;
        h2 ^= k2;
        h2 = rotl64(h2, 31);
        h2 += h1;
        h2 = h2 * 5 + 0x38495ab5;
    }
    const uint8_t *tail = data + nblocks * 16;
    uint64_t k1 = 0, k2 = 0;
    switch (len & 15) {
    case 15:
        k2 ^= sx(tail[14]) << 48; /* fall through */
    case 14:
        k2 ^= sx(tail[13]) << 40; /* fall through */
    case 13:
        k2 ^= sx(tail[12]) << 32; /* fall through */
    case 12:
        k2 ^= sx(tail[11]) << 24; /* fall through */
    case 11:
        k2 ^= sx(tail[10]) << 16; /* fall through */
    case 10:
        k2 ^= sx(tail[9]) << 8; /* fall through */
    case 9:
        k2 ^= sx(tail[8]);
        k2 *= c2;
        k2 = rotl64(k2, 33);
        k2 *= c1;
        h2 ^= k2;
        /* fall through */
    case 8:
        k1 ^= sx(tail[7]) << 56; /* fall through */
    case 7:
        k1 ^= sx(tail[6]) << 48; /* fall through */
    case 6:
        k1 ^= sx(tail[5]) << 40; /* fall through */
    case 5:
        k1 ^= sx(tail[4]) << 32; /* fall through */
    case 4:
        k1 ^= sx(tail[3]) << 24; /* fall through */
    case 3:
        k1 ^= sx(tail[2]) << 16; /* fall through */
    case 2:
        k1 ^= sx(tail[1]) << 8; /* fall through */
    case 1:
        k1 ^= sx(tail[0]);
        k1 *= c1;
        k1 = rotl64(k1, 31);
        k1 *= c2;
        h1 ^= k1;
        break;
    default:
        break;
    }
    h1 ^= (uint64_t)len;
    h2 ^= (uint64_t)len;
    h1 += h2;
    h2 += h1;
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 += h2;
    int64_t t = (int64_t)h1;
    return t == INT64_MIN ? INT64_MAX : t;
}

int cql__routing_key(cql_buf *out, const cql_bytes *c, size_t n)
{
    if (n == 0)
        return MS_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (c[i].len < 0 || (n > 1 && c[i].len > UINT16_MAX))
            return MS_ERR_INVALID;
    if (n == 1) {
        cql_buf_append(out, c[0].ptr, (size_t)c[0].len);
        return out->err;
    }
    for (size_t i = 0; i < n; i++) {
        cql__put_short(out, (uint16_t)c[i].len);
        cql_buf_append(out, c[i].ptr, (size_t)c[i].len);
        cql__put_byte(out, 0);
    }
    return out->err;
}

int cql__token_of_values(const cql_values *values, const uint16_t *pk_indexes, uint32_t pk_count,
                         cql_buf *scratch, int64_t *token)
{
    enum { MAXPK = 16 };
    if (values == NULL || pk_count == 0 || pk_count > MAXPK || cql_values_error(values) < 0)
        return MS_ERR_INVALID;
    /* Locate each top-level value once. */
    cql_bytes comp[MAXPK];
    cql_rd r = cql__rd(values->buf.data, values->buf.len);
    uint16_t want_max = 0;
    for (uint32_t k = 0; k < pk_count; k++)
        if (pk_indexes[k] > want_max)
            want_max = pk_indexes[k];
    if (want_max >= values->count)
        return MS_ERR_INVALID;
    for (uint16_t i = 0; i <= want_max; i++) {
        cql_bytes v;
        if (cql__rd_bytes(&r, &v) < 0)
            return MS_ERR_INVALID;
        for (uint32_t k = 0; k < pk_count; k++)
            if (pk_indexes[k] == i)
                comp[k] = v;
    }
    if (pk_count == 1) {
        if (comp[0].len < 0)
            return MS_ERR_INVALID;
        *token = cql__murmur3_token(comp[0].ptr, (size_t)comp[0].len);
        return 0;
    }
    cql_buf_reset(scratch);
    int rc = cql__routing_key(scratch, comp, pk_count);
    if (rc < 0)
        return rc;
    *token = cql__murmur3_token(scratch->data, scratch->len);
    return 0;
}

/* ---- ScyllaDB ---- */

static int parse_u32(cql_str s, uint32_t max, uint32_t *out)
{
    if (s.len == 0 || s.len > 10)
        return MS_ERR_INVALID;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return MS_ERR_INVALID;
        v = v * 10 + (uint64_t)(s.ptr[i] - '0');
    }
    if (v > max)
        return MS_ERR_INVALID;
    *out = (uint32_t)v;
    return 0;
}

static int get_u32(const cql_multimap *m, const char *key, uint32_t max, uint32_t *out, bool *found)
{
    cql_str v;
    int rc = cql__multimap_get(m, key, &v, NULL);
    if (rc == MS_ERR_NOT_FOUND) {
        *found = false;
        return 0;
    }
    if (rc < 0)
        return rc;
    *found = true;
    return parse_u32(v, max, out);
}

int cql__scylla_parse(const cql_multimap *m, cql_scylla_info *out)
{
    memset(out, 0, sizeof *out);
    out->partitioner.ptr = out->algorithm.ptr = "";
    bool has_shard, has_nr, f;
    uint32_t port;
    int rc;
    if ((rc = get_u32(m, "SCYLLA_SHARD", UINT32_MAX, &out->shard, &has_shard)) < 0 ||
        (rc = get_u32(m, "SCYLLA_NR_SHARDS", UINT32_MAX, &out->nr_shards, &has_nr)) < 0)
        return rc;
    if (!has_shard && !has_nr)
        return 0;
    if (!has_shard || !has_nr || out->nr_shards == 0 || out->shard >= out->nr_shards)
        return MS_ERR_INVALID;
    if ((rc = get_u32(m, "SCYLLA_SHARDING_IGNORE_MSB", 63, &out->ignore_msb, &f)) < 0)
        return rc;
    if ((rc = get_u32(m, "SCYLLA_SHARD_AWARE_PORT", 65535, &port, &f)) < 0)
        return rc;
    out->shard_aware_port = f ? (uint16_t)port : 0;
    if ((rc = get_u32(m, "SCYLLA_SHARD_AWARE_PORT_SSL", 65535, &port, &f)) < 0)
        return rc;
    out->shard_aware_port_ssl = f ? (uint16_t)port : 0;
    cql__multimap_get(m, "SCYLLA_PARTITIONER", &out->partitioner, NULL);
    cql__multimap_get(m, "SCYLLA_SHARDING_ALGORITHM", &out->algorithm, NULL);
    out->present = true;
    return 0;
}

void cql__scylla_ext_parse(const cql_multimap *m, cql_scylla_ext *out)
{
    memset(out, 0, sizeof *out);
    static const char *const keys[] = {"SCYLLA_SHARD",
                                       "SCYLLA_NR_SHARDS",
                                       "SCYLLA_PARTITIONER",
                                       "SCYLLA_SHARDING_ALGORITHM",
                                       "SCYLLA_RATE_LIMIT_ERROR",
                                       "SCYLLA_LWT_ADD_METADATA_MARK",
                                       "SCYLLA_SHARD_AWARE_PORT"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0] && !out->scylla; i++)
        out->scylla = cql__multimap_get(m, keys[i], NULL, NULL) == 0;
    cql_str v;
    if (cql__multimap_get(m, "SCYLLA_RATE_LIMIT_ERROR", &v, NULL) == 0) {
        /* "ERROR_CODE=61440": the code is the server's choice, not a constant */
        static const char pre[] = "ERROR_CODE=";
        size_t pl = sizeof pre - 1;
        uint32_t code;
        if (v.len > pl && memcmp(v.ptr, pre, pl) == 0 &&
            parse_u32((cql_str){v.ptr + pl, v.len - pl}, INT32_MAX, &code) == 0) {
            out->rate_limit = true;
            out->rate_limit_code = (int32_t)code;
        }
    }
    out->tablets_routing = cql__multimap_get(m, "TABLETS_ROUTING_V1", NULL, NULL) == 0;
}

bool cql__scylla_sharding_supported(const cql_scylla_info *s)
{
    return s->present && s->nr_shards > 0 &&
           cql_str_eq(s->partitioner, "org.apache.cassandra.dht.Murmur3Partitioner") &&
           cql_str_eq(s->algorithm, "biased-token-round-robin");
}

uint32_t cql__scylla_shard_of(int64_t token, uint32_t nr_shards, uint32_t ignore_msb)
{
    if (nr_shards <= 1)
        return 0;
    uint64_t b = (uint64_t)token + (UINT64_C(1) << 63);
    if (ignore_msb < 64)
        b <<= ignore_msb;
    else
        b = 0;
    /* High 64 bits of the 64x32 product, from two 32x32 halves (exact). */
    uint64_t hi = (b >> 32) * nr_shards;
    uint64_t lo = (b & 0xffffffffu) * nr_shards;
    return (uint32_t)((hi + (lo >> 32)) >> 32);
}

uint16_t cql__scylla_source_port(uint32_t shard, uint32_t nr_shards, uint16_t lo, uint16_t hi,
                                 uint16_t start)
{
    if (nr_shards == 0 || shard >= nr_shards || lo == 0 || lo > hi)
        return 0;
    if (start < lo || start > hi)
        start = lo;
    /* First candidate >= start with p % nr == shard. */
    uint32_t p = start;
    uint32_t rem = p % nr_shards;
    p += (shard + nr_shards - rem) % nr_shards;
    if (p <= hi)
        return (uint16_t)p;
    /* Wrap to the beginning of the range. */
    p = lo;
    rem = p % nr_shards;
    p += (shard + nr_shards - rem) % nr_shards;
    if (p <= hi && p < start)
        return (uint16_t)p;
    return 0;
}
