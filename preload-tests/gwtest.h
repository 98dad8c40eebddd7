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
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Number of OS threads (kernel tasks) in this process. */
static inline int gw_os_threads(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
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

/* Path of this executable, for tests that re-run themselves with another environment. */
static inline const char *gw_self(void) {
    static char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n < 0) { perror("readlink"); _exit(1); }
    path[n] = 0;
    return path;
}

#endif
