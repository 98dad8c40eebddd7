/* A main thread that another thread wakes runs at that thread's next hooked call (issue 18,
 * item 6). Python's ThreadingHTTPServer accepts in its main thread, which after each accept
 * waits for the handler thread to start (and for the GIL that thread drops around every
 * system call). Natively the woken main thread runs at once on another core; under the
 * preload it waited until the handler parked, the listen queue overflowed and the dropped
 * connections came back only after TCP retransmits (p99 215 ms against 24 ms natively).
 * 1. main waits on a semaphore that a new thread posts, after which that thread makes 10
 *    writes that do not block: under the preload main runs before the thread's first write
 *    returns (natively the order is the OS's; the data must arrive either way).
 * 2. The same with a condition variable, the thread's calls being reads that succeed. */
#include "gwtest.h"
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

#define CALLS 10

static sem_t started;
static int pipe_fds[2];
static atomic_int calls_done;

static void *post_then_write(void *arg) {
    sem_post(&started);
    for (int i = 0; i < CALLS; i++) {
        CHECK_EQ(write(pipe_fds[1], "x", 1), 1);
        atomic_fetch_add(&calls_done, 1);
    }
    return arg;
}

static void semaphore_wakeup(void) {
    CHECK_EQ(pipe(pipe_fds), 0);
    CHECK_EQ(sem_init(&started, 0, 0), 0);
    atomic_store(&calls_done, 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, post_then_write, NULL), 0);
    CHECK_EQ(sem_wait(&started), 0);
    int seen = atomic_load(&calls_done);
    CHECK_EQ(pthread_join(t, NULL), 0);
    char buf[CALLS];
    CHECK_EQ(read(pipe_fds[0], buf, CALLS), CALLS);
    if (gw_preloaded() && gw_hubs() == 1)
        CHECK(seen == 0, "main ran only after %d of the thread's writes", seen);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    sem_destroy(&started);
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int signalled;

static void *signal_then_read(void *arg) {
    pthread_mutex_lock(&mu);
    signalled = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < CALLS; i++) {
        char c;
        CHECK_EQ(read(pipe_fds[0], &c, 1), 1);
        atomic_fetch_add(&calls_done, 1);
    }
    return arg;
}

static void condvar_wakeup(void) {
    CHECK_EQ(pipe(pipe_fds), 0);
    CHECK_EQ(write(pipe_fds[1], "0123456789", CALLS), CALLS);
    atomic_store(&calls_done, 0);
    pthread_t t;
    pthread_mutex_lock(&mu);
    CHECK_EQ(pthread_create(&t, NULL, signal_then_read, NULL), 0);
    while (!signalled) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    int seen = atomic_load(&calls_done);
    CHECK_EQ(pthread_join(t, NULL), 0);
    /* (With several hubs the thread may run on another OS thread, as natively.) */
    if (gw_preloaded() && gw_hubs() == 1)
        CHECK(seen == 0, "main ran only after %d of the thread's reads", seen);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

int main(void) {
    gw_watchdog("test_root_wakeup", 20);
    semaphore_wakeup();
    condvar_wakeup();
    puts("ok");
    return 0;
}
