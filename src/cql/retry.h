/* SPDX-License-Identifier: Apache-2.0 */
/*
 * retry.h - backoff delays (retries, reconnection) and the retry decision for
 * a failed attempt.
 */
#ifndef MS_CQL_RETRY_H
#define MS_CQL_RETRY_H

#include "msgstore/cql.h"

#include <stdbool.h>
#include <stdint.h>

/* A small fast PRNG (xorshift64*); *state must be non-zero. */
uint64_t cql__rand(uint64_t *state);

/* A non-zero seed from the clock, the thread and an address. */
uint64_t cql__rand_seed(void);

/*
 * The delay before retry or reconnection number attempt (0 = the first one
 * after the initial failure), in milliseconds, or -1 when the policy allows no
 * more attempts (max_attempts > 0 counts the attempts after the first try).
 *   exponential, full jitter:  uniform in [0, min(cap, base * 2^attempt)]
 *   exponential, equal jitter: d/2 + uniform in [0, d/2], d as above
 *   constant:                  base
 */
int64_t cql__backoff_delay(const cql_backoff *p, int attempt, uint64_t *rng);

/* What to do with a failed attempt. */
typedef enum cql_retry_action {
    CQL_RETRY_FAIL = 0,      /* give the error to the caller */
    CQL_RETRY_NEXT_HOST = 1, /* try the next host of the plan */
    CQL_RETRY_SAME_HOST = 2, /* try the same host again (after the backoff) */
} cql_retry_action;

/* How an attempt failed, as far as the retry policy cares. */
typedef enum cql_failure_kind {
    CQL_FAIL_NOT_SENT = 0,       /* never written to a socket: always safe to retry */
    CQL_FAIL_CONNECTION = 1,     /* the connection broke after it may have been written */
    CQL_FAIL_CLIENT_TIMEOUT = 2, /* no answer in time (may have been applied) */
    CQL_FAIL_SERVER = 3,         /* the server answered with an ERROR; see server_code */
} cql_failure_kind;

/*
 * Decides on a failed attempt. idempotent: the statement may be applied twice
 * with the same result (never true for counter updates or non-idempotent
 * writes). Errors that say nothing about the host or the data (syntax,
 * invalid, unauthorized, already exists...) are never retried. The attempt
 * budget is checked by the caller, not here.
 */
cql_retry_action cql__retry_decide(cql_failure_kind kind, int server_code, bool idempotent);

#endif
