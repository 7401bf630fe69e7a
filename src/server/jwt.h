/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jwt.h - user tokens: JSON Web Tokens (RFC 7519) in compact JWS form,
 * verified with OpenSSL.
 *
 * Keys (settings): an HS256 secret (MSGSTORE_JWT_SECRET or _FILE) and/or a
 * PEM public key (MSGSTORE_JWT_PUBLIC_KEY_FILE): Ed25519 for alg EdDSA, RSA
 * for RS256. A token's alg picks the key of its own kind and nothing else:
 * "none" is refused, and an HS256 token is never checked against the public
 * key's bytes (the HS/RS confusion attack), an RS256 token never against the
 * secret.
 *
 * Claims: sub (the user id, in the store's id format) and exp are required;
 * nbf, aud (checked against MSGSTORE_JWT_AUDIENCE when that is set),
 * channels (a list of channel ids, or "*": every channel; absent: none) and
 * scope ("read", "write", "read write", or a list of them; absent: both)
 * are optional. exp and nbf get MSGSTORE_JWT_LEEWAY of clock leeway.
 * Nothing here logs or returns the token.
 */
#ifndef MS_SERVER_JWT_H
#define MS_SERVER_JWT_H

#include "core/config.h"

#include <msgstore/id.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jwt_keys jwt_keys;

enum { JWT_SCOPE_READ = 1, JWT_SCOPE_WRITE = 2 };

/* What a valid token says. channels is malloc'd (jwt_claims_clear). */
typedef struct jwt_claims {
    ms_xid sub;
    int64_t exp; /* Unix seconds */
    bool all_channels;
    ms_xid *channels;
    size_t nchannels;
    unsigned scope; /* JWT_SCOPE_* bits */
} jwt_claims;

/*
 * Loads the keys of cfg. Returns 0 and *out (NULL when no key is
 * configured: user tokens are off), or MS_ERR_INVALID with a message in err
 * (unreadable file, a secret shorter than 32 bytes, a key that is neither
 * Ed25519 nor RSA of at least 2048 bits), or MS_ERR_NOMEM.
 */
int jwt_keys_load(const ms_config *cfg, jwt_keys **out, char *err, size_t errlen);

/* True when tok (len bytes) has the shape of a JWT: three base64url parts. */
bool jwt_looks_like(const char *tok, size_t len);

/*
 * Verifies tok at Unix time now_s and reads its claims, ids in format fmt.
 * Returns 0 and fills *out, or MS_ERR_UNAUTHORIZED with *why set to a
 * static reason for the client ("the token has expired"...), or
 * MS_ERR_NOMEM. Thread-safe: tokens verified before are kept (by their
 * SHA-256, at most 1024, least recently used reused) and not verified again
 * while they have not expired.
 */
int jwt_verify(jwt_keys *k, ms_id_format fmt, const char *tok, size_t len, int64_t now_s,
               jwt_claims *out, const char **why);

void jwt_claims_clear(jwt_claims *c);

void jwt_keys_free(jwt_keys *k);

#endif
