/* SPDX-License-Identifier: Apache-2.0 */
/* The test Cassandra node speaks native protocol v4: OPTIONS -> SUPPORTED.
 * Talks plain TCP to $MSGSTORE_TEST_CASSANDRA (default 127.0.0.1:9042), so it
 * checks the fixture (scripts/cassandra) independently of our CQL client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "raw_socket.h"

#define OP_OPTIONS   0x05
#define OP_SUPPORTED 0x06
#define MAX_BODY     (64 * 1024)

static int read_full(int fd, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* Reads a [string] at *off within body[0..len); returns 0 or -1 if truncated. */
static int take_string(const uint8_t *body, size_t len, size_t *off, char *out, size_t cap)
{
    if (*off + 2 > len)
        return -1;
    size_t n = be16(body + *off);
    *off += 2;
    if (*off + n > len)
        return -1;
    size_t c = n < cap - 1 ? n : cap - 1;
    memcpy(out, body + *off, c);
    out[c] = '\0';
    *off += n;
    return 0;
}

static void test_options_returns_supported_v4(void **state)
{
    (void)state;
    const char *addr = getenv("MSGSTORE_TEST_CASSANDRA");
    if (!addr || !*addr)
        addr = "127.0.0.1:9042";
    int fd = rawsock_connect(addr, 10);
    if (fd < 0)
        fail_msg("cannot connect to %s (is the cassandra fixture up?)", addr);

    /* version 4 request, flags 0, stream 7, OPTIONS, empty body */
    const uint8_t req[9] = {0x04, 0x00, 0x00, 0x07, OP_OPTIONS, 0, 0, 0, 0};
    assert_int_equal(write(fd, req, sizeof req), (ssize_t)sizeof req);

    uint8_t hdr[9];
    assert_int_equal(read_full(fd, hdr, sizeof hdr), 0);
    assert_int_equal(hdr[0], 0x84); /* response, protocol v4 */
    assert_int_equal(be16(hdr + 2), 7);
    assert_int_equal(hdr[4], OP_SUPPORTED);
    uint32_t len = (uint32_t)hdr[5] << 24 | (uint32_t)hdr[6] << 16 | (uint32_t)hdr[7] << 8 | hdr[8];
    assert_true(len > 2 && len <= MAX_BODY);
    uint8_t *body = malloc(len);
    assert_non_null(body);
    assert_int_equal(read_full(fd, body, len), 0);
    close(fd);

    /* [string multimap]: n x ([string] key, [string list] values) */
    size_t off = 2;
    int have_cql_version = 0, have_compression = 0;
    char key[128], val[128];
    for (uint16_t i = 0, n = be16(body); i < n; i++) {
        assert_int_equal(take_string(body, len, &off, key, sizeof key), 0);
        assert_true(off + 2 <= len);
        uint16_t m = be16(body + off);
        off += 2;
        for (uint16_t j = 0; j < m; j++) {
            assert_int_equal(take_string(body, len, &off, val, sizeof val), 0);
            if (strcmp(key, "CQL_VERSION") == 0 && strncmp(val, "3.", 2) == 0)
                have_cql_version = 1;
        }
        if (strcmp(key, "COMPRESSION") == 0)
            have_compression = 1;
    }
    assert_int_equal(off, len); /* the multimap fills the body exactly */
    free(body);
    assert_true(have_cql_version);
    assert_true(have_compression);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_returns_supported_v4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
