/* SPDX-License-Identifier: Apache-2.0 */
/*
 * coro.c - stackful coroutines on ucontext (see coro.h), annotated for
 * AddressSanitizer (fiber switches) and valgrind (stack registration).
 */
#include "coro.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORO_ASAN 1
#endif
#endif
#if !defined(CORO_ASAN) && defined(__SANITIZE_ADDRESS__)
#define CORO_ASAN 1
#endif
#ifdef CORO_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define CORO_VALGRIND 1
#endif
#endif

struct ms_coro {
    ucontext_t ctx;    /* the coroutine */
    ucontext_t caller; /* who resumed it */
    char *map;         /* guard page + stack */
    size_t map_size;
    char *stack;
    size_t stack_size;
    void (*fn)(void *arg);
    void *arg;
    bool done;
    ms_coro *prev; /* the coroutine running when this one was resumed (none: NULL) */
#ifdef CORO_ASAN
    void *fake_stack;          /* the caller's, kept while the coroutine runs */
    const void *caller_bottom; /* the caller's stack, for the switch back */
    size_t caller_size;
#endif
#ifdef CORO_VALGRIND
    unsigned vg_id;
#endif
};

static _Thread_local ms_coro *running;

ms_coro *ms_coro_self(void)
{
    return running;
}

/* Switches from the caller into co (start or resume). */
static void enter(ms_coro *co)
{
    co->prev = running;
    running = co;
#ifdef CORO_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, co->stack, co->stack_size);
    swapcontext(&co->caller, &co->ctx);
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#else
    swapcontext(&co->caller, &co->ctx);
#endif
    running = co->prev;
}

/* Inside co: back to the caller (final: co's stack is not coming back). */
static void leave(ms_coro *co, bool final)
{
#ifdef CORO_ASAN
    __sanitizer_start_switch_fiber(final ? NULL : &co->fake_stack, co->caller_bottom,
                                   co->caller_size);
    swapcontext(&co->ctx, &co->caller);
    __sanitizer_finish_switch_fiber(co->fake_stack, &co->caller_bottom, &co->caller_size);
#else
    (void) final;
    swapcontext(&co->ctx, &co->caller);
#endif
}

static void trampoline(unsigned lo, unsigned hi)
{
    ms_coro *co = (ms_coro *)(uintptr_t)(((uint64_t)hi << 32) | lo);
#ifdef CORO_ASAN
    __sanitizer_finish_switch_fiber(NULL, &co->caller_bottom, &co->caller_size);
#endif
    for (;;) {
        co->fn(co->arg);
        co->done = true;
        /* the next start switches back in here, to run the next fn */
        leave(co, false);
    }
}

/* getcontext returns twice in principle: kept out of ms_coro_new's frame. */
__attribute__((noinline)) static int get_context(ucontext_t *u)
{
    return getcontext(u);
}

ms_coro *ms_coro_new(size_t stack_size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    stack_size = (stack_size + page - 1) / page * page;
    ms_coro *co = calloc(1, sizeof *co);
    if (!co)
        return NULL;
    co->map_size = stack_size + page;
    co->map = mmap(NULL, co->map_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (co->map == MAP_FAILED) {
        free(co);
        return NULL;
    }
    mprotect(co->map, page, PROT_NONE); /* overflow faults instead of corrupting memory */
    co->stack = co->map + page;
    co->stack_size = stack_size;
    co->done = true;
#ifdef CORO_VALGRIND
    co->vg_id = VALGRIND_STACK_REGISTER(co->stack, co->stack + co->stack_size);
#endif
    if (get_context(&co->ctx) != 0) {
        ms_coro_free(co);
        return NULL;
    }
    co->ctx.uc_stack.ss_sp = co->stack;
    co->ctx.uc_stack.ss_size = co->stack_size;
    co->ctx.uc_link = NULL;
    uintptr_t p = (uintptr_t)co;
    makecontext(&co->ctx, (void (*)(void))trampoline, 2, (unsigned)(p & 0xffffffffu),
                (unsigned)((uint64_t)p >> 32));
    return co;
}

void ms_coro_free(ms_coro *co)
{
    if (!co)
        return;
#ifdef CORO_VALGRIND
    VALGRIND_STACK_DEREGISTER(co->vg_id);
#endif
    munmap(co->map, co->map_size);
    free(co);
}

bool ms_coro_start(ms_coro *co, void (*fn)(void *arg), void *arg)
{
    co->fn = fn;
    co->arg = arg;
    co->done = false;
    enter(co);
    return co->done;
}

bool ms_coro_resume(ms_coro *co)
{
    enter(co);
    return co->done;
}

void ms_coro_yield(ms_coro *co)
{
    leave(co, false);
}
