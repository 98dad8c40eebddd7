/* Exec and greenness.
 *
 * 1. The library's descriptors are close-on-exec (both runs; natively it is the baseline). The
 *    test re-runs itself ("--fds") with only 0, 1 and 2 open; that process opens /dev/null
 *    without O_CLOEXEC (the one descriptor it means to pass on; everything else it opens is
 *    close-on-exec) and starts green threads: one sleeping in a loop, two ping-ponging over a
 *    TCP connection (the hub's epoll and eventfd), one in sigtimedwait (a signalfd), after a
 *    getaddrinfo (the thread pool). While they run, another thread forks and execs
 *    "--list-fds", which must find exactly 0, 1, 2 and the /dev/null descriptor in
 *    /proc/self/fd (beside its own library's, which `fcntl` says are not open).
 * 2. GREENWORLD_INHERIT (only under the preload: it is the library's variable). The test runs
 *    itself as "--relay" with a chosen LD_PRELOAD and GREENWORLD_INHERIT; the relay reports
 *    whether it is green and its own LD_PRELOAD, then runs "--report" twice, by fork + execv and
 *    by system(), which report the same for themselves. By default (and =1) everything is green
 *    and LD_PRELOAD is passed on unchanged; with =0 the relay is green, its LD_PRELOAD has lost
 *    the library's entries (whatever they are spelled like: the path, a second path to the same
 *    file, a symlink, a bare name found through LD_LIBRARY_PATH) but kept the others in order,
 *    and what it runs is plain libc.
 */
#include "gwtest.h"
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <sys/stat.h>

/* ---- 1. descriptors ---- */

static int list_fds(int passed) {
    /* Live a little while: the parent checks that its other threads ran while it waited for
     * this process (a few milliseconds of fork and exec can pass without a round natively, on
     * a loaded machine). */
    usleep(100 * 1000);
    DIR *d = opendir("/proc/self/fd");
    CHECK(d, "opendir /proc/self/fd: %s", strerror(errno));
    int seen[4] = {0}, bad = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd == dirfd(d)) continue;
        /* This process's own library (its copy of stderr) answers for its descriptors as for
         * numbers never opened; one leaked from the parent would be an open descriptor here. */
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) continue;
        int want = fd == 0 ? 0 : fd == 1 ? 1 : fd == 2 ? 2 : fd == passed ? 3 : -1;
        if (want >= 0) {
            seen[want] = 1;
            continue;
        }
        char link[64], target[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        target[n > 0 ? n : 0] = 0;
        printf("unexpected descriptor %d -> %s\n", fd, target);
        bad = 1;
    }
    closedir(d);
    for (int i = 0; i < 4; i++)
        if (!seen[i]) {
            printf("descriptor %d was not passed on\n", i < 3 ? i : passed);
            bad = 1;
        }
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", passed);
    ssize_t n = readlink(link, target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    if (strcmp(target, "/dev/null") != 0) {
        printf("descriptor %d is %s, not /dev/null\n", passed, target);
        bad = 1;
    }
    if (!bad) printf("fds ok\n");
    return bad;
}

static volatile int g_stop, g_rounds, g_resolved, g_in_sigwait;
static int g_passed;
static char g_child_out[4096];
static int g_child_status = -1;

static void *pinger(void *arg) {
    int fd = (int)(intptr_t)arg;
    char c = 'x';
    while (!g_stop) {
        CHECK(write(fd, &c, 1) == 1, "ping write: %s", strerror(errno));
        CHECK(read(fd, &c, 1) == 1, "ping read: %s", strerror(errno));
        g_rounds++;
        usleep(500);
    }
    shutdown(fd, SHUT_WR);
    return NULL;
}

static void *ponger(void *arg) {
    int fd = (int)(intptr_t)arg;
    char c;
    ssize_t n;
    while ((n = read(fd, &c, 1)) == 1) CHECK(write(fd, &c, 1) == 1, "pong write: %s", strerror(errno));
    CHECK(n == 0, "pong read: %s", strerror(errno));
    return NULL;
}

static void *resolver(void *arg) {
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo("localhost", "80", &hints, &res);
    CHECK(rc == 0, "getaddrinfo(localhost): %s", gai_strerror(rc));
    freeaddrinfo(res);
    g_resolved = 1;
    return arg;
}

static void *sigwaiter(void *arg) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
    struct timespec limit = {50, 0};
    g_in_sigwait = 1;
    int sig = sigtimedwait(&set, NULL, &limit);
    CHECK(sig == SIGUSR1, "sigtimedwait: %d (%s)", sig, strerror(errno));
    return arg;
}

/* Forks and execs "--list-fds N" with its stdout and stderr on a pipe; keeps what it prints. */
static void *execer(void *arg) {
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    char num[16];
    snprintf(num, sizeof num, "%d", g_passed);
    char *argv[] = {(char *)gw_self(), "--list-fds", num, NULL};
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    size_t used = 0;
    ssize_t n;
    while (used < sizeof g_child_out - 1 && (n = read(p[0], g_child_out + used, sizeof g_child_out - 1 - used)) != 0) {
        if (n < 0 && errno == EINTR) continue;
        CHECK(n > 0, "read: %s", strerror(errno));
        used += (size_t)n;
    }
    g_child_out[used] = 0;
    close(p[0]);
    CHECK_EQ(waitpid(pid, &g_child_status, 0), pid);
    return arg;
}

static int fds_scenario(void) {
    gw_watchdog("exec_inherit --fds", 60);
    setvbuf(stdout, NULL, _IONBF, 0);
    g_passed = open("/dev/null", O_RDONLY);
    CHECK(g_passed > 2, "open /dev/null: %d (%s)", g_passed, strerror(errno));

    gw_phase = "starting threads";
    int pair[2];
    gw_tcp_pair_flags(pair, SOCK_CLOEXEC);
    pthread_t t[5];
    CHECK_EQ(pthread_create(&t[0], NULL, gw_ticker, NULL), 0);
    CHECK_EQ(pthread_create(&t[1], NULL, pinger, (void *)(intptr_t)pair[1]), 0);
    CHECK_EQ(pthread_create(&t[2], NULL, ponger, (void *)(intptr_t)pair[0]), 0);
    CHECK_EQ(pthread_create(&t[3], NULL, sigwaiter, NULL), 0);
    pthread_t r;
    CHECK_EQ(pthread_create(&r, NULL, resolver, NULL), 0);
    CHECK_EQ(pthread_join(r, NULL), 0);
    CHECK(g_resolved, "the resolver thread did not resolve");
    gw_phase = "waiting for the ping-pong and the sigwait";
    while (g_rounds < 20 || !g_in_sigwait) usleep(1000);
    usleep(20000); /* the sigwaiter is most likely inside sigtimedwait by now */

    gw_phase = "exec while the others run";
    long rounds_before = g_rounds;
    CHECK_EQ(pthread_create(&t[4], NULL, execer, NULL), 0);
    CHECK_EQ(pthread_join(t[4], NULL), 0);
    CHECK(g_rounds > rounds_before, "the ping-pong stopped while the child ran");

    gw_phase = "stopping";
    g_stop = gw_ticker_stop = 1;
    CHECK_EQ(pthread_kill(t[3], SIGUSR1), 0);
    for (int i = 0; i < 4; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    close(pair[0]);
    close(pair[1]);
    CHECK(gw_exit_code(g_child_status) == 0, "the exec'd child (status 0x%x) said:\n%s", g_child_status, g_child_out);
    CHECK(strcmp(g_child_out, "fds ok\n") == 0, "the exec'd child said:\n%s", g_child_out);
    printf("fds: a child exec'd beside sleeping, socket, sigwait and resolver threads got only 0 1 2 %d\n",
           g_passed);
    return 0;
}

/* Runs argv with stdout and stderr on a pipe and every other descriptor closed. */
static int run_clean(char *const argv[], char *out, size_t outlen) {
    int p[2];
    CHECK_EQ(pipe(p), 0);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        if (syscall(SYS_close_range, 3U, ~0U, 0) != 0)
            for (int fd = 3; fd < 1024; fd++) close(fd);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    size_t used = 0;
    ssize_t n;
    while (used < outlen - 1 && (n = read(p[0], out + used, outlen - 1 - used)) != 0) {
        if (n < 0 && errno == EINTR) continue;
        CHECK(n > 0, "read: %s", strerror(errno));
        used += (size_t)n;
    }
    out[used] = 0;
    close(p[0]);
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    return st;
}

/* ---- 2. GREENWORLD_INHERIT ---- */

static void report(const char *who) {
    const char *pre = getenv("LD_PRELOAD");
    printf("%s patched=%d preload=%s\n", who, gw_patched("thread"), pre ? pre : "(unset)");
}

/* The relay: itself, then a child by fork + execv, then one by system(). */
static int relay(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    report("relay");
    char *argv[] = {(char *)gw_self(), "--report", "execv", NULL};
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(gw_exit_code(st) == 0, "execv child: status 0x%x", st);
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "'%s' --report system", gw_self());
    st = system(cmd);
    CHECK(gw_exit_code(st) == 0, "system(): status 0x%x", st);
    return 0;
}

static char out[16384];

/* Runs the relay with LD_PRELOAD = preload and the extra env changes; checks what it prints:
 * the relay's line (green, relay_preload), then both children's (green or not, child_preload). */
static void expect(const char *what, const char *preload, const char *const extra[], const char *relay_preload,
                   int child_patched, const char *child_preload) {
    static char preload_var[3 * PATH_MAX];
    snprintf(preload_var, sizeof preload_var, "LD_PRELOAD=%s", preload);
    const char *env[16] = {"-GREENWORLD_INHERIT", "-LD_LIBRARY_PATH", preload_var};
    int n = 3;
    for (int i = 0; extra && extra[i]; i++) env[n++] = extra[i];
    env[n] = NULL;
    int st = gw_run_self(env, out, sizeof out, "--relay", NULL);
    char want[8 * PATH_MAX];
    snprintf(want, sizeof want,
             "relay patched=1 preload=%s\nexecv patched=%d preload=%s\nsystem patched=%d preload=%s\n",
             relay_preload, child_patched, child_preload, child_patched, child_preload);
    CHECK(gw_exit_code(st) == 0 && strcmp(out, want) == 0, "%s: status 0x%x\nwant:\n%sgot:\n%s", what, st, want, out);
}

static void inherit_checks(void) {
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "greenworld_is_monkey_patched");
    CHECK(sym && dladdr(sym, &info) && info.dli_fname, "cannot find the library's path");
    char lib[PATH_MAX], dir[PATH_MAX], base[PATH_MAX];
    CHECK(realpath(info.dli_fname, lib), "realpath %s: %s", info.dli_fname, strerror(errno));
    snprintf(dir, sizeof dir, "%s", lib);
    *strrchr(dir, '/') = 0;
    snprintf(base, sizeof base, "%s", strrchr(lib, '/') + 1);
    /* Another library, named by its path: libc itself (preloading it changes nothing). */
    Dl_info libc_info;
    CHECK(dladdr((void *)printf, &libc_info) && libc_info.dli_fname[0] == '/', "cannot find libc's path");
    const char *libc_path = libc_info.dli_fname;
    static char buf[3][5 * PATH_MAX];

    /* By default, and with =1: everything green, LD_PRELOAD passed on as it is. */
    expect("default", lib, NULL, lib, 1, lib);
    const char *on[] = {"GREENWORLD_INHERIT=1", NULL};
    expect("GREENWORLD_INHERIT=1", lib, on, lib, 1, lib);
    snprintf(buf[0], sizeof buf[0], "libdl.so.2 %s:%s", lib, libc_path);
    expect("default, three entries", buf[0], NULL, buf[0], 1, buf[0]);

    /* =0: the relay is green; its LD_PRELOAD loses the library; its children are not green. */
    const char *off[] = {"GREENWORLD_INHERIT=0", NULL};
    expect("GREENWORLD_INHERIT=0", lib, off, "(unset)", -2, "(unset)");
    const char *off_word[] = {"GREENWORLD_INHERIT=off", NULL};
    snprintf(buf[1], sizeof buf[1], "libdl.so.2:%s", libc_path);
    expect("GREENWORLD_INHERIT=off, the others kept in order", buf[0], off_word, buf[1], -2, buf[1]);

    /* The same file spelled three ways (ld.so loads it once): every spelling goes. */
    char link_dir[] = "/tmp/gw-exec-inherit-XXXXXX", link_path[PATH_MAX];
    CHECK(mkdtemp(link_dir), "mkdtemp: %s", strerror(errno));
    snprintf(link_path, sizeof link_path, "%s/gw-link.so", link_dir);
    CHECK(symlink(lib, link_path) == 0, "symlink: %s", strerror(errno));
    snprintf(buf[2], sizeof buf[2], "%s:%s/./%s libdl.so.2:%s", link_path, dir, base, lib);
    expect("GREENWORLD_INHERIT=0, a symlink, ./ and the path", buf[2], off, "libdl.so.2", -2, "libdl.so.2");

    /* A bare name, found through LD_LIBRARY_PATH. */
    static char ld_path[PATH_MAX + 32];
    snprintf(ld_path, sizeof ld_path, "LD_LIBRARY_PATH=%s", dir);
    const char *bare_off[] = {"GREENWORLD_INHERIT=0", ld_path, NULL};
    expect("GREENWORLD_INHERIT=0, a bare name", base, bare_off, "(unset)", -2, "(unset)");
    const char *bare_on[] = {ld_path, NULL};
    expect("default, a bare name", base, bare_on, base, 1, base);

    unlink(link_path);
    rmdir(link_dir);
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "--list-fds") == 0) return list_fds(atoi(argv[2]));
    if (argc > 1 && strcmp(argv[1], "--fds") == 0) return fds_scenario();
    if (argc > 2 && strcmp(argv[1], "--report") == 0) {
        report(argv[2]);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--relay") == 0) return relay();

    setvbuf(stdout, NULL, _IONBF, 0);
    char *fds_argv[] = {(char *)gw_self(), "--fds", NULL};
    int st = run_clean(fds_argv, out, sizeof out);
    CHECK(gw_exit_code(st) == 0, "--fds: status 0x%x:\n%s", st, out);
    printf("%s", out);

    if (!gw_preloaded()) {
        printf("native: GREENWORLD_INHERIT needs the library\n");
        return 0;
    }
    inherit_checks();
    printf("GREENWORLD_INHERIT: default and =1 pass LD_PRELOAD on; =0 takes the library out\n");
    return 0;
}
