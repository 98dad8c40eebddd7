//! Green synchronisation (eventlet's `thread=` greens `threading` and `Queue`): a green thread
//! that waits on a mutex, condition variable, rwlock, semaphore, barrier or once-guard parks on
//! its hub, so the others run. Every primitive keeps glibc's memory layout, size and static
//! initialisers; the wait queues live in the [parking lot](crate::park).
//!
//! Process-shared primitives are also used by other processes, which follow glibc's futex
//! protocol: those go to glibc (with a green polling wait when other green threads could run).

pub mod barrier;
pub mod cond;
pub mod mutex;
pub mod once;
pub mod rwlock;
pub mod sem;

use crate::hub::Hub;
use crate::sys::{clock_ns, now_ns, nsec_valid, timespec_ns};
use core::cell::Cell;
use libc::{c_int, clockid_t, timespec};

thread_local! {
    /// This OS thread's kernel id (0 until asked); cleared in a forked child.
    static OS_TID: Cell<i32> = const { Cell::new(0) };
}

/// The owner id of the caller: its green thread's id, or its OS thread's kernel id.
pub fn owner_id() -> i32 {
    if let Some(hub) = Hub::current().filter(|hub| hub.in_green()) {
        return hub.current_green().id.get();
    }
    os_tid()
}

/// The calling OS thread's kernel id (cached).
pub fn os_tid() -> i32 {
    OS_TID.with(|tid| {
        if tid.get() == 0 {
            // SAFETY: gettid has no preconditions.
            tid.set(unsafe { crate::sys::syscall!(libc::SYS_gettid) } as i32);
        }
        tid.get()
    })
}

/// In a forked child the surviving thread has a new kernel id.
pub fn forget_tid_after_fork() {
    OS_TID.with(|tid| tid.set(0));
}

/// Could another green thread run while the caller waits?
pub fn others_could_run() -> bool {
    Hub::current().is_some_and(|hub| hub.parkable())
}

/// How a lock or wait call waits.
#[derive(Clone, Copy)]
pub enum Wait {
    Try,
    Forever,
    /// Until an absolute time on a clock.
    Until(clockid_t, *const timespec),
}

impl Wait {
    /// The CLOCK_MONOTONIC deadline of a timed wait (None for the others), or EINVAL for a clock
    /// the timed waits do not take or a malformed time.
    ///
    /// # Safety
    /// The timespec of `Until` is readable.
    pub unsafe fn deadline(self) -> Result<Option<u64>, c_int> {
        match self {
            Wait::Until(clock, _) if !supported_clock(clock) => Err(libc::EINVAL),
            // SAFETY: readable (caller).
            Wait::Until(clock, abstime) => unsafe { deadline(clock, abstime) }.map(Some),
            Wait::Try | Wait::Forever => Ok(None),
        }
    }
}

/// An absolute time on `clock` as a CLOCK_MONOTONIC deadline, or EINVAL for a malformed one.
///
/// # Safety
/// `abstime` is readable.
pub unsafe fn deadline(clock: clockid_t, abstime: *const timespec) -> Result<u64, c_int> {
    // SAFETY: readable (caller).
    let ts = unsafe { &*abstime };
    if !nsec_valid(ts) {
        return Err(libc::EINVAL);
    }
    if ts.tv_sec < 0 {
        return Ok(0);
    }
    let now = clock_ns(clock).ok_or(libc::EINVAL)?;
    Ok(now_ns().saturating_add(timespec_ns(ts).saturating_sub(now)))
}

/// Clocks the timed waits accept (glibc's `futex_abstimed_supported_clockid`).
pub fn supported_clock(clock: clockid_t) -> bool {
    clock == libc::CLOCK_REALTIME || clock == libc::CLOCK_MONOTONIC
}

/// Retries `attempt` (a glibc try-operation on a primitive another process may hold) with
/// short green sleeps in between, until it stops answering `busy` or `deadline` passes.
pub fn poll_foreign(
    busy: c_int,
    deadline: Option<u64>,
    mut attempt: impl FnMut() -> c_int,
) -> c_int {
    let mut pause = 20_000u64;
    loop {
        let rc = attempt();
        if rc != busy {
            return rc;
        }
        let now = now_ns();
        if deadline.is_some_and(|d| now >= d) {
            return libc::ETIMEDOUT;
        }
        let wake = deadline.map_or(now + pause, |d| d.min(now + pause));
        crate::time::nap(wake - now);
        pause = (pause * 2).min(2_000_000);
    }
}
