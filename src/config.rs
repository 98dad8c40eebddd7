//! Configuration from the environment, read once (on load, or on the first hooked call if
//! another library's constructor gets there first).
//!
//! The subsystem variables mirror `eventlet.monkey_patch(os=, select=, socket=, thread=, time=,
//! psycopg=)` with eventlet's truth table: none named, everything is patched; any named true,
//! only those; otherwise all but those named false. `psycopg` is no subsystem of hooks but a
//! library (libpq) whose calls are green for every subsystem (see `patch::PSYCOPG_LIBRARY`).

use crate::subsystem::{Subsystem, SubsystemSet};
use crate::sys::LineBuf;
use core::ffi::CStr;
use core::fmt::Write;
use once_cell::sync::OnceCell;

/// The default green stack when a program gives no `pthread_attr` stack size: what a default
/// glibc attribute reports, so callers that size buffers by it are not surprised (trap 14).
pub const DEFAULT_STACK_SIZE: usize = 8 << 20;
/// glibc's PTHREAD_STACK_MIN: the smallest stack glibc lets a program ask for.
pub const MIN_STACK_SIZE: usize = 16 << 10;

const BOOLEANS: &str = "1/0, true/false, yes/no, on/off";
const SIZES: &str = "a byte count of at least 16K, with an optional K, M or G suffix";
const LEVELS: &str = "off, error, warn, info, debug, optionally followed by :PATH (a file)";
const STATS: &str = "1/0, true/false, yes/no, on/off, all, a file PATH containing '/', or all:PATH";
const POOL_SIZES: &str = "a whole number of threads from 1 to 1024";
const HUB_COUNTS: &str = "auto, or a whole number of hubs from 1 to 256";
/// Most hubs (the monitor's list holds this many: `hub::watch::MAX_HUBS`).
pub const MAX_HUBS: usize = 256;
const FILEIO_MODES: &str = "off, pool";
const SIGNALS: &str = "a signal name (SIGUSR2, USR2) or number from 1 to 64, not KILL or STOP";
const PIDS: &str = "a process id (a whole number above 0)";
const TLS_MODES: &str = "private, shared";
const MILLISECONDS: &str = "off, or a whole number of milliseconds from 1 to 3600000";
const SLICES: &str = "off, or a duration from 100us to 10s (e.g. 2ms, 500us, 10ms, 1s; a plain number is milliseconds)";
/// The time slice's bounds (`GREENWORLD_SLICE`): below 100 µs a thread would spend its turn
/// switching; above 10 s a spinner would hold its hub for longer than any program waits.
const SLICE_RANGE_NS: core::ops::RangeInclusive<u64> = 100_000..=10_000_000_000;
/// The default slice: 2 ms (see `hub::slice` and `sysmon` for why shorter than Go's 10 ms).
pub const DEFAULT_SLICE_NS: u64 = 2_000_000;
const SHARED_OBJECTS: &str = "a comma-separated list of at most 16 shared object names or paths \
     (sonames or file names such as libcurl.so.4, or paths with a '/'), each at most 63 bytes";
/// eventlet's tpool default.
pub const DEFAULT_TPOOL_SIZE: usize = 8;

/// Every `GREENWORLD_*` name in use: the library's own, the one it sets for itself, and those
/// the scripts read. Any other name in the environment is taken for a typo (see [`unknown_var`]).
/// A new variable goes here.
pub const KNOWN_VARS: &[&str] = &[
    // The library's (subsystems first, as `Subsystem::env_var` names them).
    "GREENWORLD_OS",
    "GREENWORLD_SELECT",
    "GREENWORLD_SOCKET",
    "GREENWORLD_THREAD",
    "GREENWORLD_TIME",
    "GREENWORLD_PSYCOPG",
    "GREENWORLD_STACK_SIZE",
    "GREENWORLD_STACK_COPY",
    "GREENWORLD_STATS",
    "GREENWORLD_LOG",
    "GREENWORLD_STATUS",
    "GREENWORLD_TPOOL_SIZE",
    "GREENWORLD_INHERIT",
    "GREENWORLD_FILEIO",
    "GREENWORLD_PATCH_FROM",
    "GREENWORLD_DUMP_AT_EXIT",
    "GREENWORLD_DUMP_SIGNAL",
    "GREENWORLD_DEADLOCK",
    // Set by `greenrun --dump PID` for the library to print that process's dump (see `dump`).
    "GREENWORLD_DUMP_OF",
    "GREENWORLD_TLS",
    "GREENWORLD_PREEMPT",
    "GREENWORLD_SLICE",
    "GREENWORLD_BLOCK_WARN",
    "GREENWORLD_ESCAPES",
    "GREENWORLD_HUBS",
    // Set by the library itself under GREENWORLD_INHERIT=0 (see `inherit`).
    "GREENWORLD_INHERIT_PID",
    // The scripts': greenrun, run-tests, test-programs, test-python.
    "GREENWORLD_LIB",
    "GREENWORLD_SRC",
    "GREENWORLD_TEST_TIMEOUT",
    "GREENWORLD_PROG_TIMEOUT",
    "GREENWORLD_PROG_KEEP",
    "GREENWORLD_PY_TIMEOUT",
    "GREENWORLD_PY_KEEP",
];

pub use crate::log::LogLevel;

/// Which processes print the `GREENWORLD_STATS` summary at exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stats {
    Off,
    /// Processes that made a green thread (a launcher's helpers say nothing).
    Green,
    /// Every process.
    All,
}

/// Where blocking calls on regular files and block devices go (`GREENWORLD_FILEIO`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileIo {
    /// Plain libc on the calling OS thread: a page-cache hit costs far less than a hand-off.
    Off,
    /// The thread pool, while the green caller parks (see `fileio`).
    Pool,
}

/// Whose `__thread` variables a green thread sees (`GREENWORLD_TLS`; see `green::tls`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    /// Its own, as a pthread: the static TLS block is swapped at each switch, the DTV too.
    Private,
    /// Its OS thread's, shared with the other green threads of that OS thread.
    Shared,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub patched: SubsystemSet,
    /// `GREENWORLD_PSYCOPG` in the truth table's answer: libpq's calls green for every
    /// subsystem, whatever `patched` says for other callers. Only when named true: everything
    /// (none named) or all but some (`GREENWORLD_PSYCOPG=0` among them) need no scope, the
    /// subsystems patched for every caller are patched for libpq's calls too.
    pub psycopg: bool,
    pub stack_size: usize,
    /// `GREENWORLD_STACK_COPY`: the green threads of a hub share one stack region, each
    /// parked one's used bytes copied out to the heap (`green::copied`).
    pub stack_copy: bool,
    pub stats: Stats,
    /// `GREENWORLD_STATS` names a file for the summary (see [`stats_value`]).
    pub stats_to_file: bool,
    pub log: LogLevel,
    /// `GREENWORLD_LOG` names a file for the lines (see [`log_value`]).
    pub log_to_file: bool,
    pub status: bool,
    pub tpool_size: usize,
    /// Do programs this process execs inherit the library through `LD_PRELOAD`?
    pub inherit: bool,
    pub fileio: FileIo,
    pub tls: Tls,
    /// `GREENWORLD_PATCH_FROM` names shared objects: patching is scoped to their calls (the
    /// names are read again from the environment by `patch`, which keeps them in `scope`).
    pub patch_from: bool,
    /// `GREENWORLD_DUMP_AT_EXIT`: the green-thread dump on stderr at normal exit.
    pub dump_at_exit: bool,
    /// `GREENWORLD_DUMP_SIGNAL`: the signal that asks for a dump (0: none, the default).
    pub dump_signal: i32,
    /// `GREENWORLD_DEADLOCK`: say so when every green thread waits on another (on by default).
    pub deadlock: bool,
    /// `GREENWORLD_DUMP_OF`: this process only prints that process's dump, then exits.
    pub dump_of: Option<i32>,
    /// Preempt a thread that keeps its hub for a slice without a switch (`sysmon`); false
    /// under `GREENWORLD_SLICE=off` too.
    pub preempt: bool,
    /// `GREENWORLD_SLICE`: how long a thread may keep its hub while others are runnable, in
    /// ns; None (`off`): no time slice at all (no preemption, no yield at safe points).
    pub slice_ns: Option<u64>,
    /// Warn when a hub's OS thread is blocked this long (ms) in a call no hook sees.
    pub block_warn_ms: Option<u64>,
    /// At exit, the table of calls that blocked a hub's OS thread (`sysmon::escapes`).
    pub escapes: bool,
    /// `GREENWORLD_HUBS`: how many OS threads run hubs (1: only the program's own).
    pub hubs: Hubs,
}

impl Config {
    /// The monitor follows system-call episodes, reading each hub's `/proc/…/syscall` (the
    /// blocking detector, the escapes table): `sysmon`'s `Wanted` and the files a hub keeps
    /// open for it (`hub::task_files`) both go by this.
    pub fn follows_blocks(&self) -> bool {
        self.block_warn_ms.is_some() || self.escapes
    }

    /// The monitor reads each hub's `/proc/…/stat` (before a preemption, and before a
    /// backtrace of a hub blocked in user code).
    pub fn reads_hub_stat(&self) -> bool {
        self.preempt || self.block_warn_ms.is_some()
    }
}

/// How many hubs (`GREENWORLD_HUBS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hubs {
    Count(usize),
    /// As many as the CPUs the process may run on (`sched_getaffinity`), at most [`MAX_HUBS`].
    Auto,
}

impl Hubs {
    /// The number of hubs this process runs.
    pub fn count(self) -> usize {
        match self {
            Hubs::Count(n) => n,
            Hubs::Auto => {
                let cpus = crate::sys::os_cpu_mask()
                    .map_or(1, |mask| mask.iter().map(|w| w.count_ones() as usize).sum());
                cpus.clamp(1, MAX_HUBS)
            }
        }
    }
}

/// A malformed variable: what the one line on stderr says.
#[derive(Debug, PartialEq, Eq)]
pub struct BadVar {
    pub name: &'static str,
    pub value: String,
    pub accepted: &'static str,
}

impl core::fmt::Display for BadVar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}='{}' is not valid; accepted: {}",
            self.name, self.value, self.accepted
        )
    }
}

impl Config {
    /// Parses the configuration from a lookup function (the environment, or a test's table).
    /// An empty value counts as unset.
    /// Allocates only to report an error (an allocator's own start-up may reach this).
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Config, BadVar> {
        let get = |name: &str| get(name).filter(|v| !v.is_empty());
        let bad = |name: &'static str, value: &str, accepted: &'static str| BadVar {
            name,
            value: value.to_owned(),
            accepted,
        };
        let boolean = |name: &'static str| -> Result<Option<bool>, BadVar> {
            match get(name) {
                None => Ok(None),
                Some(v) => parse_bool(v)
                    .map(Some)
                    .ok_or_else(|| bad(name, v, BOOLEANS)),
            }
        };

        let mut named_true = SubsystemSet::EMPTY;
        let mut named_false = SubsystemSet::EMPTY;
        for sub in Subsystem::ALL {
            match boolean(sub.env_var())? {
                Some(true) => named_true.insert(sub),
                Some(false) => named_false.insert(sub),
                None => {}
            }
        }
        let psycopg_named = boolean("GREENWORLD_PSYCOPG")?;
        let (patched, psycopg) = if !named_true.is_empty() || psycopg_named == Some(true) {
            (named_true, psycopg_named == Some(true))
        } else {
            (SubsystemSet::ALL.without(named_false), false)
        };

        let stack_size = match get("GREENWORLD_STACK_SIZE") {
            None => DEFAULT_STACK_SIZE,
            Some(v) => parse_size(v)
                .filter(|&n| n >= MIN_STACK_SIZE)
                .ok_or_else(|| bad("GREENWORLD_STACK_SIZE", v, SIZES))?,
        };
        let (log, log_file) = match get("GREENWORLD_LOG") {
            None => (LogLevel::Warn, None),
            Some(v) => log_value(v).ok_or_else(|| bad("GREENWORLD_LOG", v, LEVELS))?,
        };
        let (stats, stats_file) = match get("GREENWORLD_STATS") {
            None => (Stats::Off, None),
            Some(v) => stats_value(v).ok_or_else(|| bad("GREENWORLD_STATS", v, STATS))?,
        };
        let tpool_size = match get("GREENWORLD_TPOOL_SIZE") {
            None => DEFAULT_TPOOL_SIZE,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1024).contains(n))
                .ok_or_else(|| bad("GREENWORLD_TPOOL_SIZE", v, POOL_SIZES))?,
        };
        // Exactly these words: a mode is not a boolean ("on" would not say where the calls go).
        let fileio = match get("GREENWORLD_FILEIO") {
            None | Some("off") => FileIo::Off,
            Some("pool") => FileIo::Pool,
            Some(v) => return Err(bad("GREENWORLD_FILEIO", v, FILEIO_MODES)),
        };
        let tls = match get("GREENWORLD_TLS") {
            None | Some("private") => Tls::Private,
            Some("shared") => Tls::Shared,
            Some(v) => return Err(bad("GREENWORLD_TLS", v, TLS_MODES)),
        };
        let patch_from = match get("GREENWORLD_PATCH_FROM") {
            None => false,
            Some(v) if patch_from_value(v) => true,
            Some(v) => return Err(bad("GREENWORLD_PATCH_FROM", v, SHARED_OBJECTS)),
        };
        let dump_signal = match get("GREENWORLD_DUMP_SIGNAL") {
            None => 0,
            Some(v) => signal_value(v).ok_or_else(|| bad("GREENWORLD_DUMP_SIGNAL", v, SIGNALS))?,
        };
        let dump_of = match get("GREENWORLD_DUMP_OF") {
            None => None,
            Some(v) => Some(
                v.parse::<i32>()
                    .ok()
                    .filter(|&pid| pid > 0)
                    .ok_or_else(|| bad("GREENWORLD_DUMP_OF", v, PIDS))?,
            ),
        };
        let block_warn_ms = match get("GREENWORLD_BLOCK_WARN") {
            None | Some("off") => None,
            Some(v) => Some(
                v.parse::<u64>()
                    .ok()
                    .filter(|n| (1..=3_600_000).contains(n))
                    .ok_or_else(|| bad("GREENWORLD_BLOCK_WARN", v, MILLISECONDS))?,
            ),
        };
        let slice_ns = match get("GREENWORLD_SLICE") {
            None => Some(DEFAULT_SLICE_NS),
            Some(v) if v.eq_ignore_ascii_case("off") => None,
            Some(v) => Some(
                parse_duration_ns(v)
                    .filter(|ns| SLICE_RANGE_NS.contains(ns))
                    .ok_or_else(|| bad("GREENWORLD_SLICE", v, SLICES))?,
            ),
        };
        let hubs = match get("GREENWORLD_HUBS") {
            None => Hubs::Count(1),
            Some("auto") => Hubs::Auto,
            Some(v) => Hubs::Count(
                v.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_HUBS).contains(n))
                    .ok_or_else(|| bad("GREENWORLD_HUBS", v, HUB_COUNTS))?,
            ),
        };
        Ok(Config {
            hubs,
            psycopg,
            dump_at_exit: boolean("GREENWORLD_DUMP_AT_EXIT")?.unwrap_or(false),
            dump_signal,
            deadlock: boolean("GREENWORLD_DEADLOCK")?.unwrap_or(true),
            dump_of,
            preempt: boolean("GREENWORLD_PREEMPT")?.unwrap_or(true) && slice_ns.is_some(),
            slice_ns,
            block_warn_ms,
            escapes: boolean("GREENWORLD_ESCAPES")?.unwrap_or(false),
            patch_from,
            tpool_size,
            fileio,
            tls,
            patched,
            stack_size,
            stack_copy: boolean("GREENWORLD_STACK_COPY")?.unwrap_or(false),
            stats,
            stats_to_file: stats_file.is_some(),
            log,
            log_to_file: log_file.is_some(),
            status: boolean("GREENWORLD_STATUS")?.unwrap_or(false),
            inherit: boolean("GREENWORLD_INHERIT")?.unwrap_or(true),
        })
    }

    /// Reads the process environment with `getenv` (no lock, no hook, safe this early). Every
    /// preloaded child parses this at start, most with no variable of ours set: one pass over
    /// `environ` finds that, and spares the forty `getenv` walks of the whole environment.
    pub fn from_env() -> Result<Config, BadVar> {
        if !any_greenworld_var() {
            return Config::parse(|_| None);
        }
        Config::parse(|name| {
            let mut cname = [0u8; 64];
            cname[..name.len()].copy_from_slice(name.as_bytes());
            // SAFETY: cname is NUL-terminated (names are short constants); getenv returns NULL
            // or a pointer to a NUL-terminated string that lives in the environment.
            let value = unsafe { libc::getenv(cname.as_ptr().cast()) };
            if value.is_null() {
                return None;
            }
            // SAFETY: non-null getenv results are NUL-terminated C strings that stay valid
            // while the configuration is parsed (nothing here changes the environment).
            unsafe { CStr::from_ptr(value) }
                .to_str()
                .ok()
                .or(Some("\u{fffd}"))
        })
    }
}

static CONFIG: OnceCell<Config> = OnceCell::new();

/// The configuration, read from the environment on first use (the library's constructor, or
/// a hooked call from another library's constructor before it: trap 3), with what that first
/// read sets up: the log and stats sinks, the panic policy, the stats summary at exit. A
/// malformed variable stops the program here: one line on stderr, exit status 2.
#[inline]
pub fn get() -> &'static Config {
    match CONFIG.get() {
        Some(c) => c,
        None => CONFIG.get_or_init(load),
    }
}

fn load() -> Config {
    match Config::from_env() {
        Ok(mut config) => {
            if !config.inherit && crate::inherit::role() == crate::inherit::Role::Helper {
                // A program a wrapper script runs on its way to the one meant: plain libc.
                config.patched = SubsystemSet::EMPTY;
                config.psycopg = false;
                config.stats = Stats::Off;
            }
            crate::log::configure(config.log);
            open_sinks(&config);
            if config.patched.contains(Subsystem::Thread) {
                // Go's own threads wait for each other in raw futex calls; Rust's std tells
                // threads apart by a thread-local's address: either way they stay OS threads.
                let runtime = if crate::go_runtime::main_is_go() {
                    Some("Go")
                } else if crate::rust_std::main_is_rust() {
                    Some("Rust")
                } else {
                    None
                };
                if let Some(runtime) = runtime {
                    config.patched = config
                        .patched
                        .without(SubsystemSet(Subsystem::Thread.bit()));
                    crate::log!(
                        Info,
                        "a {runtime} program: its threads stay OS threads (thread not patched)"
                    );
                }
            }
            install_panic_policy();
            if config.stats != Stats::Off {
                crate::stats::turn_on();
                // SAFETY: print_stats is an extern "C" fn taking nothing, as atexit expects.
                if unsafe { libc::atexit(print_stats) } != 0 {
                    crate::log!(Warn, "cannot register the stats summary with atexit");
                }
            }
            config
        }
        Err(bad) => {
            let mut buf = LineBuf::new();
            let _ = writeln!(buf, "greenworld: {bad}");
            crate::log::to_stderr(buf.as_bytes());
            // SAFETY: _exit ends the process at once; nothing of ours is left half-done.
            unsafe { libc::_exit(2) }
        }
    }
}

/// Where lines go: stderr (copied at once when the stats go there), and the files
/// `GREENWORLD_LOG=LEVEL:PATH` and
/// `GREENWORLD_STATS=PATH` name (their paths read again from the environment: the
/// configuration keeps only that there is one).
fn open_sinks(config: &Config) {
    let file = |var: &'static str, split: fn(&str) -> Option<&str>| {
        let value = env(var)?;
        let text = value.to_str().ok()?;
        let path = split(text)?;
        // The path is the value's tail, so it ends where the value does, at its NUL.
        let tail = &value.to_bytes_with_nul()[text.len() - path.len()..];
        Some((var, CStr::from_bytes_with_nul(tail).ok()?))
    };
    let log = config
        .log_to_file
        .then(|| file("GREENWORLD_LOG", |v| log_value(v)?.1))
        .flatten();
    let stats = config
        .stats_to_file
        .then(|| file("GREENWORLD_STATS", |v| stats_value(v)?.1))
        .flatten();
    let stats_on_stderr = config.stats != Stats::Off && !config.stats_to_file;
    crate::log::open_sinks(log, stats, stats_on_stderr);
}

/// Is `value` what `GREENWORLD_PATCH_FROM` accepts (see [`SHARED_OBJECTS`])?
fn patch_from_value(value: &str) -> bool {
    let names = value.split(',');
    names.clone().count() <= crate::scope::MAX_SCOPES
        && names.into_iter().all(crate::scope::valid_name)
}

/// `GREENWORLD_PATCH_FROM`'s value, for `patch` to read its names from.
pub fn patch_from() -> Option<&'static CStr> {
    env("GREENWORLD_PATCH_FROM")
}

fn env(name: &'static str) -> Option<&'static CStr> {
    let mut cname = [0u8; 64];
    cname[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: cname is NUL-terminated; getenv returns NULL or a NUL-terminated string that
    // lives in the environment (read at once, at load).
    let value = unsafe { libc::getenv(cname.as_ptr().cast()) };
    // SAFETY: as above.
    (!value.is_null()).then(|| unsafe { CStr::from_ptr(value) })
}

/// No panic may cross into C (trap 4), and std's default hook would print through our own
/// `write` hook (trap 2). The release profile aborts on panic; this hook says why first.
fn install_panic_policy() {
    std::panic::set_hook(Box::new(|info| {
        let what = info.payload_as_str().unwrap_or("panic");
        match info.location() {
            Some(at) => crate::log::line(
                "internal error: ",
                format_args!("{what} at {}:{}", at.file(), at.line()),
            ),
            None => crate::log::line("internal error: ", format_args!("{what}")),
        }
    }));
}

/// At exit: one line, from a process that made a green thread (or every one, with `all`): a
/// launcher's helper processes have nothing to say.
extern "C" fn print_stats() {
    let s = crate::stats::total();
    if s.created == 0 && get().stats != Stats::All {
        return;
    }
    let mut buf = LineBuf::new();
    let _ = write!(
        buf,
        "greenworld: stats: pid={} program={}",
        crate::log::pid(),
        crate::log::program()
    );
    let _ = s.write(&mut buf);
    let _ = buf.write_str("\n");
    crate::log::to_stats(buf.as_bytes());
}

/// For a `GREENWORLD_*` name that is not in [`KNOWN_VARS`]: the known name closest to it (by
/// edit distance, the first of equals). None for a known name or one without the prefix.
/// Allocation-free: it runs at load, over the whole environment.
pub fn unknown_var(name: &str) -> Option<&'static str> {
    if !name.starts_with("GREENWORLD_") || KNOWN_VARS.contains(&name) {
        return None;
    }
    KNOWN_VARS
        .iter()
        .min_by_key(|known| edit_distance(name.as_bytes(), known.as_bytes()))
        .copied()
}

/// Levenshtein distance, one row on the stack; names longer than the row count as far away.
fn edit_distance(a: &[u8], b: &[u8]) -> usize {
    const MAX: usize = 64;
    if a.len() > MAX || b.len() > MAX {
        return usize::MAX;
    }
    let mut row = [0usize; MAX + 1];
    for (j, cell) in row.iter_mut().enumerate().take(b.len() + 1) {
        *cell = j;
    }
    for (i, &ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// One warning line for each `GREENWORLD_*` variable in the environment that no one reads (a
/// typo such as `GREENWORLD_THREADS=0` would otherwise pass silently). The program still runs.
pub fn warn_unknown_vars() {
    // SAFETY: `environ` is NULL or a NULL-terminated array of NUL-terminated strings; this runs
    // in the constructor, before `main` could change it.
    unsafe {
        let mut slot = crate::sys::environ;
        while !slot.is_null() && !(*slot).is_null() {
            let entry = *slot;
            slot = slot.add(1);
            if !has_var_prefix(entry) {
                continue; // `unknown_var` names only these: the others are not even measured
            }
            let entry = CStr::from_ptr(entry).to_bytes();
            let name = entry.split(|&b| b == b'=').next().unwrap_or(entry);
            let Ok(name) = core::str::from_utf8(name) else {
                continue;
            };
            if let Some(closest) = unknown_var(name) {
                crate::log!(
                    Warn,
                    "{name} is not a greenworld variable (ignored); did you mean {closest}?"
                );
            }
        }
    }
}

/// What every variable of ours starts with.
const VAR_PREFIX: &[u8] = b"GREENWORLD_";

/// Does any `environ` entry start with [`VAR_PREFIX`]? (One pass, no allocation.)
fn any_greenworld_var() -> bool {
    // SAFETY: `environ` is NULL or a NULL-terminated array of NUL-terminated strings, read at
    // load (as `getenv` would read it).
    unsafe {
        let mut slot = crate::sys::environ;
        while !slot.is_null() && !(*slot).is_null() {
            if has_var_prefix(*slot) {
                return true;
            }
            slot = slot.add(1);
        }
    }
    false
}

/// Does the NUL-terminated `entry` start with [`VAR_PREFIX`]? Reads no byte past the first
/// that differs (the NUL of a shorter entry differs), so most entries cost one byte.
///
/// # Safety
/// `entry` points to a NUL-terminated string.
unsafe fn has_var_prefix(entry: *const libc::c_char) -> bool {
    VAR_PREFIX.iter().enumerate().all(|(i, &want)| {
        // SAFETY: every byte before index i matched a non-NUL byte of the prefix, so the
        // string goes on at least to i.
        unsafe { *entry.add(i) as u8 == want }
    })
}

/// A signal by name (`SIGUSR2`, `USR2`, any case) or number; never one no handler can catch.
pub fn signal_value(v: &str) -> Option<i32> {
    const NAMES: &[(&str, i32)] = &[
        ("HUP", libc::SIGHUP),
        ("INT", libc::SIGINT),
        ("QUIT", libc::SIGQUIT),
        ("ILL", libc::SIGILL),
        ("TRAP", libc::SIGTRAP),
        ("ABRT", libc::SIGABRT),
        ("BUS", libc::SIGBUS),
        ("FPE", libc::SIGFPE),
        ("USR1", libc::SIGUSR1),
        ("SEGV", libc::SIGSEGV),
        ("USR2", libc::SIGUSR2),
        ("PIPE", libc::SIGPIPE),
        ("ALRM", libc::SIGALRM),
        ("TERM", libc::SIGTERM),
        ("STKFLT", libc::SIGSTKFLT),
        ("CHLD", libc::SIGCHLD),
        ("CONT", libc::SIGCONT),
        ("TSTP", libc::SIGTSTP),
        ("TTIN", libc::SIGTTIN),
        ("TTOU", libc::SIGTTOU),
        ("URG", libc::SIGURG),
        ("XCPU", libc::SIGXCPU),
        ("XFSZ", libc::SIGXFSZ),
        ("VTALRM", libc::SIGVTALRM),
        ("PROF", libc::SIGPROF),
        ("WINCH", libc::SIGWINCH),
        ("IO", libc::SIGIO),
        ("PWR", libc::SIGPWR),
        ("SYS", libc::SIGSYS),
    ];
    // No allocation (see `Config::parse`): compared in place, any case.
    let name = match v.get(..3) {
        Some(sig) if sig.eq_ignore_ascii_case("SIG") => &v[3..],
        _ => v,
    };
    let sig = match NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
        Some(&(_, sig)) => sig,
        None => v.parse::<i32>().ok()?,
    };
    ((1..=64).contains(&sig) && sig != libc::SIGKILL && sig != libc::SIGSTOP).then_some(sig)
}

fn parse_bool(v: &str) -> Option<bool> {
    let is = |word: &str| v.eq_ignore_ascii_case(word);
    if is("1") || is("true") || is("yes") || is("on") {
        Some(true)
    } else if is("0") || is("false") || is("no") || is("off") {
        Some(false)
    } else {
        None
    }
}

/// A duration in ns: digits with a unit (`us`, `ms`, `s`), or plain digits, milliseconds.
fn parse_duration_ns(v: &str) -> Option<u64> {
    let lower = |suffix: &str| {
        v.len()
            .checked_sub(suffix.len())
            .filter(|&at| v.is_char_boundary(at) && v[at..].eq_ignore_ascii_case(suffix))
            .map(|at| &v[..at])
    };
    let (digits, ns_per_unit) = if let Some(d) = lower("us") {
        (d, 1_000)
    } else if let Some(d) = lower("ms") {
        (d, 1_000_000)
    } else if let Some(d) = lower("s") {
        (d, 1_000_000_000)
    } else {
        (v, 1_000_000)
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(ns_per_unit)
}

fn parse_size(v: &str) -> Option<usize> {
    let (digits, shift) = match v.as_bytes().last()?.to_ascii_lowercase() {
        b'k' => (&v[..v.len() - 1], 10),
        b'm' => (&v[..v.len() - 1], 20),
        b'g' => (&v[..v.len() - 1], 30),
        _ => (v, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<usize>().ok()?.checked_mul(1 << shift)
}

/// `GREENWORLD_STATS`: a boolean, `all`, a file path (told from a word by its `/`), or
/// `all:PATH`. Which processes report, and the file if any.
pub fn stats_value(v: &str) -> Option<(Stats, Option<&str>)> {
    if let Some(path) = v.strip_prefix("all:") {
        return (!path.is_empty()).then_some((Stats::All, Some(path)));
    }
    if v.contains('/') {
        return Some((Stats::Green, Some(v)));
    }
    if v.eq_ignore_ascii_case("all") {
        return Some((Stats::All, None));
    }
    parse_bool(v).map(|on| (if on { Stats::Green } else { Stats::Off }, None))
}

/// `GREENWORLD_LOG`: `LEVEL` or `LEVEL:PATH`. The level, and the file if any.
pub fn log_value(v: &str) -> Option<(LogLevel, Option<&str>)> {
    match v.split_once(':') {
        None => parse_level(v).map(|level| (level, None)),
        Some((_, "")) => None,
        Some((level, path)) => parse_level(level).map(|level| (level, Some(path))),
    }
}

fn parse_level(v: &str) -> Option<LogLevel> {
    const LEVELS: [(&str, LogLevel); 5] = [
        ("off", LogLevel::Off),
        ("error", LogLevel::Error),
        ("warn", LogLevel::Warn),
        ("info", LogLevel::Info),
        ("debug", LogLevel::Debug),
    ];
    LEVELS
        .iter()
        .find(|(word, _)| v.eq_ignore_ascii_case(word))
        .map(|&(_, level)| level)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, BadVar> {
        Config::parse(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| *v))
    }

    fn patched(vars: &[(&str, &str)]) -> Vec<&'static str> {
        let set = parse(vars).unwrap().patched;
        Subsystem::ALL
            .into_iter()
            .filter(|s| set.contains(*s))
            .map(|s| s.name())
            .collect()
    }

    #[test]
    fn eventlet_truth_table() {
        assert_eq!(patched(&[]), ["os", "select", "socket", "thread", "time"]);
        assert_eq!(
            patched(&[("GREENWORLD_SOCKET", "1"), ("GREENWORLD_SELECT", "true")]),
            ["select", "socket"]
        );
        assert_eq!(
            patched(&[("GREENWORLD_THREAD", "0")]),
            ["os", "select", "socket", "time"]
        );
        assert_eq!(
            patched(&[("GREENWORLD_THREAD", "1"), ("GREENWORLD_TIME", "off")]),
            ["thread"]
        );
        assert_eq!(patched(&[("GREENWORLD_TIME", "")]), patched(&[]));
        assert_eq!(patched(&[("GREENWORLD_OS", "YES")]), ["os"]);
    }

    #[test]
    fn psycopg_in_the_truth_table() {
        let psycopg = |vars: &[(&str, &str)]| parse(vars).unwrap().psycopg;
        // Alone: only libpq's calls.
        assert_eq!(patched(&[("GREENWORLD_PSYCOPG", "1")]), [] as [&str; 0]);
        assert!(psycopg(&[("GREENWORLD_PSYCOPG", "on")]));
        // With others named true: those for everyone, and libpq's calls.
        assert_eq!(
            patched(&[("GREENWORLD_PSYCOPG", "yes"), ("GREENWORLD_SOCKET", "1")]),
            ["socket"]
        );
        assert!(psycopg(&[
            ("GREENWORLD_PSYCOPG", "yes"),
            ("GREENWORLD_SOCKET", "1")
        ]));
        // Not named true: no scope, libpq's calls are what the others make every caller's.
        assert!(!psycopg(&[]));
        assert!(!psycopg(&[("GREENWORLD_SOCKET", "1")]));
        assert_eq!(patched(&[("GREENWORLD_PSYCOPG", "0")]), patched(&[]));
        assert!(!psycopg(&[("GREENWORLD_PSYCOPG", "0")]));
        assert_eq!(
            patched(&[("GREENWORLD_PSYCOPG", "0"), ("GREENWORLD_THREAD", "0")]),
            ["os", "select", "socket", "time"]
        );
        assert_eq!(
            parse(&[("GREENWORLD_PSYCOPG", "maybe")])
                .unwrap_err()
                .to_string(),
            "GREENWORLD_PSYCOPG='maybe' is not valid; accepted: 1/0, true/false, yes/no, on/off"
        );
    }

    #[test]
    fn malformed_values_name_the_variable() {
        let err = parse(&[("GREENWORLD_TIME", "maybe")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "GREENWORLD_TIME='maybe' is not valid; accepted: 1/0, true/false, yes/no, on/off"
        );
        assert_eq!(
            parse(&[("GREENWORLD_LOG", "loud")]).unwrap_err().name,
            "GREENWORLD_LOG"
        );
        assert_eq!(
            parse(&[("GREENWORLD_STATS", "2")]).unwrap_err().name,
            "GREENWORLD_STATS"
        );
        assert_eq!(
            parse(&[("GREENWORLD_INHERIT", "maybe")])
                .unwrap_err()
                .to_string(),
            "GREENWORLD_INHERIT='maybe' is not valid; accepted: 1/0, true/false, yes/no, on/off"
        );
        for (name, value) in [
            ("GREENWORLD_DUMP_SIGNAL", "USR3"),
            ("GREENWORLD_DUMP_SIGNAL", "9"),
            ("GREENWORLD_DUMP_SIGNAL", "SIGSTOP"),
            ("GREENWORLD_DUMP_SIGNAL", "65"),
            ("GREENWORLD_DUMP_AT_EXIT", "2"),
            ("GREENWORLD_DEADLOCK", "sometimes"),
            ("GREENWORLD_DUMP_OF", "0"),
            ("GREENWORLD_DUMP_OF", "self"),
        ] {
            assert_eq!(parse(&[(name, value)]).unwrap_err().name, name, "{value}");
        }
    }

    #[test]
    fn dump_values() {
        for v in ["SIGUSR2", "USR2", "usr2", "SigUsr2", "12"] {
            assert_eq!(signal_value(v), Some(libc::SIGUSR2), "{v}");
        }
        assert_eq!(signal_value("34"), Some(34));
        let config = parse(&[]).unwrap();
        assert!(config.deadlock && !config.dump_at_exit);
        assert_eq!((config.dump_signal, config.dump_of), (0, None));
        let config = parse(&[("GREENWORLD_DEADLOCK", "off"), ("GREENWORLD_DUMP_OF", "42")]);
        assert_eq!(
            config.map(|c| (c.deadlock, c.dump_of)),
            Ok((false, Some(42)))
        );
    }

    #[test]
    fn stats_and_log_values() {
        let stats = |v: &str| parse(&[("GREENWORLD_STATS", v)]).map(|c| (c.stats, c.stats_to_file));
        assert_eq!(parse(&[]).map(|c| c.stats), Ok(Stats::Off));
        assert_eq!(stats("1"), Ok((Stats::Green, false)));
        assert_eq!(stats("off"), Ok((Stats::Off, false)));
        assert_eq!(stats("all"), Ok((Stats::All, false)));
        assert_eq!(stats("ALL"), Ok((Stats::All, false)));
        assert_eq!(stats("/tmp/s"), Ok((Stats::Green, true)));
        assert_eq!(stats("./s"), Ok((Stats::Green, true)));
        assert_eq!(stats("all:/tmp/s"), Ok((Stats::All, true)));
        assert_eq!(stats_value("all:s"), Some((Stats::All, Some("s"))));
        for bad in ["2", "stats.txt", "all:", "every"] {
            assert_eq!(stats(bad).unwrap_err().name, "GREENWORLD_STATS", "{bad}");
        }
        let log = |v: &str| parse(&[("GREENWORLD_LOG", v)]).map(|c| (c.log, c.log_to_file));
        assert_eq!(log("debug"), Ok((LogLevel::Debug, false)));
        assert_eq!(log("Info:/tmp/l"), Ok((LogLevel::Info, true)));
        assert_eq!(log_value("warn:l:x"), Some((LogLevel::Warn, Some("l:x"))));
        for bad in ["debug:", "loud:/tmp/l", ":/tmp/l", "/tmp/l"] {
            assert_eq!(log(bad).unwrap_err().name, "GREENWORLD_LOG", "{bad}");
        }
    }

    #[test]
    fn inherit_defaults_to_true() {
        let inherit = |v: &str| parse(&[("GREENWORLD_INHERIT", v)]).map(|c| c.inherit);
        assert!(parse(&[]).unwrap().inherit);
        assert_eq!(inherit(""), Ok(true));
        assert_eq!(inherit("0"), Ok(false));
        assert_eq!(inherit("No"), Ok(false));
        assert_eq!(inherit("on"), Ok(true));
    }

    #[test]
    fn stack_copy_is_off_unless_asked() {
        let copy = |v: &str| parse(&[("GREENWORLD_STACK_COPY", v)]).map(|c| c.stack_copy);
        assert!(!parse(&[]).unwrap().stack_copy);
        assert_eq!(copy("1"), Ok(true));
        assert_eq!(copy("off"), Ok(false));
        assert_eq!(
            copy("64K").unwrap_err().to_string(),
            "GREENWORLD_STACK_COPY='64K' is not valid; accepted: 1/0, true/false, yes/no, on/off"
        );
    }

    #[test]
    fn fileio_modes() {
        let mode = |v: &str| parse(&[("GREENWORLD_FILEIO", v)]).map(|c| c.fileio);
        assert_eq!(parse(&[]).unwrap().fileio, FileIo::Off);
        assert_eq!(mode(""), Ok(FileIo::Off));
        assert_eq!(mode("off"), Ok(FileIo::Off));
        assert_eq!(mode("pool"), Ok(FileIo::Pool));
        for bad in ["on", "1", "Pool", "pool ", "threads"] {
            assert_eq!(
                mode(bad).unwrap_err().to_string(),
                format!("GREENWORLD_FILEIO='{bad}' is not valid; accepted: off, pool")
            );
        }
    }

    #[test]
    fn tls_modes() {
        let mode = |v: &str| parse(&[("GREENWORLD_TLS", v)]).map(|c| c.tls);
        assert_eq!(parse(&[]).unwrap().tls, Tls::Private);
        assert_eq!(mode(""), Ok(Tls::Private));
        assert_eq!(mode("private"), Ok(Tls::Private));
        assert_eq!(mode("shared"), Ok(Tls::Shared));
        for bad in ["on", "1", "Private", "shared ", "own"] {
            assert_eq!(
                mode(bad).unwrap_err().to_string(),
                format!("GREENWORLD_TLS='{bad}' is not valid; accepted: private, shared")
            );
        }
    }

    #[test]
    fn patch_from_lists() {
        let from = |v: &str| parse(&[("GREENWORLD_PATCH_FROM", v)]).map(|c| c.patch_from);
        assert_eq!(from(""), Ok(false));
        assert_eq!(from("libcurl.so.4"), Ok(true));
        assert_eq!(from("libcurl.so.4,/usr/lib/libpq.so.5"), Ok(true));
        let sixteen = vec!["a"; 16].join(",");
        assert_eq!(from(&sixteen), Ok(true));
        for bad in ["a,,b", ",", "a b", "a,", &vec!["a"; 17].join(",")] {
            let err = from(bad).unwrap_err();
            assert_eq!(err.name, "GREENWORLD_PATCH_FROM", "{bad}");
            assert!(err.accepted.contains("comma-separated"), "{bad}");
        }
    }

    #[test]
    fn every_variable_parsed_is_known() {
        for sub in Subsystem::ALL {
            assert!(KNOWN_VARS.contains(&sub.env_var()), "{}", sub.env_var());
        }
        // The names Config::parse asks for: a lookup that records them.
        let asked = std::cell::RefCell::new(Vec::new());
        let _ = Config::parse(|name| {
            asked.borrow_mut().push(name.to_owned());
            None
        });
        for name in asked.into_inner() {
            assert!(
                KNOWN_VARS.contains(&name.as_str()),
                "{name} is not in KNOWN_VARS"
            );
        }
    }

    #[test]
    fn the_prefix_check_reads_no_further_than_it_must() {
        // SAFETY: NUL-terminated literals.
        let has = |s: &CStr| unsafe { has_var_prefix(s.as_ptr()) };
        assert!(has(c"GREENWORLD_THREAD=0"));
        assert!(has(c"GREENWORLD_"));
        assert!(!has(c"GREENWORLD"));
        assert!(!has(c"GREENWORLDX_THREAD=0"));
        assert!(!has(c"PATH=/bin"));
        assert!(!has(c""));
    }

    #[test]
    fn unknown_variables_get_the_closest_known_name() {
        assert_eq!(unknown_var("GREENWORLD_THREADS"), Some("GREENWORLD_THREAD"));
        assert_eq!(unknown_var("GREENWORLD_STAT"), Some("GREENWORLD_STATS"));
        assert_eq!(
            unknown_var("GREENWORLD_STACKSIZE"),
            Some("GREENWORLD_STACK_SIZE")
        );
        assert_eq!(unknown_var("GREENWORLD_FILE_IO"), Some("GREENWORLD_FILEIO"));
        assert_eq!(unknown_var("GREENWORLD_LOGG"), Some("GREENWORLD_LOG"));
        assert!(unknown_var("GREENWORLD_X").is_some());
        assert_eq!(unknown_var("GREENWORLD_THREAD"), None);
        assert_eq!(unknown_var("GREENWORLD_LIB"), None);
        assert_eq!(unknown_var("PATH"), None);
        assert_eq!(unknown_var("GREENWORLDTHREAD"), None);
        assert_eq!(edit_distance(b"kitten", b"sitting"), 3);
        assert_eq!(edit_distance(b"", b"abc"), 3);
        assert_eq!(edit_distance(&[b'a'; 65], b"a"), usize::MAX);
    }

    #[test]
    fn hub_counts() {
        let hubs = |v: &str| parse(&[("GREENWORLD_HUBS", v)]).map(|c| c.hubs);
        assert_eq!(parse(&[]).unwrap().hubs, Hubs::Count(1));
        assert_eq!(hubs("2"), Ok(Hubs::Count(2)));
        assert_eq!(hubs("auto"), Ok(Hubs::Auto));
        for bad in ["zero", "0", "-1", "1x", "257", "AUTO"] {
            assert_eq!(hubs(bad).unwrap_err().name, "GREENWORLD_HUBS", "{bad}");
        }
        assert!(Hubs::Auto.count() >= 1);
    }

    #[test]
    fn slices() {
        let slice = |v: &str| parse(&[("GREENWORLD_SLICE", v)]).map(|c| (c.slice_ns, c.preempt));
        assert_eq!(parse(&[]).unwrap().slice_ns, Some(DEFAULT_SLICE_NS));
        assert_eq!(slice("2ms"), Ok((Some(2_000_000), true)));
        assert_eq!(slice("500us"), Ok((Some(500_000), true)));
        assert_eq!(slice("10"), Ok((Some(10_000_000), true)));
        assert_eq!(slice("1s"), Ok((Some(1_000_000_000), true)));
        assert_eq!(slice("100US"), Ok((Some(100_000), true)));
        assert_eq!(slice("off"), Ok((None, false)));
        for bad in [
            "fast", "0", "99us", "11s", "-1ms", "2 ms", "ms", "1.5ms", "2m", "µs",
        ] {
            assert_eq!(slice(bad).unwrap_err().name, "GREENWORLD_SLICE", "{bad}");
        }
        let both = parse(&[("GREENWORLD_SLICE", "20ms"), ("GREENWORLD_PREEMPT", "0")]).unwrap();
        assert_eq!((both.slice_ns, both.preempt), (Some(20_000_000), false));
    }

    #[test]
    fn stack_sizes() {
        let size = |v: &str| parse(&[("GREENWORLD_STACK_SIZE", v)]).map(|c| c.stack_size);
        assert_eq!(size("256K"), Ok(256 << 10));
        assert_eq!(size("1m"), Ok(1 << 20));
        assert_eq!(size("1G"), Ok(1 << 30));
        assert_eq!(size("65536"), Ok(65536));
        assert!(size("1K").is_err(), "below PTHREAD_STACK_MIN");
        assert!(size("12Q").is_err());
        assert!(size("K").is_err());
        assert!(size("-5M").is_err());
        assert!(size("99999999999999999999G").is_err());
        assert_eq!(parse(&[]).unwrap().stack_size, DEFAULT_STACK_SIZE);
    }
}
