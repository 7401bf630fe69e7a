/* SPDX-License-Identifier: Apache-2.0 */
/*
 * queue.c - a FIFO of store operations shared by threads: the backends' work
 * queues (SQLite writer and readers, ScyllaDB workers) and the answers
 * waiting for a caller's event loop (store.c).
 */
#include "store_internal.h"

#include <limits.h>
#include <time.h>

void store__queue_init(store__queue *q)
{
    pthread_mutex_init(&q->mu, NULL);
    /* timed takes count on the monotonic clock: a wall clock step neither
     * stalls nor spins them */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    q->head = q->tail = NULL;
    q->closing = false;
}

void store__queue_destroy(store__queue *q)
{
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
}

void store__queue_push(store__queue *q, store_op *op)
{
    op->next = NULL;
    pthread_mutex_lock(&q->mu);
    if (q->tail)
        q->tail->next = op;
    else
        q->head = op;
    q->tail = op;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* Unlinks up to max ops from the head (q->mu held). */
static store_op *take_locked(store__queue *q, int max, int *n)
{
    store_op *first = q->head, *last = NULL;
    int k = 0;
    for (store_op *o = q->head; o && k < max; o = o->next) {
        last = o;
        k++;
    }
    if (last) {
        q->head = last->next;
        if (!q->head)
            q->tail = NULL;
        last->next = NULL;
    }
    if (n)
        *n = k;
    return k ? first : NULL;
}

store_op *store__queue_take(store__queue *q, int max, int *n, bool wait)
{
    pthread_mutex_lock(&q->mu);
    while (wait && !q->head && !q->closing)
        pthread_cond_wait(&q->cv, &q->mu);
    store_op *first = take_locked(q, max, n);
    pthread_mutex_unlock(&q->mu);
    return first;
}

store_op *store__queue_take_for(store__queue *q, int max, int *n, int64_t wait_ms, bool *closed)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(wait_ms / 1000);
    until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&q->mu);
    while (wait_ms > 0 && !q->head && !q->closing)
        if (pthread_cond_timedwait(&q->cv, &q->mu, &until) != 0)
            break; /* ETIMEDOUT */
    store_op *first = take_locked(q, max, n);
    if (closed)
        *closed = !first && q->closing;
    pthread_mutex_unlock(&q->mu);
    return first;
}

void store__queue_close(store__queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closing = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}
