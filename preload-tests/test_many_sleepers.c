/* 2000 sleeping threads.
 * Each of 2000 threads sleeps 100 ms twice, the sleep function chosen in rotation (thread i's
 * k-th sleep uses function (i + k) % 4): nanosleep, usleep, clock_nanosleep relative
 * (CLOCK_MONOTONIC) and clock_nanosleep TIMER_ABSTIME (CLOCK_MONOTONIC). Every call returns 0
 * and lasts >= ~100 ms; all threads finish and are joined. Under the preload: one OS thread
 * while they are all alive (checked from thread 0 after its first sleep), and the whole run
 * takes < 2 s (one after the other would take 400 s, so this proves they sleep concurrently).
 */
#include "gwtest.h"
#include <pthread.h>

#define N 2000
#define SLEEP_NS 100000000L

static int bad_rc, short_sleeps, done;
static int os_threads_seen = -1;

static int sleep_with(int how) {
    struct timespec ts = {0, SLEEP_NS};
    switch (how) {
    case 0: return nanosleep(&ts, NULL);
    case 1: return usleep(SLEEP_NS / 1000);
    case 2: return clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
    default: {
        struct timespec at = gw_abs_in(CLOCK_MONOTONIC, SLEEP_NS / 1000000);
        return clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
    }
    }
}

static void *sleeper(void *arg) {
    int i = (int)(intptr_t)arg;
    for (int k = 0; k < 2; k++) {
        long long t0 = gw_now_ns();
        int rc = sleep_with((i + k) % 4);
        long long dt = gw_now_ns() - t0;
        if (rc != 0) {
            fprintf(stderr, "thread %d: sleep function %d returned %d (errno %d)\n", i,
                    (i + k) % 4, rc, errno);
            __atomic_add_fetch(&bad_rc, 1, __ATOMIC_SEQ_CST);
        }
        if (dt < SLEEP_NS - 2000000L) __atomic_add_fetch(&short_sleeps, 1, __ATOMIC_SEQ_CST);
        if (i == 0 && k == 0) os_threads_seen = gw_os_threads();
    }
    __atomic_add_fetch(&done, 1, __ATOMIC_SEQ_CST);
    return (void *)(intptr_t)(i + 1);
}

int main(void) {
    static pthread_t t[N];
    long long t0 = gw_now_ns();
    for (int i = 0; i < N; i++) {
        int rc = pthread_create(&t[i], NULL, sleeper, (void *)(intptr_t)i);
        CHECK(rc == 0, "pthread_create #%d: %s", i, strerror(rc));
    }
    for (int i = 0; i < N; i++) {
        void *v = NULL;
        CHECK_EQ(pthread_join(t[i], &v), 0);
        CHECK_EQ((intptr_t)v, i + 1);
    }
    long long dt = gw_now_ns() - t0;
    CHECK_EQ(done, N);
    CHECK_EQ(bad_rc, 0);
    CHECK_EQ(short_sleeps, 0);
    CHECK(dt >= 2 * SLEEP_NS - 4000000L, "the whole run took only %lld ns", dt);
    if (gw_preloaded()) {
        CHECK_EQ(os_threads_seen, 1);
        CHECK(dt < 2000000000LL, "2000 threads x 2 x 100 ms took %lld ms", dt / 1000000);
        CHECK_EQ(gw_os_threads(), 1);
    } else {
        CHECK(os_threads_seen > 1, "native threads saw %d OS threads", os_threads_seen);
    }
    printf("many_sleepers: %d threads x 2 x 100 ms in %lld ms\n", N, dt / 1000000);
    printf("many_sleepers: all passed\n");
    return 0;
}
