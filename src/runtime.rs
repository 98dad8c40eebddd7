//! Start-up and shutdown of the library: configuration read once, the panic policy, the
//! `GREENWORLD_STATUS` line, `GREENWORLD_INHERIT`, and the `GREENWORLD_STATS` summary at exit.
//!
//! [`init`] runs from the library's constructor, but other libraries' constructors may call
//! hooked functions first (trap 3), so everything here is also reached lazily through
//! [`config`].

use crate::config::Config;
use crate::patch::Subsystem;
use crate::sys::{LineBuf, write_stderr};
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
                config.stats = false;
            }
            install_panic_policy();
            if config.status {
                print_status(&config);
            }
            if config.stats {
                // SAFETY: print_stats is an extern "C" fn taking nothing, as atexit expects.
                if unsafe { libc::atexit(print_stats) } != 0 {
                    crate::log!(Warn, "cannot register the stats summary with atexit");
                }
            }
            config
        }
        Err(bad) => {
            crate::log::line("", format_args!("{bad}"));
            // SAFETY: _exit ends the process at once; nothing of ours is left half-done.
            unsafe { libc::_exit(2) }
        }
    }
}

/// The library's constructor: reads the configuration even if no hooked function is ever called,
/// so a malformed variable stops the program before `main`; with `GREENWORLD_INHERIT=0`, takes
/// the library out of `LD_PRELOAD` before anything can exec, or keeps it while the process is a
/// wrapper on its way to the program (here, where allocating is safe; see `inherit`).
pub fn init() {
    crate::os::watch_forks();
    crate::config::warn_unknown_vars();
    if !config().inherit {
        crate::inherit::at_start();
    }
}

/// No panic may cross into C (trap 4), and std's default hook would print through our own
/// `write` hook (trap 2). The release profile aborts on panic; this hook says why first.
fn install_panic_policy() {
    std::panic::set_hook(Box::new(|info| {
        let mut buf = LineBuf::new();
        let _ = write!(
            buf,
            "greenworld: internal error: {}",
            info.payload_as_str().unwrap_or("panic")
        );
        if let Some(at) = info.location() {
            let _ = write!(buf, " at {}:{}", at.file(), at.line());
        }
        let _ = buf.write_str("\n");
        write_stderr(buf.as_bytes());
    }));
}

fn print_status(config: &Config) {
    let mut buf = LineBuf::new();
    let _ = buf.write_str("greenworld:");
    for sub in Subsystem::ALL {
        let state = if config.patched.contains(sub) {
            "patched"
        } else {
            "not-patched"
        };
        let _ = write!(buf, " {}={}", sub.name(), state);
    }
    // Last, so readers of the subsystems need not change: what `greenrun --version` reports.
    let _ = writeln!(buf, " version={}", env!("CARGO_PKG_VERSION"));
    write_stderr(buf.as_bytes());
}

extern "C" fn print_stats() {
    let s = crate::stats::total();
    let mut buf = LineBuf::new();
    let _ = write!(
        buf,
        "greenworld: stats: created={} peak_alive={} switches={} parks=",
        s.created, s.peak_alive, s.switches
    );
    for (i, reason) in crate::stats::ParkReason::ALL.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(buf, "{sep}{}:{}", reason.name(), s.parks[*reason as usize]);
    }
    let _ = buf.write_str("\n");
    write_stderr(buf.as_bytes());
}
