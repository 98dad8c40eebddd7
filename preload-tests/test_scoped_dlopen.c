#include "gwtest.h"
#include "scoped_handoff.h"
/* import_patched for a library loaded later: preloaded with GREENWORLD_PATCH_FROM=libscoped.so,
 * libscoped.so is dlopened after main started and its calls are green (scoped_handoff.h: its
 * thread runs on the caller's OS thread) while the executable's are plain. After dlclose, its
 * code under another name (libscopedtwin.so, never in scope), loaded where it was, is plain; and
 * libscoped.so loaded again, at another address, is green again. Natively, and preloaded
 * unscoped, everyone is the same; the scoped run is a re-run of this program. dlmopen into the
 * base namespace is watched as dlopen is, and both fail on a missing file as natively. */
#include <dlfcn.h>

typedef int (*handoff_fn)(void);

static char dir[4096];

/* dlopens preload-tests' libNAME.so and returns its scoped_handoff_here. */
static handoff_fn load(const char *name, void **handle) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(*handle != NULL, "dlopen %s: %s", path, dlerror());
    handoff_fn f = (handoff_fn)dlsym(*handle, "scoped_handoff_here");
    CHECK(f != NULL, "dlsym in %s: %s", path, dlerror());
    return f;
}

/* want_scoped: what libscoped.so's calls are (1 green, 0 plain); the twin's and the
 * executable's are want_others. */
static void run(int want_scoped, int want_others) {
    void *scoped, *twin, *again;
    gw_phase = "executable";
    CHECK_EQ(scoped_handoff(), want_others);
    gw_phase = "libscoped.so, dlopened";
    handoff_fn f = load("libscoped.so", &scoped);
    CHECK_EQ(f(), want_scoped);
    uintptr_t first = (uintptr_t)f;
    CHECK_EQ(dlclose(scoped), 0);
    gw_phase = "libscopedtwin.so, after dlclose";
    f = load("libscopedtwin.so", &twin);
    fprintf(stderr, "twin %s where libscoped.so was\n", (uintptr_t)f == first ? "loaded" : "not loaded");
    CHECK_EQ(f(), want_others);
    CHECK_EQ(scoped_handoff(), want_others);
    gw_phase = "libscoped.so, dlopened again";
    f = load("libscoped.so", &again);
    fprintf(stderr, "libscoped.so again %s\n", (uintptr_t)f == first ? "at the same address" : "elsewhere");
    CHECK_EQ(f(), want_scoped);
    CHECK_EQ(scoped_handoff(), want_others);
    CHECK_EQ(dlclose(again), 0);
    gw_phase = "libscoped.so, dlmopen'ed into the base namespace";
    char path[4200];
    snprintf(path, sizeof path, "%s/libscoped.so", dir);
    void *base = dlmopen(LM_ID_BASE, path, RTLD_NOW | RTLD_LOCAL);
    CHECK(base != NULL, "dlmopen %s: %s", path, dlerror());
    f = (handoff_fn)dlsym(base, "scoped_handoff_here");
    CHECK(f != NULL, "dlsym: %s", dlerror());
    CHECK_EQ(f(), want_scoped);
    CHECK_EQ(dlclose(base), 0);
    CHECK_EQ(dlclose(twin), 0);
    gw_phase = "a library that is not there";
    snprintf(path, sizeof path, "%s/libnot_there.so", dir);
    CHECK(dlopen(path, RTLD_NOW) == NULL, "dlopen of a missing file succeeded");
    const char *why = dlerror();
    CHECK(why && strstr(why, "libnot_there.so"), "dlopen's error: %s", why ? why : "(none)");
    CHECK(dlmopen(LM_ID_BASE, path, RTLD_NOW) == NULL, "dlmopen of a missing file succeeded");
    why = dlerror();
    CHECK(why && strstr(why, "libnot_there.so"), "dlmopen's error: %s", why ? why : "(none)");
    CHECK_EQ(scoped_handoff(), want_others);
}

int main(int argc, char **argv) {
    gw_watchdog("test_scoped_dlopen", 20);
    snprintf(dir, sizeof dir, "%s", gw_self());
    *strrchr(dir, '/') = 0;
    if (argc > 1 && strcmp(argv[1], "--scoped") == 0) {
        run(1, 0);
        return 0;
    }
    if (!gw_preloaded()) {
        run(0, 0);
        return 0;
    }
    run(1, 1);
    static char out[4096];
    const char *env[] = {"GREENWORLD_PATCH_FROM=libscoped.so", NULL};
    int status = gw_run_self(env, out, sizeof out, "--scoped", NULL);
    CHECK(gw_exit_code(status) == 0, "scoped: status %d: %s", status, out);
    CHECK(strstr(out, "twin loaded where libscoped.so was"), "the twin took another place: %s", out);
    return 0;
}
