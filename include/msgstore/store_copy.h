/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msgstore/store_copy.h - copy the embedded (SQLite) store into a
 * ScyllaDB/Cassandra keyspace, for `msgstore copy --to-cluster`.
 *
 * Every table is copied row by row with the ScyllaDB backend's own
 * statements (src/store/scylla_internal.h), keys and timestamps as they are:
 * message ids, edit history, soft deletes, reactions, pins, read positions,
 * channel metadata, Telegram mappings and sync state, nonces. Every write is
 * idempotent (upserts, IF NOT EXISTS claims); counters (messages per bucket,
 * reactions per emoji) are set by adding the difference between the source's
 * count and what the cluster holds, so running the copy again never counts
 * twice. A checkpoint file records the last table and key fully written
 * (after the cluster acknowledged every write before it): a run stopped at
 * any point (SIGKILL included) continues from there. A run after a finished
 * pass catches up: it copies the rows created or changed (messages, edits,
 * deletes, reactions, pins, read positions, Telegram mappings, nonces) since
 * that pass began, less a minute, and every count again.
 *
 * At the end the copy verifies: per channel, the message count and last
 * message id on both sides; for a sample of messages, their fields, edit
 * history length and reaction counts; every pin count and read position of
 * the sampled channels.
 */
#ifndef MSGSTORE_STORE_COPY_H
#define MSGSTORE_STORE_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msgstore/error.h"
#include "msgstore/store_config.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Where a copy is, for progress displays. */
typedef struct store_copy_progress {
    const char *table;    /* the table being copied, "verify" at the end */
    uint64_t rows, total; /* rows of that table written, and its rows in the source */
    uint64_t messages;    /* messages written so far in this run */
    uint64_t messages_total;
    double messages_per_s; /* over this run */
    double eta_s;          /* until the messages are copied; < 0: unknown */
} store_copy_progress;

typedef void (*store_copy_progress_fn)(const store_copy_progress *p, void *ctx);

typedef struct store_copy_options {
    const char *checkpoint; /* checkpoint file; NULL: MSGSTORE_SQLITE_PATH + ".copy-checkpoint" */
    bool from_start;        /* ignore the checkpoint: copy everything again (the final pass) */
    bool verify_only;       /* copy nothing, only verify */
    int in_flight;          /* writes in flight (<= 0: 128) */
    size_t sample;          /* messages compared by the verify step (0: 1000) */
    bool margin_set;        /* catch_up_margin_ms is given (else 60 s) */
    int64_t catch_up_margin_ms;      /* a catch-up copies rows changed since the last pass began,
                                        less this (writes accepted before, committed after) */
    store_copy_progress_fn progress; /* optional, called about once a second */
    void *progress_ctx;
} store_copy_options;

typedef struct store_copy_report {
    bool resumed;        /* a checkpoint of a stopped pass was found: it went on */
    bool caught_up;      /* the last pass had finished: this one copied what changed */
    int64_t since_ms;    /* the rows copied changed at or after this (Unix ms); 0: all */
    uint64_t rows;       /* rows written in this run, all tables */
    uint64_t messages;   /* of which messages */
    uint64_t channels;   /* channels verified */
    uint64_t sampled;    /* messages compared */
    uint64_t mismatches; /* differences found by the verify step */
    char first_mismatch[512];
    double seconds;
} store_copy_report;

/**
 * Copies cfg's SQLite store (cfg->sqlite_path) into the keyspace of cfg's
 * SCYLLA_* settings (migrated first), then verifies. Returns 0 when the copy
 * verified; MS_ERR_CONFLICT when the verify step found differences
 * (rep->first_mismatch); MS_ERR_UNAVAILABLE / MS_ERR_TIMEOUT when the cluster
 * cannot be reached; MS_ERR_NOT_FOUND / MS_ERR_INVALID for a missing or
 * foreign source; MS_ERR_IO. err gets a sentence for humans.
 */
int store_copy_to_cluster(const store_config *cfg, const store_copy_options *opt,
                          store_copy_report *rep, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
