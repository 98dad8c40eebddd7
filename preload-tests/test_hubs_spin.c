#include "gwtest.h"
/* A hub that woke a thread of another hub spins for the answer before it sleeps, for as long
 * as its recent spins paid and only while a CPU is free (hub::spin): this drives a cond+mutex
 * ping-pong between two hubs (GREENWORLD_HUBS=2; re-run so when preloaded without it) through
 * every state of that spin and checks no wake is lost in any: answers at once (the spin finds
 * them), answers after a sleep (spins come up empty: shorter spins, then chances passed),
 * answers swept across 0-64 us of busy work (a wake landing at every point of spins of every
 * length, the moment a spin gives up included), answers while other processes want every CPU
 * (the spin is left out or cut short), and answers at once again (spins pay and lengthen).
 * Counts checked; a lost wake hangs (the watchdog says in which phase). */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int turn;
/* How the answerer (thread 1) waits before it answers each round. */
static enum { AT_ONCE, SLEEP, SWEEP } how;
static int rounds;

static void busy_ns(long long ns) {
    long long t0 = gw_now_ns();
    while (gw_now_ns() - t0 < ns) {
    }
}

static void *player(void *arg) {
    long me = (long)arg, n = 0;
    for (int r = 0; r < rounds; r++) {
        if (me == 1) {
            if (how == SLEEP) usleep(200);
            else if (how == SWEEP) busy_ns((long long)(r % 65) * 1000);
        }
        CHECK_EQ(pthread_mutex_lock(&m), 0);
        while (turn != me) CHECK_EQ(pthread_cond_wait(&c, &m), 0);
        turn = 1 - (int)me;
        n++;
        CHECK_EQ(pthread_cond_signal(&c), 0);
        CHECK_EQ(pthread_mutex_unlock(&m), 0);
    }
    return (void *)n;
}

static int cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

static void phase(const char *what, int how_, int rounds_) {
    gw_phase = what;
    how = how_;
    rounds = rounds_;
    turn = 0;
    /* CPU 0's and CPU 1's hubs: different ones on a machine with two CPUs or more. */
    pthread_t t[2] = {gw_create_on_cpu(0, player, (void *)0L), gw_create_on_cpu(1 % cpus(), player, (void *)1L)};
    for (int i = 0; i < 2; i++) {
        void *ret;
        CHECK_EQ(pthread_join(t[i], &ret), 0);
        CHECK(ret == (void *)(long)rounds, "%s: thread %d made %ld rounds of %d", what, i, (long)ret, rounds);
    }
}

int main(void) {
    gw_rerun_with_hubs("2");
    gw_watchdog("test_hubs_spin", 100);

    phase("answers at once", AT_ONCE, 20000);
    phase("answers after a sleep", SLEEP, 400);
    phase("answers swept over 0-64 us", SWEEP, 65 * 20);

    /* Other processes that want every CPU (plain loops in forked children). */
    pid_t hogs[64];
    int nhogs = cpus() < 64 ? cpus() : 64;
    for (int i = 0; i < nhogs; i++) {
        hogs[i] = fork();
        CHECK(hogs[i] >= 0, "fork: %s", strerror(errno));
        if (hogs[i] == 0) {
            for (;;) {
            }
        }
    }
    phase("answers while every CPU is wanted", AT_ONCE, 5000);
    phase("answers swept while every CPU is wanted", SWEEP, 65 * 4);
    for (int i = 0; i < nhogs; i++) {
        kill(hogs[i], SIGKILL);
        CHECK(waitpid(hogs[i], NULL, 0) == hogs[i], "waitpid: %s", strerror(errno));
    }

    phase("answers at once again", AT_ONCE, 20000);
    printf("test_hubs_spin: ok\n");
    return 0;
}
