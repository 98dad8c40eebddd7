/* pq_sleepers CONNINFO preloaded|linked: eventlet's psycopg against a real PostgreSQL server
 * (scripts/test-postgres starts one on a unix socket in a temporary directory and runs this in
 * each mode; it is not one of run-tests' programs: it needs the server and libpq).
 *
 * libpq's calls are green and nothing else is:
 *   preloaded  under the preload with GREENWORLD_PSYCOPG=1 (psycopg alone: only libpq's calls);
 *   linked     linked with the library, not preloaded: greenworld_monkey_patch(GW_PSYCOPG).
 * Built with -DPQ_DLOPEN (pq_sleepers_dlopen, not linked with libpq), the program loads libpq
 * with dlopen after the scope was set, as a Python driver's extension module would.
 * Then 100 green threads (green_pthread_create: the program's own pthread_create stays plain),
 * each with its own libpq connection, meet at a barrier and run SELECT pg_sleep(0.2), N. Checks:
 * every result; every thread on main's OS thread, and one OS thread at the peak; the queries
 * overlapped: at one moment all 100 were inside PQexec (a count of queries in flight reaches
 * 100; with a blocking libpq it would never pass 1, as each PQexec would hold the OS thread
 * until its query ended). And the program's own calls stay plain libc: a read on an empty pipe
 * from the executable blocks the OS thread in read(2) while a green thread waits to run. The
 * wall time is printed, not asserted. */
#include "gwtest.h"
#include "greenworld.h"
#include <libpq-fe.h>

/* The libpq functions used, called through pointers when libpq is dlopened. */
#define PQ_FUNCTIONS(X)                                                                           \
    X(PQconnectdb) X(PQstatus) X(PQerrorMessage) X(PQexec) X(PQresultStatus) X(PQntuples)         \
    X(PQnfields) X(PQgetvalue) X(PQclear) X(PQfinish)
#ifdef PQ_DLOPEN
#define PQ_POINTER(f) static __typeof__(f) *pq_##f;
PQ_FUNCTIONS(PQ_POINTER)
#define PQ(f) pq_##f
#define PQ_HOW ", libpq dlopened"
static void load_libpq(void) {
    gw_phase = "dlopen libpq.so.5";
    CHECK(dlopen("libpq.so.5", RTLD_NOLOAD | RTLD_NOW) == NULL, "libpq is loaded already");
    void *pq = dlopen("libpq.so.5", RTLD_NOW);
    CHECK(pq != NULL, "dlopen libpq.so.5: %s", dlerror());
#define PQ_RESOLVE(f) CHECK((pq_##f = (__typeof__(f) *)dlsym(pq, #f)) != NULL, "dlsym %s", #f);
    PQ_FUNCTIONS(PQ_RESOLVE)
}
#else
#define PQ(f) f
#define PQ_HOW ""
static void load_libpq(void) {}
#endif

#define THREADS 100

static const char *conninfo;
static pthread_barrier_t connected;
static pid_t main_tid;
static int in_flight, max_in_flight, os_threads_at_peak, wrong_tid, failures;
static long long query_start_ns, last_done_ns;


static void fail(long n, const char *what, PGconn *conn) {
    fprintf(stderr, "pq_sleepers: thread %ld: %s: %s", n, what, conn ? PQ(PQerrorMessage)(conn) : "\n");
    __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
}

static void *client(void *arg) {
    long n = (long)(intptr_t)arg;
    if (gw_tid() != main_tid) __atomic_add_fetch(&wrong_tid, 1, __ATOMIC_RELAXED);
    PGconn *conn = PQ(PQconnectdb)(conninfo);
    int ok = PQ(PQstatus)(conn) == CONNECTION_OK;
    if (!ok) fail(n, "connect", conn);
    /* Every connection is made before any query starts, so that all 100 can be in flight. */
    int rc = green_pthread_barrier_wait(&connected);
    if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD) fail(n, "barrier", NULL);
    if (rc == PTHREAD_BARRIER_SERIAL_THREAD) query_start_ns = gw_now_ns();
    if (ok) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT pg_sleep(0.2), %ld", n);
        int now = __atomic_add_fetch(&in_flight, 1, __ATOMIC_RELAXED);
        if (now > max_in_flight) {
            max_in_flight = now;
            os_threads_at_peak = gw_os_threads();
        }
        PGresult *res = PQ(PQexec)(conn, sql);
        __atomic_sub_fetch(&in_flight, 1, __ATOMIC_RELAXED);
        char want[16];
        snprintf(want, sizeof want, "%ld", n);
        if (PQ(PQresultStatus)(res) != PGRES_TUPLES_OK) fail(n, "query", conn);
        else if (PQ(PQntuples)(res) != 1 || PQ(PQnfields)(res) != 2 || strcmp(PQ(PQgetvalue)(res, 0, 1), want) != 0)
            fail(n, "wrong result", NULL);
        PQ(PQclear)(res);
        last_done_ns = gw_now_ns();
    }
    PQ(PQfinish)(conn);
    if (gw_tid() != main_tid) __atomic_add_fetch(&wrong_tid, 1, __ATOMIC_RELAXED);
    return NULL;
}

/* The program's own read: plain libc, so the OS thread blocks in read(2) even though a green
 * thread (asleep) could run; green, it would park and the hub would wait in epoll instead. */
static int plain_pipe[2];
static long seen_syscall = -1;

static void *green_napper(void *arg) {
    struct timespec ts = {0, 300 * 1000000L};
    green_nanosleep(&ts, NULL);
    return arg;
}

static void *watcher(void *arg) {
    long long t0 = gw_now_ns();
    while (gw_ms_since(t0) < 5000) {
        seen_syscall = gw_blocked_in(getpid(), main_tid);
        if (seen_syscall == SYS_read) break;
        usleep(1000);
    }
    CHECK_EQ(write(plain_pipe[1], "x", 1), 1);
    return arg;
}

static void own_calls_stay_plain(void) {
    gw_phase = "the program's own read";
    CHECK(pipe(plain_pipe) == 0, "pipe: %s", strerror(errno));
    pthread_t napper, w;
    CHECK_EQ(green_pthread_create(&napper, NULL, green_napper, NULL), 0);
    /* The program's pthread_create is plain too: a real OS thread. */
    CHECK_EQ(pthread_create(&w, NULL, watcher, NULL), 0);
    char c;
    CHECK_EQ(read(plain_pipe[0], &c, 1), 1);
    CHECK(seen_syscall == SYS_read, "main was in system call %ld, not read (%d): the program's read was green",
          seen_syscall, SYS_read);
    CHECK_EQ(pthread_join(w, NULL), 0);
    CHECK_EQ(green_pthread_join(napper, NULL), 0);
    close(plain_pipe[0]);
    close(plain_pipe[1]);
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[2], "preloaded") != 0 && strcmp(argv[2], "linked") != 0)) {
        fprintf(stderr, "usage: pq_sleepers CONNINFO preloaded|linked\n");
        return 2;
    }
    gw_watchdog("pq_sleepers", 60);
    conninfo = argv[1];
    main_tid = gw_tid();
    int preloaded = getenv("LD_PRELOAD") && strstr(getenv("LD_PRELOAD"), "libgreenworld");
    CHECK(preloaded == (strcmp(argv[2], "preloaded") == 0), "mode %s, LD_PRELOAD=%s", argv[2],
          getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "(unset)");
    if (!preloaded) {
        gw_phase = "monkey_patch(GW_PSYCOPG)";
        CHECK_EQ(greenworld_is_monkey_patched("psycopg"), 0);
        CHECK_EQ(greenworld_monkey_patch(GW_PSYCOPG), 0);
        CHECK_EQ(greenworld_monkey_patch(GW_PSYCOPG), 0);
    }
    /* psycopg alone: libpq's calls are green, the program's are not. */
    CHECK_EQ(greenworld_is_monkey_patched("psycopg"), 1);
    static const char *const subsystems[] = {"os", "select", "socket", "thread", "time"};
    for (int i = 0; i < 5; i++)
        CHECK(greenworld_is_monkey_patched(subsystems[i]) == 0, "%s is patched for the program's calls",
              subsystems[i]);

    own_calls_stay_plain();
    load_libpq();

    gw_phase = "100 clients";
    CHECK_EQ(pthread_barrier_init(&connected, NULL, THREADS), 0);
    pthread_t t[THREADS];
    long long t0 = gw_now_ns();
    for (long i = 0; i < THREADS; i++) CHECK_EQ(green_pthread_create(&t[i], NULL, client, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++) CHECK_EQ(green_pthread_join(t[i], NULL), 0);
    long long wall = gw_now_ns() - t0;
    CHECK_EQ(failures, 0);
    CHECK_EQ(wrong_tid, 0);
    CHECK(max_in_flight == THREADS, "at most %d of %d queries were in flight at once: libpq's calls blocked",
          max_in_flight, THREADS);
    CHECK_EQ(os_threads_at_peak, 1);
    printf("pq_sleepers %s%s: %d connections x SELECT pg_sleep(0.2) on 1 OS thread, all %d in flight at once; "
           "wall %lld ms (queries %lld ms, connections before them %lld ms)\n",
           argv[2], PQ_HOW, THREADS, max_in_flight, wall / 1000000, (last_done_ns - query_start_ns) / 1000000,
           (query_start_ns - t0) / 1000000);
    return 0;
}
