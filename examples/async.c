/* SPDX-License-Identifier: Apache-2.0 */
/*
 * async.c - the asynchronous API on a libuv loop the program owns: connect,
 * run ten queries at once, close, and let uv_run return when nothing is
 * left. Every callback runs on this loop's thread.
 */
#include "example.h"

#include <uv.h>

typedef struct {
    cql_session *session;
    int pending; /* queries not answered yet */
    int failed;
} app;

static void on_closed(void *ud)
{
    (void)ud;
    printf("session closed\n");
}

static void on_row(cql_result *res, const cql_status *st, void *ud)
{
    app *a = ud;
    if (st->code != 0) {
        fprintf(stderr, "query: %s\n", st->message);
        a->failed++;
    } else if (cql_result_next_row(res) == 0) {
        int64_t now;
        if (cql_row_get_timestamp(res, 0, &now) == 0)
            printf("answer from %s: now() = %lld ms\n", st->host, (long long)now);
    }
    /* res is lent to the callback: freed when it returns */
    if (--a->pending == 0)
        cql_session_close(a->session, 1000, on_closed, a);
}

static void on_connected(cql_session *s, const cql_status *st, void *ud)
{
    app *a = ud;
    if (st->code != 0) {
        fprintf(stderr, "connect: %s\n", st->message);
        a->failed++;
        cql_session_close(s, 0, on_closed, a);
        return;
    }
    for (int i = 0; i < 10; i++) {
        cql_statement q;
        cql_statement_init(&q);
        q.query = "SELECT toTimestamp(now()) FROM system.local";
        q.idempotent = true;
        if (cql_session_execute(s, &q, on_row, a) == 0)
            a->pending++;
    }
    if (a->pending == 0)
        cql_session_close(s, 0, on_closed, a);
}

int main(int argc, char **argv)
{
    uv_loop_t loop;
    uv_loop_init(&loop);

    cql_options o;
    example_options(&o, argc, argv);
    o.name = "example";
    app a = {0};
    char err[256];
    if (cql_session_new(&loop, &o, &a.session, err, sizeof err) != 0) {
        fprintf(stderr, "session: %s\n", err);
        return 1;
    }
    cql_session_connect(a.session, on_connected, &a);
    uv_run(&loop, UV_RUN_DEFAULT); /* returns once the session closed */
    uv_loop_close(&loop);
    return a.failed ? 1 : 0;
}
