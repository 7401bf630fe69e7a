/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msgstore/store_backup.h - online backup and restore of the embedded
 * (SQLite) store, for `msgstore backup` and `msgstore restore`.
 *
 * A backup is one SQLite file (journal mode DELETE: no -wal beside it) with
 * the store's schema. It is taken through SQLite's online backup API from a
 * read transaction held for the whole copy: the copy is the snapshot of the
 * moment it started, every write committed before that moment is in it, and
 * writers are never blocked (WAL mode: a reader only keeps the WAL from
 * being checkpointed past its snapshot until it ends). The pages are copied
 * in steps with a pause between them, so the backup shares the disk with a
 * serving process. Before success is reported, the copy passes
 * `PRAGMA integrity_check` and holds the same number of rows in every table
 * as the snapshot.
 *
 * A store in use: a process that opened the store (store_open on SQLite)
 * holds a shared lock (flock) on PATH-lock until store_close; restore takes
 * it exclusively, so it refuses a file a server holds, and a server does not
 * start on a file being restored.
 *
 * Every function returns 0 or a negative ms_err code with a sentence for
 * humans in err; on failure nothing is changed (the output is written to a
 * temporary file next to it and renamed into place only at the end).
 */
#ifndef MSGSTORE_STORE_BACKUP_H
#define MSGSTORE_STORE_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msgstore/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STORE_BACKUP_MAX_TABLES 64

/** Called after each step with the pages copied so far and the total. */
typedef void (*store_backup_progress_fn)(uint64_t done, uint64_t total, void *ctx);

typedef struct store_backup_options {
    bool force;     /* replace an existing output file (restore: a store nobody holds) */
    int step_pages; /* pages copied per step (<= 0: 256) */
    int pause_ms;   /* pause between steps (< 0: 0; default 0 from memset; CLI: 2) */
    store_backup_progress_fn progress; /* optional */
    void *progress_ctx;
} store_backup_options;

/** What was copied and checked. */
typedef struct store_backup_report {
    int schema_version;
    uint64_t pages, page_size; /* of the copy */
    uint64_t bytes;            /* size of the output file */
    uint64_t messages;         /* rows of messages */
    int steps;
    size_t ntables;
    struct {
        char name[64];
        int64_t rows;
    } tables[STORE_BACKUP_MAX_TABLES]; /* every ordinary table, in name order */
    double seconds;
} store_backup_report;

/**
 * Copies the store at src_path (a msgstore SQLite file, possibly being
 * served) to dst_path. Fails with MS_ERR_NOT_FOUND (no such src),
 * MS_ERR_INVALID (src is not a msgstore store, src and dst are the same
 * file), MS_ERR_CONFLICT (dst exists and !force), MS_ERR_IO, or
 * MS_ERR_INTERNAL (the copy failed its checks: it is removed).
 */
int store_sqlite_backup(const char *src_path, const char *dst_path, const store_backup_options *opt,
                        store_backup_report *rep, char *err, size_t errlen);

/**
 * Restores the backup at backup_path as the store at dst_path. Checks the
 * backup first (a msgstore store whose schema version is this binary's,
 * integrity_check). Refuses (MS_ERR_CONFLICT) a dst that a running process
 * holds (always) or that exists (unless opt->force); MS_ERR_NOT_FOUND for a
 * missing backup, MS_ERR_INVALID for a backup that is not a msgstore store,
 * MS_ERR_UNPROCESSABLE for a schema version other than the binary's.
 */
int store_sqlite_restore(const char *backup_path, const char *dst_path,
                         const store_backup_options *opt, store_backup_report *rep, char *err,
                         size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
