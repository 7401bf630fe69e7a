/* SPDX-License-Identifier: Apache-2.0 */
/* Configuration: defaults per profile, parsing, and clear rejection of bad values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/error.h"

#include <string.h>

typedef struct {
    const char *kv[32][2];
} fake_env;

static const char *lookup(const char *name, void *ctx)
{
    fake_env *e = ctx;
    for (int i = 0; i < 32 && e->kv[i][0]; i++)
        if (strcmp(e->kv[i][0], name) == 0)
            return e->kv[i][1];
    return NULL;
}

static void test_defaults_development(void **state)
{
    (void)state;
    fake_env env = {{{NULL, NULL}}};
    ms_config c;
    char err[256];
    assert_int_equal(ms_config_load(&c, lookup, &env, err, sizeof err), 0);
    assert_int_equal(c.profile, MS_PROFILE_DEVELOPMENT);
    assert_false(c.store.scylla_enabled);
    assert_int_equal(ms_config_backend(&c), MS_BACKEND_SQLITE);
    assert_string_equal(c.store.scylla_contact_points, "localhost");
    assert_int_equal(c.store.scylla_port, 9042);
    assert_string_equal(c.store.scylla_local_datacenter, "datacenter1");
    assert_int_equal(c.store.scylla_connect_timeout_ms, 5000);
    assert_int_equal(c.store.scylla_request_timeout_ms, 10000);
    assert_int_equal(c.store.scylla_write_consistency, MS_CL_LOCAL_QUORUM);
    assert_int_equal(c.store.scylla_read_consistency, MS_CL_LOCAL_QUORUM);
    assert_int_equal(c.store.scylla_serial_consistency, MS_CL_LOCAL_SERIAL);
    assert_int_equal(c.store.scylla_prepared_cache_size, 1000);
    assert_int_equal(c.store.scylla_retry_max_attempts, 3);
    assert_int_equal(c.store.scylla_retry_base_delay_ms, 100);
    assert_int_equal(c.store.scylla_retry_max_delay_ms, 2000);
    assert_int_equal(c.store.scylla_breaker_failure_threshold, 5);
    assert_int_equal(c.store.scylla_breaker_reset_timeout_ms, 30000);
    assert_int_equal(c.port, 8080);
    assert_string_equal(c.bind, "127.0.0.1");
    assert_int_equal(c.store.max_content_chars, 4000);
    assert_int_equal(c.max_body_bytes, 65536);
    assert_int_equal(c.store.epoch_ms, 1420070400000ULL);
    assert_int_equal(c.ready_threshold_ms, 100);
    assert_string_equal(c.log_format, "text");
}

/* A program that embeds the store starts from store_config_defaults(): the same values. */
static void test_store_config_defaults(void **state)
{
    (void)state;
    fake_env env = {{{NULL, NULL}}};
    ms_config c;
    char err[256];
    assert_int_equal(ms_config_load(&c, lookup, &env, err, sizeof err), 0);
    store_config d;
    memset(&d, 0xA5, sizeof d);
    store_config_defaults(&d);
    assert_false(d.scylla_enabled);
    assert_string_equal(d.scylla_contact_points, c.store.scylla_contact_points);
    assert_int_equal(d.scylla_port, c.store.scylla_port);
    assert_int_equal(d.scylla_request_timeout_ms, c.store.scylla_request_timeout_ms);
    assert_int_equal(d.scylla_write_consistency, c.store.scylla_write_consistency);
    assert_string_equal(d.scylla_replication, c.store.scylla_replication);
    assert_int_equal(d.worker_id, c.store.worker_id);
    assert_int_equal(d.epoch_ms, c.store.epoch_ms);
    assert_int_equal(d.max_content_chars, c.store.max_content_chars);
    assert_int_equal(d.shutdown_timeout_ms, c.store.shutdown_timeout_ms);
    assert_int_equal(d.search_shards, c.store.search_shards);
    assert_int_equal(store_config_backend(&d), MS_BACKEND_SQLITE);
    assert_string_equal(d.sqlite_path, "msgstore.db");
    assert_string_equal(d.scylla_keyspace, "msgstore");
    assert_int_equal(d.id_format, MS_ID_UUID);
    d.scylla_enabled = true;
    assert_int_equal(store_config_backend(&d), MS_BACKEND_SCYLLA);
}

static void test_profiles(void **state)
{
    (void)state;
    fake_env prod = {{{"MSGSTORE_PROFILE", "production"}}};
    ms_config c;
    char err[256];
    assert_int_equal(ms_config_load(&c, lookup, &prod, err, sizeof err), 0);
    assert_int_equal(c.profile, MS_PROFILE_PRODUCTION);
    assert_string_equal(c.log_format, "json");
    assert_string_equal(c.store.scylla_replication, "datacenter1:3");

    /* an explicit variable beats the profile's default */
    fake_env prod2 = {{{"MSGSTORE_PROFILE", "PRODUCTION"}, {"MSGSTORE_LOG_FORMAT", "text"}}};
    assert_int_equal(ms_config_load(&c, lookup, &prod2, err, sizeof err), 0);
    assert_string_equal(c.log_format, "text");

    fake_env test = {{{"MSGSTORE_PROFILE", "test"}}};
    assert_int_equal(ms_config_load(&c, lookup, &test, err, sizeof err), 0);
    assert_int_equal(c.store.scylla_breaker_reset_timeout_ms, 1000);
    assert_string_equal(c.store.scylla_keyspace, "msgstore_test");
}

static void test_values_parsed(void **state)
{
    (void)state;
    fake_env env = {{{"SCYLLA_ENABLED", "yes"},
                     {"SCYLLA_CONTACT_POINTS", "10.0.0.1,10.0.0.2:9043"},
                     {"SCYLLA_PORT", "19042"},
                     {"SCYLLA_READ_CONSISTENCY", "local_one"},
                     {"SCYLLA_CONNECT_TIMEOUT", "2.5"},
                     {"SCYLLA_REQUEST_TIMEOUT", "250ms"},
                     {"MSGSTORE_SHUTDOWN_TIMEOUT", "1m"},
                     {"SCYLLA_USERNAME", "app"},
                     {"SCYLLA_PASSWORD", "s3cret"},
                     {"MSGSTORE_WORKER_ID", "1023"}}};
    ms_config c;
    char err[256];
    assert_int_equal(ms_config_load(&c, lookup, &env, err, sizeof err), 0);
    assert_true(c.store.scylla_enabled);
    assert_int_equal(ms_config_backend(&c), MS_BACKEND_SCYLLA);
    assert_string_equal(c.store.scylla_contact_points, "10.0.0.1,10.0.0.2:9043");
    assert_int_equal(c.store.scylla_port, 19042);
    assert_int_equal(c.store.scylla_read_consistency, MS_CL_LOCAL_ONE);
    assert_int_equal(c.store.scylla_connect_timeout_ms, 2500);
    assert_int_equal(c.store.scylla_request_timeout_ms, 250);
    assert_int_equal(c.store.shutdown_timeout_ms, 60000);
    assert_int_equal(c.store.worker_id, 1023);
    assert_string_equal(c.store.scylla_password, "s3cret");
}

/* Each bad value fails, and the message names the variable, the value and what is allowed. */
static void expect_bad(const char *name, const char *value, const char *allowed)
{
    fake_env env = {{{name, value}}};
    ms_config c;
    char err[512];
    assert_int_equal(ms_config_load(&c, lookup, &env, err, sizeof err), MS_ERR_INVALID);
    assert_non_null(strstr(err, name));
    assert_non_null(strstr(err, value));
    assert_non_null(strstr(err, allowed));
}

static void test_bad_values_rejected(void **state)
{
    (void)state;
    expect_bad("SCYLLA_PORT", "abc", "integer from 1 to 65535");
    expect_bad("SCYLLA_PORT", "70000", "integer from 1 to 65535");
    expect_bad("SCYLLA_PORT", "", "integer");
    expect_bad("SCYLLA_PORT", "12 ", "integer");
    expect_bad("SCYLLA_ENABLED", "maybe", "true or false");
    expect_bad("SCYLLA_READ_CONSISTENCY", "STRONG", "LOCAL_QUORUM");
    expect_bad("SCYLLA_SERIAL_CONSISTENCY", "QUORUM", "LOCAL_SERIAL");
    expect_bad("SCYLLA_CONNECT_TIMEOUT", "-1", "duration");
    expect_bad("SCYLLA_CONNECT_TIMEOUT", "5 parsecs", "duration");
    expect_bad("SCYLLA_PROTOCOL_VERSION", "5", "from 4 to 4");
    expect_bad("MSGSTORE_PROFILE", "staging", "development|production|test");
    expect_bad("MSGSTORE_WORKER_ID", "1024", "from 0 to 1023");
    expect_bad("MSGSTORE_LOG_LEVEL", "loud", "debug|info|warn|error");
    expect_bad("SCYLLA_KEYSPACE", "a;DROP", "letters, digits and underscores");
    expect_bad("SCYLLA_CONTACT_POINTS", "", "must not be empty");
}

static void test_cross_checks(void **state)
{
    (void)state;
    fake_env env = {{{"SCYLLA_USERNAME", "app"}}};
    ms_config c;
    char err[256];
    assert_int_equal(ms_config_load(&c, lookup, &env, err, sizeof err), MS_ERR_INVALID);
    assert_non_null(strstr(err, "SCYLLA_PASSWORD"));

    fake_env env2 = {{{"SCYLLA_RETRY_BASE_DELAY", "5s"}, {"SCYLLA_RETRY_MAX_DELAY", "1s"}}};
    assert_int_equal(ms_config_load(&c, lookup, &env2, err, sizeof err), MS_ERR_INVALID);
    assert_non_null(strstr(err, "SCYLLA_RETRY_MAX_DELAY"));

    fake_env env3 = {{{"SCYLLA_RECONNECT_BASE_DELAY", "1m"}, {"SCYLLA_RECONNECT_MAX_DELAY", "1s"}}};
    assert_int_equal(ms_config_load(&c, lookup, &env3, err, sizeof err), MS_ERR_INVALID);
    assert_non_null(strstr(err, "SCYLLA_RECONNECT_MAX_DELAY"));
    /* constant: the cap does not apply */
    fake_env env4 = {{{"SCYLLA_RECONNECT_POLICY", "constant"},
                      {"SCYLLA_RECONNECT_BASE_DELAY", "1m"},
                      {"SCYLLA_RECONNECT_MAX_DELAY", "1s"}}};
    assert_int_equal(ms_config_load(&c, lookup, &env4, err, sizeof err), 0);
    fake_env env5 = {{{"SCYLLA_RECONNECT_POLICY", "linear"}}};
    assert_int_equal(ms_config_load(&c, lookup, &env5, err, sizeof err), MS_ERR_INVALID);
    fake_env env6 = {{{"SCYLLA_SPECULATIVE_DELAY", "20s"}, {"SCYLLA_REQUEST_TIMEOUT", "10s"}}};
    assert_int_equal(ms_config_load(&c, lookup, &env6, err, sizeof err), MS_ERR_INVALID);
    assert_non_null(strstr(err, "SCYLLA_SPECULATIVE_DELAY"));
}

static void test_set_override(void **state)
{
    (void)state;
    fake_env env = {{{NULL, NULL}}};
    ms_config c;
    char err[256];
    assert_int_equal(ms_config_load(&c, lookup, &env, err, sizeof err), 0);
    assert_int_equal(ms_config_set(&c, "MSGSTORE_PORT", "9999", err, sizeof err), 0);
    assert_int_equal(c.port, 9999);
    assert_int_equal(ms_config_set(&c, "MSGSTORE_PORT", "x", err, sizeof err), MS_ERR_INVALID);
    assert_int_equal(c.port, 9999); /* a rejected value changes nothing */
    assert_int_equal(ms_config_set(&c, "NO_SUCH", "1", err, sizeof err), MS_ERR_INVALID);
    assert_non_null(strstr(err, "NO_SUCH"));
}

/* A bad value reads the same from the environment and from a --NAME=VALUE flag. */
static void test_env_and_flag_same_words(void **state)
{
    (void)state;
    fake_env bad = {{{"MSGSTORE_PORT", "abc"}, {NULL, NULL}}};
    fake_env none = {{{NULL, NULL}}};
    ms_config c;
    char from_env[256], from_flag[256];
    assert_int_equal(ms_config_load(&c, lookup, &bad, from_env, sizeof from_env), MS_ERR_INVALID);
    assert_int_equal(ms_config_load(&c, lookup, &none, from_flag, sizeof from_flag), 0);
    assert_int_equal(ms_config_set(&c, "MSGSTORE_PORT", "abc", from_flag, sizeof from_flag),
                     MS_ERR_INVALID);
    assert_string_equal(from_env, from_flag);
    assert_non_null(strstr(from_env, "invalid configuration: MSGSTORE_PORT=\"abc\": "));
    /* a check across settings reads the same way */
    fake_env half = {{{"SCYLLA_USERNAME", "u"}, {NULL, NULL}}};
    assert_int_equal(ms_config_load(&c, lookup, &half, from_env, sizeof from_env), MS_ERR_INVALID);
    assert_int_equal(ms_config_load(&c, lookup, &none, from_flag, sizeof from_flag), 0);
    assert_int_equal(ms_config_set(&c, "SCYLLA_USERNAME", "u", from_flag, sizeof from_flag),
                     MS_ERR_INVALID);
    assert_string_equal(from_env, from_flag);
    /* a tiny buffer is still terminated */
    char tiny[8];
    assert_int_equal(ms_config_set(&c, "MSGSTORE_PORT", "abc", tiny, sizeof tiny), MS_ERR_INVALID);
    assert_true(strlen(tiny) < sizeof tiny);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_development),
        cmocka_unit_test(test_store_config_defaults),
        cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_values_parsed),
        cmocka_unit_test(test_bad_values_rejected),
        cmocka_unit_test(test_cross_checks),
        cmocka_unit_test(test_set_override),
        cmocka_unit_test(test_env_and_flag_same_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
