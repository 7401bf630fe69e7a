/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_coro.c - the ScyllaDB backend's coroutines (src/store/coro.h): start,
 * yield and resume; reuse after a finish; a coroutine driving another; what
 * a switch must keep (callee-saved registers, floating-point state, the
 * signal mask, a 16-byte aligned stack for SSE code); deep stacks.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "coro.h"

#define STACK (256 * 1024)

typedef struct steps {
    ms_coro *co;
    int n;
    int log[16];
} steps;

static void stepper(void *arg)
{
    steps *s = arg;
    for (int i = 0; i < 3; i++) {
        s->log[s->n++] = i;
        assert_ptr_equal(ms_coro_self(), s->co);
        ms_coro_yield(s->co);
    }
    s->log[s->n++] = 100;
}

static void test_yield_resume_finish(void **state)
{
    (void)state;
    steps s = {0};
    s.co = ms_coro_new(STACK);
    assert_non_null(s.co);
    assert_null(ms_coro_self());
    assert_false(ms_coro_start(s.co, stepper, &s));
    assert_null(ms_coro_self());
    assert_int_equal(s.n, 1);
    assert_false(ms_coro_resume(s.co));
    assert_false(ms_coro_resume(s.co));
    assert_int_equal(s.n, 3);
    assert_true(ms_coro_resume(s.co));
    assert_int_equal(s.n, 4);
    assert_int_equal(s.log[3], 100);
    /* a finished coroutine runs the next function from the start */
    s.n = 0;
    assert_false(ms_coro_start(s.co, stepper, &s));
    for (int i = 0; i < 2; i++)
        assert_false(ms_coro_resume(s.co));
    assert_true(ms_coro_resume(s.co));
    assert_int_equal(s.n, 4);
    assert_int_equal(s.log[0], 0);
    ms_coro_free(s.co);
}

typedef struct nested {
    ms_coro *outer, *inner;
    int trace[16];
    int n;
} nested;

static void inner_fn(void *arg)
{
    nested *t = arg;
    t->trace[t->n++] = 2;
    assert_ptr_equal(ms_coro_self(), t->inner);
    ms_coro_yield(t->inner);
    t->trace[t->n++] = 4;
}

static void outer_fn(void *arg)
{
    nested *t = arg;
    t->trace[t->n++] = 1;
    assert_false(ms_coro_start(t->inner, inner_fn, t));
    assert_ptr_equal(ms_coro_self(), t->outer); /* back in the outer one */
    t->trace[t->n++] = 3;
    ms_coro_yield(t->outer);
    assert_true(ms_coro_resume(t->inner));
    t->trace[t->n++] = 5;
}

static void test_nested(void **state)
{
    (void)state;
    nested t = {0};
    t.outer = ms_coro_new(STACK);
    t.inner = ms_coro_new(STACK);
    assert_non_null(t.outer);
    assert_non_null(t.inner);
    assert_false(ms_coro_start(t.outer, outer_fn, &t));
    assert_null(ms_coro_self());
    assert_true(ms_coro_resume(t.outer));
    assert_int_equal(t.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(t.trace[i], i + 1);
    ms_coro_free(t.inner);
    ms_coro_free(t.outer);
}

/* Values live in registers across the switches (the compiler keeps them in callee-saved ones). */
typedef struct many {
    ms_coro *co;
    uint64_t sum;
    double fsum;
} many;

__attribute__((noinline)) static uint64_t mix(uint64_t a, uint64_t b)
{
    return a * 6364136223846793005ull + b;
}

/* Six integers and two doubles worked on across calls (yielding after each step when m->co). */
static void compute(many *m)
{
    uint64_t a = 1, b = 2, c = 3, d = 4, e = 5, f = 6;
    double x = 0.5, y = 1.25;
    for (int i = 0; i < 1000; i++) {
        a = mix(a, b);
        b = mix(b, c);
        c = mix(c, d);
        d = mix(d, e);
        e = mix(e, f);
        f = mix(f, a);
        x = x * 1.0001 + y;
        y = y * 0.9999 + 0.001;
        if (m->co)
            ms_coro_yield(m->co);
    }
    m->sum = a ^ b ^ c ^ d ^ e ^ f;
    m->fsum = x + y;
}

static void regs_fn(void *arg)
{
    compute(arg);
}

static void test_registers_survive_switches(void **state)
{
    (void)state;
    many ref = {0}; /* the same computation without switches */
    compute(&ref);
    many m = {0};
    m.co = ms_coro_new(STACK);
    assert_non_null(m.co);
    bool done = ms_coro_start(m.co, regs_fn, &m);
    /* the caller's registers must survive too: keep values live across each resume */
    uint64_t k1 = 0x1111, k2 = 0x2222, k3 = 0x3333;
    while (!done) {
        k1 = mix(k1, k2);
        k2 = mix(k2, k3);
        k3 = mix(k3, k1);
        done = ms_coro_resume(m.co);
    }
    uint64_t j1 = 0x1111, j2 = 0x2222, j3 = 0x3333;
    for (int i = 0; i < 1000; i++) {
        j1 = mix(j1, j2);
        j2 = mix(j2, j3);
        j3 = mix(j3, j1);
    }
    assert_true(k1 == j1 && k2 == j2 && k3 == j3);
    assert_true(m.sum == ref.sum);
    assert_true(m.fsum == ref.fsum);
    ms_coro_free(m.co);
}

/* A coroutine's work may use aligned SSE stores on its stack (printf of a double does). */
static void format_fn(void *arg)
{
    char *out = arg;
    long double ld = 2.5L;
    snprintf(out, 64, "%.3f %Lg %s", 3.14159, ld, "ok");
}

static void test_stack_alignment_libc(void **state)
{
    (void)state;
    char out[64] = "";
    ms_coro *co = ms_coro_new(STACK);
    assert_non_null(co);
    assert_true(ms_coro_start(co, format_fn, out));
    assert_string_equal(out, "3.142 2.5 ok");
    ms_coro_free(co);
}

/* A switch neither needs nor changes the thread's signal mask. */
static void mask_fn(void *arg)
{
    ms_coro *co = arg;
    sigset_t now;
    assert_int_equal(pthread_sigmask(SIG_SETMASK, NULL, &now), 0);
    assert_int_equal(sigismember(&now, SIGUSR1), 1);
    ms_coro_yield(co);
}

static void test_signal_mask_untouched(void **state)
{
    (void)state;
    sigset_t before, set, after;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &set, &before), 0);
    ms_coro *co = ms_coro_new(STACK);
    assert_non_null(co);
    assert_false(ms_coro_start(co, mask_fn, co));
    assert_true(ms_coro_resume(co));
    assert_int_equal(pthread_sigmask(SIG_SETMASK, NULL, &after), 0);
    assert_int_equal(sigismember(&after, SIGUSR1), 1);
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &before, NULL), 0);
    ms_coro_free(co);
}

/* Most of the stack is usable (the guard page sits below it). */
__attribute__((noinline)) static unsigned deep(unsigned n)
{
    volatile char pad[1024];
    pad[0] = (char)n;
    pad[sizeof pad - 1] = (char)(n >> 8);
    return n ? deep(n - 1) + (unsigned char)pad[0] : 0;
}

static void deep_fn(void *arg)
{
    unsigned *r = arg;
    *r = deep(*r);
}

static void test_deep_stack(void **state)
{
    (void)state;
    ms_coro *co = ms_coro_new(STACK);
    assert_non_null(co);
    unsigned r = 150; /* about 150 KiB of a 256 KiB stack */
    assert_true(ms_coro_start(co, deep_fn, &r));
    assert_int_equal(r, 150u * 151u / 2u);
    ms_coro_free(co);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yield_resume_finish),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_registers_survive_switches),
        cmocka_unit_test(test_stack_alignment_libc),
        cmocka_unit_test(test_signal_mask_untouched),
        cmocka_unit_test(test_deep_stack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
