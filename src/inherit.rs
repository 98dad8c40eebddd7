//! `GREENWORLD_INHERIT=0`: the programs this process execs run plain libc.
//!
//! By default a child inherits `LD_PRELOAD`, and with it the library. When the variable is
//! false, the constructor removes the library's own entries from the process's `LD_PRELOAD`
//! (the other entries keep their order and separators; the variable is unset when none is
//! left), so every later `exec` with the process environment starts the program without us.
//!
//! An entry is ours when the dynamic loader took this very file for it, judged as ld.so does
//! and without asking it (a `dlopen` probe would run the constructors of preloads listed before
//! us early): `loaded::Me` says how (the same judgment tells a preloaded library from a linked
//! one). A path to another file is never ours, whatever its name.
//!
//! Wrappers. The command is often not the program but a shell script that execs it: a pyenv
//! shim (`#!/usr/bin/env bash`, `exec pyenv exec python3`, which execs on), a distribution's
//! wrapper. Taking the library out in the script's shell would leave the program the user
//! meant plain. So while the first process is a shell or `env` (judged by its executable), the
//! library stays in `LD_PRELOAD`, and that process's pid goes into `GREENWORLD_INHERIT_PID`;
//! the same pid loading us again is the same process after an `exec`: still a wrapper if it is a
//! shell or `env`, else the program, green, which takes the library out as above. Another pid
//! seeing the variable is a program a wrapper started on its way (`$(pyenv root)`, a `cat`):
//! it takes the library and the variable out too, and patches nothing, so it runs as plain
//! libc would (the library is loaded, inert). Exec chains that pass through other binaries
//! (`nice`, `sudo`) end at those. A variable left by some other run (a process that never
//! loaded us) would make a fresh start look like a helper: greenrun clears it.

use crate::sys::environ;
use core::ffi::CStr;
use core::sync::atomic::{AtomicU8, Ordering};
use std::ffi::CString;

const PREFIX: &[u8] = b"LD_PRELOAD=";
/// Where the first process's pid waits while it is a wrapper (in `config::KNOWN_VARS` too).
const CHAIN: &[u8] = b"GREENWORLD_INHERIT_PID=";

/// The executables that only lead to the program: shells, and `env` (a `#!/usr/bin/env bash`
/// line runs it first).
const WRAPPERS: &[&[u8]] = &[
    b"sh", b"bash", b"rbash", b"dash", b"ash", b"zsh", b"ksh", b"ksh93", b"mksh", b"yash",
    b"busybox", b"env",
];

/// What this process is, under `GREENWORLD_INHERIT=0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The program: green; what it execs is not.
    Program,
    /// A shell or `env` in the first process, not yet the program: keeps the library.
    Wrapper,
    /// Started by a wrapper (another pid): plain, and so is what it runs.
    Helper,
}

static ROLE: AtomicU8 = AtomicU8::new(0);

/// This process's role, judged once. Allocation-free: the configuration's first reader (maybe
/// a hooked call before our constructor) asks it.
pub fn role() -> Role {
    let roles = [Role::Program, Role::Wrapper, Role::Helper];
    match ROLE.load(Ordering::Relaxed) {
        0 => {
            let role = judge_role();
            ROLE.store(role as u8 + 1, Ordering::Relaxed);
            role
        }
        n => roles[usize::from(n - 1)],
    }
}

fn judge_role() -> Role {
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    match chain_pid() {
        Some(first) if first != me => Role::Helper,
        _ if runs_a_wrapper() => Role::Wrapper,
        _ => Role::Program,
    }
}

/// The pid in `GREENWORLD_INHERIT_PID`, read from `environ` itself (see [`stop_at_exec`]).
fn chain_pid() -> Option<libc::pid_t> {
    // SAFETY: `environ` is NULL or a NULL-terminated array of NUL-terminated strings; this
    // runs before `main` (the constructor or an earlier hooked call), when nothing changes it.
    unsafe {
        let mut slot = environ;
        while !slot.is_null() && !(*slot).is_null() {
            if let Some(value) = CStr::from_ptr(*slot).to_bytes().strip_prefix(CHAIN) {
                return core::str::from_utf8(value).ok()?.parse().ok();
            }
            slot = slot.add(1);
        }
    }
    None
}

/// Is this process's executable a shell or `env`?
fn runs_a_wrapper() -> bool {
    let mut buf = [0u8; 4096];
    // SAFETY: a NUL-terminated path and a writable buffer of the given length.
    let n = unsafe {
        libc::readlink(
            c"/proc/self/exe".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let Ok(n) = usize::try_from(n) else {
        return false;
    };
    let name = buf[..n].rsplit(|&b| b == b'/').next().unwrap_or(&[]);
    WRAPPERS.contains(&name)
}

/// Acts on [`role`] at start-up (the constructor: allocating is safe): a wrapper marks the
/// chain with its pid and keeps the library; the program and a helper take it out.
pub fn at_start() {
    match role() {
        Role::Wrapper => mark_chain(),
        Role::Program | Role::Helper => stop_at_exec(),
    }
}

/// Puts `GREENWORLD_INHERIT_PID=<our pid>` in `environ`, unless it is there already.
fn mark_chain() {
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    if chain_pid() == Some(me) {
        return;
    }
    let Ok(entry) = CString::new(format!("GREENWORLD_INHERIT_PID={me}")) else {
        return;
    };
    // SAFETY: as in stop_at_exec: nothing else reads or changes `environ` meanwhile. The new
    // array, like the new entry, lives as long as the process (the old one may be the
    // kernel's, on the stack: never freed).
    unsafe {
        let mut entries = Vec::new();
        let mut slot = environ;
        while !slot.is_null() && !(*slot).is_null() {
            if !CStr::from_ptr(*slot).to_bytes().starts_with(CHAIN) {
                entries.push(*slot);
            }
            slot = slot.add(1);
        }
        entries.push(entry.into_raw());
        entries.push(core::ptr::null_mut());
        environ = entries.leak().as_mut_ptr();
    }
}

/// Removes this library from `LD_PRELOAD` (and the wrapper chain's `GREENWORLD_INHERIT_PID`),
/// editing `environ` itself: a program may define its own `getenv`/`setenv`/`unsetenv` (bash
/// does, over its variable table, not yet built while constructors run), and the main
/// program's definitions would win over libc's. Called from the constructor only, before
/// `main`: the new value is allocated, which no hooked call may do (the allocator could be
/// re-entered).
fn stop_at_exec() {
    let Some(me) = crate::loaded::Me::find() else {
        crate::log!(
            Warn,
            "GREENWORLD_INHERIT=0: cannot tell which file this library is"
        );
        return;
    };
    // SAFETY: `environ` is NULL or a NULL-terminated array of NUL-terminated strings, and
    // nothing else reads or changes it meanwhile (a constructor, before `main`). Removing an
    // entry moves the later pointers down, as glibc's `unsetenv` does; a changed entry points
    // at a new string that lives as long as the process (as one given to `putenv`).
    unsafe {
        let mut slot = environ;
        while !slot.is_null() && !(*slot).is_null() {
            let entry = CStr::from_ptr(*slot).to_bytes();
            let kept = if entry.starts_with(CHAIN) {
                Some(Vec::new())
            } else {
                entry
                    .strip_prefix(PREFIX)
                    .and_then(|value| without(value, |e| me.is(e)))
            };
            match kept {
                None => slot = slot.add(1),
                Some(kept) if kept.is_empty() => {
                    let mut p = slot;
                    while !(*p).is_null() {
                        *p = *p.add(1);
                        p = p.add(1);
                    }
                }
                Some(kept) => {
                    // Entries come from a C string: no NUL inside.
                    if let Ok(new) = CString::new([PREFIX, &kept].concat()) {
                        *slot = new.into_raw();
                    }
                    slot = slot.add(1);
                }
            }
        }
    }
}

/// `value` (an `LD_PRELOAD` list: entries separated by runs of spaces and colons) without the
/// entries `is_ours` picks, or None when it picks none. A kept entry keeps the separators that
/// preceded it, except the first, which has none; leading and trailing separators go.
pub fn without(value: &[u8], mut is_ours: impl FnMut(&[u8]) -> bool) -> Option<Vec<u8>> {
    let is_separator = |b: u8| b == b' ' || b == b':';
    let mut kept = Vec::with_capacity(value.len());
    let mut removed = false;
    let mut i = 0;
    while i < value.len() {
        let separators = i;
        while i < value.len() && is_separator(value[i]) {
            i += 1;
        }
        let start = i;
        while i < value.len() && !is_separator(value[i]) {
            i += 1;
        }
        let entry = &value[start..i];
        if entry.is_empty() {
            break;
        }
        if is_ours(entry) {
            removed = true;
            continue;
        }
        if !kept.is_empty() {
            kept.extend_from_slice(&value[separators..start]);
        }
        kept.extend_from_slice(entry);
    }
    removed.then_some(kept)
}

#[cfg(test)]
mod tests {
    use super::without;

    fn strip(value: &str) -> Option<String> {
        without(value.as_bytes(), |e| e == b"/lib/gw.so" || e == b"gw.so")
            .map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn removes_only_our_entries_and_keeps_the_order() {
        assert_eq!(strip("/lib/gw.so").as_deref(), Some(""));
        assert_eq!(strip("/lib/gw.so:/a.so").as_deref(), Some("/a.so"));
        assert_eq!(strip("/a.so:/lib/gw.so").as_deref(), Some("/a.so"));
        assert_eq!(
            strip("/a.so:/lib/gw.so:/b.so:c.so").as_deref(),
            Some("/a.so:/b.so:c.so")
        );
        assert_eq!(strip("gw.so /lib/gw.so").as_deref(), Some(""));
        assert_eq!(
            strip("/a.so /lib/gw.so:/b.so").as_deref(),
            Some("/a.so:/b.so")
        );
        assert_eq!(
            strip("/a.so:/lib/gw.so /b.so").as_deref(),
            Some("/a.so /b.so")
        );
        assert_eq!(strip(": /lib/gw.so::/a.so  ").as_deref(), Some("/a.so"));
        assert_eq!(
            strip("/a.so :: /b.so:gw.so").as_deref(),
            Some("/a.so :: /b.so")
        );
    }

    #[test]
    fn leaves_a_list_without_us_alone() {
        assert_eq!(strip(""), None);
        assert_eq!(strip("/a.so:/b.so"), None);
        assert_eq!(strip("/lib/gw.so.1:xgw.so:/lib/gw.sox"), None);
        assert_eq!(strip(" : "), None);
    }
}
