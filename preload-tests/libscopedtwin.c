/* libscoped.c's code under another name: a library never in scope. test_scoped_dlopen loads it
 * where libscoped.so was unloaded, and its calls must be plain. */
#include "libscoped.c"
