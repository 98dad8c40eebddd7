//! Shims of the `thread` subsystem's synchronisation primitives (pthread, semaphores, C11).

use crate::real::OnceRoutine;
use crate::thread::c11;
use crate::thread::sync::{barrier, cond, mutex, once, rwlock, sem};
use libc::{
    c_int, clockid_t, pthread_barrier_t, pthread_cond_t, pthread_mutex_t, pthread_once_t,
    pthread_rwlock_t, sem_t, timespec,
};

const REALTIME: clockid_t = libc::CLOCK_REALTIME;

#[macro_export]
#[doc(hidden)]
macro_rules! sync_hooks {
    ($($chain:tt)*) => { $crate::abi::next_hooks! { $($chain)* {
        Thread fn pthread_mutex_lock(m: *mut pthread_mutex_t) -> c_int => mutex::lock(m, mutex::Wait::Forever);
        Thread fn pthread_mutex_trylock(m: *mut pthread_mutex_t) -> c_int => mutex::lock(m, mutex::Wait::Try);
        Thread fn pthread_mutex_timedlock(m: *mut pthread_mutex_t, at: *const timespec) -> c_int
            => mutex::lock(m, mutex::Wait::Until(REALTIME, at));
        Thread fn pthread_mutex_clocklock(m: *mut pthread_mutex_t, clock: clockid_t, at: *const timespec) -> c_int
            => mutex::lock(m, mutex::Wait::Until(clock, at));
        Thread fn pthread_mutex_unlock(m: *mut pthread_mutex_t) -> c_int => mutex::unlock(m);

        Thread(version = "GLIBC_2.3.2") fn pthread_cond_wait(c: *mut pthread_cond_t, m: *mut pthread_mutex_t) -> c_int => cond::wait(c, m, None);
        Thread(version = "GLIBC_2.3.2") fn pthread_cond_timedwait(c: *mut pthread_cond_t, m: *mut pthread_mutex_t, at: *const timespec) -> c_int
            => cond::wait(c, m, Some((None, at)));
        Thread fn pthread_cond_clockwait(c: *mut pthread_cond_t, m: *mut pthread_mutex_t, clock: clockid_t, at: *const timespec) -> c_int
            => cond::wait(c, m, Some((Some(clock), at)));
        Thread(version = "GLIBC_2.3.2") fn pthread_cond_signal(c: *mut pthread_cond_t) -> c_int => cond::signal(c);
        Thread(version = "GLIBC_2.3.2") fn pthread_cond_broadcast(c: *mut pthread_cond_t) -> c_int => cond::broadcast(c);

        Thread fn pthread_rwlock_rdlock(l: *mut pthread_rwlock_t) -> c_int => rwlock::lock(l, false, rwlock::Wait::Forever);
        Thread fn pthread_rwlock_tryrdlock(l: *mut pthread_rwlock_t) -> c_int => rwlock::lock(l, false, rwlock::Wait::Try);
        Thread fn pthread_rwlock_timedrdlock(l: *mut pthread_rwlock_t, at: *const timespec) -> c_int
            => rwlock::lock(l, false, rwlock::Wait::Until(REALTIME, at));
        Thread fn pthread_rwlock_clockrdlock(l: *mut pthread_rwlock_t, clock: clockid_t, at: *const timespec) -> c_int
            => rwlock::lock(l, false, rwlock::Wait::Until(clock, at));
        Thread fn pthread_rwlock_wrlock(l: *mut pthread_rwlock_t) -> c_int => rwlock::lock(l, true, rwlock::Wait::Forever);
        Thread fn pthread_rwlock_trywrlock(l: *mut pthread_rwlock_t) -> c_int => rwlock::lock(l, true, rwlock::Wait::Try);
        Thread fn pthread_rwlock_timedwrlock(l: *mut pthread_rwlock_t, at: *const timespec) -> c_int
            => rwlock::lock(l, true, rwlock::Wait::Until(REALTIME, at));
        Thread fn pthread_rwlock_clockwrlock(l: *mut pthread_rwlock_t, clock: clockid_t, at: *const timespec) -> c_int
            => rwlock::lock(l, true, rwlock::Wait::Until(clock, at));
        Thread fn pthread_rwlock_unlock(l: *mut pthread_rwlock_t) -> c_int => rwlock::unlock(l);

        Thread fn sem_wait(s: *mut sem_t) -> c_int => sem::wait(s, sem::Wait::Forever);
        Thread fn sem_trywait(s: *mut sem_t) -> c_int => sem::wait(s, sem::Wait::Try);
        Thread fn sem_timedwait(s: *mut sem_t, at: *const timespec) -> c_int => sem::wait(s, sem::Wait::Until(REALTIME, at));
        Thread fn sem_clockwait(s: *mut sem_t, clock: clockid_t, at: *const timespec) -> c_int
            => sem::wait(s, sem::Wait::Until(clock, at));
        Thread fn sem_post(s: *mut sem_t) -> c_int => sem::post(s);

        Thread fn pthread_barrier_wait(b: *mut pthread_barrier_t) -> c_int => barrier::wait(b);
        Thread fn pthread_once(flag: *mut pthread_once_t, init: OnceRoutine) -> c_int
            // SAFETY: the program's init routine, called once as pthread_once calls it.
            => once::once(flag, || unsafe { init() });

        Thread fn mtx_lock(m: *mut pthread_mutex_t) -> c_int => c11::map(mutex::lock(m, mutex::Wait::Forever));
        Thread fn mtx_trylock(m: *mut pthread_mutex_t) -> c_int => c11::map(mutex::lock(m, mutex::Wait::Try));
        Thread fn mtx_timedlock(m: *mut pthread_mutex_t, at: *const timespec) -> c_int
            => c11::map(mutex::lock(m, mutex::Wait::Until(REALTIME, at)));
        Thread fn mtx_unlock(m: *mut pthread_mutex_t) -> c_int => c11::map(mutex::unlock(m));
        Thread fn cnd_wait(c: *mut pthread_cond_t, m: *mut pthread_mutex_t) -> c_int => c11::map(cond::wait(c, m, None));
        Thread fn cnd_timedwait(c: *mut pthread_cond_t, m: *mut pthread_mutex_t, at: *const timespec) -> c_int
            => c11::map(cond::wait(c, m, Some((Some(REALTIME), at))));
        Thread fn cnd_signal(c: *mut pthread_cond_t) -> c_int => c11::map(cond::signal(c));
        Thread fn cnd_broadcast(c: *mut pthread_cond_t) -> c_int => c11::map(cond::broadcast(c));
        // Exported by hand below: returns nothing.
        Thread fn call_once(flag: *mut pthread_once_t, init: OnceRoutine) -> ();
    } } };
}
// Every op here is the real function and nothing else while `thread` is off (each begins
// with `thread::active()`): a process without it calls glibc straight from the export.
crate::sync_hooks!([crate::abi::shims_plain_when_off] []);

/// C11 `call_once`.
///
/// # Safety
/// As `call_once(3)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn call_once(flag: *mut pthread_once_t, init: OnceRoutine) {
    if super::unengaged()
        // SAFETY: the flag and routine are the caller's, as for pthread_once.
        || unsafe { once::once(flag, || init()) } == crate::outcome::Outcome::Bypass
    {
        // SAFETY: as above.
        unsafe { (crate::real::get().call_once)(flag, init) }
    }
}

/// `green_call_once`: `call_once`, a concurrent caller parking green.
///
/// # Safety
/// As `call_once(3)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn green_call_once(flag: *mut pthread_once_t, init: OnceRoutine) {
    let _twin = crate::patch::Twin::enter();
    // SAFETY: the flag and routine are the caller's, as for pthread_once.
    if unsafe { once::once(flag, || init()) } == crate::outcome::Outcome::Bypass {
        // SAFETY: as above.
        unsafe { (crate::real::get().call_once)(flag, init) }
    }
}
