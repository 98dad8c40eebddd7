//! Shims of the `thread` subsystem's synchronisation primitives (pthread, semaphores, C11).

use super::shim;
use crate::real::OnceRoutine;
use crate::thread::c11;
use crate::thread::sync::{barrier, cond, mutex, once, rwlock, sem};
use libc::{
    c_int, clockid_t, pthread_barrier_t, pthread_cond_t, pthread_mutex_t, pthread_once_t,
    pthread_rwlock_t, sem_t, timespec,
};

const REALTIME: clockid_t = libc::CLOCK_REALTIME;

shim! {
    fn pthread_mutex_lock(m: *mut pthread_mutex_t) -> c_int => mutex::lock(m, mutex::Wait::Forever);
    fn pthread_mutex_trylock(m: *mut pthread_mutex_t) -> c_int => mutex::lock(m, mutex::Wait::Try);
    fn pthread_mutex_timedlock(m: *mut pthread_mutex_t, at: *const timespec) -> c_int
        => mutex::lock(m, mutex::Wait::Until(REALTIME, at));
    fn pthread_mutex_clocklock(m: *mut pthread_mutex_t, clock: clockid_t, at: *const timespec) -> c_int
        => mutex::lock(m, mutex::Wait::Until(clock, at));
    fn pthread_mutex_unlock(m: *mut pthread_mutex_t) -> c_int => mutex::unlock(m);

    fn pthread_cond_wait(c: *mut pthread_cond_t, m: *mut pthread_mutex_t) -> c_int => cond::wait(c, m, None);
    fn pthread_cond_timedwait(c: *mut pthread_cond_t, m: *mut pthread_mutex_t, at: *const timespec) -> c_int
        => cond::wait(c, m, Some((None, at)));
    fn pthread_cond_clockwait(c: *mut pthread_cond_t, m: *mut pthread_mutex_t, clock: clockid_t, at: *const timespec) -> c_int
        => cond::wait(c, m, Some((Some(clock), at)));
    fn pthread_cond_signal(c: *mut pthread_cond_t) -> c_int => cond::signal(c);
    fn pthread_cond_broadcast(c: *mut pthread_cond_t) -> c_int => cond::broadcast(c);

    fn pthread_rwlock_rdlock(l: *mut pthread_rwlock_t) -> c_int => rwlock::lock(l, false, rwlock::Wait::Forever);
    fn pthread_rwlock_tryrdlock(l: *mut pthread_rwlock_t) -> c_int => rwlock::lock(l, false, rwlock::Wait::Try);
    fn pthread_rwlock_timedrdlock(l: *mut pthread_rwlock_t, at: *const timespec) -> c_int
        => rwlock::lock(l, false, rwlock::Wait::Until(REALTIME, at));
    fn pthread_rwlock_clockrdlock(l: *mut pthread_rwlock_t, clock: clockid_t, at: *const timespec) -> c_int
        => rwlock::lock(l, false, rwlock::Wait::Until(clock, at));
    fn pthread_rwlock_wrlock(l: *mut pthread_rwlock_t) -> c_int => rwlock::lock(l, true, rwlock::Wait::Forever);
    fn pthread_rwlock_trywrlock(l: *mut pthread_rwlock_t) -> c_int => rwlock::lock(l, true, rwlock::Wait::Try);
    fn pthread_rwlock_timedwrlock(l: *mut pthread_rwlock_t, at: *const timespec) -> c_int
        => rwlock::lock(l, true, rwlock::Wait::Until(REALTIME, at));
    fn pthread_rwlock_clockwrlock(l: *mut pthread_rwlock_t, clock: clockid_t, at: *const timespec) -> c_int
        => rwlock::lock(l, true, rwlock::Wait::Until(clock, at));
    fn pthread_rwlock_unlock(l: *mut pthread_rwlock_t) -> c_int => rwlock::unlock(l);

    fn sem_wait(s: *mut sem_t) -> c_int => sem::wait(s, sem::Wait::Forever);
    fn sem_trywait(s: *mut sem_t) -> c_int => sem::wait(s, sem::Wait::Try);
    fn sem_timedwait(s: *mut sem_t, at: *const timespec) -> c_int => sem::wait(s, sem::Wait::Until(REALTIME, at));
    fn sem_clockwait(s: *mut sem_t, clock: clockid_t, at: *const timespec) -> c_int
        => sem::wait(s, sem::Wait::Until(clock, at));
    fn sem_post(s: *mut sem_t) -> c_int => sem::post(s);

    fn pthread_barrier_wait(b: *mut pthread_barrier_t) -> c_int => barrier::wait(b);
    fn pthread_once(flag: *mut pthread_once_t, init: OnceRoutine) -> c_int
        // SAFETY: the program's init routine, called once as pthread_once calls it.
        => once::once(flag, || unsafe { init() });

    fn mtx_lock(m: *mut pthread_mutex_t) -> c_int => c11::map(mutex::lock(m, mutex::Wait::Forever));
    fn mtx_trylock(m: *mut pthread_mutex_t) -> c_int => c11::map(mutex::lock(m, mutex::Wait::Try));
    fn mtx_timedlock(m: *mut pthread_mutex_t, at: *const timespec) -> c_int
        => c11::map(mutex::lock(m, mutex::Wait::Until(REALTIME, at)));
    fn mtx_unlock(m: *mut pthread_mutex_t) -> c_int => c11::map(mutex::unlock(m));
    fn cnd_wait(c: *mut pthread_cond_t, m: *mut pthread_mutex_t) -> c_int => c11::map(cond::wait(c, m, None));
    fn cnd_timedwait(c: *mut pthread_cond_t, m: *mut pthread_mutex_t, at: *const timespec) -> c_int
        => c11::map(cond::wait(c, m, Some((Some(REALTIME), at))));
    fn cnd_signal(c: *mut pthread_cond_t) -> c_int => c11::map(cond::signal(c));
    fn cnd_broadcast(c: *mut pthread_cond_t) -> c_int => c11::map(cond::broadcast(c));
}

/// C11 `call_once`.
///
/// # Safety
/// As `call_once(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn call_once(flag: *mut pthread_once_t, init: OnceRoutine) {
    if super::unengaged()
        // SAFETY: the flag and routine are the caller's, as for pthread_once.
        || unsafe { once::once(flag, || init()) } == crate::outcome::Outcome::Bypass
    {
        // SAFETY: as above.
        unsafe { (crate::real::get().call_once)(flag, init) }
    }
}
