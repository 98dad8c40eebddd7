//! Start-up and shutdown of the library: configuration read once, the panic policy, the
//! `GREENWORLD_STATUS` line, `GREENWORLD_INHERIT`, and the `GREENWORLD_STATS` summary at exit.
//!
//! [`init`] runs from the library's constructor, but other libraries' constructors may call
//! hooked functions first (trap 3), so everything here is also reached lazily through
//! [`config`].

use crate::config::{Config, Stats};
use crate::patch::Subsystem;
use crate::sys::LineBuf;
use core::ffi::CStr;
use core::fmt::Write;
use once_cell::sync::OnceCell;

static CONFIG: OnceCell<Config> = OnceCell::new();

/// The configuration, read from the environment on first use. A malformed variable stops the
/// program here: one line on stderr, exit status 2.
#[inline]
pub fn config() -> &'static Config {
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
                config.patched = crate::patch::SubsystemSet::EMPTY;
                config.stats = Stats::Off;
            }
            crate::log::configure(config.log);
            open_sinks(&config);
            install_panic_policy();
            if config.status {
                print_status(&config);
            }
            if config.stats != Stats::Off {
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
        .then(|| file("GREENWORLD_LOG", |v| crate::config::log_value(v)?.1))
        .flatten();
    let stats = config
        .stats_to_file
        .then(|| file("GREENWORLD_STATS", |v| crate::config::stats_value(v)?.1))
        .flatten();
    let stats_on_stderr = config.stats != Stats::Off && !config.stats_to_file;
    crate::log::open_sinks(log, stats, stats_on_stderr);
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

/// The library's constructor: reads the configuration even if no hooked function is ever called,
/// so a malformed variable stops the program before `main`; with `GREENWORLD_INHERIT=0`, takes
/// the library out of `LD_PRELOAD` before anything can exec, or keeps it while the process is a
/// wrapper on its way to the program (here, where allocating is safe; see `inherit`).
pub fn init() {
    // Judged before `GREENWORLD_INHERIT=0` edits the variable it reads.
    crate::loaded::preloaded();
    crate::os::watch_forks();
    // Read before the first line is said: it sets the log's level and files.
    let inherit = config().inherit;
    crate::config::warn_unknown_vars();
    if !inherit {
        crate::inherit::at_start();
    }
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

/// What is patched at load: linked on purpose, nothing yet (asking `patch` would re-enter the
/// configuration's first read, which calls this).
fn print_status(config: &Config) {
    let mut buf = LineBuf::new();
    let _ = buf.write_str("greenworld:");
    for sub in Subsystem::ALL {
        let state = if crate::loaded::preloaded() && config.patched.contains(sub) {
            "patched"
        } else {
            "not-patched"
        };
        let _ = write!(buf, " {}={}", sub.name(), state);
    }
    // Last, so readers of the subsystems need not change: what `greenrun --version` reports.
    let _ = writeln!(buf, " version={}", env!("CARGO_PKG_VERSION"));
    crate::log::to_stderr(buf.as_bytes());
}

/// At exit: one line, from a process that made a green thread (or every one, with `all`): a
/// launcher's helper processes have nothing to say.
extern "C" fn print_stats() {
    let s = crate::stats::total();
    if s.created == 0 && config().stats != Stats::All {
        return;
    }
    let mut buf = LineBuf::new();
    let _ = write!(
        buf,
        "greenworld: stats: pid={} program={} created={} peak_alive={} switches={} parks=",
        crate::log::pid(),
        crate::log::program(),
        s.created,
        s.peak_alive,
        s.switches
    );
    for (i, reason) in crate::stats::ParkReason::ALL.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(buf, "{sep}{}:{}", reason.name(), s.parks[*reason as usize]);
    }
    let _ = buf.write_str("\n");
    crate::log::to_stats(buf.as_bytes());
}
