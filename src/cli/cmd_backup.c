/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_backup.c - `msgstore backup` and `msgstore restore`: online backup of
 * the SQLite store to one file, and putting such a file back
 * (msgstore/store_backup.h does the work).
 *
 *   msgstore backup --to FILE [--force] [--step-pages=N] [--NAME=VALUE ...]
 *   msgstore restore --from FILE [--force] [--NAME=VALUE ...]
 *
 * The store is MSGSTORE_SQLITE_PATH. Progress goes to stderr: a bar on a
 * terminal, a line per percent otherwise; the result (tables, rows, size,
 * rate) to stdout. Exit 0 on success, 1 when it failed (nothing changed),
 * 2 on bad usage.
 */
#include "cli/cli.h"
#include "core/error.h"
#include "msgstore/store.h"
#include "msgstore/store_backup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *verb;
    bool tty;
    int last; /* last percent shown */
} progress_state;

static void show_progress(uint64_t done, uint64_t total, void *ctx)
{
    progress_state *p = ctx;
    int pct = total ? (int)(done * 100 / total) : 100;
    if (pct == p->last)
        return;
    p->last = pct;
    if (p->tty) {
        char bar[41];
        int fill = pct * 40 / 100;
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, ' ', (size_t)(40 - fill));
        bar[40] = '\0';
        fprintf(stderr, "\r%s [%s] %3d%% (%llu/%llu pages)", p->verb, bar, pct,
                (unsigned long long)done, (unsigned long long)total);
        if (pct == 100)
            fputc('\n', stderr);
    } else {
        fprintf(stderr, "%s: %d%% (%llu/%llu pages)\n", p->verb, pct, (unsigned long long)done,
                (unsigned long long)total);
    }
    fflush(stderr);
}

static void print_report(const char *what, const char *path, const store_backup_report *r)
{
    double mb = (double)r->bytes / 1e6;
    printf("%s %s: schema version %d, %llu messages, %zu tables checked (integrity_check ok, "
           "row counts equal), %.1f MB in %.2f s (%.1f MB/s)\n",
           what, path, r->schema_version, (unsigned long long)r->messages, r->ntables, mb,
           r->seconds, r->seconds > 0 ? mb / r->seconds : 0.0);
    for (size_t i = 0; i < r->ntables; i++)
        printf("  %-32s %lld\n", r->tables[i].name, (long long)r->tables[i].rows);
}

static int run(int argc, char **argv, bool restore)
{
    const char *cmd = restore ? "restore" : "backup";
    const char *flag = restore ? "--from" : "--to";
    size_t flen = strlen(flag);
    const char *file = NULL;
    store_backup_options opt = {.pause_ms = 2};
    /* Our own flags first: --to=FILE would otherwise read as a setting named "to". */
    char *pass[64];
    int npass = 0;
    if (argc > 64) {
        fprintf(stderr, "msgstore %s: too many arguments\n", cmd);
        return MS_EXIT_USAGE;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (i > 0 && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            if (restore)
                printf("usage: msgstore restore --from FILE [--force] [--NAME=VALUE ...]\n\n"
                       "Puts a backup made by `msgstore backup` back as the SQLite store\n"
                       "(MSGSTORE_SQLITE_PATH). Checks the backup first (a msgstore store of this\n"
                       "binary's schema version, integrity_check). Refuses a store a running\n"
                       "msgstore holds, and an existing store without --force.\n");
            else
                printf("usage: msgstore backup --to FILE [--force] [--step-pages=N] "
                       "[--NAME=VALUE ...]\n\n"
                       "Copies the SQLite store (MSGSTORE_SQLITE_PATH) to FILE while msgstore\n"
                       "serve may run on it: the snapshot of the moment it starts, copied N pages\n"
                       "(default 256) per step, checked (integrity_check, rows of every table)\n"
                       "before it is renamed to FILE. Refuses an existing FILE without --force.\n");
            return MS_EXIT_OK;
        }
        if (i > 0 && strcmp(a, flag) == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "msgstore %s: %s needs a file\n", cmd, flag);
                return MS_EXIT_USAGE;
            }
            file = argv[++i];
        } else if (i > 0 && strncmp(a, flag, flen) == 0 && a[flen] == '=') {
            file = a + flen + 1;
        } else if (i > 0 && strcmp(a, "--force") == 0) {
            opt.force = true;
        } else if (i > 0 && !restore && strncmp(a, "--step-pages=", 13) == 0) {
            char *end;
            long n = strtol(a + 13, &end, 10);
            if (*end || n < 1 || n > 1000000) {
                fprintf(stderr, "msgstore backup: --step-pages: expected 1..1000000, got '%s'\n",
                        a + 13);
                return MS_EXIT_USAGE;
            }
            opt.step_pages = (int)n;
        } else {
            pass[npass++] = argv[i];
        }
    }
    ms_config cfg;
    int rc = cli_load_config_only(&cfg, npass, pass, cmd);
    if (rc)
        return rc;
    if (!file || !*file) {
        fprintf(stderr, "msgstore %s: %s FILE is required (--help)\n", cmd, flag);
        return MS_EXIT_USAGE;
    }
    if (ms_config_backend(&cfg) != MS_BACKEND_SQLITE) {
        fprintf(stderr,
                "msgstore %s: SCYLLA_ENABLED=true: %s is for the embedded SQLite store; back a "
                "cluster up with its own tools (nodetool snapshot)\n",
                cmd, cmd);
        return MS_EXIT_USAGE;
    }
    progress_state ps = {.verb = cmd, .tty = isatty(STDERR_FILENO) == 1, .last = -1};
    opt.progress = show_progress;
    opt.progress_ctx = &ps;
    store_backup_report rep;
    char err[1024] = "";
    if (restore)
        rc = store_sqlite_restore(file, cfg.store.sqlite_path, &opt, &rep, err, sizeof err);
    else
        rc = store_sqlite_backup(cfg.store.sqlite_path, file, &opt, &rep, err, sizeof err);
    if (ps.tty && ps.last >= 0 && ps.last < 100)
        fputc('\n', stderr);
    if (rc) {
        fprintf(stderr, "msgstore %s: %s (%s); nothing was changed\n", cmd, err, ms_err_name(rc));
        return MS_EXIT_FAIL;
    }
    print_report(restore ? "restored" : "backed up", restore ? cfg.store.sqlite_path : file, &rep);
    return MS_EXIT_OK;
}

int cmd_backup(int argc, char **argv)
{
    return run(argc, argv, false);
}

int cmd_restore(int argc, char **argv)
{
    return run(argc, argv, true);
}
