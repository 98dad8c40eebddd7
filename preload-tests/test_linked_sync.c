// link: greenworld
#include "gwtest.h"
#include <pthread.h>
#include "greenworld.h"
/* Locks and conditions across greenworld_monkey_patch in a linked program: a mutex locked
 * before the call is unlocked after it; OS threads made before (blocked in a read across the
 * call) then wait on a condition that green threads made after signal, and contend for the
 * same mutex with them. Natively the threads made before are real OS threads (and stay so);
 * under the preload all are green. A wait already blocked in glibc at the moment of the call
 * is another matter (README, "Three ways in"). */

static int start[2];

static void *before(void *arg) {
    char c;
    if (read(start[0], &c, 1) != 1) return (void *)1;
    void *(*body)(void *) = (void *(*)(void *))arg;
    return body(NULL);
}

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int ready;
static long count;

static void *waiter(void *arg) {
    pthread_mutex_lock(&m);
    while (!ready) pthread_cond_wait(&c, &m);
    count++;
    pthread_mutex_unlock(&m);
    return arg;
}

static void *adder(void *arg) {
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&m);
        count++;
        pthread_mutex_unlock(&m);
        if (i % 100 == 0) sched_yield();
    }
    return arg;
}

int main(void) {
    const char *preload = getenv("LD_PRELOAD");
    int preloaded = preload && strstr(preload, "libgreenworld");
    gw_watchdog("test_linked_sync", 60);
    pthread_t before_waiter, before_adder;
    gw_phase = "before";
    CHECK_EQ(pipe(start), 0);
    CHECK_EQ(pthread_mutex_lock(&m), 0);
    CHECK_EQ(pthread_create(&before_waiter, NULL, before, (void *)waiter), 0);
    CHECK_EQ(pthread_create(&before_adder, NULL, before, (void *)adder), 0);
    CHECK_EQ(gw_os_threads(), preloaded ? 1 : 3);

    gw_phase = "after";
    CHECK_EQ(greenworld_monkey_patch(GW_THREAD | GW_TIME), 0);
    CHECK_EQ(write(start[1], "go", 2), 2);
    CHECK_EQ(pthread_mutex_unlock(&m), 0);
    enum { N = 60 };
    pthread_t t[N];
    for (int i = 0; i < N; i++) CHECK_EQ(pthread_create(&t[i], NULL, i % 2 ? adder : waiter, NULL), 0);
    /* The green threads add none (the adder made before may be done by now). */
    CHECK(gw_os_threads() <= (preloaded ? 1 : 3), "%d OS threads", gw_os_threads());
    usleep(20 * 1000);
    CHECK_EQ(pthread_mutex_lock(&m), 0);
    ready = 1;
    CHECK_EQ(pthread_cond_broadcast(&c), 0);
    CHECK_EQ(pthread_mutex_unlock(&m), 0);
    for (int i = 0; i < N; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    gw_phase = "join before";
    CHECK_EQ(pthread_join(before_waiter, NULL), 0);
    CHECK_EQ(pthread_join(before_adder, NULL), 0);
    CHECK_EQ(count, (N / 2 + 1) * 1000 + N / 2 + 1);
    CHECK_EQ(gw_os_threads(), 1);
    printf("linked sync ok\n");
    return 0;
}
