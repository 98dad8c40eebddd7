/* A library whose constructor calls hooked functions. It is a dependency of test_early_ctor,
 * so it is initialised before the preloaded libgreenworld.so runs its own constructor: the
 * library must configure itself on first use (trap 3). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <time.h>

int early_sleep_rc = -99;
long early_sleep_ns = -1;
int early_join_rc = -99;
long early_join_value = -1;
int early_patched = -99;

static void *early_thread(void *arg) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
    return (void *)((long)arg * 2);
}

__attribute__((constructor)) static void early(void) {
    struct timespec a, b, ts = {0, 10 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &a);
    early_sleep_rc = nanosleep(&ts, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    early_sleep_ns = (b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec);
    pthread_t t;
    void *value = NULL;
    early_join_rc = pthread_create(&t, NULL, early_thread, (void *)21);
    if (early_join_rc == 0) early_join_rc = pthread_join(t, &value);
    early_join_value = (long)value;
    int (*patched)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "greenworld_is_monkey_patched");
    early_patched = patched ? patched("thread") : -2;
}
