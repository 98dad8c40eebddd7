//! Green-thread stacks: large, lazily committed mappings with a generous guard below (trap 14),
//! pooled per hub because a fresh `mmap` + `mprotect` costs several microseconds.
//!
//! Each mapped stack is two VMAs (guard + usable), so the kernel's `vm.max_map_count` (65 530 by
//! default) caps live green threads near 32 000, as it caps native pthreads.

use corosensei::stack::StackPointer;

/// Guard below every stack we map. One 4 KiB page can be jumped by a large frame, silently
/// corrupting the neighbour; 64 KiB of address space costs nothing committed.
pub const GUARD: usize = 64 << 10;
/// How many free stacks a hub keeps for reuse.
const POOL_LIMIT: usize = 1024;

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 { size as usize } else { 4096 }
}

/// A green thread's stack: mapped by us (and unmapped or pooled on release), or the memory a
/// program handed over with `pthread_attr_setstack` (never unmapped by us).
pub struct Stack {
    /// Lowest address of the region, guard included.
    low: usize,
    /// Bytes from `low` to the top.
    len: usize,
    /// Bytes of guard at the bottom.
    guard: usize,
    owned: bool,
}

impl Stack {
    /// Maps a stack with at least `size` usable bytes and `guard` bytes of guard below.
    pub fn map(size: usize, guard: usize) -> Option<Stack> {
        let page = page_size();
        let round = |n: usize| n.checked_add(page - 1).map(|n| n & !(page - 1));
        let (size, guard) = (round(size)?, round(guard)?);
        let len = size.checked_add(guard)?;
        // SAFETY: a fresh anonymous private mapping; no existing memory is touched.
        let low = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if low == libc::MAP_FAILED {
            return None;
        }
        let stack = Stack {
            low: low as usize,
            len,
            guard,
            owned: true,
        };
        // SAFETY: [low + guard, low + len) lies inside the mapping just made.
        let rc = unsafe {
            libc::mprotect(
                (stack.low + guard) as *mut libc::c_void,
                size,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        // On failure `stack` is dropped, which unmaps it.
        (rc == 0).then_some(stack)
    }

    /// Wraps memory the program gave with `pthread_attr_setstack`.
    ///
    /// # Safety
    /// `[addr, addr + size)` must be writable memory that stays valid and unused by anything
    /// else until the green thread running on it has ended.
    pub unsafe fn borrowed(addr: usize, size: usize) -> Option<Stack> {
        let top = addr.checked_add(size)? & !15;
        let low = (addr + 15) & !15;
        (top > low + 4096).then_some(Stack {
            low,
            len: top - low,
            guard: 0,
            owned: false,
        })
    }

    /// Usable bytes (guard excluded).
    pub fn usable(&self) -> usize {
        self.len - self.guard
    }

    /// Lowest usable address.
    pub fn usable_low(&self) -> usize {
        self.low + self.guard
    }

    pub fn guard(&self) -> usize {
        self.guard
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: [low, low + len) is a mapping this Stack made and owns alone.
            unsafe { libc::munmap(self.low as *mut libc::c_void, self.len) };
        }
    }
}

// SAFETY: base() is the top of a region this Stack owns (or was lent for the thread's life),
// limit() its lowest address including the guard; both are 16-byte aligned (page-aligned when
// mapped, rounded when borrowed).
unsafe impl corosensei::stack::Stack for Stack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.low + self.len).expect("stack top is never null")
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.low).expect("stack bottom is never null")
    }
}

/// A hub's free stacks, for reuse by the next thread with the same size and guard.
#[derive(Default)]
pub struct StackPool {
    free: Vec<Stack>,
}

impl StackPool {
    pub fn get(&mut self, size: usize, guard: usize) -> Option<Stack> {
        let page = page_size();
        let size = size.checked_add(page - 1)? & !(page - 1);
        match self
            .free
            .iter()
            .rposition(|s| s.usable() == size && s.guard == guard)
        {
            Some(i) => Some(self.free.swap_remove(i)),
            None => Stack::map(size, guard),
        }
    }

    pub fn put(&mut self, stack: Stack) {
        if stack.owned && self.free.len() < POOL_LIMIT {
            self.free.push(stack);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_stack_is_writable_above_the_guard_and_pooled() {
        let mut pool = StackPool::default();
        let stack = pool.get(100_000, GUARD).unwrap();
        assert!(stack.usable() >= 100_000);
        assert_eq!(stack.usable() % page_size(), 0);
        let top = stack.usable_low() + stack.usable();
        // SAFETY: both bytes lie in the usable, writable part of the stack.
        unsafe {
            *((top - 1) as *mut u8) = 1;
            *(stack.usable_low() as *mut u8) = 1;
        }
        let low = stack.usable_low();
        pool.put(stack);
        assert_eq!(
            pool.get(100_000, GUARD).unwrap().usable_low(),
            low,
            "reused from the pool"
        );
    }

    #[test]
    fn impossible_sizes_fail_cleanly() {
        assert!(Stack::map(1 << 62, GUARD).is_none());
        assert!(Stack::map(usize::MAX - 10, GUARD).is_none());
    }
}
