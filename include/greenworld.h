/* greenworld: green threads for C, C++ and Rust programs (README.md: "Three ways in", "C API").
 *
 * Three ways in, as eventlet has them:
 *   - preloaded (LD_PRELOAD or greenrun): the environment decides what is patched, everything
 *     by default; the program need not know (eventlet has no such mode: Python imports first);
 *   - linked (-lgreenworld, pkg-config greenworld): loading the library patches NOTHING; the
 *     program greens itself with greenworld_monkey_patch() (eventlet's monkey_patch), as early
 *     as it can (a dlopened library cannot: libc's functions are found first);
 *   - the green_* functions (eventlet's "import green modules explicitly") and
 *     greenworld_import_patched: planned; they come with the hook registry rework.
 */
#ifndef GREENWORLD_H
#define GREENWORLD_H

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version (Cargo.toml's), for #if checks. */
#define GREENWORLD_VERSION_MAJOR 0
#define GREENWORLD_VERSION_MINOR 1
#define GREENWORLD_VERSION_PATCH 0
#define GREENWORLD_VERSION "0.1.0"

/* Subsystems, named after eventlet's monkey_patch keyword arguments. */
#define GW_OS 0x01u     /* pipes, descriptor I/O, waits for children, signal waits */
#define GW_SELECT 0x02u /* poll, select, epoll_wait */
#define GW_SOCKET 0x04u /* sockets and name resolution */
#define GW_THREAD 0x08u /* pthreads and C11 threads, their locks, conditions, semaphores */
#define GW_TIME 0x10u   /* sleeps */
/* Reserved: libpq's calls (eventlet's psycopg); greenworld_monkey_patch answers ENOTSUP. */
#define GW_PSYCOPG 0x20u
#define GW_ALL (GW_OS | GW_SELECT | GW_SOCKET | GW_THREAD | GW_TIME)

/* eventlet's monkey_patch: turns the named subsystems (0: GW_ALL, as monkey_patch() with no
 * arguments) green for the whole process from this moment, on top of what already is: nothing
 * is ever unpatched, so under the preload it can only widen what the environment set.
 * Idempotent; safe to call many times and from any thread. Threads created before the call stay
 * OS threads (and run plain libc calls as before); signal handlers installed before are taken
 * over (wrapped as if installed after); a thread asleep in a lock, condition or semaphore wait
 * at the moment of the call may never be woken by a green thread. Call it as early as
 * possible, before the program starts threads. Returns 0, EINVAL for a bit that is no
 * flag, ENOTSUP for GW_PSYCOPG, or ENOSYS when the library was dlopened (its hooks are not
 * reached); nothing is changed on an error. */
int greenworld_monkey_patch(unsigned subsystems);

/* eventlet's is_monkey_patched: 1 when the subsystem ("socket") or hooked function
 * ("nanosleep") is patched now, 0 when not, -1 for a name the library does not know or NULL. */
int greenworld_is_monkey_patched(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* GREENWORLD_H */
