/* The `make` demo (not a test): 10 000 pthreads that each sleep 100 ms twice with nanosleep.
 * An unmodified program: natively it makes 10 000 OS threads; under scripts/greenrun they are
 * green threads on one OS thread and the whole run takes about 200 ms. It prints the wall time
 * and the most OS threads a monitor thread saw in /proc/self/task while the others slept:
 *   10000 threads x 2 sleeps of 100 ms: wall 212 ms, peak OS threads 1
 * Exit 0 when every thread was created and joined; otherwise it says why and exits 1. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum { THREADS = 10000, SLEEP_MS = 100 };

static atomic_int stop_monitor;
static int peak_os_threads;

/* The program's OS threads: the library's monitor ("gw-sysmon") and stack helper
 * ("gw-stacks") are not. */
static int os_threads(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(comm, sizeof comm, f)) comm[0] = 0;
            fclose(f);
        }
        if (strcmp(comm, "gw-sysmon\n") != 0 && strcmp(comm, "gw-stacks\n") != 0) n++;
    }
    closedir(d);
    return n;
}

static void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static void *sleeper(void *arg) {
    nap_ms(SLEEP_MS);
    nap_ms(SLEEP_MS);
    return arg;
}

/* Samples the number of OS threads every 20 ms until told to stop. */
static void *monitor(void *arg) {
    while (!atomic_load(&stop_monitor)) {
        int n = os_threads();
        if (n > peak_os_threads) peak_os_threads = n;
        nap_ms(20);
    }
    return arg;
}

static double ms_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1e3 + (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

int main(void) {
    /* Natively, 10 000 threads may exceed the soft process limit: raise it as far as allowed. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NPROC, &rl) != 0) perror("demo: setrlimit(RLIMIT_NPROC)");
    }

    static pthread_t threads[THREADS];
    pthread_t mon;
    int rc = pthread_create(&mon, NULL, monitor, NULL);
    if (rc != 0) {
        fprintf(stderr, "demo: cannot create the monitor thread: %s\n", strerror(rc));
        return 1;
    }

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int made = 0, joined = 0, join_errors = 0, limited_at = 0;
    while (made < THREADS) {
        rc = pthread_create(&threads[made], NULL, sleeper, NULL);
        if (rc == 0) {
            made++;
        } else if (rc == EAGAIN && joined < made) {
            /* Out of threads or memory for now (natively, under tight limits): a joinable
             * thread keeps its stack until joined, so join the oldest and try again. */
            if (!limited_at) {
                limited_at = made;
                fprintf(stderr, "demo: pthread_create hit a limit at %d live threads (%s); joining finished"
                                " threads to go on, so not all %d sleep at once (raise ulimit -u / -v, or"
                                " run it under scripts/greenrun)\n", made, strerror(rc), THREADS);
            }
            rc = pthread_join(threads[joined++], NULL);
            if (rc != 0 && join_errors++ == 0) fprintf(stderr, "demo: pthread_join: %s\n", strerror(rc));
        } else {
            fprintf(stderr,
                    "demo: pthread_create failed after %d threads: %s\n"
                    "demo: natively, raise the limits (ulimit -u, ulimit -v, /proc/sys/kernel/threads-max,"
                    " vm.max_map_count) or run it under scripts/greenrun\n",
                    made, strerror(rc));
            break;
        }
    }
    for (; joined < made; joined++) {
        rc = pthread_join(threads[joined], NULL);
        if (rc != 0 && join_errors++ == 0) fprintf(stderr, "demo: pthread_join: %s\n", strerror(rc));
    }
    double wall = ms_since(&t0);
    atomic_store(&stop_monitor, 1);
    pthread_join(mon, NULL);

    printf("%d threads x 2 sleeps of %d ms: wall %.0f ms, peak OS threads %d\n", made, SLEEP_MS, wall,
           peak_os_threads);
    if (join_errors) fprintf(stderr, "demo: %d joins failed\n", join_errors);
    return made == THREADS && join_errors == 0 ? 0 : 1;
}
