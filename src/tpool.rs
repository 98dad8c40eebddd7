//! The thread pool (eventlet's `tpool`): a few real OS threads that make the calls which cannot
//! be made non-blocking — glibc's own blocking protocol on a process-shared primitive, the
//! resolver, child waits, and (with `GREENWORLD_FILEIO=pool`) regular-file I/O. The green
//! thread hands its call to the pool and parks; the pool thread makes the real call and wakes it
//! through its hub.
//!
//! Pool threads are made with the real `pthread_create` (never std's, which would come back
//! through our own hook) on first need, up to `GREENWORLD_TPOOL_SIZE`. They have no hub, so
//! every hooked call they make is plain libc.

use crate::green::Green;
use crate::hub::Hub;
use crate::outcome::Outcome;
use crate::stats::ParkReason;
use core::sync::atomic::{AtomicUsize, Ordering};
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

/// A call waiting for a pool thread.
enum Job {
    /// The work lives on the parked green thread's stack; the pool thread wakes it after.
    Borrowed {
        work: *mut (dyn FnMut() + Send),
        green: &'static Green,
        token: u64,
    },
    /// The work owns what it needs and wakes whom it must itself: its submitter may have
    /// stopped waiting for it ([`detach`]'s, when no thread of its own could be started).
    Owned(Box<dyn FnOnce() + Send>),
}

// SAFETY: `work` is Send, and stays valid (on the parked caller's stack) until `green` is
// woken, which the pool thread does only after running it; an owned job is Send itself.
unsafe impl Send for Job {}

struct Pool {
    queue: Mutex<VecDeque<Job>>,
    ready: Condvar,
    threads: AtomicUsize,
    idle: AtomicUsize,
}

static POOL: Pool = Pool {
    queue: Mutex::new(VecDeque::new()),
    ready: Condvar::new(),
    threads: AtomicUsize::new(0),
    idle: AtomicUsize::new(0),
};

/// The pool's state, for a dump.
pub struct State {
    pub threads: usize,
    pub idle: usize,
    pub queued: usize,
}

pub fn state() -> State {
    State {
        threads: POOL.threads.load(Ordering::Acquire),
        idle: POOL.idle.load(Ordering::Acquire),
        queued: POOL.queue.lock().map_or(0, |queue| queue.len()),
    }
}

/// Would [`run`] hand a call to the pool (rather than make it inline)? Only when the caller is a
/// green thread, or a hub's root while green threads could run meanwhile.
#[inline]
pub fn would_park() -> bool {
    parking_hub().is_some()
}

/// The caller's hub, when a pool call would park the caller on it: not from a signal handler,
/// whose calls must stay what they are natively (a hand-off locks and allocates), nor from a
/// thread on a copied stack (`green::copied`): the pool thread would read and write the call's
/// arguments and result on that stack while another thread's bytes are there, so the call is
/// made inline, blocking the hub as it blocks natively.
#[inline]
fn parking_hub() -> Option<&'static Hub> {
    Hub::current().filter(|hub| {
        hub.parkable() && !crate::context::in_handler() && !hub.current_green().shared_stack.get()
    })
}

/// Runs `call` on a pool thread while the calling green thread parks; inline when nothing else
/// could run on this OS thread meanwhile (the blocking call is then exactly right).
pub fn run<R: Send>(call: impl FnOnce() -> R + Send) -> R {
    run_as(ParkReason::Pool, call)
}

/// `run` for a libc call that returns a negative value and sets errno on failure: errno is the
/// pool thread's, so it comes back with the result (`Errno`); a success leaves the caller's
/// errno alone, as the call itself would.
pub fn run_syscall<R: Send + PartialOrd + Default>(
    reason: ParkReason,
    call: impl FnOnce() -> R + Send,
) -> Outcome<R> {
    let (result, code) = run_as(reason, move || {
        let result = call();
        (result, crate::sys::errno())
    });
    if result < R::default() {
        Outcome::Errno(code)
    } else {
        Outcome::Done(result)
    }
}

/// `run`, counting the park under `reason` (for `GREENWORLD_STATS`).
pub fn run_as<R: Send>(reason: ParkReason, call: impl FnOnce() -> R + Send) -> R {
    let Some(hub) = parking_hub() else {
        return call();
    };
    let mut call = Some(call);
    let mut result = None;
    let mut work = || result = call.take().map(|call| call());
    let me = hub.current_green();
    let token = me.arm();
    let work: &mut (dyn FnMut() + Send) = &mut work;
    // SAFETY: erases the borrow's lifetime: the job is run, and its waker presented, before
    // this frame can return (it returns only once woken with `token`).
    let work: *mut (dyn FnMut() + Send) = unsafe { core::mem::transmute(work) };
    submit(Job::Borrowed {
        work,
        green: me,
        token,
    });
    let on = match reason {
        ParkReason::File => crate::waiting::WaitOn::File.word(),
        _ => crate::waiting::WaitOn::Pool.word(),
    };
    hub.park(me, token, on, None);
    result.unwrap_or_else(|| crate::fatal!("a pool call returned without running"))
}

/// Runs `work` on a thread of its own, without waiting for it: for a call that may block for
/// as long as the program likes (a wait for some child) and whose waiters may give up on it (a
/// signal interrupts their wait); `work` wakes whoever still waits. Not on a pool thread: a
/// pool busy with such waits would starve the short calls (the resolver) that the awaited
/// event may itself depend on. Allocates; never from a signal handler.
pub fn detach(work: impl FnOnce() + Send + 'static) {
    let work: Box<Box<dyn FnOnce() + Send>> = Box::new(Box::new(work));
    let arg = Box::into_raw(work).cast::<libc::c_void>();
    let mut thread: libc::pthread_t = 0;
    // SAFETY: the real pthread_create with a valid start routine, default attributes, and an
    // argument that `run_detached` takes ownership of.
    let rc = unsafe {
        (crate::real::get().pthread_create)(&mut thread, core::ptr::null(), run_detached, arg)
    };
    if rc != 0 {
        crate::log!(
            Warn,
            "cannot start a thread for a long wait (error {rc}); queued on the pool"
        );
        // SAFETY: the box made above, not taken by a thread that never started.
        let work = unsafe { Box::from_raw(arg.cast::<Box<dyn FnOnce() + Send>>()) };
        submit(Job::Owned(*work));
        return;
    }
    name(thread, c"gw-wait");
    // SAFETY: a thread we just made and never join.
    unsafe { (crate::real::get().pthread_detach)(thread) };
}

extern "C" fn run_detached(arg: *mut libc::c_void) -> *mut libc::c_void {
    block_signals();
    // SAFETY: the box `detach` made for this thread alone.
    let work = unsafe { Box::from_raw(arg.cast::<Box<dyn FnOnce() + Send>>()) };
    work();
    core::ptr::null_mut()
}

/// Signals are for the program's threads: a process-directed one must reach a hub's OS thread,
/// where it can interrupt the call a native thread would see interrupted.
fn block_signals() {
    // SAFETY: a full set, applied to this thread's own mask.
    unsafe {
        let mut all: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        (crate::real::get().pthread_sigmask)(libc::SIG_SETMASK, &all, core::ptr::null_mut());
    }
}

fn submit(job: Job) {
    POOL.queue
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push_back(job);
    let size = crate::config::get().tpool_size;
    if POOL.idle.load(Ordering::Acquire) == 0 && POOL.threads.load(Ordering::Acquire) < size {
        spawn_worker();
    }
    POOL.ready.notify_one();
}

fn spawn_worker() {
    POOL.threads.fetch_add(1, Ordering::AcqRel);
    let mut thread: libc::pthread_t = 0;
    // SAFETY: the real pthread_create with a valid start routine and default attributes.
    let rc = unsafe {
        (crate::real::get().pthread_create)(
            &mut thread,
            core::ptr::null(),
            worker,
            core::ptr::null_mut(),
        )
    };
    if rc != 0 {
        POOL.threads.fetch_sub(1, Ordering::AcqRel);
        if POOL.threads.load(Ordering::Acquire) == 0 {
            crate::fatal!("cannot start a pool thread (error {rc}) and none is running");
        }
        crate::log!(Warn, "cannot start another pool thread (error {rc})");
        return;
    }
    name(thread, c"gw-pool");
    // SAFETY: a thread we just made and never join.
    unsafe { (crate::real::get().pthread_detach)(thread) };
}

/// Names a thread of the library's, made a moment ago, before anyone can count it: a new
/// thread takes its creator's name, and a pool thread started from another hub's OS thread
/// would pass for that hub (`gw-hub-1`), which `/proc/self/task` and tools go by.
fn name(thread: libc::pthread_t, name: &core::ffi::CStr) {
    // SAFETY: a live thread (detached only after this) and a name of at most 15 bytes.
    unsafe { (crate::real::get().pthread_setname_np)(thread, name.as_ptr()) };
}

extern "C" fn worker(_: *mut libc::c_void) -> *mut libc::c_void {
    block_signals();
    loop {
        let job = {
            let mut queue = POOL.queue.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(job) = queue.pop_front() {
                    break job;
                }
                POOL.idle.fetch_add(1, Ordering::AcqRel);
                queue = POOL.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
                POOL.idle.fetch_sub(1, Ordering::AcqRel);
            }
        };
        match job {
            Job::Borrowed { work, green, token } => {
                // SAFETY: see `Job`: valid until the green thread is woken, just below.
                unsafe { (*work)() };
                green.unpark(token);
            }
            Job::Owned(work) => work(),
        }
    }
}

/// Held across `fork`, so that no pool thread is inside the queue's lock when the child is
/// made (the child would wait for it forever).
pub struct ForkGuard(std::sync::MutexGuard<'static, VecDeque<Job>>);

pub fn before_fork() -> ForkGuard {
    ForkGuard(POOL.queue.lock().unwrap_or_else(|e| e.into_inner()))
}

impl ForkGuard {
    /// In a forked child: the pool's threads do not exist; queued calls belong to retired
    /// threads. The pool is rebuilt on next use.
    pub fn in_child(mut self) {
        self.0.clear();
        POOL.threads.store(0, Ordering::Release);
        POOL.idle.store(0, Ordering::Release);
    }
}
