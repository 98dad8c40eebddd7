/* test_deadlock: when every green thread waits on another and nothing else could wake one,
 * greenworld says so once, Go-style ("greenworld: all green threads are asleep - deadlock!"),
 * naming each thread and what it waits for, and the process keeps waiting (natively such a
 * program hangs silently, so the native run is skipped). And it never says so falsely: a
 * thread in sigwait that another process signals, pause() ended by an alarm, a condition
 * variable waited with a timeout, a mutex a native thread (glibc's timer thread) unlocks.
 * Each case is this program run again as a child (--child MODE), its stderr read with a
 * deadline, then killed if it still runs (gw_kid_*). All of it at the default number of hubs,
 * then again with GREENWORLD_HUBS=2 (the test runs itself again), where the threads of a
 * deadlock sit on different hubs. */
#include "gwtest.h"
#include <poll.h>

static pthread_mutex_t ma = PTHREAD_MUTEX_INITIALIZER, mb = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t both; /* both threads hold their first mutex before the second */

static void *lock_ab(void *arg) {
    (void)arg;
    pthread_mutex_lock(&ma);
    pthread_barrier_wait(&both);
    pthread_mutex_lock(&mb);
    return NULL;
}

static void *lock_ba(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mb);
    pthread_barrier_wait(&both);
    pthread_mutex_lock(&ma);
    return NULL;
}

/* Waits for a condition variable nobody will signal (pthread_join of each other is no test:
 * glibc answers the second join EDEADLK). */
static pthread_mutex_t forever_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t forever_c = PTHREAD_COND_INITIALIZER;
static void *wait_forever(void *arg) {
    (void)arg;
    pthread_mutex_lock(&forever_m);
    pthread_cond_wait(&forever_c, &forever_m);
    pthread_mutex_unlock(&forever_m);
    return NULL;
}

static void *in_sigwait(void *arg) {
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    int sig = 0;
    CHECK_EQ(sigwait(&set, &sig), 0);
    CHECK_EQ(sig, SIGUSR1);
    return NULL;
}

static void *in_pause(void *arg) {
    (void)arg;
    CHECK_EQ(pause(), -1);
    CHECK_EQ(errno, EINTR);
    return NULL;
}

static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static void *timed_wait(void *arg) {
    (void)arg;
    struct timespec until = gw_abs_in(CLOCK_REALTIME, 2500);
    pthread_mutex_lock(&cm);
    CHECK_EQ(pthread_cond_timedwait(&cv, &cm, &until), ETIMEDOUT);
    pthread_mutex_unlock(&cm);
    return NULL;
}

static int held_pipe[2];
static pthread_mutex_t native_held = PTHREAD_MUTEX_INITIALIZER;
static void native_holder(union sigval v) {
    (void)v;
    pthread_mutex_lock(&native_held);
    CHECK_EQ(write(held_pipe[1], "x", 1), 1);
    struct timespec ts = {2, 500000000};
    nanosleep(&ts, NULL);
    pthread_mutex_unlock(&native_held);
}
static void *lock_native_held(void *arg) {
    (void)arg;
    char c;
    CHECK_EQ(read(held_pipe[0], &c, 1), 1);
    pthread_mutex_lock(&native_held);
    pthread_mutex_unlock(&native_held);
    return NULL;
}

static int child(const char *mode) {
    pthread_barrier_init(&both, NULL, 2);
    pthread_t a, b;
    if (strcmp(mode, "mutexes") == 0) {
        printf("a=%p b=%p\n", (void *)&ma, (void *)&mb);
        fflush(stdout);
        pthread_create(&a, NULL, lock_ab, NULL);
        pthread_setname_np(a, "lock-ab");
        pthread_create(&b, NULL, lock_ba, NULL);
        pthread_setname_np(b, "lock-ba");
        pthread_join(a, NULL);
    } else if (strcmp(mode, "cond") == 0) {
        printf("c=%p\n", (void *)&forever_c);
        fflush(stdout);
        pthread_create(&a, NULL, wait_forever, NULL);
        pthread_setname_np(a, "forever");
        pthread_join(a, NULL);
    } else if (strcmp(mode, "sigwait") == 0) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        pthread_create(&a, NULL, in_sigwait, NULL);
        printf("ready\n");
        fflush(stdout);
        pthread_join(a, NULL);
    } else if (strcmp(mode, "pause") == 0) {
        gw_catch(SIGALRM, 0);
        pthread_create(&a, NULL, in_pause, NULL);
        gw_alarm_ms(2500);
        pthread_join(a, NULL);
    } else if (strcmp(mode, "timedwait") == 0) {
        pthread_create(&a, NULL, timed_wait, NULL);
        pthread_join(a, NULL);
    } else if (strcmp(mode, "native") == 0) {
        CHECK_EQ(pipe(held_pipe), 0);
        struct sigevent ev = {0};
        ev.sigev_notify = SIGEV_THREAD;
        ev.sigev_notify_function = native_holder;
        timer_t timer;
        CHECK_EQ(timer_create(CLOCK_MONOTONIC, &ev, &timer), 0);
        struct itimerspec soon = {{0, 0}, {0, 1000000}};
        CHECK_EQ(timer_settime(timer, 0, &soon, NULL), 0);
        pthread_create(&a, NULL, lock_native_held, NULL);
        pthread_join(a, NULL);
    } else {
        CHECK(0, "unknown mode %s", mode);
    }
    printf("done\n");
    return 0;
}


static const char MESSAGE[] = "greenworld: all green threads are asleep - deadlock!";

static void deadlock_of_mutexes(void) {
    static struct gw_kid k;
    gw_kid_start(&k, "mutexes", NULL);
    void *a = NULL, *b = NULL;
    CHECK(gw_kid_read_until(&k, k.out, "\n", 10000), "no addresses from the child");
    CHECK_EQ(sscanf(k.text, "a=%p b=%p", &a, &b), 2);
    gw_kid_clear(&k);
    CHECK(gw_kid_read_until(&k, k.err, "end of dump", 10000), "no deadlock message within 10 s:\n%s", k.text);
    CHECK(strstr(k.text, MESSAGE), "%s", k.text);
    char line[512], want[64];
    snprintf(want, sizeof want, "parked on mutex %p", b);
    CHECK(strstr(gw_dump_line_of(k.text, "lock-ab", line, sizeof line), want), "want '%s' in: %s", want, line);
    snprintf(want, sizeof want, "parked on mutex %p", a);
    CHECK(strstr(gw_dump_line_of(k.text, "lock-ba", line, sizeof line), want), "want '%s' in: %s", want, line);
    CHECK(strstr(k.text, "parked on join of thread"), "the main thread's join: %s", k.text);
    /* Said once: a second and a half later, still one message, and the child still waits. */
    gw_kid_read_until(&k, k.err, NULL, 1500);
    CHECK(!strstr(strstr(k.text, MESSAGE) + 1, MESSAGE), "said twice:\n%s", k.text);
    CHECK_EQ(waitpid(k.pid, NULL, WNOHANG), 0);
    gw_kid_stop(&k);
}

static void deadlock_of_join_and_cond(void) {
    static struct gw_kid k;
    gw_kid_start(&k, "cond", NULL);
    void *c = NULL;
    CHECK(gw_kid_read_until(&k, k.out, "\n", 10000), "no address from the child");
    CHECK_EQ(sscanf(k.text, "c=%p", &c), 1);
    gw_kid_clear(&k);
    CHECK(gw_kid_read_until(&k, k.err, "end of dump", 10000), "no deadlock message within 10 s:\n%s", k.text);
    CHECK(strstr(k.text, MESSAGE), "%s", k.text);
    char line[512], want[64];
    snprintf(want, sizeof want, "parked on condition variable %p", c);
    CHECK(strstr(gw_dump_line_of(k.text, "forever", line, sizeof line), want), "want '%s' in: %s", want, line);
    const char *root = strstr(k.text, "root");
    CHECK(root && strstr(root, "parked on join of thread") && strstr(root, "\"forever\""), "%s", k.text);
    gw_kid_stop(&k);
}

/* Runs to its end on its own (the parent only signals the sigwait one): never the message. */
static void no_false_deadlocks(void) {
    static const char *modes[] = {"sigwait", "pause", "timedwait", "native"};
    enum { N = sizeof modes / sizeof *modes };
    static struct gw_kid kids[N];
    for (int i = 0; i < N; i++) gw_kid_start(&kids[i], modes[i], NULL);
    CHECK(gw_kid_read_until(&kids[0], kids[0].out, "ready\n", 10000), "sigwait child not ready");
    gw_sleep_ms(2500); /* well past the grace period, with the thread in sigwait */
    CHECK_EQ(kill(kids[0].pid, SIGUSR1), 0);
    for (int i = 0; i < N; i++) {
        gw_kid_clear(&kids[i]);
        CHECK(gw_kid_read_until(&kids[i], kids[i].err, NULL, 15000), "%s: did not end", modes[i]);
        CHECK(!strstr(kids[i].text, "deadlock"), "%s: a false deadlock:\n%s", modes[i], kids[i].text);
        int status;
        while (waitpid(kids[i].pid, &status, 0) < 0 && errno == EINTR) {}
        CHECK(gw_exit_code(status) == 0, "%s: status %d:\n%s", modes[i], status, kids[i].text);
        close(kids[i].out);
        close(kids[i].err);
    }
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "--child") == 0) return child(argv[2]);
    /* Natively the deadlocking children hang silently: nothing to check. */
    if (!gw_preloaded()) return GW_SKIP;
    if (getenv("GREENWORLD_DEADLOCK")) return GW_SKIP;
    gw_watchdog("test_deadlock", 60);
    gw_phase = "mutexes";
    deadlock_of_mutexes();
    gw_phase = "join and cond";
    deadlock_of_join_and_cond();
    gw_phase = "no false deadlocks";
    no_false_deadlocks();
    /* Once more with two hubs (the threads spread over both): the check covers every hub. */
    gw_rerun_with_hubs("2");
    return 0;
}
