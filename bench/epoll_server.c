/* epoll_server: the one-core limit for the echo protocol: a hand-written single-threaded
 * non-blocking epoll (level-triggered) echo server. Same command line and output as
 * echo_server: prints "PORT <n>" on stdout, then serves until killed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "bench.h"

struct pending { /* bytes read but not yet written back (rare: only when the send buffer is full) */
    char *data;
    size_t len;
};

static struct pending *pend;
static size_t npend;
static int ep;

static void drop(int fd) {
    if ((size_t)fd < npend) {
        free(pend[fd].data);
        pend[fd].data = NULL;
        pend[fd].len = 0;
    }
    close(fd); /* also removes it from the epoll set */
}

/* Write what is pending on fd; 1 when all is written, 0 when it must wait for EPOLLOUT. */
static int flush_fd(int fd, const char *buf, size_t len) {
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
    if ((size_t)fd >= npend) {
        size_t nn = (size_t)fd * 2 + 64;
        pend = realloc(pend, nn * sizeof *pend);
        if (!pend) die("epoll_server: out of memory");
        memset(pend + npend, 0, (nn - npend) * sizeof *pend);
        npend = nn;
    }
    char *copy = malloc(len - off);
    if (!copy) die("epoll_server: out of memory");
    memcpy(copy, buf + off, len - off);
    free(pend[fd].data);
    pend[fd].data = copy;
    pend[fd].len = len - off;
    struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    return 0;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
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
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    enum { MAXEV = 512 };
    static struct epoll_event evs[MAXEV];
    static char buf[4096];
    for (;;) {
        int n = epoll_wait(ep, evs, MAXEV, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_server: epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                for (;;) {
                    int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                    if (c < 0) break;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            if (evs[i].events & EPOLLOUT) { /* finish a pending write, then read again */
                int r = flush_fd(fd, pend[fd].data, pend[fd].len);
                if (r < 0) {
                    drop(fd);
                } else if (r > 0) {
                    free(pend[fd].data);
                    pend[fd].data = NULL;
                    pend[fd].len = 0;
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = fd};
                    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
                }
                continue;
            }
            ssize_t r = read(fd, buf, sizeof buf);
            if (r > 0) {
                if (flush_fd(fd, buf, (size_t)r) < 0) drop(fd);
            } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                drop(fd);
            }
        }
    }
}
