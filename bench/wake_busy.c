// Wake-to-run latency on a busy CPU (or, under the preload at GREENWORLD_HUBS=2, a busy hub).
// A spinner is pinned to CPU 1 and computes without a call; a sleeper, pinned there too, waits
// on a condition variable; a waker pinned to CPU 0 signals it every 0-3 ms and the sleeper
// notes how long it took to run. Under the preload a thread's CPU mask at creation places it
// (CPU k -> hub k mod N), so the sleeper shares the spinner's hub and the waker is on another.
// Natively the kernel runs the woken thread after the spinner's wake-up granularity.
//
// usage: wake_busy [ROUNDS]   (default 300); prints min/p50/p90/p99/max in microseconds.
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER, ran = PTHREAD_COND_INITIALIZER;
static int pending, stop;
static long long signalled_ns;
static long long *latency_ns;
static int rounds, done;
static volatile int spinning = 1;
static volatile unsigned long long spin_sink;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *spinner(void *arg) {
    (void)arg;
    unsigned long long x = 1;
    while (spinning)
        for (int i = 0; i < 100000; i++) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    spin_sink = x;
    return NULL;
}

static void *sleeper(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (!pending && !stop) pthread_cond_wait(&wake, &lock);
        if (stop) break;
        latency_ns[done++] = now_ns() - signalled_ns;
        pending = 0;
        pthread_cond_signal(&ran);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void *waker(void *arg) {
    (void)arg;
    unsigned seed = 12345;
    for (int r = 0; r < rounds; r++) {
        struct timespec pause = {0, (long)(rand_r(&seed) % 3000) * 1000L};
        nanosleep(&pause, NULL);
        pthread_mutex_lock(&lock);
        pending = 1;
        signalled_ns = now_ns();
        pthread_cond_signal(&wake);
        while (pending) pthread_cond_wait(&ran, &lock);
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_lock(&lock);
    stop = 1;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static pthread_t start_on(int cpu, void *(*body)(void *)) {
    pthread_attr_t attr;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_attr_init(&attr);
    pthread_attr_setaffinity_np(&attr, sizeof set, &set);
    pthread_t t;
    if (pthread_create(&t, &attr, body, NULL) != 0) {
        perror("pthread_create");
        exit(1);
    }
    pthread_attr_destroy(&attr);
    return t;
}

static int by_value(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    rounds = argc > 1 ? atoi(argv[1]) : 300;
    if (rounds < 1) return 2;
    latency_ns = calloc(rounds, sizeof *latency_ns);
    pthread_t s = start_on(1, spinner), c = start_on(1, sleeper);
    usleep(20000);
    pthread_t w = start_on(0, waker);
    pthread_join(w, NULL);
    pthread_join(c, NULL);
    spinning = 0;
    pthread_join(s, NULL);
    qsort(latency_ns, done, sizeof *latency_ns, by_value);
#define AT(q) (latency_ns[(int)((done - 1) * (q))] / 1000.0)
    printf("wake_busy: %d wakes, us: min %.0f p50 %.0f p90 %.0f p99 %.0f max %.0f\n", done, AT(0.0),
           AT(0.5), AT(0.9), AT(0.99), AT(1.0));
    return 0;
}
