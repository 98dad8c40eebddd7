//! eventlet's `import_patched`: patching scoped to named shared objects. A hooked call is green
//! only when its return address lies in one of them (or its subsystem is patched for
//! everyone); any other caller gets the real function, as an unpatched subsystem does.
//!
//! The export's entry reads the return address and asks [`green_caller`] (see `abi::shims`);
//! only a scoped process gets there, so an unscoped run pays nothing. The caller's object comes
//! from glibc's `_dl_find_object` (2.35+): lock-free, allocation-free, async-signal-safe and
//! kept right by the loader across `dlopen` and `dlclose`, so a call made from inside ld.so or
//! malloc (trap 3) can ask it; `dl_iterate_phdr` and `dladdr` take the loader's lock. It costs
//! about as much as the whole budget of a scoped call, so each call site's answer is
//! remembered in [`CACHE`], keyed by the return address and valid for one [`GENERATION`] of
//! the loader (bumped around `dlopen`/`dlclose`) and one [`EPOCH`] of the scopes.

use core::cell::UnsafeCell;
use core::ffi::{CStr, c_char, c_int, c_void};
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicUsize, Ordering, fence};

/// How many shared objects may be named, and how long a name may be (`GREENWORLD_PATCH_FROM`
/// says the same to a user: see `config`).
pub const MAX_SCOPES: usize = 16;
pub const MAX_NAME: usize = 63;

/// glibc's `struct dl_find_object` (`<dlfcn.h>`, glibc 2.35).
#[repr(C)]
struct DlFindObject {
    flags: u64,
    map_start: usize,
    map_end: usize,
    link_map: *const LinkMap,
    eh_frame: usize,
    reserved: [u64; 7],
}

/// The public head of glibc's `struct link_map` (`<link.h>`).
#[repr(C)]
struct LinkMap {
    addr: usize,
    name: *const c_char,
    dynamic: *const Elf64Dyn,
}

#[repr(C)]
struct Elf64Dyn {
    tag: i64,
    val: usize,
}

const DT_NULL: i64 = 0;
const DT_STRTAB: i64 = 5;
const DT_SONAME: i64 = 14;

type FindObject = unsafe extern "C" fn(*const c_void, *mut DlFindObject) -> c_int;

/// `_dl_find_object`, resolved when the first scope is set (0: not yet, or missing).
static FIND_OBJECT: AtomicUsize = AtomicUsize::new(0);

/// A named shared object and the subsystems green for its calls.
struct Scope {
    name: UnsafeCell<[u8; MAX_NAME]>,
    len: AtomicU8,
    subs: AtomicU8,
}

// SAFETY: a scope's name is written once, under ADDING, before COUNT publishes it (Release);
// readers read only scopes below COUNT (Acquire), never while it is written.
unsafe impl Sync for Scope {}

#[allow(clippy::declare_interior_mutable_const)]
const NO_SCOPE: Scope = Scope {
    name: UnsafeCell::new([0; MAX_NAME]),
    len: AtomicU8::new(0),
    subs: AtomicU8::new(0),
};
static SCOPES: [Scope; MAX_SCOPES] = [NO_SCOPE; MAX_SCOPES];
static COUNT: AtomicUsize = AtomicUsize::new(0);
/// Serialises the writers (`import_patched`, the first decision): rare, never on a hook's path.
static ADDING: AtomicBool = AtomicBool::new(false);
/// Bumped whenever a scope is added or widened: older cache entries no longer count.
static EPOCH: AtomicU32 = AtomicU32::new(1);

/// Why a scope cannot be added.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Empty, too long, or with a comma or NUL.
    BadName,
    /// [`MAX_SCOPES`] objects are named already.
    Full,
    /// This glibc has no `_dl_find_object` (older than 2.35), or the exports' routers are not
    /// written for this architecture (x86-64 and aarch64 only so far).
    NoFinder,
}

/// Is `name` a shared object name a scope may hold (what `GREENWORLD_PATCH_FROM` accepts)?
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !name
            .bytes()
            .any(|b| b == b',' || b == 0 || b.is_ascii_whitespace())
}

/// Resolves `_dl_find_object` once; false when this glibc has none (older than 2.35).
pub fn finder_ready() -> bool {
    if FIND_OBJECT.load(Ordering::Acquire) == 0 {
        // SAFETY: a NUL-terminated name; a successful dlsym does not allocate (see `real`).
        let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_dl_find_object".as_ptr()) };
        if found.is_null() {
            return false;
        }
        FIND_OBJECT.store(found as usize, Ordering::Release);
    }
    true
}

/// A loaded object, as the loader maps it.
#[derive(Clone, Copy)]
pub struct Object {
    /// Where its mapping starts and ends.
    pub start: usize,
    pub end: usize,
    /// Its path as the loader has it (empty for the main program), NUL-terminated: the loader's
    /// own string.
    name: &'static CStr,
    /// Its load bias (`l_addr`): what its symbols' values are offset by.
    pub bias: usize,
}

impl Object {
    /// The file name of its path.
    pub fn file(&self) -> &'static [u8] {
        let path = self.path();
        path.rsplit(|&b| b == b'/').next().unwrap_or(path)
    }

    /// Its path as the loader has it (empty for the main program).
    pub fn path(&self) -> &'static [u8] {
        self.name.to_bytes()
    }

    /// Its file, opened with a raw `openat` of the loader's own string (no copy, no allocation,
    /// no lock): the main program's as `/proc/self/exe`. None for an object with no file (the
    /// vDSO).
    pub fn open_file(&self) -> Option<crate::sys::RawFile> {
        let name = if self.name.is_empty() {
            c"/proc/self/exe"
        } else {
            self.name
        };
        crate::sys::RawFile::open(name.to_bytes_with_nul())
    }
}

/// The object `address` lies in, if any and if [`finder_ready`] said yes. Lock- and
/// allocation-free, async-signal-safe (a signal handler asks it).
pub fn object_of(address: usize) -> Option<Object> {
    let find = FIND_OBJECT.load(Ordering::Acquire);
    if find == 0 {
        return None;
    }
    // SAFETY: FIND_OBJECT holds only dlsym's answer for _dl_find_object, of this type.
    let find: FindObject = unsafe { core::mem::transmute::<usize, FindObject>(find) };
    // SAFETY: all-zero is a valid dl_find_object for the loader to fill.
    let mut found: DlFindObject = unsafe { core::mem::zeroed() };
    // SAFETY: any address may be asked about; `found` is writable.
    if unsafe { find(address as *const c_void, &mut found) } != 0 {
        return None;
    }
    // SAFETY: the loader's link map for a loaded object; its name is a NUL-terminated string
    // it owns (null for none).
    let name = unsafe { found.link_map.as_ref() }
        .filter(|map| !map.name.is_null())
        .map_or(c"", |map| {
            // SAFETY: as above: a non-null name the loader owns.
            unsafe { CStr::from_ptr(map.name) }
        });
    // SAFETY: as above.
    let bias = unsafe { found.link_map.as_ref() }.map_or(found.map_start, |map| map.addr);
    Some(Object {
        start: found.map_start,
        end: found.map_end,
        name,
        bias,
    })
}

/// Calls from `name` (a soname, a file name, or a path with a '/') are green for `subs` from
/// now on, on top of what they were. Allocation-free.
pub fn add(name: &[u8], subs: u8) -> Result<(), Refused> {
    if !core::str::from_utf8(name).is_ok_and(valid_name) {
        return Err(Refused::BadName);
    }
    if !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        return Err(Refused::NoFinder);
    }
    if !finder_ready() {
        return Err(Refused::NoFinder);
    }
    while ADDING
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        core::hint::spin_loop();
    }
    let count = COUNT.load(Ordering::Relaxed);
    let published = SCOPES.iter().take(count);
    let result = match published.clone().find(|scope| scope_name(scope) == name) {
        Some(scope) => {
            scope.subs.fetch_or(subs, Ordering::Relaxed);
            Ok(())
        }
        None if count == MAX_SCOPES => Err(Refused::Full),
        None => {
            let scope = &SCOPES[count];
            // SAFETY: unpublished (index >= COUNT) and we hold ADDING: nobody reads or writes it.
            unsafe { (&mut *scope.name.get())[..name.len()].copy_from_slice(name) };
            scope.len.store(name.len() as u8, Ordering::Relaxed);
            scope.subs.store(subs, Ordering::Relaxed);
            COUNT.store(count + 1, Ordering::Release);
            Ok(())
        }
    };
    EPOCH.fetch_add(1, Ordering::Release);
    ADDING.store(false, Ordering::Release);
    result
}

/// The subsystems green for the calls of the object named exactly `name` (0 when no scope
/// names it so): what `patch` asks about libpq for eventlet's `psycopg`.
pub fn named(name: &[u8]) -> u8 {
    SCOPES
        .iter()
        .take(COUNT.load(Ordering::Acquire))
        .filter(|scope| scope_name(scope) == name)
        .fold(0, |subs, scope| subs | scope.subs.load(Ordering::Relaxed))
}

/// Each scope's name, in the order they were named (for `GREENWORLD_STATUS`).
pub fn names() -> impl Iterator<Item = &'static [u8]> {
    SCOPES
        .iter()
        .take(COUNT.load(Ordering::Acquire))
        .map(scope_name)
}

/// A published scope's name (one below COUNT).
fn scope_name(scope: &'static Scope) -> &'static [u8] {
    // SAFETY: published (below COUNT), never written again.
    let name = unsafe { &*scope.name.get() };
    &name[..usize::from(scope.len.load(Ordering::Relaxed))]
}

/// The loader's generation as this library sees it: bumped on entry to every `dlopen` and
/// `dlmopen` the program makes, and on entry to and return from every `dlclose` (see
/// `abi::loader`). A call site's answer stays right while the generation stands: a range can
/// change hands only when one object is unmapped (inside `dlclose`) and another mapped in its
/// place (inside a later `dlopen`), each behind a bump. The loader's own loads (NSS, iconv)
/// only add objects at fresh addresses: no call site already answered lies in them.
pub(crate) static GENERATION: AtomicU32 = AtomicU32::new(0);

/// Something may have been mapped or unmapped: no remembered answer stands.
#[inline]
pub fn loader_changed() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// One call site's answer: the return address and the subsystems green for it, with the
/// generation (loader's and scopes') it was found in, under a sequence number (odd while
/// written: a reader that sees it change asks the loader instead).
struct Slot {
    seq: AtomicU32,
    generation: AtomicU32,
    epoch: AtomicU32,
    return_address: AtomicUsize,
    subs: AtomicU8,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_SLOT: Slot = Slot {
    seq: AtomicU32::new(0),
    generation: AtomicU32::new(0),
    epoch: AtomicU32::new(0),
    return_address: AtomicUsize::new(0),
    subs: AtomicU8::new(0),
};
/// A program makes hooked calls from a few hundred call sites; one that collides with another
/// is asked about again (correct, only slower).
const SLOTS: usize = 1024;
static CACHE: [Slot; SLOTS] = [EMPTY_SLOT; SLOTS];

/// The subsystems green for a call returning to `return_address`: those of the scopes naming
/// the shared object it lies in, none when they name none (or the address is in no object).
/// Lock- and allocation-free: the loader (a constructor inside `dlopen`) or the allocator may
/// be the caller.
#[inline]
pub fn green_for(return_address: usize) -> u8 {
    let slot = &CACHE[(return_address ^ return_address >> 10) % SLOTS];
    let generation = GENERATION.load(Ordering::Acquire);
    let epoch = EPOCH.load(Ordering::Acquire);
    let seq = slot.seq.load(Ordering::Acquire);
    if seq & 1 == 0
        && slot.return_address.load(Ordering::Relaxed) == return_address
        && slot.generation.load(Ordering::Relaxed) == generation
        && slot.epoch.load(Ordering::Relaxed) == epoch
    {
        let subs = slot.subs.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if slot.seq.load(Ordering::Relaxed) == seq {
            return subs;
        }
    }
    remember(slot, seq, generation, epoch, return_address)
}

/// [`green_for`]'s miss, out of line (the hit keeps few registers): the loader's answer, kept
/// in `slot` (read at `seq`) for the generations it was asked in.
#[cold]
#[inline(never)]
fn remember(slot: &Slot, seq: u32, generation: u32, epoch: u32, return_address: usize) -> u8 {
    let subs = ask_loader(return_address);
    // Remembered unless another writer holds the slot (then the next call asks again).
    if seq & 1 == 0
        && slot
            .seq
            .compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    {
        fence(Ordering::Release);
        slot.generation.store(generation, Ordering::Relaxed);
        slot.epoch.store(epoch, Ordering::Relaxed);
        slot.return_address.store(return_address, Ordering::Relaxed);
        slot.subs.store(subs, Ordering::Relaxed);
        slot.seq.store(seq + 2, Ordering::Release);
    }
    subs
}

/// [`green_for`] without the cache: which object holds the address, and what the scopes say
/// of it.
fn ask_loader(return_address: usize) -> u8 {
    let find = FIND_OBJECT.load(Ordering::Acquire);
    if find == 0 {
        return 0;
    }
    // SAFETY: FIND_OBJECT holds only dlsym's answer for _dl_find_object, of this type.
    let find: FindObject = unsafe { core::mem::transmute::<usize, FindObject>(find) };
    // SAFETY: all-zero is a valid dl_find_object for the loader to fill.
    let mut found: DlFindObject = unsafe { core::mem::zeroed() };
    // SAFETY: any address may be asked about; `found` is writable.
    if unsafe { find(return_address as *const c_void, &mut found) } != 0 {
        return 0;
    }
    subs_of(found.link_map)
}

/// The subsystems of the scopes that name this object, by its path, file name or soname.
#[cold]
fn subs_of(map: *const LinkMap) -> u8 {
    if map.is_null() {
        return 0;
    }
    // SAFETY: a link map the loader gave for a loaded object: its public head is valid while
    // the object stays loaded, which it does while its code calls us.
    let map = unsafe { &*map };
    let path = if map.name.is_null() {
        &[][..]
    } else {
        // SAFETY: l_name is a NUL-terminated string the loader owns.
        unsafe { CStr::from_ptr(map.name) }.to_bytes()
    };
    let file = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    let soname = soname(map);
    let mut subs = 0;
    for scope in SCOPES.iter().take(COUNT.load(Ordering::Acquire)) {
        let name = scope_name(scope);
        let names_it = if name.contains(&b'/') {
            name == path
        } else {
            !file.is_empty() && name == file || soname == Some(name)
        };
        if names_it {
            subs |= scope.subs.load(Ordering::Relaxed);
        }
    }
    subs
}

/// The object's `DT_SONAME`, if it has one.
fn soname(map: &LinkMap) -> Option<&'static [u8]> {
    let (mut strtab, mut offset) = (None, None);
    let mut entry = map.dynamic;
    if entry.is_null() {
        return None;
    }
    loop {
        // SAFETY: the dynamic section the loader points at ends with DT_NULL.
        let dynamic = unsafe { &*entry };
        match dynamic.tag {
            DT_NULL => break,
            DT_STRTAB => strtab = Some(dynamic.val),
            DT_SONAME => offset = Some(dynamic.val),
            _ => {}
        }
        // SAFETY: not past DT_NULL yet.
        entry = unsafe { entry.add(1) };
    }
    let mut strtab = strtab?;
    // glibc relocates the dynamic section's addresses in place, except where it is read-only
    // (the vDSO): an address below the load base is still an offset.
    if strtab < map.addr {
        strtab += map.addr;
    }
    // SAFETY: the string table holds NUL-terminated names; DT_SONAME is an offset into it.
    Some(unsafe { CStr::from_ptr((strtab + offset?) as *const c_char) }.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_scope_may_hold() {
        assert!(valid_name("libcurl.so.4"));
        assert!(valid_name("/usr/lib/x86_64-linux-gnu/libpq.so.5"));
        assert!(!valid_name(""));
        assert!(!valid_name("a,b"));
        assert!(!valid_name("lib curl.so"));
        assert!(valid_name(&"x".repeat(MAX_NAME)));
        assert!(!valid_name(&"x".repeat(MAX_NAME + 1)));
    }

    #[test]
    fn a_scope_named_twice_widens() {
        assert_eq!(add(b"libunit.so.1", 0b01), Ok(()));
        assert_eq!(add(b"libunit.so.1", 0b10), Ok(()));
        assert_eq!(add(b"bad,name", 1), Err(Refused::BadName));
        let count = COUNT.load(Ordering::Acquire);
        let named: Vec<&Scope> = SCOPES[..count]
            .iter()
            .filter(|s| scope_name(s) == b"libunit.so.1")
            .collect();
        assert_eq!(named.len(), 1);
        assert_eq!(named[0].subs.load(Ordering::Relaxed), 0b11);
        assert_eq!(super::named(b"libunit.so.1"), 0b11);
        assert_eq!(super::named(b"libunit.so"), 0);
        assert!(names().any(|n| n == b"libunit.so.1"));
        // This test binary is in no scope: its calls are nobody's.
        let here = a_scope_named_twice_widens as usize;
        assert_eq!(green_for(here), 0);
        // libc is, once named: libc's own code asks as a caller in it would.
        assert_eq!(add(b"libc.so.6", 0b100), Ok(()));
        assert_eq!(green_for(libc::getpid as usize), 0b100);
        assert_eq!(green_for(libc::getpid as usize), 0b100, "the cached answer");
    }
}
