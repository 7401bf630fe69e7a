/* SPDX-License-Identifier: Apache-2.0 */
/*
 * clock.h - time sources of the client: a monotonic clock for deadlines and
 * client-side timestamps (microseconds since the Unix epoch, strictly
 * increasing per generator even when the wall clock stands still or steps
 * back, as Cassandra's last-write-wins needs).
 */
#ifndef MS_CQL_CLOCK_H
#define MS_CQL_CLOCK_H

#include <stdatomic.h>
#include <stdint.h>

/* Monotonic milliseconds (arbitrary origin). */
int64_t cql__now_ms(void);
/* Monotonic microseconds (arbitrary origin). */
int64_t cql__now_us(void);

/* A timestamp generator; zero-initialise. Safe to share between threads. */
typedef struct cql_tsgen {
    _Atomic int64_t last;
} cql_tsgen;

/*
 * The next timestamp: the wall clock in microseconds, or last + 1 when the
 * clock has not moved past the previous value. Never returns the same value
 * twice for one generator.
 */
int64_t cql__tsgen_next(cql_tsgen *g);

/* Same, with the wall clock given (tests). */
int64_t cql__tsgen_next_at(cql_tsgen *g, int64_t wall_us);

#endif
