/* A green thread woken from another hub while a thread of its own hub computes runs while that
 * thread still computes, however long the time slice (GREENWORLD_SLICE=10s here): natively the
 * kernel runs a thread that slept before one that has computed for a while. The sleeper and the
 * spinner are made for the process's second CPU (so one hub, or one CPU natively), the waker for
 * its first; the spinner computes until the sleeper has run, or gives up after 5 s (then the
 * test fails). Before the fix only a woken root got the spinner preempted at the monitor's next
 * look: a green thread waited for the spinner's slice to end.
 * A second phase does the same with a hub-mate that computes nothing but keeps its hub through
 * calls that never block (a byte written to a socket and read back, over and over: nearly all
 * its time is in libc and the kernel, where a preemption may not switch it out); the woken
 * thread must still run (before, only once the 10 s slice was spent: the spinner gave up).
 * The program has its own SIGURG handler (the monitor's signal): none of the library's deliveries
 * (the waker's request, the handler's own second look by a timer, the monitor's) may reach it.
 * Under the preload the test runs itself again at GREENWORLD_HUBS=2 (unless a hub count is
 * given) with the 10 s slice; one hub: not applicable (the waker would wait for the spinner). */
#include "gwtest.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/syscall.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int posted, waiting;
static atomic_int sleeper_ran, spinning, spinner_gave_up;
static pid_t tid_sleeper, tid_spinner, tid_waker;
static atomic_int urgent;
static int busy_in_calls, pair[2];

static void on_urgent(int sig) {
    (void)sig;
    atomic_fetch_add(&urgent, 1);
}

static void *sleeper(void *arg) {
    (void)arg;
    tid_sleeper = (pid_t)syscall(SYS_gettid);
    pthread_mutex_lock(&lock);
    waiting = 1;
    while (!posted) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    atomic_store(&sleeper_ran, 1);
    return NULL;
}

static void *spinner(void *arg) {
    (void)arg;
    tid_spinner = (pid_t)syscall(SYS_gettid);
    long long t0 = gw_now_ns();
    unsigned long x = 1;
    atomic_store(&spinning, 1);
    while (!atomic_load_explicit(&sleeper_ran, memory_order_relaxed)) {
        if (busy_in_calls) {
            char c = 'x';
            CHECK_EQ(write(pair[0], &c, 1), 1);
            CHECK_EQ(read(pair[1], &c, 1), 1);
        } else {
            for (int k = 0; k < 4096; k++) x = x * 6364136223846793005UL + 1442695040888963407UL;
        }
        if (gw_ms_since(t0) > 5000) {
            atomic_store(&spinner_gave_up, 1);
            break;
        }
    }
    return (void *)(x & 1);
}

static void *waker(void *arg) {
    (void)arg;
    tid_waker = (pid_t)syscall(SYS_gettid);
    while (!atomic_load(&spinning)) gw_sleep_ms(1);
    gw_sleep_ms(20); /* the spinner has had its hub for a while */
    pthread_mutex_lock(&lock);
    posted = 1;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void run_phase(const int cpus[2]);

int main(void) {
    gw_rerun_with_slice("10s");
    if (gw_preloaded() && gw_hubs() < 2) return 77;
    gw_watchdog("test_hubs_wake_busy", 60);
    cpu_set_t mine;
    CHECK_EQ(sched_getaffinity(0, sizeof mine, &mine), 0);
    int cpus[2], n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
        if (CPU_ISSET(c, &mine)) cpus[n++] = c;
    if (n < 2) return 77;
    struct sigaction sa = {.sa_handler = on_urgent, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGURG, &sa, NULL), 0);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    gw_phase = "a thread woken from another hub while a thread of its hub computes";
    run_phase(cpus);
    gw_phase = "a thread woken from another hub while a thread of its hub makes calls that never block";
    busy_in_calls = 1;
    posted = waiting = 0;
    atomic_store(&sleeper_ran, 0);
    atomic_store(&spinning, 0);
    run_phase(cpus);
    CHECK_EQ(atomic_load(&urgent), 0);
    printf("ok\n");
    return 0;
}

static void run_phase(const int cpus[2]) {
    pthread_t s = gw_create_on_cpu(cpus[1], sleeper, NULL);
    for (;;) {
        pthread_mutex_lock(&lock);
        int w = waiting;
        pthread_mutex_unlock(&lock);
        if (w) break;
        gw_sleep_ms(1);
    }
    pthread_t p = gw_create_on_cpu(cpus[1], spinner, NULL);
    pthread_t w = gw_create_on_cpu(cpus[0], waker, NULL);
    CHECK_EQ(pthread_join(w, NULL), 0);
    CHECK_EQ(pthread_join(s, NULL), 0);
    CHECK_EQ(pthread_join(p, NULL), 0);
    if (gw_preloaded()) {
        CHECK(tid_sleeper == tid_spinner, "the sleeper and the spinner are on different hubs");
        CHECK(tid_waker != tid_spinner, "the waker shares the spinner's hub");
    }
    CHECK(!atomic_load(&spinner_gave_up), "the woken thread did not run while the spinner computed (5 s)");
    CHECK(atomic_load(&sleeper_ran), "the sleeper did not run");
}
