/* A relative clock_nanosleep on the process's CPU-time clock lasts until the process has used
 * that much CPU, whatever SIGURG the program ignores meanwhile. Under the preload the library's
 * handler interrupts it, and the sleep is made again for the time left: counted on the CPU
 * clock, not the monotonic one (which runs ahead of it). A child sends SIGURG in bursts, a
 * thread spins (natively it is what uses the CPU; under the preload the handlers do too), and
 * main sleeps 50 ms of process CPU time 10 times: each returns 0 after 50 ms of CPU or more
 * (a lower bound only: natively it is never shorter). */
#include "gwtest.h"

static volatile int stop;

static void *spin(void *arg) {
    while (!stop) {
    }
    return arg;
}

static long long cpu_ns(void) {
    struct timespec t;
    CHECK_EQ(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t), 0);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(void) {
    pid_t parent = getpid();
    pid_t child = fork();
    CHECK(child >= 0, "fork");
    if (child == 0) {
        for (;;) {
            for (int i = 0; i < 64; i++)
                if (kill(parent, SIGURG) != 0) _exit(0);
            struct timespec gap = {0, 20000};
            nanosleep(&gap, NULL);
        }
    }
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, spin, NULL), 0);
    for (int i = 0; i < 10; i++) {
        long long c0 = cpu_ns();
        struct timespec req = {0, 50000000};
        int rc = clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, 0, &req, NULL);
        long long used = cpu_ns() - c0;
        CHECK(rc == 0 && used >= 50000000, "clock_nanosleep returned %d after %lld ns of CPU", rc, used);
    }
    stop = 1;
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(kill(child, SIGKILL), 0);
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    return 0;
}
