//! The exported C surface: every `#[no_mangle]` symbol of the library, and nothing else. Each
//! shim forwards to its subsystem's op and acts on the [`Outcome`](crate::outcome::Outcome).
//! Each file declares its subsystem's hooks, one row each (see [`every_hook!`]). Unit-test
//! builds compile the rows (the real-function table and the registry are made of them) but
//! export nothing: the test binary would otherwise interpose libc for the test harness
//! (trap 15), so there the functions are unused.
#![cfg_attr(test, allow(dead_code))]

mod fileio;
mod os;
mod resolver;
mod select;
mod socket;
mod stdio;
mod sync;
mod thread;
mod time;
#[cfg(test)]
mod twins_header;

/// Every hook, declared once: each abi file's `*_hooks!` macro holds that subsystem's rows,
/// and this hands all of them, concatenated, to `$consumer`, which makes of them what it
/// needs: `real` the table of real functions, `patch` the registry of hooked names. The file
/// itself makes its exports ([`shims`]). A row:
///
/// ```text
/// /// docs
/// Subsystem(flags) fn name(arg: CType, ...) -> CReturn => op;
/// ```
///
/// `Subsystem` names a [`crate::patch::Subsystem`]; `(flags)`, when there are any, is one of
/// `(optional)` (the real function may be missing from this glibc: see `real`),
/// `(version = "GLIBC_x")` (the real function at that symbol version), `(variadic)` (the
/// real function takes `...` after the arguments given). Without `=> op`, the export is
/// written by hand beside the rows (the compiler checks it has the row's signature, unless
/// variadic).
#[macro_export]
#[doc(hidden)]
macro_rules! every_hook {
    ($consumer:path) => {
        $crate::fileio_hooks!([
            $crate::os_hooks,
            $crate::resolver_hooks,
            $crate::select_hooks,
            $crate::socket_hooks,
            $crate::stdio_hooks,
            $crate::sync_hooks,
            $crate::thread_hooks,
            $crate::time_hooks,
            $consumer
        ] []);
    };
}

/// One link of [`every_hook!`]'s chain: `rows` added to those gathered so far, and on to the
/// next file's macro (the last link is the consumer, given `[] [every row]`).
macro_rules! next_hooks {
    ([$next:path $(, $rest:path)*] [$($gathered:tt)*] { $($rows:tt)* }) => {
        $next! { [$($rest),*] [$($gathered)* $($rows)*] }
    };
}
pub(crate) use next_hooks;

/// The consumer that makes a file's rows its exports: each `=> op` row a `#[no_mangle]`
/// function that acts on the op's [`Outcome`](crate::outcome::Outcome): its value, the real
/// function, or -1 with errno. A library linked on purpose and not yet asked to patch anything
/// is plain libc (see [`unengaged`]). Each also gets its green twin, `green_<name>`: the same op
/// for every caller, every subsystem active (README: "Green twins"). Unit-test builds keep the functions but not their C names
/// (the test binary would otherwise interpose libc for the test harness: trap 15).
macro_rules! shims {
    ([] [$(
        $(#[$doc:meta])*
        $sub:ident $(($($flag:tt)*))? fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $(=> $op:expr)?;
    )*]) => {$(
        $crate::abi::shims!(@one [$($($flag)*)?] $(#[$doc])* fn $name($($arg: $ty),*) -> $ret $(=> $op)?);
    )*};
    (@one [$($flag:tt)*] $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty => $op:expr) => {
        $(#[$doc])*
        #[cfg_attr(not(test), unsafe(no_mangle))]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            if $crate::abi::unengaged() {
                // SAFETY: the caller's arguments, to the real function.
                return unsafe { ($crate::real::get().$name)($($arg),*) };
            }
            $crate::abi::shims!(@act $name($($arg),*) -> $ret => $op)
        }
        // Its green twin, `green_<name>`: the same op, green whatever is patched (see
        // `patch::Twin`), in a library linked on purpose too. In a block: the Rust name is
        // nobody's business, the C one is made with `concat!`.
        const _: () = {
            #[cfg_attr(not(test), unsafe(export_name = concat!("green_", stringify!($name))))]
            unsafe extern "C" fn twin($($arg: $ty),*) -> $ret {
                let _twin = $crate::patch::Twin::enter();
                $crate::abi::shims!(@act $name($($arg),*) -> $ret => $op)
            }
        };
    };
    // What an export does with its op's `Outcome`: its value, the real function, or -1 (the
    // type's failure value) with errno.
    (@act $name:ident($($arg:ident),*) -> $ret:ty => $op:expr) => {
        // SAFETY: the caller upholds libc's contract for this function; the op and the real
        // function rely on nothing more.
        #[allow(unused_unsafe)]
        match unsafe { $op } {
            $crate::outcome::Outcome::Done(value) => value,
            // SAFETY: as above, with the caller's own arguments.
            $crate::outcome::Outcome::Bypass => unsafe { ($crate::real::get().$name)($($arg),*) },
            $crate::outcome::Outcome::Errno(code) => {
                $crate::sys::set_errno(code);
                <$ret as $crate::outcome::Failure>::FAILED
            }
        }
    };
    // Written by hand: a variadic C function has no Rust signature to check against.
    (@one [variadic $($flag:tt)*] $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty) => {};
    (@one [$($flag:tt)*] $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        const _: unsafe extern "C" fn($($ty),*) -> $ret = $name;
    };
}
pub(crate) use shims;

/// The hooks exported by hand (rows without `=> op`) that have a green twin, written beside
/// them; every row with an op has its twin made with its export (see [`shims`]). Read by the
/// tests that make and check `greenworld.h`'s twins (`twins_header`).
#[cfg(test)]
const HAND_TWINS: &[&str] = &[
    "closefrom",
    "pause",
    "fcntl",
    "fcntl64",
    "ioctl",
    "open",
    "open64",
    "openat",
    "openat64",
    "pthread_exit",
    "thrd_exit",
    "thrd_yield",
    "call_once",
];

/// The hooks with no green twin, and why: `greenworld.h` lists them with these words.
#[cfg(test)]
const NO_TWIN: &[(&str, &str)] = &[
    ("sigaction", SIGNAL_STATE),
    ("signal", SIGNAL_STATE),
    ("bsd_signal", SIGNAL_STATE),
    ("sysv_signal", SIGNAL_STATE),
    ("__sysv_signal", SIGNAL_STATE),
    ("sigset", SIGNAL_STATE),
    ("siginterrupt", SIGNAL_STATE),
    (
        "syscall",
        "a raw system call never waits green (the hook only keeps the fd table true about the \
         calls that make or close descriptors); call the function's twin instead",
    ),
];

#[cfg(test)]
const SIGNAL_STATE: &str = "a handler is the whole process's, not one call's: handlers run \
     through the library once greenworld_monkey_patch() (or the preload) engaged it, for every \
     caller alike";

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

/// eventlet's `is_monkey_patched`: 1 or 0 for a subsystem ("socket") or a hooked function
/// ("nanosleep") name, -1 for a name the library does not know (or NULL).
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[cfg_attr(not(test), unsafe(no_mangle))]
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
#[cfg_attr(not(test), unsafe(no_mangle))]
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
#[cfg(not(test))]
extern "C" fn constructor() {
    crate::runtime::init();
}

#[cfg(not(test))]
#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn() = constructor;
