// link: libscoped
#include "gwtest.h"
#include "scoped_handoff.h"
/* eventlet's import_patched, preloaded: GREENWORLD_PATCH_FROM=libscoped.so greens the calls made
 * from libscoped.so (a DT_NEEDED library of this test) and nothing else. The same handoff (a
 * thread that writes a pipe the caller reads; scoped_handoff.h) made from the library runs on
 * the caller's OS thread, made from this executable runs on an OS thread of its own; and
 * greenworld_is_monkey_patched answers for whoever asks. Natively, and preloaded unscoped,
 * both sides are the same (plain, green); the scoped run is a re-run of this program. */

int scoped_handoff_here(void);
int scoped_patched_here(const char *name);

static int scoped_child(void) {
    gw_phase = "handoff from the executable";
    CHECK_EQ(scoped_handoff(), 0);
    gw_phase = "handoff from libscoped.so";
    CHECK_EQ(scoped_handoff_here(), 1);
    /* Again, in the other order and twice: each call site keeps its own answer. */
    CHECK_EQ(scoped_handoff_here(), 1);
    CHECK_EQ(scoped_handoff(), 0);
    CHECK_EQ(gw_patched("thread"), 0);
    CHECK_EQ(gw_patched("read"), 0);
    CHECK_EQ(scoped_patched_here("thread"), 1);
    CHECK_EQ(scoped_patched_here("read"), 1);
    CHECK_EQ(scoped_patched_here("no-such-name"), -1);
    return 0;
}

int main(int argc, char **argv) {
    gw_watchdog("test_scoped", 20);
    if (argc > 1 && strcmp(argv[1], "--scoped") == 0) return scoped_child();
    if (!gw_preloaded()) {
        CHECK_EQ(scoped_handoff(), 0);
        CHECK_EQ(scoped_handoff_here(), 0);
        return 0;
    }
    /* Preloaded and unscoped: everyone's calls are green. */
    CHECK_EQ(scoped_handoff(), 1);
    CHECK_EQ(scoped_handoff_here(), 1);
    CHECK_EQ(scoped_patched_here("thread"), 1);
    static char out[4096];
    const char *env[] = {"GREENWORLD_PATCH_FROM=libscoped.so", NULL};
    int status = gw_run_self(env, out, sizeof out, "--scoped", NULL);
    CHECK(gw_exit_code(status) == 0, "scoped by soname: status %d: %s", status, out);
    /* By path too, and with the other name of the list unknown to this process. */
    static char path[4200];
    snprintf(path, sizeof path, "GREENWORLD_PATCH_FROM=libnothere.so.1,%s", gw_self());
    char *slash = strrchr(path, '/');
    CHECK(slash != NULL, "no directory in %s", path);
    strcpy(slash + 1, "libscoped.so");
    const char *by_path[] = {path, NULL};
    status = gw_run_self(by_path, out, sizeof out, "--scoped", NULL);
    CHECK(gw_exit_code(status) == 0, "scoped by path: status %d: %s", status, out);
    return 0;
}
