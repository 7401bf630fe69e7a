/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pager.c - cql_pager: runs one statement page after page, carrying the
 * paging state (on top of cql_session_execute).
 */
#include "cql/session.h"

#include "core/error.h"

#include <stdlib.h>
#include <string.h>

struct cql_pager {
    cql_session *s;
    cql_statement st;
    char *query;
    cql_prepared *prep;
    cql_values vals;
    cql_buf state;
    bool has_state;
    bool started, done, busy;
    cql_result_cb cb;
    void *ud;
};

int cql_pager_new(cql_session *s, const cql_statement *st, cql_pager **out)
{
    *out = NULL;
    if (!s || !st || (!st->query && !st->prepared))
        return MS_ERR_INVALID;
    cql_pager *p = calloc(1, sizeof(*p));
    if (!p)
        return MS_ERR_NOMEM;
    p->s = s;
    p->st = *st;
    cql_values_init(&p->vals);
    cql_buf_init(&p->state);
    if (st->query) {
        size_t ql = st->query_len ? st->query_len : strlen(st->query);
        p->query = malloc(ql + 1);
        if (!p->query) {
            free(p);
            return MS_ERR_NOMEM;
        }
        memcpy(p->query, st->query, ql);
        p->query[ql] = '\0';
        p->st.query = p->query;
        p->st.query_len = ql;
    }
    if (st->prepared)
        p->prep = cql_prepared_ref(st->prepared);
    p->st.prepared = p->prep;
    if (st->values && st->values->count) {
        cql_buf_append(&p->vals.buf, st->values->buf.data, st->values->buf.len);
        p->vals.count = st->values->count;
        p->st.values = &p->vals;
    } else {
        p->st.values = NULL;
    }
    p->st.keyspace = NULL;
    if (st->paging_state.ptr && st->paging_state.len >= 0) {
        cql_buf_append(&p->state, st->paging_state.ptr, (size_t)st->paging_state.len);
        p->has_state = true;
    }
    if (p->vals.buf.err || p->state.err) {
        cql_pager_free(p);
        return MS_ERR_NOMEM;
    }
    *out = p;
    return 0;
}

static void pager_cb(cql_result *res, const cql_status *st, void *ud)
{
    cql_pager *p = ud;
    p->busy = false;
    if (res) {
        p->started = true;
        cql_bytes ps = cql_result_paging_state(res);
        cql_buf_reset(&p->state);
        if (cql_result_has_more_pages(res) && ps.len >= 0) {
            cql_buf_append(&p->state, ps.ptr, (size_t)ps.len);
            p->has_state = true;
        } else {
            p->has_state = false;
            p->done = true;
        }
    }
    p->cb(res, st, p->ud);
}

int cql_pager_next(cql_pager *p, cql_result_cb cb, void *ud)
{
    if (!p || !cb)
        return MS_ERR_INVALID;
    if (p->busy)
        return MS_ERR_CONFLICT;
    if (p->done)
        return MS_ERR_NOT_FOUND;
    cql_statement st = p->st;
    if (p->has_state) {
        st.paging_state.ptr = p->state.data ? p->state.data : (const uint8_t *)"";
        st.paging_state.len = (int32_t)p->state.len;
    } else {
        st.paging_state.ptr = NULL;
        st.paging_state.len = -1;
    }
    p->cb = cb;
    p->ud = ud;
    p->busy = true;
    int rc = cql_session_execute(p->s, &st, pager_cb, p);
    if (rc < 0)
        p->busy = false;
    return rc;
}

bool cql_pager_has_more(const cql_pager *p)
{
    return p && !p->done;
}

void cql_pager_free(cql_pager *p)
{
    if (!p)
        return;
    free(p->query);
    cql_prepared_release(p->prep);
    cql_values_free(&p->vals);
    cql_buf_free(&p->state);
    free(p);
}
