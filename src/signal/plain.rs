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
    /// What the deadline is counted on (CLOCK_MONOTONIC but for a sleep on a CPU-time clock).
    clock: libc::clockid_t,
    deadline: Option<u64>,
    left: libc::timespec,
}

impl TimespecLeft {
    /// # Safety
    /// `given` is null or readable.
    pub unsafe fn new(given: *const libc::timespec) -> TimespecLeft {
        // SAFETY: as ours.
        unsafe { Self::on_clock(given, libc::CLOCK_MONOTONIC) }
    }

    /// A relative sleep on `clock`: a CPU-time clock (the process's, or one from
    /// `clock_getcpuclockid`, negative) runs slower than the monotonic one, so its deadline is
    /// counted on it (a system call per try, not the vDSO); any other, on CLOCK_MONOTONIC (a
    /// relative sleep ignores changes to the wall clock).
    ///
    /// # Safety
    /// `given` is null or readable.
    pub unsafe fn on_clock(given: *const libc::timespec, clock: libc::clockid_t) -> TimespecLeft {
        let clock = if clock < 0 || clock == libc::CLOCK_PROCESS_CPUTIME_ID {
            clock
        } else {
            libc::CLOCK_MONOTONIC
        };
        // SAFETY: readable when non-null (caller).
        let ns = unsafe { given.as_ref() }.and_then(crate::sys::duration_ns);
        let mut left = TimespecLeft {
            given,
            clock,
            deadline: None,
            left: crate::sys::ns_timespec(0),
        };
        left.deadline = ns
            .filter(|&ns| ns > 0)
            .and_then(|ns| Some(left.now()?.saturating_add(ns)));
        left
    }

    fn now(&self) -> Option<u64> {
        if self.clock == libc::CLOCK_MONOTONIC {
            Some(crate::sys::now_ns())
        } else {
            crate::sys::clock_ns(self.clock)
        }
    }

    /// The timeout for the next try.
    pub fn for_try(&mut self) -> *const libc::timespec {
        match self.deadline {
            Some(deadline) => {
                // A clock that cannot be read now (a CPU clock of a thread gone): the kernel
                // judges the request as given.
                let Some(now) = self.now() else {
                    return self.given;
                };
                self.left = crate::sys::ns_timespec(deadline.saturating_sub(now));
                &self.left
            }
            None => self.given,
        }
    }
}

/// What a plain socket call waits for, and what it answers when its socket's timeout runs out.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SocketWait {
    /// `recv`, `accept`… (SO_RCVTIMEO): EAGAIN.
    Input,
    /// `send`… (SO_SNDTIMEO): EAGAIN.
    Output,
    /// `connect` (SO_SNDTIMEO): EINPROGRESS; the connection goes on after an interruption,
    /// so once writable its outcome is SO_ERROR, not a second `connect`.
    Connect,
}

/// A plain socket call (`call`, -1 and errno on failure) on `fd`. The kernel restarts one
/// after a handler with SA_RESTART (the library's is) unless the socket has a timeout
/// (SO_RCVTIMEO/SO_SNDTIMEO: signal(7)); then it fails with EINTR, which natively an ignored
/// SIGURG never causes. Made again while only the library's signal interrupted it, after a
/// wait for readiness with the time the timeout leaves. The start is read from the coarse
/// clock (a few instructions: no system call on the way that is not interrupted); the time left
/// is counted a tick long, so the whole call is never shorter than the timeout and at most
/// two ticks longer (the kernel counts socket timeouts in ticks too).
pub fn socket_restarting<T: Answer>(fd: c_int, wait: SocketWait, mut call: impl FnMut() -> T) -> T {
    let saved = crate::sys::errno();
    let start = coarse_ns();
    loop {
        let before = count();
        let result = call();
        if !(result.failed() && crate::sys::errno() == libc::EINTR)
            || count() != before
            || !crate::patch::engaged()
        {
            return result;
        }
        let option = match wait {
            SocketWait::Input => libc::SO_RCVTIMEO,
            SocketWait::Output | SocketWait::Connect => libc::SO_SNDTIMEO,
        };
        let timeout = crate::sys::socket_timeout(fd, option);
        if timeout > 0 || wait == SocketWait::Connect {
            let left = (start + timeout + coarse_tick()).saturating_sub(coarse_ns());
            match socket_ready(fd, wait, timeout, left) {
                Ready::Again => {}
                Ready::Answer(result) => {
                    if result == 0 {
                        crate::sys::set_errno(saved);
                    }
                    return T::from_int(result);
                }
            }
        }
        crate::sys::set_errno(saved);
    }
}

/// What a socket call returns: a count or a descriptor, -1 on failure.
pub trait Answer: Copy {
    fn failed(self) -> bool;
    fn from_int(value: c_int) -> Self;
}
impl Answer for c_int {
    fn failed(self) -> bool {
        self == -1
    }
    fn from_int(value: c_int) -> Self {
        value
    }
}
impl Answer for isize {
    fn failed(self) -> bool {
        self == -1
    }
    fn from_int(value: c_int) -> Self {
        value as isize
    }
}

enum Ready {
    /// Ready: make the call again.
    Again,
    /// The call's answer, 0 or -1 (errno set).
    Answer(c_int),
}

/// Waits (the real `poll`, itself made again after the library's signal) until `fd` is ready
/// for `wait`, or `left` ns (none when the socket has no `timeout`) ran out.
fn socket_ready(fd: c_int, wait: SocketWait, timeout: u64, left: u64) -> Ready {
    let events = if wait == SocketWait::Input {
        libc::POLLIN
    } else {
        libc::POLLOUT
    };
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = if timeout == 0 {
        -1
    } else {
        left.div_ceil(1_000_000).min(c_int::MAX as u64) as c_int
    };
    let deadline = deadline_ms(ms);
    // SAFETY: one valid pollfd.
    let n = restarting(
        || unsafe { (crate::real::get().poll)(&mut p, 1, ms_left(ms, deadline)) },
        failed_eintr,
    );
    match n {
        // A program's handler (natively the call's EINTR), or the poll's own failure.
        -1 => Ready::Answer(-1),
        0 => {
            let code = if wait == SocketWait::Connect {
                libc::EINPROGRESS
            } else {
                libc::EAGAIN
            };
            crate::sys::set_errno(code);
            Ready::Answer(-1)
        }
        _ if wait == SocketWait::Connect => match crate::sys::socket_int(fd, libc::SO_ERROR) {
            None => Ready::Answer(-1),
            Some(0) => Ready::Answer(0),
            Some(error) => {
                crate::sys::set_errno(error);
                Ready::Answer(-1)
            }
        },
        _ => Ready::Again,
    }
}

/// CLOCK_MONOTONIC_COARSE in ns (the vDSO's last tick: no system call).
fn coarse_ns() -> u64 {
    crate::sys::clock_ns(libc::CLOCK_MONOTONIC_COARSE).unwrap_or(0)
}

/// The coarse clock's resolution (a tick), asked when a socket call was interrupted.
fn coarse_tick() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid, writable timespec.
    if unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts) } == 0 {
        crate::sys::timespec_ns(&ts)
    } else {
        10_000_000
    }
}
