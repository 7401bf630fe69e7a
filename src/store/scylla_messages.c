/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scylla_messages.c - the ScyllaDB backend's messages: reading a message row,
 * inserting (nonce and Telegram claims, the write batch, the bucket's count),
 * pages over the channel's bucket list, edit, delete and edit history.
 */
#include "scylla_internal.h"

#if defined(MSGSTORE_HAVE_CQL_SESSION)

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#include "core/metrics.h"

/*
 * Reads the current row (SC_MSG_COLS) into *m. Returns 1 for a usable row,
 * 0 for a partial row to skip (no sender or time: only an update reached it),
 * or MS_ERR_NOMEM. A deleted message never shows content, even if an edit
 * raced the delete.
 */
int sc_row_msg(cql_result *r, store_result_hdr *res, store_message *m)
{
    bool oom = false;
    memset(m, 0, sizeof *m);
    if (cql_row_is_null(r, 2) || cql_row_is_null(r, 12))
        return 0;
    m->channel_id = sc_col_id(r, 0);
    m->id = (uint64_t)sc_col_i64(r, 1);
    m->bucket = ms_bucket_of(m->id);
    m->sender_id = sc_col_id(r, 2);
    m->type = (store_msg_type)sc_col_tiny(r, 3);
    m->source = (store_msg_source)sc_col_tiny(r, 4);
    m->is_deleted = sc_col_bool(r, 15);
    m->deleted_at_ms = (uint64_t)sc_col_i64(r, 16);
    if (!m->is_deleted) {
        m->content = sc_col_text(r, 5, res, &m->content_len, false, &oom);
        m->attachments = sc_col_text(r, 7, res, NULL, true, &oom);
        m->metadata = sc_col_text(r, 8, res, NULL, true, &oom);
    }
    if (!m->content && !oom) {
        m->content = store__res_strndup(res, "", 0);
        m->content_len = 0;
        oom = !m->content;
    }
    m->reply_to = (uint64_t)sc_col_i64(r, 6);
    m->nonce = sc_col_text(r, 9, res, NULL, true, &oom);
    if (!cql_row_is_null(r, 10)) {
        m->has_telegram = true;
        m->telegram_chat_id = sc_col_i64(r, 10);
        m->telegram_message_id = sc_col_i64(r, 11);
    }
    m->created_at_ms = (uint64_t)sc_col_i64(r, 12);
    m->is_edited = sc_col_bool(r, 13);
    m->edited_at_ms = (uint64_t)sc_col_i64(r, 14);
    return oom ? MS_ERR_NOMEM : 1;
}

/* Reads one message into *m (strings into res). 0, or fails op (NOT_FOUND). */
int sc_get_msg(sc_conn *c, store_op *op, ms_xid ch, uint64_t id, store_result_hdr *res,
               store_message *m)
{
    sc_bind_MSG_GET(sc_idf(c), sc_vals(c), ch, (int32_t)ms_bucket_of(id), (int64_t)id);
    cql_result *r = NULL;
    if (sc_run(c, op, SC_MSG_GET, "reading the message", &r))
        return op->status;
    int got = 0;
    if (cql_result_next_row(r) == 0)
        got = sc_row_msg(r, res, m);
    cql_result_destroy(r);
    if (got < 0)
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    if (got == 0)
        return store__op_fail(op, MS_ERR_NOT_FOUND, "message %" PRIu64 " not found in channel %s",
                              id, STORE_XID(op->s, ch));
    return 0;
}

/* Loads a message into a new message result (op->res). */
int sc_load_message(sc_conn *c, store_op *op, ms_xid ch, uint64_t id, bool duplicate)
{
    store_message_result *res = store__res_new(sizeof *res);
    if (!res)
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    if (sc_get_msg(c, op, ch, id, &res->hdr, &res->msg)) {
        store_free(res);
        return op->status;
    }
    res->duplicate = duplicate;
    op->res = &res->hdr;
    return 0;
}

/* ------------------------------------------------------------------ known channels and buckets */

static size_t known_slot(ms_xid ch, int32_t bucket)
{
    uint64_t key = sc_xid_key(ch) ^ ((uint64_t)(uint32_t)bucket << 32);
    return (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 40) % KNOWN_SLOTS;
}

static bool known_has(sc_known_set *k, ms_xid ch, int32_t bucket, int64_t now)
{
    bool found = false;
    pthread_mutex_lock(&k->mu);
    size_t i = known_slot(ch, bucket);
    for (size_t n = 0; n < KNOWN_SLOTS && !ms_xid_is_none(k->slots[i].ch);
         n++, i = (i + 1) % KNOWN_SLOTS) {
        const sc_known_slot *e = &k->slots[i];
        if (e->bucket == bucket && ms_xid_eq(e->ch, ch)) {
            found = e->until_ms > now;
            break;
        }
    }
    pthread_mutex_unlock(&k->mu);
    return found;
}

static void known_add(sc_known_set *k, ms_xid ch, int32_t bucket, int64_t until)
{
    pthread_mutex_lock(&k->mu);
    if (k->n >= KNOWN_SLOTS / 2) { /* keep probing short: forget everything */
        memset(k->slots, 0, KNOWN_SLOTS * sizeof *k->slots);
        k->n = 0;
    }
    size_t i = known_slot(ch, bucket);
    while (!ms_xid_is_none(k->slots[i].ch) &&
           !(k->slots[i].bucket == bucket && ms_xid_eq(k->slots[i].ch, ch)))
        i = (i + 1) % KNOWN_SLOTS;
    if (ms_xid_is_none(k->slots[i].ch))
        k->n++;
    k->slots[i] = (sc_known_slot){.ch = ch, .bucket = bucket, .until_ms = until};
    pthread_mutex_unlock(&k->mu);
}

bool sc_known_has(sc_backend *b, ms_xid ch)
{
    return known_has(&b->known, ch, 0, 0);
}

void sc_known_add(sc_backend *b, ms_xid ch)
{
    known_add(&b->known, ch, 0, INT64_MAX);
}

bool sc_known_listed(sc_backend *b, ms_xid ch, int32_t bucket)
{
    return known_has(&b->listed, ch, bucket, sc_mono_ms());
}

void sc_known_list(sc_backend *b, ms_xid ch, int32_t bucket)
{
    known_add(&b->listed, ch, bucket, sc_mono_ms() + SC_BUCKET_MEMORY_MS);
}

/* ------------------------------------------------------------------ messages */

/*
 * Binds insert request r as message `id` (created: its time) for statement
 * `which` (SC_MSG_INSERT or SC_MSG_INSERT_NEW). What it lacks stays unset.
 */
static void bind_message(const sc_conn *c, cql_values *v, sc_stmt_id which,
                         const store_insert_req *r, uint64_t id, uint64_t created)
{
    int64_t reply_to = (int64_t)r->reply_to;
    (which == SC_MSG_INSERT_NEW ? sc_bind_MSG_INSERT_NEW : sc_bind_MSG_INSERT)(
        sc_idf(c), v, r->channel_id, (int32_t)ms_bucket_of(id), (int64_t)id, r->sender_id,
        (int8_t)r->type, (int8_t)r->source, r->content, r->content_len,
        r->reply_to ? &reply_to : NULL, r->attachments, r->metadata, r->nonce,
        r->has_telegram ? &r->telegram_chat_id : NULL,
        r->has_telegram ? &r->telegram_message_id : NULL, (int64_t)created);
}

/* The same message: same nonce, same Telegram ids (a retry of one request). */
static bool same_request(const store_insert_req *r, const store_message *m)
{
    if (r->nonce && (!m->nonce || strcmp(r->nonce, m->nonce) != 0))
        return false;
    if (r->has_telegram && (!m->has_telegram || m->telegram_chat_id != r->telegram_chat_id ||
                            m->telegram_message_id != r->telegram_message_id))
        return false;
    return r->nonce || r->has_telegram;
}

/*
 * Message `id` was already there when op wrote it: written by another
 * attempt of the same request (1: op->res is the stored message), or a
 * conflict of ids.
 */
static int stored_instead(sc_conn *c, store_op *op, uint64_t id)
{
    const store_insert_req *r = &op->req.insert;
    if (sc_load_message(c, op, r->channel_id, id, true))
        return op->status;
    if (same_request(r, &((store_message_result *)op->res)->msg))
        return 1;
    store_free(op->res);
    op->res = NULL;
    return store__op_fail(op, MS_ERR_CONFLICT,
                          "message id %" PRIu64 " already exists in channel %s", id,
                          STORE_XID(op->s, r->channel_id));
}

/* ------------------------------------------------------------------ search change log */

bool sc_search_on(const sc_backend *b)
{
    return b->cfg->search_pg_url[0] != '\0';
}

void sc_bind_search_entry(const store_config *cfg, ms_id_format idf, cql_values *v, uint64_t seq,
                          ms_xid ch, uint64_t id, int kind, uint64_t version)
{
    sc_bind_SEARCH_LOG(idf, v, store_search_shard(ch, cfg->search_shards), (int64_t)seq, ch,
                       (int64_t)id, kind, (int64_t)version,
                       (int32_t)(cfg->search_log_ttl_ms / 1000));
}

int sc_bind_search_log(sc_conn *c, store_op *op, cql_values *v, ms_xid ch, uint64_t id, int kind,
                       uint64_t version)
{
    uint64_t seq = store__next_id(op->s);
    if (!seq)
        return store__op_fail(op, MS_ERR_CLOCK, "the clock stepped back; retry");
    sc_bind_search_entry(c->b->cfg, c->b->cfg->id_format, v, seq, ch, id, kind, version);
    return 0;
}

int sc_search_log(sc_conn *c, store_op *op, ms_xid ch, uint64_t id, int kind, uint64_t version)
{
    if (!sc_search_on(c->b))
        return 0;
    if (sc_bind_search_log(c, op, sc_vals(c), ch, id, kind, version))
        return op->status;
    return sc_run(c, op, SC_SEARCH_LOG, "logging the change for search", NULL);
}

/*
 * Counts a written message in its bucket: one counter update, never
 * retried. On a loop, the inserts of a (channel, bucket) whose messages were
 * written in the same turn share one update of count + n, sent at the end of
 * the turn; each returns once it answered, as after an update of its own.
 * A failed or timed-out update (applied once, or not at all, like a single
 * increment) records the bucket for the repair, which recounts its rows; the
 * messages are durable, so the inserts succeed.
 */
static void count_message(sc_conn *c, store_op *op, ms_xid ch, int32_t bucket)
{
    uint32_t n = c->task ? sc_count_join(c, ch, bucket) : 1;
    if (n == 0) /* counted by the group's leader */
        return;
    ms_counter_add(c->b->m_count_updates, 1);
    ms_counter_add(c->b->m_count_incs, n);
    sc_bind_COUNT_MSG(sc_idf(c), sc_vals(c), (int64_t)n, ch, bucket);
    if (sc_run(c, op, SC_COUNT_MSG, "counting the message", NULL) != 0) {
        sc_note_failure(c, op, RP_MESSAGES, ch, bucket, NULL);
        op->status = 0;
        op->detail[0] = '\0';
    }
    if (c->task)
        sc_count_done(c);
}

/*
 * An insert batch with its change-log entry failed and may have written the
 * message without the entry: writes the entry again on its own (best effort;
 * the insert is not acknowledged either way), so a message that shows in
 * pages is indexed too. Keeps op's status and detail.
 */
static void relog(sc_conn *c, store_op *op, ms_xid ch, uint64_t id, uint64_t created)
{
    int status = op->status;
    char detail[sizeof op->detail];
    memcpy(detail, op->detail, sizeof detail);
    if (sc_search_log(c, op, ch, id, STORE_SEARCH_LOG_INSERT, created))
        MS_DEBUG("store", "scylla: change-log entry of message %" PRIu64 " not written: %s", id,
                 op->detail);
    op->status = status;
    memcpy(op->detail, detail, sizeof detail);
}

/*
 * Writes the message row and what goes with it. The bucket is registered
 * first: a listed bucket without its message costs a page nothing but a
 * query, a message in an unlisted bucket would be invisible to pages.
 * count: increment the bucket's message count once (never retried); else,
 * or when that fails, or when a failure leaves the message possibly written,
 * the bucket's count is recorded for the repair, which recounts its rows.
 * Returns 0, 1 when another attempt of the same request wrote the message
 * first (op->res: the stored one), or fails op.
 */
static int write_message(sc_conn *c, store_op *op, uint64_t id, bool count)
{
    const store_insert_req *r = &op->req.insert;
    const store_config *cfg = c->b->cfg;
    uint64_t created = ms_snowflake_unix_ms(id, cfg->epoch_ms);
    int32_t bucket = (int32_t)ms_bucket_of(id);
    bool listed = sc_known_listed(c->b, r->channel_id, bucket);
    if (!sc_known_has(c->b, r->channel_id)) {
        sc_bind_META_CREATE(sc_idf(c), sc_vals(c), r->channel_id, "", 0, "channel", 7,
                            (int64_t)created, (int64_t)op->now_ms);
        if (sc_run(c, op, SC_META_CREATE, "creating the channel", NULL))
            return op->status;
        sc_known_add(c->b, r->channel_id);
    }
    if (op->id_given || r->nonce || r->has_telegram) {
        /*
         * Written only if absent: an id chosen by the caller must not
         * overwrite a message, and a message claimed by a nonce or Telegram
         * ids may be completed by a retry (duplicate_of) while its first
         * writer is slow: whichever writes first is the one stored, and both
         * answer with it (issue 10 item 7).
         */
        if (!listed) {
            sc_bind_BUCKET_ADD(sc_idf(c), sc_vals(c), r->channel_id, bucket);
            if (sc_run(c, op, SC_BUCKET_ADD, "recording the bucket", NULL))
                return op->status;
            sc_known_list(c->b, r->channel_id, bucket);
        }
        if (sc_search_log(c, op, r->channel_id, id, STORE_SEARCH_LOG_INSERT, created))
            return op->status;
        bind_message(c, sc_vals(c), SC_MSG_INSERT_NEW, r, id, created);
        cql_result *res = NULL;
        if (sc_run(c, op, SC_MSG_INSERT_NEW, "writing the message", &res))
            goto uncounted;
        bool applied = sc_lwt_applied(res);
        cql_result_destroy(res);
        if (!applied)
            return stored_instead(c, op, id);
        sc_bind_META_LAST(sc_idf(c), sc_vals(c), (int64_t)(created * 1000), (int64_t)id,
                          r->channel_id);
        if (sc_run(c, op, SC_META_LAST, "updating the channel metadata", NULL))
            goto uncounted;
    } else {
        /*
         * One round trip: the bucket's listing (unless this process listed
         * it lately), message and last_message_id in an unlogged batch (two
         * or three partitions, one more with search; each write idempotent,
         * so the batch may be retried). last_message_id only grows: its write timestamp is the
         * id's time in µs. A failure leaves at most a listed bucket or an
         * unacknowledged message; a retry with the same nonce completes it.
         */
        sc_stmt_id ids[4];
        int nst = 0;
        if (!listed)
            ids[nst++] = SC_BUCKET_ADD;
        int m = nst; /* the message's statement, then last_message_id's */
        ids[nst++] = SC_MSG_INSERT;
        ids[nst++] = SC_META_LAST;
        /*
         * With search, the change-log entry joins the batch, still unlogged:
         * the message is acknowledged only when every statement of the batch
         * was applied, so an acknowledged message always has its entry. A
         * logged batch (both or neither, even unacknowledged) cost a third
         * of the insert throughput in its batchlog writes; the entry without
         * its message is skipped by the indexer, and the message without its
         * entry is an unacknowledged insert, which gets its entry below when
         * the failure is seen (docs/data-model.md, "Search").
         */
        bool search = sc_search_on(c->b);
        if (search)
            ids[nst++] = SC_SEARCH_LOG;
        cql_statement st[4];
        for (int k = 0; k < nst; k++) {
            if (sc_prepare(c, op, ids[k], "writing the message"))
                return op->status;
            cql_values_reset(&c->bv[k]);
            cql_statement_init(&st[k]);
            st[k].prepared = c->ps[ids[k]];
            st[k].values = &c->bv[k];
        }
        if (!listed)
            sc_bind_BUCKET_ADD(sc_idf(c), &c->bv[0], r->channel_id, bucket);
        bind_message(c, &c->bv[m], SC_MSG_INSERT, r, id, created);
        sc_bind_META_LAST(sc_idf(c), &c->bv[m + 1], (int64_t)(created * 1000), (int64_t)id,
                          r->channel_id);
        if (search && sc_bind_search_log(c, op, &c->bv[m + 2], r->channel_id, id,
                                         STORE_SEARCH_LOG_INSERT, created))
            return op->status;
        for (int k = 0; k < nst; k++)
            if (sc_check_values(op, ids[k], &c->bv[k], "writing the message"))
                return op->status;
        cql_batch_request br;
        cql_batch_request_init(&br);
        br.kind = CQL_BATCH_KIND_UNLOGGED;
        br.statements = st;
        br.count = (size_t)nst;
        br.consistency = (int)cfg->scylla_write_consistency;
        br.idempotent = true;
        br.no_speculative = true;
        cql_status cs;
        c->queries++;
        if (sc_exec_batch(c, &br, NULL, &cs) != 0) {
            sc_fail(op, &cs, "writing the message");
            if (search && sc_maybe_applied(op->status))
                relog(c, op, r->channel_id, id, created);
            goto uncounted;
        }
        if (!listed)
            sc_known_list(c->b, r->channel_id, bucket);
    }
    if (count) {
        count_message(c, op, r->channel_id, bucket);
        return 0;
    }
    sc_note_failure(c, op, RP_MESSAGES, r->channel_id, bucket, NULL);
    return 0;
uncounted:
    if (sc_maybe_applied(op->status))
        sc_note_failure(c, op, RP_MESSAGES, r->channel_id, bucket, NULL);
    return op->status;
}

/*
 * The nonce or Telegram ids were claimed by message `id` first. Return it;
 * when it is not there yet (the claimer is still writing it, or died between
 * claim and write), wait a little, then complete it with this request's
 * content, uncounted.
 */
static int duplicate_of(sc_conn *c, store_op *op, ms_xid ch, uint64_t id)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        if (sc_load_message(c, op, ch, id, true) == 0) {
            /* the first insert may have failed after writing the message: list its bucket */
            sc_bind_BUCKET_ADD(sc_idf(c), sc_vals(c), ch, (int32_t)ms_bucket_of(id));
            if (sc_run(c, op, SC_BUCKET_ADD, "recording the bucket", NULL))
                return op->status;
            /* ... or before its change-log entry: the duplicate is acknowledged now */
            return sc_search_log(c, op, ch, id, STORE_SEARCH_LOG_INSERT,
                                 ms_snowflake_unix_ms(id, c->b->cfg->epoch_ms));
        }
        if (op->status != MS_ERR_NOT_FOUND)
            return op->status;
        op->status = 0;
        op->detail[0] = '\0';
        sc_sleep(c, 25);
    }
    if (!ms_xid_eq(ch, op->req.insert.channel_id))
        return store__op_fail(op, MS_ERR_UNAVAILABLE,
                              "the Telegram message is claimed by an unfinished insert in channel "
                              "%s; retry",
                              STORE_XID(op->s, ch));
    MS_WARN("store",
            "scylla: completing message %" PRIu64 " of channel %s whose insert did not finish", id,
            STORE_XID(op->s, ch));
    int rc = write_message(c, op, id, false);
    if (rc)
        return rc > 0 ? 0 : op->status;
    return sc_load_message(c, op, ch, id, true);
}

int sc_op_insert(sc_conn *c, store_op *op)
{
    const store_insert_req *r = &op->req.insert;
    cql_result *res = NULL;
    bool tg_claimed = false;
    if (r->has_telegram) {
        sc_bind_TG_CLAIM(sc_idf(c), sc_vals(c), r->telegram_message_id, r->telegram_chat_id,
                         r->channel_id, (int64_t)r->id, (int64_t)op->now_ms);
        if (sc_run(c, op, SC_TG_CLAIM, "claiming the Telegram message", &res))
            return op->status;
        if (!sc_lwt_applied(res)) {
            ms_xid ch = sc_col_id(res, cql_result_column_index(res, "channel_id"));
            uint64_t id = (uint64_t)sc_named_i64(res, "message_id");
            cql_result_destroy(res);
            return duplicate_of(c, op, ch, id);
        }
        cql_result_destroy(res);
        tg_claimed = true;
    }
    if (r->nonce) {
        sc_bind_NONCE_CLAIM(sc_idf(c), sc_vals(c), r->channel_id, r->nonce, strlen(r->nonce),
                            (int64_t)r->id, (int64_t)op->now_ms);
        if (sc_run(c, op, SC_NONCE_CLAIM, "claiming the nonce", &res))
            goto unclaim;
        if (!sc_lwt_applied(res)) {
            uint64_t id = (uint64_t)sc_named_i64(res, "message_id");
            cql_result_destroy(res);
            if (tg_claimed) {
                sc_bind_TG_UNCLAIM(sc_idf(c), sc_vals(c), r->telegram_message_id,
                                   r->telegram_chat_id, (int64_t)r->id);
                if (sc_run(c, op, SC_TG_UNCLAIM, "releasing the Telegram claim", NULL))
                    return op->status;
            }
            return duplicate_of(c, op, r->channel_id, id);
        }
        cql_result_destroy(res);
    }
    if (sc_take_fault(c, STORE_FAULT_SLOW_INSERT)) /* a slow first writer (tests) */
        sc_sleep(c, 1000);
    int wr = write_message(c, op, r->id, true);
    if (wr > 0) /* a retry of this request completed the message first: that one is stored */
        return 0;
    if (wr)
        goto unclaim;

    return store__insert_result(op, ms_snowflake_unix_ms(r->id, c->b->cfg->epoch_ms));
unclaim:
    /*
     * The message was not written. A claim left behind is completed by the
     * next insert with the same nonce/Telegram ids (duplicate_of); an explicit
     * id conflict releases its Telegram claim now so that it can be retried.
     */
    if (op->status == MS_ERR_CONFLICT && tg_claimed) {
        int st = op->status;
        char detail[STORE_DETAIL_LEN];
        memcpy(detail, op->detail, sizeof detail);
        sc_bind_TG_UNCLAIM(sc_idf(c), sc_vals(c), r->telegram_message_id, r->telegram_chat_id,
                           (int64_t)r->id);
        sc_run(c, op, SC_TG_UNCLAIM, "releasing the Telegram claim", NULL);
        op->status = st;
        memcpy(op->detail, detail, sizeof detail);
    }
    return op->status;
}

int sc_op_get(sc_conn *c, store_op *op)
{
    return sc_load_message(c, op, op->req.get.channel_id, op->req.get.message_id, false);
}

int sc_op_get_telegram(sc_conn *c, store_op *op)
{
    sc_bind_TG_GET(sc_idf(c), sc_vals(c), op->req.tg.telegram_message_id,
                   op->req.tg.telegram_chat_id);
    cql_result *r = NULL;
    if (sc_run(c, op, SC_TG_GET, "reading the Telegram mapping", &r))
        return op->status;
    if (cql_result_next_row(r) != 0) {
        cql_result_destroy(r);
        return store__op_fail(op, MS_ERR_NOT_FOUND,
                              "no message for Telegram message %" PRId64 " in chat %" PRId64,
                              op->req.tg.telegram_message_id, op->req.tg.telegram_chat_id);
    }
    ms_xid ch = sc_col_id(r, 0);
    uint64_t id = (uint64_t)sc_col_i64(r, 1);
    cql_result_destroy(r);
    int rc = sc_load_message(c, op, ch, id, false);
    if (rc == MS_ERR_NOT_FOUND)
        store__op_fail(op, MS_ERR_NOT_FOUND,
                       "no message for Telegram message %" PRId64 " in chat %" PRId64,
                       op->req.tg.telegram_message_id, op->req.tg.telegram_chat_id);
    return op->status;
}

/* ------------------------------------------------------------------ pages */

typedef struct msgvec {
    store_message *v;
    size_t n, cap;
} msgvec;

static int vec_push(msgvec *mv, const store_message *m)
{
    if (mv->n == mv->cap) {
        size_t cap = mv->cap ? mv->cap * 2 : 64;
        store_message *nv = realloc(mv->v, cap * sizeof *nv);
        if (!nv)
            return MS_ERR_NOMEM;
        mv->v = nv;
        mv->cap = cap;
    }
    mv->v[mv->n++] = *m;
    return 0;
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = ((const store_message *)a)->id, y = ((const store_message *)b)->id;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

static int cmp_asc(const void *a, const void *b)
{
    return -cmp_desc(a, b);
}

/* Whether mv's messages are already in dir's order (one partition's read comes so: no sort). */
static bool in_order(const msgvec *mv, bool desc)
{
    for (size_t i = 1; i < mv->n; i++)
        if (desc ? mv->v[i - 1].id < mv->v[i].id : mv->v[i - 1].id > mv->v[i].id)
            return false;
    return true;
}

/* The rows of one read, gathered over its pages. */
typedef struct rows_acc {
    store_op *op;
    store_result_hdr *res;
    msgvec tmp;
} rows_acc;

static int acc_page(void *ud, cql_result *r)
{
    rows_acc *a = ud;
    store_message m;
    while (cql_result_next_row(r) == 0) {
        int rc = sc_row_msg(r, a->res, &m);
        if (rc < 0 || (rc == 1 && vec_push(&a->tmp, &m) != 0))
            return store__op_fail(a->op, MS_ERR_NOMEM, "out of memory");
    }
    return 0;
}

/*
 * The most a message row can take: content at its character limit (4 bytes
 * each), both JSON columns full, the rest.
 */
static size_t max_row_bytes(const store_config *cfg)
{
    return (size_t)cfg->max_content_chars * 4 + 2 * STORE_MAX_JSON_BYTES + STORE_MAX_NONCE_BYTES +
           256;
}

/* Rows per page so that one page stays under SC_READ_BYTES whatever the contents. */
static int32_t page_rows(const store_config *cfg)
{
    size_t n = SC_READ_BYTES / max_row_bytes(cfg);
    return n < 1 ? 1 : (int32_t)n;
}

/*
 * Runs statement id (values in c->v) page by page (SC_PAGE_AFTER_IN, which
 * cannot be paged, in one read bounded by its caller) and appends its rows,
 * sorted by dir, to mv, up to `want` in mv.
 */
static int take_read(sc_conn *c, store_op *op, sc_stmt_id id, store_result_hdr *res, msgvec *mv,
                     size_t want, bool desc)
{
    rows_acc a = {.op = op, .res = res};
    /*
     * IN + ORDER BY: unpaged (bounded by the caller). One partition: pages of
     * `want` rows, one request for a page of usual messages (ScyllaDB cuts a
     * page at 1 MiB itself). IN over several: pages that stay under
     * SC_READ_BYTES with every row at its largest, whatever the server.
     */
    int32_t rows = id == SC_PAGE_AFTER_IN                              ? 0
                   : id == SC_PAGE_BEFORE_IN || id == SC_PAGE_RANGE_IN ? page_rows(c->b->cfg)
                                                                       : (int32_t)want;
    if (sc_run_pages(c, op, id, "reading the page", rows, acc_page, &a)) {
        free(a.tmp.v);
        return op->status;
    }
    if (a.tmp.n > 1 && !in_order(&a.tmp, desc))
        qsort(a.tmp.v, a.tmp.n, sizeof *a.tmp.v, desc ? cmp_desc : cmp_asc);
    for (size_t i = 0; i < a.tmp.n && mv->n < want; i++) {
        if (vec_push(mv, &a.tmp.v[i]) != 0) {
            free(a.tmp.v);
            return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
        }
    }
    free(a.tmp.v);
    return 0;
}

/* The next chunk of the channel's bucket list from `from` (inclusive) in one direction. */
int sc_bucket_list(sc_conn *c, store_op *op, ms_xid ch, int32_t from, bool desc, int32_t *out,
                   size_t *n)
{
    (desc ? sc_bind_BUCKETS_DOWN : sc_bind_BUCKETS_UP)(sc_idf(c), sc_vals(c), ch, from,
                                                       BUCKET_CHUNK);
    cql_result *r = NULL;
    if (sc_run(c, op, desc ? SC_BUCKETS_DOWN : SC_BUCKETS_UP, "reading the bucket list", &r))
        return op->status;
    *n = 0;
    while (cql_result_next_row(r) == 0 && *n < BUCKET_CHUNK) {
        int32_t b = 0;
        if (cql_row_get_int(r, 0, &b) == 0)
            out[(*n)++] = b;
    }
    cql_result_destroy(r);
    return 0;
}

/*
 * Collects up to `want` messages next to `anchor` into mv: desc = older than
 * anchor (newest first), else newer than anchor (oldest first; `inclusive`:
 * the anchor too). First the anchor's own bucket (for the latest page: the
 * current one), which fills most pages of an active channel in one query;
 * then, per chunk of the channel's non-empty buckets, one bucket-list query
 * and one IN query over at most `want` of them (each listed bucket holds at
 * least one row, soft-deleted rows included). A page costs 1 + 2 per chunk
 * of 32 non-empty buckets, however many empty buckets lie between.
 */
static int collect(sc_conn *c, store_op *op, ms_xid ch, uint64_t anchor, bool desc, bool inclusive,
                   size_t want, store_result_hdr *res, msgvec *mv)
{
    const store_config *cfg = c->b->cfg;
    int32_t start = (int32_t)ms_bucket_of(desc ? anchor - 1 : anchor);
    if (desc) {
        /* no message lies in the future (ids are checked against the clock) */
        uint64_t now_id = ms_snowflake_from_unix_ms(op->now_ms + 60000, cfg->epoch_ms);
        int32_t now_b = (int32_t)ms_bucket_of(now_id);
        if (now_b < start)
            start = now_b;
    }
    sc_stmt_id id = desc ? SC_PAGE_BEFORE : inclusive ? SC_PAGE_FROM : SC_PAGE_AFTER;
    (desc ? sc_bind_PAGE_BEFORE
     : inclusive
         ? sc_bind_PAGE_FROM
         : sc_bind_PAGE_AFTER)(sc_idf(c), sc_vals(c), ch, start, (int64_t)anchor, (int32_t)want);
    int rc = take_read(c, op, id, res, mv, want, desc);
    if (rc)
        return rc;

    /*
     * The next buckets, a chunk at a time, all wholly on the far side of the
     * anchor. Older ones: one IN read, paged (sorted here anyway). Newer
     * ones need the oldest rows of each bucket, so ORDER BY, which ScyllaDB
     * does not page together with IN on the partition key: in one read
     * when even rows at their largest stay under SC_READ_BYTES (short
     * pages), else first the ids alone (a few bytes a row: bounded), then
     * the rows up to the last id wanted, paged without ORDER BY. Every read
     * stays under SC_READ_BYTES whatever the contents (issue 14 item 4).
     */
    int32_t list[BUCKET_CHUNK];
    size_t n = 0;
    int32_t from = desc ? start - 1 : start + 1;
    while (mv->n < want && from >= 0) {
        if (sc_bucket_list(c, op, ch, from, desc, list, &n))
            return op->status;
        if (n == 0)
            break;
        size_t left = want - mv->n;
        size_t use = n < left ? n : left;
        uint64_t last = STORE_ID_MAX;
        if (!desc && use * left * max_row_bytes(c->b->cfg) <= SC_READ_BYTES) {
            sc_bind_PAGE_AFTER_IN(sc_idf(c), sc_vals(c), ch, list, use, (int64_t)anchor,
                                  (int32_t)left);
            rc = take_read(c, op, SC_PAGE_AFTER_IN, res, mv, want, false);
            if (rc)
                return rc;
            last = 0; /* read */
        } else if (!desc) {
            sc_bind_PAGE_AFTER_IDS(sc_idf(c), sc_vals(c), ch, list, use, (int64_t)anchor,
                                   (int32_t)left);
            cql_result *r = NULL;
            if (sc_run(c, op, SC_PAGE_AFTER_IDS, "reading the page", &r))
                return op->status;
            uint64_t *got = malloc((r->row_count > 0 ? (size_t)r->row_count : 1) * sizeof *got);
            size_t ng = 0;
            if (!got) {
                cql_result_destroy(r);
                return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
            }
            while (ng < (size_t)(r->row_count > 0 ? r->row_count : 0) &&
                   cql_result_next_row(r) == 0)
                got[ng++] = (uint64_t)sc_col_i64(r, 1);
            cql_result_destroy(r);
            if (ng > 1)
                qsort(got, ng, sizeof *got, cmp_u64);
            last = ng == 0 ? 0 : got[(ng < left ? ng : left) - 1];
            free(got);
        }
        if (desc || last) {
            if (desc)
                sc_bind_PAGE_BEFORE_IN(sc_idf(c), sc_vals(c), ch, list, use, (int64_t)anchor,
                                       (int32_t)left);
            else
                sc_bind_PAGE_RANGE_IN(sc_idf(c), sc_vals(c), ch, list, use, (int64_t)anchor,
                                      (int64_t)last);
            rc = take_read(c, op, desc ? SC_PAGE_BEFORE_IN : SC_PAGE_RANGE_IN, res, mv, want, desc);
            if (rc)
                return rc;
        }
        if (n < BUCKET_CHUNK && use == n)
            break;
        from = desc ? list[use - 1] - 1 : list[use - 1] + 1;
    }
    return 0;
}

int sc_op_page(sc_conn *c, store_op *op)
{
    const store_page_req *r = &op->req.page;
    size_t limit = (size_t)r->limit;
    store_page_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    msgvec older = {0}, newer = {0};
    int rc = 0;
    switch (r->mode) {
    case STORE_PAGE_LATEST:
    case STORE_PAGE_BEFORE: {
        uint64_t anchor = r->mode == STORE_PAGE_LATEST ? STORE_ID_MAX : r->anchor;
        rc = collect(c, op, r->channel_id, anchor, true, false, limit + 1, &res->hdr, &older);
        res->more_older = older.n > limit;
        break;
    }
    case STORE_PAGE_AFTER:
        rc = collect(c, op, r->channel_id, r->anchor, false, false, limit + 1, &res->hdr, &newer);
        res->more_newer = newer.n > limit;
        break;
    case STORE_PAGE_AROUND: {
        size_t older_n = limit / 2, newer_n = limit - older_n;
        rc = collect(c, op, r->channel_id, r->anchor, false, true, newer_n + 1, &res->hdr, &newer);
        if (!rc)
            rc = collect(c, op, r->channel_id, r->anchor, true, false, older_n + 1, &res->hdr,
                         &older);
        res->more_newer = newer.n > newer_n;
        res->more_older = older.n > older_n;
        if (newer.n > newer_n)
            newer.n = newer_n;
        if (older.n > older_n)
            older.n = older_n;
        break;
    }
    }
    if (!rc) {
        if (older.n > limit)
            older.n = limit;
        if (newer.n > limit)
            newer.n = limit;
        res->count = older.n + newer.n;
        res->items =
            store__res_alloc(&res->hdr, (res->count ? res->count : 1) * sizeof *res->items);
        if (!res->items) {
            rc = store__op_fail(op, MS_ERR_NOMEM, "out of memory");
        } else {
            size_t k = 0;
            for (size_t i = newer.n; i > 0; i--) /* newest first */
                res->items[k++] = newer.v[i - 1];
            for (size_t i = 0; i < older.n; i++)
                res->items[k++] = older.v[i];
        }
    }
    free(older.v);
    free(newer.v);
    return rc;
}

/* ------------------------------------------------------------------ edit, delete */

/* The statements of a delete (soft delete, edit history purged); 0 or fails op. */
static int delete_rows(sc_conn *c, store_op *op, ms_xid ch, uint64_t msg)
{
    sc_bind_DELETE_APPLY(sc_idf(c), sc_vals(c), (int64_t)op->now_ms, ch, (int32_t)ms_bucket_of(msg),
                         (int64_t)msg);
    if (sc_run(c, op, SC_DELETE_APPLY, "deleting the message", NULL))
        return op->status;
    sc_bind_EDITS_PURGE(sc_idf(c), sc_vals(c), ch, (int64_t)msg);
    return sc_run(c, op, SC_EDITS_PURGE, "purging the edit history", NULL);
}

/*
 * An edit races a delete (issue 10 item 6): the content is replaced only if
 * the message is still not deleted, in a lightweight transaction, so the
 * order holds: a delete that committed first wins (the edit answers
 * MS_ERR_CONFLICT and its history row is taken back), an edit that
 * committed first is wiped by the delete like any content.
 */
int sc_op_edit(sc_conn *c, store_op *op)
{
    const store_edit_req *r = &op->req.edit;
    store_message_result *cur = store__res_new(sizeof *cur);
    if (!cur)
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    if (sc_get_msg(c, op, r->channel_id, r->message_id, &cur->hdr, &cur->msg))
        goto out;
    if (cur->msg.is_deleted) {
        store__op_fail(op, MS_ERR_CONFLICT, "message %" PRIu64 " is deleted and cannot be edited",
                       r->message_id);
        goto out;
    }
    if (sc_take_fault(c, STORE_FAULT_EDIT_RACE) &&
        delete_rows(c, op, r->channel_id, r->message_id)) /* another writer's delete */
        goto out;
    uint64_t seq = store__next_id(op->s);
    if (!seq) {
        store__op_fail(op, MS_ERR_CLOCK, "the clock stepped back; retry");
        goto out;
    }
    sc_bind_EDIT_SAVE(sc_idf(c), sc_vals(c), r->channel_id, (int64_t)r->message_id, (int64_t)seq,
                      (int64_t)op->now_ms, cur->msg.content, cur->msg.content_len);
    if (sc_run(c, op, SC_EDIT_SAVE, "saving the edit history", NULL))
        goto out;
    if (sc_search_log(c, op, r->channel_id, r->message_id, STORE_SEARCH_LOG_EDIT, op->now_ms))
        goto out;
    sc_bind_EDIT_APPLY(sc_idf(c), sc_vals(c), r->content, r->content_len, (int64_t)op->now_ms,
                       r->channel_id, (int32_t)ms_bucket_of(r->message_id), (int64_t)r->message_id);
    cql_result *q = NULL;
    if (sc_run(c, op, SC_EDIT_APPLY, "editing the message", &q))
        goto out;
    bool applied = sc_lwt_applied(q);
    cql_result_destroy(q);
    if (!applied) {
        /* deleted meanwhile: the history row saved above must not outlive the delete */
        sc_bind_EDIT_UNSAVE(sc_idf(c), sc_vals(c), r->channel_id, (int64_t)r->message_id,
                            (int64_t)seq);
        if (sc_run(c, op, SC_EDIT_UNSAVE, "taking back the edit history", NULL))
            goto out;
        store__op_fail(op, MS_ERR_CONFLICT,
                       "message %" PRIu64 " was deleted while it was being edited", r->message_id);
        goto out;
    }
    sc_load_message(c, op, r->channel_id, r->message_id, false);
out:
    store_free(cur);
    return op->status;
}

int sc_op_delete(sc_conn *c, store_op *op)
{
    const store_get_req *r = &op->req.get;
    if (sc_load_message(c, op, r->channel_id, r->message_id, false))
        return op->status;
    store_message_result *cur = (store_message_result *)op->res;
    if (cur->msg.is_deleted)
        return 0;
    op->res = NULL;
    store_free(cur);
    if (sc_search_log(c, op, r->channel_id, r->message_id, STORE_SEARCH_LOG_DELETE, op->now_ms))
        return op->status;
    sc_bind_DELETE_APPLY(sc_idf(c), sc_vals(c), (int64_t)op->now_ms, r->channel_id,
                         (int32_t)ms_bucket_of(r->message_id), (int64_t)r->message_id);
    if (sc_run(c, op, SC_DELETE_APPLY, "deleting the message", NULL))
        return op->status;
    bool unpinned = false;
    if (sc_pin_cas(c, op, r->channel_id, r->message_id, NULL, &unpinned))
        return op->status;
    sc_bind_EDITS_PURGE(sc_idf(c), sc_vals(c), r->channel_id, (int64_t)r->message_id);
    if (sc_run(c, op, SC_EDITS_PURGE, "purging the edit history", NULL))
        return op->status;
    return sc_load_message(c, op, r->channel_id, r->message_id, false);
}

int sc_op_history(sc_conn *c, store_op *op)
{
    const store_history_req *r = &op->req.history;
    store_history_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    store_message m;
    if (sc_get_msg(c, op, r->channel_id, r->message_id, &res->hdr, &m))
        return op->status;
    res->items = store__res_alloc(&res->hdr, (size_t)r->limit * sizeof *res->items);
    if (!res->items)
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    if (m.is_deleted) /* purged with the delete; an edit racing it must not resurface */
        return 0;
    sc_bind_HISTORY(sc_idf(c), sc_vals(c), r->channel_id, (int64_t)r->message_id, r->limit);
    cql_result *q = NULL;
    if (sc_run(c, op, SC_HISTORY, "reading the edit history", &q))
        return op->status;
    bool oom = false;
    while (cql_result_next_row(q) == 0 && res->count < (size_t)r->limit) {
        store_edit_entry *e = &res->items[res->count++];
        e->edited_at_ms = (uint64_t)sc_col_i64(q, 0);
        e->content = sc_col_text(q, 1, &res->hdr, &e->content_len, false, &oom);
        if (!e->content && !oom)
            e->content = store__res_strndup(&res->hdr, "", 0);
    }
    cql_result_destroy(q);
    if (oom)
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    return 0;
}

#endif /* MSGSTORE_HAVE_CQL_SESSION */
