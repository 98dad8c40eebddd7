/* vfork from a process with green threads, the way Python's subprocess uses it: the child,
 * which shares the parent's memory until it execs, resets a signal handler to SIG_DFL,
 * closes and dup2s descriptors the parent's green threads wait on, sets its signal mask, then
 * execs. None of it may reach the parent: afterwards the parent's handler still runs, a green
 * reader parked on a socket still gets its data (not EBADF, not a hang), and the parent's mask
 * is its own. Repeated, with the child exec'ing /bin/true or failing its exec and _exit'ing. */
#include "gwtest.h"
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

static int g_sv[2];
static volatile ssize_t g_got = -2;
static volatile int g_errno;

static void *reader(void *arg) {
    (void)arg;
    char buf[16];
    g_got = recv(g_sv[0], buf, sizeof buf, 0);
    g_errno = errno;
    return NULL;
}

static pid_t vfork_child(const char *path, int fd_to_close) {
    sigset_t none;
    sigemptyset(&none);
    pid_t pid = vfork();
    if (pid == 0) {
        /* What CPython's _posixsubprocess child does before its exec. */
        struct sigaction dfl = {0};
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGUSR1, &dfl, NULL);
        close(fd_to_close);
        dup2(2, fd_to_close);
        pthread_sigmask(SIG_SETMASK, &none, NULL);
        execl(path, path, (char *)NULL);
        _exit(127);
    }
    return pid;
}

int main(void) {
    gw_watchdog("test_vfork", 60);
    gw_catch(SIGUSR1, 0);
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &usr2, NULL), 0);

    for (int round = 0; round < 20; round++) {
        gw_phase = round % 2 ? "vfork + failed exec" : "vfork + exec";
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, g_sv), 0);
        pthread_t t;
        g_got = -2;
        CHECK_EQ(pthread_create(&t, NULL, reader, NULL), 0);
        usleep(5 * 1000); /* the reader waits on g_sv[0] */
        pid_t pid = vfork_child(round % 2 ? "/nonexistent/program" : "/bin/true", g_sv[0]);
        CHECK(pid > 0, "vfork: %s", strerror(errno));
        int status;
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == (round % 2 ? 127 : 0), "child status %#x", status);

        /* The parent's descriptor, its registration and its waiter are intact. */
        CHECK_EQ(send(g_sv[1], "hello", 5, 0), 5);
        CHECK_EQ(pthread_join(t, NULL), 0);
        CHECK(g_got == 5, "reader got %zd (%s)", g_got, strerror(g_errno));

        /* The parent's handler and mask are intact. */
        int before = gw_caught;
        CHECK_EQ(kill(getpid(), SIGUSR1), 0);
        CHECK_EQ(gw_caught, before + 1);
        sigset_t now;
        CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &now), 0);
        CHECK_EQ(sigismember(&now, SIGUSR2), 1);
        close(g_sv[0]);
        close(g_sv[1]);
    }
    puts("test_vfork: ok");
    return 0;
}
