/* Every sleep function: elapsed time at least what was asked, glibc's results for bad
 * arguments, from main and from threads; under the preload, many concurrent sleepers on one
 * OS thread. */
#include "gwtest.h"
#include <pthread.h>
#include <threads.h>

#define MS 1000000LL

static void check_elapsed(long long t0, long long want_ns, const char *what) {
    long long dt = gw_now_ns() - t0;
    CHECK(dt >= want_ns - MS / 2 && dt < want_ns + 1000 * MS, "%s took %lld ns, asked %lld", what, dt, want_ns);
}

static void abs_in(clockid_t clock, long long ns, struct timespec *ts) {
    clock_gettime(clock, ts);
    long long t = ts->tv_sec * 1000000000LL + ts->tv_nsec + ns;
    ts->tv_sec = t / 1000000000LL;
    ts->tv_nsec = t % 1000000000LL;
}

static void check_all(void) {
    struct timespec ts = {0, 30 * MS};
    long long t0 = gw_now_ns();
    CHECK_EQ(nanosleep(&ts, NULL), 0);
    check_elapsed(t0, 30 * MS, "nanosleep");

    clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME};
    for (int i = 0; i < 3; i++) {
        t0 = gw_now_ns();
        CHECK_EQ(clock_nanosleep(clocks[i], 0, &ts, NULL), 0);
        check_elapsed(t0, 30 * MS, "clock_nanosleep relative");
        struct timespec at;
        abs_in(clocks[i], 30 * MS, &at);
        t0 = gw_now_ns();
        CHECK_EQ(clock_nanosleep(clocks[i], TIMER_ABSTIME, &at, NULL), 0);
        check_elapsed(t0, 29 * MS, "clock_nanosleep TIMER_ABSTIME");
        abs_in(clocks[i], -1000 * MS, &at);
        t0 = gw_now_ns();
        CHECK_EQ(clock_nanosleep(clocks[i], TIMER_ABSTIME, &at, NULL), 0);
        CHECK(gw_now_ns() - t0 < 20 * MS, "a past deadline returns at once");
    }
    t0 = gw_now_ns();
    CHECK_EQ(usleep(30 * 1000), 0);
    check_elapsed(t0, 30 * MS, "usleep");
    t0 = gw_now_ns();
    CHECK_EQ(thrd_sleep(&ts, NULL), 0);
    check_elapsed(t0, 30 * MS, "thrd_sleep");

    /* Zero durations. */
    struct timespec zero = {0, 0};
    CHECK_EQ(nanosleep(&zero, NULL), 0);
    CHECK_EQ(usleep(0), 0);
    CHECK_EQ(sleep(0), 0u);
    CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, 0, &zero, NULL), 0);
    CHECK_EQ(thrd_sleep(&zero, NULL), 0);

    /* Bad arguments, as glibc answers them. */
    struct timespec bad[] = {{0, -1}, {0, 1000000000}, {-1, 0}};
    for (int i = 0; i < 3; i++) {
        errno = 0;
        CHECK_EQ(nanosleep(&bad[i], NULL), -1);
        CHECK_EQ(errno, EINVAL);
        errno = 12345;
        CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, 0, &bad[i], NULL), EINVAL);
        CHECK_EQ(errno, 12345); /* clock_nanosleep returns the error, never sets errno */
        CHECK_EQ(thrd_sleep(&bad[i], NULL), -2);
    }
    errno = 12345;
    int rc = clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &ts, NULL);
    CHECK_EQ(rc, EINVAL);
    CHECK_EQ(errno, 12345);
}

static void *in_thread(void *arg) {
    check_all();
    return arg;
}

enum { SLEEPERS = 200 };
static volatile int seen_os_threads;

static void *sleeper(void *arg) {
    struct timespec ts = {0, 200 * MS};
    CHECK_EQ(nanosleep(&ts, NULL), 0);
    if (arg) seen_os_threads = gw_os_threads();
    return NULL;
}

int main(void) {
    check_all();
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, in_thread, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    long long t0 = gw_now_ns();
    CHECK_EQ(sleep(1), 0u);
    check_elapsed(t0, 1000 * MS, "sleep(1)");

    pthread_t many[SLEEPERS];
    t0 = gw_now_ns();
    for (int i = 0; i < SLEEPERS; i++) CHECK_EQ(pthread_create(&many[i], NULL, sleeper, i == 0 ? (void *)1 : NULL), 0);
    for (int i = 0; i < SLEEPERS; i++) CHECK_EQ(pthread_join(many[i], NULL), 0);
    long long dt = gw_now_ns() - t0;
    CHECK(dt < 2000 * MS, "%d concurrent 200 ms sleeps took %lld ms", SLEEPERS, dt / MS);
    if (gw_preloaded()) CHECK_EQ(seen_os_threads, 1);
    return 0;
}
