/* A malformed GREENWORLD_ variable stops the program before main: one line on stderr naming the
 * variable, its value and the accepted values, and exit status 2. Good values are accepted. */
#include "gwtest.h"

static void expect_rejected(const char *assignment, const char *name, const char *value) {
    const char *env[] = {assignment, NULL};
    char *args[] = {(char *)gw_self(), "child", NULL};
    char out[4096];
    int status = gw_run(env, args, out, sizeof out);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2, "%s: status %d, output: %s", assignment, status, out);
    CHECK(!strstr(out, "MAIN RAN"), "%s: main ran: %s", assignment, out);
    CHECK(strncmp(out, "greenworld: ", 12) == 0, "%s: %s", assignment, out);
    CHECK(strstr(out, name) && strstr(out, value), "%s: %s", assignment, out);
    CHECK(strstr(out, "accepted"), "%s: no accepted values: %s", assignment, out);
    char *nl = strchr(out, '\n');
    CHECK(nl && nl[1] == 0, "%s: not exactly one line: %s", assignment, out);
}

static void expect_accepted(const char *assignment) {
    const char *env[] = {assignment, NULL};
    char *args[] = {(char *)gw_self(), "child", NULL};
    char out[4096];
    int status = gw_run(env, args, out, sizeof out);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: status %d: %s", assignment, status, out);
    CHECK(strcmp(out, "MAIN RAN\n") == 0, "%s: %s", assignment, out);
}

int main(int argc, char **argv) {
    if (argc > 1) {
        printf("MAIN RAN\n");
        return 0;
    }
    if (!gw_preloaded()) return GW_SKIP;
    expect_rejected("GREENWORLD_TIME=maybe", "GREENWORLD_TIME", "'maybe'");
    expect_rejected("GREENWORLD_THREAD=2", "GREENWORLD_THREAD", "'2'");
    expect_rejected("GREENWORLD_STACK_SIZE=12Q", "GREENWORLD_STACK_SIZE", "'12Q'");
    expect_rejected("GREENWORLD_STACK_SIZE=1K", "GREENWORLD_STACK_SIZE", "'1K'");
    expect_rejected("GREENWORLD_LOG=loud", "GREENWORLD_LOG", "'loud'");
    expect_rejected("GREENWORLD_STATS=perhaps", "GREENWORLD_STATS", "'perhaps'");
    expect_rejected("GREENWORLD_TPOOL_SIZE=0", "GREENWORLD_TPOOL_SIZE", "'0'");
    expect_accepted("GREENWORLD_STACK_SIZE=256K");
    expect_accepted("GREENWORLD_STACK_SIZE=1m");
    expect_accepted("GREENWORLD_TPOOL_SIZE=2");
    expect_accepted("GREENWORLD_LOG=Debug");
    return 0;
}
