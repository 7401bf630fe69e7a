/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ratelimit.h - token buckets per caller (a user token's sub, a service
 * token), shared by every worker thread.
 *
 * One table for the whole instance rather than one per worker: SO_REUSEPORT
 * spreads a client's connections over the workers unevenly, so per-worker
 * buckets with the rate divided would throttle a client on one connection
 * to rate / workers. The table is set-associative: a key hashes to a set of
 * 8 slots under that set's own mutex (no global lock; two workers contend
 * only when their callers share a set). Memory is fixed at creation: when
 * a set is full the least recently used bucket is reused, so a caller
 * unseen for a while starts again with a full bucket, which is what its
 * bucket would hold anyway once refilled.
 */
#ifndef MS_SERVER_RATELIMIT_H
#define MS_SERVER_RATELIMIT_H

#include <msgstore/id.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rl_table rl_table;

/* A table of about max_keys buckets (rounded up to a power of two, at least 64). NULL on OOM. */
rl_table *rl_new(size_t max_keys);

/*
 * Takes one token from the bucket of (kind, key), which refills at rate
 * tokens per second up to burst. Returns 0 when a token was there, or the
 * whole seconds (>= 1) until one will be. Thread-safe.
 */
int rl_take(rl_table *t, unsigned kind, ms_xid key, double rate, double burst, uint64_t now_ns);

void rl_free(rl_table *t);

#endif
