/* The signal APIs older than sigaction, which glibc builds on its internal __sigaction, install
 * handlers that interrupt (or restart) a green read exactly as natively:
 *  - sysv_signal and __sysv_signal (what signal is in strict standards builds): the read returns
 *    EINTR, and the handler is one-shot (SIG_DFL afterwards);
 *  - bsd_signal and signal: the read restarts and gets the bytes written later;
 *  - siginterrupt(sig, 1) makes signal's handler interrupt, siginterrupt(sig, 0) restart again;
 *  - sigset: SIG_HOLD blocks the signal (and a later sigset reports SIG_HOLD and unblocks it);
 *    its handler interrupts.
 * Each signal comes from another thread, process-directed (kill), while main waits in read:
 * natively once /proc shows main blocked in read; under the preload (main's OS thread is a
 * hub's, which /proc cannot see into) after 50 ms. */
#define _GNU_SOURCE
#include "gwtest.h"
/* These APIs are deprecated, and still used: testing them is the point. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <pthread.h>
#include <signal.h>

extern __sighandler_t __sysv_signal(int, __sighandler_t);
extern __sighandler_t bsd_signal(int, __sighandler_t);
extern __sighandler_t sysv_signal(int, __sighandler_t);

static volatile int handled;
static int g_pipe[2];

static void on_signal(int sig) {
    (void)sig;
    handled++;
}

struct plan {
    int sig;
    int write_after_ms; /* 0: never */
};

static void *killer(void *arg) {
    const struct plan *p = arg;
    if (gw_preloaded())
        usleep(50 * 1000);
    else
        while (gw_blocked_in(getpid(), getpid()) != SYS_read) usleep(1000);
    CHECK_EQ(kill(getpid(), p->sig), 0);
    if (p->write_after_ms) {
        usleep(p->write_after_ms * 1000);
        CHECK_EQ(write(g_pipe[1], "data", 4), 4);
    }
    return NULL;
}

/* main reads while another thread signals (and maybe writes): the read's result. */
static ssize_t read_during(int sig, int write_after_ms, int *err) {
    static struct plan p;
    p.sig = sig;
    p.write_after_ms = write_after_ms;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, killer, &p), 0);
    char buf[8];
    errno = 0;
    ssize_t n = read(g_pipe[0], buf, sizeof buf);
    *err = errno;
    CHECK_EQ(pthread_join(t, NULL), 0);
    return n;
}

static __sighandler_t current(int sig) {
    struct sigaction sa;
    CHECK_EQ(sigaction(sig, NULL, &sa), 0);
    return sa.sa_handler;
}

int main(void) {
    gw_watchdog("test_signal_apis", 60);
    CHECK_EQ(pipe(g_pipe), 0);
    int err;

    gw_phase = "sysv_signal";
    CHECK(sysv_signal(SIGUSR1, on_signal) == SIG_DFL, "previous handler");
    CHECK_EQ(read_during(SIGUSR1, 0, &err), -1);
    CHECK_EQ(err, EINTR);
    CHECK_EQ(handled, 1);
    CHECK(current(SIGUSR1) == SIG_DFL, "a sysv handler is one-shot");

    gw_phase = "__sysv_signal";
    CHECK(__sysv_signal(SIGUSR1, on_signal) == SIG_DFL, "previous handler");
    CHECK_EQ(read_during(SIGUSR1, 0, &err), -1);
    CHECK_EQ(err, EINTR);
    CHECK_EQ(handled, 2);

    gw_phase = "bsd_signal";
    CHECK(bsd_signal(SIGUSR1, on_signal) == SIG_DFL, "previous handler");
    CHECK_EQ(read_during(SIGUSR1, 50, &err), 4);
    CHECK_EQ(handled, 3);
    CHECK(current(SIGUSR1) == on_signal, "a bsd handler stays");

    gw_phase = "signal + siginterrupt";
    CHECK(signal(SIGUSR1, on_signal) == on_signal, "previous handler");
    CHECK_EQ(siginterrupt(SIGUSR1, 1), 0);
    CHECK_EQ(read_during(SIGUSR1, 0, &err), -1);
    CHECK_EQ(err, EINTR);
    CHECK_EQ(siginterrupt(SIGUSR1, 0), 0);
    CHECK_EQ(read_during(SIGUSR1, 50, &err), 4);
    CHECK_EQ(handled, 5);
    CHECK_EQ(siginterrupt(SIGUSR1, 1), 0);
    signal(SIGUSR1, on_signal); /* remembers siginterrupt: no restart */
    CHECK_EQ(read_during(SIGUSR1, 0, &err), -1);
    CHECK_EQ(err, EINTR);
    CHECK_EQ(handled, 6);

    gw_phase = "sigset";
    CHECK(sigset(SIGUSR2, SIG_HOLD) == SIG_DFL, "previous disposition");
    sigset_t now;
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &now), 0);
    CHECK_EQ(sigismember(&now, SIGUSR2), 1);
    CHECK(sigset(SIGUSR2, on_signal) == SIG_HOLD, "sigset reports the hold");
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &now), 0);
    CHECK_EQ(sigismember(&now, SIGUSR2), 0);
    CHECK_EQ(read_during(SIGUSR2, 0, &err), -1);
    CHECK_EQ(err, EINTR);
    CHECK_EQ(handled, 7);

    gw_phase = "invalid";
    errno = 0;
    CHECK(signal(0, on_signal) == SIG_ERR && errno == EINVAL, "signal(0)");
    errno = 0;
    CHECK(siginterrupt(65, 1) == -1 && errno == EINVAL, "siginterrupt(65)");
    puts("test_signal_apis: ok");
    return 0;
}
