#include "gwtest.h"
#include <linux/futex.h>
#include <pthread.h>
/* Raw futex waits and wakes through syscall(SYS_futex) (HotSpot's safepoint barrier,
 * libstdc++'s atomic waits): a waiter must not block the OS thread its waker runs on. A wait
 * whose word already changed answers EAGAIN, a timed one ETIMEDOUT; a wake returns how many it
 * woke; waiters are woken by a thread and by main; FUTEX_WAIT_BITSET with an absolute deadline. */

static uint32_t word, started;

static long futex(uint32_t *addr, int op, uint32_t val, const struct timespec *ts, uint32_t val3) {
    return syscall(SYS_futex, addr, op, val, ts, NULL, val3);
}

static void *waiter(void *arg) {
    __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&word, __ATOMIC_SEQ_CST) == 0) {
        long r = futex(&word, FUTEX_WAIT_PRIVATE, 0, NULL, 0);
        CHECK(r == 0 || errno == EAGAIN || errno == EINTR, "FUTEX_WAIT: %s", strerror(errno));
    }
    return arg;
}

static void *waker(void *arg) {
    usleep(20 * 1000);
    __atomic_store_n(&word, 1, __ATOMIC_SEQ_CST);
    long woken = futex(&word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, 0);
    CHECK(woken >= 0 && woken <= 2, "FUTEX_WAKE woke %ld", woken);
    return arg;
}

int main(void) {
    gw_watchdog("test_futex_raw", 20);
    uint32_t other = 5;
    CHECK_EQ(futex(&other, FUTEX_WAIT_PRIVATE, 4, NULL, 0), -1);
    CHECK_EQ(errno, EAGAIN);
    struct timespec rel = {0, 10 * 1000 * 1000};
    CHECK_EQ(futex(&other, FUTEX_WAIT_PRIVATE, 5, &rel, 0), -1);
    CHECK_EQ(errno, ETIMEDOUT);
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 10 * 1000 * 1000;
    if (abs.tv_nsec >= 1000000000) { abs.tv_sec++; abs.tv_nsec -= 1000000000; }
    CHECK_EQ(futex(&other, FUTEX_WAIT_BITSET_PRIVATE, 5, &abs, FUTEX_BITSET_MATCH_ANY), -1);
    CHECK_EQ(errno, ETIMEDOUT);
    CHECK_EQ(futex(&other, FUTEX_WAKE_PRIVATE, 1, NULL, 0), 0);

    /* Two waiters woken by a third thread. */
    pthread_t w1, w2, k;
    CHECK_EQ(pthread_create(&w1, NULL, waiter, NULL), 0);
    CHECK_EQ(pthread_create(&w2, NULL, waiter, NULL), 0);
    CHECK_EQ(pthread_create(&k, NULL, waker, NULL), 0);
    CHECK_EQ(pthread_join(w1, NULL), 0);
    CHECK_EQ(pthread_join(w2, NULL), 0);
    CHECK_EQ(pthread_join(k, NULL), 0);

    /* Main wakes a waiting thread, and counts it. */
    __atomic_store_n(&word, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&started, 0, __ATOMIC_SEQ_CST);
    CHECK_EQ(pthread_create(&w1, NULL, waiter, NULL), 0);
    while (__atomic_load_n(&started, __ATOMIC_SEQ_CST) == 0) usleep(1000);
    usleep(20 * 1000); /* it waits in FUTEX_WAIT by now */
    __atomic_store_n(&word, 1, __ATOMIC_SEQ_CST);
    CHECK_EQ(futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL, 0), 1);
    CHECK_EQ(pthread_join(w1, NULL), 0);
    puts("ok");
    return 0;
}
