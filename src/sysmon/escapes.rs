//! `GREENWORLD_ESCAPES=1`: at exit, a table of the system calls that blocked a hub's OS thread
//! while it had green threads (calls that escaped the hooks, trap 1): per call, how many
//! episodes, their total and worst length, and the caller seen most often. The monitor's
//! samples ([`super::blocked`]) fill it, every [`super::TICK_NS`]: lengths are multiples of
//! that, and calls shorter than it are mostly missed.
//!
//! One function prints it ([`write_report`]), so that other reports (the thread dump) can
//! include it. The monitor is its only writer; readers may see a row mid-update (harmless).

use crate::sys::LineBuf;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// System call numbers kept (x86-64's reach 462; larger ones share the last row).
const CALLS: usize = 512;
/// Callers kept per call; a new one past these replaces the least seen.
const CALLERS: usize = 4;

struct Row {
    count: AtomicU64,
    total_ns: AtomicU64,
    worst_ns: AtomicU64,
    callers: [AtomicUsize; CALLERS],
    caller_counts: [AtomicU64; CALLERS],
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Row = Row {
    count: AtomicU64::new(0),
    total_ns: AtomicU64::new(0),
    worst_ns: AtomicU64::new(0),
    callers: [const { AtomicUsize::new(0) }; CALLERS],
    caller_counts: [const { AtomicU64::new(0) }; CALLERS],
};
static ROWS: [Row; CALLS] = [EMPTY; CALLS];

/// An episode of `nr` that lasted `ns`, made from `caller` (a return address; 0: unknown).
/// Callers are told apart by address, not by function: naming one takes file reads, done only
/// for the table's top callers when it is printed.
pub fn record(nr: i64, ns: u64, caller: usize) {
    let row = &ROWS[(nr.max(0) as usize).min(CALLS - 1)];
    row.count.store(row.count.load(Relaxed) + 1, Relaxed);
    row.total_ns.store(row.total_ns.load(Relaxed) + ns, Relaxed);
    if ns > row.worst_ns.load(Relaxed) {
        row.worst_ns.store(ns, Relaxed);
    }
    let slot = (0..CALLERS)
        .find(|&i| row.callers[i].load(Relaxed) == caller)
        .unwrap_or_else(|| {
            let least = (0..CALLERS)
                .min_by_key(|&i| row.caller_counts[i].load(Relaxed))
                .unwrap_or(0);
            row.callers[least].store(caller, Relaxed);
            row.caller_counts[least].store(0, Relaxed);
            least
        });
    let count = &row.caller_counts[slot];
    count.store(count.load(Relaxed) + 1, Relaxed);
}

/// Writes the table to `fd`, one line a call, the longest total first (nothing when no call
/// escaped). Raw writes: callable from any report.
pub fn write_report(fd: libc::c_int) {
    report(|line| {
        let mut rest = line;
        while !rest.is_empty() {
            // SAFETY: a valid buffer; a raw write (the runtime never calls its own hooks).
            let n = unsafe { crate::sys::syscall!(libc::SYS_write, fd, rest.as_ptr(), rest.len()) };
            if n <= 0 {
                return;
            }
            rest = &rest[n as usize..];
        }
    });
}

/// The table's lines without their `greenworld: ` prefix, for the thread dump (whose writer
/// adds it); nothing when no call escaped.
pub fn for_each_line(mut out: impl FnMut(&str)) {
    report(|line| {
        let text = core::str::from_utf8(line).unwrap_or("");
        out(text.strip_prefix("greenworld: ").unwrap_or(text));
    });
}

fn report(mut out: impl FnMut(&[u8])) {
    let mut order: [u16; CALLS] = core::array::from_fn(|i| i as u16);
    order.sort_unstable_by_key(|&i| core::cmp::Reverse(ROWS[i as usize].total_ns.load(Relaxed)));
    let mut header = true;
    for &nr in &order {
        let row = &ROWS[nr as usize];
        let count = row.count.load(Relaxed);
        if count == 0 {
            break;
        }
        let mut line = LineBuf::new();
        if header {
            header = false;
            let _ = writeln!(
                line,
                "greenworld: escapes (pid {}, {}): system calls that blocked a hub's OS \
                 thread while it had green threads, sampled every {} ms:",
                crate::log::pid(),
                crate::log::program(),
                super::TICK_NS / 1_000_000
            );
            out(line.as_bytes());
            line = LineBuf::new();
        }
        let _ = line.write_str("greenworld: escapes: ");
        let _ = super::blocked::write_syscall(&mut line, nr as i64);
        let _ = write!(
            line,
            " count={} total_ms={} worst_ms={} top_caller=",
            count,
            row.total_ns.load(Relaxed) / 1_000_000,
            row.worst_ns.load(Relaxed) / 1_000_000
        );
        let top = (0..CALLERS)
            .max_by_key(|&i| row.caller_counts[i].load(Relaxed))
            .map_or(0, |i| row.callers[i].load(Relaxed));
        if top == 0 {
            let _ = line.write_str("unknown");
        } else {
            let _ = super::symbolize::write_place(&mut line, top);
        }
        let _ = line.write_str("\n");
        out(line.as_bytes());
    }
}

static AT_EXIT: AtomicBool = AtomicBool::new(false);

/// Prints the table at exit (once registered).
pub fn at_exit() {
    if AT_EXIT.swap(true, Relaxed) {
        return;
    }
    // SAFETY: an extern "C" fn taking nothing, as atexit expects.
    if unsafe { libc::atexit(report_at_exit) } != 0 {
        crate::log!(Warn, "cannot register the escapes table with atexit");
    }
}

extern "C" fn report_at_exit() {
    report(crate::log::to_stderr);
}

/// In a fork child: the parent's episodes are not the child's.
pub fn after_fork() {
    for row in &ROWS {
        row.count.store(0, Relaxed);
        row.total_ns.store(0, Relaxed);
        row.worst_ns.store(0, Relaxed);
    }
}
