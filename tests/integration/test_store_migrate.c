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

/* Runs msgstore migrate from an empty directory; returns the exit code and the output. */
static int run_migrate(char *out, size_t cap)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cd '%s' && MSGSTORE_SQLITE_PATH='%s' '%s' migrate 2>&1", dir, db,
             bin);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
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
    };
    int rc = cmocka_run_group_tests_name("msgstore migrate (sqlite)", tests, NULL, NULL);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}
