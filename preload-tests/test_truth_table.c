/* eventlet's monkey_patch truth table through the GREENWORLD_<SUBSYSTEM> variables, as the
 * running process sees it (greenworld_is_monkey_patched), and the effect that matters most:
 * with GREENWORLD_THREAD=0 pthreads are real OS threads again while sleeps stay green. */
#include "gwtest.h"
#include <pthread.h>

static const char *names[] = {"os", "select", "socket", "thread", "time", "nanosleep", "pthread_create", "recv", "poll", "read"};
enum { NAMES = sizeof names / sizeof names[0] };

static void *sleeper(void *arg) {
    usleep(200 * 1000);
    return arg;
}

static int child(const char *mode) {
    for (int i = 0; i < NAMES; i++) printf("%s=%d ", names[i], gw_patched(names[i]));
    printf("\n");
    if (strcmp(mode, "threads") == 0) {
        pthread_t t[4];
        for (int i = 0; i < 4; i++) CHECK_EQ(pthread_create(&t[i], NULL, sleeper, NULL), 0);
        usleep(50 * 1000);
        printf("os_threads=%d\n", gw_os_threads());
        for (int i = 0; i < 4; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    }
    return 0;
}

/* Runs the child with `env` and checks the patched subsystems are exactly `want` (a string of
 * five 0/1 for os, select, socket, thread, time). */
static void expect(const char *const env[], const char *want, const char *mode, char *out) {
    char *args[] = {(char *)gw_self(), "child", (char *)mode, NULL};
    int status = gw_run(env, args, out, 8192);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: %s", out);
    char line[256] = "";
    snprintf(line, sizeof line, "os=%c select=%c socket=%c thread=%c time=%c nanosleep=%c pthread_create=%c recv=%c poll=%c read=%c ",
             want[0], want[1], want[2], want[3], want[4], want[4], want[3], want[2], want[1], want[0]);
    CHECK(strstr(out, line), "env %s...: want '%s', got '%s'", env[0] ? env[0] : "(none)", line, out);
}

int main(int argc, char **argv) {
    if (argc > 2) return child(argv[2]);
    if (!gw_preloaded()) return GW_SKIP;
    char out[8192];
    const char *none[] = {NULL};
    expect(none, "11111", "", out);
    const char *only_two[] = {"GREENWORLD_SOCKET=1", "GREENWORLD_SELECT=true", NULL};
    expect(only_two, "01100", "", out);
    const char *no_thread[] = {"GREENWORLD_THREAD=0", NULL};
    expect(no_thread, "11101", "", out);
    const char *two_false[] = {"GREENWORLD_TIME=false", "GREENWORLD_OS=no", NULL};
    expect(two_false, "01110", "", out);
    const char *true_wins[] = {"GREENWORLD_THREAD=1", "GREENWORLD_TIME=0", NULL};
    expect(true_wins, "00010", "", out);
    const char *cases[] = {"GREENWORLD_SOCKET=TRUE", "GREENWORLD_TIME=On", "GREENWORLD_OS=YES", NULL};
    expect(cases, "10101", "", out);
    const char *empty[] = {"GREENWORLD_THREAD=", NULL};
    expect(empty, "11111", "", out);
    const char *off[] = {"GREENWORLD_SOCKET=off", NULL};
    expect(off, "11011", "", out);

    /* Threads green: one OS thread while four sleep. */
    expect(none, "11111", "threads", out);
    CHECK(strstr(out, "os_threads=1\n"), "%s", out);
    /* GREENWORLD_THREAD=0: real threads again (1 + 4), sleeps still work. */
    expect(no_thread, "11101", "threads", out);
    CHECK(strstr(out, "os_threads=5\n"), "%s", out);
    return 0;
}
