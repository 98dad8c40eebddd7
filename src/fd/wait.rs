//! Waiting for a descriptor to become readable or writable.
//!
//! Each green descriptor is registered once with its hub's epoll, edge-triggered, for both
//! directions. An edge wakes every waiter of that direction (they retry and park again on
//! EAGAIN), or, when no one waits, leaves a ready flag so the next would-be waiter retries
//! instead of parking. A thread between its failed try and its park (on another hub) when an
//! edge wakes the others is neither woken nor finds the flag: it finds the count of wake-ups
//! moved since its try began, and tries again. No edge is lost between a failed try and the
//! park.

use super::Entry;
use super::io::GreenFd;
use crate::hub::Hub;
use crate::park::{self, Parked, WakeList};
use crate::signal::Interrupt;
use crate::waiting::WaitOn;
use core::sync::atomic::Ordering;
use libc::{EAGAIN, EBADF, c_int};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Read = 0,
    Write = 1,
}

// `Entry::key`: the two directions' keys (the entry's address, and the next byte's) share a
// parking-lot bucket only if no 8-byte boundary falls between them.
const _: () = assert!(core::mem::align_of::<Entry>() >= 8);

impl Entry {
    fn ready_flag(&self, dir: Direction) -> &core::sync::atomic::AtomicBool {
        match dir {
            Direction::Read => &self.read_ready,
            Direction::Write => &self.write_ready,
        }
    }

    /// The count of one direction's wake-ups (see `Entry::read_wakes`).
    pub(super) fn wakes(&self, dir: Direction) -> &core::sync::atomic::AtomicU32 {
        match dir {
            Direction::Read => &self.read_wakes,
            Direction::Write => &self.write_wakes,
        }
    }

    /// The parking-lot key of the waiters of one direction: the entry's address, and the next
    /// byte's for writes. Entries are 8-aligned, so both keys hash to one bucket
    /// (`park::same_bucket`): an edge wakes both directions under one hold of it.
    fn key(&self, dir: Direction) -> usize {
        self as *const Entry as usize + dir as usize
    }

    /// The queue of the waiters of one direction, their own (entries are never freed).
    fn waiters(&'static self, dir: Direction) -> &'static park::Queue {
        match dir {
            Direction::Read => &self.read_waiters,
            Direction::Write => &self.write_waiters,
        }
    }

    /// The parking-lot bucket of one direction's waiters.
    fn lock_waiters(&'static self, dir: Direction) -> park::Bucket {
        park::lock_own(self.key(dir), self.waiters(dir))
    }

    /// Turns a bucket held for this entry's waiters of one direction to those of `dir`.
    fn turn_to(&'static self, bucket: &mut park::Bucket, dir: Direction) {
        let other = match dir {
            Direction::Read => Direction::Write,
            Direction::Write => Direction::Read,
        };
        bucket.turn_to_own(self.key(other), self.key(dir), self.waiters(dir));
    }
}

/// Why a wait did not end with the descriptor (maybe) ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotReady {
    /// The timeout passed: the caller answers EAGAIN, as a socket timeout does.
    TimedOut,
    /// Closed or replaced meanwhile.
    Closed,
    /// epoll refuses this descriptor (a regular file: always ready): the caller must make the
    /// real call.
    Unwatchable,
    /// Another OS thread's hub watches it: the caller must make the real, blocking call.
    Elsewhere,
    /// A signal's handler ran and the call is not restarted (no SA_RESTART, or a timeout).
    Interrupted,
}

impl NotReady {
    /// What the call that waited answers: the real call (the wait cannot be made here), or
    /// its error.
    pub fn outcome<T>(self) -> crate::outcome::Outcome<T> {
        match self {
            NotReady::Unwatchable | NotReady::Elsewhere => crate::outcome::Outcome::Bypass,
            other => crate::outcome::Outcome::Errno(other.errno()),
        }
    }

    pub fn errno(self) -> c_int {
        match self {
            NotReady::TimedOut => EAGAIN,
            NotReady::Interrupted => libc::EINTR,
            NotReady::Closed | NotReady::Unwatchable | NotReady::Elsewhere => EBADF,
        }
    }
}

/// The one wait of green descriptor I/O: parks the calling green thread until `fd` may be ready
/// in `dir` (Ok: try the call again), its descriptor is closed or replaced, `deadline`
/// (CLOCK_MONOTONIC ns) passes, or a signal's handler interrupts it as it would interrupt the
/// native call — unless the handler asked for SA_RESTART and the call has no timeout (Linux
/// never restarts a call with a socket timeout). The caller has just seen EAGAIN.
pub fn wait_fd(fd: &GreenFd, dir: Direction, deadline: Option<u64>) -> Result<(), NotReady> {
    loop {
        let interrupt = Interrupt::new();
        let seen = fd.wakes_seen.take();
        let ready = crate::signal::interruptibly(fd.hub, &interrupt, || {
            wait_ready(fd.hub, fd.fd, fd.entry, fd.generation, dir, seen, deadline)
        });
        if !interrupt.happened.get() {
            return ready;
        }
        let sig = interrupt.signal.get();
        if sig == 0 || deadline.is_some() || !crate::signal::restarts(sig) {
            return Err(NotReady::Interrupted);
        }
        // Restarted: the wait may have ended for its own reason too (the edge that woke it is
        // consumed), so the caller tries its call again before any new wait.
        if ready.is_ok() {
            return ready;
        }
    }
}

/// Parks the calling green thread until `fd` (of generation `generation`) may be ready in
/// `dir`, or until `deadline`; at once when the direction's wake-ups moved on from `seen`
/// (their count when the failed try began, if the caller took it).
fn wait_ready(
    hub: &'static Hub,
    fd: c_int,
    entry: &'static Entry,
    generation: u32,
    dir: Direction,
    seen: Option<u32>,
    deadline: Option<u64>,
) -> Result<(), NotReady> {
    watch(hub, fd, entry, generation)?;
    let key = entry.key(dir);
    let bucket = entry.lock_waiters(dir);
    if entry.generation() != generation {
        return Err(NotReady::Closed);
    }
    // A load first: the flag is rarely set, and a swap is a locked instruction (6-16 ns here)
    // on every wait. Every writer holds the bucket (but `renew`, whose false loses nothing).
    let flag = entry.ready_flag(dir);
    if flag.load(Ordering::Acquire) {
        flag.store(false, Ordering::Relaxed);
        return Ok(());
    }
    if seen.is_some_and(|seen| entry.wakes(dir).load(Ordering::Acquire) != seen) {
        return Ok(());
    }
    let on = match dir {
        Direction::Read => WaitOn::FdRead(fd).word(),
        Direction::Write => WaitOn::FdWrite(fd).word(),
    };
    let parked = bucket.park_on(Some(hub), key, 0, deadline, on, || {});
    if entry.generation() != generation {
        return Err(NotReady::Closed);
    }
    match parked {
        Parked::TimedOut => Err(NotReady::TimedOut),
        Parked::Unparked { .. } => Ok(()),
    }
}

/// Registers `fd` with `hub`'s epoll once.
#[inline(always)]
fn watch(
    hub: &'static Hub,
    fd: c_int,
    entry: &'static Entry,
    generation: u32,
) -> Result<(), NotReady> {
    if core::ptr::eq(entry.registered.load(Ordering::Acquire), hub) {
        return Ok(());
    }
    register(hub, fd, entry, generation)
}

/// [`watch`] for a descriptor this hub does not watch yet.
#[cold]
#[inline(never)]
fn register(
    hub: &'static Hub,
    fd: c_int,
    entry: &'static Entry,
    generation: u32,
) -> Result<(), NotReady> {
    let current = entry.registered.load(Ordering::Acquire);
    if core::ptr::eq(current, hub) {
        return Ok(());
    }
    if !current.is_null() {
        // Several hubs: the hub that watches it wakes this thread across hubs (its poller's
        // event unparks every waiter of the key, wherever it lives). Otherwise another OS
        // thread's hub (a real thread's) would have to poll for this one: the real call.
        return if Hub::several() {
            Ok(())
        } else {
            Err(NotReady::Elsewhere)
        };
    }
    let hub_ptr = hub as *const Hub as *mut Hub;
    if entry
        .registered
        .compare_exchange(
            core::ptr::null_mut(),
            hub_ptr,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_err()
    {
        return register(hub, fd, entry, generation);
    }
    if let Err(e) = hub.watch(fd, event_key(fd, generation)) {
        crate::log!(
            Debug,
            "fd {fd} cannot be watched ({e}); its calls stay blocking"
        );
        entry
            .registered
            .store(core::ptr::null_mut(), Ordering::Release);
        // A regular file is refused (EPERM) whatever it is asked: it keeps its kind, which
        // decides whether its calls go to the thread pool (`poll` on one must not change that).
        // Asked afresh: a number reused behind our back may be cached as a socket or pipe.
        entry.set_kind(match super::classify(fd) {
            super::Kind::File => super::Kind::File,
            _ => super::Kind::Plain,
        });
        return Err(NotReady::Unwatchable);
    }
    Ok(())
}

/// Parks the calling green thread until any of `fds` may have changed readiness (an edge in
/// either direction) or `deadline` passes; true when the deadline passed. Descriptors epoll
/// refuses are skipped (they are always ready, and never change).
pub fn wait_any(
    hub: &'static Hub,
    fds: impl Iterator<Item = c_int> + Clone,
    deadline: Option<u64>,
    seen: Option<u32>,
) -> Result<bool, NotReady> {
    for fd in fds.clone() {
        let entry = super::entry(fd).ok_or(NotReady::Elsewhere)?;
        match watch(hub, fd, entry, entry.generation()) {
            Ok(()) | Err(NotReady::Unwatchable) => {}
            Err(other) => return Err(other),
        }
    }
    let on = WaitOn::Fds(fds.clone().count()).word();
    let keys = fds.clone().filter_map(super::entry).flat_map(|entry| {
        [Direction::Read, Direction::Write].map(|dir| (entry.key(dir), Some(entry.waiters(dir))))
    });
    let still_quiet = || seen.is_none_or(|seen| wakes_of(fds) == seen);
    Ok(park::park_many(hub, keys, deadline, on, still_quiet))
}

/// The wake-ups so far of both directions of every descriptor in `fds`, summed (it moves when
/// any count does): taken before a look at their readiness, for [`wait_any`] after it.
pub fn wakes_of(fds: impl Iterator<Item = c_int>) -> u32 {
    fds.filter_map(super::entry).fold(0u32, |sum, entry| {
        sum.wrapping_add(entry.read_wakes.load(Ordering::Acquire))
            .wrapping_add(entry.write_wakes.load(Ordering::Acquire))
    })
}

/// The epoll key of a descriptor's registration: its number and generation, so that events
/// of a closed descriptor's old registration never reach a new one with the same number.
fn event_key(fd: c_int, generation: u32) -> usize {
    (u64::from(generation) << 32 | fd as u32 as u64) as usize
}

/// An event from the hub's epoll for `key` (`exceptional`: urgent data, the peer's shutdown,
/// a hang-up or an error).
pub fn dispatch(key: usize, readable: bool, writable: bool, exceptional: bool) {
    let fd = (key as u64 & 0xffff_ffff) as c_int;
    let generation = (key as u64 >> 32) as u32;
    let Some(entry) = super::entry(fd) else {
        return;
    };
    if entry.generation() != generation {
        return;
    }
    if exceptional {
        // Before the edge is counted: a read that stopped at the urgent mark leaves data, one
        // that took the last bytes before the peer's FIN or reset leaves the end of file or the
        // error, and no new edge comes for either.
        entry.distrust_short_reads();
    }
    if readable {
        // Maybe a write from outside this process or past the hooks: emptiness is unknown
        // again (`Entry::known_empty`).
        entry.read_edges.fetch_add(1, Ordering::AcqRel);
    }
    ready(entry, readable, writable);
}

/// Before a batch of events is dispatched: asks the CPU for what [`dispatch`] will touch, a
/// step further along its pointers each pass over the batch (the entries; the node of each
/// one's first reader, on that thread's stack; that thread's block). With a thousand
/// connections each is a cache miss, and dispatched one event after another each waited for
/// the last; asked for a whole batch at a time they overlap.
pub fn prefetch(events: &[libc::epoll_event]) {
    const AT_ONCE: usize = 32;
    for batch in events.chunks(AT_ONCE) {
        let mut entries: [*const Entry; AT_ONCE] = [core::ptr::null(); AT_ONCE];
        let entries = &mut entries[..batch.len()];
        for (slot, event) in entries.iter_mut().zip(batch) {
            if let Some(entry) = super::made((event.u64 & 0xffff_ffff) as c_int) {
                *slot = entry;
                crate::sys::prefetch(entry as *const Entry as usize);
                crate::sys::prefetch(entry as *const Entry as usize + 64);
            }
        }
        let Some(ahead) = park::Prefetcher::new() else {
            return;
        };
        for &entry in entries.iter() {
            // SAFETY: a non-null slot holds an entry, and entries are never freed.
            if let Some(entry) = unsafe { entry.as_ref() } {
                ahead.node(&entry.read_waiters);
            }
        }
        for &entry in entries.iter() {
            // SAFETY: as above.
            if let Some(entry) = unsafe { entry.as_ref() } {
                ahead.waiter(&entry.read_waiters);
            }
        }
    }
}

/// An edge in the directions asked (an epoll event reports both when both are ready, so most
/// events ask for both): each one's waiters retry, or its next would-be waiter does. Both
/// directions under one hold of their bucket.
fn ready(entry: &'static Entry, read: bool, write: bool) {
    let mut wakers = WakeList::default();
    let first = if read {
        Direction::Read
    } else {
        Direction::Write
    };
    let mut bucket = entry.lock_waiters(first);
    if read {
        ready_held(&mut bucket, entry, Direction::Read, &mut wakers);
    }
    if write {
        if read {
            entry.turn_to(&mut bucket, Direction::Write);
        }
        ready_held(&mut bucket, entry, Direction::Write, &mut wakers);
    }
    drop(bucket);
    wakers.wake_all();
}

/// [`ready`] for one direction, its bucket held (turned to `dir`).
#[inline(always)]
fn ready_held(bucket: &mut park::Bucket, entry: &Entry, dir: Direction, wakers: &mut WakeList) {
    // Under the bucket, so a would-be waiter sees it moved or is queued already. One writer at
    // a time (the bucket's holder): no locked add.
    let wakes = entry.wakes(dir);
    wakes.store(
        wakes.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Release,
    );
    if !bucket.unpark_every(wakers) {
        entry.ready_flag(dir).store(true, Ordering::Release);
    }
}

/// An in-process write just landed in `entry`: its readers retry, or the next would-be reader
/// does (an epoll edge comes too, later).
pub fn wake_readers(entry: &'static Entry) {
    ready(entry, true, false);
}

/// As an edge in both directions: waiters retry, or the next would-be waiter does.
pub fn wake_as_ready(entry: &'static Entry) {
    entry.read_edges.fetch_add(1, Ordering::AcqRel);
    ready(entry, true, true);
}

/// Wakes every waiter of both directions (the descriptor is going away).
pub fn wake_all(entry: &'static Entry) {
    let mut wakers = WakeList::default();
    let mut bucket = entry.lock_waiters(Direction::Read);
    bucket.unpark_every(&mut wakers);
    entry.turn_to(&mut bucket, Direction::Write);
    bucket.unpark_every(&mut wakers);
    drop(bucket);
    wakers.wake_all();
}
