//! What a subsystem op tells its exported shim to do.

/// The result of a hooked call's op.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome<T> {
    /// Handled here: return this value.
    Done(T),
    /// Not ours (subsystem not patched, fd or handle not green, arguments the real function
    /// must judge): call the real libc function with the same arguments.
    Bypass,
    /// Failed: set errno to this and return the function's failure value (-1).
    Errno(libc::c_int),
}

impl<T> Outcome<T> {
    /// A `Bypass` made here by `plain` (the real call, restarted when only the library's own
    /// signal interrupted it: `signal::plain`); the other outcomes unchanged.
    #[inline]
    pub fn or_plain(self, plain: impl FnOnce() -> T) -> Outcome<T> {
        match self {
            Outcome::Bypass => Outcome::Done(plain()),
            other => other,
        }
    }

    /// The value of a `Done`, transformed; the other outcomes unchanged.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Done(value) => Outcome::Done(f(value)),
            Outcome::Bypass => Outcome::Bypass,
            Outcome::Errno(code) => Outcome::Errno(code),
        }
    }
}

/// The value a function returns beside errno when it fails.
pub trait Failure {
    const FAILED: Self;
}
impl Failure for libc::c_int {
    const FAILED: Self = -1;
}
impl Failure for libc::ssize_t {
    const FAILED: Self = -1;
}
impl Failure for libc::c_uint {
    const FAILED: Self = libc::c_uint::MAX;
}
impl Failure for libc::pthread_t {
    const FAILED: Self = 0;
}
impl Failure for *mut libc::c_void {
    const FAILED: Self = core::ptr::null_mut();
}
impl Failure for *mut libc::c_char {
    const FAILED: Self = core::ptr::null_mut();
}
impl Failure for () {
    const FAILED: Self = ();
}
impl Failure for libc::size_t {
    const FAILED: Self = 0;
}
impl Failure for *mut libc::hostent {
    const FAILED: Self = core::ptr::null_mut();
}
