/* A program at its descriptor limit (RLIMIT_NOFILE reached) can still create threads natively:
 * pthread_create needs no descriptor. Under the preload a first green thread needs a hub (an
 * epoll instance and an eventfd); when none can be made, the new thread is a real OS thread,
 * never an EAGAIN, and nothing is printed. Once a few descriptors are free, threads are made
 * (and work) again. The test re-runs itself ("child") so that its stderr can be read. */
#include "gwtest.h"
#include <pthread.h>
#include <sys/resource.h>

static void *ret7(void *arg) { (void)arg; usleep(1000); return (void *)7; }

static void create_and_join(void) {
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, ret7, NULL), 0);
    void *value;
    CHECK_EQ(pthread_join(t, &value), 0);
    CHECK(value == (void *)7);
}

static int child(void) {
    struct rlimit rl = {32, 32};
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    int fds = 0;
    while (open("/dev/null", O_RDONLY) >= 0) fds++;
    CHECK_EQ(errno, EMFILE);
    create_and_join();
    create_and_join();
    /* Free a few descriptors: a hub can be made now. */
    for (int fd = 3 + fds - 1; fd > 3 + fds - 6; fd--) close(fd);
    create_and_join();
    printf("child ok\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1) return child();
    char out[4096];
    const char *env[] = {"-GREENWORLD_LOG", "-GREENWORLD_STATS", NULL};
    int status = gw_run_self(env, out, sizeof out, "child", NULL);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: %s", out);
    CHECK(strcmp(out, "child ok\n") == 0, "%s", out);
    return 0;
}
