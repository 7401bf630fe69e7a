/*
 * scylla.c - the ScyllaDB/Cassandra backend, through src/cql.
 *
 * Not written yet: opening a ScyllaDB store reports that this binary has no
 * ScyllaDB backend.
 */
#include "store_internal.h"

#include <stdio.h>

int store__scylla_open(store *s, const ms_config *cfg, const store_options *opt,
                       store_backend **out, char *err, size_t errlen)
{
    (void)s;
    (void)cfg;
    (void)opt;
    *out = NULL;
    snprintf(err, errlen,
             "this msgstore was built without the CQL client: ScyllaDB/Cassandra "
             "(SCYLLA_ENABLED=true) is not available");
    return MS_ERR_UNAVAILABLE;
}

int store__scylla_migrate(const ms_config *cfg, store_migrate_progress_fn progress, void *ctx,
                          int *applied, char *err, size_t errlen)
{
    (void)cfg;
    (void)progress;
    (void)ctx;
    if (applied)
        *applied = 0;
    snprintf(err, errlen,
             "this msgstore was built without the CQL client: ScyllaDB/Cassandra "
             "migrations are not available");
    return MS_ERR_UNAVAILABLE;
}
