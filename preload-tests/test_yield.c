/* sched_yield.
 * Two threads alternate strictly for 10000 rounds on a shared turn variable, spinning on
 * sched_yield (which returns 0) until it is their turn; meanwhile main also spins on
 * sched_yield until both have finished (not pthread_join: main's yields must let them run).
 * Under the preload this is purely cooperative and finishes because every yield lets the
 * other green threads run; natively it finishes too. Every spin gives up after 60 s, so a
 * yield that never lets the other side run fails instead of hanging. The log of turns must be
 * ABAB..., and main must have yielded at least once while they ran. Under the preload, one OS
 * thread throughout.
 */
#include "gwtest.h"
#include <pthread.h>
#include <sched.h>

#define ROUNDS 10000
#define LIMIT_NS 60000000000LL

static int turn, finished, bad_rc, timed_out, log_n;
static char turn_log[2 * ROUNDS];
static int os_threads_seen = -1;

static void *alternate(void *arg) {
    int me = (int)(intptr_t)arg;
    long long t0 = gw_now_ns();
    for (int r = 0; r < ROUNDS; r++) {
        while (__atomic_load_n(&turn, __ATOMIC_SEQ_CST) != me) {
            if (sched_yield() != 0) __atomic_add_fetch(&bad_rc, 1, __ATOMIC_SEQ_CST);
            if (gw_now_ns() - t0 > LIMIT_NS) {
                __atomic_add_fetch(&timed_out, 1, __ATOMIC_SEQ_CST);
                __atomic_add_fetch(&finished, 1, __ATOMIC_SEQ_CST);
                return NULL;
            }
        }
        turn_log[log_n++] = (char)('A' + me);
        if (me == 1 && r == ROUNDS / 2) os_threads_seen = gw_os_threads();
        __atomic_store_n(&turn, 1 - me, __ATOMIC_SEQ_CST);
    }
    __atomic_add_fetch(&finished, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

int main(void) {
    pthread_t a, b;
    CHECK_EQ(pthread_create(&a, NULL, alternate, (void *)(intptr_t)0), 0);
    CHECK_EQ(pthread_create(&b, NULL, alternate, (void *)(intptr_t)1), 0);
    long long t0 = gw_now_ns();
    long main_yields = 0;
    while (__atomic_load_n(&finished, __ATOMIC_SEQ_CST) < 2) {
        CHECK_EQ(sched_yield(), 0);
        main_yields++;
        CHECK(gw_now_ns() - t0 < LIMIT_NS + 5000000000LL, "still not done after 65 s, %d rounds",
              log_n);
    }
    long long dt = gw_now_ns() - t0;
    CHECK_EQ(pthread_join(a, NULL), 0);
    CHECK_EQ(pthread_join(b, NULL), 0);
    CHECK_EQ(timed_out, 0);
    CHECK_EQ(bad_rc, 0);
    CHECK(main_yields >= 1, "main never yielded");
    CHECK_EQ(log_n, 2 * ROUNDS);
    for (int i = 0; i < 2 * ROUNDS; i++)
        CHECK(turn_log[i] == 'A' + i % 2, "turn %d taken by %c", i, turn_log[i]);
    if (gw_preloaded()) {
        CHECK_EQ(os_threads_seen, 1);
        CHECK_EQ(gw_os_threads(), 1);
    } else {
        CHECK(os_threads_seen > 1, "native threads saw %d OS threads", os_threads_seen);
    }
    printf("yield: %d rounds in %lld ms, main yielded %ld times\n", ROUNDS, dt / 1000000, main_yields);
    printf("yield: all passed\n");
    return 0;
}
