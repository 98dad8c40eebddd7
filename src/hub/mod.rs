//! The hub: one per OS thread that runs green threads, with a run queue, a timer heap and a
//! poller (epoll).
//!
//! The OS thread itself is the hub's *root*: it is not a coroutine. When the root would block it
//! runs the hub loop on its own stack until its own wait is over; a green thread that would block
//! suspends back into that loop, or runs the next runnable thread itself when it may
//! (`handoff`). Green threads stay on the hub that started them (trap 8; one not started yet
//! may be taken by another, `steal`); a wake from another OS thread goes through the hub's
//! inbox and notifier (trap 12).
//!
//! Its one job is scheduling (and each thread's signal mask, which changes as it switches). What
//! its events mean belongs to the services above, its [`Owners`]: a poller key is `fd`'s, a look
//! asked for by a signal handler is `signal`'s, an ended thread is reaped by `thread`; a fork
//! child's reset is each module's own, in order, from `os::fork`.

mod handoff;
pub mod masks;
pub mod poller;
mod slice;
pub use slice::slice_ns;
mod idle_cpu;
pub use idle_cpu::note_process_cpus;
mod ring;
mod spin;
mod steal;
pub mod task_files;
pub mod timers;
pub mod watch;

use crate::green::copied::Region;
use crate::green::stack::{Stack, StackPool};
use crate::green::{Green, GreenYielder, Unstarted, table, tls};
use crate::stats::{self, ParkReason};
use crate::sys::{errno, now_ns, set_errno};
use crate::waiting::{self as wait_record, WaitOn, WaitWord};
use core::cell::{Cell, RefCell};
use core::ptr;
use corosensei::{Coroutine, CoroutineResult};
use masks::Masks;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use timers::Timers;

/// How many green threads run back to back before the loop looks at timers and the inbox again.
const CHECK_EVERY: u32 = 64;

/// Descriptors this hub watches from which a batch of events is first shown to
/// [`Owners::io_prefetch`].
const PREFETCH_FROM_WATCHED: usize = 256;

/// What the services above the hub do at the hub's moments, given by whoever makes hubs (the
/// same for every hub). Plain function pointers: no allocation or trait object per event.
pub struct Owners {
    /// The poller saw `key` (as registered with [`Hub::watch`]) ready in these directions
    /// (`exceptional`: with urgent data, the peer's shutdown, a hang-up or an error).
    pub io_ready: fn(key: usize, readable: bool, writable: bool, exceptional: bool),
    /// Before a batch of several events goes to `io_ready`, the batch (keys in `u64`, the
    /// notifier's and the dump channel's among them), when the hub watches many descriptors:
    /// asks the CPU for what `io_ready` will touch, so that its misses overlap.
    pub io_prefetch: fn(events: &[libc::epoll_event]),
    /// The hub's poller was replaced: nothing is registered with it any more.
    pub poller_renewed: fn(hub: &Hub),
    /// The hub looks around (before it runs more threads, after each poll) and someone asked
    /// it to ([`Hub::request_look`]).
    pub look: fn(hub: &Hub),
    /// `green` has ended and the hub is done with it (stack, timers, counts): its return value
    /// goes to whoever reaps threads.
    pub ended: fn(green: &'static Green),
    /// Runs the program's handler for a signal deferred to, or sent to, the running thread.
    pub run_handler: masks::RunHandler,
    /// A thread of another hub sent `sig` to `green`, a thread of this one (`pthread_kill`),
    /// handed over by [`Hub::send_signal`]: it is `green`'s alone, as natively.
    pub signal_to: fn(hub: &Hub, green: &'static Green, sig: libc::c_int),
    /// A hub was made (the first one opens the dump channel: [`CHANNEL_KEY`]).
    pub made: fn(hub: &'static Hub),
    /// A dump was asked for ([`Hub::request_dump`]: to stderr), or the dump channel is ready
    /// (`channel`: a reader connected).
    pub dump: fn(hub: &Hub, channel: bool),
    /// The hub has waited [`DEADLOCK_GRACE_NS`] (or longer: [`Quiet::Unsure`]) with nothing
    /// runnable and no timer: could nothing ever wake it (every thread waits on another)? If
    /// so ([`Quiet::Deadlocked`]), `deadlocked` says it.
    pub maybe_deadlocked: fn(hub: &Hub) -> Quiet,
    pub deadlocked: fn(hub: &Hub),
}

/// The owners' answer to a hub that found nothing to do for a grace period
/// ([`Owners::maybe_deadlocked`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quiet {
    /// Every thread waits on another and nothing else could end a wait: said once.
    Deadlocked,
    /// A wait ends by itself (a descriptor, a timer, a signal, a child), or it was said
    /// already: the hub waits as natively, with no timeout, until something happens.
    Waits,
    /// Not now, but it may turn (another hub or an OS thread the library does not run was busy,
    /// a thread was runnable): asked again after a longer grace ([`QUIET_GRACE_MAX_NS`] at
    /// most), since nothing may wake this hub when it turns.
    Unsure,
}

/// The poller key of the dump channel's listening socket (no descriptor entry has it, and the
/// poller's own eventfd has `usize::MAX`).
pub const CHANNEL_KEY: usize = usize::MAX - 1;

/// How long a hub waits with nothing to do before it asks whether it is deadlocked.
pub const DEADLOCK_GRACE_NS: u64 = 1_000_000_000;
/// The longest a hub waits before it asks again after [`Quiet::Unsure`] (the grace doubles).
pub const QUIET_GRACE_MAX_NS: u64 = 32 * DEADLOCK_GRACE_NS;

pub struct Hub {
    owners: &'static Owners,
    root: &'static Green,
    current: Cell<&'static Green>,
    run_queue: RefCell<VecDeque<&'static Green>>,
    timers: RefCell<Timers<usize>>,
    poller: poller::Poller,
    events: RefCell<Vec<libc::epoll_event>>,
    /// What other OS threads hand this hub.
    inbox: Mutex<Inbox>,
    /// Set when the inbox's woken threads or arrivals may hold something (one flag: the
    /// common empty case costs one load).
    inbox_full: AtomicBool,
    /// The inbox holds stacks given back.
    stacks_returned: AtomicBool,
    /// Threads placed here by other hubs and not started yet (counted in `load`).
    arriving: AtomicUsize,
    /// Threads made here and not started yet, which a hub with nothing to run may take
    /// (`steal`).
    unstarted: steal::Unstarted,
    /// Descriptors registered with the poller (any OS thread may unregister one).
    watched: AtomicUsize,
    /// Green threads made by this hub that have not finished.
    alive: AtomicUsize,
    /// An owner asked for a look (`request_look`), maybe from a signal handler.
    look_requested: AtomicBool,
    /// Each thread's signal mask, and the OS thread's.
    masks: Masks,
    /// In a child forked by a green thread: the root's own code is gone (POSIX keeps only the
    /// forking thread), so when the last green thread ends, the process exits.
    root_gone: Cell<bool>,
    /// The root runs a program's own code (`main`, or a real OS thread's): not a library
    /// hub's loop (`serve`), not a root that called `pthread_exit`, not a fork child's gone
    /// one. Placement counts it as one of the hub's threads (`steal::less_busy_hub`).
    program_root: AtomicBool,
    /// The root's token while it waits for `alive` to reach zero (`pthread_exit` from `main`).
    all_done_token: Cell<u64>,
    stacks: RefCell<StackPool>,
    /// The stack region its threads share in the copied-stack mode (`green::copied`), mapped
    /// on first use; null until then.
    copied: core::sync::atomic::AtomicPtr<Region>,
    /// Free parking-lot nodes for that mode's waiters (opaque here: `park`'s).
    spare_nodes: Cell<*mut ()>,
    /// The interrupted instruction's address and `r11`, left by the monitor's signal handler
    /// for the preemption stub, which reads them as it starts (`sysmon::preempt::inject`): the
    /// handler writes nothing on the interrupted stack, where the kernel's signal frame lies.
    pub(crate) preempt_return: Cell<[u64; 2]>,
    /// Poller waits that failed in a row (each makes a fresh poller; a few in a row stop).
    poller_failures: Cell<u32>,
    /// The OS thread's real `pthread_t`.
    os_thread: libc::pthread_t,
    /// The OS thread's errno (`__errno_location`, asked once: every switch saves and sets it).
    errno_at: *mut libc::c_int,
    /// The running thread's turn on the hub (see `slice`).
    turn: slice::Turn,
    /// A dump to stderr was asked for (maybe by a signal handler); served at the next look.
    dump_requested: AtomicBool,
    /// The dump channel's socket was ready in the last poll.
    channel_ready: Cell<bool>,
    /// How long the next wait with nothing runnable and no timer lasts before the owners are
    /// asked about a deadlock (see `wait_without_timer`); 0: they said [`Quiet::Waits`] and
    /// nothing has happened since.
    quiet_grace: Cell<u64>,
    /// The hub waits in its poller with nothing runnable and no timer (`wait_without_timer`):
    /// only an event or another OS thread can give it work. Read by other hubs' deadlock check.
    quiet: AtomicBool,
    /// Whose private thread-locals are installed (`green::tls`): the hub loop runs with the
    /// last green thread's until the root goes back to its own code, so a turn costs one
    /// switch, not two.
    tls_resident: Cell<&'static Green>,
    /// Finished threads' thread-local memory, and a new thread's DTV (`tls::Kept`).
    tls_kept: tls::Kept,
    /// Table slots of reaped threads, for this OS thread's next spawns (`table::LocalSlots`).
    free_slots: table::LocalSlots,
    /// Whether, and how long, this hub spins before it sleeps (see `spin`).
    spin: spin::Spin,
    /// What the monitor on another OS thread sees (see `watch`).
    watched_by_monitor: watch::Watched,
    /// The signal service's record of this OS thread's interruptible waits (opaque here), for
    /// other hubs' handlers to look at (`forward_signal`).
    signal_waiters: core::sync::atomic::AtomicPtr<()>,
    /// Signals whose handlers ran on another hub that had no waiting call to interrupt,
    /// handed here to interrupt one of this hub's (several hubs only).
    forwarded_signals: core::sync::atomic::AtomicU64,
    /// This OS thread's record for `context::in_vfork_child_by` (read by its own thread only).
    own_process_at: Cell<u32>,
    /// Threads run before the hub loop looks at its inbox, timers and poller again (counted
    /// down by the loop and by a host's hand-offs alike: see `handoff`).
    checks_due_in: Cell<u32>,
    /// The parked green thread that runs the run queue from its own stack (`handoff`); null
    /// when none does (the root's loop does).
    host: Cell<*const Green>,
}

/// What other OS threads hand a hub, behind one lock (`os::fork` holds it across a fork).
#[derive(Default)]
pub struct Inbox {
    /// Green threads of this hub woken by other OS threads.
    woken: Vec<&'static Green>,
    /// New green threads another hub placed here (`place`), started by this hub's own thread.
    arrivals: Vec<Arrival>,
    /// Stacks of threads that ended on other hubs, back to this hub's pool (`take_stack`).
    stacks: Vec<Stack>,
    /// Signals other hubs' threads sent to threads of this one (`send_signal`).
    signals: Vec<(&'static Green, libc::c_int)>,
    /// Threads made by this hub's own thread and not started yet, oldest first: this hub
    /// starts them, unless an idle hub takes them first (`steal`).
    shelf: VecDeque<Arrival>,
}

/// A green thread made by another hub's `pthread_create` for this one: started here, where its
/// thread-locals must be built (trap 17: a DTV points at its OS thread's static TLS blocks).
struct Arrival {
    green: &'static Green,
    stack: Stack,
    /// Its creator's signal mask (a new thread starts with it).
    mask: masks::Bits,
    body: fn(&'static Green) -> usize,
}

/// What a dump says about a hub. The run queue, the timers and the count of live threads are
/// the hub's own thread's to read: None from another OS thread.
pub struct Facts {
    pub run_queue: Option<usize>,
    pub timers: Option<usize>,
    pub alive: Option<usize>,
    pub inbox: usize,
    pub inbox_full: bool,
    pub notified: bool,
    pub watched: usize,
}

// SAFETY: other OS threads only reach `inbox`, `inbox_full` and `poller.notify()` (all
// thread-safe) through `wake`; every other field is touched by the hub's own OS thread only.
unsafe impl Sync for Hub {}

impl Green {
    /// The hub the thread (or root) belongs to.
    #[inline]
    pub fn hub(&self) -> &'static Hub {
        // SAFETY: set once when the thread (or root) is made, to a hub that is never freed.
        unsafe { &*self.hub_ptr().cast::<Hub>() }
    }

    /// Wakes the thread if it is still in the wait `token` names; from any OS thread.
    /// Returns whether this call woke it.
    #[inline]
    pub fn unpark(&'static self, token: u64) -> bool {
        if !self.take_token(token) {
            return false;
        }
        self.hub().wake(self);
        true
    }

    /// [`unpark`](Green::unpark) by a waker that no other OS thread can race for `token` (see
    /// `park::Waker::of`): on this thread's own hub.
    #[inline]
    pub fn unpark_here(&'static self, token: u64) -> bool {
        debug_assert!(self.hub().is_mine());
        if !self.take_token_here(token) {
            return false;
        }
        self.hub().wake_here(self);
        true
    }
}

/// Green threads run on several hubs of the library's own (`GREENWORLD_HUBS`).
static SEVERAL: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// This OS thread's hub, or null. Const-initialised and destructor-free (trap 6): hubs are
    /// leaked and stay valid while `exit` runs atexit handlers that may still call hooks.
    static HUB: Cell<*const Hub> = const { Cell::new(ptr::null()) };
}

impl Hub {
    /// This OS thread's hub, if it has one.
    #[inline]
    pub fn current() -> Option<&'static Hub> {
        let hub = HUB.with(Cell::get);
        // SAFETY: a non-null HUB was leaked by `get_or_create` and is never freed.
        (!hub.is_null()).then(|| unsafe { &*hub })
    }

    /// This OS thread's hub, made on first use.
    #[inline]
    pub fn get_or_create(owners: &'static Owners) -> std::io::Result<&'static Hub> {
        match Hub::current() {
            Some(hub) => Ok(hub),
            None => Hub::create(owners),
        }
    }

    #[cold]
    fn create(owners: &'static Owners) -> std::io::Result<&'static Hub> {
        let root: &'static Green = Box::leak(Box::new(Green::root()));
        let hub: &'static Hub = Box::leak(Box::new(Hub {
            owners,
            root,
            current: Cell::new(root),
            run_queue: RefCell::new(VecDeque::new()),
            timers: RefCell::new(Timers::default()),
            poller: poller::Poller::new()?,
            events: RefCell::new(vec![libc::epoll_event { events: 0, u64: 0 }; 256]),
            inbox: Mutex::new(Inbox::default()),
            inbox_full: AtomicBool::new(false),
            stacks_returned: AtomicBool::new(false),
            arriving: AtomicUsize::new(0),
            unstarted: steal::Unstarted::new(),
            watched: AtomicUsize::new(0),
            look_requested: AtomicBool::new(false),
            masks: Masks::new(root, owners.run_handler),
            root_gone: Cell::new(false),
            program_root: AtomicBool::new(true),
            alive: AtomicUsize::new(0),
            all_done_token: Cell::new(0),
            stacks: RefCell::new(StackPool::helped()),
            copied: core::sync::atomic::AtomicPtr::new(ptr::null_mut()),
            spare_nodes: Cell::new(ptr::null_mut()),
            preempt_return: Cell::new([0; 2]),
            poller_failures: Cell::new(0),
            // SAFETY: pthread_self has no preconditions (the real one: ours is not re-entered).
            os_thread: unsafe { (crate::real::get().pthread_self)() },
            errno_at: crate::sys::errno_address() as *mut libc::c_int,
            turn: slice::Turn::default(),
            dump_requested: AtomicBool::new(false),
            channel_ready: Cell::new(false),
            quiet_grace: Cell::new(DEADLOCK_GRACE_NS),
            quiet: AtomicBool::new(false),
            tls_resident: Cell::new(root),
            tls_kept: tls::Kept::new(),
            free_slots: table::LocalSlots::new(),
            spin: spin::Spin::new(),
            watched_by_monitor: watch::Watched::default(),
            signal_waiters: core::sync::atomic::AtomicPtr::new(ptr::null_mut()),
            forwarded_signals: core::sync::atomic::AtomicU64::new(0),
            own_process_at: Cell::new(0),
            checks_due_in: Cell::new(0),
            host: Cell::new(ptr::null()),
        }));
        root.set_hub_ptr(hub as *const Hub as *const ());
        HUB.with(|h| h.set(hub));
        wait_record::mark_epoch();
        hub.enlist();
        hub.spin.open();
        (owners.made)(hub);
        // A process with green threads may have things to say after it closed stderr.
        crate::log::keep_stderr();
        crate::log!(Debug, "hub created on OS thread {:#x}", hub.os_thread);
        Ok(hub)
    }

    /// Do green threads run on several hubs of the library's own (`GREENWORLD_HUBS`)? Then
    /// a descriptor one hub watches may have waiters on another (its poller wakes them).
    #[inline]
    pub fn several() -> bool {
        SEVERAL.load(Ordering::Relaxed)
    }

    pub fn set_several(several: bool) {
        SEVERAL.store(several, Ordering::Relaxed);
    }

    /// Every hub of the process, oldest first.
    pub fn all() -> impl Iterator<Item = &'static Hub> {
        watch::all()
    }

    /// In a forked child whose forking thread had no hub: the hubs listed were other threads'.
    pub fn none_after_fork() {
        watch::forget_all_but(None);
    }

    /// Is this the calling OS thread's hub?
    #[inline]
    pub fn is_mine(&self) -> bool {
        if cfg!(target_arch = "x86_64") {
            // The thread pointer is the OS thread's `pthread_t`: one load, where the
            // thread-local costs a call to `__tls_get_addr` (this library is loaded, not
            // linked: its thread-locals are dynamic). Another OS thread has the same only once
            // this hub's has ended (glibc reuses thread descriptors), and nothing wakes a
            // thread of such a hub: its threads ended first (a root waits for them), or, in a
            // fork child, were retired with it.
            self.os_thread as usize == tls::thread_pointer()
        } else {
            ptr::eq(HUB.with(Cell::get), self)
        }
    }

    /// The OS thread's own block (its `main`, or the thread that made the hub).
    pub fn root(&self) -> &'static Green {
        self.root
    }

    /// The state of the hub, for a dump.
    pub fn facts(&self) -> Facts {
        let mine = self.is_mine();
        Facts {
            run_queue: mine.then(|| self.run_queue.borrow().len()),
            timers: mine.then(|| self.timers.borrow().len()),
            alive: Some(self.alive.load(Ordering::Relaxed)),
            inbox: self.inbox.lock().map_or(0, |inbox| inbox.woken.len()),
            inbox_full: self.inbox_full.load(Ordering::Relaxed),
            notified: self.poller.is_notified(),
            watched: self.watched.load(Ordering::Relaxed),
        }
    }

    /// The deadline of `green`'s wait `token`, if it has one (the hub's own thread only).
    pub fn deadline_of(&self, green: &Green, token: u64) -> Option<u64> {
        if !self.is_mine() || token == 0 {
            return None;
        }
        self.timers
            .borrow()
            .deadline_of(green as *const Green as usize, token)
    }

    /// Is anything runnable, or waiting to be made runnable, on this hub (its own thread)?
    /// From any OS thread: is this hub asleep in its poller with nothing runnable, no timer
    /// and nothing in its inbox or on its way to it (so that only an event or another OS
    /// thread could give it work)?
    pub fn is_quiet(&self) -> bool {
        self.quiet.load(Ordering::Acquire)
            && !self.inbox_full.load(Ordering::Relaxed)
            && self.arriving.load(Ordering::Relaxed) == 0
            && self.shelved() == 0
    }

    pub fn has_work(&self) -> bool {
        !self.run_queue.borrow().is_empty()
            || !self.timers.borrow().is_empty()
            || self.inbox_full.load(Ordering::Relaxed)
    }

    /// Registers the dump channel's socket with this hub's poller, under [`CHANNEL_KEY`]; not
    /// counted as a watched descriptor (nothing of the program waits on it).
    pub fn watch_channel(&self, fd: libc::c_int) -> std::io::Result<()> {
        self.poller.add_edge(fd, CHANNEL_KEY)
    }

    /// Asks the oldest hub (the main thread's, usually) to print a dump to stderr when its root's
    /// loop next looks around (async-signal-safe: two stores and an eventfd write). False when
    /// there is no hub.
    pub fn request_dump() -> bool {
        let Some(hub) = Hub::all().next() else {
            return false;
        };
        hub.dump_requested.store(true, Ordering::Release);
        hub.request_look();
        let _ = hub.poller.notify();
        true
    }

    /// The green thread running now (the root when no coroutine runs).
    #[inline]
    pub fn current_green(&self) -> &'static Green {
        self.current.get()
    }

    /// Is a coroutine (not the root) running?
    #[inline]
    pub fn in_green(&self) -> bool {
        !ptr::eq(self.current.get(), self.root)
    }

    /// May the calling thread park here, other threads of this hub running meanwhile? A green
    /// thread may; so may the root while green threads of its hub are alive. A root alone
    /// makes the real, blocking call: nothing else would run while it waited.
    /// With several hubs a root may always park: a thread of another hub may wake it (and
    /// `close` of a descriptor it waits on does, as on one hub).
    #[inline]
    pub fn parkable(&self) -> bool {
        self.in_green() || self.alive.load(Ordering::Relaxed) > 0 || Hub::several()
    }

    /// Could some hub's thread be [`parkable`](Hub::parkable)? Not before the process made its
    /// first green thread (until then no hub runs one, or has one alive), unless hubs are
    /// several: asked first, it spares a thread that never parks the look at its hub (a
    /// `__tls_get_addr` call).
    #[inline]
    pub fn any_parkable() -> bool {
        slice::GREEN_MADE.load(Ordering::Relaxed) || Hub::several()
    }

    /// The signal masks of this hub's threads.
    pub fn masks(&self) -> &Masks {
        &self.masks
    }

    /// Green threads of this hub that have not finished (from any OS thread: a relaxed read).
    pub fn alive(&self) -> usize {
        self.alive.load(Ordering::Relaxed)
    }

    /// Green threads this hub runs or is about to (placed or shelved here, not started yet):
    /// what a placement compares (from any OS thread: relaxed reads).
    pub fn load(&self) -> usize {
        self.alive.load(Ordering::Relaxed) + self.arriving.load(Ordering::Relaxed) + self.shelved()
    }

    /// Does the root count as one of this hub's threads for `green`'s placement? It does while it
    /// runs a program's code, parked or not (as a green thread does: pigz's `main`, the reader,
    /// waits on a condition variable between reads), except while it waits to join `green`
    /// itself: it cannot run before `green` ends, and a create+join pair's thread then starts
    /// at home. The root's wait record tells (what it parked on last, stored by `park`), with
    /// no lock: each thread of a batch joined in turn asks once, as it starts.
    pub(super) fn root_counts_for(&self, green: &Green) -> bool {
        if !self.program_root.load(Ordering::Relaxed) {
            return false;
        }
        if self.root.current_token() == 0 {
            return true;
        }
        let joining = WaitOn::Join(green as *const Green as usize).word().0;
        self.root.waiting_on.load(Ordering::Relaxed) != joining
    }

    /// Free table slots kept for this hub's OS thread: only that thread may use them.
    pub fn free_slots(&self) -> &table::LocalSlots {
        &self.free_slots
    }

    pub fn os_thread(&self) -> libc::pthread_t {
        self.os_thread
    }

    /// A stack for a thread being made (`StackPool::reserve`: address space, nothing
    /// touched); None when none can be had.
    pub fn reserve_stack(&self, size: usize, guard: usize) -> Option<Stack> {
        if self.stacks_returned.load(Ordering::Relaxed) {
            self.take_back_stacks();
        }
        self.stacks.borrow_mut().reserve(size, guard)
    }

    /// This hub's shared stack region (`GREENWORLD_STACK_COPY`), as a new thread's stack; from
    /// any OS thread. None when it cannot be mapped.
    pub fn shared_stack(&self) -> Option<Stack> {
        Region::of(&self.copied).map(Region::stack)
    }

    /// Free parking-lot nodes kept for this hub's threads on copied stacks (`park`'s list;
    /// this hub's own OS thread only).
    pub fn spare_nodes(&self) -> &Cell<*mut ()> {
        &self.spare_nodes
    }

    /// The region, once mapped.
    fn region(&self) -> Option<&'static Region> {
        let region = self.copied.load(Ordering::Acquire);
        // SAFETY: published by `Region::of`, never freed.
        unsafe { region.as_ref() }
    }

    /// Where the byte `green` (of this hub) has at stack address `addr` is now: in its saved
    /// copy while another thread occupies the shared region it runs on (`green::copied`),
    /// else `addr`. None: not in its copy. This hub's own OS thread only.
    pub fn locate_on_stack(&self, green: &Green, addr: usize) -> Option<usize> {
        match self.region() {
            Some(region) if green.shared_stack.get() => region.locate(green, addr),
            _ => Some(addr),
        }
    }

    /// Puts `green`'s copied stack in place on the shared region before it runs.
    #[cold]
    fn enter_shared_stack(&self, green: &'static Green) {
        let Some(region) = self.region() else {
            crate::fatal!("a green thread on a shared stack with no region")
        };
        // SAFETY: on this hub's OS thread, in the root's loop (not on the region); `green`
        // runs on it and is about to be resumed; whoever occupies it is suspended.
        unsafe { region.enter(green) };
    }

    #[cold]
    fn take_back_stacks(&self) {
        self.stacks_returned.store(false, Ordering::Relaxed);
        let back = core::mem::take(&mut self.lock_inbox().stacks);
        let mut pool = self.stacks.borrow_mut();
        for stack in back {
            pool.put(stack);
        }
    }

    /// Gives a finished thread's stack back to the pool it came from.
    #[inline(always)]
    fn stack_done(&self, stack: Stack) {
        let home = stack.home();
        if home == 0 || home == self as *const Hub as usize {
            self.stacks.borrow_mut().put(stack);
            return;
        }
        // SAFETY: a stack's home is a hub, and hubs are never freed.
        let home = unsafe { &*(home as *const Hub) };
        // Never waits: in a fork child the home hub's OS thread is gone, maybe with its lock.
        match home.inbox.try_lock() {
            Ok(mut inbox) => {
                inbox.stacks.push(stack);
                home.stacks_returned.store(true, Ordering::Relaxed);
            }
            Err(_) => self.stacks.borrow_mut().put(stack),
        }
    }

    /// Makes `green` (not yet started, its block naming this hub) runnable on this hub, from
    /// any OS thread: at once on this hub's own, else through the inbox, at this hub's next
    /// look. `stack` was reserved from the calling thread's hub `from`, which gets it back
    /// when the thread ends (or when it starts on another).
    pub fn place(
        &'static self,
        from: &'static Hub,
        green: &'static Green,
        stack: Stack,
        body: fn(&'static Green) -> usize,
    ) {
        self.place_masked(from, green, stack, body, from.current.get().sigmask.get());
    }

    /// [`Hub::place`], with the mask the thread starts with.
    fn place_masked(
        &'static self,
        from: &'static Hub,
        green: &'static Green,
        mut stack: Stack,
        body: fn(&'static Green) -> usize,
        mask: masks::Bits,
    ) {
        if !ptr::eq(from, self) {
            stack.set_home(from as *const Hub as usize);
            from.note_woke_another();
        }
        self.arriving.fetch_add(1, Ordering::Relaxed);
        self.lock_inbox().arrivals.push(Arrival {
            green,
            stack,
            mask,
            body,
        });
        self.inbox_full.store(true, Ordering::Release);
        if let Err(e) = self.poller.notify() {
            crate::log!(Error, "cannot notify a hub: {e}");
        }
    }

    /// Hands `sig`, sent by a thread of another hub to `green` (of this one), to this hub's
    /// own OS thread, which makes it `green`'s ([`Owners::signal_to`]) at its next look.
    pub fn send_signal(&self, green: &'static Green, sig: libc::c_int) {
        self.lock_inbox().signals.push((green, sig));
        self.inbox_full.store(true, Ordering::Release);
        if let Err(e) = self.poller.notify() {
            crate::log!(Error, "cannot notify a hub: {e}");
        }
    }

    /// `context::in_vfork_child`, asked on this hub's own OS thread.
    #[inline]
    pub fn in_vfork_child(&self) -> bool {
        crate::context::in_vfork_child_by(&self.own_process_at)
    }

    /// The signal service's record of this hub's interruptible waits (null: none yet).
    pub fn signal_waiters(&self) -> *const () {
        self.signal_waiters.load(Ordering::Acquire)
    }

    pub fn set_signal_waiters(&self, waiters: *const ()) {
        self.signal_waiters
            .store(waiters as *mut (), Ordering::Release);
    }

    /// A process-directed signal's handler ran on another hub, where no call waited: one of
    /// this hub's waiting calls is interrupted by it at this hub's next look, as natively the
    /// kernel may pick any thread that lets it through (async-signal-safe).
    pub fn forward_signal(&self, bits: u64) {
        self.forwarded_signals.fetch_or(bits, Ordering::AcqRel);
        self.request_look();
        let _ = self.poller.notify();
    }

    /// The signals forwarded here since the last call.
    pub fn take_forwarded_signals(&self) -> u64 {
        if self.forwarded_signals.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        self.forwarded_signals.swap(0, Ordering::AcqRel)
    }

    /// Were threads placed or shelved here that have not started yet (from any OS thread)?
    pub fn has_arrivals(&self) -> bool {
        self.inbox
            .lock()
            .is_ok_and(|inbox| !inbox.arrivals.is_empty())
            || self.shelved() > 0
    }

    /// Starts the threads other hubs placed here.
    #[cold]
    fn start_arrivals(&self, arrived: Vec<Arrival>) {
        for arrival in arrived {
            self.arriving.fetch_sub(1, Ordering::Relaxed);
            self.spawn_masked(arrival.green, arrival.stack, arrival.body, arrival.mask);
        }
    }

    /// Gives back a stack taken for a thread that was not made after all.
    pub fn put_stack(&self, stack: Stack) {
        self.stacks.borrow_mut().put(stack);
    }

    /// Makes `green` (not yet started) runnable on this hub, running `body` on `stack` (a
    /// reserved one: it may start on a resident one instead, see [`Hub::first_run`]).
    pub fn spawn(
        &'static self,
        green: &'static Green,
        stack: Stack,
        body: fn(&'static Green) -> usize,
    ) {
        self.spawn_masked(green, stack, body, self.current.get().sigmask.get());
    }

    #[inline(always)]
    fn spawn_masked(
        &self,
        green: &'static Green,
        stack: Stack,
        body: fn(&'static Green) -> usize,
        mask: masks::Bits,
    ) {
        self.adopt(green, stack, body, mask);
        self.run_queue.borrow_mut().push_back(green);
    }

    /// Makes `green` (not yet started) one of this hub's threads, as [`Hub::spawn`] but not
    /// runnable yet.
    #[inline(always)]
    fn adopt(
        &self,
        green: &'static Green,
        stack: Stack,
        body: fn(&'static Green) -> usize,
        mask: masks::Bits,
    ) {
        if stack.ready_to_run() {
            // Nothing fresh to touch (a resident stack, the program's, or the shared region of
            // copied stacks): made now, as a create+join pair then costs nothing more.
            self.give_tls(green);
            self.make_coroutine(green, stack, body);
        } else {
            // SAFETY: the thread has not started; nothing else refers to it.
            unsafe { *green.unstarted.get() = Some(Unstarted { stack, body }) };
        }
        self.count_in(green, mask);
    }

    /// Counts `green` (not started yet, its start in its block or its coroutine made) as
    /// one of this hub's threads.
    #[inline(always)]
    fn count_in(&self, green: &'static Green, mask: masks::Bits) {
        // A new thread starts with its creator's mask, as natively.
        self.masks.join(green, mask);
        self.alive
            .store(self.alive.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        slice::note_green();
        stats::thread_created();
    }

    /// A new thread's coroutine on this hub's shared region (`green::copied`): its first frame
    /// goes to its saved copy, the region's occupant undisturbed.
    #[cold]
    fn start_on_shared_stack(
        &self,
        green: &'static Green,
        stack: Stack,
        start: impl FnOnce(&GreenYielder, ()) -> usize + 'static,
    ) -> crate::green::GreenCoroutine {
        let Some(region) = self.region() else {
            crate::fatal!("a shared stack with no region")
        };
        // SAFETY: on this hub's OS thread; `make` only builds the coroutine on the region.
        let made = unsafe { region.start(green, || Coroutine::with_stack(stack, start)) };
        made.unwrap_or_else(|| crate::fatal!("no memory for a new green thread's stack copy"))
    }

    /// Puts the calling thread (green or root) to sleep until a waker presents `token` (from
    /// `Green::arm`, taken before the thread made itself findable) or until `deadline`
    /// (CLOCK_MONOTONIC ns). Returns true when the deadline woke it.
    pub fn park(
        &self,
        me: &'static Green,
        token: u64,
        on: WaitWord,
        deadline: Option<u64>,
    ) -> bool {
        stats::parked(on.reason());
        // For the dump: two plain stores (and a coarse clock read), nothing shared is written.
        me.waiting_on.store(on.0, Ordering::Relaxed);
        me.waiting_since
            .store(wait_record::ticks(), Ordering::Relaxed);
        me.timed_out.set(false);
        if let Some(deadline) = deadline {
            self.timers
                .borrow_mut()
                .push(deadline, me as *const Green as usize, token);
            me.timers_in_heap.set(me.timers_in_heap.get() + 1);
        }
        if me.is_root() {
            let twin = crate::patch::leave_twin();
            self.run_until_woken(me, token);
            self.masks.deliver(me);
            crate::patch::resume_twin(twin);
        } else {
            self.suspend(me);
        }
        me.timed_out.get()
    }

    /// Lets the other runnable green threads run, then returns; false when there were none.
    pub fn yield_now(&self) -> bool {
        let me = self.current.get();
        if me.is_root() {
            let twin = crate::patch::leave_twin();
            let ran = self.run_ready_once();
            self.masks.deliver(me);
            crate::patch::resume_twin(twin);
            return ran;
        }
        stats::parked(ParkReason::Yield);
        self.run_queue.borrow_mut().push_back(me);
        self.suspend(me);
        true
    }

    /// Ends the calling green thread now: its stack is discarded without unwinding (C frames
    /// live on it). Only `pthread_exit`'s path may call this, holding nothing that needs drop.
    pub fn exit_current(&self, retval: usize) -> ! {
        let me = self.current.get();
        debug_assert!(!me.is_root());
        me.retval.store(retval, Ordering::Release);
        me.exiting.set(true);
        self.suspend(me);
        crate::fatal!("an exited green thread was resumed")
    }

    /// The loop of a hub's own OS thread made only to run green threads (`GREENWORLD_HUBS`):
    /// its root waits for a wake nobody sends, so it runs the threads placed here as they
    /// become runnable and sleeps in its poller meanwhile, until the process ends.
    pub fn serve(&self) -> ! {
        self.program_root.store(false, Ordering::Relaxed);
        loop {
            let token = self.root.arm();
            self.park(self.root, token, WaitOn::Serving.word(), None);
        }
    }

    /// Parks the root until every green thread of this hub has finished.
    pub fn wait_all_done(&self) {
        self.program_root.store(false, Ordering::Relaxed);
        while self.alive.load(Ordering::Relaxed) > 0 {
            let token = self.root.arm();
            self.all_done_token.set(token);
            self.park(self.root, token, WaitOn::AllDone.word(), None);
        }
    }

    /// Held across `fork` (see `os::fork`): a pool thread waking a green thread of this hub
    /// must not be inside the inbox's lock when the child is made.
    pub fn lock_inbox(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// In a forked child, on the forking thread, with the inbox held since before the fork:
    /// schedule only that thread (trap 13; `os::fork` has retired the others: nothing can wake
    /// them). The parent's epoll instance and eventfd are replaced by the child's own, and
    /// pending timers and wake-ups are dropped.
    pub fn after_fork(&self, mut inbox: std::sync::MutexGuard<'_, Inbox>) {
        // Threads placed here by hubs the child does not have: retired with them (their
        // stacks are the parent's memory, left as they are).
        inbox.woken.clear();
        inbox.signals.clear();
        core::mem::forget(core::mem::take(&mut inbox.arrivals));
        core::mem::forget(core::mem::take(&mut inbox.shelf));
        self.unstarted_after_fork();
        drop(inbox);
        let me = self.current.get();
        self.run_queue.borrow_mut().clear();
        self.stacks.borrow_mut().after_fork();
        *self.timers.borrow_mut() = Timers::default();
        me.timers_in_heap.set(0);
        self.inbox_full.store(false, Ordering::Relaxed);
        self.watched.store(0, Ordering::Relaxed);
        self.all_done_token.set(0);
        self.look_requested.store(false, Ordering::Relaxed);
        self.masks.after_fork(me);
        self.dump_requested.store(false, Ordering::Relaxed);
        self.channel_ready.set(false);
        if me.is_root() {
            self.alive.store(0, Ordering::Relaxed);
        } else {
            // The root (the parent's `main`, parked in this loop) does not exist here: no wake
            // may reach it, and its loop must never return into its own code.
            self.root.retire();
            self.alive.store(1, Ordering::Relaxed);
            self.root_gone.set(true);
            self.program_root.store(false, Ordering::Relaxed);
        }
        if let Some(region) = self.region() {
            region.after_fork(me);
        }
        if let Err(e) = self.poller.reopen() {
            crate::fatal!("cannot make a poller in a forked child: {e}");
        }
        self.enlist_after_fork();
    }

    /// Registers `fd` with this hub's epoll, edge-triggered for both directions; its events
    /// reach [`Owners::io_ready`] with `key`.
    pub fn watch(&self, fd: libc::c_int, key: usize) -> std::io::Result<()> {
        self.poller.add_edge(fd, key)?;
        self.watched.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Unregisters `fd` (from any OS thread), before it is closed.
    pub fn unwatch(&self, fd: libc::c_int) {
        if self.poller.delete(fd).is_ok() {
            self.watched.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Wakes `green`, whose token was just taken by `Green::unpark`.
    #[inline]
    pub(crate) fn wake(&'static self, green: &'static Green) {
        if self.is_mine() {
            self.wake_here(green);
        } else {
            self.wake_from_afar(green);
        }
    }

    /// [`wake`](Hub::wake) on this hub's own OS thread.
    #[inline]
    pub(crate) fn wake_here(&self, green: &'static Green) {
        if !green.is_root() {
            self.run_queue.borrow_mut().push_back(green);
        } else {
            // Its loop checks its token after every step.
            let asked = self.turn.asked.load(Ordering::Relaxed);
            self.turn
                .asked
                .store(asked | slice::ROOT_WOKEN, Ordering::Relaxed);
        }
    }

    /// [`wake`](Hub::wake) from another OS thread: through the inbox.
    #[inline(never)]
    fn wake_from_afar(&'static self, green: &'static Green) {
        if let Some(here) = Hub::current() {
            here.note_woke_another();
        }
        if !green.is_root() {
            self.lock_inbox().woken.push(green);
            self.inbox_full.store(true, Ordering::Release);
        }
        self.note_woken_remotely();
        if let Err(e) = self.poller.notify() {
            crate::log!(Error, "cannot notify a hub: {e}");
        }
    }

    /// Gives the OS thread back to the hub loop until `me` is resumed. A green twin's call
    /// (`patch::Twin`) in progress is `me`'s, not the OS thread's: it is put aside meanwhile
    /// (the loop and the threads it resumes run outside it) and back once `me`'s handlers ran.
    /// When it may, `me` runs the next runnable threads itself first (`handoff`), and goes on
    /// without a switch if it was woken meanwhile.
    fn suspend(&self, me: &'static Green) {
        let twin = crate::patch::leave_twin();
        // Where the dump's backtrace of a parked thread starts (this frame, just above the
        // registers the switch saves, or the frames of the threads it hosts).
        me.switched_sp
            .store(wait_record::stack_pointer(), Ordering::Relaxed);
        if !self.hand_off(me) {
            let yielder = me.yielder.get();
            // SAFETY: `me` is the running coroutine of this hub (not the root), so its yielder
            // was set when it started and lives on its stack for as long as it runs.
            unsafe { (*yielder).suspend(()) };
        }
        self.masks.deliver(me);
        crate::patch::resume_twin(twin);
    }

    /// The hub loop, run by the root on its own stack until its wait `token` is over.
    fn run_until_woken(&self, root: &'static Green, token: u64) {
        let saved_errno = errno();
        self.checks_due_in.set(0);
        while self.root_gone.get() || root.is_parked_on(token) {
            if self.root_gone.get() && self.alive.load(Ordering::Relaxed) == 0 {
                // The forking green thread was this child's only thread, and it has ended.
                self.tls_home();
                // SAFETY: exit runs atexit handlers and ends the process, as glibc's last
                // thread does.
                unsafe { libc::exit(0) };
            }
            if self.checks_due_in.get() == 0 || self.run_queue.borrow().is_empty() {
                self.drain_inbox();
                self.fire_due_timers();
                self.look();
                if self.checks_due_in.get() == 0 && self.watched.load(Ordering::Relaxed) > 0 {
                    // Busy green threads must not starve I/O: look without blocking.
                    self.poll_events(Some(0));
                }
                self.checks_due_in.set(CHECK_EVERY);
            }
            self.checks_due_in.set(self.checks_due_in.get() - 1);
            let next = self.run_queue.borrow_mut().pop_front();
            match next {
                Some(green) => self.resume(green, root),
                None if self.root_gone.get() || root.is_parked_on(token) => {
                    let found = self.masks.deliver_idle()
                        || (Hub::several() && self.take_from_others())
                        || self.spin_for_work(root, token);
                    if !found {
                        self.wait_for_events();
                    }
                }
                None => break,
            }
        }
        self.tls_home();
        set_errno(saved_errno);
    }

    /// Runs what is runnable now (once each), for a yielding root.
    fn run_ready_once(&self) -> bool {
        let saved_errno = errno();
        self.drain_inbox();
        self.fire_due_timers();
        let ready = self.run_queue.borrow().len();
        for _ in 0..ready {
            let next = self.run_queue.borrow_mut().pop_front();
            if let Some(green) = next {
                self.resume(green, self.root);
            }
        }
        self.tls_home();
        set_errno(saved_errno);
        ready > 0
    }

    #[inline]
    fn drain_inbox(&self) {
        // A load first, inline: the common case (nothing from other OS threads) costs no
        // locked RMW and no call.
        if self.inbox_full.load(Ordering::Relaxed) {
            self.take_inbox();
        }
    }

    fn take_inbox(&self) {
        if !self.inbox_full.swap(false, Ordering::Acquire) {
            return;
        }
        let (woken, arrived, signals) = {
            let mut inbox = self.lock_inbox();
            let (arrived, signals) = if inbox.arrivals.is_empty() && inbox.signals.is_empty() {
                (Vec::new(), Vec::new())
            } else {
                (
                    core::mem::take(&mut inbox.arrivals),
                    core::mem::take(&mut inbox.signals),
                )
            };
            (core::mem::take(&mut inbox.woken), arrived, signals)
        };
        self.run_queue.borrow_mut().extend(woken);
        if !arrived.is_empty() {
            self.start_arrivals(arrived);
        }
        for (green, sig) in signals {
            if !green.is_live() {
                continue;
            }
            let hub = green.hub();
            if ptr::eq(hub, self) {
                (self.owners.signal_to)(self, green, sig);
            } else {
                // Taken from this hub's shelf by another (`steal`) since it was sent.
                hub.send_signal(green, sig);
            }
        }
    }

    #[inline]
    fn fire_due_timers(&self) {
        if !self.timers.borrow().is_empty() {
            self.fire_timers();
        }
    }

    fn fire_timers(&self) {
        let now = now_ns();
        loop {
            let (due, after) = {
                let mut timers = self.timers.borrow_mut();
                (timers.pop_due(now), timers.next_waiter())
            };
            let Some(timer) = due else { break };
            // The next one's wake reads its block: asked for now, it comes while this one's
            // wake runs (a burst of thousands of sleepers otherwise misses the cache on each).
            if let Some(after) = after {
                // SAFETY: as below, for the entry still in the timers.
                Green::prefetch_wake(unsafe { &*(after as *const Green) });
            }
            // SAFETY: entries name live blocks of this hub: a thread's entries are forgotten
            // before it finishes, and roots are never freed.
            let green = unsafe { &*(timer.waiter as *const Green) };
            green.timers_in_heap.set(green.timers_in_heap.get() - 1);
            if green.unpark(timer.token) {
                green.timed_out.set(true);
            }
        }
    }

    /// Blocks the OS thread in the poller until the next timer, an I/O event or a notify. A
    /// hub with free stacks' memory to give back (`StackPool::trim`) gives back one batch
    /// instead and only looks for events, so an event waits at most one batch.
    fn wait_for_events(&self) {
        if self.stacks.borrow_mut().trim() {
            self.poll_events(Some(0));
            return;
        }
        let next = self.timers.borrow().next_deadline();
        self.set_idle(true);
        // Another hub's shelf (`steal`) may want a look before the next timer.
        let look_in = self.shelf_to_watch();
        match (next, look_in) {
            (_, Some(0)) => {}
            (Some(deadline), look_in) => {
                let timeout = deadline.saturating_sub(now_ns());
                self.poll_events(Some(look_in.map_or(timeout, |ns| ns.min(timeout))));
                // A thread will run when its timer fires: a quiet spell after that is new.
                self.quiet_grace.set(DEADLOCK_GRACE_NS);
            }
            (None, Some(ns)) => {
                self.poll_events(Some(ns));
                self.quiet_grace.set(DEADLOCK_GRACE_NS);
            }
            (None, None) => self.wait_without_timer(),
        }
        self.set_idle(false);
    }

    /// Nothing runnable and no timer: only an event can wake the hub. The first such wait
    /// after anything happened lasts at most [`DEADLOCK_GRACE_NS`]; when it ends with nothing
    /// to do, the hub's owners are asked whether anything ever could wake it (every thread
    /// waiting on another is a deadlock, which they report). When a wait ends by itself
    /// ([`Quiet::Waits`]) the waits after that are as native, until something happens again;
    /// when they cannot tell yet ([`Quiet::Unsure`]) they are asked again after twice the wait.
    /// So a busy hub pays a bounded wait instead of an endless one, and the question is asked
    /// once per quiet spell (or a few times, further apart), never on the way to work.
    fn wait_without_timer(&self) {
        // Published before the wait, for the check another hub makes (`is_quiet`).
        self.quiet.store(true, Ordering::Release);
        let grace = self.quiet_grace.get();
        if grace == 0 {
            self.poll_events(None);
            self.quiet.store(false, Ordering::Relaxed);
            self.quiet_grace.set(DEADLOCK_GRACE_NS);
            return;
        }
        let whole = self.poll_events(Some(grace));
        // The common end of the wait (work came) is a look at the run queue.
        if self.run_queue.borrow().is_empty() {
            self.after_quiet_wait(grace, whole);
        } else {
            self.quiet_grace.set(DEADLOCK_GRACE_NS);
        }
        self.quiet.store(false, Ordering::Relaxed);
    }

    /// Still quiet while the owners look: two hubs whose grace waits end together would each
    /// see the other busy otherwise, and neither would ever say the deadlock. `whole`: the
    /// wait lasted the whole grace. Only then does an `Unsure` lengthen the next one: a wait
    /// that an event bringing no work ended early (a notify for a look, an edge for a
    /// direction nobody waits on, a signal) says nothing of how long the hub was quiet, and a
    /// few of them in a row took the grace to its cap in milliseconds, so a deadlock that
    /// formed after them was said only after [`QUIET_GRACE_MAX_NS`].
    #[cold]
    fn after_quiet_wait(&self, grace: u64, whole: bool) {
        if self.has_work() || self.root.current_token() == 0 {
            self.quiet_grace.set(DEADLOCK_GRACE_NS);
            return;
        }
        let next = match (self.owners.maybe_deadlocked)(self) {
            Quiet::Deadlocked => {
                (self.owners.deadlocked)(self);
                0
            }
            Quiet::Waits => 0,
            Quiet::Unsure if whole => grace.saturating_mul(2).min(QUIET_GRACE_MAX_NS),
            Quiet::Unsure => grace,
        };
        self.quiet_grace.set(next);
    }

    /// Waits for I/O events (up to `timeout_ns`) and wakes the green threads waiting on them.
    /// True when the whole timeout passed with no event, notify or signal.
    fn poll_events(&self, timeout_ns: Option<u64>) -> bool {
        let mut events = self.events.borrow_mut();
        let io_ready = self.owners.io_ready;
        // A few hundred descriptors' entries, nodes and blocks stay in the L2 between their
        // requests: the passes would only add instructions (30-50 an event).
        let many = self.watched.load(Ordering::Relaxed) >= PREFETCH_FROM_WATCHED;
        let io_prefetch = self.owners.io_prefetch;
        let prefetch = |events: &[libc::epoll_event]| {
            if many {
                io_prefetch(events);
            }
        };
        let result = self
            .poller
            .wait(&mut events, timeout_ns, prefetch, |event| {
                if event.key == CHANNEL_KEY {
                    self.channel_ready.set(true);
                    self.request_look();
                } else {
                    io_ready(event.key, event.readable, event.writable, event.exceptional);
                }
            });
        // An EINTR alone says nothing: a signal that nobody handles ends epoll_wait too (a
        // child's SIGCHLD, queued because the pool thread that forked it blocks everything,
        // wakes this thread and is then ignored). Only a handler seen by the trampoline
        // (which asks for a look) interrupts a waiting call.
        let timed_out = match result {
            Ok(n) => {
                self.poller_failures.set(0);
                n == Some(0)
            }
            Err(e) => {
                self.renew_poller(&e);
                false
            }
        };
        // The wait may have consumed a notify whose wake-up is still in the inbox: a waker finds
        // `notified` set by an earlier notify (not yet read) and skips writing, and this wait then
        // reads that earlier one. Drained now, before anything can block again (trap 12): a
        // look without blocking (`Some(0)`) followed by a blocking wait lost such a wake-up for
        // good (CPython's test_socket hung with a resolver call finished and its caller asleep).
        self.drain_inbox();
        self.look();
        timed_out
    }

    /// Prints the dumps asked for (at a look), from the root's loop only: never inside a green
    /// thread's hooked call (a safe point may be inside an allocator or the loader, and a dump
    /// allocates and asks the loader for names); there, the look is asked for again.
    fn serve_dumps(&self) {
        if self.in_green() {
            if self.dump_requested.load(Ordering::Relaxed) || self.channel_ready.get() {
                self.request_look();
            }
            return;
        }
        if self.dump_requested.load(Ordering::Relaxed)
            && self.dump_requested.swap(false, Ordering::AcqRel)
        {
            (self.owners.dump)(self, false);
        }
        if self.channel_ready.replace(false) {
            (self.owners.dump)(self, true);
        }
    }

    /// The poller's wait failed: only a program that closed or replaced our epoll with a raw
    /// system call (the hooks keep it out of reach otherwise) gets here. A wait that fails
    /// again at once would spin, so: a fresh poller, every descriptor registered again on its
    /// waiters' next try, one line; failing again and again, the process stops with one line.
    #[cold]
    fn renew_poller(&self, e: &std::io::Error) {
        const TRIES: u32 = 3;
        let failures = self.poller_failures.get() + 1;
        self.poller_failures.set(failures);
        if failures > TRIES {
            crate::fatal!("hub poller wait failed {TRIES} times in a row: {e}");
        }
        crate::log!(Error, "hub poller wait failed ({e}); using a fresh one");
        if let Err(e) = self.poller.renew() {
            crate::fatal!("cannot make a fresh hub poller: {e}");
        }
        self.watched.store(0, Ordering::Relaxed);
        (self.owners.poller_renewed)(self);
    }

    /// Asks the hub to call [`Owners::look`] when it next looks around (async-signal-safe).
    pub fn request_look(&self) {
        self.look_requested.store(true, Ordering::Release);
    }

    #[inline]
    fn look(&self) {
        if self.look_requested.load(Ordering::Relaxed)
            && self.look_requested.swap(false, Ordering::AcqRel)
        {
            (self.owners.look)(self);
            self.serve_dumps();
        }
    }

    /// Gives `green` private thread-locals (`green::tls`), and the root a place to keep its
    /// own while green threads run. False when memory is short.
    pub fn give_private_tls(&self, green: &'static Green) -> bool {
        if !self.root.tls.get().is_private() && !self.give_root_private_tls() {
            return false;
        }
        match tls::for_new_thread(&self.tls_kept) {
            Some(state) => {
                green.tls.set(state);
                true
            }
            None => false,
        }
    }

    #[cold]
    fn give_root_private_tls(&self) -> bool {
        match tls::for_root() {
            Some(state) => {
                self.root.tls.set(state);
                true
            }
            None => false,
        }
    }

    /// Installs the root's own thread-locals again, before it goes back to its own code.
    #[inline]
    fn tls_home(&self) {
        let resident = self.tls_resident.get();
        if !ptr::eq(resident, self.root) {
            // SAFETY: `resident`'s thread-locals are the installed ones; both states are private
            // (a green thread's is installed only when it has one, and then the root has one).
            unsafe { tls::switch(&resident.tls, &self.root.tls) };
            self.tls_resident.set(self.root);
        }
    }

    /// Switches to `green` until it parks, yields or ends. `from` runs this: the root, or a
    /// parked green thread that hosts (`handoff`), whose stack `green`'s suspend returns to.
    fn resume(&self, green: &'static Green, from: &'static Green) {
        // SAFETY: only this hub's OS thread touches the coroutine slot, and not re-entrantly:
        // `green` is suspended (the root's loop and a host only resume what they popped from
        // the run queue, and the host is never there while it hosts).
        let green = if unsafe { &*green.coroutine.get() }.is_none() {
            match self.first_run(green) {
                Some(green) => green,
                None => return,
            }
        } else {
            green
        };
        self.current.set(green);
        self.start_turn();
        self.install_tls_of(green);
        if green.shared_stack.get() {
            self.enter_shared_stack(green);
        }
        self.note_switch(green);
        self.prefetch_next();
        // SAFETY: this OS thread's errno (hubs are made on their own OS thread).
        unsafe { *self.errno_at = green.errno.get() };
        stats::switched();
        // SAFETY: as above.
        let coroutine = unsafe { &mut *green.coroutine.get() }.as_mut();
        let Some(coroutine) = coroutine else {
            crate::fatal!("resumed a green thread with no stack")
        };
        let result = coroutine.resume(());
        // SAFETY: as above.
        green.errno.set(unsafe { *self.errno_at });
        self.current.set(from);
        self.start_turn();
        self.note_return(from);
        match result {
            CoroutineResult::Return(retval) => {
                green.retval.store(retval, Ordering::Release);
                self.finish(green);
            }
            CoroutineResult::Yield(()) if green.exiting.get() => self.finish(green),
            CoroutineResult::Yield(()) => {}
        }
    }

    /// Asks the CPU for what the thread that will most likely run after the one being resumed
    /// (the run queue's head) touches first, while this one runs: with thousands of threads
    /// each on its own stack, every resume otherwise stalls on a TLB miss (each stack's page is
    /// under its own page-table page) and cache misses on its frames, its block and its DTV
    /// (`Green::prefetch_resume`). The block of the one after it is asked for too: reading
    /// where the head parked would otherwise stall on it here.
    #[inline]
    fn prefetch_next(&self) {
        let queue = self.run_queue.borrow();
        let Some(&next) = queue.front() else {
            return;
        };
        if let Some(&after) = queue.get(1) {
            after.prefetch_block();
        }
        next.prefetch_resume();
    }

    /// Installs `green`'s private thread-locals, if it has some and they are not the installed
    /// ones.
    #[inline]
    fn install_tls_of(&self, green: &'static Green) {
        let resident = self.tls_resident.get();
        if green.tls.get().is_private() && !ptr::eq(resident, green) {
            // SAFETY: the root's state is private whenever a green thread's is
            // (`give_private_tls`), and `resident`'s thread-locals are the installed ones.
            unsafe { tls::switch(&resident.tls, &green.tls) };
            self.tls_resident.set(green);
        }
    }

    /// What a thread made but not run yet takes at its first run when its creation found no
    /// resident stack for it (`spawn_masked`), so that nothing was touched for it before: its
    /// stack (see [`Hub::stack_to_start_on`]) and its private thread-locals, and its coroutine
    /// is made. A shelf's mark (`steal`) stands for the oldest thread still shelved here:
    /// that one starts (None: there is none left). Returns the thread to resume.
    #[cold]
    #[inline(never)]
    fn first_run(&self, green: &'static Green) -> Option<&'static Green> {
        let green = if ptr::eq(green, self.unstarted.mark) {
            let green = self.take_own_shelved()?;
            // SAFETY: as below.
            if unsafe { &*green.coroutine.get() }.is_some() {
                return Some(green);
            }
            green
        } else {
            green
        };
        // SAFETY: only this hub's OS thread touches a thread's start, once, at its first run.
        let Some(Unstarted { stack, body }) = (unsafe { (*green.unstarted.get()).take() }) else {
            crate::fatal!("resumed a green thread with no stack")
        };
        let stack = self.stack_to_start_on(green, stack);
        self.give_tls(green);
        self.install_tls_of(green);
        self.make_coroutine(green, stack, body);
        Some(green)
    }

    /// Gives a new thread its private thread-locals (`green::tls`), built on the OS thread it
    /// runs on (trap 17: a DTV points at its OS thread's static TLS blocks). When memory is
    /// short it shares its OS thread's, as said.
    #[inline]
    fn give_tls(&self, green: &'static Green) {
        if tls::private() && !self.give_private_tls(green) {
            crate::log!(
                Warn,
                "no memory for a green thread's own thread-locals: it shares its OS thread's"
            );
        }
    }

    /// Makes the coroutine of a thread not started yet, running `body` on `stack`.
    fn make_coroutine(
        &self,
        green: &'static Green,
        stack: Stack,
        body: fn(&'static Green) -> usize,
    ) {
        let start = move |yielder: &GreenYielder, ()| {
            green.yielder.set(yielder);
            green.hub().masks.deliver(green);
            body(green)
        };
        let coroutine = if stack.is_shared() {
            self.start_on_shared_stack(green, stack, start)
        } else {
            Coroutine::with_stack(stack, start)
        };
        // SAFETY: the thread has not started; only its hub's OS thread touches its coroutine
        // slot.
        unsafe { *green.coroutine.get() = Some(coroutine) };
    }

    /// The stack a thread starts on: a resident one of its reservation's size, when there is
    /// one and its reservation was not reported (`Green::settle_stack_on`), the reservation
    /// going back to its pool (no fresh page touched: 10 000 threads made in a row and each
    /// run to its end in turn all run on one stack); else its reservation, made ready.
    fn stack_to_start_on(&self, green: &'static Green, reserved: Stack) -> Stack {
        if self.stacks_returned.load(Ordering::Relaxed) {
            self.take_back_stacks();
        }
        let resident = self.stacks.borrow_mut().take_resident(&reserved);
        let stack = match resident {
            Some(resident) if green.settle_stack_on(resident.usable_low()) => {
                self.stack_done(reserved);
                resident
            }
            resident => {
                if let Some(resident) = resident {
                    self.stacks.borrow_mut().put(resident);
                }
                green.settle_stack();
                self.stacks.borrow_mut().ready(reserved)
            }
        };
        // In a burst of first runs, the next stacks are made ready on an idle CPU meanwhile.
        self.stacks
            .borrow_mut()
            .send_ahead(|| self.cpu_for_helper());
        stack
    }

    /// Would one more OS thread of the library's (`gw-stacks`, making stacks ready) run on a
    /// CPU no hub uses, rather than take turns with one? Only with fewer hubs than the
    /// process's CPUs: beside a hub merely idle for a moment (the second of two, handed
    /// threads one at a time by the first) it slowed both (`sleepers 10000 1 10` at two hubs:
    /// 41-52 ms against 36-38).
    fn cpu_for_helper(&self) -> bool {
        Hub::all().count() < idle_cpu::process_cpus()
    }

    /// Releases a finished thread's stack, timers and place in the counts, then hands it to
    /// its reaper ([`Owners::ended`]).
    fn finish(&self, green: &'static Green) {
        // SAFETY: the thread has finished or is suspended for good in pthread_exit; only this
        // hub touches its coroutine slot.
        let coroutine = unsafe { (*green.coroutine.get()).take() };
        if let Some(mut coroutine) = coroutine {
            if !coroutine.done() {
                // SAFETY: suspended in `exit_current`, whose Rust frames hold nothing that needs
                // dropping; the C frames below are abandoned as pthread_exit abandons them.
                unsafe { coroutine.force_reset() };
            }
            self.stack_done(coroutine.into_stack());
        }
        if ptr::eq(self.tls_resident.get(), green) {
            self.tls_home();
        }
        // SAFETY: the thread has run for the last time; its thread-locals are switched out.
        unsafe { tls::release(&self.tls_kept, green.tls.replace(tls::State::NONE)) };
        if green.shared_stack.get()
            && let Some(region) = self.region()
        {
            region.leave(green);
        }
        if green.timers_in_heap.get() > 0 {
            self.timers
                .borrow_mut()
                .forget(green as *const Green as usize);
            green.timers_in_heap.set(0);
        }
        self.masks.leave(green);
        self.alive
            .store(self.alive.load(Ordering::Relaxed) - 1, Ordering::Relaxed);
        stats::thread_ended();
        if self.alive.load(Ordering::Relaxed) == 0 {
            self.root.unpark(self.all_done_token.replace(0));
        }
        (self.owners.ended)(green);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static TEST_OWNERS: Owners = Owners {
        io_ready: |_, _, _, _| {},
        io_prefetch: |_| {},
        poller_renewed: |_| {},
        look: |_| {},
        ended: |_| {},
        run_handler: |_, _| {},
        signal_to: |_, _, _| {},
        made: |_| {},
        dump: |_, _| {},
        maybe_deadlocked: |_| Quiet::Waits,
        deadlocked: |_| {},
    };

    /// What `QUIET_OWNERS` answer a quiet hub, and what they saw when asked.
    static ANSWER: std::sync::Mutex<Quiet> = std::sync::Mutex::new(Quiet::Unsure);
    static ASKED_WHILE_QUIET: AtomicBool = AtomicBool::new(false);
    static ASKED: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);
    static SAID: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

    static QUIET_OWNERS: Owners = Owners {
        maybe_deadlocked: |hub| {
            ASKED.fetch_add(1, Ordering::Relaxed);
            ASKED_WHILE_QUIET.store(hub.is_quiet(), Ordering::Relaxed);
            *ANSWER.lock().unwrap()
        },
        deadlocked: |_| {
            SAID.fetch_add(1, Ordering::Relaxed);
        },
        ..TEST_OWNERS
    };

    #[test]
    fn a_quiet_hub_asks_again_later_when_unsure_and_no_more_when_a_wait_ends_by_itself() {
        std::thread::spawn(|| {
            let hub = Hub::get_or_create(&QUIET_OWNERS).unwrap();
            // The root waits on something (as `main` in a join), so the question is asked.
            let _token = hub.root.arm();
            *ANSWER.lock().unwrap() = Quiet::Unsure;
            hub.wait_without_timer();
            assert_eq!(ASKED.load(Ordering::Relaxed), 1);
            // Still quiet while asked: another hub asking at the same moment must see it so.
            assert!(ASKED_WHILE_QUIET.load(Ordering::Relaxed));
            assert!(!hub.is_quiet());
            assert_eq!(hub.quiet_grace.get(), 2 * DEADLOCK_GRACE_NS);
            // Unsure again: the next wait is longer still, up to the cap.
            hub.quiet_grace.set(QUIET_GRACE_MAX_NS - 1);
            hub.after_quiet_wait(hub.quiet_grace.get(), true);
            assert_eq!(hub.quiet_grace.get(), QUIET_GRACE_MAX_NS);
            // Deadlocked: said, then waits as natively (no more questions).
            *ANSWER.lock().unwrap() = Quiet::Deadlocked;
            hub.quiet_grace.set(DEADLOCK_GRACE_NS);
            hub.wait_without_timer();
            assert_eq!(ASKED.load(Ordering::Relaxed), 3);
            assert_eq!(SAID.load(Ordering::Relaxed), 1);
            assert_eq!(hub.quiet_grace.get(), 0);
            // A wait with a timer starts a new quiet spell.
            hub.timers.borrow_mut().push(
                now_ns() + 1_000_000,
                hub.root as *const Green as usize,
                0,
            );
            hub.wait_for_events();
            assert_eq!(hub.quiet_grace.get(), DEADLOCK_GRACE_NS);
        })
        .join()
        .unwrap();
    }

    /// Owners that are never sure, for a hub whose wait an event ends early.
    static UNSURE_OWNERS: Owners = Owners {
        maybe_deadlocked: |_| Quiet::Unsure,
        ..TEST_OWNERS
    };

    #[test]
    fn an_unsure_answer_after_a_wait_cut_short_leaves_the_grace_as_it_was() {
        std::thread::spawn(|| {
            let hub = Hub::get_or_create(&UNSURE_OWNERS).unwrap();
            let _token = hub.root.arm();
            // A notify that brings no work (a look asked for) ends the wait at once: the hub
            // was not quiet for a grace, so it waits as long the next time, not twice.
            hub.poller.notify().unwrap();
            hub.wait_without_timer();
            assert_eq!(hub.quiet_grace.get(), DEADLOCK_GRACE_NS);
        })
        .join()
        .unwrap();
    }

    /// A parked green thread of `hub` (never run: only its wake-up is under test).
    fn parked_on(hub: &'static Hub) -> (&'static Green, u64) {
        let green: &'static Green = Box::leak(Box::new(Green::dead()));
        green.set_hub_ptr(hub as *const Hub as *const ());
        let token = green.arm();
        (green, token)
    }

    /// Wakes `green` from another OS thread, as a pool thread does when its call is done.
    fn wake_from_another_thread(green: &'static Green, token: u64) {
        std::thread::spawn(move || assert!(green.unpark(token)))
            .join()
            .unwrap();
    }

    #[test]
    fn a_poll_that_consumes_a_notify_leaves_no_wake_up_in_the_inbox() {
        std::thread::spawn(|| {
            let hub = Hub::get_or_create(&TEST_OWNERS).unwrap();
            // A first wake-up from another thread notifies; the hub drains it before it polls,
            // so that notify is still unread in the eventfd.
            let (first, token) = parked_on(hub);
            wake_from_another_thread(first, token);
            hub.drain_inbox();
            assert_eq!(
                hub.run_queue
                    .borrow_mut()
                    .pop_front()
                    .map(|g| g as *const Green),
                Some(first as *const Green)
            );
            // A second one finds the notify pending and does not write again.
            let (second, token) = parked_on(hub);
            wake_from_another_thread(second, token);
            // The poll reads the first notify: the second wake-up must be runnable after it,
            // or the next blocking wait (nothing left to notify it) sleeps for good.
            hub.poll_events(Some(0));
            assert_eq!(
                hub.run_queue
                    .borrow_mut()
                    .pop_front()
                    .map(|g| g as *const Green),
                Some(second as *const Green),
                "a wake-up stayed in the inbox after a poll consumed its notification"
            );
        })
        .join()
        .unwrap();
    }
}
