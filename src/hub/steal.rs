//! Placement at a thread's first run, with several hubs (`GREENWORLD_HUBS`): a new thread
//! goes on its creator's hub, on a shelf of threads made but not run yet, and a hub with
//! nothing to run takes some from another hub's shelf that stands still (Go's work stealing,
//! `runqsteal`, restricted to threads that never ran): a thread made but not run yet has no
//! stack, no thread-locals and no identity that running code holds, so where it starts is
//! still open, and no started thread ever moves (trap 8 stays true).
//!
//! Why: placing each new thread at `pthread_create` sent half of a batch of short threads to
//! the other hub, each thread's block and table slot then made on one CPU and run and freed
//! on the other (spawn 10 000 then join all cost 3 times one hub's). A thread on a shelf runs
//! where it was made unless its hub leaves it waiting while another hub has nothing to do.
//!
//! The shelf, oldest first: a lock-free ring the hub owns (`ring`, Go's `runq`: the owner
//! appends, the owner and takers claim from the front by CAS), then what did not fit in it,
//! in the hub's inbox (`Inbox::shelf`, under the lock `os::fork` holds across a fork; while
//! it holds any, new threads go there too, so that the ring's are always the older), then the
//! newest in a one-thread slot. The run queue holds one [`Unstarted::mark`] per thread
//! shelved, and the hub starts the oldest shelved thread when it pops a mark (none left, all
//! taken: nothing).
//!
//! When a shelf is taken from: when it has stood still for [`GRACE_NS`] — no thread shelved
//! or started there meanwhile (Go protects a P's newest goroutine, `runnext`, the same way).
//! A shelf that moves belongs to a hub that is busy making threads or getting to them (a
//! batch being made, a create+join pair): taking from it would move short threads to another
//! CPU and back for nothing. One that stands still has a creator that went on computing, or a
//! long thread running in front of it (or an OS thread the kernel set aside for a while). How
//! many: enough to even the two hubs' loads (live threads plus shelved ones), at least one, at
//! most [`TAKE_AT_MOST`], and the next take waits for another [`GRACE_NS`] of stillness (Go
//! takes half the queue; here the hub that made them evens the rest as it starts them:
//! `less_busy_hub`).
//!
//! Who looks: a hub about to sleep in its poller with nothing to run. A hub that shelves a
//! thread notifies one hub asleep (Go's `wakep`), once until that hub looks again; a hub that
//! sees a shelf not yet still sleeps at most [`GRACE_NS`] and looks again (without further
//! notifies). Before a hub sleeps for good it clears its `asked` flag and looks at the shelves
//! once more, after a fence: a thread shelved meanwhile is either seen by it, or its shelver
//! sees it asleep and not asked, and notifies it.

use super::ring::Ring;
use super::{Arrival, Hub};
use crate::green::stack::Stack;
use crate::green::{Green, Unstarted as Start};
use crate::sys::now_ns;
use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence};
use std::collections::VecDeque;

/// How long a shelf must stand still before another hub takes from it.
const GRACE_NS: u64 = 50_000;

/// The longest a hub watching a shelf that keeps moving sleeps between looks ([`GRACE_NS`]
/// first, doubled at each look that found it moved): a batch of short threads made and
/// started by their own hub wakes the watcher a few times rather than every [`GRACE_NS`].
const WATCH_MAX_NS: u64 = 1_000_000;

/// The most threads one look takes from a still shelf: enough to start a few workers that
/// their creator left waiting (the rest spread as their own hub starts them, `less_busy_hub`),
/// few enough that a hub whose OS thread the kernel set aside for a moment (a loaded machine)
/// does not lose a whole batch of short threads to the other CPU.
const TAKE_AT_MOST: usize = 8;

/// Slots of a hub's ring: a batch of this many threads made in a row (before the first
/// starts) shelves without a lock; 128 KiB per library hub, of which only the pages a
/// hub's batches reach are touched. The rest waits in the locked queue.
const RING_SLOTS: usize = 16 * 1024;

/// A hub's part in placement at first run.
pub(super) struct Unstarted {
    /// Stands in the run queue for the oldest shelved thread (never run, never in the table).
    pub(super) mark: &'static Green,
    /// The newest thread shelved while this was empty (Go's `runnext`): the owner puts it here
    /// and takes it back without the lock (a create+join pair costs no locked instruction
    /// but one swap); its stack and body are in its `unstarted`, its mask in `sigmask`.
    next: AtomicPtr<Green>,
    /// The shelf's older part (made once the hub is one of the library's; null before).
    ring: AtomicPtr<Ring<Green>>,
    /// Threads in `Inbox::shelf` (written under the inbox lock, read by any hub).
    overflowed: AtomicUsize,
    /// Threads ever shelved here or started from the shelf by this hub (its own thread's
    /// count): unchanged, the shelf stood still.
    moved: AtomicU64,
    /// This hub is one of the library's (`thread::hubs`): it shelves its new threads and takes
    /// others'. A real OS thread's hub runs its loop only while its own code waits: it does not.
    pooled: AtomicBool,
    /// This hub, asleep, was notified of a shelved thread or watches a shelf: no notify needed.
    asked: AtomicBool,
    /// The shelf this hub watches: (its hub, its `moved`, since when).
    seen: Cell<(usize, u64, u64)>,
    /// A look saw the watched shelf move since the last sleep (`shelf_to_watch`).
    saw_move: Cell<bool>,
    /// How long this hub sleeps before its next look at a shelf it watches.
    watch_ns: Cell<u64>,
}

impl Unstarted {
    pub(super) fn new() -> Unstarted {
        Unstarted {
            mark: Box::leak(Box::new(Green::dead())),
            next: AtomicPtr::new(ptr::null_mut()),
            ring: AtomicPtr::new(ptr::null_mut()),
            overflowed: AtomicUsize::new(0),
            moved: AtomicU64::new(0),
            pooled: AtomicBool::new(false),
            asked: AtomicBool::new(false),
            seen: Cell::new((0, 0, 0)),
            saw_move: Cell::new(false),
            watch_ns: Cell::new(GRACE_NS),
        }
    }

    /// The locked part of the shelf changed (under its inbox lock): its length, for lock-free
    /// readers.
    fn count(&self, shelf: &VecDeque<Arrival>) {
        self.overflowed.store(shelf.len(), Ordering::Relaxed);
    }

    /// The ring, once the hub is one of the library's.
    fn ring(&self) -> Option<&'static Ring<Green>> {
        // SAFETY: made by `set_pooled` and never freed; Acquire pairs with its Release.
        unsafe { self.ring.load(Ordering::Acquire).as_ref() }
    }

    /// The owner shelved or started a thread.
    fn moved(&self) {
        let moved = self.moved.load(Ordering::Relaxed);
        self.moved.store(moved.wrapping_add(1), Ordering::Release);
    }
}

impl Hub {
    /// This hub is one of the library's: its new threads are shelved, and it takes others'.
    pub fn set_pooled(&self, pooled: bool) {
        if pooled && self.unstarted.ring.load(Ordering::Relaxed).is_null() {
            // Before the flag: a pooled hub has its ring. Only the hub that starts the others
            // sets this (`thread::hubs`), before any of its threads is shelved here.
            let ring = Box::leak(Box::new(Ring::new(RING_SLOTS)));
            self.unstarted.ring.store(ring, Ordering::Release);
        }
        self.unstarted.pooled.store(pooled, Ordering::Release);
    }

    pub fn is_pooled(&self) -> bool {
        self.unstarted.pooled.load(Ordering::Relaxed)
    }

    /// Threads on this hub's shelf, not started yet (from any OS thread).
    pub fn shelved(&self) -> usize {
        self.unstarted.ring().map_or(0, Ring::len)
            + self.unstarted.overflowed.load(Ordering::Relaxed)
            + usize::from(!self.unstarted.next.load(Ordering::Relaxed).is_null())
    }

    /// Makes `green` (not yet started, its block naming this hub, this hub's own thread)
    /// runnable here, or on a hub with nothing to run that takes it first (see the module's
    /// comment). `stack` was reserved from this hub's pool.
    pub fn spawn_stealable(
        &'static self,
        green: &'static Green,
        stack: Stack,
        body: fn(&'static Green) -> usize,
    ) {
        green.sigmask.set(self.current.get().sigmask.get());
        // SAFETY: the thread has not started and is not findable by another hub yet.
        unsafe { *green.unstarted.get() = Some(Start { stack, body }) };
        let next = &self.unstarted.next;
        let green = green as *const Green as *mut Green;
        if next.load(Ordering::Relaxed).is_null() {
            // Only this thread fills the slot (others may empty it): no race to fill it.
            next.store(green, Ordering::Release);
        } else {
            // The newest in the slot, the one before to the shelf's end: oldest first.
            let before = next.swap(green, Ordering::AcqRel);
            if !before.is_null() {
                self.shelve(before);
            }
        }
        self.unstarted.moved();
        super::slice::note_green();
        self.run_queue.borrow_mut().push_back(self.unstarted.mark);
        self.tell_a_sleeper();
    }

    /// Appends `green` (taken from the slot) to this hub's shelf: to the ring unless it is full
    /// or the locked queue holds threads (which are younger than the ring's).
    fn shelve(&self, green: *mut Green) {
        let ring = self.unstarted.ring();
        if self.unstarted.overflowed.load(Ordering::Relaxed) == 0
            && ring.is_some_and(|ring| ring.push(green))
        {
            return;
        }
        // SAFETY: green blocks are never freed; the swap that took it made it ours alone.
        let green: &'static Green = unsafe { &*green };
        let mut inbox = self.lock_inbox();
        inbox.shelf.push_back(Self::arrival_of(green));
        self.unstarted.count(&inbox.shelf);
    }

    /// The oldest thread on this hub's shelf but the slot, by its own thread: the ring's
    /// first, else the locked queue's, the ring then refilled from it in one go. Its start is
    /// in its block.
    fn take_oldest_own(&self) -> Option<&'static Green> {
        let ring = self.unstarted.ring();
        if let Some(green) = ring.and_then(Ring::pop) {
            // SAFETY: green blocks are never freed; the CAS that claimed it made it ours.
            return Some(unsafe { &*green });
        }
        if self.unstarted.overflowed.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut inbox = self.lock_inbox();
        let oldest = inbox.shelf.pop_front().map(|arrival| {
            let green = arrival.green;
            Self::unarrive(arrival);
            green
        });
        // The ring is empty and only this thread fills it: the queue's front moves there,
        // still older than what stays behind.
        if let Some(ring) = ring {
            while let Some(arrival) = inbox.shelf.pop_front() {
                let green = arrival.green as *const Green as *mut Green;
                Self::unarrive(arrival);
                if !ring.push(green) {
                    // SAFETY: just pushed back by `unarrive`, ours under the lock.
                    inbox.shelf.push_front(Self::arrival_of(unsafe { &*green }));
                    break;
                }
            }
        }
        self.unstarted.count(&inbox.shelf);
        oldest
    }

    /// Puts an arrival's start back into its block, as the ring holds threads.
    fn unarrive(arrival: Arrival) {
        let green = arrival.green;
        green.sigmask.set(arrival.mask);
        // SAFETY: the thread has not started and is ours alone (under the inbox lock, out of
        // the queue, not yet in the ring).
        unsafe {
            *green.unstarted.get() = Some(Start {
                stack: arrival.stack,
                body: arrival.body,
            })
        };
    }

    /// Notifies one hub asleep in its poller, not notified yet, that a thread is shelved
    /// (pairs with the fence in `shelf_to_watch`).
    fn tell_a_sleeper(&self) {
        fence(Ordering::SeqCst);
        for hub in Hub::all() {
            if ptr::eq(hub, self) || !hub.is_pooled() || !hub.idle() {
                continue;
            }
            let asked = &hub.unstarted.asked;
            if asked.load(Ordering::Relaxed) || asked.swap(true, Ordering::AcqRel) {
                continue;
            }
            if let Err(e) = hub.poller.notify() {
                crate::log!(Error, "cannot notify a hub: {e}");
            }
            return;
        }
    }

    /// A mark was popped from the run queue: the oldest thread still on this hub's shelf,
    /// made this hub's (None: others took them all).
    #[cold]
    pub(super) fn take_own_shelved(&self) -> Option<&'static Green> {
        // The shelf's oldest first, when it has any; else the slot.
        let green = match self.take_oldest_own() {
            Some(green) => green,
            None => self.take_next()?,
        };
        self.unstarted.moved();
        if let Some(other) = self.less_busy_hub(green) {
            let arrival = Self::arrival_of(green);
            // SAFETY: hubs are leaked when made, never freed.
            let this: &'static Hub = unsafe { &*(self as *const Hub) };
            crate::stats::taken(1);
            arrival.green.set_hub_ptr(other as *const Hub as *const ());
            other.place_masked(
                this,
                arrival.green,
                arrival.stack,
                arrival.body,
                arrival.mask,
            );
            return None;
        }
        // Its start stays in its block, for `first_run`, which makes its stack ready (or
        // starts it on a resident one) and its thread-locals, as `adopt` would.
        self.count_in(green, green.sigmask.get());
        Some(green)
    }

    /// Empties the slot (`Unstarted::next`), by this hub or by one taking from it.
    fn take_next(&self) -> Option<&'static Green> {
        let next = &self.unstarted.next;
        if next.load(Ordering::Relaxed).is_null() {
            return None;
        }
        let green = next.swap(ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: green blocks are never freed; this swap made it ours alone.
        unsafe { green.as_ref() }
    }

    /// What a thread taken from the slot starts with: its stack and body, its mask.
    fn arrival_of(green: &'static Green) -> Arrival {
        // SAFETY: written before it was published (the Release store, paired with the swap
        // that took it); only whoever took it touches it now.
        let Some(Start { stack, body }) = (unsafe { (*green.unstarted.get()).take() }) else {
            crate::fatal!("a shelved green thread with no stack")
        };
        Arrival {
            green,
            stack,
            mask: green.sigmask.get(),
            body,
        }
    }

    /// A pooled hub that runs fewer threads than this one (live or arriving, the shelves not
    /// counted: a batch of short threads ends as fast as it starts; and the hub's root,
    /// `Hub::root_counts_for`), for `green`, about to start here; None: it starts here (ties
    /// too). This is what spreads a few long threads made in a row (workers, connections) over
    /// the hubs. Without the root, a `main` that went on working saw its hub as empty and kept
    /// its first thread beside it (pigz's writer: README, Several hubs).
    fn less_busy_hub(&self, green: &Green) -> Option<&'static Hub> {
        let runs = |hub: &Hub| {
            hub.alive()
                + hub.arriving.load(Ordering::Relaxed)
                + usize::from(hub.root_counts_for(green))
        };
        let mine = runs(self);
        if mine == 0 || !self.is_pooled() || !green.affinity.load(Ordering::Relaxed).is_null() {
            return None;
        }
        Hub::all()
            .filter(|hub| !ptr::eq(*hub, self) && hub.is_pooled())
            .map(|hub| (runs(hub), hub))
            .filter(|(load, _)| *load < mine)
            .min_by_key(|(load, _)| *load)
            .map(|(_, hub)| hub)
    }

    /// Nothing is runnable here (several hubs): takes threads from another hub's shelf that
    /// stood still. True when some were taken.
    #[cold]
    pub(super) fn take_from_others(&self) -> bool {
        if !self.is_pooled() {
            return false;
        }
        let Some(victim) = self.still_shelf() else {
            return false;
        };
        // Enough to even the loads, at least one (this hub has nothing to run), at most a few.
        let (theirs, mine) = (victim.load(), self.load());
        let wanted = (theirs.saturating_sub(mine).div_ceil(2)).clamp(1, TAKE_AT_MOST);
        // The next take waits for the shelf to stand still again.
        self.unstarted.seen.set((0, 0, 0));
        self.take_from(victim, wanted)
    }

    /// Another hub's shelf with threads on it that stood still for [`GRACE_NS`] since this
    /// hub first saw it so; a shelf not still yet is watched from now on.
    fn still_shelf(&self) -> Option<&'static Hub> {
        let victim = Hub::all().find(|hub| !ptr::eq(*hub, self) && hub.shelved() > 0)?;
        let key = victim as *const Hub as usize;
        let moved = victim.unstarted.moved.load(Ordering::Acquire);
        let now = now_ns();
        let (watched, seen_moved, since) = self.unstarted.seen.get();
        if watched == key && seen_moved == moved {
            return (now.saturating_sub(since) >= GRACE_NS).then_some(victim);
        }
        if watched == key {
            self.unstarted.saw_move.set(true);
        } else {
            // Another shelf (or the next take's): watched closely again.
            self.unstarted.saw_move.set(false);
            self.unstarted.watch_ns.set(GRACE_NS);
        }
        self.unstarted.seen.set((key, moved, now));
        None
    }

    /// Takes up to `wanted` threads from the front of `victim`'s shelf (the oldest), those
    /// whose CPU mask was set after they were shelved left there, and makes them this hub's.
    fn take_from(&self, victim: &'static Hub, wanted: usize) -> bool {
        // A thread given a CPU mask is placed by it (`thread::hubs`), never taken.
        let maskless = |green: &Green| green.affinity.load(Ordering::Relaxed).is_null();
        let mut taken = Vec::new();
        if let Some(ring) = victim.unstarted.ring() {
            // Those at the front without a mask (one with a mask stops the grab: its hub
            // starts it, and the rest with it, in order).
            let mut grabbed = [ptr::null_mut(); TAKE_AT_MOST];
            // SAFETY: green blocks are never freed.
            let n = ring.grab(&mut grabbed[..wanted], |green| maskless(unsafe { &*green }));
            // SAFETY: as above; the CAS in `grab` made them ours alone.
            taken.extend(
                grabbed[..n]
                    .iter()
                    .map(|green| Self::arrival_of(unsafe { &**green })),
            );
        }
        if taken.len() < wanted && victim.unstarted.overflowed.load(Ordering::Relaxed) > 0 {
            let mut inbox = victim.lock_inbox();
            let mut at = 0;
            while taken.len() < wanted && at < inbox.shelf.len() {
                if maskless(inbox.shelf[at].green) {
                    taken.extend(inbox.shelf.remove(at));
                } else {
                    at += 1;
                }
            }
            victim.unstarted.count(&inbox.shelf);
        }
        if taken.len() < wanted
            && let Some(next) = victim.take_next().map(Self::arrival_of)
        {
            if maskless(next.green) {
                taken.push(next);
            } else {
                // Back to its hub's shelf, which starts it (its mark is in its run queue).
                let mut inbox = victim.lock_inbox();
                inbox.shelf.push_back(next);
                victim.unstarted.count(&inbox.shelf);
            }
        }
        let took = !taken.is_empty();
        crate::stats::taken(taken.len());
        for mut arrival in taken {
            arrival.green.set_hub_ptr(self as *const Hub as *const ());
            // Its reservation goes back to the pool it came from.
            arrival.stack.set_home(victim as *const Hub as usize);
            self.spawn_masked(arrival.green, arrival.stack, arrival.body, arrival.mask);
        }
        took
    }

    /// About to sleep in the poller (its idle flag set, nothing runnable): how long it may
    /// sleep before it looks at another hub's shelf again (None: as long as it likes; Some(0):
    /// not at all, a shelf is still now). Pairs with the fence in `tell_a_sleeper`.
    pub(super) fn shelf_to_watch(&self) -> Option<u64> {
        if !self.is_pooled() || !Hub::several() {
            return None;
        }
        let asked = &self.unstarted.asked;
        if asked.load(Ordering::Relaxed) {
            asked.store(false, Ordering::Relaxed);
        }
        fence(Ordering::SeqCst);
        let unstarted = &self.unstarted;
        if !Hub::all().any(|hub| !ptr::eq(hub, self) && hub.shelved() > 0) {
            unstarted.watch_ns.set(GRACE_NS);
            return None;
        }
        if self.still_shelf().is_some() {
            return Some(0);
        }
        // A shelf that moved since the last look is being made and started by its own hub: the
        // next look comes later (each look of this hub's OS thread may take a CPU from that
        // hub's, on a machine where the other CPUs are busy).
        if unstarted.saw_move.replace(false) {
            let longer = (unstarted.watch_ns.get() * 2).min(WATCH_MAX_NS);
            unstarted.watch_ns.set(longer);
        }
        // Watching: a thread shelved meanwhile needs no notify.
        asked.store(true, Ordering::Relaxed);
        Some(unstarted.watch_ns.get())
    }

    /// In a fork child (its shelf already emptied, under the inbox lock): the hubs are
    /// started again, this one first, by the child's next `pthread_create` (`thread::hubs`).
    pub(super) fn unstarted_after_fork(&self) {
        self.unstarted.overflowed.store(0, Ordering::Relaxed);
        if let Some(ring) = self.unstarted.ring() {
            // Its threads are the parent's, retired with the other hubs'.
            ring.clear();
        }
        self.unstarted
            .next
            .store(ptr::null_mut(), Ordering::Relaxed);
        self.unstarted.asked.store(false, Ordering::Relaxed);
        self.set_pooled(false);
    }

    /// Could this hub take a thread from another's shelf now (while it spins)?
    pub(super) fn could_take(&self) -> bool {
        self.is_pooled() && self.still_shelf().is_some()
    }
}
