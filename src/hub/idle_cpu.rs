//! Is a CPU free for a hub to spin on (`hub::spin`)? A spin only pays while no other thread
//! waits for a CPU: on a machine where every CPU is wanted, the CPU it spins on is one a
//! thread of the program, or of another process (a load client beside a server), would have
//! run on, and `sched_yield` between looks gave only part of it back (memcached at two hubs:
//! 45 677 yields in 3 s, 0.94× native throughput).
//!
//! The kernel's count of runnable threads, system-wide, is the fourth field of `/proc/loadavg`
//! (`running/total`: the count now, not an average), read with one `pread` of a descriptor the
//! hub keeps (about 1.4 µs on this VM, against 0.8 µs for a `sched_yield`). It counts the
//! spinning hub itself and the hub it waits for: a CPU is free while the count is at most the
//! CPUs the process may run on. Conservative where the process may use fewer CPUs than the
//! machine has and other processes run elsewhere (the spin is then cut short to one yield).
//! Without `/proc` (a sandbox), every CPU counts as free: the adaptive budget (`hub::spin`)
//! still bounds the spin.

use crate::own_fd::{self as own, OwnFd};
use core::cell::Cell;
use core::sync::atomic::{AtomicUsize, Ordering};

/// The CPUs the process could run on when the hubs started (0: not known).
static PROCESS_CPUS: AtomicUsize = AtomicUsize::new(0);

/// Notes how many CPUs the process may run on (`thread::hubs`, as it starts the hubs).
pub fn note_process_cpus(cpus: usize) {
    PROCESS_CPUS.store(cpus, Ordering::Relaxed);
}

/// How many CPUs the process may run on: those noted as the hubs started, else (one hub,
/// which starts none) the calling OS thread's mask, read once. 0: not known.
pub fn process_cpus() -> usize {
    static ASKED: AtomicUsize = AtomicUsize::new(usize::MAX);
    let noted = PROCESS_CPUS.load(Ordering::Relaxed);
    if noted != 0 {
        return noted;
    }
    let asked = ASKED.load(Ordering::Relaxed);
    if asked != usize::MAX {
        return asked;
    }
    let cpus = crate::sys::os_cpu_mask()
        .map_or(0, |mask| mask.iter().map(|w| w.count_ones() as usize).sum());
    ASKED.store(cpus, Ordering::Relaxed);
    cpus
}

/// One hub's probe (its own thread reads it: a `Cell`).
pub struct Probe {
    /// `/proc/loadavg`, opened at the first question; `Unavailable` once it could not be.
    fd: Cell<Source>,
    /// When the last answer was read (`now_ns`; 0: never), and what it was.
    read_at: Cell<u64>,
    free: Cell<bool>,
}

#[derive(Clone, Copy)]
enum Source {
    NotOpened,
    Open(OwnFd),
    Unavailable,
}

impl Probe {
    pub const fn new() -> Probe {
        Probe {
            fd: Cell::new(Source::NotOpened),
            read_at: Cell::new(0),
            free: Cell::new(true),
        }
    }

    /// Could a hub spin at `now` (`now_ns`) without taking a CPU another thread waits for?
    /// An answer read less than `CHECK_CPU_NS` before is given again.
    pub fn cpu_free(&self, now: u64) -> bool {
        let read_at = self.read_at.get();
        if read_at != 0 && now.wrapping_sub(read_at) < super::spin::CHECK_CPU_NS {
            return self.free.get();
        }
        let cpus = PROCESS_CPUS.load(Ordering::Relaxed);
        let free = cpus == 0 || self.runnable().is_none_or(|runnable| runnable <= cpus);
        self.read_at.set(now);
        self.free.set(free);
        free
    }

    /// Opens `/proc/loadavg`, as the hub is made on its own OS thread: opened at the first
    /// spin instead, it took the lowest free number for a moment while the program ran on
    /// other hubs (one that had just closed every descriptor from 3 up saw 3 open).
    pub fn open(&self) {
        if let Source::NotOpened = self.fd.get() {
            self.fd
                .set(open().map_or(Source::Unavailable, Source::Open));
        }
    }

    /// In a fork child, for a hub whose OS thread it does not have (that thread never reads it
    /// again).
    pub fn close_in_child(&self) {
        if let Source::Open(fd) = self.fd.get() {
            fd.close();
            self.fd.set(Source::Unavailable);
        }
    }

    /// The system's runnable threads now (this one included), or None without `/proc`.
    fn runnable(&self) -> Option<usize> {
        let fd = match self.fd.get() {
            Source::Open(fd) => fd,
            // (`open` was not called: a probe of no hub's.)
            Source::NotOpened | Source::Unavailable => return None,
        };
        let mut buf = [0u8; 80];
        // SAFETY: reads into a valid local buffer of its length from our own descriptor.
        let n = unsafe {
            crate::sys::syscall!(libc::SYS_pread64, fd.get(), buf.as_mut_ptr(), buf.len(), 0)
        };
        if n <= 0 {
            return None;
        }
        parse_running(&buf[..n as usize])
    }
}

/// Opens `/proc/loadavg` as one of the library's descriptors (raw calls: no allocation).
fn open() -> Option<OwnFd> {
    let fd = crate::sys::open_raw(c"/proc/loadavg", libc::O_RDONLY | libc::O_CLOEXEC)?;
    own::adopt(fd).ok()
}

/// The `running` of `/proc/loadavg`'s "1.00 0.50 0.25 running/total last_pid".
fn parse_running(text: &[u8]) -> Option<usize> {
    let field = text.split(|&b| b == b' ').nth(3)?;
    let digits = field.split(|&b| b == b'/').next()?;
    if digits.is_empty() {
        return None;
    }
    let mut n = 0usize;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(usize::from(d - b'0'))?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::parse_running;

    #[test]
    fn reads_the_running_count() {
        assert_eq!(parse_running(b"1.88 1.31 1.03 5/167 3505\n"), Some(5));
        assert_eq!(parse_running(b"0.00 0.00 0.00 12/1024 1\n"), Some(12));
        assert_eq!(parse_running(b"0.00 0.00 0.00\n"), None);
        assert_eq!(parse_running(b"0.00 0.00 0.00 x/3 1\n"), None);
        assert_eq!(parse_running(b""), None);
    }
}
