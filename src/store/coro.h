/* SPDX-License-Identifier: Apache-2.0 */
/*
 * coro.h - stackful coroutines for the ScyllaDB backend's operations.
 *
 * An operation is a straight-line sequence of CQL requests; on a worker's
 * loop each request must not block. A coroutine lets the operation's code
 * stay straight-line: it sends a request and yields; the request's callback
 * (on the loop) resumes it. One coroutine per operation in flight, reused
 * from a pool; each has its own stack (mmap'd, a guard page below it).
 * Everything happens on one thread: a coroutine is resumed only by the
 * thread of its loop.
 */
#ifndef MS_STORE_CORO_H
#define MS_STORE_CORO_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ms_coro ms_coro;

/* A coroutine with a stack of `stack_size` bytes (rounded up to pages); NULL when out of memory. */
ms_coro *ms_coro_new(size_t stack_size);

/* Frees a coroutine that is not running (finished, or never started). */
void ms_coro_free(ms_coro *co);

/*
 * Starts fn(arg) on co (finished or new) and runs it until it yields or
 * returns. Returns true when fn returned.
 */
bool ms_coro_start(ms_coro *co, void (*fn)(void *arg), void *arg);

/* Runs co from where it yielded until it yields again or returns; true when fn returned. */
bool ms_coro_resume(ms_coro *co);

/* Inside a coroutine: goes back to whoever started or resumed it. */
void ms_coro_yield(ms_coro *co);

/* The coroutine running now on this thread (NULL: none). */
ms_coro *ms_coro_self(void);

#endif
