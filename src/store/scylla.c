/*
 * scylla.c - the ScyllaDB / Apache Cassandra backend, through src/cql.
 *
 * Threads: a pool of store_options.scylla_threads workers, each with its own
 * CQL session (cql_sync: a session on a private loop), take operations from
 * one queue and run them as straight-line sequences of prepared statements.
 * So at most scylla_threads operations are in flight; callers' loops never
 * block (answers go back through store__op_done).
 *
 * Rules (docs/data-model.md):
 *  - every statement is prepared once per session and bound; nothing is built
 *    from user input;
 *  - idempotence is marked per statement: plain inserts/updates of fixed
 *    values may be retried by the client; counter updates and lightweight
 *    transactions are never retried blindly (fix 2);
 *  - only the columns an operation has are written (unset values, no nulls:
 *    fix 3); soft delete writes '' instead of null;
 *  - reads at SCYLLA_READ_CONSISTENCY, writes at SCYLLA_WRITE_CONSISTENCY
 *    (both LOCAL_QUORUM by default: read-your-writes, fix 1), LWT at
 *    SCYLLA_SERIAL_CONSISTENCY;
 *  - pages walk the channel's list of non-empty buckets (fix 6): the first
 *    bucket alone, the next ones with one IN query, so a page costs a few
 *    queries however many empty buckets lie between messages;
 *  - nonce and Telegram dedup through INSERT ... IF NOT EXISTS (fix 7);
 *  - last_message_id, last_read_id and last_synced_message_id only move
 *    forward without a read: they are written USING TIMESTAMP derived from
 *    the value, so last-write-wins keeps the largest.
 */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/metrics.h"

#if !defined(MSGSTORE_HAVE_CQL_SESSION)

int store__scylla_open(store *s, const ms_config *cfg, const store_options *opt,
                       store_backend **out, char *err, size_t errlen)
{
    (void)s;
    (void)cfg;
    (void)opt;
    *out = NULL;
    snprintf(err, errlen,
             "this msgstore was built without the CQL client: ScyllaDB/Cassandra "
             "(SCYLLA_ENABLED=true) is not available");
    return MS_ERR_UNAVAILABLE;
}

int store__scylla_migrate(const ms_config *cfg, store_migrate_progress_fn progress, void *ctx,
                          int *applied, char *err, size_t errlen)
{
    (void)cfg;
    (void)progress;
    (void)ctx;
    if (applied)
        *applied = 0;
    snprintf(err, errlen,
             "this msgstore was built without the CQL client: ScyllaDB/Cassandra "
             "migrations are not available");
    return MS_ERR_UNAVAILABLE;
}

#else

#include "msgstore/cql.h"

#define BUCKET_CHUNK 32 /* buckets read per bucket-list query and per IN query */

#define SC_MSG_COLS                                                                                \
    "channel_id, message_id, sender_id, type, source, content, reply_to, attachments, metadata, "  \
    "nonce, telegram_chat_id, telegram_message_id, created_at, is_edited, edited_at, is_deleted, " \
    "deleted_at"
#define SC_PIN_COLS "channel_id, message_id, pinned_by, pinned_at, content_preview, sender_id"

/*
 * Kinds: R read; W idempotent write; L lightweight transaction; C counter
 * (never retried); S serial read (completes a transaction left in progress);
 * A read at ALL with a long timeout (the counter repair's recounts).
 */
enum { K_R, K_W, K_L, K_C, K_S, K_A };

#define SC_STATEMENTS(X)                                                                           \
    X(MSG_INSERT, K_W,                                                                             \
      "INSERT INTO @.messages (channel_id, bucket, message_id, sender_id, type, source, content, " \
      "reply_to, attachments, metadata, nonce, telegram_chat_id, telegram_message_id, "            \
      "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")                             \
    X(MSG_INSERT_NEW, K_L,                                                                         \
      "INSERT INTO @.messages (channel_id, bucket, message_id, sender_id, type, source, content, " \
      "reply_to, attachments, metadata, nonce, telegram_chat_id, telegram_message_id, "            \
      "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS")               \
    X(MSG_GET, K_R,                                                                                \
      "SELECT " SC_MSG_COLS " FROM @.messages WHERE channel_id = ? AND bucket = ? AND "            \
      "message_id = ?")                                                                            \
    X(BUCKET_ADD, K_W, "INSERT INTO @.channel_buckets (channel_id, bucket) VALUES (?, ?)")         \
    X(BUCKETS_DOWN, K_R,                                                                           \
      "SELECT bucket FROM @.channel_buckets WHERE channel_id = ? AND bucket <= ? LIMIT ?")         \
    X(BUCKETS_UP, K_R,                                                                             \
      "SELECT bucket FROM @.channel_buckets WHERE channel_id = ? AND bucket >= ? "                 \
      "ORDER BY bucket ASC LIMIT ?")                                                               \
    X(PAGE_BEFORE, K_R,                                                                            \
      "SELECT " SC_MSG_COLS " FROM @.messages WHERE channel_id = ? AND bucket = ? AND "            \
      "message_id < ? LIMIT ?")                                                                    \
    X(PAGE_AFTER, K_R,                                                                             \
      "SELECT " SC_MSG_COLS " FROM @.messages WHERE channel_id = ? AND bucket = ? AND "            \
      "message_id > ? ORDER BY message_id ASC LIMIT ?")                                            \
    X(PAGE_FROM, K_R,                                                                              \
      "SELECT " SC_MSG_COLS " FROM @.messages WHERE channel_id = ? AND bucket = ? AND "            \
      "message_id >= ? ORDER BY message_id ASC LIMIT ?")                                           \
    X(PAGE_BEFORE_IN, K_R,                                                                         \
      "SELECT " SC_MSG_COLS " FROM @.messages WHERE channel_id = ? AND bucket IN ? AND "           \
      "message_id < ? PER PARTITION LIMIT ?")                                                      \
    X(PAGE_AFTER_IN, K_R,                                                                          \
      "SELECT " SC_MSG_COLS " FROM @.messages WHERE channel_id = ? AND bucket IN ? AND "           \
      "message_id > ? ORDER BY message_id ASC PER PARTITION LIMIT ?")                              \
    X(UNREAD_IN, K_R,                                                                              \
      "SELECT bucket, message_id, is_deleted FROM @.messages WHERE channel_id = ? AND bucket IN "  \
      "? "                                                                                         \
      "AND message_id > ? PER PARTITION LIMIT ?")                                                  \
    X(UNREAD_SCAN, K_R,                                                                            \
      "SELECT bucket, message_id, is_deleted FROM @.messages WHERE channel_id = ? AND bucket = ? " \
      "AND message_id > ? AND message_id < ? LIMIT ?")                                             \
    X(TG_CLAIM, K_L,                                                                               \
      "INSERT INTO @.telegram_message_mapping (telegram_message_id, telegram_chat_id, "            \
      "channel_id, "                                                                               \
      "message_id, created_at) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS")                              \
    X(TG_UNCLAIM, K_L,                                                                             \
      "DELETE FROM @.telegram_message_mapping WHERE telegram_message_id = ? AND "                  \
      "telegram_chat_id = ? IF message_id = ?")                                                    \
    X(TG_GET, K_R,                                                                                 \
      "SELECT channel_id, message_id FROM @.telegram_message_mapping WHERE "                       \
      "telegram_message_id = ? AND telegram_chat_id = ?")                                          \
    X(NONCE_CLAIM, K_L,                                                                            \
      "INSERT INTO @.message_nonces (channel_id, nonce, message_id, created_at) "                  \
      "VALUES (?, ?, ?, ?) IF NOT EXISTS")                                                         \
    X(META_CREATE, K_L,                                                                            \
      "INSERT INTO @.channel_metadata (channel_id, name, type, created_at, updated_at) "           \
      "VALUES (?, ?, ?, ?, ?) IF NOT EXISTS")                                                      \
    X(META_LAST, K_W,                                                                              \
      "UPDATE @.channel_metadata USING TIMESTAMP ? SET last_message_id = ? WHERE channel_id = ?")  \
    X(META_SET, K_W,                                                                               \
      "UPDATE @.channel_metadata SET name = ?, type = ?, created_at = ?, updated_at = ? "          \
      "WHERE channel_id = ?")                                                                      \
    X(META_GET, K_R,                                                                               \
      "SELECT channel_id, name, type, created_at, last_message_id, updated_at FROM "               \
      "@.channel_metadata WHERE channel_id = ?")                                                   \
    X(COUNT_MSG, K_C,                                                                              \
      "UPDATE @.channel_message_counts SET count = count + 1 WHERE channel_id = ? AND bucket = ?") \
    X(COUNTER_GET, K_R, "SELECT SUM(count) FROM @.channel_message_counts WHERE channel_id = ?")    \
    X(EDIT_SAVE, K_W,                                                                              \
      "INSERT INTO @.message_edits (channel_id, message_id, seq, edited_at, content) "             \
      "VALUES (?, ?, ?, ?, ?)")                                                                    \
    X(EDIT_APPLY, K_W,                                                                             \
      "UPDATE @.messages SET content = ?, is_edited = true, edited_at = ? WHERE channel_id = ? "   \
      "AND bucket = ? AND message_id = ?")                                                         \
    X(DELETE_APPLY, K_W,                                                                           \
      "UPDATE @.messages SET content = '', attachments = '', metadata = '', is_deleted = true, "   \
      "deleted_at = ? WHERE channel_id = ? AND bucket = ? AND message_id = ?")                     \
    X(EDITS_PURGE, K_W, "DELETE FROM @.message_edits WHERE channel_id = ? AND message_id = ?")     \
    X(HISTORY, K_R,                                                                                \
      "SELECT edited_at, content FROM @.message_edits WHERE channel_id = ? AND message_id = ? "    \
      "LIMIT ?")                                                                                   \
    X(REACT_ADD, K_L,                                                                              \
      "INSERT INTO @.message_reactions (channel_id, message_id, emoji, user_id, created_at) "      \
      "VALUES (?, ?, ?, ?, ?) IF NOT EXISTS")                                                      \
    X(REACT_DEL, K_L,                                                                              \
      "DELETE FROM @.message_reactions WHERE channel_id = ? AND message_id = ? AND emoji = ? AND " \
      "user_id = ? IF EXISTS")                                                                     \
    X(COUNT_INC, K_C,                                                                              \
      "UPDATE @.message_reaction_counts SET count = count + 1, changes = changes + 1 WHERE "       \
      "channel_id = ? AND message_id = ? AND emoji = ?")                                           \
    X(COUNT_DEC, K_C,                                                                              \
      "UPDATE @.message_reaction_counts SET count = count - 1, changes = changes + 1 WHERE "       \
      "channel_id = ? AND message_id = ? AND emoji = ?")                                           \
    X(REACT_ROWS, K_R,                                                                             \
      "SELECT COUNT(*) FROM @.message_reactions WHERE channel_id = ? AND message_id = ? AND "      \
      "emoji = ?")                                                                                 \
    X(COUNT_GET, K_R,                                                                              \
      "SELECT count FROM @.message_reaction_counts WHERE channel_id = ? AND message_id = ? AND "   \
      "emoji = ?")                                                                                 \
    X(COUNTS_LIST, K_R,                                                                            \
      "SELECT emoji, count FROM @.message_reaction_counts WHERE channel_id = ? AND "               \
      "message_id = ?")                                                                            \
    X(USERS, K_R,                                                                                  \
      "SELECT user_id FROM @.message_reactions WHERE channel_id = ? AND message_id = ? AND "       \
      "emoji = ? AND user_id > ? LIMIT ?")                                                         \
    X(PIN_GET, K_R,                                                                                \
      "SELECT " SC_PIN_COLS " FROM @.pinned_messages WHERE channel_id = ? AND message_id = ?")     \
    X(PINS_ALL, K_R,                                                                               \
      "SELECT " SC_PIN_COLS ", pin_count FROM @.pinned_messages WHERE channel_id = ? LIMIT 1000")  \
    X(PIN_ADD, K_L,                                                                                \
      "INSERT INTO @.pinned_messages (channel_id, message_id, pinned_at, pinned_by, "              \
      "content_preview, sender_id) VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS")                       \
    X(PIN_DEL, K_L,                                                                                \
      "DELETE FROM @.pinned_messages WHERE channel_id = ? AND message_id = ? IF EXISTS")           \
    X(PIN_COUNT, K_L,                                                                              \
      "UPDATE @.pinned_messages SET pin_count = ? WHERE channel_id = ? IF pin_count = ?")          \
    X(READ_GET, K_R,                                                                               \
      "SELECT last_read_id, updated_at FROM @.message_read_positions WHERE channel_id = ? AND "    \
      "user_id = ?")                                                                               \
    X(READ_SET, K_W,                                                                               \
      "UPDATE @.message_read_positions USING TIMESTAMP ? SET last_read_id = ?, updated_at = ? "    \
      "WHERE channel_id = ? AND user_id = ?")                                                      \
    X(SYNC_GET, K_R,                                                                               \
      "SELECT channel_id, telegram_chat_id, last_synced_message_id, direction, last_sync_at, "     \
      "created_at FROM @.telegram_sync_state WHERE channel_id = ?")                                \
    X(SYNC_SET, K_W,                                                                               \
      "UPDATE @.telegram_sync_state SET telegram_chat_id = ?, direction = ?, last_sync_at = ?, "   \
      "created_at = ? WHERE channel_id = ?")                                                       \
    X(SYNC_LAST, K_W,                                                                              \
      "UPDATE @.telegram_sync_state USING TIMESTAMP ? SET last_synced_message_id = ? WHERE "       \
      "channel_id = ?")                                                                            \
    X(PING, K_R, "SELECT version FROM @.schema_version WHERE scope = 'msgstore' LIMIT 1")          \
    X(RP_NOTE, K_W,                                                                                \
      "INSERT INTO @.counter_repairs (shard, kind, channel_id, id, emoji, failure_id) "            \
      "VALUES (?, ?, ?, ?, ?, ?)")                                                                 \
    X(RP_SCAN, K_R,                                                                                \
      "SELECT kind, channel_id, id, emoji, failure_id FROM @.counter_repairs WHERE shard IN ? "    \
      "LIMIT ?")                                                                                   \
    X(RP_DONE, K_W,                                                                                \
      "DELETE FROM @.counter_repairs WHERE shard = ? AND kind = ? AND channel_id = ? AND id = ? "  \
      "AND emoji = ? AND failure_id IN ?")                                                         \
    X(RP_LEASE, K_L,                                                                               \
      "INSERT INTO @.counter_repair_leases (kind, channel_id, id, emoji, owner) "                  \
      "VALUES (?, ?, ?, ?, ?) IF NOT EXISTS USING TTL ?")                                          \
    X(RP_UNLEASE, K_L,                                                                             \
      "DELETE FROM @.counter_repair_leases WHERE kind = ? AND channel_id = ? AND id = ? AND "      \
      "emoji = ? IF owner = ?")                                                                    \
    X(RP_RX_TOUCH, K_S,                                                                            \
      "SELECT user_id FROM @.message_reactions WHERE channel_id = ? AND message_id = ? LIMIT 1")   \
    X(RP_RX_ROWS, K_A,                                                                             \
      "SELECT COUNT(*) FROM @.message_reactions WHERE channel_id = ? AND message_id = ? AND "      \
      "emoji = ?")                                                                                 \
    X(RP_RX_COUNTER, K_A,                                                                          \
      "SELECT count, changes FROM @.message_reaction_counts WHERE channel_id = ? AND "             \
      "message_id = ? AND emoji = ?")                                                              \
    X(RP_RX_FIX, K_C,                                                                              \
      "UPDATE @.message_reaction_counts SET count = count + ?, changes = changes + 1 WHERE "       \
      "channel_id = ? AND message_id = ? AND emoji = ?")                                           \
    X(RP_MC_TOUCH, K_S,                                                                            \
      "SELECT message_id FROM @.messages WHERE channel_id = ? AND bucket = ? LIMIT 1")             \
    X(RP_MC_ROWS, K_A,                                                                             \
      "SELECT COUNT(created_at) FROM @.messages WHERE channel_id = ? AND bucket = ?")              \
    X(RP_MC_COUNTER, K_A,                                                                          \
      "SELECT count FROM @.channel_message_counts WHERE channel_id = ? AND bucket = ?")            \
    X(RP_MC_FIX, K_C,                                                                              \
      "UPDATE @.channel_message_counts SET count = count + ? WHERE channel_id = ? AND bucket = ?")

#define SC_ENUM(name, kind, cql) SC_##name,
typedef enum sc_stmt_id { SC_STATEMENTS(SC_ENUM) SC_NSTMT } sc_stmt_id;
#undef SC_ENUM

static const struct {
    int kind;
    const char *cql;
} sc_stmt[SC_NSTMT] = {
#define SC_ROW(name, k, cql) {k, cql},
    SC_STATEMENTS(SC_ROW)
#undef SC_ROW
};

typedef struct sc_backend sc_backend;

/* A count to recount (counter_repairs): a reaction count or a bucket's message count. */
enum { RP_REACTION = 1, RP_MESSAGES = 2 };

typedef struct rp_note {
    int8_t kind;
    uint64_t ch;
    int64_t id; /* message id (RP_REACTION) or bucket (RP_MESSAGES) */
    char emoji[STORE_MAX_EMOJI_BYTES + 1];
    uint64_t failure_id; /* a snowflake of the failure's time */
} rp_note;

typedef struct sc_conn {
    sc_backend *b;
    cql_sync *db;
    cql_prepared *ps[SC_NSTMT];
    bool repair;      /* the counter repair's session: never takes injected faults */
    uint32_t queries; /* requests sent for the current op */
    unsigned up_seen; /* b->hosts_up when this session last caught up */
    cql_values v;     /* reused for every statement */
    cql_values bv[3]; /* the statements of the insert batch */
} sc_conn;

/* Channels known to have a metadata row (skips the IF NOT EXISTS on inserts). */
#define KNOWN_SLOTS 65536

struct sc_backend {
    store_backend base;
    const ms_config *cfg;
    store__queue q; /* operations for the workers */
    int nthreads, started;
    pthread_t *threads;
    sc_conn *conns;
    char *sql[SC_NSTMT]; /* statement texts with the keyspace filled in */
    pthread_mutex_t known_mu;
    uint64_t *known; /* open addressing, 0 = empty */
    size_t nknown;
    _Atomic int faults[STORE_FAULT_LWT_APPLIED + 1]; /* injected faults left, by store_fault */
    _Atomic unsigned hosts_up; /* CQL_HOST_UP events seen by any of the sessions */

    /* counter repair (see "exact counts") */
    int64_t settle_ms;   /* how long a count must stay still; failures this old are due */
    int64_t interval_ms; /* background passes; <= 0: no thread */
    int lease_ttl_s;
    sc_conn rconn;       /* the repair's own session */
    pthread_mutex_t rmu; /* one pass at a time */
    pthread_mutex_t nmu; /* the fields below */
    pthread_cond_t ncv;  /* wakes the repair thread (a note, closing) */
    rp_note *notes;      /* failures not yet recorded in counter_repairs */
    size_t nnotes, capnotes;
    uint64_t notes_dropped;
    bool rstop, rwake;
    bool rthread_started;
    pthread_t rthread;
    ms_counter *m_noted, *m_fixed, *m_clean, *m_dropped;
};

/* ------------------------------------------------------------------ options */

static void sc_options(cql_options *o, const ms_config *cfg, bool keyspace)
{
    cql_options_init(o);
    cql_options_from_config(o, cfg);
    o->keyspace = keyspace ? cfg->scylla_keyspace : NULL;
    o->default_page_size = 0;
    o->wait_schema_agreement = true;
    o->name = "store";
}

/* The statement text with every "@." replaced by "<keyspace>."; malloc'd, NULL on OOM. */
static char *qualify(const char *cql, const char *ks)
{
    size_t n = 0, kl = strlen(ks);
    for (const char *p = cql; *p; p++)
        n += (p[0] == '@' && p[1] == '.') ? kl : 1;
    char *out = malloc(n + 1), *w = out;
    if (!out)
        return NULL;
    for (const char *p = cql; *p; p++) {
        if (p[0] == '@' && p[1] == '.') {
            memcpy(w, ks, kl);
            w += kl;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
    return out;
}

static bool valid_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ statements */

static int sc_fail(store_op *op, const cql_status *st, const char *what)
{
    int code = st->code ? st->code : MS_ERR_INTERNAL;
    return store__op_fail(op, code, "%s: %s", what,
                          st->message[0] ? st->message : ms_err_str(code));
}

static cql_values *vals(sc_conn *c)
{
    cql_values_reset(&c->v);
    return &c->v;
}

/* Prepares statement id on c's session once. */
static int prepare(sc_conn *c, store_op *op, sc_stmt_id id, const char *what)
{
    cql_status st;
    if (!c->ps[id] && cql_sync_prepare(c->db, c->b->sql[id], &c->ps[id], &st) != 0) {
        c->ps[id] = NULL;
        return sc_fail(op, &st, what);
    }
    return 0;
}

/* Takes one injected fault that applies to statement id, if any is left (0: none). */
static int take_fault(sc_conn *c, sc_stmt_id id)
{
    static const store_fault counter[] = {STORE_FAULT_COUNTER_LOST, STORE_FAULT_COUNTER_APPLIED};
    static const store_fault lwt[] = {STORE_FAULT_LWT_APPLIED};
    const store_fault *which = NULL;
    size_t n = 0;
    if (c->repair)
        return 0;
    if (sc_stmt[id].kind == K_C) {
        which = counter;
        n = 2;
    } else if (id == SC_REACT_ADD || id == SC_REACT_DEL) {
        which = lwt;
        n = 1;
    }
    for (size_t i = 0; i < n; i++) {
        _Atomic int *left = &c->b->faults[which[i]];
        int v = atomic_load(left);
        while (v > 0)
            if (atomic_compare_exchange_weak(left, &v, v - 1))
                return (int)which[i];
    }
    return 0;
}

/*
 * Runs statement id with the values in c->v. *res (may be NULL) receives the
 * result, to free with cql_result_destroy. Fails op on error.
 */
static int sc_run(sc_conn *c, store_op *op, sc_stmt_id id, const char *what, cql_result **res)
{
    const ms_config *cfg = c->b->cfg;
    cql_status st;
    if (res)
        *res = NULL;
    if (cql_values_error(&c->v))
        return store__op_fail(op, MS_ERR_NOMEM, "%s: cannot bind the values", what);
    if (prepare(c, op, id, what))
        return op->status;
    cql_statement s;
    cql_statement_init(&s);
    s.prepared = c->ps[id];
    s.values = &c->v;
    s.page_size = 0;
    int kind = sc_stmt[id].kind;
    s.idempotent = kind == K_R || kind == K_W || kind == K_S || kind == K_A;
    switch (kind) {
    case K_R:
        s.consistency = (int)cfg->scylla_read_consistency;
        break;
    case K_S: /* a serial read completes any transaction left in progress on the partition */
        s.consistency = (int)cfg->scylla_serial_consistency;
        break;
    case K_A: /* every replica: a counter update applied by one replica only is seen */
        s.consistency = CQL_CONSISTENCY_ALL;
        s.timeout_ms = 6 * cfg->scylla_request_timeout_ms;
        break;
    default:
        s.consistency = (int)cfg->scylla_write_consistency;
        break;
    }
    if (kind == K_L)
        s.serial_consistency = (int)cfg->scylla_serial_consistency;
    int fault = take_fault(c, id);
    if (fault == STORE_FAULT_COUNTER_LOST)
        return store__op_fail(op, MS_ERR_TIMEOUT, "%s: timed out (injected fault)", what);
    c->queries++;
    cql_result *r = NULL;
    if (cql_sync_execute(c->db, &s, &r, &st) != 0 || st.code != 0) {
        cql_result_destroy(r);
        return sc_fail(op, &st, what);
    }
    if (fault) {
        cql_result_destroy(r);
        return store__op_fail(op, MS_ERR_TIMEOUT, "%s: timed out (injected fault, applied)", what);
    }
    if (res)
        *res = r;
    else
        cql_result_destroy(r);
    return 0;
}

/* [applied] of a lightweight transaction's result. */
static bool lwt_applied(cql_result *r)
{
    bool applied = false;
    if (cql_result_next_row(r) == 0)
        cql_row_get_bool(r, 0, &applied);
    return applied;
}

static int64_t col_i64(cql_result *r, int col)
{
    int64_t v = 0;
    if (cql_row_get_bigint(r, col, &v) != 0)
        v = 0;
    return v;
}

static int64_t named_i64(cql_result *r, const char *name)
{
    int col = cql_result_column_index(r, name);
    return col < 0 ? 0 : col_i64(r, col);
}

static bool col_bool(cql_result *r, int col)
{
    bool v = false;
    if (cql_row_get_bool(r, col, &v) != 0)
        v = false;
    return v;
}

static int col_tiny(cql_result *r, int col)
{
    int8_t v = 0;
    if (cql_row_get_tinyint(r, col, &v) != 0)
        v = 0;
    return v;
}

/* Copies a text column into res; NULL for null (and for "" when empty_is_null). */
static const char *col_text(cql_result *r, int col, store_result_hdr *res, size_t *len,
                            bool empty_is_null, bool *oom)
{
    cql_str s;
    if (len)
        *len = 0;
    if (cql_row_get_text(r, col, &s) != 0 || (empty_is_null && s.len == 0))
        return NULL;
    return store__res_text(res, s.ptr ? s.ptr : "", s.len, len, oom);
}

/*
 * Reads the current row (SC_MSG_COLS) into *m. Returns 1 for a usable row,
 * 0 for a partial row to skip (no sender or time: only an update reached it),
 * or MS_ERR_NOMEM. A deleted message never shows content, even if an edit
 * raced the delete.
 */
static int row_msg(cql_result *r, store_result_hdr *res, store_message *m)
{
    bool oom = false;
    memset(m, 0, sizeof *m);
    if (cql_row_is_null(r, 2) || cql_row_is_null(r, 12))
        return 0;
    m->channel_id = (uint64_t)col_i64(r, 0);
    m->id = (uint64_t)col_i64(r, 1);
    m->bucket = ms_bucket_of(m->id);
    m->sender_id = (uint64_t)col_i64(r, 2);
    m->type = (store_msg_type)col_tiny(r, 3);
    m->source = (store_msg_source)col_tiny(r, 4);
    m->is_deleted = col_bool(r, 15);
    m->deleted_at_ms = (uint64_t)col_i64(r, 16);
    if (!m->is_deleted) {
        m->content = col_text(r, 5, res, &m->content_len, false, &oom);
        m->attachments = col_text(r, 7, res, NULL, true, &oom);
        m->metadata = col_text(r, 8, res, NULL, true, &oom);
    }
    if (!m->content && !oom) {
        m->content = store__res_strndup(res, "", 0);
        m->content_len = 0;
        oom = !m->content;
    }
    m->reply_to = (uint64_t)col_i64(r, 6);
    m->nonce = col_text(r, 9, res, NULL, true, &oom);
    if (!cql_row_is_null(r, 10)) {
        m->has_telegram = true;
        m->telegram_chat_id = col_i64(r, 10);
        m->telegram_message_id = col_i64(r, 11);
    }
    m->created_at_ms = (uint64_t)col_i64(r, 12);
    m->is_edited = col_bool(r, 13);
    m->edited_at_ms = (uint64_t)col_i64(r, 14);
    return oom ? MS_ERR_NOMEM : 1;
}

/* Reads one message into *m (strings into res). 0, or fails op (NOT_FOUND). */
static int get_msg(sc_conn *c, store_op *op, uint64_t ch, uint64_t id, store_result_hdr *res,
                   store_message *m)
{
    cql_values *v = vals(c);
    cql_values_add_bigint(v, (int64_t)ch);
    cql_values_add_int(v, (int32_t)ms_bucket_of(id));
    cql_values_add_bigint(v, (int64_t)id);
    cql_result *r = NULL;
    if (sc_run(c, op, SC_MSG_GET, "reading the message", &r))
        return op->status;
    int got = 0;
    if (cql_result_next_row(r) == 0)
        got = row_msg(r, res, m);
    cql_result_destroy(r);
    if (got < 0)
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    if (got == 0)
        return store__op_fail(op, MS_ERR_NOT_FOUND,
                              "message %" PRIu64 " not found in channel %" PRIu64, id, ch);
    return 0;
}

/* Loads a message into a new message result (op->res). */
static int load_message(sc_conn *c, store_op *op, uint64_t ch, uint64_t id, bool duplicate)
{
    store_message_result *res = store__res_new(sizeof *res);
    if (!res)
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    if (get_msg(c, op, ch, id, &res->hdr, &res->msg)) {
        store_free(res);
        return op->status;
    }
    res->duplicate = duplicate;
    op->res = &res->hdr;
    return 0;
}

/* ------------------------------------------------------------------ known channels */

static bool known_has(sc_backend *b, uint64_t ch)
{
    bool found = false;
    pthread_mutex_lock(&b->known_mu);
    size_t i = (size_t)((ch * 0x9E3779B97F4A7C15ULL) >> 40) % KNOWN_SLOTS;
    for (size_t k = 0; k < KNOWN_SLOTS && b->known[i]; k++, i = (i + 1) % KNOWN_SLOTS) {
        if (b->known[i] == ch) {
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&b->known_mu);
    return found;
}

static void known_add(sc_backend *b, uint64_t ch)
{
    pthread_mutex_lock(&b->known_mu);
    if (b->nknown >= KNOWN_SLOTS / 2) { /* keep probing short: forget everything */
        memset(b->known, 0, KNOWN_SLOTS * sizeof *b->known);
        b->nknown = 0;
    }
    size_t i = (size_t)((ch * 0x9E3779B97F4A7C15ULL) >> 40) % KNOWN_SLOTS;
    while (b->known[i] && b->known[i] != ch)
        i = (i + 1) % KNOWN_SLOTS;
    if (!b->known[i]) {
        b->known[i] = ch;
        b->nknown++;
    }
    pthread_mutex_unlock(&b->known_mu);
}

/* ------------------------------------------------------------------ exact counts: recording */

#define RP_SHARDS    16
#define RP_NOTES_MAX 65536 /* failures kept in memory while counter_repairs cannot be written */

static int rp_shard(uint64_t ch)
{
    return (int)((ch * 0x9E3779B97F4A7C15ULL) >> 60) % RP_SHARDS;
}

/* Writes one failure row; 0, or fails op. */
static int rp_record(sc_conn *c, store_op *op, const rp_note *n)
{
    cql_values *v = vals(c);
    cql_values_add_int(v, rp_shard(n->ch));
    cql_values_add_tinyint(v, n->kind);
    cql_values_add_bigint(v, (int64_t)n->ch);
    cql_values_add_bigint(v, n->id);
    cql_values_add_text(v, n->emoji, strlen(n->emoji));
    cql_values_add_bigint(v, (int64_t)n->failure_id);
    return sc_run(c, op, SC_RP_NOTE, "recording a count to repair", NULL);
}

/* Keeps a note in memory for the repair thread to record later. */
static void rp_keep(sc_backend *b, const rp_note *n)
{
    pthread_mutex_lock(&b->nmu);
    if (b->nnotes == b->capnotes && b->capnotes < RP_NOTES_MAX) {
        size_t cap = b->capnotes ? b->capnotes * 2 : 64;
        rp_note *nn = realloc(b->notes, cap * sizeof *nn);
        if (nn) {
            b->notes = nn;
            b->capnotes = cap;
        }
    }
    if (b->nnotes < b->capnotes)
        b->notes[b->nnotes++] = *n;
    else { /* out of memory, or a backlog of RP_NOTES_MAX: this count stays as it is */
        ms_counter_add(b->m_dropped, 1);
        MS_ERROR("store", "scylla: %" PRIu64 " counts to repair dropped", ++b->notes_dropped);
    }
    pthread_mutex_unlock(&b->nmu);
}

/* False for errors that prove a statement was never sent. */
static bool maybe_applied(int code)
{
    return code != MS_ERR_NOMEM && code != MS_ERR_INVALID;
}

/*
 * A row was (or may have been) written and its counter update failed, timed
 * out or was skipped: records the count for the repair (counter_repairs, or
 * memory until that write succeeds) and wakes the repair thread. Keeps op's
 * status and detail.
 */
static void note_failure(sc_conn *c, store_op *op, int kind, uint64_t ch, int64_t id,
                         const char *emoji)
{
    sc_backend *b = c->b;
    rp_note n = {.kind = (int8_t)kind, .ch = ch, .id = id};
    snprintf(n.emoji, sizeof n.emoji, "%s", emoji ? emoji : "");
    n.failure_id = store__next_id(b->base.s);
    if (!n.failure_id) /* clock stepped back: any id of now will do */
        n.failure_id = ms_snowflake_from_unix_ms(op->now_ms, b->cfg->epoch_ms);
    int st = op->status;
    char detail[STORE_DETAIL_LEN];
    memcpy(detail, op->detail, sizeof detail);
    ms_counter_add(b->m_noted, 1);
    MS_WARN("store",
            "scylla: %s count of channel %" PRIu64 " %s %" PRId64 " may be off (%s); recounting",
            kind == RP_REACTION ? "a reaction" : "the message", ch,
            kind == RP_REACTION ? "message" : "bucket", id, st ? detail : "not counted");
    if (rp_record(c, op, &n) != 0) {
        MS_WARN("store", "scylla: %s; kept in memory", op->detail);
        rp_keep(b, &n);
    }
    op->status = st;
    memcpy(op->detail, detail, sizeof detail);
    pthread_mutex_lock(&b->nmu);
    b->rwake = true;
    pthread_cond_signal(&b->ncv);
    pthread_mutex_unlock(&b->nmu);
}

/* ------------------------------------------------------------------ messages */

/* A text value, or unset for NULL (fix 3: absent columns are not written, no null). */
static void add_text_or_unset(cql_values *v, const char *text)
{
    if (text)
        cql_values_add_text(v, text, strlen(text));
    else
        cql_values_add_unset(v);
}

static void bind_message(cql_values *v, const store_insert_req *r, uint64_t id, uint64_t created)
{
    cql_values_add_bigint(v, (int64_t)r->channel_id);
    cql_values_add_int(v, (int32_t)ms_bucket_of(id));
    cql_values_add_bigint(v, (int64_t)id);
    cql_values_add_bigint(v, (int64_t)r->sender_id);
    cql_values_add_tinyint(v, (int8_t)r->type);
    cql_values_add_tinyint(v, (int8_t)r->source);
    cql_values_add_text(v, r->content, r->content_len);
    if (r->reply_to)
        cql_values_add_bigint(v, (int64_t)r->reply_to);
    else
        cql_values_add_unset(v);
    add_text_or_unset(v, r->attachments);
    add_text_or_unset(v, r->metadata);
    add_text_or_unset(v, r->nonce);
    if (r->has_telegram) {
        cql_values_add_bigint(v, r->telegram_chat_id);
        cql_values_add_bigint(v, r->telegram_message_id);
    } else {
        cql_values_add_unset(v);
        cql_values_add_unset(v);
    }
    cql_values_add_bigint(v, (int64_t)created);
}

/*
 * Writes the message row and what goes with it. The bucket is registered
 * first: a listed bucket without its message costs a page nothing but a
 * query, a message in an unlisted bucket would be invisible to pages.
 * count: increment the bucket's message count once (never retried); else,
 * or when that fails, or when a failure leaves the message possibly written,
 * the bucket's count is recorded for the repair, which recounts its rows.
 */
static int write_message(sc_conn *c, store_op *op, uint64_t id, bool count)
{
    const store_insert_req *r = &op->req.insert;
    const ms_config *cfg = c->b->cfg;
    uint64_t created = ms_snowflake_unix_ms(id, cfg->epoch_ms);
    cql_values *v;
    if (!known_has(c->b, r->channel_id)) {
        v = vals(c);
        cql_values_add_bigint(v, (int64_t)r->channel_id);
        cql_values_add_text(v, "", 0);
        cql_values_add_text(v, "channel", 7);
        cql_values_add_bigint(v, (int64_t)created);
        cql_values_add_bigint(v, (int64_t)op->now_ms);
        if (sc_run(c, op, SC_META_CREATE, "creating the channel", NULL))
            return op->status;
        known_add(c->b, r->channel_id);
    }
    if (op->id_given) {
        v = vals(c);
        cql_values_add_bigint(v, (int64_t)r->channel_id);
        cql_values_add_int(v, (int32_t)ms_bucket_of(id));
        if (sc_run(c, op, SC_BUCKET_ADD, "recording the bucket", NULL))
            return op->status;
        v = vals(c);
        bind_message(v, r, id, created);
        cql_result *res = NULL;
        if (sc_run(c, op, SC_MSG_INSERT_NEW, "writing the message", &res))
            goto uncounted;
        bool applied = lwt_applied(res);
        cql_result_destroy(res);
        if (!applied)
            return store__op_fail(op, MS_ERR_CONFLICT,
                                  "message id %" PRIu64 " already exists in channel %" PRIu64, id,
                                  r->channel_id);
        v = vals(c);
        cql_values_add_bigint(v, (int64_t)(created * 1000));
        cql_values_add_bigint(v, (int64_t)id);
        cql_values_add_bigint(v, (int64_t)r->channel_id);
        if (sc_run(c, op, SC_META_LAST, "updating the channel metadata", NULL))
            goto uncounted;
    } else {
        /*
         * One round trip: bucket, message and last_message_id in an unlogged
         * batch (three partitions, each write idempotent, so the batch may be
         * retried). last_message_id only grows: its write timestamp is the
         * id's time in µs. A failure leaves at most a listed bucket or an
         * unacknowledged message; a retry with the same nonce completes it.
         */
        static const sc_stmt_id ids[3] = {SC_BUCKET_ADD, SC_MSG_INSERT, SC_META_LAST};
        cql_statement st[3];
        for (int k = 0; k < 3; k++) {
            if (prepare(c, op, ids[k], "writing the message"))
                return op->status;
            cql_values_reset(&c->bv[k]);
            cql_statement_init(&st[k]);
            st[k].prepared = c->ps[ids[k]];
            st[k].values = &c->bv[k];
        }
        cql_values_add_bigint(&c->bv[0], (int64_t)r->channel_id);
        cql_values_add_int(&c->bv[0], (int32_t)ms_bucket_of(id));
        bind_message(&c->bv[1], r, id, created);
        cql_values_add_bigint(&c->bv[2], (int64_t)(created * 1000));
        cql_values_add_bigint(&c->bv[2], (int64_t)id);
        cql_values_add_bigint(&c->bv[2], (int64_t)r->channel_id);
        for (int k = 0; k < 3; k++)
            if (cql_values_error(&c->bv[k]))
                return store__op_fail(op, MS_ERR_NOMEM, "writing the message: cannot bind");
        cql_batch_request br;
        cql_batch_request_init(&br);
        br.kind = CQL_BATCH_KIND_UNLOGGED;
        br.statements = st;
        br.count = 3;
        br.consistency = (int)cfg->scylla_write_consistency;
        br.idempotent = true;
        cql_status cs;
        c->queries++;
        if (cql_sync_batch(c->db, &br, &cs) != 0 || cs.code != 0) {
            sc_fail(op, &cs, "writing the message");
            goto uncounted;
        }
    }
    if (count) {
        v = vals(c);
        cql_values_add_bigint(v, (int64_t)r->channel_id);
        cql_values_add_int(v, (int32_t)ms_bucket_of(id));
        if (sc_run(c, op, SC_COUNT_MSG, "counting the message", NULL) == 0)
            return 0;
        /* The message is durable; only its count may be off: the repair recounts. */
        note_failure(c, op, RP_MESSAGES, r->channel_id, (int64_t)ms_bucket_of(id), NULL);
        op->status = 0;
        op->detail[0] = '\0';
        return 0;
    }
    note_failure(c, op, RP_MESSAGES, r->channel_id, (int64_t)ms_bucket_of(id), NULL);
    return 0;
uncounted:
    if (maybe_applied(op->status))
        note_failure(c, op, RP_MESSAGES, r->channel_id, (int64_t)ms_bucket_of(id), NULL);
    return op->status;
}

/*
 * The nonce or Telegram ids were claimed by message `id` first. Return it;
 * when it is not there yet (the claimer is still writing it, or died between
 * claim and write), wait a little, then complete it with this request's
 * content, uncounted.
 */
static int duplicate_of(sc_conn *c, store_op *op, uint64_t ch, uint64_t id)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        if (load_message(c, op, ch, id, true) == 0) {
            /* the first insert may have failed after writing the message: list its bucket */
            cql_values *v = vals(c);
            cql_values_add_bigint(v, (int64_t)ch);
            cql_values_add_int(v, (int32_t)ms_bucket_of(id));
            return sc_run(c, op, SC_BUCKET_ADD, "recording the bucket", NULL);
        }
        if (op->status != MS_ERR_NOT_FOUND)
            return op->status;
        op->status = 0;
        op->detail[0] = '\0';
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (ch != op->req.insert.channel_id)
        return store__op_fail(op, MS_ERR_UNAVAILABLE,
                              "the Telegram message is claimed by an unfinished insert in channel "
                              "%" PRIu64 "; retry",
                              ch);
    MS_WARN("store",
            "scylla: completing message %" PRIu64 " of channel %" PRIu64
            " whose insert did not finish",
            id, ch);
    if (write_message(c, op, id, false))
        return op->status;
    return load_message(c, op, ch, id, true);
}

static int op_insert(sc_conn *c, store_op *op)
{
    const store_insert_req *r = &op->req.insert;
    cql_values *v;
    cql_result *res = NULL;
    bool tg_claimed = false;
    if (r->has_telegram) {
        v = vals(c);
        cql_values_add_bigint(v, r->telegram_message_id);
        cql_values_add_bigint(v, r->telegram_chat_id);
        cql_values_add_bigint(v, (int64_t)r->channel_id);
        cql_values_add_bigint(v, (int64_t)r->id);
        cql_values_add_bigint(v, (int64_t)op->now_ms);
        if (sc_run(c, op, SC_TG_CLAIM, "claiming the Telegram message", &res))
            return op->status;
        if (!lwt_applied(res)) {
            uint64_t ch = (uint64_t)named_i64(res, "channel_id");
            uint64_t id = (uint64_t)named_i64(res, "message_id");
            cql_result_destroy(res);
            return duplicate_of(c, op, ch, id);
        }
        cql_result_destroy(res);
        tg_claimed = true;
    }
    if (r->nonce) {
        v = vals(c);
        cql_values_add_bigint(v, (int64_t)r->channel_id);
        cql_values_add_text(v, r->nonce, strlen(r->nonce));
        cql_values_add_bigint(v, (int64_t)r->id);
        cql_values_add_bigint(v, (int64_t)op->now_ms);
        if (sc_run(c, op, SC_NONCE_CLAIM, "claiming the nonce", &res))
            goto unclaim;
        if (!lwt_applied(res)) {
            uint64_t id = (uint64_t)named_i64(res, "message_id");
            cql_result_destroy(res);
            if (tg_claimed) {
                v = vals(c);
                cql_values_add_bigint(v, r->telegram_message_id);
                cql_values_add_bigint(v, r->telegram_chat_id);
                cql_values_add_bigint(v, (int64_t)r->id);
                if (sc_run(c, op, SC_TG_UNCLAIM, "releasing the Telegram claim", NULL))
                    return op->status;
            }
            return duplicate_of(c, op, r->channel_id, id);
        }
        cql_result_destroy(res);
    }
    if (write_message(c, op, r->id, true))
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
        v = vals(c);
        cql_values_add_bigint(v, r->telegram_message_id);
        cql_values_add_bigint(v, r->telegram_chat_id);
        cql_values_add_bigint(v, (int64_t)r->id);
        sc_run(c, op, SC_TG_UNCLAIM, "releasing the Telegram claim", NULL);
        op->status = st;
        memcpy(op->detail, detail, sizeof detail);
    }
    return op->status;
}

static int op_get_telegram(sc_conn *c, store_op *op)
{
    cql_values *v = vals(c);
    cql_values_add_bigint(v, op->req.tg.telegram_message_id);
    cql_values_add_bigint(v, op->req.tg.telegram_chat_id);
    cql_result *r = NULL;
    if (sc_run(c, op, SC_TG_GET, "reading the Telegram mapping", &r))
        return op->status;
    if (cql_result_next_row(r) != 0) {
        cql_result_destroy(r);
        return store__op_fail(op, MS_ERR_NOT_FOUND,
                              "no message for Telegram message %" PRId64 " in chat %" PRId64,
                              op->req.tg.telegram_message_id, op->req.tg.telegram_chat_id);
    }
    uint64_t ch = (uint64_t)col_i64(r, 0), id = (uint64_t)col_i64(r, 1);
    cql_result_destroy(r);
    int rc = load_message(c, op, ch, id, false);
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

static int cmp_asc(const void *a, const void *b)
{
    return -cmp_desc(a, b);
}

/* Appends the rows of r (sorted by dir) to mv, up to `want` in mv. */
static int take_rows(store_op *op, cql_result *r, store_result_hdr *res, msgvec *mv, size_t want,
                     bool desc)
{
    msgvec tmp = {0};
    store_message m;
    int rc;
    while (cql_result_next_row(r) == 0) {
        rc = row_msg(r, res, &m);
        if (rc < 0 || (rc == 1 && vec_push(&tmp, &m) != 0)) {
            free(tmp.v);
            return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
        }
    }
    if (tmp.n > 1)
        qsort(tmp.v, tmp.n, sizeof *tmp.v, desc ? cmp_desc : cmp_asc);
    for (size_t i = 0; i < tmp.n && mv->n < want; i++) {
        if (vec_push(mv, &tmp.v[i]) != 0) {
            free(tmp.v);
            return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
        }
    }
    free(tmp.v);
    return 0;
}

/* The next chunk of the channel's bucket list from `from` (inclusive) in one direction. */
static int bucket_list(sc_conn *c, store_op *op, uint64_t ch, int32_t from, bool desc, int32_t *out,
                       size_t *n)
{
    cql_values *v = vals(c);
    cql_values_add_bigint(v, (int64_t)ch);
    cql_values_add_int(v, from);
    cql_values_add_int(v, BUCKET_CHUNK);
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
static int collect(sc_conn *c, store_op *op, uint64_t ch, uint64_t anchor, bool desc,
                   bool inclusive, size_t want, store_result_hdr *res, msgvec *mv)
{
    const ms_config *cfg = c->b->cfg;
    int32_t start = (int32_t)ms_bucket_of(desc ? anchor - 1 : anchor);
    if (desc) {
        /* no message lies in the future (ids are checked against the clock) */
        uint64_t now_id = ms_snowflake_from_unix_ms(op->now_ms + 60000, cfg->epoch_ms);
        int32_t now_b = (int32_t)ms_bucket_of(now_id);
        if (now_b < start)
            start = now_b;
    }
    cql_values *v = vals(c);
    cql_result *r = NULL;
    cql_values_add_bigint(v, (int64_t)ch);
    cql_values_add_int(v, start);
    cql_values_add_bigint(v, (int64_t)anchor);
    cql_values_add_int(v, (int32_t)want);
    sc_stmt_id id = desc ? SC_PAGE_BEFORE : inclusive ? SC_PAGE_FROM : SC_PAGE_AFTER;
    if (sc_run(c, op, id, "reading the page", &r))
        return op->status;
    int rc = take_rows(op, r, res, mv, want, desc);
    cql_result_destroy(r);
    if (rc)
        return rc;

    int32_t list[BUCKET_CHUNK];
    size_t n = 0;
    int32_t from = desc ? start - 1 : start + 1;
    while (mv->n < want && from >= 0) {
        if (bucket_list(c, op, ch, from, desc, list, &n))
            return op->status;
        if (n == 0)
            break;
        size_t use = n < want - mv->n ? n : want - mv->n;
        v = vals(c);
        cql_values_add_bigint(v, (int64_t)ch);
        cql_values_begin_list(v);
        for (size_t k = 0; k < use; k++)
            cql_values_add_int(v, list[k]);
        cql_values_end(v);
        /* these buckets lie wholly on the far side of the anchor */
        cql_values_add_bigint(v, (int64_t)anchor);
        cql_values_add_int(v, (int32_t)(want - mv->n));
        if (sc_run(c, op, desc ? SC_PAGE_BEFORE_IN : SC_PAGE_AFTER_IN, "reading the page", &r))
            return op->status;
        rc = take_rows(op, r, res, mv, want, desc);
        cql_result_destroy(r);
        if (rc)
            return rc;
        if (n < BUCKET_CHUNK && use == n)
            break;
        from = desc ? list[use - 1] - 1 : list[use - 1] + 1;
    }
    return 0;
}

static int op_page(sc_conn *c, store_op *op)
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

static int op_edit(sc_conn *c, store_op *op)
{
    const store_edit_req *r = &op->req.edit;
    store_message_result *cur = store__res_new(sizeof *cur);
    if (!cur)
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    if (get_msg(c, op, r->channel_id, r->message_id, &cur->hdr, &cur->msg))
        goto out;
    if (cur->msg.is_deleted) {
        store__op_fail(op, MS_ERR_CONFLICT, "message %" PRIu64 " is deleted and cannot be edited",
                       r->message_id);
        goto out;
    }
    uint64_t seq = store__next_id(op->s);
    if (!seq) {
        store__op_fail(op, MS_ERR_CLOCK, "the clock stepped back; retry");
        goto out;
    }
    cql_values *v = vals(c);
    cql_values_add_bigint(v, (int64_t)r->channel_id);
    cql_values_add_bigint(v, (int64_t)r->message_id);
    cql_values_add_bigint(v, (int64_t)seq);
    cql_values_add_bigint(v, (int64_t)op->now_ms);
    cql_values_add_text(v, cur->msg.content, cur->msg.content_len);
    if (sc_run(c, op, SC_EDIT_SAVE, "saving the edit history", NULL))
        goto out;
    v = vals(c);
    cql_values_add_text(v, r->content, r->content_len);
    cql_values_add_bigint(v, (int64_t)op->now_ms);
    cql_values_add_bigint(v, (int64_t)r->channel_id);
    cql_values_add_int(v, (int32_t)ms_bucket_of(r->message_id));
    cql_values_add_bigint(v, (int64_t)r->message_id);
    if (sc_run(c, op, SC_EDIT_APPLY, "editing the message", NULL))
        goto out;
    load_message(c, op, r->channel_id, r->message_id, false);
out:
    store_free(cur);
    return op->status;
}

static int pin_cas(sc_conn *c, store_op *op, uint64_t ch, uint64_t msg, const store_pin_entry *add,
                   bool *changed);

static int op_delete(sc_conn *c, store_op *op)
{
    const store_get_req *r = &op->req.get;
    if (load_message(c, op, r->channel_id, r->message_id, false))
        return op->status;
    store_message_result *cur = (store_message_result *)op->res;
    if (cur->msg.is_deleted)
        return 0;
    op->res = NULL;
    store_free(cur);
    cql_values *v = vals(c);
    cql_values_add_bigint(v, (int64_t)op->now_ms);
    cql_values_add_bigint(v, (int64_t)r->channel_id);
    cql_values_add_int(v, (int32_t)ms_bucket_of(r->message_id));
    cql_values_add_bigint(v, (int64_t)r->message_id);
    if (sc_run(c, op, SC_DELETE_APPLY, "deleting the message", NULL))
        return op->status;
    bool unpinned = false;
    if (pin_cas(c, op, r->channel_id, r->message_id, NULL, &unpinned))
        return op->status;
    v = vals(c);
    cql_values_add_bigint(v, (int64_t)r->channel_id);
    cql_values_add_bigint(v, (int64_t)r->message_id);
    if (sc_run(c, op, SC_EDITS_PURGE, "purging the edit history", NULL))
        return op->status;
    return load_message(c, op, r->channel_id, r->message_id, false);
}

static int op_history(sc_conn *c, store_op *op)
{
    const store_history_req *r = &op->req.history;
    store_history_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    store_message m;
    if (get_msg(c, op, r->channel_id, r->message_id, &res->hdr, &m))
        return op->status;
    res->items = store__res_alloc(&res->hdr, (size_t)r->limit * sizeof *res->items);
    if (!res->items)
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    if (m.is_deleted) /* purged with the delete; an edit racing it must not resurface */
        return 0;
    cql_values *v = vals(c);
    cql_values_add_bigint(v, (int64_t)r->channel_id);
    cql_values_add_bigint(v, (int64_t)r->message_id);
    cql_values_add_int(v, r->limit);
    cql_result *q = NULL;
    if (sc_run(c, op, SC_HISTORY, "reading the edit history", &q))
        return op->status;
    bool oom = false;
    while (cql_result_next_row(q) == 0 && res->count < (size_t)r->limit) {
        store_edit_entry *e = &res->items[res->count++];
        e->edited_at_ms = (uint64_t)col_i64(q, 0);
        e->content = col_text(q, 1, &res->hdr, &e->content_len, false, &oom);
        if (!e->content && !oom)
            e->content = store__res_strndup(&res->hdr, "", 0);
    }
    cql_result_destroy(q);
    if (oom)
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    return 0;
}

/* ------------------------------------------------------------------ reactions */

static void bind_reaction3(cql_values *v, const store_reaction_req *r)
{
    cql_values_add_bigint(v, (int64_t)r->channel_id);
    cql_values_add_bigint(v, (int64_t)r->message_id);
    cql_values_add_text(v, r->emoji, strlen(r->emoji));
}

static int op_reaction(sc_conn *c, store_op *op, bool add)
{
    const store_reaction_req *r = &op->req.reaction;
    store_message_result *cur = store__res_new(sizeof *cur);
    if (!cur)
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    int rc = get_msg(c, op, r->channel_id, r->message_id, &cur->hdr, &cur->msg);
    bool deleted = cur->msg.is_deleted;
    store_free(cur);
    if (rc)
        return rc;
    if (add && deleted)
        return store__op_fail(op, MS_ERR_CONFLICT, "message %" PRIu64 " is deleted", r->message_id);
    cql_values *v = vals(c);
    bind_reaction3(v, r);
    cql_values_add_bigint(v, (int64_t)r->user_id);
    if (add)
        cql_values_add_bigint(v, (int64_t)op->now_ms);
    cql_result *q = NULL;
    if (sc_run(c, op, add ? SC_REACT_ADD : SC_REACT_DEL,
               add ? "adding the reaction" : "removing the reaction", &q)) {
        /* a transaction that timed out may still be applied: recount */
        if (maybe_applied(op->status))
            note_failure(c, op, RP_REACTION, r->channel_id, (int64_t)r->message_id, r->emoji);
        return op->status;
    }
    bool changed = lwt_applied(q);
    cql_result_destroy(q);
    sc_stmt_id count_stmt = SC_COUNT_GET;
    if (changed) {
        /* Fix 2: counted once, only for a row really created or removed; never retried. */
        v = vals(c);
        bind_reaction3(v, r);
        if (sc_run(c, op, add ? SC_COUNT_INC : SC_COUNT_DEC, "counting the reaction", NULL)) {
            /*
             * The row changed; whether the counter did is unknown. The repair
             * corrects the counter; this answer counts the rows themselves.
             */
            note_failure(c, op, RP_REACTION, r->channel_id, (int64_t)r->message_id, r->emoji);
            op->status = 0;
            op->detail[0] = '\0';
            count_stmt = SC_REACT_ROWS;
        }
    }
    v = vals(c);
    bind_reaction3(v, r);
    if (sc_run(c, op, count_stmt, "reading the reaction count", &q))
        return op->status;
    int64_t count = 0;
    if (cql_result_next_row(q) == 0)
        count = col_i64(q, 0);
    cql_result_destroy(q);
    store_reaction_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    res->changed = changed;
    res->count = count > 0 ? (uint64_t)count : 0;
    return 0;
}

static int op_reactions_get(sc_conn *c, store_op *op)
{
    store_reactions_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    cql_values *v = vals(c);
    cql_values_add_bigint(v, (int64_t)op->req.get.channel_id);
    cql_values_add_bigint(v, (int64_t)op->req.get.message_id);
    cql_result *q = NULL;
    if (sc_run(c, op, SC_COUNTS_LIST, "reading the reactions", &q))
        return op->status;
    size_t cap = q->row_count > 0 ? (size_t)q->row_count : 1;
    res->items = store__res_alloc(&res->hdr, cap * sizeof *res->items);
    bool oom = !res->items;
    while (!oom && cql_result_next_row(q) == 0 && res->count < cap) {
        int64_t n = col_i64(q, 1);
        if (n <= 0)
            continue;
        store_reaction_count *e = &res->items[res->count];
        e->emoji = col_text(q, 0, &res->hdr, NULL, false, &oom);
        e->count = (uint64_t)n;
        if (e->emoji)
            res->count++;
    }
    cql_result_destroy(q);
    return oom ? store__op_fail(op, MS_ERR_NOMEM, "out of memory") : 0;
}

static int op_reaction_users(sc_conn *c, store_op *op)
{
    const store_reaction_users_req *r = &op->req.users;
    store_users_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    res->user_ids = store__res_alloc(&res->hdr, (size_t)r->limit * sizeof *res->user_ids);
    if (!res->user_ids)
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    cql_values *v = vals(c);
    cql_values_add_bigint(v, (int64_t)r->channel_id);
    cql_values_add_bigint(v, (int64_t)r->message_id);
    cql_values_add_text(v, r->emoji, strlen(r->emoji));
    cql_values_add_bigint(v, (int64_t)r->after_user_id);
    cql_values_add_int(v, r->limit + 1);
    cql_result *q = NULL;
    if (sc_run(c, op, SC_USERS, "reading the reaction users", &q))
        return op->status;
    while (cql_result_next_row(q) == 0) {
        if (res->count < (size_t)r->limit)
            res->user_ids[res->count++] = (uint64_t)col_i64(q, 0);
        else
            res->more = true;
    }
    cql_result_destroy(q);
    return 0;
}

/* ------------------------------------------------------------------ pins */

static int row_pin(cql_result *q, store_result_hdr *res, store_pin_entry *p)
{
    bool oom = false;
    p->channel_id = (uint64_t)col_i64(q, 0);
    p->message_id = (uint64_t)col_i64(q, 1);
    p->pinned_by = (uint64_t)col_i64(q, 2);
    p->pinned_at_ms = (uint64_t)col_i64(q, 3);
    p->content_preview = col_text(q, 4, res, NULL, false, &oom);
    if (!p->content_preview && !oom)
        p->content_preview = store__res_strndup(res, "", 0);
    p->sender_id = (uint64_t)col_i64(q, 5);
    return oom || !p->content_preview ? MS_ERR_NOMEM : 0;
}

/* Reads the pin of op's message into a new pin result; *found. */
static int load_pin(sc_conn *c, store_op *op, bool *found)
{
    const store_pin_req *r = &op->req.pin;
    cql_values *v = vals(c);
    cql_values_add_bigint(v, (int64_t)r->channel_id);
    cql_values_add_bigint(v, (int64_t)r->message_id);
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
static int all_pins(sc_conn *c, store_op *op, uint64_t ch, store_result_hdr *res,
                    store_pin_entry **out, size_t *n, int *count)
{
    cql_values *v = vals(c);
    cql_values_add_bigint(v, (int64_t)ch);
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

typedef struct sc_wait {
    bool done;
    cql_status st;
    cql_result *res;
} sc_wait;

static void on_batch(cql_result *res, const cql_status *st, void *ud)
{
    sc_wait *w = ud;
    w->st = *st;
    w->res = res ? cql_result_keep(res) : NULL;
    w->done = true;
}

/*
 * Runs the statements ids[0..n) with the values c->bv[k] as one conditional
 * batch (a lightweight transaction over one partition); *res receives its
 * result ([applied], then the current values when not applied). Never
 * retried. Fails op on error.
 */
static int sc_lwt_batch(sc_conn *c, store_op *op, const sc_stmt_id *ids, size_t n, const char *what,
                        cql_result **res)
{
    const ms_config *cfg = c->b->cfg;
    cql_statement st[3];
    *res = NULL;
    for (size_t k = 0; k < n && k < 3; k++) {
        if (prepare(c, op, ids[k], what))
            return op->status;
        if (cql_values_error(&c->bv[k]))
            return store__op_fail(op, MS_ERR_NOMEM, "%s: cannot bind the values", what);
        cql_statement_init(&st[k]);
        st[k].prepared = c->ps[ids[k]];
        st[k].values = &c->bv[k];
    }
    cql_batch_request br;
    cql_batch_request_init(&br);
    br.kind = CQL_BATCH_KIND_LOGGED;
    br.statements = st;
    br.count = n;
    br.consistency = (int)cfg->scylla_write_consistency;
    br.serial_consistency = (int)cfg->scylla_serial_consistency;
    br.idempotent = false;
    c->queries++;
    sc_wait w = {0};
    int rc = cql_session_batch(cql_sync_session(c->db), &br, on_batch, &w);
    if (rc < 0)
        return store__op_fail(op, rc, "%s: the batch was refused", what);
    while (!w.done)
        cql_sync_run_for(c->db, 1);
    if (w.st.code) {
        cql_result_destroy(w.res);
        return sc_fail(op, &w.st, what);
    }
    *res = w.res;
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
static int pin_cas(sc_conn *c, store_op *op, uint64_t ch, uint64_t msg, const store_pin_entry *add,
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
            return store__op_fail(op, MS_ERR_CONFLICT, "channel %" PRIu64 " already has %d pins",
                                  ch, STORE_MAX_PINS);
        cql_values *v = &c->bv[0];
        cql_values_reset(v);
        cql_values_add_bigint(v, (int64_t)ch);
        cql_values_add_bigint(v, (int64_t)msg);
        if (add) {
            cql_values_add_bigint(v, (int64_t)add->pinned_at_ms);
            cql_values_add_bigint(v, (int64_t)add->pinned_by);
            cql_values_add_text(v, add->content_preview, strlen(add->content_preview));
            cql_values_add_bigint(v, (int64_t)add->sender_id);
        }
        v = &c->bv[1];
        cql_values_reset(v);
        cql_values_add_int(v, add ? cur + 1 : (cur > 0 ? cur - 1 : 0));
        cql_values_add_bigint(v, (int64_t)ch);
        if (count >= 0)
            cql_values_add_int(v, count);
        else
            cql_values_add_null(v);
        const sc_stmt_id ids[2] = {add ? SC_PIN_ADD : SC_PIN_DEL, SC_PIN_COUNT};
        cql_result *q = NULL;
        if (sc_lwt_batch(c, op, ids, 2, add ? "pinning the message" : "unpinning the message", &q))
            return op->status;
        bool applied = lwt_applied(q);
        cql_result_destroy(q);
        if (applied) {
            *changed = true;
            return 0;
        }
        /* the pins moved under us: read them again, after a short random pause */
        struct timespec ts = {0, (long)(1 + (uv_hrtime() % 4)) * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return store__op_fail(op, MS_ERR_UNAVAILABLE,
                          "the pins of channel %" PRIu64 " keep changing; retry", ch);
}

static int op_pin(sc_conn *c, store_op *op)
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
            if (get_msg(c, op, r->channel_id, r->message_id, &msg->hdr, &m))
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
        if (pin_cas(c, op, r->channel_id, r->message_id, &res->pin, &pinned) || pinned)
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

static int op_unpin(sc_conn *c, store_op *op)
{
    const store_pin_req *r = &op->req.pin;
    bool found = false;
    if (load_pin(c, op, &found))
        return op->status;
    if (found && pin_cas(c, op, r->channel_id, r->message_id, NULL, &found))
        return op->status;
    if (!found)
        return store__op_fail(op, MS_ERR_NOT_FOUND,
                              "message %" PRIu64 " is not pinned in channel %" PRIu64,
                              r->message_id, r->channel_id);
    return 0;
}

static int op_pins_list(sc_conn *c, store_op *op)
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
    cql_values *v = vals(c);
    cql_values_add_bigint(v, (int64_t)op->req.read.channel_id);
    cql_values_add_bigint(v, (int64_t)op->req.read.user_id);
    cql_result *q = NULL;
    if (sc_run(c, op, SC_READ_GET, "reading the read position", &q))
        return NULL;
    if (cql_result_next_row(q) == 0) {
        res->last_read_id = (uint64_t)col_i64(q, 0);
        res->updated_at_ms = (uint64_t)col_i64(q, 1);
    }
    cql_result_destroy(q);
    return res;
}

static int op_read_set(sc_conn *c, store_op *op)
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
    cql_values *v = vals(c);
    cql_values_add_bigint(v, (int64_t)ts);
    cql_values_add_bigint(v, (int64_t)r->message_id);
    cql_values_add_bigint(v, (int64_t)op->now_ms);
    cql_values_add_bigint(v, (int64_t)r->channel_id);
    cql_values_add_bigint(v, (int64_t)r->user_id);
    if (sc_run(c, op, SC_READ_SET, "setting the read position", NULL))
        return op->status;
    res->moved = true;
    res->last_read_id = r->message_id;
    res->updated_at_ms = op->now_ms;
    return 0;
}

static int op_read_get(sc_conn *c, store_op *op)
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
        if (bucket_list(c, op, r->channel_id, from, true, list, &n))
            return op->status;
        size_t keep = 0;
        while (keep < n && list[keep] >= bottom)
            keep++;
        if (keep == 0)
            break;
        cql_values *v = vals(c);
        cql_values_add_bigint(v, (int64_t)r->channel_id);
        cql_values_begin_list(v);
        for (size_t k = 0; k < keep; k++) {
            cql_values_add_int(v, list[k]);
            rows[k] = 0;
            lowest[k] = UINT64_MAX;
        }
        cql_values_end(v);
        cql_values_add_bigint(v, (int64_t)res->last_read_id);
        cql_values_add_int(v, STORE_UNREAD_CAP);
        cql_result *q = NULL;
        if (sc_run(c, op, SC_UNREAD_IN, "counting unread messages", &q))
            return op->status;
        while (cql_result_next_row(q) == 0) {
            int32_t b = 0;
            cql_row_get_int(q, 0, &b);
            uint64_t id = (uint64_t)col_i64(q, 1);
            for (size_t k = 0; k < keep; k++) {
                if (list[k] == b) {
                    rows[k]++;
                    if (id < lowest[k])
                        lowest[k] = id;
                }
            }
            if (!col_bool(q, 2) && count < STORE_UNREAD_CAP)
                count++;
        }
        cql_result_destroy(q);
        for (size_t k = 0; k < keep && count < STORE_UNREAD_CAP; k++) {
            uint64_t hi = lowest[k];
            uint32_t got = rows[k];
            while (got == STORE_UNREAD_CAP && count < STORE_UNREAD_CAP) {
                v = vals(c);
                cql_values_add_bigint(v, (int64_t)r->channel_id);
                cql_values_add_int(v, list[k]);
                cql_values_add_bigint(v, (int64_t)res->last_read_id);
                cql_values_add_bigint(v, (int64_t)hi);
                cql_values_add_int(v, STORE_UNREAD_CAP);
                if (sc_run(c, op, SC_UNREAD_SCAN, "counting unread messages", &q))
                    return op->status;
                got = 0;
                while (cql_result_next_row(q) == 0) {
                    got++;
                    uint64_t id = (uint64_t)col_i64(q, 1);
                    if (id < hi)
                        hi = id;
                    if (!col_bool(q, 2) && count < STORE_UNREAD_CAP)
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

static int load_channel(sc_conn *c, store_op *op, uint64_t ch)
{
    cql_values *v = vals(c);
    cql_values_add_bigint(v, (int64_t)ch);
    cql_result *q = NULL;
    if (sc_run(c, op, SC_META_GET, "reading the channel", &q))
        return op->status;
    if (cql_result_next_row(q) != 0) {
        cql_result_destroy(q);
        return store__op_fail(op, MS_ERR_NOT_FOUND, "channel %" PRIu64 " is unknown", ch);
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
    m->name = col_text(q, 1, &res->hdr, NULL, false, &oom);
    m->type = col_text(q, 2, &res->hdr, NULL, false, &oom);
    m->created_at_ms = (uint64_t)col_i64(q, 3);
    m->last_message_id = (uint64_t)col_i64(q, 4);
    m->updated_at_ms = (uint64_t)col_i64(q, 5);
    cql_result_destroy(q);
    if (!m->name && !oom)
        m->name = store__res_strndup(&res->hdr, "", 0);
    if (!m->type && !oom)
        m->type = store__res_strndup(&res->hdr, "channel", 7);
    if (oom || !m->name || !m->type)
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    v = vals(c);
    cql_values_add_bigint(v, (int64_t)ch);
    if (sc_run(c, op, SC_COUNTER_GET, "reading the message count", &q))
        return op->status;
    if (cql_result_next_row(q) == 0)
        m->message_count = (uint64_t)col_i64(q, 0);
    cql_result_destroy(q);
    return 0;
}

static int op_channel_upsert(sc_conn *c, store_op *op)
{
    const store_channel_upsert_req *r = &op->req.upsert;
    cql_values *v = vals(c);
    cql_values_add_bigint(v, (int64_t)r->channel_id);
    cql_result *q = NULL;
    if (sc_run(c, op, SC_META_GET, "reading the channel", &q))
        return op->status;
    bool exists = cql_result_next_row(q) == 0;
    bool has_created = exists && !cql_row_is_null(q, 3);
    bool has_name = exists && !cql_row_is_null(q, 1);
    bool has_type = exists && !cql_row_is_null(q, 2);
    cql_result_destroy(q);
    v = vals(c);
    if (r->name)
        cql_values_add_text(v, r->name, strlen(r->name));
    else if (!has_name)
        cql_values_add_text(v, "", 0);
    else
        cql_values_add_unset(v);
    if (r->type)
        cql_values_add_text(v, r->type, strlen(r->type));
    else if (!has_type)
        cql_values_add_text(v, "channel", 7);
    else
        cql_values_add_unset(v);
    if (r->created_at_ms)
        cql_values_add_bigint(v, (int64_t)r->created_at_ms);
    else if (!has_created)
        cql_values_add_bigint(v, (int64_t)op->now_ms);
    else
        cql_values_add_unset(v);
    cql_values_add_bigint(v, (int64_t)op->now_ms);
    cql_values_add_bigint(v, (int64_t)r->channel_id);
    if (sc_run(c, op, SC_META_SET, "writing the channel", NULL))
        return op->status;
    known_add(c->b, r->channel_id);
    return load_channel(c, op, r->channel_id);
}

static int load_sync(sc_conn *c, store_op *op, uint64_t ch, bool *found)
{
    cql_values *v = vals(c);
    cql_values_add_bigint(v, (int64_t)ch);
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
        s->telegram_chat_id = col_i64(q, 1);
        s->last_synced_message_id = col_i64(q, 2);
        s->direction = (store_sync_direction)col_tiny(q, 3);
        s->last_sync_at_ms = (uint64_t)col_i64(q, 4);
        s->created_at_ms = (uint64_t)col_i64(q, 5);
    }
    cql_result_destroy(q);
    return 0;
}

static int op_sync_get(sc_conn *c, store_op *op)
{
    bool found = false;
    if (load_sync(c, op, op->req.channel.channel_id, &found))
        return op->status;
    if (!found)
        return store__op_fail(op, MS_ERR_NOT_FOUND,
                              "channel %" PRIu64 " has no Telegram sync state",
                              op->req.channel.channel_id);
    return 0;
}

static int op_sync_update(sc_conn *c, store_op *op)
{
    const store_sync_update_req *r = &op->req.sync;
    bool found = false;
    if (load_sync(c, op, r->channel_id, &found))
        return op->status;
    if (op->res) {
        store_free(op->res);
        op->res = NULL;
    }
    cql_values *v = vals(c);
    cql_values_add_bigint(v, r->telegram_chat_id);
    cql_values_add_tinyint(v, (int8_t)r->direction);
    cql_values_add_bigint(v, (int64_t)op->now_ms);
    if (found)
        cql_values_add_unset(v);
    else
        cql_values_add_bigint(v, (int64_t)op->now_ms);
    cql_values_add_bigint(v, (int64_t)r->channel_id);
    if (sc_run(c, op, SC_SYNC_SET, "writing the sync state", NULL))
        return op->status;
    /* Forward only, without a read: the value is its own write timestamp. */
    v = vals(c);
    cql_values_add_bigint(v, r->last_synced_message_id);
    cql_values_add_bigint(v, r->last_synced_message_id);
    cql_values_add_bigint(v, (int64_t)r->channel_id);
    if (sc_run(c, op, SC_SYNC_LAST, "writing the sync state", NULL))
        return op->status;
    if (load_sync(c, op, r->channel_id, &found))
        return op->status;
    if (!found)
        return store__op_fail(op, MS_ERR_INTERNAL, "the sync state was not stored");
    return 0;
}

static int op_ping(sc_conn *c, store_op *op)
{
    uint64_t t0 = uv_hrtime();
    vals(c);
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

static void sc_run_op(sc_conn *c, store_op *op)
{
    switch (op->kind) {
    case STORE_OP_INSERT:
        (void)op_insert(c, op);
        break;
    case STORE_OP_GET:
        (void)load_message(c, op, op->req.get.channel_id, op->req.get.message_id, false);
        break;
    case STORE_OP_GET_TELEGRAM:
        (void)op_get_telegram(c, op);
        break;
    case STORE_OP_PAGE:
        (void)op_page(c, op);
        break;
    case STORE_OP_EDIT:
        (void)op_edit(c, op);
        break;
    case STORE_OP_DELETE:
        (void)op_delete(c, op);
        break;
    case STORE_OP_HISTORY:
        (void)op_history(c, op);
        break;
    case STORE_OP_REACTION_ADD:
        (void)op_reaction(c, op, true);
        break;
    case STORE_OP_REACTION_REMOVE:
        (void)op_reaction(c, op, false);
        break;
    case STORE_OP_REACTIONS_GET:
        (void)op_reactions_get(c, op);
        break;
    case STORE_OP_REACTION_USERS:
        (void)op_reaction_users(c, op);
        break;
    case STORE_OP_PIN:
        (void)op_pin(c, op);
        break;
    case STORE_OP_UNPIN:
        (void)op_unpin(c, op);
        break;
    case STORE_OP_PINS_LIST:
        (void)op_pins_list(c, op);
        break;
    case STORE_OP_READ_SET:
        (void)op_read_set(c, op);
        break;
    case STORE_OP_READ_GET:
        (void)op_read_get(c, op);
        break;
    case STORE_OP_CHANNEL_UPSERT:
        (void)op_channel_upsert(c, op);
        break;
    case STORE_OP_CHANNEL_GET:
        (void)load_channel(c, op, op->req.channel.channel_id);
        break;
    case STORE_OP_SYNC_UPDATE:
        (void)op_sync_update(c, op);
        break;
    case STORE_OP_SYNC_GET:
        (void)op_sync_get(c, op);
        break;
    case STORE_OP_PING:
        (void)op_ping(c, op);
        break;
    case STORE_OP_HEALTH:
        store__scylla_health(c->db, op, &c->queries);
        break;
    case STORE_OP_SEARCH: /* answered by a search provider (src/search/) when one is attached */
        store__op_fail(op, MS_ERR_UNPROCESSABLE,
                       "search needs a search index: this ScyllaDB store has none attached");
        break;
    }
}

/* ------------------------------------------------------------------ exact counts: repair */

/*
 * A count is corrected by the difference between its rows and its counter,
 * read when both stayed still for settle_ms (docs/data-model.md, "Exact
 * counts", has the reasoning):
 *   1. a count is due when its newest recorded failure is settle_ms old: by
 *      then any update it left in flight has been applied or dropped;
 *   2. take the count's lease (one repairer across instances);
 *   3. snapshot A: a serial read of the rows' partition (completes a
 *      transaction left in progress), the counter (and `changes`), the rows;
 *   4. wait settle_ms; snapshot B: rows, then counter;
 *   5. if counter, `changes` and rows are the same in A and B, no update was
 *      applied in between and every update in flight before A has landed:
 *      add rows - counter to the counter, delete the failure rows seen (newer
 *      ones stay for the next pass), drop the lease. Otherwise try again later.
 * Counter and row reads are at ALL, so an update applied by one replica only
 * is seen.
 */

#define RP_SCAN_ROWS    5000 /* failure rows read per pass */
#define RP_KEYS_MAX     64   /* counts repaired per pass */
#define RP_FAILS_MAX    64   /* failure rows deleted per count per pass */

typedef struct rp_key {
    rp_note n; /* failure_id: the newest failure's */
    int64_t fails[RP_FAILS_MAX];
    size_t nfails;
    uint64_t owner;   /* lease owner; 0: none */
    uint64_t t_lease; /* ns */
    bool snapped;
    int64_t count, changes, rows; /* snapshot A */
} rp_key;

static int cmp_note(const rp_note *a, const rp_note *b)
{
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if (a->ch != b->ch)
        return a->ch < b->ch ? -1 : 1;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return strcmp(a->emoji, b->emoji);
}

static int cmp_note_q(const void *a, const void *b)
{
    return cmp_note(a, b);
}

static void rp_bind_key(cql_values *v, const rp_note *n, bool emoji)
{
    cql_values_add_bigint(v, (int64_t)n->ch);
    if (n->kind == RP_REACTION)
        cql_values_add_bigint(v, n->id);
    else
        cql_values_add_int(v, (int32_t)n->id);
    if (emoji && n->kind == RP_REACTION)
        cql_values_add_text(v, n->emoji, strlen(n->emoji));
}

static void rp_bind_lease(cql_values *v, const rp_note *n)
{
    cql_values_add_tinyint(v, n->kind);
    cql_values_add_bigint(v, (int64_t)n->ch);
    cql_values_add_bigint(v, n->id);
    cql_values_add_text(v, n->emoji, strlen(n->emoji));
}

/* Runs a one-value read (COUNT, a counter); *out = 0 for no row or null. */
static int rp_read(sc_conn *c, store_op *op, sc_stmt_id id, const rp_note *n, bool emoji,
                   int64_t *a, int64_t *b)
{
    cql_values *v = vals(c);
    rp_bind_key(v, n, emoji);
    cql_result *q = NULL;
    if (sc_run(c, op, id, "recounting", &q))
        return op->status;
    *a = 0;
    if (b)
        *b = 0;
    if (cql_result_next_row(q) == 0) {
        *a = col_i64(q, 0);
        if (b)
            *b = col_i64(q, 1);
    }
    cql_result_destroy(q);
    return 0;
}

/* Snapshot of a count: counter (and changes) and rows, in the order asked. */
static int rp_snapshot(sc_conn *c, store_op *op, const rp_note *n, bool counter_first,
                       int64_t *count, int64_t *changes, int64_t *rows)
{
    bool rx = n->kind == RP_REACTION;
    int64_t ignore;
    if (rp_read(c, op, rx ? SC_RP_RX_TOUCH : SC_RP_MC_TOUCH, n, false, &ignore, NULL))
        return op->status;
    sc_stmt_id cs = rx ? SC_RP_RX_COUNTER : SC_RP_MC_COUNTER;
    sc_stmt_id rs = rx ? SC_RP_RX_ROWS : SC_RP_MC_ROWS;
    *changes = 0;
    if (counter_first && rp_read(c, op, cs, n, true, count, rx ? changes : NULL))
        return op->status;
    if (rp_read(c, op, rs, n, true, rows, NULL))
        return op->status;
    if (!counter_first && rp_read(c, op, cs, n, true, count, rx ? changes : NULL))
        return op->status;
    return 0;
}

static void rp_unlease(sc_conn *c, store_op *op, rp_key *k)
{
    if (!k->owner)
        return;
    cql_values *v = vals(c);
    rp_bind_lease(v, &k->n);
    cql_values_add_bigint(v, (int64_t)k->owner);
    if (sc_run(c, op, SC_RP_UNLEASE, "dropping a repair lease", NULL)) /* it expires anyway */
        MS_WARN("store", "scylla: %s", op->detail);
    op->status = 0;
    k->owner = 0;
}

/* Sleeps ms unless the backend closes; false when it does. */
static bool rp_sleep(sc_backend *b, int64_t ms)
{
    uint64_t until = uv_hrtime() + (uint64_t)ms * 1000000ULL;
    pthread_mutex_lock(&b->nmu);
    while (!b->rstop) {
        uint64_t now = uv_hrtime();
        if (now >= until)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t left = until - now;
        ts.tv_sec += (time_t)(left / 1000000000ULL);
        ts.tv_nsec += (long)(left % 1000000000ULL);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&b->ncv, &b->nmu, &ts);
    }
    bool ok = !b->rstop;
    pthread_mutex_unlock(&b->nmu);
    return ok;
}

/* Records the failures kept in memory; those that still cannot be written stay. */
static void rp_flush_notes(sc_backend *b, sc_conn *c, store_op *op)
{
    pthread_mutex_lock(&b->nmu);
    rp_note *notes = b->notes;
    size_t n = b->nnotes;
    b->notes = NULL;
    b->nnotes = b->capnotes = 0;
    pthread_mutex_unlock(&b->nmu);
    for (size_t i = 0; i < n; i++) {
        if (rp_record(c, op, &notes[i]) != 0) {
            op->status = 0;
            rp_keep(b, &notes[i]);
        }
    }
    free(notes);
}

/* Reads the recorded failures, grouped by count, into *keys (malloc'd). */
static int rp_scan(sc_conn *c, store_op *op, rp_key **keys, size_t *nkeys)
{
    *keys = NULL;
    *nkeys = 0;
    cql_values *v = vals(c);
    cql_values_begin_list(v);
    for (int i = 0; i < RP_SHARDS; i++)
        cql_values_add_int(v, i);
    cql_values_end(v);
    cql_values_add_int(v, RP_SCAN_ROWS);
    cql_result *q = NULL;
    if (sc_run(c, op, SC_RP_SCAN, "reading the counts to repair", &q))
        return op->status;
    size_t cap = q->row_count > 0 ? (size_t)q->row_count : 1, n = 0;
    rp_note *rows = calloc(cap, sizeof *rows);
    if (!rows) {
        cql_result_destroy(q);
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    }
    while (n < cap && cql_result_next_row(q) == 0) {
        rp_note *r = &rows[n++];
        int8_t kind = 0;
        cql_row_get_tinyint(q, 0, &kind);
        r->kind = kind;
        r->ch = (uint64_t)col_i64(q, 1);
        r->id = col_i64(q, 2);
        cql_str e = {0};
        if (cql_row_get_text(q, 3, &e) == 0 && e.len < sizeof r->emoji) {
            memcpy(r->emoji, e.ptr ? e.ptr : "", e.len);
            r->emoji[e.len] = '\0';
        }
        r->failure_id = (uint64_t)col_i64(q, 4);
    }
    cql_result_destroy(q);
    qsort(rows, n, sizeof *rows, cmp_note_q);
    rp_key *k = calloc(n ? n : 1, sizeof *k);
    if (!k) {
        free(rows);
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    }
    size_t nk = 0;
    for (size_t i = 0; i < n; i++) {
        if (nk == 0 || cmp_note(&k[nk - 1].n, &rows[i]) != 0)
            k[nk++].n = rows[i];
        rp_key *cur = &k[nk - 1];
        if (rows[i].failure_id > cur->n.failure_id)
            cur->n.failure_id = rows[i].failure_id;
        if (cur->nfails < RP_FAILS_MAX)
            cur->fails[cur->nfails++] = (int64_t)rows[i].failure_id;
    }
    free(rows);
    *keys = k;
    *nkeys = nk;
    return 0;
}

/* Snapshot B of a leased count and its correction. 1 done, 0 pending, or a code. */
static int rp_finish(sc_backend *b, sc_conn *c, store_op *op, rp_key *k, bool *fixed)
{
    int64_t count, changes, rows;
    *fixed = false;
    if (rp_snapshot(c, op, &k->n, false, &count, &changes, &rows))
        return op->status;
    if (count != k->count || changes != k->changes || rows != k->rows)
        return 0; /* moving: an update was applied meanwhile, or is still in flight */
    /* a lease outlived by this pass could be someone else's now: do nothing */
    if ((uv_hrtime() - k->t_lease) / 1000000ULL > (uint64_t)b->lease_ttl_s * 500)
        return 0;
    int64_t delta = rows - count;
    if (delta != 0) {
        cql_values *v = vals(c);
        cql_values_add_bigint(v, delta);
        rp_bind_key(v, &k->n, true);
        /* never retried; if this times out the next pass sees whether it landed */
        if (sc_run(c, op, k->n.kind == RP_REACTION ? SC_RP_RX_FIX : SC_RP_MC_FIX,
                   "correcting a count", NULL))
            return op->status;
        MS_INFO("store",
                "scylla: %s count of channel %" PRIu64 " %s %" PRId64 " corrected by %+" PRId64
                " to %" PRId64,
                k->n.kind == RP_REACTION ? "a reaction" : "the message", k->n.ch,
                k->n.kind == RP_REACTION ? "message" : "bucket", k->n.id, delta, rows);
        *fixed = true;
    }
    cql_values *v = vals(c);
    cql_values_add_int(v, rp_shard(k->n.ch));
    cql_values_add_tinyint(v, k->n.kind);
    cql_values_add_bigint(v, (int64_t)k->n.ch);
    cql_values_add_bigint(v, k->n.id);
    cql_values_add_text(v, k->n.emoji, strlen(k->n.emoji));
    cql_values_begin_list(v);
    for (size_t i = 0; i < k->nfails; i++)
        cql_values_add_bigint(v, k->fails[i]);
    cql_values_end(v);
    if (sc_run(c, op, SC_RP_DONE, "dropping repaired counts", NULL))
        return op->status; /* done, but seen again: the next pass finds it exact */
    return 1;
}

/* One repair pass on the repair session (b->rmu held). */
static int rp_pass(sc_backend *b, store_repair_report *rep, char *detail, size_t dlen)
{
    sc_conn *c = &b->rconn;
    store_op op = {.kind = STORE_OP_PING, .s = b->base.s};
    rp_key *keys = NULL;
    size_t nkeys = 0, nleased = 0;
    int rc = 0;
    rp_flush_notes(b, c, &op);
    if (rp_scan(c, &op, &keys, &nkeys)) {
        rc = op.status;
        snprintf(detail, dlen, "%s", op.detail);
        goto out;
    }
    uint64_t now = ms_clock_realtime_ms(NULL);
    for (size_t i = 0; i < nkeys; i++) {
        rp_key *k = &keys[i];
        uint64_t newest = ms_snowflake_unix_ms(k->n.failure_id, b->cfg->epoch_ms);
        if (newest + (uint64_t)b->settle_ms > now || nleased >= RP_KEYS_MAX) {
            rep->pending++;
            continue;
        }
        rep->checked++;
        uint64_t owner = store__next_id(b->base.s);
        cql_values *v = vals(c);
        rp_bind_lease(v, &k->n);
        cql_values_add_bigint(v, (int64_t)owner);
        cql_values_add_int(v, b->lease_ttl_s);
        cql_result *q = NULL;
        k->t_lease = uv_hrtime();
        if (!owner || sc_run(c, &op, SC_RP_LEASE, "taking a repair lease", &q)) {
            op.status = 0;
            rep->pending++;
            continue;
        }
        bool got = lwt_applied(q);
        cql_result_destroy(q);
        if (!got) { /* another instance is on it */
            rep->pending++;
            continue;
        }
        k->owner = owner;
        nleased++;
        if (rp_snapshot(c, &op, &k->n, true, &k->count, &k->changes, &k->rows)) {
            MS_WARN("store", "scylla: %s", op.detail);
            op.status = 0;
            rp_unlease(c, &op, k);
            rep->pending++;
            continue;
        }
        k->snapped = true;
    }
    if (nleased && !rp_sleep(b, b->settle_ms)) {
        rc = MS_ERR_SHUTDOWN;
        snprintf(detail, dlen, "the store is closing");
    }
    for (size_t i = 0; i < nkeys; i++) {
        rp_key *k = &keys[i];
        if (!k->snapped) {
            continue;
        }
        bool fixed = false;
        int done = rc ? 0 : rp_finish(b, c, &op, k, &fixed);
        if (done < 0) {
            MS_WARN("store", "scylla: %s", op.detail);
            op.status = 0;
        }
        if (done == 1) {
            (*(fixed ? &rep->fixed : &rep->clean))++;
            ms_counter_add(fixed ? b->m_fixed : b->m_clean, 1);
        } else
            rep->pending++;
        rp_unlease(c, &op, k);
    }
out:
    free(keys);
    pthread_mutex_lock(&b->nmu);
    rep->pending += (uint32_t)b->nnotes;
    pthread_mutex_unlock(&b->nmu);
    return rc;
}

static int sc_repair(store_backend *base, store_repair_report *rep, char *detail, size_t dlen)
{
    sc_backend *b = (sc_backend *)base;
    pthread_mutex_lock(&b->rmu);
    int rc = rp_pass(b, rep, detail, dlen);
    pthread_mutex_unlock(&b->rmu);
    return rc;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A session's private loop runs only inside cql_sync calls: a thread that
 * owns one and has nothing to do must let it run now and then, or the session
 * stalls (no reconnection after an outage, no heartbeats, server events
 * unread). Idle threads wait at most this long between two turns.
 */
#define SC_IDLE_TICK_MS 50

/* On a session's loop (its thread): tells the other sessions that a host is back. */
static void sc_host_event(cql_session *s, cql_host_event ev, const cql_host_info *h, void *ud)
{
    (void)s;
    (void)h;
    sc_backend *b = ud;
    if (ev == CQL_HOST_UP)
        atomic_fetch_add(&b->hosts_up, 1);
}

/*
 * When another session saw a host come back, this one reconnects to its down
 * hosts now instead of waiting out its own backoff: after an outage every
 * worker serves again within a handshake of the first one, not up to the
 * backoff cap (30 s) later while the service already reports itself ready.
 */
static void sc_catch_up(sc_conn *c)
{
    unsigned up = atomic_load(&c->b->hosts_up);
    if (up == c->up_seen)
        return;
    c->up_seen = up;
    cql_session_reconnect_now(cql_sync_session(c->db));
}

/* The background repair: a pass every interval, every settle time while counts are pending. */
static void *repair_main(void *arg)
{
    sc_backend *b = arg;
    int64_t due = mono_ms() + b->interval_ms;
    for (;;) {
        pthread_mutex_lock(&b->nmu);
        if (!b->rwake && !b->rstop) {
            int64_t wait_ms = due - mono_ms();
            if (wait_ms > SC_IDLE_TICK_MS)
                wait_ms = SC_IDLE_TICK_MS;
            if (wait_ms < 0)
                wait_ms = 0;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += (long)wait_ms * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&b->ncv, &b->nmu, &ts);
        }
        bool stop = b->rstop, woken = b->rwake;
        b->rwake = false;
        pthread_mutex_unlock(&b->nmu);
        if (stop)
            break;
        if (woken) { /* a failure just noted is due in settle_ms */
            due = mono_ms() + b->settle_ms;
            continue;
        }
        if (mono_ms() < due) {
            /* a pass run by someone else (sc_repair) runs the session meanwhile */
            if (pthread_mutex_trylock(&b->rmu) == 0) {
                sc_catch_up(&b->rconn);
                cql_sync_run_for(b->rconn.db, 0);
                pthread_mutex_unlock(&b->rmu);
            }
            continue;
        }
        store_repair_report rep = {0};
        char detail[STORE_DETAIL_LEN];
        if (sc_repair(&b->base, &rep, detail, sizeof detail) != 0 && !b->rstop)
            MS_WARN("store", "scylla: counter repair: %s", detail);
        due = mono_ms() + (rep.pending ? b->settle_ms : b->interval_ms);
    }
    return NULL;
}

/* ------------------------------------------------------------------ threads, vtable */

static void *worker_main(void *arg)
{
    sc_conn *c = arg;
    sc_backend *b = c->b;
    for (;;) {
        bool closed = false;
        store_op *op = store__queue_take_for(&b->q, 1, NULL, SC_IDLE_TICK_MS, &closed);
        sc_catch_up(c);
        if (!op) {
            if (closed)
                break;
            cql_sync_run_for(c->db, 0); /* what is ready now: no wait */
            continue;
        }
        c->queries = 0;
        sc_run_op(c, op);
        op->queries = c->queries;
        store__op_done(op);
    }
    return NULL;
}

static int sc_submit(store_backend *base, store_op *op)
{
    sc_backend *b = (sc_backend *)base;
    store__queue_push(&b->q, op);
    return 0;
}

static void conn_close(sc_conn *c)
{
    for (int k = 0; k < SC_NSTMT; k++)
        cql_prepared_release(c->ps[k]);
    cql_values_free(&c->v);
    for (int k = 0; k < 3; k++)
        cql_values_free(&c->bv[k]);
    cql_sync_close(c->db);
}

static void sc_close(store_backend *base)
{
    sc_backend *b = (sc_backend *)base;
    pthread_mutex_lock(&b->nmu);
    b->rstop = true;
    pthread_cond_broadcast(&b->ncv);
    pthread_mutex_unlock(&b->nmu);
    store__queue_close(&b->q);
    for (int i = 0; i < b->started; i++)
        pthread_join(b->threads[i], NULL);
    if (b->rthread_started)
        pthread_join(b->rthread, NULL);
    for (int i = 0; i < b->nthreads; i++)
        conn_close(&b->conns[i]);
    conn_close(&b->rconn);
    if (b->nnotes)
        MS_WARN("store",
                "scylla: %zu counts to repair could not be recorded; they stay as they are",
                b->nnotes);
    free(b->notes);
    store__queue_destroy(&b->q);
    pthread_mutex_destroy(&b->rmu);
    pthread_mutex_destroy(&b->nmu);
    pthread_cond_destroy(&b->ncv);
    pthread_mutex_destroy(&b->known_mu);
    for (int k = 0; k < SC_NSTMT; k++)
        free(b->sql[k]);
    free(b->known);
    free(b->threads);
    free(b->conns);
    free(b);
}

static int sc_inject(store_backend *base, store_fault fault, int times)
{
    sc_backend *b = (sc_backend *)base;
    atomic_store(&b->faults[fault], times);
    return 0;
}

static const store_backend_vtbl sc_vtbl = {
    .name = "scylla",
    .submit = sc_submit,
    .close = sc_close,
    .stats = NULL,
    .repair = sc_repair,
    .inject = sc_inject,
};

int store__scylla_open(store *s, const ms_config *cfg, const store_options *opt,
                       store_backend **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!valid_name(cfg->scylla_keyspace, 48)) {
        snprintf(err, errlen, "SCYLLA_KEYSPACE=\"%s\": expected 1 to 48 letters, digits or '_'",
                 cfg->scylla_keyspace);
        return MS_ERR_INVALID;
    }
    if (!opt->no_migrate) {
        int rc = store__scylla_migrate(cfg, NULL, NULL, NULL, err, errlen);
        if (rc)
            return rc;
    }
    sc_backend *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return MS_ERR_NOMEM;
    }
    b->base.vt = &sc_vtbl;
    b->base.s = s;
    b->cfg = cfg;
    b->nthreads = opt->scylla_threads;
    store__queue_init(&b->q);
    pthread_mutex_init(&b->known_mu, NULL);
    pthread_mutex_init(&b->rmu, NULL);
    pthread_mutex_init(&b->nmu, NULL);
    pthread_cond_init(&b->ncv, NULL);
    b->settle_ms = opt->scylla_repair_settle_ms > 0 ? opt->scylla_repair_settle_ms
                                                    : 2 * cfg->scylla_request_timeout_ms;
    b->interval_ms = opt->scylla_repair_interval_ms ? opt->scylla_repair_interval_ms : 60000;
    /* a pass: two snapshots settle_ms apart, each a few requests, plus the correction */
    b->lease_ttl_s = (int)((2 * b->settle_ms + 12 * cfg->scylla_request_timeout_ms) / 1000) + 1;
    b->m_noted = ms_counter_get("msgstore_store_count_repairs_total", "result=\"recorded\"",
                                "ScyllaDB counts recorded for recounting (a counter update "
                                "failed or timed out), and what the repair found");
    b->m_fixed = ms_counter_get("msgstore_store_count_repairs_total", "result=\"corrected\"", NULL);
    b->m_clean = ms_counter_get("msgstore_store_count_repairs_total", "result=\"exact\"", NULL);
    b->m_dropped = ms_counter_get("msgstore_store_count_repairs_total", "result=\"dropped\"", NULL);
    b->known = calloc(KNOWN_SLOTS, sizeof *b->known);
    b->threads = calloc((size_t)b->nthreads, sizeof *b->threads);
    b->conns = calloc((size_t)b->nthreads, sizeof *b->conns);
    int rc = 0;
    if (!b->known || !b->threads || !b->conns) {
        snprintf(err, errlen, "out of memory");
        rc = MS_ERR_NOMEM;
        goto fail;
    }
    for (int k = 0; k < SC_NSTMT; k++) {
        b->sql[k] = qualify(sc_stmt[k].cql, cfg->scylla_keyspace);
        if (!b->sql[k]) {
            snprintf(err, errlen, "out of memory");
            rc = MS_ERR_NOMEM;
            goto fail;
        }
    }
    /* Statements name their keyspace (no USE: prepared statements stay unambiguous). */
    cql_options o;
    sc_options(&o, cfg, false);
    o.on_host_event = sc_host_event;
    o.on_host_event_ud = b;
    for (int i = 0; i <= b->nthreads; i++) {
        sc_conn *c = i < b->nthreads ? &b->conns[i] : &b->rconn;
        c->b = b;
        c->repair = c == &b->rconn;
        cql_values_init(&c->v);
        for (int k = 0; k < 3; k++)
            cql_values_init(&c->bv[k]);
        cql_status st;
        if (cql_sync_connect(&o, &c->db, &st) != 0 || !c->db) {
            snprintf(err, errlen, "cannot connect to %s (keyspace %s): %s",
                     cfg->scylla_contact_points, cfg->scylla_keyspace, st.message);
            rc = st.code ? st.code : MS_ERR_UNAVAILABLE;
            goto fail;
        }
    }
    /* the schema must be there */
    {
        sc_conn *c = &b->conns[0];
        store_op probe = {.kind = STORE_OP_PING, .s = s};
        op_ping(c, &probe);
        int version = probe.res ? ((store_ping_result *)probe.res)->schema_version : 0;
        if (probe.res)
            store_free(probe.res);
        size_t n = 0;
        const store_migration *m = store_migrations(MS_BACKEND_SCYLLA, &n);
        int want = n ? m[n - 1].version : 0;
        if (probe.status || version != want) {
            snprintf(err, errlen,
                     "keyspace %s has schema version %d, this binary needs %d%s%s: run `msgstore "
                     "migrate`",
                     cfg->scylla_keyspace, version, want, probe.status ? ": " : "",
                     probe.status ? probe.detail : "");
            rc = MS_ERR_UNAVAILABLE;
            goto fail;
        }
    }
    for (int i = 0; i < b->nthreads; i++) {
        if (pthread_create(&b->threads[i], NULL, worker_main, &b->conns[i]) != 0) {
            snprintf(err, errlen, "cannot start the ScyllaDB worker threads");
            rc = MS_ERR_INTERNAL;
            goto fail;
        }
        b->started++;
    }
    if (b->interval_ms > 0) {
        if (pthread_create(&b->rthread, NULL, repair_main, b) != 0) {
            snprintf(err, errlen, "cannot start the ScyllaDB counter repair thread");
            rc = MS_ERR_INTERNAL;
            goto fail;
        }
        b->rthread_started = true;
    }
    *out = &b->base;
    return 0;
fail:
    sc_close(&b->base);
    return rc;
}

/* ------------------------------------------------------------------ migrations */

/* "SimpleStrategy:3" or "dc1:3,dc2:3" as a CQL replication map. */
static int replication_map(const char *spec, char *out, size_t cap, char *err, size_t errlen)
{
    char buf[MS_CONFIG_STR];
    snprintf(buf, sizeof buf, "%s", spec);
    const char *simple = "SimpleStrategy:";
    if (strncmp(buf, simple, strlen(simple)) == 0) {
        char *end = NULL;
        long rf = strtol(buf + strlen(simple), &end, 10);
        if (!end || *end || rf < 1 || rf > 100)
            goto bad;
        snprintf(out, cap, "{'class': 'SimpleStrategy', 'replication_factor': %ld}", rf);
        return 0;
    }
    size_t len = (size_t)snprintf(out, cap, "{'class': 'NetworkTopologyStrategy'");
    char *save = NULL;
    int ndc = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(tok, ':');
        if (!colon)
            goto bad;
        *colon = '\0';
        char *end = NULL;
        long rf = strtol(colon + 1, &end, 10);
        if (!valid_name(tok, 64) || !end || *end || rf < 0 || rf > 100)
            goto bad;
        len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, ", '%s': %ld", tok, rf);
        ndc++;
    }
    if (ndc == 0 || len + 2 > cap)
        goto bad;
    snprintf(out + len, cap - len, "}");
    return 0;
bad:
    snprintf(err, errlen,
             "SCYLLA_REPLICATION=\"%s\": expected SimpleStrategy:RF or DC:RF[,DC:RF...]", spec);
    return MS_ERR_INVALID;
}

/*
 * True when stmt is an ALTER TABLE ... ADD whose column is already there: a
 * migration interrupted after it ran is run again (CREATE ... IF NOT EXISTS
 * covers the other statements; ADD IF NOT EXISTS is not understood everywhere).
 */
static bool column_exists(const char *stmt, const cql_status *st)
{
    while (*stmt == ' ' || *stmt == '\n' || *stmt == '\t')
        stmt++;
    return strncmp(stmt, "ALTER TABLE ", 12) == 0 && strstr(stmt, " ADD ") &&
           (strstr(st->message, "already exists") ||
            strstr(st->message, "conflicts with an existing column"));
}

/* Runs one CQL text (statements ending with ';' at a line end, "--" comment lines). */
static int run_script(cql_sync *db, const char *name, const char *text, char *err, size_t errlen)
{
    size_t cap = strlen(text) + 1;
    char *stmt = malloc(cap);
    if (!stmt) {
        snprintf(err, errlen, "out of memory");
        return MS_ERR_NOMEM;
    }
    size_t len = 0;
    int rc = 0;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        const char *q = p;
        while (q < p + n && (*q == ' ' || *q == '\t'))
            q++;
        bool comment = (size_t)(p + n - q) >= 2 && q[0] == '-' && q[1] == '-';
        if (!comment && q < p + n) {
            memcpy(stmt + len, p, n);
            len += n;
            stmt[len++] = '\n';
            size_t e = n;
            while (e > 0 && (p[e - 1] == ' ' || p[e - 1] == '\t' || p[e - 1] == '\r'))
                e--;
            if (e > 0 && p[e - 1] == ';') {
                stmt[len] = '\0';
                cql_status st;
                if ((cql_sync_query(db, stmt, NULL, &st) != 0 || st.code) &&
                    !column_exists(stmt, &st)) {
                    snprintf(err, errlen, "migration %s failed: %s", name, st.message);
                    rc = st.code ? st.code : MS_ERR_IO;
                    break;
                }
                len = 0;
            }
        }
        p += n + (eol ? 1 : 0);
    }
    free(stmt);
    return rc;
}

int store__scylla_migrate(const ms_config *cfg, store_migrate_progress_fn progress, void *ctx,
                          int *applied, char *err, size_t errlen)
{
    if (applied)
        *applied = 0;
    if (!valid_name(cfg->scylla_keyspace, 48)) {
        snprintf(err, errlen, "SCYLLA_KEYSPACE=\"%s\": expected 1 to 48 letters, digits or '_'",
                 cfg->scylla_keyspace);
        return MS_ERR_INVALID;
    }
    char repl[512];
    int rc = replication_map(cfg->scylla_replication, repl, sizeof repl, err, errlen);
    if (rc)
        return rc;
    cql_options o;
    cql_status st;
    cql_sync *db = NULL;
    sc_options(&o, cfg, false);
    if (cql_sync_connect(&o, &db, &st) != 0 || !db) {
        snprintf(err, errlen, "cannot connect to %s: %s", cfg->scylla_contact_points, st.message);
        return st.code ? st.code : MS_ERR_UNAVAILABLE;
    }
    /* ScyllaDB: counters and LWT need a keyspace without tablets. */
    cql_host_info hosts[1];
    bool scylla = cql_sync_hosts(db, hosts, 1) > 0 && hosts[0].nr_shards > 0;
    char q[1024];
    snprintf(q, sizeof q, "CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s%s",
             cfg->scylla_keyspace, repl, scylla ? " AND tablets = {'enabled': false}" : "");
    if (cql_sync_query(db, q, NULL, &st) != 0 || st.code) {
        snprintf(err, errlen, "cannot create keyspace %s: %s", cfg->scylla_keyspace, st.message);
        cql_sync_close(db);
        return st.code ? st.code : MS_ERR_IO;
    }
    cql_sync_close(db);
    sc_options(&o, cfg, true);
    if (cql_sync_connect(&o, &db, &st) != 0 || !db) {
        snprintf(err, errlen, "cannot connect to keyspace %s: %s", cfg->scylla_keyspace,
                 st.message);
        return st.code ? st.code : MS_ERR_UNAVAILABLE;
    }
    rc = run_script(db, "schema_version",
                    "CREATE TABLE IF NOT EXISTS schema_version (scope text, version int, name "
                    "text, checksum text, applied_at bigint, PRIMARY KEY (scope, version)) WITH "
                    "CLUSTERING ORDER BY (version DESC);\n",
                    err, errlen);
    size_t n = 0;
    const store_migration *m = store_migrations(MS_BACKEND_SCYLLA, &n);
    for (size_t i = 0; !rc && i < n; i++) {
        char sum[17];
        store__checksum(m[i].text, sum);
        cql_values v;
        cql_values_init(&v);
        cql_values_add_int(&v, m[i].version);
        cql_statement s;
        cql_statement_init(&s);
        s.query = "SELECT checksum FROM schema_version WHERE scope = 'msgstore' AND version = ?";
        s.values = &v;
        s.consistency = (int)cfg->scylla_read_consistency;
        cql_result *res = NULL;
        if (cql_sync_execute(db, &s, &res, &st) != 0 || st.code) {
            snprintf(err, errlen, "cannot read schema_version: %s", st.message);
            rc = st.code ? st.code : MS_ERR_IO;
            cql_values_free(&v);
            break;
        }
        bool found = cql_result_next_row(res) == 0;
        char have[17] = "";
        cql_str cs;
        if (found && cql_row_get_text(res, 0, &cs) == 0)
            snprintf(have, sizeof have, "%.*s", (int)cs.len, cs.ptr);
        cql_result_destroy(res);
        if (found) {
            cql_values_free(&v);
            if (strcmp(have, sum) != 0) {
                snprintf(err, errlen,
                         "migration %s was applied with checksum %s but the binary's copy has "
                         "%s: the file changed after it was applied",
                         m[i].name, have, sum);
                rc = MS_ERR_CONFLICT;
                break;
            }
            if (progress)
                progress(&m[i], false, 0, ctx);
            continue;
        }
        uint64_t t0 = ms_clock_realtime_ms(NULL);
        rc = run_script(db, m[i].name, m[i].text, err, errlen);
        if (rc) {
            cql_values_free(&v);
            break;
        }
        cql_values_reset(&v);
        cql_values_add_int(&v, m[i].version);
        cql_values_add_text(&v, m[i].name, strlen(m[i].name));
        cql_values_add_text(&v, sum, strlen(sum));
        cql_values_add_bigint(&v, (int64_t)ms_clock_realtime_ms(NULL));
        s.query = "INSERT INTO schema_version (scope, version, name, checksum, applied_at) "
                  "VALUES ('msgstore', ?, ?, ?, ?)";
        s.consistency = (int)cfg->scylla_write_consistency;
        s.idempotent = true;
        if (cql_sync_execute(db, &s, NULL, &st) != 0 || st.code) {
            snprintf(err, errlen, "cannot record migration %s: %s", m[i].name, st.message);
            rc = st.code ? st.code : MS_ERR_IO;
        }
        cql_values_free(&v);
        if (rc)
            break;
        if (applied)
            (*applied)++;
        if (progress)
            progress(&m[i], true, ms_clock_realtime_ms(NULL) - t0, ctx);
    }
    cql_sync_close(db);
    return rc;
}

#endif /* MSGSTORE_HAVE_CQL_SESSION */
