/* SPDX-License-Identifier: Apache-2.0 */
/* pg.c - libpq helpers and the index's tables (pg.h). */
#include "search/pg.h"

#include <stdio.h>
#include <string.h>

static void drop_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

void search__pg_error(PGconn *pg, const PGresult *res, char *err, size_t errlen)
{
    const char *m = res ? PQresultErrorMessage(res) : NULL;
    if (!m || !*m)
        m = pg ? PQerrorMessage(pg) : "no connection";
    size_t n = strcspn(m, "\n");
    snprintf(err, errlen, "PostgreSQL: %.*s", (int)n, m);
}

PGconn *search__pg_connect(const char *url, char *err, size_t errlen)
{
    PGconn *pg = PQconnectdb(url);
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        search__pg_error(pg, NULL, err, errlen);
        PQfinish(pg);
        return NULL;
    }
    PQsetNoticeProcessor(pg, drop_notice, NULL);
    return pg;
}

bool search__pg_exec(PGconn *pg, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(pg, sql);
    bool ok = r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    if (!ok)
        search__pg_error(pg, r, err, errlen);
    PQclear(r);
    return ok;
}

void search__pg_table(const char *keyspace, const char *name, char *out, size_t n)
{
    /* keyspace names are [A-Za-z0-9_] (checked by the config): no quote to escape */
    snprintf(out, n, "\"%s\".%s", keyspace, name);
}

int search__pg_ensure_schema(PGconn *pg, const char *keyspace, ms_id_format f, char *err,
                             size_t errlen)
{
    const char *idt = f == MS_ID_UUID ? "uuid" : "bigint"; /* channel and user ids */
    char idx[160], ck[160], sql[3072];
    search__pg_table(keyspace, "message_index", idx, sizeof idx);
    search__pg_table(keyspace, "checkpoint", ck, sizeof ck);
    /* Two instances starting together race on CREATE ... IF NOT EXISTS: one lock orders them. */
    snprintf(sql, sizeof sql,
             "BEGIN;"
             "SELECT pg_advisory_xact_lock(hashtext('msgstore search schema'));"
             "CREATE SCHEMA IF NOT EXISTS \"%s\";"
             "CREATE TABLE IF NOT EXISTS %s ("
             " channel_id %s NOT NULL, message_id bigint NOT NULL,"
             " sender_id %s NOT NULL, created_at bigint NOT NULL,"
             " version bigint NOT NULL, content text NOT NULL, tsv tsvector NOT NULL,"
             " PRIMARY KEY (channel_id, message_id));"
             "CREATE INDEX IF NOT EXISTS message_index_tsv ON %s USING gin (tsv);"
             "CREATE TABLE IF NOT EXISTS %s ("
             " shard int PRIMARY KEY, seq bigint NOT NULL, updated_at timestamptz NOT NULL);"
             /* simple, accents folded as FTS5 does (unaccent is a trusted extension) */
             "CREATE EXTENSION IF NOT EXISTS unaccent;"
             "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_ts_config c JOIN pg_namespace n"
             " ON n.oid = c.cfgnamespace WHERE n.nspname = '%s' AND c.cfgname = "
             "'simple_unaccent') THEN"
             " CREATE TEXT SEARCH CONFIGURATION \"%s\".simple_unaccent (COPY = simple);"
             " ALTER TEXT SEARCH CONFIGURATION \"%s\".simple_unaccent ALTER MAPPING FOR"
             " hword, hword_part, word WITH unaccent, simple; END IF; END $$;"
             "COMMIT;",
             keyspace, idx, idt, idt, idx, ck, keyspace, keyspace, keyspace);
    if (!search__pg_exec(pg, sql, err, errlen)) {
        search__pg_exec(pg, "ROLLBACK", err + strlen(err), 0);
        return -1;
    }
    return 0;
}

void search__pg_text_config(const char *keyspace, const char *setting, char *out, size_t n)
{
    if (strcmp(setting, "simple") == 0)
        snprintf(out, n, "\"%s\".simple_unaccent", keyspace);
    else
        snprintf(out, n, "%s", setting);
}
