/* Waiting for children, as natively, while other threads run:
 *  - 100 threads each posix_spawn a child and waitpid for it, all at once, while a ticker
 *    ticks: every status right; under the preload all of it on one OS thread (a wait for one
 *    child needs no pool thread);
 *  - waitpid, wait, wait3, wait4 and waitid each wait for a child released only once the ticker
 *    has ticked 30 times; statuses, rusage and siginfo as natively; WNOHANG answers at once;
 *  - stops and continues (WUNTRACED, WCONTINUED, waitid WSTOPPED/WCONTINUED), process groups
 *    (waitpid(0), waitpid(-pgid), waitid(P_PGID)), ECHILD and EINVAL;
 *  - a signal handler without SA_RESTART interrupts each form (EINTR) and the child is still
 *    there to reap; with SA_RESTART the wait goes on and returns the child;
 *  - 30 interrupted waits for a child that does not exit leave the thread pool usable
 *    (getaddrinfo still answers);
 *  - with SIGCHLD ignored, children reap themselves and a wait for them ends in ECHILD once
 *    they have all exited.
 * The signals are sent to the waiting thread itself (pthread_kill) once it is in the wait, and
 * children exit when released rather than after a time, so a loaded machine (natively too)
 * changes nothing: no ordering here rests on a sleep.
 * With a thread pool of one (GREENWORLD_TPOOL_SIZE=1, a re-run), a wait for any child does not
 * keep the resolver from running, when the child exits only once a name is resolved.
 * Pass-through: the test re-runs itself with GREENWORLD_OS=0, where the waits are the real
 * calls (greenworld_is_monkey_patched says 0; under the preload a runnable green thread does
 * not run during a wait, as the OS thread blocks in the kernel), with the same results,
 * statuses and errors, and EINTR from an interval timer's handler; system and pclose too. */
#include "gwtest.h"
#include <netdb.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/time.h>

extern char **environ;

enum { SPAWNERS = 100 };
static int g_spawned_ok, g_os_threads_max;

static void *spawn_and_wait(void *arg) {
    int i = (int)(intptr_t)arg;
    char code[16];
    snprintf(code, sizeof code, "exit %d", i);
    char *argv[] = {"/bin/sh", "-c", code, NULL};
    pid_t pid;
    int status = 0;
    if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) != 0) return NULL;
    int n = gw_os_threads();
    if (n > __atomic_load_n(&g_os_threads_max, __ATOMIC_SEQ_CST)) __atomic_store_n(&g_os_threads_max, n, __ATOMIC_SEQ_CST);
    if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == i)
        __atomic_add_fetch(&g_spawned_ok, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static long long cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* A child that exits with `code` after `ms` milliseconds, the first `spin_ms` of CPU time
 * spent spinning. */
static pid_t child_exiting(int code, int ms, int spin_ms) {
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        long long end = cpu_ns() + spin_ms * 1000000LL;
        while (cpu_ns() < end) {}
        usleep((useconds_t)(ms - spin_ms) * 1000);
        _exit(code);
    }
    return pid;
}

/* A child that exits with `code` once a byte is written to *release (then close it): it lives
 * as long as the test needs, however slow the machine. */
static pid_t child_released_spin(int code, int spin_ms, int *release) {
    int p[2];
    CHECK_EQ(pipe(p), 0);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        char c;
        close(p[1]);
        long long end = cpu_ns() + spin_ms * 1000000LL;
        while (cpu_ns() < end) {}
        _exit(read(p[0], &c, 1) == 1 ? code : 99);
    }
    close(p[0]);
    *release = p[1];
    return pid;
}

static pid_t child_released(int code, int *release) { return child_released_spin(code, 0, release); }

static void release(int fd) {
    CHECK_EQ(write(fd, "g", 1), 1);
    close(fd);
}

/* A thread that releases a child (writes to `fd`) once gw_ticker has ticked `ticks` times
 * from `from` (a gw_ticks value): a wait for that child ends only after the ticker ran that
 * long, however slow the machine (and not at all if the wait kept the ticker from running). */
struct after_ticks {
    int fd, released;
    long until;
};
static void *release_after_ticks(void *arg) {
    struct after_ticks *a = arg;
    while (gw_ticks < a->until) gw_sleep_ms(1);
    __atomic_store_n(&a->released, 1, __ATOMIC_SEQ_CST);
    release(a->fd);
    return NULL;
}
static pthread_t releaser(struct after_ticks *a, int fd, long from, long ticks) {
    *a = (struct after_ticks){.fd = fd, .until = from + ticks};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, release_after_ticks, a), 0);
    return t;
}

/* ---- signals to the waiting thread ---- */

/* SIGUSR1 to a thread once it waits: it sets `waiting` just before the call; natively the
 * kicker then sees its OS thread blocked in the wait (/proc), so the signal lands inside the
 * call. Under the preload the green kicker runs once the waiter has parked (at one hub; at
 * several it may run meanwhile on another hub, so it kicks again every 20 ms until `stop`).
 * With release_fd >= 0 it then releases the child once the handler has run. */
struct kick {
    pthread_t target;
    pid_t tid;
    int waiting, stop, repeat, sent, caught_before, release_fd;
};

static void *kicker(void *arg) {
    struct kick *k = arg;
    gw_wait_flag(&k->waiting, "the waiter to wait");
    if (!gw_preloaded()) {
        long long t0 = gw_now_ns();
        for (;;) {
            long nr = gw_blocked_in(getpid(), k->tid);
            if (nr == SYS_wait4 || nr == SYS_waitid) break;
            CHECK(gw_now_ns() - t0 < 10000000000LL, "the waiter never blocked in its wait (%ld)", nr);
            gw_sleep_ms(1);
        }
    }
    do {
        __atomic_add_fetch(&k->sent, 1, __ATOMIC_SEQ_CST);
        pthread_kill(k->target, SIGUSR1);
        for (int i = 0; i < 20 && k->repeat && !__atomic_load_n(&k->stop, __ATOMIC_SEQ_CST); i++) gw_sleep_ms(1);
    } while (k->repeat && !__atomic_load_n(&k->stop, __ATOMIC_SEQ_CST));
    if (k->release_fd >= 0) {
        gw_wait_count((int *)&gw_caught, k->caught_before + 1, "the handler");
        release(k->release_fd);
    }
    return NULL;
}

/* A kicker for the calling thread, which must set k->waiting just before it waits. */
static pthread_t kick_me(struct kick *k, int repeat, int release_fd) {
    pthread_t t;
    *k = (struct kick){.target = pthread_self(), .tid = (pid_t)syscall(SYS_gettid), .repeat = repeat,
                       .caught_before = gw_caught, .release_fd = release_fd};
    CHECK_EQ(pthread_create(&t, NULL, kicker, k), 0);
    return t;
}

/* After a wait a kicker interrupted: the handler ran, once per signal at most. */
static void joined_kicker(pthread_t t, struct kick *k, int handled) {
    __atomic_store_n(&k->stop, 1, __ATOMIC_SEQ_CST);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(gw_caught >= handled + 1 && gw_caught <= handled + k->sent, "%d signals handled of %d sent",
          (int)(gw_caught - handled), k->sent);
}

enum form { BY_WAITPID, BY_WAITPID_ANY, BY_WAIT, BY_WAIT4, BY_WAITID, BY_WAITID_ALL, FORMS };
static const char *const form_names[] = {"waitpid", "waitpid(-1)", "wait", "wait4", "waitid", "waitid(P_ALL)"};

/* Waits for `pid` by `form`: the pid reported (-1 with errno on failure), its status in *status. */
static pid_t wait_by(enum form form, pid_t pid, int *status) {
    struct rusage ru;
    siginfo_t info;
    switch (form) {
    case BY_WAITPID: return waitpid(pid, status, 0);
    case BY_WAITPID_ANY: return waitpid(-1, status, 0);
    case BY_WAIT: return wait(status);
    case BY_WAIT4: return wait4(pid, status, 0, &ru);
    case BY_WAITID:
    case BY_WAITID_ALL:
        memset(&info, 0, sizeof info);
        if (waitid(form == BY_WAITID ? P_PID : P_ALL, form == BY_WAITID ? (id_t)pid : 0, &info, WEXITED) != 0)
            return -1;
        *status = info.si_code == CLD_EXITED ? (info.si_status & 0xff) << 8 : info.si_status;
        return info.si_pid;
    default: return -1;
    }
}

static void interrupt_each_form(void) {
    for (int form = 0; form < FORMS; form++) {
        gw_phase = form_names[form];
        /* No SA_RESTART: EINTR, and the child is still there. */
        gw_catch(SIGUSR1, 0);
        int rel;
        pid_t pid = child_released(40 + form, &rel);
        struct kick k;
        int handled = gw_caught, status = 0;
        pthread_t t = kick_me(&k, gw_preloaded(), -1);
        errno = 0;
        __atomic_store_n(&k.waiting, 1, __ATOMIC_SEQ_CST);
        pid_t got = wait_by((enum form)form, pid, &status);
        int err = errno;
        joined_kicker(t, &k, handled);
        CHECK(got == -1 && err == EINTR, "%s: %d (%s), want EINTR", form_names[form], got, strerror(err));
        release(rel);
        CHECK_EQ(wait_by((enum form)form, pid, &status), pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 40 + form, "%s: status %#x", form_names[form], status);

        /* SA_RESTART: the handler runs and the wait goes on to the child's exit (which comes
         * only after the handler has run). */
        gw_catch(SIGUSR1, SA_RESTART);
        pid = child_released(50 + form, &rel);
        handled = gw_caught;
        t = kick_me(&k, 0, rel);
        __atomic_store_n(&k.waiting, 1, __ATOMIC_SEQ_CST);
        got = wait_by((enum form)form, pid, &status);
        CHECK(got == pid, "%s with SA_RESTART: %d (%s)", form_names[form], got, strerror(errno));
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 50 + form, "%s: status %#x", form_names[form], status);
        CHECK_EQ(pthread_join(t, NULL), 0);
        CHECK_EQ(gw_caught, handled + 1);
    }
}

/* ---- the forms, while a ticker ticks ---- */

static void each_form_parks(void) {
    for (int form = 0; form < FORMS; form++) {
        gw_phase = form_names[form];
        int rel;
        pid_t pid = child_released_spin(10 + form, form == BY_WAIT4 ? 100 : 0, &rel);
        int status = 0;
        CHECK_EQ(waitpid(pid, &status, WNOHANG), 0);
        siginfo_t info;
        memset(&info, 0xff, sizeof info);
        CHECK_EQ(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG), 0);
        CHECK_EQ(info.si_pid, 0);
        long t0 = gw_ticks;
        struct after_ticks a;
        pthread_t r = releaser(&a, rel, t0, 30);
        if (form == BY_WAIT4) {
            struct rusage ru;
            memset(&ru, 0, sizeof ru);
            CHECK_EQ(wait4(pid, &status, 0, &ru), pid);
            long us = ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000L +
                      ru.ru_stime.tv_usec;
            CHECK(us >= 90000, "the child's rusage says %ld us of CPU, it spun for 100 ms", us);
        } else {
            CHECK_EQ(wait_by((enum form)form, pid, &status), pid);
        }
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 10 + form, "%s: status %#x", form_names[form], status);
        CHECK(gw_ticks - t0 >= 30, "%s: only %ld ticks while it waited", form_names[form], gw_ticks - t0);
        CHECK_EQ(pthread_join(r, NULL), 0);
    }
    /* wait3 */
    int rel;
    pid_t pid = child_released(9, &rel);
    int status = 0;
    struct rusage ru;
    long t0 = gw_ticks;
    struct after_ticks a;
    pthread_t r = releaser(&a, rel, t0, 30);
    CHECK_EQ(wait3(&status, 0, &ru), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 9, "wait3: status %#x", status);
    CHECK(gw_ticks - t0 >= 30, "wait3: only %ld ticks", gw_ticks - t0);
    CHECK_EQ(pthread_join(r, NULL), 0);
}

static void stops_and_groups(void) {
    gw_phase = "stops";
    /* The child exits only once released: an exit before the WCONTINUED wait would be what
     * that wait reports. */
    int cont[2];
    CHECK_EQ(pipe(cont), 0);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        char c;
        close(cont[1]);
        raise(SIGSTOP);
        _exit(read(cont[0], &c, 1) == 1 ? 6 : 99);
    }
    close(cont[0]);
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, WUNTRACED), pid);
    CHECK(WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP, "status %#x", status);
    CHECK_EQ(kill(pid, SIGCONT), 0);
    CHECK_EQ(waitpid(pid, &status, WCONTINUED), pid);
    CHECK(WIFCONTINUED(status), "status %#x, want continued", status);
    release(cont[1]);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 6, "status %#x", status);

    /* waitid: a stop, by the child's own signal later on */
    pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        usleep(100000);
        raise(SIGSTOP);
        _exit(7);
    }
    siginfo_t info;
    memset(&info, 0, sizeof info);
    CHECK_EQ(waitid(P_PID, (id_t)pid, &info, WSTOPPED), 0);
    CHECK(info.si_pid == pid && info.si_code == CLD_STOPPED && info.si_status == SIGSTOP, "code %d status %d",
          info.si_code, info.si_status);
    CHECK_EQ(kill(pid, SIGKILL), 0);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %#x", status);

    gw_phase = "groups";
    /* A child in its own group, waited for by group; one in ours, by waitpid(0). */
    int go[2];
    CHECK_EQ(pipe(go), 0);
    pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        setpgid(0, 0);
        char c;
        close(go[1]);
        ssize_t n = read(go[0], &c, 1);
        _exit(n == 1 ? 21 : 99);
    }
    close(go[0]);
    setpgid(pid, pid); /* either side may win the race: both set the same group */
    CHECK_EQ(waitpid(-pid, &status, WNOHANG), 0);
    long t0 = gw_ticks;
    struct after_ticks a;
    pthread_t writer = releaser(&a, go[1], t0, 20);
    CHECK_EQ(waitpid(-pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 21, "status %#x", status);
    CHECK(gw_ticks - t0 >= 20, "only %ld ticks while waitpid(-pgid) waited", gw_ticks - t0);
    CHECK_EQ(pthread_join(writer, NULL), 0);

    int rel;
    pid = child_released(22, &rel);
    t0 = gw_ticks;
    writer = releaser(&a, rel, t0, 20);
    CHECK_EQ(waitpid(0, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 22, "status %#x", status);
    CHECK(gw_ticks - t0 >= 20, "only %ld ticks while waitpid(0) waited", gw_ticks - t0);
    CHECK_EQ(pthread_join(writer, NULL), 0);

    pid = child_exiting(23, 200, 0);
    siginfo_t by_group;
    memset(&by_group, 0, sizeof by_group);
    CHECK_EQ(waitid(P_PGID, (id_t)getpgid(0), &by_group, WEXITED), 0);
    CHECK(by_group.si_pid == pid && by_group.si_code == CLD_EXITED && by_group.si_status == 23, "pid %d status %d",
          by_group.si_pid, by_group.si_status);

    gw_phase = "errors";
    errno = 0;
    CHECK_EQ(waitpid(-1, &status, 0), -1);
    CHECK_EQ(errno, ECHILD);
    errno = 0;
    CHECK_EQ(wait(NULL), -1);
    CHECK_EQ(errno, ECHILD);
    errno = 0;
    CHECK_EQ(waitpid(getpid(), &status, 0), -1);
    CHECK_EQ(errno, ECHILD);
    pid = child_exiting(0, 100, 0);
    errno = 0;
    CHECK_EQ(waitpid(pid, &status, 0x1000), -1); /* not an option */
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK_EQ(waitid(P_PID, (id_t)pid, &by_group, 0), -1); /* no WEXITED, WSTOPPED or WCONTINUED */
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(waitpid(pid, NULL, 0), pid); /* a NULL status */
}

/* ---- interrupted waits do not use up the pool ---- */

static void interrupted_waits_leave_the_pool(void) {
    gw_phase = "interrupted waits";
    gw_catch(SIGUSR1, 0);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        sleep(30);
        _exit(0);
    }
    for (int i = 0; i < 30; i++) {
        struct kick k;
        int handled = gw_caught;
        pthread_t t = kick_me(&k, gw_preloaded(), -1);
        errno = 0;
        int status;
        __atomic_store_n(&k.waiting, 1, __ATOMIC_SEQ_CST);
        pid_t got = wait(&status);
        int err = errno;
        joined_kicker(t, &k, handled);
        CHECK(got == -1 && err == EINTR, "wait %d: %d (%s)", i, got, strerror(err));
    }
    gw_phase = "getaddrinfo after interrupted waits";
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    CHECK_EQ(getaddrinfo("localhost", "80", &hints, &res), 0);
    freeaddrinfo(res);
    CHECK_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %#x", status);
}

/* ---- SIGCHLD ignored: children reap themselves ---- */

static void ignored_sigchld(void) {
    gw_phase = "SIGCHLD ignored";
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigemptyset(&ign.sa_mask);
    CHECK_EQ(sigaction(SIGCHLD, &ign, &old), 0);
    int rel;
    pid_t a = child_exiting(1, 100, 0), b = child_released(2, &rel);
    int status;
    long ticks = gw_ticks;
    struct after_ticks after;
    pthread_t r = releaser(&after, rel, ticks, 20);
    errno = 0;
    CHECK_EQ(waitpid(-1, &status, 0), -1);
    CHECK_EQ(errno, ECHILD);
    CHECK(__atomic_load_n(&after.released, __ATOMIC_SEQ_CST), "waitpid(-1) ended before the last child was released");
    CHECK(gw_ticks - ticks >= 20, "only %ld ticks", gw_ticks - ticks);
    CHECK_EQ(pthread_join(r, NULL), 0);
    pid_t c = child_exiting(3, 200, 0);
    errno = 0;
    CHECK_EQ(waitpid(c, &status, 0), -1);
    CHECK_EQ(errno, ECHILD);
    (void)a;
    (void)b;
    CHECK_EQ(sigaction(SIGCHLD, &old, NULL), 0);
}

/* ---- GREENWORLD_OS=0: the real calls ---- */

static volatile int g_ran;
static volatile pid_t g_ran_tid;
static void *note_ran(void *arg) {
    g_ran_tid = (pid_t)syscall(SYS_gettid);
    g_ran = 1;
    return arg;
}

/* Under the preload a green thread cannot run on the OS thread that waits in a plain call; at
 * several hubs another hub may have taken it (it had not started: README, Several hubs), so it
 * may have run, but on another OS thread. */
static void check_ran_while_blocked(void) {
    if (!gw_preloaded()) CHECK_EQ(g_ran, 1);
    else if (gw_hubs() == 1) CHECK_EQ(g_ran, 0);
    else CHECK(!g_ran || g_ran_tid != (pid_t)syscall(SYS_gettid), "it ran on the waiting OS thread");
}

static int os_off(void) {
    gw_watchdog("test_wait --os-off", 30);
    if (gw_preloaded()) {
        static const char *const names[] = {"os", "wait", "waitpid", "wait3", "wait4", "waitid"};
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) CHECK_EQ(gw_patched(names[i]), 0);
        CHECK_EQ(gw_patched("thread"), 1);
    }
    for (int form = 0; form < FORMS; form++) {
        pid_t pid = child_exiting(60 + form, 100, 0);
        int status = 0;
        CHECK_EQ(waitpid(pid, &status, WNOHANG), 0);
        g_ran = 0;
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, note_ran, NULL), 0);
        if (!gw_preloaded()) gw_wait_flag((int *)&g_ran, "the new thread"); /* a real thread: it runs */
        CHECK_EQ(wait_by((enum form)form, pid, &status), pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 60 + form, "%s: status %#x", form_names[form], status);
        check_ran_while_blocked();
        CHECK_EQ(pthread_join(t, NULL), 0);
    }
    /* EINTR from a process-directed timer signal: this process has one thread (natively too). */
    gw_catch(SIGUSR1, 0);
    gw_catch(SIGALRM, 0);
    /* The timer repeats (a signal before the call does not interrupt it) and the child exits
     * only once released. */
    int rel;
    pid_t pid = child_released(70, &rel);
    struct itimerval every = {{0, 100000}, {0, 100000}}, off = {{0, 0}, {0, 0}};
    int status = 0, handled = gw_caught;
    CHECK_EQ(setitimer(ITIMER_REAL, &every, NULL), 0);
    errno = 0;
    CHECK_EQ(waitpid(pid, &status, 0), -1);
    CHECK_EQ(errno, EINTR);
    CHECK_EQ(setitimer(ITIMER_REAL, &off, NULL), 0);
    CHECK(gw_caught >= handled + 1, "no SIGALRM handled");
    release(rel);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 70, "status %#x", status);
    errno = 0;
    CHECK_EQ(wait(&status), -1);
    CHECK_EQ(errno, ECHILD);
    /* system and pclose are the real calls too. */
    g_ran = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, note_ran, NULL), 0);
    if (!gw_preloaded()) gw_wait_flag((int *)&g_ran, "the new thread");
    status = system("sleep 0.05; exit 5");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 5, "system: status %#x", status);
    FILE *f = popen("sleep 0.05; exit 6", "r");
    CHECK(f != NULL, "popen: %s", strerror(errno));
    status = pclose(f);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 6, "pclose: status %#x", status);
    check_ran_while_blocked();
    CHECK_EQ(pthread_join(t, NULL), 0);
    if (gw_preloaded()) CHECK_EQ(gw_patched("system") + gw_patched("pclose"), 0);
    printf("os off: ok\n");
    return 0;
}

/* ---- a pool of one: a wait for any child, and the resolver its child depends on ---- */

static int g_go[2];

static void *resolve_then_release(void *arg) {
    usleep(50000); /* the wait has begun */
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    CHECK_EQ(getaddrinfo("localhost", "80", &hints, &res), 0);
    freeaddrinfo(res);
    CHECK_EQ(write(g_go[1], "g", 1), 1);
    return arg;
}

static int pool_of_one(void) {
    gw_watchdog("test_wait --pool-of-one", 30);
    CHECK_EQ(pipe(g_go), 0);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        char c;
        close(g_go[1]);
        _exit(read(g_go[0], &c, 1) == 1 ? 31 : 99);
    }
    close(g_go[0]);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, resolve_then_release, NULL), 0);
    int status = 0;
    CHECK_EQ(waitpid(-1, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 31, "status %#x", status);
    CHECK_EQ(pthread_join(t, NULL), 0);
    printf("pool of one: ok\n");
    return 0;
}

/* Runs this test again with `setting` in its environment and `flag` as its argument: it must
 * exit 0 having printed `done`. */
static void rerun(const char *setting, const char *flag, const char *done) {
    const char *env[] = {setting, NULL};
    char out[4096];
    int status = gw_run_self(env, out, sizeof out, flag, NULL);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && strstr(out, done), "the %s run failed (status %#x):\n%s",
          setting, status, out);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--os-off") == 0) return os_off();
    if (argc > 1 && strcmp(argv[1], "--pool-of-one") == 0) return pool_of_one();
    gw_watchdog("test_wait", 60);
    rerun("GREENWORLD_OS=0", "--os-off", "os off: ok");
    rerun("GREENWORLD_TPOOL_SIZE=1", "--pool-of-one", "pool of one: ok");
    pthread_t tick;
    CHECK_EQ(pthread_create(&tick, NULL, gw_ticker, NULL), 0);

    gw_phase = "100 spawners";
    pthread_t t[SPAWNERS];
    long t0 = gw_ticks;
    for (int i = 0; i < SPAWNERS; i++) CHECK_EQ(pthread_create(&t[i], NULL, spawn_and_wait, (void *)(intptr_t)i), 0);
    for (int i = 0; i < SPAWNERS; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK(g_spawned_ok == SPAWNERS, "%d of %d spawned children reaped with their status", g_spawned_ok, SPAWNERS);
    CHECK(gw_ticks > t0, "the ticker never ticked");
    if (gw_preloaded()) CHECK(g_os_threads_max == 1, "%d OS threads while the children were waited for", g_os_threads_max);

    each_form_parks();
    stops_and_groups();
    interrupt_each_form();
    interrupted_waits_leave_the_pool();
    ignored_sigchld();

    gw_ticker_stop = 1;
    CHECK_EQ(pthread_join(tick, NULL), 0);
    errno = 0;
    CHECK_EQ(waitpid(-1, NULL, WNOHANG), -1);
    CHECK_EQ(errno, ECHILD);
    return 0;
}
