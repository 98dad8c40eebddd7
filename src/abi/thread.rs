//! Shims of the `thread` subsystem.

use crate::outcome::Outcome::{Bypass, Done};
use crate::real::{C11Start, KeyDestructor, StartRoutine};
use crate::thread::{self, JoinWait, c11, handles, keys, sync};
use libc::{
    c_char, c_int, c_void, clockid_t, cpu_set_t, pthread_attr_t, pthread_key_t, pthread_t,
    sched_param, sigval, size_t, timespec,
};

/// A pthread_timedjoin_np/clockjoin_np deadline on `clock`, as a CLOCK_MONOTONIC one (as the
/// timed waits of `thread::sync` take theirs); or the error code glibc gives for a bad clock or
/// time.
///
/// # Safety
/// `abstime` is null or readable.
unsafe fn join_deadline(clock: clockid_t, abstime: *const timespec) -> Result<JoinWait, c_int> {
    if !sync::supported_clock(clock) {
        return Err(libc::EINVAL);
    }
    if abstime.is_null() {
        return Ok(JoinWait::Forever);
    }
    // SAFETY: readable, not null (caller).
    unsafe { sync::deadline(clock, abstime) }.map(JoinWait::Until)
}

/// A join with a deadline: the green join, or glibc's error for bad arguments.
///
/// # Safety
/// As `pthread_clockjoin_np(3)`.
unsafe fn timed_join(
    t: pthread_t,
    ret: *mut *mut c_void,
    clock: clockid_t,
    abstime: *const timespec,
) -> crate::outcome::Outcome<c_int> {
    // SAFETY: per our caller.
    match unsafe { join_deadline(clock, abstime) } {
        // SAFETY: per our caller.
        Ok(wait) => unsafe { thread::join(t, ret, wait) },
        Err(_) => Bypass,
    }
}

/// For functions about the OS thread: a green handle stands for its hub's OS thread.
fn on_os_thread<T>(t: pthread_t, call: impl FnOnce(pthread_t) -> T) -> crate::outcome::Outcome<T>
where
    T: From<i32>,
{
    match handles::os_thread(t) {
        Ok(os) => Done(call(os)),
        Err(code) => Done(T::from(code)),
    }
}

#[macro_export]
#[doc(hidden)]
macro_rules! thread_hooks {
    ($($chain:tt)*) => { $crate::abi::next_hooks! { $($chain)* {
        /// Its caller's return address is where the dump says the thread was created.
        Thread (caller = created_at) fn pthread_create(t: *mut pthread_t, attr: *const pthread_attr_t, start: StartRoutine, arg: *mut c_void) -> c_int
            => thread::create(t, attr, start, arg, created_at);
        Thread fn pthread_join(t: pthread_t, ret: *mut *mut c_void) -> c_int => thread::join(t, ret, JoinWait::Forever);
        Thread fn pthread_tryjoin_np(t: pthread_t, ret: *mut *mut c_void) -> c_int => thread::join(t, ret, JoinWait::Try);
        Thread fn pthread_timedjoin_np(t: pthread_t, ret: *mut *mut c_void, abstime: *const timespec) -> c_int
            => timed_join(t, ret, libc::CLOCK_REALTIME, abstime);
        Thread fn pthread_clockjoin_np(t: pthread_t, ret: *mut *mut c_void, clock: clockid_t, abstime: *const timespec) -> c_int
            => timed_join(t, ret, clock, abstime);
        Thread fn pthread_detach(t: pthread_t) -> c_int => thread::detach(t);
        Thread fn pthread_self() -> pthread_t => thread::current();
        Thread fn pthread_equal(a: pthread_t, b: pthread_t) -> c_int => Done::<c_int>((a == b) as c_int);
        Thread fn pthread_setname_np(t: pthread_t, name: *const c_char) -> c_int => handles::set_name(t, name);
        Thread fn pthread_getname_np(t: pthread_t, buf: *mut c_char, len: size_t) -> c_int => handles::get_name(t, buf, len);
        Thread fn pthread_getattr_np(t: pthread_t, attr: *mut pthread_attr_t) -> c_int => handles::get_attr(t, attr);
        Thread fn pthread_kill(t: pthread_t, sig: c_int) -> c_int => handles::kill(t, sig);
        Thread fn pthread_cancel(t: pthread_t) -> c_int => handles::cancel(t);
        Thread fn pthread_sigqueue(t: pthread_t, sig: c_int, value: sigval) -> c_int
            => on_os_thread(t, |os| ($crate::real::get().pthread_sigqueue)(os, sig, value));
        Thread fn pthread_getcpuclockid(t: pthread_t, clock: *mut clockid_t) -> c_int
            => on_os_thread(t, |os| ($crate::real::get().pthread_getcpuclockid)(os, clock));
        Thread fn pthread_setschedparam(t: pthread_t, policy: c_int, param: *const sched_param) -> c_int
            => on_os_thread(t, |os| ($crate::real::get().pthread_setschedparam)(os, policy, param));
        Thread fn pthread_getschedparam(t: pthread_t, policy: *mut c_int, param: *mut sched_param) -> c_int
            => on_os_thread(t, |os| ($crate::real::get().pthread_getschedparam)(os, policy, param));
        Thread fn pthread_setschedprio(t: pthread_t, prio: c_int) -> c_int
            => on_os_thread(t, |os| ($crate::real::get().pthread_setschedprio)(os, prio));
        Thread fn pthread_setaffinity_np(t: pthread_t, size: size_t, set: *const cpu_set_t) -> c_int
            => thread::affinity::pthread_set_of(t, size, set);
        Thread fn pthread_getaffinity_np(t: pthread_t, size: size_t, set: *mut cpu_set_t) -> c_int
            => thread::affinity::pthread_get_of(t, size, set);
        /// A green thread's own mask (`thread::affinity`): kept, never applied.
        Thread fn sched_setaffinity(pid: libc::pid_t, size: size_t, set: *const cpu_set_t) -> c_int
            => thread::affinity::sched_set(pid, size, set);
        Thread fn sched_getaffinity(pid: libc::pid_t, size: size_t, set: *mut cpu_set_t) -> c_int
            => thread::affinity::sched_get(pid, size, set);
        Thread fn pthread_key_create(key: *mut pthread_key_t, destructor: Option<KeyDestructor>) -> c_int
            => keys::create(key, destructor);
        Thread fn pthread_key_delete(key: pthread_key_t) -> c_int => keys::delete(key);
        Thread fn pthread_getspecific(key: pthread_key_t) -> *mut c_void => keys::get(key);
        Thread fn pthread_setspecific(key: pthread_key_t, value: *const c_void) -> c_int => keys::set(key, value);
        Thread fn sched_yield() -> c_int => thread::yield_now();
        /// A C++ `thread_local`'s destructor: a green thread's own, run at its end (private TLS).
        Thread fn __cxa_thread_atexit_impl(dtor: Option<KeyDestructor>, obj: *mut c_void, dso: *mut c_void) -> c_int
            => { let _ = dso; thread::thread_atexit(dtor, obj) };
        Thread fn thrd_create(t: *mut pthread_t, start: C11Start, arg: *mut c_void) -> c_int => c11::create(t, start, arg);
        Thread fn thrd_join(t: pthread_t, result: *mut c_int) -> c_int => c11::join(t, result);
        Thread fn thrd_detach(t: pthread_t) -> c_int => c11::detach(t);
        Thread fn thrd_current() -> pthread_t => thread::current();
        Thread fn thrd_equal(a: pthread_t, b: pthread_t) -> c_int => Done::<c_int>((a == b) as c_int);
        /// The calling thread's own signal mask (see `signal::mask`); errors as return values.
        Thread fn pthread_sigmask(how: c_int, set: *const libc::sigset_t, old: *mut libc::sigset_t) -> c_int
            => match $crate::signal::mask::change(how, set, old) {
                None => Bypass,
                Some(Ok(())) => Done(0),
                Some(Err(code)) => Done(code),
            };
        /// The same, errors in errno.
        Thread fn sigprocmask(how: c_int, set: *const libc::sigset_t, old: *mut libc::sigset_t) -> c_int
            => match $crate::signal::mask::change(how, set, old) {
                None => Bypass,
                Some(Ok(())) => Done(0),
                Some(Err(code)) => $crate::outcome::Outcome::Errno(code),
            };
        // Exported by hand below: they do not return, or return nothing.
        Thread fn pthread_exit(retval: *mut c_void) -> !;
        Thread fn thrd_exit(result: c_int) -> !;
        Thread fn thrd_yield() -> ();
    } } };
}
crate::thread_hooks!([crate::abi::shims] []);

/// `pthread_exit`: ends a green thread; from `main`, first lets every green thread finish.
///
/// # Safety
/// As `pthread_exit(3)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn pthread_exit(retval: *mut c_void) -> ! {
    if !super::unengaged() {
        thread::exit(retval as usize);
    }
    // SAFETY: not a green thread (or not patched): the real exit of this OS thread.
    unsafe { (crate::real::get().pthread_exit)(retval) }
}

/// `thrd_exit`: as `pthread_exit`, with the int result glibc's `thrd_join` truncates back.
///
/// # Safety
/// As `thrd_exit(3)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn thrd_exit(result: c_int) -> ! {
    if !super::unengaged() {
        thread::exit(result as isize as usize);
    }
    // SAFETY: not a green thread (or not patched): the real exit of this OS thread.
    unsafe { (crate::real::get().thrd_exit)(result) }
}

/// `green_pthread_exit`: ends a green thread (the one way for a thread `green_pthread_create`
/// made to end early in a program that did not patch threads); from an OS thread, first lets
/// its hub's green threads finish, then ends it as `pthread_exit`.
///
/// # Safety
/// As `pthread_exit(3)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn green_pthread_exit(retval: *mut c_void) -> ! {
    let twin = crate::patch::Twin::enter();
    thread::exit(retval as usize);
    drop(twin);
    // SAFETY: an OS thread whose green threads have finished: its real exit.
    unsafe { (crate::real::get().pthread_exit)(retval) }
}

/// `green_thrd_exit`, as `green_pthread_exit`.
///
/// # Safety
/// As `thrd_exit(3)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn green_thrd_exit(result: c_int) -> ! {
    let twin = crate::patch::Twin::enter();
    thread::exit(result as isize as usize);
    drop(twin);
    // SAFETY: an OS thread whose green threads have finished: its real exit.
    unsafe { (crate::real::get().thrd_exit)(result) }
}

/// `green_thrd_yield`: lets the other green threads of this OS thread run.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn green_thrd_yield() {
    let _twin = crate::patch::Twin::enter();
    if thread::yield_now() == Bypass {
        // SAFETY: no arguments, no preconditions.
        unsafe { (crate::real::get().thrd_yield)() }
    }
}

/// `thrd_yield`.
///
/// # Safety
/// None beyond C11's.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn thrd_yield() {
    if super::unengaged() || thread::yield_now() == Bypass {
        // SAFETY: no arguments, no preconditions.
        unsafe { (crate::real::get().thrd_yield)() }
    }
}
