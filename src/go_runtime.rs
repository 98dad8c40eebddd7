//! Is the program a Go program? Go's runtime is itself an M:N scheduler whose threads (its
//! "M"s) wait for each other in raw `futex` system calls, made with the `syscall` instruction
//! and never through libc. In a Go binary linked with cgo (the `go` command itself on Debian,
//! any program built with the cgo resolver) those threads come from `pthread_create`: made
//! green, a thread's raw wait blocks the OS thread the thread it waits for needs, and the
//! program hangs at start (`go version` never printed). So for a Go executable the `thread`
//! subsystem stays unpatched and its threads stay OS threads, as natively.
//!
//! The Go linker marks every ELF executable it links with a build-id note (owner "Go", in a
//! `PT_NOTE` segment, mapped with the program headers): the note is read from memory, through
//! the auxiliary vector, with no lock, file or allocation (the configuration's first reader
//! may be a hooked call from the allocator's start-up).

/// The owner of the Go linker's notes, NUL-padded to four bytes as in the note.
const GO_OWNER: &[u8; 4] = b"Go\0\0";

/// True when the main executable carries a Go note.
pub fn main_is_go() -> bool {
    // SAFETY: getauxval reads the auxiliary vector the kernel gave the process; no side effect.
    let (phdr, phnum) = unsafe {
        (
            libc::getauxval(libc::AT_PHDR),
            libc::getauxval(libc::AT_PHNUM),
        )
    };
    if phdr == 0 || phnum == 0 {
        return false;
    }
    // SAFETY: AT_PHDR/AT_PHNUM describe the main executable's program headers, mapped for the
    // process's life (ld.so reads them the same way).
    let headers =
        unsafe { core::slice::from_raw_parts(phdr as *const libc::Elf64_Phdr, phnum as usize) };
    // ld.so's rule for the load bias: from PT_PHDR, else none (a fixed-address executable).
    let bias = headers
        .iter()
        .find(|h| h.p_type == libc::PT_PHDR)
        .map_or(0, |h| (phdr as usize).wrapping_sub(h.p_vaddr as usize));
    headers
        .iter()
        .filter(|h| h.p_type == libc::PT_NOTE)
        .any(|h| {
            let start = bias.wrapping_add(h.p_vaddr as usize);
            // SAFETY: a PT_NOTE segment lies inside a loaded segment of the executable (the linker
            // puts it there; its bytes are what readelf -n lists), readable for p_memsz bytes.
            let bytes =
                unsafe { core::slice::from_raw_parts(start as *const u8, h.p_memsz as usize) };
            has_go_note(bytes)
        })
}

/// Walks one note segment: entries of namesz, descsz, type (u32 each), then the name and the
/// descriptor, each padded to four bytes.
fn has_go_note(mut notes: &[u8]) -> bool {
    let word = |b: &[u8], i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let pad = |n: usize| n.div_ceil(4) * 4;
    while notes.len() >= 12 {
        let namesz = word(notes, 0) as usize;
        let descsz = word(notes, 4) as usize;
        let name_end = 12 + pad(namesz);
        if name_end > notes.len() {
            return false;
        }
        if namesz == GO_OWNER.len() && notes[12..16] == *GO_OWNER {
            return true;
        }
        let next = name_end.saturating_add(pad(descsz));
        if next > notes.len() {
            return false;
        }
        notes = &notes[next..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(name.len() as u32).to_ne_bytes());
        v.extend_from_slice(&(desc.len() as u32).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(name);
        v.resize(v.len().div_ceil(4) * 4, 0);
        v.extend_from_slice(desc);
        v.resize(v.len().div_ceil(4) * 4, 0);
        v
    }

    #[test]
    fn finds_the_go_note_among_others() {
        let gnu = note(b"GNU\0", 3, &[7; 20]);
        let go = note(b"Go\0\0", 4, b"abcdefg/hij");
        assert!(!has_go_note(&gnu));
        assert!(has_go_note(&go));
        assert!(has_go_note(&[gnu.clone(), go].concat()));
        assert!(!has_go_note(&note(b"Gold\0", 1, b"x")));
        assert!(!has_go_note(&gnu[..gnu.len() - 4]));
        assert!(!has_go_note(&[]));
    }

    #[test]
    fn this_test_binary_is_not_go() {
        assert!(!main_is_go());
    }
}
