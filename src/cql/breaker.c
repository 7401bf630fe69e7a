/* SPDX-License-Identifier: Apache-2.0 */
/* breaker.c - circuit breaker state machine (see breaker.h). */
#include "cql/breaker.h"

void cql__breaker_init(cql_breaker *b, int threshold, int64_t reset_ms)
{
    b->threshold = threshold < 1 ? 1 : threshold;
    b->reset_ms = reset_ms < 1 ? 1 : reset_ms;
    b->failures = 0;
    b->state = CQL_BREAKER_CLOSED;
    b->opened_at_ms = 0;
    b->probe_in_flight = false;
    b->probe_at_ms = 0;
    b->opens = 0;
}

static void open_now(cql_breaker *b, int64_t now_ms)
{
    b->state = CQL_BREAKER_OPEN;
    b->opened_at_ms = now_ms;
    b->probe_in_flight = false;
    b->opens++;
}

bool cql__breaker_allow(cql_breaker *b, int64_t now_ms)
{
    switch (b->state) {
    case CQL_BREAKER_CLOSED:
        return true;
    case CQL_BREAKER_OPEN:
        if (now_ms - b->opened_at_ms < b->reset_ms)
            return false;
        b->state = CQL_BREAKER_HALF_OPEN;
        b->probe_in_flight = true;
        b->probe_at_ms = now_ms;
        return true;
    case CQL_BREAKER_HALF_OPEN:
        if (b->probe_in_flight && now_ms - b->probe_at_ms < b->reset_ms)
            return false;
        b->probe_in_flight = true;
        b->probe_at_ms = now_ms;
        return true;
    }
    return false;
}

void cql__breaker_success(cql_breaker *b)
{
    b->failures = 0;
    b->state = CQL_BREAKER_CLOSED;
    b->probe_in_flight = false;
}

void cql__breaker_failure(cql_breaker *b, int64_t now_ms)
{
    switch (b->state) {
    case CQL_BREAKER_CLOSED:
        if (++b->failures >= b->threshold)
            open_now(b, now_ms);
        break;
    case CQL_BREAKER_HALF_OPEN:
        open_now(b, now_ms);
        break;
    case CQL_BREAKER_OPEN:
        /* Late failures of requests sent before it opened change nothing. */
        break;
    }
}

void cql__breaker_probe_cancelled(cql_breaker *b)
{
    if (b->state == CQL_BREAKER_HALF_OPEN)
        b->probe_in_flight = false;
}

cql_breaker_state cql__breaker_state(const cql_breaker *b, int64_t now_ms)
{
    if (b->state == CQL_BREAKER_OPEN && now_ms - b->opened_at_ms >= b->reset_ms)
        return CQL_BREAKER_HALF_OPEN;
    return b->state;
}

const char *cql_breaker_state_name(cql_breaker_state s)
{
    switch (s) {
    case CQL_BREAKER_CLOSED:
        return "closed";
    case CQL_BREAKER_OPEN:
        return "open";
    case CQL_BREAKER_HALF_OPEN:
        return "half_open";
    }
    return "unknown";
}
