/* SPDX-License-Identifier: Apache-2.0 */
/*
 * coro.c - stackful coroutines (see coro.h), annotated for AddressSanitizer
 * (fiber switches) and valgrind (stack registration).
 *
 * On x86-64 a switch is a few instructions of our own (ms__coro_switch below):
 * it saves the callee-saved registers, the SSE and x87 control words and
 * the stack pointer, and loads the other side's. glibc's swapcontext also
 * saves and restores the signal mask, one rt_sigprocmask system call per
 * switch (two per request to the database, four to six per HTTP request);
 * no coroutine changes its signal mask, so there is nothing to restore.
 * Elsewhere (or with MSGSTORE_CORO_UCONTEXT defined) ucontext does it.
 */
#include "coro.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Built for shadow stacks (-fcf-protection with return checking): glibc's switch knows them. */
#if defined(__x86_64__) && !defined(MSGSTORE_CORO_UCONTEXT) && !(defined(__CET__) && (__CET__ & 2))
#define CORO_ASM 1
#else
#include <ucontext.h>
#endif

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

#ifdef CORO_ASM
/*
 * ms__coro_switch(&from_sp, to_sp): pushes rbp, rbx, r12-r15 and the MXCSR / x87
 * control words on the current stack, stores the stack pointer in *from_sp,
 * continues on to_sp (saved the same way) and returns there. ms__coro_boot is
 * where a new stack's first switch "returns" to: it calls r13(r12) on a
 * 16-byte aligned stack (the trampoline, which never returns).
 */
void ms__coro_switch(void **from_sp, void *to_sp);
void ms__coro_boot(void);
__asm__(".text\n"
        ".p2align 4\n"
        ".type ms__coro_switch, @function\n"
        "ms__coro_switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $8, %rsp\n"
        "    stmxcsr (%rsp)\n"
        "    fnstcw 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    ldmxcsr (%rsp)\n"
        "    fldcw 4(%rsp)\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size ms__coro_switch, .-ms__coro_switch\n"
        ".p2align 4\n"
        ".type ms__coro_boot, @function\n"
        "ms__coro_boot:\n"
        "    movq %r12, %rdi\n"
        "    andq $-16, %rsp\n"
        "    callq *%r13\n"
        "    ud2\n"
        ".size ms__coro_boot, .-ms__coro_boot\n");
#endif

struct ms_coro {
#ifdef CORO_ASM
    void *sp;        /* the coroutine's saved stack pointer (ms__coro_switch) */
    void *caller_sp; /* who resumed it */
#else
    ucontext_t ctx;    /* the coroutine */
    ucontext_t caller; /* who resumed it */
#endif
    char *map; /* guard page + stack */
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

#ifdef CORO_ASM
static inline void switch_in(ms_coro *co)
{
    ms__coro_switch(&co->caller_sp, co->sp);
}
static inline void switch_out(ms_coro *co)
{
    ms__coro_switch(&co->sp, co->caller_sp);
}
#else
static inline void switch_in(ms_coro *co)
{
    swapcontext(&co->caller, &co->ctx);
}
static inline void switch_out(ms_coro *co)
{
    swapcontext(&co->ctx, &co->caller);
}
#endif

/* Switches from the caller into co (start or resume). */
static void enter(ms_coro *co)
{
    co->prev = running;
    running = co;
#ifdef CORO_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, co->stack, co->stack_size);
    switch_in(co);
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#else
    switch_in(co);
#endif
    running = co->prev;
}

/* Inside co: back to the caller (final: co's stack is not coming back). */
static void leave(ms_coro *co, bool final)
{
#ifdef CORO_ASAN
    __sanitizer_start_switch_fiber(final ? NULL : &co->fake_stack, co->caller_bottom,
                                   co->caller_size);
    switch_out(co);
    __sanitizer_finish_switch_fiber(co->fake_stack, &co->caller_bottom, &co->caller_size);
#else
    (void) final;
    switch_out(co);
#endif
}

static void run(ms_coro *co)
{
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

#ifdef CORO_ASM
/* A new stack as ms__coro_switch leaves one: its first switch in "returns" into ms__coro_boot. */
static void prepare(ms_coro *co)
{
    uintptr_t top = ((uintptr_t)(co->stack + co->stack_size)) & ~(uintptr_t)15;
    void **sp = (void **)top;
    *--sp = NULL;                             /* a null return address ends backtraces */
    *--sp = (void *)(uintptr_t)ms__coro_boot; /* ms__coro_switch's ret */
    *--sp = NULL;                             /* rbp: the outermost frame */
    *--sp = NULL;                             /* rbx */
    *--sp = co;                               /* r12: ms__coro_boot's argument */
    *--sp = (void *)(uintptr_t)run;           /* r13: what ms__coro_boot calls */
    *--sp = NULL;                             /* r14 */
    *--sp = NULL;                             /* r15 */
    uint32_t *cw = (uint32_t *)(void *)--sp;
    cw[0] = 0x1F80; /* MXCSR: the ABI's initial value, all exceptions masked */
    cw[1] = 0x037F; /* x87 control word: the same */
    co->sp = sp;
}
#else
static void trampoline(unsigned lo, unsigned hi)
{
    run((ms_coro *)(uintptr_t)(((uint64_t)hi << 32) | lo));
}

/* getcontext returns twice in principle: kept out of ms_coro_new's frame. */
__attribute__((noinline)) static int get_context(ucontext_t *u)
{
    return getcontext(u);
}
#endif

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
#ifdef CORO_ASM
    prepare(co);
#else
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
#endif
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
