/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status.h - building cql_status values (errors are values, made once).
 */
#ifndef MS_CQL_STATUS_H
#define MS_CQL_STATUS_H

#include "msgstore/cql.h"

/* The ms_err code for a CQL server error code. */
int cql__ms_code(int32_t server_code);

/* Clears st to a success (code 0, server_code -1). */
void cql__status_ok(cql_status *st);

/* Sets a client-side error: code, host (may be NULL) and a formatted message. */
void cql__status_set(cql_status *st, int code, const char *host, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Sets a server error with its details; the message names host and the error.
 * rate_limited: e->code is the rate-limit code the connection negotiated
 * (ScyllaDB's SCYLLA_RATE_LIMIT_ERROR): the status becomes MS_ERR_RATE_LIMITED.
 */
void cql__status_server(cql_status *st, const cql_error *e, const char *host, bool rate_limited);

#endif
