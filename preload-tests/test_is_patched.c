#include "gwtest.h"
/* greenworld_is_monkey_patched, eventlet's is_monkey_patched: 1/0 for the five subsystem names
 * and for every hooked function name (a function answers what its subsystem answers; the
 * file-only os calls, such as pread, also need GREENWORLD_FILEIO=pool), -1 for a name the
 * library does not know, for "" and for NULL. Green only. The test re-runs itself
 * (argv[1] == "--child") with a clean environment and with each subsystem alone patched, so
 * every function is checked against the right subsystem, then with GREENWORLD_FILEIO=pool. */

enum { OS, SELECT, SOCKET, THREAD, TIME, NSUB };
static const char *const subsystems[NSUB] = {"os", "select", "socket", "thread", "time"};
static const char *const env_names[NSUB] = {"GREENWORLD_OS=1", "GREENWORLD_SELECT=1", "GREENWORLD_SOCKET=1",
                                            "GREENWORLD_THREAD=1", "GREENWORLD_TIME=1"};

/* Every hooked function named in the interface, with its subsystem. */
static const struct {
    const char *name;
    int sub;
} hooked[] = {
    /* threads */
    {"pthread_create", THREAD}, {"pthread_join", THREAD}, {"pthread_tryjoin_np", THREAD},
    {"pthread_timedjoin_np", THREAD}, {"pthread_clockjoin_np", THREAD}, {"pthread_detach", THREAD},
    {"pthread_exit", THREAD}, {"pthread_self", THREAD}, {"pthread_equal", THREAD},
    {"pthread_setname_np", THREAD}, {"pthread_getname_np", THREAD}, {"pthread_getattr_np", THREAD},
    {"pthread_kill", THREAD}, {"pthread_cancel", THREAD}, {"pthread_key_create", THREAD},
    {"pthread_key_delete", THREAD}, {"pthread_getspecific", THREAD}, {"pthread_setspecific", THREAD},
    {"sched_yield", THREAD}, {"thrd_create", THREAD}, {"thrd_join", THREAD}, {"thrd_detach", THREAD},
    {"thrd_exit", THREAD}, {"thrd_current", THREAD}, {"thrd_equal", THREAD}, {"thrd_yield", THREAD},
    /* synchronisation (thread subsystem) */
    {"pthread_mutex_lock", THREAD}, {"pthread_mutex_trylock", THREAD}, {"pthread_mutex_timedlock", THREAD},
    {"pthread_mutex_clocklock", THREAD}, {"pthread_mutex_unlock", THREAD}, {"pthread_cond_wait", THREAD},
    {"pthread_cond_timedwait", THREAD}, {"pthread_cond_clockwait", THREAD}, {"pthread_cond_signal", THREAD},
    {"pthread_cond_broadcast", THREAD}, {"pthread_rwlock_rdlock", THREAD}, {"pthread_rwlock_tryrdlock", THREAD},
    {"pthread_rwlock_timedrdlock", THREAD}, {"pthread_rwlock_clockrdlock", THREAD},
    {"pthread_rwlock_wrlock", THREAD}, {"pthread_rwlock_trywrlock", THREAD},
    {"pthread_rwlock_timedwrlock", THREAD}, {"pthread_rwlock_clockwrlock", THREAD},
    {"pthread_rwlock_unlock", THREAD}, {"sem_wait", THREAD}, {"sem_trywait", THREAD},
    {"sem_timedwait", THREAD}, {"sem_clockwait", THREAD}, {"sem_post", THREAD},
    {"pthread_barrier_wait", THREAD}, {"pthread_once", THREAD}, {"mtx_lock", THREAD}, {"mtx_trylock", THREAD},
    {"mtx_timedlock", THREAD}, {"mtx_unlock", THREAD}, {"cnd_wait", THREAD}, {"cnd_timedwait", THREAD},
    {"cnd_signal", THREAD}, {"cnd_broadcast", THREAD}, {"call_once", THREAD},
    /* time */
    {"nanosleep", TIME}, {"clock_nanosleep", TIME}, {"usleep", TIME}, {"sleep", TIME}, {"thrd_sleep", TIME},
    /* socket */
    {"socket", SOCKET}, {"socketpair", SOCKET}, {"connect", SOCKET}, {"accept", SOCKET}, {"accept4", SOCKET},
    {"recv", SOCKET}, {"recvfrom", SOCKET}, {"recvmsg", SOCKET}, {"recvmmsg", SOCKET}, {"send", SOCKET},
    {"sendto", SOCKET}, {"sendmsg", SOCKET}, {"sendmmsg", SOCKET}, {"sendfile", SOCKET},
    {"setsockopt", SOCKET}, {"__recv_chk", SOCKET}, {"__recvfrom_chk", SOCKET},
    /* os */
    {"pipe", OS}, {"pipe2", OS}, {"read", OS}, {"write", OS}, {"readv", OS}, {"writev", OS},
    {"__read_chk", OS}, {"close", OS}, {"dup", OS}, {"dup2", OS}, {"dup3", OS}, {"fcntl", OS},
    {"fcntl64", OS}, {"ioctl", OS},
    /* select */
    {"poll", SELECT}, {"ppoll", SELECT}, {"__poll_chk", SELECT}, {"__ppoll_chk", SELECT}, {"select", SELECT},
    {"pselect", SELECT}, {"epoll_wait", SELECT}, {"epoll_pwait", SELECT}, {"epoll_pwait2", SELECT},
};
enum { HOOKED = sizeof hooked / sizeof hooked[0] };

/* os calls that only offload regular-file I/O: 1 only when os is patched and
 * GREENWORLD_FILEIO=pool. */
static const char *const file_only[] = {"open", "open64", "openat", "openat64", "__open_2", "__open64_2",
                                        "__openat_2", "__openat64_2", "creat", "creat64", "pread", "pread64",
                                        "__pread_chk", "__pread64_chk", "pwrite", "pwrite64", "fsync",
                                        "fdatasync"};

/* Names the library does not hook (init/destroy/getvalue stay glibc's) or that are no names. */
static const char *const unknown[] = {"no_such_thing", "", "getpid", "pthread_mutex_init",
                                      "pthread_cond_destroy", "sem_getvalue", "pthread_create ", "threads"};

/* only < 0: nothing set, all patched; else only that subsystem patched. */
static int child(int only) {
    for (int s = 0; s < NSUB; s++) {
        int want = only < 0 || only == s;
        CHECK(gw_patched(subsystems[s]) == want, "[only %s] subsystem %s: %d, want %d",
              only < 0 ? "-" : subsystems[only], subsystems[s], gw_patched(subsystems[s]), want);
    }
    for (int i = 0; i < HOOKED; i++) {
        int want = only < 0 || only == hooked[i].sub;
        CHECK(gw_patched(hooked[i].name) == want, "[only %s] %s (%s): %d, want %d",
              only < 0 ? "-" : subsystems[only], hooked[i].name, subsystems[hooked[i].sub],
              gw_patched(hooked[i].name), want);
    }
    const char *fileio = getenv("GREENWORLD_FILEIO");
    int pool = fileio && strcmp(fileio, "pool") == 0;
    for (size_t i = 0; i < sizeof file_only / sizeof file_only[0]; i++) {
        int want = (only < 0 || only == OS) && pool;
        CHECK(gw_patched(file_only[i]) == want, "[only %s, FILEIO=%s] %s: %d, want %d",
              only < 0 ? "-" : subsystems[only], fileio ? fileio : "(unset)", file_only[i],
              gw_patched(file_only[i]), want);
    }
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        CHECK(gw_patched(unknown[i]) == -1, "'%s': %d, want -1", unknown[i], gw_patched(unknown[i]));
    int (*f)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "greenworld_is_monkey_patched");
    CHECK(f != NULL, "greenworld_is_monkey_patched is not exported");
    CHECK_EQ(f(NULL), -1);
    printf("child ok\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "--child") == 0) return child(atoi(argv[2]));
    if (!gw_preloaded()) return GW_SKIP;
    char out[8192];
    /* Every subsystem alone with FILEIO unset; then FILEIO=pool with all, os alone, thread alone. */
    static const struct {
        int only;
        const char *fileio;
    } runs[] = {{-1, "-GREENWORLD_FILEIO"}, {OS, "-GREENWORLD_FILEIO"}, {SELECT, "-GREENWORLD_FILEIO"},
                {SOCKET, "-GREENWORLD_FILEIO"}, {THREAD, "-GREENWORLD_FILEIO"}, {TIME, "-GREENWORLD_FILEIO"},
                {-1, "GREENWORLD_FILEIO=pool"}, {OS, "GREENWORLD_FILEIO=pool"}, {THREAD, "GREENWORLD_FILEIO=pool"}};
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        int only = runs[r].only;
        char arg[8];
        snprintf(arg, sizeof arg, "%d", only);
        const char *env[] = {"-GREENWORLD_OS", "-GREENWORLD_SELECT", "-GREENWORLD_SOCKET", "-GREENWORLD_THREAD",
                             "-GREENWORLD_TIME", "-GREENWORLD_STATUS", "-GREENWORLD_STATS", runs[r].fileio,
                             only < 0 ? NULL : env_names[only], NULL};
        int status = gw_run_self(env, out, sizeof out, "--child", arg, NULL);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && strstr(out, "child ok\n"),
              "only=%s %s: status %d: %s", only < 0 ? "(none)" : subsystems[only], runs[r].fileio, status, out);
    }
    return 0;
}
