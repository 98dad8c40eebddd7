//! The descriptors whose `read`, `write`, `readv` and `writev` go straight to libc: a byte per
//! descriptor number below [`PLAIN_FDS`], which those exports' routers read before their route
//! (`abi::route_plain_fd!`, the route of a `plain_fd` row while descriptors may be marked): set,
//! the call jumps to libc's function with nothing done first (eight instructions); clear, it
//! goes on to the op, which may set it.
//!
//! A byte is set only where the op would have ended in the plain libc call with nothing else
//! done (`os::plain_first`: a device, a regular file while files do not go to the pool, a pipe
//! while `os` is off), and only while that holds for every caller and every call: the patching
//! state decided and not scoped (scoped, each call asks who calls, so every call goes the slow
//! way), the library engaged, and no green thread made yet (after that, a read or write is a
//! safe point, where a thread whose slice is spent yields: skipping it would let a thread that
//! polls a regular file keep its hub; see README, "Time slice"). What ends it:
//! - the number's next life (`fd::born`/`fd::forget`: every hooked close, dup, `dup2` onto it,
//!   call that makes a descriptor) withdraws its byte ([`withdraw`]);
//! - a change of the patching state (`monkey_patch`, `import_patched`: `abi::reroute_all`) and
//!   the process's first green thread withdraw every byte ([`withdraw_all`], [`green_made`]).
//!
//! The byte is `lives << 1 | plain`: [`withdraw`] counts the number's lives, so a [`mark`]
//! that decided on what it read of an earlier life cannot set it for the new one (its
//! compare-exchange fails, or the withdrawal comes after it and clears it), however the two
//! threads interleave: a call made after a descriptor's birth completed never goes plain on
//! what its number was before.

use core::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicUsize, Ordering::SeqCst,
};

/// Numbers from here on always take the export's route (the table of bytes stays 64 KiB of
/// `.bss`, whose pages are touched only where a descriptor was marked).
pub(crate) const PLAIN_FDS: usize = 65536;

/// The routers' bytes (see the module's doc), read by `abi::route_plain_fd!` as `[ROUTES + fd]`.
pub(crate) static ROUTES: [AtomicU8; PLAIN_FDS] = [const { AtomicU8::new(0) }; PLAIN_FDS];

/// One more than the highest number ever marked: [`withdraw_all`] looks no further.
static MARKED_BELOW: AtomicUsize = AtomicUsize::new(0);
/// Bumped by each [`withdraw_all`] before it clears: a [`mark`] that began before checks it
/// again once its byte is set.
static WITHDRAWALS: AtomicU32 = AtomicU32::new(0);
/// The process made a green thread: no byte is set from then on (see the module's doc).
static GREEN_MADE: AtomicBool = AtomicBool::new(false);

/// May a byte be set now, for every caller?
fn allowed() -> bool {
    !GREEN_MADE.load(SeqCst)
        && matches!(
            crate::patch::route(crate::patch::state(), crate::patch::Subsystem::Os, false),
            crate::patch::Route::Act
        )
}

/// Is `fd`'s byte worth [`mark`]ing: not set, and no green thread made (the one look the
/// plain path of a call that came the op's way pays, once they are).
#[inline(always)]
pub(crate) fn markable(fd: libc::c_int) -> bool {
    !GREEN_MADE.load(core::sync::atomic::Ordering::Relaxed)
        && usize::try_from(fd)
            .ok()
            .and_then(|at| ROUTES.get(at))
            .is_some_and(|byte| byte.load(core::sync::atomic::Ordering::Relaxed) & 1 == 0)
}

/// `fd`'s calls go to libc from now on, if `still_plain` (what the op decided, asked again
/// now: after the byte was read) says they would anyway. Out of line: the op calls it on a
/// plain descriptor whose byte is not set (its first plain call, or every call while scoped).
#[inline(never)]
pub(crate) fn mark(fd: libc::c_int, still_plain: impl FnOnce() -> bool) {
    mark_if(fd, allowed, still_plain);
}

/// [`mark`], with what says whether marks are allowed at all.
#[inline(always)]
fn mark_if(fd: libc::c_int, allowed: impl Fn() -> bool, still_plain: impl FnOnce() -> bool) {
    let Some(byte) = usize::try_from(fd).ok().and_then(|at| ROUTES.get(at)) else {
        return;
    };
    let withdrawals = WITHDRAWALS.load(SeqCst);
    if !allowed() {
        return;
    }
    let lives = byte.load(SeqCst);
    if lives & 1 != 0 || !still_plain() {
        return;
    }
    if MARKED_BELOW.load(SeqCst) <= fd as usize {
        MARKED_BELOW.fetch_max(fd as usize + 1, SeqCst);
    }
    if byte
        .compare_exchange(lives, lives | 1, SeqCst, SeqCst)
        .is_ok()
        && (WITHDRAWALS.load(SeqCst) != withdrawals || !allowed())
    {
        // A withdrawal of every byte came meanwhile, and may have looked before this one was
        // set. Failing, another withdrawal or mark has been here since: theirs stands.
        let _ = byte.compare_exchange(lives | 1, lives, SeqCst, SeqCst);
    }
}

/// `fd`'s number begins another life (or ends one): its byte is cleared, and no [`mark`] that
/// read it before can set it. Made after the fd table renewed the number's stamp (so that a
/// mark that reads the byte after this reads the new stamp too).
#[inline]
pub(crate) fn withdraw(fd: libc::c_int) {
    if let Some(byte) = usize::try_from(fd).ok().and_then(|at| ROUTES.get(at)) {
        // Even: clear; and one more life (wrapping within the seven bits).
        let _ = byte.fetch_update(SeqCst, SeqCst, |lives| Some((lives | 1).wrapping_add(1)));
    }
}

/// Every byte cleared: the patching state changed (called after it did, by `abi::reroute_all`).
pub(crate) fn withdraw_all() {
    WITHDRAWALS.fetch_add(1, SeqCst);
    let below = MARKED_BELOW.load(SeqCst).min(PLAIN_FDS);
    for byte in &ROUTES[..below] {
        if byte.load(SeqCst) & 1 != 0 {
            byte.fetch_and(!1, SeqCst);
        }
    }
}

/// What points the exports' routes anew (`abi::reroute_all`), once a router was installed:
/// [`green_made`] calls it, so that the exports stop asking for bytes none will set.
static REROUTE: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// `reroute` points the exports' routes anew when [`green_made`] asks; true while no green
/// thread was made (a `plain_fd` row's route may be its router only then). Stored before the
/// look, as [`green_made`] stores before its own: one of the two sees the other's.
pub(crate) fn on_green_made(reroute: fn()) -> bool {
    REROUTE.store(reroute as *mut (), SeqCst);
    !GREEN_MADE.load(SeqCst)
}

/// The process made its first green thread: from now on reads and writes are safe points,
/// which the plain way would skip (see the module's doc). Every byte is cleared, and the
/// routes go straight to the ops again: a green read pays nothing for the routers.
pub(crate) fn green_made() {
    GREEN_MADE.store(true, SeqCst);
    withdraw_all();
    let reroute = REROUTE.load(SeqCst);
    if !reroute.is_null() {
        // SAFETY: stored from a `fn()` by `on_green_made`.
        let reroute = unsafe { core::mem::transmute::<*mut (), fn()>(reroute) };
        reroute();
    }
}

/// Is `fd`'s byte set (unit tests and the routers' callers' tests)?
#[cfg(test)]
pub(crate) fn is_plain(fd: libc::c_int) -> bool {
    ROUTES[fd as usize].load(SeqCst) & 1 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    // The tests share the statics: each uses numbers of its own, and none of them asks for
    // a state change (`allowed` depends on the process's patching state, decided once).

    #[test]
    fn a_mark_that_read_an_earlier_life_never_sets_the_byte() {
        let fd = 60_001;
        let byte = &ROUTES[fd as usize];
        // A marker read the byte, then the number was reborn, then it tries to set it.
        let lives = byte.load(SeqCst);
        withdraw(fd);
        assert!(
            byte.compare_exchange(lives, lives | 1, SeqCst, SeqCst)
                .is_err()
        );
        assert!(!is_plain(fd));
    }

    #[test]
    fn a_birth_clears_a_set_byte_and_counts_a_life() {
        let fd = 60_002;
        let byte = &ROUTES[fd as usize];
        byte.store(0b1010_0001, SeqCst);
        withdraw(fd);
        assert_eq!(byte.load(SeqCst), 0b1010_0010);
        withdraw(fd);
        assert_eq!(byte.load(SeqCst), 0b1010_0100);
        byte.store(0xff, SeqCst);
        withdraw(fd);
        assert_eq!(byte.load(SeqCst), 0, "the count of lives wraps, clear");
    }

    #[test]
    fn a_number_reborn_green_is_never_left_marked_whatever_a_racing_mark_read() {
        // One thread marks the number whenever its kind (the table, here one flag) says plain,
        // looking slowly; the other makes it plain, waits a little for a mark, then makes it
        // green (the kind first, then the withdrawal, as `fd::renew`), and checks that no mark
        // survives the green birth.
        use std::sync::Arc;
        use std::sync::atomic::AtomicU64;
        let fd = 60_003;
        let plain = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let marks = Arc::new(AtomicU64::new(0));
        let marker = {
            let (plain, done, marks) = (plain.clone(), done.clone(), marks.clone());
            std::thread::spawn(move || {
                let mut delay = 0u32;
                while !done.load(SeqCst) {
                    // A slow look at the table: the birth often lands between it and the mark.
                    delay = (delay + 7) % 64;
                    mark_if(
                        fd,
                        || true,
                        || {
                            let plain = plain.load(SeqCst);
                            for _ in 0..delay {
                                core::hint::spin_loop();
                            }
                            plain
                        },
                    );
                    if is_plain(fd) {
                        marks.fetch_add(1, SeqCst);
                    }
                }
            })
        };
        let mut births = 0;
        while births < 20_000 || marks.load(SeqCst) < 1_000 {
            assert!(
                births < 5_000_000,
                "the marker never marked: the test tested nothing"
            );
            births += 1;
            plain.store(true, SeqCst);
            withdraw(fd);
            for _ in 0..64 {
                if is_plain(fd) {
                    break;
                }
                core::hint::spin_loop();
            }
            plain.store(false, SeqCst);
            withdraw(fd);
            for _ in 0..256 {
                assert!(!is_plain(fd), "marked after a green birth");
            }
        }
        done.store(true, SeqCst);
        marker.join().unwrap();
    }

    #[test]
    fn numbers_out_of_range_are_never_marked() {
        mark(-1, || true);
        mark(PLAIN_FDS as libc::c_int, || true);
        withdraw(-1);
        withdraw(PLAIN_FDS as libc::c_int);
    }
}
