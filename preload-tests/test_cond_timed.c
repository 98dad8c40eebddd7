/* Condition variables.
 * - pthread_cond_timedwait times out after ~100 ms with ETIMEDOUT and the mutex held again
 *   (another thread's trylock is EBUSY; an error-checking mutex unlocks with 0); the same with
 *   pthread_condattr_setclock(CLOCK_MONOTONIC) and a monotonic deadline, and with
 *   pthread_cond_clockwait on either clock; EINVAL for malformed deadlines and clocks.
 * - broadcast wakes all 100 waiters; signal wakes at least one (and, here, exactly one).
 * - no lost wake-up across 10000 signal/wait ping-pongs between two threads.
 * - a wait with an error-checking mutex the caller does not hold: EPERM at once.
 * - a process-shared cond + mutex used by two threads of this process: timeout, and a signal
 *   50 ms later ends a 3 s wait early.
 */
#include "gwtest.h"
#include <pthread.h>

static void *trylock_main(void *arg) {
    pthread_mutex_t *m = arg;
    int rc = pthread_mutex_trylock(m);
    if (rc == 0) pthread_mutex_unlock(m);
    return (void *)(intptr_t)rc;
}

static int other_trylock(pthread_mutex_t *m) {
    pthread_t t;
    void *ret;
    CHECK_EQ(pthread_create(&t, NULL, trylock_main, m), 0);
    CHECK_EQ(pthread_join(t, &ret), 0);
    return (int)(intptr_t)ret;
}

enum how { TIMEDWAIT, CLOCKWAIT_RT, CLOCKWAIT_MONO };

/* A 100 ms timed wait nobody signals. */
static void timeout_once(pthread_cond_t *c, pthread_mutex_t *m, enum how how, clockid_t clock) {
    struct timespec at = gw_abs_in(clock, 100);
    CHECK_EQ(pthread_mutex_lock(m), 0);
    long long t0 = gw_now_ns();
    int rc;
    switch (how) {
    case TIMEDWAIT: rc = pthread_cond_timedwait(c, m, &at); break;
    case CLOCKWAIT_RT: rc = pthread_cond_clockwait(c, m, CLOCK_REALTIME, &at); break;
    default: rc = pthread_cond_clockwait(c, m, CLOCK_MONOTONIC, &at); break;
    }
    long long dt = gw_now_ns() - t0;
    CHECK(rc == ETIMEDOUT, "wait (how %d) = %d, want ETIMEDOUT", (int)how, rc);
    CHECK(dt >= 95000000LL && dt < 2000000000LL, "wait (how %d) took %lld ns", (int)how, dt);
    CHECK_EQ(other_trylock(m), EBUSY); /* re-held on return */
    CHECK_EQ(pthread_mutex_trylock(m), EBUSY);
    CHECK_EQ(pthread_mutex_unlock(m), 0); /* error-checking: 0 only for the owner */
    CHECK_EQ(pthread_mutex_unlock(m), EPERM);
}

static void check_timeouts(void) {
    pthread_mutex_t m;
    pthread_mutexattr_t ma;
    CHECK_EQ(pthread_mutexattr_init(&ma), 0);
    CHECK_EQ(pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK), 0);
    CHECK_EQ(pthread_mutex_init(&m, &ma), 0);
    CHECK_EQ(pthread_mutexattr_destroy(&ma), 0);

    pthread_cond_t rt = PTHREAD_COND_INITIALIZER, mono;
    pthread_condattr_t ca;
    CHECK_EQ(pthread_condattr_init(&ca), 0);
    CHECK_EQ(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC), 0);
    clockid_t got;
    CHECK_EQ(pthread_condattr_getclock(&ca, &got), 0);
    CHECK_EQ(got, CLOCK_MONOTONIC);
    CHECK_EQ(pthread_cond_init(&mono, &ca), 0);
    CHECK_EQ(pthread_condattr_destroy(&ca), 0);

    timeout_once(&rt, &m, TIMEDWAIT, CLOCK_REALTIME);
    timeout_once(&mono, &m, TIMEDWAIT, CLOCK_MONOTONIC);
    timeout_once(&rt, &m, CLOCKWAIT_MONO, CLOCK_MONOTONIC);
    timeout_once(&rt, &m, CLOCKWAIT_RT, CLOCK_REALTIME);
    timeout_once(&mono, &m, CLOCKWAIT_RT, CLOCK_REALTIME);

    /* The condition's clock is honoured: a monotonic deadline 1 s ahead, read as REALTIME
     * (decades in the past), would time out at once; read as MONOTONIC it waits ~1 s. Use a
     * short one to keep the test quick: +150 ms monotonic must wait >= 145 ms. */
    CHECK_EQ(pthread_mutex_lock(&m), 0);
    struct timespec at = gw_abs_in(CLOCK_MONOTONIC, 150);
    long long t0 = gw_now_ns();
    CHECK_EQ(pthread_cond_timedwait(&mono, &m, &at), ETIMEDOUT);
    long long dt = gw_now_ns() - t0;
    CHECK(dt >= 145000000LL && dt < 2000000000LL, "monotonic cond waited %lld ns", dt);

    /* A past deadline: ETIMEDOUT at once, mutex still held. */
    at.tv_sec = 0;
    at.tv_nsec = 0;
    t0 = gw_now_ns();
    CHECK_EQ(pthread_cond_timedwait(&rt, &m, &at), ETIMEDOUT);
    CHECK(gw_now_ns() - t0 < 1000000000LL, "a past deadline waited");
    CHECK_EQ(other_trylock(&m), EBUSY);

    /* Malformed: EINVAL, and the mutex stays held. */
    at = gw_abs_in(CLOCK_REALTIME, 100);
    at.tv_nsec = 1000000000L;
    CHECK_EQ(pthread_cond_timedwait(&rt, &m, &at), EINVAL);
    at.tv_nsec = -1;
    CHECK_EQ(pthread_cond_clockwait(&rt, &m, CLOCK_MONOTONIC, &at), EINVAL);
    at = gw_abs_in(CLOCK_MONOTONIC, 100);
    CHECK_EQ(pthread_cond_clockwait(&rt, &m, CLOCK_PROCESS_CPUTIME_ID, &at), EINVAL);
    CHECK_EQ(other_trylock(&m), EBUSY);
    CHECK_EQ(pthread_mutex_unlock(&m), 0);

    CHECK_EQ(pthread_cond_destroy(&rt), 0);
    CHECK_EQ(pthread_cond_destroy(&mono), 0);
    CHECK_EQ(pthread_mutex_destroy(&m), 0);
}

/* Waiting with an error-checking mutex we do not hold: EPERM at once (glibc gives up when
 * its unlock of the mutex fails), nothing waited, nothing locked. */
static void check_wait_unowned(void) {
    pthread_mutex_t m;
    pthread_mutexattr_t ma;
    CHECK_EQ(pthread_mutexattr_init(&ma), 0);
    CHECK_EQ(pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK), 0);
    CHECK_EQ(pthread_mutex_init(&m, &ma), 0);
    CHECK_EQ(pthread_mutexattr_destroy(&ma), 0);
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 1000);
    long long t0 = gw_now_ns();
    CHECK_EQ(pthread_cond_timedwait(&c, &m, &at), EPERM);
    long long dt = gw_now_ns() - t0;
    CHECK(dt < 500000000LL, "an EPERM timedwait waited %lld ns first", dt);
    CHECK_EQ(pthread_mutex_unlock(&m), EPERM);
    CHECK_EQ(pthread_cond_destroy(&c), 0);
    CHECK_EQ(pthread_mutex_destroy(&m), 0);
}

/* ---- a signal before the deadline ends a timed wait early ---- */

static pthread_mutex_t sm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sc = PTHREAD_COND_INITIALIZER;
static int flag;

static void *late_signaller(void *arg) {
    (void)arg;
    usleep(50000);
    pthread_mutex_lock(&sm);
    flag = 1;
    pthread_cond_signal(&sc);
    pthread_mutex_unlock(&sm);
    return NULL;
}

static void check_signalled_early(void) {
    pthread_t t;
    CHECK_EQ(pthread_mutex_lock(&sm), 0);
    CHECK_EQ(pthread_create(&t, NULL, late_signaller, NULL), 0);
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 5000);
    long long t0 = gw_now_ns();
    int rc = 0;
    while (!flag && rc == 0) rc = pthread_cond_timedwait(&sc, &sm, &at);
    long long dt = gw_now_ns() - t0;
    CHECK_EQ(rc, 0);
    CHECK_EQ(flag, 1);
    CHECK(dt < 4000000000LL, "woken after %lld ns", dt);
    CHECK_EQ(pthread_mutex_unlock(&sm), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
}

/* ---- broadcast and signal ---- */

#define WAITERS 100

static pthread_mutex_t bm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bc = PTHREAD_COND_INITIALIZER;
static int waiting, go, woken, timed_out, tokens, consumed, bad_rc;

/* Waits (3 s at most) until `go`; counts how it ended. */
static void *bwaiter(void *arg) {
    (void)arg;
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 3000);
    if (pthread_mutex_lock(&bm) != 0) bad_rc++;
    waiting++;
    while (!go) {
        int rc = pthread_cond_timedwait(&bc, &bm, &at);
        if (rc == ETIMEDOUT) {
            timed_out++;
            break;
        }
        if (rc != 0) bad_rc++;
    }
    if (go) woken++;
    waiting--;
    if (pthread_mutex_unlock(&bm) != 0) bad_rc++;
    return NULL;
}

/* Waits (3 s at most) for a token and takes one. */
static void *twaiter(void *arg) {
    (void)arg;
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 3000);
    if (pthread_mutex_lock(&bm) != 0) bad_rc++;
    waiting++;
    while (tokens == 0) {
        int rc = pthread_cond_timedwait(&bc, &bm, &at);
        if (rc == ETIMEDOUT) {
            timed_out++;
            break;
        }
        if (rc != 0) bad_rc++;
    }
    if (tokens > 0) {
        tokens--;
        consumed++;
    }
    waiting--;
    if (pthread_mutex_unlock(&bm) != 0) bad_rc++;
    return NULL;
}

static void wait_for_waiting(int n) {
    long long t0 = gw_now_ns();
    for (;;) {
        CHECK_EQ(pthread_mutex_lock(&bm), 0);
        int w = waiting;
        if (w == n) return; /* locked: every counted waiter is inside pthread_cond_*wait */
        CHECK_EQ(pthread_mutex_unlock(&bm), 0);
        CHECK(gw_now_ns() - t0 < 2000000000LL, "only %d of %d waiters arrived", w, n);
        usleep(1000);
    }
}

static void check_broadcast(void) {
    pthread_t t[WAITERS];
    for (int i = 0; i < WAITERS; i++) CHECK_EQ(pthread_create(&t[i], NULL, bwaiter, NULL), 0);
    wait_for_waiting(WAITERS); /* returns with bm held */
    go = 1;
    CHECK_EQ(pthread_cond_broadcast(&bc), 0);
    CHECK_EQ(pthread_mutex_unlock(&bm), 0);
    for (int i = 0; i < WAITERS; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK_EQ(bad_rc, 0);
    CHECK_EQ(timed_out, 0);
    CHECK_EQ(woken, WAITERS);
    CHECK_EQ(waiting, 0);
}

static void check_signal(void) {
    enum { N = 10 };
    pthread_t t[N];
    tokens = consumed = timed_out = 0;
    for (int i = 0; i < N; i++) CHECK_EQ(pthread_create(&t[i], NULL, twaiter, NULL), 0);
    wait_for_waiting(N);
    tokens = 1;
    CHECK_EQ(pthread_cond_signal(&bc), 0);
    CHECK_EQ(pthread_mutex_unlock(&bm), 0);
    /* One waiter wakes and takes the token; the others stay put. */
    long long t0 = gw_now_ns();
    for (;;) {
        CHECK_EQ(pthread_mutex_lock(&bm), 0);
        int c = consumed;
        CHECK_EQ(pthread_mutex_unlock(&bm), 0);
        if (c == 1) break;
        CHECK(gw_now_ns() - t0 < 2000000000LL, "a signal woke nobody");
        usleep(1000);
    }
    usleep(20000);
    CHECK_EQ(pthread_mutex_lock(&bm), 0);
    CHECK_EQ(consumed, 1);
    CHECK_EQ(waiting, N - 1);
    /* Signal with no token: waiters may wake but must go back to waiting. */
    CHECK_EQ(pthread_cond_signal(&bc), 0);
    CHECK_EQ(pthread_mutex_unlock(&bm), 0);
    usleep(20000);
    CHECK_EQ(pthread_mutex_lock(&bm), 0);
    CHECK_EQ(waiting, N - 1);
    tokens = N - 1;
    CHECK_EQ(pthread_cond_broadcast(&bc), 0);
    CHECK_EQ(pthread_mutex_unlock(&bm), 0);
    for (int i = 0; i < N; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK_EQ(bad_rc, 0);
    CHECK_EQ(timed_out, 0);
    CHECK_EQ(consumed, N);
    CHECK_EQ(tokens, 0);
    /* Signal and broadcast with nobody waiting are no-ops. */
    CHECK_EQ(pthread_cond_signal(&bc), 0);
    CHECK_EQ(pthread_cond_broadcast(&bc), 0);
}

/* ---- ping-pong: a lost wake-up shows as a wait that times out with its predicate true ---- */

#define ROUNDS 10000

static pthread_mutex_t pm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pc = PTHREAD_COND_INITIALIZER;
static int turn, lost, pp_bad;

static void *pinger(void *arg) {
    int me = (int)(intptr_t)arg;
    for (int i = 0; i < ROUNDS; i++) {
        if (pthread_mutex_lock(&pm) != 0) pp_bad++;
        while (turn != me) {
            struct timespec at = gw_abs_in(CLOCK_MONOTONIC, 2000);
            int rc = pthread_cond_clockwait(&pc, &pm, CLOCK_MONOTONIC, &at);
            if (rc == ETIMEDOUT) {
                if (turn == me) lost++; /* our turn came but the signal never reached us */
                else pp_bad++;          /* nobody moved for 2 s */
            } else if (rc != 0)
                pp_bad++;
            if (lost || pp_bad) break;
        }
        turn = 1 - me;
        if (pthread_cond_signal(&pc) != 0) pp_bad++;
        if (pthread_mutex_unlock(&pm) != 0) pp_bad++;
        if (lost || pp_bad) break;
    }
    return NULL;
}

static void check_ping_pong(void) {
    pthread_t a, b;
    long long t0 = gw_now_ns();
    CHECK_EQ(pthread_create(&a, NULL, pinger, (void *)(intptr_t)0), 0);
    CHECK_EQ(pthread_create(&b, NULL, pinger, (void *)(intptr_t)1), 0);
    CHECK_EQ(pthread_join(a, NULL), 0);
    CHECK_EQ(pthread_join(b, NULL), 0);
    CHECK_EQ(lost, 0);
    CHECK_EQ(pp_bad, 0);
    CHECK_EQ(turn, 0);
    printf("cond: %d ping-pongs in %lld ms\n", ROUNDS, gw_ms_since(t0));
}

/* A process-shared condition variable (and mutex) used between two threads of this process:
 * the signal 50 ms later ends the 3 s wait early. (Under the preload the signaller is a green
 * thread of the same OS thread, so the waiter must not block the OS thread.) */
static pthread_mutex_t psm;
static pthread_cond_t psc;
static int psflag;

static void *ps_signaller(void *arg) {
    (void)arg;
    usleep(50000);
    pthread_mutex_lock(&psm);
    psflag = 1;
    pthread_cond_signal(&psc);
    pthread_mutex_unlock(&psm);
    return NULL;
}

static void check_pshared(void) {
    pthread_mutexattr_t ma;
    CHECK_EQ(pthread_mutexattr_init(&ma), 0);
    CHECK_EQ(pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED), 0);
    CHECK_EQ(pthread_mutex_init(&psm, &ma), 0);
    CHECK_EQ(pthread_mutexattr_destroy(&ma), 0);
    pthread_condattr_t ca;
    CHECK_EQ(pthread_condattr_init(&ca), 0);
    CHECK_EQ(pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED), 0);
    CHECK_EQ(pthread_cond_init(&psc, &ca), 0);
    CHECK_EQ(pthread_condattr_destroy(&ca), 0);

    /* A timeout first: ~100 ms, mutex re-held. */
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 100);
    CHECK_EQ(pthread_mutex_lock(&psm), 0);
    long long t0 = gw_now_ns();
    CHECK_EQ(pthread_cond_timedwait(&psc, &psm, &at), ETIMEDOUT);
    long long dt = gw_now_ns() - t0;
    CHECK(dt >= 95000000LL && dt < 2000000000LL, "pshared timedwait took %lld ns", dt);
    CHECK_EQ(other_trylock(&psm), EBUSY);

    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, ps_signaller, NULL), 0);
    at = gw_abs_in(CLOCK_REALTIME, 3000);
    t0 = gw_now_ns();
    int rc = 0;
    while (!psflag && rc == 0) rc = pthread_cond_timedwait(&psc, &psm, &at);
    dt = gw_now_ns() - t0;
    int seen = psflag;
    CHECK_EQ(pthread_mutex_unlock(&psm), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(rc == 0, "pshared cond: wait = %d after %lld ns, want 0 (signalled at 50 ms)", rc, dt);
    CHECK_EQ(seen, 1);
    CHECK(dt < 2000000000LL, "pshared cond: woken after %lld ns", dt);
    CHECK_EQ(pthread_cond_destroy(&psc), 0);
    CHECK_EQ(pthread_mutex_destroy(&psm), 0);
}

int main(void) {
    check_timeouts();
    check_signalled_early();
    check_broadcast();
    check_signal();
    check_ping_pong();
    check_wait_unowned();
    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1);
    /* A process-shared cond with a process-shared mutex keeps glibc's protocol: under the
     * preload a pool thread (a real OS thread, like eventlet's tpool) waits in glibc. */
    check_pshared();
    printf("cond: all passed\n");
    return 0;
}
