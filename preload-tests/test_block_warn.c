/* The blocking detector (issue 14 §1) and the escapes table (§3): a green thread blocks its OS
 * thread in a call no hook makes green (a raw syscall(SYS_read) on a pipe) while main, another
 * thread of the hub, waits for a timer it cannot fire meanwhile. With GREENWORLD_BLOCK_WARN=50
 * one line names the call (read) and the thread while it lasts, and one more its total when it
 * ends; GREENWORLD_ESCAPES=1 prints a table at exit whose row names read; with neither, the
 * library says nothing. Green only: the test runs itself in a child with each environment
 * (argv[1] == "--child"); a process of its own writes the pipe 300 ms later.
 * A green thread that spins a second in its own code with preemption off (GREENWORLD_PREEMPT=0)
 * is named too, as running its own code ("--spin"). Each warning carries a backtrace of the
 * blocked thread naming two of the test's functions, callee first.
 * Under the preload before the monitor existed: no line at all. */
#include "gwtest.h"
#include <pthread.h>
#include <sys/syscall.h>

static int pipe_fds[2];

/* Called, not inlined, and not a tail call: the warning's backtrace has read_raw then
 * raw_reader. */
__attribute__((noinline)) static long read_raw(int fd) {
    char c;
    long n = syscall(SYS_read, fd, &c, 1);
    __asm__ volatile("" ::: "memory");
    return n;
}

static void *raw_reader(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "raw-reader");
    long n = read_raw(pipe_fds[0]);
    __asm__ volatile("" ::: "memory");
    return (void *)n;
}

static int child(void) {
    CHECK_EQ(pipe(pipe_fds), 0);
    pid_t writer = fork();
    CHECK(writer >= 0, "fork: %s", strerror(errno));
    if (writer == 0) {
        usleep(300 * 1000);
        if (write(pipe_fds[1], "x", 1) != 1) _exit(1);
        _exit(0);
    }
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, raw_reader, NULL), 0);
    usleep(1000); /* the reader runs, and blocks the OS thread until the writer writes */
    void *n;
    CHECK_EQ(pthread_join(t, &n), 0);
    CHECK_EQ((long)n, 1);
    usleep(50 * 1000); /* the monitor, which samples every few ms, sees the episode end */
    int status;
    CHECK_EQ(waitpid(writer, &status, 0), writer);
    printf("CHILD DONE\n");
    fflush(stdout);
    return 0;
}

/* As read_raw: the spinner's backtrace has spin_for then spin_thread. */
__attribute__((noinline)) static long spin_for(long ms) {
    long long t0 = gw_now_ns();
    long turns = 0;
    while (gw_now_ns() - t0 < ms * 1000000LL) turns++;
    __asm__ volatile("" ::: "memory");
    return turns;
}

static void *spin_thread(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "spinner");
    long turns = spin_for(1000);
    __asm__ volatile("" ::: "memory");
    return (void *)turns;
}

static int spin_child(void) {
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, spin_thread, NULL), 0);
    usleep(1000); /* the spinner runs, and keeps the hub for a second: the 50 ms warning has
                    * twenty looks of the monitor to be seen in, even on a loaded machine */
    CHECK_EQ(pthread_join(t, NULL), 0);
    usleep(50 * 1000);
    printf("CHILD DONE\n");
    fflush(stdout);
    return 0;
}

static char out[16384];

static void run_as(const char *how, const char *a, const char *b) {
    const char *env[] = {"-GREENWORLD_BLOCK_WARN", "-GREENWORLD_ESCAPES", "-GREENWORLD_LOG", "-GREENWORLD_PREEMPT",
                         a, b, NULL};
    int status = gw_run_self(env, out, sizeof out, how, NULL);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s %s: status %d: %s", a, b ? b : "", status, out);
    CHECK(strstr(out, "CHILD DONE\n"), "%s: %s", a, out);
}

static void run(const char *a, const char *b) { run_as("--child", a, b); }

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--child") == 0) return child();
    if (argc > 1 && strcmp(argv[1], "--spin") == 0) return spin_child();
    if (!gw_preloaded()) return GW_SKIP;
    gw_watchdog("test_block_warn", 30);

    gw_phase = "GREENWORLD_BLOCK_WARN=50";
    run("GREENWORLD_BLOCK_WARN=50", NULL);
    const char *warned = strstr(out, "greenworld: hub of OS thread ");
    CHECK(warned && strstr(warned, " in read, a call no hook makes green"), "no warning naming read: %s", out);
    CHECK(strstr(warned, "'raw-reader'"), "the warning does not name the thread: %s", out);
    /* A backtrace of the blocked thread, with the test's own functions named (from its symbol
     * table: they are static; gcc may suffix a clone's name, e.g. ".constprop.0"), the callee
     * first. */
    const char *callee = strstr(warned, "greenworld:     #");
    callee = callee ? strstr(callee, " read_raw") : NULL;
    CHECK(callee && strstr(callee, " raw_reader"), "no backtrace read_raw <- raw_reader: %s", out);
    CHECK(strstr(out, "ran again after ") && strstr(out, " ms blocked in read"), "no end line: %s", out);
    CHECK(!strstr(strstr(warned, "\n"), " in read, a call no hook"), "warned twice for one episode: %s", out);

    gw_phase = "GREENWORLD_ESCAPES=1";
    run("GREENWORLD_ESCAPES=1", NULL);
    CHECK(strstr(out, "greenworld: escapes: read count=1 "), "no escapes row for read: %s", out);
    CHECK(!strstr(out, "greenworld: hub of OS thread"), "warned without GREENWORLD_BLOCK_WARN: %s", out);

    gw_phase = "a spinner with preemption off";
    run_as("--spin", "GREENWORLD_BLOCK_WARN=50", "GREENWORLD_PREEMPT=0");
    warned = strstr(out, "greenworld: hub of OS thread ");
    CHECK(warned && strstr(warned, "has run green thread") && strstr(warned, "'spinner'") &&
              strstr(warned, "in its own code (no system call)"),
          "no warning naming the spinner: %s", out);
    CHECK(strstr(out, "ms in one thread's own code"), "no end line: %s", out);
    callee = strstr(warned, "greenworld:     #");
    callee = callee ? strstr(callee, " spin_for") : NULL;
    CHECK(callee && strstr(callee, " spin_thread"), "no backtrace spin_for <- spin_thread: %s", out);

    gw_phase = "neither";
    run("GREENWORLD_BLOCK_WARN=off", NULL);
    CHECK(!strstr(out, "greenworld:"), "the library said something: %s", out);
    return 0;
}
