/* select and pselect.
 * - read, write and except sets at once: a pipe with data (read), a TCP loopback socket
 *   (write) and the peer of a TCP socket that was sent one urgent byte with MSG_OOB (except;
 *   as Linux, that socket is NOT readable while only the urgent byte is there); the urgent
 *   byte is then read with recv(MSG_OOB).
 * - the except set wakes a waiter: an OOB byte sent by another thread after 50 ms ends a
 *   select (timeout 3 s) waiting on the except set only, well before its timeout.
 * - 200 ms timeout with nothing ready: returns 0, every set cleared, the timeval rewritten to
 *   0 (Linux), from main alone and while another thread sleeps, and from a second thread.
 * - early return: a pipe written after 100 ms ends a 2 s select; the timeval then holds
 *   about 2 s minus the time spent (Linux).
 * - tv_usec >= 1000000 is normalised by Linux (it waits that long); another thread keeps
 *   running meanwhile.
 * - pselect's mask: SIGALRM blocked in the program, unblocked by pselect's mask -> a timer's
 *   SIGALRM ends it with EINTR (handler ran); SIGALRM unblocked, blocked by pselect's mask ->
 *   it times out (0) and the handler runs only once pselect has restored the mask.
 * - nfds > FD_SETSIZE (sets allocated large enough): Linux accepts it (no EINVAL): a fd
 *   numbered above FD_SETSIZE is reported when ready, including when another thread makes
 *   it ready while select waits.
 * - errors: negative tv_sec or tv_usec -> EINVAL, negative nfds -> EINVAL, pselect with a
 *   negative timespec -> EINVAL.
 */
#include "gwtest.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <poll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>

/* A thread that sleeps in small steps until told to stop, counting its steps. */
static volatile int ticker_stop;
static int ticks;
static useconds_t ticker_step_us = 5000;
static void *ticker(void *arg) {
    (void)arg;
    while (!ticker_stop) {
        usleep(ticker_step_us);
        __atomic_add_fetch(&ticks, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}
static pthread_t ticker_start(void) {
    pthread_t t;
    ticker_stop = 0;
    ticks = 0;
    CHECK_EQ(pthread_create(&t, NULL, ticker, NULL), 0);
    return t;
}
static void ticker_end(pthread_t t) {
    ticker_stop = 1;
    CHECK_EQ(pthread_join(t, NULL), 0);
}

struct delayed {
    int fd;
    int oob;
    long ms;
};
static void *delayed_send(void *arg) {
    struct delayed *d = arg;
    usleep(d->ms * 1000);
    ssize_t n = d->oob ? send(d->fd, "!", 1, MSG_OOB) : write(d->fd, "x", 1);
    return (void *)(intptr_t)(n == 1 ? 0 : 1);
}

static void all_sets(void) {
    int p[2], tcp[2];
    CHECK_EQ(pipe(p), 0);
    gw_tcp_pair(tcp);
    int cli = tcp[1], srv = tcp[0];
    CHECK_EQ(write(p[1], "r", 1), 1);
    CHECK_EQ(send(cli, "!", 1, MSG_OOB), 1);
    usleep(20000); /* loopback delivery */
    fd_set r, w, e;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_ZERO(&e);
    FD_SET(p[0], &r);
    FD_SET(srv, &r);
    FD_SET(cli, &w);
    FD_SET(srv, &e);
    FD_SET(p[0], &e);
    int nfds = (srv > cli ? srv : cli) + 1;
    if (p[0] >= nfds) nfds = p[0] + 1;
    struct timeval tv = {1, 0};
    int n = select(nfds, &r, &w, &e, &tv);
    CHECK_EQ(n, 3);
    CHECK(FD_ISSET(p[0], &r), "pipe not readable");
    CHECK(!FD_ISSET(srv, &r), "srv readable with only an urgent byte");
    CHECK(FD_ISSET(cli, &w), "tcp client not writable");
    CHECK(FD_ISSET(srv, &e), "urgent byte not in the except set");
    CHECK(!FD_ISSET(p[0], &e), "pipe in the except set");
    char c = 0;
    CHECK_EQ(recv(srv, &c, 1, MSG_OOB), 1);
    CHECK_EQ(c, '!');

    /* The except set wakes a waiter. */
    struct delayed d = {cli, 1, 50};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, delayed_send, &d), 0);
    FD_ZERO(&e);
    FD_SET(srv, &e);
    tv.tv_sec = 3;
    tv.tv_usec = 0;
    long long t0 = gw_now_ns();
    n = select(srv + 1, NULL, NULL, &e, &tv);
    long long el = gw_ms_since(t0);
    void *ret;
    CHECK_EQ(pthread_join(t, &ret), 0);
    CHECK(ret == NULL, "send MSG_OOB failed");
    CHECK_EQ(n, 1);
    CHECK(FD_ISSET(srv, &e), "except bit");
    CHECK(el >= 30 && el < 1000, "select on the except set took %lld ms (OOB sent at 50 ms)", el);
    CHECK_EQ(recv(srv, &c, 1, MSG_OOB), 1);
    CHECK_EQ(c, '!');

    /* Again with srv's send buffer full (not writable): only the urgent byte can wake it. */
    int filled = 0;
    static char junk[65536];
    while (send(srv, junk, sizeof junk, MSG_DONTWAIT) > 0) filled++;
    CHECK(errno == EAGAIN || errno == EWOULDBLOCK, "filling: %s", strerror(errno));
    struct pollfd pw = {srv, POLLOUT, 0};
    CHECK_EQ(poll(&pw, 1, 0), 0);
    CHECK_EQ(pthread_create(&t, NULL, delayed_send, &d), 0);
    FD_ZERO(&e);
    FD_SET(srv, &e);
    tv.tv_sec = 3;
    tv.tv_usec = 0;
    t0 = gw_now_ns();
    n = select(srv + 1, NULL, NULL, &e, &tv);
    long long el2 = gw_ms_since(t0);
    CHECK_EQ(pthread_join(t, &ret), 0);
    CHECK(ret == NULL, "send MSG_OOB failed");
    CHECK_EQ(n, 1);
    CHECK(FD_ISSET(srv, &e), "except bit");
    CHECK(el2 >= 30 && el2 < 1000,
          "select on the except set of a socket whose send buffer is full took %lld ms (OOB sent at 50 ms)",
          el2);
    CHECK_EQ(recv(srv, &c, 1, MSG_OOB), 1);
    CHECK_EQ(c, '!');
    close(p[0]);
    close(p[1]);
    close(cli);
    close(srv);
    printf("select: read/write/except sets, OOB wake after %lld ms\n", el);
}

/* select 200 ms on a pipe with nothing to read (read and except sets). */
static void timeout_200(const char *who) {
    int p[2];
    CHECK_EQ(pipe(p), 0);
    fd_set r, e;
    FD_ZERO(&r);
    FD_ZERO(&e);
    FD_SET(p[0], &r);
    FD_SET(p[0], &e);
    struct timeval tv = {0, 200000};
    long long t0 = gw_now_ns();
    int n = select(p[0] + 1, &r, NULL, &e, &tv);
    long long el = gw_ms_since(t0);
    CHECK(n == 0, "%s: select returned %d (errno %d)", who, n, errno);
    CHECK(el >= 190 && el < 1000, "%s: 200 ms select took %lld ms", who, el);
    CHECK(!FD_ISSET(p[0], &r) && !FD_ISSET(p[0], &e), "%s: sets not cleared on timeout", who);
    CHECK(tv.tv_sec == 0 && tv.tv_usec == 0, "%s: timeval %ld.%06ld after a timeout", who,
          (long)tv.tv_sec, (long)tv.tv_usec);
    close(p[0]);
    close(p[1]);
}

static void *timeout_200_thread(void *arg) {
    timeout_200(arg);
    return NULL;
}

static void timeouts(void) {
    timeout_200("main alone");
    pthread_t k = ticker_start();
    timeout_200("main beside a sleeper");
    CHECK(ticks >= 5, "the sleeper ran %d steps of 5 ms during a 200 ms select", ticks);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, timeout_200_thread, "a second thread"), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    ticker_end(k);
    printf("select: 200 ms timeouts ok\n");
}

static void early_return(void) {
    int p[2];
    CHECK_EQ(pipe(p), 0);
    struct delayed d = {p[1], 0, 100};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, delayed_send, &d), 0);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = {2, 0};
    long long t0 = gw_now_ns();
    int n = select(p[0] + 1, &r, NULL, NULL, &tv);
    long long el_us = (gw_now_ns() - t0) / 1000;
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(n, 1);
    CHECK(FD_ISSET(p[0], &r), "pipe bit");
    CHECK(el_us >= 80000 && el_us < 1000000, "select ended after %lld us (write at 100 ms)", el_us);
    long long left_us = (long long)tv.tv_sec * 1000000 + tv.tv_usec;
    long long want_us = 2000000 - el_us;
    CHECK(left_us <= want_us + 100000 && left_us >= want_us - 200000,
          "timeval left %lld us, expected about %lld us", left_us, want_us);
    CHECK(tv.tv_usec >= 0 && tv.tv_usec < 1000000, "tv_usec %ld", (long)tv.tv_usec);
    close(p[0]);
    close(p[1]);
    printf("select: early return after %lld us, %lld us left\n", el_us, left_us);
}

static void big_usec(void) {
    pthread_t k = ticker_start();
    struct timeval tv = {0, 1050000};
    long long t0 = gw_now_ns();
    int n = select(0, NULL, NULL, NULL, &tv);
    long long el = gw_ms_since(t0);
    int seen = __atomic_load_n(&ticks, __ATOMIC_SEQ_CST);
    ticker_end(k);
    CHECK(n == 0, "select with tv_usec 1050000 returned %d errno %d", n, errno);
    CHECK(el >= 1000 && el < 3000, "tv_usec 1050000 waited %lld ms", el);
    CHECK(tv.tv_sec == 0 && tv.tv_usec == 0, "timeval %ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
    CHECK(seen >= 20, "another thread ran only %d steps of 5 ms during a 1.05 s select", seen);
}

static void pselect_masks(int with_sleeper) {
    const char *who = with_sleeper ? "beside a sleeper" : "alone";
    gw_catch(SIGALRM, 0);
    sigset_t alrm, empty, old;
    sigemptyset(&empty);
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    /* The sleeper (a real thread natively) must not take the SIGALRM: it inherits it blocked. */
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &alrm, &old), 0);
    pthread_t k = 0;
    /* Long steps: the timer's signal should find every thread asleep. */
    ticker_step_us = 50000;
    if (with_sleeper) k = ticker_start();
    int p[2];
    CHECK_EQ(pipe(p), 0);
    fd_set r;

    /* 1. Blocked in the program, unblocked by pselect's mask: EINTR. */
    gw_caught = 0;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timespec ts = {2, 0};
    gw_alarm_ms(100);
    long long t0 = gw_now_ns();
    errno = 0;
    int n = pselect(p[0] + 1, &r, NULL, NULL, &ts, &empty);
    int e = errno;
    long long el = gw_ms_since(t0);
    CHECK(n == -1 && e == EINTR, "%s: pselect unblocking SIGALRM returned %d errno %d", who, n, e);
    CHECK_EQ(gw_caught, 1);
    CHECK(el >= 80 && el < 1000, "%s: EINTR after %lld ms (timer at 100 ms)", who, el);
    CHECK(ts.tv_sec == 2 && ts.tv_nsec == 0, "%s: pselect changed its timespec", who);
    sigset_t now;
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &now), 0);
    CHECK(sigismember(&now, SIGALRM), "%s: mask not restored after pselect (SIGALRM unblocked)",
          who);

    /* 2. Unblocked in the program, blocked by pselect's mask: times out, then the handler. */
    CHECK_EQ(pthread_sigmask(SIG_UNBLOCK, &alrm, NULL), 0);
    gw_caught = 0;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    ts.tv_sec = 0;
    ts.tv_nsec = 300000000;
    gw_alarm_ms(100);
    t0 = gw_now_ns();
    errno = 0;
    n = pselect(p[0] + 1, &r, NULL, NULL, &ts, &alrm);
    e = errno;
    el = gw_ms_since(t0);
    int alarms_at_return = gw_caught;
    CHECK(n == 0, "%s: pselect blocking SIGALRM returned %d errno %d after %lld ms", who, n, e, el);
    CHECK(el >= 290 && el < 1500, "%s: 300 ms pselect took %lld ms", who, el);
    CHECK(!FD_ISSET(p[0], &r), "%s: set not cleared", who);
    CHECK(alarms_at_return == 1, "%s: handler ran %d times by pselect's return", who,
          alarms_at_return);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &now), 0);
    CHECK(!sigismember(&now, SIGALRM), "%s: SIGALRM left blocked after pselect", who);

    if (with_sleeper) ticker_end(k);
    ticker_step_us = 5000;
    CHECK_EQ(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
    signal(SIGALRM, SIG_DFL);
    close(p[0]);
    close(p[1]);
    printf("pselect: masks ok (%s)\n", who);
}

/* Sets big enough for nfds up to 4 * FD_SETSIZE, bits set by hand (no FD_SET range checks). */
typedef struct {
    unsigned long bits[4 * FD_SETSIZE / (8 * sizeof(unsigned long))];
} bigset;
static void big_set(bigset *s, int fd) { s->bits[fd / (8 * sizeof(unsigned long))] |= 1UL << (fd % (8 * sizeof(unsigned long))); }
static int big_isset(const bigset *s, int fd) {
    return (s->bits[fd / (8 * sizeof(unsigned long))] >> (fd % (8 * sizeof(unsigned long)))) & 1;
}

static void above_fd_setsize(void) {
    const int hi = FD_SETSIZE + 476; /* 1500 */
    int p[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(dup2(p[0], hi), hi);
    close(p[0]);
    bigset r;

    /* Nothing ready: FD_SETSIZE + 1 and 2 * FD_SETSIZE are accepted; a 50 ms timeout. */
    int sizes[] = {FD_SETSIZE + 1, 2 * FD_SETSIZE};
    for (int i = 0; i < 2; i++) {
        memset(&r, 0, sizeof r);
        big_set(&r, hi);
        struct timeval tv = {0, 50000};
        errno = 0;
        int n = select(sizes[i], (fd_set *)&r, NULL, NULL, &tv);
        CHECK(n == 0, "select(nfds %d): %d errno %d", sizes[i], n, errno);
    }
    /* Ready now. */
    CHECK_EQ(write(p[1], "a", 1), 1);
    memset(&r, 0, sizeof r);
    big_set(&r, hi);
    struct timeval tv = {1, 0};
    int n = select(hi + 1, (fd_set *)&r, NULL, NULL, &tv);
    CHECK_EQ(n, 1);
    CHECK(big_isset(&r, hi), "fd %d not reported", hi);
    char c;
    CHECK_EQ(read(hi, &c, 1), 1);
    /* Made ready by another thread while select waits. */
    struct delayed d = {p[1], 0, 50};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, delayed_send, &d), 0);
    memset(&r, 0, sizeof r);
    big_set(&r, hi);
    tv.tv_sec = 3;
    tv.tv_usec = 0;
    long long t0 = gw_now_ns();
    n = select(hi + 1, (fd_set *)&r, NULL, NULL, &tv);
    long long el = gw_ms_since(t0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(n == 1 && big_isset(&r, hi), "select(nfds %d) beside a writer: %d after %lld ms", hi + 1,
          n, el);
    CHECK(el < 1000, "select(nfds %d) woke %lld ms after its start (written at 50 ms)", hi + 1, el);
    close(hi);
    close(p[1]);
    printf("select: nfds > FD_SETSIZE accepted\n");
}

static void errors(void) {
    struct timeval tv = {-1, 0};
    errno = 0;
    CHECK(select(0, NULL, NULL, NULL, &tv) == -1 && errno == EINVAL, "tv_sec -1: errno %d", errno);
    tv.tv_sec = 0;
    tv.tv_usec = -1;
    errno = 0;
    CHECK(select(0, NULL, NULL, NULL, &tv) == -1 && errno == EINVAL, "tv_usec -1: errno %d", errno);
    tv.tv_sec = 1;
    tv.tv_usec = 0;
    errno = 0;
    CHECK(select(-1, NULL, NULL, NULL, &tv) == -1 && errno == EINVAL, "nfds -1: errno %d", errno);
    struct timespec ts = {-1, 0};
    errno = 0;
    CHECK(pselect(0, NULL, NULL, NULL, &ts, NULL) == -1 && errno == EINVAL, "pselect ts -1: errno %d",
          errno);
    ts.tv_sec = 0;
    ts.tv_nsec = 1000000000;
    errno = 0;
    CHECK(pselect(0, NULL, NULL, NULL, &ts, NULL) == -1 && errno == EINVAL,
          "pselect nsec 1e9: errno %d", errno);
}

static void errors_beside_sleeper(void) {
    pthread_t k = ticker_start();
    errors();
    ticker_end(k);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    all_sets();
    timeouts();
    early_return();
    pselect_masks(0);
    pselect_masks(1);
    errors();
    errors_beside_sleeper();
    big_usec();
    above_fd_setsize();
    printf("select: ok\n");
    return 0;
}
