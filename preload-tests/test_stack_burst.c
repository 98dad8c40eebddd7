/* Stacks for a burst of first runs (README, Performance: the `prep15` paragraph). Under the
 * preload at one hub on a machine with more CPUs, a burst of threads that each start on a stack
 * never run on before has the kernel's part of those stacks (guard, top page) done by the
 * library's `gw-stacks` thread while the hub runs threads; natively each pthread maps its own.
 * 1. 1 000 threads made in a row, each writing 32 KiB of its stack and sleeping three times
 *    (so no stack is reused hot): all run, each sees its own bytes back after its sleeps.
 * 2. Guards: run again as "overflow", 400 such threads with number 350 recursing without end;
 *    the process must die of SIGSEGV, as natively (a stack made ready in the burst has its
 *    guard in place; without it the recursion would write over the next stack down).
 * 3. Fork during a burst: run again as "fork", thread 300 of 600 forks; the child makes and
 *    joins 400 threads of its own (a burst again, with no `gw-stacks` of the parent's) and
 *    exits 0; the parent's threads all finish.
 * After part 1, gw_os_threads() under the preload is 1 (`gw-stacks`, like the monitor, is the
 * library's own).
 */
#include "gwtest.h"
#include <pthread.h>

#define FRAME (32 * 1024)

static int ran;
static int fork_at = -1;
static int child_status = -1;

static int touch_and_sleep(int id) {
    volatile unsigned char buf[FRAME];
    for (int i = 0; i < FRAME; i += 512) buf[i] = (unsigned char)(id + i / 512);
    for (int k = 0; k < 3; k++) gw_sleep_ms(2);
    int bad = 0;
    for (int i = 0; i < FRAME; i += 512) bad += buf[i] != (unsigned char)(id + i / 512);
    return bad;
}

static __attribute__((noinline)) long recurse(long depth) {
    volatile char frame[4096];
    frame[0] = (char)depth;
    frame[4095] = (char)depth;
    if (depth < 0) return 0; /* never: the recursion ends at the guard */
    return recurse(depth + 1) + frame[0] + frame[4095];
}

static int burst_child(void);

static void *sleeper(void *arg) {
    int id = (int)(intptr_t)arg;
    if (id == fork_at) {
        pid_t pid = fork();
        CHECK(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) _exit(burst_child());
        int st;
        CHECK_EQ(waitpid(pid, &st, 0), pid);
        __atomic_store_n(&child_status, st, __ATOMIC_SEQ_CST);
    }
    int bad = touch_and_sleep(id);
    __atomic_add_fetch(&ran, 1, __ATOMIC_SEQ_CST);
    return (void *)(intptr_t)bad;
}

static void burst(int n, int overflow_at);

/* In the fork child: a burst of its own. */
static int burst_child(void) {
    fork_at = -1;
    burst(400, -1);
    return 0;
}

static void *overflower(void *arg) {
    gw_sleep_ms(1);
    printf("overflow: recursing\n");
    fflush(stdout);
    return (void *)recurse((long)(intptr_t)arg);
}

static void burst(int n, int overflow_at) {
    pthread_t *t = calloc((size_t)n, sizeof *t);
    CHECK(t != NULL, "calloc");
    ran = 0;
    for (intptr_t i = 0; i < n; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, i == overflow_at ? overflower : sleeper, (void *)i), 0);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        void *r;
        CHECK_EQ(pthread_join(t[i], &r), 0);
        bad += (int)(intptr_t)r;
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(ran, n);
    free(t);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "overflow") == 0) {
        burst(400, 350);
        printf("overflow: survived\n");
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "fork") == 0) {
        fork_at = 300;
        burst(600, -1);
        CHECK(WIFEXITED(child_status) && WEXITSTATUS(child_status) == 0, "fork child: status %#x",
              child_status);
        printf("fork: ok\n");
        return 0;
    }
    burst(1000, -1);
    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1);
    printf("burst of 1000 ok\n");

    /* Each in a fresh process: here the stacks of the first burst are hot, and reused. */
    char out[4096];
    int st = gw_run_self(NULL, out, sizeof out, "overflow", NULL);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "overflow child: status %#x, want SIGSEGV; output:\n%s",
          st, out);
    CHECK(strstr(out, "overflow: recursing") != NULL, "the overflowing thread never ran:\n%s", out);
    printf("overflow in a burst: SIGSEGV\n");

    st = gw_run_self(NULL, out, sizeof out, "fork", NULL);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(out, "fork: ok"), "fork run: status %#x:\n%s", st, out);
    printf("fork during a burst ok\n");
    printf("stack_burst: ok\n");
    return 0;
}
