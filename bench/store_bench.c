/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_bench - message store throughput and latency, through the public
 * async API on one libuv loop (as one server worker would call it).
 *
 *   store_bench [sqlite|scylla] [--inserts=N] [--pages=N] [--scale=N]
 *               [--concurrency=N] [--path=FILE]
 *
 * Phases (each prints one line; latencies are from call to callback):
 *   insert         N inserts into one channel, `concurrency` in flight
 *   latest         latest page (50) of a 10k-message channel, concurrency in
 *                  flight, coalescing off and on (a hot channel)
 *   before/around  pages (50) at random anchors in the same channel
 *   scale          latest page (50), one request at a time, alternately in a
 *                  channel of 1k messages (one day) and of `scale` (default
 *                  1M) messages spread over 2 years
 *   sparse         queries a page costs: a channel with one message a year for
 *                  10 years vs a dense one
 * SQLite: a file in a temp dir (removed at exit) unless --path. ScyllaDB: the
 * SCYLLA_* settings (keyspace msgstore_bench by default), migrated first.
 */
#include "core/config.h"
#include "core/log.h"
#include "core/snowflake.h"
#include "msgstore/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DAY_MS (24ULL * 60 * 60 * 1000)

static store *S;

/* Channel or user number n as an id of the store's format (a UUID whose low bits are n). */
static ms_xid XID(uint64_t n)
{
    if (store_id_format(S) == MS_ID_INT64)
        return ms_xid_int(n);
    return (ms_xid){0x6f1c2b3a5d7e4000ULL, 0x8000000000000000ULL | n};
}
static ms_config CFG;
static bool SCYLLA;
static char PATH[300];
static uv_loop_t LOOP;

/* ------------------------------------------------------------------ driver */

typedef struct run run;
typedef int (*issue_fn)(run *r, uint64_t i, void *slot);

struct run {
    uint64_t total, issued, done, errors;
    int window;
    uint64_t *lat_ns; /* per op */
    issue_fn issue;
    void *ctx;
    uint64_t queries;
};

typedef struct slot {
    run *r;
    uint64_t i;
    uint64_t t0;
} slot;

static void finish(slot *s, int status, uint32_t queries);

static void next(slot *s)
{
    run *r = s->r;
    if (r->issued >= r->total)
        return;
    s->i = r->issued++;
    s->t0 = uv_hrtime();
    if (r->issue(r, s->i, s) != 0) {
        r->errors++;
        r->done++;
    }
}

static void finish(slot *s, int status, uint32_t queries)
{
    run *r = s->r;
    r->lat_ns[s->i] = uv_hrtime() - s->t0;
    if (status)
        r->errors++;
    r->queries += queries;
    r->done++;
    next(s);
}

static void on_msg(int status, const char *detail, const store_message_result *res, void *ud)
{
    (void)detail;
    finish(ud, status, res ? res->hdr.queries : 0);
}

static void on_page(int status, const char *detail, const store_page_result *res, void *ud)
{
    (void)detail;
    finish(ud, status, res ? res->hdr.queries : 0);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct result {
    double secs, ops_per_s, p50_ms, p99_ms, max_ms, queries_per_op;
    uint64_t errors;
} result;

/* Percentiles of n latencies (sorted in place) taken over secs. */
static result summarize(uint64_t *lat_ns, uint64_t n, double secs, uint64_t errors,
                        uint64_t queries)
{
    qsort(lat_ns, n, sizeof *lat_ns, cmp_u64);
    result out = {0};
    out.secs = secs;
    out.ops_per_s = (double)n / out.secs;
    out.p50_ms = (double)lat_ns[n / 2] / 1e6;
    out.p99_ms = (double)lat_ns[(size_t)((double)n * 0.99)] / 1e6;
    out.max_ms = (double)lat_ns[n - 1] / 1e6;
    out.errors = errors;
    out.queries_per_op = (double)queries / (double)n;
    return out;
}

/*
 * Runs `total` operations, `window` in flight. With `split`, the even and odd
 * operations are summarized apart (*split: the odd ones), so two workloads
 * issued alternately see the same machine at the same moments.
 */
static result drive_split(uint64_t total, int window, issue_fn issue, void *ctx, result *split)
{
    run r = {.total = total, .window = window, .issue = issue, .ctx = ctx};
    r.lat_ns = calloc(total, sizeof *r.lat_ns);
    slot *slots = calloc((size_t)window, sizeof *slots);
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < window; i++) {
        slots[i].r = &r;
        next(&slots[i]);
    }
    while (r.done < total)
        uv_run(&LOOP, UV_RUN_ONCE);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    result out;
    if (split) {
        uint64_t half = total / 2;
        uint64_t *odd = calloc(half ? half : 1, sizeof *odd);
        for (uint64_t i = 0; i < half; i++) { /* evens to the front, odds apart */
            odd[i] = r.lat_ns[2 * i + 1];
            r.lat_ns[i] = r.lat_ns[2 * i];
        }
        /* errors and queries are not told apart: each half gets its share */
        out = summarize(r.lat_ns, half, secs, r.errors / 2, r.queries / 2);
        *split = summarize(odd, half, secs, r.errors - r.errors / 2, r.queries - r.queries / 2);
        free(odd);
    } else {
        out = summarize(r.lat_ns, total, secs, r.errors, r.queries);
    }
    free(r.lat_ns);
    free(slots);
    return out;
}

static result drive(uint64_t total, int window, issue_fn issue, void *ctx)
{
    return drive_split(total, window, issue, ctx, NULL);
}

static void report(const char *name, uint64_t n, int window, result res)
{
    printf("| %-34s | %8" PRIu64 " | %4d | %10.0f | %8.3f | %8.3f | %8.3f | %6.2f | %" PRIu64
           " |\n",
           name, n, window, res.ops_per_s, res.p50_ms, res.p99_ms, res.max_ms, res.queries_per_op,
           res.errors);
    fflush(stdout);
}

/* ------------------------------------------------------------------ phases */

typedef struct ins_ctx {
    uint64_t channel;
    uint64_t t_start, t_step; /* at_ms hook: spread over time (0: now) */
    char content[200];
} ins_ctx;

static int issue_insert(run *r, uint64_t i, void *s)
{
    ins_ctx *c = r->ctx;
    store_insert_req q = {0};
    q.channel_id = XID(c->channel);
    q.sender_id = XID(1 + i % 1000);
    q.type = STORE_MSG_TEXT;
    q.source = STORE_SRC_WEB;
    q.content = c->content;
    q.content_len = strlen(c->content);
    if (c->t_start)
        q.at_ms = c->t_start + i * c->t_step;
    return store_insert(S, &LOOP, &q, on_msg, s);
}

typedef struct page_ctx {
    uint64_t channel;
    store_page_mode mode;
    uint64_t lo, hi; /* anchors drawn uniformly between these ids */
    uint64_t rng;
} page_ctx;

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static int issue_page(run *r, uint64_t i, void *s)
{
    (void)i;
    page_ctx *c = r->ctx;
    store_page_req q = {.channel_id = XID(c->channel), .mode = c->mode, .limit = 50};
    if (c->mode != STORE_PAGE_LATEST)
        q.anchor = c->lo + xorshift(&c->rng) % (c->hi - c->lo);
    return store_page(S, &LOOP, &q, on_page, s);
}

/* The latest page of ctx's two channels (uint64_t[2]), alternately. */
static int issue_page_alt(run *r, uint64_t i, void *s)
{
    const uint64_t *pair = r->ctx;
    store_page_req q = {.channel_id = XID(pair[i % 2]), .mode = STORE_PAGE_LATEST, .limit = 50};
    return store_page(S, &LOOP, &q, on_page, s);
}

static uint64_t fill(uint64_t channel, uint64_t n, uint64_t t_start, uint64_t span_ms)
{
    ins_ctx c = {.channel = channel, .t_start = t_start, .t_step = n ? span_ms / n : 0};
    snprintf(c.content, sizeof c.content,
             "benchmark message with some typical length, about "
             "sixty characters");
    if (!t_start)
        c.t_step = 0;
    result res = drive(n, 256, issue_insert, &c);
    return res.errors;
}

static int open_store(bool coalesce)
{
    char err[512];
    store_options opt = {.no_coalesce = !coalesce, .no_migrate = true};
    if (store_open(&CFG.store, &opt, &S, err, sizeof err) != 0) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    return 0;
}

static void close_store(void)
{
    store_loop_detach(S, &LOOP);
    uv_run(&LOOP, UV_RUN_DEFAULT);
    store_close(S);
    S = NULL;
}

static const char *lookup(const char *name, void *ctx)
{
    (void)ctx;
    if (strcmp(name, "SCYLLA_ENABLED") == 0)
        return SCYLLA ? "true" : "false";
    if (strcmp(name, "MSGSTORE_SQLITE_PATH") == 0 && !SCYLLA)
        return PATH;
    if (strcmp(name, "SCYLLA_KEYSPACE") == 0 && SCYLLA && !getenv(name))
        return "msgstore_bench";
    if (strcmp(name, "MSGSTORE_LOG_LEVEL") == 0 && !getenv(name))
        return "warn";
    return getenv(name);
}

static uint64_t arg_u64(const char *a, const char *name, uint64_t def)
{
    size_t n = strlen(name);
    if (strncmp(a, name, n) == 0 && a[n] == '=')
        return strtoull(a + n + 1, NULL, 10);
    return def;
}

int main(int argc, char **argv)
{
    uint64_t n_insert = 50000, n_pages = 20000, n_scale = 1000000;
    int window = 64;
    bool own_path = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "scylla") == 0) {
            SCYLLA = true;
        } else if (strcmp(a, "sqlite") == 0) {
            SCYLLA = false;
        } else if (strncmp(a, "--path=", 7) == 0) {
            snprintf(PATH, sizeof PATH, "%s", a + 7);
            own_path = false;
        } else if (strncmp(a, "--inserts=", 10) == 0) {
            n_insert = arg_u64(a, "--inserts", n_insert);
        } else if (strncmp(a, "--pages=", 8) == 0) {
            n_pages = arg_u64(a, "--pages", n_pages);
        } else if (strncmp(a, "--scale=", 8) == 0) {
            n_scale = arg_u64(a, "--scale", n_scale);
        } else if (strncmp(a, "--concurrency=", 14) == 0) {
            window = (int)arg_u64(a, "--concurrency", (uint64_t)window);
        } else {
            fprintf(stderr,
                    "usage: %s [sqlite|scylla] [--inserts=N] [--pages=N] [--scale=N] "
                    "[--concurrency=N] [--path=FILE]\n",
                    argv[0]);
            return 2;
        }
    }
    char dir[] = "/tmp/msgstore-bench-XXXXXX";
    if (!SCYLLA && own_path) {
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
        snprintf(PATH, sizeof PATH, "%s/bench.db", dir);
    }
    char err[512];
    ms_log_setup(MS_LOG_WARN, false);
    if (ms_config_load(&CFG, lookup, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "config: %s\n", err);
        return 2;
    }
    int applied = 0;
    if (store_migrate(&CFG.store, NULL, NULL, &applied, err, sizeof err) != 0) {
        fprintf(stderr, "migrate: %s\n", err);
        return 1;
    }
    uv_loop_init(&LOOP);
    uint64_t base = SCYLLA ? (ms_clock_realtime_ms(NULL) % 1000000000ULL) * 1000 : 1000;
    uint64_t ch_insert = base + 1, ch_pages = base + 2, ch_small = base + 3, ch_big = base + 4,
             ch_sparse = base + 5, ch_dense = base + 6;

    printf("msgstore store_bench, backend %s\n\n", SCYLLA ? "scylla" : "sqlite");
    printf("| phase                              |      ops | conc |      ops/s |  p50 ms  |  p99 "
           "ms  |  max ms  | q/op   | errors |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");

    if (open_store(true))
        return 1;
    ins_ctx ic = {.channel = ch_insert};
    snprintf(ic.content, sizeof ic.content,
             "benchmark message with some typical length, about sixty characters");
    report("insert", n_insert, window, drive(n_insert, window, issue_insert, &ic));
    report("insert (1 in flight)", n_insert / 10, 1, drive(n_insert / 10, 1, issue_insert, &ic));

    uint64_t now = ms_clock_realtime_ms(NULL);
    fill(ch_pages, 10000, now - 30 * DAY_MS, 29 * DAY_MS);
    uint64_t lo = ms_snowflake_from_unix_ms(now - 29 * DAY_MS, CFG.store.epoch_ms);
    uint64_t hi = ms_snowflake_from_unix_ms(now - DAY_MS, CFG.store.epoch_ms);
    close_store();

    if (open_store(false))
        return 1;
    page_ctx pc = {.channel = ch_pages,
                   .mode = STORE_PAGE_LATEST,
                   .lo = lo,
                   .hi = hi,
                   .rng = 88172645463325252ULL};
    report("latest page 50 (coalescing off)", n_pages, window,
           drive(n_pages, window, issue_page, &pc));
    report("latest page 50 (1 in flight)", n_pages / 4, 1, drive(n_pages / 4, 1, issue_page, &pc));
    pc.mode = STORE_PAGE_BEFORE;
    report("before=random page 50", n_pages, window, drive(n_pages, window, issue_page, &pc));
    pc.mode = STORE_PAGE_AROUND;
    report("around=random page 50", n_pages, window, drive(n_pages, window, issue_page, &pc));
    close_store();

    if (open_store(true))
        return 1;
    pc.mode = STORE_PAGE_LATEST;
    report("latest page 50 (coalescing on)", n_pages, window,
           drive(n_pages, window, issue_page, &pc));
    store_stats st;
    store_get_stats(S, &st);
    printf("\ncoalesced pages: %" PRIu64 " of %" PRIu64 "\n", st.ops[STORE_OP_PAGE].coalesced,
           st.ops[STORE_OP_PAGE].calls);

    /* scale: the latest page in a channel of 1k vs n_scale messages */
    fill(ch_small, 1000, now - 2 * DAY_MS, DAY_MS);
    uint64_t t0 = uv_hrtime();
    uint64_t errs = fill(ch_big, n_scale, now - 730 * DAY_MS, 729 * DAY_MS);
    printf("filled a channel with %" PRIu64 " messages over 2 years in %.1f s (%" PRIu64
           " errors)\n\n",
           n_scale, (double)(uv_hrtime() - t0) / 1e9, errs);
    close_store();
    if (open_store(false))
        return 1;
    printf("| phase                              |      ops | conc |      ops/s |  p50 ms  |  p99 "
           "ms  |  max ms  | q/op   | errors |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    /*
     * Small and big channel alternately, one request at a time: both see the
     * machine at the same moments (measured one after the other, a burst of
     * load on a shared machine lands on one of them only). 200 warm-up pages
     * first (new connections, cold page caches).
     */
    uint64_t pair[2] = {ch_small, ch_big};
    drive(200, 1, issue_page_alt, pair);
    result rb;
    result rs = drive_split(20000, 1, issue_page_alt, pair, &rb);
    report("latest page 50, 1k channel (1 day)", 10000, 1, rs);
    char name[64];
    snprintf(name, sizeof name, "latest page 50, %" PRIu64 " channel (2 y)", n_scale);
    report(name, 10000, 1, rb);
    printf("\nscale ratio (p50 big / small): %.2f, (p99 big / small): %.2f\n",
           rb.p50_ms / rs.p50_ms, rb.p99_ms / rs.p99_ms);

    /* sparse: one message a year for 10 years */
    for (int y = 0; y < 10; y++) {
        store_insert_req q = {.channel_id = XID(ch_sparse),
                              .sender_id = XID(1),
                              .content = "yearly",
                              .content_len = 6,
                              .at_ms = now - (uint64_t)(9 - y) * 365 * DAY_MS - DAY_MS};
        store_message_result *res = NULL;
        if (store_insert_sync(S, &q, &res, NULL, 0) == 0)
            store_free(res);
    }
    fill(ch_dense, 200, 0, 0);
    const struct {
        const char *name;
        uint64_t ch;
        store_page_mode mode;
        int limit;
    } sp[] = {{"sparse: latest 50 (all 10 msgs)", ch_sparse, STORE_PAGE_LATEST, 50},
              {"sparse: latest 3", ch_sparse, STORE_PAGE_LATEST, 3},
              {"dense: latest 50", ch_dense, STORE_PAGE_LATEST, 50}};
    printf("\n| page | messages | queries |\n|---|---:|---:|\n");
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++) {
        store_page_req q = {.channel_id = XID(sp[i].ch), .mode = sp[i].mode, .limit = sp[i].limit};
        store_page_result *res = NULL;
        if (store_page_sync(S, &q, &res, NULL, 0) == 0) {
            printf("| %s | %zu | %u |\n", sp[i].name, res->count, res->hdr.queries);
            store_free(res);
        }
    }
    /* walk the sparse channel back 1 message per page */
    store_page_req q = {.channel_id = XID(ch_sparse), .mode = STORE_PAGE_LATEST, .limit = 1};
    uint32_t maxq = 0, pages = 0;
    for (;;) {
        store_page_result *res = NULL;
        if (store_page_sync(S, &q, &res, NULL, 0) != 0)
            break;
        pages++;
        if (res->hdr.queries > maxq)
            maxq = res->hdr.queries;
        bool more = res->more_older;
        if (res->count)
            q.anchor = res->items[0].id;
        q.mode = STORE_PAGE_BEFORE;
        store_free(res);
        if (!more)
            break;
    }
    printf("| sparse: walk back 1 per page (%u pages, max) | 1 | %u |\n", pages, maxq);
    close_store();
    uv_loop_close(&LOOP);
    if (!SCYLLA && own_path) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    return 0;
}
