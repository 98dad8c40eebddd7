/* GREENWORLD_SELECT=0: the select subsystem is plain libc.
 * The test re-runs itself with GREENWORLD_SELECT=0 (the other GREENWORLD_<subsystem> variables
 * unset, so every other subsystem stays patched) and checks, in that child:
 * - greenworld_is_monkey_patched("select") == 0 and == 0 for poll, ppoll, select, pselect,
 *   epoll_wait, epoll_pwait, epoll_pwait2; "thread" and "time" still 1 (under the preload);
 * - poll still behaves: poll(50 ms) on an empty pipe returns 0 after >= 45 ms; a pipe with
 *   data is reported (1, POLLIN); select and epoll_wait likewise;
 * - it is the real call: under the preload, a green thread that is runnable during a 50 ms
 *   poll does not run meanwhile (the OS thread blocks in the kernel), where natively (a real
 *   thread) it does; and there is still one OS thread.
 * The parent (default environment) checks that poll is patched under the preload.
 */
#include "gwtest.h"
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/select.h>

static volatile int ran;
static volatile pid_t ran_tid;
static void *runner(void *arg) {
    (void)arg;
    ran_tid = (pid_t)syscall(SYS_gettid);
    ran = 1;
    return NULL;
}

static int child(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int pre = gw_preloaded();
    static const char *const names[] = {"select", "poll", "ppoll", "select", "pselect",
                                        "epoll_wait", "epoll_pwait", "epoll_pwait2"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        CHECK(gw_patched(names[i]) == (pre ? 0 : -2), "is_monkey_patched(\"%s\") = %d", names[i],
              gw_patched(names[i]));
    if (pre) {
        CHECK_EQ(gw_patched("thread"), 1);
        CHECK_EQ(gw_patched("time"), 1);
    }

    int pp[2];
    CHECK_EQ(pipe(pp), 0);
    /* A thread that is runnable (created, not yet run under the preload) during the poll. */
    ran = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, runner, NULL), 0);
    struct pollfd p = {pp[0], POLLIN, 0};
    long long t0 = gw_now_ns();
    int rc = poll(&p, 1, 50);
    long long ms = gw_ms_since(t0);
    int ran_during = ran;
    int tasks = gw_os_threads();
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(rc == 0, "poll(50) on an empty pipe: %d errno %d", rc, errno);
    CHECK(ms >= 45 && ms < 1000, "poll(50) took %lld ms", ms);
    CHECK_EQ(p.revents, 0);
    if (pre) {
        /* At several hubs another hub may take the thread, which has not started (README,
         * Several hubs): it may run meanwhile, but not on the OS thread in libc's poll. */
        CHECK(!ran_during || (gw_hubs() > 1 && ran_tid != (pid_t)syscall(SYS_gettid)),
              "a green thread ran during poll with GREENWORLD_SELECT=0 (not libc's poll)");
        CHECK_EQ(tasks, 1);
    } else {
        CHECK(ran_during, "natively the other thread ran during the 50 ms poll");
    }
    CHECK_EQ(ran, 1);

    /* Ready descriptors are reported by all three calls. */
    CHECK_EQ(write(pp[1], "x", 1), 1);
    p.revents = 0;
    CHECK_EQ(poll(&p, 1, 1000), 1);
    CHECK_EQ(p.revents, POLLIN);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(pp[0], &r);
    struct timeval tv = {1, 0};
    CHECK_EQ(select(pp[0] + 1, &r, NULL, NULL, &tv), 1);
    CHECK(FD_ISSET(pp[0], &r), "select bit");
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 9};
    CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, pp[0], &ev), 0);
    memset(&ev, 0, sizeof ev);
    CHECK_EQ(epoll_wait(ep, &ev, 1, 1000), 1);
    CHECK_EQ(ev.data.u32, 9);
    /* select's 50 ms timeout, libc's: 0, cleared, timeval rewritten. */
    char c;
    CHECK_EQ(read(pp[0], &c, 1), 1);
    FD_ZERO(&r);
    FD_SET(pp[0], &r);
    tv.tv_sec = 0;
    tv.tv_usec = 50000;
    CHECK_EQ(select(pp[0] + 1, &r, NULL, NULL, &tv), 0);
    CHECK(!FD_ISSET(pp[0], &r) && tv.tv_sec == 0 && tv.tv_usec == 0, "select timeout");
    close(ep);
    close(pp[0]);
    close(pp[1]);
    printf("select_disabled child: plain libc (%s)\n", pre ? "preloaded" : "native");
    return 0;
}

int main(void) {
    if (getenv("GW_TEST_SELECT_DISABLED_CHILD")) return child();
    if (gw_preloaded() && !getenv("GREENWORLD_OS") && !getenv("GREENWORLD_SELECT") &&
        !getenv("GREENWORLD_SOCKET") && !getenv("GREENWORLD_THREAD") && !getenv("GREENWORLD_TIME")) {
        CHECK_EQ(gw_patched("poll"), 1);
        CHECK_EQ(gw_patched("select"), 1);
    }
    static const char *const env[] = {"GREENWORLD_SELECT=0", "GW_TEST_SELECT_DISABLED_CHILD=1",
                                       "-GREENWORLD_OS", "-GREENWORLD_SOCKET", "-GREENWORLD_THREAD",
                                       "-GREENWORLD_TIME", NULL};
    char out[8192];
    int st = gw_run_self(env, out, sizeof out, NULL);
    fputs(out, stdout);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
    CHECK(strstr(out, "select_disabled child: plain libc") != NULL, "child output: %s", out);
    return 0;
}
