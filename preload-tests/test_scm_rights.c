/* Descriptors passed between threads with SCM_RIGHTS work like any other, and green:
 *  - thread B parks in recvmsg on an AF_UNIX socketpair until main sends (50 ms later) a pipe's
 *    read end and a socket (one message, two fds, MSG_CMSG_CLOEXEC on the receiving side); main
 *    then closes its own copies, so the received fds are the only references;
 *  - the received fds have the right flags (O_RDONLY / O_RDWR, FD_CLOEXEC from MSG_CMSG_CLOEXEC);
 *  - B's blocking read on the received pipe waits until main writes 100 ms later, while a
 *    ticker thread keeps running; B's blocking recv on the received socket waits likewise, then
 *    B answers on it; B also sends main the write end of a pipe of its own, main receives it
 *    (parked in recvmsg) and writes through it, B reads it;
 *  - EOF comes through the received pipe when main closes the write end;
 *  - a pipe read end that the sender had made O_NONBLOCK arrives non-blocking: F_GETFL shows
 *    O_NONBLOCK and read says EAGAIN at once (the open file description is shared).
 */
#include "gwtest.h"
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>

static void send_fds(int ch, const int *fds, int n, char tag) {
    char cbuf[CMSG_SPACE(4 * sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {&tag, 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = CMSG_SPACE((size_t)n * sizeof(int))};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
    memcpy(CMSG_DATA(c), fds, (size_t)n * sizeof(int));
    CHECK(sendmsg(ch, &mh, 0) == 1, "sendmsg SCM_RIGHTS: %s", strerror(errno));
}

/* Receives one message with up to 4 fds; returns how many, checks the tag byte. */
static int recv_fds(int ch, int *fds, char want_tag, int flags) {
    char cbuf[CMSG_SPACE(4 * sizeof(int))];
    char tag = 0;
    struct iovec iov = {&tag, 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf};
    ssize_t r = recvmsg(ch, &mh, flags);
    CHECK(r == 1, "recvmsg: %zd (%s)", r, r < 0 ? strerror(errno) : "");
    CHECK(tag == want_tag, "tag %c, want %c", tag, want_tag);
    CHECK(!(mh.msg_flags & MSG_CTRUNC), "control data truncated");
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    CHECK(c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS, "no SCM_RIGHTS");
    int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    memcpy(fds, CMSG_DATA(c), (size_t)n * sizeof(int));
    return n;
}

struct peer_b {
    int ch;
    int bad;
    char what[200];
    long ticks_in_pipe_read;
    long long pipe_wait_ms, sock_wait_ms;
    int got_pipe_eof;
};

#define B_FAIL(...)                                                                           \
    do {                                                                                      \
        snprintf(b->what, sizeof b->what, __VA_ARGS__);                                       \
        b->bad = 1;                                                                           \
        return NULL;                                                                          \
    } while (0)

static void *b_main(void *arg) {
    struct peer_b *b = arg;
    int fds[4];
    int n = recv_fds(b->ch, fds, 'A', MSG_CMSG_CLOEXEC);
    if (n != 2) B_FAIL("received %d fds", n);
    int rp = fds[0], rs = fds[1];
    if (fcntl(rp, F_GETFL) != O_RDONLY) B_FAIL("received pipe F_GETFL 0x%x", fcntl(rp, F_GETFL));
    if (fcntl(rs, F_GETFL) != O_RDWR) B_FAIL("received socket F_GETFL 0x%x", fcntl(rs, F_GETFL));
    if (fcntl(rp, F_GETFD) != FD_CLOEXEC || fcntl(rs, F_GETFD) != FD_CLOEXEC)
        B_FAIL("MSG_CMSG_CLOEXEC not applied");

    /* blocking read on the received pipe: main writes 100 ms later */
    char buf[64];
    long t0 = gw_ticks;
    long long s0 = gw_now_ns();
    ssize_t r = read(rp, buf, sizeof buf);
    b->pipe_wait_ms = gw_ms_since(s0);
    b->ticks_in_pipe_read = gw_ticks - t0;
    if (r != 9 || memcmp(buf, "via-pipe!", 9)) B_FAIL("read on received pipe: %zd", r);

    /* blocking recv on the received socket */
    s0 = gw_now_ns();
    r = recv(rs, buf, sizeof buf, 0);
    b->sock_wait_ms = gw_ms_since(s0);
    if (r != 11 || memcmp(buf, "via-socket!", 11)) B_FAIL("recv on received socket: %zd", r);
    if (send(rs, "pong", 4, 0) != 4) B_FAIL("send on received socket: %s", strerror(errno));

    /* hand main a pipe write end of our own */
    int mine[2];
    if (pipe(mine) != 0) B_FAIL("pipe: %s", strerror(errno));
    send_fds(b->ch, &mine[1], 1, 'B');
    close(mine[1]);
    r = read(mine[0], buf, sizeof buf);
    if (r != 4 || memcmp(buf, "back", 4)) B_FAIL("read of what main wrote through our pipe: %zd", r);
    r = read(mine[0], buf, sizeof buf);
    if (r != 0) B_FAIL("no EOF on our pipe: %zd", r);
    close(mine[0]);

    /* EOF through the received pipe */
    r = read(rp, buf, sizeof buf);
    if (r != 0) B_FAIL("received pipe: %zd instead of EOF", r);
    b->got_pipe_eof = 1;
    close(rp);
    close(rs);
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);
    gw_watchdog("scm_rights", 12);
    pthread_t ticker;
    CHECK_EQ(pthread_create(&ticker, NULL, gw_ticker, NULL), 0);

    int ch[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, ch), 0);
    struct peer_b b = {.ch = ch[1]};
    pthread_t bt;
    gw_phase = "passing a pipe and a socket";
    CHECK_EQ(pthread_create(&bt, NULL, b_main, &b), 0);
    usleep(50000); /* B parks in recvmsg */

    int p[2], s[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
    int give[2] = {p[0], s[0]};
    send_fds(ch[0], give, 2, 'A');
    close(p[0]);
    close(s[0]);
    usleep(100000);
    CHECK_EQ(write(p[1], "via-pipe!", 9), 9);
    usleep(100000);
    CHECK_EQ(send(s[1], "via-socket!", 11, 0), 11);
    char buf[64];
    CHECK_EQ(recv(s[1], buf, sizeof buf, 0), 4);
    CHECK(!memcmp(buf, "pong", 4), "answer through the passed socket");

    gw_phase = "receiving B's pipe";
    int back[4];
    CHECK_EQ(recv_fds(ch[0], back, 'B', 0), 1);
    CHECK_EQ(fcntl(back[0], F_GETFL), O_WRONLY);
    CHECK_EQ(fcntl(back[0], F_GETFD), 0);
    usleep(50000);
    CHECK_EQ(write(back[0], "back", 4), 4);
    close(back[0]);
    usleep(50000);
    close(p[1]); /* EOF for B's received pipe */
    CHECK_EQ(pthread_join(bt, NULL), 0);
    CHECK(!b.bad, "thread B: %s", b.what);
    CHECK_EQ(b.got_pipe_eof, 1);
    CHECK(b.pipe_wait_ms >= 60, "B's read on the received pipe returned after %lld ms",
          b.pipe_wait_ms);
    CHECK(b.sock_wait_ms >= 60, "B's recv on the received socket returned after %lld ms",
          b.sock_wait_ms);
    CHECK(b.ticks_in_pipe_read >= 10, "the ticker ticked %ld times while B waited",
          b.ticks_in_pipe_read);
    close(s[1]);

    gw_phase = "passing a non-blocking pipe";
    int np[2];
    CHECK_EQ(pipe(np), 0);
    CHECK_EQ(fcntl(np[0], F_SETFL, O_NONBLOCK), 0);
    send_fds(ch[0], &np[0], 1, 'N');
    close(np[0]);
    int got[4];
    CHECK_EQ(recv_fds(ch[1], got, 'N', 0), 1);
    CHECK_EQ(fcntl(got[0], F_GETFL), O_RDONLY | O_NONBLOCK);
    long long t0 = gw_now_ns();
    errno = 0;
    CHECK_EQ(read(got[0], buf, sizeof buf), -1);
    CHECK(errno == EAGAIN, "read on the received non-blocking pipe: %s", strerror(errno));
    CHECK(gw_ms_since(t0) < 500, "EAGAIN was not at once");
    CHECK_EQ(write(np[1], "nb", 2), 2);
    CHECK_EQ(read(got[0], buf, sizeof buf), 2);
    close(got[0]);
    close(np[1]);

    gw_ticker_stop = 1;
    CHECK_EQ(pthread_join(ticker, NULL), 0);
    close(ch[0]);
    close(ch[1]);
    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1);
    printf("scm_rights: pipe and socket passed; B waited %lld ms (pipe) and %lld ms (socket), "
           "ticker %ld ticks meanwhile\n",
           b.pipe_wait_ms, b.sock_wait_ms, b.ticks_in_pipe_read);
    return 0;
}
