/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scylla_repair.c - exact counts on the ScyllaDB backend: recording a count
 * whose counter update failed (counter_repairs), and the repair pass that
 * recounts it (docs/data-model.md, "Exact counts"), with its thread.
 */
#include "scylla_internal.h"

#if defined(MSGSTORE_HAVE_CQL_SESSION)

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#include <time.h>

#include "core/metrics.h"

/* ------------------------------------------------------------------ exact counts: recording */

#define RP_SHARDS    16
#define RP_NOTES_MAX 65536 /* failures kept in memory while counter_repairs cannot be written */

static int rp_shard(ms_xid ch)
{
    return (int)((sc_xid_key(ch) * 0x9E3779B97F4A7C15ULL) >> 60) % RP_SHARDS;
}

/* Writes one failure row; 0, or fails op. */
static int rp_record(sc_conn *c, store_op *op, const rp_note *n)
{
    sc_bind_RP_NOTE(sc_idf(c), sc_vals(c), rp_shard(n->ch), n->kind, n->ch, n->id, n->emoji,
                    strlen(n->emoji), (int64_t)n->failure_id);
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
bool sc_maybe_applied(int code)
{
    return code != MS_ERR_NOMEM && code != MS_ERR_INVALID;
}

/*
 * A row was (or may have been) written and its counter update failed, timed
 * out or was skipped: records the count for the repair (counter_repairs, or
 * memory until that write succeeds) and wakes the repair thread. Keeps op's
 * status and detail.
 */
void sc_note_failure(sc_conn *c, store_op *op, int kind, ms_xid ch, int64_t id, const char *emoji)
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
    MS_WARN("store", "scylla: %s count of channel %s %s %" PRId64 " may be off (%s); recounting",
            kind == RP_REACTION ? "a reaction" : "the message", STORE_XID(op->s, ch),
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

#define RP_SCAN_ROWS 5000 /* failure rows read per pass */
#define RP_KEYS_MAX  64   /* counts repaired per pass */
#define RP_FAILS_MAX 64   /* failure rows deleted per count per pass */

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
    int chc = ms_xid_cmp(a->ch, b->ch);
    if (chc)
        return chc;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return strcmp(a->emoji, b->emoji);
}

static int cmp_note_q(const void *a, const void *b)
{
    return cmp_note(a, b);
}

/* Binds count n's key for recount read id (RP_RX_* of a reaction, RP_MC_* of a bucket). */
static void rp_bind_read(const sc_conn *c, cql_values *v, sc_stmt_id id, const rp_note *n)
{
    ms_id_format f = sc_idf(c);
    size_t elen = strlen(n->emoji);
    switch (id) {
    case SC_RP_RX_TOUCH:
        sc_bind_RP_RX_TOUCH(f, v, n->ch, n->id);
        break;
    case SC_RP_RX_ROWS:
        sc_bind_RP_RX_ROWS(f, v, n->ch, n->id, n->emoji, elen);
        break;
    case SC_RP_RX_COUNTER:
        sc_bind_RP_RX_COUNTER(f, v, n->ch, n->id, n->emoji, elen);
        break;
    case SC_RP_MC_TOUCH:
        sc_bind_RP_MC_TOUCH(f, v, n->ch, (int32_t)n->id);
        break;
    case SC_RP_MC_ROWS:
        sc_bind_RP_MC_ROWS(f, v, n->ch, (int32_t)n->id);
        break;
    case SC_RP_MC_COUNTER:
        sc_bind_RP_MC_COUNTER(f, v, n->ch, (int32_t)n->id);
        break;
    default: /* not a recount: nothing bound, so sc_run refuses it */
        break;
    }
}

/* Runs a one-value read (COUNT, a counter); *out = 0 for no row or null. */
static int rp_read(sc_conn *c, store_op *op, sc_stmt_id id, const rp_note *n, int64_t *a,
                   int64_t *b)
{
    rp_bind_read(c, sc_vals(c), id, n);
    cql_result *q = NULL;
    if (sc_run(c, op, id, "recounting", &q))
        return op->status;
    *a = 0;
    if (b)
        *b = 0;
    if (cql_result_next_row(q) == 0) {
        *a = sc_col_i64(q, 0);
        if (b)
            *b = sc_col_i64(q, 1);
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
    if (rp_read(c, op, rx ? SC_RP_RX_TOUCH : SC_RP_MC_TOUCH, n, &ignore, NULL))
        return op->status;
    sc_stmt_id cs = rx ? SC_RP_RX_COUNTER : SC_RP_MC_COUNTER;
    sc_stmt_id rs = rx ? SC_RP_RX_ROWS : SC_RP_MC_ROWS;
    *changes = 0;
    if (counter_first && rp_read(c, op, cs, n, count, rx ? changes : NULL))
        return op->status;
    if (rp_read(c, op, rs, n, rows, NULL))
        return op->status;
    if (!counter_first && rp_read(c, op, cs, n, count, rx ? changes : NULL))
        return op->status;
    return 0;
}

static void rp_unlease(sc_conn *c, store_op *op, rp_key *k)
{
    if (!k->owner)
        return;
    sc_bind_RP_UNLEASE(sc_idf(c), sc_vals(c), k->n.kind, k->n.ch, k->n.id, k->n.emoji,
                       strlen(k->n.emoji), (int64_t)k->owner);
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
    int32_t shards[RP_SHARDS];
    for (int i = 0; i < RP_SHARDS; i++)
        shards[i] = i;
    sc_bind_RP_SCAN(sc_idf(c), sc_vals(c), shards, RP_SHARDS, RP_SCAN_ROWS);
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
        r->ch = sc_col_id(q, 1);
        r->id = sc_col_i64(q, 2);
        cql_str e = {0};
        if (cql_row_get_text(q, 3, &e) == 0 && e.len < sizeof r->emoji) {
            memcpy(r->emoji, e.ptr ? e.ptr : "", e.len);
            r->emoji[e.len] = '\0';
        }
        r->failure_id = (uint64_t)sc_col_i64(q, 4);
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
        const rp_note *n = &k->n;
        if (n->kind == RP_REACTION)
            sc_bind_RP_RX_FIX(sc_idf(c), sc_vals(c), delta, n->ch, n->id, n->emoji,
                              strlen(n->emoji));
        else
            sc_bind_COUNT_MSG(sc_idf(c), sc_vals(c), delta, n->ch, (int32_t)n->id);
        /* never retried; if this times out the next pass sees whether it landed */
        if (sc_run(c, op, k->n.kind == RP_REACTION ? SC_RP_RX_FIX : SC_COUNT_MSG,
                   "correcting a count", NULL))
            return op->status;
        MS_INFO("store",
                "scylla: %s count of channel %s %s %" PRId64 " corrected by %+" PRId64
                " to %" PRId64,
                k->n.kind == RP_REACTION ? "a reaction" : "the message", STORE_XID(op->s, k->n.ch),
                k->n.kind == RP_REACTION ? "message" : "bucket", k->n.id, delta, rows);
        *fixed = true;
    }
    sc_bind_RP_DONE(sc_idf(c), sc_vals(c), rp_shard(k->n.ch), k->n.kind, k->n.ch, k->n.id,
                    k->n.emoji, strlen(k->n.emoji), k->fails, k->nfails);
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
        sc_bind_RP_LEASE(sc_idf(c), sc_vals(c), k->n.kind, k->n.ch, k->n.id, k->n.emoji,
                         strlen(k->n.emoji), (int64_t)owner, b->lease_ttl_s);
        cql_result *q = NULL;
        k->t_lease = uv_hrtime();
        if (!owner || sc_run(c, &op, SC_RP_LEASE, "taking a repair lease", &q)) {
            op.status = 0;
            rep->pending++;
            continue;
        }
        bool got = sc_lwt_applied(q);
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

int sc_repair_connect(sc_backend *b, char *detail, size_t dlen)
{
    if (b->rconn.db)
        return 0;
    cql_options o;
    sc_options(&o, b->cfg, false);
    o.name = "store-repair";
    cql_status st;
    if (cql_sync_connect(&o, &b->rconn.db, &st) != 0 || !b->rconn.db) {
        b->rconn.db = NULL;
        /* the client's message names the hosts it tried; keep it within STORE_DETAIL_LEN */
        snprintf(detail, dlen, "counter repair: cannot connect: %.150s", st.message);
        return st.code ? st.code : MS_ERR_UNAVAILABLE;
    }
    b->rconn.up_seen = atomic_load(&b->hosts_up);
    return 0;
}

int sc_repair(store_backend *base, store_repair_report *rep, char *detail, size_t dlen)
{
    sc_backend *b = (sc_backend *)base;
    pthread_mutex_lock(&b->rmu);
    int rc = sc_repair_connect(b, detail, dlen);
    if (rc == 0)
        rc = rp_pass(b, rep, detail, dlen);
    pthread_mutex_unlock(&b->rmu);
    return rc;
}

/* The background repair: a pass every interval, every settle time while counts are pending. */
void *sc_repair_main(void *arg)
{
    sc_backend *b = arg;
    int64_t due = sc_mono_ms() + b->interval_ms;
    for (;;) {
        pthread_mutex_lock(&b->nmu);
        if (!b->rwake && !b->rstop) {
            int64_t wait_ms = due - sc_mono_ms();
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
            due = sc_mono_ms() + b->settle_ms;
            continue;
        }
        if (sc_mono_ms() < due) {
            /* a pass run by someone else (sc_repair) runs the session meanwhile */
            if (pthread_mutex_trylock(&b->rmu) == 0) {
                if (b->rconn.db) {
                    sc_catch_up(&b->rconn);
                    cql_sync_run_for(b->rconn.db, 0);
                }
                pthread_mutex_unlock(&b->rmu);
            }
            continue;
        }
        store_repair_report rep = {0};
        char detail[STORE_DETAIL_LEN];
        if (sc_repair(&b->base, &rep, detail, sizeof detail) != 0 && !b->rstop)
            MS_WARN("store", "scylla: counter repair: %s", detail);
        due = sc_mono_ms() + (rep.pending ? b->settle_ms : b->interval_ms);
    }
    return NULL;
}

#endif /* MSGSTORE_HAVE_CQL_SESSION */
