#include "gwtest.h"
/* scripts/test-python with a python3 that has CPython's test package but not its suites (as
 * Debian's python3 without libpython3.X-testsuite): one SKIP line naming what to install, a
 * summary counting it as skipped, exit 0 (not a FAIL per module). The python3 is the machine's,
 * with a stub `test` package (support and libregrtest only) first on PYTHONPATH. Native only
 * (the script preloads the library itself); skipped without python3. */
#include <limits.h>
#include <sys/stat.h>

static char out[65536];

static void write_file(const char *dir, const char *name) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f && fclose(f) == 0, "%s: %s", path, strerror(errno));
}

/* Runs the script with the stub first on PYTHONPATH (and PYTHON=python, unless NULL). */
static void expect_skip(const char *script, const char *stub, const char *python, const char *hint) {
    char pythonpath[PATH_MAX + 16], python_var[PATH_MAX + 16];
    snprintf(pythonpath, sizeof pythonpath, "PYTHONPATH=%s", stub);
    snprintf(python_var, sizeof python_var, "PYTHON=%s", python ? python : "");
    /* GW_TEST_PYTHON_ONE: only the python3 on PATH, not also each pyenv CPython 3.12+ the
     * script tests after it when PYTHON is unset (those have their suites). */
    const char *env[] = {pythonpath, python ? python_var : "-PYTHON", "-LD_PRELOAD", "GW_TEST_PYTHON_ONE=1", NULL};
    char *args[] = {"/bin/sh", "-c", "exec \"$0\" --no-http test_thread test_queue", (char *)script, NULL};
    int st = gw_run(env, args, out, sizeof out);
    const char *what = python ? python : "python3 on PATH";
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status %d: %s", what, st, out);
    char *skip = strstr(out, "\nSKIP python-suites (");
    CHECK(skip && strstr(skip, " has no CPython test suites (test_thread test_queue): "), "%s: no SKIP line: %s", what,
          out);
    if (hint) CHECK(strstr(skip, hint), "%s: the SKIP line does not say '%s': %s", what, hint, out);
    CHECK(!strstr(out, "FAIL"), "%s: %s", what, out);
    size_t len = strlen(out);
    static const char summary[] = "\n0 passed, 0 failed, 1 skipped\n";
    CHECK(len > strlen(summary) && strcmp(out + len - strlen(summary), summary) == 0, "%s: summary: %s", what, out);
}

int main(void) {
    const char *src = getenv("GREENWORLD_SRC");
    if (gw_preloaded() || !src) return GW_SKIP;
    if (system("command -v python3 >/dev/null 2>&1") != 0) {
        printf("python_skip: no python3: skipped\n");
        return GW_SKIP;
    }
    char script[PATH_MAX], dir[] = "/tmp/gw-python-stub-XXXXXX", pkg[PATH_MAX], sub[PATH_MAX + 32];
    snprintf(script, sizeof script, "%s/scripts/test-python", src);
    CHECK(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
    snprintf(pkg, sizeof pkg, "%s/test", dir);
    CHECK_EQ(mkdir(pkg, 0755), 0);
    write_file(pkg, "__init__.py");
    const char *subs[] = {"support", "libregrtest"};
    for (int i = 0; i < 2; i++) {
        snprintf(sub, sizeof sub, "%s/%s", pkg, subs[i]);
        CHECK_EQ(mkdir(sub, 0755), 0);
        write_file(sub, "__init__.py");
    }

    expect_skip(script, dir, NULL, NULL);
    char real[PATH_MAX];
    /* Debian's own python3: the hint names its package. */
    if (realpath("/usr/bin/python3", real) && strncmp(real, "/usr/bin/", 9) == 0)
        expect_skip(script, dir, "/usr/bin/python3", "apt-get install libpython3.");

    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_EQ(system(cmd), 0);
    return 0;
}
