//! The real libc functions behind every hook: one table, resolved once with
//! `dlsym(RTLD_NEXT)` (through redhook; `dlvsym` for versioned names) on first use, which may be
//! before `main` and from another library's constructor (trap 3). A successful `dlsym` does not
//! allocate on glibc >= 2.34; every name here exists in glibc 2.34+, so none fails.

use libc::{
    c_char, c_int, c_uint, c_void, clockid_t, cpu_set_t, epoll_event, fd_set, iovec, mmsghdr,
    msghdr, nfds_t, off_t, pollfd, pthread_attr_t, pthread_barrier_t, pthread_cond_t,
    pthread_key_t, pthread_mutex_t, pthread_once_t, pthread_rwlock_t, pthread_t, sched_param,
    sem_t, sigset_t, sigval, size_t, sockaddr, socklen_t, ssize_t, timespec, timeval, useconds_t,
};
use once_cell::sync::OnceCell;

pub type StartRoutine = extern "C" fn(*mut c_void) -> *mut c_void;
pub type C11Start = extern "C" fn(*mut c_void) -> c_int;
pub type KeyDestructor = unsafe extern "C" fn(*mut c_void);
pub type OnceRoutine = unsafe extern "C" fn();

macro_rules! real_table {
    ($( $name:ident $(@ $version:literal)? : fn($($arg:ty),*) $(-> $ret:ty)?; )*) => {
        /// Function pointers to the next definition of each hooked symbol (libc's).
        pub struct Real {
            $( pub $name: unsafe extern "C" fn($($arg),*) $(-> $ret)?, )*
        }

        fn resolve() -> Real {
            Real {
                $(
                    // SAFETY: dlsym_next returns the address of the libc function of this name
                    // (it aborts through our panic policy if there is none), whose C type is the
                    // one declared here, as in glibc's headers.
                    $name: unsafe {
                        core::mem::transmute::<*const u8, unsafe extern "C" fn($($arg),*) $(-> $ret)?>(
                            next(concat!(stringify!($name), "\0"), None $(.or(Some(concat!($version, "\0"))))?),
                        )
                    },
                )*
            }
        }
    };
}

real_table! {
    pthread_create: fn(*mut pthread_t, *const pthread_attr_t, StartRoutine, *mut c_void) -> c_int;
    pthread_join: fn(pthread_t, *mut *mut c_void) -> c_int;
    pthread_tryjoin_np: fn(pthread_t, *mut *mut c_void) -> c_int;
    pthread_timedjoin_np: fn(pthread_t, *mut *mut c_void, *const timespec) -> c_int;
    pthread_clockjoin_np: fn(pthread_t, *mut *mut c_void, clockid_t, *const timespec) -> c_int;
    pthread_detach: fn(pthread_t) -> c_int;
    pthread_exit: fn(*mut c_void) -> !;
    pthread_self: fn() -> pthread_t;
    pthread_equal: fn(pthread_t, pthread_t) -> c_int;
    pthread_setname_np: fn(pthread_t, *const c_char) -> c_int;
    pthread_getname_np: fn(pthread_t, *mut c_char, size_t) -> c_int;
    pthread_getattr_np: fn(pthread_t, *mut pthread_attr_t) -> c_int;
    pthread_kill: fn(pthread_t, c_int) -> c_int;
    pthread_sigqueue: fn(pthread_t, c_int, sigval) -> c_int;
    pthread_cancel: fn(pthread_t) -> c_int;
    pthread_getcpuclockid: fn(pthread_t, *mut clockid_t) -> c_int;
    pthread_setschedparam: fn(pthread_t, c_int, *const sched_param) -> c_int;
    pthread_getschedparam: fn(pthread_t, *mut c_int, *mut sched_param) -> c_int;
    pthread_setschedprio: fn(pthread_t, c_int) -> c_int;
    pthread_setaffinity_np: fn(pthread_t, size_t, *const cpu_set_t) -> c_int;
    pthread_getaffinity_np: fn(pthread_t, size_t, *mut cpu_set_t) -> c_int;
    pthread_key_create: fn(*mut pthread_key_t, Option<KeyDestructor>) -> c_int;
    pthread_key_delete: fn(pthread_key_t) -> c_int;
    pthread_getspecific: fn(pthread_key_t) -> *mut c_void;
    pthread_setspecific: fn(pthread_key_t, *const c_void) -> c_int;
    sched_yield: fn() -> c_int;
    thrd_create: fn(*mut pthread_t, C11Start, *mut c_void) -> c_int;
    thrd_join: fn(pthread_t, *mut c_int) -> c_int;
    thrd_detach: fn(pthread_t) -> c_int;
    thrd_exit: fn(c_int) -> !;
    thrd_current: fn() -> pthread_t;
    thrd_equal: fn(pthread_t, pthread_t) -> c_int;
    thrd_yield: fn();
    thrd_sleep: fn(*const timespec, *mut timespec) -> c_int;
    nanosleep: fn(*const timespec, *mut timespec) -> c_int;
    clock_nanosleep: fn(clockid_t, c_int, *const timespec, *mut timespec) -> c_int;
    usleep: fn(useconds_t) -> c_int;
    sleep: fn(c_uint) -> c_uint;
    pthread_mutex_lock: fn(*mut pthread_mutex_t) -> c_int;
    pthread_mutex_trylock: fn(*mut pthread_mutex_t) -> c_int;
    pthread_mutex_timedlock: fn(*mut pthread_mutex_t, *const timespec) -> c_int;
    pthread_mutex_clocklock: fn(*mut pthread_mutex_t, clockid_t, *const timespec) -> c_int;
    pthread_mutex_unlock: fn(*mut pthread_mutex_t) -> c_int;
    pthread_cond_wait @ "GLIBC_2.3.2": fn(*mut pthread_cond_t, *mut pthread_mutex_t) -> c_int;
    pthread_cond_timedwait @ "GLIBC_2.3.2": fn(*mut pthread_cond_t, *mut pthread_mutex_t, *const timespec) -> c_int;
    pthread_cond_clockwait: fn(*mut pthread_cond_t, *mut pthread_mutex_t, clockid_t, *const timespec) -> c_int;
    pthread_cond_signal @ "GLIBC_2.3.2": fn(*mut pthread_cond_t) -> c_int;
    pthread_cond_broadcast @ "GLIBC_2.3.2": fn(*mut pthread_cond_t) -> c_int;
    pthread_rwlock_rdlock: fn(*mut pthread_rwlock_t) -> c_int;
    pthread_rwlock_tryrdlock: fn(*mut pthread_rwlock_t) -> c_int;
    pthread_rwlock_timedrdlock: fn(*mut pthread_rwlock_t, *const timespec) -> c_int;
    pthread_rwlock_clockrdlock: fn(*mut pthread_rwlock_t, clockid_t, *const timespec) -> c_int;
    pthread_rwlock_wrlock: fn(*mut pthread_rwlock_t) -> c_int;
    pthread_rwlock_trywrlock: fn(*mut pthread_rwlock_t) -> c_int;
    pthread_rwlock_timedwrlock: fn(*mut pthread_rwlock_t, *const timespec) -> c_int;
    pthread_rwlock_clockwrlock: fn(*mut pthread_rwlock_t, clockid_t, *const timespec) -> c_int;
    pthread_rwlock_unlock: fn(*mut pthread_rwlock_t) -> c_int;
    sem_wait: fn(*mut sem_t) -> c_int;
    sem_trywait: fn(*mut sem_t) -> c_int;
    sem_timedwait: fn(*mut sem_t, *const timespec) -> c_int;
    sem_clockwait: fn(*mut sem_t, clockid_t, *const timespec) -> c_int;
    sem_post: fn(*mut sem_t) -> c_int;
    pthread_barrier_wait: fn(*mut pthread_barrier_t) -> c_int;
    pthread_once: fn(*mut pthread_once_t, OnceRoutine) -> c_int;
    mtx_lock: fn(*mut pthread_mutex_t) -> c_int;
    mtx_trylock: fn(*mut pthread_mutex_t) -> c_int;
    mtx_timedlock: fn(*mut pthread_mutex_t, *const timespec) -> c_int;
    mtx_unlock: fn(*mut pthread_mutex_t) -> c_int;
    cnd_wait: fn(*mut pthread_cond_t, *mut pthread_mutex_t) -> c_int;
    cnd_timedwait: fn(*mut pthread_cond_t, *mut pthread_mutex_t, *const timespec) -> c_int;
    cnd_signal: fn(*mut pthread_cond_t) -> c_int;
    cnd_broadcast: fn(*mut pthread_cond_t) -> c_int;
    call_once: fn(*mut pthread_once_t, OnceRoutine);
    socket: fn(c_int, c_int, c_int) -> c_int;
    socketpair: fn(c_int, c_int, c_int, *mut c_int) -> c_int;
    connect: fn(c_int, *const sockaddr, socklen_t) -> c_int;
    accept: fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int;
    accept4: fn(c_int, *mut sockaddr, *mut socklen_t, c_int) -> c_int;
    read: fn(c_int, *mut c_void, size_t) -> ssize_t;
    write: fn(c_int, *const c_void, size_t) -> ssize_t;
    readv: fn(c_int, *const iovec, c_int) -> ssize_t;
    writev: fn(c_int, *const iovec, c_int) -> ssize_t;
    recv: fn(c_int, *mut c_void, size_t, c_int) -> ssize_t;
    recvfrom: fn(c_int, *mut c_void, size_t, c_int, *mut sockaddr, *mut socklen_t) -> ssize_t;
    recvmsg: fn(c_int, *mut msghdr, c_int) -> ssize_t;
    recvmmsg: fn(c_int, *mut mmsghdr, c_uint, c_int, *mut timespec) -> c_int;
    send: fn(c_int, *const c_void, size_t, c_int) -> ssize_t;
    sendto: fn(c_int, *const c_void, size_t, c_int, *const sockaddr, socklen_t) -> ssize_t;
    sendmsg: fn(c_int, *const msghdr, c_int) -> ssize_t;
    sendmmsg: fn(c_int, *mut mmsghdr, c_uint, c_int) -> c_int;
    sendfile: fn(c_int, c_int, *mut off_t, size_t) -> ssize_t;
    sendfile64: fn(c_int, c_int, *mut off_t, size_t) -> ssize_t;
    __read_chk: fn(c_int, *mut c_void, size_t, size_t) -> ssize_t;
    __recv_chk: fn(c_int, *mut c_void, size_t, size_t, c_int) -> ssize_t;
    __recvfrom_chk: fn(c_int, *mut c_void, size_t, size_t, c_int, *mut sockaddr, *mut socklen_t) -> ssize_t;
    setsockopt: fn(c_int, c_int, c_int, *const c_void, socklen_t) -> c_int;
    close: fn(c_int) -> c_int;
    fclose: fn(*mut libc::FILE) -> c_int;
    close_range: fn(c_uint, c_uint, c_int) -> c_int;
    closefrom: fn(c_int);
    dup: fn(c_int) -> c_int;
    dup2: fn(c_int, c_int) -> c_int;
    dup3: fn(c_int, c_int, c_int) -> c_int;
    eventfd: fn(c_uint, c_int) -> c_int;
    epoll_create: fn(c_int) -> c_int;
    epoll_create1: fn(c_int) -> c_int;
    timerfd_create: fn(clockid_t, c_int) -> c_int;
    signalfd: fn(c_int, *const sigset_t, c_int) -> c_int;
    inotify_init: fn() -> c_int;
    inotify_init1: fn(c_int) -> c_int;
    memfd_create: fn(*const c_char, c_uint) -> c_int;
    pipe: fn(*mut c_int) -> c_int;
    pipe2: fn(*mut c_int, c_int) -> c_int;
    poll: fn(*mut pollfd, nfds_t, c_int) -> c_int;
    ppoll: fn(*mut pollfd, nfds_t, *const timespec, *const sigset_t) -> c_int;
    __poll_chk: fn(*mut pollfd, nfds_t, c_int, size_t) -> c_int;
    __ppoll_chk: fn(*mut pollfd, nfds_t, *const timespec, *const sigset_t, size_t) -> c_int;
    select: fn(c_int, *mut fd_set, *mut fd_set, *mut fd_set, *mut timeval) -> c_int;
    pselect: fn(c_int, *mut fd_set, *mut fd_set, *mut fd_set, *const timespec, *const sigset_t) -> c_int;
    epoll_wait: fn(c_int, *mut epoll_event, c_int, c_int) -> c_int;
    epoll_pwait: fn(c_int, *mut epoll_event, c_int, c_int, *const sigset_t) -> c_int;
    epoll_pwait2: fn(c_int, *mut epoll_event, c_int, *const timespec, *const sigset_t) -> c_int;
    pthread_sigmask: fn(c_int, *const sigset_t, *mut sigset_t) -> c_int;
    sigprocmask: fn(c_int, *const sigset_t, *mut sigset_t) -> c_int;
    sigaction: fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int;
    signal: fn(c_int, libc::sighandler_t) -> libc::sighandler_t;
    bsd_signal: fn(c_int, libc::sighandler_t) -> libc::sighandler_t;
    sysv_signal: fn(c_int, libc::sighandler_t) -> libc::sighandler_t;
    __sysv_signal: fn(c_int, libc::sighandler_t) -> libc::sighandler_t;
    siginterrupt: fn(c_int, c_int) -> c_int;
    sigset: fn(c_int, libc::sighandler_t) -> libc::sighandler_t;
    wait: fn(*mut c_int) -> libc::pid_t;
    system: fn(*const c_char) -> c_int;
    fgets: fn(*mut c_char, c_int, *mut libc::FILE) -> *mut c_char;
    fgets_unlocked: fn(*mut c_char, c_int, *mut libc::FILE) -> *mut c_char;
    __fgets_chk: fn(*mut c_char, size_t, c_int, *mut libc::FILE) -> *mut c_char;
    fgetc: fn(*mut libc::FILE) -> c_int;
    getc: fn(*mut libc::FILE) -> c_int;
    fgetc_unlocked: fn(*mut libc::FILE) -> c_int;
    getc_unlocked: fn(*mut libc::FILE) -> c_int;
    getchar: fn() -> c_int;
    getchar_unlocked: fn() -> c_int;
    __uflow: fn(*mut libc::FILE) -> c_int;
    getline: fn(*mut *mut c_char, *mut size_t, *mut libc::FILE) -> ssize_t;
    getdelim: fn(*mut *mut c_char, *mut size_t, c_int, *mut libc::FILE) -> ssize_t;
    __getdelim: fn(*mut *mut c_char, *mut size_t, c_int, *mut libc::FILE) -> ssize_t;
    fread: fn(*mut c_void, size_t, size_t, *mut libc::FILE) -> size_t;
    fread_unlocked: fn(*mut c_void, size_t, size_t, *mut libc::FILE) -> size_t;
    __fread_chk: fn(*mut c_void, size_t, size_t, size_t, *mut libc::FILE) -> size_t;
    pclose: fn(*mut libc::FILE) -> c_int;
    pause: fn() -> c_int;
    sigsuspend: fn(*const sigset_t) -> c_int;
    sigwaitinfo: fn(*const sigset_t, *mut libc::siginfo_t) -> c_int;
    sigtimedwait: fn(*const sigset_t, *mut libc::siginfo_t, *const timespec) -> c_int;
    sigwait: fn(*const sigset_t, *mut c_int) -> c_int;
    waitpid: fn(libc::pid_t, *mut c_int, c_int) -> libc::pid_t;
    wait4: fn(libc::pid_t, *mut c_int, c_int, *mut libc::rusage) -> libc::pid_t;
    wait3: fn(*mut c_int, c_int, *mut libc::rusage) -> libc::pid_t;
    waitid: fn(libc::idtype_t, libc::id_t, *mut libc::siginfo_t, c_int) -> c_int;
    pread: fn(c_int, *mut c_void, size_t, off_t) -> ssize_t;
    pread64: fn(c_int, *mut c_void, size_t, libc::off64_t) -> ssize_t;
    pwrite: fn(c_int, *const c_void, size_t, off_t) -> ssize_t;
    pwrite64: fn(c_int, *const c_void, size_t, libc::off64_t) -> ssize_t;
    __pread_chk: fn(c_int, *mut c_void, size_t, off_t, size_t) -> ssize_t;
    __pread64_chk: fn(c_int, *mut c_void, size_t, libc::off64_t, size_t) -> ssize_t;
    fsync: fn(c_int) -> c_int;
    fdatasync: fn(c_int) -> c_int;
    creat: fn(*const c_char, libc::mode_t) -> c_int;
    creat64: fn(*const c_char, libc::mode_t) -> c_int;
    __open_2: fn(*const c_char, c_int) -> c_int;
    __open64_2: fn(*const c_char, c_int) -> c_int;
    __openat_2: fn(c_int, *const c_char, c_int) -> c_int;
    __openat64_2: fn(c_int, *const c_char, c_int) -> c_int;
    getaddrinfo: fn(*const c_char, *const c_char, *const libc::addrinfo, *mut *mut libc::addrinfo) -> c_int;
    getnameinfo: fn(*const sockaddr, socklen_t, *mut c_char, socklen_t, *mut c_char, socklen_t, c_int) -> c_int;
    gethostbyname: fn(*const c_char) -> *mut libc::hostent;
    gethostbyname_r: fn(*const c_char, *mut libc::hostent, *mut c_char, size_t, *mut *mut libc::hostent, *mut c_int) -> c_int;
    gethostbyname2_r: fn(*const c_char, c_int, *mut libc::hostent, *mut c_char, size_t, *mut *mut libc::hostent, *mut c_int) -> c_int;
    gethostbyaddr_r: fn(*const c_void, socklen_t, c_int, *mut libc::hostent, *mut c_char, size_t, *mut *mut libc::hostent, *mut c_int) -> c_int;
}

/// The real variadic functions, called through variadic pointer types (trap 5).
pub struct Variadic {
    pub fcntl: unsafe extern "C" fn(c_int, c_int, ...) -> c_int,
    pub fcntl64: unsafe extern "C" fn(c_int, c_int, ...) -> c_int,
    pub ioctl: unsafe extern "C" fn(c_int, libc::c_ulong, ...) -> c_int,
    pub open: unsafe extern "C" fn(*const c_char, c_int, ...) -> c_int,
    pub open64: unsafe extern "C" fn(*const c_char, c_int, ...) -> c_int,
    pub openat: unsafe extern "C" fn(c_int, *const c_char, c_int, ...) -> c_int,
    pub openat64: unsafe extern "C" fn(c_int, *const c_char, c_int, ...) -> c_int,
}

static VARIADIC: OnceCell<Variadic> = OnceCell::new();

/// The real variadic functions, resolved on first use.
#[inline]
pub fn variadic() -> &'static Variadic {
    VARIADIC.get_or_init(|| {
        // SAFETY: each address is the libc function of that name, whose C type is declared.
        unsafe {
            Variadic {
                fcntl: core::mem::transmute::<
                    *const u8,
                    unsafe extern "C" fn(c_int, c_int, ...) -> c_int,
                >(next("fcntl\0", None)),
                fcntl64: core::mem::transmute::<
                    *const u8,
                    unsafe extern "C" fn(c_int, c_int, ...) -> c_int,
                >(next("fcntl64\0", None)),
                ioctl: core::mem::transmute::<
                    *const u8,
                    unsafe extern "C" fn(c_int, libc::c_ulong, ...) -> c_int,
                >(next("ioctl\0", None)),
                open: core::mem::transmute::<
                    *const u8,
                    unsafe extern "C" fn(*const c_char, c_int, ...) -> c_int,
                >(next("open\0", None)),
                open64: core::mem::transmute::<
                    *const u8,
                    unsafe extern "C" fn(*const c_char, c_int, ...) -> c_int,
                >(next("open64\0", None)),
                openat: core::mem::transmute::<
                    *const u8,
                    unsafe extern "C" fn(c_int, *const c_char, c_int, ...) -> c_int,
                >(next("openat\0", None)),
                openat64: core::mem::transmute::<
                    *const u8,
                    unsafe extern "C" fn(c_int, *const c_char, c_int, ...) -> c_int,
                >(next("openat64\0", None)),
            }
        }
    })
}

/// The next definition of `name` (NUL-terminated), at `version` where glibc versions it and
/// has that version on this architecture (`pthread_cond_*@GLIBC_2.3.2` on x86-64: a plain
/// `dlsym` may return the old 2.2.5 ABI).
fn next(name: &'static str, version: Option<&'static str>) -> *const u8 {
    if let Some(version) = version {
        // SAFETY: both strings are NUL-terminated literals.
        let found = unsafe {
            libc::dlvsym(
                libc::RTLD_NEXT,
                name.as_ptr().cast(),
                version.as_ptr().cast(),
            )
        };
        if !found.is_null() {
            return found.cast();
        }
    }
    // SAFETY: a NUL-terminated literal; redhook aborts (through our panic policy) if missing.
    unsafe { redhook::ld_preload::dlsym_next(name) }
}

static REAL: OnceCell<Real> = OnceCell::new();

/// The real-symbol table, resolved on first use.
#[inline]
pub fn get() -> &'static Real {
    match REAL.get() {
        Some(real) => real,
        None => REAL.get_or_init(resolve),
    }
}
