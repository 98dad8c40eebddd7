// link: libopenblas_gwtest
#include "gwtest.h"
#include <sys/syscall.h>
#include <unistd.h>

/* The kernel's tid by the syscall instruction: the library virtualises gettid per green thread. */
static long kernel_tid(void) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "0"((long)SYS_gettid) : "rcx", "r11", "memory");
    return ret;
}
/* numpy's OpenBLAS under greenrun: its server threads, green, share an OS thread with the
 * caller and wait in inline spins that only preemption ends; np.linalg.solve and a 2000x2000
 * matmul with OPENBLAS_NUM_THREADS=2 then gave wrong results about one call in three, at 1
 * and 2 hubs (README "Real programs"). A thread an OpenBLAS object creates stays an OS thread
 * (thread::raw_waiters, by file name, as libgomp's): its kernel tid is not the caller's. */

long openblas_gwtest_run(int rounds);

int main(void) {
    gw_watchdog("test_openblas", 60);
    if (gw_preloaded()) CHECK_EQ(gw_patched("thread"), 1);
    long tid = openblas_gwtest_run(200);
    CHECK(tid > 0);
    CHECK(tid != kernel_tid());
    puts("ok");
    return 0;
}
