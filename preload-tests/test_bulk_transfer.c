/* 64 MiB through each kind of byte stream, writer and reader in separate threads, plain blocking
 * calls with odd buffer sizes, FNV-1a checksum and byte count compared at both ends (and every
 * byte checked against the generator on the reading side):
 *   TCP loopback, AF_UNIX stream socketpair, pipe;
 *   each once with write(100000)/read(65000) and once with writev/readv of odd iovecs,
 *   and the sockets once more with sendmsg/recvmsg (3 and 2 odd iovecs).
 * Then a pipe shared by 4 writer threads (records of PIPE_BUF bytes: each write is atomic, so
 * every record arrives whole) and 4 reader threads (every record is read exactly once).
 * A blocking write on a stream socket or pipe returns only when every byte is written, so
 * every write/writev must return its full count (true natively and under the preload).
 * Under the preload the transfer runs on one OS thread.
 */
#include "gwtest.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <limits.h>
#include <sys/uio.h>

#define TOTAL (64LL << 20)
#define WCHUNK 100000
#define RCHUNK 65000

/* The byte at stream offset off. */
static inline unsigned char gen(long long off) {
    uint32_t x = (uint32_t)off * 2654435761u;
    return (unsigned char)((x >> 24) ^ (uint32_t)(off >> 16));
}

struct xfer {
    int fd;
    int vectored; /* 0 read/write, 1 readv/writev, 2 recvmsg/sendmsg */
    uint64_t sum;
    long long count;
    long long calls;
    int bad;
    char what[200];
    int max_tasks;
};

static const char *MODE(int vectored, int reading) {
    static const char *names[3][2] = {{"write", "read"}, {"writev", "readv"}, {"sendmsg", "recvmsg"}};
    return names[vectored][reading];
}

static void *writer_main(void *arg) {
    struct xfer *x = arg;
    static const size_t parts[3] = {777, 50001, 12345}; /* writev: 63123 bytes a call */
    unsigned char *buf = malloc(WCHUNK);
    uint64_t h = GW_FNV1A_INIT;
    long long off = 0;
    while (off < TOTAL && !x->bad) {
        size_t len;
        ssize_t w;
        if (!x->vectored) {
            len = (size_t)(TOTAL - off < WCHUNK ? TOTAL - off : WCHUNK);
            for (size_t i = 0; i < len; i++) buf[i] = gen(off + (long long)i);
            w = write(x->fd, buf, len);
        } else {
            struct iovec iov[3];
            size_t used = 0;
            int n = 0;
            for (int k = 0; k < 3 && off + (long long)used < TOTAL; k++) {
                size_t l = parts[k];
                if ((long long)l > TOTAL - off - (long long)used) l = (size_t)(TOTAL - off - (long long)used);
                iov[n].iov_base = buf + used;
                iov[n].iov_len = l;
                used += l;
                n++;
            }
            len = used;
            for (size_t i = 0; i < len; i++) buf[i] = gen(off + (long long)i);
            if (x->vectored == 1) {
                w = writev(x->fd, iov, n);
            } else {
                struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
                w = sendmsg(x->fd, &mh, 0);
            }
        }
        x->calls++;
        if (w != (ssize_t)len) {
            snprintf(x->what, sizeof x->what, "writer: %s returned %zd of %zu at offset %lld: %s",
                     MODE(x->vectored, 0), w, len, off, w < 0 ? strerror(errno) : "short");
            x->bad = 1;
            break;
        }
        h = gw_fnv1a(h, buf, len);
        off += (long long)len;
    }
    int t = gw_os_threads();
    if (t > x->max_tasks) x->max_tasks = t;
    close(x->fd);
    x->sum = h;
    x->count = off;
    free(buf);
    return NULL;
}

static void *reader_main(void *arg) {
    struct xfer *x = arg;
    unsigned char *buf = malloc(RCHUNK);
    uint64_t h = GW_FNV1A_INIT;
    long long off = 0;
    for (;;) {
        ssize_t n;
        if (!x->vectored) {
            n = read(x->fd, buf, RCHUNK);
        } else {
            struct iovec iov[2] = {{buf, 1001}, {buf + 1001, 60000}};
            struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
            n = x->vectored == 1 ? readv(x->fd, iov, 2) : recvmsg(x->fd, &mh, 0);
        }
        x->calls++;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(x->what, sizeof x->what, "reader: %s at offset %lld: %s",
                     MODE(x->vectored, 1), off, strerror(errno));
            x->bad = 1;
            break;
        }
        if (n == 0) break;
        for (ssize_t i = 0; i < n && !x->bad; i++)
            if (buf[i] != gen(off + i)) {
                snprintf(x->what, sizeof x->what, "reader: byte at offset %lld is %d, want %d",
                         off + (long long)i, buf[i], gen(off + i));
                x->bad = 1;
            }
        if (x->bad) break;
        h = gw_fnv1a(h, buf, (size_t)n);
        off += n;
        if (x->calls % 64 == 0) {
            int t = gw_os_threads();
            if (t > x->max_tasks) x->max_tasks = t;
        }
    }
    close(x->fd);
    x->sum = h;
    x->count = off;
    free(buf);
    return NULL;
}

/* A pipe shared by several writers and several readers. */
#define SP_WRITERS 4
#define SP_READERS 4
#define SP_RECORDS 3000 /* per writer */
#define REC PIPE_BUF

struct sp_writer {
    int fd, id, bad;
};

static void *sp_writer_main(void *arg) {
    struct sp_writer *w = arg;
    unsigned char rec[REC];
    for (int i = 0; i < SP_RECORDS; i++) {
        /* a record: writer id, sequence number, then a fill derived from both */
        memset(rec, (w->id * 61 + i) & 0xff, REC);
        rec[0] = (unsigned char)w->id;
        memcpy(rec + 1, &i, sizeof i);
        if (write(w->fd, rec, REC) != REC) { w->bad = 1; break; }
    }
    return NULL;
}

struct sp_reader {
    int fd;
    int bad;
    long records;
    char what[160];
};

static int g_seen[SP_WRITERS][SP_RECORDS];
static pthread_mutex_t g_seen_mu = PTHREAD_MUTEX_INITIALIZER;

static void *sp_reader_main(void *arg) {
    struct sp_reader *r = arg;
    unsigned char rec[REC];
    for (;;) {
        /* reads of exactly one record: whole records are in the pipe, each read gets one
         * (a reader takes at most what it asks for, and writes are record-sized and atomic) */
        size_t got = 0;
        while (got < REC) {
            ssize_t n = read(r->fd, rec + got, REC - got);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) { snprintf(r->what, sizeof r->what, "read: %s", strerror(errno)); r->bad = 1; return NULL; }
            if (n == 0) {
                if (got) { snprintf(r->what, sizeof r->what, "EOF inside a record"); r->bad = 1; }
                return NULL;
            }
            if (got == 0 && n != REC) {
                snprintf(r->what, sizeof r->what, "a read got %zd bytes, not one whole record", n);
                r->bad = 1;
                return NULL;
            }
            got += (size_t)n;
        }
        int id = rec[0], seq;
        memcpy(&seq, rec + 1, sizeof seq);
        if (id >= SP_WRITERS || seq < 0 || seq >= SP_RECORDS) {
            snprintf(r->what, sizeof r->what, "garbled record header %d/%d", id, seq);
            r->bad = 1;
            return NULL;
        }
        unsigned char fill = (unsigned char)((id * 61 + seq) & 0xff);
        for (int k = 1 + (int)sizeof seq; k < REC; k++)
            if (rec[k] != fill) {
                snprintf(r->what, sizeof r->what, "record %d/%d mixed at byte %d", id, seq, k);
                r->bad = 1;
                return NULL;
            }
        pthread_mutex_lock(&g_seen_mu);
        g_seen[id][seq]++;
        pthread_mutex_unlock(&g_seen_mu);
        r->records++;
    }
}

static void shared_pipe(void) {
    int p[2];
    CHECK_EQ(pipe(p), 0);
    struct sp_reader rd[SP_READERS];
    struct sp_writer wr[SP_WRITERS];
    pthread_t rt[SP_READERS], wt[SP_WRITERS];
    memset(rd, 0, sizeof rd);
    memset(wr, 0, sizeof wr);
    long long t0 = gw_now_ns();
    for (int i = 0; i < SP_READERS; i++) {
        rd[i].fd = p[0];
        CHECK_EQ(pthread_create(&rt[i], NULL, sp_reader_main, &rd[i]), 0);
    }
    for (int i = 0; i < SP_WRITERS; i++) {
        wr[i].fd = p[1];
        wr[i].id = i;
        CHECK_EQ(pthread_create(&wt[i], NULL, sp_writer_main, &wr[i]), 0);
    }
    for (int i = 0; i < SP_WRITERS; i++) {
        CHECK_EQ(pthread_join(wt[i], NULL), 0);
        CHECK(!wr[i].bad, "shared pipe writer %d: short write", i);
    }
    close(p[1]);
    long total = 0;
    for (int i = 0; i < SP_READERS; i++) {
        CHECK_EQ(pthread_join(rt[i], NULL), 0);
        CHECK(!rd[i].bad, "shared pipe reader %d: %s", i, rd[i].what);
        total += rd[i].records;
    }
    close(p[0]);
    CHECK_EQ(total, SP_WRITERS * SP_RECORDS);
    for (int w = 0; w < SP_WRITERS; w++)
        for (int i = 0; i < SP_RECORDS; i++)
            CHECK(g_seen[w][i] == 1, "record %d/%d seen %d times", w, i, g_seen[w][i]);
    int busy = 0;
    for (int i = 0; i < SP_READERS; i++) busy += rd[i].records > 0;
    printf("bulk_transfer: shared pipe: %d writers x %d records of %d bytes, %d of %d readers got "
           "some, %lld ms\n", SP_WRITERS, SP_RECORDS, REC, busy, SP_READERS,
           gw_ms_since(t0));
}

static void run(const char *kind, int vectored) {
    int fds[2];
    if (!strcmp(kind, "tcp")) gw_tcp_pair(fds);
    else if (!strcmp(kind, "unix")) CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    else CHECK_EQ(pipe(fds), 0);
    struct xfer w = {.fd = fds[1], .vectored = vectored}, r = {.fd = fds[0], .vectored = vectored};
    long long t0 = gw_now_ns();
    pthread_t tw, tr;
    /* Reader first: it parks on an empty stream until the writer runs. */
    CHECK_EQ(pthread_create(&tr, NULL, reader_main, &r), 0);
    CHECK_EQ(pthread_create(&tw, NULL, writer_main, &w), 0);
    CHECK_EQ(pthread_join(tw, NULL), 0);
    CHECK_EQ(pthread_join(tr, NULL), 0);
    long long ms = gw_ms_since(t0);
    CHECK(!w.bad, "%s %s: %s", kind, MODE(vectored, 0), w.what);
    CHECK(!r.bad, "%s %s: %s", kind, MODE(vectored, 1), r.what);
    CHECK_EQ(w.count, TOTAL);
    CHECK_EQ(r.count, TOTAL);
    CHECK(w.sum == r.sum, "%s: checksum sent %016llx, received %016llx", kind,
          (unsigned long long)w.sum, (unsigned long long)r.sum);
    int tasks = w.max_tasks > r.max_tasks ? w.max_tasks : r.max_tasks;
    if (gw_preloaded()) CHECK(tasks == 1, "%s: %d OS threads during the transfer", kind, tasks);
    else CHECK(tasks >= 2, "%s: natively %d tasks", kind, tasks);
    printf("bulk_transfer: %-4s %-8s 64 MiB fnv1a %016llx, %lld writes, %lld reads, %lld ms\n", kind,
           MODE(vectored, 0), (unsigned long long)r.sum, w.calls, r.calls, ms);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);
    const char *kinds[] = {"tcp", "unix", "pipe"};
    for (int k = 0; k < 3; k++)
        for (int v = 0; v < (k < 2 ? 3 : 2); v++) run(kinds[k], v);
    shared_pipe();
    return 0;
}
