/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A cql_sync session that sits idle through an outage of its node
 * ($MSGSTORE_TEST_CASSANDRA, reached through a TCP proxy owned by the test:
 * "the node goes away" closes the proxy's listener and resets every
 * connection through it; the shared node itself is never touched).
 *
 * The private loop of a cql_sync runs only inside calls. A thread that keeps
 * a session (the store's workers) lets it run with cql_sync_run_for(c, 0)
 * when it has nothing to send; checked here:
 *  - cql_sync_run_for(c, 0) returns at once (it used to block until the
 *    loop's next timer, up to the 1 s housekeeping);
 *  - while the node is away requests fail fast (no wait for timeouts);
 *  - when it is back, the idle session reconnects with no request at all
 *    (reconnection timers and handshakes get loop time), within the
 *    reconnection backoff, and the next request succeeds at its first try;
 *  - cql_session_reconnect_now skips what is left of a session's backoff.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cql_test.h"
#include "core/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

/* ---- a TCP proxy that can be switched off and on (its own thread) -------- */

#define PX_MAX 64

typedef struct proxy {
    struct sockaddr_in up; /* the node */
    int port;              /* where the proxy listens (the same across restarts) */
    int lfd;               /* -1 while "down" */
    int fds[PX_MAX][2];    /* client side, node side; -1 when free */
    int cmd[2], ack[2];    /* pipes: commands to the thread, acknowledgements */
    pthread_t th;
} proxy;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int px_listen(proxy *p)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 64) != 0) {
        close(fd);
        return -1;
    }
    socklen_t l = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &l);
    p->port = ntohs(a.sin_port);
    p->lfd = fd;
    return 0;
}

/* Closes with a reset, like a node that died. */
static void px_reset(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

static void px_drop(proxy *p, int i, bool reset)
{
    for (int k = 0; k < 2; k++) {
        if (reset)
            px_reset(p->fds[i][k]);
        else
            close(p->fds[i][k]);
        p->fds[i][k] = -1;
    }
}

static void px_accept(proxy *p)
{
    int c = accept(p->lfd, NULL, NULL);
    if (c < 0)
        return;
    int u = socket(AF_INET, SOCK_STREAM, 0);
    int slot = -1;
    for (int i = 0; i < PX_MAX && slot < 0; i++)
        if (p->fds[i][0] < 0)
            slot = i;
    if (slot < 0 || connect(u, (struct sockaddr *)&p->up, sizeof(p->up)) != 0) {
        close(u);
        close(c);
        return;
    }
    p->fds[slot][0] = c;
    p->fds[slot][1] = u;
}

/* Copies what one side sent to the other; false when the pair is finished. */
static bool px_pump(int from, int to)
{
    char buf[65536];
    ssize_t n = read(from, buf, sizeof(buf));
    if (n <= 0)
        return false;
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(to, buf + off, (size_t)(n - off));
        if (w <= 0)
            return false;
        off += w;
    }
    return true;
}

static void *px_main(void *arg)
{
    proxy *p = arg;
    for (;;) {
        struct pollfd pf[2 + 2 * PX_MAX];
        int map[2 + 2 * PX_MAX];
        int n = 0;
        pf[n] = (struct pollfd){.fd = p->cmd[0], .events = POLLIN};
        map[n++] = -1;
        if (p->lfd >= 0) {
            pf[n] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
            map[n++] = -2;
        }
        for (int i = 0; i < PX_MAX; i++)
            for (int k = 0; k < 2 && p->fds[i][0] >= 0; k++) {
                pf[n] = (struct pollfd){.fd = p->fds[i][k], .events = POLLIN};
                map[n++] = i * 2 + k;
            }
        if (poll(pf, (nfds_t)n, -1) < 0 && errno != EINTR)
            return NULL;
        for (int j = 0; j < n; j++) {
            if (!pf[j].revents)
                continue;
            if (map[j] == -1) {
                char c = 0;
                if (read(p->cmd[0], &c, 1) != 1 || c == 'q')
                    return NULL;
                if (c == 'd') { /* down: refuse and reset everything */
                    if (p->lfd >= 0)
                        close(p->lfd);
                    p->lfd = -1;
                    for (int i = 0; i < PX_MAX; i++)
                        if (p->fds[i][0] >= 0)
                            px_drop(p, i, true);
                } else if (c == 'u' && p->lfd < 0) {
                    px_listen(p);
                }
                char ok = 1;
                if (write(p->ack[1], &ok, 1) != 1)
                    return NULL;
                break; /* the descriptors changed: poll again */
            }
            if (map[j] == -2) {
                px_accept(p);
                continue;
            }
            int i = map[j] / 2, k = map[j] % 2;
            if (p->fds[i][k] >= 0 && !px_pump(p->fds[i][k], p->fds[i][1 - k]))
                px_drop(p, i, false);
        }
    }
}

static void px_command(proxy *p, char c)
{
    char ok;
    assert_int_equal(write(p->cmd[1], &c, 1), 1);
    assert_int_equal(read(p->ack[0], &ok, 1), 1);
}

static void px_start(proxy *p)
{
    char host[64];
    int port = 9042;
    snprintf(host, sizeof(host), "%s", cqlt_env("MSGSTORE_TEST_CASSANDRA", "127.0.0.1:9042"));
    char *colon = strchr(host, ':');
    if (colon) {
        *colon = '\0';
        port = atoi(colon + 1);
    }
    memset(p, 0, sizeof(*p));
    p->up.sin_family = AF_INET;
    p->up.sin_port = htons((uint16_t)port);
    assert_int_equal(inet_pton(AF_INET, host, &p->up.sin_addr), 1);
    for (int i = 0; i < PX_MAX; i++)
        p->fds[i][0] = p->fds[i][1] = -1;
    assert_int_equal(pipe(p->cmd), 0);
    assert_int_equal(pipe(p->ack), 0);
    assert_int_equal(px_listen(p), 0);
    assert_int_equal(pthread_create(&p->th, NULL, px_main, p), 0);
}

static void px_stop(proxy *p)
{
    px_command(p, 'd');
    char q = 'q';
    assert_int_equal(write(p->cmd[1], &q, 1), 1);
    pthread_join(p->th, NULL);
    close(p->cmd[0]);
    close(p->cmd[1]);
    close(p->ack[0]);
    close(p->ack[1]);
}

/* ---- the session --------------------------------------------------------- */

static cql_sync *connect_backoff(const proxy *p, int64_t reconnect_ms)
{
    char cp[64];
    snprintf(cp, sizeof(cp), "127.0.0.1:%d", p->port);
    cql_options o;
    cqlt_options(&o, "MSGSTORE_TEST_CASSANDRA", "127.0.0.1:9042");
    o.contact_points = cp;
    o.name = "sync_idle";
    o.connect_timeout_ms = 1000;
    o.request_timeout_ms = 2000;
    o.breaker_reset_ms = 1000;
    if (reconnect_ms > 0)
        o.reconnect =
            (cql_backoff){CQL_BACKOFF_CONSTANT, CQL_JITTER_NONE, reconnect_ms, reconnect_ms, 0};
    cql_sync *c = NULL;
    cql_status st;
    if (cql_sync_connect(&o, &c, &st) != 0)
        fprintf(stderr, "connect: %s\n", st.message);
    assert_non_null(c);
    return c;
}

static cql_sync *connect_through(const proxy *p)
{
    return connect_backoff(p, 0);
}

static bool host_up(cql_sync *c)
{
    cql_host_info h[4];
    size_t n = cql_session_hosts(cql_sync_session(c), h, 4);
    for (size_t i = 0; i < n && i < 4; i++)
        if (h[i].up && h[i].connections > 0 && h[i].breaker == CQL_BREAKER_CLOSED)
            return true;
    return false;
}

/* What an idle worker does: nothing to send, the loop runs now and then. */
static void idle_for(cql_sync *c, int64_t ms)
{
    int64_t end = now_ms() + ms;
    while (now_ms() < end) {
        cql_sync_run_for(c, 0);
        usleep(50 * 1000);
    }
}

static void test_run_for_zero_does_not_wait(void **state)
{
    (void)state;
    proxy p;
    px_start(&p);
    cql_sync *c = connect_through(&p);
    CQLT_OK(c, "SELECT release_version FROM system.local");
    int64_t dt[21];
    for (int i = 0; i < 21; i++) {
        int64_t t0 = now_ms();
        cql_sync_run_for(c, 0);
        dt[i] = now_ms() - t0;
        usleep(20 * 1000);
    }
    /* the median call: a loaded machine may stall one call or two, but a run_for(0) that
     * waited for the housekeeping timer (up to 1 s away) would wait in most of them */
    for (int i = 1; i < 21; i++)
        for (int j = i; j > 0 && dt[j - 1] > dt[j]; j--) {
            int64_t t = dt[j];
            dt[j] = dt[j - 1];
            dt[j - 1] = t;
        }
    printf("     cql_sync_run_for(c, 0): median %lld ms, worst %lld ms\n", (long long)dt[10],
           (long long)dt[20]);
    assert_true(dt[10] < 500);
    cql_sync_close(c);
    px_stop(&p);
}

static void test_idle_session_reconnects(void **state)
{
    (void)state;
    proxy p;
    px_start(&p);
    cql_sync *c = connect_through(&p);
    CQLT_OK(c, "SELECT release_version FROM system.local");
    assert_true(host_up(c));

    px_command(&p, 'd');
    idle_for(c, 500); /* the session notices the resets */
    int64_t t0 = now_ms();
    cql_status st;
    int rc = cql_sync_query(c, "SELECT release_version FROM system.local", NULL, &st);
    int64_t took = now_ms() - t0;
    printf("     node away: %s (%lld ms)\n", st.message, (long long)took);
    assert_int_not_equal(rc, 0);
    assert_true(rc == MS_ERR_UNAVAILABLE || rc == MS_ERR_IO);
    /* it failed as unavailable, before the 2 s request deadline, not as a timeout */
    assert_true(took < 2000);
    assert_false(host_up(c));
    idle_for(c, 4000); /* a few failed reconnections: the backoff grows */

    px_command(&p, 'u');
    int64_t back = now_ms();
    /* no request from here on: only the idle turns */
    while (!host_up(c) && now_ms() - back < 30000) {
        cql_sync_run_for(c, 0);
        usleep(50 * 1000);
    }
    int64_t recovered = now_ms() - back;
    printf("     idle session reconnected %lld ms after the node came back\n",
           (long long)recovered);
    assert_true(host_up(c));
    cql_session_stats before, after;
    cql_session_stats_get(cql_sync_session(c), &before);
    rc = cql_sync_query(c, "SELECT release_version FROM system.local", NULL, &st);
    if (rc != 0)
        fprintf(stderr, "after recovery: %s\n", st.message);
    assert_int_equal(rc, 0);
    assert_int_equal(st.attempts, 1);
    cql_session_stats_get(cql_sync_session(c), &after);
    assert_int_equal(after.errors, before.errors);
    cql_sync_close(c);
    px_stop(&p);
}

/*
 * Two sessions to one node (as the store's workers): when one sees the node
 * come back, cql_session_reconnect_now brings the other back at once, however
 * long its own backoff (a minute here).
 */
static void test_reconnect_now(void **state)
{
    (void)state;
    proxy p;
    px_start(&p);
    cql_sync *fast = connect_backoff(&p, 200);
    cql_sync *slow = connect_backoff(&p, 60000);
    CQLT_OK(fast, "SELECT release_version FROM system.local");
    CQLT_OK(slow, "SELECT release_version FROM system.local");

    px_command(&p, 'd');
    for (int64_t end = now_ms() + 1500; now_ms() < end;) {
        cql_sync_run_for(fast, 0);
        cql_sync_run_for(slow, 0);
        usleep(50 * 1000);
    }
    assert_false(host_up(fast));
    assert_false(host_up(slow));

    px_command(&p, 'u');
    int64_t back = now_ms();
    while (!host_up(fast) && now_ms() - back < 10000) {
        cql_sync_run_for(fast, 0);
        cql_sync_run_for(slow, 0);
        usleep(50 * 1000);
    }
    assert_true(host_up(fast));
    assert_false(host_up(slow)); /* a minute to wait */
    int64_t t0 = now_ms();
    cql_session_reconnect_now(cql_sync_session(slow));
    while (!host_up(slow) && now_ms() - t0 < 10000) {
        cql_sync_run_for(slow, 0);
        usleep(50 * 1000);
    }
    printf("     the other session reconnected %lld ms after reconnect_now\n",
           (long long)(now_ms() - t0));
    assert_true(host_up(slow));
    CQLT_OK(slow, "SELECT release_version FROM system.local");
    cql_session_reconnect_now(cql_sync_session(slow)); /* nothing down: nothing happens */
    cql_sync_run_for(slow, 0);
    assert_true(host_up(slow));
    cql_sync_close(fast);
    cql_sync_close(slow);
    px_stop(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_for_zero_does_not_wait),
        cmocka_unit_test(test_idle_session_reconnects),
        cmocka_unit_test(test_reconnect_now),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
