//! Green threads: the control block every hooked pthread function works on, and the tokens
//! that make waking one exact.
//!
//! A green thread parks with a fresh token and is woken only by whoever presents that token, so
//! a stale timer or a late waker can never wake it out of a later, unrelated wait.

pub mod copied;
pub mod handoff;
pub mod helper;
pub mod stack;
pub mod table;
pub mod tls;

use core::cell::{Cell, UnsafeCell};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use corosensei::{Coroutine, Yielder};
use libc::c_int;
use stack::Stack;
use std::sync::Mutex;

pub type GreenCoroutine = Coroutine<(), (), usize, Stack>;
pub type GreenYielder = Yielder<(), ()>;

/// Where a green thread stands with respect to `pthread_join`/`pthread_detach`.
#[derive(Clone, Copy)]
pub enum Join {
    Joinable,
    Detached,
    /// A joiner is parked with this token.
    Waiting {
        joiner: &'static Green,
        token: u64,
    },
    /// Finished; the return value waits for a joiner.
    Done,
}

/// The usable stack of a green thread, as `pthread_getattr_np` reports it.
#[derive(Clone, Copy, Debug, Default)]
pub struct StackInfo {
    pub low: usize,
    pub size: usize,
    pub guard: usize,
}

/// What a green thread made but not run yet starts with, at its first run (`Hub::resume`).
pub struct Unstarted {
    /// Its reserved stack (see `stack`): it runs on it, or on a resident one of the same size.
    pub stack: Stack,
    /// What it runs on its stack.
    pub body: fn(&'static Green) -> usize,
}

/// Where a green thread's stack stands, in the low bits of `Green::stack_word` (stacks are
/// 16-byte aligned): not settled yet (it may start on another than its reserved one)...
const STACK_UNSETTLED: usize = 0;
/// ...its reserved stack was reported (`pthread_getattr_np`) before it ran: it runs on it...
const STACK_PINNED: usize = 1;
/// ...it runs (or ran) on the stack whose lowest usable address is the word's other bits.
const STACK_SETTLED: usize = 2;
const STACK_STATE_BITS: usize = 3;

impl StackInfo {
    pub fn of(stack: &Stack) -> StackInfo {
        StackInfo {
            low: stack.usable_low(),
            size: stack.usable(),
            guard: stack.guard(),
        }
    }
}

/// A set of CPUs, as a `cpu_set_t` holds it (1 024 bits).
pub type CpuMask = [u64; 16];

/// A green thread's control block (or a hub's root: the OS thread's own stack, which runs the
/// hub loop when it waits). Its address is the green thread's `pthread_t`.
///
/// In declared order, on 64-byte lines: every field a wait, its wake and the resume touch
/// comes first (`coroutine` to `shared_stack`, four lines), the rest after. With a thousand
/// threads parked on sockets each request meets a cold block; in the compiler's own order the
/// hot words lay on seven of its eight lines, each a cache miss (issue 15, echo at 1 000
/// connections).
#[repr(C, align(64))]
pub struct Green {
    pub(crate) coroutine: UnsafeCell<Option<GreenCoroutine>>,
    /// The token of the current wait, 0 when not parked.
    park_token: AtomicU64,
    /// The last token this block handed out (`arm`): tokens are told apart per block, and a
    /// table slot keeps counting across the threads it holds (`table::remove`), so a stale
    /// waker or timer of an earlier thread in the slot never matches a later wait.
    pub(crate) last_token: AtomicU64,
    /// Its hub, opaque here: the hub module, a layer above, gives it its type (`Green::hub`).
    /// Atomic: a hub that takes a thread not started yet from another's shelf (`hub::steal`)
    /// writes it while the creator's hub may read it.
    hub: AtomicPtr<()>,
    pub(crate) yielder: Cell<*const GreenYielder>,
    /// The number of the interruptible wait the thread is in (0: none); see `signal::interruptibly`.
    pub(crate) interrupt_seq: Cell<u64>,
    /// That wait's record (`signal::Interrupt`, on this thread's stack) while the thread is on
    /// its OS thread's list of interruptible waits (null: not on it), and its neighbours there
    /// (older, newer): the list is threaded through the waiters themselves, no allocation.
    pub(crate) interrupt_at: Cell<*const ()>,
    pub(crate) interrupt_older: Cell<*const Green>,
    pub(crate) interrupt_newer: Cell<*const Green>,
    /// What it waits on while parked (`waiting::WaitOn::word`; 0: never parked) and since when
    /// (`waiting::ticks`), for the dump: plain stores by its own hub, read by any OS thread.
    pub(crate) waiting_on: AtomicU64,
    pub(crate) waiting_since: AtomicU64,
    /// Its stack pointer when it last switched out: where the dump's backtrace starts.
    pub(crate) switched_sp: AtomicUsize,
    /// The thread's signal mask (signals 1..=64); see `signal::mask`.
    pub(crate) sigmask: Cell<u64>,
    /// Signals sent to this very thread (`pthread_kill`) and not yet handled or taken. Atomic:
    /// its creator's hub may add one while another hub takes it, not started yet, from that
    /// hub's shelf (`hub::steal`); it is then handled at the thread's next switch there.
    pub(crate) pending: AtomicU64,
    /// Its thread-locals while switched out (private mode; see `tls`).
    pub(crate) tls: Cell<tls::State>,
    /// Where its stack stands ([`STACK_SETTLED`] and the others), and once settled, the
    /// lowest usable address of the stack it runs on (of its reserved one's size and guard).
    stack_word: AtomicUsize,
    /// The stack reserved for it at its creation, which it reports until it starts.
    reserved: StackInfo,
    /// errno while switched out (trap 7: every green thread has its own).
    pub(crate) errno: Cell<c_int>,
    /// Owner id for mutexes that track their owner: never a kernel thread id (bit 30 set).
    pub(crate) id: Cell<i32>,
    /// Timer entries that still name this thread (stale ones included).
    pub(crate) timers_in_heap: Cell<u32>,
    live: AtomicBool,
    root: bool,
    pub(crate) timed_out: Cell<bool>,
    /// `pthread_exit` was called: the hub discards the stack instead of resuming it.
    pub(crate) exiting: Cell<bool>,
    /// It runs on its hub's shared stack region (`GREENWORLD_STACK_COPY`; see `copied`).
    pub(crate) shared_stack: Cell<bool>,
    /// The signals it waits for in `sigwait` (and the like) now.
    pub(crate) sigwaiting: Cell<u64>,
    pub(crate) retval: AtomicUsize,
    pub(crate) join: Mutex<Join>,
    /// This thread's pthread_key values (trap 7): (key, value), few per thread.
    pub(crate) keys: UnsafeCell<Vec<(libc::pthread_key_t, *mut libc::c_void)>>,
    pub(crate) name: Mutex<[u8; 16]>,
    /// Its stack and body until its first run (its hub's thread only).
    pub(crate) unstarted: UnsafeCell<Option<Unstarted>>,
    /// The thread's entry, called once on its own stack.
    pub(crate) entry: Cell<Option<Entry>>,
    /// The return address of the `pthread_create` call that made it (0: not known).
    pub(crate) created_at: usize,
    /// Its stack bytes while another thread occupies that region.
    pub(crate) copied: Cell<copied::Saved>,
    /// `thread_local` destructors registered by it (`__cxa_thread_atexit_impl`), run at its
    /// end, last registered first.
    pub(crate) tls_dtors: UnsafeCell<Vec<(crate::real::KeyDestructor, *mut libc::c_void)>>,
    /// The CPUs it may run on as it reports them (`thread::affinity`: kept, never applied; a
    /// mask is never freed); null: its OS thread's.
    pub(crate) affinity: AtomicPtr<CpuMask>,
}

/// How much of a parked thread's stack above where it switched out its resume returns through
/// before the program's code runs again (the park's, the wait's and the hooked call's frames).
const RESUME_BYTES: usize = 1024;

// The words of a wait, its wake and the resume stay on the block's first four lines.
const _: () = assert!(core::mem::offset_of!(Green, shared_stack) < 256);

/// What a green thread runs: the C start routine (POSIX or C11) and its argument.
#[derive(Clone, Copy, Debug)]
pub enum Entry {
    Posix(crate::real::StartRoutine, *mut libc::c_void),
    C11(crate::real::C11Start, *mut libc::c_void),
}

// SAFETY: the non-atomic fields (Cells, UnsafeCells) are touched only by the OS thread of the
// hub the green thread belongs to (green threads never migrate: trap 8); what other OS threads
// touch (live, hub, pending, park_token, retval, join, name, affinity, and the dump's waiting_*, switched_sp) is atomic
// or behind a Mutex. A dump printed by another hub also reads `id`, `entry`, `reserved` and `created_at`, which
// are written once, before the thread can be found in the table.
unsafe impl Sync for Green {}
// SAFETY: as above; a Green is only ever shared by reference, never moved across threads.
unsafe impl Send for Green {}

/// The next token of a block, from its own count, not a process-wide one: no locked RMW on a
/// line every hub shares at each wait. Only the block's own hub's OS thread arms it, but a
/// signal handler that waits may interrupt an `arm` there: the increment is one instruction
/// (unlocked `xadd`), which a signal cannot split.
#[inline]
fn next_token(last: &AtomicU64) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let mut value = 1u64;
        // SAFETY: one read-modify-write of the atomic's own memory; atomic with respect to this
        // OS thread (its signal handlers included), the only one that arms this block.
        unsafe {
            core::arch::asm!("xadd qword ptr [{at}], {value}", at = in(reg) last.as_ptr(),
                value = inout(reg) value, options(nostack));
        }
        value + 1
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        last.fetch_add(1, Ordering::Relaxed) + 1
    }
}

impl Green {
    fn new(root: bool, hub: *const (), stack: StackInfo, entry: Option<Entry>) -> Green {
        Green {
            live: AtomicBool::new(true),
            root,
            id: Cell::new(0),
            interrupt_seq: Cell::new(0),
            interrupt_at: Cell::new(core::ptr::null()),
            interrupt_older: Cell::new(core::ptr::null()),
            interrupt_newer: Cell::new(core::ptr::null()),
            hub: AtomicPtr::new(hub as *mut ()),
            coroutine: UnsafeCell::new(None),
            yielder: Cell::new(core::ptr::null()),
            errno: Cell::new(0),
            sigmask: Cell::new(0),
            pending: AtomicU64::new(0),
            sigwaiting: Cell::new(0),
            park_token: AtomicU64::new(0),
            last_token: AtomicU64::new(0),
            timed_out: Cell::new(false),
            timers_in_heap: Cell::new(0),
            exiting: Cell::new(false),
            retval: AtomicUsize::new(0),
            join: Mutex::new(Join::Joinable),
            keys: UnsafeCell::new(Vec::new()),
            name: Mutex::new([0; 16]),
            reserved: stack,
            stack_word: AtomicUsize::new(stack.low | STACK_SETTLED),
            unstarted: UnsafeCell::new(None),
            entry: Cell::new(entry),
            waiting_on: AtomicU64::new(0),
            waiting_since: AtomicU64::new(0),
            switched_sp: AtomicUsize::new(0),
            created_at: 0,
            shared_stack: Cell::new(false),
            copied: Cell::new(copied::Saved::NONE),
            tls: Cell::new(tls::State::NONE),
            tls_dtors: UnsafeCell::new(Vec::new()),
            affinity: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// Makes a freed table slot (a [`Green::dead`] block) a new green thread's block, in place:
    /// only what a new thread has other than a dead block is written, since building a whole
    /// block and moving it into the slot cost two copies of it (a tenth of a spawn and join).
    /// `created_at`: the return address of its `pthread_create` call (0: not known), for the
    /// dump. `stack`: its reserved stack, which it may still trade for a resident one at its
    /// first run (`settled`: never, the program's own memory). `live` goes true last, for
    /// `table::lookup`.
    ///
    /// # Safety
    /// `slot` holds a dead block that nothing else writes (stale handles and timer entries
    /// may still read its atomics, so no `&mut` is made of it).
    pub(crate) unsafe fn revive(
        slot: *mut Green,
        hub: *const (),
        stack: StackInfo,
        settled: bool,
        entry: Entry,
        detached: bool,
        created_at: usize,
    ) {
        // SAFETY: per our contract the plain fields are ours to write; the rest go through
        // their cells.
        unsafe {
            (&raw mut (*slot).reserved).write(stack);
            (&raw mut (*slot).created_at).write(created_at);
        }
        // SAFETY: a valid block (per our contract).
        let green = unsafe { &*slot };
        debug_assert!(!green.root && !green.live.load(Ordering::Relaxed));
        debug_assert_eq!(
            stack.low & STACK_STATE_BITS,
            0,
            "stacks are 16-byte aligned"
        );
        let state = if settled {
            STACK_SETTLED
        } else {
            STACK_UNSETTLED
        };
        green.stack_word.store(stack.low | state, Ordering::Relaxed);
        green.set_hub_ptr(hub);
        green.entry.set(Some(entry));
        if detached {
            *green.join.lock().unwrap_or_else(|e| e.into_inner()) = Join::Detached;
        }
        green.live.store(true, Ordering::Release);
    }

    /// A hub's root: the OS thread itself.
    pub fn root() -> Green {
        Green::new(true, core::ptr::null(), StackInfo::default(), None)
    }

    /// A freed table slot.
    pub fn dead() -> Green {
        let g = Green::new(false, core::ptr::null(), StackInfo::default(), None);
        g.live.store(false, Ordering::Relaxed);
        g
    }

    pub fn is_root(&self) -> bool {
        self.root
    }

    /// The usable stack of the thread, as `pthread_getattr_np` reports it, from any OS thread.
    /// Asked before the thread started, it is the reserved one, and the thread then runs on
    /// it (it may no longer start on another): what is reported is where it runs.
    pub fn stack(&self) -> StackInfo {
        let mut word = self.stack_word.load(Ordering::Acquire);
        if word & STACK_STATE_BITS == STACK_UNSETTLED {
            word = match self.stack_word.compare_exchange(
                word,
                word | STACK_PINNED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => word | STACK_PINNED,
                Err(now) => now,
            };
        }
        StackInfo {
            low: word & !STACK_STATE_BITS,
            ..self.reserved
        }
    }

    /// The stack the thread runs on, once it has started (None before: nothing is asked of
    /// it, unlike [`Green::stack`]); from any OS thread.
    pub fn started_stack(&self) -> Option<StackInfo> {
        let word = self.stack_word.load(Ordering::Acquire);
        (word & STACK_STATE_BITS == STACK_SETTLED).then_some(StackInfo {
            low: word & !STACK_STATE_BITS,
            ..self.reserved
        })
    }

    /// At the thread's first run, by its hub: may it start on the stack whose lowest usable
    /// address is `other_low` (of its reserved one's size and guard) instead? True: it must,
    /// and reports it from now on. False: its reserved stack was reported before (or is the
    /// program's own): it starts on that, settled by this call.
    pub(crate) fn settle_stack_on(&self, other_low: usize) -> bool {
        let unsettled = self.reserved.low | STACK_UNSETTLED;
        if self
            .stack_word
            .compare_exchange(
                unsettled,
                other_low | STACK_SETTLED,
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            return true;
        }
        self.settle_stack();
        false
    }

    /// At the thread's first run, by its hub: it starts on its reserved stack.
    pub(crate) fn settle_stack(&self) {
        let settled = self.reserved.low | STACK_SETTLED;
        if self.stack_word.load(Ordering::Relaxed) != settled {
            self.stack_word.store(settled, Ordering::Release);
        }
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Marks a slot as gone: its handle now answers ESRCH and it refuses every wake.
    pub(crate) fn retire(&self) {
        self.live.store(false, Ordering::Release);
        self.park_token.store(0, Ordering::Release);
    }

    /// The hub pointer, null for a freed slot.
    #[inline]
    pub(crate) fn hub_ptr(&self) -> *const () {
        self.hub.load(Ordering::Relaxed)
    }

    pub(crate) fn set_hub_ptr(&self, hub: *const ()) {
        self.hub.store(hub as *mut (), Ordering::Relaxed);
    }

    /// This thread's `pthread_t`.
    pub fn handle(&'static self) -> libc::pthread_t {
        self as *const Green as libc::pthread_t
    }

    /// Starts a wait: returns the token a waker must present. Called by the thread itself,
    /// before it makes itself findable by wakers.
    pub(crate) fn arm(&self) -> u64 {
        let token = next_token(&self.last_token);
        self.park_token.store(token, Ordering::Release);
        token
    }

    /// Asks the CPU for the words a timer's wake of this thread touches (`Hub::fire_timers`),
    /// and where it parked (read to prefetch its stack before its resume).
    #[inline]
    pub(crate) fn prefetch_wake(&self) {
        for field in [
            &self.park_token as *const AtomicU64 as usize,
            &self.hub as *const AtomicPtr<()> as usize,
            self.timers_in_heap.as_ptr() as usize,
            &self.switched_sp as *const AtomicUsize as usize,
        ] {
            crate::sys::prefetch(field);
        }
    }

    /// Asks the CPU for the block's first four lines (the words of a wait, its wake and the
    /// resume: see [`Green`]), ahead of a resume that would otherwise meet them cold.
    #[inline]
    pub(crate) fn prefetch_block(&self) {
        let at = self as *const Green as usize;
        for line in 0..4 {
            crate::sys::prefetch(at + line * 64);
        }
    }

    /// Asks the CPU for what a resume of this thread touches first, where it parked: the
    /// words the switch saved (just below its recorded stack pointer), the frames its park
    /// returns through up to the hooked call (about 0.8 KiB above it; every other line: the
    /// L2's pair prefetch fetches the lines between), and its DTV (`tls::prefetch_dtv`).
    #[inline]
    pub(crate) fn prefetch_resume(&self) {
        let sp = self.switched_sp.load(Ordering::Relaxed);
        if sp != 0 {
            crate::sys::prefetch(sp.wrapping_sub(64));
            for line in 0..RESUME_BYTES / 128 + 1 {
                crate::sys::prefetch(sp.wrapping_sub(128).wrapping_add(line * 128));
            }
        }
        tls::prefetch_dtv(&self.tls);
    }

    /// The token of the wait the thread is in now (0 when not waiting).
    pub(crate) fn current_token(&self) -> u64 {
        self.park_token.load(Ordering::Acquire)
    }

    /// Still waiting on `token`?
    pub(crate) fn is_parked_on(&self, token: u64) -> bool {
        self.park_token.load(Ordering::Acquire) == token
    }

    /// Ends the wait `token` names, if the thread is still in it; from any OS thread. Returns
    /// whether this call ended it: then the caller must make the thread run again (see
    /// `Green::unpark`, by the hub).
    #[inline]
    pub(crate) fn take_token(&self, token: u64) -> bool {
        token != 0
            && self
                .park_token
                .compare_exchange(token, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// [`take_token`](Green::take_token) where no other OS thread can take `token` meanwhile
    /// (see `park::Waker::of`): a load and a store, not a locked compare-and-swap.
    #[inline]
    pub(crate) fn take_token_here(&self, token: u64) -> bool {
        let taken = token != 0 && self.park_token.load(Ordering::Relaxed) == token;
        if taken {
            self.park_token.store(0, Ordering::Release);
        }
        taken
    }
}
