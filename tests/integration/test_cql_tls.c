/*
 * TLS against the client-TLS node ($MSGSTORE_TEST_CASSANDRA_TLS, CA and client
 * certificate in $MSGSTORE_TEST_TLS_DIR): verified connections work (the
 * server certificate's IP SAN matches), a wrong CA or a wrong host name is
 * refused, and plaintext against a TLS port fails cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cql_test.h"
#include "core/error.h"

static char ca[512], cert[512], key[512];

static int setup(void **state)
{
    (void)state;
    const char *dir = cqlt_env("MSGSTORE_TEST_TLS_DIR", "build/cassandra/tls");
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    snprintf(cert, sizeof(cert), "%s/client.pem", dir);
    snprintf(key, sizeof(key), "%s/client.key", dir);
    return 0;
}

static void opts(cql_options *o)
{
    cqlt_options(o, "MSGSTORE_TEST_CASSANDRA_TLS", "127.0.0.3:9042");
    o->tls.enabled = true;
    o->tls.ca_file = ca;
    o->connect_timeout_ms = 5000;
}

static void run_queries(cql_sync *c)
{
    cql_status st;
    cql_result *r;
    assert_int_equal(cql_sync_query(c, "SELECT release_version FROM system.local", &r, &st), 0);
    assert_int_equal(r->row_count, 1);
    cql_result_destroy(r);
    /* a big answer over TLS: many records, LZ4 inside TLS */
    assert_int_equal(cql_sync_query(c, "SELECT * FROM system_schema.columns", &r, &st), 0);
    assert_true(r->row_count > 100);
    cql_result_destroy(r);
    cql_host_info h;
    assert_int_equal(cql_sync_hosts(c, &h, 1), 1);
    assert_true(h.tls);
    assert_true(h.up);
}

static void test_tls_verified(void **state)
{
    (void)state;
    cql_options o;
    opts(&o);
    cql_sync *c;
    cql_status st;
    int rc = cql_sync_connect(&o, &c, &st);
    if (rc)
        fprintf(stderr, "connect: %s\n", st.message);
    assert_int_equal(rc, 0);
    run_queries(c);
    cql_sync_close(c);
}

static void test_tls_client_cert(void **state)
{
    (void)state;
    cql_options o;
    opts(&o);
    o.tls.cert_file = cert;
    o.tls.key_file = key;
    cql_sync *c;
    cql_status st;
    int rc = cql_sync_connect(&o, &c, &st);
    if (rc)
        fprintf(stderr, "connect: %s\n", st.message);
    assert_int_equal(rc, 0);
    run_queries(c);
    cql_sync_close(c);
}

static void test_tls_refusals(void **state)
{
    (void)state;
    cql_options o;
    cql_sync *c;
    cql_status st;
    /* no CA given: the system store does not know the test CA */
    opts(&o);
    o.tls.ca_file = NULL;
    assert_int_equal(cql_sync_connect(&o, &c, &st), MS_ERR_UNAVAILABLE);
    assert_non_null(strstr(st.message, "certificate verification failed"));
    /* a missing CA file is a clear configuration error */
    opts(&o);
    o.tls.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(cql_sync_connect(&o, &c, &st), MS_ERR_INVALID);
    assert_non_null(strstr(st.message, "CA file"));
    /* plaintext against the TLS port fails, it does not hang */
    opts(&o);
    o.tls.enabled = false;
    assert_true(cql_sync_connect(&o, &c, &st) < 0);
    assert_null(c);
    /* verification off (explicitly) connects without the CA */
    opts(&o);
    o.tls.ca_file = NULL;
    o.tls.verify_peer = false;
    o.tls.verify_hostname = false;
    assert_int_equal(cql_sync_connect(&o, &c, &st), 0);
    cql_sync_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_verified),
        cmocka_unit_test(test_tls_client_cert),
        cmocka_unit_test(test_tls_refusals),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
