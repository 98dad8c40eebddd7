//! The library's own descriptors — each hub's epoll and eventfd, the private copy of stderr,
//! a pidfd or signalfd while a wait lasts — kept out of the program's way.
//!
//! Natively a program owns every descriptor it can name, and daemons act on that: they close
//! every number above stderr in a loop, or `dup2` over low numbers. So ours live high, above
//! the program's usual range (`F_DUPFD_CLOEXEC` from [`floor`]), and the hooks answer for them
//! as for numbers never opened: `close` of one fails with EBADF and leaves it open,
//! `close_range`/`closefrom` pass over them, and `dup2`/`dup3` onto one first move ours to
//! another number ([`make_room`]). Every owner reads its number through its [`OwnFd`] each
//! time, since a move changes it.

use core::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use libc::c_int;
use std::io;

/// More than any process needs (one hub per OS thread running green threads has two).
const SLOTS: usize = 1024;
const FREE: c_int = -1;
/// A slot whose descriptor was lost (see [`OwnFd::disown`]): kept, so that its owner never
/// reads another owner's number from it.
const LOST: c_int = -2;
/// How far below the descriptor limit (or 1024) ours start: room for a few hubs.
const BAND: c_int = 64;

static SLOT: [AtomicI32; SLOTS] = [const { AtomicI32::new(FREE) }; SLOTS];
/// Slots ever used: scans stop here.
static USED: AtomicUsize = AtomicUsize::new(0);
/// The lowest number ever ours: `is_own` of anything below is a comparison.
static LOWEST: AtomicI32 = AtomicI32::new(c_int::MAX);

/// One of the library's descriptors. Copy freely; its number is read through [`OwnFd::get`].
#[derive(Clone, Copy, Debug)]
pub struct OwnFd(&'static AtomicI32);

impl OwnFd {
    /// Its number now (negative once closed or lost).
    #[inline]
    pub fn get(self) -> c_int {
        self.0.load(Ordering::Acquire)
    }

    /// Closes it; the number stops being ours first.
    pub fn close(self) {
        let fd = self.0.swap(FREE, Ordering::AcqRel);
        if fd >= 0 {
            // SAFETY: our own descriptor, closed once (the slot no longer names it).
            unsafe { crate::sys::syscall!(libc::SYS_close, fd) };
        }
    }

    /// Puts `fd` (just opened by the library) in this one's place, moved high as by [`adopt`];
    /// returns the number it replaces, for the caller to close or give up.
    pub fn replace(self, fd: c_int) -> c_int {
        let fd = move_high(fd);
        LOWEST.fetch_min(fd, Ordering::AcqRel);
        self.0.swap(fd, Ordering::AcqRel)
    }

    /// Gives up the number without closing it: it may already be the program's (closed behind
    /// the library's back with a raw system call, and reused).
    pub fn disown(self) {
        self.0.store(LOST, Ordering::Release);
    }
}

/// Where the library's descriptors start: `BAND` below the soft `RLIMIT_NOFILE`, capped at
/// 1024 (a higher number would make the kernel grow the table of every process), at least 3.
pub fn floor() -> c_int {
    static FLOOR: AtomicI32 = AtomicI32::new(0);
    let cached = FLOOR.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    let mut limit = libc::rlimit {
        rlim_cur: 1024,
        rlim_max: 1024,
    };
    // SAFETY: reads this process's limit into a valid rlimit (the raw call, never hooked).
    unsafe {
        crate::sys::syscall!(
            libc::SYS_prlimit64,
            0,
            libc::RLIMIT_NOFILE,
            core::ptr::null::<libc::rlimit>(),
            &raw mut limit,
        )
    };
    let top = limit.rlim_cur.min(1024) as c_int;
    let floor = (top - BAND).max(3);
    FLOOR.store(floor, Ordering::Relaxed);
    floor
}

/// A close-on-exec duplicate of `fd` at the lowest free number from `from`.
fn duplicate_from(fd: c_int, from: c_int) -> Option<c_int> {
    // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor and touches no memory.
    let new = unsafe { crate::sys::syscall!(libc::SYS_fcntl, fd, libc::F_DUPFD_CLOEXEC, from) };
    (new >= 0).then_some(new as c_int)
}

/// A close-on-exec copy of `fd` (not the library's: stderr, say) above [`floor`], or anywhere
/// if there is no room there.
pub fn duplicate_high(fd: c_int) -> Option<c_int> {
    duplicate_from(fd, floor()).or_else(|| duplicate_from(fd, 3))
}

/// `fd` (the library's, just opened) at a number above [`floor`], when there is room there.
pub fn move_high(fd: c_int) -> c_int {
    if fd >= floor() {
        return fd;
    }
    match duplicate_from(fd, floor()) {
        Some(high) => {
            // SAFETY: the library's own fresh descriptor, replaced by its high copy.
            unsafe { crate::sys::syscall!(libc::SYS_close, fd) };
            high
        }
        None => fd,
    }
}

/// Makes `fd`, just opened by the library, one of its own: moved above [`floor`] when there is
/// room there (else kept where it is) and remembered. Fails only when every slot is taken
/// (then `fd` is closed).
pub fn adopt(fd: c_int) -> io::Result<OwnFd> {
    let fd = move_high(fd);
    for (i, slot) in SLOT.iter().enumerate() {
        if slot
            .compare_exchange(FREE, fd, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            USED.fetch_max(i + 1, Ordering::AcqRel);
            LOWEST.fetch_min(fd, Ordering::AcqRel);
            return Ok(OwnFd(slot));
        }
    }
    // SAFETY: ours, never published.
    unsafe { crate::sys::syscall!(libc::SYS_close, fd) };
    Err(io::Error::from_raw_os_error(libc::EMFILE))
}

fn slot_of(fd: c_int) -> Option<&'static AtomicI32> {
    if fd < 0 || fd < LOWEST.load(Ordering::Acquire) {
        return None;
    }
    SLOT[..USED.load(Ordering::Acquire)]
        .iter()
        .find(|slot| slot.load(Ordering::Acquire) == fd)
}

/// Is `fd` one of the library's descriptors? (The program's calls treat it as never opened.)
#[inline]
pub fn is_own(fd: c_int) -> bool {
    fd >= LOWEST.load(Ordering::Relaxed) && slot_of(fd).is_some()
}

/// The library's descriptors within `first..=last`, ascending (the first 128: two per hub).
pub fn own_in(first: c_int, last: c_int) -> impl Iterator<Item = c_int> {
    let mut found: [c_int; 128] = [c_int::MAX; 128];
    let mut n = 0;
    for slot in &SLOT[..USED.load(Ordering::Acquire)] {
        let fd = slot.load(Ordering::Acquire);
        if fd >= first && fd <= last && n < found.len() {
            found[n] = fd;
            n += 1;
        }
    }
    found[..n].sort_unstable();
    found.into_iter().take(n)
}

/// What [`make_room`] did: after the program's call, [`Room::settle`] with its result.
#[must_use]
pub struct Room {
    /// The number ours left, still holding a copy of ours until the call replaces it.
    vacated: Option<c_int>,
}

impl Room {
    /// The call failed: the vacated number holds nothing the program made; close it, as
    /// natively it was never open.
    pub fn settle(self, rc: c_int) -> c_int {
        if let (Some(fd), true) = (self.vacated, rc < 0) {
            let errno = crate::sys::errno();
            // SAFETY: a stale copy of our own descriptor, nobody else's.
            unsafe { crate::sys::syscall!(libc::SYS_close, fd) };
            crate::sys::set_errno(errno);
        }
        rc
    }
}

/// Before the program's `dup2`/`dup3` onto `target`: if `target` is ours, ours moves to another
/// number first (the old number stays a copy of it until the call replaces it, so a waiter in
/// `epoll_wait` never sees it vanish).
pub fn make_room(target: c_int) -> Room {
    let Some(slot) = slot_of(target) else {
        return Room { vacated: None };
    };
    let moved = duplicate_high(target);
    match moved {
        Some(new) => {
            let _ = slot.compare_exchange(target, new, Ordering::AcqRel, Ordering::Relaxed);
            LOWEST.fetch_min(new, Ordering::AcqRel);
            Room {
                vacated: Some(target),
            }
        }
        // No number left for ours: the program's call wins, and the owner finds out (a hub
        // makes a fresh poller, the log goes quiet).
        None => {
            slot.store(LOST, Ordering::Release);
            Room { vacated: None }
        }
    }
}

/// The program's `dup`/`dup2`/`dup3` of `source` onto `target` (-1: the lowest free number),
/// made by `call`: a source of the library's is not open as far as the program knows (EBADF),
/// and a target of the library's is moved out of the way first.
pub fn protect_own_fd(
    source: c_int,
    target: c_int,
    call: impl FnOnce() -> c_int,
) -> crate::outcome::Outcome<c_int> {
    if is_own(source) {
        return crate::outcome::Outcome::Errno(libc::EBADF);
    }
    let room = make_room(target);
    crate::outcome::Outcome::Done(room.settle(call()))
}

/// After the program's `dup` or `fcntl(F_DUPFD*)` from `min` returned `got`: natively the lowest
/// free number from `min` is taken, and if one of ours lies in `min..got` (every number between
/// is taken), that is it. Ours moves, and the program's copy takes its number.
pub fn lowest_for_program(got: c_int, min: c_int, cloexec: bool) -> c_int {
    if got < 0 || got <= LOWEST.load(Ordering::Relaxed) {
        return got;
    }
    let Some(ours) = own_in(min.max(0), got - 1).next() else {
        return got;
    };
    let room = make_room(ours);
    if room.vacated.is_none() {
        return got;
    }
    let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
    // SAFETY: the program's new copy onto the number ours just left (a stale copy of ours).
    let rc = unsafe { crate::sys::syscall!(libc::SYS_dup3, got, ours, flags) } as c_int;
    if rc < 0 {
        room.settle(-1); // the stale copy closed; the program keeps `got`
        return got;
    }
    // SAFETY: the program's copy at `got`, now also at `ours`: the one it asked for is `ours`.
    unsafe { crate::sys::syscall!(libc::SYS_close, got) };
    ours
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_open(fd: c_int) -> bool {
        // SAFETY: F_GETFD reads flags only.
        unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
    }

    #[test]
    fn own_descriptors_live_high_and_move_out_of_the_way() {
        // SAFETY: a fresh eventfd, handed to `adopt`.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        assert!(fd >= 0);
        let own = adopt(fd).unwrap();
        let high = own.get();
        assert!(high >= floor(), "{high} below {}", floor());
        assert!(!is_open(fd), "the low original stays open");
        assert!(is_own(high) && !is_own(fd));
        // Other tests of this process (a hub's poller) may own descriptors too, meanwhile.
        let listed: Vec<c_int> = own_in(0, c_int::MAX).collect();
        assert!(
            listed.contains(&high) && !listed.contains(&fd),
            "{listed:?}"
        );

        // dup2 of a program's descriptor onto ours: ours moves first, the program gets the number.
        // SAFETY: a fresh eventfd of the "program".
        let theirs = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        // SAFETY: plain dup2 of open descriptors.
        let rc = protect_own_fd(theirs, high, || unsafe { libc::dup2(theirs, high) });
        assert_eq!(rc, crate::outcome::Outcome::Done(high));
        let moved = own.get();
        assert!(moved != high && is_open(moved) && is_own(moved) && !is_own(high));
        // A failed call onto ours leaves no stale copy behind.
        let room = make_room(moved);
        let now = own.get();
        assert_eq!(room.settle(-1), -1);
        assert!(!is_open(moved) && is_open(now) && is_own(now));
        // Ours as the source: not open, as far as the program knows.
        assert_eq!(
            protect_own_fd(now, -1, || unreachable!()),
            crate::outcome::Outcome::Errno(libc::EBADF)
        );
        own.close();
        assert!(!is_open(now) && !is_own(now));
        // SAFETY: closes the "program's" copies.
        unsafe {
            libc::close(theirs);
            libc::close(high);
        }
    }
}
