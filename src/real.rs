//! The real libc functions behind every hook: one table, resolved once with
//! `dlsym(RTLD_NEXT)` (through redhook) on first use, which may be before `main` and from
//! another library's constructor (trap 3). A successful `dlsym` does not allocate on
//! glibc >= 2.34; every name here exists in glibc 2.34+, so none fails.

use libc::{
    c_char, c_int, c_uint, c_void, clockid_t, cpu_set_t, pthread_attr_t, pthread_key_t, pthread_t,
    sched_param, sigval, size_t, timespec, useconds_t,
};
use once_cell::sync::OnceCell;

pub type StartRoutine = extern "C" fn(*mut c_void) -> *mut c_void;
pub type C11Start = extern "C" fn(*mut c_void) -> c_int;
pub type KeyDestructor = unsafe extern "C" fn(*mut c_void);

macro_rules! real_table {
    ($( $name:ident : fn($($arg:ty),*) $(-> $ret:ty)?; )*) => {
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
                            redhook::ld_preload::dlsym_next(concat!(stringify!($name), "\0")),
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
