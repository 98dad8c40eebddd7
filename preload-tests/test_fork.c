/* fork from a thread while others run, 200 times, each child running threads of its own:
 *  - the parent keeps going meanwhile: a ticker ticks and two threads ping-pong a byte over a
 *    TCP connection, before, during and after the forks, and none of their waits is lost;
 *  - each child has only the forking thread: the parent's other threads never run in it (their
 *    counters stay still); it starts 4 threads that ping-pong over socketpairs and sleep, joins
 *    them, and exits with a code the parent checks (waited for by waitpid, wait4 and waitid in
 *    turn); under the preload the child is one OS thread and no epoll instance in it watches
 *    the parent's sockets (it has its own hub, not a copy of the parent's);
 *  - a thread runs popen("true") + pclose in a loop meanwhile (under the preload pclose waits
 *    on the thread pool: a fork may come while a pool thread is busy), and every tenth child
 *    resolves a name (under the preload on a pool of its own, made anew). Not the resolver in
 *    the parent: a fork while another thread resolves leaves glibc's resolver lock held in the
 *    child, natively too; after fork a multithreaded program's child may only count on what
 *    was quiet at the fork.
 *  - pthread_atfork handlers run as glibc runs them: prepare in reverse order of registration,
 *    parent and child in order, all in the forking thread, once per fork;
 *  - glibc's daemon() forks internally (no fork call the program makes): a child whose threads
 *    ping-ponged over a socketpair turns itself into a daemon, whose threads ping-pong over it
 *    again; under the preload no epoll instance in the daemon still watches the pair (it has a
 *    hub of its own). */
#include "gwtest.h"
#include <netdb.h>
#include <pthread.h>
#include <sys/resource.h>

enum { FORKS = 200, CHILD_THREADS = 4, CHILD_ROUNDS = 20 };

/* ---- the parent's busy threads ---- */

static int g_pp[2];
static volatile long g_rounds;
static volatile int g_stop_pingpong;

static void *pinger(void *arg) {
    char c = 'p';
    while (!g_stop_pingpong) {
        CHECK_EQ(write(g_pp[1], &c, 1), 1);
        CHECK_EQ(read(g_pp[1], &c, 1), 1);
        g_rounds++;
    }
    c = 'q';
    CHECK_EQ(write(g_pp[1], &c, 1), 1);
    return arg;
}

static void *ponger(void *arg) {
    char c;
    for (;;) {
        CHECK_EQ(read(g_pp[0], &c, 1), 1);
        if (c == 'q') return arg;
        CHECK_EQ(write(g_pp[0], &c, 1), 1);
    }
}

static volatile int g_stop_popens;
static volatile long g_popens;

static int resolve_localhost(void) {
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo("localhost", "80", &hints, &res);
    if (rc == 0) freeaddrinfo(res);
    return rc;
}

static void *popens(void *arg) {
    while (!g_stop_popens) {
        FILE *f = popen("true", "r");
        CHECK(f != NULL, "popen: %s", strerror(errno));
        CHECK_EQ(pclose(f), 0);
        g_popens++;
    }
    return arg;
}

/* ---- pthread_atfork ---- */

static pthread_t g_forker;
static int g_prepare_a, g_prepare_b, g_parent_a, g_parent_b, g_child_a, g_child_b, g_atfork_errors;

static void note_error(int bad) {
    if (bad) g_atfork_errors++;
}
static void prepare_a(void) { /* registered first: runs last */
    note_error(g_prepare_b != g_prepare_a + 1 || !pthread_equal(pthread_self(), g_forker));
    g_prepare_a++;
}
static void prepare_b(void) {
    note_error(g_prepare_b != g_prepare_a || !pthread_equal(pthread_self(), g_forker));
    g_prepare_b++;
}
static void parent_a(void) { /* registered first: runs first */
    note_error(g_parent_a != g_parent_b || !pthread_equal(pthread_self(), g_forker));
    g_parent_a++;
}
static void parent_b(void) {
    note_error(g_parent_b + 1 != g_parent_a);
    g_parent_b++;
}
static void child_a(void) {
    note_error(g_child_a != g_child_b || !pthread_equal(pthread_self(), g_forker));
    g_child_a++;
}
static void child_b(void) {
    note_error(g_child_b + 1 != g_child_a);
    g_child_b++;
}

/* ---- the child ---- */

struct child_pair {
    int fds[2];
    int rounds;
};

static void *child_echo(void *arg) {
    struct child_pair *p = arg;
    char c;
    for (int i = 0; i < CHILD_ROUNDS; i++) {
        if (read(p->fds[0], &c, 1) != 1 || write(p->fds[0], &c, 1) != 1) return NULL;
    }
    return arg;
}

static void *child_worker(void *arg) {
    struct child_pair *p = arg;
    pthread_t echo;
    if (pthread_create(&echo, NULL, child_echo, p) != 0) return NULL;
    for (int i = 0; i < CHILD_ROUNDS; i++) {
        char c = (char)i;
        if (write(p->fds[1], &c, 1) != 1 || read(p->fds[1], &c, 1) != 1 || c != (char)i) break;
        p->rounds++;
        if (i % 5 == 0) usleep(200);
    }
    pthread_join(echo, NULL);
    return arg;
}

/* Does an epoll instance of this process watch `fd`? (its fdinfo lists "tfd: FD") */
static int epoll_watches(int fd) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int found = 0;
    if (!d) return -1;
    while ((e = readdir(d)) && !found) {
        char path[320], target[64], line[256];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = 0;
        if (strcmp(target, "anon_inode:[eventpoll]") != 0) continue;
        snprintf(path, sizeof path, "/proc/self/fdinfo/%s", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        while (fgets(line, sizeof line, f)) {
            int tfd;
            if (sscanf(line, "tfd: %d", &tfd) == 1 && tfd == fd) found = 1;
        }
        fclose(f);
    }
    closedir(d);
    return found;
}

/* The child's life: exit code 100 + i % 100 when everything holds, a small number naming the
 * first thing that did not. */
static int child_main(int i) {
    if (g_child_a != 1 || g_child_b != 1 || g_atfork_errors) return 2;
    long rounds = g_rounds, ticks = gw_ticks;
    struct child_pair pairs[CHILD_THREADS];
    pthread_t workers[CHILD_THREADS];
    for (int k = 0; k < CHILD_THREADS; k++) {
        pairs[k].rounds = 0;
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, pairs[k].fds) != 0) return 3;
        if (pthread_create(&workers[k], NULL, child_worker, &pairs[k]) != 0) return 4;
    }
    for (int k = 0; k < CHILD_THREADS; k++) {
        if (pthread_join(workers[k], NULL) != 0) return 5;
        if (pairs[k].rounds != CHILD_ROUNDS) return 6;
    }
    usleep(1000);
    /* The parent's ticker and ping-pong threads are not here. */
    if (g_rounds != rounds || gw_ticks != ticks) return 7;
    if (gw_os_threads() != 1) return 8;
    if (gw_preloaded() && (epoll_watches(g_pp[0]) != 0 || epoll_watches(g_pp[1]) != 0)) return 9;
    if (i % 10 == 0 && resolve_localhost() != 0) return 10;
    return 100 + i % 100;
}

static void *forker(void *arg) {
    (void)arg;
    g_forker = pthread_self();
    for (int i = 0; i < FORKS; i++) {
        g_child_a = g_child_b = 0;
        pid_t pid = fork();
        CHECK(pid >= 0, "fork %d: %s", i, strerror(errno));
        if (pid == 0) {
            int code = child_main(i);
            fflush(stdout);
            _exit(code);
        }
        int status = 0;
        struct rusage ru;
        siginfo_t info;
        switch (i % 3) {
        case 0: CHECK_EQ(waitpid(pid, &status, 0), pid); break;
        case 1: CHECK_EQ(wait4(pid, &status, 0, &ru), pid); break;
        default:
            memset(&info, 0, sizeof info);
            CHECK_EQ(waitid(P_PID, (id_t)pid, &info, WEXITED), 0);
            CHECK_EQ(info.si_pid, pid);
            CHECK_EQ(info.si_code, CLD_EXITED);
            status = (info.si_status & 0xff) << 8;
        }
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 100 + i % 100,
              "child %d: status %#x (exit %d: see child_main)", i, status, WEXITSTATUS(status));
    }
    return NULL;
}

/* The pair's ping-pong, once, by a thread of this process: 1 when every round came back. */
static int pair_rounds(struct child_pair *pair) {
    pthread_t worker;
    pair->rounds = 0;
    return pthread_create(&worker, NULL, child_worker, pair) == 0 && pthread_join(worker, NULL) == 0 &&
           pair->rounds == CHILD_ROUNDS;
}

static void daemon_check(void) {
    gw_phase = "daemon";
    int report[2];
    CHECK_EQ(pipe(report), 0);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(report[0]);
        struct child_pair pair;
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair.fds) != 0 || !pair_rounds(&pair)) _exit(3);
        if (daemon(1, 1) != 0) _exit(4);
        alarm(20); /* the watchdog's handler is inherited; its alarm is not */
        char verdict = 'y';
        if (gw_preloaded() && (epoll_watches(pair.fds[0]) != 0 || epoll_watches(pair.fds[1]) != 0)) verdict = 'e';
        else if (!pair_rounds(&pair)) verdict = 'p';
        if (write(report[1], &verdict, 1) != 1) _exit(5);
        _exit(0);
    }
    close(report[1]);
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child that calls daemon(): status %#x", status);
    char verdict = 0;
    CHECK_EQ(read(report[0], &verdict, 1), 1);
    CHECK(verdict == 'y', "the daemon says %c (e: an epoll instance still watches the pair; p: the ping-pong failed)",
          verdict);
    close(report[0]);
}

/* Until the ping-pong and the ticker have both moved past the given counts: a loaded machine
 * may give them no CPU for a fixed sleep, natively too; the watchdog bounds a real stop. */
static int progressed(long rounds, long ticks) {
    for (int i = 0; i < 30000 && !(g_rounds > rounds && gw_ticks > ticks); i++) usleep(1000);
    return g_rounds > rounds && gw_ticks > ticks;
}

int main(void) {
    gw_watchdog("test_fork", 90);
    CHECK_EQ(pthread_atfork(prepare_a, parent_a, child_a), 0);
    CHECK_EQ(pthread_atfork(prepare_b, parent_b, child_b), 0);

    gw_tcp_pair(g_pp);
    pthread_t tick, ping, pong, fork_thread;
    CHECK_EQ(pthread_create(&tick, NULL, gw_ticker, NULL), 0);
    CHECK_EQ(pthread_create(&pong, NULL, ponger, NULL), 0);
    CHECK_EQ(pthread_create(&ping, NULL, pinger, NULL), 0);
    CHECK(progressed(0, 0), "nothing ran before the forks");
    pthread_t popen_loop;
    CHECK_EQ(pthread_create(&popen_loop, NULL, popens, NULL), 0);
    long rounds_before = g_rounds, ticks_before = gw_ticks;

    gw_phase = "forks";
    CHECK_EQ(pthread_create(&fork_thread, NULL, forker, NULL), 0);
    CHECK_EQ(pthread_join(fork_thread, NULL), 0);
    CHECK_EQ(g_atfork_errors, 0);
    CHECK(g_prepare_a == FORKS && g_prepare_b == FORKS && g_parent_a == FORKS && g_parent_b == FORKS,
          "atfork handlers ran %d %d %d %d times for %d forks", g_prepare_a, g_prepare_b, g_parent_a, g_parent_b,
          FORKS);
    CHECK(g_rounds > rounds_before && gw_ticks > ticks_before, "the parent's threads stopped during the forks");
    g_stop_popens = 1;
    CHECK_EQ(pthread_join(popen_loop, NULL), 0);
    CHECK(g_popens > 0, "no popen ran during the forks");

    gw_phase = "after the forks";
    long rounds_after = g_rounds, ticks_after = gw_ticks;
    CHECK(progressed(rounds_after, ticks_after), "the ping-pong (%ld rounds) or the ticker (%ld ticks) stopped after the forks",
          g_rounds - rounds_after, gw_ticks - ticks_after);
    g_stop_pingpong = 1;
    CHECK_EQ(pthread_join(ping, NULL), 0);
    CHECK_EQ(pthread_join(pong, NULL), 0);
    gw_ticker_stop = 1;
    CHECK_EQ(pthread_join(tick, NULL), 0);
    daemon_check();
    errno = 0;
    CHECK_EQ(waitpid(-1, NULL, WNOHANG), -1);
    CHECK_EQ(errno, ECHILD);
    return 0;
}
