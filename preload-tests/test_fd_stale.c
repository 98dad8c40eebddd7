/* A descriptor number closed and reused where no hook sees it must not change any call's result.
 * "Unseen" here is a close made with an inline system-call instruction (no libc function at
 * all), and a new descriptor made inside glibc (fopen, popen: glibc's internal open and pipe2).
 * Each phase first makes the library know a descriptor well (a read that waits for a writer
 * 20 ms later: kind, registration and flags cached), then:
 *  1. unseen close of a TCP socket, fopen() of a regular file gets its number: read() on
 *     fileno() returns the file's bytes (the cached socket kind answered ENOTSOCK; the call is
 *     now re-checked and made as plain libc), and again (the entry was renewed);
 *  2. popen("sleep 0.1; echo x") whose pipe gets the number of a regular file closed with
 *     syscall(SYS_close): read() returns "x\n" and, under the preload, the ticker ran meanwhile
 *     (the read waited green: the table had forgotten the file);
 *  3. unseen close of a known socket, then waitpid() of a child that exits 50 ms later: green,
 *     it waits on a pidfd that gets the socket's number, whose stale registration with the hub
 *     must not stop it from being watched (it hung); the status is the child's.
 */
#include "gwtest.h"
#include <pthread.h>
#include <sys/socket.h>
#include <sys/syscall.h>

static const char content[] = "file bytes";

/* close(fd) with the system-call instruction itself: no hook, not even syscall(), sees it. */
static long unseen_close(int fd) {
#if defined(__x86_64__)
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"((long)SYS_close), "D"((long)fd) : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = SYS_close;
    register long x0 __asm__("x0") = fd;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8) : "memory");
    return x0;
#else
    return -1;
#endif
}

int main(void) {
#if !defined(__x86_64__) && !defined(__aarch64__)
    return GW_SKIP;
#endif
    gw_watchdog("test_fd_stale", 60);
    char path[64];
    snprintf(path, sizeof path, "/tmp/gw_fd_stale_%d", (int)getpid());
    FILE *w = fopen(path, "w");
    CHECK(w != NULL, "fopen: %s", strerror(errno));
    fputs(content, w);
    fclose(w);
    pthread_t ticker;
    CHECK_EQ(pthread_create(&ticker, NULL, gw_ticker, NULL), 0);

    /* 1. unseen close of a socket, fopen's internal open gets its number. */
    gw_phase = "unseen close, fopen";
    int peer;
    int s = gw_known_socket(&peer);
    CHECK_EQ(unseen_close(s), 0);
    FILE *r = fopen(path, "r");
    CHECK(r != NULL, "fopen: %s", strerror(errno));
    CHECK_EQ(fileno(r), s);
    for (int round = 0; round < 2; round++) {
        char buf[64] = {0};
        CHECK_EQ(lseek(s, 0, SEEK_SET), 0);
        ssize_t n = read(s, buf, sizeof buf);
        CHECK(n == (ssize_t)strlen(content), "read of a socket's number now a file: %zd (%s)", n,
              n < 0 ? strerror(errno) : "");
        CHECK(memcmp(buf, content, strlen(content)) == 0, "read %.*s", (int)n, buf);
    }
    fclose(r);
    close(peer);

    /* 2. a regular file closed with syscall(SYS_close), popen's pipe gets its number. */
    gw_phase = "syscall(SYS_close) of a file, popen";
    int file = open(path, O_RDONLY);
    CHECK(file >= 0, "open: %s", strerror(errno));
    char buf[64] = {0};
    CHECK_EQ(read(file, buf, sizeof buf), strlen(content)); /* known: a regular file */
    CHECK_EQ(syscall(SYS_close, file), 0);
    FILE *child = popen("sleep 0.1; echo x", "r");
    CHECK(child != NULL, "popen: %s", strerror(errno));
    CHECK_EQ(fileno(child), file);
    long before = gw_ticks;
    memset(buf, 0, sizeof buf);
    ssize_t n = read(file, buf, sizeof buf);
    long ticks = gw_ticks - before;
    CHECK(n == 2 && memcmp(buf, "x\n", 2) == 0, "read from popen's pipe: %zd %.*s", n,
          (int)(n > 0 ? n : 0), buf);
    if (gw_preloaded()) CHECK(ticks > 0, "the pipe read blocked the OS thread (%ld ticks)", ticks);
    CHECK_EQ(pclose(child), 0);

    /* 3. unseen close of a known socket, then a green waitpid (its pidfd gets the number). */
    gw_phase = "unseen close, waitpid";
    s = gw_known_socket(&peer);
    CHECK_EQ(unseen_close(s), 0);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        usleep(50000);
        _exit(7);
    }
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7, "status %#x", status);
    close(peer);

    gw_ticker_stop = 1;
    CHECK_EQ(pthread_join(ticker, NULL), 0);
    gw_close_plugs();
    unlink(path);
    printf("test_fd_stale: ok\n");
    return 0;
}
