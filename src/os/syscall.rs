//! `syscall()`: programs that make their descriptor calls raw (libuv closes with
//! `syscall(SYS_close)`, others open pidfds, memfds or sockets that way) still keep the fd table
//! true. Only the numbers that close, replace or make a descriptor, or change its O_NONBLOCK or
//! socket timeouts, are looked at; every other number (glibc's and Rust's futexes among them)
//! goes straight to the kernel, as glibc's `syscall` sends it.

use crate::fd::{self, Kind};
use crate::outcome::Outcome;
use crate::sys::{errno, set_errno, syscall6};
use libc::{c_int, c_long};

/// What a system call does to the fd table.
#[derive(Clone, Copy)]
pub enum Effect {
    /// Makes a process or thread that may share this memory (`clone`) or may not have run the
    /// fork handlers (`fork`): `context::in_vfork_child` asks the kernel again.
    Process,
    /// Closes descriptor `a1`.
    Close,
    /// `close_range(a1, a2, a3)`.
    CloseRange,
    /// Replaces descriptor `a2` with a copy of `a1` (`dup2`, `dup3`).
    Replace,
    /// Returns a new descriptor.
    Make,
    /// `socket(a1, a2, a3)`: a new socket of type `a2`.
    Socket,
    /// `accept`/`accept4` on listener `a1`.
    Accept,
    /// Writes two new descriptors to the array `a1` (`pipe`, `pipe2`).
    Pipe,
    /// `socketpair(a1, a2, a3, a4)`: two new sockets of type `a2` in the array `a4`.
    SocketPair,
    /// `signalfd(a1, …)`: a new descriptor when `a1` is -1.
    SignalFd,
    /// `fcntl(a1, a2, …)`: F_DUPFD* make one, F_SETFL changes flags.
    Fcntl,
    /// `ioctl(a1, a2, …)`: FIONBIO changes flags.
    Ioctl,
    /// `setsockopt(a1, a2, a3, …)`: socket timeouts.
    SetSockOpt,
    /// `recvmsg(a1, a2, …)`: descriptors may arrive with SCM_RIGHTS.
    RecvMsg,
    /// `recvmmsg(a1, a2, …)`: as `recvmsg`, for each message received.
    RecvMmsg,
}

/// The effect of system call `number`, None for the numbers that leave the table alone.
#[inline]
#[allow(non_upper_case_globals)] // libc's SYS_ names, as patterns
pub fn effect(number: c_long) -> Option<Effect> {
    use libc::*;
    Some(match number {
        #[cfg(target_arch = "x86_64")]
        SYS_fork | SYS_vfork => Effect::Process,
        SYS_clone | SYS_clone3 => Effect::Process,
        SYS_close => Effect::Close,
        SYS_close_range => Effect::CloseRange,
        #[cfg(target_arch = "x86_64")]
        SYS_dup2 => Effect::Replace,
        SYS_dup3 => Effect::Replace,
        SYS_socket => Effect::Socket,
        SYS_accept | SYS_accept4 => Effect::Accept,
        #[cfg(target_arch = "x86_64")]
        SYS_pipe => Effect::Pipe,
        SYS_pipe2 => Effect::Pipe,
        SYS_socketpair => Effect::SocketPair,
        #[cfg(target_arch = "x86_64")]
        SYS_signalfd => Effect::SignalFd,
        SYS_signalfd4 => Effect::SignalFd,
        SYS_fcntl => Effect::Fcntl,
        SYS_ioctl => Effect::Ioctl,
        SYS_setsockopt => Effect::SetSockOpt,
        SYS_recvmsg => Effect::RecvMsg,
        SYS_recvmmsg => Effect::RecvMmsg,
        #[cfg(target_arch = "x86_64")]
        SYS_open | SYS_creat | SYS_eventfd | SYS_epoll_create | SYS_inotify_init => Effect::Make,
        SYS_dup
        | SYS_openat
        | SYS_openat2
        | SYS_open_by_handle_at
        | SYS_eventfd2
        | SYS_epoll_create1
        | SYS_timerfd_create
        | SYS_inotify_init1
        | SYS_fanotify_init
        | SYS_memfd_create
        | SYS_pidfd_open
        | SYS_pidfd_getfd
        | SYS_perf_event_open
        | SYS_userfaultfd
        | SYS_io_uring_setup
        | SYS_fsopen
        | SYS_fsmount
        | SYS_fspick
        | SYS_open_tree
        | SYS_mq_open => Effect::Make,
        _ => return None,
    })
}

/// Makes system call `number` (whose `effect` is given) and keeps the fd table true around
/// it; returns what glibc's `syscall` returns, errno as it sets it.
///
/// # Safety
/// As the system call.
pub unsafe fn call(effect: Effect, number: c_long, args: [c_long; 6]) -> c_long {
    let [a1, a2, a3, a4, ..] = args;
    // SAFETY: the caller's call (below, each use).
    let real = || unsafe { syscall6(number, args) };
    // The library's own descriptors stay out of reach here too, as through `close`, `dup2` and
    // `close_range` (see `own_fd`).
    let ret = match effect {
        Effect::Process => {
            crate::context::VFORKS.fetch_add(1, core::sync::atomic::Ordering::AcqRel);
            return real();
        }
        Effect::Close => return answer(super::close(a1 as c_int), real),
        // The kernel takes unsigned ints: the low halves of the registers.
        Effect::CloseRange => {
            return answer(super::close_range(a1 as u32, a2 as u32, a3 as c_int), real);
        }
        Effect::Replace => {
            let (old, new) = (a1 as c_int, a2 as c_int);
            let outcome = crate::own_fd::protect_own_fd(old, new, || {
                super::replace(old, new, || real() as c_int)
            });
            return answer(outcome, real);
        }
        _ => real(),
    };
    if ret < 0 {
        return ret;
    }
    let saved = errno();
    let new = ret as c_int;
    match effect {
        Effect::Make => fd::born(new, Kind::Unknown),
        Effect::Socket => fd::born(new, Kind::of_socket_type(a2 as c_int)),
        Effect::Accept => {
            let listener = a1 as c_int;
            let kind = fd::entry(listener).map_or(Kind::Unknown, |e| e.kind(listener));
            fd::born(new, kind);
        }
        // SAFETY: the successful call wrote two descriptors there.
        Effect::Pipe => unsafe { born_pair(a1 as *const c_int, Kind::Pipe) },
        // SAFETY: as above.
        Effect::SocketPair => unsafe {
            born_pair(a4 as *const c_int, Kind::of_socket_type(a2 as c_int))
        },
        Effect::SignalFd if a1 as c_int == -1 => fd::born(new, Kind::Unknown),
        Effect::Fcntl => match a2 as c_int {
            libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => fd::born(new, Kind::Unknown),
            libc::F_SETFL => fd::flags_changed(),
            _ => {}
        },
        Effect::Ioctl if a2 as libc::c_ulong == libc::FIONBIO => fd::flags_changed(),
        Effect::SetSockOpt if fd::socket::sets_timeout(a2 as c_int, a3 as c_int) => {
            fd::flags_changed()
        }
        // SAFETY: a message the successful call filled.
        Effect::RecvMsg => unsafe { fd::socket::forget_received_fds(a2 as *const _) },
        Effect::RecvMmsg => {
            let vec = a2 as *const libc::mmsghdr;
            for i in 0..ret as usize {
                // SAFETY: the successful call filled the first `ret` messages.
                unsafe { fd::socket::forget_received_fds(&raw const (*vec.add(i)).msg_hdr) };
            }
        }
        _ => {}
    }
    set_errno(saved);
    ret
}

/// What glibc's `syscall` returns for an op's outcome: its value, the system call itself, or
/// -1 and errno.
fn answer(outcome: Outcome<c_int>, real: impl FnOnce() -> c_long) -> c_long {
    match outcome {
        Outcome::Done(value) => value.into(),
        Outcome::Bypass => real(),
        Outcome::Errno(code) => {
            set_errno(code);
            -1
        }
    }
}

/// Two descriptors a call wrote to `fds`.
///
/// # Safety
/// `fds` holds two descriptors.
unsafe fn born_pair(fds: *const c_int, kind: Kind) {
    // SAFETY: per our contract.
    let (a, b) = unsafe { (*fds, *fds.add(1)) };
    fd::born(a, kind);
    fd::born(b, kind);
}
