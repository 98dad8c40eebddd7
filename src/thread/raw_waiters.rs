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

/// The file names (their start: the soname's version may change) of the runtimes above.
const RAW_WAITERS: &[&[u8]] = &[b"libgomp.so"];

/// True when `created_at` (a `pthread_create` caller's return address) lies in one of them.
/// Allocation- and lock-free (`_dl_find_object`).
pub fn created_by_raw_waiter(created_at: usize) -> bool {
    if created_at == 0 || !crate::scope::finder_ready() {
        return false;
    }
    crate::scope::object_of(created_at).is_some_and(|object| {
        RAW_WAITERS
            .iter()
            .any(|name| object.file().starts_with(name))
    })
}
