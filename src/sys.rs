//! The few raw system facilities the runtime itself uses: errno, the monotonic clock, and a line
//! buffer for formatting without allocating (the library's lines are written by `log`).

use libc::c_int;

/// The calling OS thread's errno.
#[inline]
pub fn errno() -> c_int {
    // SAFETY: __errno_location always returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Sets the calling OS thread's errno.
#[inline]
pub fn set_errno(value: c_int) {
    // SAFETY: __errno_location always returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() = value }
}

/// Nanoseconds on `clock` (vDSO, never hooked).
#[inline]
pub fn clock_ns(clock: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    (rc == 0).then(|| timespec_ns(&ts))
}

/// Nanoseconds on CLOCK_MONOTONIC, the clock of every hub timer.
#[inline]
pub fn now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC).unwrap_or(0)
}

/// A valid, non-negative timespec as nanoseconds, saturating.
#[inline]
pub fn timespec_ns(ts: &libc::timespec) -> u64 {
    (ts.tv_sec.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec.max(0) as u64)
}

/// Nanoseconds as a timespec (the inverse of [`timespec_ns`]).
#[inline]
pub fn ns_timespec(ns: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    }
}

/// A fixed-size line buffer for formatting without allocating (logging may happen anywhere).
pub struct LineBuf {
    buf: [u8; 512],
    len: usize,
}

impl LineBuf {
    pub const fn new() -> Self {
        LineBuf {
            buf: [0; 512],
            len: 0,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Default for LineBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Write for LineBuf {
    /// Truncates silently: a long log line is cut, never an error.
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}
