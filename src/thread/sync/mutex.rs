//! `pthread_mutex_*`, in glibc's `pthread_mutex_t`: `__lock` is the lock word (0 free, 1 held,
//! 2 held with waiters maybe parked), `__count` the recursion count, `__owner` the owner id for
//! the kinds that check it, `__nusers` as glibc keeps it (so `pthread_mutex_destroy` still
//! answers EBUSY for a held mutex), `__kind` as `pthread_mutex_init` wrote it.
//!
//! A contended unlock hands the mutex straight to the first waiter (FIFO): under cooperative
//! scheduling an unlocker that relocks at once would otherwise starve every waiter.

use super::{owner_id, poll_foreign, supported_clock};
use crate::outcome::Outcome::{self, Bypass, Done};
use crate::park;
use crate::waiting::WaitOn;
use core::sync::atomic::{AtomicI32, Ordering};
use libc::{EAGAIN, EBUSY, EDEADLK, EINVAL, EPERM, ETIMEDOUT, c_int, pthread_mutex_t};

const KIND_TYPE_MASK: i32 = 3;
const RECURSIVE: i32 = 1;
const ERRORCHECK: i32 = 2;
const ROBUST: i32 = 16;
const PRIO_INHERIT: i32 = 32;
/// Robust, priority-inheriting, priority-protected, process-shared: glibc's own protocol.
const FOREIGN_BITS: i32 = ROBUST | PRIO_INHERIT | 64 | 128;

/// Field offsets in glibc's `struct __pthread_mutex_s` (the same on x86-64 and aarch64).
struct Fields {
    lock: *const AtomicI32,
    count: *mut u32,
    owner: *const AtomicI32,
    nusers: *mut u32,
    kind: *const AtomicI32,
}

/// # Safety
/// `m` points to a live `pthread_mutex_t`.
unsafe fn fields(m: *mut pthread_mutex_t) -> Fields {
    let base = m.cast::<u8>();
    // SAFETY: all offsets lie within the 40-byte (48 on aarch64) object.
    unsafe {
        Fields {
            lock: base.cast(),
            count: base.add(4).cast(),
            owner: base.add(8).cast(),
            nusers: base.add(12).cast(),
            kind: base.add(16).cast(),
        }
    }
}

pub use super::Wait;

fn kind_of(f: &Fields) -> i32 {
    // SAFETY: `kind` points into a live mutex.
    unsafe { (*f.kind).load(Ordering::Relaxed) }
}

/// `pthread_mutex_lock`, `trylock`, `timedlock`, `clocklock`.
///
/// # Safety
/// `m` points to an initialised mutex; a timespec in `wait` is readable.
pub unsafe fn lock(m: *mut pthread_mutex_t, wait: Wait) -> Outcome<c_int> {
    if !crate::thread::active() {
        return Bypass;
    }
    // SAFETY: per our contract.
    Done(unsafe { lock_green(m, wait) })
}

/// The lock itself, for condition variables relocking their mutex too. A mutex of a kind that
/// does not track its owner, found free, is taken here, with no call (so no registers to save:
/// a fifth of the cost); anything else in [`lock_slow`].
///
/// # Safety
/// As [`lock`].
#[inline]
pub(crate) unsafe fn lock_green(m: *mut pthread_mutex_t, wait: Wait) -> c_int {
    // SAFETY: m is a live mutex (caller).
    let f = unsafe { fields(m) };
    let kind = kind_of(&f);
    let plain =
        kind & FOREIGN_BITS == 0 && !matches!(kind & KIND_TYPE_MASK, RECURSIVE | ERRORCHECK);
    if plain
        && !matches!(wait, Wait::Until(..))
        // SAFETY: f.lock is valid.
        && unsafe { &*f.lock }
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    {
        // SAFETY: the lock word is ours.
        unsafe { note_locked(&f, 0) };
        return 0;
    }
    // SAFETY: per our contract.
    unsafe { lock_slow(m, wait) }
}

/// The record of the holder, once the lock word is the caller's.
///
/// # Safety
/// `f` describes a live mutex whose lock word the caller just took.
#[inline]
unsafe fn note_locked(f: &Fields, me: i32) {
    // SAFETY: f's pointers are valid; count and nusers are only written by the holder.
    unsafe {
        (*f.owner).store(me, Ordering::Relaxed);
        *f.count = 1;
        *f.nusers += 1;
    }
}

/// # Safety
/// As [`lock`].
#[inline(never)]
unsafe fn lock_slow(m: *mut pthread_mutex_t, wait: Wait) -> c_int {
    if let Wait::Until(clock, _) = wait
        && !supported_clock(clock)
    {
        return EINVAL;
    }
    // SAFETY: m is a live mutex (caller).
    let f = unsafe { fields(m) };
    let kind = kind_of(&f);
    if kind & FOREIGN_BITS != 0 {
        // SAFETY: as above.
        return unsafe { foreign_lock(m, wait) };
    }
    let tracks_owner = matches!(kind & KIND_TYPE_MASK, RECURSIVE | ERRORCHECK);
    let me = if tracks_owner { owner_id() } else { 0 };
    // SAFETY: f's pointers are valid for the live mutex; `count` is only written by the owner.
    unsafe {
        if tracks_owner && (*f.owner).load(Ordering::Relaxed) == me {
            return match (kind & KIND_TYPE_MASK, wait) {
                (RECURSIVE, _) if *f.count == u32::MAX => EAGAIN,
                (RECURSIVE, _) => {
                    *f.count += 1;
                    0
                }
                (_, Wait::Try) => EBUSY,
                _ => EDEADLK,
            };
        }
        let rc = acquire(&f, m as usize, wait);
        if rc == 0 {
            note_locked(&f, me);
        }
        rc
    }
}

/// Takes the lock word.
///
/// # Safety
/// `f` describes a live mutex at `key`.
unsafe fn acquire(f: &Fields, key: usize, wait: Wait) -> c_int {
    // SAFETY: f.lock is valid (caller).
    let word = unsafe { &*f.lock };
    if word
        .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        return 0;
    }
    if let Wait::Try = wait {
        return EBUSY;
    }
    // glibc looks at the time only once it has to wait.
    // SAFETY: readable (caller).
    let deadline = match unsafe { wait.deadline() } {
        Ok(deadline) => deadline,
        Err(code) => return code,
    };
    loop {
        let bucket = park::lock(key);
        // Announce a waiter; if the holder let go meanwhile, the lock is ours.
        if word.swap(2, Ordering::Acquire) == 0 {
            return 0;
        }
        match bucket.park(key, 0, deadline, WaitOn::Mutex(key).word(), || {}) {
            park::Parked::Unparked { handed_off: true } => return 0,
            park::Parked::Unparked { handed_off: false } => continue,
            park::Parked::TimedOut => return ETIMEDOUT,
        }
    }
}

/// Does `m` follow glibc's own protocol (robust, priority or process-shared)?
///
/// # Safety
/// `m` points to an initialised mutex.
pub(crate) unsafe fn is_foreign(m: *mut pthread_mutex_t) -> bool {
    // SAFETY: per our contract.
    kind_of(&unsafe { fields(m) }) & FOREIGN_BITS != 0
}

/// Would unlocking `m` now be refused (EPERM: an owner-checking mutex the caller does not
/// hold)? Condition variables ask before they queue.
///
/// # Safety
/// `m` points to an initialised mutex.
pub(crate) unsafe fn unlock_refused(m: *mut pthread_mutex_t) -> bool {
    // SAFETY: per our contract.
    let f = unsafe { fields(m) };
    let kind = kind_of(&f);
    let foreign = kind & FOREIGN_BITS != 0;
    if !(if foreign {
        foreign_checks_owner(kind)
    } else {
        matches!(kind & KIND_TYPE_MASK, RECURSIVE | ERRORCHECK)
    }) {
        return false;
    }
    // SAFETY: as above.
    let owner = unsafe { (*f.owner).load(Ordering::Relaxed) };
    if foreign {
        owner & FUTEX_TID_MASK != super::os_tid()
            || foreign_owners::get(m as usize) != Some(owner_id())
    } else {
        owner != owner_id()
    }
}

/// `pthread_mutex_unlock`.
///
/// # Safety
/// `m` points to an initialised mutex.
pub unsafe fn unlock(m: *mut pthread_mutex_t) -> Outcome<c_int> {
    if !crate::thread::active() {
        return Bypass;
    }
    // SAFETY: per our contract.
    Done(unsafe { unlock_green(m) })
}

/// A mutex of a kind that does not track its owner, with no waiter, is released here, with no
/// call (as in [`lock_green`]); anything else in [`unlock_slow`].
///
/// # Safety
/// As [`unlock`].
#[inline]
pub(crate) unsafe fn unlock_green(m: *mut pthread_mutex_t) -> c_int {
    // SAFETY: m is a live mutex (caller).
    let f = unsafe { fields(m) };
    let kind = kind_of(&f);
    if kind & FOREIGN_BITS == 0 && !matches!(kind & KIND_TYPE_MASK, RECURSIVE | ERRORCHECK) {
        // SAFETY: f's pointers are valid; count/nusers are only written by the owner.
        unsafe {
            (*f.owner).store(0, Ordering::Relaxed);
            *f.count = 0;
            *f.nusers = (*f.nusers).wrapping_sub(1);
            if (*f.lock)
                .compare_exchange(1, 0, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return 0;
            }
            release_slow(&*f.lock, m as usize);
        }
        return 0;
    }
    // SAFETY: per our contract.
    unsafe { unlock_slow(m) }
}

/// # Safety
/// As [`unlock`].
#[inline(never)]
unsafe fn unlock_slow(m: *mut pthread_mutex_t) -> c_int {
    // SAFETY: m is a live mutex (caller).
    let f = unsafe { fields(m) };
    let kind = kind_of(&f);
    if kind & FOREIGN_BITS != 0 {
        // SAFETY: a glibc-protocol mutex goes to glibc.
        return unsafe { foreign_unlock(m) };
    }
    // SAFETY: f's pointers are valid; count/nusers are only written by the owner.
    unsafe {
        if matches!(kind & KIND_TYPE_MASK, RECURSIVE | ERRORCHECK) {
            if (*f.owner).load(Ordering::Relaxed) != owner_id() {
                return EPERM;
            }
            if *f.count > 1 {
                *f.count -= 1;
                return 0;
            }
        }
        (*f.owner).store(0, Ordering::Relaxed);
        *f.count = 0;
        *f.nusers = (*f.nusers).wrapping_sub(1);
        release(&*f.lock, m as usize);
    }
    0
}

/// Frees the lock word, or hands the lock to the first parked waiter.
fn release(word: &AtomicI32, key: usize) {
    if word
        .compare_exchange(1, 0, Ordering::Release, Ordering::Relaxed)
        .is_ok()
    {
        return;
    }
    release_slow(word, key);
}

/// [`release`] of a word marked as having waiters (2).
#[inline(never)]
fn release_slow(word: &AtomicI32, key: usize) {
    let mut bucket = park::lock(key);
    let waker = bucket.hand_off_first(key);
    match waker {
        Some(waker) => {
            let more = bucket.has_waiters(key);
            word.store(if more { 2 } else { 1 }, Ordering::Release);
            drop(bucket);
            waker.wake();
        }
        None => word.store(0, Ordering::Release),
    }
}

/// A robust, priority or process-shared mutex: glibc's protocol, which other processes (or
/// the kernel) take part in. Waits poll green when other green threads could run.
///
/// glibc records the owner's kernel thread id, which every green thread of one OS thread
/// shares; for the kinds that check their owner, [`foreign_owners`] remembers which green
/// thread holds the mutex, so another green thread gets EBUSY (or waits), never a recursion
/// level or the right to unlock.
///
/// # Safety
/// `m` is a live mutex; a timespec in `wait` is readable.
unsafe fn foreign_lock(m: *mut pthread_mutex_t, wait: Wait) -> c_int {
    let real = crate::real::get();
    // SAFETY: m is a live mutex (caller).
    let f = unsafe { fields(m) };
    let tracks_owner = foreign_checks_owner(kind_of(&f));
    let me = owner_id();
    let try_lock = || {
        // SAFETY: f describes the live mutex.
        let glibc_owner = unsafe { (*f.owner).load(Ordering::Relaxed) } & FUTEX_TID_MASK;
        if tracks_owner
            && glibc_owner == super::os_tid()
            && foreign_owners::get(m as usize) != Some(me)
        {
            return EBUSY; // another green thread of this OS thread holds it
        }
        // SAFETY: m is a live mutex.
        unsafe { (real.pthread_mutex_trylock)(m) }
    };
    let rc = match wait {
        Wait::Try => try_lock(),
        Wait::Forever if super::others_could_run() => poll_foreign(EBUSY, None, try_lock),
        // SAFETY: as above.
        Wait::Forever => unsafe { (real.pthread_mutex_lock)(m) },
        // SAFETY: readable (caller).
        Wait::Until(..) if super::others_could_run() => match unsafe { wait.deadline() } {
            Ok(deadline) => poll_foreign(EBUSY, deadline, try_lock),
            Err(code) => code,
        },
        // SAFETY: as above.
        Wait::Until(clock, abstime) => unsafe { (real.pthread_mutex_clocklock)(m, clock, abstime) },
    };
    if tracks_owner && (rc == 0 || rc == libc::EOWNERDEAD) {
        foreign_owners::set(m as usize, me);
    }
    rc
}

/// Does glibc check who unlocks this glibc-protocol mutex? Recursive and error-checking kinds
/// do, and so does every robust or priority-inheriting one.
fn foreign_checks_owner(kind: i32) -> bool {
    matches!(kind & KIND_TYPE_MASK, RECURSIVE | ERRORCHECK) || kind & (ROBUST | PRIO_INHERIT) != 0
}

/// glibc's `FUTEX_TID_MASK`: the owner-id bits of a robust mutex's owner field.
const FUTEX_TID_MASK: i32 = 0x3fff_ffff;

/// Unlocks a glibc-protocol mutex, refusing (EPERM) a green thread that does not hold it.
///
/// # Safety
/// `m` is a live mutex.
unsafe fn foreign_unlock(m: *mut pthread_mutex_t) -> c_int {
    // SAFETY: m is a live mutex (caller).
    let f = unsafe { fields(m) };
    let tracks_owner = foreign_checks_owner(kind_of(&f));
    // SAFETY: as above.
    let glibc_owner = unsafe { (*f.owner).load(Ordering::Relaxed) } & FUTEX_TID_MASK;
    if tracks_owner
        && glibc_owner == super::os_tid()
        && foreign_owners::get(m as usize) != Some(owner_id())
    {
        return EPERM;
    }
    // SAFETY: as above.
    let rc = unsafe { (crate::real::get().pthread_mutex_unlock)(m) };
    if tracks_owner
        && rc == 0
        // SAFETY: as above.
        && unsafe { (*f.owner).load(Ordering::Relaxed) } & FUTEX_TID_MASK != super::os_tid()
    {
        foreign_owners::clear(m as usize);
    }
    rc
}

/// Which green thread holds each owner-checking glibc-protocol mutex held in this process: a
/// fixed table (no allocation), consulted only when glibc's owner is the calling OS thread.
mod foreign_owners {
    use core::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    const BUCKETS: usize = 256;
    const WAYS: usize = 8;
    static TABLE: [Mutex<[(usize, i32); WAYS]>; BUCKETS] =
        [const { Mutex::new([(0, 0); WAYS]) }; BUCKETS];
    /// Entries in use: a green thread's exit looks at the table only when some are.
    static TRACKED: AtomicUsize = AtomicUsize::new(0);

    /// Is any mutex's owner tracked?
    #[inline]
    pub fn any() -> bool {
        TRACKED.load(Ordering::Acquire) != 0
    }

    /// The mutexes `owner` holds (at most `out.len()`), for a thread that is going away.
    pub fn held_by(owner: i32, out: &mut [usize; 16]) -> usize {
        if TRACKED.load(Ordering::Acquire) == 0 {
            return 0;
        }
        let mut n = 0;
        for bucket in &TABLE {
            for &(key, who) in bucket.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                if key != 0 && who == owner && n < out.len() {
                    out[n] = key;
                    n += 1;
                }
            }
        }
        n
    }

    fn bucket(key: usize) -> std::sync::MutexGuard<'static, [(usize, i32); WAYS]> {
        TABLE[(key >> 4) % BUCKETS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(key: usize) -> Option<i32> {
        bucket(key)
            .iter()
            .find(|(k, _)| *k == key)
            .map(|&(_, owner)| owner)
    }

    pub fn set(key: usize, owner: i32) {
        let mut ways = bucket(key);
        if let Some(slot) = ways.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = owner;
        } else if let Some(slot) = ways.iter_mut().find(|(k, _)| *k == 0) {
            *slot = (key, owner);
            TRACKED.fetch_add(1, Ordering::AcqRel);
        } else {
            crate::log!(
                Warn,
                "too many process-shared mutexes held at once to track their green owners"
            );
        }
    }

    pub fn clear(key: usize) {
        if let Some(slot) = bucket(key).iter_mut().find(|(k, _)| *k == key) {
            *slot = (0, 0);
            TRACKED.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A green thread is ending: the robust mutexes it still holds become owner-dead, as the kernel
/// makes them when an OS thread dies (their next locker gets EOWNERDEAD). glibc sees every green
/// thread of an OS thread as that OS thread, so nothing else would ever tell it.
pub fn green_thread_ending() {
    if !foreign_owners::any() {
        return; // the common case, at every thread's end: no owner lookup, no scan
    }
    let me = owner_id();
    let mut held = [0usize; 16];
    let n = foreign_owners::held_by(me, &mut held);
    for &key in &held[..n] {
        let m = key as *mut pthread_mutex_t;
        // SAFETY: a mutex this thread locked and still holds is alive (using it after its
        // owner's death is what robust mutexes are for).
        let f = unsafe { fields(m) };
        if kind_of(&f) & ROBUST != 0 {
            // SAFETY: as above.
            unsafe { mark_owner_dead(m, &f) };
        }
        foreign_owners::clear(key);
    }
}

/// The kernel's robust-futex handling for one mutex of a dying owner: off the OS thread's
/// robust list (glibc's `DEQUEUE_MUTEX`), FUTEX_OWNER_DIED in the lock word, one waiter woken.
///
/// # Safety
/// `m` is a live robust mutex held by the calling OS thread, `f` its fields.
#[cfg(target_arch = "x86_64")]
unsafe fn mark_owner_dead(m: *mut pthread_mutex_t, f: &Fields) {
    const FUTEX_WAITERS: i32 = i32::MIN; // 0x8000_0000
    const FUTEX_OWNER_DIED: i32 = 0x4000_0000;
    // x86-64 glibc keeps robust mutexes on a doubly linked list through `__list` (offset 24:
    // `__prev`, `__next`), each link pointing at a neighbour's `__next` (low bit: a flag).
    // SAFETY: the list fields of a live mutex, and of its live neighbours on the list.
    unsafe {
        let list = m.cast::<u8>().add(24).cast::<[usize; 2]>();
        let (prev, next) = ((*list)[0], (*list)[1]);
        if prev != 0 && next != 0 {
            let adjust = size_of::<usize>(); // from a `__next` field to its `__list`
            let next_list = ((next & !1) - adjust) as *mut [usize; 2];
            (*next_list)[0] = prev;
            let prev_list = ((prev & !1) - adjust) as *mut [usize; 2];
            (*prev_list)[1] = next;
            (*list) = [0, 0];
        }
        let word = &*f.lock;
        let old = word.swap(
            FUTEX_OWNER_DIED | (word.load(Ordering::Relaxed) & FUTEX_WAITERS),
            Ordering::Release,
        );
        (*f.owner).store(0, Ordering::Relaxed);
        if old & FUTEX_WAITERS != 0 {
            let private = if kind_of(f) & 128 == 0 {
                libc::FUTEX_PRIVATE_FLAG
            } else {
                0
            };
            crate::sys::syscall!(libc::SYS_futex, f.lock, libc::FUTEX_WAKE | private, 1);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn mark_owner_dead(_: *mut pthread_mutex_t, _: &Fields) {
    crate::log!(
        Warn,
        "a green thread ended holding a robust mutex; it stays locked on this architecture"
    );
}
