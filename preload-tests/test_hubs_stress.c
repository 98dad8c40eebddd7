#include "gwtest.h"
/* A mutex/condition-variable stress between hubs (run under GREENWORLD_HUBS=2 by run-tests'
 * third pass, at one hub by its second): 8 threads, spread over the hubs, hand a lock and items
 * to each other millions of times, and every count is checked.
 *   1. a shared counter incremented under one mutex, 125 000 times by each thread (1 000 000
 *      acquisitions; the read and the write are apart, so a lock that let two OS threads in
 *      at once loses increments);
 *   2. a bounded queue of 4 slots (mutex, "not full" and "not empty" conditions): 4 producers
 *      put 50 000 numbered items each, 4 consumers take them; every item is taken once (a
 *      bitmap), the sums match, and with 4 slots a producer or consumer waits and is woken
 *      at nearly every item (a lost wake-up hangs: the watchdog says where);
 *   3. the same threads' OS thread never changes (gettid at the start of each phase and at its
 *      end), and under hubs they ran on at least two OS threads.
 * The whole runs 3 times in a row. */
#include <pthread.h>

#define THREADS 8
#define INCREMENTS 125000
#define PRODUCERS 4
#define PER_PRODUCER 50000
#define ITEMS (PRODUCERS * PER_PRODUCER)
#define SLOTS 4
#define RUNS 3


static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static volatile long counter;

static pid_t tids[THREADS];

static void note_tid(long me) { tids[me] = gw_tid(); }
static void check_tid(long me, const char *what) {
    CHECK(tids[me] == gw_tid(), "%s: thread %ld moved from OS thread %d to %d", what, me, tids[me],
          gw_tid());
}

static void *increment(void *arg) {
    long me = (long)arg;
    note_tid(me);
    for (int r = 0; r < INCREMENTS; r++) {
        CHECK_EQ(pthread_mutex_lock(&m), 0);
        long v = counter;
        __asm__ volatile("" ::: "memory");
        counter = v + 1;
        CHECK_EQ(pthread_mutex_unlock(&m), 0);
    }
    check_tid(me, "mutex counter");
    return NULL;
}

static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static long queue[SLOTS];
static int head, count, producers_left;
static unsigned char taken[ITEMS];
static long consumed_sum[THREADS], consumed_count[THREADS];

static void *produce(void *arg) {
    long me = (long)arg;
    note_tid(me);
    for (long i = 0; i < PER_PRODUCER; i++) {
        long item = me / 2 * PER_PRODUCER + i; /* producers are the even threads */
        CHECK_EQ(pthread_mutex_lock(&m), 0);
        while (count == SLOTS) CHECK_EQ(pthread_cond_wait(&not_full, &m), 0);
        queue[(head + count) % SLOTS] = item;
        count++;
        CHECK_EQ(pthread_cond_signal(&not_empty), 0);
        CHECK_EQ(pthread_mutex_unlock(&m), 0);
    }
    CHECK_EQ(pthread_mutex_lock(&m), 0);
    if (--producers_left == 0) CHECK_EQ(pthread_cond_broadcast(&not_empty), 0);
    CHECK_EQ(pthread_mutex_unlock(&m), 0);
    check_tid(me, "producer");
    return NULL;
}

static void *consume(void *arg) {
    long me = (long)arg;
    note_tid(me);
    for (;;) {
        CHECK_EQ(pthread_mutex_lock(&m), 0);
        while (count == 0 && producers_left > 0) CHECK_EQ(pthread_cond_wait(&not_empty, &m), 0);
        if (count == 0) {
            CHECK_EQ(pthread_mutex_unlock(&m), 0);
            break;
        }
        long item = queue[head];
        head = (head + 1) % SLOTS;
        count--;
        CHECK_EQ(pthread_cond_signal(&not_full), 0);
        CHECK_EQ(pthread_mutex_unlock(&m), 0);
        CHECK(item >= 0 && item < ITEMS, "item %ld", item);
        CHECK(!taken[item], "item %ld taken twice", item);
        taken[item] = 1;
        consumed_sum[me] += item;
        consumed_count[me]++;
    }
    check_tid(me, "consumer");
    return NULL;
}

/* How many different OS threads the phase's threads ran on. */
static int distinct_tids(void) {
    int n = 0;
    for (int i = 0; i < THREADS; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++) seen |= tids[j] == tids[i];
        n += !seen;
    }
    return n;
}

static void run_all(void *(*fn[THREADS])(void *)) {
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) CHECK_EQ(pthread_create(&t[i], NULL, fn[i], (void *)i), 0);
    for (int i = 0; i < THREADS; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    if (gw_hubs() > 1) CHECK(distinct_tids() >= 2, "%s: every thread on one OS thread", gw_phase);
}

int main(void) {
    gw_watchdog("test_hubs_stress", 100);
    for (int run = 1; run <= RUNS; run++) {
        long long t0 = gw_now_ns();
        gw_phase = "mutex counter";
        counter = 0;
        void *(*incs[THREADS])(void *);
        for (int i = 0; i < THREADS; i++) incs[i] = increment;
        run_all(incs);
        CHECK_EQ(counter, (long)THREADS * INCREMENTS);
        long long t1 = gw_now_ns();

        gw_phase = "bounded queue";
        head = count = 0;
        producers_left = PRODUCERS;
        memset(taken, 0, sizeof taken);
        memset(consumed_sum, 0, sizeof consumed_sum);
        memset(consumed_count, 0, sizeof consumed_count);
        void *(*roles[THREADS])(void *);
        /* Producers and consumers alternate, so placement puts both kinds on every hub. */
        for (int i = 0; i < THREADS; i++) roles[i] = i % 2 ? consume : produce;
        run_all(roles);
        long n = 0, sum = 0;
        for (int i = 0; i < THREADS; i++) n += consumed_count[i], sum += consumed_sum[i];
        CHECK_EQ(n, ITEMS);
        CHECK_EQ(sum, (long)ITEMS * (ITEMS - 1) / 2);
        for (long i = 0; i < ITEMS; i++) CHECK(taken[i], "item %ld never taken", i);
        printf("run %d: mutex counter %lld ms, bounded queue %lld ms\n", run,
               (t1 - t0) / 1000000, gw_ms_since(t1));
    }
    printf("test_hubs_stress: ok\n");
    return 0;
}
