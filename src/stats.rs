//! Counters for `GREENWORLD_STATS`: process-wide relaxed atomics, counted only when the summary
//! was asked for (decided once, by the configuration): each is a locked read-modify-write on a
//! line every hub shares, four to six of them per spawn and join or per condition-variable
//! hand-off, for a summary nobody reads otherwise.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// `GREENWORLD_STATS` is set: the counters count.
static ON: AtomicBool = AtomicBool::new(false);

/// Starts counting (the configuration, when `GREENWORLD_STATS` asks for the summary).
pub fn turn_on() {
    ON.store(true, Relaxed);
}

#[inline]
fn on() -> bool {
    ON.load(Relaxed)
}

/// Why a green thread (or a hub's root) parked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum ParkReason {
    Sleep = 0,
    Join = 1,
    Yield = 2,
    Exit = 3,
    /// A mutex, condition variable, rwlock, semaphore, barrier or once-guard.
    Sync = 4,
    /// A socket or pipe not ready.
    Io = 5,
    /// A call handed to the thread pool.
    Pool = 6,
    /// A regular-file call handed to the thread pool (`GREENWORLD_FILEIO=pool`).
    File = 7,
}

impl ParkReason {
    pub const ALL: [ParkReason; 8] = [
        ParkReason::Sleep,
        ParkReason::Join,
        ParkReason::Yield,
        ParkReason::Exit,
        ParkReason::Sync,
        ParkReason::Io,
        ParkReason::Pool,
        ParkReason::File,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            ParkReason::Sleep => "sleep",
            ParkReason::Join => "join",
            ParkReason::Yield => "yield",
            ParkReason::Exit => "exit",
            ParkReason::Sync => "sync",
            ParkReason::Io => "io",
            ParkReason::Pool => "pool",
            ParkReason::File => "file",
        }
    }
}

const REASONS: usize = ParkReason::ALL.len();

static CREATED: AtomicU64 = AtomicU64::new(0);
static ALIVE: AtomicU64 = AtomicU64::new(0);
static PEAK_ALIVE: AtomicU64 = AtomicU64::new(0);
static SWITCHES: AtomicU64 = AtomicU64::new(0);
static PREEMPTED: AtomicU64 = AtomicU64::new(0);
static TAKEN: AtomicU64 = AtomicU64::new(0);
static PARKS: [AtomicU64; REASONS] = [const { AtomicU64::new(0) }; REASONS];
static WOKE_ACROSS: AtomicU64 = AtomicU64::new(0);
static SPINS: AtomicU64 = AtomicU64::new(0);
static SPINS_FOUND: AtomicU64 = AtomicU64::new(0);
static SPIN_NS: AtomicU64 = AtomicU64::new(0);
static SPINS_PASSED: AtomicU64 = AtomicU64::new(0);
static SPINS_CPU_WANTED: AtomicU64 = AtomicU64::new(0);

#[inline]
pub fn thread_created() {
    if !on() {
        return;
    }
    CREATED.fetch_add(1, Relaxed);
    let alive = ALIVE.fetch_add(1, Relaxed) + 1;
    PEAK_ALIVE.fetch_max(alive, Relaxed);
}

#[inline]
pub fn thread_ended() {
    if !on() {
        return;
    }
    ALIVE.fetch_sub(1, Relaxed);
}

/// A thread was preempted (made to call the hub's yield by `sysmon`).
pub fn preempted() {
    if !on() {
        return;
    }
    PREEMPTED.fetch_add(1, Relaxed);
}

/// Threads made on one hub were started by another (`hub::steal`: taken, or handed over).
pub fn taken(threads: usize) {
    if !on() {
        return;
    }
    TAKEN.fetch_add(threads as u64, Relaxed);
}

#[inline]
pub fn switched() {
    if !on() {
        return;
    }
    SWITCHES.fetch_add(1, Relaxed);
}

#[inline]
pub fn parked(reason: ParkReason) {
    if !on() {
        return;
    }
    PARKS[reason as usize].fetch_add(1, Relaxed);
}

/// A hub's thread woke a thread of, or placed one on, another hub (`hub::spin`).
#[inline]
pub fn woke_across() {
    if !on() {
        return;
    }
    WOKE_ACROSS.fetch_add(1, Relaxed);
}

/// A hub spun `ns` before sleeping (`hub::spin`); `found`: work came meanwhile.
pub fn spun(found: bool, ns: u64) {
    if !on() {
        return;
    }
    SPINS.fetch_add(1, Relaxed);
    SPIN_NS.fetch_add(ns, Relaxed);
    if found {
        SPINS_FOUND.fetch_add(1, Relaxed);
    }
}

/// A hub that could have spun slept at once: its recent spins found nothing.
pub fn spin_skipped() {
    if !on() {
        return;
    }
    SPINS_PASSED.fetch_add(1, Relaxed);
}

/// A hub's spin was cut short (to one `sched_yield` and a last look): no CPU was free.
pub fn spin_cut_short() {
    if !on() {
        return;
    }
    SPINS_CPU_WANTED.fetch_add(1, Relaxed);
}

pub struct Totals {
    pub created: u64,
    pub peak_alive: u64,
    pub switches: u64,
    pub preempted: u64,
    pub taken: u64,
    pub parks: [u64; REASONS],
    pub woke_across: u64,
    pub spins: u64,
    pub spins_found: u64,
    pub spin_ns: u64,
    pub spins_passed: u64,
    pub spins_cpu_wanted: u64,
}

pub fn total() -> Totals {
    Totals {
        created: CREATED.load(Relaxed),
        peak_alive: PEAK_ALIVE.load(Relaxed),
        switches: SWITCHES.load(Relaxed),
        preempted: PREEMPTED.load(Relaxed),
        taken: TAKEN.load(Relaxed),
        parks: core::array::from_fn(|i| PARKS[i].load(Relaxed)),
        woke_across: WOKE_ACROSS.load(Relaxed),
        spins: SPINS.load(Relaxed),
        spins_found: SPINS_FOUND.load(Relaxed),
        spin_ns: SPIN_NS.load(Relaxed),
        spins_passed: SPINS_PASSED.load(Relaxed),
        spins_cpu_wanted: SPINS_CPU_WANTED.load(Relaxed),
    }
}
