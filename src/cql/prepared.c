/* SPDX-License-Identifier: Apache-2.0 */
/*
 * prepared.c - prepared statements: the session's LRU cache (key: keyspace +
 * query), one PREPARE in flight per statement however many requests wait for
 * it, preparing on every host, and again on hosts that come back.
 */
#include "cql/session.h"

#include "core/error.h"
#include "core/log.h"
#include "cql/status.h"

#include <stdlib.h>
#include <string.h>

cql_prepared *cql__prepared_new(cql_session *s, const char *ks, const char *q, size_t qlen)
{
    cql_prepared *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->refs = 1;
    p->s = s;
    p->keyspace = strdup(ks ? ks : "");
    p->query = malloc(qlen + 1);
    if (!p->keyspace || !p->query) {
        free(p->keyspace);
        free(p->query);
        free(p);
        return NULL;
    }
    memcpy(p->query, q, qlen);
    p->query[qlen] = '\0';
    p->query_len = qlen;
    p->ks_idx = -1;
    return p;
}

cql_prepared *cql_prepared_ref(cql_prepared *p)
{
    if (p)
        p->refs++;
    return p;
}

void cql_prepared_release(cql_prepared *p)
{
    if (!p || --p->refs > 0)
        return;
    free(p->keyspace);
    free(p->query);
    free(p->id);
    free(p->bind);
    free(p->result);
    for (size_t i = 0; i < p->nretired; i++)
        free(p->retired[i]);
    free(p->retired);
    free(p);
}

const cql_metadata *cql_prepared_params(const cql_prepared *p)
{
    return p ? p->bind : NULL;
}

const cql_metadata *cql_prepared_result(const cql_prepared *p)
{
    return p ? p->result : NULL;
}

const char *cql_prepared_query(const cql_prepared *p)
{
    return p ? p->query : NULL;
}

static void cache_free(void *v, void *ctx)
{
    (void)ctx;
    cql_prepared *p = v;
    p->in_cache = false;
    cql_prepared_release(p);
}

/* Called by session.c when it sets up the cache. */
int cql__prepared_cache_init(cql_session *s)
{
    return cql__lru_init(&s->cache, (size_t)s->o.prepared_cache_size, cache_free, NULL);
}

int cql__prepared_set(cql_prepared *p, const cql_result *res, const char *session_ks)
{
    (void)session_ks;
    if (res->kind != CQL_RESULT_PREPARED || res->prepared_id.len <= 0)
        return MS_ERR_INVALID;
    uint8_t *id = malloc((size_t)res->prepared_id.len);
    cql_metadata *bind = NULL, *result = NULL;
    if (!id || cql__metadata_clone(&res->bind, &bind) < 0 ||
        (res->meta.column_count > 0 && res->meta.columns &&
         cql__metadata_clone(&res->meta, &result) < 0)) {
        free(id);
        free(bind);
        return MS_ERR_NOMEM;
    }
    memcpy(id, res->prepared_id.ptr, (size_t)res->prepared_id.len);
    free(p->id);
    p->id = id;
    p->id_len = (size_t)res->prepared_id.len;
    free(p->bind);
    p->bind = bind;
    if (p->result) {
        /* results decoded with the old metadata may still be alive */
        cql_metadata **r = realloc(p->retired, (p->nretired + 1) * sizeof(*r));
        if (r) {
            p->retired = r;
            p->retired[p->nretired++] = p->result;
        } else {
            free(result);
            result = NULL; /* keep the old one rather than free it under a result */
            p->skip_metadata = false;
            goto routing;
        }
    }
    p->result = result;
    p->skip_metadata = result != NULL;
routing:
    /* the keyspace of the bound table, for token-aware routing */
    p->route_ks[0] = '\0';
    p->route_table[0] = '\0';
    const cql_metadata *m = bind->column_count > 0 ? bind : result;
    if (m && m->column_count > 0 && m->columns) {
        cql_str ks = m->columns[0].keyspace, tb = m->columns[0].table;
        if (ks.len < sizeof(p->route_ks) && tb.len < sizeof(p->route_table)) {
            memcpy(p->route_ks, ks.ptr, ks.len);
            p->route_ks[ks.len] = '\0';
            memcpy(p->route_table, tb.ptr, tb.len);
            p->route_table[tb.len] = '\0';
        }
    }
    /* conditional statements (IF ...) are LWTs: replicas in ring order */
    p->lwt = false;
    for (size_t i = 0; i + 3 <= p->query_len; i++) {
        const char *q = p->query + i;
        if ((q[0] == 'I' || q[0] == 'i') && (q[1] == 'F' || q[1] == 'f') &&
            (i == 0 || q[-1] == ' ' || q[-1] == '\n' || q[-1] == '\t') &&
            (q[2] == ' ' || q[2] == '\n' || q[2] == '\t')) {
            p->lwt = true;
            break;
        }
    }
    p->ks_idx = -1;
    p->state = CQL_PREP_READY;
    return 0;
}

void cql__prepared_lookup(cql_session *s, const char *q, size_t qlen, cql_request *waiter,
                          cql_prepared **out)
{
    *out = NULL;
    const char *ks = s->keyspace ? s->keyspace : "";
    cql_prepared *p = cql__lru_get(&s->cache, ks, q, qlen);
    if (p && p->state == CQL_PREP_READY) {
        *out = cql_prepared_ref(p);
        return;
    }
    if (p && p->state == CQL_PREP_PREPARING) {
        waiter->waiting = true;
        waiter->next = p->waiters;
        p->waiters = waiter;
        return;
    }
    if (p) /* failed before: prepare again */
        cql_prepared_release(cql__lru_take(&s->cache, ks, q, qlen));
    p = cql__prepared_new(s, ks, q, qlen);
    if (!p || cql__lru_put(&s->cache, ks, q, qlen, p) < 0) {
        cql_prepared_release(p);
        cql_status st;
        cql__status_set(&st, MS_ERR_NOMEM, NULL, "out of memory");
        s->prepared_listener->on_failed(waiter, &st, true);
        return;
    }
    p->in_cache = true;
    waiter->waiting = true;
    waiter->next = NULL;
    p->waiters = waiter;
    cql_prepared_ref(p); /* held while the PREPARE runs */
    if (s->prepared_listener->send_prepare(s, p) < 0) {
        cql_status st;
        cql__status_set(&st, MS_ERR_NOMEM, NULL, "out of memory");
        cql__prepared_failed(p, &st);
    }
    cql_prepared_release(p);
}

static cql_request *take_waiters(cql_prepared *p)
{
    cql_request *list = p->waiters, *rev = NULL;
    p->waiters = NULL;
    while (list) {
        cql_request *n = list->next;
        list->next = rev;
        rev = list;
        list = n;
    }
    return rev; /* in arrival order */
}

void cql__prepared_ready(cql_prepared *p)
{
    cql_prepared_ref(p);
    cql_request *w = take_waiters(p);
    while (w) {
        cql_request *n = w->next;
        w->next = NULL;
        w->s->prepared_listener->on_ready(w, p);
        w = n;
    }
    cql_prepared_release(p);
}

void cql__prepared_failed(cql_prepared *p, const cql_status *st)
{
    cql_session *s = p->s;
    cql_prepared_ref(p);
    p->state = CQL_PREP_FAILED;
    if (p->in_cache && s) {
        cql_prepared *t = cql__lru_take(&s->cache, p->keyspace, p->query, p->query_len);
        if (t) {
            t->in_cache = false;
            cql_prepared_release(t);
        }
    }
    cql_request *w = take_waiters(p);
    while (w) {
        cql_request *n = w->next;
        w->next = NULL;
        w->waiting = false;
        w->s->prepared_listener->on_failed(w, st, false);
        w = n;
    }
    cql_prepared_release(p);
}

/* ---- preparing in the background ---------------------------------------------- */

typedef struct bg_prepare {
    cql_pending p; /* first member */
    char label[64];
} bg_prepare;

static void bg_fn(cql_pending *pd, cql_conn *c, int status, const cql_frame *f)
{
    bg_prepare *b = (bg_prepare *)pd;
    (void)c;
    if (status == 0 && f->h.opcode == CQL_OP_ERROR) {
        cql_response r;
        cql_error e;
        if (cql__response_open(&f->h, f->body, f->len, &r) == 0 &&
            cql__error_decode(r.body, r.body_len, &e) == 0)
            MS_DEBUG("cql", "%s: background PREPARE failed: %.*s", b->label, (int)e.message.len,
                     e.message.ptr);
    }
    free(b);
}

static void prepare_on_conn(cql_prepared *p, cql_conn *c, const char *label)
{
    bg_prepare *b = calloc(1, sizeof(*b));
    if (!b)
        return;
    b->p.fn = bg_fn;
    snprintf(b->label, sizeof(b->label), "%s", label);
    cql_buf f;
    cql_buf_init(&f);
    if (cql__enc_prepare(&f, 0, 0, p->query, p->query_len) < 0 ||
        cql__conn_send(c, &b->p, f.data, f.len) < 0)
        free(b);
    cql_buf_free(&f);
}

void cql__prepare_on_host(cql_session *s, cql_prepared *p, cql_host *h, cql_conn *c)
{
    (void)s;
    if (p->state != CQL_PREP_READY)
        return;
    if (!c)
        c = cql__pool_pick(h, false, 0, -1);
    if (c)
        prepare_on_conn(p, c, h->label);
}

typedef struct reprep_ctx {
    cql_session *s;
    cql_host *h;
    cql_conn *c;
    int n;
} reprep_ctx;

static void reprep_one(void *v, void *ctx)
{
    reprep_ctx *x = ctx;
    cql_prepared *p = v;
    if (p->state != CQL_PREP_READY)
        return;
    prepare_on_conn(p, x->c, x->h->label);
    x->n++;
}

void cql__reprepare_all_on(cql_session *s, cql_host *h, cql_conn *c)
{
    reprep_ctx x = {s, h, c, 0};
    cql__lru_foreach(&s->cache, reprep_one, &x);
    if (x.n)
        MS_INFO("cql", "%s: re-preparing %d statements", h->label, x.n);
}

typedef struct schema_ctx {
    cql_str ks, table;
} schema_ctx;

static void schema_one(void *v, void *ctx)
{
    schema_ctx *x = ctx;
    cql_prepared *p = v;
    if (!p->result || p->result->column_count <= 0 || !p->result->columns)
        return;
    const cql_column *col = &p->result->columns[0];
    if (col->keyspace.len == x->ks.len && col->table.len == x->table.len &&
        memcmp(col->keyspace.ptr, x->ks.ptr, x->ks.len) == 0 &&
        memcmp(col->table.ptr, x->table.ptr, x->table.len) == 0)
        p->skip_metadata = false; /* the cached columns may be stale: ask for them */
}

void cql__prepared_schema_changed(cql_session *s, cql_str ks, cql_str table)
{
    cql__tablets_drop(&s->tablets, ks.ptr, ks.len, table.len ? table.ptr : NULL, table.len);
    schema_ctx x = {ks, table};
    cql__lru_foreach(&s->cache, schema_one, &x);
}

static void detach_one(void *v, void *ctx)
{
    (void)ctx;
    ((cql_prepared *)v)->s = NULL;
}

void cql__prepared_detach(cql_session *s)
{
    cql__lru_foreach(&s->cache, detach_one, NULL);
}
