/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scylla_keyspace.h - creating the cluster keyspace: vnodes or tablets, per
 * server (docs/operations.md, "Running on ScyllaDB").
 */
#ifndef MS_STORE_SCYLLA_KEYSPACE_H
#define MS_STORE_SCYLLA_KEYSPACE_H

#include <stdbool.h>
#include <stddef.h>

#include "msgstore/cql.h"

/* What was decided, for messages and tests. */
typedef struct store_scylla_ks_info {
    bool scylla;      /* the control connection's SUPPORTED named ScyllaDB */
    bool tablets;     /* the keyspace uses tablets */
    char version[64]; /* ScyllaDB's release (system.versions), "" when unknown */
} store_scylla_ks_info;

/*
 * Creates keyspace (a validated identifier) with replication (a CQL map
 * literal) unless it exists, then checks it can hold msgstore's counters and
 * LWTs. On ScyllaDB (decided from SUPPORTED, never on Cassandra) the keyspace
 * asks for vnodes (tablets = {'enabled': false}) where the server knows the
 * property; tablets are accepted only where the release runs counters and
 * LWT on them (2026.1 and later). db: a session without a keyspace. Returns 0,
 * or an MS_ERR code with a message for the operator in err. info may be NULL.
 */
int store__scylla_keyspace_ensure(cql_sync *db, const char *keyspace, const char *replication,
                                  store_scylla_ks_info *info, char *err, size_t errlen);

#endif
