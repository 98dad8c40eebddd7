/* greenworld_is_monkey_patched: eventlet's is_monkey_patched for subsystems and hooked
 * functions; -1 for names the library does not know. */
#include "gwtest.h"

int main(void) {
    if (!gw_preloaded()) return GW_SKIP;
    const char *subsystems[] = {"os", "select", "socket", "thread", "time"};
    for (int i = 0; i < 5; i++) CHECK_EQ(gw_patched(subsystems[i]), 1);
    const char *hooked[] = {"pthread_create", "pthread_join", "pthread_tryjoin_np", "pthread_timedjoin_np",
                            "pthread_clockjoin_np", "pthread_detach", "pthread_exit", "pthread_self",
                            "pthread_equal", "pthread_setname_np", "pthread_getname_np", "pthread_getattr_np",
                            "pthread_kill", "pthread_cancel", "pthread_key_create", "pthread_key_delete",
                            "pthread_getspecific", "pthread_setspecific", "sched_yield", "thrd_create", "thrd_join",
                            "thrd_detach", "thrd_exit", "thrd_current", "thrd_equal", "thrd_yield", "nanosleep",
                            "clock_nanosleep", "usleep", "sleep", "thrd_sleep", "pthread_mutex_lock",
                            "pthread_cond_wait", "sem_wait", "pthread_barrier_wait", "pthread_once", "mtx_lock",
                            "call_once", "socket", "accept", "recv", "sendmsg", "read", "write", "pipe", "close",
                            "fcntl", "fork", "poll", "select", "epoll_wait", "__read_chk", "__poll_chk"};
    for (size_t i = 0; i < sizeof hooked / sizeof hooked[0]; i++)
        CHECK(gw_patched(hooked[i]) == 1, "%s: %d", hooked[i], gw_patched(hooked[i]));
    CHECK_EQ(gw_patched("no_such_thing"), -1);
    CHECK_EQ(gw_patched("psycopg"), -1);
    CHECK_EQ(gw_patched("open"), -1);
    CHECK_EQ(gw_patched(""), -1);
    CHECK_EQ(gw_patched("Socket"), -1);
    int (*f)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "greenworld_is_monkey_patched");
    CHECK_EQ(f(NULL), -1);
    return 0;
}
