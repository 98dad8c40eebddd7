//! Name resolution (eventlet's `tpool` for DNS): glibc's resolver blocks inside libc, where no
//! hook sees its `poll` and `recv`, so `getaddrinfo` and friends run on a pool thread while the
//! green caller parks. errno and `h_errno` are per OS thread: they come back with the result.
//! Results (allocated by glibc) are the caller's to free as usual.

use crate::outcome::Outcome::{self, Bypass, Done};
use libc::c_int;

unsafe extern "C" {
    fn __h_errno_location() -> *mut c_int;
}

/// Runs a resolver call on the pool when the socket subsystem is patched and other green threads
/// could run; carries errno and h_errno back.
pub fn resolve<R: Send>(call: impl FnOnce() -> R + Send) -> Outcome<R> {
    if !crate::patch::active(crate::patch::Subsystem::Socket) || !crate::tpool::would_park() {
        return Bypass;
    }
    let (result, errno, h_errno) = crate::tpool::run(move || {
        let result = call();
        // SAFETY: glibc's per-thread h_errno of the pool thread.
        (result, crate::sys::errno(), unsafe {
            *__h_errno_location()
        })
    });
    crate::sys::set_errno(errno);
    // SAFETY: the caller's own h_errno.
    unsafe { *__h_errno_location() = h_errno };
    Done(result)
}
