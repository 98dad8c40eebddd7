//! `dlopen`, `dlmopen` and `dlclose`, watched rather than hooked: they tell `scope` that
//! objects may have been mapped or unmapped (its call-site answers then no longer stand), and
//! do nothing else. Not hook rows: there is nothing green about them, in any subsystem.
//!
//! `dlopen` and `dlmopen` jump to libc's with the caller's own return address on the stack:
//! glibc reads it to find the caller's object, whose `RUNPATH` and namespace the search uses,
//! and a wrapper's frame would make that object this library.

use crate::scope;
use core::ffi::{CStr, c_int, c_void};
use core::sync::atomic::{AtomicUsize, Ordering};

/// A naked export that bumps the loader generation and jumps to libc's function `$real` holds
/// (resolved on first use by `$resolve`, the argument registers kept meanwhile).
#[cfg(target_arch = "x86_64")]
macro_rules! watched {
    ($real:ident, $resolve:ident) => {
        watched!($real, $resolve, scope::GENERATION)
    };
    ($real:ident, $resolve:ident, $counter:path) => {
        core::arch::naked_asm!(
            "lock add dword ptr [rip + {generation}], 1",
            "mov r11, qword ptr [rip + {real}]",
            "test r11, r11",
            "jz 2f",
            "jmp r11",
            "2:",
            // Every argument register is kept, and al (a variadic call's count of vector
            // registers): `clone` takes six in registers, its tls in r9. Entry: rsp = 8 mod
            // 16; seven pushes make the call's 16-byte alignment.
            "push rdi",
            "push rsi",
            "push rdx",
            "push rcx",
            "push r8",
            "push r9",
            "push rax",
            "call {resolve}",
            "mov r11, rax",
            "pop rax",
            "pop r9",
            "pop r8",
            "pop rcx",
            "pop rdx",
            "pop rsi",
            "pop rdi",
            "jmp r11",
            generation = sym $counter,
            real = sym $real,
            resolve = sym $resolve,
        )
    };
}

/// [`watched!`] for aarch64: the bump is a full barrier as x86's `lock add` is (an exclusive
/// load/store loop between two `dmb ish`: the baseline target has no LSE atomics); the return
/// address stays in the link register for libc's function, which reads it; x16 and x17 are the
/// scratch registers a call may clobber on its way (PLT stubs use them), w15 too.
#[cfg(target_arch = "aarch64")]
macro_rules! watched {
    ($real:ident, $resolve:ident) => {
        watched!($real, $resolve, scope::GENERATION)
    };
    ($real:ident, $resolve:ident, $counter:path) => {
        core::arch::naked_asm!(
            "adrp x16, {generation}",
            "add x16, x16, :lo12:{generation}",
            "dmb ish",
            "1:",
            "ldxr w17, [x16]",
            "add w17, w17, #1",
            "stxr w15, w17, [x16]",
            "cbnz w15, 1b",
            "dmb ish",
            "adrp x16, {real}",
            "ldr x16, [x16, :lo12:{real}]",
            "cbz x16, 2f",
            "br x16",
            "2:",
            // Every argument register is kept: `clone` takes seven (its tls in x5).
            "stp x29, x30, [sp, #-80]!",
            "mov x29, sp",
            "stp x0, x1, [sp, #16]",
            "stp x2, x3, [sp, #32]",
            "stp x4, x5, [sp, #48]",
            "stp x6, x7, [sp, #64]",
            "bl {resolve}",
            "mov x16, x0",
            "ldp x0, x1, [sp, #16]",
            "ldp x2, x3, [sp, #32]",
            "ldp x4, x5, [sp, #48]",
            "ldp x6, x7, [sp, #64]",
            "ldp x29, x30, [sp], #80",
            "br x16",
            generation = sym $counter,
            real = sym $real,
            resolve = sym $resolve,
        )
    };
}

static REAL_DLOPEN: AtomicUsize = AtomicUsize::new(0);
static REAL_DLMOPEN: AtomicUsize = AtomicUsize::new(0);
static REAL_DLCLOSE: AtomicUsize = AtomicUsize::new(0);

/// libc's definition of `name`, remembered in `slot`.
fn next(slot: &AtomicUsize, name: &CStr) -> usize {
    let known = slot.load(Ordering::Acquire);
    if known != 0 {
        return known;
    }
    // SAFETY: a NUL-terminated name; libc defines these (glibc >= 2.34, and libdl before).
    let found = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize;
    if found == 0 {
        crate::log!(Error, "cannot find the next {name:?}");
        // SAFETY: nothing to return to: the program's call has no function to reach.
        unsafe { libc::abort() }
    }
    slot.store(found, Ordering::Release);
    found
}

extern "C" fn resolve_dlopen() -> usize {
    next(&REAL_DLOPEN, c"dlopen")
}

extern "C" fn resolve_dlmopen() -> usize {
    next(&REAL_DLMOPEN, c"dlmopen")
}

/// libc's `dlopen`, after telling `scope` the loaded objects may change.
///
/// # Safety
/// As libc's `dlopen`.
#[cfg_attr(not(test), unsafe(no_mangle))]
#[unsafe(naked)]
pub unsafe extern "C" fn dlopen(file: *const libc::c_char, mode: c_int) -> *mut c_void {
    watched!(REAL_DLOPEN, resolve_dlopen)
}

/// libc's `dlmopen`, as [`dlopen`].
///
/// # Safety
/// As libc's `dlmopen`.
#[cfg_attr(not(test), unsafe(no_mangle))]
#[unsafe(naked)]
pub unsafe extern "C" fn dlmopen(
    namespace: libc::Lmid_t,
    file: *const libc::c_char,
    mode: c_int,
) -> *mut c_void {
    watched!(REAL_DLMOPEN, resolve_dlmopen)
}

static REAL_VFORK: AtomicUsize = AtomicUsize::new(0);
static REAL_CLONE: AtomicUsize = AtomicUsize::new(0);
static REAL_FORK_NO_HANDLERS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn resolve_vfork() -> usize {
    next(&REAL_VFORK, c"vfork")
}

extern "C" fn resolve_clone() -> usize {
    next(&REAL_CLONE, c"clone")
}

extern "C" fn resolve_fork_no_handlers() -> usize {
    next(&REAL_FORK_NO_HANDLERS, c"_Fork")
}

/// libc's `_Fork`, as [`vfork`]: its child runs no fork handlers, so it does not know itself
/// a new process (`context::note_process`) and must ask.
///
/// # Safety
/// As libc's `_Fork`.
#[cfg_attr(not(test), unsafe(no_mangle))]
#[unsafe(naked)]
pub unsafe extern "C" fn _Fork() -> libc::pid_t {
    watched!(
        REAL_FORK_NO_HANDLERS,
        resolve_fork_no_handlers,
        crate::context::VFORKS
    )
}

/// libc's `vfork`, after telling `context` that a child sharing this memory (and this OS
/// thread's thread-locals) may run before the call returns: `context::in_vfork_child` asks the
/// kernel again. A jump, not a call: the child returns on the parent's stack.
///
/// # Safety
/// As libc's `vfork`.
#[cfg_attr(not(test), unsafe(no_mangle))]
#[unsafe(naked)]
pub unsafe extern "C" fn vfork() -> libc::pid_t {
    watched!(REAL_VFORK, resolve_vfork, crate::context::VFORKS)
}

/// libc's `clone`, as [`vfork`]: a child made with `CLONE_VM` shares this memory.
///
/// # Safety
/// As libc's `clone` (variadic: the registers are passed on untouched).
#[cfg_attr(not(test), unsafe(no_mangle))]
#[unsafe(naked)]
pub unsafe extern "C" fn clone(
    entry: extern "C" fn(*mut c_void) -> c_int,
    stack: *mut c_void,
    flags: c_int,
    arg: *mut c_void,
) -> c_int {
    watched!(REAL_CLONE, resolve_clone, crate::context::VFORKS)
}

/// libc's `dlclose`, between two bumps: the object is unmapped inside, and another may be
/// mapped in its place by the time it returns.
///
/// # Safety
/// As libc's `dlclose`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn dlclose(handle: *mut c_void) -> c_int {
    scope::loader_changed();
    let real = next(&REAL_DLCLOSE, c"dlclose");
    // SAFETY: dlsym's answer for dlclose, of this type.
    let real =
        unsafe { core::mem::transmute::<usize, unsafe extern "C" fn(*mut c_void) -> c_int>(real) };
    // SAFETY: the caller's handle, as libc's dlclose takes it.
    let closed = unsafe { real(handle) };
    scope::loader_changed();
    closed
}
