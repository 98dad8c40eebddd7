#include "gwtest.h"
#include <linux/futex.h>
#include <pthread.h>
/* Rust's std tells threads apart by the address of a thread-local (its channels' waker,
 * mpmc::waker::current_thread_id): a send wakes every receiver parked under another identity and
 * skips its own thread's, as a thread cannot wait on a channel while it sends. Green threads of
 * one OS thread share its thread-locals' addresses (only their contents are private), so a
 * send skipped the receiver parked in another green thread of its hub and rustc hung on
 * `fn main(){}` (its codegen coordinator and main thread each waiting for the other's message).
 * rustc names itself in the executable's .comment; this program carries that string and does
 * what std's channel and thread parker do. Its threads must stay OS threads, the receiver must be
 * woken, and its thread-local must lie at another address than main's. */

__asm__(".ident \"rustc version 1.95.0 (greenworld test)\"");

static __thread char identity; /* its address is the thread's identity, as in std's waker */

static uintptr_t receiver_id;
static int registered, message;
/* std's futex parker: 0 empty, -1 parked, 1 notified. */
static int32_t state;

static long futex(int32_t *word, int op, int32_t val) {
    return syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}

static void *receiver(void *arg) {
    __atomic_store_n(&receiver_id, (uintptr_t)&identity, __ATOMIC_SEQ_CST);
    if (__atomic_sub_fetch(&state, 1, __ATOMIC_SEQ_CST) == -1) {
        __atomic_store_n(&registered, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&state, __ATOMIC_SEQ_CST) == -1) futex(&state, FUTEX_WAIT_PRIVATE, -1);
    }
    CHECK(__atomic_load_n(&message, __ATOMIC_SEQ_CST) == 1, "woken with no message");
    return arg;
}

int main(void) {
    gw_watchdog("test_rust_std", 30);
    if (gw_preloaded()) CHECK(gw_patched("thread") == 0, "a Rust program's threads were made green");
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, receiver, NULL), 0);
    gw_wait_flag(&registered, "the receiver to park");
    __atomic_store_n(&message, 1, __ATOMIC_SEQ_CST);
    /* The send: wake the receiver unless it is this very thread. */
    if (__atomic_load_n(&receiver_id, __ATOMIC_SEQ_CST) != (uintptr_t)&identity &&
        __atomic_exchange_n(&state, 1, __ATOMIC_SEQ_CST) == -1)
        futex(&state, FUTEX_WAKE_PRIVATE, 1);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(receiver_id != (uintptr_t)&identity, "the thread's thread-local at main's address %p", (void *)&identity);
    puts("ok");
    return 0;
}
