//! Copied stacks (`GREENWORLD_STACK_COPY=1`, libco's "copy stack", greenlet's stack slicing):
//! the green threads of a hub run on one shared stack region, and a parked thread keeps only
//! the bytes it used, in a heap buffer of its own.
//!
//! The region has one occupant, whose bytes are in place. When the hub resumes a thread that is
//! not the occupant ([`Region::enter`], on the root's own stack, never on the region), the
//! occupant's bytes `[saved stack pointer, top)` go out to its buffer (grown to fit, kept
//! while it lives) and the resumed thread's come back to the same addresses: pointers into its
//! own stack stay right. A thread that parks and is resumed before any other ran on the region
//! (a ping-pong with the root, a lone worker) copies nothing.
//!
//! What a suspended corosensei coroutine keeps (x86-64, `arch/x86_64.rs`): `switch_yield`
//! pushes rbp, rbx and its resume address and hands that stack pointer to the parent; nothing
//! lies below it. At the top sit the parent link (written again by every resume) and the
//! first frame. `Hub::suspend` records the thread's stack pointer ([`Green::switched_sp`])
//! just before the switch, in the frame that makes it; [`BELOW_SWITCHED`] covers what the
//! switch pushes below that.
//!
//! The price: a pointer into a parked thread's stack is not valid while another thread of the
//! hub runs (README). The library's own records that others reach while a thread waits are kept
//! off copied stacks: park nodes (`park`), pool hand-offs (`tpool` makes such a call inline), and
//! an interrupted wait's record is reached through [`Region::locate`].

use super::Green;
use super::stack::{GUARD, Stack};
use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

/// Bytes below a parked thread's recorded stack pointer that belong to it: what the switch
/// pushes there. `Yielder::suspend` is generic, so it is inlined into `Hub::suspend` (one
/// codegen unit): the release build records `rsp` (`mov rax,rsp`) and then `switch_yield`
/// pushes rbp, rbx and its resume address, 24 bytes (aarch64: one 32-byte `stp`/`str` block).
/// 64 leaves a margin; it is copied at every swap, so it is kept small.
pub const BELOW_SWITCHED: usize = 64;

/// What `Coroutine::with_stack` writes at the top of a new thread's stack (its first frame,
/// the entry closure, the parent link slot), and a margin: a new thread's whole image.
const FIRST_IMAGE: usize = 256;

/// Buffers grow in steps of this many bytes (an allocation size class of malloc's).
const BUFFER_STEP: usize = 128;

/// Is the copied-stack mode on (`GREENWORLD_STACK_COPY`)?
#[inline]
pub fn enabled() -> bool {
    crate::config::get().stack_copy
}

/// Does a thread that asked for `size` bytes of stack run on its hub's shared region? Yes in
/// the mode when the region (`GREENWORLD_STACK_SIZE`) is large enough; a larger one gets a
/// stack of its own, as does one whose program handed it memory (`pthread_attr_setstack`).
pub fn wanted_for(size: usize) -> bool {
    enabled() && size <= crate::config::get().stack_size
}

/// A green thread's bytes while another runs on the region: `len` bytes at `bytes`, which
/// belong at `[top - len, top)`. The buffer is malloc's, `cap` bytes.
#[derive(Clone, Copy, Debug)]
pub struct Saved {
    bytes: *mut u8,
    cap: usize,
    len: usize,
}

impl Saved {
    pub const NONE: Saved = Saved {
        bytes: ptr::null_mut(),
        cap: 0,
        len: 0,
    };

    /// Bytes kept on the heap for it now.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Makes room for `len` bytes (what was there is not kept). False when memory is short.
    fn reserve(&mut self, len: usize) -> bool {
        if len <= self.cap {
            return true;
        }
        let cap = len.div_ceil(BUFFER_STEP) * BUFFER_STEP;
        // SAFETY: free of malloc's own buffer (or null), then a fresh one. Not `realloc`: the old
        // bytes are stale, and copying them would be wasted.
        let bytes = unsafe {
            libc::free(self.bytes.cast());
            libc::malloc(cap).cast::<u8>()
        };
        if bytes.is_null() {
            *self = Saved::NONE;
            return false;
        }
        *self = Saved { bytes, cap, len: 0 };
        true
    }

    fn release(&mut self) {
        // SAFETY: malloc's buffer, or null.
        unsafe { libc::free(self.bytes.cast()) };
        *self = Saved::NONE;
    }
}

/// A hub's shared stack region: `[low, low + guard)` faults, `[low + guard, top)` is the
/// stack every green thread of the hub on it runs on.
pub struct Region {
    low: usize,
    guard: usize,
    top: usize,
    /// Whose bytes are in place (null: nobody's that matters). The hub's own OS thread only.
    occupant: Cell<*const Green>,
}

// SAFETY: `low`, `guard`, `top` are written once, before the region is published; `occupant`
// is touched only by the OS thread of the hub that owns the region (its threads never migrate,
// trap 8), which also does every copy.
unsafe impl Sync for Region {}

impl Region {
    /// The region of the hub whose slot is `slot`, mapped on first use (from any OS thread: a
    /// spawn on another hub asks for its bounds). None when no memory can be mapped.
    pub fn of(slot: &AtomicPtr<Region>) -> Option<&'static Region> {
        let known = slot.load(Ordering::Acquire);
        if !known.is_null() {
            // SAFETY: published below, never freed.
            return Some(unsafe { &*known });
        }
        let made = Box::into_raw(Box::new(Region::map(crate::config::get().stack_size)?));
        match slot.compare_exchange(ptr::null_mut(), made, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: just published; never freed.
            Ok(_) => Some(unsafe { &*made }),
            Err(other) => {
                // Another OS thread published one first: this one goes (address space only).
                // SAFETY: ours, never published.
                let lost = unsafe { Box::from_raw(made) };
                // SAFETY: the mapping `map` made for `lost`, used by nobody.
                unsafe { libc::munmap(lost.low as *mut libc::c_void, lost.top - lost.low) };
                // SAFETY: published by the winner, never freed.
                Some(unsafe { &*other })
            }
        }
    }

    fn map(size: usize) -> Option<Region> {
        let len = size.checked_add(GUARD)?;
        let low = super::stack::map_stack_memory(len)?;
        super::stack::install_guard(low, GUARD);
        Some(Region {
            low,
            guard: GUARD,
            top: low + len,
            occupant: Cell::new(ptr::null()),
        })
    }

    /// The region as a new thread's stack (never pooled: it goes back nowhere).
    pub fn stack(&self) -> Stack {
        Stack::shared(self.low, self.top - self.low, self.guard)
    }

    /// Makes a new thread's coroutine on the region with `make` without disturbing the
    /// occupant (maybe the running thread, the creator): the top bytes `make` writes are put
    /// back after, and what it wrote becomes `green`'s saved image.
    ///
    /// # Safety
    /// On the region's hub's OS thread; `make` only builds a coroutine on [`Region::stack`].
    pub unsafe fn start<T>(&self, green: &Green, make: impl FnOnce() -> T) -> Option<T> {
        let mut saved = green.copied.get();
        if !saved.reserve(FIRST_IMAGE) {
            green.copied.set(saved);
            return None;
        }
        let image = (self.top - FIRST_IMAGE) as *mut u8;
        let mut keep = [0u8; FIRST_IMAGE];
        // SAFETY: the top of the region is mapped and writable; whoever occupies it is not
        // using those bytes meanwhile (the running creator's frames there are its first ones,
        // untouched while it is inside pthread_create; a signal handler runs below its sp).
        let made = unsafe {
            ptr::copy_nonoverlapping(image, keep.as_mut_ptr(), FIRST_IMAGE);
            let made = make();
            ptr::copy_nonoverlapping(image, saved.bytes, FIRST_IMAGE);
            ptr::copy_nonoverlapping(keep.as_ptr(), image, FIRST_IMAGE);
            made
        };
        saved.len = FIRST_IMAGE;
        green.copied.set(saved);
        green.shared_stack.set(true);
        Some(made)
    }

    /// Puts `green`'s bytes in place before it runs, saving the occupant's first.
    ///
    /// # Safety
    /// On the region's hub's OS thread, not on the region (the root's loop); `green` runs on
    /// this region and is about to be resumed; the occupant, if any, is suspended.
    #[inline]
    pub unsafe fn enter(&self, green: &'static Green) {
        if !ptr::eq(self.occupant.get(), green) {
            // SAFETY: per our contract.
            unsafe { self.swap_in(green) };
        }
    }

    #[cold]
    unsafe fn swap_in(&self, green: &'static Green) {
        let occupant = self.occupant.replace(green);
        // SAFETY: a non-null occupant is a live block of this hub (cleared when it ends, and
        // after a fork); it is suspended, so its bytes down to its saved sp are final.
        if let Some(occupant) = unsafe { occupant.as_ref() } {
            self.save(occupant);
        }
        let saved = green.copied.get();
        // SAFETY: `len` bytes that belong at the top of the region (`save` or `start` made
        // them), into the region, which nothing runs on now.
        unsafe {
            ptr::copy_nonoverlapping(saved.bytes, (self.top - saved.len) as *mut u8, saved.len)
        };
    }

    fn save(&self, occupant: &Green) {
        let sp = occupant.switched_sp.load(Ordering::Relaxed);
        let from = sp.saturating_sub(BELOW_SWITCHED).max(self.low + self.guard);
        let len = self.top - from;
        let mut saved = occupant.copied.get();
        if !saved.reserve(len) {
            crate::fatal!(
                "no memory to copy out a parked green thread's stack ({len} bytes; GREENWORLD_STACK_COPY)"
            );
        }
        // SAFETY: `len` bytes of the region (mapped: the thread used them) into a buffer of at
        // least `len`.
        unsafe { ptr::copy_nonoverlapping(from as *const u8, saved.bytes, len) };
        saved.len = len;
        occupant.copied.set(saved);
    }

    /// `green` has ended: it occupies nothing, and its copy is freed.
    pub fn leave(&self, green: &Green) {
        if ptr::eq(self.occupant.get(), green) {
            self.occupant.set(ptr::null());
        }
        let mut saved = green.copied.get();
        saved.release();
        green.copied.set(saved);
        green.shared_stack.set(false);
    }

    /// Where the byte that `green` has at stack address `addr` is now: `addr` itself while it
    /// occupies the region (or when it does not run on it), else its place in the thread's
    /// copy; None when the copy does not hold it (below what the thread used). On the hub's own
    /// OS thread only: another one could see a copy in the middle of a swap.
    pub fn locate(&self, green: &Green, addr: usize) -> Option<usize> {
        if !green.shared_stack.get() || ptr::eq(self.occupant.get(), green) {
            return Some(addr);
        }
        let saved = green.copied.get();
        let from = self.top - saved.len;
        (from..self.top)
            .contains(&addr)
            .then(|| saved.bytes as usize + (addr - from))
    }

    /// In a forked child, where only `running` (the forking thread) goes on: the region holds
    /// its bytes if it runs on it, nobody's otherwise (the occupant's block may be reused).
    pub fn after_fork(&self, running: &Green) {
        let occupant = if running.shared_stack.get() {
            running as *const Green
        } else {
            ptr::null()
        };
        self.occupant.set(occupant);
    }
}
