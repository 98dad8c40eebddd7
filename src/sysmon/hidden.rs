//! The monitor's thread, whatever it does (preemption, the blocking detector, the escapes
//! table): made with glibc's `clone` wrapper, not `pthread_create`, so glibc never learns that
//! the process has a second thread and keeps its single-threaded fast paths (trap 18: with a
//! `pthread_create`d monitor, every cancellable system call wrapper took the multithreaded
//! path, +9 % instructions in a socketpair ping-pong; the detector's and the table's monitor
//! was one until it learned to name code without `dladdr`: `symbolize`, `backtrace`).
//!
//! Such a thread must not call into glibc for anything that keys on the calling thread or
//! assumes it is alone (locks, malloc, stdio, the loader's lock, `dladdr`, cancellation, a
//! panic's unwinding): the monitor's loop makes raw system calls, reads atomics, reads the vDSO
//! clock, asks `_dl_find_object` (lock-free) and formats into stack buffers, nothing else. Its thread pointer is a TCB of its own —
//! glibc's header copied from its creator (the stack guard and pointer guard), its self
//! pointers fixed — above a zeroed area as large as the static TLS below the creator's thread
//! pointer, where initial-exec thread-locals such as `errno` land; its DTV is null, so a
//! dynamic thread-local access faults at once rather than touch its creator's. Its stack and
//! TLS are never freed: it lives until the process ends (`exit_group` ends it with the rest).

use core::ffi::{c_int, c_void};

#[cfg(target_arch = "x86_64")]
const GUARD: usize = 4096;
#[cfg(target_arch = "x86_64")]
const STACK: usize = 256 << 10;
/// Room for the static TLS below the thread pointer (`errno` must fall in it): at least this
/// much, more for a program with large thread-locals (up to [`MAX_TLS_AREA`]; reserved, not
/// committed: only the pages touched cost memory).
#[cfg(target_arch = "x86_64")]
const TLS_AREA: usize = 1 << 20;
#[cfg(target_arch = "x86_64")]
const MAX_TLS_AREA: usize = 64 << 20;
#[cfg(target_arch = "x86_64")]
const TCB: usize = 4096;
/// glibc's `tcbhead_t` fields that are copied (up to and past the pointer guard).
#[cfg(target_arch = "x86_64")]
const TCB_HEADER: usize = 0x80;

/// Starts `entry` (which never returns) on a new thread glibc does not know about, with every
/// signal blocked; its kernel thread id, or none when this machine or process cannot.
#[cfg(target_arch = "x86_64")]
pub fn spawn(entry: extern "C" fn(*mut c_void) -> c_int) -> Option<i32> {
    let real_clone = real_clone_fn()?;
    let tp = thread_pointer();
    let errno_at = crate::sys::errno_address();
    if errno_at > tp {
        return None;
    }
    let tls_area = (2 * (tp - errno_at)).next_multiple_of(4096).max(TLS_AREA);
    if tls_area > MAX_TLS_AREA {
        return None;
    }
    let len = GUARD + STACK + tls_area + TCB;
    // SAFETY: a fresh private anonymous mapping (raw: mmap may be hooked).
    let base = unsafe {
        crate::sys::syscall!(
            libc::SYS_mmap,
            0,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0
        )
    };
    if base <= 0 {
        return None;
    }
    let base = base as usize;
    // SAFETY: the mapping's first page, ours: a guard below the stack.
    unsafe { crate::sys::syscall!(libc::SYS_mprotect, base, GUARD, libc::PROT_NONE) };
    let stack_top = base + GUARD + STACK;
    let new_tp = stack_top + tls_area;
    // SAFETY: the creator's TCB header is readable at its thread pointer; the new one is in
    // our fresh mapping, TCB bytes long.
    unsafe {
        core::ptr::copy_nonoverlapping(tp as *const u8, new_tp as *mut u8, TCB_HEADER);
        let header = new_tp as *mut usize;
        header.write(new_tp); // tcb
        header.add(1).write(0); // dtv
        header.add(2).write(new_tp); // self
    }
    let flags = libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS;
    let real = crate::real::get();
    // SAFETY: a full set, then the caller's mask back; the new thread inherits the full one.
    // The stack and TLS are ours for good; glibc's clone wrapper calls `entry` on the new stack
    // without touching the thread pointer.
    let tid = unsafe {
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut before: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        (real.pthread_sigmask)(libc::SIG_SETMASK, &all, &mut before);
        let tid = real_clone(
            entry,
            stack_top as *mut c_void,
            flags,
            core::ptr::null_mut(),
            core::ptr::null_mut::<libc::pid_t>(),
            new_tp as *mut c_void,
            core::ptr::null_mut::<libc::pid_t>(),
        );
        (real.pthread_sigmask)(libc::SIG_SETMASK, &before, core::ptr::null_mut());
        tid
    };
    (tid > 0).then_some(tid)
}

#[cfg(not(target_arch = "x86_64"))]
pub fn spawn(_entry: extern "C" fn(*mut c_void) -> c_int) -> Option<i32> {
    None
}

#[cfg(target_arch = "x86_64")]
fn thread_pointer() -> usize {
    let tp: usize;
    // SAFETY: reads the TCB's self pointer at %fs:0 (x86-64 TLS variant II).
    unsafe {
        core::arch::asm!("mov {}, qword ptr fs:0", out(reg) tp, options(nostack, readonly, preserves_flags))
    };
    tp
}

/// glibc's `clone` wrapper, the next definition after ours: the library exports `clone` (to
/// learn of a child sharing memory, `abi::loader`), and the runtime never calls its own hooks.
#[cfg(target_arch = "x86_64")]
type CloneFn = unsafe extern "C" fn(
    extern "C" fn(*mut c_void) -> c_int,
    *mut c_void,
    c_int,
    *mut c_void,
    ...
) -> c_int;

#[cfg(target_arch = "x86_64")]
fn real_clone_fn() -> Option<CloneFn> {
    // SAFETY: a NUL-terminated name; spawn runs on a thread glibc knows, where dlsym may be called.
    let found = unsafe { libc::dlsym(libc::RTLD_NEXT, c"clone".as_ptr()) };
    // SAFETY: glibc's `clone` has this signature.
    (!found.is_null()).then(|| unsafe { core::mem::transmute::<*mut c_void, CloneFn>(found) })
}
