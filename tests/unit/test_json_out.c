/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_json_out.c - the direct JSON writer of the hot answers
 * (src/server/json_out.c): numbers at their edges, ids as strings, a whole
 * message compared with what snprintf and the fields would give, strings
 * against a byte-by-byte escaper.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "server/server_internal.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* w's text as a C string (w is freed). */
static char *take(srv__jw *w, char *out, size_t n)
{
    assert_false(w->oom);
    assert_true(w->len < n);
    memcpy(out, w->p, w->len);
    out[w->len] = '\0';
    srv__jw_free(w);
    return out;
}

/* v as a JSON number is what printf writes. */
static void check_u64(uint64_t v)
{
    char want[32], got[32];
    srv__jw w;
    srv__jw_init(&w);
    srv__jw_u64(&w, v);
    snprintf(want, sizeof want, "%" PRIu64, v);
    assert_string_equal(take(&w, got, sizeof got), want);
}

static void test_numbers(void **state)
{
    (void)state;
    static const uint64_t u[] = {0,
                                 1,
                                 9,
                                 10,
                                 99,
                                 100,
                                 101,
                                 999,
                                 1000,
                                 12345,
                                 99999,
                                 1000000,
                                 1733400000000ull,
                                 1578794735198273536ull,
                                 9999999999999999999ull,
                                 10000000000000000000ull,
                                 UINT64_MAX};
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
        char want[32], got[32];
        srv__jw w;
        check_u64(u[i]);
        srv__jw_init(&w);
        srv__jw_id(&w, u[i]);
        snprintf(want, sizeof want, "\"%" PRIu64 "\"", u[i]);
        assert_string_equal(take(&w, got, sizeof got), want);
    }
    /* every digit count's edges: each power of ten and of two, and their neighbours */
    for (int k = 0; k < 64; k++) {
        uint64_t p10 = 1, edges[6];
        for (int j = 0; j < k % 20; j++)
            p10 *= 10;
        uint64_t p2 = 1ull << k;
        edges[0] = p10 - 1, edges[1] = p10, edges[2] = p10 + 1;
        edges[3] = p2 - 1, edges[4] = p2, edges[5] = p2 + 1;
        for (int e = 0; e < 6; e++)
            check_u64(edges[e]);
    }
    static const int64_t s[] = {0,         1,        -1, 42, -42, 100, -100, -1001234567890123ll,
                                INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        char want[32], got[32];
        srv__jw w;
        srv__jw_init(&w);
        srv__jw_i64s(&w, s[i]);
        snprintf(want, sizeof want, "\"%" PRId64 "\"", s[i]);
        assert_string_equal(take(&w, got, sizeof got), want);
    }
    /* optional ones: 0 is null */
    char got[32];
    srv__jw w;
    srv__jw_init(&w);
    srv__jw_opt_ms(&w, 0);
    srv__jw_raw(&w, ",", 1);
    srv__jw_opt_ms(&w, 1733400000123ull);
    srv__jw_raw(&w, ",", 1);
    srv__jw_opt_id(&w, 0);
    srv__jw_raw(&w, ",", 1);
    srv__jw_opt_id(&w, 7);
    assert_string_equal(take(&w, got, sizeof got), "null,1733400000123,null,\"7\"");
}

static void test_message(void **state)
{
    (void)state;
    store_message m;
    memset(&m, 0, sizeof m);
    m.id = 1578794735198273536ull;
    m.channel_id = (ms_xid){0, 12};
    m.sender_id = (ms_xid){0, 7};
    m.bucket = 20062;
    m.type = STORE_MSG_TEXT;
    m.content = "say \"hi\"\n";
    m.content_len = strlen(m.content);
    m.attachments = "[]";
    m.has_telegram = true;
    m.telegram_chat_id = -1001234567890ll;
    m.telegram_message_id = 77;
    m.created_at_ms = 1733400000000ull;
    m.is_edited = true;
    m.edited_at_ms = 1733400000999ull;
    char got[1024];
    srv__jw w;
    srv__jw_init(&w);
    srv__jw_message(&w, MS_ID_INT64, &m);
    take(&w, got, sizeof got);
    assert_non_null(strstr(got, "{\"id\":\"1578794735198273536\",\"channel_id\":\"12\",\"bucket\":"
                                "20062,\"sender_id\":\"7\","));
    assert_non_null(strstr(got, "\"content\":\"say \\\"hi\\\"\\n\",\"reply_to\":null,"
                                "\"attachments\":[],\"metadata\":null,\"nonce\":null,"));
    assert_non_null(strstr(got, "\"telegram\":{\"chat_id\":\"-1001234567890\",\"message_id\":"
                                "\"77\"},\"created_at_ms\":1733400000000,\"is_edited\":true,"
                                "\"edited_at_ms\":1733400000999,\"is_deleted\":false,"
                                "\"deleted_at_ms\":null}"));
}

/* Ids of many senders and both formats: the writer's cache of formatted ids never mixes them up. */
static void test_ids_and_escapes(void **state)
{
    (void)state;
    srv__jw w;
    srv__jw_init(&w);
    for (unsigned i = 0; i < 40; i++) {
        store_message m;
        memset(&m, 0, sizeof m);
        m.id = 1000 + i;
        m.channel_id = (ms_xid){0, 12345}; /* int64 and uuid text differ */
        m.sender_id = (ms_xid){i % 7, 100 + i % 7};
        m.content = "a\001b\t\\";
        m.content_len = strlen(m.content);
        m.metadata = "{\"k\":1}";
        m.nonce = "n\"1";
        ms_id_format f = i % 3 ? MS_ID_UUID : MS_ID_INT64;
        srv__jw_message(&w, f, &m);
        char got[2048], want[128], sender[MS_XID_STRLEN], channel[MS_XID_STRLEN];
        assert_true(w.len < sizeof got);
        memcpy(got, w.p, w.len);
        got[w.len] = '\0';
        w.len = 0;
        ms_xid_format(f, m.sender_id, sender);
        ms_xid_format(f, m.channel_id, channel);
        snprintf(want, sizeof want, "\"channel_id\":\"%s\",", channel);
        assert_non_null(strstr(got, want));
        snprintf(want, sizeof want, "\"sender_id\":\"%s\",", sender);
        assert_non_null(strstr(got, want));
        assert_non_null(strstr(got, "\"content\":\"a\\u0001b\\t\\\\\","));
        assert_non_null(strstr(got, "\"metadata\":{\"k\":1},\"nonce\":\"n\\\"1\","));
    }
    srv__jw_free(&w);
}

/* s escaped byte by byte, the plain way (what srv__jw_str must give), quoted, at out. */
static size_t ref_escape(const unsigned char *s, size_t n, char *out)
{
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\')
            o += (size_t)sprintf(out + o, "\\%c", c);
        else if (c == '\n')
            o += (size_t)sprintf(out + o, "\\n");
        else if (c == '\r')
            o += (size_t)sprintf(out + o, "\\r");
        else if (c == '\t')
            o += (size_t)sprintf(out + o, "\\t");
        else if (c == '\b')
            o += (size_t)sprintf(out + o, "\\b");
        else if (c == '\f')
            o += (size_t)sprintf(out + o, "\\f");
        else if (c < 0x20)
            o += (size_t)sprintf(out + o, "\\u%04x", c);
        else
            out[o++] = (char)c;
    }
    out[o++] = '"';
    return o;
}

/*
 * Strings are scanned eight bytes at a time: every byte value at every
 * position of strings of 1 to 40 bytes (in plain text, and next to UTF-8
 * bytes and the edges 0x1f / 0x20 / 0x7f), escaped exactly as byte by byte.
 */
static void test_string_scan(void **state)
{
    (void)state;
    static const unsigned char fill[] = {'a', 0x20, 0x7f, 0x80, 0xc3, 0xa9, 0xff, 0x21, 0x5b, 0x5d};
    unsigned char s[40];
    char want[40 * 6 + 3];
    for (size_t n = 1; n <= sizeof s; n++) {
        for (size_t pos = 0; pos < n; pos++) {
            for (unsigned v = 0; v < 256; v++) {
                for (size_t i = 0; i < n; i++)
                    s[i] = fill[(i + v) % sizeof fill];
                s[pos] = (unsigned char)v;
                srv__jw w;
                srv__jw_init(&w);
                srv__jw_str(&w, (const char *)s, n);
                size_t wl = ref_escape(s, n, want);
                assert_false(w.oom);
                assert_int_equal(w.len, wl);
                assert_memory_equal(w.p, want, wl);
                srv__jw_free(&w);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_message),
        cmocka_unit_test(test_ids_and_escapes),
        cmocka_unit_test(test_string_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
