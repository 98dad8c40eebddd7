/* The scoped tests' probe, compiled into the executables and into libscoped.so alike, so that
 * the same calls are made from both. */
#ifndef SCOPED_HANDOFF_H
#define SCOPED_HANDOFF_H
#include "gwtest.h"
#include <pthread.h>
#include <sys/prctl.h>

struct scoped_handoff {
    int fds[2];
    pid_t writer_tid;
    int writer_on_hub; /* its OS thread is one of the library's extra hubs' (GREENWORLD_HUBS) */
};

static void *scoped_writer(void *arg) {
    struct scoped_handoff *h = arg;
    h->writer_tid = (pid_t)syscall(SYS_gettid);
    char comm[17] = "";
    prctl(PR_GET_NAME, comm);
    h->writer_on_hub = strncmp(comm, "gw-hub-", 7) == 0;
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return (void *)(intptr_t)(write(h->fds[1], "s", 1) == 1);
}

/* A thread made here writes a pipe while the caller reads it: 1 when that thread ran on the
 * caller's own OS thread or on a hub's (pthread_create, nanosleep and read green: the read
 * parked and let the writer run), 0 when it was an OS thread of its own (plain libc), -1 on an
 * error. Timing-free: the writer's kernel thread id (and name) says which. */
static inline int scoped_handoff(void) {
    struct scoped_handoff h = {{-1, -1}, 0, 0};
    if (pipe(h.fds) != 0) return -1;
    pid_t me = (pid_t)syscall(SYS_gettid);
    pthread_t t;
    if (pthread_create(&t, NULL, scoped_writer, &h) != 0) return -1;
    char c = 0;
    ssize_t n = read(h.fds[0], &c, 1);
    void *wrote = NULL;
    if (pthread_join(t, &wrote) != 0) return -1;
    close(h.fds[0]);
    close(h.fds[1]);
    if (n != 1 || c != 's' || !wrote) return -1;
    return h.writer_tid == me || h.writer_on_hub;
}
#endif
