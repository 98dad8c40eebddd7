#include "gwtest.h"
/* Synchronisation between green threads on different hubs (GREENWORLD_HUBS; the test re-runs
 * itself with GREENWORLD_HUBS=2 when preloaded without it): each pair of threads really runs on
 * two OS threads (gettid differs), and every primitive hands off between them many times with
 * the counts checked: a cond+mutex ping-pong for each mutex kind, rwlock, semaphore, barrier,
 * pthread_once raced from both hubs, C11 mtx/cnd, a spinning-free mutex stress with a shared
 * counter; then joins and detaches across hubs (a thread on the second hub joins one on the
 * first and the other way round). An unlock on one hub must wake the waiter on the other
 * promptly: a lost wake-up hangs (the watchdog says where). */
#include <pthread.h>
#include <semaphore.h>
#include <threads.h>

#define ROUNDS 20000

static int preloaded_hubs(void) {
    const char *v = getenv("GREENWORLD_HUBS");
    return gw_preloaded() && v && atoi(v) > 1;
}


/* Two threads that each run `fn(i)`; both must run on different OS threads under hubs. */
struct pair {
    void *(*fn)(void *);
    pid_t tids[2];
};

static struct pair *current;

static void *pair_main(void *arg) {
    long i = (long)arg;
    current->tids[i] = gw_tid();
    return current->fn(arg);
}

static void run_pair(const char *what, void *(*fn)(void *)) {
    struct pair p = {.fn = fn};
    current = &p;
    gw_phase = what;
    pthread_t t[2];
    CHECK_EQ(pthread_create(&t[0], NULL, pair_main, (void *)0), 0);
    CHECK_EQ(pthread_create(&t[1], NULL, pair_main, (void *)1), 0);
    for (int i = 0; i < 2; i++) {
        void *ret;
        CHECK_EQ(pthread_join(t[i], &ret), 0);
        CHECK(ret == (void *)(long)(ROUNDS), "%s: thread %d returned %ld", what, i, (long)ret);
    }
    if (preloaded_hubs())
        CHECK(p.tids[0] != p.tids[1], "%s: both threads on OS thread %d", what, p.tids[0]);
}

/* cond + mutex ping-pong: thread i waits for turn == i, flips it. */
static pthread_mutex_t m;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int turn;

static void *pingpong(void *arg) {
    long me = (long)arg, n = 0;
    for (int r = 0; r < ROUNDS; r++) {
        CHECK_EQ(pthread_mutex_lock(&m), 0);
        while (turn != me) CHECK_EQ(pthread_cond_wait(&c, &m), 0);
        turn = !me;
        n++;
        CHECK_EQ(pthread_cond_signal(&c), 0);
        CHECK_EQ(pthread_mutex_unlock(&m), 0);
    }
    return (void *)n;
}

/* A plain mutex stress: both increment a shared counter under the lock. */
static long counter;
static void *increment(void *arg) {
    (void)arg;
    long n = 0;
    for (int r = 0; r < ROUNDS; r++) {
        CHECK_EQ(pthread_mutex_lock(&m), 0);
        long v = counter;
        if (r % 64 == 0) sched_yield(); /* holding it: the other hub's thread must wait */
        counter = v + 1;
        n++;
        CHECK_EQ(pthread_mutex_unlock(&m), 0);
    }
    return (void *)n;
}

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static void *rwlock_turns(void *arg) {
    long me = (long)arg, n = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (;;) {
            CHECK_EQ(pthread_rwlock_wrlock(&rw), 0);
            if (turn == me) break;
            CHECK_EQ(pthread_rwlock_unlock(&rw), 0);
            CHECK_EQ(pthread_rwlock_rdlock(&rw), 0); /* a reader between the writers */
            CHECK_EQ(pthread_rwlock_unlock(&rw), 0);
            sched_yield();
        }
        turn = !me;
        n++;
        CHECK_EQ(pthread_rwlock_unlock(&rw), 0);
    }
    return (void *)n;
}

static sem_t sems[2];
static void *sem_pingpong(void *arg) {
    long me = (long)arg, n = 0;
    for (int r = 0; r < ROUNDS; r++) {
        CHECK_EQ(sem_wait(&sems[me]), 0);
        n++;
        CHECK_EQ(sem_post(&sems[!me]), 0);
    }
    return (void *)n;
}

static pthread_barrier_t barrier;
static long barrier_round[2];
static void *barrier_rounds(void *arg) {
    long me = (long)arg, n = 0;
    for (int r = 0; r < ROUNDS / 10; r++) {
        barrier_round[me] = r;
        pthread_barrier_wait(&barrier);
        CHECK_EQ(barrier_round[!me], r);
        pthread_barrier_wait(&barrier);
        n += 10;
    }
    return (void *)n;
}

static mtx_t cm;
static cnd_t cc;
static void *c11_pingpong(void *arg) {
    long me = (long)arg, n = 0;
    for (int r = 0; r < ROUNDS; r++) {
        CHECK_EQ(mtx_lock(&cm), thrd_success);
        while (turn != me) CHECK_EQ(cnd_wait(&cc, &cm), thrd_success);
        turn = !me;
        n++;
        CHECK_EQ(cnd_signal(&cc), thrd_success);
        CHECK_EQ(mtx_unlock(&cm), thrd_success);
    }
    return (void *)n;
}

static pthread_once_t once;
static int once_runs;
static void once_fn(void) {
    usleep(20000); /* the other hub's caller must wait for it, not run it again */
    once_runs++;
}
static void *once_race(void *arg) {
    (void)arg;
    pthread_once(&once, once_fn);
    CHECK_EQ(once_runs, 1);
    return (void *)(long)ROUNDS;
}

/* Joins across hubs. */
static void *return_tid(void *arg) {
    (void)arg;
    usleep(5000);
    return (void *)(long)gw_tid();
}
static pthread_t to_join;
static void *join_other(void *arg) {
    (void)arg;
    void *ret;
    CHECK_EQ(pthread_join(to_join, &ret), 0);
    return ret;
}

static volatile int detached_done;
static void *detached_fn(void *arg) {
    (void)arg;
    usleep(2000);
    __atomic_store_n(&detached_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

int main(void) {
    gw_rerun_with_hubs("2");
    gw_watchdog("test_hubs_sync", 100);

    pthread_mutexattr_t a;
    int kinds[] = {PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_RECURSIVE, PTHREAD_MUTEX_ERRORCHECK,
                   PTHREAD_MUTEX_ADAPTIVE_NP};
    const char *kind_names[] = {"cond ping-pong (normal)", "cond ping-pong (recursive)",
                                "cond ping-pong (errorcheck)", "cond ping-pong (adaptive)"};
    for (int k = 0; k < 4; k++) {
        pthread_mutexattr_init(&a);
        pthread_mutexattr_settype(&a, kinds[k]);
        CHECK_EQ(pthread_mutex_init(&m, &a), 0);
        turn = 0;
        run_pair(kind_names[k], pingpong);
        pthread_mutex_destroy(&m);
        pthread_mutexattr_destroy(&a);
    }
    pthread_mutex_init(&m, NULL);
    counter = 0;
    run_pair("mutex counter", increment);
    CHECK_EQ(counter, 2 * ROUNDS);

    turn = 0;
    run_pair("rwlock", rwlock_turns);

    sem_init(&sems[0], 0, 1);
    sem_init(&sems[1], 0, 0);
    run_pair("semaphore ping-pong", sem_pingpong);

    pthread_barrier_init(&barrier, NULL, 2);
    run_pair("barrier", barrier_rounds);

    CHECK_EQ(mtx_init(&cm, mtx_plain), thrd_success);
    CHECK_EQ(cnd_init(&cc), thrd_success);
    turn = 0;
    run_pair("C11 mtx/cnd ping-pong", c11_pingpong);

    run_pair("pthread_once", once_race);
    CHECK_EQ(once_runs, 1);

    /* Joins: each of a pair joins a thread made on the other hub's side. */
    gw_phase = "join across hubs";
    for (int i = 0; i < 50; i++) {
        pthread_t a1, b1;
        CHECK_EQ(pthread_create(&a1, NULL, return_tid, NULL), 0);
        to_join = a1;
        CHECK_EQ(pthread_create(&b1, NULL, join_other, NULL), 0);
        void *ret;
        CHECK_EQ(pthread_join(b1, &ret), 0);
        CHECK(ret != NULL, "join across hubs: no tid");
    }
    gw_phase = "detach across hubs";
    for (int i = 0; i < 50; i++) {
        pthread_t t;
        detached_done = 0;
        CHECK_EQ(pthread_create(&t, NULL, detached_fn, NULL), 0);
        CHECK_EQ(pthread_detach(t), 0);
        while (!__atomic_load_n(&detached_done, __ATOMIC_ACQUIRE)) usleep(500);
    }
    printf("test_hubs_sync: ok\n");
    return 0;
}
