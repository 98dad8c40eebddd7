/* Several hubs, placement at a thread's first run (README, Several hubs): `main` counts as one
 * of its hub's threads while it can run. `main` makes a thread and yields at once (its hub then
 * starts the new thread, with no time for the other hub to take it from the shelf), then
 * computes with no hooked call: the thread must keep running meanwhile, so it went to the
 * other hub. Before, the hub counted only green threads, saw none of its own, and kept the
 * thread beside `main`, where it could not run until `main` gave its hub up (pigz's writer
 * thread, left on `main`'s hub behind two compressors). Natively the thread is its own OS
 * thread. Under the preload the test runs itself again at GREENWORLD_HUBS=2 with
 * GREENWORLD_SLICE=off: nothing but another hub could run the thread while `main` computes. */
#include "gwtest.h"

#define NAPS 5

static volatile int naps;
static volatile int stop;

static void *napper(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_SEQ_CST)) {
        usleep(100);
        __atomic_add_fetch(&naps, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

/* Computes, with no hooked call, until the thread napped `want` times; false after about 10 s. */
static int compute_until_napped(int want) {
    struct timespec t0, t;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t0);
    volatile unsigned long sink = 0;
    for (;;) {
        for (int i = 0; i < 100000; i++) sink = sink * 6364136223846793005UL + 1;
        if (__atomic_load_n(&naps, __ATOMIC_SEQ_CST) >= want) return 1;
        syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 10) return 0;
    }
}

int main(void) {
    gw_rerun_with_slice("off");
    if (gw_preloaded() && gw_hubs() < 2) {
        printf("skip: one hub (nothing else could run the thread while main computes)\n");
        return GW_SKIP;
    }
    gw_watchdog("test_hubs_place_root", 60);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, napper, NULL), 0);
    sched_yield();
    CHECK(compute_until_napped(NAPS), "the thread napped %d times of %d while main computed: it started on main's hub",
          naps, NAPS);
    __atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
    CHECK_EQ(pthread_join(t, NULL), 0);
    printf("ok: a thread made while main could run started on the other hub\n");
    return 0;
}
