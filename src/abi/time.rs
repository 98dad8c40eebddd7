//! Shims of the `time` subsystem.

use crate::time;
use libc::{c_int, c_uint, clockid_t, timespec, useconds_t};

#[macro_export]
#[doc(hidden)]
macro_rules! time_hooks {
    ($($chain:tt)*) => { $crate::abi::next_hooks! { $($chain)* {
        Time fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int => time::nanosleep(req, rem).or_plain(|| time::plain_nanosleep(req, rem));
        Time fn clock_nanosleep(clock: clockid_t, flags: c_int, req: *const timespec, rem: *mut timespec) -> c_int
            => time::clock_nanosleep(clock, flags, req, rem).or_plain(|| time::plain_clock_nanosleep(clock, flags, req, rem));
        Time fn usleep(usec: useconds_t) -> c_int => time::usleep(usec).or_plain(|| time::plain_usleep(usec));
        Time fn sleep(seconds: c_uint) -> c_uint => time::sleep(seconds).or_plain(|| time::plain_sleep(seconds));
        Time fn thrd_sleep(duration: *const timespec, remaining: *mut timespec) -> c_int => time::thrd_sleep(duration, remaining)
            .or_plain(|| time::plain_thrd_sleep(duration, remaining));
    } } };
}
crate::time_hooks!([crate::abi::shims] []);
