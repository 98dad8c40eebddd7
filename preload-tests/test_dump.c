/* test_dump: the green-thread dump lists every thread with what it waits on: a pipe's read end
 * (parked on fd N readable), a sleep (with its deadline), a mutex at its address, a join of a
 * named thread, with each thread's start routine, the pthread_create call that made it, and a
 * backtrace into it. Asked three ways:
 * GREENWORLD_DUMP_AT_EXIT=1 (at exit), GREENWORLD_DUMP_SIGNAL=SIGUSR2 (kill), and
 * `greenrun --dump PID` (no signal: the library's channel; $GREENWORLD_SRC/scripts/greenrun).
 * And 1 000 threads in six states, each shown right. Each is this program run again as a
 * child (--child MODE), under the preload only. */
#include "gwtest.h"
#include <poll.h>
#include <semaphore.h>

static int p[2];
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static pthread_t reader;

static void *reader_main(void *arg) {
    (void)arg;
    char c;
    return (void *)(long)read(p[0], &c, 1);
}

static void *sleeper_main(void *arg) {
    (void)arg;
    sleep(60);
    return NULL;
}

static void *locker_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&held);
    pthread_mutex_unlock(&held);
    return NULL;
}

static void *joiner_main(void *arg) {
    (void)arg;
    pthread_join(reader, NULL);
    return NULL;
}

/* 1 000 threads, in six states by their number: the scale test. */
enum { MANY = 1000, STATES = 6 };
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t never_m = PTHREAD_MUTEX_INITIALIZER;
static sem_t no_units;
static pthread_t many[MANY];
static void *many_main(void *arg) {
    long i = (long)arg;
    char c;
    switch (i % STATES) {
    case 0: return (void *)(long)read(p[0], &c, 1);
    case 1: sleep(60); return NULL;
    case 2: pthread_mutex_lock(&held); pthread_mutex_unlock(&held); return NULL;
    case 3:
        pthread_mutex_lock(&never_m);
        pthread_cond_wait(&never, &never_m); /* nobody signals it */
        pthread_mutex_unlock(&never_m);
        return NULL;
    case 4: sem_wait(&no_units); return NULL;
    default: pthread_join(many[i - 1], NULL); return NULL;
    }
}

static int many_child(void) {
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(sem_init(&no_units, 0, 0), 0);
    pthread_mutex_lock(&held);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 << 10);
    for (long i = 0; i < MANY; i++) CHECK_EQ(pthread_create(&many[i], &attr, many_main, (void *)i), 0);
    gw_sleep_ms(300);
    printf("fd=%d mutex=%p sem=%p cond=%p\n", p[0], (void *)&held, (void *)&no_units, (void *)&never);
    fflush(stdout);
    exit(0);
}

__attribute__((noinline)) static int child(const char *mode) { /* named in "created at" (maybe child.isra.0) */
    if (strcmp(mode, "many") == 0) return many_child();
    CHECK_EQ(pipe(p), 0);
    pthread_mutex_lock(&held);
    pthread_t t;
    pthread_create(&reader, NULL, reader_main, NULL);
    pthread_setname_np(reader, "reader");
    pthread_create(&t, NULL, sleeper_main, NULL);
    pthread_setname_np(t, "sleeper");
    pthread_create(&t, NULL, locker_main, NULL);
    pthread_setname_np(t, "locker");
    pthread_create(&t, NULL, joiner_main, NULL);
    pthread_setname_np(t, "joiner");
    gw_sleep_ms(100); /* every thread runs to its wait */
    printf("fd=%d mutex=%p\n", p[0], (void *)&held);
    fflush(stdout);
    if (strcmp(mode, "exit") == 0) exit(0);
    for (;;) gw_sleep_ms(1000); /* until the parent kills it */
}


/* Every thread in the state the child put it in; `fd` and `mutex` from its first line. */
static void check_dump(const char *how, const char *dump, int fd, void *mutex) {
    char line[512], want[80];
    CHECK(strstr(dump, "greenworld: dump"), "%s: no dump:\n%s", how, dump);
    char head[64];
    snprintf(head, sizeof head, "green threads: 4, hubs: %d", gw_hubs()); /* each hub listed */
    CHECK(strstr(dump, head), "%s: %s", how, dump);
    snprintf(want, sizeof want, "parked on fd %d readable", fd);
    CHECK(strstr(gw_dump_line_of(dump, "reader", line, sizeof line), want), "%s: want '%s': %s", how, want, line);
    CHECK(strstr(gw_dump_line_of(dump, "sleeper", line, sizeof line), "parked on sleep"), "%s: %s", how, line);
    /* A timer's deadline is its hub's own to read: shown for the printing hub's threads. */
    if (gw_hubs() == 1) CHECK(strstr(line, "deadline in "), "%s: %s", how, line);
    snprintf(want, sizeof want, "parked on mutex %p", mutex);
    CHECK(strstr(gw_dump_line_of(dump, "locker", line, sizeof line), want), "%s: want '%s': %s", how, want, line);
    CHECK(strstr(gw_dump_line_of(dump, "joiner", line, sizeof line), "parked on join of thread"), "%s: %s", how, line);
    CHECK(strstr(line, "\"reader\""), "%s: the joiner waits for the reader: %s", how, line);
    /* Where each started (static functions: from the program's symbol table), and a
     * backtrace into the start routine of a parked one. */
    CHECK(strstr(dump, "started at sleeper_main+0x0 ("), "%s: %s", how, dump);
    CHECK(strstr(dump, ", created at child"), "%s: no pthread_create call site: %s", how, dump);
    CHECK(strstr(dump, "#0 locker_main+0x"), "%s: no backtrace into locker_main:\n%s", how, dump);
    CHECK(strstr(dump, "pool: "), "%s: %s", how, dump);
    CHECK(strstr(dump, "greenworld: end of dump"), "%s: %s", how, dump);
}

static void read_facts(struct gw_kid *k, int *fd, void **mutex) {
    CHECK(gw_kid_read_until(k, k->out, "\n", 10000), "no first line from the child");
    CHECK_EQ(sscanf(k->text, "fd=%d mutex=%p", fd, mutex), 2);
    gw_kid_clear(k);
}

static void at_exit(void) {
    static struct gw_kid k;
    int fd;
    void *mutex;
    gw_kid_start(&k, "exit", "GREENWORLD_DUMP_AT_EXIT=1");
    read_facts(&k, &fd, &mutex);
    CHECK(gw_kid_read_until(&k, k.err, "end of dump", 10000), "no dump at exit:\n%s", k.text);
    check_dump("at exit", k.text, fd, mutex);
    CHECK(strstr(k.text, "root (the OS thread's own stack): running"), "%s", k.text);
    gw_kid_stop(&k);
}

static void on_signal(void) {
    static struct gw_kid k;
    int fd;
    void *mutex;
    gw_kid_start(&k, "wait", "GREENWORLD_DUMP_SIGNAL=SIGUSR2");
    read_facts(&k, &fd, &mutex);
    CHECK_EQ(kill(k.pid, SIGUSR2), 0);
    CHECK(gw_kid_read_until(&k, k.err, "end of dump", 10000), "no dump on SIGUSR2:\n%s", k.text);
    check_dump("SIGUSR2", k.text, fd, mutex);
    /* The signal was the dump's, not the program's: it still runs. */
    CHECK_EQ(waitpid(k.pid, NULL, WNOHANG), 0);
    gw_kid_stop(&k);
}

static void through_greenrun(void) {
    const char *src = getenv("GREENWORLD_SRC");
    if (!src) return;
    char greenrun[4096];
    snprintf(greenrun, sizeof greenrun, "%s/scripts/greenrun", src);
    static struct gw_kid k;
    int fd;
    void *mutex;
    gw_kid_start(&k, "wait", "GREENWORLD_LOG=warn");
    read_facts(&k, &fd, &mutex);
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)k.pid);
    static char out[65536];
    char *argv[] = {greenrun, "--dump", pid, NULL};
    int status = gw_run(NULL, argv, out, sizeof out);
    CHECK(gw_exit_code(status) == 0, "greenrun --dump: status %d: %s", status, out);
    check_dump("greenrun --dump", out, fd, mutex);
    CHECK(!strstr(k.text, "greenworld"), "the dump went to the program's stderr: %s", k.text);
    gw_kid_stop(&k);
    /* Gone: one line, status 1. */
    status = gw_run(NULL, argv, out, sizeof out);
    CHECK(gw_exit_code(status) == 1 && strstr(out, "no dump channel"), "status %d: %s", status, out);
}

static int count(const char *text, const char *what) {
    int n = 0;
    for (const char *at = text; (at = strstr(at, what)) != NULL; at++) n++;
    return n;
}

static void thousand(void) {
    static struct gw_kid k;
    int fd;
    void *mutex, *sem, *cond;
    gw_kid_start(&k, "many", "GREENWORLD_DUMP_AT_EXIT=1");
    CHECK(gw_kid_read_until(&k, k.out, "\n", 20000), "no first line from the child");
    CHECK_EQ(sscanf(k.text, "fd=%d mutex=%p sem=%p cond=%p", &fd, &mutex, &sem, &cond), 4);
    gw_kid_clear(&k);
    CHECK(gw_kid_read_until(&k, k.err, "end of dump", 30000), "no dump of 1000 threads:\n%.2000s", k.text);
    char want[80];
    char head[64];
    snprintf(head, sizeof head, "green threads: 1000, hubs: %d", gw_hubs());
    CHECK(strstr(k.text, head), "%.2000s", k.text);
    snprintf(want, sizeof want, ": parked on fd %d readable", fd);
    CHECK_EQ(count(k.text, want), 167);
    CHECK_EQ(count(k.text, ": parked on sleep, "), 167);
    snprintf(want, sizeof want, ": parked on mutex %p", mutex);
    CHECK_EQ(count(k.text, want), 167);
    snprintf(want, sizeof want, ": parked on condition variable %p", cond);
    CHECK_EQ(count(k.text, want), 167);
    snprintf(want, sizeof want, ": parked on semaphore %p", sem);
    CHECK_EQ(count(k.text, want), 166);
    CHECK_EQ(count(k.text, ": parked on join of thread"), 166);
    gw_kid_stop(&k);
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "--child") == 0) return child(argv[2]);
    if (!gw_preloaded()) return GW_SKIP;
    gw_watchdog("test_dump", 60);
    gw_phase = "at exit";
    at_exit();
    gw_phase = "signal";
    on_signal();
    gw_phase = "greenrun --dump";
    through_greenrun();
    gw_phase = "1000 threads";
    thousand();
    return 0;
}
