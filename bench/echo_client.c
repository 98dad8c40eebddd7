/* echo_client: a load generator for the echo servers (run natively, never preloaded).
 * One thread, its own non-blocking epoll loop. It opens C connections (at most 256 still
 * waiting for their first echo at a time, so the accept queue never overflows); on each
 * connection it sends an M-byte message, waits for the whole echo, and sends again at once.
 * When every connection has had its first echo it warms up for W seconds, then measures for
 * D seconds.
 *   echo_client -p PORT [-c C=100] [-d D=3] [-w W=0.5] [-m M=64] [-s SERVER_PID]
 * With -s it samples the server's utime+stime (/proc/PID/stat) at the window's edges.
 * RESULT rps, p50_us, p99_us (request latency), requests, server_cpu_ms (-1 without -s). */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "bench.h"

enum { CONNECTING, WAITING };

struct conn {
    int fd, state, got, started; /* started: has had its first echo */
    uint64_t sent_at;
};

static int msg = 64;
static char out[65536], in[65536];

static double server_cpu_ms(int pid) {
    char path[64], line[4096];
    if (pid <= 0) return -1;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = 0;
    char *p = strrchr(line, ')');
    if (!p) return -1;
    /* after ") ": field 3 (state) ... field 14 utime, field 15 stime */
    unsigned long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
    return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int port = 0, nconn = 100, spid = 0, opt;
    double dur = 3, warm = 0.5;
    while ((opt = getopt(argc, argv, "p:c:d:w:m:s:")) != -1) switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'c': nconn = atoi(optarg); break;
        case 'd': dur = atof(optarg); break;
        case 'w': warm = atof(optarg); break;
        case 'm': msg = atoi(optarg); break;
        case 's': spid = atoi(optarg); break;
        default: die("usage: echo_client -p PORT [-c CONNS] [-d SECS] [-w SECS] [-m BYTES] [-s SERVER_PID]");
        }
    if (!port || nconn < 1 || msg < 1 || msg > (int)sizeof out) die("echo_client: bad arguments");
    memset(out, 'e', (size_t)msg);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct conn *cs = calloc((size_t)nconn, sizeof *cs);
    int ep = epoll_create1(0);
    enum { MAXEV = 1024 };
    static struct epoll_event evs[MAXEV];
    size_t lat_cap = 1 << 20, nlat = 0;
    uint32_t *lat = malloc(lat_cap * sizeof *lat);
    if (!cs || !lat || ep < 0) die("echo_client: setup failed");

    int opened = 0, ready = 0, one = 1;
    int phase = 0; /* 0 connecting, 1 warm-up, 2 measuring */
    uint64_t t_phase = now_ns(), t_start = 0, t_end = 0, deadline = t_phase + 60ull * 1000000000ull;
    double cpu0 = -1, cpu1 = -1;
    long requests = 0;
    for (;;) {
        while (phase == 0 && opened < nconn && opened - ready < 256) { /* open more connections */
            struct conn *c = &cs[opened];
            c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (c->fd < 0) die("echo_client: socket #%d: %s", opened, strerror(errno));
            setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) && errno != EINPROGRESS)
                die("echo_client: connect #%d: %s", opened, strerror(errno));
            c->state = CONNECTING;
            struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)opened};
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
            opened++;
        }
        int n = epoll_wait(ep, evs, MAXEV, 5);
        if (n < 0 && errno != EINTR) die("echo_client: epoll_wait: %s", strerror(errno));
        uint64_t now = now_ns();
        for (int i = 0; i < n; i++) {
            struct conn *c = &cs[evs[i].data.u32];
            if (c->state == CONNECTING) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) die("echo_client: connect: %s", strerror(err));
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = evs[i].data.u32};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                c->state = WAITING;
                goto send;
            }
            ssize_t r = read(c->fd, in, (size_t)(msg - c->got));
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (r <= 0) die("echo_client: connection %u: %s", evs[i].data.u32, r ? strerror(errno) : "closed by server");
            c->got += (int)r;
            if (c->got < msg) continue;
            if (!c->started) c->started = 1, ready++;
            if (phase == 2 && c->sent_at >= t_start) {
                if (nlat == lat_cap) {
                    lat_cap *= 2;
                    lat = realloc(lat, lat_cap * sizeof *lat);
                    if (!lat) die("echo_client: out of memory");
                }
                uint64_t d = now - c->sent_at;
                lat[nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
                requests++;
            }
        send:
            c->got = 0;
            c->sent_at = now;
            if (write(c->fd, out, (size_t)msg) != msg) die("echo_client: write: %s", strerror(errno));
        }
        if (phase == 0 && ready == nconn) {
            phase = 1;
            t_phase = now;
        } else if (phase == 0 && now > deadline) {
            die("echo_client: only %d of %d connections answered within 60 s", ready, nconn);
        } else if (phase == 1 && now - t_phase >= (uint64_t)(warm * 1e9)) {
            phase = 2;
            cpu0 = server_cpu_ms(spid);
            t_start = now_ns();
        } else if (phase == 2 && now - t_start >= (uint64_t)(dur * 1e9)) {
            t_end = now_ns();
            cpu1 = server_cpu_ms(spid);
            break;
        }
    }
    struct linger lg = {1, 0}; /* close with RST: no TIME_WAIT pile-up across runs */
    for (int i = 0; i < nconn; i++) {
        setsockopt(cs[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(cs[i].fd);
    }
    qsort(lat, nlat, sizeof *lat, cmp_u32);
    double secs = (t_end - t_start) / 1e9;
    double p50 = nlat ? lat[nlat / 2] / 1e3 : -1, p99 = nlat ? lat[(size_t)(nlat * 0.99)] / 1e3 : -1;
    double cpu = cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1;
    printf("RESULT rps=%.0f p50_us=%.1f p99_us=%.1f requests=%ld secs=%.3f server_cpu_ms=%.0f conns=%d\n",
           requests / secs, p50, p99, requests, secs, cpu, nconn);
    return 0;
}
