/* errno is per thread across switches.
 * 100 threads each set errno to a distinct value, then switch away several times (sleeps of
 * various lengths, sched_yield; every tenth also joins a helper thread that sets errno to its
 * own value) and check after every switch that errno is still their own value. Half of them also make a failing call of their own between
 * switches (close(-1) -> EBADF) and check that it survives the next switch too. Main sets its
 * own errno before waiting for them (sleep + joins) and checks it after each join.
 */
#include "gwtest.h"
#include <pthread.h>
#include <sched.h>

#define N 100
#define ROUNDS 6

static int bad[N];

static void *helper(void *arg) {
    (void)arg;
    errno = 777;
    usleep(1000);
    return (void *)(intptr_t)errno;
}

static void *body(void *arg) {
    int i = (int)(intptr_t)arg;
    int mine = 10000 + i;
    errno = mine;
    for (int r = 0; r < ROUNDS; r++) {
        switch ((i + r) % 3) {
        case 0: usleep((useconds_t)(1 + (i + r) % 5) * 1000); break;
        case 1: sched_yield(); break;
        default: {
            struct timespec ts = {0, 500000};
            nanosleep(&ts, NULL);
        }
        }
        if (errno != mine) {
            fprintf(stderr, "thread %d round %d: errno %d, want %d\n", i, r, errno, mine);
            bad[i]++;
            errno = mine;
        }
        if (i % 10 == 0 && r == 4) {
            pthread_t h;
            void *hv = NULL;
            if (pthread_create(&h, NULL, helper, NULL) != 0 || pthread_join(h, &hv) != 0 ||
                (intptr_t)hv != 777)
                bad[i]++;
            if (errno != mine) {
                fprintf(stderr, "thread %d after join: errno %d, want %d\n", i, errno, mine);
                bad[i]++;
                errno = mine;
            }
        }
        if (i % 2 && r == 2) {
            /* A real failing call sets errno; it must survive the next switch. */
            if (close(-1) != -1 || errno != EBADF) bad[i]++;
            mine = EBADF;
        }
    }
    return (void *)(intptr_t)errno;
}

int main(void) {
    pthread_t t[N];
    errno = 4242;
    for (int i = 0; i < N; i++) CHECK_EQ(pthread_create(&t[i], NULL, body, (void *)(intptr_t)i), 0);
    errno = 4243;
    usleep(2000);
    CHECK_EQ(errno, 4243);
    for (int i = 0; i < N; i++) {
        void *v = NULL;
        CHECK_EQ(pthread_join(t[i], &v), 0);
        CHECK_EQ(errno, 4243);
        CHECK_EQ((intptr_t)v, i % 2 ? EBADF : 10000 + i);
        CHECK(bad[i] == 0, "thread %d: %d errno mismatches", i, bad[i]);
    }
    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1);
    printf("errno: all passed\n");
    return 0;
}
