//! `pthread_rwlock_*`, in glibc's `pthread_rwlock_t`: `__readers` is our state word (writer
//! bit, waiters bit, reader count), `__cur_writer` the writer's owner id (for EDEADLK),
//! `__shared` and `__flags` as `pthread_rwlock_init` wrote them. The preference is glibc's:
//! readers first by default (readers may pass waiting writers), writers first with
//! `PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP`. A release hands the lock to the queue's
//! head (FIFO): a writer, or the readers glibc's preference lets in with it.

use super::{owner_id, poll_foreign};
use crate::outcome::Outcome::{self, Bypass, Done};
use crate::park::{self, Parked, WakeList};
use crate::waiting::WaitOn;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use libc::{EAGAIN, EBUSY, EDEADLK, ETIMEDOUT, c_int, pthread_rwlock_t};

const WRITER: u32 = 1 << 31;
const WAITERS: u32 = 1 << 30;
const READERS: u32 = WAITERS - 1;
const PREFER_WRITER_NONRECURSIVE: u32 = 2;

const READ: usize = 0;
const WRITE: usize = 1;

struct Fields {
    state: *const AtomicU32,
    cur_writer: *const AtomicI32,
    shared: *const AtomicI32,
    flags: *const AtomicU32,
}

/// # Safety
/// `l` points to a live `pthread_rwlock_t` (56 bytes on x86-64 and aarch64).
unsafe fn fields(l: *mut pthread_rwlock_t) -> Fields {
    let base = l.cast::<u8>();
    // SAFETY: the offsets of glibc's __readers, __cur_writer, __shared and __flags.
    unsafe {
        Fields {
            state: base.cast(),
            cur_writer: base.add(24).cast(),
            shared: base.add(28).cast(),
            flags: base.add(48).cast(),
        }
    }
}

pub use super::Wait;

/// `pthread_rwlock_rdlock`/`wrlock` and their try, timed and clock variants.
///
/// # Safety
/// `l` is initialised; a timespec in `wait` is readable.
pub unsafe fn lock(l: *mut pthread_rwlock_t, write: bool, wait: Wait) -> Outcome<c_int> {
    if !crate::thread::active() {
        return Bypass;
    }
    // SAFETY: per our contract.
    let f = unsafe { fields(l) };
    // SAFETY: valid pointers into the live lock.
    let (state, cur_writer) = unsafe { (&*f.state, &*f.cur_writer) };
    // SAFETY: as above.
    if unsafe { (*f.shared).load(Ordering::Relaxed) } != 0 {
        // SAFETY: per our contract.
        return Done(unsafe { foreign_lock(l, write, wait) });
    }
    // glibc checks the clock and the time first, even when the lock is free.
    // SAFETY: readable (caller).
    let deadline = match unsafe { wait.deadline() } {
        Ok(deadline) => deadline,
        Err(code) => return Done(code),
    };
    // SAFETY: as above.
    let prefer_writer = unsafe { (*f.flags).load(Ordering::Relaxed) } == PREFER_WRITER_NONRECURSIVE;
    let me = owner_id();
    let admits = |s: u32| {
        if write {
            s & (WRITER | READERS) == 0
        } else {
            s & WRITER == 0 && !(prefer_writer && s & WAITERS != 0)
        }
    };
    let take = |s: u32| if write { s | WRITER } else { s + 1 };
    // Fast path: no waiters to respect.
    let s = state.load(Ordering::Relaxed);
    if admits(s)
        && (s & READERS) < READERS - 1
        && state
            .compare_exchange(s, take(s), Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    {
        if write {
            cur_writer.store(me, Ordering::Relaxed);
        }
        return Done(0);
    }
    if s & WRITER != 0 && cur_writer.load(Ordering::Relaxed) == me {
        return Done(if matches!(wait, Wait::Try) {
            EBUSY
        } else {
            EDEADLK
        });
    }
    if !write && s & READERS >= READERS - 1 {
        return Done(EAGAIN);
    }
    let key = l as usize;
    loop {
        let bucket = park::lock(key);
        let s = state.load(Ordering::Relaxed);
        if admits(s) {
            if state
                .compare_exchange(s, take(s), Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                if write {
                    cur_writer.store(me, Ordering::Relaxed);
                }
                return Done(0);
            }
            continue;
        }
        if matches!(wait, Wait::Try) {
            return Done(EBUSY);
        }
        if state
            .compare_exchange(s, s | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            continue;
        }
        let kind = if write { WRITE } else { READ };
        match bucket.park(key, kind, deadline, WaitOn::RwLock(key).word(), || {}) {
            Parked::Unparked { handed_off: true } => {
                if write {
                    cur_writer.store(me, Ordering::Relaxed);
                }
                return Done(0);
            }
            Parked::Unparked { handed_off: false } => {}
            Parked::TimedOut => {
                // The last waiter leaving must not keep the lock closed to new readers.
                let bucket = park::lock(key);
                if !bucket.has_waiters(key) {
                    state.fetch_and(!WAITERS, Ordering::Relaxed);
                }
                return Done(ETIMEDOUT);
            }
        }
    }
}

/// `pthread_rwlock_unlock`.
///
/// # Safety
/// `l` is initialised.
pub unsafe fn unlock(l: *mut pthread_rwlock_t) -> Outcome<c_int> {
    if !crate::thread::active() {
        return Bypass;
    }
    // SAFETY: per our contract.
    let f = unsafe { fields(l) };
    // SAFETY: valid pointers into the live lock.
    if unsafe { (*f.shared).load(Ordering::Relaxed) } != 0 {
        return Bypass;
    }
    // SAFETY: as above.
    let (state, cur_writer) = unsafe { (&*f.state, &*f.cur_writer) };
    let releasing = if state.load(Ordering::Relaxed) & WRITER != 0 {
        cur_writer.store(0, Ordering::Relaxed);
        WRITER
    } else {
        1
    };
    // Without waiters, a plain release; with them, the lock never passes through a free state
    // (a releaser that relocks at once would otherwise starve them).
    let mut s = state.load(Ordering::Relaxed);
    while s & WAITERS == 0 {
        match state.compare_exchange_weak(s, s - releasing, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return Done(0),
            Err(now) => s = now,
        }
    }
    // SAFETY: as above.
    let prefer_writer = unsafe { (*f.flags).load(Ordering::Relaxed) } == PREFER_WRITER_NONRECURSIVE;
    release_to_waiters(state, l as usize, releasing, prefer_writer);
    Done(0)
}

/// Releases `releasing` (the writer bit or one reader) while waiters are queued: if the lock
/// becomes free it goes to the queue's head — a writer, or the readers glibc's preference
/// admits with it — already taken on their behalf.
fn release_to_waiters(state: &AtomicU32, key: usize, releasing: u32, prefer_writer: bool) {
    let mut bucket = park::lock(key);
    // Who would get the lock: a writer, or this many readers.
    let head_is_writer = bucket.waiters(key).next().map(|kind| kind == WRITE);
    let readers = if head_is_writer == Some(false) {
        let mut blocked = false;
        bucket
            .waiters(key)
            .filter(|&kind| {
                blocked |= kind == WRITE;
                kind == READ && !(prefer_writer && blocked)
            })
            .count() as u32
    } else {
        0
    };
    let mut s = state.load(Ordering::Relaxed);
    loop {
        let left = s - releasing;
        let (next, hand_over) = if left & (WRITER | READERS) != 0 {
            (left, false) // still held: the last holder hands over
        } else {
            match head_is_writer {
                None => (left & !WAITERS, false),
                Some(true) => (WRITER | WAITERS, true),
                Some(false) => (readers | WAITERS, true),
            }
        };
        match state.compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) if !hand_over => return,
            Ok(_) => break,
            Err(now) => s = now,
        }
    }
    let mut wakers = WakeList::default();
    let mut blocked = false;
    let mut first = true;
    bucket.unpark_all(
        key,
        |node| {
            let take = match head_is_writer {
                Some(true) => first,
                _ => {
                    blocked |= node.data == WRITE;
                    node.data == READ && !(prefer_writer && blocked)
                }
            };
            first = false;
            node.handed_off.set(take);
            take
        },
        &mut wakers,
    );
    if !bucket.has_waiters(key) {
        state.fetch_and(!WAITERS, Ordering::Relaxed);
    }
    drop(bucket);
    wakers.wake_all();
}

/// A process-shared rwlock: glibc's protocol, polled green when others could run.
///
/// # Safety
/// `l` is initialised; a timespec in `wait` is readable.
unsafe fn foreign_lock(l: *mut pthread_rwlock_t, write: bool, wait: Wait) -> c_int {
    let real = crate::real::get();
    // SAFETY: l is initialised (caller).
    let try_lock = || unsafe {
        if write {
            (real.pthread_rwlock_trywrlock)(l)
        } else {
            (real.pthread_rwlock_tryrdlock)(l)
        }
    };
    if let Wait::Try = wait {
        return try_lock();
    }
    // SAFETY: readable (caller).
    let deadline = match unsafe { wait.deadline() } {
        Ok(deadline) => deadline,
        Err(code) => return code,
    };
    if super::others_could_run() {
        return poll_foreign(EBUSY, deadline, try_lock);
    }
    // SAFETY: as above.
    unsafe {
        match (wait, write) {
            (Wait::Until(clock, abstime), true) => {
                (real.pthread_rwlock_clockwrlock)(l, clock, abstime)
            }
            (Wait::Until(clock, abstime), false) => {
                (real.pthread_rwlock_clockrdlock)(l, clock, abstime)
            }
            (_, true) => (real.pthread_rwlock_wrlock)(l),
            (_, false) => (real.pthread_rwlock_rdlock)(l),
        }
    }
}
