/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sqlite_ops.c - every store operation as SQL on one connection.
 *
 * Called by the writer (inside its batch transaction and a savepoint) or a
 * reader (inside a read transaction); see sqlite.c. Dedup races are settled
 * by the primary keys: an INSERT ... ON CONFLICT DO NOTHING that changed no
 * row means someone else came first, and that first row is returned.
 */
#include "sqlite_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define I64(v) ((sqlite3_int64)(v))

int store__sq_fail(sq_conn *c, store_op *op, int rc, const char *what)
{
    int code;
    switch (rc & 0xFF) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        code = MS_ERR_UNAVAILABLE;
        break;
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
        code = MS_ERR_IO;
        break;
    case SQLITE_CONSTRAINT:
        code = MS_ERR_CONFLICT;
        break;
    case SQLITE_NOMEM:
        code = MS_ERR_NOMEM;
        break;
    default:
        code = MS_ERR_INTERNAL;
        break;
    }
    return store__op_fail(op, code, "%s: %s", what, sqlite3_errmsg(c->db));
}

static int nomem(store_op *op)
{
    return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
}

/* Steps a statement that must finish (INSERT/UPDATE/DELETE). */
static int step_done(sq_conn *c, store_op *op, sqlite3_stmt *st, const char *what)
{
    if (!st)
        return store__op_fail(op, MS_ERR_INTERNAL, "%s: statement unavailable", what);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE)
        return store__sq_fail(c, op, rc, what);
    return 0;
}

/*
 * Steps a statement expected to return at most one row with an integer in
 * column 0. *found tells whether a row came. Runs it to completion.
 */
static int step_int(sq_conn *c, store_op *op, sqlite3_stmt *st, const char *what, int64_t *val,
                    bool *found)
{
    if (!st)
        return store__op_fail(op, MS_ERR_INTERNAL, "%s: statement unavailable", what);
    *found = false;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!*found) {
            *val = sqlite3_column_int64(st, 0);
            *found = true;
        }
    }
    if (rc != SQLITE_DONE)
        return store__sq_fail(c, op, rc, what);
    return 0;
}

/*
 * Steps a statement expected to return at most one row: 1 with the row
 * current (sqlite3_reset it when done), 0 when there is none, or a negative
 * code with op failed.
 */
static int step_row(sq_conn *c, store_op *op, sqlite3_stmt *st, const char *what)
{
    if (!st)
        return store__op_fail(op, MS_ERR_INTERNAL, "%s: statement unavailable", what);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : store__sq_fail(c, op, rc, what);
}

/*
 * Binds a channel or user id as the store's format keeps it: a 16-byte BLOB
 * (uuid) or an INTEGER (int64). Every id bind goes through here.
 */
void store__sq_bind_xid(const sq_conn *c, sqlite3_stmt *st, int i, ms_xid v)
{
    store__sq_bind_xid_as(c->id_format, st, i, v);
}

void store__sq_bind_xid_as(ms_id_format f, sqlite3_stmt *st, int i, ms_xid v)
{
    if (f == MS_ID_UUID) {
        uint8_t b[16];
        ms_xid_to_bytes(v, b);
        sqlite3_bind_blob(st, i, b, 16, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_int64(st, i, I64(v.lo));
    }
}

/* Reads a channel or user id column back (either storage: a 16-byte BLOB or an INTEGER). */
ms_xid store__sq_col_xid(sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_BLOB && sqlite3_column_bytes(st, col) == 16)
        return ms_xid_from_bytes(sqlite3_column_blob(st, col));
    return ms_xid_int((uint64_t)sqlite3_column_int64(st, col));
}

/* Statement id with ?1 bound (a channel); NULL if unavailable. */
static sqlite3_stmt *stmt1(sq_conn *c, sq_stmt_id id, ms_xid channel)
{
    sqlite3_stmt *st = store__sq_stmt(c, id);
    if (st)
        store__sq_bind_xid(c, st, 1, channel);
    return st;
}

/* Statement id with ?1 and ?2 bound (a channel and a message id); NULL if unavailable. */
static sqlite3_stmt *stmt2(sq_conn *c, sq_stmt_id id, ms_xid channel, uint64_t b)
{
    sqlite3_stmt *st = stmt1(c, id, channel);
    if (st)
        sqlite3_bind_int64(st, 2, I64(b));
    return st;
}

/* Statement id with ?1 and ?2 bound (a channel and a user); NULL if unavailable. */
static sqlite3_stmt *stmt_cu(sq_conn *c, sq_stmt_id id, ms_xid channel, ms_xid user)
{
    sqlite3_stmt *st = stmt1(c, id, channel);
    if (st)
        store__sq_bind_xid(c, st, 2, user);
    return st;
}

static const char *dup_col(store_result_hdr *res, sqlite3_stmt *st, int col, size_t *len, bool *oom)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL) {
        if (len)
            *len = 0;
        return NULL;
    }
    const char *t = (const char *)sqlite3_column_text(st, col);
    return store__res_text(res, t, (size_t)sqlite3_column_bytes(st, col), len, oom);
}

int store__sq_col_msg(sqlite3_stmt *st, store_result_hdr *res, store_message *m)
{
    bool oom = false;
    memset(m, 0, sizeof *m);
    m->channel_id = store__sq_col_xid(st, 0);
    m->id = (uint64_t)sqlite3_column_int64(st, 1);
    m->bucket = ms_bucket_of(m->id);
    m->sender_id = store__sq_col_xid(st, 2);
    m->type = (store_msg_type)sqlite3_column_int(st, 3);
    m->source = (store_msg_source)sqlite3_column_int(st, 4);
    m->content = dup_col(res, st, 5, &m->content_len, &oom);
    if (!m->content && !oom)
        m->content = store__res_strndup(res, "", 0);
    m->reply_to = (uint64_t)sqlite3_column_int64(st, 6);
    m->attachments = dup_col(res, st, 7, NULL, &oom);
    m->metadata = dup_col(res, st, 8, NULL, &oom);
    m->nonce = dup_col(res, st, 9, NULL, &oom);
    if (sqlite3_column_type(st, 10) != SQLITE_NULL) {
        m->has_telegram = true;
        m->telegram_chat_id = sqlite3_column_int64(st, 10);
        m->telegram_message_id = sqlite3_column_int64(st, 11);
    }
    m->created_at_ms = (uint64_t)sqlite3_column_int64(st, 12);
    m->is_edited = sqlite3_column_int(st, 13) != 0;
    m->edited_at_ms = (uint64_t)sqlite3_column_int64(st, 14);
    m->is_deleted = sqlite3_column_int(st, 15) != 0;
    m->deleted_at_ms = (uint64_t)sqlite3_column_int64(st, 16);
    return oom || !m->content ? MS_ERR_NOMEM : 0;
}

static int not_found(store_op *op, ms_xid channel, uint64_t id)
{
    char ch[MS_XID_STRLEN];
    return store__op_fail(op, MS_ERR_NOT_FOUND, "message %" PRIu64 " not found in channel %s", id,
                          store__xid_text(op->s, channel, ch));
}

/* Loads one message into a new message result (op->res). */
static int load_message(sq_conn *c, store_op *op, ms_xid channel, uint64_t id, bool duplicate)
{
    sqlite3_stmt *st = stmt2(c, SQ_MSG_GET, channel, id);
    int rc = step_row(c, op, st, "reading the message");
    if (rc <= 0)
        return rc ? rc : not_found(op, channel, id);
    store_message_result *r = store__op_result(op, sizeof *r);
    if (!r)
        return op->status;
    if (store__sq_col_msg(st, &r->hdr, &r->msg) != 0)
        return nomem(op);
    r->duplicate = duplicate;
    sqlite3_reset(st);
    return 0;
}

/* The message's is_deleted flag: 0/1, or fails op with NOT_FOUND. */
static int message_state(sq_conn *c, store_op *op, ms_xid channel, uint64_t id, int *deleted)
{
    int64_t v = 0;
    bool found = false;
    int rc =
        step_int(c, op, stmt2(c, SQ_MSG_STATE, channel, id), "reading the message", &v, &found);
    if (rc)
        return rc;
    if (!found)
        return not_found(op, channel, id);
    *deleted = (int)v;
    return 0;
}

/* Loads the message a Telegram message maps to into a new message result. */
static int load_telegram(sq_conn *c, store_op *op, int64_t chat, int64_t tg_id, bool duplicate)
{
    sqlite3_stmt *st = store__sq_stmt(c, SQ_TG_GET);
    if (st) {
        sqlite3_bind_int64(st, 1, chat);
        sqlite3_bind_int64(st, 2, tg_id);
    }
    int rc = step_row(c, op, st, "reading the Telegram mapping");
    if (rc <= 0)
        return rc ? rc
                  : store__op_fail(op, MS_ERR_NOT_FOUND,
                                   "no message for Telegram message %" PRId64 " in chat %" PRId64,
                                   tg_id, chat);
    ms_xid ch = store__sq_col_xid(st, 0);
    uint64_t id = (uint64_t)sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    return load_message(c, op, ch, id, duplicate);
}

/* ------------------------------------------------------------------ messages */

static int op_insert(sq_conn *c, store_op *op)
{
    const store_insert_req *r = &op->req.insert;
    const store_config *cfg = store__config(op->s);
    uint64_t created = ms_snowflake_unix_ms(r->id, cfg->epoch_ms);
    sqlite3_stmt *st;
    if (r->has_telegram) {
        st = store__sq_stmt(c, SQ_TG_CLAIM);
        sqlite3_bind_int64(st, 1, r->telegram_chat_id);
        sqlite3_bind_int64(st, 2, r->telegram_message_id);
        store__sq_bind_xid(c, st, 3, r->channel_id);
        sqlite3_bind_int64(st, 4, I64(r->id));
        sqlite3_bind_int64(st, 5, I64(op->now_ms));
        if (step_done(c, op, st, "recording the Telegram mapping"))
            return op->status;
        if (sqlite3_changes(c->db) == 0) {
            c->rollback = true;
            load_telegram(c, op, r->telegram_chat_id, r->telegram_message_id, true);
            return op->status;
        }
    }
    if (r->nonce) {
        st = store__sq_stmt(c, SQ_NONCE_CLAIM);
        store__sq_bind_xid(c, st, 1, r->channel_id);
        sqlite3_bind_text(st, 2, r->nonce, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, I64(r->id));
        sqlite3_bind_int64(st, 4, I64(op->now_ms));
        if (step_done(c, op, st, "recording the nonce"))
            return op->status;
        if (sqlite3_changes(c->db) == 0) {
            c->rollback = true; /* undo the Telegram claim made above, if any */
            st = store__sq_stmt(c, SQ_NONCE_GET);
            store__sq_bind_xid(c, st, 1, r->channel_id);
            sqlite3_bind_text(st, 2, r->nonce, -1, SQLITE_STATIC);
            int64_t id = 0;
            bool found = false;
            if (step_int(c, op, st, "reading the nonce", &id, &found))
                return op->status;
            load_message(c, op, r->channel_id, (uint64_t)id, true);
            return op->status;
        }
    }
    st = store__sq_stmt(c, SQ_MSG_INSERT);
    if (!st)
        return store__op_fail(op, MS_ERR_INTERNAL, "statement unavailable");
    store__sq_bind_xid(c, st, 1, r->channel_id);
    sqlite3_bind_int64(st, 2, ms_bucket_of(r->id));
    sqlite3_bind_int64(st, 3, I64(r->id));
    store__sq_bind_xid(c, st, 4, r->sender_id);
    sqlite3_bind_int(st, 5, (int)r->type);
    sqlite3_bind_int(st, 6, (int)r->source);
    sqlite3_bind_text(st, 7, r->content, (int)r->content_len, SQLITE_STATIC);
    if (r->reply_to)
        sqlite3_bind_int64(st, 8, I64(r->reply_to));
    if (r->attachments)
        sqlite3_bind_text(st, 9, r->attachments, -1, SQLITE_STATIC);
    if (r->metadata)
        sqlite3_bind_text(st, 10, r->metadata, -1, SQLITE_STATIC);
    if (r->nonce)
        sqlite3_bind_text(st, 11, r->nonce, -1, SQLITE_STATIC);
    if (r->has_telegram) {
        sqlite3_bind_int64(st, 12, r->telegram_chat_id);
        sqlite3_bind_int64(st, 13, r->telegram_message_id);
    }
    sqlite3_bind_int64(st, 14, I64(created));
    int rc = sqlite3_step(st);
    char chs[MS_XID_STRLEN];
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return store__op_fail(op, MS_ERR_CONFLICT,
                              "message id %" PRIu64 " already exists in channel %s", r->id,
                              store__xid_text(op->s, r->channel_id, chs));
    if (rc != SQLITE_DONE)
        return store__sq_fail(c, op, rc, "writing the message");
    st = store__sq_stmt(c, SQ_BUCKET_ADD);
    store__sq_bind_xid(c, st, 1, r->channel_id);
    sqlite3_bind_int64(st, 2, ms_bucket_of(r->id));
    if (step_done(c, op, st, "recording the bucket"))
        return op->status;
    st = stmt2(c, SQ_META_TOUCH, r->channel_id, created);
    sqlite3_bind_int64(st, 3, I64(r->id));
    sqlite3_bind_int64(st, 4, I64(op->now_ms));
    if (step_done(c, op, st, "updating the channel metadata"))
        return op->status;
    /* indexed at the end of the batch (sqlite_search.c); ids are unique in the index */
    if (store__sq_index_later(c, op, r->id, r->channel_id, r->content, r->content_len,
                              op->id_given))
        return op->status;

    store__insert_result(op, created);
    return op->status;
}

static int op_get(sq_conn *c, store_op *op)
{
    load_message(c, op, op->req.get.channel_id, op->req.get.message_id, false);
    return op->status;
}

static int op_get_telegram(sq_conn *c, store_op *op)
{
    return load_telegram(c, op, op->req.tg.telegram_chat_id, op->req.tg.telegram_message_id, false);
}

/* Runs a page statement, appending up to max rows to arr. Returns the count or -1. */
static long collect(sq_conn *c, store_op *op, sqlite3_stmt *st, store_result_hdr *res,
                    store_message *arr, size_t max)
{
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n < max) {
            if (store__sq_col_msg(st, res, &arr[n]) != 0) {
                nomem(op);
                sqlite3_reset(st);
                return -1;
            }
        }
        n++;
    }
    if (rc != SQLITE_DONE) {
        store__sq_fail(c, op, rc, "reading the page");
        return -1;
    }
    return (long)(n < max ? n : max);
}

static int op_page(sq_conn *c, store_op *op)
{
    const store_page_req *r = &op->req.page;
    size_t limit = (size_t)r->limit;
    store_page_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    store_message *buf = store__res_alloc(&res->hdr, (limit + 2) * sizeof *buf);
    if (!buf)
        return nomem(op);
    sqlite3_stmt *st;
    long n;
    switch (r->mode) {
    case STORE_PAGE_LATEST:
    case STORE_PAGE_BEFORE:
        if (r->mode == STORE_PAGE_LATEST) {
            st = stmt2(c, SQ_PAGE_LATEST, r->channel_id, limit + 1);
        } else {
            st = stmt2(c, SQ_PAGE_BEFORE, r->channel_id, r->anchor);
            sqlite3_bind_int64(st, 3, I64(limit + 1));
        }
        n = collect(c, op, st, &res->hdr, buf, limit + 1);
        if (n < 0)
            return op->status;
        res->more_older = (size_t)n > limit;
        res->items = buf;
        res->count = res->more_older ? limit : (size_t)n;
        return op->status;
    case STORE_PAGE_AFTER:
        st = stmt2(c, SQ_PAGE_AFTER, r->channel_id, r->anchor);
        sqlite3_bind_int64(st, 3, I64(limit + 1));
        n = collect(c, op, st, &res->hdr, buf, limit + 1);
        if (n < 0)
            return op->status;
        res->more_newer = (size_t)n > limit;
        res->count = res->more_newer ? limit : (size_t)n;
        for (size_t i = 0; i < res->count / 2; i++) {
            store_message t = buf[i];
            buf[i] = buf[res->count - 1 - i];
            buf[res->count - 1 - i] = t;
        }
        res->items = buf;
        return op->status;
    case STORE_PAGE_AROUND: {
        size_t older_n = limit / 2, newer_n = limit - older_n;
        store_message *newer = store__res_alloc(&res->hdr, (newer_n + 1) * sizeof *newer);
        if (!newer)
            return nomem(op);
        st = stmt2(c, SQ_PAGE_FROM, r->channel_id, r->anchor);
        sqlite3_bind_int64(st, 3, I64(newer_n + 1));
        long nn = collect(c, op, st, &res->hdr, newer, newer_n + 1);
        if (nn < 0)
            return op->status;
        res->more_newer = (size_t)nn > newer_n;
        if ((size_t)nn > newer_n)
            nn = (long)newer_n;
        /* newest first: the newer side reversed, then the older side */
        for (long i = 0; i < nn; i++)
            buf[i] = newer[nn - 1 - i];
        st = stmt2(c, SQ_PAGE_BEFORE, r->channel_id, r->anchor);
        sqlite3_bind_int64(st, 3, I64(older_n + 1));
        long no = collect(c, op, st, &res->hdr, buf + nn, older_n + 1);
        if (no < 0)
            return op->status;
        res->more_older = (size_t)no > older_n;
        if ((size_t)no > older_n)
            no = (long)older_n;
        res->items = buf;
        res->count = (size_t)(nn + no);
        return op->status;
    }
    }
    store__op_fail(op, MS_ERR_INVALID, "unknown page mode");
    return op->status;
}

static int op_edit(sq_conn *c, store_op *op)
{
    const store_edit_req *r = &op->req.edit;
    sqlite3_stmt *st = stmt2(c, SQ_MSG_GET, r->channel_id, r->message_id);
    int rc = step_row(c, op, st, "reading the message");
    if (rc <= 0)
        return rc ? rc : not_found(op, r->channel_id, r->message_id);
    if (sqlite3_column_int(st, 15))
        return store__op_fail(op, MS_ERR_CONFLICT,
                              "message %" PRIu64 " is deleted and cannot be edited", r->message_id);
    size_t oldlen = (size_t)sqlite3_column_bytes(st, 5);
    char *old = malloc(oldlen + 1);
    if (!old)
        return nomem(op);
    memcpy(old, sqlite3_column_text(st, 5), oldlen);
    old[oldlen] = '\0';
    sqlite3_reset(st);

    st = stmt2(c, SQ_EDIT_SEQ, r->channel_id, r->message_id);
    int64_t seq = 1;
    bool found = false;
    if (step_int(c, op, st, "numbering the edit", &seq, &found))
        goto out;
    st = stmt2(c, SQ_EDIT_SAVE, r->channel_id, r->message_id);
    sqlite3_bind_int64(st, 3, I64(op->now_ms));
    sqlite3_bind_int64(st, 4, seq);
    sqlite3_bind_text(st, 5, old, (int)oldlen, SQLITE_STATIC);
    if (step_done(c, op, st, "saving the edit history"))
        goto out;
    st = stmt2(c, SQ_EDIT_APPLY, r->channel_id, r->message_id);
    sqlite3_bind_text(st, 3, r->content, (int)r->content_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, I64(op->now_ms));
    if (step_done(c, op, st, "editing the message"))
        goto out;
    load_message(c, op, r->channel_id, r->message_id, false);
out:
    free(old);
    return op->status;
}

static int op_delete(sq_conn *c, store_op *op)
{
    const store_get_req *r = &op->req.get;
    int deleted = 0;
    if (message_state(c, op, r->channel_id, r->message_id, &deleted))
        return op->status;
    if (!deleted) {
        sqlite3_stmt *st = stmt2(c, SQ_DELETE_APPLY, r->channel_id, r->message_id);
        sqlite3_bind_int64(st, 3, I64(op->now_ms));
        if (step_done(c, op, st, "deleting the message"))
            return op->status;
        st = stmt2(c, SQ_PIN_DEL, r->channel_id, r->message_id);
        if (step_done(c, op, st, "unpinning the message"))
            return op->status;
        st = stmt2(c, SQ_EDITS_PURGE, r->channel_id, r->message_id);
        if (step_done(c, op, st, "purging the edit history"))
            return op->status;
    }
    load_message(c, op, r->channel_id, r->message_id, false);
    return op->status;
}

static int op_history(sq_conn *c, store_op *op)
{
    const store_history_req *r = &op->req.history;
    int deleted = 0;
    if (message_state(c, op, r->channel_id, r->message_id, &deleted))
        return op->status;
    store_history_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    res->items = store__res_alloc(&res->hdr, (size_t)r->limit * sizeof *res->items);
    if (!res->items)
        return nomem(op);
    sqlite3_stmt *st = stmt2(c, SQ_HISTORY, r->channel_id, r->message_id);
    sqlite3_bind_int64(st, 3, r->limit);
    int rc;
    bool oom = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && res->count < (size_t)r->limit) {
        store_edit_entry *e = &res->items[res->count++];
        e->edited_at_ms = (uint64_t)sqlite3_column_int64(st, 0);
        e->content = dup_col(&res->hdr, st, 1, &e->content_len, &oom);
    }
    if (oom)
        return nomem(op);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        store__sq_fail(c, op, rc, "reading the edit history");
    return op->status;
}

/* ------------------------------------------------------------------ reactions */

static void bind_reaction(const sq_conn *c, sqlite3_stmt *st, const store_reaction_req *r)
{
    store__sq_bind_xid(c, st, 1, r->channel_id);
    sqlite3_bind_int64(st, 2, I64(r->message_id));
    sqlite3_bind_text(st, 3, r->emoji, -1, SQLITE_STATIC);
}

static int op_reaction(sq_conn *c, store_op *op, bool add)
{
    const store_reaction_req *r = &op->req.reaction;
    int deleted = 0;
    if (message_state(c, op, r->channel_id, r->message_id, &deleted))
        return op->status;
    if (add && deleted)
        return store__op_fail(op, MS_ERR_CONFLICT, "message %" PRIu64 " is deleted", r->message_id);
    sqlite3_stmt *st = store__sq_stmt(c, add ? SQ_REACT_ADD : SQ_REACT_DEL);
    bind_reaction(c, st, r);
    store__sq_bind_xid(c, st, 4, r->user_id);
    if (add)
        sqlite3_bind_int64(st, 5, I64(op->now_ms));
    if (step_done(c, op, st, add ? "adding the reaction" : "removing the reaction"))
        return op->status;
    /* Fix 2: the count moves only when a row was really created or removed. */
    bool changed = sqlite3_changes(c->db) == 1;
    int64_t count = 0;
    bool found = false;
    st = store__sq_stmt(c, changed ? (add ? SQ_COUNT_INC : SQ_COUNT_DEC) : SQ_COUNT_GET);
    bind_reaction(c, st, r);
    if (step_int(c, op, st, "counting the reaction", &count, &found))
        return op->status;
    if (changed && !add && count <= 0) {
        st = store__sq_stmt(c, SQ_COUNT_ZAP);
        bind_reaction(c, st, r);
        if (step_done(c, op, st, "counting the reaction"))
            return op->status;
    }
    store_reaction_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    res->changed = changed;
    res->count = count > 0 ? (uint64_t)count : 0;
    return op->status;
}

static int op_reactions_get(sq_conn *c, store_op *op)
{
    store_reactions_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    sqlite3_stmt *st = stmt2(c, SQ_COUNTS_LIST, op->req.get.channel_id, op->req.get.message_id);
    size_t cap = 0;
    int rc;
    bool oom = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (res->count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            store_reaction_count *n = store__res_alloc(&res->hdr, ncap * sizeof *n);
            if (!n)
                return nomem(op);
            if (res->count)
                memcpy(n, res->items, res->count * sizeof *n);
            res->items = n;
            cap = ncap;
        }
        store_reaction_count *e = &res->items[res->count++];
        e->emoji = dup_col(&res->hdr, st, 0, NULL, &oom);
        e->count = (uint64_t)sqlite3_column_int64(st, 1);
    }
    if (oom)
        return nomem(op);
    if (rc != SQLITE_DONE)
        store__sq_fail(c, op, rc, "reading the reactions");
    return op->status;
}

static int op_reaction_users(sq_conn *c, store_op *op)
{
    const store_reaction_users_req *r = &op->req.users;
    store_users_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    res->user_ids = store__res_alloc(&res->hdr, (size_t)r->limit * sizeof *res->user_ids);
    if (!res->user_ids)
        return nomem(op);
    sqlite3_stmt *st = stmt2(c, SQ_USERS, r->channel_id, r->message_id);
    sqlite3_bind_text(st, 3, r->emoji, -1, SQLITE_STATIC);
    store__sq_bind_xid(c, st, 4, r->after_user_id);
    sqlite3_bind_int64(st, 5, r->limit + 1);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (res->count < (size_t)r->limit)
            res->user_ids[res->count++] = store__sq_col_xid(st, 0);
        else
            res->more = true;
    }
    if (rc != SQLITE_DONE)
        store__sq_fail(c, op, rc, "reading the reaction users");
    return op->status;
}

/* ------------------------------------------------------------------ pins */

static int col_pin(sqlite3_stmt *st, store_result_hdr *res, store_pin_entry *p)
{
    bool oom = false;
    p->channel_id = store__sq_col_xid(st, 0);
    p->message_id = (uint64_t)sqlite3_column_int64(st, 1);
    p->pinned_by = store__sq_col_xid(st, 2);
    p->pinned_at_ms = (uint64_t)sqlite3_column_int64(st, 3);
    p->content_preview = dup_col(res, st, 4, NULL, &oom);
    p->sender_id = store__sq_col_xid(st, 5);
    return oom ? MS_ERR_NOMEM : 0;
}

/* Loads the pin of (channel, message) into a new pin result; *found. */
static int load_pin(sq_conn *c, store_op *op, bool *found)
{
    const store_pin_req *r = &op->req.pin;
    sqlite3_stmt *st = stmt2(c, SQ_PIN_GET, r->channel_id, r->message_id);
    int rc = step_row(c, op, st, "reading the pin");
    *found = rc == 1;
    if (rc <= 0)
        return rc;
    store_pin_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    if (col_pin(st, &res->hdr, &res->pin))
        return nomem(op);
    sqlite3_reset(st);
    return 0;
}

static int op_pin(sq_conn *c, store_op *op)
{
    const store_pin_req *r = &op->req.pin;
    bool found = false;
    if (load_pin(c, op, &found))
        return op->status;
    if (found) {
        ((store_pin_result *)op->res)->duplicate = true;
        return op->status;
    }
    if (load_message(c, op, r->channel_id, r->message_id, false))
        return op->status;
    store_message_result *mr = (store_message_result *)op->res;
    op->res = NULL;
    if (mr->msg.is_deleted) {
        store_free(mr);
        return store__op_fail(op, MS_ERR_CONFLICT,
                              "message %" PRIu64 " is deleted and cannot be pinned", r->message_id);
    }
    sqlite3_stmt *st = stmt1(c, SQ_PIN_COUNT, r->channel_id);
    int64_t npins = 0;
    bool f = false;
    if (step_int(c, op, st, "counting pins", &npins, &f))
        goto out;
    if (npins >= STORE_MAX_PINS) {
        char chs[MS_XID_STRLEN];
        store__op_fail(op, MS_ERR_CONFLICT, "channel %s already has %d pins",
                       store__xid_text(op->s, r->channel_id, chs), STORE_MAX_PINS);
        goto out;
    }
    size_t plen = store__utf8_prefix(mr->msg.content, mr->msg.content_len, STORE_PREVIEW_CHARS);
    st = stmt2(c, SQ_PIN_ADD, r->channel_id, r->message_id);
    sqlite3_bind_int64(st, 3, I64(op->now_ms));
    store__sq_bind_xid(c, st, 4, r->pinned_by);
    sqlite3_bind_text(st, 5, mr->msg.content, (int)plen, SQLITE_STATIC);
    store__sq_bind_xid(c, st, 6, mr->msg.sender_id);
    if (step_done(c, op, st, "pinning the message"))
        goto out;
    store_pin_result *res = store__res_new(sizeof *res);
    if (!res) {
        nomem(op);
        goto out;
    }
    op->res = &res->hdr;
    res->pin.channel_id = r->channel_id;
    res->pin.message_id = r->message_id;
    res->pin.pinned_by = r->pinned_by;
    res->pin.pinned_at_ms = op->now_ms;
    res->pin.sender_id = mr->msg.sender_id;
    res->pin.content_preview = store__res_strndup(&res->hdr, mr->msg.content, plen);
    if (!res->pin.content_preview)
        nomem(op);
out:
    store_free(mr);
    return op->status;
}

static int op_unpin(sq_conn *c, store_op *op)
{
    const store_pin_req *r = &op->req.pin;
    bool found = false;
    if (load_pin(c, op, &found))
        return op->status;
    char chs[MS_XID_STRLEN];
    if (!found)
        return store__op_fail(op, MS_ERR_NOT_FOUND,
                              "message %" PRIu64 " is not pinned in channel %s", r->message_id,
                              store__xid_text(op->s, r->channel_id, chs));
    sqlite3_stmt *st = stmt2(c, SQ_PIN_DEL, r->channel_id, r->message_id);
    step_done(c, op, st, "unpinning the message");
    return op->status;
}

static int op_pins_list(sq_conn *c, store_op *op)
{
    store_pins_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    res->items = store__res_alloc(&res->hdr, STORE_MAX_PINS * sizeof *res->items);
    if (!res->items)
        return nomem(op);
    sqlite3_stmt *st = store__sq_stmt(c, SQ_PINS_LIST);
    store__sq_bind_xid(c, st, 1, op->req.channel.channel_id);
    sqlite3_bind_int64(st, 2, STORE_MAX_PINS);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && res->count < STORE_MAX_PINS)
        if (col_pin(st, &res->hdr, &res->items[res->count++]))
            return nomem(op);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        store__sq_fail(c, op, rc, "reading the pins");
    return op->status;
}

/* ------------------------------------------------------------------ read positions */

static int read_position(sq_conn *c, store_op *op, store_read_result *res)
{
    sqlite3_stmt *st = stmt_cu(c, SQ_READ_GET, op->req.read.channel_id, op->req.read.user_id);
    int rc = step_row(c, op, st, "reading the read position");
    if (rc <= 0)
        return rc;
    res->last_read_id = (uint64_t)sqlite3_column_int64(st, 0);
    res->updated_at_ms = (uint64_t)sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    return 0;
}

static int op_read_set(sq_conn *c, store_op *op)
{
    const store_read_req *r = &op->req.read;
    sqlite3_stmt *st = stmt_cu(c, SQ_READ_SET, r->channel_id, r->user_id);
    sqlite3_bind_int64(st, 3, I64(r->message_id));
    sqlite3_bind_int64(st, 4, I64(op->now_ms));
    if (step_done(c, op, st, "setting the read position"))
        return op->status;
    bool moved = sqlite3_changes(c->db) == 1;
    store_read_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    res->moved = moved;
    read_position(c, op, res);
    return op->status;
}

static int op_read_get(sq_conn *c, store_op *op)
{
    store_read_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    if (read_position(c, op, res))
        return op->status;
    /* Bounded: reads at most STORE_UNREAD_CAP index entries past the position. */
    sqlite3_stmt *st = stmt2(c, SQ_UNREAD, op->req.read.channel_id, res->last_read_id);
    sqlite3_bind_int64(st, 3, STORE_UNREAD_CAP);
    int64_t n = 0;
    bool found = false;
    if (step_int(c, op, st, "counting unread messages", &n, &found))
        return op->status;
    res->unread_count = (uint32_t)n;
    res->unread_capped = n >= STORE_UNREAD_CAP;
    return op->status;
}

/* ------------------------------------------------------------------ channels, sync, ping */

static int load_channel(sq_conn *c, store_op *op, ms_xid channel)
{
    sqlite3_stmt *st = stmt1(c, SQ_CHAN_GET, channel);
    int rc = step_row(c, op, st, "reading the channel");
    if (rc <= 0)
        return rc ? rc
                  : store__op_fail(op, MS_ERR_NOT_FOUND, "channel %s is unknown",
                                   STORE_XID(op->s, channel));
    store_channel_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    bool oom = false;
    store_channel *ch = &res->channel;
    ch->channel_id = store__sq_col_xid(st, 0);
    ch->name = dup_col(&res->hdr, st, 1, NULL, &oom);
    ch->type = dup_col(&res->hdr, st, 2, NULL, &oom);
    ch->created_at_ms = (uint64_t)sqlite3_column_int64(st, 3);
    ch->last_message_id = (uint64_t)sqlite3_column_int64(st, 4);
    ch->message_count = (uint64_t)sqlite3_column_int64(st, 5);
    ch->updated_at_ms = (uint64_t)sqlite3_column_int64(st, 6);
    sqlite3_reset(st);
    if (oom)
        nomem(op);
    return op->status;
}

static int op_channel_upsert(sq_conn *c, store_op *op)
{
    const store_channel_upsert_req *r = &op->req.upsert;
    sqlite3_stmt *st = store__sq_stmt(c, SQ_CHAN_UPSERT);
    store__sq_bind_xid(c, st, 1, r->channel_id);
    if (r->name)
        sqlite3_bind_text(st, 2, r->name, -1, SQLITE_STATIC);
    if (r->type)
        sqlite3_bind_text(st, 3, r->type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, I64(r->created_at_ms ? r->created_at_ms : op->now_ms));
    sqlite3_bind_int64(st, 5, I64(op->now_ms));
    sqlite3_bind_int(st, 6, r->created_at_ms != 0);
    if (step_done(c, op, st, "writing the channel"))
        return op->status;
    load_channel(c, op, r->channel_id);
    return op->status;
}

static int load_sync(sq_conn *c, store_op *op, ms_xid channel)
{
    sqlite3_stmt *st = stmt1(c, SQ_SYNC_GET, channel);
    int rc = step_row(c, op, st, "reading the sync state");
    if (rc <= 0)
        return rc ? rc
                  : store__op_fail(op, MS_ERR_NOT_FOUND, "channel %s has no Telegram sync state",
                                   STORE_XID(op->s, channel));
    store_sync_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    store_sync_state *s = &res->state;
    s->channel_id = store__sq_col_xid(st, 0);
    s->telegram_chat_id = sqlite3_column_int64(st, 1);
    s->last_synced_message_id = sqlite3_column_int64(st, 2);
    s->direction = (store_sync_direction)sqlite3_column_int(st, 3);
    s->last_sync_at_ms = (uint64_t)sqlite3_column_int64(st, 4);
    s->created_at_ms = (uint64_t)sqlite3_column_int64(st, 5);
    sqlite3_reset(st);
    return op->status;
}

static int op_sync_update(sq_conn *c, store_op *op)
{
    const store_sync_update_req *r = &op->req.sync;
    sqlite3_stmt *st = store__sq_stmt(c, SQ_SYNC_UPSERT);
    store__sq_bind_xid(c, st, 1, r->channel_id);
    sqlite3_bind_int64(st, 2, r->telegram_chat_id);
    sqlite3_bind_int64(st, 3, r->last_synced_message_id);
    sqlite3_bind_int(st, 4, (int)r->direction);
    sqlite3_bind_int64(st, 5, I64(op->now_ms));
    if (step_done(c, op, st, "writing the sync state"))
        return op->status;
    load_sync(c, op, r->channel_id);
    return op->status;
}

static int op_ping(sq_conn *c, store_op *op)
{
    uint64_t t0 = uv_hrtime();
    sqlite3_stmt *st = store__sq_stmt(c, SQ_PING);
    int64_t v = 0;
    bool found = false;
    if (step_int(c, op, st, "probing the database", &v, &found))
        return op->status;
    store_ping_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    res->latency_us = (uv_hrtime() - t0) / 1000;
    res->backend = "sqlite";
    res->schema_version = (int)v;
    return op->status;
}

static int op_reaction_add(sq_conn *c, store_op *op)
{
    return op_reaction(c, op, true);
}

static int op_reaction_remove(sq_conn *c, store_op *op)
{
    return op_reaction(c, op, false);
}

static int op_channel_get(sq_conn *c, store_op *op)
{
    return load_channel(c, op, op->req.channel.channel_id);
}

static int op_sync_get(sq_conn *c, store_op *op)
{
    return load_sync(c, op, op->req.channel.channel_id);
}

static int op_health(sq_conn *c, store_op *op)
{
    store__sq_health(c, op);
    return op->status;
}

static int op_search(sq_conn *c, store_op *op)
{
    store__sq_search(c, op);
    return op->status;
}

/* The operations, from the store's table (store.h): op_<label> each. */
#define SQ_OP(KIND, label, ...) [STORE_OP_##KIND] = op_##label,
static int (*const sq_ops[STORE_OP_COUNT])(sq_conn *c, store_op *op) = {STORE_OPS(SQ_OP)};
#undef SQ_OP

void store__sq_run(sq_conn *c, store_op *op)
{
    if ((unsigned)op->kind >= STORE_OP_COUNT) {
        store__op_fail(op, MS_ERR_INTERNAL, "unknown operation");
        return;
    }
    (void)sq_ops[op->kind](c, op);
}
