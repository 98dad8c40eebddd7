#include "gwtest.h"
#include <pthread.h>
/* A signal whose handler asks for SA_RESTART arrives while a thread waits in read on an empty
 * pipe, and the data follows at once, before that thread runs again: the read returns the
 * data (natively the signal goes to main and the reader never notices). Green, the hub sees
 * the pipe's edge and the signal at the same look: the restarted read must not wait for an
 * edge it has already been woken by. Then the same with a socket and recv. */

static int fds[2];
static void *reader(void *arg) {
    char c = 0;
    ssize_t n = arg ? recv(fds[0], &c, 1, 0) : read(fds[0], &c, 1);
    return (void *)(intptr_t)(n == 1 && c == 'x');
}

static void round_trip(int socket) {
    pthread_t t;
    void *ok;
    CHECK_EQ(pthread_create(&t, NULL, reader, socket ? (void *)1 : NULL), 0);
    usleep(50 * 1000); /* the reader is waiting */
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(write(fds[1], "x", 1), 1);
    CHECK_EQ(pthread_join(t, &ok), 0);
    CHECK((intptr_t)ok == 1, "the %s read did not return the byte", socket ? "socket" : "pipe");
}

int main(void) {
    gw_watchdog("test_restart_edge", 30);
    gw_catch(SIGUSR1, SA_RESTART);
    for (int i = 0; i < 20; i++) {
        gw_phase = "pipe";
        CHECK_EQ(pipe(fds), 0);
        round_trip(0);
        close(fds[0]);
        close(fds[1]);
        gw_phase = "socket";
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
        round_trip(1);
        close(fds[0]);
        close(fds[1]);
    }
    CHECK_EQ(gw_caught, 40);
    printf("restart edge ok\n");
    return 0;
}
