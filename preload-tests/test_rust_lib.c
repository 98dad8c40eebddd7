// link: librustlib
#include "gwtest.h"
#include <pthread.h>
/* A C program calling a Rust library whose threads use std's channels: std tells threads apart
 * by a thread-local's address and a send skips receivers of its own identity (test_rust_std).
 * Green, the library's receiver had the address of the green thread that spawned it (every
 * green thread of a hub shares the OS thread's) and its wake-up was lost: a C program calling a
 * Rust cdylib that joins mpsc workers hung at one hub. librustlib's .comment names rustc, as a
 * Rust object's does: the threads it creates must stay OS threads, from main and from the
 * program's own (green) threads, while those stay green. */

int rustlib_send_to_spawned(void);

static void *caller(void *arg) {
    for (int i = 0; i < 20; i++) CHECK_EQ(rustlib_send_to_spawned(), 1);
    return arg;
}

int main(void) {
    gw_watchdog("test_rust_lib", 60);
    /* Not a Rust executable: the program's own threads stay green. */
    if (gw_preloaded()) CHECK_EQ(gw_patched("thread"), 1);
    CHECK_EQ(rustlib_send_to_spawned(), 1);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) CHECK_EQ(pthread_create(&t[i], NULL, caller, NULL), 0);
    for (int i = 0; i < 4; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    puts("ok");
    return 0;
}
