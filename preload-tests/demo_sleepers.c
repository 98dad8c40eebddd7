/* The `make` demo: 10 000 pthreads that each sleep 100 ms twice. An unmodified program: natively
 * it makes 10 000 OS threads; under greenrun they are green threads on one OS thread, and the
 * whole run takes about 200 ms. It prints the wall time and the most OS threads seen. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { THREADS = 10000 };

static volatile int peak_os_threads;

static int os_threads(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void *sleeper(void *arg) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    if (arg) { /* one thread looks while everyone sleeps */
        int n = os_threads();
        if (n > peak_os_threads) peak_os_threads = n;
    }
    nanosleep(&ts, NULL);
    return NULL;
}

int main(void) {
    static pthread_t threads[THREADS];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int made = 0;
    for (; made < THREADS; made++) {
        int rc = pthread_create(&threads[made], NULL, sleeper, made == THREADS - 1 ? (void *)1 : NULL);
        if (rc != 0) {
            fprintf(stderr, "demo: pthread_create failed after %d threads: %s\n", made, strerror(rc));
            break;
        }
    }
    for (int i = 0; i < made; i++) pthread_join(threads[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("%d threads x 2 sleeps of 100 ms: wall %.0f ms, peak OS threads %d\n", made, ms, peak_os_threads);
    return made == THREADS ? 0 : 1;
}
