/* SPDX-License-Identifier: Apache-2.0 */
#include "core/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const uint64_t MS_HIST_BOUNDS_US[MS_HIST_BUCKETS] = {
    50,    100,   250,    500,    1000,   2500,    5000,    10000,
    25000, 50000, 100000, 250000, 500000, 1000000, 5000000, UINT64_MAX};

typedef enum { K_COUNTER, K_GAUGE, K_HISTOGRAM } kind_t;

typedef struct metric {
    struct metric *next;
    kind_t kind;
    char *name;
    char *labels;
    char *help;
    union {
        ms_counter counter;
        ms_gauge gauge;
        ms_histogram hist;
    } u;
} metric;

typedef struct collector {
    struct collector *next;
    ms_metrics_collect_fn fn;
    void *ctx;
} collector;

struct ms_metrics_buf {
    char *data;
    size_t len, cap;
    int failed;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static metric *head, *tail;
static collector *collectors;
static metric scratch;

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static metric *get(kind_t kind, const char *name, const char *labels, const char *help)
{
    if (!labels)
        labels = "";
    pthread_mutex_lock(&mu);
    for (metric *m = head; m; m = m->next) {
        if (m->kind == kind && strcmp(m->name, name) == 0 && strcmp(m->labels, labels) == 0) {
            pthread_mutex_unlock(&mu);
            return m;
        }
    }
    metric *m = calloc(1, sizeof *m);
    if (m) {
        m->kind = kind;
        m->name = dup_or_empty(name);
        m->labels = dup_or_empty(labels);
        m->help = dup_or_empty(help);
        if (!m->name || !m->labels || !m->help) {
            free(m->name);
            free(m->labels);
            free(m->help);
            free(m);
            m = NULL;
        }
    }
    if (!m) {
        pthread_mutex_unlock(&mu);
        return &scratch;
    }
    /* keep metrics of one name together, in registration order */
    metric *after = NULL;
    for (metric *p = head; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            after = p;
    if (after) {
        m->next = after->next;
        after->next = m;
        if (tail == after)
            tail = m;
    } else if (tail) {
        tail->next = m;
        tail = m;
    } else {
        head = tail = m;
    }
    pthread_mutex_unlock(&mu);
    return m;
}

ms_counter *ms_counter_get(const char *name, const char *labels, const char *help)
{
    return &get(K_COUNTER, name, labels, help)->u.counter;
}

ms_gauge *ms_gauge_get(const char *name, const char *labels, const char *help)
{
    return &get(K_GAUGE, name, labels, help)->u.gauge;
}

ms_histogram *ms_histogram_get(const char *name, const char *labels, const char *help)
{
    return &get(K_HISTOGRAM, name, labels, help)->u.hist;
}

void ms_histogram_observe_us(ms_histogram *h, uint64_t us)
{
    size_t i = 0;
    while (us > MS_HIST_BOUNDS_US[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

uint64_t ms_histogram_quantile_us(const ms_histogram *h, double q)
{
    uint64_t total = atomic_load_explicit(&h->count, memory_order_relaxed);
    if (total == 0)
        return 0;
    uint64_t want = (uint64_t)((double)total * q);
    if (want >= total)
        want = total - 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < MS_HIST_BUCKETS; i++) {
        seen += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (seen > want)
            return MS_HIST_BOUNDS_US[i];
    }
    return MS_HIST_BOUNDS_US[MS_HIST_BUCKETS - 1];
}

void ms_metrics_add_collector(ms_metrics_collect_fn fn, void *ctx)
{
    collector *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->fn = fn;
    c->ctx = ctx;
    pthread_mutex_lock(&mu);
    c->next = collectors;
    collectors = c;
    pthread_mutex_unlock(&mu);
}

void ms_metrics_remove_collector(ms_metrics_collect_fn fn, void *ctx)
{
    pthread_mutex_lock(&mu);
    for (collector **pp = &collectors; *pp; pp = &(*pp)->next) {
        if ((*pp)->fn == fn && (*pp)->ctx == ctx) {
            collector *c = *pp;
            *pp = c->next;
            free(c);
            break;
        }
    }
    pthread_mutex_unlock(&mu);
}

void ms_metrics_appendf(ms_metrics_buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
}

static void render_one(ms_metrics_buf *b, const metric *m, int first_of_name)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    if (first_of_name) {
        ms_metrics_appendf(b, "# HELP %s %s\n", m->name, m->help);
        ms_metrics_appendf(b, "# TYPE %s %s\n", m->name, types[m->kind]);
    }
    const char *l = m->labels;
    const char *sep = l[0] ? "," : "";
    switch (m->kind) {
    case K_COUNTER:
        ms_metrics_appendf(b, "%s%s%s%s %llu\n", m->name, l[0] ? "{" : "", l, l[0] ? "}" : "",
                           (unsigned long long)atomic_load(&m->u.counter.value));
        break;
    case K_GAUGE:
        ms_metrics_appendf(b, "%s%s%s%s %lld\n", m->name, l[0] ? "{" : "", l, l[0] ? "}" : "",
                           (long long)atomic_load(&m->u.gauge.value));
        break;
    case K_HISTOGRAM: {
        uint64_t cum = 0;
        for (size_t i = 0; i < MS_HIST_BUCKETS; i++) {
            cum += atomic_load(&m->u.hist.buckets[i]);
            if (MS_HIST_BOUNDS_US[i] == UINT64_MAX)
                ms_metrics_appendf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", m->name, l, sep,
                                   (unsigned long long)cum);
            else
                ms_metrics_appendf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", m->name, l, sep,
                                   (double)MS_HIST_BOUNDS_US[i] / 1e6, (unsigned long long)cum);
        }
        ms_metrics_appendf(b, "%s_sum%s%s%s %g\n", m->name, l[0] ? "{" : "", l, l[0] ? "}" : "",
                           (double)atomic_load(&m->u.hist.sum_us) / 1e6);
        ms_metrics_appendf(b, "%s_count%s%s%s %llu\n", m->name, l[0] ? "{" : "", l, l[0] ? "}" : "",
                           (unsigned long long)atomic_load(&m->u.hist.count));
        break;
    }
    }
}

char *ms_metrics_render(size_t *len)
{
    ms_metrics_buf b = {.data = malloc(4096), .len = 0, .cap = 4096, .failed = 0};
    if (!b.data)
        return NULL;
    b.data[0] = '\0';
    pthread_mutex_lock(&mu);
    const char *prev = NULL;
    for (const metric *m = head; m; m = m->next) {
        render_one(&b, m, !prev || strcmp(prev, m->name) != 0);
        prev = m->name;
    }
    for (collector *c = collectors; c; c = c->next)
        c->fn(&b, c->ctx);
    pthread_mutex_unlock(&mu);
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.data;
}

void ms_metrics_reset(void)
{
    pthread_mutex_lock(&mu);
    for (metric *m = head; m;) {
        metric *n = m->next;
        free(m->name);
        free(m->labels);
        free(m->help);
        free(m);
        m = n;
    }
    head = tail = NULL;
    for (collector *c = collectors; c;) {
        collector *n = c->next;
        free(c);
        c = n;
    }
    collectors = NULL;
    pthread_mutex_unlock(&mu);
}
