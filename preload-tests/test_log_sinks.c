/* Where the library's own lines go, and what they say.
 *  - Never into a descriptor the program owns: a child closes stderr, opens a data file (which
 *    gets number 2), writes to it, then makes a green thread, with GREENWORLD_LOG=debug and
 *    GREENWORLD_STATS=1. The data file holds only its data; the debug and stats lines reach the
 *    stderr the child started with (a pipe to this test). Without GREENWORLD_STATS, no copy of
 *    stderr was taken before the swap, and the debug line is dropped: still not in the file.
 *    Natively too: the file holds the data.
 *  - GREENWORLD_STATS=PATH and GREENWORLD_LOG=LEVEL:PATH: the lines go to that file (appended),
 *    none to stderr.
 *  - Every stats and log line names the process (pid=N program=NAME; "(pid N, NAME)"), and a
 *    process that made no green thread prints no stats unless GREENWORLD_STATS=all.
 *  - Malformed values stop the program before main: exit 2, one line naming the variable.
 * The test re-runs itself (argv[1] is the child's mode). */
#include "gwtest.h"
#include <pthread.h>

static void *sleeper(void *arg) {
    usleep(1000);
    return arg;
}

static void one_thread(void) {
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, sleeper, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
}

static int child(const char *mode, const char *path) {
    printf("pid=%d\n", (int)getpid());
    fflush(stdout);
    if (strcmp(mode, "swap2") == 0) {
        CHECK_EQ(close(2), 0);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        CHECK_EQ(fd, 2);
        CHECK_EQ(write(fd, "data\n", 5), 5);
        one_thread();
    } else if (strcmp(mode, "threads") == 0) {
        one_thread();
    } else if (strcmp(mode, "plain") != 0) {
        return 2;
    }
    printf("child ok\n");
    return 0;
}

static char out[1 << 16];
static char path[] = "/tmp/gw-log-sinks-XXXXXX";
static char pidstr[32];

/* Runs the child as `mode` with the environment `a`, `b`; keeps its "pid=N" in pidstr. */
static int run(const char *mode, const char *a, const char *b) {
    const char *env[] = {"-GREENWORLD_STATS", "-GREENWORLD_LOG", a, b, NULL};
    if (!a) env[2] = NULL;
    int status = gw_run_self(env, out, sizeof out, mode, path, NULL);
    const char *p = strstr(out, "pid=");
    if (p && p == out) {
        size_t n = strcspn(p, "\n");
        snprintf(pidstr, sizeof pidstr, "%.*s", (int)n, p);
    } else {
        pidstr[0] = 0;
    }
    return status;
}

static void run_ok(const char *mode, const char *a, const char *b) {
    int status = run(mode, a, b);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s %s %s: status 0x%x: %s", mode, a ? a : "",
          b ? b : "", status, out);
    CHECK(strstr(out, "child ok\n"), "%s: %s", mode, out);
    CHECK(pidstr[0], "%s: no pid line first: %s", mode, out);
}

static int count(const char *text, const char *what) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what)) n++;
    return n;
}

static char file[1 << 16];

static const char *read_file(void) {
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0, "%s: %s", path, strerror(errno));
    ssize_t n = read(fd, file, sizeof file - 1);
    CHECK(n >= 0);
    file[n] = 0;
    close(fd);
    return file;
}

static void empty_file(void) {
    int fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    close(fd);
}

/* The stats line of process `pidstr` ("pid=N"), naming the program, is in `text`. */
static void check_stats_line(const char *text, const char *where) {
    char want[96];
    snprintf(want, sizeof want, "greenworld: stats: %s program=test_log_sinks ", pidstr);
    CHECK(count(text, want) == 1, "want one \"%s\" line in %s: %s", want, where, text);
}

static void expect_rejected(const char *assignment, const char *name) {
    int status = run("plain", assignment, NULL);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2, "%s: status 0x%x (want exit 2): %s", assignment, status,
          out);
    char *nl = strchr(out, '\n');
    CHECK(nl && nl[1] == 0 && strncmp(out, "greenworld: ", 12) == 0, "%s: not one line: %s", assignment, out);
    CHECK(strstr(out, name) && strstr(out, "accepted"), "%s: %s", assignment, out);
}

int main(int argc, char **argv) {
    if (argc > 2) return child(argv[1], argv[2]);
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
    close(fd);
    int green = gw_preloaded();

    /* Stderr closed, a data file on number 2. */
    run_ok("swap2", "GREENWORLD_STATS=1", "GREENWORLD_LOG=debug");
    CHECK(strcmp(read_file(), "data\n") == 0, "the data file holds more than its data: %s", file);
    if (green) {
        check_stats_line(out, "stderr");
        CHECK(count(out, "greenworld: debug: ") >= 1, "no debug line reached stderr: %s", out);
    }
    /* The same without GREENWORLD_STATS: a line with nowhere right to go is dropped. */
    run_ok("swap2", "GREENWORLD_LOG=debug", NULL);
    CHECK(strcmp(read_file(), "data\n") == 0, "the data file holds more than its data: %s", file);
    if (!green) {
        unlink(path);
        return 0;
    }

    /* Log lines name the process. */
    run_ok("threads", "GREENWORLD_LOG=debug", NULL);
    char named[96];
    snprintf(named, sizeof named, " (pid %s, test_log_sinks)\n", pidstr + 4);
    CHECK(count(out, "greenworld: debug: ") >= 1 && count(out, "greenworld: debug: ") == count(out, named),
          "debug lines do not all end with \"%s\": %s", named, out);

    /* Stats only from a process that made a green thread, unless asked for all. */
    run_ok("plain", "GREENWORLD_STATS=1", NULL);
    CHECK(!strstr(out, "greenworld"), "a process with no green thread printed: %s", out);
    run_ok("plain", "GREENWORLD_STATS=all", NULL);
    check_stats_line(out, "stderr");

    /* To files. */
    char assignment[128];
    empty_file();
    snprintf(assignment, sizeof assignment, "GREENWORLD_STATS=%s", path);
    run_ok("threads", assignment, NULL);
    CHECK(!strstr(out, "greenworld"), "%s: stderr got: %s", assignment, out);
    check_stats_line(read_file(), path);
    run_ok("plain", assignment, NULL);
    CHECK(count(read_file(), "greenworld: stats: ") == 1, "%s: a process with no green thread added: %s",
          assignment, file);
    snprintf(assignment, sizeof assignment, "GREENWORLD_STATS=all:%s", path);
    run_ok("plain", assignment, NULL);
    CHECK(count(read_file(), "greenworld: stats: ") == 2, "%s: not appended: %s", assignment, file);
    check_stats_line(file, path);

    empty_file();
    snprintf(assignment, sizeof assignment, "GREENWORLD_LOG=debug:%s", path);
    run_ok("threads", assignment, NULL);
    snprintf(named, sizeof named, " (pid %s, test_log_sinks)\n", pidstr + 4);
    CHECK(!strstr(out, "greenworld"), "%s: stderr got: %s", assignment, out);
    CHECK(count(read_file(), "greenworld: debug: ") >= 1, "%s: the file got: %s", assignment, file);
    CHECK(count(file, "greenworld: debug: ") == count(file, named), "%s: lines without \"%s\": %s", assignment,
          named, file);

    /* Malformed. */
    expect_rejected("GREENWORLD_STATS=stats.txt", "GREENWORLD_STATS");
    expect_rejected("GREENWORLD_STATS=all:", "GREENWORLD_STATS");
    expect_rejected("GREENWORLD_STATS=every", "GREENWORLD_STATS");
    expect_rejected("GREENWORLD_LOG=debug:", "GREENWORLD_LOG");
    expect_rejected("GREENWORLD_LOG=loud:/tmp/x", "GREENWORLD_LOG");
    unlink(path);
    return 0;
}
