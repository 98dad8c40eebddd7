//! The `time` subsystem (eventlet's `time=`): every sleep parks only the calling green thread
//! on a hub timer. Arguments the kernel would reject, and sleeps with nothing else to run on
//! this OS thread, go to the real function: same results, same errno, no extra machinery.

use crate::hub::Hub;
use crate::outcome::Outcome::{self, Bypass, Done};
use crate::patch::{self, Subsystem};
use crate::stats::ParkReason;
use crate::sys::{clock_ns, now_ns, timespec_ns};
use libc::{c_int, clockid_t, timespec};

/// The hub that should run a sleep green, or None when the real call is exactly right.
fn green_hub() -> Option<&'static Hub> {
    if !patch::active(Subsystem::Time) {
        return None;
    }
    // Nothing else could run meanwhile: the real blocking call is the same, and cheaper.
    Hub::current().filter(|hub| hub.in_green() || hub.alive() > 0)
}

/// A duration the kernel accepts, in ns; None for what it rejects (left to the real call).
///
/// # Safety
/// `ts` is null or readable.
unsafe fn duration(ts: *const timespec) -> Option<u64> {
    // SAFETY: readable when non-null (caller).
    let ts = unsafe { ts.as_ref() }?;
    (ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec)).then(|| timespec_ns(ts))
}

/// Parks the caller until `deadline` (CLOCK_MONOTONIC ns); a sleep of nothing is a yield.
fn sleep_until(hub: &Hub, deadline: u64) {
    if deadline <= now_ns() {
        hub.yield_now();
        return;
    }
    let me = hub.current_green();
    let token = me.arm();
    hub.park(me, token, ParkReason::Sleep, Some(deadline));
}

fn sleep_for(hub: &Hub, ns: u64) {
    sleep_until(hub, now_ns().saturating_add(ns));
}

/// A short green pause for the runtime's own retry loops (whatever `time` is patched to):
/// parks on the hub when there is one, else sleeps the OS thread.
pub fn nap(ns: u64) {
    match Hub::current() {
        Some(hub) => sleep_for(hub, ns),
        None => {
            let ts = timespec {
                tv_sec: (ns / 1_000_000_000) as libc::time_t,
                tv_nsec: (ns % 1_000_000_000) as libc::c_long,
            };
            // SAFETY: a valid timespec; the real nanosleep, not our hook.
            unsafe { (crate::real::get().nanosleep)(&ts, core::ptr::null_mut()) };
        }
    }
}

/// `nanosleep`.
///
/// # Safety
/// As `nanosleep(2)`.
pub unsafe fn nanosleep(req: *const timespec) -> Outcome<c_int> {
    let Some(hub) = green_hub() else {
        return Bypass;
    };
    // SAFETY: per our caller.
    let Some(ns) = (unsafe { duration(req) }) else {
        return Bypass;
    };
    sleep_for(hub, ns);
    Done(0)
}

/// `clock_nanosleep` (returns an error number, never sets errno).
///
/// # Safety
/// As `clock_nanosleep(2)`.
pub unsafe fn clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    req: *const timespec,
) -> Outcome<c_int> {
    let Some(hub) = green_hub() else {
        return Bypass;
    };
    if !matches!(
        clock,
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME
    ) || flags & !libc::TIMER_ABSTIME != 0
    {
        return Bypass;
    }
    // SAFETY: per our caller.
    let Some(ns) = (unsafe { duration(req) }) else {
        return Bypass;
    };
    if flags & libc::TIMER_ABSTIME == 0 {
        sleep_for(hub, ns);
        return Done(0);
    }
    // An absolute time on `clock`, mapped onto the monotonic clock now. A later jump of the
    // realtime clock is not followed (documented).
    let Some(clock_now) = clock_ns(clock) else {
        return Bypass;
    };
    if ns <= clock_now {
        return Done(0);
    }
    sleep_for(hub, ns - clock_now);
    Done(0)
}

/// `usleep`.
pub fn usleep(usec: libc::useconds_t) -> Outcome<c_int> {
    let Some(hub) = green_hub() else {
        return Bypass;
    };
    sleep_for(hub, u64::from(usec) * 1_000);
    Done(0)
}

/// `sleep`: 0 seconds left, as nothing interrupts a green sleep early.
pub fn sleep(seconds: libc::c_uint) -> Outcome<libc::c_uint> {
    let Some(hub) = green_hub() else {
        return Bypass;
    };
    sleep_for(hub, u64::from(seconds) * 1_000_000_000);
    Done(0)
}

/// `thrd_sleep`: 0 on success; what the kernel rejects goes to glibc (-2).
///
/// # Safety
/// As `thrd_sleep(3)`.
pub unsafe fn thrd_sleep(duration: *const timespec) -> Outcome<c_int> {
    // SAFETY: per our caller.
    unsafe { nanosleep(duration) }
}
