/* Impossible stack sizes.
 * pthread_attr_setstacksize accepts any size >= PTHREAD_STACK_MIN, but pthread_create must
 * then fail with EAGAIN (glibc: the mmap of the stack fails) without crashing and without
 * running the start routine, for: 1 << 46 (64 TiB, more than RAM + swap: glibc's accounted
 * mapping is refused; note a MAP_NORESERVE mapping of that size succeeds on Linux), 1 << 47
 * (the whole user address space: no mmap can succeed), 1 << 62, 1 << 63, and SIZE_MAX rounded
 * down to a page, where "size + guard" overflows (glibc: EINVAL, accepted too).
 * Afterwards the process keeps working: malloc, a thread with a 1 MiB stack and a default one
 * are created and joined, and the failed attempts can be retried again with the same result.
 */
#include "gwtest.h"
#include <pthread.h>

static int ran;

static void *body(void *arg) {
    __atomic_add_fetch(&ran, 1, __ATOMIC_SEQ_CST);
    usleep(1000);
    return arg;
}

/* near_max: a size so close to SIZE_MAX that the stack plus its guard page overflows; glibc
 * says EINVAL for it (its overflow check) rather than EAGAIN; either is right, not crashing
 * or succeeding is the point. */
static void try_size(size_t size, int near_max) {
    pthread_attr_t a;
    pthread_t t;
    CHECK_EQ(pthread_attr_init(&a), 0);
    CHECK_EQ(pthread_attr_setstacksize(&a, size), 0);
    size_t got = 0;
    CHECK_EQ(pthread_attr_getstacksize(&a, &got), 0);
    CHECK(got == size, "getstacksize %zu, set %zu", got, size);
    int rc = pthread_create(&t, &a, body, NULL);
    CHECK(rc == EAGAIN || (near_max && rc == EINVAL), "stack size %#zx: pthread_create returned %d (%s), want EAGAIN", size, rc,
          strerror(rc));
    CHECK_EQ(pthread_attr_destroy(&a), 0);
}

static void create_join(size_t stacksize, intptr_t value) {
    pthread_attr_t a;
    pthread_t t;
    void *v = NULL;
    CHECK_EQ(pthread_attr_init(&a), 0);
    if (stacksize) CHECK_EQ(pthread_attr_setstacksize(&a, stacksize), 0);
    CHECK_EQ(pthread_create(&t, &a, body, (void *)value), 0);
    CHECK_EQ(pthread_attr_destroy(&a), 0);
    CHECK_EQ(pthread_join(t, &v), 0);
    CHECK_EQ((intptr_t)v, value);
}

int main(void) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t sizes[] = {(size_t)1 << 46, (size_t)1 << 47, (size_t)1 << 62, (size_t)1 << 63,
                            SIZE_MAX & ~(page - 1)};
    const int n = (int)(sizeof sizes / sizeof sizes[0]);

    for (int i = 0; i < n; i++) try_size(sizes[i], i == n - 1);
    usleep(5000); /* had any of them been created, it would run now */
    CHECK_EQ(__atomic_load_n(&ran, __ATOMIC_SEQ_CST), 0);

    void *p = malloc(1 << 20);
    CHECK(p != NULL, "malloc failed after the refused creates");
    memset(p, 1, 1 << 20);
    free(p);
    create_join(1 << 20, 11);
    create_join(0, 12);
    CHECK_EQ(__atomic_load_n(&ran, __ATOMIC_SEQ_CST), 2);

    /* Again, with a live thread around. */
    pthread_t live;
    CHECK_EQ(pthread_create(&live, NULL, body, (void *)(intptr_t)13), 0);
    for (int i = 0; i < n; i++) try_size(sizes[i], i == n - 1);
    void *v = NULL;
    CHECK_EQ(pthread_join(live, &v), 0);
    CHECK_EQ((intptr_t)v, 13);
    create_join(0, 14);
    CHECK_EQ(__atomic_load_n(&ran, __ATOMIC_SEQ_CST), 4);

    if (gw_preloaded()) CHECK_EQ(gw_os_threads(), 1);
    printf("stack_eagain: all passed\n");
    return 0;
}
