/* stdio reads on pipes and sockets wait green: the writer is a thread of this very process,
 * which could never run if a read blocked the OS thread (under the preload the watchdog would
 * then fire). Each read function in turn, against a writer that sends in pieces with pauses:
 * fgets, fgets_unlocked, getc, fgetc, getc_unlocked (the inline macro: __uflow), getchar on a
 * piped stdin, getline, getdelim, fread across several pieces (whole items, as glibc counts),
 * fread and fgets to the end (EOF, feof). A read-write socket stream: a request written with
 * fputs and no fflush is flushed before the read waits for the answer. A signal without
 * SA_RESTART fails a waiting fgets with EINTR and sets ferror; a regular file reads as usual.
 * popen from many threads: each reads its child's slow output while a ticker keeps ticking. */
#include "gwtest.h"
#include <pthread.h>
#include <signal.h>

static int g_pipe[2];

struct piece {
    const char *text;
    int pause_ms;
};

/* Writes pieces to g_pipe[1], each after its pause; closes the pipe at the end when asked. */
static void *writer(void *arg) {
    const struct piece *p = arg;
    for (; p->text; p++) {
        usleep(p->pause_ms * 1000);
        size_t n = strlen(p->text);
        CHECK_EQ(write(g_pipe[1], p->text, n), n);
    }
    if (p->pause_ms < 0) CHECK_EQ(close(g_pipe[1]), 0);
    return NULL;
}

static pthread_t start_writer(const struct piece *pieces) {
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, writer, (void *)pieces), 0);
    return t;
}

static void join(pthread_t t) { CHECK_EQ(pthread_join(t, NULL), 0); }

static void on_usr1(int sig) { (void)sig; }

static void *interrupt_main(void *arg) {
    usleep(50 * 1000);
    CHECK_EQ(pthread_kill(*(pthread_t *)arg, SIGUSR1), 0);
    return NULL;
}

/* --- a read-write stream on a socket: the peer answers only what it was asked --- */

static void *answering_peer(void *arg) {
    int fd = *(int *)arg;
    char req[64];
    ssize_t n = read(fd, req, sizeof req);
    CHECK(n == 5 && memcmp(req, "ping\n", 5) == 0, "peer read %zd", n);
    CHECK_EQ(write(fd, "pong\n", 5), 5);
    return NULL;
}

/* --- popen from many threads --- */

enum { POPENS = 20 };
static int g_popen_ok;

static void *popen_reader(void *arg) {
    int i = (int)(intptr_t)arg;
    char cmd[64], want[32], line[32];
    snprintf(cmd, sizeof cmd, "sleep 0.2; echo line %d; sleep 0.1; echo end", i);
    snprintf(want, sizeof want, "line %d\n", i);
    FILE *f = popen(cmd, "r");
    CHECK(f != NULL, "popen: %s", strerror(errno));
    int good = fgets(line, sizeof line, f) && strcmp(line, want) == 0 && fgets(line, sizeof line, f) &&
               strcmp(line, "end\n") == 0 && fgets(line, sizeof line, f) == NULL && feof(f);
    CHECK_EQ(pclose(f), 0);
    if (good) __atomic_add_fetch(&g_popen_ok, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

int main(void) {
    gw_watchdog("test_stdio_read", 60);
    CHECK_EQ(pipe(g_pipe), 0);
    FILE *in = fdopen(g_pipe[0], "r");
    CHECK(in != NULL, "fdopen: %s", strerror(errno));
    char buf[64];
    pthread_t w;

    gw_phase = "fgets";
    static const struct piece lines[] = {{"first ", 30}, {"line\nsecond line\n", 30}, {NULL, 0}};
    w = start_writer(lines);
    CHECK(fgets(buf, sizeof buf, in) != NULL, "fgets: %s", strerror(errno));
    CHECK(strcmp(buf, "first line\n") == 0, "fgets read '%s'", buf);
    CHECK(fgets_unlocked(buf, sizeof buf, in) != NULL, "fgets_unlocked");
    CHECK(strcmp(buf, "second line\n") == 0, "fgets_unlocked read '%s'", buf);
    join(w);

    gw_phase = "getc, fgetc, getc_unlocked";
    static const struct piece chars[] = {{"a", 30}, {"b", 30}, {"c", 30}, {NULL, 0}};
    w = start_writer(chars);
    CHECK_EQ(getc(in), 'a');
    CHECK_EQ(fgetc(in), 'b');
    CHECK_EQ(getc_unlocked(in), 'c');
    join(w);

    gw_phase = "getline, getdelim";
    static const struct piece delimited[] = {{"a whole ", 30}, {"line\nx;y", 30}, {";", 30}, {NULL, 0}};
    w = start_writer(delimited);
    char *line = NULL;
    size_t cap = 0;
    CHECK_EQ(getline(&line, &cap, in), 13);
    CHECK(strcmp(line, "a whole line\n") == 0, "getline read '%s'", line);
    CHECK_EQ(getdelim(&line, &cap, ';', in), 2);
    CHECK(strcmp(line, "x;") == 0, "getdelim read '%s'", line);
    CHECK_EQ(getdelim(&line, &cap, ';', in), 2);
    join(w);

    gw_phase = "fread across pieces, then to the end";
    static const struct piece blocks[] = {{"0123", 30}, {"4567", 30}, {"89ab", 30}, {"cd", 30}, {NULL, -1}};
    w = start_writer(blocks);
    CHECK_EQ(fread(buf, 4, 3, in), 3);
    CHECK(memcmp(buf, "0123456789ab", 12) == 0, "fread read '%.12s'", buf);
    CHECK_EQ(fread(buf, 4, 1, in), 0); /* two bytes, then the end: no whole item */
    CHECK(feof(in) && !ferror(in), "eof %d error %d", feof(in), ferror(in));
    CHECK(fgets(buf, sizeof buf, in) == NULL, "fgets after the end");
    join(w);
    fclose(in);

    gw_phase = "getchar on a piped stdin";
    CHECK_EQ(pipe(g_pipe), 0);
    CHECK_EQ(dup2(g_pipe[0], 0), 0);
    CHECK_EQ(close(g_pipe[0]), 0);
    static const struct piece typed[] = {{"y", 30}, {"es\n", 30}, {NULL, -1}};
    w = start_writer(typed);
    CHECK_EQ(getchar(), 'y');
    CHECK(fgets(buf, sizeof buf, stdin) && strcmp(buf, "es\n") == 0, "stdin read '%s'", buf);
    CHECK_EQ(getchar_unlocked(), EOF);
    join(w);

    gw_phase = "a read-write socket stream";
    int sv[2];
    gw_tcp_pair(sv);
    FILE *rw = fdopen(sv[1], "r+");
    CHECK(rw != NULL, "fdopen: %s", strerror(errno));
    pthread_t peer;
    CHECK_EQ(pthread_create(&peer, NULL, answering_peer, &sv[0]), 0);
    CHECK(fputs("ping\n", rw) >= 0, "fputs");
    CHECK(fgets(buf, sizeof buf, rw) && strcmp(buf, "pong\n") == 0, "answer '%s'", buf);
    join(peer);

    gw_phase = "EINTR";
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1; /* no SA_RESTART */
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
    pthread_t self = pthread_self(), k;
    CHECK_EQ(pthread_create(&k, NULL, interrupt_main, &self), 0);
    errno = 0;
    CHECK(fgets(buf, sizeof buf, rw) == NULL, "fgets returned data");
    CHECK_EQ(errno, EINTR);
    CHECK(ferror(rw) && !feof(rw), "error %d eof %d", ferror(rw), feof(rw));
    join(k);
    fclose(rw);
    close(sv[0]);

    gw_phase = "a regular file";
    FILE *tmp = tmpfile();
    CHECK(tmp != NULL, "tmpfile");
    fputs("from a file\n", tmp);
    rewind(tmp);
    CHECK(fgets(buf, sizeof buf, tmp) && strcmp(buf, "from a file\n") == 0, "file read '%s'", buf);
    CHECK_EQ(fread(buf, 1, 8, tmp), 0);
    CHECK(feof(tmp), "no eof on the file");
    fclose(tmp);

    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1); /* every wait above was green */

    gw_phase = "popen from many threads";
    pthread_t tick, readers[POPENS];
    CHECK_EQ(pthread_create(&tick, NULL, gw_ticker, NULL), 0);
    long t0 = gw_ticks;
    for (int i = 0; i < POPENS; i++) CHECK_EQ(pthread_create(&readers[i], NULL, popen_reader, (void *)(intptr_t)i), 0);
    for (int i = 0; i < POPENS; i++) join(readers[i]);
    CHECK_EQ(g_popen_ok, POPENS);
    CHECK(gw_ticks - t0 >= 50, "only %ld ticks while the readers waited", gw_ticks - t0);
    gw_ticker_stop = 1;
    join(tick);
    free(line);
    puts("test_stdio_read: ok");
    return 0;
}
