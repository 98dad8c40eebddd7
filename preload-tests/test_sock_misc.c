/* Assorted socket behaviour, with a runnable "ticker" thread beside (so waits can go green):
 *  - dup: a dup'd socket shares the original's state: data sent to the original's peer is read
 *    on the dup (also by a thread parked on the dup), O_NONBLOCK set on the original shows on
 *    the dup (recv EAGAIN at once), closing the original does not disturb a thread parked on
 *    the dup, nor closing a dup a thread parked on the original;
 *  - MSG_WAITALL gathers 100000 bytes that come in 10 chunks 10 ms apart; MSG_WAITALL for 100
 *    bytes returns the 5 that came before the peer closed;
 *  - read(fd, buf, 0) and readv of a zero-length iovec on an empty blocking socket return 0 at
 *    once (Linux's sock_read_iter), as on a pipe;
 *  - MSG_PEEK waits for data, then read returns the same bytes;
 *  - sendfile of a 4 MiB regular file to a TCP socket (with an offset pointer: the file position
 *    stays, the offset advances; without: the file position advances), a reader thread checks
 *    every byte; the socket is blocking afterwards;
 *  - writev of 5 iovecs / readv into 3 on a socket, the reader parked first;
 *  - the fortified entry points (this file is built with _FORTIFY_SOURCE=2 when optimised):
 *    read -> __read_chk, recv -> __recv_chk, recvfrom -> __recvfrom_chk park green too;
 *  - under the preload: the ticker runs while a recv waits (SO_RCVTIMEO 200 ms); and this
 *    program re-run with GREENWORLD_SOCKET=0: greenworld_is_monkey_patched("socket"/"recv") = 0,
 *    ("read") = 1, threads still green (1 OS thread), a recv with SO_RCVTIMEO 200 ms blocks
 *    the whole OS thread (the ticker does not tick), and a socketpair echo between two threads
 *    works when every read has its data already there (write first, then read).
 */
#if !defined(_FORTIFY_SOURCE) && defined(__OPTIMIZE__)
#define _FORTIFY_SOURCE 2
#endif
#include "gwtest.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>

static volatile size_t g_len64 = 64; /* not a constant: fortified calls go to the _chk versions */

enum how { HOW_READ, HOW_RECV, HOW_RECVFROM };

struct waiter {
    int fd;
    enum how how;
    char buf[64];
    ssize_t n;
    int err;
    long long ms;
};

static void *waiter_main(void *arg) {
    struct waiter *w = arg;
    char local[64]; /* a buffer of known size: the fortified calls check against it */
    long long t0 = gw_now_ns();
    errno = 0;
    switch (w->how) {
    case HOW_READ: w->n = read(w->fd, local, g_len64); break;
    case HOW_RECV: w->n = recv(w->fd, local, g_len64, 0); break;
    case HOW_RECVFROM: w->n = recvfrom(w->fd, local, g_len64, 0, NULL, NULL); break;
    }
    w->err = errno;
    if (w->n > 0) memcpy(w->buf, local, (size_t)w->n);
    w->ms = gw_ms_since(t0);
    return NULL;
}

static void start_waiter(pthread_t *t, struct waiter *w, int fd, enum how how) {
    memset(w, 0, sizeof *w);
    w->fd = fd;
    w->how = how;
    w->n = -2;
    CHECK_EQ(pthread_create(t, NULL, waiter_main, w), 0);
    usleep(50000);
    CHECK(w->n == -2, "the waiter did not wait: %zd (%s)", w->n, strerror(w->err));
}

static void finish_waiter(pthread_t t, struct waiter *w, const char *want, const char *what) {
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(w->n == (ssize_t)strlen(want) && !memcmp(w->buf, want, strlen(want)),
          "%s: got %zd (%s)", what, w->n, w->n < 0 ? strerror(w->err) : "");
}

struct chunk_sender {
    int fd, chunks, chunk, gap_ms;
    const unsigned char *data;
    int ok;
};

static void *chunk_sender_main(void *arg) {
    struct chunk_sender *s = arg;
    s->ok = 1;
    for (int i = 0; i < s->chunks; i++) {
        usleep((useconds_t)s->gap_ms * 1000);
        if (send(s->fd, s->data + (size_t)i * (size_t)s->chunk, (size_t)s->chunk, 0) != s->chunk)
            s->ok = 0;
    }
    return NULL;
}

struct zero_read {
    int fd, vectored;
    volatile ssize_t n;
};

static void *zero_read_main(void *arg) {
    struct zero_read *z = arg;
    char b[1];
    struct iovec iov = {b, 0};
    z->n = z->vectored ? readv(z->fd, &iov, 1) : read(z->fd, b, 0);
    return NULL;
}

/* A zero-length read on fd (nothing to read) must return 0 at once. Done in a thread so a
 * wrong wait shows as a failure here rather than a hang. */
static void check_zero_read(int fd, int vectored, const char *what) {
    struct zero_read z = {fd, vectored, -2};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, zero_read_main, &z), 0);
    for (int i = 0; i < 50 && z.n == -2; i++) usleep(10000);
    CHECK(z.n == 0, "%s of 0 bytes on an empty fd: %s", what,
          z.n == -2 ? "still waiting after 500 ms" : "did not return 0");
    CHECK_EQ(pthread_join(t, NULL), 0);
}

static unsigned char pat(long long i) { return (unsigned char)((i * 131) ^ (i >> 9)); }

struct sink {
    int fd;
    long long want, got;
    int bad;
};

static void *sink_main(void *arg) {
    struct sink *k = arg;
    static unsigned char buf[70001];
    while (k->got < k->want) {
        ssize_t n = read(k->fd, buf, sizeof buf);
        if (n <= 0) { k->bad = 1; break; }
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != pat(k->got + i)) { k->bad = 2; return NULL; }
        k->got += n;
    }
    return NULL;
}

static void sendfile_part(int with_offset) {
    char path[] = "/tmp/gw_sendfile_XXXXXX";
    int f = mkstemp(path);
    CHECK(f >= 0, "mkstemp: %s", strerror(errno));
    unlink(path);
    const long long size = 4 << 20;
    static unsigned char blk[65536];
    for (long long off = 0; off < size; off += (long long)sizeof blk) {
        for (size_t i = 0; i < sizeof blk; i++) blk[i] = pat(off + (long long)i);
        CHECK_EQ(write(f, blk, sizeof blk), sizeof blk);
    }
    CHECK_EQ(lseek(f, 0, SEEK_SET), 0);
    int fds[2];
    gw_tcp_pair(fds);
    struct sink k = {.fd = fds[0], .want = size};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, sink_main, &k), 0);
    off_t off = 0;
    long long sent = 0;
    int calls = 0;
    while (sent < size) {
        ssize_t n = sendfile(fds[1], f, with_offset ? &off : NULL, (size_t)(size - sent));
        CHECK(n > 0, "sendfile after %lld bytes: %zd (%s)", sent, n, strerror(errno));
        sent += n;
        calls++;
    }
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(k.bad == 0, "sendfile reader: %s", k.bad == 1 ? "short read" : "wrong byte");
    CHECK_EQ(k.got, size);
    if (with_offset) {
        CHECK_EQ(off, size);
        CHECK_EQ(lseek(f, 0, SEEK_CUR), 0);
    } else {
        CHECK_EQ(lseek(f, 0, SEEK_CUR), size);
    }
    CHECK_EQ(fcntl(fds[1], F_GETFL), O_RDWR);
    close(f);
    close(fds[0]);
    close(fds[1]);
    printf("sock_misc: sendfile %s offset: 4 MiB in %d call(s)\n", with_offset ? "with" : "without",
           calls);
}

/* The GREENWORLD_SOCKET=0 child (under the preload only). */
static void *echo_main(void *arg) {
    int fd = *(int *)arg;
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf); /* data is already there */
    if (n > 0 && write(fd, buf, (size_t)n) == n) return (void *)(intptr_t)n;
    return (void *)-1;
}

static int nosocket_child(void) {
    CHECK_EQ(gw_patched("socket"), 0);
    CHECK_EQ(gw_patched("recv"), 0);
    CHECK_EQ(gw_patched("connect"), 0);
    CHECK_EQ(gw_patched("read"), 1);
    CHECK_EQ(gw_patched("os"), 1);
    CHECK_EQ(gw_patched("thread"), 1);
    pthread_t ticker;
    CHECK_EQ(pthread_create(&ticker, NULL, gw_ticker, NULL), 0);
    usleep(20000);
    CHECK(gw_ticks > 0, "the ticker did not start");
    CHECK_EQ(gw_os_threads(), 1);
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    /* a plain blocking recv: the OS thread sleeps, no green thread runs */
    struct timeval tv = {0, 200000};
    CHECK_EQ(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    char buf[64];
    long t0 = gw_ticks;
    long long s0 = gw_now_ns();
    errno = 0;
    CHECK_EQ(recv(sv[0], buf, sizeof buf, 0), -1);
    CHECK(errno == EAGAIN, "recv: %s", strerror(errno));
    long long ms = gw_ms_since(s0);
    CHECK(ms >= 190, "recv timed out after %lld ms", ms);
    /* At several hubs the ticker may have started on another hub (placed at its first run:
     * README, Several hubs): it may tick meanwhile, but not on the OS thread in recv. */
    int ticker_elsewhere = gw_hubs() > 1 && gw_ticker_tid != (pid_t)syscall(SYS_gettid);
    CHECK(gw_ticks == t0 || ticker_elsewhere, "the ticker ticked %ld times during an unpatched recv",
          gw_ticks - t0);
    t0 = gw_ticks;
    errno = 0;
    CHECK_EQ(read(sv[0], buf, sizeof buf), -1);
    CHECK(errno == EAGAIN, "read: %s", strerror(errno));
    CHECK(gw_ticks == t0 || ticker_elsewhere,
          "the ticker ticked %ld times during a read on an unpatched socket", gw_ticks - t0);
    /* echo: write first, then the echo thread reads what is there */
    CHECK_EQ(write(sv[0], "ping", 4), 4);
    pthread_t e;
    CHECK_EQ(pthread_create(&e, NULL, echo_main, &sv[1]), 0);
    void *ret;
    CHECK_EQ(pthread_join(e, &ret), 0);
    CHECK(ret == (void *)4, "echo thread: %ld", (long)(intptr_t)ret);
    CHECK_EQ(read(sv[0], buf, sizeof buf), 4);
    CHECK(!memcmp(buf, "ping", 4), "echo content");
    gw_ticker_stop = 1;
    CHECK_EQ(pthread_join(ticker, NULL), 0);
    CHECK_EQ(gw_os_threads(), 1);
    printf("nosocket ok\n");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);
    gw_watchdog("sock_misc", 13);
    if (argc == 2 && !strcmp(argv[1], "--nosocket")) return nosocket_child();
    const int green = gw_preloaded();
    pthread_t ticker;
    CHECK_EQ(pthread_create(&ticker, NULL, gw_ticker, NULL), 0);
    usleep(10000);

    /* dup */
    gw_phase = "dup";
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int d = dup(sv[0]);
    CHECK(d >= 0, "dup: %s", strerror(errno));
    char buf[100000];
    CHECK_EQ(send(sv[1], "one", 3, 0), 3);
    CHECK_EQ(read(d, buf, sizeof buf), 3);
    CHECK(!memcmp(buf, "one", 3), "read on the dup");
    pthread_t t;
    struct waiter w;
    start_waiter(&t, &w, d, HOW_RECV);
    CHECK_EQ(send(sv[1], "two", 3, 0), 3);
    finish_waiter(t, &w, "two", "thread parked on the dup");
    CHECK_EQ(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    CHECK_EQ(fcntl(d, F_GETFL), O_RDWR | O_NONBLOCK);
    long long t0 = gw_now_ns();
    errno = 0;
    CHECK_EQ(recv(d, buf, 10, 0), -1);
    CHECK(errno == EAGAIN, "recv on the dup of a non-blocking socket: %s", strerror(errno));
    CHECK(gw_ms_since(t0) < 500, "EAGAIN not at once");
    CHECK_EQ(fcntl(d, F_SETFL, 0), 0);
    CHECK_EQ(fcntl(sv[0], F_GETFL), O_RDWR);
    start_waiter(&t, &w, sv[0], HOW_READ);
    close(d); /* a dup of the waiter's fd: the waiter keeps waiting */
    usleep(30000);
    CHECK(w.n == -2, "closing a dup woke the original's waiter: %zd (%s)", w.n, strerror(w.err));
    CHECK_EQ(send(sv[1], "three", 5, 0), 5);
    finish_waiter(t, &w, "three", "thread parked on the original after the dup's close");
    d = dup(sv[0]);
    start_waiter(&t, &w, d, HOW_READ);
    close(sv[0]); /* the original of the waiter's fd */
    usleep(30000);
    CHECK(w.n == -2, "closing the original woke the dup's waiter: %zd (%s)", w.n, strerror(w.err));
    CHECK_EQ(send(sv[1], "four", 4, 0), 4);
    finish_waiter(t, &w, "four", "thread parked on the dup after the original's close");
    close(d);
    close(sv[1]);

    /* MSG_WAITALL */
    gw_phase = "MSG_WAITALL";
    static unsigned char data[100000];
    for (int i = 0; i < 100000; i++) data[i] = pat(i);
    gw_tcp_pair(sv);
    struct chunk_sender cs = {.fd = sv[1], .chunks = 10, .chunk = 10000, .gap_ms = 10, .data = data};
    CHECK_EQ(pthread_create(&t, NULL, chunk_sender_main, &cs), 0);
    t0 = gw_now_ns();
    ssize_t n = recv(sv[0], buf, 100000, MSG_WAITALL);
    long long ms = gw_ms_since(t0);
    CHECK(n == 100000, "MSG_WAITALL returned %zd (%s)", n, n < 0 ? strerror(errno) : "");
    CHECK(!memcmp(buf, data, 100000), "MSG_WAITALL content");
    CHECK(ms >= 80, "MSG_WAITALL returned after %lld ms", ms);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(cs.ok, 1);

    gw_phase = "MSG_WAITALL then EOF";
    {
        int ep[2];
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, ep), 0);
        CHECK_EQ(send(ep[1], "12345", 5, 0), 5);
        pthread_t ct = gw_close_later(ep[1], 50);
        t0 = gw_now_ns();
        n = recv(ep[0], buf, 100, MSG_WAITALL);
        ms = gw_ms_since(t0);
        CHECK(n == 5 && !memcmp(buf, "12345", 5), "MSG_WAITALL then EOF: %zd", n);
        CHECK(ms >= 40, "MSG_WAITALL returned after %lld ms, before the peer closed", ms);
        CHECK_EQ(pthread_join(ct, NULL), 0);
        close(ep[0]);
    }

    /* MSG_PEEK */
    gw_phase = "MSG_PEEK";
    cs = (struct chunk_sender){.fd = sv[1], .chunks = 1, .chunk = 8, .gap_ms = 50,
                               .data = (const unsigned char *)"peekaboo"};
    CHECK_EQ(pthread_create(&t, NULL, chunk_sender_main, &cs), 0);
    t0 = gw_now_ns();
    n = recv(sv[0], buf, sizeof buf, MSG_PEEK);
    ms = gw_ms_since(t0);
    CHECK(n == 8 && !memcmp(buf, "peekaboo", 8), "MSG_PEEK: %zd", n);
    CHECK(ms >= 40, "MSG_PEEK returned after %lld ms: it did not wait", ms);
    memset(buf, 0, 16);
    CHECK_EQ(recv(sv[0], buf, 4, MSG_PEEK), 4);
    CHECK_EQ(read(sv[0], buf, sizeof buf), 8);
    CHECK(!memcmp(buf, "peekaboo", 8), "read after MSG_PEEK");
    CHECK_EQ(pthread_join(t, NULL), 0);
    close(sv[0]);
    close(sv[1]);

    /* sendfile */
    gw_phase = "sendfile";
    sendfile_part(1);
    sendfile_part(0);

    /* readv / writev */
    gw_phase = "readv/writev";
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    static char rv1[7], rv2[20000], rv3[50000];
    struct iovec riov[3] = {{rv1, sizeof rv1}, {rv2, sizeof rv2}, {rv3, sizeof rv3}};
    start_waiter(&t, &w, sv[0], HOW_RECV); /* a parked reader first: takes the first 64 bytes */
    struct iovec wiov[5] = {{data, 64}, {data + 64, 1}, {data + 65, 999}, {data + 1064, 20000},
                            {data + 21064, 5936}};
    CHECK_EQ(writev(sv[1], wiov, 5), 27000);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(w.n, 64);
    CHECK(!memcmp(w.buf, data, 64), "parked reader content");
    long long total = 64;
    while (total < 27000) {
        n = readv(sv[0], riov, 3);
        CHECK(n > 0, "readv: %zd (%s)", n, strerror(errno));
        size_t left = (size_t)n;
        for (int i = 0; i < 3 && left; i++) {
            size_t k = left < riov[i].iov_len ? left : riov[i].iov_len;
            CHECK(!memcmp(riov[i].iov_base, data + total, k), "readv content at %lld", total);
            total += (long long)k;
            left -= k;
        }
    }
    CHECK_EQ(total, 27000);
    close(sv[0]);
    close(sv[1]);

    /* fortified entry points */
    gw_phase = "fortified read/recv/recvfrom";
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    enum how hows[3] = {HOW_READ, HOW_RECV, HOW_RECVFROM};
    for (int i = 0; i < 3; i++) {
        long t_before = gw_ticks;
        start_waiter(&t, &w, sv[0], hows[i]);
        usleep(50000);
        CHECK_EQ(send(sv[1], "fortified", 9, 0), 9);
        finish_waiter(t, &w, "fortified", "fortified call");
        CHECK(w.ms >= 80, "fortified call %d returned after %lld ms", i, w.ms);
        CHECK(gw_ticks - t_before >= 10, "ticker ticked %ld times", gw_ticks - t_before);
    }
    int pp[2];
    CHECK_EQ(pipe(pp), 0);
    start_waiter(&t, &w, pp[0], HOW_READ);
    CHECK_EQ(write(pp[1], "pipe-chk", 8), 8);
    finish_waiter(t, &w, "pipe-chk", "fortified read on a pipe");
    close(pp[0]);
    close(pp[1]);

    /* the ticker runs during a recv that times out (green), then the GREENWORLD_SOCKET=0 run */
    gw_phase = "SO_RCVTIMEO with the ticker";
    struct timeval tv = {0, 200000};
    CHECK_EQ(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    long tk = gw_ticks;
    errno = 0;
    CHECK_EQ(recv(sv[0], buf, 10, 0), -1);
    CHECK(errno == EAGAIN, "recv with timeout: %s", strerror(errno));
    CHECK(gw_ticks - tk >= 10, "the ticker ticked %ld times during a 200 ms recv", gw_ticks - tk);
    close(sv[0]);
    close(sv[1]);

    gw_ticker_stop = 1;
    CHECK_EQ(pthread_join(ticker, NULL), 0);
    if (green) CHECK_EQ(gw_os_threads(), 1);

    if (green) {
        gw_phase = "GREENWORLD_SOCKET=0 child";
        const char *env[] = {"GREENWORLD_SOCKET=0", NULL};
        char out[4096];
        int st = gw_run_self(env, out, sizeof out, "--nosocket", NULL);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "GREENWORLD_SOCKET=0 child: status 0x%x: %s",
              st, out);
        CHECK(strstr(out, "nosocket ok") != NULL, "child output: %s", out);
    } else {
        printf("sock_misc: GREENWORLD_SOCKET=0 part runs under the preload only\n");
    }
    gw_phase = "zero-length reads";
    {
        int zp[2], zs[2];
        CHECK_EQ(pipe(zp), 0);
        check_zero_read(zp[0], 0, "read on a pipe");
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, zs), 0);
        check_zero_read(zs[0], 0, "read on a socket");
        check_zero_read(zs[0], 1, "readv on a socket");
        close(zp[0]);
        close(zp[1]);
        close(zs[0]);
        close(zs[1]);
    }

    printf("sock_misc: dup, MSG_WAITALL, MSG_PEEK, sendfile, readv/writev, _chk ok\n");
    return 0;
}
