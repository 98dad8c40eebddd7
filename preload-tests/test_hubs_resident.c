/* Several hubs, placement of a thread given a resident stack (README, Several hubs): one made
 * while its creator's hub already has a thread to run waits on the creator's shelf, to be
 * placed at its first run, like any other new thread; it is not sent to a less loaded hub at
 * creation. Before, the resident stacks that threads run on the second hub gave back to their
 * creator's pool sent a batch's next threads there too, one notify each (spawn 10 000 then join
 * all cost 1.8 times one hub's).
 *
 * Under the preload the test runs itself again at GREENWORLD_HUBS=2 with GREENWORLD_SLICE=off:
 * a spinner is taken by the second hub while main computes (its creator's shelf stands still),
 * and keeps that hub busy, so that nothing there takes or starts a thread; main then makes a
 * create+join pair (its pool gets resident stacks) and three threads in a row, each on a
 * resident stack. The third, made while main's hub had two to run and the second hub one, used
 * to be placed on the second hub at creation, behind the spinner; now it waits on main's shelf
 * and starts there when main joins it.
 * Natively each thread is its own OS thread and only the joins are checked. */
#include "gwtest.h"

static volatile int spinner_started, release;
static pid_t spinner_tid;

static void *spin(void *arg) {
    spinner_tid = gw_tid();
    __atomic_store_n(&spinner_started, 1, __ATOMIC_SEQ_CST);
    /* No hooked call: its hub runs nothing else until it ends (no slice, no preemption). */
    while (!__atomic_load_n(&release, __ATOMIC_SEQ_CST)) __asm__ volatile("" ::: "memory");
    return arg;
}

static void *record(void *arg) {
    *(pid_t *)arg = gw_tid();
    return arg;
}

/* Computes, with no hooked call, until the spinner started; false after about 10 s. */
static int compute_until_spinning(void) {
    struct timespec t0, t;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t0);
    volatile unsigned long sink = 0;
    for (;;) {
        for (int i = 0; i < 100000; i++) sink = sink * 6364136223846793005UL + 1;
        if (__atomic_load_n(&spinner_started, __ATOMIC_SEQ_CST)) return 1;
        syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 10) return 0;
    }
}

int main(void) {
    gw_rerun_with_slice("off");
    if (gw_preloaded() && gw_hubs() < 2) {
        printf("skip: one hub (the placement checked is between hubs)\n");
        return GW_SKIP;
    }
    gw_watchdog("test_hubs_resident", 60);
    pid_t mine = gw_tid();
    pthread_t spinner;
    CHECK_EQ(pthread_create(&spinner, NULL, spin, NULL), 0);
    CHECK(compute_until_spinning(), "the spinner did not start while its creator computed");
    if (gw_preloaded()) CHECK(spinner_tid != mine, "the spinner runs on main's hub");
    /* Main's hub still holds the spinner's place in its run queue (the mark that started the
     * oldest thread on its shelf): a yield spends it, so that each join below starts the thread
     * it waits for. */
    sched_yield();

    /* A create+join pair: the stack it ran on, and those made ready with it, are resident. */
    pid_t warm = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, record, &warm), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);

    pid_t where[3] = {0, 0, 0};
    pthread_t row[3];
    for (int i = 0; i < 3; i++) CHECK_EQ(pthread_create(&row[i], NULL, record, &where[i]), 0);
    /* Joined while the second hub still spins: a thread placed there cannot start until the
     * spinner ends (the bound only turns that hang into a failure). Each joined thread starts
     * on main's hub: main, waiting for it, does not count as that hub's (a batch joined in
     * turn, README), so the second hub, running one, is not less busy. */
    for (int i = 0; i < 3; i++) {
        struct timespec until = gw_abs_in(CLOCK_REALTIME, 10000);
        int rc = pthread_timedjoin_np(row[i], NULL, &until);
        CHECK(rc == 0, "thread %d of three made in a row did not start while the second hub was busy (%s)",
              i + 1, strerror(rc));
    }
    if (gw_preloaded()) {
        CHECK(warm == mine, "the create+join pair's thread ran on tid %d, not main's %d", (int)warm, (int)mine);
        for (int i = 0; i < 3; i++)
            CHECK(where[i] == mine, "thread %d of three made in a row ran on tid %d, not main's (%d)", i + 1,
                  (int)where[i], (int)mine);
    }
    __atomic_store_n(&release, 1, __ATOMIC_SEQ_CST);
    CHECK_EQ(pthread_join(spinner, NULL), 0);
    printf("ok: threads made on resident stacks while the other hub was busy started on their creator's hub\n");
    return 0;
}
