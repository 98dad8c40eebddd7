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
    /// The value of a `Done`, transformed; the other outcomes unchanged.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Done(value) => Outcome::Done(f(value)),
            Outcome::Bypass => Outcome::Bypass,
            Outcome::Errno(code) => Outcome::Errno(code),
        }
    }
}
