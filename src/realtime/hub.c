/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hub.c - in-process fan-out: channel table with replay rings, per-worker
 * subscriber registries, bounded subscriber queues.
 *
 * Locks: the channel table is split into RT_STRIPES stripes, each with its
 * own mutex, held only for a channel lookup, a ring append and reading the
 * channel's worker mask. Delivery to a worker goes through its lock-free
 * inbox (a Treiber stack the worker takes whole) and a uv_async; everything
 * about subscribers happens on their worker's loop without a lock.
 */
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "realtime/internal.h"

#include <assert.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define RT_STRIPES      64
#define RT_MAX_WORKERS  RT_HUB_MAX_WORKERS
#define MASK_WORDS      (RT_MAX_WORKERS / 64)
#define SWEEP_PERIOD_MS 5000
#define EPH_PERIOD_MS   500

/* ---------------------------------------------------------------- types */

typedef struct rt_chan {
    ms_xid id;
    uint64_t workers[MASK_WORDS]; /* bit w: worker w has subscribers of this channel */
    uint32_t nworkers;            /* bits set in workers */
    uint64_t next_seq;            /* arrival order on this instance */
    uint64_t covered_since;       /* the ring holds every local event after this position */
    int64_t idle_since_ms;        /* when the last subscriber left; 0 while followed */
    bool has_ring;
    rt_msg **ring;
    uint32_t ring_cap, ring_head, ring_len;
    size_t ring_bytes;
} rt_chan;

typedef struct {
    pthread_mutex_t mu;
    rt_map chans;
    char _pad[64];
} rt_stripe;

enum { OP_EVENT = 0, OP_GAP = 1 };

typedef struct inbox_node {
    struct inbox_node *next;
    rt_msg *msg; /* OP_EVENT */
    uint32_t op;
    uint32_t shard;  /* OP_GAP */
    char reason[24]; /* OP_GAP */
} inbox_node;

typedef struct rt_member rt_member;

/* A channel followed on one worker: its members (subscriber, channel). */
typedef struct {
    ms_xid id;
    rt_member *head;
    uint32_t n;
} rt_lchan;

struct rt_member {
    rt_sub *sub;
    rt_lchan *lc;
    rt_member *prev, *next;
    uint64_t join_seq; /* events with a smaller seq came through the replay */
};

typedef struct rt_worker {
    rt_hub *hub;
    int idx;
    uv_loop_t *loop;
    uv_async_t async;
    uv_timer_t sweep;
    uv_timer_t eph; /* worker 0 only: typing/presence expiry */
    _Atomic bool alive;
    _Atomic int senders; /* publishers between checking alive and uv_async_send */
    _Atomic(inbox_node *) inbox;
    rt_map local; /* channel -> rt_lchan, this worker's registry */
    rt_sub *ready_head, *ready_tail;
    char _pad[64];
} rt_worker;

struct rt_sub {
    rt_hub *hub;
    rt_worker *w;
    rt_ready_fn ready;
    void *ctx;
    rt_msg **q;
    uint32_t qcap, qhead, qlen;
    size_t qbytes;
    rt_member **chans;
    uint32_t nchans, chans_cap;
    bool closing;
    bool in_ready;
    rt_sub *ready_next, *ready_prev;
};

struct rt_hub {
    rt_hub_options o;
    uint64_t instance;
    ms_snowflake ids;
    rt_stripe stripes[RT_STRIPES];
    rt_worker *workers;
    _Atomic(rt_bridge *) bridge;
    _Atomic int bridge_users;      /* threads using the bridge pointer right now */
    _Atomic uint32_t *shard_refs;  /* channels with local subscribers per shard */
    _Atomic uint64_t *shard_since; /* see rt__hub_shard_since_set */
    _Atomic int64_t nchannels;
    _Atomic int64_t nsubs;
    _Atomic uint64_t published, delivered, overflows, resyncs;
    rt_ephemeral *eph;
    ms_gauge *m_subs;
    ms_counter *m_published, *m_delivered, *m_overflows, *m_resyncs;
};

/* --------------------------------------------------------------- options */

void rt_hub_options_default(rt_hub_options *o)
{
    memset(o, 0, sizeof *o);
    o->workers = 1;
    o->queue_max = 1024;
    o->queue_bytes = 4u << 20;
    o->ring_events = 256;
    o->ring_bytes = 512u << 10;
    o->ring_idle_ms = 300000;
    o->max_channels = 100000;
    o->replay_grace_ms = 1000;
    o->shards = 64;
    o->worker_id = 0;
    o->epoch_ms = MS_SNOWFLAKE_EPOCH_DISCORD;
    o->id_format = MS_ID_UUID;
}

/* ---------------------------------------------------------------- create */

int rt_hub_create(const rt_hub_options *o, rt_hub **out)
{
    *out = NULL;
    if (o->workers < 1 || o->workers > RT_MAX_WORKERS || o->queue_max < 2 ||
        o->queue_bytes < 1024 || o->shards < 1 || o->shards > 4096 || o->worker_id < 0 ||
        o->worker_id > (int)MS_SNOWFLAKE_MAX_WORKER || o->replay_grace_ms < 0)
        return MS_ERR_INVALID;
    rt_hub *h = calloc(1, sizeof *h);
    if (!h)
        return MS_ERR_NOMEM;
    h->o = *o;
    if (h->o.epoch_ms == 0)
        h->o.epoch_ms = MS_SNOWFLAKE_EPOCH_DISCORD;
    if (ms_snowflake_init(&h->ids, h->o.epoch_ms, (uint32_t)o->worker_id, 2000, NULL, NULL) != 0) {
        free(h);
        return MS_ERR_INVALID;
    }
    if (getrandom(&h->instance, sizeof h->instance, 0) != sizeof h->instance)
        h->instance = (uint64_t)rt__now_us() ^ ((uint64_t)getpid() << 32);
    h->instance |= 1; /* never 0 */
    h->workers = calloc((size_t)o->workers, sizeof *h->workers);
    h->shard_refs = calloc(o->shards, sizeof *h->shard_refs);
    h->shard_since = calloc(o->shards, sizeof *h->shard_since);
    if (!h->workers || !h->shard_refs || !h->shard_since || rt__ephemeral_create(&h->eph) != 0) {
        free(h->workers);
        free(h->shard_refs);
        free(h->shard_since);
        free(h);
        return MS_ERR_NOMEM;
    }
    for (int i = 0; i < RT_STRIPES; i++)
        pthread_mutex_init(&h->stripes[i].mu, NULL);
    for (int i = 0; i < o->workers; i++) {
        h->workers[i].hub = h;
        h->workers[i].idx = i;
    }
    /* Without a bridge every shard's stream is complete from the start. */
    for (uint32_t s = 0; s < o->shards; s++)
        atomic_init(&h->shard_since[s], 0);
    h->m_subs = ms_gauge_get("msgstore_rt_subscribers", NULL, "real-time subscribers connected");
    h->m_published =
        ms_counter_get("msgstore_rt_events_published_total", NULL, "events published here");
    h->m_delivered = ms_counter_get("msgstore_rt_events_delivered_total", NULL,
                                    "events queued to local subscribers");
    h->m_overflows = ms_counter_get("msgstore_rt_overflows_total", NULL,
                                    "subscribers closed because their queue overflowed");
    h->m_resyncs = ms_counter_get("msgstore_rt_resyncs_total", NULL, "resync events sent");
    *out = h;
    return 0;
}

uint64_t rt_hub_instance(const rt_hub *h)
{
    return h->instance;
}

rt_ephemeral *rt__hub_ephemeral(rt_hub *h)
{
    return h->eph;
}

rt_bridge *rt__hub_bridge_acquire(rt_hub *h)
{
    atomic_fetch_add(&h->bridge_users, 1);
    return atomic_load(&h->bridge);
}

void rt__hub_bridge_release(rt_hub *h)
{
    atomic_fetch_sub(&h->bridge_users, 1);
}

void rt__hub_set_bridge(rt_hub *h, rt_bridge *b)
{
    /* With a bridge, a shard's remote stream is incomplete until subscribed. */
    for (uint32_t s = 0; s < h->o.shards; s++)
        atomic_store(&h->shard_since[s], b ? UINT64_MAX : 0);
    atomic_store(&h->bridge, b);
    if (!b) {
        /* Whoever loaded the old pointer is done with it when this returns. */
        while (atomic_load(&h->bridge_users) > 0)
            sched_yield();
    }
}

uint32_t rt__hub_shards(const rt_hub *h)
{
    return h->o.shards;
}

uint32_t rt__hub_shard(const rt_hub *h, ms_xid channel)
{
    return (uint32_t)(rt__mix64(ms_xid_key64(channel)) % h->o.shards);
}

ms_id_format rt__hub_id_format(const rt_hub *h)
{
    return h->o.id_format;
}

bool rt__hub_shard_wanted(rt_hub *h, uint32_t shard)
{
    return atomic_load_explicit(&h->shard_refs[shard], memory_order_relaxed) > 0;
}

void rt__hub_shard_since_set(rt_hub *h, uint32_t shard, uint64_t position)
{
    atomic_store(&h->shard_since[shard], position);
}

uint64_t rt__hub_position_at(const rt_hub *h, int64_t unix_ms)
{
    return ms_snowflake_from_unix_ms(unix_ms < 0 ? 0 : (uint64_t)unix_ms, h->o.epoch_ms);
}

/* ----------------------------------------------------------------- rings */

static void ring_clear(rt_chan *c)
{
    for (uint32_t i = 0; i < c->ring_len; i++)
        rt_msg_unref(c->ring[(c->ring_head + i) % c->ring_cap]);
    free(c->ring);
    c->ring = NULL;
    c->ring_cap = c->ring_head = c->ring_len = 0;
    c->ring_bytes = 0;
}

static void ring_evict_oldest(rt_chan *c)
{
    rt_msg *old = c->ring[c->ring_head];
    if (old->position > c->covered_since)
        c->covered_since = old->position;
    c->ring_bytes -= old->len;
    rt_msg_unref(old);
    c->ring_head = (c->ring_head + 1) % c->ring_cap;
    c->ring_len--;
}

/* Appends msg (taking a reference); on allocation failure the ring restarts from msg. */
static void ring_push(rt_hub *h, rt_chan *c, rt_msg *msg)
{
    if (!c->has_ring || h->o.ring_events == 0)
        return;
    while (c->ring_len > 0 &&
           (c->ring_len >= h->o.ring_events || c->ring_bytes + msg->len > h->o.ring_bytes))
        ring_evict_oldest(c);
    if (msg->len > h->o.ring_bytes) {
        /* Too big to keep: the ring can no longer vouch for this position. */
        if (msg->position > c->covered_since)
            c->covered_since = msg->position;
        return;
    }
    if (c->ring_len == c->ring_cap) {
        uint32_t ncap = c->ring_cap ? c->ring_cap * 2 : 8;
        if (ncap > h->o.ring_events)
            ncap = h->o.ring_events;
        rt_msg **nr = malloc(ncap * sizeof *nr);
        if (!nr) {
            uint64_t last =
                c->ring_len ? c->ring[(c->ring_head + c->ring_len - 1) % c->ring_cap]->position : 0;
            ring_clear(c);
            c->covered_since = msg->position > last ? msg->position : last;
            return;
        }
        for (uint32_t i = 0; i < c->ring_len; i++)
            nr[i] = c->ring[(c->ring_head + i) % c->ring_cap];
        free(c->ring);
        c->ring = nr;
        c->ring_cap = ncap;
        c->ring_head = 0;
    }
    c->ring[(c->ring_head + c->ring_len) % c->ring_cap] = rt_msg_ref(msg);
    c->ring_len++;
    c->ring_bytes += msg->len;
}

static void chan_free(rt_chan *c)
{
    ring_clear(c);
    free(c);
}

static rt_stripe *stripe_of(rt_hub *h, ms_xid channel)
{
    return &h->stripes[rt__mix64(ms_xid_key64(channel) ^ 0x5bd1e995u) % RT_STRIPES];
}

/* ---------------------------------------------------------------- queues */

static void ready_link(rt_sub *s)
{
    if (s->in_ready)
        return;
    rt_worker *w = s->w;
    s->in_ready = true;
    s->ready_next = NULL;
    s->ready_prev = w->ready_tail;
    if (w->ready_tail)
        w->ready_tail->ready_next = s;
    else
        w->ready_head = s;
    w->ready_tail = s;
}

static void ready_unlink(rt_sub *s)
{
    if (!s->in_ready)
        return;
    rt_worker *w = s->w;
    if (s->ready_prev)
        s->ready_prev->ready_next = s->ready_next;
    else
        w->ready_head = s->ready_next;
    if (s->ready_next)
        s->ready_next->ready_prev = s->ready_prev;
    else
        w->ready_tail = s->ready_prev;
    s->in_ready = false;
    s->ready_next = s->ready_prev = NULL;
}

/* Calls the ready callbacks of subscribers whose queue became non-empty. */
static void ready_run(rt_worker *w)
{
    while (w->ready_head) {
        rt_sub *s = w->ready_head;
        ready_unlink(s);
        s->ready(s, s->ctx); /* may destroy s or others: they unlink themselves */
    }
}

static void q_drop_all(rt_sub *s)
{
    while (s->qlen) {
        rt_msg_unref(s->q[s->qhead]);
        s->qhead = (s->qhead + 1) % s->qcap;
        s->qlen--;
    }
    s->qbytes = 0;
}

/* Appends (taking a reference); false when the queue cannot grow. */
static bool q_append(rt_sub *s, rt_msg *msg)
{
    if (s->qlen == s->qcap) {
        uint32_t ncap = s->qcap ? s->qcap * 2 : 4;
        uint32_t limit = s->hub->o.queue_max + 1; /* +1: room for the overflow resync */
        if (ncap > limit)
            ncap = limit;
        if (ncap <= s->qcap)
            return false;
        rt_msg **nq = malloc(ncap * sizeof *nq);
        if (!nq)
            return false;
        for (uint32_t i = 0; i < s->qlen; i++)
            nq[i] = s->q[(s->qhead + i) % s->qcap];
        free(s->q);
        s->q = nq;
        s->qcap = ncap;
        s->qhead = 0;
    }
    s->q[(s->qhead + s->qlen) % s->qcap] = rt_msg_ref(msg);
    s->qlen++;
    s->qbytes += msg->len;
    return true;
}

/*
 * The subscriber cannot keep up: forget what it has queued, leave it one
 * resync event for the whole connection and mark it closing.
 */
static void overflow(rt_sub *s)
{
    rt_hub *h = s->hub;
    q_drop_all(s);
    s->closing = true;
    rt_msg *r = rt__msg_resync(h->o.id_format, (ms_xid){0, 0}, "overflow");
    if (r) {
        q_append(s, r); /* the queue is empty: this cannot fail unless qcap is 0 */
        rt_msg_unref(r);
    }
    atomic_fetch_add_explicit(&h->overflows, 1, memory_order_relaxed);
    ms_counter_add(h->m_overflows, 1);
    ready_link(s);
}

/* Queues msg for s; overflow when the bounds are reached. */
static void sub_push(rt_sub *s, rt_msg *msg)
{
    if (s->closing)
        return;
    rt_hub *h = s->hub;
    if (s->qlen >= h->o.queue_max || (s->qlen > 0 && s->qbytes + msg->len > h->o.queue_bytes) ||
        !q_append(s, msg)) {
        overflow(s);
        return;
    }
    if (msg->kind == RT_RESYNC) {
        atomic_fetch_add_explicit(&h->resyncs, 1, memory_order_relaxed);
        ms_counter_add(h->m_resyncs, 1);
    }
    if (s->qlen == 1)
        ready_link(s);
}

rt_msg *rt_sub_pop(rt_sub *s)
{
    if (s->qlen == 0)
        return NULL;
    rt_msg *m = s->q[s->qhead];
    s->qhead = (s->qhead + 1) % s->qcap;
    s->qlen--;
    s->qbytes -= m->len;
    if (s->qlen == 0 && s->qcap > 64 && !s->closing) {
        /* Give a burst's memory back: an idle subscriber keeps no big array. */
        free(s->q);
        s->q = NULL;
        s->qcap = s->qhead = 0;
    }
    return m;
}

uint32_t rt_sub_queued(const rt_sub *s)
{
    return s->qlen;
}

bool rt_sub_closing(const rt_sub *s)
{
    return s->closing;
}

/* -------------------------------------------------------------- delivery */

static void deliver_event(rt_worker *w, rt_msg *msg)
{
    rt_lchan *lc = rt__map_get(&w->local, msg->channel);
    if (!lc)
        return;
    uint64_t n = 0;
    for (rt_member *m = lc->head; m; m = m->next) {
        if (msg->seq < m->join_seq)
            continue; /* the subscriber got it from the replay */
        sub_push(m->sub, msg);
        n++;
    }
    atomic_fetch_add_explicit(&w->hub->delivered, n, memory_order_relaxed);
    ms_counter_add(w->hub->m_delivered, n);
}

static void deliver_gap(rt_worker *w, uint32_t shard, const char *reason)
{
    rt_hub *h = w->hub;
    for (uint32_t i = 0; i < w->local.cap; i++) {
        rt_lchan *lc = w->local.vals[i];
        if (ms_xid_is_none(w->local.keys[i]) ||
            (shard != UINT32_MAX && rt__hub_shard(h, lc->id) != shard))
            continue;
        rt_msg *r = rt__msg_resync(h->o.id_format, lc->id, reason);
        if (!r)
            continue;
        for (rt_member *m = lc->head; m; m = m->next)
            sub_push(m->sub, r);
        rt_msg_unref(r);
    }
}

static void on_async(uv_async_t *a)
{
    rt_worker *w = a->data;
    inbox_node *list = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
    /* The stack is newest first: reverse it to keep arrival order. */
    inbox_node *rev = NULL;
    while (list) {
        inbox_node *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev) {
        inbox_node *n = rev;
        rev = n->next;
        if (n->op == OP_EVENT) {
            deliver_event(w, n->msg);
            rt_msg_unref(n->msg);
        } else {
            deliver_gap(w, n->shard, n->reason);
        }
        free(n);
    }
    ready_run(w);
}

static void inbox_push(rt_worker *w, inbox_node *n)
{
    inbox_node *head = atomic_load_explicit(&w->inbox, memory_order_relaxed);
    do {
        n->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&w->inbox, &head, n, memory_order_release,
                                                    memory_order_relaxed));
}

/* Wakes a worker unless it is detaching (then the node is dropped at detach). */
static void worker_wake(rt_worker *w)
{
    atomic_fetch_add(&w->senders, 1);
    if (atomic_load(&w->alive))
        uv_async_send(&w->async);
    atomic_fetch_sub(&w->senders, 1);
}

void rt__hub_dispatch(rt_hub *h, rt_msg *msg, bool to_bridge)
{
    rt_stripe *st = stripe_of(h, msg->channel);
    uint64_t mask[MASK_WORDS] = {0};
    pthread_mutex_lock(&st->mu);
    rt_chan *c = rt__map_get(&st->chans, msg->channel);
    if (c) {
        msg->seq = c->next_seq++;
        if (!rt_kind_ephemeral((rt_kind)msg->kind))
            ring_push(h, c, msg);
        memcpy(mask, c->workers, sizeof mask);
    }
    pthread_mutex_unlock(&st->mu);
    for (int i = 0; i < h->o.workers; i++) {
        if (!(mask[i / 64] >> (i % 64) & 1))
            continue;
        rt_worker *w = &h->workers[i];
        inbox_node *n = malloc(sizeof *n);
        if (!n)
            continue; /* those subscribers miss it; their next resume resyncs */
        n->op = OP_EVENT;
        n->msg = rt_msg_ref(msg);
        inbox_push(w, n);
        worker_wake(w);
    }
    if (to_bridge) {
        rt_bridge *b = rt__hub_bridge_acquire(h);
        if (b)
            rt__bridge_enqueue(b, msg);
        rt__hub_bridge_release(h);
    }
    rt_msg_unref(msg);
}

int rt_publish(rt_hub *h, rt_kind kind, ms_xid channel, const char *data, size_t len,
               uint64_t *position_out)
{
    if ((unsigned)kind >= RT_KIND_COUNT || kind == RT_RESYNC || ms_xid_is_none(channel))
        return MS_ERR_INVALID;
    uint64_t pos;
    int rc = ms_snowflake_next(&h->ids, &pos);
    if (rc != 0)
        return rc;
    rt_msg *m = rt__msg_render(kind, h->o.id_format, channel, pos, data, len);
    if (!m)
        return MS_ERR_NOMEM;
    m->origin = h->instance;
    if (position_out)
        *position_out = pos;
    atomic_fetch_add_explicit(&h->published, 1, memory_order_relaxed);
    ms_counter_add(h->m_published, 1);
    rt__hub_dispatch(h, m, true);
    return 0;
}

void rt__hub_shard_gap(rt_hub *h, uint32_t shard, const char *reason)
{
    for (int i = 0; i < h->o.workers; i++) {
        rt_worker *w = &h->workers[i];
        if (!atomic_load(&w->alive))
            continue;
        inbox_node *n = calloc(1, sizeof *n);
        if (!n)
            continue;
        n->op = OP_GAP;
        n->shard = shard;
        snprintf(n->reason, sizeof n->reason, "%s", reason);
        inbox_push(w, n);
        worker_wake(w);
    }
}

/* ----------------------------------------------------------------- sweep */

/* Drops the rings of channels nobody here followed for ring_idle_ms. */
static void sweep_stripe(rt_hub *h, rt_stripe *st, int64_t now)
{
    ms_xid victims[64];
    size_t nv;
    do {
        nv = 0;
        pthread_mutex_lock(&st->mu);
        for (uint32_t i = 0; i < st->chans.cap && nv < 64; i++) {
            rt_chan *c = st->chans.vals[i];
            if (!ms_xid_is_none(st->chans.keys[i]) && c->nworkers == 0 && c->idle_since_ms &&
                now - c->idle_since_ms >= h->o.ring_idle_ms)
                victims[nv++] = st->chans.keys[i];
        }
        for (size_t i = 0; i < nv; i++) {
            chan_free(rt__map_del(&st->chans, victims[i]));
            atomic_fetch_sub(&h->nchannels, 1);
        }
        pthread_mutex_unlock(&st->mu);
    } while (nv == 64);
}

static void on_sweep(uv_timer_t *t)
{
    rt_worker *w = t->data;
    rt_hub *h = w->hub;
    int64_t now = rt__now_ms();
    for (int i = 0; i < RT_STRIPES; i++)
        sweep_stripe(h, &h->stripes[i], now);
}

static void on_eph(uv_timer_t *t)
{
    rt_worker *w = t->data;
    rt_ephemeral_sweep(w->hub);
}

/* --------------------------------------------------------------- workers */

int rt_hub_attach(rt_hub *h, int worker, uv_loop_t *loop)
{
    if (worker < 0 || worker >= h->o.workers || atomic_load(&h->workers[worker].alive))
        return MS_ERR_INVALID;
    rt_worker *w = &h->workers[worker];
    w->loop = loop;
    int rc = uv_async_init(loop, &w->async, on_async);
    if (rc != 0)
        return rc;
    w->async.data = w;
    if (worker == 0) {
        /* Worker 0 keeps the time-based chores: idle rings, typing/presence expiry. */
        uv_timer_init(loop, &w->sweep);
        w->sweep.data = w;
        uv_timer_start(&w->sweep, on_sweep, SWEEP_PERIOD_MS, SWEEP_PERIOD_MS);
        uv_unref((uv_handle_t *)&w->sweep);
        uv_timer_init(loop, &w->eph);
        w->eph.data = w;
        uv_timer_start(&w->eph, on_eph, EPH_PERIOD_MS, EPH_PERIOD_MS);
        uv_unref((uv_handle_t *)&w->eph);
    }
    atomic_store(&w->alive, true);
    return 0;
}

void rt_hub_detach(rt_hub *h, int worker)
{
    if (worker < 0 || worker >= h->o.workers)
        return;
    rt_worker *w = &h->workers[worker];
    if (!atomic_load(&w->alive))
        return;
    atomic_store(&w->alive, false);
    while (atomic_load(&w->senders) > 0)
        sched_yield();
    uv_close((uv_handle_t *)&w->async, NULL);
    if (worker == 0) {
        uv_timer_stop(&w->sweep);
        uv_close((uv_handle_t *)&w->sweep, NULL);
        uv_timer_stop(&w->eph);
        uv_close((uv_handle_t *)&w->eph, NULL);
    }
    inbox_node *list = atomic_exchange(&w->inbox, NULL);
    while (list) {
        inbox_node *next = list->next;
        rt_msg_unref(list->msg);
        free(list);
        list = next;
    }
    assert(w->local.len == 0);
    rt__map_free(&w->local);
}

void rt_hub_destroy(rt_hub *h)
{
    if (!h)
        return;
    for (int i = 0; i < h->o.workers; i++) {
        /* Late publishes may have left nodes in a detached worker's inbox. */
        inbox_node *list = atomic_exchange(&h->workers[i].inbox, NULL);
        while (list) {
            inbox_node *next = list->next;
            rt_msg_unref(list->msg);
            free(list);
            list = next;
        }
        rt__map_free(&h->workers[i].local);
    }
    for (int i = 0; i < RT_STRIPES; i++) {
        rt_stripe *st = &h->stripes[i];
        for (uint32_t j = 0; j < st->chans.cap; j++)
            if (!ms_xid_is_none(st->chans.keys[j]))
                chan_free(st->chans.vals[j]);
        rt__map_free(&st->chans);
        pthread_mutex_destroy(&st->mu);
    }
    rt__ephemeral_destroy(h->eph);
    free(h->workers);
    free((void *)h->shard_refs);
    free((void *)h->shard_since);
    free(h);
}

void rt_hub_stats_get(rt_hub *h, rt_hub_stats *out)
{
    out->subscribers = atomic_load(&h->nsubs);
    out->channels = atomic_load(&h->nchannels);
    out->published = atomic_load(&h->published);
    out->delivered = atomic_load(&h->delivered);
    out->overflows = atomic_load(&h->overflows);
    out->resyncs = atomic_load(&h->resyncs);
}

/* ----------------------------------------------------------- subscribers */

int rt_sub_create(rt_hub *h, int worker, rt_ready_fn ready, void *ctx, rt_sub **out)
{
    *out = NULL;
    if (worker < 0 || worker >= h->o.workers || !ready || !atomic_load(&h->workers[worker].alive))
        return MS_ERR_INVALID;
    rt_sub *s = calloc(1, sizeof *s);
    if (!s)
        return MS_ERR_NOMEM;
    s->hub = h;
    s->w = &h->workers[worker];
    s->ready = ready;
    s->ctx = ctx;
    atomic_fetch_add(&h->nsubs, 1);
    ms_gauge_add(h->m_subs, 1);
    *out = s;
    return 0;
}

bool rt_sub_follows(const rt_sub *s, ms_xid channel)
{
    for (uint32_t i = 0; i < s->nchans; i++)
        if (ms_xid_eq(s->chans[i]->lc->id, channel))
            return true;
    return false;
}

/*
 * Under the stripe lock: collects into *out (malloc'd, *n entries, each
 * with a reference) the ring's events the subscriber missed after `since`,
 * or returns false when the ring cannot vouch for them.
 */
static bool ring_replay(rt_hub *h, rt_chan *c, uint64_t since, rt_msg ***out, uint32_t *n)
{
    *out = NULL;
    *n = 0;
    uint32_t shard = rt__hub_shard(h, c->id);
    uint64_t remote_since = atomic_load(&h->shard_since[shard]);
    if (!c->has_ring || since < c->covered_since || since < remote_since)
        return false;
    /* Found: everything that arrived after it. Not found: every position past
     * since minus the grace (events of other instances may arrive a little out
     * of position order); the client drops what it already has. */
    uint32_t start = 0;
    bool found = false;
    for (uint32_t i = 0; i < c->ring_len && !found; i++) {
        if (c->ring[(c->ring_head + i) % c->ring_cap]->position == since) {
            start = i + 1;
            found = true;
        }
    }
    uint64_t floor = 0;
    bool by_position = false;
    if (!found) {
        int64_t t = (int64_t)(ms_snowflake_time(since) + h->o.epoch_ms) - h->o.replay_grace_ms;
        floor = rt__hub_position_at(h, t);
        by_position = true;
        start = 0;
    }
    if (c->ring_len == start)
        return true;
    rt_msg **v = malloc((c->ring_len - start) * sizeof *v);
    if (!v)
        return false;
    for (uint32_t i = start; i < c->ring_len; i++) {
        rt_msg *m = c->ring[(c->ring_head + i) % c->ring_cap];
        if (by_position && (m->position <= floor || m->position == since))
            continue;
        v[(*n)++] = rt_msg_ref(m);
    }
    *out = v;
    return true;
}

int rt_sub_add(rt_sub *s, ms_xid channel, bool has_since, uint64_t since)
{
    if (ms_xid_is_none(channel))
        return MS_ERR_INVALID;
    if (rt_sub_follows(s, channel))
        return 0;
    if (s->nchans >= RT_SUB_MAX_CHANNELS)
        return MS_ERR_TOO_LARGE;
    rt_hub *h = s->hub;
    rt_worker *w = s->w;
    if (s->nchans == s->chans_cap) {
        uint32_t ncap = s->chans_cap ? s->chans_cap * 2 : 2;
        rt_member **nc = realloc(s->chans, ncap * sizeof *nc);
        if (!nc)
            return MS_ERR_NOMEM;
        s->chans = nc;
        s->chans_cap = ncap;
    }
    rt_member *m = calloc(1, sizeof *m);
    if (!m)
        return MS_ERR_NOMEM;
    rt_lchan *lc = rt__map_get(&w->local, channel);
    bool new_lc = false;
    if (!lc) {
        lc = calloc(1, sizeof *lc);
        if (!lc || rt__map_put(&w->local, channel, lc) != 0) {
            free(lc);
            free(m);
            return MS_ERR_NOMEM;
        }
        lc->id = channel;
        new_lc = true;
    }

    rt_stripe *st = stripe_of(h, channel);
    rt_msg **replay = NULL;
    uint32_t nreplay = 0;
    bool covered = true;
    bool shard_new = false;
    pthread_mutex_lock(&st->mu);
    rt_chan *c = rt__map_get(&st->chans, channel);
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c || rt__map_put(&st->chans, channel, c) != 0) {
            pthread_mutex_unlock(&st->mu);
            free(c);
            if (new_lc) {
                rt__map_del(&w->local, channel);
                free(lc);
            }
            free(m);
            return MS_ERR_NOMEM;
        }
        c->id = channel;
        c->has_ring = atomic_fetch_add(&h->nchannels, 1) < (int64_t)h->o.max_channels;
        /* Nothing published before now is in the ring. */
        c->covered_since = rt__hub_position_at(h, rt__now_ms());
    }
    if (c->nworkers == 0)
        shard_new = true;
    uint64_t bit = 1ULL << (w->idx % 64);
    if (!(c->workers[w->idx / 64] & bit)) {
        c->workers[w->idx / 64] |= bit;
        c->nworkers++;
    }
    c->idle_since_ms = 0;
    m->join_seq = c->next_seq;
    if (has_since)
        covered = ring_replay(h, c, since, &replay, &nreplay);
    pthread_mutex_unlock(&st->mu);

    if (shard_new) {
        uint32_t shard = rt__hub_shard(h, channel);
        if (atomic_fetch_add(&h->shard_refs[shard], 1) == 0) {
            rt_bridge *b = rt__hub_bridge_acquire(h);
            if (b)
                rt__bridge_wake(b);
            rt__hub_bridge_release(h);
        }
    }

    m->sub = s;
    m->lc = lc;
    m->next = lc->head;
    if (lc->head)
        lc->head->prev = m;
    lc->head = m;
    lc->n++;
    s->chans[s->nchans++] = m;

    if (has_since && !covered) {
        rt_msg *r = rt__msg_resync(h->o.id_format, channel, "gap");
        if (r) {
            sub_push(s, r);
            rt_msg_unref(r);
        }
    }
    for (uint32_t i = 0; i < nreplay; i++) {
        sub_push(s, replay[i]);
        rt_msg_unref(replay[i]);
    }
    free(replay);
    /* The caller looks at the queue itself; do not call back from inside it. */
    ready_unlink(s);
    return 0;
}

static void member_drop(rt_sub *s, uint32_t idx)
{
    rt_hub *h = s->hub;
    rt_worker *w = s->w;
    rt_member *m = s->chans[idx];
    rt_lchan *lc = m->lc;
    ms_xid channel = lc->id;
    if (m->prev)
        m->prev->next = m->next;
    else
        lc->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    lc->n--;
    free(m);
    s->chans[idx] = s->chans[--s->nchans];
    if (lc->n > 0)
        return;
    rt__map_del(&w->local, channel);
    free(lc);
    rt_stripe *st = stripe_of(h, channel);
    bool shard_gone = false;
    pthread_mutex_lock(&st->mu);
    rt_chan *c = rt__map_get(&st->chans, channel);
    if (c) {
        uint64_t bit = 1ULL << (w->idx % 64);
        if (c->workers[w->idx / 64] & bit) {
            c->workers[w->idx / 64] &= ~bit;
            c->nworkers--;
        }
        if (c->nworkers == 0) {
            c->idle_since_ms = rt__now_ms();
            shard_gone = true;
        }
    }
    pthread_mutex_unlock(&st->mu);
    if (shard_gone) {
        uint32_t shard = rt__hub_shard(h, channel);
        if (atomic_fetch_sub(&h->shard_refs[shard], 1) == 1) {
            rt_bridge *b = rt__hub_bridge_acquire(h);
            if (b)
                rt__bridge_wake(b);
            rt__hub_bridge_release(h);
        }
    }
}

int rt_sub_remove(rt_sub *s, ms_xid channel)
{
    for (uint32_t i = 0; i < s->nchans; i++) {
        if (ms_xid_eq(s->chans[i]->lc->id, channel)) {
            member_drop(s, i);
            return 0;
        }
    }
    return MS_ERR_NOT_FOUND;
}

void rt_sub_destroy(rt_sub *s)
{
    if (!s)
        return;
    while (s->nchans)
        member_drop(s, s->nchans - 1);
    ready_unlink(s);
    q_drop_all(s);
    free(s->q);
    free(s->chans);
    atomic_fetch_sub(&s->hub->nsubs, 1);
    ms_gauge_add(s->hub->m_subs, -1);
    free(s);
}
