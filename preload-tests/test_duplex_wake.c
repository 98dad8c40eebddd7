/* A thread blocks writing to a full socket that also holds unread data (nobody reads it), and
 * the peer then reads what was written: natively the writer finishes. Under the preload the
 * writer parks on the socket's write direction, and the room the peer makes comes as one epoll
 * event that reports both directions (the socket is readable and now writable): the edge wakes
 * both directions' waiters under one hold of their parking-lot bucket, turning from the
 * readers' queue to the writers'; a writer left out there sleeps for ever (the watchdog fires).
 * Then a reader and a writer park on one socket at once, and each is woken by its own
 * direction's edge. On a Unix socket pair and on TCP. */
#include "gwtest.h"
#include <pthread.h>
#include <sys/socket.h>

enum { ROUNDS = 20, CHUNK = 1 << 20, UNIX_LEN = 256 << 10, TCP_LEN = 32 << 20 };

static char *out_buf, *in_buf;

struct job {
    int fd;
    size_t len;
    ssize_t done;
};

static void *writer(void *arg) {
    struct job *job = arg;
    /* One blocking call, larger than the socket's buffers: it parks until the peer reads. */
    job->done = send(job->fd, out_buf, job->len, 0);
    return NULL;
}

static void *reader(void *arg) {
    struct job *job = arg;
    char c;
    job->done = recv(job->fd, &c, 1, 0);
    return NULL;
}

static void read_exactly(int fd, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(fd, in_buf, len - got < CHUNK ? len - got : CHUNK, 0);
        CHECK(n > 0, "peer recv after %zu of %zu bytes: %zd (%s)", got, len, n, strerror(errno));
        got += (size_t)n;
    }
}

static void small_buffers(int fd) {
    int size = 4096;
    CHECK(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) == 0, "SO_SNDBUF: %s", strerror(errno));
    CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) == 0, "SO_RCVBUF: %s", strerror(errno));
}

/* `len`: more than the socket and its peer buffer between them. */
static void rounds(int sock, int peer, const char *kind, size_t len) {
    for (int round = 0; round < ROUNDS; round++) {
        /* The writer's socket holds a byte nobody reads: every event it gets says readable. */
        CHECK_EQ(send(peer, "r", 1, 0), 1);
        struct job w = {sock, len, -2};
        pthread_t t;
        CHECK(pthread_create(&t, NULL, writer, &w) == 0, "pthread_create");
        gw_sleep_ms(round % 3); /* parked or about to be: either way it must finish */
        read_exactly(peer, len);
        pthread_join(t, NULL);
        CHECK(w.done == (ssize_t)len, "%s round %d: the writer sent %zd of %zu", kind, round, w.done, len);
        char c;
        CHECK_EQ(recv(sock, &c, 1, 0), 1);
        CHECK_EQ(c, 'r');

        /* A reader and a writer parked on one socket at once, each woken by its own edge. */
        struct job r = {sock, 1, -2};
        w.done = -2;
        pthread_t tr, tw;
        CHECK(pthread_create(&tr, NULL, reader, &r) == 0, "pthread_create");
        CHECK(pthread_create(&tw, NULL, writer, &w) == 0, "pthread_create");
        gw_sleep_ms(round % 3);
        read_exactly(peer, len);
        pthread_join(tw, NULL);
        CHECK(w.done == (ssize_t)len, "%s round %d: the writer beside a reader sent %zd of %zu", kind, round,
              w.done, len);
        CHECK_EQ(send(peer, "x", 1, 0), 1);
        pthread_join(tr, NULL);
        CHECK(r.done == 1, "%s round %d: the reader beside a writer got %zd", kind, round, r.done);
    }
}

int main(void) {
    gw_watchdog("test_duplex_wake", 60);
    out_buf = calloc(1, TCP_LEN);
    in_buf = malloc(CHUNK);
    CHECK(out_buf && in_buf, "malloc");

    int pair[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0, "socketpair: %s", strerror(errno));
    small_buffers(pair[0]);
    small_buffers(pair[1]);
    rounds(pair[0], pair[1], "unix", UNIX_LEN);
    close(pair[0]);
    close(pair[1]);

    int tcp[2];
    gw_tcp_pair(tcp);
    /* Default buffers: shrunk after the handshake, TCP's window crawls through zero-window
     * probes. */
    rounds(tcp[0], tcp[1], "tcp", TCP_LEN);
    close(tcp[0]);
    close(tcp[1]);
    printf("ok\n");
    return 0;
}
