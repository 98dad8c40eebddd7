/* Hand-offs between green threads of one hub (issue 15: a thread that parks runs the next
 * runnable one from its own stack, the root's loop left out). What each thread sees must stay
 * its own, as with OS threads:
 *  - a baton passed around a ring of threads (a mutex, a condition variable each): every pass
 *    arrives in order, and each thread finds its own errno and its own thread-local after
 *    every wait, however many threads ran from its stack meanwhile;
 *  - the ring's threads end while others run them (returning, or in pthread_exit), and are
 *    joined with their values;
 *  - two threads that hand off to each other without end while main sleeps: main's sleep
 *    ends (the hub's timers still fire: the hand-offs leave the hub loop a turn now and then)
 *    and its word stops them;
 *  - a thread that yields in a loop, alone, while main sleeps: likewise, and what main then
 *    writes reaches the yielder. */
#include "gwtest.h"
#include <poll.h>
#include <pthread.h>
#include <sched.h>

enum { RING = 4, PASSES = 20000 };

static pthread_mutex_t g_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_turn_cv[RING];
static int g_turn, g_passes, g_done;
static __thread int tl_id = -1;

static void *ring_member(void *arg) {
    int id = (int)(long)arg;
    tl_id = id;
    CHECK_EQ(pthread_mutex_lock(&g_m), 0);
    for (;;) {
        while (g_turn != id && !g_done) {
            errno = 1000 + id;
            CHECK_EQ(pthread_cond_wait(&g_turn_cv[id], &g_m), 0);
            CHECK(errno == 1000 + id, "thread %d: errno %d after its wait", id, errno);
            CHECK(tl_id == id, "thread %d: its thread-local reads %d after its wait", id, tl_id);
        }
        if (g_done) break;
        CHECK(g_passes % RING == id, "pass %d reached thread %d", g_passes, id);
        if (++g_passes == PASSES) {
            g_done = 1;
            for (int i = 0; i < RING; i++) CHECK_EQ(pthread_cond_signal(&g_turn_cv[i]), 0);
            break;
        }
        g_turn = (id + 1) % RING;
        CHECK_EQ(pthread_cond_signal(&g_turn_cv[g_turn]), 0);
    }
    CHECK_EQ(pthread_mutex_unlock(&g_m), 0);
    if (id % 2) pthread_exit((void *)(long)(100 + id));
    return (void *)(long)(100 + id);
}

static pthread_mutex_t g_pair_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_pair_cv[2] = {PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER};
static int g_pair_turn, g_stop;
static long g_pair_passes;

static void *pair_member(void *arg) {
    int id = (int)(long)arg;
    CHECK_EQ(pthread_mutex_lock(&g_pair_m), 0);
    while (!g_stop) {
        if (g_pair_turn != id) {
            CHECK_EQ(pthread_cond_wait(&g_pair_cv[id], &g_pair_m), 0);
            continue;
        }
        g_pair_passes++;
        g_pair_turn = !id;
        CHECK_EQ(pthread_cond_signal(&g_pair_cv[!id]), 0);
    }
    CHECK_EQ(pthread_cond_signal(&g_pair_cv[!id]), 0);
    CHECK_EQ(pthread_mutex_unlock(&g_pair_m), 0);
    return NULL;
}

static int g_pipe[2];

static void *yielder(void *arg) {
    (void)arg;
    struct pollfd p = {.fd = g_pipe[0], .events = POLLIN};
    long yields = 0;
    while (poll(&p, 1, 0) == 0) {
        sched_yield();
        yields++;
    }
    char c;
    CHECK_EQ(read(g_pipe[0], &c, 1), 1);
    CHECK(c == 'y', "read %c", c);
    return (void *)yields;
}

int main(void) {
    gw_watchdog("test_handoff_ring", 60);
    pthread_t t[RING];
    for (int i = 0; i < RING; i++) CHECK_EQ(pthread_cond_init(&g_turn_cv[i], NULL), 0);
    for (int i = 0; i < RING; i++) CHECK_EQ(pthread_create(&t[i], NULL, ring_member, (void *)(long)i), 0);
    for (int i = 0; i < RING; i++) {
        void *ret;
        CHECK_EQ(pthread_join(t[i], &ret), 0);
        CHECK(ret == (void *)(long)(100 + i), "thread %d returned %ld", i, (long)ret);
    }
    CHECK_EQ(g_passes, PASSES);

    pthread_t pair[2];
    for (int i = 0; i < 2; i++) CHECK_EQ(pthread_create(&pair[i], NULL, pair_member, (void *)(long)i), 0);
    gw_sleep_ms(20);
    CHECK_EQ(pthread_mutex_lock(&g_pair_m), 0);
    g_stop = 1;
    CHECK_EQ(pthread_mutex_unlock(&g_pair_m), 0);
    for (int i = 0; i < 2; i++) CHECK_EQ(pthread_join(pair[i], NULL), 0);

    CHECK_EQ(pipe(g_pipe), 0);
    pthread_t y;
    CHECK_EQ(pthread_create(&y, NULL, yielder, NULL), 0);
    gw_sleep_ms(20);
    CHECK_EQ(write(g_pipe[1], "y", 1), 1);
    void *yields;
    CHECK_EQ(pthread_join(y, &yields), 0);
    printf("ok: %d passes around a ring of %d, %ld between the pair, the yielder yielded %ld "
           "times\n", PASSES, RING, g_pair_passes, (long)yields);
    return 0;
}
