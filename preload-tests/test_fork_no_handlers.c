/* _Fork(): glibc's fork without the atfork handlers (2.34+), which greenworld watches (its child
 * runs none of the library's fork handlers either, so it must learn another way that it is a
 * new process). Asserted, natively and green:
 *   - _Fork returns the child's pid in the parent and 0 in the child;
 *   - the child, while a thread of the parent was parked in a sleep, can sleep, write to a
 *     pipe and read its own pipe (waits that must be made on the child's own process state),
 *     and its exit status reaches waitpid;
 *   - the parent's parked thread is unaffected and finishes. */
#include "gwtest.h"
#include <unistd.h>

static void *sleeper(void *arg) {
    (void)arg;
    gw_sleep_ms(100);
    return (void *)42;
}

int main(void) {
    gw_watchdog("test_fork_no_handlers", 30);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, sleeper, NULL), 0);
    gw_sleep_ms(5); /* the sleeper is parked now */
    int to_parent[2];
    CHECK_EQ(pipe(to_parent), 0);
    pid_t pid = _Fork();
    CHECK(pid >= 0, "_Fork: %s", strerror(errno));
    if (pid == 0) {
        int own[2];
        if (pipe(own) != 0) _exit(10);
        usleep(2000);
        if (write(own[1], "c", 1) != 1) _exit(11);
        char c = 0;
        if (read(own[0], &c, 1) != 1 || c != 'c') _exit(12);
        if (write(to_parent[1], "k", 1) != 1) _exit(13);
        _exit(7);
    }
    close(to_parent[1]);
    char c = 0;
    CHECK_EQ(read(to_parent[0], &c, 1), 1);
    CHECK_EQ(c, 'k');
    CHECK_EQ(read(to_parent[0], &c, 1), 0); /* EOF: the child has exited */
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EQ(gw_exit_code(status), 7);
    void *ret = NULL;
    CHECK_EQ(pthread_join(t, &ret), 0);
    CHECK(ret == (void *)42, "sleeper returned %p", ret);
    puts("test_fork_no_handlers: ok");
    return 0;
}
