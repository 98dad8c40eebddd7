/* C11 <threads.h> synchronisation: mtx_init plain / recursive / timed, mtx_lock, mtx_trylock
 * (thrd_busy), mtx_timedlock (thrd_timedout after ~100 ms), mtx_unlock; cnd_wait,
 * cnd_timedwait (thrd_timedout), cnd_signal, cnd_broadcast in a producer/consumer of
 * thrd_create threads.
 */
#include "gwtest.h"
#include <threads.h>

/* ---- another thread's try / timed lock ---- */

struct other {
    mtx_t *m;
    int timed, rc, unlock_rc;
    long long took_ns;
};

static int other_main(void *arg) {
    struct other *o = arg;
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 100);
    long long t0 = gw_now_ns();
    o->rc = o->timed ? mtx_timedlock(o->m, &at) : mtx_trylock(o->m);
    o->took_ns = gw_now_ns() - t0;
    o->unlock_rc = o->rc == thrd_success ? mtx_unlock(o->m) : thrd_success;
    return 7;
}

static int other(mtx_t *m, int timed, long long *took_ns) {
    struct other o = {.m = m, .timed = timed};
    thrd_t t;
    int res = 0;
    CHECK_EQ(thrd_create(&t, other_main, &o), thrd_success);
    CHECK_EQ(thrd_join(t, &res), thrd_success);
    CHECK_EQ(res, 7);
    CHECK_EQ(o.unlock_rc, thrd_success);
    if (took_ns) *took_ns = o.took_ns;
    return o.rc;
}

static void check_mutexes(void) {
    mtx_t plain, rec, timed, rec_timed;
    CHECK_EQ(mtx_init(&plain, mtx_plain), thrd_success);
    CHECK_EQ(mtx_init(&rec, mtx_plain | mtx_recursive), thrd_success);
    CHECK_EQ(mtx_init(&timed, mtx_timed), thrd_success);
    CHECK_EQ(mtx_init(&rec_timed, mtx_timed | mtx_recursive), thrd_success);

    /* plain */
    CHECK_EQ(mtx_lock(&plain), thrd_success);
    CHECK_EQ(mtx_trylock(&plain), thrd_busy);
    CHECK_EQ(other(&plain, 0, NULL), thrd_busy);
    CHECK_EQ(mtx_unlock(&plain), thrd_success);
    CHECK_EQ(other(&plain, 0, NULL), thrd_success);
    CHECK_EQ(mtx_trylock(&plain), thrd_success);
    CHECK_EQ(mtx_unlock(&plain), thrd_success);

    /* recursive */
    CHECK_EQ(mtx_lock(&rec), thrd_success);
    CHECK_EQ(mtx_lock(&rec), thrd_success);
    CHECK_EQ(mtx_trylock(&rec), thrd_success);
    CHECK_EQ(other(&rec, 0, NULL), thrd_busy);
    CHECK_EQ(mtx_unlock(&rec), thrd_success);
    CHECK_EQ(mtx_unlock(&rec), thrd_success);
    CHECK_EQ(other(&rec, 0, NULL), thrd_busy);
    CHECK_EQ(mtx_unlock(&rec), thrd_success);
    CHECK_EQ(other(&rec, 0, NULL), thrd_success);
    CHECK_EQ(mtx_unlock(&rec), thrd_error); /* not held: glibc's EPERM maps to thrd_error */

    /* timed: times out after ~100 ms while held; succeeds when free */
    long long took;
    CHECK_EQ(mtx_lock(&timed), thrd_success);
    CHECK_EQ(other(&timed, 1, &took), thrd_timedout);
    CHECK(took >= 95000000LL && took < 2000000000LL, "mtx_timedlock took %lld ns", took);
    CHECK_EQ(mtx_unlock(&timed), thrd_success);
    CHECK_EQ(other(&timed, 1, NULL), thrd_success);
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 100);
    CHECK_EQ(mtx_timedlock(&timed, &at), thrd_success);
    CHECK_EQ(other(&timed, 0, NULL), thrd_busy);
    CHECK_EQ(mtx_unlock(&timed), thrd_success);

    /* timed + recursive */
    CHECK_EQ(mtx_lock(&rec_timed), thrd_success);
    at = gw_abs_in(CLOCK_REALTIME, 100);
    CHECK_EQ(mtx_timedlock(&rec_timed, &at), thrd_success);
    CHECK_EQ(other(&rec_timed, 1, &took), thrd_timedout);
    CHECK(took >= 95000000LL && took < 2000000000LL, "mtx_timedlock took %lld ns", took);
    CHECK_EQ(mtx_unlock(&rec_timed), thrd_success);
    CHECK_EQ(other(&rec_timed, 0, NULL), thrd_busy);
    CHECK_EQ(mtx_unlock(&rec_timed), thrd_success);
    CHECK_EQ(other(&rec_timed, 1, NULL), thrd_success);

    mtx_destroy(&plain);
    mtx_destroy(&rec);
    mtx_destroy(&timed);
    mtx_destroy(&rec_timed);
}

/* ---- cnd_timedwait timing out ---- */

static void check_cnd_timeout(void) {
    mtx_t m;
    cnd_t c;
    CHECK_EQ(mtx_init(&m, mtx_plain), thrd_success);
    CHECK_EQ(cnd_init(&c), thrd_success);
    CHECK_EQ(mtx_lock(&m), thrd_success);
    struct timespec at = gw_abs_in(CLOCK_REALTIME, 100);
    long long t0 = gw_now_ns();
    CHECK_EQ(cnd_timedwait(&c, &m, &at), thrd_timedout);
    long long dt = gw_now_ns() - t0;
    CHECK(dt >= 95000000LL && dt < 2000000000LL, "cnd_timedwait took %lld ns", dt);
    CHECK_EQ(other(&m, 0, NULL), thrd_busy); /* re-held */
    CHECK_EQ(mtx_unlock(&m), thrd_success);
    CHECK_EQ(cnd_signal(&c), thrd_success);
    CHECK_EQ(cnd_broadcast(&c), thrd_success);
    cnd_destroy(&c);
    mtx_destroy(&m);
}

/* ---- producer / consumer ---- */

#define PRODUCERS 20
#define CONSUMERS 20
#define PER 100
#define TOTAL (PRODUCERS * PER)
#define CAP 4

static mtx_t qm;
static cnd_t not_full, not_empty, all_ready;
static int q[CAP], qh, qt, qn;
static long long sum;
static int count, ready, start, bad;
static unsigned char seen[TOTAL];

static void wait_start(void) {
    if (mtx_lock(&qm) != thrd_success) bad++;
    ready++;
    if (cnd_signal(&all_ready) != thrd_success) bad++;
    while (!start)
        if (cnd_wait(&not_empty, &qm) != thrd_success) bad++; /* the start broadcast */
    if (mtx_unlock(&qm) != thrd_success) bad++;
}

static int producer(void *arg) {
    int p = (int)(intptr_t)arg;
    wait_start();
    for (int i = 0; i < PER; i++) {
        if (mtx_lock(&qm) != thrd_success) bad++;
        while (qn == CAP) {
            /* a timed wait that should be woken long before its 5 s deadline */
            struct timespec at = gw_abs_in(CLOCK_REALTIME, 5000);
            if (cnd_timedwait(&not_full, &qm, &at) != thrd_success) bad++;
        }
        q[qt] = p * PER + i;
        qt = (qt + 1) % CAP;
        qn++;
        if (cnd_signal(&not_empty) != thrd_success) bad++;
        if (mtx_unlock(&qm) != thrd_success) bad++;
    }
    return p;
}

static int consumer(void *arg) {
    (void)arg;
    int mine = 0;
    wait_start();
    for (int i = 0; i < PER; i++) {
        if (mtx_lock(&qm) != thrd_success) bad++;
        while (qn == 0)
            if (cnd_wait(&not_empty, &qm) != thrd_success) bad++;
        int item = q[qh];
        qh = (qh + 1) % CAP;
        qn--;
        if (item >= 0 && item < TOTAL) seen[item]++;
        else bad++;
        sum += item;
        count++;
        mine++;
        if (cnd_signal(&not_full) != thrd_success) bad++;
        if (mtx_unlock(&qm) != thrd_success) bad++;
    }
    return mine;
}

static void check_prodcons(void) {
    CHECK_EQ(mtx_init(&qm, mtx_plain), thrd_success);
    CHECK_EQ(cnd_init(&not_full), thrd_success);
    CHECK_EQ(cnd_init(&not_empty), thrd_success);
    CHECK_EQ(cnd_init(&all_ready), thrd_success);
    thrd_t pt[PRODUCERS], ct[CONSUMERS];
    for (int i = 0; i < PRODUCERS; i++) {
        CHECK_EQ(thrd_create(&ct[i], consumer, NULL), thrd_success);
        CHECK_EQ(thrd_create(&pt[i], producer, (void *)(intptr_t)i), thrd_success);
    }
    /* Everyone waits on not_empty for the start: one broadcast releases all 40. */
    CHECK_EQ(mtx_lock(&qm), thrd_success);
    while (ready < PRODUCERS + CONSUMERS) {
        struct timespec at = gw_abs_in(CLOCK_REALTIME, 3000);
        CHECK(cnd_timedwait(&all_ready, &qm, &at) == thrd_success, "only %d ready", ready);
    }
    start = 1;
    CHECK_EQ(cnd_broadcast(&not_empty), thrd_success);
    CHECK_EQ(mtx_unlock(&qm), thrd_success);
    for (int i = 0; i < PRODUCERS; i++) {
        int res = -1;
        CHECK_EQ(thrd_join(pt[i], &res), thrd_success);
        CHECK_EQ(res, i);
    }
    for (int i = 0; i < CONSUMERS; i++) {
        int res = -1;
        CHECK_EQ(thrd_join(ct[i], &res), thrd_success);
        CHECK_EQ(res, PER);
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(count, TOTAL);
    CHECK_EQ(sum, (long long)TOTAL * (TOTAL - 1) / 2);
    CHECK_EQ(qn, 0);
    for (int i = 0; i < TOTAL; i++) CHECK(seen[i] == 1, "item %d seen %d times", i, seen[i]);
    cnd_destroy(&not_full);
    cnd_destroy(&not_empty);
    cnd_destroy(&all_ready);
    mtx_destroy(&qm);
}

int main(void) {
    check_mutexes();
    check_cnd_timeout();
    check_prodcons();
    if (gw_preloaded()) {
        CHECK_EQ(gw_patched("thread"), 1);
        CHECK_EQ(gw_os_threads(), 1);
    }
    printf("c11 sync: all passed\n");
    return 0;
}
