//! Threads of runtimes that wait where no hook sees, or that tell threads apart by a
//! thread-local's address, stay OS threads.
//!
//! GCC's OpenMP runtime (libgomp) makes its team with `pthread_create` and its barriers,
//! locks and team hand-offs wait with the `syscall` instruction inlined (its
//! `config/linux/x86/futex.h`), never through libc: no hook sees them. Made green, a thread
//! parked in such a wait holds the OS thread the thread it waits for needs, and the first
//! `#pragma omp parallel` hung. Rust's std channels take a thread-local's address as the
//! thread's identity (`rust_std`): green, a Rust library's workers shared their hub's, a send
//! skipped the receiver parked on the same hub, and a C program calling a library that joins
//! `mpsc` workers hung. OpenBLAS's server threads (numpy's and scipy's `libscipy_openblas*`)
//! spin on their queue with inline yields (the library imports no `sched_yield`): green, only
//! preemption ended a spin and a 2000×2000 matmul with two threads took seconds
//! (test_openblas; the wrong products those runs also gave were a preemption bug, fixed in
//! `sysmon::preempt`).
//! So a thread libgomp, OpenBLAS or a Rust object creates is a real OS thread, as
//! natively; the rest of the program stays green (a green thread that enters a parallel region
//! or waits on such a thread's message parks or blocks as any other call does).
//! (Go's runtime and a Rust executable do the same, for a whole executable: `go_runtime`,
//! `rust_std`.)

use crate::scope::Object;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering, fence};

/// The file names (their start: the soname's version may change) of the runtimes above.
const RAW_WAITERS: &[&[u8]] = &[b"libgomp.so", b"libopenblas", b"libscipy_openblas"];

/// Answers keyed by an address, for one loader generation (`scope::GENERATION`: a range
/// changes hands only behind a bump), each slot under a sequence number (odd while written):
/// lock- and allocation-free.
struct Answers([Slot; 16]);

struct Slot {
    seq: AtomicU32,
    generation: AtomicU32,
    key: AtomicUsize,
    raw: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    seq: AtomicU32::new(0),
    generation: AtomicU32::new(0),
    key: AtomicUsize::new(0),
    raw: AtomicBool::new(false),
};

impl Answers {
    const fn new() -> Answers {
        Answers([EMPTY; 16])
    }

    /// `key`'s answer, from the slot or else from `ask` (then kept).
    #[inline]
    fn get(&self, key: usize, ask: impl FnOnce() -> bool) -> bool {
        let slot = &self.0[(key ^ key >> 8) % self.0.len()];
        let generation = crate::scope::GENERATION.load(Ordering::Acquire);
        let seq = slot.seq.load(Ordering::Acquire);
        if seq & 1 == 0
            && slot.key.load(Ordering::Relaxed) == key
            && slot.generation.load(Ordering::Relaxed) == generation
        {
            let raw = slot.raw.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if slot.seq.load(Ordering::Relaxed) == seq {
                return raw;
            }
        }
        let raw = ask();
        // One writer at a time; a writer that loses the race leaves the slot to the other.
        if seq & 1 == 0
            && slot
                .seq
                .compare_exchange(
                    seq,
                    seq.wrapping_add(1),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            slot.key.store(key, Ordering::Relaxed);
            slot.generation.store(generation, Ordering::Relaxed);
            slot.raw.store(raw, Ordering::Relaxed);
            slot.seq.store(seq.wrapping_add(2), Ordering::Release);
        }
        raw
    }
}

/// By creating call site: asking the loader costs 86 instructions a `pthread_create`
/// (callgrind, bench/spawn seq); a program creates its threads from a few call sites.
static SITES: Answers = Answers::new();
/// By object (its mapping's start): whether rustc compiled it is read from its file (a dozen
/// raw system calls), once per object, not once per call site.
static OBJECTS: Answers = Answers::new();

/// True when `created_at` (a `pthread_create` caller's return address) lies in one of them.
/// Allocation- and lock-free (`_dl_find_object`, raw reads of the object's file).
#[inline]
pub fn created_by_raw_waiter(created_at: usize) -> bool {
    created_at != 0 && SITES.get(created_at, || ask_loader(created_at))
}

#[cold]
fn ask_loader(created_at: usize) -> bool {
    crate::scope::finder_ready()
        && crate::scope::object_of(created_at).is_some_and(|object| {
            RAW_WAITERS
                .iter()
                .any(|name| object.file().starts_with(name))
                || OBJECTS.get(object.start, || is_rust(&object))
        })
}

#[cold]
fn is_rust(object: &Object) -> bool {
    let rust = crate::rust_std::object_is_rust(object);
    if rust {
        crate::log!(
            Info,
            "{}: a Rust object: the threads it creates stay OS threads",
            core::str::from_utf8(object.file()).unwrap_or("?")
        );
    }
    rust
}
