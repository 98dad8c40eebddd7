//! Counters for `GREENWORLD_STATS`: process-wide relaxed atomics, counted only when the summary
//! was asked for (decided once, by the configuration): each is a locked read-modify-write on a
//! line every hub shares, four to six of them per spawn and join or per condition-variable
//! hand-off, for a summary nobody reads otherwise.

use core::fmt::{self, Write};
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

impl Totals {
    /// The summary line's counts, after the process's own fields (`pid=… program=…`): each
    /// field ` name=value`, then the groups ` name=key:value,…` (`hubs` only where a thread
    /// was woken across hubs). Tests and scripts parse the line: its shape stays. Written into
    /// the caller's buffer (no allocation: it runs at exit, where the allocator may be gone).
    pub fn write(&self, out: &mut impl Write) -> fmt::Result {
        for (name, value) in [
            ("created", self.created),
            ("peak_alive", self.peak_alive),
            ("switches", self.switches),
            ("preempted", self.preempted),
            ("taken", self.taken),
        ] {
            write!(out, " {name}={value}")?;
        }
        let parks = ParkReason::ALL.map(|reason| (reason.name(), self.parks[reason as usize]));
        write_group(out, "parks", &parks)?;
        if self.woke_across > 0 {
            write_group(
                out,
                "hubs",
                &[
                    ("woke", self.woke_across),
                    ("spins", self.spins),
                    ("found", self.spins_found),
                    ("spin_us", self.spin_ns / 1000),
                    ("passed", self.spins_passed),
                    ("cpu_wanted", self.spins_cpu_wanted),
                ],
            )?;
        }
        Ok(())
    }
}

/// ` name=key:value,key:value…`
fn write_group(out: &mut impl Write, name: &str, entries: &[(&str, u64)]) -> fmt::Result {
    write!(out, " {name}=")?;
    for (i, (key, value)) in entries.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        write!(out, "{sep}{key}:{value}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::LineBuf;

    fn sample() -> Totals {
        Totals {
            created: 3,
            peak_alive: 2,
            switches: 40,
            preempted: 1,
            taken: 5,
            parks: [1, 2, 3, 4, 5, 6, 7, 8],
            woke_across: 0,
            spins: 9,
            spins_found: 10,
            spin_ns: 11_999,
            spins_passed: 12,
            spins_cpu_wanted: 13,
        }
    }

    #[test]
    fn the_summary_keeps_the_shape_that_tests_parse() {
        let mut t = sample();
        let mut line = LineBuf::new();
        t.write(&mut line).unwrap();
        assert_eq!(
            core::str::from_utf8(line.as_bytes()).unwrap(),
            " created=3 peak_alive=2 switches=40 preempted=1 taken=5 \
             parks=sleep:1,join:2,yield:3,exit:4,sync:5,io:6,pool:7,file:8"
        );
        t.woke_across = 14;
        let mut line = LineBuf::new();
        t.write(&mut line).unwrap();
        assert!(
            core::str::from_utf8(line.as_bytes()).unwrap().ends_with(
                ",file:8 hubs=woke:14,spins:9,found:10,spin_us:11,passed:12,cpu_wanted:13"
            )
        );
    }
}
