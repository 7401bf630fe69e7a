/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scylla_internal.h - what the ScyllaDB backend's files share: the statement
 * table, the backend and its sessions, and the helpers every operation uses.
 *
 *   scylla.c           dispatch: options, sessions, the operation array, open/close
 *   scylla_cql.c       statements: prepare, run, conditional batches, column readers
 *   scylla_messages.c  messages: insert, get, pages, edit, delete, history
 *   scylla_meta.c      reactions, pins, read positions, channels, sync state, ping
 *   scylla_repair.c    exact counts: recording failures, the repair pass
 *   scylla_migrate.c   the schema/cql migrations (through migrate.c)
 *   scylla_keyspace.c  the keyspace: vnodes or tablets per ScyllaDB release
 *   scylla_health.c    store_health
 *
 * Every statement is one entry of SC_STATEMENTS below: its name, kind, CQL
 * text and typed value list side by side. The list generates the statement's
 * binder, sc_bind_<NAME>(idf, v, ...), the only code that appends its values
 * (call sites pass request fields, nothing else; copy.c uses the same
 * binders). Adding a column is one edit in one place: the column and its ?
 * in the text, its (TYPE, name) in the list at the same position; the
 * compiler then names every caller that must pass the new value, and
 * test_scylla_statements fails while text and list disagree.
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
 *  - every channel or user id is bound with sc_bind_id_as (an ID value of a
 *    binder) and read with sc_col_id: the id's CQL type is decided there alone.
 */
#ifndef MS_SCYLLA_INTERNAL_H
#define MS_SCYLLA_INTERNAL_H

#include "store_internal.h"

#if defined(MSGSTORE_HAVE_CQL_SESSION)

#include <string.h>

#include "msgstore/cql.h"
#include "core/metrics.h"
#include "coro.h"

#define BUCKET_CHUNK 32 /* buckets read per bucket-list query and per IN query */

#define SC_MSG_COLS                                                                                \
    "channel_id, message_id, sender_id, type, source, content, reply_to, attachments, metadata, "  \
    "nonce, telegram_chat_id, telegram_message_id, created_at, is_edited, edited_at, is_deleted, " \
    "deleted_at"
#define SC_PIN_COLS "channel_id, message_id, pinned_by, pinned_at, content_preview, sender_id"

/*
 * The statements. Each entry of SC_STATEMENTS is
 *
 *   X(NAME, KIND, "CQL text with ? markers", (TYPE, name)(TYPE, name)...)
 *
 * KIND: R read; W idempotent write; L lightweight transaction; C counter
 * (never retried); S serial read (completes a transaction left in progress);
 * A read at ALL with a long timeout (the counter repair's recounts).
 *
 * The last argument lists the statement's bound values in the order of its
 * markers (empty: none). From it come the statement's marker count and
 * types, sc_stmt[SC_<NAME>].nparams and .types (tests/unit/
 * test_scylla_statements.c checks the count against the text; every prepare
 * checks the types against the server's bind metadata: sc_check_types) and
 * its binder
 *
 *   void sc_bind_<NAME>(ms_id_format idf, cql_values *v, <one C parameter per TYPE>)
 *
 * which appends exactly those values to v (idf: the store's id format, sc_idf(c);
 * copy.c passes its own). So adding a column to a statement is one edit here,
 * in its text and its list, and the compiler then names every caller that
 * must pass the new value. A new TYPE needs its SC_PARAM_, SC_APPEND_ and
 * SC_LETTER_ macros below and a case in sc_check_types. TYPEs and their C
 * parameters:
 *
 *   ID           ms_xid name                    a channel or user id (sc_bind_id_as)
 *   INT          int32_t name
 *   BIGINT       int64_t name                   also counter deltas, times, USING TIMESTAMP
 *   TINYINT      int8_t name
 *   TEXT         const char *name, size_t name_len
 *   TEXT_OPT     const char *name               NUL-terminated; NULL: unset (fix 3)
 *   BIGINT_OPT   const int64_t *name            NULL: unset (fix 3)
 *   INT_OR_NULL  const int32_t *name            NULL: null (an IF col = ? on an absent column)
 *   INT_LIST     const int32_t *name, size_t name_n    a list (IN ?)
 *   BIGINT_LIST  const int64_t *name, size_t name_n    a list (IN ?)
 */
enum { K_R, K_W, K_L, K_C, K_S, K_A };

/* A message row's columns as the inserts write them (MSG_INSERT, MSG_INSERT_NEW). */
#define SC_MSG_INSERT_CQL                                                                          \
    "INSERT INTO @.messages (channel_id, bucket, message_id, sender_id, type, source, content, "   \
    "reply_to, attachments, metadata, nonce, telegram_chat_id, telegram_message_id, "              \
    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
/* clang-format off */
#define SC_MSG_INSERT_PARAMS                                                                       \
    (ID, ch)(INT, bucket)(BIGINT, id)(ID, sender)(TINYINT, type)(TINYINT, source)(TEXT, content)   \
    (BIGINT_OPT, reply_to)(TEXT_OPT, attachments)(TEXT_OPT, metadata)(TEXT_OPT, nonce)            \
    (BIGINT_OPT, tg_chat)(BIGINT_OPT, tg_msg)(BIGINT, created_at)
/* clang-format on */

#define SC_STATEMENTS(X)                                                                           \
    X(MSG_INSERT, K_W, SC_MSG_INSERT_CQL, SC_MSG_INSERT_PARAMS)                                    \
    X(MSG_INSERT_NEW, K_L, SC_MSG_INSERT_CQL " IF NOT EXISTS", SC_MSG_INSERT_PARAMS)               \
    X(MSG_GET, K_R,                                                                                \
      "SELECT " SC_MSG_COLS " FROM @.messages WHERE channel_id = ? AND bucket = ? AND "            \
      "message_id = ?",                                                                            \
      (ID, ch)(INT, bucket)(BIGINT, id))                                                           \
    X(BUCKET_ADD, K_W, "INSERT INTO @.channel_buckets (channel_id, bucket) VALUES (?, ?)",         \
      (ID, ch)(INT, bucket))                                                                       \
    X(BUCKETS_DOWN, K_R,                                                                           \
      "SELECT bucket FROM @.channel_buckets WHERE channel_id = ? AND bucket <= ? LIMIT ?",         \
      (ID, ch)(INT, from)(INT, limit))                                                             \
    X(BUCKETS_UP, K_R,                                                                             \
      "SELECT bucket FROM @.channel_buckets WHERE channel_id = ? AND bucket >= ? "                 \
      "ORDER BY bucket ASC LIMIT ?",                                                               \
      (ID, ch)(INT, from)(INT, limit))                                                             \
    X(PAGE_BEFORE, K_R,                                                                            \
      "SELECT " SC_MSG_COLS " FROM @.messages WHERE channel_id = ? AND bucket = ? AND "            \
      "message_id < ? LIMIT ?",                                                                    \
      (ID, ch)(INT, bucket)(BIGINT, anchor)(INT, limit))                                           \
    X(PAGE_AFTER, K_R,                                                                             \
      "SELECT " SC_MSG_COLS " FROM @.messages WHERE channel_id = ? AND bucket = ? AND "            \
      "message_id > ? ORDER BY message_id ASC LIMIT ?",                                            \
      (ID, ch)(INT, bucket)(BIGINT, anchor)(INT, limit))                                           \
    X(PAGE_FROM, K_R,                                                                              \
      "SELECT " SC_MSG_COLS " FROM @.messages WHERE channel_id = ? AND bucket = ? AND "            \
      "message_id >= ? ORDER BY message_id ASC LIMIT ?",                                           \
      (ID, ch)(INT, bucket)(BIGINT, anchor)(INT, limit))                                           \
    X(PAGE_BEFORE_IN, K_R,                                                                         \
      "SELECT " SC_MSG_COLS " FROM @.messages WHERE channel_id = ? AND bucket IN ? AND "           \
      "message_id < ? PER PARTITION LIMIT ?",                                                      \
      (ID, ch)(INT_LIST, buckets)(BIGINT, anchor)(INT, limit))                                     \
    X(PAGE_AFTER_IN, K_R,                                                                          \
      "SELECT " SC_MSG_COLS " FROM @.messages WHERE channel_id = ? AND bucket IN ? AND "           \
      "message_id > ? ORDER BY message_id ASC PER PARTITION LIMIT ?",                              \
      (ID, ch)(INT_LIST, buckets)(BIGINT, anchor)(INT, limit))                                     \
    X(PAGE_AFTER_IDS, K_R,                                                                         \
      "SELECT bucket, message_id FROM @.messages WHERE channel_id = ? AND bucket IN ? AND "        \
      "message_id > ? ORDER BY message_id ASC PER PARTITION LIMIT ?",                              \
      (ID, ch)(INT_LIST, buckets)(BIGINT, anchor)(INT, limit))                                     \
    X(PAGE_RANGE_IN, K_R,                                                                          \
      "SELECT " SC_MSG_COLS " FROM @.messages WHERE channel_id = ? AND bucket IN ? AND "           \
      "message_id > ? AND message_id <= ?",                                                        \
      (ID, ch)(INT_LIST, buckets)(BIGINT, anchor)(BIGINT, last))                                   \
    X(UNREAD_IN, K_R,                                                                              \
      "SELECT bucket, message_id, is_deleted FROM @.messages WHERE channel_id = ? AND bucket IN "  \
      "? AND message_id > ? PER PARTITION LIMIT ?",                                                \
      (ID, ch)(INT_LIST, buckets)(BIGINT, after)(INT, limit))                                      \
    X(UNREAD_SCAN, K_R,                                                                            \
      "SELECT bucket, message_id, is_deleted FROM @.messages WHERE channel_id = ? AND bucket = ? " \
      "AND message_id > ? AND message_id < ? LIMIT ?",                                             \
      (ID, ch)(INT, bucket)(BIGINT, after)(BIGINT, before)(INT, limit))                            \
    X(TG_CLAIM, K_L,                                                                               \
      "INSERT INTO @.telegram_message_mapping (telegram_message_id, telegram_chat_id, "            \
      "channel_id, message_id, created_at) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS",                  \
      (BIGINT, tg_msg)(BIGINT, tg_chat)(ID, ch)(BIGINT, id)(BIGINT, created_at))                   \
    X(TG_UNCLAIM, K_L,                                                                             \
      "DELETE FROM @.telegram_message_mapping WHERE telegram_message_id = ? AND "                  \
      "telegram_chat_id = ? IF message_id = ?",                                                    \
      (BIGINT, tg_msg)(BIGINT, tg_chat)(BIGINT, id))                                               \
    X(TG_GET, K_R,                                                                                 \
      "SELECT channel_id, message_id FROM @.telegram_message_mapping WHERE "                       \
      "telegram_message_id = ? AND telegram_chat_id = ?",                                          \
      (BIGINT, tg_msg)(BIGINT, tg_chat))                                                           \
    X(NONCE_CLAIM, K_L,                                                                            \
      "INSERT INTO @.message_nonces (channel_id, nonce, message_id, created_at) "                  \
      "VALUES (?, ?, ?, ?) IF NOT EXISTS",                                                         \
      (ID, ch)(TEXT, nonce)(BIGINT, id)(BIGINT, created_at))                                       \
    X(META_CREATE, K_L,                                                                            \
      "INSERT INTO @.channel_metadata (channel_id, name, type, created_at, updated_at) "           \
      "VALUES (?, ?, ?, ?, ?) IF NOT EXISTS",                                                      \
      (ID, ch)(TEXT, name)(TEXT, type)(BIGINT, created_at)(BIGINT, updated_at))                    \
    X(META_LAST, K_W,                                                                              \
      "UPDATE @.channel_metadata USING TIMESTAMP ? SET last_message_id = ? WHERE channel_id = ?",  \
      (BIGINT, ts_us)(BIGINT, last)(ID, ch))                                                       \
    X(META_SET, K_W,                                                                               \
      "UPDATE @.channel_metadata SET name = ?, type = ?, created_at = ?, updated_at = ? "          \
      "WHERE channel_id = ?",                                                                      \
      (TEXT_OPT, name)(TEXT_OPT, type)(BIGINT_OPT, created_at)(BIGINT, updated_at)(ID, ch))        \
    X(META_GET, K_R,                                                                               \
      "SELECT channel_id, name, type, created_at, last_message_id, updated_at FROM "               \
      "@.channel_metadata WHERE channel_id = ?",                                                   \
      (ID, ch))                                                                                    \
    X(COUNT_MSG, K_C,                                                                              \
      "UPDATE @.channel_message_counts SET count = count + ? WHERE channel_id = ? AND bucket = ?", \
      (BIGINT, n)(ID, ch)(INT, bucket))                                                            \
    X(COUNTER_GET, K_R, "SELECT SUM(count) FROM @.channel_message_counts WHERE channel_id = ?",    \
      (ID, ch))                                                                                    \
    X(EDIT_SAVE, K_W,                                                                              \
      "INSERT INTO @.message_edits (channel_id, message_id, seq, edited_at, content) "             \
      "VALUES (?, ?, ?, ?, ?)",                                                                    \
      (ID, ch)(BIGINT, id)(BIGINT, seq)(BIGINT, edited_at)(TEXT, content))                         \
    X(EDIT_APPLY, K_L,                                                                             \
      "UPDATE @.messages SET content = ?, is_edited = true, edited_at = ? WHERE channel_id = ? "   \
      "AND bucket = ? AND message_id = ? IF created_at != null AND is_deleted != true",            \
      (TEXT, content)(BIGINT, edited_at)(ID, ch)(INT, bucket)(BIGINT, id))                         \
    X(EDIT_UNSAVE, K_W,                                                                            \
      "DELETE FROM @.message_edits WHERE channel_id = ? AND message_id = ? AND seq = ?",           \
      (ID, ch)(BIGINT, id)(BIGINT, seq))                                                           \
    X(DELETE_APPLY, K_W,                                                                           \
      "UPDATE @.messages SET content = '', attachments = '', metadata = '', is_deleted = true, "   \
      "deleted_at = ? WHERE channel_id = ? AND bucket = ? AND message_id = ?",                     \
      (BIGINT, deleted_at)(ID, ch)(INT, bucket)(BIGINT, id))                                       \
    X(EDITS_PURGE, K_W, "DELETE FROM @.message_edits WHERE channel_id = ? AND message_id = ?",     \
      (ID, ch)(BIGINT, id))                                                                        \
    X(HISTORY, K_R,                                                                                \
      "SELECT edited_at, content FROM @.message_edits WHERE channel_id = ? AND message_id = ? "    \
      "LIMIT ?",                                                                                   \
      (ID, ch)(BIGINT, id)(INT, limit))                                                            \
    X(REACT_ADD, K_L,                                                                              \
      "INSERT INTO @.message_reactions (channel_id, message_id, emoji, user_id, created_at) "      \
      "VALUES (?, ?, ?, ?, ?) IF NOT EXISTS",                                                      \
      (ID, ch)(BIGINT, id)(TEXT, emoji)(ID, user)(BIGINT, created_at))                             \
    X(REACT_DEL, K_L,                                                                              \
      "DELETE FROM @.message_reactions WHERE channel_id = ? AND message_id = ? AND emoji = ? AND " \
      "user_id = ? IF EXISTS",                                                                     \
      (ID, ch)(BIGINT, id)(TEXT, emoji)(ID, user))                                                 \
    X(COUNT_INC, K_C,                                                                              \
      "UPDATE @.message_reaction_counts SET count = count + 1, changes = changes + 1 WHERE "       \
      "channel_id = ? AND message_id = ? AND emoji = ?",                                           \
      (ID, ch)(BIGINT, id)(TEXT, emoji))                                                           \
    X(COUNT_DEC, K_C,                                                                              \
      "UPDATE @.message_reaction_counts SET count = count - 1, changes = changes + 1 WHERE "       \
      "channel_id = ? AND message_id = ? AND emoji = ?",                                           \
      (ID, ch)(BIGINT, id)(TEXT, emoji))                                                           \
    X(REACT_ROWS, K_R,                                                                             \
      "SELECT COUNT(*) FROM @.message_reactions WHERE channel_id = ? AND message_id = ? AND "      \
      "emoji = ?",                                                                                 \
      (ID, ch)(BIGINT, id)(TEXT, emoji))                                                           \
    X(COUNT_GET, K_R,                                                                              \
      "SELECT count FROM @.message_reaction_counts WHERE channel_id = ? AND message_id = ? AND "   \
      "emoji = ?",                                                                                 \
      (ID, ch)(BIGINT, id)(TEXT, emoji))                                                           \
    X(COUNTS_LIST, K_R,                                                                            \
      "SELECT emoji, count FROM @.message_reaction_counts WHERE channel_id = ? AND "               \
      "message_id = ?",                                                                            \
      (ID, ch)(BIGINT, id))                                                                        \
    X(USERS, K_R,                                                                                  \
      "SELECT user_id FROM @.message_reactions WHERE channel_id = ? AND message_id = ? AND "       \
      "emoji = ? AND user_id > ? LIMIT ?",                                                         \
      (ID, ch)(BIGINT, id)(TEXT, emoji)(ID, after)(INT, limit))                                    \
    X(PIN_GET, K_R,                                                                                \
      "SELECT " SC_PIN_COLS " FROM @.pinned_messages WHERE channel_id = ? AND message_id = ?",     \
      (ID, ch)(BIGINT, id))                                                                        \
    X(PINS_ALL, K_R,                                                                               \
      "SELECT " SC_PIN_COLS ", pin_count FROM @.pinned_messages WHERE channel_id = ? LIMIT 1000",  \
      (ID, ch))                                                                                    \
    X(PIN_ADD, K_L,                                                                                \
      "INSERT INTO @.pinned_messages (channel_id, message_id, pinned_at, pinned_by, "              \
      "content_preview, sender_id) VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS",                       \
      (ID, ch)(BIGINT, id)(BIGINT, pinned_at)(ID, pinned_by)(TEXT, preview)(ID, sender))           \
    X(PIN_DEL, K_L,                                                                                \
      "DELETE FROM @.pinned_messages WHERE channel_id = ? AND message_id = ? IF EXISTS",           \
      (ID, ch)(BIGINT, id))                                                                        \
    X(PIN_COUNT, K_L,                                                                              \
      "UPDATE @.pinned_messages SET pin_count = ? WHERE channel_id = ? IF pin_count = ?",          \
      (INT, count)(ID, ch)(INT_OR_NULL, expected))                                                 \
    X(READ_GET, K_R,                                                                               \
      "SELECT last_read_id, updated_at FROM @.message_read_positions WHERE channel_id = ? AND "    \
      "user_id = ?",                                                                               \
      (ID, ch)(ID, user))                                                                          \
    X(READ_SET, K_W,                                                                               \
      "UPDATE @.message_read_positions USING TIMESTAMP ? SET last_read_id = ?, updated_at = ? "    \
      "WHERE channel_id = ? AND user_id = ?",                                                      \
      (BIGINT, ts_us)(BIGINT, last_read)(BIGINT, updated_at)(ID, ch)(ID, user))                    \
    X(SYNC_GET, K_R,                                                                               \
      "SELECT channel_id, telegram_chat_id, last_synced_message_id, direction, last_sync_at, "     \
      "created_at FROM @.telegram_sync_state WHERE channel_id = ?",                                \
      (ID, ch))                                                                                    \
    X(SYNC_SET, K_W,                                                                               \
      "UPDATE @.telegram_sync_state SET telegram_chat_id = ?, direction = ?, last_sync_at = ?, "   \
      "created_at = ? WHERE channel_id = ?",                                                       \
      (BIGINT, tg_chat)(TINYINT, direction)(BIGINT, last_sync_at)(BIGINT_OPT, created_at)(ID, ch)) \
    X(SYNC_LAST, K_W,                                                                              \
      "UPDATE @.telegram_sync_state USING TIMESTAMP ? SET last_synced_message_id = ? WHERE "       \
      "channel_id = ?",                                                                            \
      (BIGINT, ts_us)(BIGINT, last)(ID, ch))                                                       \
    X(PING, K_R, "SELECT version FROM @.schema_version WHERE scope = 'msgstore' LIMIT 1", )        \
    X(SEARCH_LOG, K_W,                                                                             \
      "INSERT INTO @.search_log (shard, seq, channel_id, message_id, kind, version) "              \
      "VALUES (?, ?, ?, ?, ?, ?) USING TTL ?",                                                     \
      (INT, shard)(BIGINT, seq)(ID, ch)(BIGINT, id)(INT, kind)(BIGINT, version)(INT, ttl_s))       \
    X(RP_NOTE, K_W,                                                                                \
      "INSERT INTO @.counter_repairs (shard, kind, channel_id, id, emoji, failure_id) "            \
      "VALUES (?, ?, ?, ?, ?, ?)",                                                                 \
      (INT, shard)(TINYINT, kind)(ID, ch)(BIGINT, id)(TEXT, emoji)(BIGINT, failure_id))            \
    X(RP_SCAN, K_R,                                                                                \
      "SELECT kind, channel_id, id, emoji, failure_id FROM @.counter_repairs WHERE shard IN ? "    \
      "LIMIT ?",                                                                                   \
      (INT_LIST, shards)(INT, limit))                                                              \
    X(RP_DONE, K_W,                                                                                \
      "DELETE FROM @.counter_repairs WHERE shard = ? AND kind = ? AND channel_id = ? AND id = ? "  \
      "AND emoji = ? AND failure_id IN ?",                                                         \
      (INT, shard)(TINYINT, kind)(ID, ch)(BIGINT, id)(TEXT, emoji)(BIGINT_LIST, failure_ids))      \
    X(RP_LEASE, K_L,                                                                               \
      "INSERT INTO @.counter_repair_leases (kind, channel_id, id, emoji, owner) "                  \
      "VALUES (?, ?, ?, ?, ?) IF NOT EXISTS USING TTL ?",                                          \
      (TINYINT, kind)(ID, ch)(BIGINT, id)(TEXT, emoji)(BIGINT, owner)(INT, ttl_s))                 \
    X(RP_UNLEASE, K_L,                                                                             \
      "DELETE FROM @.counter_repair_leases WHERE kind = ? AND channel_id = ? AND id = ? AND "      \
      "emoji = ? IF owner = ?",                                                                    \
      (TINYINT, kind)(ID, ch)(BIGINT, id)(TEXT, emoji)(BIGINT, owner))                             \
    X(RP_RX_TOUCH, K_S,                                                                            \
      "SELECT user_id FROM @.message_reactions WHERE channel_id = ? AND message_id = ? LIMIT 1",   \
      (ID, ch)(BIGINT, id))                                                                        \
    X(RP_RX_ROWS, K_A,                                                                             \
      "SELECT COUNT(*) FROM @.message_reactions WHERE channel_id = ? AND message_id = ? AND "      \
      "emoji = ?",                                                                                 \
      (ID, ch)(BIGINT, id)(TEXT, emoji))                                                           \
    X(RP_RX_COUNTER, K_A,                                                                          \
      "SELECT count, changes FROM @.message_reaction_counts WHERE channel_id = ? AND "             \
      "message_id = ? AND emoji = ?",                                                              \
      (ID, ch)(BIGINT, id)(TEXT, emoji))                                                           \
    X(RP_RX_FIX, K_C,                                                                              \
      "UPDATE @.message_reaction_counts SET count = count + ?, changes = changes + 1 WHERE "       \
      "channel_id = ? AND message_id = ? AND emoji = ?",                                           \
      (BIGINT, delta)(ID, ch)(BIGINT, id)(TEXT, emoji))                                            \
    X(RP_MC_TOUCH, K_S,                                                                            \
      "SELECT message_id FROM @.messages WHERE channel_id = ? AND bucket = ? LIMIT 1",             \
      (ID, ch)(INT, bucket))                                                                       \
    X(RP_MC_ROWS, K_A,                                                                             \
      "SELECT COUNT(created_at) FROM @.messages WHERE channel_id = ? AND bucket = ?",              \
      (ID, ch)(INT, bucket))                                                                       \
    X(RP_MC_COUNTER, K_A,                                                                          \
      "SELECT count FROM @.channel_message_counts WHERE channel_id = ? AND bucket = ?",            \
      (ID, ch)(INT, bucket))

#define SC_ENUM(name, kind, cql, params) SC_##name,
typedef enum sc_stmt_id { SC_STATEMENTS(SC_ENUM) SC_NSTMT } sc_stmt_id;
#undef SC_ENUM

typedef struct sc_stmt_def {
    const char *name; /* "COUNT_MSG" */
    int kind;         /* K_* */
    const char *cql;
    int nparams;       /* bound values: one per ? marker of cql */
    const char *types; /* their TYPEs, one letter each (SC_LETTER_*), in order */
} sc_stmt_def;

/* The statements' names, kinds, texts and values, by sc_stmt_id (scylla_cql.c). */
extern const sc_stmt_def sc_stmt[SC_NSTMT];

/*
 * 0 when every value of statement id, as its binder encodes it (ids in format
 * idf), is of the CQL type the server gives its marker (params: the prepared
 * statement's bind metadata). Else MS_ERR_INTERNAL with the first mismatch in
 * err: a table that disagrees with the schema fails at prepare, loudly, not
 * with a value the server misreads. Checked at every prepare (sc_prepare, copy.c).
 */
int sc_check_types(sc_stmt_id id, const cql_metadata *params, ms_id_format idf, char *err,
                   size_t errlen);

/*
 * Binds a channel or user id as the CQL type of format f (uuid or bigint):
 * the one place that knows it (every ID value of a binder goes through it).
 */
void sc_bind_id_as(ms_id_format f, cql_values *v, ms_xid id);

/* ---- the binders, generated from each entry's value list ---- */

/*
 * A value list is a preprocessor sequence (T, n)(T, n)...: SC_SEQ(M, seq)
 * applies M_A/M_B alternately to its elements (a macro cannot call itself)
 * and pastes _END onto the name left over after the last one, which expands
 * to nothing; an empty list leaves M_A alone, so it becomes M_A_END.
 */
#define SC_SEQ(M, seq)     SC_SEQ_END_(M##_A seq)
#define SC_SEQ_END_(...)   SC_SEQ_PASTE_(__VA_ARGS__)
#define SC_SEQ_PASTE_(...) __VA_ARGS__##_END

/* the C parameters: ", int64_t n, ms_xid ch" */
#define SC_PARAMS_A(T, n) , SC_PARAM_##T(n) SC_PARAMS_B
#define SC_PARAMS_B(T, n) , SC_PARAM_##T(n) SC_PARAMS_A
#define SC_PARAMS_A_END
#define SC_PARAMS_B_END
/* the appends: one value each */
#define SC_APPEND_A(T, n)                                                                          \
    SC_APPEND_##T(n);                                                                              \
    SC_APPEND_B
#define SC_APPEND_B(T, n)                                                                          \
    SC_APPEND_##T(n);                                                                              \
    SC_APPEND_A
#define SC_APPEND_A_END
#define SC_APPEND_B_END
/* the count: "+ 1 + 1" */
#define SC_COUNT_A(T, n) +1 SC_COUNT_B
#define SC_COUNT_B(T, n) +1 SC_COUNT_A
#define SC_COUNT_A_END
#define SC_COUNT_B_END
#define SC_NPARAMS(seq) (0 SC_SEQ(SC_COUNT, seq))
/* the type letters: "" "b" "x" "i" */
#define SC_LETTERS_A(T, n) SC_LETTER_##T SC_LETTERS_B
#define SC_LETTERS_B(T, n) SC_LETTER_##T SC_LETTERS_A
#define SC_LETTERS_A_END
#define SC_LETTERS_B_END
#define SC_LETTERS(seq) ("" SC_SEQ(SC_LETTERS, seq))

#define SC_LETTER_ID          "x"
#define SC_LETTER_INT         "i"
#define SC_LETTER_BIGINT      "b"
#define SC_LETTER_TINYINT     "t"
#define SC_LETTER_TEXT        "s"
#define SC_LETTER_TEXT_OPT    "S"
#define SC_LETTER_BIGINT_OPT  "B"
#define SC_LETTER_INT_OR_NULL "I"
#define SC_LETTER_INT_LIST    "l"
#define SC_LETTER_BIGINT_LIST "L"

#define SC_PARAM_ID(n)          ms_xid n
#define SC_PARAM_INT(n)         int32_t n
#define SC_PARAM_BIGINT(n)      int64_t n
#define SC_PARAM_TINYINT(n)     int8_t n
#define SC_PARAM_TEXT(n)        const char *n, size_t n##_len
#define SC_PARAM_TEXT_OPT(n)    const char *n
#define SC_PARAM_BIGINT_OPT(n)  const int64_t *n
#define SC_PARAM_INT_OR_NULL(n) const int32_t *n
#define SC_PARAM_INT_LIST(n)    const int32_t *n, size_t n##_n
#define SC_PARAM_BIGINT_LIST(n) const int64_t *n, size_t n##_n

#define SC_APPEND_ID(n)          sc_bind_id_as(idf, v, n)
#define SC_APPEND_INT(n)         cql_values_add_int(v, n)
#define SC_APPEND_BIGINT(n)      cql_values_add_bigint(v, n)
#define SC_APPEND_TINYINT(n)     cql_values_add_tinyint(v, n)
#define SC_APPEND_TEXT(n)        cql_values_add_text(v, n, n##_len)
#define SC_APPEND_TEXT_OPT(n)    sc_add_text_opt(v, n)
#define SC_APPEND_BIGINT_OPT(n)  sc_add_bigint_opt(v, n)
#define SC_APPEND_INT_OR_NULL(n) sc_add_int_or_null(v, n)
#define SC_APPEND_INT_LIST(n)    sc_add_int_list(v, n, n##_n)
#define SC_APPEND_BIGINT_LIST(n) sc_add_bigint_list(v, n, n##_n)

static inline void sc_add_text_opt(cql_values *v, const char *s)
{
    if (s)
        cql_values_add_text(v, s, strlen(s));
    else
        cql_values_add_unset(v);
}

static inline void sc_add_bigint_opt(cql_values *v, const int64_t *x)
{
    if (x)
        cql_values_add_bigint(v, *x);
    else
        cql_values_add_unset(v);
}

static inline void sc_add_int_or_null(cql_values *v, const int32_t *x)
{
    if (x)
        cql_values_add_int(v, *x);
    else
        cql_values_add_null(v);
}

static inline void sc_add_int_list(cql_values *v, const int32_t *x, size_t n)
{
    cql_values_begin_list(v);
    for (size_t i = 0; i < n; i++)
        cql_values_add_int(v, x[i]);
    cql_values_end(v);
}

static inline void sc_add_bigint_list(cql_values *v, const int64_t *x, size_t n)
{
    cql_values_begin_list(v);
    for (size_t i = 0; i < n; i++)
        cql_values_add_bigint(v, x[i]);
    cql_values_end(v);
}

/* sc_bind_<NAME>(idf, v, ...): appends statement NAME's values to v, in its markers' order. */
#define SC_BINDER(name, kind, cql, params)                                                         \
    static inline void sc_bind_##name(ms_id_format idf, cql_values *v SC_SEQ(SC_PARAMS, params))   \
    {                                                                                              \
        (void)idf;                                                                                 \
        (void)v;                                                                                   \
        SC_SEQ(SC_APPEND, params)                                                                  \
    }
SC_STATEMENTS(SC_BINDER)
#undef SC_BINDER

typedef struct sc_backend sc_backend;

/* A count to recount (counter_repairs): a reaction count or a bucket's message count. */
enum { RP_REACTION = 1, RP_MESSAGES = 2 };

typedef struct rp_note {
    int8_t kind;
    ms_xid ch;
    int64_t id; /* message id (RP_REACTION) or bucket (RP_MESSAGES) */
    char emoji[STORE_MAX_EMOJI_BYTES + 1];
    uint64_t failure_id; /* a snowflake of the failure's time */
} rp_note;

typedef struct sc_loop sc_loop;
typedef struct sc_task sc_task;

/*
 * What an operation's statements run on: either a loop's session (lp, with
 * the coroutine of the operation: task) or a blocking session (db: the
 * counter repair's thread). Values are the operation's own.
 */
typedef struct sc_conn {
    sc_backend *b;
    cql_sync *db;      /* blocking; NULL on a loop */
    sc_loop *lp;       /* the loop whose session runs the statements */
    sc_task *task;     /* the operation's coroutine (on a loop) */
    cql_prepared **ps; /* prepared statements of the session: lp->ps or own_ps */
    cql_prepared *own_ps[SC_NSTMT];
    bool repair;      /* the counter repair's session: never takes injected faults */
    uint32_t queries; /* requests sent for the current op */
    unsigned up_seen; /* b->hosts_up when this session last caught up */
    cql_values v;     /* reused for every statement */
    cql_values bv[4]; /* the statements of the insert batch (with search: 4) */
} sc_conn;

/* One operation in flight on a loop: its coroutine and what it waits for. */
struct sc_task {
    sc_conn c;
    ms_coro *co;
    store_op *op;
    bool ready; /* the awaited request completed */
    cql_status st;
    cql_result *res;
    cql_prepared *prep;
    sc_task *next; /* idle list, ready list */
    /*
     * Its insert's message count, coalesced with the loop turn's other
     * inserts of the same (channel, bucket) (sc_count_join). The group's
     * first member leads it: it holds n and the followers and sends the
     * update. next: the next leader of the turn (a leader), the next
     * follower of its leader (a follower); hnext: the turn's hash chain.
     */
    struct {
        ms_xid ch;
        int32_t bucket;
        uint32_t n;
        sc_task *followers, *next, *hnext;
    } cnt;
};

#define SC_COUNT_SLOTS 256 /* hash slots of a loop turn's message-count groups */

/*
 * A loop's share of the backend: its CQL session (created on the loop's
 * first operation; again after a failed connect), the statements prepared on
 * it, the operations in flight. Touched only on the loop's thread.
 */
struct sc_loop {
    sc_backend *b;
    uv_loop_t *loop;
    unsigned idx; /* creation order: its session is "store-<idx>" (metric labels) */
    cql_session *sess;
    bool failed;      /* the session could not connect: ops fail fast until retry_at */
    int64_t retry_at; /* monotonic ms */
    char error[256];  /* why it failed */
    cql_prepared *ps[SC_NSTMT];
    size_t inflight;  /* operations running */
    uv_idle_t resume; /* resumes the ready tasks right after the callbacks that woke them */
    uv_async_t poke;  /* another session saw a host come back: reconnect now */
    uv_timer_t drain; /* store_loop_drain's deadline */
    int handles;      /* open handles (resume, poke, drain): freed when all closed */
    bool drained;     /* the drain deadline passed: operations fail fast */
    bool sess_closing;
    sc_task *ready, *ready_tail; /* tasks whose awaited request completed */
    sc_task *idle;               /* finished tasks kept for the next operations */
    size_t nidle;
    size_t peak, peak_prev; /* most operations in flight: this window, the one before */
    unsigned window_ops;    /* operations finished in this window (SC_IDLE_WINDOW) */
    unsigned up_seen;       /* b->hosts_up when this session last caught up */
    /* this turn's message-count groups: leaders by (channel, bucket), and in join order */
    sc_task *count_slots[SC_COUNT_SLOTS];
    sc_task *count_open, *count_open_tail;
    bool sess_closed; /* no session, or its close completed */
    bool detached;    /* the loop goes away: close when idle */
    bool freeing;
    sc_loop *prev, *next; /* b->loops */
};

/*
 * What this process knows to be written (sc_known_*), in two sets of the
 * same shape: channels with a metadata row (skips the IF NOT EXISTS on
 * inserts) and (channel, bucket)s listed in channel_buckets (the insert
 * batch skips the listing). Apart, so that the many short-lived bucket
 * entries never make the set forget its channels (a metadata LWT each).
 */
#define KNOWN_SLOTS 65536

typedef struct sc_known_slot {
    ms_xid ch; /* none: empty */
    int32_t bucket;
    int64_t until_ms; /* trusted until then (monotonic ms) */
} sc_known_slot;

typedef struct sc_known_set {
    pthread_mutex_t mu;
    sc_known_slot *slots; /* KNOWN_SLOTS, open addressing */
    size_t n;
} sc_known_set;

struct sc_backend {
    store_backend base;
    const store_config *cfg;
    int64_t close_ms; /* bound on store_close (MSGSTORE_SHUTDOWN_TIMEOUT, at most 10 s) */
    bool no_migrate;  /* store_options.no_migrate: check the schema, do not migrate */
    int inflight_max; /* operations in flight over all loops (SCYLLA_MAX_IN_FLIGHT) */
    _Atomic int inflight;
    ms_gauge *m_inflight;
    pthread_mutex_t loops_mu;
    sc_loop *loops;      /* every loop with a session (including the private one) */
    unsigned loops_made; /* names the next loop's session */

    /* the schema: checked (or migrated) at open, or by the bootstrap thread once the
       cluster appears; operations fail with MS_ERR_UNAVAILABLE until then */
    _Atomic bool schema_ok;
    pthread_mutex_t boot_mu;
    char boot_error[256];
    bool boot_started;
    pthread_t boot_thread;

    /* the *_sync calls: a private loop on its own thread */
    store__queue sq;
    uv_loop_t sloop;
    uv_async_t sasync;
    sc_loop *slp;
    bool sthread_started;
    pthread_t sthread;
    _Atomic bool stop;       /* store_close began */
    _Atomic bool sync_drain; /* a loop is being drained: so is the private one */
    int64_t sync_drain_ms;
    bool sync_drain_started; /* the private loop's thread */
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    int threads_done; /* of the private-loop, bootstrap and repair threads */

    char *sql[SC_NSTMT];                      /* statement texts with the keyspace filled in */
    sc_known_set known;                       /* channels with a metadata row */
    sc_known_set listed;                      /* (channel, bucket)s listed in channel_buckets */
    _Atomic int faults[STORE_FAULT_LAST + 1]; /* injected faults left, by store_fault */
    _Atomic unsigned hosts_up;                /* CQL_HOST_UP events seen by any of the sessions */

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
    ms_counter *m_count_updates, *m_count_incs; /* message-count updates sent, messages counted */
};

/* ---- dispatch: scylla.c ---- */

/* Session options from the SCYLLA_* settings; keyspace: USE it on every connection. */
void sc_options(cql_options *o, const store_config *cfg, bool keyspace);

/* The statement text with every "@." replaced by "<keyspace>."; malloc'd, NULL on OOM. */
char *sc_qualify(const char *cql, const char *ks);

/* True for 1..max letters, digits, '_' or '-' (keyspace and DC names). */
bool sc_valid_name(const char *s, size_t max);

/* Reconnects c's session to its down hosts when another session saw one come back. */
void sc_catch_up(sc_conn *c);

/*
 * A session's private loop runs only inside cql_sync calls: a thread that
 * owns one and has nothing to do must let it run now and then, or the session
 * stalls (no reconnection after an outage, no heartbeats, server events
 * unread). Idle threads wait at most this long between two turns.
 */
#define SC_IDLE_TICK_MS 50

/* The name of lp's session ("store-<idx>"): the client's metrics are labelled by it. */
void sc_loop_session_name(const sc_loop *lp, char *out, size_t n);

/* A host's totals over the sessions of every loop of the backend. */
void sc_host_totals(sc_backend *b, const char *address, int port, cql_host_totals *out);

/* Monotonic milliseconds. */
int64_t sc_mono_ms(void);

/*
 * Message counts coalesced per loop turn (docs/data-model.md, "Exact
 * counts"). On a loop, an insert whose message is written joins the turn's
 * group of its (channel, bucket) and waits for the end of the turn (the
 * resume handle, after every task woken in this turn ran): the group's
 * first member gets the group's size n (> 0) and sends one update of
 * count + n, then calls sc_count_done; every other member gets 0 and is
 * resumed by that call, once the update answered (or failed: the leader
 * records the bucket for the repair). Only on a loop (c->task).
 */
uint32_t sc_count_join(sc_conn *c, ms_xid ch, int32_t bucket);
void sc_count_done(sc_conn *c);

/* ---- statements: scylla_cql.c ---- */

/* Fails op with st's code and message, prefixed with `what`. Returns the code. */
int sc_fail(store_op *op, const cql_status *st, const char *what);

/* c's value list, emptied for the next statement. */
cql_values *sc_vals(sc_conn *c);

/*
 * 0 when v holds statement id's values: as many as its markers (its binder
 * filled it) and no failed append. Else fails op: MS_ERR_NOMEM for a failed
 * append, MS_ERR_INTERNAL for a count that is not the statement's. sc_run,
 * sc_lwt_batch and the insert batch check every statement they send.
 */
int sc_check_values(store_op *op, sc_stmt_id id, const cql_values *v, const char *what);

/* Prepares statement id on c's session once; 0, or fails op. */
int sc_prepare(sc_conn *c, store_op *op, sc_stmt_id id, const char *what);

/*
 * Runs statement id with the values in c->v. *res (may be NULL) receives the
 * result, to free with cql_result_destroy. Fails op on error.
 */
int sc_run(sc_conn *c, store_op *op, sc_stmt_id id, const char *what, cql_result **res);

/*
 * Like sc_run, one page of page_rows rows (0: unpaged) from paging state
 * `state` (NULL: the first page).
 */
int sc_run_page(sc_conn *c, store_op *op, sc_stmt_id id, const char *what, int32_t page_rows,
                const cql_bytes *state, cql_result **res);

/*
 * Runs statement id (values in c->v, the same for every page) page by page,
 * page_rows rows each, handing each page's result to each() (non-zero: stop,
 * with op failed). 0, or fails op. For reads that could exceed SC_READ_BYTES
 * unpaged (issue 14 item 4).
 */
int sc_run_pages(sc_conn *c, store_op *op, sc_stmt_id id, const char *what, int32_t page_rows,
                 int (*each)(void *ud, cql_result *page), void *ud);

/* What one read may return at most (ScyllaDB warns above 1 MiB unpaged). */
#define SC_READ_BYTES (1024 * 1024)

/*
 * Runs the statements ids[0..n) (n <= 3) with the values c->bv[k] as one
 * conditional batch; *res receives its result. Never retried. Fails op on error.
 */
int sc_lwt_batch(sc_conn *c, store_op *op, const sc_stmt_id *ids, size_t n, const char *what,
                 cql_result **res);

/*
 * One request on c's session (see scylla_cql.c): on a loop it yields until
 * the answer. 0, or the error's code with st set. *res (may be NULL) gets the
 * result on success (cql_result_destroy).
 */
int sc_exec(sc_conn *c, const cql_statement *s, cql_result **res, cql_status *st);
int sc_exec_batch(sc_conn *c, const cql_batch_request *br, cql_result **res, cql_status *st);

/* Waits ms without blocking c's loop (on a loop: a timer). */
void sc_sleep(sc_conn *c, int64_t ms);

/* c's session. */
cql_session *sc_session(sc_conn *c);

/* On t's loop: resumes t's coroutine after what it awaited completed (scylla.c). */
void sc_task_resume(sc_task *t);

/* Takes one injected fault `f` (tests) if any is left: true when taken. */
bool sc_take_fault(sc_conn *c, store_fault f);

/* The store's id format: the first argument of the binders (sc_bind_<NAME>). */
#define sc_idf(c) ((c)->b->cfg->id_format)

/* ---- search change log (scylla_messages.c) ---- */

/* True when the store feeds a search index (MSGSTORE_SEARCH_PG_URL set: src/search/). */
bool sc_search_on(const sc_backend *b);

/*
 * Binds a search_log entry for message (ch, id) (STORE_SEARCH_LOG_* kind; the
 * version the index must see: an insert's created_at, an edit's or a delete's
 * time). 0, or MS_ERR_CLOCK with op failed.
 */
int sc_bind_search_log(sc_conn *c, store_op *op, cql_values *v, ms_xid ch, uint64_t id, int kind,
                       uint64_t version);

/*
 * Binds the SEARCH_LOG statement's values: entry seq (a fresh snowflake, so that it
 * lies after the indexer's checkpoint) for message (ch, id), with ids of format idf.
 * The copy to a cluster (copy.c) logs what it copies through it too.
 */
void sc_bind_search_entry(const store_config *cfg, ms_id_format idf, cql_values *v, uint64_t seq,
                          ms_xid ch, uint64_t id, int kind, uint64_t version);

/*
 * Writes the search_log entry of a change before the change itself (edit,
 * delete, an explicit-id insert): an acknowledged change always has its
 * entry, and the indexer waits for the change to show (its version) before
 * applying it. A no-op without search.
 */
int sc_search_log(sc_conn *c, store_op *op, ms_xid ch, uint64_t id, int kind, uint64_t version);

/* Reads a channel or user id back from column col of the current row, a uuid or a bigint
 * column alike (none for null). */
ms_xid sc_col_id(cql_result *r, int col);

/* A 64-bit key of a channel for in-memory tables and shards (an integer id is itself). */
#define sc_xid_key(ch) ms_xid_key64(ch)

/* [applied] of a lightweight transaction's result (reads its first row). */
bool sc_lwt_applied(cql_result *r);

/* Column readers of the current row: 0 / false for null. */
int64_t sc_col_i64(cql_result *r, int col);
int64_t sc_named_i64(cql_result *r, const char *name);
bool sc_col_bool(cql_result *r, int col);
int sc_col_tiny(cql_result *r, int col);

/* Copies a text column into res; NULL for null (and for "" when empty_is_null). */
const char *sc_col_text(cql_result *r, int col, store_result_hdr *res, size_t *len,
                        bool empty_is_null, bool *oom);

/* ---- messages: scylla_messages.c ---- */

/*
 * Reads the current row (SC_MSG_COLS) into *m. 1 for a usable row, 0 for a
 * partial row to skip, MS_ERR_NOMEM.
 */
int sc_row_msg(cql_result *r, store_result_hdr *res, store_message *m);

/* Reads one message into *m (strings into res). 0, or fails op (NOT_FOUND). */
int sc_get_msg(sc_conn *c, store_op *op, ms_xid ch, uint64_t id, store_result_hdr *res,
               store_message *m);

/* Loads a message into a new message result (op->res). */
int sc_load_message(sc_conn *c, store_op *op, ms_xid ch, uint64_t id, bool duplicate);

/* Whether channel ch is known to have its metadata row; remembers one that has. */
bool sc_known_has(sc_backend *b, ms_xid ch);
void sc_known_add(sc_backend *b, ms_xid ch);

/*
 * How long this process trusts its memory that a (channel, bucket) is listed
 * in channel_buckets. A keyspace dropped and migrated again, truncated or
 * restored from a snapshot under a running process loses listings it
 * remembers; a message written into such a bucket is re-listed by the first
 * insert into the bucket after this long (docs/data-model.md).
 */
#define SC_BUCKET_MEMORY_MS 60000

/* Whether (ch, bucket) is known to be listed in channel_buckets; remembers one that is. */
bool sc_known_listed(sc_backend *b, ms_xid ch, int32_t bucket);
void sc_known_list(sc_backend *b, ms_xid ch, int32_t bucket);

/* The next chunk of the channel's non-empty buckets from `from` (inclusive), one direction. */
int sc_bucket_list(sc_conn *c, store_op *op, ms_xid ch, int32_t from, bool desc, int32_t *out,
                   size_t *n);

/* ---- reactions, pins, ...: scylla_meta.c ---- */

/*
 * Pins (add) or unpins (add NULL) message msg of channel ch with the
 * channel's pin_count, in one conditional batch. *changed: whether anything
 * changed. 0, MS_ERR_CONFLICT at the cap, or fails op.
 */
int sc_pin_cas(sc_conn *c, store_op *op, ms_xid ch, uint64_t msg, const store_pin_entry *add,
               bool *changed);

/* Loads the channel's metadata into a new channel result (op->res). */
int sc_load_channel(sc_conn *c, store_op *op, ms_xid ch);

/* ---- exact counts: scylla_repair.c ---- */

/* False for errors that prove a statement was never sent. */
bool sc_maybe_applied(int code);

/*
 * A row was (or may have been) written and its counter update failed, timed
 * out or was skipped: records the count for the repair and wakes the repair
 * thread. Keeps op's status and detail.
 */
void sc_note_failure(sc_conn *c, store_op *op, int kind, ms_xid ch, int64_t id, const char *emoji);

/* The counter repair's blocking session, connected on first use. 0, or a code with detail. */
int sc_repair_connect(sc_backend *b, char *detail, size_t dlen);

/* One repair pass (store_repair_counts_sync). */
int sc_repair(store_backend *base, store_repair_report *rep, char *detail, size_t dlen);

/* The background repair thread. */
void *sc_repair_main(void *arg);

/* ---- health: scylla_health.c ---- */

/* store_health on c's session: sets op's result. */
void sc_health(sc_conn *c, store_op *op);

/* ---- migrations: scylla_migrate.c ---- */

/*
 * The id format recorded in the keyspace db is connected to (a row of
 * schema_version, scope 'id_format'): 0 with *out; int64 for a keyspace
 * migrated before the format was recorded; MS_ERR_NOT_FOUND for a keyspace
 * without a schema; another negative code with err when it cannot be read.
 */
int sc_id_format(cql_sync *db, const store_config *cfg, ms_id_format *out, char *err,
                 size_t errlen);

/* store__scylla_migrate; *unreachable: no contact point could be reached. */
int sc_migrate(const store_config *cfg, store_migrate_progress_fn progress, void *ctx, int *applied,
               char *err, size_t errlen, bool *unreachable);

/* ---- the operations (store.h's table): sc_op_<label> ---- */

#define SC_OP_DECL(KIND, label, ...) int sc_op_##label(sc_conn *c, store_op *op);
STORE_OPS(SC_OP_DECL)
#undef SC_OP_DECL

#endif /* MSGSTORE_HAVE_CQL_SESSION */

#endif
