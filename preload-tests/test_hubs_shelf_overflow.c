/* Several hubs: a batch of threads made in a row before any runs, more than a hub's shelf ring
 * holds (16 384; the rest wait in the locked queue behind it, refilling the ring as it empties:
 * docs/design.md, Placement): every thread runs exactly once, with its own argument, and is
 * joined; the threads the creator's hub runs itself start oldest first (the ring's, then the
 * queue's), those another hub took or was handed running elsewhere. Natively each thread is
 * its own OS thread (small stacks) and only the exactly-once part is checked. Under the
 * preload the test runs itself again at GREENWORLD_HUBS=2 with GREENWORLD_SLICE=off, so that
 * the creator keeps its hub while it makes the batch and no thread is preempted between its
 * start and its ticket. */
#include "gwtest.h"

enum { THREADS = 17000 };

static int ran[THREADS];
static int order[THREADS]; /* index of the thread that took ticket i */
static pid_t where[THREADS];
static int tickets;

static void *body(void *arg) {
    int i = (int)(long)arg;
    int ticket = __atomic_fetch_add(&tickets, 1, __ATOMIC_SEQ_CST);
    order[ticket] = i;
    where[ticket] = gw_tid();
    __atomic_add_fetch(&ran[i], 1, __ATOMIC_SEQ_CST);
    return arg;
}

int main(void) {
    gw_rerun_with_slice("off");
    gw_watchdog("test_hubs_shelf_overflow", 120);
    static pthread_t t[THREADS];
    pthread_attr_t attr;
    CHECK_EQ(pthread_attr_init(&attr), 0);
    CHECK_EQ(pthread_attr_setstacksize(&attr, 64 * 1024), 0);
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_create(&t[i], &attr, body, (void *)(long)i), 0);
    pthread_attr_destroy(&attr);
    for (int i = 0; i < THREADS; i++) {
        void *ret = NULL;
        CHECK_EQ(pthread_join(t[i], &ret), 0);
        CHECK(ret == (void *)(long)i, "thread %d returned %p", i, ret);
    }
    CHECK_EQ(tickets, THREADS);
    for (int i = 0; i < THREADS; i++) CHECK(ran[i] == 1, "thread %d ran %d times", i, ran[i]);
    int on_creator = 0;
    if (gw_preloaded()) {
        pid_t mine = gw_tid();
        int last = -1;
        for (int k = 0; k < THREADS; k++) {
            if (where[k] != mine) continue;
            CHECK(order[k] > last, "on the creator's hub thread %d started after thread %d", order[k], last);
            last = order[k];
            on_creator++;
        }
    }
    printf("ok: %d threads made in a row each ran once (%d in order on the creator's hub)\n", THREADS,
           on_creator);
    return 0;
}
