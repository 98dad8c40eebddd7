//! The parking lot without its bucket locks while one OS thread alone has used it (one hub, no
//! pool thread or foreign thread touching a lock): a biased lock for the whole lot.
//!
//! On the VM the benchmarks run on a locked instruction costs 6 ns (16 beside other jobs), and
//! a mutex + condvar hand-off locked and unlocked a bucket twice (in the signal and in the
//! wait): 8 of a round trip's 14 locked instructions. The first OS thread that locks a bucket becomes the lot's *user*; while it is, its
//! sections (what a bucket lock would cover) only count themselves in [`DEPTH`] with plain
//! stores. Any other OS thread that wants a bucket first makes the lot shared for good
//! ([`share`]): it marks it so, makes the user's CPU order its memory accesses with
//! `membarrier` (so a section the user began before it saw the mark is visible in `DEPTH`, and
//! one it begins after sees the mark), and waits for the user's open sections to end; from
//! then on everybody takes the bucket locks, as before. The user's side is the light half of
//! an asymmetric Dekker (a store, a compiler fence, a load), the sharer's the heavy half: one
//! system call, once per process.
//!
//! A green thread unparked inside a section is woken with plain stores too (`park::Waker::of`):
//! it parked inside one, on this OS thread's hub, and no other OS thread ever saw its node.
//!
//! Without `membarrier` (`MEMBARRIER_CMD_PRIVATE_EXPEDITED`, Linux 4.14), or where the thread
//! pointer is not read here (not x86-64), the lot is shared from the start.

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering, compiler_fence, fence};

/// [`USER`] before anyone used the lot.
const NOBODY: usize = 0;
/// [`USER`] once a second OS thread wanted it (or it cannot be used alone).
const SHARED: usize = 1;

/// Who uses the lot: [`NOBODY`], [`SHARED`], or the thread pointer of its only user.
static USER: AtomicUsize = AtomicUsize::new(NOBODY);

/// The user's open sections: 0 or 1, more only when a signal handler that interrupted one
/// opens another (each nests inside the last, so the user's plain read-modify-writes of it
/// never interleave). Written by the user only; read by a thread that makes the lot shared.
static DEPTH: AtomicU32 = AtomicU32::new(0);

/// Proof that the calling thread is the lot's only user, inside a section: no other OS thread
/// touches a bucket until it is dropped.
pub struct Section(());

impl Drop for Section {
    #[inline]
    fn drop(&mut self) {
        // Release: a sharer that sees the count fall sees the section's writes to the queues.
        DEPTH.store(DEPTH.load(Ordering::Relaxed) - 1, Ordering::Release);
    }
}

/// Opens a section if the calling thread uses the lot alone (or can become its user); None
/// when the lot is shared: then the caller calls [`share`] and takes the bucket lock.
#[inline]
pub fn enter() -> Option<Section> {
    let me = me()?;
    match USER.load(Ordering::Relaxed) {
        user if user == me => open(me),
        NOBODY => claim(me),
        _ => None,
    }
}

/// The section's first half: counted, then the mark read again (the light half of the Dekker:
/// a sharer that marked the lot before this read sees the count, through `membarrier`).
#[inline]
fn open(me: usize) -> Option<Section> {
    DEPTH.store(DEPTH.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    compiler_fence(Ordering::SeqCst);
    if USER.load(Ordering::Relaxed) == me {
        return Some(Section(()));
    }
    // Shared meanwhile: not a section after all.
    drop(Section(()));
    None
}

/// The first OS thread to want a bucket becomes the lot's user, where `membarrier` lets a
/// second one take it back.
#[cold]
fn claim(me: usize) -> Option<Section> {
    let user = if membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) {
        me
    } else {
        SHARED
    };
    match USER.compare_exchange(NOBODY, user, Ordering::AcqRel, Ordering::Relaxed) {
        Ok(_) if user == me => open(me),
        _ => None,
    }
}

/// Makes sure the lot is shared before the caller takes a bucket lock: a no-op once it is.
#[inline]
pub fn share() {
    if USER.load(Ordering::Acquire) != SHARED {
        share_now();
    }
}

#[cold]
fn share_now() {
    let before = USER.swap(SHARED, Ordering::AcqRel);
    if before == NOBODY || before == SHARED {
        return;
    }
    // The user may be inside a section it opened before it could see the mark: make its CPU
    // order its accesses (a full barrier on every CPU that runs a thread of this process),
    // then wait for its sections to end. A fork child, whose registration may not have been
    // inherited, registers first; the global command needs none.
    fence(Ordering::SeqCst);
    let ordered = membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)
        || (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)
            && membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED))
        || membarrier(MEMBARRIER_CMD_GLOBAL);
    if !ordered {
        crate::fatal!("membarrier failed: cannot share the parking lot safely");
    }
    fence(Ordering::SeqCst);
    while DEPTH.load(Ordering::Acquire) != 0 {
        // A section is short (no call in one ever blocks), unless its thread was descheduled.
        // SAFETY: no arguments.
        unsafe { crate::sys::syscall!(libc::SYS_sched_yield) };
    }
}

const MEMBARRIER_CMD_GLOBAL: libc::c_int = 1;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 8;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 16;

fn membarrier(cmd: libc::c_int) -> bool {
    // SAFETY: membarrier takes two integers and touches no memory of ours.
    unsafe { crate::sys::syscall!(libc::SYS_membarrier, cmd, 0, 0) == 0 }
}

/// The calling OS thread, as a number no other live OS thread has: its thread pointer (None
/// where it is not read here: the lot is then always shared).
#[inline]
fn me() -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        Some(crate::green::tls::thread_pointer())
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}
