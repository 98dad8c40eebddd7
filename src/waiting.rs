//! What a parked thread waits on, and since when: kept in its control block for the green-thread
//! dump and the deadlock check (`dump`). Each park stores one packed word and one tick count,
//! plain stores (relaxed atomics, so another OS thread may read them for a dump): no lock, no
//! read-modify-write; the stamp is the coarse clock ([`ticks`]).

use crate::stats::ParkReason;

/// What a parked thread (green or a hub's root) waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitOn {
    /// `nanosleep` and friends (the deadline is the thread's timer).
    Sleep,
    /// `pthread_join` of the thread whose handle this is.
    Join(usize),
    /// A root in `pthread_exit` from `main`: every green thread of its hub must end.
    AllDone,
    /// The root of a hub made only to run green threads (`GREENWORLD_HUBS`): it waits for
    /// nothing but them, for good.
    Serving,
    Mutex(usize),
    Cond(usize),
    RwLock(usize),
    Sem(usize),
    Barrier(usize),
    Once(usize),
    /// A raw `syscall(SYS_futex, FUTEX_WAIT…)` on a private futex word.
    Futex(usize),
    /// A descriptor not ready to read.
    FdRead(i32),
    /// A descriptor not ready to write.
    FdWrite(i32),
    /// `poll`, `select`, `epoll_wait` (or a `sigwait`'s signalfd): this many descriptors.
    Fds(usize),
    /// `pause` or `sigsuspend`: only a signal's handler ends it.
    Signal,
    /// A call running on the thread pool.
    Pool,
    /// A regular-file call running on the thread pool.
    File,
    /// `waitpid` and friends: a child process.
    Child,
}

/// The low byte: the kind above the `ParkReason` (three bits, so that counting a park takes
/// no lookup by kind).
const KIND_BITS: u32 = 8;
const REASON_BITS: u32 = 3;
const REASON_MASK: u64 = (1 << REASON_BITS) - 1;
const _: () = assert!(ParkReason::ALL.len() == 1 << REASON_BITS);

impl WaitOn {
    /// The counter `GREENWORLD_STATS` puts the park under.
    pub const fn reason(self) -> ParkReason {
        match self {
            WaitOn::Sleep => ParkReason::Sleep,
            WaitOn::Join(_) => ParkReason::Join,
            WaitOn::AllDone | WaitOn::Serving => ParkReason::Exit,
            WaitOn::Mutex(_)
            | WaitOn::Cond(_)
            | WaitOn::RwLock(_)
            | WaitOn::Sem(_)
            | WaitOn::Barrier(_)
            | WaitOn::Once(_)
            | WaitOn::Futex(_) => ParkReason::Sync,
            WaitOn::FdRead(_) | WaitOn::FdWrite(_) | WaitOn::Fds(_) | WaitOn::Signal => {
                ParkReason::Io
            }
            WaitOn::Pool | WaitOn::Child => ParkReason::Pool,
            WaitOn::File => ParkReason::File,
        }
    }

    /// One word: the kind (never 0) and the stats counter in the low byte, the address, descriptor or count above
    /// it (user-space addresses fit in 56 bits). Made at the park's call site, where the kind
    /// is a constant: a shift and an or.
    #[inline(always)]
    pub const fn word(self) -> WaitWord {
        WaitWord(self.pack())
    }

    #[inline(always)]
    const fn pack(self) -> u64 {
        let (kind, value) = match self {
            WaitOn::Sleep => (1, 0),
            WaitOn::Join(h) => (2, h as u64),
            WaitOn::AllDone => (3, 0),
            WaitOn::Mutex(a) => (4, a as u64),
            WaitOn::Cond(a) => (5, a as u64),
            WaitOn::RwLock(a) => (6, a as u64),
            WaitOn::Sem(a) => (7, a as u64),
            WaitOn::Barrier(a) => (8, a as u64),
            WaitOn::Once(a) => (9, a as u64),
            WaitOn::FdRead(fd) => (10, fd as u32 as u64),
            WaitOn::FdWrite(fd) => (11, fd as u32 as u64),
            WaitOn::Fds(n) => (12, n as u64),
            WaitOn::Signal => (13, 0),
            WaitOn::Pool => (14, 0),
            WaitOn::File => (15, 0),
            WaitOn::Child => (16, 0),
            WaitOn::Futex(a) => (17, a as u64),
            WaitOn::Serving => (18, 0),
        };
        (value << KIND_BITS) | (kind << REASON_BITS) | self.reason() as u64
    }

    /// The wait a word from [`WaitOn::pack`] names; None for 0 (never parked) or garbage.
    pub const fn unpack(word: u64) -> Option<WaitOn> {
        let value = (word >> KIND_BITS) as usize;
        Some(match (word & ((1 << KIND_BITS) - 1)) >> REASON_BITS {
            1 => WaitOn::Sleep,
            2 => WaitOn::Join(value),
            3 => WaitOn::AllDone,
            4 => WaitOn::Mutex(value),
            5 => WaitOn::Cond(value),
            6 => WaitOn::RwLock(value),
            7 => WaitOn::Sem(value),
            8 => WaitOn::Barrier(value),
            9 => WaitOn::Once(value),
            10 => WaitOn::FdRead(value as u32 as i32),
            11 => WaitOn::FdWrite(value as u32 as i32),
            12 => WaitOn::Fds(value),
            13 => WaitOn::Signal,
            14 => WaitOn::Pool,
            15 => WaitOn::File,
            16 => WaitOn::Child,
            17 => WaitOn::Futex(value),
            18 => WaitOn::Serving,
            _ => return None,
        })
    }

    /// Could something other than another thread of the program end this wait: a descriptor,
    /// a timer, a child, a pool thread, a signal? (A deadlock is a set of threads none of
    /// whose waits can.) `Sleep` always has a timer; timed waits are judged by their timer.
    pub const fn wakes_by_itself(self) -> bool {
        matches!(
            self,
            WaitOn::Sleep
                | WaitOn::FdRead(_)
                | WaitOn::FdWrite(_)
                | WaitOn::Fds(_)
                | WaitOn::Signal
                | WaitOn::Pool
                | WaitOn::File
                | WaitOn::Child
        )
    }
}

/// A packed [`WaitOn`], as a park carries it and a control block keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitWord(pub u64);

impl WaitWord {
    /// The `GREENWORLD_STATS` counter of the wait: its low three bits.
    #[inline]
    pub fn reason(self) -> ParkReason {
        ParkReason::ALL[(self.0 & REASON_MASK) as usize]
    }
}

/// A cheap, monotonic stamp for "parked since", turned into nanoseconds only when a dump is
/// printed ([`ns_since`]). On x86-64 the kernel's coarse monotonic clock in nanoseconds (a vDSO
/// read of the time at the last scheduler tick, so precise to a tick, 1-4 ms): the time-stamp
/// counter it replaced is one instruction, but `rdtsc` takes 15 ns on the Firecracker VM the
/// benchmarks run on (50-150 beside other jobs) and the coarse clock 5 (issue 15: two parks a
/// mutex + condvar round trip).
/// On aarch64 the virtual counter (one `mrs`, not trapped).
#[inline]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "aarch64")]
    {
        let t: u64;
        // SAFETY: reading the virtual counter is allowed at EL0 on Linux.
        unsafe { core::arch::asm!("mrs {}, cntvct_el0", out(reg) t, options(nomem, nostack)) };
        t
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid, writable timespec (left at 0 if the call fails).
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        // The monotonic clock is never negative and centuries from overflowing: no saturating
        // arithmetic (`sys::timespec_ns`), a dozen instructions a park.
        (ts.tv_sec as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(ts.tv_nsec as u64)
    }
}

/// Are [`ticks`] nanoseconds already (no rate to measure)?
const TICKS_ARE_NS: bool = !cfg!(target_arch = "aarch64");

/// The caller's stack pointer (one instruction; an address near it elsewhere).
#[inline(always)]
pub fn stack_pointer() -> usize {
    let sp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads a register.
    unsafe {
        core::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reads a register.
    unsafe {
        core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let here = 0u8;
        sp = &raw const here as usize;
    }
    sp
}

/// A tick count and the monotonic clock read together (at the first hub's birth), to scale
/// later tick differences by.
static EPOCH: [core::sync::atomic::AtomicU64; 2] =
    [const { core::sync::atomic::AtomicU64::new(0) }; 2];

/// Notes the first tick/clock pair (once; not on any hot path).
pub fn mark_epoch() {
    use core::sync::atomic::Ordering::Relaxed;
    if EPOCH[0].load(Relaxed) == 0 {
        EPOCH[1].store(crate::sys::now_ns(), Relaxed);
        EPOCH[0].store(ticks(), Relaxed);
    }
}

/// How many nanoseconds ago the tick count `then` was, scaled by the ticks and clock that
/// passed since [`mark_epoch`] (a dump is printed well after the first hub was made; when not,
/// a short spin measures the rate).
pub fn ns_since(then: u64) -> u64 {
    use core::sync::atomic::Ordering::Relaxed;
    if TICKS_ARE_NS {
        return ticks().saturating_sub(then);
    }
    let (mut t0, mut n0) = (EPOCH[0].load(Relaxed), EPOCH[1].load(Relaxed));
    let (mut t1, mut n1) = (ticks(), crate::sys::now_ns());
    if t0 == 0 || n1.saturating_sub(n0) < 10_000_000 {
        (t0, n0) = (t1, n1);
        while n1.saturating_sub(n0) < 2_000_000 {
            (t1, n1) = (ticks(), crate::sys::now_ns());
        }
    }
    let (dt, dn) = (t1.saturating_sub(t0), n1.saturating_sub(n0));
    if dt == 0 {
        return 0;
    }
    let ago = ticks().saturating_sub(then) as u128;
    (ago * dn as u128 / dt as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wait_packs_and_unpacks() {
        let addr = 0x7fff_dead_beef_usize;
        for on in [
            WaitOn::Sleep,
            WaitOn::Join(addr),
            WaitOn::AllDone,
            WaitOn::Serving,
            WaitOn::Mutex(addr),
            WaitOn::Cond(addr),
            WaitOn::RwLock(addr),
            WaitOn::Sem(addr),
            WaitOn::Barrier(addr),
            WaitOn::Once(addr),
            WaitOn::FdRead(1023),
            WaitOn::FdWrite(0),
            WaitOn::Fds(3),
            WaitOn::Signal,
            WaitOn::Pool,
            WaitOn::File,
            WaitOn::Child,
            WaitOn::Futex(addr),
        ] {
            assert_eq!(WaitOn::unpack(on.word().0), Some(on));
            assert_eq!(on.word().reason(), on.reason());
        }
        assert_eq!(WaitOn::unpack(0), None);
    }

    #[test]
    fn ticks_scale_to_time() {
        let then = ticks();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let ago = ns_since(then);
        // Only a lower bound: the sleep lasts at least 30 ms however busy the machine.
        assert!(ago >= 15_000_000, "{ago} ns");
    }
}
