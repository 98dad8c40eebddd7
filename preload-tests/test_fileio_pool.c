#include "gwtest.h"
/* GREENWORLD_FILEIO=pool: regular-file calls from green threads run on the thread pool with
 * exactly libc's results and errno.
 *
 * The test re-runs itself three times (argv[1] == "--child"): without the preload (the native
 * reference), and with GREENWORLD_FILEIO=off and =pool (under the preload when the test runs
 * under it; natively all three are native). Each child runs a battery of file operations from
 * 32 threads at once, each on its own file in a fresh mkdtemp directory: open/creat (and the
 * 64-bit and fortified forms), write, pwrite, writev, read, pread, readv, fsync, fdatasync,
 * contents verified, short reads at EOF, EOF, O_APPEND, EINVAL for a negative offset, EBADF on a
 * closed descriptor and on the wrong access mode, EISDIR, ENOENT, EEXIST, and, for contrast,
 * the same calls on a pipe (never pooled). Each child checks every result itself and prints a
 * transcript (results and errno names, no descriptor numbers); the parent requires the three
 * transcripts to be identical.
 *
 * Each child also checks liveness: a ticker thread ticks while another thread runs a loop of
 * 4 KiB pwrite + fsync, which goes on until it has (natively, and under the preload with pool;
 * with off the loop, 200 ms, blocks the one OS thread, which is the point of the option). Under the preload, the
 * pool child has pool threads (/proc/self/task > 1) and reports "file:N" parks with N > 0 in
 * its GREENWORLD_STATS line, while the off child stays on exactly 1 OS thread with "file:0";
 * is_monkey_patched answers for the file-only calls (pread) only in pool mode. In pool mode
 * (and natively) two threads also open the two ends of a FIFO, which blocks natively until
 * both ends are open: on the pool they meet (with off the first open would block the one OS
 * thread for good). A last child checks that a signal handler's file calls are never pooled,
 * and under the preload one more, at two hubs, that a pool thread started from the second
 * hub's OS thread does not take that hub's name (and so is counted as an OS thread). */
#include <pthread.h>
#include <sys/stat.h>
#include <sys/uio.h>

extern int __open_2(const char *, int);
extern int __open64_2(const char *, int);
extern int __openat_2(int, const char *, int);
extern ssize_t __pread_chk(int, void *, size_t, off_t, size_t);
extern ssize_t __pread64_chk(int, void *, size_t, off64_t, size_t);

enum { THREADS = 32, BIG = 256 * 1024, LOG = 8192 };

static char dir[64];
static int dirfd_;

/* One thread's transcript. */
struct rec {
    int id;
    char log[LOG];
    size_t len;
};

static void note(struct rec *r, const char *op, long ret, int err) {
    int n;
    if (ret == -1)
        n = snprintf(r->log + r->len, LOG - r->len, " %s=-1:%s", op, strerrorname_np(err));
    else
        n = snprintf(r->log + r->len, LOG - r->len, " %s=%ld", op, ret);
    CHECK(n > 0 && (size_t)n < LOG - r->len, "transcript of thread %d full", r->id);
    r->len += (size_t)n;
}

/* Runs `expr`, records it, and requires the result `want` (WANT_FD: any descriptor, recorded
 * as "fd") and, for -1, errno `err`. */
#define WANT_FD (-1000)
#define OP(r, name, expr, want, err)                                                                    \
    ({                                                                                                  \
        errno = 0;                                                                                      \
        long op_ret_ = (long)(expr);                                                                    \
        int op_err_ = errno;                                                                            \
        if ((want) == WANT_FD) {                                                                        \
            CHECK(op_ret_ >= 0, "thread %d: %s = %ld (%s)", (r)->id, name, op_ret_, strerror(op_err_)); \
            note(r, name, 0, 0);                                                                        \
        } else {                                                                                        \
            note(r, name, op_ret_, op_err_);                                                            \
            CHECK(op_ret_ == (want), "thread %d: %s = %ld (%s), want %ld", (r)->id, name, op_ret_,      \
                  op_ret_ < 0 ? strerror(op_err_) : "no error", (long)(want));                          \
            if ((want) == -1)                                                                           \
                CHECK(op_err_ == (err), "thread %d: %s: errno %s, want %s", (r)->id, name,              \
                      strerrorname_np(op_err_), strerrorname_np(err));                                  \
        }                                                                                               \
        op_ret_;                                                                                        \
    })

static void fill(char *buf, size_t len, int seed) {
    for (size_t i = 0; i < len; i++) buf[i] = (char)('a' + (i * 7 + (size_t)seed) % 26);
}

static void *battery(void *arg) {
    struct rec *r = arg;
    int id = r->id;
    char path[128], path2[128], name[32];
    snprintf(path, sizeof path, "%s/f%d", dir, id);
    snprintf(path2, sizeof path2, "%s/g%d", dir, id);
    snprintf(name, sizeof name, "f%d", id);
    char *want = malloc(BIG + 64), *got = malloc(BIG + 64);
    CHECK(want && got, "malloc");
    fill(want, BIG, id);

    /* Create, and a second exclusive create of the same file. */
    int fd = (int)OP(r, "open-excl", open(path, O_CREAT | O_EXCL | O_RDWR, 0600), WANT_FD, 0);
    OP(r, "open-excl-again", open(path, O_CREAT | O_EXCL | O_RDWR, 0600), -1, EEXIST);
    OP(r, "openat-excl-again", openat(dirfd_, name, O_CREAT | O_EXCL | O_WRONLY, 0600), -1, EEXIST);

    /* Write it whole, patch it with pwrite and writev, and make it durable. */
    OP(r, "write", write(fd, want, BIG), BIG, 0);
    memcpy(want + 5000, "XYZ", 3);
    OP(r, "pwrite", pwrite(fd, "XYZ", 3, 5000), 3, 0);
    memcpy(want + 7000, "Q", 1);
    OP(r, "pwrite64", pwrite64(fd, "Q", 1, 7000), 1, 0);
    struct iovec wv[2] = {{"tail-", 5}, {"end", 3}};
    OP(r, "writev", writev(fd, wv, 2), 8, 0);
    memcpy(want + BIG, "tail-end", 8);
    size_t size = BIG + 8;
    OP(r, "fsync", fsync(fd), 0, 0);
    OP(r, "fdatasync", fdatasync(fd), 0, 0);

    /* Read it back: the whole file in one read that asks for more (a short read at EOF), then
     * EOF, then reads at offsets, across EOF and past it. */
    OP(r, "lseek", lseek(fd, 0, SEEK_SET), 0, 0);
    OP(r, "read-all", read(fd, got, BIG + 64), (long)size, 0);
    CHECK(memcmp(got, want, size) == 0, "thread %d: file contents differ", id);
    OP(r, "read-eof", read(fd, got, 10), 0, 0);
    OP(r, "pread", pread(fd, got, 100, 4990), 100, 0);
    CHECK(memcmp(got, want + 4990, 100) == 0, "thread %d: pread contents", id);
    OP(r, "pread64", pread64(fd, got, 10, 6995), 10, 0);
    CHECK(memcmp(got, want + 6995, 10) == 0, "thread %d: pread64 contents", id);
    OP(r, "pread-short", pread(fd, got, 100, (off_t)size - 30), 30, 0);
    CHECK(memcmp(got, want + size - 30, 30) == 0, "thread %d: short pread contents", id);
    OP(r, "pread-past-eof", pread(fd, got, 100, (off_t)size + 4096), 0, 0);
    OP(r, "pread-chk", __pread_chk(fd, got, 8, BIG, BIG + 64), 8, 0);
    CHECK(memcmp(got, "tail-end", 8) == 0, "thread %d: __pread_chk contents", id);
    OP(r, "pread64-chk", __pread64_chk(fd, got, 3, 5000, BIG + 64), 3, 0);
    CHECK(memcmp(got, "XYZ", 3) == 0, "thread %d: __pread64_chk contents", id);
    OP(r, "pread-negative", pread(fd, got, 10, -1), -1, EINVAL);
    OP(r, "pwrite-negative", pwrite(fd, "x", 1, -1), -1, EINVAL);
    OP(r, "lseek-back", lseek(fd, 4096, SEEK_SET), 4096, 0);
    char a[100], b[50];
    struct iovec rv[2] = {{a, sizeof a}, {b, sizeof b}};
    OP(r, "readv", readv(fd, rv, 2), 150, 0);
    CHECK(memcmp(a, want + 4096, 100) == 0 && memcmp(b, want + 4196, 50) == 0, "thread %d: readv", id);
    OP(r, "lseek-end", lseek(fd, 0, SEEK_END), (long)size, 0);
    OP(r, "readv-eof", readv(fd, rv, 2), 0, 0);
    OP(r, "read-zero", read(fd, got, 0), 0, 0);

    /* O_APPEND: every write lands at the end, whatever the offset. */
    int afd = (int)OP(r, "open-append", open(path, O_WRONLY | O_APPEND), WANT_FD, 0);
    OP(r, "lseek-append", lseek(afd, 0, SEEK_SET), 0, 0);
    OP(r, "write-append", write(afd, "APPND", 5), 5, 0);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == (off_t)size + 5, "thread %d: size after append %lld", id,
          (long long)st.st_size);
    OP(r, "pread-appended", pread(fd, got, 5, (off_t)size), 5, 0);
    CHECK(memcmp(got, "APPND", 5) == 0, "thread %d: appended contents", id);
    OP(r, "read-wronly", read(afd, got, 1), -1, EBADF);
    OP(r, "pread-wronly", pread(afd, got, 1, 0), -1, EBADF);
    OP(r, "close-append", close(afd), 0, 0);

    /* A closed descriptor (a high number no other thread's open can be given meanwhile). */
    int dead = 700 + id;
    OP(r, "dup2", dup2(fd, dead), dead, 0);
    OP(r, "close-dead", close(dead), 0, 0);
    OP(r, "read-closed", read(dead, got, 1), -1, EBADF);
    OP(r, "write-closed", write(dead, "x", 1), -1, EBADF);
    OP(r, "pread-closed", pread(dead, got, 1, 0), -1, EBADF);
    OP(r, "pwrite-closed", pwrite(dead, "x", 1, 0), -1, EBADF);
    OP(r, "fsync-closed", fsync(dead), -1, EBADF);
    OP(r, "fdatasync-closed", fdatasync(dead), -1, EBADF);
    OP(r, "close", close(fd), 0, 0);

    /* Read-only: writes fail with EBADF. The 64-bit and fortified opens. */
    int rfd = (int)OP(r, "open64-rdonly", open64(path, O_RDONLY), WANT_FD, 0);
    OP(r, "write-rdonly", write(rfd, "x", 1), -1, EBADF);
    OP(r, "pwrite-rdonly", pwrite(rfd, "x", 1, 0), -1, EBADF);
    OP(r, "fsync-rdonly", fsync(rfd), 0, 0);
    OP(r, "close-rdonly", close(rfd), 0, 0);
    int ffd = (int)OP(r, "open-2", __open_2(path, O_RDONLY), WANT_FD, 0);
    OP(r, "close-open-2", close(ffd), 0, 0);
    ffd = (int)OP(r, "open64-2", __open64_2(path, O_RDONLY), WANT_FD, 0);
    OP(r, "close-open64-2", close(ffd), 0, 0);
    ffd = (int)OP(r, "openat-2", __openat_2(dirfd_, name, O_RDONLY), WANT_FD, 0);
    OP(r, "pread-openat-2", pread(ffd, got, 3, 5000), 3, 0);
    OP(r, "close-openat-2", close(ffd), 0, 0);
    OP(r, "open-2-missing", __open_2("/nonexistent-gw/x", O_RDONLY), -1, ENOENT);

    /* creat and creat64 (O_WRONLY|O_CREAT|O_TRUNC). */
    int cfd = (int)OP(r, "creat", creat(path2, 0600), WANT_FD, 0);
    OP(r, "creat-write", write(cfd, want, 4096), 4096, 0);
    OP(r, "creat-read", read(cfd, got, 1), -1, EBADF);
    OP(r, "creat-close", close(cfd), 0, 0);
    cfd = (int)OP(r, "creat64-truncates", creat64(path2, 0600), WANT_FD, 0);
    CHECK(fstat(cfd, &st) == 0 && st.st_size == 0, "thread %d: creat64 did not truncate", id);
    OP(r, "creat64-close", close(cfd), 0, 0);
    OP(r, "creat-missing-dir", creat("/nonexistent-gw/x", 0600), -1, ENOENT);

    /* Missing files, directories. */
    OP(r, "open-missing", open("/nonexistent-gw/x", O_RDONLY), -1, ENOENT);
    OP(r, "openat-missing", openat(dirfd_, "missing", O_RDONLY), -1, ENOENT);
    OP(r, "openat64-missing", openat64(dirfd_, "missing", O_RDONLY), -1, ENOENT);
    OP(r, "open-dir-wronly", open(dir, O_WRONLY), -1, EISDIR);
    int dfd = (int)OP(r, "open-dir", open(dir, O_RDONLY | O_DIRECTORY), WANT_FD, 0);
    OP(r, "read-dir", read(dfd, got, 10), -1, EISDIR);
    OP(r, "pread-dir", pread(dfd, got, 10, 0), -1, EISDIR);
    OP(r, "open-file-as-dir", open(path, O_RDONLY | O_DIRECTORY), -1, ENOTDIR);
    OP(r, "close-dir", close(dfd), 0, 0);

    /* A pipe: the same calls are never pooled, and fail as natively. */
    int p[2];
    OP(r, "pipe", pipe(p), 0, 0);
    OP(r, "pipe-write", write(p[1], "pp", 2), 2, 0);
    OP(r, "pipe-pread", pread(p[0], got, 2, 0), -1, ESPIPE);
    OP(r, "pipe-pwrite", pwrite(p[1], "x", 1, 0), -1, ESPIPE);
    OP(r, "pipe-fsync", fsync(p[1]), -1, EINVAL);
    OP(r, "pipe-read", read(p[0], got, 10), 2, 0);
    close(p[0]);
    close(p[1]);

    /* Errno survives a successful call (glibc's wrappers leave it alone). */
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0, "reopen: %s", strerror(errno));
    errno = EDOM;
    ssize_t n = pread(fd, got, 4, 0);
    note(r, "errno-after-success", errno == EDOM, 0);
    CHECK(n == 4 && errno == EDOM, "thread %d: pread = %zd, errno %s after success", id, n, strerrorname_np(errno));
    close(fd);

    OP(r, "unlink", unlink(path), 0, 0);
    OP(r, "unlink2", unlink(path2), 0, 0);
    free(want);
    free(got);
    return NULL;
}

/* Two threads open the two ends of a FIFO: each open blocks until the other end is open.
 * (Only the opens: the FIFO's I/O is made by main once both threads are gone, with plain
 * libc, so this part tests where the opens run and nothing else.) */
static char fifo[128];
static void *fifo_open(void *arg) {
    int flags = *(int *)arg;
    int fd = open(fifo, flags);
    CHECK(fd >= 0, "open fifo (flags %d): %s", flags, strerror(errno));
    *(int *)arg = fd;
    return NULL;
}

/* A thread's long fsync loop: at least 20 rounds, then until the ticker has ticked twice since
 * it began (`live`), or for 200 ms (not: with off the ticker may never tick meanwhile). Not
 * for a fixed 200 ms when ticks are wanted: on a loaded machine a native ticker may get no CPU
 * for that long, and a liveness check must not be a deadline. The bound below is only there to
 * fail rather than hang when the ticker is starved for good (the fsyncs block its OS thread). */
struct fsync_loop {
    int live;
    long ticked; /* out: the ticks made during the loop */
    int rounds;  /* out */
};
static void *fsync_loop(void *arg) {
    struct fsync_loop *l = arg;
    char path[128], page[4096];
    snprintf(path, sizeof path, "%s/fsync", dir);
    fill(page, sizeof page, 3);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
    long before = gw_ticks;
    long long start = gw_now_ns();
    int n = 0;
    for (;;) {
        long long spent = gw_now_ns() - start;
        if (n >= 20 && (l->live ? gw_ticks - before >= 2 || spent > 30000 * 1000000LL
                                : spent >= 200 * 1000000LL))
            break;
        CHECK_EQ(pwrite(fd, page, sizeof page, (off_t)(n % 16) * 4096), 4096);
        CHECK_EQ(fsync(fd), 0);
        n++;
    }
    close(fd);
    unlink(path);
    l->ticked = gw_ticks - before;
    l->rounds = n;
    return NULL;
}

static int child(void) {
    gw_watchdog("test_fileio_pool child", 90);
    const char *mode = getenv("GREENWORLD_FILEIO");
    int green = gw_preloaded();
    int pool = green && mode && strcmp(mode, "pool") == 0;
    int off = green && !pool;
    strcpy(dir, "/tmp/gw-fileio-XXXXXX");
    CHECK(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
    dirfd_ = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(dirfd_ >= 0, "open %s: %s", dir, strerror(errno));

    gw_phase = "battery";
    static struct rec recs[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        recs[i].id = i;
        CHECK_EQ(pthread_create(&t[i], NULL, battery, &recs[i]), 0);
    }
    /* main too, while the threads run (under the preload: the root of a hub with green threads). */
    {
        char path[128], buf[8];
        snprintf(path, sizeof path, "%s/main", dir);
        int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
        CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
        CHECK_EQ(pwrite(fd, "main-ok", 7, 0), 7);
        CHECK_EQ(fsync(fd), 0);
        CHECK_EQ(pread(fd, buf, sizeof buf, 0), 7);
        CHECK(memcmp(buf, "main-ok", 7) == 0, "main's pread");
        CHECK_EQ(close(fd), 0);
        CHECK_EQ(unlink(path), 0);
    }
    for (int i = 0; i < THREADS; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);

    gw_phase = "fsync loop";
    pthread_t tick, loop;
    struct fsync_loop l = {.live = !off};
    CHECK_EQ(pthread_create(&tick, NULL, gw_ticker, NULL), 0);
    usleep(5000);
    CHECK_EQ(pthread_create(&loop, NULL, fsync_loop, &l), 0);
    CHECK_EQ(pthread_join(loop, NULL), 0);
    gw_ticker_stop = 1;
    CHECK_EQ(pthread_join(tick, NULL), 0);
    if (!off) CHECK(l.ticked >= 2, "the ticker ticked %ld times during %d rounds of fsync (30 s)", l.ticked, l.rounds);

    if (!off) {
        gw_phase = "fifo";
        snprintf(fifo, sizeof fifo, "%s/fifo", dir);
        CHECK(mkfifo(fifo, 0600) == 0, "mkfifo: %s", strerror(errno));
        pthread_t r, w;
        int rfd = O_RDONLY, wfd = O_WRONLY;
        CHECK_EQ(pthread_create(&r, NULL, fifo_open, &rfd), 0);
        usleep(10000); /* the reader's open waits meanwhile */
        CHECK_EQ(pthread_create(&w, NULL, fifo_open, &wfd), 0);
        CHECK_EQ(pthread_join(r, NULL), 0);
        CHECK_EQ(pthread_join(w, NULL), 0);
        char buf[16] = {0};
        CHECK_EQ(write(wfd, "hello fifo", 10), 10);
        CHECK_EQ(close(wfd), 0);
        CHECK_EQ(read(rfd, buf, sizeof buf), 10);
        CHECK(strcmp(buf, "hello fifo") == 0, "fifo read '%s'", buf);
        CHECK_EQ(read(rfd, buf, sizeof buf), 0);
        CHECK_EQ(close(rfd), 0);
        CHECK_EQ(unlink(fifo), 0);
    }
    close(dirfd_);
    CHECK(rmdir(dir) == 0, "rmdir %s: %s", dir, strerror(errno));

    if (green) {
        int tasks = gw_os_threads();
        if (pool) CHECK(tasks > 1, "FILEIO=pool: %d OS thread(s), want pool threads", tasks);
        else CHECK(tasks == 1, "FILEIO=%s: %d OS threads, want 1", mode ? mode : "(unset)", tasks);
        CHECK_EQ(gw_patched("read"), 1);
        CHECK_EQ(gw_patched("pread"), pool);
        CHECK_EQ(gw_patched("open"), pool);
        CHECK_EQ(gw_patched("fsync"), pool);
    }
    for (int i = 0; i < THREADS; i++) printf("T%d%s\n", i, recs[i].log);
    fflush(stdout); /* before the stats line, which is written at exit on the same pipe */
    return 0;
}

/* A signal handler's file calls stay plain libc (natively they are async-signal-safe; a pool
 * hand-off would lock and allocate inside the handler): a green thread raises a signal whose
 * handler makes 10 pwrites, then makes 5 pwrites itself. Under the preload with pool, exactly
 * those 5 are pooled ("file:5"): everything else runs while main is alone. */
static int sig_fd;
static void on_usr1(int sig) {
    (void)sig;
    for (int i = 0; i < 10; i++)
        if (pwrite(sig_fd, "h", 1, i) != 1) _exit(3);
}
static void *raiser(void *arg) {
    CHECK_EQ(raise(SIGUSR1), 0);
    for (int i = 10; i < 15; i++) CHECK_EQ(pwrite(sig_fd, "t", 1, i), 1);
    return arg;
}
static int signal_child(void) {
    char path[] = "/tmp/gw-fileio-sig-XXXXXX", buf[16];
    sig_fd = mkstemp(path);
    CHECK(sig_fd >= 0, "mkstemp: %s", strerror(errno));
    CHECK_EQ(unlink(path), 0);
    struct sigaction sa = {.sa_handler = on_usr1};
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, raiser, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(pread(sig_fd, buf, sizeof buf, 0), 15);
    CHECK(memcmp(buf, "hhhhhhhhhhttttt", 15) == 0, "contents %.15s", buf);
    printf("signal child ok\n");
    fflush(stdout);
    return 0;
}

/* The tasks of this process whose name (comm, with its newline) is `comm`. */
static int tasks_named(const char *comm) {
    DIR *d = opendir("/proc/self/task");
    CHECK(d, "opendir /proc/self/task: %s", strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[300], name[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(name, sizeof name, f)) name[0] = 0;
            fclose(f);
        }
        n += strcmp(name, comm) == 0;
    }
    closedir(d);
    return n;
}

/* At two hubs, a thread on the other hub (gw-hub-1's OS thread) makes the process's first
 * pooled call, so the pool's first thread is started from that OS thread, whose name a new
 * thread takes: it must not pass for the hub (one task named gw-hub-1), and it is counted as
 * one of the process's OS threads (gw_os_threads leaves the hubs out). */
static pid_t main_tid;
static int ran;
static void *pread_on_other_hub(void *arg) {
    __atomic_store_n(&ran, 1, __ATOMIC_SEQ_CST);
    if (gw_tid() == main_tid) return NULL; /* placed on main's hub: try again */
    char c;
    CHECK_EQ(pread(*(int *)arg, &c, 1, 0), 1);
    return arg;
}
static int names_child(void) {
    gw_watchdog("test_fileio_pool names child", 90);
    main_tid = gw_tid();
    char path[] = "/tmp/gw-fileio-names-XXXXXX";
    int fd = mkstemp(path); /* main alone: made in place, no pool thread yet */
    CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
    CHECK_EQ(unlink(path), 0);
    CHECK_EQ(write(fd, "n", 1), 1);
    void *done = NULL;
    for (int i = 0; i < 100 && !done; i++) {
        pthread_t t;
        __atomic_store_n(&ran, 0, __ATOMIC_SEQ_CST);
        CHECK_EQ(pthread_create(&t, NULL, pread_on_other_hub, &fd), 0);
        /* Busy, with no hooked call, until it ran: the other hub takes it meanwhile (main keeps
         * its own; only a preemption lets it start beside main). */
        while (!__atomic_load_n(&ran, __ATOMIC_SEQ_CST)) {}
        CHECK_EQ(pthread_join(t, &done), 0);
    }
    CHECK(done, "no thread ran on the other hub in 100 tries");
    CHECK(tasks_named("gw-hub-1\n") == 1, "%d tasks named gw-hub-1, want 1 (a pool thread took the hub's name)",
          tasks_named("gw-hub-1\n"));
    CHECK(gw_os_threads() > 1, "%d OS thread(s), want the pool's too", gw_os_threads());
    printf("names child ok\n");
    fflush(stdout);
    return 0;
}

static char outs[3][THREADS * LOG + 4096];

/* The transcript lines ("T...") of a child's output. */
static void transcript(const char *out, char *dst, size_t len) {
    size_t used = 0;
    dst[0] = 0;
    for (const char *line = out; *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line + 1) : strlen(line);
        if (line[0] == 'T' && used + n < len) {
            memcpy(dst + used, line, n);
            used += n;
            dst[used] = 0;
        }
        line += n;
    }
}

/* N of "file:N" in a child's stats line, or -1. */
static long file_parks(const char *out) {
    const char *line = strstr(out, "greenworld: stats:");
    const char *p = line ? strstr(line, "file:") : NULL;
    return p ? strtol(p + 5, NULL, 10) : -1;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--child") == 0) return child();
    if (argc > 1 && strcmp(argv[1], "--signal") == 0) return signal_child();
    if (argc > 1 && strcmp(argv[1], "--names") == 0) return names_child();
    gw_watchdog("test_fileio_pool", 110);
    static const char *const envs[3][6] = {
        {"-LD_PRELOAD", "-GREENWORLD_FILEIO", "-GREENWORLD_OS", "-GREENWORLD_STATS", NULL},
        {"GREENWORLD_FILEIO=off", "-GREENWORLD_OS", "GREENWORLD_STATS=1", NULL},
        {"GREENWORLD_FILEIO=pool", "-GREENWORLD_OS", "GREENWORLD_STATS=1", NULL},
    };
    static const char *const names[3] = {"native", "FILEIO=off", "FILEIO=pool"};
    static char trans[3][THREADS * LOG + 4096];
    for (int i = 0; i < 3; i++) {
        gw_phase = names[i];
        int status = gw_run_self(envs[i], outs[i], sizeof outs[i], "--child", NULL);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s child: status %d:\n%s", names[i], status,
              outs[i]);
        transcript(outs[i], trans[i], sizeof trans[i]);
        CHECK(strstr(trans[i], "T31 "), "%s child: no transcript:\n%s", names[i], outs[i]);
    }
    for (int i = 1; i < 3; i++) {
        if (strcmp(trans[0], trans[i]) == 0) continue;
        const char *a = trans[0], *b = trans[i];
        while (*a && *a == *b) a++, b++;
        CHECK(0, "%s differs from native at: ...%.120s\nnative: ...%.120s", names[i], b, a);
    }
    {
        gw_phase = "signal handler";
        /* One hub: with several, main may always park, so its own calls are pooled too and the
         * count no longer tells a handler's apart. */
        const char *env[] = {"GREENWORLD_FILEIO=pool", "-GREENWORLD_OS", "GREENWORLD_STATS=1",
                             "-GREENWORLD_HUBS", NULL};
        int status = gw_run_self(env, outs[0], sizeof outs[0], "--signal", NULL);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && strstr(outs[0], "signal child ok\n"),
              "signal child: status %d:\n%s", status, outs[0]);
        if (gw_preloaded())
            CHECK(file_parks(outs[0]) == 5, "a handler's calls were pooled (want file:5):\n%s", outs[0]);
    }
    if (gw_preloaded()) {
        gw_phase = "pool thread names";
        const char *env[] = {"GREENWORLD_FILEIO=pool", "-GREENWORLD_OS", "GREENWORLD_HUBS=2", NULL};
        int status = gw_run_self(env, outs[0], sizeof outs[0], "--names", NULL);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && strstr(outs[0], "names child ok\n"),
              "names child: status %d:\n%s", status, outs[0]);
    }
    if (gw_preloaded()) {
        CHECK(file_parks(outs[1]) == 0, "FILEIO=off: want file:0 in the stats line:\n%.400s", outs[1]);
        long parks = file_parks(outs[2]);
        CHECK(parks > THREADS, "FILEIO=pool: want file:N > %d in the stats line, got %ld:\n%.400s", THREADS, parks,
              outs[2]);
    }
    return 0;
}
