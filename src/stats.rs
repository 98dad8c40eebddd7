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

pub struct Totals {
    pub created: u64,
    pub peak_alive: u64,
    pub switches: u64,
    pub preempted: u64,
    pub taken: u64,
    pub parks: [u64; REASONS],
}

pub fn total() -> Totals {
    Totals {
        created: CREATED.load(Relaxed),
        peak_alive: PEAK_ALIVE.load(Relaxed),
        switches: SWITCHES.load(Relaxed),
        preempted: PREEMPTED.load(Relaxed),
        taken: TAKEN.load(Relaxed),
        parks: core::array::from_fn(|i| PARKS[i].load(Relaxed)),
    }
}
