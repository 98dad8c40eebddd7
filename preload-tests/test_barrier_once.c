/* pthread_barrier_wait across 100 threads for 5 rounds: exactly one
 * PTHREAD_BARRIER_SERIAL_THREAD per round, nobody leaves a round before all 100 arrived.
 * pthread_once and C11 call_once raced from 50 threads whose init routine sleeps 50 ms: it runs
 * exactly once and every caller returns only after it finished. A process-shared barrier used
 * by two threads of this process (a hang is caught by a 3 s alarm).
 */
#include "gwtest.h"
#include <pthread.h>
#include <signal.h>
#include <threads.h>

#define BTHREADS 100
#define ROUNDS 5

static pthread_barrier_t barrier;
static int arrived[ROUNDS], left[ROUNDS], serial[ROUNDS];
static int early[ROUNDS], bad_rc;

static void *barrier_worker(void *arg) {
    int id = (int)(intptr_t)arg;
    for (int r = 0; r < ROUNDS; r++) {
        /* Stagger the arrivals, differently each round. */
        if ((id + r) % 7 == 0) usleep(1000 * (unsigned)((id % 5) + 1));
        __atomic_add_fetch(&arrived[r], 1, __ATOMIC_SEQ_CST);
        int rc = pthread_barrier_wait(&barrier);
        if (rc == PTHREAD_BARRIER_SERIAL_THREAD) __atomic_add_fetch(&serial[r], 1, __ATOMIC_SEQ_CST);
        else if (rc != 0) __atomic_add_fetch(&bad_rc, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&arrived[r], __ATOMIC_SEQ_CST) != BTHREADS)
            __atomic_add_fetch(&early[r], 1, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&left[r], 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

static void check_barrier(void) {
    CHECK_EQ(pthread_barrier_init(&barrier, NULL, BTHREADS), 0);
    pthread_t t[BTHREADS];
    for (int i = 0; i < BTHREADS; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, barrier_worker, (void *)(intptr_t)i), 0);
    for (int i = 0; i < BTHREADS; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK_EQ(bad_rc, 0);
    for (int r = 0; r < ROUNDS; r++) {
        CHECK(serial[r] == 1, "round %d: %d serial threads", r, serial[r]);
        CHECK(early[r] == 0, "round %d: %d threads left before all arrived", r, early[r]);
        CHECK_EQ(arrived[r], BTHREADS);
        CHECK_EQ(left[r], BTHREADS);
    }
    CHECK_EQ(pthread_barrier_destroy(&barrier), 0);

    /* A barrier of 1: everyone is the serial thread. */
    CHECK_EQ(pthread_barrier_init(&barrier, NULL, 1), 0);
    CHECK_EQ(pthread_barrier_wait(&barrier), PTHREAD_BARRIER_SERIAL_THREAD);
    CHECK_EQ(pthread_barrier_wait(&barrier), PTHREAD_BARRIER_SERIAL_THREAD);
    CHECK_EQ(pthread_barrier_destroy(&barrier), 0);
    CHECK_EQ(pthread_barrier_init(&barrier, NULL, 0), EINVAL);
}

/* A barrier with main as one of the parties. */
static pthread_barrier_t small;
static int small_before;

static void *small_worker(void *arg) {
    (void)arg;
    usleep(50000);
    __atomic_store_n(&small_before, 1, __ATOMIC_SEQ_CST);
    int rc = pthread_barrier_wait(&small);
    return (void *)(intptr_t)rc;
}

static void check_barrier_main(void) {
    CHECK_EQ(pthread_barrier_init(&small, NULL, 2), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, small_worker, NULL), 0);
    long long t0 = gw_now_ns();
    int rc = pthread_barrier_wait(&small);
    long long dt = gw_now_ns() - t0;
    CHECK_EQ(small_before, 1);
    CHECK(dt >= 45000000LL, "main left the barrier after %lld ns", dt);
    void *ret;
    CHECK_EQ(pthread_join(t, &ret), 0);
    int rc2 = (int)(intptr_t)ret;
    CHECK((rc == PTHREAD_BARRIER_SERIAL_THREAD) + (rc2 == PTHREAD_BARRIER_SERIAL_THREAD) == 1,
          "rc %d and %d", rc, rc2);
    CHECK(rc == 0 || rc2 == 0, "rc %d and %d", rc, rc2);
    CHECK_EQ(pthread_barrier_destroy(&small), 0);
}

/* ---- pthread_once / call_once ---- */

#define OTHREADS 50

static pthread_once_t once = PTHREAD_ONCE_INIT;
static once_flag c11_once = ONCE_FLAG_INIT;
static int init_runs, init_done, c11_runs, c11_done;
static int saw_unfinished, c11_saw_unfinished;

static void init_routine(void) {
    __atomic_add_fetch(&init_runs, 1, __ATOMIC_SEQ_CST);
    usleep(50000);
    __atomic_store_n(&init_done, 1, __ATOMIC_SEQ_CST);
}

static void c11_routine(void) {
    __atomic_add_fetch(&c11_runs, 1, __ATOMIC_SEQ_CST);
    usleep(50000);
    __atomic_store_n(&c11_done, 1, __ATOMIC_SEQ_CST);
}

static void *once_caller(void *arg) {
    (void)arg;
    if (pthread_once(&once, init_routine) != 0) __atomic_add_fetch(&bad_rc, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&init_done, __ATOMIC_SEQ_CST))
        __atomic_add_fetch(&saw_unfinished, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static int c11_caller(void *arg) {
    (void)arg;
    call_once(&c11_once, c11_routine);
    if (!__atomic_load_n(&c11_done, __ATOMIC_SEQ_CST))
        __atomic_add_fetch(&c11_saw_unfinished, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static void check_once(void) {
    pthread_t t[OTHREADS];
    long long t0 = gw_now_ns();
    for (int i = 0; i < OTHREADS; i++) CHECK_EQ(pthread_create(&t[i], NULL, once_caller, NULL), 0);
    for (int i = 0; i < OTHREADS; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    long long dt = gw_now_ns() - t0;
    CHECK_EQ(bad_rc, 0);
    CHECK_EQ(init_runs, 1);
    CHECK_EQ(init_done, 1);
    CHECK_EQ(saw_unfinished, 0);
    CHECK(dt >= 45000000LL, "all callers done after %lld ns", dt);
    /* Later calls return at once without running it again. */
    CHECK_EQ(pthread_once(&once, init_routine), 0);
    CHECK_EQ(init_runs, 1);

    thrd_t c[OTHREADS];
    for (int i = 0; i < OTHREADS; i++) CHECK_EQ(thrd_create(&c[i], c11_caller, NULL), thrd_success);
    for (int i = 0; i < OTHREADS; i++) {
        int res = -1;
        CHECK_EQ(thrd_join(c[i], &res), thrd_success);
        CHECK_EQ(res, 0);
    }
    CHECK_EQ(c11_runs, 1);
    CHECK_EQ(c11_done, 1);
    CHECK_EQ(c11_saw_unfinished, 0);
    call_once(&c11_once, c11_routine);
    CHECK_EQ(c11_runs, 1);
}

/* pthread_once called first from main while threads race in too. */
static pthread_once_t once2 = PTHREAD_ONCE_INIT;
static int init2_runs, init2_done, saw2_unfinished;

static void init2(void) {
    __atomic_add_fetch(&init2_runs, 1, __ATOMIC_SEQ_CST);
    usleep(50000);
    __atomic_store_n(&init2_done, 1, __ATOMIC_SEQ_CST);
}

static void *once2_caller(void *arg) {
    (void)arg;
    if (pthread_once(&once2, init2) != 0) __atomic_add_fetch(&bad_rc, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&init2_done, __ATOMIC_SEQ_CST))
        __atomic_add_fetch(&saw2_unfinished, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void check_once_from_main(void) {
    pthread_t t[10];
    for (int i = 0; i < 10; i++) CHECK_EQ(pthread_create(&t[i], NULL, once2_caller, NULL), 0);
    CHECK_EQ(pthread_once(&once2, init2), 0);
    CHECK_EQ(init2_done, 1);
    for (int i = 0; i < 10; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK_EQ(bad_rc, 0);
    CHECK_EQ(init2_runs, 1);
    CHECK_EQ(saw2_unfinished, 0);
}

/* A process-shared barrier used by two threads of this process. A hang is reported by a
 * watchdog instead of stalling the test run. */
static pthread_barrier_t psb;

static void *psb_party(void *arg) {
    (void)arg;
    usleep(50000);
    return (void *)(intptr_t)pthread_barrier_wait(&psb);
}

static void check_pshared_barrier(void) {
    pthread_barrierattr_t a;
    CHECK_EQ(pthread_barrierattr_init(&a), 0);
    CHECK_EQ(pthread_barrierattr_setpshared(&a, PTHREAD_PROCESS_SHARED), 0);
    CHECK_EQ(pthread_barrier_init(&psb, &a, 2), 0);
    CHECK_EQ(pthread_barrierattr_destroy(&a), 0);
    gw_phase = "the process-shared barrier wait (the other party is a thread of this process)";
    gw_watchdog("test_barrier_once", 3);
    for (int round = 0; round < 3; round++) {
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, psb_party, NULL), 0);
        int rc = pthread_barrier_wait(&psb);
        void *ret;
        CHECK_EQ(pthread_join(t, &ret), 0);
        int rc2 = (int)(intptr_t)ret;
        CHECK((rc == PTHREAD_BARRIER_SERIAL_THREAD) + (rc2 == PTHREAD_BARRIER_SERIAL_THREAD) == 1,
              "rc %d and %d", rc, rc2);
        CHECK(rc == 0 || rc2 == 0, "rc %d and %d", rc, rc2);
    }
    alarm(0);
    signal(SIGALRM, SIG_DFL);
    CHECK_EQ(pthread_barrier_destroy(&psb), 0);
}

int main(void) {
    check_barrier();
    check_barrier_main();
    check_once();
    check_once_from_main();
    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1);
    /* A process-shared barrier keeps glibc's protocol: under the preload a pool thread (a real
     * OS thread, like eventlet's tpool) waits in glibc for the green caller. */
    check_pshared_barrier();
    printf("barrier/once: all passed\n");
    return 0;
}
