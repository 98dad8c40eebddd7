/* fetch: N green threads each fetch a page over HTTP from a small server in this process.
 *
 * A program that links greenworld on purpose (pkg-config greenworld) and greens itself with
 * greenworld_monkey_patch, eventlet's monkey_patch: plain pthreads and blocking sockets, run
 * as green threads on one OS thread. Build and run against an installed library:
 *     cc fetch.c $(pkg-config --cflags --libs greenworld) -o fetch && ./fetch 100
 * Exit 0 when every page came back whole and everything ran on one OS thread. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <greenworld.h>

static const char page[] = "<html>green</html>\n";
static int server_fd;
static in_port_t port;

/* OS threads that run the program's code: the library's own (named "gw-...", such as the
 * gw-sysmon monitor) are not counted. */
static int os_threads(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(comm, sizeof comm, f)) comm[0] = 0;
            fclose(f);
        }
        if (strncmp(comm, "gw-", 3) != 0) n++;
    }
    closedir(d);
    return n;
}

/* One connection: read the request up to its blank line, answer the page, close. */
static void *serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    char req[1024];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof req - 1 && (n = read(fd, req + got, sizeof req - 1 - got)) > 0) {
        got += (size_t)n;
        req[got] = 0;
        if (strstr(req, "\r\n\r\n")) break;
    }
    char head[128];
    int len = snprintf(head, sizeof head, "HTTP/1.0 200 OK\r\nContent-Length: %zu\r\n\r\n", sizeof page - 1);
    if (write(fd, head, (size_t)len) == len) (void)!write(fd, page, sizeof page - 1);
    close(fd);
    return NULL;
}

/* The server: a thread per connection, until the listening socket is shut down. */
static void *server(void *arg) {
    (void)arg;
    int fd;
    while ((fd = accept(server_fd, NULL, NULL)) >= 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, serve, (void *)(intptr_t)fd) == 0) pthread_detach(t);
        else close(fd);
    }
    return NULL;
}

/* One client: GET /, and 1 when the body is the page. */
static void *fetch(void *arg) {
    (void)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = port, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) return (void *)0;
    static const char get[] = "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    char resp[512];
    size_t got = 0;
    ssize_t n;
    if (write(fd, get, sizeof get - 1) != (ssize_t)(sizeof get - 1)) return (void *)0;
    while (got < sizeof resp - 1 && (n = read(fd, resp + got, sizeof resp - 1 - got)) > 0) got += (size_t)n;
    close(fd);
    resp[got] = 0;
    const char *body = strstr(resp, "\r\n\r\n");
    return (void *)(intptr_t)(body && strcmp(body + 4, page) == 0);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 100;
    if (n < 1) {
        fprintf(stderr, "usage: %s [N]\n", argv[0]);
        return 2;
    }
    /* As early as possible: threads made before stay OS threads. */
    int rc = greenworld_monkey_patch(GW_ALL);
    if (rc != 0) {
        fprintf(stderr, "fetch: greenworld_monkey_patch: %s\n", strerror(rc));
        return 1;
    }

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    server_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (server_fd < 0 || bind(server_fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(server_fd, 128) != 0 || getsockname(server_fd, (struct sockaddr *)&addr, &len) != 0) {
        perror("fetch: server socket");
        return 1;
    }
    port = addr.sin_port;
    pthread_t srv;
    pthread_t *clients = calloc((size_t)n, sizeof *clients);
    if (!clients || pthread_create(&srv, NULL, server, NULL) != 0) {
        perror("fetch: server thread");
        return 1;
    }
    for (int i = 0; i < n; i++)
        if ((rc = pthread_create(&clients[i], NULL, fetch, NULL)) != 0) {
            fprintf(stderr, "fetch: pthread_create: %s\n", strerror(rc));
            return 1;
        }
    int threads = os_threads(), ok = 0;
    for (int i = 0; i < n; i++) {
        void *fetched;
        pthread_join(clients[i], &fetched);
        ok += fetched != NULL;
    }
    shutdown(server_fd, SHUT_RDWR);
    pthread_join(srv, NULL);
    printf("fetch: %d/%d pages with %d green threads on %d OS thread(s); socket %s, thread %s\n", ok, n,
           n + 1, threads, greenworld_is_monkey_patched("socket") ? "patched" : "not patched",
           greenworld_is_monkey_patched("thread") ? "patched" : "not patched");
    free(clients);
    return ok == n && threads == 1 ? 0 : 1;
}
