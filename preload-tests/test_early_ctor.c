/* Hooked calls made from another library's constructor, before greenworld's own constructor has
 * run (libearly is a dependency, initialised first): they work, green, with the configuration
 * read on first use. */
// link: libearly
#include "gwtest.h"

extern int early_sleep_rc, early_join_rc, early_patched;
extern long early_sleep_ns, early_join_value;

int main(void) {
    CHECK_EQ(early_sleep_rc, 0);
    CHECK(early_sleep_ns >= 9 * 1000 * 1000, "slept %ld ns", early_sleep_ns);
    CHECK_EQ(early_join_rc, 0);
    CHECK_EQ(early_join_value, 42);
    if (gw_preloaded()) CHECK_EQ(early_patched, 1);
    else CHECK_EQ(early_patched, -2);
    return 0;
}
