#include "gwtest.h"
/* Signals and fork across hubs (GREENWORLD_HUBS; the test re-runs itself with
 * GREENWORLD_HUBS=2 when preloaded without it). The thread under test runs on another OS thread
 * than main (checked with gettid under the preload):
 *  - pthread_kill from main of a thread parked in read on the other hub: its handler runs in it
 *    (pthread_self in the handler is the thread), the read fails with EINTR (no SA_RESTART);
 *  - a thread that blocks SIGUSR1 keeps a pthread_kill'ed SIGUSR1 pending (its handler does
 *    not run) until it unblocks it; then the handler runs in it, before pthread_sigmask returns;
 *  - sigwait on the other hub takes a SIGUSR2 sent to it with pthread_kill and one sent to the
 *    process with kill (every thread blocks SIGUSR2);
 *  - fork from the thread on the other hub while main keeps running: the child has only the
 *    caller (one OS thread besides the library's), can make and join threads, and exits 7. */
#include <pthread.h>
#include <signal.h>

static int hubs_on(void) {
    const char *v = getenv("GREENWORLD_HUBS");
    return gw_preloaded() && v && atoi(v) > 1;
}


static volatile sig_atomic_t handled;
static volatile pthread_t handled_in;
static void on_usr1(int sig) {
    (void)sig;
    handled++;
    handled_in = pthread_self();
}

/* A thread on another OS thread than main's (under hubs: new threads until one is). */
struct job {
    void *(*fn)(void *);
    pid_t tid;
    volatile int verdict; /* main's: 1 run, -1 placed on main's OS thread, end at once */
    volatile int state;   /* 1: ready, 2: go */
    long result;
    int pipefd[2];
};

static void *job_main(void *arg) {
    struct job *j = arg;
    __atomic_store_n(&j->tid, gw_tid(), __ATOMIC_RELEASE);
    while (!__atomic_load_n(&j->verdict, __ATOMIC_ACQUIRE)) gw_sleep_ms(1);
    if (j->verdict == -1) return NULL;
    return j->fn(j);
}

static pid_t main_tid;

static pthread_t start_elsewhere_held(struct job *j);

/* A thread that keeps main's hub loaded (placement prefers the creator's hub while it is among
 * the least loaded) until released. Another hub may take it before it starts, when main's
 * stands still meanwhile (README, Several hubs): then main's hub is the least loaded, and a
 * new hold is made. */
static volatile int hold_released;
static void *hold_main(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&hold_released, __ATOMIC_ACQUIRE)) gw_sleep_ms(1);
    return NULL;
}

static pthread_t start_elsewhere(struct job *j) {
    for (int holds = 0; holds < 4; holds++) {
        pthread_t hold;
        hold_released = 0;
        CHECK_EQ(pthread_create(&hold, NULL, hold_main, NULL), 0);
        pthread_t t = start_elsewhere_held(j);
        __atomic_store_n(&hold_released, 1, __ATOMIC_RELEASE);
        CHECK_EQ(pthread_join(hold, NULL), 0);
        if (t) return t;
    }
    CHECK(0, "no thread placed on another OS thread than main's");
    return 0;
}

static pthread_t start_elsewhere_held(struct job *j) {
    for (int tries = 0; tries < 16; tries++) {
        pthread_t t;
        j->tid = 0;
        CHECK_EQ(pthread_create(&t, NULL, job_main, j), 0);
        while (!__atomic_load_n(&j->tid, __ATOMIC_ACQUIRE)) gw_sleep_ms(1);
        if (!hubs_on() || j->tid != main_tid) {
            __atomic_store_n(&j->verdict, 1, __ATOMIC_RELEASE);
            return t;
        }
        /* On main's hub: let it end, try again. */
        __atomic_store_n(&j->verdict, -1, __ATOMIC_RELEASE);
        CHECK_EQ(pthread_join(t, NULL), 0);
        __atomic_store_n(&j->verdict, 0, __ATOMIC_RELEASE);
    }
    return 0;
}

static void *reader(void *arg) {
    struct job *j = arg;
    char b;
    __atomic_store_n(&j->state, 1, __ATOMIC_RELEASE);
    errno = 0;
    ssize_t n = read(j->pipefd[0], &b, 1);
    j->result = n == -1 ? -errno : n;
    CHECK(pthread_equal(handled_in, pthread_self()), "handler did not run in the reader");
    return NULL;
}

static void *blocker(void *arg) {
    struct job *j = arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &s, NULL), 0);
    __atomic_store_n(&j->state, 1, __ATOMIC_RELEASE);
    while (__atomic_load_n(&j->state, __ATOMIC_ACQUIRE) != 2) gw_sleep_ms(1);
    CHECK_EQ(handled, 0);
    CHECK_EQ(pthread_sigmask(SIG_UNBLOCK, &s, NULL), 0);
    CHECK_EQ(handled, 1);
    CHECK(pthread_equal(handled_in, pthread_self()), "handler did not run in the unblocking thread");
    j->result = 1;
    return NULL;
}

static void *waiter(void *arg) {
    struct job *j = arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    __atomic_store_n(&j->state, 1, __ATOMIC_RELEASE);
    int sig = 0, got = 0;
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(sigwait(&s, &sig), 0);
        if (sig == SIGUSR2) got++;
        __atomic_store_n(&j->state, 3 + i, __ATOMIC_RELEASE);
    }
    j->result = got;
    return NULL;
}

static void *child_thread(void *arg) { return arg; }

/* Every task of this process (the forking OS thread may be a hub's, named gw-hub-N). */
static int tasks(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void *forker(void *arg) {
    struct job *j = arg;
    pid_t pid = fork();
    if (pid == 0) {
        if (tasks() != 1) _exit(3);
        pthread_t t;
        void *ret;
        if (pthread_create(&t, NULL, child_thread, (void *)7) != 0) _exit(4);
        if (pthread_join(t, &ret) != 0) _exit(5);
        _exit((int)(long)ret);
    }
    CHECK(pid > 0, "fork: %s", strerror(errno));
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    j->result = gw_exit_code(status);
    return NULL;
}

static volatile int main_spins;

int main(void) {
    gw_rerun_with_hubs("2");
    gw_watchdog("test_hubs_signal", 60);
    main_tid = gw_tid();
    struct sigaction sa = {.sa_handler = on_usr1};
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);

    gw_phase = "pthread_kill interrupts a read on the other hub";
    for (int round = 0; round < 5; round++) {
        struct job j = {.fn = reader};
        CHECK_EQ(pipe(j.pipefd), 0);
        handled = 0;
        handled_in = 0;
        pthread_t t = start_elsewhere(&j);
        while (__atomic_load_n(&j.state, __ATOMIC_ACQUIRE) != 1) gw_sleep_ms(1);
        gw_sleep_ms(5);
        CHECK_EQ(pthread_kill(t, SIGUSR1), 0);
        CHECK_EQ(pthread_join(t, NULL), 0);
        CHECK_EQ(j.result, -EINTR);
        CHECK_EQ(handled, 1);
        close(j.pipefd[0]);
        close(j.pipefd[1]);
    }

    gw_phase = "a blocked signal stays pending on the other hub's thread";
    {
        struct job j = {.fn = blocker};
        handled = 0;
        handled_in = 0;
        pthread_t t = start_elsewhere(&j);
        while (__atomic_load_n(&j.state, __ATOMIC_ACQUIRE) != 1) gw_sleep_ms(1);
        CHECK_EQ(pthread_kill(t, SIGUSR1), 0);
        gw_sleep_ms(10);
        __atomic_store_n(&j.state, 2, __ATOMIC_RELEASE);
        CHECK_EQ(pthread_join(t, NULL), 0);
        CHECK_EQ(j.result, 1);
    }

    gw_phase = "sigwait on the other hub";
    {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGUSR2);
        CHECK_EQ(pthread_sigmask(SIG_BLOCK, &s, NULL), 0); /* inherited by the waiter */
        struct job j = {.fn = waiter};
        pthread_t t = start_elsewhere(&j);
        while (__atomic_load_n(&j.state, __ATOMIC_ACQUIRE) != 1) gw_sleep_ms(1);
        gw_sleep_ms(5);
        CHECK_EQ(pthread_kill(t, SIGUSR2), 0);
        while (__atomic_load_n(&j.state, __ATOMIC_ACQUIRE) != 3) gw_sleep_ms(1);
        gw_sleep_ms(5);
        CHECK_EQ(kill(getpid(), SIGUSR2), 0);
        CHECK_EQ(pthread_join(t, NULL), 0);
        CHECK_EQ(j.result, 2);
    }

    gw_phase = "fork from the other hub";
    for (int round = 0; round < 3; round++) {
        struct job j = {.fn = forker};
        pthread_t t = start_elsewhere(&j);
        /* main keeps its hub busy meanwhile */
        for (int i = 0; i < 20; i++) {
            main_spins++;
            gw_sleep_ms(1);
        }
        CHECK_EQ(pthread_join(t, NULL), 0);
        CHECK_EQ(j.result, 7);
    }
    printf("test_hubs_signal: ok\n");
    return 0;
}
