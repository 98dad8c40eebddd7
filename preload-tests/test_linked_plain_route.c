// link: greenworld
#include "gwtest.h"
#include <pthread.h>
#include <stdatomic.h>
#include "greenworld.h"
/* The plain route across greenworld_monkey_patch in a linked program (issue 15): with `socket`
 * patched and `os` not, a pipe is plain libc, and its reads and writes go straight to libc once
 * seen; `monkey_patch(GW_OS | GW_THREAD)` then makes it green: a read of the empty pipe parks
 * while a green thread made after runs and writes what it waits for (a plain read would block
 * the only hub: the test runs itself at GREENWORLD_HUBS=1, and hangs until its watchdog).
 * Natively linked, the library starts unengaged and each call engages more; under the preload
 * all is patched from the start; natively the thread is an OS thread. Every way passes. */

static int p[2];
static atomic_int ran;

static void *note_and_write(void *arg) {
    (void)arg;
    atomic_store(&ran, 1);
    CHECK_EQ(write(p[1], "x", 1), 1);
    return NULL;
}

int main(int argc, char **argv) {
    (void)argc;
    const char *hubs = getenv("GREENWORLD_HUBS");
    if (!hubs || strcmp(hubs, "1") != 0) {
        setenv("GREENWORLD_HUBS", "1", 1);
        execv(gw_self(), argv);
        perror("execv");
        return 1;
    }
    gw_watchdog("test_linked_plain_route", 30);
    gw_phase = "socket patched, os not: a pipe seen plain";
    CHECK_EQ(greenworld_monkey_patch(GW_SOCKET), 0);
    CHECK_EQ(pipe(p), 0);
    char c = 0;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(write(p[1], "ab", 2), 2);
        CHECK_EQ(read(p[0], &c, 1), 1);
        CHECK_EQ(read(p[0], &c, 1), 1);
    }
    gw_phase = "os and thread patched: the pipe's read parks, the green thread writes";
    CHECK_EQ(greenworld_monkey_patch(GW_OS | GW_THREAD), 0);
    CHECK_EQ(greenworld_is_monkey_patched("os"), 1);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, note_and_write, NULL), 0);
    CHECK_EQ(read(p[0], &c, 1), 1);
    CHECK(c == 'x' && atomic_load(&ran), "read %d, thread ran %d", c, atomic_load(&ran));
    CHECK_EQ(pthread_join(t, NULL), 0);
    return 0;
}
