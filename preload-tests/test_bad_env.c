#include "gwtest.h"
/* A malformed GREENWORLD_ variable stops the program before main: exactly one line of output,
 * starting "greenworld: ", naming the variable, its value (in single quotes) and the accepted
 * values, and exit status 2. Good values are accepted and main runs. Green only: the test
 * re-runs itself (argv[1] == "--child"); the child's first act in main is to write "MAIN RAN"
 * (unbuffered, so it cannot be lost by an _exit), then it calls hooked functions, in case the
 * library only reads its configuration on first use.
 * An unknown GREENWORLD_ name (a typo) is not an error: one warning line naming the closest known
 * variable, and the program runs; GREENWORLD_LOG=error silences it; the scripts' variables are
 * known. */
#include <pthread.h>

#define CLEAN_ENV                                                                                 \
    "-GREENWORLD_OS", "-GREENWORLD_SELECT", "-GREENWORLD_SOCKET", "-GREENWORLD_THREAD", "-GREENWORLD_TIME", \
        "-GREENWORLD_STATUS", "-GREENWORLD_STATS", "-GREENWORLD_LOG", "-GREENWORLD_STACK_SIZE",             \
        "-GREENWORLD_TPOOL_SIZE", "-GREENWORLD_INHERIT", "-GREENWORLD_FILEIO", "-GREENWORLD_TLS", \
        "-GREENWORLD_PATCH_FROM", "-GREENWORLD_PSYCOPG", "-GREENWORLD_PREEMPT", "-GREENWORLD_BLOCK_WARN", \
        "-GREENWORLD_ESCAPES", "-GREENWORLD_HUBS", "-GREENWORLD_SLICE", "-GREENWORLD_STACK_COPY"

static void *thread_fn(void *arg) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
    return arg;
}

static int child(void) {
    static const char ran[] = "MAIN RAN\n";
    if (write(1, ran, sizeof ran - 1) < 0) return 3;
    struct timespec ts = {0, 1000000};
    CHECK_EQ(nanosleep(&ts, NULL), 0);
    pthread_t t;
    void *ret = NULL;
    CHECK_EQ(pthread_create(&t, NULL, thread_fn, (void *)7), 0);
    CHECK_EQ(pthread_join(t, &ret), 0);
    CHECK_EQ((intptr_t)ret, 7);
    printf("MAIN DONE\n");
    return 0;
}

static char out[8192];

static int run_child(const char *a, const char *b, char *desc, size_t desc_len) {
    const char *env[32] = {CLEAN_ENV, a, b, NULL};
    snprintf(desc, desc_len, "%s%s%s", a, b ? " " : "", b ? b : "");
    return gw_run_self(env, out, sizeof out, "--child", NULL);
}

/* `a` (and `b`, if not NULL) set; the bad one is name=value. */
static void expect_rejected(const char *a, const char *b, const char *name, const char *value) {
    char desc[256], quoted[128];
    int status = run_child(a, b, desc, sizeof desc);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2, "%s: status %d (want exit 2), output: %s", desc, status,
          out);
    CHECK(!strstr(out, "MAIN RAN"), "%s: main ran: %s", desc, out);
    CHECK(strncmp(out, "greenworld: ", 12) == 0, "%s: does not start with 'greenworld: ': %s", desc, out);
    char *nl = strchr(out, '\n');
    CHECK(nl && nl[1] == 0, "%s: not exactly one line: %s", desc, out);
    CHECK(strstr(out, name), "%s: the line does not name %s: %s", desc, name, out);
    snprintf(quoted, sizeof quoted, "'%s'", value);
    CHECK(strstr(out, quoted), "%s: the line does not quote the value %s: %s", desc, quoted, out);
    CHECK(strstr(out, "accepted"), "%s: the line gives no accepted values: %s", desc, out);
}

static void expect_accepted(const char *a) {
    char desc[256];
    int status = run_child(a, NULL, desc, sizeof desc);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: status %d: %s", desc, status, out);
    CHECK(strncmp(out, "MAIN RAN\n", 9) == 0 || strstr(out, "\nMAIN RAN\n"), "%s: %s", desc, out);
    CHECK(strstr(out, "MAIN DONE\n"), "%s: %s", desc, out);
    CHECK(!strstr(out, "not valid"), "%s: %s", desc, out);
    CHECK(!strstr(out, "not a greenworld variable"), "%s: %s", desc, out);
}

/* `a` is an unknown name=value: main runs, and with `log` unset there is exactly one line
 * "greenworld: warn: NAME is not a greenworld variable (ignored); did you mean CLOSEST?". */
static void expect_warned(const char *a, const char *log, const char *closest) {
    char desc[256], want[256];
    int status = run_child(a, log, desc, sizeof desc);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: status %d: %s", desc, status, out);
    CHECK(strstr(out, "MAIN DONE\n"), "%s: main did not finish: %s", desc, out);
    int name_len = (int)(strchr(a, '=') - a);
    snprintf(want, sizeof want, "greenworld: warn: %.*s is not a greenworld variable (ignored); did you mean %s? (pid ",
             name_len, a, closest);
    char *at = strstr(out, "greenworld:");
    if (log) {
        CHECK(!at, "%s: warned anyway: %s", desc, out);
        return;
    }
    CHECK(at && strncmp(at, want, strlen(want)) == 0, "%s: want %sgot %s", desc, want, out);
    CHECK(!strstr(at + 1, "greenworld:"), "%s: more than one line: %s", desc, out);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--child") == 0) return child();
    if (!gw_preloaded()) return GW_SKIP;

    /* The cases of the issue. */
    expect_rejected("GREENWORLD_TIME=maybe", NULL, "GREENWORLD_TIME", "maybe");
    expect_rejected("GREENWORLD_THREAD=2", NULL, "GREENWORLD_THREAD", "2");
    expect_rejected("GREENWORLD_PSYCOPG=maybe", NULL, "GREENWORLD_PSYCOPG", "maybe");
    expect_rejected("GREENWORLD_STACK_SIZE=12Q", NULL, "GREENWORLD_STACK_SIZE", "12Q");
    expect_rejected("GREENWORLD_STACK_SIZE=1K", NULL, "GREENWORLD_STACK_SIZE", "1K");
    expect_rejected("GREENWORLD_LOG=loud", NULL, "GREENWORLD_LOG", "loud");
    expect_rejected("GREENWORLD_STATS=perhaps", NULL, "GREENWORLD_STATS", "perhaps");

    /* Every subsystem variable, and a few more shapes of wrong. */
    expect_rejected("GREENWORLD_OS=nope", NULL, "GREENWORLD_OS", "nope");
    expect_rejected("GREENWORLD_SELECT=-1", NULL, "GREENWORLD_SELECT", "-1");
    expect_rejected("GREENWORLD_SOCKET=truee", NULL, "GREENWORLD_SOCKET", "truee");
    expect_rejected("GREENWORLD_STATUS=sometimes", NULL, "GREENWORLD_STATUS", "sometimes");
    expect_rejected("GREENWORLD_STACK_SIZE=16383", NULL, "GREENWORLD_STACK_SIZE", "16383");
    expect_rejected("GREENWORLD_STACK_SIZE=-5M", NULL, "GREENWORLD_STACK_SIZE", "-5M");
    expect_rejected("GREENWORLD_STACK_SIZE=K", NULL, "GREENWORLD_STACK_SIZE", "K");
    expect_rejected("GREENWORLD_STACK_SIZE=99999999999999999999G", NULL, "GREENWORLD_STACK_SIZE",
                    "99999999999999999999G");
    expect_rejected("GREENWORLD_TPOOL_SIZE=0", NULL, "GREENWORLD_TPOOL_SIZE", "0");
    expect_rejected("GREENWORLD_INHERIT=maybe", NULL, "GREENWORLD_INHERIT", "maybe");
    /* A mode, not a boolean: exactly "off" or "pool", and the line lists both. */
    expect_rejected("GREENWORLD_FILEIO=on", NULL, "GREENWORLD_FILEIO", "on");
    expect_rejected("GREENWORLD_FILEIO=Pool", NULL, "GREENWORLD_FILEIO", "Pool");
    CHECK(strstr(out, "accepted: off, pool\n"), "GREENWORLD_FILEIO: accepted values not listed: %s", out);
    expect_rejected("GREENWORLD_TLS=on", NULL, "GREENWORLD_TLS", "on");
    expect_rejected("GREENWORLD_TLS=Private", NULL, "GREENWORLD_TLS", "Private");
    CHECK(strstr(out, "accepted: private, shared\n"), "GREENWORLD_TLS: accepted values not listed: %s", out);
    /* Shared object names, comma-separated: none empty, none with a space, at most 16, each at
     * most 63 bytes. */
    expect_rejected("GREENWORLD_PATCH_FROM=libcurl.so.4,,libpq.so.5", NULL, "GREENWORLD_PATCH_FROM",
                    "libcurl.so.4,,libpq.so.5");
    CHECK(strstr(out, "accepted: a comma-separated list of at most 16 shared object names"),
          "GREENWORLD_PATCH_FROM: accepted values not listed: %s", out);
    expect_rejected("GREENWORLD_PATCH_FROM=libcurl.so.4 libpq.so.5", NULL, "GREENWORLD_PATCH_FROM",
                    "libcurl.so.4 libpq.so.5");
    expect_rejected("GREENWORLD_PATCH_FROM=,", NULL, "GREENWORLD_PATCH_FROM", ",");
    expect_rejected("GREENWORLD_PATCH_FROM=a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", NULL, "GREENWORLD_PATCH_FROM",
                    "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q");
    expect_rejected("GREENWORLD_PATCH_FROM=lib0123456789012345678901234567890123456789012345678901234567.so",
                    NULL, "GREENWORLD_PATCH_FROM", "lib0123456789012345678901234567890123456789012345678901234567.so");
    /* The monitor's: a boolean, a number of milliseconds or off, a boolean. */
    expect_rejected("GREENWORLD_PREEMPT=sometimes", NULL, "GREENWORLD_PREEMPT", "sometimes");
    expect_rejected("GREENWORLD_BLOCK_WARN=0", NULL, "GREENWORLD_BLOCK_WARN", "0");
    expect_rejected("GREENWORLD_BLOCK_WARN=10ms", NULL, "GREENWORLD_BLOCK_WARN", "10ms");
    expect_rejected("GREENWORLD_BLOCK_WARN=on", NULL, "GREENWORLD_BLOCK_WARN", "on");
    CHECK(strstr(out, "accepted: off, or a whole number of milliseconds"),
          "GREENWORLD_BLOCK_WARN: accepted values not listed: %s", out);
    expect_rejected("GREENWORLD_ESCAPES=2", NULL, "GREENWORLD_ESCAPES", "2");
    /* The copied-stack mode (issue 15): a boolean, not a size. */
    expect_rejected("GREENWORLD_STACK_COPY=64K", NULL, "GREENWORLD_STACK_COPY", "64K");
    expect_rejected("GREENWORLD_STACK_COPY=copy", NULL, "GREENWORLD_STACK_COPY", "copy");
    CHECK(strstr(out, "accepted: 1/0, true/false, yes/no, on/off\n"),
          "GREENWORLD_STACK_COPY: accepted values not listed: %s", out);
    /* The number of hubs: auto or 1..256. */
    expect_rejected("GREENWORLD_HUBS=zero", NULL, "GREENWORLD_HUBS", "zero");
    expect_rejected("GREENWORLD_HUBS=0", NULL, "GREENWORLD_HUBS", "0");
    expect_rejected("GREENWORLD_HUBS=-1", NULL, "GREENWORLD_HUBS", "-1");
    expect_rejected("GREENWORLD_HUBS=1x", NULL, "GREENWORLD_HUBS", "1x");
    CHECK(strstr(out, "accepted: auto, or a whole number of hubs"),
          "GREENWORLD_HUBS: accepted values not listed: %s", out);
    /* The time slice: off, or a duration from 100us to 10s (a plain number is milliseconds). */
    expect_rejected("GREENWORLD_SLICE=fast", NULL, "GREENWORLD_SLICE", "fast");
    expect_rejected("GREENWORLD_SLICE=0", NULL, "GREENWORLD_SLICE", "0");
    expect_rejected("GREENWORLD_SLICE=50us", NULL, "GREENWORLD_SLICE", "50us");
    expect_rejected("GREENWORLD_SLICE=20s", NULL, "GREENWORLD_SLICE", "20s");
    expect_rejected("GREENWORLD_SLICE=1.5ms", NULL, "GREENWORLD_SLICE", "1.5ms");
    CHECK(strstr(out, "accepted: off, or a duration from 100us to 10s"),
          "GREENWORLD_SLICE: accepted values not listed: %s", out);
    /* A malformed value is an error even where the truth table would not look at it. */
    expect_rejected("GREENWORLD_SOCKET=1", "GREENWORLD_TIME=maybe", "GREENWORLD_TIME", "maybe");
    /* Two malformed values: still exactly one line (checked inside), naming one of them. */
    {
        char desc[256];
        int status = run_child("GREENWORLD_TIME=maybe", "GREENWORLD_LOG=loud", desc, sizeof desc);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2, "%s: status %d: %s", desc, status, out);
        char *nl = strchr(out, '\n');
        CHECK(nl && nl[1] == 0 && strncmp(out, "greenworld: ", 12) == 0, "%s: not one line: %s", desc, out);
        CHECK(strstr(out, "'maybe'") || strstr(out, "'loud'"), "%s: %s", desc, out);
        CHECK(!strstr(out, "MAIN RAN"), "%s: main ran: %s", desc, out);
    }

    /* The dump and the deadlock message (issue 14). */
    expect_rejected("GREENWORLD_DUMP_AT_EXIT=2", NULL, "GREENWORLD_DUMP_AT_EXIT", "2");
    expect_rejected("GREENWORLD_DEADLOCK=sometimes", NULL, "GREENWORLD_DEADLOCK", "sometimes");
    expect_rejected("GREENWORLD_DUMP_SIGNAL=USR3", NULL, "GREENWORLD_DUMP_SIGNAL", "USR3");
    expect_rejected("GREENWORLD_DUMP_SIGNAL=SIGKILL", NULL, "GREENWORLD_DUMP_SIGNAL", "SIGKILL");
    expect_rejected("GREENWORLD_DUMP_SIGNAL=65", NULL, "GREENWORLD_DUMP_SIGNAL", "65");
    expect_rejected("GREENWORLD_DUMP_OF=0", NULL, "GREENWORLD_DUMP_OF", "0");
    expect_rejected("GREENWORLD_DUMP_OF=me", NULL, "GREENWORLD_DUMP_OF", "me");
    expect_accepted("GREENWORLD_DUMP_SIGNAL=SIGUSR2");
    expect_accepted("GREENWORLD_DUMP_SIGNAL=usr2");
    expect_accepted("GREENWORLD_DUMP_SIGNAL=12");
    expect_accepted("GREENWORLD_DEADLOCK=off");
    expect_accepted("GREENWORLD_DUMP_AT_EXIT=0");

    /* Good values. */
    expect_accepted("GREENWORLD_STACK_SIZE=256K");
    expect_accepted("GREENWORLD_STACK_SIZE=1m");
    expect_accepted("GREENWORLD_STACK_SIZE=16K");
    expect_accepted("GREENWORLD_STACK_SIZE=16384");
    expect_accepted("GREENWORLD_STACK_SIZE=2M");
    expect_accepted("GREENWORLD_TPOOL_SIZE=2");
    expect_accepted("GREENWORLD_FILEIO=off");
    expect_accepted("GREENWORLD_FILEIO=pool");
    expect_accepted("GREENWORLD_FILEIO=");
    expect_accepted("GREENWORLD_STACK_COPY=1");
    expect_accepted("GREENWORLD_STACK_COPY=off");
    expect_accepted("GREENWORLD_TLS=private");
    expect_accepted("GREENWORLD_TLS=shared");
    expect_accepted("GREENWORLD_TLS=");
    expect_accepted("GREENWORLD_PATCH_FROM=libcurl.so.4,libpq.so.5");
    expect_accepted("GREENWORLD_PATCH_FROM=/usr/lib/x86_64-linux-gnu/libcurl.so.4");
    expect_accepted("GREENWORLD_PATCH_FROM=");
    expect_accepted("GREENWORLD_LOG=Debug");
    expect_accepted("GREENWORLD_LOG=off");
    expect_accepted("GREENWORLD_STATS=0");
    expect_accepted("GREENWORLD_INHERIT=0");
    expect_accepted("GREENWORLD_INHERIT=Yes");
    expect_accepted("GREENWORLD_TIME=");
    expect_accepted("GREENWORLD_PSYCOPG=Off");
    expect_accepted("GREENWORLD_PSYCOPG=1");
    expect_accepted("GREENWORLD_PREEMPT=off");
    expect_accepted("GREENWORLD_PREEMPT=on");
    expect_accepted("GREENWORLD_BLOCK_WARN=50");
    expect_accepted("GREENWORLD_BLOCK_WARN=off");
    expect_accepted("GREENWORLD_ESCAPES=1");
    expect_accepted("GREENWORLD_HUBS=2");
    expect_accepted("GREENWORLD_HUBS=auto");
    expect_accepted("GREENWORLD_SLICE=off");
    expect_accepted("GREENWORLD_SLICE=20ms");
    expect_accepted("GREENWORLD_SLICE=500us");
    expect_accepted("GREENWORLD_SLICE=10");

    /* Unknown names: a warning naming the closest known one, and the program runs. */
    expect_warned("GREENWORLD_THREADS=0", NULL, "GREENWORLD_THREAD");
    expect_warned("GREENWORLD_STACKSIZE=64K", NULL, "GREENWORLD_STACK_SIZE");
    expect_warned("GREENWORLD_FILE_IO=pool", NULL, "GREENWORLD_FILEIO");
    expect_warned("GREENWORLD_PSYCOPG2=1", NULL, "GREENWORLD_PSYCOPG");
    expect_warned("GREENWORLD_THREADS=0", "GREENWORLD_LOG=error", NULL);
    expect_accepted("GREENWORLD_LIB=/nonexistent/libgreenworld.so");
    expect_accepted("GREENWORLD_PY_KEEP=1");
    return 0;
}
