/* SPDX-License-Identifier: Apache-2.0 */
/* User tokens: signature and alg/key pairing, claims, ids of both formats, leeway. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/error.h"
#include "server/jwt.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET "unit-test-secret-0123456789abcdef-0123456789"
#define NOW    1800000000

static const char *const U1 = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";

static void b64url(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = a[(v >> 18) & 63];
        out[o++] = a[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = a[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = a[v & 63];
    }
    out[o] = '\0';
}

/* header.payload. in out; returns its length */
static size_t unsigned_part(const char *header, const char *payload, char *out)
{
    b64url((const unsigned char *)header, strlen(header), out);
    size_t n = strlen(out);
    out[n++] = '.';
    b64url((const unsigned char *)payload, strlen(payload), out + n);
    return strlen(out);
}

static void hs256(const char *header, const char *payload, const void *key, size_t klen, char *out)
{
    size_t n = unsigned_part(header, payload, out);
    unsigned char mac[32];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), key, (int)klen, (unsigned char *)out, n, mac, &ml);
    out[n++] = '.';
    b64url(mac, ml, out + n);
}

static const char *HS = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static jwt_keys *keys(const char *secret, const char *pubfile)
{
    static ms_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.jwt_secret, sizeof cfg.jwt_secret, "%s", secret ? secret : "");
    snprintf(cfg.jwt_public_key_file, sizeof cfg.jwt_public_key_file, "%s", pubfile ? pubfile : "");
    cfg.jwt_leeway_ms = 30000;
    jwt_keys *k = NULL;
    char err[256];
    assert_int_equal(jwt_keys_load(&cfg, &k, err, sizeof err), 0);
    assert_non_null(k);
    return k;
}

static int verify(jwt_keys *k, ms_id_format f, const char *tok, jwt_claims *c, const char **why)
{
    return jwt_verify(k, f, tok, strlen(tok), NOW, c, why);
}

static void test_uuid_claims(void **state)
{
    (void)state;
    jwt_keys *k = keys(SECRET, NULL);
    char tok[2048], payload[512];
    snprintf(payload, sizeof payload,
             "{\"sub\":\"%s\",\"exp\":%d,\"channels\":[\"6F1C2A3B-4D5E-4F60-8A7B-9C0D1E2F3A4C\"],"
             "\"scope\":\"read\"}",
             U1, NOW + 60);
    hs256(HS, payload, SECRET, strlen(SECRET), tok);
    jwt_claims c;
    const char *why;
    assert_int_equal(verify(k, MS_ID_UUID, tok, &c, &why), 0);
    ms_xid want;
    assert_int_equal(ms_xid_parse(MS_ID_UUID, U1, strlen(U1), &want), 0);
    assert_true(ms_xid_eq(c.sub, want));
    assert_int_equal(c.nchannels, 1);
    assert_int_equal(c.channels[0].lo & 0xff, 0x4c); /* upper case in, same id */
    assert_false(c.all_channels);
    assert_int_equal(c.scope, JWT_SCOPE_READ);
    jwt_claims_clear(&c);
    /* the same token in an int64 store: the sub is not an id there */
    assert_int_equal(verify(k, MS_ID_INT64, tok, &c, &why), MS_ERR_UNAUTHORIZED);
    assert_non_null(strstr(why, "sub"));
    jwt_keys_free(k);
}

static void test_channels_and_scope_forms(void **state)
{
    (void)state;
    jwt_keys *k = keys(SECRET, NULL);
    static const struct {
        const char *extra;
        bool all;
        size_t n;
        unsigned scope;
        int rc;
    } cases[] = {
        {"", false, 0, 3, 0},
        {",\"channels\":\"*\"", true, 0, 3, 0},
        {",\"channels\":[\"7\",\"*\",8]", true, 2, 3, 0},
        {",\"scope\":\"write read\"", false, 0, 3, 0},
        {",\"scope\":[\"write\"]", false, 0, 2, 0},
        {",\"scope\":\"admin\"", false, 0, 0, 0},
        {",\"channels\":[\"x\"]", false, 0, 0, MS_ERR_UNAUTHORIZED},
        {",\"channels\":{}", false, 0, 0, MS_ERR_UNAUTHORIZED},
        {",\"scope\":5", false, 0, 0, MS_ERR_UNAUTHORIZED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char tok[2048], payload[512];
        snprintf(payload, sizeof payload, "{\"sub\":\"42\",\"exp\":%d%s}", NOW + 60,
                 cases[i].extra);
        hs256(HS, payload, SECRET, strlen(SECRET), tok);
        jwt_claims c;
        const char *why;
        assert_int_equal(verify(k, MS_ID_INT64, tok, &c, &why), cases[i].rc);
        if (cases[i].rc == 0) {
            assert_int_equal(c.all_channels, cases[i].all);
            assert_int_equal(c.nchannels, cases[i].n);
            assert_int_equal(c.scope, cases[i].scope);
            assert_true(ms_xid_eq(c.sub, ms_xid_int(42)));
        }
        jwt_claims_clear(&c);
    }
    jwt_keys_free(k);
}

static void test_leeway_edges(void **state)
{
    (void)state;
    jwt_keys *k = keys(SECRET, NULL);
    enum { EXP, NBF, EXP_TEXT };
    static const struct {
        int form, delta, rc;
    } cases[] = {
        {EXP, -30, 0},
        {EXP, -31, MS_ERR_UNAUTHORIZED},
        {NBF, 30, 0},
        {NBF, 31, MS_ERR_UNAUTHORIZED},
        {EXP_TEXT, 60, MS_ERR_UNAUTHORIZED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char tok[1024], payload[256];
        int t = NOW + cases[i].delta;
        if (cases[i].form == EXP)
            snprintf(payload, sizeof payload, "{\"sub\":\"1\",\"exp\":%d}", t);
        else if (cases[i].form == NBF)
            snprintf(payload, sizeof payload, "{\"sub\":\"1\",\"exp\":1900000000,\"nbf\":%d}", t);
        else
            snprintf(payload, sizeof payload, "{\"sub\":\"1\",\"exp\":\"%d\"}", t);
        hs256(HS, payload, SECRET, strlen(SECRET), tok);
        jwt_claims c;
        const char *why;
        assert_int_equal(verify(k, MS_ID_INT64, tok, &c, &why), cases[i].rc);
        jwt_claims_clear(&c);
    }
    jwt_keys_free(k);
}

static void test_malformed_refused(void **state)
{
    (void)state;
    jwt_keys *k = keys(SECRET, NULL);
    char payload[128], tok[1024];
    snprintf(payload, sizeof payload, "{\"sub\":\"1\",\"exp\":%d}", NOW + 60);
    const char *bad_headers[] = {
        "{\"alg\":\"none\"}", "{\"alg\":\"HS512\"}",
        "{\"typ\":\"JWT\"}",  "{\"alg\":\"HS256\",\"crit\":[\"x\"]}",
        "[\"HS256\"]",        "{\"alg\":\"HS256\",\"alg\":\"HS256\"}", /* duplicate member */
    };
    for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++) {
        hs256(bad_headers[i], payload, SECRET, strlen(SECRET), tok);
        jwt_claims c;
        const char *why;
        assert_int_equal(verify(k, MS_ID_INT64, tok, &c, &why), MS_ERR_UNAUTHORIZED);
    }
    /* unsigned, two parts, a padded or non-canonical signature, junk */
    size_t n = unsigned_part("{\"alg\":\"none\"}", payload, tok);
    strcpy(tok + n, ".");
    jwt_claims c;
    const char *why;
    assert_int_equal(verify(k, MS_ID_INT64, tok, &c, &why), MS_ERR_UNAUTHORIZED);
    assert_non_null(strstr(why, "none"));
    tok[n] = '\0';
    assert_int_equal(verify(k, MS_ID_INT64, tok, &c, &why), MS_ERR_UNAUTHORIZED);
    hs256(HS, payload, SECRET, strlen(SECRET), tok);
    size_t len = strlen(tok);
    tok[len - 1] = tok[len - 1] == 'A' ? 'B' : 'A'; /* last character: a trailing-bit flip */
    assert_int_equal(verify(k, MS_ID_INT64, tok, &c, &why), MS_ERR_UNAUTHORIZED);
    strcpy(tok + len, "=");
    assert_int_equal(verify(k, MS_ID_INT64, tok, &c, &why), MS_ERR_UNAUTHORIZED);
    assert_false(jwt_looks_like("a.b", 3));
    assert_false(jwt_looks_like("a.b.c d", 7));
    jwt_keys_free(k);
}

static void test_eddsa_and_confusion(void **state)
{
    (void)state;
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    assert_int_equal(EVP_PKEY_keygen_init(kc), 1);
    assert_int_equal(EVP_PKEY_keygen(kc, &key), 1);
    EVP_PKEY_CTX_free(kc);
    char path[] = "/tmp/msgstore-jwt-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_int_equal(PEM_write_PUBKEY(f, key), 1);
    fclose(f);
    jwt_keys *k = keys(NULL, path);

    char payload[128], tok[2048];
    snprintf(payload, sizeof payload, "{\"sub\":\"9\",\"exp\":%d,\"channels\":\"*\"}", NOW + 60);
    size_t n = unsigned_part("{\"alg\":\"EdDSA\"}", payload, tok);
    unsigned char sig[64];
    size_t siglen = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(md, NULL, NULL, NULL, key), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &siglen, (unsigned char *)tok, n), 1);
    EVP_MD_CTX_free(md);
    tok[n] = '.';
    b64url(sig, siglen, tok + n + 1);
    jwt_claims c;
    const char *why;
    assert_int_equal(verify(k, MS_ID_INT64, tok, &c, &why), 0);
    assert_true(c.all_channels);
    jwt_claims_clear(&c);
    /* the same signature under another alg name, and HS256 keyed with the public key's PEM */
    char alt[2048];
    size_t an = unsigned_part("{\"alg\":\"RS256\"}", payload, alt);
    snprintf(alt + an, sizeof alt - an, "%s", tok + n);
    assert_int_equal(verify(k, MS_ID_INT64, alt, &c, &why), MS_ERR_UNAUTHORIZED);
    char pem[1024];
    f = fopen(path, "r");
    size_t pl = fread(pem, 1, sizeof pem, f);
    fclose(f);
    hs256(HS, payload, pem, pl, alt);
    assert_int_equal(verify(k, MS_ID_INT64, alt, &c, &why), MS_ERR_UNAUTHORIZED);
    jwt_keys_free(k);
    EVP_PKEY_free(key);
    unlink(path);
}

static void test_cache_rechecks_expiry(void **state)
{
    (void)state;
    jwt_keys *k = keys(SECRET, NULL);
    char tok[1024], payload[256];
    snprintf(payload, sizeof payload, "{\"sub\":\"5\",\"exp\":%d,\"channels\":[\"1\",\"2\"]}",
             NOW + 100);
    hs256(HS, payload, SECRET, strlen(SECRET), tok);
    jwt_claims c;
    const char *why;
    for (int i = 0; i < 3; i++) { /* verified, then from the cache: the same claims */
        assert_int_equal(jwt_verify(k, MS_ID_INT64, tok, strlen(tok), NOW, &c, &why), 0);
        assert_int_equal(c.nchannels, 2);
        assert_true(ms_xid_eq(c.channels[1], ms_xid_int(2)));
        jwt_claims_clear(&c);
    }
    /* later, past exp and the leeway: refused although it is kept */
    assert_int_equal(jwt_verify(k, MS_ID_INT64, tok, strlen(tok), NOW + 131, &c, &why),
                     MS_ERR_UNAUTHORIZED);
    assert_non_null(strstr(why, "expired"));
    /* another format is another entry (the sub is parsed per format) */
    assert_int_equal(jwt_verify(k, MS_ID_UUID, tok, strlen(tok), NOW, &c, &why),
                     MS_ERR_UNAUTHORIZED);
    /* more tokens than the cache holds: each still verifies, one bad byte still fails */
    for (int i = 0; i < 3000; i++) {
        snprintf(payload, sizeof payload, "{\"sub\":\"%d\",\"exp\":%d}", i + 1, NOW + 100);
        hs256(HS, payload, SECRET, strlen(SECRET), tok);
        assert_int_equal(jwt_verify(k, MS_ID_INT64, tok, strlen(tok), NOW, &c, &why), 0);
        assert_true(ms_xid_eq(c.sub, ms_xid_int((uint64_t)i + 1)));
        jwt_claims_clear(&c);
    }
    size_t n = strlen(tok);
    tok[n - 2] = tok[n - 2] == 'a' ? 'b' : 'a';
    assert_int_equal(jwt_verify(k, MS_ID_INT64, tok, n, NOW, &c, &why), MS_ERR_UNAUTHORIZED);
    jwt_keys_free(k);
}

static void test_bad_settings(void **state)
{
    (void)state;
    ms_config cfg;
    memset(&cfg, 0, sizeof cfg);
    jwt_keys *k = (jwt_keys *)1;
    char err[256];
    assert_int_equal(jwt_keys_load(&cfg, &k, err, sizeof err), 0);
    assert_null(k); /* nothing configured: user tokens off */
    snprintf(cfg.jwt_secret, sizeof cfg.jwt_secret, "short");
    assert_int_equal(jwt_keys_load(&cfg, &k, err, sizeof err), MS_ERR_INVALID);
    assert_non_null(strstr(err, "32"));
    cfg.jwt_secret[0] = '\0';
    snprintf(cfg.jwt_public_key_file, sizeof cfg.jwt_public_key_file, "/nonexistent/key.pem");
    assert_int_equal(jwt_keys_load(&cfg, &k, err, sizeof err), MS_ERR_INVALID);
    assert_non_null(strstr(err, "MSGSTORE_JWT_PUBLIC_KEY_FILE"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_claims),         cmocka_unit_test(test_channels_and_scope_forms),
        cmocka_unit_test(test_leeway_edges),        cmocka_unit_test(test_malformed_refused),
        cmocka_unit_test(test_eddsa_and_confusion), cmocka_unit_test(test_cache_rechecks_expiry),
        cmocka_unit_test(test_bad_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
