/* An unmodified single-threaded non-blocking epoll echo server, in one thread of the process,
 * beside 50 client threads using plain blocking sockets: 100 round trips each, every byte
 * checked. The server knows nothing of green threads: its own epoll instance, non-blocking
 * listening and connected sockets, EAGAIN handling, EPOLLOUT when a reply does not fit.
 * Four rounds, one per way of waiting and trigger mode:
 *   epoll_wait(-1) level-triggered, epoll_pwait(-1, mask) edge-triggered,
 *   epoll_pwait2(NULL) level-triggered, epoll_wait(-1) edge-triggered.
 * The server ends when every client has connected and hung up; clients check that each echo
 * equals what they sent (sizes 1..3000 bytes, content depending on client, round and offset).
 * Under the preload the whole thing runs on one OS thread.
 */
#include "gwtest.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define CLIENTS 50
#define ROUNDS 100
#define MAXMSG 3000

enum wait_kind { WAIT, PWAIT, PWAIT2 };

struct conn {
    int fd;
    char buf[8192]; /* bytes read but not yet echoed */
    size_t len;
    int want_out; /* EPOLLOUT registered */
};

struct server {
    int listen_fd;
    enum wait_kind kind;
    int edge;
    int port;
    /* results */
    int accepted, closed, errors, max_tasks;
    long long echoed;
};

static int wait_events(struct server *s, int ep, struct epoll_event *ev, int max) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR2);
    switch (s->kind) {
    case WAIT: return epoll_wait(ep, ev, max, -1);
    case PWAIT: return epoll_pwait(ep, ev, max, -1, &mask);
    case PWAIT2: return epoll_pwait2(ep, ev, max, NULL, NULL);
    }
    return -1;
}

static void set_events(struct server *s, int ep, struct conn *c, int out) {
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0) | (s->edge ? EPOLLET : 0),
                             .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) s->errors++;
    c->want_out = out;
}

/* Flushes c->buf; returns -1 on a hard error. */
static int flush(struct conn *c) {
    while (c->len > 0) {
        ssize_t n = write(c->fd, c->buf, c->len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (n <= 0) return -1;
        memmove(c->buf, c->buf + n, c->len - (size_t)n);
        c->len -= (size_t)n;
    }
    return 0;
}

static void close_conn(struct server *s, int ep, struct conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
    s->closed++;
}

/* Serves one connection's event; edge-triggered mode drains everything it can. */
static void serve(struct server *s, int ep, struct conn *c, uint32_t events) {
    if (events & EPOLLOUT) {
        if (flush(c) < 0) {
            s->errors++;
            close_conn(s, ep, c);
            return;
        }
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        for (;;) {
            if (c->len == sizeof c->buf) break; /* wait for EPOLLOUT to make room */
            ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            if (n < 0) {
                s->errors++;
                close_conn(s, ep, c);
                return;
            }
            if (n == 0) {
                if (c->len != 0) s->errors++; /* client hung up before its echo */
                close_conn(s, ep, c);
                return;
            }
            c->len += (size_t)n;
            s->echoed += n;
            if (flush(c) < 0) {
                s->errors++;
                close_conn(s, ep, c);
                return;
            }
            if (!s->edge) break;
        }
    }
    int need_out = c->len > 0;
    if (need_out != c->want_out) set_events(s, ep, c, need_out);
}

static void *server_main(void *arg) {
    struct server *s = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return (void *)1;
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, s->listen_fd, &lev) != 0) return (void *)2;
    struct epoll_event ev[64];
    while (s->closed < CLIENTS) {
        int n = wait_events(s, ep, ev, 64);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            s->errors++;
            break;
        }
        int tasks = gw_os_threads();
        if (tasks > s->max_tasks) s->max_tasks = tasks;
        for (int i = 0; i < n; i++) {
            if (ev[i].data.ptr == NULL) {
                for (;;) {
                    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) {
                        if (errno != EAGAIN && errno != EWOULDBLOCK) s->errors++;
                        break;
                    }
                    struct conn *c = calloc(1, sizeof *c);
                    c->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN | (s->edge ? EPOLLET : 0),
                                              .data.ptr = c};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) != 0) s->errors++;
                    s->accepted++;
                }
            } else {
                serve(s, ep, ev[i].data.ptr, ev[i].events);
            }
        }
    }
    close(ep);
    return NULL;
}

struct client {
    int id, port;
    int bad, done;
    char what[160];
};

static unsigned char pattern(int id, int round, int off) {
    return (unsigned char)(id * 31 + round * 7 + off * 13 + (off >> 8));
}

static int msg_len(int id, int round) {
    return 1 + (int)(((unsigned)id * 97u + (unsigned)round * 389u) % MAXMSG);
}

static void *client_main(void *arg) {
    struct client *c = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        snprintf(c->what, sizeof c->what, "connect: %s", strerror(errno));
        c->bad = 1;
        if (fd >= 0) close(fd);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    unsigned char out[MAXMSG], in[MAXMSG];
    for (int r = 0; r < ROUNDS && !c->bad; r++) {
        int len = msg_len(c->id, r);
        for (int i = 0; i < len; i++) out[i] = pattern(c->id, r, i);
        ssize_t w = write(fd, out, (size_t)len); /* blocking: all of it */
        if (w != len) {
            snprintf(c->what, sizeof c->what, "round %d: write %zd of %d: %s", r, w, len,
                     strerror(errno));
            c->bad = 1;
            break;
        }
        int got = 0;
        while (got < len) {
            ssize_t n = read(fd, in + got, (size_t)(len - got));
            if (n <= 0) {
                snprintf(c->what, sizeof c->what, "round %d: read %zd after %d of %d: %s", r, n,
                         got, len, n < 0 ? strerror(errno) : "EOF");
                c->bad = 1;
                break;
            }
            got += (int)n;
        }
        for (int i = 0; i < got && !c->bad; i++)
            if (in[i] != out[i]) {
                snprintf(c->what, sizeof c->what, "round %d: byte %d is %d, sent %d", r, i, in[i],
                         out[i]);
                c->bad = 1;
            }
        if (!c->bad) c->done++;
    }
    close(fd);
    return NULL;
}

static void run(enum wait_kind kind, int edge) {
    static const char *names[] = {"epoll_wait", "epoll_pwait", "epoll_pwait2"};
    struct server s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.edge = edge;
    s.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHECK(s.listen_fd >= 0, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(s.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    CHECK_EQ(bind(s.listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(listen(s.listen_fd, 128), 0);
    CHECK_EQ(getsockname(s.listen_fd, (struct sockaddr *)&a, &al), 0);
    s.port = ntohs(a.sin_port);

    long long t0 = gw_now_ns();
    pthread_t st;
    CHECK_EQ(pthread_create(&st, NULL, server_main, &s), 0);
    static struct client cl[CLIENTS];
    static pthread_t ct[CLIENTS];
    memset(cl, 0, sizeof cl);
    for (int i = 0; i < CLIENTS; i++) {
        cl[i].id = i;
        cl[i].port = s.port;
        CHECK_EQ(pthread_create(&ct[i], NULL, client_main, &cl[i]), 0);
    }
    for (int i = 0; i < CLIENTS; i++) CHECK_EQ(pthread_join(ct[i], NULL), 0);
    void *ret = (void *)-1;
    CHECK_EQ(pthread_join(st, &ret), 0);
    long long ms = gw_ms_since(t0);
    CHECK(ret == NULL, "%s: server setup failed (%ld)", names[kind], (long)(intptr_t)ret);
    long long want = 0;
    for (int i = 0; i < CLIENTS; i++) {
        CHECK(!cl[i].bad, "%s %s: client %d: %s", names[kind], edge ? "ET" : "LT", i, cl[i].what);
        CHECK_EQ(cl[i].done, ROUNDS);
        for (int r = 0; r < ROUNDS; r++) want += msg_len(i, r);
    }
    CHECK(s.errors == 0, "%s: server saw %d errors", names[kind], s.errors);
    CHECK_EQ(s.accepted, CLIENTS);
    CHECK_EQ(s.closed, CLIENTS);
    CHECK_EQ(s.echoed, want);
    if (gw_preloaded())
        CHECK(s.max_tasks == 1, "%s: %d OS threads seen by the server", names[kind], s.max_tasks);
    else
        CHECK(s.max_tasks > 1, "%s: natively %d tasks", names[kind], s.max_tasks);
    close(s.listen_fd);
    printf("epoll_server: %s %s: %d clients x %d round trips, %lld bytes, %lld ms\n", names[kind],
           edge ? "edge" : "level", CLIENTS, ROUNDS, s.echoed, ms);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);
    run(WAIT, 0);
    run(PWAIT, 1);
    run(PWAIT2, 0);
    run(WAIT, 1);
    return 0;
}
