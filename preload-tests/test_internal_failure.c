/* An internal failure of the library is reported, never a crash: with every file descriptor in
 * use, no hub (epoll + eventfd + timerfd) can be made, so pthread_create fails with EAGAIN and
 * one "greenworld: error: ..." line says why. Natively pthread_create needs no fd and succeeds.
 * The process keeps working either way. */
#include "gwtest.h"
#include <pthread.h>
#include <sys/resource.h>

static void *ret7(void *arg) { (void)arg; return (void *)7; }

static int child(void) {
    struct rlimit rl = {32, 32};
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    int fds = 0;
    while (open("/dev/null", O_RDONLY) >= 0) fds++;
    CHECK_EQ(errno, EMFILE);
    pthread_t t;
    int rc = pthread_create(&t, NULL, ret7, NULL);
    if (gw_preloaded()) {
        CHECK_EQ(rc, EAGAIN);
    } else {
        CHECK_EQ(rc, 0);
        void *value;
        CHECK_EQ(pthread_join(t, &value), 0);
        CHECK(value == (void *)7);
    }
    /* Free a few descriptors: now a hub can be made, and threads work again. */
    for (int fd = 3 + fds - 1; fd > 3 + fds - 6; fd--) close(fd);
    CHECK_EQ(pthread_create(&t, NULL, ret7, NULL), 0);
    void *value;
    CHECK_EQ(pthread_join(t, &value), 0);
    CHECK(value == (void *)7);
    printf("child ok\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1) return child();
    char out[4096];
    char *args[] = {(char *)gw_self(), "child", NULL};
    int status = gw_run(NULL, args, out, sizeof out);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: %s", out);
    CHECK(strstr(out, "child ok"), "%s", out);
    if (gw_preloaded()) {
        CHECK(strstr(out, "greenworld: error: cannot start a hub"), "no message: %s", out);
        CHECK(strstr(out, "EAGAIN"), "%s", out);
    } else {
        CHECK(!strstr(out, "greenworld"), "%s", out);
    }
    return 0;
}
