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
use core::cell::{Cell, RefCell};
use core::ptr;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use libc::c_int;
use std::collections::VecDeque;

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
    /// (thread, wait number, its Interrupt), oldest first. An entry whose thread's current
    /// wait number differs is stale (the wait ended): skipped, and compacted away.
    list: RefCell<VecDeque<(&'static Green, u64, *const Interrupt)>>,
    seq: Cell<u64>,
    /// How many are in `list` (read by signal handlers, which must not borrow).
    live: AtomicUsize,
    /// Signals whose handlers ran on this OS thread while calls waited.
    arrived: AtomicU64,
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
            list: RefCell::new(VecDeque::new()),
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
    waiters.list.borrow_mut().push_back((me, seq, interrupted));
    // Only this OS thread writes the count (its handlers and other hubs only read it): no
    // locked add, which costs 6-16 ns on the benchmarks' VM, twice on every wait.
    let live = &waiters.live;
    live.store(live.load(Ordering::Relaxed) + 1, Ordering::Release);
    let result = wait();
    me.interrupt_seq.set(0);
    let live = live.load(Ordering::Relaxed) - 1;
    waiters.live.store(live, Ordering::Release);
    let mut list = waiters.list.borrow_mut();
    if list.len() > 64 && list.len() > 2 * live {
        list.retain(|&(g, seq, _)| g.interrupt_seq.get() == seq);
    }
    result
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
    let mut list = waiters.list.borrow_mut();
    let eligible = |&(g, seq, _): &(&Green, u64, *const Interrupt)| {
        g.interrupt_seq.get() == seq && g.sigmask.get() & blocked == 0
    };
    let chosen = list
        .iter()
        .position(|entry| entry.0.is_root() && eligible(entry))
        .or_else(|| list.iter().position(eligible));
    if let Some((green, _, interrupted)) = chosen.and_then(|at| list.remove(at)) {
        drop(list);
        // SAFETY: a live entry's Interrupt is on its waiter's stack, which is parked inside
        // `interruptibly` (its wait number still matches).
        unsafe { end(green, interrupted, sig) };
    }
}

/// A signal sent to `target` alone (`pthread_kill`): its interruptible wait, if it is in one,
/// ends as `interrupt` ends the chosen one's.
pub fn interrupt_thread(target: &'static Green, sig: c_int) {
    let Some(waiters) = existing() else { return };
    let mut list = waiters.list.borrow_mut();
    let at = list
        .iter()
        .position(|&(g, seq, _)| ptr::eq(g, target) && g.interrupt_seq.get() == seq);
    if let Some((green, _, interrupted)) = at.and_then(|at| list.remove(at)) {
        drop(list);
        // SAFETY: as in `interrupt`.
        unsafe { end(green, interrupted, sig) };
    }
}

/// In a forked child: no call waits any more but the forking thread's, which is not in one
/// (it is in `fork`); signals that arrived in the parent are not the child's.
pub fn after_fork() {
    let Some(waiters) = existing() else { return };
    waiters.list.borrow_mut().clear();
    waiters.live.store(0, Ordering::Relaxed);
    waiters.arrived.store(0, Ordering::Relaxed);
}
