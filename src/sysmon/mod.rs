//! The monitor ("sysmon", as Go's runtime calls its own): one OS thread, `gw-sysmon`, that
//! watches every hub from outside, every [`TICK_NS`] while one runs a thread (less often while
//! every hub switches or sleeps), and serves three features:
//! - preemption ([`preempt`]): a hub that ran one thread for a slice without a switch (or for
//!   a tick, when a thread of another hub woke one of its threads meanwhile; that waker asks
//!   at once, through [`preempt_for_woken`], when the turn was already seen under way),
//!   its OS thread running (not in a system call), is sent a signal whose handler makes that
//!   thread yield if it was interrupted in the program's own code;
//! - the blocking detector (`GREENWORLD_BLOCK_WARN=MS`, [`blocked`]): a hub whose OS thread has
//!   been in one system call for MS while it has green threads that cannot run meanwhile is
//!   named on stderr, once per episode, and again with the total when it ends;
//! - the escapes table (`GREENWORLD_ESCAPES`, [`escapes`]): those episodes, counted per system
//!   call, printed at exit.
//!
//! It starts when the process makes its first green thread (before, no hub has anything to
//! watch), on a thread glibc does not know of ([`hidden`]: a `pthread_create`d one costs every
//! system call glibc wraps, trap 18), blocks every signal (they are the program's threads'),
//! never calls a hook (raw system calls, the real functions), names code without the loader's
//! lock or an allocation ([`symbolize`], [`backtrace`]) and costs the hubs nothing but a plain
//! store per switch (`hub::watch`). A hub asleep in its own poller, or with no green thread, is
//! left alone. Where a hidden thread cannot be made (not x86-64), the detector and the table
//! run on a `pthread_create`d one.

pub mod backtrace;
pub mod blocked;
pub mod escapes;
mod hidden;
pub mod preempt;
pub mod symbolize;

use crate::hub::Hub;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// How often the monitor looks at the hubs while one of them runs threads; it backs off to
/// [`IDLE_TICK_NS`] while every hub sleeps in its poller or has no green thread, and to
/// [`SWITCHING_TICK_NS`] while every hub that runs keeps switching.
pub const TICK_NS: u64 = 1_000_000;
const IDLE_TICK_NS: u64 = 16_000_000;

/// The longest tick while every running hub switched since the last look: such a hub needs no
/// preemption, and on a CPU it shares with the monitor each look is a wake-up that preempts
/// it. A turn that outlasts the tick is seen at the next look (its hub's count stands still),
/// and from then the tick is [`TICK_NS`] again: a thread that spins is preempted up to
/// `SWITCHING_TICK_NS - TICK_NS` later than with a steady tick. Not while the escapes table
/// is kept (its resolution is the tick).
const SWITCHING_TICK_NS: u64 = 2 * TICK_NS;

// How long a thread may keep its hub, without a switch, before it is preempted: the slice
// the hooked calls' safe points give it (`hub::slice`, `GREENWORLD_SLICE`; with `off` the
// monitor does not preempt). Go's is 10 ms; ours is 2 ms by default because the threads
// preempted here are often spin-waiting for each other (redis's main thread and its I/O
// threads each spin before they sleep): each handoff costs a slice.

/// Where the objects whose code is the runtime's own start (`scope::Object::start`): this
/// library, libc and the dynamic loader; a preemption never interrupts them, and a caller
/// found on a blocked stack is not one of them.
static RUNTIME_OBJECTS: [AtomicUsize; 3] = [const { AtomicUsize::new(usize::MAX) }; 3];

fn note_runtime_objects() {
    if !crate::scope::finder_ready() {
        return;
    }
    let start_of =
        |address: usize| crate::scope::object_of(address).map_or(usize::MAX, |o| o.start);
    // SAFETY: a NUL-terminated name; a successful dlsym does not allocate.
    let in_loader = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_dl_find_object".as_ptr()) };
    let starts = [
        start_of(note_runtime_objects as *const () as usize),
        start_of(crate::real::get().read as usize),
        start_of(in_loader as usize),
    ];
    for (slot, start) in RUNTIME_OBJECTS.iter().zip(starts) {
        slot.store(start, Ordering::Relaxed);
    }
}

/// Is `start` (an object's) the library's, libc's or the loader's? Async-signal-safe.
fn is_runtime_object(start: usize) -> bool {
    RUNTIME_OBJECTS
        .iter()
        .any(|slot| slot.load(Ordering::Relaxed) == start)
}

/// Was the monitor started, or found not wanted, in this process? (Decided once: with nothing
/// wanted, each green thread made would otherwise read the configuration again.)
static STARTED: AtomicBool = AtomicBool::new(false);

/// OS threads the monitor runs (0 or 1): they never wake a green thread, so the deadlock
/// check does not count them as threads that could.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// How many OS threads the monitor runs in this process.
pub fn threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

/// What the monitor does, as the configuration asks.
#[derive(Clone, Copy)]
struct Wanted {
    preempt: bool,
    block_warn_ns: Option<u64>,
    escapes: bool,
}

impl Wanted {
    fn from_config() -> Wanted {
        let config = crate::config::get();
        Wanted {
            preempt: config.preempt,
            block_warn_ns: config.block_warn_ms.map(|ms| ms * 1_000_000),
            escapes: config.escapes,
        }
    }

    /// One word: preempt and escapes in the low two bits, the warning's ns above (0: off).
    fn pack(&self) -> u64 {
        self.block_warn_ns.map_or(0, |ns| ns.max(1) << 2)
            | (self.escapes as u64) << 1
            | self.preempt as u64
    }

    fn unpack(word: u64) -> Wanted {
        Wanted {
            preempt: word & 1 != 0,
            escapes: word & 2 != 0,
            block_warn_ns: (word >> 2 != 0).then_some(word >> 2),
        }
    }

    fn any(&self) -> bool {
        self.preempt || self.block_warn_ns.is_some() || self.escapes
    }

    /// Are system-call episodes followed? (`Config::follows_blocks`, for the word the hidden
    /// monitor unpacks.)
    fn follows_blocks(&self) -> bool {
        self.block_warn_ns.is_some() || self.escapes
    }
}

/// A green thread was made: the monitor starts, the first time, if anything asks for it.
#[inline]
pub fn thread_made() {
    if !STARTED.load(Ordering::Relaxed) {
        start();
    }
}

/// In a fork child: the monitor thread is the parent's; the child starts its own with its
/// next green thread.
pub fn after_fork() {
    STARTED.store(false, Ordering::Relaxed);
    THREADS.store(0, Ordering::Relaxed);
    escapes::after_fork();
}

#[cold]
fn start() {
    let mut wanted = Wanted::from_config();
    if STARTED.swap(true, Ordering::AcqRel) || !wanted.any() {
        return;
    }
    note_runtime_objects();
    // The handler serves the blocking detector too (a backtrace of a thread in its own code),
    // preemption or not.
    let handler = (wanted.preempt || wanted.block_warn_ns.is_some()) && preempt::install();
    if wanted.preempt && !handler {
        wanted.preempt = false;
    }
    if wanted.preempt {
        crate::hub::watch::set_preempt_for_woken(preempt_for_woken);
    }
    if wanted.escapes {
        escapes::at_exit();
    }
    if !wanted.any() {
        return;
    }
    // A thread glibc does not see (it would leave its single-threaded fast paths, trap 18),
    // which makes raw system calls only; everything it prints is formatted the same way.
    HIDDEN_WANTED.store(wanted.pack(), Ordering::Release);
    match hidden::spawn(hidden_monitor) {
        Some(tid) => {
            THREADS.store(1, Ordering::Relaxed);
            name(tid);
            return;
        }
        None if !wanted.follows_blocks() => {
            crate::log!(Info, "cannot start a hidden monitor thread: no preemption");
            return;
        }
        None => {}
    }
    let boxed = Box::into_raw(Box::new(wanted));
    let real = crate::real::get();
    // The monitor blocks every signal from its first instruction: a process-directed one must
    // reach a hub's OS thread (see `tpool`).
    // SAFETY: sets are valid; the thread's own mask is restored right after.
    let rc = unsafe {
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut before: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        (real.pthread_sigmask)(libc::SIG_SETMASK, &all, &mut before);
        let mut thread: libc::pthread_t = 0;
        let rc = (real.pthread_create)(&mut thread, core::ptr::null(), monitor, boxed.cast());
        if rc == 0 {
            // Named before anyone can count it (it would name itself only once it ran).
            (real.pthread_setname_np)(thread, c"gw-sysmon".as_ptr());
            (real.pthread_detach)(thread);
            THREADS.store(1, Ordering::Relaxed);
        }
        (real.pthread_sigmask)(libc::SIG_SETMASK, &before, core::ptr::null_mut());
        rc
    };
    if rc != 0 {
        // SAFETY: not handed to a thread.
        drop(unsafe { Box::from_raw(boxed) });
        crate::log!(
            Warn,
            "cannot start the monitor thread (error {rc}): no preemption"
        );
    }
}

/// What the monitor remembers of one hub between looks.
#[derive(Clone, Copy, Default)]
struct Seen {
    switches: u32,
    /// When the monitor last saw the switch count change (or the hub idle).
    since: u64,
    /// When it last sent the preemption signal.
    signalled: u64,
    /// The hub's OS thread's CPU time at the last look (see [`BUSY_NS`]).
    cpu_ns: u64,
    episode: blocked::Episode,
}

/// How much CPU a hub's OS thread must have used since the monitor's last look (of
/// [`TICK_NS`]) to be sent the preemption signal: a thread busy in its own code, not one that
/// only passes between two blocking calls (or waits for a CPU). A signal that lands in a
/// system call the kernel does not restart (`poll`, a socket read with `SO_RCVTIMEO`…) makes
/// it fail with EINTR: after 200 ms blocked in one unpatched `recv`, a thread seen running
/// for a moment on its way into the next was signalled there (the hub had not switched for
/// 200 ms, and the state read said running).
const BUSY_NS: u64 = TICK_NS / 2;

/// The same, when a thread woken from another hub waits for the running one: a hub whose OS
/// thread computed for [`WOKEN_WAIT_NS`] of the tick is preempted for it even when the machine
/// is loaded and that thread got less than half a core (a thread woken natively would still
/// run first: the kernel favours a thread that slept).
const WOKEN_BUSY_NS: u64 = WOKEN_WAIT_NS;

/// How long a thread woken from another hub must have waited for the running thread (which
/// has had the hub at least that long) before the monitor preempts it: short runs are left
/// alone.
const WOKEN_WAIT_NS: u64 = 200_000;

/// Between the two deliveries of a preemption for a thread woken from another hub, when the
/// running thread has not been sampled this turn (see `preempt::may_preempt`).
const SAMPLE_GAP_NS: u64 = 100_000;

/// After a preemption found nothing else to run, how many slices before the monitor signals
/// that hub's thread again (unless it switched meanwhile): a thread alone with work of its own
/// is left alone, bar a look for a timer now and then.
const ALONE_BACKOFF_SLICES: u64 = 4;

extern "C" fn monitor(arg: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: the Box `start` leaked for this thread.
    let wanted = *unsafe { Box::from_raw(arg.cast::<Wanted>()) };
    watch(wanted)
}

/// What the hidden monitor is to do ([`Wanted::pack`]), stored before it starts.
static HIDDEN_WANTED: AtomicU64 = AtomicU64::new(0);

/// The hidden monitor's body (see `hidden` for what it may call).
extern "C" fn hidden_monitor(_: *mut libc::c_void) -> libc::c_int {
    watch(Wanted::unpack(HIDDEN_WANTED.load(Ordering::Acquire)))
}

/// Names the monitor thread `tid` in /proc (raw calls), before anyone can count it.
fn name(tid: i32) {
    let mut path = crate::sys::LineBuf::new();
    let _ = core::fmt::Write::write_fmt(&mut path, format_args!("/proc/self/task/{tid}/comm\0"));
    let path = core::ffi::CStr::from_bytes_with_nul(path.as_bytes()).ok();
    if let Some(fd) = path.and_then(|p| crate::sys::open_raw(p, libc::O_WRONLY | libc::O_CLOEXEC)) {
        // SAFETY: a short name from a static string to our descriptor, closed here; raw calls.
        unsafe {
            crate::sys::syscall!(libc::SYS_write, fd, c"gw-sysmon".as_ptr(), 9);
            crate::sys::syscall!(libc::SYS_close, fd);
        }
    }
}

fn watch(wanted: Wanted) -> ! {
    // Read once (the configuration was parsed before any green thread, so before the monitor).
    let slice_ns = crate::config::get()
        .slice_ns
        .unwrap_or(crate::config::DEFAULT_SLICE_NS);
    let mut seen = [Seen::default(); crate::hub::watch::MAX_HUBS];
    let switching_tick = if wanted.escapes {
        TICK_NS
    } else {
        SWITCHING_TICK_NS
    };
    let mut tick = TICK_NS;
    loop {
        sleep(tick);
        let now = crate::sys::now_ns();
        let mut looks = Look::Resting;
        for (hub, seen) in crate::hub::watch::all().zip(seen.iter_mut()) {
            looks = looks.max(look_at(hub, seen, now, tick, &wanted, slice_ns));
        }
        tick = match looks {
            Look::Resting => (tick * 2).min(IDLE_TICK_NS),
            Look::Switched => (tick * 2).clamp(TICK_NS, switching_tick),
            Look::Kept => TICK_NS,
        };
    }
}

/// What one look found a hub doing (ordered: the monitor's next tick follows the greatest).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Look {
    /// Asleep in its poller, or no green thread.
    Resting,
    /// Running, and it switched since the last look.
    Switched,
    /// Running one turn since the last look at least, or a thread woken from another hub
    /// waits: watched every [`TICK_NS`].
    Kept,
}

/// One look at `hub`, `tick` after the last.
fn look_at(
    hub: &'static Hub,
    seen: &mut Seen,
    now: u64,
    tick: u64,
    wanted: &Wanted,
    slice_ns: u64,
) -> Look {
    let switches = hub.switches();
    let resting = hub.alive() == 0 || hub.idle();
    // A thread woken from another hub has waited a while for the thread that runs, which has
    // had the hub at least as long (no switch came between): natively the woken one would run
    // now. The running thread is not alone any more.
    let woken_waits = wanted.preempt
        && !resting
        && hub
            .woken_waits_since()
            .is_some_and(|at| now.saturating_sub(at) >= WOKEN_WAIT_NS);
    // CPU used since the last look: a hub whose thread blocked throughout, or only passed
    // through its own code, is not busy (and a kernel that does not say counts as busy).
    let used = if wanted.preempt && !resting {
        let cpu = blocked::cpu_ns(hub.tid());
        let used = cpu.map_or(u64::MAX, |cpu| cpu.saturating_sub(seen.cpu_ns));
        seen.cpu_ns = cpu.unwrap_or(0);
        used
    } else {
        0
    };
    let switched = switches != seen.switches || resting || seen.since == 0;
    if wanted.preempt && !resting {
        hub.seen_at_look(switches, now);
    }
    if switched {
        seen.switches = switches;
        seen.since = now;
        blocked::end(hub, &mut seen.episode, now, wanted.block_warn_ns);
        if resting {
            return Look::Resting;
        }
        if !woken_waits {
            return Look::Switched;
        }
    }
    let kept = now.saturating_sub(seen.since);
    if wanted.follows_blocks() && !switched {
        blocked::sample(hub, &mut seen.episode, now, wanted.block_warn_ns);
    }
    if wanted.preempt {
        let since_signal = now.saturating_sub(seen.signalled);
        // Half the time since the last look (a tick lengthened while the hub switched asks
        // for as large a share of it).
        let busy = used
            >= if woken_waits {
                WOKEN_BUSY_NS
            } else {
                BUSY_NS * (tick / TICK_NS).max(1)
            };
        if busy
            && (kept >= slice_ns || woken_waits)
            && since_signal
                >= if woken_waits {
                    WOKEN_WAIT_NS
                } else {
                    slice_ns / 2
                }
            && !(hub.alone() && !woken_waits && since_signal < ALONE_BACKOFF_SLICES * slice_ns)
            && !seen.episode.in_call()
            && blocked::hub_running_unblocked(hub, preempt::SIGNAL)
        {
            if woken_waits {
                hub.woken_served();
                if !preempt::follows_up() && !hub.sampled_this_turn() {
                    // The handler switches only at a point found twice in one turn (a loop,
                    // not a pass): a first delivery now, so that the one below can, rather than
                    // the next look's, half a slice later. (Where the handler can ask for its
                    // own second look, it does: `preempt::FOLLOW_UP_NS`.)
                    hub.want_preemption();
                    preempt::send(hub.tid());
                    sleep(SAMPLE_GAP_NS);
                }
                hub.want_follow_up();
            }
            hub.want_preemption();
            preempt::send(hub.tid());
            seen.signalled = now;
        }
    }
    Look::Kept
}

/// A thread of another hub woke one of `hub`'s while its running thread's turn had lasted a
/// while (`hub::watch::ASK_AFTER_NS`): natively the woken thread would get a core now, so the
/// waker, on its own OS thread, asks for the preemption the monitor would ask at its next look
/// (up to a tick later), with the check the monitor makes before any delivery: the hub's OS
/// thread runs user code (a signal that lands in a system call the kernel does not restart
/// makes it fail with EINTR) and does not block the signal. One delivery, plus the handler's
/// own second look if the point cannot be told a loop yet.
fn preempt_for_woken(hub: &'static Hub) {
    if blocked::hub_running_unblocked(hub, preempt::SIGNAL) {
        hub.want_follow_up();
        hub.want_preemption();
        preempt::send(hub.tid());
    }
}

fn sleep(ns: u64) {
    let ts = crate::sys::ns_timespec(ns);
    // SAFETY: a valid relative timespec; no remainder wanted.
    unsafe {
        crate::sys::syscall!(
            libc::SYS_clock_nanosleep,
            libc::CLOCK_MONOTONIC,
            0,
            &ts as *const libc::timespec,
            0
        )
    };
}
