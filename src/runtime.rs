//! Start-up of the library: the constructor's work. The configuration itself, and what its
//! first read sets up, is `config`'s (reached lazily from any hook: trap 3).

/// The library's constructor: reads the configuration even if no hooked function is ever called,
/// so a malformed variable stops the program before `main`, and decides what is patched (the
/// `GREENWORLD_STATUS` line); with `GREENWORLD_INHERIT=0`, takes the library out of
/// `LD_PRELOAD` before anything can exec, or keeps it while the process is a wrapper on its way
/// to the program (here, where allocating is safe; see `inherit`).
pub fn init() {
    // Judged before `GREENWORLD_INHERIT=0` edits the variable it reads.
    crate::loaded::preloaded();
    crate::os::watch_forks();
    // Read before the first line is said: it sets the log's level and files.
    let config = crate::config::get();
    if let Some(pid) = config.dump_of {
        crate::dump::channel::print_dump_of(pid);
    }
    crate::config::warn_unknown_vars();
    crate::patch::engaged(); // the first decision, and its GREENWORLD_STATUS line
    crate::dump::init(config);
    if !config.inherit {
        crate::inherit::at_start();
    }
}
