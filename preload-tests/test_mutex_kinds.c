/* pthread mutex kinds and their glibc error codes: normal/default, error-checking, recursive
 * (by attribute and by the _NP static initialisers), timedlock/clocklock (ETIMEDOUT, EINVAL
 * only when it would wait), destroy of a held mutex, a process-shared mutex held by a forked
 * child, robust mutexes (basic use, and EOWNERDEAD after a forked owner dies). Then the
 * owner-tracking kinds that follow glibc's protocol (process-shared or robust recursive /
 * error-checking): another thread gets EBUSY and EPERM; and a robust mutex whose owner thread
 * ended gives EOWNERDEAD.
 *
 * The single-process checks run twice: from main, and again from inside a thread (under the
 * preload: owner = the root, then owner = a green thread, "another thread" always green).
 */
#include "gwtest.h"
#include <pthread.h>
#include <sys/mman.h>

/* ---- running one operation in another thread ---- */

enum op { OP_TRYLOCK, OP_UNLOCK, OP_TRYLOCK_UNLOCK, OP_TIMEDLOCK };

struct other {
    enum op op;
    pthread_mutex_t *m;
    struct timespec at;
    int rc, rc2;
};

static void *other_main(void *arg) {
    struct other *o = arg;
    switch (o->op) {
    case OP_TRYLOCK: o->rc = pthread_mutex_trylock(o->m); break;
    case OP_UNLOCK: o->rc = pthread_mutex_unlock(o->m); break;
    case OP_TRYLOCK_UNLOCK:
        o->rc = pthread_mutex_trylock(o->m);
        o->rc2 = o->rc == 0 ? pthread_mutex_unlock(o->m) : 0;
        break;
    case OP_TIMEDLOCK:
        o->rc = pthread_mutex_timedlock(o->m, &o->at);
        o->rc2 = o->rc == 0 ? pthread_mutex_unlock(o->m) : 0;
        break;
    }
    return NULL;
}

static int other(enum op op, pthread_mutex_t *m) {
    struct other o = {.op = op, .m = m};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, other_main, &o), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(o.rc2, 0); /* the unlock after a successful trylock */
    return o.rc;
}

/* ---- a thread that holds a mutex until told (or for a fixed time) ---- */

struct holder {
    pthread_mutex_t *m;
    long hold_ms; /* 0: until release is set */
    pthread_t t;
    int held, release;
    int lock_rc, unlock_rc;
};

static void *holder_main(void *arg) {
    struct holder *h = arg;
    h->lock_rc = pthread_mutex_lock(h->m);
    __atomic_store_n(&h->held, 1, __ATOMIC_SEQ_CST);
    if (h->hold_ms) usleep(h->hold_ms * 1000);
    else
        while (!__atomic_load_n(&h->release, __ATOMIC_SEQ_CST)) usleep(1000);
    h->unlock_rc = h->lock_rc == 0 ? pthread_mutex_unlock(h->m) : -1;
    return NULL;
}

static void holder_start(struct holder *h, pthread_mutex_t *m, long hold_ms) {
    memset(h, 0, sizeof *h);
    h->m = m;
    h->hold_ms = hold_ms;
    CHECK_EQ(pthread_create(&h->t, NULL, holder_main, h), 0);
    long long t0 = gw_now_ns();
    while (!__atomic_load_n(&h->held, __ATOMIC_SEQ_CST)) {
        CHECK(gw_now_ns() - t0 < 3000000000LL, "holder never took the mutex");
        usleep(1000);
    }
}

static void holder_stop(struct holder *h) {
    __atomic_store_n(&h->release, 1, __ATOMIC_SEQ_CST);
    CHECK_EQ(pthread_join(h->t, NULL), 0);
    CHECK_EQ(h->lock_rc, 0);
    CHECK_EQ(h->unlock_rc, 0);
}

static void init_kind(pthread_mutex_t *m, int kind) {
    pthread_mutexattr_t a;
    CHECK_EQ(pthread_mutexattr_init(&a), 0);
    CHECK_EQ(pthread_mutexattr_settype(&a, kind), 0);
    CHECK_EQ(pthread_mutex_init(m, &a), 0);
    CHECK_EQ(pthread_mutexattr_destroy(&a), 0);
}

/* ---- per kind ---- */

static void check_normal(pthread_mutex_t *m) {
    CHECK_EQ(pthread_mutex_lock(m), 0);
    CHECK_EQ(other(OP_TRYLOCK, m), EBUSY);
    CHECK_EQ(pthread_mutex_trylock(m), EBUSY);
    CHECK_EQ(pthread_mutex_unlock(m), 0);
    CHECK_EQ(other(OP_TRYLOCK_UNLOCK, m), 0);
    CHECK_EQ(pthread_mutex_trylock(m), 0);
    CHECK_EQ(other(OP_TRYLOCK, m), EBUSY);
    CHECK_EQ(pthread_mutex_unlock(m), 0);
    /* Held by another thread: our trylock is refused. */
    struct holder h;
    holder_start(&h, m, 0);
    CHECK_EQ(pthread_mutex_trylock(m), EBUSY);
    holder_stop(&h);
    CHECK_EQ(pthread_mutex_trylock(m), 0);
    CHECK_EQ(pthread_mutex_unlock(m), 0);
}

static void check_errorcheck(pthread_mutex_t *m) {
    CHECK_EQ(pthread_mutex_unlock(m), EPERM); /* not locked */
    CHECK_EQ(pthread_mutex_lock(m), 0);
    CHECK_EQ(pthread_mutex_lock(m), EDEADLK);
    CHECK_EQ(pthread_mutex_trylock(m), EBUSY);
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 5000);
    CHECK_EQ(pthread_mutex_timedlock(m, &at), EDEADLK);
    CHECK_EQ(other(OP_TRYLOCK, m), EBUSY);
    CHECK_EQ(other(OP_UNLOCK, m), EPERM);
    CHECK_EQ(other(OP_TRYLOCK, m), EBUSY); /* the foreign unlock changed nothing */
    CHECK_EQ(pthread_mutex_unlock(m), 0);
    CHECK_EQ(pthread_mutex_unlock(m), EPERM);
    CHECK_EQ(other(OP_TRYLOCK_UNLOCK, m), 0);
    /* Held by another thread: our unlock is EPERM, trylock EBUSY (not EDEADLK). */
    struct holder h;
    holder_start(&h, m, 0);
    CHECK_EQ(pthread_mutex_unlock(m), EPERM);
    CHECK_EQ(pthread_mutex_trylock(m), EBUSY);
    holder_stop(&h);
    CHECK_EQ(pthread_mutex_trylock(m), 0);
    CHECK_EQ(pthread_mutex_unlock(m), 0);
}

static void check_recursive(pthread_mutex_t *m) {
    CHECK_EQ(pthread_mutex_unlock(m), EPERM); /* not locked */
    CHECK_EQ(pthread_mutex_lock(m), 0);
    CHECK_EQ(pthread_mutex_lock(m), 0);
    CHECK_EQ(pthread_mutex_lock(m), 0);
    CHECK_EQ(pthread_mutex_trylock(m), 0); /* a 4th level */
    CHECK_EQ(pthread_mutex_unlock(m), 0);
    CHECK_EQ(other(OP_TRYLOCK, m), EBUSY);
    CHECK_EQ(other(OP_UNLOCK, m), EPERM);
    CHECK_EQ(pthread_mutex_unlock(m), 0); /* 3 -> 2 */
    CHECK_EQ(other(OP_TRYLOCK, m), EBUSY);
    CHECK_EQ(other(OP_UNLOCK, m), EPERM);
    CHECK_EQ(pthread_mutex_unlock(m), 0); /* 2 -> 1 */
    CHECK_EQ(other(OP_TRYLOCK, m), EBUSY);
    CHECK_EQ(pthread_mutex_unlock(m), 0); /* 1 -> 0 */
    CHECK_EQ(other(OP_TRYLOCK_UNLOCK, m), 0);
    CHECK_EQ(pthread_mutex_unlock(m), EPERM);
    /* Held by another thread: no recursion for us. */
    struct holder h;
    holder_start(&h, m, 0);
    CHECK_EQ(pthread_mutex_trylock(m), EBUSY);
    CHECK_EQ(pthread_mutex_unlock(m), EPERM);
    holder_stop(&h);
    CHECK_EQ(pthread_mutex_trylock(m), 0);
    CHECK_EQ(pthread_mutex_unlock(m), 0);
}

static void check_destroy(int kind) {
    pthread_mutex_t m;
    init_kind(&m, kind);
    CHECK_EQ(pthread_mutex_lock(&m), 0);
    CHECK_EQ(pthread_mutex_destroy(&m), EBUSY);
    CHECK_EQ(pthread_mutex_unlock(&m), 0);
    CHECK_EQ(pthread_mutex_destroy(&m), 0);
}

static void check_timed(int kind) {
    pthread_mutex_t m;
    init_kind(&m, kind);
    struct holder h;
    holder_start(&h, &m, 0);

    /* ETIMEDOUT after the requested ~100 ms, on each clock and from another thread. */
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 100);
    long long t0 = gw_now_ns();
    CHECK_EQ(pthread_mutex_timedlock(&m, &at), ETIMEDOUT);
    long long dt = gw_now_ns() - t0;
    CHECK(dt >= 95000000LL && dt < 2000000000LL, "timedlock took %lld ns", dt);

    at = gw_abs_in(CLOCK_MONOTONIC, 100);
    t0 = gw_now_ns();
    CHECK_EQ(pthread_mutex_clocklock(&m, CLOCK_MONOTONIC, &at), ETIMEDOUT);
    dt = gw_now_ns() - t0;
    CHECK(dt >= 95000000LL && dt < 2000000000LL, "clocklock took %lld ns", dt);

    at = gw_abs_in(CLOCK_REALTIME, 100);
    t0 = gw_now_ns();
    CHECK_EQ(pthread_mutex_clocklock(&m, CLOCK_REALTIME, &at), ETIMEDOUT);
    dt = gw_now_ns() - t0;
    CHECK(dt >= 95000000LL && dt < 2000000000LL, "clocklock(REALTIME) took %lld ns", dt);

    struct other o = {.op = OP_TIMEDLOCK, .m = &m, .at = gw_abs_in(CLOCK_REALTIME, 100)};
    pthread_t t;
    t0 = gw_now_ns();
    CHECK_EQ(pthread_create(&t, NULL, other_main, &o), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    dt = gw_now_ns() - t0;
    CHECK_EQ(o.rc, ETIMEDOUT);
    CHECK(dt >= 95000000LL && dt < 2000000000LL, "timedlock in a thread took %lld ns", dt);

    /* A deadline already past: ETIMEDOUT at once. */
    at.tv_sec = 0;
    at.tv_nsec = 0;
    t0 = gw_now_ns();
    CHECK_EQ(pthread_mutex_timedlock(&m, &at), ETIMEDOUT);
    CHECK(gw_now_ns() - t0 < 1000000000LL, "past deadline waited");

    /* A malformed deadline is EINVAL when the call would have to wait. */
    at = gw_abs_in(CLOCK_REALTIME, 100);
    at.tv_nsec = 2000000000L;
    CHECK_EQ(pthread_mutex_timedlock(&m, &at), EINVAL);
    at.tv_nsec = -1;
    CHECK_EQ(pthread_mutex_timedlock(&m, &at), EINVAL);
    at = gw_abs_in(CLOCK_MONOTONIC, 100);
    at.tv_nsec = 2000000000L;
    CHECK_EQ(pthread_mutex_clocklock(&m, CLOCK_MONOTONIC, &at), EINVAL);
    /* An unsupported clock is EINVAL. */
    at = gw_abs_in(CLOCK_MONOTONIC, 100);
    CHECK_EQ(pthread_mutex_clocklock(&m, CLOCK_PROCESS_CPUTIME_ID, &at), EINVAL);

    holder_stop(&h);

    /* Free: glibc takes it without looking at the deadline's nanoseconds. */
    at = gw_abs_in(CLOCK_REALTIME, 100);
    at.tv_nsec = 2000000000L;
    CHECK_EQ(pthread_mutex_timedlock(&m, &at), 0);
    CHECK_EQ(pthread_mutex_unlock(&m), 0);
    at = gw_abs_in(CLOCK_MONOTONIC, 100);
    CHECK_EQ(pthread_mutex_clocklock(&m, CLOCK_MONOTONIC, &at), 0);
    CHECK_EQ(pthread_mutex_unlock(&m), 0);
    CHECK_EQ(pthread_mutex_clocklock(&m, CLOCK_PROCESS_CPUTIME_ID, &at), EINVAL);

    /* Held for 100 ms by another thread, with a generous deadline: we get it once freed. */
    holder_start(&h, &m, 100);
    at = gw_abs_in(CLOCK_REALTIME, 5000);
    t0 = gw_now_ns();
    CHECK_EQ(pthread_mutex_timedlock(&m, &at), 0);
    dt = gw_now_ns() - t0;
    CHECK(dt < 4000000000LL, "timedlock waited %lld ns for a 100 ms holder", dt);
    CHECK_EQ(pthread_mutex_unlock(&m), 0);
    holder_stop(&h);
    holder_start(&h, &m, 100);
    at = gw_abs_in(CLOCK_MONOTONIC, 5000);
    CHECK_EQ(pthread_mutex_clocklock(&m, CLOCK_MONOTONIC, &at), 0);
    CHECK_EQ(pthread_mutex_unlock(&m), 0);
    holder_stop(&h);

    CHECK_EQ(pthread_mutex_destroy(&m), 0);
}

static void run_all(const char *where, int all_timed) {
    pthread_mutex_t m;

    init_kind(&m, PTHREAD_MUTEX_NORMAL);
    check_normal(&m);
    CHECK_EQ(pthread_mutex_destroy(&m), 0);
    init_kind(&m, PTHREAD_MUTEX_DEFAULT);
    check_normal(&m);
    CHECK_EQ(pthread_mutex_destroy(&m), 0);
    CHECK_EQ(pthread_mutex_init(&m, NULL), 0);
    check_normal(&m);
    CHECK_EQ(pthread_mutex_destroy(&m), 0);
    pthread_mutex_t s_normal = PTHREAD_MUTEX_INITIALIZER;
    check_normal(&s_normal);
    pthread_mutex_t s_adaptive = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;
    check_normal(&s_adaptive);

    init_kind(&m, PTHREAD_MUTEX_ERRORCHECK);
    check_errorcheck(&m);
    CHECK_EQ(pthread_mutex_destroy(&m), 0);
    pthread_mutex_t s_errorcheck = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
    check_errorcheck(&s_errorcheck);

    init_kind(&m, PTHREAD_MUTEX_RECURSIVE);
    check_recursive(&m);
    CHECK_EQ(pthread_mutex_destroy(&m), 0);
    pthread_mutex_t s_recursive = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
    check_recursive(&s_recursive);

    check_destroy(PTHREAD_MUTEX_NORMAL);
    check_destroy(PTHREAD_MUTEX_ERRORCHECK);
    check_destroy(PTHREAD_MUTEX_RECURSIVE);

    check_timed(PTHREAD_MUTEX_ERRORCHECK);
    if (all_timed) { /* each costs ~0.6 s */
        check_timed(PTHREAD_MUTEX_NORMAL);
        check_timed(PTHREAD_MUTEX_RECURSIVE);
    }
    printf("mutex kinds: checks from %s passed\n", where);
}

static void *run_all_thread(void *arg) {
    run_all((const char *)arg, 0);
    return NULL;
}

/* ---- process-shared and robust mutexes, with forked children ---- */

struct shared {
    pthread_mutex_t m;
    int child_released; /* set by the child just before it unlocks */
};

static struct shared *shared_map(void) {
    void *p = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
    memset(p, 0, sizeof(struct shared));
    return p;
}

struct locker {
    pthread_mutex_t *m;
    struct shared *sh;
    int rc, saw_released;
    long ticks_during;
    long long waited_ns;
};

static void *locker_main(void *arg) {
    struct locker *l = arg;
    long before = gw_ticks;
    long long t0 = gw_now_ns();
    l->rc = pthread_mutex_lock(l->m);
    l->waited_ns = gw_now_ns() - t0;
    l->saw_released = __atomic_load_n(&l->sh->child_released, __ATOMIC_SEQ_CST);
    l->ticks_during = gw_ticks - before;
    if (l->rc == 0) CHECK_EQ(pthread_mutex_unlock(l->m), 0);
    return NULL;
}

static void check_pshared(void) {
    struct shared *sh = shared_map();
    pthread_mutexattr_t a;
    CHECK_EQ(pthread_mutexattr_init(&a), 0);
    CHECK_EQ(pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED), 0);
    CHECK_EQ(pthread_mutex_init(&sh->m, &a), 0);
    CHECK_EQ(pthread_mutexattr_destroy(&a), 0);

    int p[2];
    CHECK_EQ(pipe(p), 0);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(p[0]);
        if (pthread_mutex_lock(&sh->m) != 0) _exit(3);
        if (write(p[1], "x", 1) != 1) _exit(4);
        usleep(150000);
        __atomic_store_n(&sh->child_released, 1, __ATOMIC_SEQ_CST);
        if (pthread_mutex_unlock(&sh->m) != 0) _exit(5);
        _exit(0);
    }
    close(p[1]);
    char c;
    CHECK_EQ(read(p[0], &c, 1), 1); /* the child holds the mutex now */
    close(p[0]);
    CHECK_EQ(pthread_mutex_trylock(&sh->m), EBUSY);

    /* A thread waits in pthread_mutex_lock; a ticker thread must keep running meanwhile. */
    pthread_t tk, lk;
    struct locker l = {.m = &sh->m, .sh = sh};
    gw_ticker_stop = 0;
    CHECK_EQ(pthread_create(&tk, NULL, gw_ticker, NULL), 0);
    CHECK_EQ(pthread_create(&lk, NULL, locker_main, &l), 0);
    CHECK_EQ(pthread_join(lk, NULL), 0);
    gw_ticker_stop = 1;
    CHECK_EQ(pthread_join(tk, NULL), 0);
    CHECK_EQ(l.rc, 0);
    CHECK_EQ(l.saw_released, 1);
    CHECK(l.waited_ns < 5000000000LL, "waited %lld ns", l.waited_ns);
    CHECK(l.ticks_during >= 4, "the ticker ran %ld times while a thread waited for the child",
          l.ticks_during);

    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);

    /* Main itself waits on a mutex the child holds, then it works as usual. */
    sh->child_released = 0;
    CHECK_EQ(pipe(p), 0);
    pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(p[0]);
        if (pthread_mutex_lock(&sh->m) != 0) _exit(3);
        if (write(p[1], "x", 1) != 1) _exit(4);
        usleep(100000);
        __atomic_store_n(&sh->child_released, 1, __ATOMIC_SEQ_CST);
        if (pthread_mutex_unlock(&sh->m) != 0) _exit(5);
        _exit(0);
    }
    close(p[1]);
    CHECK_EQ(read(p[0], &c, 1), 1);
    close(p[0]);
    CHECK_EQ(pthread_mutex_lock(&sh->m), 0);
    CHECK_EQ(sh->child_released, 1);
    CHECK_EQ(other(OP_TRYLOCK, &sh->m), EBUSY);
    CHECK_EQ(pthread_mutex_unlock(&sh->m), 0);
    CHECK_EQ(other(OP_TRYLOCK_UNLOCK, &sh->m), 0);
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
    CHECK_EQ(pthread_mutex_destroy(&sh->m), 0);
    munmap(sh, sizeof *sh);
}

static void check_robust(void) {
    /* Basic use of a process-private robust mutex. */
    pthread_mutex_t m;
    pthread_mutexattr_t a;
    CHECK_EQ(pthread_mutexattr_init(&a), 0);
    CHECK_EQ(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST), 0);
    CHECK_EQ(pthread_mutex_init(&m, &a), 0);
    CHECK_EQ(pthread_mutex_lock(&m), 0);
    CHECK_EQ(other(OP_TRYLOCK, &m), EBUSY);
    CHECK_EQ(pthread_mutex_unlock(&m), 0);
    CHECK_EQ(other(OP_TRYLOCK_UNLOCK, &m), 0);
    CHECK_EQ(pthread_mutex_trylock(&m), 0);
    CHECK_EQ(pthread_mutex_unlock(&m), 0);
    struct holder h;
    holder_start(&h, &m, 100);
    CHECK_EQ(pthread_mutex_lock(&m), 0); /* waits for the 100 ms holder */
    CHECK_EQ(pthread_mutex_unlock(&m), 0);
    holder_stop(&h);
    CHECK_EQ(pthread_mutex_destroy(&m), 0);

    /* Process-shared robust: the owner process dies holding it -> EOWNERDEAD. */
    struct shared *sh = shared_map();
    CHECK_EQ(pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED), 0);
    CHECK_EQ(pthread_mutex_init(&sh->m, &a), 0);
    CHECK_EQ(pthread_mutexattr_destroy(&a), 0);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (pthread_mutex_lock(&sh->m) != 0) _exit(3);
        _exit(0); /* dies holding it */
    }
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
    CHECK_EQ(pthread_mutex_lock(&sh->m), EOWNERDEAD);
    CHECK_EQ(pthread_mutex_consistent(&sh->m), 0);
    CHECK_EQ(pthread_mutex_unlock(&sh->m), 0);
    CHECK_EQ(pthread_mutex_lock(&sh->m), 0);
    CHECK_EQ(pthread_mutex_unlock(&sh->m), 0);
    CHECK_EQ(pthread_mutex_destroy(&sh->m), 0);
    munmap(sh, sizeof *sh);
}

/* Owner-tracking kinds that follow glibc's protocol (process-shared, robust): ownership is per
 * thread too, so another thread can neither take a recursive level nor unlock. */
static void check_foreign_owner(const char *name, int type, int pshared, int robust) {
    pthread_mutex_t m;
    pthread_mutexattr_t a;
    CHECK_EQ(pthread_mutexattr_init(&a), 0);
    CHECK_EQ(pthread_mutexattr_settype(&a, type), 0);
    if (pshared) CHECK_EQ(pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED), 0);
    if (robust) CHECK_EQ(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST), 0);
    CHECK_EQ(pthread_mutex_init(&m, &a), 0);
    CHECK_EQ(pthread_mutexattr_destroy(&a), 0);
    CHECK_EQ(pthread_mutex_lock(&m), 0);
    int rc = other(OP_TRYLOCK_UNLOCK, &m);
    CHECK(rc == EBUSY, "%s: another thread's trylock = %d, want EBUSY", name, rc);
    rc = other(OP_UNLOCK, &m);
    CHECK(rc == EPERM, "%s: another thread's unlock = %d, want EPERM", name, rc);
    CHECK_EQ(pthread_mutex_unlock(&m), 0);
    CHECK_EQ(pthread_mutex_unlock(&m), EPERM);
    CHECK_EQ(pthread_mutex_destroy(&m), 0);
}

/* A thread that ends while holding a robust mutex: the next locker gets EOWNERDEAD. */
static void *lock_and_die(void *arg) {
    return (void *)(intptr_t)pthread_mutex_lock((pthread_mutex_t *)arg);
}

static void check_robust_thread_death(void) {
    pthread_mutex_t m;
    pthread_mutexattr_t a;
    CHECK_EQ(pthread_mutexattr_init(&a), 0);
    CHECK_EQ(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST), 0);
    CHECK_EQ(pthread_mutex_init(&m, &a), 0);
    CHECK_EQ(pthread_mutexattr_destroy(&a), 0);
    pthread_t t;
    void *ret;
    CHECK_EQ(pthread_create(&t, NULL, lock_and_die, &m), 0);
    CHECK_EQ(pthread_join(t, &ret), 0);
    CHECK_EQ((int)(intptr_t)ret, 0);
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 1000);
    int rc = pthread_mutex_timedlock(&m, &at);
    CHECK(rc == EOWNERDEAD, "robust mutex whose owner thread ended: timedlock = %d (%s), want "
          "EOWNERDEAD", rc, strerror(rc));
    CHECK_EQ(pthread_mutex_consistent(&m), 0);
    CHECK_EQ(pthread_mutex_unlock(&m), 0);
    CHECK_EQ(other(OP_TRYLOCK_UNLOCK, &m), 0);
    CHECK_EQ(pthread_mutex_destroy(&m), 0);
}

int main(void) {
    run_all("main", 1);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, run_all_thread, (void *)"a thread"), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    check_pshared();
    check_robust();
    check_foreign_owner("pshared recursive", PTHREAD_MUTEX_RECURSIVE, 1, 0);
    check_foreign_owner("pshared errorcheck", PTHREAD_MUTEX_ERRORCHECK, 1, 0);
    check_foreign_owner("robust recursive", PTHREAD_MUTEX_RECURSIVE, 0, 1);
    check_foreign_owner("robust errorcheck", PTHREAD_MUTEX_ERRORCHECK, 0, 1);
    check_foreign_owner("robust normal", PTHREAD_MUTEX_NORMAL, 0, 1);
    check_robust_thread_death();
    if (gw_preloaded()) {
        CHECK_EQ(gw_patched("thread"), 1);
        CHECK_EQ(gw_os_threads(), 1);
    }
    printf("mutex kinds: all passed\n");
    return 0;
}
