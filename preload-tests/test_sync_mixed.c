/* Synchronisation between green threads and a REAL OS thread. timer_create(SIGEV_THREAD)
 * runs its callback on a thread glibc makes internally (not through the pthread_create the
 * preload hooks), so even under the preload the callback runs on another kernel thread.
 * - cond handshake: the callback locks a mutex, sets a flag, signals a cond; main (and then a
 *   green thread) waits on the cond with a 5 s timeout and must see the flag.
 * - a mutex contended both ways: green holds while the real thread waits in
 *   pthread_mutex_lock, and the real thread holds while a green thread waits (and a ticker
 *   thread keeps running meanwhile); error-checking and recursive ownership across them.
 * - a semaphore posted by the real thread while a green thread waits.
 * - the real thread waits on a cond and a semaphore that the green side signals / posts.
 */
#include "gwtest.h"
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/syscall.h>

static timer_t arm(void (*fn)(union sigval), long delay_ms) {
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD;
    sev.sigev_notify_function = fn;
    timer_t t;
    CHECK(timer_create(CLOCK_MONOTONIC, &sev, &t) == 0, "timer_create: %s", strerror(errno));
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = delay_ms / 1000;
    its.it_value.tv_nsec = (delay_ms % 1000) * 1000000L;
    CHECK(timer_settime(t, 0, &its, NULL) == 0, "timer_settime: %s", strerror(errno));
    return t;
}

/* What the callback observed about its own thread. */
static int cb_tid, cb_os_threads;

static void note_thread(void) {
    cb_tid = (int)syscall(SYS_gettid);
    cb_os_threads = gw_os_threads();
}

static void check_real_thread(void) {
    CHECK(cb_tid != 0 && cb_tid != getpid(), "callback ran on tid %d (pid %d)", cb_tid,
          (int)getpid());
    CHECK(cb_os_threads >= 2, "callback saw %d OS threads", cb_os_threads);
}

/* Polls (sleeping 1 ms) until *flag is set; fails after 5 s. */
/* ---- 1. cond handshake ---- */

static pthread_mutex_t hm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hc = PTHREAD_COND_INITIALIZER;
static int hflag, hcb_rc, hcb_done;

static void handshake_cb(union sigval v) {
    (void)v;
    note_thread();
    int rc = pthread_mutex_lock(&hm);
    hflag = 1;
    rc |= pthread_cond_signal(&hc);
    rc |= pthread_mutex_unlock(&hm);
    hcb_rc = rc;
    __atomic_store_n(&hcb_done, 1, __ATOMIC_SEQ_CST);
}

static int handshake_wait(void) {
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 5000);
    int rc = 0;
    CHECK_EQ(pthread_mutex_lock(&hm), 0);
    while (!hflag && rc == 0) rc = pthread_cond_timedwait(&hc, &hm, &at);
    int seen = hflag;
    CHECK_EQ(pthread_mutex_unlock(&hm), 0);
    CHECK(rc == 0, "cond wait for the real thread's signal = %d", rc);
    return seen;
}

static void *handshake_thread(void *arg) {
    (void)arg;
    return (void *)(intptr_t)handshake_wait();
}

static void check_handshake(void) {
    /* main waits */
    hflag = hcb_done = 0;
    hcb_rc = -1;
    cb_tid = 0;
    timer_t t = arm(handshake_cb, 50);
    long long t0 = gw_now_ns();
    CHECK_EQ(handshake_wait(), 1);
    CHECK(gw_now_ns() - t0 < 4000000000LL, "handshake took %lld ns", gw_now_ns() - t0);
    gw_wait_flag(&hcb_done, "the callback to finish");
    CHECK_EQ(timer_delete(t), 0);
    CHECK_EQ(hcb_rc, 0);
    check_real_thread();

    /* a (green) thread waits, main is in pthread_join */
    hflag = hcb_done = 0;
    hcb_rc = -1;
    cb_tid = 0;
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, handshake_thread, NULL), 0);
    t = arm(handshake_cb, 50);
    void *ret;
    CHECK_EQ(pthread_join(th, &ret), 0);
    CHECK_EQ((int)(intptr_t)ret, 1);
    gw_wait_flag(&hcb_done, "the callback to finish");
    CHECK_EQ(timer_delete(t), 0);
    CHECK_EQ(hcb_rc, 0);
    check_real_thread();
}

/* ---- 2. a contended mutex ---- */

static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;
static int cb_started, cb_got, cb_done, cb_rc;
static long long cb_waited_ns;

static void contend_cb(union sigval v) {
    (void)v;
    note_thread();
    __atomic_store_n(&cb_started, 1, __ATOMIC_SEQ_CST);
    long long t0 = gw_now_ns();
    int rc = pthread_mutex_lock(&cm); /* main holds it */
    cb_waited_ns = gw_now_ns() - t0;
    __atomic_store_n(&cb_got, 1, __ATOMIC_SEQ_CST);
    rc |= pthread_mutex_unlock(&cm);
    cb_rc = rc;
    __atomic_store_n(&cb_done, 1, __ATOMIC_SEQ_CST);
}

static int held, released, hold_rc, hold_done;

static void hold_cb(union sigval v) {
    (void)v;
    note_thread();
    int rc = pthread_mutex_lock(&cm);
    __atomic_store_n(&held, 1, __ATOMIC_SEQ_CST);
    struct timespec d = {0, 100000000L};
    nanosleep(&d, NULL); /* holds it 100 ms */
    __atomic_store_n(&released, 1, __ATOMIC_SEQ_CST);
    rc |= pthread_mutex_unlock(&cm);
    hold_rc = rc;
    __atomic_store_n(&hold_done, 1, __ATOMIC_SEQ_CST);
}

struct locker {
    int rc, saw_released;
    long ticks_during;
};

static void *locker_main(void *arg) {
    struct locker *l = arg;
    long before = gw_ticks;
    l->rc = pthread_mutex_lock(&cm);
    l->saw_released = __atomic_load_n(&released, __ATOMIC_SEQ_CST);
    l->ticks_during = gw_ticks - before;
    if (l->rc == 0) CHECK_EQ(pthread_mutex_unlock(&cm), 0);
    return NULL;
}

static void check_contended(void) {
    /* green (main) holds; the real thread waits in pthread_mutex_lock */
    CHECK_EQ(pthread_mutex_lock(&cm), 0);
    timer_t t = arm(contend_cb, 10);
    gw_wait_flag(&cb_started, "the callback to start");
    usleep(100000);
    CHECK_EQ(__atomic_load_n(&cb_got, __ATOMIC_SEQ_CST), 0);
    CHECK_EQ(pthread_mutex_unlock(&cm), 0);
    gw_wait_flag(&cb_done, "the callback to take the mutex");
    CHECK_EQ(cb_rc, 0);
    CHECK(cb_waited_ns >= 50000000LL, "the real thread waited only %lld ns", cb_waited_ns);
    CHECK_EQ(timer_delete(t), 0);
    check_real_thread();

    /* the real thread holds for 100 ms; main waits */
    t = arm(hold_cb, 10);
    gw_wait_flag(&held, "the callback to hold the mutex");
    CHECK_EQ(pthread_mutex_trylock(&cm), EBUSY);
    CHECK_EQ(pthread_mutex_lock(&cm), 0);
    CHECK_EQ(__atomic_load_n(&released, __ATOMIC_SEQ_CST), 1);
    CHECK_EQ(pthread_mutex_unlock(&cm), 0);
    gw_wait_flag(&hold_done, "the callback to finish");
    CHECK_EQ(hold_rc, 0);
    CHECK_EQ(timer_delete(t), 0);

    /* again, with a green thread waiting and a ticker running meanwhile */
    held = released = hold_done = 0;
    hold_rc = -1;
    t = arm(hold_cb, 10);
    gw_wait_flag(&held, "the callback to hold the mutex");
    struct locker l = {-1, 0, 0};
    pthread_t tk, lk;
    gw_ticker_stop = 0;
    CHECK_EQ(pthread_create(&tk, NULL, gw_ticker, NULL), 0);
    CHECK_EQ(pthread_create(&lk, NULL, locker_main, &l), 0);
    CHECK_EQ(pthread_join(lk, NULL), 0);
    gw_ticker_stop = 1;
    CHECK_EQ(pthread_join(tk, NULL), 0);
    CHECK_EQ(l.rc, 0);
    CHECK_EQ(l.saw_released, 1);
    CHECK(l.ticks_during >= 4, "the ticker ran %ld times while a thread waited", l.ticks_during);
    gw_wait_flag(&hold_done, "the callback to finish");
    CHECK_EQ(hold_rc, 0);
    CHECK_EQ(timer_delete(t), 0);
    check_real_thread();
}

/* ---- 3. ownership across a green thread and the real thread ---- */

static pthread_mutex_t em, rm;
static int own_try_rc, own_unlock_rc, own_rlock_rc, own_done, own_release, own_runlock_rc;

static void ownership_cb(union sigval v) {
    (void)v;
    note_thread();
    own_try_rc = pthread_mutex_trylock(&em);  /* main holds it: EBUSY */
    own_unlock_rc = pthread_mutex_unlock(&em); /* not ours: EPERM */
    own_rlock_rc = pthread_mutex_lock(&rm);    /* recursive, free: ours */
    own_rlock_rc |= pthread_mutex_lock(&rm);
    __atomic_store_n(&own_done, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&own_release, __ATOMIC_SEQ_CST)) {
        struct timespec d = {0, 1000000L};
        nanosleep(&d, NULL);
    }
    own_runlock_rc = pthread_mutex_unlock(&rm);
    own_runlock_rc |= pthread_mutex_unlock(&rm);
    __atomic_store_n(&own_done, 2, __ATOMIC_SEQ_CST);
}

static void check_ownership(void) {
    pthread_mutexattr_t a;
    CHECK_EQ(pthread_mutexattr_init(&a), 0);
    CHECK_EQ(pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK), 0);
    CHECK_EQ(pthread_mutex_init(&em, &a), 0);
    CHECK_EQ(pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE), 0);
    CHECK_EQ(pthread_mutex_init(&rm, &a), 0);
    CHECK_EQ(pthread_mutexattr_destroy(&a), 0);

    CHECK_EQ(pthread_mutex_lock(&em), 0);
    timer_t t = arm(ownership_cb, 10);
    gw_wait_flag(&own_done, "the callback's ownership checks");
    CHECK_EQ(own_try_rc, EBUSY);
    CHECK_EQ(own_unlock_rc, EPERM);
    CHECK_EQ(own_rlock_rc, 0);
    /* still ours; the recursive one is the real thread's */
    CHECK_EQ(pthread_mutex_lock(&em), EDEADLK);
    CHECK_EQ(pthread_mutex_trylock(&rm), EBUSY);
    CHECK_EQ(pthread_mutex_unlock(&rm), EPERM);
    __atomic_store_n(&own_release, 1, __ATOMIC_SEQ_CST);
    long long t0 = gw_now_ns();
    while (__atomic_load_n(&own_done, __ATOMIC_SEQ_CST) != 2) {
        CHECK(gw_now_ns() - t0 < 5000000000LL, "callback never released");
        usleep(1000);
    }
    CHECK_EQ(own_runlock_rc, 0);
    CHECK_EQ(pthread_mutex_trylock(&rm), 0);
    CHECK_EQ(pthread_mutex_unlock(&rm), 0);
    CHECK_EQ(pthread_mutex_unlock(&em), 0);
    CHECK_EQ(timer_delete(t), 0);
    check_real_thread();
    CHECK_EQ(pthread_mutex_destroy(&em), 0);
    CHECK_EQ(pthread_mutex_destroy(&rm), 0);
}

/* ---- 4. a semaphore posted by the real thread ---- */

static sem_t sem;
static int post_rc = -1, post_done;

static void post_cb(union sigval v) {
    (void)v;
    note_thread();
    post_rc = sem_post(&sem);
    __atomic_store_n(&post_done, 1, __ATOMIC_SEQ_CST);
}

static void *sem_waiter(void *arg) {
    (void)arg;
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 5000);
    return (void *)(intptr_t)(sem_timedwait(&sem, &at) == 0 ? 0 : errno);
}

static void check_sem(void) {
    CHECK_EQ(sem_init(&sem, 0, 0), 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, sem_waiter, NULL), 0);
    timer_t t = arm(post_cb, 50);
    void *ret;
    long long t0 = gw_now_ns();
    CHECK_EQ(pthread_join(th, &ret), 0);
    CHECK(gw_now_ns() - t0 < 4000000000LL, "sem wait took %lld ns", gw_now_ns() - t0);
    CHECK_EQ((int)(intptr_t)ret, 0);
    gw_wait_flag(&post_done, "the callback to finish");
    CHECK_EQ(post_rc, 0);
    CHECK_EQ(timer_delete(t), 0);
    check_real_thread();
    CHECK_EQ(sem_destroy(&sem), 0);
}

/* ---- 5. the real thread waits (cond, semaphore), green wakes it ---- */

static pthread_mutex_t wm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wc = PTHREAD_COND_INITIALIZER;
static sem_t wsem;
static int wflag, rw_cond_rc = -1, rw_sem_rc = -1, rw_started, rw_done;
static long long rw_cond_ns, rw_sem_ns;

static void real_waiter_cb(union sigval v) {
    (void)v;
    note_thread();
    __atomic_store_n(&rw_started, 1, __ATOMIC_SEQ_CST);
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 5000);
    long long t0 = gw_now_ns();
    int rc = pthread_mutex_lock(&wm);
    while (!wflag && rc == 0) rc = pthread_cond_timedwait(&wc, &wm, &at);
    if (!wflag && rc == 0) rc = -2;
    rc |= pthread_mutex_unlock(&wm);
    rw_cond_ns = gw_now_ns() - t0;
    rw_cond_rc = rc;
    at = gw_abs_in(CLOCK_REALTIME, 5000);
    t0 = gw_now_ns();
    rw_sem_rc = sem_timedwait(&wsem, &at) == 0 ? 0 : errno;
    rw_sem_ns = gw_now_ns() - t0;
    __atomic_store_n(&rw_done, 1, __ATOMIC_SEQ_CST);
}

static void check_real_waits(void) {
    CHECK_EQ(sem_init(&wsem, 0, 0), 0);
    timer_t t = arm(real_waiter_cb, 10);
    gw_wait_flag(&rw_started, "the callback to start");
    usleep(100000);
    CHECK_EQ(pthread_mutex_lock(&wm), 0);
    wflag = 1;
    CHECK_EQ(pthread_cond_signal(&wc), 0);
    CHECK_EQ(pthread_mutex_unlock(&wm), 0);
    usleep(100000);
    CHECK_EQ(sem_post(&wsem), 0);
    gw_wait_flag(&rw_done, "the callback to finish waiting");
    CHECK(rw_cond_rc == 0, "the real thread's cond wait = %d", rw_cond_rc);
    CHECK(rw_cond_ns >= 50000000LL && rw_cond_ns < 4000000000LL, "cond wait %lld ns", rw_cond_ns);
    CHECK(rw_sem_rc == 0, "the real thread's sem_timedwait: errno %d", rw_sem_rc);
    CHECK(rw_sem_ns >= 50000000LL && rw_sem_ns < 4000000000LL, "sem wait %lld ns", rw_sem_ns);
    CHECK_EQ(timer_delete(t), 0);
    check_real_thread();
    CHECK_EQ(sem_destroy(&wsem), 0);
}

int main(void) {
    check_handshake();
    check_contended();
    check_ownership();
    check_sem();
    check_real_waits();
    printf("sync mixed: all passed\n");
    return 0;
}
