/* SPDX-License-Identifier: Apache-2.0 */
#include "core/snowflake.h"
#include "core/error.h"

#include <time.h>

uint64_t ms_clock_realtime_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int ms_snowflake_init(ms_snowflake *g, uint64_t epoch_ms, uint32_t worker_id, uint32_t max_wait_ms,
                      ms_clock_fn clock, void *clock_ctx)
{
    if (worker_id > MS_SNOWFLAKE_MAX_WORKER)
        return MS_ERR_INVALID;
    g->clock = clock ? clock : ms_clock_realtime_ms;
    g->clock_ctx = clock_ctx;
    uint64_t now = g->clock(g->clock_ctx);
    if (epoch_ms > now || now - epoch_ms > MS_SNOWFLAKE_MAX_TIME)
        return MS_ERR_INVALID;
    g->epoch_ms = epoch_ms;
    g->worker_id = worker_id;
    g->max_wait_ms = max_wait_ms;
    atomic_init(&g->_state, 0);
    return 0;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int ms_snowflake_next(ms_snowflake *g, uint64_t *out)
{
    uint64_t waited = 0;
    uint64_t state = atomic_load_explicit(&g->_state, memory_order_relaxed);
    for (;;) {
        uint64_t wall = g->clock(g->clock_ctx);
        uint64_t now = wall > g->epoch_ms ? wall - g->epoch_ms : 0;
        if (now > MS_SNOWFLAKE_MAX_TIME)
            return MS_ERR_CLOCK;
        uint64_t last_ms = state >> MS_SNOWFLAKE_SEQ_BITS;
        uint64_t next;
        if (now > last_ms) {
            next = now << MS_SNOWFLAKE_SEQ_BITS;
        } else {
            /* Same millisecond, or the clock stepped back: continue the
             * sequence of the last millisecond. Only when it is exhausted
             * would the next id move to a millisecond the clock has not
             * reached; then wait for the clock, up to max_wait_ms. */
            next = state + 1;
            uint64_t next_ms = next >> MS_SNOWFLAKE_SEQ_BITS;
            if (next_ms > last_ms && next_ms > now) {
                uint64_t behind = next_ms - now;
                if (waited + behind > g->max_wait_ms)
                    return MS_ERR_CLOCK;
                sleep_ms(behind);
                waited += behind;
                state = atomic_load_explicit(&g->_state, memory_order_relaxed);
                continue;
            }
        }
        if (atomic_compare_exchange_weak_explicit(&g->_state, &state, next, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            uint64_t ms = next >> MS_SNOWFLAKE_SEQ_BITS;
            uint64_t seq = next & MS_SNOWFLAKE_MAX_SEQ;
            *out = (ms << MS_SNOWFLAKE_TIME_SHIFT) |
                   ((uint64_t)g->worker_id << MS_SNOWFLAKE_SEQ_BITS) | seq;
            return 0;
        }
        /* state was reloaded by the failed CAS; try again */
    }
}

uint64_t ms_snowflake_from_unix_ms(uint64_t unix_ms, uint64_t epoch_ms)
{
    if (unix_ms <= epoch_ms)
        return 0;
    uint64_t t = unix_ms - epoch_ms;
    if (t > MS_SNOWFLAKE_MAX_TIME)
        t = MS_SNOWFLAKE_MAX_TIME;
    return t << MS_SNOWFLAKE_TIME_SHIFT;
}
