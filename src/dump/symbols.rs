//! Addresses to names, at dump time only: `dladdr` for the object, its ELF symbol table (read
//! from the file) for the function, so that a program's static functions get names too; and
//! a parked thread's backtrace, read off its stack.
//!
//! The backtrace is a scan, as the kernel's unreliable stack traces ("? func+off") are: every
//! word between the thread's saved stack pointer and the top of its stack that points just
//! past a call instruction in an executable mapping is taken for a return address. No frame
//! pointers are needed (C programs built with -O2 and this library have none) and no unwind
//! tables are run on a foreign stack; the price is an occasional stale frame, so the dump marks
//! the frames "(scan)". Every read is checked first: stack words within the thread's own stack
//! bounds, code bytes within an executable mapping of `/proc/self/maps`.

use core::ffi::CStr;

/// The executable mappings and every mapping's range, read once per dump.
pub struct Maps {
    all: Vec<(usize, usize, bool)>,
}

impl Maps {
    pub fn read() -> Maps {
        let text = read_file(c"/proc/self/maps").unwrap_or_default();
        let all = text
            .split(|&b| b == b'\n')
            .filter_map(|line| {
                let line = core::str::from_utf8(line).ok()?;
                let mut fields = line.split_ascii_whitespace();
                let (start, end) = fields.next()?.split_once('-')?;
                let perms = fields.next()?;
                Some((
                    usize::from_str_radix(start, 16).ok()?,
                    usize::from_str_radix(end, 16).ok()?,
                    // Readable too: an execute-only page ([vsyscall]) cannot be read for the
                    // call-instruction check.
                    perms
                        .as_bytes()
                        .get(..3)
                        .is_some_and(|p| p[0] == b'r' && p[2] == b'x'),
                ))
            })
            .collect();
        Maps { all }
    }

    /// The mapping that holds `addr`: (start, end, readable and executable).
    pub fn holding(&self, addr: usize) -> Option<(usize, usize, bool)> {
        self.all
            .iter()
            .copied()
            .find(|&(start, end, _)| (start..end).contains(&addr))
    }

    /// Does `addr` follow a call instruction (so that it is a return address)?
    fn after_call(&self, addr: usize) -> bool {
        let Some((start, _, true)) = self.holding(addr) else {
            return false;
        };
        #[cfg(target_arch = "x86_64")]
        {
            if addr < start + 7 {
                return false;
            }
            // SAFETY: the seven bytes before `addr` lie in the same mapped, executable range.
            let b: [u8; 7] = unsafe { core::ptr::read_volatile((addr - 7) as *const [u8; 7]) };
            let modrm_call = |at: usize, modes: &[u8]| {
                b[at] == 0xff && (b[at + 1] >> 3) & 7 == 2 && modes.contains(&(b[at + 1] >> 6))
            };
            b[2] == 0xe8 // call rel32
                || modrm_call(5, &[3]) // call reg
                || modrm_call(4, &[1, 3]) // call [reg+disp8], call r8..r15 (REX)
                || modrm_call(3, &[1]) // call [reg+sib+disp8]
                || modrm_call(1, &[0, 2]) // call [rip+disp32], [reg+disp32]
                || modrm_call(0, &[2]) // call [reg+sib+disp32]
        }
        #[cfg(target_arch = "aarch64")]
        {
            if addr < start + 4 || addr % 4 != 0 {
                return false;
            }
            // SAFETY: the instruction before `addr` lies in the same mapped, executable range.
            let insn = unsafe { core::ptr::read_volatile((addr - 4) as *const u32) };
            insn & 0xfc00_0000 == 0x9400_0000 || insn & 0xffff_fc1f == 0xd63f_0000
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            let _ = start;
            true
        }
    }

    /// The return addresses found on the stack between `sp` and `top`, outside `skip` (the
    /// object the library itself is in: its frames say nothing about the program).
    pub fn scan_stack(&self, sp: usize, top: usize, skip: usize, max: usize) -> Vec<usize> {
        const WINDOW: usize = 256 << 10;
        let mut found = Vec::new();
        let sp = sp.next_multiple_of(size_of::<usize>());
        let top = top.min(sp.saturating_add(WINDOW));
        // The whole range must be mapped (a stack is one mapping).
        match self.holding(sp) {
            Some((_, end, _)) if end >= top => {}
            _ => return found,
        }
        let mut at = sp;
        while at + size_of::<usize>() <= top && found.len() < max {
            // SAFETY: inside one mapped range, checked above, and aligned.
            let word = unsafe { core::ptr::read_volatile(at as *const usize) };
            if self.after_call(word) && object_base(word) != Some(skip) {
                found.push(word);
            }
            at += size_of::<usize>();
        }
        found
    }
}

/// The load base of the object holding `addr` (dladdr).
pub fn object_base(addr: usize) -> Option<usize> {
    // SAFETY: an all-zero Dl_info is a valid out-parameter.
    let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
    // SAFETY: dladdr only reads the loader's tables for any address value.
    (unsafe { libc::dladdr(addr as *const libc::c_void, &mut info) } != 0)
        .then_some(info.dli_fbase as usize)
}

/// Writes `addr` as `function+0xoff (object)`, or what of it can be found.
pub fn describe(out: &mut impl core::fmt::Write, cache: &mut SymbolFiles, addr: usize) {
    // SAFETY: as in `object_base`.
    let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
    // SAFETY: as in `object_base`.
    if unsafe { libc::dladdr(addr as *const libc::c_void, &mut info) } == 0 {
        let _ = write!(out, "{addr:#x}");
        return;
    }
    let base = info.dli_fbase as usize;
    // SAFETY: dladdr sets dli_fname to null or a NUL-terminated path the loader keeps.
    let path = (!info.dli_fname.is_null())
        .then(|| unsafe { CStr::from_ptr(info.dli_fname) })
        .filter(|p| !p.is_empty());
    let short = path
        .and_then(|p| p.to_str().ok())
        .map_or(crate::log::program(), |p| p.rsplit('/').next().unwrap_or(p));
    let file = path.unwrap_or(c"/proc/self/exe");
    if let Some((name, offset)) = cache.lookup(file, base, addr) {
        let _ = write!(out, "{name}+{offset:#x} ({short})");
        return;
    }
    if !info.dli_sname.is_null() {
        // SAFETY: a NUL-terminated name from the loader's symbol table.
        let name = unsafe { CStr::from_ptr(info.dli_sname) }.to_string_lossy();
        let _ = write!(
            out,
            "{name}+{:#x} ({short})",
            addr - info.dli_saddr as usize
        );
        return;
    }
    let _ = write!(out, "{addr:#x} ({short}+{:#x})", addr - base);
}

/// The symbol tables of the objects a dump has looked into, read once each.
#[derive(Default)]
pub struct SymbolFiles {
    files: Vec<(Vec<u8>, Option<Elf>)>,
}

struct Elf {
    data: Vec<u8>,
    /// The file is an executable linked at fixed addresses (ET_EXEC): symbols are absolute.
    fixed: bool,
    symtab: (usize, usize),
    strtab: (usize, usize),
}

impl SymbolFiles {
    fn lookup(&mut self, file: &CStr, base: usize, addr: usize) -> Option<(String, usize)> {
        let key = file.to_bytes();
        let index = match self.files.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                self.files.push((key.to_vec(), Elf::read(file)));
                self.files.len() - 1
            }
        };
        let elf = self.files[index].1.as_ref()?;
        let at = if elf.fixed { addr } else { addr - base } as u64;
        elf.function_at(at)
    }
}

impl Elf {
    fn read(path: &CStr) -> Option<Elf> {
        let data = read_file(path)?;
        let u16_at = |o: usize| Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?));
        let u32_at = |o: usize| Some(u32::from_le_bytes(data.get(o..o + 4)?.try_into().ok()?));
        let u64_at = |o: usize| Some(u64::from_le_bytes(data.get(o..o + 8)?.try_into().ok()?));
        if data.get(..5)? != b"\x7fELF\x02" {
            return None;
        }
        let fixed = u16_at(16)? == 2;
        let (shoff, shentsize, shnum) = (u64_at(0x28)? as usize, u16_at(0x3a)?, u16_at(0x3c)?);
        let section = |i: usize| {
            let at = shoff + i * shentsize as usize;
            Some((
                u32_at(at + 4)?,
                u64_at(at + 0x18)? as usize,
                u64_at(at + 0x20)? as usize,
                u32_at(at + 0x28)?,
            ))
        };
        let (symtab, link) = (0..shnum as usize).find_map(|i| {
            let (kind, offset, size, link) = section(i)?;
            (kind == 2).then_some(((offset, size), link))
        })?;
        let (_, str_offset, str_size, _) = section(link as usize)?;
        Some(Elf {
            data,
            fixed,
            symtab,
            strtab: (str_offset, str_size),
        })
    }

    fn function_at(&self, at: u64) -> Option<(String, usize)> {
        let (offset, size) = self.symtab;
        let symbols = self.data.get(offset..offset + size)?;
        let strings = self
            .data
            .get(self.strtab.0..self.strtab.0 + self.strtab.1)?;
        symbols.chunks_exact(24).find_map(|sym| {
            let name = u32::from_le_bytes(sym[0..4].try_into().ok()?) as usize;
            let value = u64::from_le_bytes(sym[8..16].try_into().ok()?);
            let size = u64::from_le_bytes(sym[16..24].try_into().ok()?);
            let is_function = sym[4] & 0xf == 2;
            if !is_function || value == 0 || !(value..value + size.max(1)).contains(&at) {
                return None;
            }
            let tail = strings.get(name..)?;
            let end = tail.iter().position(|&b| b == 0)?;
            let name = String::from_utf8_lossy(&tail[..end]).into_owned();
            Some((name, (at - value) as usize))
        })
    }
}

/// A whole file, read with raw system calls (the library never goes through its own hooks).
pub fn read_file(path: &CStr) -> Option<Vec<u8>> {
    // SAFETY: a NUL-terminated path; a fresh descriptor of ours, closed below.
    let fd = unsafe {
        crate::sys::syscall!(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC
        )
    };
    if fd < 0 {
        return None;
    }
    let mut data = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        // SAFETY: reads into a valid buffer of its size.
        let n =
            unsafe { crate::sys::syscall!(libc::SYS_read, fd, chunk.as_mut_ptr(), chunk.len()) };
        if n <= 0 || data.len() > (256 << 20) {
            break;
        }
        data.extend_from_slice(&chunk[..n as usize]);
    }
    // SAFETY: ours, opened above.
    unsafe { crate::sys::syscall!(libc::SYS_close, fd) };
    Some(data)
}
