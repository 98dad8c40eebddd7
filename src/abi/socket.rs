//! Shims of the `socket` subsystem.

use super::safe_point;
use crate::outcome::Outcome::Bypass;
use crate::signal::plain::SocketWait::{Connect, Input, Output};
use crate::socket;
use libc::{
    c_int, c_uint, c_void, mmsghdr, msghdr, off_t, size_t, sockaddr, socklen_t, ssize_t, timespec,
};

#[macro_export]
#[doc(hidden)]
macro_rules! socket_hooks {
    ($($chain:tt)*) => { $crate::abi::next_hooks! { $($chain)* {
        Socket fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int => socket::socket(domain, ty, protocol);
        Socket fn socketpair(domain: c_int, ty: c_int, protocol: c_int, sv: *mut c_int) -> c_int
            => socket::socketpair(domain, ty, protocol, sv);
        Socket fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int => safe_point!(socket::connect(fd, addr, len)
                .or_plain(|| socket::plain(fd, Connect, || ($crate::real::get().connect)(fd, addr, len))));
        Socket fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int => safe_point!(socket::accept(fd, addr, len, 0)
                .or_plain(|| socket::plain(fd, Input, || ($crate::real::get().accept)(fd, addr, len))));
        Socket fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int
            => safe_point!(socket::accept(fd, addr, len, flags)
                .or_plain(|| socket::plain(fd, Input, || ($crate::real::get().accept4)(fd, addr, len, flags))));
        Socket fn recv(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int) -> ssize_t
            => safe_point!(hub => socket::recv(fd, buf, len, flags, hub)
                .or_plain(|| socket::plain(fd, Input, || ($crate::real::get().recv)(fd, buf, len, flags))));
        Socket fn recvfrom(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int, addr: *mut sockaddr, alen: *mut socklen_t) -> ssize_t
            => safe_point!(socket::recvfrom(fd, buf, len, flags, addr, alen)
                .or_plain(|| socket::plain(fd, Input, || ($crate::real::get().recvfrom)(fd, buf, len, flags, addr, alen))));
        Socket fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t => safe_point!(socket::recvmsg(fd, msg, flags)
                .or_plain(|| socket::plain(fd, Input, || ($crate::real::get().recvmsg)(fd, msg, flags))));
        Socket fn recvmmsg(fd: c_int, vec: *mut mmsghdr, vlen: c_uint, flags: c_int, timeout: *mut timespec) -> c_int
            => safe_point!(socket::recvmmsg(fd, vec, vlen, flags, timeout)
                .or_plain(|| socket::plain(fd, Input, || ($crate::real::get().recvmmsg)(fd, vec, vlen, flags, timeout))));
        Socket fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t
            => safe_point!(hub => socket::send(fd, buf, len, flags, hub)
                .or_plain(|| socket::plain(fd, Output, || ($crate::real::get().send)(fd, buf, len, flags))));
        Socket fn sendto(fd: c_int, buf: *const c_void, len: size_t, flags: c_int, addr: *const sockaddr, alen: socklen_t) -> ssize_t
            => safe_point!(socket::sendto(fd, buf, len, flags, addr, alen)
                .or_plain(|| socket::plain(fd, Output, || ($crate::real::get().sendto)(fd, buf, len, flags, addr, alen))));
        Socket fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t => safe_point!(socket::sendmsg(fd, msg, flags)
                .or_plain(|| socket::plain(fd, Output, || ($crate::real::get().sendmsg)(fd, msg, flags))));
        Socket fn sendmmsg(fd: c_int, vec: *mut mmsghdr, vlen: c_uint, flags: c_int) -> c_int => safe_point!(socket::sendmmsg(fd, vec, vlen, flags)
                .or_plain(|| socket::plain(fd, Output, || ($crate::real::get().sendmmsg)(fd, vec, vlen, flags))));
        Socket fn sendfile(out: c_int, input: c_int, offset: *mut off_t, count: size_t) -> ssize_t
            => safe_point!(socket::sendfile(out, input, offset, count, $crate::real::get().sendfile)
                .or_plain(|| socket::plain(out, Output, || ($crate::real::get().sendfile)(out, input, offset, count))));
        /// What `sendfile` is in programs built with 64-bit file offsets (CPython, among others).
        Socket fn sendfile64(out: c_int, input: c_int, offset: *mut off_t, count: size_t) -> ssize_t
            => safe_point!(socket::sendfile(out, input, offset, count, $crate::real::get().sendfile64)
                .or_plain(|| socket::plain(out, Output, || ($crate::real::get().sendfile64)(out, input, offset, count))));
        Socket fn setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: socklen_t) -> c_int
            => socket::setsockopt(fd, level, name, value, len);
        Socket fn __recv_chk(fd: c_int, buf: *mut c_void, len: size_t, buflen: size_t, flags: c_int) -> ssize_t
            => safe_point!(if len > buflen { Bypass } else { socket::recvfrom(fd, buf, len, flags, core::ptr::null_mut(), core::ptr::null_mut())
                .or_plain(|| socket::plain(fd, Input, || ($crate::real::get().recv)(fd, buf, len, flags))) });
        Socket fn __recvfrom_chk(fd: c_int, buf: *mut c_void, len: size_t, buflen: size_t, flags: c_int, addr: *mut sockaddr, alen: *mut socklen_t) -> ssize_t
            => safe_point!(if len > buflen { Bypass } else { socket::recvfrom(fd, buf, len, flags, addr, alen)
                .or_plain(|| socket::plain(fd, Input, || ($crate::real::get().recvfrom)(fd, buf, len, flags, addr, alen))) });
    } } };
}
crate::socket_hooks!([crate::abi::shims] []);
