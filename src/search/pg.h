/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pg.h - what the search layer's files share: the PostgreSQL tables of one
 * keyspace's index and a few libpq helpers.
 *
 * Every keyspace gets a PostgreSQL schema of its own name, so stores of
 * several keyspaces (tests, staging) may share one database:
 *   <ks>.message_index (channel_id, message_id, sender_id, created_at,
 *                       version, content, tsv)  PRIMARY KEY (channel_id,
 *                       message_id), GIN (tsv)
 *   <ks>.checkpoint    (shard, seq, updated_at)  the last change-log seq applied
 *   <ks>.simple_unaccent  text-search configuration: simple with unaccent
 */
#ifndef MS_SEARCH_PG_H
#define MS_SEARCH_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"

/*
 * Connects to url; NULL with a message in err when it fails. Notices
 * (plainto_tsquery of a term without lexemes) are dropped.
 */
PGconn *search__pg_connect(const char *url, char *err, size_t errlen);

/* Creates the keyspace's schema, tables and index when missing. 0 or -1 (err set). */
int search__pg_ensure_schema(PGconn *pg, const char *keyspace, ms_id_format f, char *err,
                             size_t errlen);

/* "<keyspace>.name" quoted for SQL: "\"ks\".name"; written to out (size n). */
void search__pg_table(const char *keyspace, const char *name, char *out, size_t n);

/*
 * The text-search configuration the index uses for MSGSTORE_SEARCH_TEXT_CONFIG
 * `setting`: "simple" becomes the keyspace's simple_unaccent (simple with
 * accents folded, as the SQLite index does); any other is used as it is.
 */
void search__pg_text_config(const char *keyspace, const char *setting, char *out, size_t n);

/* Runs a command without parameters; true on success (err set otherwise). */
bool search__pg_exec(PGconn *pg, const char *sql, char *err, size_t errlen);

/* The first line of PostgreSQL's last error on pg (or res), in err. */
void search__pg_error(PGconn *pg, const PGresult *res, char *err, size_t errlen);

#endif
