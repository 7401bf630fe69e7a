/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msgstore/error.h - error codes shared by every layer and by the public
 * APIs (the CQL client of msgstore/cql.h, the store of msgstore/store.h).
 *
 * Functions return 0 or one of these negative codes; messages for humans are
 * built at the edge (CLI, HTTP) from ms_err_name() and context. The names are
 * stable: the HTTP API returns them as its "error.code".
 */
#ifndef MSGSTORE_ERROR_H
#define MSGSTORE_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ms_err {
    MS_OK = 0,
    MS_ERR_INVALID = -1,       /* bad input: maps to HTTP 400 */
    MS_ERR_NOT_FOUND = -2,     /* 404 */
    MS_ERR_CONFLICT = -3,      /* 409 */
    MS_ERR_TOO_LARGE = -4,     /* 413 */
    MS_ERR_UNPROCESSABLE = -5, /* 422: well-formed but not acceptable */
    MS_ERR_UNAUTHORIZED = -6,  /* 401 */
    MS_ERR_FORBIDDEN = -7,     /* 403 */
    MS_ERR_RATE_LIMITED = -8,  /* 429 */
    MS_ERR_UNAVAILABLE = -9,   /* 503: backend unreachable, breaker open */
    MS_ERR_TIMEOUT = -10,      /* 503/504: a deadline passed */
    MS_ERR_NOMEM = -11,
    MS_ERR_IO = -12,
    MS_ERR_CLOCK = -13,    /* the wall clock stepped back past the bound */
    MS_ERR_SHUTDOWN = -14, /* the component is closing */
    MS_ERR_INTERNAL = -15,
} ms_err;

/** Stable snake_case name of a code ("invalid_argument"); "unknown_error" for others. */
const char *ms_err_name(int code);

/** Short English description of a code ("invalid argument"). */
const char *ms_err_str(int code);

#ifdef __cplusplus
}
#endif

#endif
