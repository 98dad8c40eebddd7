/* Named FIFOs (mkfifo), whose reads and writes the kernel does not let be made non-blocking
 * per call (RWF_NOWAIT: EOPNOTSUPP on a FIFO opened by name), between threads of this very
 * process (a read or write that blocked the OS thread would hang the test under the preload):
 *  - a read of an empty FIFO waits for the writer thread and gets its bytes;
 *  - 1 MiB through a FIFO (more than it holds) with a slow reader: every byte, in order;
 *  - writes of PIPE_BUF bytes from 4 threads at once stay whole (atomic);
 *  - the reader sees EOF (0) once the last writer closes; a write with no reader left is EPIPE. */
#include "gwtest.h"
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

enum { BIG = 1 << 20, WRITERS = 4, RECORDS = 64 };

static char g_path[256];
static int g_rd, g_wr;

static unsigned char pattern(size_t i) { return (unsigned char)(i * 7 + i / 4093); }

static void *write_big(void *arg) {
    (void)arg;
    static unsigned char buf[BIG];
    for (size_t i = 0; i < BIG; i++) buf[i] = pattern(i);
    CHECK_EQ(write(g_wr, buf, BIG), BIG);
    return NULL;
}

static void *write_records(void *arg) {
    int id = (int)(intptr_t)arg;
    char rec[PIPE_BUF];
    memset(rec, 'a' + id, sizeof rec);
    for (int i = 0; i < RECORDS; i++) CHECK_EQ(write(g_wr, rec, sizeof rec), sizeof rec);
    return NULL;
}

static size_t read_full(int fd, unsigned char *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        CHECK(n > 0, "read: %zd (%s)", n, strerror(errno));
        got += (size_t)n;
    }
    return got;
}

int main(void) {
    gw_watchdog("test_fifo", 60);
    signal(SIGPIPE, SIG_IGN);
    snprintf(g_path, sizeof g_path, "/tmp/gw_fifo_%d", (int)getpid());
    unlink(g_path);
    CHECK_EQ(mkfifo(g_path, 0600), 0);
    /* Open without blocking on the other end: the reader non-blocking first, then blocking. */
    g_rd = open(g_path, O_RDONLY | O_NONBLOCK);
    CHECK(g_rd >= 0, "open: %s", strerror(errno));
    g_wr = open(g_path, O_WRONLY);
    CHECK(g_wr >= 0, "open: %s", strerror(errno));
    CHECK_EQ(fcntl(g_rd, F_SETFL, fcntl(g_rd, F_GETFL) & ~O_NONBLOCK), 0);
    pthread_t t, w[WRITERS];
    unsigned char buf[4096];

    gw_phase = "read waits for the writer";
    t = gw_write_later(g_wr, "late", 50);
    CHECK_EQ(read(g_rd, buf, sizeof buf), 4);
    CHECK(memcmp(buf, "late", 4) == 0, "read '%.4s'", buf);
    CHECK_EQ(pthread_join(t, NULL), 0);

    gw_phase = "1 MiB with a slow reader";
    CHECK_EQ(pthread_create(&t, NULL, write_big, NULL), 0);
    size_t at = 0;
    while (at < BIG) {
        usleep(at % (256 * 1024) == 0 ? 20 * 1000 : 0);
        size_t want = BIG - at < sizeof buf ? BIG - at : sizeof buf;
        ssize_t n = read(g_rd, buf, want);
        CHECK(n > 0, "read at %zu: %zd (%s)", at, n, strerror(errno));
        for (ssize_t i = 0; i < n; i++)
            CHECK(buf[i] == pattern(at + (size_t)i), "byte %zu differs", at + (size_t)i);
        at += (size_t)n;
    }
    CHECK_EQ(pthread_join(t, NULL), 0);

    gw_phase = "atomic PIPE_BUF writes";
    for (int i = 0; i < WRITERS; i++) CHECK_EQ(pthread_create(&w[i], NULL, write_records, (void *)(intptr_t)i), 0);
    static unsigned char rec[PIPE_BUF];
    int counts[WRITERS] = {0};
    for (int r = 0; r < WRITERS * RECORDS; r++) {
        read_full(g_rd, rec, sizeof rec);
        int id = rec[0] - 'a';
        CHECK(id >= 0 && id < WRITERS, "record of writer %d", id);
        for (size_t i = 1; i < sizeof rec; i++) CHECK(rec[i] == rec[0], "record %d torn at byte %zu", r, i);
        counts[id]++;
    }
    for (int i = 0; i < WRITERS; i++) {
        CHECK_EQ(pthread_join(w[i], NULL), 0);
        CHECK_EQ(counts[i], RECORDS);
    }

    gw_phase = "EOF and EPIPE";
    CHECK_EQ(close(g_wr), 0);
    CHECK_EQ(read(g_rd, buf, sizeof buf), 0);
    g_wr = open(g_path, O_WRONLY | O_NONBLOCK); /* the reader is still open: this succeeds */
    CHECK(g_wr >= 0, "open: %s", strerror(errno));
    CHECK_EQ(fcntl(g_wr, F_SETFL, fcntl(g_wr, F_GETFL) & ~O_NONBLOCK), 0);
    CHECK_EQ(close(g_rd), 0);
    errno = 0;
    CHECK_EQ(write(g_wr, "x", 1), -1);
    CHECK_EQ(errno, EPIPE);
    close(g_wr);
    unlink(g_path);
    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1);
    puts("test_fifo: ok");
    return 0;
}
