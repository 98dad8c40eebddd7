/* Name resolution runs on the thread pool: 100 green threads resolve at once while a ticker
 * green thread keeps ticking (the hub must not stall), results and EAI_* codes as native, and
 * the reentrant gethostbyname_r/getnameinfo forms with their h_errno. */
#include "gwtest.h"
#include <netdb.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <netinet/in.h>

enum { RESOLVERS = 100 };
static int ok[RESOLVERS];

static void *resolver(void *arg) {
    long i = (long)arg;
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    const char *name = i % 2 ? "localhost" : "127.0.0.1";
    int rc = getaddrinfo(name, "80", &hints, &res);
    if (rc == 0 && res && res->ai_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)res->ai_addr;
        ok[i] = sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK) && ntohs(sin->sin_port) == 80;
    }
    if (res) freeaddrinfo(res);
    return NULL;
}

int main(void) {
    pthread_t tick, t[RESOLVERS];
    CHECK_EQ(pthread_create(&tick, NULL, gw_ticker, NULL), 0);
    long long t0 = gw_now_ns();
    for (long i = 0; i < RESOLVERS; i++) CHECK_EQ(pthread_create(&t[i], NULL, resolver, (void *)i), 0);
    for (int i = 0; i < RESOLVERS; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    long long ms = gw_ms_since(t0);
    for (int i = 0; i < RESOLVERS; i++) CHECK(ok[i], "resolver %d failed", i);
    /* Long enough to tick, and the ticker ran meanwhile (the resolver did not block the hub). */
    if (gw_preloaded() && ms >= 20)
        CHECK(gw_ticks > 0, "ticker never ran during %lld ms of resolution", ms);

    /* A failure gives the native code (no such name in /etc/hosts, no network: EAI_NONAME or
     * EAI_AGAIN, the same natively). */
    struct addrinfo *res = NULL;
    int rc = getaddrinfo("no-such-host.invalid", NULL, NULL, &res);
    CHECK(rc == EAI_NONAME || rc == EAI_AGAIN || rc == EAI_FAIL, "getaddrinfo of a bad name: %d (%s)", rc, gai_strerror(rc));
    CHECK(res == NULL);
    rc = getaddrinfo(NULL, NULL, NULL, &res);
    CHECK_EQ(rc, EAI_NONAME);

    struct hostent he, *result = NULL;
    char buf[4096];
    int herr = 0;
    rc = gethostbyname_r("localhost", &he, buf, sizeof buf, &result, &herr);
    CHECK(rc == 0 && result == &he && he.h_addrtype == AF_INET, "gethostbyname_r: %d herr %d", rc, herr);
    herr = 0;
    rc = gethostbyname_r("no-such-host.invalid", &he, buf, sizeof buf, &result, &herr);
    CHECK(result == NULL && herr != 0, "gethostbyname_r of a bad name: rc %d result %p herr %d", rc, (void *)result, herr);

    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char host[256], serv[64];
    rc = getnameinfo((struct sockaddr *)&sin, sizeof sin, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV);
    CHECK(rc == 0 && strcmp(host, "127.0.0.1") == 0 && strcmp(serv, "80") == 0, "getnameinfo: %d %s %s", rc, host, serv);

    gw_ticker_stop = 1;
    CHECK_EQ(pthread_join(tick, NULL), 0);
    return 0;
}
