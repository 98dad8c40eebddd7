//! The fd table: what greenworld knows of each file descriptor — what kind of file it is (a
//! socket, a pipe, a regular file or block device, or something that stays plain libc), the
//! O_NONBLOCK and socket timeouts the *program* set (cached, re-read after any call that may
//! change them), and its readiness as the hub's edge-triggered epoll last reported it (Go's
//! netpoll design).
//!
//! The open file description is never changed for good (trap 9): green I/O is non-blocking
//! per call (`MSG_DONTWAIT`, `RWF_NOWAIT`), so stdio through `fdopen`, glibc's internal calls
//! and inherited copies in children keep seeing the blocking file the program made.

pub mod io;
pub mod own;
pub mod wait;

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, Ordering};
use libc::c_int;

/// What a descriptor is, as far as green I/O cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Not looked at since it was (re)opened.
    Unknown = 0,
    /// A terminal, character device, directory…: always plain libc.
    Plain = 1,
    StreamSocket = 2,
    DatagramSocket = 3,
    /// A pipe or FIFO.
    Pipe = 4,
    /// A regular file or block device: never "not ready" to epoll, but a call may wait for the
    /// disk; plain libc, or the thread pool with `GREENWORLD_FILEIO=pool`.
    File = 5,
}

impl Kind {
    fn from_u8(v: u8) -> Kind {
        match v {
            1 => Kind::Plain,
            2 => Kind::StreamSocket,
            3 => Kind::DatagramSocket,
            4 => Kind::Pipe,
            5 => Kind::File,
            _ => Kind::Unknown,
        }
    }

    pub fn is_socket(self) -> bool {
        matches!(self, Kind::StreamSocket | Kind::DatagramSocket)
    }
}

/// One descriptor's state. Entries are never freed (their addresses are parking-lot keys).
pub struct Entry {
    kind: AtomicU8,
    /// Bumped when the descriptor is closed or replaced: waiters and epoll events of an older
    /// generation are stale.
    generation: AtomicU32,
    /// The hub whose epoll watches this descriptor (edge-triggered), or null.
    pub(crate) registered: AtomicPtr<crate::hub::Hub>,
    /// An edge arrived while no one waited: the next waiter retries instead of parking.
    pub(crate) read_ready: AtomicBool,
    pub(crate) write_ready: AtomicBool,
    /// Flags the program set, valid while `flags_epoch` equals the global epoch.
    flags_epoch: AtomicU64,
    nonblocking: AtomicBool,
    recv_timeout_ns: AtomicU64,
    send_timeout_ns: AtomicU64,
    /// An error a blocking write met after moving some bytes: the kernel reports it on the
    /// next call, so we do too.
    pub(crate) pending_error: core::sync::atomic::AtomicI32,
}

impl Entry {
    const fn new() -> Entry {
        Entry {
            kind: AtomicU8::new(Kind::Unknown as u8),
            generation: AtomicU32::new(0),
            registered: AtomicPtr::new(core::ptr::null_mut()),
            read_ready: AtomicBool::new(false),
            write_ready: AtomicBool::new(false),
            flags_epoch: AtomicU64::new(0),
            nonblocking: AtomicBool::new(false),
            recv_timeout_ns: AtomicU64::new(0),
            send_timeout_ns: AtomicU64::new(0),
            pending_error: core::sync::atomic::AtomicI32::new(0),
        }
    }

    pub fn generation(&self) -> u32 {
        self.generation.load(Ordering::Acquire)
    }

    /// The kind of `fd`, finding out (one `fstat`) the first time.
    pub fn kind(&self, fd: c_int) -> Kind {
        match Kind::from_u8(self.kind.load(Ordering::Relaxed)) {
            Kind::Unknown => {
                let kind = classify(fd);
                self.kind.store(kind as u8, Ordering::Relaxed);
                kind
            }
            kind => kind,
        }
    }

    /// Records a kind we know without asking (the descriptor was just made by a hooked call).
    pub fn set_kind(&self, kind: Kind) {
        self.kind.store(kind as u8, Ordering::Relaxed);
    }

    /// The program's O_NONBLOCK and socket timeouts (0 = none), re-read after a change.
    pub fn program_flags(&self, fd: c_int) -> (bool, u64, u64) {
        let epoch = FLAGS_EPOCH.load(Ordering::Acquire);
        if self.flags_epoch.load(Ordering::Acquire) != epoch {
            // SAFETY: F_GETFL takes no third argument; a bad fd just fails.
            let fl = unsafe { (crate::real::variadic().fcntl)(fd, libc::F_GETFL) };
            self.nonblocking
                .store(fl >= 0 && fl & libc::O_NONBLOCK != 0, Ordering::Relaxed);
            self.recv_timeout_ns
                .store(socket_timeout(fd, libc::SO_RCVTIMEO), Ordering::Relaxed);
            self.send_timeout_ns
                .store(socket_timeout(fd, libc::SO_SNDTIMEO), Ordering::Relaxed);
            self.flags_epoch.store(epoch, Ordering::Release);
        }
        (
            self.nonblocking.load(Ordering::Relaxed),
            self.recv_timeout_ns.load(Ordering::Relaxed),
            self.send_timeout_ns.load(Ordering::Relaxed),
        )
    }
}

/// Bumped by every call that may change a descriptor's O_NONBLOCK or socket timeouts (they
/// belong to the open file description, which `dup`'d descriptors share): cached flags are
/// then re-read on next use. Starts at 1 so fresh entries read theirs.
static FLAGS_EPOCH: AtomicU64 = AtomicU64::new(1);

pub fn flags_changed() {
    FLAGS_EPOCH.fetch_add(1, Ordering::AcqRel);
}

fn socket_timeout(fd: c_int, option: c_int) -> u64 {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: tv and len are valid for getsockopt to write; a non-socket just fails.
    let rc =
        unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, option, (&raw mut tv).cast(), &mut len) };
    if rc != 0 {
        return 0;
    }
    (tv.tv_sec.max(0) as u64) * 1_000_000_000 + (tv.tv_usec.max(0) as u64) * 1_000
}

fn classify(fd: c_int) -> Kind {
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: st is valid for fstat to write.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Kind::Unknown;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => Kind::Pipe,
        libc::S_IFREG | libc::S_IFBLK => Kind::File,
        libc::S_IFSOCK => {
            let mut ty: c_int = 0;
            let mut len = size_of::<c_int>() as libc::socklen_t;
            // SAFETY: ty and len are valid for getsockopt to write.
            let rc = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_TYPE,
                    (&raw mut ty).cast(),
                    &mut len,
                )
            };
            match (rc, ty) {
                (0, libc::SOCK_STREAM) => Kind::StreamSocket,
                (0, _) => Kind::DatagramSocket,
                _ => Kind::Plain,
            }
        }
        _ => Kind::Plain,
    }
}

const CHUNK: usize = 1024;
const CHUNKS: usize = 1024;
/// Descriptors above this stay plain libc (the table covers the first million).
pub const MAX_FDS: usize = CHUNK * CHUNKS;

static CHUNK_TABLE: [AtomicPtr<Entry>; CHUNKS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; CHUNKS];

/// The entry of `fd`, made on first use; None for a negative or out-of-range descriptor (or
/// when no memory can be had: the descriptor then stays plain libc).
#[inline]
pub fn entry(fd: c_int) -> Option<&'static Entry> {
    let fd = usize::try_from(fd).ok().filter(|&fd| fd < MAX_FDS)?;
    let slot = &CHUNK_TABLE[fd / CHUNK];
    let mut chunk = slot.load(Ordering::Acquire);
    if chunk.is_null() {
        chunk = new_chunk(slot)?;
    }
    // SAFETY: a published chunk holds CHUNK initialised entries and is never freed.
    Some(unsafe { &*chunk.add(fd % CHUNK) })
}

/// Maps a chunk of entries (with mmap, not malloc: I/O hooks may run anywhere).
#[cold]
fn new_chunk(slot: &AtomicPtr<Entry>) -> Option<*mut Entry> {
    let bytes = CHUNK * size_of::<Entry>();
    // SAFETY: a fresh anonymous mapping.
    let mem = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if mem == libc::MAP_FAILED {
        return None;
    }
    let chunk = mem.cast::<Entry>();
    for i in 0..CHUNK {
        // SAFETY: inside the new mapping, properly aligned (page-aligned base, array stride).
        unsafe { chunk.add(i).write(Entry::new()) };
    }
    match slot.compare_exchange(
        core::ptr::null_mut(),
        chunk,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => Some(chunk),
        Err(theirs) => {
            // SAFETY: our mapping lost the race and was never published.
            unsafe { libc::munmap(mem, bytes) };
            Some(theirs)
        }
    }
}

/// `fd` is being closed or replaced: forget what we knew, stop watching it, and wake whoever
/// waits on it (they answer EBADF). Called before the real close.
pub fn forget(fd: c_int) {
    let Some(entry) = entry(fd) else { return };
    let blank = entry.kind.load(Ordering::Acquire) == Kind::Unknown as u8
        && entry.registered.load(Ordering::Acquire).is_null()
        && entry.flags_epoch.load(Ordering::Acquire) == 0
        && entry.pending_error.load(Ordering::Acquire) == 0;
    // A vfork child's close or dup2 is of its own descriptor table, but this table (and the
    // epoll instance) are its parent's.
    if blank || crate::os::in_vfork_child() {
        return;
    }
    // Flags are re-read on next use: a new descriptor with this number has its own.
    entry.flags_epoch.store(0, Ordering::Release);
    entry.pending_error.store(0, Ordering::Release);
    let kind = Kind::from_u8(entry.kind.swap(Kind::Unknown as u8, Ordering::AcqRel));
    let hub = entry
        .registered
        .swap(core::ptr::null_mut(), Ordering::AcqRel);
    if kind == Kind::Unknown && hub.is_null() {
        return;
    }
    entry.generation.fetch_add(1, Ordering::AcqRel);
    entry.read_ready.store(false, Ordering::Relaxed);
    entry.write_ready.store(false, Ordering::Relaxed);
    // SAFETY: hubs are never freed.
    if let Some(hub) = unsafe { hub.as_ref() } {
        hub.unwatch(fd);
    }
    wait::wake_all(entry);
}

/// In a forked child: no descriptor is registered with this process's new epoll instance.
pub fn forget_registrations() {
    for slot in &CHUNK_TABLE {
        let chunk = slot.load(Ordering::Acquire);
        if chunk.is_null() {
            continue;
        }
        for i in 0..CHUNK {
            // SAFETY: a published chunk holds CHUNK initialised entries.
            let entry = unsafe { &*chunk.add(i) };
            if !entry
                .registered
                .swap(core::ptr::null_mut(), Ordering::AcqRel)
                .is_null()
            {
                // Old registrations belong to the parent: events of theirs never reach us, and
                // the generation makes any stale key harmless.
                entry.generation.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
}

/// `hub` has a fresh epoll instance: what it watched is registered with it again on the next
/// try of each waiter, woken now (as by an edge: they retry, and park again if not ready).
pub fn rewatch(hub: &crate::hub::Hub) {
    let hub = hub as *const crate::hub::Hub as *mut crate::hub::Hub;
    for slot in &CHUNK_TABLE {
        let chunk = slot.load(Ordering::Acquire);
        if chunk.is_null() {
            continue;
        }
        for i in 0..CHUNK {
            // SAFETY: a published chunk holds CHUNK initialised entries.
            let entry = unsafe { &*chunk.add(i) };
            if entry
                .registered
                .compare_exchange(
                    hub,
                    core::ptr::null_mut(),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                wait::wake_as_ready(entry);
            }
        }
    }
}

/// Has the table an entry for `fd` at all (without making one)?
pub fn is_known(fd: c_int) -> bool {
    usize::try_from(fd)
        .ok()
        .filter(|&fd| fd < MAX_FDS)
        .is_some_and(|fd| !CHUNK_TABLE[fd / CHUNK].load(Ordering::Acquire).is_null())
}
