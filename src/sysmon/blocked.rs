//! The blocking detector: a hub whose OS thread sits in one system call while the hub has
//! green threads (they cannot run meanwhile) is in a *blocked episode*: a call no hook made
//! green (trap 1: a raw `syscall`, `flock`, a read on a terminal, glibc's internal I/O). The
//! monitor sees it in `/proc/self/task/TID/syscall` (the call's number, and the thread's
//! stack pointer and instruction pointer at its entry), names it on stderr once it has lasted
//! `GREENWORLD_BLOCK_WARN` ms, again with its total when it ends, and counts it for
//! [`super::escapes`]. Sampled every [`super::TICK_NS`]: that is the resolution, and shorter
//! calls are mostly not seen.
//!
//! Who made the call: its instruction pointer is usually libc's wrapper; the caller is found
//! by reading the words at the blocked thread's stack pointer (`process_vm_readv` on this
//! process, which fails cleanly where a plain read could fault) and taking the first that
//! points into code of another object than libc, the loader or the library, as a return
//! address does. A scan, not an unwind: "probable caller".

use crate::hub::Hub;
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
    /// The call's instruction pointer, and the probable caller (0: none found).
    pc: usize,
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
    let (nr, sp, pc) = in_syscall(hub.tid()).unwrap_or((USER_CODE, 0, 0));
    if episode.call != Some(nr) {
        end(hub, episode, now, warn_ns);
        *episode = Episode {
            call: Some(nr),
            started: now,
            warned: false,
            pc,
            caller: if sp == 0 { 0 } else { probable_caller(sp) },
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
        ": nothing else of the hub runs meanwhile ({} green threads alive); at ",
        hub.alive()
    );
    let _ = write_place(&mut line, episode.pc);
    if episode.caller != 0 {
        let _ = line.write_str(", probable caller ");
        let _ = write_place(&mut line, episode.caller);
    }
    let _ = writeln!(
        line,
        " (pid {}, {})",
        crate::log::pid(),
        crate::log::program()
    );
    crate::log::to_stderr(line.as_bytes());
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
}

/// "green thread 0x… 'name'" or "the main thread".
fn write_thread(out: &mut LineBuf, hub: &'static Hub) -> core::fmt::Result {
    let green = hub.running();
    if green.is_root() {
        return out.write_str("the hub's own thread (main)");
    }
    write!(out, "green thread {:#x}", green as *const _ as usize)?;
    if let Ok(name) = green.name.try_lock() {
        let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        if len > 0 {
            write!(out, " '{}'", String::from_utf8_lossy(&name[..len]))?;
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

/// "file!function+0xoff", or "file+0xoff" without a symbol.
pub fn write_place(out: &mut impl Write, address: usize) -> core::fmt::Result {
    // SAFETY: all-zero is a valid Dl_info for dladdr to fill.
    let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
    // SAFETY: any address may be asked about; the loader's strings live while it is loaded.
    let found = unsafe { libc::dladdr(address as *const libc::c_void, &mut info) } != 0;
    if !found || info.dli_fname.is_null() {
        return write!(out, "{address:#x}");
    }
    // SAFETY: NUL-terminated strings the loader owns.
    let path = unsafe { core::ffi::CStr::from_ptr(info.dli_fname) }.to_bytes();
    let file = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    out.write_str(&String::from_utf8_lossy(file))?;
    if !info.dli_sname.is_null() && !info.dli_saddr.is_null() {
        // SAFETY: as above.
        let name = unsafe { core::ffi::CStr::from_ptr(info.dli_sname) };
        write!(
            out,
            "!{}+{:#x}",
            name.to_string_lossy(),
            address - info.dli_saddr as usize
        )
    } else {
        write!(out, "+{:#x}", address - info.dli_fbase as usize)
    }
}

/// Reads a small /proc file of OS thread `tid` into `buf`; the bytes read.
fn read_task_file(tid: i32, file: &str, buf: &mut [u8]) -> Option<usize> {
    let mut path = LineBuf::new();
    let _ = write!(path, "/proc/self/task/{tid}/{file}\0");
    // SAFETY: a NUL-terminated path; raw calls (the monitor never calls a hook).
    unsafe {
        let fd = crate::sys::syscall!(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_bytes().as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC
        );
        if fd < 0 {
            return None;
        }
        let n = crate::sys::syscall!(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len());
        crate::sys::syscall!(libc::SYS_close, fd);
        (n > 0).then_some(n as usize)
    }
}

/// Is OS thread `tid` running user code (state R, not asleep in a system call), with `sig`
/// not blocked (a signal it blocks would wait, pending, for the program's `sigwait`)?
/// The time OS thread `tid` has spent on a CPU so far, in ns (`/proc/…/schedstat`'s first
/// field); None where the kernel does not say.
pub fn cpu_ns(tid: i32) -> Option<u64> {
    let mut buf = [0u8; 128];
    let n = read_task_file(tid, "schedstat", &mut buf)?;
    let text = core::str::from_utf8(&buf[..n]).ok()?;
    text.split_ascii_whitespace().next()?.parse().ok()
}

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

/// The system call OS thread `tid` is in, with its stack and instruction pointers; none when
/// it runs user code.
fn in_syscall(tid: i32) -> Option<(i64, usize, usize)> {
    let mut buf = [0u8; 256];
    let n = read_task_file(tid, "syscall", &mut buf)?;
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

/// The first word at `sp` that points into another object's code than libc's, the loader's
/// or the library's (0: none in the first few hundred bytes).
fn probable_caller(sp: usize) -> usize {
    const WORDS: usize = 64;
    let mut words = [0usize; WORDS];
    let local = libc::iovec {
        iov_base: words.as_mut_ptr().cast(),
        iov_len: size_of_val(&words),
    };
    let remote = libc::iovec {
        iov_base: sp as *mut libc::c_void,
        iov_len: size_of_val(&words),
    };
    // SAFETY: this process's own memory, into a local buffer; a bad address fails (EFAULT).
    let got = unsafe {
        crate::sys::syscall!(
            libc::SYS_process_vm_readv,
            crate::sys::syscall!(libc::SYS_getpid),
            &local as *const libc::iovec,
            1,
            &remote as *const libc::iovec,
            1,
            0
        )
    };
    if got <= 0 {
        return 0;
    }
    let words = &words[..got as usize / size_of::<usize>()];
    let mut fallback = 0;
    for &word in words {
        let Some(object) = crate::scope::object_of(word) else {
            continue;
        };
        if super::is_runtime_object(object.start) {
            continue;
        }
        // SAFETY: all-zero is a valid Dl_info for dladdr to fill.
        let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
        // SAFETY: any address may be asked about.
        if unsafe { libc::dladdr(word as *const libc::c_void, &mut info) } != 0
            && !info.dli_saddr.is_null()
        {
            return word;
        }
        if fallback == 0 {
            fallback = word;
        }
    }
    fallback
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
