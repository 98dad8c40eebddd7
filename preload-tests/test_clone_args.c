/* clone() keeps every argument: greenworld exports `clone` to learn of a child sharing memory
 * (a vfork-like child), and its first call also resolves libc's. Each of the seven arguments
 * must arrive: parent_tid (the fifth, r8 on x86-64) and child_tid (the seventh, on the stack)
 * are written by the kernel, and `arg` reaches the child. The first clone of the process is the
 * one checked: before the fix, resolving libc's clone lost r8 and r9 on that call. */
#include "gwtest.h"
#include <sched.h>
#include <sys/mman.h>

static volatile int seen;

static int child(void *arg) {
    seen = *(int *)arg; /* CLONE_VM: the parent sees it */
    return 7;
}

static void one_clone(int value) {
    size_t size = 256 * 1024;
    char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    CHECK(stack != MAP_FAILED, "mmap: %s", strerror(errno));
    pid_t parent_tid = -1, child_tid = -1;
    seen = 0;
    int arg = value;
    pid_t pid = clone(child, stack + size, CLONE_VM | CLONE_PARENT_SETTID | CLONE_CHILD_SETTID | SIGCHLD, &arg,
                      &parent_tid, NULL, &child_tid);
    CHECK(pid > 0, "clone: %s", strerror(errno));
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7, "status %#x", status);
    CHECK_EQ(parent_tid, pid);
    CHECK_EQ(child_tid, pid);
    CHECK_EQ(seen, value);
    munmap(stack, size);
}

int main(void) {
    one_clone(41); /* the first clone of the process: libc's is looked up on the way */
    one_clone(42);
    printf("clone args ok\n");
    return 0;
}
