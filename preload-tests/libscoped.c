#include "gwtest.h"
/* A library that greenworld_import_patched and GREENWORLD_PATCH_FROM name (test_scoped,
 * test_scoped_dlopen, test_scoped_linked): its calls are green when patching is scoped to it,
 * while the very same calls from the test's executable are plain. libscopedtwin.c is this code
 * under another name, never in scope. */
#include <pthread.h>

#include "scoped_handoff.h"

/* scoped_handoff (see scoped_handoff.h), made from this library's code. */
int scoped_handoff_here(void) { return scoped_handoff(); }

/* greenworld_is_monkey_patched(name), asked from this library's code (-2 when not loaded). Not
 * a tail call: that would return straight to the executable, which would then be the caller
 * (README: a call is judged by its return address). */
int scoped_patched_here(const char *name) {
    int answer = gw_patched(name);
    __asm__ volatile("" ::: "memory");
    return answer;
}
