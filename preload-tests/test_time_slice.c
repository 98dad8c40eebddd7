/* The time slice (issue 18, item 2): a thread that keeps making hooked calls that never block
 * must still let the other threads run, as the OS does natively. Each case waits, without ever
 * parking, for work that another thread must do; under the preload that thread is a green
 * thread of the same hub, which ran only when the spinner parked: each case hung.
 * 1. The root (main) re-posts to its own eventfd with zero-timeout epoll_wait, read and write
 *    (node's main thread waiting for V8's concurrent sweep), until a thread that first waits
 *    for a pipe byte (I/O readiness only the hub's poller reports) sets a flag.
 * 2. The same from a green thread, with the flag set by a thread that is just runnable.
 * 3. A green thread polls a pipe with timeout 0 (nothing ready) until a thread that sleeps
 *    first (a timer) writes to it.
 * 4. A green thread echoes bytes over a socketpair to itself (reads and writes that succeed)
 *    until another thread, woken through a condition variable, sets the flag. */
#include "gwtest.h"
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

static atomic_int done;
static int gate[2];

/* Re-posts to an eventfd with zero-timeout epoll_wait until `done`; returns the rounds. */
static long spin_on_eventfd(void) {
    int efd = eventfd(1, EFD_NONBLOCK);
    CHECK(efd >= 0, "eventfd: %s", strerror(errno));
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = efd};
    CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev), 0);
    long rounds = 0;
    uint64_t v;
    while (!atomic_load(&done)) {
        struct epoll_event got[4];
        CHECK_EQ(epoll_wait(ep, got, 4, 0), 1);
        CHECK_EQ(read(efd, &v, sizeof v), (ssize_t)sizeof v);
        v = 1;
        CHECK_EQ(write(efd, &v, sizeof v), (ssize_t)sizeof v);
        rounds++;
    }
    close(ep);
    close(efd);
    return rounds;
}

static void *after_pipe_byte(void *arg) {
    char c;
    CHECK_EQ(read(gate[0], &c, 1), 1);
    atomic_store(&done, 1);
    return arg;
}

static void *set_done(void *arg) {
    atomic_store(&done, 1);
    return arg;
}

static void *spinner(void *arg) {
    spin_on_eventfd();
    return arg;
}

static void root_spins(void) {
    atomic_store(&done, 0);
    CHECK_EQ(pipe(gate), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, after_pipe_byte, NULL), 0);
    usleep(10000); /* the thread now waits in read */
    CHECK_EQ(write(gate[1], "x", 1), 1);
    spin_on_eventfd();
    CHECK_EQ(pthread_join(t, NULL), 0);
    close(gate[0]);
    close(gate[1]);
}

static void green_spins(void) {
    atomic_store(&done, 0);
    gw_run_pair(spinner, set_done);
}

static void *sleep_then_write(void *arg) {
    usleep(2000);
    CHECK_EQ(write(gate[1], "y", 1), 1);
    return arg;
}

static void *poll_until_readable(void *arg) {
    struct pollfd p = {.fd = gate[0], .events = POLLIN};
    int n;
    while ((n = poll(&p, 1, 0)) == 0) {
    }
    CHECK_EQ(n, 1);
    CHECK(p.revents & POLLIN, "revents %#x", p.revents);
    return arg;
}

static void empty_polls(void) {
    CHECK_EQ(pipe(gate), 0);
    gw_run_pair(poll_until_readable, sleep_then_write);
    close(gate[0]);
    close(gate[1]);
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int signalled;

static void *wait_signal_then_set(void *arg) {
    pthread_mutex_lock(&mu);
    while (!signalled) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    atomic_store(&done, 1);
    return arg;
}

static void *echo_to_self(void *arg) {
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    pthread_mutex_lock(&mu);
    signalled = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    char buf[64] = "ping";
    while (!atomic_load(&done)) {
        CHECK_EQ(send(sv[0], buf, sizeof buf, 0), (ssize_t)sizeof buf);
        CHECK_EQ(recv(sv[1], buf, sizeof buf, MSG_WAITALL), (ssize_t)sizeof buf);
    }
    close(sv[0]);
    close(sv[1]);
    return arg;
}

static void busy_io(void) {
    atomic_store(&done, 0);
    pthread_t w, s;
    CHECK_EQ(pthread_create(&w, NULL, wait_signal_then_set, NULL), 0);
    usleep(10000); /* the waiter now waits on the condition variable */
    CHECK_EQ(pthread_create(&s, NULL, echo_to_self, NULL), 0);
    CHECK_EQ(pthread_join(s, NULL), 0);
    CHECK_EQ(pthread_join(w, NULL), 0);
}

int main(void) {
    gw_watchdog("test_time_slice: root spins", 20);
    root_spins();
    gw_watchdog("test_time_slice: a green thread spins", 20);
    green_spins();
    gw_watchdog("test_time_slice: empty zero-timeout polls", 20);
    empty_polls();
    gw_watchdog("test_time_slice: reads and writes that succeed", 20);
    busy_io();
    puts("ok");
    return 0;
}
