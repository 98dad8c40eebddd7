//! The program's view of signal masks: `pthread_sigmask`/`sigprocmask` of a green thread, and
//! `pthread_kill` of one. The masks themselves (each thread's, and the OS thread's as their
//! meet) are kept by the hub as it switches threads (`hub::masks`).

use crate::green::Green;
pub use crate::hub::masks::{
    Bits, SIGCANCEL, SIGSETXID, bit, from_set, set_sender, signals, to_set,
};
use libc::{c_int, sigset_t};

/// `pthread_kill` of `target`, a thread of this hub, with `sig`: natively the signal is
/// that thread's alone. It runs the handler there — at once if it is the caller, else when
/// it next runs, its interruptible wait interrupted as the kernel's signal would — or stays
/// pending on it while it blocks the signal (then `sigwait` there takes it).
pub fn send_to(hub: &crate::hub::Hub, target: &'static Green, sig: c_int) {
    target
        .pending
        .fetch_or(bit(sig), core::sync::atomic::Ordering::Release);
    if target.sigmask.get() & bit(sig) != 0 {
        if target.sigwaiting.get() & bit(sig) != 0 {
            target.unpark(target.current_token());
        }
    } else if core::ptr::eq(target, hub.current_green()) {
        hub.masks().deliver(target);
    } else {
        super::interrupt::interrupt_thread(target, sig);
    }
}

/// `pthread_sigmask` and `sigprocmask` of a thread of a hub: its own mask. Err(errno) for a
/// bad `how`; None when the call is not ours (no hub here: the OS thread's mask is the thread's).
///
/// # Safety
/// `set` is null or readable; `old` is null or writable.
pub unsafe fn change(
    how: c_int,
    set: *const sigset_t,
    old: *mut sigset_t,
) -> Option<Result<(), c_int>> {
    if !crate::patch::active(crate::patch::Subsystem::Thread) {
        return None;
    }
    let hub = crate::hub::Hub::current()?;
    if crate::context::in_vfork_child() {
        return None;
    }
    let me = hub.current_green();
    let previous = me.sigmask.get();
    // SAFETY: readable when non-null (caller).
    if let Some(set) = unsafe { set.as_ref() } {
        let bits = from_set(set);
        let mask = match how {
            libc::SIG_BLOCK => previous | bits,
            libc::SIG_UNBLOCK => previous & !bits,
            libc::SIG_SETMASK => bits,
            _ => return Some(Err(libc::EINVAL)),
        };
        hub.masks().replace(me, mask);
    }
    // SAFETY: writable when non-null (caller).
    if let Some(old) = unsafe { old.as_mut() } {
        *old = to_set(previous);
    }
    // A pending signal that the change lets through is handled before the call returns.
    hub.masks().deliver(me);
    Some(Ok(()))
}
