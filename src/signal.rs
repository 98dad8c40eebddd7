//! Signal handlers, seen by the hub: a handler the program installs runs through a trampoline
//! that notes which signal arrived, then calls the program's handler unchanged. Whenever the
//! hub next looks (at once when it sleeps in epoll, else when the running green thread parks),
//! a waiting call that a native thread would see interrupted returns EINTR.
//!
//! `sigaction` still reports the program's own handler, flags and mask.

use core::sync::atomic::{AtomicUsize, Ordering};
use libc::{SIG_DFL, SIG_IGN, c_int, c_void, siginfo_t};

type Action = libc::sigaction;

const SIGNALS: usize = 65;

/// The program's handler per signal (0: none of ours installed), and its sa_flags.
static HANDLERS: [AtomicUsize; SIGNALS] = [const { AtomicUsize::new(0) }; SIGNALS];
static FLAGS: [AtomicUsize; SIGNALS] = [const { AtomicUsize::new(0) }; SIGNALS];

extern "C" fn trampoline(sig: c_int, info: *mut siginfo_t, context: *mut c_void) {
    let index = sig as usize;
    if index < SIGNALS {
        if let Some(hub) = crate::hub::Hub::current() {
            hub.signal_arrived(sig);
        }
        let handler = HANDLERS[index].load(Ordering::Acquire);
        let flags = FLAGS[index].load(Ordering::Acquire) as c_int;
        if handler != 0 && handler != SIG_IGN && handler != SIG_DFL {
            let saved = crate::sys::errno();
            if flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the program registered this three-argument handler for `sig`.
                let f: extern "C" fn(c_int, *mut siginfo_t, *mut c_void) =
                    unsafe { core::mem::transmute(handler) };
                f(sig, info, context);
            } else {
                // SAFETY: the program registered this one-argument handler for `sig`.
                let f: extern "C" fn(c_int) = unsafe { core::mem::transmute(handler) };
                f(sig);
            }
            crate::sys::set_errno(saved);
        }
    }
}

/// Did the program install `sig`'s handler with SA_RESTART?
pub fn restarts(sig: c_int) -> bool {
    (sig as usize) < SIGNALS
        && FLAGS[sig as usize].load(Ordering::Relaxed) as c_int & libc::SA_RESTART != 0
}

fn is_function(handler: usize) -> bool {
    handler != SIG_DFL && handler != SIG_IGN
}

/// `sigaction`.
///
/// # Safety
/// As `sigaction(2)`.
pub unsafe fn sigaction(sig: c_int, act: *const Action, old: *mut Action) -> c_int {
    let real = crate::real::get();
    let index = sig as usize;
    if !(1..SIGNALS).contains(&index) || sig == libc::SIGKILL || sig == libc::SIGSTOP {
        // SAFETY: the caller's arguments, to the real function.
        return unsafe { (real.sigaction)(sig, act, old) };
    }
    let program = (
        HANDLERS[index].load(Ordering::Acquire),
        FLAGS[index].load(Ordering::Acquire),
    );
    // SAFETY: readable when non-null (caller).
    let wanted = unsafe { act.as_ref() }.copied();
    let ours = wanted.map(|mut act| {
        if is_function(act.sa_sigaction) {
            act.sa_sigaction = trampoline as *const () as usize;
            act.sa_flags |= libc::SA_SIGINFO;
        }
        act
    });
    // SAFETY: an all-zero sigaction is a valid value for the kernel to fill.
    let mut previous: Action = unsafe { core::mem::zeroed() };
    // SAFETY: valid pointers: our copy (or null) and a local.
    let rc = unsafe {
        (real.sigaction)(
            sig,
            ours.as_ref().map_or(core::ptr::null(), |a| a),
            &mut previous,
        )
    };
    if rc != 0 {
        return rc;
    }
    if let Some(act) = wanted {
        let handler = if is_function(act.sa_sigaction) {
            act.sa_sigaction
        } else {
            0
        };
        FLAGS[index].store(act.sa_flags as usize, Ordering::Release);
        HANDLERS[index].store(handler, Ordering::Release);
    }
    // SAFETY: writable when non-null (caller).
    if let Some(old) = unsafe { old.as_mut() } {
        *old = previous;
        if previous.sa_sigaction == trampoline as *const () as usize {
            old.sa_sigaction = program.0;
            old.sa_flags = program.1 as c_int;
        }
    }
    0
}

/// `signal`: glibc's BSD semantics (SA_RESTART), through `sigaction`.
///
/// # Safety
/// As `signal(2)`.
pub unsafe fn signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    // SAFETY: all-zero is a valid sigaction; fields are set below.
    let mut act: Action = unsafe { core::mem::zeroed() };
    act.sa_sigaction = handler;
    act.sa_flags = libc::SA_RESTART;
    // SAFETY: as above.
    let mut old: Action = unsafe { core::mem::zeroed() };
    // SAFETY: valid pointers.
    if unsafe { sigaction(sig, &act, &mut old) } != 0 {
        return libc::SIG_ERR;
    }
    old.sa_sigaction
}
