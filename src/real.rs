//! The real libc functions behind every hook: one table, made from the hook rows (see
//! `every_hook!` in `abi`), resolved with `dlsym(RTLD_NEXT)` (through redhook; `dlvsym` for
//! versioned names) on first use, which may be before `main` and from another library's
//! constructor (trap 3). A successful `dlsym` does not allocate on glibc >= 2.34; a failed one
//! does (the `dlerror` message), so only rows marked `(optional)` may name a symbol this glibc
//! lacks, and those are looked up on their own first call, never from the table's resolution.
//! A required symbol that is missing stops the program (redhook aborts through our panic
//! policy): a libc without `read` is no libc to run on.

#[allow(clippy::wildcard_imports)]
use libc::*;
use once_cell::sync::OnceCell;

pub type StartRoutine = extern "C" fn(*mut c_void) -> *mut c_void;
pub type C11Start = extern "C" fn(*mut c_void) -> c_int;
pub type KeyDestructor = unsafe extern "C" fn(*mut c_void);
pub type OnceRoutine = unsafe extern "C" fn();

/// The consumer of [`every_hook!`](crate::every_hook) that makes the rows the table [`Real`]:
/// each real function's type is its row's C signature.
macro_rules! table {
    ([] [$(
        $(#[$doc:meta])*
        $sub:ident $(($($flag:tt)*))? fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $(=> $op:expr)?;
    )*]) => {
        /// Function pointers to the next definition of each hooked symbol (libc's).
        pub struct Real {
            $( pub $name: table!(@type [$($($flag)*)?] ($($ty),*) -> $ret), )*
        }

        fn resolve() -> Real {
            Real {
                $( $name: table!(@resolve [$($($flag)*)?] $name ($($arg: $ty),*) -> $ret), )*
            }
        }

        /// Every row's symbol and version, for the test that they all resolve here.
        #[cfg(test)]
        const SYMBOLS: &[(&str, Option<&str>, bool)] = &[
            $( (stringify!($name), table!(@version [$($($flag)*)?]), table!(@optional [$($($flag)*)?])), )*
        ];
    };
    (@type [variadic] ($($ty:ty),*) -> $ret:ty) => { unsafe extern "C" fn($($ty),*, ...) -> $ret };
    (@type [$($flag:tt)*] ($($ty:ty),*) -> $ret:ty) => { unsafe extern "C" fn($($ty),*) -> $ret };
    (@resolve [optional] $name:ident ($($arg:ident: $ty:ty),*) -> $ret:ty) => {{
        /// Until its first call finds the real function (or not), this stands in for it;
        /// then it calls what it found: one relaxed load more than a required function.
        unsafe extern "C" fn first_call($($arg: $ty),*) -> $ret {
            static FOUND: core::sync::atomic::AtomicPtr<u8> =
                core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());
            /// What libc would do without the function: ENOSYS, as its system call answers
            /// on a kernel without it.
            unsafe extern "C" fn missing($(_: $ty),*) -> $ret {
                $crate::sys::set_errno(libc::ENOSYS);
                <$ret as $crate::outcome::Failure>::FAILED
            }
            let mut found = FOUND.load(core::sync::atomic::Ordering::Relaxed);
            if found.is_null() {
                found = optional(concat!(stringify!($name), "\0"))
                    .unwrap_or(missing as *const u8)
                    .cast_mut();
                FOUND.store(found, core::sync::atomic::Ordering::Relaxed);
            }
            // SAFETY: the libc function of this name, whose C type the row declares, or
            // `missing`, of that type too.
            let real = unsafe {
                core::mem::transmute::<*mut u8, unsafe extern "C" fn($($ty),*) -> $ret>(found)
            };
            // SAFETY: the caller's arguments, under the caller's contract.
            unsafe { real($($arg),*) }
        }
        first_call
    }};
    (@resolve [$($flag:tt)*] $name:ident ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        // SAFETY: next returns the address of the libc function of this name (it aborts
        // through our panic policy if there is none), whose C type is the row's, as in
        // glibc's headers.
        unsafe {
            core::mem::transmute::<*const u8, table!(@type [$($flag)*] ($($ty),*) -> $ret)>(
                next(concat!(stringify!($name), "\0"), table!(@version_nul [$($flag)*])),
            )
        }
    };
    (@version [version = $version:literal]) => { Some($version) };
    (@version [$($flag:tt)*]) => { None };
    (@version_nul [version = $version:literal]) => { Some(concat!($version, "\0")) };
    (@version_nul [$($flag:tt)*]) => { None };
    (@optional [optional]) => { true };
    (@optional [$($flag:tt)*]) => { false };
}
pub(crate) use table;

crate::every_hook!(crate::real::table);

/// The table under the name that says a variadic function is called through it (trap 5).
#[inline]
pub fn variadic() -> &'static Real {
    get()
}

/// The next definition of `name` (NUL-terminated) if there is one, for an optional row, on its
/// first call (a failed `dlsym` allocates its message: never from the table's resolution);
/// the message is cleared, so the program's own `dlerror` does not see it.
fn optional(name: &'static str) -> Option<*const u8> {
    // SAFETY: a NUL-terminated literal.
    let found = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) };
    if found.is_null() {
        // SAFETY: no arguments; forgets the failed lookup's message.
        unsafe { libc::dlerror() };
        return None;
    }
    Some(found.cast_const().cast())
}

/// The next definition of `name` (NUL-terminated), at `version` where glibc versions it and
/// has that version on this architecture (`pthread_cond_*@GLIBC_2.3.2` on x86-64: a plain
/// `dlsym` may return the old 2.2.5 ABI).
fn next(name: &'static str, version: Option<&'static str>) -> *const u8 {
    if let Some(version) = version {
        // SAFETY: both strings are NUL-terminated literals.
        let found = unsafe {
            libc::dlvsym(
                libc::RTLD_NEXT,
                name.as_ptr().cast(),
                version.as_ptr().cast(),
            )
        };
        if !found.is_null() {
            return found.cast();
        }
    }
    // SAFETY: a NUL-terminated literal; redhook aborts (through our panic policy) if missing.
    unsafe { redhook::ld_preload::dlsym_next(name) }
}

static REAL: OnceCell<Real> = OnceCell::new();

/// The real-symbol table, resolved on first use.
#[inline]
pub fn get() -> &'static Real {
    match REAL.get() {
        Some(real) => real,
        None => REAL.get_or_init(resolve),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_resolves_here() {
        for &(name, version, optional) in SYMBOLS {
            let cname = std::ffi::CString::new(name).unwrap();
            // SAFETY: NUL-terminated names; RTLD_DEFAULT is the global scope (the test binary
            // exports none of these: its hooks have no C names).
            let found = unsafe {
                match version {
                    Some(v) => {
                        let cv = std::ffi::CString::new(v).unwrap();
                        libc::dlvsym(RTLD_DEFAULT, cname.as_ptr(), cv.as_ptr())
                    }
                    None => libc::dlsym(RTLD_DEFAULT, cname.as_ptr()),
                }
            };
            // An optional symbol may be missing from some glibc, not from the one we test on.
            assert!(
                !found.is_null(),
                "{name} (optional: {optional}) does not resolve"
            );
        }
        get();
    }

    #[test]
    fn a_missing_optional_function_is_none_and_leaves_no_message() {
        assert_eq!(optional("greenworld_no_such_function\0"), None);
        // SAFETY: no arguments.
        assert!(unsafe { libc::dlerror() }.is_null());
    }

    #[test]
    fn an_optional_row_without_its_function_answers_enosys() {
        let stand_in = table!(@resolve [optional] greenworld_no_such_function (fd: c_int) -> c_int);
        for _ in 0..2 {
            // SAFETY: no real function is found, so nothing is called but the stand-in's own
            // fallback.
            let rc = unsafe { stand_in(0) };
            assert_eq!(rc, -1);
            assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(ENOSYS));
        }
        // SAFETY: no arguments.
        assert!(unsafe { libc::dlerror() }.is_null());
    }

    #[test]
    fn an_optional_row_calls_the_real_function() {
        // close_range(2, 1, 0): first > last, EINVAL from the real function (not ENOSYS).
        // SAFETY: no descriptor is touched: the range is empty.
        let rc = unsafe { (get().close_range)(2, 1, 0) };
        assert_eq!(rc, -1);
        assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(EINVAL));
    }
}
