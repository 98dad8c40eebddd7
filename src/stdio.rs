//! stdio reads on pipes and sockets (`popen`'s FILE, a piped `stdin`, `fdopen` of a socket).
//!
//! A FILE refills its buffer with glibc's internal `read`, which no hook sees, so a green
//! thread reading an empty FILE would block its whole OS thread. Before each refill, the green
//! thread waits (parked) until the descriptor is readable, and the refill then finds data (or
//! the end) without blocking: single-character reads wait before the real function; `fread`
//! is made of real reads of what has arrived; `fgets` and `getdelim`, whose one call may need
//! many refills (a line arriving in pieces), are glibc's own loops (libio/iogetline.c,
//! libio/iogetdelim.c) written again over that green refill, on glibc's buffer.
//!
//! The wait ends as the read would: a signal without SA_RESTART (EINTR) or a socket timeout
//! (EAGAIN) fails the refill with the stream's error flag set, as glibc sets it when its read
//! fails, and the function answers as glibc's does then.

use crate::fd::io::GreenFd;
use crate::fd::wait::{Direction, NotReady};
use crate::outcome::Outcome::{self, Bypass, Done, Errno};
use libc::{FILE, c_int, c_void, size_t};

/// The head of glibc's `struct _IO_FILE` (libio/bits/types/struct_FILE.h), a stable ABI.
#[repr(C)]
struct FileHead {
    flags: c_int,
    read_ptr: *mut u8,
    read_end: *mut u8,
    read_base: *mut u8,
    write_base: *mut u8,
    write_ptr: *mut u8,
    write_end: *mut u8,
    buf_base: *mut u8,
    buf_end: *mut u8,
    save_base: *mut u8,
    backup_base: *mut u8,
    save_end: *mut u8,
    markers: *mut c_void,
    chain: *mut c_void,
    fileno: c_int,
}

// `_flags` bits (libio/libio.h).
const UNBUFFERED: c_int = 0x2;
const NO_READS: c_int = 0x4;
const EOF_SEEN: c_int = 0x10;
const ERR_SEEN: c_int = 0x20;
const IN_BACKUP: c_int = 0x100;
const LINE_BUF: c_int = 0x200;
const NO_WRITES: c_int = 0x8;
const LINKED: c_int = 0x80;

unsafe extern "C" {
    static stdout: *mut FILE;
    /// glibc's refill: the next byte, not consumed, or EOF (`__uflow`, which consumes it, is
    /// one of our hooks: the real one is in the table).
    fn __underflow(stream: *mut FILE) -> c_int;
    fn flockfile(stream: *mut FILE);
    fn funlockfile(stream: *mut FILE);
    fn fwide(stream: *mut FILE, mode: c_int) -> c_int;
}

/// What glibc's refill of a line-buffered or unbuffered stream does first: flush `stdout` when
/// it is line-buffered (a prompt before its answer is read) — before the wait, or the answer
/// never comes.
fn flush_line_buffered_stdout() {
    // SAFETY: glibc's stdout, an open FILE for the life of the process.
    unsafe {
        let out = stdout;
        if out.is_null() {
            return;
        }
        let flags = (&raw const (*out.cast::<FileHead>()).flags).read_volatile();
        if flags & (LINKED | NO_WRITES | LINE_BUF) == LINKED | LINE_BUF {
            libc::fflush(out);
        }
    }
}

/// A stream whose reads may wait green: its descriptor is a pipe or socket of a patched
/// subsystem that the program left blocking, and other green threads could run meanwhile.
struct GreenStream {
    file: *mut FileHead,
    fd: GreenFd,
}

/// Can the real function read from `stream`'s buffer alone: does it hold `delim` (None:
/// anything) or `enough` bytes? The cheap test every hooked read makes first, so that
/// buffered reads (most of them) cost little more than natively.
///
/// # Safety
/// `stream` is an open FILE.
unsafe fn buffered_through(stream: *mut FILE, delim: Option<u8>, enough: usize) -> bool {
    let file = stream.cast::<FileHead>();
    // SAFETY: an open FILE (caller) begins with this head; a hint, read once.
    let (ptr, end) = unsafe { ((*file).read_ptr, (*file).read_end) };
    let len = (end as usize).saturating_sub(ptr as usize);
    match delim {
        _ if len == 0 => false,
        _ if len >= enough => true,
        None => false,
        // SAFETY: `len` buffered bytes at `ptr`.
        Some(delim) => unsafe { core::slice::from_raw_parts(ptr, len) }.contains(&delim),
    }
}

impl GreenStream {
    /// # Safety
    /// `stream` is an open FILE.
    unsafe fn of(stream: *mut FILE) -> Option<GreenStream> {
        let file = stream.cast::<FileHead>();
        // SAFETY: an open FILE (caller) begins with this head.
        let fileno = unsafe { (*file).fileno };
        let fd = GreenFd::get(fileno)?;
        (!fd.program_nonblocking()).then_some(GreenStream { file, fd })
    }

    fn flags(&self) -> c_int {
        // SAFETY: `file` is the caller's open FILE (see `of`); another OS thread may write the
        // word, so it is read once, as a hint checked again by glibc under its lock.
        unsafe { (&raw const (*self.file).flags).read_volatile() }
    }

    /// Bytes in the read buffer.
    fn buffered(&self) -> usize {
        // SAFETY: as in `flags`.
        let (ptr, end) = unsafe { ((*self.file).read_ptr, (*self.file).read_end) };
        (end as usize).saturating_sub(ptr as usize)
    }

    /// Output waiting in the buffer (a read on a read-write stream flushes it first).
    fn output_pending(&self) -> bool {
        // SAFETY: as in `flags`.
        unsafe { (*self.file).write_ptr > (*self.file).write_base }
    }

    /// Waits green until a refill will not block, unless glibc will not read the descriptor
    /// now (data buffered, end or error already seen, a pushback area). Output still in the
    /// buffer of a read-write stream is flushed first, as glibc flushes it before reading (the
    /// answer to it may be what the read waits for).
    /// Err(errno): the wait ended as the read would have failed; the error flag is set.
    fn wait_if_empty(&mut self, stream: *mut FILE) -> Result<(), c_int> {
        let flags = self.flags();
        if flags & (NO_READS | EOF_SEEN | IN_BACKUP) != 0 || self.buffered() > 0 {
            return Ok(());
        }
        if self.output_pending() {
            // SAFETY: the caller's open stream (see `of`).
            unsafe { libc::fflush(stream) };
        }
        if flags & (LINE_BUF | UNBUFFERED) != 0 {
            flush_line_buffered_stdout();
        }
        while !crate::os::ready_now(self.fd.fd, libc::POLLIN) {
            match self.fd.wait(Direction::Read) {
                Ok(()) => {}
                Err(NotReady::Unwatchable | NotReady::Elsewhere) => return Ok(()),
                Err(not_ready) => {
                    // SAFETY: as in `flags`; glibc sets this bit when its read fails.
                    unsafe { (*self.file).flags |= ERR_SEEN };
                    return Err(not_ready.errno());
                }
            }
        }
        Ok(())
    }

    /// Bytes a read can take now without blocking: the buffer's, else the descriptor's.
    fn available(&self) -> usize {
        let buffered = self.buffered();
        if buffered > 0 {
            return buffered;
        }
        let mut pending: c_int = 0;
        // SAFETY: FIONREAD writes one int (the real ioctl).
        let rc = unsafe {
            (crate::real::variadic().ioctl)(self.fd.fd, libc::FIONREAD, &raw mut pending)
        };
        if rc == 0 { pending.max(0) as usize } else { 0 }
    }
}

/// Before a read function (fgets, getc, getline…) on `stream`: Bypass to run it (after a green
/// wait when its buffer was empty), or the errno it fails with.
///
/// # Safety
/// `stream` is an open FILE.
pub unsafe fn before_read<T>(stream: *mut FILE) -> Outcome<T> {
    // SAFETY: per our contract.
    if unsafe { buffered_through(stream, None, 1) } {
        return Bypass;
    }
    // SAFETY: per our contract.
    match unsafe { GreenStream::of(stream) }.map(|mut s| s.wait_if_empty(stream)) {
        Some(Err(code)) => Errno(code),
        _ => Bypass,
    }
}

/// `fread`: reads of what has arrived, each after a green wait, until `size * count` bytes, the
/// end or an error; the count of whole items, as glibc's (which also consumes a partial item).
///
/// # Safety
/// As `fread(3)`.
pub unsafe fn fread(
    ptr: *mut c_void,
    size: size_t,
    count: size_t,
    stream: *mut FILE,
    real: unsafe extern "C" fn(*mut c_void, size_t, size_t, *mut FILE) -> size_t,
) -> Outcome<size_t> {
    let Some(total) = size.checked_mul(count).filter(|&total| total > 0) else {
        return Bypass;
    };
    let file = stream.cast::<FileHead>();
    // SAFETY: an open FILE (caller); a hint, read once: enough buffered needs no refill.
    let buffered = unsafe { ((*file).read_end as usize).saturating_sub((*file).read_ptr as usize) };
    if buffered >= total {
        return Bypass;
    }
    // SAFETY: per our contract.
    let Some(mut green) = (unsafe { GreenStream::of(stream) }) else {
        return Bypass;
    };
    let mut done = 0;
    while done < total {
        if let Err(code) = green.wait_if_empty(stream) {
            crate::sys::set_errno(code);
            break;
        }
        let chunk = (total - done).min(green.available().max(1));
        // SAFETY: `ptr` holds `total` bytes (caller); byte reads of the caller's stream.
        let got = unsafe { real(ptr.cast::<u8>().add(done).cast(), 1, chunk, stream) };
        done += got;
        if got < chunk {
            break;
        }
    }
    Done(done / size)
}

impl GreenStream {
    /// A refill (glibc's `__uflow` or `__underflow`) after a green wait, with the stream
    /// unlocked during the wait when `locked` (other threads may use it meanwhile; glibc's
    /// buffer state is read again after).
    fn refill(&mut self, stream: *mut FILE, locked: bool, consume: bool) -> c_int {
        if locked {
            // SAFETY: the caller's open stream, locked by this thread.
            unsafe { funlockfile(stream) };
        }
        let waited = self.wait_if_empty(stream);
        if locked {
            // SAFETY: as above.
            unsafe { flockfile(stream) };
        }
        if let Err(code) = waited {
            crate::sys::set_errno(code);
            return libc::EOF;
        }
        // SAFETY: the caller's open stream; data, the end or an error is there to read.
        unsafe {
            if consume {
                (crate::real::get().__uflow)(stream)
            } else {
                __underflow(stream)
            }
        }
    }

    /// The read buffer as (start, length).
    fn buffer(&self) -> (*mut u8, usize) {
        // SAFETY: as in `flags` (the stream is locked by the caller).
        unsafe { ((*self.file).read_ptr, self.buffered()) }
    }

    /// Consumes `n` buffered bytes.
    fn consume(&mut self, n: usize) {
        // SAFETY: `n` bytes are buffered (the caller took them from `buffer`).
        unsafe { (*self.file).read_ptr = (*self.file).read_ptr.add(n) };
    }

    /// glibc's `_IO_getline` (extracting the delimiter): up to `n` bytes into `buf`, through
    /// the first `delim`. Returns the count.
    fn getline(
        &mut self,
        stream: *mut FILE,
        buf: *mut u8,
        mut n: usize,
        delim: u8,
        locked: bool,
    ) -> usize {
        let mut count = 0;
        while n != 0 {
            let (start, len) = self.buffer();
            if len == 0 {
                let c = self.refill(stream, locked, true);
                if c == libc::EOF {
                    break;
                }
                // SAFETY: `buf` has room for `n` more bytes (caller).
                unsafe { *buf.add(count) = c as u8 };
                count += 1;
                if c as u8 == delim {
                    break;
                }
                n -= 1;
                continue;
            }
            let len = len.min(n);
            // SAFETY: `len` buffered bytes at `start`.
            let window = unsafe { core::slice::from_raw_parts(start, len) };
            let (take, found) = match window.iter().position(|&b| b == delim) {
                Some(at) => (at + 1, true),
                None => (len, false),
            };
            // SAFETY: `take` <= `n` bytes fit in `buf` (caller); disjoint from glibc's buffer.
            unsafe { core::ptr::copy_nonoverlapping(start, buf.add(count), take) };
            self.consume(take);
            count += take;
            if found {
                break;
            }
            n -= take;
        }
        count
    }
}

/// `fgets` (`locked`: not `fgets_unlocked`), as glibc's `_IO_fgets` over a green refill.
///
/// # Safety
/// As `fgets(3)`.
pub unsafe fn fgets(
    buf: *mut libc::c_char,
    n: c_int,
    stream: *mut FILE,
    locked: bool,
) -> Outcome<*mut libc::c_char> {
    // SAFETY: per our contract.
    if n <= 1 || unsafe { buffered_through(stream, Some(b'\n'), n as usize - 1) } {
        return Bypass;
    }
    // SAFETY: per our contract.
    let Some(mut green) = (unsafe { GreenStream::of(stream) }) else {
        return Bypass;
    };
    // SAFETY: the caller's open stream.
    unsafe {
        if locked {
            flockfile(stream);
        }
        fwide(stream, -1);
    }
    // SAFETY: as in `flags`, under the stream's lock.
    let old_error = unsafe { (*green.file).flags } & ERR_SEEN;
    // SAFETY: as above.
    unsafe { (*green.file).flags &= !ERR_SEEN };
    let count = green.getline(stream, buf.cast(), n as usize - 1, b'\n', locked);
    let failed = green.flags() & ERR_SEEN != 0 && crate::sys::errno() != libc::EAGAIN;
    let result = if count == 0 || failed {
        core::ptr::null_mut()
    } else {
        // SAFETY: `count` < n bytes were written to `buf`, which holds n.
        unsafe { *buf.add(count) = 0 };
        buf
    };
    // SAFETY: as above.
    unsafe {
        (*green.file).flags |= old_error;
        if locked {
            funlockfile(stream);
        }
    }
    Done(result)
}

/// `getdelim`/`getline`, as glibc's `__getdelim` over a green refill.
///
/// # Safety
/// As `getdelim(3)`.
pub unsafe fn getdelim(
    line: *mut *mut libc::c_char,
    cap: *mut size_t,
    delim: c_int,
    stream: *mut FILE,
) -> Outcome<libc::ssize_t> {
    if line.is_null()
        || cap.is_null()
        // SAFETY: per our contract, stream is a valid FILE.
        || unsafe { buffered_through(stream, Some(delim as u8), usize::MAX) }
    {
        return Bypass;
    }
    // SAFETY: per our contract.
    let Some(mut green) = (unsafe { GreenStream::of(stream) }) else {
        return Bypass;
    };
    // SAFETY: the caller's open stream and valid out-pointers.
    unsafe {
        flockfile(stream);
        fwide(stream, -1);
    }
    // SAFETY: as above.
    let result = unsafe { getdelim_locked(&mut green, line, cap, delim as u8, stream) };
    // SAFETY: locked above.
    unsafe { funlockfile(stream) };
    result
}

/// # Safety
/// As `getdelim`, with `stream` locked.
unsafe fn getdelim_locked(
    green: &mut GreenStream,
    line: *mut *mut libc::c_char,
    cap: *mut size_t,
    delim: u8,
    stream: *mut FILE,
) -> Outcome<libc::ssize_t> {
    let fail = |green: &GreenStream| {
        // SAFETY: as in `flags`, under the stream's lock.
        unsafe { (*green.file).flags |= ERR_SEEN };
        Done(-1)
    };
    // SAFETY: valid out-pointers (caller).
    unsafe {
        if (*line).is_null() || *cap == 0 {
            *cap = 120;
            let fresh = libc::realloc((*line).cast(), *cap).cast::<libc::c_char>();
            if fresh.is_null() {
                return fail(green);
            }
            *line = fresh;
        }
    }
    let mut len = green.buffered();
    if len == 0 {
        if green.refill(stream, true, false) == libc::EOF {
            return Done(-1);
        }
        len = green.buffered();
    }
    let mut count = 0usize;
    loop {
        let (start, _) = green.buffer();
        // SAFETY: `len` buffered bytes at `start`.
        let window = unsafe { core::slice::from_raw_parts(start, len) };
        let found = window.iter().position(|&b| b == delim);
        if let Some(at) = found {
            len = at + 1;
        }
        let mut needed = count + len + 1;
        // SAFETY: valid out-pointers (caller); the line grows as glibc grows it.
        unsafe {
            if needed > *cap {
                if needed < 2 * *cap {
                    needed = 2 * *cap;
                }
                let grown = libc::realloc((*line).cast(), needed).cast::<libc::c_char>();
                if grown.is_null() {
                    return fail(green);
                }
                *line = grown;
                *cap = needed;
            }
            core::ptr::copy_nonoverlapping(start, (*line).cast::<u8>().add(count), len);
        }
        green.consume(len);
        count += len;
        if found.is_some() || green.refill(stream, true, false) == libc::EOF {
            break;
        }
        len = green.buffered();
    }
    // SAFETY: room for the NUL was made above.
    unsafe { *(*line).add(count) = 0 };
    if count > libc::ssize_t::MAX as usize {
        return Errno(libc::EOVERFLOW);
    }
    Done(count as libc::ssize_t)
}
