/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_serve.c - `msgstore serve`: open the store, serve the HTTP API until
 * SIGTERM or SIGINT, then stop gracefully: stop accepting, let requests in
 * flight finish (MSGSTORE_SHUTDOWN_TIMEOUT), flush and close the store.
 */
#include "cli/cli.h"
#include "core/error.h"
#include "core/log.h"
#include "server/realtime_api.h"
#include "search/search.h"
#include "server/server.h"

#include <msgstore/store.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void serve_usage(FILE *out, ms_profile profile)
{
    fprintf(out,
            "usage: msgstore serve [--NAME=VALUE ...]\n\n"
            "Serves the HTTP/JSON API (docs/api.md) on MSGSTORE_BIND:MSGSTORE_PORT until SIGTERM\n"
            "or SIGINT, then shuts down gracefully. Exit codes: 0 after a clean stop, 1 when the\n"
            "store or the listener cannot start, 2 for a bad setting.\n\n");
    ms_config_print_help(out, profile);
}

/* A second SIGTERM/SIGINT during the graceful stop ends the process at once.
 * Nothing acknowledged is lost: a write is answered only after it committed. */
static void *second_signal(void *arg)
{
    int sig = 0;
    sigwait((sigset_t *)arg, &sig);
    static const char msg[] = "msgstore serve: second signal, exiting without waiting\n";
    ssize_t rc = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)rc;
    _exit(MS_EXIT_FAIL);
}

int cmd_serve(int argc, char **argv)
{
    ms_config cfg;
    char *rest[64];
    int nrest = 0;
    if (argc > 64) {
        fprintf(stderr, "msgstore serve: too many arguments\n");
        return MS_EXIT_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            ms_profile p = MS_PROFILE_DEVELOPMENT;
            char err[256];
            if (ms_config_load(&cfg, NULL, NULL, err, sizeof err) == 0)
                p = cfg.profile;
            serve_usage(stdout, p);
            return MS_EXIT_OK;
        }
    }
    int rc = cli_load_config(&cfg, argc, argv, rest, &nrest);
    if (rc)
        return rc;
    if (nrest) {
        fprintf(stderr, "msgstore serve: unexpected argument '%s' (settings are --NAME=VALUE)\n",
                rest[0]);
        return MS_EXIT_USAGE;
    }
    cli_setup_logging(&cfg);

    /* Every thread started from here on inherits the mask: only this one
     * receives the stop signals, in sigwait() below. */
    static sigset_t stop_signals; /* read by the second_signal thread */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[512];
    store *st = NULL;
    store_options sopt = {.no_coalesce = !cfg.read_coalescing};
    rc = store_open(&cfg.store, &sopt, &st, err, sizeof err);
    if (rc) {
        fprintf(stderr, "msgstore serve: cannot open the %s store: %s\n",
                ms_config_backend(&cfg) == MS_BACKEND_SCYLLA ? "ScyllaDB/Cassandra" : "SQLite",
                err[0] ? err : ms_err_str(rc));
        return rc == MS_ERR_INVALID ? MS_EXIT_USAGE : MS_EXIT_FAIL;
    }
    srv *server = NULL;
    rc = srv_new(&cfg, st, &server, err, sizeof err);
    if (rc) {
        fprintf(stderr, "msgstore serve: %s\n", err[0] ? err : ms_err_str(rc));
        store_close(st);
        return rc == MS_ERR_INVALID ? MS_EXIT_USAGE : MS_EXIT_FAIL;
    }
    srv_rt *rt = NULL; /* WebSocket/SSE, commit hook, Redis bridge (docs/realtime.md) */
    rc = srv_rt_install(server, &cfg, &rt, err, sizeof err);
    if (rc) {
        fprintf(stderr, "msgstore serve: %s\n", err[0] ? err : ms_err_str(rc));
        srv_free(server);
        store_close(st);
        return rc == MS_ERR_INVALID ? MS_EXIT_USAGE : MS_EXIT_FAIL;
    }
    search_index *search = NULL; /* ScyllaDB: the PostgreSQL search index (src/search/) */
    if (ms_config_backend(&cfg) == MS_BACKEND_SCYLLA && cfg.store.search_pg_url[0]) {
        rc = search_index_open(&cfg, st, &search, err, sizeof err);
        if (rc) {
            fprintf(stderr, "msgstore serve: %s\n", err[0] ? err : ms_err_str(rc));
            srv_free(server);
            srv_rt_free(rt);
            store_close(st);
            return rc == MS_ERR_INVALID ? MS_EXIT_USAGE : MS_EXIT_FAIL;
        }
        srv_set_health_section(server, "search", search_index_health, search);
    }
    rc = srv_start(server, err, sizeof err);
    if (rc) {
        fprintf(stderr, "msgstore serve: %s\n", err[0] ? err : ms_err_str(rc));
        srv_free(server);
        srv_rt_free(rt);
        search_index_close(search);
        store_close(st);
        return rc == MS_ERR_INVALID ? MS_EXIT_USAGE : MS_EXIT_FAIL;
    }
    printf("msgstore %s serving on %s://%s:%d (%s store%s%s)\n", MSGSTORE_VERSION,
           cfg.tls_cert[0] ? "https" : "http", cfg.bind, srv_port(server), store_backend_name(st),
           ms_config_backend(&cfg) == MS_BACKEND_SQLITE ? " " : "",
           ms_config_backend(&cfg) == MS_BACKEND_SQLITE ? cfg.store.sqlite_path : "");
    fflush(stdout);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    MS_INFO("serve", "%s: stopping (grace %lld ms; a second signal exits at once)",
            sig == SIGINT ? "SIGINT" : "SIGTERM", (long long)cfg.store.shutdown_timeout_ms);
    pthread_t impatient;
    if (pthread_create(&impatient, NULL, second_signal, &stop_signals) == 0)
        pthread_detach(impatient);
    int cut = srv_stop(server);
    srv_rt_free(rt);
    search_index_close(search); /* no request runs any more: no search in flight */
    store_close(st);            /* commits what the writer still holds */
    srv_free(server);
    if (cut)
        MS_WARN("serve", "stopped; %d request(s) were cut at the shutdown deadline", cut);
    else
        MS_INFO("serve", "stopped cleanly");
    return MS_EXIT_OK;
}
