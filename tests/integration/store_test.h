/* SPDX-License-Identifier: Apache-2.0 */
/*
 * State and helpers shared by the store's backend-parametrised integration
 * tests (test_store_conformance, test_store_health). Each test file includes
 * this header once: it defines the file's store S, its config CFG, the
 * backend flag SCYLLA and the SQLite temp dir TMPDIR_PATH.
 */
#ifndef MS_TEST_STORE_TEST_H
#define MS_TEST_STORE_TEST_H

#include "core/config.h"
#include "core/log.h"
#include "msgstore/store.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The backend when neither argv[1] nor $MSGSTORE_TEST_BACKEND names one. */
#ifndef STORE_TEST_DEFAULT_BACKEND
#define STORE_TEST_DEFAULT_BACKEND "sqlite"
#endif

static store *S;              /* the store under test (group setup opens it) */
static ms_config CFG;         /* its configuration */
static bool SCYLLA;           /* true: ScyllaDB/Cassandra; false: SQLite */
static char TMPDIR_PATH[256]; /* SQLite: the temp dir holding the file */

/*
 * Sets up logging and picks the backend from argv[1], else
 * $MSGSTORE_TEST_BACKEND, else STORE_TEST_DEFAULT_BACKEND, setting SCYLLA.
 * For SQLite, makes a fresh temp dir from the mkdtemp template tmpl into
 * TMPDIR_PATH. Returns 0, or the exit status main should return (2: unknown
 * backend, 1: no temp dir).
 */
static inline int storet_backend(int argc, char **argv, const char *tmpl)
{
    const char *backend = argc > 1 ? argv[1] : getenv("MSGSTORE_TEST_BACKEND");
    if (!backend)
        backend = STORE_TEST_DEFAULT_BACKEND;
    ms_log_setup(MS_LOG_WARN, false);
    if (strcmp(backend, "scylla") == 0) {
        SCYLLA = true;
    } else if (strcmp(backend, "sqlite") != 0) {
        fprintf(stderr, "usage: %s [sqlite|scylla]\n", argv[0]);
        return 2;
    }
    if (!SCYLLA) {
        snprintf(TMPDIR_PATH, sizeof TMPDIR_PATH, "%s", tmpl);
        if (!mkdtemp(TMPDIR_PATH)) {
            perror("mkdtemp");
            return 1;
        }
    }
    return 0;
}

/* cmocka group teardown: closes S; on SQLite removes TMPDIR_PATH. */
static inline int storet_group_teardown(void **state)
{
    (void)state;
    store_close(S);
    S = NULL;
    if (!SCYLLA && TMPDIR_PATH[0]) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", TMPDIR_PATH);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", TMPDIR_PATH);
    }
    return 0;
}

/* The answers every store test's config lookup gives first (the backend and
 * the SQLite file); NULL for any other name. */
static inline const char *storet_lookup_backend(const char *name)
{
    if (strcmp(name, "SCYLLA_ENABLED") == 0)
        return SCYLLA ? "true" : "false";
    if (strcmp(name, "MSGSTORE_SQLITE_PATH") == 0 && !SCYLLA) {
        static char path[300];
        snprintf(path, sizeof path, "%s/store.db", TMPDIR_PATH);
        return path;
    }
    return NULL;
}

/* The lookup's last answers: on ScyllaDB the ctest fixture's node
 * ($MSGSTORE_TEST_CASSANDRA) unless SCYLLA_CONTACT_POINTS says otherwise, log
 * level warn unless set, else the environment. */
static inline const char *storet_lookup_env(const char *name)
{
    if (strcmp(name, "SCYLLA_CONTACT_POINTS") == 0 && SCYLLA && !getenv(name) &&
        getenv("MSGSTORE_TEST_CASSANDRA"))
        return getenv("MSGSTORE_TEST_CASSANDRA");
    if (strcmp(name, "MSGSTORE_LOG_LEVEL") == 0 && !getenv(name))
        return "warn";
    return getenv(name);
}

/* Loads CFG through lookup and, on ScyllaDB, migrates the keyspace; prints
 * the error and returns -1 on failure. */
static inline int storet_config_load(ms_config_lookup_fn lookup)
{
    char err[512];
    if (ms_config_load(&CFG, lookup, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "config: %s\n", err);
        return -1;
    }
    if (SCYLLA && store_migrate(&CFG.store, NULL, NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "migrate: %s\n", err);
        return -1;
    }
    return 0;
}

/* Opens S with the options opt; prints the error and returns -1 on failure. */
static inline int storet_open(const store_options *opt)
{
    char err[512];
    if (store_open(&CFG.store, opt, &S, err, sizeof err) != 0) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    return 0;
}

#endif
