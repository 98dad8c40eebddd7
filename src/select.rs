//! The `select` subsystem (eventlet's `select=`): a green thread in `poll`, `select` or
//! `epoll_wait` parks until one of its descriptors may be ready, its timeout passes, or a
//! signal interrupts it, while the other green threads run.
//!
//! Every check is the real call with a zero timeout, so `revents`, the rewritten fd sets and
//! the epoll instance's own semantics are the kernel's exactly. Between checks the thread
//! parks on every descriptor it waits for (any kind epoll accepts: sockets, pipes, eventfd,
//! timerfd, signalfd, inotify, terminals, the program's own epoll instance).
//!
//! The signal masks of `ppoll`, `pselect` and `epoll_pwait` are the waiting green thread's own
//! for the wait (see `signal::mask`): a signal they let in interrupts that very call.

use crate::fd::wait::{NotReady, wait_any};
use crate::hub::Hub;
use crate::outcome::Outcome::{self, Bypass, Done, Errno};
use crate::patch::{self, Subsystem};
use crate::real;
use crate::signal::plain;
use crate::sys::{duration_ns, errno, now_ns};
use libc::{EINTR, c_int, epoll_event, fd_set, nfds_t, pollfd, sigset_t, timespec, timeval};

/// How long a call may wait: None forever, Some(0) not at all.
type Timeout = Option<u64>;

/// A valid timespec as a timeout; Err for one the kernel rejects (left to the real call).
///
/// # Safety
/// `ts` is null or readable.
unsafe fn timespec_timeout(ts: *const timespec) -> Result<Timeout, ()> {
    // SAFETY: readable when non-null (caller).
    match unsafe { ts.as_ref() } {
        None => Ok(None),
        Some(ts) => duration_ns(ts).map(Some).ok_or(()),
    }
}

fn millis_timeout(ms: c_int) -> Timeout {
    (ms >= 0).then(|| ms as u64 * 1_000_000)
}

/// Repeats `check` (the real call, not waiting) until it reports something, parking on `fds`
/// in between, with `sigmask` in force while it waits.
fn wait_until_ready(
    fds: impl Iterator<Item = c_int> + Clone,
    timeout: Timeout,
    sigmask: *const sigset_t,
    mut check: impl FnMut() -> c_int,
) -> Outcome<c_int> {
    if !patch::active(Subsystem::Select) || timeout == Some(0) {
        return Bypass;
    }
    let Some(hub) = Hub::current().filter(|hub| hub.parkable()) else {
        return Bypass;
    };
    let deadline = timeout.map(|t| now_ns().saturating_add(t));
    // SAFETY: readable when non-null (our caller's contract).
    let sigmask = unsafe { sigmask.as_ref() };
    crate::signal::interruptibly_with_mask(hub, sigmask, |interrupt| {
        let mut waited = false;
        loop {
            if interrupt.happened.get() {
                break Errno(EINTR);
            }
            let seen = crate::fd::wait::wakes_of(fds.clone());
            let n = check();
            if n < 0 && errno() == EINTR && !interrupt.happened.get() {
                // The check itself (the real call, not waiting) was interrupted by a handler
                // that ran meanwhile: the kernel reports EINTR even at timeout 0 when a signal
                // is pending (`do_poll` looks before it honours the timeout). The library's own
                // (a preemption's) must not show; a program's is counted by `arrived` and
                // interrupts a waiting call as any other does.
                continue;
            }
            if n != 0 {
                break if n > 0 { Done(n) } else { Errno(errno()) };
            }
            if deadline.is_some_and(|d| now_ns() >= d) {
                break Done(0);
            }
            if interrupt.happened.get() {
                break Errno(EINTR);
            }
            match wait_any(hub, fds.clone(), deadline, Some(seen)) {
                Ok(_) => waited = true,
                Err(NotReady::Elsewhere) if !waited => break Bypass,
                Err(_) => break Done(check()),
            }
        }
    })
}

/// The descriptors of a pollfd array (negative ones are ignored, as by the kernel).
///
/// # Safety
/// `fds` holds `n` readable pollfds.
unsafe fn poll_fds(fds: *const pollfd, n: nfds_t) -> impl Iterator<Item = c_int> + Clone {
    // SAFETY: i < n (caller).
    (0..n as usize)
        .map(move |i| unsafe { (*fds.add(i)).fd })
        .filter(|&fd| fd >= 0)
}

/// `poll`, `ppoll` (and their fortified forms once the check passed).
///
/// # Safety
/// As `ppoll(2)`.
pub unsafe fn poll(
    fds: *mut pollfd,
    n: nfds_t,
    timeout: Timeout,
    sigmask: *const sigset_t,
) -> Outcome<c_int> {
    if n > crate::fd::MAX_FDS as nfds_t {
        return Bypass;
    }
    let real = real::get();
    // SAFETY: the caller's array.
    let check = || unsafe { (real.poll)(fds, n, 0) };
    // SAFETY: as above.
    wait_until_ready(unsafe { poll_fds(fds, n) }, timeout, sigmask, check)
}

/// `poll` with a millisecond timeout.
///
/// # Safety
/// As `poll(2)`.
pub unsafe fn poll_ms(fds: *mut pollfd, n: nfds_t, timeout_ms: c_int) -> Outcome<c_int> {
    // SAFETY: per our contract.
    unsafe { poll(fds, n, millis_timeout(timeout_ms), core::ptr::null()) }
}

/// `ppoll`.
///
/// # Safety
/// As `ppoll(2)`.
pub unsafe fn ppoll(
    fds: *mut pollfd,
    n: nfds_t,
    ts: *const timespec,
    sigmask: *const sigset_t,
) -> Outcome<c_int> {
    // SAFETY: per our contract.
    match unsafe { timespec_timeout(ts) } {
        // SAFETY: per our contract.
        Ok(timeout) => unsafe { poll(fds, n, timeout, sigmask) },
        Err(()) => Bypass,
    }
}

/// `select` and `pselect`: `select` also writes the time left back into `timeout`, as Linux does.
///
/// # Safety
/// As `pselect(2)`; the sets are null or readable and writable.
pub unsafe fn select(
    nfds: c_int,
    read: *mut fd_set,
    write: *mut fd_set,
    except: *mut fd_set,
    timeout: Timeout,
    sigmask: *const sigset_t,
) -> Outcome<c_int> {
    // Larger than FD_SETSIZE is fine when the program allocated larger sets (the kernel takes
    // any nfds up to the descriptor limit): sets are nfds bits, in 64-bit words.
    if !(0..=crate::fd::MAX_FDS as c_int).contains(&nfds) {
        return Bypass;
    }
    let real = real::get();
    let words = (nfds as usize).div_ceil(64);
    let sets = [read, write, except].map(|set| set.cast::<u64>());
    let in_any = move |fd: c_int| {
        let (word, bit) = (fd as usize / 64, fd as usize % 64);
        sets.iter().any(|&set| {
            // SAFETY: each non-null set holds `words` words (nfds bits), read while this call
            // owns it.
            !set.is_null() && unsafe { *set.add(word) } >> bit & 1 == 1
        })
    };
    let fds = (0..nfds).filter(move |&fd| in_any(fd));
    // Checks run on copies: the caller's sets stay the question until there is an answer.
    let mut copies: [Vec<u64>; 3] = Default::default();
    let check = || {
        let mut ptrs = [core::ptr::null_mut::<fd_set>(); 3];
        for (i, &set) in sets.iter().enumerate() {
            if !set.is_null() {
                // SAFETY: readable for `words` words (caller).
                copies[i] = unsafe { core::slice::from_raw_parts(set, words) }.to_vec();
                ptrs[i] = copies[i].as_mut_ptr().cast();
            }
        }
        let mut zero = timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        // SAFETY: valid sets of nfds bits and a valid timeout.
        let n = unsafe { (real.select)(nfds, ptrs[0], ptrs[1], ptrs[2], &mut zero) };
        if n > 0 {
            for (i, &set) in sets.iter().enumerate() {
                if !set.is_null() {
                    // SAFETY: writable for `words` words (caller).
                    unsafe { core::ptr::copy_nonoverlapping(copies[i].as_ptr(), set, words) };
                }
            }
        }
        n
    };
    let outcome = wait_until_ready(fds, timeout, sigmask, check);
    if outcome == Done(0) {
        // Timed out: the kernel clears the sets; let it.
        let mut zero = timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        // SAFETY: the caller's sets.
        return Done(unsafe { (real.select)(nfds, read, write, except, &mut zero) }.max(0));
    }
    outcome
}

/// `select` with its timeval, updated with the time left.
///
/// # Safety
/// As `select(2)`.
pub unsafe fn select_tv(
    nfds: c_int,
    read: *mut fd_set,
    write: *mut fd_set,
    except: *mut fd_set,
    tv: *mut timeval,
) -> Outcome<c_int> {
    // SAFETY: readable when non-null (caller).
    let timeout = match unsafe { tv.as_ref() } {
        None => None,
        // Linux takes any non-negative tv_usec (it normalises 1 050 000 µs to 1.05 s).
        Some(tv) if tv.tv_sec < 0 || tv.tv_usec < 0 => return Bypass,
        Some(tv) => Some(tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1_000),
    };
    let start = now_ns();
    // SAFETY: per our contract.
    let outcome = unsafe { select(nfds, read, write, except, timeout, core::ptr::null()) };
    // SAFETY: tv is NULL or the caller's timeval (per our contract).
    let tv = unsafe { tv.as_mut() };
    if let (Some(timeout), false, Some(tv)) = (timeout, outcome == Bypass, tv) {
        let left = timeout.saturating_sub(now_ns() - start);
        tv.tv_sec = (left / 1_000_000_000) as libc::time_t;
        tv.tv_usec = ((left % 1_000_000_000) / 1_000) as libc::suseconds_t;
    }
    outcome
}

/// `pselect`.
///
/// # Safety
/// As `pselect(2)`.
pub unsafe fn pselect(
    nfds: c_int,
    read: *mut fd_set,
    write: *mut fd_set,
    except: *mut fd_set,
    ts: *const timespec,
    sigmask: *const sigset_t,
) -> Outcome<c_int> {
    // SAFETY: per our contract.
    match unsafe { timespec_timeout(ts) } {
        // SAFETY: per our contract.
        Ok(timeout) => unsafe { select(nfds, read, write, except, timeout, sigmask) },
        Err(()) => Bypass,
    }
}

/// `epoll_wait`, `epoll_pwait`, `epoll_pwait2`: the program's epoll instance is itself a
/// descriptor the hub can watch.
///
/// # Safety
/// As `epoll_pwait2(2)`.
pub unsafe fn epoll_wait(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: Timeout,
    sigmask: *const sigset_t,
) -> Outcome<c_int> {
    if max <= 0 {
        return Bypass;
    }
    let real = real::get();
    // SAFETY: the caller's buffer of `max` events.
    let check = || unsafe { (real.epoll_wait)(epfd, events, max, 0) };
    wait_until_ready(core::iter::once(epfd), timeout, sigmask, check)
}

/// `epoll_wait`/`epoll_pwait` with a millisecond timeout.
///
/// # Safety
/// As `epoll_pwait(2)`.
pub unsafe fn epoll_wait_ms(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    ms: c_int,
    sigmask: *const sigset_t,
) -> Outcome<c_int> {
    // SAFETY: per our contract.
    unsafe { epoll_wait(epfd, events, max, millis_timeout(ms), sigmask) }
}

/// `epoll_pwait2`.
///
/// # Safety
/// As `epoll_pwait2(2)`.
pub unsafe fn epoll_pwait2(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    ts: *const timespec,
    sigmask: *const sigset_t,
) -> Outcome<c_int> {
    // SAFETY: per our contract.
    match unsafe { timespec_timeout(ts) } {
        // SAFETY: per our contract.
        Ok(timeout) => unsafe { epoll_wait(epfd, events, max, timeout, sigmask) },
        Err(()) => Bypass,
    }
}

// The real calls, for a call the op left to libc (`Outcome::Bypass`): made again, with the
// time left, while only the library's own signal interrupted them (see `signal::plain`).

/// `poll`, plain.
///
/// # Safety
/// As `poll(2)`.
pub unsafe fn plain_poll(fds: *mut pollfd, n: nfds_t, timeout_ms: c_int) -> c_int {
    let deadline = plain::deadline_ms(timeout_ms);
    plain::restarting(
        // SAFETY: the caller's arguments, to the real function.
        || unsafe { (real::get().poll)(fds, n, plain::ms_left(timeout_ms, deadline)) },
        plain::failed_eintr,
    )
}

/// `ppoll`, plain (glibc's leaves the caller's timespec as it was).
///
/// # Safety
/// As `ppoll(2)`.
pub unsafe fn plain_ppoll(
    fds: *mut pollfd,
    n: nfds_t,
    ts: *const timespec,
    sigmask: *const sigset_t,
) -> c_int {
    // SAFETY: null or readable (caller).
    let mut left = unsafe { plain::TimespecLeft::new(ts) };
    plain::restarting(
        // SAFETY: the caller's arguments, to the real function.
        || unsafe { (real::get().ppoll)(fds, n, left.for_try(), sigmask) },
        plain::failed_eintr,
    )
}

/// `select`, plain: Linux writes the time left into `tv` even when interrupted, and leaves
/// the sets as they were, so the same call again goes on where it stopped.
///
/// # Safety
/// As `select(2)`.
pub unsafe fn plain_select(
    nfds: c_int,
    read: *mut fd_set,
    write: *mut fd_set,
    except: *mut fd_set,
    tv: *mut timeval,
) -> c_int {
    plain::restarting(
        // SAFETY: the caller's arguments, to the real function.
        || unsafe { (real::get().select)(nfds, read, write, except, tv) },
        plain::failed_eintr,
    )
}

/// `pselect`, plain (glibc's leaves the caller's timespec as it was).
///
/// # Safety
/// As `pselect(2)`.
pub unsafe fn plain_pselect(
    nfds: c_int,
    read: *mut fd_set,
    write: *mut fd_set,
    except: *mut fd_set,
    ts: *const timespec,
    sigmask: *const sigset_t,
) -> c_int {
    // SAFETY: null or readable (caller).
    let mut left = unsafe { plain::TimespecLeft::new(ts) };
    plain::restarting(
        // SAFETY: the caller's arguments, to the real function.
        || unsafe { (real::get().pselect)(nfds, read, write, except, left.for_try(), sigmask) },
        plain::failed_eintr,
    )
}

/// `epoll_wait` and `epoll_pwait` (`sigmask` null for the former), plain.
///
/// # Safety
/// As `epoll_pwait(2)`.
pub unsafe fn plain_epoll_wait(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout_ms: c_int,
    sigmask: *const sigset_t,
) -> c_int {
    let deadline = plain::deadline_ms(timeout_ms);
    let real = real::get();
    plain::restarting(
        || {
            let ms = plain::ms_left(timeout_ms, deadline);
            // SAFETY: the caller's arguments, to the real function.
            unsafe {
                if sigmask.is_null() {
                    (real.epoll_wait)(epfd, events, max, ms)
                } else {
                    (real.epoll_pwait)(epfd, events, max, ms, sigmask)
                }
            }
        },
        plain::failed_eintr,
    )
}

/// `epoll_pwait2`, plain.
///
/// # Safety
/// As `epoll_pwait2(2)`.
pub unsafe fn plain_epoll_pwait2(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    ts: *const timespec,
    sigmask: *const sigset_t,
) -> c_int {
    // SAFETY: null or readable (caller).
    let mut left = unsafe { plain::TimespecLeft::new(ts) };
    plain::restarting(
        // SAFETY: the caller's arguments, to the real function.
        || unsafe { (real::get().epoll_pwait2)(epfd, events, max, left.for_try(), sigmask) },
        plain::failed_eintr,
    )
}
