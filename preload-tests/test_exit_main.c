/* pthread_exit from main.
 * The test re-runs itself (same environment, so preloaded or not alike) as "child": the child
 * registers an atexit handler, starts 50 threads that each sleep 50-100 ms and then set their
 * flag, and main calls pthread_exit(NULL). The process must live on until every thread is done,
 * then exit with status 0 running the atexit handler, which checks every flag was set (else
 * _exit(1)) and, under the preload, that the threads saw a single OS thread in /proc/self/task
 * (natively they see more than one). The parent checks the child's exit status is 0 and that
 * the handler ran (it prints a marker line).
 */
#include "gwtest.h"
#include <pthread.h>

#define N 50

static int flags[N];
static int max_tasks, min_tasks = 1 << 30, recorded;

static void record_tasks(void) {
    int n = gw_os_threads();
    int m = __atomic_load_n(&max_tasks, __ATOMIC_SEQ_CST);
    while (n > m && !__atomic_compare_exchange_n(&max_tasks, &m, n, 0, __ATOMIC_SEQ_CST,
                                                 __ATOMIC_SEQ_CST)) {}
    m = __atomic_load_n(&min_tasks, __ATOMIC_SEQ_CST);
    while (n < m && !__atomic_compare_exchange_n(&min_tasks, &m, n, 0, __ATOMIC_SEQ_CST,
                                                 __ATOMIC_SEQ_CST)) {}
    __atomic_add_fetch(&recorded, 1, __ATOMIC_SEQ_CST);
}

static void *sleeper(void *arg) {
    int i = (int)(intptr_t)arg;
    usleep((useconds_t)(50 + i) * 1000); /* 50..99 ms */
    /* The first ones to wake look at the task list while the rest still sleep. */
    if (i < 5) record_tasks();
    __atomic_store_n(&flags[i], 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void handler(void) {
    int unset = 0;
    for (int i = 0; i < N; i++)
        if (!__atomic_load_n(&flags[i], __ATOMIC_SEQ_CST)) unset++;
    if (unset) {
        fprintf(stderr, "exit_main: atexit handler: %d of %d threads never set their flag\n",
                unset, N);
        _exit(1);
    }
    if (recorded != 5) {
        fprintf(stderr, "exit_main: atexit handler: %d task counts recorded, want 5\n", recorded);
        _exit(1);
    }
    if (gw_preloaded() && (min_tasks != 1 || max_tasks != 1)) {
        fprintf(stderr, "exit_main: atexit handler: threads saw %d..%d OS threads, want 1\n",
                min_tasks, max_tasks);
        _exit(1);
    }
    if (!gw_preloaded() && max_tasks < 2) {
        fprintf(stderr, "exit_main: atexit handler: native threads saw %d OS threads\n",
                max_tasks);
        _exit(1);
    }
    printf("exit_main: atexit handler ok, tasks %d..%d\n", min_tasks, max_tasks);
    fflush(stdout);
}

static int child(void) {
    CHECK_EQ(atexit(handler), 0);
    pthread_t t;
    for (int i = 0; i < N; i++) {
        CHECK_EQ(pthread_create(&t, NULL, sleeper, (void *)(intptr_t)i), 0);
        if (i % 2) CHECK_EQ(pthread_detach(t), 0); /* half detached, half left joinable */
    }
    pthread_exit(NULL);
    fprintf(stderr, "exit_main: pthread_exit(NULL) returned in main\n");
    _exit(3);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0) return child();

    char out[4096];
    long long t0 = gw_now_ns();
    int st = gw_run_self(NULL, out, sizeof out, "child", NULL);
    long long dt = gw_now_ns() - t0;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child wait status 0x%x, output:\n%s", st, out);
    CHECK(strstr(out, "exit_main: atexit handler ok") != NULL, "handler did not run:\n%s", out);
    CHECK(dt >= 90000000LL, "child ended after %lld ns, before its threads could", dt);
    printf("%s", out);
    printf("exit_main: all passed\n");
    return 0;
}
