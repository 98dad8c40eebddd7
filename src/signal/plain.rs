//! A plain call (the real function, made for the program) that only the library's own signal
//! interrupted: natively a SIGURG the program ignores is discarded and interrupts nothing, but
//! here the library's handler runs for every SIGURG (the monitor's preemption, the dump's
//! capture, the program's own at its default disposition), and a call the kernel does not
//! restart after a handler (`poll`, `nanosleep`, `pause`…) fails with EINTR; so does one on
//! another OS thread that saw the signal pending while this one took it (`epoll_wait` fails
//! at once). Each OS thread counts the deliveries that ran a handler of the program on it
//! (once the library is engaged, all go through [`call_handler`](super::call_handler));
//! [`restarting`] makes the call again when it failed with EINTR and that count did not move:
//! no handler of the program ran, so natively nothing would have interrupted it. (Linux also
//! ends some of these calls with EINTR after a stop and SIGCONT with no handler: those are
//! made again too.)
//!
//! The count is touched by signal handlers: a thread-local atomic, no allocation, no lock.

use core::sync::atomic::{AtomicU32, Ordering};
use libc::c_int;

thread_local! {
    /// Deliveries that ran a handler of the program on this OS thread (the library's
    /// thread-locals are the OS thread's, not a green thread's). Const-initialised and
    /// destructor-free (trap 6): touched in signal handlers.
    static HANDLED: AtomicU32 = const { AtomicU32::new(0) };
}

/// From a handler: this delivery runs the program's handler.
pub fn handled() {
    HANDLED.with(|n| n.fetch_add(1, Ordering::Relaxed));
}

fn count() -> u32 {
    HANDLED.with(|n| n.load(Ordering::Relaxed))
}

/// Makes `call` (a plain call) until it ends other than by an interruption (`interrupted`
/// says, of its result, whether it was EINTR) with no handler of the program's run meanwhile;
/// one after such a handler is the program's, as natively. `call` makes each try with the
/// time left. errno is as the last try left it, and as before the first when that one did not
/// fail.
pub fn restarting<T: Copy>(mut call: impl FnMut() -> T, interrupted: impl Fn(T) -> bool) -> T {
    let saved = crate::sys::errno();
    loop {
        let before = count();
        let result = call();
        // Unengaged (a library linked on purpose), the program's handlers are the kernel's
        // own, not counted here: its EINTR is its own.
        if !interrupted(result) || count() != before || !crate::patch::engaged() {
            return result;
        }
        crate::sys::set_errno(saved);
    }
}

/// [`restarting`]'s `interrupted` for a call that fails with -1 and errno.
pub fn failed_eintr(result: c_int) -> bool {
    result == -1 && crate::sys::errno() == libc::EINTR
}

/// The milliseconds left before `deadline` (from `deadline_ns`), rounded up, for a call that
/// takes them (negative: no timeout).
pub fn ms_left(timeout_ms: c_int, deadline: u64) -> c_int {
    if timeout_ms <= 0 {
        return timeout_ms;
    }
    let left = deadline.saturating_sub(crate::sys::now_ns());
    left.div_ceil(1_000_000).min(timeout_ms as u64) as c_int
}

/// The deadline of a timeout in ms taken now (0 when there is none to keep).
pub fn deadline_ms(timeout_ms: c_int) -> u64 {
    if timeout_ms <= 0 {
        return 0;
    }
    crate::sys::now_ns().saturating_add(timeout_ms as u64 * 1_000_000)
}

/// A timespec timeout kept across [`restarting`]'s tries: each is given the time left (a null,
/// zero or invalid one is the caller's each time: the kernel judges it).
pub struct TimespecLeft {
    given: *const libc::timespec,
    deadline: Option<u64>,
    left: libc::timespec,
}

impl TimespecLeft {
    /// # Safety
    /// `given` is null or readable.
    pub unsafe fn new(given: *const libc::timespec) -> TimespecLeft {
        // SAFETY: readable when non-null (caller).
        let ns = unsafe { given.as_ref() }.and_then(crate::sys::duration_ns);
        TimespecLeft {
            given,
            deadline: ns
                .filter(|&ns| ns > 0)
                .map(|ns| crate::sys::now_ns().saturating_add(ns)),
            left: crate::sys::ns_timespec(0),
        }
    }

    /// The timeout for the next try.
    pub fn for_try(&mut self) -> *const libc::timespec {
        match self.deadline {
            Some(deadline) => {
                self.left = crate::sys::ns_timespec(deadline.saturating_sub(crate::sys::now_ns()));
                &self.left
            }
            None => self.given,
        }
    }
}
