/* GREENWORLD_STATS=1: one summary line at exit; GREENWORLD_LOG=debug: prefixed diagnostics;
 * neither: the library prints nothing at all. */
#include "gwtest.h"
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

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

int main(int argc, char **argv) {
    if (argc > 1) return child();
    if (!gw_preloaded()) return GW_SKIP;
    char out[16384];
    char *args[] = {(char *)gw_self(), "child", NULL};

    const char *stats[] = {"GREENWORLD_STATS=1", "-GREENWORLD_LOG", NULL};
    int status = gw_run(stats, args, out, sizeof out);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", out);
    CHECK_EQ(count(out, "greenworld: stats:"), 1);
    const char *line = strstr(out, "greenworld: stats:");
    int created = -1, peak = -1;
    const char *c = strstr(line, "created="), *p = strstr(line, "peak_alive=");
    CHECK(c && p && strstr(line, "switches=") && strstr(line, "parks=sleep:"), "%s", line);
    sscanf(c, "created=%d", &created);
    sscanf(p, "peak_alive=%d", &peak);
    CHECK(created >= 10 && peak >= 10, "%s", line);

    const char *debug[] = {"GREENWORLD_LOG=debug", NULL};
    status = gw_run(debug, args, out, sizeof out);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", out);
    CHECK(strstr(out, "greenworld: debug: "), "%s", out);

    const char *quiet[] = {"GREENWORLD_LOG=off", "-GREENWORLD_STATS", NULL};
    status = gw_run(quiet, args, out, sizeof out);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", out);
    CHECK(strcmp(out, "child done\n") == 0, "library printed something: %s", out);
    return 0;
}
