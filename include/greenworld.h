/* greenworld: green threads for C, C++ and Rust programs (README.md: "Three ways in", "C API").
 *
 * Three ways in, as eventlet has them:
 *   - preloaded (LD_PRELOAD or greenrun): the environment decides what is patched, everything
 *     by default; the program need not know (eventlet has no such mode: Python imports first);
 *   - linked (-lgreenworld, pkg-config greenworld): loading the library patches NOTHING; the
 *     program greens itself with greenworld_monkey_patch() (eventlet's monkey_patch), as early
 *     as it can (a dlopened library cannot: libc's functions are found first);
 *   - the green_* twins (eventlet's "import green modules explicitly": from eventlet.green
 *     import socket): every hooked function NAME has a green_NAME, declared at the end of this
 *     file, with the same signature, results and errno, green whatever is patched (linked and
 *     never monkey-patched, or preloaded with its subsystem off), while the plain NAME stays
 *     what is patched says. A twin where no green thread can run (an OS thread with no green
 *     thread alive) is the libc call. Threads made by green_pthread_create are green threads on
 *     the calling OS thread: join them with green_pthread_join, end them early with
 *     green_pthread_exit (glibc's know no green handle), and use an object they wait on
 *     (mutex, condition, semaphore) through the twins only. A linked program that did not
 *     call greenworld_monkey_patch closes (green_close, green_dup2...) and changes the
 *     O_NONBLOCK of (green_fcntl, green_ioctl) a descriptor it used with twins through twins
 *     too: the plain calls are libc's, and the library would not know. README.md, "Green
 *     twins", says the rest;
 *   - greenworld_import_patched (eventlet's import_patched; GREENWORLD_PATCH_FROM or
 *     greenrun --from preloaded): green only the calls made from code in named shared objects.
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
/* Not a subsystem: libpq's calls (eventlet's psycopg), green for every subsystem, as
 * greenworld_import_patched("libpq.so.5", GW_ALL); for greenworld_monkey_patch only. */
#define GW_PSYCOPG 0x20u
#define GW_ALL (GW_OS | GW_SELECT | GW_SOCKET | GW_THREAD | GW_TIME)

/* eventlet's monkey_patch: turns the named subsystems (0: GW_ALL, as monkey_patch() with no
 * arguments) green for the whole process from this moment, and with GW_PSYCOPG the calls made
 * from libpq (eventlet's psycopg: import_patched("libpq.so.5", GW_ALL), needless with GW_ALL,
 * which greens every caller's), on top of what already is: nothing
 * is ever unpatched, so under the preload it can only widen what the environment set.
 * Idempotent; safe to call many times and from any thread. Threads created before the call stay
 * OS threads (and run plain libc calls as before); signal handlers installed before are taken
 * over (wrapped as if installed after); a thread asleep in a lock, condition or semaphore wait
 * at the moment of the call may never be woken by a green thread. Call it as early as
 * possible, before the program starts threads. Returns 0, EINVAL for a bit that is no
 * flag, or ENOSYS when the library was dlopened (its hooks are not reached) or, for GW_PSYCOPG,
 * as greenworld_import_patched; nothing is changed on an error. */
int greenworld_monkey_patch(unsigned subsystems);

/* eventlet's import_patched: turns the named subsystems (0: GW_ALL) green from this moment for
 * the calls made from code in the shared object LIBRARY (its soname, as "libcurl.so.4", its
 * file name, or, with a '/', its path), loaded now or later by dlopen, and again after a
 * dlclose and dlopen; a call from anywhere else (the program, other libraries) gets plain libc,
 * unless greenworld_monkey_patch (or the unscoped preload) made its subsystem green for every
 * caller. The caller is found from each call's return address. Idempotent; safe from any thread;
 * at most 16 libraries. Not scoped: the variadic and hand-written hooks (open, openat, fcntl,
 * ioctl, pause, closefrom, call_once, thrd_yield), which act for every caller as if their
 * subsystem were patched once a scope names it, and the signal-handler and thread-exit ones,
 * which are the whole process's. Keep each descriptor, lock and thread on one side: a green
 * mutex is not libc's. A call is judged by its return address: a tail call from the library
 * is judged as its caller's. Returns 0,
 * EINVAL for NULL, a bad name (empty, over 63 bytes, with a comma or space) or a bit that is no
 * flag (GW_PSYCOPG too: it names a library, not a subsystem), ENOSPC when 16 libraries are
 * named already, or ENOSYS when the library was dlopened (its hooks are not reached), glibc is
 * older than 2.35, or the machine is neither x86-64 nor aarch64. */
int greenworld_import_patched(const char *library, unsigned subsystems);

/* eventlet's is_monkey_patched: 1 when the subsystem ("socket") or hooked function
 * ("nanosleep") is patched now, 0 when not, -1 for a name the library does not know or NULL.
 * When patching is scoped (greenworld_import_patched, GREENWORLD_PATCH_FROM), the answer is for
 * the calls of the shared object that calls it. "psycopg": 1 when libpq's calls are green for
 * every subsystem (GW_PSYCOPG, GREENWORLD_PSYCOPG=1, or every subsystem patched for everyone). */
int greenworld_is_monkey_patched(const char *name);

#ifdef __cplusplus
}
#endif

/* ---- green twins: made by `make header` from the hook rows (src/abi/); do not edit ---- */
/* Every hooked function's green twin: the same signature, results and errno, green whatever is
 * patched (README.md, "C API"). */
#include <sys/types.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <poll.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <sched.h>

#ifdef __cplusplus
extern "C" {
#endif

struct addrinfo;
struct epoll_event;
struct hostent;
struct iovec;
struct mmsghdr;
struct msghdr;
struct pollfd;
struct rusage;
struct sched_param;
struct sockaddr;
struct timespec;
struct timeval;

/* os */
ssize_t green_pread(int fd, void *buf, size_t len, off_t offset);
ssize_t green_pread64(int fd, void *buf, size_t len, __off64_t offset);
ssize_t green_pwrite(int fd, const void *buf, size_t len, off_t offset);
ssize_t green_pwrite64(int fd, const void *buf, size_t len, __off64_t offset);
int green_fsync(int fd);
int green_fdatasync(int fd);
int green_creat(const char *path, mode_t mode);
int green_creat64(const char *path, mode_t mode);
int green_open(const char *path, int flags, ...);
int green_open64(const char *path, int flags, ...);
int green_openat(int dirfd, const char *path, int flags, ...);
int green_openat64(int dirfd, const char *path, int flags, ...);
int green_pipe(int *fds);
int green_pipe2(int *fds, int flags);
ssize_t green_read(int fd, void *buf, size_t len);
ssize_t green_write(int fd, const void *buf, size_t len);
ssize_t green_readv(int fd, const struct iovec *iov, int count);
ssize_t green_writev(int fd, const struct iovec *iov, int count);
int green_close(int fd);
int green_fclose(FILE *stream);
int green_close_range(unsigned int first, unsigned int last, int flags);
pid_t green_wait(int *status);
pid_t green_waitpid(pid_t pid, int *status, int options);
pid_t green_wait4(pid_t pid, int *status, int options, struct rusage *usage);
pid_t green_wait3(int *status, int options, struct rusage *usage);
int green_waitid(idtype_t idtype, id_t id, siginfo_t *info, int options);
int green_system(const char *command);
int green_pclose(FILE *stream);
int green_dup(int fd);
int green_eventfd(unsigned int count, int flags);
int green_epoll_create(int size);
int green_epoll_create1(int flags);
int green_timerfd_create(clockid_t clock, int flags);
int green_signalfd(int fd, const sigset_t *mask, int flags);
int green_inotify_init(void);
int green_inotify_init1(int flags);
int green_memfd_create(const char *name, unsigned int flags);
int green_dup2(int old, int new_fd);
int green_dup3(int old, int new_fd, int flags);
int green_sigsuspend(const sigset_t *mask);
int green_sigwaitinfo(const sigset_t *set, siginfo_t *info);
int green_sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout);
int green_sigwait(const sigset_t *set, int *sig);
void green_closefrom(int first);
int green_pause(void);
int green_fcntl(int fd, int cmd, ...);
int green_fcntl64(int fd, int cmd, ...);
int green_ioctl(int fd, unsigned long request, ...);
char *green_fgets(char *s, int n, FILE *stream);
char *green_fgets_unlocked(char *s, int n, FILE *stream);
int green_fgetc(FILE *stream);
int green_getc(FILE *stream);
int green_fgetc_unlocked(FILE *stream);
int green_getc_unlocked(FILE *stream);
int green_getchar(void);
int green_getchar_unlocked(void);
ssize_t green_getline(char **line, size_t *n, FILE *stream);
ssize_t green_getdelim(char **line, size_t *n, int delim, FILE *stream);
size_t green_fread(void *ptr, size_t size, size_t count, FILE *stream);
size_t green_fread_unlocked(void *ptr, size_t size, size_t count, FILE *stream);
/* glibc's internal entry points (what _FORTIFY_SOURCE and stdio's macros compile to) */
ssize_t green___pread_chk(int fd, void *buf, size_t len, off_t offset, size_t buflen);
ssize_t green___pread64_chk(int fd, void *buf, size_t len, __off64_t offset, size_t buflen);
int green___open_2(const char *path, int flags);
int green___open64_2(const char *path, int flags);
int green___openat_2(int dirfd, const char *path, int flags);
int green___openat64_2(int dirfd, const char *path, int flags);
ssize_t green___read_chk(int fd, void *buf, size_t len, size_t buflen);
char *green___fgets_chk(char *s, size_t size, int n, FILE *stream);
int green___uflow(FILE *stream);
ssize_t green___getdelim(char **line, size_t *n, int delim, FILE *stream);
size_t green___fread_chk(void *ptr, size_t room, size_t size, size_t count, FILE *stream);

/* socket */
int green_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res);
int green_getnameinfo(const struct sockaddr *addr, socklen_t len, char *host, socklen_t hostlen, char *serv, socklen_t servlen, int flags);
struct hostent *green_gethostbyname(const char *name);
int green_gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t buflen, struct hostent **result, int *h_errnop);
int green_gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf, size_t buflen, struct hostent **result, int *h_errnop);
int green_gethostbyaddr_r(const void *addr, socklen_t len, int ty, struct hostent *ret, char *buf, size_t buflen, struct hostent **result, int *h_errnop);
int green_socket(int domain, int ty, int protocol);
int green_socketpair(int domain, int ty, int protocol, int *sv);
int green_connect(int fd, const struct sockaddr *addr, socklen_t len);
int green_accept(int fd, struct sockaddr *addr, socklen_t *len);
int green_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
ssize_t green_recv(int fd, void *buf, size_t len, int flags);
ssize_t green_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr, socklen_t *alen);
ssize_t green_recvmsg(int fd, struct msghdr *msg, int flags);
int green_recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags, struct timespec *timeout);
ssize_t green_send(int fd, const void *buf, size_t len, int flags);
ssize_t green_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr, socklen_t alen);
ssize_t green_sendmsg(int fd, const struct msghdr *msg, int flags);
int green_sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags);
ssize_t green_sendfile(int out, int input, off_t *offset, size_t count);
ssize_t green_sendfile64(int out, int input, off_t *offset, size_t count);
int green_setsockopt(int fd, int level, int name, const void *value, socklen_t len);
/* glibc's internal entry points (what _FORTIFY_SOURCE and stdio's macros compile to) */
ssize_t green___recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
ssize_t green___recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags, struct sockaddr *addr, socklen_t *alen);

/* select */
int green_poll(struct pollfd *fds, nfds_t n, int timeout);
int green_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *sigmask);
int green_select(int nfds, fd_set *read, fd_set *write, fd_set *except, struct timeval *tv);
int green_pselect(int nfds, fd_set *read, fd_set *write, fd_set *except, const struct timespec *ts, const sigset_t *sigmask);
int green_epoll_wait(int epfd, struct epoll_event *events, int max, int timeout);
int green_epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout, const sigset_t *sigmask);
int green_epoll_pwait2(int epfd, struct epoll_event *events, int max, const struct timespec *ts, const sigset_t *sigmask);
/* glibc's internal entry points (what _FORTIFY_SOURCE and stdio's macros compile to) */
int green___poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);
int green___ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *sigmask, size_t fdslen);

/* thread */
int green_pthread_mutex_lock(pthread_mutex_t *m);
int green_pthread_mutex_trylock(pthread_mutex_t *m);
int green_pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *at);
int green_pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clock, const struct timespec *at);
int green_pthread_mutex_unlock(pthread_mutex_t *m);
int green_pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m);
int green_pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *at);
int green_pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock, const struct timespec *at);
int green_pthread_cond_signal(pthread_cond_t *c);
int green_pthread_cond_broadcast(pthread_cond_t *c);
int green_pthread_rwlock_rdlock(pthread_rwlock_t *l);
int green_pthread_rwlock_tryrdlock(pthread_rwlock_t *l);
int green_pthread_rwlock_timedrdlock(pthread_rwlock_t *l, const struct timespec *at);
int green_pthread_rwlock_clockrdlock(pthread_rwlock_t *l, clockid_t clock, const struct timespec *at);
int green_pthread_rwlock_wrlock(pthread_rwlock_t *l);
int green_pthread_rwlock_trywrlock(pthread_rwlock_t *l);
int green_pthread_rwlock_timedwrlock(pthread_rwlock_t *l, const struct timespec *at);
int green_pthread_rwlock_clockwrlock(pthread_rwlock_t *l, clockid_t clock, const struct timespec *at);
int green_pthread_rwlock_unlock(pthread_rwlock_t *l);
int green_sem_wait(sem_t *s);
int green_sem_trywait(sem_t *s);
int green_sem_timedwait(sem_t *s, const struct timespec *at);
int green_sem_clockwait(sem_t *s, clockid_t clock, const struct timespec *at);
int green_sem_post(sem_t *s);
int green_pthread_barrier_wait(pthread_barrier_t *b);
int green_pthread_once(pthread_once_t *flag, void (*init)(void));
int green_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*start)(void *), void *arg);
int green_pthread_join(pthread_t t, void **ret);
int green_pthread_tryjoin_np(pthread_t t, void **ret);
int green_pthread_timedjoin_np(pthread_t t, void **ret, const struct timespec *abstime);
int green_pthread_clockjoin_np(pthread_t t, void **ret, clockid_t clock, const struct timespec *abstime);
int green_pthread_detach(pthread_t t);
pthread_t green_pthread_self(void);
int green_pthread_equal(pthread_t a, pthread_t b);
int green_pthread_setname_np(pthread_t t, const char *name);
int green_pthread_getname_np(pthread_t t, char *buf, size_t len);
int green_pthread_getattr_np(pthread_t t, pthread_attr_t *attr);
int green_pthread_kill(pthread_t t, int sig);
int green_pthread_cancel(pthread_t t);
int green_pthread_sigqueue(pthread_t t, int sig, union sigval value);
int green_pthread_getcpuclockid(pthread_t t, clockid_t *clock);
int green_pthread_setschedparam(pthread_t t, int policy, const struct sched_param *param);
int green_pthread_getschedparam(pthread_t t, int *policy, struct sched_param *param);
int green_pthread_setschedprio(pthread_t t, int prio);
int green_pthread_key_create(pthread_key_t *key, void (*destructor)(void *));
int green_pthread_key_delete(pthread_key_t key);
void *green_pthread_getspecific(pthread_key_t key);
int green_pthread_setspecific(pthread_key_t key, const void *value);
int green_sched_yield(void);
int green_pthread_sigmask(int how, const sigset_t *set, sigset_t *old);
int green_sigprocmask(int how, const sigset_t *set, sigset_t *old);
__attribute__((__noreturn__)) void green_pthread_exit(void *retval);
#ifdef _GNU_SOURCE /* cpu_set_t */
int green_pthread_setaffinity_np(pthread_t t, size_t size, const cpu_set_t *set);
int green_pthread_getaffinity_np(pthread_t t, size_t size, cpu_set_t *set);
int green_sched_setaffinity(pid_t pid, size_t size, const cpu_set_t *set);
int green_sched_getaffinity(pid_t pid, size_t size, cpu_set_t *set);
#endif
/* glibc's internal entry points (what _FORTIFY_SOURCE and stdio's macros compile to) */
int green___cxa_thread_atexit_impl(void (*dtor)(void *), void *obj, void *dso);

/* time */
int green_nanosleep(const struct timespec *req, struct timespec *rem);
int green_clock_nanosleep(clockid_t clock, int flags, const struct timespec *req, struct timespec *rem);
int green_usleep(__useconds_t usec);
unsigned int green_sleep(unsigned int seconds);

/* C11 threads (thread subsystem) */
#if !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#include <threads.h>
int green_mtx_lock(mtx_t *m);
int green_mtx_trylock(mtx_t *m);
int green_mtx_timedlock(mtx_t *m, const struct timespec *at);
int green_mtx_unlock(mtx_t *m);
int green_cnd_wait(cnd_t *c, mtx_t *m);
int green_cnd_timedwait(cnd_t *c, mtx_t *m, const struct timespec *at);
int green_cnd_signal(cnd_t *c);
int green_cnd_broadcast(cnd_t *c);
void green_call_once(once_flag *flag, void (*init)(void));
int green_thrd_create(thrd_t *t, thrd_start_t start, void *arg);
int green_thrd_join(thrd_t t, int *result);
int green_thrd_detach(thrd_t t);
thrd_t green_thrd_current(void);
int green_thrd_equal(thrd_t a, thrd_t b);
__attribute__((__noreturn__)) void green_thrd_exit(int result);
void green_thrd_yield(void);
int green_thrd_sleep(const struct timespec *duration, struct timespec *remaining);
#endif

#ifdef __cplusplus
}
#endif

/* No twin for sigaction, signal, bsd_signal, sysv_signal, __sysv_signal, sigset, siginterrupt: a
 * handler is the whole process's, not one call's: handlers run through the library once
 * greenworld_monkey_patch() (or the preload) engaged it, for every caller alike. */
/* No twin for syscall: a raw system call never waits green (the hook only keeps the fd table
 * true about the calls that make or close descriptors); call the function's twin instead. */
/* ---- end of the green twins ---- */

#endif /* GREENWORLD_H */
