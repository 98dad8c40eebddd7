//! The `socket` subsystem (eventlet's `socket=`): blocking socket calls park the calling green
//! thread until the socket is ready, with the results and errno glibc would give. Calls the
//! program made non-blocking (`MSG_DONTWAIT`, O_NONBLOCK) go straight to libc.

use crate::fd::io::{GreenFd, iov_len, quiet_after, vectored_step, with_nonblocking, write_all};
use crate::fd::socket::{forget_received_fds, sets_timeout};
use crate::fd::wait::Direction;
use crate::fd::{self, Kind};
use crate::outcome::Outcome::{self, Bypass, Done, Errno};
use crate::real;
use crate::signal::plain::SocketWait;
use crate::sys::errno;
use libc::{
    EAGAIN, EINPROGRESS, MSG_DONTWAIT, MSG_PEEK, MSG_WAITALL, MSG_WAITFORONE, c_int, c_uint,
    c_void, mmsghdr, msghdr, off_t, size_t, sockaddr, socklen_t, ssize_t, timespec,
};

/// `socket`.
///
/// # Safety
/// As `socket(2)`.
pub unsafe fn socket(domain: c_int, ty: c_int, protocol: c_int) -> Outcome<c_int> {
    // SAFETY: the caller's arguments, to the real function.
    let fd = unsafe { (real::get().socket)(domain, ty, protocol) };
    if fd >= 0 {
        fd::born(fd, Kind::of_socket_type(ty));
    }
    Done(fd)
}

/// `socketpair`.
///
/// # Safety
/// As `socketpair(2)`.
pub unsafe fn socketpair(
    domain: c_int,
    ty: c_int,
    protocol: c_int,
    sv: *mut c_int,
) -> Outcome<c_int> {
    // SAFETY: the caller's arguments, to the real function; sv holds two ints on success.
    let rc = unsafe { (real::get().socketpair)(domain, ty, protocol, sv) };
    if rc == 0 {
        // SAFETY: written by the successful call.
        let (a, b) = unsafe { (*sv, *sv.add(1)) };
        fd::born(a, Kind::of_socket_type(ty));
        fd::born(b, Kind::of_socket_type(ty));
        if Kind::of_socket_type(ty) == Kind::StreamSocket {
            fd::pair(a, b);
            fd::pair(b, a);
        }
    }
    Done(rc)
}

/// `connect` on a blocking socket: started without blocking, then the green thread waits for
/// the socket to become writable and reports `SO_ERROR`, as the kernel's blocking connect
/// does. A socket timeout (SO_SNDTIMEO) ends the wait with EINPROGRESS, as natively.
///
/// # Safety
/// As `connect(2)`.
pub unsafe fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> Outcome<c_int> {
    let Some(mut green) = GreenFd::socket(fd) else {
        return Bypass;
    };
    if green.program_nonblocking() {
        return Bypass;
    }
    loop {
        // SAFETY: the caller's arguments, to the real function.
        let rc = with_nonblocking(fd, || unsafe { (real::get().connect)(fd, addr, len) });
        if rc == 0 {
            return Done(0);
        }
        match errno() {
            EINPROGRESS => break,
            // A full AF_UNIX backlog: a blocking connect waits for room; there is no event
            // for that, so retry shortly.
            EAGAIN => crate::time::nap(1_000_000),
            code => return Errno(code),
        }
    }
    match green.wait(Direction::Write) {
        Ok(()) => {}
        Err(fd::wait::NotReady::TimedOut) => return Errno(EINPROGRESS),
        Err(fd::wait::NotReady::Closed) => return Errno(libc::EBADF),
        // Interrupted: the connection goes on in the background, as natively.
        Err(fd::wait::NotReady::Interrupted) => return Errno(libc::EINTR),
        Err(fd::wait::NotReady::Unwatchable | fd::wait::NotReady::Elsewhere) => return Bypass,
    }
    let err = crate::sys::socket_int(fd, libc::SO_ERROR).unwrap_or(0);
    if err != 0 {
        return Errno(err);
    }
    // Linux keeps a socket "connecting" until connect is called again once it has connected
    // (the kernel's blocking connect does that itself): so does this one, or the program's next
    // connect would answer 0 instead of EISCONN.
    let saved = errno();
    // SAFETY: the caller's arguments, to the real function.
    with_nonblocking(fd, || unsafe { (real::get().connect)(fd, addr, len) });
    crate::sys::set_errno(saved);
    Done(0)
}

/// A plain socket call (`call`, the real function), made again while only the library's own
/// signal interrupted it (see `signal::plain::socket_restarting`).
#[inline(always)]
pub fn plain<T: crate::signal::plain::Answer>(
    fd: c_int,
    wait: SocketWait,
    call: impl FnMut() -> T,
) -> T {
    crate::signal::plain::socket_restarting(fd, wait, call)
}

/// `accept` and `accept4`.
///
/// # Safety
/// As `accept4(2)`.
pub unsafe fn accept(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> Outcome<c_int> {
    // The real call, made again after the library's own signal (a listener with SO_RCVTIMEO).
    let plain = || {
        plain(fd, SocketWait::Input, || {
            // SAFETY: the caller's arguments, to the real function.
            unsafe { (real::get().accept4)(fd, addr, len, flags) }
        })
    };
    let Some(mut green) = GreenFd::socket(fd) else {
        return finish_accept(plain(), fd);
    };
    if green.program_nonblocking() {
        return Bypass;
    }
    let outcome = green.retry(Direction::Read, || {
        // SAFETY: the caller's arguments, to the real function.
        with_nonblocking(fd, || unsafe {
            (real::get().accept4)(fd, addr, len, flags)
        }) as ssize_t
    });
    match outcome {
        Done(new) => finish_accept(new as c_int, fd),
        Errno(code) => Errno(code),
        Bypass => finish_accept(plain(), fd),
    }
}

fn finish_accept(new: c_int, listener: c_int) -> Outcome<c_int> {
    if new >= 0 {
        let kind = fd::entry(listener).map_or(Kind::StreamSocket, |e| e.kind(listener));
        fd::born(new, kind);
    }
    Done(new)
}

/// `recv`: with no flags, on a descriptor the table knows to be a socket, a `read` (as the
/// kernel has it), which knows when the socket is empty and parks without the try that would
/// only answer EAGAIN; otherwise [`recvfrom`]. `hub`: the safe point's.
///
/// # Safety
/// As `recv(2)`.
pub unsafe fn recv(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
    hub: Option<&'static crate::hub::Hub>,
) -> Outcome<ssize_t> {
    if flags == 0 && len > 0 {
        let (entry, kind) = fd::cached(fd);
        if kind.is_socket() {
            // SAFETY: per our contract; len is not 0.
            return Done(unsafe {
                crate::os::recv_as_read(fd, buf, len, fd::Known { entry, kind, hub })
            });
        }
    }
    // SAFETY: per our contract.
    unsafe {
        recvfrom(
            fd,
            buf,
            len,
            flags,
            core::ptr::null_mut(),
            core::ptr::null_mut(),
        )
    }
}

/// `recv` with flags, `recvfrom`: `MSG_WAITALL` on a stream gathers until the
/// buffer is full, EOF or an error, as the kernel does.
///
/// # Safety
/// As `recvfrom(2)`.
pub unsafe fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> Outcome<ssize_t> {
    reads_urgent(fd, flags);
    if flags & MSG_DONTWAIT != 0 {
        return Bypass;
    }
    let mut green = match GreenFd::for_call(fd, true) {
        Ok(green) => green,
        Err(outcome) => return outcome,
    };
    let real = real::get();
    // SAFETY: within the caller's buffer: `got` never exceeds `len`.
    let attempt = |got: usize, extra: c_int| unsafe {
        (real.recvfrom)(
            fd,
            buf.cast::<u8>().add(got).cast(),
            len - got,
            flags | extra,
            addr,
            alen,
        )
    };
    let gather =
        flags & MSG_WAITALL != 0 && flags & MSG_PEEK == 0 && green.kind == Kind::StreamSocket;
    if !gather {
        return green.retry(Direction::Read, || attempt(0, MSG_DONTWAIT));
    }
    let mut got = 0usize;
    while got < len {
        match green.retry(Direction::Read, || attempt(got, MSG_DONTWAIT)) {
            Done(0) => break,
            Done(n) => got += n as usize,
            Errno(code) if got == 0 => return Errno(code),
            Errno(_) => break,
            Bypass => {
                let n = attempt(got, 0);
                if n > 0 {
                    got += n as usize;
                } else if got == 0 {
                    return Done(n);
                }
                break;
            }
        }
    }
    Done(got as ssize_t)
}

/// A program that reads urgent data (`MSG_OOB`) may have taken it before its edge was seen:
/// the socket's short reads prove nothing from now on (`fd::Entry::short_read_drains`).
#[inline]
fn reads_urgent(fd: c_int, flags: c_int) {
    if flags & libc::MSG_OOB != 0
        && let Some(entry) = fd::entry(fd)
    {
        entry.distrust_short_reads();
    }
}

/// `recvmsg` (and `readv` on a socket). Descriptors received with SCM_RIGHTS are new here.
///
/// # Safety
/// As `recvmsg(2)`.
pub unsafe fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> Outcome<ssize_t> {
    reads_urgent(fd, flags);
    if flags & MSG_DONTWAIT != 0 {
        return Bypass;
    }
    let mut green = match GreenFd::for_call(fd, true) {
        Ok(green) => green,
        Err(outcome) => return outcome,
    };
    // SAFETY: the caller's arguments, to the real function.
    let outcome = green.retry(Direction::Read, || unsafe {
        (real::get().recvmsg)(fd, msg, flags | MSG_DONTWAIT)
    });
    if let Done(n) = outcome
        && n >= 0
    {
        // SAFETY: the kernel filled msg's control buffer.
        unsafe { forget_received_fds(msg) };
    }
    outcome
}

/// `recvmmsg`: blocks until `vlen` messages arrived (or one, with MSG_WAITFORONE). A call with
/// its own timeout goes to the kernel as it is.
///
/// # Safety
/// As `recvmmsg(2)`.
pub unsafe fn recvmmsg(
    fd: c_int,
    vec: *mut mmsghdr,
    vlen: c_uint,
    flags: c_int,
    timeout: *mut timespec,
) -> Outcome<c_int> {
    if flags & MSG_DONTWAIT != 0 || !timeout.is_null() || vlen == 0 {
        return Bypass;
    }
    let mut green = match GreenFd::for_call(fd, true) {
        Ok(green) => green,
        Err(outcome) => return outcome,
    };
    let first_only = flags & MSG_WAITFORONE != 0;
    batch(&mut green, Direction::Read, vlen, first_only, |done| {
        // SAFETY: the caller's vector, from the first slot not yet filled.
        unsafe {
            let rest = vec.add(done as usize);
            (real::get().recvmmsg)(
                fd,
                rest,
                vlen - done,
                flags | MSG_DONTWAIT,
                core::ptr::null_mut(),
            ) as ssize_t
        }
    })
}

/// The loop of `recvmmsg`/`sendmmsg`: repeats `attempt(done)` (which handles the messages from
/// index `done` on without blocking) until all `vlen` are done — or the first batch, when
/// `first_only`; an error after some messages ends it with their count, as the kernel does.
fn batch(
    green: &mut GreenFd,
    dir: Direction,
    vlen: c_uint,
    first_only: bool,
    mut attempt: impl FnMut(c_uint) -> ssize_t,
) -> Outcome<c_int> {
    let mut done = 0u32;
    while done < vlen {
        match green.retry(dir, || attempt(done)) {
            Done(n) => {
                done += n as u32;
                if first_only {
                    break;
                }
            }
            Errno(code) if done == 0 => return Errno(code),
            Bypass if done == 0 => return Bypass,
            Errno(_) | Bypass => break,
        }
    }
    Done(done as c_int)
}

/// `send`: with no flags, on a descriptor the table knows to be a socket, a `write` (as the
/// kernel has it), which wakes an in-process peer's reader at once and keeps its count of
/// unread bytes (so that reader may park without a try); otherwise [`sendto`]. `hub`: the safe
/// point's.
///
/// # Safety
/// As `send(2)`.
pub unsafe fn send(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    hub: Option<&'static crate::hub::Hub>,
) -> Outcome<ssize_t> {
    if flags == 0 {
        let (entry, kind) = fd::cached(fd);
        if kind.is_socket() {
            // SAFETY: per our contract.
            return Done(unsafe {
                crate::os::send_as_write(fd, buf, len, fd::Known { entry, kind, hub })
            });
        }
    }
    // SAFETY: per our contract.
    unsafe { sendto(fd, buf, len, flags, core::ptr::null(), 0) }
}

/// `send` with flags, `sendto`: on a stream, returns when every byte is sent.
///
/// # Safety
/// As `sendto(2)`.
pub unsafe fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    addr: *const sockaddr,
    alen: socklen_t,
) -> Outcome<ssize_t> {
    if flags & MSG_DONTWAIT != 0 {
        return Bypass;
    }
    let mut green = match GreenFd::for_call(fd, true) {
        Ok(green) => green,
        Err(outcome) => return outcome,
    };
    let real = real::get();
    // SAFETY: within the caller's buffer: `done` never exceeds `len`.
    let attempt = |done: usize, blocking: bool| unsafe {
        let extra = (if blocking { 0 } else { MSG_DONTWAIT }) | quiet_after(done);
        (real.sendto)(
            fd,
            buf.cast::<u8>().add(done).cast(),
            len - done,
            flags | extra,
            addr,
            alen,
        )
    };
    if green.kind == Kind::StreamSocket && len > 0 {
        write_all(&mut green, len, attempt)
    } else {
        green.retry(Direction::Write, || attempt(0, false))
    }
}

/// `sendmsg` (and `writev` on a socket): on a stream, returns when every byte is sent; after
/// a partial send the rest goes segment by segment (ancillary data travels with the first).
///
/// # Safety
/// As `sendmsg(2)`.
pub unsafe fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> Outcome<ssize_t> {
    if flags & MSG_DONTWAIT != 0 {
        return Bypass;
    }
    let mut green = match GreenFd::for_call(fd, true) {
        Ok(green) => green,
        Err(outcome) => return outcome,
    };
    let real = real::get();
    // SAFETY: msg is readable (caller).
    let (iov, count) = unsafe { ((*msg).msg_iov, (*msg).msg_iovlen) };
    // SAFETY: as above.
    let total = unsafe { iov_len(iov, count) };
    let attempt = |done: usize, blocking: bool| {
        let extra = (if blocking { 0 } else { MSG_DONTWAIT }) | quiet_after(done);
        // SAFETY: the caller's message, whole or from inside one segment of its vector.
        unsafe {
            vectored_step(
                iov,
                count,
                done,
                || (real.sendmsg)(fd, msg, flags | extra),
                |at, len| (real.send)(fd, at, len, flags | extra),
            )
        }
    };
    if green.kind == Kind::StreamSocket && total > 0 {
        write_all(&mut green, total, attempt)
    } else {
        green.retry(Direction::Write, || attempt(0, false))
    }
}

/// `sendmmsg`: blocks until every message is sent.
///
/// # Safety
/// As `sendmmsg(2)`.
pub unsafe fn sendmmsg(fd: c_int, vec: *mut mmsghdr, vlen: c_uint, flags: c_int) -> Outcome<c_int> {
    if flags & MSG_DONTWAIT != 0 || vlen == 0 {
        return Bypass;
    }
    let mut green = match GreenFd::for_call(fd, true) {
        Ok(green) => green,
        Err(outcome) => return outcome,
    };
    batch(&mut green, Direction::Write, vlen, false, |done| {
        // SAFETY: the caller's vector, from the first message not yet sent.
        unsafe {
            (real::get().sendmmsg)(
                fd,
                vec.add(done as usize),
                vlen - done,
                flags | MSG_DONTWAIT,
            ) as ssize_t
        }
    })
}

/// `sendfile` to a green socket or pipe: sends everything (or up to the end of the source), as
/// a blocking call does.
///
/// # Safety
/// As `sendfile(2)`.
pub unsafe fn sendfile(
    out: c_int,
    input: c_int,
    offset: *mut off_t,
    count: size_t,
    real_sendfile: unsafe extern "C" fn(c_int, c_int, *mut off_t, size_t) -> ssize_t,
) -> Outcome<ssize_t> {
    let Some(mut green) = GreenFd::get(out) else {
        return Bypass;
    };
    if green.program_nonblocking() || count == 0 {
        return Bypass;
    }
    write_all(&mut green, count, |done, blocking| {
        // SAFETY: the caller's arguments; the kernel advances *offset (or the file position).
        let call = || unsafe { real_sendfile(out, input, offset, count - done) };
        if blocking {
            call()
        } else {
            with_nonblocking(out, call)
        }
    })
}

/// `setsockopt`: a new SO_RCVTIMEO or SO_SNDTIMEO changes how long green calls wait.
///
/// # Safety
/// As `setsockopt(2)`.
pub unsafe fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *const c_void,
    len: socklen_t,
) -> Outcome<c_int> {
    // SAFETY: the caller's arguments, to the real function.
    let rc = unsafe { (real::get().setsockopt)(fd, level, name, value, len) };
    if rc == 0 && sets_timeout(level, name) {
        fd::flags_changed();
    }
    if rc == 0
        && level == libc::SOL_TCP
        && matches!(name, libc::TCP_ULP | libc::TCP_REPAIR)
        && let Some(entry) = fd::entry(fd)
    {
        // Kernel TLS stops a read before a control record; a socket in repair mode reads
        // its queues by other rules.
        entry.distrust_short_reads();
    }
    Done(rc)
}
