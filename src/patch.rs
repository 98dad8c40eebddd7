//! What is patched: the subsystems (eventlet's `monkey_patch` kwargs) and the registry of
//! hooked functions, as data, answering eventlet's `is_monkey_patched`.
//!
//! Every shim asks [`active`] before doing anything green (and the few that no subsystem
//! decides ask [`engaged`]). The answer lives in one atomic: preloaded, the configuration
//! decides (see `loaded`); linked on purpose, nothing is patched until the program calls
//! [`monkey_patch`], which switches subsystems on at run time. Scoped (eventlet's
//! `import_patched`: `GREENWORLD_PATCH_FROM`, `greenworld_import_patched`), the export itself
//! asks [`green_caller`] who calls before its shim runs (see `abi::shims` and `scope`).

use crate::sys::LineBuf;
use core::cell::Cell;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

pub use crate::subsystem::{Subsystem, SubsystemSet};

/// The consumer of [`every_hook!`](crate::every_hook) that makes the rows [`HOOKED`].
macro_rules! registry {
    ([] [$(
        $(#[$doc:meta])*
        $sub:ident $(($($flag:tt)*))? fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $(=> $op:expr)?;
    )*]) => {
        /// Every function the library interposes, with the subsystem that decides whether it
        /// is green: one per hook row, so a name here always has its export (and the reverse;
        /// `tests::registry_matches_the_exports` checks the built library).
        pub const HOOKED: &[(&str, Subsystem)] = &[$( (stringify!($name), Subsystem::$sub), )*];
    };
}
pub(crate) use registry;

crate::every_hook!(crate::patch::registry);

/// Hooked names that do nothing but regular-file offload: green only when their subsystem is
/// patched *and* `GREENWORLD_FILEIO=pool` (`read`, `write`… answer for `os` alone: they are
/// green on pipes whatever the mode).
pub const FILE_ONLY: &[&str] = &[
    "open",
    "open64",
    "openat",
    "openat64",
    "__open_2",
    "__open64_2",
    "__openat_2",
    "__openat64_2",
    "creat",
    "creat64",
    "pread",
    "pread64",
    "__pread_chk",
    "__pread64_chk",
    "pwrite",
    "pwrite64",
    "fsync",
    "fdatasync",
];

/// Not yet decided (see [`bits`]).
const UNSET: u8 = 0x80;
/// The library acts at all: preloaded, or `monkey_patch` was called. Until then every hook is
/// plain libc, even those no subsystem decides (the signal wrappers, `fcntl`'s bookkeeping).
const ENGAGED: u8 = 0x40;
/// Patching is scoped to some shared objects: each export asks [`green_caller`] first. The
/// subsystem bits are then every subsystem green for some caller.
pub(crate) const SCOPED: u8 = 0x20;
/// Where an export's route sends its calls (see `abi::route!`, [`route`]).
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
pub(crate) enum Route {
    /// Its op, for every caller.
    Act,
    /// The real function, nothing else, for every caller.
    Real,
    /// The way that asks who calls (scoped) or decides first.
    Slow,
}

/// Where an export's calls go in the patching state `bits` ([`state`]): the slow way until
/// decided and while scoped; the real function in a library not engaged, and for a row whose op
/// is the real function and nothing else while its subsystem is off (`plain_when_off`) when
/// that subsystem is off for every caller (it can only be turned on by `monkey_patch` or
/// `import_patched`, after which the routes are pointed anew); else the op.
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
pub(crate) fn route(bits: u8, sub: Subsystem, plain_when_off: bool) -> Route {
    if !settled(bits) {
        Route::Slow
    } else if bits & ENGAGED == 0 || (plain_when_off && bits & sub.bit() == 0) {
        Route::Real
    } else {
        Route::Act
    }
}

/// Decided and not scoped: every export may go straight where [`route`] says.
#[inline]
pub(crate) fn settled(bits: u8) -> bool {
    bits & (UNSET | SCOPED) == 0
}

/// Writers of the exports' routes take turns (`abi::reroute_all`, `abi::settle`); a fork
/// waits for the one writing (`os::fork`), so no child starts with half of them pointed.
static ROUTES_LOCK: AtomicBool = AtomicBool::new(false);

/// The routes' lock, held until dropped.
pub(crate) struct RoutesLock(());

impl RoutesLock {
    /// The lock if nobody holds it.
    pub(crate) fn try_take() -> Option<RoutesLock> {
        ROUTES_LOCK
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            .then_some(RoutesLock(()))
    }

    /// The lock, once its holder (pointing the routes: microseconds) lets go.
    pub(crate) fn take() -> RoutesLock {
        loop {
            if let Some(lock) = RoutesLock::try_take() {
                return lock;
            }
            core::hint::spin_loop();
        }
    }
}

impl Drop for RoutesLock {
    fn drop(&mut self) {
        ROUTES_LOCK.store(false, Ordering::Release);
    }
}

/// The patching state now, as [`route`] reads it (UNSET before the first decision).
#[inline]
pub(crate) fn state() -> u8 {
    PATCHED.load(Ordering::Acquire)
}

/// The patching state: what is patched, engaged, scoped, or UNSET.
static PATCHED: AtomicU8 = AtomicU8::new(UNSET);
/// The subsystems green for every caller (the environment unscoped, `monkey_patch`); the
/// others only for the callers `scope` names.
// In `.data`, not `.bss`: every process touches it at start (see `loaded::PRELOADED`).
#[unsafe(link_section = ".data.greenworld_start")]
static EVERYWHERE: AtomicU8 = AtomicU8::new(0);

/// The subsystem bits and [`ENGAGED`]: preloaded, what the environment says; linked, nothing
/// until [`monkey_patch`]. Decided on first use, allocation-free (trap 3: a hook may ask
/// before the constructor runs).
#[inline]
fn bits() -> u8 {
    let bits = PATCHED.load(Ordering::Relaxed);
    if bits != UNSET {
        return bits;
    }
    decide()
}

/// The first decision (see [`bits`]), out of line: every shim inlines the check before it.
#[cold]
#[inline(never)]
fn decide() -> u8 {
    // The configuration is read either way: a malformed variable stops a linked program too.
    let config = crate::config::get();
    let from_env = config.patched.0;
    // GREENWORLD_PSYCOPG=1: libpq's calls green for every subsystem, a scope of its own
    // (needless when every subsystem is green for every caller already).
    let psycopg = config.psycopg && (config.patch_from || from_env != SubsystemSet::ALL.0);
    let initial = if !crate::loaded::preloaded() {
        0
    } else if config.patch_from {
        scope_from_env(from_env);
        let libpq = if psycopg && scope_psycopg() {
            SubsystemSet::ALL.0
        } else {
            0
        };
        from_env | libpq | ENGAGED | SCOPED
    } else {
        EVERYWHERE.fetch_or(from_env, Ordering::Relaxed);
        if psycopg && scope_psycopg() {
            from_env | SubsystemSet::ALL.0 | ENGAGED | SCOPED
        } else {
            from_env | ENGAGED
        }
    };
    // A monkey_patch racing with the first decision keeps its bits: it decides first too.
    match PATCHED.compare_exchange(UNSET, initial, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            if config.status {
                print_status(initial);
            }
            initial
        }
        Err(now) => now,
    }
}

/// `GREENWORLD_PATCH_FROM`'s names (validated by `config`), each green for `subs`.
fn scope_from_env(subs: u8) {
    let Some(value) = crate::config::patch_from() else {
        return;
    };
    for name in value.to_bytes().split(|&b| b == b',') {
        if let Err(why) = crate::scope::add(name, subs) {
            crate::log!(
                Error,
                "GREENWORLD_PATCH_FROM: cannot scope patching ({why:?}): nothing is green"
            );
        }
    }
}

/// `GREENWORLD_PSYCOPG=1`: libpq's calls green for every subsystem. False (said in one line)
/// when they cannot be (see `scope::Refused`).
fn scope_psycopg() -> bool {
    match crate::scope::add(PSYCOPG_LIBRARY, SubsystemSet::ALL.0) {
        Ok(()) => true,
        Err(why) => {
            crate::log!(
                Error,
                "GREENWORLD_PSYCOPG: cannot green libpq's calls ({why:?}): they are plain libc"
            );
            false
        }
    }
}

/// Does a call the fast way did not take (see `abi::route!`) go to its shim? Yes unless
/// patching is scoped and its caller, found from `return_address`, is not green for `sub`
/// (then it goes to the real function). Decides first.
#[inline]
pub fn routes_to_shim(return_address: usize, sub: Subsystem) -> bool {
    bits() & SCOPED == 0
        || EVERYWHERE.load(Ordering::Relaxed) & sub.bit() != 0
        || crate::scope::green_for(return_address) & sub.bit() != 0
}

/// A scoped export's question (see [`SCOPED`]): is `sub` green for a call that returns to
/// `return_address`? When not, the export calls the real function and nothing else.
#[inline]
pub fn green_caller(return_address: usize, sub: Subsystem) -> bool {
    EVERYWHERE.load(Ordering::Relaxed) & sub.bit() != 0
        || crate::scope::green_for(return_address) & sub.bit() != 0
}

/// `GREENWORLD_STATUS`: what is patched at load (linked on purpose, nothing yet), from the
/// first decision itself. A subsystem is `patched` for every caller, `scoped` when green only
/// for the calls of the objects `from=` names, or `not-patched`; `psycopg` says whether libpq's
/// calls are green for every subsystem.
fn print_status(bits: u8) {
    let everywhere = EVERYWHERE.load(Ordering::Relaxed);
    let mut buf = LineBuf::new();
    let _ = buf.write_str("greenworld:");
    for sub in Subsystem::ALL {
        let state = if everywhere & sub.bit() != 0 {
            "patched"
        } else if bits & sub.bit() != 0 {
            "scoped"
        } else {
            "not-patched"
        };
        let _ = write!(buf, " {}={}", sub.name(), state);
    }
    let psycopg = if psycopg_patched() {
        "patched"
    } else {
        "not-patched"
    };
    let _ = write!(buf, " psycopg={psycopg}");
    if bits & SCOPED != 0 {
        let _ = buf.write_str(" from=");
        for (i, name) in crate::scope::names().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(buf, "{sep}{}", core::str::from_utf8(name).unwrap_or("?"));
        }
    }
    // Last, so readers of the subsystems need not change: what `greenrun --version` reports.
    let _ = writeln!(buf, " version={}", env!("CARGO_PKG_VERSION"));
    crate::log::to_stderr(buf.as_bytes());
}

/// Is `sub` green for this call? The one question every shim asks first. Inside a green twin
/// (see [`Twin`]) every subsystem is; the twin's flag is read only when the subsystem is not
/// patched and the program ever called a twin, so a patched call pays nothing for it.
#[inline]
pub fn active(sub: Subsystem) -> bool {
    bits() & sub.bit() != 0 || in_twin()
}

thread_local! {
    /// The thread running on this OS thread is inside a green twin's call (`green_read`...).
    /// Const-initialised and destructor-free (trap 6). It belongs to that green thread, not to
    /// the OS thread: the hub takes it away while the thread is parked ([`leave_twin`]).
    static IN_TWIN: Cell<bool> = const { Cell::new(false) };
}

/// Some thread called a green twin once: until then no [`IN_TWIN`] is set, and neither
/// [`active`] nor a parking thread need to look at it (in a shared library each look at a
/// thread-local is a call to `__tls_get_addr`). A relaxed flag is enough: a thread only asks
/// about its own [`IN_TWIN`], which it set after it stored this.
static TWIN_CALLED: AtomicBool = AtomicBool::new(false);

#[inline]
fn in_twin() -> bool {
    TWIN_CALLED.load(Ordering::Relaxed) && in_twin_here()
}

/// Out of line: inlined, the compiler may compute the thread-local's address (the call) before
/// the test of [`TWIN_CALLED`], in every shim.
#[cold]
#[inline(never)]
fn in_twin_here() -> bool {
    IN_TWIN.with(Cell::get)
}

/// The scope of a green twin's call (eventlet's `from eventlet.green import socket`): every
/// subsystem is active for it, whatever is patched, until it drops.
pub struct Twin(bool);

impl Twin {
    #[inline]
    pub fn enter() -> Twin {
        if !TWIN_CALLED.load(Ordering::Relaxed) {
            TWIN_CALLED.store(true, Ordering::Relaxed);
        }
        Twin(IN_TWIN.replace(true))
    }
}

impl Drop for Twin {
    #[inline]
    fn drop(&mut self) {
        IN_TWIN.set(self.0);
    }
}

/// The calling thread gives up the OS thread (parks, yields, or runs code that is not the
/// twin's, like a `pthread_once` routine): others run as what they are, not inside its twin.
/// Returns what to give back to [`resume_twin`] when it runs again.
#[inline]
pub fn leave_twin() -> bool {
    TWIN_CALLED.load(Ordering::Relaxed) && take_twin()
}

/// [`leave_twin`]'s look at the thread-local, out of line as [`in_twin_here`].
#[cold]
#[inline(never)]
fn take_twin() -> bool {
    IN_TWIN.replace(false)
}

/// The other half of [`leave_twin`]. When it said false there is nothing to put back: whoever
/// ran meanwhile left no twin behind (each one's call ends or parks, and so leaves it, first).
#[inline]
pub fn resume_twin(was: bool) {
    if was {
        IN_TWIN.set(true);
    }
}

/// Does the library act at all? Asked by the hooks no subsystem decides; false only in a
/// program that linked the library and has not called `monkey_patch`.
#[inline]
pub fn engaged() -> bool {
    bits() & ENGAGED != 0
}

/// eventlet's `monkey_patch`: `subs` green from now on, for the whole process, on top of what
/// already is (nothing is ever unpatched: green threads cannot turn back into OS threads).
/// Idempotent; safe from any thread at any time. True when this call engaged the library (see
/// [`ENGAGED`]): the caller then takes over what the program set up meanwhile.
pub fn monkey_patch(subs: SubsystemSet) -> bool {
    bits();
    EVERYWHERE.fetch_or(subs.0, Ordering::Relaxed);
    PATCHED.fetch_or(subs.0 | ENGAGED, Ordering::AcqRel) & ENGAGED == 0
}

/// eventlet's `import_patched`: `subs` green from now on for the calls made from the shared
/// object `name` (a soname, file name, or path), on top of what already is; the errno when it
/// cannot be: EINVAL for a bad name, ENOSPC when `scope::MAX_SCOPES` are named, ENOSYS when
/// glibc cannot tell a caller's object. Ok(true) when this call engaged the library (as
/// [`monkey_patch`]).
pub fn import_patched(name: &[u8], subs: SubsystemSet) -> Result<bool, i32> {
    bits();
    if !core::str::from_utf8(name).is_ok_and(crate::scope::valid_name) {
        return Err(libc::EINVAL);
    }
    if subs.0 & !EVERYWHERE.load(Ordering::Relaxed) == 0 && engaged() {
        return Ok(false);
    }
    crate::scope::add(name, subs.0).map_err(|why| match why {
        crate::scope::Refused::BadName => libc::EINVAL,
        crate::scope::Refused::Full => libc::ENOSPC,
        crate::scope::Refused::NoFinder => libc::ENOSYS,
    })?;
    Ok(PATCHED.fetch_or(subs.0 | ENGAGED | SCOPED, Ordering::AcqRel) & ENGAGED == 0)
}

/// `GW_PSYCOPG` in `greenworld.h`: eventlet's `psycopg` kwarg, libpq's calls green for every
/// subsystem (`import_patched` of [`PSYCOPG_LIBRARY`]); the other flags are the subsystems'
/// bits.
pub const PSYCOPG_FLAG: u32 = 1 << 5;
/// The library eventlet's `psycopg` greens (psycopg is a Python binding of it), by soname:
/// the scope holds from its first call when it is loaded later (`dlopen`) too.
pub const PSYCOPG_LIBRARY: &[u8] = b"libpq.so.5";

/// What the C flags of `greenworld_monkey_patch` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags {
    /// Green for every caller.
    pub subs: SubsystemSet,
    /// `GW_PSYCOPG`: libpq's calls green for every subsystem.
    pub psycopg: bool,
}

/// The flags of `greenworld_monkey_patch` or `greenworld_import_patched`, or the errno for
/// them: 0 is every subsystem (as eventlet's `monkey_patch()` without arguments, which greens
/// libpq's calls with everyone's), a bit no flag has is EINVAL.
pub fn from_flags(flags: u32) -> Result<Flags, i32> {
    if flags == 0 {
        return Ok(Flags {
            subs: SubsystemSet::ALL,
            psycopg: false,
        });
    }
    if flags & !(u32::from(SubsystemSet::ALL.0) | PSYCOPG_FLAG) != 0 {
        return Err(libc::EINVAL);
    }
    Ok(Flags {
        subs: SubsystemSet((flags & u32::from(SubsystemSet::ALL.0)) as u8),
        psycopg: flags & PSYCOPG_FLAG != 0,
    })
}

/// eventlet's `monkey_patch` with its flags: `GW_PSYCOPG` is [`import_patched`] of libpq for
/// every subsystem (first: it is the part that can fail, and then nothing changes), the
/// subsystems [`monkey_patch`]. Ok(true) when this call engaged the library.
pub fn monkey_patch_flags(flags: Flags) -> Result<bool, i32> {
    // Every subsystem green for every caller greens libpq's calls too: no scope to pay for.
    let libpq = flags.psycopg && flags.subs != SubsystemSet::ALL;
    let mut engaged_now = libpq && import_patched(PSYCOPG_LIBRARY, SubsystemSet::ALL)?;
    if !flags.subs.is_empty() {
        engaged_now |= monkey_patch(flags.subs);
    }
    Ok(engaged_now)
}

/// eventlet's `is_monkey_patched('psycopg')`: are libpq's calls green for every subsystem
/// (its scope, or every subsystem patched for every caller)?
fn psycopg_patched() -> bool {
    bits();
    let libpq = EVERYWHERE.load(Ordering::Relaxed) | crate::scope::named(PSYCOPG_LIBRARY);
    libpq & SubsystemSet::ALL.0 == SubsystemSet::ALL.0
}

/// eventlet's `is_monkey_patched`: 1 or 0 for a subsystem or hooked function name, or
/// `psycopg`, None for a name it does not know; scoped, for a caller whose call returns to
/// `return_address` (`psycopg` answers for libpq's calls, whoever asks).
pub fn is_patched(name: &str, return_address: usize) -> Option<bool> {
    if name == "psycopg" {
        return Some(psycopg_patched());
    }
    let sub = Subsystem::from_name(name)
        .or_else(|| HOOKED.iter().find(|(f, _)| *f == name).map(|&(_, s)| s))?;
    let pooled = || crate::config::get().fileio == crate::config::FileIo::Pool;
    let for_caller = bits() & SCOPED == 0 || green_caller(return_address, sub);
    Some(for_caller && active(sub) && (!FILE_ONLY.contains(&name) || pooled()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The function names the built library exports (`nm -D`; make test builds it first).
    pub(crate) fn built_library_functions() -> Vec<String> {
        let lib = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/release/libgreenworld.so"
        );
        let out = std::process::Command::new("nm")
            .args(["-D", "--defined-only", lib])
            .output()
            .expect("nm runs");
        assert!(out.status.success(), "nm -D {lib}: build the library first");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
                [_, "T" | "W", name] => Some(name.to_owned()),
                _ => None,
            })
            .collect()
    }

    /// The library's API, not hooks: every other dynamic export must be a registry row.
    const API: &[&str] = &[
        // Watched for `scope`, not hooked (see `abi::loader`).
        "dlclose",
        "dlmopen",
        "dlopen",
        // Watched for `context::in_vfork_child`, not hooked (see `abi::loader`).
        "_Fork",
        "clone",
        "vfork",
        "greenworld_import_patched",
        "greenworld_is_monkey_patched",
        "greenworld_monkey_patch",
    ];

    #[test]
    fn registry_matches_the_exports() {
        let functions = built_library_functions();
        let exported: Vec<&str> = functions
            .iter()
            .map(String::as_str)
            .filter(|name| !API.contains(name))
            // The hooks' green twins: `abi::twins_header` checks those.
            .filter(|name| !name.starts_with("green_"))
            .collect();
        for (name, _) in HOOKED {
            assert!(
                exported.contains(name),
                "{name} is registered but not exported"
            );
        }
        for name in &exported {
            assert!(
                HOOKED.iter().any(|(f, _)| f == name),
                "{name} is exported but has no registry row"
            );
        }
        let mut names: Vec<&str> = HOOKED.iter().map(|(f, _)| *f).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), HOOKED.len(), "a hook has two rows");
    }

    #[test]
    fn file_only_names_are_hooked_os_calls() {
        for name in FILE_ONLY {
            assert!(
                HOOKED.contains(&(*name, Subsystem::Os)),
                "{name} is file-only but not a hooked os call"
            );
        }
    }

    #[test]
    fn c_flags_name_subsystems() {
        // greenworld.h: GW_OS 1, GW_SELECT 2, GW_SOCKET 4, GW_THREAD 8, GW_TIME 16, GW_PSYCOPG 32.
        let mut thread_time = SubsystemSet::EMPTY;
        thread_time.insert(Subsystem::Thread);
        thread_time.insert(Subsystem::Time);
        let subs = |flags| from_flags(flags).map(|f| f.subs);
        let psycopg = |flags| from_flags(flags).map(|f| f.psycopg);
        assert_eq!(subs(8 | 16), Ok(thread_time));
        assert_eq!(subs(1), Ok(SubsystemSet(Subsystem::Os.bit())));
        assert_eq!(subs(0), Ok(SubsystemSet::ALL));
        assert_eq!(psycopg(0), Ok(false));
        assert_eq!(subs(31), Ok(SubsystemSet::ALL));
        assert_eq!(subs(32), Ok(SubsystemSet::EMPTY));
        assert_eq!(psycopg(32), Ok(true));
        assert_eq!(subs(8 | 32), Ok(SubsystemSet(Subsystem::Thread.bit())));
        assert_eq!(psycopg(8 | 32), Ok(true));
        assert_eq!(from_flags(64), Err(libc::EINVAL));
        assert_eq!(from_flags(1 << 31), Err(libc::EINVAL));
        assert_eq!(PSYCOPG_LIBRARY, b"libpq.so.5");
    }

    #[test]
    fn the_header_matches_the_library() {
        let header = std::fs::read_to_string("include/greenworld.h").unwrap();
        let define = |name: &str| -> String {
            let line = header
                .lines()
                .find(|l| l.starts_with(&format!("#define {name} ")))
                .unwrap_or_else(|| panic!("greenworld.h has no {name}"));
            line[format!("#define {name} ").len()..]
                .split("/*")
                .next()
                .unwrap()
                .trim()
                .to_owned()
        };
        for sub in Subsystem::ALL {
            let name = format!("GW_{}", sub.name().to_uppercase());
            assert_eq!(define(&name), format!("0x{:02x}u", sub.bit()), "{name}");
        }
        assert_eq!(define("GW_PSYCOPG"), format!("0x{PSYCOPG_FLAG:02x}u"));
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(define("GREENWORLD_VERSION"), format!("\"{version}\""));
        let parts: Vec<&str> = version.split('.').collect();
        assert_eq!(define("GREENWORLD_VERSION_MAJOR"), parts[0]);
        assert_eq!(define("GREENWORLD_VERSION_MINOR"), parts[1]);
        assert_eq!(define("GREENWORLD_VERSION_PATCH"), parts[2]);
    }

    #[test]
    fn names_resolve_to_subsystems() {
        assert_eq!(Subsystem::from_name("socket"), Some(Subsystem::Socket));
        assert_eq!(Subsystem::from_name("psycopg"), None);
        let mut set = SubsystemSet::EMPTY;
        set.insert(Subsystem::Time);
        assert!(set.contains(Subsystem::Time) && !set.contains(Subsystem::Os));
        assert_eq!(
            SubsystemSet::ALL.without(set).contains(Subsystem::Time),
            false
        );
    }
}
