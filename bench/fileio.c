/* fileio: the cost of one regular-file call, made from a thread that is not main (a green
 * thread under the preload, so GREENWORLD_FILEIO=pool hands it to the thread pool).
 *   fileio pread [N]  pread(fd, buf, 4096, 0) of a 4 KiB file in the page cache
 *   fileio fsync [N]  pwrite(fd, 4 KiB, 0) + fsync(fd) on a file in $TMPDIR (default /tmp),
 *                     while another thread ticks (usleep(1000) in a loop)
 * RESULT ns_per_op = wall ns per pread, or per pwrite+fsync pair; ticks_per_s = how often the
 * other thread ticked per second of the fsync loop (near 1000 when the loop does not stop it). */
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#include "bench.h"

static const char *mode;
static long n;
static double ns_per_op, ticks_per_s;
static volatile long ticks;
static volatile int stop;

static void *ticker(void *arg) {
    while (!stop) {
        usleep(1000);
        ticks++;
    }
    return arg;
}

static void *worker(void *arg) {
    const char *tmp = getenv("TMPDIR");
    char path[4096], page[4096];
    snprintf(path, sizeof path, "%s/bench-fileio-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) die("fileio: mkstemp %s: %s", path, strerror(errno));
    unlink(path);
    memset(page, 'f', sizeof page);
    if (pwrite(fd, page, sizeof page, 0) != (ssize_t)sizeof page) die("fileio: pwrite: %s", strerror(errno));
    int sync = strcmp(mode, "fsync") == 0;
    if (!sync && strcmp(mode, "pread") != 0) die("usage: fileio pread|fsync [N]");
    for (int i = 0; i < 100; i++) /* warm-up: the pool thread exists, the page is cached */
        if (pread(fd, page, sizeof page, 0) != (ssize_t)sizeof page) die("fileio: pread: %s", strerror(errno));
    long ticks0 = ticks;
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if (sync) {
            if (pwrite(fd, page, sizeof page, 0) != (ssize_t)sizeof page) die("fileio: pwrite: %s", strerror(errno));
            if (fsync(fd) != 0) die("fileio: fsync: %s", strerror(errno));
        } else if (pread(fd, page, sizeof page, 0) != (ssize_t)sizeof page) {
            die("fileio: pread: %s", strerror(errno));
        }
    }
    uint64_t elapsed = now_ns() - t0;
    ns_per_op = (double)elapsed / (double)n;
    ticks_per_s = (double)(ticks - ticks0) * 1e9 / (double)elapsed;
    close(fd);
    return arg;
}

int main(int argc, char **argv) {
    mode = argc > 1 ? argv[1] : "pread";
    n = argc > 2 ? atol(argv[2]) : 100000;
    pthread_t t, tick;
    int ticking = strcmp(mode, "fsync") == 0;
    if (ticking) {
        int rc = pthread_create(&tick, NULL, ticker, NULL);
        if (rc) die("fileio: pthread_create: %s", strerror(rc));
    }
    int rc = pthread_create(&t, NULL, worker, NULL);
    if (rc) die("fileio: pthread_create: %s", strerror(rc));
    pthread_join(t, NULL);
    if (ticking) {
        stop = 1;
        pthread_join(tick, NULL);
    }
    printf("RESULT ns_per_op=%.1f ticks_per_s=%.0f calls=%ld mode=%s\n", ns_per_op, ticks_per_s, n, mode);
    return 0;
}
