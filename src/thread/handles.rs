//! The pthread functions that take a `pthread_t` and would crash on a green handle in glibc
//! (trap 7): names, attributes and CPU affinity (`affinity`) are per green thread; scheduling,
//! CPU clocks and signals belong to the OS thread the green thread runs on.

use super::{active, green_handle as green, green_of};
use crate::green::Join;
use crate::outcome::Outcome::{self, Done};
use libc::{ENOTSUP, ERANGE, c_char, c_int, pthread_attr_t, pthread_t, size_t};

/// glibc's TASK_COMM_LEN: names are at most 15 bytes plus the NUL.
const NAME_LEN: usize = 16;

/// The OS thread behind a handle: the hub's for a green thread, the handle itself otherwise.
pub fn os_thread(handle: pthread_t) -> Result<pthread_t, c_int> {
    if !active() {
        return Ok(handle);
    }
    match green_of(handle)? {
        Some(green) => Ok(green.hub().os_thread()),
        None => Ok(handle),
    }
}

/// `pthread_setname_np`.
///
/// # Safety
/// `name` is a NUL-terminated string.
pub unsafe fn set_name(handle: pthread_t, name: *const c_char) -> Outcome<c_int> {
    let green = match green(handle) {
        Ok(green) => green,
        Err(outcome) => return outcome,
    };
    // SAFETY: name is NUL-terminated (caller).
    let bytes = unsafe { core::ffi::CStr::from_ptr(name) }.to_bytes();
    if bytes.len() >= NAME_LEN {
        return Done(ERANGE);
    }
    let mut stored = green.name.lock().unwrap_or_else(|e| e.into_inner());
    *stored = [0; NAME_LEN];
    stored[..bytes.len()].copy_from_slice(bytes);
    Done(0)
}

/// `pthread_getname_np`. A green thread never named reports its OS thread's name, as a new
/// pthread reports the name it inherited.
///
/// # Safety
/// `buf` is writable for `len` bytes.
pub unsafe fn get_name(handle: pthread_t, buf: *mut c_char, len: size_t) -> Outcome<c_int> {
    let green = match green(handle) {
        Ok(green) => green,
        Err(outcome) => return outcome,
    };
    if len < NAME_LEN {
        return Done(ERANGE);
    }
    let stored = *green.name.lock().unwrap_or_else(|e| e.into_inner());
    if stored[0] == 0 {
        // SAFETY: the OS thread's handle is real; buf/len per our caller.
        return Done(unsafe {
            (crate::real::get().pthread_getname_np)(green.hub().os_thread(), buf, len)
        });
    }
    // SAFETY: buf has room for NAME_LEN bytes (checked above); stored is NUL-terminated.
    unsafe { core::ptr::copy_nonoverlapping(stored.as_ptr().cast(), buf, NAME_LEN) };
    Done(0)
}

/// `pthread_getattr_np`: the green thread's own stack, guard and detach state.
///
/// # Safety
/// `attr` is writable (it is initialised here, as glibc does).
pub unsafe fn get_attr(handle: pthread_t, attr: *mut pthread_attr_t) -> Outcome<c_int> {
    let green = match green(handle) {
        Ok(green) => green,
        Err(outcome) => return outcome,
    };
    let detached = matches!(
        *green.join.lock().unwrap_or_else(|e| e.into_inner()),
        Join::Detached
    );
    let state = if detached {
        libc::PTHREAD_CREATE_DETACHED
    } else {
        libc::PTHREAD_CREATE_JOINABLE
    };
    // SAFETY: attr is writable (caller); pthread_attr_init makes it a valid object first.
    unsafe {
        let rc = libc::pthread_attr_init(attr);
        if rc != 0 {
            return Done(rc);
        }
        // A thread not started yet reports its reserved stack, and then runs on it.
        let stack = green.stack();
        libc::pthread_attr_setstack(attr, stack.low as *mut libc::c_void, stack.size);
        libc::pthread_attr_setguardsize(attr, stack.guard);
        libc::pthread_attr_setdetachstate(attr, state);
        // As glibc's: the thread's CPUs too.
        if let Some(mask) = super::affinity::for_attr(green) {
            let rc = libc::pthread_attr_setaffinity_np(
                attr,
                core::mem::size_of_val(&mask),
                mask.as_ptr().cast(),
            );
            if rc != 0 {
                libc::pthread_attr_destroy(attr);
                return Done(rc);
            }
        }
    }
    Done(0)
}

/// `pthread_kill`: signal 0 checks the green thread is alive. A signal for a thread of the
/// caller's own hub is that thread's alone, as natively (see `signal::mask::send_to`) when the program
/// handles it or the thread blocks it, and so is one for a thread of another of the library's
/// hubs (`GREENWORLD_HUBS`), handed to that hub; otherwise (its default action, or a thread of a
/// real thread's hub) it goes to the OS thread.
pub fn kill(handle: pthread_t, sig: c_int) -> Outcome<c_int> {
    let green = match green(handle) {
        Ok(green) => green,
        Err(outcome) => return outcome,
    };
    if sig == 0 {
        return Done(0);
    }
    if !(1..=64).contains(&sig) {
        return Done(libc::EINVAL);
    }
    let hub = green.hub();
    let here = crate::hub::Hub::current().is_some_and(|current| core::ptr::eq(current, hub));
    let blocked = green.sigmask.get() & crate::signal::mask::bit(sig) != 0;
    if blocked || crate::signal::handled(sig) {
        if here {
            crate::signal::mask::send_to(hub, green, sig);
            return Done(0);
        }
        if crate::hub::Hub::several() {
            hub.send_signal(green, sig);
            return Done(0);
        }
    }
    // SAFETY: a real, live pthread_t.
    Done(unsafe { (crate::real::get().pthread_kill)(green.hub().os_thread(), sig) })
}

/// `pthread_cancel`: not supported for green threads yet; a clear error, never a crash.
pub fn cancel(handle: pthread_t) -> Outcome<c_int> {
    if let Err(outcome) = green(handle) {
        return outcome;
    }
    crate::log!(
        Warn,
        "pthread_cancel of a green thread is not supported; it returns ENOTSUP"
    );
    Done(ENOTSUP)
}
