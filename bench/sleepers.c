/* sleepers: N threads, each sleeping K times for MS milliseconds with nanosleep.
 *   sleepers [N=10000] [K=10] [MS=10]
 * RESULT wall_ms = from the first pthread_create to the last pthread_join (ideal K*MS);
 * maxrss_kb = peak RSS (getrusage). */
#include <pthread.h>
#include <sys/resource.h>
#include "bench.h"

static int k = 10, ms = 10;

static void *sleeper(void *arg) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    for (int i = 0; i < k; i++) nanosleep(&ts, NULL);
    return arg;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    if (argc > 2) k = atoi(argv[2]);
    if (argc > 3) ms = atoi(argv[3]);
    pthread_t *t = calloc((size_t)n, sizeof *t);
    if (!t) die("sleepers: out of memory");
    uint64_t t0 = now_ns();
    for (int i = 0; i < n; i++) {
        int rc = pthread_create(&t[i], NULL, sleeper, NULL);
        if (rc) die("sleepers: pthread_create #%d: %s", i, strerror(rc));
    }
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    uint64_t t1 = now_ns();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("RESULT wall_ms=%.1f maxrss_kb=%ld ideal_ms=%d threads=%d\n", (t1 - t0) / 1e6, ru.ru_maxrss,
           k * ms, n);
    return 0;
}
