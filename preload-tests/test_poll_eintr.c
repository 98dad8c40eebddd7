/* A signal ends a waiting poll/select/epoll_wait with EINTR, with or without SA_RESTART (the
 * kernel never restarts these calls).
 * - SIGALRM handler installed without SA_RESTART, then with it: poll(5000) in main with
 *   alarm(1) pending returns -1 EINTR after ~1 s; select (5 s timeval) and epoll_wait(5000)
 *   the same with a 300 ms interval timer (setitimer, also SIGALRM); the handler ran exactly
 *   once; select's timeval then holds the time left (~4.7 s, Linux).
 * - all of it again while 3 other threads sleep in 100 ms steps (they inherit SIGALRM
 *   blocked, so natively only main can take it; under the preload they are green threads on
 *   main's OS thread).
 * - SIGUSR1 blocked and already pending, unblocked by the mask of ppoll, pselect, epoll_pwait
 *   or epoll_pwait2 (2 s timeout): -1 EINTR at once, the handler ran once, SIGUSR1 blocked
 *   again afterwards; alone and beside the sleepers.
 * - two threads (another one first, then main 20 ms later) wait in poll(600) when a SIGALRM
 *   comes: exactly one returns EINTR, the other times out with 0 after ~600 ms. Under the
 *   preload the interrupted one is the longest-waiting one: the other thread.
 * - signals handled before a wait (by raise() in the only thread; during an earlier usleep)
 *   do not interrupt a later poll(300) beside another thread: it returns 0 after 300 ms.
 * - main waits in poll(2000) while another thread computes without blocking for 600 ms; a
 *   SIGALRM at 300 ms ends main's poll with EINTR (natively the kernel gives a process-wide
 *   signal to the waiting main thread).
 */
#include "gwtest.h"
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/time.h>

enum call { POLL, SELECT, EPOLL_WAIT };
static const char *call_name[] = {"poll", "select", "epoll_wait"};

static void interrupted(enum call c, int flags, const char *who) {
    const char *fl = flags ? "SA_RESTART" : "no SA_RESTART";
    gw_catch(SIGALRM, flags);
    int pp[2];
    CHECK_EQ(pipe(pp), 0);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1};
    CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, pp[0], &ev), 0);
    struct pollfd p = {pp[0], POLLIN, 0};
    fd_set r;
    FD_ZERO(&r);
    FD_SET(pp[0], &r);
    struct timeval tv = {5, 0};
    long at_ms = c == POLL ? 1000 : 300;
    gw_caught = 0;
    if (c == POLL) CHECK_EQ(alarm(1), 0);
    else gw_alarm_ms(at_ms);
    long long t0 = gw_now_ns();
    errno = 0;
    int rc = -2;
    switch (c) {
    case POLL: rc = poll(&p, 1, 5000); break;
    case SELECT: rc = select(pp[0] + 1, &r, NULL, NULL, &tv); break;
    case EPOLL_WAIT: rc = epoll_wait(ep, &ev, 1, 5000); break;
    }
    int e = errno;
    long long ms = gw_ms_since(t0);
    alarm(0);
    gw_alarm_ms(0);
    CHECK(rc == -1 && e == EINTR, "%s %s (%s): rc %d errno %d after %lld ms", who, call_name[c], fl,
          rc, e, ms);
    CHECK(ms >= at_ms - 100 && ms < at_ms + 1500, "%s %s (%s): EINTR after %lld ms, signal at %ld",
          who, call_name[c], fl, ms, at_ms);
    CHECK(gw_caught == 1, "%s %s (%s): handler ran %d times", who, call_name[c], fl, (int)gw_caught);
    if (c == SELECT) {
        long long left = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
        CHECK(left <= 5000 - ms + 100 && left >= 5000 - ms - 300,
              "%s select (%s): %lld ms left after %lld ms of 5000", who, fl, left, ms);
    }
    close(ep);
    close(pp[0]);
    close(pp[1]);
}

static void all(const char *who) {
    for (int flags = 0; flags <= SA_RESTART; flags += SA_RESTART)
        for (int c = 0; c < 3; c++) interrupted((enum call)c, flags, who);
    printf("poll_eintr: poll, select, epoll_wait interrupted, with and without SA_RESTART (%s)\n",
           who);
}

static volatile int sleepers_stop;
static int sleeper_steps;
static void *sleeper(void *arg) {
    (void)arg;
    while (!sleepers_stop) {
        usleep(100000);
        __atomic_add_fetch(&sleeper_steps, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

struct waited {
    int rc, err;
    long long ms;
};
static void poll_600(struct waited *w) {
    int pp[2];
    CHECK_EQ(pipe(pp), 0);
    struct pollfd p = {pp[0], POLLIN, 0};
    long long t0 = gw_now_ns();
    errno = 0;
    w->rc = poll(&p, 1, 600);
    w->err = errno;
    w->ms = gw_ms_since(t0);
    close(pp[0]);
    close(pp[1]);
}
static struct waited other_w;
static void *other_poller(void *arg) {
    (void)arg;
    poll_600(&other_w);
    return NULL;
}

static void only_one(void) {
    gw_catch(SIGALRM, 0);
    gw_caught = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, other_poller, NULL), 0);
    usleep(20000); /* the other thread is waiting too, natively; under the preload it starts now */
    gw_alarm_ms(300);
    struct waited mine;
    poll_600(&mine);
    CHECK_EQ(pthread_join(t, NULL), 0);
    gw_alarm_ms(0);
    CHECK(gw_caught == 1, "handler ran %d times", (int)gw_caught);
    int eintrs = (mine.rc == -1 && mine.err == EINTR) + (other_w.rc == -1 && other_w.err == EINTR);
    int zeros = (mine.rc == 0) + (other_w.rc == 0);
    CHECK(eintrs == 1 && zeros == 1, "main: rc %d errno %d after %lld ms; other: rc %d errno %d after %lld ms",
          mine.rc, mine.err, mine.ms, other_w.rc, other_w.err, other_w.ms);
    struct waited *in = mine.rc == -1 ? &mine : &other_w, *out = mine.rc == -1 ? &other_w : &mine;
    CHECK(in->ms >= 200 && in->ms < 1500, "EINTR after %lld ms (signal at 300)", in->ms);
    CHECK(out->ms >= 550 && out->ms < 2000, "the other poll(600) took %lld ms", out->ms);
    /* Linux gives a process-directed signal (setitimer's SIGALRM) to the main thread first when
     * it does not block it; greenworld does the same with the OS thread's root. */
    if (gw_preloaded())
        CHECK(mine.rc == -1, "main's poll was not the interrupted one: main rc %d after %lld ms, "
                             "other rc %d errno %d after %lld ms",
              mine.rc, mine.ms, other_w.rc, other_w.err, other_w.ms);
    printf("poll_eintr: two pollers, one EINTR (%s)\n", mine.rc == -1 ? "main" : "the other");
}

static volatile sig_atomic_t usr1_handled;
static void on_usr1(int sig) {
    (void)sig;
    usr1_handled++;
}

/* SIGUSR1 blocked and already pending; the call's own mask unblocks it: the call returns -1
 * EINTR at once, after the handler ran (the race-free pattern pselect exists for). */
static void pending_unblocked(const char *who) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
    sigset_t usr1, old, unblocked;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &usr1, &old), 0);
    unblocked = old;
    sigdelset(&unblocked, SIGUSR1);
    int pp[2];
    CHECK_EQ(pipe(pp), 0);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1};
    CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, pp[0], &ev), 0);
    static const char *names[] = {"ppoll", "pselect", "epoll_pwait", "epoll_pwait2"};
    for (int k = 0; k < 4; k++) {
        usr1_handled = 0;
        CHECK_EQ(pthread_kill(pthread_self(), SIGUSR1), 0);
        CHECK(usr1_handled == 0, "handler ran while SIGUSR1 was blocked");
        struct timespec ts = {2, 0};
        struct pollfd p = {pp[0], POLLIN, 0};
        fd_set r;
        FD_ZERO(&r);
        FD_SET(pp[0], &r);
        long long t0 = gw_now_ns();
        errno = 0;
        int rc = -2;
        switch (k) {
        case 0: rc = ppoll(&p, 1, &ts, &unblocked); break;
        case 1: rc = pselect(pp[0] + 1, &r, NULL, NULL, &ts, &unblocked); break;
        case 2: rc = epoll_pwait(ep, &ev, 1, 2000, &unblocked); break;
        case 3: rc = epoll_pwait2(ep, &ev, 1, &ts, &unblocked); break;
        }
        int e = errno;
        long long ms = gw_ms_since(t0);
        CHECK(rc == -1 && e == EINTR,
              "%s %s with a mask unblocking a pending SIGUSR1: rc %d errno %d after %lld ms "
              "(handler ran %d times)",
              who, names[k], rc, e, ms, (int)usr1_handled);
        CHECK(usr1_handled == 1, "%s %s: handler ran %d times", who, names[k], (int)usr1_handled);
        CHECK(ts.tv_sec == 2 && ts.tv_nsec == 0, "%s %s changed its timespec", who, names[k]);
        CHECK(ms < 1000, "%s %s: EINTR after %lld ms", who, names[k], ms);
        sigset_t now;
        CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &now), 0);
        CHECK(sigismember(&now, SIGUSR1), "%s %s: SIGUSR1 unblocked after the call", who, names[k]);
    }
    CHECK_EQ(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
    signal(SIGUSR1, SIG_DFL);
    close(ep);
    close(pp[0]);
    close(pp[1]);
    printf("poll_eintr: pending signal unblocked by the call's mask -> EINTR at once (%s)\n", who);
}

static void *sleep_600(void *arg) {
    (void)arg;
    usleep(600000);
    return NULL;
}

/* Signals handled before a wait began (none of the calls was waiting) interrupt nothing: a
 * later poll(300) beside another thread times out with 0. (a) raise() gw_caught at once by the
 * only thread; (b) a timer's SIGALRM while main sleeps in usleep. */
static void stale_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
    gw_catch(SIGALRM, 0);
    int pp[2];
    CHECK_EQ(pipe(pp), 0);
    for (int k = 0; k < 2; k++) {
        usr1_handled = 0;
        gw_caught = 0;
        if (k == 0) {
            CHECK_EQ(raise(SIGUSR1), 0);
            CHECK_EQ(usr1_handled, 1);
        }
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, sleep_600, NULL), 0);
        if (k == 1) {
            gw_alarm_ms(50);
            usleep(150000);
            CHECK(gw_caught == 1, "SIGALRM during usleep: handler ran %d times", (int)gw_caught);
        }
        struct pollfd p = {pp[0], POLLIN, 0};
        long long t0 = gw_now_ns();
        errno = 0;
        int rc = poll(&p, 1, 300);
        int e = errno;
        long long ms = gw_ms_since(t0);
        CHECK_EQ(pthread_join(t, NULL), 0);
        CHECK(rc == 0 && ms >= 295 && ms < 1500,
              "poll(300) after a signal handled %s: rc %d errno %d after %lld ms",
              k == 0 ? "by raise() before it" : "during an earlier usleep", rc, e, ms);
    }
    signal(SIGUSR1, SIG_DFL);
    close(pp[0]);
    close(pp[1]);
    printf("poll_eintr: signals handled before a wait do not interrupt it\n");
}

static void *spin_600(void *arg) {
    (void)arg;
    long long end = gw_now_ns() + 600000000LL;
    while (gw_now_ns() < end) {}
    return NULL;
}

/* The signal comes while another thread is busy computing (it never blocks nor yields):
 * natively the waiting main thread takes it (the kernel prefers the thread-group leader when
 * it can take the signal) and its poll returns EINTR at ~300 ms. */
static void while_busy(void) {
    gw_catch(SIGALRM, 0);
    gw_caught = 0;
    int pp[2];
    CHECK_EQ(pipe(pp), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, spin_600, NULL), 0);
    gw_alarm_ms(300);
    struct pollfd p = {pp[0], POLLIN, 0};
    long long t0 = gw_now_ns();
    errno = 0;
    int rc = poll(&p, 1, 2000);
    int e = errno;
    long long ms = gw_ms_since(t0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    gw_alarm_ms(0);
    CHECK(gw_caught == 1, "handler ran %d times", (int)gw_caught);
    CHECK(rc == -1 && e == EINTR,
          "poll(2000) in main, SIGALRM at 300 ms while another thread computes: rc %d errno %d after %lld ms",
          rc, e, ms);
    CHECK(ms >= 200 && ms < 1500, "EINTR after %lld ms", ms);
    close(pp[0]);
    close(pp[1]);
    printf("poll_eintr: EINTR while another thread computes\n");
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    all("main alone:");
    pending_unblocked("main alone:");

    /* Sleepers inherit SIGALRM blocked: natively only main may take it. */
    sigset_t alrm, old;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &alrm, &old), 0);
    pthread_t s[3];
    for (int i = 0; i < 3; i++) CHECK_EQ(pthread_create(&s[i], NULL, sleeper, NULL), 0);
    CHECK_EQ(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
    int steps0 = __atomic_load_n(&sleeper_steps, __ATOMIC_SEQ_CST);
    all("main beside sleepers:");
    pending_unblocked("main beside sleepers:");
    int steps = __atomic_load_n(&sleeper_steps, __ATOMIC_SEQ_CST) - steps0;
    CHECK(steps >= 30, "3 sleepers of 100 ms steps made %d steps in ~3 s", steps);
    sleepers_stop = 1;
    for (int i = 0; i < 3; i++) CHECK_EQ(pthread_join(s[i], NULL), 0);

    only_one();
    stale_signals();
    while_busy();
    return 0;
}
