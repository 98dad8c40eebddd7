//! `gw-stacks`: one OS thread of the library's own that makes stacks ready ahead for a hub in a
//! burst of first runs (`stack::StackPool::send_ahead`), on a CPU no hub uses, so that the
//! kernel's work for each new stack (its guard, its page-table page and top page, ~3 µs) is
//! not the hub's. Started at the first such burst, never with a CPU per hub.
//!
//! Not a pool thread (`tpool`): those make the program's blocking calls and count as its OS
//! threads (`gw_os_threads` in the tests), and a burst's stacks queued in front of a call (a
//! resolver's, with `GREENWORLD_TPOOL_SIZE=1`) would delay it. Like the monitor it blocks every
//! signal, holds no lock and no descriptor: jobs come through a lock-free list, and it sleeps
//! on a futex word the posting hub wakes, never waiting for it.

use super::handoff::Handoff;
use core::sync::atomic::{AtomicU32, Ordering, fence};

type Job = Box<dyn FnOnce() + Send>;

/// Jobs posted and not taken yet.
static JOBS: Handoff<Job> = Handoff::new();

/// The thread's state, its futex word.
static STATE: AtomicU32 = AtomicU32::new(NONE);
/// Not started (or a fork child's: it has none).
const NONE: u32 = 0;
/// Running, or about to look at `JOBS` again.
const AWAKE: u32 = 1;
/// Waiting on `STATE` for a wake.
const ASLEEP: u32 = 2;
/// Could not be started: jobs are refused from then on.
const FAILED: u32 = 3;

/// Runs `job` on `gw-stacks`, started now if need be; never waits for it. False: no such
/// thread can be had (`job` is dropped unrun; the caller does the work itself).
pub fn post(job: Job) -> bool {
    match STATE.load(Ordering::Relaxed) {
        FAILED => return false,
        NONE if STATE
            .compare_exchange(NONE, AWAKE, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok() =>
        {
            JOBS.push(vec![job]);
            if !start() {
                STATE.store(FAILED, Ordering::Relaxed);
                JOBS.take_all(drop);
                return false;
            }
            return true;
        }
        _ => {}
    }
    JOBS.push(vec![job]);
    // Pairs with the thread's look at `JOBS` after it says it sleeps: either it sees this job
    // or this sees it asleep.
    fence(Ordering::SeqCst);
    if STATE
        .compare_exchange(ASLEEP, AWAKE, Ordering::SeqCst, Ordering::Relaxed)
        .is_ok()
    {
        // SAFETY: a private futex wake on a static word.
        unsafe {
            crate::sys::syscall!(
                libc::SYS_futex,
                STATE.as_ptr(),
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                1,
            )
        };
    }
    true
}

/// In a forked child: the thread is the parent's; the jobs it had not taken are dropped (each
/// owner resets its own state: `StackPool::after_fork`), and the next post starts one here.
pub fn after_fork() {
    JOBS.take_all(drop);
    if STATE.load(Ordering::Relaxed) != FAILED {
        STATE.store(NONE, Ordering::Relaxed);
    }
}

/// Makes the thread (every signal blocked from its first instruction, as the monitor's), named
/// before anyone can count it. False when it cannot be made.
fn start() -> bool {
    let real = crate::real::get();
    // SAFETY: sets are valid; this thread's own mask is put back right after.
    unsafe {
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut before: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        (real.pthread_sigmask)(libc::SIG_SETMASK, &all, &mut before);
        let mut thread: libc::pthread_t = 0;
        let rc = (real.pthread_create)(&mut thread, core::ptr::null(), run, core::ptr::null_mut());
        if rc == 0 {
            (real.pthread_setname_np)(thread, c"gw-stacks".as_ptr());
            (real.pthread_detach)(thread);
        }
        (real.pthread_sigmask)(libc::SIG_SETMASK, &before, core::ptr::null_mut());
        if rc != 0 {
            crate::log!(
                Info,
                "cannot start gw-stacks (error {rc}): hubs make their own stacks ready"
            );
        }
        rc == 0
    }
}

extern "C" fn run(_: *mut libc::c_void) -> *mut libc::c_void {
    let mut jobs = Vec::new();
    loop {
        JOBS.take_all(|job| jobs.push(job));
        if jobs.is_empty() {
            STATE.store(ASLEEP, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if !JOBS.is_empty() {
                // A post that saw this thread awake; if it saw it asleep, it set AWAKE itself.
                let _ = STATE.compare_exchange(ASLEEP, AWAKE, Ordering::SeqCst, Ordering::Relaxed);
                continue;
            }
            // SAFETY: a private futex wait on a static word, while it says ASLEEP.
            unsafe {
                crate::sys::syscall!(
                    libc::SYS_futex,
                    STATE.as_ptr(),
                    libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                    ASLEEP,
                    core::ptr::null::<libc::timespec>(),
                )
            };
            let _ = STATE.compare_exchange(ASLEEP, AWAKE, Ordering::SeqCst, Ordering::Relaxed);
            continue;
        }
        for job in jobs.drain(..) {
            job();
        }
    }
}
