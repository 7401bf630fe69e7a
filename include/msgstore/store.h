/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.h - the message store: one asynchronous API, two backends.
 *
 * Everything the chat platform keeps about messages goes through this header:
 * messages (insert, get, page, edit, soft delete, edit history), the Telegram
 * mapping and sync state, reactions, pins, read positions with unread counts,
 * and denormalized channel metadata. The backend is picked by the
 * configuration: the embedded SQLite file (default) or ScyllaDB/Cassandra
 * (SCYLLA_ENABLED=true, through src/cql). Both behave the same; the
 * conformance suite (tests/integration/test_store_conformance.c) proves it.
 *
 * Identifiers
 *   Channel and user ids (sender, reacting user, reader, pinned_by) are
 *   ms_xid (msgstore/id.h) in the store's format, store_id_format(): UUIDs
 *   or integers 1..2^63-1. The none value {0, 0} means "none" where a field
 *   is optional and is rejected where an id is required, as is an id of the
 *   other format. Message ids are unsigned 64-bit snowflakes in
 *   1..2^63-1 (core/snowflake.h), issued by one generator per store; 0 means
 *   "none". A message's bucket is ms_bucket_of(id) (10 days). Telegram chat
 *   ids are signed (groups are negative) and never 0; Telegram message ids
 *   are >= 1.
 *
 * Two forms of every operation
 *   async: store_X(s, loop, &req, cb, ud). Call it on the thread that runs
 *     `loop`. It copies the request (the caller may free it when the call
 *     returns) and returns 0: cb then runs exactly once, later, on `loop`'s
 *     thread (never from inside store_X). Every outcome, including bad input,
 *     reaches cb. A negative return (MS_ERR_INVALID for NULL arguments,
 *     MS_ERR_SHUTDOWN after store_close began, MS_ERR_NOMEM) means cb will
 *     not run. The first call on a loop binds the store to it (one uv_async_t
 *     handle); call store_loop_detach() before closing that loop.
 *   sync: store_X_sync(s, &req, &res, detail, detail_len) blocks the calling
 *     thread until the operation finished (for the CLI, tests, benchmarks;
 *     never on an event-loop thread). Returns the status; on 0 *res is set
 *     and the caller frees it with store_free().
 *
 * Callbacks
 *   void cb(int status, const char *detail, const T *res, void *ud)
 *   status is 0 or a negative ms_err code (msgstore/error.h). On 0, res is the
 *   result and detail is NULL. On error, res is NULL and detail is a short
 *   English sentence for humans ("content is longer than 4000 characters").
 *   res and detail are valid only until cb returns: identical reads in flight
 *   share one result (request coalescing), so treat it as read-only.
 *
 * Errors (see each operation for specifics)
 *   MS_ERR_INVALID      malformed input: zero/out-of-range id, limit outside
 *                       1..100, invalid UTF-8, NUL bytes, bad JSON, unknown
 *                       enum value. Nothing is written.
 *   MS_ERR_TOO_LARGE    content over the character limit, or attachments /
 *                       metadata over STORE_MAX_JSON_BYTES. Nothing is written.
 *   MS_ERR_NOT_FOUND    the message (or channel, pin, sync state) does not exist.
 *   MS_ERR_CONFLICT     the operation contradicts the stored state (editing a
 *                       deleted message, pinning past STORE_MAX_PINS, an
 *                       explicit id already taken).
 *   MS_ERR_UNAVAILABLE  the backend is unreachable or its queue is full.
 *   MS_ERR_TIMEOUT      the backend did not answer in time; a write may or may
 *                       not have been applied (retrying an insert with the
 *                       same nonce or Telegram ids is safe).
 *   MS_ERR_IO, MS_ERR_INTERNAL, MS_ERR_NOMEM, MS_ERR_SHUTDOWN, MS_ERR_CLOCK.
 *
 * Durability: a write's callback runs only after the write is durable
 * (SQLite: committed and fsynced; ScyllaDB: acknowledged at
 * SCYLLA_WRITE_CONSISTENCY). Reads see every write whose callback ran.
 *
 * Thread safety: every function may be called from any thread, except that
 * an async call must be made on the thread running its loop.
 */
#ifndef MSGSTORE_STORE_H
#define MSGSTORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "msgstore/backend.h"
#include "msgstore/error.h"
#include "msgstore/id.h"
#include "msgstore/store_config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ limits */

#define STORE_PAGE_LIMIT_DEFAULT     50    /* messages per page when limit is STORE_LIMIT_DEFAULT */
#define STORE_PAGE_LIMIT_MAX         100   /* largest page (messages, users, history entries) */
#define STORE_LIMIT_DEFAULT          (-1)  /* "no limit given": use the operation's default */
#define STORE_USERS_LIMIT_DEFAULT    25    /* users per reaction page by default */
#define STORE_UNREAD_CAP             100   /* unread counts are exact below this ("99+") */
#define STORE_MAX_PINS               50    /* pins per channel */
#define STORE_PREVIEW_CHARS          100   /* characters of content kept in a pin's preview */
#define STORE_MAX_NONCE_BYTES        64    /* client nonce: 1..64 bytes of printable ASCII */
#define STORE_MAX_EMOJI_CHARS        16    /* emoji: 1..16 characters, no control chars */
#define STORE_MAX_EMOJI_BYTES        64    /* ...so at most 64 bytes of UTF-8 */
#define STORE_MAX_NAME_CHARS         256   /* channel name: 0..256 characters of UTF-8 */
#define STORE_MAX_CHANNEL_TYPE_BYTES 32    /* channel type: 1..32 bytes [a-z0-9_-] */
#define STORE_MAX_JSON_BYTES         16384 /* attachments, metadata: JSON text up to this size */
#define STORE_ID_MAX                 ((uint64_t)INT64_MAX)

/* ------------------------------------------------------------------ enums */

typedef enum store_msg_type {
    STORE_MSG_TEXT = 0,
    STORE_MSG_IMAGE = 1,
    STORE_MSG_FILE = 2,
    STORE_MSG_VIDEO = 3,
    STORE_MSG_AUDIO = 4,
    STORE_MSG_VOICE = 5,
    STORE_MSG_STICKER = 6,
    STORE_MSG_SYSTEM = 7,
} store_msg_type;
#define STORE_MSG_TYPE_COUNT 8

typedef enum store_msg_source {
    STORE_SRC_WEB = 0,
    STORE_SRC_TELEGRAM = 1,
    STORE_SRC_API = 2,
} store_msg_source;
#define STORE_MSG_SOURCE_COUNT 3

typedef enum store_sync_direction {
    STORE_SYNC_BIDIRECTIONAL = 0,
    STORE_SYNC_TELEGRAM_TO_WEB = 1,
    STORE_SYNC_WEB_TO_TELEGRAM = 2,
} store_sync_direction;
#define STORE_SYNC_DIRECTION_COUNT 3

/* Lower-case names ("text", "telegram", "telegram_to_web"); NULL for values out of range. */
const char *store_msg_type_name(store_msg_type t);
const char *store_msg_source_name(store_msg_source s);
const char *store_sync_direction_name(store_sync_direction d);

/* Parses a name (exact, lower case) into *out. Returns 0 or MS_ERR_INVALID. */
int store_msg_type_parse(const char *name, store_msg_type *out);
int store_msg_source_parse(const char *name, store_msg_source *out);
int store_sync_direction_parse(const char *name, store_sync_direction *out);

/* ------------------------------------------------------------------ lifecycle */

typedef struct store store;

typedef struct store_options {
    int sqlite_readers;   /* SQLite reader threads/connections; 0: 2 */
    int sqlite_batch_max; /* most writes committed in one transaction; 0: 256 */
    int queue_max;        /* queued operations before MS_ERR_UNAVAILABLE; 0: 65536 */
    bool no_migrate;      /* do not create/migrate: fail with MS_ERR_UNAVAILABLE when the
                             schema is not current (production with `msgstore migrate`) */
    bool no_coalesce;     /* disable request coalescing (benchmarks compare) */
    bool no_search_index; /* SQLite: new messages are not indexed for search (benchmarks
                             compare search on and off; never in a real store) */
    /* ScyllaDB counter repair (docs/data-model.md, "Exact counts"): */
    int scylla_repair_settle_ms;   /* how long a count must stay still before it is corrected,
                                      and the age a recorded failure needs; 0: twice
                                      SCYLLA_REQUEST_TIMEOUT. Tests shorten it. */
    int scylla_repair_interval_ms; /* background repair passes; 0: every 60 s; < 0: none
                                      (store_repair_counts_sync only) */
} store_options;

/*
 * Opens the store chosen by cfg (store_config_backend()): the SQLite file
 * cfg->sqlite_path, or the ScyllaDB/Cassandra keyspace cfg->scylla_keyspace
 * (a CQL session per loop that calls it; SCYLLA_MAX_IN_FLIGHT operations in
 * flight). Both are created and migrated when needed unless opt->no_migrate,
 * which instead fails with MS_ERR_UNAVAILABLE when the schema is not the
 * binary's. A cluster that cannot be reached at all is not an error: the
 * store opens, its operations fail with MS_ERR_UNAVAILABLE, and it migrates
 * (or checks the schema) once the cluster answers. opt may be NULL (defaults).
 * cfg (msgstore/store_config.h; store_config_defaults() for a program of its
 * own, the environment for msgstore's) is copied. Starts the backend's threads.
 * On success *out is the store (free with store_close()) and 0 is returned;
 * otherwise a negative code with a message in err (always NUL-terminated;
 * err may be NULL). MS_ERR_UNAVAILABLE when the backend cannot be reached,
 * MS_ERR_IO when the file cannot be opened, MS_ERR_INVALID for settings the
 * backend rejects.
 */
int store_open(const store_config *cfg, const store_options *opt, store **out, char *err,
               size_t errlen);

/*
 * Closes the store: refuses new operations (MS_ERR_SHUTDOWN), lets every
 * queued write commit, joins the threads and frees everything. Call it after
 * every loop was detached and every async callback ran (sync calls in other
 * threads must have returned). NULL is a no-op.
 */
void store_close(store *s);

typedef struct cql_options cql_options; /* msgstore/cql.h */

/*
 * The CQL client's options for cfg's cluster, as the ScyllaDB backend
 * connects: cql_options_init's defaults overridden by the SCYLLA_* settings
 * (contact points, credentials, data centre, timeouts, pool, retry,
 * breaker, speculative reads, reconnection, compression, TLS). The strings
 * point into cfg, which must outlive o until cql_session_new copied them.
 * Only with the cluster backend built in (MSGSTORE_HAVE_CQL_SESSION).
 */
void store_cql_options(const store_config *cfg, cql_options *o);

/*
 * Unbinds `loop` from the store. Call on the loop's thread once no more async
 * calls will be made on it. Callbacks still owed to this loop are delivered
 * first; the loop's uv_async_t handle closes after the last one, so keep
 * running the loop (uv_run until it has no handles) before uv_loop_close().
 * A loop that was never used is a no-op.
 */
void store_loop_detach(store *s, uv_loop_t *loop);

/*
 * Shutdown of `loop` began (on its thread): operations may go on for
 * deadline_ms; then whatever still waits for the database (a node that
 * stopped answering) fails with MS_ERR_SHUTDOWN, and new operations fail at
 * once, so a hung cluster cannot hold the loop past the deadline. No-op for
 * a backend without network requests (SQLite) or a loop never used.
 */
void store_loop_drain(store *s, uv_loop_t *loop, int64_t deadline_ms);

/* "sqlite" or "scylla". */
const char *store_backend_name(const store *s);

/* The format of the store's channel and user ids (recorded with its schema). */
ms_id_format store_id_format(const store *s);

/*
 * Frees a result returned by a *_sync call (any result type). NULL is a
 * no-op. Never call it on a result passed to a callback.
 */
void store_free(const void *result);

/* Every result begins with this header. */
typedef struct store_result_hdr {
    uint32_t queries; /* backend queries (SQL statements or CQL requests) the operation cost */
    void *_priv;      /* owned by the store */
} store_result_hdr;

/* ------------------------------------------------------------------ messages */

/*
 * One message as stored. Strings are NUL-terminated and owned by the result
 * that holds the message.
 */
typedef struct store_message {
    uint64_t id;
    ms_xid channel_id;
    uint32_t bucket; /* ms_bucket_of(id) */
    ms_xid sender_id;
    store_msg_type type;
    store_msg_source source;
    const char *content;     /* UTF-8; "" when deleted */
    size_t content_len;      /* bytes */
    uint64_t reply_to;       /* 0: not a reply */
    const char *attachments; /* JSON array text; NULL: none (cleared on delete) */
    const char *metadata;    /* JSON object text; NULL: none (cleared on delete) */
    const char *nonce;       /* client nonce; NULL: none */
    bool has_telegram;
    int64_t telegram_chat_id;
    int64_t telegram_message_id;
    uint64_t created_at_ms; /* Unix ms, the id's time */
    bool is_edited;
    uint64_t edited_at_ms; /* Unix ms of the last edit; 0: never */
    bool is_deleted;
    uint64_t deleted_at_ms; /* Unix ms; 0: not deleted */
} store_message;

/* Result of insert, get, get_by_telegram, edit, delete. */
typedef struct store_message_result {
    store_result_hdr hdr;
    store_message msg;
    bool duplicate; /* insert: the nonce or Telegram ids matched an earlier message, which is
                       returned; nothing new was written */
} store_message_result;

typedef void (*store_message_cb)(int status, const char *detail, const store_message_result *res,
                                 void *ud);

typedef struct store_insert_req {
    ms_xid channel_id; /* required */
    ms_xid sender_id;  /* required */
    store_msg_type type;
    store_msg_source source;
    const char *content;     /* UTF-8, no NUL; may be empty only when attachments are given */
    size_t content_len;      /* bytes; the limit is in characters (MSGSTORE_MAX_CONTENT_CHARS) */
    uint64_t reply_to;       /* 0: none; not checked for existence */
    const char *attachments; /* NULL or JSON array text (NUL-terminated) */
    const char *metadata;    /* NULL or JSON object text (NUL-terminated) */
    const char *nonce;       /* NULL or a client nonce: the same nonce in the same channel
                                returns the first message (duplicate=true), forever */
    bool has_telegram;       /* telegram_* are set: the same (chat, message) pair yields one
                                message, even when inserted concurrently */
    int64_t telegram_chat_id;
    int64_t telegram_message_id;
    /* Trusted hooks for imports and tests; the HTTP API must not expose them. */
    uint64_t at_ms; /* 0: now. Otherwise the Unix ms the id is made for */
    uint64_t id;    /* 0: generate. Otherwise this exact id (MS_ERR_CONFLICT if taken
                       in the channel); overrides at_ms */
} store_insert_req;

/*
 * Inserts a message: issues its id, writes it to its bucket, registers the
 * bucket in the channel's bucket list, the nonce and the Telegram mapping,
 * and updates the channel metadata (last message id, message count; the
 * channel row is created when missing). Duplicates (same nonce in the channel,
 * or same Telegram ids) return the first message with duplicate=true.
 * Errors: MS_ERR_INVALID, MS_ERR_TOO_LARGE; MS_ERR_CONFLICT for an explicit
 * id already used.
 */
int store_insert(store *s, uv_loop_t *loop, const store_insert_req *req, store_message_cb cb,
                 void *ud);
int store_insert_sync(store *s, const store_insert_req *req, store_message_result **res,
                      char *detail, size_t detail_len);

typedef struct store_get_req {
    ms_xid channel_id;
    uint64_t message_id;
} store_get_req;

/* Gets one message (also a deleted one, flagged). MS_ERR_NOT_FOUND when absent. */
int store_get(store *s, uv_loop_t *loop, const store_get_req *req, store_message_cb cb, void *ud);
int store_get_sync(store *s, const store_get_req *req, store_message_result **res, char *detail,
                   size_t detail_len);

typedef struct store_get_telegram_req {
    int64_t telegram_chat_id;
    int64_t telegram_message_id;
} store_get_telegram_req;

/*
 * Gets the message stored for a Telegram message: one lookup in the mapping,
 * one in messages. MS_ERR_NOT_FOUND when unknown.
 */
int store_get_by_telegram(store *s, uv_loop_t *loop, const store_get_telegram_req *req,
                          store_message_cb cb, void *ud);
int store_get_by_telegram_sync(store *s, const store_get_telegram_req *req,
                               store_message_result **res, char *detail, size_t detail_len);

/* ------------------------------------------------------------------ pages */

typedef enum store_page_mode {
    STORE_PAGE_LATEST = 0, /* the newest messages */
    STORE_PAGE_BEFORE = 1, /* the newest messages with id < anchor */
    STORE_PAGE_AFTER = 2,  /* the oldest messages with id > anchor */
    STORE_PAGE_AROUND = 3, /* the anchor (if it exists) and the messages on both sides */
} store_page_mode;

typedef struct store_page_req {
    ms_xid channel_id;
    store_page_mode mode;
    uint64_t anchor; /* message id for BEFORE/AFTER/AROUND (need not exist); ignored for LATEST */
    int limit;       /* 1..100, or STORE_LIMIT_DEFAULT for 50 */
} store_page_req;

/*
 * A page. Ordering, for every mode: newest first (descending id), so every
 * page renders the same way.
 *   LATEST: the `limit` newest messages.
 *   BEFORE: the `limit` newest messages older than anchor (scroll up).
 *   AFTER:  the `limit` OLDEST messages newer than anchor (scroll down), so
 *           consecutive AFTER pages are contiguous; still returned newest first.
 *   AROUND: up to limit/2 messages older than anchor, and up to
 *           limit - limit/2 messages at or after it (the anchor itself first
 *           when it exists); when one side runs short the other is not topped
 *           up.
 * more_older / more_newer say whether messages exist beyond the page on that
 * side; they are computed in the paging direction only: LATEST and BEFORE set
 * more_older, AFTER sets more_newer, AROUND sets both (the other is false).
 * Deleted messages appear flagged is_deleted with empty content. A channel
 * without messages (unknown channel included) gives an empty page. Paging
 * crosses bucket boundaries, skips empty buckets through the channel's list of
 * non-empty buckets, and stops at the channel's first bucket; the number of
 * queries per page does not grow with the number of empty buckets.
 */
typedef struct store_page_result {
    store_result_hdr hdr;
    store_message *items;
    size_t count;
    bool more_older;
    bool more_newer;
} store_page_result;

typedef void (*store_page_cb)(int status, const char *detail, const store_page_result *res,
                              void *ud);

/* Reads a page. Identical pages in flight share one backend read. */
int store_page(store *s, uv_loop_t *loop, const store_page_req *req, store_page_cb cb, void *ud);
int store_page_sync(store *s, const store_page_req *req, store_page_result **res, char *detail,
                    size_t detail_len);

/* ------------------------------------------------------------------ edit, delete */

typedef struct store_edit_req {
    ms_xid channel_id;
    uint64_t message_id;
    const char *content; /* new content: same rules as insert (non-empty) */
    size_t content_len;
} store_edit_req;

/*
 * Replaces a message's content: sets is_edited and edited_at, and keeps the
 * previous content in the edit history. Editing to the same content still
 * records an edit. Returns the updated message. MS_ERR_NOT_FOUND; MS_ERR_CONFLICT
 * for a deleted message; MS_ERR_INVALID / MS_ERR_TOO_LARGE for the content.
 */
int store_edit(store *s, uv_loop_t *loop, const store_edit_req *req, store_message_cb cb, void *ud);
int store_edit_sync(store *s, const store_edit_req *req, store_message_result **res, char *detail,
                    size_t detail_len);

/*
 * Soft-deletes a message: is_deleted, deleted_at, content "" and attachments
 * and metadata cleared (the row stays, so pages show it as deleted and no
 * tombstones pile up). Its pin, if any, is removed; edit history is purged.
 * Deleting a deleted message succeeds and changes nothing. Returns the
 * deleted message. MS_ERR_NOT_FOUND when absent.
 */
int store_delete(store *s, uv_loop_t *loop, const store_get_req *req, store_message_cb cb,
                 void *ud);
int store_delete_sync(store *s, const store_get_req *req, store_message_result **res, char *detail,
                      size_t detail_len);

typedef struct store_history_req {
    ms_xid channel_id;
    uint64_t message_id;
    int limit; /* 1..100, or STORE_LIMIT_DEFAULT for 50 */
} store_history_req;

typedef struct store_edit_entry {
    uint64_t edited_at_ms; /* when this content was replaced */
    const char *content;   /* the content before that edit */
    size_t content_len;
} store_edit_entry;

/* A message's previous contents, newest replacement first. */
typedef struct store_history_result {
    store_result_hdr hdr;
    store_edit_entry *items;
    size_t count;
} store_history_result;

typedef void (*store_history_cb)(int status, const char *detail, const store_history_result *res,
                                 void *ud);

/* Reads the edit history. MS_ERR_NOT_FOUND when the message does not exist. */
int store_edit_history(store *s, uv_loop_t *loop, const store_history_req *req, store_history_cb cb,
                       void *ud);
int store_edit_history_sync(store *s, const store_history_req *req, store_history_result **res,
                            char *detail, size_t detail_len);

/* ------------------------------------------------------------------ reactions */

typedef struct store_reaction_req {
    ms_xid channel_id;
    uint64_t message_id;
    const char *emoji; /* 1..64 bytes of UTF-8, no control characters */
    ms_xid user_id;
} store_reaction_req;

typedef struct store_reaction_result {
    store_result_hdr hdr;
    bool changed;   /* add: the reaction was new; remove: it existed */
    uint64_t count; /* users with this emoji on the message afterwards */
} store_reaction_result;

typedef void (*store_reaction_cb)(int status, const char *detail, const store_reaction_result *res,
                                  void *ud);

/*
 * Adds or removes one user's reaction. Idempotent per (message, emoji, user):
 * a repeated add or remove changes nothing (changed=false). The count moves
 * only when a reaction row was created or removed, so it stays exact under
 * duplicates, concurrency and retries. MS_ERR_NOT_FOUND when the message does
 * not exist; MS_ERR_CONFLICT when adding to a deleted message.
 */
int store_reaction_add(store *s, uv_loop_t *loop, const store_reaction_req *req,
                       store_reaction_cb cb, void *ud);
int store_reaction_add_sync(store *s, const store_reaction_req *req, store_reaction_result **res,
                            char *detail, size_t detail_len);
int store_reaction_remove(store *s, uv_loop_t *loop, const store_reaction_req *req,
                          store_reaction_cb cb, void *ud);
int store_reaction_remove_sync(store *s, const store_reaction_req *req, store_reaction_result **res,
                               char *detail, size_t detail_len);

typedef struct store_reaction_count {
    const char *emoji;
    uint64_t count;
} store_reaction_count;

typedef struct store_reactions_result {
    store_result_hdr hdr;
    store_reaction_count *items; /* emoji with count > 0, in byte order of the emoji */
    size_t count;
} store_reactions_result;

typedef void (*store_reactions_cb)(int status, const char *detail,
                                   const store_reactions_result *res, void *ud);

/* Counts per emoji of one message (empty when none, or unknown message). */
int store_reactions_get(store *s, uv_loop_t *loop, const store_get_req *req, store_reactions_cb cb,
                        void *ud);
int store_reactions_get_sync(store *s, const store_get_req *req, store_reactions_result **res,
                             char *detail, size_t detail_len);

typedef struct store_reaction_users_req {
    ms_xid channel_id;
    uint64_t message_id;
    const char *emoji;
    ms_xid after_user_id; /* none: from the start */
    int limit;            /* 1..100, or STORE_LIMIT_DEFAULT for 25 */
} store_reaction_users_req;

typedef struct store_users_result {
    store_result_hdr hdr;
    ms_xid *user_ids; /* ascending (ms_xid_cmp); pass the last as after_user_id for the next page */
    size_t count;
    bool more; /* users exist after the last one */
} store_users_result;

typedef void (*store_users_cb)(int status, const char *detail, const store_users_result *res,
                               void *ud);

/* Users who reacted with one emoji, by ascending user id. */
int store_reaction_users(store *s, uv_loop_t *loop, const store_reaction_users_req *req,
                         store_users_cb cb, void *ud);
int store_reaction_users_sync(store *s, const store_reaction_users_req *req,
                              store_users_result **res, char *detail, size_t detail_len);

/* ------------------------------------------------------------------ pins */

typedef struct store_pin_req {
    ms_xid channel_id;
    uint64_t message_id;
    ms_xid pinned_by; /* required for pin; ignored for unpin */
} store_pin_req;

typedef struct store_pin_entry {
    ms_xid channel_id;
    uint64_t message_id;
    ms_xid pinned_by;
    uint64_t pinned_at_ms;
    const char *content_preview; /* the first STORE_PREVIEW_CHARS characters at pin time */
    ms_xid sender_id;
} store_pin_entry;

typedef struct store_pin_result {
    store_result_hdr hdr;
    store_pin_entry pin;
    bool duplicate; /* pin: the message was already pinned (the existing pin is returned) */
} store_pin_result;

typedef void (*store_pin_cb)(int status, const char *detail, const store_pin_result *res, void *ud);

/*
 * Pins a message (idempotent: pinning a pinned message returns the existing
 * pin, duplicate=true). MS_ERR_NOT_FOUND for an unknown message;
 * MS_ERR_CONFLICT for a deleted message or a channel with STORE_MAX_PINS pins
 * (the cap holds when pins race: one of two pins for the last place gets it);
 * MS_ERR_UNAVAILABLE when the channel's pins keep changing too fast to apply
 * it (ScyllaDB, after 16 tries: retry).
 */
int store_pin(store *s, uv_loop_t *loop, const store_pin_req *req, store_pin_cb cb, void *ud);
int store_pin_sync(store *s, const store_pin_req *req, store_pin_result **res, char *detail,
                   size_t detail_len);

/* Unpins; returns the removed pin. MS_ERR_NOT_FOUND when it was not pinned. */
int store_unpin(store *s, uv_loop_t *loop, const store_pin_req *req, store_pin_cb cb, void *ud);
int store_unpin_sync(store *s, const store_pin_req *req, store_pin_result **res, char *detail,
                     size_t detail_len);

typedef struct store_channel_req {
    ms_xid channel_id;
} store_channel_req;

typedef struct store_pins_result {
    store_result_hdr hdr;
    store_pin_entry *items; /* newest pin first; at most STORE_MAX_PINS */
    size_t count;
} store_pins_result;

typedef void (*store_pins_cb)(int status, const char *detail, const store_pins_result *res,
                              void *ud);

/* Lists a channel's pins, newest first (empty for an unknown channel). */
int store_pins_list(store *s, uv_loop_t *loop, const store_channel_req *req, store_pins_cb cb,
                    void *ud);
int store_pins_list_sync(store *s, const store_channel_req *req, store_pins_result **res,
                         char *detail, size_t detail_len);

/* ------------------------------------------------------------------ read positions */

typedef struct store_read_req {
    ms_xid channel_id;
    ms_xid user_id;
    uint64_t message_id; /* set only: the last message read (need not exist) */
} store_read_req;

typedef struct store_read_result {
    store_result_hdr hdr;
    uint64_t last_read_id; /* 0: never read */
    uint64_t updated_at_ms;
    bool moved;            /* set: the position advanced (false: it was already at/after) */
    uint32_t unread_count; /* get: messages newer than last_read_id, not deleted, exact when
                              < STORE_UNREAD_CAP, else STORE_UNREAD_CAP */
    bool unread_capped;    /* get: at least STORE_UNREAD_CAP unread ("99+") */
} store_read_result;

typedef void (*store_read_cb)(int status, const char *detail, const store_read_result *res,
                              void *ud);

/*
 * Sets (channel, user)'s last read message; it never moves backwards (an
 * older id leaves it, moved=false). Returns the effective position; the
 * unread fields are not computed (0).
 */
int store_read_set(store *s, uv_loop_t *loop, const store_read_req *req, store_read_cb cb,
                   void *ud);
int store_read_set_sync(store *s, const store_read_req *req, store_read_result **res, char *detail,
                        size_t detail_len);

/*
 * Gets (channel, user)'s position and unread count (message_id ignored). The
 * count reads at most STORE_UNREAD_CAP rows, never the whole history. A user
 * who never read the channel has last_read_id 0 and every message unread.
 */
int store_read_get(store *s, uv_loop_t *loop, const store_read_req *req, store_read_cb cb,
                   void *ud);
int store_read_get_sync(store *s, const store_read_req *req, store_read_result **res, char *detail,
                        size_t detail_len);

/* ------------------------------------------------------------------ channel metadata */

typedef struct store_channel_upsert_req {
    ms_xid channel_id;
    const char
        *name; /* NULL: keep (new channel: ""); UTF-8 up to STORE_MAX_NAME_CHARS characters */
    const char *type;       /* NULL: keep (new channel: "channel"); [a-z0-9_-]{1,32} */
    uint64_t created_at_ms; /* 0: keep (new channel: now); otherwise set it */
} store_channel_upsert_req;

typedef struct store_channel {
    ms_xid channel_id;
    const char *name;
    const char *type;
    uint64_t created_at_ms;
    uint64_t last_message_id; /* 0: no message yet */
    uint64_t message_count;   /* messages inserted (deleted ones included) */
    uint64_t updated_at_ms;
} store_channel;

typedef struct store_channel_result {
    store_result_hdr hdr;
    store_channel channel;
} store_channel_result;

typedef void (*store_channel_cb)(int status, const char *detail, const store_channel_result *res,
                                 void *ud);

/* Creates or updates a channel's metadata; returns the stored row. */
int store_channel_upsert(store *s, uv_loop_t *loop, const store_channel_upsert_req *req,
                         store_channel_cb cb, void *ud);
int store_channel_upsert_sync(store *s, const store_channel_upsert_req *req,
                              store_channel_result **res, char *detail, size_t detail_len);

/*
 * Gets a channel's metadata (kept current by inserts). MS_ERR_NOT_FOUND when
 * the channel was never upserted nor received a message.
 */
int store_channel_get(store *s, uv_loop_t *loop, const store_channel_req *req, store_channel_cb cb,
                      void *ud);
int store_channel_get_sync(store *s, const store_channel_req *req, store_channel_result **res,
                           char *detail, size_t detail_len);

/* ------------------------------------------------------------------ Telegram sync state */

typedef struct store_sync_update_req {
    ms_xid channel_id;
    int64_t telegram_chat_id;       /* non-zero */
    int64_t last_synced_message_id; /* >= 0; never moves backwards */
    store_sync_direction direction;
} store_sync_update_req;

typedef struct store_sync_state {
    ms_xid channel_id;
    int64_t telegram_chat_id;
    int64_t last_synced_message_id;
    store_sync_direction direction;
    uint64_t last_sync_at_ms; /* time of the last update */
    uint64_t created_at_ms;
} store_sync_state;

typedef struct store_sync_result {
    store_result_hdr hdr;
    store_sync_state state;
} store_sync_result;

typedef void (*store_sync_cb)(int status, const char *detail, const store_sync_result *res,
                              void *ud);

/*
 * Records a sync: sets chat id and direction, advances last_synced_message_id
 * to max(stored, given), stamps last_sync_at. Returns the stored state.
 */
int store_sync_update(store *s, uv_loop_t *loop, const store_sync_update_req *req, store_sync_cb cb,
                      void *ud);
int store_sync_update_sync(store *s, const store_sync_update_req *req, store_sync_result **res,
                           char *detail, size_t detail_len);

/* Gets a channel's sync state. MS_ERR_NOT_FOUND when it never synced. */
int store_sync_get(store *s, uv_loop_t *loop, const store_channel_req *req, store_sync_cb cb,
                   void *ud);
int store_sync_get_sync(store *s, const store_channel_req *req, store_sync_result **res,
                        char *detail, size_t detail_len);

/* ------------------------------------------------------------------ search */

#define STORE_SEARCH_QUERY_MAX_BYTES 512 /* longest query text */
#define STORE_SEARCH_TERMS_MAX       16  /* words, phrases and exclusions in one query */
#define STORE_SEARCH_CHANNELS_MAX    50  /* channels one search may name */
#define STORE_SEARCH_LIMIT_DEFAULT   20  /* hits per page when limit is STORE_LIMIT_DEFAULT */

typedef enum store_search_sort {
    STORE_SEARCH_NEWEST = 0,    /* newest first (descending id): pages with `before` */
    STORE_SEARCH_RELEVANCE = 1, /* best match first (BM25 / ts_rank), then newest */
} store_search_sort;

typedef struct store_search_req {
    const ms_xid *channel_ids; /* 1..STORE_SEARCH_CHANNELS_MAX channels (copied) */
    size_t nchannels;
    const char *query; /* NUL-terminated UTF-8, 1..STORE_SEARCH_QUERY_MAX_BYTES bytes:
                          words, "quoted phrases", prefix*, -excluded (see store_search) */
    uint64_t before;   /* 0: none; otherwise only messages with id < before */
    int limit;         /* 1..100, or STORE_LIMIT_DEFAULT for 20 */
    store_search_sort sort;
} store_search_req;

/* One hit: the message as stored and an excerpt of its content. */
typedef struct store_search_hit {
    store_message msg;
    const char *snippet; /* excerpt of the content, HTML-escaped (&amp; &lt; &gt; &quot;
                            &#39;), each match wrapped in <mark>...</mark>, "…" where cut */
    double score;        /* relevance, higher is better (comparable within one result) */
} store_search_hit;

typedef struct store_search_result {
    store_result_hdr hdr;
    store_search_hit *items;
    size_t count;
    bool more; /* more hits beyond this page (NEWEST: older ones, ask with before = the
                  last hit's id) */
} store_search_result;

typedef void (*store_search_cb)(int status, const char *detail, const store_search_result *res,
                                void *ud);

/*
 * Full-text search over the content of the messages of some channels.
 * Query syntax, terms separated by white space, all of them required:
 *   word        messages containing the word (case and accents ignored)
 *   "a phrase"  the words next to each other, in this order
 *   pre*        a word starting with "pre"
 *   -word, -"a phrase"  messages NOT containing it (needs at least one
 *               positive term)
 * Terms without a letter or digit ("-", "&") are ignored. The query text
 * never reaches the index's own syntax: each term is quoted.
 * An edit re-indexes a message, a delete removes it: a deleted message is
 * never a hit. SQLite: an FTS5 index in the same file, written in the
 * writer's transaction, so a message is found as soon as its insert
 * returned. ScyllaDB: answered by the search provider (the PostgreSQL
 * indexer, src/search/) when one is attached (store_set_search_provider),
 * otherwise MS_ERR_UNPROCESSABLE; its index may lag the writes.
 * Errors: MS_ERR_INVALID for a malformed query (empty, longer than
 * STORE_SEARCH_QUERY_MAX_BYTES, an unbalanced quote, more than
 * STORE_SEARCH_TERMS_MAX terms, no positive term, invalid UTF-8), no
 * channel, too many channels, a bad id or limit.
 */
int store_search(store *s, uv_loop_t *loop, const store_search_req *req, store_search_cb cb,
                 void *ud);
int store_search_sync(store *s, const store_search_req *req, store_search_result **res,
                      char *detail, size_t detail_len);

/*
 * The ScyllaDB backend's search change log (table search_log, migration
 * 004): with MSGSTORE_SEARCH_PG_URL set, every insert, edit and delete
 * writes an entry (shard, seq, channel_id, message_id, kind, version)
 * together with the change (docs/data-model.md, "Search"); the indexer of
 * src/search/ drains it into PostgreSQL. shard = store_search_shard(channel,
 * MSGSTORE_SEARCH_SHARDS); seq is a snowflake of the write; version is the
 * time (Unix ms) the message state the entry announces was made: an insert's
 * created_at, an edit's edited_at, a delete's deleted_at.
 */
#define STORE_SEARCH_LOG_INSERT 1
#define STORE_SEARCH_LOG_EDIT   2
#define STORE_SEARCH_LOG_DELETE 3

/* The change-log shard of a channel: 0..shards-1, stable across processes. */
int store_search_shard(ms_xid channel_id, int shards);

/*
 * A search provider answers store_search for a backend without an index of
 * its own (ScyllaDB): src/search/ attaches the PostgreSQL one. submit takes
 * the job on the caller's thread (never block there) and later, from any
 * thread, adds the hits (store_search_job_add) and ends it with
 * store_search_job_done, exactly once.
 */
typedef struct store_search_job store_search_job;

typedef struct store_search_provider {
    void (*submit)(void *ctx, store_search_job *job);
    void *ctx;
} store_search_provider;

/*
 * Attaches p (copied) to s, or detaches with NULL. Set it before the first
 * search and detach only once no search is in flight (before store_close).
 */
void store_set_search_provider(store *s, const store_search_provider *p);

/* The job's request (validated: channels 1..50, a parsed query, limit 1..100). */
const store_search_req *store_search_job_req(const store_search_job *job);

/*
 * Adds a hit: m (its strings are copied), the excerpt `marked` (len bytes,
 * matches between STORE_SEARCH_MARK_OPEN and STORE_SEARCH_MARK_CLOSE, made
 * HTML here) and its score. 0 or MS_ERR_NOMEM.
 */
#define STORE_SEARCH_MARK_OPEN  "\x02"
#define STORE_SEARCH_MARK_CLOSE "\x03"
int store_search_job_add(store_search_job *job, const store_message *m, const char *marked,
                         size_t len, double score);

/* Ends the job: status 0 (with `more`), or a code and a detail for the caller. */
void store_search_job_done(store_search_job *job, int status, bool more, const char *detail);

/*
 * The PostgreSQL form of a query: the tsquery expression over parameters
 * $first.. (text-search configuration in $cfg_param), each parameter a term's
 * text for plainto_tsquery/phraseto_tsquery/to_tsquery. On 0, *expr (malloc'd)
 * and params[0..*nparams) (malloc'd strings) are the caller's to free.
 * MS_ERR_INVALID with a detail for a bad query, MS_ERR_NOMEM.
 */
int store_search_query_pg(const char *query, int cfg_param, int first, char **expr, char **params,
                          int *nparams, char *detail, size_t dlen);

/* ------------------------------------------------------------------ health, stats */

typedef struct store_ping_result {
    store_result_hdr hdr;
    uint64_t latency_us; /* round trip of the probe query */
    const char *backend; /* "sqlite" or "scylla" */
    int schema_version;  /* highest migration applied */
} store_ping_result;

typedef void (*store_ping_cb)(int status, const char *detail, const store_ping_result *res,
                              void *ud);

/*
 * Runs a trivial query through the read path (readiness). MS_ERR_UNAVAILABLE
 * or MS_ERR_TIMEOUT when the backend does not answer.
 */
int store_ping(store *s, uv_loop_t *loop, store_ping_cb cb, void *ud);
int store_ping_sync(store *s, store_ping_result **res, char *detail, size_t detail_len);

/* One table the schema expects, and whether the database has it. */
typedef struct store_health_table {
    const char *name;
    bool present;
} store_health_table;

/* One key and value of a map (a keyspace's replication). */
typedef struct store_health_pair {
    const char *key;
    const char *value;
} store_health_pair;

/* A cluster host as the store's CQL client sees it (ScyllaDB backend). */
typedef struct store_health_host {
    const char *address;         /* "127.0.0.1" */
    int port;                    /* 9042 */
    const char *dc;              /* "datacenter1"; "" while unknown */
    const char *rack;            /* "" while unknown */
    const char *release_version; /* the server's, "" while unknown */
    const char *state;           /* "up": a connection is ready; "down": none is (the client
                                    keeps trying); "unused": a remote DC the client does not
                                    connect to (SCYLLA_ALLOW_REMOTE_DC=false) */
    bool up;                     /* state is "up" */
    bool local;                  /* in the local DC */
    const char *breaker;         /* the host's circuit breaker: "closed", "open", "half_open" */
    int connections;             /* ready connections of the session that ran the check */
    int sessions_up;             /* the store's CQL sessions with a ready connection to it */
    int64_t in_flight;           /* requests in flight to it, over all the store's sessions */
} store_health_host;

/*
 * Details of the backend (store_health). Everything points into the result.
 * Fields of the other backend are zero/NULL.
 */
typedef struct store_health_result {
    store_result_hdr hdr;
    const char *backend; /* "sqlite" or "scylla" */
    bool ok;             /* reachable, schema current, every table present; ScyllaDB: every
                            host the client connects to up, their breakers closed, one schema
                            version */
    const char *error;   /* the first problem found, for humans; NULL when ok */
    uint64_t latency_us; /* time the check took */
    int schema_version;  /* highest migration applied; -1 when it could not be read */
    int schema_expected; /* the binary's highest migration */
    const store_health_table *tables; /* every table the schema expects, in migration order */
    size_t ntables;
    size_t tables_missing; /* of those, not present (all of them when unreadable) */
    bool tables_checked;   /* false: the table list could not be read */

    /* SQLite */
    const char *path;         /* the database file */
    const char *journal_mode; /* "wal" */
    uint64_t size_bytes;      /* page_count * page_size */

    /* ScyllaDB / Cassandra */
    const char *keyspace;
    bool keyspace_found;                  /* system_schema.keyspaces has it */
    const store_health_pair *replication; /* its replication map ("class", then per DC) */
    size_t nreplication;
    const store_health_host *hosts; /* every host known to the client, in its order */
    size_t nhosts;
    size_t hosts_up;      /* hosts in state "up" */
    size_t hosts_down;    /* hosts in state "down" */
    const char *local_dc; /* the client's local DC ("" while unknown) */
    const char *breaker;  /* the client as a whole: "closed" when some host it may use has a
                             closed breaker, "half_open" when the best one is half-open,
                             "open" when every one is open (requests fail fast) */
    size_t breakers_open; /* hosts whose breaker is open or half-open */
    int schema_versions;  /* distinct schema versions among the hosts not known to be down
                             (1: agreement); 0 when it could not be read */
} store_health_result;

typedef void (*store_health_cb)(int status, const char *detail, const store_health_result *res,
                                void *ud);

/*
 * Inspects the backend for /health and operators, through the read path like
 * store_ping but with a few more queries (SQLite: pragmas and sqlite_master;
 * ScyllaDB: system_schema.keyspaces, system_schema.tables, system.local and
 * system.peers, plus what the CQL session knows of the hosts). A backend that
 * does not answer is not an error of this call: the result says so (ok false,
 * error set, what could not be read marked unknown), so an outage still shows
 * the hosts and breakers. Non-zero status only when no result could be made
 * (MS_ERR_SHUTDOWN, MS_ERR_NOMEM, MS_ERR_UNAVAILABLE for a full queue).
 * Same calling rules as every operation (see the top of this file); the
 * _sync result is freed with store_free().
 */
int store_health(store *s, uv_loop_t *loop, store_health_cb cb, void *ud);
int store_health_sync(store *s, store_health_result **res, char *detail, size_t detail_len);

/*
 * The table of store operations: one row per operation, in the order of
 * store_op_kind. It generates the enum below, the operations' names, the
 * public calls and their _sync twins (store.c) and each backend's array of
 * operation functions (no backend dispatches a second time). Columns:
 *   KIND, label     STORE_OP_KIND and its name (store_op_name, the "op" label of metrics)
 *   fn              the public calls store_<fn>() and store_<fn>_sync()
 *   shape, req      REQ and the request type, or NOREQ (ping, health: no request)
 *   member          the request's member of the store's private request union
 *   cb, cbm, res    the callback type, its member of the callback union, the result type
 *   chan            CHAN: the request's channel_id is the channel touched; NOCHAN: none (a
 *                   search may name several channels: it invalidates and coalesces nothing)
 *   W, C            1 for an operation that writes; 1 for a read that may be coalesced
 */
#define STORE_OPS(X)                                                                               \
    X(INSERT, insert, insert, REQ, store_insert_req, insert, store_message_cb, message,            \
      store_message_result, CHAN, 1, 0)                                                            \
    X(GET, get, get, REQ, store_get_req, get, store_message_cb, message, store_message_result,     \
      CHAN, 0, 1)                                                                                  \
    X(GET_TELEGRAM, get_telegram, get_by_telegram, REQ, store_get_telegram_req, tg,                \
      store_message_cb, message, store_message_result, NOCHAN, 0, 0)                               \
    X(PAGE, page, page, REQ, store_page_req, page, store_page_cb, page, store_page_result, CHAN,   \
      0, 1)                                                                                        \
    X(EDIT, edit, edit, REQ, store_edit_req, edit, store_message_cb, message,                      \
      store_message_result, CHAN, 1, 0)                                                            \
    X(DELETE, delete, delete, REQ, store_get_req, get, store_message_cb, message,                  \
      store_message_result, CHAN, 1, 0)                                                            \
    X(HISTORY, history, edit_history, REQ, store_history_req, history, store_history_cb, history,  \
      store_history_result, CHAN, 0, 1)                                                            \
    X(REACTION_ADD, reaction_add, reaction_add, REQ, store_reaction_req, reaction,                 \
      store_reaction_cb, reaction, store_reaction_result, CHAN, 1, 0)                              \
    X(REACTION_REMOVE, reaction_remove, reaction_remove, REQ, store_reaction_req, reaction,        \
      store_reaction_cb, reaction, store_reaction_result, CHAN, 1, 0)                              \
    X(REACTIONS_GET, reactions_get, reactions_get, REQ, store_get_req, get, store_reactions_cb,    \
      reactions, store_reactions_result, CHAN, 0, 1)                                               \
    X(REACTION_USERS, reaction_users, reaction_users, REQ, store_reaction_users_req, users,        \
      store_users_cb, users, store_users_result, CHAN, 0, 1)                                       \
    X(PIN, pin, pin, REQ, store_pin_req, pin, store_pin_cb, pin, store_pin_result, CHAN, 1, 0)     \
    X(UNPIN, unpin, unpin, REQ, store_pin_req, pin, store_pin_cb, pin, store_pin_result, CHAN, 1,  \
      0)                                                                                           \
    X(PINS_LIST, pins_list, pins_list, REQ, store_channel_req, channel, store_pins_cb, pins,       \
      store_pins_result, CHAN, 0, 1)                                                               \
    X(READ_SET, read_set, read_set, REQ, store_read_req, read, store_read_cb, read,                \
      store_read_result, CHAN, 1, 0)                                                               \
    X(READ_GET, read_get, read_get, REQ, store_read_req, read, store_read_cb, read,                \
      store_read_result, CHAN, 0, 0)                                                               \
    X(CHANNEL_UPSERT, channel_upsert, channel_upsert, REQ, store_channel_upsert_req, upsert,       \
      store_channel_cb, channel, store_channel_result, CHAN, 1, 0)                                 \
    X(CHANNEL_GET, channel_get, channel_get, REQ, store_channel_req, channel, store_channel_cb,    \
      channel, store_channel_result, CHAN, 0, 1)                                                   \
    X(SYNC_UPDATE, sync_update, sync_update, REQ, store_sync_update_req, sync, store_sync_cb,      \
      sync, store_sync_result, CHAN, 1, 0)                                                         \
    X(SYNC_GET, sync_get, sync_get, REQ, store_channel_req, channel, store_sync_cb, sync,          \
      store_sync_result, CHAN, 0, 1)                                                               \
    X(PING, ping, ping, NOREQ, store__no_req, ping, store_ping_cb, ping, store_ping_result,        \
      NOCHAN, 0, 0)                                                                                \
    X(HEALTH, health, health, NOREQ, store__no_req, ping, store_health_cb, health,                 \
      store_health_result, NOCHAN, 0, 0)                                                           \
    X(SEARCH, search, search, REQ, store_search_req, search, store_search_cb, search,              \
      store_search_result, NOCHAN, 0, 0)

/* Operations counted by store_stats(), also the "op" label of the metrics. */
#define STORE__OP_ENUM(KIND, ...) STORE_OP_##KIND,
typedef enum store_op_kind { STORE_OPS(STORE__OP_ENUM) } store_op_kind;
#undef STORE__OP_ENUM
#define STORE__OP_ONE(...) +1
#define STORE_OP_COUNT     (0 STORE_OPS(STORE__OP_ONE))

/* "insert", "page", ... ; NULL out of range. */
const char *store_op_name(store_op_kind op);

typedef struct store_op_stats {
    uint64_t calls;     /* operations completed (errors included) */
    uint64_t errors;    /* completed with a negative status */
    uint64_t queries;   /* backend queries issued */
    uint64_t coalesced; /* calls answered by another call's query */
} store_op_stats;

typedef struct store_stats {
    store_op_stats ops[STORE_OP_COUNT];
    uint64_t queue_depth;    /* operations waiting for the backend now */
    uint64_t write_batches;  /* SQLite: transactions committed by the writer */
    uint64_t batched_writes; /* SQLite: writes committed in those transactions */
} store_stats;

/*
 * Copies the store's counters since store_open. The same numbers are exported
 * as Prometheus metrics (msgstore_store_ops_total{backend,op},
 * msgstore_store_errors_total, msgstore_store_queries_total,
 * msgstore_store_coalesced_total, msgstore_store_op_duration_seconds,
 * msgstore_store_queue_depth, msgstore_store_write_batch_size). Never fails.
 */
void store_get_stats(const store *s, store_stats *out);

/* ------------------------------------------------------------------ exact counts */

/* What one repair pass did (store_repair_counts_sync). */
typedef struct store_repair_report {
    uint32_t checked; /* recorded counts examined in this pass */
    uint32_t fixed;   /* counters corrected to their rows */
    uint32_t clean;   /* counters found exact: their records were dropped */
    uint32_t pending; /* records left: not yet due, still moving, leased by another
                         instance, failed to be written, or a query failed */
} store_repair_report;

/*
 * Runs one pass of the ScyllaDB backend's counter repair now, on the calling
 * thread: every recorded counter failure (a reaction count or a bucket's
 * message count whose counter update failed or timed out after its row was
 * written) older than the settle time is recounted from its rows; the counter
 * is corrected by the difference only when counter and rows stayed still for
 * the settle time (so a write in flight is never mistaken for a loss). Blocks
 * at least the settle time when there is work. The same pass runs in the
 * background every scylla_repair_interval_ms. SQLite counts are transactional:
 * nothing to do. *out (may be NULL) receives the report. Returns 0 or a
 * negative code with a message in detail (may be NULL).
 */
int store_repair_counts_sync(store *s, store_repair_report *out, char *detail, size_t dlen);

/* Faults a test can inject into the ScyllaDB backend (a real server cannot be told to fail). */
typedef enum store_fault {
    STORE_FAULT_COUNTER_LOST = 1,    /* the next counter update is not sent; it fails (timeout) */
    STORE_FAULT_COUNTER_APPLIED = 2, /* the next counter update is applied, then reported as
                                        timed out */
    STORE_FAULT_LWT_APPLIED = 3,     /* the next reaction add/remove transaction is applied, then
                                        reported as timed out */
    STORE_FAULT_EDIT_RACE = 4,       /* another writer deletes the message the next edit is
                                        editing, between the edit's read and its write */
    STORE_FAULT_SLOW_INSERT = 5,     /* the next insert waits 1 s between claiming its nonce or
                                        Telegram ids and writing the message */
} store_fault;
#define STORE_FAULT_LAST STORE_FAULT_SLOW_INSERT

/*
 * Test hook: the next `times` statements of that kind, run by any operation
 * of this store, fail as described (the repair's own statements are never
 * affected). times = 0 clears. Returns 0, MS_ERR_INVALID for a bad argument,
 * or MS_ERR_UNPROCESSABLE when the backend has no such statements (SQLite).
 * The HTTP API must not expose it.
 */
int store_inject_fault(store *s, store_fault fault, int times);

/* ------------------------------------------------------------------ migrations */

typedef struct store_migration {
    int version;      /* NNN of the file name */
    const char *name; /* file name, e.g. "001_initial.sql" */
    const char *text; /* statements, separated by ';' at line ends */
} store_migration;

/*
 * The migrations embedded in the binary at build time (schema/sqlite and
 * schema/cql), ascending by version. *n receives the count. Never fails.
 */
const store_migration *store_migrations(ms_backend_kind backend, size_t *n);

/* Progress callback of store_migrate: one call per migration (applied=false: skipped). */
typedef void (*store_migrate_progress_fn)(const store_migration *m, bool applied,
                                          uint64_t elapsed_ms, void *ctx);

/*
 * Applies every embedded migration not yet recorded in the backend's
 * schema_version table, in order, recording each (version, name, checksum,
 * applied_at). Running it twice is a no-op. A migration already recorded with
 * a different checksum is reported as MS_ERR_CONFLICT (the file changed after
 * it was applied) and nothing further is applied. For ScyllaDB the keyspace is
 * created first with cfg->scylla_replication. progress may be NULL. *applied
 * (may be NULL) receives the number of migrations applied now. Returns 0 or a
 * negative code with a message in err.
 */
int store_migrate(const store_config *cfg, store_migrate_progress_fn progress, void *ctx,
                  int *applied, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
