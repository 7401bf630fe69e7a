/* SPDX-License-Identifier: Apache-2.0 */
#include "server/jwt.h"
#include "server/auth.h"
#include "core/error.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_SECRET_BYTES 32
#define MAX_TOKEN_BYTES  8192
#define MAX_CHANNELS     1024
#define CACHE_SETS       256 /* verified tokens kept: CACHE_SETS * CACHE_WAYS */
#define CACHE_WAYS       4
#define CACHE_CHANNELS   64 /* tokens with more channels are not kept */

typedef enum { KEY_NONE, KEY_ED25519, KEY_RSA } key_kind;

/* A token verified before: its SHA-256 (signature included) and its claims. */
typedef struct {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    bool used;
    ms_id_format fmt;
    jwt_claims claims; /* channels owned */
    uint64_t last;     /* use tick, for least recently used reuse */
} cache_entry;

typedef struct {
    pthread_mutex_t mu;
    cache_entry e[CACHE_WAYS];
} cache_set;

struct jwt_keys {
    cache_set *cache; /* CACHE_SETS sets */
    _Atomic uint64_t tick;
    unsigned char *secret; /* HS256; NULL: none */
    size_t secret_len;
    EVP_PKEY *pub; /* NULL: none */
    key_kind pub_kind;
    char audience[MS_CONFIG_STR];
    int64_t leeway_s;
};

/* Reads a whole small file (at most 64 KiB) into a NUL-terminated malloc'd buffer. */
static int read_file(const char *what, const char *path, char **out, size_t *len, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s=\"%s\": %s", what, path, strerror(errno));
        return MS_ERR_INVALID;
    }
    char *buf = malloc(65536 + 1);
    if (!buf) {
        fclose(f);
        return MS_ERR_NOMEM;
    }
    size_t n = fread(buf, 1, 65536 + 1, f);
    fclose(f);
    if (n > 65536) {
        free(buf);
        snprintf(err, errlen, "%s=\"%s\": larger than 64 KiB", what, path);
        return MS_ERR_INVALID;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int load_secret(jwt_keys *k, const ms_config *cfg, char *err, size_t errlen)
{
    const char *what = "MSGSTORE_JWT_SECRET";
    char *file = NULL;
    const char *s = cfg->jwt_secret;
    size_t len = strlen(s);
    if (cfg->jwt_secret_file[0]) {
        if (len) {
            snprintf(err, errlen, "set MSGSTORE_JWT_SECRET or MSGSTORE_JWT_SECRET_FILE, not both");
            return MS_ERR_INVALID;
        }
        what = "MSGSTORE_JWT_SECRET_FILE";
        int rc = read_file(what, cfg->jwt_secret_file, &file, &len, err, errlen);
        if (rc)
            return rc;
        while (len && (file[len - 1] == '\n' || file[len - 1] == '\r'))
            len--;
        s = file;
    }
    int rc = 0;
    if (len == 0 && !file) {
        /* no secret */
    } else if (len < MIN_SECRET_BYTES) {
        snprintf(err, errlen, "%s: an HS256 secret must have at least %d bytes (it has %zu)", what,
                 MIN_SECRET_BYTES, len);
        rc = MS_ERR_INVALID;
    } else {
        k->secret = malloc(len);
        if (!k->secret) {
            rc = MS_ERR_NOMEM;
        } else {
            memcpy(k->secret, s, len);
            k->secret_len = len;
        }
    }
    if (file) {
        OPENSSL_cleanse(file, len);
        free(file);
    }
    return rc;
}

static int load_public_key(jwt_keys *k, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "MSGSTORE_JWT_PUBLIC_KEY_FILE=\"%s\": %s", path, strerror(errno));
        return MS_ERR_INVALID;
    }
    EVP_PKEY *p = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    if (!p) {
        snprintf(err, errlen,
                 "MSGSTORE_JWT_PUBLIC_KEY_FILE=\"%s\": not a PEM public key "
                 "(-----BEGIN PUBLIC KEY-----)",
                 path);
        return MS_ERR_INVALID;
    }
    int id = EVP_PKEY_get_base_id(p);
    if (id == EVP_PKEY_ED25519) {
        k->pub_kind = KEY_ED25519;
    } else if (id == EVP_PKEY_RSA && EVP_PKEY_get_bits(p) >= 2048) {
        k->pub_kind = KEY_RSA;
    } else {
        snprintf(err, errlen,
                 "MSGSTORE_JWT_PUBLIC_KEY_FILE=\"%s\": expected an Ed25519 key (EdDSA) or an RSA "
                 "key of at least 2048 bits (RS256)",
                 path);
        EVP_PKEY_free(p);
        return MS_ERR_INVALID;
    }
    k->pub = p;
    return 0;
}

int jwt_keys_load(const ms_config *cfg, jwt_keys **out, char *err, size_t errlen)
{
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    if (!cfg->jwt_secret[0] && !cfg->jwt_secret_file[0] && !cfg->jwt_public_key_file[0])
        return 0;
    jwt_keys *k = calloc(1, sizeof *k);
    if (!k)
        return MS_ERR_NOMEM;
    int rc = load_secret(k, cfg, err, errlen);
    if (rc == 0 && cfg->jwt_public_key_file[0])
        rc = load_public_key(k, cfg->jwt_public_key_file, err, errlen);
    if (rc) {
        jwt_keys_free(k);
        return rc;
    }
    snprintf(k->audience, sizeof k->audience, "%s", cfg->jwt_audience);
    k->leeway_s = cfg->jwt_leeway_ms / 1000;
    k->cache = calloc(CACHE_SETS, sizeof *k->cache);
    if (!k->cache) {
        jwt_keys_free(k);
        return MS_ERR_NOMEM;
    }
    for (size_t i = 0; i < CACHE_SETS; i++)
        pthread_mutex_init(&k->cache[i].mu, NULL);
    *out = k;
    return 0;
}

void jwt_keys_free(jwt_keys *k)
{
    if (!k)
        return;
    if (k->secret) {
        OPENSSL_cleanse(k->secret, k->secret_len);
        free(k->secret);
    }
    EVP_PKEY_free(k->pub);
    if (k->cache) {
        for (size_t i = 0; i < CACHE_SETS; i++) {
            for (int w = 0; w < CACHE_WAYS; w++)
                jwt_claims_clear(&k->cache[i].e[w].claims);
            pthread_mutex_destroy(&k->cache[i].mu);
        }
        free(k->cache);
    }
    free(k);
}

void jwt_claims_clear(jwt_claims *c)
{
    free(c->channels);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------------ */

static int b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

bool jwt_looks_like(const char *tok, size_t len)
{
    int dots = 0;
    for (size_t i = 0; i < len; i++) {
        if (tok[i] == '.')
            dots++;
        else if (b64url_val((unsigned char)tok[i]) < 0)
            return false;
    }
    return dots == 2;
}

/* Decodes unpadded base64url into dst (room for len * 3 / 4 + 1); -1 on a bad character or
 * length. */
static long b64url_decode(const char *s, size_t len, unsigned char *dst)
{
    if (len % 4 == 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dst[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (bits && (acc & ((1u << bits) - 1))) /* non-canonical: leftover bits set */
        return -1;
    return (long)o;
}

static json_t *decode_json_part(const char *s, size_t len)
{
    unsigned char *buf = malloc(len * 3 / 4 + 1);
    if (!buf)
        return NULL;
    long n = b64url_decode(s, len, buf);
    json_t *j =
        n < 0 ? NULL : json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

static bool verify_sig(const jwt_keys *k, const char *alg, const unsigned char *in, size_t inlen,
                       const unsigned char *sig, size_t siglen, const char **why)
{
    if (strcmp(alg, "HS256") == 0) {
        if (!k->secret) {
            *why = "HS256 tokens are not accepted here";
            return false;
        }
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;
        if (!HMAC(EVP_sha256(), k->secret, (int)k->secret_len, in, inlen, mac, &maclen) ||
            siglen != maclen || CRYPTO_memcmp(mac, sig, maclen) != 0) {
            *why = "the token's signature is not valid";
            return false;
        }
        return true;
    }
    bool eddsa = strcmp(alg, "EdDSA") == 0, rs = strcmp(alg, "RS256") == 0;
    if (!eddsa && !rs) {
        *why = "the token's alg is not accepted (HS256, EdDSA or RS256)";
        return false;
    }
    if (!k->pub || (eddsa && k->pub_kind != KEY_ED25519) || (rs && k->pub_kind != KEY_RSA)) {
        *why = eddsa ? "EdDSA tokens are not accepted here" : "RS256 tokens are not accepted here";
        return false;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx &&
              EVP_DigestVerifyInit(ctx, NULL, eddsa ? NULL : EVP_sha256(), NULL, k->pub) == 1 &&
              EVP_DigestVerify(ctx, sig, siglen, in, inlen) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        *why = "the token's signature is not valid";
    return ok;
}

/* A NumericDate claim: 0 and *out, 1 when absent, -1 when not a number. */
static int num_claim(json_t *o, const char *name, int64_t *out)
{
    json_t *v = json_object_get(o, name);
    if (!v)
        return 1;
    if (!json_is_number(v))
        return -1;
    double d = json_number_value(v);
    if (!(d > -9.0e15 && d < 9.0e15))
        return -1;
    *out = (int64_t)d;
    return 0;
}

/* An id from a JSON string (or an integer in the int64 format). */
static int id_of(ms_id_format fmt, json_t *v, ms_xid *out)
{
    if (json_is_string(v))
        return ms_xid_parse(fmt, json_string_value(v), json_string_length(v), out);
    if (fmt == MS_ID_INT64 && json_is_integer(v) && json_integer_value(v) > 0) {
        *out = ms_xid_int((uint64_t)json_integer_value(v));
        return 0;
    }
    return -1;
}

static bool is_star(json_t *v)
{
    return json_is_string(v) && strcmp(json_string_value(v), "*") == 0;
}

static int read_channels(ms_id_format fmt, json_t *v, jwt_claims *c, const char **why)
{
    if (!v)
        return 0; /* no channel */
    if (is_star(v)) {
        c->all_channels = true;
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) > MAX_CHANNELS) {
        *why = "the token's channels claim is not a list of channel ids or \"*\"";
        return MS_ERR_UNAUTHORIZED;
    }
    c->channels = calloc(json_array_size(v) + 1, sizeof *c->channels);
    if (!c->channels)
        return MS_ERR_NOMEM;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (is_star(e)) {
            c->all_channels = true;
            continue;
        }
        if (id_of(fmt, e, &c->channels[c->nchannels]) != 0) {
            *why = "the token's channels claim holds something that is not a channel id";
            return MS_ERR_UNAUTHORIZED;
        }
        c->nchannels++;
    }
    return 0;
}

static int read_scope(json_t *v, unsigned *scope, const char **why)
{
    if (!v) {
        *scope = JWT_SCOPE_READ | JWT_SCOPE_WRITE;
        return 0;
    }
    *scope = 0;
    if (json_is_string(v)) {
        const char *p = json_string_value(v);
        while (*p) {
            while (*p == ' ')
                p++;
            size_t n = strcspn(p, " ");
            if (n == 4 && strncmp(p, "read", 4) == 0)
                *scope |= JWT_SCOPE_READ;
            else if (n == 5 && strncmp(p, "write", 5) == 0)
                *scope |= JWT_SCOPE_WRITE;
            p += n;
        }
        return 0;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            const char *s = json_string_value(e);
            if (s && strcmp(s, "read") == 0)
                *scope |= JWT_SCOPE_READ;
            else if (s && strcmp(s, "write") == 0)
                *scope |= JWT_SCOPE_WRITE;
        }
        return 0;
    }
    *why = "the token's scope claim is not a string or a list";
    return MS_ERR_UNAUTHORIZED;
}

static bool aud_matches(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    if (json_is_array(aud)) {
        size_t i;
        json_t *e;
        json_array_foreach(aud, i, e)
        {
            if (json_is_string(e) && strcmp(json_string_value(e), want) == 0)
                return true;
        }
    }
    return false;
}

static int check_claims(const jwt_keys *k, ms_id_format fmt, json_t *p, int64_t now, jwt_claims *c,
                        const char **why)
{
    int64_t exp = 0, nbf = 0;
    int e = num_claim(p, "exp", &exp);
    if (e != 0) {
        *why = e > 0 ? "the token has no exp claim" : "the token's exp claim is not a number";
        return MS_ERR_UNAUTHORIZED;
    }
    if (now > exp + k->leeway_s) {
        *why = "the token has expired";
        return MS_ERR_UNAUTHORIZED;
    }
    e = num_claim(p, "nbf", &nbf);
    if (e < 0) {
        *why = "the token's nbf claim is not a number";
        return MS_ERR_UNAUTHORIZED;
    }
    if (e == 0 && now + k->leeway_s < nbf) {
        *why = "the token is not valid yet (nbf)";
        return MS_ERR_UNAUTHORIZED;
    }
    if (k->audience[0] && !aud_matches(json_object_get(p, "aud"), k->audience)) {
        *why = "the token is not meant for this service (aud)";
        return MS_ERR_UNAUTHORIZED;
    }
    json_t *sub = json_object_get(p, "sub");
    if (!sub) {
        *why = "the token has no sub claim";
        return MS_ERR_UNAUTHORIZED;
    }
    if (id_of(fmt, sub, &c->sub) != 0) {
        *why = fmt == MS_ID_UUID ? "the token's sub is not a user id (a UUID)"
                                 : "the token's sub is not a user id (a decimal id)";
        return MS_ERR_UNAUTHORIZED;
    }
    c->exp = exp;
    int rc = read_channels(fmt, json_object_get(p, "channels"), c, why);
    if (rc == 0)
        rc = read_scope(json_object_get(p, "scope"), &c->scope, why);
    return rc;
}

static int verify_full(const jwt_keys *k, ms_id_format fmt, const char *tok, size_t len,
                       int64_t now_s, jwt_claims *out, const char **why)
{
    const char *d1 = memchr(tok, '.', len);
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
    json_t *h = decode_json_part(tok, (size_t)(d1 - tok));
    if (!h)
        return MS_ERR_UNAUTHORIZED;
    const char *alg = json_string_value(json_object_get(h, "alg"));
    int rc = MS_ERR_UNAUTHORIZED;
    json_t *p = NULL;
    unsigned char *sig = NULL;
    if (!alg) {
        *why = "the token's header has no alg";
        goto out;
    }
    if (json_object_get(h, "crit")) {
        *why = "the token's header has crit extensions (not supported)";
        goto out;
    }
    size_t siglen_enc = len - (size_t)(d2 + 1 - tok);
    sig = malloc(siglen_enc * 3 / 4 + 1);
    if (!sig) {
        rc = MS_ERR_NOMEM;
        goto out;
    }
    long siglen = b64url_decode(d2 + 1, siglen_enc, sig);
    if (siglen <= 0) {
        *why = strcmp(alg, "none") == 0 ? "unsigned tokens (alg none) are not accepted"
                                        : "the token has no valid signature";
        goto out;
    }
    if (!verify_sig(k, alg, (const unsigned char *)tok, (size_t)(d2 - tok), sig, (size_t)siglen,
                    why))
        goto out;
    p = decode_json_part(d1 + 1, (size_t)(d2 - d1 - 1));
    if (!p) {
        *why = "the token's payload is not a JSON object";
        goto out;
    }
    rc = check_claims(k, fmt, p, now_s, out, why);
out:
    if (rc)
        jwt_claims_clear(out);
    free(sig);
    json_decref(p);
    json_decref(h);
    return rc;
}

static int claims_copy(jwt_claims *dst, const jwt_claims *src)
{
    *dst = *src;
    dst->channels = NULL;
    if (src->nchannels) {
        dst->channels = malloc(src->nchannels * sizeof *dst->channels);
        if (!dst->channels)
            return MS_ERR_NOMEM;
        memcpy(dst->channels, src->channels, src->nchannels * sizeof *dst->channels);
    }
    return 0;
}

/*
 * Verifying a signature costs far more than the request it guards (an
 * Ed25519 or RSA check through OpenSSL 3's providers), and a client sends
 * the same token again and again: tokens verified once are kept, by the
 * SHA-256 of the whole token, signature included, so only the very same
 * bytes hit. A hit still checks exp (nbf, once passed, stays passed).
 */
int jwt_verify(jwt_keys *k, ms_id_format fmt, const char *tok, size_t len, int64_t now_s,
               jwt_claims *out, const char **why)
{
    memset(out, 0, sizeof *out);
    *why = "the token is not a valid JWT";
    if (!k) {
        *why = "user tokens (JWT) are not accepted here";
        return MS_ERR_UNAUTHORIZED;
    }
    if (len > MAX_TOKEN_BYTES || !jwt_looks_like(tok, len))
        return MS_ERR_UNAUTHORIZED;
    unsigned char d[SHA256_DIGEST_LENGTH];
    auth_sha256(tok, len, d);
    cache_set *set = &k->cache[(d[0] | (unsigned)d[1] << 8) % CACHE_SETS];
    uint64_t tick = atomic_fetch_add(&k->tick, 1) + 1;
    pthread_mutex_lock(&set->mu);
    for (int w = 0; w < CACHE_WAYS; w++) {
        cache_entry *e = &set->e[w];
        if (!e->used || e->fmt != fmt || memcmp(e->digest, d, sizeof d) != 0)
            continue;
        int rc;
        if (now_s > e->claims.exp + k->leeway_s) {
            *why = "the token has expired";
            rc = MS_ERR_UNAUTHORIZED;
        } else {
            e->last = tick;
            rc = claims_copy(out, &e->claims);
        }
        pthread_mutex_unlock(&set->mu);
        return rc;
    }
    pthread_mutex_unlock(&set->mu);
    int rc = verify_full(k, fmt, tok, len, now_s, out, why);
    if (rc || out->nchannels > CACHE_CHANNELS)
        return rc;
    jwt_claims keep;
    if (claims_copy(&keep, out) != 0)
        return 0; /* not kept: verified next time again */
    pthread_mutex_lock(&set->mu);
    cache_entry *victim = &set->e[0];
    for (int w = 0; w < CACHE_WAYS; w++) {
        cache_entry *e = &set->e[w];
        if (e->used && e->fmt == fmt && memcmp(e->digest, d, sizeof d) == 0) {
            victim = NULL; /* another thread kept it meanwhile */
            break;
        }
        if (victim->used && (!e->used || e->last < victim->last))
            victim = e;
    }
    if (victim) {
        jwt_claims_clear(&victim->claims);
        memcpy(victim->digest, d, sizeof d);
        victim->used = true;
        victim->fmt = fmt;
        victim->claims = keep;
        victim->last = tick;
    } else {
        jwt_claims_clear(&keep);
    }
    pthread_mutex_unlock(&set->mu);
    return 0;
}
