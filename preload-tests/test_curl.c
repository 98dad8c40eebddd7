/* A real client against an in-process server: a thread-per-connection HTTP/1.0 server on
 * 127.0.0.1 (ephemeral port) serves a 1 MiB body; three /usr/bin/curl processes run at the same
 * time (fork + exec; under the preload run they inherit LD_PRELOAD), each
 *   curl -s -o FILE -w '%{size_download}' --max-time 20 http://127.0.0.1:PORT/N
 * Checks: every curl exits 0 and prints 1048576, every file holds exactly the body, the server
 * saw the three GET requests, and (under the preload) the server ran on one OS thread.
 * Skipped (77) when /usr/bin/curl is absent.
 */
#include "gwtest.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define CURL "/usr/bin/curl"
#define BODY (1 << 20)
#define NCURL 3

static unsigned char g_body[BODY];
static int g_listen;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_requests[NCURL];
static int g_bad_requests, g_server_errors, g_max_tasks;

static void *conn_main(void *arg) {
    int fd = (int)(intptr_t)arg;
    char req[4096];
    size_t got = 0;
    int err = 0;
    while (got < sizeof req - 1) {
        ssize_t n = read(fd, req + got, sizeof req - 1 - got);
        if (n <= 0) { err = 1; break; }
        got += (size_t)n;
        req[got] = 0;
        if (strstr(req, "\r\n\r\n")) break;
    }
    int which = -1;
    if (!err && sscanf(req, "GET /%d HTTP/1.", &which) == 1 && which >= 0 && which < NCURL) {
        char head[256];
        int hl = snprintf(head, sizeof head,
                          "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n"
                          "Content-Length: %d\r\nConnection: close\r\n\r\n", BODY);
        if (write(fd, head, (size_t)hl) != hl) err = 1;
        /* the body in odd pieces */
        for (size_t off = 0; off < BODY && !err;) {
            size_t k = BODY - off < 77777 ? BODY - off : 77777;
            if (write(fd, g_body + off, k) != (ssize_t)k) err = 1;
            off += k;
        }
    }
    int tasks = gw_os_threads();
    pthread_mutex_lock(&g_mu);
    if (which >= 0 && which < NCURL) g_requests[which]++;
    else g_bad_requests++;
    g_server_errors += err;
    if (tasks > g_max_tasks) g_max_tasks = tasks;
    pthread_mutex_unlock(&g_mu);
    shutdown(fd, SHUT_WR);
    char drain[256];
    while (read(fd, drain, sizeof drain) > 0) {}
    close(fd);
    return NULL;
}

static void *acceptor_main(void *arg) {
    (void)arg;
    for (int i = 0; i < NCURL; i++) {
        int fd = accept(g_listen, NULL, NULL);
        if (fd < 0) {
            pthread_mutex_lock(&g_mu);
            g_server_errors++;
            pthread_mutex_unlock(&g_mu);
            return NULL;
        }
        pthread_t t;
        if (pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd) != 0) {
            close(fd);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (access(CURL, X_OK) != 0) {
        printf("curl: %s not found: skipped\n", CURL);
        return GW_SKIP;
    }
    signal(SIGPIPE, SIG_IGN);
    gw_watchdog("curl", 25);
    for (int i = 0; i < BODY; i++) g_body[i] = (unsigned char)((i * 7) ^ (i >> 8) ^ (i >> 16));

    struct sockaddr_in a;
    g_listen = gw_tcp_listen(SOCK_CLOEXEC, 16, &a);
    int port = ntohs(a.sin_port);
    pthread_t acc;
    CHECK_EQ(pthread_create(&acc, NULL, acceptor_main, NULL), 0);

    gw_phase = "running curl";
    pid_t pids[NCURL];
    int outs[NCURL];
    char files[NCURL][64];
    for (int i = 0; i < NCURL; i++) {
        snprintf(files[i], sizeof files[i], "/tmp/gw_curl_%d_%d", (int)getpid(), i);
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/%d", port, i);
        int p[2];
        CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
        pid_t pid = fork();
        CHECK(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) {
            dup2(p[1], 1);
            char *argv[] = {(char *)CURL, (char *)"-s", (char *)"-o", files[i], (char *)"-w",
                            (char *)"%{size_download}", (char *)"--max-time", (char *)"20", url,
                            NULL};
            execv(CURL, argv);
            _exit(127);
        }
        close(p[1]);
        pids[i] = pid;
        outs[i] = p[0];
    }
    char results[NCURL][64];
    for (int i = 0; i < NCURL; i++) {
        size_t used = 0;
        for (;;) { /* parks green until curl writes or exits */
            ssize_t n = read(outs[i], results[i] + used, sizeof results[i] - 1 - used);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            used += (size_t)n;
            if (used == sizeof results[i] - 1) break;
        }
        results[i][used] = 0;
        close(outs[i]);
    }
    for (int i = 0; i < NCURL; i++) {
        int st = 0;
        CHECK_EQ(waitpid(pids[i], &st, 0), pids[i]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "curl %d: status 0x%x (exit %d), printed '%s'",
              i, st, gw_exit_code(st), results[i]);
    }
    CHECK_EQ(pthread_join(acc, NULL), 0);

    gw_phase = "checking";
    for (int i = 0; i < NCURL; i++) {
        CHECK(!strcmp(results[i], "1048576"), "curl %d printed size_download '%s'", i, results[i]);
        int f = open(files[i], O_RDONLY);
        CHECK(f >= 0, "open %s: %s", files[i], strerror(errno));
        struct stat sb;
        CHECK_EQ(fstat(f, &sb), 0);
        CHECK_EQ(sb.st_size, BODY);
        static unsigned char got[BODY];
        size_t used = 0;
        ssize_t n;
        while (used < BODY && (n = read(f, got + used, BODY - used)) > 0) used += (size_t)n;
        CHECK_EQ(used, BODY);
        CHECK(!memcmp(got, g_body, BODY), "curl %d: the downloaded body differs", i);
        close(f);
        unlink(files[i]);
    }
    /* the connection threads may still be finishing their drain */
    for (int tries = 0; tries < 500; tries++) {
        pthread_mutex_lock(&g_mu);
        int done = g_requests[0] + g_requests[1] + g_requests[2] + g_bad_requests;
        pthread_mutex_unlock(&g_mu);
        if (done == NCURL) break;
        usleep(10000);
    }
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < NCURL; i++) CHECK(g_requests[i] == 1, "request %d seen %d times", i, g_requests[i]);
    CHECK_EQ(g_bad_requests, 0);
    CHECK_EQ(g_server_errors, 0);
    int tasks = g_max_tasks;
    pthread_mutex_unlock(&g_mu);
    if (gw_preloaded()) CHECK(tasks == 1, "the server ran on %d OS threads", tasks);
    else CHECK(tasks >= 3, "natively the server ran on %d tasks", tasks);
    close(g_listen);
    printf("curl: %d concurrent curl downloads of 1 MiB each, all bytes right\n", NCURL);
    return 0;
}
