/* SPDX-License-Identifier: Apache-2.0 */
/* status.c - cql_status helpers (see status.h). */
#include "cql/status.h"

#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int cql__ms_code(int32_t server_code)
{
    switch (server_code) {
    case CQL_ERR_BAD_CREDENTIALS:
        return MS_ERR_UNAUTHORIZED;
    case CQL_ERR_UNAUTHORIZED:
        return MS_ERR_FORBIDDEN;
    case CQL_ERR_SYNTAX:
    case CQL_ERR_INVALID:
    case CQL_ERR_CONFIG:
        return MS_ERR_INVALID;
    case CQL_ERR_ALREADY_EXISTS:
        return MS_ERR_CONFLICT;
    case CQL_ERR_UNAVAILABLE:
    case CQL_ERR_OVERLOADED:
    case CQL_ERR_IS_BOOTSTRAPPING:
        return MS_ERR_UNAVAILABLE;
    case CQL_ERR_READ_TIMEOUT:
    case CQL_ERR_WRITE_TIMEOUT:
    case CQL_ERR_CAS_WRITE_UNKNOWN:
        return MS_ERR_TIMEOUT;
    case CQL_ERR_SERVER:
        return MS_ERR_INTERNAL;
    default:
        return MS_ERR_IO; /* protocol, truncate, failures, function failure */
    }
}

void cql__status_ok(cql_status *st)
{
    /* field by field: this runs twice per request, the strings need only their first byte */
    st->code = 0;
    st->server_code = -1;
    st->consistency = 0;
    st->required = st->alive = st->received = st->block_for = 0;
    st->data_present = false;
    st->write_type[0] = '\0';
    st->host[0] = '\0';
    st->attempts = 0;
    st->warnings = 0;
    st->has_tracing = false;
    st->message[0] = '\0';
}

void cql__status_set(cql_status *st, int code, const char *host, const char *fmt, ...)
{
    int attempts = st->attempts;
    cql__status_ok(st);
    st->attempts = attempts;
    st->code = code;
    if (host)
        snprintf(st->host, sizeof(st->host), "%s", host);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->message, sizeof(st->message), fmt, ap);
    va_end(ap);
}

void cql__status_server(cql_status *st, const cql_error *e, const char *host, bool rate_limited)
{
    int attempts = st->attempts;
    cql__status_ok(st);
    st->attempts = attempts;
    st->code = rate_limited ? MS_ERR_RATE_LIMITED : cql__ms_code(e->code);
    st->server_code = e->code;
    st->consistency = e->consistency;
    st->required = e->required;
    st->alive = e->alive;
    st->received = e->received;
    st->block_for = e->block_for;
    st->data_present = e->data_present;
    size_t wl = e->write_type.len < sizeof(st->write_type) - 1 ? e->write_type.len
                                                               : sizeof(st->write_type) - 1;
    if (wl)
        memcpy(st->write_type, e->write_type.ptr, wl);
    st->write_type[wl] = '\0';
    if (host)
        snprintf(st->host, sizeof(st->host), "%s", host);
    snprintf(st->message, sizeof(st->message), "%s: %s: %.*s", host ? host : "server",
             rate_limited ? "Rate_limit_error" : cql_error_code_name(e->code),
             (int)(e->message.len > 200 ? 200 : e->message.len),
             e->message.ptr ? e->message.ptr : "");
}
