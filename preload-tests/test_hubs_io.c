#include "gwtest.h"
/* Descriptors, timers and thread identity across hubs (GREENWORLD_HUBS; the test re-runs itself
 * with GREENWORLD_HUBS=2 when preloaded without it):
 *  - two threads on different OS threads wait to read the same pipe: two bytes written one at a
 *    time from main wake each once (a wait on a descriptor another hub registered is woken
 *    across hubs);
 *  - a socket reader on the other hub wakes when main writes, and a reader parked there on a
 *    socket main shuts down sees EOF; under the preload, a reader parked on another hub is woken
 *    by main's close (EBADF: see README, close);
 *  - sleeps on both hubs end on time and in order;
 *  - __thread variables start at their initial value on the other hub and stay each thread's
 *    own; errno is each thread's; pthread_self differs; gettid differs from main's for the
 *    threads placed on the other hub. */
#include <poll.h>
#include <pthread.h>

static int hubs_on(void) {
    const char *v = getenv("GREENWORLD_HUBS");
    return gw_preloaded() && v && atoi(v) > 1;
}


static int pipefd[2];
static int got[2];
static pid_t reader_tid[2];

static void *pipe_reader(void *arg) {
    long i = (long)arg;
    reader_tid[i] = gw_tid();
    char b;
    ssize_t n = read(pipefd[0], &b, 1);
    CHECK_EQ(n, 1);
    __atomic_add_fetch(&got[i], 1, __ATOMIC_SEQ_CST);
    return NULL;
}

struct reader {
    int fd;
    ssize_t n;
    int err;
    pid_t tid;
    volatile int started;
};

static void *sock_reader(void *arg) {
    struct reader *r = arg;
    r->tid = gw_tid();
    char buf[64];
    __atomic_store_n(&r->started, 1, __ATOMIC_RELEASE);
    r->n = read(r->fd, buf, sizeof buf);
    r->err = errno;
    return NULL;
}

static __thread int tls_value = 42;
static void *tls_user(void *arg) {
    long i = (long)arg;
    CHECK_EQ(tls_value, 42);
    tls_value = (int)i;
    errno = 1000 + (int)i;
    usleep(2000);
    sched_yield();
    CHECK_EQ(tls_value, (int)i);
    CHECK_EQ(errno, 1000 + (int)i);
    return (void *)(long)gw_tid();
}

static long long woke_at[4];
static void *sleeper(void *arg) {
    long i = (long)arg;
    gw_sleep_ms(20 * (int)(i + 1));
    woke_at[i] = gw_now_ns();
    return NULL;
}

int main(void) {
    gw_rerun_with_hubs("2");
    gw_watchdog("test_hubs_io", 60);
    pid_t main_tid = gw_tid();

    gw_phase = "two hubs read one pipe";
    CHECK_EQ(pipe(pipefd), 0);
    for (int round = 0; round < 20; round++) {
        pthread_t t[2];
        got[0] = got[1] = 0;
        for (long i = 0; i < 2; i++) CHECK_EQ(pthread_create(&t[i], NULL, pipe_reader, (void *)i), 0);
        gw_sleep_ms(5);
        CHECK_EQ(write(pipefd[1], "a", 1), 1);
        gw_sleep_ms(2);
        CHECK_EQ(write(pipefd[1], "b", 1), 1);
        for (int i = 0; i < 2; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
        CHECK_EQ(got[0] + got[1], 2);
        if (hubs_on())
            CHECK(reader_tid[0] != reader_tid[1], "pipe readers both on OS thread %d", reader_tid[0]);
    }

    gw_phase = "socket reader on the other hub";
    for (int round = 0; round < 20; round++) {
        int sv[2];
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        struct reader r[2] = {{.fd = sv[0], .n = -2}, {.fd = sv[0], .n = -2}};
        pthread_t t[2];
        /* Two readers: the round goes to both hubs, whichever gets which. */
        CHECK_EQ(pthread_create(&t[0], NULL, sock_reader, &r[0]), 0);
        CHECK_EQ(pthread_create(&t[1], NULL, sock_reader, &r[1]), 0);
        while (!__atomic_load_n(&r[0].started, __ATOMIC_ACQUIRE) ||
               !__atomic_load_n(&r[1].started, __ATOMIC_ACQUIRE))
            gw_sleep_ms(1);
        gw_sleep_ms(3);
        CHECK_EQ(write(sv[1], "x", 1), 1);
        gw_sleep_ms(3);
        CHECK_EQ(shutdown(sv[0], SHUT_RDWR), 0); /* the other one sees EOF */
        for (int i = 0; i < 2; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
        CHECK(r[0].n + r[1].n == 1 && (r[0].n == 0 || r[1].n == 0),
              "socket readers: %zd and %zd", r[0].n, r[1].n);
        if (hubs_on()) CHECK(r[0].tid != r[1].tid, "socket readers both on OS thread %d", r[0].tid);
        close(sv[0]);
        close(sv[1]);
    }

    if (gw_preloaded()) {
        gw_phase = "close wakes a reader on another hub";
        for (int round = 0; round < 10; round++) {
            int sv[2];
            CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
            struct reader r[2] = {{.fd = sv[0], .n = -2}, {.fd = sv[0], .n = -2}};
            pthread_t t[2];
            CHECK_EQ(pthread_create(&t[0], NULL, sock_reader, &r[0]), 0);
            CHECK_EQ(pthread_create(&t[1], NULL, sock_reader, &r[1]), 0);
            while (!__atomic_load_n(&r[0].started, __ATOMIC_ACQUIRE) ||
                   !__atomic_load_n(&r[1].started, __ATOMIC_ACQUIRE))
                gw_sleep_ms(1);
            gw_sleep_ms(5);
            CHECK_EQ(close(sv[0]), 0);
            for (int i = 0; i < 2; i++) {
                CHECK_EQ(pthread_join(t[i], NULL), 0);
                CHECK(r[i].n == -1 && r[i].err == EBADF, "reader %d after close: %zd (%s)", i,
                      r[i].n, strerror(r[i].err));
            }
            close(sv[1]);
        }
    }

    gw_phase = "sleeps on both hubs";
    {
        pthread_t t[4];
        long long t0 = gw_now_ns();
        for (long i = 0; i < 4; i++) CHECK_EQ(pthread_create(&t[i], NULL, sleeper, (void *)i), 0);
        for (int i = 0; i < 4; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
        for (int i = 0; i < 4; i++)
            CHECK(woke_at[i] - t0 >= 20000000LL * (i + 1), "sleeper %d woke early", i);
    }

    gw_phase = "thread-locals, errno, identity";
    {
        pthread_t t[4];
        void *ret[4];
        for (long i = 0; i < 4; i++) CHECK_EQ(pthread_create(&t[i], NULL, tls_user, (void *)i), 0);
        for (int i = 0; i < 4; i++) CHECK(!pthread_equal(t[i], pthread_self()), "pthread_self");
        int elsewhere = 0;
        for (int i = 0; i < 4; i++) {
            CHECK_EQ(pthread_join(t[i], &ret[i]), 0);
            if ((pid_t)(long)ret[i] != main_tid) elsewhere++;
        }
        if (hubs_on()) CHECK(elsewhere >= 1, "no thread ran on another OS thread than main's");
        CHECK_EQ(tls_value, 42);
    }
    printf("test_hubs_io: ok\n");
    return 0;
}
