/* SPDX-License-Identifier: Apache-2.0 */
/*
 * search.h - the search index of the ScyllaDB backend: PostgreSQL beside the
 * cluster, as the seed platform has it.
 *
 * One search_index per process (msgstore serve, tests, benchmarks) does two
 * jobs:
 *   indexer   a thread that drains the store's change log (table search_log,
 *             store.h) into PostgreSQL: it holds a PostgreSQL advisory lock
 *             per shard it drains (so every instance runs one and each shard
 *             has one drainer), reads each changed message's current state
 *             through the store, upserts or deletes its row (a tsvector with a
 *             GIN index) and moves the shard's checkpoint in the same
 *             transaction; then it trims the drained log entries. Crashing
 *             anywhere replays from the checkpoint: the upserts are
 *             idempotent and guarded by the message's version.
 *   provider  answers store_search (store_set_search_provider) on threads of
 *             its own: one PostgreSQL query, then the hits' messages read back
 *             through the store (a message deleted since it was indexed is
 *             left out).
 * PostgreSQL being away stops neither: writes go on (the log grows), the
 * indexer reconnects and drains the backlog, /health says degraded
 * meanwhile, and searches fail with MS_ERR_UNAVAILABLE.
 *
 * Layering: search -> store, cql, libpq -> core. The server knows nothing of
 * it; `msgstore serve` wires its /health section and metrics.
 */
#ifndef MS_SEARCH_SEARCH_H
#define MS_SEARCH_SEARCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "msgstore/store.h"

typedef struct search_index search_index;

/*
 * Starts the index for store st (a ScyllaDB store) with cfg's
 * MSGSTORE_SEARCH_* settings, and attaches it as st's search provider.
 * PostgreSQL need not be up: the threads keep trying. Returns 0, or a
 * negative code with a message in err (MS_ERR_INVALID: no
 * MSGSTORE_SEARCH_PG_URL or not a ScyllaDB store; MS_ERR_UNAVAILABLE: the
 * change log cannot be read because the cluster cannot be reached).
 */
int search_index_open(const ms_config *cfg, store *st, search_index **out, char *err,
                      size_t errlen);

/* Detaches from the store (no search may be in flight) and stops the threads. NULL: no-op. */
void search_index_close(search_index *x);

/* What /health and /metrics show. */
typedef struct search_status {
    bool connected;        /* the indexer's PostgreSQL connection is up */
    char error[256];       /* the last failure, "" when none */
    int shards;            /* MSGSTORE_SEARCH_SHARDS */
    int shards_held;       /* of those, drained by this instance */
    double lag_seconds;    /* age of the oldest change not yet indexed (held shards) */
    uint64_t lag_messages; /* changes seen waiting (held shards; a lower bound when large) */
    uint64_t indexed;      /* changes applied by this instance */
} search_status;

void search_index_status(search_index *x, search_status *out);

/*
 * The /health section: {"backend": "postgresql", "connected", "error",
 * "lag_seconds", "lag_messages", "shards", "shards_held", "indexed"};
 * *degraded when PostgreSQL is away. Matches srv_health_section_fn.
 */
json_t *search_index_health(void *x, bool *degraded);

/*
 * Waits until every change logged so far in the shards this instance holds
 * is indexed, at most timeout_ms. 0 when caught up, MS_ERR_TIMEOUT otherwise
 * (tests, benchmarks).
 */
int search_index_wait(search_index *x, int64_t timeout_ms);

#endif
