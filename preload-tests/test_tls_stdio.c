#include "gwtest.h"
#include <pthread.h>
/* Many threads printf to stdout, a pipe that a child process drains slowly, with malloc and free
 * between their lines: nothing deadlocks and every line arrives whole. stdio's FILE lock is
 * recursive and owned by THREAD_SELF; private thread-locals keep THREAD_SELF the OS thread's
 * (trap 17), so a thread whose turn ends while another holds stdout's lock (the other parked in
 * glibc's internal write to the full pipe blocks the whole OS thread, as natively it blocks its
 * own) never waits on that lock's raw futex. Each line carries its thread's __thread number,
 * which must be its own (not under GREENWORLD_TLS=shared, where the threads share it by request:
 * there only the lines' wholeness is checked). */

#define THREADS 64
#define LINES 200

static __thread int me;

static void *body(void *arg) {
    me = (int)(long)arg;
    for (int i = 0; i < LINES; i++) {
        char *junk = malloc(64 + (size_t)(i % 7) * 512);
        CHECK(junk != NULL, "malloc");
        memset(junk, me, 64);
        printf("line %d %d %d end\n", (int)(long)arg, me, i);
        if (i % 16 == 0) usleep(100);
        free(junk);
    }
    return NULL;
}

int main(void) {
    gw_watchdog("test_tls_stdio", 60);
    const char *tls = getenv("GREENWORLD_TLS");
    int shared_tls = gw_preloaded() && tls && strcmp(tls, "shared") == 0;
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    pid_t reader = fork();
    CHECK(reader >= 0, "fork");
    if (reader == 0) {
        close(fds[1]);
        char buf[4096];
        size_t got = 0, lines = 0, bad = 0;
        char line[128];
        size_t len = 0;
        ssize_t n;
        while ((n = read(fds[0], buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < n; i++) {
                if (buf[i] != '\n') {
                    if (len < sizeof line - 1) line[len++] = buf[i];
                    continue;
                }
                line[len] = 0;
                int t, m, k;
                char end[8];
                if (sscanf(line, "line %d %d %d %7s", &t, &m, &k, end) != 4 || (t != m && !shared_tls) || strcmp(end, "end") != 0)
                    bad++;
                lines++;
                len = 0;
            }
            got += (size_t)n;
            usleep(200); /* slowly: the pipe fills */
        }
        if (lines != THREADS * LINES || bad) {
            fprintf(stderr, "reader: %zu lines, %zu bad (want %d)\n", lines, bad, THREADS * LINES);
            _exit(1);
        }
        _exit(0);
    }
    close(fds[0]);
    CHECK(dup2(fds[1], 1) == 1, "dup2");
    close(fds[1]);
    setvbuf(stdout, NULL, _IOFBF, 512);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) CHECK_EQ(pthread_create(&t[i], NULL, body, (void *)(long)(i + 1)), 0);
    for (int i = 0; i < THREADS; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    fflush(stdout);
    close(1);
    int status;
    CHECK_EQ(waitpid(reader, &status, 0), reader);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the reader saw broken or missing lines");
    return 0;
}
