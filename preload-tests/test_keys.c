/* Thread-specific data (pthread_key_*).
 * 1. Per-thread values: main sets its own value first; 50 threads each start with NULL, set
 *    their own value, then sleep / yield several times and read back their own value each time.
 *    Main's value is unchanged afterwards.
 * 2. Destructors run at thread exit, once per thread that holds a non-NULL value, with that
 *    value (50 calls, each value seen once); a thread that set the value back to NULL, or
 *    never set it, gets no call; main's value gets no call.
 * 3. A destructor that sets the value again triggers another round: one that always re-sets
 *    is called PTHREAD_DESTRUCTOR_ITERATIONS (4 in glibc) times, each time with the value it
 *    set; one that re-sets only on its first call is called twice.
 * 4. After pthread_key_delete: pthread_setspecific -> EINVAL and a second delete -> EINVAL
 *    (glibc); a key deleted while a thread holds a value gets no destructor call.
 */
#include "gwtest.h"
#include <limits.h>
#include <pthread.h>
#include <sched.h>

#define N 50

/* ---- 1. per-thread values ---- */

static pthread_key_t k_vals;
static int vals[N];
static int mainval;
static int bad_reads, started_null;

static void *per_thread(void *arg) {
    int i = (int)(intptr_t)arg;
    if (pthread_getspecific(k_vals) == NULL) __atomic_add_fetch(&started_null, 1, __ATOMIC_SEQ_CST);
    CHECK_EQ(pthread_setspecific(k_vals, &vals[i]), 0);
    for (int r = 0; r < 6; r++) {
        if (r % 2) sched_yield();
        else gw_sleep_ms(1 + (i + r) % 4);
        if (pthread_getspecific(k_vals) != &vals[i]) __atomic_add_fetch(&bad_reads, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

static void check_values(void) {
    CHECK_EQ(pthread_key_create(&k_vals, NULL), 0);
    CHECK_EQ(pthread_setspecific(k_vals, &mainval), 0);
    pthread_t t[N];
    for (int i = 0; i < N; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, per_thread, (void *)(intptr_t)i), 0);
    CHECK(pthread_getspecific(k_vals) == &mainval, "main's value changed while creating");
    for (int i = 0; i < N; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK_EQ(started_null, N);
    CHECK_EQ(bad_reads, 0);
    CHECK(pthread_getspecific(k_vals) == &mainval, "main's value changed by the threads");
    CHECK_EQ(pthread_key_delete(k_vals), 0);
}

/* ---- 2. destructors ---- */

static pthread_key_t k_dtor;
static int seen[N + 1], dtor_total, dtor_bad;
static int mainval2;

static void dtor(void *v) {
    intptr_t x = (intptr_t)v;
    __atomic_add_fetch(&dtor_total, 1, __ATOMIC_SEQ_CST);
    if (x < 1 || x > N) __atomic_add_fetch(&dtor_bad, 1, __ATOMIC_SEQ_CST);
    else __atomic_add_fetch(&seen[x], 1, __ATOMIC_SEQ_CST);
}

static void *with_dtor(void *arg) {
    int i = (int)(intptr_t)arg;
    if (i < N) {
        CHECK_EQ(pthread_setspecific(k_dtor, (void *)(intptr_t)(i + 1)), 0);
        gw_sleep_ms(1 + i % 3);
    } else if (i < N + 5) { /* set, then back to NULL: no call */
        CHECK_EQ(pthread_setspecific(k_dtor, (void *)(intptr_t)999), 0);
        gw_sleep_ms(1);
        CHECK_EQ(pthread_setspecific(k_dtor, NULL), 0);
    } else { /* never set: no call */
        gw_sleep_ms(1);
    }
    return NULL;
}

static void check_destructors(void) {
    CHECK_EQ(pthread_key_create(&k_dtor, dtor), 0);
    CHECK_EQ(pthread_setspecific(k_dtor, &mainval2), 0);
    pthread_t t[N + 10];
    for (int i = 0; i < N + 10; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, with_dtor, (void *)(intptr_t)i), 0);
    for (int i = 0; i < N + 10; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK_EQ(dtor_total, N);
    CHECK_EQ(dtor_bad, 0);
    for (int i = 1; i <= N; i++) CHECK(seen[i] == 1, "value %d destroyed %d times", i, seen[i]);
    CHECK(pthread_getspecific(k_dtor) == &mainval2, "main's value changed");
}

/* ---- 3. re-setting destructors ---- */

static pthread_key_t k_always, k_once;
static int always_calls, once_calls, always_wrong_value, once_wrong_value;

static void dtor_always(void *v) {
    /* Each round gets the value set by the previous round. */
    if ((intptr_t)v != 100 + always_calls) always_wrong_value++;
    always_calls++;
    pthread_setspecific(k_always, (void *)(intptr_t)(100 + always_calls));
}

static void dtor_once(void *v) {
    if ((intptr_t)v != 200 + once_calls) once_wrong_value++;
    once_calls++;
    if (once_calls == 1) pthread_setspecific(k_once, (void *)(intptr_t)201);
}

static void *set_resetting(void *arg) {
    (void)arg;
    CHECK_EQ(pthread_setspecific(k_always, (void *)(intptr_t)100), 0);
    CHECK_EQ(pthread_setspecific(k_once, (void *)(intptr_t)200), 0);
    gw_sleep_ms(1);
    return NULL;
}

static void check_rounds(void) {
    CHECK_EQ(pthread_key_create(&k_always, dtor_always), 0);
    CHECK_EQ(pthread_key_create(&k_once, dtor_once), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, set_resetting, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
#ifdef PTHREAD_DESTRUCTOR_ITERATIONS
    CHECK_EQ(PTHREAD_DESTRUCTOR_ITERATIONS, 4);
#endif
    CHECK_EQ(always_calls, 4);
    CHECK_EQ(always_wrong_value, 0);
    CHECK_EQ(once_calls, 2);
    CHECK_EQ(once_wrong_value, 0);
    CHECK_EQ(pthread_key_delete(k_always), 0);
    CHECK_EQ(pthread_key_delete(k_once), 0);
}

/* ---- 4. deleted keys ---- */

static pthread_key_t k_del;
static int del_calls, holder_set, holder_release;

static void dtor_del(void *v) {
    (void)v;
    __atomic_add_fetch(&del_calls, 1, __ATOMIC_SEQ_CST);
}

static void *holder(void *arg) {
    (void)arg;
    CHECK_EQ(pthread_setspecific(k_del, (void *)(intptr_t)7), 0);
    __atomic_store_n(&holder_set, 1, __ATOMIC_SEQ_CST);
    long long t0 = gw_now_ns();
    while (!__atomic_load_n(&holder_release, __ATOMIC_SEQ_CST)) {
        CHECK(gw_now_ns() - t0 < 10000000000LL, "never released");
        gw_sleep_ms(1);
    }
    return NULL;
}

static void check_deleted(void) {
    pthread_key_t k;
    CHECK_EQ(pthread_key_create(&k, NULL), 0);
    CHECK_EQ(pthread_setspecific(k, (void *)1), 0);
    CHECK_EQ(pthread_key_delete(k), 0);
    CHECK_EQ(pthread_setspecific(k, (void *)1), EINVAL);
    CHECK_EQ(pthread_key_delete(k), EINVAL);

    /* Deleted while a thread holds a value: that value's destructor is never called. */
    CHECK_EQ(pthread_key_create(&k_del, dtor_del), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, holder, NULL), 0);
    long long t0 = gw_now_ns();
    while (!__atomic_load_n(&holder_set, __ATOMIC_SEQ_CST)) {
        CHECK(gw_now_ns() - t0 < 10000000000LL, "holder never started");
        gw_sleep_ms(1);
    }
    CHECK_EQ(pthread_key_delete(k_del), 0);
    __atomic_store_n(&holder_release, 1, __ATOMIC_SEQ_CST);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(del_calls, 0);
}

int main(void) {
    check_values();
    check_destructors();
    check_rounds();
    check_deleted();
    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1);
    printf("keys: all passed\n");
    return 0;
}
