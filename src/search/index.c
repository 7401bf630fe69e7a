/* SPDX-License-Identifier: Apache-2.0 */
/*
 * index.c - the search index of the ScyllaDB backend (search.h): the indexer
 * that drains the change log into PostgreSQL, and the provider that answers
 * store_search from it.
 *
 * Why the indexer is correct (docs/data-model.md, "Search"):
 *   - an acknowledged insert has its log entry (same batch, acknowledged
 *     only when every statement of it was applied); an acknowledged edit or
 *     delete wrote its entry before the change; an entry whose insert failed
 *     finds no message and, once older than the settle time, changes nothing;
 *   - entries of a shard are applied in seq order by the one instance that
 *     holds the shard's advisory lock, each from the message's state read
 *     after the entry, which is at least as new as the change it announces
 *     (the entry's version) or, when older than the settle time, whatever the
 *     store holds (the change failed);
 *   - index rows and the shard's checkpoint commit in one PostgreSQL
 *     transaction; upserts never replace a newer version. Dying anywhere
 *     replays entries after the checkpoint, which changes nothing twice.
 */
#include "search/search.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/snowflake.h"
#include "msgstore/cql.h"
#include "search/pg.h"

#define DRAIN_BATCH        256 /* log entries read and applied per shard per round */
#define QUERY_THREADS      2   /* provider threads, each with its own connection */
#define LOCK_SPACE_SALT    0x5ea4c8
#define RECONNECT_MS       500
#define QUERY_IDLE_TICK_MS 50 /* an idle query thread turns its loop this often */

typedef struct log_entry {
    int64_t seq;
    ms_xid channel_id;
    uint64_t message_id;
    int kind;
    int64_t version;
} log_entry;

/* ---- the entries applied above a shard's checkpoint (sorted seqs) ---- */

typedef struct seqset {
    int64_t *v;
    size_t n, cap;
} seqset;

typedef struct job_node {
    store_search_job *job;
    struct job_node *next;
} job_node;

struct search_index {
    ms_config cfg;
    store *st;
    int32_t lock_key; /* advisory lock space of this keyspace */
    char t_index[160], t_ckpt[160];
    char tsconfig[MS_CONFIG_STR + 64]; /* the text-search configuration in use */
    int64_t settle_ms;
    const char *fault; /* MSGSTORE_SEARCH_FAULT (tests): "kill_before_index" */

    /* indexer */
    pthread_t thread;
    bool started;
    cql_sync *db;
    uv_loop_t loop; /* the indexer's reads of messages, in flight together */
    bool loop_ok;
    cql_prepared *p_read, *p_trim;
    PGconn *pg;
    bool *held;
    int64_t *oldest_ms; /* per shard: time of the oldest waiting entry; 0: none */
    uint32_t *waiting;  /* per shard: entries seen waiting */
    seqset *applied;    /* per shard: entries applied above the checkpoint (committed) */
    int64_t *ckpt;      /* per shard: its checkpoint, read once the lock is held */
    bool *ckpt_known;   /* per shard: ckpt read since the lock was taken */

    pthread_mutex_t mu; /* guards the status fields and the stop flag */
    pthread_cond_t cv;
    _Atomic bool stop;
    bool connected;
    char error[256];
    uint64_t rounds; /* drain rounds completed */
    uint64_t idle_rounds;
    _Atomic uint64_t indexed;

    /* provider */
    pthread_t qthreads[QUERY_THREADS];
    int nq;
    job_node *jobs_head, *jobs_tail;
    bool qstop;
    pthread_mutex_t qmu;
    pthread_cond_t qcv;

    ms_histogram *m_delay; /* seconds from a change to its index row */
    ms_counter *m_indexed; /* changes applied */
};

static int64_t now_ms(void)
{
    return (int64_t)ms_clock_realtime_ms(NULL);
}

static void set_error(search_index *x, bool connected, const char *msg)
{
    pthread_mutex_lock(&x->mu);
    if (msg && *msg && strcmp(x->error, msg) != 0)
        MS_WARN("search", "%s", msg);
    x->connected = connected;
    snprintf(x->error, sizeof x->error, "%s", msg ? msg : "");
    pthread_mutex_unlock(&x->mu);
}

/* Sleeps ms unless asked to stop (turning the CQL session's loop first); true when stopping. */
static bool nap(search_index *x, int64_t ms)
{
    if (x->db)
        cql_sync_run_for(x->db, 0);
    if (x->loop_ok)
        uv_run(&x->loop, UV_RUN_NOWAIT); /* its session's heartbeats and reconnections */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&x->mu);
    while (!x->stop && pthread_cond_timedwait(&x->cv, &x->mu, &ts) == 0)
        ;
    bool stop = x->stop;
    pthread_mutex_unlock(&x->mu);
    return stop;
}

/* ------------------------------------------------------------------ the change log */

/* Reads up to DRAIN_BATCH entries of shard after seq into out; count, or -1 (err set). */
static int read_log(search_index *x, int shard, int64_t after, log_entry *out, char *err,
                    size_t errlen)
{
    cql_values v;
    cql_values_init(&v);
    cql_values_add_int(&v, shard);
    cql_values_add_bigint(&v, after);
    cql_values_add_int(&v, DRAIN_BATCH);
    cql_statement st;
    cql_statement_init(&st);
    st.prepared = x->p_read;
    st.values = &v;
    st.consistency = (int)x->cfg.store.scylla_read_consistency;
    cql_result *r = NULL;
    cql_status cs;
    int rc = cql_sync_execute(x->db, &st, &r, &cs);
    cql_values_free(&v);
    if (rc != 0 || !r) {
        snprintf(err, errlen, "reading the change log: %s", cs.message);
        return -1;
    }
    int n = 0;
    while (n < DRAIN_BATCH && cql_result_next_row(r) == 0) {
        int64_t ch = 0, id = 0, ver = 0;
        int32_t kind = 0;
        uint8_t chu[16];
        cql_row_get_bigint(r, 0, &out[n].seq);
        bool is_uuid = cql_row_get_uuid(r, 1, chu) == 0; /* uuid stores; else bigint */
        if (!is_uuid)
            cql_row_get_bigint(r, 1, &ch);
        cql_row_get_bigint(r, 2, &id);
        cql_row_get_int(r, 3, &kind);
        cql_row_get_bigint(r, 4, &ver);
        out[n].channel_id = is_uuid ? ms_xid_from_bytes(chu) : ms_xid_int((uint64_t)ch);
        out[n].message_id = (uint64_t)id;
        out[n].kind = kind;
        out[n].version = ver;
        n++;
    }
    cql_result_destroy(r);
    return n;
}

/* Removes the entries of shard up to seq (applied); a failure only leaves them to expire. */
static void trim_log(search_index *x, int shard, int64_t upto)
{
    cql_values v;
    cql_values_init(&v);
    cql_values_add_int(&v, shard);
    cql_values_add_bigint(&v, upto);
    cql_statement st;
    cql_statement_init(&st);
    st.prepared = x->p_trim;
    st.values = &v;
    st.idempotent = true;
    cql_status cs;
    if (cql_sync_execute(x->db, &st, NULL, &cs) != 0)
        MS_DEBUG("search", "trimming the change log of shard %d: %s", shard, cs.message);
    cql_values_free(&v);
}

/* ------------------------------------------------------------------ PostgreSQL */

static PGresult *pq(search_index *x, const char *sql, int n, const char *const *vals)
{
    return PQexecParams(x->pg, sql, n, NULL, vals, NULL, NULL, 0);
}

static bool pq_ok(PGresult *r)
{
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

static void drop_pg(search_index *x, const char *why)
{
    if (x->pg)
        PQfinish(x->pg);
    x->pg = NULL;
    for (int i = 0; i < x->cfg.store.search_shards; i++) {
        x->held[i] = false; /* the session's advisory locks went with it */
        x->waiting[i] = 0;
        x->applied[i].n = 0; /* what the aborted transaction applied is not in the index */
        x->ckpt_known[i] = false;
    }
    set_error(x, false, why);
}

static int64_t checkpoint(search_index *x, int shard, bool *ok)
{
    char sql[320], sh[16];
    snprintf(sql, sizeof sql, "SELECT seq FROM %s WHERE shard = $1", x->t_ckpt);
    snprintf(sh, sizeof sh, "%d", shard);
    const char *v[] = {sh};
    PGresult *r = pq(x, sql, 1, v);
    *ok = pq_ok(r);
    int64_t seq = *ok && PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return seq;
}

/* One entry's message as the store answered (read concurrently with the batch's others). */
typedef struct msg_state {
    int rc;          /* 0, MS_ERR_NOT_FOUND, or the store's error (detail) */
    store_message m; /* on 0: the fields apply() uses; content malloc'd */
    char detail[192];
    int *left; /* reads still in flight */
} msg_state;

static char *dup_str(const char *v, size_t n, bool *oom)
{
    if (!v)
        return NULL;
    char *c = malloc(n + 1);
    if (!c) {
        *oom = true;
        return NULL;
    }
    memcpy(c, v, n);
    c[n] = '\0';
    return c;
}

/* Keeps a get's answer in g: res is valid only during the callback, so its strings are copied. */
static void keep_got(msg_state *g, int status, const char *detail, const store_message_result *res)
{
    g->rc = status;
    if (status == 0) {
        const store_message *m = &res->msg;
        bool oom = false;
        g->m = *m;
        g->m.content = dup_str(m->content ? m->content : "", m->content_len, &oom);
        g->m.attachments =
            dup_str(m->attachments, m->attachments ? strlen(m->attachments) : 0, &oom);
        g->m.metadata = dup_str(m->metadata, m->metadata ? strlen(m->metadata) : 0, &oom);
        g->m.nonce = dup_str(m->nonce, m->nonce ? strlen(m->nonce) : 0, &oom);
        if (oom) {
            g->rc = MS_ERR_NOMEM;
            snprintf(g->detail, sizeof g->detail, "out of memory");
        }
    } else {
        snprintf(g->detail, sizeof g->detail, "%s",
                 detail && *detail ? detail : ms_err_name(status));
    }
}

static void on_got(int status, const char *detail, const store_message_result *res, void *ud)
{
    msg_state *g = ud;
    keep_got(g, status, detail, res);
    (*g->left)--;
}

#define READS_IN_FLIGHT 64

/*
 * Reads the messages reqs[0, n) (but not those with skip[i] set) into out[i]
 * (free with free_got), READS_IN_FLIGHT at a time on loop, a loop of the
 * calling thread's own (NULL: one after the other). The indexer and the
 * query threads read many messages at once: one at a time, a round at 200
 * changes/s and a search of 20 hits spent most of their time waiting.
 */
static void read_messages(store *st, uv_loop_t *loop, const store_get_req *reqs, const bool *skip,
                          int n, msg_state *out)
{
    int left = 0;
    for (int i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].rc = MS_ERR_UNAVAILABLE;
        out[i].left = &left;
        if (skip && skip[i])
            continue;
        if (!loop) {
            store_message_result *res = NULL;
            char detail[192] = "";
            int rc = store_get_sync(st, &reqs[i], &res, detail, sizeof detail);
            keep_got(&out[i], rc, detail, res);
            store_free(res);
            continue;
        }
        while (left >= READS_IN_FLIGHT)
            uv_run(loop, UV_RUN_ONCE);
        left++;
        int rc = store_get(st, loop, &reqs[i], on_got, &out[i]);
        if (rc) {
            left--;
            out[i].rc = rc;
            snprintf(out[i].detail, sizeof out[i].detail, "%s", ms_err_name(rc));
        }
    }
    while (left > 0)
        uv_run(loop, UV_RUN_ONCE);
}

static void free_got(msg_state *g, int n)
{
    for (int i = 0; i < n; i++) {
        free((char *)g[i].m.content);
        free((char *)g[i].m.attachments);
        free((char *)g[i].m.metadata);
        free((char *)g[i].m.nonce);
        memset(&g[i].m, 0, sizeof g[i].m);
    }
}

/*
 * What the index must hold for an entry, from its message as read after
 * the entry (g): *row true (upsert g->m) or false (delete). Returns 1 when
 * the state is at least the entry's version, 0 when it is not visible yet,
 * -1 on a store error.
 */
static int current(search_index *x, const log_entry *e, const msg_state *g, bool *row)
{
    *row = false;
    if (g->rc == MS_ERR_NOT_FOUND)
        return e->kind == STORE_SEARCH_LOG_INSERT ? 0 : 1; /* never written, or written later */
    if (g->rc != 0) {
        set_error(x, x->connected, g->detail);
        return -1;
    }
    const store_message *m = &g->m;
    *row = !m->is_deleted && m->content_len > 0;
    switch (e->kind) {
    case STORE_SEARCH_LOG_EDIT:
        return m->is_deleted || (int64_t)m->edited_at_ms >= e->version;
    case STORE_SEARCH_LOG_DELETE:
        return m->is_deleted;
    default:
        return 1;
    }
}

/* Applies one entry's state inside the open transaction; false on a PostgreSQL error. */
static bool apply(search_index *x, const log_entry *e, const store_message *m, bool row, char *err,
                  size_t errlen)
{
    char ch[MS_XID_STRLEN], id[24], sender[MS_XID_STRLEN], created[24], ver[24], sql[1024];
    ms_xid_format(store_id_format(x->st), e->channel_id, ch);
    snprintf(id, sizeof id, "%" PRId64, (int64_t)e->message_id);
    PGresult *r;
    if (row) {
        ms_xid_format(store_id_format(x->st), m->sender_id, sender);
        snprintf(created, sizeof created, "%" PRIu64, m->created_at_ms);
        snprintf(ver, sizeof ver, "%" PRIu64, m->is_edited ? m->edited_at_ms : m->created_at_ms);
        snprintf(sql, sizeof sql,
                 "INSERT INTO %s AS i (channel_id, message_id, sender_id, created_at, version, "
                 "content, tsv) VALUES ($1, $2, $3, $4, $5, $6, to_tsvector($7::regconfig, $6)) "
                 "ON CONFLICT (channel_id, message_id) DO UPDATE SET sender_id = "
                 "excluded.sender_id, version = excluded.version, content = excluded.content, "
                 "tsv = excluded.tsv WHERE i.version <= excluded.version",
                 x->t_index);
        const char *v[] = {ch, id, sender, created, ver, m->content, x->tsconfig};
        r = pq(x, sql, 7, v);
    } else {
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE channel_id = $1 AND message_id = $2",
                 x->t_index);
        const char *v[] = {ch, id};
        r = pq(x, sql, 2, v);
    }
    bool ok = pq_ok(r);
    if (!ok)
        search__pg_error(x->pg, r, err, errlen);
    PQclear(r);
    return ok;
}

static bool set_has(const seqset *s, int64_t seq)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->v[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n && s->v[lo] == seq;
}

static void set_add(seqset *s, int64_t seq)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        int64_t *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return; /* the entry is applied again next round: idempotent */
        s->v = v;
        s->cap = cap;
    }
    size_t i = s->n;
    while (i > 0 && s->v[i - 1] > seq)
        i--;
    memmove(s->v + i + 1, s->v + i, (s->n - i) * sizeof *s->v);
    s->v[i] = seq;
    s->n++;
}

/* Forgets the seqs at or below ckpt. */
static void set_prune(seqset *s, int64_t ckpt)
{
    size_t k = 0;
    while (k < s->n && s->v[k] <= ckpt)
        k++;
    if (k == 0)
        return; /* also: nothing to move in an empty set (v may be NULL) */
    memmove(s->v, s->v + k, (s->n - k) * sizeof *s->v);
    s->n -= k;
}

/*
 * One round on a held shard. Entries are not appended in seq order: a writer
 * takes its seq, then its batch may land after a later writer's. So the
 * durable checkpoint stays behind the in-flight window (settle_ms: no write
 * still in flight can carry a seq at or below it) and below the first entry
 * not applied yet; every round reads every entry after the checkpoint, skips
 * those applied since (x->applied[shard]) and applies the others whose change
 * shows (or is older than the window). Rows and checkpoint commit together.
 * Returns the number applied, or -1 when PostgreSQL failed (connection dropped).
 */
static int drain(search_index *x, int shard)
{
    char err[512] = "";
    if (!x->ckpt_known[shard]) {
        /* only the lock's holder moves it: read once per lock, then kept here */
        bool ok = false;
        x->ckpt[shard] = checkpoint(x, shard, &ok);
        if (!ok) {
            search__pg_error(x->pg, NULL, err, sizeof err);
            drop_pg(x, err);
            return -1;
        }
        x->ckpt_known[shard] = true;
    }
    int64_t ckpt = x->ckpt[shard];
    seqset *done = &x->applied[shard];
    set_prune(done, ckpt);
    static __thread log_entry batch[DRAIN_BATCH];
    static __thread msg_state got[DRAIN_BATCH];
    static __thread bool skip[DRAIN_BATCH];
    static __thread store_get_req reqs[DRAIN_BATCH];
    int64_t now = now_ms(), from = ckpt, first_pending = 0, last_seen = ckpt;
    uint32_t pending = 0;
    int applied = 0;
    bool in_tx = false, complete = true;
    for (;;) {
        int n = read_log(x, shard, from, batch, err, sizeof err);
        if (n < 0) {
            set_error(x, true, err);
            complete = false;
            break;
        }
        for (int i = 0; i < n; i++)
            skip[i] = set_has(done, batch[i].seq);
        for (int i = 0; i < n; i++)
            reqs[i] = (store_get_req){.channel_id = batch[i].channel_id,
                                      .message_id = batch[i].message_id};
        read_messages(x->st, x->loop_ok ? &x->loop : NULL, reqs, skip, n, got);
        for (int i = 0; i < n; i++) {
            const log_entry *e = &batch[i];
            last_seen = e->seq;
            if (skip[i])
                continue;
            bool row = false;
            int vis = current(x, e, &got[i], &row);
            int64_t age =
                now - (int64_t)ms_snowflake_unix_ms((uint64_t)e->seq, x->cfg.store.epoch_ms);
            if (vis < 0 || (vis == 0 && age < x->settle_ms)) {
                /* not visible yet (or the store failed): next round */
                if (!pending++)
                    first_pending = e->seq;
                continue;
            }
            if (vis == 0)
                MS_WARN("search",
                        "change of message %" PRIu64 " never showed in %" PRId64
                        " ms: indexing what the store holds",
                        e->message_id, age);
            if (!in_tx && !search__pg_exec(x->pg, "BEGIN", err, sizeof err)) {
                free_got(got, n);
                drop_pg(x, err);
                return -1;
            }
            in_tx = true;
            if (!apply(x, e, &got[i].m, row && got[i].rc == 0, err, sizeof err)) {
                free_got(got, n);
                drop_pg(x, err);
                return -1;
            }
            set_add(done, e->seq);
            ms_histogram_observe_us(x->m_delay, age > 0 ? (uint64_t)age * 1000 : 0);
            applied++;
        }
        free_got(got, n);
        if (n < DRAIN_BATCH)
            break;
        from = batch[n - 1].seq;
    }
    /* the new checkpoint: every entry up to it applied, and no write still in flight below it */
    int64_t safe =
        (int64_t)ms_snowflake_from_unix_ms((uint64_t)(now - x->settle_ms), x->cfg.store.epoch_ms);
    int64_t upto = complete ? last_seen : ckpt;
    if (pending && first_pending - 1 < upto)
        upto = first_pending - 1;
    if (safe - 1 < upto)
        upto = safe - 1;
    bool advance = upto > ckpt;
    if (applied == 0 && !advance) {
        if (in_tx)
            search__pg_exec(x->pg, "ROLLBACK", err, sizeof err);
    } else {
        if (!in_tx && !search__pg_exec(x->pg, "BEGIN", err, sizeof err)) {
            drop_pg(x, err);
            return -1;
        }
        if (applied && x->fault && strcmp(x->fault, "kill_before_index") == 0) {
            MS_WARN("search", "fault injection: SIGKILL before committing %d change(s)", applied);
            raise(SIGKILL);
        }
        char sql[768], sh[16], seq[24];
        snprintf(sql, sizeof sql,
                 "INSERT INTO %s (shard, seq, updated_at) VALUES ($1, $2, now()) ON CONFLICT "
                 "(shard) DO UPDATE SET seq = greatest(%s.seq, excluded.seq), updated_at = now()",
                 x->t_ckpt, x->t_ckpt);
        snprintf(sh, sizeof sh, "%d", shard);
        snprintf(seq, sizeof seq, "%" PRId64, advance ? upto : ckpt);
        const char *v[] = {sh, seq};
        PGresult *r = pq(x, sql, 2, v);
        bool cok = pq_ok(r);
        if (!cok)
            search__pg_error(x->pg, r, err, sizeof err);
        PQclear(r);
        if (!cok || !search__pg_exec(x->pg, "COMMIT", err, sizeof err)) {
            drop_pg(x, err);
            return -1;
        }
        if (advance)
            x->ckpt[shard] = upto;
    }
    if (applied) {
        ms_counter_add(x->m_indexed, (uint64_t)applied);
        atomic_fetch_add(&x->indexed, (uint64_t)applied);
    }
    pthread_mutex_lock(&x->mu);
    x->waiting[shard] = pending;
    x->oldest_ms[shard] =
        pending ? (int64_t)ms_snowflake_unix_ms((uint64_t)first_pending, x->cfg.store.epoch_ms) : 0;
    pthread_mutex_unlock(&x->mu);
    if (advance) {
        set_prune(done, upto);
        trim_log(x, shard, upto);
    }
    return applied;
}

static void *indexer_main(void *arg)
{
    search_index *x = arg;
    char err[512];
    x->loop_ok = uv_loop_init(&x->loop) == 0; /* else one read at a time */
    while (!x->stop) {
        if (!x->pg) {
            x->pg = search__pg_connect(x->cfg.store.search_pg_url, err, sizeof err);
            if (!x->pg || search__pg_ensure_schema(x->pg, x->cfg.store.scylla_keyspace,
                                                   x->cfg.store.id_format, err, sizeof err) != 0) {
                drop_pg(x, err);
                if (nap(x, RECONNECT_MS))
                    break;
                continue;
            }
            set_error(x, true, "");
            MS_INFO("search", "indexer connected to PostgreSQL");
        }
        int total = 0;
        bool failed = false;
        for (int s = 0; s < x->cfg.store.search_shards && !x->stop && !failed; s++) {
            if (!x->held[s]) {
                char sql[96], k1[16], k2[16];
                snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock($1::int, $2::int)");
                snprintf(k1, sizeof k1, "%d", (int)x->lock_key);
                snprintf(k2, sizeof k2, "%d", s);
                const char *v[] = {k1, k2};
                PGresult *r = pq(x, sql, 2, v);
                if (!pq_ok(r)) {
                    search__pg_error(x->pg, r, err, sizeof err);
                    PQclear(r);
                    drop_pg(x, err);
                    failed = true;
                    break;
                }
                x->held[s] = PQgetvalue(r, 0, 0)[0] == 't';
                x->ckpt_known[s] = false; /* another instance may have moved it */
                PQclear(r);
                if (!x->held[s])
                    continue;
            }
            int k = drain(x, s);
            if (k < 0)
                failed = true;
            else
                total += k;
        }
        pthread_mutex_lock(&x->mu);
        x->rounds++;
        if (total == 0)
            x->idle_rounds++;
        pthread_cond_broadcast(&x->cv);
        pthread_mutex_unlock(&x->mu);
        if (failed) {
            if (nap(x, RECONNECT_MS))
                break;
        } else if (total == 0 && nap(x, x->cfg.search_poll_ms)) {
            break;
        }
    }
    if (x->pg)
        PQfinish(x->pg);
    x->pg = NULL;
    if (x->loop_ok) {
        store_loop_detach(x->st, &x->loop);
        uv_run(&x->loop, UV_RUN_DEFAULT);
        uv_loop_close(&x->loop);
    }
    return NULL;
}

/* ------------------------------------------------------------------ the provider */

static void provider_submit(void *ctx, store_search_job *job)
{
    search_index *x = ctx;
    job_node *n = malloc(sizeof *n);
    if (!n) {
        store_search_job_done(job, MS_ERR_NOMEM, false, "out of memory");
        return;
    }
    n->job = job;
    n->next = NULL;
    pthread_mutex_lock(&x->qmu);
    if (x->jobs_tail)
        x->jobs_tail->next = n;
    else
        x->jobs_head = n;
    x->jobs_tail = n;
    pthread_cond_signal(&x->qcv);
    pthread_mutex_unlock(&x->qmu);
}

/* Runs one search on pg; *pg is dropped (NULL) when the connection broke. */
static void run_search(search_index *x, PGconn **pg, uv_loop_t *loop, store_search_job *job)
{
    const store_search_req *q = store_search_job_req(job);
    char detail[256] = "";
    char *expr = NULL, *terms[STORE_SEARCH_TERMS_MAX];
    int nterms = 0;
    int rc = store_search_query_pg(q->query, 1, 5, &expr, terms, &nterms, detail, sizeof detail);
    if (rc) {
        store_search_job_done(job, rc, false, detail);
        return;
    }
    /* $1 configuration, $2 channels, $3 before, $4 limit + 1, $5.. the terms */
    char *sql = NULL;
    int len = asprintf(&sql,
                       "SELECT i.channel_id, i.message_id, ts_headline($1::regconfig, "
                       "replace(i.content, '<', E'\\x01'), x.q, "
                       "E'StartSel=\\x02, StopSel=\\x03, MaxWords=24, MinWords=10, MaxFragments=1, "
                       "FragmentDelimiter=\" … \"'), ts_rank(i.tsv, x.q) "
                       "FROM %s i, (SELECT %s AS q) x "
                       "WHERE i.channel_id = ANY($2::%s[]) AND i.message_id < $3 AND i.tsv @@ x.q "
                       "ORDER BY %s LIMIT $4",
                       x->t_index, expr, x->cfg.store.id_format == MS_ID_UUID ? "uuid" : "bigint",
                       q->sort == STORE_SEARCH_RELEVANCE ? "4 DESC, i.message_id DESC"
                                                         : "i.message_id DESC");
    free(expr);
    char chans[STORE_SEARCH_CHANNELS_MAX * MS_XID_STRLEN + 3], before[24], lim[16];
    size_t w = 0;
    chans[w++] = '{';
    for (size_t i = 0; i < q->nchannels; i++) {
        char one[MS_XID_STRLEN];
        ms_xid_format(store_id_format(x->st), q->channel_ids[i], one);
        w += (size_t)snprintf(chans + w, sizeof chans - w, "%s%s", i ? "," : "", one);
    }
    snprintf(chans + w, sizeof chans - w, "}");
    snprintf(before, sizeof before, "%" PRIu64, q->before ? q->before : (uint64_t)INT64_MAX);
    snprintf(lim, sizeof lim, "%d", q->limit + 1);
    const char *v[4 + STORE_SEARCH_TERMS_MAX] = {x->tsconfig, chans, before, lim};
    for (int i = 0; i < nterms; i++)
        v[4 + i] = terms[i];
    PGresult *r = NULL;
    if (len < 0 || !sql) {
        rc = MS_ERR_NOMEM;
        snprintf(detail, sizeof detail, "out of memory");
    } else {
        if (!*pg) {
            /* the tables may not exist yet when a search comes before the indexer's first turn */
            *pg = search__pg_connect(x->cfg.store.search_pg_url, detail, sizeof detail);
            if (*pg && search__pg_ensure_schema(*pg, x->cfg.store.scylla_keyspace,
                                                x->cfg.store.id_format, detail, sizeof detail)) {
                PQfinish(*pg);
                *pg = NULL;
            }
        }
        if (*pg)
            r = PQexecParams(*pg, sql, 4 + nterms, NULL, v, NULL, NULL, 0);
        if (!*pg || !pq_ok(r)) {
            if (*pg)
                search__pg_error(*pg, r, detail, sizeof detail);
            rc = MS_ERR_UNAVAILABLE;
            if (*pg && PQstatus(*pg) != CONNECTION_OK) {
                PQfinish(*pg);
                *pg = NULL;
            }
        }
    }
    free(sql);
    for (int i = 0; i < nterms; i++)
        free(terms[i]);
    if (rc) {
        PQclear(r);
        store_search_job_done(job, rc, false, detail);
        return;
    }
    int rows = PQntuples(r), added = 0;
    bool more = false;
    store_get_req *reqs = calloc((size_t)rows + 1, sizeof *reqs);
    msg_state *got = calloc((size_t)rows + 1, sizeof *got);
    if (!reqs || !got) {
        free(reqs);
        free(got);
        PQclear(r);
        store_search_job_done(job, MS_ERR_NOMEM, false, "out of memory");
        return;
    }
    for (int i = 0; i < rows; i++) {
        reqs[i].message_id = strtoull(PQgetvalue(r, i, 1), NULL, 10);
        const char *cht = PQgetvalue(r, i, 0);
        (void)ms_xid_parse(store_id_format(x->st), cht, strlen(cht), &reqs[i].channel_id);
    }
    read_messages(x->st, loop, reqs, NULL, rows, got);
    for (int i = 0; i < rows && rc == 0; i++) {
        if (added == q->limit) {
            more = true;
            break;
        }
        int grc = got[i].rc;
        if (grc == MS_ERR_NOT_FOUND || (grc == 0 && got[i].m.is_deleted))
            continue; /* deleted since it was indexed: the index catches up */
        if (grc) {
            rc = grc;
            snprintf(detail, sizeof detail, "%s", got[i].detail);
            break;
        }
        /* ts_headline drops what looks like an HTML tag: '<' went in as \x01 */
        char *snip = PQgetvalue(r, i, 2);
        for (char *p = snip; *p; p++)
            if (*p == '\x01')
                *p = '<';
        if (store_search_job_add(job, &got[i].m, snip, strlen(snip), atof(PQgetvalue(r, i, 3)))) {
            rc = MS_ERR_NOMEM;
            snprintf(detail, sizeof detail, "out of memory");
            break;
        }
        added++;
    }
    free_got(got, rows);
    free(got);
    free(reqs);
    if (rc) {
        PQclear(r);
        store_search_job_done(job, rc, false, detail);
        return;
    }
    PQclear(r);
    store_search_job_done(job, 0, more, NULL);
}

static void *query_main(void *arg)
{
    search_index *x = arg;
    PGconn *pg = NULL;
    uv_loop_t loop; /* the hits' messages, read together */
    bool loop_ok = uv_loop_init(&loop) == 0;
    for (;;) {
        pthread_mutex_lock(&x->qmu);
        while (!x->jobs_head && !x->qstop) {
            if (!loop_ok) {
                pthread_cond_wait(&x->qcv, &x->qmu);
                continue;
            }
            /* the loop's CQL session needs turns while idle too (heartbeats, reconnections) */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += QUERY_IDLE_TICK_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            if (pthread_cond_timedwait(&x->qcv, &x->qmu, &ts) != 0) {
                pthread_mutex_unlock(&x->qmu);
                uv_run(&loop, UV_RUN_NOWAIT);
                pthread_mutex_lock(&x->qmu);
            }
        }
        job_node *n = x->jobs_head;
        if (n) {
            x->jobs_head = n->next;
            if (!x->jobs_head)
                x->jobs_tail = NULL;
        }
        pthread_mutex_unlock(&x->qmu);
        if (!n)
            break; /* stopping and nothing queued */
        run_search(x, &pg, loop_ok ? &loop : NULL, n->job);
        free(n);
    }
    if (pg)
        PQfinish(pg);
    if (loop_ok) {
        store_loop_detach(x->st, &loop);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
    return NULL;
}

/* ------------------------------------------------------------------ status */

void search_index_status(search_index *x, search_status *out)
{
    memset(out, 0, sizeof *out);
    int64_t now = now_ms(), oldest = 0;
    pthread_mutex_lock(&x->mu);
    out->connected = x->connected;
    snprintf(out->error, sizeof out->error, "%s", x->error);
    out->shards = x->cfg.store.search_shards;
    for (int s = 0; s < x->cfg.store.search_shards; s++) {
        if (!x->held[s])
            continue;
        out->shards_held++;
        out->lag_messages += x->waiting[s];
        if (x->oldest_ms[s] && (!oldest || x->oldest_ms[s] < oldest))
            oldest = x->oldest_ms[s];
    }
    pthread_mutex_unlock(&x->mu);
    out->lag_seconds = oldest && now > oldest ? (double)(now - oldest) / 1000.0 : 0.0;
    out->indexed = atomic_load(&x->indexed);
}

json_t *search_index_health(void *ctx, bool *degraded)
{
    search_status st;
    search_index_status(ctx, &st);
    *degraded = !st.connected;
    return json_pack("{s:s,s:b,s:s?,s:f,s:I,s:i,s:i,s:I}", "backend", "postgresql", "connected",
                     st.connected, "error", st.error[0] ? st.error : NULL, "lag_seconds",
                     st.lag_seconds, "lag_messages", (json_int_t)st.lag_messages, "shards",
                     st.shards, "shards_held", st.shards_held, "indexed", (json_int_t)st.indexed);
}

static void collect(ms_metrics_buf *buf, void *ctx)
{
    search_status st;
    search_index_status(ctx, &st);
    ms_metrics_appendf(buf,
                       "# HELP msgstore_search_lag_seconds Age of the oldest change not yet in "
                       "the search index (shards this instance drains)\n"
                       "# TYPE msgstore_search_lag_seconds gauge\n"
                       "msgstore_search_lag_seconds %.3f\n"
                       "# HELP msgstore_search_lag_messages Changes waiting for the search index "
                       "(shards this instance drains)\n"
                       "# TYPE msgstore_search_lag_messages gauge\n"
                       "msgstore_search_lag_messages %" PRIu64 "\n"
                       "# HELP msgstore_search_connected Whether the indexer's PostgreSQL "
                       "connection is up\n"
                       "# TYPE msgstore_search_connected gauge\n"
                       "msgstore_search_connected %d\n",
                       st.lag_seconds, st.lag_messages, st.connected ? 1 : 0);
}

int search_index_wait(search_index *x, int64_t timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    pthread_mutex_lock(&x->mu);
    uint64_t start = x->rounds;
    for (;;) {
        bool caught_up = x->rounds >= start + 2 && x->connected;
        for (int s = 0; caught_up && s < x->cfg.store.search_shards; s++)
            caught_up = x->held[s] && x->waiting[s] == 0;
        if (caught_up) {
            pthread_mutex_unlock(&x->mu);
            return 0;
        }
        if (now_ms() >= deadline) {
            pthread_mutex_unlock(&x->mu);
            return MS_ERR_TIMEOUT;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&x->cv, &x->mu, &ts);
    }
}

/* ------------------------------------------------------------------ open, close */

static int32_t keyspace_key(const char *ks)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)ks; *p; p++)
        h = (h ^ *p) * 16777619u;
    return (int32_t)((h ^ LOCK_SPACE_SALT) & 0x7fffffff);
}

static int prepare(search_index *x, const char *q, cql_prepared **out, char *err, size_t errlen)
{
    cql_status cs;
    if (cql_sync_prepare(x->db, q, out, &cs) != 0) {
        snprintf(err, errlen, "cannot prepare the change-log statements: %s", cs.message);
        return MS_ERR_UNAVAILABLE;
    }
    return 0;
}

int search_index_open(const ms_config *cfg, store *st, search_index **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!cfg->store.search_pg_url[0] || ms_config_backend(cfg) != MS_BACKEND_SCYLLA) {
        snprintf(err, errlen, "the search index needs MSGSTORE_SEARCH_PG_URL and a ScyllaDB store");
        return MS_ERR_INVALID;
    }
    search_index *x = calloc(1, sizeof *x);
    if (!x) {
        snprintf(err, errlen, "out of memory");
        return MS_ERR_NOMEM;
    }
    x->cfg = *cfg;
    x->st = st;
    x->lock_key = keyspace_key(cfg->store.scylla_keyspace);
    x->settle_ms = 2 * cfg->store.scylla_request_timeout_ms + 1000;
    x->fault = getenv("MSGSTORE_SEARCH_FAULT");
    search__pg_table(cfg->store.scylla_keyspace, "message_index", x->t_index, sizeof x->t_index);
    search__pg_table(cfg->store.scylla_keyspace, "checkpoint", x->t_ckpt, sizeof x->t_ckpt);
    search__pg_text_config(cfg->store.scylla_keyspace, cfg->search_text_config, x->tsconfig,
                           sizeof x->tsconfig);
    x->held = calloc((size_t)cfg->store.search_shards, sizeof *x->held);
    x->oldest_ms = calloc((size_t)cfg->store.search_shards, sizeof *x->oldest_ms);
    x->waiting = calloc((size_t)cfg->store.search_shards, sizeof *x->waiting);
    x->applied = calloc((size_t)cfg->store.search_shards, sizeof *x->applied);
    x->ckpt = calloc((size_t)cfg->store.search_shards, sizeof *x->ckpt);
    x->ckpt_known = calloc((size_t)cfg->store.search_shards, sizeof *x->ckpt_known);
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    pthread_mutex_init(&x->qmu, NULL);
    pthread_cond_init(&x->qcv, NULL);
    snprintf(x->error, sizeof x->error, "not connected yet");
    int rc = 0;
    if (!x->held || !x->oldest_ms || !x->waiting || !x->applied || !x->ckpt || !x->ckpt_known) {
        snprintf(err, errlen, "out of memory");
        rc = MS_ERR_NOMEM;
        goto fail;
    }
    cql_options o;
    cql_options_init(&o);
    store_cql_options(&cfg->store, &o);
    o.name = "search";
    cql_status cs;
    if (cql_sync_connect(&o, &x->db, &cs) != 0 || !x->db) {
        snprintf(err, errlen, "the search indexer cannot reach the cluster: %s", cs.message);
        rc = MS_ERR_UNAVAILABLE;
        goto fail;
    }
    char qread[256], qtrim[256];
    snprintf(qread, sizeof qread,
             "SELECT seq, channel_id, message_id, kind, version FROM %s.search_log "
             "WHERE shard = ? AND seq > ? LIMIT ?",
             cfg->store.scylla_keyspace);
    snprintf(qtrim, sizeof qtrim, "DELETE FROM %s.search_log WHERE shard = ? AND seq <= ?",
             cfg->store.scylla_keyspace);
    if ((rc = prepare(x, qread, &x->p_read, err, errlen)) ||
        (rc = prepare(x, qtrim, &x->p_trim, err, errlen)))
        goto fail;
    char labels[8] = "";
    x->m_delay = ms_histogram_get("msgstore_search_index_delay_seconds", labels,
                                  "Time from a change (its log entry) to its row in the search "
                                  "index, per change applied by this instance");
    x->m_indexed = ms_counter_get("msgstore_search_indexed_total", labels,
                                  "Changes applied to the search index by this instance");
    if (pthread_create(&x->thread, NULL, indexer_main, x) != 0) {
        snprintf(err, errlen, "cannot start the indexer thread");
        rc = MS_ERR_INTERNAL;
        goto fail;
    }
    x->started = true;
    for (int i = 0; i < QUERY_THREADS; i++) {
        if (pthread_create(&x->qthreads[i], NULL, query_main, x) != 0)
            break;
        x->nq++;
    }
    ms_metrics_add_collector(collect, x);
    store_set_search_provider(st, &(store_search_provider){.submit = provider_submit, .ctx = x});
    *out = x;
    return 0;
fail:
    search_index_close(x);
    return rc;
}

void search_index_close(search_index *x)
{
    if (!x)
        return;
    if (x->st)
        store_set_search_provider(x->st, NULL);
    ms_metrics_remove_collector(collect, x);
    pthread_mutex_lock(&x->qmu);
    x->qstop = true;
    pthread_cond_broadcast(&x->qcv);
    pthread_mutex_unlock(&x->qmu);
    for (int i = 0; i < x->nq; i++)
        pthread_join(x->qthreads[i], NULL);
    pthread_mutex_lock(&x->mu);
    x->stop = true;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
    if (x->started)
        pthread_join(x->thread, NULL);
    if (x->p_read)
        cql_prepared_release(x->p_read);
    if (x->p_trim)
        cql_prepared_release(x->p_trim);
    if (x->db)
        cql_sync_close(x->db);
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->cv);
    pthread_mutex_destroy(&x->qmu);
    pthread_cond_destroy(&x->qcv);
    free(x->held);
    free(x->oldest_ms);
    free(x->waiting);
    for (int i = 0; x->applied && i < x->cfg.store.search_shards; i++)
        free(x->applied[i].v);
    free(x->applied);
    free(x->ckpt);
    free(x->ckpt_known);
    free(x);
}
