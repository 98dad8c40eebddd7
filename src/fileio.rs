//! Regular-file I/O on the thread pool (`GREENWORLD_FILEIO=pool`, part of the `os` subsystem).
//!
//! epoll refuses regular files and block devices (they are never "not ready"), so green I/O
//! cannot wait on them: a call that waits for the disk — a page-cache miss, `fsync`, a slow or
//! network file system — stops every green thread of its OS thread. In `pool` mode such a call
//! is made, unchanged, by a pool thread while the green caller parks: the real function, its
//! result and its errno. Off by default: a page-cache hit costs far less than the hand-off.

use crate::config::FileIo;
use crate::fd::{self, Kind};
use crate::outcome::Outcome::{self, Bypass};
use crate::patch::{self, Subsystem};
use crate::stats::ParkReason;
use crate::tpool;

/// Would a file call go to the pool now? `pool` mode, the `os` subsystem patched, and a caller
/// that the pool would park (a green thread, or a root with green threads to run meanwhile;
/// never a signal handler's call, see `tpool::would_park`).
#[inline]
pub fn pooling() -> bool {
    crate::config::get().fileio == FileIo::Pool
        && patch::active(Subsystem::Os)
        && tpool::would_park()
}

/// A call on descriptor `fd` (`call` is the real function with the caller's arguments): on
/// the pool when `fd` is a regular file or block device and [`pooling`]; otherwise `Bypass`
/// (sockets and pipes are green elsewhere; terminals and other devices stay plain libc).
/// Inlined: with `off` this is one comparison on every plain read and write.
#[inline]
pub fn on_fd<R: Send + PartialOrd + Default>(
    fd: libc::c_int,
    call: impl FnOnce() -> R + Send,
) -> Outcome<R> {
    if !pooling() || !fd::entry(fd).is_some_and(|entry| entry.kind(fd) == Kind::File) {
        return Bypass;
    }
    tpool::run_syscall(ParkReason::File, call)
}

/// `open` and its variants (`call`, the real function with the caller's arguments): on the pool
/// whenever [`pooling`], in place otherwise. The kind of file is known only once it is open, and
/// an open that blocks (a FIFO waiting for its other end, an automount, NFS) blocks natively
/// too: a pool thread is the right place for any of them. Either way the new descriptor's
/// number starts afresh in the fd table (its last descriptor may have been closed where no hook
/// saw it: libuv closes with a raw `syscall(SYS_close)`).
/// Returns what the call returns, errno set as it sets it.
pub fn open(call: impl FnOnce() -> libc::c_int + Send) -> libc::c_int {
    let fd = if pooling() {
        match tpool::run_syscall(ParkReason::File, call) {
            Outcome::Done(fd) => fd,
            Outcome::Errno(code) => {
                crate::sys::set_errno(code);
                -1
            }
            // run_syscall always makes the call.
            Outcome::Bypass => -1,
        }
    } else {
        call()
    };
    if fd >= 0 {
        let saved = crate::sys::errno();
        fd::born(fd, Kind::Unknown);
        crate::sys::set_errno(saved);
    }
    fd
}
