#include "gwtest.h"
#include <linux/futex.h>
#include <pthread.h>
/* A Go program linked with cgo makes its threads with pthread_create, and they wait for each
 * other in raw futex calls (the syscall instruction, not libc): green, a waiting thread blocks
 * the OS thread the thread it waits for runs on, and `go version` hung at start. The Go linker
 * marks its executables with a note (owner "Go", type 4: the build id); this program carries one
 * and does what Go's runtime does. Its threads must stay OS threads (the thread subsystem not
 * patched, each thread its own kernel tid) and a ping-pong over raw futexes must end. */

__asm__(".pushsection .note.go.buildid,\"a\",@note\n"
        ".balign 4\n"
        ".long 4\n"                /* namesz: "Go\0\0" */
        ".long 8\n"                /* descsz */
        ".long 4\n"                /* ELF_NOTE_GOBUILDID_TAG */
        ".asciz \"Go\"\n.byte 0\n" /* the owner, padded to 4 */
        ".ascii \"gwtestid\"\n"
        ".popsection\n");

/* Go's runtime.futex: the system call made inline, out of any hook's sight. */
static long raw_futex(uint32_t *addr, int op, uint32_t val) {
    long ret;
    register long r10 __asm__("r10") = 0;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"((long)SYS_futex), "D"(addr), "S"((long)op), "d"((long)val), "r"(r10)
                     : "rcx", "r11", "memory");
    return ret;
}

#define ROUNDS 2000
static uint32_t turn; /* even: main's move, odd: the thread's */
static pid_t thread_tid;

static void wait_turn(uint32_t want) {
    uint32_t now;
    while ((now = __atomic_load_n(&turn, __ATOMIC_ACQUIRE)) != want) raw_futex(&turn, FUTEX_WAIT_PRIVATE, now);
}

static void pass_turn(uint32_t next) {
    __atomic_store_n(&turn, next, __ATOMIC_RELEASE);
    raw_futex(&turn, FUTEX_WAKE_PRIVATE, 1);
}

static void *partner(void *arg) {
    thread_tid = gw_tid();
    for (uint32_t i = 0; i < ROUNDS; i++) {
        wait_turn(2 * i + 1);
        pass_turn(2 * i + 2);
    }
    return arg;
}

int main(void) {
    gw_watchdog("test_go_runtime", 30);
    if (gw_preloaded()) CHECK(gw_patched("thread") == 0, "a Go program's threads were made green");
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, partner, NULL), 0);
    for (uint32_t i = 0; i < ROUNDS; i++) {
        pass_turn(2 * i + 1);
        wait_turn(2 * i + 2);
    }
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(thread_tid != gw_tid(), "the thread shared main's OS thread (tid %d)", (int)thread_tid);
    CHECK_EQ(__atomic_load_n(&turn, __ATOMIC_ACQUIRE), 2 * ROUNDS);
    puts("ok");
    return 0;
}
