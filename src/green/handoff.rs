//! A lock-free hand-off of batches from any thread to one taker: a pool thread gives a hub the
//! stacks it made ready ahead (`stack::StackPool`), and the hub, which must never wait for the
//! pool thread (nor take a lock the allocator could re-enter), takes them all at once.
//!
//! A Treiber stack whose only pop is a swap of the whole list: no node is read after another
//! thread could free it, so there is no ABA to guard against.

use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

struct Node<T> {
    next: *mut Node<T>,
    items: Vec<T>,
}

pub struct Handoff<T> {
    head: AtomicPtr<Node<T>>,
}

// SAFETY: the items move between threads whole (T: Send); the list itself is only touched
// through the atomic head, each node owned by one thread before its push and after the swap
// that takes it.
unsafe impl<T: Send> Send for Handoff<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Handoff<T> {}

impl<T> Default for Handoff<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Handoff<T> {
    pub const fn new() -> Self {
        Handoff {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Publishes a batch; from any thread.
    pub fn push(&self, items: Vec<T>) {
        let node = Box::into_raw(Box::new(Node {
            next: ptr::null_mut(),
            items,
        }));
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: `node` is this thread's alone until the exchange below publishes it.
            unsafe { (*node).next = head };
            match self
                .head
                .compare_exchange_weak(head, node, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }

    /// Nothing to take? One load: for the taker's fast path.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.head.load(Ordering::Relaxed).is_null()
    }

    /// Takes every batch published so far, each item to `each` (newest batch first).
    pub fn take_all(&self, mut each: impl FnMut(T)) {
        let mut node = self.head.swap(ptr::null_mut(), Ordering::Acquire);
        while !node.is_null() {
            // SAFETY: taken off the list by the swap above: ours alone, made by `push`'s Box.
            let taken = unsafe { Box::from_raw(node) };
            node = taken.next;
            taken.items.into_iter().for_each(&mut each);
        }
    }
}

impl<T> Drop for Handoff<T> {
    fn drop(&mut self) {
        self.take_all(drop);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn takes_every_batch_once() {
        let list = Handoff::default();
        assert!(list.is_empty());
        list.push(vec![1, 2]);
        list.push(vec![3]);
        assert!(!list.is_empty());
        let mut got = Vec::new();
        list.take_all(|n| got.push(n));
        got.sort();
        assert_eq!(got, [1, 2, 3]);
        assert!(list.is_empty());
        list.take_all(|_| panic!("nothing left"));
    }

    #[test]
    fn many_pushers_one_taker_lose_nothing() {
        const THREADS: usize = 4;
        const BATCHES: usize = 2_000;
        let list = Arc::new(Handoff::default());
        let pushers: Vec<_> = (0..THREADS)
            .map(|t| {
                let list = Arc::clone(&list);
                std::thread::spawn(move || {
                    for b in 0..BATCHES {
                        list.push(vec![(t * BATCHES + b) * 2, (t * BATCHES + b) * 2 + 1]);
                    }
                })
            })
            .collect();
        let mut got = Vec::new();
        while got.len() < THREADS * BATCHES * 2 {
            list.take_all(|n| got.push(n));
            std::hint::spin_loop();
        }
        for pusher in pushers {
            pusher.join().unwrap();
        }
        list.take_all(|n| got.push(n));
        got.sort_unstable();
        assert!(got.iter().copied().eq(0..THREADS * BATCHES * 2));
    }

    #[test]
    fn dropping_frees_what_was_not_taken() {
        let item = Arc::new(());
        let list = Handoff::default();
        list.push(vec![Arc::clone(&item), Arc::clone(&item)]);
        drop(list);
        assert_eq!(Arc::strong_count(&item), 1);
    }
}
