/* SPDX-License-Identifier: Apache-2.0 */
/*
 * paging.c - read a partition of 250 rows 100 at a time with a pager: the
 * pager keeps the paging state between pages.
 */
#include "example.h"

int main(int argc, char **argv)
{
    cql_sync *c = example_connect(argc, argv);
    cql_status st;
    if (cql_sync_query(c,
                       "CREATE TABLE IF NOT EXISTS " EXAMPLE_KEYSPACE ".counts "
                       "(k int, n int, PRIMARY KEY (k, n))",
                       NULL, &st) != 0)
        example_die("create table", &st);
    cql_prepared *ins;
    if (cql_sync_prepare(c, "INSERT INTO " EXAMPLE_KEYSPACE ".counts (k, n) VALUES (1, ?)", &ins,
                         &st) != 0)
        example_die("prepare", &st);
    for (int32_t n = 0; n < 250; n++) {
        cql_values v;
        cql_values_init(&v);
        cql_values_add_int(&v, n);
        cql_statement s;
        cql_statement_init(&s);
        s.prepared = ins;
        s.values = &v;
        s.idempotent = true;
        int rc = cql_sync_execute(c, &s, NULL, &st);
        cql_values_free(&v);
        if (rc != 0)
            example_die("insert", &st);
    }
    cql_prepared_release(ins);

    cql_statement s;
    cql_statement_init(&s);
    s.query = "SELECT n FROM " EXAMPLE_KEYSPACE ".counts WHERE k = 1";
    s.page_size = 100;
    cql_pager *p;
    if (cql_pager_new(cql_sync_session(c), &s, &p) != 0)
        return 1;
    int pages = 0, rows = 0;
    int32_t last = -1;
    while (cql_pager_has_more(p)) {
        cql_result *res;
        if (cql_sync_pager_next(c, p, &res, &st) != 0)
            example_die("page", &st);
        pages++;
        while (cql_result_next_row(res) == 0) {
            int32_t n;
            if (cql_row_get_int(res, 0, &n) != 0 || n <= last)
                return 1;
            last = n;
            rows++;
        }
        printf("page %d: %d rows so far\n", pages, rows);
        cql_result_destroy(res);
    }
    cql_pager_free(p);
    cql_sync_close(c);
    return rows == 250 && pages >= 3 ? 0 : 1;
}
