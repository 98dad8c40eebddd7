/* GREENWORLD_SLICE (issue 19 §2): the time slice's length is the configured one, and `off` turns
 * preemption off. Green only (natively the OS runs both threads at once); the test re-runs itself
 * with GREENWORLD_SLICE set and GREENWORLD_HUBS=1 (both threads on main's hub).
 * The child: main makes a green thread that only sets a flag, then spins (no call but the
 * clock's, which is no hook) for 300 ms of wall time, or until the flag is set when a slice is
 * expected to end its turn. It prints whether the thread ran during the spin. Counted, not timed:
 * - off: the thread never runs during the spin (no preemption, no slice);
 * - 10s: a 300 ms spin is well inside its slice: the thread does not run either (the library
 *   used the configured length, not the 2 ms default);
 * - 20ms: the spinner is preempted and the thread runs during the spin.
 * Before GREENWORLD_SLICE existed, the first two children were preempted after 2 ms. */
#include "gwtest.h"
#include <pthread.h>
#include <stdatomic.h>

static atomic_int ran;

static void *set_ran(void *arg) {
    (void)arg;
    atomic_store(&ran, 1);
    return NULL;
}

static int child(int until_ran) {
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, set_ran, NULL), 0);
    long long t0 = gw_now_ns();
    /* With a slice the spin ends when the thread ran; the bound only stops a broken run. */
    long long limit_ms = until_ran ? 20000 : 300;
    unsigned long x = 1;
    for (;;) {
        for (int i = 0; i < 4096; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
        if (until_ran && atomic_load_explicit(&ran, memory_order_relaxed)) break;
        if (gw_ms_since(t0) >= limit_ms) break;
    }
    int during = atomic_load(&ran);
    CHECK_EQ(pthread_join(t, NULL), 0);
    printf("ran_during_spin=%d x=%lu\n", during, x & 1);
    return 0;
}

static void expect(const char *slice, int want_ran) {
    static char out[4096];
    const char *env[] = {slice, "GREENWORLD_HUBS=1", "-GREENWORLD_PREEMPT", NULL};
    int status = gw_run_self(env, out, sizeof out, "--child", want_ran ? "until" : "fixed", NULL);
    CHECK(gw_exit_code(status) == 0, "%s: child status %d: %s", slice, status, out);
    char want[32];
    snprintf(want, sizeof want, "ran_during_spin=%d", want_ran);
    CHECK(strstr(out, want), "%s: want %s, got: %s", slice, want, out);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--child") == 0) return child(strcmp(argv[2], "until") == 0);
    if (!gw_preloaded()) return GW_SKIP;
    gw_watchdog("test_slice", 120);
    gw_phase = "GREENWORLD_SLICE=off: a spinning main is never preempted";
    expect("GREENWORLD_SLICE=off", 0);
    gw_phase = "GREENWORLD_SLICE=10s: a 300 ms spin stays inside its slice";
    expect("GREENWORLD_SLICE=10s", 0);
    gw_phase = "GREENWORLD_SLICE=20ms: a spinning main is preempted";
    expect("GREENWORLD_SLICE=20ms", 1);
    return 0;
}
