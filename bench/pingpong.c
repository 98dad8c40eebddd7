/* pingpong: two threads pass one byte back and forth N times.
 *   pingpong socketpair|pipe|cond [N]
 *   pingpong socketpair-floor|pipe-floor [N]
 * socketpair: an AF_UNIX stream socketpair; pipe: two pipes; cond: a mutex and two condition
 * variables with a turn flag (a hand-off). RESULT ns_per_op = wall ns per round trip.
 * The -floor variants make the same four system calls per round trip (write, read, write,
 * read) from one thread, with no thread switch at all: the floor under any scheduler that
 * keeps the kernel's sockets and pipes, run pinned beside the two-thread case. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/uio.h>
#include <sys/socket.h>
#include <unistd.h>
#include "bench.h"

static int n = 200000;
static int mode; /* 0 socketpair, 1 pipe, 2 cond */
static int floor_only; /* the -floor variants: one thread, no switch */
static int a_rd, a_wr, b_rd, b_wr; /* A writes a_wr, reads a_rd; B the same with b_* */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t to_a = PTHREAD_COND_INITIALIZER, to_b = PTHREAD_COND_INITIALIZER;
static int turn; /* 0: A's turn, 1: B's turn */
static uint64_t elapsed;

static void xfer(int rd, int wr, int first_write) {
    char c = 'x';
    for (int i = 0; i < n; i++) {
        if (first_write && write(wr, &c, 1) != 1) die("pingpong: write: %s", strerror(errno));
        if (read(rd, &c, 1) != 1) die("pingpong: read: %s", strerror(errno));
        if (!first_write && write(wr, &c, 1) != 1) die("pingpong: write: %s", strerror(errno));
    }
}

static void *side_a(void *arg) {
    uint64_t t0 = now_ns();
    if (mode == 2) {
        pthread_mutex_lock(&mu);
        for (int i = 0; i < n; i++) {
            turn = 1;
            pthread_cond_signal(&to_b);
            while (turn != 0) pthread_cond_wait(&to_a, &mu);
        }
        pthread_mutex_unlock(&mu);
    } else {
        xfer(a_rd, a_wr, 1);
    }
    elapsed = now_ns() - t0;
    return arg;
}

static void *side_b(void *arg) {
    if (mode == 2) {
        pthread_mutex_lock(&mu);
        for (int i = 0; i < n; i++) {
            while (turn != 1) pthread_cond_wait(&to_b, &mu);
            turn = 0;
            pthread_cond_signal(&to_a);
        }
        pthread_mutex_unlock(&mu);
    } else {
        xfer(b_rd, b_wr, 0);
    }
    return arg;
}

/* Both sides' calls in one thread: A writes, B reads, B writes, A reads; with nowait, the
 * non-blocking forms greenworld makes on a descriptor it must not switch to O_NONBLOCK (send and
 * recv with MSG_DONTWAIT on a socket, pwritev2 and preadv2 with RWF_NOWAIT on a pipe). */
static uint64_t floor_loop(int nowait) {
    char c = 'x';
    struct iovec v = {&c, 1};
    uint64_t t0 = now_ns();
    for (int i = 0; i < n; i++) {
        int ok;
        if (!nowait)
            ok = write(a_wr, &c, 1) == 1 && read(b_rd, &c, 1) == 1 && write(b_wr, &c, 1) == 1 &&
                 read(a_rd, &c, 1) == 1;
        else if (mode == 0)
            ok = send(a_wr, &c, 1, MSG_DONTWAIT) == 1 && recv(b_rd, &c, 1, MSG_DONTWAIT) == 1 &&
                 send(b_wr, &c, 1, MSG_DONTWAIT) == 1 && recv(a_rd, &c, 1, MSG_DONTWAIT) == 1;
        else
            ok = pwritev2(a_wr, &v, 1, -1, RWF_NOWAIT) == 1 && preadv2(b_rd, &v, 1, -1, RWF_NOWAIT) == 1 &&
                 pwritev2(b_wr, &v, 1, -1, RWF_NOWAIT) == 1 && preadv2(a_rd, &v, 1, -1, RWF_NOWAIT) == 1;
        if (!ok) die("pingpong: floor: %s", strerror(errno));
    }
    return now_ns() - t0;
}

int main(int argc, char **argv) {
    const char *m = argc > 1 ? argv[1] : "socketpair";
    if (argc > 2) n = atoi(argv[2]);
    if (strcmp(m, "socketpair-floor") == 0 || strcmp(m, "pipe-floor") == 0) floor_only = 1;
    if (strncmp(m, "socketpair", 10) == 0 && (m[10] == 0 || floor_only)) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) die("socketpair: %s", strerror(errno));
        a_rd = a_wr = sv[0];
        b_rd = b_wr = sv[1];
        mode = 0;
    } else if (strncmp(m, "pipe", 4) == 0 && (m[4] == 0 || floor_only)) {
        int ab[2], ba[2];
        if (pipe(ab) || pipe(ba)) die("pipe: %s", strerror(errno));
        a_wr = ab[1], b_rd = ab[0], b_wr = ba[1], a_rd = ba[0];
        mode = 1;
    } else if (strcmp(m, "cond") == 0) {
        mode = 2;
    } else {
        die("usage: pingpong socketpair|pipe|cond|socketpair-floor|pipe-floor [N]");
    }
    if (floor_only) {
        uint64_t plain = floor_loop(0), nowait = floor_loop(1);
        printf("RESULT ns_per_op=%.1f plain_ns_per_op=%.1f round_trips=%d mode=%s\n", (double)nowait / n,
               (double)plain / n, n, m);
        return 0;
    }
    pthread_t ta, tb;
    int rc = pthread_create(&tb, NULL, side_b, NULL);
    if (!rc) rc = pthread_create(&ta, NULL, side_a, NULL);
    if (rc) die("pingpong: pthread_create: %s", strerror(rc));
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    printf("RESULT ns_per_op=%.1f round_trips=%d mode=%s\n", (double)elapsed / n, n, m);
    return 0;
}
