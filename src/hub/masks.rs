//! Per-green-thread signal masks, kept by the hub as it switches threads.
//!
//! Natively each thread has its own mask, a new thread starts with its creator's, and a
//! process-directed signal goes to a thread that does not block it. Green threads share their
//! OS thread's mask, so the hub keeps each one's mask itself and blocks a signal on the OS
//! thread only while every one of its threads (root included) blocks it — a count per signal
//! makes each change cost only the signals it changes.
//!
//! When the kernel then delivers a signal while the running thread blocks it, the trampoline
//! *defers* its handler to a thread that lets it through: the next one that runs (a waiting one
//! that a native thread would see interrupted is woken for it), else the hub itself before it
//! sleeps. A deferred signal that every thread has since blocked goes back to the kernel as
//! pending, where `sigpending` and `sigwait` see it.

use crate::green::Green;
use core::cell::{Cell, UnsafeCell};
use core::sync::atomic::{AtomicU64, Ordering};
use libc::{c_int, siginfo_t, sigset_t};

/// A set of signals 1..=64: bit `sig - 1`, as in the first word of a `sigset_t`.
pub type Bits = u64;

/// The bit of signal `sig` (1..=64; others have none).
pub const fn bit(sig: c_int) -> Bits {
    if sig >= 1 && sig <= 64 {
        1 << (sig - 1)
    } else {
        0
    }
}

/// glibc keeps the first two real-time signals for itself: thread cancellation, and setxid
/// across threads.
pub const SIGCANCEL: c_int = 32;
pub const SIGSETXID: c_int = 33;

/// Signals no mask holds: the kernel's (SIGKILL, SIGSTOP) and glibc's own, which glibc's
/// pthread_sigmask silently leaves out.
const UNBLOCKABLE: Bits = bit(libc::SIGKILL) | bit(libc::SIGSTOP) | bit(SIGCANCEL) | bit(SIGSETXID);

/// The signals 1..=64 of `set`.
pub fn from_set(set: &sigset_t) -> Bits {
    // SAFETY: a sigset_t is an array of unsigned longs (at least 64 bits) whose first 64 bits
    // hold signals 1..=64, little-endian bit `sig - 1`.
    unsafe { (set as *const sigset_t).cast::<u64>().read_unaligned() }
}

/// A `sigset_t` holding `bits`.
pub fn to_set(bits: Bits) -> sigset_t {
    // SAFETY: an all-zero sigset_t is the empty set; its first 64 bits are then written as
    // `from_set` reads them.
    unsafe {
        let mut set: sigset_t = core::mem::zeroed();
        (&raw mut set).cast::<u64>().write_unaligned(bits);
        set
    }
}

/// The signals in `bits`, in ascending order.
pub fn signals(mut bits: Bits) -> impl Iterator<Item = c_int> {
    core::iter::from_fn(move || {
        (bits != 0).then(|| {
            let sig = bits.trailing_zeros() as c_int + 1;
            bits &= bits - 1;
            sig
        })
    })
}

/// The OS thread's real mask.
fn os_mask() -> Bits {
    let mut set = to_set(0);
    // SAFETY: queries this thread's mask into a valid set.
    unsafe { (crate::real::get().pthread_sigmask)(libc::SIG_BLOCK, core::ptr::null(), &mut set) };
    from_set(&set)
}

fn set_os_mask(bits: Bits) {
    let set = to_set(bits);
    // SAFETY: a valid set, applied to this thread's own mask.
    unsafe { (crate::real::get().pthread_sigmask)(libc::SIG_SETMASK, &set, core::ptr::null_mut()) };
}

/// Runs the program's handler for a signal on the running thread (`signal::run_deferred`).
pub type RunHandler = fn(sig: c_int, info: &mut siginfo_t);

/// One hub's masks. Touched only on the hub's OS thread (its signal handlers included).
pub struct Masks {
    /// Runs a deferred or sent signal's handler (the signal module's, given by the hub's owners).
    run_handler: RunHandler,
    /// Per signal (index `sig - 1`): how many of the hub's threads block it.
    blocking: [Cell<u32>; 64],
    /// The hub's threads: its root (unless a fork left only a green thread) and the live green
    /// threads.
    members: Cell<u32>,
    /// Signals some thread blocks (a nonzero count).
    some: Cell<Bits>,
    /// What the OS thread blocks: exactly the signals every member blocks.
    os: Cell<Bits>,
    /// Signals delivered while the running thread blocked them, their handlers not yet run.
    deferred: AtomicU64,
    /// The kernel's record of each deferred signal.
    infos: [UnsafeCell<siginfo_t>; 64],
}

impl Masks {
    /// The masks of a new hub whose only thread is `root`, with the OS thread's mask.
    pub fn new(root: &Green, run_handler: RunHandler) -> Masks {
        let masks = Masks {
            run_handler,
            blocking: [const { Cell::new(0) }; 64],
            members: Cell::new(0),
            some: Cell::new(0),
            os: Cell::new(0),
            deferred: AtomicU64::new(0),
            // SAFETY: an all-zero siginfo_t is a valid value.
            infos: core::array::from_fn(|_| UnsafeCell::new(unsafe { core::mem::zeroed() })),
        };
        let mask = os_mask();
        masks.os.set(mask);
        masks.start_over(root, mask);
        masks
    }

    /// `only` is now the hub's only thread, with `mask`, which the OS thread is given.
    fn start_over(&self, only: &Green, mask: Bits) {
        for count in &self.blocking {
            count.set(0);
        }
        self.some.set(0);
        self.members.set(1);
        only.sigmask.set(mask);
        self.count(mask, 0);
        if self.os.get() != mask {
            self.os.set(mask);
            set_os_mask(mask);
        }
    }

    /// Adds `added` to the counts and takes `removed` off them.
    fn count(&self, added: Bits, removed: Bits) {
        for sig in signals(added) {
            let count = &self.blocking[sig as usize - 1];
            count.set(count.get() + 1);
        }
        for sig in signals(removed) {
            let count = &self.blocking[sig as usize - 1];
            count.set(count.get() - 1);
        }
        let some = (self.some.get() | added)
            & !signals(removed)
                .filter(|&sig| self.blocking[sig as usize - 1].get() == 0)
                .fold(0, |bits, sig| bits | bit(sig));
        self.some.set(some);
    }

    /// Blocks on the OS thread exactly what every member blocks.
    fn settle(&self) {
        let members = self.members.get();
        let target = signals(self.some.get())
            .filter(|&sig| self.blocking[sig as usize - 1].get() == members)
            .fold(0, |bits, sig| bits | bit(sig));
        if target != self.os.get() {
            self.os.set(target);
            set_os_mask(target);
        }
        self.requeue_blocked();
    }

    /// What the OS thread blocks (every member blocks these).
    pub fn os(&self) -> Bits {
        self.os.get()
    }

    /// A green thread joins the hub, with `mask` (its creator's, as natively).
    pub fn join(&self, green: &Green, mask: Bits) {
        green.sigmask.set(mask);
        self.members.set(self.members.get() + 1);
        self.count(mask, 0);
        self.settle();
    }

    /// A green thread leaves the hub (it ended).
    pub fn leave(&self, green: &Green) {
        self.members.set(self.members.get() - 1);
        self.count(0, green.sigmask.get());
        self.settle();
    }

    /// In a forked child: `me`, the forking thread, is the only one, with its own mask; signals
    /// deferred in the parent are not the child's (a child starts with none pending).
    pub fn after_fork(&self, me: &Green) {
        self.deferred.store(0, Ordering::Relaxed);
        me.pending.store(0, Ordering::Relaxed);
        self.start_over(me, me.sigmask.get());
    }

    /// The running thread `me` takes `mask` as its own; returns its previous mask.
    pub fn replace(&self, me: &Green, mask: Bits) -> Bits {
        let mask = mask & !UNBLOCKABLE;
        let old = me.sigmask.get();
        if mask != old {
            // Before the OS mask changes: a signal that change lets in must find it.
            me.sigmask.set(mask);
            self.count(mask & !old, old & !mask);
            self.settle();
        }
        old
    }

    /// From the trampoline, on the OS thread: does `sig`'s handler wait for a thread that lets
    /// it through, because `running` blocks it? Then its record is kept.
    ///
    /// # Safety
    /// `info` is null or the kernel's readable record of this delivery.
    pub unsafe fn defer(&self, running: &Green, sig: c_int, info: *const siginfo_t) -> bool {
        if self.members.get() < 2 || running.sigmask.get() & bit(sig) == 0 {
            return false;
        }
        // SAFETY: readable when non-null (caller); the slot is written only here, on this OS
        // thread, and read by `deliver` after the bit is taken.
        unsafe {
            *self.infos[sig as usize - 1].get() = info.as_ref().copied().unwrap_or_else(|| {
                let mut info: siginfo_t = core::mem::zeroed();
                info.si_signo = sig;
                info
            });
        }
        self.deferred.fetch_or(bit(sig), Ordering::AcqRel);
        true
    }

    /// Runs on `me` (the running thread) the handlers of signals sent to it and of deferred
    /// signals that it lets through, as a native thread like it would have run them. Returns
    /// whether one ran.
    #[inline]
    pub fn deliver(&self, me: &Green) -> bool {
        // Inline, the common case (nothing sent, nothing deferred) costs two loads at each
        // switch, not a call.
        let through = !me.sigmask.get();
        if (me.pending.load(Ordering::Relaxed) | self.deferred.load(Ordering::Acquire)) & through
            == 0
        {
            return false;
        }
        self.deliver_slow(me)
    }

    #[cold]
    fn deliver_slow(&self, me: &Green) -> bool {
        let mut ran = false;
        loop {
            let own = me.pending.load(Ordering::Relaxed) & !me.sigmask.get();
            let Some(sig) = signals(own).next() else {
                break;
            };
            me.pending.fetch_and(!bit(sig), Ordering::Relaxed);
            (self.run_handler)(sig, &mut sent_info(sig));
            ran = true;
        }
        self.deliver_masked(!me.sigmask.get()) | ran
    }

    /// A signal of `wanted` sent to `me` (which waits for it, blocked): taken, not handled.
    pub fn take_sent(&self, me: &Green, wanted: Bits) -> Option<siginfo_t> {
        let sig = signals(me.pending.load(Ordering::Relaxed) & wanted).next()?;
        me.pending.fetch_and(!bit(sig), Ordering::Relaxed);
        Some(sent_info(sig))
    }

    /// Before the hub sleeps: a deferred signal whose threads that let it through all wait
    /// where nothing interrupts them has its handler run now, by the hub, rather than late.
    pub fn deliver_idle(&self) -> bool {
        self.requeue_blocked();
        self.deliver_masked(!0)
    }

    fn deliver_masked(&self, through: Bits) -> bool {
        let mut ran = false;
        loop {
            let due = self.deferred.load(Ordering::Acquire) & through;
            let Some(sig) = signals(due).next() else {
                return ran;
            };
            if self.deferred.fetch_and(!bit(sig), Ordering::AcqRel) & bit(sig) == 0 {
                continue;
            }
            // SAFETY: the slot was written before the bit was set (see `defer`).
            let mut info = unsafe { *self.infos[sig as usize - 1].get() };
            (self.run_handler)(sig, &mut info);
            ran = true;
        }
    }

    /// Deferred signals that every thread now blocks go back to the kernel, pending on this
    /// OS thread (which blocks them), as they would be natively.
    #[inline]
    fn requeue_blocked(&self) {
        let stuck = self.deferred.load(Ordering::Acquire) & self.os.get();
        if stuck != 0 {
            self.requeue(stuck);
        }
    }

    #[cold]
    fn requeue(&self, stuck: Bits) {
        for sig in signals(stuck) {
            if self.deferred.fetch_and(!bit(sig), Ordering::AcqRel) & bit(sig) == 0 {
                continue;
            }
            // SAFETY: as in `deliver_masked`.
            let mut info = unsafe { *self.infos[sig as usize - 1].get() };
            // SAFETY: queues `sig` with its own record to this very thread of this process
            // (a process may queue any si_code to itself).
            let rc = unsafe {
                crate::sys::syscall!(
                    libc::SYS_rt_tgsigqueueinfo,
                    libc::getpid(),
                    libc::gettid(),
                    sig,
                    &raw mut info,
                )
            };
            if rc != 0 {
                crate::log!(Warn, "cannot requeue signal {sig}: {}", crate::sys::errno());
            }
        }
    }
}

/// The record of a signal a thread of this process sent with `pthread_kill` (glibc queues it
/// with SI_USER, as `kill`, since 2.34).
pub fn sent_info(sig: c_int) -> siginfo_t {
    // SAFETY: an all-zero siginfo_t is valid.
    let mut info: siginfo_t = unsafe { core::mem::zeroed() };
    info.si_signo = sig;
    info.si_code = libc::SI_USER;
    // SAFETY: no preconditions.
    set_sender(&mut info, unsafe { libc::getpid() }, unsafe {
        libc::getuid()
    });
    info
}

/// Writes the sender of a `kill`/`tgkill` record (`si_pid`, `si_uid`: the first two ints of the
/// union, after signo, errno, code and the padding that aligns the union).
pub fn set_sender(info: &mut siginfo_t, pid: libc::pid_t, uid: libc::uid_t) {
    // SAFETY: a siginfo_t is 128 bytes; these two ints lie within it, as the kernel lays them.
    unsafe {
        let ids = (info as *mut siginfo_t).cast::<c_int>().add(4);
        ids.write(pid);
        ids.add(1).write(uid as c_int);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_through_sigset() {
        let mut set = to_set(0);
        // SAFETY: valid set and signal numbers.
        unsafe {
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::sigaddset(&mut set, 64);
        }
        assert_eq!(from_set(&set), bit(libc::SIGUSR1) | bit(64));
        let back = to_set(bit(libc::SIGINT));
        // SAFETY: valid set and signal number.
        assert_eq!(unsafe { libc::sigismember(&back, libc::SIGINT) }, 1);
        assert_eq!(signals(bit(3) | bit(40)).collect::<Vec<_>>(), vec![3, 40]);
        assert_eq!(bit(0), 0);
        assert_eq!(bit(65), 0);
    }
}
