/* Producer/consumer on a bounded buffer with one mutex and two condition variables (not-full,
 * not-empty): 500 producers and 500 consumers (1000 threads). Every item is consumed exactly
 * once (count, sum and a per-item bitmap). Under the preload all of it runs on one OS thread.
 */
#include "gwtest.h"
#include <pthread.h>

#define PRODUCERS 500
#define CONSUMERS 500
#define PER_THREAD 40 /* items per producer, and per consumer */
#define TOTAL (PRODUCERS * PER_THREAD)
#define CAP 8

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static int buf[CAP];
static int head, tail, used;
static int max_used;

static long long consumed_sum;
static int consumed_count;
static unsigned char seen[TOTAL];
static int duplicates, out_of_range;
static int max_os_threads;
static int bad_rc;

static void note_os_threads(void) {
    int n = gw_os_threads();
    if (n > max_os_threads) max_os_threads = n; /* called with mu held */
}

static void *producer(void *arg) {
    int p = (int)(intptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        int item = p * PER_THREAD + i;
        if (pthread_mutex_lock(&mu) != 0) bad_rc++;
        while (used == CAP)
            if (pthread_cond_wait(&not_full, &mu) != 0) bad_rc++;
        buf[tail] = item;
        tail = (tail + 1) % CAP;
        used++;
        if (used > max_used) max_used = used;
        if (p % 100 == 0 && i == PER_THREAD / 2) note_os_threads();
        if (pthread_cond_signal(&not_empty) != 0) bad_rc++;
        if (pthread_mutex_unlock(&mu) != 0) bad_rc++;
    }
    return NULL;
}

static void *consumer(void *arg) {
    int c = (int)(intptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        if (pthread_mutex_lock(&mu) != 0) bad_rc++;
        while (used == 0)
            if (pthread_cond_wait(&not_empty, &mu) != 0) bad_rc++;
        int item = buf[head];
        head = (head + 1) % CAP;
        used--;
        if (item < 0 || item >= TOTAL) out_of_range++;
        else if (seen[item]++) duplicates++;
        consumed_sum += item;
        consumed_count++;
        if (c % 100 == 0 && i == PER_THREAD / 2) note_os_threads();
        if (pthread_cond_signal(&not_full) != 0) bad_rc++;
        if (pthread_mutex_unlock(&mu) != 0) bad_rc++;
    }
    return NULL;
}

int main(void) {
    static pthread_t prod[PRODUCERS], cons[CONSUMERS];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    /* Interleave creation so both sides start early. */
    for (int i = 0; i < PRODUCERS; i++) {
        CHECK_EQ(pthread_create(&cons[i], &attr, consumer, (void *)(intptr_t)i), 0);
        CHECK_EQ(pthread_create(&prod[i], &attr, producer, (void *)(intptr_t)i), 0);
    }
    pthread_attr_destroy(&attr);
    for (int i = 0; i < PRODUCERS; i++) {
        CHECK_EQ(pthread_join(prod[i], NULL), 0);
        CHECK_EQ(pthread_join(cons[i], NULL), 0);
    }

    CHECK_EQ(bad_rc, 0);
    CHECK_EQ(consumed_count, TOTAL);
    CHECK_EQ(consumed_sum, (long long)TOTAL * (TOTAL - 1) / 2);
    CHECK_EQ(duplicates, 0);
    CHECK_EQ(out_of_range, 0);
    for (int i = 0; i < TOTAL; i++) CHECK(seen[i] == 1, "item %d seen %d times", i, seen[i]);
    CHECK_EQ(used, 0);
    CHECK(max_used >= 1 && max_used <= CAP, "max_used=%d", max_used);
    CHECK(max_os_threads >= 1, "gw_os_threads() never sampled or failed: %d", max_os_threads);
    if (gw_preloaded()) {
        CHECK_EQ(gw_patched("thread"), 1);
        CHECK_EQ(max_os_threads, 1);
        CHECK_EQ(gw_os_threads(), 1);
        /* Cooperative scheduling with 500 producers queued: the buffer fills up. */
        CHECK_EQ(max_used, CAP);
    }
    printf("prodcons: %d items, max buffered %d, max OS threads %d\n", consumed_count, max_used,
           max_os_threads);
    return 0;
}
