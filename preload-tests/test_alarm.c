/* alarm and setitimer, process-directed SIGALRM, against green reads while a ticker runs:
 *  - alarm(1), handler without SA_RESTART: a read on an empty pipe returns -1 EINTR after about
 *    a second, and the ticker kept ticking meanwhile; alarm(0) reports the seconds left;
 *  - setitimer(ITIMER_REAL) every 50 ms, handler with SA_RESTART: the read keeps waiting through
 *    the ticks and returns the bytes a thread writes after ten of them; getitimer reports the
 *    interval;
 *  - the same timer, handler without SA_RESTART: the next tick interrupts the read.
 * No watchdog (it would need SIGALRM): run-tests' timeout catches a hang. */
#include "gwtest.h"
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

static int g_pipe[2];

static void *write_after_ten_ticks(void *arg) {
    (void)arg;
    while (gw_caught < 10) usleep(5 * 1000);
    CHECK_EQ(write(g_pipe[1], "late", 4), 4);
    return NULL;
}

int main(void) {
    pthread_t tick, writer;
    char buf[16];
    CHECK_EQ(pipe(g_pipe), 0);
    CHECK_EQ(pthread_create(&tick, NULL, gw_ticker, NULL), 0);

    /* alarm, no SA_RESTART: EINTR */
    gw_catch(SIGALRM, 0);
    CHECK_EQ(alarm(1), 0);
    long t0 = gw_ticks;
    long long start = gw_now_ns();
    errno = 0;
    CHECK_EQ(read(g_pipe[0], buf, sizeof buf), -1);
    CHECK_EQ(errno, EINTR);
    CHECK_EQ(gw_caught, 1);
    long long waited_ms = gw_ms_since(start);
    CHECK(waited_ms >= 900, "read returned after %lld ms, before the alarm", waited_ms);
    CHECK(gw_ticks - t0 >= 10, "the ticker stalled during the read (%ld ticks)", gw_ticks - t0);
    CHECK_EQ(alarm(30), 0);
    unsigned left = alarm(0);
    CHECK(left >= 29 && left <= 30, "alarm(0) reported %u seconds left", left);

    /* setitimer, SA_RESTART: the read waits through the ticks and gets the late bytes */
    gw_catch(SIGALRM, SA_RESTART);
    gw_caught = 0;
    struct itimerval every = {{0, 50 * 1000}, {0, 50 * 1000}}, now;
    CHECK_EQ(setitimer(ITIMER_REAL, &every, NULL), 0);
    CHECK_EQ(getitimer(ITIMER_REAL, &now), 0);
    CHECK_EQ(now.it_interval.tv_usec, 50 * 1000);
    CHECK_EQ(pthread_create(&writer, NULL, write_after_ten_ticks, NULL), 0);
    ssize_t n = read(g_pipe[0], buf, sizeof buf);
    CHECK(n == 4 && memcmp(buf, "late", 4) == 0, "read returned %zd (%s)", n,
          n < 0 ? strerror(errno) : "bytes");
    CHECK(gw_caught >= 10, "only %d ticks before the data", gw_caught);
    CHECK_EQ(pthread_join(writer, NULL), 0);

    /* the same timer, no SA_RESTART: the next tick interrupts */
    gw_catch(SIGALRM, 0);
    int before = gw_caught;
    errno = 0;
    CHECK_EQ(read(g_pipe[0], buf, sizeof buf), -1);
    CHECK_EQ(errno, EINTR);
    CHECK(gw_caught > before, "EINTR without a tick");
    struct itimerval off = {{0, 0}, {0, 0}};
    CHECK_EQ(setitimer(ITIMER_REAL, &off, NULL), 0);

    gw_ticker_stop = 1;
    CHECK_EQ(pthread_join(tick, NULL), 0);
    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1);
    puts("test_alarm: ok");
    return 0;
}
