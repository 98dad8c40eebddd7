/* epoll_server: the limit for the echo protocol: a hand-written non-blocking epoll
 * (level-triggered) echo server. Same output as echo_server: prints "PORT <n>" on stdout, then
 * serves until killed.
 *   epoll_server [PORT [LOOPS]]   (LOOPS: event loops, default 1: one thread, the one-core
 *                                  limit. With N > 1, N threads each wait on their own epoll
 *                                  instance; the first also accepts and deals the connections
 *                                  round-robin, as a thread-per-connection server's acceptor
 *                                  places its threads over GREENWORLD_HUBS=N hubs.) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "bench.h"

struct pending { /* bytes read but not yet written back (rare: only when the send buffer is full) */
    char *data;
    size_t len;
};

/* One event loop: its epoll instance and the pending writes of the connections dealt to it
 * (a connection belongs to one loop for its life, so nothing here is shared). */
struct loop {
    int ep;
    struct pending *pend;
    size_t npend;
};

static int lfd = -1;
static struct loop *loops;
static int nloops = 1;

static void drop(struct loop *l, int fd) {
    if ((size_t)fd < l->npend) {
        free(l->pend[fd].data);
        l->pend[fd].data = NULL;
        l->pend[fd].len = 0;
    }
    close(fd); /* also removes it from the epoll set */
}

/* Write what is pending on fd; 1 when all is written, 0 when it must wait for EPOLLOUT. */
static int flush_fd(struct loop *l, int fd, const char *buf, size_t len) {
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        return -1;
    }
    if (off == len) return 1;
    if ((size_t)fd >= l->npend) {
        size_t nn = (size_t)fd * 2 + 64;
        l->pend = realloc(l->pend, nn * sizeof *l->pend);
        if (!l->pend) die("epoll_server: out of memory");
        memset(l->pend + l->npend, 0, (nn - l->npend) * sizeof *l->pend);
        l->npend = nn;
    }
    char *copy = malloc(len - off);
    if (!copy) die("epoll_server: out of memory");
    memcpy(copy, buf + off, len - off);
    free(l->pend[fd].data);
    l->pend[fd].data = copy;
    l->pend[fd].len = len - off;
    struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
    epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &ev);
    return 0;
}

/* Accepts every waiting connection; the k-th goes to loop k mod nloops (an epoll_ctl on another
 * loop's instance wakes that loop when the connection is readable: no other hand-off). */
static void accept_all(void) {
    static unsigned next;
    int one = 1;
    for (;;) {
        int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (c < 0) break;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
        epoll_ctl(loops[next++ % (unsigned)nloops].ep, EPOLL_CTL_ADD, c, &cev);
    }
}

static void *run_loop(void *arg) {
    struct loop *l = arg;
    enum { MAXEV = 512 };
    struct epoll_event *evs = malloc(MAXEV * sizeof *evs);
    char *buf = malloc(4096);
    if (!evs || !buf) die("epoll_server: out of memory");
    for (;;) {
        int n = epoll_wait(l->ep, evs, MAXEV, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_server: epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                accept_all();
                continue;
            }
            if (evs[i].events & EPOLLOUT) { /* finish a pending write, then read again */
                int r = flush_fd(l, fd, l->pend[fd].data, l->pend[fd].len);
                if (r < 0) {
                    drop(l, fd);
                } else if (r > 0) {
                    free(l->pend[fd].data);
                    l->pend[fd].data = NULL;
                    l->pend[fd].len = 0;
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = fd};
                    epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &cev);
                }
                continue;
            }
            ssize_t r = read(fd, buf, 4096);
            if (r > 0) {
                if (flush_fd(l, fd, buf, (size_t)r) < 0) drop(l, fd);
            } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                drop(l, fd);
            }
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    nloops = argc > 2 ? atoi(argv[2]) : 1;
    if (nloops < 1) die("epoll_server: LOOPS must be at least 1, not %s", argv[2]);
    signal(SIGPIPE, SIG_IGN);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    if (lfd < 0) die("epoll_server: socket: %s", strerror(errno));
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa)) die("epoll_server: bind: %s", strerror(errno));
    if (listen(lfd, 4096)) die("epoll_server: listen: %s", strerror(errno));
    socklen_t len = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    printf("PORT %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    loops = calloc((size_t)nloops, sizeof *loops);
    if (!loops) die("epoll_server: out of memory");
    for (int i = 0; i < nloops; i++)
        if ((loops[i].ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
            die("epoll_server: epoll_create1: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(loops[0].ep, EPOLL_CTL_ADD, lfd, &ev);
    for (int i = 1; i < nloops; i++) { /* the first loop is this thread's, with the listener */
        pthread_t t;
        int e = pthread_create(&t, NULL, run_loop, &loops[i]);
        if (e) die("epoll_server: pthread_create: %s", strerror(e));
    }
    run_loop(&loops[0]);
}
