/* Several hubs, placement at a thread's first run (README, Several hubs): a thread made while
 * its creator's hub is busy (the creator computes, no hooked call, no time slice, no
 * preemption) gets to run on the other hub before the creator gives its own up, and no thread
 * moves once it ran: its pthread_self, kernel thread id and thread-locals stay the same for its
 * whole life, through sleeps and yields; one whose stack pthread_getattr_np reported before it
 * ran runs on that stack. Natively each thread is its own OS thread and runs at
 * once. Under the preload the test runs itself again at GREENWORLD_HUBS=2 with
 * GREENWORLD_SLICE=off, so that nothing but another hub could run the new threads while the
 * creator computes (before placement at first run, they stayed on the creator's hub, and the
 * creator's bounded wait ran out). */
#include "gwtest.h"

#define THREADS 8
#define ROUNDS 40

static __thread int tls_var;
static volatile int started;
static volatile int failures;

struct seen {
    pthread_t handle; /* as pthread_create gave it */
    int index;
    char *stack_low; /* as pthread_getattr_np reported it before the thread ran */
    size_t stack_size;
};

static void *body(void *arg) {
    struct seen *s = arg;
    pthread_t self = pthread_self();
    pid_t tid = gw_tid();
    int *tls = &tls_var;
    tls_var = s->index;
    __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < ROUNDS; i++) {
        if (i % 2) usleep(100);
        else sched_yield();
        if (!pthread_equal(pthread_self(), self) || gw_tid() != tid || &tls_var != tls ||
            tls_var != s->index) {
            fprintf(stderr, "thread %d moved after it started: self %lx->%lx tid %d->%d tls %p->%p (%d)\n",
                    s->index, (unsigned long)self, (unsigned long)pthread_self(), (int)tid, (int)gw_tid(),
                    (void *)tls, (void *)&tls_var, tls_var);
            __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
            break;
        }
    }
    /* The handle its creator holds is its own (taken from a shelf, it kept its block). */
    while (!__atomic_load_n(&s->handle, __ATOMIC_ACQUIRE)) sched_yield();
    /* The stack reported before it started (pinned then) is the one it runs on, wherever. */
    char here;
    if (s->stack_size && (&here < s->stack_low || &here >= s->stack_low + s->stack_size)) {
        fprintf(stderr, "thread %d runs at %p, outside the stack reported before it started (%p + %zu)\n",
                s->index, (void *)&here, (void *)s->stack_low, s->stack_size);
        __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
    }
    if (!pthread_equal(s->handle, self)) {
        fprintf(stderr, "thread %d: pthread_self %lx, created as %lx\n", s->index, (unsigned long)self,
                (unsigned long)s->handle);
        __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

/* Computes, with no hooked call, until `want` threads started; false after about 10 s. */
static int compute_until_started(int want) {
    struct timespec t0, t;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t0);
    volatile unsigned long sink = 0;
    for (;;) {
        for (int i = 0; i < 100000; i++) sink = sink * 6364136223846793005UL + 1;
        if (__atomic_load_n(&started, __ATOMIC_SEQ_CST) >= want) return 1;
        syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 10) return 0;
    }
}

int main(void) {
    gw_rerun_with_slice("off");
    if (gw_preloaded() && gw_hubs() < 2) {
        printf("skip: one hub (nothing else could run a thread while its creator computes)\n");
        return GW_SKIP;
    }
    gw_watchdog("test_hubs_steal", 60);
    static struct seen seen[THREADS];
    pthread_t t[THREADS];
    /* One thread, then a few at once, each while the creator computes. */
    int made = 0;
    for (int wave = 1; made < THREADS; wave *= 2) {
        int upto = made + wave > THREADS ? THREADS : made + wave;
        for (int i = made; i < upto; i++) {
            seen[i].index = i + 1;
            CHECK_EQ(pthread_create(&t[i], NULL, body, &seen[i]), 0);
            if (i % 2 == 0) { /* asked before it runs: it must then start on that stack */
                pthread_attr_t attr;
                void *low;
                CHECK_EQ(pthread_getattr_np(t[i], &attr), 0);
                CHECK_EQ(pthread_attr_getstack(&attr, &low, &seen[i].stack_size), 0);
                seen[i].stack_low = low;
                pthread_attr_destroy(&attr);
            }
            __atomic_store_n(&seen[i].handle, t[i], __ATOMIC_RELEASE);
        }
        CHECK(compute_until_started(upto),
              "threads %d..%d made while their creator computed did not start while it computed", made + 1,
              upto);
        made = upto;
    }
    for (int i = 0; i < THREADS; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK(failures == 0, "%d threads moved or changed identity", failures);
    printf("ok: %d threads made while their creator computed started meanwhile; none moved\n", THREADS);
    return 0;
}
