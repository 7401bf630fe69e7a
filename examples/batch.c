/* SPDX-License-Identifier: Apache-2.0 */
/*
 * batch.c - a logged batch: a message and its entry in a second table are
 * written together (both or neither), then read back.
 */
#include "example.h"

#include <string.h>

int main(int argc, char **argv)
{
    cql_sync *c = example_connect(argc, argv);
    cql_status st;
    if (cql_sync_query(c,
                       "CREATE TABLE IF NOT EXISTS " EXAMPLE_KEYSPACE ".messages "
                       "(channel bigint, id bigint, body text, PRIMARY KEY (channel, id))",
                       NULL, &st) != 0 ||
        cql_sync_query(c,
                       "CREATE TABLE IF NOT EXISTS " EXAMPLE_KEYSPACE ".last_message "
                       "(channel bigint PRIMARY KEY, id bigint)",
                       NULL, &st) != 0)
        example_die("create tables", &st);

    const char *body = "hello from a batch";
    cql_values v1, v2;
    cql_values_init(&v1);
    cql_values_add_bigint(&v1, 7);
    cql_values_add_bigint(&v1, 1001);
    cql_values_add_text(&v1, body, strlen(body));
    cql_values_init(&v2);
    cql_values_add_bigint(&v2, 7);
    cql_values_add_bigint(&v2, 1001);

    cql_statement parts[2];
    cql_statement_init(&parts[0]);
    parts[0].query =
        "INSERT INTO " EXAMPLE_KEYSPACE ".messages (channel, id, body) VALUES (?, ?, ?)";
    parts[0].values = &v1;
    cql_statement_init(&parts[1]);
    parts[1].query = "INSERT INTO " EXAMPLE_KEYSPACE ".last_message (channel, id) VALUES (?, ?)";
    parts[1].values = &v2;

    cql_batch_request b;
    cql_batch_request_init(&b);
    b.kind = CQL_BATCH_KIND_LOGGED;
    b.statements = parts;
    b.count = 2;
    b.idempotent = true; /* plain inserts of fixed values */
    int rc = cql_sync_batch(c, &b, &st);
    cql_values_free(&v1);
    cql_values_free(&v2);
    if (rc != 0)
        example_die("batch", &st);

    cql_result *res;
    if (cql_sync_query(c, "SELECT id FROM " EXAMPLE_KEYSPACE ".last_message WHERE channel = 7",
                       &res, &st) != 0)
        example_die("select", &st);
    int64_t id = 0;
    if (cql_result_next_row(res) != 0 || cql_row_get_bigint(res, 0, &id) != 0 || id != 1001) {
        fprintf(stderr, "last_message: expected 1001\n");
        return 1;
    }
    printf("batch applied: last message of channel 7 is %lld\n", (long long)id);
    cql_result_destroy(res);
    cql_sync_close(c);
    return 0;
}
