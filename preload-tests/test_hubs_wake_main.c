/* main woken from another hub while its own hub's green thread computes (GREENWORLD_HUBS=2):
 * main must run within a slice, as natively it would get a core. A thread of the other hub posts
 * the semaphore main waits on while a thread of main's hub spins until main has run. Before the
 * fix the spinner was never switched out: the wake-up of a root from another hub left nothing in
 * its hub's inbox, so each preemption found nothing else to run and let the spinner go on (xz -T2
 * at HUBS=2: main, which feeds the workers, waited for the worker beside it to finish its block).
 * The spinner gives up after 10 s (then the test fails: main did not run while it spun).
 * At HUBS=1 both threads share main's hub (the waker runs when the spinner is preempted);
 * natively they run on their own cores. */
#include "gwtest.h"
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#define THREADS 4
enum { ROLE_NONE = 1, ROLE_SPIN, ROLE_WAKE };

static sem_t ready, wake_main, go[THREADS];
static pid_t tids[THREADS];
static int roles[THREADS];
static atomic_int main_ran, spinner_gave_up;

static void *worker(void *arg) {
    int i = (int)(long)arg;
    tids[i] = (pid_t)syscall(SYS_gettid);
    sem_post(&ready);
    while (sem_wait(&go[i]) != 0) {}
    if (roles[i] == ROLE_SPIN) {
        long long t0 = gw_now_ns();
        unsigned long x = 1;
        while (!atomic_load_explicit(&main_ran, memory_order_relaxed)) {
            for (int k = 0; k < 4096; k++) x = x * 6364136223846793005UL + 1442695040888963407UL;
            if (gw_ms_since(t0) > 10000) {
                atomic_store(&spinner_gave_up, 1);
                break;
            }
        }
        return (void *)(x & 1);
    }
    if (roles[i] == ROLE_WAKE) {
        gw_sleep_ms(20); /* the spinner is spinning by now */
        sem_post(&wake_main);
    }
    return NULL;
}

int main(void) {
    gw_watchdog("test_hubs_wake_main", 60);
    pid_t me = (pid_t)syscall(SYS_gettid);
    CHECK_EQ(sem_init(&ready, 0, 0), 0);
    CHECK_EQ(sem_init(&wake_main, 0, 0), 0);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        CHECK_EQ(sem_init(&go[i], 0, 0), 0);
        CHECK_EQ(pthread_create(&t[i], NULL, worker, (void *)(long)i), 0);
    }
    for (int i = 0; i < THREADS; i++) while (sem_wait(&ready) != 0) {}
    /* The spinner on main's OS thread if one is there (a hub's), the waker on another if any. */
    int spin = 0, wake = -1;
    for (int i = 0; i < THREADS; i++)
        if (tids[i] == me) spin = i;
    for (int i = 0; i < THREADS; i++)
        if (i != spin && (wake < 0 || (tids[wake] == tids[spin] && tids[i] != tids[spin]))) wake = i;
    if (gw_hubs() > 1) {
        CHECK(tids[spin] == me, "no thread was placed on main's hub");
        CHECK(tids[wake] != me, "no thread was placed on another hub");
    }
    for (int i = 0; i < THREADS; i++) roles[i] = i == spin ? ROLE_SPIN : i == wake ? ROLE_WAKE : ROLE_NONE;
    gw_phase = "main waits for a post from another hub while a thread of its own hub spins";
    /* The others end first: nothing else of main's hub may be runnable while the spinner spins
     * (a preemption would run that thread, and main after it, fix or no fix). */
    for (int i = 0; i < THREADS; i++)
        if (roles[i] == ROLE_NONE) {
            CHECK_EQ(sem_post(&go[i]), 0);
            CHECK_EQ(pthread_join(t[i], NULL), 0);
        }
    CHECK_EQ(sem_post(&go[spin]), 0);
    CHECK_EQ(sem_post(&go[wake]), 0);
    while (sem_wait(&wake_main) != 0) {}
    atomic_store(&main_ran, 1);
    CHECK_EQ(pthread_join(t[spin], NULL), 0);
    CHECK_EQ(pthread_join(t[wake], NULL), 0);
    CHECK(!atomic_load(&spinner_gave_up), "main did not run while a thread of its hub spun for 10 s");
    return 0;
}
