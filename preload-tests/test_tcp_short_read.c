/* Blocking reads of TCP sockets that return fewer bytes than asked, then read again: the case
 * where the library parks the next read without trying it (README, Performance: a short read of
 * plain TCP proves the socket drained, or a new edge already queued). The peer is another
 * process, over loopback, so no in-process wake-up helps. Checked:
 *  - echo rounds on three connections, each message sent in one to three pieces with or without
 *    a pause between them (data arriving while the reader is parked, and between its read and
 *    its park), each connection read by two green threads taking turns (at HUBS=2 the waiter of
 *    a round may sit on the other hub than the one whose epoll watches the socket);
 *  - urgent data: a read stops short at the urgent mark with data behind it and no new edge to
 *    come; the next read returns that data (the out-of-band byte skipped), as natively; and a
 *    program's MSG_OOB read of the byte, then the plain read of the rest;
 *  - a descriptor the program made non-blocking: after a short read, the next read answers
 *    EAGAIN, never waits;
 *  - the last bytes with the peer's FIN in one segment: the read that takes them is short, and
 *    the next one returns 0 at once (no edge comes after it); the same with a reset after the
 *    bytes: ECONNRESET. */
#include "gwtest.h"
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>

enum { CONNS = 3, ROUNDS = 1500, MAXMSG = 900 };

static unsigned char pattern(int conn, int round, int i) { return (unsigned char)(conn * 31 + round * 7 + i); }

static void send_all(int fd, const void *buf, size_t n, int flags) {
    const char *p = buf;
    while (n) {
        ssize_t w = send(fd, p, n, flags);
        CHECK(w > 0, "send: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

static void recv_exact(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n) {
        ssize_t r = recv(fd, p, n, 0);
        CHECK(r > 0, "recv: %zd %s", r, strerror(errno));
        p += r;
        n -= (size_t)r;
    }
}

static int tcp_connect(const struct sockaddr_in *a) {
    int c = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    CHECK(c >= 0, "socket: %s", strerror(errno));
    CHECK(connect(c, (const struct sockaddr *)a, sizeof *a) == 0, "connect: %s", strerror(errno));
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return c;
}

/* The peer process: one connection's echo rounds. */
static void *peer_echo(void *arg) {
    int conn = (int)(intptr_t)arg >> 16, fd = (int)(intptr_t)arg & 0xffff;
    unsigned char out[MAXMSG], in[MAXMSG];
    unsigned seed = 12345u + (unsigned)conn;
    for (int round = 0; round < ROUNDS; round++) {
        int len = 1 + rand_r(&seed) % MAXMSG, pieces = 1 + rand_r(&seed) % 3;
        for (int i = 0; i < len; i++) out[i] = pattern(conn, round, i);
        for (int p = 0, at = 0; p < pieces && at < len; p++) {
            int n = p == pieces - 1 ? len - at : 1 + rand_r(&seed) % (len - at);
            send_all(fd, out + at, (size_t)n, 0);
            at += n;
            int pause = rand_r(&seed) % 4;
            if (pause == 1) usleep(50);
            else if (pause == 2) sched_yield();
        }
        recv_exact(fd, in, (size_t)len);
        CHECK(memcmp(in, out, (size_t)len) == 0, "conn %d round %d: echo differs", conn, round);
    }
    shutdown(fd, SHUT_WR);
    char c;
    CHECK_EQ(recv(fd, &c, 1, 0), 0);
    close(fd);
    return NULL;
}

/* Rounds of one byte each way, the server's reads short and its next tries finding nothing:
 * after them its reads park first (README, Performance). */
enum { PINGS = 12 };
static void pings(int fd) {
    char c;
    for (int i = 0; i < PINGS; i++) {
        send_all(fd, "x", 1, 0);
        recv_exact(fd, &c, 1);
        CHECK_EQ(c, 'k');
    }
}

static void serve_pings(int fd) {
    char buf[64];
    for (int i = 0; i < PINGS; i++) {
        CHECK_EQ(read(fd, buf, sizeof buf), 1);
        send_all(fd, "k", 1, 0);
    }
}

static void peer_urgent(int fd) {
    char c;
    /* The reader parks in reads first: the socket is watched, and its reads park first. */
    pings(fd);
    for (int variant = 0; variant < 2; variant++) {
        int on = 1, off = 0;
        /* "abc", the urgent "d", "ef" in one segment: one edge for all of it. */
        CHECK_EQ(setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on), 0);
        send_all(fd, "abc", 3, 0);
        send_all(fd, "d", 1, MSG_OOB);
        send_all(fd, "ef", 2, 0);
        CHECK_EQ(setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off), 0);
        recv_exact(fd, &c, 1);
        CHECK_EQ(c, 'k');
    }
    /* Later rounds on the same socket still work. */
    for (int i = 0; i < 50; i++) {
        send_all(fd, "ping", 4, 0);
        char buf[4];
        recv_exact(fd, buf, 4);
        CHECK(memcmp(buf, "ping", 4) == 0, "urgent socket: echo differs");
    }
    close(fd);
}

static void peer_nonblocking(int fd) {
    char c;
    send_all(fd, "abc", 3, 0);
    recv_exact(fd, &c, 1);
    CHECK_EQ(c, 'k');
    close(fd);
}

/* The last bytes and the FIN in one segment, then (on the next connection) bytes and a reset:
 * a read takes the bytes (short), the next one must return 0, or the error, at once. */
static void peer_ends(const struct sockaddr_in *a) {
    char c;
    for (int round = 0; round < 20; round++) {
        int fd = tcp_connect(a), on = 1;
        pings(fd);
        CHECK_EQ(setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on), 0);
        send_all(fd, "tail", 4, 0);
        CHECK_EQ(shutdown(fd, SHUT_WR), 0);
        CHECK_EQ(recv(fd, &c, 1, 0), 0);
        close(fd);
    }
    for (int round = 0; round < 20; round++) {
        int fd = tcp_connect(a);
        pings(fd);
        send_all(fd, "tail", 4, 0);
        struct linger hard = {1, 0};
        CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard), 0);
        close(fd);
        /* Wait for the server's word that it saw the reset (over the listener's next
         * connection, so this one stays closed). */
        int sync = tcp_connect(a);
        recv_exact(sync, &c, 1);
        close(sync);
    }
}

static void run_peer(const struct sockaddr_in *a) {
    pthread_t t[CONNS];
    for (int i = 0; i < CONNS; i++) {
        int fd = tcp_connect(a);
        CHECK_EQ(pthread_create(&t[i], NULL, peer_echo, (void *)(intptr_t)(i << 16 | fd)), 0);
    }
    for (int i = 0; i < CONNS; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    peer_urgent(tcp_connect(a));
    peer_nonblocking(tcp_connect(a));
    peer_ends(a);
}

/* The process under test: two readers per connection, taking turns, each turn one read (asked
 * for more than comes: short) and its echo. */
struct conn {
    int fd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int turn, done;
    long bytes;
};

struct reader {
    struct conn *c;
    int me;
};

static void *reader(void *arg) {
    struct reader *r = arg;
    struct conn *c = r->c;
    char buf[4096];
    for (;;) {
        pthread_mutex_lock(&c->mu);
        while (c->turn != r->me && !c->done) pthread_cond_wait(&c->cv, &c->mu);
        pthread_mutex_unlock(&c->mu);
        if (c->done) return NULL;
        ssize_t n = read(c->fd, buf, sizeof buf);
        CHECK(n >= 0, "read: %s", strerror(errno));
        if (n > 0) send_all(c->fd, buf, (size_t)n, 0);
        pthread_mutex_lock(&c->mu);
        c->bytes += n;
        if (n == 0) c->done = 1;
        c->turn = !r->me;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
}

static void serve_urgent(int fd) {
    char buf[64];
    gw_phase = "urgent: pings";
    serve_pings(fd);
    /* A read stops short at the urgent mark; the next one skips the out-of-band byte. */
    gw_phase = "urgent: read up to the mark";
    CHECK_EQ(read(fd, buf, sizeof buf), 3);
    CHECK(memcmp(buf, "abc", 3) == 0, "urgent: before the mark");
    gw_phase = "urgent: read past the mark";
    CHECK_EQ(read(fd, buf, sizeof buf), 2);
    CHECK(memcmp(buf, "ef", 2) == 0, "urgent: after the mark");
    send_all(fd, "k", 1, 0);
    /* The same with the urgent byte taken by MSG_OOB in between. */
    gw_phase = "urgent: read up to the mark again";
    CHECK_EQ(read(fd, buf, sizeof buf), 3);
    CHECK(memcmp(buf, "abc", 3) == 0, "urgent again: before the mark");
    int at_mark = 0;
    CHECK_EQ(ioctl(fd, SIOCATMARK, &at_mark), 0);
    CHECK_EQ(at_mark, 1);
    CHECK_EQ(recv(fd, buf, 1, MSG_OOB), 1);
    CHECK_EQ(buf[0], 'd');
    gw_phase = "urgent: read past the mark again";
    CHECK_EQ(read(fd, buf, sizeof buf), 2);
    CHECK(memcmp(buf, "ef", 2) == 0, "urgent again: after the mark");
    send_all(fd, "k", 1, 0);
    gw_phase = "urgent: echo after";
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        CHECK(n >= 0, "read: %s", strerror(errno));
        if (n == 0) break;
        send_all(fd, buf, (size_t)n, 0);
    }
    close(fd);
}

static void serve_nonblocking(int fd) {
    char buf[64];
    CHECK_EQ(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    gw_phase = "non-blocking: poll";
    CHECK_EQ(poll(&p, 1, -1), 1);
    /* TCP_NODELAY is the peer's: "abc" is one segment, read at once. */
    CHECK_EQ(read(fd, buf, sizeof buf), 3);
    errno = 0;
    CHECK_EQ(read(fd, buf, sizeof buf), -1);
    CHECK_EQ(errno, EAGAIN);
    send_all(fd, "k", 1, 0);
    CHECK_EQ(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK), 0);
    gw_phase = "non-blocking: EOF";
    CHECK_EQ(read(fd, buf, sizeof buf), 0);
    close(fd);
}

static void serve_ends(int l) {
    char buf[64];
    for (int round = 0; round < 20; round++) {
        int fd = accept(l, NULL, NULL);
        CHECK(fd >= 0, "accept: %s", strerror(errno));
        gw_phase = "end of file: pings";
        serve_pings(fd);
        gw_phase = "end of file: the last bytes";
        CHECK_EQ(read(fd, buf, sizeof buf), 4);
        gw_phase = "end of file after a short read";
        CHECK_EQ(read(fd, buf, sizeof buf), 0);
        close(fd);
    }
    for (int round = 0; round < 20; round++) {
        int fd = accept(l, NULL, NULL);
        CHECK(fd >= 0, "accept: %s", strerror(errno));
        gw_phase = "reset: pings";
        serve_pings(fd);
        /* "tail" then the reset: the bytes (if the reset left them), then ECONNRESET. */
        gw_phase = "reset after a short read";
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) CHECK(n <= 4, "reset: read %zd", n);
        CHECK_EQ(n, -1);
        CHECK_EQ(errno, ECONNRESET);
        close(fd);
        int sync = accept(l, NULL, NULL);
        CHECK(sync >= 0, "accept: %s", strerror(errno));
        send_all(sync, "k", 1, 0);
        close(sync);
    }
}

int main(void) {
    gw_watchdog("test_tcp_short_read", 40);
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_in a;
    int l = gw_tcp_listen(0, 16, &a);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(l);
        run_peer(&a);
        _exit(0);
    }

    gw_phase = "echo rounds";
    static struct conn conns[CONNS];
    static struct reader readers[CONNS][2];
    pthread_t t[CONNS][2];
    for (int i = 0; i < CONNS; i++) {
        struct conn *c = &conns[i];
        c->fd = accept(l, NULL, NULL);
        CHECK(c->fd >= 0, "accept: %s", strerror(errno));
        pthread_mutex_init(&c->mu, NULL);
        pthread_cond_init(&c->cv, NULL);
        for (int j = 0; j < 2; j++) {
            readers[i][j] = (struct reader){c, j};
            CHECK_EQ(pthread_create(&t[i][j], NULL, reader, &readers[i][j]), 0);
        }
    }
    for (int i = 0; i < CONNS; i++) {
        for (int j = 0; j < 2; j++) CHECK_EQ(pthread_join(t[i][j], NULL), 0);
        close(conns[i].fd);
    }
    /* Every round's echo was whole and in order: the peer checked each one. */

    int fd = accept(l, NULL, NULL);
    CHECK(fd >= 0, "accept: %s", strerror(errno));
    serve_urgent(fd);
    fd = accept(l, NULL, NULL);
    CHECK(fd >= 0, "accept: %s", strerror(errno));
    serve_nonblocking(fd);
    serve_ends(l);
    close(l);

    gw_phase = "peer";
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "peer failed: status %d", status);
    printf("test_tcp_short_read: ok\n");
    return 0;
}
