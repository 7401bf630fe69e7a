/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.c - the backend-neutral half of the store: requests in, answers out.
 *
 * Copies and validates requests, issues message ids (one snowflake generator
 * per store), coalesces identical reads in flight, hands operations to the
 * backend, and delivers answers on the caller's libuv loop (one uv_async_t
 * per loop) or to a thread blocked in a *_sync call. Counts every operation
 * and backend query (store_get_stats, Prometheus metrics).
 */
#include "store_internal.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"

#define CO_BUCKETS 256

struct store__binding {
    uv_async_t async; /* first: the handle's data points back here anyway */
    uv_loop_t *loop;
    store *s;
    store__queue answers; /* answers waiting for the loop */
    size_t inflight;      /* ops started on this loop and not yet answered (loop thread) */
    void *bdata;          /* the backend's state for this loop (loop thread) */
    bool detaching;       /* loop thread */
    bool closing;         /* loop thread */
};

struct store__sync_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
};

typedef struct op_counters {
    _Atomic uint64_t calls, errors, queries, coalesced;
} op_counters;

typedef struct op_metrics {
    ms_counter *ops, *errors, *queries, *coalesced;
    ms_histogram *duration;
} op_metrics;

struct store {
    store_config cfg;
    store_options opt;
    ms_backend_kind kind;
    ms_id_format id_format; /* channel and user ids */
    store_backend *be;
    ms_snowflake ids;
    _Atomic uint32_t hook_seq; /* sequence of ids made for an explicit time */
    _Atomic bool closing;
    _Atomic uint64_t pending; /* ops handed to the backend and not yet done */

    pthread_mutex_t bind_mu;
    store__binding **binds;
    size_t nbinds, capbinds;

    pthread_mutex_t co_mu;
    store_op *co[CO_BUCKETS]; /* in-flight coalescable reads (leaders) by channel */

    op_counters st[STORE_OP_COUNT];
    op_metrics m[STORE_OP_COUNT];
    ms_gauge *m_queue;

    store_search_provider search; /* answers searches when set (ScyllaDB: src/search/) */
};

/* ------------------------------------------------------------------ helpers */

const store_config *store__config(const store *s)
{
    return &s->cfg;
}

uint64_t store__now_ms(const store *s)
{
    (void)s;
    return ms_clock_realtime_ms(NULL);
}

uint64_t store__next_id(store *s)
{
    uint64_t id = 0;
    if (ms_snowflake_next(&s->ids, &id) != 0)
        return 0;
    return id;
}

const char *store_backend_name(const store *s)
{
    return s && s->be ? s->be->vt->name : "none";
}

ms_id_format store_id_format(const store *s)
{
    return s ? s->id_format : MS_ID_UUID;
}

int store__op_fail(store_op *op, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(op->detail, sizeof op->detail, fmt, ap);
    va_end(ap);
    op->status = code;
    return code;
}

bool store__op_is_write(store_op_kind kind)
{
#define IS_WRITE(KIND, label, fn, shape, req, member, cb, cbm, res, chan, W, C)                    \
    [STORE_OP_##KIND] = W,
    static const bool write[STORE_OP_COUNT] = {STORE_OPS(IS_WRITE)};
#undef IS_WRITE
    return (unsigned)kind < STORE_OP_COUNT && write[kind];
}

static bool coalescable(store_op_kind kind)
{
#define IS_COALESCABLE(KIND, label, fn, shape, req, member, cb, cbm, res, chan, W, C)              \
    [STORE_OP_##KIND] = C,
    static const bool co[STORE_OP_COUNT] = {STORE_OPS(IS_COALESCABLE)};
#undef IS_COALESCABLE
    return (unsigned)kind < STORE_OP_COUNT && co[kind];
}

static bool same_read(const store_op *a, const store_op *b)
{
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case STORE_OP_GET:
    case STORE_OP_REACTIONS_GET:
        return ms_xid_eq(a->req.get.channel_id, b->req.get.channel_id) &&
               a->req.get.message_id == b->req.get.message_id;
    case STORE_OP_PAGE:
        return ms_xid_eq(a->req.page.channel_id, b->req.page.channel_id) &&
               a->req.page.mode == b->req.page.mode && a->req.page.anchor == b->req.page.anchor &&
               a->req.page.limit == b->req.page.limit;
    case STORE_OP_HISTORY:
        return ms_xid_eq(a->req.history.channel_id, b->req.history.channel_id) &&
               a->req.history.message_id == b->req.history.message_id &&
               a->req.history.limit == b->req.history.limit;
    case STORE_OP_REACTION_USERS:
        return ms_xid_eq(a->req.users.channel_id, b->req.users.channel_id) &&
               a->req.users.message_id == b->req.users.message_id &&
               ms_xid_eq(a->req.users.after_user_id, b->req.users.after_user_id) &&
               a->req.users.limit == b->req.users.limit &&
               strcmp(a->req.users.emoji, b->req.users.emoji) == 0;
    case STORE_OP_PINS_LIST:
    case STORE_OP_CHANNEL_GET:
    case STORE_OP_SYNC_GET:
        return ms_xid_eq(a->req.channel.channel_id, b->req.channel.channel_id);
    default:
        return false;
    }
}

static size_t co_bucket(ms_xid channel)
{
    return (size_t)(ms_xid_hash(channel) >> 56) % CO_BUCKETS;
}

/* ------------------------------------------------------------------ ops */

static store_op *op_new(store *s, store_op_kind kind, store__op_call call)
{
    store_op *op = calloc(1, sizeof *op);
    if (!op)
        return NULL;
    op->s = s;
    op->kind = kind;
    op->call = call;
    return op;
}

static void op_free(store_op *op)
{
    if (op->res)
        store_free(op->res);
    free(op->owned);
    free(op);
}

typedef struct sref {
    const char **p;
    size_t len;
} sref;

/* A search's channel list and query, copied into one allocation owned by op. */
static int own_search(store_op *op)
{
    store_search_req *r = &op->req.search;
    size_t qlen = r->query ? strlen(r->query) : 0;
    size_t nch = r->channel_ids ? r->nchannels : 0;
    if (nch > STORE_SEARCH_CHANNELS_MAX)
        nch = STORE_SEARCH_CHANNELS_MAX + 1; /* enough for validation to refuse it */
    char *buf = malloc(nch * sizeof *r->channel_ids + qlen + 1);
    if (!buf)
        return MS_ERR_NOMEM;
    ms_xid *ch = (ms_xid *)(void *)buf;
    if (nch)
        memcpy(ch, r->channel_ids, nch * sizeof *ch);
    char *q = buf + nch * sizeof *ch;
    if (r->query)
        memcpy(q, r->query, qlen);
    q[qlen] = '\0';
    r->channel_ids = nch ? ch : NULL;
    r->nchannels = nch;
    r->query = r->query ? q : NULL;
    op->owned = buf;
    return 0;
}

/* Copies the request's strings into one allocation owned by op. */
static int own_strings(store_op *op)
{
    if (op->kind == STORE_OP_SEARCH)
        return own_search(op);
    sref r[4];
    int n = 0;
    const char **content = NULL;
    size_t content_len = 0;
    switch (op->kind) {
    case STORE_OP_INSERT:
        content = &op->req.insert.content;
        content_len = op->req.insert.content_len;
        r[n++] = (sref){&op->req.insert.attachments, 0};
        r[n++] = (sref){&op->req.insert.metadata, 0};
        r[n++] = (sref){&op->req.insert.nonce, 0};
        break;
    case STORE_OP_EDIT:
        content = &op->req.edit.content;
        content_len = op->req.edit.content_len;
        break;
    case STORE_OP_REACTION_ADD:
    case STORE_OP_REACTION_REMOVE:
        r[n++] = (sref){&op->req.reaction.emoji, 0};
        break;
    case STORE_OP_REACTION_USERS:
        r[n++] = (sref){&op->req.users.emoji, 0};
        break;
    case STORE_OP_CHANNEL_UPSERT:
        r[n++] = (sref){&op->req.upsert.name, 0};
        r[n++] = (sref){&op->req.upsert.type, 0};
        break;
    default:
        break;
    }
    if (content && *content)
        r[n++] = (sref){content, content_len};
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (!*r[i].p)
            continue;
        if (r[i].p != content)
            r[i].len = strlen(*r[i].p);
        total += r[i].len + 1;
    }
    /* A missing content of length 0 reads as ""; with a length it stays NULL (rejected). */
    bool empty = content && !*content && content_len == 0;
    if (total == 0) {
        if (empty)
            *content = "";
        return 0;
    }
    char *buf = malloc(total);
    if (!buf)
        return MS_ERR_NOMEM;
    char *w = buf;
    for (int i = 0; i < n; i++) {
        if (!*r[i].p)
            continue;
        memcpy(w, *r[i].p, r[i].len);
        w[r[i].len] = '\0';
        *r[i].p = w;
        w += r[i].len + 1;
    }
    if (empty)
        *content = "";
    op->owned = buf;
    return 0;
}

/* ------------------------------------------------------------------ loops */

static void on_binding_closed(uv_handle_t *h)
{
    store__binding *b = h->data;
    store__queue_destroy(&b->answers);
    free(b);
}

static void maybe_close_binding(store__binding *b)
{
    if (b->detaching && b->inflight == 0 && !b->closing) {
        b->closing = true;
        uv_close((uv_handle_t *)&b->async, on_binding_closed);
    }
}

static void on_async(uv_async_t *h)
{
    store__binding *b = h->data;
    store_op *list = store__queue_take(&b->answers, INT_MAX, NULL, false);
    while (list) {
        store_op *next = list->next;
        list->call(list, list->status, list->status ? list->detail : NULL,
                   list->status ? NULL : list->res);
        b->inflight--;
        op_free(list);
        list = next;
    }
    maybe_close_binding(b);
}

/* Finds or creates the binding of loop (on the loop's thread). */
static store__binding *bind_loop(store *s, uv_loop_t *loop)
{
    pthread_mutex_lock(&s->bind_mu);
    for (size_t i = 0; i < s->nbinds; i++) {
        if (s->binds[i]->loop == loop) {
            store__binding *b = s->binds[i];
            pthread_mutex_unlock(&s->bind_mu);
            return b;
        }
    }
    store__binding *b = NULL;
    if (s->nbinds == s->capbinds) {
        size_t cap = s->capbinds ? s->capbinds * 2 : 8;
        store__binding **nb = realloc(s->binds, cap * sizeof *nb);
        if (!nb)
            goto out;
        s->binds = nb;
        s->capbinds = cap;
    }
    b = calloc(1, sizeof *b);
    if (!b)
        goto out;
    if (uv_async_init(loop, &b->async, on_async) != 0) {
        free(b);
        b = NULL;
        goto out;
    }
    b->async.data = b;
    b->loop = loop;
    b->s = s;
    store__queue_init(&b->answers);
    s->binds[s->nbinds++] = b;
out:
    pthread_mutex_unlock(&s->bind_mu);
    return b;
}

void store_loop_detach(store *s, uv_loop_t *loop)
{
    if (!s || !loop)
        return;
    store__binding *b = NULL;
    pthread_mutex_lock(&s->bind_mu);
    for (size_t i = 0; i < s->nbinds; i++) {
        if (s->binds[i]->loop == loop) {
            b = s->binds[i];
            s->binds[i] = s->binds[--s->nbinds];
            break;
        }
    }
    pthread_mutex_unlock(&s->bind_mu);
    if (!b)
        return;
    if (b->bdata && s->be->vt->detach)
        s->be->vt->detach(s->be, loop, b->bdata);
    b->bdata = NULL;
    b->detaching = true;
    maybe_close_binding(b);
}

void store_loop_drain(store *s, uv_loop_t *loop, int64_t deadline_ms)
{
    if (!s || !loop || !s->be->vt->drain)
        return;
    store__binding *b = NULL;
    pthread_mutex_lock(&s->bind_mu);
    for (size_t i = 0; i < s->nbinds; i++)
        if (s->binds[i]->loop == loop)
            b = s->binds[i];
    pthread_mutex_unlock(&s->bind_mu);
    if (b && b->bdata)
        s->be->vt->drain(s->be, loop, b->bdata, deadline_ms);
}

uv_loop_t *store__op_loop(const store_op *op)
{
    return op->lb ? op->lb->loop : NULL;
}

void **store__op_loop_data(store_op *op)
{
    return op->lb ? &op->lb->bdata : NULL;
}

/* ------------------------------------------------------------------ completion */

static void record(store *s, const store_op *op, bool coalesced)
{
    op_counters *c = &s->st[op->kind];
    op_metrics *m = &s->m[op->kind];
    atomic_fetch_add_explicit(&c->calls, 1, memory_order_relaxed);
    ms_counter_add(m->ops, 1);
    if (op->status) {
        atomic_fetch_add_explicit(&c->errors, 1, memory_order_relaxed);
        ms_counter_add(m->errors, 1);
    }
    if (coalesced) {
        atomic_fetch_add_explicit(&c->coalesced, 1, memory_order_relaxed);
        ms_counter_add(m->coalesced, 1);
    } else if (op->queries) {
        atomic_fetch_add_explicit(&c->queries, op->queries, memory_order_relaxed);
        ms_counter_add(m->queries, op->queries);
    }
    ms_histogram_observe_us(m->duration, (uv_hrtime() - op->t0_ns) / 1000);
}

static void deliver(store_op *op)
{
    if (op->sw) {
        store__sync_wait *w = op->sw;
        pthread_mutex_lock(&w->mu);
        w->done = true;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        return;
    }
    store__binding *b = op->lb;
    store__queue_push(&b->answers, op);
    uv_async_send(&b->async);
}

/* Unlinks op from the in-flight table (co_mu held). */
static void co_unlink(store *s, store_op *op)
{
    store_op **pp = &s->co[co_bucket(op->channel_id)];
    while (*pp) {
        if (*pp == op) {
            *pp = op->co_next;
            op->co_next = NULL;
            return;
        }
        pp = &(*pp)->co_next;
    }
}

/*
 * After a write to a channel, reads of it already in flight take no new
 * followers: a caller that saw the write acknowledged must not get an answer
 * read before it.
 */
static void co_invalidate(store *s, ms_xid channel)
{
    pthread_mutex_lock(&s->co_mu);
    store_op **pp = &s->co[co_bucket(channel)];
    while (*pp) {
        store_op *o = *pp;
        if (ms_xid_eq(o->channel_id, channel)) {
            *pp = o->co_next;
            o->co_next = NULL;
            o->co_leader = false;
        } else {
            pp = &o->co_next;
        }
    }
    pthread_mutex_unlock(&s->co_mu);
}

static void op_done(store_op *op, bool here);

void store__op_done(store_op *op)
{
    op_done(op, false);
}

void store__op_done_here(store_op *op)
{
    op_done(op, true);
}

/* here: on op's loop, outside any store call: op's callback runs now, with no hop. */
static void op_done(store_op *op, bool here)
{
    store *s = op->s;
    if (op->status == 0 && !op->res)
        store__op_fail(op, MS_ERR_INTERNAL, "the backend returned no result");
    if (op->status != 0 && op->res) {
        store_free(op->res);
        op->res = NULL;
    }
    if (op->status == 0)
        op->res->queries = op->queries;
    if (op->submitted) {
        op->submitted = false;
        atomic_fetch_sub_explicit(&s->pending, 1, memory_order_relaxed);
        ms_gauge_add(s->m_queue, -1);
    }
    record(s, op, false);
    if (op->status == 0 && store__op_is_write(op->kind) && !ms_xid_is_none(op->channel_id))
        co_invalidate(s, op->channel_id);

    store_op *f = NULL;
    if (coalescable(op->kind) && !s->opt.no_coalesce) {
        pthread_mutex_lock(&s->co_mu);
        if (op->co_leader)
            co_unlink(s, op);
        op->co_leader = false;
        f = op->followers;
        op->followers = NULL;
        pthread_mutex_unlock(&s->co_mu);
    }
    while (f) {
        store_op *next = f->co_next;
        f->co_next = NULL;
        f->status = op->status;
        memcpy(f->detail, op->detail, sizeof f->detail);
        if (op->res) {
            store__res_ref(op->res);
            f->res = op->res;
        }
        record(s, f, true);
        deliver(f);
        f = next;
    }
    if (here && op->lb && !op->sw) {
        store__binding *b = op->lb;
        op->call(op, op->status, op->status ? op->detail : NULL, op->status ? NULL : op->res);
        b->inflight--;
        op_free(op);
        maybe_close_binding(b);
        return;
    }
    deliver(op);
}

static void make_id(store *s, store_op *op)
{
    store_insert_req *r = &op->req.insert;
    if (r->id) {
        op->id_given = true;
        return;
    }
    if (r->at_ms) {
        uint32_t seq = atomic_fetch_add_explicit(&s->hook_seq, 1, memory_order_relaxed);
        r->id = ((r->at_ms - s->cfg.epoch_ms) << MS_SNOWFLAKE_TIME_SHIFT) |
                ((uint64_t)s->ids.worker_id << MS_SNOWFLAKE_SEQ_BITS) |
                (seq & MS_SNOWFLAKE_MAX_SEQ);
        return;
    }
    if (ms_snowflake_next(&s->ids, &r->id) != 0)
        store__op_fail(op, MS_ERR_CLOCK, "the clock stepped back; no id can be issued now");
}

/* ------------------------------------------------------------------ search providers */

void store_set_search_provider(store *s, const store_search_provider *p)
{
    if (!s)
        return;
    if (p)
        s->search = *p;
    else
        memset(&s->search, 0, sizeof s->search);
}

/* Hands a validated search to the provider, its result (room for `limit` hits) ready. */
static void search_submit(store *s, store_op *op)
{
    store_search_result *res = store__op_result(op, sizeof *res);
    if (res)
        res->items = store__res_alloc(&res->hdr, (size_t)op->req.search.limit * sizeof *res->items);
    if (!res || !res->items) {
        store__op_fail(op, MS_ERR_NOMEM, "out of memory");
        store__op_done(op);
        return;
    }
    s->search.submit(s->search.ctx, (store_search_job *)op);
}

const store_search_req *store_search_job_req(const store_search_job *job)
{
    return &((const store_op *)job)->req.search;
}

int store_search_job_add(store_search_job *job, const store_message *m, const char *marked,
                         size_t len, double score)
{
    store_op *op = (store_op *)job;
    store_search_result *res = (store_search_result *)op->res;
    if (res->count >= (size_t)op->req.search.limit)
        return MS_ERR_INVALID;
    store_search_hit *h = &res->items[res->count];
    store_result_hdr *hdr = &res->hdr;
    bool oom = false;
    h->msg = *m;
    h->msg.content = store__res_text(hdr, m->content, m->content_len, &h->msg.content_len, &oom);
    h->msg.attachments =
        m->attachments ? store__res_strndup(hdr, m->attachments, strlen(m->attachments)) : NULL;
    h->msg.metadata =
        m->metadata ? store__res_strndup(hdr, m->metadata, strlen(m->metadata)) : NULL;
    h->msg.nonce = m->nonce ? store__res_strndup(hdr, m->nonce, strlen(m->nonce)) : NULL;
    h->snippet = store__snippet_html(hdr, marked ? marked : "", marked ? len : 0);
    h->score = score;
    if (oom || !h->snippet || (m->attachments && !h->msg.attachments) ||
        (m->metadata && !h->msg.metadata) || (m->nonce && !h->msg.nonce))
        return MS_ERR_NOMEM;
    res->count++;
    return 0;
}

void store_search_job_done(store_search_job *job, int status, bool more, const char *detail)
{
    store_op *op = (store_op *)job;
    if (status)
        store__op_fail(op, status, "%s", detail && *detail ? detail : ms_err_str(status));
    else
        ((store_search_result *)op->res)->more = more;
    store__op_done(op);
}

/* Validates op and sends it on its way; every path ends in store__op_done. */
static void start(store *s, store_op *op)
{
    op->t0_ns = uv_hrtime();
    op->now_ms = store__now_ms(s);
    if (store__validate(op, &s->cfg) != 0) {
        store__op_done(op);
        return;
    }
    if (op->kind == STORE_OP_INSERT) {
        make_id(s, op);
        if (op->status) {
            store__op_done(op);
            return;
        }
    }
    if (coalescable(op->kind) && !s->opt.no_coalesce) {
        pthread_mutex_lock(&s->co_mu);
        size_t bk = co_bucket(op->channel_id);
        for (store_op *l = s->co[bk]; l; l = l->co_next) {
            if (same_read(l, op)) {
                op->co_next = l->followers;
                l->followers = op;
                pthread_mutex_unlock(&s->co_mu);
                return;
            }
        }
        op->co_leader = true;
        op->co_next = s->co[bk];
        s->co[bk] = op;
        pthread_mutex_unlock(&s->co_mu);
    }
    uint64_t depth = atomic_fetch_add_explicit(&s->pending, 1, memory_order_relaxed);
    op->submitted = true;
    ms_gauge_add(s->m_queue, 1);
    if (depth >= (uint64_t)s->opt.queue_max) {
        store__op_fail(op, MS_ERR_UNAVAILABLE, "the store's queue is full (%d operations)",
                       s->opt.queue_max);
        store__op_done(op);
        return;
    }
    if (op->kind == STORE_OP_SEARCH && s->search.submit) {
        search_submit(s, op);
        return;
    }
    int rc = s->be->vt->submit(s->be, op);
    if (rc != 0) {
        store__op_fail(op, rc, "the %s backend did not take the operation: %s", s->be->vt->name,
                       ms_err_str(rc));
        store__op_done(op);
    }
}

static int submit_async(store *s, uv_loop_t *loop, store_op *op)
{
    if (atomic_load(&s->closing)) {
        op_free(op);
        return MS_ERR_SHUTDOWN;
    }
    store__binding *b = bind_loop(s, loop);
    if (!b) {
        op_free(op);
        return MS_ERR_NOMEM;
    }
    b->inflight++;
    op->lb = b;
    start(s, op);
    return 0;
}

static int run_sync(store *s, store_op *op, void **res, char *detail, size_t dlen)
{
    if (res)
        *res = NULL;
    if (detail && dlen)
        detail[0] = '\0';
    if (atomic_load(&s->closing)) {
        op_free(op);
        if (detail && dlen)
            snprintf(detail, dlen, "the store is closing");
        return MS_ERR_SHUTDOWN;
    }
    store__sync_wait w;
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    w.done = false;
    op->sw = &w;
    start(s, op);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    int st = op->status;
    if (st == 0 && res) {
        *res = op->res;
        op->res = NULL;
    } else if (st != 0 && detail && dlen) {
        snprintf(detail, dlen, "%s", op->detail);
    }
    op_free(op);
    return st;
}

/* ------------------------------------------------------------------ the API */

/*
 * Per operation: the callback's call with its own result type, and the op
 * built from a copy of the request (its channel: `channel(req)`).
 */
#define STORE_OP(fn, KIND, reqtype, member, cbmember, channel)                                     \
    static void fn##_call(store_op *op, int st, const char *detail, const void *res)               \
    {                                                                                              \
        op->cb.cbmember(st, detail, res, op->ud);                                                  \
    }                                                                                              \
    static store_op *fn##_op(store *s, const reqtype *req)                                         \
    {                                                                                              \
        store_op *op = op_new(s, KIND, fn##_call);                                                 \
        if (!op)                                                                                   \
            return NULL;                                                                           \
        op->req.member = *req;                                                                     \
        op->channel_id = channel(req);                                                             \
        if (own_strings(op) != 0) {                                                                \
            op_free(op);                                                                           \
            return NULL;                                                                           \
        }                                                                                          \
        return op;                                                                                 \
    }

/* The async and _sync calls of an operation with a request. */
#define STORE_API_REQ(fn, KIND, reqtype, member, cbtype, cbmember, restype, channel)               \
    STORE_OP(fn, KIND, reqtype, member, cbmember, channel)                                         \
    int store_##fn(store *s, uv_loop_t *loop, const reqtype *req, cbtype cb, void *ud)             \
    {                                                                                              \
        if (!s || !loop || !req || !cb)                                                            \
            return MS_ERR_INVALID;                                                                 \
        store_op *op = fn##_op(s, req);                                                            \
        if (!op)                                                                                   \
            return MS_ERR_NOMEM;                                                                   \
        op->cb.cbmember = cb;                                                                      \
        op->ud = ud;                                                                               \
        return submit_async(s, loop, op);                                                          \
    }                                                                                              \
    int store_##fn##_sync(store *s, const reqtype *req, restype **res, char *detail, size_t dlen)  \
    {                                                                                              \
        if (!s || !req || !res)                                                                    \
            return MS_ERR_INVALID;                                                                 \
        store_op *op = fn##_op(s, req);                                                            \
        if (!op)                                                                                   \
            return MS_ERR_NOMEM;                                                                   \
        void *r = NULL;                                                                            \
        int st = run_sync(s, op, &r, detail, dlen);                                                \
        *res = r;                                                                                  \
        return st;                                                                                 \
    }

/* The same for an operation without a request (ping, health): an empty one. */
#define STORE_API_NOREQ(fn, KIND, reqtype, member, cbtype, cbmember, restype, channel)             \
    STORE_OP(fn, KIND, reqtype, member, cbmember, channel)                                         \
    int store_##fn(store *s, uv_loop_t *loop, cbtype cb, void *ud)                                 \
    {                                                                                              \
        if (!s || !loop || !cb)                                                                    \
            return MS_ERR_INVALID;                                                                 \
        store_op *op = fn##_op(s, &(reqtype){0});                                                  \
        if (!op)                                                                                   \
            return MS_ERR_NOMEM;                                                                   \
        op->cb.cbmember = cb;                                                                      \
        op->ud = ud;                                                                               \
        return submit_async(s, loop, op);                                                          \
    }                                                                                              \
    int store_##fn##_sync(store *s, restype **res, char *detail, size_t dlen)                      \
    {                                                                                              \
        if (!s || !res)                                                                            \
            return MS_ERR_INVALID;                                                                 \
        store_op *op = fn##_op(s, &(reqtype){0});                                                  \
        if (!op)                                                                                   \
            return MS_ERR_NOMEM;                                                                   \
        void *r = NULL;                                                                            \
        int st = run_sync(s, op, &r, detail, dlen);                                                \
        *res = r;                                                                                  \
        return st;                                                                                 \
    }

/* The channel an operation touches (coalescing, invalidation); 0: none. */
#define CHAN(req)   ((req)->channel_id)
#define NOCHAN(req) ((void)(req), (ms_xid){0, 0})

#define STORE_API(KIND, label, fn, shape, req, member, cb, cbm, res, chan, W, C)                   \
    STORE_API_##shape(fn, STORE_OP_##KIND, req, member, cb, cbm, res, chan)
STORE_OPS(STORE_API)
#undef STORE_API

/* ------------------------------------------------------------------ open, close, stats */

static void register_metrics(store *s)
{
    const char *be = s->kind == MS_BACKEND_SCYLLA ? "scylla" : "sqlite";
    char labels[96];
    for (int k = 0; k < STORE_OP_COUNT; k++) {
        snprintf(labels, sizeof labels, "backend=\"%s\",op=\"%s\"", be,
                 store_op_name((store_op_kind)k));
        s->m[k].ops = ms_counter_get("msgstore_store_ops_total", labels,
                                     "Store operations completed, by backend and operation");
        s->m[k].errors = ms_counter_get("msgstore_store_errors_total", labels,
                                        "Store operations that ended with an error");
        s->m[k].queries = ms_counter_get("msgstore_store_queries_total", labels,
                                         "Backend queries (SQL statements or CQL requests) issued");
        s->m[k].coalesced = ms_counter_get(
            "msgstore_store_coalesced_total", labels,
            "Reads answered by an identical read already in flight (request coalescing)");
        s->m[k].duration = ms_histogram_get("msgstore_store_op_duration_seconds", labels,
                                            "Store operation latency, from call to answer");
    }
    snprintf(labels, sizeof labels, "backend=\"%s\"", be);
    s->m_queue = ms_gauge_get("msgstore_store_queue_depth", labels,
                              "Store operations handed to the backend and not yet answered");
}

int store_open(const store_config *cfg, const store_options *opt, store **out, char *err,
               size_t errlen)
{
    char scratch[256];
    if (!err || !errlen) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    if (!cfg || !out) {
        snprintf(err, errlen, "store_open: missing argument");
        return MS_ERR_INVALID;
    }
    *out = NULL;
    store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return MS_ERR_NOMEM;
    }
    s->cfg = *cfg;
    if (opt)
        s->opt = *opt;
    if (s->opt.sqlite_readers <= 0)
        s->opt.sqlite_readers = 2;
    if (s->opt.sqlite_batch_max <= 0)
        s->opt.sqlite_batch_max = 256;
    if (s->opt.queue_max <= 0)
        s->opt.queue_max = 65536;
    s->kind = store_config_backend(cfg);
    s->id_format = cfg->id_format; /* the backend refuses a store recorded with the other */
    int rc = ms_snowflake_init(&s->ids, cfg->epoch_ms, (uint32_t)cfg->worker_id, 2000, NULL, NULL);
    if (rc != 0) {
        snprintf(err, errlen,
                 "invalid id generator settings (MSGSTORE_EPOCH_MS, MSGSTORE_WORKER_ID)");
        free(s);
        return rc;
    }
    pthread_mutex_init(&s->bind_mu, NULL);
    pthread_mutex_init(&s->co_mu, NULL);
    register_metrics(s);
    if (s->kind == MS_BACKEND_SCYLLA)
        rc = store__scylla_open(s, &s->cfg, &s->opt, &s->be, err, errlen);
    else
        rc = store__sqlite_open(s, &s->cfg, &s->opt, &s->be, err, errlen);
    if (rc != 0) {
        pthread_mutex_destroy(&s->bind_mu);
        pthread_mutex_destroy(&s->co_mu);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void store_close(store *s)
{
    if (!s)
        return;
    atomic_store(&s->closing, true);
    s->be->vt->close(s->be);
    pthread_mutex_lock(&s->bind_mu);
    size_t left = s->nbinds;
    pthread_mutex_unlock(&s->bind_mu);
    if (left)
        MS_WARN("store",
                "store_close: %zu event loop(s) still attached (store_loop_detach "
                "was not called); their handles are leaked",
                left);
    free(s->binds);
    pthread_mutex_destroy(&s->bind_mu);
    pthread_mutex_destroy(&s->co_mu);
    free(s);
}

void store_get_stats(const store *s, store_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return;
    for (int k = 0; k < STORE_OP_COUNT; k++) {
        out->ops[k].calls = atomic_load_explicit(&s->st[k].calls, memory_order_relaxed);
        out->ops[k].errors = atomic_load_explicit(&s->st[k].errors, memory_order_relaxed);
        out->ops[k].queries = atomic_load_explicit(&s->st[k].queries, memory_order_relaxed);
        out->ops[k].coalesced = atomic_load_explicit(&s->st[k].coalesced, memory_order_relaxed);
    }
    out->queue_depth = atomic_load_explicit(&s->pending, memory_order_relaxed);
    if (s->be->vt->stats)
        s->be->vt->stats(s->be, out);
}

int store_repair_counts_sync(store *s, store_repair_report *out, char *detail, size_t dlen)
{
    store_repair_report scratch;
    if (!out)
        out = &scratch;
    memset(out, 0, sizeof *out);
    if (detail && dlen)
        detail[0] = '\0';
    if (!s)
        return MS_ERR_INVALID;
    if (atomic_load(&s->closing))
        return MS_ERR_SHUTDOWN;
    if (!s->be->vt->repair)
        return 0;
    char scratch_detail[STORE_DETAIL_LEN];
    if (!detail || !dlen) {
        detail = scratch_detail;
        dlen = sizeof scratch_detail;
    }
    return s->be->vt->repair(s->be, out, detail, dlen);
}

int store_inject_fault(store *s, store_fault fault, int times)
{
    if (!s || times < 0 || fault < STORE_FAULT_COUNTER_LOST || fault > STORE_FAULT_LAST)
        return MS_ERR_INVALID;
    if (!s->be->vt->inject)
        return MS_ERR_UNPROCESSABLE;
    return s->be->vt->inject(s->be, fault, times);
}

int store_migrate(const store_config *cfg, store_migrate_progress_fn progress, void *ctx,
                  int *applied, char *err, size_t errlen)
{
    char scratch[256];
    if (!err || !errlen) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    if (applied)
        *applied = 0;
    if (!cfg) {
        snprintf(err, errlen, "store_migrate: missing configuration");
        return MS_ERR_INVALID;
    }
    if (store_config_backend(cfg) == MS_BACKEND_SCYLLA)
        return store__scylla_migrate(cfg, progress, ctx, applied, err, errlen);
    return store__sqlite_migrate_path(cfg->sqlite_path, cfg->id_format, progress, ctx, applied, err,
                                      errlen);
}
