/* A SIGURG the program ignores does not cut a socket call with a timeout short. The kernel never
 * restarts recv, accept, send… after a handler when the socket has SO_RCVTIMEO/SO_SNDTIMEO, even
 * with SA_RESTART (signal(7)); under the preload the library's handler runs for every SIGURG, so
 * a plain call (GREENWORLD_SOCKET=0 here) must be made again for the time left.
 * A child sends SIGURG in bursts (64, then 20 us) while three threads each make calls that
 * time out after 100 ms, each kind twice: recv, read, readv, recvfrom, recvmsg, recvmmsg and
 * the fortified __recv_chk and __recvfrom_chk on an idle socketpair (SO_RCVTIMEO), accept on
 * an idle listener on 127.0.0.1 (SO_RCVTIMEO), send, write, writev, sendto, sendmsg, sendmmsg,
 * sendfile and sendfile64 (from a memfd) on a full socketpair (SO_SNDTIMEO); a fourth
 * connects with SO_SNDTIMEO to a listener whose backlog is full. Each returns -1 EAGAIN
 * (connect: EINPROGRESS), not before its timeout (a lower bound only: natively it is never
 * shorter).
 * Preloaded, it runs itself again with GREENWORLD_SOCKET=0 (the calls plain). */
#include "gwtest.h"
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/uio.h>

/* What a fortified recv/recvfrom becomes when the length is not known at compile time. */
extern ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
extern ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
                              struct sockaddr *addr, socklen_t *alen);

#define ROUNDS 6
#define TIMEOUT_MS 100
static atomic_int done;
/* The calls start once main has made every thread: while glibc's pthread_create blocks every
 * signal in main, the kernel queues a SIGURG sent to the process instead of discarding it, and
 * natively it then ends another thread's recv with EINTR (signal(7): no restart with a
 * timeout), no handler run. */
static pthread_barrier_t made;

static void set_timeout(int fd, int option) {
    struct timeval tv = {0, TIMEOUT_MS * 1000};
    CHECK_EQ(setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv), 0);
}

static void check_timed_out(const char *what, long long rc, long long t0) {
    long long ms = gw_ms_since(t0);
    CHECK(rc == -1 && (errno == EAGAIN || errno == EWOULDBLOCK),
          "%s returned %lld (errno %d: %s) after %lld ms", what, rc, errno, strerror(errno), ms);
    CHECK(ms >= TIMEOUT_MS - 1, "%s timed out after %lld ms, before its %d ms", what, ms, TIMEOUT_MS);
}

/* One call of kind `kind` on the idle socket `fd`; its name in `what`. */
#define RECV_KINDS 8
static long long receive(int kind, int fd, const char **what) {
    char c;
    struct iovec v = {&c, 1};
    struct mmsghdr mm = {.msg_hdr = {.msg_iov = &v, .msg_iovlen = 1}};
    switch (kind) {
    case 0: *what = "recv"; return recv(fd, &c, 1, 0);
    case 1: *what = "read"; return read(fd, &c, 1);
    case 2: *what = "readv"; return readv(fd, &v, 1);
    case 3: *what = "recvfrom"; return recvfrom(fd, &c, 1, 0, NULL, NULL);
    case 4: *what = "recvmsg"; return recvmsg(fd, &mm.msg_hdr, 0);
    case 5: *what = "recvmmsg"; return recvmmsg(fd, &mm, 1, 0, NULL);
    case 6: *what = "__recv_chk"; return __recv_chk(fd, &c, 1, 1, 0);
    default: *what = "__recvfrom_chk"; return __recvfrom_chk(fd, &c, 1, 1, 0, NULL, NULL);
    }
}

static void *receiver(void *arg) {
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    set_timeout(sv[0], SO_RCVTIMEO);
    pthread_barrier_wait(&made);
    for (int i = 0; i < 2 * RECV_KINDS; i++) {
        const char *what;
        long long t0 = gw_now_ns();
        long long rc = receive(i % RECV_KINDS, sv[0], &what);
        check_timed_out(what, rc, t0);
    }
    close(sv[0]);
    close(sv[1]);
    atomic_fetch_add(&done, 1);
    return arg;
}

static void *acceptor(void *arg) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(l >= 0, "socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(listen(l, 4), 0);
    set_timeout(l, SO_RCVTIMEO);
    pthread_barrier_wait(&made);
    for (int i = 0; i < ROUNDS; i++) {
        long long t0 = gw_now_ns();
        check_timed_out("accept", accept(l, NULL, NULL), t0);
    }
    close(l);
    atomic_fetch_add(&done, 1);
    return arg;
}

/* One call of kind `kind` of a chunk to the full socket `fd` (sendfile's from the file `in`);
 * its name in `what`. */
#define SEND_KINDS 8
static char chunk[4096];
static long long send_one(int kind, int fd, int in, const char **what) {
    struct iovec v = {chunk, sizeof chunk};
    struct mmsghdr mm = {.msg_hdr = {.msg_iov = &v, .msg_iovlen = 1}};
    off_t at = 0;
    switch (kind) {
    case 0: *what = "send"; return send(fd, chunk, sizeof chunk, 0);
    case 1: *what = "write"; return write(fd, chunk, sizeof chunk);
    case 2: *what = "writev"; return writev(fd, &v, 1);
    case 3: *what = "sendto"; return sendto(fd, chunk, sizeof chunk, 0, NULL, 0);
    case 4: *what = "sendmsg"; return sendmsg(fd, &mm.msg_hdr, 0);
    case 5: *what = "sendmmsg"; return sendmmsg(fd, &mm, 1, 0);
    case 6: *what = "sendfile"; return sendfile(fd, in, &at, sizeof chunk);
    default: {
        off64_t at64 = 0;
        *what = "sendfile64";
        return sendfile64(fd, in, &at64, sizeof chunk);
    }
    }
}

static void *sender(void *arg) {
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    while (send(sv[0], chunk, sizeof chunk, MSG_DONTWAIT) > 0) {
    }
    CHECK(errno == EAGAIN || errno == EWOULDBLOCK, "filling: errno %d", errno);
    set_timeout(sv[0], SO_SNDTIMEO);
    int in = memfd_create("chunk", MFD_CLOEXEC);
    CHECK(in >= 0, "memfd_create: errno %d", errno);
    CHECK_EQ(write(in, chunk, sizeof chunk), (ssize_t)sizeof chunk);
    pthread_barrier_wait(&made);
    for (int i = 0; i < 2 * SEND_KINDS; i++) {
        const char *what;
        long long t0 = gw_now_ns();
        long long rc = send_one(i % SEND_KINDS, sv[0], in, &what);
        check_timed_out(what, rc, t0);
    }
    close(in);
    close(sv[0]);
    close(sv[1]);
    atomic_fetch_add(&done, 1);
    return arg;
}

/* connect to a listener whose backlog is full: the kernel drops the SYN, and a blocking connect
 * with SO_SNDTIMEO ends with EINPROGRESS at the timeout (the connection goes on). A kernel that
 * lets it connect tests nothing here and fails nothing. */
static void *connector(void *arg) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(l >= 0, "socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(listen(l, 0), 0);
    socklen_t alen = sizeof a;
    CHECK_EQ(getsockname(l, (struct sockaddr *)&a, &alen), 0);
    int fill[3];
    for (int i = 0; i < 3; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        CHECK(fill[i] >= 0, "socket");
        connect(fill[i], (struct sockaddr *)&a, sizeof a);
    }
    pthread_barrier_wait(&made);
    for (int i = 0; i < ROUNDS; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        CHECK(c >= 0, "socket");
        set_timeout(c, SO_SNDTIMEO);
        long long t0 = gw_now_ns();
        int rc = connect(c, (struct sockaddr *)&a, sizeof a);
        long long ms = gw_ms_since(t0);
        CHECK(rc == 0 || (rc == -1 && errno == EINPROGRESS),
              "connect returned %d (errno %d: %s) after %lld ms", rc, errno, strerror(errno), ms);
        CHECK(rc == 0 || ms >= TIMEOUT_MS - 1, "connect timed out after %lld ms, before its %d ms",
              ms, TIMEOUT_MS);
        close(c);
    }
    for (int i = 0; i < 3; i++) close(fill[i]);
    close(l);
    atomic_fetch_add(&done, 1);
    return arg;
}

static void variants(void) {
    const char *env[] = {"GREENWORLD_SOCKET=0", "GW_IGNORED_SIGNAL_VARIANT=1", NULL};
    char *argv[] = {(char *)gw_self(), NULL};
    static char out[8192];
    int status = gw_run(env, argv, out, sizeof out);
    CHECK(gw_exit_code(status) == 0, "with GREENWORLD_SOCKET=0: status %d:\n%s", status, out);
}

int main(void) {
    if (gw_preloaded() && !getenv("GW_IGNORED_SIGNAL_VARIANT")) variants();
    int stop[2];
    CHECK_EQ(pipe(stop), 0);
    pid_t parent = getpid();
    pid_t child = fork();
    CHECK(child >= 0, "fork");
    if (child == 0) {
        close(stop[1]);
        CHECK_EQ(fcntl(stop[0], F_SETFL, O_NONBLOCK), 0);
        char c;
        long long t0 = gw_now_ns();
        /* Until main closes the pipe (read returns 0), or 60 s at most. */
        while (read(stop[0], &c, 1) < 0 && gw_ms_since(t0) < 60000) {
            for (int i = 0; i < 64; i++)
                if (kill(parent, SIGURG) != 0) _exit(0);
            struct timespec gap = {0, 20000};
            nanosleep(&gap, NULL);
        }
        _exit(0);
    }
    close(stop[0]);
    pthread_t t[4];
    CHECK_EQ(pthread_barrier_init(&made, NULL, 5), 0);
    CHECK_EQ(pthread_create(&t[0], NULL, receiver, NULL), 0);
    CHECK_EQ(pthread_create(&t[1], NULL, acceptor, NULL), 0);
    CHECK_EQ(pthread_create(&t[2], NULL, sender, NULL), 0);
    CHECK_EQ(pthread_create(&t[3], NULL, connector, NULL), 0);
    pthread_barrier_wait(&made);
    for (int k = 0; k < 4; k++) CHECK_EQ(pthread_join(t[k], NULL), 0);
    CHECK_EQ(atomic_load(&done), 4);
    close(stop[1]);
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    return 0;
}
