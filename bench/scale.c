/* scale: how many threads can be alive at once, each sleeping (nanosleep 1 s in a loop).
 *   scale N
 * Creates up to N threads (stopping at the first pthread_create failure), waits until every
 * created thread has started and is asleep, samples VmRSS, then releases and joins them all.
 * RESULT live = threads alive at once; ok = 1 if all N were made; rss_kb = VmRSS then. */
#include <pthread.h>
#include <stdatomic.h>
#include "bench.h"

static atomic_int started;
static atomic_int stop;

static void *sleeper(void *arg) {
    struct timespec ts = {1, 0};
    atomic_fetch_add(&started, 1);
    while (!atomic_load(&stop)) nanosleep(&ts, NULL);
    return arg;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    pthread_t *t = calloc((size_t)n, sizeof *t);
    if (!t) die("scale: out of memory");
    long base_kb = proc_status_kb("/proc/self/status", "VmRSS");
    uint64_t t0 = now_ns();
    int made = 0, err = 0;
    for (; made < n; made++) {
        err = pthread_create(&t[made], NULL, sleeper, NULL);
        if (err) break;
    }
    uint64_t t1 = now_ns();
    struct timespec tick = {0, 10 * 1000000L};
    while (atomic_load(&started) < made) nanosleep(&tick, NULL);
    nanosleep(&tick, NULL);
    long rss_kb = proc_status_kb("/proc/self/status", "VmRSS");
    atomic_store(&stop, 1);
    for (int i = 0; i < made; i++) pthread_join(t[i], NULL);
    printf("RESULT live=%d ok=%d rss_kb=%ld kb_per_thread=%.2f create_ms=%.1f err=%d\n", made, made == n,
           rss_kb, made ? (double)(rss_kb - base_kb) / made : 0.0, (t1 - t0) / 1e6, err);
    if (err) fprintf(stderr, "scale: pthread_create failed after %d threads: %s\n", made, strerror(err));
    return 0;
}
