/* A condition variable signalled while its mutex is held, the waiter then waiting for the
 * mutex: with several hubs (make test-hubs) the library moves such a waiter onto the mutex's
 * queue instead of waking it (wait morphing), and the unlock hands it the mutex. What the
 * program sees must stay what glibc gives:
 *  - a timed wait signalled before its deadline returns 0, not ETIMEDOUT, though the signaller
 *    keeps the mutex well past the deadline;
 *  - an error-checking and a recursive mutex are owned by the woken waiter (its unlock is 0, a
 *    second lock of the error-checking one EDEADLK), and nobody else holds them meanwhile;
 *  - a broadcast with the mutex held wakes every waiter, each getting the mutex in turn. */
#include "gwtest.h"
#include <pthread.h>

enum { WAITERS = 6 };

static pthread_mutex_t g_m;
static pthread_cond_t g_c = PTHREAD_COND_INITIALIZER;
static int g_waiting, g_go, g_done, g_inside;

static void *timed_waiter(void *arg) {
    (void)arg;
    CHECK_EQ(pthread_mutex_lock(&g_m), 0);
    g_waiting = 1;
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 100);
    int rc = 0;
    while (!g_go && rc == 0) rc = pthread_cond_timedwait(&g_c, &g_m, &at);
    CHECK(rc == 0, "signalled timed wait: %s", strerror(rc));
    CHECK(g_go, "woken without the signal");
    CHECK_EQ(pthread_mutex_unlock(&g_m), 0);
    return NULL;
}

static void *checked_waiter(void *arg) {
    int kind = (int)(intptr_t)arg;
    CHECK_EQ(pthread_mutex_lock(&g_m), 0);
    g_waiting++;
    while (!g_go) CHECK_EQ(pthread_cond_wait(&g_c, &g_m), 0);
    CHECK_EQ(g_inside, 0);
    g_inside = 1;
    if (kind == PTHREAD_MUTEX_ERRORCHECK) CHECK_EQ(pthread_mutex_lock(&g_m), EDEADLK);
    if (kind == PTHREAD_MUTEX_RECURSIVE) {
        CHECK_EQ(pthread_mutex_lock(&g_m), 0);
        CHECK_EQ(pthread_mutex_unlock(&g_m), 0);
    }
    sched_yield();
    g_inside = 0;
    g_done++;
    CHECK_EQ(pthread_mutex_unlock(&g_m), 0);
    return NULL;
}

static void init_mutex(int kind) {
    pthread_mutexattr_t a;
    CHECK_EQ(pthread_mutexattr_init(&a), 0);
    CHECK_EQ(pthread_mutexattr_settype(&a, kind), 0);
    CHECK_EQ(pthread_mutex_init(&g_m, &a), 0);
    CHECK_EQ(pthread_mutexattr_destroy(&a), 0);
    g_waiting = g_go = g_done = g_inside = 0;
}

static void wait_waiting(int n) {
    for (;;) {
        CHECK_EQ(pthread_mutex_lock(&g_m), 0);
        int now = g_waiting;
        CHECK_EQ(pthread_mutex_unlock(&g_m), 0);
        if (now >= n) return;
        gw_sleep_ms(2);
    }
}

int main(void) {
    gw_watchdog("test_cond_handoff", 30);

    /* The signaller holds the mutex from before the signal to 200 ms after the deadline. */
    init_mutex(PTHREAD_MUTEX_NORMAL);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, timed_waiter, NULL), 0);
    wait_waiting(1);
    gw_sleep_ms(10); /* in its wait (it released the mutex for us) */
    CHECK_EQ(pthread_mutex_lock(&g_m), 0);
    g_go = 1;
    CHECK_EQ(pthread_cond_signal(&g_c), 0);
    gw_sleep_ms(300);
    CHECK_EQ(pthread_mutex_unlock(&g_m), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);

    int kinds[] = {PTHREAD_MUTEX_ERRORCHECK, PTHREAD_MUTEX_RECURSIVE, PTHREAD_MUTEX_NORMAL};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        /* One by one, signal with the mutex held; then a broadcast to the rest. */
        init_mutex(kinds[k]);
        pthread_t w[WAITERS];
        for (int i = 0; i < WAITERS; i++)
            CHECK_EQ(pthread_create(&w[i], NULL, checked_waiter, (void *)(intptr_t)kinds[k]), 0);
        wait_waiting(WAITERS);
        gw_sleep_ms(10);
        CHECK_EQ(pthread_mutex_lock(&g_m), 0);
        g_go = 1;
        CHECK_EQ(pthread_cond_signal(&g_c), 0);
        CHECK_EQ(pthread_cond_signal(&g_c), 0);
        CHECK_EQ(pthread_mutex_unlock(&g_m), 0);
        gw_sleep_ms(20);
        CHECK_EQ(pthread_mutex_lock(&g_m), 0);
        CHECK_EQ(pthread_cond_broadcast(&g_c), 0);
        gw_sleep_ms(20);
        CHECK_EQ(g_inside, 0);
        CHECK_EQ(pthread_mutex_unlock(&g_m), 0);
        for (int i = 0; i < WAITERS; i++) CHECK_EQ(pthread_join(w[i], NULL), 0);
        CHECK_EQ(g_done, WAITERS);
        CHECK_EQ(pthread_mutex_destroy(&g_m), 0);
    }
    printf("ok\n");
    return 0;
}
