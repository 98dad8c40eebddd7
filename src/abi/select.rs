//! Shims of the `select` subsystem.

use super::safe_point;
use crate::outcome::Outcome::Bypass;
use crate::select;
use libc::{c_int, epoll_event, fd_set, nfds_t, pollfd, sigset_t, size_t, timespec, timeval};

#[macro_export]
#[doc(hidden)]
macro_rules! select_hooks {
    ($($chain:tt)*) => { $crate::abi::next_hooks! { $($chain)* {
        Select fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int => safe_point!(select::poll_ms(fds, n, timeout).or_plain(|| select::plain_poll(fds, n, timeout)));
        Select fn ppoll(fds: *mut pollfd, n: nfds_t, ts: *const timespec, sigmask: *const sigset_t) -> c_int
            => safe_point!(select::ppoll(fds, n, ts, sigmask).or_plain(|| select::plain_ppoll(fds, n, ts, sigmask)));
        Select fn __poll_chk(fds: *mut pollfd, n: nfds_t, timeout: c_int, fdslen: size_t) -> c_int
            => safe_point!(if fdslen / size_of::<pollfd>() < n as usize { Bypass } else { select::poll_ms(fds, n, timeout).or_plain(|| select::plain_poll(fds, n, timeout)) });
        Select fn __ppoll_chk(fds: *mut pollfd, n: nfds_t, ts: *const timespec, sigmask: *const sigset_t, fdslen: size_t) -> c_int
            => safe_point!(if fdslen / size_of::<pollfd>() < n as usize { Bypass } else { select::ppoll(fds, n, ts, sigmask).or_plain(|| select::plain_ppoll(fds, n, ts, sigmask)) });
        Select fn select(nfds: c_int, read: *mut fd_set, write: *mut fd_set, except: *mut fd_set, tv: *mut timeval) -> c_int
            => safe_point!(select::select_tv(nfds, read, write, except, tv).or_plain(|| select::plain_select(nfds, read, write, except, tv)));
        Select fn pselect(nfds: c_int, read: *mut fd_set, write: *mut fd_set, except: *mut fd_set, ts: *const timespec, sigmask: *const sigset_t) -> c_int
            => safe_point!(select::pselect(nfds, read, write, except, ts, sigmask)
                .or_plain(|| select::plain_pselect(nfds, read, write, except, ts, sigmask)));
        Select fn epoll_wait(epfd: c_int, events: *mut epoll_event, max: c_int, timeout: c_int) -> c_int
            => safe_point!(select::epoll_wait_ms(epfd, events, max, timeout, core::ptr::null())
                .or_plain(|| select::plain_epoll_wait(epfd, events, max, timeout, core::ptr::null())));
        Select fn epoll_pwait(epfd: c_int, events: *mut epoll_event, max: c_int, timeout: c_int, sigmask: *const sigset_t) -> c_int
            => safe_point!(select::epoll_wait_ms(epfd, events, max, timeout, sigmask)
                .or_plain(|| select::plain_epoll_wait(epfd, events, max, timeout, sigmask)));
        Select(optional) fn epoll_pwait2(epfd: c_int, events: *mut epoll_event, max: c_int, ts: *const timespec, sigmask: *const sigset_t) -> c_int
            => safe_point!(select::epoll_pwait2(epfd, events, max, ts, sigmask)
                .or_plain(|| select::plain_epoll_pwait2(epfd, events, max, ts, sigmask)));
    } } };
}
crate::select_hooks!([crate::abi::shims] []);
