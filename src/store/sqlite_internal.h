/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sqlite_internal.h - what the SQLite backend's files share: a connection
 * with its prepared statements, and the operations run on it.
 */
#ifndef MS_STORE_SQLITE_INTERNAL_H
#define MS_STORE_SQLITE_INTERNAL_H

#include "store_internal.h"

#include <sqlite3.h>

/* Every statement the backend runs, prepared once per connection. */
#define SQ_MSG_COLS                                                                                \
    "channel_id, message_id, sender_id, type, source, content, reply_to, attachments, metadata, "  \
    "nonce, telegram_chat_id, telegram_message_id, created_at, is_edited, edited_at, is_deleted, " \
    "deleted_at"
#define SQ_PIN_COLS "channel_id, message_id, pinned_by, pinned_at, content_preview, sender_id"

/*
 * A search in one channel (?1), the content expression ?2 (store__query_fts5),
 * ids below ?3: the channel token intersects the match
 * in the index, the message comes from its primary key. Columns: SQ_MSG_COLS, snippet, rank.
 */
#define SQ_SEARCH_SELECT                                                                           \
    "SELECT m.channel_id, m.message_id, m.sender_id, m.type, m.source, m.content, m.reply_to, "    \
    "m.attachments, m.metadata, m.nonce, m.telegram_chat_id, m.telegram_message_id, "              \
    "m.created_at, m.is_edited, m.edited_at, m.is_deleted, m.deleted_at, "                         \
    "snippet(message_search, 0, char(2), char(3), '…', 16), message_search.rank "                \
    "FROM message_search CROSS JOIN messages m "                                                   \
    "ON m.channel_id=?1 AND m.message_id=message_search.rowid "                                    \
    "WHERE message_search MATCH 'channel : \"c' || hex(?1) || '\" AND ' || ?2 "                    \
    "AND message_search.rowid<?3 AND m.is_deleted=0 "

#define SQ_STATEMENTS(X)                                                                           \
    X(MSG_GET, "SELECT " SQ_MSG_COLS " FROM messages WHERE channel_id=?1 AND message_id=?2")       \
    X(MSG_STATE, "SELECT is_deleted FROM messages WHERE channel_id=?1 AND message_id=?2")          \
    X(MSG_INSERT,                                                                                  \
      "INSERT INTO messages(channel_id, bucket, message_id, sender_id, type, source, content, "    \
      "reply_to, attachments, metadata, nonce, telegram_chat_id, telegram_message_id, "            \
      "created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)")           \
    X(TG_CLAIM,                                                                                    \
      "INSERT INTO telegram_message_mapping(telegram_chat_id, telegram_message_id, channel_id, "   \
      "message_id, created_at) VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING")                 \
    X(TG_GET, "SELECT channel_id, message_id FROM telegram_message_mapping "                       \
              "WHERE telegram_chat_id=?1 AND telegram_message_id=?2")                              \
    X(NONCE_CLAIM, "INSERT INTO message_nonces(channel_id, nonce, message_id, created_at) "        \
                   "VALUES(?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING")                                \
    X(NONCE_GET, "SELECT message_id FROM message_nonces WHERE channel_id=?1 AND nonce=?2")         \
    X(BUCKET_ADD,                                                                                  \
      "INSERT INTO channel_buckets(channel_id, bucket) VALUES(?1, ?2) ON CONFLICT DO NOTHING")     \
    X(META_TOUCH,                                                                                  \
      "INSERT INTO channel_metadata(channel_id, created_at, last_message_id, message_count, "      \
      "updated_at) VALUES(?1, ?2, ?3, 1, ?4) ON CONFLICT(channel_id) DO UPDATE SET "               \
      "last_message_id=max(last_message_id, excluded.last_message_id), "                           \
      "message_count=message_count+1, updated_at=excluded.updated_at")                             \
    X(PAGE_LATEST, "SELECT " SQ_MSG_COLS " FROM messages WHERE channel_id=?1 "                     \
                   "ORDER BY message_id DESC LIMIT ?2")                                            \
    X(PAGE_BEFORE, "SELECT " SQ_MSG_COLS " FROM messages WHERE channel_id=?1 AND message_id<?2 "   \
                   "ORDER BY message_id DESC LIMIT ?3")                                            \
    X(PAGE_AFTER, "SELECT " SQ_MSG_COLS " FROM messages WHERE channel_id=?1 AND message_id>?2 "    \
                  "ORDER BY message_id ASC LIMIT ?3")                                              \
    X(PAGE_FROM, "SELECT " SQ_MSG_COLS " FROM messages WHERE channel_id=?1 AND message_id>=?2 "    \
                 "ORDER BY message_id ASC LIMIT ?3")                                               \
    X(EDIT_SEQ, "SELECT coalesce(max(seq), 0) + 1 FROM message_edits "                             \
                "WHERE channel_id=?1 AND message_id=?2")                                           \
    X(EDIT_SAVE, "INSERT INTO message_edits(channel_id, message_id, edited_at, seq, content) "     \
                 "VALUES(?1, ?2, ?3, ?4, ?5)")                                                     \
    X(EDIT_APPLY, "UPDATE messages SET content=?3, is_edited=1, edited_at=?4 "                     \
                  "WHERE channel_id=?1 AND message_id=?2")                                         \
    X(DELETE_APPLY,                                                                                \
      "UPDATE messages SET content='', attachments=NULL, metadata=NULL, is_deleted=1, "            \
      "deleted_at=?3 WHERE channel_id=?1 AND message_id=?2")                                       \
    X(EDITS_PURGE, "DELETE FROM message_edits WHERE channel_id=?1 AND message_id=?2")              \
    X(HISTORY, "SELECT edited_at, content FROM message_edits WHERE channel_id=?1 AND "             \
               "message_id=?2 ORDER BY seq DESC LIMIT ?3")                                         \
    X(REACT_ADD, "INSERT INTO message_reactions(channel_id, message_id, emoji, user_id, "          \
                 "created_at) VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING")                  \
    X(REACT_DEL, "DELETE FROM message_reactions WHERE channel_id=?1 AND message_id=?2 AND "        \
                 "emoji=?3 AND user_id=?4")                                                        \
    X(COUNT_INC, "INSERT INTO message_reaction_counts(channel_id, message_id, emoji, count) "      \
                 "VALUES(?1, ?2, ?3, 1) ON CONFLICT DO UPDATE SET count=count+1 RETURNING count")  \
    X(COUNT_DEC, "UPDATE message_reaction_counts SET count=count-1 WHERE channel_id=?1 AND "       \
                 "message_id=?2 AND emoji=?3 RETURNING count")                                     \
    X(COUNT_GET, "SELECT count FROM message_reaction_counts WHERE channel_id=?1 AND "              \
                 "message_id=?2 AND emoji=?3")                                                     \
    X(COUNT_ZAP, "DELETE FROM message_reaction_counts WHERE channel_id=?1 AND message_id=?2 AND "  \
                 "emoji=?3 AND count<=0")                                                          \
    X(COUNTS_LIST, "SELECT emoji, count FROM message_reaction_counts WHERE channel_id=?1 AND "     \
                   "message_id=?2 AND count>0 ORDER BY emoji")                                     \
    X(USERS, "SELECT user_id FROM message_reactions WHERE channel_id=?1 AND message_id=?2 AND "    \
             "emoji=?3 AND user_id>?4 ORDER BY user_id LIMIT ?5")                                  \
    X(PIN_GET, "SELECT " SQ_PIN_COLS " FROM pinned_messages WHERE channel_id=?1 AND "              \
               "message_id=?2")                                                                    \
    X(PIN_COUNT, "SELECT count(*) FROM pinned_messages WHERE channel_id=?1")                       \
    X(PIN_ADD, "INSERT INTO pinned_messages(channel_id, message_id, pinned_at, pinned_by, "        \
               "content_preview, sender_id) VALUES(?1, ?2, ?3, ?4, ?5, ?6)")                       \
    X(PIN_DEL, "DELETE FROM pinned_messages WHERE channel_id=?1 AND message_id=?2")                \
    X(PINS_LIST, "SELECT " SQ_PIN_COLS " FROM pinned_messages WHERE channel_id=?1 "                \
                 "ORDER BY pinned_at DESC, message_id DESC LIMIT ?2")                              \
    X(READ_SET,                                                                                    \
      "INSERT INTO message_read_positions(channel_id, user_id, last_read_id, updated_at) "         \
      "VALUES(?1, ?2, ?3, ?4) ON CONFLICT DO UPDATE SET last_read_id=excluded.last_read_id, "      \
      "updated_at=excluded.updated_at "                                                            \
      "WHERE excluded.last_read_id > message_read_positions.last_read_id")                         \
    X(READ_GET, "SELECT last_read_id, updated_at FROM message_read_positions "                     \
                "WHERE channel_id=?1 AND user_id=?2")                                              \
    X(UNREAD, "SELECT count(*) FROM (SELECT 1 FROM messages WHERE channel_id=?1 AND "              \
              "message_id>?2 AND is_deleted=0 LIMIT ?3)")                                          \
    X(CHAN_UPSERT,                                                                                 \
      "INSERT INTO channel_metadata(channel_id, name, type, created_at, updated_at) "              \
      "VALUES(?1, coalesce(?2, ''), coalesce(?3, 'channel'), ?4, ?5) ON CONFLICT DO UPDATE SET "   \
      "name=coalesce(?2, name), type=coalesce(?3, type), "                                         \
      "created_at=CASE WHEN ?6 THEN excluded.created_at ELSE created_at END, "                     \
      "updated_at=excluded.updated_at")                                                            \
    X(CHAN_GET, "SELECT channel_id, name, type, created_at, last_message_id, message_count, "      \
                "updated_at FROM channel_metadata WHERE channel_id=?1")                            \
    X(SYNC_UPSERT,                                                                                 \
      "INSERT INTO telegram_sync_state(channel_id, telegram_chat_id, last_synced_message_id, "     \
      "direction, last_sync_at, created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT DO "        \
      "UPDATE SET telegram_chat_id=excluded.telegram_chat_id, "                                    \
      "last_synced_message_id=max(last_synced_message_id, excluded.last_synced_message_id), "      \
      "direction=excluded.direction, last_sync_at=excluded.last_sync_at")                          \
    X(SYNC_GET, "SELECT channel_id, telegram_chat_id, last_synced_message_id, direction, "         \
                "last_sync_at, created_at FROM telegram_sync_state WHERE channel_id=?1")           \
    X(PING, "SELECT coalesce(max(version), 0) FROM schema_version")                                \
    X(SEARCH_NEWEST, SQ_SEARCH_SELECT "ORDER BY message_search.rowid DESC LIMIT ?4")               \
    X(SEARCH_RELEVANCE, SQ_SEARCH_SELECT "ORDER BY message_search.rank LIMIT ?4")                  \
    X(SEARCH_ADD, "INSERT INTO message_search(rowid, content, channel) "                           \
                  "VALUES(?1, ?2, 'c' || hex(?3))")                                                \
    X(SEARCH_HAS, "SELECT 1 FROM message_search WHERE rowid=?1")

#define SQ_ENUM(name, sql) SQ_##name,
typedef enum sq_stmt_id { SQ_STATEMENTS(SQ_ENUM) SQ_NSTMT } sq_stmt_id;
#undef SQ_ENUM

/* A new message's search index row, written at the end of its batch (sqlite_search.c). */
typedef struct sq_index_row {
    uint64_t id;
    ms_xid channel_id;
    const char *content; /* the insert request's: valid until the op is done */
    size_t len;
} sq_index_row;

typedef struct sq_conn {
    sqlite3 *db;
    ms_id_format id_format; /* how channel and user ids are bound (sqlite_ops.c) */
    sqlite3_stmt *stmt[SQ_NSTMT];
    uint32_t queries;   /* statements run for the current op */
    bool rollback;      /* the current op wrote something that must be undone (duplicate) */
    bool no_index;      /* the writer keeps no search index (store_options.no_search_index) */
    sq_index_row *pend; /* the writer: index rows of the batch's inserts, not written yet */
    size_t npend, cappend;
} sq_conn;

/*
 * Opens (creating when `create`) the database file with msgstore's pragmas:
 * WAL, synchronous=FULL, busy timeout. Returns 0 or a negative code with a
 * message in err.
 */
int store__sq_open_db(const char *path, bool create, sqlite3 **out, char *err, size_t errlen);

/*
 * Applies pending migrations to db (schema_version table). Returns 0 or a
 * negative code with a message in err.
 */
int store__sq_migrate_db(sqlite3 *db, const char *path, ms_id_format want,
                         store_migrate_progress_fn progress, void *ctx, int *applied, char *err,
                         size_t errlen);

/*
 * The id format recorded in db (table store_settings, written by the first
 * migration run) into *out: 0; int64 for a store migrated before the format
 * was recorded; MS_ERR_NOT_FOUND for a database without a schema;
 * MS_ERR_INVALID for an unknown value.
 */
int store__sq_id_format(sqlite3 *db, ms_id_format *out);

/* The highest migration version recorded in db (0: none), or a negative code. */
int store__sq_schema_version(sqlite3 *db);

/*
 * Marks the store at path in use for as long as *fd stays open (a shared
 * flock; sqlite_backup.c): `msgstore restore` refuses a file so
 * held. The flock is on PATH-lock, a file of its own. Fails with MS_ERR_UNAVAILABLE while a restore
 * holds it, MS_ERR_IO.
 */
int store__sq_hold(const char *path, int *fd, char *err, size_t errlen);

/*
 * Returns statement id reset and with its bindings cleared, preparing it on
 * first use, and counts one query. NULL when preparing failed.
 */
sqlite3_stmt *store__sq_stmt(sq_conn *c, sq_stmt_id id);

/*
 * Binds a channel or user id as the store's format keeps it (a 16-byte BLOB
 * for uuid, an INTEGER for int64), and reads one back (either storage).
 * Every id bind and read of the SQLite backend goes through these two.
 */
void store__sq_bind_xid(const sq_conn *c, sqlite3_stmt *st, int i, ms_xid v);
void store__sq_bind_xid_as(ms_id_format f, sqlite3_stmt *st, int i, ms_xid v); /* any sqlite3 */
ms_xid store__sq_col_xid(sqlite3_stmt *st, int col);

/* Finalizes c's statements and closes its database. */
void store__sq_conn_close(sq_conn *c);

/*
 * Runs op on c. The caller holds a transaction (writes: the writer's batch,
 * inside a savepoint; reads: a read transaction). Sets op->status, detail,
 * res. Never blocks on anything but SQLite.
 */
void store__sq_run(sq_conn *c, store_op *op);

/* Reads a row of SQ_MSG_COLS (from column 0) into *m, strings into res. 0 or MS_ERR_NOMEM. */
int store__sq_col_msg(sqlite3_stmt *st, store_result_hdr *res, store_message *m);

/* Fails op with the store code of SQLite's rc and "what: <SQLite's message>". Returns it. */
int store__sq_fail(sq_conn *c, store_op *op, int rc, const char *what);

/* store_search on c, inside a read transaction (sqlite_search.c). */
void store__sq_search(sq_conn *c, store_op *op);

/*
 * The writer indexes new messages at the end of their batch, not row by row
 * (sqlite_search.c, "why"): store__sq_index_later queues message id's row
 * (content is borrowed from the insert request), after checking that an id
 * the caller chose is not already in the index under another channel (fails
 * op with MS_ERR_CONFLICT, or MS_ERR_NOMEM). store__sq_index_flush writes the
 * queued rows and empties the queue: 0, or an SQLite result code (the batch
 * must then be rolled back). Both are no-ops when c->no_index.
 */
int store__sq_index_later(sq_conn *c, store_op *op, uint64_t id, ms_xid ch, const char *content,
                          size_t len, bool check);
int store__sq_index_flush(sq_conn *c);

/*
 * After migration `name` ran in db's open transaction: the C part of it, if
 * any (002_search.sql indexes the messages already stored, logging progress).
 * 0 or a negative code with a message in err.
 */
int store__sq_migration_step(sqlite3 *db, const char *name, char *err, size_t errlen);

/* The health check (store_health) on c, inside a read transaction (sqlite_health.c). */
void store__sq_health(sq_conn *c, store_op *op);

#endif
