/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Faults on a node of our own ($MSGSTORE_TEST_CASSANDRA_FAULTS, the "faults"
 * node of scripts/cassandra), under a steady load of 64 concurrent requests:
 *  - SIGKILL: requests fail fast (no wait for timeouts), the breaker opens;
 *    restarted, the session recovers by itself;
 *  - SIGSTOP: requests end at their deadline with MS_ERR_TIMEOUT, the breaker
 *    opens, the silent connection is dropped; SIGCONT: recovery;
 *  - afterwards no file descriptor is left open (and ASan checks memory).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cql_test.h"
#include "core/error.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>

#define CONCURRENCY 64

typedef struct load {
    uv_loop_t *loop;
    cql_session *s;
    char insert[160];
    bool running;
    int outstanding;
    uint64_t ok, timeouts, unavailable, other, shutdown;
    uint64_t slow_failures; /* non-timeout failures that took half the deadline or more */
    uint64_t max_fail_us;
    int next_key;
    char last_err[256];
    int host_down, host_up;
    int64_t down_at; /* when the host was marked down (us), 0 while up */
} load;

static int64_t now_us(void)
{
    return (int64_t)(uv_hrtime() / 1000);
}

typedef struct op {
    load *l;
    int64_t start;
} op;

static void submit(load *l);

static void free_timer(uv_handle_t *h)
{
    free(h);
}

static void resubmit(uv_timer_t *t)
{
    load *l = t->data;
    l->outstanding--;
    uv_close((uv_handle_t *)t, free_timer);
    if (l->running)
        submit(l);
}

static void on_done(cql_result *res, const cql_status *st, void *ud)
{
    op *o = ud;
    load *l = o->l;
    (void)res;
    int64_t us = now_us() - o->start;
    int64_t o_start = o->start;
    free(o);
    l->outstanding--;
    switch (st->code) {
    case 0:
        l->ok++;
        break;
    case MS_ERR_TIMEOUT:
        l->timeouts++;
        break;
    case MS_ERR_UNAVAILABLE:
        l->unavailable++;
        break;
    case MS_ERR_SHUTDOWN:
        l->shutdown++;
        break;
    default:
        l->other++;
    }
    if (st->code != 0) {
        snprintf(l->last_err, sizeof(l->last_err), "%s", st->message);
        /* fail fast: once the host is known down, no request waits for it */
        bool after_down = l->down_at && o_start >= l->down_at;
        if (after_down && st->code != MS_ERR_TIMEOUT && us >= 2000000)
            l->slow_failures++;
        if (after_down && st->code != MS_ERR_TIMEOUT && (uint64_t)us > l->max_fail_us)
            l->max_fail_us = (uint64_t)us;
    }
    if (!l->running)
        return;
    if (st->code == 0) {
        submit(l);
        return;
    }
    /* after a failure wait a little, as a real caller would */
    uv_timer_t *t = malloc(sizeof(*t));
    assert_non_null(t);
    uv_timer_init(l->loop, t);
    t->data = l;
    l->outstanding++;
    uv_timer_start(t, resubmit, 5, 0);
}

static void submit(load *l)
{
    op *o = malloc(sizeof(*o));
    assert_non_null(o);
    o->l = l;
    o->start = now_us();
    cql_values v;
    cql_values_init(&v);
    cql_values_add_int(&v, l->next_key++ % 1000);
    cql_values_add_text(&v, "payload", 7);
    cql_statement st;
    cql_statement_init(&st);
    st.query = l->insert;
    st.prepare = true;
    st.values = &v;
    st.idempotent = true;
    l->outstanding++;
    assert_int_equal(cql_session_execute(l->s, &st, on_done, o), 0);
    cql_values_free(&v);
}

static void host_event(cql_session *s, cql_host_event ev, const cql_host_info *h, void *ud)
{
    (void)s;
    (void)h;
    load *l = ud;
    if (ev == CQL_HOST_DOWN) {
        l->host_down++;
        l->down_at = now_us();
    }
    if (ev == CQL_HOST_UP) {
        l->host_up++;
        l->down_at = 0;
    }
}

/* ---- helpers running the loop -------------------------------------------------------- */

/* The state directory of the running faults node (whichever checkout started it). */
static char home[512];

/* Runs scripts/cassandra VERB faults while the loop (and the load) keeps going. */
static int script(uv_loop_t *loop, const char *verb)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && MSGSTORE_CASSANDRA_HOME='%s' MSGSTORE_CASSANDRA_START_TIMEOUT=600 "
             "scripts/cassandra %s faults",
             cqlt_env("MSGSTORE_SOURCE_DIR", "."), home, verb);
    return cqlt_sh(loop, cmd, 1);
}

static void script_sync(const char *verb)
{
    cqlt_script("MSGSTORE_CASSANDRA_HOME='%s' scripts/cassandra %s faults >/dev/null 2>&1 || true",
                home, verb);
}

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        n++;
        if (getenv("CQLT_FDS")) {
            char p[300], t[300] = "";
            snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
            ssize_t k = readlink(p, t, sizeof(t) - 1);
            if (k > 0)
                t[k] = 0;
            fprintf(stderr, "fd %s -> %s\n", e->d_name, t);
        }
    }
    closedir(d);
    return n;
}

static cql_breaker_state breaker_of(cql_session *s)
{
    cql_host_info h;
    assert_int_equal(cql_session_hosts(s, &h, 1), 1);
    return h.breaker;
}

static bool host_up(cql_session *s)
{
    cql_host_info h;
    return cql_session_hosts(s, &h, 1) == 1 && h.up;
}

/* Waits (running the loop) until ok grows by want, or timeout_ms. */
static bool wait_ok(load *l, uint64_t want, int64_t timeout_ms)
{
    uint64_t base = l->ok;
    for (int64_t waited = 0; waited < timeout_ms; waited += 100) {
        if (l->ok >= base + want)
            return true;
        cqlt_run_for(l->loop, 100);
    }
    cql_host_info h;
    cql_session_hosts(l->s, &h, 1);
    fprintf(stderr,
            "no recovery: ok %llu (+%llu), outstanding %d, host up %d breaker %s conns %d "
            "in flight %d; last error: %s\n",
            (unsigned long long)l->ok, (unsigned long long)(l->ok - base), l->outstanding, h.up,
            cql_breaker_state_name(h.breaker), h.connections, h.in_flight, l->last_err);
    return false;
}

static void on_connect(cql_session *s, const cql_status *st, void *ud)
{
    (void)s;
    *(int *)ud = st->code == 0 ? 1 : -1;
    if (st->code)
        fprintf(stderr, "connect: %s\n", st->message);
}

static void make_schema(const cql_options *load_opts, const char *ks)
{
    /* schema changes on the durable node (flushed, fsynced) on a loaded machine take longer
     * than the load's short deadline */
    cql_options o = *load_opts;
    o.request_timeout_ms = 60000;
    cql_sync *admin;
    cql_status st;
    int rc = cql_sync_connect(&o, &admin, &st);
    if (rc)
        fprintf(stderr, "admin connect: %s\n", st.message);
    assert_int_equal(rc, 0);
    char q[256];
    snprintf(q, sizeof(q),
             "CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': "
             "'SimpleStrategy', 'replication_factor': 1}",
             ks);
    CQLT_OK(admin, q);
    snprintf(q, sizeof(q), "CREATE TABLE IF NOT EXISTS %s.t (k int PRIMARY KEY, v text)", ks);
    CQLT_OK(admin, q);
    cql_sync_close(admin);
}

static void test_kill_and_pause(void **state)
{
    (void)state;
    /* The fixture started (or, under MSGSTORE_CASSANDRA_REUSE=1, found) the
     * node; it may come from another checkout's state directory: find it, and
     * take that directory's lock so two runs never kill each other's node. */
    if (cqlt_node_home("faults", home, sizeof(home)) != 0) {
        snprintf(home, sizeof(home), "%s", cqlt_env("MSGSTORE_CASSANDRA_HOME", "build/cassandra"));
        cqlt_script("MSGSTORE_CASSANDRA_HOME='%s' scripts/cassandra restart faults >/dev/null "
                    "2>&1 || true",
                    home);
    }
    char lock_path[600];
    snprintf(lock_path, sizeof(lock_path), "%s/.faults-test.lock", home);
    int lock_fd = open(lock_path, O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    assert_true(lock_fd >= 0);
    assert_int_equal(flock(lock_fd, LOCK_EX), 0);
    /* a previous failed run may have left it stopped or down */
    script_sync("resume");
    cqlt_script("MSGSTORE_CASSANDRA_HOME='%s' scripts/cassandra status faults >/dev/null 2>&1 || "
                "MSGSTORE_CASSANDRA_HOME='%s' scripts/cassandra restart faults >/dev/null 2>&1 "
                "|| true",
                home, home);
    /* libuv's first child process sets up a process-wide signal pipe: spawn
     * once on a scratch loop, then count; the test's loop and everything on
     * it must be gone again after uv_loop_close */
    uv_loop_t scratch;
    uv_loop_init(&scratch);
    assert_int_equal(script(&scratch, "status"), 0);
    assert_int_equal(uv_loop_close(&scratch), 0);
    int fds_before = count_fds();
    uv_loop_t loop;
    uv_loop_init(&loop);

    load l;
    memset(&l, 0, sizeof(l));
    l.loop = &loop;
    cql_options o;
    cqlt_options(&o, "MSGSTORE_TEST_CASSANDRA_FAULTS", "127.0.0.4:9042");
    o.request_timeout_ms = 4000;
    o.connect_timeout_ms = 1000;
    o.idle_timeout_ms = 6000;
    o.heartbeat_ms = 1000;
    o.breaker_threshold = 5;
    o.breaker_reset_ms = 2000;
    o.reconnect = (cql_backoff){CQL_BACKOFF_EXPONENTIAL, CQL_JITTER_EQUAL, 200, 1000, 0};
    o.retry.max_attempts = 1;
    o.retry.base_ms = 20;
    o.retry.cap_ms = 50;
    o.on_host_event = host_event;
    o.on_host_event_ud = &l;
    assert_int_equal(cql_session_new(&loop, &o, &l.s, NULL, 0), 0);
    int connected = 0;
    cql_session_connect(l.s, on_connect, &connected);
    while (!connected)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(connected, 1);

    cql_status st;
    char ks[64], q[256];
    cqlt_keyspace(ks, sizeof(ks), "cqlnet_faults");
    make_schema(&o, ks);
    snprintf(l.insert, sizeof(l.insert), "INSERT INTO %s.t (k, v) VALUES (?, ?)", ks);

    /* steady load */
    l.running = true;
    for (int i = 0; i < CONCURRENCY; i++)
        submit(&l);
    assert_true(wait_ok(&l, 2000, 20000));
    /* a loaded machine may time a few requests out before anything happens;
     * what matters below is what the client does about the faults */
    uint64_t errors_before = l.timeouts + l.unavailable + l.other;
    if (errors_before)
        fprintf(stderr, "errors before the kill: %llu (%llu timeouts), last: %s\n",
                (unsigned long long)errors_before, (unsigned long long)l.timeouts, l.last_err);
    for (int i = 0; i < 100 && breaker_of(l.s) != CQL_BREAKER_CLOSED; i++)
        cqlt_run_for(&loop, 100);
    assert_int_equal(breaker_of(l.s), CQL_BREAKER_CLOSED);

    /* ---- SIGKILL ---- */
    assert_int_equal(script(&loop, "kill"), 0);
    cqlt_run_for(&loop, 1500);
    assert_false(host_up(l.s));
    assert_true(l.host_down >= 1);
    /* the breaker opened: consecutive failures of the host */
    assert_int_not_equal(breaker_of(l.s), CQL_BREAKER_CLOSED);
    uint64_t failed = l.unavailable + l.other;
    /* while the node is down, requests keep failing fast, by the thousand: 5,000 failures
     * of 64 requests in flight within 60 s is far below the 4 s deadline each, and no
     * failure takes half of it (bounds a loaded machine under sanitizers meets: behaviour,
     * not speed) */
    CQLT_RUN_UNTIL(&loop, l.unavailable + l.other > failed + 5000, 60000);
    assert_true(l.unavailable + l.other > failed + 5000);
    assert_int_equal(l.slow_failures, 0);
    fprintf(stderr, "down: %llu fast failures (slowest %llu us), last: %s\n",
            (unsigned long long)(l.unavailable + l.other), (unsigned long long)l.max_fail_us,
            l.last_err);
    assert_non_null(strstr(l.last_err, "no host available"));

    /* ---- restart: recovery by itself ---- */
    uint64_t ok_before = l.ok;
    assert_int_equal(script(&loop, "restart"), 0);
    /* the node is durable now (scripts/cassandra): the schema survived the SIGKILL;
     * creating it again is a no-op that also proves the node serves DDL again */
    make_schema(&o, ks);
    assert_true(wait_ok(&l, 2000, 30000));
    assert_true(host_up(l.s));
    assert_int_equal(breaker_of(l.s), CQL_BREAKER_CLOSED);
    assert_true(l.host_up >= 1);
    fprintf(stderr, "recovered: %llu ok since the restart\n",
            (unsigned long long)(l.ok - ok_before));

    /* ---- SIGSTOP: deadlines, breaker, defunct connection ---- */
    uint64_t timeouts_before = l.timeouts;
    assert_int_equal(script(&loop, "pause"), 0);
    cqlt_run_for(&loop, 5000);
    assert_true(l.timeouts >= timeouts_before + CONCURRENCY / 2);
    assert_int_not_equal(breaker_of(l.s), CQL_BREAKER_CLOSED);
    fprintf(stderr, "paused: %llu timeouts, last: %s\n",
            (unsigned long long)(l.timeouts - timeouts_before), l.last_err);
    cqlt_run_for(&loop, 3000); /* idle timeout (6 s): the silent connection is dropped */
    assert_int_equal(script(&loop, "resume"), 0);
    assert_true(wait_ok(&l, 2000, 30000));
    assert_int_equal(breaker_of(l.s), CQL_BREAKER_CLOSED);

    /* ---- stop the load and close ---- */
    l.running = false;
    while (l.outstanding > 0)
        uv_run(&loop, UV_RUN_ONCE);
    cql_session_stats ss;
    cql_session_stats_get(l.s, &ss);
    fprintf(stderr,
            "totals: %llu ok, %llu timeouts, %llu unavailable, %llu other; retries %llu, "
            "breaker rejections %llu\n",
            (unsigned long long)l.ok, (unsigned long long)l.timeouts,
            (unsigned long long)l.unavailable, (unsigned long long)l.other,
            (unsigned long long)ss.retries, (unsigned long long)ss.breaker_rejections);
    assert_int_equal(ss.in_flight, 0);
    bool closed = false;
    cql_session_close(l.s, 2000, cqlt_on_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(count_fds(), fds_before);

    cql_sync *c;
    o.request_timeout_ms = 60000; /* DDL on the durable node (see make_schema) */
    assert_int_equal(cql_sync_connect(&o, &c, &st), 0);
    snprintf(q, sizeof(q), "DROP KEYSPACE IF EXISTS %s", ks);
    CQLT_OK(c, q);
    cql_sync_close(c);
    flock(lock_fd, LOCK_UN);
    close(lock_fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_and_pause),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
