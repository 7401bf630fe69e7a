/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client against simulated ScyllaDB releases (tests/scylla_sim/scylla_sim.py):
 * the protocol extensions no Cassandra node can show.
 *  - "this is ScyllaDB" comes from the control connection's SUPPORTED;
 *  - SCYLLA_RATE_LIMIT_ERROR is asked for in STARTUP and its error, with the
 *    code the server advertised (not a constant), is MS_ERR_RATE_LIMITED and
 *    never retried; without the extension the same code is a plain error;
 *  - TABLETS_ROUTING_V1: a routing payload is learnt and the next request for
 *    the table goes to the tablet's replica host and shard.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cql_test.h"
#include "core/error.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>

typedef struct sim {
    pid_t pid;
    int port;
} sim;

/* Starts the simulator with args; reads "PORT n" from its stdout. */
static void sim_start(sim *s, const char *args)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* a failed assertion must not leave it running */
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "exec python3 '%s/tests/scylla_sim/scylla_sim.py' %s",
                 cqlt_env("MSGSTORE_SOURCE_DIR", "."), args);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    char line[128] = "";
    s->port = 0;
    if (f && fgets(line, sizeof line, f))
        sscanf(line, "PORT %d", &s->port);
    if (f)
        fclose(f);
    assert_true(s->port > 0);
}

static void sim_stop(sim *s)
{
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
}

static cql_sync *sim_connect(const sim *s, const char *contact)
{
    cql_options o;
    cqlt_options(&o, "MSGSTORE_TEST_SIM_UNSET", contact);
    o.port = s->port;
    o.compression = false;
    o.retry.max_attempts = 2;
    cql_sync *c = NULL;
    cql_status st;
    if (cql_sync_connect(&o, &c, &st) != 0)
        fprintf(stderr, "connect: %s\n", st.message);
    assert_non_null(c);
    return c;
}

static void test_features_from_supported(void **state)
{
    (void)state;
    sim s;
    sim_start(&s, "--version 2026.1 --base-ip 21 --rate-limit-code 61441");
    cql_sync *c = sim_connect(&s, "127.0.0.21");
    cql_server_features f;
    cql_sync_server_features(c, &f);
    assert_true(f.known);
    assert_true(f.scylla);
    assert_true(f.sharded);
    assert_true(f.rate_limit_error);
    assert_int_equal(f.rate_limit_code, 61441);
    assert_true(f.tablets_routing);
    cql_sync_close(c);
    sim_stop(&s);

    sim_start(&s, "--version cassandra --base-ip 21");
    c = sim_connect(&s, "127.0.0.21");
    cql_sync_server_features(c, &f);
    assert_true(f.known);
    assert_false(f.scylla);
    assert_false(f.rate_limit_error);
    assert_false(f.tablets_routing);
    cql_sync_close(c);
    sim_stop(&s);

    /* 5.4: ScyllaDB, rate limit error, no tablets */
    sim_start(&s, "--version 5.4 --base-ip 21");
    c = sim_connect(&s, "127.0.0.21");
    cql_sync_server_features(c, &f);
    assert_true(f.scylla);
    assert_true(f.rate_limit_error);
    assert_int_equal(f.rate_limit_code, 61440);
    assert_false(f.tablets_routing);
    cql_sync_close(c);
    sim_stop(&s);
}

static void test_rate_limit_error(void **state)
{
    (void)state;
    sim s;
    /* a code other than ScyllaDB's usual 61440: the client must use the advertised one */
    sim_start(&s, "--version 6.2 --base-ip 21 --rate-limit-code 61441");
    cql_sync *c = sim_connect(&s, "127.0.0.21");
    cql_statement q;
    cql_statement_init(&q);
    q.query = "SELECT v FROM simks.rate_limited WHERE k = 1";
    q.idempotent = true;
    cql_status st;
    assert_int_not_equal(cql_sync_execute(c, &q, NULL, &st), 0);
    assert_int_equal(st.code, MS_ERR_RATE_LIMITED);
    assert_int_equal(st.server_code, 61441);
    assert_int_equal(st.attempts, 1); /* never retried, even idempotent */
    assert_non_null(strstr(st.message, "Rate_limit"));
    cql_sync_close(c);
    sim_stop(&s);

    /* not negotiated: the same code is just an unknown server error */
    sim_start(&s, "--version 6.2 --base-ip 21 --no-rate-limit-ext");
    c = sim_connect(&s, "127.0.0.21");
    assert_int_not_equal(cql_sync_execute(c, &q, NULL, &st), 0);
    assert_int_not_equal(st.code, MS_ERR_RATE_LIMITED);
    assert_int_equal(st.server_code, 61440);
    cql_sync_close(c);
    sim_stop(&s);
}

/* Runs the prepared select for key k; returns where the simulator served it ("addr/shard"). */
static void served_by(cql_sync *c, cql_prepared *p, int64_t k, char *out, size_t cap)
{
    cql_values v;
    cql_values_init(&v);
    cql_values_add_bigint(&v, k);
    cql_statement q;
    cql_statement_init(&q);
    q.prepared = p;
    q.values = &v;
    q.idempotent = true;
    cql_result *res = NULL;
    cql_status st;
    int rc = cql_sync_execute(c, &q, &res, &st);
    if (rc)
        fprintf(stderr, "execute: %s\n", st.message);
    assert_int_equal(rc, 0);
    assert_int_equal(cql_result_next_row(res), 0);
    cql_str s;
    assert_int_equal(cql_row_get_text(res, 0, &s), 0);
    snprintf(out, cap, "%.*s", (int)s.len, s.ptr);
    cql_result_destroy(res);
    cql_values_free(&v);
}

static void test_tablet_routing(void **state)
{
    (void)state;
    sim s;
    /* three hosts (127.0.0.21-23), two shards each; simks is a tablet keyspace whose table t
     * is one tablet on 127.0.0.23 shard 1 and t_b one on 127.0.0.22 shard 0 */
    sim_start(&s, "--version 2026.1 --base-ip 21 --hosts 3 --tablet-keyspace simks");
    cql_sync *c = sim_connect(&s, "127.0.0.21");
    cql_sync_run_for(c, 300); /* pools to every host */
    cql_prepared *pt = NULL, *pb = NULL;
    cql_status st;
    assert_int_equal(cql_sync_prepare(c, "SELECT v FROM simks.t WHERE k = ?", &pt, &st), 0);
    assert_int_equal(cql_sync_prepare(c, "SELECT v FROM simks.t_b WHERE k = ?", &pb, &st), 0);
    char where[64];
    /* keys whose vnode owner is not the tablet's replica: the first answer teaches the tablet */
    int64_t keys[] = {1, 2, 3, 42, 1000, 77777};
    bool taught = false;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        served_by(c, pt, keys[i], where, sizeof where);
        if (strcmp(where, "127.0.0.23/1") != 0)
            taught = true;
        /* from now on every key of t goes to the tablet's host and shard */
        for (int k = 0; k < 5; k++) {
            served_by(c, pt, keys[i] * 7 + k, where, sizeof where);
            if (taught)
                assert_string_equal(where, "127.0.0.23/1");
        }
        if (taught)
            break;
    }
    assert_true(taught); /* the test could tell routing by tablet from routing by vnode */
    /* another table of the keyspace: its own tablet */
    served_by(c, pb, 5, where, sizeof where);
    for (int k = 0; k < 5; k++) {
        served_by(c, pb, 100 + k, where, sizeof where);
        assert_string_equal(where, "127.0.0.22/0");
    }
    cql_prepared_release(pt);
    cql_prepared_release(pb);
    cql_sync_close(c);
    sim_stop(&s);
}

/* Speculative executions: idempotent statements only, and not those marked no_speculative
 * (the store's writes). The simulator answers the first execution of a key late. */
static void test_speculative_reads_only(void **state)
{
    (void)state;
    sim s;
    sim_start(&s, "--version 6.2 --base-ip 21 --hosts 3");
    cql_options o;
    cqlt_options(&o, "MSGSTORE_TEST_SIM_UNSET", "127.0.0.21");
    o.port = s.port;
    o.compression = false;
    o.speculative_delay_ms = 100;
    o.speculative_max = 1;
    cql_sync *c = NULL;
    cql_status st;
    assert_int_equal(cql_sync_connect(&o, &c, &st), 0);
    cql_sync_run_for(c, 300);
    cql_prepared *p = NULL;
    assert_int_equal(cql_sync_prepare(c, "SELECT v FROM vks.slow WHERE k = ?", &p, &st), 0);
    cql_session_stats before, after;
    struct {
        bool idempotent, no_spec;
        int64_t key;
        uint64_t want_spec;
    } cases[] = {{true, false, 1, 1}, {true, true, 2, 0}, {false, false, 3, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cql_sync_stats(c, &before);
        cql_values v;
        cql_values_init(&v);
        cql_values_add_bigint(&v, cases[i].key);
        cql_statement q;
        cql_statement_init(&q);
        q.prepared = p;
        q.values = &v;
        q.idempotent = cases[i].idempotent;
        q.no_speculative = cases[i].no_spec;
        cql_result *res = NULL;
        assert_int_equal(cql_sync_execute(c, &q, &res, &st), 0);
        assert_int_equal(cql_result_next_row(res), 0);
        cql_str served;
        assert_int_equal(cql_row_get_text(res, 0, &served), 0);
        /* "addr/shard/attempt": the speculative copy is the key's second execution */
        char last = served.ptr[served.len - 1];
        assert_int_equal(last, cases[i].want_spec ? '2' : '1');
        cql_result_destroy(res);
        cql_values_free(&v);
        cql_sync_stats(c, &after);
        assert_int_equal(after.speculative - before.speculative, cases[i].want_spec);
    }
    cql_prepared_release(p);
    cql_sync_close(c);
    sim_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_features_from_supported),
        cmocka_unit_test(test_rate_limit_error),
        cmocka_unit_test(test_tablet_routing),
        cmocka_unit_test(test_speculative_reads_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
