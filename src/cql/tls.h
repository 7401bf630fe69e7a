/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls.h - TLS for CQL connections with OpenSSL memory BIOs: libuv moves the
 * ciphertext, OpenSSL never touches the socket. Verification is on by
 * default: the certificate chain against the CA file (or the system store),
 * and the host name or IP address we connected to.
 */
#ifndef MS_CQL_TLS_H
#define MS_CQL_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "msgstore/cql_value.h" /* cql_buf */

typedef struct cql_tls_cfg {
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    bool verify_peer;
    bool verify_hostname;
} cql_tls_cfg;

/*
 * Creates a client context (TLS 1.2+). Returns 0, or MS_ERR_INVALID with a
 * message in err (unreadable CA/certificate/key, key not matching).
 * Free with SSL_CTX_free.
 */
int cql__tls_ctx_new(const cql_tls_cfg *cfg, SSL_CTX **out, char *err, size_t errlen);

/* One connection's TLS state. */
typedef struct cql_tls {
    SSL *ssl;
    BIO *rbio; /* network -> OpenSSL */
    BIO *wbio; /* OpenSSL -> network */
    bool handshake_done;
} cql_tls;

/*
 * Starts a client session for a connection to host (a name or an IP
 * literal; used for SNI and verification). Returns 0 or MS_ERR_NOMEM /
 * MS_ERR_INVALID.
 */
int cql__tls_start(cql_tls *t, SSL_CTX *ctx, const char *host, bool verify_hostname);
/* Frees the SSL object and its BIOs; t is zeroed (free again: nothing). */
void cql__tls_free(cql_tls *t);

/*
 * Advances the handshake. Returns 1 when done, 0 when more bytes are needed
 * (after sending what cql__tls_drain gives), or MS_ERR_IO with a message
 * (verification failures are named).
 */
int cql__tls_handshake(cql_tls *t, char *err, size_t errlen);

/* Feeds received ciphertext. Returns 0 or MS_ERR_NOMEM. */
int cql__tls_feed(cql_tls *t, const void *p, size_t n);

/*
 * Decrypts what is available, appending plaintext to out. Returns 0, or
 * MS_ERR_IO (alert, close_notify, corrupt data) with a message.
 */
int cql__tls_read(cql_tls *t, cql_buf *out, char *err, size_t errlen);

/* Encrypts plaintext (queued into the write BIO). Returns 0 or MS_ERR_IO. */
int cql__tls_write(cql_tls *t, const void *p, size_t n);

/* Moves pending ciphertext to out. Returns 0 or MS_ERR_NOMEM. */
int cql__tls_drain(cql_tls *t, cql_buf *out);

#endif
