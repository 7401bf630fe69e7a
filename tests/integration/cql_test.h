/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the CQL client's integration and cluster tests. */
#ifndef MS_TEST_CQL_TEST_H
#define MS_TEST_CQL_TEST_H

#include "msgstore/cql.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* "host:port[,host:port]" from the fixture's variable, or the default. */
static inline const char *cqlt_env(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && v[0] ? v : dflt;
}

/* Options for a test session against the contact points in variable env. */
static inline void cqlt_options(cql_options *o, const char *env, const char *dflt)
{
    cql_options_init(o);
    o->contact_points = cqlt_env(env, dflt);
    o->local_dc = NULL;
    o->request_timeout_ms = 20000;
    o->connect_timeout_ms = 10000;
    o->default_consistency = CQL_CONSISTENCY_ONE;
}

/* Runs a query that must succeed; prints the status on failure. */
#define CQLT_OK(c, q)                                                                              \
    do {                                                                                           \
        cql_status st_;                                                                            \
        int rc_ = cql_sync_query((c), (q), NULL, &st_);                                            \
        if (rc_ != 0)                                                                              \
            fprintf(stderr, "%s: %s\n", (q), st_.message);                                         \
        assert_int_equal(rc_, 0);                                                                  \
    } while (0)

/* A keyspace name unique to this process. */
static inline void cqlt_keyspace(char *out, size_t n, const char *prefix)
{
    snprintf(out, n, "%s_%ld", prefix, (long)getpid());
}

/* Runs a shell command from the source tree (scripts/...); returns its exit status. */
static inline int cqlt_script(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int cqlt_script(const char *fmt, ...)
{
    char cmd[1024], full[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    snprintf(full, sizeof(full), "cd '%s' && %s", cqlt_env("MSGSTORE_SOURCE_DIR", "."), cmd);
    int rc = system(full);
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/*
 * The state directory (MSGSTORE_CASSANDRA_HOME) of the running node whose
 * data directory ends in /<node> (e.g. "cluster/node3"), found in the process
 * table, so tests can kill and restart a node whichever checkout started it.
 * Returns 0 or -1.
 */
static inline int cqlt_node_home(const char *node, char *home, size_t n)
{
    char suffix[128];
    snprintf(suffix, sizeof(suffix), "/%s", node);
    FILE *f = popen("for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null | tr '\\0' '\\n'; "
                    "done | sed -n 's/^-Dcassandra.storagedir=//p'",
                    "r");
    if (!f)
        return -1;
    char line[1024];
    int rc = -1;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        size_t l = strlen(line), sl = strlen(suffix);
        if (l > sl && strcmp(line + l - sl, suffix) == 0) {
            snprintf(home, n, "%.*s", (int)(l - sl), line);
            rc = 0;
        }
    }
    pclose(f);
    return rc;
}

/* Runs a command and returns its first output line (without the newline) in out. */
static inline int cqlt_capture(const char *cmd, char *out, size_t n)
{
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    out[0] = '\0';
    if (fgets(out, (int)n, f))
        out[strcspn(out, "\n")] = '\0';
    while (fgetc(f) != EOF) {
    }
    return pclose(f) == 0 ? 0 : -1;
}

static inline void cqlt_on_timer(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Runs the loop for ms milliseconds (a timer ends it). */
static inline void cqlt_run_for(uv_loop_t *loop, int64_t ms)
{
    uv_timer_t t;
    bool done = false;
    uv_timer_init(loop, &t);
    t.data = &done;
    uv_timer_start(&t, cqlt_on_timer, (uint64_t)ms, 0);
    while (!done)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* Runs the loop until cond holds, at most max_ms milliseconds (a bound that a loaded
 * machine under sanitizers meets, not a speed requirement); the caller asserts cond. */
#define CQLT_RUN_UNTIL(loop, cond, max_ms)                                                         \
    do {                                                                                           \
        for (int64_t cqlt_waited_ = 0; !(cond) && cqlt_waited_ < (max_ms); cqlt_waited_ += 50)     \
            cqlt_run_for((loop), 50);                                                              \
    } while (0)

/* A child process run by cqlt_sh. */
typedef struct cqlt_proc {
    uv_process_t p;
    bool done;
    int64_t status;
} cqlt_proc;

static inline void cqlt_on_child_exit(uv_process_t *p, int64_t status, int sig)
{
    (void)sig;
    cqlt_proc *x = p->data;
    x->done = true;
    x->status = status;
    uv_close((uv_handle_t *)p, NULL);
}

/*
 * Runs /bin/sh -c cmd while the loop (and whatever load it carries) keeps
 * going; the child's stdout goes to out_fd, its stderr to 2, stdin is closed.
 * Returns the exit status.
 */
static inline int cqlt_sh(uv_loop_t *loop, char *cmd, int out_fd)
{
    char sh[] = "/bin/sh", dash_c[] = "-c";
    char *args[] = {sh, dash_c, cmd, NULL};
    uv_process_options_t po;
    memset(&po, 0, sizeof(po));
    po.file = sh;
    po.args = args;
    po.exit_cb = cqlt_on_child_exit;
    uv_stdio_container_t io[3] = {
        {UV_IGNORE, {0}}, {UV_INHERIT_FD, {.fd = out_fd}}, {UV_INHERIT_FD, {.fd = 2}}};
    po.stdio = io;
    po.stdio_count = 3;
    cqlt_proc x = {0};
    x.p.data = &x;
    assert_int_equal(uv_spawn(loop, &x.p, &po), 0);
    while (!x.done)
        uv_run(loop, UV_RUN_ONCE);
    uv_run(loop, UV_RUN_NOWAIT);
    return (int)x.status;
}

static inline void cqlt_on_connect(cql_session *s, const cql_status *st, void *ud)
{
    (void)s;
    *(int *)ud = st->code == 0 ? 1 : -1;
}

/*
 * Creates a session with o on loop and turns the loop until it connected: 1 (*out is the
 * session), -1 (the connect failed; *out still needs closing), 0 (cql_session_new refused).
 */
static inline int cqlt_session_up(uv_loop_t *loop, const cql_options *o, cql_session **out)
{
    if (cql_session_new(loop, o, out, NULL, 0) != 0)
        return 0;
    int connected = 0;
    cql_session_connect(*out, cqlt_on_connect, &connected);
    while (!connected)
        uv_run(loop, UV_RUN_ONCE);
    return connected;
}

/* A cql_session_close callback: sets the bool at ud. */
static inline void cqlt_on_closed(void *ud)
{
    *(bool *)ud = true;
}

#endif
