/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sqlite_search.c - store_search on the embedded backend: the FTS5 index of
 * schema/sqlite/002_search.sql, and the one-time indexing of the messages a
 * store held before that migration.
 *
 * The index is written inside the writer's transaction: edits and deletes by
 * triggers on `messages`, new messages by the writer itself at the end of
 * each batch (store__sq_index_flush).
 *
 * Why new messages are not indexed by a trigger (schema/sqlite/004): FTS5
 * writes the terms it holds in memory out as a new segment whenever a
 * savepoint opens, and the writer runs every operation of a batch in a
 * savepoint of its own (and a statement that fires a trigger opens one too).
 * Indexed row by row, every message became a one-document segment that
 * automerge then merged again and again: 30 µs of CPU per message against
 * about 10 for the message itself. Queued and written after the batch's last
 * savepoint, a batch's messages make one segment. Before any other write of
 * the batch (an edit or a delete that its triggers must apply to the row) the
 * queue is written first, so the index sees the changes in their order.
 */
#include "sqlite_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define I64(v) ((sqlite3_int64)(v))

/* Column of the excerpt and of the rank after SQ_MSG_COLS in a search row. */
#define COL_SNIPPET 17
#define COL_RANK    18

static int by_newest(const void *a, const void *b)
{
    const store_search_hit *x = a, *y = b;
    return x->msg.id < y->msg.id ? 1 : x->msg.id > y->msg.id ? -1 : 0;
}

static int by_score(const void *a, const void *b)
{
    const store_search_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return by_newest(a, b);
}

/* True when channel i of r already appeared before it (a channel is searched once). */
static bool seen_before(const store_search_req *r, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (ms_xid_eq(r->channel_ids[j], r->channel_ids[i]))
            return true;
    return false;
}

void store__sq_search(sq_conn *c, store_op *op)
{
    const store_search_req *r = &op->req.search;
    store__query q;
    if (store__query_parse(r->query, &q, op->detail, sizeof op->detail) != 0) {
        op->status = MS_ERR_INVALID;
        return;
    }
    char *expr = store__query_fts5(&q, "content");
    if (!expr) {
        store__op_fail(op, MS_ERR_NOMEM, "out of memory");
        return;
    }
    size_t per = (size_t)r->limit + 1; /* one more tells whether there is more */
    store_search_result *res = store__op_result(op, sizeof *res);
    store_search_hit *hits =
        res ? store__res_alloc(&res->hdr, r->nchannels * per * sizeof *hits) : NULL;
    if (!hits) {
        store__op_fail(op, MS_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t n = 0;
    for (size_t i = 0; i < r->nchannels; i++) {
        if (seen_before(r, i))
            continue;
        sqlite3_stmt *st = store__sq_stmt(c, r->sort == STORE_SEARCH_RELEVANCE ? SQ_SEARCH_RELEVANCE
                                                                               : SQ_SEARCH_NEWEST);
        if (!st) {
            store__op_fail(op, MS_ERR_INTERNAL, "the search statement is unavailable");
            goto out;
        }
        store__sq_bind_xid(c, st, 1, r->channel_ids[i]);
        sqlite3_bind_text(st, 2, expr, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, r->before ? I64(r->before) : INT64_MAX);
        sqlite3_bind_int64(st, 4, I64(per));
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            store_search_hit *h = &hits[n];
            memset(h, 0, sizeof *h);
            if (store__sq_col_msg(st, &res->hdr, &h->msg) != 0 ||
                !(h->snippet = store__snippet_html(
                      &res->hdr, (const char *)sqlite3_column_text(st, COL_SNIPPET),
                      (size_t)sqlite3_column_bytes(st, COL_SNIPPET)))) {
                sqlite3_reset(st);
                store__op_fail(op, MS_ERR_NOMEM, "out of memory");
                goto out;
            }
            h->score = -sqlite3_column_double(st, COL_RANK); /* bm25: lower is better */
            n++;
        }
        if (rc != SQLITE_DONE) {
            store__sq_fail(c, op, rc, "searching");
            goto out;
        }
    }
    qsort(hits, n, sizeof *hits, r->sort == STORE_SEARCH_RELEVANCE ? by_score : by_newest);
    res->items = hits;
    res->more = n > (size_t)r->limit;
    res->count = res->more ? (size_t)r->limit : n;
out:
    free(expr);
}

/* ------------------------------------------------------------------ the writer's rows */

int store__sq_index_later(sq_conn *c, store_op *op, uint64_t id, ms_xid ch, const char *content,
                          size_t len, bool check)
{
    if (c->no_index || len == 0)
        return 0;
    if (check) {
        /* ids are unique in the index: a chosen one may be taken in another channel */
        bool taken = false;
        for (size_t i = 0; i < c->npend && !taken; i++)
            taken = c->pend[i].id == id;
        sqlite3_stmt *st = taken ? NULL : store__sq_stmt(c, SQ_SEARCH_HAS);
        if (st) {
            sqlite3_bind_int64(st, 1, I64(id));
            int rc = sqlite3_step(st);
            taken = rc == SQLITE_ROW;
            sqlite3_reset(st);
            if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                return store__sq_fail(c, op, rc, "reading the search index");
        } else if (!taken) {
            return store__op_fail(op, MS_ERR_INTERNAL, "statement unavailable");
        }
        if (taken)
            return store__op_fail(op, MS_ERR_CONFLICT,
                                  "message id %" PRIu64 " already exists in another channel", id);
    }
    if (c->npend == c->cappend) {
        size_t cap = c->cappend ? c->cappend * 2 : 64;
        sq_index_row *p = realloc(c->pend, cap * sizeof *p);
        if (!p)
            return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
        c->pend = p;
        c->cappend = cap;
    }
    c->pend[c->npend++] =
        (sq_index_row){.id = id, .channel_id = ch, .content = content, .len = len};
    return 0;
}

int store__sq_index_flush(sq_conn *c)
{
    int rc = SQLITE_OK;
    for (size_t i = 0; i < c->npend && rc == SQLITE_OK; i++) {
        /* one row per statement: a multi-row statement would open a savepoint (see above) */
        sqlite3_stmt *st = store__sq_stmt(c, SQ_SEARCH_ADD);
        if (!st) {
            rc = SQLITE_ERROR;
            break;
        }
        const sq_index_row *r = &c->pend[i];
        sqlite3_bind_int64(st, 1, I64(r->id));
        sqlite3_bind_text(st, 2, r->content, (int)r->len, SQLITE_STATIC);
        store__sq_bind_xid(c, st, 3, r->channel_id);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    c->npend = 0;
    return rc;
}

/* ------------------------------------------------------------------ migration 002 */

/*
 * Indexes the messages stored before 003_search_ids.sql (its triggers index
 * the later ones), in the migration's transaction, logging progress every 10%.
 * A message whose id is already in the index under another channel (ids
 * given explicitly) stays out of it, counted in the log.
 */
static int search_backfill(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *cnt = NULL, *sel = NULL, *ins = NULL;
    int rc = MS_ERR_IO;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM messages WHERE is_deleted=0 AND content<>''",
                           -1, &cnt, NULL) != SQLITE_OK ||
        sqlite3_step(cnt) != SQLITE_ROW)
        goto fail;
    uint64_t total = (uint64_t)sqlite3_column_int64(cnt, 0);
    if (total == 0) {
        rc = 0;
        goto done;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT channel_id, message_id, content FROM messages "
                           "WHERE is_deleted=0 AND content<>''",
                           -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO message_search(rowid, content, channel) "
                           "SELECT ?2, ?3, 'c' || hex(?1) WHERE NOT EXISTS "
                           "(SELECT 1 FROM message_search WHERE rowid=?2)",
                           -1, &ins, NULL) != SQLITE_OK)
        goto fail;
    MS_INFO("store", "sqlite: building the search index of %" PRIu64 " message(s)", total);
    uint64_t t0 = ms_clock_realtime_ms(NULL), done = 0, skipped = 0, next = total / 10;
    int st;
    while ((st = sqlite3_step(sel)) == SQLITE_ROW) {
        sqlite3_reset(ins);
        sqlite3_bind_value(ins, 1, sqlite3_column_value(sel, 0)); /* INTEGER or UUID BLOB */
        sqlite3_bind_int64(ins, 2, sqlite3_column_int64(sel, 1));
        sqlite3_bind_text(ins, 3, (const char *)sqlite3_column_text(sel, 2),
                          sqlite3_column_bytes(sel, 2), SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            goto fail;
        if (sqlite3_changes(db) == 0)
            skipped++;
        if (++done >= next && done < total) {
            MS_INFO("store", "sqlite: search index: %" PRIu64 " of %" PRIu64 " (%" PRIu64 "%%)",
                    done, total, done * 100 / total);
            next = done + total / 10;
        }
    }
    if (st != SQLITE_DONE)
        goto fail;
    MS_INFO("store",
            "sqlite: search index built: %" PRIu64 " message(s) in %" PRIu64 " ms (%" PRIu64
            " left out: id used in another channel)",
            done - skipped, ms_clock_realtime_ms(NULL) - t0, skipped);
    rc = 0;
    goto done;
fail:
    snprintf(err, errlen, "building the search index failed: %s", sqlite3_errmsg(db));
done:
    sqlite3_finalize(cnt);
    sqlite3_finalize(sel);
    sqlite3_finalize(ins);
    return rc;
}

int store__sq_migration_step(sqlite3 *db, const char *name, char *err, size_t errlen)
{
    /* 002 made the index, 003 changed its channel token: the index is built after 003 */
    if (strcmp(name, "003_search_ids.sql") == 0)
        return search_backfill(db, err, errlen);
    return 0;
}
