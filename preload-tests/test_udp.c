/* UDP between threads on 127.0.0.1:
 *  - recvfrom in a thread blocks until a datagram arrives (the sender sleeps 50 ms first); the
 *    source address is the sender's;
 *  - message boundaries: datagrams of 1, 100, 1000, 9000 and 0 bytes come back one per call with
 *    their exact sizes (the empty one as 0, which is not EOF); a short buffer truncates
 *    (MSG_TRUNC in msg_flags, and recv(MSG_TRUNC) reports the real length); read() and recv()
 *    on a connected UDP socket; a recv parked in a thread and woken by an empty datagram
 *    returns 0;
 *  - sendmmsg of 8 datagrams returns 8; recvmmsg(8, MSG_WAITFORONE) then returns all 8 with the
 *    right lengths and contents; a recvmmsg(8, MSG_WAITFORONE) parked in a thread returns 1..3
 *    when 3 datagrams come 50 ms later (the rest comes with the next calls); a blocking
 *    recvmmsg(4, 0) waits for 4 datagrams sent 20 ms apart;
 *  - 4 threads parked in recv on one socket share 40 datagrams: each is received exactly once.
 */
#include "gwtest.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>

static int udp_bound(struct sockaddr_in *a) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(s >= 0, "socket: %s", strerror(errno));
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof *a;
    CHECK_EQ(bind(s, (struct sockaddr *)a, sizeof *a), 0);
    CHECK_EQ(getsockname(s, (struct sockaddr *)a, &al), 0);
    return s;
}

struct sender {
    int fd;
    struct sockaddr_in to;
    int delay_ms, count, gap_ms;
    int use_mmsg;
    int ok;
};

static void fill_msg(char *buf, int i, int len) {
    for (int k = 0; k < len; k++) buf[k] = (char)('a' + (i * 7 + k) % 26);
}

static int msg_size(int i) { return 10 + i * 37; }

static void *sender_main(void *arg) {
    struct sender *s = arg;
    usleep((useconds_t)s->delay_ms * 1000);
    s->ok = 1;
    if (s->use_mmsg) {
        struct mmsghdr mm[8];
        struct iovec iov[8];
        char bufs[8][400];
        memset(mm, 0, sizeof mm);
        for (int i = 0; i < s->count; i++) {
            fill_msg(bufs[i], i, msg_size(i));
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = (size_t)msg_size(i);
            mm[i].msg_hdr.msg_iov = &iov[i];
            mm[i].msg_hdr.msg_iovlen = 1;
            mm[i].msg_hdr.msg_name = &s->to;
            mm[i].msg_hdr.msg_namelen = sizeof s->to;
        }
        int n = sendmmsg(s->fd, mm, (unsigned)s->count, 0);
        if (n != s->count) s->ok = 0;
        for (int i = 0; i < n; i++)
            if (mm[i].msg_len != (unsigned)msg_size(i)) s->ok = 0;
        return NULL;
    }
    for (int i = 0; i < s->count; i++) {
        char buf[400];
        fill_msg(buf, i, msg_size(i));
        if (sendto(s->fd, buf, (size_t)msg_size(i), 0, (struct sockaddr *)&s->to, sizeof s->to) !=
            msg_size(i))
            s->ok = 0;
        if (s->gap_ms) usleep((useconds_t)s->gap_ms * 1000);
    }
    return NULL;
}

static void *empty_later(void *arg) {
    struct sender *s = arg;
    usleep(50000);
    s->ok = sendto(s->fd, "", 0, 0, (struct sockaddr *)&s->to, sizeof s->to) == 0;
    return NULL;
}

/* recvmmsg into 8 slots; checks each received datagram against index first+i. */
static int recv_batch(int fd, int vlen, int flags, int first) {
    struct mmsghdr mm[8];
    struct iovec iov[8];
    char bufs[8][400];
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < vlen; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = sizeof bufs[i];
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(fd, mm, (unsigned)vlen, flags, NULL);
    CHECK(n >= 1, "recvmmsg: %d (%s)", n, strerror(errno));
    for (int i = 0; i < n; i++) {
        char want[400];
        fill_msg(want, first + i, msg_size(first + i));
        CHECK_EQ(mm[i].msg_len, msg_size(first + i));
        CHECK(!memcmp(bufs[i], want, (size_t)msg_size(first + i)), "datagram %d content", first + i);
    }
    return n;
}

struct shared_rx {
    int fd;
    int got[40];
    int n;
    int bad;
};
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static void *shared_rx_main(void *arg) {
    struct shared_rx *r = arg;
    for (;;) {
        char buf[64];
        ssize_t n = recv(r->fd, buf, sizeof buf - 1, 0);
        if (n <= 0) { r->bad = 1; return NULL; }
        buf[n] = 0;
        if (!strcmp(buf, "stop")) return NULL;
        int v = atoi(buf);
        pthread_mutex_lock(&g_mu);
        if (v < 0 || v >= 40) r->bad = 1;
        else r->got[v]++;
        r->n++;
        pthread_mutex_unlock(&g_mu);
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    gw_watchdog("udp", 12);
    struct sockaddr_in ra, sa;
    int rx = udp_bound(&ra), tx = udp_bound(&sa);

    /* blocking recvfrom */
    gw_phase = "blocking recvfrom";
    struct sender s = {.fd = tx, .to = ra, .delay_ms = 50, .count = 1};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, sender_main, &s), 0);
    char buf[10000];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    long long t0 = gw_now_ns();
    ssize_t n = recvfrom(rx, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    long long ms = gw_ms_since(t0);
    CHECK_EQ(n, msg_size(0));
    CHECK(ms >= 40, "recvfrom returned after %lld ms: it did not wait", ms);
    CHECK_EQ(fl, sizeof from);
    CHECK_EQ(from.sin_port, sa.sin_port);
    CHECK_EQ(from.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(s.ok, 1);
    errno = 0;
    CHECK_EQ(recvfrom(rx, buf, sizeof buf, MSG_DONTWAIT, NULL, NULL), -1);
    CHECK(errno == EAGAIN, "empty MSG_DONTWAIT: %s", strerror(errno));

    /* boundaries */
    gw_phase = "message boundaries";
    static const int sizes[] = {1, 100, 1000, 9000, 0, 7};
    char out[9000];
    for (int i = 0; i < 6; i++) {
        memset(out, 'A' + i, sizeof out);
        CHECK_EQ(sendto(tx, out, (size_t)sizes[i], 0, (struct sockaddr *)&ra, sizeof ra), sizes[i]);
    }
    for (int i = 0; i < 6; i++) {
        memset(buf, 0, sizeof buf);
        n = recv(rx, buf, sizeof buf, 0);
        CHECK(n == sizes[i], "datagram %d: got %zd bytes, sent %d", i, n, sizes[i]);
        for (int k = 0; k < n; k++) CHECK(buf[k] == 'A' + i, "datagram %d byte %d", i, k);
    }
    /* truncation */
    CHECK_EQ(sendto(tx, out, 100, 0, (struct sockaddr *)&ra, sizeof ra), 100);
    struct iovec iov = {buf, 10};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    CHECK_EQ(recvmsg(rx, &mh, 0), 10);
    CHECK(mh.msg_flags & MSG_TRUNC, "no MSG_TRUNC: flags 0x%x", mh.msg_flags);
    CHECK_EQ(sendto(tx, out, 100, 0, (struct sockaddr *)&ra, sizeof ra), 100);
    CHECK_EQ(recv(rx, buf, 10, MSG_TRUNC), 100);
    CHECK_EQ(sendto(tx, "next", 4, 0, (struct sockaddr *)&ra, sizeof ra), 4);
    CHECK_EQ(recv(rx, buf, sizeof buf, 0), 4); /* the rest of the truncated one is gone */
    CHECK(!memcmp(buf, "next", 4), "after truncation");

    /* connected UDP: read / write / recv / send */
    gw_phase = "connected UDP";
    int cu = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK_EQ(connect(cu, (struct sockaddr *)&ra, sizeof ra), 0);
    CHECK_EQ(write(cu, "w1", 2), 2);
    CHECK_EQ(send(cu, "s22", 3, 0), 3);
    CHECK_EQ(write(cu, "", 0), 0);
    CHECK_EQ(read(rx, buf, sizeof buf), 2);
    CHECK_EQ(recv(rx, buf, sizeof buf, 0), 3);
    CHECK_EQ(read(rx, buf, sizeof buf), 0); /* an empty datagram */
    errno = 0;
    CHECK_EQ(recv(rx, buf, sizeof buf, MSG_DONTWAIT), -1);
    CHECK(errno == EAGAIN, "empty after the empty datagram: %s", strerror(errno));
    close(cu);

    /* a parked recv woken by an empty datagram returns 0 */
    gw_phase = "parked recv, empty datagram";
    s = (struct sender){.fd = tx, .to = ra};
    CHECK_EQ(pthread_create(&t, NULL, empty_later, &s), 0);
    t0 = gw_now_ns();
    n = recv(rx, buf, sizeof buf, 0);
    ms = gw_ms_since(t0);
    CHECK_EQ(n, 0);
    CHECK(ms >= 40, "recv of the empty datagram returned after %lld ms", ms);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(s.ok, 1);

    /* sendmmsg + recvmmsg(MSG_WAITFORONE) of 8 */
    gw_phase = "sendmmsg 8 + recvmmsg 8 MSG_WAITFORONE";
    s = (struct sender){.fd = tx, .to = ra, .count = 8, .use_mmsg = 1};
    sender_main(&s);
    CHECK_EQ(s.ok, 1);
    CHECK_EQ(recv_batch(rx, 8, MSG_WAITFORONE, 0), 8);

    gw_phase = "parked recvmmsg MSG_WAITFORONE";
    s = (struct sender){.fd = tx, .to = ra, .count = 3, .use_mmsg = 1, .delay_ms = 50};
    CHECK_EQ(pthread_create(&t, NULL, sender_main, &s), 0);
    t0 = gw_now_ns();
    int got = recv_batch(rx, 8, MSG_WAITFORONE, 0);
    ms = gw_ms_since(t0);
    CHECK(got >= 1 && got <= 3, "recvmmsg returned %d", got);
    CHECK(ms >= 40, "recvmmsg returned after %lld ms: it did not wait", ms);
    while (got < 3) got += recv_batch(rx, 8, MSG_WAITFORONE, got);
    CHECK_EQ(got, 3);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(s.ok, 1);

    gw_phase = "blocking recvmmsg(4, 0)";
    s = (struct sender){.fd = tx, .to = ra, .count = 4, .gap_ms = 20, .delay_ms = 20};
    CHECK_EQ(pthread_create(&t, NULL, sender_main, &s), 0);
    t0 = gw_now_ns();
    got = recv_batch(rx, 4, 0, 0);
    ms = gw_ms_since(t0);
    CHECK_EQ(got, 4);
    CHECK(ms >= 60, "recvmmsg(4) returned after %lld ms", ms);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(s.ok, 1);

    /* 4 receivers on one socket */
    gw_phase = "4 receivers share 40 datagrams";
    struct shared_rx r = {.fd = rx};
    pthread_t rt[4];
    for (int i = 0; i < 4; i++) CHECK_EQ(pthread_create(&rt[i], NULL, shared_rx_main, &r), 0);
    usleep(50000);
    for (int i = 0; i < 40; i++) {
        char m[16];
        int len = snprintf(m, sizeof m, "%d", i);
        CHECK_EQ(sendto(tx, m, (size_t)len, 0, (struct sockaddr *)&ra, sizeof ra), len);
        if (i % 10 == 9) usleep(5000);
    }
    for (int i = 0; i < 4; i++)
        CHECK_EQ(sendto(tx, "stop", 4, 0, (struct sockaddr *)&ra, sizeof ra), 4);
    for (int i = 0; i < 4; i++) CHECK_EQ(pthread_join(rt[i], NULL), 0);
    CHECK_EQ(r.bad, 0);
    CHECK_EQ(r.n, 40);
    for (int i = 0; i < 40; i++) CHECK(r.got[i] == 1, "datagram %d received %d times", i, r.got[i]);

    close(rx);
    close(tx);
    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1);
    printf("udp: blocking recvfrom, boundaries, truncation, sendmmsg/recvmmsg, shared receivers ok\n");
    return 0;
}
