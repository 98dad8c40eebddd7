/* pthread rwlocks.
 * - 20 readers + 5 writers x 200 iterations with occasional sleeps inside: never a writer
 *   together with readers or another writer; readers do share the lock.
 * - tryrdlock/trywrlock EBUSY while write-held, trywrlock EBUSY while read-held, wrlock and
 *   rdlock by the writer itself EDEADLK, timed/clock variants ETIMEDOUT after ~100 ms,
 *   EINVAL for a malformed deadline (glibc checks it up front, even when the lock is free).
 * - Preference: by default a new reader passes a queued writer; with
 *   PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP a queued writer blocks new readers (EBUSY).
 *   A queued writer that timed out blocks nobody any more (either kind).
 * The exclusion run is done for both kinds.
 */
#include "gwtest.h"
#include <pthread.h>

#define READERS 20
#define WRITERS 5
#define ITERS 200

static pthread_rwlock_t rw;
static int readers_in, writers_in, max_readers, violations, bad_rc;
static long data_a, data_b; /* writers keep them equal */
static int reads_done, writes_done;

static void *reader(void *arg) {
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < ITERS; i++) {
        if (pthread_rwlock_rdlock(&rw) != 0) __atomic_add_fetch(&bad_rc, 1, __ATOMIC_SEQ_CST);
        int r = __atomic_add_fetch(&readers_in, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&writers_in, __ATOMIC_SEQ_CST) != 0)
            __atomic_add_fetch(&violations, 1, __ATOMIC_SEQ_CST);
        int m = __atomic_load_n(&max_readers, __ATOMIC_SEQ_CST);
        while (r > m && !__atomic_compare_exchange_n(&max_readers, &m, r, 0, __ATOMIC_SEQ_CST,
                                                     __ATOMIC_SEQ_CST)) {}
        long a = __atomic_load_n(&data_a, __ATOMIC_SEQ_CST);
        if ((i + id) % 10 == 0) usleep(300);
        long b = __atomic_load_n(&data_b, __ATOMIC_SEQ_CST);
        if (a != b) __atomic_add_fetch(&violations, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&writers_in, __ATOMIC_SEQ_CST) != 0)
            __atomic_add_fetch(&violations, 1, __ATOMIC_SEQ_CST);
        __atomic_sub_fetch(&readers_in, 1, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&reads_done, 1, __ATOMIC_SEQ_CST);
        if (pthread_rwlock_unlock(&rw) != 0) __atomic_add_fetch(&bad_rc, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

static void *writer(void *arg) {
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < ITERS; i++) {
        if (pthread_rwlock_wrlock(&rw) != 0) __atomic_add_fetch(&bad_rc, 1, __ATOMIC_SEQ_CST);
        if (__atomic_add_fetch(&writers_in, 1, __ATOMIC_SEQ_CST) != 1)
            __atomic_add_fetch(&violations, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&readers_in, __ATOMIC_SEQ_CST) != 0)
            __atomic_add_fetch(&violations, 1, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&data_a, 1, __ATOMIC_SEQ_CST);
        if ((i + id) % 20 == 0) usleep(300);
        __atomic_add_fetch(&data_b, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&readers_in, __ATOMIC_SEQ_CST) != 0)
            __atomic_add_fetch(&violations, 1, __ATOMIC_SEQ_CST);
        __atomic_sub_fetch(&writers_in, 1, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&writes_done, 1, __ATOMIC_SEQ_CST);
        if (pthread_rwlock_unlock(&rw) != 0) __atomic_add_fetch(&bad_rc, 1, __ATOMIC_SEQ_CST);
        if (i % 50 == 0) usleep(100);
    }
    return NULL;
}

static void check_exclusion(int kind, const char *name) {
    pthread_rwlockattr_t a;
    CHECK_EQ(pthread_rwlockattr_init(&a), 0);
    CHECK_EQ(pthread_rwlockattr_setkind_np(&a, kind), 0);
    CHECK_EQ(pthread_rwlock_init(&rw, &a), 0);
    CHECK_EQ(pthread_rwlockattr_destroy(&a), 0);
    readers_in = writers_in = max_readers = violations = bad_rc = 0;
    data_a = data_b = 0;
    reads_done = writes_done = 0;
    pthread_t r[READERS], w[WRITERS];
    for (int i = 0; i < READERS; i++) {
        CHECK_EQ(pthread_create(&r[i], NULL, reader, (void *)(intptr_t)i), 0);
        if (i % 4 == 0) CHECK_EQ(pthread_create(&w[i / 4], NULL, writer, (void *)(intptr_t)i), 0);
    }
    for (int i = 0; i < READERS; i++) CHECK_EQ(pthread_join(r[i], NULL), 0);
    for (int i = 0; i < WRITERS; i++) CHECK_EQ(pthread_join(w[i], NULL), 0);
    CHECK_EQ(bad_rc, 0);
    CHECK_EQ(violations, 0);
    CHECK_EQ(reads_done, READERS * ITERS);
    CHECK_EQ(writes_done, WRITERS * ITERS);
    CHECK_EQ(data_a, WRITERS * ITERS);
    CHECK_EQ(data_b, WRITERS * ITERS);
    CHECK(max_readers >= 2, "readers never shared the lock (max %d)", max_readers);
    CHECK(max_readers <= READERS, "max readers %d", max_readers);
    CHECK_EQ(pthread_rwlock_destroy(&rw), 0);
    printf("rwlock (%s): max %d readers together\n", name, max_readers);
}

/* ---- error codes ---- */

enum op { TRYRD, TRYWR, TIMEDRD, TIMEDWR, CLOCKRD, CLOCKWR, RD, WR };

struct other {
    pthread_rwlock_t *l;
    enum op op;
    int rc, unlock_rc;
    long long took_ns;
};

static void *other_main(void *arg) {
    struct other *o = arg;
    struct timespec rt = gw_abs_in(CLOCK_REALTIME, 100), mono = gw_abs_in(CLOCK_MONOTONIC, 100);
    long long t0 = gw_now_ns();
    switch (o->op) {
    case TRYRD: o->rc = pthread_rwlock_tryrdlock(o->l); break;
    case TRYWR: o->rc = pthread_rwlock_trywrlock(o->l); break;
    case TIMEDRD: o->rc = pthread_rwlock_timedrdlock(o->l, &rt); break;
    case TIMEDWR: o->rc = pthread_rwlock_timedwrlock(o->l, &rt); break;
    case CLOCKRD: o->rc = pthread_rwlock_clockrdlock(o->l, CLOCK_MONOTONIC, &mono); break;
    case CLOCKWR: o->rc = pthread_rwlock_clockwrlock(o->l, CLOCK_MONOTONIC, &mono); break;
    case RD: o->rc = pthread_rwlock_rdlock(o->l); break;
    case WR: o->rc = pthread_rwlock_wrlock(o->l); break;
    }
    o->took_ns = gw_now_ns() - t0;
    o->unlock_rc = o->rc == 0 ? pthread_rwlock_unlock(o->l) : 0;
    return NULL;
}

static int other(pthread_rwlock_t *l, enum op op, long long *took_ns) {
    struct other o = {.l = l, .op = op};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, other_main, &o), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(o.unlock_rc, 0);
    if (took_ns) *took_ns = o.took_ns;
    return o.rc;
}

#define CHECK_TIMES_OUT(l, op)                                                                \
    do {                                                                                      \
        long long took_;                                                                      \
        CHECK_EQ(other(l, op, &took_), ETIMEDOUT);                                            \
        CHECK(took_ >= 95000000LL && took_ < 2000000000LL, "took %lld ns", took_);            \
    } while (0)

static void check_codes(void) {
    pthread_rwlock_t l;
    CHECK_EQ(pthread_rwlock_init(&l, NULL), 0);

    /* Write-held by us. */
    CHECK_EQ(pthread_rwlock_wrlock(&l), 0);
    CHECK_EQ(other(&l, TRYRD, NULL), EBUSY);
    CHECK_EQ(other(&l, TRYWR, NULL), EBUSY);
    CHECK_EQ(pthread_rwlock_tryrdlock(&l), EBUSY);
    CHECK_EQ(pthread_rwlock_trywrlock(&l), EBUSY);
    CHECK_EQ(pthread_rwlock_wrlock(&l), EDEADLK);
    CHECK_EQ(pthread_rwlock_rdlock(&l), EDEADLK);
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 5000);
    CHECK_EQ(pthread_rwlock_timedwrlock(&l, &at), EDEADLK);
    CHECK_EQ(pthread_rwlock_timedrdlock(&l, &at), EDEADLK);
    CHECK_TIMES_OUT(&l, TIMEDRD);
    CHECK_TIMES_OUT(&l, TIMEDWR);
    CHECK_TIMES_OUT(&l, CLOCKRD);
    CHECK_TIMES_OUT(&l, CLOCKWR);
    CHECK_EQ(pthread_rwlock_unlock(&l), 0);
    CHECK_EQ(other(&l, TRYWR, NULL), 0);
    CHECK_EQ(other(&l, TRYRD, NULL), 0);

    /* Read-held by us: readers come in, writers do not. */
    CHECK_EQ(pthread_rwlock_rdlock(&l), 0);
    CHECK_EQ(pthread_rwlock_rdlock(&l), 0); /* twice */
    CHECK_EQ(other(&l, TRYRD, NULL), 0);
    CHECK_EQ(other(&l, RD, NULL), 0);
    CHECK_EQ(other(&l, TRYWR, NULL), EBUSY);
    CHECK_EQ(pthread_rwlock_trywrlock(&l), EBUSY);
    CHECK_TIMES_OUT(&l, TIMEDWR);
    CHECK_TIMES_OUT(&l, CLOCKWR);
    CHECK_EQ(pthread_rwlock_unlock(&l), 0);
    CHECK_EQ(other(&l, TRYWR, NULL), EBUSY); /* still one read level */
    CHECK_EQ(pthread_rwlock_unlock(&l), 0);
    CHECK_EQ(other(&l, TRYWR, NULL), 0);

    /* Timeout for our own timed write lock while another thread reads... here: while we
     * read (no deadlock detection for readers: it waits and times out). */
    CHECK_EQ(pthread_rwlock_rdlock(&l), 0);
    at = gw_abs_in(CLOCK_REALTIME, 100);
    long long t0 = gw_now_ns();
    CHECK_EQ(pthread_rwlock_timedwrlock(&l, &at), ETIMEDOUT);
    long long dt = gw_now_ns() - t0;
    CHECK(dt >= 95000000LL && dt < 2000000000LL, "timedwrlock took %lld ns", dt);
    CHECK_EQ(pthread_rwlock_unlock(&l), 0);

    /* Malformed deadlines and clocks: EINVAL, checked before anything else (glibc). */
    at = gw_abs_in(CLOCK_REALTIME, 100);
    at.tv_nsec = 2000000000L;
    CHECK_EQ(pthread_rwlock_timedwrlock(&l, &at), EINVAL);
    CHECK_EQ(pthread_rwlock_timedrdlock(&l, &at), EINVAL);
    at.tv_nsec = -1;
    CHECK_EQ(pthread_rwlock_clockwrlock(&l, CLOCK_MONOTONIC, &at), EINVAL);
    CHECK_EQ(pthread_rwlock_clockrdlock(&l, CLOCK_MONOTONIC, &at), EINVAL);
    at = gw_abs_in(CLOCK_MONOTONIC, 100);
    CHECK_EQ(pthread_rwlock_clockwrlock(&l, CLOCK_PROCESS_CPUTIME_ID, &at), EINVAL);
    CHECK_EQ(pthread_rwlock_clockrdlock(&l, CLOCK_PROCESS_CPUTIME_ID, &at), EINVAL);
    /* The lock is still free. */
    CHECK_EQ(pthread_rwlock_trywrlock(&l), 0);
    at.tv_nsec = 2000000000L;
    CHECK_EQ(pthread_rwlock_timedwrlock(&l, &at), EINVAL);
    CHECK_EQ(pthread_rwlock_unlock(&l), 0);

    /* Timed locks that succeed. */
    at = gw_abs_in(CLOCK_REALTIME, 1000);
    CHECK_EQ(pthread_rwlock_timedwrlock(&l, &at), 0);
    CHECK_EQ(pthread_rwlock_unlock(&l), 0);
    at = gw_abs_in(CLOCK_MONOTONIC, 1000);
    CHECK_EQ(pthread_rwlock_clockrdlock(&l, CLOCK_MONOTONIC, &at), 0);
    CHECK_EQ(pthread_rwlock_unlock(&l), 0);

    CHECK_EQ(pthread_rwlock_destroy(&l), 0);
}

/* ---- preference: a reader holds, a writer queues, a new reader tries ---- */

struct pref {
    pthread_rwlock_t l;
    int writer_waiting, writer_got, writer_rc, unlock_rc;
};

static void *queued_writer(void *arg) {
    struct pref *p = arg;
    __atomic_store_n(&p->writer_waiting, 1, __ATOMIC_SEQ_CST);
    p->writer_rc = pthread_rwlock_wrlock(&p->l);
    __atomic_store_n(&p->writer_got, 1, __ATOMIC_SEQ_CST);
    p->unlock_rc = p->writer_rc == 0 ? pthread_rwlock_unlock(&p->l) : 0;
    return NULL;
}

/* Returns the new reader's tryrdlock result with a reader holding and a writer queued. */
static int new_reader_with_writer_queued(int kind) {
    struct pref p = {0};
    pthread_rwlockattr_t a;
    CHECK_EQ(pthread_rwlockattr_init(&a), 0);
    CHECK_EQ(pthread_rwlockattr_setkind_np(&a, kind), 0);
    CHECK_EQ(pthread_rwlock_init(&p.l, &a), 0);
    CHECK_EQ(pthread_rwlockattr_destroy(&a), 0);

    CHECK_EQ(pthread_rwlock_rdlock(&p.l), 0);
    pthread_t w;
    CHECK_EQ(pthread_create(&w, NULL, queued_writer, &p), 0);
    while (!__atomic_load_n(&p.writer_waiting, __ATOMIC_SEQ_CST)) usleep(1000);
    usleep(50000); /* let it get into wrlock and queue */
    CHECK_EQ(p.writer_got, 0);
    int rc = other(&p.l, TRYRD, NULL);
    CHECK_EQ(p.writer_got, 0);
    CHECK_EQ(pthread_rwlock_unlock(&p.l), 0);
    CHECK_EQ(pthread_join(w, NULL), 0);
    CHECK_EQ(p.writer_rc, 0);
    CHECK_EQ(p.unlock_rc, 0);
    CHECK_EQ(p.writer_got, 1);
    CHECK_EQ(pthread_rwlock_destroy(&p.l), 0);
    return rc;
}

/* A queued writer that times out no longer holds back new readers, whatever the kind. */
static void check_writer_gave_up(int kind, const char *name) {
    pthread_rwlock_t l;
    pthread_rwlockattr_t a;
    CHECK_EQ(pthread_rwlockattr_init(&a), 0);
    CHECK_EQ(pthread_rwlockattr_setkind_np(&a, kind), 0);
    CHECK_EQ(pthread_rwlock_init(&l, &a), 0);
    CHECK_EQ(pthread_rwlockattr_destroy(&a), 0);
    CHECK_EQ(pthread_rwlock_rdlock(&l), 0);
    CHECK_TIMES_OUT(&l, TIMEDWR);
    int rc = other(&l, TRYRD, NULL);
    CHECK(rc == 0, "%s: after the writer gave up, a new reader's tryrdlock = %d", name, rc);
    long long took;
    rc = other(&l, TIMEDRD, &took);
    CHECK(rc == 0, "%s: after the writer gave up, a new reader's timedrdlock = %d", name, rc);
    CHECK(took < 50000000LL, "%s: a new reader waited %lld ns", name, took);
    CHECK_EQ(other(&l, TRYWR, NULL), EBUSY);
    CHECK_EQ(pthread_rwlock_unlock(&l), 0);
    CHECK_EQ(other(&l, TRYWR, NULL), 0);
    CHECK_EQ(pthread_rwlock_destroy(&l), 0);
}

static void check_preference(void) {
    int rc = new_reader_with_writer_queued(PTHREAD_RWLOCK_PREFER_READER_NP);
    CHECK(rc == 0, "prefer-reader: a new reader got %d, want 0", rc);
    rc = new_reader_with_writer_queued(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    CHECK(rc == EBUSY, "prefer-writer-nonrecursive: a new reader got %d, want EBUSY", rc);
    check_writer_gave_up(PTHREAD_RWLOCK_PREFER_READER_NP, "prefer-reader");
    check_writer_gave_up(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP, "prefer-writer");
}

int main(void) {
    check_exclusion(PTHREAD_RWLOCK_PREFER_READER_NP, "prefer-reader");
    check_exclusion(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP, "prefer-writer");
    check_codes();
    check_preference();
    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1);
    printf("rwlock: all passed\n");
    return 0;
}
