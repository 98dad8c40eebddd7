//! The blocking detector: a hub whose OS thread sits in one system call while the hub has
//! green threads (they cannot run meanwhile) is in a *blocked episode*: a call no hook made
//! green (trap 1: a raw `syscall`, `flock`, a read on a terminal, glibc's internal I/O). The
//! monitor sees it in `/proc/self/task/TID/syscall` (the call's number, and the thread's
//! stack pointer and instruction pointer at its entry), names it on stderr once it has lasted
//! `GREENWORLD_BLOCK_WARN` ms, again with its total when it ends, and counts it for
//! [`super::escapes`]. Sampled every [`super::TICK_NS`]: that is the resolution, and shorter
//! calls are mostly not seen (without the escapes table, an episode that begins while every hub
//! switches is first seen up to the monitor's longer tick, 2 ms, after it began).
//!
//! Who made the call: the warning carries a backtrace of the blocked thread ([`super::backtrace`]:
//! a stack scan from the call's stack pointer; for a thread in its own code, the frame
//! pointers or a scan from the registers the preemption signal's handler caught), symbolized
//! from the objects' files ([`super::symbolize`]). Everything here runs on the monitor's hidden
//! thread: raw system calls, stack buffers, no `dladdr`, no allocation.

use crate::hub::Hub;
use crate::hub::task_files::TaskFile;
use crate::sys::LineBuf;
use core::fmt::Write;

/// An episode's "call" while the thread runs its own code, in no system call: a spin or a
/// long computation that preemption did not end (off, refused where it runs, or nothing
/// else was runnable: then no warning).
const USER_CODE: i64 = -1;

/// One blocked episode of a hub, as the monitor follows it.
#[derive(Clone, Copy, Default)]
pub struct Episode {
    /// The system call (its number), [`USER_CODE`], or none.
    call: Option<i64>,
    started: u64,
    /// The warning was printed.
    warned: bool,
    /// The call's instruction and stack pointers, and its caller (0: none found), the first
    /// frame of the backtrace outside the runtime's objects.
    pc: usize,
    sp: usize,
    caller: usize,
}

impl Episode {
    /// Is the hub's OS thread known to be in a system call?
    pub fn in_call(&self) -> bool {
        self.call.is_some_and(|nr| nr >= 0)
    }
}

/// A look at `hub`, which has not switched since the last: starts, follows or ends its
/// episode.
pub fn sample(hub: &'static Hub, episode: &mut Episode, now: u64, warn_ns: Option<u64>) {
    let (nr, sp, pc) = in_syscall(hub).unwrap_or((USER_CODE, 0, 0));
    if episode.call != Some(nr) {
        end(hub, episode, now, warn_ns);
        let caller = if sp == 0 {
            0
        } else {
            super::backtrace::first_caller(&super::backtrace::scan(pc, sp, stack_top(hub)))
        };
        *episode = Episode {
            call: Some(nr),
            started: now,
            warned: false,
            pc,
            sp,
            caller,
        };
    }
    if let Some(warn_ns) = warn_ns
        && !episode.warned
        && now.saturating_sub(episode.started) >= warn_ns
        && !(nr == USER_CODE && hub.alone())
    {
        episode.warned = true;
        warn(hub, episode, now);
    }
}

/// The hub switched, went idle or lost its threads: the episode, if any, is over.
pub fn end(hub: &'static Hub, episode: &mut Episode, now: u64, _warn_ns: Option<u64>) {
    let Some(nr) = episode.call else { return };
    let lasted = now.saturating_sub(episode.started);
    if episode.warned {
        let mut line = LineBuf::new();
        let _ = write!(
            line,
            "greenworld: hub of OS thread {} ran again after {} ms ",
            hub.tid(),
            lasted / 1_000_000
        );
        if nr == USER_CODE {
            let _ = line.write_str("in one thread's own code");
        } else {
            let _ = line.write_str("blocked in ");
            let _ = write_syscall(&mut line, nr);
        }
        let _ = writeln!(line, " (pid {})", crate::log::pid());
        crate::log::to_stderr(line.as_bytes());
    }
    if nr != USER_CODE {
        super::escapes::record(nr, lasted, episode.caller);
    }
    *episode = Episode::default();
}

fn warn(hub: &'static Hub, episode: &Episode, now: u64) {
    if episode.call == Some(USER_CODE) {
        return warn_user_code(hub, episode, now);
    }
    let mut line = LineBuf::new();
    let _ = write!(
        line,
        "greenworld: hub of OS thread {} blocked {} ms in ",
        hub.tid(),
        (now.saturating_sub(episode.started)) / 1_000_000
    );
    let _ = write_syscall(&mut line, episode.call.unwrap_or(-1));
    let _ = line.write_str(", a call no hook makes green, by ");
    let _ = write_thread(&mut line, hub);
    let _ = write!(
        line,
        ": nothing else of the hub runs meanwhile ({} green threads alive)",
        hub.alive()
    );
    let _ = writeln!(
        line,
        " (pid {}, {})",
        crate::log::pid(),
        crate::log::program()
    );
    crate::log::to_stderr(line.as_bytes());
    let frames = super::backtrace::scan(episode.pc, episode.sp, stack_top(hub));
    write_backtrace(&frames);
}

/// The backtrace's lines, one a frame, under one saying how it was taken.
fn write_backtrace(frames: &super::backtrace::Frames) {
    let mut line = LineBuf::new();
    let _ = writeln!(
        line,
        "greenworld:   backtrace ({}):",
        frames.method.describe()
    );
    crate::log::to_stderr(line.as_bytes());
    for (i, &pc) in frames.as_slice().iter().enumerate() {
        let mut line = LineBuf::new();
        let _ = write!(line, "greenworld:     #{i} ");
        let _ = super::symbolize::write_place(&mut line, pc);
        let _ = line.write_str("\n");
        crate::log::to_stderr(line.as_bytes());
    }
}

/// The top of the running green thread's stack, where a backtrace of it stops (0: the hub's
/// root, on its OS thread's stack: no bound known).
fn stack_top(hub: &'static Hub) -> usize {
    let green = hub.running();
    if green.is_root() {
        0
    } else {
        green
            .started_stack()
            .map_or(0, |stack| stack.low + stack.size)
    }
}

fn warn_user_code(hub: &'static Hub, episode: &Episode, now: u64) {
    let mut line = LineBuf::new();
    let _ = write!(line, "greenworld: hub of OS thread {} has run ", hub.tid());
    let _ = write_thread(&mut line, hub);
    let _ = write!(
        line,
        " for {} ms without a switch, in its own code (no system call): nothing else of the \
         hub runs meanwhile ({} green threads alive; preemption is off, or refused where it \
         runs: libc, the loader, libgcc_s or the library)",
        now.saturating_sub(episode.started) / 1_000_000,
        hub.alive()
    );
    let _ = writeln!(
        line,
        " (pid {}, {})",
        crate::log::pid(),
        crate::log::program()
    );
    crate::log::to_stderr(line.as_bytes());
    // Where it runs: only a signal's handler can say (the thread is in no system call). Asked
    // only of a thread running, not blocking the signal, so that no call of the program's is
    // interrupted (and the handler restarts any, SA_RESTART).
    if hub_running_unblocked(hub, super::preempt::SIGNAL)
        && let Some((pc, sp, fp)) = super::preempt::capture(hub.tid())
    {
        write_backtrace(&super::backtrace::walk(pc, sp, fp, stack_top(hub)));
    }
}

/// "green thread 0x… 'name'" or "the main thread".
fn write_thread(out: &mut LineBuf, hub: &'static Hub) -> core::fmt::Result {
    let green = hub.running();
    if green.is_root() {
        return out.write_str("the hub's own thread (main)");
    }
    write!(out, "green thread {:#x}", green as *const _ as usize)?;
    // A try_lock is a compare-and-swap (and a look at the global panic count), no more: fine
    // on the monitor's hidden thread.
    if let Ok(name) = green.name.try_lock() {
        let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        if len > 0 {
            write!(
                out,
                " '{}'",
                core::str::from_utf8(&name[..len]).unwrap_or("?")
            )?;
        }
    }
    Ok(())
}

/// The system call's name (x86-64; a number elsewhere).
pub fn write_syscall(out: &mut impl Write, nr: i64) -> core::fmt::Result {
    match syscall_name(nr) {
        Some(name) => out.write_str(name),
        None => write!(out, "syscall {nr}"),
    }
}

/// Reads `hub`'s OS thread's /proc `file` into `buf` from the descriptor the hub keeps for it
/// (`hub::task_files`), else (none kept) from a fresh one; the bytes read.
fn read_hub_file(hub: &Hub, file: TaskFile, buf: &mut [u8]) -> Option<usize> {
    hub.read_task_file(file, buf)
        .or_else(|| read_task_file(hub.tid(), file.name(), buf))
}

/// Reads a small /proc file of OS thread `tid` into `buf`; the bytes read. (A fresh descriptor
/// takes the lowest free number for a moment: the hubs' files are kept open instead.)
fn read_task_file(tid: i32, file: &str, buf: &mut [u8]) -> Option<usize> {
    let mut path = LineBuf::new();
    let _ = write!(path, "/proc/self/task/{tid}/{file}\0");
    let path = core::ffi::CStr::from_bytes_with_nul(path.as_bytes()).ok()?;
    let fd = crate::sys::open_raw(path, libc::O_RDONLY | libc::O_CLOEXEC)?;
    // SAFETY: a valid buffer of its length; our descriptor, closed here; raw calls (the monitor
    // never calls a hook).
    unsafe {
        let n = crate::sys::syscall!(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len());
        crate::sys::syscall!(libc::SYS_close, fd);
        (n > 0).then_some(n as usize)
    }
}

/// The time OS thread `tid` (of this process) has spent on a CPU so far, in ns: its CPU-time
/// clock (what `pthread_getcpuclockid` names), which the kernel brings up to date for a thread
/// that is running, else `/proc/…/schedstat`'s first field, which it does not (a thread that
/// computes without a break is seen to move in steps of a scheduler tick, 4 ms here, so it
/// looked idle to three looks in four); None where the kernel says neither.
pub fn cpu_ns(tid: i32) -> Option<u64> {
    // The kernel's MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED).
    let clock = (!(tid as libc::clockid_t) << 3) | 6;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill; a clock of a thread that ended fails with EINVAL.
    if unsafe {
        crate::sys::syscall!(
            libc::SYS_clock_gettime,
            clock,
            &mut ts as *mut libc::timespec
        )
    } == 0
    {
        return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
    }
    let mut buf = [0u8; 128];
    let n = read_task_file(tid, "schedstat", &mut buf)?;
    let text = core::str::from_utf8(&buf[..n]).ok()?;
    text.split_ascii_whitespace().next()?.parse().ok()
}

/// Is OS thread `tid` running user code (state R, not asleep in a system call), with `sig`
/// not blocked (a signal it blocks would wait, pending, for the program's `sigwait`)? (What
/// the readings from `stat` are checked against.)
#[cfg(test)]
pub fn running_unblocked(tid: i32, sig: libc::c_int) -> bool {
    let mut buf = [0u8; 2048];
    let Some(n) = read_task_file(tid, "status", &mut buf) else {
        return false;
    };
    let mut running = false;
    let mut blocked = true;
    for line in buf[..n].split(|&b| b == b'\n') {
        if let Some(state) = line.strip_prefix(b"State:\t") {
            running = state.first() == Some(&b'R');
        } else if let Some(mask) = line.strip_prefix(b"SigBlk:\t") {
            blocked = core::str::from_utf8(mask)
                .ok()
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
                .is_none_or(|mask| mask & (1 << (sig - 1)) != 0);
        }
    }
    running && !blocked
}

/// [`running_unblocked`] from `/proc/…/stat` (its state, and its blocked mask's first 31
/// signals, enough for a standard signal), with a smaller buffer: for a waker on a green
/// thread's stack, which may be small. (The hubs' readings: [`hub_running_unblocked`].)
#[cfg(test)]
pub fn running_unblocked_lean(tid: i32, sig: libc::c_int) -> bool {
    let mut buf = [0u8; 768];
    read_task_file(tid, "stat", &mut buf).is_some_and(|n| stat_running_unblocked(&buf[..n], sig))
}

/// [`running_unblocked_lean`] of `hub`'s OS thread, from the `stat` it keeps open.
pub fn hub_running_unblocked(hub: &Hub, sig: libc::c_int) -> bool {
    let mut buf = [0u8; 768];
    read_hub_file(hub, TaskFile::Stat, &mut buf)
        .is_some_and(|n| stat_running_unblocked(&buf[..n], sig))
}

/// What a `stat` line says: running user code, `sig` (one of the first 31) not blocked.
fn stat_running_unblocked(buf: &[u8], sig: libc::c_int) -> bool {
    let n = buf.len();
    // After the name in parentheses (which may hold anything): the state, then field 32 of
    // the line, the blocked mask in decimal, 29 fields on.
    let Some(close) = buf[..n].iter().rposition(|&b| b == b')') else {
        return false;
    };
    let mut fields = buf[close + 1..n]
        .split(|&b| b == b' ')
        .filter(|field| !field.is_empty());
    let running = fields.next() == Some(b"R".as_slice());
    let blocked = fields
        .nth(28)
        .and_then(|mask| core::str::from_utf8(mask).ok())
        .and_then(|mask| mask.parse::<u64>().ok())
        .is_none_or(|mask| mask & (1 << (sig - 1)) != 0);
    running && !blocked
}

/// The system call OS thread `tid` is in, with its stack and instruction pointers; none when
/// it runs user code.
fn in_syscall(hub: &Hub) -> Option<(i64, usize, usize)> {
    let mut buf = [0u8; 256];
    let n = read_hub_file(hub, TaskFile::Syscall, &mut buf)?;
    let text = core::str::from_utf8(&buf[..n]).ok()?;
    let mut fields = text.split_ascii_whitespace();
    let nr: i64 = fields.next()?.parse().ok()?;
    if nr < 0 {
        return None;
    }
    let rest: [&str; 8] = core::array::from_fn(|_| fields.next().unwrap_or(""));
    let hex = |s: &str| usize::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    Some((nr, hex(rest[6])?, hex(rest[7])?))
}

/// x86-64 system call names, for the calls a thread may block in (others by number).
fn syscall_name(nr: i64) -> Option<&'static str> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    Some(match nr {
        0 => "read",
        1 => "write",
        2 => "open",
        3 => "close",
        4 => "stat",
        5 => "fstat",
        6 => "lstat",
        7 => "poll",
        8 => "lseek",
        9 => "mmap",
        16 => "ioctl",
        17 => "pread64",
        18 => "pwrite64",
        19 => "readv",
        20 => "writev",
        23 => "select",
        24 => "sched_yield",
        34 => "pause",
        35 => "nanosleep",
        40 => "sendfile",
        42 => "connect",
        43 => "accept",
        44 => "sendto",
        45 => "recvfrom",
        46 => "sendmsg",
        47 => "recvmsg",
        56 => "clone",
        57 => "fork",
        58 => "vfork",
        59 => "execve",
        61 => "wait4",
        65 => "semop",
        69 => "msgsnd",
        70 => "msgrcv",
        72 => "fcntl",
        73 => "flock",
        74 => "fsync",
        75 => "fdatasync",
        76 => "truncate",
        77 => "ftruncate",
        82 => "rename",
        83 => "mkdir",
        87 => "unlink",
        128 => "rt_sigtimedwait",
        130 => "rt_sigsuspend",
        202 => "futex",
        208 => "io_getevents",
        209 => "io_submit",
        217 => "getdents64",
        220 => "semtimedop",
        230 => "clock_nanosleep",
        232 => "epoll_wait",
        247 => "waitid",
        257 => "openat",
        262 => "newfstatat",
        270 => "pselect6",
        271 => "ppoll",
        275 => "splice",
        281 => "epoll_pwait",
        288 => "accept4",
        299 => "recvmmsg",
        307 => "sendmmsg",
        318 => "getrandom",
        332 => "statx",
        426 => "io_uring_enter",
        441 => "epoll_pwait2",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gettid() -> i32 {
        // SAFETY: no arguments.
        unsafe { crate::sys::syscall!(libc::SYS_gettid) as i32 }
    }

    /// The lean reading agrees with the full one: a thread reading its own files runs, and the
    /// signal it blocks counts as blocked.
    #[test]
    fn lean_and_full_readings_agree() {
        let me = gettid();
        assert!(running_unblocked_lean(me, libc::SIGURG));
        assert!(running_unblocked(me, libc::SIGURG));
        // SAFETY: valid sets; this test thread's own mask, restored below.
        unsafe {
            let mut set: libc::sigset_t = core::mem::zeroed();
            let mut old: libc::sigset_t = core::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGURG);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            let (lean, full) = (
                running_unblocked_lean(me, libc::SIGURG),
                running_unblocked(me, libc::SIGURG),
            );
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut());
            assert!(!lean && !full);
        }
        assert!(!running_unblocked_lean(-1, libc::SIGURG));
    }
}
