/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scylla_keyspace.c - the cluster keyspace: vnodes or tablets (see
 * scylla_keyspace.h). ScyllaDB's tablets break what msgstore needs on most
 * releases: counters are silently wrong on 6.0 (scylladb#19449) and refused
 * from 6.1 to 2025.4; LWT is refused up to 2025.3. 2026.1 runs both. So:
 *  - Cassandra: plain CREATE KEYSPACE (Cassandra 5 rejects the tablets clause);
 *  - ScyllaDB before 6.0 (no system_schema.scylla_keyspaces.initial_tablets):
 *    plain CREATE KEYSPACE (5.x rejects the clause: "Unknown property");
 *  - ScyllaDB 6.0+: tablets = {'enabled': false}; where tablets are enforced
 *    (2025.2+ tablets_mode_for_new_keyspaces: enforced) the server refuses
 *    that: accepted with tablets from 2026.1, a clear refusal before;
 *  - afterwards the keyspace's initial_tablets tells whether it has tablets
 *    (it may predate this run): tablets before 2026.1 are refused.
 */
#include "scylla_keyspace.h"

#if defined(MSGSTORE_HAVE_CQL_SESSION)

#include "core/error.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TABLETS_OFF " AND tablets = {'enabled': false}"

/* Counters and LWT on tablet keyspaces: ScyllaDB 2026.1 and later. */
static bool tablets_usable(int major, int minor)
{
    return major > 2026 || (major == 2026 && minor >= 1);
}

/* Runs q; *rows: whether it returned a row. On failure st says why. */
static int query_has_row(cql_sync *db, const char *q, bool *rows, cql_result **keep, cql_status *st)
{
    cql_result *res = NULL;
    *rows = false;
    if (cql_sync_query(db, q, &res, st) != 0 || st->code) {
        cql_result_destroy(res);
        return st->code ? st->code : MS_ERR_IO;
    }
    *rows = res && cql_result_next_row(res) == 0;
    if (keep && *rows)
        *keep = res;
    else
        cql_result_destroy(res);
    return 0;
}

/* The release from system.versions ("2026.1.0-0.20260110..."); "" when unknown. */
static void scylla_version(cql_sync *db, char *out, size_t cap, int *major, int *minor)
{
    out[0] = '\0';
    *major = *minor = 0;
    cql_status st;
    cql_result *res = NULL;
    bool row;
    if (query_has_row(db, "SELECT version FROM system.versions WHERE key = 'local'", &row, &res,
                      &st) != 0 ||
        !row)
        return;
    cql_str v;
    if (cql_row_get_text(res, 0, &v) == 0) {
        snprintf(out, cap, "%.*s", (int)v.len, v.ptr);
        if (sscanf(out, "%d.%d", major, minor) != 2)
            *major = *minor = 0;
    }
    cql_result_destroy(res);
}

static int create(cql_sync *db, const char *ks, const char *repl, bool tablets_off, cql_status *st)
{
    char q[1024];
    snprintf(q, sizeof q, "CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s%s", ks, repl,
             tablets_off ? TABLETS_OFF : "");
    if (cql_sync_query(db, q, NULL, st) != 0 || st->code)
        return st->code ? st->code : MS_ERR_IO;
    return 0;
}

int store__scylla_keyspace_ensure(cql_sync *db, const char *keyspace, const char *replication,
                                  store_scylla_ks_info *info, char *err, size_t errlen)
{
    store_scylla_ks_info local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    cql_server_features f;
    cql_sync_server_features(db, &f);
    cql_status st;
    int rc;
    if (!f.scylla) {
        if ((rc = create(db, keyspace, replication, false, &st)) != 0)
            snprintf(err, errlen, "cannot create keyspace %s: %s", keyspace, st.message);
        return rc;
    }
    info->scylla = true;
    int major, minor;
    scylla_version(db, info->version, sizeof info->version, &major, &minor);
    const char *ver = info->version[0] ? info->version : "(release unknown)";
    bool can_tablets = tablets_usable(major, minor);
    /* does this release know tablets at all? (6.0+: scylla_keyspaces.initial_tablets) */
    bool knows = false;
    bool asked = query_has_row(db,
                               "SELECT column_name FROM system_schema.columns WHERE "
                               "keyspace_name = 'system_schema' AND table_name = "
                               "'scylla_keyspaces' AND column_name = 'initial_tablets'",
                               &knows, NULL, &st) == 0;
    /* when the schema could not be read, send the clause and let the server say */
    bool off = knows || !asked;
    rc = create(db, keyspace, replication, off, &st);
    if (rc && off && strstr(st.message, "Unknown property")) {
        /* 5.x: no tablets, no clause */
        off = false;
        knows = false;
        rc = create(db, keyspace, replication, false, &st);
    } else if (rc && off && strstr(st.message, "tablets are enforced")) {
        if (!can_tablets) {
            snprintf(err, errlen,
                     "cannot create keyspace %s: this ScyllaDB cluster (%s) enforces tablets "
                     "(tablets_mode_for_new_keyspaces: enforced) and this release cannot run "
                     "msgstore's counters and lightweight transactions on tablets (2026.1 and "
                     "later can): set tablets_mode_for_new_keyspaces to enabled or disabled, or "
                     "upgrade to 2026.1",
                     keyspace, ver);
            return MS_ERR_UNPROCESSABLE;
        }
        rc = create(db, keyspace, replication, false, &st);
    }
    if (rc) {
        snprintf(err, errlen, "cannot create keyspace %s: %s", keyspace, st.message);
        return rc;
    }
    if (!knows && asked)
        return 0; /* before 6.0: vnodes only */
    /* the keyspace may predate this run: does it have tablets? */
    char q[256];
    snprintf(q, sizeof q,
             "SELECT initial_tablets FROM system_schema.scylla_keyspaces WHERE keyspace_name = "
             "'%s'",
             keyspace);
    cql_result *res = NULL;
    bool row;
    if (query_has_row(db, q, &row, &res, &st) != 0) {
        if (!knows)
            return 0; /* no such table after all (the column check could not run) */
        snprintf(err, errlen, "cannot read system_schema.scylla_keyspaces for %s: %s", keyspace,
                 st.message);
        return st.code ? st.code : MS_ERR_IO;
    }
    info->tablets = row && !cql_row_is_null(res, 0);
    cql_result_destroy(res);
    if (info->tablets && !can_tablets) {
        snprintf(err, errlen,
                 "keyspace %s uses tablets, and ScyllaDB %s cannot run msgstore's counters "
                 "(refused or wrong before 2026.1) and lightweight transactions (refused before "
                 "2025.4) on tablets: drop it and run `msgstore migrate` again (it creates the "
                 "keyspace with tablets = {'enabled': false}), or upgrade to 2026.1",
                 keyspace, ver);
        return MS_ERR_UNPROCESSABLE;
    }
    MS_INFO("store", "keyspace %s on ScyllaDB %s: %s", keyspace, ver,
            info->tablets ? "tablets (tablet-aware routing)" : "vnodes");
    return 0;
}

#else
typedef int store__scylla_keyspace_absent; /* ISO C: no empty translation unit */
#endif /* MSGSTORE_HAVE_CQL_SESSION */
