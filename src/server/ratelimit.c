/* SPDX-License-Identifier: Apache-2.0 */
#include "server/ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define WAYS 8

typedef struct {
    ms_xid key;
    unsigned kind; /* 0: free slot */
    double tokens;
    uint64_t last_ns;
} bucket;

typedef struct {
    pthread_mutex_t mu;
    bucket b[WAYS];
} set;

struct rl_table {
    set *sets;
    size_t mask;
};

rl_table *rl_new(size_t max_keys)
{
    size_t n = 8;
    while (n * WAYS < max_keys)
        n *= 2;
    rl_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->sets = calloc(n, sizeof *t->sets);
    if (!t->sets) {
        free(t);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        pthread_mutex_init(&t->sets[i].mu, NULL);
    t->mask = n - 1;
    return t;
}

int rl_take(rl_table *t, unsigned kind, ms_xid key, double rate, double burst, uint64_t now_ns)
{
    set *s = &t->sets[(ms_xid_hash(key) ^ (uint64_t)kind * 0x9e3779b97f4a7c15ull) & t->mask];
    pthread_mutex_lock(&s->mu);
    bucket *b = NULL, *victim = &s->b[0];
    for (int i = 0; i < WAYS; i++) {
        bucket *x = &s->b[i];
        if (x->kind == kind + 1 && ms_xid_eq(x->key, key)) {
            b = x;
            break;
        }
        if (victim->kind && (!x->kind || x->last_ns < victim->last_ns))
            victim = x;
    }
    if (!b) {
        b = victim;
        b->kind = kind + 1;
        b->key = key;
        b->tokens = burst;
        b->last_ns = now_ns;
    } else if (now_ns > b->last_ns) {
        b->tokens += (double)(now_ns - b->last_ns) / 1e9 * rate;
        if (b->tokens > burst)
            b->tokens = burst;
        b->last_ns = now_ns;
    }
    int wait = 0;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
    } else {
        double s_needed = (1.0 - b->tokens) / rate;
        wait = (int)ceil(s_needed);
        if (wait < 1)
            wait = 1;
    }
    pthread_mutex_unlock(&s->mu);
    return wait;
}

void rl_free(rl_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i <= t->mask; i++)
        pthread_mutex_destroy(&t->sets[i].mu);
    free(t->sets);
    free(t);
}
