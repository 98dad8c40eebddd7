/* stdio over sockets, and sockets shared with child processes.
 * 1. fdopen(socket, "w") in one thread: 8 MiB through fwrite in chunks of varying sizes (some
 *    smaller than the stdio buffer, some larger), then fclose, which must return 0. A reader
 *    started first (it parks on the empty socket) counts and checksums every byte: all 8 MiB
 *    arrive, nothing lost or reordered (stdio sees the blocking socket the program made, not a
 *    non-blocking one that would drop data: trap 9). Done over an AF_UNIX socketpair and TCP
 *    loopback. And the reverse: fdopen(socket, "r") + fread while another process writes.
 *    The stdio peer is another process: stdio's reads and writes are glibc-internal, which no
 *    hook sees, so a full (or empty) socket blocks the whole OS thread, and a peer that is a
 *    green thread of the same process could never run (a documented limit of greenworld).
 *    Then the fd number of a socket closed by fclose() (inside glibc: no interposable close) is
 *    reused by open() of a regular file: read() on it reads the file.
 * 2. A forked child writes 1 MiB in 70000-byte write()s to a blocking socket it inherited, on
 *    which a parent thread was parked reading before the fork; each write must return its full
 *    count (the library must not have left the shared file description non-blocking), and the
 *    parent's reader thread gets all 1 MiB. Done twice: the child writes straight after fork,
 *    and the child exec()s this program again, which writes to the inherited fd number.
 * 3. fork() from a secondary thread, after a thread of the parent had been parked on a socket:
 *    in the child, a new thread parks in recv on that inherited socket while the child's main
 *    line sends to the peer 50 ms later; the child checks it got the bytes and exits 0.
 * Run order: 2, 3, the fclose'd-number check, then the stdio transfers of 1.
 */
#include "gwtest.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#define STDIO_TOTAL (8 << 20)
#define CHILD_TOTAL (1 << 20)
#define CHILD_CHUNK 70000

static inline unsigned char gen(long long off) {
    uint32_t x = (uint32_t)off * 2246822519u;
    return (unsigned char)((x >> 20) ^ (uint32_t)(off >> 12));
}

struct reader {
    int fd;
    long long want; /* stop after this many bytes (or at EOF if -1) */
    long long count;
    uint64_t sum;
    int bad, eof;
    char what[160];
};

static void *reader_main(void *arg) {
    struct reader *r = arg;
    unsigned char buf[30011];
    uint64_t h = GW_FNV1A_INIT;
    for (;;) {
        ssize_t n = read(r->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(r->what, sizeof r->what, "read after %lld bytes: %s", r->count, strerror(errno));
            r->bad = 1;
            break;
        }
        if (n == 0) { r->eof = 1; break; }
        for (ssize_t i = 0; i < n && !r->bad; i++)
            if (buf[i] != gen(r->count + i)) {
                snprintf(r->what, sizeof r->what, "byte %lld is %d, want %d", r->count + (long long)i,
                         buf[i], gen(r->count + i));
                r->bad = 1;
            }
        if (r->bad) break;
        h = gw_fnv1a(h, buf, (size_t)n);
        r->count += n;
        if (r->want >= 0 && r->count >= r->want) break;
    }
    r->sum = h;
    return NULL;
}

struct fwriter {
    int fd;
    uint64_t sum;
    long long count;
    int fclose_rc, bad;
    char what[160];
};

static void *fwriter_main(void *arg) {
    struct fwriter *w = arg;
    FILE *f = fdopen(w->fd, "w");
    if (!f) {
        snprintf(w->what, sizeof w->what, "fdopen: %s", strerror(errno));
        w->bad = 1;
        return NULL;
    }
    static unsigned char buf[40000];
    uint64_t h = GW_FNV1A_INIT;
    unsigned seed = 12345;
    long long off = 0;
    while (off < STDIO_TOTAL) {
        seed = seed * 1103515245u + 12345u;
        size_t len = 1 + (seed >> 8) % sizeof buf; /* 1 .. 40000: below and above BUFSIZ */
        if ((long long)len > STDIO_TOTAL - off) len = (size_t)(STDIO_TOTAL - off);
        for (size_t i = 0; i < len; i++) buf[i] = gen(off + (long long)i);
        size_t n = fwrite(buf, 1, len, f);
        if (n != len) {
            snprintf(w->what, sizeof w->what, "fwrite %zu of %zu at %lld: %s", n, len, off,
                     strerror(errno));
            w->bad = 1;
            break;
        }
        h = gw_fnv1a(h, buf, len);
        off += (long long)len;
    }
    w->fclose_rc = fclose(f);
    w->sum = h;
    w->count = off;
    return NULL;
}

/* Runs `fn(arg)` in a forked child that keeps `keep_fd` (closing `close_fd`), and copies the
 * `size` bytes at `arg` back from it when it is done. Returns the child's pid; collect with
 * finish_child. */
static pid_t start_child(void *(*fn)(void *), void *arg, size_t size, int keep_fd, int close_fd, int *result_pipe) {
    int p[2];
    CHECK_EQ(pipe(p), 0);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(p[0]);
        close(close_fd);
        (void)keep_fd;
        fn(arg);
        ssize_t w = write(p[1], arg, size);
        _exit(w == (ssize_t)size ? 0 : 1);
    }
    close(p[1]);
    *result_pipe = p[0];
    return pid;
}

static void finish_child(pid_t pid, int result_pipe, void *arg, size_t size) {
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(result_pipe, (char *)arg + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        CHECK(n > 0, "child result: %zd after %zu bytes", n, got);
        got += (size_t)n;
    }
    close(result_pipe);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}

static void stdio_write(const char *kind) {
    int fds[2];
    if (!strcmp(kind, "tcp")) gw_tcp_pair(fds);
    else CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    struct reader r = {.fd = fds[0], .want = -1};
    struct fwriter w = {.fd = fds[1], .fclose_rc = -2};
    int result;
    pid_t reader = start_child(reader_main, &r, sizeof r, fds[0], fds[1], &result);
    close(fds[0]);
    pthread_t tw;
    CHECK_EQ(pthread_create(&tw, NULL, fwriter_main, &w), 0);
    CHECK_EQ(pthread_join(tw, NULL), 0);
    finish_child(reader, result, &r, sizeof r);
    CHECK(!w.bad, "%s writer: %s", kind, w.what);
    CHECK(!r.bad, "%s reader: %s", kind, r.what);
    CHECK_EQ(w.fclose_rc, 0);
    CHECK_EQ(w.count, STDIO_TOTAL);
    CHECK_EQ(r.count, STDIO_TOTAL);
    CHECK_EQ(r.eof, 1);
    CHECK(r.sum == w.sum, "%s: checksums differ", kind);
    printf("fdopen_stdio: %s: fwrite 8 MiB + fclose, reader got %lld bytes, fnv1a %016llx\n", kind,
           r.count, (unsigned long long)r.sum);
}

/* A socket used for I/O, then closed by fclose (glibc's internal close), then its number reused
 * by a regular file: reads of the file must work. */
static void *sleeper_main(void *arg) {
    char c;
    return (void *)(intptr_t)read(*(int *)arg, &c, 1);
}

static void fclose_then_file(void) {
    int sv[2], sp[2];
    char buf[256];
    pthread_t sleeper; /* another thread exists: I/O may go green */
    CHECK_EQ(pipe(sp), 0);
    CHECK_EQ(pthread_create(&sleeper, NULL, sleeper_main, &sp[0]), 0);
    usleep(10000);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CHECK_EQ(send(sv[1], "hi", 2, 0), 2);
    CHECK_EQ(recv(sv[0], buf, sizeof buf, 0), 2);
    CHECK_EQ(write(sv[0], "yo", 2), 2);
    CHECK_EQ(read(sv[1], buf, sizeof buf), 2);
    FILE *f = fdopen(sv[0], "r+");
    CHECK(f != NULL, "fdopen: %s", strerror(errno));
    CHECK_EQ(fclose(f), 0);
    int fd = open("/proc/self/exe", O_RDONLY);
    CHECK(fd >= 0, "open: %s", strerror(errno));
    CHECK(fd == sv[0], "the file got fd %d, not the socket's %d", fd, sv[0]);
    errno = 0;
    ssize_t n = read(fd, buf, 4);
    CHECK(n == 4 && !memcmp(buf, "\177ELF", 4), "read of a regular file on the fclose'd socket's "
          "number %d: %zd (%s)", fd, n, n < 0 ? strerror(errno) : "");
    close(fd);
    close(sv[1]);
    CHECK_EQ(write(sp[1], "q", 1), 1);
    CHECK_EQ(pthread_join(sleeper, NULL), 0);
    close(sp[0]);
    close(sp[1]);
    printf("fdopen_stdio: after fclose of a socket, a regular file on its number reads fine\n");
}

struct raw_writer {
    int fd;
    long long total;
    int bad;
};

static void *raw_writer_main(void *arg) {
    struct raw_writer *w = arg;
    static unsigned char buf[CHILD_CHUNK];
    long long off = 0;
    usleep(30000); /* the fread side parks first */
    while (off < w->total) {
        size_t len = (size_t)(w->total - off < CHILD_CHUNK ? w->total - off : CHILD_CHUNK);
        for (size_t i = 0; i < len; i++) buf[i] = gen(off + (long long)i);
        if (write(w->fd, buf, len) != (ssize_t)len) { w->bad = 1; break; }
        off += (long long)len;
    }
    close(w->fd);
    return NULL;
}

static void stdio_read(void) {
    int fds[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    struct raw_writer w = {.fd = fds[1], .total = STDIO_TOTAL};
    int result;
    pid_t writer = start_child(raw_writer_main, &w, sizeof w, fds[1], fds[0], &result);
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    CHECK(f != NULL, "fdopen r: %s", strerror(errno));
    static unsigned char buf[50001];
    long long off = 0;
    int bad = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        for (size_t i = 0; i < n && !bad; i++)
            if (buf[i] != gen(off + (long long)i)) bad = 1;
        CHECK(!bad, "fread: wrong byte near offset %lld", off);
        off += (long long)n;
    }
    CHECK(feof(f) && !ferror(f), "fread stopped without EOF: %s", strerror(errno));
    CHECK_EQ(fclose(f), 0);
    finish_child(writer, result, &w, sizeof w);
    CHECK_EQ(w.bad, 0);
    CHECK_EQ(off, STDIO_TOTAL);
    printf("fdopen_stdio: fdopen(\"r\") + fread got all 8 MiB\n");
}

/* The child's side: write CHILD_TOTAL bytes to fd in CHILD_CHUNK-sized write()s.
 * Exit status 0 when every write returned its full count, 10 + errno-ish otherwise. */
static int child_write(int fd) {
    static unsigned char buf[CHILD_CHUNK];
    long long off = 0;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return 3;
    if (fl & O_NONBLOCK) return 4;
    while (off < CHILD_TOTAL) {
        size_t len = (size_t)(CHILD_TOTAL - off < CHILD_CHUNK ? CHILD_TOTAL - off : CHILD_CHUNK);
        for (size_t i = 0; i < len; i++) buf[i] = gen(off + (long long)i);
        ssize_t w = write(fd, buf, len);
        if (w != (ssize_t)len) {
            fprintf(stderr, "child: write returned %zd of %zu at %lld: %s\n", w, len, off,
                    w < 0 ? strerror(errno) : "short");
            return w < 0 && errno == EAGAIN ? 5 : 6;
        }
        off += (long long)len;
    }
    close(fd);
    return 0;
}

static void forked_writer(int exec_self) {
    int fds[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    /* Small buffers so the child must wait for the parent's reader many times. */
    int small = 8192;
    setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    struct reader r = {.fd = fds[0], .want = CHILD_TOTAL};
    pthread_t tr;
    CHECK_EQ(pthread_create(&tr, NULL, reader_main, &r), 0);
    usleep(20000); /* the reader parks on the empty socket before the fork */
    /* Also a parent thread has been blocked on the write end's peer... and touch fds[1]'s
     * flags the way a program would, before forking. */
    CHECK_EQ(fcntl(fds[1], F_GETFL) & O_NONBLOCK, 0);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        if (exec_self) {
            char fdarg[16];
            snprintf(fdarg, sizeof fdarg, "%d", fds[1]);
            char *argv[] = {(char *)gw_self(), (char *)"--child-write", fdarg, NULL};
            execv(argv[0], argv);
            _exit(126);
        }
        _exit(child_write(fds[1]));
    }
    close(fds[1]);
    CHECK_EQ(pthread_join(tr, NULL), 0); /* parks green; the child keeps writing */
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "child (%s) failed: status 0x%x (4: fd was O_NONBLOCK, 5: EAGAIN, 6: other)",
          exec_self ? "exec" : "fork", status);
    CHECK(!r.bad, "parent reader: %s", r.what);
    CHECK_EQ(r.count, CHILD_TOTAL);
    char one;
    CHECK_EQ(read(fds[0], &one, 1), 0); /* the child closed it: EOF, nothing extra */
    close(fds[0]);
    printf("fdopen_stdio: %s child wrote 1 MiB to an inherited socket, parent read %lld bytes\n",
           exec_self ? "exec'd" : "forked", r.count);
}

static int g_sv[2];

static void *parked_recv_main(void *arg) {
    (void)arg;
    char b[16];
    return (void *)(intptr_t)recv(g_sv[0], b, sizeof b, 0);
}

static void *forker_main(void *arg) {
    (void)arg;
    pid_t pid = fork();
    if (pid < 0) return (void *)(intptr_t)-1;
    if (pid == 0) {
        pthread_t r;
        if (pthread_create(&r, NULL, parked_recv_main, NULL) != 0) _exit(2);
        usleep(50000);
        if (send(g_sv[1], "child", 5, 0) != 5) _exit(3);
        void *n;
        if (pthread_join(r, &n) != 0) _exit(4);
        _exit((intptr_t)n == 5 ? 0 : 5);
    }
    int st = -1;
    if (waitpid(pid, &st, 0) != pid) return (void *)(intptr_t)-2;
    return (void *)(intptr_t)st;
}

static void fork_from_thread(void) {
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, g_sv), 0);
    pthread_t p;
    CHECK_EQ(pthread_create(&p, NULL, parked_recv_main, NULL), 0);
    usleep(20000); /* it parks on g_sv[0] */
    CHECK_EQ(send(g_sv[1], "first", 5, 0), 5);
    void *n;
    CHECK_EQ(pthread_join(p, &n), 0);
    CHECK_EQ((intptr_t)n, 5);
    pthread_t f;
    CHECK_EQ(pthread_create(&f, NULL, forker_main, NULL), 0);
    void *st;
    CHECK_EQ(pthread_join(f, &st), 0);
    CHECK((intptr_t)st == 0, "child forked from a thread: status 0x%lx (2 create, 3 send, 4 join, "
          "5 recv got the wrong count; -1/-2 fork/waitpid)", (long)(intptr_t)st);
    char extra;
    CHECK_EQ(recv(g_sv[0], &extra, 1, MSG_DONTWAIT), -1); /* the child consumed it all */
    close(g_sv[0]);
    close(g_sv[1]);
    printf("fdopen_stdio: child forked from a thread used an inherited socket green\n");
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--child-write")) return child_write(atoi(argv[2]));
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);
    gw_watchdog("fdopen_stdio", 12);
    gw_phase = "forked child writing 1 MiB to an inherited socket";
    forked_writer(0);
    gw_phase = "exec'd child writing 1 MiB to an inherited socket";
    forked_writer(1);
    gw_phase = "fork from a thread, child's threads on an inherited socket";
    fork_from_thread();
    gw_phase = "regular file on the number of an fclose'd socket";
    fclose_then_file();
    gw_phase = "fdopen(unix socket, \"w\") + fwrite 8 MiB + fclose, reader thread";
    stdio_write("unix");
    gw_phase = "fdopen(tcp socket, \"w\") + fwrite 8 MiB + fclose, reader thread";
    stdio_write("tcp");
    gw_phase = "fdopen(unix socket, \"r\") + fread 8 MiB, writer thread";
    stdio_read();
    return 0;
}
