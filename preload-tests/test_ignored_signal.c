/* A signal the program ignores never interrupts anything: the kernel discards SIGURG at its
 * default disposition, so natively no call returns EINTR for it. Under the preload SIGURG is the
 * library's own preemption signal and its handler is installed, so every SIGURG the program
 * ignores is still delivered: it must not show.
 * A child process sends SIGURG to this process as fast as it can for ~1.2 s while
 * - main and two more threads wait, over and over, in poll, ppoll, select, epoll_wait (1-2 ms
 *   timeouts on an empty pipe: each wait makes the real call at timeout 0 before and after it
 *   parks, and the kernel's poll reports EINTR for a pending signal even at timeout 0);
 * - a thread sleeps in nanosleep 1 ms steps;
 * - a thread is blocked in read on an empty pipe until the end, then reads the byte written.
 * No call returns -1 (EINTR or otherwise); each poll-like call returns 0 (nothing is ready);
 * the blocked read returns the byte. */
#include "gwtest.h"
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/select.h>

static int idle[2];      /* never written: every wait times out */
static int late[2];      /* written once at the end, for the blocked reader */
static atomic_int stop;
static atomic_long waits;

static void wait_once(int kind) {
    int rc;
    switch (kind) {
    case 0: {
        struct pollfd p = {.fd = idle[0], .events = POLLIN};
        rc = poll(&p, 1, 1);
        break;
    }
    case 1: {
        struct pollfd p = {.fd = idle[0], .events = POLLIN};
        struct timespec ts = {0, 1500000};
        rc = ppoll(&p, 1, &ts, NULL);
        break;
    }
    case 2: {
        fd_set r;
        FD_ZERO(&r);
        FD_SET(idle[0], &r);
        struct timeval tv = {0, 1000};
        rc = select(idle[0] + 1, &r, NULL, NULL, &tv);
        break;
    }
    default: {
        static __thread int ep = -1;
        if (ep < 0) {
            ep = epoll_create1(0);
            struct epoll_event ev = {.events = EPOLLIN};
            CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, idle[0], &ev), 0);
        }
        struct epoll_event out;
        rc = epoll_wait(ep, &out, 1, 2);
        break;
    }
    }
    CHECK(rc == 0, "wait kind %d returned %d (errno %d: %s)", kind, rc, errno, strerror(errno));
    atomic_fetch_add(&waits, 1);
}

static void *waiter(void *arg) {
    int first = (int)(long)arg;
    for (long i = first; !atomic_load(&stop); i++) wait_once((int)(i % 4));
    return NULL;
}

static void *sleeper(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        struct timespec ts = {0, 1000000};
        CHECK(nanosleep(&ts, NULL) == 0, "nanosleep: errno %d", errno);
    }
    return NULL;
}

static void *reader(void *arg) {
    (void)arg;
    char c = 0;
    ssize_t n = read(late[0], &c, 1);
    CHECK(n == 1, "blocked read returned %zd (errno %d: %s)", n, errno, strerror(errno));
    CHECK_EQ(c, 'x');
    return NULL;
}

int main(void) {
    CHECK_EQ(pipe(idle), 0);
    CHECK_EQ(pipe(late), 0);
    pid_t parent = getpid();
    pid_t child = fork();
    CHECK(child >= 0, "fork");
    if (child == 0) {
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        do {
            for (int i = 0; i < 64; i++)
                if (kill(parent, SIGURG) != 0) _exit(0);
            clock_gettime(CLOCK_MONOTONIC, &now);
        } while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) <
                 1200000000L);
        _exit(0);
    }
    pthread_t t[4];
    CHECK_EQ(pthread_create(&t[0], NULL, waiter, (void *)1L), 0);
    CHECK_EQ(pthread_create(&t[1], NULL, waiter, (void *)2L), 0);
    CHECK_EQ(pthread_create(&t[2], NULL, sleeper, NULL), 0);
    CHECK_EQ(pthread_create(&t[3], NULL, reader, NULL), 0);

    /* main waits too, until the child is done sending. */
    int status;
    long i = 0;
    for (;;) {
        pid_t w = waitpid(child, &status, WNOHANG);
        CHECK(w >= 0, "waitpid: errno %d", errno);
        if (w == child) break;
        wait_once((int)(i++ % 4));
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    atomic_store(&stop, 1);
    CHECK_EQ(write(late[1], "x", 1), 1);
    for (int k = 0; k < 4; k++) CHECK_EQ(pthread_join(t[k], NULL), 0);
    CHECK(atomic_load(&waits) > 100, "only %ld waits", atomic_load(&waits));
    return 0;
}
