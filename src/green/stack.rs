//! Green-thread stacks: large, lazily committed, with a generous guard below each (trap 14),
//! carved from big arenas and pooled per hub, because a fresh `mmap` + `mprotect` per thread
//! costs microseconds and two VMAs.
//!
//! A thread gets its stack in two steps. `pthread_create` *reserves* one
//! ([`StackPool::reserve`]): address space only, so that a stack that cannot be had fails the
//! create with EAGAIN, as glibc's `mmap` does, but no page of it is touched (no guard either:
//! a guard's page-table page is fresh memory too). At its first run the thread starts on a
//! stack whose pages are resident ([`StackPool::take_resident`]: the one the last thread
//! finished on), giving its reservation back, or else on the reserved one, made ready then
//! ([`StackPool::ready`]). Threads made in a batch and not yet run then hold no memory, and
//! no-op threads run one after another on one hot stack.
//!
//! Guards are installed with `MADV_GUARD_INSTALL` (Linux 6.13+), which marks pages as faulting
//! without splitting the arena's VMA: live threads are then bounded by address space and
//! memory, not by `vm.max_map_count`. On older kernels the guard is an `mprotect(PROT_NONE)`,
//! which costs two VMAs per stack and so caps live threads near 32 000 at the default
//! `vm.max_map_count` of 65 530, as it caps native pthreads.

use super::handoff::Handoff;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use corosensei::stack::StackPointer;
use std::sync::Arc;

/// Guard below every stack we map. One 4 KiB page can be jumped by a large frame, silently
/// corrupting the neighbour; 64 KiB of address space costs nothing committed.
pub const GUARD: usize = 64 << 10;
/// Address space reserved at a time for stacks (lazily committed).
const ARENA_BYTES: usize = 512 << 20;
/// Free stacks a hub keeps with their touched pages; beyond this, freed stacks' memory goes
/// back to the kernel (their address space stays in the pool), [`BATCH`] at a time, when the
/// hub has nothing else to do ([`StackPool::trim`]): giving it back costs about 1.3 µs a stack
/// (the kernel's walk of its page tables), which a burst of ending threads (10 000 sleepers
/// ending together) would otherwise pay in line, delaying the threads still running.
const HOT_LIMIT: usize = 1024;
/// Free stacks with their touched pages beyond which a hub that is never idle gives memory
/// back as threads end, [`BATCH`] at a time, as it did before [`StackPool::trim`].
const HOT_CAP: usize = 16 * HOT_LIMIT;
/// Stacks handled by one system call: carved ahead of need (their guards installed and their
/// top pages committed together) when the pool has none of the size asked, and given back
/// together when the hot ones are too many (`process_madvise` over a vector of ranges).
const BATCH: usize = 32;
/// Stacks made ready ahead on `gw-stacks` ([`Ahead`]) a hub keeps ready or out at most.
const AHEAD: usize = 2 * BATCH;
/// How long `gw-stacks` waits for the hub's next run before it stops.
const LINGER_NS: u64 = 200_000;
/// Linux's MADV_GUARD_INSTALL (6.13+), not yet in the libc crate.
const MADV_GUARD_INSTALL: libc::c_int = 102;
/// Linux's MADV_POPULATE_WRITE (5.14+).
const MADV_POPULATE_WRITE: libc::c_int = 23;
/// Linux's PIDFD_SELF_THREAD_GROUP (6.15+): `process_madvise` on the calling process, with no
/// descriptor of our own to keep (nor to carry, wrong, into a forked child).
const PIDFD_SELF: libc::c_int = -10001;

static GUARD_BY_MPROTECT: AtomicBool = AtomicBool::new(false);
/// `process_madvise` refused us once (an older kernel): one `madvise` per range from then on.
static NO_VECTORED_ADVICE: AtomicBool = AtomicBool::new(false);

/// The page size, asked of the kernel once: every `pthread_create` rounds its stack and guard
/// sizes to it, and `sysconf` costs about 50 instructions a call (a tenth of a spawn's own).
fn page_size() -> usize {
    static CACHED: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);
    let cached = CACHED.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let size = if size > 0 { size as usize } else { 4096 };
    CACHED.store(size, Ordering::Relaxed);
    size
}

fn round_to_page(n: usize, page: usize) -> Option<usize> {
    Some(n.checked_add(page - 1)? & !(page - 1))
}

/// How far a stack is from being run on (ordered: each has what the ones before have).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum State {
    /// Address space only: no guard yet, nothing touched (a reservation just carved).
    Bare,
    /// Guard in place, no memory resident (given back to the kernel, or never touched).
    Guarded,
    /// Guard in place and its top pages (most likely) resident: a thread ran on it, or it was
    /// made ready ahead. Reused first; a stack not resident costs fresh pages when run on.
    Resident,
    /// Memory the program lent (`pthread_attr_setstack`): never pooled.
    Lent,
}

/// A green thread's stack: a slice of one of the hub's arenas (returned to the pool when the
/// thread ends, never unmapped), or memory the program handed over with
/// `pthread_attr_setstack`.
pub struct Stack {
    /// Lowest address of the region, guard included.
    low: usize,
    /// Bytes from `low` to the top.
    len: usize,
    /// Bytes of guard at the bottom.
    guard: usize,
    state: State,
    /// The hub's shared region of copied stacks (`green::copied`), which many threads use.
    shared: bool,
    /// The hub whose pool it came from, when another hub runs its thread (0: the hub that
    /// ends the thread keeps it). Opaque here: the hub gives it back (see `Hub::place`).
    home: usize,
}

impl Stack {
    /// Where the stack goes back to when its thread ends (0: the pool of the hub it ran on).
    pub fn home(&self) -> usize {
        self.home
    }

    pub fn set_home(&mut self, home: usize) {
        self.home = home;
    }

    /// Wraps memory the program gave with `pthread_attr_setstack`.
    ///
    /// # Safety
    /// `[addr, addr + size)` must be writable memory that stays valid and unused by anything
    /// else until the green thread running on it has ended.
    pub unsafe fn borrowed(addr: usize, size: usize) -> Option<Stack> {
        let top = addr.checked_add(size)? & !15;
        let low = addr.checked_add(15)? & !15;
        (top > low + 4096).then_some(Stack {
            low,
            len: top - low,
            guard: 0,
            state: State::Lent,
            shared: false,
            home: 0,
        })
    }

    /// A view of a hub's shared region of copied stacks (`green::copied::Region::stack`).
    pub(crate) fn shared(low: usize, len: usize, guard: usize) -> Stack {
        Stack {
            low,
            len,
            guard,
            // Never pooled, and ready to run on at once.
            state: State::Lent,
            shared: true,
            home: 0,
        }
    }

    /// Is this a hub's shared region (`green::copied`)?
    #[inline]
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Usable bytes (guard excluded).
    pub fn usable(&self) -> usize {
        self.len - self.guard
    }

    /// Lowest usable address.
    pub fn usable_low(&self) -> usize {
        self.low + self.guard
    }

    pub fn guard(&self) -> usize {
        self.guard
    }

    /// Can a thread run on it as it is (no guard to install, its top pages resident, or the
    /// program's own memory)? Then nothing is gained by starting on another.
    pub fn ready_to_run(&self) -> bool {
        self.state >= State::Resident
    }

    fn fits(&self, size: usize, guard: usize) -> bool {
        self.usable() == size && self.guard == guard
    }
}

// SAFETY: base() is the top of a region this Stack owns (or was lent for the thread's life),
// limit() its lowest address including the guard; both are 16-byte aligned (page-aligned when
// carved, rounded when borrowed).
unsafe impl corosensei::stack::Stack for Stack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.low + self.len).expect("stack top is never null")
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.low).expect("stack bottom is never null")
    }
}

/// A hub's stacks: free ones for reuse, and the arena new ones are carved from.
#[derive(Default)]
pub struct StackPool {
    /// Free stacks whose touched pages are still resident (cheapest to reuse).
    hot: Vec<Stack>,
    /// Stacks made ready ahead of need, never run on: guard in place, top page committed.
    fresh: Vec<Stack>,
    /// Free stacks with no resident memory: reservations given back (maybe with no guard
    /// yet), and stacks whose memory went back to the kernel.
    cold: Vec<Stack>,
    /// The unused part of the current arena: [next, end).
    next: usize,
    end: usize,
    /// Stacks being made ready on `gw-stacks` meanwhile (none unless [`StackPool::helped`]).
    ahead: Option<Arc<Ahead>>,
    /// The size and guard of the stack the last thread started on when it was not a hot one
    /// (made ready in line or ahead), for [`StackPool::send_ahead`].
    burst: Option<(usize, usize)>,
    /// Threads started in a row on stacks not hot: a burst of first runs once [`AHEAD`] (a
    /// program with a few threads never has `gw-stacks` started for it).
    burst_len: usize,
    /// Reservations not resident handed out and not back yet (returned, or made ready here):
    /// threads still to start that will want a stack made ready. No more are sent ahead, so
    /// that a burst's end leaves none made ready for nothing (peak RSS).
    waiting: usize,
}

/// A hub's stacks out on `gw-stacks`, which installs their guards and commits their top pages
/// while the hub runs threads: on the hub's own CPU, the kernel's work for a burst of first
/// runs (10 000 sleepers) is about 3 µs a stack. One job a hub at a time, which takes runs as
/// the hub sends them until there are none left.
#[derive(Default)]
struct Ahead {
    /// Runs sent, for `gw-stacks` to make ready.
    todo: Handoff<Stack>,
    /// Runs made ready, for the hub to take into `fresh`.
    ready: Handoff<Stack>,
    /// Stacks sent and not handed back yet (the hub sends more only while they are few).
    out: AtomicUsize,
    /// A job of `gw-stacks` is taking `todo`'s runs (or queued to).
    working: AtomicBool,
}

impl StackPool {
    /// A pool whose hub may have stacks made ready ahead on `gw-stacks` ([`Ahead`]).
    pub fn helped() -> StackPool {
        StackPool {
            ahead: Some(Arc::default()),
            ..StackPool::default()
        }
    }

    /// In a forked child: `gw-stacks` is the parent's. The stacks it had taken are the
    /// parent's (their address space stays unused here); those sent and not taken are this
    /// pool's again, as they were, and those handed back are ready.
    pub fn after_fork(&mut self) {
        let Some(ahead) = self.ahead.clone() else {
            return;
        };
        ahead.todo.take_all(|s| self.cold.push(s));
        self.take_ahead();
        ahead.out.store(0, Ordering::Relaxed);
        ahead.working.store(false, Ordering::Relaxed);
    }

    /// Moves the runs `gw-stacks` made ready into `fresh`.
    #[inline]
    fn take_ahead(&mut self) {
        if let Some(ahead) = self.ahead.as_ref().filter(|a| !a.ready.is_empty()) {
            ahead.ready.take_all(|s| self.fresh.push(s));
        }
    }

    /// In a burst of first runs (the last [`AHEAD`] threads started on stacks not hot), sends a
    /// run of [`BATCH`] stacks of the last one's size to `gw-stacks` to be made ready, while
    /// fewer than [`AHEAD`] are ready or out and fewer than the threads still to start, and starts a job there for them if none is
    /// working and `cpu_idle` says it would run beside the hub. Never waits: while the runs
    /// sent are not ready the hub makes its own ready in line ([`StackPool::ready`]), as it
    /// does without `gw-stacks`.
    pub fn send_ahead(&mut self, cpu_idle: impl FnOnce() -> bool) {
        let (Some(ahead), Some((size, guard))) = (&self.ahead, self.burst.take()) else {
            return;
        };
        if self.burst_len < AHEAD
            || self.fresh.len() + ahead.out.load(Ordering::Relaxed) >= AHEAD.min(self.waiting)
            || !(ahead.working.load(Ordering::Relaxed) || cpu_idle())
        {
            return;
        }
        let ahead = Arc::clone(ahead);
        let mut run = Vec::with_capacity(BATCH);
        while run.len() < BATCH {
            let spare = match self.cold.iter().rposition(|s| s.fits(size, guard)) {
                Some(i) => Some(self.cold.swap_remove(i)),
                None => self.carve(size, guard),
            };
            let Some(spare) = spare else { break };
            run.push(spare);
        }
        if run.is_empty() {
            return;
        }
        ahead.out.fetch_add(run.len(), Ordering::Relaxed);
        ahead.todo.push(run);
        // Pairs with the job's look at `todo` after it stops working (`make_ready_ahead`):
        // either it sees this run or this sees it stopped.
        core::sync::atomic::fence(Ordering::SeqCst);
        if ahead.working.swap(true, Ordering::SeqCst) {
            return;
        }
        let job = Arc::clone(&ahead);
        if !super::helper::post(Box::new(move || make_ready_ahead(job))) {
            ahead.working.store(false, Ordering::Relaxed);
        }
    }

    /// A stack for a thread that has not run yet, with at least `size` usable bytes and
    /// `guard` bytes of guard: a free one (resident ones first), else address space carved from
    /// the arena, touched by nothing (its guard goes in when it is made [`ready`]). None when
    /// no address space can be had; no system call but an arena's `mmap`.
    ///
    /// [`ready`]: StackPool::ready
    pub fn reserve(&mut self, size: usize, guard: usize) -> Option<Stack> {
        let page = page_size();
        let (size, guard) = (round_to_page(size, page)?, round_to_page(guard, page)?);
        // The common case first: the stack the last thread finished on.
        if self.hot.last().is_some_and(|s| s.fits(size, guard)) {
            return self.hot.pop();
        }
        for list in [&mut self.hot, &mut self.fresh] {
            if let Some(i) = list.iter().rposition(|s| s.fits(size, guard)) {
                return Some(list.swap_remove(i));
            }
        }
        let bare = match self.cold.iter().rposition(|s| s.fits(size, guard)) {
            Some(i) => self.cold.swap_remove(i),
            None => self.carve(size, guard)?,
        };
        self.waiting += 1;
        Some(bare)
    }

    /// A free stack of `like`'s size whose pages are resident (freed by a thread that ran on
    /// it, or made ready ahead), for a thread starting now in place of `like`, its
    /// reservation.
    pub fn take_resident(&mut self, like: &Stack) -> Option<Stack> {
        let fits = |s: &Stack| s.fits(like.usable(), like.guard);
        if let Some(i) = self.hot.iter().rposition(fits) {
            self.burst_len = 0;
            return Some(self.hot.swap_remove(i));
        }
        self.take_ahead();
        let i = self.fresh.iter().rposition(fits)?;
        self.burst = Some((like.usable(), like.guard));
        self.burst_len += 1;
        Some(self.fresh.swap_remove(i))
    }

    /// Makes a reserved stack ready for its thread's first run: its guard goes in and its
    /// top page is committed, together with up to [`BATCH`] - 1 more of its size (free ones
    /// not resident, else carved, while address space can be had), kept resident
    /// ([`StackPool::fresh`]) for the next threads that start: one call each for them all.
    /// Never fails: nothing needs address space it does not have.
    pub fn ready(&mut self, stack: Stack) -> Stack {
        if stack.ready_to_run() {
            return stack;
        }
        if stack.home == 0 {
            // This pool's reservation (one from another hub's stays counted there: at most
            // [`AHEAD`] more made ready there, and only with fewer hubs than CPUs).
            self.waiting = self.waiting.saturating_sub(1);
        }
        let (size, guard) = (stack.usable(), stack.guard);
        let mut run = [const { None::<Stack> }; BATCH];
        run[0] = Some(stack);
        let mut count = 1;
        while count < BATCH {
            let spare = match self.cold.iter().rposition(|s| s.fits(size, guard)) {
                Some(i) => Some(self.cold.swap_remove(i)),
                None => self.carve(size, guard),
            };
            let Some(spare) = spare else { break };
            run[count] = Some(spare);
            count += 1;
        }
        commit(run[..count].iter().flatten());
        // All this pool's now, the one made ready too (reserved by another hub's pool, which
        // carves address space again when it needs more): a hub whose threads were all made
        // by another must have resident stacks of its own to start them on.
        let mut run = run.into_iter().flatten().map(resident);
        let first = run
            .next()
            .expect("the stack made ready is the first of the run");
        // The rest in reverse, so the next one taken (from the end) is the next address up.
        let rest: Vec<Stack> = run.collect();
        self.fresh.extend(rest.into_iter().rev());
        self.burst = Some((size, guard));
        self.burst_len += 1;
        first
    }

    /// A stack ready to run on, at once ([`StackPool::reserve`], then [`StackPool::ready`]).
    #[cfg(test)]
    fn get(&mut self, size: usize, guard: usize) -> Option<Stack> {
        let stack = self.reserve(size, guard)?;
        Some(self.ready(stack))
    }

    /// Takes back the stack of a finished thread, or a reservation not run on. The memory of
    /// the hot ones beyond [`HOT_LIMIT`] goes back when the hub is idle ([`StackPool::trim`]),
    /// or here once they are [`HOT_CAP`].
    pub fn put(&mut self, mut stack: Stack) {
        if stack.state != State::Resident {
            if stack.state != State::Lent {
                // A reservation back (to the pool it came from, but for a fork child's).
                self.waiting = self.waiting.saturating_sub(1);
                stack.home = 0;
                self.cold.push(stack);
            }
            return;
        }
        stack.home = 0;
        if self.hot.len() >= HOT_CAP {
            self.release_oldest(BATCH);
        }
        self.hot.push(stack);
    }

    /// Gives back the memory of up to [`BATCH`] of the hot stacks beyond [`HOT_LIMIT`], those
    /// freed longest ago, in one call: for a hub with nothing else to do. True when it did.
    pub fn trim(&mut self) -> bool {
        let excess = self.hot.len().saturating_sub(HOT_LIMIT);
        if excess == 0 {
            return false;
        }
        self.release_oldest(BATCH.min(excess));
        true
    }

    fn release_oldest(&mut self, count: usize) {
        let oldest = count.min(self.hot.len());
        release_memory(&self.hot[..oldest]);
        self.cold.extend(self.hot.drain(..oldest).map(|s| Stack {
            state: State::Guarded,
            ..s
        }));
    }

    /// A stack carved from what is left of the current arena, if it fits; no guard yet.
    fn carve_here(&mut self, size: usize, guard: usize) -> Option<Stack> {
        let len = size.checked_add(guard)?;
        if self.end - self.next < len {
            return None;
        }
        let low = self.next;
        self.next += len;
        Some(Stack {
            low,
            len,
            guard,
            state: State::Bare,
            shared: false,
            home: 0,
        })
    }

    /// A stack carved from the current arena, or from a new one; no guard yet.
    fn carve(&mut self, size: usize, guard: usize) -> Option<Stack> {
        let len = size.checked_add(guard)?;
        if self.end - self.next < len {
            let arena_len = len.max(ARENA_BYTES);
            let arena = map_stack_memory(arena_len)?;
            // The rest of the previous arena is abandoned: at most one stack's worth.
            self.next = arena;
            self.end = self.next + arena_len;
        }
        self.carve_here(size, guard)
    }
}

/// On `gw-stacks`: makes the runs a hub sends ready (guards in, top pages committed), handing
/// each back as soon as it is, until none is left.
fn make_ready_ahead(ahead: Arc<Ahead>) {
    let mut runs = Vec::new();
    let mut idle_since = 0;
    loop {
        ahead.todo.take_all(|s| runs.push(s));
        if runs.is_empty() {
            // The hub sends the next run when it has started a few threads: waiting for it
            // here keeps this thread on its CPU, where a wake would put it on the hub's
            // (the kernel's wake-up placement) and take turns with it there.
            let now = crate::sys::now_ns();
            if idle_since == 0 {
                idle_since = now;
            }
            if now - idle_since < LINGER_NS {
                // SAFETY: no arguments; gives the CPU to the hub if they share one.
                unsafe { crate::sys::syscall!(libc::SYS_sched_yield) };
                continue;
            }
            ahead.working.store(false, Ordering::SeqCst);
            core::sync::atomic::fence(Ordering::SeqCst);
            // A run sent after the last look, by a hub that saw this job still working.
            if ahead.todo.is_empty() || ahead.working.swap(true, Ordering::SeqCst) {
                return;
            }
            continue;
        }
        idle_since = 0;
        while !runs.is_empty() {
            let run = runs.split_off(runs.len().saturating_sub(BATCH));
            let count = run.len();
            ahead.ready.push(make_ready(run));
            ahead.out.fetch_sub(count, Ordering::Relaxed);
        }
    }
}

/// Makes up to [`BATCH`] stacks ready, on `gw-stacks` ([`commit`]).
fn make_ready(run: Vec<Stack>) -> Vec<Stack> {
    commit(run.iter());
    run.into_iter().map(resident).collect()
}

/// Installs the guards of the bare ones among up to [`BATCH`] stacks and commits all their top
/// pages: two system calls, on the hub ([`StackPool::ready`]) or on `gw-stacks`.
fn commit<'a>(stacks: impl Iterator<Item = &'a Stack> + Clone) {
    install_guards(
        stacks
            .clone()
            .filter(|s| s.state == State::Bare)
            .map(|s| (s.low, s.guard)),
    );
    // Committed ahead only where one call does it all: elsewhere the first touch faults
    // the page in, as it always did.
    let page = page_size();
    advise_vectored(
        stacks.map(|s| (s.low + s.len - page, page)),
        MADV_POPULATE_WRITE,
    );
}

/// A stack [`commit`] made ready: resident, and no other hub's reservation any more.
fn resident(stack: Stack) -> Stack {
    Stack {
        state: State::Resident,
        home: 0,
        ..stack
    }
}

/// `len` bytes of fresh stack memory (an arena of the pool, a hub's shared region of copied
/// stacks), committed lazily; its address, or None when the kernel refuses.
pub(crate) fn map_stack_memory(len: usize) -> Option<usize> {
    // SAFETY: a fresh anonymous private mapping, committed lazily. Not MAP_NORESERVE: the
    // kernel's overcommit check then refuses an impossible stack as it refuses glibc's
    // (EAGAIN), while 512 MiB arenas pass it.
    let at = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    (at != libc::MAP_FAILED).then_some(at as usize)
}

/// Lets the kernel take back the touched pages of free stacks, in one call; the address space
/// stays ours.
fn release_memory(stacks: &[Stack]) {
    advise_all(
        stacks.iter().map(|s| (s.usable_low(), s.usable())),
        libc::MADV_DONTNEED,
    );
}

/// Makes the guard of each (`low`, `len`) fault on any access: in one call when the kernel
/// takes a vector of ranges, else one by one ([`install_guard`], which falls back to
/// `mprotect` on kernels without guard markers).
fn install_guards(guards: impl Iterator<Item = (usize, usize)> + Clone) {
    if GUARD_BY_MPROTECT.load(Ordering::Relaxed)
        || !advise_vectored(guards.clone(), MADV_GUARD_INSTALL)
    {
        for (low, len) in guards {
            install_guard(low, len);
        }
    }
}

/// `advice` over every (address, length) range (at most [`BATCH`]), in one call when the
/// kernel takes a vector of ranges, else one `madvise` each. Advice is a hint here (a failure
/// leaves pages resident or uncommitted, nothing worse).
fn advise_all(ranges: impl Iterator<Item = (usize, usize)> + Clone, advice: libc::c_int) {
    if !advise_vectored(ranges.clone(), advice) {
        for (addr, len) in ranges {
            // SAFETY: ranges of stacks this pool owns, none in use by a thread.
            unsafe { libc::madvise(addr as *mut libc::c_void, len, advice) };
        }
    }
}

/// `process_madvise` of the calling process over up to [`BATCH`] ranges; false when it did
/// not do all of them (an older kernel: never asked again; the caller goes range by range,
/// which repeats harmlessly what was done).
fn advise_vectored(ranges: impl Iterator<Item = (usize, usize)>, advice: libc::c_int) -> bool {
    if NO_VECTORED_ADVICE.load(Ordering::Relaxed) {
        return false;
    }
    let mut iov = [libc::iovec {
        iov_base: core::ptr::null_mut(),
        iov_len: 0,
    }; BATCH];
    let mut count = 0;
    let mut total = 0usize;
    for (slot, (addr, len)) in iov.iter_mut().zip(ranges) {
        *slot = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: len,
        };
        count += 1;
        total += len;
    }
    if count == 0 {
        return true;
    }
    // SAFETY: a vector of `count` ranges of stacks this pool owns, none in use by a thread;
    // PIDFD_SELF names the calling process. A raw system call: libc's wrapper is no older
    // than glibc 2.36, and `syscall` is hooked (trap 2).
    // The kernel's own answer (errno untouched: a thread is being made for the program).
    let done = unsafe {
        crate::sys::raw_syscall(
            libc::SYS_process_madvise,
            crate::sys::pad([
                PIDFD_SELF as libc::c_long,
                iov.as_ptr() as libc::c_long,
                count as libc::c_long,
                advice as libc::c_long,
                0,
            ]),
        )
    };
    if done >= 0 && done as usize == total {
        return true;
    }
    if matches!(
        -done as libc::c_int,
        libc::EBADF | libc::EINVAL | libc::ENOSYS | libc::EPERM | libc::ESRCH
    ) {
        NO_VECTORED_ADVICE.store(true, Ordering::Relaxed);
    }
    false
}

/// Makes `[low, low + len)` fault on any access.
pub(crate) fn install_guard(low: usize, len: usize) {
    if len == 0 {
        return;
    }
    let addr = low as *mut libc::c_void;
    if !GUARD_BY_MPROTECT.load(Ordering::Relaxed) {
        // SAFETY: the range is the guard part of a stack carved from our own arena.
        if unsafe { libc::madvise(addr, len, MADV_GUARD_INSTALL) } == 0 {
            return;
        }
        crate::log!(
            Info,
            "no MADV_GUARD_INSTALL on this kernel; stack guards use mprotect"
        );
        GUARD_BY_MPROTECT.store(true, Ordering::Relaxed);
    }
    // SAFETY: as above.
    if unsafe { libc::mprotect(addr, len, libc::PROT_NONE) } != 0 {
        crate::log!(
            Warn,
            "cannot protect a stack guard: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_ends(stack: &Stack) {
        let top = stack.usable_low() + stack.usable();
        // SAFETY: both bytes lie in the usable, writable part of the stack.
        unsafe {
            *((top - 1) as *mut u8) = 1;
            *(stack.usable_low() as *mut u8) = 1;
        }
    }

    #[test]
    fn carved_stacks_are_writable_distinct_and_pooled() {
        let mut pool = StackPool::default();
        let a = pool.get(100_000, GUARD).unwrap();
        let b = pool.get(100_000, GUARD).unwrap();
        assert!(a.usable() >= 100_000 && a.usable() % page_size() == 0);
        assert!(b.usable_low() + b.usable() <= a.low || a.usable_low() + a.usable() <= b.low);
        write_ends(&a);
        write_ends(&b);
        let low = a.usable_low();
        pool.put(a);
        assert_eq!(
            pool.get(100_000, GUARD).unwrap().usable_low(),
            low,
            "reused from the pool"
        );
        let other = pool.get(200_000, GUARD).unwrap();
        assert_ne!(
            other.usable_low(),
            low,
            "a different size is not served from the pool"
        );
    }

    #[test]
    fn cold_stacks_come_back_zeroed() {
        let mut pool = StackPool::default();
        let stacks: Vec<Stack> = (0..HOT_LIMIT + 1)
            .map(|_| pool.get(16 << 10, GUARD).unwrap())
            .collect();
        for s in &stacks {
            write_ends(s);
        }
        for s in stacks {
            pool.put(s);
        }
        assert!(
            pool.cold.is_empty(),
            "nothing given back while the hub is busy"
        );
        assert!(pool.trim(), "one over the limit");
        assert_eq!(pool.cold.len(), 1, "only what is over the limit");
        assert!(!pool.trim(), "nothing left over the limit");
        let cold = pool.cold.pop().unwrap();
        // SAFETY: the lowest usable byte of a pooled stack.
        assert_eq!(
            unsafe { *(cold.usable_low() as *const u8) },
            0,
            "memory was given back"
        );
    }

    #[test]
    fn stacks_are_carved_ahead_in_runs() {
        let mut pool = StackPool::default();
        let first = pool.get(64 << 10, GUARD).unwrap();
        assert_eq!(pool.fresh.len(), BATCH - 1, "the rest of the run waits");
        let next = pool.get(64 << 10, GUARD).unwrap();
        assert_eq!(
            next.low,
            first.low + first.len,
            "the next one up, from the run"
        );
        assert_eq!(pool.fresh.len(), BATCH - 2);
        write_ends(&first);
        write_ends(&next);
        let other = pool.get(128 << 10, GUARD).unwrap();
        assert!(other.usable() == 128 << 10 && pool.fresh.len() == 2 * BATCH - 3);
    }

    /// Is the top page of `stack` resident?
    fn top_resident(stack: &Stack) -> bool {
        let page = page_size();
        let mut vec = [0u8; 1];
        // SAFETY: a page-aligned page of the pool's own mapping; `vec` has room for one page.
        let rc = unsafe {
            libc::mincore(
                (stack.low + stack.len - page) as *mut libc::c_void,
                page,
                vec.as_mut_ptr(),
            )
        };
        assert_eq!(rc, 0);
        vec[0] & 1 != 0
    }

    #[test]
    fn reservations_touch_nothing_until_made_ready() {
        let mut pool = StackPool::default();
        let reserved: Vec<Stack> = (0..3)
            .map(|_| pool.reserve(64 << 10, GUARD).unwrap())
            .collect();
        for s in &reserved {
            assert_eq!(s.state, State::Bare);
            assert!(!s.ready_to_run());
            assert!(!top_resident(s), "a reservation's top page is not touched");
        }
        assert!(pool.hot.is_empty() && pool.fresh.is_empty() && pool.cold.is_empty());
        let mut reserved = reserved.into_iter();
        let first = pool.ready(reserved.next().unwrap());
        assert!(first.ready_to_run() && top_resident(&first));
        assert_eq!(
            pool.fresh.len(),
            BATCH - 1,
            "made ready with a run of spares"
        );
        assert!(pool.fresh.iter().all(top_resident));
        write_ends(&first);
        // A reservation given back goes cold; a stack run on goes hot, and is taken first.
        let second = reserved.next().unwrap();
        pool.put(first);
        let hot = pool.hot.last().unwrap().low;
        let resident = pool.take_resident(&second).unwrap();
        assert_eq!(resident.low, hot, "the stack the last thread finished on");
        pool.put(second);
        assert_eq!(pool.cold.len(), 1, "the reservation, not run on, is cold");
        assert_eq!(pool.cold[0].state, State::Bare);
        // Reserving takes resident stacks first, then cold ones, before carving.
        pool.put(resident);
        assert_eq!(pool.reserve(64 << 10, GUARD).unwrap().low, hot);
        let cold = pool.cold[0].low;
        pool.fresh.clear();
        assert_eq!(pool.reserve(64 << 10, GUARD).unwrap().low, cold);
    }

    #[test]
    fn a_stack_made_ready_belongs_to_the_pool_that_made_it() {
        let (mut creator, mut runner) = (StackPool::default(), StackPool::default());
        let mut reserved = creator.reserve(64 << 10, GUARD).unwrap();
        reserved.set_home(0xdead0);
        let ready = runner.ready(reserved);
        assert_eq!(
            ready.home(),
            0,
            "it stays with the hub that runs threads on it"
        );
        assert_eq!(
            runner.fresh.len(),
            BATCH - 1,
            "spares carved by the runner's own pool"
        );
    }

    #[test]
    fn impossible_sizes_fail_cleanly() {
        let mut pool = StackPool::default();
        assert!(pool.reserve(1 << 62, GUARD).is_none());
        assert!(pool.reserve(usize::MAX - 10, GUARD).is_none());
    }
}
