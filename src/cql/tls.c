/* SPDX-License-Identifier: Apache-2.0 */
/* tls.c - OpenSSL with memory BIOs for CQL connections (see tls.h). */
#include "cql/tls.h"

#include "core/error.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

static void ssl_errors(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

int cql__tls_ctx_new(const cql_tls_cfg *cfg, SSL_CTX **out, char *err, size_t errlen)
{
    *out = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ssl_errors(err, errlen, "TLS: cannot create a context");
        return MS_ERR_NOMEM;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (cfg->ca_file && cfg->ca_file[0]) {
        if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1) {
            char what[300];
            snprintf(what, sizeof(what), "TLS: cannot load the CA file %s", cfg->ca_file);
            ssl_errors(err, errlen, what);
            SSL_CTX_free(ctx);
            return MS_ERR_INVALID;
        }
    } else {
        SSL_CTX_set_default_verify_paths(ctx);
    }
    if (cfg->cert_file && cfg->cert_file[0]) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
            char what[300];
            snprintf(what, sizeof(what), "TLS: cannot load the certificate %s", cfg->cert_file);
            ssl_errors(err, errlen, what);
            SSL_CTX_free(ctx);
            return MS_ERR_INVALID;
        }
        const char *key = cfg->key_file && cfg->key_file[0] ? cfg->key_file : cfg->cert_file;
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            char what[300];
            snprintf(what, sizeof(what), "TLS: cannot use the key %s", key);
            ssl_errors(err, errlen, what);
            SSL_CTX_free(ctx);
            return MS_ERR_INVALID;
        }
    }
    SSL_CTX_set_verify(ctx, cfg->verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    *out = ctx;
    return 0;
}

int cql__tls_start(cql_tls *t, SSL_CTX *ctx, const char *host, bool verify_hostname)
{
    memset(t, 0, sizeof(*t));
    t->ssl = SSL_new(ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        memset(t, 0, sizeof(*t));
        return MS_ERR_NOMEM;
    }
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio); /* the SSL owns both BIOs now */
    SSL_set_connect_state(t->ssl);
    unsigned char addr[16];
    bool is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    if (!is_ip)
        SSL_set_tlsext_host_name(t->ssl, host);
    if (verify_hostname) {
        X509_VERIFY_PARAM *param = SSL_get0_param(t->ssl);
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host)
                       : X509_VERIFY_PARAM_set1_host(param, host, 0);
        if (ok != 1) {
            cql__tls_free(t);
            return MS_ERR_INVALID;
        }
    }
    return 0;
}

void cql__tls_free(cql_tls *t)
{
    if (t->ssl)
        SSL_free(t->ssl); /* frees the BIOs */
    memset(t, 0, sizeof(*t));
}

int cql__tls_handshake(cql_tls *t, char *err, size_t errlen)
{
    if (t->handshake_done)
        return 1;
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        t->handshake_done = true;
        return 1;
    }
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    long vr = SSL_get_verify_result(t->ssl);
    if (vr != X509_V_OK) {
        snprintf(err, errlen, "TLS: certificate verification failed: %s",
                 X509_verify_cert_error_string(vr));
        ERR_clear_error();
    } else {
        ssl_errors(err, errlen, "TLS handshake failed");
    }
    return MS_ERR_IO;
}

int cql__tls_feed(cql_tls *t, const void *p, size_t n)
{
    while (n > 0) {
        int w = BIO_write(t->rbio, p, n > INT32_MAX ? INT32_MAX : (int)n);
        if (w <= 0)
            return MS_ERR_NOMEM;
        p = (const uint8_t *)p + w;
        n -= (size_t)w;
    }
    return 0;
}

int cql__tls_read(cql_tls *t, cql_buf *out, char *err, size_t errlen)
{
    for (;;) {
        if (cql_buf_reserve(out, 16384) < 0)
            return MS_ERR_NOMEM;
        int n = SSL_read(t->ssl, out->data + out->len, (int)(out->cap - out->len));
        if (n > 0) {
            out->len += (size_t)n;
            continue;
        }
        int e = SSL_get_error(t->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return 0;
        if (e == SSL_ERROR_ZERO_RETURN) {
            snprintf(err, errlen, "TLS: the server closed the session");
            return MS_ERR_IO;
        }
        ssl_errors(err, errlen, "TLS read failed");
        return MS_ERR_IO;
    }
}

int cql__tls_write(cql_tls *t, const void *p, size_t n)
{
    while (n > 0) {
        int w = SSL_write(t->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
        if (w <= 0) {
            ERR_clear_error();
            return MS_ERR_IO;
        }
        p = (const uint8_t *)p + w;
        n -= (size_t)w;
    }
    return 0;
}

int cql__tls_drain(cql_tls *t, cql_buf *out)
{
    size_t pending;
    while ((pending = BIO_ctrl_pending(t->wbio)) > 0) {
        if (cql_buf_reserve(out, pending) < 0)
            return MS_ERR_NOMEM;
        int n = BIO_read(t->wbio, out->data + out->len, (int)pending);
        if (n <= 0)
            break;
        out->len += (size_t)n;
    }
    return 0;
}
