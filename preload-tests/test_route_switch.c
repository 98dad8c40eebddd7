#include "gwtest.h"
/* A subsystem off for the whole process, switched on at run time: with GREENWORLD_THREAD=0 the
 * exports of the sync primitives jump straight to glibc (their routes settle on the real
 * functions at their first call); greenworld_monkey_patch(GW_THREAD) must point them back at
 * the library, or a green thread that blocks on a mutex another green thread holds would block
 * the whole OS thread in glibc (a hang, which run-tests' timeout fails). Natively: the same
 * locks, with real threads. Under the preload the test re-runs itself with
 * GREENWORLD_THREAD=0. */

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static int got;
static pid_t body_tid;

static void *body(void *arg) {
    body_tid = (pid_t)syscall(SYS_gettid);
    pthread_mutex_lock(&m);
    got = 1;
    pthread_mutex_unlock(&m);
    return arg;
}

int main(int argc, char **argv) {
    (void)argc;
    int (*monkey_patch)(unsigned) = (int (*)(unsigned))dlsym(RTLD_DEFAULT, "greenworld_monkey_patch");
    int (*is_patched)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "greenworld_is_monkey_patched");
    if (monkey_patch && !getenv("GREENWORLD_THREAD")) {
        setenv("GREENWORLD_THREAD", "0", 1);
        execv("/proc/self/exe", argv);
        CHECK(0, "execv: %s", strerror(errno));
    }
    /* Settles the routes of lock and unlock: glibc's, thread being off. */
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(pthread_mutex_lock(&m), 0);
        CHECK_EQ(pthread_mutex_unlock(&m), 0);
    }
    if (monkey_patch) {
        CHECK_EQ(is_patched("pthread_mutex_lock"), 0);
        CHECK_EQ(monkey_patch(0x08u), 0); /* GW_THREAD */
        CHECK_EQ(is_patched("pthread_mutex_lock"), 1);
    }
    CHECK_EQ(pthread_mutex_lock(&m), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, body, NULL), 0);
    /* The new thread runs meanwhile (green: on this OS thread, while this one sleeps) and
     * waits for the mutex. */
    usleep(20000);
    CHECK_EQ(got, 0);
    CHECK_EQ(pthread_mutex_unlock(&m), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(got, 1);
    /* Green: it ran on this OS thread or, with several hubs, on another hub's, which outlives
     * it (a real thread's is gone once joined). Placement may send it to the other hub: this
     * thread sleeps, and counts as one of its hub's threads. */
    if (monkey_patch)
        CHECK(body_tid == (pid_t)syscall(SYS_gettid) ||
                  (gw_hubs() > 1 && syscall(SYS_tgkill, getpid(), body_tid, 0) == 0),
              "the thread made after monkey_patch is green");
    return 0;
}
