#include "gwtest.h"
#include <pthread.h>
/* Every function of this test checks the stack-protector canary (at %fs:0x28, which must stay
 * the same for every thread: frames live across parks and switches). */
#pragma GCC optimize("stack-protector-all")
/* Each thread has its own thread-locals, as a pthread: __thread variables of the executable
 * (static TLS) and of a library dlopen'ed while the threads exist (dynamic TLS) start at their
 * initial values in every thread and keep each thread's own value across parks (sleep, a contended mutex, a pipe read);
 * errno stays per thread; thread_local destructors registered with __cxa_thread_atexit_impl (what
 * a C++ thread_local with a destructor compiles to) run at each thread's exit, in that thread,
 * before its joiner returns, for a return and for pthread_exit; a child forked by a thread sees
 * that thread's values; threads made one after another (whose memory for thread-locals the
 * library reuses) each start at the initial values again, whether the one before them used the
 * dynamic TLS or not. Under GREENWORLD_TLS=shared the green threads share their OS thread's
 * thread-locals by request: not applicable. */

#define THREADS 1000

extern void *__dso_handle;
int __cxa_thread_atexit_impl(void (*dtor)(void *), void *obj, void *dso);

static __thread int mine;
static __thread struct { int a; char tag[12]; long b; } obj = {41, "init", 43};
static __thread long zeroed[16];

static int (*dyn_get)(void);
static void (*dyn_set)(int);
static char (*dyn_name0)(void);

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int pipes[2], go[2];
static int dtors_ran, dtor_saw_own;

static void dtor(void *arg) {
    int id = (int)(long)arg;
    __atomic_add_fetch(&dtors_ran, 1, __ATOMIC_SEQ_CST);
    if (mine == id && dyn_get() == id * 3) __atomic_add_fetch(&dtor_saw_own, 1, __ATOMIC_SEQ_CST);
}

static void check_own(int id, const char *after) {
    char buf[64]; /* a stack-protected frame (a char array) on every check */
    snprintf(buf, sizeof buf, "t%d", id);
    CHECK(mine == id, "thread %d: mine = %d after %s", id, mine, after);
    CHECK(obj.a == id + 1 && obj.b == id + 2, "thread %d: obj = %d/%ld after %s", id, obj.a, obj.b, after);
    CHECK(strcmp(obj.tag, buf) == 0, "thread %d: tag %s after %s", id, obj.tag, after);
    CHECK(zeroed[15] == id, "thread %d: zeroed[15] = %ld after %s", id, zeroed[15], after);
    CHECK(dyn_get() == id * 3, "thread %d: dynamic TLS = %d after %s", id, dyn_get(), after);
    CHECK(dyn_name0() == (char)('a' + (id * 3) % 26), "thread %d: dynamic name after %s", id, after);
}

static void *body(void *arg) {
    int id = (int)(long)arg;
    CHECK(mine == 0 && obj.a == 41 && obj.b == 43 && strcmp(obj.tag, "init") == 0 && zeroed[15] == 0,
          "thread %d starts with someone else's static TLS (mine=%d a=%d)", id, mine, obj.a);
    mine = id;
    obj.a = id + 1;
    obj.b = id + 2;
    snprintf(obj.tag, sizeof obj.tag, "t%d", id);
    zeroed[15] = id;
    /* The library with dynamic TLS is loaded while every thread waits here. */
    char c;
    CHECK_EQ(read(go[0], &c, 1), 1);
    CHECK(dyn_get() == 7 && dyn_name0() == 'i', "thread %d starts with someone else's dynamic TLS (%d)", id, dyn_get());
    dyn_set(id * 3);
    CHECK_EQ(__cxa_thread_atexit_impl(dtor, (void *)(long)id, &__dso_handle), 0);
    void *heap = malloc(100 + id);
    errno = id;
    usleep(1000);
    CHECK(errno == id, "thread %d: errno %d after a sleep", id, errno);
    check_own(id, "a sleep");
    pthread_mutex_lock(&lock);
    usleep(100);
    pthread_mutex_unlock(&lock);
    check_own(id, "a mutex");
    CHECK_EQ(read(pipes[0], &c, 1), 1);
    check_own(id, "a pipe read");
    free(heap);
    if (id % 2) pthread_exit(arg);
    return arg;
}

/* One of the threads made one at a time: starts at the initial values, then dirties them. */
static void *successor(void *arg) {
    long i = (long)arg;
    CHECK(mine == 0 && obj.a == 41 && obj.b == 43 && strcmp(obj.tag, "init") == 0 && zeroed[15] == 0,
          "successor %ld starts with its predecessor's static TLS (mine=%d a=%d tag=%s)", i, mine, obj.a, obj.tag);
    mine = (int)i;
    obj.a = obj.b = i;
    strcpy(obj.tag, "dirty");
    zeroed[15] = i;
    if (i % 3 != 0) { /* two in three use the dynamic TLS, so some follow one that did not */
        CHECK(dyn_get() == 7 && dyn_name0() == 'i', "successor %ld starts with its predecessor's dynamic TLS (%d)",
              i, dyn_get());
        dyn_set((int)i);
    }
    return arg;
}

static void *forker(void *arg) {
    mine = 4242;
    dyn_set(99);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) _exit(mine == 4242 && dyn_get() == 99 ? 0 : 1);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the forked child saw other thread-locals");
    CHECK(mine == 4242 && dyn_get() == 99, "the forking thread's thread-locals changed");
    return arg;
}

int main(void) {
    if (gw_preloaded() && getenv("GREENWORLD_TLS") && strcmp(getenv("GREENWORLD_TLS"), "shared") == 0)
        return GW_SKIP;
    gw_watchdog("test_tls_private", 60);
    CHECK_EQ(pipe(pipes), 0);
    CHECK_EQ(pipe(go), 0);
    mine = -1;
    static pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 64 << 10);
        CHECK_EQ(pthread_create(&t[i], &attr, body, (void *)(long)(i + 1)), 0);
        pthread_attr_destroy(&attr);
    }
    usleep(20 * 1000); /* every thread has started and waits on `go` */
    char path[4096];
    const char *self = gw_self();
    snprintf(path, sizeof path, "%.*s/libtlsdyn.so", (int)(strrchr(self, '/') - self), self);
    void *h = dlopen(path, RTLD_NOW);
    CHECK(h != NULL, "dlopen %s: %s", path, dlerror());
    dyn_get = (int (*)(void))dlsym(h, "tlsdyn_get");
    dyn_set = (void (*)(int))dlsym(h, "tlsdyn_set");
    dyn_name0 = (char (*)(void))dlsym(h, "tlsdyn_name0");
    CHECK(dyn_get && dyn_set && dyn_name0, "tlsdyn symbols");
    dyn_set(-3);
    char ones[THREADS];
    memset(ones, 1, sizeof ones);
    CHECK_EQ(write(go[1], ones, sizeof ones), THREADS);
    usleep(20 * 1000);
    CHECK_EQ(write(pipes[1], ones, sizeof ones), THREADS);
    for (int i = 0; i < THREADS; i++) {
        void *ret;
        CHECK_EQ(pthread_join(t[i], &ret), 0);
        CHECK_EQ((long)ret, i + 1);
    }
    CHECK_EQ(dtors_ran, THREADS);
    CHECK_EQ(dtor_saw_own, THREADS);
    CHECK(mine == -1 && dyn_get() == -3, "main's thread-locals changed: %d %d", mine, dyn_get());

    for (long i = 1; i <= 300; i++) {
        pthread_t s;
        CHECK_EQ(pthread_create(&s, NULL, successor, (void *)i), 0);
        CHECK_EQ(pthread_join(s, NULL), 0);
    }
    CHECK(mine == -1 && dyn_get() == -3, "main's thread-locals changed: %d %d", mine, dyn_get());

    /* fork from a thread: the child continues with that thread's thread-locals. */
    pthread_t f;
    CHECK_EQ(pthread_create(&f, NULL, forker, NULL), 0);
    CHECK_EQ(pthread_join(f, NULL), 0);
    puts("ok");
    return 0;
}
