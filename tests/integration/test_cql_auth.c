/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Password authentication (SASL PLAIN) against the PasswordAuthenticator node
 * ($MSGSTORE_TEST_CASSANDRA_AUTH): the right credentials connect, wrong ones
 * and none are refused with clear errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cql_test.h"
#include "core/error.h"

static void opts(cql_options *o)
{
    cqlt_options(o, "MSGSTORE_TEST_CASSANDRA_AUTH", "127.0.0.2:9042");
}

static void test_auth_success(void **state)
{
    (void)state;
    cql_options o;
    opts(&o);
    o.username = cqlt_env("MSGSTORE_TEST_CASSANDRA_USER", "cassandra");
    o.password = cqlt_env("MSGSTORE_TEST_CASSANDRA_PASSWORD", "cassandra");
    cql_sync *c;
    cql_status st;
    int rc = cql_sync_connect(&o, &c, &st);
    if (rc)
        fprintf(stderr, "connect: %s\n", st.message);
    assert_int_equal(rc, 0);
    cql_result *r;
    assert_int_equal(cql_sync_query(c, "SELECT role FROM system_auth.roles", &r, &st), 0);
    assert_true(r->row_count >= 1);
    cql_result_destroy(r);
    /* the pool connections authenticated too: prepared statements run on them */
    cql_prepared *p;
    assert_int_equal(
        cql_sync_prepare(c, "SELECT release_version FROM system.local WHERE key = ?", &p, &st), 0);
    cql_values v;
    cql_values_init(&v);
    cql_values_add_text(&v, "local", 5);
    cql_statement s;
    cql_statement_init(&s);
    s.prepared = p;
    s.values = &v;
    assert_int_equal(cql_sync_execute(c, &s, &r, &st), 0);
    assert_int_equal(r->row_count, 1);
    cql_result_destroy(r);
    cql_values_free(&v);
    cql_prepared_release(p);
    cql_sync_close(c);
}

static void test_auth_failure(void **state)
{
    (void)state;
    cql_options o;
    opts(&o);
    o.username = "cassandra";
    o.password = "wrong-password";
    cql_sync *c;
    cql_status st;
    assert_int_equal(cql_sync_connect(&o, &c, &st), MS_ERR_UNAVAILABLE);
    assert_null(c);
    /* the reason is named: bad credentials from the server */
    assert_non_null(strstr(st.message, "Bad_credentials"));
    assert_null(strstr(st.message, "wrong-password")); /* never a secret in a message */

    /* no credentials at all against an authenticating server */
    opts(&o);
    assert_int_equal(cql_sync_connect(&o, &c, &st), MS_ERR_UNAVAILABLE);
    assert_non_null(strstr(st.message, "requires authentication"));
    assert_non_null(strstr(st.message, "PasswordAuthenticator"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_success),
        cmocka_unit_test(test_auth_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
