#include "gwtest.h"
/* pthread_attr_setaffinity_np with several hubs: hubs are not pinned, so the CPUs a thread's
 * attributes name stand for hubs (the k-th CPU the process may run on is hub k mod N's).
 * Threads made for two different CPUs, two for each, all alive at once and made in the order
 * c0, c0, c1, c1 (placement by load alone would split each pair): under hubs, each pair shares
 * one OS thread and the pairs are on two different ones, as natively threads pinned to one CPU
 * share it and threads pinned to two run in parallel. Natively each thread runs on its CPU
 * (sched_getcpu). Needs two CPUs. A thread without CPUs named still goes anywhere. */
#include <pthread.h>
#include <sched.h>


struct seen {
    int cpu;
    pid_t tid;
    int ran_on;
};

static pthread_barrier_t all_made;

static void *record(void *arg) {
    struct seen *s = arg;
    s->tid = gw_tid();
    s->ran_on = sched_getcpu();
    pthread_barrier_wait(&all_made); /* every thread alive while the others are placed */
    return NULL;
}

static void make_on(pthread_t *t, struct seen *s, int cpu) {
    s->cpu = cpu;
    *t = gw_create_on_cpu(cpu, record, s);
}

int main(void) {
    gw_watchdog("test_hubs_affinity", 60);
    cpu_set_t process;
    CHECK_EQ(sched_getaffinity(0, sizeof process, &process), 0);
    int cpus[2], n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
        if (CPU_ISSET(c, &process)) cpus[n++] = c;
    if (n < 2) {
        printf("test_hubs_affinity: one CPU, nothing to place\n");
        return GW_SKIP;
    }
    int hubs = gw_hubs();

    struct seen s[5];
    pthread_t t[5];
    CHECK_EQ(pthread_barrier_init(&all_made, NULL, 6), 0);
    make_on(&t[0], &s[0], cpus[0]);
    make_on(&t[1], &s[1], cpus[0]);
    make_on(&t[2], &s[2], cpus[1]);
    make_on(&t[3], &s[3], cpus[1]);
    s[4].cpu = -1;
    CHECK_EQ(pthread_create(&t[4], NULL, record, &s[4]), 0);
    pthread_barrier_wait(&all_made);
    for (int i = 0; i < 5; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);

    if (!gw_preloaded()) {
        for (int i = 0; i < 4; i++)
            CHECK(s[i].ran_on == s[i].cpu, "thread %d asked for CPU %d, ran on %d", i, s[i].cpu,
                  s[i].ran_on);
    } else if (hubs > 1) {
        CHECK(s[0].tid == s[1].tid, "CPU %d's threads on OS threads %d and %d", cpus[0],
              s[0].tid, s[1].tid);
        CHECK(s[2].tid == s[3].tid, "CPU %d's threads on OS threads %d and %d", cpus[1],
              s[2].tid, s[3].tid);
        CHECK(s[0].tid != s[2].tid, "CPUs %d and %d's threads both on OS thread %d", cpus[0],
              cpus[1], s[0].tid);
    } else {
        for (int i = 0; i < 5; i++) CHECK_EQ(s[i].tid, gw_tid()); /* one hub: main's OS thread */
    }
    printf("test_hubs_affinity: ok (%d hubs)\n", hubs);
    return 0;
}
