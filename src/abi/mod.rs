//! The exported C surface: every `#[no_mangle]` symbol of the library, and nothing else. Each
//! shim forwards to its subsystem's op and acts on the [`Outcome`](crate::outcome::Outcome). Compiled out of unit-test
//! builds, whose test binary would otherwise interpose libc for the test harness (trap 15).

mod fileio;
mod os;
mod resolver;
mod select;
mod socket;
mod stdio;
mod sync;
mod thread;
mod time;

/// Acts on an op's outcome: its value, the real function, or -1 with errno.
macro_rules! shim {
    ($(
        $(#[$doc:meta])*
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty => $op:expr;
    )*) => {$(
        $(#[$doc])*
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            // SAFETY: the caller upholds libc's contract for this function; the op and the
            // real function rely on nothing more.
            #[allow(unused_unsafe)]
            match unsafe { $op } {
                $crate::outcome::Outcome::Done(value) => value,
                // SAFETY: as above, with the caller's own arguments.
                $crate::outcome::Outcome::Bypass => unsafe { ($crate::real::get().$name)($($arg),*) },
                $crate::outcome::Outcome::Errno(code) => {
                    $crate::sys::set_errno(code);
                    <$ret as $crate::abi::Failure>::FAILED
                }
            }
        }
    )*};
}
pub(crate) use shim;

/// An op of a call that could have blocked: its entry is a safe point, where the running
/// thread yields when its time slice is spent or it woke `main` (see `hub::slice`).
macro_rules! safe_point {
    ($op:expr) => {{
        $crate::hub::Hub::safe_point();
        $op
    }};
}
pub(crate) use safe_point;

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
impl Failure for libc::size_t {
    const FAILED: Self = 0;
}
impl Failure for *mut libc::hostent {
    const FAILED: Self = core::ptr::null_mut();
}

/// eventlet's `is_monkey_patched`: 1 or 0 for a subsystem ("socket") or a hooked function
/// ("nanosleep") name, -1 for a name the library does not know (or NULL).
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn greenworld_is_monkey_patched(name: *const libc::c_char) -> libc::c_int {
    if name.is_null() {
        return -1;
    }
    // SAFETY: NUL-terminated (caller).
    let name = unsafe { core::ffi::CStr::from_ptr(name) };
    match name.to_str().ok().and_then(crate::patch::is_patched) {
        Some(true) => 1,
        Some(false) => 0,
        None => -1,
    }
}

/// The library's constructor. Early callers reach the same state lazily (trap 3).
extern "C" fn constructor() {
    crate::runtime::init();
}

#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn() = constructor;
