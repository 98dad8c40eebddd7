/* Waiting for signals: the classic pattern (main blocks SIGTERM, starts workers, one thread
 * waits in sigwait) with the workers running meanwhile; sigtimedwait's timeout; pause and
 * sigsuspend ended by a handler (EINTR) beside a running ticker. The helper threads block
 * SIGUSR1, so that natively the kernel can give the process-directed SIGUSR1 only to main,
 * whose pause and sigsuspend wait for it. A SIGUSR1 that lands before main is in pause (its
 * handler run outside the call) is sent again until pause returns. */
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

/* Main's wait begins at gw_ticks == ticks_at_start. The signal that ends it also waits for 20
 * of the ticker's ticks (5 s at most), so that the check that the ticker ran meanwhile does not
 * depend on how busy the machine is. */
static volatile long ticks_at_start;

static void send_after_ticks(int sig) {
    usleep(100 * 1000);
    for (int i = 0; i < 5000 && gw_ticks - ticks_at_start < 20; i++) usleep(1000);
    CHECK_EQ(kill(getpid(), sig), 0);
}

static void *killer(void *arg) {
    block_usr1();
    send_after_ticks((int)(intptr_t)arg);
    return NULL;
}

static volatile int woke, usr1_sent;

static void *usr1_until_woken(void *arg) {
    (void)arg;
    block_usr1();
    send_after_ticks(SIGUSR1);
    usr1_sent++;
    for (int i = 0; i < 50 && !woke; i++) {
        usleep(100 * 1000);
        if (woke) break;
        if (gw_caught != usr1_sent) continue; /* still pending: another would merge with it */
        CHECK_EQ(kill(getpid(), SIGUSR1), 0);
        usr1_sent++;
    }
    return NULL;
}

int main(void) {
    gw_watchdog("test_sigwait", 60);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
    pthread_t tick, k;
    CHECK_EQ(pthread_create(&tick, NULL, ticker, NULL), 0);

    /* sigwait: the signal sent 100 ms later arrives; the ticker kept going meanwhile. */
    long t0 = ticks_at_start = gw_ticks;
    long long start = gw_now_ns(); /* before the killer's 100 ms begin */
    CHECK_EQ(pthread_create(&k, NULL, killer, (void *)(intptr_t)SIGTERM), 0);
    int sig = 0;
    CHECK_EQ(sigwait(&set, &sig), 0);
    long long ms = gw_ms_since(start);
    CHECK_EQ(sig, SIGTERM);
    CHECK(ms >= 80, "sigwait after %lld ms", ms);
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
    t0 = ticks_at_start = gw_ticks;
    CHECK_EQ(pthread_create(&k, NULL, usr1_until_woken, NULL), 0);
    errno = 0;
    CHECK_EQ(pause(), -1);
    CHECK_EQ(errno, EINTR);
    int caught = gw_caught;
    woke = 1;
    CHECK(caught >= 1, "pause: EINTR with no handler run");
    if (gw_preloaded())
        CHECK(gw_ticks - t0 >= 20, "the ticker ran %ld times during pause", gw_ticks - t0);
    CHECK_EQ(pthread_join(k, NULL), 0);
    CHECK_EQ(gw_caught, usr1_sent);

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
    CHECK_EQ(gw_caught, usr1_sent + 1);
    CHECK(gw_ms_since(start) < 1000, "sigsuspend with a pending signal waited");
    sigset_t now;
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &now), 0);
    CHECK(sigismember(&now, SIGUSR1), "sigsuspend did not restore the mask");

    gw_ticker_stop = 1;
    CHECK_EQ(pthread_join(tick, NULL), 0);
    return 0;
}
