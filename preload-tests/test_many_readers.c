/* Several threads block in read() on one pipe (then in poll() before it, and in accept() on one
 * listening socket), one byte (one connection) each, while main makes all of them ready with one write (one burst of
 * connections): natively every reader gets a byte and every acceptor a connection. Under the
 * preload, with the threads on two hubs, one epoll edge may arrive while a reader is between
 * its EAGAIN and its park, after the edge woke only the readers already queued: a wake lost
 * there leaves a byte in the pipe and a reader asleep for ever (the watchdog fires). Thousands
 * of rounds make that window likely; the test runs at GREENWORLD_HUBS=2 under the preload
 * whatever the run's mode. */
#include "gwtest.h"
#include <pthread.h>
#include <sys/socket.h>

enum { READERS = 4, ROUNDS = 4000, ACCEPT_ROUNDS = 400 };

static int pipe_rd, listen_fd;
static pthread_barrier_t start, done;
static int accepting, polling;

static void *reader(void *arg) {
    (void)arg;
    long got = 0;
    for (int round = 0; round < (accepting ? ACCEPT_ROUNDS : ROUNDS); round++) {
        pthread_barrier_wait(&start);
        if (accepting) {
            int fd = accept(listen_fd, NULL, NULL);
            CHECK(fd >= 0, "accept: %s", strerror(errno));
            close(fd);
        } else {
            char c;
            if (polling) {
                struct pollfd p = {.fd = pipe_rd, .events = POLLIN};
                CHECK_EQ(poll(&p, 1, -1), 1);
                CHECK(p.revents & POLLIN, "poll: revents %#x", p.revents);
            }
            ssize_t n = read(pipe_rd, &c, 1);
            CHECK(n == 1, "read: %zd (%s)", n, strerror(errno));
            CHECK(c == 'x', "read '%c'", c);
        }
        got++;
        pthread_barrier_wait(&done);
    }
    return (void *)got;
}

static void run(const char *what, void (*make_ready)(void)) {
    pthread_t t[READERS];
    CHECK_EQ(pthread_barrier_init(&start, NULL, READERS + 1), 0);
    CHECK_EQ(pthread_barrier_init(&done, NULL, READERS + 1), 0);
    for (int i = 0; i < READERS; i++) t[i] = gw_create_on_cpu(i % 2, reader, NULL);
    int rounds = accepting ? ACCEPT_ROUNDS : ROUNDS;
    for (int round = 0; round < rounds; round++) {
        pthread_barrier_wait(&start);
        make_ready();
        pthread_barrier_wait(&done);
    }
    for (int i = 0; i < READERS; i++) {
        void *got;
        CHECK_EQ(pthread_join(t[i], &got), 0);
        CHECK((long)got == rounds, "%s: a reader got %ld of %d", what, (long)got, rounds);
    }
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&done);
}

static int pipe_wr;
static void write_all_at_once(void) {
    CHECK_EQ(write(pipe_wr, "xxxx", READERS), READERS);
}

static struct sockaddr_in listen_addr;
static void connect_burst(void) {
    int fds[READERS];
    for (int i = 0; i < READERS; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        CHECK(fds[i] >= 0, "socket");
        CHECK(connect(fds[i], (struct sockaddr *)&listen_addr, sizeof listen_addr) == 0, "connect: %s",
              strerror(errno));
    }
    for (int i = 0; i < READERS; i++) close(fds[i]);
}

int main(void) {
    gw_rerun_with_hubs("2");
    gw_watchdog("test_many_readers", 60);
    int p[2];
    CHECK_EQ(pipe(p), 0);
    pipe_rd = p[0], pipe_wr = p[1];
    gw_phase = "readers of one pipe";
    run("pipe", write_all_at_once);
    gw_phase = "pollers of one pipe";
    polling = 1;
    run("poll", write_all_at_once);
    char c;
    CHECK_EQ(fcntl(pipe_rd, F_SETFL, O_NONBLOCK), 0);
    CHECK(read(pipe_rd, &c, 1) == -1 && errno == EAGAIN, "bytes left in the pipe");
    gw_phase = "acceptors of one listening socket";
    accepting = 1;
    listen_fd = gw_tcp_listen(0, 64, &listen_addr);
    run("accept", connect_burst);
    printf("ok: %d readers (and pollers) x %d rounds of one write, %d acceptors x %d bursts\n", READERS, ROUNDS,
           READERS, ACCEPT_ROUNDS);
    return 0;
}
