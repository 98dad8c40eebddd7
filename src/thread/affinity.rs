//! A green thread's CPU affinity is its own, as a pthread's is: the mask it was made with
//! (`pthread_attr_setaffinity_np`), else its creator's, or the one it or another thread set
//! later (`sched_setaffinity`, `pthread_setaffinity_np`) is what `sched_getaffinity`,
//! `pthread_getaffinity_np` and `pthread_getattr_np` report for it. The mask is kept, never
//! applied: a hub's OS thread runs every green thread placed on it, so pinning it for one would
//! pin them all, and a thread never moves to another hub (trap 8). A mask given at creation
//! chooses the hub (`hubs::place_from`); one set later re-places nothing.
//!
//! Whether the kernel would take a mask, and what it would make of it (the CPUs of the
//! process's cpuset among those asked), is found by trying it on the calling OS thread and
//! putting that thread's own mask back: the same errors (EINVAL, EFAULT) and the same answer
//! as natively, at the cost of four system calls per change (a rare call). Masks are interned
//! and never freed, so a thread's pointer to its mask stays valid however it changes.
//!
//! A thread with no mask of its own (made by a hub's root with no attribute) reports its OS
//! thread's, as before: that is the process's unless the program pinned `main`. `main` and any
//! other hub's root are OS threads: their calls stay real. `sched_getcpu` reports the CPU the
//! thread really runs on.

use crate::green::{CpuMask, Green};
use crate::hub::Hub;
use crate::outcome::Outcome::{self, Bypass, Done, Errno};
use core::sync::atomic::Ordering;
use libc::{c_int, cpu_set_t, pid_t, pthread_attr_t, pthread_t, size_t};
use std::sync::Mutex;

const MASK_BYTES: usize = core::mem::size_of::<CpuMask>();
const ALL: CpuMask = [u64::MAX; 16];

/// What trying a mask on this OS thread found.
pub enum Tried {
    /// The kernel takes it and makes it this.
    Mask(&'static CpuMask),
    /// The kernel refuses it with this errno.
    Refused(c_int),
    /// The OS thread's own mask does not fit a `cpu_set_t` (over 1 024 CPUs): no record, the
    /// calls stay real.
    Unknown,
}

/// Every mask a thread has had; never freed (few distinct ones in any program).
static INTERNED: Mutex<Vec<&'static CpuMask>> = Mutex::new(Vec::new());

fn intern(mask: &CpuMask) -> &'static CpuMask {
    let mut all = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = all.iter().find(|known| **known == mask) {
        return known;
    }
    let leaked: &'static CpuMask = Box::leak(Box::new(*mask));
    all.push(leaked);
    leaked
}

/// Sets this OS thread's mask (the raw system call): 0 or a negative errno.
///
/// # Safety
/// `mask` readable for `len` bytes, or the kernel answers EFAULT.
unsafe fn set_os_mask(len: usize, mask: *const u8) -> libc::c_long {
    // SAFETY: per our contract; tid 0 is this OS thread.
    unsafe {
        crate::sys::raw_syscall(
            libc::SYS_sched_setaffinity,
            crate::sys::pad([0, len as libc::c_long, mask as libc::c_long]),
        )
    }
}

/// What the kernel makes of `asked` (`len` bytes), tried on this OS thread, whose own mask is
/// put back after.
///
/// # Safety
/// None beyond the kernel's: an unreadable `asked` is EFAULT.
pub unsafe fn try_mask(len: usize, asked: *const u8) -> Tried {
    let Some(own) = crate::sys::os_cpu_mask() else {
        return Tried::Unknown;
    };
    // SAFETY: the caller's mask; the kernel checks it is readable.
    let rc = unsafe { set_os_mask(len, asked) };
    if rc < 0 {
        return Tried::Refused(-rc as c_int);
    }
    let got = crate::sys::os_cpu_mask();
    // SAFETY: a local of MASK_BYTES the kernel took a moment ago.
    unsafe { set_os_mask(MASK_BYTES, own.as_ptr().cast()) };
    match got {
        Some(got) => Tried::Mask(intern(&got)),
        None => Tried::Unknown,
    }
}

/// The mask a green thread reports, None: its OS thread's.
#[inline]
pub fn of(green: &Green) -> Option<&'static CpuMask> {
    // SAFETY: non-null masks are interned, never freed.
    unsafe { green.affinity.load(Ordering::Acquire).as_ref() }
}

fn keep(green: &Green, mask: &'static CpuMask) {
    green
        .affinity
        .store(mask as *const CpuMask as *mut CpuMask, Ordering::Release);
}

/// The mask a new thread starts with: its attributes' (Err: the errno glibc's
/// `pthread_create` gives when the kernel refuses it), else its creator's when that is a green
/// thread.
///
/// # Safety
/// `attr` null or initialised.
#[inline]
pub unsafe fn for_new_thread(
    creator: &Hub,
    attr: *const pthread_attr_t,
) -> Result<Option<&'static CpuMask>, c_int> {
    if !attr.is_null() {
        // SAFETY: per our contract.
        if let Some(asked) = unsafe { asked_by(attr) } {
            return asked;
        }
    }
    Ok(if creator.in_green() {
        of(creator.current_green())
    } else {
        None
    })
}

/// The mask attributes name, tried (None: they name none).
///
/// # Safety
/// `attr` initialised.
#[cold]
unsafe fn asked_by(attr: *const pthread_attr_t) -> Option<Result<Option<&'static CpuMask>, c_int>> {
    {
        let mut asked: CpuMask = [0; 16];
        // SAFETY: attr initialised (caller), a writable local of MASK_BYTES; glibc fills every
        // bit when the attributes name no CPU.
        let rc = unsafe {
            libc::pthread_attr_getaffinity_np(attr, MASK_BYTES, asked.as_mut_ptr().cast())
        };
        if rc == 0 && asked != ALL {
            // SAFETY: a readable local.
            return Some(
                match unsafe { try_mask(MASK_BYTES, asked.as_ptr().cast()) } {
                    Tried::Mask(mask) => Ok(Some(mask)),
                    Tried::Refused(code) => Err(code),
                    Tried::Unknown => Ok(None),
                },
            );
        }
    }
    None
}

/// A new thread's mask, kept before it runs.
#[inline]
pub fn start_with(green: &Green, mask: Option<&'static CpuMask>) {
    if let Some(mask) = mask {
        keep(green, mask);
    }
}

/// The green thread a `sched_*affinity` call with `pid` is about: the caller's when it is a
/// green thread and `pid` is 0 or its OS thread's id (what `gettid` says in it).
fn caller_for(pid: pid_t) -> Option<&'static Green> {
    if !super::active() {
        return None;
    }
    let hub = Hub::current()?;
    if !hub.in_green() {
        return None;
    }
    // SAFETY: no arguments.
    let tid = || unsafe { crate::sys::syscall!(libc::SYS_gettid) } as pid_t;
    (pid == 0 || pid == tid()).then(|| hub.current_green())
}

/// Writes `mask` into the caller's `len`-byte buffer, which a real call on this OS thread has
/// just filled (so its size and address are ones the kernel takes, and bytes past the mask are
/// zero).
///
/// # Safety
/// `out` writable for `len` bytes.
unsafe fn write_out(mask: &CpuMask, len: usize, out: *mut u8) {
    // SAFETY: writable for len bytes (caller); the mask is MASK_BYTES.
    unsafe { core::ptr::copy_nonoverlapping(mask.as_ptr().cast::<u8>(), out, len.min(MASK_BYTES)) };
}

/// `sched_getaffinity`: a green thread's own mask, when it has one.
///
/// # Safety
/// As `sched_getaffinity(2)`.
pub unsafe fn sched_get(pid: pid_t, len: size_t, out: *mut cpu_set_t) -> Outcome<c_int> {
    let Some(mask) = caller_for(pid).and_then(of) else {
        return Bypass;
    };
    // SAFETY: the caller's arguments, checked by the real call on this OS thread first.
    unsafe {
        let rc = (crate::real::get().sched_getaffinity)(0, len, out);
        if rc == 0 {
            write_out(mask, len, out.cast());
        }
        Done(rc)
    }
}

/// `sched_setaffinity`: a green thread's own mask is kept, not applied.
///
/// # Safety
/// As `sched_setaffinity(2)`.
pub unsafe fn sched_set(pid: pid_t, len: size_t, set: *const cpu_set_t) -> Outcome<c_int> {
    let Some(green) = caller_for(pid) else {
        return Bypass;
    };
    // SAFETY: the caller's mask; the kernel checks it.
    match unsafe { try_mask(len, set.cast()) } {
        Tried::Mask(mask) => {
            keep(green, mask);
            Done(0)
        }
        Tried::Refused(code) => Errno(code),
        Tried::Unknown => Bypass,
    }
}

/// `pthread_getaffinity_np` of a green thread with a mask of its own (None: ask its OS thread).
///
/// # Safety
/// As `pthread_getaffinity_np(3)`.
pub unsafe fn pthread_get(green: &Green, len: size_t, out: *mut cpu_set_t) -> Option<c_int> {
    let mask = of(green)?;
    let real = crate::real::get();
    // SAFETY: the caller's arguments, checked by the real call on this OS thread first.
    unsafe {
        let rc = (real.pthread_getaffinity_np)((real.pthread_self)(), len, out);
        if rc == 0 {
            write_out(mask, len, out.cast());
        }
        Some(rc)
    }
}

/// `pthread_setaffinity_np` of a green thread: kept, not applied (None: the calls stay real).
///
/// # Safety
/// As `pthread_setaffinity_np(3)`.
pub unsafe fn pthread_set(green: &Green, len: size_t, set: *const cpu_set_t) -> Option<c_int> {
    // SAFETY: the caller's mask; the kernel checks it.
    match unsafe { try_mask(len, set.cast()) } {
        Tried::Mask(mask) => {
            keep(green, mask);
            Some(0)
        }
        Tried::Refused(code) => Some(code),
        Tried::Unknown => None,
    }
}

/// The mask `pthread_getattr_np` puts in a green thread's attributes, as glibc's does for a
/// pthread: its own, else its OS thread's.
pub fn for_attr(green: &Green) -> Option<CpuMask> {
    if let Some(mask) = of(green) {
        return Some(*mask);
    }
    let mut mask: CpuMask = [0; 16];
    let real = crate::real::get();
    // SAFETY: a writable local of MASK_BYTES; the hub's OS thread is a real, live thread.
    let rc = unsafe {
        (real.pthread_getaffinity_np)(
            green.hub().os_thread(),
            MASK_BYTES,
            mask.as_mut_ptr().cast(),
        )
    };
    (rc == 0).then_some(mask)
}

/// `pthread_setaffinity_np`: a green handle's thread keeps the mask; a real one's is set.
///
/// # Safety
/// As `pthread_setaffinity_np(3)`.
pub unsafe fn pthread_set_of(t: pthread_t, len: size_t, set: *const cpu_set_t) -> Outcome<c_int> {
    let green = match super::green_handle(t) {
        Ok(green) => green,
        Err(outcome) => return outcome,
    };
    // SAFETY: the caller's arguments.
    match unsafe { pthread_set(green, len, set) } {
        Some(rc) => Done(rc),
        // SAFETY: the hub's OS thread is a real, live thread; the caller's arguments.
        None => Done(unsafe {
            (crate::real::get().pthread_setaffinity_np)(green.hub().os_thread(), len, set)
        }),
    }
}

/// `pthread_getaffinity_np`: a green handle's thread's own mask, else its OS thread's.
///
/// # Safety
/// As `pthread_getaffinity_np(3)`.
pub unsafe fn pthread_get_of(t: pthread_t, len: size_t, out: *mut cpu_set_t) -> Outcome<c_int> {
    let green = match super::green_handle(t) {
        Ok(green) => green,
        Err(outcome) => return outcome,
    };
    // SAFETY: the caller's arguments.
    match unsafe { pthread_get(green, len, out) } {
        Some(rc) => Done(rc),
        // SAFETY: the hub's OS thread is a real, live thread; the caller's arguments.
        None => Done(unsafe {
            (crate::real::get().pthread_getaffinity_np)(green.hub().os_thread(), len, out)
        }),
    }
}
