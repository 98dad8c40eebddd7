//! `GREENWORLD_INHERIT=0`: the programs this process execs run plain libc.
//!
//! By default a child inherits `LD_PRELOAD`, and with it the library. When the variable is
//! false, the constructor removes the library's own entries from the process's `LD_PRELOAD`
//! (the other entries keep their order and separators; the variable is unset when none is
//! left), so every later `exec` with the process environment starts the program without us.
//!
//! An entry is ours when the dynamic loader took this very file for it, judged as ld.so does
//! and without asking it (a `dlopen` probe would run the constructors of preloads listed before
//! us early): an entry with a slash when it names the same file (device and inode: the path we
//! were loaded from, a symlink to it, `./lib/../lib/…`); a bare name, which ld.so looks up
//! through the library search path, when it is the file name ld.so found us under. A path to
//! another file is never ours, whatever its name. As ld.so does, entries are split at spaces
//! and colons. Not seen: entries with `$ORIGIN`-style tokens, and `/etc/ld.so.preload`, which
//! is no variable.

use core::ffi::{CStr, c_char, c_void};
use std::ffi::CString;

const PREFIX: &[u8] = b"LD_PRELOAD=";

unsafe extern "C" {
    /// The process environment, which `execv`, `execvp`, `posix_spawn`, `system` and `popen`
    /// pass on (`execve` is given one).
    pub(crate) static mut environ: *mut *mut c_char;
}

/// Removes this library from `LD_PRELOAD`, editing `environ` itself: a program may define its
/// own `getenv`/`setenv`/`unsetenv` (bash does, over its variable table, not yet built while
/// constructors run), and the main program's definitions would win over libc's. Called from
/// the constructor only, before `main`: the new value is allocated, which no hooked call may
/// do (the allocator could be re-entered).
pub fn stop_at_exec() {
    let Some(me) = Me::find() else {
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
            let kept = entry
                .strip_prefix(PREFIX)
                .and_then(|value| without(value, |e| me.is(e)));
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

/// This library as ld.so knows it: the path it was loaded from, and that file's identity.
struct Me {
    path: &'static [u8],
    file: Option<(libc::dev_t, libc::ino_t)>,
}

impl Me {
    fn find() -> Option<Me> {
        // SAFETY: all-zero is a valid Dl_info for dladdr to fill.
        let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
        // SAFETY: the address of a function of this library, and a writable Dl_info.
        let found = unsafe { libc::dladdr(stop_at_exec as *const c_void, &mut info) };
        if found == 0 || info.dli_fname.is_null() {
            return None;
        }
        // SAFETY: dladdr's file name is a NUL-terminated string owned by the loader for as
        // long as the library stays loaded (for good: a preloaded object is never unloaded).
        let path = unsafe { CStr::from_ptr(info.dli_fname) };
        Some(Me {
            path: path.to_bytes(),
            file: file_id(path),
        })
    }

    /// Did ld.so take this library for the LD_PRELOAD entry `entry`?
    fn is(&self, entry: &[u8]) -> bool {
        if entry.contains(&b'/') {
            entry == self.path
                || (self.file.is_some()
                    && CString::new(entry).is_ok_and(|e| file_id(&e) == self.file))
        } else {
            self.path.rsplit(|&b| b == b'/').next() == Some(entry)
        }
    }
}

/// The device and inode of the file at `path`, if there is one.
fn file_id(path: &CStr) -> Option<(libc::dev_t, libc::ino_t)> {
    // SAFETY: all-zero is a valid stat buffer for the kernel to fill.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a writable buffer.
    let rc = unsafe { libc::stat(path.as_ptr(), &mut st) };
    (rc == 0).then_some((st.st_dev, st.st_ino))
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
