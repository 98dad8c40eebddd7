//! The `time` subsystem (eventlet's `time=`): every sleep parks only the calling green thread
//! on a hub timer. Arguments the kernel would reject, and sleeps with nothing else to run on
//! this OS thread, go to the real function: same results, same errno, no extra machinery.

use crate::hub::Hub;
use crate::outcome::Outcome::{self, Bypass, Done, Errno};
use crate::patch::{self, Subsystem};
use crate::signal::Interrupt;
use crate::sys::{clock_ns, duration_ns, now_ns, ns_timespec};
use crate::waiting::WaitOn;
use libc::{c_int, clockid_t, timespec};

/// The hub that should run a sleep green, or None when the real call is exactly right.
fn green_hub() -> Option<&'static Hub> {
    if !patch::active(Subsystem::Time) {
        return None;
    }
    // Nothing else could run meanwhile: the real blocking call is the same, and cheaper.
    Hub::current().filter(|hub| hub.parkable())
}

/// A duration the kernel accepts, in ns; None for what it rejects (left to the real call).
///
/// # Safety
/// `ts` is null or readable.
unsafe fn duration(ts: *const timespec) -> Option<u64> {
    // SAFETY: readable when non-null (caller).
    let ts = unsafe { ts.as_ref() }?;
    duration_ns(ts)
}

/// Parks the caller for `ns` nanoseconds (CLOCK_MONOTONIC); a sleep of nothing is a yield. A
/// signal whose handler runs meanwhile ends the sleep early, as it ends a native one (sleeps are
/// never restarted): Err with the nanoseconds left. One clock read: a deadline `ns` > 0 after
/// it is in the future, so nothing is gained by reading the clock again before parking.
fn sleep_for(hub: &Hub, ns: u64) -> Result<(), u64> {
    if ns == 0 {
        hub.yield_now();
        return Ok(());
    }
    let deadline = now_ns().saturating_add(ns);
    let me = hub.current_green();
    let interrupt = Interrupt::new();
    crate::signal::interruptibly(hub, &interrupt, || {
        let token = me.arm();
        hub.park(me, token, WaitOn::Sleep.word(), Some(deadline));
    });
    if interrupt.happened.get() {
        Err(deadline.saturating_sub(now_ns()))
    } else {
        Ok(())
    }
}

/// Writes the time left of an interrupted sleep where the caller asked for it.
///
/// # Safety
/// `rem` is null or writable.
unsafe fn report_left(rem: *mut timespec, left: u64) {
    // SAFETY: writable when non-null (caller).
    if let Some(rem) = unsafe { rem.as_mut() } {
        *rem = ns_timespec(left);
    }
}

/// A short green pause for the runtime's own retry loops (whatever `time` is patched to):
/// parks on the hub when there is one, else sleeps the OS thread.
pub fn nap(ns: u64) {
    match Hub::current() {
        Some(hub) => {
            let _ = sleep_for(hub, ns);
        }
        None => {
            let ts = ns_timespec(ns);
            // SAFETY: a valid timespec; the real nanosleep, not our hook.
            unsafe { (crate::real::get().nanosleep)(&ts, core::ptr::null_mut()) };
        }
    }
}

/// `nanosleep`.
///
/// # Safety
/// As `nanosleep(2)`.
pub unsafe fn nanosleep(req: *const timespec, rem: *mut timespec) -> Outcome<c_int> {
    let Some(hub) = green_hub() else {
        return Bypass;
    };
    // SAFETY: per our caller.
    let Some(ns) = (unsafe { duration(req) }) else {
        return Bypass;
    };
    match sleep_for(hub, ns) {
        Ok(()) => Done(0),
        Err(left) => {
            // SAFETY: per our caller.
            unsafe { report_left(rem, left) };
            Errno(libc::EINTR)
        }
    }
}

/// `clock_nanosleep` (returns an error number, never sets errno).
///
/// # Safety
/// As `clock_nanosleep(2)`.
pub unsafe fn clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
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
        return match sleep_for(hub, ns) {
            Ok(()) => Done(0),
            Err(left) => {
                // SAFETY: per our caller.
                unsafe { report_left(rem, left) };
                Done(libc::EINTR)
            }
        };
    }
    // An absolute time on `clock`, mapped onto the monotonic clock now. A later jump of the
    // realtime clock is not followed (documented).
    let Some(clock_now) = clock_ns(clock) else {
        return Bypass;
    };
    if ns <= clock_now {
        return Done(0);
    }
    // An absolute sleep reports no time left.
    Done(if sleep_for(hub, ns - clock_now).is_ok() {
        0
    } else {
        libc::EINTR
    })
}

/// `usleep`.
pub fn usleep(usec: libc::useconds_t) -> Outcome<c_int> {
    let Some(hub) = green_hub() else {
        return Bypass;
    };
    match sleep_for(hub, u64::from(usec) * 1_000) {
        Ok(()) => Done(0),
        Err(_) => Errno(libc::EINTR),
    }
}

/// `sleep`: the whole seconds left when a signal cut it short (glibc returns `tv_sec` of the
/// time left).
pub fn sleep(seconds: libc::c_uint) -> Outcome<libc::c_uint> {
    let Some(hub) = green_hub() else {
        return Bypass;
    };
    match sleep_for(hub, u64::from(seconds) * 1_000_000_000) {
        Ok(()) => Done(0),
        Err(left) => Done((left / 1_000_000_000) as libc::c_uint),
    }
}

/// `thrd_sleep`: 0 on success; what the kernel rejects goes to glibc (-2).
///
/// # Safety
/// As `thrd_sleep(3)`.
pub unsafe fn thrd_sleep(duration: *const timespec, remaining: *mut timespec) -> Outcome<c_int> {
    // SAFETY: per our caller; an interrupted C11 sleep returns -1 (the shim's failure value).
    unsafe { nanosleep(duration, remaining) }
}

// The real calls, for a sleep the op left to libc (`Outcome::Bypass`): made again for the time
// left while only the library's own signal interrupted them (see `signal::plain`).

/// A relative sleep of `req` by `sleep` (the real function, writing the time left where its
/// second argument points when `interrupted` says of its result that a handler cut it short),
/// made again for the time left. That is counted from a deadline taken before the first try:
/// the kernel's time left includes the timer's slack (up to 50 us more than the time asked,
/// when interrupted at once), so sleeping it again would grow without end under frequent
/// signals. The caller's `rem`, when given, gets what the kernel wrote last, as natively.
///
/// # Safety
/// `req` and `rem` as `nanosleep(2)`'s.
unsafe fn plain_relative(
    req: *const timespec,
    rem: *mut timespec,
    sleep: impl Fn(*const timespec, *mut timespec) -> c_int,
    interrupted: impl Fn(c_int) -> bool,
) -> c_int {
    // SAFETY: null or readable (caller).
    let mut left = unsafe { crate::signal::plain::TimespecLeft::new(req) };
    crate::signal::plain::restarting(|| sleep(left.for_try(), rem), interrupted)
}

/// `nanosleep`, plain.
///
/// # Safety
/// As `nanosleep(2)`.
pub unsafe fn plain_nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    let real = crate::real::get();
    // SAFETY: per our contract; the real function with the caller's or our own timespecs.
    unsafe {
        plain_relative(
            req,
            rem,
            |req, rem| (real.nanosleep)(req, rem),
            crate::signal::plain::failed_eintr,
        )
    }
}

/// `clock_nanosleep`, plain: an absolute sleep is asked again as it was.
///
/// # Safety
/// As `clock_nanosleep(2)`.
pub unsafe fn plain_clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    let real = crate::real::get();
    let interrupted = |rc| rc == libc::EINTR;
    // SAFETY: the caller's arguments, to the real function.
    let sleep = |req, rem| unsafe { (real.clock_nanosleep)(clock, flags, req, rem) };
    if flags & libc::TIMER_ABSTIME != 0 {
        return crate::signal::plain::restarting(|| sleep(req, rem), interrupted);
    }
    // SAFETY: null or readable (caller).
    let mut left = unsafe { crate::signal::plain::TimespecLeft::on_clock(req, clock) };
    crate::signal::plain::restarting(|| sleep(left.for_try(), rem), interrupted)
}

/// `thrd_sleep`, plain: -1 when interrupted.
///
/// # Safety
/// As `thrd_sleep(3)`.
pub unsafe fn plain_thrd_sleep(duration: *const timespec, remaining: *mut timespec) -> c_int {
    let real = crate::real::get();
    // SAFETY: per our contract; the real function with the caller's or our own timespecs.
    unsafe {
        plain_relative(
            duration,
            remaining,
            |req, rem| (real.thrd_sleep)(req, rem),
            |rc| rc == -1,
        )
    }
}

/// `usleep`, plain: glibc's is a `nanosleep` of that long.
pub fn plain_usleep(usec: libc::useconds_t) -> c_int {
    let ts = ns_timespec(u64::from(usec) * 1_000);
    // SAFETY: a valid timespec, no time left asked for.
    unsafe { plain_nanosleep(&ts, core::ptr::null_mut()) }
}

/// `sleep`, plain: glibc's is a `nanosleep` of that long, and returns the whole seconds left.
pub fn plain_sleep(seconds: libc::c_uint) -> libc::c_uint {
    let mut ts = ns_timespec(u64::from(seconds) * 1_000_000_000);
    // SAFETY: valid timespecs (the time left written over the request, as glibc does).
    if unsafe { plain_nanosleep(&ts, &mut ts) } == 0 {
        0
    } else {
        ts.tv_sec as libc::c_uint
    }
}
