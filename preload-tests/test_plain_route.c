/* The plain route (issue 15): `read`, `write`, `readv` and `writev` of a descriptor the library
 * only passes to libc (a regular file, a device, a pipe with `os` off) jump straight to libc
 * once the descriptor was seen, while the process has no green thread. What must not change:
 * - libc's answers on such descriptors: values, EOF, EAGAIN on a descriptor the program made
 *   non-blocking, EBADF after a close, errno kept on success (phase "answers", every mode; with
 *   GREENWORLD_OS=0, which run-tests' modes and the pipe part below cover, a pipe is one);
 * - a number seen plain, then closed and reborn as a socket (by `socketpair` taking the lowest
 *   number, and by `dup2` onto it), is green: a read on it parks, and another green thread
 *   runs meanwhile and writes what it waits for (a plain read would block the only hub:
 *   GREENWORLD_HUBS=1 and no preemption, so the test would hang until its watchdog);
 * - a descriptor seen plain before the first green thread keeps its reads' safe points once
 *   there are threads: a main that waits for a thread by reading /dev/zero in a loop lets it
 *   run when its slice is spent (without the safe point, and without preemption, it never
 *   would: the child reports it after 10 s).
 * Natively both threads simply run at once: every phase passes there too. */
#include "gwtest.h"
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/uio.h>

static atomic_int ran;

/* A thread that notes it ran, then writes one byte to the descriptor it is given. */
static void *note_and_write(void *arg) {
    int fd = (int)(intptr_t)arg;
    atomic_store(&ran, 1);
    CHECK_EQ(write(fd, "x", 1), 1);
    return NULL;
}

static void *note(void *arg) {
    (void)arg;
    atomic_store(&ran, 1);
    return NULL;
}

/* A regular file holding "abcdef", read through twice (the second read is the route's). */
static int seen_file(void) {
    char path[] = "/tmp/gw-plain-route-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
    unlink(path);
    CHECK_EQ(write(fd, "abcdef", 6), 6);
    char buf[8];
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
        CHECK_EQ(read(fd, buf, 2), 2);
    }
    return fd;
}

/* A read of `fd` must park while a thread that writes to `peer` runs. */
static void read_parks(int fd, int peer, const char *what) {
    atomic_store(&ran, 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, note_and_write, (void *)(intptr_t)peer), 0);
    char c = 0;
    CHECK_EQ(read(fd, &c, 1), 1);
    CHECK(c == 'x' && atomic_load(&ran), "%s: read %d, thread ran %d", what, c, atomic_load(&ran));
    CHECK_EQ(pthread_join(t, NULL), 0);
}

static int child_reborn(void) {
    gw_watchdog("test_plain_route reborn", 20);
    /* Closed and reborn by socketpair, which takes the lowest free number. */
    int file = seen_file();
    CHECK_EQ(close(file), 0);
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CHECK(sv[0] == file, "socketpair took %d, not the file's %d", sv[0], file);
    /* And one seen plain, replaced by dup2 of a socket. */
    int other = seen_file();
    int tv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, tv), 0);
    CHECK_EQ(dup2(tv[0], other), other);
    read_parks(sv[0], sv[1], "reborn by socketpair");
    read_parks(other, tv[1], "replaced by dup2");
    printf("reborn ok\n");
    return 0;
}

static int child_slice(void) {
    int zero = open("/dev/zero", O_RDONLY);
    CHECK(zero >= 0, "/dev/zero: %s", strerror(errno));
    char buf[16];
    for (int i = 0; i < 3; i++) CHECK_EQ(read(zero, buf, sizeof buf), (ssize_t)sizeof buf);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, note, NULL), 0);
    long long t0 = gw_now_ns();
    while (!atomic_load_explicit(&ran, memory_order_relaxed) && gw_ms_since(t0) < 10000)
        CHECK_EQ(read(zero, buf, 1), 1);
    int during = atomic_load(&ran);
    CHECK_EQ(pthread_join(t, NULL), 0);
    printf("ran_during_reads=%d\n", during);
    return 0;
}

static void expect(const char *mode, const char *want) {
    static char out[4096];
    const char *env[] = {"GREENWORLD_HUBS=1", "GREENWORLD_PREEMPT=0", NULL};
    int status = gw_run_self(env, out, sizeof out, "--child", mode, NULL);
    CHECK(gw_exit_code(status) == 0, "%s: child status %d: %s", mode, status, out);
    CHECK(strstr(out, want), "%s: want %s, got: %s", mode, want, out);
}

/* libc's answers on plain descriptors, each asked twice (the second time by the route). */
static void answers(void) {
    int file = seen_file();
    char buf[8];
    CHECK_EQ(lseek(file, 4, SEEK_SET), 4);
    errno = 1234;
    CHECK_EQ(read(file, buf, 8), 2); /* a short read at the end */
    CHECK_EQ(errno, 1234);           /* success leaves errno alone */
    for (int i = 0; i < 2; i++) CHECK_EQ(read(file, buf, 8), 0); /* EOF */
    struct iovec iov[2] = {{buf, 1}, {buf + 1, 2}};
    CHECK_EQ(lseek(file, 0, SEEK_SET), 0);
    CHECK_EQ(readv(file, iov, 2), 3);
    CHECK(memcmp(buf, "abc", 3) == 0, "readv read %.3s", buf);
    CHECK_EQ(readv(file, iov, 2), 3);
    CHECK(memcmp(buf, "def", 3) == 0, "readv read %.3s", buf);
    for (int i = 0; i < 2; i++) CHECK_EQ(writev(file, iov, 2), 3);
    CHECK_EQ(close(file), 0);
    for (int i = 0; i < 2; i++) {
        errno = 0;
        CHECK_EQ(read(file, buf, 1), -1);
        CHECK_EQ(errno, EBADF);
        errno = 0;
        CHECK_EQ(write(file, buf, 1), -1);
        CHECK_EQ(errno, EBADF);
    }
    errno = 0;
    CHECK_EQ(read(-1, buf, 1), -1);
    CHECK_EQ(errno, EBADF);

    /* A pipe (plain with GREENWORLD_OS=0; green otherwise, and with no thread to wait for, a
     * blocking read would hang: made non-blocking by the program first). */
    int p[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    for (int i = 0; i < 2; i++) {
        errno = 0;
        CHECK_EQ(read(p[0], buf, 1), -1);
        CHECK_EQ(errno, EAGAIN);
        CHECK_EQ(write(p[1], "ab", 2), 2);
        CHECK_EQ(read(p[0], buf, 8), 2);
    }
    CHECK_EQ(close(p[1]), 0);
    for (int i = 0; i < 2; i++) CHECK_EQ(read(p[0], buf, 1), 0);
    CHECK_EQ(close(p[0]), 0);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--child") == 0) {
        if (strcmp(argv[2], "reborn") == 0) return child_reborn();
        return child_slice();
    }
    gw_watchdog("test_plain_route", 120);
    gw_phase = "answers: libc's, on descriptors the library passes through";
    answers();
    if (!gw_preloaded() || !gw_patched("pthread_create") || !gw_patched("socket")) return 0;
    gw_phase = "a number seen plain, reborn as a socket: its read parks";
    expect("reborn", "reborn ok");
    gw_phase = "a descriptor seen plain before the first thread: its reads stay safe points";
    expect("slice", "ran_during_reads=1");
    return 0;
}
