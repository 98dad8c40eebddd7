/* curl_fetch: libcurl's calls green, the program's own plain (eventlet's import_patched).
 *
 * greenworld_import_patched("libcurl.so.4", GW_ALL) greens the calls libcurl makes (its
 * sockets, polls, sleeps) and nothing else. N green threads (green_pthread_create, the
 * explicit API: the program's own pthread_create stays plain) each fetch a page with
 * curl_easy_perform from a small server in this process; that server is the program's own
 * code, so its accept, reads, writes and threads are plain libc: a real OS thread per
 * connection, blocking calls. Every request waits in the server until all N have arrived, which
 * they can only do if libcurl parks green while waiting for its answer. Build and run against
 * an installed library:
 *     cc curl_fetch.c $(pkg-config --cflags --libs greenworld libcurl) -o curl_fetch
 *     ./curl_fetch 20
 * Exit 0 when every page came back whole, all N requests were in the server at once, every
 * client ran on the main OS thread, and the program's own calls stayed plain. */
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
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <greenworld.h>

static const char page[] = "<html>green through libcurl</html>\n";
static int server_fd, n_clients;
static in_port_t port;
static pid_t main_tid;

/* The server's books: requests inside it now, the most at once, and OS threads then. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t arrived = PTHREAD_COND_INITIALIZER;
static int inside, most_inside, os_threads_then;

static pid_t tid(void) { return (pid_t)syscall(SYS_gettid); }

static int os_threads(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* One connection, on an OS thread of its own: read the request, wait (plain, blocking this OS
 * thread only) until every client's request is inside or a second has passed, answer. */
static void *serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    char req[2048];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof req - 1 && (n = read(fd, req + got, sizeof req - 1 - got)) > 0) {
        got += (size_t)n;
        req[got] = 0;
        if (strstr(req, "\r\n\r\n")) break;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 1;
    pthread_mutex_lock(&mu);
    if (++inside > most_inside) {
        most_inside = inside;
        os_threads_then = os_threads();
    }
    pthread_cond_broadcast(&arrived);
    while (most_inside < n_clients && pthread_cond_timedwait(&arrived, &mu, &deadline) == 0) {}
    inside--;
    pthread_mutex_unlock(&mu);
    char head[128];
    int len = snprintf(head, sizeof head, "HTTP/1.0 200 OK\r\nContent-Length: %zu\r\n\r\n", sizeof page - 1);
    if (write(fd, head, (size_t)len) == len) (void)!write(fd, page, sizeof page - 1);
    close(fd);
    return NULL;
}

/* The server: a plain OS thread per connection, until the listening socket is shut down. */
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

struct body {
    char data[256];
    size_t len;
};

static size_t collect(char *data, size_t size, size_t count, void *arg) {
    struct body *b = arg;
    size_t n = size * count;
    if (n > sizeof b->data - 1 - b->len) return 0; /* more than the page: an error */
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = 0;
    return n;
}

/* One client, a green thread: GET /N with libcurl; 1 when the body is the page. */
static void *fetch(void *arg) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/%d", ntohs(port), (int)(intptr_t)arg);
    struct body body = {.len = 0};
    CURL *curl = curl_easy_init();
    if (!curl) return (void *)0;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROXY, ""); /* no proxy from the environment */
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK) fprintf(stderr, "curl_fetch: %s: %s\n", url, curl_easy_strerror(rc));
    int ok = rc == CURLE_OK && status == 200 && strcmp(body.data, page) == 0 && tid() == main_tid;
    return (void *)(intptr_t)ok;
}

int main(int argc, char **argv) {
    n_clients = argc > 1 ? atoi(argv[1]) : 20;
    if (n_clients < 1 || n_clients > 500) {
        fprintf(stderr, "usage: %s [N from 1 to 500]\n", argv[0]);
        return 2;
    }
    main_tid = tid();
    /* As early as possible; libcurl's calls from now on, whether it is loaded yet or not. */
    int rc = greenworld_import_patched("libcurl.so.4", GW_ALL);
    if (rc != 0) {
        fprintf(stderr, "curl_fetch: greenworld_import_patched: %s\n", strerror(rc));
        return 1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "curl_fetch: curl_global_init failed\n");
        return 1;
    }

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    server_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (server_fd < 0 || bind(server_fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(server_fd, 512) != 0 || getsockname(server_fd, (struct sockaddr *)&addr, &len) != 0) {
        perror("curl_fetch: server socket");
        return 1;
    }
    port = addr.sin_port;
    pthread_t srv;
    pthread_t *clients = calloc((size_t)n_clients, sizeof *clients);
    if (!clients || pthread_create(&srv, NULL, server, NULL) != 0) {
        perror("curl_fetch: server thread");
        return 1;
    }
    for (int i = 0; i < n_clients; i++)
        if ((rc = green_pthread_create(&clients[i], NULL, fetch, (void *)(intptr_t)i)) != 0) {
            fprintf(stderr, "curl_fetch: green_pthread_create: %s\n", strerror(rc));
            return 1;
        }
    int ok = 0;
    for (int i = 0; i < n_clients; i++) {
        void *fetched;
        green_pthread_join(clients[i], &fetched);
        ok += fetched != NULL;
    }
    shutdown(server_fd, SHUT_RDWR);
    pthread_join(srv, NULL);
    curl_global_cleanup();
    int own_plain = greenworld_is_monkey_patched("socket") == 0 && greenworld_is_monkey_patched("thread") == 0;
    printf("curl_fetch: %d/%d pages by libcurl in %d green threads on the main OS thread, %d requests in the "
           "server at once; the program's own calls %s: its server ran on %d OS threads\n",
           ok, n_clients, n_clients, most_inside, own_plain ? "plain" : "GREEN", os_threads_then);
    free(clients);
    return ok == n_clients && most_inside == n_clients && own_plain && os_threads_then >= n_clients + 2 ? 0 : 1;
}
