/* SPDX-License-Identifier: Apache-2.0 */
/* sync.c - the synchronous layer: a session on a private loop (see cql.h). */
#include "msgstore/cql.h"

#include "core/error.h"
#include "cql/status.h"

#include <stdlib.h>
#include <string.h>

struct cql_sync {
    uv_loop_t loop;
    cql_session *s;
};

typedef struct waitctx {
    bool done;
    cql_status st;
    cql_result *res;
    cql_prepared *prep;
} waitctx;

static void run_until(cql_sync *c, const bool *done)
{
    while (!*done)
        uv_run(&c->loop, UV_RUN_ONCE);
}

/*
 * The private loop runs only inside calls. Before a new request, bring its
 * clock to now (libuv caches it per iteration: after an idle spell a new
 * request's deadline would already be in the past, failing it with "timed
 * out" before it is sent) and handle what happened meanwhile (connections
 * the server closed, events).
 */
static void wake(cql_sync *c)
{
    uv_update_time(&c->loop);
    uv_run(&c->loop, UV_RUN_NOWAIT);
}

/* Every call on a handle cql_sync_connect did not give (NULL) fails cleanly instead of crashing. */
static int no_session(cql_status *st)
{
    if (st)
        cql__status_set(st, MS_ERR_INVALID, NULL, "no session (cql_sync_connect did not succeed)");
    return MS_ERR_INVALID;
}

static void on_connect(cql_session *s, const cql_status *st, void *ud)
{
    (void)s;
    waitctx *w = ud;
    w->st = *st;
    w->done = true;
}

static void on_closed(void *ud)
{
    *(bool *)ud = true;
}

static void free_sync(cql_sync *c)
{
    /* let every handle finish closing, then the loop */
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
    free(c);
}

int cql_sync_connect(const cql_options *o, cql_sync **out, cql_status *st)
{
    cql_status local;
    if (!st)
        st = &local;
    cql__status_ok(st);
    *out = NULL;
    cql_sync *c = calloc(1, sizeof(*c));
    if (!c) {
        cql__status_set(st, MS_ERR_NOMEM, NULL, "out of memory");
        return MS_ERR_NOMEM;
    }
    if (uv_loop_init(&c->loop) < 0) {
        free(c);
        cql__status_set(st, MS_ERR_IO, NULL, "cannot create an event loop");
        return MS_ERR_IO;
    }
    char err[256] = "";
    int rc = cql_session_new(&c->loop, o, &c->s, err, sizeof(err));
    if (rc < 0) {
        cql__status_set(st, rc, NULL, "%s", err[0] ? err : ms_err_str(rc));
        uv_loop_close(&c->loop);
        free(c);
        return rc;
    }
    waitctx w = {0};
    cql_session_connect(c->s, on_connect, &w);
    run_until(c, &w.done);
    *st = w.st;
    if (w.st.code < 0) {
        cql_sync_close(c);
        return w.st.code;
    }
    *out = c;
    return 0;
}

static void on_result(cql_result *res, const cql_status *st, void *ud)
{
    waitctx *w = ud;
    w->st = *st;
    w->res = res ? cql_result_keep(res) : NULL;
    w->done = true;
}

static int finish(waitctx *w, cql_result **res, cql_status *st)
{
    if (st)
        *st = w->st;
    if (res)
        *res = w->res;
    else
        cql_result_destroy(w->res);
    return w->st.code;
}

int cql_sync_execute(cql_sync *c, const cql_statement *stmt, cql_result **res, cql_status *st)
{
    if (res)
        *res = NULL;
    if (!c)
        return no_session(st);
    waitctx w = {0};
    wake(c);
    int rc = cql_session_execute(c->s, stmt, on_result, &w);
    if (rc < 0) {
        if (st)
            cql__status_set(st, rc, NULL, "invalid statement");
        return rc;
    }
    run_until(c, &w.done);
    return finish(&w, res, st);
}

int cql_sync_query(cql_sync *c, const char *query, cql_result **res, cql_status *st)
{
    cql_statement s;
    cql_statement_init(&s);
    s.query = query;
    return cql_sync_execute(c, &s, res, st);
}

static void on_prepared(cql_prepared *p, const cql_status *st, void *ud)
{
    waitctx *w = ud;
    w->st = *st;
    w->prep = p;
    w->done = true;
}

int cql_sync_prepare(cql_sync *c, const char *query, cql_prepared **out, cql_status *st)
{
    *out = NULL;
    if (!c)
        return no_session(st);
    waitctx w = {0};
    wake(c);
    int rc = cql_session_prepare(c->s, query, on_prepared, &w);
    if (rc < 0) {
        if (st)
            cql__status_set(st, rc, NULL, "invalid query");
        return rc;
    }
    run_until(c, &w.done);
    if (st)
        *st = w.st;
    *out = w.prep;
    return w.st.code;
}

int cql_sync_batch(cql_sync *c, const cql_batch_request *b, cql_status *st)
{
    if (!c)
        return no_session(st);
    waitctx w = {0};
    wake(c);
    int rc = cql_session_batch(c->s, b, on_result, &w);
    if (rc < 0) {
        if (st)
            cql__status_set(st, rc, NULL, "invalid batch");
        return rc;
    }
    run_until(c, &w.done);
    return finish(&w, NULL, st);
}

int cql_sync_pager_next(cql_sync *c, cql_pager *p, cql_result **res, cql_status *st)
{
    if (res)
        *res = NULL;
    if (!c)
        return no_session(st);
    waitctx w = {0};
    wake(c);
    int rc = cql_pager_next(p, on_result, &w);
    if (rc < 0)
        return rc;
    run_until(c, &w.done);
    return finish(&w, res, st);
}

static void on_sleep(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

void cql_sync_run_for(cql_sync *c, int64_t ms)
{
    if (!c)
        return;
    if (ms <= 0) {
        /* Two passes without waiting: the first handles what came in (a
         * connection established, an answer read) and queues what that
         * provokes; the second writes it out (connections flush in the
         * prepare phase) and takes what is already there. uv_run(ONCE) would
         * instead block until the next timer (up to the 1 s housekeeping). */
        wake(c);
        uv_run(&c->loop, UV_RUN_NOWAIT);
        return;
    }
    uv_timer_t t;
    bool done = false;
    uv_timer_init(&c->loop, &t);
    t.data = &done;
    /* from now, not from the loop's last turn (maybe long ago) */
    uv_update_time(&c->loop);
    uv_timer_start(&t, on_sleep, (uint64_t)ms, 0);
    run_until(c, &done);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&c->loop, UV_RUN_NOWAIT);
}

cql_session *cql_sync_session(cql_sync *c)
{
    return c ? c->s : NULL;
}

void cql_sync_close(cql_sync *c)
{
    if (!c)
        return;
    bool done = false;
    cql_session_close(c->s, 5000, on_closed, &done);
    run_until(c, &done);
    free_sync(c);
}

size_t cql_sync_hosts(cql_sync *c, cql_host_info *out, size_t max)
{
    return c ? cql_session_hosts(c->s, out, max) : 0;
}

size_t cql_sync_replicas(cql_sync *c, const char *keyspace, int64_t token, cql_host_info *out,
                         size_t max)
{
    return c ? cql_session_replicas(c->s, keyspace, token, out, max) : 0;
}

void cql_sync_stats(cql_sync *c, cql_session_stats *out)
{
    if (!c) {
        memset(out, 0, sizeof *out);
        return;
    }
    cql_session_stats_get(c->s, out);
}

void cql_sync_server_features(cql_sync *c, cql_server_features *out)
{
    if (!c) {
        memset(out, 0, sizeof *out);
        return;
    }
    cql_session_server_features(c->s, out);
}
