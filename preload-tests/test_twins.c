// link: greenworld
#include "gwtest.h"
#include <pthread.h>
#include <sys/prctl.h>
#include "greenworld.h"
/* The green twins (eventlet's "import green modules explicitly"): green_pthread_create makes a
 * green thread, and green_read, green_nanosleep, green_pthread_mutex_lock, green_pthread_cond_wait
 * in it park green, whatever is patched: natively (the library linked, not preloaded, nothing
 * patched) and preloaded, also with a subsystem off (the run re-runs itself with
 * GREENWORLD_THREAD=0, GREENWORLD_TIME=0 and GREENWORLD_OS=0). Meanwhile the plain calls are
 * what is patched says: a plain nanosleep in a green thread blocks its OS thread unless time is
 * patched, a plain pthread_create makes an OS thread unless thread is, a plain read on an empty
 * pipe blocks in the kernel unless os is. A twin where no green thread can run (main, alone) is
 * the libc call. Each step that would block its OS thread instead of parking would never end:
 * the watchdog fails it. Sockets too: green_accept, green_connect, green_recv over loopback. */

static pid_t main_tid;

/* Is one of process `pid`'s OS threads blocked in read(2)? (With several hubs the reader may
 * be another hub's OS thread than main's.) */
static int any_blocked_in_read(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d)))
        if (e->d_name[0] != '.' && gw_blocked_in(pid, (pid_t)atoi(e->d_name)) == SYS_read) found = 1;
    closedir(d);
    return found;
}

/* A child process that writes one byte to `fd` once an OS thread of this process (main's, on
 * one hub) is blocked in read(2) in the kernel: the proof that a read was the plain, blocking
 * one. */
static pid_t write_when_blocked_in_read(int fd) {
    pid_t parent = getpid();
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        while (!any_blocked_in_read(parent)) usleep(1000);
        _exit(write(fd, "k", 1) == 1 ? 0 : 1);
    }
    return pid;
}

static void reap(pid_t pid) {
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EQ(gw_exit_code(status), 0);
}

static void join(pthread_t t, void **ret) { CHECK_EQ(green_pthread_join(t, ret), 0); }

/* ---- green threads on one OS thread; green_read parks ---- */
static int pipe_fds[2];

static void *green_reader(void *arg) {
    (void)arg;
    char c = 0;
    if (gw_hubs() == 1) CHECK_EQ(gw_tid(), main_tid); /* else maybe another hub's */
    ssize_t n = green_read(pipe_fds[0], &c, 1);
    CHECK_EQ(n, 1);
    return (void *)(intptr_t)c;
}

static void *green_writer(void *arg) {
    (void)arg;
    if (gw_hubs() == 1) CHECK_EQ(gw_tid(), main_tid); /* else maybe another hub's */
    CHECK_EQ(green_write(pipe_fds[1], "g", 1), 1);
    return NULL;
}

static void read_parks(void) {
    gw_phase = "green_read parks";
    CHECK_EQ(green_pipe(pipe_fds), 0);
    pthread_t r, w;
    CHECK_EQ(green_pthread_create(&r, NULL, green_reader, NULL), 0);
    CHECK_EQ(green_pthread_create(&w, NULL, green_writer, NULL), 0);
    CHECK_EQ(gw_os_threads(), 1);
    void *got;
    join(r, &got);
    join(w, NULL);
    CHECK_EQ((intptr_t)got, 'g');
}

/* ---- green_accept, green_connect, green_recv park ---- */
static int listener;
static struct sockaddr_in listen_addr;

static void *green_server(void *arg) {
    (void)arg;
    int s = green_accept(listener, NULL, NULL); /* parks until the client, made after, connects */
    CHECK(s >= 0, "green_accept: %s", strerror(errno));
    char buf[8] = {0};
    CHECK_EQ(green_recv(s, buf, 5, MSG_WAITALL), 5);
    CHECK(memcmp(buf, "hello", 5) == 0, "the server read %.5s", buf);
    CHECK_EQ(green_send(s, "olleh", 5, 0), 5);
    CHECK_EQ(green_close(s), 0);
    return NULL;
}

static void *green_client(void *arg) {
    (void)arg;
    int c = green_socket(AF_INET, SOCK_STREAM, 0);
    CHECK(c >= 0, "green_socket: %s", strerror(errno));
    CHECK(green_connect(c, (struct sockaddr *)&listen_addr, sizeof listen_addr) == 0, "green_connect: %s",
          strerror(errno));
    CHECK_EQ(green_send(c, "hello", 5, 0), 5);
    char buf[8] = {0};
    CHECK_EQ(green_recv(c, buf, 5, MSG_WAITALL), 5); /* parks until the server answers */
    CHECK(memcmp(buf, "olleh", 5) == 0, "the client read %.5s", buf);
    CHECK_EQ(green_close(c), 0);
    return NULL;
}

static void sockets_park(void) {
    gw_phase = "green sockets";
    listener = gw_tcp_listen(0, 1, &listen_addr);
    pthread_t s, c;
    CHECK_EQ(green_pthread_create(&s, NULL, green_server, NULL), 0);
    CHECK_EQ(green_pthread_create(&c, NULL, green_client, NULL), 0);
    join(s, NULL);
    join(c, NULL);
    CHECK_EQ(green_close(listener), 0);
    CHECK_EQ(gw_os_threads(), 1);
}

/* ---- green_nanosleep overlaps ---- */
enum { SLEEPERS = 10 };
static int asleep;

static void *green_sleeper(void *arg) {
    (void)arg;
    __atomic_add_fetch(&asleep, 1, __ATOMIC_SEQ_CST); /* (two hubs: two OS threads) */
    struct timespec ts = {0, 200 * 1000 * 1000};
    CHECK_EQ(green_nanosleep(&ts, NULL), 0);
    /* All fell asleep before the first woke: the sleeps overlapped. */
    CHECK_EQ(__atomic_load_n(&asleep, __ATOMIC_SEQ_CST), SLEEPERS);
    return NULL;
}

static void sleeps_overlap(void) {
    gw_phase = "green_nanosleep overlaps";
    pthread_t t[SLEEPERS];
    for (int i = 0; i < SLEEPERS; i++) CHECK_EQ(green_pthread_create(&t[i], NULL, green_sleeper, NULL), 0);
    for (int i = 0; i < SLEEPERS; i++) join(t[i], NULL);
    CHECK_EQ(gw_os_threads(), 1);
}

/* ---- green_pthread_mutex_lock and cond hand-off ---- */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turned = PTHREAD_COND_INITIALIZER;
static int held_through_sleep, turn, holding;
enum { TURNS = 1000 };

static void *holder(void *arg) {
    (void)arg;
    CHECK_EQ(green_pthread_mutex_lock(&lock), 0);
    __atomic_store_n(&holding, 1, __ATOMIC_RELEASE);
    struct timespec ts = {0, 50 * 1000 * 1000};
    CHECK_EQ(green_nanosleep(&ts, NULL), 0); /* parks holding the lock */
    held_through_sleep = 1;
    CHECK_EQ(green_pthread_mutex_unlock(&lock), 0);
    return NULL;
}

static void *waiter(void *arg) {
    (void)arg;
    /* (On one hub the holder ran first; on two, it may still be starting.) */
    while (!__atomic_load_n(&holding, __ATOMIC_ACQUIRE)) {
        struct timespec ms = {0, 1000 * 1000};
        green_nanosleep(&ms, NULL);
    }
    CHECK_EQ(green_pthread_mutex_trylock(&lock), EBUSY);
    CHECK_EQ(green_pthread_mutex_lock(&lock), 0); /* parks until the holder unlocks */
    CHECK_EQ(held_through_sleep, 1);
    CHECK_EQ(green_pthread_mutex_unlock(&lock), 0);
    return NULL;
}

static void *player(void *arg) {
    int me = (int)(intptr_t)arg;
    for (int i = 0; i < TURNS; i++) {
        CHECK_EQ(green_pthread_mutex_lock(&lock), 0);
        while (turn % 2 != me) CHECK_EQ(green_pthread_cond_wait(&turned, &lock), 0);
        turn++;
        CHECK_EQ(green_pthread_cond_signal(&turned), 0);
        CHECK_EQ(green_pthread_mutex_unlock(&lock), 0);
    }
    return NULL;
}

static void locks_park(void) {
    gw_phase = "green mutex";
    pthread_t h, w;
    CHECK_EQ(green_pthread_create(&h, NULL, holder, NULL), 0);
    CHECK_EQ(green_pthread_create(&w, NULL, waiter, NULL), 0);
    join(h, NULL);
    join(w, NULL);
    gw_phase = "green cond hand-off";
    pthread_t a, b;
    CHECK_EQ(green_pthread_create(&a, NULL, player, (void *)0), 0);
    CHECK_EQ(green_pthread_create(&b, NULL, player, (void *)1), 0);
    join(a, NULL);
    join(b, NULL);
    CHECK_EQ(turn, 2 * TURNS);
    CHECK_EQ(gw_os_threads(), 1);
}

/* ---- green_pthread_exit ---- */
static void *exits_early(void *arg) {
    green_pthread_exit(arg);
}

static void exit_ends_green(void) {
    gw_phase = "green_pthread_exit";
    pthread_t t;
    void *ret;
    CHECK_EQ(green_pthread_create(&t, NULL, exits_early, (void *)42), 0);
    join(t, &ret);
    CHECK_EQ((intptr_t)ret, 42);
}

/* ---- green_pause ends when a handler runs, engaged or not ---- */
static volatile sig_atomic_t usr1_seen;
static void on_usr1(int sig) { (void)sig; usr1_seen++; }

static void *pauser(void *arg) {
    (void)arg;
    errno = 0;
    int rc = green_pause();
    return (void *)(intptr_t)(rc == -1 && errno == EINTR);
}

static void pause_ends(void) {
    gw_phase = "green_pause";
    struct sigaction sa = {.sa_handler = on_usr1};
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
    pid_t parent = getpid();
    pid_t nagger = fork();
    CHECK(nagger >= 0, "fork: %s", strerror(errno));
    if (nagger == 0)
        for (;;) { /* until killed: whenever the pause began, a signal comes after */
            kill(parent, SIGUSR1);
            usleep(10 * 1000);
        }
    pthread_t t;
    void *ended;
    CHECK_EQ(green_pthread_create(&t, NULL, pauser, NULL), 0);
    join(t, &ended);
    CHECK_EQ(kill(nagger, SIGKILL), 0);
    int status;
    CHECK_EQ(waitpid(nagger, &status, 0), nagger);
    CHECK((intptr_t)ended == 1, "green_pause did not end with EINTR");
    CHECK(usr1_seen > 0, "the handler never ran");
    signal(SIGUSR1, SIG_IGN);
}

/* ---- the plain calls stay what is patched says ---- */
static int flag;

static void *plain_sleeper(void *arg) {
    (void)arg;
    struct timespec ts = {0, 50 * 1000 * 1000};
    CHECK_EQ(nanosleep(&ts, NULL), 0);
    return (void *)(intptr_t)flag; /* set meanwhile only if the sleep parked */
}

static void *flag_setter(void *arg) {
    (void)arg;
    flag = 1;
    return NULL;
}

/* Its OS thread's id; main's for a green thread placed on another hub (GREENWORLD_HUBS), whose
 * OS thread is the library's "gw-hub-N": green all the same. */
static void *whose_tid(void *arg) {
    (void)arg;
    char comm[17] = "";
    prctl(PR_GET_NAME, comm);
    if (strncmp(comm, "gw-hub-", 7) == 0) return (void *)(intptr_t)main_tid;
    return (void *)(intptr_t)gw_tid();
}

static void *plain_reader(void *arg) {
    (void)arg;
    char c = 0;
    CHECK_EQ(read(pipe_fds[0], &c, 1), 1);
    return (void *)(intptr_t)c;
}

static void *plain_writer(void *arg) {
    (void)arg;
    CHECK_EQ(write(pipe_fds[1], "p", 1), 1);
    return NULL;
}

static void plain_stays_plain(int time_on, int thread_on, int os_on) {
    gw_phase = "plain nanosleep";
    flag = 0;
    pthread_t s, f;
    CHECK_EQ(green_pthread_create(&s, NULL, plain_sleeper, NULL), 0);
    CHECK_EQ(green_pthread_create(&f, NULL, flag_setter, NULL), 0);
    void *seen;
    join(s, &seen);
    join(f, NULL);
    /* (With several hubs the setter may run on another OS thread meanwhile.) */
    if (gw_hubs() == 1)
        CHECK((intptr_t)seen == time_on, "a plain nanosleep in a green thread %s, with time %s",
              seen ? "parked" : "blocked its OS thread", time_on ? "patched" : "not patched");

    gw_phase = "plain pthread_create";
    pthread_t t;
    void *other;
    CHECK_EQ(pthread_create(&t, NULL, whose_tid, NULL), 0);
    CHECK_EQ(pthread_join(t, &other), 0);
    CHECK(((pid_t)(intptr_t)other == main_tid) == thread_on, "a plain pthread_create made %s, with thread %s",
          (pid_t)(intptr_t)other == main_tid ? "a green thread" : "an OS thread", thread_on ? "patched" : "not patched");

    gw_phase = "plain read";
    pthread_t r, w = 0;
    CHECK_EQ(green_pthread_create(&r, NULL, plain_reader, NULL), 0);
    pid_t helper = 0;
    if (os_on)
        CHECK_EQ(green_pthread_create(&w, NULL, plain_writer, NULL), 0); /* runs once the read parks */
    else
        helper = write_when_blocked_in_read(pipe_fds[1]); /* the read blocks main's OS thread */
    void *got;
    join(r, &got);
    if (os_on) join(w, NULL);
    else reap(helper);
    CHECK_EQ((intptr_t)got, os_on ? 'p' : 'k');
}

/* ---- a twin where nothing else can run is the libc call ---- */
static void alone_is_libc(void) {
    gw_phase = "twins alone";
    /* With several hubs main is never alone: a thread of another hub may wake it, so it parks
     * (see README, Several hubs). */
    if (gw_hubs() > 1) return;
    char c;
    pid_t helper = write_when_blocked_in_read(pipe_fds[1]);
    CHECK_EQ(green_read(pipe_fds[0], &c, 1), 1); /* blocked in read(2): the helper saw it */
    reap(helper);
    CHECK_EQ(c, 'k');
    errno = 0;
    CHECK_EQ(green_read(-1, &c, 1), -1);
    CHECK_EQ(errno, EBADF);
    struct timespec bad = {0, 2000 * 1000 * 1000L};
    CHECK_EQ(green_nanosleep(&bad, NULL), -1);
    CHECK_EQ(errno, EINVAL);
    struct timespec ms = {0, 1000 * 1000};
    CHECK_EQ(green_nanosleep(&ms, NULL), 0);
}

/* The run itself: what is patched, from the environment of this process. */
static int on(const char *subsystem, int preloaded) {
    char var[64];
    snprintf(var, sizeof var, "GREENWORLD_%s", subsystem);
    const char *value = getenv(var);
    return preloaded && !(value && strcmp(value, "0") == 0);
}

static void scenario(int preloaded) {
    main_tid = gw_tid();
    int time_on = on("TIME", preloaded), thread_on = on("THREAD", preloaded), os_on = on("OS", preloaded);
    CHECK_EQ(greenworld_is_monkey_patched("time"), time_on);
    CHECK_EQ(greenworld_is_monkey_patched("thread"), thread_on);
    CHECK_EQ(greenworld_is_monkey_patched("os"), os_on);
    read_parks();
    sockets_park();
    sleeps_overlap();
    locks_park();
    exit_ends_green();
    pause_ends();
    plain_stays_plain(time_on, thread_on, os_on);
    alone_is_libc();
    CHECK_EQ(gw_os_threads(), 1);
}

int main(int argc, char **argv) {
    const char *preload = getenv("LD_PRELOAD");
    int preloaded = preload && strstr(preload, "libgreenworld") != NULL;
    gw_watchdog("test_twins", 60);
    scenario(preloaded);
    if (argc > 1 && strcmp(argv[1], "--child") == 0) return 0;
    if (preloaded) {
        static const char *const off[] = {"GREENWORLD_TIME=0", "GREENWORLD_THREAD=0", "GREENWORLD_OS=0"};
        for (int i = 0; i < 3; i++) {
            char out[4096];
            const char *env[] = {off[i], NULL};
            int status = gw_run_self(env, out, sizeof out, "--child", NULL);
            CHECK(gw_exit_code(status) == 0, "with %s: status %d:\n%s", off[i], status, out);
        }
    }
    printf("twins ok (%s)\n", preloaded ? "preloaded, and with time, thread, os off" : "linked, not preloaded");
    return 0;
}
