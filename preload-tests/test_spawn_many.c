/* Processes from many green threads at once: system("true"), popen + pclose, and posix_spawn +
 * waitpid, 50 of each in parallel; every child is run and reaped with its status. Then the
 * waits of system and pclose for a slow child let other threads run meanwhile (a ticker keeps
 * ticking), with the child's status as the result. Last, a read that waits while 20 children
 * of system come and go is not interrupted by their SIGCHLD (no handler: natively nothing
 * interrupts it), and gets the bytes written after them.
 * Then 20 system() calls that can only finish together: each shell adds a line to a file and
 * waits until the file has 20 (natively 20 threads run them at once; a library that ran them
 * a few at a time would never see 20). While they run, SIGINT and SIGQUIT are ignored (as glibc
 * does for the duration of any system call); afterwards the program's actions are back. */
#include "gwtest.h"
#include <pthread.h>
#include <spawn.h>

extern char **environ;
enum { EACH = 50 };
static int ok_system, ok_popen, ok_spawn;

static void *by_system(void *arg) {
    if (system("exit 3") != -1 && system("true") == 0) __atomic_add_fetch(&ok_system, 1, __ATOMIC_SEQ_CST);
    return arg;
}

static void *by_popen(void *arg) {
    FILE *f = popen("echo hi", "r");
    char line[16] = {0};
    int good = f && fgets(line, sizeof line, f) && strcmp(line, "hi\n") == 0;
    if (f && pclose(f) != 0) good = 0;
    if (good) __atomic_add_fetch(&ok_popen, 1, __ATOMIC_SEQ_CST);
    return arg;
}

static int g_pipe[2];
static volatile ssize_t g_read = -2;
static volatile int g_read_errno;

static void *read_pipe(void *arg) {
    char buf[8];
    g_read = read(g_pipe[0], buf, sizeof buf);
    g_read_errno = errno;
    return arg;
}

static void *by_spawn(void *arg) {
    pid_t pid;
    char *argv[] = {"/bin/sh", "-c", "exit 7", NULL};
    int status = 0;
    if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) == 0 && waitpid(pid, &status, 0) == pid &&
        WIFEXITED(status) && WEXITSTATUS(status) == 7)
        __atomic_add_fetch(&ok_spawn, 1, __ATOMIC_SEQ_CST);
    return arg;
}

enum { TOGETHER = 20 };
static char g_together_file[64];
static int g_together_ok;

static void *system_together(void *arg) {
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "echo x >> %s; for i in $(seq 1 600); do [ $(wc -l < %s) -ge %d ] && exit 0; sleep 0.05; done; exit 1",
             g_together_file, g_together_file, TOGETHER);
    if (system(cmd) == 0) __atomic_add_fetch(&g_together_ok, 1, __ATOMIC_SEQ_CST);
    return arg;
}

static void on_int(int sig) { (void)sig; }

static void systems_together(void) {
    struct sigaction mine = {.sa_handler = on_int}, seen;
    sigemptyset(&mine.sa_mask);
    CHECK_EQ(sigaction(SIGINT, &mine, NULL), 0);
    snprintf(g_together_file, sizeof g_together_file, "/tmp/gw-system-together.%d", (int)getpid());
    unlink(g_together_file);
    pthread_t t[TOGETHER];
    for (int i = 0; i < TOGETHER; i++) CHECK_EQ(pthread_create(&t[i], NULL, system_together, NULL), 0);
    /* Wait until a shell has started (the file exists): a system call is running now. */
    for (int i = 0; i < 2000 && access(g_together_file, F_OK) != 0; i++) usleep(1000);
    CHECK_EQ(sigaction(SIGINT, NULL, &seen), 0);
    CHECK(seen.sa_handler == SIG_IGN, "SIGINT is not ignored while system() runs");
    CHECK_EQ(sigaction(SIGQUIT, NULL, &seen), 0);
    CHECK(seen.sa_handler == SIG_IGN, "SIGQUIT is not ignored while system() runs");
    for (int i = 0; i < TOGETHER; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    unlink(g_together_file);
    CHECK(g_together_ok == TOGETHER, "%d of %d system() calls saw all %d running at once", g_together_ok, TOGETHER,
          TOGETHER);
    CHECK_EQ(sigaction(SIGINT, NULL, &seen), 0);
    CHECK(seen.sa_handler == on_int, "SIGINT's handler is not back after system()");
    CHECK_EQ(sigaction(SIGQUIT, NULL, &seen), 0);
    CHECK(seen.sa_handler == SIG_DFL, "SIGQUIT is not back to default after system()");
}

int main(void) {
    pthread_t t[3 * EACH];
    for (int i = 0; i < EACH; i++) {
        CHECK_EQ(pthread_create(&t[3 * i], NULL, by_system, NULL), 0);
        CHECK_EQ(pthread_create(&t[3 * i + 1], NULL, by_popen, NULL), 0);
        CHECK_EQ(pthread_create(&t[3 * i + 2], NULL, by_spawn, NULL), 0);
    }
    for (int i = 0; i < 3 * EACH; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK(ok_system == EACH && ok_popen == EACH && ok_spawn == EACH, "system %d, popen %d, posix_spawn %d of %d",
          ok_system, ok_popen, ok_spawn, EACH);
    /* Every child was reaped. */
    errno = 0;
    CHECK_EQ(waitpid(-1, NULL, WNOHANG), -1);
    CHECK_EQ(errno, ECHILD);

    pthread_t tick;
    CHECK_EQ(pthread_create(&tick, NULL, gw_ticker, NULL), 0);
    long t0 = gw_ticks;
    int status = system("sleep 0.5; exit 3");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3, "system status %#x", status);
    CHECK(gw_ticks - t0 >= 50, "only %ld ticks while system waited", gw_ticks - t0);
    CHECK(system(NULL) != 0, "system(NULL) says there is no shell");
    FILE *f = popen("sleep 0.5; exit 5", "r");
    CHECK(f != NULL, "popen: %s", strerror(errno));
    t0 = gw_ticks;
    status = pclose(f);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 5, "pclose status %#x", status);
    CHECK(gw_ticks - t0 >= 50, "only %ld ticks while pclose waited", gw_ticks - t0);
    gw_ticker_stop = 1;
    CHECK_EQ(pthread_join(tick, NULL), 0);

    pthread_t reader;
    CHECK_EQ(pipe(g_pipe), 0);
    CHECK_EQ(pthread_create(&reader, NULL, read_pipe, NULL), 0);
    for (int i = 0; i < 20; i++) CHECK_EQ(system("true"), 0);
    CHECK_EQ(write(g_pipe[1], "after", 5), 5);
    CHECK_EQ(pthread_join(reader, NULL), 0);
    CHECK(g_read == 5, "read returned %zd (%s)", g_read, strerror(g_read_errno));

    systems_together();
    return 0;
}
