/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_internal.h - what the store's files share: the operation record that
 * travels from the API to a backend and back, the backend vtable, result
 * allocation, validation. Nothing here is public.
 *
 * Life of an operation (store.c):
 *   store_X() copies the request into a store_op, validates it (validate.c),
 *   issues the id of an insert, joins an identical read already in flight
 *   (coalescing) or hands the op to the backend (vtable submit). The backend
 *   runs it on its own threads, fills op->status/detail/res/queries and calls
 *   store__op_done() from any thread, after the write is durable. op_done
 *   answers the followers of a coalesced read, then posts each op to its
 *   loop's uv_async_t (or wakes the sync caller).
 */
#ifndef MS_STORE_INTERNAL_H
#define MS_STORE_INTERNAL_H

#include "msgstore/store.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

#include "core/config.h"
#include "core/snowflake.h"

extern const store_migration store__sqlite_migrations[];
extern const size_t store__sqlite_migration_count;
extern const store_migration store__cql_migrations[];
extern const size_t store__cql_migration_count;

#define STORE_DETAIL_LEN 192

typedef struct store_backend store_backend;
typedef struct store_op store_op;
typedef struct store__binding store__binding;
typedef struct store__sync_wait store__sync_wait;

/* Ping's request: none. */
typedef struct store__no_req {
    char unused;
} store__no_req;

/* The request of an operation, copied (strings in op->owned). */
typedef union store_op_req {
    store_insert_req insert;         /* INSERT */
    store_get_req get;               /* GET, DELETE, REACTIONS_GET */
    store_get_telegram_req tg;       /* GET_TELEGRAM */
    store_page_req page;             /* PAGE */
    store_edit_req edit;             /* EDIT */
    store_history_req history;       /* HISTORY */
    store_reaction_req reaction;     /* REACTION_ADD, REACTION_REMOVE */
    store_reaction_users_req users;  /* REACTION_USERS */
    store_pin_req pin;               /* PIN, UNPIN */
    store_channel_req channel;       /* PINS_LIST, CHANNEL_GET, SYNC_GET */
    store_read_req read;             /* READ_SET, READ_GET */
    store_channel_upsert_req upsert; /* CHANNEL_UPSERT */
    store_sync_update_req sync;      /* SYNC_UPDATE */
    store__no_req ping;              /* PING, HEALTH: no request */
    store_search_req search;         /* SEARCH (channel_ids and query in op->owned) */
} store_op_req;

typedef union store_op_cb {
    store_message_cb message;
    store_page_cb page;
    store_history_cb history;
    store_reaction_cb reaction;
    store_reactions_cb reactions;
    store_users_cb users;
    store_pin_cb pin;
    store_pins_cb pins;
    store_read_cb read;
    store_channel_cb channel;
    store_sync_cb sync;
    store_ping_cb ping;
    store_health_cb health;
    store_search_cb search;
} store_op_cb;

/* Calls op's callback with the outcome (each operation's own result type). */
typedef void (*store__op_call)(store_op *op, int status, const char *detail, const void *res);

struct store_op {
    store_op_kind kind;
    store *s;
    store_op_req req;
    char *owned;       /* the request's strings, one allocation */
    ms_xid channel_id; /* channel touched (coalescing, invalidation); none: none */
    uint64_t now_ms;   /* wall clock when the op was accepted */

    /* outcome, set by the backend (or validation) */
    int status;
    char detail[STORE_DETAIL_LEN];
    store_result_hdr *res; /* one reference, owned by this op */
    uint32_t queries;
    bool submitted; /* handed to the backend (counts in the queue depth) */
    bool id_given;  /* insert: the caller chose the id (must not overwrite) */

    /* delivery */
    store__binding *lb;   /* async: the caller's loop */
    store__sync_wait *sw; /* sync: the waiting thread */
    store_op_cb cb;
    store__op_call call; /* async: calls cb */
    void *ud;
    uint64_t t0_ns;

    /* coalescing */
    store_op *followers; /* leader: ops waiting for this one's answer */
    store_op *co_next;   /* chain in the in-flight table or the followers list */
    bool co_leader;      /* in the in-flight table */

    store_op *next; /* queue links (backend queues, binding queue) */
    void *bdata;    /* backend's own use */
};

/* A backend: the vtable plus the backend's state after it. */
typedef struct store_backend_vtbl {
    const char *name;
    /*
     * Takes op and runs it; later calls store__op_done(op) exactly once, from
     * any thread, after a write is durable. Returns 0, or a negative code when
     * the op was not taken (the caller completes it).
     */
    int (*submit)(store_backend *b, store_op *op);
    /* Lets queued work finish (writes commit), stops threads, frees b. */
    void (*close)(store_backend *b);
    /* Adds backend counters to a stats snapshot (may be NULL). */
    void (*stats)(store_backend *b, store_stats *out);
    /* One counter repair pass (may be NULL: nothing to repair). 0 or a code with detail. */
    int (*repair)(store_backend *b, store_repair_report *out, char *detail, size_t dlen);
    /*
     * The loop goes away (store_loop_detach, on its thread): data is what the
     * backend kept in store__op_loop_data for it. May be NULL.
     */
    void (*detach)(store_backend *b, uv_loop_t *loop, void *data);
    /* store_loop_drain (on the loop's thread), data as for detach. May be NULL. */
    void (*drain)(store_backend *b, uv_loop_t *loop, void *data, int64_t deadline_ms);
    /* Test fault injection (may be NULL: MS_ERR_UNPROCESSABLE). */
    int (*inject)(store_backend *b, store_fault fault, int times);
} store_backend_vtbl;

struct store_backend {
    const store_backend_vtbl *vt;
    store *s;
};

/* Opens the SQLite backend (sqlite.c): file, pragmas, migrations, threads. */
int store__sqlite_open(store *s, const store_config *cfg, const store_options *opt,
                       store_backend **out, char *err, size_t errlen);

/* Opens the ScyllaDB backend (scylla.c); MS_ERR_UNAVAILABLE when not built. */
int store__scylla_open(store *s, const store_config *cfg, const store_options *opt,
                       store_backend **out, char *err, size_t errlen);

/* Migrations of each backend (migrate.c, scylla.c). */
int store__sqlite_migrate_path(const char *path, ms_id_format want,
                               store_migrate_progress_fn progress, void *ctx, int *applied,
                               char *err, size_t errlen);
int store__scylla_migrate(const store_config *cfg, store_migrate_progress_fn progress, void *ctx,
                          int *applied, char *err, size_t errlen);

/* 64-bit FNV-1a of a migration's text, as 16 hex digits (+ NUL). */
void store__checksum(const char *text, char out[17]);

/* How a backend looks up, runs and records one migration (migrate.c runs them). */
typedef struct store__migrator {
    void *db;
    /*
     * The checksum recorded for `version` into have: 1 recorded, 0 not, or a
     * negative code with err. SQLite begins the migration's transaction here.
     */
    int (*recorded)(void *db, int version, char have[17], char *err, size_t errlen);
    /* Ends what recorded() began for a migration already applied; may be NULL. */
    void (*skip)(void *db);
    /* Runs m's text and records it with checksum sum; 0 or a code with err. */
    int (*apply)(void *db, const store_migration *m, const char *sum, char *err, size_t errlen);
    /*
     * The channel and user id format recorded with the schema into *have;
     * when none is recorded yet, records one first: int64 when migrations
     * are already recorded (a store made before the format was), else want.
     * 0 or a code with err.
     */
    int (*id_format)(void *db, ms_id_format want, ms_id_format *have, char *err, size_t errlen);
    const char *what; /* the store for messages: "the SQLite file x.db", "keyspace ks" */
} store__migrator;

/*
 * A migration's text for a store of format f: the placeholders of the
 * schema files replaced ("{{id}}": the type of a channel or user id column,
 * SQLite INTEGER or BLOB, CQL bigint or uuid). Checksums are taken over the int64 text, which
 * is the text the files had before the placeholders, so stores migrated
 * before keep theirs. malloc'd; NULL when out of memory.
 */
char *store__migration_text(ms_backend_kind kind, const char *text, ms_id_format f);

/*
 * Refuses a store whose recorded id format is not the configured one: 0 when
 * have == want, else MS_ERR_CONFLICT with a message naming both and the fix.
 */
int store__id_format_check(const char *what, ms_id_format have, ms_id_format want, char *err,
                           size_t errlen);

/*
 * Applies the embedded migrations of `kind` not yet recorded, in order,
 * checking the checksums of those that are. *applied (may be NULL) counts
 * those run. 0 or a code with err.
 */
int store__migrate_run(ms_backend_kind kind, const store__migrator *mg, ms_id_format want,
                       store_migrate_progress_fn progress, void *ctx, int *applied, char *err,
                       size_t errlen);

/* ---- queues: queue.c ---- */

/*
 * A FIFO of operations linked by op->next, with a lock and a condition
 * variable: the backends' work queues and the answers waiting for a loop.
 */
typedef struct store__queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    store_op *head, *tail;
    bool closing;
} store__queue;

void store__queue_init(store__queue *q);
void store__queue_destroy(store__queue *q);

/* Appends op and wakes one waiting taker. */
void store__queue_push(store__queue *q, store_op *op);

/*
 * Takes up to max ops, oldest first, as a list linked by op->next (*n, may be
 * NULL, gets their number). With `wait`, blocks while the queue is empty and
 * not closed. NULL when nothing was taken (with `wait`: closed and empty).
 */
store_op *store__queue_take(store__queue *q, int max, int *n, bool wait);

/*
 * Like store__queue_take with `wait`, but waits at most wait_ms (monotonic):
 * NULL when nothing came meanwhile, so that the taker can tend to something
 * else (the ScyllaDB workers run their CQL session's loop). *closed (may be
 * NULL) is set to true when NULL means closed and empty: time to stop.
 */
store_op *store__queue_take_for(store__queue *q, int max, int *n, int64_t wait_ms, bool *closed);

/* Wakes every taker; waiting takes return NULL once the queue is empty. */
void store__queue_close(store__queue *q);

/* ---- operations: store.c ---- */

/* The backend's answer: completes op (from any thread). */
void store__op_done(store_op *op);

/*
 * The same, on op's loop thread outside any store_* call (a callback of the
 * loop): an async op's callback runs right away instead of through the
 * loop's uv_async_t. (A _sync op is woken as usual.)
 */
void store__op_done_here(store_op *op);

/* Sets op's status and a formatted detail. Returns code. */
int store__op_fail(store_op *op, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The loop an async op was called from (its answer goes there); NULL for a _sync call. */
uv_loop_t *store__op_loop(const store_op *op);

/*
 * The backend's slot for state of op's loop (NULL for a _sync call): read
 * and written on that loop's thread only; handed back to vtbl.detach.
 */
void **store__op_loop_data(store_op *op);

/* True for operations that write. */
bool store__op_is_write(store_op_kind kind);

/* A fresh id from the store's snowflake generator (edit sequence numbers); 0 on clock error. */
uint64_t store__next_id(store *s);

/* The store's configuration and clock. */
const store_config *store__config(const store *s);
uint64_t store__now_ms(const store *s);

/* The text of a channel or user id in s's format (for details), written into buf; returns buf. */
static inline const char *store__xid_text(const store *s, ms_xid id, char buf[MS_XID_STRLEN])
{
    ms_xid_format(store_id_format(s), id, buf);
    return buf;
}

/* The same in a temporary buffer that lives to the end of the enclosing block (printf arguments).
 */
#define STORE_XID(s, id) store__xid_text((s), (id), (char[MS_XID_STRLEN]){0})

/* ---- results: result.c ---- */

/*
 * Allocates a zeroed result of `size` bytes (a store_*_result, starting with
 * its header) with one reference. NULL when out of memory.
 */
void *store__res_new(size_t size);

/*
 * The result of op: a new result of `size` bytes set as op->res (owned by
 * op). NULL when out of memory, op then failed with MS_ERR_NOMEM.
 */
void *store__op_result(store_op *op, size_t size);

/*
 * The answer of a written insert: a message result (op->res) made of op's
 * request, its id and created_ms. 0, or MS_ERR_NOMEM with op failed.
 */
int store__insert_result(store_op *op, uint64_t created_ms);

/* Allocates n bytes owned by the result (freed with it); NULL on OOM. */
void *store__res_alloc(store_result_hdr *res, size_t n);

/* Copies len bytes + NUL into the result; NULL on OOM. s may be NULL (-> NULL). */
char *store__res_strndup(store_result_hdr *res, const char *s, size_t len);

/*
 * Copies a column's text (n bytes; s NULL counts as "") into the result for
 * the backends' row readers: sets *len (may be NULL) to n, and *oom on
 * allocation failure (then returns NULL).
 */
const char *store__res_text(store_result_hdr *res, const char *s, size_t n, size_t *len, bool *oom);

/* Adds a reference (coalesced readers share one result). */
void store__res_ref(store_result_hdr *res);

/* ---- health details: health.c, scylla_health.c ---- */

/*
 * Makes op's result a store_health_result for backend `kind` (owned by op):
 * ok, the backend's name, the binary's schema version, and every table the
 * embedded migrations create (plus schema_version), none marked present yet.
 * NULL when out of memory (op failed).
 */
store_health_result *store__health_result(store_op *op, ms_backend_kind kind);

/* Marks the expected table `name` (len bytes) present; false when it is not expected. */
bool store__health_mark(store_health_result *h, const char *name, size_t len);

/* After the tables were marked: counts the missing ones, a problem when any is. */
void store__health_tables_done(store_health_result *h);

/* Records a problem: ok becomes false; the first one is kept as h->error. */
void store__health_problem(store_health_result *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Copies a string into h's arena ("" for NULL or out of memory). */
const char *store__health_str(store_health_result *h, const char *s, size_t len);

/* ---- search queries and excerpts: search_query.c ---- */

typedef enum store__term_kind {
    STORE__TERM_WORD = 0,   /* word */
    STORE__TERM_PREFIX = 1, /* pre* (text without the stars) */
    STORE__TERM_PHRASE = 2, /* "a phrase" (text without the quotes) */
} store__term_kind;

/* One term of a query; text points into the query string. */
typedef struct store__term {
    store__term_kind kind;
    bool exclude; /* -term */
    const char *text;
    size_t len;
} store__term;

typedef struct store__query {
    store__term t[STORE_SEARCH_TERMS_MAX];
    size_t n;         /* terms */
    size_t npositive; /* terms not excluded (at least 1) */
} store__query;

/*
 * Parses a search query (the syntax of store_search) into q; the terms point
 * into text, which must outlive q. Returns 0 or MS_ERR_INVALID with a
 * sentence in err.
 */
int store__query_parse(const char *text, store__query *q, char *err, size_t errlen);

/*
 * The FTS5 expression of q restricted to `column`: every term a quoted FTS5
 * string. malloc'd (the caller frees it); NULL when out of memory.
 */
char *store__query_fts5(const store__query *q, const char *column);

/* Where an index marks a match in an excerpt (FTS5 snippet(), ts_headline). */
#define STORE__MARK_OPEN    '\x02'
#define STORE__MARK_CLOSE   '\x03'
#define STORE__MARK_OPEN_S  "\x02"
#define STORE__MARK_CLOSE_S "\x03"

/*
 * The HTML form of an excerpt marked with STORE__MARK_*: text escaped, matches
 * in <mark></mark>. Copied into res; NULL when out of memory.
 */
const char *store__snippet_html(store_result_hdr *res, const char *s, size_t n);

/* ---- validation: validate.c ---- */

/*
 * Checks op's request; normalizes limits (STORE_LIMIT_DEFAULT -> default).
 * Returns 0, or fails op (store__op_fail) and returns the code.
 */
int store__validate(store_op *op, const store_config *cfg);

/*
 * Checks that s[0..len) is UTF-8 without NUL, overlong forms, surrogates or
 * code points over U+10FFFF. Returns the number of code points, or -1 and
 * the offending byte offset in *bad.
 */
long store__utf8_count(const char *s, size_t len, size_t *bad);

/* The length in bytes of the first `chars` code points of valid UTF-8 s. */
size_t store__utf8_prefix(const char *s, size_t len, size_t chars);

#endif
