/* Signal masks are per thread (green thread, under the preload), as natively:
 *  - a new thread starts with its creator's mask; a change in one thread is not seen by another;
 *  - pthread_sigmask/sigprocmask results and errors (EINVAL for a bad `how`, SIGKILL/SIGSTOP
 *    never blocked, a NULL set only reads);
 *  - a process-directed signal is handled by the thread that does not block it (pthread_self()
 *    in the handler), and interrupts that thread's sleep (EINTR) — both ways round;
 *  - a signal every thread blocks stays pending (sigpending, sigwait); the thread that unblocks
 *    it runs its handler before pthread_sigmask returns; ppoll's and sigsuspend's masks let in a
 *    pending signal and return EINTR;
 *  - a signal whose only taker waits for a mutex is still handled while it waits;
 *  - a child forked by a thread has that thread's mask (checked in /proc/self/status);
 *  - under the preload: the OS thread blocks a signal only while every green thread does.
 * Threads order their steps by handshakes (flags polled with short sleeps), never by a sleep's
 * length. A check that needs a signal to land inside a blocking call, which no handshake can
 * promise, resends it until one does (bounded): a signal handled just outside the call is
 * counted, still checked for its thread, and sent again.
 */
#include "gwtest.h"
#include <poll.h>
#include <pthread.h>
#include <signal.h>

static volatile int handled;
static volatile pthread_t handler_thread;
/* While `want_taker` is set, every signal handled elsewhere than in `taker` is counted. */
static volatile int want_taker, strays;
static volatile pthread_t taker;

static void on_signal(int sig) {
    (void)sig;
    handler_thread = pthread_self();
    if (want_taker && !pthread_equal(handler_thread, taker)) strays++;
    handled++;
}

static sigset_t just(int sig) {
    sigset_t set;
    sigemptyset(&set);
    if (sig) sigaddset(&set, sig);
    return set;
}

static int blocks(int sig) {
    sigset_t now;
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &now), 0);
    return sigismember(&now, sig);
}

/* Whether the OS thread running the caller blocks `sig` (SigBlk of /proc/thread-self/status). */
static int os_thread_blocks(int sig) {
    FILE *f = fopen("/proc/thread-self/status", "r");
    CHECK(f != NULL, "fopen: %s", strerror(errno));
    char line[256];
    unsigned long long bits = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "SigBlk: %llx", &bits) == 1) break;
    fclose(f);
    return (int)(bits >> (sig - 1) & 1);
}

static void wait_handled(int n) {
    for (int i = 0; i < 5000 && handled < n; i++) usleep(1000);
    CHECK_EQ(handled, n);
}

/* The handshakes: a thread sets `ready` once it has got somewhere (its mask changed), the other
 * side sets `go` to let it on. Reset both before each phase. */
static volatile int ready, go;

/* Waits for a flag the other side sets (gw_wait_flag: 1 ms naps, 10 s bound). */
static void wait_for(volatile int *flag) { gw_wait_flag((int *)flag, "the other thread's handshake"); }

/* How many times a retried signal may land outside the blocking call it is meant to interrupt
 * (natively, rare: only under load); a library whose call never takes EINTR exhausts them. */
#define RESENDS 10

/* --- inheritance and per-thread changes --- */

static void *inherits(void *arg) {
    (void)arg;
    CHECK_EQ(blocks(SIGUSR1), 1);
    sigset_t usr2 = just(SIGUSR2), usr1 = just(SIGUSR1);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &usr2, NULL), 0);
    CHECK_EQ(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL), 0);
    CHECK_EQ(blocks(SIGUSR2), 1);
    CHECK_EQ(blocks(SIGUSR1), 0);
    ready = 1;
    wait_for(&go); /* main looks at its own mask meanwhile */
    CHECK_EQ(blocks(SIGUSR2), 1);
    return NULL;
}

/* --- process-directed signals go to the thread that lets them through --- */

static volatile int stop_sleeping;
static volatile int sleeper_eintr;
/* Sleeps that ended on their own although a signal was handled since the previous one ended:
 * the handler ran between two nanosleeps. */
static volatile int sleeps_missed;

static void *unblocked_sleeper(void *arg) {
    sigset_t usr1 = just(SIGUSR1);
    CHECK_EQ(pthread_sigmask(arg ? SIG_BLOCK : SIG_UNBLOCK, &usr1, NULL), 0);
    int seen = handled;
    ready = 1;
    while (!stop_sleeping) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        int rc = nanosleep(&ts, NULL);
        int now = handled; /* every handler run falls between two of these reads */
        if (rc != 0) {
            CHECK_EQ(errno, EINTR);
            CHECK(now != seen, "nanosleep: EINTR with no handler run");
            sleeper_eintr++;
        } else if (now != seen) {
            sleeps_missed++;
        }
        seen = now;
    }
    return NULL;
}

/* Sends SIGUSR1 once per request, from a thread that blocks it, once the sleeper blocks it too. */
static volatile int requested, sent, stop_sending;

static void *send_usr1(void *arg) {
    (void)arg;
    sigset_t usr1 = just(SIGUSR1);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &usr1, NULL), 0);
    wait_for(&ready);
    while (!stop_sending) {
        if (sent == requested) {
            usleep(1000);
            continue;
        }
        CHECK_EQ(kill(getpid(), SIGUSR1), 0);
        sent++;
    }
    return NULL;
}

/* --- all block: pending, sigwait, unblocking delivers --- */

static void *naps(void *arg) {
    (void)arg;
    CHECK_EQ(blocks(SIGUSR2), 1);
    ready = 1;
    wait_for(&go); /* alive, blocking SIGUSR2, while main sends it */
    return NULL;
}

static void *waits_usr2(void *arg) {
    (void)arg;
    sigset_t usr2 = just(SIGUSR2), pending;
    CHECK_EQ(sigpending(&pending), 0);
    CHECK_EQ(sigismember(&pending, SIGUSR2), 1);
    int sig = 0;
    CHECK_EQ(sigwait(&usr2, &sig), 0);
    CHECK_EQ(sig, SIGUSR2);
    return NULL;
}

static void *unblocks_usr2(void *arg) {
    (void)arg;
    sigset_t usr2 = just(SIGUSR2);
    int before = handled;
    CHECK_EQ(pthread_sigmask(SIG_UNBLOCK, &usr2, NULL), 0);
    /* delivered before pthread_sigmask returned, to this thread */
    CHECK_EQ(handled, before + 1);
    CHECK(pthread_equal(handler_thread, pthread_self()), "handler ran in another thread");
    return NULL;
}

static void *ppoll_lets_in(void *arg) {
    (void)arg;
    sigset_t none = just(0);
    struct timespec five = {5, 0};
    int before = handled;
    long long t0 = gw_now_ns();
    CHECK_EQ(ppoll(NULL, 0, &five, &none), -1);
    CHECK_EQ(errno, EINTR);
    CHECK(gw_now_ns() - t0 < 4000LL * 1000 * 1000, "ppoll waited for its timeout");
    CHECK_EQ(handled, before + 1);
    CHECK(pthread_equal(handler_thread, pthread_self()), "handler ran in another thread");
    CHECK_EQ(blocks(SIGUSR2), 1); /* the thread's own mask is back */
    return NULL;
}

static void *sigsuspend_lets_in(void *arg) {
    (void)arg;
    sigset_t none = just(0);
    int before = handled;
    CHECK_EQ(sigsuspend(&none), -1);
    CHECK_EQ(errno, EINTR);
    CHECK_EQ(handled, before + 1);
    CHECK(pthread_equal(handler_thread, pthread_self()), "handler ran in another thread");
    CHECK_EQ(blocks(SIGUSR2), 1);
    return NULL;
}

/* --- the only taker waits for a mutex --- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static volatile pid_t locker_tid;

static void *locks_mu(void *arg) {
    (void)arg;
    sigset_t usr1 = just(SIGUSR1);
    CHECK_EQ(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL), 0);
    locker_tid = gw_tid();
    ready = 1;
    CHECK_EQ(pthread_mutex_lock(&mu), 0);
    CHECK_EQ(pthread_mutex_unlock(&mu), 0);
    return NULL;
}

/* --- fork from a thread --- */

static void *forks(void *arg) {
    (void)arg;
    sigset_t usr2 = just(SIGUSR2);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &usr2, NULL), 0);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* The child's only thread is this one, with this thread's mask. */
        int ok = blocks(SIGUSR2) == 1 && blocks(SIGUSR1) == 0 && os_thread_blocks(SIGUSR2) == 1 &&
                 os_thread_blocks(SIGUSR1) == 0;
        _exit(ok ? 0 : 3);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
    return NULL;
}

int main(void) {
    gw_watchdog("test_sigmask", 60);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
    CHECK_EQ(sigaction(SIGUSR2, &sa, NULL), 0);
    pthread_t t, u;
    sigset_t usr1 = just(SIGUSR1), usr2 = just(SIGUSR2), old;

    gw_phase = "results and errors";
    sigset_t sentinel = just(SIGHUP);
    old = sentinel;
    CHECK_EQ(pthread_sigmask(12345, &usr1, &old), EINVAL);
    CHECK_EQ(sigismember(&old, SIGHUP), 1); /* untouched on error */
    errno = 0;
    CHECK_EQ(sigprocmask(12345, &usr1, NULL), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(sigprocmask(12345, NULL, &old), 0); /* no set: `how` is not looked at */
    CHECK_EQ(sigismember(&old, SIGHUP), 0);
    sigset_t killstop = just(SIGKILL);
    sigaddset(&killstop, SIGSTOP);
    sigaddset(&killstop, SIGHUP);
    CHECK_EQ(sigprocmask(SIG_BLOCK, &killstop, NULL), 0);
    CHECK_EQ(blocks(SIGKILL), 0);
    CHECK_EQ(blocks(SIGSTOP), 0);
    CHECK_EQ(blocks(SIGHUP), 1);
    CHECK_EQ(sigprocmask(SIG_UNBLOCK, &killstop, &old), 0);
    CHECK_EQ(sigismember(&old, SIGHUP), 1);
    CHECK_EQ(blocks(SIGHUP), 0);

    gw_phase = "inheritance";
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &usr1, NULL), 0);
    ready = go = 0;
    CHECK_EQ(pthread_create(&t, NULL, inherits, NULL), 0);
    wait_for(&ready); /* it has changed its own mask */
    CHECK_EQ(blocks(SIGUSR2), 0);
    CHECK_EQ(blocks(SIGUSR1), 1);
    go = 1;
    CHECK_EQ(pthread_join(t, NULL), 0);

    gw_phase = "signal to the thread that lets it through";
    /* main blocks SIGUSR1 (above); the sleeper unblocks it. */
    ready = 0;
    CHECK_EQ(pthread_create(&t, NULL, unblocked_sleeper, NULL), 0);
    wait_for(&ready);
    /* (With several hubs the sleeper may run on another OS thread than main's.) */
    if (gw_preloaded() && gw_hubs() == 1) CHECK_EQ(os_thread_blocks(SIGUSR1), 0);
    int base = handled;
    for (int tries = 0; sleeper_eintr == 0; tries++) {
        CHECK(tries < RESENDS, "SIGUSR1 never interrupted the sleeper's nanosleep");
        int missed = sleeps_missed;
        kill(getpid(), SIGUSR1);
        wait_handled(base + tries + 1);
        CHECK(pthread_equal(handler_thread, t), "SIGUSR1 handled by a thread that blocks it");
        /* the sleeper tells whether it was in nanosleep then */
        for (int i = 0; i < 5000 && sleeper_eintr == 0 && sleeps_missed == missed; i++)
            usleep(1000);
        CHECK_EQ(sleeper_eintr + sleeps_missed - missed, 1);
    }
    stop_sleeping = 1;
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(sleeper_eintr, 1);

    gw_phase = "signal to main, sent by a thread that blocks it";
    CHECK_EQ(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL), 0);
    stop_sleeping = 0;
    sleeper_eintr = 0;
    ready = 0;
    base = handled;
    taker = pthread_self();
    want_taker = 1;
    CHECK_EQ(pthread_create(&t, NULL, unblocked_sleeper, (void *)1), 0); /* blocks SIGUSR1 */
    CHECK_EQ(pthread_create(&u, NULL, send_usr1, NULL), 0); /* blocks SIGUSR1 too */
    for (int tries = 0;; tries++) {
        CHECK(tries < RESENDS, "SIGUSR1 never interrupted main's nanosleep");
        /* Another, unless one is on its way or not yet handled (two would merge into one). */
        if (sent == requested && handled == base + sent) requested++;
        struct timespec second = {1, 0}, left;
        int seen = handled;
        int rc = nanosleep(&second, &left);
        if (rc == 0) continue; /* it landed before the sleep, or not yet: again */
        CHECK_EQ(rc, -1);
        CHECK_EQ(errno, EINTR);
        CHECK(handled != seen, "nanosleep: EINTR with no handler run");
        break;
    }
    stop_sending = 1;
    CHECK_EQ(pthread_join(u, NULL), 0);
    CHECK(pthread_equal(handler_thread, pthread_self()), "SIGUSR1 handled by another thread");
    CHECK_EQ(handled, base + sent);
    CHECK_EQ(strays, 0);
    want_taker = 0;
    stop_sleeping = 1;
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(sleeper_eintr, 0);

    gw_phase = "every thread blocks: pending, sigwait";
    base = handled;
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &usr2, NULL), 0); /* threads made now inherit that */
    ready = go = 0;
    CHECK_EQ(pthread_create(&t, NULL, naps, NULL), 0);
    wait_for(&ready);
    if (gw_preloaded()) CHECK_EQ(os_thread_blocks(SIGUSR2), 1);
    kill(getpid(), SIGUSR2);
    go = 1;
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(pthread_create(&t, NULL, waits_usr2, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(handled, base);

    gw_phase = "unblocking delivers the pending signal";
    kill(getpid(), SIGUSR2);
    CHECK_EQ(pthread_create(&t, NULL, unblocks_usr2, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(handled, base + 1);

    gw_phase = "ppoll's mask lets the pending signal in";
    kill(getpid(), SIGUSR2);
    CHECK_EQ(pthread_create(&t, NULL, ppoll_lets_in, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);

    gw_phase = "sigsuspend's mask lets the pending signal in";
    /* Passes whether the signal comes before sigsuspend (pending) or during it; the sleep only
     * makes "during" the usual case. */
    CHECK_EQ(pthread_create(&t, NULL, sigsuspend_lets_in, NULL), 0);
    usleep(20 * 1000);
    kill(getpid(), SIGUSR2);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(handled, base + 3);
    sigset_t pending;
    CHECK_EQ(sigpending(&pending), 0);
    CHECK_EQ(sigismember(&pending, SIGUSR2), 0);

    gw_phase = "the only taker waits for a mutex";
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &usr1, NULL), 0);
    CHECK_EQ(pthread_mutex_lock(&mu), 0);
    ready = 0;
    CHECK_EQ(pthread_create(&t, NULL, locks_mu, NULL), 0);
    wait_for(&ready); /* it lets SIGUSR1 in */
    /* Natively, wait until it sleeps in the lock (under the preload its OS thread is a hub's). */
    if (!gw_preloaded())
        for (int i = 0; i < 5000 && gw_blocked_in(getpid(), locker_tid) != SYS_futex; i++)
            usleep(1000);
    kill(getpid(), SIGUSR1);
    wait_handled(base + 4); /* handled while the taker still waits */
    if (!gw_preloaded()) /* under the preload, the hub may run it on main's behalf */
        CHECK(pthread_equal(handler_thread, t), "SIGUSR1 handled by a thread that blocks it");
    CHECK_EQ(pthread_mutex_unlock(&mu), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);

    gw_phase = "fork from a thread";
    CHECK_EQ(pthread_sigmask(SIG_UNBLOCK, &usr1, NULL), 0);
    CHECK_EQ(pthread_sigmask(SIG_UNBLOCK, &usr2, NULL), 0);
    CHECK_EQ(pthread_create(&t, NULL, forks, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(blocks(SIGUSR2), 0);
    if (gw_preloaded()) CHECK_EQ(os_thread_blocks(SIGUSR2), 0);
    CHECK_EQ(handled, base + 4);
    puts("test_sigmask: ok");
    return 0;
}
