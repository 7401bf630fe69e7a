/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scylla_cql.c - the ScyllaDB backend's statements: their table (kind and
 * text, scylla_internal.h), preparing, running one statement or a
 * conditional batch for an operation, and reading columns back.
 */
#include "scylla_internal.h"

#if defined(MSGSTORE_HAVE_CQL_SESSION)

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

/* Each statement's name, kind, text ("@." stands for the keyspace) and values. */
const sc_stmt_def sc_stmt[SC_NSTMT] = {
#define SC_ROW(name, k, cql, params) {#name, k, cql, SC_NPARAMS(params), SC_LETTERS(params)},
    SC_STATEMENTS(SC_ROW)
#undef SC_ROW
};

/* ------------------------------------------------------------------ statements */

int sc_fail(store_op *op, const cql_status *st, const char *what)
{
    int code = st->code ? st->code : MS_ERR_INTERNAL;
    return store__op_fail(op, code, "%s: %s", what,
                          st->message[0] ? st->message : ms_err_str(code));
}

cql_values *sc_vals(sc_conn *c)
{
    cql_values_reset(&c->v);
    return &c->v;
}

int sc_check_values(store_op *op, sc_stmt_id id, const cql_values *v, const char *what)
{
    if (cql_values_error(v))
        return store__op_fail(op, MS_ERR_NOMEM, "%s: cannot bind the values", what);
    if (v->count != sc_stmt[id].nparams)
        return store__op_fail(op, MS_ERR_INTERNAL, "%s: %u values for the %d markers of %s", what,
                              (unsigned)v->count, sc_stmt[id].nparams, sc_stmt[id].name);
    return 0;
}

/*
 * Whether a value of type letter t (SC_LETTER_*), as its binder encodes it, is
 * what a marker of CQL type ty takes: the same bytes on the wire. A blob
 * marker takes any bytes (the schema has no blob column; a server that types
 * no marker, as the simulated ScyllaDB of tests/scylla_sim, says blob).
 */
static bool letter_fits(char t, const cql_type *ty, ms_id_format idf)
{
    if (!ty)
        return false;
    if (ty->id == CQL_TYPE_BLOB)
        return true;
    switch (t) {
    case 'x':
        return ty->id == (idf == MS_ID_UUID ? CQL_TYPE_UUID : CQL_TYPE_BIGINT);
    case 'i':
    case 'I':
        return ty->id == CQL_TYPE_INT;
    case 'b':
    case 'B': /* counter deltas (count + ?) are bigints too */
        return ty->id == CQL_TYPE_BIGINT || ty->id == CQL_TYPE_COUNTER;
    case 't':
        return ty->id == CQL_TYPE_TINYINT;
    case 's':
    case 'S':
        return ty->id == CQL_TYPE_VARCHAR;
    case 'l':
    case 'L':
        return ty->id == CQL_TYPE_LIST && ty->n == 1 && ty->sub && ty->sub[0] &&
               ty->sub[0]->id == (t == 'l' ? CQL_TYPE_INT : CQL_TYPE_BIGINT);
    default:
        return false;
    }
}

int sc_check_types(sc_stmt_id id, const cql_metadata *params, ms_id_format idf, char *err,
                   size_t errlen)
{
    const sc_stmt_def *d = &sc_stmt[id];
    int n = params ? params->column_count : 0;
    if (n != d->nparams || (n > 0 && !params->columns)) {
        snprintf(err, errlen, "statement %s: %d values in its table entry, %d markers prepared",
                 d->name, d->nparams, n);
        return MS_ERR_INTERNAL;
    }
    for (int i = 0; i < n; i++) {
        const cql_column *col = &params->columns[i];
        if (!letter_fits(d->types[i], col->type, idf)) {
            char want[64] = "unknown";
            if (col->type)
                cql_type_format(col->type, want, sizeof want);
            snprintf(err, errlen,
                     "statement %s: value %d (%.*s) has type letter '%c' in its table entry, "
                     "the schema wants %s",
                     d->name, i + 1, (int)col->name.len, col->name.ptr ? col->name.ptr : "",
                     d->types[i], want);
            return MS_ERR_INTERNAL;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ requests */

/*
 * Every request goes through sc_exec / sc_exec_batch / exec_prepare. On a
 * loop (c->task: the operation's coroutine) they submit the request to the
 * loop's session and yield; the request's callback resumes the coroutine.
 * On a blocking connection (c->db: the counter repair's thread) they wait
 * in cql_sync.
 */

static void on_result(cql_result *res, const cql_status *st, void *ud)
{
    sc_task *t = ud;
    t->st = *st;
    t->res = res ? cql_result_keep(res) : NULL;
    t->ready = true;
    sc_task_resume(t);
}

static void on_prepared(cql_prepared *p, const cql_status *st, void *ud)
{
    sc_task *t = ud;
    t->st = *st;
    t->prep = p;
    t->ready = true;
    sc_task_resume(t);
}

/* Yields until the request submitted by t completes (rc: what the submit returned). */
static int wait_task(sc_task *t, int rc, cql_status *st)
{
    if (rc < 0) {
        memset(st, 0, sizeof *st);
        st->code = rc;
        snprintf(st->message, sizeof st->message, "the request was refused: %s", ms_err_str(rc));
        return rc;
    }
    while (!t->ready)
        ms_coro_yield(t->co);
    *st = t->st;
    return st->code;
}

static int exec_prepare(sc_conn *c, const char *query, cql_prepared **out, cql_status *st)
{
    *out = NULL;
    if (c->db)
        return cql_sync_prepare(c->db, query, out, st) != 0 ? (st->code ? st->code : -1) : 0;
    sc_task *t = c->task;
    t->ready = false;
    t->prep = NULL;
    int rc = wait_task(
        t, c->lp->sess ? cql_session_prepare(c->lp->sess, query, on_prepared, t) : MS_ERR_SHUTDOWN,
        st);
    *out = t->prep;
    t->prep = NULL;
    if (rc == 0 && !*out)
        rc = st->code = MS_ERR_INTERNAL;
    return rc;
}

/* The task of c, ready to wait for one answer. */
static sc_task *task_arm(sc_conn *c)
{
    sc_task *t = c->task;
    t->ready = false;
    t->res = NULL;
    return t;
}

/* The result the answer left in t (NULL: none), now the caller's. */
static cql_result *task_take(sc_task *t)
{
    cql_result *r = t->res;
    t->res = NULL;
    return r;
}

/* Gives r to the caller through *res when it wants one and rc is 0; frees it otherwise. */
static int hand_over(int rc, cql_result *r, cql_result **res)
{
    if (rc != 0 || !res) {
        cql_result_destroy(r);
        r = NULL;
    }
    if (res)
        *res = r;
    return rc;
}

int sc_exec(sc_conn *c, const cql_statement *s, cql_result **res, cql_status *st)
{
    cql_result *r = NULL;
    int rc;
    if (c->db) {
        rc = cql_sync_execute(c->db, s, &r, st);
        if (rc == 0)
            rc = st->code;
    } else {
        sc_task *t = task_arm(c);
        rc = wait_task(
            t, c->lp->sess ? cql_session_execute(c->lp->sess, s, on_result, t) : MS_ERR_SHUTDOWN,
            st);
        r = task_take(t);
    }
    return hand_over(rc, r, res);
}

typedef struct sc_wait {
    bool done;
    cql_status st;
    cql_result *res;
} sc_wait;

static void on_batch(cql_result *res, const cql_status *st, void *ud)
{
    sc_wait *w = ud;
    w->st = *st;
    w->res = res ? cql_result_keep(res) : NULL;
    w->done = true;
}

int sc_exec_batch(sc_conn *c, const cql_batch_request *br, cql_result **res, cql_status *st)
{
    cql_result *r = NULL;
    int rc;
    if (c->db) {
        sc_wait w = {0};
        rc = cql_session_batch(cql_sync_session(c->db), br, on_batch, &w);
        if (rc == 0) {
            while (!w.done)
                cql_sync_run_for(c->db, 1);
            *st = w.st;
            rc = st->code;
            r = w.res;
        } else {
            memset(st, 0, sizeof *st);
            st->code = rc;
            snprintf(st->message, sizeof st->message, "the batch was refused");
        }
    } else {
        sc_task *t = task_arm(c);
        rc = wait_task(
            t, c->lp->sess ? cql_session_batch(c->lp->sess, br, on_result, t) : MS_ERR_SHUTDOWN,
            st);
        r = task_take(t);
    }
    return hand_over(rc, r, res);
}

static void on_sleep_closed(uv_handle_t *h)
{
    free(h);
}

static void on_sleep(uv_timer_t *tm)
{
    sc_task *t = tm->data;
    uv_close((uv_handle_t *)tm, on_sleep_closed);
    t->ready = true;
    sc_task_resume(t);
}

void sc_sleep(sc_conn *c, int64_t ms)
{
    if (c->db || !c->task) {
        struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        return;
    }
    uv_timer_t *tm = malloc(sizeof *tm);
    if (!tm || uv_timer_init(c->lp->loop, tm) != 0) {
        free(tm);
        return;
    }
    sc_task *t = c->task;
    tm->data = t;
    t->ready = false;
    uv_timer_start(tm, on_sleep, (uint64_t)ms, 0);
    while (!t->ready)
        ms_coro_yield(t->co);
}

cql_session *sc_session(sc_conn *c)
{
    return c->db ? cql_sync_session(c->db) : c->lp->sess;
}

/* Prepares statement id on c's session once. */
int sc_prepare(sc_conn *c, store_op *op, sc_stmt_id id, const char *what)
{
    if (c->ps[id])
        return 0;
    cql_status st;
    cql_prepared *p = NULL;
    if (exec_prepare(c, c->b->sql[id], &p, &st) != 0) {
        cql_prepared_release(p);
        return sc_fail(op, &st, what);
    }
    char err[256];
    if (sc_check_types(id, cql_prepared_params(p), sc_idf(c), err, sizeof err) != 0) {
        cql_prepared_release(p);
        MS_ERROR("store", "scylla: %s", err);
        return store__op_fail(op, MS_ERR_INTERNAL, "%s: %s", what, err);
    }
    if (c->ps[id]) /* another operation of this session prepared it meanwhile */
        cql_prepared_release(p);
    else
        c->ps[id] = p;
    return 0;
}

bool sc_take_fault(sc_conn *c, store_fault f)
{
    _Atomic int *left = &c->b->faults[f];
    int v = atomic_load(left);
    while (v > 0)
        if (atomic_compare_exchange_weak(left, &v, v - 1))
            return true;
    return false;
}

/* Takes one injected fault that applies to statement id, if any is left (0: none). */
static int take_fault(sc_conn *c, sc_stmt_id id)
{
    static const store_fault counter[] = {STORE_FAULT_COUNTER_LOST, STORE_FAULT_COUNTER_APPLIED};
    static const store_fault lwt[] = {STORE_FAULT_LWT_APPLIED};
    const store_fault *which = NULL;
    size_t n = 0;
    if (c->repair)
        return 0;
    if (sc_stmt[id].kind == K_C) {
        which = counter;
        n = 2;
    } else if (id == SC_REACT_ADD || id == SC_REACT_DEL) {
        which = lwt;
        n = 1;
    }
    for (size_t i = 0; i < n; i++) {
        _Atomic int *left = &c->b->faults[which[i]];
        int v = atomic_load(left);
        while (v > 0)
            if (atomic_compare_exchange_weak(left, &v, v - 1))
                return (int)which[i];
    }
    return 0;
}

/*
 * Runs statement id with the values in c->v. *res (may be NULL) receives the
 * result, to free with cql_result_destroy. Fails op on error.
 */
int sc_run(sc_conn *c, store_op *op, sc_stmt_id id, const char *what, cql_result **res)
{
    return sc_run_page(c, op, id, what, 0, NULL, res);
}

int sc_run_pages(sc_conn *c, store_op *op, sc_stmt_id id, const char *what, int32_t page_rows,
                 int (*each)(void *ud, cql_result *page), void *ud)
{
    cql_result *prev = NULL;
    for (;;) {
        cql_bytes state = prev ? cql_result_paging_state(prev) : (cql_bytes){NULL, -1};
        cql_result *r = NULL;
        int rc = sc_run_page(c, op, id, what, page_rows, prev ? &state : NULL, &r);
        cql_result_destroy(prev); /* the paging state was copied with the request */
        prev = NULL;
        if (rc)
            return op->status;
        if (each(ud, r)) {
            cql_result_destroy(r);
            return op->status ? op->status : MS_ERR_INTERNAL;
        }
        if (!cql_result_has_more_pages(r)) {
            cql_result_destroy(r);
            return 0;
        }
        prev = r;
    }
}

int sc_run_page(sc_conn *c, store_op *op, sc_stmt_id id, const char *what, int32_t page_rows,
                const cql_bytes *state, cql_result **res)
{
    const store_config *cfg = c->b->cfg;
    cql_status st;
    if (res)
        *res = NULL;
    if (sc_check_values(op, id, &c->v, what))
        return op->status;
    if (sc_prepare(c, op, id, what))
        return op->status;
    cql_statement s;
    cql_statement_init(&s);
    s.prepared = c->ps[id];
    s.values = &c->v;
    s.page_size = page_rows;
    if (state && state->ptr && state->len >= 0)
        s.paging_state = *state;
    int kind = sc_stmt[id].kind;
    s.idempotent = kind == K_R || kind == K_W || kind == K_S || kind == K_A;
    s.no_speculative = kind != K_R; /* SCYLLA_SPECULATIVE_DELAY: reads only */
    switch (kind) {
    case K_R:
        s.consistency = (int)cfg->scylla_read_consistency;
        break;
    case K_S: /* a serial read completes any transaction left in progress on the partition */
        s.consistency = (int)cfg->scylla_serial_consistency;
        break;
    case K_A: /* every replica: a counter update applied by one replica only is seen */
        s.consistency = CQL_CONSISTENCY_ALL;
        s.timeout_ms = 6 * cfg->scylla_request_timeout_ms;
        break;
    default:
        s.consistency = (int)cfg->scylla_write_consistency;
        break;
    }
    if (kind == K_L)
        s.serial_consistency = (int)cfg->scylla_serial_consistency;
    int fault = take_fault(c, id);
    if (fault == STORE_FAULT_COUNTER_LOST)
        return store__op_fail(op, MS_ERR_TIMEOUT, "%s: timed out (injected fault)", what);
    c->queries++;
    cql_result *r = NULL;
    if (sc_exec(c, &s, &r, &st) != 0)
        return sc_fail(op, &st, what);
    if (fault) {
        cql_result_destroy(r);
        return store__op_fail(op, MS_ERR_TIMEOUT, "%s: timed out (injected fault, applied)", what);
    }
    if (res)
        *res = r;
    else
        cql_result_destroy(r);
    return 0;
}

void sc_bind_id_as(ms_id_format f, cql_values *v, ms_xid id)
{
    if (f == MS_ID_UUID) {
        uint8_t b[16];
        ms_xid_to_bytes(id, b);
        cql_values_add_uuid(v, b);
    } else {
        cql_values_add_bigint(v, (int64_t)id.lo);
    }
}

ms_xid sc_col_id(cql_result *r, int col)
{
    uint8_t b[16];
    if (col >= 0 && cql_row_get_uuid(r, col, b) == 0)
        return ms_xid_from_bytes(b);
    return col < 0 ? (ms_xid){0, 0} : ms_xid_int((uint64_t)sc_col_i64(r, col));
}

/* [applied] of a lightweight transaction's result. */
bool sc_lwt_applied(cql_result *r)
{
    bool applied = false;
    if (cql_result_next_row(r) == 0)
        cql_row_get_bool(r, 0, &applied);
    return applied;
}

int64_t sc_col_i64(cql_result *r, int col)
{
    int64_t v = 0;
    if (cql_row_get_bigint(r, col, &v) != 0)
        v = 0;
    return v;
}

int64_t sc_named_i64(cql_result *r, const char *name)
{
    int col = cql_result_column_index(r, name);
    return col < 0 ? 0 : sc_col_i64(r, col);
}

bool sc_col_bool(cql_result *r, int col)
{
    bool v = false;
    if (cql_row_get_bool(r, col, &v) != 0)
        v = false;
    return v;
}

int sc_col_tiny(cql_result *r, int col)
{
    int8_t v = 0;
    if (cql_row_get_tinyint(r, col, &v) != 0)
        v = 0;
    return v;
}

/* Copies a text column into res; NULL for null (and for "" when empty_is_null). */
const char *sc_col_text(cql_result *r, int col, store_result_hdr *res, size_t *len,
                        bool empty_is_null, bool *oom)
{
    cql_str s;
    if (len)
        *len = 0;
    if (cql_row_get_text(r, col, &s) != 0 || (empty_is_null && s.len == 0))
        return NULL;
    return store__res_text(res, s.ptr ? s.ptr : "", s.len, len, oom);
}

/*
 * Runs the statements ids[0..n) with the values c->bv[k] as one conditional
 * batch (a lightweight transaction over one partition); *res receives its
 * result ([applied], then the current values when not applied). Never
 * retried. Fails op on error.
 */
int sc_lwt_batch(sc_conn *c, store_op *op, const sc_stmt_id *ids, size_t n, const char *what,
                 cql_result **res)
{
    const store_config *cfg = c->b->cfg;
    cql_statement st[3];
    *res = NULL;
    for (size_t k = 0; k < n && k < 3; k++) {
        if (sc_prepare(c, op, ids[k], what))
            return op->status;
        if (sc_check_values(op, ids[k], &c->bv[k], what))
            return op->status;
        cql_statement_init(&st[k]);
        st[k].prepared = c->ps[ids[k]];
        st[k].values = &c->bv[k];
    }
    cql_batch_request br;
    cql_batch_request_init(&br);
    br.kind = CQL_BATCH_KIND_LOGGED;
    br.statements = st;
    br.count = n;
    br.consistency = (int)cfg->scylla_write_consistency;
    br.serial_consistency = (int)cfg->scylla_serial_consistency;
    br.idempotent = false;
    c->queries++;
    cql_status cs;
    if (sc_exec_batch(c, &br, res, &cs) != 0)
        return sc_fail(op, &cs, what);
    return 0;
}

#endif /* MSGSTORE_HAVE_CQL_SESSION */
