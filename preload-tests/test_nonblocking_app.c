/* A program that does its own non-blocking I/O keeps plain libc semantics.
 * While a "ticker" thread is runnable (so a green library could switch away) and a "sleeper"
 * thread is parked on a pipe:
 *  - sockets made non-blocking with SOCK_NONBLOCK, fcntl(F_SETFL, O_NONBLOCK) and
 *    ioctl(FIONBIO), and recv/send with MSG_DONTWAIT on blocking sockets, return -1 EAGAIN at once
 *    (read, recv, recvfrom, recvmsg, write-to-full, send-to-full), pipes likewise;
 *  - fcntl(F_GETFL) is exactly what the program set: O_RDWR, then O_RDWR|O_NONBLOCK, then O_RDWR
 *    again; a MSG_DONTWAIT call leaves it unchanged, and on a blocking socket that another thread
 *    is parked reading, F_GETFL (and the kernel's own view, /proc/self/fdinfo) has no O_NONBLOCK;
 *  - clearing O_NONBLOCK (fcntl or FIONBIO 0) makes recv block again until data arrives;
 *  - accept on a non-blocking listener -> EAGAIN at once; accept4(SOCK_NONBLOCK|SOCK_CLOEXEC)
 *    puts those flags on the new socket, plain accept/accept4(0) does not (even from a
 *    non-blocking listener), also when accept4 waited for the connection;
 *  - a non-blocking TCP connect returns -1 EINPROGRESS and completes (SO_ERROR 0);
 *  - while a thread is parked in accept() on a blocking listener, or in sendfile() to a blocking
 *    socket nobody reads yet, neither F_GETFL nor the kernel (fdinfo) shows O_NONBLOCK.
 */
#include "gwtest.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>

static void *sleeper_main(void *arg) {
    char c;
    ssize_t n = read(*(int *)arg, &c, 1);
    return (void *)(intptr_t)n;
}

/* The fd's flags as the kernel has them (/proc/self/fdinfo), or -1. */
static int kernel_flags(int fd) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int flags = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "flags: %o", (unsigned *)&flags) == 1) break;
    fclose(f);
    return flags;
}

#define CHECK_EAGAIN_NOW(call)                                                                \
    do {                                                                                      \
        long long t0_ = gw_now_ns();                                                          \
        errno = 0;                                                                            \
        ssize_t r_ = (call);                                                                  \
        int e_ = errno;                                                                       \
        long long ms_ = gw_ms_since(t0_);                                                     \
        CHECK(r_ == -1 && (e_ == EAGAIN || e_ == EWOULDBLOCK), "%s returned %zd errno %s",    \
              #call, r_, strerror(e_));                                                       \
        CHECK(ms_ < 500, "%s took %lld ms to say EAGAIN", #call, ms_);                        \
    } while (0)

static void check_empty_nonblocking(int fd) {
    char buf[100];
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    struct iovec iov = {buf, sizeof buf};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    CHECK_EAGAIN_NOW(read(fd, buf, sizeof buf));
    CHECK_EAGAIN_NOW(recv(fd, buf, sizeof buf, 0));
    CHECK_EAGAIN_NOW(recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
    CHECK_EAGAIN_NOW(recvmsg(fd, &mh, 0));
    CHECK_EAGAIN_NOW(readv(fd, &iov, 1));
}

/* Fills fd's send side until EAGAIN (fd must be non-blocking or flags has MSG_DONTWAIT);
 * returns the bytes that went in. Then one more send must say EAGAIN at once. */
static long fill(int fd, int flags, int use_write) {
    static char buf[65536];
    long total = 0;
    for (;;) {
        ssize_t n = use_write ? write(fd, buf, sizeof buf) : send(fd, buf, sizeof buf, flags);
        if (n < 0) {
            CHECK(errno == EAGAIN || errno == EWOULDBLOCK, "fill: %s", strerror(errno));
            break;
        }
        total += n;
        CHECK(total < (1L << 30), "fill never saw EAGAIN");
    }
    if (use_write) CHECK_EAGAIN_NOW(write(fd, buf, 1000));
    else CHECK_EAGAIN_NOW(send(fd, buf, 1000, flags));
    return total;
}

static int connect_to(const struct sockaddr_in *a) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(c >= 0, "socket: %s", strerror(errno));
    CHECK(connect(c, (const struct sockaddr *)a, sizeof *a) == 0, "connect: %s", strerror(errno));
    return c;
}

struct delayed {
    int fd;
    int delay_ms;
    const char *msg;
    const struct sockaddr_in *addr; /* connect instead of send when set */
    int connected_fd;
};

static void *delayed_main(void *arg) {
    struct delayed *d = arg;
    usleep((useconds_t)d->delay_ms * 1000);
    if (d->addr) d->connected_fd = connect_to(d->addr);
    else if (send(d->fd, d->msg, strlen(d->msg), 0) != (ssize_t)strlen(d->msg)) return (void *)1;
    return NULL;
}

struct parked_reader {
    int fd;
    char buf[64];
    ssize_t n;
};

static void *parked_reader_main(void *arg) {
    struct parked_reader *p = arg;
    p->n = recv(p->fd, p->buf, sizeof p->buf, 0);
    return NULL;
}

/* recv on fd (blocking) must wait for a message sent 60 ms later by another thread. */
static void check_blocks_again(int fd, int peer, const char *msg) {
    struct delayed d = {.fd = peer, .delay_ms = 60, .msg = msg};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, delayed_main, &d), 0);
    char buf[64] = {0};
    long long t0 = gw_now_ns();
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    long long ms = gw_ms_since(t0);
    CHECK(n == (ssize_t)strlen(msg), "recv after clearing non-blocking: %zd (%s)", n,
          n < 0 ? strerror(errno) : "");
    CHECK(!strcmp(buf, msg), "got '%s'", buf);
    CHECK(ms >= 40, "recv returned after %lld ms: it did not wait", ms);
    void *ret;
    CHECK_EQ(pthread_join(t, &ret), 0);
    CHECK(ret == NULL, "delayed send failed");
}

struct acceptor_arg {
    int fd, rc, err;
};

static void *acceptor_main(void *arg) {
    struct acceptor_arg *a = arg;
    a->rc = accept(a->fd, NULL, NULL);
    a->err = errno;
    return NULL;
}

struct sendfile_arg {
    int out, in;
    ssize_t n;
};

static void *sendfile_main(void *arg) {
    struct sendfile_arg *s = arg;
    off_t off = 0;
    ssize_t total = 0;
    while (total < 16L << 20) {
        ssize_t n = sendfile(s->out, s->in, &off, (size_t)((16L << 20) - total));
        if (n <= 0) break;
        total += n;
    }
    s->n = total;
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);
    gw_watchdog("nonblocking_app", 12);

    int sp[2];
    CHECK_EQ(pipe(sp), 0);
    pthread_t sleeper, ticker;
    CHECK_EQ(pthread_create(&sleeper, NULL, sleeper_main, &sp[0]), 0);
    CHECK_EQ(pthread_create(&ticker, NULL, gw_ticker, NULL), 0);
    usleep(20000);

    int sv[2];
    /* 1. SOCK_NONBLOCK */
    gw_phase = "SOCK_NONBLOCK socketpair";
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    CHECK_EQ(fcntl(sv[0], F_GETFL), O_RDWR | O_NONBLOCK);
    check_empty_nonblocking(sv[0]);
    long filled = fill(sv[1], 0, 1);
    CHECK(filled > 0, "nothing fit");
    CHECK_EQ(fcntl(sv[0], F_GETFL), O_RDWR | O_NONBLOCK);
    close(sv[0]);
    close(sv[1]);

    /* 2. fcntl O_NONBLOCK set, then cleared */
    gw_phase = "fcntl O_NONBLOCK socketpair";
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CHECK_EQ(fcntl(sv[0], F_GETFL), O_RDWR);
    CHECK_EQ(fcntl(sv[0], F_SETFL, O_RDWR | O_NONBLOCK), 0);
    CHECK_EQ(fcntl(sv[0], F_GETFL), O_RDWR | O_NONBLOCK);
    CHECK_EQ(kernel_flags(sv[0]) & O_NONBLOCK, O_NONBLOCK);
    check_empty_nonblocking(sv[0]);
    CHECK_EQ(fcntl(sv[0], F_SETFL, O_RDWR), 0);
    CHECK_EQ(fcntl(sv[0], F_GETFL), O_RDWR);
    CHECK_EQ(kernel_flags(sv[0]) & O_NONBLOCK, 0);
    gw_phase = "recv after clearing O_NONBLOCK with fcntl";
    check_blocks_again(sv[0], sv[1], "after-fcntl");

    /* 3. ioctl FIONBIO on, then off */
    gw_phase = "ioctl FIONBIO";
    int on = 1, off = 0;
    CHECK_EQ(ioctl(sv[0], FIONBIO, &on), 0);
    CHECK_EQ(fcntl(sv[0], F_GETFL), O_RDWR | O_NONBLOCK);
    check_empty_nonblocking(sv[0]);
    CHECK_EQ(ioctl(sv[0], FIONBIO, &off), 0);
    CHECK_EQ(fcntl(sv[0], F_GETFL), O_RDWR);
    gw_phase = "recv after FIONBIO 0";
    check_blocks_again(sv[0], sv[1], "after-fionbio");

    /* 4. MSG_DONTWAIT on a blocking socket: EAGAIN, the fd stays blocking */
    gw_phase = "MSG_DONTWAIT";
    char buf[100];
    CHECK_EAGAIN_NOW(recv(sv[0], buf, sizeof buf, MSG_DONTWAIT));
    CHECK_EAGAIN_NOW(recvfrom(sv[0], buf, sizeof buf, MSG_DONTWAIT, NULL, NULL));
    struct iovec iov = {buf, sizeof buf};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    CHECK_EAGAIN_NOW(recvmsg(sv[0], &mh, MSG_DONTWAIT));
    CHECK_EQ(fcntl(sv[0], F_GETFL), O_RDWR);
    CHECK_EQ(kernel_flags(sv[0]) & O_NONBLOCK, 0);
    filled = fill(sv[1], MSG_DONTWAIT, 0);
    CHECK(filled > 0, "nothing fit");
    CHECK_EQ(fcntl(sv[1], F_GETFL), O_RDWR);
    CHECK_EQ(kernel_flags(sv[1]) & O_NONBLOCK, 0);
    /* data there: MSG_DONTWAIT returns it */
    CHECK_EQ(recv(sv[0], buf, sizeof buf, MSG_DONTWAIT), sizeof buf);
    close(sv[0]);
    close(sv[1]);

    /* 5. F_GETFL while another thread is parked reading the blocking socket */
    gw_phase = "F_GETFL while a thread is parked in recv";
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct parked_reader pr = {.fd = sv[0], .n = -2};
    pthread_t prt;
    CHECK_EQ(pthread_create(&prt, NULL, parked_reader_main, &pr), 0);
    usleep(50000);
    CHECK_EQ(pr.n, -2); /* still waiting */
    CHECK_EQ(fcntl(sv[0], F_GETFL), O_RDWR);
    CHECK_EQ(kernel_flags(sv[0]) & O_NONBLOCK, 0);
    int nb = -1;
    CHECK_EQ(ioctl(sv[0], FIONREAD, &nb), 0);
    CHECK_EQ(nb, 0);
    CHECK_EQ(send(sv[1], "wake", 4, 0), 4);
    CHECK_EQ(pthread_join(prt, NULL), 0);
    CHECK_EQ(pr.n, 4);
    CHECK(!memcmp(pr.buf, "wake", 4), "parked reader got other bytes");
    CHECK_EQ(fcntl(sv[0], F_GETFL), O_RDWR);
    CHECK_EQ(kernel_flags(sv[0]) & O_NONBLOCK, 0);
    close(sv[0]);
    close(sv[1]);

    /* 6. pipes */
    gw_phase = "non-blocking pipes";
    int p[2];
    CHECK_EQ(pipe2(p, O_NONBLOCK), 0);
    CHECK_EQ(fcntl(p[0], F_GETFL), O_RDONLY | O_NONBLOCK);
    CHECK_EQ(fcntl(p[1], F_GETFL), O_WRONLY | O_NONBLOCK);
    CHECK_EAGAIN_NOW(read(p[0], buf, sizeof buf));
    CHECK_EAGAIN_NOW(readv(p[0], &iov, 1));
    filled = fill(p[1], 0, 1);
    CHECK(filled >= 4096, "pipe took only %ld bytes", filled);
    close(p[0]);
    close(p[1]);
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(fcntl(p[0], F_GETFL), O_RDONLY);
    CHECK_EQ(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    CHECK_EQ(fcntl(p[0], F_GETFL), O_RDONLY | O_NONBLOCK);
    CHECK_EAGAIN_NOW(read(p[0], buf, sizeof buf));
    CHECK_EQ(ioctl(p[1], FIONBIO, &on), 0);
    CHECK_EQ(fcntl(p[1], F_GETFL), O_WRONLY | O_NONBLOCK);
    filled = fill(p[1], 0, 1);
    CHECK(filled >= 4096, "pipe took only %ld bytes", filled);
    close(p[0]);
    close(p[1]);

    /* 7. accept / accept4 */
    gw_phase = "accept on a non-blocking listener";
    struct sockaddr_in a;
    int l = gw_tcp_listen(SOCK_NONBLOCK, 16, &a);
    CHECK_EQ(fcntl(l, F_GETFL), O_RDWR | O_NONBLOCK);
    CHECK_EAGAIN_NOW(accept(l, NULL, NULL));
    CHECK_EAGAIN_NOW(accept4(l, NULL, NULL, SOCK_CLOEXEC));
    int c1 = connect_to(&a);
    usleep(10000);
    int s1 = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    CHECK(s1 >= 0, "accept4: %s", strerror(errno));
    CHECK_EQ(fcntl(s1, F_GETFL), O_RDWR | O_NONBLOCK);
    CHECK_EQ(fcntl(s1, F_GETFD), FD_CLOEXEC);
    CHECK_EAGAIN_NOW(recv(s1, buf, sizeof buf, 0));
    int c2 = connect_to(&a);
    usleep(10000);
    int s2 = accept(l, NULL, NULL);
    CHECK(s2 >= 0, "accept: %s", strerror(errno));
    CHECK_EQ(fcntl(s2, F_GETFL), O_RDWR); /* not inherited from the listener (Linux) */
    CHECK_EQ(fcntl(s2, F_GETFD), 0);
    int c3 = connect_to(&a);
    usleep(10000);
    int s3 = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    CHECK(s3 >= 0, "accept4: %s", strerror(errno));
    CHECK_EQ(fcntl(s3, F_GETFL), O_RDWR);
    CHECK_EQ(fcntl(s3, F_GETFD), FD_CLOEXEC);
    CHECK_EAGAIN_NOW(accept(l, NULL, NULL));
    close(l);
    close(s1); close(s2); close(s3); close(c1); close(c2); close(c3);

    gw_phase = "accept4 waiting on a blocking listener";
    l = gw_tcp_listen(0, 16, &a);
    struct delayed d = {.delay_ms = 60, .addr = &a, .connected_fd = -1};
    pthread_t dt;
    CHECK_EQ(pthread_create(&dt, NULL, delayed_main, &d), 0);
    long long t0 = gw_now_ns();
    int s4 = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    long long ms = gw_ms_since(t0);
    CHECK(s4 >= 0, "accept4: %s", strerror(errno));
    CHECK(ms >= 40, "accept4 returned after %lld ms: it did not wait", ms);
    CHECK_EQ(fcntl(s4, F_GETFL), O_RDWR | O_NONBLOCK);
    CHECK_EQ(fcntl(s4, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(fcntl(l, F_GETFL), O_RDWR);
    CHECK_EQ(kernel_flags(l) & O_NONBLOCK, 0);
    CHECK_EQ(pthread_join(dt, NULL), 0);
    CHECK_EAGAIN_NOW(recv(s4, buf, sizeof buf, 0));
    CHECK_EQ(send(d.connected_fd, "x", 1, 0), 1);
    struct pollfd pf = {.fd = s4, .events = POLLIN};
    CHECK_EQ(poll(&pf, 1, 5000), 1);
    CHECK_EQ(recv(s4, buf, sizeof buf, 0), 1);
    close(s4);
    close(d.connected_fd);

    /* 8. non-blocking connect */
    gw_phase = "non-blocking connect";
    int nc = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK(nc >= 0, "socket: %s", strerror(errno));
    errno = 0;
    int rc = connect(nc, (struct sockaddr *)&a, sizeof a);
    CHECK(rc == -1 && errno == EINPROGRESS, "non-blocking connect: %d %s", rc, strerror(errno));
    CHECK_EQ(fcntl(nc, F_GETFL), O_RDWR | O_NONBLOCK);
    pf.fd = nc;
    pf.events = POLLOUT;
    CHECK_EQ(poll(&pf, 1, 5000), 1);
    int soerr = -1;
    socklen_t sl = sizeof soerr;
    CHECK_EQ(getsockopt(nc, SOL_SOCKET, SO_ERROR, &soerr, &sl), 0);
    CHECK_EQ(soerr, 0);
    int s5 = accept(l, NULL, NULL);
    CHECK(s5 >= 0, "accept: %s", strerror(errno));
    close(s5);
    close(nc);
    close(l);

    /* 9. non-blocking UDP */
    gw_phase = "non-blocking UDP";
    int u = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    CHECK(u >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in ua = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(u, (struct sockaddr *)&ua, sizeof ua), 0);
    check_empty_nonblocking(u);
    close(u);

    /* 10. flags while parked in accept / sendfile */
    gw_phase = "flags while a thread is parked in accept";
    l = gw_tcp_listen(0, 16, &a);
    struct acceptor_arg aa = {.fd = l, .rc = -2};
    pthread_t at;
    CHECK_EQ(pthread_create(&at, NULL, acceptor_main, &aa), 0);
    usleep(50000);
    CHECK_EQ(aa.rc, -2);
    CHECK_EQ(fcntl(l, F_GETFL), O_RDWR);
    CHECK_EQ(kernel_flags(l) & O_NONBLOCK, 0);
    int cc = connect_to(&a);
    CHECK_EQ(pthread_join(at, NULL), 0);
    CHECK(aa.rc >= 0, "parked accept: %s", strerror(aa.err));
    CHECK_EQ(fcntl(l, F_GETFL), O_RDWR);

    gw_phase = "flags while a thread is parked in sendfile";
    char path[] = "/tmp/gw_nbapp_XXXXXX";
    int file = mkstemp(path);
    CHECK(file >= 0, "mkstemp: %s", strerror(errno));
    unlink(path);
    static char zeros[1 << 20];
    for (int i = 0; i < 16; i++) CHECK_EQ(write(file, zeros, sizeof zeros), sizeof zeros);
    struct sendfile_arg sfa = {.out = cc, .in = file, .n = -2};
    CHECK_EQ(pthread_create(&at, NULL, sendfile_main, &sfa), 0);
    usleep(50000);
    CHECK_EQ(sfa.n, -2); /* 16 MiB do not fit: it waits for the reader */
    CHECK_EQ(fcntl(cc, F_GETFL), O_RDWR);
    CHECK_EQ(kernel_flags(cc) & O_NONBLOCK, 0);
    long total = 0;
    while (total < 16L << 20) {
        ssize_t n = read(aa.rc, zeros, sizeof zeros);
        CHECK(n > 0, "read of the sendfile data: %zd", n);
        total += n;
    }
    CHECK_EQ(pthread_join(at, NULL), 0);
    CHECK_EQ(sfa.n, 16L << 20);
    CHECK_EQ(fcntl(cc, F_GETFL), O_RDWR);
    CHECK_EQ(kernel_flags(cc) & O_NONBLOCK, 0);
    close(file);
    close(cc);
    close(aa.rc);
    close(l);

    gw_phase = "ending";
    gw_ticker_stop = 1;
    CHECK_EQ(write(sp[1], "q", 1), 1);
    void *sret;
    CHECK_EQ(pthread_join(sleeper, &sret), 0);
    CHECK(sret == (void *)1, "sleeper read %ld", (long)(intptr_t)sret);
    CHECK_EQ(pthread_join(ticker, NULL), 0);
    CHECK(gw_ticks > 0, "ticker never ran");
    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1);
    printf("nonblocking_app: all EAGAIN / flag checks hold (ticker ran %ld times)\n", gw_ticks);
    return 0;
}
