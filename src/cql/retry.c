/* SPDX-License-Identifier: Apache-2.0 */
/* retry.c - backoff delays and retry decisions (see retry.h). */
#include "cql/retry.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

uint64_t cql__rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

uint64_t cql__rand_seed(void)
{
    static _Atomic uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t s = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)ts.tv_sec;
    s ^= (uint64_t)(uintptr_t)&ts;
    s ^= (uint64_t)pthread_self() * 0xBF58476D1CE4E5B9ULL;
    s += atomic_fetch_add(&counter, 1) * 0x94D049BB133111EBULL;
    return s ? s : 0x853c49e6748fea9bULL;
}

int64_t cql__backoff_delay(const cql_backoff *p, int attempt, uint64_t *rng)
{
    if (attempt < 0)
        attempt = 0;
    if (p->max_attempts > 0 && attempt >= p->max_attempts)
        return -1;
    int64_t base = p->base_ms < 0 ? 0 : p->base_ms;
    int64_t cap = p->cap_ms < base ? base : p->cap_ms;
    if (p->kind == CQL_BACKOFF_CONSTANT)
        return base;
    int64_t d = base;
    for (int i = 0; i < attempt && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    if (d <= 0)
        return 0;
    switch (p->jitter) {
    case CQL_JITTER_NONE:
        return d;
    case CQL_JITTER_EQUAL:
        return d / 2 + (int64_t)(cql__rand(rng) % (uint64_t)(d - d / 2 + 1));
    case CQL_JITTER_FULL:
    default:
        return (int64_t)(cql__rand(rng) % (uint64_t)(d + 1));
    }
}

cql_retry_action cql__retry_decide(cql_failure_kind kind, int server_code, bool idempotent)
{
    switch (kind) {
    case CQL_FAIL_NOT_SENT:
        return CQL_RETRY_NEXT_HOST;
    case CQL_FAIL_CONNECTION:
    case CQL_FAIL_CLIENT_TIMEOUT:
        return idempotent ? CQL_RETRY_NEXT_HOST : CQL_RETRY_FAIL;
    case CQL_FAIL_SERVER:
        break;
    }
    switch (server_code) {
    case 0x1000: /* Unavailable: checked before anything is executed */
    case 0x1002: /* Is_bootstrapping: the coordinator refused it */
        return CQL_RETRY_NEXT_HOST;
    case 0x1001: /* Overloaded: may come after some replicas got the write */
    case 0x1100: /* Write_timeout */
    case 0x1200: /* Read_timeout */
    case 0x0000: /* Server error */
        return idempotent ? CQL_RETRY_NEXT_HOST : CQL_RETRY_FAIL;
    default:
        return CQL_RETRY_FAIL;
    }
}
