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

/// Acts on an op's outcome: its value, the real function, or -1 with errno. A library linked
/// on purpose and not yet asked to patch anything is plain libc (see [`unengaged`]).
macro_rules! shim {
    ($(
        $(#[$doc:meta])*
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty => $op:expr;
    )*) => {$(
        $(#[$doc])*
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            if $crate::abi::unengaged() {
                // SAFETY: the caller's arguments, to the real function.
                return unsafe { ($crate::real::get().$name)($($arg),*) };
            }
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

/// True in a program that linked the library and has not called `greenworld_monkey_patch`:
/// every hook then calls the real function and nothing else, not even bookkeeping (eventlet:
/// importing a library must not change how the program behaves). The fd table needs none of
/// what it misses: it learns a descriptor lazily (kind, flags) on first green use.
#[inline]
pub(crate) fn unengaged() -> bool {
    !crate::patch::engaged()
}

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

/// eventlet's `monkey_patch`: the subsystems `GW_*` flags name (0: all) green for the whole
/// process from now on, on top of what already is; 0, or EINVAL for an unknown bit, ENOTSUP
/// for the reserved `GW_PSYCOPG`, ENOSYS when the program's calls do not reach the library
/// (`dlopen`ed: see `loaded::interposes`); nothing changes on an error. Idempotent, from any
/// thread; threads that already exist stay what they are.
#[unsafe(no_mangle)]
pub extern "C" fn greenworld_monkey_patch(subsystems: libc::c_uint) -> libc::c_int {
    match crate::patch::from_flags(subsystems) {
        Ok(_) if !crate::loaded::interposes() => libc::ENOSYS,
        Ok(set) => {
            if crate::patch::monkey_patch(set) {
                crate::signal::adopt_installed();
            }
            0
        }
        Err(code) => code,
    }
}

/// The library's constructor. Early callers reach the same state lazily (trap 3).
extern "C" fn constructor() {
    crate::runtime::init();
}

#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn() = constructor;
