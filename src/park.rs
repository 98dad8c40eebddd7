//! The parking lot: waiters keyed by the address of what they wait on (a mutex, a condition
//! variable, a semaphore…), as in Go's `semtable` and Rust's `parking_lot`.
//!
//! A waiter's node lives on its own stack while it waits, so parking never allocates (an
//! allocator's own locks reach `pthread_mutex_lock`). A key whose owner outlives every wait on
//! it (a descriptor's fd-table entry) may keep its waiters in a queue of its own
//! ([`lock_own`]), still under its bucket's lock: with thousands of parked threads a bucket's
//! shared queue holds other keys' waiters, each on another thread's stack, and a walk past
//! them is a cache miss apiece (at 10 000 connections of a thread-per-connection server, a
//! fifth of its CPU went to that walk). A green thread — or the root of a hub
//! with green work — parks on its hub; an OS thread with nothing else to run waits on a futex
//! in its node, so a real thread that contends for a lock needs no hub at all.

use crate::green::Green;
use crate::hub::Hub;
use crate::sys::now_ns;
use crate::waiting::WaitWord;
use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

const BUCKETS: usize = 1024;

/// How a parked waiter is woken.
enum Wake {
    Green {
        green: &'static Green,
        token: u64,
    },
    /// 0 while waiting, 1 once unparked.
    Futex(AtomicU32),
}

/// A waiter, linked into its key's bucket while it waits.
pub struct Node {
    key: usize,
    /// What the waiter asks for (a reader or a writer, say); the waker's to read.
    pub data: usize,
    /// Set by a waker that handed the waiter what it waited for (a lock, a semaphore unit).
    pub handed_off: Cell<bool>,
    wake: Wake,
    /// The queue it is linked into (its bucket's, or its key's own).
    queue: Cell<*const Queue>,
    prev: Cell<*const Node>,
    next: Cell<*const Node>,
    linked: Cell<bool>,
}

mod solo;

/// Waiters in the order they came: a bucket's (every key that hashes to it), or one key's own
/// (kept by the key's owner, touched only under the key's bucket lock: [`lock_own`]).
pub struct Queue {
    head: Cell<*const Node>,
    tail: Cell<*const Node>,
}

impl Queue {
    pub const fn new() -> Queue {
        Queue {
            head: Cell::new(ptr::null()),
            tail: Cell::new(ptr::null()),
        }
    }

    /// Forgets every waiter: in a forked child, whose waiters were other threads.
    fn empty(&self) {
        self.head.set(ptr::null());
        self.tail.set(ptr::null());
    }
}

impl Default for Queue {
    fn default() -> Self {
        Queue::new()
    }
}

// SAFETY: the raw pointers name nodes that are only touched under the bucket's lock, or inside
// a `solo::Section` (a key's own queue: under its key's bucket, `lock_own`).
unsafe impl Send for Queue {}
// SAFETY: as above: every read and write of a queue happens while one bucket is held.
unsafe impl Sync for Queue {}

/// A bucket: its queue, and the lock that guards it once the lot is shared (`solo`: while one
/// OS thread alone uses the lot, its sections guard every queue and no lock is taken).
struct Slot {
    lock: Mutex<()>,
    queue: Queue,
}

static TABLE: [Slot; BUCKETS] = [const {
    Slot {
        lock: Mutex::new(()),
        queue: Queue::new(),
    }
}; BUCKETS];

/// A held bucket: the waiters of every key that hashes to it, or, from [`lock_own`], of one
/// key in its own queue.
pub struct Bucket {
    /// The queue this bucket's waits and wakes use: the bucket's own, or the key's.
    queue: &'static Queue,
    /// Held while the bucket is: it guards `queue`.
    held: Held,
}

/// What makes a bucket the holder's alone (released when the bucket is dropped).
enum Held {
    Lock(#[allow(dead_code)] MutexGuard<'static, ()>),
    Alone(#[allow(dead_code)] solo::Section),
}

/// Every bucket, locked: held across `fork`, so that no bucket is copied into the child in the
/// middle of a change by a thread the child will not have.
pub enum AllBuckets {
    Locked(#[allow(dead_code)] Vec<MutexGuard<'static, ()>>),
    /// The forking thread uses the lot alone: one section, held across the fork, keeps every
    /// other OS thread out as the locks would.
    Alone(#[allow(dead_code)] solo::Section),
}

pub fn lock_all() -> AllBuckets {
    if let Some(section) = solo::enter() {
        return AllBuckets::Alone(section);
    }
    solo::share();
    AllBuckets::Locked(
        TABLE
            .iter()
            .map(|slot| slot.lock.lock().unwrap_or_else(|e| e.into_inner()))
            .collect(),
    )
}

impl AllBuckets {
    /// In a forked child: nobody waits any more (the waiters were other threads), so a wake —
    /// a lock hand-off, say — never goes to a thread that does not exist.
    pub fn empty_in_child(&mut self) {
        for slot in &TABLE {
            slot.queue.empty();
        }
    }

    /// In a forked child, as [`empty_in_child`](AllBuckets::empty_in_child), for a key's own
    /// queue (every bucket is held, so its key's is).
    pub fn empty_own_in_child(&self, queue: &Queue) {
        queue.empty();
    }
}

/// From now on every OS thread takes the bucket locks (see `solo`): for a process about to
/// run green threads on several OS threads, which would share the lot anyway.
pub fn share() {
    solo::share();
}

/// Locks the bucket of `key`.
#[inline]
pub fn lock(key: usize) -> Bucket {
    let slot = slot_of(key);
    Bucket {
        queue: &slot.queue,
        held: hold(slot),
    }
}

/// Locks the bucket of `key`, whose waiters queue in `own`, a queue only `key`'s waits and
/// wakes use (always through this function with the same `key`).
#[inline]
pub fn lock_own(key: usize, own: &'static Queue) -> Bucket {
    Bucket {
        queue: own,
        held: hold(slot_of(key)),
    }
}

/// Do `a` and `b` hash to the same bucket (one hold of it covers both: see
/// [`Bucket::turn_to_own`])? Keys that differ only in their three low bits always do.
#[inline]
pub fn same_bucket(a: usize, b: usize) -> bool {
    ptr::eq(slot_of(a), slot_of(b))
}

#[inline]
fn slot_of(key: usize) -> &'static Slot {
    // Fibonacci hashing of the address, dropping the alignment bits.
    let index = ((key >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) % BUCKETS;
    &TABLE[index]
}

#[inline]
fn hold(slot: &'static Slot) -> Held {
    match solo::enter() {
        Some(section) => Held::Alone(section),
        None => lock_shared(slot),
    }
}

#[inline(never)]
fn lock_shared(slot: &'static Slot) -> Held {
    solo::share();
    Held::Lock(slot.lock.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Asks the CPU for the first waiters of keys' own queues, ahead of the wakes that will read
/// them (a batch of descriptor events: `fd::wait::prefetch`). Made only while the lot is solo,
/// and holds a section (no other OS thread touches a queue meanwhile): None otherwise.
pub struct Prefetcher(solo::Section);

impl Prefetcher {
    #[inline]
    pub fn new() -> Option<Prefetcher> {
        solo::enter().map(Prefetcher)
    }

    /// The first node of `own` (on its waiter's stack).
    #[inline]
    pub fn node(&self, own: &Queue) {
        let head = own.head.get();
        if !head.is_null() {
            crate::sys::prefetch(head as usize);
        }
    }

    /// The block of the green thread the first node of `own` names (its node asked for
    /// earlier with [`node`](Prefetcher::node), so that reading it does not stall).
    #[inline]
    pub fn waiter(&self, own: &Queue) {
        // SAFETY: a queued node stays valid while it is linked, and nothing unlinks it while
        // this section is open (every change to a queue is made inside one, on this OS thread).
        if let Some(Wake::Green { green, .. }) = unsafe { own.head.get().as_ref() }.map(|n| &n.wake)
        {
            green.prefetch_block();
        }
    }
}

/// How a park ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parked {
    /// A waker took the node off the queue (and maybe handed something over).
    Unparked { handed_off: bool },
    /// The deadline passed first.
    TimedOut,
}

impl Bucket {
    /// Is any waiter of `key` queued?
    pub fn has_waiters(&self, key: usize) -> bool {
        self.waiters(key).next().is_some()
    }

    /// Turns a bucket of [`lock_own`]`(held, ..)` to `key`'s own queue `own`, a key of the same
    /// bucket ([`same_bucket`]): one hold for the waiters of two keys (a descriptor's readers
    /// and writers).
    #[inline]
    pub fn turn_to_own(&mut self, held: usize, key: usize, own: &'static Queue) {
        debug_assert!(same_bucket(held, key));
        let _ = held;
        self.queue = own;
    }

    /// Takes every waiter off a key's own queue (from [`lock_own`] or
    /// [`turn_to_own`](Bucket::turn_to_own): every node on it waits on that key), in queue
    /// order; false when none waited.
    #[inline]
    pub fn unpark_every(&mut self, wakers: &mut WakeList) -> bool {
        let mut at = self.queue.head.replace(ptr::null());
        if at.is_null() {
            return false;
        }
        self.queue.tail.set(ptr::null());
        // SAFETY: as in `iter`: the queue was whole under the lock we hold. Its next pointer
        // and waker are read before the node is marked off the queue (a waiter that finds it
        // off may leave, and its node with it).
        while let Some(node) = unsafe { at.as_ref() } {
            at = node.next.get();
            let waker = self.waker(node);
            node.linked.set(false);
            wakers.push(waker);
        }
        true
    }

    /// The `data` of each waiter of `key`, in queue order.
    pub fn waiters(&self, key: usize) -> impl Iterator<Item = usize> {
        self.iter().filter(move |n| n.key == key).map(|n| n.data)
    }

    fn iter(&self) -> impl Iterator<Item = &Node> {
        let mut at = self.queue.head.get();
        core::iter::from_fn(move || {
            // SAFETY: linked nodes stay valid while queued (their waiters are parked on them),
            // and the queue is only changed under this bucket's lock, which we hold.
            let node = unsafe { at.as_ref() }?;
            at = node.next.get();
            Some(node)
        })
    }

    fn push(&mut self, node: &Node) {
        let queue = self.queue;
        node.queue.set(queue);
        node.prev.set(queue.tail.get());
        node.next.set(ptr::null());
        // SAFETY: the tail, if any, is a linked node (valid while queued; we hold the lock).
        match unsafe { queue.tail.get().as_ref() } {
            Some(tail) => tail.next.set(node),
            None => queue.head.set(node),
        }
        queue.tail.set(node);
        node.linked.set(true);
    }

    /// Takes `node` off the queue it was pushed on (this bucket's, or its key's own: either is
    /// guarded by the lock we hold, the lock of the node's key).
    fn unlink(&mut self, node: &Node) {
        // SAFETY: a linked node's queue is this bucket's or its key's own, both 'static.
        let queue = unsafe { &*node.queue.get() };
        // SAFETY: neighbours of a linked node are linked nodes (valid; we hold the lock).
        unsafe {
            match node.prev.get().as_ref() {
                Some(prev) => prev.next.set(node.next.get()),
                None => queue.head.set(node.next.get()),
            }
            match node.next.get().as_ref() {
                Some(next) => next.prev.set(node.prev.get()),
                None => queue.tail.set(node.prev.get()),
            }
        }
        node.linked.set(false);
    }

    /// Takes the first waiter of `key` for which `choose` says yes (it may mark the node
    /// handed off). Returns a waker to call after the bucket is unlocked.
    pub fn unpark_first(
        &mut self,
        key: usize,
        mut choose: impl FnMut(&Node) -> bool,
    ) -> Option<Waker> {
        let node = self.iter().find(|n| n.key == key && choose(n))? as *const Node;
        // SAFETY: found in the queue just now, under the lock.
        let node = unsafe { &*node };
        self.unlink(node);
        Some(self.waker(node))
    }

    /// The waker of `node`, just taken off the queue.
    #[inline]
    fn waker(&self, node: &Node) -> Waker {
        Waker::of(node, matches!(self.held, Held::Alone(_)))
    }

    /// Takes the first waiter of `key`, handing it what it waited for (a lock, a unit).
    pub fn hand_off_first(&mut self, key: usize) -> Option<Waker> {
        self.unpark_first(key, |node| {
            node.handed_off.set(true);
            true
        })
    }

    /// Takes every waiter of `key` for which `choose` says yes, in queue order.
    pub fn unpark_all(
        &mut self,
        key: usize,
        mut choose: impl FnMut(&Node) -> bool,
        wakers: &mut WakeList,
    ) {
        let mut at = self.queue.head.get();
        // SAFETY: as in `iter`; the next pointer is read before the node is unlinked.
        while let Some(node) = unsafe { at.as_ref() } {
            at = node.next.get();
            if node.key == key && choose(node) {
                self.unlink(node);
                wakers.push(self.waker(node));
            }
        }
    }

    /// Queues the calling thread under `key` and waits until a waker takes it off the queue or
    /// `deadline` (CLOCK_MONOTONIC ns) passes. The bucket is released while it waits;
    /// `before_sleep` runs after queueing, unlocked (a condition variable's mutex unlock).
    pub fn park(
        self,
        key: usize,
        data: usize,
        deadline: Option<u64>,
        on: WaitWord,
        before_sleep: impl FnOnce(),
    ) -> Parked {
        self.park_on(Hub::current(), key, data, deadline, on, before_sleep)
    }

    /// [`park`](Bucket::park) with this OS thread's hub (if any) already looked up by the
    /// caller: each look is a `__tls_get_addr` call.
    pub fn park_on(
        self,
        hub: Option<&'static Hub>,
        key: usize,
        data: usize,
        deadline: Option<u64>,
        on: WaitWord,
        before_sleep: impl FnOnce(),
    ) -> Parked {
        let hub = hub.filter(|hub| hub.parkable());
        let wake = match hub {
            Some(hub) => {
                let green = hub.current_green();
                Wake::Green {
                    green,
                    token: green.arm(),
                }
            }
            None => Wake::Futex(AtomicU32::new(0)),
        };
        let node = Node {
            key,
            data,
            handed_off: Cell::new(false),
            wake,
            queue: Cell::new(ptr::null()),
            prev: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
            linked: Cell::new(false),
        };
        if let (Wake::Green { green, .. }, Some(hub)) = (&node.wake, hub)
            && green.shared_stack.get()
        {
            return self.park_held(hub, node, deadline, on, before_sleep);
        }
        self.wait_on(hub, &node, deadline, on, before_sleep)
    }

    /// `park_on` for a green thread whose stack is copied out while it waits
    /// (`green::copied`): the node must stay where wakers find it, so it is held off the stack.
    #[cold]
    #[inline(never)]
    fn park_held(
        self,
        hub: &'static Hub,
        node: Node,
        deadline: Option<u64>,
        on: WaitWord,
        before_sleep: impl FnOnce(),
    ) -> Parked {
        let held = spare::Node::hold(hub, node);
        self.wait_on(Some(hub), held.get(), deadline, on, before_sleep)
    }

    /// Queues `node` (the caller's, on its stack or held off it) and waits (see `park_on`).
    #[inline(always)]
    fn wait_on(
        self,
        hub: Option<&'static Hub>,
        node: &Node,
        deadline: Option<u64>,
        on: WaitWord,
        before_sleep: impl FnOnce(),
    ) -> Parked {
        let key = node.key;
        let mut bucket = self;
        bucket.push(node);
        drop(bucket);
        before_sleep();
        let timed_out = match (&node.wake, hub) {
            (Wake::Green { green, token }, Some(hub)) => hub.park(green, *token, on, deadline),
            (Wake::Futex(word), _) => futex_wait(word, deadline),
            (Wake::Green { .. }, None) => unreachable!("a green waiter always has a hub"),
        };
        if timed_out || node.linked.get() {
            // The deadline passed — or a timer fired just as a waker took the node: the
            // bucket decides which came first.
            let mut bucket = lock(key);
            if node.linked.get() {
                bucket.unlink(node);
                return Parked::TimedOut;
            }
            drop(bucket);
            // A waker took the node; it is about to wake us, and for a futex waiter it still
            // touches the node's word: wait for that before the node leaves the stack.
            if let Wake::Futex(word) = &node.wake {
                while word.load(Ordering::Acquire) == 0 {
                    futex_wait(word, None);
                }
            }
        }
        Parked::Unparked {
            handed_off: node.handed_off.get(),
        }
    }
}

/// Parks the calling green thread under every key in `keys` at once, until a waker takes any
/// of its nodes or `deadline` passes; then takes the other nodes back. For waits on many
/// descriptors (`poll`, `select`): the first edge on any of them wakes it. A key with its own
/// queue comes with it (as [`lock_own`] takes it). `still_quiet`, asked once every node is
/// queued, says whether no wake-up came unseen since the caller last looked: when one may have,
/// it returns at once. Returns true when the deadline passed.
pub fn park_many(
    hub: &Hub,
    keys: impl Iterator<Item = (usize, Option<&'static Queue>)>,
    deadline: Option<u64>,
    on: WaitWord,
    still_quiet: impl FnOnce() -> bool,
) -> bool {
    let green = hub.current_green();
    let token = green.arm();
    let nodes: Vec<Node> = keys
        .map(|(key, own)| Node {
            key,
            data: 0,
            handed_off: Cell::new(false),
            wake: Wake::Green { green, token },
            // Until pushed: the key's own queue, if any.
            queue: Cell::new(own.map_or(ptr::null(), |own| own as *const Queue)),
            prev: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
            linked: Cell::new(false),
        })
        .collect();
    // The vector never grows again: node addresses are stable while they are queued.
    for node in &nodes {
        // SAFETY: null, or the 'static queue the caller named for this key.
        match unsafe { node.queue.get().as_ref() } {
            Some(own) => lock_own(node.key, own).push(node),
            None => lock(node.key).push(node),
        }
    }
    // Queued on every key: a wake from now on finds the thread. One that came between the
    // caller's look and the queueing found nobody: `still_quiet` says whether one did.
    let timed_out = if still_quiet() || !green.take_token(token) {
        // (A waker that took the token already will make the thread run: the park absorbs it.)
        hub.park(green, token, on, deadline)
    } else {
        false
    };
    for node in &nodes {
        let mut bucket = lock(node.key);
        if node.linked.get() {
            bucket.unlink(node);
        }
    }
    timed_out
}

/// Nodes of waiters whose stacks are copied out while they wait (`green::copied`): a waker on
/// another thread, or a thread that runs on the same region meanwhile, must find the node
/// where it was put. Carved from mappings of their own, kept free per hub (a thread parks and
/// returns its node on its own hub's OS thread): never malloc's, whose locks may be what the
/// waiter waits for.
mod spare {
    use crate::hub::Hub;
    use core::ptr;

    /// Nodes carved at a time (one mapping).
    const CHUNK: usize = 256;

    #[repr(C)]
    union Slot {
        next: *mut Slot,
        node: core::mem::ManuallyDrop<super::Node>,
    }

    /// A node held off the stack for one wait, back to its hub's free slots when dropped.
    pub struct Node(*mut Slot, &'static Hub);

    impl Node {
        /// `hub`: the caller's, on its own OS thread.
        pub fn hold(hub: &'static Hub, node: super::Node) -> Node {
            let free = hub.spare_nodes();
            let mut head = free.get().cast::<Slot>();
            if head.is_null() {
                head = carve();
            }
            // SAFETY: a free slot (carved or given back): its first word links the next.
            free.set(unsafe { (*head).next }.cast());
            // SAFETY: a free slot, ours now, sized and aligned for a node.
            unsafe { (&raw mut (*head).node).cast::<super::Node>().write(node) };
            Node(head, hub)
        }

        pub fn get(&self) -> &super::Node {
            // SAFETY: written by `hold`, valid until dropped.
            unsafe { &(*self.0).node }
        }
    }

    impl Drop for Node {
        fn drop(&mut self) {
            let free = self.1.spare_nodes();
            // SAFETY: our slot; the node holds nothing that needs dropping (cells, a
            // reference, an atomic), and no waker touches it after the wait.
            unsafe { (*self.0).next = free.get().cast() };
            free.set(self.0.cast());
        }
    }

    /// A fresh chunk of slots, linked; the first is returned. Out of memory stops the process
    /// (a wait cannot fail here).
    #[cold]
    fn carve() -> *mut Slot {
        let len = CHUNK * core::mem::size_of::<Slot>();
        // SAFETY: a fresh anonymous private mapping.
        let at = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if at == libc::MAP_FAILED {
            crate::fatal!("no memory for a parked thread's node (GREENWORLD_STACK_COPY)");
        }
        let slots = at.cast::<Slot>();
        for i in 0..CHUNK {
            let next = if i + 1 < CHUNK {
                slots.wrapping_add(i + 1)
            } else {
                ptr::null_mut()
            };
            // SAFETY: within the mapping, aligned (page-aligned start, whole slots).
            unsafe { (*slots.add(i)).next = next };
        }
        slots
    }
}

/// Wakes one unparked waiter; call it after the bucket is unlocked.
pub struct Waker {
    wake: WakeHow,
}

enum WakeHow {
    /// `alone`: unparked inside a `solo` section.
    Green {
        green: &'static Green,
        token: u64,
        alone: bool,
    },
    Futex(*const AtomicU32),
}

impl Waker {
    /// The waker of `node`, taken off its queue inside a `solo` section when `alone`: then the
    /// lot was never shared, so the waiter parked on this OS thread's hub (it queued inside a
    /// section too), where its timers fire, and no other OS thread ever saw the node. No other
    /// thread can take its token: one holding a stale token, of an earlier wait, never matches.
    fn of(node: &Node, alone: bool) -> Waker {
        let wake = match &node.wake {
            Wake::Green { green, token } => WakeHow::Green {
                green,
                token: *token,
                alone,
            },
            Wake::Futex(word) => WakeHow::Futex(word),
        };
        Waker { wake }
    }

    /// Inline for the common case, a green thread of this OS thread's hub (a push on its run
    /// queue); the others out of line.
    #[inline]
    pub fn wake(self) {
        match self.wake {
            WakeHow::Green {
                green,
                token,
                alone: true,
            } => {
                green.unpark_here(token);
            }
            wake => wake_elsewhere(wake),
        }
    }
}

#[inline(never)]
fn wake_elsewhere(wake: WakeHow) {
    match wake {
        WakeHow::Green { green, token, .. } => {
            green.unpark(token);
        }
        WakeHow::Futex(word) => {
            // SAFETY: the waiter does not leave `park` (its node stays on its stack) until
            // it has seen the word set, which happens here, before the wake.
            let word = unsafe { &*word };
            word.store(1, Ordering::Release);
            futex_wake(word);
        }
    }
}

/// Wakers gathered under a bucket lock, to call once it is released (no allocation: a
/// broadcast wakes in batches). The batch is left uninitialised: every descriptor edge makes
/// one, and zeroing 32 slots cost a `memset` of 500 bytes each time (a quarter of the green
/// part of a socketpair round trip).
pub struct WakeList {
    batch: [core::mem::MaybeUninit<Waker>; 32],
    len: usize,
}

impl Default for WakeList {
    fn default() -> Self {
        WakeList {
            batch: [const { core::mem::MaybeUninit::uninit() }; 32],
            len: 0,
        }
    }
}

impl WakeList {
    fn push(&mut self, waker: Waker) {
        if self.len == self.batch.len() {
            // Full: a caller that unparks more than a batch holds the bucket; waking now is
            // still correct (a woken waiter that needs the bucket simply waits for it).
            self.wake_all();
        }
        self.batch[self.len].write(waker);
        self.len += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn wake_all(&mut self) {
        let len = core::mem::take(&mut self.len);
        for slot in &self.batch[..len] {
            // SAFETY: the first `len` slots were written by `push` and not read since (`len`
            // is zeroed first, so each is read once).
            unsafe { slot.assume_init_read() }.wake();
        }
    }
}

/// Waits while `word` is 0, until woken or `deadline`; true when the deadline passed.
fn futex_wait(word: &AtomicU32, deadline: Option<u64>) -> bool {
    loop {
        if word.load(Ordering::Acquire) != 0 {
            return false;
        }
        let timeout = match deadline {
            None => None,
            Some(deadline) => {
                let now = now_ns();
                if now >= deadline {
                    return true;
                }
                let left = deadline - now;
                Some(crate::sys::ns_timespec(left))
            }
        };
        let timeout_ptr = timeout
            .as_ref()
            .map_or(ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: a private futex wait on a live word, with a valid or null timeout.
        unsafe {
            crate::sys::syscall!(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                0u32,
                timeout_ptr,
            )
        };
    }
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: a private futex wake on a word that is valid at least until the waiter sees it.
    unsafe {
        crate::sys::syscall!(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        )
    };
}
