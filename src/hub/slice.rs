//! The time slice: a thread that keeps making hooked calls that do not block (zero-timeout
//! polls, reads and writes that succeed at once) must still let the other runnable threads of
//! its hub run, as the OS would. Natively a thread that re-posts work to itself until another
//! thread finishes it (V8's main thread waiting for a concurrent sweep) is only slow; on one hub
//! it would wait forever, since nothing it calls ever parks.
//!
//! So the hooked calls that could have blocked are safe points (entry, before the library holds
//! anything): every [`CHECK_EVERY`]th one since the hub last switched threads reads the clock,
//! and once the running thread has had the hub for [`SLICE_NS`] (`GREENWORLD_SLICE`; never
//! under `off`), the hub looks for work (inbox, due timers, ready descriptors) and, if another
//! thread is runnable, the caller yields. A
//! zero-timeout poll that finds nothing ready is no yield point of its own (gevent's
//! `sleep(0)`): natively it returns at once however busy the other threads are, and
//! `test_poll_edge` holds it to that; it yields like any other call once the slice is spent.
//!
//! A root (the program's main thread) woken by the running green thread runs at that thread's
//! next safe point, as natively it would run at once on another core. Python's
//! ThreadingHTTPServer accepts in its main thread, which after each accept waits for the new
//! handler thread to start and for the GIL that thread drops around each system call; when it
//! ran only once the handler parked, the listen queue overflowed and the dropped connections
//! came back after TCP retransmits (200 ms steps in the tail latency).
//!
//! Cost: a thread-local lookup of the hub, an add and two compares per safe point; a clock
//! read every [`CHECK_EVERY`]th; one non-blocking `epoll_wait` per slice at most.

use super::Hub;
use crate::sys::now_ns;
use core::cell::Cell;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

/// How long a thread may keep its hub through calls that do not block, while others are
/// runnable (`GREENWORLD_SLICE`, 2 ms by default; [`NO_SLICE`] when `off`). Set once, with the
/// process's first green thread ([`note_green_made`]), before any safe point looks at it: a
/// safe point reads a static, not the configuration.
static SLICE_NS: AtomicU64 = AtomicU64::new(crate::config::DEFAULT_SLICE_NS);

/// [`SLICE_NS`] under `GREENWORLD_SLICE=off`: no turn ever ends for its length.
const NO_SLICE: u64 = u64::MAX;

/// The time slice in ns, None when `GREENWORLD_SLICE=off` (the monitor's preemption uses it).
pub fn slice_ns() -> Option<u64> {
    let ns = SLICE_NS.load(Ordering::Relaxed);
    (ns != NO_SLICE).then_some(ns)
}

/// A green thread was made: the first one in the process starts the turns
/// ([`note_green_made`]); the others cost one relaxed load.
#[inline(always)]
pub(super) fn note_green() {
    if !GREEN_MADE.load(Ordering::Relaxed) {
        note_green_made();
    }
}

/// The process made its first green thread: from now on safe points look at turns, with the
/// configured slice.
#[cold]
fn note_green_made() {
    let slice = crate::config::get().slice_ns.unwrap_or(NO_SLICE);
    SLICE_NS.store(slice, Ordering::Relaxed);
    GREEN_MADE.store(true, Ordering::Relaxed);
    // Reads and writes are safe points from now on: none may skip its own.
    crate::plain_fds::green_made();
}

/// How many safe points pass between clock reads (a power of two).
const CHECK_EVERY: u32 = 64;

/// A green thread was made in this process (on any hub): only then can a safe point have a
/// thread to switch to. Relaxed: the hub that makes one sees its own store (and [`SLICE_NS`]
/// stored before it), and another OS thread's hub has no green thread of its own until it
/// makes one.
pub(super) static GREEN_MADE: AtomicBool = AtomicBool::new(false);

/// The running thread's turn on its hub.
#[derive(Default)]
pub(super) struct Turn {
    /// Safe points passed since the hub last switched threads.
    calls: Cell<u32>,
    /// When the running thread's slice began (CLOCK_MONOTONIC ns), 0 until first looked at.
    started: Cell<u64>,
    /// What the next safe point is asked to yield for ([`ROOT_WOKEN`], [`WOKEN_WAITS`]; 0:
    /// nothing). An atomic only because the preemption handler may set it on this same OS
    /// thread (a relaxed load or store is a plain move).
    pub(super) asked: AtomicU8,
}

/// [`Turn::asked`]: the root was woken while a green thread ran.
pub(super) const ROOT_WOKEN: u8 = 1;
/// [`Turn::asked`]: a thread woken from another OS thread waits, and a preemption for it found
/// the running thread where it may not be switched out (in libc, the kernel or this library:
/// a thread that keeps its hub through calls that never block, such as a server worker with
/// a request always ready).
const WOKEN_WAITS: u8 = 2;

impl Hub {
    /// Marks the start of a thread's turn on the hub (every switch, either way).
    #[inline]
    pub(super) fn start_turn(&self) {
        self.turn.calls.set(0);
        self.turn.started.set(0);
        self.turn.asked.store(0, Ordering::Relaxed);
    }

    /// Could another thread of this hub be runnable, or become runnable by a look?
    fn others_may_run(&self) -> bool {
        self.parkable()
            && (!self.run_queue.borrow().is_empty()
                || self.inbox_full.load(Ordering::Relaxed)
                || self.watched.load(Ordering::Relaxed) > 0
                || !self.timers.borrow().is_empty()
                || self.root_waits())
    }

    /// Does the root wait for the hub while a green thread runs: woken (by this hub's threads,
    /// or by another hub's, whose wake-up of a root only notifies the poller and so leaves no
    /// entry in the inbox), or yielding? Its wait's token is then taken. Without this look, a
    /// `main` woken from another hub while its own hub's green thread computed ran only once
    /// that thread blocked: a preemption found nothing else to run (xz -T2 at HUBS=2: the
    /// thread that feeds the workers sat behind one of them).
    fn root_waits(&self) -> bool {
        self.in_green()
            && (self.turn.asked.load(Ordering::Relaxed) & ROOT_WOKEN != 0
                || self.root.current_token() == 0)
    }

    /// Is this a moment a thread may be switched out at? Not in a signal handler (it may have
    /// interrupted the hub itself), nor in a vfork child (its parent's hub is not its own).
    fn may_switch_here(&self) -> bool {
        !crate::context::in_handler() && !crate::context::in_vfork_child()
    }

    /// Makes runnable what is ready now (woken by other OS threads, due timers, ready I/O),
    /// and lets it run; false when nothing was.
    fn look_and_yield(&self) -> bool {
        self.drain_inbox();
        self.fire_due_timers();
        if self.watched.load(Ordering::Relaxed) > 0 {
            self.poll_events(Some(0));
        }
        if self.run_queue.borrow().is_empty() && !self.root_waits() {
            return false;
        }
        self.yield_now()
    }

    /// A hooked call that could have blocked begins: yield if the root was woken meanwhile,
    /// or if the running thread's slice is spent and another thread is runnable. Returns the
    /// hub it looked up, for the call to use rather than look again (green threads never
    /// migrate: trap 8); None when it did not look, or this OS thread has none.
    #[inline]
    pub fn safe_point() -> Option<&'static Hub> {
        // Until some hub runs a green thread, no thread has a turn to end (and the look at
        // the hub is a call to `__tls_get_addr`, the cost of every plain read and write).
        if !GREEN_MADE.load(Ordering::Relaxed) {
            return None;
        }
        let hub = Hub::current()?;
        let calls = hub.turn.calls.get().wrapping_add(1);
        hub.turn.calls.set(calls);
        if hub.turn.asked.load(Ordering::Relaxed) != 0 {
            hub.answer_ask();
        } else if calls % CHECK_EVERY == 0 {
            hub.check_slice();
        }
        Some(hub)
    }

    /// A safe point was asked to yield ([`Turn::asked`]).
    #[cold]
    fn answer_ask(&self) {
        let asked = self.turn.asked.load(Ordering::Relaxed);
        if asked & ROOT_WOKEN != 0 {
            self.let_root_run();
        } else if asked & WOKEN_WAITS != 0 {
            self.turn
                .asked
                .store(asked & !WOKEN_WAITS, Ordering::Relaxed);
            if self.may_switch_here() {
                self.look_and_yield();
            }
        }
    }

    /// The root (the program's main thread) was woken by the running green thread: natively
    /// it would run at once on another core, so it runs now, before the waker goes on.
    fn let_root_run(&self) {
        if !self.in_green() {
            // Woken by its own hub loop: it is running.
            self.turn.asked.store(0, Ordering::Relaxed);
        } else if self.may_switch_here() {
            self.yield_now();
        }
    }

    /// For the preemption handler, on this hub's OS thread: a preemption for a thread woken
    /// from another hub could not switch where it found the running thread, so the running
    /// thread's next safe point (its next hooked call that could block) yields to it, however
    /// much of its slice is left. Costs the safe point nothing: it already looks at this word.
    pub fn yield_at_next_safe_point(&self) {
        let asked = self.turn.asked.load(Ordering::Relaxed);
        self.turn
            .asked
            .store(asked | WOKEN_WAITS, Ordering::Relaxed);
    }

    /// The running thread was preempted (`sysmon`: it kept the hub for a slice without a
    /// switch, and was interrupted in the program's own code, then made to call this): as at a
    /// safe point whose slice is spent, it lets the others run if any can.
    #[cold]
    pub fn preempted(&self) {
        if !self.may_switch_here() {
            return;
        }
        if self.turn.asked.load(Ordering::Relaxed) & ROOT_WOKEN != 0 {
            self.let_root_run();
        } else if !self.others_may_run() || !self.look_and_yield() {
            self.note_alone();
        }
    }

    #[cold]
    fn check_slice(&self) {
        let slice = SLICE_NS.load(Ordering::Relaxed);
        if slice == NO_SLICE || !self.may_switch_here() || !self.others_may_run() {
            return;
        }
        let now = now_ns();
        let started = self.turn.started.get();
        if started == 0 {
            // Stamped lazily: a switch costs no clock read.
            self.turn.started.set(now);
            return;
        }
        if now.saturating_sub(started) < slice {
            return;
        }
        if !self.look_and_yield() {
            // Nothing else could run: a new slice, so that an idle hub costs one look per slice.
            self.turn.started.set(now);
        }
    }
}
