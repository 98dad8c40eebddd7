// link: greenworld
#include "gwtest.h"
#include <pthread.h>
#include "greenworld.h"
/* The parking lot's buckets go unlocked while one OS thread alone has used them (README,
 * Performance, issue 15): a second OS thread that starts to use them takes them over while the
 * first may be in the middle of a change. Two green threads of main's hub hand a turn back and
 * forth through a mutex and two conditions (the green twins) until, after WARM_UP turns, another
 * thread has joined in on the same objects and is done: signals to both conditions, mutex
 * hand-offs and timed waits. Natively (the
 * library linked, nothing patched) it is a green thread of another OS thread's hub, and the lot
 * is shared at its first call, in the middle of the hand-offs; preloaded it is a green thread of
 * main's hub, or at GREENWORLD_HUBS=2 of the second hub's OS thread. Every hand-off
 * and every count must add up, and nothing may hang, in each of ROUNDS fresh child processes
 * (a process's lot is taken over once). */

enum { ROUNDS = 40, WARM_UP = 1000, BUMPS = 3000 };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t to_a = PTHREAD_COND_INITIALIZER, to_b = PTHREAD_COND_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static int turn;                                /* 0: A's turn, 1: B's, 2: B stops */
static int done;                                /* the intruder is done */
static long a_turns, b_turns, bumps, timeouts; /* under mu */
static volatile int warm;

/* A and B hand the turn back and forth until the intruder is done: each of A's turns is
 * answered by exactly one of B's. */
static void *side_a(void *arg) {
    green_pthread_mutex_lock(&mu);
    while (!done) {
        turn = 1;
        if (++a_turns == WARM_UP) warm = 1;
        green_pthread_cond_signal(&to_b);
        while (turn != 0) green_pthread_cond_wait(&to_a, &mu);
    }
    turn = 2;
    green_pthread_cond_signal(&to_b);
    green_pthread_mutex_unlock(&mu);
    return arg;
}

static void *side_b(void *arg) {
    green_pthread_mutex_lock(&mu);
    for (;;) {
        while (turn == 0) green_pthread_cond_wait(&to_b, &mu);
        if (turn == 2) break;
        turn = 0;
        b_turns++;
        green_pthread_cond_signal(&to_a);
    }
    green_pthread_mutex_unlock(&mu);
    return arg;
}

/* Spurious signals to both sides (they wait in loops; the first call is one, on a queue the two
 * change all the time), the mutex taken from them, and now and then a wait that times out on a
 * condition nobody signals. */
static void *intruder(void *arg) {
    while (!warm) sched_yield();
    for (int i = 0; i < BUMPS; i++) {
        green_pthread_cond_signal(&to_a);
        green_pthread_cond_signal(&to_b);
        CHECK_EQ(green_pthread_mutex_lock(&mu), 0);
        bumps++;
        if (i % 1000 == 0) {
            struct timespec at = gw_abs_in(CLOCK_REALTIME, 1);
            if (green_pthread_cond_timedwait(&never, &mu, &at) == ETIMEDOUT) timeouts++;
        }
        CHECK_EQ(green_pthread_mutex_unlock(&mu), 0);
        if (i % 64 == 0) green_pthread_cond_broadcast(&to_a);
    }
    green_pthread_mutex_lock(&mu);
    done = 1;
    green_pthread_mutex_unlock(&mu);
    return arg;
}

/* The intruder runs as a green thread of the thread made with the plain pthread_create: natively
 * (linked, nothing patched) that is an OS thread of its own, whose hub then uses the lot too. */
static void *intruder_host(void *arg) {
    pthread_t t;
    CHECK_EQ(green_pthread_create(&t, NULL, intruder, NULL), 0);
    CHECK_EQ(green_pthread_join(t, NULL), 0);
    return arg;
}

static int one_round(void) {
    pthread_t a, b, other;
    CHECK_EQ(green_pthread_create(&b, NULL, side_b, NULL), 0);
    CHECK_EQ(green_pthread_create(&a, NULL, side_a, NULL), 0);
    CHECK_EQ(pthread_create(&other, NULL, intruder_host, NULL), 0);
    CHECK_EQ(green_pthread_join(a, NULL), 0);
    CHECK_EQ(green_pthread_join(b, NULL), 0);
    CHECK_EQ(pthread_join(other, NULL), 0);
    CHECK(a_turns >= WARM_UP, "%ld turns", a_turns);
    CHECK_EQ(b_turns, a_turns);
    CHECK_EQ(bumps, BUMPS);
    CHECK_EQ(timeouts, BUMPS / 1000);
    return 0;
}

int main(void) {
    gw_watchdog("test_park_share", 120);
    for (int round = 0; round < ROUNDS; round++) {
        pid_t pid = fork();
        CHECK(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) {
            gw_watchdog("test_park_share child", 30);
            _exit(one_round());
        }
        int status;
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "round %d: child status %#x", round,
              status);
    }
    printf("park share ok\n");
    return 0;
}
