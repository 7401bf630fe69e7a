/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tablets.h - ScyllaDB tablet routing (TABLETS_ROUTING_V1): a cache of
 * (first, last] token ranges of a table -> replicas (host id, shard), learnt
 * from the "tablets-routing-v1" custom payload a node adds to a RESULT when
 * the request reached a node or shard that does not own the token. Pure (no
 * I/O): the session owns one cache; unit-tested in tests/unit/test_cql_tablets.c.
 */
#ifndef MS_CQL_TABLETS_H
#define MS_CQL_TABLETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CQL_TABLET_MAX_REPLICAS 8
#define CQL_TABLETS_PAYLOAD_KEY "tablets-routing-v1"

typedef struct cql_tablet_replica {
    char host_id[37]; /* text form, as cql_host.host_id */
    int32_t shard;
} cql_tablet_replica;

typedef struct cql_tablet {
    int64_t first, last; /* the tablet owns tokens t with first < t <= last */
    int nrep;
    cql_tablet_replica rep[CQL_TABLET_MAX_REPLICAS];
} cql_tablet;

typedef struct cql_tablet_table {
    char ks[64], table[64];
    cql_tablet *v; /* disjoint, sorted by last */
    size_t n, cap;
} cql_tablet_table;

typedef struct cql_tablets {
    cql_tablet_table *t;
    size_t n, cap;
} cql_tablets;

/*
 * Decodes a payload value: tuple<bigint, bigint, list<tuple<uuid, int>>>
 * (first token, last token, replicas). Replicas past CQL_TABLET_MAX_REPLICAS
 * are dropped. 0, or MS_ERR_INVALID for a malformed value or first >= last.
 */
int cql__tablet_decode(const uint8_t *p, size_t len, cql_tablet *out);

/*
 * Caches t for ks.table, dropping every cached tablet whose range overlaps
 * it (tablets split, merge and move). 0 or MS_ERR_NOMEM (the cache is then
 * unchanged) or MS_ERR_INVALID (names too long).
 */
int cql__tablets_put(cql_tablets *ts, const char *ks, const char *table, const cql_tablet *t);

/* The cached tablet of ks.table owning token, or NULL. The pointer lives until the next put. */
const cql_tablet *cql__tablets_find(const cql_tablets *ts, const char *ks, const char *table,
                                    int64_t token);

/* True when nothing is cached (the common, vnode, case: routing skips the lookup). */
bool cql__tablets_empty(const cql_tablets *ts);

/* Forgets ks.table (table NULL: every table of ks): it was dropped or altered. */
void cql__tablets_drop(cql_tablets *ts, const char *ks, size_t ks_len, const char *table,
                       size_t table_len);

/* Forgets everything (topology changed) and frees; the cache stays usable. */
void cql__tablets_clear(cql_tablets *ts);

#endif
