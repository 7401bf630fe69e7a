/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_xid.c - channel and user ids (include/msgstore/id.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "msgstore/id.h"

static void test_uuid_round_trip(void **state)
{
    (void)state;
    ms_xid x;
    const char *up = "6F1C2E3A-9B8D-4C7E-8F10-123456789ABC";
    assert_int_equal(ms_xid_parse(MS_ID_UUID, up, strlen(up), &x), 0);
    assert_true(x.hi == 0x6f1c2e3a9b8d4c7eull && x.lo == 0x8f10123456789abcull);
    char s[MS_XID_STRLEN];
    assert_int_equal(ms_xid_format(MS_ID_UUID, x, s), 36);
    assert_string_equal(s, "6f1c2e3a-9b8d-4c7e-8f10-123456789abc");
    uint8_t b[16];
    ms_xid_to_bytes(x, b);
    assert_int_equal(b[0], 0x6f);
    assert_int_equal(b[15], 0xbc);
    assert_true(ms_xid_eq(ms_xid_from_bytes(b), x));
    assert_true(ms_xid_valid(MS_ID_UUID, x));
    assert_false(ms_xid_valid(MS_ID_INT64, x));
}

static void test_uuid_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "00000000-0000-0000-0000-000000000000", /* nil: "none" */
        "6f1c2e3a9b8d4c7e8f10123456789abc",     /* no dashes */
        "{6f1c2e3a-9b8d-4c7e-8f10-123456789abc}",
        "6f1c2e3a-9b8d-4c7e-8f10-123456789ab",
        "6f1c2e3a-9b8d-4c7e-8f10-123456789abcd",
        "6f1c2e3a-9b8d-4c7e-8f10_123456789abc",
        "6g1c2e3a-9b8d-4c7e-8f10-123456789abc",
        "12345",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms_xid x = {7, 7};
        assert_int_equal(ms_xid_parse(MS_ID_UUID, bad[i], strlen(bad[i]), &x), -1);
        assert_true(x.hi == 7 && x.lo == 7);
    }
}

static void test_int64(void **state)
{
    (void)state;
    ms_xid x;
    assert_int_equal(ms_xid_parse(MS_ID_INT64, "9223372036854775807", 19, &x), 0);
    assert_true(x.hi == 0 && x.lo == (uint64_t)INT64_MAX);
    char s[MS_XID_STRLEN];
    assert_int_equal(ms_xid_format(MS_ID_INT64, x, s), 19);
    assert_string_equal(s, "9223372036854775807");
    assert_int_equal(ms_xid_format(MS_ID_INT64, ms_xid_int(1), s), 1);
    assert_string_equal(s, "1");
    static const char *const bad[] = {
        "", "0", "01", "-1", "+1", "1 ", "9223372036854775808", "18446744073709551616", "1e3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ms_xid_parse(MS_ID_INT64, bad[i], strlen(bad[i]), &x), -1);
    assert_false(ms_xid_valid(MS_ID_INT64, ms_xid_int(0)));
    assert_false(ms_xid_valid(MS_ID_INT64, ms_xid_int((uint64_t)INT64_MAX + 1)));
}

static void test_order_and_hash(void **state)
{
    (void)state;
    ms_xid a = {1, 9}, b = {2, 0}, c = {2, 1};
    assert_int_equal(ms_xid_cmp(a, b), -1);
    assert_int_equal(ms_xid_cmp(c, b), 1);
    assert_int_equal(ms_xid_cmp(c, c), 0);
    assert_true(ms_xid_hash(a) != ms_xid_hash(b));
    assert_true(ms_xid_hash(ms_xid_int(1)) != ms_xid_hash(ms_xid_int(2)));
    ms_id_format f;
    assert_int_equal(ms_id_format_parse("uuid", &f), 0);
    assert_int_equal(f, MS_ID_UUID);
    assert_int_equal(ms_id_format_parse("int64", &f), 0);
    assert_int_equal(f, MS_ID_INT64);
    assert_int_equal(ms_id_format_parse("UUID", &f), -1);
    assert_string_equal(ms_id_format_name(MS_ID_INT64), "int64");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_round_trip),
        cmocka_unit_test(test_uuid_refused),
        cmocka_unit_test(test_int64),
        cmocka_unit_test(test_order_and_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
