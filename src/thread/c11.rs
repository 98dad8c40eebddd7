//! C11 threads (`thrd_*`). glibc implements them on internal aliases of the pthread functions,
//! which never reach our pthread hooks (trap 1), so each is hooked on its own.

use super::{JoinWait, active, green_of};
use crate::green::Entry;
use crate::outcome::Outcome::{self, Bypass, Done};
use libc::{c_int, pthread_t};

/// glibc's `thrd_*` result codes.
pub const THRD_SUCCESS: c_int = 0;
pub const THRD_BUSY: c_int = 1;
pub const THRD_ERROR: c_int = 2;
pub const THRD_NOMEM: c_int = 3;
pub const THRD_TIMEDOUT: c_int = 4;

/// glibc's `thrd_err_map`.
fn from_errno(code: c_int) -> c_int {
    match code {
        0 => THRD_SUCCESS,
        libc::ENOMEM => THRD_NOMEM,
        libc::ETIMEDOUT => THRD_TIMEDOUT,
        libc::EBUSY => THRD_BUSY,
        _ => THRD_ERROR,
    }
}

/// `thrd_create`.
///
/// # Safety
/// `out` is writable.
pub unsafe fn create(
    out: *mut pthread_t,
    start: crate::real::C11Start,
    arg: *mut libc::c_void,
) -> Outcome<c_int> {
    if !active() {
        return Bypass;
    }
    let Some(hub) = super::hub_or_native() else {
        return Bypass;
    };
    // SAFETY: out is writable (caller); a null attribute means defaults.
    Done(from_errno(unsafe {
        super::spawn(hub, out, core::ptr::null(), Entry::C11(start, arg), 0)
    }))
}

/// `thrd_join`: the thread's int result, truncated from the pointer-sized value as glibc does.
///
/// # Safety
/// `result` is null or writable.
pub unsafe fn join(handle: pthread_t, result: *mut c_int) -> Outcome<c_int> {
    if !active() {
        return Bypass;
    }
    let green = match green_of(handle) {
        Ok(Some(green)) => green,
        Ok(None) => return Bypass,
        Err(code) => return Done(from_errno(code)),
    };
    match super::join_green(green, JoinWait::Forever) {
        Ok(value) => {
            if !result.is_null() {
                // SAFETY: writable (caller).
                unsafe { *result = value as c_int };
            }
            Done(THRD_SUCCESS)
        }
        Err(code) => Done(from_errno(code)),
    }
}

/// `thrd_detach`.
pub fn detach(handle: pthread_t) -> Outcome<c_int> {
    map(super::detach(handle))
}

/// A pthread-style outcome as a `thrd_*` one.
pub fn map(outcome: Outcome<c_int>) -> Outcome<c_int> {
    match outcome {
        Done(code) => Done(from_errno(code)),
        other => other,
    }
}
