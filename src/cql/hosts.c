/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hosts.c - a session's host table and the views built from it: the
 * load-balancing lists, the token ring and the replica maps per keyspace.
 * Below the control connection (cluster.c), which fills it, and the
 * session, which owns it; it calls neither.
 */
#include "cql/session.h"

#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- hosts --------------------------------------------------------------------- */

cql_host *cql__host_find(cql_session *s, const char *addr, int port)
{
    for (size_t i = 0; i < s->nhosts; i++)
        if (s->hosts[i]->port == port && strcmp(s->hosts[i]->addr, addr) == 0)
            return s->hosts[i];
    return NULL;
}

static int grow_u8(uint8_t **p, size_t n)
{
    uint8_t *q = realloc(*p, n);
    if (!q)
        return MS_ERR_NOMEM;
    *p = q;
    return 0;
}

static int grow_u32(uint32_t **p, size_t n)
{
    uint32_t *q = realloc(*p, n * sizeof(uint32_t));
    if (!q)
        return MS_ERR_NOMEM;
    *p = q;
    return 0;
}

cql_host *cql__host_add(cql_session *s, const char *addr, int port)
{
    cql_host *h = cql__host_find(s, addr, port);
    if (h)
        return h;
    struct sockaddr_storage sa;
    memset(&sa, 0, sizeof(sa));
    if (uv_ip4_addr(addr, port, (struct sockaddr_in *)&sa) != 0 &&
        uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&sa) != 0)
        return NULL;
    if (s->nhosts == s->cap_hosts) {
        size_t cap = s->cap_hosts ? s->cap_hosts * 2 : 8;
        cql_host **nh = realloc(s->hosts, cap * sizeof(*nh));
        if (!nh)
            return NULL;
        s->hosts = nh;
        if (grow_u8(&s->lb_up, cap) < 0 || grow_u8(&s->lb_local, cap) < 0 ||
            grow_u32(&s->lb_locals, cap) < 0 || grow_u32(&s->lb_remotes, cap) < 0)
            return NULL;
        s->cap_hosts = cap;
    }
    h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->s = s;
    h->idx = (uint32_t)s->nhosts;
    snprintf(h->addr, sizeof(h->addr), "%s", addr);
    h->port = port;
    h->sa = sa;
    snprintf(h->label, sizeof(h->label), strchr(addr, ':') ? "[%s]:%d" : "%s:%d", addr, port);
    cql__breaker_init(&h->breaker, s->o.breaker_threshold, s->o.breaker_reset_ms);
    char lab[200];
    snprintf(lab, sizeof(lab), "%s,host=\"%s\"", s->mlabel, h->label);
    h->g_in_flight =
        ms_gauge_get("msgstore_cql_host_in_flight", lab, "CQL requests in flight per host");
    h->g_breaker = ms_gauge_get("msgstore_cql_breaker_state", lab,
                                "Circuit breaker per host: 0 closed, 1 open, 2 half-open");
    h->g_up = ms_gauge_get("msgstore_cql_host_up", lab,
                           "Sessions with a ready pool connection to the host");
    h->c_requests =
        ms_counter_get("msgstore_cql_host_requests_total", lab, "CQL attempts sent per host");
    s->lb_up[h->idx] = 0;
    s->lb_local[h->idx] = 0;
    s->hosts[s->nhosts++] = h;
    return h;
}

void cql__host_info(cql_session *s, const cql_host *h, cql_host_info *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->address, sizeof(out->address), "%s", h->addr);
    out->port = h->port;
    snprintf(out->dc, sizeof(out->dc), "%s", h->dc);
    snprintf(out->rack, sizeof(out->rack), "%s", h->rack);
    snprintf(out->host_id, sizeof(out->host_id), "%s", h->host_id);
    snprintf(out->release_version, sizeof(out->release_version), "%s", h->release);
    out->up = h->up;
    out->local = h->local;
    out->breaker = cql__breaker_state(&h->breaker, cql__now(s));
    out->connections = h->ready;
    out->in_flight = h->in_flight;
    out->requests = h->requests;
    out->errors = h->errors;
    out->nr_shards = h->scylla ? h->spool.nr_shards : 0;
    for (int i = 0; i < h->nconns; i++)
        if (cql__conn_ready(h->conns[i]) && h->conns[i]->info.lz4)
            out->lz4 = true;
    out->tls = s->ssl_ctx != NULL;
    out->pooled = h->pooled;
}

size_t cql_session_hosts(cql_session *s, cql_host_info *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nhosts; i++) {
        if (s->hosts[i]->removed)
            continue;
        if (n < max)
            cql__host_info(s, s->hosts[i], &out[n]);
        n++;
    }
    return n;
}

/* ---- keyspaces and the ring ------------------------------------------------------ */

int cql__ks_index(cql_session *s, const char *name)
{
    for (size_t i = 0; i < s->nks; i++)
        if (strcmp(s->ks[i].name, name) == 0)
            return (int)i;
    return -1;
}

cql_ks *cql__ks_find(cql_session *s, const char *name)
{
    int i = cql__ks_index(s, name);
    return i < 0 ? NULL : &s->ks[i];
}

const cql_replica_map *cql__ks_map(cql_session *s, int ks_idx)
{
    if (ks_idx < 0 || (size_t)ks_idx >= s->nks || !s->ring_ok)
        return NULL;
    cql_ks *k = &s->ks[ks_idx];
    if (k->rep.cls == CQL_REPL_NONE)
        return NULL;
    if (k->map >= 0)
        return &s->maps[k->map];
    /* keyspaces with the same replication share a map */
    for (size_t i = 0; i < s->nmaps; i++) {
        if (cql__replication_equal(&s->maps[i].rep, &k->rep)) {
            k->map = (int)i;
            return &s->maps[i];
        }
    }
    cql_replica_map *nm = realloc(s->maps, (s->nmaps + 1) * sizeof(*nm));
    if (!nm)
        return NULL;
    s->maps = nm;
    if (cql__replica_map_build(&s->maps[s->nmaps], &s->ring, &k->rep) < 0)
        return NULL;
    k->map = (int)s->nmaps++;
    return &s->maps[k->map];
}

void cql__hosts_rebuild(cql_session *s)
{
    s->nlocals = s->nremotes = 0;
    for (size_t i = 0; i < s->nhosts; i++) {
        cql_host *h = s->hosts[i];
        h->local = !h->removed && s->local_dc && strcmp(h->dc, s->local_dc) == 0;
        s->lb_local[i] = h->local;
        if (h->removed)
            continue;
        if (h->local)
            s->lb_locals[s->nlocals++] = h->idx;
        else
            s->lb_remotes[s->nremotes++] = h->idx;
    }
    /* the ring from every host with tokens */
    cql_ring_host_in *in = calloc(s->nhosts ? s->nhosts : 1, sizeof(*in));
    if (in) {
        for (size_t i = 0; i < s->nhosts; i++) {
            cql_host *h = s->hosts[i];
            in[i] = (cql_ring_host_in){h->dc, h->rack, h->tokens, h->removed ? 0 : h->ntokens};
        }
        cql_ring r;
        if (cql__ring_build(&r, in, s->nhosts) == 0) {
            cql__ring_free(&s->ring);
            s->ring = r;
            s->ring_ok = r.ntokens > 0;
        }
        free(in);
    }
    for (size_t i = 0; i < s->nmaps; i++)
        cql__replica_map_free(&s->maps[i]);
    s->nmaps = 0;
    for (size_t i = 0; i < s->nks; i++)
        s->ks[i].map = -1;
    s->topo_gen++;
}

size_t cql_session_replicas(cql_session *s, const char *keyspace, int64_t token, cql_host_info *out,
                            size_t max)
{
    const char *ks = keyspace ? keyspace : s->keyspace;
    if (!ks)
        return 0;
    const cql_replica_map *m = cql__ks_map(s, cql__ks_index(s, ks));
    if (!m)
        return 0;
    size_t n;
    const uint32_t *reps = cql__replica_map_get(m, &s->ring, token, &n);
    for (size_t i = 0; i < n && i < max; i++)
        cql__host_info(s, s->hosts[reps[i]], &out[i]);
    return n;
}
