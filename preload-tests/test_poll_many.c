/* Many pollers: 500 threads each wait in poll() (450 of them) or ppoll() (50 of them, with a
 * signal mask that adds SIGUSR2) on their own socketpair, timeout 5 s; a writer thread waits
 * until all of them are waiting, sleeps 20 ms, then writes one distinct byte to each pair.
 * - every waiter sees exactly 1 and POLLIN, and reads its own byte; none returns before the
 *   write (no spurious early return) and none times out;
 * - under the preload the whole crowd waits on ONE OS thread (gw_os_threads() == 1, sampled by
 *   the writer while everybody waits); natively there is one task per thread;
 * - the ppoll sigmask is per call: once every ppoll has returned, main's signal mask is what it
 *   was before (SIGUSR2 not left blocked), and each ppoll caller's own mask is restored too.
 */
#include "gwtest.h"
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define N 500
#define NPPOLL 50

static int sv[N][2];
static int waiting;          /* waiters about to call poll */
static long long written_ns; /* when the writer started writing */
static int tasks_while_waiting = -1;

struct result {
    int rc, err;
    short revents;
    int got;             /* the byte read, or -1 */
    long long returned_ns;
    int usr2_blocked_after; /* the caller's own mask after ppoll: SIGUSR2 blocked? */
};
static struct result res[N];

static unsigned char byte_of(int i) { return (unsigned char)(i * 7 + 1); }

static void *waiter(void *arg) {
    int i = (int)(intptr_t)arg;
    struct pollfd p = {.fd = sv[i][0], .events = POLLIN, .revents = 0};
    __atomic_add_fetch(&waiting, 1, __ATOMIC_SEQ_CST);
    int rc;
    if (i < NPPOLL) {
        sigset_t mask;
        pthread_sigmask(SIG_BLOCK, NULL, &mask);
        sigaddset(&mask, SIGUSR2);
        struct timespec ts = {5, 0};
        rc = ppoll(&p, 1, &ts, &mask);
    } else {
        rc = poll(&p, 1, 5000);
    }
    res[i].err = errno;
    res[i].returned_ns = gw_now_ns();
    res[i].rc = rc;
    res[i].revents = p.revents;
    if (i < NPPOLL) {
        sigset_t now;
        pthread_sigmask(SIG_BLOCK, NULL, &now);
        res[i].usr2_blocked_after = sigismember(&now, SIGUSR2);
    }
    unsigned char b = 0;
    ssize_t n = read(sv[i][0], &b, 1);
    res[i].got = n == 1 ? b : -1;
    return NULL;
}

static void *writer(void *arg) {
    (void)arg;
    long long give_up = gw_now_ns() + 10000000000LL;
    while (__atomic_load_n(&waiting, __ATOMIC_SEQ_CST) < N && gw_now_ns() < give_up)
        usleep(1000);
    usleep(20000); /* everybody is inside poll by now */
    tasks_while_waiting = gw_os_threads();
    written_ns = gw_now_ns();
    for (int i = 0; i < N; i++) {
        unsigned char b = byte_of(i);
        if (write(sv[i][1], &b, 1) != 1) return (void *)1;
    }
    return NULL;
}

int main(void) {
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 2 * N + 64) {
        rl.rlim_cur = rl.rlim_max < 2 * N + 64 ? rl.rlim_max : 2 * N + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < 2 * N + 64) {
            printf("poll_many: RLIMIT_NOFILE %lu too small\n", (unsigned long)rl.rlim_cur);
            return GW_SKIP;
        }
    }
    for (int i = 0; i < N; i++) CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]), 0);

    sigset_t before;
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &before), 0);
    CHECK(!sigismember(&before, SIGUSR2), "SIGUSR2 blocked from the start");

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    static pthread_t t[N];
    for (int i = 0; i < N; i++)
        CHECK_EQ(pthread_create(&t[i], &attr, waiter, (void *)(intptr_t)i), 0);
    pthread_t w;
    CHECK_EQ(pthread_create(&w, &attr, writer, NULL), 0);
    void *wret = (void *)-1;
    CHECK_EQ(pthread_join(w, &wret), 0);
    CHECK(wret == NULL, "writer failed");
    for (int i = 0; i < N; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);

    CHECK_EQ(waiting, N);
    for (int i = 0; i < N; i++) {
        CHECK(res[i].rc == 1, "waiter %d (%s): rc %d errno %d", i, i < NPPOLL ? "ppoll" : "poll",
              res[i].rc, res[i].err);
        CHECK(res[i].revents == POLLIN, "waiter %d: revents %#x", i, res[i].revents);
        CHECK(res[i].got == byte_of(i), "waiter %d read %d, want %d", i, res[i].got, byte_of(i));
        CHECK(res[i].returned_ns >= written_ns, "waiter %d returned %lld ns before the write", i,
              written_ns - res[i].returned_ns);
        CHECK(res[i].returned_ns - written_ns < 4000000000LL, "waiter %d: %lld ms after the write",
              i, (res[i].returned_ns - written_ns) / 1000000);
        if (i < NPPOLL)
            CHECK(res[i].usr2_blocked_after == 0, "ppoll caller %d: SIGUSR2 still blocked after ppoll",
                  i);
    }
    if (gw_preloaded())
        CHECK(tasks_while_waiting == 1, "%d OS threads while %d pollers wait", tasks_while_waiting, N);
    else
        CHECK(tasks_while_waiting >= N + 2, "%d tasks natively", tasks_while_waiting);

    sigset_t after;
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &after), 0);
    CHECK(!sigismember(&after, SIGUSR2), "main's mask: SIGUSR2 left blocked by the ppoll calls");
    for (int s = 1; s < 65; s++)
        CHECK(sigismember(&before, s) == sigismember(&after, s), "main's mask changed at signal %d", s);
    for (int i = 0; i < N; i++) {
        close(sv[i][0]);
        close(sv[i][1]);
    }
    printf("poll_many: %d pollers (%d ppoll) woken, %d OS threads while waiting\n", N, NPPOLL,
           tasks_while_waiting);
    return 0;
}
