#include "gwtest.h"
/* scripts/greenrun ($GREENWORLD_SRC/scripts/greenrun): --status (the library's own answer,
 * after --only/--no and the environment; its warning about an unknown variable passes through),
 * usage errors (exit 2, one line and a hint to --help on stderr), --help and --version (stdout,
 * exit 0; the version the library reports, in an installed copy too), the options' variables,
 * --no-inherit (the command green, what it runs not), a command that cannot run (a shell's
 * message and status: 127, 126), a missing library (exit 127), the installed layout, greenrun
 * run through a symlink, and the command run by exec with the library first in LD_PRELOAD (exit
 * status and death by signal pass through). Green only (it needs the library). */
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>

static char greenrun_path[PATH_MAX];
static char lib_path[PATH_MAX]; /* the library greenrun should find (absolute, resolved) */
static char out[16384];

enum { BOTH, STDOUT_ONLY, STDERR_ONLY };

/* Runs `script argv...` (script = greenrun_path unless given) with env changes, capturing
 * stdout and/or stderr. Returns the wait status. */
static int run_script(const char *script, int which, const char *const env[], char *const argv[]) {
    static const char *const redirect[] = {"exec \"$0\" \"$@\"", "exec \"$0\" \"$@\" 2>/dev/null",
                                           "exec \"$0\" \"$@\" 2>&1 >/dev/null"};
    char *args[32] = {"/bin/sh", "-c", (char *)redirect[which], (char *)(script ? script : greenrun_path)};
    int n = 4;
    for (int i = 0; argv[i]; i++) {
        CHECK(n < 31, "too many arguments");
        args[n++] = argv[i];
    }
    args[n] = NULL;
    return gw_run(env, args, out, sizeof out);
}

static int greenrun(int which, const char *const env[], char *const argv[]) {
    return run_script(NULL, which, env, argv);
}

#define CLEAN                                                                                     \
    "-GREENWORLD_OS", "-GREENWORLD_SELECT", "-GREENWORLD_SOCKET", "-GREENWORLD_THREAD", "-GREENWORLD_TIME", \
        "-GREENWORLD_PSYCOPG", "-GREENWORLD_STATUS", "-GREENWORLD_STATS", "-GREENWORLD_LOG", "-GREENWORLD_STACK_SIZE", "-GREENWORLD_STACK_COPY",                 \
        "-GREENWORLD_INHERIT", "-GREENWORLD_INHERIT_PID", "-GREENWORLD_PATCH_FROM", "-GREENWORLD_HUBS", "-LD_PRELOAD"

static const char *const clean[] = {CLEAN, NULL};

static void expect_status(const char *const env[], char *const argv[], const char *want, const char *what) {
    int st = greenrun(BOTH, env, argv);
    CHECK(gw_exit_code(st) == 0, "%s: status %d: %s", what, st, out);
    CHECK(strcmp(out, want) == 0, "%s:\nwant:\n%sgot:\n%s", what, want, out);
}

static void expect_usage_error(char *const argv[], const char *mentions, const char *what) {
    int st = greenrun(STDOUT_ONLY, clean, argv);
    CHECK(gw_exit_code(st) == 2, "%s: status %d (want exit 2): %s", what, st, out);
    CHECK(out[0] == 0, "%s: a usage error printed on stdout (or ran the command): %s", what, out);
    st = greenrun(STDERR_ONLY, clean, argv);
    CHECK(gw_exit_code(st) == 2, "%s: status %d: %s", what, st, out);
    static const char hint[] = "Try 'greenrun --help' for more information.\n";
    char *nl = strchr(out, '\n');
    CHECK(strncmp(out, "greenrun: ", 10) == 0 && nl && strcmp(nl + 1, hint) == 0,
          "%s: want one 'greenrun: ...' line, then the hint to --help: %s", what, out);
    if (mentions) CHECK(strstr(out, mentions), "%s: the message does not mention '%s': %s", what, mentions, out);
}

/* A command greenrun cannot run: nothing on stdout, exactly `message` on stderr, exit `code`. */
static void expect_cannot_run(char *const argv[], int code, const char *message) {
    int st = greenrun(STDOUT_ONLY, clean, argv);
    CHECK(gw_exit_code(st) == code && out[0] == 0, "%s: status %d (want exit %d): %s", argv[0], st, code, out);
    st = greenrun(STDERR_ONLY, clean, argv);
    CHECK(gw_exit_code(st) == code && strcmp(out, message) == 0, "%s: status %d, want %sgot %s", argv[0], st, message,
          out);
}

/* The version in the [package] section of $GREENWORLD_SRC/Cargo.toml. */
static void cargo_version(char *v, size_t len) {
    char path[PATH_MAX], line[512];
    snprintf(path, sizeof path, "%s/Cargo.toml", getenv("GREENWORLD_SRC"));
    FILE *f = fopen(path, "r");
    CHECK(f, "cannot open %s", path);
    int in_package = 0;
    v[0] = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '[') in_package = strncmp(line, "[package]", 9) == 0;
        char *q;
        if (in_package && strncmp(line, "version", 7) == 0 && (q = strchr(line, '"'))) {
            char *e = strchr(q + 1, '"');
            CHECK(e, "%s: %s", path, line);
            *e = 0;
            snprintf(v, len, "%s", q + 1);
            break;
        }
    }
    fclose(f);
    CHECK(v[0], "no version in %s", path);
}

static int probe(void) {
    printf("probe preloaded=%d thread=%d time=%d\n", gw_preloaded(), gw_patched("thread"), gw_patched("time"));
    return 0;
}

/* "LABEL preloaded=P thread=T time=T LD_PRELOAD=... chain=set|unset" (GREENWORLD_INHERIT_PID). */
static void probe_as(const char *label) {
    const char *preload = getenv("LD_PRELOAD");
    printf("%s preloaded=%d thread=%d time=%d LD_PRELOAD=%s chain=%s\n", label, gw_preloaded(),
           gw_patched("thread"), gw_patched("time"), preload ? preload : "unset",
           getenv("GREENWORLD_INHERIT_PID") ? "set" : "unset");
    fflush(stdout);
}

/* The program a wrapper leads to: reports, then runs a child (through /bin/sh) that reports. */
static int program(void) {
    probe_as("program");
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "'%s' --probe-as child", gw_self());
    return system(cmd) == 0 ? 0 : 1;
}

/* Writes an executable script at dir/name. */
static void write_script(const char *dir, const char *name, const char *text) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0, "%s: %s", path, strerror(errno));
    CHECK_EQ(chmod(path, 0755), 0);
}

/* --no-inherit through wrappers: a pyenv-like shim (#!/usr/bin/env sh, exec'ing a second
 * script that runs a helper before it execs the program). The program is green; the helper
 * and the program's child are plain; no one keeps the library or the chain variable. */
static void no_inherit_wrappers(void) {
    char dir[] = "/tmp/gw-greenrun-shim-XXXXXX", shim[PATH_MAX], text[2 * PATH_MAX];
    CHECK(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
    snprintf(text, sizeof text, "#!/usr/bin/env sh\nexec '%s/inner' \"$@\"\n", dir);
    write_script(dir, "shim", text);
    snprintf(text, sizeof text,
             "#!/bin/sh\nhelper=$('%s' --probe-as helper)\necho \"$helper\"\nexec '%s' \"$@\"\n", gw_self(),
             gw_self());
    write_script(dir, "inner", text);
    snprintf(shim, sizeof shim, "%s/shim", dir);
    char *args[] = {"--no-inherit", shim, "--program", NULL};
    int st = greenrun(BOTH, clean, args);
    const char *want = "helper preloaded=1 thread=0 time=0 LD_PRELOAD=unset chain=unset\n"
                       "program preloaded=1 thread=1 time=1 LD_PRELOAD=unset chain=unset\n"
                       "child preloaded=0 thread=-2 time=-2 LD_PRELOAD=unset chain=unset\n";
    CHECK(gw_exit_code(st) == 0 && strcmp(out, want) == 0, "--no-inherit SHIM: %d: want\n%sgot\n%s", st, want, out);
    /* Another preload stays, for all of them. */
    const char *dl_preload[] = {CLEAN, "LD_PRELOAD=libdl.so.2", NULL};
    st = greenrun(BOTH, dl_preload, args);
    want = "helper preloaded=1 thread=0 time=0 LD_PRELOAD=libdl.so.2 chain=unset\n"
           "program preloaded=1 thread=1 time=1 LD_PRELOAD=libdl.so.2 chain=unset\n"
           "child preloaded=0 thread=-2 time=-2 LD_PRELOAD=libdl.so.2 chain=unset\n";
    CHECK(gw_exit_code(st) == 0 && strcmp(out, want) == 0, "--no-inherit SHIM, libdl: %d: want\n%sgot\n%s", st, want,
          out);
    /* A chain variable left in the environment by someone else does not count. */
    const char *stale[] = {CLEAN, "GREENWORLD_INHERIT_PID=1", NULL};
    char *direct[] = {"--no-inherit", (char *)gw_self(), "--program", NULL};
    st = greenrun(BOTH, stale, direct);
    want = "program preloaded=1 thread=1 time=1 LD_PRELOAD=unset chain=unset\n"
           "child preloaded=0 thread=-2 time=-2 LD_PRELOAD=unset chain=unset\n";
    CHECK(gw_exit_code(st) == 0 && strcmp(out, want) == 0, "--no-inherit PROGRAM: %d: want\n%sgot\n%s", st, want, out);
    /* A shell as the command is a wrapper too: what it execs is the program, what it forks
     * (the helper before the ';') is plain. */
    char cmd[2 * PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "'%s' --probe-as helper; exec '%s' --program", gw_self(), gw_self());
    char *shell[] = {"--no-inherit", "/bin/sh", "-c", cmd, NULL};
    st = greenrun(BOTH, clean, shell);
    want = "helper preloaded=1 thread=0 time=0 LD_PRELOAD=unset chain=unset\n"
           "program preloaded=1 thread=1 time=1 LD_PRELOAD=unset chain=unset\n"
           "child preloaded=0 thread=-2 time=-2 LD_PRELOAD=unset chain=unset\n";
    CHECK(gw_exit_code(st) == 0 && strcmp(out, want) == 0, "--no-inherit sh -c: %d: want\n%sgot\n%s", st, want, out);
    snprintf(text, sizeof text, "rm -rf '%s'", dir);
    CHECK_EQ(system(text), 0);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--probe") == 0) return probe();
    if (argc > 2 && strcmp(argv[1], "--probe-as") == 0) return probe_as(argv[2]), 0;
    if (argc > 1 && strcmp(argv[1], "--program") == 0) return program();
    const char *src = getenv("GREENWORLD_SRC");
    if (!gw_preloaded() || !src) return GW_SKIP;
    snprintf(greenrun_path, sizeof greenrun_path, "%s/scripts/greenrun", src);
    CHECK(access(greenrun_path, X_OK) == 0, "%s is not executable", greenrun_path);
    const char *lib_env = getenv("GREENWORLD_LIB");
    char want_lib[PATH_MAX];
    if (lib_env && *lib_env) snprintf(want_lib, sizeof want_lib, "%s", lib_env);
    else snprintf(want_lib, sizeof want_lib, "%s/target/release/libgreenworld.so", src);
    CHECK(realpath(want_lib, lib_path), "%s: %s", want_lib, strerror(errno));

    /* --status: six lines (the five subsystems and psycopg), from the library, after --only/--no and the environment. */
    char *status[] = {"--status", NULL};
    expect_status(clean, status, "os: patched\nselect: patched\nsocket: patched\nthread: patched\ntime: patched\npsycopg: patched\n",
                  "--status");
    char *no_thread[] = {"--no", "thread", "--status", NULL};
    expect_status(clean, no_thread,
                  "os: patched\nselect: patched\nsocket: patched\nthread: not patched\ntime: patched\npsycopg: not patched\n",
                  "--no thread --status");
    char *status_no[] = {"--status", "--no=thread,os", NULL};
    expect_status(clean, status_no,
                  "os: not patched\nselect: patched\nsocket: patched\nthread: not patched\ntime: patched\npsycopg: not patched\n",
                  "--status --no=thread,os");
    char *only[] = {"--only", "socket,time", "--status", NULL};
    expect_status(clean, only,
                  "os: not patched\nselect: not patched\nsocket: patched\nthread: not patched\ntime: patched\npsycopg: not patched\n",
                  "--only socket,time --status");
    /* --only overrides what the environment says about the other subsystems. */
    const char *env_thread_on[] = {CLEAN, "GREENWORLD_THREAD=1", NULL};
    expect_status(env_thread_on, only,
                  "os: not patched\nselect: not patched\nsocket: patched\nthread: not patched\ntime: patched\npsycopg: not patched\n",
                  "GREENWORLD_THREAD=1 --only socket,time --status");
    const char *env_no_time[] = {CLEAN, "GREENWORLD_TIME=0", NULL};
    expect_status(env_no_time, status,
                  "os: patched\nselect: patched\nsocket: patched\nthread: patched\ntime: not patched\npsycopg: not patched\n",
                  "GREENWORLD_TIME=0 --status");
    /* psycopg (eventlet's last kwarg): libpq's calls, green for every subsystem; alone, it
     * scopes every subsystem to libpq and the status says so. */
    char *only_psycopg[] = {"--only", "psycopg", "--status", NULL};
    expect_status(clean, only_psycopg,
                  "os: scoped (only the calls from the objects below)\n"
                  "select: scoped (only the calls from the objects below)\n"
                  "socket: scoped (only the calls from the objects below)\n"
                  "thread: scoped (only the calls from the objects below)\n"
                  "time: scoped (only the calls from the objects below)\n"
                  "psycopg: patched\nfrom: libpq.so.5\n",
                  "--only psycopg --status");
    const char *env_psycopg_socket[] = {CLEAN, "GREENWORLD_PSYCOPG=yes", "GREENWORLD_SOCKET=1", NULL};
    expect_status(env_psycopg_socket, status,
                  "os: scoped (only the calls from the objects below)\n"
                  "select: scoped (only the calls from the objects below)\n"
                  "socket: patched\n"
                  "thread: scoped (only the calls from the objects below)\n"
                  "time: scoped (only the calls from the objects below)\n"
                  "psycopg: patched\nfrom: libpq.so.5\n",
                  "GREENWORLD_PSYCOPG=yes GREENWORLD_SOCKET=1 --status");
    /* psycopg=0 is "all but psycopg": every subsystem for every caller, libpq's calls too. */
    char *no_psycopg[] = {"--no", "psycopg", "--status", NULL};
    expect_status(clean, no_psycopg,
                  "os: patched\nselect: patched\nsocket: patched\nthread: patched\ntime: patched\npsycopg: patched\n",
                  "--no psycopg --status");
    /* --from: the subsystems are scoped, and the status names the objects. */
    char *from_status[] = {"--from", "libcurl.so.4,libscoped.so", "--only", "socket", "--status", NULL};
    expect_status(clean, from_status,
                  "os: not patched\nselect: not patched\nsocket: scoped (only the calls from the objects below)\n"
                  "thread: not patched\ntime: not patched\npsycopg: not patched\nfrom: libcurl.so.4, libscoped.so\n",
                  "--from libcurl.so.4,libscoped.so --only socket --status");
    const char *bad_psycopg[] = {CLEAN, "GREENWORLD_PSYCOPG=maybe", NULL};
    int bad_st = greenrun(STDERR_ONLY, bad_psycopg, status);
    CHECK(gw_exit_code(bad_st) == 2 && strstr(out, "GREENWORLD_PSYCOPG='maybe' is not valid"),
          "GREENWORLD_PSYCOPG=maybe --status: %d: %s", bad_st, out);

    /* A malformed variable: the library's one line and its status 2 pass through. */
    const char *bad_env[] = {CLEAN, "GREENWORLD_TIME=maybe", NULL};
    int st = greenrun(STDOUT_ONLY, bad_env, status);
    CHECK(gw_exit_code(st) == 2 && out[0] == 0, "GREENWORLD_TIME=maybe --status: %d: %s", st, out);
    st = greenrun(STDERR_ONLY, bad_env, status);
    CHECK(gw_exit_code(st) == 2, "GREENWORLD_TIME=maybe --status: %d: %s", st, out);
    CHECK(strncmp(out, "greenworld: ", 12) == 0 && strstr(out, "GREENWORLD_TIME") && strstr(out, "'maybe'") &&
              strchr(out, '\n') == out + strlen(out) - 1,
          "want the library's one error line: %s", out);

    /* An unknown variable: the library's warning passes through to stderr; the status is right. */
    const char *env_typo[] = {CLEAN, "GREENWORLD_THREADS=0", NULL};
    st = greenrun(STDOUT_ONLY, env_typo, status);
    CHECK(gw_exit_code(st) == 0 && strcmp(out, "os: patched\nselect: patched\nsocket: patched\nthread: patched\ntime: patched\npsycopg: patched\n") == 0,
          "GREENWORLD_THREADS=0 --status: %d: %s", st, out);
    st = greenrun(STDERR_ONLY, env_typo, status);
    /* Every library line ends with the process that wrote it: "(pid N, program)". */
    const char *typo_warning = "greenworld: warn: GREENWORLD_THREADS is not a greenworld variable "
                               "(ignored); did you mean GREENWORLD_THREAD? (pid ";
    CHECK(gw_exit_code(st) == 0 && strncmp(out, typo_warning, strlen(typo_warning)) == 0 &&
              strchr(out, '\n') == out + strlen(out) - 1,
          "GREENWORLD_THREADS=0 --status, stderr: %d: %s", st, out);

    /* Usage errors: exit 2, one line and the hint on stderr, nothing run. */
    char *bogus[] = {"--bogus", "/bin/echo", "RAN", NULL};
    expect_usage_error(bogus, "--bogus", "--bogus");
    char *nosuch[] = {"--only", "nosuch", "/bin/echo", "RAN", NULL};
    expect_usage_error(nosuch, "nosuch", "--only nosuch");
    char *no_nosuch[] = {"--no", "thread,nosuch", "/bin/echo", "RAN", NULL};
    expect_usage_error(no_nosuch, "nosuch", "--no thread,nosuch");
    char *empty_list[] = {"--only", "", "/bin/echo", "RAN", NULL};
    expect_usage_error(empty_list, NULL, "--only ''");
    char *loud[] = {"--log", "loud", "/bin/echo", "RAN", NULL};
    expect_usage_error(loud, "loud", "--log loud");
    char *empty_from[] = {"--from", "", "/bin/echo", "RAN", NULL};
    expect_usage_error(empty_from, "--from", "--from ''");

    /* --from: patching scoped to those shared objects (GREENWORLD_PATCH_FROM), which the
     * library checks: test_scoped's scoped half passes under it, a malformed list stops the
     * program with the library's one line. */
    {
        char scoped[PATH_MAX + 32];
        snprintf(scoped, sizeof scoped, "%s", gw_self());
        strcpy(strrchr(scoped, '/') + 1, "test_scoped");
        char *from[] = {"--from", "libscoped.so", scoped, "--scoped", NULL};
        int st = greenrun(BOTH, clean, from);
        CHECK(gw_exit_code(st) == 0, "--from libscoped.so test_scoped --scoped: status %d: %s", st, out);
        char *echo[] = {"--from=libcurl.so.4,libpq.so.5", "/bin/sh", "-c", "echo \"$GREENWORLD_PATCH_FROM\"", NULL};
        st = greenrun(STDOUT_ONLY, clean, echo);
        CHECK(gw_exit_code(st) == 0 && strcmp(out, "libcurl.so.4,libpq.so.5\n") == 0, "--from=: status %d: %s", st,
              out);
        char *bad[] = {"--from", "libcurl.so.4,,libpq.so.5", "/bin/echo", "RAN", NULL};
        st = greenrun(BOTH, clean, bad);
        CHECK(gw_exit_code(st) == 2 && strstr(out, "GREENWORLD_PATCH_FROM") && !strstr(out, "RAN"),
              "--from with an empty name: status %d: %s", st, out);
    }
    char *no_value[] = {"--only", NULL};
    expect_usage_error(no_value, NULL, "--only without a list");
    char *nocmd[] = {"--stats", NULL};
    expect_usage_error(nocmd, NULL, "no COMMAND");
    char *nothing[] = {NULL};
    expect_usage_error(nothing, NULL, "no arguments");
    char *status_cmd[] = {"--status", "/bin/echo", "RAN", NULL};
    expect_usage_error(status_cmd, NULL, "--status with a COMMAND");

    /* --help and --version: stdout, exit 0, nothing on stderr. */
    char *help[] = {"--help", NULL};
    st = greenrun(STDOUT_ONLY, clean, help);
    CHECK(gw_exit_code(st) == 0 && strncmp(out, "usage:", 6) == 0, "--help: %d: %s", st, out);
    CHECK(strstr(out, "--only") && strstr(out, "--status") && strstr(out, "--stack-size") && strstr(out, "--no-inherit"),
          "--help: %s", out);
    st = greenrun(STDERR_ONLY, clean, help);
    CHECK(gw_exit_code(st) == 0 && out[0] == 0, "--help wrote on stderr: %s", out);
    char *version[] = {"--version", NULL}, want_version[128], version_line[160];
    cargo_version(want_version, sizeof want_version);
    snprintf(version_line, sizeof version_line, "greenrun %s\n", want_version);
    st = greenrun(BOTH, clean, version);
    CHECK(gw_exit_code(st) == 0 && strcmp(out, version_line) == 0, "--version: %d: want %sgot %s", st, version_line,
          out);

    /* The command runs (exec) with the library first in LD_PRELOAD. */
    char *echo[] = {"--", "/bin/echo", "hi", NULL};
    st = greenrun(BOTH, clean, echo);
    CHECK(gw_exit_code(st) == 0 && strcmp(out, "hi\n") == 0, "-- /bin/echo hi: %d: %s", st, out);
    char *show[] = {"/bin/sh", "-c", "echo \"LD_PRELOAD=$LD_PRELOAD\"", NULL};
    char want[PATH_MAX + 64];
    st = greenrun(BOTH, clean, show);
    snprintf(want, sizeof want, "LD_PRELOAD=%s\n", lib_path);
    CHECK(gw_exit_code(st) == 0 && strcmp(out, want) == 0, "want %sgot %s", want, out);
    const char *other_preload[] = {CLEAN, "LD_PRELOAD=libdl.so.2", NULL};
    st = greenrun(BOTH, other_preload, show);
    snprintf(want, sizeof want, "LD_PRELOAD=%s:libdl.so.2\n", lib_path);
    CHECK(gw_exit_code(st) == 0 && strcmp(out, want) == 0, "library first: want %sgot %s", want, out);
    /* greenrun under greenrun: the library is not listed twice. */
    char *nested[] = {greenrun_path, "/bin/sh", "-c", "echo \"LD_PRELOAD=$LD_PRELOAD\"", NULL};
    st = greenrun(BOTH, other_preload, nested);
    CHECK(gw_exit_code(st) == 0 && strcmp(out, want) == 0, "nested: want %sgot %s", want, out);
    /* The command really runs with the library loaded, configured by the options. */
    char *probe_args[] = {"--no", "thread", (char *)gw_self(), "--probe", NULL};
    st = greenrun(BOTH, clean, probe_args);
    CHECK(gw_exit_code(st) == 0 && strstr(out, "probe preloaded=1 thread=0 time=1\n"), "%d: %s", st, out);

    /* The options become the library's variables; --only unsets the other four. */
    const char *env_preset[] = {CLEAN, "GREENWORLD_THREAD=0", "GREENWORLD_OS=1", NULL};
    char *opts[] = {"--only", "socket", "--stack-size", "256K", "--stack-copy", "--stats", "--log", "info", "/bin/sh", "-c",
                    "env | grep '^GREENWORLD_[A-Z_]*=' | grep -v '^GREENWORLD_\\(LIB\\|SRC\\)=' | sort", NULL};
    st = greenrun(STDOUT_ONLY, env_preset, opts);
    CHECK(gw_exit_code(st) == 0 && strcmp(out, "GREENWORLD_LOG=info\nGREENWORLD_SOCKET=1\nGREENWORLD_STACK_COPY=1\n"
                                          "GREENWORLD_STACK_SIZE=256K\nGREENWORLD_STATS=1\n") == 0,
          "--only socket --stack-size 256K --stack-copy --stats --log info: %d:\n%s", st, out);
    char *no_opts[] = {"--no", "time,os", "/bin/sh", "-c",
                       "env | grep '^GREENWORLD_[A-Z_]*=' | grep -v '^GREENWORLD_\\(LIB\\|SRC\\)=' | sort", NULL};
    st = greenrun(STDOUT_ONLY, env_preset, no_opts);
    CHECK(gw_exit_code(st) == 0 && strcmp(out, "GREENWORLD_OS=0\nGREENWORLD_THREAD=0\nGREENWORLD_TIME=0\n") == 0,
          "--no time,os: %d:\n%s", st, out);

    /* --no-inherit: GREENWORLD_INHERIT=0; the command is green, what it runs is not. */
    char *no_inherit_env[] = {"--no-inherit", "/bin/sh", "-c",
                              "env | grep '^GREENWORLD_[A-Z_]*=' | grep -v '^GREENWORLD_\\(LIB\\|SRC\\)='", NULL};
    st = greenrun(STDOUT_ONLY, clean, no_inherit_env);
    CHECK(gw_exit_code(st) == 0 && strcmp(out, "GREENWORLD_INHERIT=0\n") == 0, "--no-inherit: %d:\n%s", st, out);
    char *no_inherit_probe[] = {"--no-inherit", (char *)gw_self(), "--probe", NULL};
    st = greenrun(BOTH, clean, no_inherit_probe);
    CHECK(gw_exit_code(st) == 0 && strcmp(out, "probe preloaded=1 thread=1 time=1\n") == 0, "--no-inherit: %d: %s", st,
          out);
    no_inherit_wrappers();

    /* A command that cannot run: a shell's message and status, not exec's. */
    char *no_such[] = {"no-such-command-xyz", "arg", NULL};
    expect_cannot_run(no_such, 127, "greenrun: no-such-command-xyz: command not found\n");
    char *no_such_path[] = {"/nonexistent/cmd", NULL};
    expect_cannot_run(no_such_path, 127, "greenrun: /nonexistent/cmd: No such file or directory\n");
    char *a_dir[] = {"/", NULL};
    expect_cannot_run(a_dir, 126, "greenrun: /: Is a directory\n");
    char cargo_toml[PATH_MAX], not_exec_msg[PATH_MAX + 64];
    snprintf(cargo_toml, sizeof cargo_toml, "%s/Cargo.toml", src);
    snprintf(not_exec_msg, sizeof not_exec_msg, "greenrun: %s: Permission denied\n", cargo_toml);
    char *not_exec[] = {"--", cargo_toml, NULL};
    expect_cannot_run(not_exec + 1, 126, not_exec_msg);
    expect_cannot_run(not_exec, 126, not_exec_msg);

    /* Exit status and death by signal pass through (exec, no wrapper process left). */
    char *code[] = {"/bin/sh", "-c", "exit 7", NULL};
    st = greenrun(BOTH, clean, code);
    CHECK(gw_exit_code(st) == 7, "exit 7 came back as status %d", st);
    char *killed[] = {"/bin/sh", "-c", "kill -TERM $$", NULL};
    st = greenrun(BOTH, clean, killed);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "a command killed by SIGTERM: status %d: %s", st, out);

    /* A missing library: exit 127 with a message saying what to do. */
    const char *missing[] = {CLEAN, "GREENWORLD_LIB=/nonexistent/libgreenworld.so", NULL};
    st = greenrun(BOTH, missing, echo);
    CHECK(gw_exit_code(st) == 127 && strstr(out, "GREENWORLD_LIB") && !strstr(out, "hi\n"), "%d: %s", st, out);

    /* A copy of the script with no library beside it, then an installed layout (bin/, lib/). */
    char dir[] = "/tmp/gw-greenrun-XXXXXX", bin[PATH_MAX], copy[PATH_MAX], libdir[PATH_MAX], link_path[PATH_MAX];
    CHECK(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
    snprintf(bin, sizeof bin, "%s/bin", dir);
    snprintf(copy, sizeof copy, "%s/bin/greenrun", dir);
    snprintf(libdir, sizeof libdir, "%s/lib", dir);
    snprintf(link_path, sizeof link_path, "%s/lib/libgreenworld.so", dir);
    CHECK_EQ(mkdir(bin, 0755), 0);
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", greenrun_path, copy);
    CHECK_EQ(system(cmd), 0);
    const char *no_lib_env[] = {CLEAN, "-GREENWORLD_LIB", NULL};
    st = run_script(copy, STDERR_ONLY, no_lib_env, echo);
    CHECK(gw_exit_code(st) == 127 && strstr(out, "cannot find libgreenworld.so") && strstr(out, "GREENWORLD_LIB"),
          "no library anywhere: %d: %s", st, out);
    st = run_script(copy, BOTH, no_lib_env, version);
    CHECK(gw_exit_code(st) == 0 && strcmp(out, "greenrun unknown\n") == 0, "--version, no Cargo.toml, no library: %d: %s",
          st, out);
    CHECK_EQ(mkdir(libdir, 0755), 0);
    CHECK(symlink(lib_path, link_path) == 0, "symlink: %s", strerror(errno));
    st = run_script(copy, BOTH, no_lib_env, show);
    snprintf(want, sizeof want, "LD_PRELOAD=%s\n", link_path);
    CHECK(gw_exit_code(st) == 0 && strcmp(out, want) == 0, "installed layout: want %sgot %s", want, out);
    st = run_script(copy, BOTH, no_lib_env, status);
    CHECK(gw_exit_code(st) == 0 && strncmp(out, "os: patched\n", 12) == 0, "installed layout --status: %d: %s", st, out);
    /* The installed copy knows its version: the library's. */
    st = run_script(copy, BOTH, no_lib_env, version);
    CHECK(gw_exit_code(st) == 0 && strcmp(out, version_line) == 0, "installed layout --version: %d: want %sgot %s", st,
          version_line, out);

    /* greenrun through symlinks (~/bin/greenrun -> the tree's script; a relative link to that
     * link): it finds the library next to the script itself, and the version. */
    char tree_link[PATH_MAX], rel_link[PATH_MAX];
    snprintf(tree_link, sizeof tree_link, "%s/greenrun-link", dir);
    snprintf(rel_link, sizeof rel_link, "%s/bin/greenrun-rel", dir);
    CHECK(symlink(greenrun_path, tree_link) == 0, "symlink: %s", strerror(errno));
    CHECK(symlink("../greenrun-link", rel_link) == 0, "symlink: %s", strerror(errno));
    snprintf(want, sizeof want, "LD_PRELOAD=%s\n", lib_path);
    const char *links[] = {tree_link, rel_link};
    for (int i = 0; i < 2; i++) {
        st = run_script(links[i], BOTH, no_lib_env, show);
        CHECK(gw_exit_code(st) == 0 && strcmp(out, want) == 0, "%s: want %sgot %s", links[i], want, out);
        st = run_script(links[i], BOTH, no_lib_env, version);
        CHECK(gw_exit_code(st) == 0 && strcmp(out, version_line) == 0, "%s --version: %d: %s", links[i], st, out);
    }
    unlink(rel_link);
    unlink(tree_link);
    unlink(link_path);
    unlink(copy);
    rmdir(libdir);
    rmdir(bin);
    rmdir(dir);
    return 0;
}
