/* pthread_getattr_np on a thread created but not yet run.
 * Natively the stack is mapped at pthread_create, so what pthread_getattr_np (read with
 * pthread_attr_getstack and pthread_attr_getguardsize) reports right after the create is the
 * stack the thread then runs on. Under the preload a thread made when no resident stack is free
 * only reserves one, and may start on another (the one the last thread finished on): asked
 * first, it must report a usable range and then run on exactly that range.
 * Checked for 100 live threads created in a row, every other one asked before it ran (the others
 * are free to start anywhere): each one's own local variable lies in the range it reports for
 * itself; an asked one reports for itself the range reported before it ran, its local lies in
 * that range, and a byte written at the range's lowest address before it ran is still there when
 * it runs (the range is memory, and its own). The ranges of threads alive at once do not overlap.
 * A detached thread asked before it ran reports itself detached and runs on its range too; so
 * does a thread on memory the program gave it (pthread_attr_setstack), whose range is that memory.
 * Under the preload with one hub, the threads have not started when asked (the creator has
 * not blocked yet): the case this test is about.
 */
#include "gwtest.h"
#include <pthread.h>

#define N 100

struct seen {
    int started;
    void *local;
    void *addr; /* its own pthread_getattr_np */
    size_t size, guard;
    unsigned char marker; /* the byte at the lowest address of its range when it ran */
    int detached_ok;
};

static struct seen seen[N + 1];
/* Set once main has asked and written: natively the threads are running meanwhile. */
static int go;

static void own_stack(pthread_t self, void **addr, size_t *size, size_t *guard, int *detach) {
    pthread_attr_t a;
    CHECK_EQ(pthread_getattr_np(self, &a), 0);
    CHECK_EQ(pthread_attr_getstack(&a, addr, size), 0);
    CHECK_EQ(pthread_attr_getguardsize(&a, guard), 0);
    if (detach) CHECK_EQ(pthread_attr_getdetachstate(&a, detach), 0);
    CHECK_EQ(pthread_attr_destroy(&a), 0);
}

static void *body(void *arg) {
    struct seen *s = arg;
    volatile char local = 1;
    __atomic_store_n(&s->started, 1, __ATOMIC_SEQ_CST);
    s->local = (void *)&local;
    while (!__atomic_load_n(&go, __ATOMIC_SEQ_CST)) gw_sleep_ms(1);
    int detach = -1;
    own_stack(pthread_self(), &s->addr, &s->size, &s->guard, &detach);
    s->marker = *(volatile unsigned char *)s->addr;
    s->detached_ok = detach == PTHREAD_CREATE_DETACHED;
    __atomic_store_n(&s->started, 2, __ATOMIC_SEQ_CST);
    return NULL;
}

static int contains(void *addr, size_t size, void *p) {
    return (char *)p >= (char *)addr && (char *)p < (char *)addr + size;
}

int main(void) {
    int one_hub = gw_preloaded() && gw_hubs() == 1;
    /* A first thread run to its end: its stack is free and resident when the others start. */
    pthread_t warm;
    go = 1;
    CHECK_EQ(pthread_create(&warm, NULL, body, &seen[N]), 0);
    CHECK_EQ(pthread_join(warm, NULL), 0);
    go = 0;

    pthread_t t[N];
    void *addr[N];
    size_t size[N], guard[N];
    for (int i = 0; i < N; i++) {
        CHECK_EQ(pthread_create(&t[i], NULL, body, &seen[i]), 0);
        if (i % 2 == 0) continue;
        int started = __atomic_load_n(&seen[i].started, __ATOMIC_SEQ_CST);
        int detach = -1;
        own_stack(t[i], &addr[i], &size[i], &guard[i], &detach);
        CHECK_EQ(detach, PTHREAD_CREATE_JOINABLE);
        if (one_hub) CHECK(started == 0, "thread %d ran before its creator blocked", i);
        CHECK(size[i] >= 16384, "thread %d: stack of %zu bytes", i, size[i]);
        CHECK(!contains(addr[i], size[i], &started), "thread %d: its range holds main's stack", i);
        /* A range of writable memory: its lowest byte, far below anything the thread uses. */
        *(volatile unsigned char *)addr[i] = (unsigned char)(0xa0 + i);
    }
    for (int i = 1; i < N; i += 2)
        for (int j = i + 2; j < N; j += 2)
            CHECK(!contains(addr[i], size[i], addr[j]) && !contains(addr[j], size[j], addr[i]),
                  "threads %d and %d report overlapping stacks", i, j);
    __atomic_store_n(&go, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < N; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);

    for (int i = 0; i < N; i++) {
        struct seen *s = &seen[i];
        CHECK_EQ(s->started, 2);
        CHECK(contains(s->addr, s->size, s->local), "thread %d: its local %p is outside its own stack [%p, +%zu)",
              i, s->local, s->addr, s->size);
        if (i % 2 == 0) continue;
        CHECK(s->addr == addr[i] && s->size == size[i] && s->guard == guard[i],
              "thread %d: reports [%p, +%zu) guard %zu for itself, [%p, +%zu) guard %zu before it ran", i, s->addr,
              s->size, s->guard, addr[i], size[i], guard[i]);
        CHECK(contains(addr[i], size[i], s->local), "thread %d: ran at %p, outside the [%p, +%zu) reported before",
              i, s->local, addr[i], size[i]);
        CHECK_EQ(s->marker, (unsigned char)(0xa0 + i));
    }

    /* Detached before it ran, then asked (it cannot end before `go`: its handle stays valid). */
    struct seen *d = &seen[0];
    memset(d, 0, sizeof *d);
    __atomic_store_n(&go, 0, __ATOMIC_SEQ_CST);
    pthread_t dt;
    CHECK_EQ(pthread_create(&dt, NULL, body, d), 0);
    CHECK_EQ(pthread_detach(dt), 0);
    void *daddr;
    size_t dsize, dguard;
    int detach = -1;
    own_stack(dt, &daddr, &dsize, &dguard, &detach);
    CHECK_EQ(detach, PTHREAD_CREATE_DETACHED);
    if (one_hub) CHECK_EQ(__atomic_load_n(&d->started, __ATOMIC_SEQ_CST), 0);
    __atomic_store_n(&go, 1, __ATOMIC_SEQ_CST);
    for (int ms = 0; __atomic_load_n(&d->started, __ATOMIC_SEQ_CST) != 2; ms++) {
        CHECK(ms < 10000, "the detached thread never ran");
        gw_sleep_ms(1);
    }
    CHECK(d->detached_ok, "the detached thread does not report itself detached");
    CHECK(contains(d->addr, d->size, d->local), "detached thread: its local is outside its own stack");
    CHECK(d->addr == daddr && d->size == dsize && d->guard == dguard, "detached thread: ran elsewhere than reported");

    /* On the program's own memory. */
    size_t own_size = 1 << 20;
    void *own = NULL;
    CHECK_EQ(posix_memalign(&own, 4096, own_size), 0);
    struct seen *o = &seen[1];
    memset(o, 0, sizeof *o);
    __atomic_store_n(&go, 0, __ATOMIC_SEQ_CST);
    pthread_attr_t a;
    CHECK_EQ(pthread_attr_init(&a), 0);
    CHECK_EQ(pthread_attr_setstack(&a, own, own_size), 0);
    pthread_t ot;
    CHECK_EQ(pthread_create(&ot, &a, body, o), 0);
    CHECK_EQ(pthread_attr_destroy(&a), 0);
    void *oaddr;
    size_t osize, oguard;
    own_stack(ot, &oaddr, &osize, &oguard, NULL);
    CHECK(oaddr == own && osize == own_size, "program-owned stack [%p, +%zu) reported as [%p, +%zu)", own, own_size,
          oaddr, osize);
    __atomic_store_n(&go, 1, __ATOMIC_SEQ_CST);
    CHECK_EQ(pthread_join(ot, NULL), 0);
    CHECK(o->addr == own && o->size == own_size, "program-owned stack: reports [%p, +%zu) for itself", o->addr, o->size);
    CHECK(contains(own, own_size, o->local), "program-owned stack: its local %p is outside it", o->local);
    free(own);

    printf("stack_attr_unstarted: all passed\n");
    return 0;
}
