//! `fork` (trap 13): the child keeps only the forking thread, green or not, with a fresh hub and
//! poller; the fd table stays valid; the thread pool is rebuilt on next use.
//!
//! The work is done by `pthread_atfork` handlers registered from the constructor, so it runs for
//! every fork that runs handlers: `fork` itself and glibc's own (`daemon`), never `vfork` or
//! `posix_spawn`, whose children exec. Registered first, ours run last before the fork (the
//! program's prepare handlers may still lock, wait and wake) and first in the child (whose
//! handlers then find a working library).

pub use crate::context::in_vfork_child;
use crate::context::note_process;
use crate::hub::Hub;
use crate::park::{self, AllBuckets};
use core::cell::UnsafeCell;
use std::sync::MutexGuard;

/// Every lock another OS thread (a pool thread, a waker) may hold, taken in the order they nest
/// elsewhere: none may be held by a thread the child will not have.
struct Locks {
    peeks: super::wait::ForkGuard,
    buckets: AllBuckets,
    pool: crate::tpool::ForkGuard,
    inbox: Option<(&'static Hub, MutexGuard<'static, crate::hub::Inbox>)>,
    /// Held last: no other thread is pointing the exports' routes.
    _routes: crate::patch::RoutesLock,
}

/// The locks of the fork in progress, from the prepare handler to the parent or child one.
struct Held(UnsafeCell<Option<Locks>>);

// SAFETY: written by a prepare handler once it holds every lock (the first of them, `peeks`,
// serialises forks of several OS threads) and emptied by the same thread's parent or child
// handler before that lock is released.
unsafe impl Sync for Held {}

static HELD: Held = Held(UnsafeCell::new(None));

extern "C" fn prepare() {
    let peeks = super::wait::before_fork();
    let buckets = park::lock_all();
    let pool = crate::tpool::before_fork();
    let inbox = Hub::current().map(|hub| (hub, hub.lock_inbox()));
    let _routes = crate::patch::RoutesLock::take();
    // SAFETY: see `Held`: this thread holds every lock now.
    unsafe {
        *HELD.0.get() = Some(Locks {
            peeks,
            buckets,
            pool,
            inbox,
            _routes,
        })
    };
}

fn take_held() -> Option<Locks> {
    // SAFETY: see `Held`: the forking thread, still holding the locks it stored.
    unsafe { (*HELD.0.get()).take() }
}

extern "C" fn parent() {
    drop(take_held());
}

extern "C" fn child() {
    note_process();
    let Some(mut locks) = take_held() else {
        return;
    };
    locks.buckets.empty_in_child();
    crate::fd::forget_waiters(&locks.buckets);
    drop(locks.buckets);
    locks.peeks.in_child();
    locks.pool.in_child();
    crate::green::helper::after_fork();
    crate::thread::sync::forget_tid_after_fork();
    crate::fd::forget_registrations();
    crate::sysmon::after_fork();
    crate::thread::hubs::after_fork();
    if let Some((hub, inbox)) = locks.inbox {
        // Each keeps only the forking thread's part, lowest layer first.
        let me = hub.current_green();
        crate::green::table::retire_all_but(me.hub_ptr(), me);
        hub.after_fork(inbox);
        crate::signal::after_fork();
        crate::dump::channel::open(hub);
    } else {
        // Forked by a thread with no hub: the child has none (the others were other threads').
        crate::hub::Hub::none_after_fork();
    }
}

/// From the constructor: notes this process, and registers the fork handlers.
pub fn watch_forks() {
    note_process();
    // SAFETY: handlers that are sound to run around any fork (see above).
    let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    if rc != 0 {
        crate::fatal!("cannot register fork handlers (error {rc})");
    }
}
