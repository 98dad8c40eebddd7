/* POSIX semaphores.
 * - A pool of 5 shared by 100 threads: never more than 5 holders (exactly 5 at the peak under
 *   the preload, where every thread queues before any holder finishes).
 * - sem_trywait EAGAIN at 0; sem_timedwait / sem_clockwait ETIMEDOUT after ~100 ms; EINVAL for
 *   a malformed deadline (checked up front, as glibc) or clock; sem_getvalue; EOVERFLOW at
 *   SEM_VALUE_MAX; a post wakes a timed waiter before its deadline.
 * - A named semaphore and a process-shared one in a MAP_SHARED mapping, posted by a forked
 *   child after 100 ms while the parent waits (and other threads keep running).
 */
#include "gwtest.h"
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/mman.h>

#define POOL 5
#define USERS 100

static sem_t pool;
static int holders, max_holders, bad_rc, served;

static void *user(void *arg) {
    (void)arg;
    if (sem_wait(&pool) != 0) __atomic_add_fetch(&bad_rc, 1, __ATOMIC_SEQ_CST);
    int h = __atomic_add_fetch(&holders, 1, __ATOMIC_SEQ_CST);
    int m = __atomic_load_n(&max_holders, __ATOMIC_SEQ_CST);
    while (h > m && !__atomic_compare_exchange_n(&max_holders, &m, h, 0, __ATOMIC_SEQ_CST,
                                                 __ATOMIC_SEQ_CST)) {}
    usleep(2000);
    __atomic_sub_fetch(&holders, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&served, 1, __ATOMIC_SEQ_CST);
    if (sem_post(&pool) != 0) __atomic_add_fetch(&bad_rc, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void check_pool(void) {
    CHECK_EQ(sem_init(&pool, 0, POOL), 0);
    pthread_t t[USERS];
    for (int i = 0; i < USERS; i++) CHECK_EQ(pthread_create(&t[i], NULL, user, NULL), 0);
    for (int i = 0; i < USERS; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK_EQ(bad_rc, 0);
    CHECK_EQ(served, USERS);
    CHECK(max_holders >= 1 && max_holders <= POOL, "max holders %d", max_holders);
    if (gw_preloaded()) CHECK_EQ(max_holders, POOL);
    int v = -1;
    CHECK_EQ(sem_getvalue(&pool, &v), 0);
    CHECK_EQ(v, POOL);
    CHECK_EQ(sem_destroy(&pool), 0);
    printf("sem: pool of %d, max %d holders\n", POOL, max_holders);
}

#define CHECK_FAILS(call, err)                                                                \
    do {                                                                                      \
        errno = 0;                                                                            \
        int rc_ = (call);                                                                     \
        int e_ = errno;                                                                       \
        CHECK(rc_ == -1 && e_ == (err), "%s = %d, errno %d (%s), want -1 and %s", #call, rc_, \
              e_, strerror(e_), #err);                                                        \
    } while (0)

struct poster {
    sem_t *s;
    long delay_ms;
    int rc;
};

static void *poster_main(void *arg) {
    struct poster *p = arg;
    usleep(p->delay_ms * 1000);
    p->rc = sem_post(p->s);
    return NULL;
}

struct timed_waiter {
    sem_t *s;
    int rc, err;
    long long took_ns;
};

static void *timed_waiter_main(void *arg) {
    struct timed_waiter *w = arg;
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 100);
    long long t0 = gw_now_ns();
    errno = 0;
    w->rc = sem_timedwait(w->s, &at);
    w->err = errno;
    w->took_ns = gw_now_ns() - t0;
    return NULL;
}

static void check_calls(void) {
    sem_t s;
    int v;
    CHECK_EQ(sem_init(&s, 0, 0), 0);
    CHECK_FAILS(sem_trywait(&s), EAGAIN);

    /* Timeouts, in main and in a thread. */
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 100);
    long long t0 = gw_now_ns();
    CHECK_FAILS(sem_timedwait(&s, &at), ETIMEDOUT);
    long long dt = gw_now_ns() - t0;
    CHECK(dt >= 95000000LL && dt < 2000000000LL, "sem_timedwait took %lld ns", dt);

    at = gw_abs_in(CLOCK_MONOTONIC, 100);
    t0 = gw_now_ns();
    CHECK_FAILS(sem_clockwait(&s, CLOCK_MONOTONIC, &at), ETIMEDOUT);
    dt = gw_now_ns() - t0;
    CHECK(dt >= 95000000LL && dt < 2000000000LL, "sem_clockwait took %lld ns", dt);

    struct timed_waiter w = {.s = &s};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, timed_waiter_main, &w), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(w.rc == -1 && w.err == ETIMEDOUT, "thread sem_timedwait = %d errno %d", w.rc, w.err);
    CHECK(w.took_ns >= 95000000LL && w.took_ns < 2000000000LL, "took %lld ns", w.took_ns);

    at.tv_sec = 0;
    at.tv_nsec = 0;
    CHECK_FAILS(sem_timedwait(&s, &at), ETIMEDOUT); /* already past */

    /* Malformed deadline or clock: EINVAL, whatever the value. */
    at = gw_abs_in(CLOCK_REALTIME, 100);
    at.tv_nsec = -1;
    CHECK_FAILS(sem_timedwait(&s, &at), EINVAL);
    at.tv_nsec = 1000000000L;
    CHECK_FAILS(sem_timedwait(&s, &at), EINVAL);
    at = gw_abs_in(CLOCK_MONOTONIC, 100);
    at.tv_nsec = -1;
    CHECK_FAILS(sem_clockwait(&s, CLOCK_MONOTONIC, &at), EINVAL);
    at = gw_abs_in(CLOCK_MONOTONIC, 100);
    CHECK_FAILS(sem_clockwait(&s, CLOCK_PROCESS_CPUTIME_ID, &at), EINVAL);
    CHECK_EQ(sem_post(&s), 0);
    at = gw_abs_in(CLOCK_REALTIME, 100);
    at.tv_nsec = -1;
    CHECK_FAILS(sem_timedwait(&s, &at), EINVAL);
    CHECK_EQ(sem_getvalue(&s, &v), 0);
    CHECK_EQ(v, 1); /* the EINVAL took nothing */
    CHECK_EQ(sem_trywait(&s), 0);

    /* sem_getvalue after posts and waits. */
    for (int i = 0; i < 3; i++) CHECK_EQ(sem_post(&s), 0);
    CHECK_EQ(sem_getvalue(&s, &v), 0);
    CHECK_EQ(v, 3);
    CHECK_EQ(sem_wait(&s), 0);
    at = gw_abs_in(CLOCK_REALTIME, 100);
    CHECK_EQ(sem_timedwait(&s, &at), 0);
    at = gw_abs_in(CLOCK_MONOTONIC, 100);
    CHECK_EQ(sem_clockwait(&s, CLOCK_MONOTONIC, &at), 0);
    CHECK_EQ(sem_getvalue(&s, &v), 0);
    CHECK_EQ(v, 0);

    /* A post from another thread after 50 ms ends a 5 s wait early. */
    struct poster p = {.s = &s, .delay_ms = 50};
    CHECK_EQ(pthread_create(&t, NULL, poster_main, &p), 0);
    at = gw_abs_in(CLOCK_REALTIME, 5000);
    t0 = gw_now_ns();
    CHECK_EQ(sem_timedwait(&s, &at), 0);
    dt = gw_now_ns() - t0;
    CHECK(dt < 4000000000LL, "woken after %lld ns", dt);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(p.rc, 0);
    p.rc = -1;
    CHECK_EQ(pthread_create(&t, NULL, poster_main, &p), 0);
    CHECK_EQ(sem_wait(&s), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(p.rc, 0);
    CHECK_EQ(sem_getvalue(&s, &v), 0);
    CHECK_EQ(v, 0);
    CHECK_EQ(sem_destroy(&s), 0);

    /* EOVERFLOW at SEM_VALUE_MAX. */
    CHECK_EQ(sem_init(&s, 0, SEM_VALUE_MAX - 1), 0);
    CHECK_EQ(sem_post(&s), 0);
    CHECK_EQ(sem_getvalue(&s, &v), 0);
    CHECK_EQ(v, SEM_VALUE_MAX);
    CHECK_FAILS(sem_post(&s), EOVERFLOW);
    CHECK_EQ(sem_getvalue(&s, &v), 0);
    CHECK_EQ(v, SEM_VALUE_MAX);
    CHECK_EQ(sem_trywait(&s), 0);
    CHECK_EQ(sem_post(&s), 0);
    CHECK_EQ(sem_destroy(&s), 0);
    /* Beyond SEM_VALUE_MAX, sem_init refuses. */
    CHECK_FAILS(sem_init(&s, 0, (unsigned)SEM_VALUE_MAX + 1), EINVAL);
}

/* ---- named and process-shared semaphores with a forked poster ---- */

struct waiter {
    sem_t *s;
    int timed, rc, err;
    long ticks_during;
    long long took_ns;
};

static void *waiter_main(void *arg) {
    struct waiter *w = arg;
    long before = gw_ticks;
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 5000);
    long long t0 = gw_now_ns();
    errno = 0;
    w->rc = w->timed ? sem_timedwait(w->s, &at) : sem_wait(w->s);
    w->err = errno;
    w->took_ns = gw_now_ns() - t0;
    w->ticks_during = gw_ticks - before;
    return NULL;
}

static pid_t fork_poster(sem_t *s, long delay_ms) {
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        usleep(delay_ms * 1000);
        _exit(sem_post(s) == 0 ? 0 : 3);
    }
    return pid;
}

static void reap(pid_t pid) {
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
}

/* A thread waits on `s` (posted by a child 100 ms later) while a ticker keeps running. */
static void wait_for_child_post(sem_t *s, int timed) {
    pid_t pid = fork_poster(s, 100);
    struct waiter w = {.s = s, .timed = timed};
    pthread_t tk, wt;
    gw_ticker_stop = 0;
    CHECK_EQ(pthread_create(&tk, NULL, gw_ticker, NULL), 0);
    CHECK_EQ(pthread_create(&wt, NULL, waiter_main, &w), 0);
    CHECK_EQ(pthread_join(wt, NULL), 0);
    gw_ticker_stop = 1;
    CHECK_EQ(pthread_join(tk, NULL), 0);
    CHECK(w.rc == 0, "wait = %d errno %d (%s)", w.rc, w.err, strerror(w.err));
    CHECK(w.took_ns >= 50000000LL && w.took_ns < 4000000000LL, "waited %lld ns", w.took_ns);
    CHECK(w.ticks_during >= 4, "the ticker ran %ld times during the wait", w.ticks_during);
    reap(pid);
}

static void check_named(void) {
    char name[64];
    snprintf(name, sizeof name, "/gwtest_%d", (int)getpid());
    sem_t *s = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
    CHECK(s != SEM_FAILED, "sem_open(%s): %s", name, strerror(errno));
    CHECK_FAILS(sem_trywait(s), EAGAIN);

    /* main waits itself */
    pid_t pid = fork_poster(s, 100);
    long long t0 = gw_now_ns();
    CHECK_EQ(sem_wait(s), 0);
    long long dt = gw_now_ns() - t0;
    CHECK(dt >= 50000000LL && dt < 4000000000LL, "waited %lld ns", dt);
    reap(pid);

    /* a thread waits, others run */
    wait_for_child_post(s, 0);
    wait_for_child_post(s, 1);

    /* a child opening the name itself */
    pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        sem_t *c = sem_open(name, 0);
        if (c == SEM_FAILED) _exit(4);
        usleep(100000);
        _exit(sem_post(c) == 0 ? 0 : 3);
    }
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 5000);
    CHECK_EQ(sem_timedwait(s, &at), 0);
    reap(pid);

    /* a timed wait with nobody posting */
    at = gw_abs_in(CLOCK_REALTIME, 100);
    t0 = gw_now_ns();
    CHECK_FAILS(sem_timedwait(s, &at), ETIMEDOUT);
    dt = gw_now_ns() - t0;
    CHECK(dt >= 95000000LL && dt < 2000000000LL, "took %lld ns", dt);

    int v = -1;
    CHECK_EQ(sem_getvalue(s, &v), 0);
    CHECK_EQ(v, 0);
    CHECK_EQ(sem_post(s), 0);
    CHECK_EQ(sem_getvalue(s, &v), 0);
    CHECK_EQ(v, 1);
    CHECK_EQ(sem_close(s), 0);
    CHECK_EQ(sem_unlink(name), 0);
    CHECK(sem_open(name, 0) == SEM_FAILED && errno == ENOENT, "still there after sem_unlink");
}

static void check_pshared(void) {
    sem_t *s = mmap(NULL, sizeof(sem_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(s != MAP_FAILED, "mmap: %s", strerror(errno));
    CHECK_EQ(sem_init(s, 1, 0), 0);
    pid_t pid = fork_poster(s, 100);
    CHECK_EQ(sem_wait(s), 0);
    reap(pid);
    wait_for_child_post(s, 1);
    CHECK_FAILS(sem_trywait(s), EAGAIN);
    CHECK_EQ(sem_destroy(s), 0);
    munmap(s, sizeof(sem_t));
}

int main(void) {
    check_pool();
    check_calls();
    check_named();
    check_pshared();
    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1);
    printf("sem: all passed\n");
    return 0;
}
