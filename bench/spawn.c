/* spawn: create and join no-op threads.
 *   spawn seq   [N]  create one, join it, N times
 *   spawn batch [N]  create N, then join all N
 * RESULT ns_per_op = wall ns per create+join. */
#include <pthread.h>
#include "bench.h"

static void *noop(void *arg) { return arg; }

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "seq";
    int n = argc > 2 ? atoi(argv[2]) : 10000;
    int batch = strcmp(mode, "batch") == 0;
    if (!batch && strcmp(mode, "seq") != 0) die("usage: spawn seq|batch [N]");
    pthread_t *t = calloc((size_t)n, sizeof *t);
    if (!t) die("spawn: out of memory");
    for (int i = 0; i < 200; i++) { /* warm-up: stack caches, lazy binding */
        int rc = pthread_create(&t[0], NULL, noop, NULL);
        if (rc) die("spawn: pthread_create: %s", strerror(rc));
        pthread_join(t[0], NULL);
    }
    uint64_t t0 = now_ns();
    if (batch) {
        for (int i = 0; i < n; i++) {
            int rc = pthread_create(&t[i], NULL, noop, NULL);
            if (rc) die("spawn: pthread_create #%d: %s", i, strerror(rc));
        }
        for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    } else {
        for (int i = 0; i < n; i++) {
            int rc = pthread_create(&t[0], NULL, noop, NULL);
            if (rc) die("spawn: pthread_create #%d: %s", i, strerror(rc));
            pthread_join(t[0], NULL);
        }
    }
    uint64_t t1 = now_ns();
    printf("RESULT ns_per_op=%.1f threads=%d mode=%s\n", (double)(t1 - t0) / n, n, mode);
    return 0;
}
