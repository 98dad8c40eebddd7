//! Shims of the resolver calls, made on the thread pool (addresses cross threads as integers:
//! they stay valid while the caller waits).

use crate::resolver::resolve;
use libc::{addrinfo, c_char, c_int, hostent, size_t, sockaddr, socklen_t};

#[macro_export]
#[doc(hidden)]
macro_rules! resolver_hooks {
    ($($chain:tt)*) => { $crate::abi::next_hooks! { $($chain)* {
        Socket fn getaddrinfo(node: *const c_char, service: *const c_char, hints: *const addrinfo, res: *mut *mut addrinfo) -> c_int => {
            let (n, s, h, r) = (node as usize, service as usize, hints as usize, res as usize);
            resolve(move || ($crate::real::get().getaddrinfo)(n as _, s as _, h as _, r as _))
        };
        Socket fn getnameinfo(addr: *const sockaddr, len: socklen_t, host: *mut c_char, hostlen: socklen_t, serv: *mut c_char, servlen: socklen_t, flags: c_int) -> c_int => {
            let (a, h, s) = (addr as usize, host as usize, serv as usize);
            resolve(move || ($crate::real::get().getnameinfo)(a as _, len, h as _, hostlen, s as _, servlen, flags))
        };
        Socket fn gethostbyname(name: *const c_char) -> *mut hostent => {
            let n = name as usize;
            resolve(move || ($crate::real::get().gethostbyname)(n as _) as usize).map(|p| p as *mut hostent)
        };
        Socket fn gethostbyname_r(name: *const c_char, ret: *mut hostent, buf: *mut c_char, buflen: size_t, result: *mut *mut hostent, h_errnop: *mut c_int) -> c_int => {
            let (n, r, b, res, h) = (name as usize, ret as usize, buf as usize, result as usize, h_errnop as usize);
            resolve(move || ($crate::real::get().gethostbyname_r)(n as _, r as _, b as _, buflen, res as _, h as _))
        };
        Socket fn gethostbyname2_r(name: *const c_char, af: c_int, ret: *mut hostent, buf: *mut c_char, buflen: size_t, result: *mut *mut hostent, h_errnop: *mut c_int) -> c_int => {
            let (n, r, b, res, h) = (name as usize, ret as usize, buf as usize, result as usize, h_errnop as usize);
            resolve(move || ($crate::real::get().gethostbyname2_r)(n as _, af, r as _, b as _, buflen, res as _, h as _))
        };
        Socket fn gethostbyaddr_r(addr: *const libc::c_void, len: socklen_t, ty: c_int, ret: *mut hostent, buf: *mut c_char, buflen: size_t, result: *mut *mut hostent, h_errnop: *mut c_int) -> c_int => {
            let (a, r, b, res, h) = (addr as usize, ret as usize, buf as usize, result as usize, h_errnop as usize);
            resolve(move || ($crate::real::get().gethostbyaddr_r)(a as _, len, ty, r as _, b as _, buflen, res as _, h as _))
        };
    } } };
}
crate::resolver_hooks!([crate::abi::shims] []);
