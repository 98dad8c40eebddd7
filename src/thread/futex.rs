//! `syscall(SYS_futex, …)` made by the program (HotSpot's safepoint barrier, libstdc++'s
//! atomic waits): a private `FUTEX_WAIT` from a thread that may park parks it in the parking
//! lot under the futex word's address instead of blocking its OS thread, where the green
//! thread that would wake it could never run; a private `FUTEX_WAKE` wakes those green waiters
//! first, then the kernel's for the rest of the count. Anything else goes to the kernel, after
//! waking every green waiter of the words it names (a futex waiter must expect a spurious
//! wake-up; a lost one would hang it). A shared (non-private) wait parks too (libstdc++'s
//! static-initialisation guard waits on a shared futex, while the thread that will wake it is
//! a green thread of the same OS thread), but for at most [`SHARED_RECHECK_NS`] at a time: a
//! wake from another process, through shared memory, never passes our hook, so the wait then
//! ends as a spurious wake-up (0), which every futex waiter must expect, and the caller looks
//! at its word again. The library's own futexes (Rust std's locks, through the same
//! exported `syscall`) never come here: the export passes the caller's address along.

use crate::hub::Hub;
use crate::park::{self, Parked, WakeList};
use crate::sys::{now_ns, syscall6};
use crate::waiting::WaitOn;
use core::sync::atomic::{AtomicU32, Ordering};
use libc::{c_long, timespec};

const FUTEX_WAIT: c_long = 0;
const FUTEX_WAKE: c_long = 1;
const FUTEX_WAIT_BITSET: c_long = 9;
const FUTEX_WAKE_BITSET: c_long = 10;
const FUTEX_PRIVATE_FLAG: c_long = 128;
const FUTEX_CLOCK_REALTIME: c_long = 256;
const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

/// The longest a green thread waits on a shared futex before it answers a spurious wake-up.
pub const SHARED_RECHECK_NS: u64 = 10_000_000;

unsafe extern "C" {
    /// The ELF header of this very object (a hidden symbol the linker defines: never another
    /// object's).
    static __ehdr_start: libc::Elf64_Ehdr;
}

/// Is `address` in this library's own mapped segments?
fn in_library(address: usize) -> bool {
    static END: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);
    let start = &raw const __ehdr_start as usize;
    let mut end = END.load(Ordering::Relaxed);
    if end == 0 {
        // SAFETY: the object's own ELF header and program headers, mapped with its first
        // segment; read-only.
        unsafe {
            let header = &__ehdr_start;
            let phdrs = core::slice::from_raw_parts(
                (start + header.e_phoff as usize) as *const libc::Elf64_Phdr,
                header.e_phnum as usize,
            );
            end = phdrs
                .iter()
                .filter(|p| p.p_type == libc::PT_LOAD)
                .map(|p| start + (p.p_vaddr + p.p_memsz) as usize)
                .max()
                .unwrap_or(start + 1);
        }
        END.store(end, Ordering::Relaxed);
    }
    (start..end).contains(&address)
}

/// The answer to `syscall(SYS_futex, args…)` from code at `caller` (0: unknown), or None: the
/// kernel's.
///
/// # Safety
/// As `futex(2)` with these arguments.
pub unsafe fn call(args: [c_long; 6], caller: usize) -> Option<c_long> {
    let op = args[1];
    if caller == 0 || !super::active() || in_library(caller) {
        return None;
    }
    let shared = op & FUTEX_PRIVATE_FLAG == 0;
    let word = args[0] as usize;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    let any = args[5] as u32 == FUTEX_BITSET_MATCH_ANY;
    match cmd {
        FUTEX_WAIT => {
            // SAFETY: per our contract.
            unsafe {
                wait(
                    word,
                    args[2] as u32,
                    args[3] as *const timespec,
                    None,
                    shared,
                )
            }
        }
        FUTEX_WAIT_BITSET if any => {
            let clock = if op & FUTEX_CLOCK_REALTIME != 0 {
                libc::CLOCK_REALTIME
            } else {
                libc::CLOCK_MONOTONIC
            };
            // SAFETY: per our contract.
            unsafe {
                wait(
                    word,
                    args[2] as u32,
                    args[3] as *const timespec,
                    Some(clock),
                    shared,
                )
            }
        }
        FUTEX_WAKE => Some(wake(word, args[2] as i32, op)),
        FUTEX_WAKE_BITSET if any => Some(wake(word, args[2] as i32, op)),
        _ => {
            // Requeues, wake-ops, bitsets: the kernel's, after a spurious wake-up of ours.
            wake_green(word, i32::MAX);
            wake_green(args[4] as usize, i32::MAX);
            None
        }
    }
}

/// # Safety
/// `word` is a futex word; `timeout` null or readable.
unsafe fn wait(
    word: usize,
    expected: u32,
    timeout: *const timespec,
    absolute: Option<libc::clockid_t>,
    shared: bool,
) -> Option<c_long> {
    Hub::current().filter(|hub| hub.parkable())?;
    let deadline = if timeout.is_null() {
        None
    } else {
        // SAFETY: readable (caller).
        let ts = unsafe { &*timeout };
        if !(0..1_000_000_000).contains(&ts.tv_nsec) || ts.tv_sec < 0 {
            return None; // EINVAL, the kernel's
        }
        let ns = (ts.tv_sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ts.tv_nsec as u64);
        Some(match absolute {
            None => now_ns().saturating_add(ns),
            // SAFETY: readable (caller), checked above.
            Some(clock) => match unsafe { crate::thread::sync::deadline(clock, timeout) } {
                Ok(deadline) => deadline,
                Err(_) => return None,
            },
        })
    };
    let bucket = park::lock(word);
    // SAFETY: a futex word is a readable, aligned u32 (the kernel would answer EFAULT otherwise,
    // but a program that passes one to FUTEX_WAIT has one).
    if unsafe { &*(word as *const AtomicU32) }.load(Ordering::SeqCst) != expected {
        drop(bucket);
        crate::sys::set_errno(libc::EAGAIN);
        return Some(-1);
    }
    let recheck = shared.then(|| now_ns().saturating_add(SHARED_RECHECK_NS));
    let park_until = match (deadline, recheck) {
        (Some(d), Some(r)) => Some(d.min(r)),
        (d, r) => d.or(r),
    };
    match bucket.park(word, 0, park_until, WaitOn::Futex(word).word(), || {}) {
        Parked::TimedOut if deadline.is_none_or(|d| park_until.is_some_and(|p| p < d)) => {
            Some(0) // a shared wait's recheck: a spurious wake-up
        }
        Parked::TimedOut => {
            crate::sys::set_errno(libc::ETIMEDOUT);
            Some(-1)
        }
        Parked::Unparked { .. } => Some(0),
    }
}

/// Wakes up to `count` waiters of `word`: green ones first, then the kernel's.
fn wake(word: usize, count: i32, op: c_long) -> c_long {
    // The kernel wakes one even when asked for none.
    let count = count.max(1);
    let woken = wake_green(word, count);
    if woken >= count {
        return woken as c_long;
    }
    let rest = [word as c_long, op, (count - woken) as c_long, 0, 0, -1];
    // SAFETY: the caller's FUTEX_WAKE for the rest of its count.
    let kernel = unsafe { syscall6(libc::SYS_futex, rest) };
    if kernel < 0 {
        return if woken > 0 { woken as c_long } else { kernel };
    }
    woken as c_long + kernel
}

/// Wakes up to `count` green waiters parked under `word`; how many.
fn wake_green(word: usize, count: i32) -> i32 {
    let mut bucket = park::lock(word);
    if !bucket.has_waiters(word) {
        return 0;
    }
    let mut wakers = WakeList::default();
    let mut left = count;
    bucket.unpark_all(
        word,
        |_| {
            let take = left > 0;
            left -= take as i32;
            take
        },
        &mut wakers,
    );
    drop(bucket);
    wakers.wake_all();
    count - left
}
