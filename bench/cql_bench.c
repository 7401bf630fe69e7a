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
 */
#include "msgstore/cql.h"

#include "core/error.h"
#include "core/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

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
static int concurrency = 256;
static double duration = 10, warmup = 2;
static int nkeys = 100000;
static int value_size = 100;
static int pool = 1;
static int compression = 0;
static int consistency = CQL_CONSISTENCY_ONE;

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
    if (concurrency < 1 || duration <= 0 || nkeys < 1 || value_size < 0 || pool < 1)
        return -1;
    return 0;
}

/* ---- the run ---- */

typedef struct run {
    uv_loop_t *loop;
    cql_session *s;
    cql_prepared *ins, *sel;
    bool select;
    bool measuring, stopping;
    int outstanding;
    uint64_t ops, errors;
    uint64_t rng;
    char *value;
    char last_err[256];
} run;

typedef struct slot {
    run *r;
    uint64_t start_ns;
    cql_values v;
} slot;

static uint64_t next_key(run *r)
{
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    return r->rng % (uint64_t)nkeys;
}

static void submit(slot *sl);

static void on_done(cql_result *res, const cql_status *st, void *ud)
{
    slot *sl = ud;
    run *r = sl->r;
    (void)res;
    r->outstanding--;
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
    if (!r->stopping)
        submit(sl);
}

static void submit(slot *sl)
{
    run *r = sl->r;
    cql_values_reset(&sl->v);
    cql_values_add_bigint(&sl->v, (int64_t)next_key(r));
    cql_statement st;
    cql_statement_init(&st);
    st.values = &sl->v;
    st.idempotent = true;
    if (r->select) {
        st.prepared = r->sel;
    } else {
        cql_values_add_text(&sl->v, r->value, (size_t)value_size);
        st.prepared = r->ins;
    }
    sl->start_ns = uv_hrtime();
    r->outstanding++;
    if (cql_session_execute(r->s, &st, on_done, sl) < 0) {
        fprintf(stderr, "submit failed\n");
        exit(1);
    }
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

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void phase(run *r, bool select, slot *slots)
{
    memset(hist, 0, sizeof(hist));
    hist_n = 0;
    r->select = select;
    r->ops = r->errors = 0;
    r->stopping = false;
    r->measuring = false;
    for (int i = 0; i < concurrency; i++)
        submit(&slots[i]);
    run_for(r->loop, warmup);
    r->measuring = true;
    double cpu0 = cpu_seconds();
    uint64_t t0 = uv_hrtime();
    run_for(r->loop, duration);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    double cpu = cpu_seconds() - cpu0;
    r->measuring = false;
    r->stopping = true;
    while (r->outstanding > 0)
        uv_run(r->loop, UV_RUN_ONCE);
    printf("%-6s conc %4d  ops %9" PRIu64 "  %9.0f ops/s  p50 %7.3f ms  p99 %7.3f ms  "
           "p999 %7.3f ms  client CPU %5.2f us/op (%4.1f%% of a core)  errors %" PRIu64 "\n",
           select ? "select" : "insert", concurrency, r->ops, (double)r->ops / secs,
           (double)percentile(0.50) / 1000.0, (double)percentile(0.99) / 1000.0,
           (double)percentile(0.999) / 1000.0, r->ops ? cpu * 1e6 / (double)r->ops : 0.0,
           100.0 * cpu / secs, r->errors);
    if (r->errors)
        printf("       last error: %s\n", r->last_err);
    fflush(stdout);
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

static void on_prepared(cql_prepared *p, const cql_status *st, void *ud)
{
    *(cql_prepared **)ud = p;
    if (!p)
        fprintf(stderr, "prepare: %s\n", st->message);
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) < 0) {
        fprintf(stderr, "usage: see the comment at the top of bench/cql_bench.c\n");
        return 2;
    }
    ms_log_setup(MS_LOG_WARN, false);
    bool do_insert = strcmp(op_name, "select") != 0;
    bool do_select = strcmp(op_name, "insert") != 0;

    cql_options o;
    cql_options_init(&o);
    o.contact_points = hosts;
    o.local_dc = dc;
    o.pool_size = pool;
    o.compression = compression != 0;
    o.default_consistency = consistency;
    o.request_timeout_ms = 20000;

    /* schema and data with the sync layer */
    cql_sync *admin;
    cql_status st;
    if (cql_sync_connect(&o, &admin, &st) != 0) {
        fprintf(stderr, "connect: %s\n", st.message);
        return 1;
    }
    if (sync_q(admin, "CREATE KEYSPACE IF NOT EXISTS cql_bench WITH replication = "
                      "{'class': 'SimpleStrategy', 'replication_factor': 1}") ||
        sync_q(admin, "CREATE TABLE IF NOT EXISTS cql_bench.kv (k bigint PRIMARY KEY, v text)"))
        return 1;
    cql_sync_close(admin);

    uv_loop_t loop;
    uv_loop_init(&loop);
    run r;
    memset(&r, 0, sizeof(r));
    r.loop = &loop;
    r.rng = 0x9E3779B97F4A7C15ULL;
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
    cql_session_prepare(r.s, "INSERT INTO cql_bench.kv (k, v) VALUES (?, ?)", on_prepared, &r.ins);
    cql_session_prepare(r.s, "SELECT v FROM cql_bench.kv WHERE k = ?", on_prepared, &r.sel);
    while (!r.ins || !r.sel)
        uv_run(&loop, UV_RUN_ONCE);

    slot *slots = calloc((size_t)concurrency, sizeof(*slots));
    for (int i = 0; i < concurrency; i++) {
        slots[i].r = &r;
        cql_values_init(&slots[i].v);
    }
    printf("cql_bench: hosts %s, %d keys, %d-byte values, pool %d, LZ4 %s, CL %s, "
           "%.0f s + %.0f s warm-up per phase\n",
           hosts, nkeys, value_size, pool, compression ? "on" : "off",
           cql_consistency_name(consistency), duration, warmup);
    if (do_insert)
        phase(&r, false, slots);
    if (do_select)
        phase(&r, true, slots);

    for (int i = 0; i < concurrency; i++)
        cql_values_free(&slots[i].v);
    free(slots);
    cql_prepared_release(r.ins);
    cql_prepared_release(r.sel);
    bool closed = false;
    cql_session_close(r.s, 5000, on_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(r.value);
    return 0;
}
