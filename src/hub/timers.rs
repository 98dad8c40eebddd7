//! A hub's timers: one min-heap of deadlines on CLOCK_MONOTONIC. Every timeout (a sleep, a
//! timed join, later poll timeouts and SO_RCVTIMEO) is an entry naming the waiter and the park
//! token it must present; an entry whose waiter was woken some other way is simply stale, and
//! its wake is refused by the token.
//!
//! Beside the heap, a FIFO *lane* takes every timer due no earlier than the last one in it: a
//! hub's sleeps of one length (10 000 threads each sleeping 10 ms in a loop) arrive in deadline
//! order, and a push and a pop there cost a few instructions and touch memory in order, where
//! the heap's cost a sift over log n entries spread over its array. The earliest timer is the
//! earlier of the lane's front and the heap's top, by deadline then insertion order, so the
//! order timers fire in is the heap's alone would give.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

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
    /// Timers in (deadline, seq) order, each pushed when its deadline was no earlier than the
    /// lane's last.
    lane: VecDeque<Timer<W>>,
    seq: u64,
}

impl<W: Copy + Ord> Default for Timers<W> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            lane: VecDeque::new(),
            seq: 0,
        }
    }
}

impl<W: Copy + Ord> Timers<W> {
    pub fn push(&mut self, deadline: u64, waiter: W, token: u64) {
        self.seq += 1;
        let timer = Timer {
            deadline,
            seq: self.seq,
            token,
            waiter,
        };
        // Its seq is the largest yet, so at an equal deadline it still goes after the last.
        if self
            .lane
            .back()
            .is_none_or(|last| last.deadline <= deadline)
        {
            self.lane.push_back(timer);
        } else {
            self.heap.push(Reverse(timer));
        }
    }

    /// Is the lane's front the earliest timer (false when the heap's top is, or both are empty)?
    fn lane_first(&self) -> bool {
        match (self.lane.front(), self.heap.peek()) {
            (Some(lane), Some(Reverse(heap))) => {
                (lane.deadline, lane.seq) < (heap.deadline, heap.seq)
            }
            (lane, _) => lane.is_some(),
        }
    }

    /// The earliest deadline, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.lane_first() {
            self.lane.front().map(|t| t.deadline)
        } else {
            self.heap.peek().map(|Reverse(t)| t.deadline)
        }
    }

    /// The waiter of the earliest timer, if any (for a prefetch while another fires).
    pub fn next_waiter(&self) -> Option<W> {
        if self.lane_first() {
            self.lane.front().map(|t| t.waiter)
        } else {
            self.heap.peek().map(|Reverse(t)| t.waiter)
        }
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<Timer<W>> {
        if self.next_deadline()? > now {
            None
        } else if self.lane_first() {
            self.lane.pop_front()
        } else {
            self.heap.pop().map(|Reverse(t)| t)
        }
    }

    /// Drops every entry for `waiter` (a thread that is going away while it still had some).
    pub fn forget(&mut self, waiter: W) {
        self.heap.retain(|Reverse(t)| t.waiter != waiter);
        self.lane.retain(|t| t.waiter != waiter);
    }

    /// The deadline of `waiter`'s entry for `token`, if it has one (a scan: for a dump).
    pub fn deadline_of(&self, waiter: W, token: u64) -> Option<u64> {
        self.heap
            .iter()
            .map(|Reverse(t)| t)
            .chain(&self.lane)
            .find(|t| t.waiter == waiter && t.token == token)
            .map(|t| t.deadline)
    }

    pub fn len(&self) -> usize {
        self.heap.len() + self.lane.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty() && self.lane.is_empty()
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

    #[test]
    fn lane_and_heap_fire_as_one_heap_would() {
        // Runs of equal steps (the lane) broken by earlier deadlines (the heap), equal
        // deadlines among them: fired by deadline, then in the order they were pushed.
        let mut t = Timers::default();
        let mut pushed = Vec::new();
        let mut x = 7u64;
        for i in 0..500u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let deadline = if x >> 60 < 12 {
                u64::from(i) * 3
            } else {
                (x >> 33) % 1600
            };
            t.push(deadline, i, u64::from(i));
            pushed.push((deadline, i));
            if i % 97 == 0 {
                t.forget(i);
                pushed.pop();
            }
        }
        assert!(!t.lane.is_empty() && !t.heap.is_empty(), "both are used");
        assert_eq!(t.len(), pushed.len());
        pushed.sort();
        let mut fired = Vec::new();
        while let Some(timer) = t.pop_due(u64::MAX) {
            fired.push((timer.deadline, timer.waiter));
        }
        assert_eq!(fired, pushed);
        assert!(t.is_empty());
    }
}
