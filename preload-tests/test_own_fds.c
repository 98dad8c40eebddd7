/* A program owns every descriptor it can name, and daemons and shells act on that: they close
 * every number above stderr in a loop, or dup2 over a range of numbers. Natively that touches
 * nothing but the program's own files; under the preload it must not touch the library's (each
 * hub's epoll and eventfd, its copy of stderr) either:
 *   close-loop: green threads sleep while `for (fd = 3; fd < limit; fd++) close(fd)` runs; then
 *     no number from 3 up is open as far as the program can see (fcntl F_GETFD fails EBADF),
 *     and new green threads still sleep and pass data through a new pipe;
 *   dup-up: after that loop, dup gives consecutive numbers from 3 up to 1000, and
 *     fcntl(F_DUPFD / F_DUPFD_CLOEXEC, min) gives min itself for every min below the limit;
 *   close-range: close_range and closefrom over every number from 3;
 *   raw-close-range: close_range made with syscall(), which the hooks may not see: the hub
 *     makes a fresh poller (saying so in one line at most) instead of failing in a loop;
 *   raw-close-loop, raw-dup2-over: the close loop and the dup2 range made with syscall()
 *     (libuv closes that way): `syscall` is hooked for them, so the library's descriptors are
 *     passed over exactly as through close and dup2, and nothing at all is said;
 *   dup2-over: the same with `dup2(devnull, fd)` over every number from 3 to 1000, then a close
 *     of them all, with GREENWORLD_STATS=1: the stats line still reaches stderr.
 * Each runs in a child (stdout and stderr on a pipe) that must end well within its watchdog and
 * print nothing but its own lines and, for dup2-over, the stats line: no "greenworld: error"
 * storm of a poller whose epoll was closed under it. */
#include "gwtest.h"
#include <pthread.h>
#include <sys/resource.h>

static int g_pipe[2];

static void *writer(void *arg) {
    for (int i = 0; i < 20; i++) {
        char c = (char)('a' + i);
        usleep(1000);
        CHECK_EQ(write(g_pipe[1], &c, 1), 1);
    }
    return arg;
}

static void *reader(void *arg) {
    for (int i = 0; i < 20; i++) {
        char c;
        CHECK_EQ(read(g_pipe[0], &c, 1), 1);
        CHECK_EQ(c, 'a' + i);
    }
    return arg;
}

static void no_fd_open_from_3(void) {
    for (int fd = 3; fd < 1024; fd++) {
        errno = 0;
        CHECK(fcntl(fd, F_GETFD) == -1 && errno == EBADF, "fd %d is still open after the loop", fd);
    }
}

static volatile int g_spin_stop;

/* Computes until told to stop: the monitor keeps looking at its hub to preempt it. */
static void *spinner(void *arg) {
    while (!g_spin_stop) {
    }
    return arg;
}

/* Green threads sleep through `clobber`, then new ones sleep and talk through a pipe. Right
 * after `clobber`, while the sleepers wake on their hubs (each hub's first spins) and two
 * threads compute (the monitor preempts them, wakers ask it to), nothing from 3 up opens. */
static void around(void (*clobber)(void)) {
    pthread_t t[4], s[2];
    for (int i = 0; i < 4; i++) CHECK_EQ(pthread_create(&t[i], NULL, gw_ticker, NULL), 0);
    usleep(10000);
    clobber();
    for (int i = 0; i < 2; i++) CHECK_EQ(pthread_create(&s[i], NULL, spinner, NULL), 0);
    for (int round = 0; round < 200; round++) no_fd_open_from_3();
    g_spin_stop = 1;
    for (int i = 0; i < 2; i++) CHECK_EQ(pthread_join(s[i], NULL), 0);
    usleep(10000);
    gw_ticker_stop = 1;
    for (int i = 0; i < 4; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    no_fd_open_from_3();
    CHECK_EQ(pipe(g_pipe), 0);
    pthread_t w, r;
    CHECK_EQ(pthread_create(&r, NULL, reader, NULL), 0);
    CHECK_EQ(pthread_create(&w, NULL, writer, NULL), 0);
    CHECK_EQ(pthread_join(w, NULL), 0);
    CHECK_EQ(pthread_join(r, NULL), 0);
    struct timespec ts = {0, 5 * 1000 * 1000};
    CHECK_EQ(nanosleep(&ts, NULL), 0);
    close(g_pipe[0]);
    close(g_pipe[1]);
}

static int limit(void) {
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    return rl.rlim_cur > 1024 ? 1024 : (int)rl.rlim_cur;
}

static void close_loop(void) {
    for (int fd = 3; fd < limit(); fd++) close(fd);
}

static void dup2_over(void) {
    int devnull = open("/dev/null", O_RDWR);
    CHECK(devnull >= 0);
    int top = limit() - 24 < 1000 ? limit() - 24 : 1000;
    for (int fd = 3; fd <= top; fd++)
        if (fd != devnull) CHECK_EQ(dup2(devnull, fd), fd);
    for (int fd = 3; fd <= top; fd++) CHECK_EQ(close(fd), 0);
}

static void close_range_libc(void) {
    int devnull = open("/dev/null", O_RDWR);
    CHECK(devnull >= 3);
    CHECK_EQ(close_range(3, 10, 0), 0);
    CHECK(fcntl(devnull, F_GETFD) < 0);
    CHECK_EQ(close_range(3, ~0U, CLOSE_RANGE_CLOEXEC), 0);
    CHECK_EQ(close_range(3, ~0U, 0), 0);
    CHECK(open("/dev/null", O_RDWR) >= 3);
    closefrom(3);
}

/* Behind the hooks' back (unless `syscall` itself is hooked): the library may lose its
 * descriptors, and must recover rather than spin. */
static void close_range_raw(void) {
    CHECK_EQ(syscall(SYS_close_range, 3U, ~0U, 0), 0);
}

static void close_loop_raw(void) {
    for (int fd = 3; fd < limit(); fd++) syscall(SYS_close, fd);
}

static void dup2_over_raw(void) {
    int devnull = open("/dev/null", O_RDWR);
    CHECK(devnull >= 0);
    int top = limit() - 24 < 1000 ? limit() - 24 : 1000;
    for (int fd = 3; fd <= top; fd++)
        if (fd != devnull) CHECK_EQ(syscall(SYS_dup3, devnull, fd, 0), fd);
    for (int fd = 3; fd <= top; fd++) CHECK_EQ(syscall(SYS_close, fd), 0);
}

/* dup and F_DUPFD give the lowest free number, even where the library's descriptors were. */
static void dup_up(void) {
    close_loop();
    int devnull = open("/dev/null", O_RDWR);
    CHECK(devnull >= 3);
    int top = limit() - 24 < 1000 ? limit() - 24 : 1000;
    int prev = devnull;
    while (prev < top) {
        int fd = dup(devnull);
        CHECK_EQ(fd, prev + 1);
        prev = fd;
    }
    for (int fd = devnull; fd <= prev; fd++) CHECK_EQ(close(fd), 0);
    for (int min = 3; min < limit(); min++) {
        int fd = fcntl(1, min % 2 ? F_DUPFD : F_DUPFD_CLOEXEC, min);
        CHECK_EQ(fd, min);
        CHECK_EQ(close(fd), 0);
    }
}

static char out[1 << 16];

static int count_lines(const char *text) {
    int n = 0;
    for (; *text; text++) n += *text == '\n';
    return n;
}

/* Runs this test as `mode` with `env`; the child's output has its "MODE ok" line and, besides
 * the lines `allowed` starts, no other. */
static void run(const char *mode, const char *env_var, const char *allowed) {
    const char *env[] = {"-GREENWORLD_STATS", "-GREENWORLD_LOG", env_var, NULL};
    int status = gw_run_self(env, out, sizeof out, mode, NULL);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: status 0x%x: %.2000s", mode, status, out);
    char ok[64];
    snprintf(ok, sizeof ok, "%s ok\n", mode);
    for (const char *line = out; *line;) {
        const char *nl = strchr(line, '\n');
        CHECK(nl, "%s: unterminated output: %.200s", mode, line);
        CHECK(strncmp(line, ok, strlen(ok)) == 0 || (allowed && strncmp(line, allowed, strlen(allowed)) == 0),
              "%s: unexpected output (%d bytes in all): %.300s", mode, (int)strlen(out), line);
        line = nl + 1;
    }
    CHECK(strstr(out, ok), "%s: %s", mode, out);
}

int main(int argc, char **argv) {
    if (argc > 1) {
        gw_watchdog(argv[1], 30);
        if (strcmp(argv[1], "close-loop") == 0) around(close_loop);
        else if (strcmp(argv[1], "dup2-over") == 0) around(dup2_over);
        else if (strcmp(argv[1], "dup-up") == 0) around(dup_up);
        else if (strcmp(argv[1], "close-range") == 0) around(close_range_libc);
        else if (strcmp(argv[1], "raw-close-range") == 0) around(close_range_raw);
        else if (strcmp(argv[1], "raw-close-loop") == 0) around(close_loop_raw);
        else if (strcmp(argv[1], "raw-dup2-over") == 0) around(dup2_over_raw);
        else return 2;
        printf("%s ok\n", argv[1]);
        return 0;
    }
    run("close-loop", NULL, NULL);
    run("dup-up", NULL, NULL);
    run("close-range", NULL, NULL);
    /* One line may say that a fresh poller replaced the lost one (if the copy of stderr it
     * goes to survived), never a storm. */
    run("raw-close-range", NULL, "greenworld: error: hub poller wait failed");
    CHECK(count_lines(out) <= 2, "raw-close-range: %s", out);
    run("raw-close-loop", NULL, NULL);
    run("raw-dup2-over", NULL, NULL);
    if (gw_preloaded()) {
        run("dup2-over", "GREENWORLD_STATS=1", "greenworld: stats: ");
        CHECK(strstr(out, "greenworld: stats: "), "dup2 over the library's stderr lost the stats line: %s", out);
    } else {
        run("dup2-over", NULL, NULL);
    }
    return 0;
}
