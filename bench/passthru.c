/* passthru: tight loops of calls that a preload library must pass straight to libc.
 *   passthru fileread [N]  lseek(fd, 0, SEEK_SET) + read(fd, buf, 64) on a small regular file
 *   passthru devzero  [N]  read(fd, buf, 64) on /dev/zero (a character device)
 *   passthru pipe     [N]  write(p[1], buf, 64) + read(p[0], buf, 64) on a pipe (the bench runs
 *                          this one with GREENWORLD_OS=0: a call of an unpatched subsystem)
 *   passthru mutex    [N]  pthread_mutex_lock + unlock, uncontended, single thread
 * RESULT ns_per_op = wall ns per loop iteration. */
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#include "bench.h"

int main(int argc, char **argv) {
    const char *m = argc > 1 ? argv[1] : "fileread";
    long n = argc > 2 ? atol(argv[2]) : 1000000;
    char buf[64];
    uint64_t t0 = 0, t1 = 0;
    if (strcmp(m, "fileread") == 0) {
        char path[] = "/tmp/bench-passthru-XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0) die("passthru: mkstemp: %s", strerror(errno));
        unlink(path);
        char page[4096];
        memset(page, 'a', sizeof page);
        if (write(fd, page, sizeof page) != (ssize_t)sizeof page) die("passthru: write: %s", strerror(errno));
        t0 = now_ns();
        for (long i = 0; i < n; i++) {
            lseek(fd, 0, SEEK_SET);
            if (read(fd, buf, sizeof buf) != (ssize_t)sizeof buf) die("passthru: read: %s", strerror(errno));
        }
        t1 = now_ns();
    } else if (strcmp(m, "devzero") == 0) {
        int fd = open("/dev/zero", O_RDONLY);
        if (fd < 0) die("passthru: /dev/zero: %s", strerror(errno));
        t0 = now_ns();
        for (long i = 0; i < n; i++)
            if (read(fd, buf, sizeof buf) != (ssize_t)sizeof buf) die("passthru: read: %s", strerror(errno));
        t1 = now_ns();
    } else if (strcmp(m, "pipe") == 0) {
        int p[2];
        if (pipe(p)) die("passthru: pipe: %s", strerror(errno));
        memset(buf, 'p', sizeof buf);
        t0 = now_ns();
        for (long i = 0; i < n; i++) {
            if (write(p[1], buf, sizeof buf) != (ssize_t)sizeof buf) die("passthru: write: %s", strerror(errno));
            if (read(p[0], buf, sizeof buf) != (ssize_t)sizeof buf) die("passthru: read: %s", strerror(errno));
        }
        t1 = now_ns();
    } else if (strcmp(m, "mutex") == 0) {
        static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
        t0 = now_ns();
        for (long i = 0; i < n; i++) {
            pthread_mutex_lock(&mu);
            pthread_mutex_unlock(&mu);
        }
        t1 = now_ns();
    } else {
        die("usage: passthru fileread|devzero|pipe|mutex [N]");
    }
    printf("RESULT ns_per_op=%.2f calls=%ld mode=%s\n", (double)(t1 - t0) / n, n, m);
    return 0;
}
