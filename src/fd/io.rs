//! The green I/O loop every socket and pipe call shares: try the call without blocking; on
//! EAGAIN, answer EAGAIN if the program made the descriptor non-blocking itself, else park until
//! the hub says the descriptor may be ready (or the program's socket timeout passes), and try
//! again.

use super::wait::{Direction, NotReady, wait_fd};
use super::{BeforeRead, Entry, Kind, ProgramFlags};
use crate::hub::Hub;
use crate::outcome::Outcome::{self, Bypass, Done, Errno};
use crate::patch::{self, Subsystem};
use crate::sys::{errno, now_ns};
use libc::{EAGAIN, c_int, c_void, iovec, ssize_t};

/// What a call already knows of its descriptor before it asks for a [`GreenFd`]: the table's
/// entry and cached kind, if any (see `fd::cached`), and this OS thread's hub if it looked it up
/// already (a look at a thread-local of this library is a `__tls_get_addr` call).
#[derive(Clone, Copy)]
pub struct Known {
    pub entry: Option<&'static Entry>,
    pub kind: Kind,
    pub hub: Option<&'static Hub>,
}

/// What [`GreenFd::admit`] found: the descriptor's entry and kind, and the hub to wait on.
#[derive(Clone, Copy)]
pub struct Admitted {
    entry: &'static Entry,
    kind: Kind,
    hub: &'static Hub,
}

/// A descriptor green I/O may handle now, with what it needs to wait on it.
pub struct GreenFd {
    pub fd: c_int,
    pub entry: &'static Entry,
    pub kind: Kind,
    pub(super) hub: &'static Hub,
    /// The entry's generation when the call began: a wait ends `Closed` once it moves on.
    pub(super) generation: u32,
    /// The deadline of the whole call once the first wait started (SO_RCVTIMEO/SO_SNDTIMEO
    /// bound the call, not each wait).
    deadline: Option<Option<u64>>,
    /// The count of wake-ups of the direction tried, taken just before the try (`wait_fd`
    /// takes it: see `Entry::read_wakes`).
    pub(super) wakes_seen: core::cell::Cell<Option<u32>>,
}

impl GreenFd {
    /// `fd` if its subsystem is patched, it is a socket or pipe, and another green thread
    /// could run while it waits; None means: make the real call (it is exactly right).
    pub fn get(fd: c_int) -> Option<GreenFd> {
        GreenFd::of_entry(fd, super::entry(fd)?)
    }

    fn of_entry(fd: c_int, entry: &'static Entry) -> Option<GreenFd> {
        GreenFd::of_kind(fd, entry, entry.kind(fd), None)
    }

    /// `hub`: this OS thread's hub if the caller already looked it up (else looked up here).
    #[inline]
    fn of_kind(
        fd: c_int,
        entry: &'static Entry,
        kind: Kind,
        hub: Option<&'static Hub>,
    ) -> Option<GreenFd> {
        let hub = GreenFd::admit_kind(kind, hub)?;
        Some(GreenFd::new(fd, Admitted { entry, kind, hub }))
    }

    /// The hub a descriptor of `kind` may wait on, if green I/O may handle it now (see
    /// [`get`](GreenFd::get)).
    #[inline(always)]
    fn admit_kind(kind: Kind, hub: Option<&'static Hub>) -> Option<&'static Hub> {
        let subsystem = match kind {
            Kind::StreamSocket | Kind::DatagramSocket => Subsystem::Socket,
            Kind::Pipe => Subsystem::Os,
            Kind::Plain | Kind::File | Kind::Unknown => return None,
        };
        if !patch::active(subsystem) {
            return None;
        }
        let hub = match hub {
            Some(hub) => hub,
            None if !Hub::any_parkable() => return None,
            None => current_hub()?,
        };
        hub.parkable().then_some(hub)
    }

    /// A call's descriptor, from what [`admit`](GreenFd::admit) found.
    #[inline(always)]
    pub fn new(fd: c_int, admitted: Admitted) -> GreenFd {
        let Admitted { entry, kind, hub } = admitted;
        GreenFd {
            fd,
            entry,
            kind,
            hub,
            generation: entry.generation(),
            deadline: None,
            wakes_seen: core::cell::Cell::new(None),
        }
    }

    /// The descriptor of a call that may block, or what the call does instead: the error a
    /// previous write left for it (see [`write_all`]), or libc (`Err(Bypass)`).
    pub fn for_call<T>(fd: c_int, socket_only: bool) -> Result<GreenFd, Outcome<T>> {
        let entry = super::entry(fd).ok_or(Bypass)?;
        if let Some(code) = entry.take_pending() {
            return Err(Errno(code));
        }
        GreenFd::of_entry(fd, entry)
            .filter(|green| !socket_only || green.kind.is_socket())
            .ok_or(Bypass)
    }

    /// [`for_call`](GreenFd::for_call) with what the call already knew of `fd` (see
    /// [`Known`]), without making the [`GreenFd`]: the caller makes it with
    /// [`new`](GreenFd::new) in its own variable (a `GreenFd` returned in a `Result` was built
    /// aside and copied over, some thirty instructions on every call).
    #[inline(always)]
    pub fn admit<T>(fd: c_int, known: Known) -> Result<Admitted, Outcome<T>> {
        let Known { entry, kind, hub } = known;
        let Some(entry) = entry.filter(|_| kind != Kind::Unknown) else {
            return GreenFd::for_call(fd, false).map(|green| Admitted {
                entry: green.entry,
                kind: green.kind,
                hub: green.hub,
            });
        };
        if let Some(code) = entry.take_pending() {
            return Err(Errno(code));
        }
        let hub = GreenFd::admit_kind(kind, hub).ok_or(Bypass)?;
        Ok(Admitted { entry, kind, hub })
    }

    /// Only a socket of the patched socket subsystem.
    pub fn socket(fd: c_int) -> Option<GreenFd> {
        GreenFd::get(fd).filter(|g| g.kind.is_socket())
    }

    /// Did the program make this descriptor non-blocking itself?
    pub fn program_nonblocking(&self) -> bool {
        self.entry.program_flags(self.fd).nonblocking()
    }

    /// Repeats `attempt` (a non-blocking try that returns -1 and sets errno on failure) until
    /// it does something other than EAGAIN.
    pub fn retry(
        &mut self,
        dir: Direction,
        mut attempt: impl FnMut() -> ssize_t,
    ) -> Outcome<ssize_t> {
        loop {
            self.note_wakes(dir);
            let n = attempt();
            if n >= 0 {
                return Done(n);
            }
            let code = errno();
            if code != EAGAIN {
                // The number may have been closed and reused behind our back: the kernel's
                // answer for what it is now, not ours for what it was.
                if super::stale(self.fd, self.kind, code) {
                    return Bypass;
                }
                return Errno(code);
            }
            if let Err(not_ready) = self.wait(dir) {
                return not_ready.outcome();
            }
        }
    }

    /// [`retry`](GreenFd::retry) for a plain read (no peek, no flags) of `len` bytes from a
    /// pipe or stream socket, which keeps what the entry knows of its emptiness
    /// (`Entry::before_read`): a blocking read of a descriptor known to be empty (or, after a
    /// short read of plain TCP, to have an edge on its way) parks first, without the system
    /// call that would only answer EAGAIN.
    #[inline]
    pub fn read(&mut self, len: usize, mut attempt: impl FnMut() -> ssize_t) -> Outcome<ssize_t> {
        let entry = self.entry;
        if self.kind == Kind::DatagramSocket {
            return self.retry(Direction::Read, attempt);
        }
        // A descriptor the program made non-blocking always tries (EAGAIN is its answer).
        let mut learn = false;
        self.note_wakes(Direction::Read);
        match entry.before_read() {
            BeforeRead::Try => {}
            BeforeRead::Park => {
                // One look at the flags for the question and the wait.
                let flags = entry.program_flags(self.fd);
                if !flags.nonblocking()
                    && let Err(not_ready) = self.wait_with(Direction::Read, flags)
                {
                    return not_ready.outcome();
                }
            }
            BeforeRead::TryAfterShort => learn = !self.program_nonblocking(),
        }
        let (fd, stream) = (self.fd, self.kind == Kind::StreamSocket);
        self.retry(Direction::Read, || {
            // Read before the call: an edge reported after it may be a write it did not see.
            let edges = entry.read_edges.load(core::sync::atomic::Ordering::Acquire);
            let n = attempt();
            if core::mem::take(&mut learn) {
                entry.tried_after_short(n < 0 && errno() == EAGAIN);
            }
            if n > 0 {
                // A short read proves it only of plain TCP: elsewhere it may stop before the
                // end (an O_DIRECT pipe's packet, a change of writer's credentials on a Unix
                // socket). Drained, the count of unread bytes starts again at 0: no need to
                // take `n` off it first (a locked instruction on every read of a TCP echo).
                let drained = stream && (n as usize) < len && entry.read_short(fd, edges);
                if !drained {
                    entry.took(n as usize);
                }
            } else if n < 0 && errno() == EAGAIN {
                entry.found_empty(edges);
            }
            n
        })
    }

    /// Takes the count of `dir`'s wake-ups before a try, for the wait after it.
    #[inline]
    fn note_wakes(&self, dir: Direction) {
        let wakes = self
            .entry
            .wakes(dir)
            .load(core::sync::atomic::Ordering::Acquire);
        self.wakes_seen.set(Some(wakes));
    }

    /// Waits until the descriptor may be ready in `dir`: Err(TimedOut) at once for a descriptor
    /// the program made non-blocking (it gets EAGAIN, as natively).
    pub fn wait(&mut self, dir: Direction) -> Result<(), NotReady> {
        self.wait_with(dir, self.entry.program_flags(self.fd))
    }

    /// [`wait`](GreenFd::wait) with the program's flags just read.
    fn wait_with(&mut self, dir: Direction, flags: ProgramFlags) -> Result<(), NotReady> {
        if flags.nonblocking() {
            return Err(NotReady::TimedOut);
        }
        if self.hub.in_vfork_child() {
            // Its parent's hub waits for it: the real call blocks only this child.
            return Err(NotReady::Elsewhere);
        }
        let fd = self.fd;
        let deadline = *self.deadline.get_or_insert_with(|| {
            let timeout = flags.timeout_ns(fd, dir);
            (timeout > 0).then(|| now_ns().saturating_add(timeout))
        });
        wait_fd(self, dir, deadline)
    }
}

/// [`Hub::current`] out of line: inlined, the compiler may compute the thread-local's address
/// (the `__tls_get_addr` call) before the test of the hub the caller already had.
#[inline(never)]
fn current_hub() -> Option<&'static Hub> {
    Hub::current()
}

impl Entry {
    /// An error a blocking write met after moving some bytes, which the kernel reports on the
    /// next call on the socket (see `write_all`): taken by whatever call comes next, green or
    /// not.
    #[inline]
    fn take_pending(&self) -> Option<c_int> {
        use core::sync::atomic::Ordering;
        if self.pending_error.load(Ordering::Relaxed) == 0 {
            return None;
        }
        Some(self.pending_error.swap(0, Ordering::AcqRel)).filter(|&code| code != 0)
    }
}

/// A blocking stream write returns only when everything is sent (or an error or timeout
/// stops it: then the count so far, or the error when nothing was sent; a step that sends
/// nothing — `sendfile` at the end of its source — ends it too). `attempt(done, blocking)`
/// sends from offset `done`, without blocking unless `blocking`; on a socket, a step after
/// progress must not raise SIGPIPE (`MSG_NOSIGNAL`): the kernel's own blocking write returns
/// the count instead.
pub fn write_all(
    green: &mut GreenFd,
    total: usize,
    mut attempt: impl FnMut(usize, bool) -> ssize_t,
) -> Outcome<ssize_t> {
    let mut done = 0usize;
    while done < total {
        match green.retry(Direction::Write, || attempt(done, false)) {
            Done(0) => break,
            Done(n) => done += n as usize,
            Errno(code) if done == 0 => return Errno(code),
            Errno(code) => {
                // The kernel returns the count moved and reports a one-shot socket error (a
                // reset) on the next call; a timeout, a broken pipe or a closed descriptor is
                // found again by that call itself.
                if !matches!(code, libc::EAGAIN | libc::EPIPE | libc::EINTR | libc::EBADF) {
                    green
                        .entry
                        .pending_error
                        .store(code, core::sync::atomic::Ordering::Release);
                }
                break;
            }
            Bypass if done == 0 => return Bypass,
            Bypass => {
                // Unwatchable mid-way: the rest with real blocking calls.
                while done < total {
                    let n = attempt(done, true);
                    if n <= 0 {
                        break;
                    }
                    done += n as usize;
                }
                break;
            }
        }
    }
    Done(done as ssize_t)
}

/// Sets O_NONBLOCK on the open file description for one call that has no per-call flag
/// (`connect`, `accept`, `sendfile`), then puts the program's flags back.
pub fn with_nonblocking<T>(fd: c_int, call: impl FnOnce() -> T) -> T {
    // With several hubs two OS threads may toggle one descriptor at once: one would see the
    // other's O_NONBLOCK, take it for the program's, and make its call after the other had put
    // the flag back, blocking its whole hub (two hubs' acceptors on one listening socket did).
    // The call is non-blocking while the lock is held.
    static TOGGLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time =
        crate::hub::Hub::several().then(|| TOGGLING.lock().unwrap_or_else(|e| e.into_inner()));
    let fcntl = crate::real::variadic().fcntl;
    // SAFETY: F_GETFL/F_SETFL on a descriptor the caller is using.
    let flags = unsafe { fcntl(fd, libc::F_GETFL) };
    if flags < 0 || flags & libc::O_NONBLOCK != 0 {
        return call();
    }
    // SAFETY: as above.
    unsafe { fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) };
    let result = call();
    let saved = errno();
    // SAFETY: as above.
    unsafe { fcntl(fd, libc::F_SETFL, flags) };
    crate::sys::set_errno(saved);
    result
}

/// After some bytes of a blocking stream write went out, the kernel's own call returns the
/// count rather than raising SIGPIPE: so must our further steps.
#[inline]
pub fn quiet_after(done: usize) -> c_int {
    if done > 0 { libc::MSG_NOSIGNAL } else { 0 }
}

/// One step of a vectored write (`writev`, `sendmsg`) given to [`write_all`], from byte `done`:
/// the whole vector first (`whole()`); after a partial write, the rest of the segment where it
/// stopped (`rest(at, len)`), one segment per step; 0 past the end.
///
/// # Safety
/// `iov` holds `count` readable iovecs.
#[inline]
pub unsafe fn vectored_step(
    iov: *const iovec,
    count: usize,
    done: usize,
    whole: impl FnOnce() -> ssize_t,
    rest: impl FnOnce(*mut c_void, usize) -> ssize_t,
) -> ssize_t {
    if done == 0 {
        return whole();
    }
    // SAFETY: per our contract.
    let Some((i, off)) = (unsafe { iov_at(iov, count, done) }) else {
        return 0;
    };
    // SAFETY: segment i exists (iov_at found it) and `off` lies inside it.
    let (at, len) = unsafe {
        let seg = &*iov.add(i);
        (seg.iov_base.cast::<u8>().add(off).cast(), seg.iov_len - off)
    };
    rest(at, len)
}

/// The byte `done` bytes into an iovec array: (segment, offset in it), or None past the end.
///
/// # Safety
/// `iov` holds `count` readable iovecs.
unsafe fn iov_at(iov: *const iovec, count: usize, mut done: usize) -> Option<(usize, usize)> {
    for i in 0..count {
        // SAFETY: i < count.
        let seg = unsafe { &*iov.add(i) };
        if done < seg.iov_len {
            return Some((i, done));
        }
        done -= seg.iov_len;
    }
    None
}

/// Total bytes of an iovec array.
///
/// # Safety
/// `iov` holds `count` readable iovecs.
pub unsafe fn iov_len(iov: *const iovec, count: usize) -> usize {
    // SAFETY: per our contract.
    (0..count)
        .map(|i| unsafe { (*iov.add(i)).iov_len })
        .fold(0usize, usize::saturating_add)
}
