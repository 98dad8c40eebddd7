//! The backtrace of a hub's blocked OS thread, taken by the monitor from outside it: every read
//! of the thread's stack and code goes through `process_vm_readv` on this process (a bad
//! address fails cleanly where a plain load would fault), into stack buffers, with raw system
//! calls only (see `hidden`).
//!
//! Two methods, and the line says which was used:
//! - **frame pointers**, from the registers the preemption signal's handler caught
//!   ([`super::preempt::capture`], for a thread in its own code): the `rbp` chain, each link
//!   checked (above the last, on the stack, its return address just past a call);
//! - **stack scan** otherwise (a thread in a system call: `/proc/self/task/TID/syscall` gives
//!   only its stack and instruction pointers; code built without frame pointers): every word
//!   from the stack pointer up that points just past a call instruction in a loaded object;
//!   where that call's target is known (direct, through a PLT stub or a GOT slot), the frame
//!   before must be in the function it calls, which drops most stale words.

/// How many frames a backtrace keeps.
pub const MAX_FRAMES: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Method {
    FramePointers,
    StackScan,
}

impl Method {
    pub fn describe(self) -> &'static str {
        match self {
            Method::FramePointers => "frame pointers",
            Method::StackScan => {
                "stack scan: return addresses checked to follow a call, so a stale one may show"
            }
        }
    }
}

pub struct Frames {
    pub pcs: [usize; MAX_FRAMES],
    pub len: usize,
    pub method: Method,
}

impl Frames {
    fn new(pc: usize, method: Method) -> Frames {
        let mut pcs = [0; MAX_FRAMES];
        pcs[0] = pc;
        Frames {
            pcs,
            len: usize::from(pc != 0),
            method,
        }
    }

    fn push(&mut self, pc: usize) -> bool {
        if self.len == MAX_FRAMES {
            return false;
        }
        self.pcs[self.len] = pc;
        self.len += 1;
        true
    }

    pub fn as_slice(&self) -> &[usize] {
        &self.pcs[..self.len]
    }
}

/// Copies this process's memory at `address` into `buf`; the bytes copied (0 on a bad address).
pub fn read_memory(address: usize, buf: &mut [u8]) -> usize {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: address as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: this process's own memory, into a local buffer; a bad address fails (EFAULT).
    let got = unsafe {
        crate::sys::syscall!(
            libc::SYS_process_vm_readv,
            crate::sys::syscall!(libc::SYS_getpid),
            &local as *const libc::iovec,
            1,
            &remote as *const libc::iovec,
            1,
            0
        )
    };
    got.max(0) as usize
}

fn read_word(address: usize) -> Option<usize> {
    let mut word = [0u8; size_of::<usize>()];
    (read_memory(address, &mut word) == word.len()).then(|| usize::from_ne_bytes(word))
}

/// Is `address` in a loaded object, just past a call instruction? Then Some, with the call's
/// target where it is known (`call rel32`, or `call *slot(%rip)`: the slot's word).
#[cfg(target_arch = "x86_64")]
fn after_call(address: usize) -> Option<Option<usize>> {
    let object = crate::scope::object_of(address)?;
    if address < object.start + 7 {
        return None;
    }
    let mut b = [0u8; 7];
    if read_memory(address - 7, &mut b) != 7 {
        return None;
    }
    if b[2] == 0xe8 {
        let rel = i32::from_le_bytes([b[3], b[4], b[5], b[6]]) as isize;
        return Some(Some(address.wrapping_add_signed(rel)));
    }
    if b[1] == 0xff && b[2] == 0x15 {
        // call *slot(%rip): through a GOT slot (code built with -fno-plt, Rust's): the word in
        // the slot is the target.
        let rel = i32::from_le_bytes([b[3], b[4], b[5], b[6]]) as isize;
        return Some(read_word(address.wrapping_add_signed(rel)));
    }
    let modrm_call = |at: usize, modes: &[u8]| {
        b[at] == 0xff && (b[at + 1] >> 3) & 7 == 2 && modes.contains(&(b[at + 1] >> 6))
    };
    (modrm_call(5, &[3]) // call reg
        || modrm_call(4, &[1, 3]) // call [reg+disp8], call r8..r15 (REX)
        || modrm_call(3, &[1]) // call [reg+sib+disp8]
        || modrm_call(1, &[0, 2]) // call [rip+disp32], [reg+disp32]
        || modrm_call(0, &[2])) // call [reg+sib+disp32]
    .then_some(None)
}

#[cfg(not(target_arch = "x86_64"))]
fn after_call(_address: usize) -> Option<Option<usize>> {
    None
}

/// Could a direct call to `target` have led to `callee_pc` (the frame before)? The function it
/// calls starts at the target (or, for a PLT stub, where the stub's slot points) and runs past
/// the pc. A stale copy of a return address next to the live one fails this.
fn call_leads_to(target: usize, callee_pc: usize) -> bool {
    const LONGEST_FUNCTION: usize = 1 << 20;
    let function = stub_destination(target).unwrap_or(target);
    function <= callee_pc && callee_pc - function < LONGEST_FUNCTION
}

/// Where the code at `address` jumps, if it is a PLT entry (`jmp *slot(%rip)`, maybe after
/// `endbr64` and a `bnd` prefix): the word in its slot.
fn stub_destination(address: usize) -> Option<usize> {
    let mut b = [0u8; 16];
    if read_memory(address, &mut b) != b.len() {
        return None;
    }
    let mut at = 0;
    if b[..4] == [0xf3, 0x0f, 0x1e, 0xfa] {
        at += 4;
    }
    if b[at] == 0xf2 {
        at += 1;
    }
    if b[at..at + 2] != [0xff, 0x25] {
        return None;
    }
    let disp = i32::from_le_bytes([b[at + 2], b[at + 3], b[at + 4], b[at + 5]]) as isize;
    read_word((address + at + 6).wrapping_add_signed(disp))
}

/// The backtrace of a thread stopped at `pc` with its stack at `sp`: a scan (see the module),
/// up to `top` (the stack's end, when known; 0: as far as its mapping goes, 128 KiB at most).
pub fn scan(pc: usize, sp: usize, top: usize) -> Frames {
    const CHUNK: usize = 512;
    const MAX_WORDS: usize = 16 * CHUNK;
    let mut frames = Frames::new(pc, Method::StackScan);
    let mut words = [0usize; CHUNK];
    let mut at = sp & !(size_of::<usize>() - 1);
    let top = if top > at { top } else { usize::MAX };
    let mut scanned = 0;
    while scanned < MAX_WORDS && at < top {
        // SAFETY: a usize array seen as its bytes, every pattern valid.
        let bytes = unsafe {
            core::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), size_of_val(&words))
        };
        let want = bytes.len().min(top.saturating_sub(at));
        let got = read_memory(at, &mut bytes[..want]) / size_of::<usize>();
        if got == 0 {
            break;
        }
        for &word in &words[..got] {
            let Some(target) = after_call(word) else {
                continue;
            };
            let before = frames.as_slice().last().copied().unwrap_or(0);
            if target.is_some_and(|t| before != 0 && !call_leads_to(t, before)) {
                continue;
            }
            if !frames.push(word) {
                return frames;
            }
        }
        at += got * size_of::<usize>();
        scanned += got;
    }
    frames
}

/// The backtrace of a thread interrupted at `pc` with `sp` and `fp` (its `rbp`): the frame
/// pointer chain when it gives at least two frames, else a scan.
pub fn walk(pc: usize, sp: usize, fp: usize, top: usize) -> Frames {
    const LARGEST_FRAME: usize = 1 << 20;
    let mut frames = Frames::new(pc, Method::FramePointers);
    let mut fp = fp;
    let mut below = sp;
    while fp >= below && fp - below < LARGEST_FRAME && fp.is_multiple_of(size_of::<usize>()) {
        let (Some(next), Some(ret)) = (read_word(fp), read_word(fp + size_of::<usize>())) else {
            break;
        };
        if after_call(ret).is_none() || !frames.push(ret) {
            break;
        }
        below = fp + 2 * size_of::<usize>();
        fp = next;
    }
    if frames.len >= 3 {
        frames
    } else {
        scan(pc, sp, top)
    }
}

/// The first frame (after the first) in another object than the runtime's (the library, libc,
/// the loader): the call's probable caller, for the escapes table.
pub fn first_caller(frames: &Frames) -> usize {
    frames
        .as_slice()
        .iter()
        .skip(1)
        .copied()
        .find(|&pc| crate::scope::object_of(pc).is_some_and(|o| !super::is_runtime_object(o.start)))
        .unwrap_or(0)
}
