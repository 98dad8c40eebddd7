// build: -fopenmp
#include "gwtest.h"
#include <omp.h>
#include <pthread.h>
/* GCC's OpenMP runtime (libgomp) makes its team with pthread_create, and its barriers, locks
 * and hand-offs wait in futex calls it makes with the syscall instruction inlined, which no
 * hook sees: with its team green, the first parallel region hung (the master waited at the
 * barrier holding the OS thread its team needed). Its team threads must stay OS threads (each
 * its own kernel tid), while the program's own threads stay green: regions from main, then
 * from three threads of the program at once, with locks, tasks and barriers. */

#define TEAM 3
#define ROUNDS 40

static long fib(int n) {
    if (n < 2) return n;
    long a, b;
#pragma omp task shared(a)
    a = fib(n - 1);
#pragma omp task shared(b)
    b = fib(n - 2);
#pragma omp taskwait
    return a + b;
}

/* ROUNDS parallel regions of TEAM threads, each adding 1 100 times under an OpenMP lock and
 * meeting at a barrier; counts the team members that shared the master's kernel thread. */
static void *regions(void *arg) {
    long sum = 0;
    int shared_tid = 0;
    pid_t master = gw_tid();
    omp_lock_t lock;
    omp_init_lock(&lock);
    for (int r = 0; r < ROUNDS; r++) {
#pragma omp parallel num_threads(TEAM) reduction(+ : shared_tid)
        {
            for (int i = 0; i < 100; i++) {
                omp_set_lock(&lock);
                sum++;
                omp_unset_lock(&lock);
            }
#pragma omp barrier
            if (omp_get_thread_num() != 0 && gw_tid() == master) shared_tid++;
        }
    }
    omp_destroy_lock(&lock);
    CHECK_EQ(shared_tid, 0);
    return (void *)sum;
}

int main(void) {
    gw_watchdog("test_openmp", 60);
    if (gw_preloaded()) CHECK_EQ(gw_patched("thread"), 1);
    CHECK_EQ((long)regions(NULL), (long)TEAM * 100 * ROUNDS);
    long f = 0;
#pragma omp parallel num_threads(TEAM)
#pragma omp single
    f = fib(15);
    CHECK_EQ(f, 610);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) CHECK_EQ(pthread_create(&t[i], NULL, regions, NULL), 0);
    for (int i = 0; i < 3; i++) {
        void *sum;
        CHECK_EQ(pthread_join(t[i], &sum), 0);
        CHECK_EQ((long)sum, (long)TEAM * 100 * ROUNDS);
    }
    puts("ok");
    return 0;
}
