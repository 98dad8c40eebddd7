/* Descriptors closed, replaced, made and switched to non-blocking through the raw syscall()
 * function (libuv closes with syscall(SYS_close)), which the fd table must follow as it
 * follows close/dup2/fcntl. Each phase first makes the library know a descriptor well (a read
 * that waits for a writer 20 ms later: kind, registration and flags all cached), then:
 *  1. syscall(SYS_close) of a TCP socket, open() of a regular file that gets its number: read
 *     returns the file's bytes (it was ENOTSOCK: the socket's entry answered);
 *  2. syscall(SYS_close) of that file, syscall(SYS_pipe2) gets its number: a read on the new pipe
 *     waits for a writer thread 20 ms later and returns its byte, and under the preload the
 *     ticker ran meanwhile (the read was green);
 *  3. syscall(SYS_close) of that pipe end, syscall(SYS_socketpair, SOCK_NONBLOCK) gets its number:
 *     read on the empty new socket answers EAGAIN at once (the pipe's cached "blocking" made it
 *     wait for the writer thread's byte);
 *  4. syscall(SYS_dup3) of a regular file over a known socket, and (x86-64) syscall(SYS_dup2):
 *     read returns the file's bytes;
 *  5. syscall(SYS_close_range) of a known socket, open() of a file: the file's bytes;
 *  6. syscall(SYS_ioctl, FIONBIO) and syscall(SYS_fcntl, F_SETFL, O_NONBLOCK) on a known blocking
 *     socket: the next read on it answers EAGAIN at once (it waited for the writer's byte), and
 *     ioctl(FIONBIO) through libc (what CPython's settimeout calls) does the same;
 *  7. syscall(SYS_dup) and syscall(SYS_fcntl, F_DUPFD) of a file into a known socket's freed
 *     number: read returns the file's bytes.
 * Natively each step is plain Linux; the test asserts the same results in both runs.
 */
#include "gwtest.h"
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static char path[64];
static const char content[] = "file bytes";

/* Reads the test file's bytes from `fd`, at its start. */
static void check_file_bytes(int fd, const char *what) {
    char buf[64] = {0};
    ssize_t n = read(fd, buf, sizeof buf);
    CHECK(n == (ssize_t)strlen(content), "%s: read returned %zd (%s)", what, n,
          n < 0 ? strerror(errno) : "");
    CHECK(memcmp(buf, content, strlen(content)) == 0, "%s: read %.*s", what, (int)n, buf);
}

/* A read on an empty non-blocking descriptor answers EAGAIN at once (a writer thread sends a
 * byte 20 ms later: had the read waited, it would return it). */
static void check_eagain(int fd, int writer_fd, const char *what) {
    pthread_t t = gw_write_later(writer_fd, "l", 20);
    char c;
    errno = 0;
    ssize_t n = read(fd, &c, 1);
    CHECK(n == -1 && errno == EAGAIN, "%s: read returned %zd, errno %s", what, n, strerror(errno));
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(read(fd, &c, 1) == 1 || errno == EAGAIN, 1); /* the late byte, if it came */
}

int main(void) {
    gw_watchdog("test_raw_syscall_fds", 60);
    snprintf(path, sizeof path, "/tmp/gw_raw_syscall_%d", (int)getpid());
    int f = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    CHECK(f >= 0, "open: %s", strerror(errno));
    CHECK_EQ(write(f, content, strlen(content)), strlen(content));
    close(f);

    pthread_t ticker;
    CHECK_EQ(pthread_create(&ticker, NULL, gw_ticker, NULL), 0);

    /* 1. raw close of a socket, its number reused by open(). */
    gw_phase = "socket closed with syscall, number reused by open";
    int peer;
    int s = gw_known_socket(&peer);
    CHECK_EQ(syscall(SYS_close, s), 0);
    int file = open(path, O_RDONLY);
    CHECK_EQ(file, s);
    check_file_bytes(file, "open after syscall(SYS_close) of a socket");

    /* 2. raw close of the file, its number reused by a raw pipe2. */
    gw_phase = "file closed with syscall, number reused by syscall(SYS_pipe2)";
    CHECK_EQ(syscall(SYS_close, file), 0);
    int p[2];
    CHECK_EQ(syscall(SYS_pipe2, p, 0), 0);
    CHECK_EQ(p[0], file);
    long ticks = gw_wait_for_byte(p[0], p[1]);
    if (gw_preloaded()) CHECK(ticks > 0, "the pipe read blocked the OS thread (%ld ticks)", ticks);

    /* 3. raw close of the pipe's read end, its number reused by a raw non-blocking socketpair. */
    gw_phase = "pipe closed with syscall, number reused by syscall(SYS_socketpair)";
    CHECK_EQ(syscall(SYS_close, p[0]), 0);
    int sv[2];
    CHECK_EQ(syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    CHECK_EQ(sv[0], p[0]);
    check_eagain(sv[0], sv[1], "non-blocking socketpair in a blocking pipe's number");
    close(sv[0]);
    close(sv[1]);
    close(p[1]);
    close(peer);

    /* 4. raw dup3 (and dup2) of a file over a known socket. */
    gw_phase = "syscall(SYS_dup3) over a socket";
    s = gw_known_socket(&peer);
    file = open(path, O_RDONLY);
    CHECK(file >= 0, "open: %s", strerror(errno));
    CHECK_EQ(syscall(SYS_dup3, file, s, 0), s);
    check_file_bytes(s, "syscall(SYS_dup3) of a file over a socket");
    close(s);
    close(peer);
#ifdef SYS_dup2
    gw_phase = "syscall(SYS_dup2) over a socket";
    s = gw_known_socket(&peer);
    CHECK_EQ(lseek(file, 0, SEEK_SET), 0);
    CHECK_EQ(syscall(SYS_dup2, file, s), s);
    check_file_bytes(s, "syscall(SYS_dup2) of a file over a socket");
    close(s);
    close(peer);
#endif
    close(file);

    /* 5. raw close_range of a known socket (CLOSE_RANGE_CLOEXEC first: it closes nothing). */
    gw_phase = "syscall(SYS_close_range)";
    s = gw_known_socket(&peer);
    CHECK_EQ(syscall(SYS_close_range, s, s, CLOSE_RANGE_CLOEXEC), 0);
    gw_wait_for_byte(s, peer);
    CHECK_EQ(syscall(SYS_close_range, s, s, 0), 0);
    file = open(path, O_RDONLY);
    CHECK_EQ(file, s);
    check_file_bytes(file, "open after syscall(SYS_close_range) of a socket");
    close(file);
    close(peer);

    /* 6. O_NONBLOCK set through raw ioctl/fcntl, and libc's ioctl, on a known blocking socket. */
    gw_phase = "syscall(SYS_ioctl, FIONBIO)";
    s = gw_known_socket(&peer);
    int one = 1, zero = 0;
    CHECK_EQ(syscall(SYS_ioctl, s, FIONBIO, &one), 0);
    check_eagain(s, peer, "after syscall(SYS_ioctl, FIONBIO)");
    CHECK_EQ(syscall(SYS_ioctl, s, FIONBIO, &zero), 0);
    gw_wait_for_byte(s, peer);
    gw_phase = "syscall(SYS_fcntl, F_SETFL)";
    CHECK_EQ(syscall(SYS_fcntl, s, F_SETFL, O_RDWR | O_NONBLOCK), 0);
    check_eagain(s, peer, "after syscall(SYS_fcntl, F_SETFL, O_NONBLOCK)");
    CHECK_EQ(syscall(SYS_fcntl, s, F_SETFL, O_RDWR), 0);
    gw_wait_for_byte(s, peer);
    gw_phase = "ioctl(FIONBIO)";
    CHECK_EQ(ioctl(s, FIONBIO, &one), 0);
    check_eagain(s, peer, "after ioctl(FIONBIO)");
    close(s);
    close(peer);

    /* 7. raw dup and F_DUPFD into a known socket's freed number. */
    gw_phase = "syscall(SYS_dup), syscall(SYS_fcntl, F_DUPFD)";
    s = gw_known_socket(&peer);
    file = open(path, O_RDONLY);
    CHECK(file >= 0, "open: %s", strerror(errno));
    CHECK_EQ(syscall(SYS_close, s), 0);
    int copy = syscall(SYS_dup, file);
    CHECK_EQ(copy, s);
    check_file_bytes(copy, "syscall(SYS_dup) of a file into a socket's number");
    CHECK_EQ(syscall(SYS_close, copy), 0);
    close(peer);
    s = gw_known_socket(&peer);
    CHECK_EQ(syscall(SYS_close, s), 0);
    CHECK_EQ(lseek(file, 0, SEEK_SET), 0);
    copy = syscall(SYS_fcntl, file, F_DUPFD, s);
    CHECK_EQ(copy, s);
    check_file_bytes(copy, "syscall(SYS_fcntl, F_DUPFD) of a file into a socket's number");
    close(copy);
    close(file);
    close(peer);

    gw_ticker_stop = 1;
    CHECK_EQ(pthread_join(ticker, NULL), 0);
    gw_close_plugs();
    unlink(path);
    printf("test_raw_syscall_fds: ok\n");
    return 0;
}
