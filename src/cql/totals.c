/* SPDX-License-Identifier: Apache-2.0 */
/*
 * totals.c - a host's totals over the sessions of one name, for health
 * reports. Each session keeps the process-wide gauges
 * msgstore_cql_host_up and msgstore_cql_host_in_flight{session,host}
 * (session.c, pool.c, request.c); sessions of one name add into the same
 * gauge, which is one atomic read from any thread. The labels are built as
 * session.c builds them.
 */
#include "msgstore/cql.h"

#include "core/metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

void cql_host_totals_get(const char *session_name, const char *address, int port,
                         cql_host_totals *out)
{
    char lab[200];
    const char *name = session_name && session_name[0] ? session_name : "default";
    snprintf(lab, sizeof(lab),
             strchr(address, ':') ? "session=\"%.60s\",host=\"[%s]:%d\""
                                  : "session=\"%.60s\",host=\"%s:%d\"",
             name, address, port);
    ms_gauge *up = ms_gauge_get("msgstore_cql_host_up", lab,
                                "Sessions with a ready pool connection to the host");
    ms_gauge *fl =
        ms_gauge_get("msgstore_cql_host_in_flight", lab, "CQL requests in flight per host");
    out->sessions_up = atomic_load_explicit(&up->value, memory_order_relaxed);
    out->in_flight = atomic_load_explicit(&fl->value, memory_order_relaxed);
}
