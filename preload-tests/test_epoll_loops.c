/* Several threads, each running its own epoll event loop that never blocks (issue 18, item 3:
 * redis-benchmark --threads 2 stalled after one burst). Each loop owns some loopback
 * connections to an echo server (a thread per connection, blocking I/O), polls its own epoll
 * instance with a zero timeout (as ae does when a timer is due), sends a request whenever a
 * reply arrived, and when its share is done keeps polling until every loop is done. Under the
 * preload every thread is a green thread of one hub: before the time slice the first loop
 * polled forever, and neither the server nor the other loop ever ran. */
#include "gwtest.h"
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>

#define LOOPS 3
#define CONNS 4
#define ROUNDS 200

static int listener;
static struct sockaddr_in addr;
static atomic_int loops_done;
static long replies[LOOPS];

static void *echo_one(void *arg) {
    int s = (int)(intptr_t)arg;
    char buf[256];
    ssize_t n;
    while ((n = read(s, buf, sizeof buf)) > 0) CHECK_EQ(write(s, buf, n), n);
    close(s);
    return NULL;
}

static void *serve(void *arg) {
    for (int i = 0; i < LOOPS * CONNS; i++) {
        int s = accept(listener, NULL, NULL);
        CHECK(s >= 0, "accept: %s", strerror(errno));
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, echo_one, (void *)(intptr_t)s), 0);
        CHECK_EQ(pthread_detach(t), 0);
    }
    return arg;
}

static void *event_loop(void *arg) {
    int id = (int)(intptr_t)arg;
    int ep = epoll_create1(0);
    CHECK(ep >= 0, "epoll_create1: %s", strerror(errno));
    int fds[CONNS], sent[CONNS] = {0};
    for (int i = 0; i < CONNS; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        CHECK(connect(fds[i], (struct sockaddr *)&addr, sizeof addr) == 0, "connect: %s",
              strerror(errno));
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev), 0);
        CHECK_EQ(write(fds[i], "ping", 4), 4);
        sent[i] = 1;
    }
    int finished = 0;
    while (atomic_load(&loops_done) < LOOPS) {
        struct epoll_event got[CONNS];
        int n = epoll_wait(ep, got, CONNS, 0);
        CHECK(n >= 0, "epoll_wait: %s", strerror(errno));
        for (int k = 0; k < n; k++) {
            int i = got[k].data.u32;
            char buf[4];
            CHECK_EQ(read(fds[i], buf, 4), 4); /* 4 bytes on loopback arrive together */
            CHECK(memcmp(buf, "ping", 4) == 0, "loop %d got %.4s", id, buf);
            replies[id]++;
            if (sent[i] < ROUNDS) {
                CHECK_EQ(write(fds[i], "ping", 4), 4);
                sent[i]++;
            }
        }
        if (!finished && replies[id] == CONNS * ROUNDS) {
            finished = 1;
            atomic_fetch_add(&loops_done, 1);
        }
    }
    for (int i = 0; i < CONNS; i++) close(fds[i]);
    close(ep);
    return NULL;
}

int main(void) {
    gw_watchdog("test_epoll_loops", 30);
    listener = gw_tcp_listen(0, LOOPS * CONNS, &addr);
    pthread_t server, loops[LOOPS];
    CHECK_EQ(pthread_create(&server, NULL, serve, NULL), 0);
    for (int i = 0; i < LOOPS; i++)
        CHECK_EQ(pthread_create(&loops[i], NULL, event_loop, (void *)(intptr_t)i), 0);
    for (int i = 0; i < LOOPS; i++) CHECK_EQ(pthread_join(loops[i], NULL), 0);
    CHECK_EQ(pthread_join(server, NULL), 0);
    for (int i = 0; i < LOOPS; i++) CHECK_EQ(replies[i], CONNS * ROUNDS);
    close(listener);
    puts("ok");
    return 0;
}
