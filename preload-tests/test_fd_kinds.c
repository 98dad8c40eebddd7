/* Readiness of every kind of descriptor epoll accepts, through poll() and through epoll_wait()
 * on an epoll instance of the program's own, while another thread makes it ready ~50 ms later:
 *   eventfd (written by another thread), timerfd (50 ms one-shot), pipe (written by another
 *   thread), signalfd (SIGUSR1 blocked; sent by another thread: pthread_kill(main) natively,
 *   kill(getpid()) under the preload), inotify (another thread creates a file in a temporary
 *   directory), and the program's own epoll fd (holding a pipe another thread writes) polled
 *   with poll() and nested in a second epoll instance.
 * Each wait (timeout 5 s) returns 1 with POLLIN / EPOLLIN (and the right epoll data), not
 * before ~40 ms and well before the timeout; the event is then consumed and checked (eventfd
 * counter, timerfd expirations, pipe byte, signal number, inotify name, inner epoll event).
 * A ticker thread runs throughout: it keeps running while the waits wait (natively as well).
 */
#include "gwtest.h"
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>

enum kind { EVENTFD, TIMERFD, PIPE, SIGNALFD, INOTIFY, EPOLLFD, KINDS };
static const char *kind_name[] = {"eventfd", "timerfd", "pipe", "signalfd", "inotify", "epoll fd"};

static pthread_t main_thread;
static char tmpdir[64];
struct setup {
    enum kind kind;
    int fd;       /* what is waited on */
    int aux[2];   /* pipe, inner epoll... */
    int trigger_rc;
};

static void *trigger(void *arg) {
    struct setup *s = arg;
    usleep(50000);
    int rc = 0;
    switch (s->kind) {
    case EVENTFD: {
        uint64_t one = 1;
        rc = write(s->fd, &one, 8) == 8 ? 0 : errno;
        break;
    }
    case TIMERFD: break; /* the kernel's timer does it */
    case PIPE:
    case EPOLLFD: rc = write(s->aux[1], "p", 1) == 1 ? 0 : errno; break;
    case SIGNALFD:
        if (gw_preloaded()) rc = kill(getpid(), SIGUSR1) == 0 ? 0 : errno;
        else rc = pthread_kill(main_thread, SIGUSR1);
        break;
    case INOTIFY: {
        char path[128];
        snprintf(path, sizeof path, "%s/created", tmpdir);
        int fd = open(path, O_CREAT | O_WRONLY, 0600);
        rc = fd >= 0 ? 0 : errno;
        if (fd >= 0) close(fd);
        break;
    }
    default: break;
    }
    s->trigger_rc = rc;
    return NULL;
}

static void make(struct setup *s, enum kind k) {
    memset(s, 0, sizeof *s);
    s->kind = k;
    s->aux[0] = s->aux[1] = -1;
    switch (k) {
    case EVENTFD: s->fd = eventfd(0, EFD_CLOEXEC); break;
    case TIMERFD: {
        s->fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
        struct itimerspec its = {{0, 0}, {0, 50000000}};
        CHECK_EQ(timerfd_settime(s->fd, 0, &its, NULL), 0);
        break;
    }
    case PIPE:
        CHECK_EQ(pipe(s->aux), 0);
        s->fd = s->aux[0];
        break;
    case SIGNALFD: {
        sigset_t m;
        sigemptyset(&m);
        sigaddset(&m, SIGUSR1);
        s->fd = signalfd(-1, &m, SFD_CLOEXEC);
        break;
    }
    case INOTIFY:
        s->fd = inotify_init1(IN_CLOEXEC);
        CHECK(s->fd >= 0, "inotify_init1: %s", strerror(errno));
        CHECK(inotify_add_watch(s->fd, tmpdir, IN_CREATE) >= 0, "inotify_add_watch: %s",
              strerror(errno));
        break;
    case EPOLLFD: {
        CHECK_EQ(pipe(s->aux), 0);
        s->fd = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 4242};
        CHECK_EQ(epoll_ctl(s->fd, EPOLL_CTL_ADD, s->aux[0], &ev), 0);
        break;
    }
    default: break;
    }
    CHECK(s->fd >= 0, "%s: %s", kind_name[k], strerror(errno));
}

/* Consumes and checks the event. */
static void consume(struct setup *s) {
    const char *n = kind_name[s->kind];
    switch (s->kind) {
    case EVENTFD: {
        uint64_t v = 0;
        CHECK(read(s->fd, &v, 8) == 8 && v == 1, "%s: read value %llu", n, (unsigned long long)v);
        break;
    }
    case TIMERFD: {
        uint64_t v = 0;
        CHECK(read(s->fd, &v, 8) == 8 && v == 1, "%s: %llu expirations", n, (unsigned long long)v);
        break;
    }
    case PIPE: {
        char c = 0;
        CHECK(read(s->fd, &c, 1) == 1 && c == 'p', "%s: read", n);
        break;
    }
    case SIGNALFD: {
        struct signalfd_siginfo si;
        CHECK_EQ(read(s->fd, &si, sizeof si), (long)sizeof si);
        CHECK_EQ(si.ssi_signo, SIGUSR1);
        break;
    }
    case INOTIFY: {
        char buf[4096] __attribute__((aligned(8)));
        ssize_t len = read(s->fd, buf, sizeof buf);
        CHECK(len >= (ssize_t)sizeof(struct inotify_event), "%s: read %zd", n, len);
        struct inotify_event *ie = (struct inotify_event *)buf;
        CHECK(ie->mask & IN_CREATE, "%s: mask %#x", n, ie->mask);
        CHECK(ie->len > 0 && strcmp(ie->name, "created") == 0, "%s: name '%s'", n,
              ie->len ? ie->name : "");
        char path[128];
        snprintf(path, sizeof path, "%s/created", tmpdir);
        CHECK_EQ(unlink(path), 0);
        break;
    }
    case EPOLLFD: {
        struct epoll_event ev;
        CHECK_EQ(epoll_wait(s->fd, &ev, 1, 0), 1);
        CHECK_EQ(ev.data.u32, 4242);
        CHECK(ev.events == EPOLLIN, "inner events %#x", ev.events);
        char c = 0;
        CHECK(read(s->aux[0], &c, 1) == 1 && c == 'p', "%s: pipe read", n);
        break;
    }
    default: break;
    }
}

static void destroy(struct setup *s) {
    if (s->fd != s->aux[0]) close(s->fd);
    if (s->aux[0] >= 0) close(s->aux[0]);
    if (s->aux[1] >= 0) close(s->aux[1]);
}

/* how: 0 poll, 1 epoll_wait on a fresh epoll instance holding the fd. */
static void one(enum kind k, int how) {
    struct setup s;
    make(&s, k);
    const char *n = kind_name[k];
    const char *via = how ? "epoll_wait" : "poll";
    int outer = -1;
    if (how) {
        outer = epoll_create1(EPOLL_CLOEXEC);
        CHECK(outer >= 0, "epoll_create1");
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0xabcdef0123ULL + k};
        CHECK(epoll_ctl(outer, EPOLL_CTL_ADD, s.fd, &ev) == 0, "%s: epoll_ctl: %s", n,
              strerror(errno));
    }
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, trigger, &s), 0);
    long ticks0 = gw_ticks;
    long long t0 = gw_now_ns();
    int rc;
    struct pollfd p = {.fd = s.fd, .events = POLLIN, .revents = 0};
    struct epoll_event ev = {0, {0}};
    if (how) rc = epoll_wait(outer, &ev, 1, 5000);
    else rc = poll(&p, 1, 5000);
    int e = errno;
    long long ms = gw_ms_since(t0);
    long ticked = gw_ticks - ticks0;
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(s.trigger_rc == 0, "%s: trigger failed: %s", n, strerror(s.trigger_rc));
    CHECK(rc == 1, "%s via %s: rc %d errno %d after %lld ms", n, via, rc, e, ms);
    if (how) {
        CHECK(ev.events == EPOLLIN, "%s via epoll: events %#x", n, ev.events);
        CHECK(ev.data.u64 == 0xabcdef0123ULL + k, "%s via epoll: data", n);
    } else {
        CHECK(p.revents == POLLIN, "%s via poll: revents %#x", n, p.revents);
    }
    /* Not before it was made ready; an upper bound would only measure the machine's load (the
     * 5 s timeout already fails a wait that was never woken). */
    CHECK(ms >= 40, "%s via %s: ready after %lld ms (made ready at ~50 ms)", n, via, ms);
    /* The wait let other threads run: a hub blocked in the real call would tick 0 times
     * (countable, not timed: a loaded machine may give the 1 ms ticker only a few turns). */
    CHECK(ticked >= 1, "%s via %s: the ticker ran %ld times in %lld ms", n, via, ticked, ms);
    consume(&s);
    /* Consumed: not ready any more (a zero-timeout check). */
    p.fd = s.fd;
    p.revents = 0;
    CHECK(poll(&p, 1, 0) == 0, "%s: still ready after consuming (revents %#x)", n, p.revents);
    if (outer >= 0) close(outer);
    destroy(&s);
    printf("fd_kinds: %-8s via %-10s ready after %3lld ms (ticker ran %ld times)\n", n, via, ms,
           ticked);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    main_thread = pthread_self();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gw_fd_kinds.XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
    /* SIGUSR1 blocked before any thread exists: every thread inherits it blocked, so the
     * signal stays pending for the signalfd. */
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &m, NULL), 0);
    pthread_t tk;
    CHECK_EQ(pthread_create(&tk, NULL, gw_ticker, NULL), 0);
    for (int how = 0; how < 2; how++)
        for (int k = 0; k < KINDS; k++) one((enum kind)k, how);
    gw_ticker_stop = 1;
    CHECK_EQ(pthread_join(tk, NULL), 0);
    CHECK_EQ(rmdir(tmpdir), 0);
    return 0;
}
