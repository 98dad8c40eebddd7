//! Private thread-locals (`GREENWORLD_TLS=private`, the default): each green thread has its own
//! `__thread`/`thread_local` variables, static and dynamic, as a pthread does (trap 17).
//!
//! The thread pointer (`%fs`) stays the OS thread's, so everything glibc keys on it stays one
//! identity per OS thread: `THREAD_SELF` (stdio's recursive `_IO_lock_t` owner, the loader's
//! recursive locks), the kernel tid, the rseq area the kernel updates, the stack-protector canary
//! at `%fs:0x28`, the pointer guard, the thread list `fork` walks. What is private is the
//! *contents* of the static TLS blocks below the thread pointer and the DTV pointer at `%fs:8`:
//!
//! * static TLS (the executable's and the libraries loaded at start-up): the bytes of those
//!   blocks are copied out to the outgoing thread's image and in from the incoming one's at each
//!   switch. Two blocks are left shared: this library's own (the hub, the time slice, the twin
//!   flag are per OS thread) and libc's (its `tcache` and arena, locale, `dlerror` and resolver
//!   state, `tls_dtor_list`: glibc 2.36 exports no way to free another thread's tcache, so a
//!   private libc block would leak one per green thread; errno, which lives there, is saved and
//!   restored at every switch as before, trap 7). A third is shared when `malloc` comes from
//!   another library (jemalloc, tcmalloc, mimalloc as the program's allocator): such an
//!   allocator links its per-thread caches into global lists *by their thread-local address*
//!   (jemalloc's arena lists of tcache descriptors, walked by its statistics), and that address
//!   is the OS thread's for every green thread on it, so private copies would swap list nodes
//!   under the walker's feet (redis-server crashed at `HUBS=2` in its first `serverCron`). The
//!   allocator's per-thread state is then per OS thread, as glibc's own malloc state is.
//! * dynamic TLS (`dlopen`ed libraries): each green thread has its own DTV, a copy of its
//!   creator's whose static entries point at the OS thread's blocks (where the thread's own bytes
//!   are while it runs) and whose dynamic entries are unallocated, so `__tls_get_addr` allocates
//!   the thread's own block on first use, as in a new pthread. At the thread's end its dynamic
//!   blocks are freed as `_dl_deallocate_tls` frees them, and its DTV and image are kept by its
//!   hub for the next thread ([`Kept`]: a spawn and join then allocate nothing).
//!
//! A library `dlopen`ed later with initial-exec TLS in the static surplus stays shared between
//! the green threads of an OS thread (its block is not in the copied ranges; glibc's
//! `__tls_get_addr` then points every DTV at the OS thread's block, so both access models agree).

use core::cell::Cell;
use core::sync::atomic::{AtomicUsize, Ordering};
use libc::{c_int, c_void, dl_phdr_info, size_t};
use std::sync::OnceLock;

/// Most separate ranges of static TLS copied at a switch (blocks between the two shared ones).
const MAX_RANGES: usize = 8;
/// glibc's `TLS_DTV_UNALLOCATED`.
const UNALLOCATED: usize = usize::MAX;

/// Bytes of static TLS below the thread pointer, as offsets from it.
#[derive(Clone, Copy, Debug, Default)]
struct Range {
    /// The range starts this many bytes below the thread pointer.
    below: usize,
    len: usize,
}

/// Where the private static TLS lies (the same offsets on every OS thread) and what a new
/// thread's copy starts as.
struct Layout {
    ranges: [Range; MAX_RANGES],
    count: usize,
    /// Sum of the ranges' lengths: the size of an image.
    total: usize,
    /// The initial image (each module's `.tdata`, zeroed `.tbss`), ranges back to back.
    initial_image: Vec<u8>,
    /// The static TLS area: [tp - static_size, tp).
    static_size: usize,
    /// This library's own module id: its block stays the OS thread's in every DTV.
    own_module: usize,
}

/// A green thread's (or a root's) thread-local state while it is switched out.
#[derive(Clone, Copy, Debug)]
pub struct State {
    /// Its static TLS bytes (`Layout::total` of them), null when it has none (shared mode).
    image: *mut u8,
    /// Its DTV as `%fs:8` holds it (pointing at entry 0, the generation).
    dtv: *mut usize,
    /// Whose DTV this is: a root's belongs to glibc and is never freed here.
    owns_dtv: bool,
}

impl State {
    pub const NONE: State = State {
        image: core::ptr::null_mut(),
        dtv: core::ptr::null_mut(),
        owns_dtv: false,
    };

    #[inline]
    pub fn is_private(&self) -> bool {
        !self.image.is_null()
    }
}

thread_local! {
    /// A variable of this library's own TLS block: its address finds the block.
    static OWN_MARK: Cell<u8> = const { Cell::new(0) };
}

static LAYOUT: OnceLock<Option<Layout>> = OnceLock::new();

/// Finished threads' states a hub keeps for reuse, at most this many (a spawn and a join then
/// cost no `malloc` and `free`s).
const KEPT_STATES: usize = 64;

/// One OS thread's (its hub's) reusable thread-local state: finished threads' DTVs and images,
/// and the DTV a new thread starts with, so that making and ending a thread that allocated no
/// dynamic TLS block costs a few loads and stores (and the copy of the initial image when
/// some module has private static TLS), not a walk over the DTV's slots and three
/// allocations.
///
/// A DTV's static entries point at its OS thread's blocks: what is kept here serves this OS
/// thread only (`Hub::tls_kept`).
pub struct Kept {
    /// A new thread's DTV array (entry -1 first): the creator's with its dynamic entries
    /// unallocated and nothing to free; null until the first thread.
    template: Cell<*mut usize>,
    /// The generation and slots of the DTV `template` was made from.
    template_from: Cell<(usize, usize)>,
    /// The template has entries of modules with dynamic TLS (`__tls_get_addr` may allocate a
    /// block in a thread's copy without changing its generation).
    template_dynamic: Cell<bool>,
    /// Counts the templates made: a kept array known to equal the template is marked with it.
    template_epoch: Cell<usize>,
    /// Kept DTV arrays, linked through word 1 (entry -1's unused half); word 2 holds the image
    /// kept with it, word 3 the epoch of the template it equals (0: unknown). While kept, only
    /// word 0 (the capacity) means anything to glibc, and words 1 to 3 are the template's
    /// again before the array is handed out.
    free: Cell<*mut usize>,
    free_count: Cell<usize>,
}

/// Words of a kept array used for the keeping (1 to 3).
const KEEPING: core::ops::Range<usize> = 1..4;

impl Kept {
    pub const fn new() -> Kept {
        Kept {
            template: Cell::new(core::ptr::null_mut()),
            template_from: Cell::new((0, 0)),
            template_dynamic: Cell::new(false),
            template_epoch: Cell::new(0),
            free: Cell::new(core::ptr::null_mut()),
            free_count: Cell::new(0),
        }
    }

    /// The template for a thread made while `from` (a DTV as `%fs:8` holds it) is installed:
    /// remade when `from` has another generation or size (a module with TLS was loaded).
    ///
    /// # Safety
    /// `from` is a valid DTV of this OS thread.
    #[inline]
    unsafe fn template(&self, layout: &Layout, from: *mut usize) -> Option<*mut usize> {
        // SAFETY: entry 0 is the generation, entry -1 the number of module slots.
        let key = unsafe { (*from, *from.sub(2)) };
        let template = self.template.get();
        if !template.is_null() && self.template_from.get() == key {
            return Some(template);
        }
        // SAFETY: per our contract.
        unsafe { self.remake_template(layout, from, key) }
    }

    /// # Safety
    /// As `template`; `key` is `from`'s generation and slots.
    #[cold]
    unsafe fn remake_template(
        &self,
        layout: &Layout,
        from: *mut usize,
        key: (usize, usize),
    ) -> Option<*mut usize> {
        // SAFETY: per our contract.
        let (fresh, dynamic) = unsafe { fresh_dtv(layout, from) }?;
        let old = self.template.get();
        if !old.is_null() {
            // SAFETY: our own array; threads' DTVs are copies, never the template itself.
            unsafe { libc::free(old.cast()) };
        }
        let mem = fresh.wrapping_sub(2);
        self.template.set(mem);
        self.template_from.set(key);
        self.template_dynamic.set(dynamic);
        self.template_epoch.set(self.template_epoch.get() + 1);
        Some(mem)
    }

    /// Did a finished thread leave its DTV array `mem` (its capacity `slots`) as it got it? Then
    /// there is nothing to free in it, and it equals the template. Without modules with dynamic
    /// TLS a block could only be allocated after a generation change, which glibc records in
    /// entry 0 first; otherwise the arrays are compared.
    ///
    /// # Safety
    /// `mem` is a valid DTV array of `slots` slots.
    unsafe fn untouched(&self, mem: *mut usize, slots: usize) -> bool {
        let template = self.template.get();
        // SAFETY: the template is a valid array (word 0 its capacity).
        if template.is_null() || unsafe { *template } != slots {
            return false;
        }
        let bytes = (slots + 2) * 2 * size_of::<usize>();
        // SAFETY: both arrays have (slots + 2) * 2 words; word 2 is entry 0, the generation.
        unsafe {
            if self.template_dynamic.get() {
                libc::memcmp(mem.cast(), template.cast(), bytes) == 0
            } else {
                *mem.add(2) == *template.add(2)
            }
        }
    }

    /// A kept DTV array of the template's capacity, equal to the template, with its image; None
    /// when none is kept.
    ///
    /// # Safety
    /// The template is made (`template`).
    unsafe fn pop(&self) -> Option<(*mut usize, *mut u8)> {
        let head = self.free.get();
        if head.is_null() {
            return None;
        }
        let template = self.template.get();
        // SAFETY: kept arrays are ours, their keeping in words 1 to 3.
        let (next, image, epoch) = unsafe { (*head.add(1), *head.add(2), *head.add(3)) };
        self.free.set(next as *mut usize);
        self.free_count.set(self.free_count.get() - 1);
        // SAFETY: both arrays' word 0 is their capacity.
        let (slots, capacity) = unsafe { (*template, *head) };
        if capacity != slots {
            // SAFETY: a kept array nobody refers to (grown by glibc for an older thread).
            unsafe { libc::free(head.cast()) };
            return Some((core::ptr::null_mut(), image as *mut u8));
        }
        // SAFETY: both arrays have (slots + 2) * 2 words.
        unsafe {
            if epoch == self.template_epoch.get() {
                for word in KEEPING {
                    *head.add(word) = *template.add(word);
                }
            } else {
                core::ptr::copy_nonoverlapping(template, head, (slots + 2) * 2);
            }
        }
        Some((head, image as *mut u8))
    }

    /// Keeps a DTV array and an image for reuse, or frees them; `clean`: the array equals the
    /// template.
    ///
    /// # Safety
    /// `mem` is a DTV array made by `malloc` (maybe grown by glibc) and `image` one made by
    /// `alloc_image`, both referred to by nobody any more.
    unsafe fn push(&self, layout: &Layout, mem: *mut usize, image: *mut u8, clean: bool) {
        if self.free_count.get() >= KEPT_STATES {
            // SAFETY: per our contract.
            unsafe {
                libc::free(mem.cast());
                free_image(layout, image);
            }
            return;
        }
        let epoch = if clean { self.template_epoch.get() } else { 0 };
        // SAFETY: per our contract; a DTV array has at least 4 words (entries -1 and 0).
        unsafe {
            *mem.add(1) = self.free.get() as usize;
            *mem.add(2) = image as usize;
            *mem.add(3) = epoch;
        }
        self.free.set(mem);
        self.free_count.set(self.free_count.get() + 1);
    }
}

impl Default for Kept {
    fn default() -> Kept {
        Kept::new()
    }
}

/// An image for a layout with no private bytes: never read or written, never freed.
static EMPTY_IMAGE: u8 = 0;

unsafe extern "C" {
    fn __errno_location() -> *mut c_int;
}

/// The thread pointer (`%fs:0` holds it: glibc's `tcbhead_t.tcb`), which is also the OS
/// thread's `pthread_t` (glibc's `THREAD_SELF`).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn thread_pointer() -> usize {
    let tp: usize;
    // SAFETY: reads the first word of the TCB, which glibc keeps pointing at itself.
    unsafe {
        core::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp,
            options(nostack, readonly, preserves_flags));
    }
    tp
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn current_dtv() -> *mut usize {
    let dtv: *mut usize;
    // SAFETY: reads `tcbhead_t.dtv` (offset 8) of the running OS thread's TCB.
    unsafe {
        core::arch::asm!("mov {}, qword ptr fs:[8]", out(reg) dtv,
            options(nostack, readonly, preserves_flags));
    }
    dtv
}

/// # Safety
/// `dtv` is a valid DTV (entry 0 of a `malloc`ed array, its length at entry -1).
#[cfg(target_arch = "x86_64")]
#[inline]
unsafe fn install_dtv(dtv: *mut usize) {
    // SAFETY: writes `tcbhead_t.dtv` of the running OS thread, as glibc's INSTALL_NEW_DTV.
    unsafe {
        core::arch::asm!("mov qword ptr fs:[8], {}", in(reg) dtv,
            options(nostack, preserves_flags));
    }
}

// Elsewhere (aarch64 keeps the DTV pointer at the thread pointer itself, TLS_DTV_AT_TP) the
// layout is never read (`read_layout`), so these are never reached.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn thread_pointer() -> usize {
    0
}
#[cfg(not(target_arch = "x86_64"))]
fn current_dtv() -> *mut usize {
    core::ptr::null_mut()
}
#[cfg(not(target_arch = "x86_64"))]
unsafe fn install_dtv(_dtv: *mut usize) {}

/// Is private TLS on for this process (configured, and its layout could be read)?
pub fn private() -> bool {
    crate::config::get().tls == crate::config::Tls::Private && layout().is_some()
}

fn layout() -> Option<&'static Layout> {
    LAYOUT
        .get_or_init(|| {
            let layout = read_layout();
            if let Some(layout) = &layout {
                // dtv_t entries are 16 bytes, module ids index them from entry 0.
                OWN_SLOT.store(layout.own_module.wrapping_mul(16), Ordering::Relaxed);
            }
            if layout.is_none() {
                crate::log!(
                    Warn,
                    "cannot read the static TLS layout; green threads share their OS thread's thread-locals"
                );
            }
            layout
        })
        .as_ref()
}

/// One module's static TLS block, found by `dl_iterate_phdr`.
#[derive(Clone, Copy)]
struct Block {
    addr: usize,
    memsz: usize,
    init: usize,
    filesz: usize,
    shared: bool,
}

struct Scan {
    tp: usize,
    static_size: usize,
    own: usize,
    errno: usize,
    /// Where the program's `malloc` is: its module's block stays shared (see the module docs).
    allocator: usize,
    own_module: usize,
    blocks: Vec<Block>,
}

unsafe extern "C" fn scan_object(
    info: *mut dl_phdr_info,
    _size: size_t,
    data: *mut c_void,
) -> c_int {
    // SAFETY: dl_iterate_phdr hands a valid info, and `data` is the Scan we passed.
    let (info, scan) = unsafe { (&*info, &mut *data.cast::<Scan>()) };
    if info.dlpi_tls_modid == 0 || info.dlpi_tls_data.is_null() {
        return 0;
    }
    let addr = info.dlpi_tls_data as usize;
    // SAFETY: dlpi_phdr has dlpi_phnum entries.
    let phdrs = unsafe { core::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
    let Some(tls) = phdrs.iter().find(|p| p.p_type == libc::PT_TLS) else {
        return 0;
    };
    let memsz = tls.p_memsz as usize;
    let in_block = |a: usize| (addr..addr + memsz).contains(&a);
    let in_object = |a: usize| {
        phdrs.iter().any(|p| {
            let start = info.dlpi_addr as usize + p.p_vaddr as usize;
            p.p_type == libc::PT_LOAD && (start..start + p.p_memsz as usize).contains(&a)
        })
    };
    if in_block(scan.own) {
        scan.own_module = info.dlpi_tls_modid;
    }
    if addr >= scan.tp || addr < scan.tp - scan.static_size {
        return 0; // a dynamic block (allocated on use, per DTV)
    }
    scan.blocks.push(Block {
        addr,
        memsz,
        init: info.dlpi_addr as usize + tls.p_vaddr as usize,
        filesz: tls.p_filesz as usize,
        shared: in_block(scan.own) || in_block(scan.errno) || in_object(scan.allocator),
    });
    0
}

/// Where the program's `malloc` is defined. Not merely where `dlsym` points: a non-PIE
/// executable that takes `malloc`'s address (node does) makes its PLT stub the canonical
/// address, exported as an undefined symbol with that value, and that stub is no allocator.
fn allocator() -> usize {
    const RTLD_DL_SYMENT: libc::c_int = 1;
    // SAFETY: a lookup by a NUL-terminated name; this runs at the first green spawn, never
    // inside the loader (trap 2).
    let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"malloc".as_ptr()) };
    // SAFETY: an all-zero Dl_info is a valid out-parameter.
    let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
    let mut symbol: *mut c_void = core::ptr::null_mut();
    // SAFETY: dladdr1 only reads the loader's tables, for any address; with RTLD_DL_SYMENT it
    // stores a pointer to the matching ElfW(Sym) of the object's dynamic symbol table.
    let named = !found.is_null()
        && unsafe { libc::dladdr1(found, &mut info, &mut symbol, RTLD_DL_SYMENT) } != 0;
    // SAFETY: when non-null, `symbol` points at a symbol table entry the loader keeps mapped.
    let defined =
        named && !symbol.is_null() && unsafe { (*symbol.cast::<libc::Elf64_Sym>()).st_shndx } != 0; // SHN_UNDEF
    if defined && info.dli_saddr == found {
        found as usize
    } else {
        0
    }
}

fn read_layout() -> Option<Layout> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    type StaticInfo = unsafe extern "C" fn(*mut size_t, *mut size_t);
    let name = c"_dl_get_tls_static_info";
    let version = c"GLIBC_PRIVATE";
    // SAFETY: a versioned lookup of ld.so's function; a miss returns null (trap 2: once).
    let f = unsafe { libc::dlvsym(libc::RTLD_DEFAULT, name.as_ptr(), version.as_ptr()) };
    if f.is_null() {
        return None;
    }
    // SAFETY: `_dl_get_tls_static_info(size_t *size, size_t *align)`, as glibc declares it.
    let get_static_info: StaticInfo = unsafe { core::mem::transmute(f) };
    let (mut static_size, mut align) = (0, 0);
    // SAFETY: two writable locals.
    unsafe { get_static_info(&mut static_size, &mut align) };
    let mut scan = Scan {
        tp: thread_pointer(),
        static_size,
        own: OWN_MARK.with(|m| m as *const Cell<u8> as usize),
        // SAFETY: __errno_location has no preconditions.
        errno: unsafe { __errno_location() } as usize,
        allocator: allocator(),
        own_module: 0,
        blocks: Vec::new(),
    };
    // SAFETY: the callback matches dl_iterate_phdr's and `scan` outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(scan_object), (&raw mut scan).cast()) };
    scan.blocks.sort_by_key(|b| b.addr);
    let tp = scan.tp;
    let mut ranges = [Range::default(); MAX_RANGES];
    let (mut count, mut initial_image) = (0, Vec::new());
    // Consecutive private blocks make one range (the padding between them is copied too).
    let mut open: Option<(usize, usize)> = None; // (start, end) addresses
    let mut flush = |open: &mut Option<(usize, usize)>, count: &mut usize| -> Option<()> {
        if let Some((start, end)) = open.take() {
            if *count == MAX_RANGES {
                return None;
            }
            ranges[*count] = Range {
                below: tp - start,
                len: end - start,
            };
            *count += 1;
        }
        Some(())
    };
    for block in &scan.blocks {
        if block.shared {
            flush(&mut open, &mut count)?;
            continue;
        }
        let end = block.addr + block.memsz;
        open = Some(match open {
            Some((start, _)) => (start, end),
            None => (block.addr, end),
        });
    }
    flush(&mut open, &mut count)?;
    for range in &ranges[..count] {
        let start = tp - range.below;
        let base = initial_image.len();
        initial_image.resize(base + range.len, 0);
        for block in scan.blocks.iter().filter(|b| !b.shared) {
            if block.addr < start || block.addr >= start + range.len {
                continue;
            }
            let at = base + block.addr - start;
            // SAFETY: the module's initialisation image, p_filesz bytes of its mapped segment.
            let init =
                unsafe { core::slice::from_raw_parts(block.init as *const u8, block.filesz) };
            initial_image[at..at + block.filesz].copy_from_slice(init);
        }
    }
    let total = initial_image.len();
    // SAFETY: the running thread's DTV is valid; entry -1 holds its number of module slots.
    let dtv_bytes = (unsafe { *current_dtv().sub(2) } + 2) * 2 * size_of::<usize>();
    crate::log!(
        Debug,
        "private TLS: {total} bytes in {count} range(s) of {static_size} static bytes, and a DTV of {dtv_bytes} bytes, per green thread"
    );
    Some(Layout {
        ranges,
        count,
        total,
        initial_image,
        static_size,
        own_module: scan.own_module,
    })
}

/// The state of a new green thread: the initial image, and a DTV with no dynamic block yet,
/// in memory `kept` holds when it has some. None when memory is short (`pthread_create` then
/// fails with EAGAIN).
#[inline]
pub fn for_new_thread(kept: &Kept) -> Option<State> {
    let layout = layout()?;
    // SAFETY: the running thread's DTV is valid.
    let template = unsafe { kept.template(layout, current_dtv()) }?;
    // SAFETY: the template is made.
    let (mem, image) = match unsafe { kept.pop() } {
        Some((mem, image)) if !mem.is_null() => (mem, image),
        kept => fresh_memory(layout, template, kept.map(|(_, image)| image))?,
    };
    if layout.total != 0 {
        // SAFETY: the image and the initial one have `total` bytes (no module with private
        // static TLS: no image to fill).
        unsafe {
            core::ptr::copy_nonoverlapping(layout.initial_image.as_ptr(), image, layout.total)
        };
    }
    Some(State {
        image,
        dtv: mem.wrapping_add(2),
        owns_dtv: true,
    })
}

/// A new DTV array, a copy of `template`, and an image (`image` when one was kept).
#[cold]
fn fresh_memory(
    layout: &Layout,
    template: *mut usize,
    image: Option<*mut u8>,
) -> Option<(*mut usize, *mut u8)> {
    let image = match image {
        Some(image) => image,
        None => alloc_image(layout)?,
    };
    // SAFETY: a template's word 0 is its capacity.
    let slots = unsafe { *template };
    // SAFETY: malloc'ed as glibc allocates DTVs (it may realloc it); not zeroed: the template
    // is copied over all of it just below.
    let mem = unsafe { libc::malloc((slots + 2) * 2 * size_of::<usize>()) }.cast::<usize>();
    if mem.is_null() {
        // SAFETY: allocated or kept for this thread, not handed out.
        unsafe { free_image(layout, image) };
        return None;
    }
    // SAFETY: both arrays have (slots + 2) * 2 words.
    unsafe { core::ptr::copy_nonoverlapping(template, mem, (slots + 2) * 2) };
    Some((mem, image))
}

/// A root's state: a place for its bytes while a green thread runs (its DTV is saved at the
/// first switch).
pub fn for_root() -> Option<State> {
    let layout = layout()?;
    Some(State {
        image: alloc_image(layout)?,
        dtv: core::ptr::null_mut(),
        owns_dtv: false,
    })
}

fn alloc_image(layout: &Layout) -> Option<*mut u8> {
    if layout.total == 0 {
        return Some((&raw const EMPTY_IMAGE).cast_mut());
    }
    // SAFETY: malloc has no preconditions.
    let image = unsafe { libc::malloc(layout.total) }.cast::<u8>();
    (!image.is_null()).then_some(image)
}

/// A copy of `from` (a DTV as `%fs:8` holds it) for a new thread: its static entries kept, its
/// dynamic ones unallocated, nothing to free; and whether it has dynamic entries.
///
/// # Safety
/// `from` is a valid DTV.
unsafe fn fresh_dtv(layout: &Layout, from: *mut usize) -> Option<(*mut usize, bool)> {
    // SAFETY: entry -1 holds the number of module slots (each entry is two words).
    let slots = unsafe { *from.sub(2) };
    let words = (slots + 2) * 2;
    // SAFETY: calloc has no preconditions.
    let mem = unsafe { libc::calloc(slots + 2, 2 * size_of::<usize>()) }.cast::<usize>();
    if mem.is_null() {
        return None;
    }
    // SAFETY: both arrays have `words` words.
    unsafe { core::ptr::copy_nonoverlapping(from.sub(2), mem, words) };
    let dtv = mem.wrapping_add(2);
    let tp = thread_pointer();
    let in_static = |a: usize| a < tp && a >= tp - layout.static_size;
    let mut dynamic = false;
    for module in 1..=slots {
        // SAFETY: module <= slots: inside the array.
        let entry = unsafe { &mut *dtv.add(module * 2).cast::<[usize; 2]>() };
        let val = entry[0];
        // An unallocated entry or a block of the creator's is a module with dynamic TLS; an
        // empty slot (0) is no module yet.
        dynamic |=
            val == UNALLOCATED || (val != 0 && !in_static(val) && module != layout.own_module);
        if val == UNALLOCATED || in_static(val) || module == layout.own_module {
            entry[1] = 0; // never freed as this thread's
            continue;
        }
        *entry = [UNALLOCATED, 0];
    }
    Some((dtv, dynamic))
}

/// Asks the CPU for the words of `state`'s DTV that the first look at this library's
/// thread-locals after a switch to it reads (`__tls_get_addr`: the generation, then this
/// library's slot): each green thread's DTV is its own allocation, cold when it resumes.
#[inline]
pub fn prefetch_dtv(state: &Cell<State>) {
    let dtv = state.get().dtv as usize;
    if dtv == 0 {
        return;
    }
    crate::sys::prefetch(dtv);
    crate::sys::prefetch(dtv.wrapping_add(OWN_SLOT.load(Ordering::Relaxed)));
}

/// Where this library's slot lies in a DTV, in bytes from entry 0 (read with the layout).
static OWN_SLOT: AtomicUsize = AtomicUsize::new(0);

/// Switches the running OS thread's thread-locals from `from`'s to `to`'s: saves the static
/// bytes and the DTV in `from`, installs `to`'s.
///
/// # Safety
/// Both states are private (made by this module), and `from`'s are the ones installed now.
#[inline]
pub unsafe fn switch(from: &Cell<State>, to: &Cell<State>) {
    let Some(layout) = LAYOUT.get().and_then(Option::as_ref) else {
        return;
    };
    let (from, to) = (from.as_ptr(), to.as_ptr());
    if layout.count != 0 {
        // SAFETY: both states are valid (per our contract) and not borrowed elsewhere.
        let (out, into) = unsafe { ((*from).image, (*to).image) };
        let tp = thread_pointer();
        let mut at = 0;
        for range in &layout.ranges[..layout.count] {
            let live = (tp - range.below) as *mut u8;
            // SAFETY: the ranges lie in this OS thread's static TLS; images have `total` bytes.
            unsafe {
                core::ptr::copy_nonoverlapping(live, out.add(at), range.len);
                core::ptr::copy_nonoverlapping(into.add(at), live, range.len);
            }
            at += range.len;
        }
    }
    // SAFETY: as above; `to`'s DTV is valid: a root's, saved here, or one made by
    // `for_new_thread`.
    unsafe {
        (*from).dtv = current_dtv();
        install_dtv((*to).dtv);
    }
}

/// Frees a finished green thread's dynamic TLS blocks, as `_dl_deallocate_tls` does, and keeps
/// its DTV and image in `kept` for the next thread (or frees them).
///
/// # Safety
/// The state is not installed and never used again; `kept` is its OS thread's.
#[inline]
pub unsafe fn release(kept: &Kept, state: State) {
    let Some(layout) = LAYOUT.get().and_then(Option::as_ref) else {
        return;
    };
    if !state.owns_dtv || state.dtv.is_null() {
        // SAFETY: allocated by `alloc_image`, not used any more.
        unsafe { free_image(layout, state.image) };
        return;
    }
    let mem = state.dtv.wrapping_sub(2);
    // SAFETY: a DTV made by `for_new_thread` (maybe grown by glibc): its capacity at entry -1.
    let slots = unsafe { *mem };
    // SAFETY: as above.
    let untouched = unsafe { kept.untouched(mem, slots) };
    if !untouched {
        // SAFETY: as above.
        unsafe { free_dynamic_blocks(state.dtv, slots) };
    }
    // SAFETY: nobody refers to the array or the image any more.
    unsafe { kept.push(layout, mem, state.image, untouched) };
}

/// Frees the blocks `__tls_get_addr` allocated for a finished thread.
///
/// # Safety
/// `dtv` is that thread's DTV, of `slots` slots, never used again.
#[cold]
unsafe fn free_dynamic_blocks(dtv: *mut usize, slots: usize) {
    for module in 1..=slots {
        // SAFETY: inside the array; entry `module`'s second word is what glibc would free.
        let to_free = unsafe { *dtv.add(module * 2 + 1) };
        if to_free != 0 {
            // SAFETY: a block `__tls_get_addr` allocated for this thread alone.
            unsafe { libc::free(to_free as *mut c_void) };
        }
    }
}

/// # Safety
/// `image` came from `alloc_image` (or is null) and is not used any more.
unsafe fn free_image(layout: &Layout, image: *mut u8) {
    if layout.total != 0 && !image.is_null() {
        // SAFETY: per our contract, a malloc'ed image.
        unsafe { libc::free(image.cast()) };
    }
}
