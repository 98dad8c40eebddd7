//! Waiting for children: `wait`, `waitpid`, `wait4` and `waitid` park the calling green thread
//! until a child it waits for changes state, while the other green threads run; a signal's
//! handler interrupts the wait as it interrupts the native call (EINTR, or the wait goes on
//! under `SA_RESTART`).
//!
//! Every answer is the real call's, made with `WNOHANG` by the waiting thread itself, so the
//! status, `rusage`, `siginfo_t` and errors are the kernel's. Between attempts the thread parks:
//! - for the exit of one process, on a pidfd of it (`pidfd_open`), which the hub's epoll
//!   reports readable once the process has exited: no other thread is involved;
//! - otherwise (any child, a process group, stops and continues), on a *peek*: a thread of its
//!   own ([`crate::tpool::detach`], not a pool thread: the pool's short calls, the resolver,
//!   may be what the child waits for) blocks in `waitid(…, WNOWAIT)`, which reports a waitable
//!   child without reaping it, then wakes every thread that waits for the same children. Waits
//!   for the same children share one peek, and a peek whose waiters a signal took away is
//!   adopted by the next such wait, so interrupted waits do not pile up threads.

use crate::fd::wait::wait_any;
use crate::green::Green;
use crate::hub::Hub;
use crate::outcome::Outcome::{self, Bypass, Done, Errno};
use crate::patch::{self, Subsystem};
use crate::real;
use crate::signal::Interrupt;
use crate::sys::errno;
use crate::waiting::WaitOn;
use libc::{
    __WALL, __WCLONE, __WNOTHREAD, EINTR, P_ALL, P_PGID, P_PID, WCONTINUED, WEXITED, WNOHANG,
    WNOWAIT, WSTOPPED, WUNTRACED, c_int, id_t, idtype_t, pid_t, siginfo_t,
};
use std::sync::{Mutex, MutexGuard};

/// The `waitid` options that choose which children and which changes a wait is for.
const SELECTS: c_int = WEXITED | WSTOPPED | WCONTINUED | __WALL | __WCLONE | __WNOTHREAD;

/// What a wait waits for, in `waitid`'s terms.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Target {
    idtype: idtype_t,
    id: id_t,
    /// `SELECTS` bits.
    selects: c_int,
}

impl Target {
    /// The target of `waitpid`/`wait4` with `pid` and `options`.
    fn of_pid(pid: pid_t, options: c_int) -> Target {
        let (idtype, id) = match pid {
            -1 => (P_ALL, 0),
            0 => (P_PGID, 0),
            pid if pid < 0 => (P_PGID, pid.wrapping_neg() as id_t),
            pid => (P_PID, pid as id_t),
        };
        let mut selects = WEXITED | options & (__WALL | __WCLONE | __WNOTHREAD);
        if options & WUNTRACED != 0 {
            selects |= WSTOPPED;
        }
        if options & WCONTINUED != 0 {
            selects |= WCONTINUED;
        }
        Target {
            idtype,
            id,
            selects,
        }
    }

    /// The one process whose exit (and nothing else) the wait is for.
    fn exit_of_one(self) -> Option<pid_t> {
        (self.idtype == P_PID && self.selects & (WSTOPPED | WCONTINUED) == 0)
            .then_some(self.id as pid_t)
    }
}

/// `waitpid`, and `wait` (any child: `pid` -1, no options).
///
/// # Safety
/// As `waitpid(2)`.
pub unsafe fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> Outcome<pid_t> {
    // SAFETY: as `wait4` with no usage (the caller's pointer, as waitpid(2)).
    unsafe { wait4(pid, status, options, core::ptr::null_mut()) }
}

/// `wait4` (and `wait3`, its `pid` -1).
///
/// # Safety
/// As `wait4(2)`.
pub unsafe fn wait4(
    pid: pid_t,
    status: *mut c_int,
    options: c_int,
    usage: *mut libc::rusage,
) -> Outcome<pid_t> {
    wait_for(Target::of_pid(pid, options), options, || {
        // SAFETY: the caller's pointers, as wait4(2); WNOHANG only makes it return at once.
        let got = unsafe { (real::get().wait4)(pid, status, options | WNOHANG, usage) };
        (got != 0).then_some(got)
    })
}

/// `waitid`.
///
/// # Safety
/// As `waitid(2)`.
pub unsafe fn waitid(
    idtype: idtype_t,
    id: id_t,
    info: *mut siginfo_t,
    options: c_int,
) -> Outcome<c_int> {
    let target = Target {
        idtype,
        id,
        selects: options & SELECTS,
    };
    wait_for(target, options, || {
        // SAFETY: an all-zero siginfo_t is a valid value.
        let mut got: siginfo_t = unsafe { core::mem::zeroed() };
        // SAFETY: our own siginfo_t; WNOHANG only makes it return at once.
        let rc = unsafe { (real::get().waitid)(idtype, id, &mut got, options | WNOHANG) };
        if rc < 0 {
            return Some(rc);
        }
        // SAFETY: a siginfo_t the kernel filled for a child (or left zero: none yet).
        if unsafe { got.si_pid() } == 0 {
            return None;
        }
        // SAFETY: null or writable (the caller's, as waitid(2)).
        if let Some(info) = unsafe { info.as_mut() } {
            *info = got;
        }
        Some(rc)
    })
}

/// Repeats `attempt` (the real call with `WNOHANG`: Some(result) once a child is reported or
/// the call fails, errno set; None while no child has changed state) until it answers, parking
/// in between. The real blocking call where nothing else could run meanwhile, and for
/// `__WNOTHREAD` (only the calling OS thread's children: no other thread can watch them).
fn wait_for(
    target: Target,
    options: c_int,
    mut attempt: impl FnMut() -> Option<c_int>,
) -> Outcome<c_int> {
    if options & WNOHANG != 0
        || options & __WNOTHREAD != 0
        || !patch::active(Subsystem::Os)
        || !crate::tpool::would_park()
        || super::in_vfork_child()
    {
        return Bypass;
    }
    let Some(hub) = Hub::current() else {
        return Bypass;
    };
    loop {
        if let Some(result) = attempt() {
            return if result < 0 {
                Errno(errno())
            } else {
                Done(result)
            };
        }
        let interrupted = match target.exit_of_one().and_then(|pid| await_exit(hub, pid)) {
            Some(interrupted) => interrupted,
            None => await_peek(hub, target),
        };
        // Linux restarts a wait for children after a handler with SA_RESTART.
        if let Some(sig) = interrupted
            && (sig == 0 || !crate::signal::restarts(sig))
        {
            return Errno(EINTR);
        }
    }
}

/// Parks until process `pid` may have exited, on a pidfd of it. Some(Some(sig)) when a signal
/// interrupted the wait (0: not known which), Some(None) when it ended otherwise, None when no
/// pidfd can be had or watched (the caller peeks instead).
fn await_exit(hub: &'static Hub, pid: pid_t) -> Option<Option<c_int>> {
    // SAFETY: pidfd_open with no flags; the descriptor is close-on-exec, ours, closed below.
    let pidfd = unsafe { crate::sys::syscall!(libc::SYS_pidfd_open, pid, 0) } as c_int;
    if pidfd < 0 {
        return None;
    }
    // High, and out of the program's reach while it waits (see `own_fd`).
    let pidfd = crate::own_fd::adopt(pidfd).ok()?;
    // Its number's entry may hold a descriptor whose close we never saw (registered with the
    // hub: the pidfd would then never be watched).
    crate::fd::born(pidfd.get(), crate::fd::Kind::Unknown);
    let interrupt = Interrupt::new();
    let waited = crate::signal::interruptibly(hub, &interrupt, || {
        // Its own descriptor, watched by this hub alone: no edge is dispatched while it looks.
        wait_any(hub, core::iter::once(pidfd.get()), None, None)
    });
    crate::fd::forget(pidfd.get());
    pidfd.close();
    if interrupt.happened.get() {
        return Some(Some(interrupt.signal.get()));
    }
    waited.ok().map(|_| None)
}

/// A peek in progress: its thread blocked in `waitid(target, WNOWAIT)`, and the threads
/// to wake when it returns.
struct Peek {
    target: Target,
    waiters: Vec<(&'static Green, u64)>,
}

static PEEKS: Mutex<Vec<Peek>> = Mutex::new(Vec::new());

fn peeks() -> MutexGuard<'static, Vec<Peek>> {
    PEEKS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Parks until a child of `target` may have changed state, by a peek (started here, or joined
/// if one for `target` is in progress). Some(sig) when a signal interrupted the wait.
fn await_peek(hub: &'static Hub, target: Target) -> Option<c_int> {
    let me = hub.current_green();
    let interrupt = Interrupt::new();
    let token = crate::signal::interruptibly(hub, &interrupt, || {
        let token = me.arm();
        let mut peeks = peeks();
        if let Some(peek) = peeks.iter_mut().find(|peek| peek.target == target) {
            peek.waiters.push((me, token));
            drop(peeks);
        } else {
            peeks.push(Peek {
                target,
                waiters: vec![(me, token)],
            });
            drop(peeks);
            crate::tpool::detach(move || peek(target));
        }
        hub.park(me, token, WaitOn::Child.word(), None);
        token
    });
    if !interrupt.happened.get() {
        return None;
    }
    // The peek goes on for whoever waits next; it must not wake this thread's later waits.
    if let Some(peek) = peeks().iter_mut().find(|peek| peek.target == target) {
        peek.waiters
            .retain(|&(green, t)| !(core::ptr::eq(green, me) && t == token));
    }
    Some(interrupt.signal.get())
}

/// On the peek's own thread: blocks until a child of `target` is waitable (or the wait fails), reaping
/// nothing, then wakes the peek's waiters, which try their own calls.
fn peek(target: Target) {
    // SAFETY: an all-zero siginfo_t is a valid value.
    let mut info: siginfo_t = unsafe { core::mem::zeroed() };
    // SAFETY: our own siginfo_t; WNOWAIT leaves the child's state to be reaped by its waiter.
    unsafe {
        (real::get().waitid)(
            target.idtype,
            target.id,
            &mut info,
            target.selects | WNOWAIT,
        )
    };
    let waiters = {
        let mut peeks = peeks();
        let at = peeks.iter().position(|peek| peek.target == target);
        at.map(|at| peeks.swap_remove(at).waiters)
    };
    for (green, token) in waiters.into_iter().flatten() {
        green.unpark(token);
    }
}

/// For `fork`: held across the real fork, so that no peek's thread holds it then.
pub struct ForkGuard(MutexGuard<'static, Vec<Peek>>);

pub fn before_fork() -> ForkGuard {
    ForkGuard(peeks())
}

impl ForkGuard {
    /// In the child: the threads blocked in peeks are not there.
    pub fn in_child(mut self) {
        self.0.clear();
    }
}
