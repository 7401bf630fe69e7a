/* SPDX-License-Identifier: Apache-2.0 */
/* Real-time hub: fan-out, replay, bounded queues, workers on threads, the map, presence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/error.h"
#include "realtime/internal.h"
#include "realtime/realtime.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* An integer channel or user id (the hubs below write ids in the int64 format). */
#define X(v) ms_xid_int((uint64_t)(v))

typedef struct {
    rt_sub *sub;
    int ready_calls;
    bool consume; /* pop in the ready callback */
    char got[64][256];
    uint64_t pos[64];
    int ngot;
} client;

static void on_ready(rt_sub *s, void *ctx)
{
    client *c = ctx;
    c->ready_calls++;
    if (!c->consume)
        return;
    rt_msg *m;
    while ((m = rt_sub_pop(s))) {
        if (c->ngot < 64) {
            snprintf(c->got[c->ngot], sizeof c->got[0], "%s", m->json);
            c->pos[c->ngot] = m->position;
            c->ngot++;
        }
        rt_msg_unref(m);
    }
}

static void drain(client *c)
{
    on_ready(c->sub, c);
}

/* Runs the loop until cond or 2 s. */
#define RUN_UNTIL(loop, cond)                                                                      \
    do {                                                                                           \
        for (int _i = 0; _i < 2000 && !(cond); _i++) {                                             \
            uv_run(loop, UV_RUN_NOWAIT);                                                           \
            if (!(cond))                                                                           \
                nanosleep(&(struct timespec){0, 1000000}, NULL);                                   \
        }                                                                                          \
    } while (0)

static rt_hub *mkhub(int workers, uint32_t qmax, uint32_t ring)
{
    rt_hub_options o;
    rt_hub_options_default(&o);
    o.workers = workers;
    o.queue_max = qmax;
    o.ring_events = ring;
    o.id_format = MS_ID_INT64;
    rt_hub *h;
    assert_int_equal(rt_hub_create(&o, &h), 0);
    return h;
}

static void test_kinds(void **state)
{
    (void)state;
    for (int k = 0; k < RT_KIND_COUNT; k++)
        assert_int_equal(rt_kind_parse(rt_kind_name((rt_kind)k)), k);
    assert_int_equal(rt_kind_parse("nope"), -1);
    assert_null(rt_kind_name(RT_KIND_COUNT));
    assert_true(rt_kind_ephemeral(RT_TYPING));
    assert_false(rt_kind_ephemeral(RT_MESSAGE_CREATED));
}

static void test_map(void **state)
{
    (void)state;
    rt_map m = {0};
    enum { N = 5000 };
    static ms_xid keys[N];
    static bool in[N];
    srand(7);
    for (int i = 0; i < N; i++)
        keys[i] = (ms_xid){i % 2 ? (uint64_t)rand() << 32 | (uint64_t)rand() : 0,
                           ((uint64_t)rand() << 32 | (uint64_t)rand()) | 1};
    for (int round = 0; round < 20000; round++) {
        int i = rand() % N;
        if (in[i]) {
            assert_ptr_equal(rt__map_del(&m, keys[i]), &keys[i]);
            in[i] = false;
        } else {
            assert_int_equal(rt__map_put(&m, keys[i], &keys[i]), 0);
            in[i] = true;
        }
    }
    uint32_t n = 0;
    for (int i = 0; i < N; i++) {
        assert_ptr_equal(rt__map_get(&m, keys[i]), in[i] ? &keys[i] : NULL);
        n += in[i];
    }
    assert_int_equal(m.len, n);
    assert_null(rt__map_get(&m, X(0)));
    rt__map_free(&m);
}

static void test_publish_deliver(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rt_hub *h = mkhub(1, 64, 16);
    assert_int_equal(rt_hub_attach(h, 0, &loop), 0);
    client a = {.consume = true}, b = {.consume = true};
    assert_int_equal(rt_sub_create(h, 0, on_ready, &a, &a.sub), 0);
    assert_int_equal(rt_sub_create(h, 0, on_ready, &b, &b.sub), 0);
    assert_int_equal(rt_sub_add(a.sub, X(100), false, 0), 0);
    assert_int_equal(rt_sub_add(a.sub, X(100), false, 0), 0); /* twice: no-op */
    assert_int_equal(rt_sub_add(b.sub, X(200), false, 0), 0);
    assert_int_equal(rt_sub_add(a.sub, X(0), false, 0), MS_ERR_INVALID);

    uint64_t p1, p2, p3;
    assert_int_equal(rt_publish(h, RT_MESSAGE_CREATED, X(100), "{\"id\":\"1\"}", 10, &p1), 0);
    assert_int_equal(rt_publish(h, RT_MESSAGE_UPDATED, X(100), "{\"id\":\"1\"}", 10, &p2), 0);
    assert_int_equal(rt_publish(h, RT_REACTION_ADDED, X(200), NULL, 0, &p3), 0);
    assert_int_equal(rt_publish(h, RT_RESYNC, X(200), NULL, 0, NULL), MS_ERR_INVALID);
    assert_int_equal(rt_publish(h, RT_MESSAGE_CREATED, X(0), NULL, 0, NULL), MS_ERR_INVALID);
    assert_true(p1 < p2 && p2 < p3);
    RUN_UNTIL(&loop, a.ngot == 2 && b.ngot == 1);
    assert_int_equal(a.ngot, 2);
    assert_int_equal(b.ngot, 1);
    char want[256];
    snprintf(want, sizeof want,
             "{\"type\":\"message.created\",\"channel\":\"100\",\"position\":\"%" PRIu64
             "\",\"data\":{\"id\":\"1\"}}",
             p1);
    assert_string_equal(a.got[0], want);
    assert_non_null(strstr(a.got[1], "\"type\":\"message.updated\""));
    assert_non_null(strstr(b.got[0], "\"type\":\"reaction.added\""));
    assert_non_null(strstr(b.got[0], "\"data\":{}"));

    /* Unfollowed: nothing more arrives. */
    assert_int_equal(rt_sub_remove(a.sub, X(100)), 0);
    assert_int_equal(rt_sub_remove(a.sub, X(100)), MS_ERR_NOT_FOUND);
    assert_false(rt_sub_follows(a.sub, X(100)));
    assert_int_equal(rt_publish(h, RT_MESSAGE_DELETED, X(100), NULL, 0, NULL), 0);
    assert_int_equal(rt_publish(h, RT_MESSAGE_DELETED, X(200), NULL, 0, NULL), 0);
    RUN_UNTIL(&loop, b.ngot == 2);
    assert_int_equal(b.ngot, 2);
    assert_int_equal(a.ngot, 2);

    rt_hub_stats st;
    rt_hub_stats_get(h, &st);
    assert_int_equal(st.subscribers, 2);
    assert_int_equal(st.published, 5);
    rt_sub_destroy(a.sub);
    rt_sub_destroy(b.sub);
    rt_hub_detach(h, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    rt_hub_destroy(h);
}

static void test_overflow_isolated(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rt_hub *h = mkhub(1, 4, 16);
    assert_int_equal(rt_hub_attach(h, 0, &loop), 0);
    client slow = {.consume = false}, fast = {.consume = true};
    assert_int_equal(rt_sub_create(h, 0, on_ready, &slow, &slow.sub), 0);
    assert_int_equal(rt_sub_create(h, 0, on_ready, &fast, &fast.sub), 0);
    assert_int_equal(rt_sub_add(slow.sub, X(7), false, 0), 0);
    assert_int_equal(rt_sub_add(fast.sub, X(7), false, 0), 0);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(rt_publish(h, RT_MESSAGE_CREATED, X(7), NULL, 0, NULL), 0);
        RUN_UNTIL(&loop, fast.ngot == i + 1);
    }
    assert_int_equal(fast.ngot, 10);
    assert_false(rt_sub_closing(fast.sub));
    /* The slow one overflowed after 4: one resync left, closing. */
    assert_true(rt_sub_closing(slow.sub));
    assert_int_equal(rt_sub_queued(slow.sub), 1);
    slow.consume = true;
    drain(&slow);
    assert_int_equal(slow.ngot, 1);
    assert_string_equal(slow.got[0],
                        "{\"type\":\"resync\",\"channel\":null,\"reason\":\"overflow\"}");
    /* Closing: nothing more is queued. */
    assert_int_equal(rt_publish(h, RT_MESSAGE_CREATED, X(7), NULL, 0, NULL), 0);
    RUN_UNTIL(&loop, fast.ngot == 11);
    assert_int_equal(rt_sub_queued(slow.sub), 0);
    rt_hub_stats st;
    rt_hub_stats_get(h, &st);
    assert_int_equal(st.overflows, 1);
    rt_sub_destroy(slow.sub);
    rt_sub_destroy(fast.sub);
    rt_hub_detach(h, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    rt_hub_destroy(h);
}

static void test_replay_and_gap(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rt_hub *h = mkhub(1, 64, 4);
    assert_int_equal(rt_hub_attach(h, 0, &loop), 0);
    client a = {.consume = true};
    assert_int_equal(rt_sub_create(h, 0, on_ready, &a, &a.sub), 0);
    assert_int_equal(rt_sub_add(a.sub, X(9), false, 0), 0);
    uint64_t p[8];
    for (int i = 0; i < 2; i++)
        assert_int_equal(rt_publish(h, RT_MESSAGE_CREATED, X(9), NULL, 0, &p[i]), 0);
    RUN_UNTIL(&loop, a.ngot == 2);
    assert_int_equal(a.pos[1], p[1]);
    rt_sub_destroy(a.sub); /* disconnect */
    /* Missed while away; typing is not replayed. */
    assert_int_equal(rt_publish(h, RT_MESSAGE_UPDATED, X(9), NULL, 0, &p[2]), 0);
    assert_int_equal(rt_publish(h, RT_TYPING, X(9), NULL, 0, NULL), 0);
    assert_int_equal(rt_publish(h, RT_MESSAGE_DELETED, X(9), NULL, 0, &p[3]), 0);
    uv_run(&loop, UV_RUN_NOWAIT);

    client b = {.consume = true};
    assert_int_equal(rt_sub_create(h, 0, on_ready, &b, &b.sub), 0);
    assert_int_equal(rt_sub_add(b.sub, X(9), true, p[1]), 0);
    assert_int_equal(rt_sub_queued(b.sub), 2);
    drain(&b);
    assert_int_equal(b.ngot, 2);
    assert_int_equal(b.pos[0], p[2]);
    assert_int_equal(b.pos[1], p[3]);
    /* Live events after the replay arrive once. */
    assert_int_equal(rt_publish(h, RT_MESSAGE_CREATED, X(9), NULL, 0, &p[4]), 0);
    RUN_UNTIL(&loop, b.ngot == 3);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(b.ngot, 3);
    assert_int_equal(b.pos[2], p[4]);

    /* The ring keeps 4: p[0] was evicted. A client at p[0] still gets all
     * it missed; one before p[0] cannot be served. */
    client c0 = {.consume = true};
    assert_int_equal(rt_sub_create(h, 0, on_ready, &c0, &c0.sub), 0);
    assert_int_equal(rt_sub_add(c0.sub, X(9), true, p[0]), 0);
    drain(&c0);
    assert_int_equal(c0.ngot, 4);
    assert_int_equal(c0.pos[0], p[1]);
    assert_int_equal(c0.pos[3], p[4]);
    rt_sub_destroy(c0.sub);
    client c = {.consume = true};
    assert_int_equal(rt_sub_create(h, 0, on_ready, &c, &c.sub), 0);
    assert_int_equal(rt_sub_add(c.sub, X(9), true, p[0] - 1), 0);
    drain(&c);
    assert_int_equal(c.ngot, 1);
    assert_string_equal(c.got[0], "{\"type\":\"resync\",\"channel\":\"9\",\"reason\":\"gap\"}");
    /* A position from before the channel's ring existed: resync too. */
    client d = {.consume = true};
    assert_int_equal(rt_sub_create(h, 0, on_ready, &d, &d.sub), 0);
    assert_int_equal(rt_sub_add(d.sub, X(10), true, 12345), 0);
    drain(&d);
    assert_int_equal(d.ngot, 1);
    assert_non_null(strstr(d.got[0], "\"reason\":\"gap\""));
    /* Up to date: nothing to replay, no resync. */
    client e = {.consume = true};
    assert_int_equal(rt_sub_create(h, 0, on_ready, &e, &e.sub), 0);
    assert_int_equal(rt_sub_add(e.sub, X(9), true, p[4]), 0);
    assert_int_equal(rt_sub_queued(e.sub), 0);

    rt_sub_destroy(b.sub);
    rt_sub_destroy(c.sub);
    rt_sub_destroy(d.sub);
    rt_sub_destroy(e.sub);
    rt_hub_detach(h, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    rt_hub_destroy(h);
}

/* ---- workers on threads ---- */

typedef struct {
    rt_hub *h;
    int idx;
    uv_loop_t loop;
    int nsubs;
    client *clients;
    _Atomic int ready;
    _Atomic int total;
    _Atomic bool stop;
    int expect;
} worker_ctx;

static void on_ready_count(rt_sub *s, void *ctx)
{
    worker_ctx *w = ctx;
    rt_msg *m;
    while ((m = rt_sub_pop(s))) {
        atomic_fetch_add(&w->total, 1);
        rt_msg_unref(m);
    }
}

static void *worker_main(void *arg)
{
    worker_ctx *w = arg;
    uv_loop_init(&w->loop);
    assert_int_equal(rt_hub_attach(w->h, w->idx, &w->loop), 0);
    rt_sub **subs = calloc((size_t)w->nsubs, sizeof *subs);
    for (int i = 0; i < w->nsubs; i++) {
        assert_int_equal(rt_sub_create(w->h, w->idx, on_ready_count, w, &subs[i]), 0);
        assert_int_equal(rt_sub_add(subs[i], X(42), false, 0), 0);
        assert_int_equal(rt_sub_add(subs[i], X(43 + (uint64_t)i % 3), false, 0), 0);
    }
    atomic_store(&w->ready, 1);
    while (!atomic_load(&w->stop) || atomic_load(&w->total) < w->expect) {
        uv_run(&w->loop, UV_RUN_NOWAIT);
        nanosleep(&(struct timespec){0, 200000}, NULL);
        if (atomic_load(&w->stop) && atomic_load(&w->total) >= w->expect)
            break;
    }
    for (int i = 0; i < w->nsubs; i++)
        rt_sub_destroy(subs[i]);
    free(subs);
    rt_hub_detach(w->h, w->idx);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    return NULL;
}

static void *publisher(void *arg)
{
    rt_hub *h = arg;
    for (int i = 0; i < 500; i++)
        assert_int_equal(rt_publish(h, RT_MESSAGE_CREATED, X(42), "{\"n\":1}", 7, NULL), 0);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    rt_hub *h = mkhub(2, 4096, 64);
    worker_ctx w[2] = {{.h = h, .idx = 0, .nsubs = 50}, {.h = h, .idx = 1, .nsubs = 30}};
    pthread_t wt[2], pt[2];
    for (int i = 0; i < 2; i++) {
        w[i].expect = w[i].nsubs * 1000;
        pthread_create(&wt[i], NULL, worker_main, &w[i]);
    }
    while (!atomic_load(&w[0].ready) || !atomic_load(&w[1].ready))
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    for (int i = 0; i < 2; i++)
        pthread_create(&pt[i], NULL, publisher, h);
    for (int i = 0; i < 2; i++)
        pthread_join(pt[i], NULL);
    /* Events of channels nobody follows go nowhere. */
    assert_int_equal(rt_publish(h, RT_MESSAGE_CREATED, X(999), NULL, 0, NULL), 0);
    for (int i = 0; i < 2; i++)
        atomic_store(&w[i].stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(wt[i], NULL);
    assert_int_equal(atomic_load(&w[0].total), 50 * 1000);
    assert_int_equal(atomic_load(&w[1].total), 30 * 1000);
    rt_hub_stats st;
    rt_hub_stats_get(h, &st);
    assert_int_equal(st.subscribers, 0);
    assert_int_equal(st.delivered, 80 * 1000);
    rt_hub_destroy(h);
}

static void test_presence(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rt_hub *h = mkhub(1, 64, 16);
    assert_int_equal(rt_hub_attach(h, 0, &loop), 0);
    client a = {.consume = true};
    assert_int_equal(rt_sub_create(h, 0, on_ready, &a, &a.sub), 0);
    assert_int_equal(rt_sub_add(a.sub, X(5), false, 0), 0);
    /* a TTL a loaded machine under valgrind stays well within until the sweep below */
    assert_int_equal(rt_presence_heartbeat(h, X(5), X(77), 2000), 0);
    assert_int_equal(rt_presence_heartbeat(h, X(5), X(77), 2000), 0); /* still online: no event */
    assert_int_equal(rt_typing(h, X(5), X(77)), 0);
    assert_int_equal(rt_typing(h, X(5), X(77)), 0); /* repeated within a second: not published */
    assert_int_equal(rt_typing(h, X(0), X(77)), MS_ERR_INVALID);
    RUN_UNTIL(&loop, a.ngot == 2);
    assert_int_equal(a.ngot, 2);
    assert_non_null(strstr(a.got[0], "\"type\":\"presence\""));
    assert_non_null(strstr(a.got[0], "\"status\":\"online\""));
    assert_non_null(strstr(a.got[1], "\"type\":\"typing\""));
    assert_non_null(strstr(a.got[1], "\"user_id\":\"77\""));
    ms_xid users[4];
    assert_int_equal(rt_ephemeral_list(h, X(5), false, users, 4), 1);
    assert_true(ms_xid_eq(users[0], X(77)));
    assert_int_equal(rt_ephemeral_list(h, X(5), true, users, 4), 1);
    /* No heartbeat for the TTL: offline, published by the sweep. */
    nanosleep(&(struct timespec){2, 300000000}, NULL);
    assert_int_equal(rt_ephemeral_sweep(h), 1);
    RUN_UNTIL(&loop, a.ngot == 3);
    assert_non_null(strstr(a.got[2], "\"status\":\"offline\""));
    assert_int_equal(rt_ephemeral_list(h, X(5), false, users, 4), 0);
    /* Online again, then leave: offline at once. */
    assert_int_equal(rt_presence_heartbeat(h, X(5), X(77), 10000), 0);
    assert_int_equal(rt_presence_leave(h, X(5), X(77)), 0);
    assert_int_equal(rt_presence_leave(h, X(5), X(77)), 0); /* already gone: nothing */
    RUN_UNTIL(&loop, a.ngot == 5);
    assert_int_equal(a.ngot, 5);
    assert_non_null(strstr(a.got[3], "\"status\":\"online\""));
    assert_non_null(strstr(a.got[4], "\"status\":\"offline\""));
    /* Ephemeral events are not replayed. */
    client b = {.consume = true};
    assert_int_equal(rt_sub_create(h, 0, on_ready, &b, &b.sub), 0);
    assert_int_equal(rt_sub_add(b.sub, X(5), true, a.pos[0]), 0);
    assert_int_equal(rt_sub_queued(b.sub), 0);
    rt_sub_destroy(a.sub);
    rt_sub_destroy(b.sub);
    rt_hub_detach(h, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    rt_hub_destroy(h);
}

static void test_url(void **state)
{
    (void)state;
    char err[256];
    rt_redis_url u;
    assert_int_equal(rt_redis_url_parse("redis://127.0.0.1:6390", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "");
    assert_false(u.tls);
    assert_int_equal(rt_redis_url_parse("redis://cache", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "cache");
    assert_int_equal(u.port, 6379);
    assert_int_equal(rt_redis_url_parse("localhost:7000/0", &u, err, sizeof err), 0);
    assert_int_equal(u.port, 7000);
    /* credentials (percent-decoded) and a database */
    assert_int_equal(rt_redis_url_parse("redis://app:s%40cr%3At@h:6380/3", &u, err, sizeof err), 0);
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "s@cr:t");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);
    assert_int_equal(rt_redis_url_parse("redis://:only-a-password@h", &u, err, sizeof err), 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "only-a-password");
    assert_int_equal(rt_redis_url_parse("rediss://h", &u, err, sizeof err), 0);
    assert_true(u.tls);
    /* refused, and the message never shows the password */
    const char *bad[] = {
        "redis://h:0",      "redis://h:x",          "redis://u@h", "redis://u:@h",   "redis://h/x",
        "redis://h/-1",     "redis://u:p%4@h",      "http://h",    "redis://h?db=1", "",
        "redis://:p%00x@h", "redis://u:secretpw@:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(rt_redis_url_parse(bad[i], &u, err, sizeof err), MS_ERR_INVALID);
        assert_true(err[0] != '\0');
        assert_null(strstr(err, "secretpw"));
    }
    /* rediss:// with a CA file that cannot be read: refused at start, the file named */
    rt_hub_options o;
    rt_hub_options_default(&o);
    rt_hub *h = NULL;
    assert_int_equal(rt_hub_create(&o, &h), 0);
    rt_bridge *b = NULL;
    rt_redis_tls tls = {.ca_file = "/nonexistent/ca.pem"};
    assert_int_equal(rt_bridge_start(h, "rediss://u:secretpw@h", &tls, &b, err, sizeof err),
                     MS_ERR_INVALID);
    assert_null(b);
    assert_non_null(strstr(err, "CA file"));
    assert_null(strstr(err, "secretpw"));
    rt_hub_destroy(h);
    assert_int_equal(rt_bridge_status(NULL, err, sizeof err), RT_BRIDGE_DISABLED);
    assert_string_equal(rt_bridge_state_name(RT_BRIDGE_DOWN), "down");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),           cmocka_unit_test(test_map),
        cmocka_unit_test(test_publish_deliver), cmocka_unit_test(test_overflow_isolated),
        cmocka_unit_test(test_replay_and_gap),  cmocka_unit_test(test_threads),
        cmocka_unit_test(test_presence),        cmocka_unit_test(test_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
