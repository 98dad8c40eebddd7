/* C11 <threads.h> threads.
 * 1. thrd_create (thrd_success) of 20 threads returning distinct ints; thrd_join delivers each
 *    (and accepts a NULL result pointer).
 * 2. thrd_exit from a nested call: the value reaches thrd_join, no code after it runs.
 * 3. thrd_current inside a thread equals (thrd_equal) the handle thrd_create gave, and differs
 *    from main's thrd_current.
 * 4. thrd_detach: detached threads run to completion (counter polled by main).
 * 5. thrd_yield: two threads alternate strictly on a shared turn for 1000 rounds.
 * 6. thrd_sleep from 50 threads at once, 200 ms each: all return 0 having slept >= ~200 ms;
 *    under the preload, one OS thread (checked from a sleeper) and the whole batch takes < 3 s
 *    (one after the other would take 10 s).
 */
#include "gwtest.h"
#include <threads.h>

/* ---- 1. values ---- */

static int ret_int(void *arg) {
    int i = (int)(intptr_t)arg;
    thrd_sleep(&(struct timespec){0, (long)(i % 4) * 1000000L}, NULL);
    return i * 3 + 1;
}

static void check_values(void) {
    thrd_t t[20];
    for (int i = 0; i < 20; i++) CHECK_EQ(thrd_create(&t[i], ret_int, (void *)(intptr_t)i), thrd_success);
    for (int i = 0; i < 20; i++) {
        int r = -1;
        if (i == 7) {
            CHECK_EQ(thrd_join(t[i], NULL), thrd_success);
            continue;
        }
        CHECK_EQ(thrd_join(t[i], &r), thrd_success);
        CHECK_EQ(r, i * 3 + 1);
    }
}

/* ---- 2. thrd_exit ---- */

static int after_exit;

static __attribute__((noinline)) void nested_exit(int v) {
    thrd_yield();
    if (v) thrd_exit(v);
    after_exit += 100;
}

static int exits(void *arg) {
    nested_exit((int)(intptr_t)arg);
    after_exit++;
    return -1;
}

static void check_exit(void) {
    thrd_t t;
    int r = 0;
    CHECK_EQ(thrd_create(&t, exits, (void *)(intptr_t)-12345), thrd_success);
    CHECK_EQ(thrd_join(t, &r), thrd_success);
    CHECK_EQ(r, -12345);
    CHECK_EQ(after_exit, 0);
    /* The same path with v == 0 returns normally (shows the counter can move). */
    CHECK_EQ(thrd_create(&t, exits, (void *)(intptr_t)0), thrd_success);
    CHECK_EQ(thrd_join(t, &r), thrd_success);
    CHECK_EQ(r, -1);
    CHECK_EQ(after_exit, 101);
}

/* ---- 3. current / equal ---- */

static thrd_t seen_current[8];

static int current(void *arg) {
    int i = (int)(intptr_t)arg;
    seen_current[i] = thrd_current();
    thrd_yield();
    return thrd_equal(thrd_current(), seen_current[i]) ? 0 : 1;
}

static void check_current(void) {
    thrd_t t[8];
    thrd_t me = thrd_current();
    CHECK(thrd_equal(me, thrd_current()), "main's thrd_current changed");
    for (int i = 0; i < 8; i++) CHECK_EQ(thrd_create(&t[i], current, (void *)(intptr_t)i), thrd_success);
    for (int i = 0; i < 8; i++) {
        int r = -1;
        CHECK_EQ(thrd_join(t[i], &r), thrd_success);
        CHECK_EQ(r, 0);
        CHECK(thrd_equal(seen_current[i], t[i]), "thread %d: thrd_current != created handle", i);
        CHECK(!thrd_equal(seen_current[i], me), "thread %d: thrd_current == main's", i);
        for (int j = 0; j < i; j++)
            CHECK(!thrd_equal(seen_current[i], seen_current[j]), "threads %d and %d equal", i, j);
    }
}

/* ---- 4. detach ---- */

static int detached_done;

static int detached(void *arg) {
    (void)arg;
    thrd_sleep(&(struct timespec){0, 2000000L}, NULL);
    __atomic_add_fetch(&detached_done, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static void check_detach(void) {
    for (int i = 0; i < 10; i++) {
        thrd_t t;
        CHECK_EQ(thrd_create(&t, detached, NULL), thrd_success);
        CHECK_EQ(thrd_detach(t), thrd_success);
    }
    long long t0 = gw_now_ns();
    while (__atomic_load_n(&detached_done, __ATOMIC_SEQ_CST) < 10) {
        CHECK(gw_now_ns() - t0 < 10000000000LL, "detached threads: %d of 10 done", detached_done);
        thrd_sleep(&(struct timespec){0, 1000000L}, NULL);
    }
}

/* ---- 5. thrd_yield alternation ---- */

#define ROUNDS 1000

static int turn, alt_bad, alt_log_n;
static char alt_log[2 * ROUNDS];

static int alternate(void *arg) {
    int me = (int)(intptr_t)arg;
    long long t0 = gw_now_ns();
    for (int r = 0; r < ROUNDS; r++) {
        while (__atomic_load_n(&turn, __ATOMIC_SEQ_CST) != me) {
            if (gw_now_ns() - t0 > 30000000000LL) {
                alt_bad++;
                return 1;
            }
            thrd_yield();
        }
        alt_log[alt_log_n++] = (char)('A' + me);
        __atomic_store_n(&turn, 1 - me, __ATOMIC_SEQ_CST);
    }
    return 0;
}

static void check_yield(void) {
    thrd_t a, b;
    CHECK_EQ(thrd_create(&a, alternate, (void *)(intptr_t)0), thrd_success);
    CHECK_EQ(thrd_create(&b, alternate, (void *)(intptr_t)1), thrd_success);
    int ra = -1, rb = -1;
    CHECK_EQ(thrd_join(a, &ra), thrd_success);
    CHECK_EQ(thrd_join(b, &rb), thrd_success);
    CHECK_EQ(ra, 0);
    CHECK_EQ(rb, 0);
    CHECK_EQ(alt_bad, 0);
    CHECK_EQ(alt_log_n, 2 * ROUNDS);
    for (int i = 0; i < 2 * ROUNDS; i++)
        CHECK(alt_log[i] == 'A' + i % 2, "entry %d is %c", i, alt_log[i]);
}

/* ---- 6. thrd_sleep, concurrently ---- */

#define SLEEPERS 50

static int os_threads_seen = -1, short_sleeps, bad_sleep_rc;

static int sleeper(void *arg) {
    int i = (int)(intptr_t)arg;
    struct timespec ts = {0, 200000000L}, rem = {-1, -1};
    long long t0 = gw_now_ns();
    int rc = thrd_sleep(&ts, &rem);
    long long dt = gw_now_ns() - t0;
    if (rc != 0) __atomic_add_fetch(&bad_sleep_rc, 1, __ATOMIC_SEQ_CST);
    if (dt < 195000000LL) __atomic_add_fetch(&short_sleeps, 1, __ATOMIC_SEQ_CST);
    if (i == 0) os_threads_seen = gw_os_threads();
    return 0;
}

static void check_sleep(void) {
    thrd_t t[SLEEPERS];
    long long t0 = gw_now_ns();
    for (int i = 0; i < SLEEPERS; i++)
        CHECK_EQ(thrd_create(&t[i], sleeper, (void *)(intptr_t)i), thrd_success);
    for (int i = 0; i < SLEEPERS; i++) CHECK_EQ(thrd_join(t[i], NULL), thrd_success);
    long long dt = gw_now_ns() - t0;
    CHECK_EQ(bad_sleep_rc, 0);
    CHECK_EQ(short_sleeps, 0);
    CHECK(dt >= 195000000LL, "50 sleeps of 200 ms took %lld ns", dt);
    if (gw_preloaded()) {
        CHECK_EQ(os_threads_seen, 1);
        CHECK(dt < 3000000000LL, "50 concurrent 200 ms sleeps took %lld ns", dt);
    } else {
        CHECK(os_threads_seen > 1, "native threads saw %d OS threads", os_threads_seen);
    }
}

int main(void) {
    check_values();
    check_exit();
    check_current();
    check_detach();
    check_yield();
    check_sleep();
    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1);
    printf("c11_threads: all passed\n");
    return 0;
}
