//! The `thread` subsystem (eventlet's `thread=`): `pthread_create` makes a green thread on the
//! calling OS thread's hub, and every pthread function that takes a `pthread_t` accepts a green
//! handle (trap 7).

pub mod affinity;
pub mod c11;
pub mod futex;
pub mod handles;
pub mod hubs;
pub mod keys;
pub mod raw_waiters;
pub mod sync;

use crate::config::DEFAULT_STACK_SIZE;
use crate::green::stack::{GUARD, Stack};
use crate::green::{Entry, Green, Join, StackInfo, table};
use crate::hub::{Hub, Owners};
use crate::outcome::Outcome::{self, Bypass, Done};
use crate::patch::{self, Subsystem};
use crate::waiting::WaitOn;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use libc::{
    EAGAIN, EBUSY, EDEADLK, EINVAL, ESRCH, ETIMEDOUT, c_int, c_void, pthread_attr_t, pthread_t,
};

// glibc functions the libc crate does not declare.
unsafe extern "C" {
    fn pthread_getattr_default_np(attr: *mut pthread_attr_t) -> c_int;
    fn pthread_attr_getdetachstate(attr: *const pthread_attr_t, state: *mut c_int) -> c_int;
}

#[inline]
pub(crate) fn active() -> bool {
    patch::active(Subsystem::Thread)
}

/// The green thread behind `handle`: Ok(None) for a real thread's handle, Err(ESRCH) for a
/// green handle whose thread is gone.
pub(crate) fn green_of(handle: pthread_t) -> Result<Option<&'static Green>, c_int> {
    table::lookup(handle as usize).map_err(|table::Gone| ESRCH)
}

/// A green handle's thread, or what the call does instead: libc (not patched, or a real
/// thread's handle), or ESRCH for a green thread that is gone.
pub(crate) fn green_handle(handle: pthread_t) -> Result<&'static Green, Outcome<c_int>> {
    if !active() {
        return Err(Bypass);
    }
    match green_of(handle) {
        Ok(Some(green)) => Ok(green),
        Ok(None) => Err(Bypass),
        Err(code) => Err(Done(code)),
    }
}

/// `pthread_create`.
///
/// # Safety
/// As `pthread_create(3)`: `out` writable, `attr` null or initialised.
pub unsafe fn create(
    out: *mut pthread_t,
    attr: *const pthread_attr_t,
    start: crate::real::StartRoutine,
    arg: *mut c_void,
    created_at: usize,
) -> Outcome<c_int> {
    if !active() || raw_waiters::created_by_raw_waiter(created_at) {
        return Bypass;
    }
    let Some(hub) = hub_or_native() else {
        return Bypass;
    };
    // SAFETY: forwarded from our caller's contract.
    Done(unsafe { spawn(hub, out, attr, Entry::Posix(start, arg), created_at) })
}

/// Who handles what a hub sees: descriptor readiness is `fd`'s (its keys), a look asked for by a
/// signal handler is `signal`'s. Hubs are made here only.
static HUB_OWNERS: Owners = Owners {
    io_ready: crate::fd::wait::dispatch,
    io_prefetch: crate::fd::wait::prefetch,
    poller_renewed: crate::fd::rewatch,
    look: crate::signal::interrupt::look,
    ended: reap,
    run_handler: crate::signal::run_deferred,
    signal_to: crate::signal::mask::send_to,
    made: crate::dump::channel::open,
    dump: crate::dump::on_request,
    maybe_deadlocked: crate::dump::deadlock::maybe_deadlocked,
    deadlocked: crate::dump::deadlock::report,
};

/// A green thread has ended (its hub is done with it): its return value goes to the joiner
/// waiting for it, or waits for one; a detached thread's slot is freed at once.
fn reap(green: &'static Green) {
    let mut join = green.join.lock().unwrap_or_else(|e| e.into_inner());
    match *join {
        Join::Detached => {
            drop(join);
            // SAFETY: detached and finished: nobody may refer to it any more. Its hub reaps it
            // on its own OS thread.
            unsafe { table::remove(green, Some(green.hub().free_slots())) };
        }
        Join::Waiting { joiner, token } => {
            *join = Join::Done;
            drop(join);
            joiner.unpark(token);
        }
        Join::Joinable | Join::Done => *join = Join::Done,
    }
}

/// This OS thread's hub, made on first use; None when it cannot be made (no descriptor left
/// for its epoll and eventfd: the program is at `RLIMIT_NOFILE`), and the new thread is then a
/// real OS thread, as natively — a call that succeeds natively must not fail here.
#[inline]
pub(crate) fn hub_or_native() -> Option<&'static Hub> {
    if let Some(hub) = Hub::current() {
        return Some(hub);
    }
    make_hub_or_native()
}

#[cold]
fn make_hub_or_native() -> Option<&'static Hub> {
    match Hub::get_or_create(&HUB_OWNERS) {
        Ok(hub) => Some(hub),
        Err(e) => {
            crate::log!(
                Info,
                "cannot start a hub ({e}); the new thread is a real OS thread"
            );
            None
        }
    }
}

/// What a `pthread_attr_t` asks of a new thread.
struct Wanted {
    stack_size: usize,
    guard: usize,
    detached: bool,
    /// Memory the program supplied with `pthread_attr_setstack`.
    stack_memory: Option<(usize, usize)>,
}

/// glibc's default stack size, as an attribute without an explicit size reports it.
fn glibc_default_stack_size() -> usize {
    static CACHED: AtomicUsize = AtomicUsize::new(0);
    let cached = CACHED.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    let mut size = DEFAULT_STACK_SIZE;
    // SAFETY: attr is initialised by pthread_getattr_default_np before it is read and destroyed.
    unsafe {
        let mut attr: pthread_attr_t = core::mem::zeroed();
        if pthread_getattr_default_np(&mut attr) == 0 {
            libc::pthread_attr_getstacksize(&attr, &mut size);
            libc::pthread_attr_destroy(&mut attr);
        }
    }
    CACHED.store(size, Ordering::Relaxed);
    size
}

/// # Safety
/// `attr` is null or an initialised attribute object.
unsafe fn wanted(attr: *const pthread_attr_t) -> Wanted {
    let configured = crate::config::get().stack_size;
    let mut wanted = Wanted {
        stack_size: configured,
        guard: GUARD,
        detached: false,
        stack_memory: None,
    };
    if attr.is_null() {
        return wanted;
    }
    let (mut size, mut guard, mut state) = (0usize, 0usize, 0 as c_int);
    let (mut addr, mut mem_size) = (core::ptr::null_mut::<c_void>(), 0usize);
    // SAFETY: attr is initialised (caller); the out-pointers are valid locals.
    unsafe {
        libc::pthread_attr_getstacksize(attr, &mut size);
        libc::pthread_attr_getguardsize(attr, &mut guard);
        pthread_attr_getdetachstate(attr, &mut state);
        libc::pthread_attr_getstack(attr, &mut addr, &mut mem_size);
    }
    // glibc reports an unset stack address as (0 - size): top-of-stack minus size.
    if (addr as usize).wrapping_add(mem_size) != 0 {
        wanted.stack_memory = Some((addr as usize, mem_size));
    }
    if size != glibc_default_stack_size() {
        wanted.stack_size = size;
    }
    wanted.guard = guard.max(GUARD);
    wanted.detached = state == libc::PTHREAD_CREATE_DETACHED;
    wanted
}

/// A C++ runtime in the process learns that it has more than one thread: glibc's
/// `__libc_single_threaded` goes false, as glibc's own `pthread_create` makes it (and never
/// back). libstdc++ reads it to take a function-local static's guard without waiting (a second
/// thread finding it pending throws `recursive_init_error`: node's workers aborted) and to count
/// `shared_ptr` references with plain increments, both wrong once threads can switch in the
/// middle (at a hooked call, or by preemption in the program's own code). glibc reads the same
/// flag for its own fast paths (no cancellation dance around each system call, no atomic
/// stdio and malloc locks), which stay right under green threads, since they never switch
/// inside glibc, and which cost 8 % more instructions on a socket round trip once left: so the
/// flag goes false only when a C++ runtime is loaded (`__cxa_guard_acquire` resolves), checked
/// at a thread's creation whenever the loaded objects changed since the last look.
fn tell_a_cxx_runtime() {
    static DONE: AtomicBool = AtomicBool::new(false);
    static LOOKED_AT: AtomicU32 = AtomicU32::new(u32::MAX);
    if DONE.load(Ordering::Relaxed) {
        return;
    }
    let generation = crate::scope::GENERATION.load(Ordering::Acquire);
    // A load, not a swap: this runs at every spawn, and two hubs looking at once only look twice.
    if LOOKED_AT.load(Ordering::Relaxed) == generation {
        return;
    }
    LOOKED_AT.store(generation, Ordering::Relaxed);
    // SAFETY: NUL-terminated names; lookups made here, not in an allocator.
    unsafe {
        if libc::dlsym(libc::RTLD_DEFAULT, c"__cxa_guard_acquire".as_ptr()).is_null() {
            return;
        }
        let flag = libc::dlsym(libc::RTLD_DEFAULT, c"__libc_single_threaded".as_ptr());
        DONE.store(true, Ordering::Relaxed);
        if !flag.is_null() {
            // SAFETY: glibc's `char __libc_single_threaded` (2.32+), which after start-up only
            // ever goes from 1 to 0.
            flag.cast::<u8>().write_volatile(0);
        }
    }
}

/// Makes a green thread running `entry` on `hub`, this OS thread's.
///
/// # Safety
/// `out` writable; `attr` null or initialised.
pub(crate) unsafe fn spawn(
    hub: &'static Hub,
    out: *mut pthread_t,
    attr: *const pthread_attr_t,
    entry: Entry,
    created_at: usize,
) -> c_int {
    // SAFETY: attr per our contract.
    let affinity = match unsafe { affinity::for_new_thread(hub, attr) } {
        Ok(mask) => mask,
        Err(code) => return code,
    };
    // SAFETY: attr per our contract.
    let wanted = unsafe { wanted(attr) };
    // None: on this hub's shelf, placed at its first run (`hub::steal`).
    let placed = hubs::place_from(hub, affinity, || {
        wanted.stack_memory.is_none() && crate::green::copied::wanted_for(wanted.stack_size)
    });
    let home = placed.unwrap_or(hub);
    // Reserved (at least address space, so that EAGAIN comes here, as glibc's): unless it is a
    // resident one, the thread takes its memory at its first run (`Hub::first_run`).
    let stack = match wanted.stack_memory {
        // SAFETY: pthread_attr_setstack's contract gives the memory to the new thread.
        Some((addr, size)) => unsafe { Stack::borrowed(addr, size) },
        // The copied-stack mode: the hub it runs on lends its shared region (`green::copied`).
        None if crate::green::copied::wanted_for(wanted.stack_size) => home.shared_stack(),
        None => hub.reserve_stack(wanted.stack_size, wanted.guard),
    };
    let Some(stack) = stack else {
        crate::log!(
            Debug,
            "no stack of {} bytes; pthread_create fails with EAGAIN",
            wanted.stack_size
        );
        return EAGAIN;
    };
    let (home, shelved) = match placed {
        Some(home) => (home, false),
        None => (hub, hubs::waits_on_shelf(hub, &stack)),
    };
    let info = StackInfo::of(&stack);
    // A resident (or the program's own) stack is taken at once, and for good.
    let settled = stack.ready_to_run();
    // SAFETY: `insert` hands a free slot holding a dead block, as `revive` needs.
    let Some(green) = table::insert(hub.free_slots(), |slot| unsafe {
        Green::revive(
            slot,
            home as *const Hub as *const (),
            info,
            settled,
            entry,
            wanted.detached,
            created_at,
        )
    }) else {
        crate::log!(
            Warn,
            "green thread table full; pthread_create fails with EAGAIN"
        );
        hub.put_stack(stack);
        return EAGAIN;
    };
    affinity::start_with(green, affinity);
    tell_a_cxx_runtime();
    if shelved {
        hub.spawn_stealable(green, stack, run);
    } else if core::ptr::eq(home, hub) {
        hub.spawn(green, stack, run);
    } else {
        home.place(hub, green, stack, run);
    }
    crate::sysmon::thread_made();
    // SAFETY: out is writable (caller).
    unsafe { *out = green.handle() };
    0
}

/// A green thread's whole life, on its own stack.
fn run(green: &'static Green) -> usize {
    let retval = match green.entry.get() {
        Some(Entry::Posix(start, arg)) => start(arg) as usize,
        Some(Entry::C11(start, arg)) => start(arg) as isize as usize,
        None => 0,
    };
    ending(green);
    retval
}

/// What glibc does for an ending thread: `thread_local` destructors, key destructors, and
/// robust mutexes made owner-dead.
fn ending(green: &'static Green) {
    // Off the list of interruptible waits if it ends inside one (`pthread_exit` from a
    // handler that ran as the wait ended).
    crate::signal::interrupt_leave(green.hub(), green);
    run_tls_destructors(green);
    keys::run_destructors(green);
    sync::mutex::green_thread_ending();
}

/// Runs the thread's `thread_local` destructors, last registered first, those they register
/// included, as glibc's `__call_tls_dtors` at a pthread's end.
fn run_tls_destructors(green: &'static Green) {
    loop {
        // SAFETY: only the thread itself touches its list, and not across this pop.
        let next = unsafe { (*green.tls_dtors.get()).pop() };
        let Some((dtor, obj)) = next else { break };
        // SAFETY: registered by the program for this object.
        unsafe { dtor(obj) };
    }
    // SAFETY: as above; the list's memory goes with the thread.
    unsafe { *green.tls_dtors.get() = Vec::new() };
}

/// `__cxa_thread_atexit_impl` (what a C++ `thread_local` with a destructor registers through):
/// with private thread-locals, a green thread's destructors are its own and run at its end;
/// otherwise, and on the OS thread itself, glibc's list (run at the OS thread's end).
pub fn thread_atexit(dtor: Option<crate::real::KeyDestructor>, obj: *mut c_void) -> Outcome<c_int> {
    let Some(dtor) = dtor else { return Bypass };
    if !crate::green::tls::private() {
        return Bypass;
    }
    match Hub::current() {
        Some(hub) if hub.in_green() => {
            let me = hub.current_green();
            // SAFETY: only the running thread touches its own list.
            unsafe { (*me.tls_dtors.get()).push((dtor, obj)) };
            Done(0)
        }
        _ => Bypass,
    }
}

/// `pthread_join`, `pthread_tryjoin_np` and the timed joins: `deadline` in CLOCK_MONOTONIC ns.
///
/// # Safety
/// `retval` null or writable.
pub unsafe fn join(handle: pthread_t, retval: *mut *mut c_void, wait: JoinWait) -> Outcome<c_int> {
    let green = match green_handle(handle) {
        Ok(green) => green,
        Err(outcome) => return outcome,
    };
    match join_green(green, wait) {
        Ok(value) => {
            if !retval.is_null() {
                // SAFETY: retval is writable (caller).
                unsafe { *retval = value as *mut c_void };
            }
            Done(0)
        }
        Err(code) => Done(code),
    }
}

#[derive(Clone, Copy, Debug)]
pub enum JoinWait {
    Forever,
    Try,
    Until(u64),
}

/// Waits for `green` to finish and reaps it; its return value, or a pthread_join error code.
pub(crate) fn join_green(green: &'static Green, wait: JoinWait) -> Result<usize, c_int> {
    let hub = Hub::get_or_create(&HUB_OWNERS)
        .unwrap_or_else(|e| crate::fatal!("cannot wait for a thread: {e}"));
    let me = hub.current_green();
    if core::ptr::eq(me, green) {
        return Err(EDEADLK);
    }
    loop {
        let mut state = green.join.lock().unwrap_or_else(|e| e.into_inner());
        let token = match *state {
            Join::Done => {
                drop(state);
                let value = green.retval.load(Ordering::Acquire);
                // SAFETY: finished and joined by us: no one else may refer to it any more;
                // `hub` is this OS thread's.
                unsafe { table::remove(green, Some(hub.free_slots())) };
                return Ok(value);
            }
            Join::Detached => return Err(EINVAL),
            Join::Waiting { joiner, .. } if !core::ptr::eq(joiner, me) => return Err(EINVAL),
            _ if matches!(wait, JoinWait::Try) => return Err(EBUSY),
            _ => {
                let token = me.arm();
                *state = Join::Waiting { joiner: me, token };
                token
            }
        };
        drop(state);
        let deadline = match wait {
            JoinWait::Until(deadline) => Some(deadline),
            _ => None,
        };
        if hub.park(
            me,
            token,
            WaitOn::Join(green.handle() as usize).word(),
            deadline,
        ) {
            let mut state = green.join.lock().unwrap_or_else(|e| e.into_inner());
            if matches!(*state, Join::Waiting { joiner, .. } if core::ptr::eq(joiner, me)) {
                *state = Join::Joinable;
                return Err(ETIMEDOUT);
            }
        }
    }
}

/// `pthread_detach`.
pub fn detach(handle: pthread_t) -> Outcome<c_int> {
    match green_handle(handle) {
        Ok(green) => Done(detach_green(green)),
        Err(outcome) => outcome,
    }
}

pub(crate) fn detach_green(green: &'static Green) -> c_int {
    let mut state = green.join.lock().unwrap_or_else(|e| e.into_inner());
    match *state {
        Join::Joinable => *state = Join::Detached,
        Join::Detached => return EINVAL,
        // glibc leaves a thread that somebody is joining as it is.
        Join::Waiting { .. } => {}
        Join::Done => {
            drop(state);
            // SAFETY: finished, and detaching gives up the last claim on it.
            unsafe { table::remove(green, None) };
        }
    }
    0
}

/// `pthread_exit` from a green thread ends only it; from a hub's root (`main`), the OS thread
/// first runs its green threads to the end, then exits for real, as glibc's last thread does.
/// Returns when the caller must go on to the real `pthread_exit`.
pub fn exit(retval: usize) {
    if !active() {
        return;
    }
    let Some(hub) = Hub::current() else { return };
    if hub.in_green() {
        ending(hub.current_green());
        hub.exit_current(retval);
    }
    hub.wait_all_done();
    if hubs::count() > 1 {
        hubs::wait_all_done(hub);
    }
}

/// `pthread_self`: a green thread's own handle, or the OS thread's.
#[inline]
pub fn current() -> Outcome<pthread_t> {
    match Hub::current() {
        Some(hub) if hub.in_green() => Done(hub.current_green().handle()),
        _ => Bypass,
    }
}

/// `sched_yield`: the green yield; the real one when no other green thread is runnable.
pub fn yield_now() -> Outcome<c_int> {
    if !active() {
        return Bypass;
    }
    match Hub::current() {
        Some(hub) if hub.yield_now() => Done(0),
        _ => Bypass,
    }
}
