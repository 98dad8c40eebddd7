/* pthread_join and its variants.
 * 1. 100 threads (each sleeping a different short while) return distinct values; every join
 *    delivers its own thread's value, whatever order they finish in.
 * 2. Joining oneself -> EDEADLK, from main and from a thread.
 * 3. Joining a thread created detached (attr), while it is still alive -> EINVAL.
 * 4. Under the preload only: a second joiner while a first one waits -> EINVAL (the target
 *    sleeps 200 ms, the first joiner is a thread, main tries ~50 ms later); the first joiner
 *    still gets the value. Not natively: glibc >= 2.28 means to return EINVAL here, but its
 *    check (a CAS expecting joinid == self) never fires, so both joiners wait and both free
 *    the thread's descriptor.
 * 5. Under the preload only: joining a handle that was already joined -> ESRCH (undefined
 *    behaviour in glibc, so not tried natively).
 * 6. pthread_tryjoin_np -> EBUSY while the thread runs, then 0 and the value once it ended.
 * 7. pthread_timedjoin_np / pthread_clockjoin_np past their deadline -> ETIMEDOUT after about
 *    that long (and at once for a deadline already past); a deadline met -> 0 and the value.
 */
#include "gwtest.h"
#include <pthread.h>

/* Waits (sleeping 1 ms at a time, so green threads run) until *flag is non-zero; fails after
 * 10 s. */
/* ---- 1. many values ---- */

#define MANY 100

static void *ret_value(void *arg) {
    int i = (int)(intptr_t)arg;
    gw_sleep_ms((MANY - i) % 7); /* finish out of creation order */
    return (void *)(intptr_t)(i * 1000 + 17);
}

static void check_values(void) {
    pthread_t t[MANY];
    for (int i = 0; i < MANY; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, ret_value, (void *)(intptr_t)i), 0);
    for (int i = 0; i < MANY; i++) {
        void *v = (void *)-1;
        CHECK_EQ(pthread_join(t[i], &v), 0);
        CHECK_EQ((intptr_t)v, i * 1000 + 17);
    }
    /* A NULL value pointer is allowed. */
    pthread_t u;
    CHECK_EQ(pthread_create(&u, NULL, ret_value, (void *)(intptr_t)3), 0);
    CHECK_EQ(pthread_join(u, NULL), 0);
}

/* ---- 2. self ---- */

static void *join_self(void *arg) {
    (void)arg;
    return (void *)(intptr_t)pthread_join(pthread_self(), NULL);
}

static void check_self(void) {
    CHECK_EQ(pthread_join(pthread_self(), NULL), EDEADLK);
    pthread_t t;
    void *v = NULL;
    CHECK_EQ(pthread_create(&t, NULL, join_self, NULL), 0);
    CHECK_EQ(pthread_join(t, &v), 0);
    CHECK_EQ((intptr_t)v, EDEADLK);
}

/* ---- 3. detached ---- */

static int det_release, det_done;

static void *detached_body(void *arg) {
    (void)arg;
    gw_wait_flag(&det_release, "release of the detached thread");
    __atomic_store_n(&det_done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void check_detached(void) {
    pthread_attr_t a;
    pthread_t t;
    CHECK_EQ(pthread_attr_init(&a), 0);
    CHECK_EQ(pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED), 0);
    CHECK_EQ(pthread_create(&t, &a, detached_body, NULL), 0);
    CHECK_EQ(pthread_attr_destroy(&a), 0);
    gw_sleep_ms(10); /* let it start (it then waits for det_release, so it is alive) */
    CHECK_EQ(pthread_join(t, NULL), EINVAL);
    CHECK_EQ(__atomic_load_n(&det_done, __ATOMIC_SEQ_CST), 0);
    __atomic_store_n(&det_release, 1, __ATOMIC_SEQ_CST);
    gw_wait_flag(&det_done, "the detached thread to finish");
}

/* ---- 4. second joiner ---- */

static pthread_t target;
static int joiner_started, joiner_rc = -1;
static void *joiner_value;

static void *slow_target(void *arg) {
    (void)arg;
    gw_sleep_ms(200);
    return (void *)(intptr_t)4242;
}

static void *first_joiner(void *arg) {
    (void)arg;
    __atomic_store_n(&joiner_started, 1, __ATOMIC_SEQ_CST);
    joiner_rc = pthread_join(target, &joiner_value);
    return NULL;
}

static void check_second_joiner(void) {
    if (!gw_preloaded()) return; /* glibc: both joiners wait (see the top of the file) */
    pthread_t j;
    CHECK_EQ(pthread_create(&target, NULL, slow_target, NULL), 0);
    CHECK_EQ(pthread_create(&j, NULL, first_joiner, NULL), 0);
    gw_wait_flag(&joiner_started, "the first joiner");
    gw_sleep_ms(50); /* the first joiner is now inside pthread_join, the target still sleeps */
    long long t0 = gw_now_ns();
    CHECK_EQ(pthread_join(target, NULL), EINVAL);
    CHECK(gw_now_ns() - t0 < 100000000LL, "the refused join waited %lld ns", gw_now_ns() - t0);
    CHECK_EQ(pthread_join(j, NULL), 0);
    CHECK_EQ(joiner_rc, 0);
    CHECK_EQ((intptr_t)joiner_value, 4242);
}

/* ---- 5. already joined (green only) ---- */

static void check_already_joined(void) {
    if (!gw_preloaded()) return; /* glibc: undefined behaviour (the handle may be reused) */
    pthread_t t;
    void *v = NULL;
    CHECK_EQ(pthread_create(&t, NULL, ret_value, (void *)(intptr_t)5), 0);
    CHECK_EQ(pthread_join(t, &v), 0);
    CHECK_EQ((intptr_t)v, 5017);
    CHECK_EQ(pthread_join(t, &v), ESRCH);
    CHECK_EQ(pthread_tryjoin_np(t, &v), ESRCH);
}

/* ---- 6. tryjoin ---- */

static void *sleep_100(void *arg) {
    gw_sleep_ms(100);
    return arg;
}

/* Outlives every timed-out join below by far, even on a loaded machine. */
static void *sleep_1500(void *arg) {
    gw_sleep_ms(1500);
    return arg;
}

static void check_tryjoin(void) {
    pthread_t t;
    void *v = NULL;
    long long t0 = gw_now_ns();
    CHECK_EQ(pthread_create(&t, NULL, sleep_100, (void *)(intptr_t)55), 0);
    CHECK_EQ(pthread_tryjoin_np(t, &v), EBUSY);
    int rc, busy = 1;
    while ((rc = pthread_tryjoin_np(t, &v)) == EBUSY) {
        busy++;
        CHECK(gw_now_ns() - t0 < 10000000000LL, "tryjoin still EBUSY after 10 s");
        gw_sleep_ms(2);
    }
    long long dt = gw_now_ns() - t0;
    CHECK_EQ(rc, 0);
    CHECK_EQ((intptr_t)v, 55);
    CHECK(dt >= 90000000LL, "joined after only %lld ns: the thread cannot have slept 100 ms", dt);
    CHECK(busy >= 2, "only %d EBUSY answers", busy);
}

/* ---- 7. timed joins ---- */

static void check_timedjoin(void) {
    pthread_t t;
    void *v = NULL;
    CHECK_EQ(pthread_create(&t, NULL, sleep_1500, (void *)(intptr_t)66), 0);
    gw_sleep_ms(5);

    /* A deadline already past: at once. */
    struct timespec past = gw_abs_in(CLOCK_REALTIME, 0);
    past.tv_sec -= 1;
    long long t0 = gw_now_ns();
    CHECK_EQ(pthread_timedjoin_np(t, &v, &past), ETIMEDOUT);
    CHECK(gw_now_ns() - t0 < 50000000LL, "past deadline took %lld ns", gw_now_ns() - t0);

    /* 30 ms from now, the thread sleeps 1.5 s. */
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 30);
    t0 = gw_now_ns();
    CHECK_EQ(pthread_timedjoin_np(t, &v, &at), ETIMEDOUT);
    long long dt = gw_now_ns() - t0;
    CHECK(dt >= 25000000LL && dt < 5000000000LL, "timed out after %lld ns, want ~30 ms", dt);

    /* pthread_clockjoin_np on CLOCK_MONOTONIC, 20 ms. */
    at = gw_abs_in(CLOCK_MONOTONIC, 20);
    t0 = gw_now_ns();
    CHECK_EQ(pthread_clockjoin_np(t, &v, CLOCK_MONOTONIC, &at), ETIMEDOUT);
    dt = gw_now_ns() - t0;
    CHECK(dt >= 15000000LL && dt < 5000000000LL, "timed out after %lld ns, want ~20 ms", dt);

    /* A deadline far enough away: the thread ends first. */
    at = gw_abs_in(CLOCK_REALTIME, 5000);
    CHECK_EQ(pthread_timedjoin_np(t, &v, &at), 0);
    CHECK_EQ((intptr_t)v, 66);

    /* Same with clockjoin. */
    CHECK_EQ(pthread_create(&t, NULL, sleep_100, (void *)(intptr_t)77), 0);
    at = gw_abs_in(CLOCK_MONOTONIC, 5000);
    CHECK_EQ(pthread_clockjoin_np(t, &v, CLOCK_MONOTONIC, &at), 0);
    CHECK_EQ((intptr_t)v, 77);
}

int main(void) {
    check_values();
    check_self();
    check_detached();
    check_second_joiner();
    check_already_joined();
    check_tryjoin();
    check_timedjoin();
    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1);
    printf("join: all passed\n");
    return 0;
}
