/* SPDX-License-Identifier: Apache-2.0 */
/* tq.c - deadline queue on one uv_timer_t (see tq.h). */
#include "cql/tq.h"

#include "core/error.h"

#include <stdlib.h>

static void swap_at(cql_tq *q, size_t i, size_t j)
{
    cql_tq_node *t = q->heap[i];
    q->heap[i] = q->heap[j];
    q->heap[j] = t;
    q->heap[i]->index = (uint32_t)i + 1;
    q->heap[j]->index = (uint32_t)j + 1;
}

static void sift_up(cql_tq *q, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (q->heap[p]->at <= q->heap[i]->at)
            break;
        swap_at(q, i, p);
        i = p;
    }
}

static void sift_down(cql_tq *q, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < q->n && q->heap[l]->at < q->heap[m]->at)
            m = l;
        if (r < q->n && q->heap[r]->at < q->heap[m]->at)
            m = r;
        if (m == i)
            return;
        swap_at(q, i, m);
        i = m;
    }
}

static void on_timer(uv_timer_t *t);
static void on_kick(uv_idle_t *h);

static void rearm(cql_tq *q)
{
    if (q->closing)
        return;
    if (q->n == 0) {
        if (q->armed_at != UINT64_MAX) {
            uv_timer_stop(&q->timer);
            q->armed_at = UINT64_MAX;
        }
        return;
    }
    uint64_t at = q->heap[0]->at;
    if (at == q->armed_at)
        return;
    uint64_t now = uv_now(q->timer.loop);
    if (at <= now) {
        /* due now: an idle handle runs it on the next iteration, after I/O
         * is polled (a 0 ms timer would run again within this timer pass) */
        if (!uv_is_active((uv_handle_t *)&q->kick))
            uv_idle_start(&q->kick, on_kick);
        return;
    }
    uv_timer_start(&q->timer, on_timer, at - now, 0);
    q->armed_at = at;
}

int cql__tq_init(cql_tq *q, uv_loop_t *loop)
{
    q->heap = NULL;
    q->n = q->cap = 0;
    q->armed_at = UINT64_MAX;
    q->seq = 0;
    q->closing = false;
    q->close_cb = NULL;
    if (uv_timer_init(loop, &q->timer) < 0)
        return MS_ERR_IO;
    if (uv_idle_init(loop, &q->kick) < 0) {
        uv_close((uv_handle_t *)&q->timer, NULL);
        return MS_ERR_IO;
    }
    q->timer.data = q;
    q->kick.data = q;
    q->open_handles = 2;
    return 0;
}

static void on_tq_closed(uv_handle_t *h)
{
    cql_tq *q = h->data;
    if (--q->open_handles == 0 && q->close_cb)
        q->close_cb((uv_handle_t *)&q->timer);
}

void cql__tq_close(cql_tq *q, uv_close_cb close_cb)
{
    q->closing = true;
    q->close_cb = close_cb;
    uv_timer_stop(&q->timer);
    uv_idle_stop(&q->kick);
    uv_close((uv_handle_t *)&q->timer, on_tq_closed);
    uv_close((uv_handle_t *)&q->kick, on_tq_closed);
}

void cql__tq_free(cql_tq *q)
{
    for (size_t i = 0; i < q->n; i++)
        q->heap[i]->index = 0;
    free(q->heap);
    q->heap = NULL;
    q->n = q->cap = 0;
}

static void remove_at(cql_tq *q, size_t i)
{
    cql_tq_node *n = q->heap[i];
    q->n--;
    if (i != q->n) {
        q->heap[i] = q->heap[q->n];
        q->heap[i]->index = (uint32_t)i + 1;
        sift_down(q, i);
        sift_up(q, i);
    }
    n->index = 0;
}

int cql__tq_add(cql_tq *q, cql_tq_node *n, uint64_t at, cql_tq_fn fn)
{
    if (n->index)
        remove_at(q, n->index - 1);
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        cql_tq_node **h = realloc(q->heap, cap * sizeof(*h));
        if (!h)
            return MS_ERR_NOMEM;
        q->heap = h;
        q->cap = cap;
    }
    n->at = at;
    n->fn = fn;
    n->seq = q->seq++;
    q->heap[q->n] = n;
    n->index = (uint32_t)++q->n;
    sift_up(q, q->n - 1);
    if (q->heap[0] == n)
        rearm(q);
    return 0;
}

void cql__tq_remove(cql_tq *q, cql_tq_node *n)
{
    if (!n->index)
        return;
    remove_at(q, n->index - 1);
    /* leave the timer armed for an earlier time: it fires and re-arms */
}

void cql__tq_run(cql_tq *q, uint64_t now)
{
    uint64_t limit = q->seq;
    while (q->n > 0 && q->heap[0]->at <= now && q->heap[0]->seq < limit) {
        cql_tq_node *n = q->heap[0];
        remove_at(q, 0);
        n->fn(n); /* may add or remove nodes */
    }
    if (q->armed_at != UINT64_MAX)
        q->armed_at = UINT64_MAX - 1; /* the timer may be set for later: re-arm */
    rearm(q);
}

static void on_timer(uv_timer_t *t)
{
    cql_tq *q = t->data;
    q->armed_at = UINT64_MAX;
    cql__tq_run(q, uv_now(t->loop));
}

static void on_kick(uv_idle_t *h)
{
    cql_tq *q = h->data;
    uv_idle_stop(&q->kick);
    cql__tq_run(q, uv_now(h->loop));
}
