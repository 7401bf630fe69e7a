/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_health (the details behind /health) against a real backend, in the
 * manner of the conformance suite: the same tests on each backend.
 *
 *   MSGSTORE_TEST_BACKEND=sqlite (default)  a fresh SQLite file in a temp dir
 *   MSGSTORE_TEST_BACKEND=scylla            the Cassandra node of the ctest
 *       fixture (MSGSTORE_TEST_CASSANDRA, default 127.0.0.1:9042), keyspace
 *       msgstore_health (SCYLLA_KEYSPACE), migrated first
 *
 * or the first argument (sqlite|scylla). Checked: a healthy store reports
 * every expected field (SQLite: file, WAL, size; ScyllaDB: the host with its
 * DC up and its breaker closed, the keyspace's replication, schema
 * agreement), the sync and async forms agree, a dropped table and a schema
 * version the binary does not know are reported (and repaired again by the
 * test), and on ScyllaDB a node that goes away (a TCP proxy in front of it
 * is cut) still gives a result that shows the host down.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "msgstore/cql.h"
#include "msgstore/store.h"
#include "store_test.h"
#include "tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define KEYSPACE     "msgstore_health"
#define DROPPED      "telegram_sync_state" /* the table the missing-table test drops */
#define BOGUS_SCHEMA 999                   /* a schema version no binary has */

static char CONTACT[128]; /* overrides SCYLLA_CONTACT_POINTS (the proxy) when set */

/* ------------------------------------------------------------------ helpers */

static const store_health_table *table(const store_health_result *h, const char *name)
{
    for (size_t i = 0; i < h->ntables; i++)
        if (strcmp(h->tables[i].name, name) == 0)
            return &h->tables[i];
    return NULL;
}

/* Whether the expected table `name` is present; fails when it is not expected at all. */
static bool present(const store_health_result *h, const char *name)
{
    const store_health_table *t = table(h, name);
    if (!t) {
        fail_msg("table %s not expected", name);
        return false;
    }
    return t->present;
}

static const char *replication(const store_health_result *h, const char *key)
{
    for (size_t i = 0; i < h->nreplication; i++)
        if (strcmp(h->replication[i].key, key) == 0)
            return h->replication[i].value;
    return NULL;
}

static store_health_result *health(void)
{
    store_health_result *h = NULL;
    char detail[256] = "";
    int rc = store_health_sync(S, &h, detail, sizeof detail);
    if (rc)
        fail_msg("store_health_sync: %s (%s)", ms_err_name(rc), detail);
    assert_non_null(h);
    return h;
}

/* Runs statements on the backend behind the store's back (DDL, schema_version edits). */
static void backend_exec(const char *sql)
{
    if (!SCYLLA) {
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(CFG.store.sqlite_path, &db), SQLITE_OK);
        sqlite3_busy_timeout(db, 5000);
        char *msg = NULL;
        if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
            fail_msg("sqlite: %s: %s", sql, msg ? msg : "?");
        sqlite3_close(db);
        return;
    }
    cql_options o;
    cql_options_init(&o);
    store_cql_options(&CFG.store, &o);
    o.keyspace = CFG.store.scylla_keyspace;
    o.wait_schema_agreement = true;
    o.name = "test";
    cql_sync *db = NULL;
    cql_status st;
    if (cql_sync_connect(&o, &db, &st) != 0 || !db)
        fail_msg("connect: %s", st.message);
    if (cql_sync_query(db, sql, NULL, &st) != 0)
        fail_msg("cql: %s: %s", sql, st.message);
    cql_sync_close(db);
}

/* The CREATE TABLE statement of `name` in the embedded migrations (malloc'd). */
static char *create_statement(const char *name)
{
    size_t n = 0;
    const store_migration *m = store_migrations(SCYLLA ? MS_BACKEND_SCYLLA : MS_BACKEND_SQLITE, &n);
    char pat1[128], pat2[128];
    snprintf(pat1, sizeof pat1, "CREATE TABLE %s (", name);
    snprintf(pat2, sizeof pat2, "CREATE TABLE IF NOT EXISTS %s (", name);
    for (size_t i = 0; i < n; i++) {
        const char *p = strstr(m[i].text, pat1);
        if (!p)
            p = strstr(m[i].text, pat2);
        if (!p)
            continue;
        const char *e = strchr(p, ';');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *out = malloc(len * 2 + 1);
        assert_non_null(out);
        /* the column types of ids ({{id}}) as the store's format has them */
        bool uuid = store_id_format(S) == MS_ID_UUID;
        const char *type = SCYLLA ? (uuid ? "uuid" : "bigint") : (uuid ? "BLOB" : "INTEGER");
        size_t o = 0;
        for (size_t k = 0; k < len;) {
            if (strncmp(p + k, "{{id}}", 6) == 0) {
                o += (size_t)sprintf(out + o, "%s", type);
                k += 6;
            } else {
                out[o++] = p[k++];
            }
        }
        out[o] = '\0';
        return out;
    }
    fail_msg("no CREATE TABLE %s in the migrations", name);
    return NULL;
}

/* ------------------------------------------------------------------ tests */

/* A healthy store: every field, for its backend. */
static void test_healthy(void **state)
{
    (void)state;
    store_health_result *h = health();
    if (!h->ok)
        fail_msg("not ok: %s", h->error ? h->error : "(no error)");
    assert_null(h->error);
    assert_string_equal(h->backend, SCYLLA ? "scylla" : "sqlite");
    assert_true(h->hdr.queries >= 3);
    assert_true(h->latency_us > 0);

    size_t nm = 0;
    const store_migration *m =
        store_migrations(SCYLLA ? MS_BACKEND_SCYLLA : MS_BACKEND_SQLITE, &nm);
    assert_true(nm > 0);
    assert_int_equal(h->schema_expected, m[nm - 1].version);
    assert_int_equal(h->schema_version, h->schema_expected);

    /* the tables the migrations create, all there */
    assert_true(h->tables_checked);
    assert_int_equal(h->tables_missing, 0);
    assert_true(h->ntables >= 12);
    const char *want[] = {
        "schema_version",  "messages",          "channel_buckets",  "message_edits",
        "pinned_messages", "message_reactions", "channel_metadata", DROPPED};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        assert_true(present(h, want[i]));
    }
    if (SCYLLA) { /* tables only the CQL schema has (later migrations) */
        assert_non_null(table(h, "counter_repairs"));
        assert_non_null(table(h, "channel_message_counts"));
    }

    if (!SCYLLA) {
        assert_string_equal(h->path, CFG.store.sqlite_path);
        assert_string_equal(h->journal_mode, "wal");
        assert_true(h->size_bytes > 0);
        assert_null(h->hosts);
        assert_null(h->keyspace);
        store_free(h);
        return;
    }
    assert_null(h->path);
    assert_string_equal(h->keyspace, CFG.store.scylla_keyspace);
    assert_true(h->keyspace_found);
    const char *cls = replication(h, "class");
    assert_non_null(cls);
    assert_non_null(strstr(cls, "SimpleStrategy")); /* development default SimpleStrategy:1 */
    assert_non_null(replication(h, "replication_factor"));
    assert_string_equal(replication(h, "replication_factor"), "1");

    /* the workers' sessions connect in the background: on a slow machine (valgrind) they
     * may not all be up at the first look; wait for one, bounded */
    for (int i = 0; i < 600 && h->nhosts >= 1 && h->hosts[0].sessions_up < 1; i++) {
        store_free(h);
        usleep(100 * 1000);
        h = health();
    }
    /* the single node: up, in datacenter1, breaker closed */
    assert_true(h->nhosts >= 1);
    assert_int_equal(h->hosts_up, h->nhosts);
    assert_int_equal(h->hosts_down, 0);
    const store_health_host *x = &h->hosts[0];
    assert_string_equal(x->dc, "datacenter1");
    assert_true(x->rack[0] != '\0');
    assert_true(x->release_version[0] != '\0');
    assert_string_equal(x->state, "up");
    assert_true(x->up);
    assert_true(x->local);
    assert_string_equal(x->breaker, "closed");
    assert_true(x->connections >= 1);
    assert_true(x->port > 0);
    assert_true(x->sessions_up >= 1); /* the workers' sessions (and the repair's) */
    assert_true(x->in_flight >= 0);
    assert_string_equal(h->local_dc, "datacenter1");
    assert_string_equal(h->breaker, "closed");
    assert_int_equal(h->breakers_open, 0);
    assert_int_equal(h->schema_versions, 1);
    print_message("      %s:%d dc=%s rack=%s %s breaker=%s sessions_up=%d; keyspace %s (%s, "
                  "rf %s); %zu tables; %.1f ms\n",
                  x->address, x->port, x->dc, x->rack, x->state, x->breaker, x->sessions_up,
                  h->keyspace, cls, replication(h, "replication_factor"), h->ntables,
                  (double)h->latency_us / 1000.0);
    store_free(h);
}

typedef struct async_ctx {
    int done;
    int status;
    bool ok;
    char backend[16];
    size_t ntables;
    bool inside_call;
    bool cb_inside_call;
} async_ctx;

static void on_health(int status, const char *detail, const store_health_result *res, void *ud)
{
    (void)detail;
    async_ctx *c = ud;
    c->cb_inside_call |= c->inside_call;
    c->status = status;
    if (status == 0) {
        c->ok = res->ok;
        snprintf(c->backend, sizeof c->backend, "%s", res->backend);
        c->ntables = res->ntables;
    }
    c->done++;
}

/* The async form answers on the caller's loop, after the call returned; it is counted. */
static void test_async_and_stats(void **state)
{
    (void)state;
    store_stats before, after;
    store_get_stats(S, &before);
    uv_loop_t loop;
    uv_loop_init(&loop);
    async_ctx c = {0};
    c.inside_call = true;
    for (int i = 0; i < 3; i++)
        assert_int_equal(store_health(S, &loop, on_health, &c), 0);
    c.inside_call = false;
    while (c.done < 3)
        uv_run(&loop, UV_RUN_ONCE);
    assert_false(c.cb_inside_call);
    assert_int_equal(c.status, 0);
    assert_true(c.ok);
    assert_string_equal(c.backend, SCYLLA ? "scylla" : "sqlite");
    assert_true(c.ntables >= 12);
    store_loop_detach(S, &loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);

    store_get_stats(S, &after);
    assert_int_equal(after.ops[STORE_OP_HEALTH].calls - before.ops[STORE_OP_HEALTH].calls, 3);
    assert_int_equal(after.ops[STORE_OP_HEALTH].errors - before.ops[STORE_OP_HEALTH].errors, 0);
    assert_true(after.ops[STORE_OP_HEALTH].queries > before.ops[STORE_OP_HEALTH].queries);
    assert_string_equal(store_op_name(STORE_OP_HEALTH), "health");

    /* bad arguments: refused, no callback */
    store_health_result *r = NULL;
    assert_int_equal(store_health(S, NULL, on_health, &c), MS_ERR_INVALID);
    assert_int_equal(store_health(NULL, &loop, on_health, &c), MS_ERR_INVALID);
    assert_int_equal(store_health(S, &loop, NULL, &c), MS_ERR_INVALID);
    assert_int_equal(store_health_sync(NULL, &r, NULL, 0), MS_ERR_INVALID);
    assert_int_equal(store_health_sync(S, NULL, NULL, 0), MS_ERR_INVALID);
    assert_int_equal(c.done, 3);
}

/* A table dropped behind the store's back is reported missing; back, all is well again. */
static void test_missing_table(void **state)
{
    (void)state;
    char *create = create_statement(DROPPED);
    backend_exec("DROP TABLE " DROPPED);
    store_health_result *h = health();
    assert_false(h->ok);
    assert_non_null(h->error);
    assert_non_null(strstr(h->error, DROPPED));
    assert_true(h->tables_checked);
    assert_int_equal(h->tables_missing, 1);
    assert_false(present(h, DROPPED));
    assert_true(present(h, "messages"));
    print_message("      reported: %s\n", h->error);
    store_free(h);

    backend_exec(create);
    free(create);
    h = health();
    if (!h->ok)
        fail_msg("not ok after the table came back: %s", h->error);
    assert_int_equal(h->tables_missing, 0);
    store_free(h);
}

/* A schema version the binary does not know (a newer binary migrated) is reported. */
static void test_schema_version_mismatch(void **state)
{
    (void)state;
    char sql[256];
    if (SCYLLA)
        snprintf(sql, sizeof sql,
                 "INSERT INTO schema_version (scope, version, name, checksum, applied_at) "
                 "VALUES ('msgstore', %d, 'test', 'test', 0)",
                 BOGUS_SCHEMA);
    else
        snprintf(sql, sizeof sql,
                 "INSERT INTO schema_version(version, name, checksum, applied_at) "
                 "VALUES(%d, 'test', 'test', 0)",
                 BOGUS_SCHEMA);
    backend_exec(sql);
    store_health_result *h = health();
    assert_false(h->ok);
    assert_int_equal(h->schema_version, BOGUS_SCHEMA);
    assert_non_null(h->error);
    assert_non_null(strstr(h->error, "schema version"));
    store_free(h);
    snprintf(sql, sizeof sql,
             SCYLLA ? "DELETE FROM schema_version WHERE scope = 'msgstore' AND version = %d"
                    : "DELETE FROM schema_version WHERE version = %d",
             BOGUS_SCHEMA);
    backend_exec(sql);
    h = health();
    assert_true(h->ok);
    store_free(h);
}

/* ------------------------------------------------------------------ ScyllaDB: the node goes away
 */

static const char *lookup(const char *name, void *ctx);

/*
 * A store whose only way to the node is the proxy; the proxy is cut: the
 * check still answers (status 0), not ok, with the host known and down.
 */
static void test_node_gone(void **state)
{
    (void)state;
    if (!SCYLLA)
        skip();
    const char *node = getenv("MSGSTORE_TEST_CASSANDRA");
    char host[64] = "127.0.0.1";
    int port = 9042;
    if (node) {
        const char *colon = strrchr(node, ':');
        size_t hl = colon ? (size_t)(colon - node) : strlen(node);
        snprintf(host, sizeof host, "%.*s", (int)hl, node);
        if (colon)
            port = atoi(colon + 1);
    }
    proxy p;
    proxy_start(&p, host, port);
    snprintf(CONTACT, sizeof CONTACT, "127.0.0.1:%d", p.port);
    ms_config cfg;
    char err[512];
    int rc = ms_config_load(&cfg, lookup, NULL, err, sizeof err);
    CONTACT[0] = '\0';
    if (rc)
        fail_msg("config: %s", err);
    store_options opt = {.no_migrate = true, .scylla_repair_interval_ms = -1};
    store *s = NULL;
    if (store_open(&cfg.store, &opt, &s, err, sizeof err) != 0)
        fail_msg("store_open through the proxy: %s", err);

    store_health_result *h = NULL;
    assert_int_equal(store_health_sync(s, &h, NULL, 0), 0);
    if (!h->ok)
        fail_msg("not ok through the proxy: %s", h->error);
    assert_true(h->nhosts >= 1);
    assert_int_equal(h->hosts[0].port, p.port);
    assert_string_equal(h->hosts[0].state, "up");
    store_free(h);

    proxy_cut(&p);
    char detail[256] = "";
    rc = store_health_sync(s, &h, detail, sizeof detail);
    if (rc)
        fail_msg("no result with the node gone: %s (%s)", ms_err_name(rc), detail);
    assert_false(h->ok);
    assert_non_null(h->error);
    assert_true(h->nhosts >= 1);
    const store_health_host *x = &h->hosts[0];
    assert_string_equal(x->dc, "datacenter1"); /* still known */
    assert_string_equal(x->state, "down");
    assert_false(x->up);
    assert_int_equal(h->hosts_down, 1);
    assert_int_equal(h->hosts_up, 0);
    assert_false(h->tables_checked); /* nothing could be read: not claimed */
    print_message("      node gone: %s; host %s breaker %s; client breaker %s\n", h->error,
                  x->state, x->breaker, h->breaker);
    store_free(h);
    store_close(s);
    proxy_stop(&p);
}

/* ------------------------------------------------------------------ setup */

static const char *lookup(const char *name, void *ctx)
{
    (void)ctx;
    const char *v = storet_lookup_backend(name);
    if (v)
        return v;
    if (strcmp(name, "SCYLLA_KEYSPACE") == 0 && SCYLLA && !getenv(name))
        return KEYSPACE;
    if (strcmp(name, "SCYLLA_CONTACT_POINTS") == 0 && SCYLLA && CONTACT[0])
        return CONTACT;
    /* the proxied store must give up on the gone node quickly */
    if (strcmp(name, "SCYLLA_REQUEST_TIMEOUT") == 0 && SCYLLA && !getenv(name))
        return "5s";
    if (strcmp(name, "SCYLLA_CONNECT_TIMEOUT") == 0 && SCYLLA && !getenv(name))
        return "2s";
    return storet_lookup_env(name);
}

static int group_setup(void **state)
{
    (void)state;
    if (storet_config_load(lookup) != 0)
        return -1;
    if (SCYLLA) {
        /* a run stopped half-way may have left the test's rows or lost the table */
        char *create = create_statement(DROPPED);
        char sql[160];
        snprintf(sql, sizeof sql,
                 "DELETE FROM schema_version WHERE scope = 'msgstore' AND version = %d",
                 BOGUS_SCHEMA);
        backend_exec(sql);
        backend_exec(create);
        free(create);
    }
    store_options opt = {.scylla_repair_interval_ms = -1};
    return storet_open(&opt);
}

int main(int argc, char **argv)
{
    int rc = storet_backend(argc, argv, "/tmp/msgstore-health-XXXXXX");
    if (rc != 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthy),       cmocka_unit_test(test_async_and_stats),
        cmocka_unit_test(test_missing_table), cmocka_unit_test(test_schema_version_mismatch),
        cmocka_unit_test(test_node_gone),
    };
    return cmocka_run_group_tests_name(SCYLLA ? "store health (scylla)" : "store health (sqlite)",
                                       tests, group_setup, storet_group_teardown);
}
