/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scylla_migrate.c - the ScyllaDB backend's migrations: the keyspace, then
 * the schema/cql scripts not yet recorded in schema_version.
 */
#include "scylla_internal.h"
#include "scylla_keyspace.h"

#if defined(MSGSTORE_HAVE_CQL_SESSION)

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

/* ------------------------------------------------------------------ migrations */

/* "SimpleStrategy:3" or "dc1:3,dc2:3" as a CQL replication map. */
static int replication_map(const char *spec, char *out, size_t cap, char *err, size_t errlen)
{
    char buf[MS_CONFIG_STR];
    snprintf(buf, sizeof buf, "%s", spec);
    const char *simple = "SimpleStrategy:";
    if (strncmp(buf, simple, strlen(simple)) == 0) {
        char *end = NULL;
        long rf = strtol(buf + strlen(simple), &end, 10);
        if (!end || *end || rf < 1 || rf > 100)
            goto bad;
        snprintf(out, cap, "{'class': 'SimpleStrategy', 'replication_factor': %ld}", rf);
        return 0;
    }
    size_t len = (size_t)snprintf(out, cap, "{'class': 'NetworkTopologyStrategy'");
    char *save = NULL;
    int ndc = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(tok, ':');
        if (!colon)
            goto bad;
        *colon = '\0';
        char *end = NULL;
        long rf = strtol(colon + 1, &end, 10);
        if (!sc_valid_name(tok, 64) || !end || *end || rf < 0 || rf > 100)
            goto bad;
        len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, ", '%s': %ld", tok, rf);
        ndc++;
    }
    if (ndc == 0 || len + 2 > cap)
        goto bad;
    snprintf(out + len, cap - len, "}");
    return 0;
bad:
    snprintf(err, errlen,
             "SCYLLA_REPLICATION=\"%s\": expected SimpleStrategy:RF or DC:RF[,DC:RF...]", spec);
    return MS_ERR_INVALID;
}

/*
 * True when stmt is an ALTER TABLE ... ADD whose column is already there: a
 * migration interrupted after it ran is run again (CREATE ... IF NOT EXISTS
 * covers the other statements; ADD IF NOT EXISTS is not understood everywhere).
 */
static bool column_exists(const char *stmt, const cql_status *st)
{
    while (*stmt == ' ' || *stmt == '\n' || *stmt == '\t')
        stmt++;
    return strncmp(stmt, "ALTER TABLE ", 12) == 0 && strstr(stmt, " ADD ") &&
           (strstr(st->message, "already exists") ||
            strstr(st->message, "conflicts with an existing column"));
}

/* Runs one CQL text (statements ending with ';' at a line end, "--" comment lines). */
static int run_script(cql_sync *db, const char *name, const char *text, char *err, size_t errlen)
{
    size_t cap = strlen(text) + 1;
    char *stmt = malloc(cap);
    if (!stmt) {
        snprintf(err, errlen, "out of memory");
        return MS_ERR_NOMEM;
    }
    size_t len = 0;
    int rc = 0;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        const char *q = p;
        while (q < p + n && (*q == ' ' || *q == '\t'))
            q++;
        bool comment = (size_t)(p + n - q) >= 2 && q[0] == '-' && q[1] == '-';
        if (!comment && q < p + n) {
            memcpy(stmt + len, p, n);
            len += n;
            stmt[len++] = '\n';
            size_t e = n;
            while (e > 0 && (p[e - 1] == ' ' || p[e - 1] == '\t' || p[e - 1] == '\r'))
                e--;
            if (e > 0 && p[e - 1] == ';') {
                stmt[len] = '\0';
                cql_status st;
                if ((cql_sync_query(db, stmt, NULL, &st) != 0 || st.code) &&
                    !column_exists(stmt, &st)) {
                    snprintf(err, errlen, "migration %s failed: %s", name, st.message);
                    rc = st.code ? st.code : MS_ERR_IO;
                    break;
                }
                len = 0;
            }
        }
        p += n + (eol ? 1 : 0);
    }
    free(stmt);
    return rc;
}

typedef struct sc_mig {
    cql_sync *db;
    const store_config *cfg;
} sc_mig;

/*
 * Runs a read of the migration tables. Right after CREATE TABLE, a replica
 * can still answer "unconfigured table" or "Unknown CF", or fail the read with
 * INCOMPATIBLE_SCHEMA (Cassandra 5: its table is not the coordinator's yet),
 * although the client waited for schema agreement (all seen on a 4-node
 * cluster): such a read is
 * tried again, for up to about 5 s, letting the session's loop run between
 * tries. Returns what cql_sync_execute returns; *st holds the last answer.
 */
static int mig_read(cql_sync *db, const cql_statement *s, cql_result **res, cql_status *st)
{
    for (int tries = 0;; tries++) {
        int rc = cql_sync_execute(db, s, res, st);
        bool young = (rc != 0 || st->code) && (strstr(st->message, "unconfigured table") ||
                                               strstr(st->message, "Unknown CF") ||
                                               strstr(st->message, "INCOMPATIBLE_SCHEMA"));
        if (!young || tries == 25)
            return rc != 0 ? rc : st->code;
        cql_sync_run_for(db, 200);
    }
}

static int cql_recorded(void *ctx, int version, char have[17], char *err, size_t errlen)
{
    sc_mig *mc = ctx;
    cql_values v;
    cql_values_init(&v);
    cql_values_add_int(&v, version);
    cql_statement s;
    cql_statement_init(&s);
    s.query = "SELECT checksum FROM schema_version WHERE scope = 'msgstore' AND version = ?";
    s.values = &v;
    s.consistency = (int)mc->cfg->scylla_read_consistency;
    cql_result *res = NULL;
    cql_status st;
    int rc = mig_read(mc->db, &s, &res, &st);
    cql_values_free(&v);
    if (rc != 0 || st.code) {
        snprintf(err, errlen, "cannot read schema_version: %s", st.message);
        return st.code ? st.code : MS_ERR_IO;
    }
    int found = cql_result_next_row(res) == 0;
    cql_str cs;
    if (found && cql_row_get_text(res, 0, &cs) == 0)
        snprintf(have, 17, "%.*s", (int)cs.len, cs.ptr);
    cql_result_destroy(res);
    return found;
}

/* A read of the keyspace's id format row; 1 found (*out), 0 none, or a negative code with err. */
static int cql_read_format(cql_sync *db, const store_config *cfg, ms_id_format *out, char *err,
                           size_t errlen)
{
    char q[160];
    snprintf(q, sizeof q,
             "SELECT name FROM %s.schema_version WHERE scope = 'id_format' AND version = 0",
             cfg->scylla_keyspace);
    cql_statement s;
    cql_statement_init(&s);
    s.query = q;
    s.consistency = (int)cfg->scylla_serial_consistency; /* sees what a conditional write wrote */
    cql_result *res = NULL;
    cql_status st;
    if (mig_read(db, &s, &res, &st) != 0) {
        snprintf(err, errlen, "cannot read the keyspace's id format: %s", st.message);
        return st.code ? st.code : MS_ERR_IO;
    }
    int found = cql_result_next_row(res) == 0;
    cql_str cs = {0};
    char name[16] = "";
    if (found && cql_row_get_text(res, 0, &cs) == 0)
        snprintf(name, sizeof name, "%.*s", (int)cs.len, cs.ptr);
    cql_result_destroy(res);
    if (found && ms_id_format_parse(name, out) != 0) {
        snprintf(err, errlen, "the keyspace's recorded id format \"%s\" is not uuid or int64",
                 name);
        return MS_ERR_INVALID;
    }
    return found;
}

int sc_id_format(cql_sync *db, const store_config *cfg, ms_id_format *out, char *err, size_t errlen)
{
    int found = cql_read_format(db, cfg, out, err, errlen);
    if (found)
        return found < 0 ? found : 0;
    /* none recorded: a keyspace migrated before the format was is int64 */
    char q[160];
    snprintf(q, sizeof q, "SELECT version FROM %s.schema_version WHERE scope = 'msgstore' LIMIT 1",
             cfg->scylla_keyspace);
    cql_statement s;
    cql_statement_init(&s);
    s.query = q;
    s.consistency = (int)cfg->scylla_read_consistency;
    cql_result *res = NULL;
    cql_status st;
    if (mig_read(db, &s, &res, &st) != 0) {
        snprintf(err, errlen, "cannot read schema_version: %s", st.message);
        return st.code ? st.code : MS_ERR_IO;
    }
    bool migrated = cql_result_next_row(res) == 0;
    cql_result_destroy(res);
    *out = MS_ID_INT64;
    return migrated ? 0 : MS_ERR_NOT_FOUND;
}

/* The recorded format, recording want first in a new keyspace (store__migrator.id_format). */
static int cql_id_format(void *ctx, ms_id_format want, ms_id_format *have, char *err, size_t errlen)
{
    sc_mig *mc = ctx;
    int rc = cql_read_format(mc->db, mc->cfg, have, err, errlen);
    if (rc)
        return rc < 0 ? rc : 0;
    /* none recorded: record the configured format in a new keyspace, int64 in one migrated
     * before (a conditional write: of two migrations racing, one format wins) */
    rc = sc_id_format(mc->db, mc->cfg, have, err, errlen);
    if (rc == MS_ERR_NOT_FOUND)
        *have = want;
    else if (rc)
        return rc;
    const char *name = ms_id_format_name(*have);
    cql_values v;
    cql_values_init(&v);
    cql_values_add_text(&v, name, strlen(name));
    cql_values_add_bigint(&v, (int64_t)ms_clock_realtime_ms(NULL));
    cql_statement s;
    cql_statement_init(&s);
    char q[200];
    snprintf(q, sizeof q,
             "INSERT INTO %s.schema_version (scope, version, name, checksum, applied_at) "
             "VALUES ('id_format', 0, ?, '', ?) IF NOT EXISTS",
             mc->cfg->scylla_keyspace);
    s.query = q;
    s.values = &v;
    s.consistency = (int)mc->cfg->scylla_write_consistency;
    s.serial_consistency = (int)mc->cfg->scylla_serial_consistency;
    cql_status st;
    rc = cql_sync_execute(mc->db, &s, NULL, &st);
    cql_values_free(&v);
    if (rc != 0 || st.code) {
        snprintf(err, errlen, "cannot record the keyspace's id format: %s", st.message);
        return st.code ? st.code : MS_ERR_IO;
    }
    rc = cql_read_format(mc->db, mc->cfg, have, err, errlen);
    if (rc == 0) {
        snprintf(err, errlen, "the keyspace's id format was not recorded");
        return MS_ERR_IO;
    }
    return rc < 0 ? rc : 0;
}

static int cql_apply(void *ctx, const store_migration *m, const char *sum, char *err, size_t errlen)
{
    sc_mig *mc = ctx;
    int rc = run_script(mc->db, m->name, m->text, err, errlen);
    if (rc)
        return rc;
    cql_values v;
    cql_values_init(&v);
    cql_values_add_int(&v, m->version);
    cql_values_add_text(&v, m->name, strlen(m->name));
    cql_values_add_text(&v, sum, strlen(sum));
    cql_values_add_bigint(&v, (int64_t)ms_clock_realtime_ms(NULL));
    cql_statement s;
    cql_statement_init(&s);
    s.query = "INSERT INTO schema_version (scope, version, name, checksum, applied_at) "
              "VALUES ('msgstore', ?, ?, ?, ?)";
    s.values = &v;
    s.consistency = (int)mc->cfg->scylla_write_consistency;
    s.idempotent = true;
    cql_status st;
    if (cql_sync_execute(mc->db, &s, NULL, &st) != 0 || st.code) {
        snprintf(err, errlen, "cannot record migration %s: %s", m->name, st.message);
        rc = st.code ? st.code : MS_ERR_IO;
    }
    cql_values_free(&v);
    return rc;
}

int store__scylla_migrate(const store_config *cfg, store_migrate_progress_fn progress, void *ctx,
                          int *applied, char *err, size_t errlen)
{
    bool unreachable = false;
    return sc_migrate(cfg, progress, ctx, applied, err, errlen, &unreachable);
}

int sc_migrate(const store_config *cfg, store_migrate_progress_fn progress, void *ctx, int *applied,
               char *err, size_t errlen, bool *unreachable)
{
    if (applied)
        *applied = 0;
    if (!sc_valid_name(cfg->scylla_keyspace, 48)) {
        snprintf(err, errlen, "SCYLLA_KEYSPACE=\"%s\": expected 1 to 48 letters, digits or '_'",
                 cfg->scylla_keyspace);
        return MS_ERR_INVALID;
    }
    char repl[512];
    int rc = replication_map(cfg->scylla_replication, repl, sizeof repl, err, errlen);
    if (rc)
        return rc;
    cql_options o;
    cql_status st;
    cql_sync *db = NULL;
    sc_options(&o, cfg, false);
    o.name = "store-migrate";
    *unreachable = false;
    if (cql_sync_connect(&o, &db, &st) != 0 || !db) {
        snprintf(err, errlen, "cannot connect to %s: %s", cfg->scylla_contact_points, st.message);
        *unreachable = st.code != MS_ERR_UNAUTHORIZED && st.code != MS_ERR_INVALID;
        return st.code ? st.code : MS_ERR_UNAVAILABLE;
    }
    /* vnodes or tablets: ScyllaDB's releases differ (scylla_keyspace.c) */
    rc = store__scylla_keyspace_ensure(db, cfg->scylla_keyspace, repl, NULL, err, errlen);
    cql_sync_close(db);
    if (rc)
        return rc;
    sc_options(&o, cfg, true);
    o.name = "store-migrate";
    if (cql_sync_connect(&o, &db, &st) != 0 || !db) {
        snprintf(err, errlen, "cannot connect to keyspace %s: %s", cfg->scylla_keyspace,
                 st.message);
        return st.code ? st.code : MS_ERR_UNAVAILABLE;
    }
    rc = run_script(db, "schema_version",
                    "CREATE TABLE IF NOT EXISTS schema_version (scope text, version int, name "
                    "text, checksum text, applied_at bigint, PRIMARY KEY (scope, version)) WITH "
                    "CLUSTERING ORDER BY (version DESC);\n",
                    err, errlen);
    if (!rc) {
        sc_mig mc = {.db = db, .cfg = cfg};
        char what[96];
        snprintf(what, sizeof what, "keyspace %s", cfg->scylla_keyspace);
        store__migrator mg = {.db = &mc,
                              .recorded = cql_recorded,
                              .apply = cql_apply,
                              .id_format = cql_id_format,
                              .what = what};
        rc = store__migrate_run(MS_BACKEND_SCYLLA, &mg, cfg->id_format, progress, ctx, applied, err,
                                errlen);
    }
    cql_sync_close(db);
    return rc;
}

#endif /* MSGSTORE_HAVE_CQL_SESSION */
