//! `greenworld:`-prefixed diagnostics, written with raw syscalls and formatted into a stack
//! buffer: safe from any hook, any green thread, before or after `main`.
//!
//! Lines never go to whatever descriptor 2 is when they are written: a program may have closed
//! stderr and opened a data file that got number 2. Stderr means the stderr the process had at
//! load: descriptor 2 while it is still that file (same device and inode), else a private copy
//! of it, taken when the process makes its first green thread (or at load with
//! `GREENWORLD_STATS`), so that `xz` or GNU `sort`, which close stderr before they exit, still
//! get their stats line. A process that makes no green thread holds no copy: programs that list
//! their descriptors (`/proc/self/fd`, `fstat` of every number) see none of the library's. The
//! files `GREENWORLD_LOG=LEVEL:PATH` and `GREENWORLD_STATS=PATH` name are [`Sink`]s too. Each
//! sink is one of the library's own descriptors ([`own_fd`](crate::own_fd)), checked before
//! every write to be still the file it was.
//!
//! Base layer: the runtime hands in the level and the files at load ([`configure`],
//! [`open_sinks`]); nothing here reads the configuration.

use crate::own_fd::{self as own, OwnFd};
use crate::sys::LineBuf;
use core::ffi::CStr;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use libc::c_int;
use once_cell::sync::OnceCell;

/// How much the library says (`GREENWORLD_LOG`), least first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum LogLevel {
    Off,
    Error,
    Warn,
    Info,
    Debug,
}

/// The most detailed level enabled. The runtime sets it ([`configure`]) as it reads the
/// configuration, which it does before anything of the library's can say a line: the
/// constructor reads it first, and so does a hooked call made before the constructor ran.
/// Until then, the default of `GREENWORLD_LOG`.
static LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Warn as u8);

/// Sets the level `GREENWORLD_LOG` asked for (the runtime, at load).
pub fn configure(level: LogLevel) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Is `level` enabled by GREENWORLD_LOG?
#[inline]
pub fn enabled(level: LogLevel) -> bool {
    level != LogLevel::Off && level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes one `greenworld: ...` line, with the process's pid and name (the macros below are the
/// way in).
pub fn line(prefix: &str, args: core::fmt::Arguments<'_>) {
    let mut buf = LineBuf::new();
    let _ = buf.write_str("greenworld: ");
    let _ = buf.write_str(prefix);
    let _ = buf.write_fmt(args);
    let _ = write!(buf, " (pid {}, {})", pid(), program());
    let _ = buf.write_str("\n");
    let sinks = SINKS.get();
    match sinks.and_then(|s| s.log.as_ref()) {
        Some(file) if file.write(buf.as_bytes()) => {}
        _ => to_stderr(buf.as_bytes()),
    }
}

/// Writes `bytes` (whole lines) to the stderr the process had at load (see the module's doc),
/// or nowhere if it is gone.
pub fn to_stderr(bytes: &[u8]) {
    if let Some(Some(copy)) = STDERR_COPY.get()
        && copy.write(bytes)
    {
        return;
    }
    let at_load = STDERR_AT_LOAD.get();
    // Before load has looked (a malformed variable), descriptor 2 is still the program's stderr.
    if at_load.is_none()
        || at_load
            .copied()
            .flatten()
            .is_some_and(|id| identity(2) == Some(id))
    {
        write_all(2, bytes);
    }
}

/// Takes the private copy of stderr, once, if descriptor 2 is still the stderr of load time:
/// when the process makes its first green thread (it may have things to say at exit, after it
/// closed stderr), or at load with `GREENWORLD_STATS`.
pub fn keep_stderr() {
    STDERR_COPY.get_or_init(|| {
        let id = STDERR_AT_LOAD.get().copied().flatten()?;
        if identity(2) != Some(id) {
            return None;
        }
        // Not `dup`: ours would be the lowest free number, where the program's next file goes.
        own::duplicate_high(2).and_then(Sink::new)
    });
}

/// Writes the `GREENWORLD_STATS` summary line where it goes.
pub fn to_stats(bytes: &[u8]) {
    match SINKS.get().and_then(|s| s.stats.as_ref()) {
        Some(file) if file.write(bytes) => {}
        _ => to_stderr(bytes),
    }
}

pub fn pid() -> c_int {
    // SAFETY: getpid has no preconditions (raw: the pid of this process, even after a fork).
    unsafe { crate::sys::syscall!(libc::SYS_getpid) as c_int }
}

/// The program's short name, as glibc keeps it (`program_invocation_short_name`).
pub fn program() -> &'static str {
    unsafe extern "C" {
        static program_invocation_short_name: *const libc::c_char;
    }
    // SAFETY: glibc sets this before any constructor runs, to a NUL-terminated string that
    // lives as long as the process (or leaves it null before then).
    let name = unsafe { program_invocation_short_name };
    if name.is_null() {
        return "?";
    }
    // SAFETY: as above.
    unsafe { CStr::from_ptr(name) }.to_str().unwrap_or("?")
}

/// Where lines go: one of the library's own descriptors, and the file it was opened on.
pub struct Sink {
    fd: OwnFd,
    file: (u64, u64),
    /// The descriptor was found closed or replaced (by a raw system call): lines are dropped
    /// rather than written into whatever has the number now.
    lost: AtomicBool,
}

impl Sink {
    /// Takes `fd` (opened for the library) as a sink; closes it when it cannot.
    fn new(fd: c_int) -> Option<Sink> {
        let Some(file) = identity(fd) else {
            // SAFETY: the library's own descriptor, never published.
            unsafe { crate::sys::syscall!(libc::SYS_close, fd) };
            return None;
        };
        let fd = own::adopt(fd).ok()?;
        Some(Sink {
            fd,
            file,
            lost: AtomicBool::new(false),
        })
    }

    /// Writes `bytes`; false when the sink is lost (nothing was written).
    fn write(&self, bytes: &[u8]) -> bool {
        if self.lost.load(Ordering::Relaxed) {
            return false;
        }
        let fd = self.fd.get();
        if fd < 0 || identity(fd) != Some(self.file) {
            self.lost.store(true, Ordering::Relaxed);
            self.fd.disown();
            return false;
        }
        write_all(fd, bytes);
        true
    }
}

/// The (device, inode) of the file open on `fd`.
fn identity(fd: c_int) -> Option<(u64, u64)> {
    // SAFETY: all-zero is a valid stat buffer; fstat fills it (the raw call, never hooked).
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: st is writable.
    let rc = unsafe { crate::sys::syscall!(libc::SYS_fstat, fd, &raw mut st) };
    (rc == 0).then_some((st.st_dev, st.st_ino))
}

fn write_all(fd: c_int, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: the pointer and length describe the live slice `bytes`.
        let n = unsafe { crate::sys::syscall!(libc::SYS_write, fd, bytes.as_ptr(), bytes.len()) };
        if n <= 0 {
            if n < 0 && crate::sys::errno() == libc::EINTR {
                continue;
            }
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

struct Sinks {
    log: Option<Sink>,
    stats: Option<Sink>,
}

// In `.data`, not `.bss`: every process touches it at start (see `loaded::PRELOADED`).
#[unsafe(link_section = ".data.greenworld_start")]
static SINKS: OnceCell<Sinks> = OnceCell::new();
/// The (device, inode) of descriptor 2 at load, if it was open.
static STDERR_AT_LOAD: OnceCell<Option<(u64, u64)>> = OnceCell::new();
static STDERR_COPY: OnceCell<Option<Sink>> = OnceCell::new();

/// At load, once: notes which file stderr is and opens the files named (with `stats_on_stderr`,
/// takes the copy of stderr at once). A file that cannot be opened is said (on stderr) and its
/// lines go to stderr.
pub fn open_sinks(
    log_file: Option<(&'static str, &CStr)>,
    stats_file: Option<(&'static str, &CStr)>,
    stats_on_stderr: bool,
) {
    let _ = STDERR_AT_LOAD.set(identity(2));
    if stats_on_stderr {
        keep_stderr();
    }
    let open = |named: Option<(&'static str, &CStr)>| {
        let (var, path) = named?;
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND | libc::O_CLOEXEC;
        // SAFETY: a NUL-terminated path; the raw call (the program's `open` hook is not ours to
        // go through).
        let fd = unsafe {
            crate::sys::syscall!(
                libc::SYS_openat,
                libc::AT_FDCWD,
                path.as_ptr(),
                flags,
                0o644,
            )
        } as c_int;
        let sink = if fd >= 0 { Sink::new(fd) } else { None };
        if sink.is_none() {
            let e = std::io::Error::last_os_error();
            let mut buf = LineBuf::new();
            let _ = writeln!(
                buf,
                "greenworld: warn: {var}: cannot open {path:?} ({e}); its lines go to stderr (pid {}, {})",
                pid(),
                program()
            );
            to_stderr(buf.as_bytes());
        }
        sink
    };
    let log = open(log_file);
    let stats = open(stats_file);
    let _ = SINKS.set(Sinks { log, stats });
}

#[macro_export]
macro_rules! log {
    ($level:ident, $($arg:tt)*) => {
        if $crate::log::enabled($crate::log::LogLevel::$level) {
            $crate::log::line(
                const { $crate::log::prefix($crate::log::LogLevel::$level) },
                format_args!($($arg)*),
            );
        }
    };
}

/// An internal failure the host cannot survive: one line, then abort (never unwinding into C).
#[macro_export]
macro_rules! fatal {
    ($($arg:tt)*) => {{
        $crate::log::line("fatal: ", format_args!($($arg)*));
        ::std::process::abort()
    }};
}

pub const fn prefix(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Off => "",
        LogLevel::Error => "error: ",
        LogLevel::Warn => "warn: ",
        LogLevel::Info => "info: ",
        LogLevel::Debug => "debug: ",
    }
}
