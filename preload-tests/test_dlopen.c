#include "gwtest.h"
#include <pthread.h>
/* A program that dlopens the library (GREENWORLD_LIB, which run-tests sets) instead of linking
 * it. Natively, loading it changes nothing: its constructor runs, but the program's calls
 * resolve to libc, which ld.so searched first, so threads stay OS threads and sigaction
 * installs the program's own handler; greenworld_monkey_patch says so (ENOSYS) and patches
 * nothing. Under the preload, dlopen returns the preloaded library: patched, and
 * monkey_patch succeeds. */

static void *stay(void *arg) {
    usleep(50 * 1000);
    return arg;
}

static void on_usr1(int sig) { (void)sig; }

static void *kernel_handler(int sig) {
    struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } k;
    CHECK(syscall(SYS_rt_sigaction, sig, NULL, &k, 8) == 0, "rt_sigaction: %s", strerror(errno));
    return k.handler;
}

int main(void) {
    const char *lib = getenv("GREENWORLD_LIB");
    if (!lib) return GW_SKIP;
    int preloaded = gw_preloaded();
    void *h = dlopen(lib, RTLD_NOW | RTLD_GLOBAL);
    CHECK(h != NULL, "dlopen %s: %s", lib, dlerror());
    int (*monkey_patch)(unsigned) = (int (*)(unsigned))dlsym(h, "greenworld_monkey_patch");
    int (*is_patched)(const char *) = (int (*)(const char *))dlsym(h, "greenworld_is_monkey_patched");
    CHECK(monkey_patch && is_patched, "the API is not exported");
    CHECK_EQ(is_patched("thread"), preloaded);

    CHECK_EQ(monkey_patch(0), preloaded ? 0 : ENOSYS);
    CHECK_EQ(is_patched("thread"), preloaded);
    CHECK_EQ(is_patched("time"), preloaded);

    pthread_t t[4];
    for (int i = 0; i < 4; i++) CHECK_EQ(pthread_create(&t[i], NULL, stay, NULL), 0);
    CHECK_EQ(gw_os_threads(), preloaded ? 1 : 5);
    for (int i = 0; i < 4; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);

    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
    CHECK((kernel_handler(SIGUSR1) == (void *)on_usr1) == !preloaded, "handler %p, ours %p",
          kernel_handler(SIGUSR1), (void *)on_usr1);
    printf("dlopen ok\n");
    return 0;
}
