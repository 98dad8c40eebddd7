/* pthread_exit from a thread.
 * 40 threads, mixed: the odd ones call pthread_exit(value) three calls deep (after a sleep, so
 * other threads ran in between), the even ones return from their start routine. For the
 * pthread_exit ones no code after the call runs (in the exiting function or its callers); join
 * delivers each thread's own value; the key destructor ran for every thread, with that thread's
 * value, before its join returned. A thread calling pthread_exit(NULL) joins as NULL, and one
 * that exits before main even joins (and one that pthread_exits while detached) are fine too.
 */
#include "gwtest.h"
#include <pthread.h>

#define N 40

static pthread_key_t key;
static int cell[N];         /* the key value of thread i is &cell[i] */
static int dtor_calls[N];   /* destructor calls seen per thread */
static int dtor_bad;        /* destructor got a pointer that is no cell */
static int after_exit[N];   /* code after pthread_exit ran (must stay 0 for odd threads) */
static int returned[N];     /* the even threads went the normal way */

static void dtor(void *v) {
    int *c = v;
    if (c < cell || c >= cell + N) {
        __atomic_add_fetch(&dtor_bad, 1, __ATOMIC_SEQ_CST);
        return;
    }
    __atomic_add_fetch(&dtor_calls[c - cell], 1, __ATOMIC_SEQ_CST);
}

static __attribute__((noinline)) void level3(int i) {
    usleep((useconds_t)(1 + i % 4) * 1000);
    if (i % 2) pthread_exit((void *)(intptr_t)(1000 + i));
    __atomic_store_n(&returned[i], 1, __ATOMIC_SEQ_CST);
}

static __attribute__((noinline)) void level2(int i) {
    level3(i);
    if (i % 2) __atomic_add_fetch(&after_exit[i], 1, __ATOMIC_SEQ_CST);
}

static __attribute__((noinline)) int level1(int i) {
    level2(i);
    if (i % 2) __atomic_add_fetch(&after_exit[i], 1, __ATOMIC_SEQ_CST);
    return i;
}

static void *body(void *arg) {
    int i = (int)(intptr_t)arg;
    CHECK_EQ(pthread_setspecific(key, &cell[i]), 0);
    usleep(1000);
    int r = level1(i);
    if (i % 2) __atomic_add_fetch(&after_exit[i], 1, __ATOMIC_SEQ_CST);
    return (void *)(intptr_t)(2000 + r);
}

static void *exit_null(void *arg) {
    (void)arg;
    pthread_exit(NULL);
    return (void *)1;
}

static int detached_done;

static void *exit_detached(void *arg) {
    (void)arg;
    usleep(1000);
    __atomic_store_n(&detached_done, 1, __ATOMIC_SEQ_CST);
    pthread_exit((void *)5);
    __atomic_store_n(&detached_done, 2, __ATOMIC_SEQ_CST);
    return NULL;
}

int main(void) {
    CHECK_EQ(pthread_key_create(&key, dtor), 0);
    pthread_t t[N];
    for (int i = 0; i < N; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, body, (void *)(intptr_t)i), 0);
    for (int i = 0; i < N; i++) {
        void *v = NULL;
        CHECK_EQ(pthread_join(t[i], &v), 0);
        CHECK_EQ((intptr_t)v, (i % 2 ? 1000 : 2000) + i);
        CHECK(dtor_calls[i] == 1, "thread %d: %d destructor calls by the time join returned", i,
              dtor_calls[i]);
    }
    for (int i = 0; i < N; i++) {
        CHECK(after_exit[i] == 0, "thread %d ran code after pthread_exit", i);
        CHECK_EQ(returned[i], i % 2 ? 0 : 1);
        CHECK_EQ(dtor_calls[i], 1);
    }
    CHECK_EQ(dtor_bad, 0);

    /* pthread_exit(NULL); and a thread that has already exited when main joins. */
    pthread_t u;
    void *v = (void *)-1;
    CHECK_EQ(pthread_create(&u, NULL, exit_null, NULL), 0);
    usleep(20000);
    CHECK_EQ(pthread_join(u, &v), 0);
    CHECK(v == NULL, "pthread_exit(NULL) joined as %p", v);

    /* A detached thread that pthread_exits. */
    CHECK_EQ(pthread_create(&u, NULL, exit_detached, NULL), 0);
    CHECK_EQ(pthread_detach(u), 0);
    long long t0 = gw_now_ns();
    while (__atomic_load_n(&detached_done, __ATOMIC_SEQ_CST) == 0) {
        CHECK(gw_now_ns() - t0 < 10000000000LL, "the detached thread never ran");
        usleep(1000);
    }
    usleep(10000);
    CHECK_EQ(detached_done, 1);

    /* main's own value was never set, and no destructor ran for main. */
    CHECK(pthread_getspecific(key) == NULL, "main sees a value it never set");
    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1);
    printf("exit_green: all passed\n");
    return 0;
}
