#include "gwtest.h"
/* eventlet's monkey_patch truth table through the GREENWORLD_<SUBSYSTEM> variables, as the
 * running process sees it (greenworld_is_monkey_patched on subsystems and on hooked functions):
 * none set -> all patched; any set true -> only those; otherwise all but the false ones. Values
 * are case-insensitive; an empty value counts as unset. And the effect that matters most: with
 * GREENWORLD_THREAD=0 pthreads are real OS threads again while sleeps still work.
 * Green only: the test re-runs itself (argv[1] == "--child") under each environment. */
#include <pthread.h>

#define MS 1000000LL

/* Each name, then the subsystem (index into "os select socket thread time") deciding it. */
static const char *const names[] = {"os",     "select", "socket", "thread",  "time",          "nanosleep",
                                    "usleep", "pthread_create",   "pthread_mutex_lock", "recv", "poll",
                                    "read", "psycopg"};
/* psycopg (5) is libpq's calls, green for every subsystem: GREENWORLD_PSYCOPG=1, or every
 * subsystem patched for every caller (which greens libpq's calls with everyone's). */
static const int subsystem_of[] = {0, 1, 2, 3, 4, 4, 4, 3, 3, 2, 1, 0, 5};
enum { NAMES = sizeof names / sizeof names[0] };

static long long slept_ns[4];

static void *sleeper(void *arg) {
    long i = (long)(intptr_t)arg;
    long long t0 = gw_now_ns();
    if (usleep(200 * 1000) == 0) slept_ns[i] = gw_now_ns() - t0;
    return arg;
}

static int child(const char *mode) {
    printf("patched:");
    for (int i = 0; i < NAMES; i++) printf(" %s=%d", names[i], gw_patched(names[i]));
    printf("\n");
    if (strcmp(mode, "threads") == 0) {
        pthread_t t[4];
        long long t0 = gw_now_ns();
        for (long i = 0; i < 4; i++) CHECK_EQ(pthread_create(&t[i], NULL, sleeper, (void *)(intptr_t)i), 0);
        usleep(50 * 1000); /* all four are asleep now */
        int os_threads = gw_os_threads();
        for (int i = 0; i < 4; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
        long long wall = gw_now_ns() - t0;
        int sleeps_ok = 1;
        for (int i = 0; i < 4; i++)
            if (slept_ns[i] < 200 * MS) sleeps_ok = 0;
        printf("os_threads=%d sleeps_ok=%d wall_ms=%lld\n", os_threads, sleeps_ok, wall / MS);
    }
    return 0;
}

/* Every variable the library reads, unset, so the parent's environment cannot leak in. */
#define CLEAN_ENV                                                                                 \
    "-GREENWORLD_OS", "-GREENWORLD_SELECT", "-GREENWORLD_SOCKET", "-GREENWORLD_THREAD", "-GREENWORLD_TIME", \
        "-GREENWORLD_PSYCOPG", "-GREENWORLD_STATUS", "-GREENWORLD_STATS", "-GREENWORLD_LOG"

static char out[8192];

/* Runs the child with `env` (after CLEAN_ENV) and checks that exactly the subsystems in `want`
 * (six '0'/'1' for os, select, socket, thread, time, psycopg) are patched, for every name. */
static void expect(const char *const env[], const char *want, const char *mode) {
    const char *full[32] = {CLEAN_ENV};
    int n = 0;
    while (full[n]) n++;
    char desc[512] = "";
    for (int i = 0; env[i]; i++) {
        full[n++] = env[i];
        strncat(desc, env[i], sizeof desc - strlen(desc) - 2);
        strcat(desc, " ");
    }
    full[n] = NULL;
    int status = gw_run_self(full, out, sizeof out, "--child", mode, NULL);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "env [%s]: child status %d: %s", desc, status, out);
    char line[512] = "patched:";
    for (int i = 0; i < NAMES; i++) {
        size_t len = strlen(line);
        snprintf(line + len, sizeof line - len, " %s=%c", names[i], want[subsystem_of[i]]);
    }
    strcat(line, "\n");
    CHECK(strstr(out, line) != NULL, "env [%s]:\n want %s got  %s", desc, line, out);
}

static int field(const char *name) {
    const char *p = strstr(out, name);
    CHECK(p, "no %s in: %s", name, out);
    return atoi(p + strlen(name));
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "--child") == 0) return child(argv[2]);
    if (!gw_preloaded()) return GW_SKIP;

    const char *none[] = {NULL};
    expect(none, "111111", "");
    const char *only_two[] = {"GREENWORLD_SOCKET=1", "GREENWORLD_SELECT=1", NULL};
    expect(only_two, "011000", "");
    const char *only_two_words[] = {"GREENWORLD_SOCKET=yes", "GREENWORLD_SELECT=true", NULL};
    expect(only_two_words, "011000", "");
    const char *no_thread[] = {"GREENWORLD_THREAD=0", NULL};
    expect(no_thread, "111010", "");
    const char *two_false[] = {"GREENWORLD_TIME=false", "GREENWORLD_OS=no", NULL};
    expect(two_false, "011100", "");
    const char *true_wins[] = {"GREENWORLD_THREAD=1", "GREENWORLD_TIME=0", NULL};
    expect(true_wins, "000100", "");
    const char *off[] = {"GREENWORLD_SOCKET=off", NULL};
    expect(off, "110110", "");
    const char *all_false[] = {"GREENWORLD_OS=0", "GREENWORLD_SELECT=0", "GREENWORLD_SOCKET=0",
                               "GREENWORLD_THREAD=0", "GREENWORLD_TIME=0", NULL};
    expect(all_false, "000000", "");
    const char *all_true[] = {"GREENWORLD_OS=1", "GREENWORLD_SELECT=1", "GREENWORLD_SOCKET=1",
                              "GREENWORLD_THREAD=1", "GREENWORLD_TIME=1", NULL};
    expect(all_true, "111111", "");

    /* Case-insensitive values. */
    const char *upper_true[] = {"GREENWORLD_SOCKET=TRUE", "GREENWORLD_TIME=On", "GREENWORLD_OS=YES", NULL};
    expect(upper_true, "101010", "");
    const char *upper_false[] = {"GREENWORLD_THREAD=OFF", "GREENWORLD_SELECT=No", "GREENWORLD_TIME=FALSE", NULL};
    expect(upper_false, "101000", "");

    /* An empty value is unset: it neither selects nor excludes. */
    const char *empty[] = {"GREENWORLD_THREAD=", NULL};
    expect(empty, "111111", "");
    const char *empty_and_true[] = {"GREENWORLD_THREAD=", "GREENWORLD_SOCKET=1", NULL};
    expect(empty_and_true, "001000", "");
    const char *empty_and_false[] = {"GREENWORLD_OS=", "GREENWORLD_TIME=0", NULL};
    expect(empty_and_false, "111100", "");

    /* psycopg, eventlet's last kwarg, in the same table: alone, only libpq's calls are green
     * (the executable's are not); with others true, those for everyone and libpq's calls; false,
     * all but psycopg: every other subsystem for every caller, libpq's calls with them. */
    const char *psycopg_alone[] = {"GREENWORLD_PSYCOPG=1", NULL};
    expect(psycopg_alone, "000001", "");
    const char *psycopg_socket[] = {"GREENWORLD_PSYCOPG=on", "GREENWORLD_SOCKET=1", NULL};
    expect(psycopg_socket, "001001", "");
    const char *psycopg_true_wins[] = {"GREENWORLD_PSYCOPG=Yes", "GREENWORLD_TIME=0", NULL};
    expect(psycopg_true_wins, "000001", "");
    const char *psycopg_off[] = {"GREENWORLD_PSYCOPG=0", NULL};
    expect(psycopg_off, "111111", "");
    const char *psycopg_off_thread_off[] = {"GREENWORLD_PSYCOPG=false", "GREENWORLD_THREAD=0", NULL};
    expect(psycopg_off_thread_off, "111010", "");
    const char *psycopg_empty[] = {"GREENWORLD_PSYCOPG=", "GREENWORLD_OS=1", NULL};
    expect(psycopg_empty, "100000", "");

    /* Green threads: one OS thread while four sleep concurrently. */
    expect(none, "111111", "threads");
    CHECK(field("os_threads=") == 1, "green threads: %s", out);
    CHECK(field("sleeps_ok=") == 1, "%s", out);
    CHECK(field("wall_ms=") < 700, "four 200 ms sleeps did not overlap: %s", out);

    /* GREENWORLD_THREAD=0: real threads again (main + 4 at least), sleeps still work and overlap. */
    expect(no_thread, "111010", "threads");
    CHECK(field("os_threads=") >= 5, "GREENWORLD_THREAD=0 must give real threads: %s", out);
    CHECK(field("sleeps_ok=") == 1, "%s", out);
    CHECK(field("wall_ms=") < 700, "four 200 ms sleeps did not overlap: %s", out);
    return 0;
}
