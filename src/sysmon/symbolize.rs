//! Addresses to names for the monitor's lines, with raw system calls only: the monitor runs on
//! a thread glibc does not know (`hidden`), where `dladdr` (the loader's lock), `malloc` and
//! anything keyed on glibc's thread state are out of reach. The object comes from
//! `_dl_find_object` (lock-free, async-signal-safe: `scope::object_of`); the function from the
//! object's file, its symbol table (`.symtab`, static functions included; else `.dynsym`) read
//! in small pieces with `pread` into stack buffers. Slow (a few dozen reads a name), so only
//! for a line that is printed.

use crate::sys::RawFile as File;
use core::fmt::Write;

/// Writes `address` as `function+0xoff (file)`, or `0x… (file+0xoff)` without a symbol, or the
/// bare address outside every object (a JIT's code, a stale word).
pub fn write_place(out: &mut impl Write, address: usize) -> core::fmt::Result {
    let Some(object) = crate::scope::object_of(address) else {
        return write!(out, "{address:#x}");
    };
    let short = match object.file() {
        b"" => crate::log::program(),
        file => core::str::from_utf8(file).unwrap_or("?"),
    };
    let mut name = [0u8; 256];
    let at = address.wrapping_sub(object.bias) as u64;
    // An object with no file (the vDSO, named without a '/') is read where it is mapped,
    // headers and all; any other's mapping lacks its section headers.
    let source = match object.open_file() {
        Some(file) => Some(Source::File(file)),
        None if !object.path().is_empty() && !object.path().contains(&b'/') => {
            Some(Source::Memory(object.start))
        }
        None => None,
    };
    match source.and_then(|source| function_at(&source, at, &mut name)) {
        Some((len, offset)) => {
            let name = core::str::from_utf8(&name[..len]).unwrap_or("?");
            write_demangled(out, name)?;
            write!(out, "+{offset:#x} ({short})")
        }
        None => write!(out, "{address:#x} ({short}+{:#x})", address - object.start),
    }
}

/// Where an object's ELF image is read from: its file, or this process's memory at its
/// mapping's start.
enum Source {
    File(File),
    Memory(usize),
}

impl Source {
    /// Fills `buf` from `offset`; false when the image is shorter (or not mapped there).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> bool {
        match self {
            Source::File(file) => file.read_at(buf, offset),
            Source::Memory(start) => {
                super::backtrace::read_memory(start + offset as usize, buf) == buf.len()
            }
        }
    }
}

fn u16_at(b: &[u8], o: usize) -> u64 {
    u16::from_le_bytes([b[o], b[o + 1]]) as u64
}
fn u32_at(b: &[u8], o: usize) -> u64 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or([0; 4])) as u64
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]))
}

const SHT_SYMTAB: u64 = 2;
const SHT_DYNSYM: u64 = 11;

/// The function of the 64-bit ELF image in `file` whose range holds `at` (a link-time
/// address): its name's length in `name`, and `at`'s offset in it.
fn function_at(file: &Source, at: u64, name: &mut [u8; 256]) -> Option<(usize, u64)> {
    let mut header = [0u8; 64];
    if !file.read_at(&mut header, 0) || &header[..5] != b"\x7fELF\x02" {
        return None;
    }
    let (shoff, shentsize, shnum) = (
        u64_at(&header, 0x28),
        u16_at(&header, 0x3a),
        u16_at(&header, 0x3c),
    );
    if shentsize < 64 {
        return None;
    }
    let section = |i: u64| {
        let mut sh = [0u8; 64];
        file.read_at(&mut sh, shoff + i * shentsize).then(|| {
            (
                u32_at(&sh, 4),
                u64_at(&sh, 0x18),
                u64_at(&sh, 0x20),
                u32_at(&sh, 0x28),
            )
        })
    };
    let mut symbols = None;
    for i in 0..shnum {
        let Some((kind, offset, size, link)) = section(i) else {
            break;
        };
        if kind == SHT_SYMTAB {
            symbols = Some((offset, size, link));
            break;
        }
        if kind == SHT_DYNSYM {
            symbols = Some((offset, size, link));
        }
    }
    let (offset, size, link) = symbols?;
    let (_, strings, strings_size, _) = section(link)?;
    let mut chunk = [0u8; 24 * 256];
    let mut read = 0;
    while read < size {
        let len = (size - read).min(chunk.len() as u64) as usize / 24 * 24;
        if len == 0 || !file.read_at(&mut chunk[..len], offset + read) {
            return None;
        }
        read += len as u64;
        for sym in chunk[..len].chunks_exact(24) {
            let kind = sym[4] & 0xf;
            let (value, size) = (u64_at(sym, 8), u64_at(sym, 16));
            // STT_FUNC, or STT_GNU_IFUNC (libc's string functions' resolvers).
            if !(kind == 2 || kind == 10)
                || value == 0
                || !(value..value + size.max(1)).contains(&at)
            {
                continue;
            }
            let name_at = u32_at(sym, 0);
            if name_at >= strings_size {
                return None;
            }
            let want = (name.len() as u64).min(strings_size - name_at) as usize;
            if !file.read_at(&mut name[..want], strings + name_at) {
                return None;
            }
            let len = name[..want].iter().position(|&b| b == 0).unwrap_or(want);
            return Some((len, at - value));
        }
    }
    None
}

/// A Rust symbol in the legacy mangling (`_ZN` length-prefixed parts `17h<hash>E`) as its path
/// (`a::b::c`, the hash left out); any other name as it is.
fn write_demangled(out: &mut impl Write, name: &str) -> core::fmt::Result {
    let Some(mut rest) = name.strip_prefix("_ZN").and_then(|n| n.strip_suffix('E')) else {
        return out.write_str(name);
    };
    let mut parts = [""; 16];
    let mut count = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let len: usize = match rest[..digits].parse() {
            Ok(len) if digits > 0 && rest.len() >= digits + len && count < parts.len() => len,
            _ => return out.write_str(name),
        };
        parts[count] = &rest[digits..digits + len];
        count += 1;
        rest = &rest[digits + len..];
    }
    let is_hash = |p: &str| p.len() == 17 && p.starts_with('h');
    if count > 1 && is_hash(parts[count - 1]) {
        count -= 1;
    }
    for (i, part) in parts[..count].iter().enumerate() {
        if i > 0 {
            out.write_str("::")?;
        }
        out.write_str(part)?;
    }
    Ok(())
}
