/*
 * queue.c - a FIFO of store operations shared by threads: the backends' work
 * queues (SQLite writer and readers, ScyllaDB workers) and the answers
 * waiting for a caller's event loop (store.c).
 */
#include "store_internal.h"

#include <limits.h>

void store__queue_init(store__queue *q)
{
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
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

store_op *store__queue_take(store__queue *q, int max, int *n, bool wait)
{
    pthread_mutex_lock(&q->mu);
    while (wait && !q->head && !q->closing)
        pthread_cond_wait(&q->cv, &q->mu);
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
    pthread_mutex_unlock(&q->mu);
    if (n)
        *n = k;
    return k ? first : NULL;
}

void store__queue_close(store__queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closing = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}
