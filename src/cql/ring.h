/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ring.h - the token ring and replica placement (Murmur3Partitioner).
 *
 * Hosts are numbered 0..n-1 by the caller (the session's host table). A ring
 * is built from each host's DC, rack and tokens; a replica map computes, for
 * one replication strategy, the ordered replica list of every ring range once,
 * so a lookup is a binary search. Immutable once built: rebuilt on topology or
 * schema changes. Not thread-safe to build; a built ring may be read anywhere.
 *
 * Placement follows Cassandra exactly:
 *  - a token belongs to the first ring token >= it (wrapping to the first);
 *  - SimpleStrategy: walk the ring from there, take distinct hosts until RF;
 *  - NetworkTopologyStrategy (Cassandra 4+ algorithm): walk the ring; per DC
 *    take hosts from racks not seen yet, and hosts of already seen racks only
 *    while RF exceeds the DC's rack count; RF is capped by the DC's host count.
 */
#ifndef MS_CQL_RING_H
#define MS_CQL_RING_H

#include <stddef.h>
#include <stdint.h>

#define CQL_MAX_REPL_DCS 32

typedef enum cql_repl_class {
    CQL_REPL_NONE = 0,      /* unknown or LocalStrategy: no token-aware routing */
    CQL_REPL_SIMPLE = 1,    /* SimpleStrategy */
    CQL_REPL_NTS = 2,       /* NetworkTopologyStrategy */
    CQL_REPL_EVERYWHERE = 3 /* EverywhereStrategy (ScyllaDB): every host */
} cql_repl_class;

typedef struct cql_replication {
    cql_repl_class cls;
    int rf; /* SimpleStrategy */
    int ndcs;
    struct {
        char dc[64];
        int rf;
    } dcs[CQL_MAX_REPL_DCS]; /* NTS, sorted by name */
} cql_replication;

/*
 * Parses a system_schema.keyspaces replication map given as parallel arrays of
 * NUL-terminated keys and values ('class' -> strategy class name; the rest
 * are options). Unknown classes give CQL_REPL_NONE. Replication factors like
 * "3/1" (transient) count the full number. Returns 0 or MS_ERR_INVALID for a
 * malformed factor (r is then CQL_REPL_NONE).
 */
int cql__replication_parse(cql_replication *r, const char *const *keys, const char *const *values,
                           size_t n);

/* True when both describe the same placement. */
int cql__replication_equal(const cql_replication *a, const cql_replication *b);

/* One host as the ring needs it. */
typedef struct cql_ring_host_in {
    const char *dc;
    const char *rack;
    const int64_t *tokens;
    size_t ntokens;
} cql_ring_host_in;

typedef struct cql_ring {
    size_t ntokens;
    int64_t *tokens;  /* sorted ascending */
    uint32_t *owners; /* host of tokens[i] */
    size_t nhosts;
    uint32_t *host_dc;   /* dc id of each host */
    uint32_t *host_rack; /* rack id (unique across DCs) of each host */
    size_t ndcs;
    char **dc_names;    /* by dc id */
    uint32_t *dc_hosts; /* hosts per dc id */
    uint32_t *dc_racks; /* distinct racks per dc id */
    size_t nracks;
} cql_ring;

/*
 * Builds a ring from n hosts. A token owned by two hosts keeps the first.
 * Returns 0 or MS_ERR_NOMEM; the ring owns its memory (cql__ring_free).
 */
int cql__ring_build(cql_ring *r, const cql_ring_host_in *hosts, size_t n);
/* Frees what cql__ring_build allocated; r is then empty (free again: nothing). */
void cql__ring_free(cql_ring *r);

/* Index of the ring token owning token (first >= token, wrapping); 0 for an empty ring. */
size_t cql__ring_index(const cql_ring *r, int64_t token);

/* DC id of a name, or -1. */
int cql__ring_dc_id(const cql_ring *r, const char *dc);

/*
 * Computes the replicas of the range owned by ring token index idx, in
 * placement order (the primary first). Writes at most max host numbers to
 * out and returns how many there are (which may exceed max).
 */
size_t cql__ring_replicas_at(const cql_ring *r, const cql_replication *rep, size_t idx,
                             uint32_t *out, size_t max);

/* Replicas precomputed for every range of a ring under one strategy. */
typedef struct cql_replica_map {
    cql_replication rep;
    size_t nranges;
    uint32_t *offsets; /* nranges + 1 entries into hosts */
    uint32_t *hosts;
} cql_replica_map;

/* Computes m for r and rep. Returns 0 or MS_ERR_NOMEM. */
int cql__replica_map_build(cql_replica_map *m, const cql_ring *r, const cql_replication *rep);
/* Frees what cql__replica_map_build allocated. */
void cql__replica_map_free(cql_replica_map *m);

/*
 * The replicas of token in ring r as a pointer into m (valid while m lives)
 * and their count in *n; NULL and 0 when unknown.
 */
const uint32_t *cql__replica_map_get(const cql_replica_map *m, const cql_ring *r, int64_t token,
                                     size_t *n);

#endif
