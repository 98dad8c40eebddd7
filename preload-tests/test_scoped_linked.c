// link: greenworld
// link: libscoped
#include "gwtest.h"
#include "scoped_handoff.h"
#include "greenworld.h"
/* greenworld_import_patched from a program linked with the library (not preloaded): after
 * greenworld_import_patched("libscoped.so", GW_OS | GW_THREAD | GW_TIME) the calls made from
 * libscoped.so are green (scoped_handoff.h: its thread runs on the caller's OS thread) and the
 * executable's stay plain; greenworld_is_monkey_patched answers for its caller; bad arguments
 * are refused with their errno. Under the preload everything is green already: the call
 * succeeds and changes nothing. */

int scoped_handoff_here(void);
int scoped_patched_here(const char *name);

int main(void) {
    gw_watchdog("test_scoped_linked", 20);
    int preloaded = getenv("LD_PRELOAD") && strstr(getenv("LD_PRELOAD"), "libgreenworld");
    CHECK_EQ(greenworld_import_patched(NULL, 0), EINVAL);
    CHECK_EQ(greenworld_import_patched("", 0), EINVAL);
    CHECK_EQ(greenworld_import_patched("libscoped.so,libpq.so.5", 0), EINVAL);
    CHECK_EQ(greenworld_import_patched("lib scoped.so", 0), EINVAL);
    CHECK_EQ(greenworld_import_patched("libscoped.so", 0x40), EINVAL);
    /* GW_PSYCOPG names a library (libpq), not a subsystem: greenworld_monkey_patch's flag. */
    CHECK_EQ(greenworld_import_patched("libscoped.so", GW_PSYCOPG), EINVAL);
    CHECK_EQ(greenworld_import_patched("libscoped.so", GW_OS | GW_PSYCOPG), EINVAL);
    if (!preloaded) {
        /* Linked: nothing is green yet, from anywhere, and the refusals changed nothing. */
        CHECK_EQ(scoped_handoff(), 0);
        CHECK_EQ(scoped_handoff_here(), 0);
        CHECK_EQ(scoped_patched_here("thread"), 0);
    }
    CHECK_EQ(greenworld_import_patched("libscoped.so", GW_OS | GW_THREAD | GW_TIME), 0);
    CHECK_EQ(greenworld_import_patched("libscoped.so", GW_OS | GW_THREAD | GW_TIME), 0);
    gw_phase = "handoff from libscoped.so";
    CHECK_EQ(scoped_handoff_here(), 1);
    gw_phase = "handoff from the executable";
    CHECK_EQ(scoped_handoff(), preloaded);
    CHECK_EQ(scoped_patched_here("thread"), 1);
    CHECK_EQ(scoped_patched_here("socket"), preloaded);
    CHECK_EQ(greenworld_is_monkey_patched("thread"), preloaded);
    /* monkey_patch widens to every caller. */
    CHECK_EQ(greenworld_monkey_patch(GW_THREAD | GW_TIME | GW_OS), 0);
    CHECK_EQ(greenworld_is_monkey_patched("thread"), 1);
    CHECK_EQ(scoped_handoff(), 1);
    CHECK_EQ(scoped_handoff_here(), 1);
    return 0;
}
