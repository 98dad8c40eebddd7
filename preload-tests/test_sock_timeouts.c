/* SO_RCVTIMEO / SO_SNDTIMEO on blocking sockets, with a runnable "ticker" thread beside the
 * waiting one (under the preload the wait must be green: the ticker keeps ticking).
 *  - SO_RCVTIMEO 200 ms, nothing sent: recv, read, recvmsg (TCP), recvfrom (UDP) and accept (on
 *    a listener) return -1 EAGAIN after >= 190 ms and < 2 s;
 *  - SO_RCVTIMEO 1 s, data sent after 50 ms by another thread: recv returns it well before 1 s;
 *  - SO_RCVTIMEO 200 ms + MSG_WAITALL with only part of the data there: the partial count;
 *  - timeout set back to {0,0}: recv waits (here 300 ms) until data comes;
 *  - SO_SNDTIMEO 200 ms, peer not reading (TCP and AF_UNIX): a big send returns a partial count
 *    after >= 190 ms; once the socket is full, send and write return -1 EAGAIN after >= 190 ms;
 *  - getsockopt reports the timeouts set;
 *  - a new socket that gets the number of a closed socket which had SO_RCVTIMEO 200 ms has no
 *    timeout: recv waits 400 ms for data.
 * (connect with SO_SNDTIMEO against a full backlog is not tested: hard to set up reliably.)
 */
#include "gwtest.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>

static void set_timeout(int fd, int opt, long ms) {
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    CHECK_EQ(setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv), 0);
    struct timeval got = {0, 0};
    socklen_t l = sizeof got;
    CHECK_EQ(getsockopt(fd, SOL_SOCKET, opt, &got, &l), 0);
    CHECK_EQ(got.tv_sec * 1000 + got.tv_usec / 1000, ms);
}

/* Runs call, which must give -1 EAGAIN after 190 ms .. 2 s while the ticker keeps going. */
#define CHECK_TIMES_OUT(call)                                                                  \
    do {                                                                                       \
        long ticks0_ = gw_ticks;                                                                \
        long long t0_ = gw_now_ns();                                                           \
        errno = 0;                                                                             \
        ssize_t r_ = (call);                                                                   \
        int e_ = errno;                                                                        \
        long long ms_ = gw_ms_since(t0_);                                                      \
        long dt_ = gw_ticks - ticks0_;                                                          \
        CHECK(r_ == -1 && (e_ == EAGAIN || e_ == EWOULDBLOCK), "%s returned %zd, errno %s",    \
              #call, r_, strerror(e_));                                                        \
        CHECK(ms_ >= 190 && ms_ < 2000, "%s timed out after %lld ms (timeout 200)", #call,     \
              ms_);                                                                            \
        CHECK(dt_ >= 10, "%s: the ticker ticked %ld times during the wait", #call, dt_);       \
        printf("sock_timeouts: %-55s -1 EAGAIN after %lld ms (%ld ticks)\n", #call, ms_, dt_); \
    } while (0)

struct delayed {
    int fd, delay_ms;
    const char *msg;
};

static void *delayed_send(void *arg) {
    struct delayed *d = arg;
    usleep((useconds_t)d->delay_ms * 1000);
    ssize_t n = send(d->fd, d->msg, strlen(d->msg), 0);
    return (void *)(intptr_t)(n == (ssize_t)strlen(d->msg));
}

static void send_timeouts(const char *kind, int fds[2]) {
    /* fds[1] sends, fds[0] never reads */
    int small = 16384;
    CHECK_EQ(setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    CHECK_EQ(setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    set_timeout(fds[1], SO_SNDTIMEO, 200);
    size_t big = 8 << 20;
    char *buf = calloc(1, big);
    long ticks0 = gw_ticks;
    long long t0 = gw_now_ns();
    ssize_t n = send(fds[1], buf, big, 0);
    long long ms = gw_ms_since(t0);
    CHECK(n > 0 && (size_t)n < big, "%s: big send with SO_SNDTIMEO returned %zd (%s)", kind, n,
          n < 0 ? strerror(errno) : "");
    CHECK(ms >= 190 && ms < 2000, "%s: partial send returned after %lld ms", kind, ms);
    CHECK(gw_ticks - ticks0 >= 10, "%s: ticker ticked %ld times", kind, gw_ticks - ticks0);
    printf("sock_timeouts: %s: send(8 MiB) with SO_SNDTIMEO 200 ms -> %zd after %lld ms\n", kind, n,
           ms);
    /* now the socket is full */
    CHECK_TIMES_OUT(send(fds[1], buf, 100000, 0));
    CHECK_TIMES_OUT(write(fds[1], buf, 5000));
    struct iovec iov = {buf, 3000};
    CHECK_TIMES_OUT(writev(fds[1], &iov, 1));
    free(buf);
    close(fds[0]);
    close(fds[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);
    gw_watchdog("sock_timeouts", 13);
    pthread_t ticker;
    CHECK_EQ(pthread_create(&ticker, NULL, gw_ticker, NULL), 0);
    usleep(10000);

    int fds[2];
    char buf[200];
    gw_phase = "SO_RCVTIMEO on TCP";
    gw_tcp_pair(fds);
    set_timeout(fds[0], SO_RCVTIMEO, 200);
    CHECK_TIMES_OUT(recv(fds[0], buf, sizeof buf, 0));
    CHECK_TIMES_OUT(read(fds[0], buf, sizeof buf));
    struct iovec iov = {buf, sizeof buf};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    CHECK_TIMES_OUT(recvmsg(fds[0], &mh, 0));
    CHECK_TIMES_OUT(readv(fds[0], &iov, 1));

    gw_phase = "SO_RCVTIMEO 1 s, data after 50 ms";
    set_timeout(fds[0], SO_RCVTIMEO, 1000);
    struct delayed d = {.fd = fds[1], .delay_ms = 50, .msg = "hello"};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, delayed_send, &d), 0);
    long long t0 = gw_now_ns();
    ssize_t n = recv(fds[0], buf, sizeof buf, 0);
    long long ms = gw_ms_since(t0);
    CHECK(n == 5 && !memcmp(buf, "hello", 5), "recv with timeout: %zd (%s)", n,
          n < 0 ? strerror(errno) : "");
    CHECK(ms >= 30 && ms < 800, "data sent at 50 ms came after %lld ms", ms);
    void *ok;
    CHECK_EQ(pthread_join(t, &ok), 0);
    CHECK(ok == (void *)1, "delayed send failed");

    gw_phase = "SO_RCVTIMEO + MSG_WAITALL, partial";
    set_timeout(fds[0], SO_RCVTIMEO, 200);
    CHECK_EQ(send(fds[1], "0123456789", 10, 0), 10);
    t0 = gw_now_ns();
    n = recv(fds[0], buf, 100, MSG_WAITALL);
    ms = gw_ms_since(t0);
    CHECK(n == 10 && !memcmp(buf, "0123456789", 10), "MSG_WAITALL with timeout: %zd (%s)", n,
          n < 0 ? strerror(errno) : "");
    CHECK(ms >= 190 && ms < 2000, "MSG_WAITALL partial returned after %lld ms", ms);

    gw_phase = "SO_RCVTIMEO back to 0 (infinite)";
    set_timeout(fds[0], SO_RCVTIMEO, 0);
    d.delay_ms = 300;
    d.msg = "late";
    CHECK_EQ(pthread_create(&t, NULL, delayed_send, &d), 0);
    t0 = gw_now_ns();
    n = recv(fds[0], buf, sizeof buf, 0);
    ms = gw_ms_since(t0);
    CHECK(n == 4 && !memcmp(buf, "late", 4), "recv without timeout: %zd (%s)", n,
          n < 0 ? strerror(errno) : "");
    CHECK(ms >= 250, "recv without timeout returned after %lld ms", ms);
    CHECK_EQ(pthread_join(t, &ok), 0);
    close(fds[0]);
    close(fds[1]);

    gw_phase = "SO_RCVTIMEO on UDP";
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(u >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(u, (struct sockaddr *)&a, sizeof a), 0);
    set_timeout(u, SO_RCVTIMEO, 200);
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    CHECK_TIMES_OUT(recvfrom(u, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
    close(u);

    gw_phase = "SO_RCVTIMEO on a listener (accept)";
    int l = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(l >= 0, "socket: %s", strerror(errno));
    a.sin_port = 0;
    CHECK_EQ(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(listen(l, 4), 0);
    set_timeout(l, SO_RCVTIMEO, 200);
    CHECK_TIMES_OUT(accept(l, NULL, NULL));
    CHECK_TIMES_OUT(accept4(l, NULL, NULL, SOCK_CLOEXEC));
    close(l);

    gw_phase = "SO_SNDTIMEO on TCP";
    gw_tcp_pair(fds);
    send_timeouts("tcp", fds);
    gw_phase = "SO_SNDTIMEO on AF_UNIX";
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    send_timeouts("unix", fds);

    gw_phase = "fd number reused after a socket with SO_RCVTIMEO";
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    set_timeout(fds[0], SO_RCVTIMEO, 200);
    CHECK_TIMES_OUT(recv(fds[0], buf, sizeof buf, 0));
    int old0 = fds[0], old1 = fds[1];
    close(fds[0]);
    close(fds[1]);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    CHECK(fds[0] == old0 || fds[1] == old0, "numbers not reused: %d,%d then %d,%d", old0, old1,
          fds[0], fds[1]);
    int r = fds[0] == old0 ? fds[0] : fds[1], w = r == fds[0] ? fds[1] : fds[0];
    struct timeval none = {1, 1};
    socklen_t nl = sizeof none;
    CHECK_EQ(getsockopt(r, SOL_SOCKET, SO_RCVTIMEO, &none, &nl), 0);
    CHECK_EQ(none.tv_sec + none.tv_usec, 0);
    d.fd = w;
    d.delay_ms = 400;
    d.msg = "fresh";
    CHECK_EQ(pthread_create(&t, NULL, delayed_send, &d), 0);
    t0 = gw_now_ns();
    n = recv(r, buf, sizeof buf, 0);
    ms = gw_ms_since(t0);
    CHECK(n == 5 && !memcmp(buf, "fresh", 5), "recv on the new socket (fd %d, no timeout): %zd (%s) "
          "after %lld ms", r, n, n < 0 ? strerror(errno) : "", ms);
    CHECK(ms >= 350, "recv without timeout returned after %lld ms", ms);
    CHECK_EQ(pthread_join(t, &ok), 0);
    close(fds[0]);
    close(fds[1]);

    gw_phase = "ending";
    gw_ticker_stop = 1;
    CHECK_EQ(pthread_join(ticker, NULL), 0);
    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1);
    return 0;
}
