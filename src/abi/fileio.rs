//! Shims of the calls made on regular files (the `os` subsystem): on the thread pool with
//! `GREENWORLD_FILEIO=pool`, plain libc otherwise (see `fileio`). `read`, `write`, `readv` and
//! `writev` live with the other descriptor calls in `os`. Addresses cross to the pool thread as
//! integers: they stay valid while the caller waits.

use crate::fileio;
use crate::outcome::Outcome::{Bypass, Done};
use libc::{c_char, c_int, c_void, mode_t, off_t, off64_t, size_t, ssize_t};

#[macro_export]
#[doc(hidden)]
macro_rules! fileio_hooks {
    ($($chain:tt)*) => { $crate::abi::next_hooks! { $($chain)* {
        Os fn pread(fd: c_int, buf: *mut c_void, len: size_t, offset: off_t) -> ssize_t => {
            let b = buf as usize;
            fileio::on_fd(fd, move || ($crate::real::get().pread)(fd, b as _, len, offset))
        };
        Os fn pread64(fd: c_int, buf: *mut c_void, len: size_t, offset: off64_t) -> ssize_t => {
            let b = buf as usize;
            fileio::on_fd(fd, move || ($crate::real::get().pread64)(fd, b as _, len, offset))
        };
        Os fn pwrite(fd: c_int, buf: *const c_void, len: size_t, offset: off_t) -> ssize_t => {
            let b = buf as usize;
            fileio::on_fd(fd, move || ($crate::real::get().pwrite)(fd, b as _, len, offset))
        };
        Os fn pwrite64(fd: c_int, buf: *const c_void, len: size_t, offset: off64_t) -> ssize_t => {
            let b = buf as usize;
            fileio::on_fd(fd, move || ($crate::real::get().pwrite64)(fd, b as _, len, offset))
        };
        // glibc's fortified forms: a failed check goes to the real function, which aborts.
        Os fn __pread_chk(fd: c_int, buf: *mut c_void, len: size_t, offset: off_t, buflen: size_t) -> ssize_t
            => if len > buflen { Bypass } else {
                let b = buf as usize;
                fileio::on_fd(fd, move || ($crate::real::get().pread)(fd, b as _, len, offset))
            };
        Os fn __pread64_chk(fd: c_int, buf: *mut c_void, len: size_t, offset: off64_t, buflen: size_t) -> ssize_t
            => if len > buflen { Bypass } else {
                let b = buf as usize;
                fileio::on_fd(fd, move || ($crate::real::get().pread64)(fd, b as _, len, offset))
            };
        Os fn fsync(fd: c_int) -> c_int => fileio::on_fd(fd, move || ($crate::real::get().fsync)(fd));
        Os fn fdatasync(fd: c_int) -> c_int => fileio::on_fd(fd, move || ($crate::real::get().fdatasync)(fd));
        Os fn creat(path: *const c_char, mode: mode_t) -> c_int => {
            let p = path as usize;
            Done::<c_int>(fileio::open(move || ($crate::real::get().creat)(p as _, mode)))
        };
        Os fn creat64(path: *const c_char, mode: mode_t) -> c_int => {
            let p = path as usize;
            Done::<c_int>(fileio::open(move || ($crate::real::get().creat64)(p as _, mode)))
        };
        Os fn __open_2(path: *const c_char, flags: c_int) -> c_int
            => if needs_mode(flags) { Bypass } else {
                let p = path as usize;
                Done::<c_int>(fileio::open(move || ($crate::real::get().__open_2)(p as _, flags)))
            };
        Os fn __open64_2(path: *const c_char, flags: c_int) -> c_int
            => if needs_mode(flags) { Bypass } else {
                let p = path as usize;
                Done::<c_int>(fileio::open(move || ($crate::real::get().__open64_2)(p as _, flags)))
            };
        Os fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int
            => if needs_mode(flags) { Bypass } else {
                let p = path as usize;
                Done::<c_int>(fileio::open(move || ($crate::real::get().__openat_2)(dirfd, p as _, flags)))
            };
        Os fn __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int
            => if needs_mode(flags) { Bypass } else {
                let p = path as usize;
                Done::<c_int>(fileio::open(move || ($crate::real::get().__openat64_2)(dirfd, p as _, flags)))
            };
        // Variadic: exported by hand below, the mode read as a fixed argument (trap 5).
        Os(variadic) fn open(path: *const c_char, flags: c_int) -> c_int;
        Os(variadic) fn open64(path: *const c_char, flags: c_int) -> c_int;
        Os(variadic) fn openat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int;
        Os(variadic) fn openat64(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int;
    } } };
}
crate::fileio_hooks!([crate::abi::shims] []);

/// glibc's `__OPEN_NEEDS_MODE`: the fortified two-argument opens abort on such flags.
fn needs_mode(flags: c_int) -> bool {
    flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE
}

/// An open on the pool, or the same call here when it is not pooled.
fn open_with(call: impl FnOnce() -> c_int + Send) -> c_int {
    if super::unengaged() {
        return call();
    }
    fileio::open(call)
}

/// An open of a green twin (`green_open`...): on the pool whatever is patched, when
/// `GREENWORLD_FILEIO=pool` (as `green_pread` and the other regular-file twins).
fn green_open_with(call: impl FnOnce() -> c_int + Send) -> c_int {
    let _twin = crate::patch::Twin::enter();
    fileio::open(call)
}

/// The variadic opens and their green twins, each exported by hand: the mode is read as a fixed
/// argument (trap 5) and passed on whatever the flags (the real function reads it only when they
/// need one). A row: the export, the real function it calls, the wrapper (`open_with` for the
/// hook, `green_open_with` for its twin), and `dirfd` for the `*at` forms.
macro_rules! variadic_opens {
    ($($export:ident = $real:ident via $with:ident ($($dirfd:ident)?);)*) => {$(
        #[doc = concat!("`", stringify!($export), "` (`", stringify!($real), "` read with a fixed mode).")]
        ///
        /// # Safety
        /// As `open(2)` / `openat(2)`.
        #[cfg_attr(not(test), unsafe(no_mangle))]
        pub unsafe extern "C" fn $export(
            $($dirfd: c_int,)?
            path: *const c_char,
            flags: c_int,
            mode: mode_t,
        ) -> c_int {
            let p = path as usize;
            // SAFETY: the caller's arguments, to the real variadic function.
            $with(move || unsafe { (crate::real::variadic().$real)($($dirfd,)? p as _, flags, mode) })
        }
    )*};
}

variadic_opens! {
    open = open via open_with ();
    open64 = open64 via open_with ();
    openat = openat via open_with (dirfd);
    openat64 = openat64 via open_with (dirfd);
    green_open = open via green_open_with ();
    green_open64 = open64 via green_open_with ();
    green_openat = openat via green_open_with (dirfd);
    green_openat64 = openat64 via green_open_with (dirfd);
}
