/* Waiting for children, as natively, while other threads run:
 *  - 100 threads each posix_spawn a child and waitpid for it, all at once, while a ticker
 *    ticks: every status right; under the preload all of it on one OS thread (a wait for one
 *    child needs no pool thread);
 *  - waitpid, wait, wait3, wait4 and waitid each wait for a child that lives 300 ms while the
 *    ticker keeps ticking; statuses, rusage and siginfo as natively; WNOHANG answers at once;
 *  - stops and continues (WUNTRACED, WCONTINUED, waitid WSTOPPED/WCONTINUED), process groups
 *    (waitpid(0), waitpid(-pgid), waitid(P_PGID)), ECHILD and EINVAL;
 *  - a signal handler without SA_RESTART interrupts each form (EINTR) and the child is still
 *    there to reap; with SA_RESTART the wait goes on and returns the child;
 *  - 30 interrupted waits for a child that does not exit leave the thread pool usable
 *    (getaddrinfo still answers);
 *  - with SIGCHLD ignored, children reap themselves and a wait for them ends in ECHILD once
 *    they have all exited.
 * The signals are sent to the waiting thread itself (pthread_kill), so the native run is
 * determinate.
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

/* ---- signals to the waiting thread ---- */

struct kick {
    pthread_t target;
    int ms;
};

static void *kicker(void *arg) {
    struct kick *k = arg;
    usleep((useconds_t)k->ms * 1000);
    pthread_kill(k->target, SIGUSR1);
    return NULL;
}

/* SIGUSR1 to the calling thread in `ms` milliseconds. */
static pthread_t kick_me(struct kick *k, int ms) {
    pthread_t t;
    k->target = pthread_self();
    k->ms = ms;
    CHECK_EQ(pthread_create(&t, NULL, kicker, k), 0);
    return t;
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
        pid_t pid = child_exiting(40 + form, 400, 0);
        struct kick k;
        int handled = gw_caught, status = 0;
        pthread_t t = kick_me(&k, 150);
        errno = 0;
        pid_t got = wait_by((enum form)form, pid, &status);
        CHECK(got == -1 && errno == EINTR, "%s: %d (%s), want EINTR", form_names[form], got, strerror(errno));
        CHECK_EQ(gw_caught, handled + 1);
        CHECK_EQ(pthread_join(t, NULL), 0);
        CHECK_EQ(wait_by((enum form)form, pid, &status), pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 40 + form, "%s: status %#x", form_names[form], status);

        /* SA_RESTART: the handler runs and the wait goes on to the child's exit. */
        gw_catch(SIGUSR1, SA_RESTART);
        pid = child_exiting(50 + form, 400, 0);
        handled = gw_caught;
        t = kick_me(&k, 150);
        got = wait_by((enum form)form, pid, &status);
        CHECK(got == pid, "%s with SA_RESTART: %d (%s)", form_names[form], got, strerror(errno));
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 50 + form, "%s: status %#x", form_names[form], status);
        CHECK_EQ(gw_caught, handled + 1);
        CHECK_EQ(pthread_join(t, NULL), 0);
    }
}

/* ---- the forms, while a ticker ticks ---- */

static void each_form_parks(void) {
    for (int form = 0; form < FORMS; form++) {
        gw_phase = form_names[form];
        pid_t pid = child_exiting(10 + form, 300, form == BY_WAIT4 ? 100 : 0);
        int status = 0;
        CHECK_EQ(waitpid(pid, &status, WNOHANG), 0);
        siginfo_t info;
        memset(&info, 0xff, sizeof info);
        CHECK_EQ(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG), 0);
        CHECK_EQ(info.si_pid, 0);
        long t0 = gw_ticks;
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
        CHECK(gw_ticks - t0 >= 30, "%s: only %ld ticks while it waited 300 ms", form_names[form], gw_ticks - t0);
    }
    /* wait3 */
    pid_t pid = child_exiting(9, 300, 0);
    int status = 0;
    struct rusage ru;
    long t0 = gw_ticks;
    CHECK_EQ(wait3(&status, 0, &ru), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 9, "wait3: status %#x", status);
    CHECK(gw_ticks - t0 >= 30, "wait3: only %ld ticks", gw_ticks - t0);
}

static void stops_and_groups(void) {
    gw_phase = "stops";
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        raise(SIGSTOP);
        usleep(100000);
        _exit(6);
    }
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, WUNTRACED), pid);
    CHECK(WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP, "status %#x", status);
    CHECK_EQ(kill(pid, SIGCONT), 0);
    CHECK_EQ(waitpid(pid, &status, WCONTINUED), pid);
    CHECK(WIFCONTINUED(status), "status %#x, want continued", status);
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
    pthread_t writer = gw_write_later(go[1], "g", 200);
    long t0 = gw_ticks;
    CHECK_EQ(waitpid(-pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 21, "status %#x", status);
    CHECK(gw_ticks - t0 >= 20, "only %ld ticks while waitpid(-pgid) waited", gw_ticks - t0);
    CHECK_EQ(pthread_join(writer, NULL), 0);
    close(go[1]);

    pid = child_exiting(22, 200, 0);
    t0 = gw_ticks;
    CHECK_EQ(waitpid(0, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 22, "status %#x", status);
    CHECK(gw_ticks - t0 >= 20, "only %ld ticks while waitpid(0) waited", gw_ticks - t0);

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
        pthread_t t = kick_me(&k, 5);
        errno = 0;
        int status;
        CHECK(wait(&status) == -1 && errno == EINTR, "wait %d: %s", i, strerror(errno));
        CHECK_EQ(pthread_join(t, NULL), 0);
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
    pid_t a = child_exiting(1, 100, 0), b = child_exiting(2, 300, 0);
    int status;
    long long t0 = gw_now_ns();
    long ticks = gw_ticks;
    errno = 0;
    CHECK_EQ(waitpid(-1, &status, 0), -1);
    CHECK_EQ(errno, ECHILD);
    CHECK(gw_now_ns() - t0 >= 250000000LL, "waitpid(-1) ended after %lld ns, before the last child exited",
          gw_now_ns() - t0);
    CHECK(gw_ticks - ticks >= 20, "only %ld ticks", gw_ticks - ticks);
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
        if (!gw_preloaded()) usleep(20000); /* a real thread: let it run */
        CHECK_EQ(wait_by((enum form)form, pid, &status), pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 60 + form, "%s: status %#x", form_names[form], status);
        check_ran_while_blocked();
        CHECK_EQ(pthread_join(t, NULL), 0);
    }
    /* EINTR from a process-directed timer signal: this process has one thread (natively too). */
    gw_catch(SIGUSR1, 0);
    gw_catch(SIGALRM, 0);
    pid_t pid = child_exiting(70, 400, 0);
    gw_alarm_ms(100);
    int status = 0, handled = gw_caught;
    errno = 0;
    CHECK_EQ(waitpid(pid, &status, 0), -1);
    CHECK_EQ(errno, EINTR);
    CHECK_EQ(gw_caught, handled + 1);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 70, "status %#x", status);
    errno = 0;
    CHECK_EQ(wait(&status), -1);
    CHECK_EQ(errno, ECHILD);
    /* system and pclose are the real calls too. */
    g_ran = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, note_ran, NULL), 0);
    if (!gw_preloaded()) usleep(20000);
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
