/* pthread_kill sends a signal to one thread, as natively, also when threads share an OS thread:
 *  - the target's blocking read returns EINTR (handler without SA_RESTART), the handler runs in
 *    the target, and another thread's sleep at the same time is not interrupted;
 *  - with SA_RESTART the target's read goes on and returns the data written later;
 *  - a target that blocks the signal keeps it pending and takes it with sigwait (the handler,
 *    which main would run, does not), sigwaitinfo reports SI_USER and the sender's pid;
 *  - pthread_kill of oneself runs the handler before it returns;
 *  - signal 0 checks the thread exists; an invalid signal is EINVAL. */
#include "gwtest.h"
#include <pthread.h>
#include <signal.h>

static volatile int handled;
static volatile pthread_t handler_thread;
static int g_pipe[2];

static void on_usr1(int sig) {
    (void)sig;
    handler_thread = pthread_self();
    handled++;
}

static void handle_usr1(int flags) {
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
}

static volatile int read_result, read_errno;

static void *reader(void *arg) {
    (void)arg;
    char buf[8];
    errno = 0;
    read_result = (int)read(g_pipe[0], buf, sizeof buf);
    read_errno = errno;
    return NULL;
}

static volatile int sleeper_rc = 99;

static void *sleeper(void *arg) {
    (void)arg;
    struct timespec ts = {0, 300 * 1000 * 1000};
    sleeper_rc = nanosleep(&ts, NULL);
    return NULL;
}

static void *sigwaiter(void *arg) {
    (void)arg;
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &usr1, NULL), 0);
    siginfo_t info;
    CHECK_EQ(sigwaitinfo(&usr1, &info), SIGUSR1);
    CHECK_EQ(info.si_code, SI_USER); /* glibc >= 2.34 queues it as kill does */
    CHECK_EQ(info.si_pid, getpid());
    return NULL;
}

int main(void) {
    gw_watchdog("test_pthread_kill", 60);
    CHECK_EQ(pipe(g_pipe), 0);
    pthread_t r, s, w;

    gw_phase = "EINTR in the target only";
    handle_usr1(0);
    CHECK_EQ(pthread_create(&r, NULL, reader, NULL), 0);
    CHECK_EQ(pthread_create(&s, NULL, sleeper, NULL), 0);
    usleep(50 * 1000);
    CHECK_EQ(pthread_kill(r, SIGUSR1), 0);
    CHECK_EQ(pthread_join(r, NULL), 0);
    CHECK_EQ(read_result, -1);
    CHECK_EQ(read_errno, EINTR);
    CHECK_EQ(handled, 1);
    CHECK(pthread_equal(handler_thread, r), "the handler ran in another thread");
    CHECK_EQ(pthread_join(s, NULL), 0);
    CHECK_EQ(sleeper_rc, 0);

    gw_phase = "SA_RESTART";
    handle_usr1(SA_RESTART);
    CHECK_EQ(pthread_create(&r, NULL, reader, NULL), 0);
    usleep(50 * 1000);
    CHECK_EQ(pthread_kill(r, SIGUSR1), 0);
    usleep(50 * 1000);
    CHECK_EQ(handled, 2);
    CHECK(pthread_equal(handler_thread, r), "the handler ran in another thread");
    CHECK_EQ(write(g_pipe[1], "data", 4), 4);
    CHECK_EQ(pthread_join(r, NULL), 0);
    CHECK_EQ(read_result, 4);

    gw_phase = "pending on a target that blocks it";
    CHECK_EQ(pthread_create(&w, NULL, sigwaiter, NULL), 0);
    usleep(50 * 1000);
    CHECK_EQ(pthread_kill(w, SIGUSR1), 0);
    CHECK_EQ(pthread_join(w, NULL), 0);
    usleep(20 * 1000);
    CHECK_EQ(handled, 2); /* main lets SIGUSR1 through, but it was not main's */

    gw_phase = "oneself";
    CHECK_EQ(pthread_kill(pthread_self(), SIGUSR1), 0);
    CHECK_EQ(handled, 3);
    CHECK(pthread_equal(handler_thread, pthread_self()), "the handler ran in another thread");

    gw_phase = "signal 0 and invalid signals";
    CHECK_EQ(pthread_kill(pthread_self(), 0), 0);
    CHECK_EQ(pthread_kill(pthread_self(), 1000), EINVAL);
    CHECK_EQ(pthread_kill(pthread_self(), -1), EINVAL);
    puts("test_pthread_kill: ok");
    return 0;
}
