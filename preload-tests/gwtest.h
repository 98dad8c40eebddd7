/* gwtest.h: the shared harness of greenworld's preload tests.
 *
 * Every test is a plain C program that knows nothing of greenworld. scripts/run-tests runs each
 * one twice: natively, and under LD_PRELOAD=libgreenworld.so. A test asserts libc semantics
 * (which must hold in both runs) and, only when gw_preloaded(), the green-only facts (one OS
 * thread, the patch registry). Exit 0 = pass, GW_SKIP (77) = not applicable in this run,
 * anything else = fail. A failing CHECK names the file, the line and the condition.
 */
#ifndef GWTEST_H
#define GWTEST_H
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GW_SKIP 77

#define CHECK(cond, ...)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s:", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, " " __VA_ARGS__);                                                 \
            fprintf(stderr, "\n");                                                            \
            fflush(stderr);                                                                   \
            _exit(1);                                                                         \
        }                                                                                     \
    } while (0)

/* CHECK_EQ for integers, printing both sides. */
#define CHECK_EQ(a, b)                                                                        \
    do {                                                                                      \
        long long gw_a_ = (long long)(a), gw_b_ = (long long)(b);                             \
        CHECK(gw_a_ == gw_b_, "%s = %lld, %s = %lld", #a, gw_a_, #b, gw_b_);                  \
    } while (0)

/* 1 when libgreenworld.so is loaded in this process. */
static inline int gw_preloaded(void) {
    return dlsym(RTLD_DEFAULT, "greenworld_is_monkey_patched") != NULL;
}

/* greenworld_is_monkey_patched(name), or -2 when the library is not loaded. */
static inline int gw_patched(const char *name) {
    int (*f)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "greenworld_is_monkey_patched");
    return f ? f(name) : -2;
}

static inline long long gw_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Milliseconds since t0 (a gw_now_ns() value). */
static inline long long gw_ms_since(long long t0) { return (gw_now_ns() - t0) / 1000000; }

/* usleep in milliseconds (under the preload a green sleep: other threads run meanwhile). */
static inline void gw_sleep_ms(int ms) { usleep((useconds_t)ms * 1000); }

/* The absolute time `ms` milliseconds from now on `clock`, for the timed waits. */
static inline struct timespec gw_abs_in(clockid_t clock, long ms) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* How many hubs the preloaded library spreads green threads over (GREENWORLD_HUBS; 1 natively,
 * and 2 or more for "auto": the test machines have at least two CPUs). Tests that check which
 * OS thread runs what ask it. */
static inline int gw_hubs(void) {
    const char *v = getenv("GREENWORLD_HUBS");
    if (!gw_preloaded() || !v || !*v) return 1;
    if (strcmp(v, "auto") == 0) return 2;
    return atoi(v) > 1 ? atoi(v) : 1;
}

/* Number of OS threads (kernel tasks) in this process, not counting the library's own: its
 * monitor ("gw-sysmon", started with the first green thread: see README, Semantics of green
 * threads) and the extra hubs' ("gw-hub-N", started with the first green thread under
 * GREENWORLD_HUBS=N: see README, Several hubs) and its stack helper ("gw-stacks", started in a
 * burst of first runs: see README, Performance). The thread pool's ("gw-pool") are counted. */
static inline int gw_os_threads(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0, self_is_hub = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(comm, sizeof comm, f)) comm[0] = 0;
            fclose(f);
        }
        int hub = strncmp(comm, "gw-hub-", 7) == 0;
        if (hub && atoi(e->d_name) == (int)syscall(SYS_gettid)) self_is_hub = 1;
        if (strcmp(comm, "gw-sysmon\n") != 0 && strcmp(comm, "gw-stacks\n") != 0 && !hub) n++;
    }
    closedir(d);
    /* A fork child of a thread on another hub: the caller, a hub's OS thread, is its only one. */
    if (n == 0 && self_is_hub) n = 1;
    return n;
}

/* The system call number OS thread `tid` of process `pid` is blocked in (/proc/PID/task/TID/
 * syscall), or -1 if it is running or gone: evidence that a call blocked its OS thread. */
static inline long gw_blocked_in(pid_t pid, pid_t tid) {
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long nr = -1;
    if (!fgets(buf, sizeof buf, f) || sscanf(buf, "%ld", &nr) != 1) nr = -1;
    fclose(f);
    return nr;
}

/* Runs argv in a child with the environment changed by `env` (NULL-terminated list of
 * "NAME=value" to set, or "-NAME" to unset), capturing stdout and stderr together into out
 * (NUL-terminated, truncated to outlen). Returns the child's wait status. */
static inline int gw_run(const char *const env[], char *const argv[], char *out, size_t outlen) {
    int p[2];
    if (pipe(p) != 0) { perror("pipe"); _exit(1); }
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); _exit(1); }
    if (pid == 0) {
        for (int i = 0; env && env[i]; i++) {
            if (env[i][0] == '-') unsetenv(env[i] + 1);
            else putenv((char *)env[i]);
        }
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        execv(argv[0], argv);
        perror("execv");
        _exit(127);
    }
    close(p[1]);
    size_t used = 0;
    for (;;) {
        char buf[4096];
        ssize_t n = read(p[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        size_t room = outlen > used + 1 ? outlen - used - 1 : 0;
        size_t k = (size_t)n < room ? (size_t)n : room;
        memcpy(out + used, buf, k);
        used += k;
    }
    if (outlen) out[used] = 0;
    close(p[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    return status;
}

/* The exit code in a wait status, or -1 when the process did not exit (a signal ended it). */
static inline int gw_exit_code(int wait_status) {
    return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
}

/* Path of this executable, for tests that re-run themselves with another environment. */
static inline const char *gw_self(void) {
    static char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n < 0) { perror("readlink"); _exit(1); }
    path[n] = 0;
    return path;
}

/* The kernel id of the calling OS thread: a green thread's is its hub's. */
static inline pid_t gw_tid(void) { return (pid_t)syscall(SYS_gettid); }

/* Makes a thread running body(arg) with an affinity attribute naming CPU `cpu` alone (under the
 * preload: placed on that CPU's hub). */
static inline pthread_t gw_create_on_cpu(int cpu, void *(*body)(void *), void *arg) {
    pthread_attr_t attr;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    CHECK_EQ(pthread_attr_init(&attr), 0);
    CHECK_EQ(pthread_attr_setaffinity_np(&attr, sizeof set, &set), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, &attr, body, arg), 0);
    pthread_attr_destroy(&attr);
    return t;
}

/* Under the preload with no GREENWORLD_HUBS given, replaces this process by this program again,
 * without arguments, at GREENWORLD_HUBS=hubs: a test of several hubs has them whatever the run's
 * mode. Otherwise returns. */
static inline void gw_rerun_with_hubs(const char *hubs) {
    if (!gw_preloaded() || getenv("GREENWORLD_HUBS")) return;
    setenv("GREENWORLD_HUBS", hubs, 1);
    execv(gw_self(), (char *[]){(char *)gw_self(), NULL});
    perror("execv");
    exit(1);
}

/* Under the preload, in the first run (no GREENWORLD_SLICE given): replaces this process by this
 * program again, without arguments, at GREENWORLD_SLICE=slice and, unless the run's mode gave
 * GREENWORLD_HUBS, two hubs (a test of several hubs that needs its time slice). Otherwise
 * returns. */
static inline void gw_rerun_with_slice(const char *slice) {
    if (!gw_preloaded() || getenv("GREENWORLD_SLICE")) return;
    setenv("GREENWORLD_SLICE", slice, 1);
    if (!getenv("GREENWORLD_HUBS")) setenv("GREENWORLD_HUBS", "2", 1);
    execv(gw_self(), (char *[]){(char *)gw_self(), NULL});
    perror("execv");
    exit(1);
}

/* Runs this program again (gw_run) with the arguments that follow outlen, up to a NULL. */
__attribute__((sentinel)) static inline int gw_run_self(const char *const env[], char *out, size_t outlen,
                                                      ...) {
    char *argv[8] = {(char *)gw_self()};
    va_list ap;
    va_start(ap, outlen);
    for (int i = 1; (argv[i] = (char *)va_arg(ap, const char *)) != NULL; i++)
        CHECK(i < 7, "gw_run_self: too many arguments");
    va_end(ap);
    return gw_run(env, argv, out, outlen);
}

/* A child that may not end by itself (a deadlock, a dump on request): this program run again
 * as `self --child MODE`, with `env` ("NAME=value", or NULL) added, its stdout and stderr on
 * pipes the parent reads with a deadline (gw_kid_read_until), then killed (gw_kid_stop). */
struct gw_kid {
    pid_t pid;
    int out, err;
    size_t len;
    char text[1 << 20];
};

static inline void gw_kid_start(struct gw_kid *k, const char *mode, const char *env) {
    int o[2], e[2];
    CHECK(pipe(o) == 0 && pipe(e) == 0, "pipe");
    k->pid = fork();
    CHECK(k->pid >= 0, "fork");
    if (k->pid == 0) {
        if (env) putenv((char *)env);
        dup2(o[1], 1);
        dup2(e[1], 2);
        execl(gw_self(), gw_self(), "--child", mode, (char *)NULL);
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    k->out = o[0];
    k->err = e[0];
    k->len = 0;
    k->text[0] = 0;
}

/* Appends what the child writes on fd (its k->out or k->err) to k->text until `needle` shows
 * up (1), or EOF (1 when needle is NULL: read to the end, else 0), or `ms` pass (0). */
static inline int gw_kid_read_until(struct gw_kid *k, int fd, const char *needle, int ms) {
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!(needle && strstr(k->text, needle))) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long long spent = (t1.tv_sec - t0.tv_sec) * 1000LL + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (spent >= ms) return 0;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)(ms - spent)) <= 0) continue;
        ssize_t n = read(fd, k->text + k->len, sizeof k->text - 1 - k->len);
        if (n <= 0) return needle == NULL;
        k->len += (size_t)n;
        k->text[k->len] = 0;
    }
    return 1;
}

/* Forgets what was read so far. */
static inline void gw_kid_clear(struct gw_kid *k) {
    k->len = 0;
    k->text[0] = 0;
}

/* Kills the child (if it still runs), reaps it and closes its pipes. */
static inline void gw_kid_stop(struct gw_kid *k) {
    kill(k->pid, SIGKILL);
    int status;
    while (waitpid(k->pid, &status, 0) < 0 && errno == EINTR) {}
    close(k->out);
    close(k->err);
}

/* The dump line of the thread named `name` (`thread N "name" [handle]: state`; other lines
 * name it too, in what they wait for), copied into `line`. */
static inline const char *gw_dump_line_of(const char *text, const char *name, char *line, size_t len) {
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\" [", name);
    const char *at = text;
    while ((at = strstr(at, quoted)) != NULL) {
        const char *close = strchr(at, ']');
        if (close && close[1] == ':') break;
        at++;
    }
    CHECK(at, "no thread %s in:\n%s", quoted, text);
    const char *end = strchr(at, '\n');
    size_t n = end ? (size_t)(end - at) : strlen(at);
    if (n >= len) n = len - 1;
    memcpy(line, at, n);
    line[n] = 0;
    return line;
}

/* A watchdog for a test that could hang: after `seconds`, "NAME: watchdog: hung in PHASE" on
 * stderr (the phase the test last stored in gw_phase) and exit 1, so a hang fails fast and says
 * where. Raw syscalls: safe in a signal handler. */
__attribute__((unused)) static const char *volatile gw_phase = "start";
__attribute__((unused)) static const char *gw_watchdog_name = "test";
__attribute__((unused)) static void gw_on_watchdog(int sig) {
    (void)sig;
    const char *name = gw_watchdog_name, *phase = gw_phase, *mid = ": watchdog: hung in ";
    syscall(SYS_write, 2, name, strlen(name));
    syscall(SYS_write, 2, mid, strlen(mid));
    syscall(SYS_write, 2, phase, strlen(phase));
    syscall(SYS_write, 2, "\n", 1);
    _exit(1);
}
static inline void gw_watchdog(const char *name, unsigned seconds) {
    gw_watchdog_name = name;
    signal(SIGALRM, gw_on_watchdog);
    alarm(seconds);
}

/* A handler that only counts (in gw_caught), for what a caught signal does to a blocking call:
 * after gw_catch(sig, 0) such a call fails with EINTR, after gw_catch(sig, SA_RESTART) it goes on. */
__attribute__((unused)) static volatile sig_atomic_t gw_caught;
__attribute__((unused)) static void gw_count_caught(int sig) {
    (void)sig;
    gw_caught++;
}
static inline void gw_catch(int sig, int flags) {
    struct sigaction sa = {.sa_handler = gw_count_caught, .sa_flags = flags};
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(sig, &sa, NULL), 0);
}

/* One process-directed SIGALRM `ms` milliseconds from now (setitimer ITIMER_REAL; 0 disarms),
 * to interrupt a blocking call. It takes over gw_watchdog's alarm: they share the one timer. */
static inline void gw_alarm_ms(long ms) {
    struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
    CHECK_EQ(setitimer(ITIMER_REAL, &it, NULL), 0);
}

/* A green thread that keeps counting (gw_ticks, every 1 ms) until gw_ticker_stop: proof that
 * other threads ran while one waited. */
__attribute__((unused)) static volatile int gw_ticker_stop;
__attribute__((unused)) static volatile long gw_ticks;
/* The OS thread the ticker runs on (at several hubs it may be another hub's). */
__attribute__((unused)) static volatile pid_t gw_ticker_tid;
static inline void *gw_ticker(void *arg) {
    (void)arg;
    gw_ticker_tid = (pid_t)syscall(SYS_gettid);
    while (!gw_ticker_stop) {
        gw_ticks++;
        usleep(1000);
    }
    return NULL;
}

/* A TCP listener on 127.0.0.1 (a free port; servers in tests bind loopback only), made with
 * socket(AF_INET, SOCK_STREAM | sock_flags); its address (with the port) goes to *addr. */
static inline int gw_tcp_listen(int sock_flags, int backlog, struct sockaddr_in *addr) {
    int l = socket(AF_INET, SOCK_STREAM | sock_flags, 0);
    CHECK(l >= 0, "socket: %s", strerror(errno));
    *addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof *addr;
    CHECK_EQ(bind(l, (struct sockaddr *)addr, sizeof *addr), 0);
    CHECK_EQ(listen(l, backlog), 0);
    CHECK_EQ(getsockname(l, (struct sockaddr *)addr, &al), 0);
    return l;
}

/* A connected TCP pair on 127.0.0.1: fds[0] the accepted end, fds[1] the connecting end, both
 * made with `sock_flags` (0 or SOCK_CLOEXEC; with flags the accept is accept4's). */
static inline void gw_tcp_pair_flags(int fds[2], int sock_flags) {
    struct sockaddr_in a;
    int l = gw_tcp_listen(sock_flags, 1, &a);
    int c = socket(AF_INET, SOCK_STREAM | sock_flags, 0);
    CHECK(c >= 0, "socket: %s", strerror(errno));
    CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s", strerror(errno));
    int s = sock_flags ? accept4(l, NULL, NULL, sock_flags) : accept(l, NULL, NULL);
    CHECK(s >= 0, "accept: %s", strerror(errno));
    close(l);
    fds[0] = s;
    fds[1] = c;
}

/* gw_tcp_pair_flags without flags: made with socket and accept. */
static inline void gw_tcp_pair(int fds[2]) { gw_tcp_pair_flags(fds, 0); }

/* FNV-1a, 64 bits: a digest of a byte stream read in pieces of any size (start from
 * GW_FNV1A_INIT), to compare what was written with what was read. */
#define GW_FNV1A_INIT 14695981039346656037ULL
static inline uint64_t gw_fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* Waits, sleeping 1 ms at a time (so green threads run), until *counter reaches `want`; fails
 * after 10 s naming `what`. */
static inline void gw_wait_count(int *counter, int want, const char *what) {
    long long t0 = gw_now_ns();
    while (__atomic_load_n(counter, __ATOMIC_SEQ_CST) < want) {
        CHECK(gw_now_ns() - t0 < 10000000000LL, "timed out waiting for %s: %d of %d", what,
              __atomic_load_n(counter, __ATOMIC_SEQ_CST), want);
        gw_sleep_ms(1);
    }
}

/* Runs two threads side by side (a and b, no argument) and joins both. */
static inline void gw_run_pair(void *(*a)(void *), void *(*b)(void *)) {
    pthread_t ta, tb;
    CHECK_EQ(pthread_create(&ta, NULL, a, NULL), 0);
    CHECK_EQ(pthread_create(&tb, NULL, b, NULL), 0);
    CHECK_EQ(pthread_join(ta, NULL), 0);
    CHECK_EQ(pthread_join(tb, NULL), 0);
}

/* Waits (as gw_wait_count) until another thread sets *flag to 1. */
static inline void gw_wait_flag(int *flag, const char *what) { gw_wait_count(flag, 1, what); }

/* A thread that, `ms` milliseconds from now, writes the string `data` to fd (gw_write_later) or
 * closes fd (gw_close_later): something for a blocking call to wait for. Join the thread. */
struct gw_later {
    int fd, ms;
    const char *data; /* NULL: close */
};
static inline void *gw_later_main(void *arg) {
    struct gw_later w = *(struct gw_later *)arg;
    free(arg);
    usleep((useconds_t)w.ms * 1000);
    if (w.data) CHECK_EQ(write(w.fd, w.data, strlen(w.data)), strlen(w.data));
    else close(w.fd);
    return NULL;
}
static inline pthread_t gw_later(int fd, const char *data, int ms) {
    struct gw_later *w = malloc(sizeof *w);
    CHECK(w != NULL, "malloc");
    *w = (struct gw_later){fd, ms, data};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, gw_later_main, w), 0);
    return t;
}
static inline pthread_t gw_write_later(int fd, const char *data, int ms) { return gw_later(fd, data, ms); }
static inline pthread_t gw_close_later(int fd, int ms) { return gw_later(fd, NULL, ms); }

/* A read of one byte on `fd` that waits for the "w" another thread writes to writer_fd 20 ms
 * later: afterwards the library knows `fd` well (kind, registration, flags). Returns the ticks
 * gw_ticker made meanwhile. */
static inline long gw_wait_for_byte(int fd, int writer_fd) {
    pthread_t t = gw_write_later(writer_fd, "w", 20);
    long before = gw_ticks;
    char c = 0;
    CHECK_EQ(read(fd, &c, 1), 1);
    CHECK_EQ(c, 'w');
    long ticks = gw_ticks - before;
    CHECK_EQ(pthread_join(t, NULL), 0);
    return ticks;
}

/* For the tests of descriptor numbers reused behind the library's back: a TCP pair whose
 * accepted end the library knows well (gw_wait_for_byte); returns that end, *peer the other.
 * The listener's freed number is plugged (/dev/null, open until gw_close_plugs), so that the
 * lowest free number, which the next descriptor made gets, is the next one the test closes. */
__attribute__((unused)) static int gw_plugs[16], gw_nplugs;
static inline int gw_known_socket(int *peer) {
    int fds[2];
    gw_tcp_pair(fds);
    CHECK(gw_nplugs < 16, "too many plugs");
    gw_plugs[gw_nplugs++] = open("/dev/null", O_RDONLY);
    gw_wait_for_byte(fds[0], fds[1]);
    *peer = fds[1];
    return fds[0];
}
static inline void gw_close_plugs(void) {
    while (gw_nplugs > 0) close(gw_plugs[--gw_nplugs]);
}

#endif
