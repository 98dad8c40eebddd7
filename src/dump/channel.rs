//! `greenrun --dump PID`: the dump through an abstract unix socket, `greenworld-dump-PID`,
//! that the process's first hub opens and watches with its other descriptors (one of the
//! library's own: see `own_fd`). No signal of the program is taken, and nothing runs until a
//! reader connects; the hub that accepts prints the dump into the connection at once.
//!
//! Only a reader of the same user (or root) gets it (`SO_PEERCRED`): an abstract name is open
//! to every process of the network namespace. The reading side is the library too:
//! `greenrun --dump PID` runs a tiny program with `GREENWORLD_DUMP_OF=PID`, whose constructor
//! connects, copies the dump to stdout and exits ([`print_dump_of`]).

use super::{Out, Sink};
use crate::hub::Hub;
use crate::own_fd::OwnFd;
use libc::c_int;
use std::sync::Mutex;

/// The listening socket, once open, and the process it was opened in: a forked child opens its
/// own (its name has the child's pid) and closes its copy of the parent's.
static LISTENER: Mutex<Option<(OwnFd, c_int)>> = Mutex::new(None);

/// How long a reader waits for the dump (a hub that does not switch never answers).
const ANSWER_WITHIN_S: c_int = 5;

fn address(pid: c_int) -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_un.
    let mut addr: libc::sockaddr_un = unsafe { core::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let mut name = crate::sys::LineBuf::new();
    use core::fmt::Write;
    let _ = write!(name, "greenworld-dump-{pid}");
    // sun_path[0] stays 0: the abstract namespace (no file, gone with the process).
    for (i, &b) in name.as_bytes().iter().enumerate() {
        addr.sun_path[i + 1] = b as libc::c_char;
    }
    let len = core::mem::offset_of!(libc::sockaddr_un, sun_path) + 1 + name.as_bytes().len();
    (addr, len as libc::socklen_t)
}

fn stream_socket(flags: c_int) -> c_int {
    // SAFETY: socket has no memory arguments (raw: not through our own hook).
    unsafe {
        crate::sys::syscall!(
            libc::SYS_socket,
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | flags,
            0
        ) as c_int
    }
}

/// The hub's [`crate::hub::Owners::made`]: the first hub opens the channel.
pub fn open(hub: &'static Hub) {
    // Not waited for: a fork child may have inherited it locked by a thread it does not have.
    let Ok(mut listener) = LISTENER.try_lock() else {
        return;
    };
    let pid = crate::log::pid();
    match *listener {
        Some((_, owner)) if owner == pid => return,
        Some((inherited, _)) => {
            inherited.close();
            *listener = None;
        }
        None => {}
    }
    let fd = stream_socket(libc::SOCK_NONBLOCK);
    if fd < 0 {
        return;
    }
    let (addr, len) = address(pid);
    // SAFETY: a valid address of `len` bytes; our fresh socket.
    let bound = unsafe {
        crate::sys::syscall!(libc::SYS_bind, fd, &raw const addr, len) == 0
            && crate::sys::syscall!(libc::SYS_listen, fd, 8) == 0
    };
    if !bound {
        // SAFETY: ours, never published.
        unsafe { crate::sys::syscall!(libc::SYS_close, fd) };
        crate::log!(Debug, "no dump channel: cannot bind its socket");
        return;
    }
    let Ok(own) = crate::own_fd::adopt(fd) else {
        return;
    };
    if hub.watch_channel(own.get()).is_err() {
        own.close();
        return;
    }
    *listener = Some((own, pid));
}

/// A reader connected: each one waiting gets the dump.
pub fn serve(_hub: &Hub) {
    let Some((listener, _)) = *LISTENER.lock().unwrap_or_else(|e| e.into_inner()) else {
        return;
    };
    loop {
        // SAFETY: no address wanted; a blocking, close-on-exec connection of ours.
        let conn = unsafe {
            crate::sys::syscall!(
                libc::SYS_accept4,
                listener.get(),
                core::ptr::null_mut::<libc::sockaddr>(),
                core::ptr::null_mut::<libc::socklen_t>(),
                libc::SOCK_CLOEXEC
            )
        } as c_int;
        if conn < 0 {
            return; // EAGAIN: no one else waits.
        }
        if same_user(conn) {
            let timeout = libc::timeval {
                tv_sec: ANSWER_WITHIN_S as libc::time_t,
                tv_usec: 0,
            };
            // SAFETY: a valid timeval for SO_SNDTIMEO on our connection: a reader that stops
            // reading cannot hold the hub for longer.
            unsafe {
                crate::sys::syscall!(
                    libc::SYS_setsockopt,
                    conn,
                    libc::SOL_SOCKET,
                    libc::SO_SNDTIMEO,
                    &raw const timeout,
                    size_of::<libc::timeval>()
                )
            };
            let mut out = Out::new(Sink::Socket(conn));
            super::print(&mut out, "dump of");
        }
        // SAFETY: ours, accepted above.
        unsafe { crate::sys::syscall!(libc::SYS_close, conn) };
    }
}

/// Is the peer of `conn` this process's user, or root?
fn same_user(conn: c_int) -> bool {
    // SAFETY: all-zero is a valid ucred.
    let mut cred: libc::ucred = unsafe { core::mem::zeroed() };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: a valid ucred and its length for SO_PEERCRED.
    let rc = unsafe {
        crate::sys::syscall!(
            libc::SYS_getsockopt,
            conn,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &raw mut cred,
            &raw mut len
        )
    };
    // SAFETY: getuid has no preconditions.
    rc == 0 && (cred.uid == 0 || cred.uid == unsafe { libc::getuid() })
}

/// `GREENWORLD_DUMP_OF=PID` (what `greenrun --dump PID` sets): print that process's dump on
/// stdout and exit, 0 when it answered, 1 (with one line on stderr) when it did not.
pub fn print_dump_of(pid: c_int) -> ! {
    let fail = |why: core::fmt::Arguments<'_>| -> ! {
        let mut line = crate::sys::LineBuf::new();
        use core::fmt::Write;
        let _ = writeln!(line, "greenworld: --dump {pid}: {why}");
        crate::log::to_stderr(line.as_bytes());
        // SAFETY: ends the process at once, as a failed tool does.
        unsafe { libc::_exit(1) }
    };
    let fd = stream_socket(0);
    let (addr, len) = address(pid);
    // SAFETY: a valid address of `len` bytes; our fresh socket.
    if fd < 0 || unsafe { crate::sys::syscall!(libc::SYS_connect, fd, &raw const addr, len) } != 0 {
        fail(format_args!(
            "no dump channel (no such process, not run under greenworld, or no green thread yet)"
        ));
    }
    let mut got = 0usize;
    let mut buf = [0u8; 16384];
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let within = libc::timespec {
            tv_sec: ANSWER_WITHIN_S as libc::time_t,
            tv_nsec: 0,
        };
        // SAFETY: one valid pollfd and timespec (raw: not through our own hook; ppoll, which
        // every architecture has, where aarch64 has no poll).
        let ready = unsafe {
            crate::sys::syscall!(libc::SYS_ppoll, &raw mut pfd, 1, &raw const within, 0, 0)
        };
        if ready < 0 && crate::sys::errno() == libc::EINTR {
            continue;
        }
        if ready == 0 {
            fail(format_args!(
                "no answer within {ANSWER_WITHIN_S}s: its hub is not switching (a green thread \
                 spins, or blocks in a call greenworld does not see)"
            ));
        }
        // SAFETY: reads into a valid buffer of its size.
        let n = unsafe { crate::sys::syscall!(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len()) };
        if n < 0 && crate::sys::errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        got += n as usize;
        super::write_all(1, &buf[..n as usize]);
    }
    if got == 0 {
        fail(format_args!(
            "the process closed the channel without a dump"
        ));
    }
    // SAFETY: ends the process at once: the program it was to run is not the point.
    unsafe { libc::_exit(0) }
}
