/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scylla_meta.c - the ScyllaDB backend's reactions, pins, read positions,
 * channel metadata, Telegram sync state and ping.
 */
#include "scylla_internal.h"

#if defined(MSGSTORE_HAVE_CQL_SESSION)

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

/* ------------------------------------------------------------------ reactions */

static int reaction(sc_conn *c, store_op *op, bool add)
{
    const store_reaction_req *r = &op->req.reaction;
    store_message_result *cur = store__res_new(sizeof *cur);
    if (!cur)
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    int rc = sc_get_msg(c, op, r->channel_id, r->message_id, &cur->hdr, &cur->msg);
    bool deleted = cur->msg.is_deleted;
    store_free(cur);
    if (rc)
        return rc;
    if (add && deleted)
        return store__op_fail(op, MS_ERR_CONFLICT, "message %" PRIu64 " is deleted", r->message_id);
    ms_xid ch = r->channel_id;
    int64_t msg = (int64_t)r->message_id;
    size_t elen = strlen(r->emoji);
    if (add)
        sc_bind_REACT_ADD(sc_idf(c), sc_vals(c), ch, msg, r->emoji, elen, r->user_id,
                          (int64_t)op->now_ms);
    else
        sc_bind_REACT_DEL(sc_idf(c), sc_vals(c), ch, msg, r->emoji, elen, r->user_id);
    cql_result *q = NULL;
    if (sc_run(c, op, add ? SC_REACT_ADD : SC_REACT_DEL,
               add ? "adding the reaction" : "removing the reaction", &q)) {
        /* a transaction that timed out may still be applied: recount */
        if (sc_maybe_applied(op->status))
            sc_note_failure(c, op, RP_REACTION, r->channel_id, (int64_t)r->message_id, r->emoji);
        return op->status;
    }
    bool changed = sc_lwt_applied(q);
    cql_result_destroy(q);
    sc_stmt_id count_stmt = SC_COUNT_GET;
    if (changed) {
        /* Fix 2: counted once, only for a row really created or removed; never retried. */
        (add ? sc_bind_COUNT_INC : sc_bind_COUNT_DEC)(sc_idf(c), sc_vals(c), ch, msg, r->emoji,
                                                      elen);
        if (sc_run(c, op, add ? SC_COUNT_INC : SC_COUNT_DEC, "counting the reaction", NULL)) {
            /*
             * The row changed; whether the counter did is unknown. The repair
             * corrects the counter; this answer counts the rows themselves.
             */
            sc_note_failure(c, op, RP_REACTION, r->channel_id, (int64_t)r->message_id, r->emoji);
            op->status = 0;
            op->detail[0] = '\0';
            count_stmt = SC_REACT_ROWS;
        }
    }
    (count_stmt == SC_REACT_ROWS ? sc_bind_REACT_ROWS : sc_bind_COUNT_GET)(sc_idf(c), sc_vals(c),
                                                                           ch, msg, r->emoji, elen);
    if (sc_run(c, op, count_stmt, "reading the reaction count", &q))
        return op->status;
    int64_t count = 0;
    if (cql_result_next_row(q) == 0)
        count = sc_col_i64(q, 0);
    cql_result_destroy(q);
    store_reaction_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    res->changed = changed;
    res->count = count > 0 ? (uint64_t)count : 0;
    return 0;
}

int sc_op_reactions_get(sc_conn *c, store_op *op)
{
    store_reactions_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    sc_bind_COUNTS_LIST(sc_idf(c), sc_vals(c), op->req.get.channel_id,
                        (int64_t)op->req.get.message_id);
    cql_result *q = NULL;
    if (sc_run(c, op, SC_COUNTS_LIST, "reading the reactions", &q))
        return op->status;
    size_t cap = q->row_count > 0 ? (size_t)q->row_count : 1;
    res->items = store__res_alloc(&res->hdr, cap * sizeof *res->items);
    bool oom = !res->items;
    while (!oom && cql_result_next_row(q) == 0 && res->count < cap) {
        int64_t n = sc_col_i64(q, 1);
        if (n <= 0)
            continue;
        store_reaction_count *e = &res->items[res->count];
        e->emoji = sc_col_text(q, 0, &res->hdr, NULL, false, &oom);
        e->count = (uint64_t)n;
        if (e->emoji)
            res->count++;
    }
    cql_result_destroy(q);
    return oom ? store__op_fail(op, MS_ERR_NOMEM, "out of memory") : 0;
}

int sc_op_reaction_users(sc_conn *c, store_op *op)
{
    const store_reaction_users_req *r = &op->req.users;
    store_users_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    res->user_ids = store__res_alloc(&res->hdr, (size_t)r->limit * sizeof *res->user_ids);
    if (!res->user_ids)
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    sc_bind_USERS(sc_idf(c), sc_vals(c), r->channel_id, (int64_t)r->message_id, r->emoji,
                  strlen(r->emoji), r->after_user_id, r->limit + 1);
    cql_result *q = NULL;
    if (sc_run(c, op, SC_USERS, "reading the reaction users", &q))
        return op->status;
    while (cql_result_next_row(q) == 0) {
        if (res->count < (size_t)r->limit)
            res->user_ids[res->count++] = sc_col_id(q, 0);
        else
            res->more = true;
    }
    cql_result_destroy(q);
    return 0;
}

int sc_op_reaction_add(sc_conn *c, store_op *op)
{
    return reaction(c, op, true);
}

int sc_op_reaction_remove(sc_conn *c, store_op *op)
{
    return reaction(c, op, false);
}

/* ------------------------------------------------------------------ pins */

static int row_pin(cql_result *q, store_result_hdr *res, store_pin_entry *p)
{
    bool oom = false;
    p->channel_id = sc_col_id(q, 0);
    p->message_id = (uint64_t)sc_col_i64(q, 1);
    p->pinned_by = sc_col_id(q, 2);
    p->pinned_at_ms = (uint64_t)sc_col_i64(q, 3);
    p->content_preview = sc_col_text(q, 4, res, NULL, false, &oom);
    if (!p->content_preview && !oom)
        p->content_preview = store__res_strndup(res, "", 0);
    p->sender_id = sc_col_id(q, 5);
    return oom || !p->content_preview ? MS_ERR_NOMEM : 0;
}

/* Reads the pin of op's message into a new pin result; *found. */
static int load_pin(sc_conn *c, store_op *op, bool *found)
{
    const store_pin_req *r = &op->req.pin;
    sc_bind_PIN_GET(sc_idf(c), sc_vals(c), r->channel_id, (int64_t)r->message_id);
    cql_result *q = NULL;
    *found = false;
    if (sc_run(c, op, SC_PIN_GET, "reading the pin", &q))
        return op->status;
    if (cql_result_next_row(q) == 0) {
        store_pin_result *res = store__res_new(sizeof *res);
        if (!res || row_pin(q, &res->hdr, &res->pin)) {
            store_free(res);
            cql_result_destroy(q);
            return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
        }
        op->res = &res->hdr;
        *found = true;
    }
    cql_result_destroy(q);
    return 0;
}

static int cmp_pin(const void *a, const void *b)
{
    const store_pin_entry *x = a, *y = b;
    if (x->pinned_at_ms != y->pinned_at_ms)
        return x->pinned_at_ms < y->pinned_at_ms ? 1 : -1;
    return x->message_id < y->message_id ? 1 : x->message_id > y->message_id ? -1 : 0;
}

/*
 * Every pin of a channel, newest first, into res (count in *n), and the
 * channel's pin_count in *count (may be NULL): -1 when the channel has none
 * (pinned before migration 003, or never pinned).
 */
static int all_pins(sc_conn *c, store_op *op, ms_xid ch, store_result_hdr *res,
                    store_pin_entry **out, size_t *n, int *count)
{
    sc_bind_PINS_ALL(sc_idf(c), sc_vals(c), ch);
    cql_result *q = NULL;
    if (sc_run(c, op, SC_PINS_ALL, "reading the pins", &q))
        return op->status;
    size_t cap = q->row_count > 0 ? (size_t)q->row_count : 1;
    store_pin_entry *p = store__res_alloc(res, cap * sizeof *p);
    *n = 0;
    if (count)
        *count = -1;
    bool oom = !p;
    while (!oom && cql_result_next_row(q) == 0 && *n < cap) {
        int32_t pc = 0;
        if (count && !cql_row_is_null(q, 6) && cql_row_get_int(q, 6, &pc) == 0)
            *count = pc;
        if (cql_row_is_null(q, 1)) /* the partition's static row only: no pin */
            continue;
        oom = row_pin(q, res, &p[(*n)++]) != 0;
    }
    cql_result_destroy(q);
    if (oom)
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    qsort(p, *n, sizeof *p, cmp_pin);
    *out = p;
    return 0;
}

/*
 * Pins (add: the pin to write) or unpins (add NULL) message msg of channel ch
 * and moves the channel's pin_count with it, in one conditional batch on the
 * channel's partition (migration 003): rows and count change together or not
 * at all, so the cap holds however pins race. When pin_count moved meanwhile,
 * reads again and retries. *changed: false when the message was already
 * pinned (add) or not pinned (remove). Returns 0, MS_ERR_CONFLICT at the cap,
 * or fails op.
 */
int sc_pin_cas(sc_conn *c, store_op *op, ms_xid ch, uint64_t msg, const store_pin_entry *add,
               bool *changed)
{
    *changed = false;
    for (int attempt = 0; attempt < 16; attempt++) {
        store_result_hdr *tmp = store__res_new(sizeof *tmp);
        if (!tmp)
            return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
        store_pin_entry *pins = NULL;
        size_t npins = 0;
        int count = -1;
        if (all_pins(c, op, ch, tmp, &pins, &npins, &count)) {
            store_free(tmp);
            return op->status;
        }
        bool present = false;
        for (size_t i = 0; i < npins; i++)
            present = present || pins[i].message_id == msg;
        store_free(tmp);
        if (present == (add != NULL))
            return 0;
        int cur = count >= 0 ? count : (int)npins; /* no pin_count yet: count the rows */
        if (add && cur >= STORE_MAX_PINS)
            return store__op_fail(op, MS_ERR_CONFLICT, "channel %s already has %d pins",
                                  STORE_XID(op->s, ch), STORE_MAX_PINS);
        cql_values_reset(&c->bv[0]);
        if (add)
            sc_bind_PIN_ADD(sc_idf(c), &c->bv[0], ch, (int64_t)msg, (int64_t)add->pinned_at_ms,
                            add->pinned_by, add->content_preview, strlen(add->content_preview),
                            add->sender_id);
        else
            sc_bind_PIN_DEL(sc_idf(c), &c->bv[0], ch, (int64_t)msg);
        cql_values_reset(&c->bv[1]);
        int32_t expected = count; /* none yet (-1): null */
        sc_bind_PIN_COUNT(sc_idf(c), &c->bv[1], add ? cur + 1 : (cur > 0 ? cur - 1 : 0), ch,
                          count >= 0 ? &expected : NULL);
        const sc_stmt_id ids[2] = {add ? SC_PIN_ADD : SC_PIN_DEL, SC_PIN_COUNT};
        cql_result *q = NULL;
        if (sc_lwt_batch(c, op, ids, 2, add ? "pinning the message" : "unpinning the message", &q))
            return op->status;
        bool applied = sc_lwt_applied(q);
        cql_result_destroy(q);
        if (applied) {
            *changed = true;
            return 0;
        }
        /* the pins moved under us: read them again, after a short random pause */
        sc_sleep(c, (int64_t)(1 + uv_hrtime() % 4));
    }
    return store__op_fail(op, MS_ERR_UNAVAILABLE, "the pins of channel %s keep changing; retry",
                          STORE_XID(op->s, ch));
}

int sc_op_pin(sc_conn *c, store_op *op)
{
    const store_pin_req *r = &op->req.pin;
    store_message m;
    store_message_result *msg = NULL;
    for (int attempt = 0; attempt < 8; attempt++) {
        bool found = false;
        if (load_pin(c, op, &found))
            break;
        if (found) {
            ((store_pin_result *)op->res)->duplicate = true;
            break;
        }
        if (!msg) {
            msg = store__res_new(sizeof *msg);
            if (!msg) {
                store__op_fail(op, MS_ERR_NOMEM, "out of memory");
                break;
            }
            if (sc_get_msg(c, op, r->channel_id, r->message_id, &msg->hdr, &m))
                break;
            if (m.is_deleted) {
                store__op_fail(op, MS_ERR_CONFLICT,
                               "message %" PRIu64 " is deleted and cannot be pinned",
                               r->message_id);
                break;
            }
        }
        store_pin_result *res = store__op_result(op, sizeof *res);
        if (!res)
            break;
        size_t plen = store__utf8_prefix(m.content, m.content_len, STORE_PREVIEW_CHARS);
        res->pin.channel_id = r->channel_id;
        res->pin.message_id = r->message_id;
        res->pin.pinned_by = r->pinned_by;
        res->pin.pinned_at_ms = op->now_ms;
        res->pin.sender_id = m.sender_id;
        res->pin.content_preview = store__res_strndup(&res->hdr, m.content, plen);
        if (!res->pin.content_preview) {
            store__op_fail(op, MS_ERR_NOMEM, "out of memory");
            break;
        }
        bool pinned = false;
        if (sc_pin_cas(c, op, r->channel_id, r->message_id, &res->pin, &pinned) || pinned)
            break;
        /* a racing pin of the same message came first: return that one (if still there) */
        op->res = NULL;
        store_free(res);
        if (attempt == 7)
            store__op_fail(op, MS_ERR_UNAVAILABLE,
                           "message %" PRIu64 " is being pinned and unpinned; retry",
                           r->message_id);
    }
    store_free(msg);
    return op->status;
}

int sc_op_unpin(sc_conn *c, store_op *op)
{
    const store_pin_req *r = &op->req.pin;
    bool found = false;
    if (load_pin(c, op, &found))
        return op->status;
    if (found && sc_pin_cas(c, op, r->channel_id, r->message_id, NULL, &found))
        return op->status;
    if (!found)
        return store__op_fail(op, MS_ERR_NOT_FOUND,
                              "message %" PRIu64 " is not pinned in channel %s", r->message_id,
                              STORE_XID(op->s, r->channel_id));
    return 0;
}

int sc_op_pins_list(sc_conn *c, store_op *op)
{
    store_pins_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    if (all_pins(c, op, op->req.channel.channel_id, &res->hdr, &res->items, &res->count, NULL))
        return op->status;
    if (res->count > STORE_MAX_PINS)
        res->count = STORE_MAX_PINS;
    return 0;
}

/* ------------------------------------------------------------------ read positions */

/* A new read result (op->res) with op's read position; NULL when op failed. */
static store_read_result *read_position(sc_conn *c, store_op *op)
{
    store_read_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return NULL;
    sc_bind_READ_GET(sc_idf(c), sc_vals(c), op->req.read.channel_id, op->req.read.user_id);
    cql_result *q = NULL;
    if (sc_run(c, op, SC_READ_GET, "reading the read position", &q))
        return NULL;
    if (cql_result_next_row(q) == 0) {
        res->last_read_id = (uint64_t)sc_col_i64(q, 0);
        res->updated_at_ms = (uint64_t)sc_col_i64(q, 1);
    }
    cql_result_destroy(q);
    return res;
}

int sc_op_read_set(sc_conn *c, store_op *op)
{
    const store_read_req *r = &op->req.read;
    store_read_result *res = read_position(c, op);
    if (!res)
        return op->status;
    if (r->message_id <= res->last_read_id)
        return 0;
    /* The position never moves back: its write timestamp is the message id's time (µs), so
     * racing writers converge on the largest id (equal timestamps: the larger value wins). */
    uint64_t ts = ms_snowflake_unix_ms(r->message_id, c->b->cfg->epoch_ms) * 1000;
    sc_bind_READ_SET(sc_idf(c), sc_vals(c), (int64_t)ts, (int64_t)r->message_id,
                     (int64_t)op->now_ms, r->channel_id, r->user_id);
    if (sc_run(c, op, SC_READ_SET, "setting the read position", NULL))
        return op->status;
    res->moved = true;
    res->last_read_id = r->message_id;
    res->updated_at_ms = op->now_ms;
    return 0;
}

int sc_op_read_get(sc_conn *c, store_op *op)
{
    const store_read_req *r = &op->req.read;
    store_read_result *res = read_position(c, op);
    if (!res)
        return op->status;
    /*
     * Count at most STORE_UNREAD_CAP messages newer than the position, newest
     * buckets first: one IN query per chunk of buckets, then, only for a bucket
     * that returned a full STORE_UNREAD_CAP rows of which some were deleted,
     * its older rows until the cap is reached.
     */
    int32_t bottom = (int32_t)ms_bucket_of(res->last_read_id);
    int32_t from = (int32_t)ms_bucket_of(STORE_ID_MAX);
    uint32_t count = 0;
    int32_t list[BUCKET_CHUNK];
    uint32_t rows[BUCKET_CHUNK];
    uint64_t lowest[BUCKET_CHUNK];
    size_t n = 0;
    while (count < STORE_UNREAD_CAP) {
        if (sc_bucket_list(c, op, r->channel_id, from, true, list, &n))
            return op->status;
        size_t keep = 0;
        while (keep < n && list[keep] >= bottom)
            keep++;
        if (keep == 0)
            break;
        for (size_t k = 0; k < keep; k++) {
            rows[k] = 0;
            lowest[k] = UINT64_MAX;
        }
        sc_bind_UNREAD_IN(sc_idf(c), sc_vals(c), r->channel_id, list, keep,
                          (int64_t)res->last_read_id, STORE_UNREAD_CAP);
        cql_result *q = NULL;
        if (sc_run(c, op, SC_UNREAD_IN, "counting unread messages", &q))
            return op->status;
        while (cql_result_next_row(q) == 0) {
            int32_t b = 0;
            cql_row_get_int(q, 0, &b);
            uint64_t id = (uint64_t)sc_col_i64(q, 1);
            for (size_t k = 0; k < keep; k++) {
                if (list[k] == b) {
                    rows[k]++;
                    if (id < lowest[k])
                        lowest[k] = id;
                }
            }
            if (!sc_col_bool(q, 2) && count < STORE_UNREAD_CAP)
                count++;
        }
        cql_result_destroy(q);
        for (size_t k = 0; k < keep && count < STORE_UNREAD_CAP; k++) {
            uint64_t hi = lowest[k];
            uint32_t got = rows[k];
            while (got == STORE_UNREAD_CAP && count < STORE_UNREAD_CAP) {
                sc_bind_UNREAD_SCAN(sc_idf(c), sc_vals(c), r->channel_id, list[k],
                                    (int64_t)res->last_read_id, (int64_t)hi, STORE_UNREAD_CAP);
                if (sc_run(c, op, SC_UNREAD_SCAN, "counting unread messages", &q))
                    return op->status;
                got = 0;
                while (cql_result_next_row(q) == 0) {
                    got++;
                    uint64_t id = (uint64_t)sc_col_i64(q, 1);
                    if (id < hi)
                        hi = id;
                    if (!sc_col_bool(q, 2) && count < STORE_UNREAD_CAP)
                        count++;
                }
                cql_result_destroy(q);
            }
        }
        if (keep < n || n < BUCKET_CHUNK)
            break;
        from = list[n - 1] - 1;
    }
    res->unread_count = count;
    res->unread_capped = count >= STORE_UNREAD_CAP;
    return 0;
}

/* ------------------------------------------------------------------ channels, sync, ping */

int sc_load_channel(sc_conn *c, store_op *op, ms_xid ch)
{
    sc_bind_META_GET(sc_idf(c), sc_vals(c), ch);
    cql_result *q = NULL;
    if (sc_run(c, op, SC_META_GET, "reading the channel", &q))
        return op->status;
    if (cql_result_next_row(q) != 0) {
        cql_result_destroy(q);
        return store__op_fail(op, MS_ERR_NOT_FOUND, "channel %s is unknown", STORE_XID(op->s, ch));
    }
    store_channel_result *res = store__res_new(sizeof *res);
    if (!res) {
        cql_result_destroy(q);
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    }
    op->res = &res->hdr;
    bool oom = false;
    store_channel *m = &res->channel;
    m->channel_id = ch;
    m->name = sc_col_text(q, 1, &res->hdr, NULL, false, &oom);
    m->type = sc_col_text(q, 2, &res->hdr, NULL, false, &oom);
    m->created_at_ms = (uint64_t)sc_col_i64(q, 3);
    m->last_message_id = (uint64_t)sc_col_i64(q, 4);
    m->updated_at_ms = (uint64_t)sc_col_i64(q, 5);
    cql_result_destroy(q);
    if (!m->name && !oom)
        m->name = store__res_strndup(&res->hdr, "", 0);
    if (!m->type && !oom)
        m->type = store__res_strndup(&res->hdr, "channel", 7);
    if (oom || !m->name || !m->type)
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    sc_bind_COUNTER_GET(sc_idf(c), sc_vals(c), ch);
    if (sc_run(c, op, SC_COUNTER_GET, "reading the message count", &q))
        return op->status;
    if (cql_result_next_row(q) == 0)
        m->message_count = (uint64_t)sc_col_i64(q, 0);
    cql_result_destroy(q);
    return 0;
}

int sc_op_channel_get(sc_conn *c, store_op *op)
{
    return sc_load_channel(c, op, op->req.channel.channel_id);
}

int sc_op_channel_upsert(sc_conn *c, store_op *op)
{
    const store_channel_upsert_req *r = &op->req.upsert;
    sc_bind_META_GET(sc_idf(c), sc_vals(c), r->channel_id);
    cql_result *q = NULL;
    if (sc_run(c, op, SC_META_GET, "reading the channel", &q))
        return op->status;
    bool exists = cql_result_next_row(q) == 0;
    bool has_created = exists && !cql_row_is_null(q, 3);
    bool has_name = exists && !cql_row_is_null(q, 1);
    bool has_type = exists && !cql_row_is_null(q, 2);
    cql_result_destroy(q);
    /* what the request leaves out keeps its value, or gets its default on a new row */
    const char *name = r->name ? r->name : !has_name ? "" : NULL;
    const char *type = r->type ? r->type : !has_type ? "channel" : NULL;
    int64_t created = (int64_t)(r->created_at_ms ? r->created_at_ms : op->now_ms);
    sc_bind_META_SET(sc_idf(c), sc_vals(c), name, type,
                     r->created_at_ms || !has_created ? &created : NULL, (int64_t)op->now_ms,
                     r->channel_id);
    if (sc_run(c, op, SC_META_SET, "writing the channel", NULL))
        return op->status;
    sc_known_add(c->b, r->channel_id);
    return sc_load_channel(c, op, r->channel_id);
}

static int load_sync(sc_conn *c, store_op *op, ms_xid ch, bool *found)
{
    sc_bind_SYNC_GET(sc_idf(c), sc_vals(c), ch);
    cql_result *q = NULL;
    if (sc_run(c, op, SC_SYNC_GET, "reading the sync state", &q))
        return op->status;
    *found = cql_result_next_row(q) == 0 && !cql_row_is_null(q, 1);
    if (*found) {
        store_sync_result *res = store__res_new(sizeof *res);
        if (!res) {
            cql_result_destroy(q);
            return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
        }
        op->res = &res->hdr;
        store_sync_state *s = &res->state;
        s->channel_id = ch;
        s->telegram_chat_id = sc_col_i64(q, 1);
        s->last_synced_message_id = sc_col_i64(q, 2);
        s->direction = (store_sync_direction)sc_col_tiny(q, 3);
        s->last_sync_at_ms = (uint64_t)sc_col_i64(q, 4);
        s->created_at_ms = (uint64_t)sc_col_i64(q, 5);
    }
    cql_result_destroy(q);
    return 0;
}

int sc_op_sync_get(sc_conn *c, store_op *op)
{
    bool found = false;
    if (load_sync(c, op, op->req.channel.channel_id, &found))
        return op->status;
    if (!found)
        return store__op_fail(op, MS_ERR_NOT_FOUND, "channel %s has no Telegram sync state",
                              STORE_XID(op->s, op->req.channel.channel_id));
    return 0;
}

int sc_op_sync_update(sc_conn *c, store_op *op)
{
    const store_sync_update_req *r = &op->req.sync;
    bool found = false;
    if (load_sync(c, op, r->channel_id, &found))
        return op->status;
    if (op->res) {
        store_free(op->res);
        op->res = NULL;
    }
    int64_t now = (int64_t)op->now_ms;
    sc_bind_SYNC_SET(sc_idf(c), sc_vals(c), r->telegram_chat_id, (int8_t)r->direction, now,
                     found ? NULL : &now, r->channel_id);
    if (sc_run(c, op, SC_SYNC_SET, "writing the sync state", NULL))
        return op->status;
    /* Forward only, without a read: the value is its own write timestamp. */
    sc_bind_SYNC_LAST(sc_idf(c), sc_vals(c), r->last_synced_message_id, r->last_synced_message_id,
                      r->channel_id);
    if (sc_run(c, op, SC_SYNC_LAST, "writing the sync state", NULL))
        return op->status;
    if (load_sync(c, op, r->channel_id, &found))
        return op->status;
    if (!found)
        return store__op_fail(op, MS_ERR_INTERNAL, "the sync state was not stored");
    return 0;
}

int sc_op_ping(sc_conn *c, store_op *op)
{
    uint64_t t0 = uv_hrtime();
    sc_bind_PING(sc_idf(c), sc_vals(c));
    cql_result *q = NULL;
    if (sc_run(c, op, SC_PING, "probing the cluster", &q))
        return op->status;
    int32_t version = 0;
    if (cql_result_next_row(q) == 0)
        cql_row_get_int(q, 0, &version);
    cql_result_destroy(q);
    store_ping_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    res->latency_us = (uv_hrtime() - t0) / 1000;
    res->backend = "scylla";
    res->schema_version = version;
    return 0;
}

#endif /* MSGSTORE_HAVE_CQL_SESSION */
