#include "gwtest.h"
/* Hooked calls made from another library's constructor, before greenworld's own constructor has
 * run (libearly is a DT_NEEDED dependency, so it is initialised first): nanosleep sleeps,
 * pthread_create + pthread_join deliver the value, and greenworld_is_monkey_patched is already
 * answering (under the preload), with the thread green (one OS thread). */
// link: libearly
#include <pthread.h>

extern int early_sleep_rc, early_create_rc, early_join_rc, early_thread_os_threads;
extern int early_patched_thread, early_patched_nanosleep;
extern long long early_sleep_ns;
extern long early_join_value;

static void *later_thread(void *arg) {
    usleep(1000);
    return arg;
}

int main(void) {
    CHECK_EQ(early_sleep_rc, 0);
    CHECK(early_sleep_ns >= 10 * 1000 * 1000 && early_sleep_ns < 1000 * 1000 * 1000LL,
          "the constructor's 10 ms nanosleep took %lld ns", early_sleep_ns);
    CHECK_EQ(early_create_rc, 0);
    CHECK_EQ(early_join_rc, 0);
    CHECK_EQ(early_join_value, 42);
    if (gw_preloaded()) {
        CHECK_EQ(early_patched_thread, 1);
        CHECK_EQ(early_patched_nanosleep, 1);
        CHECK(early_thread_os_threads == 1, "the constructor's thread ran beside %d OS threads (not green)",
              early_thread_os_threads);
    } else {
        CHECK_EQ(early_patched_thread, -2);
        CHECK_EQ(early_patched_nanosleep, -2);
        CHECK(early_thread_os_threads >= 2, "natively the constructor's thread is an OS thread: %d",
              early_thread_os_threads);
    }
    /* The library keeps working once main runs. */
    pthread_t t;
    void *ret = NULL;
    CHECK_EQ(pthread_create(&t, NULL, later_thread, (void *)5), 0);
    CHECK_EQ(pthread_join(t, &ret), 0);
    CHECK_EQ((intptr_t)ret, 5);
    return 0;
}
