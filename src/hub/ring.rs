//! A bounded ring of pointers with one producer and any number of consumers, none of them
//! locking (Go's per-P `runq`: `runqput`, `runqget`, `runqgrab`). The producer (a hub's own
//! OS thread) writes a slot and then publishes it by moving `tail`; every consumer, the owner
//! included, claims a run of slots from `head` with one compare-and-swap, having read them
//! first: a consumer whose slots were claimed by another (or overwritten by the producer
//! after another claimed them and the ring went round) fails its CAS and reads again.
//!
//! Why: the shelf of threads made but not run yet (`steal`) was behind the inbox lock, taken
//! twice per thread (shelve, start) on the `pthread_create` path at several hubs; the ring
//! costs the owner a load and two stores to shelve and one CAS to start. What does not fit
//! goes to the locked queue (`steal`).

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// `head` and `tail` on lines of their own: consumers write one, the producer the other.
#[repr(align(64))]
struct Padded(AtomicUsize);

pub struct Ring<T> {
    /// The next slot to claim (any consumer, by CAS); only ever grows.
    head: Padded,
    /// The next slot to fill (the producer's only); only ever grows.
    tail: Padded,
    /// A power of two of slots; slot i holds item i modulo its length.
    slots: Box<[AtomicPtr<T>]>,
}

impl<T> Ring<T> {
    /// A ring of `capacity` slots (a power of two), zeroed by the allocator: pages of a large
    /// ring are not touched until used.
    pub fn new(capacity: usize) -> Ring<T> {
        assert!(capacity.is_power_of_two());
        let Ok(layout) = std::alloc::Layout::array::<AtomicPtr<T>>(capacity) else {
            crate::fatal!("a ring too large")
        };
        // SAFETY: the layout has a non-zero size (capacity is at least 1).
        let memory = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<AtomicPtr<T>>();
        if memory.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        // SAFETY: `capacity` zeroed slots, allocated with the global allocator by the layout
        // Box frees with; a zeroed AtomicPtr is a valid null pointer.
        let slots = unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(memory, capacity)) };
        Ring {
            head: Padded(AtomicUsize::new(0)),
            tail: Padded(AtomicUsize::new(0)),
            slots,
        }
    }

    fn slot(&self, index: usize) -> &AtomicPtr<T> {
        &self.slots[index & (self.slots.len() - 1)]
    }

    /// Items in the ring (from any thread: a moment's view).
    pub fn len(&self) -> usize {
        // Head first: the tail read after it is at least as far, so this cannot wrap.
        let head = self.head.0.load(Ordering::Acquire);
        self.tail.0.load(Ordering::Acquire).wrapping_sub(head)
    }

    /// Appends `item` (the producer only; a second producer would overwrite the first's
    /// item, never unsound: slots are atomics). False: the ring is full.
    pub fn push(&self, item: *mut T) -> bool {
        // Acquire: the consumer that moved head past a slot has read it before we overwrite.
        let head = self.head.0.load(Ordering::Acquire);
        let tail = self.tail.0.load(Ordering::Relaxed);
        if tail.wrapping_sub(head) >= self.slots.len() {
            return false;
        }
        self.slot(tail).store(item, Ordering::Relaxed);
        // Release: the item (and what it points to) is visible to whoever sees the new tail.
        self.tail.0.store(tail.wrapping_add(1), Ordering::Release);
        true
    }

    /// Claims the oldest item (any consumer).
    pub fn pop(&self) -> Option<*mut T> {
        let mut one = [ptr::null_mut()];
        (self.grab(&mut one, |_| true) == 1).then_some(one[0])
    }

    /// Claims up to `into.len()` of the oldest items, as many from the front as `wanted`
    /// accepts in a row (any consumer); returns how many, written to the front of `into`.
    pub fn grab(&self, into: &mut [*mut T], wanted: impl Fn(*mut T) -> bool) -> usize {
        loop {
            let head = self.head.0.load(Ordering::Acquire);
            // Acquire: pairs with the producer's Release, so the slots below hold its items.
            let tail = self.tail.0.load(Ordering::Acquire);
            let ready = tail.wrapping_sub(head).min(into.len());
            let mut n = 0;
            while n < ready {
                let item = self.slot(head.wrapping_add(n)).load(Ordering::Relaxed);
                if !wanted(item) {
                    break;
                }
                into[n] = item;
                n += 1;
            }
            if n == 0 {
                return 0;
            }
            // The CAS is what makes the items ours alone: a failed one means another consumer
            // claimed some (and the producer may have refilled their slots), so read again.
            if self
                .head
                .0
                .compare_exchange(
                    head,
                    head.wrapping_add(n),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                return n;
            }
        }
    }

    /// Forgets every item (in a fork child, where no other thread runs).
    pub fn clear(&self) {
        self.head.0.store(0, Ordering::Relaxed);
        self.tail.0.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::Ring;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A producer that pops some of its own items races thieves grabbing batches: every item
    /// is claimed exactly once. Breaking the CAS (a plain store of the new head) makes
    /// consumers claim the same slots, and this fails.
    #[test]
    fn nothing_lost_or_claimed_twice() {
        const ITEMS: usize = 200_000;
        const THIEVES: usize = 3;
        // Small: the producer wraps round often, overwriting slots thieves may be reading.
        let ring: &'static Ring<u8> = Box::leak(Box::new(Ring::new(16)));
        let done: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
        let item = |i: usize| (i + 1) as *mut u8;
        let thieves: Vec<_> = (0..THIEVES)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    let mut batch = [core::ptr::null_mut(); 4];
                    loop {
                        let finished = done.load(Ordering::Acquire);
                        let n = ring.grab(&mut batch[..1 + t], |_| true);
                        got.extend(batch[..n].iter().map(|p| *p as usize));
                        if n == 0 && finished {
                            return got;
                        }
                    }
                })
            })
            .collect();
        let mut mine = Vec::new();
        for i in 0..ITEMS {
            while !ring.push(item(i)) {
                mine.extend(ring.pop().map(|p| p as usize));
            }
            if i % 3 == 0 {
                mine.extend(ring.pop().map(|p| p as usize));
            }
        }
        done.store(true, Ordering::Release);
        let mut all = mine;
        for thief in thieves {
            all.extend(thief.join().unwrap());
        }
        all.sort_unstable();
        let expected: Vec<usize> = (1..=ITEMS).collect();
        assert_eq!(all.len(), ITEMS, "items lost or claimed twice");
        assert!(all == expected, "items lost or claimed twice");
    }

    /// A consumer takes only the run at the front that it accepts, oldest first.
    #[test]
    fn grab_takes_an_accepted_prefix_in_order() {
        let ring: Ring<u8> = Ring::new(8);
        for i in 1..=5 {
            assert!(ring.push(i as *mut u8));
        }
        let mut into = [core::ptr::null_mut(); 8];
        assert_eq!(ring.grab(&mut into, |p| (p as usize) < 3), 2);
        assert_eq!(&into[..2], &[1 as *mut u8, 2 as *mut u8]);
        assert_eq!(ring.len(), 3);
        assert_eq!(ring.pop(), Some(3 as *mut u8));
        for i in 6..=11 {
            assert!(ring.push(i as *mut u8));
        }
        assert!(!ring.push(12 as *mut u8), "full at its capacity");
        assert_eq!(ring.len(), 8);
    }
}
