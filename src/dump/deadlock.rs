//! "all green threads are asleep - deadlock!" (Go's message): said once, when every thread of
//! every hub waits on another thread (a mutex, a condition variable, a join…)
//! and nothing else could ever wake one. Then the process keeps waiting, as natively (where such
//! a program hangs silently).
//!
//! Asked only when the hub is about to wait with nothing runnable and no timer at all, so the
//! hot path pays nothing; the hub asks again after a grace period and only then is it said.
//! Never said while anything else could end a wait:
//! - a thread waits on a descriptor, a sleep or any timer, a child, the pool, a signal (`pause`,
//!   `sigsuspend`, `sigwait`: another process may send it);
//! - a semaphore waiter, when the program has a signal handler (`sem_post` is
//!   async-signal-safe; unlocking a mutex or signalling a condition variable from one is not);
//! - another hub is not asleep in its poller with nothing to do, or any OS thread the library
//!   does not know idle: a native thread (the
//!   program's own while `thread` is unpatched or patching is scoped, glibc's timer threads) may
//!   unlock the mutex; a busy pool thread will wake its caller;
//! - a process stopped by SIGSTOP never gets here (its hub does not run).

use crate::green::{Green, table};
use crate::hub::Hub;
use crate::waiting::WaitOn;
use core::sync::atomic::{AtomicBool, Ordering};

/// Said for the current episode: not again until some thread could run again.
static REPORTED: AtomicBool = AtomicBool::new(false);

/// The hub's [`crate::hub::Owners::maybe_deadlocked`].
pub fn maybe_deadlocked(hub: &Hub) -> bool {
    if !crate::config::get().deadlock {
        return false;
    }
    if !all_asleep(hub) {
        REPORTED.store(false, Ordering::Relaxed);
        return false;
    }
    !REPORTED.load(Ordering::Relaxed)
}

/// The hub's [`crate::hub::Owners::deadlocked`]: still so after the grace period.
pub fn report(hub: &Hub) {
    if !all_asleep(hub) || REPORTED.swap(true, Ordering::Relaxed) {
        return;
    }
    let mut out = super::Out::new(super::Sink::Stderr);
    use core::fmt::Write;
    let _ = writeln!(out, "all green threads are asleep - deadlock!");
    super::print(&mut out, "deadlock in");
}

/// Does every thread of every hub wait on another thread, with nothing else able to end a
/// wait? Asked by `hub`, about to wait with nothing to do; every other hub must be asleep in
/// its poller the same way ([`Hub::is_quiet`]).
fn all_asleep(hub: &Hub) -> bool {
    if hub.has_work() {
        return false;
    }
    let mut hubs = 0;
    for other in Hub::all() {
        hubs += 1;
        if !core::ptr::eq(other, hub) && !other.is_quiet() {
            return false;
        }
    }
    let asleep = |green: &Green| {
        if green.current_token() == 0 {
            return false;
        }
        // A sigwait is a wait on descriptors (a signalfd), which wakes by itself; the hub's
        // own record of it is readable by its own OS thread only.
        if green.hub().is_mine() && green.sigwaiting.get() != 0 {
            return false;
        }
        match WaitOn::unpack(green.waiting_on.load(Ordering::Relaxed)) {
            None => false,
            Some(WaitOn::Sem(_)) => !(1..=64).any(crate::signal::handled),
            Some(on) => !on.wakes_by_itself(),
        }
    };
    Hub::all().all(|h| asleep(h.root())) && table::all_live(asleep) && no_other_threads(hubs)
}

/// Is every other OS thread of the process an idle pool thread (or one of the library's quiet
/// ones)?
fn no_other_threads(hubs: usize) -> bool {
    let pool = crate::tpool::state();
    if pool.idle != pool.threads || pool.queued != 0 {
        return false;
    }
    let known = hubs + pool.threads + crate::sysmon::threads();
    os_threads().is_some_and(|n| n <= known)
}

/// How many OS threads the process has (the entries of /proc/self/task).
fn os_threads() -> Option<usize> {
    // SAFETY: a NUL-terminated path; a fresh descriptor of ours, closed below.
    let fd = unsafe {
        crate::sys::syscall!(
            libc::SYS_openat,
            libc::AT_FDCWD,
            c"/proc/self/task".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC
        )
    };
    if fd < 0 {
        return None;
    }
    let mut buf = [0u8; 8192];
    let mut count = 0;
    let mut ok = true;
    loop {
        // SAFETY: fills a valid buffer of its size with directory entries.
        let n =
            unsafe { crate::sys::syscall!(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
        if n < 0 {
            ok = false;
        }
        if n <= 0 {
            break;
        }
        let mut at = 0;
        while at + 19 < n as usize {
            // linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name.
            let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
            if buf[at + 19] != b'.' {
                count += 1;
            }
            at += reclen.max(1);
        }
    }
    // SAFETY: ours, opened above.
    unsafe { crate::sys::syscall!(libc::SYS_close, fd) };
    ok.then_some(count)
}
