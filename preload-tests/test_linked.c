// link: greenworld
#include "gwtest.h"
#include <pthread.h>
#include "greenworld.h"
/* A program linked with the library on purpose (eventlet: importing a library must not change
 * the program). Natively the library is linked and not preloaded: it patches nothing until
 * greenworld_monkey_patch, so a thread is an OS thread, a read on an empty pipe blocks that OS
 * thread in the kernel, and sigaction installs the program's own handler (the GREENWORLD_
 * variables are read, and a malformed one stops it, but they patch nothing). Under the preload
 * the environment has patched everything already. Then, in both runs: monkey_patch(GW_THREAD |
 * GW_TIME), called from a thread and again from main, turns those two on (and only those,
 * linked); the handler installed before now runs through the library; the threads made before
 * stay OS threads and join as such; 1000 sleeping threads made after run on one OS thread. */

static int pipe_fds[2];
static volatile pid_t reader_tid;

static void *reader(void *arg) {
    (void)arg;
    reader_tid = (pid_t)syscall(SYS_gettid);
    char c;
    ssize_t n = read(pipe_fds[0], &c, 1);
    return (void *)(intptr_t)(n == 1 && c == 'x');
}

static void *patcher(void *arg) {
    (void)arg;
    return (void *)(intptr_t)greenworld_monkey_patch(GW_THREAD | GW_TIME);
}

static void *sleeper(void *arg) {
    (void)arg;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return NULL;
}

static volatile sig_atomic_t usr1_seen;
static void on_usr1(int sig) { (void)sig; usr1_seen++; }

/* The handler the kernel holds for `sig` (the library's trampoline when it wraps handlers). */
static void *kernel_handler(int sig) {
    struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } k;
    CHECK(syscall(SYS_rt_sigaction, sig, NULL, &k, 8) == 0, "rt_sigaction: %s", strerror(errno));
    return k.handler;
}

/* Linked, the variables are still read: a malformed one stops the program, and the status line
 * says what is patched at load (nothing, unless preloaded). */
static void environment(int preloaded) {
    char out[4096];
    const char *bad[] = {"GREENWORLD_TIME=maybe", NULL};
    int status = gw_run_self(bad, out, sizeof out, "--child", NULL);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2 && strstr(out, "GREENWORLD_TIME='maybe' is not valid"),
          "status %d: %s", status, out);
    const char *report[] = {"GREENWORLD_STATUS=1", NULL};
    status = gw_run_self(report, out, sizeof out, "--child", NULL);
    const char *want = preloaded ? "greenworld: os=patched select=patched socket=patched thread=patched time=patched "
                                           "psycopg=patched version="
                                 : "greenworld: os=not-patched select=not-patched socket=not-patched "
                                   "thread=not-patched time=not-patched psycopg=not-patched version=";
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && strstr(out, want), "status %d: %s", status, out);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--child") == 0) return 0;
    const char *preload = getenv("LD_PRELOAD");
    int preloaded = preload && strstr(preload, "libgreenworld");
    gw_watchdog("test_linked", 60);
    environment(preloaded);
    static const char *const subsystems[] = {"os", "select", "socket", "thread", "time"};
    for (int i = 0; i < 5; i++)
        CHECK(greenworld_is_monkey_patched(subsystems[i]) == preloaded, "%s: %d", subsystems[i],
              greenworld_is_monkey_patched(subsystems[i]));

    /* Before any monkey_patch. */
    gw_phase = "blocking read";
    CHECK(pipe(pipe_fds) == 0, "pipe");
    pthread_t r;
    CHECK_EQ(pthread_create(&r, NULL, reader, NULL), 0);
    if (preloaded) {
        usleep(50 * 1000);
        CHECK_EQ(gw_os_threads(), 1);
    } else {
        while (reader_tid == 0 || gw_blocked_in(getpid(), reader_tid) != SYS_read) usleep(1000);
        CHECK(reader_tid != (pid_t)syscall(SYS_gettid), "the reader has the main thread's tid");
        CHECK_EQ(gw_os_threads(), 2);
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
    if (preloaded)
        CHECK(kernel_handler(SIGUSR1) != (void *)on_usr1, "the preloaded library does not wrap handlers");
    else
        CHECK(kernel_handler(SIGUSR1) == (void *)on_usr1, "linked, the library wrapped a handler");

    /* From a thread made before, then again from main; twice is the same as once. */
    gw_phase = "monkey_patch";
    pthread_t p;
    void *rc;
    CHECK_EQ(pthread_create(&p, NULL, patcher, NULL), 0);
    CHECK_EQ(pthread_join(p, &rc), 0);
    CHECK_EQ((intptr_t)rc, 0);
    CHECK_EQ(greenworld_monkey_patch(GW_THREAD | GW_TIME), 0);
    CHECK_EQ(greenworld_monkey_patch(GW_TIME), 0);
    CHECK_EQ(greenworld_monkey_patch(GW_PSYCOPG | 0x40), EINVAL);
    /* libpq's calls are green only with every subsystem (or GW_PSYCOPG: test-postgres). */
    CHECK_EQ(greenworld_is_monkey_patched("psycopg"), preloaded);
    CHECK_EQ(greenworld_monkey_patch(0x40), EINVAL);
    for (int i = 0; i < 5; i++) {
        int want = preloaded || strcmp(subsystems[i], "thread") == 0 || strcmp(subsystems[i], "time") == 0;
        CHECK(greenworld_is_monkey_patched(subsystems[i]) == want, "%s: %d, want %d", subsystems[i],
              greenworld_is_monkey_patched(subsystems[i]), want);
    }

    /* The reader made before stays what it was, and joins. */
    gw_phase = "reader join";
    CHECK_EQ(write(pipe_fds[1], "x", 1), 1);
    CHECK_EQ(pthread_join(r, &rc), 0);
    CHECK_EQ((intptr_t)rc, 1);
    CHECK_EQ(gw_os_threads(), 1);

    /* The handler installed before is the library's to wrap now (a green wait sees it), and
     * sigaction still reports the program's own. */
    CHECK(kernel_handler(SIGUSR1) != (void *)on_usr1, "the handler installed before is not wrapped");
    struct sigaction old;
    CHECK_EQ(sigaction(SIGUSR1, NULL, &old), 0);
    CHECK(old.sa_handler == on_usr1, "sigaction reports %p, not the program's handler", (void *)old.sa_handler);
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(usr1_seen, 1);

    gw_phase = "1000 sleepers";
    enum { N = 1000 };
    static pthread_t t[N];
    for (int i = 0; i < N; i++) CHECK_EQ(pthread_create(&t[i], NULL, sleeper, NULL), 0);
    CHECK_EQ(gw_os_threads(), 1);
    for (int i = 0; i < N; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK_EQ(gw_os_threads(), 1);
    printf("linked ok (%s)\n", preloaded ? "preloaded" : "not preloaded");
    return 0;
}
