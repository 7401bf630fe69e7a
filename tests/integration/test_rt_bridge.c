/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Redis bridge against a real redis-server: two hubs (two "instances" in one
 * process, each with its own bridge thread and connections), events from one
 * reaching subscribers of the other, own events not delivered twice, typing
 * keys with a TTL in Redis, and Redis killed and restarted mid-test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/error.h"
#include "realtime/realtime.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The id format of the hubs (both instances share it, as they share a store). */
static ms_id_format FMT = MS_ID_INT64;

/* Channel or user id n in FMT: n itself, or a UUID whose low bits are n. */
static ms_xid X(uint64_t n)
{
    return FMT == MS_ID_INT64 ? ms_xid_int(n)
                              : (ms_xid){0x6f1c2b3a5d7e4000ULL, 0x8000000000000000ULL | n};
}

typedef struct {
    rt_sub *sub;
    char got[256][512];
    int ngot;
} client;

static void on_ready(rt_sub *s, void *ctx)
{
    client *c = ctx;
    rt_msg *m;
    while ((m = rt_sub_pop(s))) {
        if (c->ngot < 256)
            snprintf(c->got[c->ngot++], sizeof c->got[0], "%s", m->json);
        rt_msg_unref(m);
    }
}

typedef struct {
    rt_hub *hub;
    rt_bridge *bridge;
    uv_loop_t loop;
} instance;

static instance A, B;
static const rt_redis_tls *TLS; /* rediss:// files of the instances started next */

static void sleep_ms(int ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

static void spin(void)
{
    if (A.hub)
        uv_run(&A.loop, UV_RUN_NOWAIT);
    if (B.hub)
        uv_run(&B.loop, UV_RUN_NOWAIT);
    sleep_ms(2);
}

#define WAIT_UNTIL(cond, ms)                                                                       \
    do {                                                                                           \
        for (int _i = 0; _i < (ms) / 2 && !(cond); _i++)                                           \
            spin();                                                                                \
    } while (0)

static void start(instance *in, const char *url, int worker_id)
{
    rt_hub_options o;
    rt_hub_options_default(&o);
    o.worker_id = worker_id;
    o.shards = 8;
    o.id_format = FMT;
    uv_loop_init(&in->loop);
    assert_int_equal(rt_hub_create(&o, &in->hub), 0);
    assert_int_equal(rt_hub_attach(in->hub, 0, &in->loop), 0);
    char err[256];
    assert_int_equal(rt_bridge_start(in->hub, url, TLS, &in->bridge, err, sizeof err), 0);
}

static void stop(instance *in)
{
    rt_bridge_stop(in->bridge);
    rt_hub_detach(in->hub, 0);
    uv_run(&in->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&in->loop), 0);
    rt_hub_destroy(in->hub);
    memset(in, 0, sizeof *in);
}

static int count_of(const client *c, const char *needle)
{
    int n = 0;
    for (int i = 0; i < c->ngot; i++)
        n += strstr(c->got[i], needle) != NULL;
    return n;
}

/* Publishes probes on `from` until one reaches `to` (its shard subscription is up). */
static void await_route(instance *from, client *to, uint64_t channel)
{
    int before = to->ngot;
    for (int i = 0; i < 100 && to->ngot == before; i++) {
        assert_int_equal(
            rt_publish(from->hub, RT_READ_POSITION, X(channel), "{\"probe\":1}", 11, NULL), 0);
        WAIT_UNTIL(to->ngot > before, 100);
    }
    assert_true(to->ngot > before);
    /* Let stragglers of the probes arrive, then forget them. */
    WAIT_UNTIL(false, 100);
    to->ngot = 0;
}

static const char *redis_url(void)
{
    const char *u = getenv("MSGSTORE_TEST_REDIS");
    return u ? u : "redis://127.0.0.1:6390";
}

/* Events, replay and typing between two instances over the Redis at url. */
static void cross_instance(const char *url)
{
    start(&A, url, 1);
    start(&B, url, 2);
    WAIT_UNTIL(rt_bridge_status(A.bridge, NULL, 0) == RT_BRIDGE_UP &&
                   rt_bridge_status(B.bridge, NULL, 0) == RT_BRIDGE_UP,
               5000);
    assert_int_equal(rt_bridge_status(A.bridge, NULL, 0), RT_BRIDGE_UP);

    client ca = {0}, cb = {0};
    assert_int_equal(rt_sub_create(A.hub, 0, on_ready, &ca, &ca.sub), 0);
    assert_int_equal(rt_sub_create(B.hub, 0, on_ready, &cb, &cb.sub), 0);
    assert_int_equal(rt_sub_add(ca.sub, X(1001), false, 0), 0);
    assert_int_equal(rt_sub_add(cb.sub, X(1001), false, 0), 0);
    await_route(&A, &cb, 1001);
    await_route(&B, &ca, 1001);
    ca.ngot = cb.ngot = 0;

    uint64_t pos;
    assert_int_equal(
        rt_publish(A.hub, RT_MESSAGE_CREATED, X(1001), "{\"content\":\"hello from A\"}", 26, &pos),
        0);
    WAIT_UNTIL(cb.ngot >= 1 && ca.ngot >= 1, 3000);
    WAIT_UNTIL(false, 200); /* a duplicate would come back from Redis now */
    assert_int_equal(cb.ngot, 1);
    assert_int_equal(ca.ngot, 1); /* own event: once, not again from Redis */
    assert_string_equal(ca.got[0], cb.got[0]);
    char want[64];
    snprintf(want, sizeof want, "\"position\":\"%" PRIu64 "\"", pos);
    assert_non_null(strstr(cb.got[0], want));
    assert_non_null(strstr(cb.got[0], "hello from A"));

    /* A channel B does not follow does not reach it. */
    assert_int_equal(rt_publish(A.hub, RT_MESSAGE_CREATED, X(1002), NULL, 0, NULL), 0);
    WAIT_UNTIL(false, 200);
    assert_int_equal(cb.ngot, 1);

    /* Replay on B of events that came from A. */
    rt_sub_destroy(cb.sub);
    cb.ngot = 0;
    uint64_t p2;
    assert_int_equal(rt_publish(A.hub, RT_MESSAGE_UPDATED, X(1001), NULL, 0, &p2), 0);
    WAIT_UNTIL(ca.ngot == 2, 2000);
    WAIT_UNTIL(false, 200); /* reaches B's ring */
    assert_int_equal(rt_sub_create(B.hub, 0, on_ready, &cb, &cb.sub), 0);
    assert_int_equal(rt_sub_add(cb.sub, X(1001), true, pos), 0);
    on_ready(cb.sub, &cb);
    assert_int_equal(cb.ngot, 1);
    assert_non_null(strstr(cb.got[0], "message.updated"));

    /* Typing on A: a key with a TTL in Redis, an event and a table entry on B. */
    cb.ngot = 0;
    assert_int_equal(rt_typing(A.hub, X(1001), X(555)), 0);
    WAIT_UNTIL(cb.ngot == 1, 2000);
    assert_int_equal(count_of(&cb, "\"type\":\"typing\""), 1);
    ms_xid users[4];
    assert_int_equal(rt_ephemeral_list(B.hub, X(1001), true, users, 4), 1);
    assert_true(ms_xid_eq(users[0], X(555)));
    rt_redis_url u;
    char err[256];
    assert_int_equal(rt_redis_url_parse(redis_url(), &u, err, sizeof err), 0);
    redisContext *rc = redisConnect(u.host, u.port);
    assert_non_null(rc);
    assert_int_equal(rc->err, 0);
    redisReply *r = NULL;
    char key[128], ch[MS_XID_STRLEN], us[MS_XID_STRLEN];
    ms_xid_format(FMT, X(1001), ch);
    ms_xid_format(FMT, X(555), us);
    snprintf(key, sizeof key, "msgstore:typing:%s:%s", ch, us);
    for (int i = 0; i < 100; i++) {
        r = redisCommand(rc, "PTTL %s", key);
        if (r->integer > 0)
            break;
        freeReplyObject(r);
        r = NULL;
        sleep_ms(10);
    }
    if (!r)
        fail_msg("no TTL on %s", key);
    else
        assert_true(r->integer > 0 && r->integer <= RT_TYPING_TTL_MS);
    freeReplyObject(r);
    redisFree(rc);

    rt_bridge_stats bs;
    rt_bridge_stats_get(A.bridge, &bs);
    assert_true(bs.published >= 3);
    rt_bridge_stats_get(B.bridge, &bs);
    assert_true(bs.received >= 3);

    rt_sub_destroy(ca.sub);
    rt_sub_destroy(cb.sub);
    stop(&A);
    stop(&B);
}

static void test_cross_instance(void **state)
{
    (void)state;
    cross_instance(redis_url());
}

static void redis_ctl(const char *cmd, int port)
{
    char line[1024];
    snprintf(line, sizeof line, "%s/scripts/redis %s %d", getenv("MSGSTORE_SOURCE_DIR"), cmd, port);
    assert_int_equal(system(line), 0);
}

/* A port nothing listens on now (other worktrees run these tests at the same time). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_redis_restart(void **state)
{
    (void)state;
    const int port = free_port(); /* our own server: this test kills it */
    redis_ctl("start", port);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    start(&A, url, 3);
    start(&B, url, 4);
    client ca = {0}, cb = {0};
    assert_int_equal(rt_sub_create(A.hub, 0, on_ready, &ca, &ca.sub), 0);
    assert_int_equal(rt_sub_create(B.hub, 0, on_ready, &cb, &cb.sub), 0);
    assert_int_equal(rt_sub_add(ca.sub, X(77), false, 0), 0);
    assert_int_equal(rt_sub_add(cb.sub, X(77), false, 0), 0);
    await_route(&A, &cb, 77);
    ca.ngot = 0;

    /* Redis dies (SIGKILL). */
    redis_ctl("kill", port);
    WAIT_UNTIL(rt_bridge_status(B.bridge, NULL, 0) == RT_BRIDGE_DOWN &&
                   rt_bridge_status(A.bridge, NULL, 0) == RT_BRIDGE_DOWN,
               5000);
    char err[256];
    assert_int_equal(rt_bridge_status(B.bridge, err, sizeof err), RT_BRIDGE_DOWN);
    assert_true(err[0] != '\0');
    /* Local delivery goes on; A's events cannot reach B. */
    assert_int_equal(rt_publish(B.hub, RT_MESSAGE_CREATED, X(77), "{\"n\":\"local\"}", 13, NULL),
                     0);
    assert_int_equal(rt_publish(A.hub, RT_MESSAGE_CREATED, X(77), "{\"n\":\"lost\"}", 12, NULL), 0);
    WAIT_UNTIL(cb.ngot == 1 && ca.ngot == 1, 2000);
    WAIT_UNTIL(false, 300);
    assert_int_equal(cb.ngot, 1);
    assert_non_null(strstr(cb.got[0], "local"));
    assert_int_equal(ca.ngot, 1);
    assert_non_null(strstr(ca.got[0], "lost"));
    rt_bridge_stats bs;
    rt_bridge_stats_get(A.bridge, &bs);
    assert_true(bs.dropped >= 1);

    /* Redis comes back: both reconnect by themselves; B's subscriber is told
     * it may have missed events (resync), then A's events flow again. */
    cb.ngot = ca.ngot = 0;
    redis_ctl("start", port);
    WAIT_UNTIL(rt_bridge_status(B.bridge, NULL, 0) == RT_BRIDGE_UP &&
                   rt_bridge_status(A.bridge, NULL, 0) == RT_BRIDGE_UP,
               10000);
    assert_int_equal(rt_bridge_status(A.bridge, NULL, 0), RT_BRIDGE_UP);
    assert_int_equal(rt_bridge_status(B.bridge, NULL, 0), RT_BRIDGE_UP);
    WAIT_UNTIL(count_of(&cb, "\"type\":\"resync\"") >= 1 &&
                   count_of(&ca, "\"type\":\"resync\"") >= 1,
               5000);
    assert_true(count_of(&cb, "\"reason\":\"redis_gap\"") >= 1);
    assert_true(count_of(&ca, "\"type\":\"resync\"") >= 1);
    cb.ngot = 0;
    assert_int_equal(rt_publish(A.hub, RT_MESSAGE_CREATED, X(77), "{\"n\":\"back\"}", 12, NULL), 0);
    WAIT_UNTIL(count_of(&cb, "back") == 1, 3000);
    assert_int_equal(count_of(&cb, "back"), 1);
    rt_bridge_stats_get(B.bridge, &bs);
    assert_true(bs.reconnects >= 1);

    rt_sub_destroy(ca.sub);
    rt_sub_destroy(cb.sub);
    stop(&A);
    stop(&B);
    redis_ctl("stop", port);
}

static void sh(const char *dir, const char *cmd)
{
    char line[4096];
    snprintf(line, sizeof line, "cd '%s' && { %s; } >/dev/null 2>&1", dir, cmd);
    if (system(line) != 0)
        fail_msg("failed: %s", cmd);
}

/* err names want, or its alternative want2 (NULL: none). */
static bool names(const char *err, const char *want, const char *want2)
{
    return strstr(err, want) || (want2 && strstr(err, want2));
}

/*
 * An instance on url (with TLS's files) that never comes up: its error names
 * want (or want2).
 */
static void refused(const char *url, const char *want, const char *want2)
{
    start(&A, url, 6);
    char err[256] = "";
    WAIT_UNTIL(rt_bridge_status(A.bridge, err, sizeof err) != RT_BRIDGE_UP &&
                   names(err, want, want2),
               3000);
    assert_int_equal(rt_bridge_status(A.bridge, err, sizeof err), RT_BRIDGE_CONNECTING);
    if (!names(err, want, want2))
        fail_msg("err: \"%s\", expected \"%s\"", err, want);
    print_message("refused as expected: %s\n", err);
    stop(&A);
}

/* CONFIG SET on the plain port of the test's Redis (TLS settings change at run time). */
static void redis_config(int port, const char *name, const char *value, const char *name2,
                         const char *value2)
{
    redisContext *rc = redisConnect("127.0.0.1", port);
    assert_non_null(rc);
    assert_int_equal(rc->err, 0);
    redisReply *r = name2 ? redisCommand(rc, "CONFIG SET %s %s %s %s", name, value, name2, value2)
                          : redisCommand(rc, "CONFIG SET %s %s", name, value);
    assert_non_null(r);
    if (r->type != REDIS_REPLY_STATUS)
        fail_msg("CONFIG SET %s: %s", name, r->str ? r->str : "?");
    freeReplyObject(r);
    redisFree(rc);
}

/*
 * rediss://: a redis-server with a TLS port (its certificate for IP 127.0.0.1
 * signed by a CA made here) carries events between two instances that trust
 * that CA; an instance that trusts another CA is refused and says why, as is
 * a certificate of the right CA for another name; with tls-auth-clients, the
 * client certificate of the settings is sent.
 */
static void test_tls(void **state)
{
    (void)state;
    char dir[] = "/tmp/rt_bridge_tls_XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 -subj /CN=msgstore-test-ca "
             "&& openssl req -x509 %s -keyout other.key -out other.pem -days 2 -subj /CN=other-ca "
             "&& openssl req %s -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 "
             "&& printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf "
             "&& openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out srv.pem -days 2 -extfile ext.cnf "
             "&& openssl req %s -keyout name.key -out name.csr -subj /CN=other.example "
             "&& printf 'subjectAltName=DNS:other.example\\n' > name.cnf "
             "&& openssl x509 -req -in name.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out name.pem -days 2 -extfile name.cnf "
             "&& openssl req %s -keyout cli.key -out cli.csr -subj /CN=msgstore "
             "&& openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out cli.pem -days 2",
             ec, ec, ec, ec, ec);
    sh(dir, cmd);
    const int port = free_port(), tls_port = free_port();
    char line[2048];
    snprintf(line, sizeof line,
             "%s/scripts/redis start %d --tls-port %d --tls-cert-file %s/srv.pem "
             "--tls-key-file %s/srv.key --tls-ca-cert-file %s/ca.pem --tls-auth-clients no",
             getenv("MSGSTORE_SOURCE_DIR"), port, tls_port, dir, dir, dir);
    assert_int_equal(system(line), 0);
    char url[64], ca[128], other[128];
    snprintf(url, sizeof url, "rediss://127.0.0.1:%d", tls_port);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(other, sizeof other, "%s/other.pem", dir);

    rt_redis_tls good = {.ca_file = ca}, bad = {.ca_file = other};
    TLS = &good;
    cross_instance(url);

    TLS = &bad;
    refused(url, "certificate verification failed", NULL);

    /* The right CA, but the certificate is for other.example, not 127.0.0.1. */
    char f1[160], f2[160];
    snprintf(f1, sizeof f1, "%s/name.pem", dir);
    snprintf(f2, sizeof f2, "%s/name.key", dir);
    redis_config(port, "tls-cert-file", f1, "tls-key-file", f2);
    TLS = &good;
    refused(url, "IP address mismatch", NULL);
    snprintf(f1, sizeof f1, "%s/srv.pem", dir);
    snprintf(f2, sizeof f2, "%s/srv.key", dir);
    redis_config(port, "tls-cert-file", f1, "tls-key-file", f2);

    /* Redis wants a client certificate: none is refused, the one of the settings is used. */
    redis_config(port, "tls-auth-clients", "yes", NULL, NULL);
    /* TLS 1.3 checks the client's certificate after the client finished its
       handshake: the server's alert can be lost to the reset of its close when
       the client's first command crossed it (seen under valgrind) */
    refused(url, "certificate required", "connection reset by peer");
    snprintf(f1, sizeof f1, "%s/cli.pem", dir);
    snprintf(f2, sizeof f2, "%s/cli.key", dir);
    rt_redis_tls with_cert = {.ca_file = ca, .cert_file = f1, .key_file = f2};
    TLS = &with_cert;
    start(&A, url, 6);
    WAIT_UNTIL(rt_bridge_status(A.bridge, NULL, 0) == RT_BRIDGE_UP, 3000);
    assert_int_equal(rt_bridge_status(A.bridge, NULL, 0), RT_BRIDGE_UP);
    stop(&A);
    TLS = NULL;
    redis_ctl("stop", port);
    snprintf(line, sizeof line, "rm -rf '%s'", dir);
    assert_int_equal(system(line), 0);
}

static void test_redis_absent(void **state)
{
    (void)state;
    /* Nothing listens there: the bridge keeps trying, local delivery works. */
    start(&A, "redis://127.0.0.1:1", 5);
    WAIT_UNTIL(false, 300);
    char err[256];
    rt_bridge_state st = rt_bridge_status(A.bridge, err, sizeof err);
    assert_int_equal(st, RT_BRIDGE_CONNECTING);
    if (!strstr(err, "connect"))
        fail_msg("err: \"%s\"", err);
    client ca = {0};
    assert_int_equal(rt_sub_create(A.hub, 0, on_ready, &ca, &ca.sub), 0);
    assert_int_equal(rt_sub_add(ca.sub, X(5), false, 0), 0);
    assert_int_equal(rt_publish(A.hub, RT_MESSAGE_CREATED, X(5), NULL, 0, NULL), 0);
    WAIT_UNTIL(ca.ngot == 1, 2000);
    assert_int_equal(ca.ngot, 1);
    rt_sub_destroy(ca.sub);
    stop(&A);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cross_instance),
        cmocka_unit_test(test_redis_restart),
        cmocka_unit_test(test_redis_absent),
        cmocka_unit_test(test_tls),
    };
    int failed = cmocka_run_group_tests_name("realtime bridge (int64 ids)", tests, NULL, NULL);
    /* The id format shows only on the wire and in the Redis keys: the cross-instance test covers
     * both; Redis restarts and absence do not depend on it. */
    FMT = MS_ID_UUID;
    const struct CMUnitTest uuid_tests[] = {cmocka_unit_test(test_cross_instance)};
    return failed +
           cmocka_run_group_tests_name("realtime bridge (uuid ids)", uuid_tests, NULL, NULL);
}
