/* spinlat: how long a spin keeps a runnable thread waiting (the monitor's preemption delay).
 *   spinlat [ROUNDS=60]
 * Each round two threads yield to each other for 10 ms (their hub switches at every look of
 * the monitor), then one spins on a flag without a call until the other, runnable, runs and
 * sets it; the other notes how long after the spin began it got its turn. Natively both run
 * at once on two cores (about 0). RESULT median_us, p90_us, max_us. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include "bench.h"

static atomic_int spinning, released;
static uint64_t spin_began, waited[1000];

static void yield_for_10ms(void) {
    uint64_t start = now_ns();
    while (now_ns() - start < 10000000) sched_yield();
}

static void *spin(void *arg) {
    (void)arg;
    yield_for_10ms();
    spin_began = now_ns();
    atomic_store(&spinning, 1);
    uint64_t x = 3;
    while (!atomic_load_explicit(&released, memory_order_relaxed)) x = x * 5 + 1;
    return (void *)(uintptr_t)x;
}

static void *release(void *arg) {
    yield_for_10ms();
    while (!atomic_load(&spinning)) sched_yield();
    *(uint64_t *)arg = now_ns() - spin_began;
    atomic_store(&released, 1);
    return NULL;
}

static int by_value(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 60;
    if (rounds < 1 || rounds > 1000) die("spinlat: 1..1000 rounds");
    for (int i = 0; i < rounds; i++) {
        atomic_store(&spinning, 0);
        atomic_store(&released, 0);
        pthread_t a, b;
        if (pthread_create(&a, NULL, spin, NULL) || pthread_create(&b, NULL, release, &waited[i]))
            die("spinlat: pthread_create");
        pthread_join(a, NULL);
        pthread_join(b, NULL);
    }
    qsort(waited, rounds, sizeof waited[0], by_value);
    printf("RESULT median_us=%.0f p90_us=%.0f max_us=%.0f rounds=%d\n", waited[rounds / 2] / 1e3,
           waited[rounds * 9 / 10] / 1e3, waited[rounds - 1] / 1e3, rounds);
    return 0;
}
