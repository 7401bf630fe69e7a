/* Helpers shared by the CQL client's integration and cluster tests. */
#ifndef MS_TEST_CQL_TEST_H
#define MS_TEST_CQL_TEST_H

#include "msgstore/cql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "host:port[,host:port]" from the fixture's variable, or the default. */
static inline const char *cqlt_env(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && v[0] ? v : dflt;
}

/* Options for a test session against the contact points in variable env. */
static inline void cqlt_options(cql_options *o, const char *env, const char *dflt)
{
    cql_options_init(o);
    o->contact_points = cqlt_env(env, dflt);
    o->local_dc = NULL;
    o->request_timeout_ms = 20000;
    o->connect_timeout_ms = 10000;
    o->default_consistency = CQL_CONSISTENCY_ONE;
}

/* Runs a query that must succeed; prints the status on failure. */
#define CQLT_OK(c, q)                                                                              \
    do {                                                                                           \
        cql_status st_;                                                                            \
        int rc_ = cql_sync_query((c), (q), NULL, &st_);                                            \
        if (rc_ != 0)                                                                              \
            fprintf(stderr, "%s: %s\n", (q), st_.message);                                         \
        assert_int_equal(rc_, 0);                                                                  \
    } while (0)

/* A keyspace name unique to this process. */
static inline void cqlt_keyspace(char *out, size_t n, const char *prefix)
{
    snprintf(out, n, "%s_%ld", prefix, (long)getpid());
}

/* Runs a shell command from the source tree (scripts/...); returns its exit status. */
static inline int cqlt_script(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int cqlt_script(const char *fmt, ...)
{
    char cmd[1024], full[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    snprintf(full, sizeof(full), "cd '%s' && %s", cqlt_env("MSGSTORE_SOURCE_DIR", "."), cmd);
    int rc = system(full);
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

#endif
