// build: -no-pie -fno-pie
#include "gwtest.h"
#include <pthread.h>
/* A non-PIE executable that takes malloc's address (node does) exports an undefined `malloc`
 * whose value is its own PLT stub, and dlsym(RTLD_DEFAULT, "malloc") answers that stub. The
 * library keeps the static TLS block of a library that *defines* malloc (jemalloc, tcmalloc)
 * per OS thread; this executable is no allocator, so its __thread variables stay each green
 * thread's own: every thread sets its own, parks (a sleep, a contended mutex), and finds its
 * own value again, at one hub and at two. (Before, the executable's block was taken for an
 * allocator's and shared: node's four worker isolates crashed.) */

#define THREADS 8
#define ROUNDS 50

static __thread long mine = -1;
static __thread char tag[24] = "initial";
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int bad;

/* Set in main's code: a non-PIE function's absolute reference makes the link give malloc a
 * canonical PLT address in this executable (a data initializer would get a dynamic relocation). */
void *(*volatile allocate)(size_t);

static void *worker(void *arg) {
    long id = (long)arg;
    if (mine != -1 || strcmp(tag, "initial") != 0) __atomic_add_fetch(&bad, 1, __ATOMIC_SEQ_CST);
    for (int r = 0; r < ROUNDS; r++) {
        mine = id * 1000 + r;
        snprintf(tag, sizeof tag, "t%ld-%d", id, r);
        char *p = allocate(64);
        if (r % 2) gw_sleep_ms(1);
        pthread_mutex_lock(&lock);
        sched_yield();
        pthread_mutex_unlock(&lock);
        char want[24];
        snprintf(want, sizeof want, "t%ld-%d", id, r);
        if (mine != id * 1000 + r || strcmp(tag, want) != 0) __atomic_add_fetch(&bad, 1, __ATOMIC_SEQ_CST);
        free(p);
    }
    return NULL;
}

int main(void) {
    allocate = malloc;
    void *found = dlsym(RTLD_DEFAULT, "malloc");
    Dl_info info;
    CHECK(dladdr(found, &info) != 0, "dladdr(malloc)");
    /* The premise: the canonical address is in this executable, not in libc. */
    CHECK(strstr(info.dli_fname, "libc.so") == NULL, "malloc resolves to %s, not this executable", info.dli_fname);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) CHECK_EQ(pthread_create(&t[i], NULL, worker, (void *)i), 0);
    for (int i = 0; i < THREADS; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK_EQ(bad, 0);
    CHECK_EQ(mine, -1);
    CHECK(strcmp(tag, "initial") == 0, "main's tag is %s", tag);
    return 0;
}
