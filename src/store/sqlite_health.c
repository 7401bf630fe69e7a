/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sqlite_health.c - the SQLite backend's health check (store_health): the
 * file, its journal mode and size, the schema version and the tables, read
 * on a reader connection inside its read transaction.
 */
#include "sqlite_internal.h"

#include <stdio.h>
#include <string.h>

/* Runs a one-row query; *st is left on that row (finalize it). SQLITE_ROW or an error code. */
static int one_row(sq_conn *c, const char *sql, sqlite3_stmt **st)
{
    c->queries++;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    return sqlite3_step(*st);
}

static void problem_sql(sq_conn *c, store_health_result *h, const char *what)
{
    store__health_problem(h, "%s: %s", what, sqlite3_errmsg(c->db));
}

void store__sq_health(sq_conn *c, store_op *op)
{
    uint64_t t0 = uv_hrtime();
    store_health_result *h = store__health_result(op, MS_BACKEND_SQLITE);
    if (!h)
        return;
    const char *path = store__config(op->s)->sqlite_path;
    h->path = store__health_str(h, path, strlen(path));

    sqlite3_stmt *st = NULL;
    if (one_row(c, "PRAGMA journal_mode", &st) == SQLITE_ROW) {
        const unsigned char *mode = sqlite3_column_text(st, 0);
        h->journal_mode =
            store__health_str(h, (const char *)mode, mode ? strlen((const char *)mode) : 0);
        /* synchronous=FULL only makes commits durable in WAL mode (sqlite.c) */
        if (strcmp(h->journal_mode, "wal") != 0)
            store__health_problem(h, "journal mode is %s, not wal", h->journal_mode);
    } else {
        h->journal_mode = "";
        problem_sql(c, h, "reading the journal mode");
    }
    sqlite3_finalize(st);

    int64_t pages = 0, page_size = 0;
    if (one_row(c, "PRAGMA page_count", &st) == SQLITE_ROW)
        pages = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (one_row(c, "PRAGMA page_size", &st) == SQLITE_ROW)
        page_size = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (pages > 0 && page_size > 0)
        h->size_bytes = (uint64_t)pages * (uint64_t)page_size;

    int rc = one_row(c, "SELECT name FROM sqlite_master WHERE type = 'table'", &st);
    while (rc == SQLITE_ROW) {
        const unsigned char *name = sqlite3_column_text(st, 0);
        if (name)
            (void)store__health_mark(h, (const char *)name, strlen((const char *)name));
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        store__health_tables_done(h);
    else
        problem_sql(c, h, "listing the tables");

    c->queries++;
    int version = store__sq_schema_version(c->db);
    if (version >= 0) {
        h->schema_version = version;
        if (version != h->schema_expected)
            store__health_problem(h,
                                  "schema version %d, this binary needs %d: run `msgstore "
                                  "migrate`",
                                  version, h->schema_expected);
    } else {
        problem_sql(c, h, "reading the schema version");
    }
    h->latency_us = (uv_hrtime() - t0) / 1000;
}
