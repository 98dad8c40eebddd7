#include "gwtest.h"
/* A thread's CPU affinity is its own, as a pthread's is: a thread made with
 * pthread_attr_setaffinity_np reports that mask (sched_getaffinity, pthread_getaffinity_np from
 * itself and from another thread, pthread_getattr_np), a thread made without one the mask of its
 * creator (the process's for main's), and sched_setaffinity / pthread_setaffinity_np at run time
 * change what that thread reports and nobody else's: not main's, not a thread made before.
 * Masks the kernel would refuse fail as natively (EINVAL, pthread_create included). Needs two
 * CPUs. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>

static cpu_set_t process;
static int first_cpu, last_cpu;

static cpu_set_t one(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return set;
}

static void expect_self(const cpu_set_t *want, const char *who) {
    cpu_set_t got;
    CHECK_EQ(sched_getaffinity(0, sizeof got, &got), 0);
    CHECK(CPU_EQUAL(&got, want), "%s: sched_getaffinity(0) reports %d CPUs, first %d", who,
          CPU_COUNT(&got), CPU_ISSET(first_cpu, &got) ? first_cpu : last_cpu);
    CHECK_EQ(sched_getaffinity(gw_tid(), sizeof got, &got), 0);
    CHECK(CPU_EQUAL(&got, want), "%s: sched_getaffinity(own tid) differs", who);
    CHECK_EQ(pthread_getaffinity_np(pthread_self(), sizeof got, &got), 0);
    CHECK(CPU_EQUAL(&got, want), "%s: pthread_getaffinity_np(self) differs", who);
}

static void expect_of(pthread_t t, const cpu_set_t *want, const char *who) {
    cpu_set_t got;
    CHECK_EQ(pthread_getaffinity_np(t, sizeof got, &got), 0);
    CHECK(CPU_EQUAL(&got, want), "%s: pthread_getaffinity_np from another thread differs", who);
    pthread_attr_t a;
    CHECK_EQ(pthread_getattr_np(t, &a), 0);
    CPU_ZERO(&got);
    CHECK_EQ(pthread_attr_getaffinity_np(&a, sizeof got, &got), 0);
    CHECK(CPU_EQUAL(&got, want), "%s: pthread_getattr_np's affinity differs", who);
    pthread_attr_destroy(&a);
}

static pthread_barrier_t checked; /* main checks a thread while it is alive */

static void *child_of_pinned(void *arg) {
    (void)arg;
    cpu_set_t last = one(last_cpu);
    expect_self(&last, "a thread made by a pinned thread");
    return NULL;
}

static void *pinned(void *arg) {
    (void)arg;
    cpu_set_t last = one(last_cpu);
    expect_self(&last, "a thread made for one CPU");
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, child_of_pinned, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    pthread_barrier_wait(&checked);
    pthread_barrier_wait(&checked);
    return NULL;
}

static void *changes_its_own(void *arg) {
    (void)arg;
    expect_self(&process, "a thread made with no mask");
    cpu_set_t first = one(first_cpu), last = one(last_cpu);
    CHECK_EQ(sched_setaffinity(0, sizeof first, &first), 0);
    expect_self(&first, "after sched_setaffinity(0)");
    CHECK_EQ(pthread_setaffinity_np(pthread_self(), sizeof last, &last), 0);
    expect_self(&last, "after pthread_setaffinity_np(self)");
    CHECK_EQ(sched_setaffinity(gw_tid(), sizeof first, &first), 0);
    expect_self(&first, "after sched_setaffinity(own tid)");

    /* A CPU no machine here has: refused, nothing changes. */
    cpu_set_t none = one(CPU_SETSIZE - 1);
    errno = 0;
    CHECK_EQ(sched_setaffinity(0, sizeof none, &none), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(pthread_setaffinity_np(pthread_self(), sizeof none, &none), EINVAL);
    expect_self(&first, "after refused masks");
    pthread_barrier_wait(&checked);
    pthread_barrier_wait(&checked);
    return NULL;
}

int main(void) {
    gw_watchdog("test_affinity_own", 60);
    CHECK_EQ(sched_getaffinity(0, sizeof process, &process), 0);
    first_cpu = last_cpu = -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &process)) {
            if (first_cpu < 0) first_cpu = c;
            last_cpu = c;
        }
    if (CPU_COUNT(&process) < 2) {
        printf("test_affinity_own: one CPU, nothing to tell apart\n");
        return GW_SKIP;
    }
    CHECK_EQ(pthread_barrier_init(&checked, NULL, 2), 0);
    cpu_set_t first = one(first_cpu), last = one(last_cpu);

    /* Made for the last CPU. */
    pthread_attr_t a;
    CHECK_EQ(pthread_attr_init(&a), 0);
    CHECK_EQ(pthread_attr_setaffinity_np(&a, sizeof last, &last), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, &a, pinned, NULL), 0);
    pthread_barrier_wait(&checked);
    expect_of(t, &last, "a thread made for one CPU");
    pthread_barrier_wait(&checked);
    CHECK_EQ(pthread_join(t, NULL), 0);

    /* Made for no CPU the machine has: pthread_create fails. */
    cpu_set_t none = one(CPU_SETSIZE - 1);
    CHECK_EQ(pthread_attr_setaffinity_np(&a, sizeof none, &none), 0);
    int rc = pthread_create(&t, &a, pinned, NULL);
    CHECK(rc == EINVAL, "pthread_create for CPU %d: %d, not EINVAL", CPU_SETSIZE - 1, rc);
    pthread_attr_destroy(&a);

    /* Made with no mask, changes its own at run time. */
    CHECK_EQ(pthread_barrier_init(&checked, NULL, 2), 0);
    CHECK_EQ(pthread_create(&t, NULL, changes_its_own, NULL), 0);
    pthread_barrier_wait(&checked);
    expect_of(t, &first, "a thread that changed its own");
    expect_self(&process, "main, after a thread changed its own");
    /* Another thread changes it. */
    CHECK_EQ(pthread_setaffinity_np(t, sizeof last, &last), 0);
    expect_of(t, &last, "a thread whose mask another thread set");
    expect_self(&process, "main, after it set another thread's");
    pthread_barrier_wait(&checked);
    CHECK_EQ(pthread_join(t, NULL), 0);
    expect_self(&process, "main, at the end");
    printf("test_affinity_own: ok (%d hubs)\n", gw_hubs());
    return 0;
}
