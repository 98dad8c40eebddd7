/* cpu_yield: CPU-bound threads that yield now and then (issue 13's scaling case).
 *   cpu_yield [THREADS=4] [ITERS=200000000]
 * Each of THREADS threads does ITERS/THREADS steps of arithmetic, calling sched_yield every
 * 100 000 steps; main joins them all. On N cores natively (or N hubs under greenworld) the wall
 * time falls with N. RESULT wall_ms. */
#include <pthread.h>
#include <sched.h>
#include "bench.h"

static long per_thread;
static volatile uint64_t sink;

static void *crunch(void *arg) {
    uint64_t x = (uint64_t)(intptr_t)arg + 1;
    for (long i = 0; i < per_thread; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        if (i % 100000 == 0) sched_yield();
    }
    sink = x;
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    long iters = argc > 2 ? atol(argv[2]) : 200000000L;
    if (threads < 1 || threads > 1024) die("cpu_yield: 1..1024 threads");
    per_thread = iters / threads;
    pthread_t t[1024];
    uint64_t t0 = now_ns();
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, crunch, (void *)(intptr_t)i)) die("cpu_yield: pthread_create");
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    printf("RESULT wall_ms=%.1f\n", (double)(now_ns() - t0) / 1e6);
    return 0;
}
