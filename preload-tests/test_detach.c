/* Detached threads.
 * 1. 20 threads detached by main with pthread_detach right after creation, 20 created with a
 *    PTHREAD_CREATE_DETACHED attr and 20 that detach themselves: all run to completion (each
 *    sleeps a little, twice, then counts itself); main polls the counter (sleeping) until 60.
 * 2. pthread_detach twice on a still-running thread: 0 then EINVAL; pthread_detach of a thread
 *    created detached (still running) -> EINVAL. Both threads then finish normally.
 * 3. The process keeps working afterwards: a joinable thread is created and joined.
 */
#include "gwtest.h"
#include <pthread.h>

#define EACH 20

static int finished, detach_self_rc_bad, release, done_count;

static void *worker(void *arg) {
    int i = (int)(intptr_t)arg;
    if (i >= 2 * EACH && pthread_detach(pthread_self()) != 0)
        __atomic_add_fetch(&detach_self_rc_bad, 1, __ATOMIC_SEQ_CST);
    gw_sleep_ms(1 + i % 5);
    gw_sleep_ms(1 + i % 3);
    __atomic_add_fetch(&finished, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void check_run_to_completion(void) {
    pthread_attr_t a;
    pthread_t t;
    CHECK_EQ(pthread_attr_init(&a), 0);
    CHECK_EQ(pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED), 0);
    int st = -1;
    CHECK_EQ(pthread_attr_getdetachstate(&a, &st), 0);
    CHECK_EQ(st, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < 3 * EACH; i++) {
        if (i < EACH) {
            CHECK_EQ(pthread_create(&t, NULL, worker, (void *)(intptr_t)i), 0);
            CHECK_EQ(pthread_detach(t), 0);
        } else if (i < 2 * EACH) {
            CHECK_EQ(pthread_create(&t, &a, worker, (void *)(intptr_t)i), 0);
        } else {
            CHECK_EQ(pthread_create(&t, NULL, worker, (void *)(intptr_t)i), 0);
        }
    }
    CHECK_EQ(pthread_attr_destroy(&a), 0);
    gw_wait_count(&finished, 3 * EACH, "the detached threads");
    CHECK_EQ(__atomic_load_n(&finished, __ATOMIC_SEQ_CST), 3 * EACH);
    CHECK_EQ(detach_self_rc_bad, 0);
}

static void *held(void *arg) {
    (void)arg;
    long long t0 = gw_now_ns();
    while (!__atomic_load_n(&release, __ATOMIC_SEQ_CST)) {
        CHECK(gw_now_ns() - t0 < 10000000000LL, "never released");
        gw_sleep_ms(1);
    }
    __atomic_add_fetch(&done_count, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void check_twice(void) {
    pthread_t a, b;
    pthread_attr_t at;
    CHECK_EQ(pthread_create(&a, NULL, held, NULL), 0);
    CHECK_EQ(pthread_attr_init(&at), 0);
    CHECK_EQ(pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED), 0);
    CHECK_EQ(pthread_create(&b, &at, held, NULL), 0);
    CHECK_EQ(pthread_attr_destroy(&at), 0);
    gw_sleep_ms(5); /* both are running (waiting for release) */
    CHECK_EQ(pthread_detach(a), 0);
    CHECK_EQ(pthread_detach(a), EINVAL);
    CHECK_EQ(pthread_detach(b), EINVAL);
    CHECK_EQ(pthread_join(a, NULL), EINVAL); /* detached now */
    CHECK_EQ(__atomic_load_n(&done_count, __ATOMIC_SEQ_CST), 0);
    __atomic_store_n(&release, 1, __ATOMIC_SEQ_CST);
    gw_wait_count(&done_count, 2, "the two held threads");
    CHECK_EQ(__atomic_load_n(&done_count, __ATOMIC_SEQ_CST), 2);
}

static void *value(void *arg) {
    gw_sleep_ms(2);
    return arg;
}

int main(void) {
    check_run_to_completion();
    check_twice();
    pthread_t t;
    void *v = NULL;
    CHECK_EQ(pthread_create(&t, NULL, value, (void *)(intptr_t)99), 0);
    CHECK_EQ(pthread_join(t, &v), 0);
    CHECK_EQ((intptr_t)v, 99);
    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1);
    printf("detach: all passed\n");
    return 0;
}
