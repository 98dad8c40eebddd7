//! How the library came into this process: through `LD_PRELOAD` (greenrun, or by hand), or
//! linked on purpose (a `DT_NEEDED` entry from `-lgreenworld`, or `dlopen`).
//!
//! The difference is eventlet's: importing a library must not change how the rest of the
//! program behaves, so a linked library patches nothing until the program calls
//! `greenworld_monkey_patch`; preloaded, the environment decides, as it always has.
//!
//! The library is preloaded when an `LD_PRELOAD` entry is this very file, judged as ld.so does
//! and without asking it: an entry with a slash when it names the same file (the path we were
//! loaded from, or the same device and inode: a symlink, `./lib/../lib/…`); a bare name when it
//! is the file name ld.so found us under. Entries are split at spaces and colons, as ld.so
//! does. Not seen: `$ORIGIN`-style tokens, and `/etc/ld.so.preload` (no variable names it; a
//! library installed there counts as linked).
//!
//! Judged once, lazily, without allocating: a hooked call may get here before our constructor
//! (trap 3), and the constructor asks before `GREENWORLD_INHERIT=0` takes us out of the
//! variable.

use core::ffi::{CStr, c_void};
use core::sync::atomic::{AtomicU8, Ordering};

const PREFIX: &[u8] = b"LD_PRELOAD=";

/// This library as ld.so knows it: the path it was loaded from, and that file's identity
/// (asked of the kernel only when an entry's path is not that very string: every preloaded
/// child runs this at start).
pub struct Me {
    path: &'static [u8],
    file: core::cell::OnceCell<Option<(libc::dev_t, libc::ino_t)>>,
}

impl Me {
    pub fn find() -> Option<Me> {
        let path = own_path()?;
        Some(Me {
            path: path.to_bytes(),
            file: core::cell::OnceCell::new(),
        })
    }

    /// Did ld.so take this library for the LD_PRELOAD entry `entry`? Allocation-free.
    pub fn is(&self, entry: &[u8]) -> bool {
        if entry.contains(&b'/') {
            entry == self.path || {
                let me = *self.file.get_or_init(|| file_id(self.path));
                me.is_some() && file_id(entry) == me
            }
        } else {
            self.path.rsplit(|&b| b == b'/').next() == Some(entry)
        }
    }
}

/// The path ld.so loaded this library from: the name of the loaded object whose segments hold
/// one of its statics. `dl_iterate_phdr` walks the few objects' program headers; `dladdr`, which
/// answered this before, also searches the object's symbols for the nearest one (a tenth of a
/// preloaded `/bin/true`'s start-up instructions). The string is the loader's for as long as
/// the library stays loaded; this one is never unloaded (its hooks are in use, and its
/// threads' stacks are its own).
fn own_path() -> Option<&'static CStr> {
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut c_void,
    ) -> libc::c_int {
        let mine = &PRELOADED as *const AtomicU8 as usize;
        // SAFETY: the loader's description of one object, valid for this call; `data` is the
        // `Option` below.
        let (info, found) = unsafe { (&*info, &mut *data.cast::<Option<&'static CStr>>()) };
        for i in 0..usize::from(info.dlpi_phnum) {
            // SAFETY: one of the object's `dlpi_phnum` program headers.
            let ph = unsafe { &*info.dlpi_phdr.add(i) };
            let start = (info.dlpi_addr as usize).wrapping_add(ph.p_vaddr as usize);
            if ph.p_type == libc::PT_LOAD
                && (start..start.wrapping_add(ph.p_memsz as usize)).contains(&mine)
                && !info.dlpi_name.is_null()
            {
                // SAFETY: a NUL-terminated string the loader owns (see above).
                *found = Some(unsafe { CStr::from_ptr(info.dlpi_name) });
                return 1;
            }
        }
        0
    }
    let mut found: Option<&'static CStr> = None;
    // SAFETY: `visit` only reads what the loader hands it and writes `found`, which outlives
    // the walk.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&raw mut found).cast()) };
    found.filter(|path| !path.is_empty())
}

/// The device and inode of the file at `path`, if there is one (a path too long for the
/// stack copy has none, as far as this is concerned).
fn file_id(path: &[u8]) -> Option<(libc::dev_t, libc::ino_t)> {
    let mut cpath = [0u8; libc::PATH_MAX as usize];
    if path.len() >= cpath.len() || path.contains(&0) {
        return None;
    }
    cpath[..path.len()].copy_from_slice(path);
    // SAFETY: all-zero is a valid stat buffer for the kernel to fill.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a writable buffer; stat is no hooked function.
    let rc = unsafe { libc::stat(cpath.as_ptr().cast(), &mut st) };
    (rc == 0).then_some((st.st_dev, st.st_ino))
}

/// The entries of an `LD_PRELOAD` list: separated by runs of spaces and colons.
pub fn entries(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b' ' || b == b':')
        .filter(|e| !e.is_empty())
}

/// `LD_PRELOAD`'s value, read from `environ` itself (a program's own `getenv` may not be ready:
/// see `inherit`).
fn ld_preload() -> Option<&'static [u8]> {
    // SAFETY: `environ` is NULL or a NULL-terminated array of NUL-terminated strings, read
    // before `main` or by the first hooked call (a program that edits its environment from
    // several threads at once races with libc's getenv too).
    unsafe {
        let mut slot = crate::sys::environ;
        while !slot.is_null() && !(*slot).is_null() {
            if let Some(value) = CStr::from_ptr(*slot).to_bytes().strip_prefix(PREFIX) {
                return Some(value);
            }
            slot = slot.add(1);
        }
    }
    None
}

/// Do the program's calls reach our hooks? Linked (`DT_NEEDED`, ahead of libc) or preloaded,
/// yes; `dlopen`ed, no: ld.so looks a symbol up in the program, its preloads and its own
/// dependencies (libc among them) before anything loaded later, so libc answers every call
/// and switching subsystems on would change nothing. Asks ld.so where `pthread_create`
/// resolves (dlsym may allocate: for `greenworld_monkey_patch`, never a hook).
pub fn interposes() -> bool {
    let ours = |addr: *const c_void| {
        // SAFETY: all-zero is a valid Dl_info for dladdr to fill.
        let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
        // SAFETY: any address may be asked about; a writable Dl_info.
        let found = unsafe { libc::dladdr(addr, &mut info) };
        (found != 0).then_some(info.dli_fbase)
    };
    // SAFETY: a NUL-terminated name; RTLD_DEFAULT is the global scope.
    let global = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"pthread_create".as_ptr()) };
    let here = ours(&PRELOADED as *const AtomicU8 as *const c_void);
    !global.is_null() && here.is_some() && ours(global) == here
}

/// 0: not judged yet; else 1 + whether preloaded.
///
/// Placed in `.data`, not `.bss`, like the few other zero-initialised statics every process
/// touches at start: the loader has already written `.data`'s pages (relocations), while each
/// `.bss` page touched costs a fresh page fault, two when it is read before it is written (a
/// preloaded `/bin/true` took 5 such faults for these three statics).
#[unsafe(link_section = ".data.greenworld_start")]
static PRELOADED: AtomicU8 = AtomicU8::new(0);

/// Did this library come in through `LD_PRELOAD`?
pub fn preloaded() -> bool {
    match PRELOADED.load(Ordering::Relaxed) {
        0 => {
            let yes = judge();
            PRELOADED.store(1 + yes as u8, Ordering::Relaxed);
            yes
        }
        n => n == 2,
    }
}

fn judge() -> bool {
    let Some(value) = ld_preload() else {
        return false;
    };
    // Without our own path (no dladdr answer), a bare mention is the best evidence there is.
    match Me::find() {
        Some(me) => entries(value).any(|e| me.is(e)),
        None => entries(value).any(|e| {
            e.rsplit(|&b| b == b'/')
                .next()
                .is_some_and(|name| name.starts_with(b"libgreenworld.so"))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::entries;

    #[test]
    fn entries_split_at_runs_of_spaces_and_colons() {
        let list: Vec<&[u8]> = entries(b": /a.so::b.so  /c d.so:").collect();
        assert_eq!(list, [&b"/a.so"[..], b"b.so", b"/c", b"d.so"]);
        assert_eq!(entries(b" : ").count(), 0);
    }
}
