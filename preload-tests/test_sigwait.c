/* Waiting for signals: the classic pattern (main blocks SIGTERM, starts workers, one thread
 * waits in sigwait) with the workers running meanwhile; sigtimedwait's timeout; pause and
 * sigsuspend ended by a handler (EINTR) beside a running ticker. The helper threads block
 * SIGUSR1, so that natively the kernel can give the process-directed SIGUSR1 only to main,
 * whose pause and sigsuspend wait for it. */
#include "gwtest.h"
#include <pthread.h>
#include <signal.h>

static void block_usr1(void) {
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &usr1, NULL), 0);
}

/* gw_ticker with SIGUSR1 blocked, so that natively the signal goes to the thread waiting for it. */
static void *ticker(void *arg) {
    block_usr1();
    return gw_ticker(arg);
}

static void *killer(void *arg) {
    block_usr1();
    usleep(100 * 1000);
    kill(getpid(), (int)(intptr_t)arg);
    return NULL;
}

int main(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
    pthread_t tick, k;
    CHECK_EQ(pthread_create(&tick, NULL, ticker, NULL), 0);

    /* sigwait: the signal sent 100 ms later arrives; the ticker kept going meanwhile. */
    CHECK_EQ(pthread_create(&k, NULL, killer, (void *)(intptr_t)SIGTERM), 0);
    long t0 = gw_ticks;
    int sig = 0;
    long long start = gw_now_ns();
    CHECK_EQ(sigwait(&set, &sig), 0);
    long long ms = gw_ms_since(start);
    CHECK_EQ(sig, SIGTERM);
    CHECK(ms >= 80 && ms < 2000, "sigwait after %lld ms", ms);
    if (gw_preloaded())
        CHECK(gw_ticks - t0 >= 20, "the ticker ran %ld times during sigwait", gw_ticks - t0);
    CHECK_EQ(pthread_join(k, NULL), 0);

    /* sigwaitinfo fills in the signal. */
    CHECK_EQ(pthread_create(&k, NULL, killer, (void *)(intptr_t)SIGINT), 0);
    siginfo_t info;
    CHECK_EQ(sigwaitinfo(&set, &info), SIGINT);
    CHECK_EQ(info.si_signo, SIGINT);
    CHECK_EQ(pthread_join(k, NULL), 0);

    /* sigtimedwait times out with EAGAIN. */
    struct timespec ts = {0, 100 * 1000 * 1000};
    start = gw_now_ns();
    errno = 0;
    CHECK_EQ(sigtimedwait(&set, &info, &ts), -1);
    CHECK_EQ(errno, EAGAIN);
    ms = gw_ms_since(start);
    CHECK(ms >= 90 && ms < 2000, "sigtimedwait timed out after %lld ms", ms);

    /* pause: ended by a handler's signal (EINTR), the ticker running meanwhile. */
    gw_catch(SIGUSR1, 0);
    CHECK_EQ(pthread_create(&k, NULL, killer, (void *)(intptr_t)SIGUSR1), 0);
    t0 = gw_ticks;
    errno = 0;
    CHECK_EQ(pause(), -1);
    CHECK_EQ(errno, EINTR);
    CHECK_EQ(gw_caught, 1);
    if (gw_preloaded())
        CHECK(gw_ticks - t0 >= 20, "the ticker ran %ld times during pause", gw_ticks - t0);
    CHECK_EQ(pthread_join(k, NULL), 0);

    /* sigsuspend: a pending SIGUSR1, blocked, is delivered by sigsuspend's mask at once. */
    sigset_t usr1, none;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &usr1, NULL), 0);
    kill(getpid(), SIGUSR1);
    sigemptyset(&none);
    start = gw_now_ns();
    errno = 0;
    CHECK_EQ(sigsuspend(&none), -1);
    CHECK_EQ(errno, EINTR);
    CHECK_EQ(gw_caught, 2);
    CHECK(gw_ms_since(start) < 1000, "sigsuspend with a pending signal waited");
    sigset_t now;
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &now), 0);
    CHECK(sigismember(&now, SIGUSR1), "sigsuspend did not restore the mask");

    gw_ticker_stop = 1;
    CHECK_EQ(pthread_join(tick, NULL), 0);
    return 0;
}
