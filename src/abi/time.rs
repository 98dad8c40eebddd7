//! Shims of the `time` subsystem.

use super::shim;
use crate::time;
use libc::{c_int, c_uint, clockid_t, timespec, useconds_t};

shim! {
    fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int => time::nanosleep(req, rem);
    fn clock_nanosleep(clock: clockid_t, flags: c_int, req: *const timespec, rem: *mut timespec) -> c_int
        => time::clock_nanosleep(clock, flags, req, rem);
    fn usleep(usec: useconds_t) -> c_int => time::usleep(usec);
    fn sleep(seconds: c_uint) -> c_uint => time::sleep(seconds);
    fn thrd_sleep(duration: *const timespec, remaining: *mut timespec) -> c_int => time::thrd_sleep(duration, remaining);
}
