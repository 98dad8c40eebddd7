/* Signals interrupt blocking calls as they interrupt native ones, while other green threads
 * run: a green read on an empty socket returns EINTR when a handler without SA_RESTART runs,
 * and goes on waiting (then gets its data) with SA_RESTART; a socket timeout is never restarted;
 * nanosleep returns EINTR with the time left; sleep returns the seconds left.
 * The timer sends SIGINT (what Ctrl-C sends) to the main thread itself (SIGEV_THREAD_ID),
 * so the native run is determinate. */
#include "gwtest.h"
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>

static timer_t timer;

static void arm_ms(long ms) {
    struct itimerspec it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000000}};
    CHECK_EQ(timer_settime(timer, 0, &it, NULL), 0);
}

int main(void) {
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGINT;
    ev._sigev_un._tid = (pid_t)syscall(SYS_gettid); /* sigev_notify_thread_id */
    CHECK_EQ(timer_create(CLOCK_MONOTONIC, &ev, &timer), 0);
    pthread_t tick;
    CHECK_EQ(pthread_create(&tick, NULL, gw_ticker, NULL), 0);
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char buf[16];

    /* 1. No SA_RESTART: the read returns EINTR after the signal; the ticker ran meanwhile. */
    gw_catch(SIGINT, 0);
    gw_caught = 0;
    long t0 = gw_ticks;
    arm_ms(150);
    long long start = gw_now_ns();
    errno = 0;
    ssize_t n = read(sv[0], buf, sizeof buf);
    long long ms = gw_ms_since(start);
    CHECK(n == -1 && errno == EINTR, "read without SA_RESTART: %zd errno %d after %lld ms", n, errno, ms);
    CHECK(ms >= 120 && ms < 2000, "EINTR after %lld ms (signal at 150)", ms);
    CHECK_EQ(gw_caught, 1);
    if (gw_preloaded())
        CHECK(gw_ticks - t0 >= 20, "the ticker ran %ld times during the read", gw_ticks - t0);

    /* 2. SA_RESTART: the read goes on and gets the data written after the signal. */
    gw_catch(SIGINT, SA_RESTART);
    gw_caught = 0;
    pthread_t w = gw_write_later(sv[1], "late", 400);
    arm_ms(150);
    start = gw_now_ns();
    n = read(sv[0], buf, sizeof buf);
    ms = gw_ms_since(start);
    CHECK(n == 4 && !memcmp(buf, "late", 4), "read with SA_RESTART: %zd errno %d", n, errno);
    CHECK(ms >= 350, "restarted read returned after %lld ms (data at 400)", ms);
    CHECK_EQ(gw_caught, 1);
    CHECK_EQ(pthread_join(w, NULL), 0);

    /* 3. SA_RESTART, but a socket timeout: not restarted (EINTR), as Linux does. */
    struct timeval tv = {2, 0};
    CHECK_EQ(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    gw_caught = 0;
    arm_ms(150);
    errno = 0;
    n = read(sv[0], buf, sizeof buf);
    CHECK(n == -1 && errno == EINTR, "read with a timeout and SA_RESTART: %zd errno %d", n, errno);
    CHECK_EQ(gw_caught, 1);

    /* 4. nanosleep: EINTR and the time left; sleep: the seconds left. */
    struct timespec req = {1, 0}, rem = {0, 0};
    arm_ms(200);
    errno = 0;
    CHECK_EQ(nanosleep(&req, &rem), -1);
    CHECK_EQ(errno, EINTR);
    long long left_ms = rem.tv_sec * 1000LL + rem.tv_nsec / 1000000;
    CHECK(left_ms > 600 && left_ms <= 810, "nanosleep left %lld ms of 1000 after 200", left_ms);
    arm_ms(300);
    unsigned left = sleep(3);
    CHECK(left == 2, "sleep(3) interrupted at 0.3 s left %u s (glibc returns tv_sec of 2.7 s)", left);

    gw_ticker_stop = 1;
    CHECK_EQ(pthread_join(tick, NULL), 0);
    return 0;
}
