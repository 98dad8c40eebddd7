//! Spinning before sleeping, with several hubs: a hub that has just woken a thread of another
//! hub (an unlock, a post, a signal, a new thread placed there) usually gets an answer within
//! microseconds (the other side's turn of a hand-off). Sleeping in `epoll_wait` meanwhile costs
//! the waker an eventfd write and the sleeper a wake-up through the scheduler, for each
//! hand-off: a mutex+condvar ping-pong between two hubs took 11 µs a round trip where native
//! threads' futexes take 6.6 µs. So such a hub first watches, for a moment, the flags a notify
//! announces (its inbox, a look asked for, its root's wait); while it does, a notify does not
//! write (`Poller::notify`), and the hand-off costs no system call on either side.
//!
//! The spin pays only when it can (Go spins an M only while another P is busy, and at most
//! half of them; glibc's adaptive mutex spins for twice its recent average):
//! - *only on a free CPU* (`idle_cpu`): a hub spins only while the system's runnable threads
//!   are no more than the process's CPUs, asked after its first round of looks and then every
//!   [`CHECK_CPU_NS`] (an answer that young is reused, across spins too: a ping-pong spins
//!   every few microseconds). When a thread waits for a CPU, the spin ends with one
//!   `sched_yield` and a last look: the waiting thread may be the very one this hub waits for,
//!   queued behind it (a ping-pong on a loaded machine: 7.7–8.7 µs a round trip with the
//!   yield, 15–19 µs sleeping at once, native 7.1–8.6 µs), else it gets the CPU (a load client
//!   beside a server) and the hub sleeps when it is next picked. Before, the spin went on for
//!   50 µs with a `sched_yield` after every round of looks, and kept a share of a CPU another
//!   thread wanted (memcached at two hubs: 45 677 yields in 3 s, CPU its client lacked);
//! - *for as long as it recently paid* ([`Budget`]): a spin that found nothing halves the next
//!   one's length (down to [`MIN_NS`]); at that floor, an empty spin makes the hub pass its
//!   next 1, 3, 7 … 63 chances; a spin that found work doubles the length again (up to
//!   [`MAX_NS`]) and ends the passing.
//!
//! Only after waking another hub's thread: a hub whose threads only wait for I/O or timers
//! (an echo server's, one hub's, a pool's) sleeps at once, as before, and spends no CPU on it.
//! A hub never spins at `GREENWORLD_HUBS=1` (nothing else would hand it work quickly).

use super::Hub;
use super::idle_cpu::Probe;
use crate::green::Green;
use crate::stats;
use crate::sys::now_ns;
use core::cell::Cell;
use core::sync::atomic::Ordering;

/// The longest spin: a hand-off's answer that takes longer is not waited for.
const MAX_NS: u64 = 50_000;

/// The shortest spin, where halving stops and passing starts.
const MIN_NS: u64 = 2_000;

/// Chances passed after an empty spin at [`MIN_NS`], at most (doubled, plus one, each time).
const MAX_PASSES: u32 = 63;

/// How long the answer to "is a CPU free?" holds, within a spin and across spins.
pub(super) const CHECK_CPU_NS: u64 = 5_000;

/// Looks between clock reads.
const LOOKS_PER_CLOCK_READ: u32 = 32;

/// One hub's spin state (its own thread's: `Cell`s).
pub(super) struct Spin {
    /// This hub's thread woke a thread of another hub since it last went idle.
    woke_another: Cell<bool>,
    budget: Budget,
    probe: Probe,
}

impl Spin {
    pub(super) const fn new() -> Spin {
        Spin {
            woke_another: Cell::new(false),
            budget: Budget::new(),
            probe: Probe::new(),
        }
    }

    /// Opens what the spins will read, on the hub's own OS thread as it is made.
    pub(super) fn open(&self) {
        self.probe.open();
    }

    /// In a fork child, for a hub whose OS thread it does not have.
    pub(super) fn close_in_child(&self) {
        self.probe.close_in_child();
    }
}

/// How long the next spin may last, learnt from the last ones.
struct Budget {
    ns: Cell<u64>,
    /// Chances left to pass before the next spin.
    passes_left: Cell<u32>,
    /// Chances the next empty spin at the floor makes the hub pass.
    passes_next: Cell<u32>,
}

impl Budget {
    const fn new() -> Budget {
        Budget {
            ns: Cell::new(MAX_NS),
            passes_left: Cell::new(0),
            passes_next: Cell::new(1),
        }
    }

    /// The length of a spin now, or None: pass this chance.
    fn take(&self) -> Option<u64> {
        let left = self.passes_left.get();
        if left > 0 {
            self.passes_left.set(left - 1);
            return None;
        }
        Some(self.ns.get())
    }

    /// A spin found work: the next may be longer, and none is passed.
    fn paid(&self) {
        self.ns.set((self.ns.get() * 2).min(MAX_NS));
        self.passes_next.set(1);
    }

    /// A spin of its whole length found nothing.
    fn wasted(&self) {
        let ns = self.ns.get();
        if ns > MIN_NS {
            self.ns.set((ns / 2).max(MIN_NS));
        } else {
            let passes = self.passes_next.get();
            self.passes_left.set(passes);
            self.passes_next.set((passes * 2 + 1).min(MAX_PASSES));
        }
    }
}

/// How a spin ended.
#[derive(PartialEq, Eq)]
enum End {
    Found,
    /// Its time was up.
    Empty,
    /// A timer of the hub's was due.
    Timer,
    /// Another thread wanted the CPU.
    Wanted,
}

impl Hub {
    /// This hub's thread woke a thread of another hub: its next idle moment may spin first.
    #[inline]
    pub(super) fn note_woke_another(&self) {
        self.spin.woke_another.set(true);
        stats::woke_across();
    }

    /// Nothing is runnable and the root still waits on `token`: spins for work for a moment
    /// if this hub has woken another hub's thread since it last slept and the spin may pay
    /// (see the module's comment). True when work came (the caller loops again instead of
    /// sleeping).
    #[inline]
    pub(super) fn spin_for_work(&self, root: &'static Green, token: u64) -> bool {
        // Only the library's own hubs (`GREENWORLD_HUBS` > 1): at one hub a wake across OS
        // threads comes from a pool thread or a real thread's hub, whose answers are slower.
        if !self.spin.woke_another.replace(false) || !Hub::several() {
            return false;
        }
        self.spin(root, token)
    }

    /// [`spin_for_work`](Hub::spin_for_work) past its first checks: out of line, so the hub
    /// loop that inlines those stays as it was for one hub.
    #[inline(never)]
    fn spin(&self, root: &'static Green, token: u64) -> bool {
        let Some(budget) = self.spin.budget.take() else {
            stats::spin_skipped();
            return false;
        };
        let start = now_ns();
        let budget_end = start + budget;
        let end = match self.timers.borrow().next_deadline() {
            Some(deadline) => deadline.min(budget_end),
            None => budget_end,
        };
        self.poller.start_spinning();
        let end = 'spin: loop {
            for _ in 0..LOOKS_PER_CLOCK_READ {
                if self.work_came(root, token) {
                    break 'spin End::Found;
                }
                core::hint::spin_loop();
            }
            // A shelved thread another hub has not started (`steal`): read at clock reads
            // only, it needs one.
            if self.could_take() {
                break End::Found;
            }
            let now = now_ns();
            if now >= end {
                // A timer due cuts a spin short without telling about the answers' delay.
                break if now >= budget_end {
                    End::Empty
                } else {
                    End::Timer
                };
            }
            // Asked after a first round of looks (a ping-pong's answer often comes in it),
            // then as often as the probe's answer is [`CHECK_CPU_NS`] old.
            if !self.spin.probe.cpu_free(now) {
                break End::Wanted;
            }
        };
        if end == End::Wanted {
            stats::spin_cut_short();
            // One yield while still spinning (a wake meanwhile writes nothing): the thread that
            // wants a CPU may be the one this hub waits for, queued behind it; else it gets
            // this CPU now and the hub sleeps when it is next picked.
            // SAFETY: no arguments.
            unsafe { crate::sys::syscall!(libc::SYS_sched_yield) };
        }
        self.poller.stop_spinning();
        // A notify that saw this hub spinning did not write: look once more now it stops.
        let came = end == End::Found || self.work_came(root, token);
        if came {
            self.spin.budget.paid();
        } else if end == End::Empty {
            self.spin.budget.wasted();
        }
        stats::spun(came, now_ns() - start);
        came
    }

    /// What a notify announces (see `Poller::notify`'s callers), read from atomics.
    #[inline]
    fn work_came(&self, root: &'static Green, token: u64) -> bool {
        self.inbox_full.load(Ordering::Acquire)
            || self.look_requested.load(Ordering::Acquire)
            || (!self.root_gone.get() && !root.is_parked_on(token))
    }
}

#[cfg(test)]
mod tests {
    use super::{Budget, MAX_NS, MAX_PASSES, MIN_NS};

    #[test]
    fn empty_spins_shorten_then_pass_and_a_paid_one_restores() {
        let b = Budget::new();
        assert_eq!(b.take(), Some(MAX_NS));
        // Halved down to the floor.
        let mut ns = MAX_NS;
        while ns > MIN_NS {
            b.wasted();
            ns = (ns / 2).max(MIN_NS);
            assert_eq!(b.take(), Some(ns));
        }
        // At the floor: pass 1, then 3, 7 ... up to MAX_PASSES chances.
        for passes in [1, 3, 7, 15, 31, 63, 63] {
            b.wasted();
            for _ in 0..passes {
                assert_eq!(b.take(), None);
            }
            assert_eq!(b.take(), Some(MIN_NS));
        }
        assert_eq!(b.passes_next.get(), MAX_PASSES);
        b.paid();
        assert_eq!(b.take(), Some(2 * MIN_NS));
        b.wasted();
        b.wasted();
        assert_eq!(b.take(), None, "a paid spin starts the passing over at 1");
        assert_eq!(b.take(), Some(MIN_NS));
        for _ in 0..10 {
            b.paid();
        }
        assert_eq!(b.take(), Some(MAX_NS));
    }
}
