/* Timeouts with nothing ready: poll(100), select(100 ms), epoll_wait(100), ppoll(100 ms), and
 * also pselect and epoll_pwait2, each on an empty pipe, and the sleeping idioms poll(NULL, 0,
 * 100), select(0, NULL, NULL, NULL, 100 ms) and epoll_wait(100) on an empty epoll instance,
 * return 0 after >= 95 ms and < 1 s
 *   1. from main, alone;
 *   2. from main, while 5 other threads sleep in 10 ms steps and 2 others keep running
 *      (sched_yield loops);
 *   3. from a second thread, in the same company;
 *   4. from 11 threads at once, all waiting in these calls simultaneously.
 * While they wait, the sleepers keep sleeping and waking (their step counter advances).
 */
#include "gwtest.h"
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/select.h>

enum call { POLL, SELECT, EPOLL_WAIT, PPOLL, PSELECT, EPOLL_PWAIT2, POLL_NOFDS, SELECT_NOFDS,
            EPOLL_EMPTY, CALLS };
static const char *call_name[] = {"poll", "select", "epoll_wait", "ppoll", "pselect",
                                  "epoll_pwait2", "poll(NULL, 0)", "select(0, NULL...)",
                                  "epoll_wait on an empty instance"};

static volatile int company_stop;
static int sleeper_steps, yielder_loops;

static void *sleeper(void *arg) {
    (void)arg;
    while (!company_stop) {
        usleep(10000);
        __atomic_add_fetch(&sleeper_steps, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}
static void *yielder(void *arg) {
    (void)arg;
    while (!company_stop) {
        sched_yield();
        __atomic_add_fetch(&yielder_loops, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

struct outcome {
    int rc, err;
    long long ms;
    int cleared; /* select/pselect: the set was cleared */
};

static struct outcome timed(enum call c) {
    int pp[2];
    CHECK_EQ(pipe(pp), 0);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7};
    CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, pp[0], &ev), 0);
    struct pollfd p = {pp[0], POLLIN, 0};
    struct timespec ts = {0, 100000000};
    struct timeval tv = {0, 100000};
    fd_set r;
    FD_ZERO(&r);
    FD_SET(pp[0], &r);
    struct outcome o = {0, 0, 0, 1};
    long long t0 = gw_now_ns();
    errno = 0;
    switch (c) {
    case POLL: o.rc = poll(&p, 1, 100); break;
    case SELECT: o.rc = select(pp[0] + 1, &r, NULL, NULL, &tv); break;
    case EPOLL_WAIT: o.rc = epoll_wait(ep, &ev, 1, 100); break;
    case PPOLL: o.rc = ppoll(&p, 1, &ts, NULL); break;
    case PSELECT: o.rc = pselect(pp[0] + 1, &r, NULL, NULL, &ts, NULL); break;
    case EPOLL_PWAIT2: o.rc = epoll_pwait2(ep, &ev, 1, &ts, NULL); break;
    case POLL_NOFDS: o.rc = poll(NULL, 0, 100); break;
    case SELECT_NOFDS: o.rc = select(0, NULL, NULL, NULL, &tv); break;
    case EPOLL_EMPTY: {
        int empty = epoll_create1(0);
        o.rc = epoll_wait(empty, &ev, 1, 100);
        close(empty);
        break;
    }
    default: break;
    }
    o.err = errno;
    o.ms = gw_ms_since(t0);
    if (c == SELECT || c == PSELECT) o.cleared = !FD_ISSET(pp[0], &r);
    close(ep);
    close(pp[0]);
    close(pp[1]);
    return o;
}

static void check_one(enum call c, struct outcome o, const char *who) {
    CHECK(o.rc == 0, "%s %s: rc %d errno %d", who, call_name[c], o.rc, o.err);
    CHECK(o.ms >= 95 && o.ms < 1000, "%s %s(100 ms) took %lld ms", who, call_name[c], o.ms);
    CHECK(o.cleared, "%s %s: set not cleared", who, call_name[c]);
}

static void all_calls(const char *who) {
    for (int c = 0; c < CALLS; c++) check_one((enum call)c, timed((enum call)c), who);
}

static void *all_calls_thread(void *arg) {
    all_calls(arg);
    return NULL;
}

static struct outcome together_out[CALLS + 2];
static void *together(void *arg) {
    int i = (int)(intptr_t)arg;
    together_out[i] = timed((enum call)(i % CALLS));
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    all_calls("main alone:");
    printf("poll_timeouts: main alone ok\n");

    pthread_t sl[5], yl[2];
    for (int i = 0; i < 5; i++) CHECK_EQ(pthread_create(&sl[i], NULL, sleeper, NULL), 0);
    for (int i = 0; i < 2; i++) CHECK_EQ(pthread_create(&yl[i], NULL, yielder, NULL), 0);

    int steps0 = __atomic_load_n(&sleeper_steps, __ATOMIC_SEQ_CST);
    int loops0 = __atomic_load_n(&yielder_loops, __ATOMIC_SEQ_CST);
    all_calls("main in company:");
    int steps = __atomic_load_n(&sleeper_steps, __ATOMIC_SEQ_CST) - steps0;
    int loops = __atomic_load_n(&yielder_loops, __ATOMIC_SEQ_CST) - loops0;
    /* 9 calls of 100 ms: 5 sleepers of 10 ms steps would make ~450 steps. */
    CHECK(steps >= 75, "sleepers made %d steps during 900 ms of waiting", steps);
    CHECK(loops >= 100, "yielders looped %d times during 900 ms of waiting", loops);
    printf("poll_timeouts: main in company ok (sleepers %d steps, yielders %d loops)\n", steps, loops);

    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, all_calls_thread, "second thread in company:"), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    printf("poll_timeouts: second thread in company ok\n");

    pthread_t tt[CALLS + 2];
    long long t0 = gw_now_ns();
    for (int i = 0; i < CALLS + 2; i++)
        CHECK_EQ(pthread_create(&tt[i], NULL, together, (void *)(intptr_t)i), 0);
    for (int i = 0; i < CALLS + 2; i++) CHECK_EQ(pthread_join(tt[i], NULL), 0);
    long long all_ms = gw_ms_since(t0);
    for (int i = 0; i < CALLS + 2; i++)
        check_one((enum call)(i % CALLS), together_out[i], "simultaneous:");
    CHECK(all_ms < 1000, "11 simultaneous 100 ms waits took %lld ms in all", all_ms);
    printf("poll_timeouts: 11 simultaneous waits ok (%lld ms in all)\n", all_ms);

    company_stop = 1;
    for (int i = 0; i < 5; i++) CHECK_EQ(pthread_join(sl[i], NULL), 0);
    for (int i = 0; i < 2; i++) CHECK_EQ(pthread_join(yl[i], NULL), 0);
    return 0;
}
