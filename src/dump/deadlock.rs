//! "all green threads are asleep - deadlock!" (Go's message): said once, when every thread of
//! every hub waits on another thread (a mutex, a condition variable, a join…)
//! and nothing else could ever wake one. Then the process keeps waiting, as natively (where such
//! a program hangs silently).
//!
//! Asked only when a hub has waited a grace period with nothing runnable and no timer at all,
//! so the hot path pays nothing. A "no" that may turn without waking the asking hub (another
//! hub or OS thread busy, a thread runnable) has it ask again later ([`Quiet::Unsure`]); a "no"
//! because a wait ends by itself has it wait as natively ([`Quiet::Waits`]).
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
use crate::hub::{Hub, Quiet};
use crate::waiting::WaitOn;
use core::sync::atomic::{AtomicBool, Ordering};

/// Said for the current episode: not again until some thread could run again.
static REPORTED: AtomicBool = AtomicBool::new(false);

/// The hub's [`crate::hub::Owners::maybe_deadlocked`].
pub fn maybe_deadlocked(hub: &Hub) -> Quiet {
    if !crate::config::get().deadlock {
        return Quiet::Waits;
    }
    match all_asleep(hub) {
        Quiet::Deadlocked if REPORTED.load(Ordering::Relaxed) => Quiet::Waits,
        Quiet::Deadlocked => Quiet::Deadlocked,
        not => {
            REPORTED.store(false, Ordering::Relaxed);
            not
        }
    }
}

/// The hub's [`crate::hub::Owners::deadlocked`], right after [`maybe_deadlocked`] said so: once
/// (two hubs may find it together).
pub fn report(_hub: &Hub) {
    if REPORTED.swap(true, Ordering::Relaxed) {
        return;
    }
    let mut out = super::Out::new(super::Sink::Stderr);
    use core::fmt::Write;
    let _ = writeln!(out, "all green threads are asleep - deadlock!");
    super::print(&mut out, "deadlock in");
}

/// Does every thread of every hub wait on another thread, with nothing else able to end a
/// wait ([`Quiet::Deadlocked`])? Asked by `hub`, quiet for a grace period; every other hub must
/// be asleep in its poller the same way ([`Hub::is_quiet`]).
fn all_asleep(hub: &Hub) -> Quiet {
    if hub.has_work() {
        return Quiet::Unsure;
    }
    let mut hubs = 0;
    for other in Hub::all() {
        hubs += 1;
        if !core::ptr::eq(other, hub) && !other.is_quiet() {
            return Quiet::Unsure;
        }
    }
    let mut not = Quiet::Deadlocked;
    let mut asleep = |green: &Green| {
        not = if green.current_token() == 0 {
            Quiet::Unsure
        } else if green.hub().is_mine() && green.sigwaiting.get() != 0 {
            // A sigwait is a wait on descriptors (a signalfd), which wakes by itself; the
            // hub's own record of it is readable by its own OS thread only.
            Quiet::Waits
        } else {
            match WaitOn::unpack(green.waiting_on.load(Ordering::Relaxed)) {
                None => Quiet::Unsure,
                Some(WaitOn::Sem(_)) if (1..=64).any(crate::signal::handled) => Quiet::Waits,
                Some(on) if on.wakes_by_itself() => Quiet::Waits,
                Some(_) => return true,
            }
        };
        false
    };
    if !(Hub::all().all(|h| asleep(h.root())) && table::all_live(&mut asleep)) {
        return not;
    }
    if no_other_threads(hubs) {
        Quiet::Deadlocked
    } else {
        Quiet::Unsure
    }
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
    // A fresh descriptor of ours, closed below.
    let fd = crate::sys::open_raw(
        c"/proc/self/task",
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
    )?;
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
