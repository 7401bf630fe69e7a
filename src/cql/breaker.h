/* SPDX-License-Identifier: Apache-2.0 */
/*
 * breaker.h - a circuit breaker per host.
 *
 *   closed --N consecutive failures--> open --reset timeout--> half-open
 *   half-open: exactly one probe request is let through;
 *              its success closes the breaker, its failure opens it again.
 *
 * Time is passed in (milliseconds, any monotonic origin) so the state machine
 * is deterministic in tests. Not thread-safe: a breaker belongs to one
 * session, on one loop thread.
 */
#ifndef MS_CQL_BREAKER_H
#define MS_CQL_BREAKER_H

#include "msgstore/cql.h" /* cql_breaker_state */

#include <stdbool.h>
#include <stdint.h>

typedef struct cql_breaker {
    int threshold;    /* consecutive failures that open it (>= 1) */
    int64_t reset_ms; /* time spent open before a probe is allowed */
    int failures;     /* consecutive failures while closed */
    cql_breaker_state state;
    int64_t opened_at_ms; /* when it last opened */
    bool probe_in_flight; /* half-open: the one probe is out */
    int64_t probe_at_ms;  /* when the probe was let through */
    uint64_t opens;       /* times it went to open (metrics) */
} cql_breaker;

/* A closed breaker; threshold < 1 is taken as 1, reset_ms < 1 as 1. */
void cql__breaker_init(cql_breaker *b, int threshold, int64_t reset_ms);

/*
 * Asks whether a request may go out now. Closed: yes. Open: no, until
 * reset_ms have passed; then it turns half-open and lets this one request
 * through as the probe. Half-open: no while the probe is out. A probe that
 * never reports for reset_ms is considered lost and another one is allowed.
 */
bool cql__breaker_allow(cql_breaker *b, int64_t now_ms);

/* Records a success: closes the breaker and clears the failure count. */
void cql__breaker_success(cql_breaker *b);

/*
 * Records a failure: in closed state counts it and opens at the threshold;
 * in half-open state (the probe failed) opens again with a fresh timeout.
 */
void cql__breaker_failure(cql_breaker *b, int64_t now_ms);

/* The probe ended without telling anything about the host (cancelled): allows another. */
void cql__breaker_probe_cancelled(cql_breaker *b);

/* The state as seen at now_ms: an open breaker whose timeout passed reports half-open. */
cql_breaker_state cql__breaker_state(const cql_breaker *b, int64_t now_ms);

#endif
