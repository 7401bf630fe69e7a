/* SPDX-License-Identifier: Apache-2.0 */
/* lb.c - DC- and token-aware query plans (see lb.h). */
#include "cql/lb.h"

static bool in(const uint32_t *v, size_t n, uint32_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return true;
    return false;
}

static void add(uint32_t *out, size_t *k, size_t max, uint32_t h)
{
    if (*k < max && !in(out, *k, h))
        out[(*k)++] = h;
}

/* The replicas of one locality (local or remote), rotated. */
static void add_replicas(const cql_lb_view *v, const uint32_t *rep, size_t nrep, bool local,
                         uint64_t rr, bool ordered, uint32_t *out, size_t *k, size_t max)
{
    size_t nmatch = 0;
    for (size_t i = 0; i < nrep; i++)
        if (rep[i] < v->nhosts && (v->is_local[rep[i]] != 0) == local && v->up[rep[i]])
            nmatch++;
    if (nmatch == 0)
        return;
    size_t skip = ordered ? 0 : (size_t)(rr % nmatch);
    /* two passes over the matching replicas: from skip to the end, then the start */
    for (int pass = 0; pass < 2; pass++) {
        size_t j = 0;
        for (size_t i = 0; i < nrep && *k < max; i++) {
            uint32_t h = rep[i];
            if (h >= v->nhosts || (v->is_local[h] != 0) != local || !v->up[h])
                continue;
            if ((pass == 0 && j >= skip) || (pass == 1 && j < skip))
                add(out, k, max, h);
            j++;
        }
    }
}

static void add_group(const cql_lb_view *v, const uint32_t *hosts, size_t n, uint64_t rr,
                      uint32_t *out, size_t *k, size_t max)
{
    if (n == 0)
        return;
    size_t start = (size_t)(rr % n);
    for (size_t i = 0; i < n && *k < max; i++) {
        uint32_t h = hosts[(start + i) % n];
        if (h < v->nhosts && v->up[h])
            add(out, k, max, h);
    }
}

size_t cql__lb_plan(const cql_lb_view *v, const uint32_t *replicas, size_t nreplicas, uint64_t rr,
                    bool ordered, uint32_t *out, size_t max)
{
    size_t k = 0;
    if (replicas && nreplicas)
        add_replicas(v, replicas, nreplicas, true, rr, ordered, out, &k, max);
    add_group(v, v->local, v->nlocal, rr, out, &k, max);
    if (v->allow_remote) {
        if (replicas && nreplicas)
            add_replicas(v, replicas, nreplicas, false, rr, ordered, out, &k, max);
        add_group(v, v->remote, v->nremote, rr, out, &k, max);
    }
    return k;
}
