/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_copy.c - `msgstore copy --to-cluster`: the embedded store
 * (MSGSTORE_SQLITE_PATH) into the ScyllaDB/Cassandra keyspace of the SCYLLA_*
 * settings (msgstore/store_copy.h does the work), then a verify step.
 *
 *   msgstore copy --to-cluster [--from-start] [--verify-only]
 *                 [--checkpoint=FILE] [--in-flight=N] [--sample=N]
 *                 [--catch-up-margin=SECONDS] [--NAME=VALUE ...]
 *
 * Progress goes to stderr (a line that rewrites itself on a terminal, a line
 * a second otherwise), with messages/s and the ETA; the result to stdout.
 * Exit 0 when the copy verified, 1 when it failed or the verify step found a
 * difference, 2 on bad usage.
 */
#include "cli/cli.h"
#include "core/error.h"
#include "msgstore/store_copy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void show(const store_copy_progress *p, void *ctx)
{
    bool tty = *(bool *)ctx;
    char eta[32] = "-";
    if (p->eta_s >= 0)
        snprintf(eta, sizeof eta, "%d:%02d", (int)(p->eta_s / 60), (int)p->eta_s % 60);
    if (p->total)
        fprintf(stderr, "%scopy: %s %llu/%llu; messages %llu/%llu, %.0f messages/s, ETA %s%s",
                tty ? "\r\033[K" : "", p->table, (unsigned long long)p->rows,
                (unsigned long long)p->total, (unsigned long long)p->messages,
                (unsigned long long)p->messages_total, p->messages_per_s, eta, tty ? "" : "\n");
    else
        fprintf(stderr, "%scopy: %s %llu%s", tty ? "\r\033[K" : "", p->table,
                (unsigned long long)p->rows, tty ? "" : "\n");
    fflush(stderr);
}

static int number(const char *a, const char *name, long lo, long hi, long *out)
{
    char *end;
    long n = strtol(a, &end, 10);
    if (*a == '\0' || *end || n < lo || n > hi) {
        fprintf(stderr, "msgstore copy: %s: expected %ld..%ld, got '%s'\n", name, lo, hi, a);
        return -1;
    }
    *out = n;
    return 0;
}

int cmd_copy(int argc, char **argv)
{
    store_copy_options opt = {0};
    bool to_cluster = false;
    char *pass[64];
    int npass = 0;
    if (argc > 64) {
        fprintf(stderr, "msgstore copy: too many arguments\n");
        return MS_EXIT_USAGE;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        long n;
        if (i == 0) {
            pass[npass++] = argv[i];
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf(
                "usage: msgstore copy --to-cluster [--from-start] [--verify-only]\n"
                "                     [--checkpoint=FILE] [--in-flight=N] [--sample=N]\n\n"
                "Copies the SQLite store (MSGSTORE_SQLITE_PATH) into the keyspace of the\n"
                "SCYLLA_* settings (SCYLLA_CONTACT_POINTS, SCYLLA_KEYSPACE, ...; migrated\n"
                "first), with every id and timestamp kept, then verifies per-channel counts\n"
                "and a sample of messages, reactions, pins and read positions.\n"
                "A checkpoint (default MSGSTORE_SQLITE_PATH.copy-checkpoint) lets a run\n"
                "that was stopped continue; --from-start copies everything again (the\n"
                "final pass of a cut-over, docs/operations.md); --verify-only copies nothing.\n");
            return MS_EXIT_OK;
        } else if (strcmp(a, "--to-cluster") == 0) {
            to_cluster = true;
        } else if (strcmp(a, "--from-start") == 0) {
            opt.from_start = true;
        } else if (strcmp(a, "--verify-only") == 0) {
            opt.verify_only = true;
        } else if (strncmp(a, "--checkpoint=", 13) == 0 && a[13]) {
            opt.checkpoint = a + 13;
        } else if (strncmp(a, "--in-flight=", 12) == 0) {
            if (number(a + 12, "--in-flight", 1, 4096, &n))
                return MS_EXIT_USAGE;
            opt.in_flight = (int)n;
        } else if (strncmp(a, "--catch-up-margin=", 18) == 0) {
            if (number(a + 18, "--catch-up-margin (seconds)", 0, 86400, &n))
                return MS_EXIT_USAGE;
            opt.margin_set = true;
            opt.catch_up_margin_ms = (int64_t)n * 1000;
        } else if (strncmp(a, "--sample=", 9) == 0) {
            if (number(a + 9, "--sample", 1, 10000000, &n))
                return MS_EXIT_USAGE;
            opt.sample = (size_t)n;
        } else {
            pass[npass++] = argv[i];
        }
    }
    ms_config cfg;
    int rc = cli_load_config_only(&cfg, npass, pass, "copy");
    if (rc)
        return rc;
    if (!to_cluster) {
        fprintf(stderr, "msgstore copy: say where to: --to-cluster (--help)\n");
        return MS_EXIT_USAGE;
    }
    cli_setup_logging(&cfg);
    bool tty = isatty(STDERR_FILENO) == 1;
    opt.progress = show;
    opt.progress_ctx = &tty;
    store_copy_report rep;
    char err[1024] = "";
    rc = store_copy_to_cluster(&cfg.store, &opt, &rep, err, sizeof err);
    if (tty)
        fputc('\n', stderr);
    if (rc && rc != MS_ERR_CONFLICT) {
        fprintf(stderr, "msgstore copy: %s (%s)\n", err, ms_err_name(rc));
        return MS_EXIT_FAIL;
    }
    char how[96] = "";
    if (rep.resumed)
        snprintf(how, sizeof how, "resumed from the checkpoint, ");
    else if (rep.caught_up)
        snprintf(how, sizeof how, "caught up with the changes since %lld (Unix ms), ",
                 (long long)rep.since_ms);
    printf("copy %s -> %s/%s: %s%llu rows written (%llu messages) in %.1f s (%.0f messages/s)\n",
           cfg.store.sqlite_path, cfg.store.scylla_contact_points, cfg.store.scylla_keyspace, how,
           (unsigned long long)rep.rows, (unsigned long long)rep.messages, rep.seconds,
           rep.seconds > 0 ? (double)rep.messages / rep.seconds : 0.0);
    printf("verify: %llu channels (message counts, last message), %llu sampled messages "
           "(fields, edits, reaction counts), every pin and read position: %s\n",
           (unsigned long long)rep.channels, (unsigned long long)rep.sampled,
           rep.mismatches ? "DIFFERENCES" : "ok");
    if (rc) {
        fprintf(stderr, "msgstore copy: %s\n", err);
        return MS_EXIT_FAIL;
    }
    return MS_EXIT_OK;
}
