//! The table of green-thread control blocks. A green thread's `pthread_t` is the address of its
//! slot, so every pthread function can tell a green handle from a real one with a range check,
//! and a stale handle (joined, or never ours) is answered with ESRCH instead of a crash.
//!
//! Slots live in one reserved, lazily committed mapping that is never unmapped: a stale pointer
//! to a slot (a timer that outlived its sleeper) always points at valid memory.

use super::Green;
use core::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Most green threads alive at once, in every hub together.
pub const CAPACITY: usize = 1 << 22;
/// Set in every green thread's owner id; kernel thread ids stay below 2^22.
pub const GREEN_ID_BIT: i32 = 1 << 30;

struct Table {
    base: usize,
    /// Slots ever handed out; slots below this are initialised memory.
    used: AtomicUsize,
    free: Mutex<Vec<usize>>,
}

static TABLE: once_cell::sync::OnceCell<Option<Table>> = once_cell::sync::OnceCell::new();

fn table() -> Option<&'static Table> {
    TABLE
        .get_or_init(|| {
            let len = CAPACITY * size_of::<Green>();
            // SAFETY: a fresh anonymous mapping, reserved without committing memory.
            let base = unsafe {
                libc::mmap(
                    core::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            (base != libc::MAP_FAILED).then(|| Table {
                base: base as usize,
                used: AtomicUsize::new(0),
                free: Mutex::new(Vec::new()),
            })
        })
        .as_ref()
}

/// Free slots one OS thread (its hub) keeps for itself: a spawn and join on one hub then take
/// and give back a slot without the table's lock (two locked read-modify-writes each way on a
/// line every hub shares). At most [`LOCAL_SLOTS`]; the rest go to the table's list.
pub struct LocalSlots {
    slots: core::cell::UnsafeCell<[u32; LOCAL_SLOTS]>,
    len: core::cell::Cell<usize>,
}

const LOCAL_SLOTS: usize = 64;

impl LocalSlots {
    pub const fn new() -> LocalSlots {
        LocalSlots {
            slots: core::cell::UnsafeCell::new([0; LOCAL_SLOTS]),
            len: core::cell::Cell::new(0),
        }
    }

    fn pop(&self) -> Option<usize> {
        let len = self.len.get().checked_sub(1)?;
        self.len.set(len);
        // SAFETY: touched only by its own OS thread, not re-entrantly; len < LOCAL_SLOTS.
        Some(unsafe { (*self.slots.get())[len] } as usize)
    }

    /// False when full.
    fn push(&self, index: usize) -> bool {
        let len = self.len.get();
        if len == LOCAL_SLOTS {
            return false;
        }
        // SAFETY: as in `pop`.
        unsafe { (*self.slots.get())[len] = index as u32 };
        self.len.set(len + 1);
        true
    }
}

impl Default for LocalSlots {
    fn default() -> LocalSlots {
        LocalSlots::new()
    }
}

/// A new green thread's block in a free slot (one of `local`'s, the calling OS thread's, when
/// it has one), made by `make` from the dead block the slot holds ([`Green::revive`], whose
/// contract the slot meets); None when the table is full (or could not be mapped).
#[inline]
pub fn insert(local: &LocalSlots, make: impl FnOnce(*mut Green)) -> Option<&'static Green> {
    let table = table()?;
    let index = match local.pop() {
        Some(i) => i,
        None => {
            let freed = table.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match freed {
                Some(i) => i,
                None => first_use(table)?,
            }
        }
    };
    let slot = (table.base + index * size_of::<Green>()) as *mut Green;
    // SAFETY: the slot is inside the mapping, aligned (the mapping is page-aligned and slots are
    // size_of::<Green>() apart) and holds a dead block (written by `remove` or `first_use`),
    // which was free: nothing else writes it (stale readers only read its atomics, which
    // refuse every wake).
    unsafe { (*slot).id.set(GREEN_ID_BIT | index as i32) };
    make(slot);
    // SAFETY: a valid block, made a live one.
    Some(unsafe { &*slot })
}

/// A slot never handed out before, made a dead block; None when the table is full.
#[cold]
fn first_use(table: &Table) -> Option<usize> {
    let i = table.used.fetch_add(1, Ordering::Relaxed);
    if i >= CAPACITY {
        table.used.fetch_sub(1, Ordering::Relaxed);
        return None;
    }
    let slot = (table.base + i * size_of::<Green>()) as *mut Green;
    // SAFETY: inside the mapping, aligned, never handed out (nothing to drop); `lookup` reads
    // only slots below `used`, so it may see this one now: it then sees a dead block or, before
    // this write, zeroed memory whose `live` is false.
    unsafe { slot.write(Green::dead()) };
    Some(i)
}

/// A handle inside the table whose thread is gone (ESRCH).
#[derive(Debug, PartialEq, Eq)]
pub struct Gone;

/// The live green thread whose handle is `handle`; `Ok(None)` for a handle that is not ours (a
/// real thread).
pub fn lookup(handle: usize) -> Result<Option<&'static Green>, Gone> {
    let Some(table) = TABLE.get().and_then(Option::as_ref) else {
        return Ok(None);
    };
    let offset = handle.wrapping_sub(table.base);
    if offset >= CAPACITY * size_of::<Green>() {
        return Ok(None);
    }
    if offset % size_of::<Green>() != 0
        || offset / size_of::<Green>() >= table.used.load(Ordering::Relaxed)
    {
        return Err(Gone);
    }
    // SAFETY: an initialised slot (below `used`, on a slot boundary); slots are never unmapped
    // and a freed slot is left in a valid state with `live` false.
    let green = unsafe { &*(handle as *const Green) };
    if green.is_live() {
        Ok(Some(green))
    } else {
        Err(Gone)
    }
}

/// Returns a finished, reaped thread's slot to `local` (the calling OS thread's) or, when it
/// is full or there is none, to the table.
///
/// # Safety
/// `green` must come from [`insert`], be finished, and no longer be referenced by anything
/// but stale handles and stale timer entries (which only ever read its atomics). `local`, if
/// given, is the calling OS thread's own.
pub unsafe fn remove(green: &'static Green, local: Option<&LocalSlots>) {
    let Some(table) = table() else { return };
    let addr = green as *const Green as usize;
    green.retire();
    let slot = addr as *mut Green;
    let last_token = green.last_token.load(Ordering::Relaxed);
    // SAFETY: per the contract, nothing uses the slot's non-atomic state any more; dropping in
    // place releases its key table. The atomics stay readable (memory is never unmapped), and
    // `retire` made them refuse every wake.
    unsafe { core::ptr::drop_in_place(slot) };
    // SAFETY: re-initialise the dropped slot as a dead block so stale readers see valid data;
    // its tokens go on from the last one (see `Green::last_token`).
    unsafe {
        slot.write(Green::dead());
        (*slot).last_token.store(last_token, Ordering::Relaxed);
    }
    let index = (addr - table.base) / size_of::<Green>();
    if local.is_some_and(|local| local.push(index)) {
        return;
    }
    table
        .free
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(index);
}

/// Every live green thread, of every hub (for a dump: a thread may end meanwhile; its slot
/// stays valid memory).
pub fn live() -> impl Iterator<Item = &'static Green> {
    let (base, used) = TABLE
        .get()
        .and_then(Option::as_ref)
        .map_or((0, 0), |table| {
            (table.base, table.used.load(Ordering::Acquire))
        });
    (0..used)
        .map(move |index| {
            // SAFETY: an initialised slot (below `used`); slots are never unmapped.
            unsafe { &*((base + index * size_of::<Green>()) as *const Green) }
        })
        .filter(|green| green.is_live())
}

/// Does `pred` hold for every live green thread (stopping at the first that fails)?
pub fn all_live(pred: impl FnMut(&'static Green) -> bool) -> bool {
    live().all(pred)
}

/// In a forked child: retires every green thread of `hub` but `keep` (they do not exist in the
/// child; their slots are never reused, which is only memory).
pub fn retire_all_but(hub: *const (), keep: &Green) {
    let Some(table) = TABLE.get().and_then(Option::as_ref) else {
        return;
    };
    let used = table.used.load(Ordering::Relaxed);
    for index in 0..used {
        // SAFETY: an initialised slot (below `used`); slots are never unmapped.
        let green = unsafe { &*((table.base + index * size_of::<Green>()) as *const Green) };
        if green.is_live() && !core::ptr::eq(green, keep) && core::ptr::eq(green.hub_ptr(), hub) {
            green.retire();
        }
    }
}
