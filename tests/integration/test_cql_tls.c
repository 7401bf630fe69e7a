/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS against the client-TLS node ($MSGSTORE_TEST_CASSANDRA_TLS, CA and client
 * certificate in $MSGSTORE_TEST_TLS_DIR), which requires client certificates
 * (scripts/cassandra): verified connections with the client certificate work
 * (the server certificate's IP SAN matches); without a client certificate the
 * node refuses; a wrong CA or a wrong host name (the node reached through a
 * proxy on 127.0.0.1) is refused by the client; plaintext against a TLS port
 * fails cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cql_test.h"
#include "core/error.h"
#include "tcp_proxy.h"

#include <sys/stat.h>

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

/* The node's options: TLS verified against the test CA, with the client certificate. */
static void opts(cql_options *o)
{
    cqlt_options(o, "MSGSTORE_TEST_CASSANDRA_TLS", "127.0.0.3:9042");
    o->tls.enabled = true;
    o->tls.ca_file = ca;
    o->tls.cert_file = cert;
    o->tls.key_file = key;
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

/* The node requires a client certificate: without one it ends the handshake. */
static void test_tls_client_cert_required(void **state)
{
    (void)state;
    char marker[600];
    snprintf(marker, sizeof(marker), "%s/client-auth-required",
             cqlt_env("MSGSTORE_TEST_TLS_DIR", "build/cassandra/tls"));
    struct stat sb;
    if (stat(marker, &sb) != 0)
        fail_msg("the tls node does not require client certificates (%s missing): it was started "
                 "with MSGSTORE_CASSANDRA_TLS_CLIENT_AUTH=0 or by an older scripts/cassandra; "
                 "restart it (scripts/cassandra stop tls)",
                 marker);
    cql_options o;
    opts(&o);
    o.tls.cert_file = NULL;
    o.tls.key_file = NULL;
    o.connect_timeout_ms = 3000;
    cql_sync *c = NULL;
    cql_status st;
    int rc = cql_sync_connect(&o, &c, &st);
    if (rc == 0)
        cql_sync_close(c);
    assert_true(rc < 0);
    assert_null(c);
    fprintf(stderr, "without a client certificate: %s\n", st.message);
    /* the same options with the certificate connect */
    opts(&o);
    assert_int_equal(cql_sync_connect(&o, &c, &st), 0);
    cql_sync_close(c);
}

/* The certificate names 127.0.0.3: the node reached as 127.0.0.1 (a proxy) is refused,
 * and connects once host name verification is off (the refusal was the name). */
static void test_tls_wrong_host_name(void **state)
{
    (void)state;
    const char *node = cqlt_env("MSGSTORE_TEST_CASSANDRA_TLS", "127.0.0.3:9042");
    char host[64];
    snprintf(host, sizeof(host), "%.*s", (int)strcspn(node, ":"), node);
    proxy p;
    proxy_start(&p, host, 9042);
    char contact[64];
    snprintf(contact, sizeof(contact), "127.0.0.1");
    cql_options o;
    opts(&o);
    o.contact_points = contact;
    o.port = p.port;
    cql_sync *c = NULL;
    cql_status st;
    assert_int_equal(cql_sync_connect(&o, &c, &st), MS_ERR_UNAVAILABLE);
    assert_null(c);
    fprintf(stderr, "wrong host name: %s\n", st.message);
    assert_non_null(strstr(st.message, "certificate verification failed"));
    opts(&o);
    o.contact_points = contact;
    o.port = p.port;
    o.tls.verify_hostname = false;
    int rc = cql_sync_connect(&o, &c, &st);
    if (rc)
        fprintf(stderr, "connect without the name check: %s\n", st.message);
    assert_int_equal(rc, 0);
    cql_status qs;
    cql_result *r;
    assert_int_equal(cql_sync_query(c, "SELECT release_version FROM system.local", &r, &qs), 0);
    cql_result_destroy(r);
    cql_sync_close(c);
    proxy_stop(&p);
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
        cmocka_unit_test(test_tls_client_cert_required),
        cmocka_unit_test(test_tls_wrong_host_name),
        cmocka_unit_test(test_tls_refusals),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
