/* sendfile in a program built with 64-bit file offsets (as CPython is): glibc's header makes it
 * sendfile64, which must be green too. 4 MiB from a file to a TCP socket whose reader is a
 * thread of this very process (a sendfile that blocked the OS thread would hang the test under
 * the preload): every byte arrives, in order; the offset advances; sendfile at the end of the
 * file sends 0. */
#define _FILE_OFFSET_BITS 64
#include "gwtest.h"
#include <pthread.h>
#include <sys/sendfile.h>

enum { SIZE = 4 << 20 };

static int g_sv[2];
static long g_received, g_bad_at = -1;

static unsigned char pattern(long i) { return (unsigned char)(i * 13 + i / 1021); }

static void *receiver(void *arg) {
    (void)arg;
    static unsigned char buf[65536];
    for (;;) {
        ssize_t n = read(g_sv[0], buf, sizeof buf);
        CHECK(n >= 0, "read: %s", strerror(errno));
        if (n == 0) break;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != pattern(g_received + i) && g_bad_at < 0) g_bad_at = g_received + i;
        g_received += n;
        usleep(1000); /* a slow reader: the sender must wait for room */
    }
    return NULL;
}

int main(void) {
    gw_watchdog("test_sendfile64", 60);
    FILE *tmp = tmpfile();
    CHECK(tmp != NULL, "tmpfile: %s", strerror(errno));
    for (long i = 0; i < SIZE; i++) fputc(pattern(i), tmp);
    fflush(tmp);
    int file = fileno(tmp);
    gw_tcp_pair(g_sv);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, receiver, NULL), 0);
    off_t offset = 0;
    ssize_t sent = sendfile(g_sv[1], file, &offset, SIZE);
    CHECK_EQ(sent, SIZE);
    CHECK_EQ(offset, SIZE);
    CHECK_EQ(sendfile(g_sv[1], file, &offset, 100), 0);
    CHECK_EQ(close(g_sv[1]), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(g_received, SIZE);
    CHECK_EQ(g_bad_at, -1);
    if (gw_preloaded()) {
        CHECK_EQ(gw_patched("sendfile64"), 1);
        CHECK_EQ(gw_os_threads(), 1);
    }
    puts("test_sendfile64: ok");
    return 0;
}
