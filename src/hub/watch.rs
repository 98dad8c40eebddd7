//! What a monitor on another OS thread may see of a hub (`sysmon`, as Go's sysmon watches its
//! Ps): how many times it switched threads, which thread runs, whether it sleeps in its own
//! poller, and its kernel thread id; and the one thing the monitor may ask of it, a preemption.
//!
//! Written by the hub's own OS thread with plain stores (a relaxed load and store, never a
//! locked read-modify-write: the switch path stays as cheap as it was), read by the monitor.
//! Every hub is listed in [`all`] from its creation: hubs are leaked, never freed.

use super::Hub;
use crate::green::Green;
use core::sync::atomic::{
    AtomicBool, AtomicI32, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

/// Marks [`Watched::woken_remotely`] as set (the switch count is in the low half).
const WOKEN: u64 = 1 << 32;

/// How many hubs the monitor can watch; hubs past it run unwatched (one line says so).
pub const MAX_HUBS: usize = 256;

static HUBS: [AtomicPtr<Hub>; MAX_HUBS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_HUBS];
static COUNT: AtomicUsize = AtomicUsize::new(0);

#[derive(Default)]
pub(super) struct Watched {
    /// Switches between threads (green or root), wrapping.
    switches: AtomicU32,
    /// The thread that runs (null until the first switch: the root).
    running: AtomicPtr<Green>,
    /// The OS thread's kernel id (the forking thread's own in a fork child).
    tid: AtomicI32,
    /// The hub's root sleeps in its poller: nothing of the hub runs, by choice.
    idle: AtomicBool,
    /// The monitor asked for a preemption; the signal handler takes it.
    preempt_wanted: AtomicBool,
    /// A thread of another hub woke one of this hub's (its root, or a green thread) while a
    /// thread ran here: the switch count then, with [`WOKEN`] set (0: none). While the count
    /// has not moved, the monitor preempts the running thread at its next look rather than
    /// once its slice is spent.
    woken_remotely: AtomicU64,
    /// When that wake came (CLOCK_MONOTONIC ns).
    woken_ns: AtomicU64,
    /// The earliest moment someone on another OS thread saw the running thread's turn under
    /// way (the monitor at a look, a waker at a wake): the switch count in the low half, the
    /// time in µs (wrapping) in the high half. A lower bound on how long the turn has lasted,
    /// kept without a clock read on the switch path.
    turn_seen: AtomicU64,
    /// The switch count, plus one, of the turn a waker last asked to preempt for a woken
    /// thread (0: none): one request a turn.
    asked_at: AtomicU32,
    /// A preemption for a woken thread was asked: if the interrupted point cannot be told a
    /// loop yet, the handler looks again shortly rather than waiting for the monitor.
    follow_up_wanted: AtomicBool,
    /// The POSIX timer that brings that second look (its id plus one; 0: not made yet, or
    /// made by a parent before a fork: timers are not inherited).
    follow_up_timer: AtomicI64,
    /// The switch count at which a preemption found nothing else to run, plus one (0: none).
    alone_at: AtomicU32,
    /// Where the preemption signal last found the running thread, at which switch count, and
    /// how many times it found it since that switch.
    sampled_pc: AtomicUsize,
    sampled_at: AtomicU32,
    samples: AtomicU32,
    /// The OS thread's `/proc` files the monitor reads, kept open.
    task_files: super::task_files::Kept,
}

/// The OS thread's kernel id (not hooked: the raw system call).
fn gettid() -> i32 {
    // SAFETY: no arguments.
    unsafe { crate::sys::syscall!(libc::SYS_gettid) as i32 }
}

impl Hub {
    /// Lists a new hub for the monitor, on its own OS thread.
    pub(super) fn enlist(&self) {
        let watched = &self.watched_by_monitor;
        let tid = gettid();
        watched.tid.store(tid, Ordering::Relaxed);
        watched.task_files.open(tid);
        watched.follow_up_timer.store(0, Ordering::Relaxed);
        let slot = COUNT.fetch_add(1, Ordering::AcqRel);
        match HUBS.get(slot) {
            Some(entry) => entry.store(self as *const Hub as *mut Hub, Ordering::Release),
            None => crate::log!(
                Warn,
                "more than {MAX_HUBS} hubs: the monitor does not see this one"
            ),
        }
    }

    /// In a fork child: the forking thread's id is new, and the other hubs' OS threads are gone.
    pub(super) fn enlist_after_fork(&self) {
        forget_all_but(Some(self));
        self.enlist();
    }

    /// Back to `to` (the root, or a host: see `handoff`) from a green thread: one plain store
    /// (the switch was counted when the green thread was resumed, which is enough to tell
    /// that the hub moved).
    #[inline]
    pub(super) fn note_return(&self, to: &'static Green) {
        self.watched_by_monitor
            .running
            .store(to as *const Green as *mut Green, Ordering::Release);
    }

    /// One switch to `to`: two plain stores.
    #[inline]
    pub(super) fn note_switch(&self, to: &'static Green) {
        let watched = &self.watched_by_monitor;
        let n = watched.switches.load(Ordering::Relaxed).wrapping_add(1);
        watched.switches.store(n, Ordering::Relaxed);
        watched
            .running
            .store(to as *const Green as *mut Green, Ordering::Release);
    }

    /// A preemption found nothing else to run (so far as this switch count goes).
    pub(super) fn note_alone(&self) {
        let watched = &self.watched_by_monitor;
        let at = watched.switches.load(Ordering::Relaxed).wrapping_add(1);
        watched.alone_at.store(at, Ordering::Relaxed);
    }

    /// Did a preemption since the last switch find that nothing else could run?
    pub fn alone(&self) -> bool {
        let watched = &self.watched_by_monitor;
        watched.alone_at.load(Ordering::Relaxed)
            == watched.switches.load(Ordering::Relaxed).wrapping_add(1)
    }

    #[inline]
    pub(super) fn set_idle(&self, idle: bool) {
        self.watched_by_monitor.idle.store(idle, Ordering::Relaxed);
    }

    /// Switches so far (for the monitor: unchanged between two looks means one thread ran
    /// throughout, or the hub slept).
    pub fn switches(&self) -> u32 {
        self.watched_by_monitor.switches.load(Ordering::Relaxed)
    }

    /// Does the hub sleep in its poller (nothing runnable)?
    pub fn idle(&self) -> bool {
        self.watched_by_monitor.idle.load(Ordering::Relaxed)
    }

    /// The OS thread's kernel id.
    pub fn tid(&self) -> i32 {
        self.watched_by_monitor.tid.load(Ordering::Relaxed)
    }

    /// Reads the OS thread's `/proc` `file` from the descriptor kept for it; None when none is
    /// kept (the caller may open the file itself) or it cannot be read.
    pub fn read_task_file(
        &self,
        file: super::task_files::TaskFile,
        buf: &mut [u8],
    ) -> Option<usize> {
        self.watched_by_monitor.task_files.read(file, buf)
    }

    /// The thread running now, as last published (the root's before the first switch).
    pub fn running(&self) -> &'static Green {
        let green = self.watched_by_monitor.running.load(Ordering::Acquire);
        // SAFETY: null or a control block of this hub; blocks are never freed (the handle
        // table keeps them).
        unsafe { green.as_ref() }.unwrap_or(self.root)
    }

    /// A thread of another OS thread woke one of this hub's threads (its root, or a green
    /// thread through the inbox): if a thread runs here, the woken one waits for it (see
    /// [`Hub::woken_waits_since`]). A clock read, on a wake across hubs only. When the running
    /// thread's turn is known to have lasted [`ASK_AFTER_NS`] already, the waker asks for its
    /// preemption at once ([`set_preempt_for_woken`]), rather than leave it to the monitor's
    /// next look.
    pub(super) fn note_woken_remotely(&self) {
        let watched = &self.watched_by_monitor;
        if watched.idle.load(Ordering::Relaxed) {
            return;
        }
        let at = watched.switches.load(Ordering::Relaxed);
        let now = crate::sys::now_ns();
        watched.woken_ns.store(now, Ordering::Relaxed);
        watched
            .woken_remotely
            .store(WOKEN | u64::from(at), Ordering::Release);
        let lasted = self.turn_lasted(at, now);
        if lasted.is_none() {
            self.note_turn_seen(at, now);
        }
        let ask = PREEMPT_FOR_WOKEN.load(Ordering::Relaxed);
        if ask != 0
            && lasted.is_some_and(|ns| ns >= ASK_AFTER_NS)
            && watched.asked_at.load(Ordering::Relaxed) != at.wrapping_add(1)
            && !watched.preempt_wanted.load(Ordering::Relaxed)
        {
            watched
                .asked_at
                .store(at.wrapping_add(1), Ordering::Relaxed);
            // SAFETY: only ever a `fn(&'static Hub)` (`set_preempt_for_woken`).
            let ask: fn(&'static Hub) = unsafe { core::mem::transmute(ask) };
            ask(self.leaked());
        }
    }

    /// This hub as the `'static` it is (hubs are leaked, never freed).
    fn leaked(&self) -> &'static Hub {
        // SAFETY: every hub is leaked at its creation (see the module).
        unsafe { &*(self as *const Hub) }
    }

    /// Someone on another OS thread saw the turn at switch count `at` under way at `now_ns`;
    /// kept if it is the first sighting of that turn.
    fn note_turn_seen(&self, at: u32, now_ns: u64) {
        let us = (now_ns / 1_000) as u32;
        self.watched_by_monitor
            .turn_seen
            .store(u64::from(us) << 32 | u64::from(at), Ordering::Relaxed);
    }

    /// How long, at least, the turn at switch count `at` has lasted at `now_ns`, if anyone saw
    /// it under way before.
    fn turn_lasted(&self, at: u32, now_ns: u64) -> Option<u64> {
        let seen = self.watched_by_monitor.turn_seen.load(Ordering::Relaxed);
        (seen as u32 == at).then(|| {
            let since_us = ((now_ns / 1_000) as u32).wrapping_sub((seen >> 32) as u32);
            u64::from(since_us) * 1_000
        })
    }

    /// For the monitor, at each look at a hub that is not resting: the turn at switch count
    /// `at` is under way at `now_ns` (noted if it is the first sighting).
    pub fn seen_at_look(&self, at: u32, now_ns: u64) {
        if self.turn_lasted(at, now_ns).is_none() {
            self.note_turn_seen(at, now_ns);
        }
    }

    /// For the monitor: since when has one of the hub's threads, woken from another OS thread
    /// while the hub was not idle, waited for the thread that runs, which has had the hub at
    /// least that long (None: no such wake, or the hub switched since)? Natively the woken
    /// thread would get a core at once (the kernel preempts a thread that has run for its
    /// wake-up granularity, about a millisecond, for a thread that slept). A switch since the
    /// wake let a woken root run (it runs before any other) and put a woken green thread in
    /// the run queue, its turn to come without a preemption.
    pub fn woken_waits_since(&self) -> Option<u64> {
        let watched = &self.watched_by_monitor;
        let woken = watched.woken_remotely.load(Ordering::Acquire);
        (woken & WOKEN != 0 && woken as u32 == watched.switches.load(Ordering::Relaxed))
            .then(|| watched.woken_ns.load(Ordering::Relaxed))
    }

    /// For the monitor: the running thread was preempted for the woken one.
    pub fn woken_served(&self) {
        self.watched_by_monitor
            .woken_remotely
            .store(0, Ordering::Relaxed);
    }

    /// The monitor asks for a preemption (before it sends the signal).
    pub fn want_preemption(&self) {
        self.watched_by_monitor
            .preempt_wanted
            .store(true, Ordering::Release);
    }

    /// Notes where the preemption signal found the running thread; returns where it found it
    /// the time before, if that was since the last switch, and how many times it has found it
    /// since that switch, this one included (on the hub's own OS thread, in the handler).
    pub fn resample_pc(&self, pc: usize) -> (Option<usize>, u32) {
        let watched = &self.watched_by_monitor;
        let now = watched.switches.load(Ordering::Relaxed);
        let same_turn = watched.sampled_at.load(Ordering::Relaxed) == now;
        let before = same_turn.then(|| watched.sampled_pc.load(Ordering::Relaxed));
        let samples = if same_turn {
            watched.samples.load(Ordering::Relaxed).saturating_add(1)
        } else {
            1
        };
        watched.sampled_pc.store(pc, Ordering::Relaxed);
        watched.sampled_at.store(now, Ordering::Relaxed);
        watched.samples.store(samples, Ordering::Relaxed);
        (before, samples)
    }

    /// Has the preemption signal found the running thread since the last switch (so one more
    /// delivery can tell a loop from a pass)?
    pub fn sampled_this_turn(&self) -> bool {
        let watched = &self.watched_by_monitor;
        watched.samples.load(Ordering::Relaxed) > 0
            && watched.sampled_at.load(Ordering::Relaxed)
                == watched.switches.load(Ordering::Relaxed)
    }

    /// A preemption for a woken thread is asked (with [`Hub::want_preemption`]): the handler
    /// may look again shortly ([`Hub::take_follow_up`]).
    pub fn want_follow_up(&self) {
        self.watched_by_monitor
            .follow_up_wanted
            .store(true, Ordering::Relaxed);
    }

    /// The handler takes the follow-up request, if there is one.
    pub fn take_follow_up(&self) -> bool {
        let wanted = &self.watched_by_monitor.follow_up_wanted;
        wanted.load(Ordering::Relaxed) && wanted.swap(false, Ordering::Relaxed)
    }

    /// The hub's follow-up timer (see `sysmon::preempt`), its id plus one, 0 when none was made
    /// in this process.
    pub fn follow_up_timer(&self) -> i64 {
        self.watched_by_monitor
            .follow_up_timer
            .load(Ordering::Relaxed)
    }

    /// Keeps the follow-up timer made on the hub's own OS thread (its id plus one).
    pub fn keep_follow_up_timer(&self, id_plus_one: i64) {
        self.watched_by_monitor
            .follow_up_timer
            .store(id_plus_one, Ordering::Relaxed);
    }

    /// The signal handler takes the request, if there is one.
    pub fn take_preemption(&self) -> bool {
        let wanted = &self.watched_by_monitor.preempt_wanted;
        wanted.load(Ordering::Relaxed) && wanted.swap(false, Ordering::Acquire)
    }
}

/// How long a turn must be known to have lasted for a wake across hubs to ask for its
/// preemption at once: a thread that has just started is left its moment (the monitor still
/// preempts it for the woken one, at its next look).
pub const ASK_AFTER_NS: u64 = 100_000;

/// What a wake across hubs calls to ask for the preemption of a hub's running thread (0:
/// nobody asks; set once by the monitor when it preempts).
static PREEMPT_FOR_WOKEN: AtomicUsize = AtomicUsize::new(0);

/// The monitor's way to preempt a hub's running thread for a thread woken from another hub,
/// which judges whether the hub's OS thread may be signalled now.
pub fn set_preempt_for_woken(ask: fn(&'static Hub)) {
    PREEMPT_FOR_WOKEN.store(ask as usize, Ordering::Relaxed);
}

/// In a fork child: the hubs listed were the parent's threads'; the pollers of those but
/// `keep` (the forking thread's) are closed.
pub(super) fn forget_all_but(keep: Option<&Hub>) {
    for hub in all() {
        if !keep.is_some_and(|keep| core::ptr::eq(keep, hub)) {
            hub.poller.close_in_child();
            hub.watched_by_monitor.task_files.close();
            hub.spin.close_in_child();
        }
    }
    forget_all();
}

fn forget_all() {
    let listed = COUNT.load(Ordering::Acquire).min(MAX_HUBS);
    for entry in &HUBS[..listed] {
        entry.store(core::ptr::null_mut(), Ordering::Relaxed);
    }
    COUNT.store(0, Ordering::Release);
}

/// Every hub made so far (in this process), oldest first: the monitor's and the dump's list.
pub fn all() -> impl Iterator<Item = &'static Hub> {
    let listed = COUNT.load(Ordering::Acquire).min(MAX_HUBS);
    HUBS[..listed].iter().filter_map(|entry| {
        // SAFETY: null or a leaked hub.
        unsafe { entry.load(Ordering::Acquire).as_ref() }
    })
}
