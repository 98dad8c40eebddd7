/* scripts/greenrun: status, options, errors, and that the command runs with the library
 * preloaded first. */
#include "gwtest.h"

static int greenrun(const char *const env[], char *const argv[], char *out) {
    char path[4096];
    snprintf(path, sizeof path, "%s/scripts/greenrun", getenv("GREENWORLD_SRC"));
    char *args[16] = {path};
    for (int i = 0; argv[i] && i < 14; i++) args[i + 1] = argv[i], args[i + 2] = NULL;
    return gw_run(env, args, out, 8192);
}

#define EXIT_OF(st) (WIFEXITED(st) ? WEXITSTATUS(st) : -1)

int main(void) {
    if (!gw_preloaded() || !getenv("GREENWORLD_SRC")) return GW_SKIP;
    char out[8192];
    const char *clean[] = {"-GREENWORLD_OS", "-GREENWORLD_SELECT", "-GREENWORLD_SOCKET", "-GREENWORLD_THREAD",
                           "-GREENWORLD_TIME", "-LD_PRELOAD", NULL};

    char *status[] = {"--status", NULL};
    CHECK_EQ(EXIT_OF(greenrun(clean, status, out)), 0);
    CHECK(strcmp(out, "os: patched\nselect: patched\nsocket: patched\nthread: patched\ntime: patched\n") == 0, "%s", out);

    char *no_thread[] = {"--no", "thread", "--status", NULL};
    CHECK_EQ(EXIT_OF(greenrun(clean, no_thread, out)), 0);
    CHECK(strstr(out, "thread: not patched\n") && strstr(out, "time: patched\n"), "%s", out);

    char *only[] = {"--only", "socket,time", "--status", NULL};
    CHECK_EQ(EXIT_OF(greenrun(clean, only, out)), 0);
    CHECK(strcmp(out, "os: not patched\nselect: not patched\nsocket: patched\nthread: not patched\ntime: patched\n") == 0, "%s", out);

    const char *env_no_time[] = {"-LD_PRELOAD", "GREENWORLD_TIME=0", NULL};
    CHECK_EQ(EXIT_OF(greenrun(env_no_time, status, out)), 0);
    CHECK(strstr(out, "time: not patched\n"), "the environment counts too: %s", out);

    const char *bad_env[] = {"-LD_PRELOAD", "GREENWORLD_TIME=maybe", NULL};
    CHECK_EQ(EXIT_OF(greenrun(bad_env, status, out)), 2);
    CHECK(strstr(out, "GREENWORLD_TIME"), "%s", out);

    char *bogus[] = {"--bogus", NULL};
    CHECK_EQ(EXIT_OF(greenrun(clean, bogus, out)), 2);
    CHECK(strstr(out, "usage:"), "%s", out);
    char *nosuch[] = {"--only", "nosuch", "true", NULL};
    CHECK_EQ(EXIT_OF(greenrun(clean, nosuch, out)), 2);
    CHECK(strstr(out, "nosuch"), "%s", out);
    char *nocmd[] = {"--stats", NULL};
    CHECK_EQ(EXIT_OF(greenrun(clean, nocmd, out)), 2);
    char *help[] = {"--help", NULL};
    CHECK_EQ(EXIT_OF(greenrun(clean, help, out)), 0);
    CHECK(strstr(out, "usage:"), "%s", out);
    char *version[] = {"--version", NULL};
    CHECK_EQ(EXIT_OF(greenrun(clean, version, out)), 0);
    CHECK(strncmp(out, "greenrun ", 9) == 0, "%s", out);

    char *echo[] = {"--", "/bin/echo", "hi", NULL};
    CHECK_EQ(EXIT_OF(greenrun(clean, echo, out)), 0);
    CHECK(strcmp(out, "hi\n") == 0, "%s", out);

    const char *other_preload[] = {"LD_PRELOAD=libnothere_ignored.so", NULL};
    char *show[] = {"/bin/sh", "-c", "echo \"$LD_PRELOAD\"", NULL};
    CHECK_EQ(EXIT_OF(greenrun(other_preload, show, out)), 0);
    CHECK(strstr(out, "libgreenworld.so:libnothere_ignored.so\n"), "library first: %s", out);

    const char *exit_env[] = {"-LD_PRELOAD", NULL};
    char *code[] = {"/bin/sh", "-c", "exit 7", NULL};
    CHECK_EQ(EXIT_OF(greenrun(exit_env, code, out)), 7);

    const char *missing[] = {"GREENWORLD_LIB=/nonexistent/libgreenworld.so", NULL};
    CHECK_EQ(EXIT_OF(greenrun(missing, echo, out)), 127);
    return 0;
}
