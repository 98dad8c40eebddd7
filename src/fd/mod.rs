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
pub use io::Known;
pub mod socket;
pub mod wait;

use core::sync::atomic::{
    AtomicBool, AtomicI64, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, Ordering,
};
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
///
/// What is cached of a descriptor (its kind, the program's flags) is stamped with the value of
/// [`STAMP`] read *before* the kernel was asked, and is believed only while that stamp is not
/// older than the descriptor's birth (`born`: every hooked call that closes, replaces or makes
/// the number takes a fresh stamp) nor, for flags, than the last flag change anywhere. Value and
/// stamp share one word, published with `fetch_max`: a slow reader that asked the kernel before a
/// close, a reuse or an `ioctl(FIONBIO)` can only publish an older stamp, never a stale value
/// under a current one.
///
/// On two whole cache lines (120 bytes would straddle three in two entries of three): a hooked
/// read or write and its edge touch nearly every field.
#[repr(align(64))]
pub struct Entry {
    /// `stamp << KIND_BITS | Kind`.
    kind: AtomicU64,
    /// The stamp of the descriptor now behind this number.
    born: AtomicU64,
    /// Bumped when the descriptor is closed or replaced: waiters and epoll events of an older
    /// generation are stale.
    generation: AtomicU32,
    /// The hub whose epoll watches this descriptor (edge-triggered), or null.
    pub(crate) registered: AtomicPtr<crate::hub::Hub>,
    /// An edge arrived while no one waited: the next waiter retries instead of parking.
    pub(crate) read_ready: AtomicBool,
    pub(crate) write_ready: AtomicBool,
    /// Wake-ups of each direction so far (edges and in-process writes, `wait::ready`), counted
    /// under the waiters' bucket: a thread whose try began before one and that parks after it
    /// was not among the woken, nor is the flag left for it, so it tries again instead.
    pub(crate) read_wakes: AtomicU32,
    pub(crate) write_wakes: AtomicU32,
    /// The threads parked on each direction (keyed by the ready flag's address, under its
    /// parking-lot bucket's lock: `wait::Entry::lock_waiters`), apart from other keys' waiters.
    read_waiters: crate::park::Queue,
    write_waiters: crate::park::Queue,
    /// `stamp << FLAG_BITS | ProgramFlags` (0: never read).
    flags: AtomicU64,
    /// An error a blocking write met after moving some bytes: the kernel reports it on the
    /// next call, so we do too.
    pub(crate) pending_error: core::sync::atomic::AtomicI32,
    /// Where this descriptor's writes land when one hooked `pipe` or `socketpair` made both
    /// ends in this process: the other end's `generation << 32 | fd + 1` (0: not known). A
    /// write here wakes that end's readers at once, as its epoll edge would later.
    peer: AtomicU64,
    /// Readable edges epoll has reported for this descriptor (`wait::dispatch`).
    pub(crate) read_edges: AtomicU32,
    /// `read_edges + 1` as it was just before a read found the descriptor empty (EAGAIN, or a
    /// short read of a plain TCP socket: see `short_reads`); 0: not seen empty since it was
    /// made.
    drained_at: AtomicU32,
    /// `drained_at` was set by a short read, which proves emptiness only while `short_reads`
    /// still says so.
    drained_by_short_read: AtomicBool,
    /// How often, lately, a read that tried after a short read found nothing (0..=7: +1 when
    /// it did, -1 when data had come): see `Entry::before_read`.
    empty_after_short: AtomicU8,
    /// Reads after a short read that parked without trying, wrapping: every
    /// `SAMPLE_EVERY`-th tries anyway, to notice when data starts coming first.
    parked_after_short: AtomicU8,
    /// `stamp << SHORT_BITS | ShortReads`, of the descriptor now behind the number when the
    /// stamp is not older than `born` (as `kind`): does a read that returned fewer bytes than
    /// asked leave the socket drained, or a new epoll edge already queued?
    short_reads: AtomicU64,
    /// Bytes written by the peer's hooked writes, less those read by hooked reads here, since
    /// the descriptor was last seen empty.
    unread: AtomicI64,
    /// Held across a look and the blocking call it allows (`with_call_lock`): where the kernel
    /// has no non-blocking form of a call (a FIFO opened by name refuses `RWF_NOWAIT`), two
    /// hubs' threads must not both see room (or data) and both make the call.
    call_lock: AtomicBool,
}

const KIND_BITS: u32 = 3;
const FLAG_BITS: u32 = 4;
const SHORT_BITS: u32 = 2;

/// `Entry::empty_after_short`: its ceiling, and the count from which reads park first.
const EMPTY_MAX: u8 = 7;
const EMPTY_MOSTLY: u8 = 4;
/// One read in this many that would park first after a short read tries instead. Each such
/// try is a `recvfrom` that finds nothing while the pattern holds (an echo server under load:
/// 1/16 of a system call a request at 16); at 64 a change of pattern is noticed after about
/// 256 reads of the descriptor (four tries that find data) instead of 64.
const SAMPLE_EVERY: u8 = 64;

/// What a blocking read does first ([`Entry::before_read`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeforeRead {
    /// Try the call.
    Try,
    /// Park: the descriptor is empty, or an edge will come.
    Park,
    /// Try the call, though a short read said an edge will come; tell
    /// [`Entry::tried_after_short`] what it found.
    TryAfterShort,
}

/// What a short read of a stream socket proves (`Entry::short_reads`; 0: not known yet).
/// Ordered: where two answers of one stamp meet, `fetch_max` keeps the distrust.
const SHORT_READ_DRAINS: u64 = 1;
const SHORT_READ_PROVES_NOTHING: u64 = 2;

/// Stamps: taken fresh (`fetch_add`) by births and flag changes, read by cache fills. Starts at
/// 1 so that a fresh entry's zero words are older than anything.
static STAMP: AtomicU64 = AtomicU64::new(1);

/// The stamp of the last call that may have changed some descriptor's O_NONBLOCK or socket
/// timeouts (they belong to the open file description, which `dup`'d descriptors share).
static FLAGS_CHANGED: AtomicU64 = AtomicU64::new(0);

fn fresh_stamp() -> u64 {
    STAMP.fetch_add(1, Ordering::SeqCst) + 1
}

/// The program's O_NONBLOCK, and whether it set socket timeouts, as last read from the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramFlags(u64);

impl ProgramFlags {
    const NONBLOCKING: u64 = 1;
    const RECV_TIMEOUT: u64 = 2;
    const SEND_TIMEOUT: u64 = 4;
    /// Marks a word that holds flags at all.
    const READ: u64 = 8;

    pub fn nonblocking(self) -> bool {
        self.0 & Self::NONBLOCKING != 0
    }

    /// The socket timeout (SO_RCVTIMEO for reads, SO_SNDTIMEO for writes) in ns, 0 for none:
    /// read from the kernel when one is set (only a blocking call about to wait asks).
    pub fn timeout_ns(self, fd: c_int, dir: wait::Direction) -> u64 {
        let (bit, option) = match dir {
            wait::Direction::Read => (Self::RECV_TIMEOUT, libc::SO_RCVTIMEO),
            wait::Direction::Write => (Self::SEND_TIMEOUT, libc::SO_SNDTIMEO),
        };
        if self.0 & bit == 0 {
            return 0;
        }
        crate::sys::socket_timeout(fd, option)
    }

    /// Asks the kernel.
    fn read(fd: c_int) -> ProgramFlags {
        // SAFETY: F_GETFL takes no third argument; a bad fd just fails.
        let fl = unsafe { (crate::real::variadic().fcntl)(fd, libc::F_GETFL) };
        let mut bits = Self::READ;
        if fl >= 0 && fl & libc::O_NONBLOCK != 0 {
            // Timeouts do not matter to a call that never waits.
            bits |= Self::NONBLOCKING;
        } else {
            if crate::sys::socket_timeout(fd, libc::SO_RCVTIMEO) > 0 {
                bits |= Self::RECV_TIMEOUT;
            }
            if crate::sys::socket_timeout(fd, libc::SO_SNDTIMEO) > 0 {
                bits |= Self::SEND_TIMEOUT;
            }
        }
        ProgramFlags(bits)
    }
}

impl Entry {
    const fn new() -> Entry {
        Entry {
            kind: AtomicU64::new(Kind::Unknown as u64),
            born: AtomicU64::new(0),
            generation: AtomicU32::new(0),
            registered: AtomicPtr::new(core::ptr::null_mut()),
            read_ready: AtomicBool::new(false),
            write_ready: AtomicBool::new(false),
            read_wakes: AtomicU32::new(0),
            write_wakes: AtomicU32::new(0),
            read_waiters: crate::park::Queue::new(),
            write_waiters: crate::park::Queue::new(),
            flags: AtomicU64::new(0),
            pending_error: core::sync::atomic::AtomicI32::new(0),
            peer: AtomicU64::new(0),
            read_edges: AtomicU32::new(0),
            drained_at: AtomicU32::new(0),
            drained_by_short_read: AtomicBool::new(false),
            empty_after_short: AtomicU8::new(0),
            parked_after_short: AtomicU8::new(0),
            short_reads: AtomicU64::new(0),
            unread: AtomicI64::new(0),
            call_lock: AtomicBool::new(false),
        }
    }

    pub fn generation(&self) -> u32 {
        self.generation.load(Ordering::Acquire)
    }

    /// The cached kind, Unknown when none is cached for the descriptor now behind the number.
    #[inline]
    fn cached_kind(&self) -> Kind {
        let word = self.kind.load(Ordering::Acquire);
        if word >> KIND_BITS < self.born.load(Ordering::Acquire) {
            return Kind::Unknown;
        }
        Kind::from_u8((word & ((1 << KIND_BITS) - 1)) as u8)
    }

    /// The kind of `fd`, finding out (one `fstat`) the first time.
    pub fn kind(&self, fd: c_int) -> Kind {
        match self.cached_kind() {
            Kind::Unknown => {
                let stamp = STAMP.load(Ordering::SeqCst);
                let kind = classify(fd);
                if kind != Kind::Unknown {
                    self.kind
                        .fetch_max(stamp << KIND_BITS | kind as u64, Ordering::AcqRel);
                }
                kind
            }
            kind => kind,
        }
    }

    /// Records a kind we know without asking (the descriptor was just made by a hooked call,
    /// or the kernel just told us): it outranks anything cached before.
    pub fn set_kind(&self, kind: Kind) {
        self.kind
            .fetch_max(fresh_stamp() << KIND_BITS | kind as u64, Ordering::AcqRel);
    }

    /// The program's O_NONBLOCK and socket timeouts, re-read after any change. Inline: the
    /// cached answer is a few loads, asked before every wait.
    #[inline]
    pub fn program_flags(&self, fd: c_int) -> ProgramFlags {
        match self.cached_flags() {
            Some(flags) => flags,
            None => self.read_program_flags(fd),
        }
    }

    /// [`Entry::program_flags`] asked of the kernel.
    #[cold]
    #[inline(never)]
    fn read_program_flags(&self, fd: c_int) -> ProgramFlags {
        // The stamp before the question: a change made after it is newer than the answer.
        let stamp = STAMP.load(Ordering::SeqCst);
        let flags = ProgramFlags::read(fd);
        self.publish_flags(stamp, flags);
        flags
    }

    /// The flags cached for the descriptor now behind the number, if no change came since.
    #[inline]
    fn cached_flags(&self) -> Option<ProgramFlags> {
        let word = self.flags.load(Ordering::Acquire);
        let newest = self
            .born
            .load(Ordering::Acquire)
            .max(FLAGS_CHANGED.load(Ordering::Acquire));
        (word & ProgramFlags::READ != 0 && word >> FLAG_BITS >= newest)
            .then_some(ProgramFlags(word & ((1 << FLAG_BITS) - 1)))
    }

    /// Caches `flags`, read from the kernel after `stamp` was: unless a newer answer is there.
    fn publish_flags(&self, stamp: u64, flags: ProgramFlags) {
        self.flags
            .fetch_max(stamp << FLAG_BITS | flags.0, Ordering::AcqRel);
    }
}

/// A call may have changed some descriptor's O_NONBLOCK or socket timeouts (after it returned):
/// every cached flag is re-read on next use.
pub fn flags_changed() {
    FLAGS_CHANGED.fetch_max(fresh_stamp(), Ordering::SeqCst);
}

/// Is `fd` a TCP socket with no upper-layer protocol (`TCP_ULP` names none)?
fn plain_tcp(fd: c_int) -> bool {
    if crate::sys::socket_int(fd, libc::SO_PROTOCOL) != Some(libc::IPPROTO_TCP) {
        return false;
    }
    let mut name = [0u8; 16];
    let mut len = name.len() as libc::socklen_t;
    // SAFETY: name and len are valid for getsockopt to write.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_TCP,
            libc::TCP_ULP,
            name.as_mut_ptr().cast(),
            &mut len,
        )
    };
    rc == 0 && (len == 0 || name[0] == 0)
}

fn classify(fd: c_int) -> Kind {
    // SAFETY: all-zero is a valid stat to be overwritten.
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

/// The entry of `fd` if its chunk was made, without touching the entry (for a prefetch).
#[inline]
pub fn made(fd: c_int) -> Option<&'static Entry> {
    let fd = usize::try_from(fd).ok().filter(|&fd| fd < MAX_FDS)?;
    let chunk = CHUNK_TABLE[fd / CHUNK].load(Ordering::Acquire);
    // SAFETY: a published chunk holds CHUNK initialised entries and is never freed.
    (!chunk.is_null()).then(|| unsafe { &*chunk.add(fd % CHUNK) })
}

/// What the table already knows of `fd` without asking the kernel or making an entry: its
/// entry and the kind cached there (Unknown when none is, or there is no entry yet; Plain for
/// a number out of the table's range, which stays plain libc). The question every read and
/// write asks first (see `os::plain_first`, [`plain_now`]); the green path takes the entry on
/// from there ([`io::GreenFd::admit`]).
#[inline(always)]
pub fn cached(fd: c_int) -> (Option<&'static Entry>, Kind) {
    let Some(fd) = usize::try_from(fd).ok().filter(|&fd| fd < MAX_FDS) else {
        return (None, Kind::Plain);
    };
    let chunk = CHUNK_TABLE[fd / CHUNK].load(Ordering::Acquire);
    if chunk.is_null() {
        return (None, Kind::Unknown);
    }
    // SAFETY: a published chunk holds CHUNK initialised entries and is never freed.
    let entry = unsafe { &*chunk.add(fd % CHUNK) };
    (Some(entry), entry.cached_kind())
}

/// Does no green path take a descriptor of this (cached) kind now: a device or other plain
/// descriptor, a regular file while files do not go to the pool, a pipe while `os` is off?
/// Sockets always may (a write may have left an error for the next call: `io::write_all`).
#[inline(always)]
pub fn plain_now(kind: Kind) -> bool {
    match kind {
        Kind::Plain => true,
        Kind::File => {
            crate::config::get().fileio != crate::config::FileIo::Pool
                || !crate::patch::active(crate::patch::Subsystem::Os)
        }
        Kind::Pipe => !crate::patch::active(crate::patch::Subsystem::Os),
        Kind::StreamSocket | Kind::DatagramSocket | Kind::Unknown => false,
    }
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
    renew(fd, Kind::Unknown);
}

/// A hooked call just made descriptor `fd` (of `kind`, when known without asking): whatever
/// was known of the number belongs to another descriptor, whose close may not have been seen
/// (a raw `syscall(SYS_close)`, glibc's internal closes).
pub fn born(fd: c_int, kind: Kind) {
    renew(fd, kind);
}

fn renew(fd: c_int, kind: Kind) {
    let Some(entry) = entry(fd) else {
        crate::plain_fds::withdraw(fd);
        return;
    };
    let was = entry.cached_kind();
    let green = matches!(was, Kind::StreamSocket | Kind::DatagramSocket | Kind::Pipe);
    // A vfork child's descriptors are its own, but this table (and the epoll instance) are its
    // parent's: it may make the parent ask the kernel again (a new stamp), nothing more. The
    // check costs a getpid: made only where there is more to do.
    let more = kind != Kind::Unknown
        || green
        || !entry.registered.load(Ordering::Acquire).is_null()
        || entry.pending_error.load(Ordering::Acquire) != 0;
    if more && crate::context::in_vfork_child() {
        return;
    }
    // From here on nothing cached before counts, nor anything a racing reader asked the kernel
    // before this point.
    let stamp = fresh_stamp();
    entry.born.fetch_max(stamp, Ordering::AcqRel);
    // After the stamp: a router's byte marked from now on was marked on the new life's kind.
    crate::plain_fds::withdraw(fd);
    if !more {
        return;
    }
    if kind != Kind::Unknown {
        entry
            .kind
            .fetch_max(stamp << KIND_BITS | kind as u64, Ordering::AcqRel);
    }
    entry.pending_error.store(0, Ordering::Release);
    let hub = entry
        .registered
        .swap(core::ptr::null_mut(), Ordering::AcqRel);
    if !green && hub.is_null() {
        return;
    }
    entry.generation.fetch_add(1, Ordering::AcqRel);
    entry.read_ready.store(false, Ordering::Relaxed);
    entry.write_ready.store(false, Ordering::Relaxed);
    entry.peer.store(0, Ordering::Relaxed);
    entry.drained_at.store(0, Ordering::Release);
    entry.empty_after_short.store(0, Ordering::Relaxed);
    // SAFETY: hubs are never freed.
    if let Some(hub) = unsafe { hub.as_ref() } {
        hub.unwatch(fd);
    }
    wait::wake_all(entry);
}

/// `call` with `fd`'s call lock held (see `Entry::call_lock`): a look at the descriptor and the
/// blocking call it allows, made by one thread of the process at a time. Never held across a
/// park: `call` makes system calls only. Without an entry, `call` runs alone.
pub fn with_call_lock<R>(fd: c_int, call: impl FnOnce() -> R) -> R {
    let Some(entry) = entry(fd) else {
        return call();
    };
    let mut spins = 0u32;
    while entry
        .call_lock
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        spins += 1;
        if spins.is_multiple_of(64) {
            // The holder's OS thread may have been descheduled: give it the CPU.
            // SAFETY: sched_yield takes no arguments (raw: it may be hooked).
            unsafe { crate::sys::syscall!(libc::SYS_sched_yield) };
        } else {
            core::hint::spin_loop();
        }
    }
    let result = call();
    entry.call_lock.store(false, Ordering::Release);
    result
}

/// One hooked call made both ends of a pipe (`from` its write end `to` its read end) or of a
/// socketpair (each way: call it twice), in this process and just now: `from`'s writes wake
/// `to`'s readers at once. A link to a number since closed or reused is never followed (the
/// generation moved on), and a write that goes elsewhere — through a `dup`, from another
/// process, past the hooks — still reaches the reader by its epoll edge.
pub fn pair(from: c_int, to: c_int) {
    let (Some(entry), Some(peer)) = (entry(from), entry(to)) else {
        return;
    };
    let Ok(to) = u32::try_from(to) else { return };
    entry.peer.store(
        u64::from(peer.generation()) << 32 | u64::from(to + 1),
        Ordering::Release,
    );
}

impl Entry {
    /// The descriptor this one's writes land in, if a hooked call made both here and neither
    /// number has been closed or reused since.
    fn peer(&self) -> Option<&'static Entry> {
        let link = self.peer.load(Ordering::Acquire);
        if link == 0 {
            return None;
        }
        let peer = entry((link as u32 - 1) as c_int)?;
        (peer.generation() == (link >> 32) as u32).then_some(peer)
    }

    /// A hooked write just put `n` bytes into this descriptor (`n` > 0): its in-process peer's
    /// readers are woken now (or the next one tries before parking), not when the hub next
    /// asks epoll.
    ///
    /// Not with several hubs: the reader's hub, likely asleep in its own `epoll_pwait2`, is
    /// woken by the edge anyway, and a wake across hubs added a notification (a `write` and a
    /// `read` of its eventfd) and 1 200 instructions a round trip to `bench/pingpong`.
    pub fn wrote(&self, n: usize) {
        if crate::hub::Hub::several() {
            return;
        }
        if let Some(peer) = self.peer() {
            peer.unread.fetch_add(n as i64, Ordering::AcqRel);
            wait::wake_readers(peer);
        }
    }

    /// Is the descriptor known to hold nothing to read, so that a blocking read may wait before
    /// it tries? Only when a read found it empty, every byte since came from its in-process
    /// peer's hooked writes and has been read, and epoll has reported no edge since (which
    /// may be a write from elsewhere: a `dup`, another process, a call past the hooks).
    /// Whatever was written since by anyone still wakes the waiter: the peer's writes directly,
    /// any other by its edge, not yet reported.
    /// (A short read proves it only while the socket's short reads still do: see
    /// [`Entry::before_read`].)
    #[inline]
    fn known_empty(&self) -> bool {
        let at = self.drained_at.load(Ordering::Acquire);
        at != 0
            && at.wrapping_sub(1) == self.read_edges.load(Ordering::Acquire)
            && self.unread.load(Ordering::Acquire) == 0
    }

    /// What a blocking read does first (the program's non-blocking descriptors aside).
    ///
    /// After a short read the socket is empty or an edge is on its way, but it may hold data
    /// already: a peer that answered before this thread came back (the server was slowed or
    /// preempted, the client pipelines) — then parking costs the hub an `epoll_pwait2` that
    /// returns at once, where trying would have read at once. So a descriptor parks first
    /// only while most of its recent tries after a short read found nothing (an echo server
    /// under load: its thread is back long before the answer), and still tries one read in
    /// `SAMPLE_EVERY` to notice when that changes.
    #[inline]
    pub fn before_read(&self) -> BeforeRead {
        if !self.known_empty() {
            return BeforeRead::Try;
        }
        if !self.drained_by_short_read.load(Ordering::Acquire) {
            return BeforeRead::Park;
        }
        self.before_read_after_short()
    }

    /// [`Entry::before_read`] of a descriptor a short read found drained.
    #[inline(never)]
    fn before_read_after_short(&self) -> BeforeRead {
        if self.cached_short_reads() != Some(true) {
            return BeforeRead::Try;
        }
        if self.empty_after_short.load(Ordering::Relaxed) >= EMPTY_MOSTLY {
            let n = self
                .parked_after_short
                .load(Ordering::Relaxed)
                .wrapping_add(1);
            self.parked_after_short.store(n, Ordering::Relaxed);
            if !n.is_multiple_of(SAMPLE_EVERY) {
                return BeforeRead::Park;
            }
        }
        BeforeRead::TryAfterShort
    }

    /// A read that tried after a short read ([`BeforeRead::TryAfterShort`]) found nothing
    /// (`empty`) or data.
    #[inline(never)]
    pub fn tried_after_short(&self, empty: bool) {
        let was = self.empty_after_short.load(Ordering::Relaxed);
        let now = if empty {
            (was + 1).min(EMPTY_MAX)
        } else {
            was.saturating_sub(1)
        };
        self.empty_after_short.store(now, Ordering::Relaxed);
    }

    /// A read that began when `read_edges` was `edges` found the descriptor empty.
    #[inline]
    pub fn found_empty(&self, edges: u32) {
        self.drained_by_short_read.store(false, Ordering::Release);
        self.unread.store(0, Ordering::Release);
        self.drained_at
            .store(edges.wrapping_add(1).max(1), Ordering::Release);
    }

    /// A read of stream socket `fd` that began when `read_edges` was `edges` returned fewer
    /// bytes than it asked: drained, if its short reads prove that (then true).
    #[inline(never)]
    pub fn read_short(&self, fd: c_int, edges: u32) -> bool {
        let drains = self.short_read_drains(fd);
        if drains {
            self.found_drained(edges);
        }
        drains
    }

    /// A read that began when `read_edges` was `edges` returned fewer bytes than it asked of a
    /// stream socket whose short reads prove it drained ([`Entry::short_read_drains`]).
    #[inline]
    fn found_drained(&self, edges: u32) {
        self.drained_by_short_read.store(true, Ordering::Release);
        self.unread.store(0, Ordering::Release);
        self.drained_at
            .store(edges.wrapping_add(1).max(1), Ordering::Release);
    }

    /// Does a read of this stream socket that returned fewer bytes than it asked leave it
    /// drained, or a new edge already queued in its epoll (so the next read may park without
    /// trying)? Only plain TCP, asked once per descriptor (two `getsockopt`): `tcp_recvmsg`
    /// stops short only when the receive queue is empty — and what arrives while it holds the
    /// socket is queued after it with a wake-up, an edge of the edge-triggered registration,
    /// as is all that arrives later; a registration made later reports data already there —
    /// or at the urgent mark, or with the peer's FIN or reset behind the bytes it took (the
    /// next read returns 0 or the error at once, and their edge may be reported already).
    /// Not a Unix socket (a read stops at a change of credentials or after passed
    /// descriptors), SCTP (a message at a time), MPTCP, nor a TCP socket with an upper-layer
    /// protocol (kernel TLS stops before a control record). An edge with urgent data, the
    /// peer's shutdown, a hang-up or an error (EPOLLPRI, EPOLLRDHUP, EPOLLHUP, EPOLLERR), a
    /// program's `MSG_OOB` read, and a later `TCP_ULP` or `TCP_REPAIR` withdraw it for the
    /// descriptor's life ([`Entry::distrust_short_reads`]).
    #[inline]
    pub fn short_read_drains(&self, fd: c_int) -> bool {
        if let Some(drains) = self.cached_short_reads() {
            return drains;
        }
        let stamp = STAMP.load(Ordering::SeqCst);
        let drains = plain_tcp(fd);
        let answer = if drains {
            SHORT_READ_DRAINS
        } else {
            SHORT_READ_PROVES_NOTHING
        };
        self.short_reads
            .fetch_max(stamp << SHORT_BITS | answer, Ordering::SeqCst);
        self.cached_short_reads().unwrap_or(false)
    }

    /// What is known of the descriptor's short reads, None when nothing is.
    #[inline]
    fn cached_short_reads(&self) -> Option<bool> {
        let word = self.short_reads.load(Ordering::SeqCst);
        let answer = word & ((1 << SHORT_BITS) - 1);
        if answer == 0 || word >> SHORT_BITS < self.born.load(Ordering::Acquire) {
            return None;
        }
        Some(answer == SHORT_READ_DRAINS)
    }

    /// The socket may stop a read short with something left to read and no new edge (urgent
    /// data, the end of file, an error, an upper-layer protocol): its short reads prove
    /// nothing from now on, for the descriptor's life. Made before the edge that told it is counted (`wait::dispatch`), so a read that
    /// began after that count sees it.
    pub fn distrust_short_reads(&self) {
        if self.cached_short_reads() == Some(false) {
            return;
        }
        self.short_reads.fetch_max(
            fresh_stamp() << SHORT_BITS | SHORT_READ_PROVES_NOTHING,
            Ordering::SeqCst,
        );
    }

    /// A read took `n` bytes and left the descriptor's emptiness unknown.
    #[inline]
    pub fn took(&self, n: usize) {
        if self.drained_at.load(Ordering::Relaxed) != 0 {
            self.unread.fetch_sub(n as i64, Ordering::AcqRel);
        }
    }
}

/// A green call on `fd` failed with `code`, which a descriptor of another kind than the cached
/// one gives (ENOTSOCK: a socket call on a file; ESPIPE): when the kernel says the kind has
/// changed — the number was closed and reused behind our back — the entry is renewed and true
/// is returned (the caller makes the plain call instead).
pub fn stale(fd: c_int, cached: Kind, code: c_int) -> bool {
    if !matches!(code, libc::ENOTSOCK | libc::ESPIPE) {
        return false;
    }
    let now = classify(fd);
    if now == cached {
        return false;
    }
    crate::log!(
        Debug,
        "fd {fd} was cached as {cached:?} but is {now:?}: renewed"
    );
    born(fd, now);
    true
}

/// Every entry made so far (the table is never shrunk, so each stays valid).
fn each_entry(mut visit: impl FnMut(&'static Entry)) {
    for slot in &CHUNK_TABLE {
        let chunk = slot.load(Ordering::Acquire);
        if chunk.is_null() {
            continue;
        }
        for i in 0..CHUNK {
            // SAFETY: a published chunk holds CHUNK initialised entries and is never freed.
            visit(unsafe { &*chunk.add(i) });
        }
    }
}

/// In a forked child: no descriptor is registered with this process's new epoll instance.
pub fn forget_registrations() {
    each_entry(|entry| {
        if !entry
            .registered
            .swap(core::ptr::null_mut(), Ordering::AcqRel)
            .is_null()
        {
            // Old registrations belong to the parent: events of theirs never reach us, and
            // the generation makes any stale key harmless.
            entry.generation.fetch_add(1, Ordering::AcqRel);
        }
        // The parent may read and write the same descriptors now.
        entry.drained_at.store(0, Ordering::Release);
    });
}

/// In a forked child, with every parking-lot bucket held: nobody waits on a descriptor (the
/// waiters were other threads).
pub fn forget_waiters(buckets: &crate::park::AllBuckets) {
    each_entry(|entry| {
        buckets.empty_own_in_child(&entry.read_waiters);
        buckets.empty_own_in_child(&entry.write_waiters);
    });
}

/// `hub` has a fresh epoll instance: what it watched is registered with it again on the next
/// try of each waiter, woken now (as by an edge: they retry, and park again if not ready).
pub fn rewatch(hub: &crate::hub::Hub) {
    let hub = hub as *const crate::hub::Hub as *mut crate::hub::Hub;
    each_entry(|entry| {
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
    });
}

/// Has the table an entry for `fd` at all (without making one)?
pub fn is_known(fd: c_int) -> bool {
    usize::try_from(fd)
        .ok()
        .filter(|&fd| fd < MAX_FDS)
        .is_some_and(|fd| !CHUNK_TABLE[fd / CHUNK].load(Ordering::Acquire).is_null())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fd` moved to number `at` (tests run in parallel: each uses numbers of its own).
    fn moved(fd: c_int, at: c_int) -> c_int {
        // SAFETY: descriptors of the test's own.
        unsafe {
            assert_eq!(libc::dup2(fd, at), at);
            libc::close(fd);
        }
        at
    }

    /// One end of a connected pair of stream sockets at number `at`, the other end returned too.
    fn socket_at(at: c_int, nonblocking: bool) -> (c_int, c_int) {
        let mut sv = [0; 2];
        let ty = libc::SOCK_STREAM | if nonblocking { libc::SOCK_NONBLOCK } else { 0 };
        // SAFETY: sv holds two ints.
        assert_eq!(
            unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, sv.as_mut_ptr()) },
            0
        );
        (moved(sv[0], at), sv[1])
    }

    fn close(fd: c_int) {
        // SAFETY: a descriptor of the test's own.
        unsafe { libc::close(fd) };
    }

    #[test]
    fn every_birth_and_close_withdraws_the_number_s_plain_route() {
        let fd = 902;
        let route = &crate::plain_fds::ROUTES[fd as usize];
        for renewal in [born as fn(c_int, Kind), |fd, _| forget(fd)] {
            route.fetch_or(1, Ordering::SeqCst);
            assert!(crate::plain_fds::is_plain(fd));
            renewal(fd, Kind::StreamSocket);
            assert!(!crate::plain_fds::is_plain(fd));
        }
    }

    #[test]
    fn flags_read_before_an_fionbio_never_look_current() {
        let (a, b) = socket_at(900, false);
        let entry = entry(a).unwrap();
        assert!(!entry.program_flags(a).nonblocking());
        // A slow reader asks the kernel, then the program sets FIONBIO and a fast reader
        // caches the new flags, then the slow reader publishes its older answer.
        let slow_stamp = STAMP.load(Ordering::SeqCst);
        let slow_answer = ProgramFlags::read(a);
        let mut one: c_int = 1;
        // SAFETY: FIONBIO reads one int.
        assert_eq!(unsafe { libc::ioctl(a, libc::FIONBIO, &raw mut one) }, 0);
        flags_changed();
        assert!(entry.program_flags(a).nonblocking());
        entry.publish_flags(slow_stamp, slow_answer);
        assert!(entry.program_flags(a).nonblocking());
        forget(a);
        close(a);
        close(b);
    }

    #[test]
    fn flags_and_kind_of_a_closed_descriptor_never_pass_to_its_number_s_next_one() {
        let (a, b) = socket_at(901, false);
        let entry = entry(a).unwrap();
        assert_eq!(entry.kind(a), Kind::StreamSocket);
        assert!(!entry.program_flags(a).nonblocking());
        // A reader of the old descriptor is slow; meanwhile it is closed and its number reused
        // by a non-blocking socket.
        let slow_stamp = STAMP.load(Ordering::SeqCst);
        let (slow_flags, slow_kind) = (ProgramFlags::read(a), classify(a));
        forget(a);
        close(a);
        close(b);
        let (c, d) = socket_at(901, true);
        born(c, Kind::StreamSocket);
        entry.publish_flags(slow_stamp, slow_flags);
        entry
            .kind
            .fetch_max(slow_stamp << KIND_BITS | slow_kind as u64, Ordering::AcqRel);
        assert!(entry.program_flags(c).nonblocking());
        assert_eq!(entry.kind(c), Kind::StreamSocket);
        // Closed and reused by a regular file where no hook saw either: the stale socket kind
        // answers, until a call's error has it re-checked.
        close(d);
        // SAFETY: a NUL-terminated path.
        let file = unsafe { libc::open(c"/proc/self/exe".as_ptr(), libc::O_RDONLY) };
        let file = moved(file, 901);
        assert_eq!(entry.kind(file), Kind::StreamSocket);
        assert!(stale(file, Kind::StreamSocket, libc::ENOTSOCK));
        assert_eq!(entry.kind(file), Kind::File);
        assert!(!stale(file, Kind::File, libc::ESPIPE));
        assert!(!entry.program_flags(file).nonblocking());
        forget(file);
        close(file);
    }
}
