/* poll's corner cases, each alone and beside another (sleeping) thread:
 * - POLLNVAL: a closed fd -> 1, revents POLLNVAL, at once (timeout 2 s).
 * - POLLHUP when the peer goes away while poll waits: socketpair peer closed -> POLLIN|POLLHUP
 *   (events POLLIN); a pipe's write end closed -> POLLHUP alone; events 0 still reports
 *   POLLHUP.
 * - POLLRDHUP when requested: the peer's shutdown(SHUT_WR) while poll waits on POLLRDHUP only
 *   -> revents POLLRDHUP, on a socketpair and on TCP loopback; requested with POLLIN on a
 *   closed peer -> POLLIN|POLLHUP|POLLRDHUP.
 * - negative fds are ignored (revents cleared to 0, not counted); all-negative sets sleep for
 *   their timeout and return 0.
 * - a zero timeout never blocks, even while other threads are runnable (busy for 300 ms and
 *   not started yet under the preload): poll, ppoll, select and epoll_wait return at once.
 * - 10 threads polling the same pipe are all woken by one byte nobody reads (level).
 * - POLLOUT: a full pipe becomes writable when another thread drains it.
 * - no timeout (poll -1, ppoll/select/pselect NULL, epoll_wait -1): woken by a write.
 * - the same fd twice in one poll set: both entries answered (2).
 * - the fd closed by another thread during the poll: 1, POLLNVAL (natively only at the
 *   timeout; under the preload at once, as close() wakes what is parked on the fd).
 */
#include "gwtest.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>

static volatile int sleeper_stop;
static void *sleeper(void *arg) {
    (void)arg;
    while (!sleeper_stop) usleep(20000);
    return NULL;
}

struct act {
    int fd;
    enum { CLOSE, SHUT_WRITE, WRITE, DRAIN } what;
    long ms;
};
static void *act_later(void *arg) {
    struct act *a = arg;
    usleep(a->ms * 1000);
    switch (a->what) {
    case CLOSE: close(a->fd); break;
    case SHUT_WRITE: shutdown(a->fd, SHUT_WR); break;
    case WRITE: (void)!write(a->fd, "w", 1); break;
    case DRAIN: {
        char buf[4096];
        for (int i = 0; i < 8; i++) (void)!read(a->fd, buf, sizeof buf);
        break;
    }
    }
    return NULL;
}

/* Waits on fd for events while `a` happens ~50 ms later in another thread. */
static void wait_for(const char *what, int fd, short events, struct act a, short want) {
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, act_later, &a), 0);
    struct pollfd p = {fd, events, 0};
    long long t0 = gw_now_ns();
    int rc = poll(&p, 1, 3000);
    long long ms = gw_ms_since(t0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(rc == 1, "%s: rc %d errno %d after %lld ms", what, rc, errno, ms);
    CHECK(p.revents == want, "%s: revents %#x, want %#x", what, p.revents, want);
    CHECK(ms >= 30 && ms < 1500, "%s: after %lld ms (event at 50 ms)", what, ms);
}

static void nval(void) {
    int fd = dup(1);
    CHECK(fd >= 0, "dup");
    close(fd);
    struct pollfd p = {fd, POLLIN | POLLOUT, 0};
    long long t0 = gw_now_ns();
    int rc = poll(&p, 1, 2000);
    CHECK_EQ(rc, 1);
    CHECK(p.revents == POLLNVAL, "revents %#x", p.revents);
    CHECK(gw_ms_since(t0) < 500, "POLLNVAL took %lld ms", gw_ms_since(t0));
}

static void hup(void) {
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    wait_for("socketpair peer closed", sv[0], POLLIN, (struct act){sv[1], CLOSE, 50}, POLLIN | POLLHUP);
    struct pollfd p = {sv[0], 0, 0};
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK(p.revents == POLLHUP, "events 0: revents %#x", p.revents);
    p.events = POLLIN | POLLRDHUP;
    CHECK_EQ(poll(&p, 1, 1000), 1);
    CHECK(p.revents == (POLLIN | POLLHUP | POLLRDHUP), "POLLIN|POLLRDHUP on a closed peer: %#x",
          p.revents);
    close(sv[0]);

    int pp[2];
    CHECK_EQ(pipe(pp), 0);
    wait_for("pipe writer closed", pp[0], POLLIN, (struct act){pp[1], CLOSE, 50}, POLLHUP);
    close(pp[0]);

    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    wait_for("socketpair peer closed, events 0", sv[0], 0, (struct act){sv[1], CLOSE, 50}, POLLHUP);
    close(sv[0]);
}

static void rdhup(void) {
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    wait_for("socketpair shutdown(SHUT_WR)", sv[0], POLLRDHUP, (struct act){sv[1], SHUT_WRITE, 50},
             POLLRDHUP);
    close(sv[0]);
    close(sv[1]);
    int tcp[2];
    gw_tcp_pair(tcp);
    int c = tcp[1], s = tcp[0];
    wait_for("tcp shutdown(SHUT_WR)", s, POLLRDHUP, (struct act){c, SHUT_WRITE, 50}, POLLRDHUP);
    close(c);
    close(s);
}

static void negative(void) {
    int pp[2];
    CHECK_EQ(pipe(pp), 0);
    CHECK_EQ(write(pp[1], "x", 1), 1);
    struct pollfd p[3] = {{-1, POLLIN, 0x7fff}, {pp[0], POLLIN, 0x7fff}, {-5, POLLIN, 0x7fff}};
    CHECK_EQ(poll(p, 3, 1000), 1);
    CHECK_EQ(p[0].revents, 0);
    CHECK_EQ(p[1].revents, POLLIN);
    CHECK_EQ(p[2].revents, 0);
    /* Only negative fds: a pure 100 ms sleep. */
    struct pollfd q[2] = {{-1, POLLIN, 0x7fff}, {-2, POLLOUT, 0x7fff}};
    long long t0 = gw_now_ns();
    int rc = poll(q, 2, 100);
    long long ms = gw_ms_since(t0);
    CHECK_EQ(rc, 0);
    CHECK(ms >= 95 && ms < 1000, "all-negative poll(100) took %lld ms", ms);
    CHECK_EQ(q[0].revents, 0);
    CHECK_EQ(q[1].revents, 0);
    close(pp[0]);
    close(pp[1]);
}

static void *spin_300(void *arg) {
    (void)arg;
    long long end = gw_now_ns() + 300000000LL;
    while (gw_now_ns() < end) {}
    return NULL;
}

static void zero_timeout(void) {
    int pp[2];
    CHECK_EQ(pipe(pp), 0);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1};
    CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, pp[0], &ev), 0);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) CHECK_EQ(pthread_create(&t[i], NULL, spin_300, NULL), 0);
    long long t0 = gw_now_ns();
    struct pollfd p = {pp[0], POLLIN, 0};
    int a = poll(&p, 1, 0);
    struct timespec zts = {0, 0};
    int b = ppoll(&p, 1, &zts, NULL);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(pp[0], &r);
    struct timeval tv = {0, 0};
    int c = select(pp[0] + 1, &r, NULL, NULL, &tv);
    int d = epoll_wait(ep, &ev, 1, 0);
    long long ms_idle = gw_ms_since(t0);
    CHECK_EQ(write(pp[1], "x", 1), 1);
    long long t1 = gw_now_ns();
    int e = poll(&p, 1, 0);
    short re = p.revents;
    int f = epoll_wait(ep, &ev, 1, 0);
    FD_ZERO(&r);
    FD_SET(pp[0], &r);
    int g = select(pp[0] + 1, &r, NULL, NULL, &tv);
    long long ms_ready = gw_ms_since(t1);
    for (int i = 0; i < 3; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK(a == 0 && b == 0 && c == 0 && d == 0, "idle zero-timeout calls: %d %d %d %d", a, b, c, d);
    CHECK(e == 1 && re == POLLIN && f == 1 && g == 1 && FD_ISSET(pp[0], &r),
          "ready zero-timeout calls: %d %#x %d %d", e, re, f, g);
    CHECK(ms_idle < 100, "four zero-timeout calls on nothing took %lld ms beside busy threads",
          ms_idle);
    CHECK(ms_ready < 100, "three zero-timeout calls on a ready fd took %lld ms beside busy threads",
          ms_ready);
    close(ep);
    close(pp[0]);
    close(pp[1]);
}

static int pipe_r;
static int woken;
static void *same_fd(void *arg) {
    (void)arg;
    struct pollfd p = {pipe_r, POLLIN, 0};
    int rc = poll(&p, 1, 5000);
    if (rc == 1 && p.revents == POLLIN) __atomic_add_fetch(&woken, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void many_on_one(void) {
    int pp[2];
    CHECK_EQ(pipe(pp), 0);
    pipe_r = pp[0];
    woken = 0;
    pthread_t t[10];
    for (int i = 0; i < 10; i++) CHECK_EQ(pthread_create(&t[i], NULL, same_fd, NULL), 0);
    usleep(50000);
    CHECK_EQ(woken, 0);
    long long t0 = gw_now_ns();
    CHECK_EQ(write(pp[1], "x", 1), 1);
    for (int i = 0; i < 10; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    long long ms = gw_ms_since(t0);
    CHECK_EQ(woken, 10);
    CHECK(ms < 1000, "10 pollers of one fd took %lld ms to wake", ms);
    close(pp[0]);
    close(pp[1]);
}

static void pollout(void) {
    int pp[2];
    CHECK_EQ(pipe(pp), 0);
    int fl = fcntl(pp[1], F_GETFL);
    CHECK_EQ(fcntl(pp[1], F_SETFL, fl | O_NONBLOCK), 0);
    char buf[4096];
    memset(buf, 'f', sizeof buf);
    while (write(pp[1], buf, sizeof buf) > 0) {}
    CHECK(errno == EAGAIN, "filling the pipe: %s", strerror(errno));
    struct pollfd p = {pp[1], POLLOUT, 0};
    CHECK_EQ(poll(&p, 1, 0), 0);
    wait_for("full pipe drained", pp[1], POLLOUT, (struct act){pp[0], DRAIN, 50}, POLLOUT);
    close(pp[0]);
    close(pp[1]);
}

/* No timeout at all: poll(-1), ppoll(NULL), select(NULL), pselect(NULL), epoll_wait(-1) wait
 * until another thread writes ~50 ms later. */
static void forever(void) {
    for (int k = 0; k < 5; k++) {
        static const char *names[] = {"poll(-1)", "ppoll(NULL)", "select(NULL)", "pselect(NULL)",
                                      "epoll_wait(-1)"};
        int pp[2];
        CHECK_EQ(pipe(pp), 0);
        int ep = epoll_create1(0);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 5};
        CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, pp[0], &ev), 0);
        struct act a = {pp[1], WRITE, 50};
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, act_later, &a), 0);
        struct pollfd p = {pp[0], POLLIN, 0};
        fd_set r;
        FD_ZERO(&r);
        FD_SET(pp[0], &r);
        long long t0 = gw_now_ns();
        int rc = -2, ok = 0;
        switch (k) {
        case 0: rc = poll(&p, 1, -1); ok = p.revents == POLLIN; break;
        case 1: rc = ppoll(&p, 1, NULL, NULL); ok = p.revents == POLLIN; break;
        case 2: rc = select(pp[0] + 1, &r, NULL, NULL, NULL); ok = FD_ISSET(pp[0], &r); break;
        case 3: rc = pselect(pp[0] + 1, &r, NULL, NULL, NULL, NULL); ok = FD_ISSET(pp[0], &r); break;
        case 4: rc = epoll_wait(ep, &ev, 1, -1); ok = ev.data.u32 == 5 && ev.events == EPOLLIN; break;
        }
        long long ms = gw_ms_since(t0);
        CHECK_EQ(pthread_join(t, NULL), 0);
        CHECK(rc == 1 && ok, "%s: rc %d errno %d, result ok %d", names[k], rc, errno, ok);
        CHECK(ms >= 30 && ms < 1500, "%s: woke after %lld ms (written at 50 ms)", names[k], ms);
        close(ep);
        close(pp[0]);
        close(pp[1]);
    }
}

/* The same fd twice in one poll: both entries answered, counted twice. */
static void duplicates(void) {
    int pp[2];
    CHECK_EQ(pipe(pp), 0);
    struct act a = {pp[1], WRITE, 50};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, act_later, &a), 0);
    struct pollfd p[3] = {{pp[0], POLLIN, 0}, {pp[1], 0, 0}, {pp[0], POLLIN | POLLPRI, 0}};
    int rc = poll(p, 3, 3000);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(rc, 2);
    CHECK_EQ(p[0].revents, POLLIN);
    CHECK_EQ(p[1].revents, 0);
    CHECK_EQ(p[2].revents, POLLIN);
    close(pp[0]);
    close(pp[1]);
}

/* Another thread closes the fd a poll waits on. Linux does not wake the poll; it reports
 * POLLNVAL when it next looks (at its timeout). Under the preload, the interface's rule for
 * close() (a thread parked on the fd is woken) applies: POLLNVAL at once. */
static void closed_meanwhile(void) {
    int pp[2];
    CHECK_EQ(pipe(pp), 0);
    struct act a = {pp[0], CLOSE, 50};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, act_later, &a), 0);
    struct pollfd p = {pp[0], POLLIN, 0};
    long long t0 = gw_now_ns();
    int rc = poll(&p, 1, 1000);
    long long ms = gw_ms_since(t0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(rc, 1);
    CHECK(p.revents == POLLNVAL, "revents %#x", p.revents);
    CHECK(ms >= 30 && ms < 2000, "after %lld ms", ms);
    if (gw_preloaded()) CHECK(ms < 500, "closing the fd did not wake the poll (%lld ms)", ms);
    close(pp[1]);
    printf("poll_edge: fd closed during poll -> POLLNVAL after %lld ms\n", ms);
}

static void all(const char *who) {
    nval();
    hup();
    rdhup();
    negative();
    pollout();
    forever();
    duplicates();
    printf("poll_edge: POLLNVAL, POLLHUP, POLLRDHUP, negative fds, POLLOUT, no timeout, duplicates ok (%s)\n", who);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    all("alone");
    pthread_t s;
    sleeper_stop = 0;
    CHECK_EQ(pthread_create(&s, NULL, sleeper, NULL), 0);
    all("beside a sleeper");
    sleeper_stop = 1;
    CHECK_EQ(pthread_join(s, NULL), 0);
    closed_meanwhile();
    zero_timeout();
    printf("poll_edge: zero timeouts never block\n");
    many_on_one();
    printf("poll_edge: 10 pollers of one fd all woken\n");
    return 0;
}
