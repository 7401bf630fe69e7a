/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.h - a process-wide registry of Prometheus metrics.
 *
 * Registering takes a lock and is meant for start-up (or the first use of a
 * label set); updating is one relaxed atomic operation, safe on any thread.
 * Metrics live until ms_metrics_reset() (tests) or process exit.
 *
 *   static ms_counter *req;
 *   req = ms_counter_get("msgstore_http_requests_total", "route=\"/v1/x\",status=\"200\"",
 *                        "HTTP requests by route and status");
 *   ms_counter_add(req, 1);
 */
#ifndef MS_CORE_METRICS_H
#define MS_CORE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define MS_HIST_BUCKETS 16

typedef struct ms_counter {
    _Atomic uint64_t value;
} ms_counter;

typedef struct ms_gauge {
    _Atomic int64_t value;
} ms_gauge;

/* Latency histogram; bucket bounds in microseconds are MS_HIST_BOUNDS_US. */
typedef struct ms_histogram {
    _Atomic uint64_t buckets[MS_HIST_BUCKETS]; /* non-cumulative counts */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
} ms_histogram;

extern const uint64_t MS_HIST_BOUNDS_US[MS_HIST_BUCKETS]; /* the last is +Inf */

/*
 * Returns the metric named name with the label set labels (Prometheus syntax
 * without braces, may be NULL or ""), creating it on first use. help is
 * used by the first registration of a name. Never returns NULL: on out of
 * memory it returns a shared scratch metric that is not rendered.
 */
ms_counter *ms_counter_get(const char *name, const char *labels, const char *help);
ms_gauge *ms_gauge_get(const char *name, const char *labels, const char *help);
ms_histogram *ms_histogram_get(const char *name, const char *labels, const char *help);

static inline void ms_counter_add(ms_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}
static inline void ms_gauge_set(ms_gauge *g, int64_t v)
{
    atomic_store_explicit(&g->value, v, memory_order_relaxed);
}
static inline void ms_gauge_add(ms_gauge *g, int64_t d)
{
    atomic_fetch_add_explicit(&g->value, d, memory_order_relaxed);
}
void ms_histogram_observe_us(ms_histogram *h, uint64_t us);

/* Quantile estimate (0 < q < 1) in microseconds, from the buckets' upper bounds. */
uint64_t ms_histogram_quantile_us(const ms_histogram *h, double q);

/*
 * A function called at every render, for values computed on demand (breaker
 * state, pool sizes). It appends Prometheus text to the buffer with
 * ms_metrics_appendf().
 */
typedef struct ms_metrics_buf ms_metrics_buf;
typedef void (*ms_metrics_collect_fn)(ms_metrics_buf *buf, void *ctx);
void ms_metrics_add_collector(ms_metrics_collect_fn fn, void *ctx);
void ms_metrics_remove_collector(ms_metrics_collect_fn fn, void *ctx);
void ms_metrics_appendf(ms_metrics_buf *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Renders every metric in the Prometheus text format (version 0.0.4).
 * Returns a malloc'd NUL-terminated string the caller frees, and its length
 * in *len; NULL when out of memory.
 */
char *ms_metrics_render(size_t *len);

/* Forgets every metric and collector (tests). Pointers handed out become invalid. */
void ms_metrics_reset(void);

#endif
