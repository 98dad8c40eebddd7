//! The `os` subsystem (eventlet's `os=`): pipes and FIFOs, and the descriptor calls every file
//! goes through — `read`/`write`/`readv`/`writev` park green on a socket (when `socket` is
//! patched) or a pipe (when `os` is), go to the thread pool on a regular file or block device
//! with `GREENWORLD_FILEIO=pool` ([`fileio`]), and stay plain libc on terminals and other
//! devices. `close`, `dup*`, `fcntl`, `ioctl`, the calls that make descriptors and the raw
//! `syscall()` ([`syscall`]) keep the fd table true.

mod fork;
pub mod sigwait;
pub mod syscall;
pub mod system;
pub mod wait;

pub use fork::{in_vfork_child, watch_forks};

use crate::fd::io::{GreenFd, iov_len, quiet_after, vectored_step, write_all};
use crate::fd::wait::Direction;
use crate::fd::{self, Kind};
use crate::fileio;
use crate::hub::Hub;
use crate::outcome::Outcome::{self, Bypass, Done};
use crate::own_fd;
use crate::real;
use crate::signal::plain::SocketWait::{self, Input, Output};
use libc::{MSG_DONTWAIT, RWF_NOWAIT, c_int, c_void, iovec, msghdr, size_t, ssize_t};

/// `pipe` and `pipe2`.
///
/// # Safety
/// As `pipe2(2)`.
pub unsafe fn pipe(fds: *mut c_int, flags: Option<c_int>) -> Outcome<c_int> {
    let real = real::get();
    // SAFETY: the caller's arguments, to the real function.
    let rc = unsafe {
        match flags {
            Some(flags) => (real.pipe2)(fds, flags),
            None => (real.pipe)(fds),
        }
    };
    if rc == 0 {
        // SAFETY: the successful call wrote two descriptors.
        let (r, w) = unsafe { (*fds, *fds.add(1)) };
        fd::born(r, Kind::Pipe);
        fd::born(w, Kind::Pipe);
        fd::pair(w, r);
    }
    Done(rc)
}

/// What a call's green part did; when it passed (`Bypass`: the descriptor is not a green one,
/// or no longer is: a regular file cached as a socket), `real` (the real function with the
/// caller's arguments) on the pool for a regular file ([`fileio::on_fd`]), else `Bypass`: libc.
/// Inlined into the out-of-line half of each read and write, which [`plain_first`] calls for
/// a descriptor the fd table does not know to be plain.
#[inline(always)]
fn green_or_plain(
    fd: c_int,
    green: Outcome<ssize_t>,
    real: impl FnOnce() -> ssize_t + Send,
) -> Outcome<ssize_t> {
    match green {
        Bypass => fileio::on_fd(fd, real),
        outcome => outcome,
    }
}

/// What the export makes of an `Outcome` (see `abi::shims`), for an out-of-line half that
/// answers the C call itself: its value, `real` (the real function), or -1 with errno.
#[inline(always)]
fn answer(outcome: Outcome<ssize_t>, real: impl FnOnce() -> ssize_t) -> ssize_t {
    match outcome {
        Done(n) => n,
        Bypass => real(),
        Outcome::Errno(code) => {
            crate::sys::set_errno(code);
            -1
        }
    }
}

/// A plain call on a socket, made again when only the library's signal cut it short (a socket
/// with a timeout: see `signal::plain::socket_restarting`).
#[inline(always)]
fn plain_socket(fd: c_int, wait: SocketWait, call: impl FnMut() -> ssize_t) -> ssize_t {
    crate::signal::plain::socket_restarting(fd, wait, call)
}

/// The plain read or write of `fd`: as [`plain_socket`] for a socket, else the call alone (a
/// pipe's or a terminal's is restarted by the kernel after the library's handler).
#[inline(always)]
fn plain_on(fd: c_int, asked: Asked, wait: SocketWait, call: impl FnMut() -> ssize_t) -> ssize_t {
    if asked.kind().is_socket() {
        plain_socket(fd, wait, call)
    } else {
        let mut call = call;
        call()
    }
}

/// A plain call on `fd` that the op left to libc (`readv`, `writev`): as [`plain_socket`] when
/// the fd table knows a socket, else the call alone.
#[inline(always)]
pub fn plain_if_socket(fd: c_int, wait: SocketWait, mut call: impl FnMut() -> ssize_t) -> ssize_t {
    if fd::cached(fd).1.is_socket() {
        plain_socket(fd, wait, call)
    } else {
        call()
    }
}

/// Every read and write asks first whether the fd table already knows the descriptor to be a
/// plain one now ([`fd::known`]: a device, a regular file without the pool, a pipe with `os`
/// off): then libc, before anything else, and the descriptor's byte in [`crate::plain_fds`] is
/// set when it may be (the exports then jump to libc without coming here); else `rest`, out of
/// line (the plain call's path keeps no frame for what the green one needs), with what the
/// table said and the hub the shim's safe point already looked up (`hub`: each look is a
/// `__tls_get_addr` call).
#[inline(always)]
fn plain_first(
    fd: c_int,
    hub: Option<&'static Hub>,
    rest: impl FnOnce(fd::Known) -> Outcome<ssize_t>,
) -> Outcome<ssize_t> {
    let (entry, kind) = fd::cached(fd);
    if fd::plain_now(kind) {
        // The next call on it need not come here at all (the exports' routers).
        if crate::plain_fds::markable(fd) {
            crate::plain_fds::mark(fd, || fd::plain_now(fd::cached(fd).1));
        }
        return Bypass;
    }
    rest(fd::Known { entry, kind, hub })
}

/// `read` (and glibc's fortified `__read_chk` once its check passed).
///
/// # Safety
/// As `read(2)`.
#[inline(always)]
pub unsafe fn read(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    hub: Option<&'static Hub>,
) -> Outcome<ssize_t> {
    if len == 0 {
        return Bypass; // an empty read returns at once, whatever the file
    }
    plain_first(fd, hub, |known| {
        let fd::Known { entry, kind, hub } = known;
        let asked = Asked::new(kind, false);
        // SAFETY: per our contract.
        Done(unsafe { read_not_plain(fd, buf, len, entry, asked, hub) })
    })
}

/// What the out-of-line half of a read or write is asked: the descriptor's cached kind, and
/// whether the C call is `recv`/`send` with no flags rather than `read`/`write` (the real
/// function it makes when the descriptor is not a green one). Two bytes, one argument
/// register: every argument of the half is in a register, so the export jumps to it last.
#[derive(Clone, Copy)]
struct Asked(u16);

impl Asked {
    /// (Two fields would be two arguments: one more than the registers hold.)
    #[inline(always)]
    fn new(kind: Kind, socket_call: bool) -> Asked {
        Asked(kind as u16 | u16::from(socket_call) << 8)
    }

    #[inline(always)]
    fn kind(self) -> Kind {
        // SAFETY: the low byte is a `Kind`'s (`new`), whose representation is u8.
        unsafe { core::mem::transmute::<u8, Kind>(self.0 as u8) }
    }

    #[inline(always)]
    fn socket_call(self) -> bool {
        self.0 >> 8 != 0
    }
}

/// [`read`] of a descriptor not known to be plain, with what [`plain_first`] knew of it (as
/// separate arguments, and its answer the C one: all in registers, so the export calls it last
/// and keeps nothing across the call); also `recv` with no flags ([`recv_as_read`]).
///
/// # Safety
/// As [`read`].
#[inline(never)]
unsafe fn read_not_plain(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    entry: Option<&'static fd::Entry>,
    asked: Asked,
    hub: Option<&'static Hub>,
) -> ssize_t {
    let known = fd::Known {
        entry,
        kind: asked.kind(),
        hub,
    };
    let at = buf as usize; // the caller waits while a pool thread reads into it
    // SAFETY: per our contract.
    let outcome = match unsafe { green_read(fd, buf, len, known) } {
        Bypass if asked.socket_call() => {
            return plain_socket(fd, Input, || {
                // SAFETY: the caller's arguments, to the real function.
                unsafe { (real::get().recv)(fd, buf, len, 0) }
            });
        }
        // SAFETY: as above.
        green => green_or_plain(fd, green, move || unsafe {
            (real::get().read)(fd, at as *mut c_void, len)
        }),
    };
    answer(outcome, || {
        plain_on(fd, asked, Input, || {
            // SAFETY: the caller's arguments, to the real function.
            unsafe { (real::get().read)(fd, buf, len) }
        })
    })
}

/// `recv(fd, buf, len, 0)` of a descriptor the fd table knows to be a socket (`known`): what
/// its `read` does, the table's knowledge of its emptiness included (`GreenFd::read`: a socket
/// known to be empty parks before it tries); the real `recv` where that is libc. The C answer.
///
/// # Safety
/// As `recv(2)`; `len` is not 0.
pub unsafe fn recv_as_read(fd: c_int, buf: *mut c_void, len: size_t, known: fd::Known) -> ssize_t {
    let fd::Known { entry, kind, hub } = known;
    let asked = Asked::new(kind, true);
    // SAFETY: per our contract.
    unsafe { read_not_plain(fd, buf, len, entry, asked, hub) }
}

/// The green part of [`read`]: Bypass when the descriptor is not a green one.
///
/// # Safety
/// As `read(2)`.
unsafe fn green_read(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    known: fd::Known,
) -> Outcome<ssize_t> {
    let real = real::get();
    let mut green = match GreenFd::admit(fd, known) {
        Ok(admitted) => GreenFd::new(fd, admitted),
        Err(outcome) => return outcome,
    };
    if green.kind.is_socket() {
        // SAFETY: the caller's buffer.
        return green.read(len, || unsafe { (real.recv)(fd, buf, len, MSG_DONTWAIT) });
    }
    let iov = iovec {
        iov_base: buf,
        iov_len: len,
    };
    // SAFETY: one iovec over the caller's buffer; offset -1 reads at the current position.
    green.read(len, || unsafe { pipe_readv(fd, &iov, 1) })
}

/// A pipe read that does not block: `RWF_NOWAIT`; where the kernel refuses that flag (a FIFO
/// opened by name), the plain read, made only when `poll` says it will not block (data, or no
/// writer left). -1 with EAGAIN otherwise, as a non-blocking read.
///
/// # Safety
/// As `readv(2)`.
unsafe fn pipe_readv(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t {
    // SAFETY: the caller's vector; offset -1 reads at the current position.
    let n = unsafe { libc::preadv2(fd, iov, count, -1, RWF_NOWAIT) };
    if n >= 0 || crate::sys::errno() != libc::EOPNOTSUPP {
        return n;
    }
    // Another hub's reader must not take the data between the look and the read.
    crate::fd::with_call_lock(fd, || {
        if !ready_now(fd, libc::POLLIN) {
            crate::sys::set_errno(libc::EAGAIN);
            return -1;
        }
        // SAFETY: as above.
        unsafe { (real::get().readv)(fd, iov, count) }
    })
}

/// A pipe write that does not block: `RWF_NOWAIT`; where the kernel refuses that flag, the
/// plain write of no more than the pipe has room for (all of a write of at most PIPE_BUF
/// bytes, which must stay atomic, or nothing: -1 with EAGAIN, as a non-blocking write).
///
/// # Safety
/// As `writev(2)`.
unsafe fn pipe_writev(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t {
    // SAFETY: the caller's vector; offset -1 writes at the current position.
    let n = unsafe { libc::pwritev2(fd, iov, count, -1, RWF_NOWAIT) };
    if n >= 0 || crate::sys::errno() != libc::EOPNOTSUPP {
        return n;
    }
    // Another hub's writer must not fill the room between the look and the write.
    crate::fd::with_call_lock(fd, || {
        // SAFETY: per our contract.
        unsafe { fifo_writev(fd, iov, count) }
    })
}

/// [`pipe_writev`] where the kernel refuses `RWF_NOWAIT`, with the descriptor's call lock held.
///
/// # Safety
/// As `writev(2)`.
unsafe fn fifo_writev(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t {
    // SAFETY: the caller's vector.
    let len = unsafe { iov_len(iov, count as usize) };
    let fcntl = real::variadic().fcntl;
    let mut held: c_int = 0;
    // SAFETY: F_GETPIPE_SZ takes no argument; FIONREAD writes one int (the real calls).
    let (size, rc) = unsafe {
        (
            fcntl(fd, libc::F_GETPIPE_SZ),
            (real::variadic().ioctl)(fd, libc::FIONREAD, &raw mut held),
        )
    };
    let room = if size > 0 && rc == 0 {
        (size - held).max(0) as usize
    } else {
        0
    };
    let needed = if len <= libc::PIPE_BUF { len } else { 1 };
    if room < needed || !ready_now(fd, libc::POLLOUT) {
        crate::sys::set_errno(libc::EAGAIN);
        return -1;
    }
    // SAFETY: the caller's vector: whole when it fits (atomic, as natively), else its first
    // segment cut to what fits.
    unsafe {
        if room >= len {
            (real::get().writev)(fd, iov, count)
        } else {
            (real::get().write)(fd, (*iov).iov_base, room.min((*iov).iov_len))
        }
    }
}

/// Would a call waiting for `events` on `fd` return at once?
pub(crate) fn ready_now(fd: c_int, events: libc::c_short) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no waiting (the real poll).
    unsafe { (real::get().poll)(&mut pfd, 1, 0) > 0 }
}

/// `readv`.
///
/// # Safety
/// As `readv(2)`.
#[inline(always)]
pub unsafe fn readv(
    fd: c_int,
    iov: *const iovec,
    count: c_int,
    hub: Option<&'static Hub>,
) -> Outcome<ssize_t> {
    // SAFETY: per our contract.
    plain_first(fd, hub, |known| unsafe {
        readv_not_plain(fd, iov, count, known)
    })
}

/// [`readv`] of a descriptor not known to be plain.
///
/// # Safety
/// As [`readv`].
#[inline(never)]
unsafe fn readv_not_plain(
    fd: c_int,
    iov: *const iovec,
    count: c_int,
    known: fd::Known,
) -> Outcome<ssize_t> {
    let vec = iov as usize; // the caller waits while a pool thread reads into it
    // SAFETY: per our contract; the caller's arguments, to the real function.
    unsafe {
        green_or_plain(fd, green_readv(fd, iov, count, known), move || {
            (real::get().readv)(fd, vec as *const iovec, count)
        })
    }
}

/// The green part of [`readv`]: Bypass when the descriptor is not a green one.
///
/// # Safety
/// As `readv(2)`.
unsafe fn green_readv(
    fd: c_int,
    iov: *const iovec,
    count: c_int,
    known: fd::Known,
) -> Outcome<ssize_t> {
    // SAFETY: the caller's vector (a negative count goes to libc).
    if count < 0 || unsafe { iov_len(iov, count as usize) } == 0 {
        return Bypass; // an empty read returns at once, whatever the file
    }
    let mut green = match GreenFd::admit(fd, known) {
        Ok(admitted) => GreenFd::new(fd, admitted),
        Err(outcome) => return outcome,
    };
    if green.kind.is_socket() {
        // SAFETY: a message over the caller's vector, nothing else.
        let mut msg: msghdr = unsafe { core::mem::zeroed() };
        msg.msg_iov = iov.cast_mut();
        msg.msg_iovlen = count as usize;
        // SAFETY: as above.
        return green.retry(Direction::Read, || unsafe {
            (real::get().recvmsg)(fd, &mut msg, MSG_DONTWAIT)
        });
    }
    // SAFETY: the caller's vector.
    green.retry(Direction::Read, || unsafe { pipe_readv(fd, iov, count) })
}

/// `write`: a blocking write to a stream socket or a pipe returns when every byte is written
/// (a pipe write of at most PIPE_BUF bytes stays atomic: RWF_NOWAIT refuses it until it fits).
///
/// # Safety
/// As `write(2)`.
#[inline(always)]
pub unsafe fn write(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    hub: Option<&'static Hub>,
) -> Outcome<ssize_t> {
    plain_first(fd, hub, |known| {
        let fd::Known { entry, kind, hub } = known;
        let asked = Asked::new(kind, false);
        // SAFETY: per our contract.
        Done(unsafe { write_not_plain(fd, buf, len, entry, asked, hub) })
    })
}

/// [`write`] of a descriptor not known to be plain (as [`read_not_plain`]); also `send` with
/// no flags ([`send_as_write`]).
///
/// # Safety
/// As [`write`].
#[inline(never)]
unsafe fn write_not_plain(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    entry: Option<&'static fd::Entry>,
    asked: Asked,
    hub: Option<&'static Hub>,
) -> ssize_t {
    let known = fd::Known {
        entry,
        kind: asked.kind(),
        hub,
    };
    let at = buf as usize; // the caller waits while a pool thread writes from it
    // SAFETY: per our contract.
    let outcome = match unsafe { green_write(fd, buf, len, known) } {
        Bypass if asked.socket_call() => {
            return plain_socket(fd, Output, || {
                // SAFETY: the caller's arguments, to the real function.
                unsafe { (real::get().send)(fd, buf, len, 0) }
            });
        }
        // SAFETY: as above.
        green => green_or_plain(fd, green, move || unsafe {
            (real::get().write)(fd, at as *const c_void, len)
        }),
    };
    answer(outcome, || {
        plain_on(fd, asked, Output, || {
            // SAFETY: the caller's arguments, to the real function.
            unsafe { (real::get().write)(fd, buf, len) }
        })
    })
}

/// `send(fd, buf, len, 0)` of a descriptor the fd table knows to be a socket (`known`): what
/// its `write` does, the in-process peer's direct wake and count of unread bytes included
/// (`Entry::wrote`); the real `send` where that is libc. The C answer.
///
/// # Safety
/// As `send(2)`.
pub unsafe fn send_as_write(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    known: fd::Known,
) -> ssize_t {
    let fd::Known { entry, kind, hub } = known;
    let asked = Asked::new(kind, true);
    // SAFETY: per our contract.
    unsafe { write_not_plain(fd, buf, len, entry, asked, hub) }
}

/// The green part of [`write`]: Bypass when the descriptor is not a green one.
///
/// # Safety
/// As `write(2)`.
unsafe fn green_write(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    known: fd::Known,
) -> Outcome<ssize_t> {
    let mut green = match GreenFd::admit(fd, known) {
        Ok(admitted) => GreenFd::new(fd, admitted),
        Err(outcome) => return outcome,
    };
    let socket = green.kind.is_socket();
    // SAFETY: within the caller's buffer: `done` never exceeds `len`.
    let attempt = |done: usize, blocking: bool| unsafe {
        write_step(
            fd,
            socket,
            blocking,
            done,
            buf.cast::<u8>().add(done).cast(),
            len - done,
        )
    };
    if green.kind == Kind::DatagramSocket || len == 0 {
        return green.retry(Direction::Write, || attempt(0, false));
    }
    let written = write_all(&mut green, len, attempt);
    if let Done(n @ 1..) = written {
        green.entry.wrote(n as usize);
    }
    written
}

/// One try of a `write`/`writev` step: `len` bytes from `at`, `done` bytes into the call;
/// without blocking (a socket's send, a pipe's [`pipe_writev`]) unless `blocking`.
///
/// # Safety
/// `at` is readable for `len` bytes.
#[inline(always)]
unsafe fn write_step(
    fd: c_int,
    socket: bool,
    blocking: bool,
    done: usize,
    at: *const c_void,
    len: usize,
) -> ssize_t {
    let real = real::get();
    // SAFETY: per our contract.
    unsafe {
        match (socket, blocking) {
            (true, false) => (real.send)(fd, at, len, MSG_DONTWAIT | quiet_after(done)),
            (false, false) => pipe_writev(
                fd,
                &iovec {
                    iov_base: at.cast_mut(),
                    iov_len: len,
                },
                1,
            ),
            (_, true) => (real.write)(fd, at, len),
        }
    }
}

/// `writev`: as `write`, over a vector; after a partial write the rest goes segment by segment.
///
/// # Safety
/// As `writev(2)`.
#[inline(always)]
pub unsafe fn writev(
    fd: c_int,
    iov: *const iovec,
    count: c_int,
    hub: Option<&'static Hub>,
) -> Outcome<ssize_t> {
    // SAFETY: per our contract.
    plain_first(fd, hub, |known| unsafe {
        writev_not_plain(fd, iov, count, known)
    })
}

/// [`writev`] of a descriptor not known to be plain.
///
/// # Safety
/// As [`writev`].
#[inline(never)]
unsafe fn writev_not_plain(
    fd: c_int,
    iov: *const iovec,
    count: c_int,
    known: fd::Known,
) -> Outcome<ssize_t> {
    let vec = iov as usize; // the caller waits while a pool thread writes from it
    // SAFETY: per our contract; the caller's arguments, to the real function.
    unsafe {
        green_or_plain(fd, green_writev(fd, iov, count, known), move || {
            (real::get().writev)(fd, vec as *const iovec, count)
        })
    }
}

/// The green part of [`writev`]: Bypass when the descriptor is not a green one.
///
/// # Safety
/// As `writev(2)`.
unsafe fn green_writev(
    fd: c_int,
    iov: *const iovec,
    count: c_int,
    known: fd::Known,
) -> Outcome<ssize_t> {
    let real = real::get();
    let mut green = match GreenFd::admit(fd, known) {
        Ok(admitted) => GreenFd::new(fd, admitted),
        Err(outcome) => return outcome,
    };
    if count < 0 {
        return Bypass;
    }
    let socket = green.kind.is_socket();
    let count_usize = count as usize;
    // SAFETY: the caller's vector.
    let total = unsafe { iov_len(iov, count_usize) };
    let attempt = |done: usize, blocking: bool| {
        // SAFETY: the caller's vector, whole or from inside one of its segments.
        unsafe {
            vectored_step(
                iov,
                count_usize,
                done,
                || match (socket, blocking) {
                    (true, false) => {
                        let mut msg: msghdr = core::mem::zeroed();
                        msg.msg_iov = iov.cast_mut();
                        msg.msg_iovlen = count_usize;
                        (real.sendmsg)(fd, &msg, MSG_DONTWAIT)
                    }
                    (false, false) => pipe_writev(fd, iov, count),
                    (_, true) => (real.writev)(fd, iov, count),
                },
                |at, left| write_step(fd, socket, blocking, done, at, left),
            )
        }
    };
    if green.kind == Kind::DatagramSocket || total == 0 {
        return green.retry(Direction::Write, || attempt(0, false));
    }
    write_all(&mut green, total, attempt)
}

/// `close`: the descriptor is forgotten (and its waiters woken with EBADF) before it goes. One
/// of the library's own is not the program's to close: EBADF, as for a number never opened.
pub fn close(fd: c_int) -> Outcome<c_int> {
    if own_fd::is_own(fd) {
        return Outcome::Errno(libc::EBADF);
    }
    fd::forget(fd);
    Bypass
}

/// A call that makes a descriptor returned `fd` (-1: failed, errno set).
pub fn made_fd(fd: c_int) -> Outcome<c_int> {
    if fd >= 0 {
        let saved = crate::sys::errno();
        fd::born(fd, Kind::Unknown);
        crate::sys::set_errno(saved);
    }
    Done(fd)
}

/// `dup` and `fcntl(F_DUPFD*)` made `new` (-1: failed): the number's old state is stale.
pub fn duplicated(new: c_int) {
    if new >= 0 {
        fd::born(new, Kind::Unknown);
    }
}

/// `dup2`/`dup3` (`real`, or its raw system call) of `old` over `new`: `new`'s descriptor is
/// closed by the call (forgotten first, so that its waiters wake and its epoll interest goes
/// with it), and a new one is born under its number.
pub fn replace(old: c_int, new: c_int, real: impl FnOnce() -> c_int) -> c_int {
    if old == new {
        return real();
    }
    fd::forget(new);
    let rc = real();
    if rc >= 0 {
        let saved = crate::sys::errno();
        fd::born(new, Kind::Unknown);
        crate::sys::set_errno(saved);
    }
    rc
}

/// `fcntl`/`fcntl64`/`ioctl` commands that change what green I/O must know.
pub fn after_control(fd_result: c_int, changes_flags: bool, duplicates: bool) {
    if changes_flags {
        fd::flags_changed();
    }
    if duplicates {
        duplicated(fd_result);
    }
}

/// `fclose`: its close is glibc-internal, which no hook sees; forget the descriptor first.
///
/// # Safety
/// `stream` is an open FILE.
pub unsafe fn fclose(stream: *mut libc::FILE) -> Outcome<c_int> {
    // SAFETY: an open FILE (caller); fileno does not close it.
    let fd = unsafe { libc::fileno(stream) };
    if fd >= 0 {
        fd::forget(fd);
    }
    Bypass
}

/// `pclose`: glibc waits for the child with its internal `waitpid`, which no hook sees, so a
/// pool thread makes the whole call (after the pipe is forgotten) while the green thread parks;
/// it never returns EINTR natively (glibc retries its wait).
///
/// # Safety
/// `stream` is a FILE from `popen`.
pub unsafe fn pclose(stream: *mut libc::FILE) -> Outcome<c_int> {
    // SAFETY: an open FILE (caller).
    let _ = unsafe { fclose(stream) };
    if !crate::patch::active(crate::patch::Subsystem::Os) {
        return Bypass;
    }
    let stream = stream as usize;
    // SAFETY: the caller's FILE, closed once, by the real pclose.
    crate::tpool::run_syscall(crate::stats::ParkReason::Pool, move || unsafe {
        (real::get().pclose)(stream as *mut libc::FILE)
    })
}

/// `close_range`: every descriptor in the range is forgotten first (with CLOSE_RANGE_CLOEXEC
/// none is closed now); the library's own are passed over (the range is closed around them).
pub fn close_range(first: libc::c_uint, last: libc::c_uint, flags: c_int) -> Outcome<c_int> {
    if flags as libc::c_uint & libc::CLOSE_RANGE_CLOEXEC != 0 {
        return Bypass; // ours are close-on-exec already
    }
    forget_range(first, last);
    let real = real::get().close_range;
    // SAFETY: the caller's range, less our own descriptors.
    around_own(first, last, |from, to| unsafe { real(from, to, flags) })
}

/// `closefrom`: as `close_range(first, ~0U, 0)`, which it is in glibc (and never fails: where
/// `close_range` is missing, the gaps are closed one by one).
pub fn closefrom(first: c_int) -> Outcome<()> {
    let Ok(first) = libc::c_uint::try_from(first) else {
        return Bypass;
    };
    forget_range(first, libc::c_uint::MAX);
    let real = real::get();
    let close_gap = |from: libc::c_uint, to: libc::c_uint| {
        // SAFETY: descriptors of the program's, in the range it asked to close.
        if unsafe { (real.close_range)(from, to, 0) } < 0 {
            for fd in from..=to.min(own_fd::floor() as libc::c_uint + 1024) {
                // SAFETY: as above.
                unsafe { crate::sys::syscall!(libc::SYS_close, fd) };
            }
        }
        0
    };
    match around_own(first, libc::c_uint::MAX, close_gap) {
        Done(_) => Done(()),
        _ => Bypass,
    }
}

fn forget_range(first: libc::c_uint, last: libc::c_uint) {
    let end = last.min(fd::MAX_FDS as libc::c_uint - 1);
    for fd in first..=end {
        if fd::is_known(fd as c_int) {
            fd::forget(fd as c_int);
        }
    }
}

/// Runs `close(from, to)` over the gaps of `first..=last` between the library's descriptors;
/// Bypass when none of them is in the range (the real call does it all).
fn around_own(
    first: libc::c_uint,
    last: libc::c_uint,
    close: impl Fn(libc::c_uint, libc::c_uint) -> c_int,
) -> Outcome<c_int> {
    let as_fd = |n: libc::c_uint| n.min(c_int::MAX as libc::c_uint) as c_int;
    let mut own = own_fd::own_in(as_fd(first), as_fd(last)).peekable();
    if first > last || own.peek().is_none() {
        return Bypass;
    }
    let mut from = first;
    for ours in own {
        let ours = ours as libc::c_uint;
        if ours > from {
            let rc = close(from, ours - 1);
            if rc < 0 {
                return Done(rc);
            }
        }
        from = ours + 1;
    }
    if from != 0 && from <= last {
        return Done(close(from, last));
    }
    Done(0)
}
