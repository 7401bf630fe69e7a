/* SPDX-License-Identifier: Apache-2.0 */
/*
 * copy.c - `msgstore copy --to-cluster`: the SQLite store into a ScyllaDB /
 * Cassandra keyspace (msgstore/store_copy.h).
 *
 * The source is read in chunks of CHUNK rows in primary-key order (each chunk
 * its own short read transaction, so a serving writer is not held up); the
 * rows are written with the ScyllaDB backend's statements (sc_stmt), up to
 * in_flight at once on one CQL session; after a chunk every write is
 * acknowledged and the checkpoint (table, last key) is replaced atomically.
 * Values are bound with the statements' own binders (sc_bind_<NAME>, given
 * the source's id format), as in the backend; channel and user ids are read
 * from the source with src_id only, so the id format stays a local change.
 */
#include "msgstore/store_copy.h"

#include <stdio.h>

#if !defined(MSGSTORE_HAVE_CQL_SESSION)

#include "store_internal.h"

int store_copy_to_cluster(const store_config *cfg, const store_copy_options *opt,
                          store_copy_report *rep, char *err, size_t errlen)
{
    (void)cfg;
    (void)opt;
    memset(rep, 0, sizeof *rep);
    snprintf(err, errlen, "this msgstore was built without the CQL client");
    return MS_ERR_UNAVAILABLE;
}

#else

#include "scylla_internal.h"
#include "sqlite_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/snowflake.h"

#define CHUNK              500
/* A catch-up pass copies the rows changed since the previous pass began, less this: writes
   accepted before it began may commit a little after (their times are when accepted). */
#define CATCH_UP_MARGIN_MS 60000
#define MAX_KEYS           4

/* ------------------------------------------------------------------ the write pipeline */

typedef struct pipeline {
    cql_sync *c;
    cql_session *s;
    int in_flight, window;
    int err;
    char msg[256];
} pipeline;

static void on_written(cql_result *res, const cql_status *st, void *ud)
{
    (void)res;
    pipeline *p = ud;
    p->in_flight--;
    if (st->code != 0 && p->err == 0) {
        p->err = st->code;
        snprintf(p->msg, sizeof p->msg, "%s", st->message[0] ? st->message : ms_err_str(st->code));
    }
}

static int pipe_exec(pipeline *p, cql_prepared *ps, cql_values *v, int consistency)
{
    while (p->in_flight >= p->window && p->err == 0)
        cql_sync_run_for(p->c, 1);
    if (p->err)
        return p->err;
    if (cql_values_error(v)) {
        p->err = MS_ERR_NOMEM;
        snprintf(p->msg, sizeof p->msg, "cannot bind values");
        return p->err;
    }
    cql_statement st;
    cql_statement_init(&st);
    st.prepared = ps;
    st.values = v; /* copied at submit */
    st.consistency = consistency;
    st.idempotent = true; /* upserts and IF NOT EXISTS claims of fixed values */
    int rc = cql_session_execute(p->s, &st, on_written, p);
    if (rc) {
        p->err = rc;
        snprintf(p->msg, sizeof p->msg, "cannot submit a write");
        return rc;
    }
    p->in_flight++;
    return 0;
}

static int pipe_drain(pipeline *p)
{
    while (p->in_flight > 0)
        cql_sync_run_for(p->c, 1);
    return p->err;
}

/* ------------------------------------------------------------------ the copy */

typedef struct key {
    int n;
    bool text[MAX_KEYS];
    int64_t i[MAX_KEYS];
    char t[MAX_KEYS][256];
} key;

typedef struct copier copier;

/* One table: how to read it (keyset pages) and how to write a row. */
typedef struct table_def {
    const char *name;
    const char *cols; /* selected columns, keys first */
    const char *keys; /* the primary key, for ORDER BY and the keyset */
    int nkeys;
    bool counters; /* rows are counts: read the cluster's value first */
    int (*write)(copier *k, sqlite3_stmt *row);
    int (*fix)(copier *k, sqlite3_stmt *row, cql_result *have); /* counters */
    int (*read)(copier *k, sqlite3_stmt *row, cql_values *v);   /* counters: the read */
    sc_stmt_id read_stmt;
    const char *changed; /* rows changed at or after :since (a catch-up pass); NULL: all rows */
} table_def;

struct copier {
    const store_config *cfg;
    const store_copy_options *opt;
    store_copy_report *rep;
    sqlite3 *db;
    ms_id_format idf; /* the source's channel and user ids */
    cql_sync *c;
    pipeline p;
    cql_prepared *ps[SC_NSTMT];
    cql_values v;
    int wcl, rcl;
    char ckpt[4096];
    /* A message's edit and delete flags go after its insert is acknowledged (the edit is a
       conditional update of an existing row, and must precede the delete): bound here while
       a chunk is read, written once the chunk's inserts are. */
    cql_values *edits, *dels;
    int nedits, ndels;
    bool search;        /* MSGSTORE_SEARCH_PG_URL set: log every copied message for the indexer */
    ms_snowflake seq;   /* the change-log entries' seq (MSGSTORE_WORKER_ID, as serve's ids) */
    int64_t since_ms;   /* this pass copies rows changed since (Unix ms); 0: every row */
    int64_t started_ms; /* when this pass started (the next catch-up's since, less a margin) */
    uint64_t messages_total;
    double t0, last_progress;
    char *err;
    size_t errlen;
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A channel or user id of the source (the one place that reads them). */
static ms_xid src_id(sqlite3_stmt *st, int col)
{
    return store__sq_col_xid(st, col);
}

/* Binds a channel or user id to a statement on the source. */
static void src_bind_id(const copier *k, sqlite3_stmt *st, int i, ms_xid v)
{
    store__sq_bind_xid_as(k->idf, st, i, v);
}

/* The text of a channel or user id (messages), in a buffer living to the end of the block. */
static const char *id_text(const copier *k, ms_xid id, char buf[MS_XID_STRLEN])
{
    ms_xid_format(k->idf, id, buf);
    return buf;
}
#define ID_TEXT(k, id)     id_text((k), (id), (char[MS_XID_STRLEN]){0})

static int64_t col_i64(sqlite3_stmt *st, int col)
{
    return sqlite3_column_int64(st, col);
}

static bool col_null(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL;
}

/* A text column ("" for null) and its length in *len (the value of a TEXT binder argument). */
static const char *col_text(sqlite3_stmt *st, int col, size_t *len)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    *len = (size_t)sqlite3_column_bytes(st, col);
    return t ? (const char *)t : "";
}

/* A text column, NULL for null (TEXT_OPT: not written). */
static const char *col_text_opt(sqlite3_stmt *st, int col)
{
    return col_null(st, col) ? NULL : (const char *)sqlite3_column_text(st, col);
}

/* An integer column in *buf, NULL for null (BIGINT_OPT: not written). */
static const int64_t *col_i64_opt(sqlite3_stmt *st, int col, int64_t *buf)
{
    if (col_null(st, col))
        return NULL;
    *buf = col_i64(st, col);
    return buf;
}

static cql_values *vals(copier *k)
{
    cql_values_reset(&k->v);
    return &k->v;
}

static int put(copier *k, sc_stmt_id id)
{
    return pipe_exec(&k->p, k->ps[id], &k->v, k->wcl);
}

/* The write timestamp (µs) the backend gives forward-only values: the id's time. */
static int64_t id_ts(copier *k, uint64_t id)
{
    return (int64_t)(ms_snowflake_unix_ms(id, k->cfg->epoch_ms) * 1000);
}

/* ---- one writer per table (column order: the cols string of its table_def) */

static int w_meta(copier *k, sqlite3_stmt *r)
{
    /* channel_id, name, type, created_at, last_message_id, updated_at */
    size_t nlen, tlen;
    int64_t created = col_i64(r, 3);
    sc_bind_META_SET(k->idf, vals(k), col_text(r, 1, &nlen), col_text(r, 2, &tlen), &created,
                     col_i64(r, 5), src_id(r, 0));
    int rc = put(k, SC_META_SET);
    uint64_t last = (uint64_t)col_i64(r, 4);
    if (rc == 0 && last) {
        sc_bind_META_LAST(k->idf, vals(k), id_ts(k, last), (int64_t)last, src_id(r, 0));
        rc = put(k, SC_META_LAST);
    }
    return rc;
}

static int w_bucket(copier *k, sqlite3_stmt *r)
{
    sc_bind_BUCKET_ADD(k->idf, vals(k), src_id(r, 0), (int32_t)col_i64(r, 1));
    return put(k, SC_BUCKET_ADD);
}

static int w_message(copier *k, sqlite3_stmt *r)
{
    /* channel_id, message_id, bucket, sender_id, type, source, content, reply_to,
       attachments, metadata, nonce, telegram_chat_id, telegram_message_id, created_at,
       is_edited, edited_at, is_deleted, deleted_at */
    ms_xid ch = src_id(r, 0);
    int64_t id = col_i64(r, 1);
    int32_t bucket = (int32_t)col_i64(r, 2);
    size_t clen;
    const char *content = col_text(r, 6, &clen); /* the current one: edited, deleted ('') */
    int64_t reply_to, tg_chat, tg_msg;
    sc_bind_MSG_INSERT(k->idf, vals(k), ch, bucket, id, src_id(r, 3), (int8_t)col_i64(r, 4),
                       (int8_t)col_i64(r, 5), content, clen, col_i64_opt(r, 7, &reply_to),
                       col_text_opt(r, 8), col_text_opt(r, 9), col_text_opt(r, 10),
                       col_i64_opt(r, 11, &tg_chat), col_i64_opt(r, 12, &tg_msg), col_i64(r, 13));
    int rc = put(k, SC_MSG_INSERT);
    if (rc == 0 && k->search) {
        /* the indexer of serve reads the message's state as stored (an edit's content, a
           delete) when it applies the entry, as for an insert of serve's */
        uint64_t seq;
        if (ms_snowflake_next(&k->seq, &seq) != 0) {
            snprintf(k->err, k->errlen, "the clock stepped back; run the copy again");
            return MS_ERR_CLOCK;
        }
        sc_bind_search_entry(k->cfg, k->idf, vals(k), seq, ch, (uint64_t)id,
                             STORE_SEARCH_LOG_INSERT, (uint64_t)col_i64(r, 13));
        rc = put(k, SC_SEARCH_LOG);
    }
    if (rc == 0 && !k->edits) {
        k->edits = calloc(CHUNK, sizeof *k->edits);
        k->dels = calloc(CHUNK, sizeof *k->dels);
        if (!k->edits || !k->dels)
            return MS_ERR_NOMEM;
        for (int i = 0; i < CHUNK; i++) {
            cql_values_init(&k->edits[i]);
            cql_values_init(&k->dels[i]);
        }
    }
    if (rc == 0 && col_i64(r, 14) && k->nedits < CHUNK) { /* is_edited: the flag and time */
        cql_values *v = &k->edits[k->nedits++];
        cql_values_reset(v);
        sc_bind_EDIT_APPLY(k->idf, v, content, clen, col_i64(r, 15), ch, bucket, id);
    }
    if (rc == 0 && col_i64(r, 16) && k->ndels < CHUNK) { /* is_deleted */
        cql_values *v = &k->dels[k->ndels++];
        cql_values_reset(v);
        sc_bind_DELETE_APPLY(k->idf, v, col_i64(r, 17), ch, bucket, id);
    }
    if (rc == 0)
        k->rep->messages++;
    return rc;
}

static int w_edit(copier *k, sqlite3_stmt *r)
{
    /* channel_id, message_id, seq, edited_at, content */
    size_t len;
    const char *content = col_text(r, 4, &len);
    sc_bind_EDIT_SAVE(k->idf, vals(k), src_id(r, 0), col_i64(r, 1), col_i64(r, 2), col_i64(r, 3),
                      content, len);
    return put(k, SC_EDIT_SAVE);
}

static int w_reaction(copier *k, sqlite3_stmt *r)
{
    /* channel_id, message_id, emoji, user_id, created_at */
    size_t elen;
    const char *emoji = col_text(r, 2, &elen);
    sc_bind_REACT_ADD(k->idf, vals(k), src_id(r, 0), col_i64(r, 1), emoji, elen, src_id(r, 3),
                      col_i64(r, 4));
    return put(k, SC_REACT_ADD);
}

static int r_reaction_count(copier *k, sqlite3_stmt *r, cql_values *v)
{
    /* channel_id, message_id, emoji, count */
    size_t elen;
    const char *emoji = col_text(r, 2, &elen);
    sc_bind_RP_RX_COUNTER(k->idf, v, src_id(r, 0), col_i64(r, 1), emoji, elen);
    return 0;
}

static int64_t have_count(cql_result *have)
{
    int64_t n = 0;
    if (have && cql_result_next_row(have) == 0)
        cql_row_get_bigint(have, 0, &n); /* null (no row yet): 0 */
    return n;
}

static int f_reaction_count(copier *k, sqlite3_stmt *r, cql_result *have)
{
    int64_t delta = col_i64(r, 3) - have_count(have);
    if (delta == 0)
        return 0;
    size_t elen;
    const char *emoji = col_text(r, 2, &elen);
    sc_bind_RP_RX_FIX(k->idf, vals(k), delta, src_id(r, 0), col_i64(r, 1), emoji, elen);
    return put(k, SC_RP_RX_FIX);
}

static int r_bucket_count(copier *k, sqlite3_stmt *r, cql_values *v)
{
    /* channel_id, bucket, count */
    sc_bind_RP_MC_COUNTER(k->idf, v, src_id(r, 0), (int32_t)col_i64(r, 1));
    return 0;
}

static int f_bucket_count(copier *k, sqlite3_stmt *r, cql_result *have)
{
    int64_t delta = col_i64(r, 2) - have_count(have);
    if (delta == 0)
        return 0;
    sc_bind_COUNT_MSG(k->idf, vals(k), delta, src_id(r, 0), (int32_t)col_i64(r, 1));
    return put(k, SC_COUNT_MSG);
}

static int w_pin(copier *k, sqlite3_stmt *r)
{
    /* channel_id, message_id, pinned_at, pinned_by, content_preview, sender_id */
    size_t plen;
    const char *preview = col_text(r, 4, &plen);
    sc_bind_PIN_ADD(k->idf, vals(k), src_id(r, 0), col_i64(r, 1), col_i64(r, 2), src_id(r, 3),
                    preview, plen, src_id(r, 5));
    return put(k, SC_PIN_ADD);
}

static int r_pin_count(copier *k, sqlite3_stmt *r, cql_values *v)
{
    /* channel_id, pins */
    sc_bind_PINS_ALL(k->idf, v, src_id(r, 0));
    return 0;
}

static int f_pin_count(copier *k, sqlite3_stmt *r, cql_result *have)
{
    /* PINS_ALL: the static pin_count is the last column of any row */
    int32_t cur = -1;
    if (have && cql_result_next_row(have) == 0) {
        int col = cql_result_column_index(have, "pin_count");
        if (col >= 0 && cql_row_get_int(have, col, &cur) != 0)
            cur = -1;
    }
    int32_t want = (int32_t)col_i64(r, 1);
    if (cur == want)
        return 0;
    sc_bind_PIN_COUNT(k->idf, vals(k), want, src_id(r, 0), cur >= 0 ? &cur : NULL);
    return put(k, SC_PIN_COUNT);
}

static int w_read(copier *k, sqlite3_stmt *r)
{
    /* channel_id, user_id, last_read_id, updated_at */
    uint64_t last = (uint64_t)col_i64(r, 2);
    sc_bind_READ_SET(k->idf, vals(k), id_ts(k, last), (int64_t)last, col_i64(r, 3), src_id(r, 0),
                     src_id(r, 1));
    return put(k, SC_READ_SET);
}

static int w_sync(copier *k, sqlite3_stmt *r)
{
    /* channel_id, telegram_chat_id, last_synced_message_id, direction, last_sync_at,
       created_at */
    int64_t created = col_i64(r, 5);
    sc_bind_SYNC_SET(k->idf, vals(k), col_i64(r, 1), (int8_t)col_i64(r, 3), col_i64(r, 4), &created,
                     src_id(r, 0));
    int rc = put(k, SC_SYNC_SET);
    if (rc == 0) {
        /* its own write timestamp: forward only */
        sc_bind_SYNC_LAST(k->idf, vals(k), col_i64(r, 2), col_i64(r, 2), src_id(r, 0));
        rc = put(k, SC_SYNC_LAST);
    }
    return rc;
}

static int w_telegram(copier *k, sqlite3_stmt *r)
{
    /* telegram_chat_id, telegram_message_id, channel_id, message_id, created_at */
    sc_bind_TG_CLAIM(k->idf, vals(k), col_i64(r, 1), col_i64(r, 0), src_id(r, 2), col_i64(r, 3),
                     col_i64(r, 4));
    return put(k, SC_TG_CLAIM);
}

static int w_nonce(copier *k, sqlite3_stmt *r)
{
    /* channel_id, nonce, message_id, created_at */
    size_t nlen;
    const char *nonce = col_text(r, 1, &nlen);
    sc_bind_NONCE_CLAIM(k->idf, vals(k), src_id(r, 0), nonce, nlen, col_i64(r, 2), col_i64(r, 3));
    return put(k, SC_NONCE_CLAIM);
}

/* The order matters only for readers of a half-copied cluster: channels and
 * buckets before messages, counts after what they count. */
static const table_def tables[] = {
    {"channel_metadata", "channel_id, name, type, created_at, last_message_id, updated_at",
     "channel_id", 1, false, w_meta, NULL, NULL, 0, NULL},
    {"channel_buckets", "channel_id, bucket", "channel_id, bucket", 2, false, w_bucket, NULL, NULL,
     0, NULL},
    {"messages",
     "channel_id, message_id, bucket, sender_id, type, source, content, reply_to, attachments, "
     "metadata, nonce, telegram_chat_id, telegram_message_id, created_at, is_edited, edited_at, "
     "is_deleted, deleted_at",
     "channel_id, message_id", 2, false, w_message, NULL, NULL, 0,
     "(created_at >= :since OR edited_at >= :since OR deleted_at >= :since)"},
    {"message_edits", "channel_id, message_id, seq, edited_at, content",
     "channel_id, message_id, seq", 3, false, w_edit, NULL, NULL, 0, "edited_at >= :since"},
    {"message_reactions", "channel_id, message_id, emoji, user_id, created_at",
     "channel_id, message_id, emoji, user_id", 4, false, w_reaction, NULL, NULL, 0,
     "created_at >= :since"},
    {"message_reaction_counts", "channel_id, message_id, emoji, count",
     "channel_id, message_id, emoji", 3, true, NULL, f_reaction_count, r_reaction_count,
     SC_RP_RX_COUNTER, NULL},
    {"(messages per bucket)", "channel_id, bucket, count(*)", "channel_id, bucket", 2, true, NULL,
     f_bucket_count, r_bucket_count, SC_RP_MC_COUNTER, NULL},
    {"pinned_messages", "channel_id, message_id, pinned_at, pinned_by, content_preview, sender_id",
     "channel_id, message_id", 2, false, w_pin, NULL, NULL, 0, "pinned_at >= :since"},
    {"(pins per channel)", "channel_id, count(*)", "channel_id", 1, true, NULL, f_pin_count,
     r_pin_count, SC_PINS_ALL, NULL},
    {"message_read_positions", "channel_id, user_id, last_read_id, updated_at",
     "channel_id, user_id", 2, false, w_read, NULL, NULL, 0, "updated_at >= :since"},
    {"telegram_sync_state",
     "channel_id, telegram_chat_id, last_synced_message_id, direction, last_sync_at, created_at",
     "channel_id", 1, false, w_sync, NULL, NULL, 0, NULL},
    {"telegram_message_mapping",
     "telegram_chat_id, telegram_message_id, channel_id, message_id, created_at",
     "telegram_chat_id, telegram_message_id", 2, false, w_telegram, NULL, NULL, 0,
     "created_at >= :since"},
    {"message_nonces", "channel_id, nonce, message_id, created_at", "channel_id, nonce", 2, false,
     w_nonce, NULL, NULL, 0, "created_at >= :since"},
};
#define NTABLES            (sizeof tables / sizeof tables[0])

/* The SQL table a definition reads ("(messages per bucket)" groups messages). */
static const char *from_of(const table_def *t)
{
    if (strcmp(t->name, "(messages per bucket)") == 0)
        return "messages";
    if (strcmp(t->name, "(pins per channel)") == 0)
        return "pinned_messages";
    return t->name;
}

static bool grouped(const table_def *t)
{
    return t->name[0] == '(';
}

/* ------------------------------------------------------------------ checkpoint */

static int ckpt_write(copier *k, size_t table, const key *last)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", k->ckpt);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(k->err, k->errlen, "cannot write the checkpoint %s: %s", tmp, strerror(errno));
        return MS_ERR_IO;
    }
    fprintf(f, "msgstore-copy 2\nkeyspace %s\nsince %" PRId64 "\nstarted %" PRId64 "\ntable %zu\n",
            k->cfg->scylla_keyspace, k->since_ms, k->started_ms, table);
    for (int i = 0; last && i < last->n; i++) {
        if (last->text[i]) {
            fprintf(f, "t ");
            for (const unsigned char *p = (const unsigned char *)last->t[i]; *p; p++)
                fprintf(f, "%02x", *p);
            fprintf(f, "\n");
        } else {
            fprintf(f, "i %" PRId64 "\n", last->i[i]);
        }
    }
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, k->ckpt) != 0) {
        snprintf(k->err, k->errlen, "cannot write the checkpoint %s: %s", k->ckpt, strerror(errno));
        unlink(tmp);
        return MS_ERR_IO;
    }
    return 0;
}

/* Reads the checkpoint: 1 found (table, last set), 0 none, < 0 unreadable. */
static int ckpt_read(copier *k, size_t *table, key *last, int64_t *since, int64_t *started)
{
    FILE *f = fopen(k->ckpt, "r");
    if (!f)
        return 0;
    char line[1024], ks[256] = "";
    int rc = MS_ERR_INVALID;
    memset(last, 0, sizeof *last);
    if (!fgets(line, sizeof line, f) || strcmp(line, "msgstore-copy 2\n") != 0)
        goto out;
    if (!fgets(line, sizeof line, f) || sscanf(line, "keyspace %255s", ks) != 1)
        goto out;
    if (!fgets(line, sizeof line, f) || sscanf(line, "since %" SCNd64, since) != 1)
        goto out;
    if (!fgets(line, sizeof line, f) || sscanf(line, "started %" SCNd64, started) != 1)
        goto out;
    if (!fgets(line, sizeof line, f) || sscanf(line, "table %zu", table) != 1 || *table > NTABLES)
        goto out;
    while (fgets(line, sizeof line, f) && last->n < MAX_KEYS) {
        int i = last->n;
        if (line[0] == 'i' && sscanf(line, "i %" SCNd64, &last->i[i]) == 1) {
            last->text[i] = false;
        } else if (line[0] == 't') {
            last->text[i] = true;
            size_t n = 0;
            for (const char *p = line + 2; p[0] && p[1] && p[0] != '\n' && n + 1 < 256; p += 2) {
                unsigned x;
                if (sscanf(p, "%2x", &x) != 1)
                    goto out;
                last->t[i][n++] = (char)x;
            }
            last->t[i][n] = '\0';
        } else {
            goto out;
        }
        last->n++;
    }
    if (strcmp(ks, k->cfg->scylla_keyspace) != 0) {
        snprintf(k->err, k->errlen,
                 "the checkpoint %s belongs to a copy into keyspace %s, not %s: remove it or "
                 "pass --from-start",
                 k->ckpt, ks, k->cfg->scylla_keyspace);
        rc = MS_ERR_CONFLICT;
        goto out;
    }
    rc = 1;
out:
    fclose(f);
    if (rc == MS_ERR_INVALID)
        snprintf(k->err, k->errlen,
                 "the checkpoint %s is not readable: remove it or pass --from-start", k->ckpt);
    return rc;
}

/* ------------------------------------------------------------------ progress */

static void progress(copier *k, const char *table, uint64_t rows, uint64_t total, bool force)
{
    if (!k->opt->progress)
        return;
    double now = now_s();
    if (!force && now - k->last_progress < 1.0)
        return;
    k->last_progress = now;
    store_copy_progress p = {.table = table,
                             .rows = rows,
                             .total = total,
                             .messages = k->rep->messages,
                             .messages_total = k->messages_total,
                             .eta_s = -1};
    double el = now - k->t0;
    p.messages_per_s = el > 0 ? (double)k->rep->messages / el : 0;
    if (p.messages_per_s > 0 && k->messages_total >= k->rep->messages)
        p.eta_s = (double)(k->messages_total - k->rep->messages) / p.messages_per_s;
    k->opt->progress(&p, k->opt->progress_ctx);
}

/* The filter of a catch-up pass for table t, or NULL when every row is copied. */
static const char *changed_filter(const copier *k, const table_def *t)
{
    return k->since_ms > 0 ? t->changed : NULL;
}

static void bind_since(const copier *k, sqlite3_stmt *st)
{
    int i = sqlite3_bind_parameter_index(st, ":since");
    if (i > 0)
        sqlite3_bind_int64(st, i, k->since_ms);
}

/* Rows of t in the store (changed_only: those this pass copies). */
static int64_t count_rows(copier *k, const table_def *t, bool changed_only)
{
    char q[512];
    const char *f = changed_only ? changed_filter(k, t) : NULL;
    if (grouped(t))
        snprintf(q, sizeof q, "SELECT count(*) FROM (SELECT 1 FROM %s GROUP BY %s)", from_of(t),
                 t->keys);
    else
        snprintf(q, sizeof q, "SELECT count(*) FROM %s%s%s", t->name, f ? " WHERE " : "",
                 f ? f : "");
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(k->db, q, -1, &st, NULL) == SQLITE_OK)
        bind_since(k, st);
    if (st && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* ------------------------------------------------------------------ one table */

static void key_of(sqlite3_stmt *row, int nkeys, key *out)
{
    out->n = nkeys;
    for (int i = 0; i < nkeys; i++) {
        out->text[i] = sqlite3_column_type(row, i) == SQLITE_TEXT;
        if (out->text[i])
            snprintf(out->t[i], sizeof out->t[i], "%s", (const char *)sqlite3_column_text(row, i));
        else
            out->i[i] = sqlite3_column_int64(row, i);
    }
}

static void bind_key(sqlite3_stmt *st, const key *kk)
{
    for (int i = 0; i < kk->n; i++) {
        if (kk->text[i])
            sqlite3_bind_text(st, i + 1, kk->t[i], -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_int64(st, i + 1, kk->i[i]);
    }
}

/* Counter rows of one chunk: read what the cluster holds, then add the difference. */
typedef struct count_read {
    cql_result *res;
    int code;
    int *pending;
} count_read;

static void on_count(cql_result *res, const cql_status *st, void *ud)
{
    count_read *cr = ud;
    cr->code = st->code;
    cr->res = st->code == 0 ? cql_result_keep(res) : NULL;
    (*cr->pending)--;
}

/* The edits, then the deletes, of the messages whose inserts were acknowledged. */
static int write_followups(copier *k)
{
    int rc = 0;
    for (int i = 0; i < k->nedits && rc == 0; i++)
        rc = pipe_exec(&k->p, k->ps[SC_EDIT_APPLY], &k->edits[i], k->wcl);
    if (rc == 0)
        rc = pipe_drain(&k->p);
    for (int i = 0; i < k->ndels && rc == 0; i++)
        rc = pipe_exec(&k->p, k->ps[SC_DELETE_APPLY], &k->dels[i], k->wcl);
    if (rc == 0)
        rc = pipe_drain(&k->p);
    k->nedits = k->ndels = 0;
    return rc;
}

static int copy_table(copier *k, size_t ti, key *resume)
{
    const table_def *t = &tables[ti];
    char q[1024], where[256] = "";
    const char *filter = changed_filter(k, t);
    int64_t total = count_rows(k, t, true);
    if (total < 0) {
        snprintf(k->err, k->errlen, "cannot read table %s of the store: %s", from_of(t),
                 sqlite3_errmsg(k->db));
        return MS_ERR_IO;
    }
    key last = resume ? *resume : (key){0};
    uint64_t rows = 0;
    for (;;) {
        /* the keyset's ? first (indexes 1..n), then the filter's :since */
        if (last.n > 0) {
            char marks[32] = "";
            for (int i = 0; i < t->nkeys; i++)
                strcat(marks, i ? ", ?" : "?");
            snprintf(where, sizeof where, "%s (%s) > (%s)%s%s", grouped(t) ? "HAVING" : "WHERE",
                     t->keys, marks, filter ? " AND " : "", filter ? filter : "");
        } else if (filter) {
            snprintf(where, sizeof where, "WHERE %s", filter);
        }
        snprintf(q, sizeof q, "SELECT %s FROM %s %s %s ORDER BY %s LIMIT %d", t->cols, from_of(t),
                 grouped(t) ? "GROUP BY" : where, grouped(t) ? t->keys : "", t->keys, CHUNK);
        if (grouped(t) && last.n > 0)
            snprintf(q, sizeof q, "SELECT %s FROM %s GROUP BY %s %s ORDER BY %s LIMIT %d", t->cols,
                     from_of(t), t->keys, where, t->keys, CHUNK);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(k->db, q, -1, &st, NULL) != SQLITE_OK) {
            snprintf(k->err, k->errlen, "cannot read table %s of the store: %s", from_of(t),
                     sqlite3_errmsg(k->db));
            return MS_ERR_IO;
        }
        if (last.n > 0)
            bind_key(st, &last);
        bind_since(k, st);
        int n = 0, rc = 0, src;
        if (!t->counters) {
            while ((src = sqlite3_step(st)) == SQLITE_ROW) {
                rc = t->write(k, st);
                if (rc)
                    break;
                key_of(st, t->nkeys, &last);
                n++;
                rows++;
                k->rep->rows++;
                progress(k, t->name, rows, (uint64_t)total, false);
            }
            if (rc == 0 && src != SQLITE_DONE) {
                rc = MS_ERR_IO;
                snprintf(k->p.msg, sizeof k->p.msg, "reading the store: %s", sqlite3_errmsg(k->db));
            }
        } else {
            /* read the cluster's counts for the whole chunk, then fix: the rows are
               stepped twice (sqlite3_reset) within the chunk's read transaction */
            sqlite3_exec(k->db, "BEGIN", NULL, NULL, NULL);
            count_read reads[CHUNK];
            int pending = 0;
            while ((src = sqlite3_step(st)) == SQLITE_ROW && n < CHUNK) {
                cql_values *v = vals(k);
                t->read(k, st, v);
                cql_statement s;
                cql_statement_init(&s);
                s.prepared = k->ps[t->read_stmt];
                s.values = v;
                s.consistency = k->rcl;
                s.idempotent = true;
                reads[n] = (count_read){.pending = &pending};
                if (cql_session_execute(k->p.s, &s, on_count, &reads[n]) != 0) {
                    rc = MS_ERR_INTERNAL;
                    break;
                }
                pending++;
                n++;
            }
            while (pending > 0)
                cql_sync_run_for(k->c, 1);
            for (int i = 0; i < n && rc == 0; i++)
                if (reads[i].code) {
                    rc = reads[i].code;
                    snprintf(k->p.msg, sizeof k->p.msg, "reading the cluster's counts: %s",
                             ms_err_str(rc));
                }
            if (rc == 0) {
                sqlite3_reset(st);
                if (last.n > 0)
                    bind_key(st, &last);
                for (int i = 0; i < n && rc == 0; i++) {
                    if (sqlite3_step(st) != SQLITE_ROW) {
                        rc = MS_ERR_CONFLICT;
                        snprintf(k->p.msg, sizeof k->p.msg, "the source changed while counting");
                        break;
                    }
                    rc = t->fix(k, st, reads[i].res);
                    key_of(st, t->nkeys, &last);
                    rows++;
                    k->rep->rows++;
                }
            }
            for (int i = 0; i < n; i++)
                cql_result_destroy(reads[i].res);
            sqlite3_exec(k->db, "COMMIT", NULL, NULL, NULL);
            progress(k, t->name, rows, (uint64_t)total, false);
        }
        sqlite3_finalize(st);
        int drc = pipe_drain(&k->p);
        if (rc == 0)
            rc = drc;
        if (rc == 0)
            rc = write_followups(k);
        if (rc) {
            snprintf(k->err, k->errlen, "copying %s: %s", t->name,
                     k->p.msg[0] ? k->p.msg : ms_err_str(rc));
            return rc;
        }
        if (n > 0 && (rc = ckpt_write(k, ti, &last)) != 0)
            return rc;
        if (n < CHUNK) /* a short chunk: the last */
            break;
    }
    progress(k, t->name, rows, (uint64_t)total, true);
    return 0;
}

/* ------------------------------------------------------------------ verify */

static void mismatch(copier *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mismatch(copier *k, const char *fmt, ...)
{
    if (k->rep->mismatches++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(k->rep->first_mismatch, sizeof k->rep->first_mismatch, fmt, ap);
        va_end(ap);
    }
}

static int run_read(copier *k, sc_stmt_id id, cql_result **res)
{
    cql_statement s;
    cql_statement_init(&s);
    s.prepared = k->ps[id];
    s.values = &k->v;
    s.consistency = k->rcl;
    s.idempotent = true;
    cql_status st;
    if (cql_sync_execute(k->c, &s, res, &st) != 0 || st.code != 0) {
        snprintf(k->err, k->errlen, "verify: reading the cluster: %s", st.message);
        return st.code ? st.code : MS_ERR_IO;
    }
    return 0;
}

static int verify_channels(copier *k)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(k->db,
                           "SELECT m.channel_id, m.n, coalesce(c.last_message_id, 0) FROM "
                           "(SELECT channel_id, count(*) AS n FROM messages GROUP BY channel_id) m "
                           "LEFT JOIN channel_metadata c ON c.channel_id = m.channel_id "
                           "ORDER BY m.channel_id",
                           -1, &st, NULL) != SQLITE_OK)
        return MS_ERR_IO;
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        ms_xid ch = src_id(st, 0);
        int64_t want = col_i64(st, 1), last = col_i64(st, 2);
        sc_bind_COUNTER_GET(k->idf, vals(k), ch);
        cql_result *r = NULL;
        if ((rc = run_read(k, SC_COUNTER_GET, &r)) != 0)
            break;
        int64_t have = have_count(r);
        cql_result_destroy(r);
        if (have != want)
            mismatch(k, "channel %s: %" PRId64 " messages in the store, %" PRId64 " in the cluster",
                     ID_TEXT(k, ch), want, have);
        sc_bind_META_GET(k->idf, vals(k), ch);
        if ((rc = run_read(k, SC_META_GET, &r)) != 0)
            break;
        int64_t have_last = 0;
        if (cql_result_next_row(r) == 0)
            cql_row_get_bigint(r, 4, &have_last);
        cql_result_destroy(r);
        if (have_last != last)
            mismatch(
                k, "channel %s: last message %" PRId64 " in the store, %" PRId64 " in the cluster",
                ID_TEXT(k, ch), last, have_last);
        k->rep->channels++;
        progress(k, "verify", k->rep->channels, 0, false);
    }
    sqlite3_finalize(st);
    return rc;
}

static bool text_eq(cql_result *r, int col, sqlite3_stmt *st, int scol)
{
    cql_str s = {0};
    bool cnull = cql_row_get_text(r, col, &s) != 0 || s.len == 0;
    bool snull = col_null(st, scol) || sqlite3_column_bytes(st, scol) == 0;
    if (cnull || snull)
        return cnull == snull;
    return s.len == (size_t)sqlite3_column_bytes(st, scol) &&
           memcmp(s.ptr, sqlite3_column_text(st, scol), s.len) == 0;
}

static int verify_sample(copier *k)
{
    size_t want = k->opt->sample ? k->opt->sample : 1000;
    sqlite3_stmt *st = NULL;
    char q[1024];
    /* an even spread over the store: every n-th message by key */
    int64_t total = count_rows(k, &tables[2], false);
    int64_t every = total > (int64_t)want ? total / (int64_t)want : 1;
    snprintf(q, sizeof q,
             "SELECT channel_id, message_id, bucket, sender_id, content, is_edited, edited_at, "
             "is_deleted, deleted_at, (SELECT count(*) FROM message_edits e WHERE "
             "e.channel_id = m.channel_id AND e.message_id = m.message_id) FROM (SELECT *, "
             "row_number() OVER (ORDER BY channel_id, message_id) AS rn FROM messages) m "
             "WHERE rn %% %" PRId64 " = 0 LIMIT %zu",
             every, want);
    if (sqlite3_prepare_v2(k->db, q, -1, &st, NULL) != SQLITE_OK) {
        snprintf(k->err, k->errlen, "verify: %s", sqlite3_errmsg(k->db));
        return MS_ERR_IO;
    }
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        ms_xid ch = src_id(st, 0);
        int64_t id = col_i64(st, 1);
        sc_bind_MSG_GET(k->idf, vals(k), ch, (int32_t)col_i64(st, 2), id);
        cql_result *r = NULL;
        if ((rc = run_read(k, SC_MSG_GET, &r)) != 0)
            break;
        k->rep->sampled++;
        if (cql_result_next_row(r) != 0) {
            mismatch(k, "message %" PRId64 " of channel %s is missing in the cluster", id,
                     ID_TEXT(k, ch));
            cql_result_destroy(r);
            continue;
        }
        /* SC_MSG_COLS: channel_id 0, message_id 1, sender_id 2, ..., content 5,
           is_edited 13, edited_at 14, is_deleted 15, deleted_at 16 */
        bool ok = ms_xid_eq(sc_col_id(r, 2), src_id(st, 3)) && text_eq(r, 5, st, 4) &&
                  sc_col_bool(r, 13) == (col_i64(st, 5) != 0) &&
                  sc_col_bool(r, 15) == (col_i64(st, 7) != 0) &&
                  (!col_i64(st, 5) || sc_col_i64(r, 14) == col_i64(st, 6)) &&
                  (!col_i64(st, 7) || sc_col_i64(r, 16) == col_i64(st, 8));
        cql_result_destroy(r);
        if (!ok) {
            mismatch(k, "message %" PRId64 " of channel %s differs", id, ID_TEXT(k, ch));
            continue;
        }
        /* edit history length */
        sc_bind_HISTORY(k->idf, vals(k), ch, id, 1000);
        if ((rc = run_read(k, SC_HISTORY, &r)) != 0)
            break;
        if (r->row_count != col_i64(st, 9))
            mismatch(k, "message %" PRId64 ": %" PRId64 " edits in the store, %d in the cluster",
                     id, col_i64(st, 9), (int)r->row_count);
        cql_result_destroy(r);
        /* reaction counts */
        sc_bind_COUNTS_LIST(k->idf, vals(k), ch, id);
        if ((rc = run_read(k, SC_COUNTS_LIST, &r)) != 0)
            break;
        sqlite3_stmt *rs = NULL;
        sqlite3_prepare_v2(k->db,
                           "SELECT count FROM message_reaction_counts WHERE channel_id = ? AND "
                           "message_id = ? AND emoji = ?",
                           -1, &rs, NULL);
        int64_t nonzero = 0;
        while (cql_result_next_row(r) == 0) {
            cql_str emoji;
            int64_t n = 0;
            cql_row_get_text(r, 0, &emoji);
            cql_row_get_bigint(r, 1, &n);
            if (n == 0)
                continue;
            nonzero++;
            sqlite3_reset(rs);
            src_bind_id(k, rs, 1, ch);
            sqlite3_bind_int64(rs, 2, id);
            sqlite3_bind_text(rs, 3, emoji.ptr, (int)emoji.len, SQLITE_TRANSIENT);
            int64_t want_n = sqlite3_step(rs) == SQLITE_ROW ? sqlite3_column_int64(rs, 0) : 0;
            if (want_n != n)
                mismatch(k,
                         "message %" PRId64 ": reaction %.*s counts %" PRId64
                         " in the store, %" PRId64 " in the cluster",
                         id, (int)emoji.len, emoji.ptr, want_n, n);
        }
        sqlite3_finalize(rs);
        cql_result_destroy(r);
        rs = NULL;
        sqlite3_prepare_v2(k->db,
                           "SELECT count(*) FROM message_reaction_counts WHERE channel_id = ? AND "
                           "message_id = ? AND count > 0",
                           -1, &rs, NULL);
        src_bind_id(k, rs, 1, ch);
        sqlite3_bind_int64(rs, 2, id);
        if (sqlite3_step(rs) == SQLITE_ROW && sqlite3_column_int64(rs, 0) != nonzero)
            mismatch(k,
                     "message %" PRId64 ": %" PRId64 " emojis in the store, %" PRId64
                     " in the cluster",
                     id, (int64_t)sqlite3_column_int64(rs, 0), nonzero);
        sqlite3_finalize(rs);
        progress(k, "verify", k->rep->sampled, want, false);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Every read position and pin of the store (small tables), checked one by one. */
static int verify_positions_and_pins(copier *k)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    sqlite3_prepare_v2(k->db,
                       "SELECT channel_id, user_id, last_read_id FROM message_read_positions", -1,
                       &st, NULL);
    while (rc == 0 && st && sqlite3_step(st) == SQLITE_ROW) {
        sc_bind_READ_GET(k->idf, vals(k), src_id(st, 0), src_id(st, 1));
        cql_result *r = NULL;
        if ((rc = run_read(k, SC_READ_GET, &r)) != 0)
            break;
        int64_t have = 0;
        if (cql_result_next_row(r) == 0)
            cql_row_get_bigint(r, 0, &have);
        cql_result_destroy(r);
        if (have != col_i64(st, 2))
            mismatch(k, "read position of user %s in channel %s differs", ID_TEXT(k, src_id(st, 1)),
                     ID_TEXT(k, src_id(st, 0)));
    }
    sqlite3_finalize(st);
    st = NULL;
    sqlite3_prepare_v2(k->db, "SELECT channel_id, message_id, pinned_at FROM pinned_messages", -1,
                       &st, NULL);
    while (rc == 0 && st && sqlite3_step(st) == SQLITE_ROW) {
        sc_bind_PIN_GET(k->idf, vals(k), src_id(st, 0), col_i64(st, 1));
        cql_result *r = NULL;
        if ((rc = run_read(k, SC_PIN_GET, &r)) != 0)
            break;
        int64_t at = -1;
        if (cql_result_next_row(r) == 0)
            at = sc_col_i64(r, 3);
        cql_result_destroy(r);
        if (at != col_i64(st, 2))
            mismatch(k, "pin of message %" PRId64 " in channel %s differs", col_i64(st, 1),
                     ID_TEXT(k, src_id(st, 0)));
    }
    sqlite3_finalize(st);
    return rc;
}

/* ------------------------------------------------------------------ entry point */

static int prepare_all(copier *k)
{
    for (int i = 0; i < SC_NSTMT; i++) {
        char *text = sc_qualify(sc_stmt[i].cql, k->cfg->scylla_keyspace);
        if (!text)
            return MS_ERR_NOMEM;
        cql_status st;
        int rc = cql_sync_prepare(k->c, text, &k->ps[i], &st);
        free(text);
        if (rc != 0 || st.code != 0) {
            snprintf(k->err, k->errlen, "preparing the backend's statements: %s", st.message);
            return st.code ? st.code : MS_ERR_IO;
        }
        char why[256];
        if ((rc = sc_check_types(i, cql_prepared_params(k->ps[i]), k->idf, why, sizeof why))) {
            snprintf(k->err, k->errlen, "preparing the backend's statements: %s", why);
            return rc;
        }
    }
    return 0;
}

int store_copy_to_cluster(const store_config *cfg, const store_copy_options *opt,
                          store_copy_report *rep, char *err, size_t errlen)
{
    static const store_copy_options defaults = {0};
    opt = opt ? opt : &defaults;
    memset(rep, 0, sizeof *rep);
    copier k = {.cfg = cfg, .opt = opt, .rep = rep, .err = err, .errlen = errlen};
    k.t0 = now_s();
    k.search = cfg->search_pg_url[0] != '\0';
    if (ms_snowflake_init(&k.seq, cfg->epoch_ms, (uint32_t)cfg->worker_id, 2000, NULL, NULL)) {
        snprintf(err, errlen, "MSGSTORE_WORKER_ID or MSGSTORE_EPOCH_MS out of range");
        return MS_ERR_INVALID;
    }
    k.wcl = (int)cfg->scylla_write_consistency;
    k.rcl = (int)cfg->scylla_read_consistency;
    cql_values_init(&k.v);
    snprintf(k.ckpt, sizeof k.ckpt, "%s", opt->checkpoint ? opt->checkpoint : "");
    if (!opt->checkpoint)
        snprintf(k.ckpt, sizeof k.ckpt, "%s.copy-checkpoint", cfg->sqlite_path);

    /* the source: an existing msgstore store of this binary's schema */
    if (access(cfg->sqlite_path, F_OK) != 0) {
        snprintf(err, errlen, "the store %s does not exist (MSGSTORE_SQLITE_PATH)",
                 cfg->sqlite_path);
        return MS_ERR_NOT_FOUND;
    }
    int rc = store__sq_open_db(cfg->sqlite_path, false, &k.db, err, errlen);
    if (rc)
        return rc;
    size_t nm = 0;
    const store_migration *m = store_migrations(MS_BACKEND_SQLITE, &nm);
    int v = store__sq_schema_version(k.db);
    if (v <= 0 || v != (nm ? m[nm - 1].version : 0)) {
        snprintf(err, errlen,
                 v <= 0 ? "%s is not a msgstore store"
                        : "%s has schema version %d, not this "
                          "binary's: run `msgstore migrate` first",
                 cfg->sqlite_path, v);
        rc = MS_ERR_INVALID;
        goto out;
    }
    /* its id format (the keyspace gets the same), which the configuration must name */
    char what[300];
    snprintf(what, sizeof what, "the SQLite file %s", cfg->sqlite_path);
    if (store__sq_id_format(k.db, &k.idf) != 0) {
        snprintf(err, errlen, "%s: cannot read its id format", what);
        rc = MS_ERR_INVALID;
        goto out;
    }
    rc = store__id_format_check(what, k.idf, cfg->id_format, err, errlen);
    if (rc)
        goto out;

    /* the destination: the keyspace migrated with the backend's runner, one session */
    int applied = 0;
    store_config dst = *cfg;
    dst.scylla_enabled = true; /* the SCYLLA_* settings, whichever backend serve uses now */
    rc = store_migrate(&dst, NULL, NULL, &applied, err, errlen);
    if (rc)
        goto out;
    cql_options o;
    sc_options(&o, cfg, true);
    o.name = "copy";
    /* a batch job: a slow write is waited for (30 s at least; idempotent writes are retried
       within it), rather than failing the run for a resume */
    if (o.request_timeout_ms < 30000)
        o.request_timeout_ms = 30000;
    cql_status cs;
    if (cql_sync_connect(&o, &k.c, &cs) != 0) {
        snprintf(err, errlen, "cannot reach the cluster (%s): %s", cfg->scylla_contact_points,
                 cs.message);
        rc = cs.code ? cs.code : MS_ERR_UNAVAILABLE;
        goto out;
    }
    k.p = (pipeline){
        .c = k.c, .s = cql_sync_session(k.c), .window = opt->in_flight > 0 ? opt->in_flight : 128};
    if ((rc = prepare_all(&k)) != 0)
        goto out;

    if (!opt->verify_only) {
        size_t start = 0;
        key last = {0};
        int64_t now_ms = (int64_t)time(NULL) * 1000;
        k.started_ms = now_ms;
        if (!opt->from_start) {
            int64_t since = 0, started = 0;
            int found = ckpt_read(&k, &start, &last, &since, &started);
            if (found < 0) {
                rc = found;
                goto out;
            }
            if (found == 1 && start < NTABLES) { /* a pass stopped: go on with it */
                rep->resumed = true;
                k.since_ms = since;
                k.started_ms = started;
            } else if (found == 1) { /* a pass finished: copy what changed since it began */
                rep->caught_up = true;
                k.since_ms =
                    started - (opt->margin_set ? opt->catch_up_margin_ms : CATCH_UP_MARGIN_MS);
                if (k.since_ms < 1)
                    k.since_ms = 1;
                start = 0;
                memset(&last, 0, sizeof last);
            }
        }
        rep->since_ms = k.since_ms;
        k.messages_total = (uint64_t)count_rows(&k, &tables[2], true);
        for (size_t ti = start; ti < NTABLES; ti++) {
            if (ti == 2 && ti == start && last.n > 0) {
                /* resuming inside messages: those before the key are copied */
                sqlite3_stmt *st = NULL;
                const char *f = changed_filter(&k, &tables[2]);
                char q[512];
                snprintf(
                    q, sizeof q,
                    "SELECT count(*) FROM messages WHERE (channel_id, message_id) <= (?, ?)%s%s",
                    f ? " AND " : "", f ? f : "");
                sqlite3_prepare_v2(k.db, q, -1, &st, NULL);
                bind_key(st, &last);
                bind_since(&k, st);
                if (sqlite3_step(st) == SQLITE_ROW)
                    k.messages_total -= (uint64_t)sqlite3_column_int64(st, 0);
                sqlite3_finalize(st);
            }
            rc = copy_table(&k, ti, ti == start && last.n > 0 ? &last : NULL);
            if (rc)
                goto out;
        }
        if ((rc = ckpt_write(&k, NTABLES, NULL)) != 0)
            goto out;
    }
    if ((rc = verify_channels(&k)) != 0 || (rc = verify_sample(&k)) != 0 ||
        (rc = verify_positions_and_pins(&k)) != 0)
        goto out;
    if (rep->mismatches) {
        snprintf(err, errlen, "verify found %" PRIu64 " difference(s); the first: %s",
                 rep->mismatches, rep->first_mismatch);
        rc = MS_ERR_CONFLICT;
    }
out:
    for (int i = 0; k.edits && k.dels && i < CHUNK; i++) {
        cql_values_free(&k.edits[i]);
        cql_values_free(&k.dels[i]);
    }
    free(k.edits);
    free(k.dels);
    for (int i = 0; i < SC_NSTMT; i++)
        cql_prepared_release(k.ps[i]);
    cql_values_free(&k.v);
    cql_sync_close(k.c);
    sqlite3_close(k.db);
    rep->seconds = now_s() - k.t0;
    return rc;
}

#endif /* MSGSTORE_HAVE_CQL_SESSION */
