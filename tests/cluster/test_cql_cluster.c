/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CQL client on the 4-node cluster ($MSGSTORE_TEST_CASSANDRA_CLUSTER:
 * 127.0.1.1-3 in dc1, 127.0.1.4 in dc2):
 *  - topology: hosts, DCs, tokens from system.local/peers;
 *  - token-aware routing: every request goes to a replica of its key, checked
 *    against the servers' own counters (system_views.coordinator_*_latency on
 *    each node), the servers' tokens (token()) and nodetool getendpoints;
 *  - DC-aware routing: nothing reaches dc2;
 *  - one dc1 node killed (SIGKILL): LOCAL_QUORUM writes at RF 3 go on with
 *    no client-visible error once it is marked down; restarted, it receives
 *    traffic again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../integration/cql_test.h"
#include "core/error.h"
#include "cql/proto.h"

#include <fcntl.h>
#include <sys/file.h>

#define CLUSTER_DEFAULT "127.0.1.1:9042,127.0.1.2:9042,127.0.1.3:9042,127.0.1.4:9042"
static const char *NODES[4] = {"127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4"};

static char ks1[64], ks3[64];
static cql_sync *db;

static void opts(cql_options *o)
{
    cqlt_options(o, "MSGSTORE_TEST_CASSANDRA_CLUSTER", CLUSTER_DEFAULT);
    o->local_dc = "dc1";
}

static int lock_fd = -1;

static int setup(void **state)
{
    (void)state;
    /* this test stops, kills and restarts node3 of a cluster that other
     * checkouts may share (MSGSTORE_CASSANDRA_REUSE=1): one run at a time,
     * under the lock of the state directory the cluster runs from */
    char home[512];
    if (cqlt_node_home("cluster/node3", home, sizeof(home)) == 0) {
        char path[600];
        snprintf(path, sizeof(path), "%s/.cluster-test.lock", home);
        lock_fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0644);
        if (lock_fd >= 0)
            flock(lock_fd, LOCK_EX);
    }
    cql_options o;
    opts(&o);
    cql_status st;
    if (cql_sync_connect(&o, &db, &st) != 0) {
        fprintf(stderr, "connect: %s\n", st.message);
        return -1;
    }
    cqlt_keyspace(ks1, sizeof(ks1), "cqlnet_rf1");
    cqlt_keyspace(ks3, sizeof(ks3), "cqlnet_rf3");
    char q[256];
    snprintf(q, sizeof(q),
             "CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': "
             "'NetworkTopologyStrategy', 'dc1': 1}",
             ks1);
    if (cql_sync_query(db, q, NULL, &st))
        return -1;
    snprintf(q, sizeof(q),
             "CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': "
             "'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 1}",
             ks3);
    if (cql_sync_query(db, q, NULL, &st))
        return -1;
    snprintf(q, sizeof(q), "CREATE TABLE IF NOT EXISTS %s.t (k int PRIMARY KEY, v int)", ks1);
    if (cql_sync_query(db, q, NULL, &st))
        return -1;
    snprintf(q, sizeof(q), "CREATE TABLE IF NOT EXISTS %s.t (k int PRIMARY KEY, v text)", ks3);
    if (cql_sync_query(db, q, NULL, &st)) {
        fprintf(stderr, "%s\n", st.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char q[128];
    cql_status st;
    snprintf(q, sizeof(q), "DROP KEYSPACE IF EXISTS %s", ks1);
    cql_sync_query(db, q, NULL, &st);
    snprintf(q, sizeof(q), "DROP KEYSPACE IF EXISTS %s", ks3);
    cql_sync_query(db, q, NULL, &st);
    cql_sync_close(db);
    if (lock_fd >= 0)
        close(lock_fd);
    return 0;
}

static int host_index(const char *addr)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(NODES[i], addr) == 0)
            return i;
    return -1;
}

/* Requests sent to each node so far, by this client (its per-host counters). */
static void counts_of(const cql_host_info *h, size_t n, uint64_t out[4])
{
    memset(out, 0, 4 * sizeof(uint64_t));
    for (size_t i = 0; i < n && i < 8; i++) {
        int k = host_index(h[i].address);
        if (k >= 0)
            out[k] = h[i].requests;
    }
}

static void client_counts(cql_session *s, uint64_t out[4])
{
    cql_host_info h[8];
    counts_of(h, cql_session_hosts(s, h, 8), out);
}

static void client_counts_sync(cql_sync *c, uint64_t out[4])
{
    cql_host_info h[8];
    counts_of(h, cql_sync_hosts(c, h, 8), out);
}

/* Requests each node coordinated for ks.t, from the node itself. */
static void server_counts(const char *ks, const char *kind, int64_t out[4])
{
    for (int i = 0; i < 4; i++) {
        cql_options o;
        opts(&o);
        char cp[32];
        snprintf(cp, sizeof(cp), "%s:9042", NODES[i]);
        o.contact_points = cp;
        o.only_contact_points = true;
        o.allow_remote_dc = true;
        cql_sync *c;
        cql_status st;
        out[i] = -1;
        if (cql_sync_connect(&o, &c, &st) != 0) {
            fprintf(stderr, "%s: %s\n", cp, st.message);
            continue;
        }
        char q[256];
        snprintf(q, sizeof(q),
                 "SELECT count FROM system_views.coordinator_%s_latency WHERE keyspace_name = "
                 "'%s' AND table_name = 't'",
                 kind, ks);
        cql_result *r;
        if (cql_sync_query(c, q, &r, &st) == 0) {
            out[i] = 0;
            if (cql_result_next_row(r) == 0)
                cql_row_get_bigint(r, 0, &out[i]);
            cql_result_destroy(r);
        } else {
            fprintf(stderr, "%s: %s\n", cp, st.message);
        }
        cql_sync_close(c);
    }
}

static int64_t token_of_int(int32_t k)
{
    uint8_t b[4] = {(uint8_t)((uint32_t)k >> 24), (uint8_t)((uint32_t)k >> 16),
                    (uint8_t)((uint32_t)k >> 8), (uint8_t)k};
    return cql__murmur3_token(b, 4);
}

static void test_topology(void **state)
{
    (void)state;
    cql_host_info h[8];
    size_t n = cql_sync_hosts(db, h, 8);
    assert_int_equal(n, 4);
    int local = 0, up = 0;
    for (size_t i = 0; i < n; i++) {
        int k = host_index(h[i].address);
        assert_true(k >= 0);
        assert_string_equal(h[i].dc, k < 3 ? "dc1" : "dc2");
        assert_int_equal(strlen(h[i].host_id), 36);
        assert_true(h[i].local == (k < 3));
        local += h[i].local;
        up += h[i].up;
        /* only the local DC gets pools */
        assert_int_equal(h[i].connections > 0, k < 3);
    }
    assert_int_equal(local, 3);
    assert_int_equal(up, 3);
}

static void test_token_aware_routing(void **state)
{
    (void)state;
    char q[200];
    snprintf(q, sizeof(q), "INSERT INTO %s.t (k, v) VALUES (?, ?)", ks1);
    cql_prepared *ins;
    cql_status st;
    assert_int_equal(cql_sync_prepare(db, q, &ins, &st), 0);
    snprintf(q, sizeof(q), "SELECT v FROM %s.t WHERE k = ?", ks1);
    cql_prepared *sel;
    assert_int_equal(cql_sync_prepare(db, q, &sel, &st), 0);

    /* our tokens are the servers' tokens */
    for (int32_t k = -2; k < 3; k++) {
        char tq[200];
        snprintf(tq, sizeof(tq), "SELECT token(k) FROM %s.t WHERE k = %d", ks1, k);
        cql_values v;
        cql_values_init(&v);
        cql_values_add_int(&v, k);
        cql_values_add_int(&v, k);
        cql_statement s1;
        cql_statement_init(&s1);
        s1.prepared = ins;
        s1.values = &v;
        assert_int_equal(cql_sync_execute(db, &s1, NULL, &st), 0);
        cql_values_free(&v);
        cql_result *r;
        assert_int_equal(cql_sync_query(db, tq, &r, &st), 0);
        assert_int_equal(cql_result_next_row(r), 0);
        int64_t t;
        assert_int_equal(cql_row_get_bigint(r, 0, &t), 0);
        assert_true(t == token_of_int(k));
        cql_result_destroy(r);
    }
    /* our replicas are Cassandra's: nodetool getendpoints for two keys */
    char home[512];
    if (cqlt_node_home("cluster/node1", home, sizeof(home)) == 0) {
        for (int32_t k = 7; k <= 8; k++) {
            char cmd[1024], out[128];
            snprintf(cmd, sizeof(cmd),
                     "cd '%s' && MSGSTORE_CASSANDRA_HOME='%s' scripts/cassandra nodetool "
                     "cluster/node1 getendpoints %s t %d 2>/dev/null",
                     cqlt_env("MSGSTORE_SOURCE_DIR", "."), home, ks1, k);
            assert_int_equal(cqlt_capture(cmd, out, sizeof(out)), 0);
            cql_host_info rep[4];
            assert_int_equal(cql_sync_replicas(db, ks1, token_of_int(k), rep, 4), 1);
            fprintf(stderr, "key %d: nodetool says %s, we say %s\n", k, out, rep[0].address);
            assert_non_null(strstr(out, rep[0].address));
        }
    } else {
        fprintf(stderr, "cluster/node1 not found in the process table: nodetool check skipped\n");
    }

    /* 600 writes and 600 reads; every one must reach the key's only replica */
    enum { N = 600 };
    uint64_t expect[4] = {0};
    for (int32_t k = 1000; k < 1000 + N; k++) {
        cql_host_info rep[4];
        assert_int_equal(cql_sync_replicas(db, ks1, token_of_int(k), rep, 4), 1);
        int i = host_index(rep[0].address);
        assert_true(i >= 0 && i < 3); /* dc1 only */
        expect[i]++;
    }
    for (int i = 0; i < 3; i++)
        assert_true(expect[i] > 0); /* the keys spread over the three nodes */
    int64_t w0[4], r0[4];
    server_counts(ks1, "write", w0);
    server_counts(ks1, "read", r0);
    uint64_t c0[4];
    client_counts_sync(db, c0);
    for (int32_t k = 1000; k < 1000 + N; k++) {
        cql_values v;
        cql_values_init(&v);
        cql_values_add_int(&v, k);
        cql_values_add_int(&v, k * 3);
        cql_statement s1;
        cql_statement_init(&s1);
        s1.prepared = ins;
        s1.values = &v;
        s1.consistency = CQL_CONSISTENCY_ONE;
        assert_int_equal(cql_sync_execute(db, &s1, NULL, &st), 0);
        cql_values_reset(&v);
        cql_values_add_int(&v, k);
        s1.prepared = sel;
        cql_result *r;
        assert_int_equal(cql_sync_execute(db, &s1, &r, &st), 0);
        assert_int_equal(r->row_count, 1);
        cql_result_destroy(r);
        cql_values_free(&v);
    }
    uint64_t c1[4];
    client_counts_sync(db, c1);
    int64_t w1[4], r1[4];
    server_counts(ks1, "write", w1);
    server_counts(ks1, "read", r1);
    for (int i = 0; i < 4; i++) {
        fprintf(stderr,
                "%s: replica of %llu keys; client sent %llu; coordinated %lld writes, %lld "
                "reads\n",
                NODES[i], (unsigned long long)expect[i], (unsigned long long)(c1[i] - c0[i]),
                (long long)(w1[i] - w0[i]), (long long)(r1[i] - r0[i]));
        assert_int_equal(c1[i] - c0[i], 2 * expect[i]);
        assert_true(w0[i] >= 0 && r0[i] >= 0 && w1[i] >= 0 && r1[i] >= 0);
        assert_int_equal(w1[i] - w0[i], (int64_t)expect[i]);
        assert_int_equal(r1[i] - r0[i], (int64_t)expect[i]);
    }
    cql_prepared_release(ins);
    cql_prepared_release(sel);
}

static void test_dc_aware_spread(void **state)
{
    (void)state;
    char q[200];
    snprintf(q, sizeof(q), "INSERT INTO %s.t (k, v) VALUES (?, ?)", ks3);
    cql_prepared *ins;
    cql_status st;
    assert_int_equal(cql_sync_prepare(db, q, &ins, &st), 0);
    int64_t w0[4];
    server_counts(ks3, "write", w0);
    uint64_t c0[4];
    client_counts_sync(db, c0);
    enum { N = 300 };
    for (int32_t k = 0; k < N; k++) {
        cql_values v;
        cql_values_init(&v);
        cql_values_add_int(&v, k);
        cql_values_add_text(&v, "dc-aware", 8);
        cql_statement s1;
        cql_statement_init(&s1);
        s1.prepared = ins;
        s1.values = &v;
        s1.consistency = CQL_CONSISTENCY_LOCAL_QUORUM;
        assert_int_equal(cql_sync_execute(db, &s1, NULL, &st), 0);
        cql_values_free(&v);
    }
    int64_t w1[4];
    server_counts(ks3, "write", w1);
    uint64_t c1[4];
    client_counts_sync(db, c1);
    for (int i = 0; i < 4; i++) {
        fprintf(stderr, "%s: client sent %llu, coordinated %lld\n", NODES[i],
                (unsigned long long)(c1[i] - c0[i]), (long long)(w1[i] - w0[i]));
        /* both counts were read (-1: the node did not answer; -1 - -1 would pass as 0) */
        assert_true(w0[i] >= 0 && w1[i] >= 0);
        if (i == 3) {
            /* the remote DC coordinates nothing */
            assert_int_equal(c1[i] - c0[i], 0);
            assert_int_equal(w1[i] - w0[i], 0);
        } else {
            /* RF 3: every dc1 node is a replica; round-robin spreads the load */
            assert_true(c1[i] - c0[i] > N / 6);
            assert_int_equal(w1[i] - w0[i], (int64_t)(c1[i] - c0[i]));
        }
    }
    cql_prepared_release(ins);
}

/* ---- a node killed under load ----------------------------------------------------------- */

typedef struct load {
    uv_loop_t *loop;
    cql_session *s;
    cql_prepared *ins;
    bool running;
    int outstanding;
    uint64_t ok, errors, errors_after_down;
    bool node3_down;
    int downs, ups;
    int key;
    char last_err[256];
} load;

static void submit(load *l);

static void on_done(cql_result *res, const cql_status *st, void *ud)
{
    load *l = ud;
    (void)res;
    l->outstanding--;
    if (st->code == 0) {
        l->ok++;
    } else {
        l->errors++;
        if (l->node3_down)
            l->errors_after_down++;
        snprintf(l->last_err, sizeof(l->last_err), "%s", st->message);
    }
    if (l->running)
        submit(l);
}

static void submit(load *l)
{
    cql_values v;
    cql_values_init(&v);
    cql_values_add_int(&v, l->key++ % 5000);
    cql_values_add_text(&v, "under load", 10);
    cql_statement st;
    cql_statement_init(&st);
    st.prepared = l->ins;
    st.values = &v;
    st.consistency = CQL_CONSISTENCY_LOCAL_QUORUM;
    st.idempotent = true;
    l->outstanding++;
    assert_int_equal(cql_session_execute(l->s, &st, on_done, l), 0);
    cql_values_free(&v);
}

static void host_event(cql_session *s, cql_host_event ev, const cql_host_info *h, void *ud)
{
    (void)s;
    load *l = ud;
    if (strcmp(h->address, "127.0.1.3") != 0)
        return;
    if (ev == CQL_HOST_DOWN) {
        l->node3_down = true;
        l->downs++;
    } else if (ev == CQL_HOST_UP) {
        l->node3_down = false;
        l->ups++;
    }
}

/* scripts/cassandra VERB cluster/node3, with the loop (and the load) running */
static int node3(uv_loop_t *loop, const char *home, const char *verb)
{
    char cmd[1024];
    bool nodetool = strcmp(verb, "nodetool") == 0; /* nodetool flush */
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && MSGSTORE_CASSANDRA_HOME='%s' MSGSTORE_CASSANDRA_START_TIMEOUT=600 "
             "scripts/cassandra %s cluster/node3%s",
             cqlt_env("MSGSTORE_SOURCE_DIR", "."), home, verb, nodetool ? " flush" : "");
    return cqlt_sh(loop, cmd, 2);
}

static void on_prepared(cql_prepared *p, const cql_status *st, void *ud)
{
    (void)st;
    *(cql_prepared **)ud = p;
}

static uint64_t node3_requests(cql_session *s)
{
    uint64_t c[4];
    client_counts(s, c);
    return c[2];
}

/* Does node3 itself answer queries on ks.t? */
static bool node3_serves_table(const char *ks)
{
    cql_options o;
    opts(&o);
    o.contact_points = "127.0.1.3:9042";
    o.only_contact_points = true;
    cql_sync *c;
    cql_status st;
    if (cql_sync_connect(&o, &c, &st) != 0)
        return false;
    char q[256];
    snprintf(q, sizeof(q), "SELECT k FROM %s.t LIMIT 1", ks);
    bool found = cql_sync_query(c, q, NULL, &st) == 0;
    cql_sync_close(c);
    return found;
}

static void test_node_killed_and_back(void **state)
{
    (void)state;
    char home[512];
    if (cqlt_node_home("cluster/node3", home, sizeof(home)) != 0) {
        fprintf(stderr, "cluster/node3 is not running here: cannot kill it\n");
        fail();
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    load l;
    memset(&l, 0, sizeof(l));
    l.loop = &loop;
    cql_options o;
    opts(&o);
    o.reconnect = (cql_backoff){CQL_BACKOFF_EXPONENTIAL, CQL_JITTER_EQUAL, 200, 2000, 0};
    o.on_host_event = host_event;
    o.on_host_event_ud = &l;
    assert_int_equal(cql_session_new(&loop, &o, &l.s, NULL, 0), 0);
    int connected = 0;
    cql_session_connect(l.s, cqlt_on_connect, &connected);
    while (!connected)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(connected, 1);
    char q[200];
    snprintf(q, sizeof(q), "INSERT INTO %s.t (k, v) VALUES (?, ?)", ks3);
    cql_session_prepare(l.s, q, on_prepared, &l.ins);
    while (!l.ins)
        uv_run(&loop, UV_RUN_ONCE);

    l.running = true;
    for (int i = 0; i < 32; i++)
        submit(&l);
    /* behaviour, not speed: bounds a loaded 2-core machine under sanitizers meets */
    CQLT_RUN_UNTIL(&loop, l.ok > 100, 60000);
    assert_true(l.ok > 100);
    assert_int_equal(l.errors, 0);

    /* the test nodes skip fsync (scripts/cassandra): flush node3 first so the
     * kill loses no schema, as a crash of a real node would not */
    assert_int_equal(node3(&loop, home, "nodetool"), 0);
    assert_int_equal(node3(&loop, home, "kill"), 0);
    for (int i = 0; i < 50 && !l.node3_down; i++)
        cqlt_run_for(&loop, 100);
    assert_true(l.node3_down);
    uint64_t ok_at_down = l.ok, n3 = node3_requests(l.s);
    /* writes go on without node3 (RF 3, LOCAL_QUORUM) and without a single error */
    CQLT_RUN_UNTIL(&loop, l.ok > ok_at_down + 500 || l.errors_after_down > 0, 120000);
    fprintf(stderr,
            "node3 down: %llu writes ok since, %llu errors (%llu after the down mark)%s%s\n",
            (unsigned long long)(l.ok - ok_at_down), (unsigned long long)l.errors,
            (unsigned long long)l.errors_after_down, l.errors ? "; last: " : "", l.last_err);
    assert_true(l.ok > ok_at_down + 500);
    assert_int_equal(l.errors_after_down, 0);
    assert_int_equal(node3_requests(l.s), n3); /* nothing sent to the dead node */

    assert_int_equal(node3(&loop, home, "restart"), 0);
    for (int i = 0; i < 1200 && l.node3_down; i++)
        cqlt_run_for(&loop, 100);
    assert_false(l.node3_down);
    assert_int_equal(l.errors_after_down, 0);
    /* the test nodes skip fsync: the killed node may have lost recent schema
     * and gets it back from its peers; wait for that before judging it */
    for (int i = 0; i < 120 && !node3_serves_table(ks3); i++)
        cqlt_run_for(&loop, 500);
    assert_true(node3_serves_table(ks3));
    uint64_t n3_up = node3_requests(l.s), errors_up = l.errors, ok_up = l.ok;
    /* the client uses node3 again by itself */
    CQLT_RUN_UNTIL(&loop, node3_requests(l.s) > n3_up + 50 || l.errors > errors_up, 120000);
    fprintf(stderr, "node3 back: %llu requests sent to it, %llu writes ok, %llu errors%s%s\n",
            (unsigned long long)(node3_requests(l.s) - n3_up), (unsigned long long)(l.ok - ok_up),
            (unsigned long long)(l.errors - errors_up), l.errors > errors_up ? "; last: " : "",
            l.last_err);
    assert_true(node3_requests(l.s) > n3_up + 50);
    assert_int_equal(l.errors, errors_up);

    l.running = false;
    while (l.outstanding > 0)
        uv_run(&loop, UV_RUN_ONCE);
    cql_prepared_release(l.ins);
    bool closed = false;
    cql_session_close(l.s, 2000, cqlt_on_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- speculative executions around a stalled node ---------------------------------------- */

typedef struct spec_ctx {
    int done, ok;
    uint64_t max_us;
    uint64_t start;
    char err[256];
} spec_ctx;

typedef struct spec_op {
    spec_ctx *c;
    uint64_t start;
} spec_op;

static void spec_cb(cql_result *res, const cql_status *st, void *ud)
{
    spec_op *op = ud;
    spec_ctx *c = op->c;
    (void)res;
    uint64_t us = (uv_hrtime() - op->start) / 1000;
    free(op);
    c->done++;
    if (st->code == 0)
        c->ok++;
    else
        snprintf(c->err, sizeof(c->err), "%s", st->message);
    if (us > c->max_us)
        c->max_us = us;
}

static void test_speculative_reads(void **state)
{
    (void)state;
    char home[512];
    if (cqlt_node_home("cluster/node3", home, sizeof(home)) != 0) {
        fprintf(stderr, "cluster/node3 is not running here: cannot pause it\n");
        fail();
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    cql_options o;
    opts(&o);
    o.speculative_delay_ms = 100;
    o.speculative_max = 1;
    o.request_timeout_ms = 5000;
    cql_session *s;
    assert_int_equal(cqlt_session_up(&loop, &o, &s), 1);

    /* keys of the RF 1 keyspace whose only replica is not node3; read with
     * simple (unrouted) queries, so node3 coordinates a third of them. While
     * node3 is stopped (SIGSTOP, its connections stay open) only a
     * speculative execution on another node answers those in time: the
     * replica itself is alive. */
    enum { N = 60 };
    int32_t keys[N];
    int n = 0;
    for (int32_t k = 1000; n < N; k++) {
        cql_host_info rep[2];
        assert_int_equal(cql_session_replicas(s, ks1, token_of_int(k), rep, 2), 1);
        if (strcmp(rep[0].address, "127.0.1.3") != 0)
            keys[n++] = k;
    }
    assert_int_equal(node3(&loop, home, "pause"), 0);
    spec_ctx c = {0};
    char q[N][160];
    for (int i = 0; i < N; i++) {
        snprintf(q[i], sizeof(q[i]), "SELECT v FROM %s.t WHERE k = %d", ks1, keys[i]);
        cql_statement st;
        cql_statement_init(&st);
        st.query = q[i];
        st.consistency = CQL_CONSISTENCY_ONE;
        st.idempotent = true;
        spec_op *op = malloc(sizeof(*op));
        assert_non_null(op);
        op->c = &c;
        op->start = uv_hrtime();
        assert_int_equal(cql_session_execute(s, &st, spec_cb, op), 0);
    }
    while (c.done < N)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(node3(&loop, home, "resume"), 0);
    cql_session_stats ss;
    cql_session_stats_get(s, &ss);
    fprintf(
        stderr,
        "stalled coordinator: %d/%d reads ok, %llu speculative executions, slowest %llu ms%s%s\n",
        c.ok, N, (unsigned long long)ss.speculative, (unsigned long long)(c.max_us / 1000),
        c.err[0] ? "; last error: " : "", c.err);
    assert_int_equal(c.ok, N);
    /* every read answered within its 5 s deadline although a third of them went to a
     * stalled coordinator: speculative executions answered them (no time is asserted) */
    assert_true(ss.speculative >= N / 6);
    bool closed = false;
    cql_session_close(s, 2000, cqlt_on_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topology),
        cmocka_unit_test(test_token_aware_routing),
        cmocka_unit_test(test_dc_aware_spread),
        cmocka_unit_test(test_speculative_reads),
        cmocka_unit_test(test_node_killed_and_back),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
