/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth.h - bearer tokens for the API (MSGSTORE_API_TOKENS, MSGSTORE_API_TOKEN_FILE).
 *
 * Tokens are kept only as SHA-256 digests; a presented token is hashed and
 * compared with every digest in constant time (no early exit, no length
 * leak), so timing reveals neither a token nor how much of it matched.
 * Nothing here logs a token.
 */
#ifndef MS_SERVER_AUTH_H
#define MS_SERVER_AUTH_H

#include "core/config.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct auth_tokens auth_tokens;

/*
 * Loads the tokens of cfg: the comma-separated MSGSTORE_API_TOKENS and the
 * lines of MSGSTORE_API_TOKEN_FILE (blank lines and lines starting with '#'
 * skipped, surrounding spaces trimmed). Returns 0 and *out (free with
 * auth_free; it may hold zero tokens), or MS_ERR_INVALID with a message in
 * err (unreadable file, a token shorter than 16 characters or with spaces or
 * control characters), or MS_ERR_NOMEM.
 */
int auth_load(const ms_config *cfg, auth_tokens **out, char *err, size_t errlen);

/*
 * Loads the comma-separated tokens of list (origin names it in messages,
 * e.g. "MSGSTORE_OPS_TOKENS"), with the same rules. Returns 0 and *out (free
 * with auth_free), MS_ERR_INVALID (err filled) or MS_ERR_NOMEM.
 */
int auth_load_list(const char *list, const char *origin, auth_tokens **out, char *err,
                   size_t errlen);

/* out = SHA-256 of p[0..n) (32 bytes; the algorithm fetched once per process). */
void auth_sha256(const void *p, size_t n, unsigned char out[32]);

/* Number of tokens loaded. */
size_t auth_count(const auth_tokens *a);

/*
 * Checks an Authorization header value ("Bearer <token>"; the scheme is
 * case-insensitive). Returns 0 when it carries a known token,
 * MS_ERR_UNAUTHORIZED when it is missing (header NULL), malformed or unknown.
 */
int auth_check(const auth_tokens *a, const char *header, size_t len);

/*
 * Finds the token of an Authorization header value ("Bearer <token>", the
 * scheme case-insensitive, spaces around the token trimmed): 0 and *tok,
 * *toklen pointing into h, or MS_ERR_UNAUTHORIZED (NULL, another scheme,
 * empty).
 */
int auth_bearer(const char *h, size_t len, const char **tok, size_t *toklen);

/* The index of token tok among the loaded ones (constant time), or -1. */
int auth_find(const auth_tokens *a, const char *tok, size_t len);

void auth_free(auth_tokens *a);

#endif
