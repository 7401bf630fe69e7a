/* SPDX-License-Identifier: Apache-2.0 */
/* pool.c - connection pools per host (per shard on ScyllaDB), reconnection. */
#include "cql/session.h"

#include "core/error.h"
#include "core/log.h"
#include "cql/retry.h"

#include <stdlib.h>
#include <string.h>

/* ---- the pure part ---------------------------------------------------------- */

int cql__spool_init(cql_shard_pool *p, uint32_t nr_shards, uint32_t ignore_msb, int per_shard)
{
    memset(p, 0, sizeof(*p));
    if (nr_shards == 0)
        nr_shards = 1;
    if (per_shard < 1)
        per_shard = 1;
    p->conns = calloc((size_t)nr_shards * (size_t)per_shard, sizeof(void *));
    if (!p->conns)
        return MS_ERR_NOMEM;
    p->nr_shards = nr_shards;
    p->ignore_msb = ignore_msb;
    p->per_shard = per_shard;
    return 0;
}

void cql__spool_free(cql_shard_pool *p)
{
    free(p->conns);
    memset(p, 0, sizeof(*p));
}

int cql__spool_add(cql_shard_pool *p, uint32_t shard, void *conn)
{
    if (!p->conns || shard >= p->nr_shards)
        return -1;
    size_t base = (size_t)shard * (size_t)p->per_shard;
    for (int i = 0; i < p->per_shard; i++) {
        if (!p->conns[base + (size_t)i]) {
            p->conns[base + (size_t)i] = conn;
            p->total++;
            return (int)(base + (size_t)i);
        }
    }
    return -1;
}

int cql__spool_remove(cql_shard_pool *p, void *conn)
{
    size_t n = (size_t)p->nr_shards * (size_t)p->per_shard;
    for (size_t i = 0; i < n && p->conns; i++) {
        if (p->conns[i] == conn) {
            p->conns[i] = NULL;
            p->total--;
            return (int)i;
        }
    }
    return -1;
}

int cql__spool_missing_shard(const cql_shard_pool *p)
{
    if (!p->conns)
        return -1;
    int best = -1, best_n = p->per_shard;
    for (uint32_t s = 0; s < p->nr_shards; s++) {
        int n = 0;
        for (int i = 0; i < p->per_shard; i++)
            if (p->conns[(size_t)s * (size_t)p->per_shard + (size_t)i])
                n++;
        if (n < best_n) {
            best_n = n;
            best = (int)s;
        }
    }
    return best;
}

void *cql__spool_pick(cql_shard_pool *p, bool has_token, int64_t token, int shard,
                      int (*load)(const void *conn))
{
    if (!p->conns || p->total == 0)
        return NULL;
    size_t per = (size_t)p->per_shard;
    if (p->nr_shards == 1 && per == 1)
        return p->conns[0];
    if ((has_token || shard >= 0) && p->nr_shards > 1) {
        uint32_t sh = shard >= 0 ? (uint32_t)shard % p->nr_shards
                                 : cql__scylla_shard_of(token, p->nr_shards, p->ignore_msb);
        void *best = NULL;
        int best_load = 0;
        for (size_t i = 0; i < per; i++) {
            void *c = p->conns[sh * per + i];
            if (!c)
                continue;
            int l = load(c);
            if (!best || l < best_load) {
                best = c;
                best_load = l;
            }
        }
        if (best)
            return best;
    }
    size_t n = (size_t)p->nr_shards * per;
    size_t start = p->rr++ % n;
    void *best = NULL;
    int best_load = 0;
    for (size_t k = 0; k < n; k++) {
        void *c = p->conns[(start + k) % n];
        if (!c)
            continue;
        int l = load(c);
        if (!best || l < best_load) {
            best = c;
            best_load = l;
        }
    }
    return best;
}

void cql__spool_plan(const cql_shard_pool *p, uint16_t shard_aware_port, uint16_t lo, uint16_t hi,
                     uint16_t *port_cursor, int *shard, uint16_t *local_port)
{
    *local_port = 0;
    *shard = cql__spool_missing_shard(p);
    if (*shard < 0 || shard_aware_port == 0 || p->nr_shards <= 1)
        return;
    uint16_t start = *port_cursor < lo || *port_cursor > hi ? lo : *port_cursor;
    uint16_t port = cql__scylla_source_port((uint32_t)*shard, p->nr_shards, lo, hi, start);
    *local_port = port;
    if (port)
        *port_cursor = port == hi ? lo : (uint16_t)(port + 1);
}

/* ---- connections of a host ---------------------------------------------------- */

static int conn_load(const void *c)
{
    return ((const cql_conn *)c)->in_flight;
}

static void pool_on_ready(cql_conn *c);
static void pool_on_close(cql_conn *c, int status, const char *why);
static const cql_conn_cbs pool_cbs = {pool_on_ready, pool_on_close, NULL};

static int target_conns(const cql_host *h)
{
    int per = h->s->o.pool_size;
    if (!h->spool.conns)
        return per;
    return (int)h->spool.nr_shards * per;
}

static void conns_remove(cql_host *h, cql_conn *c)
{
    for (int i = 0; i < h->nconns; i++) {
        if (h->conns[i] == c) {
            h->conns[i] = h->conns[--h->nconns];
            return;
        }
    }
}

static int open_one(cql_host *h)
{
    cql_session *s = h->s;
    if (h->nconns == h->cap_conns) {
        int cap = h->cap_conns ? h->cap_conns * 2 : 4;
        cql_conn **n = realloc(h->conns, (size_t)cap * sizeof(*n));
        if (!n)
            return MS_ERR_NOMEM;
        h->conns = n;
        h->cap_conns = cap;
    }
    struct sockaddr_storage sa = h->sa;
    uint16_t local_port = 0;
    if (h->spool.conns && h->scylla && h->shard_port && s->o.shard_aware) {
        int shard;
        cql__spool_plan(&h->spool, h->shard_port, s->o.shard_port_lo, s->o.shard_port_hi,
                        &h->port_cursor, &shard, &local_port);
        if (local_port) {
            if (sa.ss_family == AF_INET6)
                ((struct sockaddr_in6 *)&sa)->sin6_port = htons(h->shard_port);
            else
                ((struct sockaddr_in *)&sa)->sin_port = htons(h->shard_port);
        }
    }
    cql_conn *c;
    int rc = cql__conn_new(&s->pool_cfg, &pool_cbs, h, (const struct sockaddr *)&sa, h->addr,
                           local_port, &c);
    if (rc < 0)
        return rc;
    h->conns[h->nconns++] = c;
    h->connecting++;
    return 0;
}

void cql__pool_fill(cql_host *h)
{
    cql_session *s = h->s;
    if (s->state >= CQL_S_CLOSING || h->removed || !h->pooled || cql__tq_queued(&h->reconnect))
        return;
    int target = target_conns(h);
    /* before the first connection tells the shard count, open one */
    if (!h->spool.conns)
        target = h->connecting + h->ready > 0 ? 0 : 1;
    int max_excess = 4 * (int)(h->spool.nr_shards ? h->spool.nr_shards : 1) * s->o.pool_size;
    while (h->ready + h->connecting < target && h->connecting < 4 && h->excess < max_excess) {
        if (open_one(h) < 0)
            break;
    }
}

static void reconnect_fire(cql_tq_node *n)
{
    cql_host *h = (cql_host *)((char *)n - offsetof(cql_host, reconnect));
    cql__pool_fill(h);
}

static void schedule_reconnect(cql_host *h)
{
    cql_session *s = h->s;
    if (s->state >= CQL_S_CLOSING || h->removed || !h->pooled || cql__tq_queued(&h->reconnect))
        return;
    int64_t d = cql__backoff_delay(&s->o.reconnect, h->reconnect_attempt, &s->rng);
    if (d < 0) {
        if (!h->gave_up)
            MS_WARN("cql", "%s: giving up reconnecting after %d attempts (waiting for an UP event)",
                    h->label, h->reconnect_attempt);
        h->gave_up = true;
        return;
    }
    h->reconnect_attempt++;
    cql__tq_add(&s->tq, &h->reconnect, (uint64_t)cql__now(s) + (uint64_t)d, reconnect_fire);
}

static void pool_on_ready(cql_conn *c)
{
    cql_host *h = c->owner;
    cql_session *s = h->s;
    /* until it is in the pool, a close counts it as connecting */
    if (!h->spool.conns) {
        uint32_t nr = 1, msb = 0;
        if (c->info.scylla && s->o.shard_aware) {
            nr = c->info.nr_shards;
            msb = c->info.ignore_msb;
            h->scylla = true;
            h->shard_port = s->ssl_ctx ? c->info.shard_aware_port_ssl : c->info.shard_aware_port;
        }
        if (cql__spool_init(&h->spool, nr, msb, s->o.pool_size) < 0) {
            cql__conn_close(c, MS_ERR_NOMEM, "out of memory");
            return;
        }
    }
    uint32_t shard = h->scylla ? c->info.shard : 0;
    if (cql__spool_add(&h->spool, shard, c) < 0) {
        h->excess++;
        cql__conn_close(c, 0, "extra connection for a full shard");
        return;
    }
    h->connecting--;
    h->ready++;
    cql__breaker_success(&h->breaker);
    ms_gauge_set(h->g_breaker, CQL_BREAKER_CLOSED);
    h->reconnect_attempt = 0;
    h->gave_up = false;
    h->last_error[0] = '\0';
    if (!h->up) {
        h->up = true;
        s->lb_up[h->idx] = 1;
        ms_gauge_add(h->g_up, 1);
        MS_INFO("cql", "%s is up (%s%s)", h->label, h->dc,
                h->scylla ? ", ScyllaDB shard-aware" : "");
        bool again = h->was_up;
        h->was_up = true;
        s->pool_listener->on_up(h, c, again);
    }
    cql__pool_fill(h);
}

static void pool_on_close(cql_conn *c, int status, const char *why)
{
    cql_host *h = c->owner;
    cql_session *s = h->s;
    conns_remove(h, c);
    bool was_ready = h->spool.conns && cql__spool_remove(&h->spool, c) >= 0;
    if (was_ready)
        h->ready--;
    else
        h->connecting--;
    if (status < 0) {
        snprintf(h->last_error, sizeof(h->last_error), "%s", why);
        if (s->state < CQL_S_CLOSING) {
            cql__breaker_failure(&h->breaker, cql__now(s));
            ms_gauge_set(h->g_breaker, cql__breaker_state(&h->breaker, cql__now(s)));
        }
        if (!was_ready)
            MS_DEBUG("cql", "%s", why);
    }
    if (h->ready == 0 && h->up) {
        h->up = false;
        s->lb_up[h->idx] = 0;
        ms_gauge_add(h->g_up, -1);
        if (s->state < CQL_S_CLOSING) {
            MS_WARN("cql", "%s is down: %s", h->label, why);
            s->pool_listener->on_down(h, why);
        }
    }
    if (s->state >= CQL_S_CLOSING || h->removed || !h->pooled)
        return;
    if (status == 0)
        cql__pool_fill(h);
    else if (h->ready + h->connecting < target_conns(h))
        schedule_reconnect(h);
    s->pool_listener->on_conn_failed(h); /* the session may notice that every host failed */
}

cql_conn *cql__pool_pick(cql_host *h, bool has_token, int64_t token, int shard)
{
    return cql__spool_pick(&h->spool, has_token, token, shard, conn_load);
}

void cql__pool_close(cql_host *h, const char *why)
{
    h->pooled = false;
    cql__tq_remove(&h->s->tq, &h->reconnect);
    while (h->nconns > 0)
        cql__conn_close(h->conns[h->nconns - 1], 0, why); /* on_close removes it */
}

void cql__pool_tick(cql_host *h, int64_t now_ms)
{
    cql_session *s = h->s;
    for (int i = 0; i < h->nconns; i++)
        cql__conn_tick(h->conns[i], now_ms, s->o.heartbeat_ms, s->o.idle_timeout_ms);
    if (now_ms % 30000 < 1000)
        h->excess = 0;
    if (h->pooled && !h->removed && !h->gave_up && !cql__tq_queued(&h->reconnect) &&
        h->ready + h->connecting < target_conns(h) && h->ready > 0)
        cql__pool_fill(h);
}

void cql__pool_reconnect_now(cql_host *h)
{
    cql_session *s = h->s;
    if (s->state >= CQL_S_CLOSING || h->removed || !h->pooled || h->up)
        return;
    h->reconnect_attempt = 0;
    h->gave_up = false;
    h->excess = 0;
    /* due now: runs from the loop, not inside the caller's call */
    cql__tq_add(&s->tq, &h->reconnect, (uint64_t)cql__now(s), reconnect_fire);
}

void cql__pool_status_up(cql_host *h)
{
    cql__tq_remove(&h->s->tq, &h->reconnect);
    h->reconnect_attempt = 0;
    h->gave_up = false;
    h->excess = 0;
    cql__pool_fill(h);
}
