//! Where the calling code runs, as every layer needs to know before it switches threads or
//! touches the library's tables: in a `vfork` child (whose memory is its parent's), or in one
//! of the program's signal handlers. The state is written by its owners (`os::fork` notes the
//! process, `signal`'s trampoline counts handlers) and read here, below them all.

use core::cell::Cell;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// This process's id as the library last saw it: set at start and in every fork child. 0: not
/// known yet.
static PROCESS: AtomicI32 = AtomicI32::new(0);

fn own_pid() -> libc::pid_t {
    // SAFETY: no arguments; the kernel's answer, never a cached one.
    unsafe { crate::sys::syscall!(libc::SYS_getpid) as libc::pid_t }
}

/// Notes the calling process as the library's own (at start, and in each fork child).
pub fn note_process() {
    PROCESS.store(own_pid(), Ordering::Relaxed);
}

/// Bumped by the program's every `vfork` and `clone` (`abi::loader`) before libc's runs: a
/// child that shares this memory may be running.
pub static VFORKS: AtomicU32 = AtomicU32::new(0);

thread_local! {
    /// `VFORKS + 1` when this OS thread last found itself the library's own process, not a
    /// `vfork` child: until the next `vfork` or `clone`, it still is (a child runs on its
    /// parent's thread-locals, but only after the bump). Const-initialised, no destructor.
    static OWN_PROCESS_AT: Cell<u32> = const { Cell::new(0) };
}

/// Is this the child of a `vfork` (or of a `clone` that shares memory) before its `exec`? Its
/// memory is the parent's, which waits meanwhile: what the child does through our hooks
/// (Python's subprocess resets signal handlers, closes and `dup2`s descriptors, sets its mask)
/// must not change the library's tables, which are the parent's. Asked at every green wait: the
/// kernel is asked (a `getpid`) only once after each `vfork` or `clone` of the program.
pub fn in_vfork_child() -> bool {
    PROCESS.load(Ordering::Relaxed) != 0 && OWN_PROCESS_AT.with(in_vfork_child_by)
}

/// [`in_vfork_child`] with this OS thread's record of its last answer kept by the caller
/// (`own_process_at`, a hub's: one per OS thread, as [`OWN_PROCESS_AT`], without the
/// `__tls_get_addr` call a look at a thread-local of this library costs).
#[inline]
pub fn in_vfork_child_by(own_process_at: &Cell<u32>) -> bool {
    let known = PROCESS.load(Ordering::Relaxed);
    if known == 0 {
        return false;
    }
    let epoch = VFORKS.load(Ordering::Acquire).wrapping_add(1);
    if own_process_at.get() == epoch {
        return false;
    }
    let child = own_pid() != known;
    if !child {
        own_process_at.set(epoch);
    }
    child
}

thread_local! {
    /// The program's handlers running now on this OS thread. Const-initialised and
    /// destructor-free (trap 6). A handler that leaves by `siglongjmp` leaves it raised for good:
    /// what it guards then stays plain libc on this thread, which is always safe.
    static IN_HANDLER: Cell<u32> = const { Cell::new(0) };
}

/// Is one of the program's signal handlers running on this OS thread? A call it makes must stay
/// what it is natively (async-signal-safe): no switch, no pool hand-off, no lock, no allocation.
#[inline]
pub fn in_handler() -> bool {
    IN_HANDLER.with(Cell::get) > 0
}

/// Runs `handler` (one of the program's signal handlers) counted by [`in_handler`].
#[inline]
pub fn as_handler(handler: impl FnOnce()) {
    IN_HANDLER.with(|depth| depth.set(depth.get() + 1));
    handler();
    IN_HANDLER.with(|depth| depth.set(depth.get() - 1));
}
