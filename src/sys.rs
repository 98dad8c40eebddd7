//! The few raw system facilities the runtime itself uses: errno, the monotonic clock, and a line
//! buffer for formatting without allocating (the library's lines are written by `log`).

use libc::c_int;

/// The calling OS thread's errno.
#[inline]
pub fn errno() -> c_int {
    // SAFETY: __errno_location always returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Where the calling OS thread's errno lives.
#[inline]
pub fn errno_address() -> usize {
    // SAFETY: __errno_location has no preconditions.
    unsafe { libc::__errno_location() as usize }
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

/// Is `ts` a time the kernel takes: tv_nsec within a second (else EINVAL)? A negative tv_sec
/// is valid for an absolute time (one already passed), not for a duration.
#[inline]
pub fn nsec_valid(ts: &libc::timespec) -> bool {
    (0..1_000_000_000).contains(&ts.tv_nsec)
}

/// A duration the kernel takes (a relative timeout, a sleep), in nanoseconds; None for one it
/// rejects with EINVAL (negative, or tv_nsec out of range).
#[inline]
pub fn duration_ns(ts: &libc::timespec) -> Option<u64> {
    (ts.tv_sec >= 0 && nsec_valid(ts)).then(|| timespec_ns(ts))
}

/// Nanoseconds as a timespec (the inverse of [`timespec_ns`]).
#[inline]
pub fn ns_timespec(ns: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    }
}

/// The system call `number` with `args`, as glibc's `syscall()` makes it (-1 and errno on
/// failure), without going through that function: the library exports `syscall` itself (to
/// keep the fd table true), and the runtime never calls its own hooks (trap 2).
///
/// # Safety
/// As the system call.
#[inline]
pub unsafe fn syscall6(number: libc::c_long, args: [libc::c_long; 6]) -> libc::c_long {
    // SAFETY: per our contract.
    let ret = unsafe { raw_syscall(number, args) };
    if (-4095..0).contains(&ret) {
        set_errno(-ret as c_int);
        return -1;
    }
    ret
}

/// The kernel's own answer: a negative errno on failure.
///
/// # Safety
/// As the system call.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) unsafe fn raw_syscall(number: libc::c_long, args: [libc::c_long; 6]) -> libc::c_long {
    let ret;
    // SAFETY: the Linux x86-64 system-call convention; the kernel clobbers rcx and r11 only,
    // and never touches the user stack.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") number => ret,
            in("rdi") args[0],
            in("rsi") args[1],
            in("rdx") args[2],
            in("r10") args[3],
            in("r8") args[4],
            in("r9") args[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// The kernel's own answer: a negative errno on failure.
///
/// # Safety
/// As the system call.
#[cfg(target_arch = "aarch64")]
#[inline]
pub(crate) unsafe fn raw_syscall(number: libc::c_long, args: [libc::c_long; 6]) -> libc::c_long {
    let ret;
    // SAFETY: the Linux aarch64 system-call convention (number in x8, result in x0).
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") number,
            inlateout("x0") args[0] => ret,
            in("x1") args[1],
            in("x2") args[2],
            in("x3") args[3],
            in("x4") args[4],
            in("x5") args[5],
            options(nostack),
        );
    }
    ret
}

/// `syscall(SYS_x, a, b…)` through [`syscall6`]: each argument is passed as a long, as the C
/// varargs would widen it.
macro_rules! syscall {
    ($number:expr $(, $arg:expr)* $(,)?) => {{
        #[allow(clippy::cast_lossless, clippy::unnecessary_cast)]
        let args = $crate::sys::pad([$($arg as libc::c_long),*]);
        $crate::sys::syscall6($number, args)
    }};
}
pub(crate) use syscall;

/// Up to six arguments, zero-filled to six.
#[inline]
pub fn pad<const N: usize>(given: [libc::c_long; N]) -> [libc::c_long; 6] {
    let mut args = [0; 6];
    args[..N].copy_from_slice(&given);
    args
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

unsafe extern "C" {
    /// The process environment, which `execv`, `execvp`, `posix_spawn`, `system` and `popen`
    /// pass on (`execve` is given one).
    pub(crate) static mut environ: *mut *mut libc::c_char;
}

/// A hint that the cache line at `addr` will be read soon (no effect elsewhere than x86-64). A
/// prefetch never faults: any address is allowed.
#[inline(always)]
pub fn prefetch(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing architecturally and never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(addr as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// This OS thread's CPU mask, 1 024 CPUs' worth (`green::CpuMask`), from the raw system
/// call: the library's own `sched_getaffinity` answers for a green thread. None when the
/// kernel refuses (more CPUs than the mask holds).
pub fn os_cpu_mask() -> Option<[u64; 16]> {
    let mut mask = [0u64; 16];
    // SAFETY: a writable local of its size in bytes; tid 0 is this OS thread.
    let got = unsafe {
        raw_syscall(
            libc::SYS_sched_getaffinity,
            pad([
                0,
                core::mem::size_of_val(&mask) as libc::c_long,
                mask.as_mut_ptr() as libc::c_long,
            ]),
        )
    };
    (got > 0).then_some(mask)
}

/// Opens `path` for the library's own use (a `/proc` file) with the raw `openat`: never the
/// program's `open` hook (the runtime never calls its own hooks), no allocation, no lock, so
/// safe in a hub's wait and on the monitor's hidden thread. The descriptor (the caller closes
/// it), or None with errno set.
pub fn open_raw(path: &core::ffi::CStr, flags: c_int) -> Option<c_int> {
    // SAFETY: a NUL-terminated path; flags only (no O_CREAT: no mode).
    let fd = unsafe { syscall!(libc::SYS_openat, libc::AT_FDCWD, path.as_ptr(), flags) };
    (fd >= 0).then_some(fd as c_int)
}

/// A descriptor of the library's own on a file (NUL-terminated path), opened and read with raw
/// system calls (`open_raw`'s rules: no hook, no allocation, no lock) and closed on drop: the
/// monitor's symbol tables, the executable's `.comment`.
pub struct RawFile(i64);

impl RawFile {
    pub fn open(path: &[u8]) -> Option<RawFile> {
        if path.last() != Some(&0) {
            return None;
        }
        // SAFETY: a NUL-terminated path (checked); raw: never our own hook.
        let fd = unsafe {
            syscall!(
                libc::SYS_openat,
                libc::AT_FDCWD,
                path.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC
            )
        };
        (fd >= 0).then_some(RawFile(fd))
    }

    /// Fills `buf` from `offset`; false when the file is shorter.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> bool {
        // SAFETY: a valid buffer of its length.
        unsafe {
            syscall!(
                libc::SYS_pread64,
                self.0,
                buf.as_mut_ptr(),
                buf.len(),
                offset
            ) == buf.len() as i64
        }
    }
}

impl Drop for RawFile {
    fn drop(&mut self) {
        // SAFETY: ours, opened in `open`.
        unsafe { syscall!(libc::SYS_close, self.0) };
    }
}

/// A socket's `int` option at SOL_SOCKET (`SO_ERROR`, `SO_PROTOCOL`…); None when getsockopt
/// fails (not a socket).
pub fn socket_int(fd: c_int, option: c_int) -> Option<c_int> {
    let mut value: c_int = 0;
    let mut len = size_of::<c_int>() as libc::socklen_t;
    // SAFETY: value and len are valid for getsockopt to write.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&raw mut value).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(value)
}

/// A socket's timeout (`option`: SO_RCVTIMEO or SO_SNDTIMEO) in ns, 0 for none or for a
/// descriptor that is not a socket.
pub fn socket_timeout(fd: c_int, option: c_int) -> u64 {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: tv and len are valid for getsockopt to write; a non-socket just fails.
    let rc =
        unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, option, (&raw mut tv).cast(), &mut len) };
    if rc != 0 {
        return 0;
    }
    (tv.tv_sec.max(0) as u64) * 1_000_000_000 + (tv.tv_usec.max(0) as u64) * 1_000
}
