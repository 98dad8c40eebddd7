/* Thread identity: pthread_self, names, attributes, pthread_kill(t, 0), pthread_cancel.
 * 1. 200 live threads: each one's pthread_self equals (pthread_equal) the pthread_t that
 *    pthread_create returned for it, and differs from every other thread's and from main's;
 *    pthread_kill(t, 0) == 0 for each while it is alive.
 * 2. Names: each of 10 threads sets its own name and reads it back; main reads it on the
 *    thread's handle, renames the thread, and the thread reads the new name. ERANGE for a
 *    16-character name (from the thread and from main), and for a 15-byte buffer; the name is
 *    unchanged after a refused set.
 * 3. pthread_getattr_np on a thread created with attr stacksize 1 MiB: stacksize >= 1 MiB and
 *    a local variable of the thread lies in [stackaddr, stackaddr + stacksize), both from the
 *    thread itself and from main on its handle; detach state joinable.
 * 4. pthread_cancel: under the preload it returns ENOTSUP and the thread carries on and
 *    returns its own value. Natively that part is skipped (glibc would cancel it).
 */
#include "gwtest.h"
#include <pthread.h>
#include <signal.h>

/* ---- 1. identity ---- */

#define MANY 200

static pthread_t selves[MANY];
static int started, release_many;

static void *identity(void *arg) {
    int i = (int)(intptr_t)arg;
    selves[i] = pthread_self();
    __atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
    gw_wait_flag(&release_many, "release");
    /* Still the same handle after switches. */
    return (void *)(intptr_t)pthread_equal(pthread_self(), selves[i]);
}

static void check_identity(void) {
    static pthread_t t[MANY];
    for (int i = 0; i < MANY; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, identity, (void *)(intptr_t)i), 0);
    gw_wait_count(&started, MANY, "the 200 threads to start");
    pthread_t me = pthread_self();
    CHECK(pthread_equal(me, me), "pthread_equal(self, self) is 0");
    for (int i = 0; i < MANY; i++) {
        CHECK(pthread_equal(selves[i], t[i]), "thread %d: pthread_self != created handle", i);
        CHECK(!pthread_equal(selves[i], me), "thread %d has main's pthread_self", i);
        CHECK_EQ(pthread_kill(t[i], 0), 0);
        for (int j = 0; j < i; j++)
            CHECK(!pthread_equal(selves[i], selves[j]), "threads %d and %d share a handle", i, j);
    }
    __atomic_store_n(&release_many, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < MANY; i++) {
        void *v = NULL;
        CHECK_EQ(pthread_join(t[i], &v), 0);
        CHECK(v != NULL, "thread %d: pthread_self changed", i);
    }
}

/* ---- 2. names ---- */

#define NAMED 10

static int named_ready, renamed, name_bad[NAMED], name_done, names_read;

static void *named(void *arg) {
    int i = (int)(intptr_t)arg;
    char want[16], got[32];
    snprintf(want, sizeof want, "gw-self-%d", i);
    if (pthread_setname_np(pthread_self(), want) != 0) name_bad[i] |= 1;
    memset(got, 0, sizeof got);
    if (pthread_getname_np(pthread_self(), got, 16) != 0 || strcmp(got, want) != 0) name_bad[i] |= 2;
    /* 16 characters do not fit (15 + NUL). */
    if (pthread_setname_np(pthread_self(), "0123456789abcdef") != ERANGE) name_bad[i] |= 4;
    if (pthread_getname_np(pthread_self(), got, 15) != ERANGE) name_bad[i] |= 8;
    if (pthread_getname_np(pthread_self(), got, sizeof got) != 0 || strcmp(got, want) != 0)
        name_bad[i] |= 16;
    gw_sleep_ms(1 + i % 3);
    __atomic_add_fetch(&named_ready, 1, __ATOMIC_SEQ_CST);
    gw_wait_flag(&renamed, "main to rename");
    snprintf(want, sizeof want, "gw-main-%d", i);
    if (pthread_getname_np(pthread_self(), got, sizeof got) != 0 || strcmp(got, want) != 0)
        name_bad[i] |= 32;
    /* 15 characters exactly fit. */
    if (pthread_setname_np(pthread_self(), "0123456789abcde") != 0) name_bad[i] |= 64;
    if (pthread_getname_np(pthread_self(), got, 16) != 0 || strcmp(got, "0123456789abcde") != 0)
        name_bad[i] |= 128;
    __atomic_add_fetch(&name_done, 1, __ATOMIC_SEQ_CST);
    gw_wait_flag(&names_read, "main to read the last names"); /* stay alive till then */
    return NULL;
}

static void check_names(void) {
    pthread_t t[NAMED];
    char got[32], want[16];
    for (int i = 0; i < NAMED; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, named, (void *)(intptr_t)i), 0);
    gw_wait_count(&named_ready, NAMED, "the named threads");
    for (int i = 0; i < NAMED; i++) {
        snprintf(want, sizeof want, "gw-self-%d", i);
        memset(got, 0, sizeof got);
        CHECK_EQ(pthread_getname_np(t[i], got, sizeof got), 0);
        CHECK(strcmp(got, want) == 0, "thread %d is named '%s' seen from main, want '%s'", i, got,
              want);
        CHECK_EQ(pthread_getname_np(t[i], got, 15), ERANGE);
        CHECK_EQ(pthread_setname_np(t[i], "0123456789abcdefgh"), ERANGE);
        CHECK_EQ(pthread_getname_np(t[i], got, 16), 0);
        CHECK(strcmp(got, want) == 0, "refused rename changed thread %d to '%s'", i, got);
        snprintf(want, sizeof want, "gw-main-%d", i);
        CHECK_EQ(pthread_setname_np(t[i], want), 0);
        CHECK_EQ(pthread_getname_np(t[i], got, 16), 0);
        CHECK(strcmp(got, want) == 0, "thread %d renamed by main reads '%s'", i, got);
    }
    __atomic_store_n(&renamed, 1, __ATOMIC_SEQ_CST);
    gw_wait_count(&name_done, NAMED, "the named threads to finish");
    for (int i = 0; i < NAMED; i++) {
        CHECK_EQ(pthread_getname_np(t[i], got, sizeof got), 0);
        CHECK(strcmp(got, "0123456789abcde") == 0, "thread %d: '%s'", i, got);
    }
    __atomic_store_n(&names_read, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < NAMED; i++) {
        CHECK_EQ(pthread_join(t[i], NULL), 0);
        CHECK(name_bad[i] == 0, "thread %d: name check failures, mask 0x%x", i, name_bad[i]);
    }
}

/* ---- 3. getattr_np ---- */

#define MiB (1024 * 1024)

static int attr_bad, attr_ready, attr_release;
static uintptr_t attr_local;

static void *attr_body(void *arg) {
    (void)arg;
    volatile int local = 1;
    attr_local = (uintptr_t)&local;
    pthread_attr_t a;
    void *addr = NULL;
    size_t size = 0;
    int ds = -1;
    if (pthread_getattr_np(pthread_self(), &a) != 0) attr_bad |= 1;
    if (pthread_attr_getstack(&a, &addr, &size) != 0) attr_bad |= 2;
    if (pthread_attr_getdetachstate(&a, &ds) != 0 || ds != PTHREAD_CREATE_JOINABLE) attr_bad |= 4;
    pthread_attr_destroy(&a);
    if (size < MiB) {
        fprintf(stderr, "stack size %zu < 1 MiB\n", size);
        attr_bad |= 8;
    }
    uintptr_t lo = (uintptr_t)addr;
    if (!(attr_local >= lo && attr_local < lo + size)) {
        fprintf(stderr, "local %#lx outside the stack [%#lx, %#lx)\n", (unsigned long)attr_local,
                (unsigned long)lo, (unsigned long)(lo + size));
        attr_bad |= 16;
    }
    __atomic_store_n(&attr_ready, 1, __ATOMIC_SEQ_CST);
    gw_wait_flag(&attr_release, "attr release");
    return (void *)(intptr_t)(local + 41);
}

static void check_getattr(void) {
    pthread_attr_t a;
    pthread_t t;
    size_t want = 0;
    CHECK_EQ(pthread_attr_init(&a), 0);
    CHECK_EQ(pthread_attr_setstacksize(&a, MiB), 0);
    CHECK_EQ(pthread_attr_getstacksize(&a, &want), 0);
    CHECK_EQ(want, MiB);
    CHECK_EQ(pthread_create(&t, &a, attr_body, NULL), 0);
    CHECK_EQ(pthread_attr_destroy(&a), 0);
    gw_wait_flag(&attr_ready, "the attr thread");
    CHECK(attr_bad == 0, "getattr_np from the thread: failure mask 0x%x", attr_bad);

    /* The same from main, on the thread's handle. */
    pthread_attr_t b;
    void *addr = NULL;
    size_t size = 0;
    CHECK_EQ(pthread_getattr_np(t, &b), 0);
    CHECK_EQ(pthread_attr_getstack(&b, &addr, &size), 0);
    CHECK_EQ(pthread_attr_destroy(&b), 0);
    CHECK(size >= MiB, "stack size %zu seen from main", size);
    uintptr_t lo = (uintptr_t)addr;
    CHECK(attr_local >= lo && attr_local < lo + size, "local %#lx outside [%#lx, %#lx) from main",
          (unsigned long)attr_local, (unsigned long)lo, (unsigned long)(lo + size));
    __atomic_store_n(&attr_release, 1, __ATOMIC_SEQ_CST);
    void *v = NULL;
    CHECK_EQ(pthread_join(t, &v), 0);
    CHECK_EQ((intptr_t)v, 42);
}

/* ---- 4. cancel (preload only) ---- */

static int cancel_steps;

static void *cancel_body(void *arg) {
    (void)arg;
    for (int i = 0; i < 5; i++) {
        gw_sleep_ms(10); /* sleeps are cancellation points in glibc */
        __atomic_add_fetch(&cancel_steps, 1, __ATOMIC_SEQ_CST);
    }
    return (void *)(intptr_t)314;
}

static void check_cancel(void) {
    if (!gw_preloaded()) return; /* natively the thread would really be cancelled */
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, cancel_body, NULL), 0);
    gw_sleep_ms(15);
    CHECK_EQ(pthread_cancel(t), ENOTSUP);
    void *v = NULL;
    CHECK_EQ(pthread_join(t, &v), 0);
    CHECK(v != PTHREAD_CANCELED, "the thread was cancelled");
    CHECK_EQ((intptr_t)v, 314);
    CHECK_EQ(cancel_steps, 5);
}

int main(void) {
    check_identity();
    check_names();
    check_getattr();
    check_cancel();
    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1);
    printf("self_names: all passed\n");
    return 0;
}
