//! `pthread_cond_*`. Waiters queue in the parking lot under the condition variable's address
//! *before* they release the mutex, so a signal sent in between is never lost. glibc's
//! `pthread_cond_init` still writes the object: its clock and process-shared bits in `__wrefs`
//! tell which clock a timed wait uses and whether the object is shared with other processes.
//! A shared one with a glibc-protocol mutex is waited on by a pool thread, with glibc.

use super::mutex::{self, Wait};
use super::{deadline, supported_clock};
use crate::outcome::Outcome::{self, Bypass, Done};
use crate::park::{self, Parked, WakeList};
use crate::waiting::WaitOn;
use libc::{EINVAL, ETIMEDOUT, c_int, clockid_t, pthread_cond_t, pthread_mutex_t, timespec};

/// glibc's `__wrefs` bits: process-shared, and CLOCK_MONOTONIC for timed waits.
const SHARED_MASK: u32 = 1;
const CLOCK_MONOTONIC_MASK: u32 = 2;

/// `__wrefs`, at offset 36 of glibc's `struct __pthread_cond_s`.
///
/// # Safety
/// `c` points to a live `pthread_cond_t`.
unsafe fn wrefs(c: *const pthread_cond_t) -> u32 {
    // SAFETY: offset 36 lies within the 48-byte object; a racy read of flag bits that only
    // pthread_cond_init writes.
    unsafe { c.cast::<u8>().add(36).cast::<u32>().read_volatile() }
}

/// Is `c` shared with other processes (`pthread_condattr_setpshared`)?
///
/// # Safety
/// `c` points to a live `pthread_cond_t`.
unsafe fn shared(c: *const pthread_cond_t) -> bool {
    // SAFETY: per our contract.
    let wrefs = unsafe { wrefs(c) };
    wrefs & SHARED_MASK != 0
}

/// `pthread_cond_wait`, `timedwait` (the condition's clock) and `clockwait` (a given clock).
///
/// # Safety
/// `c` and `m` are initialised; `abstime`, when given, is readable.
pub unsafe fn wait(
    c: *mut pthread_cond_t,
    m: *mut pthread_mutex_t,
    timeout: Option<(Option<clockid_t>, *const timespec)>,
) -> Outcome<c_int> {
    if !crate::thread::active() {
        return Bypass;
    }
    // SAFETY: per our contract.
    if unsafe { shared(c) && mutex::is_foreign(m) } {
        // Other processes wait and signal with glibc's protocol, on a glibc-protocol mutex: a
        // pool thread makes the real wait. (With one of our own mutexes, glibc's unlock and
        // relock inside its wait would bypass our protocol, so such a condition variable is
        // waited on here, and its signals reach both.)
        // Addresses as integers: the objects stay valid while this call waits.
        let (c, m) = (c as usize, m as usize);
        let timeout = timeout.map(|(clock, at)| (clock, at as usize));
        let real = crate::real::get();
        // SAFETY: the caller's objects and time, valid while this call waits.
        return Done(crate::tpool::run(move || unsafe {
            let (c, m) = (c as *mut pthread_cond_t, m as *mut pthread_mutex_t);
            match timeout {
                None => (real.pthread_cond_wait)(c, m),
                Some((None, at)) => (real.pthread_cond_timedwait)(c, m, at as *const timespec),
                Some((Some(clock), at)) => {
                    (real.pthread_cond_clockwait)(c, m, clock, at as *const timespec)
                }
            }
        }));
    }
    let deadline = match timeout {
        None => None,
        Some((clock, abstime)) => {
            let clock = clock.unwrap_or_else(|| {
                // SAFETY: per our contract.
                if unsafe { wrefs(c) } & CLOCK_MONOTONIC_MASK != 0 {
                    libc::CLOCK_MONOTONIC
                } else {
                    libc::CLOCK_REALTIME
                }
            });
            if !supported_clock(clock) {
                return Done(EINVAL);
            }
            // SAFETY: readable (caller).
            match unsafe { deadline(clock, abstime) } {
                Ok(deadline) => Some(deadline),
                Err(code) => return Done(code),
            }
        }
    };
    // SAFETY: per our contract.
    Done(unsafe { wait_green(c as usize, m, deadline) })
}

/// Queues under `key`, releases `m`, parks, then takes `m` back.
///
/// # Safety
/// `m` is an initialised mutex.
pub(crate) unsafe fn wait_green(
    key: usize,
    m: *mut pthread_mutex_t,
    deadline: Option<u64>,
) -> c_int {
    // glibc answers at once when the mutex cannot be released by the caller.
    // SAFETY: m is initialised (caller).
    if unsafe { mutex::unlock_refused(m) } {
        return libc::EPERM;
    }
    let bucket = park::lock(key);
    let mut unlocked = 0;
    let parked = bucket.park(key, 0, deadline, WaitOn::Cond(key).word(), || {
        // SAFETY: m is initialised (caller).
        unlocked = unsafe { mutex::unlock_green(m) }
    });
    if unlocked != 0 {
        // The caller did not own the mutex (EPERM from an error-checking one): nothing was
        // released, so there is nothing to take back.
        return unlocked;
    }
    // SAFETY: as above.
    let relocked = unsafe { mutex::lock_green(m, Wait::Forever) };
    match (relocked, parked) {
        (0, Parked::TimedOut) => ETIMEDOUT,
        (code, _) => code,
    }
}

/// `pthread_cond_signal`.
///
/// # Safety
/// `c` is initialised.
pub unsafe fn signal(c: *mut pthread_cond_t) -> Outcome<c_int> {
    if !crate::thread::active() {
        return Bypass;
    }
    wake_one(c as usize);
    // SAFETY: per our contract.
    if unsafe { shared(c) } {
        // Waiters in glibc (pool threads, other processes) too.
        return Bypass;
    }
    Done(0)
}

/// `pthread_cond_broadcast`.
///
/// # Safety
/// `c` is initialised.
pub unsafe fn broadcast(c: *mut pthread_cond_t) -> Outcome<c_int> {
    if !crate::thread::active() {
        return Bypass;
    }
    wake_all(c as usize);
    // SAFETY: per our contract.
    if unsafe { shared(c) } {
        // Waiters in glibc (pool threads, other processes) too.
        return Bypass;
    }
    Done(0)
}

pub(crate) fn wake_one(key: usize) {
    let mut bucket = park::lock(key);
    let waker = bucket.unpark_first(key, |_| true);
    drop(bucket);
    if let Some(waker) = waker {
        waker.wake();
    }
}

pub(crate) fn wake_all(key: usize) {
    let mut wakers = WakeList::default();
    let mut bucket = park::lock(key);
    bucket.unpark_all(key, |_| true, &mut wakers);
    drop(bucket);
    wakers.wake_all();
}
