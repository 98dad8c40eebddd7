//! Is the program a Rust program? Rust's std takes the *address* of a thread-local as the
//! current thread's identity where it must tell threads apart cheaply: its channels
//! (`std::sync::mpsc`, `mpmc::waker::current_thread_id`) skip, when they wake a receiver, every
//! waiter registered under the sender's own identity (a thread cannot wait on a channel while
//! it sends on it). Private thread-locals (trap 17) give each green thread its own *contents*
//! at the OS thread's addresses, so every green thread of a hub has the same identity there:
//! a send from one skips the receiver parked in another, whose wake-up is lost, and the
//! program hangs (rustc's codegen coordinator and its main thread, on `fn main(){}`; any
//! `recv` that waits for a thread of its own hub). So for a Rust executable the `thread`
//! subsystem stays unpatched and its threads stay OS threads, as natively, and as for Go
//! (`go_runtime`); in another program, a thread a Rust library creates stays an OS thread
//! (`thread::raw_waiters`: polars' or tokenizers' pools, a library's `mpsc` workers).
//!
//! rustc names itself in the `.comment` section of every object it compiles ("rustc version
//! 1.95.0 …"), which the linker merges into the executable's; the section is not loaded, so
//! it is read from `/proc/self/exe` with raw `openat`/`pread` into stack buffers: no lock, no
//! allocation, no hook of ours (the configuration's first reader may be a hooked call from the
//! allocator's start-up).

use crate::sys::RawFile as File;

/// What rustc writes at the start of its `.comment` string.
const RUSTC: &[u8] = b"rustc version ";
/// The most of a `.comment` section looked at (a few hundred bytes in practice).
const MOST: u64 = 64 * 1024;

/// True when the main executable was (at least in part) compiled by rustc.
pub fn main_is_rust() -> bool {
    File::open(b"/proc/self/exe\0").is_some_and(|file| names_rustc(&file))
}

/// True when the loaded `object` was (at least in part) compiled by rustc: a Rust library's
/// threads stay OS threads (`thread::raw_waiters`), for the reason above.
pub fn object_is_rust(object: &crate::scope::Object) -> bool {
    object.open_file().is_some_and(|file| names_rustc(&file))
}

/// Does the 64-bit ELF file's `.comment` section name rustc?
fn names_rustc(file: &File) -> bool {
    let mut header = [0u8; 64];
    if !file.read_at(&mut header, 0) || &header[..5] != b"\x7fELF\x02" {
        return false;
    }
    let word = |b: &[u8], o: usize, n: usize| {
        let mut bytes = [0u8; 8];
        bytes[..n].copy_from_slice(&b[o..o + n]);
        u64::from_le_bytes(bytes)
    };
    let (shoff, shentsize, shnum, shstrndx) = (
        word(&header, 0x28, 8),
        word(&header, 0x3a, 2),
        word(&header, 0x3c, 2),
        word(&header, 0x3e, 2),
    );
    if !(64..=1024).contains(&shentsize) || shstrndx >= shnum {
        return false;
    }
    // A section header's name offset, file offset and size.
    let fields = |sh: &[u8]| (word(sh, 0, 4), word(sh, 0x18, 8), word(sh, 0x20, 8));
    let mut sh = [0u8; 64];
    if !file.read_at(&mut sh, shoff + shstrndx * shentsize) {
        return false;
    }
    // The section names, read whole when they fit (a few hundred bytes: one pread, not one a
    // section). The buffers stay small: this runs on the stack of the thread that calls
    // `pthread_create`, which may be the 16 KiB minimum.
    let (_, names_at, names_size) = fields(&sh);
    let mut names = [0u8; 512];
    let names = &mut names[..names_size.min(512) as usize];
    if !file.read_at(names, names_at) {
        return false;
    }
    let is_comment = |name: u64| match names.get(name as usize..name as usize + 9) {
        Some(held) => held == b".comment\0",
        None => {
            let mut far = [0u8; 9];
            name + 9 <= names_size
                && file.read_at(&mut far, names_at + name)
                && &far == b".comment\0"
        }
    };
    let mut headers = [0u8; 8 * 64];
    let per_read = headers.len() as u64 / shentsize;
    let mut first = 0;
    while first < shnum {
        let count = (shnum - first).min(per_read);
        let bytes = &mut headers[..(count * shentsize) as usize];
        if !file.read_at(bytes, shoff + first * shentsize) {
            return false;
        }
        for sh in bytes.chunks_exact(shentsize as usize) {
            let (name, offset, size) = fields(sh);
            if is_comment(name) {
                return holds(file, offset, size.min(MOST), RUSTC);
            }
        }
        first += count;
    }
    false
}

/// Do the `size` bytes of `file` at `offset` hold `needle`? Read in pieces that overlap by
/// the needle's length, so a match across two pieces is seen.
fn holds(file: &File, offset: u64, size: u64, needle: &[u8]) -> bool {
    let mut piece = [0u8; 512];
    let step = (piece.len() - needle.len()) as u64;
    let mut at = 0;
    while at < size {
        let len = (size - at).min(piece.len() as u64) as usize;
        if !file.read_at(&mut piece[..len], offset + at) {
            return false;
        }
        if piece[..len].windows(needle.len()).any(|w| w == needle) {
            return true;
        }
        at += step;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_binary_is_rust() {
        assert!(main_is_rust());
    }

    #[test]
    fn objects_by_their_code() {
        assert!(crate::scope::finder_ready());
        let object = |address| crate::scope::object_of(address).expect("a loaded object");
        // This test binary (the main program, read as /proc/self/exe), and libc.
        assert!(object_is_rust(&object(objects_by_their_code as usize)));
        assert!(!object_is_rust(&object(libc::getpid as usize)));
    }

    #[test]
    fn a_c_program_is_not() {
        // A C executable (the build's C compiler driver, or the shell): no rustc in .comment.
        let file = File::open(b"/bin/sh\0").expect("/bin/sh");
        assert!(!names_rustc(&file));
    }

    #[test]
    fn a_needle_across_two_pieces_is_found() {
        let mut bytes = vec![b'x'; 3000];
        // Across the end of the first 512-byte piece.
        bytes[505..505 + RUSTC.len()].copy_from_slice(RUSTC);
        let (file, path) = temp_file("needle", &bytes);
        assert!(holds(&file, 0, 3000, RUSTC));
        assert!(!holds(&file, 520, 2480, RUSTC));
        drop(file);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_comment_named_beyond_the_names_read_whole_is_found() {
        // A minimal 64-bit ELF: a null section, the section names (longer than the 512 bytes
        // read whole, `.comment`'s name past them, as in librustc_driver's 516), `.comment`.
        let mut names = vec![0u8; 600];
        names.extend_from_slice(b".shstrtab\0.comment\0");
        let comment = b"GCC: (Debian) 12\0rustc version 1.95.0\0";
        let (names_at, comment_at, headers_at) = (64u64, 64 + names.len() as u64, 1024u64);
        let mut elf = vec![0u8; headers_at as usize + 3 * 64];
        elf[..5].copy_from_slice(b"\x7fELF\x02");
        elf[0x28..0x30].copy_from_slice(&headers_at.to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        elf[64..64 + names.len()].copy_from_slice(&names);
        elf[comment_at as usize..comment_at as usize + comment.len()].copy_from_slice(comment);
        let mut section = |index: usize, name: u32, at: u64, size: u64| {
            let sh = &mut elf[headers_at as usize + index * 64..][..64];
            sh[..4].copy_from_slice(&name.to_le_bytes());
            sh[0x18..0x20].copy_from_slice(&at.to_le_bytes());
            sh[0x20..0x28].copy_from_slice(&size.to_le_bytes());
        };
        section(1, 600, names_at, names.len() as u64);
        section(2, 610, comment_at, comment.len() as u64);
        let (file, path) = temp_file("elf", &elf);
        assert!(names_rustc(&file));
        drop(file);
        // The same without rustc's line.
        let mut c_only = elf.clone();
        c_only[comment_at as usize + 17..][..5].copy_from_slice(b"clang");
        let (other, other_path) = temp_file("elf-c", &c_only);
        assert!(!names_rustc(&other));
        drop(other);
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_file(&other_path).unwrap();
    }

    fn temp_file(what: &str, bytes: &[u8]) -> (File, std::path::PathBuf) {
        let name = format!("gw-rust-std-{what}-{}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, bytes).unwrap();
        let mut c_path = path.as_os_str().as_encoded_bytes().to_vec();
        c_path.push(0);
        (File::open(&c_path).unwrap(), path)
    }
}
