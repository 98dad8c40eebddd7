//! `sem_*` for unnamed process-private semaphores, in glibc's `sem_t`: the 64-bit `data` word
//! holds the value (low half, which `sem_getvalue` reads unchanged) and the number of parked
//! waiters (high half). A post with waiters hands its unit straight to the first (FIFO).
//! Named and process-shared semaphores (`private` = FUTEX_SHARED) follow glibc's protocol,
//! which other processes share: their waits poll green when other green threads could run.

use super::poll_foreign;
use crate::outcome::Outcome::{self, Bypass, Done, Errno};
use crate::park::{self, Parked};
use crate::waiting::WaitOn;
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use libc::{EAGAIN, EOVERFLOW, ETIMEDOUT, c_int, sem_t};

const VALUE_MASK: u64 = 0xffff_ffff;
const ONE_WAITER: u64 = 1 << 32;
const SEM_VALUE_MAX: u64 = i32::MAX as u64;
/// glibc's FUTEX_SHARED, in `private` for named and `pshared` semaphores.
const FUTEX_SHARED: i32 = 128;

/// # Safety
/// `s` points to a live `sem_t`.
unsafe fn data(s: *mut sem_t) -> &'static AtomicU64 {
    // SAFETY: `data` is the first, 8-byte aligned field of glibc's `struct new_sem`.
    unsafe { &*s.cast::<AtomicU64>() }
}

/// # Safety
/// `s` points to a live `sem_t`.
unsafe fn ours(s: *mut sem_t) -> bool {
    // SAFETY: `private` is at offset 8 of the 32-byte object.
    crate::thread::active()
        && unsafe { (*s.cast::<u8>().add(8).cast::<AtomicI32>()).load(Ordering::Relaxed) }
            != FUTEX_SHARED
}

pub use super::Wait;

fn try_take(word: &AtomicU64) -> bool {
    let mut d = word.load(Ordering::Relaxed);
    while d & VALUE_MASK > 0 {
        match word.compare_exchange_weak(d, d - 1, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(now) => d = now,
        }
    }
    false
}

/// `sem_wait`, `sem_trywait`, `sem_timedwait`, `sem_clockwait` (-1 and errno on failure).
///
/// # Safety
/// `s` is initialised; a timespec in `wait` is readable.
pub unsafe fn wait(s: *mut sem_t, wait: Wait) -> Outcome<c_int> {
    // SAFETY: per our contract.
    if !unsafe { ours(s) } {
        // SAFETY: per our contract.
        return unsafe { foreign_wait(s, wait) };
    }
    // glibc checks the clock and the time before anything else.
    // SAFETY: readable (caller).
    let deadline = match unsafe { wait.deadline() } {
        Ok(deadline) => deadline,
        Err(code) => return Errno(code),
    };
    // SAFETY: per our contract.
    let word = unsafe { data(s) };
    if try_take(word) {
        return Done(0);
    }
    if matches!(wait, Wait::Try) {
        return Errno(EAGAIN);
    }
    let key = s as usize;
    loop {
        let bucket = park::lock(key);
        if try_take(word) {
            return Done(0);
        }
        let d = word.load(Ordering::Relaxed);
        if d & VALUE_MASK != 0
            || word
                .compare_exchange(d, d + ONE_WAITER, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            continue;
        }
        match bucket.park(key, 0, deadline, WaitOn::Sem(key).word(), || {}) {
            Parked::Unparked { handed_off: true } => return Done(0),
            Parked::Unparked { handed_off: false } => {
                word.fetch_sub(ONE_WAITER, Ordering::Relaxed);
            }
            Parked::TimedOut => {
                word.fetch_sub(ONE_WAITER, Ordering::Relaxed);
                return Errno(ETIMEDOUT);
            }
        }
    }
}

/// `sem_post`.
///
/// # Safety
/// `s` is initialised.
pub unsafe fn post(s: *mut sem_t) -> Outcome<c_int> {
    // SAFETY: per our contract.
    if !unsafe { ours(s) } {
        return Bypass;
    }
    // SAFETY: per our contract.
    let word = unsafe { data(s) };
    let mut d = word.load(Ordering::Relaxed);
    while d < ONE_WAITER {
        if d & VALUE_MASK >= SEM_VALUE_MAX {
            return Errno(EOVERFLOW);
        }
        match word.compare_exchange_weak(d, d + 1, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return Done(0),
            Err(now) => d = now,
        }
    }
    let key = s as usize;
    let mut bucket = park::lock(key);
    let waker = bucket.hand_off_first(key);
    match waker {
        Some(waker) => {
            word.fetch_sub(ONE_WAITER, Ordering::Release);
            drop(bucket);
            waker.wake();
        }
        None => {
            if word.load(Ordering::Relaxed) & VALUE_MASK >= SEM_VALUE_MAX {
                return Errno(EOVERFLOW);
            }
            word.fetch_add(1, Ordering::Release);
        }
    }
    Done(0)
}

/// A named or process-shared semaphore: glibc's protocol, polled green when others could run.
///
/// # Safety
/// `s` is initialised; a timespec in `wait` is readable.
unsafe fn foreign_wait(s: *mut sem_t, wait: Wait) -> Outcome<c_int> {
    if !crate::thread::active() || matches!(wait, Wait::Try) || !super::others_could_run() {
        return Bypass;
    }
    // SAFETY: readable (caller).
    let deadline = match unsafe { wait.deadline() } {
        Ok(deadline) => deadline,
        Err(code) => return Errno(code),
    };
    let real = crate::real::get();
    let rc = poll_foreign(EAGAIN, deadline, || {
        // SAFETY: s is initialised (caller).
        if unsafe { (real.sem_trywait)(s) } == 0 {
            0
        } else {
            crate::sys::errno()
        }
    });
    if rc == 0 { Done(0) } else { Errno(rc) }
}
