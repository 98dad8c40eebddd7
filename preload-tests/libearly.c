#include "gwtest.h"
/* A library whose constructor calls hooked functions. It is a DT_NEEDED dependency of
 * test_early_ctor, so ld.so initialises it before the preloaded libgreenworld.so runs its own
 * constructor: the library must configure itself on first use. Results go to exported globals
 * for the test's main to check. */
#include <pthread.h>

int early_sleep_rc = -99;
long long early_sleep_ns = -1;
int early_create_rc = -99;
int early_join_rc = -99;
long early_join_value = -1;
int early_thread_os_threads = -99; /* OS threads seen from inside the early thread */
int early_patched_thread = -99;    /* greenworld_is_monkey_patched("thread"), -2 if not loaded */
int early_patched_nanosleep = -99;

static void *early_thread(void *arg) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
    early_thread_os_threads = gw_os_threads();
    return (void *)((intptr_t)arg * 2);
}

__attribute__((constructor)) static void early(void) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    long long t0 = gw_now_ns();
    early_sleep_rc = nanosleep(&ts, NULL);
    early_sleep_ns = gw_now_ns() - t0;

    pthread_t t;
    void *value = NULL;
    early_create_rc = pthread_create(&t, NULL, early_thread, (void *)21);
    if (early_create_rc == 0) early_join_rc = pthread_join(t, &value);
    early_join_value = (long)(intptr_t)value;

    /* dlsym, not gw_patched: the point is that the symbol is reachable this early. */
    int (*patched)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "greenworld_is_monkey_patched");
    early_patched_thread = patched ? patched("thread") : -2;
    early_patched_nanosleep = patched ? patched("nanosleep") : -2;
}
