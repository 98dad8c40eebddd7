//! Threads of runtimes that wait in inline `futex` system calls stay OS threads.
//!
//! GCC's OpenMP runtime (libgomp) makes its team with `pthread_create` and its barriers,
//! locks and team hand-offs wait with the `syscall` instruction inlined (its
//! `config/linux/x86/futex.h`), never through libc: no hook sees them. Made green, a thread
//! parked in such a wait holds the OS thread the thread it waits for needs, and the first
//! `#pragma omp parallel` hung. So a thread libgomp creates is a real OS thread, as natively;
//! the rest of the program stays green (a green thread that enters a parallel region blocks
//! its hub while it waits at the region's barrier, as any call no hook sees does).
//! (Go's runtime does the same, for a whole executable: `go_runtime`.)

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering, fence};

/// The file names (their start: the soname's version may change) of the runtimes above.
const RAW_WAITERS: &[&[u8]] = &[b"libgomp.so"];

/// One creating call site's answer, for one loader generation (`scope::GENERATION`: a range
/// changes hands only behind a bump), under a sequence number (odd while written). Asking the
/// loader costs 86 instructions a `pthread_create` (callgrind, bench/spawn seq); a program
/// creates its threads from a few call sites.
struct Site {
    seq: AtomicU32,
    generation: AtomicU32,
    address: AtomicUsize,
    raw: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Site = Site {
    seq: AtomicU32::new(0),
    generation: AtomicU32::new(0),
    address: AtomicUsize::new(0),
    raw: AtomicBool::new(false),
};
static SITES: [Site; 16] = [EMPTY; 16];

/// True when `created_at` (a `pthread_create` caller's return address) lies in one of them.
/// Allocation- and lock-free (`_dl_find_object`).
#[inline]
pub fn created_by_raw_waiter(created_at: usize) -> bool {
    if created_at == 0 {
        return false;
    }
    let site = &SITES[(created_at ^ created_at >> 8) % SITES.len()];
    let generation = crate::scope::GENERATION.load(Ordering::Acquire);
    let seq = site.seq.load(Ordering::Acquire);
    if seq & 1 == 0
        && site.address.load(Ordering::Relaxed) == created_at
        && site.generation.load(Ordering::Relaxed) == generation
    {
        let raw = site.raw.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if site.seq.load(Ordering::Relaxed) == seq {
            return raw;
        }
    }
    let raw = ask_loader(created_at);
    // One writer at a time; a writer that loses the race leaves the slot to the other.
    if seq & 1 == 0
        && site
            .seq
            .compare_exchange(
                seq,
                seq.wrapping_add(1),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
    {
        site.address.store(created_at, Ordering::Relaxed);
        site.generation.store(generation, Ordering::Relaxed);
        site.raw.store(raw, Ordering::Relaxed);
        site.seq.store(seq.wrapping_add(2), Ordering::Release);
    }
    raw
}

#[cold]
fn ask_loader(created_at: usize) -> bool {
    crate::scope::finder_ready()
        && crate::scope::object_of(created_at).is_some_and(|object| {
            RAW_WAITERS
                .iter()
                .any(|name| object.file().starts_with(name))
        })
}
