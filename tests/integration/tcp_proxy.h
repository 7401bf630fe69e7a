/* SPDX-License-Identifier: Apache-2.0 */
/* A TCP forwarder for integration tests (cmocka included first): a listener on
 * 127.0.0.1 (port 0: p->port) whose connections go to node_host:node_port.
 * proxy_cut() makes the node "go away" (no listener, every connection closed)
 * without touching it; a connection through it also reaches the node under
 * another address than its own (a TLS host name check sees 127.0.0.1). */
#ifndef MS_TEST_TCP_PROXY_H
#define MS_TEST_TCP_PROXY_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * A TCP forwarder to the node. cut() closes the listener and every
 * connection: to the client the node is gone (nothing is done to the node).
 */
typedef struct proxy {
    int lfd;
    int port;
    struct sockaddr_in node;
    int pairs[64][2];
    int npairs;
    int wake[2];
    bool stop;
    pthread_t thread;
    pthread_mutex_t mu;
} proxy;

static inline void *proxy_main(void *arg)
{
    proxy *p = arg;
    char buf[65536];
    for (;;) {
        struct pollfd fds[2 + 128];
        int n = 0;
        pthread_mutex_lock(&p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        fds[n++] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
        fds[n++] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
        for (int i = 0; i < p->npairs; i++) {
            fds[n++] = (struct pollfd){.fd = p->pairs[i][0], .events = POLLIN};
            fds[n++] = (struct pollfd){.fd = p->pairs[i][1], .events = POLLIN};
        }
        pthread_mutex_unlock(&p->mu);
        if (poll(fds, (nfds_t)n, 1000) <= 0)
            continue;
        pthread_mutex_lock(&p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        if (fds[0].revents) {
            char c;
            (void)!read(p->wake[0], &c, 1);
            pthread_mutex_unlock(&p->mu);
            continue; /* the sets changed: poll again */
        }
        if (p->lfd >= 0 && (fds[1].revents & POLLIN) && p->npairs < 64) {
            int a = accept(p->lfd, NULL, NULL);
            int b = a >= 0 ? socket(AF_INET, SOCK_STREAM, 0) : -1;
            if (b >= 0 && connect(b, (struct sockaddr *)&p->node, sizeof p->node) == 0) {
                p->pairs[p->npairs][0] = a;
                p->pairs[p->npairs][1] = b;
                p->npairs++;
            } else {
                if (a >= 0)
                    close(a);
                if (b >= 0)
                    close(b);
            }
        }
        for (int i = 2; i < n; i++) {
            if (!fds[i].revents)
                continue;
            int k = (i - 2) / 2, side = (i - 2) % 2;
            if (k >= p->npairs || p->pairs[k][side] != fds[i].fd)
                continue;
            ssize_t got = read(fds[i].fd, buf, sizeof buf);
            bool dead = got <= 0;
            for (ssize_t off = 0; !dead && off < got;) {
                ssize_t w = write(p->pairs[k][1 - side], buf + off, (size_t)(got - off));
                if (w <= 0)
                    dead = true;
                else
                    off += w;
            }
            if (dead) {
                close(p->pairs[k][0]);
                close(p->pairs[k][1]);
                p->pairs[k][0] = p->pairs[k][1] = -1;
            }
        }
        int w = 0;
        for (int i = 0; i < p->npairs; i++)
            if (p->pairs[i][0] >= 0)
                memcpy(p->pairs[w++], p->pairs[i], sizeof p->pairs[i]);
        p->npairs = w;
        pthread_mutex_unlock(&p->mu);
    }
}

static inline void proxy_start(proxy *p, const char *node_host, int node_port)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    assert_int_equal(pipe(p->wake), 0);
    p->node.sin_family = AF_INET;
    p->node.sin_port = htons((uint16_t)node_port);
    assert_int_equal(inet_pton(AF_INET, node_host, &p->node.sin_addr), 1);
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(p->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(p->lfd, 64), 0);
    socklen_t al = sizeof a;
    getsockname(p->lfd, (struct sockaddr *)&a, &al);
    p->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&p->thread, NULL, proxy_main, p), 0);
}

/* The node "goes away": no listener, every connection closed. */
static inline void proxy_cut(proxy *p)
{
    pthread_mutex_lock(&p->mu);
    close(p->lfd);
    p->lfd = -1;
    for (int i = 0; i < p->npairs; i++) {
        shutdown(p->pairs[i][0], SHUT_RDWR);
        shutdown(p->pairs[i][1], SHUT_RDWR);
        close(p->pairs[i][0]);
        close(p->pairs[i][1]);
    }
    p->npairs = 0;
    pthread_mutex_unlock(&p->mu);
    (void)!write(p->wake[1], "x", 1);
}

static inline void proxy_stop(proxy *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_mutex_unlock(&p->mu);
    (void)!write(p->wake[1], "x", 1);
    pthread_join(p->thread, NULL);
    if (p->lfd >= 0)
        close(p->lfd);
    for (int i = 0; i < p->npairs; i++) {
        close(p->pairs[i][0]);
        close(p->pairs[i][1]);
    }
    close(p->wake[0]);
    close(p->wake[1]);
    pthread_mutex_destroy(&p->mu);
}

#endif
