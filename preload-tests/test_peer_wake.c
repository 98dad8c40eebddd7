/* A pipe and a socketpair whose both ends this process made, read by one thread while another
 * writes to the other end in every way a byte can get there. Under the preload a write through
 * the hooks wakes the reader directly, and a reader that found the descriptor empty and has read
 * every byte written through the hooks since parks without trying first: a byte that came any
 * other way must still reach it (its epoll edge), and a byte left behind by a short read must not
 * be waited for. The reader takes one byte a call and checks each:
 *  - written by write() while it waits (the direct wake), two at once (one left after the read);
 *  - through a dup of the write end, by a raw syscall(SYS_write), by stdio through fdopen
 *    (glibc's internal write), by a forked child: none of them seen by the hooks;
 *  - one unseen byte then one seen byte before the reader runs (woken by the second, it reads
 *    the first, and the second is still there);
 *  - then EOF once every write end is closed. */
#include "gwtest.h"
#include <pthread.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static const char want[] = "abcdefgXYhij";
static int g_rd;

static void *reader(void *arg) {
    (void)arg;
    for (size_t i = 0; i < sizeof want - 1; i++) {
        char c = 0;
        ssize_t n = read(g_rd, &c, 1);
        CHECK(n == 1, "read %zu: %zd (%s)", i, n, strerror(errno));
        CHECK(c == want[i], "read %zu: '%c', want '%c'", i, c, want[i]);
    }
    char c;
    CHECK_EQ(read(g_rd, &c, 1), 0);
    return NULL;
}

static void pause_ms(void) { gw_sleep_ms(20); }

static void run(const char *what, int rd, int wr, int other_end) {
    g_rd = rd;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, reader, NULL), 0);
    pause_ms();
    CHECK_EQ(write(wr, "a", 1), 1);
    pause_ms();
    CHECK_EQ(write(wr, "bc", 2), 2);
    pause_ms();
    int dup_wr = dup(wr);
    CHECK(dup_wr >= 0, "dup");
    CHECK_EQ(write(dup_wr, "d", 1), 1);
    pause_ms();
    CHECK_EQ(syscall(SYS_write, wr, "e", 1), 1);
    pause_ms();
    FILE *f = fdopen(dup_wr, "w");
    CHECK(f != NULL, "fdopen");
    CHECK(fputs("f", f) >= 0, "fputs");
    CHECK_EQ(fflush(f), 0);
    pause_ms();
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) _exit(write(wr, "g", 1) == 1 ? 0 : 1);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child");
    pause_ms();
    CHECK_EQ(syscall(SYS_write, wr, "X", 1), 1);
    CHECK_EQ(write(wr, "Y", 1), 1);
    pause_ms();
    CHECK_EQ(write(wr, "hij", 3), 3);
    pause_ms();
    fclose(f);
    close(wr);
    if (other_end >= 0) close(other_end);
    CHECK_EQ(pthread_join(t, NULL), 0);
    close(rd);
    printf("%s: ok\n", what);
}

int main(void) {
    gw_watchdog("test_peer_wake", 20);
    int p[2];
    CHECK_EQ(pipe(p), 0);
    run("pipe", p[0], p[1], -1);
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    /* sv[1] is both the write end and, for the reader's EOF, the end to close. */
    run("socketpair", sv[0], sv[1], -1);
    return 0;
}
