//! Shims of stdio's read functions on pipes and sockets (answered for `os`, as `read` is): a
//! green wait before glibc refills an empty buffer (see `crate::stdio`).

use crate::outcome::Outcome::Bypass;
use crate::stdio::{
    before_read, fgets as green_fgets, fread as green_fread, getdelim as green_getdelim,
};
use libc::{FILE, c_char, c_int, c_void, size_t, ssize_t};

unsafe extern "C" {
    static stdin: *mut FILE;
}

#[macro_export]
#[doc(hidden)]
macro_rules! stdio_hooks {
    ($($chain:tt)*) => { $crate::abi::next_hooks! { $($chain)* {
        Os fn fgets(s: *mut c_char, n: c_int, stream: *mut FILE) -> *mut c_char
            => green_fgets(s, n, stream, true);
        Os fn fgets_unlocked(s: *mut c_char, n: c_int, stream: *mut FILE) -> *mut c_char
            => green_fgets(s, n, stream, false);
        Os fn __fgets_chk(s: *mut c_char, size: size_t, n: c_int, stream: *mut FILE) -> *mut c_char
            => if n >= 0 && n as size_t <= size { green_fgets(s, n, stream, true) } else { Bypass };
        Os fn fgetc(stream: *mut FILE) -> c_int => before_read(stream);
        Os fn getc(stream: *mut FILE) -> c_int => before_read(stream);
        Os fn fgetc_unlocked(stream: *mut FILE) -> c_int => before_read(stream);
        Os fn getc_unlocked(stream: *mut FILE) -> c_int => before_read(stream);
        Os fn getchar() -> c_int => before_read(stdin);
        Os fn getchar_unlocked() -> c_int => before_read(stdin);
        /// What the inline `getc_unlocked` of <stdio.h> calls on an empty buffer.
        Os fn __uflow(stream: *mut FILE) -> c_int => before_read(stream);
        Os fn getline(line: *mut *mut c_char, n: *mut size_t, stream: *mut FILE) -> ssize_t
            => green_getdelim(line, n, b'\n' as c_int, stream);
        Os fn getdelim(line: *mut *mut c_char, n: *mut size_t, delim: c_int, stream: *mut FILE) -> ssize_t
            => green_getdelim(line, n, delim, stream);
        Os fn __getdelim(line: *mut *mut c_char, n: *mut size_t, delim: c_int, stream: *mut FILE) -> ssize_t
            => green_getdelim(line, n, delim, stream);
        Os fn fread(ptr: *mut c_void, size: size_t, count: size_t, stream: *mut FILE) -> size_t
            => green_fread(ptr, size, count, stream, $crate::real::get().fread);
        Os fn fread_unlocked(ptr: *mut c_void, size: size_t, count: size_t, stream: *mut FILE) -> size_t
            => green_fread(ptr, size, count, stream, $crate::real::get().fread_unlocked);
        Os fn __fread_chk(ptr: *mut c_void, room: size_t, size: size_t, count: size_t, stream: *mut FILE) -> size_t
            => match size.checked_mul(count) {
                Some(total) if total <= room => green_fread(ptr, size, count, stream, $crate::real::get().fread),
                _ => Bypass,
            };
    } } };
}
crate::stdio_hooks!([crate::abi::shims] []);
