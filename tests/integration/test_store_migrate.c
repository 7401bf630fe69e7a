/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `msgstore migrate` on a SQLite file: applies the embedded migrations with
 * progress, records them, is a no-op the second time, refuses a database
 * whose recorded checksum differs from the binary's copy, and needs no
 * schema directory (the migrations are compiled in).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/config.h"
#include "msgstore/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/msgstore-migrate-XXXXXX";
static char db[300];
static char bin[512];
static const char *id_format = "int64"; /* MSGSTORE_ID_FORMAT of the runs below */

/* Runs msgstore migrate on `path` from an empty directory; returns the exit code and output. */
static int run_migrate_at(const char *path, char *out, size_t cap)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && MSGSTORE_SQLITE_PATH='%s' MSGSTORE_ID_FORMAT=%s '%s' migrate 2>&1", dir,
             path, id_format, bin);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run_migrate(char *out, size_t cap)
{
    return run_migrate_at(db, out, cap);
}

static int count_versions(void)
{
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT count(*) FROM schema_version", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

static void test_migrate_twice(void **state)
{
    (void)state;
    char out[4096];
    size_t n = 0;
    const store_migration *m = store_migrations(MS_BACKEND_SQLITE, &n);
    assert_true(n >= 1);
    assert_int_equal(run_migrate(out, sizeof out), 0);
    assert_non_null(strstr(out, "applied"));
    assert_non_null(strstr(out, m[0].name));
    assert_int_equal(count_versions(), (int)n);
    assert_int_equal(run_migrate(out, sizeof out), 0);
    assert_non_null(strstr(out, "already current"));
    assert_null(strstr(out, "  applied"));
    assert_int_equal(count_versions(), (int)n);
}

static void test_changed_migration_refused(void **state)
{
    (void)state;
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(h, "UPDATE schema_version SET checksum='0000000000000000'", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(h);
    char out[4096];
    assert_int_equal(run_migrate(out, sizeof out), 1);
    assert_non_null(strstr(out, "changed after it was applied"));
}

static void test_list(void **state)
{
    (void)state;
    char cmd[700], out[4096];
    snprintf(cmd, sizeof cmd, "'%s' migrate --list", bin);
    FILE *p = popen(cmd, "r");
    size_t k = fread(out, 1, sizeof out - 1, p);
    out[k] = '\0';
    assert_int_equal(pclose(p), 0);
    size_t n = 0;
    const store_migration *m = store_migrations(MS_BACKEND_SQLITE, &n);
    assert_non_null(strstr(out, m[n - 1].name));
}

static const char *lookup_path(const char *name, void *ctx)
{
    if (strcmp(name, "MSGSTORE_ID_FORMAT") == 0)
        return id_format;
    return strcmp(name, "MSGSTORE_SQLITE_PATH") == 0 ? ctx : NULL;
}

static void exec_ok(sqlite3 *h, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
}

/*
 * A store made before search (002_search.sql) with messages in it: the
 * migration indexes them, showing progress, and they are found afterwards
 * (deleted ones not).
 */
static void test_search_index_built_for_old_store(void **state)
{
    (void)state;
    char old[400], out[16384];
    snprintf(old, sizeof old, "%s/old.db", dir);
    assert_int_equal(run_migrate_at(old, out, sizeof out), 0);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(old, &h), SQLITE_OK);
    /* back to the schema before search, then messages written as that version wrote them */
    exec_ok(h, "DROP TRIGGER message_search_update;"
               "DROP TRIGGER message_search_delete; DROP TABLE message_search;"
               "DELETE FROM schema_version WHERE name IN ('002_search.sql', "
               "'003_search_ids.sql', '004_search_batch.sql')");
    exec_ok(h, "BEGIN");
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(h,
                                        "INSERT INTO messages(channel_id, bucket, message_id, "
                                        "sender_id, type, source, content, created_at, "
                                        "is_deleted) VALUES(5, 0, ?1, 1, 0, 0, ?2, 0, ?3)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    for (int i = 1; i <= 3000; i++) {
        char text[64];
        bool deleted = i % 10 == 0; /* soft-deleted rows keep no content */
        snprintf(text, sizeof text, "needle number %d", i);
        sqlite3_bind_int64(st, 1, i);
        sqlite3_bind_text(st, 2, deleted ? "" : text, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 3, deleted);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    exec_ok(h, "COMMIT");
    sqlite3_close(h);

    assert_int_equal(run_migrate_at(old, out, sizeof out), 0);
    assert_non_null(strstr(out, "applied  002_search.sql"));
    assert_non_null(strstr(out, "applied  003_search_ids.sql"));
    assert_non_null(strstr(out, "applied  004_search_batch.sql"));
    assert_non_null(strstr(out, "building the search index of 2700 message(s)"));
    assert_non_null(strstr(out, "search index: 1350 of 2700 (50%)")); /* progress */
    assert_non_null(strstr(out, "search index built: 2700 message(s)"));

    ms_config cfg;
    char err[256];
    assert_int_equal(ms_config_load(&cfg, lookup_path, old, err, sizeof err), 0);
    store *s = NULL;
    assert_int_equal(store_open(&cfg.store, NULL, &s, err, sizeof err), 0);
    ms_xid ch = ms_xid_int(5);
    store_search_req q = {.channel_ids = &ch, .nchannels = 1, .query = "needle", .limit = 100};
    store_search_result *res = NULL;
    assert_int_equal(store_search_sync(s, &q, &res, NULL, 0), 0);
    assert_int_equal(res->count, 100);
    assert_true(res->more);
    assert_int_equal(res->items[0].msg.id, 2999); /* newest first; 3000 is deleted */
    store_free(res);
    q.query = "\"number 1234\"";
    assert_int_equal(store_search_sync(s, &q, &res, NULL, 0), 0);
    assert_int_equal(res->count, 1);
    assert_int_equal(res->items[0].msg.id, 1234);
    store_free(res);
    q.query = "\"number 1230\"";
    assert_int_equal(store_search_sync(s, &q, &res, NULL, 0), 0);
    assert_int_equal(res->count, 0);
    store_free(res);
    /* a message written after the migrations is indexed once, by the writer (004) */
    store_insert_req in = {.channel_id = ch, .sender_id = ms_xid_int(1), .content = "needle 9999"};
    in.content_len = strlen(in.content);
    store_message_result *mr = NULL;
    assert_int_equal(store_insert_sync(s, &in, &mr, NULL, 0), 0);
    store_free(mr);
    q.query = "\"needle 9999\"";
    assert_int_equal(store_search_sync(s, &q, &res, NULL, 0), 0);
    assert_int_equal(res->count, 1);
    store_free(res);
    store_close(s);
}

/* The id format a SQLite file records (store_settings), "" when none. */
static void recorded_format(const char *path, char *out, size_t n)
{
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    out[0] = '\0';
    if (sqlite3_prepare_v2(h, "SELECT value FROM store_settings WHERE name='id_format'", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(h);
}

/*
 * The id format is chosen when a store is created and recorded with its
 * schema: ids are stored natively (16-byte BLOBs for uuid), and a start with
 * the other format is refused naming both (migrate and store_open alike).
 */
static void test_id_format_recorded_and_refused(void **state)
{
    (void)state;
    char path[400], out[16384], got[16], err[512];
    snprintf(path, sizeof path, "%s/uuid.db", dir);
    id_format = "uuid";
    assert_int_equal(run_migrate_at(path, out, sizeof out), 0);
    recorded_format(path, got, sizeof got);
    assert_string_equal(got, "uuid");

    ms_config cfg;
    assert_int_equal(ms_config_load(&cfg, lookup_path, path, err, sizeof err), 0);
    assert_int_equal(cfg.store.id_format, MS_ID_UUID);
    store *s = NULL;
    assert_int_equal(store_open(&cfg.store, NULL, &s, err, sizeof err), 0);
    assert_int_equal(store_id_format(s), MS_ID_UUID);
    ms_xid ch, user;
    assert_int_equal(ms_xid_parse(MS_ID_UUID, "6F1C2B3A-5D7E-4A00-8B00-00000000002A", 36, &ch), 0);
    assert_int_equal(ms_xid_parse(MS_ID_UUID, "0b3c4d5e-6f70-4182-9a00-000000000007", 36, &user),
                     0);
    store_insert_req q = {.channel_id = ch, .sender_id = user, .content = "hi", .content_len = 2};
    store_message_result *res = NULL;
    assert_int_equal(store_insert_sync(s, &q, &res, err, sizeof err), 0);
    assert_true(ms_xid_eq(res->msg.channel_id, ch));
    store_free(res);
    store_close(s);
    /* stored natively: a 16-byte BLOB holding the UUID's bytes */
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(h,
                                        "SELECT typeof(channel_id), length(channel_id), "
                                        "hex(channel_id), typeof(sender_id) FROM messages",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "blob");
    assert_int_equal(sqlite3_column_int(st, 1), 16);
    assert_string_equal((const char *)sqlite3_column_text(st, 2),
                        "6F1C2B3A5D7E4A008B0000000000002A");
    assert_string_equal((const char *)sqlite3_column_text(st, 3), "blob");
    sqlite3_finalize(st);
    sqlite3_close(h);

    /* the other format: refused by migrate and by store_open, naming both */
    id_format = "int64";
    assert_int_not_equal(run_migrate_at(path, out, sizeof out), 0);
    assert_non_null(strstr(out, "holds uuid channel and user ids but MSGSTORE_ID_FORMAT is int64"));
    assert_int_equal(ms_config_load(&cfg, lookup_path, path, err, sizeof err), 0);
    assert_int_equal(store_open(&cfg.store, NULL, &s, err, sizeof err), MS_ERR_CONFLICT);
    assert_non_null(strstr(err, "uuid"));
    assert_non_null(strstr(err, "MSGSTORE_ID_FORMAT is int64"));
    recorded_format(path, got, sizeof got);
    assert_string_equal(got, "uuid"); /* nothing changed */

    /* a store made before the format was recorded is int64: the default (uuid) is refused
     * with the fix in the message, int64 opens it and records the format */
    snprintf(path, sizeof path, "%s/old-format.db", dir);
    assert_int_equal(run_migrate_at(path, out, sizeof out), 0);
    assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
    exec_ok(h, "DROP TABLE store_settings");
    sqlite3_close(h);
    id_format = "uuid";
    assert_int_not_equal(run_migrate_at(path, out, sizeof out), 0);
    assert_non_null(strstr(out, "holds int64 channel and user ids but MSGSTORE_ID_FORMAT is uuid"));
    assert_non_null(strstr(out, "set MSGSTORE_ID_FORMAT=int64"));
    id_format = "int64";
    assert_int_equal(run_migrate_at(path, out, sizeof out), 0);
    recorded_format(path, got, sizeof got);
    assert_string_equal(got, "int64");
}

int main(void)
{
    const char *bdir = getenv("MSGSTORE_BINARY_DIR");
    snprintf(bin, sizeof bin, "%s/src/cli/msgstore", bdir ? bdir : ".");
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "no msgstore binary at %s\n", bin);
        return 1;
    }
    if (!mkdtemp(dir))
        return 1;
    snprintf(db, sizeof db, "%s/m.db", dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_twice),
        cmocka_unit_test(test_changed_migration_refused),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_search_index_built_for_old_store),
        cmocka_unit_test(test_id_format_recorded_and_refused),
    };
    int rc = cmocka_run_group_tests_name("msgstore migrate (sqlite)", tests, NULL, NULL);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}
