//! Waits a signal interrupts: natively a handler that runs while a thread blocks in `poll`,
//! `read`, `sleep`… ends that call with EINTR. Here the handler runs on the hub's OS thread, so
//! the trampoline notes which signal arrived ([`arrived`]), asks the hub for a look, and at that
//! look ([`look`]) one waiting call per signal is woken with its [`Interrupt`] set: the root if
//! it waits and lets the signal through (Linux's choice for a process-directed signal), else
//! the longest waiter that does.
//!
//! The waiters are per OS thread (as the hub): a list touched only by that thread's code, and
//! the two counters its signal handlers read.

use super::mask::{self, Bits};
use crate::green::Green;
use crate::hub::Hub;
use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use libc::c_int;

/// Ends `green`'s interruptible wait, whose record is at `interrupted` on its stack: in its
/// saved copy while another thread runs on the stack region they share (`green::copied`).
///
/// # Safety
/// `interrupted` is the record of `green`'s current interruptible wait, on this OS thread.
unsafe fn end(green: &'static Green, interrupted: *const Interrupt, sig: c_int) {
    let Some(at) = green.hub().locate_on_stack(green, interrupted as usize) else {
        return;
    };
    // SAFETY: per our contract, where the record's bytes are now.
    unsafe { (*(at as *const Interrupt)).end(green, sig) };
}

/// A wait a signal may interrupt (by the mask its thread has while it waits): whether, and by
/// which signal, it was interrupted.
pub struct Interrupt {
    pub happened: Cell<bool>,
    /// The signal that interrupted it (0: not known).
    pub signal: Cell<c_int>,
}

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt {
            happened: Cell::new(false),
            signal: Cell::new(0),
        }
    }

    fn end(&self, green: &'static Green, sig: c_int) {
        self.signal.set(sig);
        self.happened.set(true);
        green.unpark(green.current_token());
    }
}

impl Default for Interrupt {
    fn default() -> Interrupt {
        Interrupt::new()
    }
}

/// The interruptible waits of one OS thread.
struct Waiters {
    /// The threads in one, oldest first, linked through their own `interrupt_older` and
    /// `interrupt_newer` (a thread is on it while its `interrupt_at` is set): joined and left
    /// in a few stores on every wait, where a queue of records cost a push, and a compaction of
    /// the records of ended waits (a pass over the queue every so many waits).
    oldest: Cell<*const Green>,
    newest: Cell<*const Green>,
    seq: Cell<u64>,
    /// How many calls wait interruptibly (read by signal handlers, which must not look at the
    /// list).
    live: AtomicUsize,
    /// Signals whose handlers ran on this OS thread while calls waited.
    arrived: AtomicU64,
}

impl Waiters {
    /// Puts `green`, waiting with the record `interrupted`, newest on the list.
    fn join(&self, green: &'static Green, interrupted: *const Interrupt) {
        let newest = self.newest.get();
        green.interrupt_at.set(interrupted.cast());
        green.interrupt_older.set(newest);
        green.interrupt_newer.set(ptr::null());
        if newest.is_null() {
            self.oldest.set(green);
        } else {
            // SAFETY: a thread on the list is live (it leaves before it ends: `leave`).
            unsafe { (*newest).interrupt_newer.set(green) };
        }
        self.newest.set(green);
    }

    /// Takes `green` off the list, if it is on it; returns its record.
    #[inline]
    fn unlink(&self, green: &Green) -> Option<*const Interrupt> {
        let at = green.interrupt_at.replace(ptr::null());
        if at.is_null() {
            return None;
        }
        let (older, newer) = (green.interrupt_older.get(), green.interrupt_newer.get());
        // SAFETY: its neighbours are on the list, so live (see `join`).
        unsafe {
            match older.as_ref() {
                Some(older) => older.interrupt_newer.set(newer),
                None => self.oldest.set(newer),
            }
            match newer.as_ref() {
                Some(newer) => newer.interrupt_older.set(older),
                None => self.newest.set(older),
            }
        }
        Some(at.cast())
    }

    /// The threads on the list, oldest first (none may join or leave meanwhile).
    fn iter(&self) -> impl Iterator<Item = &'static Green> {
        let mut next = self.oldest.get();
        core::iter::from_fn(move || {
            // SAFETY: as in `unlink`.
            let green: &'static Green = unsafe { next.as_ref()? };
            next = green.interrupt_newer.get();
            Some(green)
        })
    }
}

thread_local! {
    /// This OS thread's waiters, or null before its first interruptible wait. Const-initialised
    /// and destructor-free (trap 6); leaked, as the hub.
    static WAITERS: Cell<*const Waiters> = const { Cell::new(ptr::null()) };
}

/// This OS thread's waiters, if it ever waited interruptibly (no allocation: signal handlers).
fn existing() -> Option<&'static Waiters> {
    let waiters = WAITERS.with(Cell::get);
    // SAFETY: a non-null WAITERS was leaked by `waiters` and is never freed.
    (!waiters.is_null()).then(|| unsafe { &*waiters })
}

/// The waiters of `hub`, which is this OS thread's: the hub keeps the same pointer as
/// [`WAITERS`] (read there, not through `__tls_get_addr`, on every wait).
fn waiters(hub: &Hub) -> &'static Waiters {
    let known = hub.signal_waiters();
    if !known.is_null() {
        // SAFETY: set below to the leaked WAITERS of this OS thread, never freed.
        return unsafe { &*known.cast::<Waiters>() };
    }
    first_waiters(hub)
}

/// [`waiters`] the first time: out of line, so the compiler does not compute the address of
/// [`WAITERS`] (a `__tls_get_addr` call) before the test above.
#[cold]
#[inline(never)]
fn first_waiters(hub: &Hub) -> &'static Waiters {
    existing().unwrap_or_else(|| {
        let made: &'static Waiters = Box::leak(Box::new(Waiters {
            oldest: Cell::new(ptr::null()),
            newest: Cell::new(ptr::null()),
            seq: Cell::new(0),
            live: AtomicUsize::new(0),
            arrived: AtomicU64::new(0),
        }));
        WAITERS.with(|w| w.set(made));
        hub.set_signal_waiters(made as *const Waiters as *const ());
        made
    })
}

/// Runs `wait` (a park of `hub`'s running thread) as a wait a signal may interrupt: when a
/// handler runs on this OS thread during it (the hub notices when it next looks), one such
/// wait is woken with `interrupted.happened` set, as natively one thread's call returns EINTR.
pub fn interruptibly<R>(hub: &Hub, interrupted: &Interrupt, wait: impl FnOnce() -> R) -> R {
    let waiters = waiters(hub);
    let me = hub.current_green();
    let seq = waiters.seq.get() + 1;
    waiters.seq.set(seq);
    me.interrupt_seq.set(seq);
    // A wait begun inside another (a handler's call, run as the outer wait ended) is the one a
    // signal ends from now on.
    waiters.unlink(me);
    waiters.join(me, interrupted);
    // Only this OS thread writes the count (its handlers and other hubs only read it): no
    // locked add, which costs 6-16 ns on the benchmarks' VM, twice on every wait.
    let live = &waiters.live;
    live.store(live.load(Ordering::Relaxed) + 1, Ordering::Release);
    let result = wait();
    me.interrupt_seq.set(0);
    waiters.unlink(me);
    live.store(live.load(Ordering::Relaxed) - 1, Ordering::Release);
    result
}

/// A thread of `hub` ends (running, on `hub`'s OS thread): one that ends inside an
/// interruptible wait (`pthread_exit` from a handler run in it) leaves the list of such waits.
pub fn leave(hub: &Hub, green: &Green) {
    if green.interrupt_seq.get() == 0 {
        return;
    }
    green.interrupt_seq.set(0);
    let known = hub.signal_waiters();
    if !known.is_null() {
        // SAFETY: set by `first_waiters` to the leaked WAITERS of this OS thread, never freed.
        let waiters = unsafe { &*known.cast::<Waiters>() };
        // Counted while on the list only: one a signal took off it may end before it counts
        // itself out, as it always did.
        if waiters.unlink(green).is_some() {
            let live = &waiters.live;
            live.store(
                live.load(Ordering::Relaxed).saturating_sub(1),
                Ordering::Release,
            );
        }
    }
}

/// As [`interruptibly`], with `mask` (if given) the thread's own for the wait, as `ppoll`,
/// `pselect`, `epoll_pwait` and `sigsuspend` have it: a signal it lets in interrupts this very
/// call. `wait` sees the call's [`Interrupt`], already set when such a signal was pending.
pub fn interruptibly_with_mask<R>(
    hub: &Hub,
    mask: Option<&libc::sigset_t>,
    wait: impl FnOnce(&Interrupt) -> R,
) -> R {
    let interrupt = Interrupt::new();
    let me = hub.current_green();
    // A handler that ran after the last wait ended (as an earlier call's own mask was
    // restored) interrupts nothing: left in `arrived`, it would end this call at once
    // (`claim_arrived` below). Cleared here, off the plain waits' path.
    if let Some(waiters) = existing()
        && waiters.live.load(Ordering::Acquire) == 0
        && waiters.arrived.load(Ordering::Relaxed) != 0
    {
        waiters.arrived.store(0, Ordering::Release);
    }
    // Interruptible from before the mask changes: a pending signal that the call's mask
    // unblocks is delivered by that very change, and must interrupt this call, as natively.
    interruptibly(hub, &interrupt, || {
        let outside = mask.map(|set| {
            let outside = hub.masks().replace(me, mask::from_set(set));
            let let_in = outside & !me.sigmask.get();
            if claim_arrived(let_in) | hub.masks().deliver(me) {
                interrupt.happened.set(true);
            }
            outside
        });
        let result = wait(&interrupt);
        if let Some(outside) = outside {
            hub.masks().replace(me, outside);
            hub.masks().deliver(me);
        }
        result
    })
}

/// From the trampoline, on `hub`'s OS thread: `sig`'s handler ran. It counts only while calls
/// wait interruptibly (a signal handled before a call began interrupts nothing).
pub fn arrived(hub: &Hub, sig: c_int) {
    if super::is_own(sig) {
        return;
    }
    if let Some(waiters) = existing()
        && waiters.live.load(Ordering::Acquire) > 0
    {
        waiters.arrived.fetch_or(mask::bit(sig), Ordering::AcqRel);
        hub.request_look();
        return;
    }
    if Hub::several() {
        forward(hub, sig);
    }
}

/// No call waits on this hub: the first other hub where one does is handed the signal (the
/// kernel delivers a process-directed signal to `main`'s OS thread by preference; natively it
/// may interrupt a call of any thread that lets it through). Async-signal-safe: atomics only.
#[cold]
fn forward(here: &Hub, sig: c_int) {
    for hub in Hub::all() {
        if ptr::eq(hub, here) {
            continue;
        }
        let waiters = hub.signal_waiters().cast::<Waiters>();
        // SAFETY: a non-null record was leaked by `waiters` and is never freed; only its
        // atomic count is read from this OS thread.
        if unsafe { waiters.as_ref() }.is_some_and(|w| w.live.load(Ordering::Acquire) > 0) {
            hub.forward_signal(mask::bit(sig));
            return;
        }
    }
}

/// A waiting call of the running thread whose mask just let in `signals`: those that arrived
/// meanwhile were delivered to this very thread, so they interrupt its call rather than
/// another's. Returns whether one did.
pub fn claim_arrived(signals: Bits) -> bool {
    signals != 0
        && existing()
            .is_some_and(|w| w.arrived.fetch_and(!signals, Ordering::AcqRel) & signals != 0)
}

/// The hub's look (see `hub::Owners::look`): signals whose handlers ran since the last one
/// each interrupt one waiting call.
pub fn look(hub: &Hub) {
    let Some(waiters) = existing() else { return };
    let arrived = waiters.arrived.swap(0, Ordering::AcqRel) | hub.take_forwarded_signals();
    for sig in mask::signals(arrived) {
        interrupt(waiters, sig);
    }
}

/// Interrupts the longest-waiting call that lets `sig` through.
fn interrupt(waiters: &Waiters, sig: c_int) {
    if waiters.live.load(Ordering::Acquire) == 0 {
        return;
    }
    let blocked = mask::bit(sig);
    let eligible = |g: &&'static Green| g.sigmask.get() & blocked == 0;
    let chosen = waiters
        .iter()
        .find(|g| g.is_root() && eligible(g))
        .or_else(|| waiters.iter().find(eligible));
    if let Some(green) = chosen
        && let Some(interrupted) = waiters.unlink(green)
    {
        // SAFETY: a listed thread's record is on its stack, which is parked inside
        // `interruptibly` (it leaves the list before it returns).
        unsafe { end(green, interrupted, sig) };
    }
}

/// A signal sent to `target` alone (`pthread_kill`): its interruptible wait, if it is in one,
/// ends as `interrupt` ends the chosen one's.
pub fn interrupt_thread(target: &'static Green, sig: c_int) {
    let Some(waiters) = existing() else { return };
    if waiters.iter().any(|g| ptr::eq(g, target))
        && let Some(interrupted) = waiters.unlink(target)
    {
        // SAFETY: as in `interrupt`.
        unsafe { end(target, interrupted, sig) };
    }
}

/// In a forked child: no call waits any more but the forking thread's, which is not in one
/// (it is in `fork`); signals that arrived in the parent are not the child's.
pub fn after_fork() {
    let Some(waiters) = existing() else { return };
    while let Some(green) = waiters.iter().next() {
        waiters.unlink(green);
        green.interrupt_seq.set(0);
    }
    waiters.live.store(0, Ordering::Relaxed);
    waiters.arrived.store(0, Ordering::Relaxed);
}
