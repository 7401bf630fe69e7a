/* SPDX-License-Identifier: Apache-2.0 */
/*
 * prepared.c - a table, a prepared INSERT and a prepared SELECT with bound
 * values, rows read with the typed getters.
 */
#include "example.h"

#include <string.h>

int main(int argc, char **argv)
{
    cql_sync *c = example_connect(argc, argv);
    cql_status st;
    if (cql_sync_query(c,
                       "CREATE TABLE IF NOT EXISTS " EXAMPLE_KEYSPACE ".notes "
                       "(author text, id bigint, body text, PRIMARY KEY (author, id))",
                       NULL, &st) != 0)
        example_die("create table", &st);

    cql_prepared *ins, *sel;
    if (cql_sync_prepare(
            c, "INSERT INTO " EXAMPLE_KEYSPACE ".notes (author, id, body) VALUES (?, ?, ?)", &ins,
            &st) != 0)
        example_die("prepare insert", &st);
    if (cql_sync_prepare(c, "SELECT id, body FROM " EXAMPLE_KEYSPACE ".notes WHERE author = ?",
                         &sel, &st) != 0)
        example_die("prepare select", &st);

    const char *bodies[] = {"first", "second", "third"};
    for (int64_t i = 0; i < 3; i++) {
        cql_values v;
        cql_values_init(&v);
        cql_values_add_text(&v, "ada", 3);
        cql_values_add_bigint(&v, i + 1);
        cql_values_add_text(&v, bodies[i], strlen(bodies[i]));
        cql_statement s;
        cql_statement_init(&s);
        s.prepared = ins;
        s.values = &v;
        s.idempotent = true; /* the same row again: safe to retry */
        int rc = cql_sync_execute(c, &s, NULL, &st);
        cql_values_free(&v);
        if (rc != 0)
            example_die("insert", &st);
    }

    cql_values v;
    cql_values_init(&v);
    cql_values_add_text(&v, "ada", 3);
    cql_statement s;
    cql_statement_init(&s);
    s.prepared = sel;
    s.values = &v;
    cql_result *res;
    int rc = cql_sync_execute(c, &s, &res, &st);
    cql_values_free(&v);
    if (rc != 0)
        example_die("select", &st);
    int rows = 0;
    while (cql_result_next_row(res) == 0) {
        int64_t id;
        cql_str body;
        if (cql_row_get_bigint(res, 0, &id) != 0 || cql_row_get_text(res, 1, &body) != 0)
            return 1;
        printf("note %lld: %.*s\n", (long long)id, (int)body.len, body.ptr);
        rows++;
    }
    cql_result_destroy(res);
    cql_prepared_release(ins);
    cql_prepared_release(sel);
    cql_sync_close(c);
    return rows == 3 ? 0 : 1;
}
