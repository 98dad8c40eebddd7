//! Several hubs (`GREENWORLD_HUBS`): N-1 OS threads of the library's own, each running a hub
//! loop (`Hub::serve`), beside the program's first one. A new green thread is placed once, by
//! its first run, and never migrates (trap 8): its thread-locals, errno, glibc's per-thread
//! state and the TID glibc's locks record stay one OS thread's for its whole life.
//!
//! Most new threads go on their creator's shelf and are placed when they first run
//! (`hub::steal`: [`place_from`] returns None; a create+join pair's, given the stack the last
//! thread ended on, is made on its creator's hub at once: [`waits_on_shelf`]). Placement at
//! creation, for the others (a CPU mask, a copied stack, a real OS thread's hub): the hub with
//! the fewest live green threads (those placed there and not started
//! yet included: a creator that makes several in a row must not see the other hubs as empty);
//! the creator's own hub when it is one of the least loaded (no hand-off: a create+join pair
//! stays on one hub), else the others' ties going round. A thread-per-connection server's threads each stay as long as their connection,
//! so counting live ones spreads the connections evenly even when they end unevenly, where
//! plain round-robin leaves one hub with the long ones (see README, Performance). The count is
//! a relaxed read of each hub's own counter: no lock, no shared write on the way.
//!
//! The extra OS threads are made at the first `pthread_create` that asks for a green thread
//! (never before: a program that makes no thread keeps glibc's single-threaded fast paths),
//! with the real `pthread_create` and every signal blocked (as the pool's): a hub's OS thread
//! lets a signal through only while a green thread of it that does not block it runs (the
//! hub's masks), so a process-directed signal reaches a thread that does not block it.

use crate::green::CpuMask;
use crate::green::stack::Stack;
use crate::hub::Hub;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

const MAX: usize = crate::config::MAX_HUBS;

/// The hubs a new thread may go to: the first is the hub that started the others (`main`'s,
/// usually); 0 hubs listed: not started yet (or not wanted: one hub).
static HUBS: [AtomicPtr<Hub>; MAX] = [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX];
static COUNT: AtomicUsize = AtomicUsize::new(0);
/// Where the round goes next.
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// 0: the extra hubs are not started; 1: being started; 2: started.
static STARTING: AtomicUsize = AtomicUsize::new(0);
/// 0: not decided yet; else the number of hubs wanted.
static WANTED: AtomicUsize = AtomicUsize::new(0);

fn wanted() -> usize {
    let n = WANTED.load(Ordering::Relaxed);
    if n != 0 {
        return n;
    }
    let n = crate::config::get().hubs.count();
    WANTED.store(n, Ordering::Relaxed);
    n
}

/// How many hubs run green threads (1 until the extra ones are started).
pub fn count() -> usize {
    COUNT.load(Ordering::Acquire).max(1)
}

/// The hub a new thread made from `creator`'s hub goes to, or None: onto `creator`'s shelf,
/// to be placed at its first run (`hub::steal`: an idle hub may take it). Its CPU mask
/// (`thread::affinity`: its attributes', else its creator's) narrows the choice (see
/// [`hubs_for_cpus`]); a thread with one, or on a copied stack (`copied`: its hub's region
/// is its stack from the start), is placed now (`copied` is asked only with several hubs).
#[inline]
pub fn place_from(
    creator: &'static Hub,
    cpus: Option<&CpuMask>,
    copied: impl Fn() -> bool,
) -> Option<&'static Hub> {
    if wanted() == 1 {
        return Some(creator);
    }
    // The shelf, the common answer once the hubs run, without the call (`copied` last: it
    // reads the configuration).
    if COUNT.load(Ordering::Acquire) > 1 && cpus.is_none() && creator.is_pooled() && !copied() {
        return None;
    }
    pick(creator, cpus, copied)
}

#[cold]
fn pick(
    creator: &'static Hub,
    cpus: Option<&CpuMask>,
    copied: impl Fn() -> bool,
) -> Option<&'static Hub> {
    let mut n = COUNT.load(Ordering::Acquire);
    if n == 0 {
        start(creator);
        n = COUNT.load(Ordering::Acquire);
        if n == 0 {
            return Some(creator);
        }
    }
    if n > 1 && cpus.is_none() && creator.is_pooled() && !copied() {
        return None;
    }
    Some(place_by_load(creator, cpus, n))
}

/// Does a thread [`place_from`] did not place wait on its creator's shelf (`hub::steal`), to
/// be placed at its first run? All do but one given a resident stack (one a thread just ended
/// on) while its creator's hub has nothing else to run, alive or shelved (a create+join pair):
/// that one is made there at once (`Hub::spawn`), and the pair costs nothing more than at one
/// hub. Placed at creation by load instead, as before, a resident stack sent a batch's threads
/// to the other hub one by one: each thread that ran there gave its creator's pool a resident
/// stack back, which the next `pthread_create` took, and the creator's hub, busier by the
/// thread made just before, placed it there too, with a notify each (README, Several hubs).
#[inline]
pub fn waits_on_shelf(creator: &'static Hub, stack: &Stack) -> bool {
    !stack.ready_to_run() || creator.load() > 0
}

/// The creator's hub when no (allowed) hub has fewer live threads, else one of the least
/// loaded, ties going round.
fn place_by_load(creator: &'static Hub, cpus: Option<&CpuMask>, n: usize) -> &'static Hub {
    let allowed = hubs_for_cpus(cpus, n);
    let listed = |i: usize| {
        let ok = i >= 128 || allowed >> i & 1 != 0;
        // SAFETY: listed hubs are leaked, never freed.
        ok.then(|| unsafe { HUBS[i].load(Ordering::Acquire).as_ref() })
            .flatten()
    };
    // The creator's own hub when no (allowed) hub has fewer live threads: a thread made there
    // starts without a hand-off, and a create+join pair costs no cross-hub wake.
    let mut least = usize::MAX;
    let mut creator_load = None;
    for hub in (0..n).filter_map(listed) {
        let load = hub.load();
        least = least.min(load);
        if core::ptr::eq(hub, creator) {
            creator_load = Some(load);
        }
    }
    if creator_load.is_some_and(|load| load <= least) {
        return creator;
    }
    // Else one of the least loaded, ties going round.
    let first = NEXT.fetch_add(1, Ordering::Relaxed);
    (0..n)
        .filter_map(|i| listed((first + i) % n))
        .find(|hub| hub.load() <= least)
        .unwrap_or(creator)
}

/// The hubs (bit i: hub i; with more than 128 hubs, every one) a thread whose mask names
/// CPUs may go to. Hubs are not pinned (an OS thread's mask is what `sched_getaffinity` says
/// in every green thread on it, and programs size their pools by it), so CPUs stand for hubs:
/// the k-th CPU the process may run on is hub k mod N's. Threads that ask for different CPUs
/// then run in parallel on different hubs, threads that ask for one CPU share its hub, as
/// natively. No CPUs named, or none the process may run on: every hub.
fn hubs_for_cpus(cpus: Option<&CpuMask>, n: usize) -> u128 {
    const EVERY: u128 = u128::MAX;
    let Some(asked) = cpus else { return EVERY };
    if n > 128 {
        return EVERY;
    }
    let mut hubs = 0u128;
    let mut k = 0; // the rank among the process's CPUs
    let mut all = true;
    for (word, &asked) in PROCESS_CPUS.iter().zip(asked) {
        let word = word.load(Ordering::Relaxed);
        all &= word & !asked == 0;
        let mut both = word & asked;
        while both != 0 {
            let bit = both.trailing_zeros();
            let rank = k + (word & ((1u64 << bit) - 1)).count_ones() as usize;
            hubs |= 1 << (rank % n);
            both &= both - 1;
        }
        k += word.count_ones() as usize;
    }
    if all || hubs == 0 { EVERY } else { hubs }
}

const CPU_WORDS: usize = core::mem::size_of::<CpuMask>() / 8;

/// The CPUs the process could run on when the hubs started (what [`hubs_for_cpus`] ranks).
static PROCESS_CPUS: [AtomicU64; CPU_WORDS] = [const { AtomicU64::new(0) }; CPU_WORDS];

fn note_process_cpus() {
    // The OS thread's own (a green creator's kept mask is not the process's).
    let Some(words) = crate::sys::os_cpu_mask() else {
        return;
    };
    let mut cpus = 0;
    for (slot, word) in PROCESS_CPUS.iter().zip(words) {
        slot.store(word, Ordering::Relaxed);
        cpus += word.count_ones() as usize;
    }
    // What a hub compares the system's runnable threads with before it spins.
    crate::hub::note_process_cpus(cpus);
}

/// Makes the extra hubs' OS threads and waits until each has its hub (done once, by the first
/// creator; a concurrent first creator on another OS thread waits for it).
fn start(creator: &'static Hub) {
    if STARTING
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        while COUNT.load(Ordering::Acquire) == 0 && STARTING.load(Ordering::Acquire) == 1 {
            pause();
        }
        return;
    }
    let wanted = wanted();
    // The parking lot stops being one OS thread's now, while nothing waits on it yet, rather
    // than at a second hub's first lock, in the middle of its thread's first wait.
    crate::park::share();
    note_process_cpus();
    HUBS[0].store(creator as *const Hub as *mut Hub, Ordering::Release);
    creator.set_pooled(wanted > 1);
    let mut made = 1;
    for index in 1..wanted {
        match spawn_hub_thread(index) {
            Some(hub) => {
                hub.set_pooled(true);
                HUBS[made].store(hub as *const Hub as *mut Hub, Ordering::Release);
                made += 1;
            }
            None => break,
        }
    }
    crate::log!(Debug, "{made} hubs run green threads");
    Hub::set_several(made > 1);
    COUNT.store(made, Ordering::Release);
    STARTING.store(2, Ordering::Release);
}

/// A moment's wait for another OS thread (the raw system call: the hooked one would yield).
fn pause() {
    // SAFETY: no arguments.
    unsafe { crate::sys::syscall!(libc::SYS_sched_yield) };
}

/// The hub made by a new OS thread, handed over once it is made ([`NO_HUB`]: it could not be).
static MADE: AtomicUsize = AtomicUsize::new(0);
const NO_HUB: usize = 1;

/// One more OS thread running a hub; None (one line) when it cannot be made.
fn spawn_hub_thread(index: usize) -> Option<&'static Hub> {
    MADE.store(0, Ordering::Release);
    let real = crate::real::get();
    let mut thread: libc::pthread_t = 0;
    // SAFETY: sets are valid locals; the real pthread_create with a valid start routine; the
    // mask is restored before anything else runs on this thread.
    let rc = unsafe {
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        (real.pthread_sigmask)(libc::SIG_SETMASK, &all, &mut old);
        let rc = (real.pthread_create)(
            &mut thread,
            core::ptr::null(),
            hub_thread,
            index as *mut libc::c_void,
        );
        (real.pthread_sigmask)(libc::SIG_SETMASK, &old, core::ptr::null_mut());
        rc
    };
    if rc != 0 {
        crate::log!(
            Warn,
            "cannot start hub {index}'s OS thread (error {rc}); {index} hubs run green threads"
        );
        return None;
    }
    // (A thread whose hub could not be made ends by itself.)
    // SAFETY: a thread we just made and never join.
    unsafe { (real.pthread_detach)(thread) };
    loop {
        match MADE.load(Ordering::Acquire) {
            0 => pause(),
            NO_HUB => return None,
            // SAFETY: a hub handed over by its thread: leaked, never freed.
            hub => return Some(unsafe { &*(hub as *const Hub) }),
        }
    }
}

extern "C" fn hub_thread(arg: *mut libc::c_void) -> *mut libc::c_void {
    let index = arg as usize;
    let mut name = *b"gw-hub-\0\0\0\0\0\0\0\0\0";
    let digits = index.to_string();
    name[7..7 + digits.len().min(8)].copy_from_slice(&digits.as_bytes()[..digits.len().min(8)]);
    // SAFETY: a NUL-terminated name of at most 16 bytes, for this thread.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
    let Some(hub) = super::hub_or_native() else {
        // No descriptor for its poller (the program is at RLIMIT_NOFILE): fewer hubs.
        crate::log!(
            Info,
            "cannot make hub {index}'s poller; {index} hubs run green threads"
        );
        MADE.store(NO_HUB, Ordering::Release);
        return core::ptr::null_mut();
    };
    MADE.store(hub as *const Hub as usize, Ordering::Release);
    hub.serve()
}

/// In a fork child: the extra hubs were other OS threads; the child's next `pthread_create`
/// starts its own, with the forking thread's hub first.
pub fn after_fork() {
    for slot in &HUBS {
        slot.store(core::ptr::null_mut(), Ordering::Relaxed);
    }
    COUNT.store(0, Ordering::Release);
    STARTING.store(0, Ordering::Release);
    Hub::set_several(false);
}

/// `pthread_exit` from a root, once its own hub's threads have ended: waits for every other
/// hub's too (a look every millisecond: no hub tells another its last thread ended), then
/// ends the process with status 0 as glibc's last thread does (the hubs' own OS threads never
/// end by themselves).
pub fn wait_all_done(mine: &'static Hub) -> ! {
    let me = mine.current_green();
    loop {
        let busy = (0..count()).any(|i| {
            // SAFETY: listed hubs are leaked, never freed.
            unsafe { HUBS[i].load(Ordering::Acquire).as_ref() }
                .is_some_and(|hub| hub.alive() > 0 || hub.has_arrivals())
        });
        if !busy && mine.alive() == 0 {
            break;
        }
        let token = me.arm();
        mine.park(
            me,
            token,
            crate::waiting::WaitOn::AllDone.word(),
            Some(crate::sys::now_ns() + 1_000_000),
        );
    }
    // SAFETY: exit runs atexit handlers and ends the process, as glibc's last thread does.
    unsafe { libc::exit(0) }
}
