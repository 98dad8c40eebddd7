/* A thread-per-connection TCP echo server written the plain blocking way (accept in a loop, one
 * pthread per accepted socket doing read/write until EOF), and a multi-threaded client that holds
 * 2000 connections open at the same time: 50 client threads with 40 connections each. Every
 * connection carries several KB in several rounds (each round: the client writes a chunk on each
 * of its connections, then reads every echo back); every byte is checked.
 * While all 2000 connections are open (client side connected, server side accepted and its 2000
 * threads alive), the test counts OS threads: 1 under the preload, > 2000 natively.
 * Then an accept pool: 8 threads all parked in accept() on one blocking listener serve 400
 * short connections (10 client threads x 40 in turn), each accepted exactly once; when the
 * clients are done, shutdown(SHUT_RDWR) of the listener wakes every parked acceptor with
 * -1 EINVAL (as Linux does).
 * RLIMIT_NOFILE's soft limit is raised to the hard one; skipped (77) if the hard limit < 5000.
 */
#include "gwtest.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define CLIENT_THREADS 50
#define PER_THREAD 40
#define CONNS (CLIENT_THREADS * PER_THREAD)
#define ROUNDS 4
#define MAXCHUNK 2500

static int g_port;
static int g_listen;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_accepted;       /* server connection threads started */
static int g_server_done;    /* server connection threads finished */
static int g_server_errors;
static long long g_echoed;
static int g_all_open;       /* main saw everything open; clients may start */
static int g_clients_open;   /* client threads with all their connections made */
static int g_tasks_open = -1; /* OS threads with everything open */

static unsigned char pattern(int conn, int round, int off) {
    unsigned x = (unsigned)conn * 2654435761u + (unsigned)round * 40503u + (unsigned)off * 2246822519u;
    return (unsigned char)(x >> 13);
}

static int chunk_len(int conn, int round) {
    return 1000 + (int)(((unsigned)conn * 131u + (unsigned)round * 577u) % (MAXCHUNK - 1000 + 1));
}

static void *conn_main(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    long long echoed = 0;
    int err = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { err = 1; break; }
        if (n == 0) break;
        ssize_t w = write(fd, buf, (size_t)n); /* blocking: writes all */
        if (w != n) { err = 1; break; }
        echoed += n;
    }
    close(fd);
    pthread_mutex_lock(&g_mu);
    g_echoed += echoed;
    g_server_errors += err;
    g_server_done++;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    return NULL;
}

static void *acceptor_main(void *arg) {
    (void)arg;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 128 * 1024);
    for (int i = 0; i < CONNS; i++) {
        int fd = accept(g_listen, NULL, NULL);
        if (fd < 0 && errno == EINTR) { i--; continue; }
        if (fd < 0) {
            fprintf(stderr, "accept: %s\n", strerror(errno));
            pthread_mutex_lock(&g_mu);
            g_server_errors++;
            pthread_mutex_unlock(&g_mu);
            break;
        }
        pthread_t t;
        int rc = pthread_create(&t, &attr, conn_main, (void *)(intptr_t)fd);
        pthread_mutex_lock(&g_mu);
        if (rc != 0) {
            g_server_errors++;
            close(fd);
        } else {
            g_accepted++;
        }
        pthread_cond_broadcast(&g_cv);
        pthread_mutex_unlock(&g_mu);
        if (rc != 0) break;
    }
    pthread_attr_destroy(&attr);
    return NULL;
}

struct client {
    int id;
    int fds[PER_THREAD];
    int bad;
    char what[200];
    long long bytes;
};

static void *client_main(void *arg) {
    struct client *c = arg;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int k = 0; k < PER_THREAD; k++) c->fds[k] = -1;
    for (int k = 0; k < PER_THREAD && !c->bad; k++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            snprintf(c->what, sizeof c->what, "conn %d: socket/connect: %s", k, strerror(errno));
            c->bad = 1;
            if (fd >= 0) close(fd);
            break;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fds[k] = fd;
    }
    pthread_mutex_lock(&g_mu);
    g_clients_open++;
    pthread_cond_broadcast(&g_cv);
    while (!g_all_open) pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);

    unsigned char out[MAXCHUNK], in[MAXCHUNK];
    for (int r = 0; r < ROUNDS && !c->bad; r++) {
        for (int k = 0; k < PER_THREAD && !c->bad; k++) {
            int conn = c->id * PER_THREAD + k, len = chunk_len(conn, r);
            for (int i = 0; i < len; i++) out[i] = pattern(conn, r, i);
            ssize_t w = write(c->fds[k], out, (size_t)len);
            if (w != len) {
                snprintf(c->what, sizeof c->what, "conn %d round %d: write %zd of %d: %s", conn, r,
                         w, len, strerror(errno));
                c->bad = 1;
            }
        }
        for (int k = 0; k < PER_THREAD && !c->bad; k++) {
            int conn = c->id * PER_THREAD + k, len = chunk_len(conn, r), got = 0;
            while (got < len) {
                ssize_t n = read(c->fds[k], in + got, (size_t)(len - got));
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) {
                    snprintf(c->what, sizeof c->what, "conn %d round %d: read %zd after %d of %d: %s",
                             conn, r, n, got, len, n < 0 ? strerror(errno) : "EOF");
                    c->bad = 1;
                    break;
                }
                got += (int)n;
            }
            for (int i = 0; i < got && !c->bad; i++)
                if (in[i] != pattern(conn, r, i)) {
                    snprintf(c->what, sizeof c->what, "conn %d round %d: byte %d is %d, sent %d",
                             conn, r, i, in[i], pattern(conn, r, i));
                    c->bad = 1;
                }
            c->bytes += got;
        }
    }
    for (int k = 0; k < PER_THREAD; k++)
        if (c->fds[k] >= 0) close(c->fds[k]);
    return NULL;
}

/* The accept pool. */
#define POOL 8
#define POOL_CLIENTS 10
#define POOL_CONNS 40

struct pool_acceptor {
    int served, bad, last_errno;
};

static void *pool_acceptor_main(void *arg) {
    struct pool_acceptor *a = arg;
    for (;;) {
        int fd = accept(g_listen, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) continue;
            a->last_errno = errno;
            return NULL;
        }
        char buf[64];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0 || write(fd, buf, (size_t)n) != n) a->bad++;
        close(fd);
        a->served++;
    }
}

struct pool_client {
    int id, ok, bad;
};

static void *pool_client_main(void *arg) {
    struct pool_client *c = arg;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < POOL_CONNS; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            c->bad++;
            if (fd >= 0) close(fd);
            continue;
        }
        char msg[32], back[32];
        int len = snprintf(msg, sizeof msg, "client %d conn %d", c->id, i);
        ssize_t got = 0;
        if (write(fd, msg, (size_t)len) == len) {
            while (got < len) {
                ssize_t n = read(fd, back + got, (size_t)(len - got));
                if (n <= 0) break;
                got += n;
            }
        }
        if (got == len && !memcmp(back, msg, (size_t)len)) c->ok++;
        else c->bad++;
        close(fd);
    }
    return NULL;
}

static void accept_pool(void) {
    struct pool_acceptor acc[POOL];
    struct pool_client cl[POOL_CLIENTS];
    pthread_t at[POOL], ct[POOL_CLIENTS];
    memset(acc, 0, sizeof acc);
    for (int i = 0; i < POOL; i++) CHECK_EQ(pthread_create(&at[i], NULL, pool_acceptor_main, &acc[i]), 0);
    usleep(50000); /* all parked in accept */
    for (int i = 0; i < POOL_CLIENTS; i++) {
        cl[i] = (struct pool_client){.id = i};
        CHECK_EQ(pthread_create(&ct[i], NULL, pool_client_main, &cl[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < POOL_CLIENTS; i++) {
        CHECK_EQ(pthread_join(ct[i], NULL), 0);
        CHECK(cl[i].bad == 0, "pool client %d: %d failed connections", i, cl[i].bad);
        ok += cl[i].ok;
    }
    CHECK_EQ(ok, POOL_CLIENTS * POOL_CONNS);
    CHECK_EQ(shutdown(g_listen, SHUT_RDWR), 0);
    int served = 0, busy = 0;
    for (int i = 0; i < POOL; i++) {
        CHECK_EQ(pthread_join(at[i], NULL), 0);
        CHECK(acc[i].last_errno == EINVAL, "acceptor %d ended with %s, want EINVAL", i,
              strerror(acc[i].last_errno));
        CHECK_EQ(acc[i].bad, 0);
        served += acc[i].served;
        busy += acc[i].served > 0;
    }
    CHECK_EQ(served, POOL_CLIENTS * POOL_CONNS);
    printf("echo_server: accept pool: %d acceptors (%d served some) took %d connections, all woken "
           "by shutdown with EINVAL\n", POOL, busy, served);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 5000) {
        printf("echo_server: RLIMIT_NOFILE hard limit %llu < 5000: skipped\n",
               (unsigned long long)rl.rlim_max);
        return GW_SKIP;
    }
    rl.rlim_cur = rl.rlim_max;
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);

    g_listen = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(g_listen >= 0, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(g_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    CHECK_EQ(bind(g_listen, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(listen(g_listen, 4096), 0);
    CHECK_EQ(getsockname(g_listen, (struct sockaddr *)&a, &al), 0);
    g_port = ntohs(a.sin_port);

    long long t0 = gw_now_ns();
    pthread_t acc;
    CHECK_EQ(pthread_create(&acc, NULL, acceptor_main, NULL), 0);
    static struct client cl[CLIENT_THREADS];
    static pthread_t ct[CLIENT_THREADS];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (int i = 0; i < CLIENT_THREADS; i++) {
        cl[i].id = i;
        CHECK_EQ(pthread_create(&ct[i], &attr, client_main, &cl[i]), 0);
    }
    pthread_attr_destroy(&attr);

    /* Wait until every connection is made on both sides, then count OS threads. */
    pthread_mutex_lock(&g_mu);
    while ((g_clients_open < CLIENT_THREADS || g_accepted < CONNS) && g_server_errors == 0)
        pthread_cond_wait(&g_cv, &g_mu);
    int accepted = g_accepted, done_early = g_server_done;
    g_tasks_open = gw_os_threads();
    g_all_open = 1;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    long long t_open = gw_now_ns();

    for (int i = 0; i < CLIENT_THREADS; i++) CHECK_EQ(pthread_join(ct[i], NULL), 0);
    CHECK_EQ(pthread_join(acc, NULL), 0);
    pthread_mutex_lock(&g_mu);
    while (g_server_done < g_accepted) pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
    long long t_end = gw_now_ns();

    long long want = 0;
    for (int i = 0; i < CLIENT_THREADS; i++) {
        CHECK(!cl[i].bad, "client thread %d: %s", i, cl[i].what);
        long long w = 0;
        for (int k = 0; k < PER_THREAD; k++)
            for (int r = 0; r < ROUNDS; r++) w += chunk_len(i * PER_THREAD + k, r);
        CHECK_EQ(cl[i].bytes, w);
        want += w;
    }
    CHECK_EQ(g_server_errors, 0);
    CHECK_EQ(accepted, CONNS);
    CHECK_EQ(done_early, 0); /* no server thread ended while everything was open */
    CHECK_EQ(g_server_done, CONNS);
    CHECK_EQ(g_echoed, want);
    CHECK(want >= (long long)CONNS * ROUNDS * 1000, "only %lld bytes", want);
    if (gw_preloaded())
        CHECK(g_tasks_open == 1, "%d OS threads with %d connections open", g_tasks_open, CONNS);
    else
        CHECK(g_tasks_open > CONNS, "natively only %d OS threads", g_tasks_open);
    accept_pool();
    close(g_listen);
    printf("echo_server: %d connections (%d OS threads while open), %lld bytes echoed; "
           "open %lld ms, echo %lld ms\n",
           CONNS, g_tasks_open, g_echoed, (t_open - t0) / 1000000, (t_end - t_open) / 1000000);
    return 0;
}
