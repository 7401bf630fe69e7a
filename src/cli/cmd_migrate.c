/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_migrate.c - `msgstore migrate`: applies the schema migrations compiled
 * into the binary to the configured backend (the SQLite file, or the
 * ScyllaDB/Cassandra keyspace, created with SCYLLA_REPLICATION).
 *
 *   msgstore migrate [--list] [--NAME=VALUE ...]
 *
 * Each migration is printed as it is applied or skipped; running it twice
 * is a no-op. Exit 0 on success, 1 when a migration failed or the recorded
 * schema differs from the binary's, 2 on bad usage.
 */
#include "cli/cli.h"
#include "core/error.h"
#include "msgstore/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void progress(const store_migration *m, bool applied, uint64_t elapsed_ms, void *ctx)
{
    (void)ctx;
    if (applied)
        printf("  applied  %s (%" PRIu64 " ms)\n", m->name, elapsed_ms);
    else
        printf("  current  %s (already applied)\n", m->name);
    fflush(stdout);
}

int cmd_migrate(int argc, char **argv)
{
    ms_config cfg;
    char *rest[64];
    int nrest = 0;
    bool list = false;
    if (argc > 64) {
        fprintf(stderr, "msgstore migrate: too many arguments\n");
        return MS_EXIT_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: msgstore migrate [--list] [--NAME=VALUE ...]\n\n"
                   "Applies the schema migrations built into this binary to the SQLite file\n"
                   "(MSGSTORE_SQLITE_PATH) or, with SCYLLA_ENABLED=true, to the keyspace\n"
                   "SCYLLA_KEYSPACE (created with SCYLLA_REPLICATION). Applied versions are\n"
                   "recorded in the schema_version table; running it again is a no-op.\n"
                   "  --list   print the embedded migrations and exit\n");
            return MS_EXIT_OK;
        }
    }
    int rc = cli_load_config(&cfg, argc, argv, rest, &nrest);
    if (rc)
        return rc;
    for (int i = 0; i < nrest; i++) {
        if (strcmp(rest[i], "--list") == 0) {
            list = true;
        } else {
            fprintf(stderr, "msgstore migrate: unexpected argument '%s'\n", rest[i]);
            return MS_EXIT_USAGE;
        }
    }
    cli_setup_logging(&cfg);
    ms_backend_kind kind = ms_config_backend(&cfg);
    size_t n = 0;
    const store_migration *m = store_migrations(kind, &n);
    if (list) {
        for (size_t i = 0; i < n; i++)
            printf("%03d  %s\n", m[i].version, m[i].name);
        return MS_EXIT_OK;
    }
    if (kind == MS_BACKEND_SCYLLA)
        printf("migrating keyspace %s (replication %s), %zu migration(s) in this binary\n",
               cfg.store.scylla_keyspace, cfg.store.scylla_replication, n);
    else
        printf("migrating SQLite file %s, %zu migration(s) in this binary\n", cfg.store.sqlite_path,
               n);
    int applied = 0;
    char err[512];
    rc = store_migrate(&cfg.store, progress, NULL, &applied, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "msgstore migrate: %s (%s)\n", err, ms_err_name(rc));
        return MS_EXIT_FAIL;
    }
    if (applied)
        printf("done: %d migration(s) applied, schema at version %d\n", applied,
               n ? m[n - 1].version : 0);
    else
        printf("done: schema already current (version %d)\n", n ? m[n - 1].version : 0);
    return MS_EXIT_OK;
}
