/* A library named as OpenBLAS's builds are (libopenblas*, numpy's libscipy_openblas*) whose
 * call does what OpenBLAS's thread server does: a worker it creates spins on a queue pointer
 * with no call in the loop (OpenBLAS's YIELDING is inline, it imports no sched_yield), and the
 * caller spins until the worker cleared it: test_openblas. */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The kernel's tid by the syscall instruction: the library virtualises gettid per green thread. */
static long kernel_tid(void) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "0"((long)SYS_gettid) : "rcx", "r11", "memory");
    return ret;
}

static _Atomic(long *) queue;
static pthread_t server;
static atomic_long server_tid;

static void *serve(void *arg) {
    atomic_store(&server_tid, kernel_tid());
    for (;;) {
        long *job;
        while (!(job = atomic_load(&queue))) __asm__ volatile("pause");
        if (*job < 0) return arg;
        *job += 1;
        atomic_store(&queue, NULL);
    }
}

/* Hands `rounds` jobs to the server and waits for each; returns the server's kernel tid. */
long openblas_gwtest_run(int rounds) {
    /* Started on the first call, as blas_thread_init (not through pthread_once, whose callback
     * the library runs: a tail call from it would be attributed to the library itself). */
    static int started;
    if (!started && pthread_create(&server, NULL, serve, NULL) == 0) started = 1;
    if (!started) return -1;
    for (int i = 0; i < rounds; i++) {
        long job = i;
        atomic_store(&queue, &job);
        while (atomic_load(&queue)) __asm__ volatile("pause");
        if (job != i + 1) return -1;
    }
    while (!atomic_load(&server_tid)) __asm__ volatile("pause");
    return atomic_load(&server_tid);
}
