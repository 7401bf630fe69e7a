/* SPDX-License-Identifier: Apache-2.0 */
/*
 * search_bench - full-text search (issue 12): POST throughput with search on
 * and off, search latency over a large store, and (ScyllaDB) index lag under
 * steady POST load. Numbers go to docs/benchmarks.md, section "Search".
 *
 *   search_bench [sqlite|scylla] [--messages=N] [--channels=N] [--queries=N]
 *                [--threads=N] [--seconds=N] [--rate=N] [--trigger] [--no-post]
 *                [--store=PATH] [--existing=CH0]
 *
 * Phases (one line each):
 *   post on/off  inserts from `threads` threads for `seconds`, alternately with
 *                search off and on, twice each (one run: the ratio compares
 *                like with like on a shared machine). SQLite off: the same
 *                schema, the index's triggers dropped and the writer told not
 *                to index (store_options.no_search_index). ScyllaDB off: no
 *                MSGSTORE_SEARCH_PG_URL (no change log); on:
 *                the change log and the indexer draining it meanwhile. SQLite
 *                --trigger: a third store, indexed row by row by a trigger as
 *                before schema/sqlite/004 (off, on, trigger, twice each).
 *   fill         `messages` messages over `channels` channels, 12 words each
 *                from a 20000-word vocabulary with Zipf frequencies (then
 *                ScyllaDB waits for the index to catch up)
 *   search       `queries` single-channel searches, one at a time, per kind:
 *                a frequent word, a rare word, two words, a prefix, a phrase;
 *                newest first, limit 20; and relevance for the frequent word
 *   lag          ScyllaDB: `rate` POSTs/s for `seconds`; every 100 ms a probe
 *                message with a unique word is posted and searched for until
 *                found: the time from its 201 to its first hit
 * --no-post skips the first phase. --store=PATH (SQLite): fill and search
 * this file, kept at exit. --existing=CH0: no fill; the store already holds
 * the messages in channels CH0 .. CH0 + channels - 1 (the "fill" line of the
 * run that loaded them prints CH0; a 1M-message cluster store can be loaded
 * faster by `msgstore copy --to-cluster` of such a SQLite file, its index
 * with one INSERT ... SELECT in PostgreSQL: docs/benchmarks.md).
 * SQLite: files in a temp dir (removed at exit). ScyllaDB: the SCYLLA_*
 * settings (keyspace msgstore_search_bench by default) and
 * MSGSTORE_SEARCH_PG_URL (required).
 */
#include "core/config.h"
#include "core/log.h"
#include "core/snowflake.h"
#include "msgstore/store.h"
#include "search/search.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define VOCAB 20000
#define WORDS 12

static bool SCYLLA;
static bool TRIGGER;           /* --trigger: also POST rounds with 003's per-row trigger */
static bool NO_POST;           /* --no-post */
static const char *STORE_PATH; /* --store=PATH */
static char DIR_[256];
static char PATH[300];
static char PG_URL[256];
static double ZIPF_CDF[VOCAB];

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* User + system CPU seconds of this process so far. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Word i of the vocabulary: letters only ("ba", "bb", ...), 4..6 of them. */
static void word(size_t i, char *out)
{
    int n = 0;
    out[n++] = (char)('b' + i % 24);
    i /= 24;
    do {
        out[n++] = (char)('a' + i % 26);
        i /= 26;
    } while (i || n < 4);
    out[n] = '\0';
}

static size_t zipf(uint64_t *rng)
{
    double u = (double)(xorshift(rng) % 1000000007u) / 1000000007.0;
    size_t lo = 0, hi = VOCAB - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ZIPF_CDF[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void sentence(uint64_t *rng, char *out, size_t cap)
{
    size_t w = 0;
    for (int k = 0; k < WORDS; k++) {
        char wd[16];
        word(zipf(rng), wd);
        w += (size_t)snprintf(out + w, cap - w, "%s%s", k ? " " : "", wd);
    }
}

static const char *lookup(const char *name, void *ctx)
{
    const char *url = ctx;
    if (strcmp(name, "SCYLLA_ENABLED") == 0)
        return SCYLLA ? "true" : "false";
    if (strcmp(name, "MSGSTORE_SQLITE_PATH") == 0 && !SCYLLA)
        return PATH;
    if (strcmp(name, "SCYLLA_KEYSPACE") == 0 && SCYLLA && !getenv(name))
        return "msgstore_search_bench";
    if (strcmp(name, "MSGSTORE_SEARCH_PG_URL") == 0)
        return url;
    if (strcmp(name, "MSGSTORE_LOG_LEVEL") == 0 && !getenv(name))
        return "warn";
    return getenv(name);
}

typedef struct bench_store {
    store *st;
    search_index *idx;
} bench_store;

/*
 * Opens a store; search off: SQLite without the index triggers, ScyllaDB without PostgreSQL.
 * trigger (SQLite, --trigger): new messages indexed row by row by 003's trigger, as before 004.
 */
static int open_bs(bench_store *b, bool search, bool trigger, const char *sqlite_path)
{
    memset(b, 0, sizeof *b);
    ms_config cfg;
    char err[512];
    if (!SCYLLA)
        snprintf(PATH, sizeof PATH, "%s", sqlite_path);
    static char none[1] = "";
    if (ms_config_load(&cfg, lookup, search ? PG_URL : none, err, sizeof err) != 0) {
        fprintf(stderr, "config: %s\n", err);
        return -1;
    }
    if (store_migrate(&cfg.store, NULL, NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "migrate: %s\n", err);
        return -1;
    }
    if (!SCYLLA && !search) {
        sqlite3 *db = NULL;
        sqlite3_open(sqlite_path, &db);
        sqlite3_exec(db,
                     "DROP TRIGGER IF EXISTS message_search_insert;"
                     "DROP TRIGGER IF EXISTS message_search_update;"
                     "DROP TRIGGER IF EXISTS message_search_delete;",
                     NULL, NULL, NULL);
        sqlite3_close(db);
    }
    if (!SCYLLA && trigger) {
        sqlite3 *db = NULL;
        sqlite3_open(sqlite_path, &db);
        sqlite3_exec(db,
                     "CREATE TRIGGER IF NOT EXISTS message_search_insert AFTER INSERT ON messages "
                     "WHEN NEW.is_deleted = 0 AND NEW.content <> '' BEGIN "
                     "INSERT INTO message_search(rowid, content, channel) "
                     "VALUES (NEW.message_id, NEW.content, 'c' || hex(NEW.channel_id)); END;",
                     NULL, NULL, NULL);
        sqlite3_close(db);
    }
    store_options opt = {.no_migrate = true, .no_search_index = !SCYLLA && (!search || trigger)};
    if (store_open(&cfg.store, &opt, &b->st, err, sizeof err) != 0) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    if (SCYLLA && search && search_index_open(&cfg, b->st, &b->idx, err, sizeof err) != 0) {
        fprintf(stderr, "search_index_open: %s\n", err);
        store_close(b->st);
        return -1;
    }
    return 0;
}

static void close_bs(bench_store *b)
{
    search_index_close(b->idx);
    store_close(b->st);
}

/* ------------------------------------------------------------------ inserts */

typedef struct inserter {
    store *st;
    uint64_t channel0, nchannels;
    uint64_t seed;
    uint64_t deadline_ns; /* 0: count instead */
    uint64_t count;       /* messages to insert when no deadline */
    uint64_t done, errors;
} inserter;

static int insert_one(store *st, uint64_t ch, const char *text)
{
    store_insert_req r = {
        .channel_id = ms_xid_int(ch), .sender_id = ms_xid_int(1), .content = text};
    r.content_len = strlen(text);
    store_message_result *res = NULL;
    int rc = store_insert_sync(st, &r, &res, NULL, 0);
    store_free(res);
    return rc;
}

static void *insert_main(void *arg)
{
    inserter *in = arg;
    char text[256];
    for (uint64_t i = 0;; i++) {
        if (in->deadline_ns ? now_ns() >= in->deadline_ns : i >= in->count)
            break;
        sentence(&in->seed, text, sizeof text);
        uint64_t ch = in->channel0 + xorshift(&in->seed) % in->nchannels;
        if (insert_one(in->st, ch, text) == 0)
            in->done++;
        else
            in->errors++;
    }
    return NULL;
}

/* Runs `threads` inserters; returns messages per second. */
static double run_inserts(store *st, int threads, uint64_t ch0, uint64_t nch, double seconds,
                          uint64_t count, uint64_t *errors)
{
    pthread_t t[64];
    inserter in[64];
    uint64_t t0 = now_ns();
    for (int i = 0; i < threads; i++) {
        in[i] = (inserter){.st = st,
                           .channel0 = ch0,
                           .nchannels = nch,
                           .seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1) ^ t0,
                           .deadline_ns = seconds > 0 ? t0 + (uint64_t)(seconds * 1e9) : 0,
                           .count = count / (uint64_t)threads +
                                    ((uint64_t)i < count % (uint64_t)threads)};
        pthread_create(&t[i], NULL, insert_main, &in[i]);
    }
    uint64_t done = 0;
    *errors = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        done += in[i].done;
        *errors += in[i].errors;
    }
    return (double)done / ((double)(now_ns() - t0) / 1e9);
}

/* ------------------------------------------------------------------ searches */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void pct(uint64_t *v, size_t n, double *p50, double *p99)
{
    qsort(v, n, sizeof *v, cmp_u64);
    *p50 = n ? (double)v[n / 2] / 1e6 : 0;
    *p99 = n ? (double)v[(size_t)((double)n * 0.99)] / 1e6 : 0;
}

static void search_phase(store *st, uint64_t ch0, uint64_t nch, uint64_t queries)
{
    static const char *kinds[] = {"frequent word", "rare word",  "two words",
                                  "prefix",        "phrase (2)", "frequent, relevance"};
    uint64_t *lat = calloc(queries, sizeof *lat);
    uint64_t rng = 12345;
    for (int k = 0; k < 6; k++) {
        uint64_t hits = 0, errors = 0;
        for (uint64_t i = 0; i < queries; i++) {
            char q[64], a[16], b[16];
            switch (k) {
            case 0:
            case 5:
                word(xorshift(&rng) % 20, a); /* among the 20 most frequent */
                snprintf(q, sizeof q, "%s", a);
                break;
            case 1:
                word(1000 + xorshift(&rng) % 10000, a);
                snprintf(q, sizeof q, "%s", a);
                break;
            case 2:
                word(xorshift(&rng) % 200, a);
                word(xorshift(&rng) % 200, b);
                snprintf(q, sizeof q, "%s %s", a, b);
                break;
            case 3:
                word(xorshift(&rng) % 2000, a);
                a[3] = '\0';
                snprintf(q, sizeof q, "%s*", a);
                break;
            default:
                word(xorshift(&rng) % 50, a);
                word(xorshift(&rng) % 50, b);
                snprintf(q, sizeof q, "\"%s %s\"", a, b);
                break;
            }
            ms_xid ch = ms_xid_int(ch0 + xorshift(&rng) % nch);
            store_search_req r = {.channel_ids = &ch,
                                  .nchannels = 1,
                                  .query = q,
                                  .limit = 20,
                                  .sort = k == 5 ? STORE_SEARCH_RELEVANCE : STORE_SEARCH_NEWEST};
            store_search_result *res = NULL;
            uint64_t t0 = now_ns();
            int rc = store_search_sync(st, &r, &res, NULL, 0);
            lat[i] = now_ns() - t0;
            if (rc)
                errors++;
            else
                hits += res->count;
            store_free(res);
        }
        double p50, p99;
        pct(lat, queries, &p50, &p99);
        printf("search %-20s %6" PRIu64 " queries  p50 %7.2f ms  p99 %7.2f ms  hits/query %5.1f"
               "  errors %" PRIu64 "\n",
               kinds[k], queries, p50, p99, (double)hits / (double)queries, errors);
        fflush(stdout);
    }
    free(lat);
}

/* ------------------------------------------------------------------ lag (ScyllaDB) */

typedef struct pacer {
    store *st;
    uint64_t ch0, nch;
    double rate;
    uint64_t deadline_ns;
    _Atomic uint64_t sent;
} pacer;

static void *pace_main(void *arg)
{
    pacer *p = arg;
    uint64_t rng = now_ns() | 1, t0 = now_ns(), i = 0;
    char text[256];
    while (now_ns() < p->deadline_ns) {
        uint64_t due = t0 + (uint64_t)((double)i * 1e9 / p->rate);
        uint64_t t = now_ns();
        if (due > t) {
            struct timespec ts = {0, (long)(due - t)};
            nanosleep(&ts, NULL);
        }
        sentence(&rng, text, sizeof text);
        insert_one(p->st, p->ch0 + xorshift(&rng) % p->nch, text);
        atomic_fetch_add(&p->sent, 1);
        i++;
    }
    return NULL;
}

static void lag_phase(store *st, uint64_t ch0, uint64_t nch, double rate, double seconds)
{
    pacer p = {.st = st, .ch0 = ch0, .nch = nch, .rate = rate / 2};
    p.deadline_ns = now_ns() + (uint64_t)(seconds * 1e9);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, pace_main, &p);
    uint64_t lat[4096];
    size_t n = 0, lost = 0;
    uint64_t probe = ch0 + nch; /* a channel of the probes' own */
    ms_xid probe_x = ms_xid_int(probe);
    while (now_ns() < p.deadline_ns && n < 4096) {
        char text[64], q[32];
        snprintf(q, sizeof q, "probe%zux%" PRIu64, n, now_ns() % 1000000);
        snprintf(text, sizeof text, "lag %s", q);
        if (insert_one(st, probe, text) != 0)
            continue;
        uint64_t t0 = now_ns();
        bool hit = false;
        while (!hit && now_ns() - t0 < 30000000000ULL) {
            store_search_req r = {.channel_ids = &probe_x, .nchannels = 1, .query = q, .limit = 1};
            store_search_result *res = NULL;
            if (store_search_sync(st, &r, &res, NULL, 0) == 0 && res->count)
                hit = true;
            store_free(res);
            if (!hit) {
                struct timespec ts = {0, 5000000};
                nanosleep(&ts, NULL);
            }
        }
        if (hit)
            lat[n++] = now_ns() - t0;
        else
            lost++;
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    double p50, p99;
    pct(lat, n, &p50, &p99);
    printf("lag    %.0f POST/s for %.0f s (%" PRIu64
           " sent): %zu probes  201 -> found p50 %.0f ms  "
           "p99 %.0f ms  not found in 30 s: %zu\n",
           rate, seconds, atomic_load(&p.sent), n, p50, p99, lost);
}

/* ------------------------------------------------------------------ main */

static uint64_t arg_u64(const char *a, const char *name, uint64_t def)
{
    size_t n = strlen(name);
    if (strncmp(a, name, n) == 0 && a[n] == '=')
        return strtoull(a + n + 1, NULL, 10);
    return def;
}

int main(int argc, char **argv)
{
    uint64_t messages = 1000000, channels = 100, queries = 500, threads = 4, seconds = 10,
             rate = 200, existing = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "scylla") == 0)
            SCYLLA = true;
        else if (strcmp(a, "sqlite") == 0)
            SCYLLA = false;
        else if (strcmp(a, "--trigger") == 0)
            TRIGGER = true;
        else if (strcmp(a, "--no-post") == 0)
            NO_POST = true;
        else if (strncmp(a, "--store=", 8) == 0)
            STORE_PATH = a + 8;
        messages = arg_u64(a, "--messages", messages);
        channels = arg_u64(a, "--channels", channels);
        queries = arg_u64(a, "--queries", queries);
        threads = arg_u64(a, "--threads", threads);
        seconds = arg_u64(a, "--seconds", seconds);
        rate = arg_u64(a, "--rate", rate);
        existing = arg_u64(a, "--existing", existing);
    }
    if (threads < 1 || threads > 64 || channels < 1 || queries < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    ms_log_setup(MS_LOG_WARN, false);
    double sum = 0;
    for (size_t i = 0; i < VOCAB; i++) {
        sum += 1.0 / pow((double)(i + 1), 1.07);
        ZIPF_CDF[i] = sum;
    }
    for (size_t i = 0; i < VOCAB; i++)
        ZIPF_CDF[i] /= sum;
    if (SCYLLA) {
        const char *u = getenv("MSGSTORE_SEARCH_PG_URL");
        if (!u || !*u) {
            fprintf(stderr, "search_bench scylla needs MSGSTORE_SEARCH_PG_URL\n");
            return 2;
        }
        snprintf(PG_URL, sizeof PG_URL, "%s", u);
    } else {
        snprintf(DIR_, sizeof DIR_, "/tmp/msgstore-search-bench-XXXXXX");
        if (!mkdtemp(DIR_))
            return 1;
    }
    char on_path[300], off_path[300], trig_path[300];
    snprintf(on_path, sizeof on_path, "%s/on.db", DIR_);
    snprintf(trig_path, sizeof trig_path, "%s/trigger.db", DIR_);
    snprintf(off_path, sizeof off_path, "%s/off.db", DIR_);
    uint64_t base = (uint64_t)time(NULL) % 100000000ULL * 1000;
    int rc = 0;

    /* 1. POST throughput, off/on (/trigger) alternating in one run */
    static const char *mode_name[3] = {"off", "on", "on, trigger"};
    int modes = TRIGGER && !SCYLLA ? 3 : 2;
    double tput[3] = {0, 0, 0};
    uint64_t errs[3] = {0, 0, 0};
    double cpus[3] = {0, 0, 0}; /* this process's CPU per message (SQLite: the whole store) */
    for (int round = 0; round < (NO_POST ? 0 : 2 * modes); round++) {
        int mode = round % modes;
        bench_store b;
        if (open_bs(&b, mode != 0, mode == 2,
                    mode == 0   ? off_path
                    : mode == 1 ? on_path
                                : trig_path) != 0)
            return 1;
        uint64_t e = 0;
        double cpu0 = cpu_seconds();
        double r = run_inserts(b.st, (int)threads, base + 100000 + (uint64_t)round * 1000, 100,
                               (double)seconds, 0, &e);
        double cpu = (cpu_seconds() - cpu0) / (r * (double)seconds) * 1e6;
        tput[mode] += r / 2;
        errs[mode] += e;
        cpus[mode] += cpu / 2;
        printf("post   search %-11s round %d: %8.0f msg/s (%d threads, %" PRIu64
               " s), %.1f us CPU/msg\n",
               mode_name[mode], round / modes + 1, r, (int)threads, seconds, cpu);
        fflush(stdout);
        close_bs(&b);
    }
    if (!NO_POST)
        printf("post   search on / off: %.0f / %.0f msg/s = %.2f (errors %" PRIu64 " / %" PRIu64
               "); CPU %.1f / %.1f us/msg\n",
               tput[1], tput[0], tput[1] / tput[0], errs[1], errs[0], cpus[1], cpus[0]);
    if (modes == 3 && !NO_POST)
        printf("post   search on by trigger / off: %.0f / %.0f msg/s = %.2f (errors %" PRIu64
               "); CPU %.1f / %.1f us/msg\n",
               tput[2], tput[0], tput[2] / tput[0], errs[2], cpus[2], cpus[0]);

    /* 2. fill, 3. search, 4. lag */
    bench_store b;
    if (open_bs(&b, true, false, STORE_PATH && !SCYLLA ? STORE_PATH : on_path) != 0)
        return 1;
    uint64_t ch0 = existing ? existing : base + 500000, e = 0;
    uint64_t t0 = now_ns();
    if (!existing) {
        double r = run_inserts(b.st, (int)threads, ch0, channels, 0, messages, &e);
        printf("fill   %" PRIu64 " messages over %" PRIu64 " channels from %" PRIu64
               ": %.0f msg/s (errors %" PRIu64 ")\n",
               messages, channels, ch0, r, e);
        if (b.idx) {
            int w = search_index_wait(b.idx, 1800 * 1000);
            printf("fill   index caught up %.1f s after the first insert%s\n",
                   (double)(now_ns() - t0) / 1e9, w ? " (NOT: timed out)" : "");
        }
    }
    fflush(stdout);
    search_phase(b.st, ch0, channels, queries);
    if (SCYLLA)
        lag_phase(b.st, ch0, channels, (double)rate, (double)seconds * 3);
    close_bs(&b);
    if (!SCYLLA) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", DIR_);
        if (system(cmd) != 0)
            rc = 1;
    }
    return rc;
}
