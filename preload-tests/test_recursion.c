/* Deep stacks.
 * 1. A thread created with attr stacksize 4 MiB recurses through ~3 MiB of stack: each frame
 *    holds a volatile 16 KiB array, written on every page and summed on the way back, so no
 *    frame can be optimised away; the sum is checked against a plain loop and the distance
 *    between the outermost and the deepest frame is measured (>= 3 MiB).
 * 2. A default-attr thread recurses through ~6 MiB the same way (greenworld's default stack is
 *    8 MiB, glibc's is RLIMIT_STACK, usually 8 MiB; natively the part is skipped when the
 *    default is smaller than 7 MiB, as it is with an unlimited RLIMIT_STACK). Under the preload
 *    a default below 7 MiB is a failure unless GREENWORLD_STACK_SIZE is set.
 * 3. A few such threads recurse at the same time, interleaving (a sleep at the deepest point),
 *    and each still gets its own right sum.
 */
#include "gwtest.h"
#include <pthread.h>

#define MiB (1024 * 1024)
#define FRAME (16 * 1024)
#define STRIDE 512

static __attribute__((noinline)) long recurse(int depth, uintptr_t *deepest, int nap) {
    volatile char buf[FRAME];
    for (int i = 0; i < FRAME; i += STRIDE) buf[i] = (char)(depth * 7 + i / STRIDE);
    long s;
    if (depth > 0) {
        s = recurse(depth - 1, deepest, nap);
    } else {
        *deepest = (uintptr_t)buf;
        if (nap) usleep(5000);
        s = 0;
    }
    for (int i = 0; i < FRAME; i += STRIDE) s += buf[i];
    return s;
}

static long expected_sum(int depth) {
    long s = 0;
    for (int d = 0; d <= depth; d++)
        for (int i = 0; i < FRAME; i += STRIDE) s += (char)(d * 7 + i / STRIDE);
    return s;
}

struct job {
    int depth, nap;
    long sum;
    uintptr_t top, deepest;
    size_t stack_size;
};

static void *deep(void *arg) {
    struct job *j = arg;
    volatile char top;
    pthread_attr_t a;
    void *addr;
    j->top = (uintptr_t)&top;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getstack(&a, &addr, &j->stack_size);
        pthread_attr_destroy(&a);
    }
    if (j->depth < 0) return NULL; /* only asked for the stack size */
    j->sum = recurse(j->depth, &j->deepest, j->nap);
    return NULL;
}

static void run(struct job *j, size_t stacksize) {
    pthread_attr_t a;
    pthread_t t;
    CHECK_EQ(pthread_attr_init(&a), 0);
    if (stacksize) CHECK_EQ(pthread_attr_setstacksize(&a, stacksize), 0);
    CHECK_EQ(pthread_create(&t, &a, deep, j), 0);
    CHECK_EQ(pthread_attr_destroy(&a), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
}

static void check_job(struct job *j, size_t min_used) {
    CHECK_EQ(j->sum, expected_sum(j->depth));
    CHECK(j->top > j->deepest && j->top - j->deepest >= min_used,
          "recursion used only %ld bytes of stack, want >= %zu", (long)(j->top - j->deepest),
          min_used);
}

int main(void) {
    /* 1. 4 MiB stack, ~3 MiB deep. */
    struct job j = {.depth = 3 * MiB / FRAME};
    run(&j, 4 * MiB);
    CHECK(j.stack_size >= 4 * MiB, "attr stack 4 MiB, getattr_np says %zu", j.stack_size);
    check_job(&j, 3 * MiB - FRAME);

    /* 2. default stack, ~6 MiB deep. */
    struct job probe = {.depth = -1};
    run(&probe, 0);
    const char *env = getenv("GREENWORLD_STACK_SIZE");
    int env_set = env && *env;
    if (probe.stack_size < 7 * MiB) {
        CHECK(!gw_preloaded() || env_set, "default green stack is %zu bytes, want 8 MiB",
              probe.stack_size);
        printf("recursion: default stack is %zu bytes, 6 MiB part skipped\n", probe.stack_size);
    } else {
        struct job d = {.depth = 6 * MiB / FRAME};
        run(&d, 0);
        check_job(&d, 6 * MiB - FRAME);

        /* 3. several at once, interleaved at their deepest point. */
        enum { K = 4 };
        struct job js[K];
        pthread_t t[K];
        for (int i = 0; i < K; i++) {
            js[i] = (struct job){.depth = 5 * MiB / FRAME - i * 16, .nap = 1};
            CHECK_EQ(pthread_create(&t[i], NULL, deep, &js[i]), 0);
        }
        for (int i = 0; i < K; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
        for (int i = 0; i < K; i++) check_job(&js[i], (size_t)js[i].depth * FRAME);
    }
    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1);
    printf("recursion: all passed\n");
    return 0;
}
