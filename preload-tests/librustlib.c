/* A library "compiled by rustc" (its .comment says so, as rustc writes into every object) whose
 * call does what std::sync::mpsc does across a thread it spawns: test_rust_lib. */
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

__asm__(".ident \"rustc version 1.95.0 (greenworld test)\"");

static __thread char identity; /* its address is the thread's identity, as in std's waker */

struct channel {
    uintptr_t receiver_id;
    int registered, message;
    int32_t state; /* std's futex parker: 0 empty, -1 parked, 1 notified */
};

static long futex(int32_t *word, int op, int32_t val) {
    return syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}

static void *receiver(void *arg) {
    struct channel *c = arg;
    __atomic_store_n(&c->receiver_id, (uintptr_t)&identity, __ATOMIC_SEQ_CST);
    if (__atomic_sub_fetch(&c->state, 1, __ATOMIC_SEQ_CST) == -1) {
        __atomic_store_n(&c->registered, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&c->state, __ATOMIC_SEQ_CST) == -1) futex(&c->state, FUTEX_WAIT_PRIVATE, -1);
    }
    return (void *)(intptr_t)__atomic_load_n(&c->message, __ATOMIC_SEQ_CST);
}

/* Spawns a receiver, sends it a message, joins it: 1 when it got the message, 0 when it woke
 * without, -1 when the receiver had this thread's identity. Hangs when the wake-up is lost. */
int rustlib_send_to_spawned(void) {
    struct channel c = {0};
    pthread_t t;
    if (pthread_create(&t, NULL, receiver, &c) != 0) return -2;
    while (!__atomic_load_n(&c.registered, __ATOMIC_SEQ_CST)) sched_yield();
    __atomic_store_n(&c.message, 1, __ATOMIC_SEQ_CST);
    /* The send: wake the receiver unless it is this very thread (it cannot be waiting). */
    if (__atomic_load_n(&c.receiver_id, __ATOMIC_SEQ_CST) != (uintptr_t)&identity &&
        __atomic_exchange_n(&c.state, 1, __ATOMIC_SEQ_CST) == -1)
        futex(&c.state, FUTEX_WAKE_PRIVATE, 1);
    void *got;
    if (pthread_join(t, &got) != 0) return -3;
    return c.receiver_id == (uintptr_t)&identity ? -1 : (int)(intptr_t)got;
}
