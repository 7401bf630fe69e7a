/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lb.h - the load-balancing plan: which hosts to try for one request, in order.
 *
 * DC-aware and token-aware: the replicas of the request's token in the local
 * DC come first, then the other local hosts, then (only if remote DCs are
 * allowed) the remote replicas and the other remote hosts. Within each group
 * the start rotates with a per-request counter, so load spreads over the
 * replicas (round-robin). Hosts that are down are left out. The breaker is
 * consulted later, when a host is actually tried.
 */
#ifndef MS_CQL_LB_H
#define MS_CQL_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cql_lb_view {
    size_t nhosts;
    const uint8_t *up;     /* per host: 1 when it can take requests */
    const uint32_t *local; /* hosts of the local DC */
    size_t nlocal;
    const uint32_t *remote; /* hosts of the other DCs */
    size_t nremote;
    const uint8_t *is_local; /* per host: 1 when in the local DC */
    bool allow_remote;
} cql_lb_view;

/*
 * Writes up to max hosts to out and returns how many. replicas (may be NULL
 * when the token or the keyspace is unknown) are tried first in the order
 * above, rotated by rr unless ordered is set (LWT: primary replica first).
 */
size_t cql__lb_plan(const cql_lb_view *v, const uint32_t *replicas, size_t nreplicas, uint64_t rr,
                    bool ordered, uint32_t *out, size_t max);

#endif
