/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snowflake.h - 64-bit time-ordered ids, Discord style.
 *
 *   bit 63..22  milliseconds since the epoch (42 bits, ~139 years)
 *   bit 21..12  worker id (10 bits, 0..1023)
 *   bit 11..0   sequence within the millisecond (12 bits, 4096 ids/ms)
 *
 * Ids from one generator are unique and strictly increasing across all
 * threads (one lock-free atomic state). When the clock steps back, ids go on
 * from the last millisecond's sequence; when 4096 ids were issued in one
 * millisecond, the generator waits for the clock to reach the next one, up
 * to max_wait_ms; past that it fails with MS_ERR_CLOCK rather than issue a
 * duplicate or run ahead of the clock.
 *
 * Messages are partitioned by 10-day buckets of the id's time: bucket =
 * (ms since epoch) / MS_BUCKET_MS.
 */
#ifndef MS_CORE_SNOWFLAKE_H
#define MS_CORE_SNOWFLAKE_H

#include <stdatomic.h>
#include <stdint.h>

#define MS_SNOWFLAKE_EPOCH_DISCORD 1420070400000ULL /* 2015-01-01T00:00:00Z */
#define MS_SNOWFLAKE_TIME_BITS     42
#define MS_SNOWFLAKE_WORKER_BITS   10
#define MS_SNOWFLAKE_SEQ_BITS      12
#define MS_SNOWFLAKE_MAX_WORKER    ((1u << MS_SNOWFLAKE_WORKER_BITS) - 1)
#define MS_SNOWFLAKE_MAX_SEQ       ((1u << MS_SNOWFLAKE_SEQ_BITS) - 1)
#define MS_SNOWFLAKE_TIME_SHIFT    (MS_SNOWFLAKE_WORKER_BITS + MS_SNOWFLAKE_SEQ_BITS)
#define MS_SNOWFLAKE_MAX_TIME      ((1ULL << MS_SNOWFLAKE_TIME_BITS) - 1)
#define MS_BUCKET_MS               (10ULL * 24 * 60 * 60 * 1000) /* 10 days */

/* Returns the current wall-clock time in Unix milliseconds. */
typedef uint64_t (*ms_clock_fn)(void *ctx);

typedef struct ms_snowflake {
    uint64_t epoch_ms;    /* Unix ms of id time 0 */
    uint32_t worker_id;   /* 0..1023 */
    uint32_t max_wait_ms; /* how long next() may wait for the clock */
    ms_clock_fn clock;    /* wall clock; tests inject their own */
    void *clock_ctx;
    /* (ms since epoch << 12 | sequence) of the last id issued */
    _Atomic uint64_t _state;
} ms_snowflake;

/*
 * Initializes a generator. epoch_ms is a Unix time in ms (use
 * MS_SNOWFLAKE_EPOCH_DISCORD), worker_id 0..1023, max_wait_ms how long next()
 * may wait for a clock that stepped back (e.g. 2000). clock may be NULL for
 * the real clock (CLOCK_REALTIME). Returns MS_ERR_INVALID when worker_id is
 * out of range or the epoch is in the future or more than 2^42 ms ago.
 */
int ms_snowflake_init(ms_snowflake *g, uint64_t epoch_ms, uint32_t worker_id, uint32_t max_wait_ms,
                      ms_clock_fn clock, void *clock_ctx);

/*
 * Issues the next id into *out. Thread-safe and lock-free. Returns 0, or
 * MS_ERR_CLOCK when the clock is behind the last id by more than max_wait_ms
 * (nothing is issued then).
 */
int ms_snowflake_next(ms_snowflake *g, uint64_t *out);

/* The real clock: Unix milliseconds from CLOCK_REALTIME. */
uint64_t ms_clock_realtime_ms(void *ctx);

/* Field extraction. */
static inline uint64_t ms_snowflake_time(uint64_t id)
{
    return id >> MS_SNOWFLAKE_TIME_SHIFT;
}
static inline uint32_t ms_snowflake_worker(uint64_t id)
{
    return (uint32_t)(id >> MS_SNOWFLAKE_SEQ_BITS) & MS_SNOWFLAKE_MAX_WORKER;
}
static inline uint32_t ms_snowflake_seq(uint64_t id)
{
    return (uint32_t)id & MS_SNOWFLAKE_MAX_SEQ;
}

/* Unix ms of an id, given the generator's epoch. */
static inline uint64_t ms_snowflake_unix_ms(uint64_t id, uint64_t epoch_ms)
{
    return ms_snowflake_time(id) + epoch_ms;
}

/*
 * The smallest id at Unix time unix_ms (worker 0, sequence 0): every id made
 * at or after unix_ms is >= it, every id made before is < it. Times before
 * the epoch give 0; times past the 42-bit range give the largest time.
 * Used to page by time ("messages before 2024-01-01").
 */
uint64_t ms_snowflake_from_unix_ms(uint64_t unix_ms, uint64_t epoch_ms);

/* The 10-day bucket of an id. */
static inline uint32_t ms_bucket_of(uint64_t id)
{
    return (uint32_t)(ms_snowflake_time(id) / MS_BUCKET_MS);
}

/* The smallest and the largest id that fall in a bucket. */
static inline uint64_t ms_bucket_first_id(uint32_t bucket)
{
    return ((uint64_t)bucket * MS_BUCKET_MS) << MS_SNOWFLAKE_TIME_SHIFT;
}
static inline uint64_t ms_bucket_last_id(uint32_t bucket)
{
    return ms_bucket_first_id(bucket + 1) - 1;
}

#endif
