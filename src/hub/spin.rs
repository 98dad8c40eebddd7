//! Spinning before sleeping, with several hubs: a hub that has just woken a thread of another
//! hub (an unlock, a post, a signal, a new thread placed there) usually gets an answer within
//! microseconds (the other side's turn of a hand-off). Sleeping in `epoll_wait` meanwhile costs
//! the waker an eventfd write and the sleeper a wake-up through the scheduler, for each
//! hand-off: a mutex+condvar ping-pong between two hubs took 11 µs a round trip where native
//! threads' futexes take 6.6 µs. So such a hub first watches, for at most [`SPIN_NS`], the
//! flags a notify announces (its inbox, a look asked for, its root's wait); while it does, a
//! notify does not write (`Poller::notify`), and the hand-off costs no system call on either
//! side.
//!
//! Only after waking another hub's thread: a hub whose threads only wait for I/O or timers
//! (an echo server's, one hub's, a pool's) sleeps at once, as before, and spends no CPU on it.
//! A hub never spins at `GREENWORLD_HUBS=1` (nothing else would hand it work quickly).

use super::Hub;
use crate::green::Green;
use crate::sys::now_ns;
use core::sync::atomic::Ordering;

/// How long a hub that woke another hub's thread watches for work before it sleeps.
const SPIN_NS: u64 = 50_000;

/// Looks between clock reads.
const LOOKS_PER_CLOCK_READ: u32 = 32;

impl Hub {
    /// This hub's thread woke a thread of another hub: its next idle moment spins first.
    #[inline]
    pub(super) fn note_woke_another(&self) {
        self.woke_another.set(true);
    }

    /// Nothing is runnable and the root still waits on `token`: spins for work for a moment
    /// if this hub has woken another hub's thread since it last slept. True when work came
    /// (the caller loops again instead of sleeping).
    pub(super) fn spin_for_work(&self, root: &'static Green, token: u64) -> bool {
        // Only the library's own hubs (`GREENWORLD_HUBS` > 1): at one hub a wake across OS
        // threads comes from a pool thread or a real thread's hub, whose answers are slower.
        if !self.woke_another.replace(false) || !Hub::several() {
            return false;
        }
        let end = match self.timers.borrow().next_deadline() {
            Some(deadline) => deadline.min(now_ns() + SPIN_NS),
            None => now_ns() + SPIN_NS,
        };
        self.poller.start_spinning();
        let mut came = false;
        'spin: loop {
            for _ in 0..LOOKS_PER_CLOCK_READ {
                if self.work_came(root, token) {
                    came = true;
                    break 'spin;
                }
                core::hint::spin_loop();
            }
            // A shelved thread another hub has not started (`steal`): read at clock reads
            // only, it needs one.
            if self.could_take() {
                came = true;
                break;
            }
            if now_ns() >= end {
                break;
            }
            // On a machine with more runnable threads than cores, the thread this hub waits
            // for may be waiting for this very core: let it run (a spin that held the core
            // made a ping-pong 10 times slower than sleeping at once).
            // SAFETY: no arguments.
            unsafe { crate::sys::syscall!(libc::SYS_sched_yield) };
        }
        self.poller.stop_spinning();
        // A notify that saw this hub spinning did not write: look once more now it stops.
        came || self.work_came(root, token)
    }

    /// What a notify announces (see `Poller::notify`'s callers), read from atomics.
    #[inline]
    fn work_came(&self, root: &'static Green, token: u64) -> bool {
        self.inbox_full.load(Ordering::Acquire)
            || self.look_requested.load(Ordering::Acquire)
            || (!self.root_gone.get() && !root.is_parked_on(token))
    }
}
