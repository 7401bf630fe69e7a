/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sqlite.c - the embedded backend: one SQLite file, one writer thread, a
 * small pool of reader threads.
 *
 * Durability: journal_mode=WAL with synchronous=FULL. In WAL mode FULL syncs
 * the WAL at every commit, so a committed transaction survives power loss;
 * NORMAL would only sync at checkpoints and could lose the last commits. The
 * cost is one fsync per commit, which group commit spreads over a batch: the
 * writer takes every write queued (up to sqlite_batch_max), runs each in its
 * own SAVEPOINT inside one BEGIN IMMEDIATE ... COMMIT, and answers them only
 * after COMMIT returned. One bad write (constraint, validation in SQL) rolls
 * back to its savepoint and fails alone; a failed COMMIT fails the batch.
 *
 * Reads run on reader threads with their own connections (WAL lets them run
 * while the writer writes), each inside a read transaction so a page that
 * takes two statements sees one snapshot. Nothing here runs on an event loop.
 */
#include "sqlite_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

typedef struct sq_backend {
    store_backend base;
    store__queue wq, rq;
    sq_conn writer;
    sq_conn *readers;
    int nreaders;
    int batch_max;
    int hold_fd; /* the file's in-use lock (store__sq_hold), -1 when none */
    pthread_t wthread;
    pthread_t *rthreads;
    int nrthreads; /* started */
    bool wstarted;
    _Atomic uint64_t batches, batched;
} sq_backend;

typedef struct reader_arg {
    sq_backend *b;
    sq_conn *c;
} reader_arg;

static const char *const sq_sql[SQ_NSTMT] = {
#define SQ_TEXT(name, sql) sql,
    SQ_STATEMENTS(SQ_TEXT)
#undef SQ_TEXT
};

/* ------------------------------------------------------------------ connections */

int store__sq_open_db(const char *path, bool create, sqlite3 **out, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open SQLite file %s: %s", path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return MS_ERR_IO;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_extended_result_codes(db, 1);
    static const char *const pragmas = "PRAGMA journal_mode=WAL;"
                                       "PRAGMA synchronous=FULL;"
                                       "PRAGMA foreign_keys=OFF;"
                                       "PRAGMA cache_size=-16384;"
                                       "PRAGMA temp_store=MEMORY;";
    char *msg = NULL;
    rc = sqlite3_exec(db, pragmas, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot set up SQLite file %s: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_close(db);
        return MS_ERR_IO;
    }
    *out = db;
    return 0;
}

sqlite3_stmt *store__sq_stmt(sq_conn *c, sq_stmt_id id)
{
    sqlite3_stmt *st = c->stmt[id];
    if (!st) {
        if (sqlite3_prepare_v3(c->db, sq_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
            SQLITE_OK) {
            MS_ERROR("store", "sqlite: cannot prepare statement %d: %s", (int)id,
                     sqlite3_errmsg(c->db));
            return NULL;
        }
        c->stmt[id] = st;
    } else {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    c->queries++;
    return st;
}

void store__sq_conn_close(sq_conn *c)
{
    for (int i = 0; i < SQ_NSTMT; i++) {
        if (c->stmt[i])
            sqlite3_finalize(c->stmt[i]);
        c->stmt[i] = NULL;
    }
    if (c->db)
        sqlite3_close(c->db);
    c->db = NULL;
}

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* ------------------------------------------------------------------ migrations */

int store__sq_schema_version(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM sqlite_master WHERE type='table' AND "
                           "name='schema_version'",
                           -1, &st, NULL) != SQLITE_OK)
        return MS_ERR_IO;
    int exists = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    if (!exists)
        return 0;
    if (sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM schema_version", -1, &st,
                           NULL) != SQLITE_OK)
        return MS_ERR_IO;
    int v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : MS_ERR_IO;
    sqlite3_finalize(st);
    return v;
}

/* BEGIN IMMEDIATE (two processes migrating at once serialize here), then the recorded checksum. */
static int sq_recorded(void *dbp, int version, char have[17], char *err, size_t errlen)
{
    sqlite3 *db = dbp;
    if (exec(db, "BEGIN IMMEDIATE") != SQLITE_OK) {
        snprintf(err, errlen, "cannot lock the database: %s", sqlite3_errmsg(db));
        return MS_ERR_IO;
    }
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "SELECT checksum FROM schema_version WHERE version=?1", -1, &st, NULL);
    sqlite3_bind_int(st, 1, version);
    int found = sqlite3_step(st) == SQLITE_ROW;
    if (found)
        snprintf(have, 17, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return found;
}

static void sq_skip(void *db)
{
    exec(db, "ROLLBACK");
}

/* The migration and its schema_version row, then COMMIT (the transaction of sq_recorded). */
static int sq_apply(void *dbp, const store_migration *m, const char *sum, char *err, size_t errlen)
{
    sqlite3 *db = dbp;
    char *msg = NULL;
    if (sqlite3_exec(db, m->text, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "migration %s failed: %s", m->name, msg ? msg : "?");
        sqlite3_free(msg);
        exec(db, "ROLLBACK");
        return MS_ERR_IO;
    }
    int step = store__sq_migration_step(db, m->name, err, errlen);
    if (step) {
        exec(db, "ROLLBACK");
        return step;
    }
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db,
                       "INSERT INTO schema_version(version, name, checksum, applied_at) "
                       "VALUES(?1, ?2, ?3, ?4)",
                       -1, &st, NULL);
    sqlite3_bind_int(st, 1, m->version);
    sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, sum, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)ms_clock_realtime_ms(NULL));
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE || exec(db, "COMMIT") != SQLITE_OK) {
        snprintf(err, errlen, "cannot record migration %s: %s", m->name, sqlite3_errmsg(db));
        exec(db, "ROLLBACK");
        return MS_ERR_IO;
    }
    return 0;
}

int store__sq_id_format(sqlite3 *db, ms_id_format *out)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    *out = MS_ID_INT64; /* a store from before the format was recorded */
    if (sqlite3_prepare_v2(db, "SELECT value FROM store_settings WHERE name='id_format'", -1, &st,
                           NULL) != SQLITE_OK) {
        rc = store__sq_schema_version(db) > 0 ? 0 : MS_ERR_NOT_FOUND; /* no table: none */
        sqlite3_finalize(st);
        return rc;
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        if (ms_id_format_parse((const char *)sqlite3_column_text(st, 0), out) != 0)
            rc = MS_ERR_INVALID;
    } else {
        rc = store__sq_schema_version(db) > 0 ? 0 : MS_ERR_NOT_FOUND;
    }
    sqlite3_finalize(st);
    return rc;
}

/* The recorded format, recording one first when there is none (store__migrator.id_format). */
static int sq_id_format(void *dbp, ms_id_format want, ms_id_format *have, char *err, size_t errlen)
{
    sqlite3 *db = dbp;
    if (exec(db, "CREATE TABLE IF NOT EXISTS store_settings (name TEXT PRIMARY KEY, value TEXT "
                 "NOT NULL)") != SQLITE_OK ||
        exec(db, "BEGIN IMMEDIATE") != SQLITE_OK) {
        snprintf(err, errlen, "cannot read the store's settings: %s", sqlite3_errmsg(db));
        return MS_ERR_IO;
    }
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM store_settings WHERE name='id_format'", -1, &st,
                       NULL);
    bool recorded = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    int rc = store__sq_id_format(db, have);
    if (rc == MS_ERR_NOT_FOUND || (rc == 0 && !recorded)) {
        /* record it: the configured format in a new store, int64 in one made before */
        if (rc == MS_ERR_NOT_FOUND)
            *have = want;
        sqlite3_prepare_v2(db, "INSERT INTO store_settings(name, value) VALUES('id_format', ?1)",
                           -1, &st, NULL);
        sqlite3_bind_text(st, 1, ms_id_format_name(*have), -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : MS_ERR_IO;
        sqlite3_finalize(st);
    } else if (rc == MS_ERR_INVALID) {
        snprintf(err, errlen, "the store's recorded id format is not uuid or int64");
    }
    if (rc == MS_ERR_IO)
        snprintf(err, errlen, "cannot record the store's id format: %s", sqlite3_errmsg(db));
    if (exec(db, rc ? "ROLLBACK" : "COMMIT") != SQLITE_OK && !rc) {
        snprintf(err, errlen, "cannot record the store's id format: %s", sqlite3_errmsg(db));
        rc = MS_ERR_IO;
    }
    return rc;
}

int store__sq_migrate_db(sqlite3 *db, const char *path, ms_id_format want,
                         store_migrate_progress_fn progress, void *ctx, int *applied, char *err,
                         size_t errlen)
{
    if (applied)
        *applied = 0;
    if (exec(db, "CREATE TABLE IF NOT EXISTS schema_version ("
                 " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                 " checksum TEXT NOT NULL, applied_at INTEGER NOT NULL)") != SQLITE_OK) {
        snprintf(err, errlen, "cannot create schema_version: %s", sqlite3_errmsg(db));
        return MS_ERR_IO;
    }
    char what[300];
    snprintf(what, sizeof what, "the SQLite file %s", path);
    store__migrator mg = {.db = db,
                          .recorded = sq_recorded,
                          .skip = sq_skip,
                          .apply = sq_apply,
                          .id_format = sq_id_format,
                          .what = what};
    return store__migrate_run(MS_BACKEND_SQLITE, &mg, want, progress, ctx, applied, err, errlen);
}

int store__sqlite_migrate_path(const char *path, ms_id_format want,
                               store_migrate_progress_fn progress, void *ctx, int *applied,
                               char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int rc = store__sq_open_db(path, true, &db, err, errlen);
    if (rc)
        return rc;
    rc = store__sq_migrate_db(db, path, want, progress, ctx, applied, err, errlen);
    sqlite3_close(db);
    return rc;
}

/* ------------------------------------------------------------------ threads */

static void fail_all(store_op *list, int code, const char *what)
{
    for (store_op *o = list; o; o = o->next) {
        if (o->status == 0)
            store__op_fail(o, code, "%s", what);
    }
}

static void done_all(store_op *list)
{
    while (list) {
        store_op *next = list->next;
        store__op_done(list);
        list = next;
    }
}

static void run_batch(sq_backend *b, store_op *batch, int n)
{
    sq_conn *c = &b->writer;
    sqlite3 *db = c->db;
    if (exec(db, "BEGIN IMMEDIATE") != SQLITE_OK) {
        MS_ERROR("store", "sqlite: BEGIN failed: %s", sqlite3_errmsg(db));
        fail_all(batch, MS_ERR_UNAVAILABLE, "the database is locked or unwritable");
        done_all(batch);
        return;
    }
    bool aborted = false;
    for (store_op *o = batch; o; o = o->next) {
        if (aborted) {
            store__op_fail(o, MS_ERR_IO, "the transaction was rolled back by an earlier error");
            continue;
        }
        /* new messages' index rows go in before a change their triggers must see */
        if (c->npend && o->kind != STORE_OP_INSERT && store__sq_index_flush(c) != SQLITE_OK) {
            MS_ERROR("store", "sqlite: writing the search index failed: %s", sqlite3_errmsg(db));
            aborted = true;
            for (store_op *p = batch; p != o; p = p->next)
                if (p->status == 0)
                    store__op_fail(p, MS_ERR_IO, "the search index could not be written: %s",
                                   sqlite3_errmsg(db));
            exec(db, "ROLLBACK");
            store__op_fail(o, MS_ERR_IO, "the transaction was rolled back by an earlier error");
            continue;
        }
        size_t queued = c->npend;
        exec(db, "SAVEPOINT op");
        c->queries = 0;
        c->rollback = false;
        store__sq_run(c, o);
        o->queries = c->queries;
        if (sqlite3_get_autocommit(db)) {
            /* SQLite rolled the whole transaction back (disk full, I/O error). */
            aborted = true;
            for (store_op *p = batch; p != o->next; p = p->next)
                if (p->status == 0)
                    store__op_fail(p, MS_ERR_IO, "the transaction was rolled back: %s",
                                   sqlite3_errmsg(db));
            continue;
        }
        if (o->status != 0 || c->rollback) {
            exec(db, "ROLLBACK TO op");
            c->npend = queued; /* what the op queued was rolled back with it */
        }
        exec(db, "RELEASE op");
    }
    if (!aborted && store__sq_index_flush(c) != SQLITE_OK) {
        MS_ERROR("store", "sqlite: writing the search index failed: %s", sqlite3_errmsg(db));
        fail_all(batch, MS_ERR_IO, "the search index could not be written");
        exec(db, "ROLLBACK");
    } else if (!aborted && exec(db, "COMMIT") != SQLITE_OK) {
        MS_ERROR("store", "sqlite: COMMIT failed: %s", sqlite3_errmsg(db));
        fail_all(batch, MS_ERR_IO, "the write could not be committed");
        exec(db, "ROLLBACK");
    }
    c->npend = 0;
    atomic_fetch_add_explicit(&b->batches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->batched, (uint64_t)n, memory_order_relaxed);
    done_all(batch);
}

static void *writer_main(void *arg)
{
    sq_backend *b = arg;
    for (;;) {
        int n = 0;
        store_op *batch = store__queue_take(&b->wq, b->batch_max, &n, true);
        if (!batch)
            break;
        run_batch(b, batch, n);
    }
    return NULL;
}

static void *reader_main(void *arg)
{
    reader_arg *ra = arg;
    sq_backend *b = ra->b;
    sq_conn *c = ra->c;
    free(ra);
    for (;;) {
        int n = 0;
        store_op *op = store__queue_take(&b->rq, 1, &n, true);
        if (!op)
            break;
        c->queries = 0;
        if (exec(c->db, "BEGIN") != SQLITE_OK) {
            store__op_fail(op, MS_ERR_IO, "cannot start a read: %s", sqlite3_errmsg(c->db));
        } else {
            store__sq_run(c, op);
            exec(c->db, "COMMIT");
        }
        op->queries = c->queries;
        store__op_done(op);
    }
    return NULL;
}

/* ------------------------------------------------------------------ vtable */

static int sq_submit(store_backend *base, store_op *op)
{
    sq_backend *b = (sq_backend *)base;
    store__queue_push(store__op_is_write(op->kind) ? &b->wq : &b->rq, op);
    return 0;
}

static void sq_close(store_backend *base)
{
    sq_backend *b = (sq_backend *)base;
    /* Queued work drains first: the threads leave only when their queue is empty. */
    store__queue_close(&b->rq);
    store__queue_close(&b->wq);
    for (int i = 0; i < b->nrthreads; i++)
        pthread_join(b->rthreads[i], NULL);
    if (b->wstarted)
        pthread_join(b->wthread, NULL);
    for (int i = 0; i < b->nreaders; i++)
        store__sq_conn_close(&b->readers[i]);
    if (b->writer.db) {
        /* Fold the WAL back into the file so the file alone is the database. */
        sqlite3_wal_checkpoint_v2(b->writer.db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    }
    store__sq_conn_close(&b->writer);
    free(b->writer.pend);
    store__queue_destroy(&b->rq);
    store__queue_destroy(&b->wq);
    if (b->hold_fd >= 0)
        close(b->hold_fd);
    free(b->readers);
    free(b->rthreads);
    free(b);
}

static void sq_stats(store_backend *base, store_stats *out)
{
    sq_backend *b = (sq_backend *)base;
    out->write_batches = atomic_load_explicit(&b->batches, memory_order_relaxed);
    out->batched_writes = atomic_load_explicit(&b->batched, memory_order_relaxed);
}

static const store_backend_vtbl sq_vtbl = {
    .name = "sqlite",
    .submit = sq_submit,
    .close = sq_close,
    .stats = sq_stats,
};

int store__sqlite_open(store *s, const store_config *cfg, const store_options *opt,
                       store_backend **out, char *err, size_t errlen)
{
    if (sqlite3_threadsafe() == 0) {
        snprintf(err, errlen, "the SQLite library was built without thread support");
        return MS_ERR_INTERNAL;
    }
    sq_backend *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return MS_ERR_NOMEM;
    }
    b->base.vt = &sq_vtbl;
    b->base.s = s;
    b->batch_max = opt->sqlite_batch_max;
    b->nreaders = opt->sqlite_readers;
    b->hold_fd = -1;
    store__queue_init(&b->wq);
    store__queue_init(&b->rq);
    b->readers = calloc((size_t)b->nreaders, sizeof *b->readers);
    b->rthreads = calloc((size_t)b->nreaders, sizeof *b->rthreads);
    int rc;
    if (!b->readers || !b->rthreads) {
        snprintf(err, errlen, "out of memory");
        rc = MS_ERR_NOMEM;
        goto fail;
    }
    rc = store__sq_open_db(cfg->sqlite_path, !opt->no_migrate, &b->writer.db, err, errlen);
    if (rc)
        goto fail;
    rc = store__sq_hold(cfg->sqlite_path, &b->hold_fd, err, errlen);
    if (rc)
        goto fail;
    if (opt->no_migrate) {
        size_t n = 0;
        const store_migration *m = store_migrations(MS_BACKEND_SQLITE, &n);
        int want = n ? m[n - 1].version : 0;
        int have = store__sq_schema_version(b->writer.db);
        if (have != want) {
            snprintf(err, errlen,
                     "the SQLite file %s has schema version %d, this binary needs %d: run "
                     "`msgstore migrate`",
                     cfg->sqlite_path, have, want);
            rc = MS_ERR_UNAVAILABLE;
            goto fail;
        }
        ms_id_format fmt = MS_ID_INT64;
        char what[300];
        snprintf(what, sizeof what, "the SQLite file %s", cfg->sqlite_path);
        rc = store__sq_id_format(b->writer.db, &fmt);
        if (rc == 0)
            rc = store__id_format_check(what, fmt, cfg->id_format, err, errlen);
        else
            snprintf(err, errlen, "%s: cannot read its id format", what);
        if (rc)
            goto fail;
    } else {
        int applied = 0;
        rc = store__sq_migrate_db(b->writer.db, cfg->sqlite_path, cfg->id_format, NULL, NULL,
                                  &applied, err, errlen);
        if (rc)
            goto fail;
        if (applied)
            MS_INFO("store", "sqlite: %s: applied %d migration(s)", cfg->sqlite_path, applied);
    }
    b->writer.id_format = store_id_format(s);
    b->writer.no_index = opt->no_search_index;
    for (int i = 0; i < b->nreaders; i++) {
        b->readers[i].id_format = store_id_format(s);
        rc = store__sq_open_db(cfg->sqlite_path, false, &b->readers[i].db, err, errlen);
        if (rc)
            goto fail;
        exec(b->readers[i].db, "PRAGMA query_only=1");
    }
    if (pthread_create(&b->wthread, NULL, writer_main, b) != 0) {
        snprintf(err, errlen, "cannot start the writer thread");
        rc = MS_ERR_INTERNAL;
        goto fail;
    }
    b->wstarted = true;
    for (int i = 0; i < b->nreaders; i++) {
        reader_arg *ra = malloc(sizeof *ra);
        if (ra) {
            ra->b = b;
            ra->c = &b->readers[i];
        }
        if (!ra || pthread_create(&b->rthreads[i], NULL, reader_main, ra) != 0) {
            free(ra);
            snprintf(err, errlen, "cannot start reader threads");
            rc = MS_ERR_INTERNAL;
            goto fail;
        }
        b->nrthreads++;
    }
    *out = &b->base;
    return 0;
fail:
    sq_close(&b->base);
    return rc;
}
