/* echo_server: a thread-per-connection blocking TCP echo server, the way it is written without
 * an event loop: an accept loop, one detached pthread per connection, read/write until EOF.
 *   echo_server [PORT [WORK_US]]   (default 0: any free port on 127.0.0.1; WORK_US: about that
 *                                   many microseconds of arithmetic per request, default 0)
 * Prints "PORT <n>" on stdout once it listens, then serves until killed. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include "bench.h"

/* Iterations of `work` per request (0: a plain echo). */
static long work_iters;
static volatile uint64_t work_sink;

static uint64_t work(long iters, uint64_t x) {
    for (long i = 0; i < iters; i++) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x;
}

/* Iterations of `work` that take about `us` microseconds on this CPU: the fastest of 20 timed
 * runs (a run the scheduler interrupted would make every request shorter). */
static long calibrate(long us) {
    long iters = 1 << 18;
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 20; i++) {
        uint64_t t0 = now_ns();
        work_sink = work(iters, (uint64_t)i);
        uint64_t ns = now_ns() - t0;
        if (ns && ns < best) best = ns;
    }
    return (long)((double)iters * (double)us * 1000.0 / (double)best);
}

static void *serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        if (work_iters) work_sink = work(work_iters, (uint64_t)n);
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w <= 0) goto out;
            off += w;
        }
    }
out:
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    long work_us = argc > 2 ? atol(argv[2]) : 0;
    if (work_us > 0) work_iters = calibrate(work_us);
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (lfd < 0) die("echo_server: socket: %s", strerror(errno));
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa)) die("echo_server: bind: %s", strerror(errno));
    if (listen(lfd, 4096)) die("echo_server: listen: %s", strerror(errno));
    socklen_t len = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    printf("PORT %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) {
                fprintf(stderr, "echo_server: accept: %s\n", strerror(errno));
                usleep(10000);
            }
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        int rc = pthread_create(&t, &attr, serve, (void *)(intptr_t)fd);
        if (rc) {
            fprintf(stderr, "echo_server: pthread_create: %s\n", strerror(rc));
            close(fd);
        }
    }
}
