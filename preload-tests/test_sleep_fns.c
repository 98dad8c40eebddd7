#include "gwtest.h"
/* Every sleep function, from main and from threads: the time asked for has passed when it
 * returns (and not a second more), zero durations and past deadlines return at once, and bad
 * arguments get exactly glibc's answers (checked natively on glibc 2.36, Linux):
 *   nanosleep {0,-1} / {0,1000000000} / {-1,0}     -> -1, errno EINVAL
 *   nanosleep NULL                                  -> -1, errno EFAULT (the kernel's answer)
 *   clock_nanosleep, same bad values, rel or abs    -> returns EINVAL, errno untouched
 *   clock_nanosleep on CLOCK_THREAD_CPUTIME_ID      -> EINVAL (glibc refuses it itself)
 *   clock_nanosleep on CLOCK_MONOTONIC_RAW          -> EOPNOTSUPP (the kernel's answer)
 *   clock_nanosleep on clock id 12345               -> EINVAL
 *   thrd_sleep, same bad values                     -> -2, errno untouched
 *   a completed sleep leaves *rem untouched (nanosleep, clock_nanosleep, thrd_sleep).
 * Under the preload: 200 threads sleeping 200 ms at once take well under 2 s on one OS thread. */
#include <pthread.h>
#include <threads.h>

#define MS 1000000LL
#define SEC 1000000000LL
#define SENTINEL 12345

static long long ts_ns(const struct timespec *t) { return (long long)t->tv_sec * SEC + t->tv_nsec; }

static long long clock_ns(clockid_t clock) {
    struct timespec t;
    CHECK_EQ(clock_gettime(clock, &t), 0);
    return ts_ns(&t);
}

static struct timespec ns_ts(long long ns) {
    struct timespec t = {(time_t)(ns / SEC), (long)(ns % SEC)};
    return t;
}

/* The sleep that started at t0 (CLOCK_MONOTONIC) and asked for want_ns lasted at least that,
 * and less than a second more. */
static void check_elapsed(const char *what, const char *where, long long t0, long long want_ns) {
    long long dt = gw_now_ns() - t0;
    CHECK(dt >= want_ns && dt < want_ns + 1000 * MS, "%s (%s) took %lld ns, asked for %lld ns", what, where,
          dt, want_ns);
}

static const clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME};
static const char *const clock_names[] = {"CLOCK_REALTIME", "CLOCK_MONOTONIC", "CLOCK_BOOTTIME"};

static void check_all(const char *where) {
    const long long want = 30 * MS;
    struct timespec req = ns_ts(want), rem;
    long long t0;

    /* nanosleep */
    rem = (struct timespec){777, 777};
    t0 = gw_now_ns();
    CHECK_EQ(nanosleep(&req, &rem), 0);
    check_elapsed("nanosleep", where, t0, want);
    CHECK(rem.tv_sec == 777 && rem.tv_nsec == 777, "%s: nanosleep wrote *rem after a full sleep", where);

    for (int i = 0; i < 3; i++) {
        /* clock_nanosleep, relative */
        rem = (struct timespec){777, 777};
        t0 = gw_now_ns();
        CHECK_EQ(clock_nanosleep(clocks[i], 0, &req, &rem), 0);
        check_elapsed(clock_names[i], where, t0, want);
        CHECK(rem.tv_sec == 777 && rem.tv_nsec == 777, "%s %s: *rem written after a full sleep", where,
              clock_names[i]);

        /* clock_nanosleep, TIMER_ABSTIME: on return the clock has reached the deadline. */
        struct timespec at = ns_ts(clock_ns(clocks[i]) + want);
        t0 = gw_now_ns();
        CHECK_EQ(clock_nanosleep(clocks[i], TIMER_ABSTIME, &at, NULL), 0);
        long long now = clock_ns(clocks[i]);
        CHECK(now >= ts_ns(&at), "%s %s TIMER_ABSTIME returned %lld ns before the deadline", where,
              clock_names[i], ts_ns(&at) - now);
        CHECK(gw_now_ns() - t0 < want + 1000 * MS, "%s %s TIMER_ABSTIME overslept", where, clock_names[i]);

        /* A deadline in the past (one second ago, or the epoch of the clock) returns 0 at once. */
        struct timespec past[2] = {ns_ts(clock_ns(clocks[i]) - 1000 * MS), {0, 0}};
        for (int k = 0; k < 2; k++) {
            t0 = gw_now_ns();
            CHECK_EQ(clock_nanosleep(clocks[i], TIMER_ABSTIME, &past[k], NULL), 0);
            CHECK(gw_now_ns() - t0 < 100 * MS, "%s %s: a past deadline took %lld ms", where, clock_names[i],
                  (gw_now_ns() - t0) / MS);
        }
    }

    /* usleep */
    t0 = gw_now_ns();
    CHECK_EQ(usleep((useconds_t)(want / 1000)), 0);
    check_elapsed("usleep", where, t0, want);

    /* thrd_sleep */
    rem = (struct timespec){777, 777};
    t0 = gw_now_ns();
    CHECK_EQ(thrd_sleep(&req, &rem), 0);
    check_elapsed("thrd_sleep", where, t0, want);
    CHECK(rem.tv_sec == 777 && rem.tv_nsec == 777, "%s: thrd_sleep wrote *rem after a full sleep", where);

    /* Zero durations: 0 at once. */
    struct timespec zero = {0, 0};
    t0 = gw_now_ns();
    CHECK_EQ(nanosleep(&zero, NULL), 0);
    CHECK_EQ(usleep(0), 0);
    CHECK_EQ(sleep(0), 0);
    for (int i = 0; i < 3; i++) CHECK_EQ(clock_nanosleep(clocks[i], 0, &zero, NULL), 0);
    CHECK_EQ(thrd_sleep(&zero, NULL), 0);
    CHECK(gw_now_ns() - t0 < 100 * MS, "%s: zero sleeps took %lld ms", where, (gw_now_ns() - t0) / MS);

    /* Bad arguments, as glibc answers them. */
    struct timespec bad[] = {{0, -1}, {0, 1000000000}, {-1, 0}};
    for (int b = 0; b < 3; b++) {
        errno = SENTINEL;
        CHECK_EQ(nanosleep(&bad[b], NULL), -1);
        CHECK_EQ(errno, EINVAL);
        for (int i = 0; i < 3; i++) {
            errno = SENTINEL;
            CHECK_EQ(clock_nanosleep(clocks[i], 0, &bad[b], NULL), EINVAL);
            CHECK_EQ(errno, SENTINEL); /* clock_nanosleep returns the error, never sets errno */
            CHECK_EQ(clock_nanosleep(clocks[i], TIMER_ABSTIME, &bad[b], NULL), EINVAL);
            CHECK_EQ(errno, SENTINEL);
        }
        errno = SENTINEL;
        CHECK_EQ(thrd_sleep(&bad[b], NULL), -2);
        CHECK_EQ(errno, SENTINEL);
    }
    struct timespec *volatile null_ts = NULL;
    errno = SENTINEL;
    CHECK_EQ(nanosleep(null_ts, NULL), -1);
    CHECK_EQ(errno, EFAULT);
    errno = SENTINEL;
    CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, 0, null_ts, NULL), EFAULT);
    CHECK_EQ(errno, SENTINEL);

    /* Clocks that cannot be slept on. */
    struct timespec short_req = {0, 1 * MS};
    for (int flags = 0; flags <= TIMER_ABSTIME; flags += TIMER_ABSTIME) {
        errno = SENTINEL;
        CHECK_EQ(clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, flags, &short_req, NULL), EINVAL);
        CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC_RAW, flags, &short_req, NULL), EOPNOTSUPP);
        CHECK_EQ(clock_nanosleep((clockid_t)12345, flags, &short_req, NULL), EINVAL);
        CHECK_EQ(errno, SENTINEL);
    }
}

static void *in_thread(void *arg) {
    char where[32];
    snprintf(where, sizeof where, "thread %ld", (long)(intptr_t)arg);
    check_all(where);
    return arg;
}

enum { SLEEPERS = 200 };
static long long sleeper_short[SLEEPERS]; /* how much less than 200 ms a sleeper slept, if so */

static void *sleeper(void *arg) {
    long i = (long)(intptr_t)arg;
    struct timespec ts = {0, 200 * MS};
    long long t0 = gw_now_ns();
    if (nanosleep(&ts, NULL) != 0) sleeper_short[i] = -1;
    long long dt = gw_now_ns() - t0;
    if (dt < 200 * MS) sleeper_short[i] = 200 * MS - dt;
    return arg;
}

int main(void) {
    check_all("main");

    /* From threads, three at once (green: interleaved on one OS thread). */
    pthread_t t[3];
    for (long i = 0; i < 3; i++) CHECK_EQ(pthread_create(&t[i], NULL, in_thread, (void *)(intptr_t)i), 0);
    for (int i = 0; i < 3; i++) {
        void *ret = NULL;
        CHECK_EQ(pthread_join(t[i], &ret), 0);
        CHECK_EQ((intptr_t)ret, i);
    }

    /* sleep(1), once. */
    long long t0 = gw_now_ns();
    CHECK_EQ(sleep(1), 0);
    check_elapsed("sleep(1)", "main", t0, 1000 * MS);

    /* Many concurrent sleepers (not when threads are green but sleeps are not: then each sleep
     * blocks the one OS thread, by design, as with eventlet). */
    if (gw_patched("thread") == 1 && gw_patched("time") == 0) return 0;
    pthread_t many[SLEEPERS];
    t0 = gw_now_ns();
    for (long i = 0; i < SLEEPERS; i++)
        CHECK_EQ(pthread_create(&many[i], NULL, sleeper, (void *)(intptr_t)i), 0);
    usleep(100 * 1000); /* halfway through their sleep */
    int os_threads = gw_os_threads();
    for (int i = 0; i < SLEEPERS; i++) CHECK_EQ(pthread_join(many[i], NULL), 0);
    long long dt = gw_now_ns() - t0;
    CHECK(dt >= 200 * MS && dt < 2000 * MS, "%d concurrent 200 ms sleeps took %lld ms", SLEEPERS, dt / MS);
    for (int i = 0; i < SLEEPERS; i++)
        CHECK(sleeper_short[i] == 0, "sleeper %d: nanosleep failed or woke %lld ns early", i, sleeper_short[i]);
    if (gw_patched("thread") == 1)
        CHECK(os_threads == 1, "%d OS threads while %d green threads slept", os_threads, SLEEPERS);
    else
        CHECK(os_threads > 1, "real threads (native or GREENWORLD_THREAD=0), yet only %d OS threads", os_threads);
    return 0;
}
