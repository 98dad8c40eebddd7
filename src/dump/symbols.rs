//! Names and backtraces for the dump, by the monitor's own means: `sysmon::symbolize` (the ELF
//! symbol table read with `pread`, static functions included) and `sysmon::backtrace`'s stack
//! scan (every read through `process_vm_readv`, so a stale word cannot fault). The dump only
//! adds a memo: a thousand parked threads mostly share their frames, and a name costs a few
//! dozen reads.
//!
//! The frames of a parked thread are a scan (as the kernel's "? func+off" traces are): words
//! from its saved stack pointer up that point just past a call in a loaded object, the ones
//! whose call cannot have led to the frame before dropped; the dump marks them "(scan)".

use std::collections::HashMap;

/// The names the dump has written, by address.
#[derive(Default)]
pub struct Names {
    known: HashMap<usize, String>,
}

impl Names {
    /// Writes `addr` as `function+0xoff (object)`, or what of it can be found.
    pub fn describe(&mut self, out: &mut String, addr: usize) {
        let name = self.known.entry(addr).or_insert_with(|| {
            let mut text = String::new();
            let _ = crate::sysmon::symbolize::write_place(&mut text, addr);
            text
        });
        out.push_str(name);
    }
}

/// Where the object holding `addr` starts.
pub fn object_start(addr: usize) -> Option<usize> {
    crate::scope::object_of(addr).map(|object| object.start)
}

/// Up to `max` return addresses on the stack from `sp` to `top` (0: as far as its mapping
/// goes), leaving out those in the object starting at `skip` (this library: its frames say
/// nothing about the program).
pub fn frames(sp: usize, top: usize, skip: usize, max: usize) -> Vec<usize> {
    crate::sysmon::backtrace::scan(0, sp, top)
        .as_slice()
        .iter()
        .copied()
        .filter(|&pc| object_start(pc) != Some(skip))
        .take(max)
        .collect()
}
