/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tq.h - a deadline queue: many timers on one uv_timer_t.
 *
 * Requests carry several deadlines (timeout, retry wake-up, speculative
 * execution); a binary min-heap keeps them all and one libuv timer is armed
 * for the earliest, so adding or cancelling a deadline is O(log n) with no
 * handle to open or close. Times are the loop's milliseconds (uv_now).
 * One queue per session, used on the loop thread only.
 */
#ifndef MS_CQL_TQ_H
#define MS_CQL_TQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef struct cql_tq_node cql_tq_node;
typedef void (*cql_tq_fn)(cql_tq_node *n);

/* Embed in the owner; zero-initialise. */
struct cql_tq_node {
    uint64_t at;    /* uv_now milliseconds */
    uint32_t index; /* position in the heap + 1; 0 when not queued */
    uint64_t seq;   /* order of queuing: a run never runs what it queued itself */
    cql_tq_fn fn;
};

typedef struct cql_tq {
    uv_timer_t timer;
    uv_idle_t kick; /* runs what is due "now" on the next loop iteration */
    int open_handles;
    uv_close_cb close_cb;
    void *data; /* free for the owner (the close callback gets the timer handle) */
    cql_tq_node **heap;
    size_t n, cap;
    uint64_t armed_at; /* UINT64_MAX when the timer is stopped */
    uint64_t seq;
    bool closing;
} cql_tq;

/* Initialises the queue and its timer. */
int cql__tq_init(cql_tq *q, uv_loop_t *loop);

/* Closes the timer and the idle handle; close_cb (may be NULL) runs once, with
 * the timer handle, when libuv released both. */
void cql__tq_close(cql_tq *q, uv_close_cb close_cb);

/* Frees the heap (after the timer is closed). */
void cql__tq_free(cql_tq *q);

/*
 * Queues n to run fn(n) at time at (uv_now ms), replacing an earlier
 * schedule of n. Returns 0 or MS_ERR_NOMEM (n is then not queued).
 */
int cql__tq_add(cql_tq *q, cql_tq_node *n, uint64_t at, cql_tq_fn fn);

/* Unqueues n if it is queued. */
void cql__tq_remove(cql_tq *q, cql_tq_node *n);

/* True while n is in a queue (added and neither fired nor removed). */
static inline bool cql__tq_queued(const cql_tq_node *n)
{
    return n->index != 0;
}

/*
 * Runs every node due at now that was queued before this call (tests; the
 * timer calls it). Nodes queued by the callbacks wait for the next loop
 * iteration, so a callback that queues work "now" cannot starve the loop.
 */
void cql__tq_run(cql_tq *q, uint64_t now);

#endif
