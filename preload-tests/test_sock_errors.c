/* Socket error paths, with a runnable "ticker" thread beside (so green waits really happen),
 * each checked against what Linux does natively:
 *  - connect to a closed port: -1 ECONNREFUSED (main and a thread); connected UDP socket to a
 *    closed port: send works, then a recv parked in another thread gets -1 ECONNREFUSED;
 *  - peer reset (SO_LINGER {1,0} + close): a thread parked in recv gets -1 ECONNRESET, the next
 *    recv 0; a later send -1 EPIPE with one SIGPIPE;
 *  - write to a closed peer (AF_UNIX, pipe, TCP): -1 EPIPE and exactly one SIGPIPE each (counted
 *    by a handler); with MSG_NOSIGNAL: -1 EPIPE and no signal; also from another thread;
 *  - a big blocking write parked on a full socket when the peer closes: AF_UNIX returns the
 *    partial count with NO SIGPIPE, the next write -1 EPIPE + SIGPIPE; TCP (peer closes with
 *    unread data: RST) returns the partial count, no SIGPIPE, then the next write reports
 *    -1 ECONNRESET (no signal), the one after -1 EPIPE + SIGPIPE;
 *  - shutdown: SHUT_RD on the socket a thread is parked reading wakes it with 0, the peer's
 *    SHUT_WR gives a parked reader 0, shutdown(SHUT_RDWR) of a listener wakes a thread parked in
 *    accept with -1 EINVAL; a 1 MiB pipe write parked on a full pipe whose reader closes
 *    returns the partial count (65536) WITH one SIGPIPE (pipes differ from sockets here);
 *  - ENOTCONN / EPIPE on an unconnected TCP socket, EISCONN, EINVAL for accept on a
 *    non-listening socket, EBADF for read/recv/write/close on a closed fd;
 *  - close() of a fd another thread is parked on (recv): under the preload the parked thread
 *    gets -1 EBADF (natively Linux keeps it blocked on the old file, so there it gets the data
 *    written later to the peer); same for dup2() over the fd;
 *  - close + a new socket that gets the same number + data on the new socket: the old waiter
 *    never reads the new socket's data (EBADF under the preload; natively it waits for the old
 *    socket's data), and the new socket's data stays there for its owner.
 */
#include "gwtest.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

static volatile sig_atomic_t g_sigpipes;
static void on_sigpipe(int sig) {
    (void)sig;
    g_sigpipes++;
}

static struct sockaddr_in g_addr; /* the listener's */
static int g_listen;

static int tcp_connect(void) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(c >= 0, "socket: %s", strerror(errno));
    CHECK(connect(c, (struct sockaddr *)&g_addr, sizeof g_addr) == 0, "connect: %s",
          strerror(errno));
    return c;
}

static void tcp_pair(int fds[2]) {
    fds[1] = tcp_connect();
    fds[0] = accept(g_listen, NULL, NULL);
    CHECK(fds[0] >= 0, "accept: %s", strerror(errno));
}

/* A port on 127.0.0.1 with nothing bound to it (bound then closed). */
static struct sockaddr_in closed_port(int type) {
    int s = socket(AF_INET, type, 0);
    CHECK(s >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    CHECK_EQ(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(getsockname(s, (struct sockaddr *)&a, &al), 0);
    close(s);
    return a;
}

struct waiter {
    int fd;
    char buf[64];
    ssize_t n;
    int err;
    volatile long tid;
};

static void *waiter_main(void *arg) {
    struct waiter *w = arg;
    w->tid = syscall(SYS_gettid);
    errno = 0;
    w->n = recv(w->fd, w->buf, sizeof w->buf, 0);
    w->err = errno;
    return NULL;
}

static void start_waiter(pthread_t *t, struct waiter *w, int fd) {
    memset(w, 0, sizeof *w);
    w->fd = fd;
    w->n = -2;
    CHECK_EQ(pthread_create(t, NULL, waiter_main, w), 0);
    usleep(100000);
    if (!gw_preloaded()) {
        /* natively, make sure the thread really sleeps in the kernel's recvfrom (a loaded
         * machine may not have run it yet) */
        char path[64], line[64];
        int in_recv = 0;
        for (int i = 0; i < 300 && !in_recv; i++) {
            if (w->tid) {
                snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", w->tid);
                FILE *f = fopen(path, "r");
                if (f) {
                    if (fgets(line, sizeof line, f) && atol(line) == SYS_recvfrom) in_recv = 1;
                    fclose(f);
                }
            }
            if (!in_recv) usleep(10000);
        }
        CHECK(in_recv, "the native waiter never got into recvfrom");
    }
    CHECK(w->n == -2, "the waiter did not wait: recv returned %zd (%s)", w->n, strerror(w->err));
}

static void *connect_refused_main(void *arg) {
    struct sockaddr_in *a = arg;
    int c = socket(AF_INET, SOCK_STREAM, 0);
    errno = 0;
    int rc = connect(c, (struct sockaddr *)a, sizeof *a);
    int e = errno;
    close(c);
    return (void *)(intptr_t)(rc == -1 ? e : 0);
}

struct writer {
    int fd, flags;
    size_t len;
    ssize_t n;
    int err;
    int sigpipes; /* counted during the call */
};

static void *writer_main(void *arg) {
    struct writer *w = arg;
    char *buf = calloc(1, w->len);
    int before = g_sigpipes;
    errno = 0;
    w->n = w->flags < 0 ? write(w->fd, buf, w->len) : send(w->fd, buf, w->len, w->flags);
    w->err = errno;
    w->sigpipes = g_sigpipes - before;
    free(buf);
    return NULL;
}

struct accepter {
    int fd, rc, err;
};

static void *accept_main(void *arg) {
    struct accepter *a = arg;
    errno = 0;
    a->rc = accept(a->fd, NULL, NULL);
    a->err = errno;
    return NULL;
}

/* One write to fd; checks its result, errno and the SIGPIPEs it raised. */
static void check_write(int fd, int flags, ssize_t want_n, int want_err, int want_sigs,
                        const char *what) {
    struct writer w = {.fd = fd, .flags = flags, .len = 10};
    writer_main(&w);
    CHECK(w.n == want_n && (want_n >= 0 || w.err == want_err) && w.sigpipes == want_sigs,
          "%s: returned %zd errno %s with %d SIGPIPE; want %zd %s with %d", what, w.n,
          strerror(w.err), w.sigpipes, want_n, strerror(want_err), want_sigs);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigpipe;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGPIPE, &sa, NULL), 0);
    gw_watchdog("sock_errors", 13);
    const int green = gw_preloaded();

    pthread_t ticker;
    CHECK_EQ(pthread_create(&ticker, NULL, gw_ticker, NULL), 0);
    usleep(10000);

    g_listen = gw_tcp_listen(0, 16, &g_addr);

    /* connect refused */
    gw_phase = "connect to a closed port";
    struct sockaddr_in dead = closed_port(SOCK_STREAM);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    errno = 0;
    CHECK_EQ(connect(c, (struct sockaddr *)&dead, sizeof dead), -1);
    CHECK(errno == ECONNREFUSED, "connect: %s", strerror(errno));
    close(c);
    pthread_t t;
    void *ret;
    CHECK_EQ(pthread_create(&t, NULL, connect_refused_main, &dead), 0);
    CHECK_EQ(pthread_join(t, &ret), 0);
    CHECK((intptr_t)ret == ECONNREFUSED, "connect in a thread: %s", strerror((int)(intptr_t)ret));

    gw_phase = "UDP ECONNREFUSED";
    struct sockaddr_in udead = closed_port(SOCK_DGRAM);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK_EQ(connect(u, (struct sockaddr *)&udead, sizeof udead), 0);
    struct waiter w;
    start_waiter(&t, &w, u);
    CHECK_EQ(send(u, "x", 1, 0), 1);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(w.n == -1 && w.err == ECONNREFUSED, "recv on connected UDP: %zd %s", w.n, strerror(w.err));
    close(u);

    /* peer reset */
    gw_phase = "peer reset while parked in recv";
    int fds[2];
    tcp_pair(fds);
    start_waiter(&t, &w, fds[0]);
    struct linger lg = {1, 0};
    CHECK_EQ(setsockopt(fds[1], SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(fds[1]);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(w.n == -1 && w.err == ECONNRESET, "parked recv after RST: %zd %s", w.n, strerror(w.err));
    char ch;
    CHECK_EQ(recv(fds[0], &ch, 1, 0), 0);
    g_sigpipes = 0;
    check_write(fds[0], 0, -1, EPIPE, 1, "send after RST");
    close(fds[0]);

    gw_phase = "peer reset, then recv";
    tcp_pair(fds);
    CHECK_EQ(setsockopt(fds[1], SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(fds[1]);
    usleep(20000);
    errno = 0;
    CHECK_EQ(read(fds[0], &ch, 1), -1);
    CHECK(errno == ECONNRESET, "read after RST: %s", strerror(errno));
    close(fds[0]);

    /* EPIPE + SIGPIPE */
    gw_phase = "EPIPE + SIGPIPE";
    g_sigpipes = 0;
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    close(fds[1]);
    check_write(fds[0], -1, -1, EPIPE, 1, "unix write to closed peer");
    check_write(fds[0], 0, -1, EPIPE, 1, "unix send to closed peer");
    check_write(fds[0], MSG_NOSIGNAL, -1, EPIPE, 0, "unix send MSG_NOSIGNAL to closed peer");
    struct writer tw = {.fd = fds[0], .flags = -1, .len = 10};
    CHECK_EQ(pthread_create(&t, NULL, writer_main, &tw), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(tw.n == -1 && tw.err == EPIPE && tw.sigpipes == 1, "write in a thread: %zd %s, %d SIGPIPE",
          tw.n, strerror(tw.err), tw.sigpipes);
    CHECK_EQ(g_sigpipes, 3);
    close(fds[0]);

    int p[2];
    CHECK_EQ(pipe(p), 0);
    close(p[0]);
    check_write(p[1], -1, -1, EPIPE, 1, "pipe write with no reader");
    close(p[1]);

    tcp_pair(fds);
    close(fds[0]);
    check_write(fds[1], -1, 10, 0, 0, "tcp: first write after the peer closed");
    usleep(50000); /* the peer's RST comes back */
    check_write(fds[1], MSG_NOSIGNAL, -1, EPIPE, 0, "tcp send MSG_NOSIGNAL to closed peer");
    check_write(fds[1], -1, -1, EPIPE, 1, "tcp write to closed peer");
    close(fds[1]);

    /* shutdown wakes parked calls */
    gw_phase = "SHUT_RD on a socket a thread is parked reading";
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    start_waiter(&t, &w, fds[0]);
    CHECK_EQ(shutdown(fds[0], SHUT_RD), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(w.n == 0, "parked recv after its own SHUT_RD: %zd %s", w.n, strerror(w.err));
    gw_phase = "peer SHUT_WR";
    start_waiter(&t, &w, fds[1]);
    CHECK_EQ(shutdown(fds[0], SHUT_WR), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(w.n == 0, "parked recv after the peer's SHUT_WR: %zd %s", w.n, strerror(w.err));
    close(fds[0]);
    close(fds[1]);
    gw_phase = "shutdown of a listener a thread is parked accepting on";
    {
        int l2 = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a2 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        CHECK_EQ(bind(l2, (struct sockaddr *)&a2, sizeof a2), 0);
        CHECK_EQ(listen(l2, 4), 0);
        struct accepter ac = {l2, -2, 0};
        pthread_t at;
        CHECK_EQ(pthread_create(&at, NULL, accept_main, &ac), 0);
        usleep(100000);
        CHECK(ac.rc == -2, "accept did not wait: %d", ac.rc);
        CHECK_EQ(shutdown(l2, SHUT_RDWR), 0);
        CHECK_EQ(pthread_join(at, NULL), 0);
        CHECK(ac.rc == -1 && ac.err == EINVAL, "accept after the listener's shutdown: %d %s",
              ac.rc, strerror(ac.err));
        close(l2);
    }
    gw_phase = "pipe: parked big write, reader closes";
    CHECK_EQ(pipe(p), 0);
    {
        struct writer pw = {.fd = p[1], .flags = -1, .len = 1 << 20};
        pthread_t pc = gw_close_later(p[0], 100);
        writer_main(&pw);
        CHECK_EQ(pthread_join(pc, NULL), 0);
        CHECK(pw.n == 65536 && pw.sigpipes == 1,
              "pipe: 1 MiB write when the reader closed: %zd (%s), %d SIGPIPE; natively 65536 "
              "with one SIGPIPE", pw.n, pw.n < 0 ? strerror(pw.err) : "", pw.sigpipes);
        check_write(p[1], -1, -1, EPIPE, 1, "pipe: the write after");
    }
    close(p[1]);

    /* plain errors */
    gw_phase = "ENOTCONN / EINVAL / EBADF";
    c = socket(AF_INET, SOCK_STREAM, 0);
    errno = 0;
    CHECK_EQ(recv(c, &ch, 1, 0), -1);
    CHECK(errno == ENOTCONN, "recv on an unconnected socket: %s", strerror(errno));
    errno = 0;
    CHECK_EQ(read(c, &ch, 1), -1);
    CHECK(errno == ENOTCONN, "read on an unconnected socket: %s", strerror(errno));
    g_sigpipes = 0;
    check_write(c, 0, -1, EPIPE, 1, "send on an unconnected socket");
    errno = 0;
    CHECK_EQ(accept(c, NULL, NULL), -1);
    CHECK(errno == EINVAL, "accept on a non-listening socket: %s", strerror(errno));
    close(c);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    int closed_fd = fds[0];
    close(fds[0]);
    close(fds[1]);
    errno = 0;
    CHECK_EQ(read(closed_fd, &ch, 1), -1);
    CHECK(errno == EBADF, "read of a closed fd: %s", strerror(errno));
    errno = 0;
    CHECK_EQ(recv(closed_fd, &ch, 1, 0), -1);
    CHECK(errno == EBADF, "recv of a closed fd: %s", strerror(errno));
    errno = 0;
    CHECK_EQ(write(closed_fd, "x", 1), -1);
    CHECK(errno == EBADF, "write of a closed fd: %s", strerror(errno));
    errno = 0;
    CHECK_EQ(close(closed_fd), -1);
    CHECK(errno == EBADF, "close of a closed fd: %s", strerror(errno));

    /* close while another thread is parked on the fd */
    gw_phase = "close while a thread is parked in recv";
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    start_waiter(&t, &w, fds[0]);
    CHECK_EQ(close(fds[0]), 0);
    usleep(50000);
    if (!green) CHECK(w.n == -2, "natively the waiter returned after close: %zd", w.n);
    CHECK_EQ(send(fds[1], "late", 4, MSG_NOSIGNAL), green ? -1 : 4); /* preload: peer is gone */
    CHECK_EQ(pthread_join(t, NULL), 0);
    if (green)
        CHECK(w.n == -1 && w.err == EBADF, "waiter after close: %zd %s (want -1 EBADF)", w.n,
              strerror(w.err));
    else
        CHECK(w.n == 4 && !memcmp(w.buf, "late", 4), "native waiter after close: %zd %s", w.n,
              strerror(w.err));
    close(fds[1]);

    gw_phase = "dup2 over a fd a thread is parked on";
    int other[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, other), 0);
    start_waiter(&t, &w, fds[0]);
    CHECK_EQ(dup2(other[0], fds[0]), fds[0]);
    usleep(50000);
    if (!green) CHECK(w.n == -2, "natively the waiter returned after dup2: %zd", w.n);
    CHECK_EQ(send(other[1], "other", 5, 0), 5);
    CHECK_EQ(send(fds[1], "old", 3, MSG_NOSIGNAL), green ? -1 : 3);
    CHECK_EQ(pthread_join(t, NULL), 0);
    if (green)
        CHECK(w.n == -1 && w.err == EBADF, "waiter after dup2: %zd %s (want -1 EBADF)", w.n,
              strerror(w.err));
    else
        CHECK(w.n == 3 && !memcmp(w.buf, "old", 3), "native waiter after dup2: %zd %s", w.n,
              strerror(w.err));
    char buf[64];
    CHECK_EQ(recv(fds[0], buf, sizeof buf, MSG_DONTWAIT), 5); /* fds[0] is now other[0]'s socket */
    CHECK(!memcmp(buf, "other", 5), "data through the dup2'd fd");
    close(fds[0]);
    close(fds[1]);
    close(other[0]);
    close(other[1]);

    gw_phase = "close, a new socket with the same number, data on it";
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    int oldfd = fds[0], oldpeer = fds[1];
    start_waiter(&t, &w, oldfd);
    CHECK_EQ(close(oldfd), 0);
    int nfd[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, nfd), 0);
    CHECK(nfd[0] == oldfd, "new socket got fd %d, not %d", nfd[0], oldfd);
    CHECK_EQ(send(nfd[1], "new!", 4, 0), 4);
    usleep(100000);
    if (!green) CHECK(w.n == -2, "natively the old waiter returned: %zd", w.n);
    else CHECK(w.n == -1 && w.err == EBADF, "old waiter: %zd %s (want -1 EBADF)", w.n, strerror(w.err));
    CHECK(w.n < 0 || memcmp(w.buf, "new!", 4) != 0, "the old waiter read the new socket's data");
    int avail = -1;
    CHECK_EQ(ioctl(nfd[0], FIONREAD, &avail), 0);
    CHECK_EQ(avail, 4);
    CHECK_EQ(send(oldpeer, "old", 3, MSG_NOSIGNAL), green ? -1 : 3);
    CHECK_EQ(pthread_join(t, NULL), 0);
    if (!green)
        CHECK(w.n == 3 && !memcmp(w.buf, "old", 3), "native old waiter: %zd %s", w.n, strerror(w.err));
    else
        CHECK(w.n == -1 && w.err == EBADF, "old waiter: %zd %s", w.n, strerror(w.err));
    CHECK_EQ(recv(nfd[0], buf, sizeof buf, 0), 4);
    CHECK(!memcmp(buf, "new!", 4), "the new socket's data");
    close(nfd[0]);
    close(nfd[1]);
    close(oldpeer);

    gw_phase = "connect on a connected socket";
    tcp_pair(fds);
    errno = 0;
    CHECK_EQ(connect(fds[1], (struct sockaddr *)&g_addr, sizeof g_addr), -1);
    CHECK(errno == EISCONN, "second connect: %s", strerror(errno));
    close(fds[0]);
    close(fds[1]);

    /* a big write parked on a full socket when the peer closes */
    gw_phase = "AF_UNIX: parked big write, peer closes";
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    struct writer bw = {.fd = fds[0], .flags = -1, .len = 8 << 20};
    pthread_t ct = gw_close_later(fds[1], 100);
    writer_main(&bw);
    CHECK_EQ(pthread_join(ct, NULL), 0);
    CHECK(bw.n > 0 && (size_t)bw.n < bw.len && bw.sigpipes == 0,
          "unix: big write when the peer closed: %zd (%s), %d SIGPIPE; natively a partial count "
          "and no SIGPIPE", bw.n, bw.n < 0 ? strerror(bw.err) : "", bw.sigpipes);
    check_write(fds[0], -1, -1, EPIPE, 1, "unix: the write after");
    close(fds[0]);

    gw_phase = "TCP: parked big write, peer closes (RST)";
    tcp_pair(fds);
    bw.fd = fds[1];
    ct = gw_close_later(fds[0], 100);
    writer_main(&bw);
    CHECK_EQ(pthread_join(ct, NULL), 0);
    CHECK(bw.n > 0 && (size_t)bw.n < bw.len && bw.sigpipes == 0,
          "tcp: big write when the peer closed: %zd (%s), %d SIGPIPE; natively a partial count "
          "and no SIGPIPE", bw.n, bw.n < 0 ? strerror(bw.err) : "", bw.sigpipes);
    check_write(fds[1], -1, -1, ECONNRESET, 0, "tcp: the first write after (pending RST error)");
    check_write(fds[1], -1, -1, EPIPE, 1, "tcp: the second write after");
    close(fds[1]);

    gw_phase = "ending";
    gw_ticker_stop = 1;
    CHECK_EQ(pthread_join(ticker, NULL), 0);
    CHECK(gw_ticks > 50, "the ticker ticked only %ld times", gw_ticks);
    if (green) CHECK_EQ(gw_os_threads(), 1);
    printf("sock_errors: all error paths as native%s\n", green ? " (+ green close/dup2 wakeups)" : "");
    return 0;
}
