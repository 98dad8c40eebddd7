#include "gwtest.h"
/* GREENWORLD_STATS=1: exactly one summary line at exit,
 *   greenworld: stats: created=N peak_alive=N switches=N parks=sleep:N,join:N,...
 * GREENWORLD_LOG=debug: "greenworld: debug: ..." lines; a lower level hides them; LOG=off and no
 * STATS: the library prints nothing at all. Green only: the test re-runs itself
 * (argv[1] == "--child"); the child makes 10 threads that each sleep 20 ms. */
#include <pthread.h>

static void *sleeper(void *arg) {
    usleep(20 * 1000);
    return arg;
}

static int child(void) {
    pthread_t t[10];
    for (int i = 0; i < 10; i++) CHECK_EQ(pthread_create(&t[i], NULL, sleeper, NULL), 0);
    for (int i = 0; i < 10; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
    printf("child done\n");
    return 0;
}

#define CLEAN_ENV                                                                                 \
    "-GREENWORLD_OS", "-GREENWORLD_SELECT", "-GREENWORLD_SOCKET", "-GREENWORLD_THREAD", "-GREENWORLD_TIME", \
        "-GREENWORLD_STATUS", "-GREENWORLD_STATS", "-GREENWORLD_LOG"

static char out[65536];

static void run(const char *a, const char *b) {
    const char *env[16] = {CLEAN_ENV, a, b, NULL};
    int status = gw_run_self(env, out, sizeof out, "--child", NULL);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s %s: status %d: %s", a ? a : "", b ? b : "", status,
          out);
    CHECK(strstr(out, "child done\n"), "%s", out);
}

/* Number of lines starting with `prefix`; *first gets the first such line. */
static int lines_starting(const char *prefix, const char **first) {
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *line = out; *line;) {
        if (strncmp(line, prefix, len) == 0) {
            if (n == 0 && first) *first = line;
            n++;
        }
        const char *nl = strchr(line, '\n');
        if (!nl) break;
        line = nl + 1;
    }
    return n;
}

/* Every line the child printed is either its own "child done" or starts "greenworld: ". */
static void check_prefixes(const char *what) {
    for (const char *line = out; *line;) {
        CHECK(strncmp(line, "child done\n", 11) == 0 || strncmp(line, "greenworld: ", 12) == 0,
              "%s: a line of neither the child nor the library: %.80s", what, line);
        const char *nl = strchr(line, '\n');
        CHECK(nl, "%s: output does not end with a newline: %s", what, line);
        line = nl + 1;
    }
}

static long number_after(const char *line, const char *key) {
    const char *end = strchr(line, '\n');
    const char *p = strstr(line, key);
    CHECK(p && (!end || p < end), "no %s in: %.200s", key, line);
    char *stop;
    long v = strtol(p + strlen(key), &stop, 10);
    CHECK(stop != p + strlen(key), "%s is not followed by a number: %.200s", key, line);
    return v;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--child") == 0) return child();
    if (!gw_preloaded()) return GW_SKIP;

    /* Stats. */
    run("GREENWORLD_STATS=1", NULL);
    const char *line = NULL;
    CHECK(lines_starting("greenworld: stats:", &line) == 1, "want exactly one stats line: %s", out);
    long created = number_after(line, "created="), peak = number_after(line, "peak_alive=");
    long switches = number_after(line, "switches="), sleeps = number_after(line, "parks=sleep:");
    CHECK(created >= 10, "created=%ld: %s", created, out);
    CHECK(peak >= 10 && peak <= created + 1, "peak_alive=%ld (created=%ld): %s", peak, created, out);
    CHECK(switches >= 10, "switches=%ld: %s", switches, out);
    CHECK(sleeps >= 10, "parks=sleep:%ld: %s", sleeps, out);
    check_prefixes("GREENWORLD_STATS=1");
    run("GREENWORLD_STATS=yes", "GREENWORLD_LOG=off");
    CHECK(lines_starting("greenworld: stats:", NULL) == 1, "LOG=off does not silence STATS=yes: %s", out);

    /* Log levels. */
    run("GREENWORLD_LOG=debug", NULL);
    CHECK(lines_starting("greenworld: debug: ", NULL) >= 1, "no debug line: %s", out);
    CHECK(lines_starting("greenworld: stats:", NULL) == 0, "stats without GREENWORLD_STATS: %s", out);
    check_prefixes("GREENWORLD_LOG=debug");
    run("GREENWORLD_LOG=info", NULL);
    CHECK(lines_starting("greenworld: debug:", NULL) == 0, "debug lines at level info: %s", out);
    check_prefixes("GREENWORLD_LOG=info");

    /* Silence. */
    run("GREENWORLD_LOG=off", NULL);
    CHECK(strcmp(out, "child done\n") == 0, "LOG=off, no STATS: the library printed: %s", out);
    run("GREENWORLD_LOG=OFF", "GREENWORLD_STATS=0");
    CHECK(strcmp(out, "child done\n") == 0, "LOG=OFF, STATS=0: the library printed: %s", out);
    return 0;
}
