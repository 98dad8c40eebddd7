//! A hub's timers: one min-heap of deadlines on CLOCK_MONOTONIC. Every timeout (a sleep, a
//! timed join, later poll timeouts and SO_RCVTIMEO) is an entry naming the waiter and the park
//! token it must present; an entry whose waiter was woken some other way is simply stale, and
//! its wake is refused by the token.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timer<W> {
    pub deadline: u64,
    /// Insertion order: equal deadlines fire first-in, first-out.
    seq: u64,
    pub token: u64,
    pub waiter: W,
}

pub struct Timers<W> {
    heap: BinaryHeap<Reverse<Timer<W>>>,
    seq: u64,
}

impl<W: Copy + Ord> Default for Timers<W> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
}

impl<W: Copy + Ord> Timers<W> {
    pub fn push(&mut self, deadline: u64, waiter: W, token: u64) {
        self.seq += 1;
        self.heap.push(Reverse(Timer {
            deadline,
            seq: self.seq,
            token,
            waiter,
        }));
    }

    /// The earliest deadline, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse(t)| t.deadline)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<Timer<W>> {
        if self.next_deadline()? <= now {
            self.heap.pop().map(|Reverse(t)| t)
        } else {
            None
        }
    }

    /// Drops every entry for `waiter` (a thread that is going away while it still had some).
    pub fn forget(&mut self, waiter: W) {
        self.heap.retain(|Reverse(t)| t.waiter != waiter);
    }

    /// The deadline of `waiter`'s entry for `token`, if it has one (a scan: for a dump).
    pub fn deadline_of(&self, waiter: W, token: u64) -> Option<u64> {
        self.heap
            .iter()
            .find(|Reverse(t)| t.waiter == waiter && t.token == token)
            .map(|Reverse(t)| t.deadline)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waits_deadline_is_found_by_its_token() {
        let mut t = Timers::default();
        t.push(30, 'a', 1);
        t.push(10, 'a', 2);
        t.push(20, 'b', 2);
        assert_eq!(t.deadline_of('a', 2), Some(10));
        assert_eq!(t.deadline_of('b', 2), Some(20));
        assert_eq!(
            t.deadline_of('b', 1),
            None,
            "a stale token's entry is not the wait's"
        );
        t.pop_due(10);
        assert_eq!(t.deadline_of('a', 2), None);
    }

    #[test]
    fn fires_in_deadline_order_then_insertion_order() {
        let mut t = Timers::default();
        t.push(30, 'c', 1);
        t.push(10, 'a', 2);
        t.push(20, 'b', 3);
        t.push(10, 'z', 4);
        assert_eq!(t.next_deadline(), Some(10));
        assert!(
            t.pop_due(9).is_none(),
            "nothing is due before the first deadline"
        );
        let fired: Vec<char> = core::iter::from_fn(|| t.pop_due(25))
            .map(|t| t.waiter)
            .collect();
        assert_eq!(fired, ['a', 'z', 'b']);
        assert_eq!(t.len(), 1);
        assert_eq!(
            t.pop_due(u64::MAX).map(|t| (t.waiter, t.token)),
            Some(('c', 1))
        );
        assert!(t.is_empty());
    }

    #[test]
    fn forget_removes_only_that_waiter() {
        let mut t = Timers::default();
        t.push(5, 1u32, 1);
        t.push(6, 2u32, 2);
        t.push(7, 1u32, 3);
        t.forget(1);
        assert_eq!(t.len(), 1);
        assert_eq!(t.pop_due(10).map(|t| t.waiter), Some(2));
    }
}
