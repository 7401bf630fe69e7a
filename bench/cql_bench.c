/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cql_bench - load tool for msgstore's CQL client: prepared single-row INSERT
 * and SELECT at a chosen concurrency and duration, through the public async
 * API on one libuv loop (as one server worker uses it).
 *
 *   cql_bench [--hosts=127.0.0.1] [--op=insert|select|both] [--concurrency=256]
 *             [--duration=10] [--warmup=2] [--keys=100000] [--value=100]
 *             [--pool=1] [--compression=0|1] [--consistency=ONE] [--dc=NAME]
 *
 * Reports ops/s, latency percentiles (p50/p99/p999, from submit to callback)
 * and the client's own CPU time per operation (getrusage of this process:
 * the server runs elsewhere), measured after the warm-up.
 *
 * Floor mode: --op=post|post-each|page|get|batch|counter|nonce|telegram sends the ScyllaDB
 * backend's own statements (their texts from the store's statement table,
 * src/store/scylla_internal.h) into a keyspace migrated by `msgstore
 * migrate` (--keyspace=NAME, default msgstore), at the store's consistency
 * levels (LOCAL_QUORUM, LOCAL_SERIAL unless --consistency is given):
 *   post      what one POST costs the store: the unlogged batch (message row,
 *             last_message_id, and the bucket's listing unless this run listed
 *             that (channel, bucket) within SC_BUCKET_MEMORY_MS), then the
 *             per-(channel, bucket) counter update, coalesced as the store
 *             coalesces it: the POSTs whose batch answered in one loop turn
 *             share one `count = count + n`, sent at the end of the turn, and
 *             each completes when it answered
 *   post-each the POST before that (issue 9 item 2): every batch lists the
 *             bucket (3 partitions), every POST sends its own counter update;
 *             2 requests, one after the other
 *   page      the latest page of 50: the newest bucket read at LIMIT 51, paged
 *             as the store pages it (--page-rows, default 51: the newest
 *             partition's read is paged by the rows wanted, one request)
 *   get       GET one message: the message row by its key (channel, bucket, id)
 *             of one of the messages written first, at LOCAL_QUORUM
 *   store-get the same message through the store (store_get on this loop: the
 *             ScyllaDB backend's session, coroutine and result decoding, as a
 *             server worker runs it; no HTTP). `--op=get,store-get,get,...`
 *             alternates the two: what the store adds to the bare select
 *   batch, counter, nonce (the nonce LWT), telegram (the Telegram-id LWT):
 *             one statement kind of a POST alone (what each one costs the node)
 * --channels=N spreads the operations over N channels (default 1: one hot
 * channel, as bench/http_bench posts). The page and get modes first write
 * 200 messages per channel with the post statements. An operation is a whole
 * chain: its latency is from the first submit to the last callback.
 * --server-pid=PID[,PID...] also reports those processes' CPU (from
 * /proc/PID/stat) over the measured window per operation: the node's (a
 * Cassandra JVM's) cost of each statement kind, less what the node spends
 * idle (its CPU over 3 s with no load, measured first: gossip, GC, timers).
 */
#include "msgstore/cql.h"

#include "core/error.h"
#include "core/log.h"
#include "core/config.h"
#include "core/snowflake.h"
#include "msgstore/store.h"
#include "scylla_internal.h" /* the store's statement texts (floor mode) */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---- latency histogram: 64 linear sub-buckets per power of two (~1.6%) ---- */

#define SUB 64
#define NB  (SUB * 40)

static uint64_t hist[NB];
static uint64_t hist_n;

static int bucket_of(uint64_t us)
{
    if (us < SUB)
        return (int)us;
    int msb = 63 - __builtin_clzll(us);
    int idx = (msb - 5) * SUB + (int)((us >> (msb - 6)) & (SUB - 1));
    return idx < NB ? idx : NB - 1;
}

static uint64_t bucket_value(int idx)
{
    if (idx < SUB)
        return (uint64_t)idx;
    int msb = idx / SUB + 5;
    uint64_t sub = (uint64_t)(idx % SUB);
    return ((uint64_t)SUB + sub) << (msb - 6);
}

static uint64_t percentile(double q)
{
    uint64_t want = (uint64_t)((double)hist_n * q);
    uint64_t seen = 0;
    for (int i = 0; i < NB; i++) {
        seen += hist[i];
        if (seen > want)
            return bucket_value(i);
    }
    return 0;
}

/* ---- options ---- */

static const char *hosts = "127.0.0.1";
static const char *op_name = "both";
static const char *dc = NULL;
static const char *keyspace = "msgstore";
static const char *server_pids = NULL;
static int concurrency = 256;
static double duration = 10, warmup = 2;
static int nkeys = 100000;
static int value_size = 100;
static int pool = 1;
static int compression = 0;
static int consistency = -1; /* ONE for insert/select, the store's LOCAL_QUORUM for floor ops */
static int nchannels = 1;
static int page_rows = 0;

static int parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        if (!eq || strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "bad argument: %s\n", a);
            return -1;
        }
        const char *v = eq + 1;
        size_t kl = (size_t)(eq - a);
#define IS(k) (kl == strlen(k) && strncmp(a, k, kl) == 0)
        if (IS("--hosts"))
            hosts = v;
        else if (IS("--op"))
            op_name = v;
        else if (IS("--dc"))
            dc = v;
        else if (IS("--keyspace"))
            keyspace = v;
        else if (IS("--server-pid"))
            server_pids = v;
        else if (IS("--concurrency"))
            concurrency = atoi(v);
        else if (IS("--duration"))
            duration = atof(v);
        else if (IS("--warmup"))
            warmup = atof(v);
        else if (IS("--keys"))
            nkeys = atoi(v);
        else if (IS("--value"))
            value_size = atoi(v);
        else if (IS("--pool"))
            pool = atoi(v);
        else if (IS("--compression"))
            compression = atoi(v);
        else if (IS("--channels"))
            nchannels = atoi(v);
        else if (IS("--page-rows"))
            page_rows = atoi(v);
        else if (IS("--consistency")) {
            cql_consistency cl;
            if (cql_consistency_parse(v, &cl) < 0) {
                fprintf(stderr, "bad consistency: %s\n", v);
                return -1;
            }
            consistency = (int)cl;
        } else {
            fprintf(stderr, "unknown option: %.*s\n", (int)kl, a);
            return -1;
        }
#undef IS
    }
    if (concurrency < 1 || duration <= 0 || nkeys < 1 || value_size < 0 || pool < 1 ||
        nchannels < 1 || page_rows < 0)
        return -1;
    return 0;
}

/* ---- CPU of this process and of the server's ---- */

static double server_idle_rate; /* the server's CPU seconds per second with no load */

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime of the processes of --server-pid in seconds; < 0 when one is unreadable. */
static double server_cpu_seconds(void)
{
    if (!server_pids)
        return -1;
    double total = 0;
    const char *p = server_pids;
    while (*p) {
        char path[64], buf[4096];
        long pid = strtol(p, (char **)&p, 10);
        if (*p == ',')
            p++;
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            return -1;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* fields after the command (which may hold spaces): state is field 3 */
        char *q = strrchr(buf, ')');
        unsigned long long ut = 0, st = 0;
        if (!q ||
            sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
            return -1;
        total += (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    }
    return total;
}

/* ---- the run ---- */

typedef enum op_kind {
    OP_INSERT, /* the single-row kv table */
    OP_SELECT,
    OP_POST,      /* floor: the statements of one POST */
    OP_POST_EACH, /* floor: one POST as before the coalesced counter and the remembered listing */
    OP_PAGE,      /* floor: the statements of one latest page */
    OP_GET,       /* floor: the statement of GET one message */
    OP_BATCH,
    OP_COUNTER,
    OP_NONCE,
    OP_TELEGRAM,
    OP_STORE_GET, /* GET one message through the store on this loop */
} op_kind;

static const char *const op_names[] = {"insert", "select",  "post",  "post-each", "page",     "get",
                                       "batch",  "counter", "nonce", "telegram",  "store-get"};

/* The store's statements a floor operation sends (ids in scylla_internal.h). */
static const sc_stmt_id floor_stmts[] = {SC_BUCKET_ADD,  SC_MSG_INSERT,  SC_META_LAST,
                                         SC_COUNT_MSG,   SC_PAGE_BEFORE, SC_MSG_GET,
                                         SC_NONCE_CLAIM, SC_TG_CLAIM};
#define NFLOOR (sizeof floor_stmts / sizeof floor_stmts[0])

typedef struct slot slot;

/* The POSTs of one channel whose batch answered in this loop turn (OP_POST). */
typedef struct count_group {
    slot *members;
    uint32_t bucket;
    uint32_t n;
} count_group;

typedef struct run {
    uv_loop_t *loop;
    cql_session *s;
    cql_prepared *ins, *sel;
    cql_prepared *ps[SC_NSTMT]; /* floor statements */
    bool uuid_ids;              /* the store's channel/user ids are uuid columns */
    op_kind kind;
    bool measuring, stopping;
    int outstanding;
    uint64_t limit; /* stop after this many operations (0: by time) */
    uint64_t ops, errors, requests, done;
    uint64_t seed_errors; /* failures outside the measured window (run_count) */
    uint64_t rng;
    uint64_t channel0;       /* the run's first channel id */
    uint64_t last_id;        /* last message id issued */
    uint64_t seeded[2][256]; /* channel and id of messages written unmeasured (get) */
    size_t nseeded;
    char *value;
    char last_err[256];
    /* OP_POST: the bucket each channel (by index) listed last, and until when it is trusted
       (uv_now ms); this turn's counter groups; the handle that ends the turn */
    uint32_t *listed_bucket; /* bucket + 1; 0: none */
    uint64_t *listed_until;
    count_group *groups;
    int *open; /* indexes of the groups with members */
    int nopen;
    uv_idle_t turn_end;
    store *st; /* OP_STORE_GET: the store on this loop */
} run;

struct slot {
    run *r;
    uint64_t start_ns;
    int step;
    uint64_t ch, id;
    bool listing;  /* its batch lists the bucket */
    uint32_t cnt;  /* the increments its counter update carries (OP_POST) */
    slot *members; /* a counter update's sender: the other POSTs it counts */
    slot *gnext;
    cql_values v;
    cql_values bv[3];
};

static uint64_t next_rand(run *r)
{
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    return r->rng;
}

static uint64_t next_key(run *r)
{
    return next_rand(r) % (uint64_t)nkeys;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A new message id: a snowflake of now (default epoch), unique within the run. */
static uint64_t next_id(run *r)
{
    uint64_t id = ms_snowflake_from_unix_ms(now_ms(), MS_SNOWFLAKE_EPOCH_DISCORD);
    if (id <= r->last_id)
        id = r->last_id + 1;
    return r->last_id = id;
}

/* A channel or user id as the store binds it (sc_bind_id_as): bigint, or a uuid {0, v}. */
static void bind_xid(const run *r, cql_values *v, uint64_t id)
{
    if (!r->uuid_ids) {
        cql_values_add_bigint(v, (int64_t)id);
        return;
    }
    uint8_t u[16] = {0};
    for (int i = 0; i < 8; i++)
        u[15 - i] = (uint8_t)(id >> (8 * i));
    cql_values_add_uuid(v, u);
}

static void submit(slot *sl);

static void finish(slot *sl, const cql_status *st)
{
    run *r = sl->r;
    r->outstanding--;
    r->done++;
    if (!r->measuring && st->code != 0) {
        r->seed_errors++;
        snprintf(r->last_err, sizeof(r->last_err), "%s", st->message);
    } else if (!r->measuring && (r->kind == OP_POST || r->kind == OP_POST_EACH)) {
        size_t k = r->nseeded++ % 256;
        r->seeded[0][k] = sl->ch;
        r->seeded[1][k] = sl->id;
    }
    if (r->measuring) {
        uint64_t us = (uv_hrtime() - sl->start_ns) / 1000;
        hist[bucket_of(us)]++;
        hist_n++;
        r->ops++;
        if (st->code != 0) {
            r->errors++;
            snprintf(r->last_err, sizeof(r->last_err), "%s", st->message);
        }
    }
    if (r->limit && r->done >= r->limit)
        r->stopping = true;
    if (!r->stopping)
        submit(sl);
}

static int send_floor(slot *sl, const cql_bytes *paging);

static void fail_submit(const char *what)
{
    fprintf(stderr, "submit failed: %s\n", what);
    exit(1);
}

/*
 * The end of a loop turn (OP_POST): each channel's POSTs whose batch answered
 * in this turn are counted by one update, sent by the first of them.
 */
static void on_turn_end(uv_idle_t *h)
{
    run *r = h->data;
    uv_idle_stop(h);
    for (int i = 0; i < r->nopen; i++) {
        count_group *g = &r->groups[r->open[i]];
        slot *lead = g->members;
        lead->members = lead->gnext;
        lead->cnt = g->n;
        lead->step = 1;
        *g = (count_group){0};
        if (send_floor(lead, NULL) < 0)
            fail_submit("counter");
    }
    r->nopen = 0;
}

/* OP_POST: sl's batch answered; it joins its channel's counter update of this turn. */
static void join_count(slot *sl)
{
    run *r = sl->r;
    size_t idx = (size_t)(sl->ch - r->channel0);
    uint32_t bucket = ms_bucket_of(sl->id);
    if (sl->listing) {
        r->listed_bucket[idx] = bucket + 1;
        r->listed_until[idx] = uv_now(r->loop) + SC_BUCKET_MEMORY_MS;
    }
    count_group *g = &r->groups[idx];
    if (g->n && g->bucket != bucket) { /* across a bucket boundary: counted alone */
        sl->cnt = 1;
        sl->members = NULL;
        sl->step = 1;
        if (send_floor(sl, NULL) < 0)
            fail_submit("counter");
        return;
    }
    if (g->n++ == 0) {
        g->bucket = bucket;
        r->open[r->nopen++] = (int)idx;
        uv_idle_start(&r->turn_end, on_turn_end);
    }
    sl->gnext = g->members;
    g->members = sl;
}

static void on_done(cql_result *res, const cql_status *st, void *ud)
{
    slot *sl = ud;
    run *r = sl->r;
    if (r->measuring)
        r->requests++;
    if (st->code == 0 && r->kind == OP_POST && sl->step == 0) {
        join_count(sl); /* the batch is written: count the message at the end of the turn */
        return;
    }
    if (r->kind == OP_POST && sl->step == 1) { /* the counter answered for its whole group */
        slot *m = sl->members;
        sl->members = NULL;
        while (m) {
            slot *next = m->gnext;
            finish(m, st);
            m = next;
        }
    }
    if (st->code == 0 && r->kind == OP_POST_EACH && sl->step == 0) {
        sl->step = 1; /* the batch is written: count the message */
        if (send_floor(sl, NULL) == 0)
            return;
    } else if (st->code == 0 && r->kind == OP_PAGE && cql_result_has_more_pages(res)) {
        cql_bytes state = cql_result_paging_state(res); /* copied with the request */
        if (send_floor(sl, &state) == 0)
            return;
    }
    finish(sl, st);
}

/* Sends the current step of a floor operation (paging: the next page of a read). */
static int send_floor(slot *sl, const cql_bytes *paging)
{
    run *r = sl->r;
    int wcl = consistency >= 0 ? consistency : CQL_CONSISTENCY_LOCAL_QUORUM;
    cql_statement st;
    cql_statement_init(&st);
    st.values = &sl->v;
    st.consistency = wcl;
    st.no_speculative = true;
    cql_values_reset(&sl->v);
    uint32_t bucket = ms_bucket_of(sl->id);
    switch (r->kind) {
    case OP_POST:
    case OP_POST_EACH:
    case OP_BATCH:
        if (sl->step == 0) {
            /* scylla_messages.c write_message: bucket (unless listed lately), message,
               last_message_id */
            static const sc_stmt_id all[3] = {SC_BUCKET_ADD, SC_MSG_INSERT, SC_META_LAST};
            size_t idx = (size_t)(sl->ch - r->channel0);
            sl->listing = r->kind != OP_POST || r->listed_bucket[idx] != bucket + 1 ||
                          r->listed_until[idx] <= uv_now(r->loop);
            const sc_stmt_id *ids = sl->listing ? all : all + 1;
            int n = sl->listing ? 3 : 2;
            cql_statement bst[3];
            for (int k = 0; k < 3; k++) {
                cql_values_reset(&sl->bv[k]);
                cql_statement_init(&bst[k]);
                bst[k].prepared = k < n ? r->ps[ids[k]] : NULL;
                bst[k].values = &sl->bv[k];
            }
            uint64_t created = ms_snowflake_unix_ms(sl->id, MS_SNOWFLAKE_EPOCH_DISCORD);
            cql_values *m = &sl->bv[n - 2]; /* bind_message: a plain text message */
            if (sl->listing) {
                bind_xid(r, &sl->bv[0], sl->ch);
                cql_values_add_int(&sl->bv[0], (int32_t)bucket);
            }
            bind_xid(r, m, sl->ch);
            cql_values_add_int(m, (int32_t)bucket);
            cql_values_add_bigint(m, (int64_t)sl->id);
            bind_xid(r, m, 9);
            cql_values_add_tinyint(m, 0);
            cql_values_add_tinyint(m, 0);
            cql_values_add_text(m, r->value, (size_t)value_size);
            for (int k = 0; k < 6; k++) /* reply_to, attachments, metadata, nonce, telegram */
                cql_values_add_unset(m);
            cql_values_add_bigint(m, (int64_t)created);
            cql_values *last = &sl->bv[n - 1];
            cql_values_add_bigint(last, (int64_t)(created * 1000));
            cql_values_add_bigint(last, (int64_t)sl->id);
            bind_xid(r, last, sl->ch);
            cql_batch_request br;
            cql_batch_request_init(&br);
            br.kind = CQL_BATCH_KIND_UNLOGGED;
            br.statements = bst;
            br.count = (size_t)n;
            br.consistency = wcl;
            br.idempotent = true;
            br.no_speculative = true;
            return cql_session_batch(r->s, &br, on_done, sl);
        }
        __attribute__((fallthrough)); /* the post's second step: the counter */
    case OP_COUNTER:
        cql_values_add_bigint(&sl->v, r->kind == OP_POST ? (int64_t)sl->cnt : 1);
        bind_xid(r, &sl->v, sl->ch);
        cql_values_add_int(&sl->v, (int32_t)bucket);
        st.prepared = r->ps[SC_COUNT_MSG];
        st.idempotent = false; /* a counter update is never retried */
        break;
    case OP_PAGE:
        bind_xid(r, &sl->v, sl->ch);
        cql_values_add_int(&sl->v, (int32_t)ms_bucket_of(next_id(r)));
        cql_values_add_bigint(&sl->v, INT64_MAX); /* STORE_ID_MAX: the latest */
        cql_values_add_int(&sl->v, 51);           /* the limit + 1: is there more */
        st.prepared = r->ps[SC_PAGE_BEFORE];
        st.consistency = consistency >= 0 ? consistency : CQL_CONSISTENCY_LOCAL_QUORUM;
        st.idempotent = true;
        st.no_speculative = false;
        st.page_size = page_rows;
        if (paging)
            st.paging_state = *paging;
        break;
    case OP_GET:
        bind_xid(r, &sl->v, sl->ch);
        cql_values_add_int(&sl->v, (int32_t)bucket);
        cql_values_add_bigint(&sl->v, (int64_t)sl->id);
        st.prepared = r->ps[SC_MSG_GET];
        st.idempotent = true;
        st.no_speculative = false;
        break;
    case OP_NONCE: {
        char nonce[40];
        int n = snprintf(nonce, sizeof nonce, "n-%016" PRIx64 "", sl->id);
        bind_xid(r, &sl->v, sl->ch);
        cql_values_add_text(&sl->v, nonce, (size_t)n);
        cql_values_add_bigint(&sl->v, (int64_t)sl->id);
        cql_values_add_bigint(&sl->v, (int64_t)now_ms());
        st.prepared = r->ps[SC_NONCE_CLAIM];
        st.serial_consistency = CQL_CONSISTENCY_LOCAL_SERIAL;
        break;
    }
    case OP_TELEGRAM:
        cql_values_add_bigint(&sl->v, (int64_t)(sl->id & INT64_MAX));
        cql_values_add_bigint(&sl->v, (int64_t)sl->ch);
        bind_xid(r, &sl->v, sl->ch);
        cql_values_add_bigint(&sl->v, (int64_t)sl->id);
        cql_values_add_bigint(&sl->v, (int64_t)now_ms());
        st.prepared = r->ps[SC_TG_CLAIM];
        st.serial_consistency = CQL_CONSISTENCY_LOCAL_SERIAL;
        break;
    default:
        return MS_ERR_INVALID;
    }
    return cql_session_execute(r->s, &st, on_done, sl);
}

static void on_store_msg(int status, const char *detail, const store_message_result *res, void *ud)
{
    (void)res;
    slot *sl = ud;
    cql_status st = {.code = status};
    if (status)
        snprintf(st.message, sizeof st.message, "%s", detail ? detail : ms_err_str(status));
    if (sl->r->measuring)
        sl->r->requests += res ? res->hdr.queries : 0;
    finish(sl, &st);
}

static void submit(slot *sl)
{
    run *r = sl->r;
    sl->start_ns = uv_hrtime();
    sl->step = 0;
    r->outstanding++;
    if (r->kind >= OP_POST) {
        if ((r->kind == OP_GET || r->kind == OP_STORE_GET) && r->nseeded) {
            size_t k = next_rand(r) % (r->nseeded < 256 ? r->nseeded : 256);
            sl->ch = r->seeded[0][k];
            sl->id = r->seeded[1][k];
        } else {
            sl->ch = r->channel0 + next_rand(r) % (uint64_t)nchannels;
            sl->id = next_id(r);
        }
        if (r->kind == OP_STORE_GET) {
            /* the channel as bind_xid binds it: {0, ch} */
            store_get_req q = {.channel_id = ms_xid_int(sl->ch), .message_id = sl->id};
            if (store_get(r->st, r->loop, &q, on_store_msg, sl) < 0)
                fail_submit(op_names[r->kind]);
            return;
        }
        if (send_floor(sl, NULL) < 0)
            fail_submit(op_names[r->kind]);
        return;
    }
    cql_values_reset(&sl->v);
    cql_values_add_bigint(&sl->v, (int64_t)next_key(r));
    cql_statement st;
    cql_statement_init(&st);
    st.values = &sl->v;
    st.idempotent = true;
    st.consistency = consistency >= 0 ? consistency : CQL_CONSISTENCY_ONE;
    if (r->kind == OP_SELECT) {
        st.prepared = r->sel;
    } else {
        cql_values_add_text(&sl->v, r->value, (size_t)value_size);
        st.prepared = r->ins;
    }
    if (cql_session_execute(r->s, &st, on_done, sl) < 0)
        fail_submit(op_names[r->kind]);
}

static void on_timer(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

static void run_for(uv_loop_t *loop, double seconds)
{
    uv_timer_t t;
    bool done = false;
    uv_timer_init(loop, &t);
    t.data = &done;
    uv_timer_start(&t, on_timer, (uint64_t)(seconds * 1000), 0);
    while (!done)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static void drain(run *r)
{
    r->stopping = true;
    while (r->outstanding > 0)
        uv_run(r->loop, UV_RUN_ONCE);
}

/* Runs n operations of kind at up to conc in flight, unmeasured (the page mode's data). */
static int run_count(run *r, op_kind kind, slot *slots, int conc, uint64_t n)
{
    r->kind = kind;
    r->measuring = false;
    r->stopping = false;
    r->limit = n;
    r->done = 0;
    for (int i = 0; i < conc && (uint64_t)i < n; i++)
        submit(&slots[i]);
    drain(r);
    r->limit = 0;
    return 0;
}

static void phase(run *r, op_kind kind, slot *slots)
{
    memset(hist, 0, sizeof(hist));
    hist_n = 0;
    r->kind = kind;
    r->ops = r->errors = r->requests = 0;
    r->stopping = false;
    r->measuring = false;
    for (int i = 0; i < concurrency; i++)
        submit(&slots[i]);
    run_for(r->loop, warmup);
    r->measuring = true;
    double cpu0 = cpu_seconds(), srv0 = server_cpu_seconds();
    uint64_t t0 = uv_hrtime();
    run_for(r->loop, duration);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    double cpu = cpu_seconds() - cpu0, srv1 = server_cpu_seconds();
    r->measuring = false;
    drain(r);
    char srv[64] = "";
    if (srv0 >= 0 && srv1 >= 0 && r->ops)
        snprintf(srv, sizeof srv, "  server CPU %7.1f us/op",
                 (srv1 - srv0 - server_idle_rate * secs) * 1e6 / (double)r->ops);
    printf("%-8s conc %4d  ops %9" PRIu64 "  %9.0f ops/s  p50 %7.3f ms  p99 %7.3f ms  "
           "p999 %7.3f ms  client CPU %5.2f us/op (%4.1f%% of a core)  req/op %.2f%s  "
           "errors %" PRIu64 "\n",
           op_names[kind], concurrency, r->ops, (double)r->ops / secs,
           (double)percentile(0.50) / 1000.0, (double)percentile(0.99) / 1000.0,
           (double)percentile(0.999) / 1000.0, r->ops ? cpu * 1e6 / (double)r->ops : 0.0,
           100.0 * cpu / secs, r->ops ? (double)r->requests / (double)r->ops : 0.0, srv, r->errors);
    if (r->errors)
        printf("         last error: %s\n", r->last_err);
    fflush(stdout);
}

/* The store's settings (OP_STORE_GET): this run's node, data center and keyspace. */
static const char *store_lookup(const char *name, void *ctx)
{
    (void)ctx;
    if (strcmp(name, "SCYLLA_ENABLED") == 0)
        return "true";
    if (strcmp(name, "SCYLLA_CONTACT_POINTS") == 0)
        return hosts;
    if (strcmp(name, "SCYLLA_KEYSPACE") == 0)
        return keyspace;
    if (strcmp(name, "SCYLLA_LOCAL_DATACENTER") == 0 && dc)
        return dc;
    if (strcmp(name, "MSGSTORE_LOG_LEVEL") == 0)
        return "warn";
    return getenv(name);
}

/* Opens the store whose operations OP_STORE_GET runs on this loop (keyspace already migrated). */
static int open_store(run *r)
{
    static ms_config cfg;
    char err[512];
    if (ms_config_load(&cfg, store_lookup, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "store config: %s\n", err);
        return -1;
    }
    store_options opt = {.no_coalesce = true, .no_migrate = true};
    if (store_open(&cfg.store, &opt, &r->st, err, sizeof err) != 0) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    return 0;
}

static void on_connect(cql_session *s, const cql_status *st, void *ud)
{
    (void)s;
    *(int *)ud = st->code == 0 ? 1 : -1;
    if (st->code)
        fprintf(stderr, "connect: %s\n", st->message);
}

static void on_closed(void *ud)
{
    *(bool *)ud = true;
}

static int sync_q(cql_sync *c, const char *q)
{
    cql_status st;
    int rc = cql_sync_query(c, q, NULL, &st);
    if (rc)
        fprintf(stderr, "%s: %s\n", q, st.message);
    return rc;
}

typedef struct prep_wait {
    cql_prepared **out;
    int *failed;
} prep_wait;

static void on_prepared(cql_prepared *p, const cql_status *st, void *ud)
{
    prep_wait *w = ud;
    *w->out = p;
    if (!p) {
        fprintf(stderr, "prepare: %s\n", st->message);
        (*w->failed)++;
    }
    free(w);
}

static void prepare(run *r, const char *q, cql_prepared **out, int *failed)
{
    prep_wait *w = malloc(sizeof *w);
    if (!w)
        exit(1);
    w->out = out;
    w->failed = failed;
    cql_session_prepare(r->s, q, on_prepared, w);
}

/* The statement text of the store with its keyspace ("@." in the table). */
static char *stmt_text(sc_stmt_id id)
{
    const char *t = sc_stmt[id].cql;
    size_t kl = strlen(keyspace), n = strlen(t) + 1;
    for (const char *p = t; (p = strstr(p, "@.")); p += 2)
        n += kl;
    char *out = malloc(n), *o = out;
    if (!out)
        exit(1);
    for (const char *p = t; *p;) {
        if (p[0] == '@' && p[1] == '.') {
            memcpy(o, keyspace, kl);
            o += kl;
            *o++ = '.';
            p += 2;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

static int parse_ops(const char *names, op_kind *out, int max)
{
    int n = 0;
    if (strcmp(names, "both") == 0) {
        out[0] = OP_INSERT;
        out[1] = OP_SELECT;
        return 2;
    }
    const char *p = names;
    while (*p && n < max) {
        size_t l = strcspn(p, ",");
        int k = -1;
        for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
            if (strlen(op_names[i]) == l && strncmp(op_names[i], p, l) == 0)
                k = (int)i;
        if (k < 0) {
            fprintf(stderr, "unknown op: %.*s\n", (int)l, p);
            return -1;
        }
        out[n++] = (op_kind)k;
        p += l;
        if (*p == ',')
            p++;
    }
    return n;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) < 0) {
        fprintf(stderr, "usage: see the comment at the top of bench/cql_bench.c\n");
        return 2;
    }
    ms_log_setup(MS_LOG_WARN, false);
    op_kind ops[16];
    int nops = parse_ops(op_name, ops, 16);
    if (nops <= 0)
        return 2;
    bool kv = false, floor = false;
    for (int i = 0; i < nops; i++)
        *(ops[i] >= OP_POST ? &floor : &kv) = true;
    if (!page_rows)
        page_rows =
            51; /* scylla_messages.c take_read: one partition's read paged by the rows wanted */

    cql_options o;
    cql_options_init(&o);
    o.contact_points = hosts;
    o.local_dc = dc;
    o.pool_size = pool;
    o.compression = compression != 0;
    o.default_consistency = CQL_CONSISTENCY_ONE;
    o.request_timeout_ms = 20000;

    /* schema with the sync layer: the kv table; the floor's keyspace is msgstore migrate's */
    cql_sync *admin;
    cql_status st;
    if (cql_sync_connect(&o, &admin, &st) != 0) {
        fprintf(stderr, "connect: %s\n", st.message);
        return 1;
    }
    if (kv && (sync_q(admin, "CREATE KEYSPACE IF NOT EXISTS cql_bench WITH replication = "
                             "{'class': 'SimpleStrategy', 'replication_factor': 1}") ||
               sync_q(admin, "CREATE TABLE IF NOT EXISTS cql_bench.kv (k bigint PRIMARY KEY, "
                             "v text)")))
        return 1;
    cql_sync_close(admin);

    uv_loop_t loop;
    uv_loop_init(&loop);
    run r;
    memset(&r, 0, sizeof(r));
    r.loop = &loop;
    r.rng = 0x9E3779B97F4A7C15ULL ^ now_ms();
    /* channels of their own in each run: 1e12 + a time-derived offset */
    r.channel0 = 1000000000000ULL + (now_ms() % 100000000ULL) * 1000;
    r.value = malloc((size_t)value_size + 1);
    for (int i = 0; i < value_size; i++)
        r.value[i] = (char)('a' + i % 26);
    char err[256];
    if (cql_session_new(&loop, &o, &r.s, err, sizeof(err)) < 0) {
        fprintf(stderr, "session: %s\n", err);
        return 1;
    }
    int connected = 0;
    cql_session_connect(r.s, on_connect, &connected);
    while (!connected)
        uv_run(&loop, UV_RUN_ONCE);
    if (connected < 0)
        return 1;
    int failed = 0;
    if (kv) {
        prepare(&r, "INSERT INTO cql_bench.kv (k, v) VALUES (?, ?)", &r.ins, &failed);
        prepare(&r, "SELECT v FROM cql_bench.kv WHERE k = ?", &r.sel, &failed);
        while ((!r.ins || !r.sel) && !failed)
            uv_run(&loop, UV_RUN_ONCE);
    }
    if (floor) {
        char *texts[NFLOOR];
        for (size_t i = 0; i < NFLOOR; i++) {
            texts[i] = stmt_text(floor_stmts[i]);
            prepare(&r, texts[i], &r.ps[floor_stmts[i]], &failed);
        }
        for (size_t i = 0; i < NFLOOR && !failed; i++)
            while (!r.ps[floor_stmts[i]] && !failed)
                uv_run(&loop, UV_RUN_ONCE);
        for (size_t i = 0; i < NFLOOR; i++)
            free(texts[i]);
        if (failed) {
            fprintf(stderr,
                    "the floor needs keyspace %s migrated by `msgstore migrate` "
                    "(SCYLLA_KEYSPACE=%s)\n",
                    keyspace, keyspace);
            return 1;
        }
        /* channel ids are bigint or uuid per the store's id format */
        const cql_metadata *pm = cql_prepared_params(r.ps[SC_BUCKET_ADD]);
        r.uuid_ids = pm && pm->column_count > 0 && pm->columns[0].type &&
                     pm->columns[0].type->id == CQL_TYPE_UUID;
    }
    if (failed)
        return 1;

    r.listed_bucket = calloc((size_t)nchannels, sizeof *r.listed_bucket);
    r.listed_until = calloc((size_t)nchannels, sizeof *r.listed_until);
    r.groups = calloc((size_t)nchannels, sizeof *r.groups);
    r.open = calloc((size_t)nchannels, sizeof *r.open);
    if (!r.listed_bucket || !r.listed_until || !r.groups || !r.open)
        return 1;
    uv_idle_init(&loop, &r.turn_end);
    r.turn_end.data = &r;
    slot *slots = calloc((size_t)concurrency, sizeof(*slots));
    for (int i = 0; i < concurrency; i++) {
        slots[i].r = &r;
        cql_values_init(&slots[i].v);
        for (int k = 0; k < 3; k++)
            cql_values_init(&slots[i].bv[k]);
    }
    printf("cql_bench: hosts %s, pool %d, LZ4 %s, %.0f s + %.0f s warm-up per phase", hosts, pool,
           compression ? "on" : "off", duration, warmup);
    if (kv)
        printf("; kv: %d keys, %d-byte values, CL %s", nkeys, value_size,
               cql_consistency_name(consistency >= 0 ? consistency : CQL_CONSISTENCY_ONE));
    if (floor)
        printf("; floor: keyspace %s, %d channel(s), %d-byte messages, CL %s, %d rows per page",
               keyspace, nchannels, value_size,
               cql_consistency_name(consistency >= 0 ? consistency : CQL_CONSISTENCY_LOCAL_QUORUM),
               page_rows);
    printf("\n");
    if (server_pids) {
        double c0 = server_cpu_seconds();
        uint64_t t0 = uv_hrtime();
        run_for(&loop, 3);
        double c1 = server_cpu_seconds(), secs = (double)(uv_hrtime() - t0) / 1e9;
        if (c0 >= 0 && c1 >= 0)
            server_idle_rate = (c1 - c0) / secs;
        printf("server %s idle: %.1f%% of a core (subtracted from server CPU per operation)\n",
               server_pids, 100.0 * server_idle_rate);
    }
    for (int i = 0; i < nops; i++) {
        if (ops[i] == OP_STORE_GET && !r.st && open_store(&r) != 0)
            return 1;
        if ((ops[i] == OP_PAGE || ops[i] == OP_GET || ops[i] == OP_STORE_GET) && !r.nseeded) {
            /* 200 messages in the current bucket of each channel: the page reads 51 of them */
            int all = nchannels;
            uint64_t base = r.channel0;
            nchannels = 1; /* submit() draws the channel: one channel at a time */
            for (int c = 0; c < all && !r.seed_errors; c++) {
                r.channel0 = base + (uint64_t)c;
                run_count(&r, OP_POST_EACH, slots, concurrency < 64 ? concurrency : 64, 200);
            }
            nchannels = all;
            r.channel0 = base;
            if (r.seed_errors) {
                fprintf(stderr, "writing the page's messages: %s\n", r.last_err);
                return 1;
            }
        }
        phase(&r, ops[i], slots);
    }

    for (int i = 0; i < concurrency; i++) {
        cql_values_free(&slots[i].v);
        for (int k = 0; k < 3; k++)
            cql_values_free(&slots[i].bv[k]);
    }
    free(slots);
    if (r.st)
        store_loop_detach(r.st, &loop); /* its handles close with the loop's run below */
    uv_close((uv_handle_t *)&r.turn_end, NULL);
    free(r.listed_bucket);
    free(r.listed_until);
    free(r.groups);
    free(r.open);
    cql_prepared_release(r.ins);
    cql_prepared_release(r.sel);
    for (int i = 0; i < SC_NSTMT; i++)
        cql_prepared_release(r.ps[i]);
    bool closed = false;
    cql_session_close(r.s, 5000, on_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (r.st)
        store_close(r.st);
    uv_loop_close(&loop);
    free(r.value);
    return 0;
}
