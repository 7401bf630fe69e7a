/* SPDX-License-Identifier: Apache-2.0 */
/* clock.c - monotonic time and client-side timestamps (see clock.h). */
#include "cql/clock.h"

#include <time.h>

int64_t cql__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cql__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t cql__tsgen_next_at(cql_tsgen *g, int64_t wall_us)
{
    int64_t last = atomic_load_explicit(&g->last, memory_order_relaxed);
    for (;;) {
        int64_t next = wall_us > last ? wall_us : last + 1;
        if (atomic_compare_exchange_weak_explicit(&g->last, &last, next, memory_order_relaxed,
                                                  memory_order_relaxed))
            return next;
    }
}

int64_t cql__tsgen_next(cql_tsgen *g)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return cql__tsgen_next_at(g, (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}
