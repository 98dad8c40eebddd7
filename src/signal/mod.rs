//! Signal handlers, seen by the hub: a handler the program installs runs through a trampoline
//! that notes which signal arrived, then calls the program's handler unchanged. Whenever the
//! hub next looks (at once when it sleeps in epoll, else when the running green thread parks),
//! a waiting call that a native thread would see interrupted returns EINTR. When the running
//! green thread blocks the signal (its own mask: [`mask`]), the handler waits for one that
//! does not.
//!
//! `sigaction` still reports the program's own handler, flags and mask.

pub mod interrupt;
pub mod mask;
pub mod plain;

pub use interrupt::{Interrupt, claim_arrived, interruptibly, interruptibly_with_mask};

use core::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use libc::{SIG_DFL, SIG_IGN, c_int, c_void, siginfo_t};

type Action = libc::sigaction;

const SIGNALS: usize = 65;

/// The program's handler per signal (0: none of ours installed), its sa_flags and sa_mask.
static HANDLERS: [AtomicUsize; SIGNALS] = [const { AtomicUsize::new(0) }; SIGNALS];
static FLAGS: [AtomicUsize; SIGNALS] = [const { AtomicUsize::new(0) }; SIGNALS];
static ACTION_MASKS: [AtomicU64; SIGNALS] = [const { AtomicU64::new(0) }; SIGNALS];

/// The signal the library keeps at the kernel for itself (0: none; `sysmon`'s preemption
/// signal), the handler the kernel calls for it, and the disposition the program gave it (its
/// handler, SIG_DFL or SIG_IGN), which `sigaction` keeps and reports as if installed.
static RESERVED: AtomicI32 = AtomicI32::new(0);
static RESERVED_HANDLER: AtomicUsize = AtomicUsize::new(0);
static RESERVED_DISPOSITION: AtomicUsize = AtomicUsize::new(SIG_DFL);

/// The kernel's handler for a reserved signal.
pub type KernelHandler = extern "C" fn(c_int, *mut siginfo_t, *mut c_void);

/// Keeps `sig` for the library: from now on the kernel calls `handler` for it, whatever the
/// program installs, and `handler` passes the deliveries that are not its own to the
/// program's disposition with [`forward`]. Returns false if the kernel refused.
pub fn reserve(sig: c_int, handler: KernelHandler) -> bool {
    let real = crate::real::get();
    let index = sig as usize;
    // SAFETY: all-zero is a valid sigaction for the kernel to fill.
    let mut current: Action = unsafe { core::mem::zeroed() };
    // SAFETY: a query into a local.
    if unsafe { (real.sigaction)(sig, core::ptr::null(), &mut current) } != 0 {
        return false;
    }
    let disposition = if current.sa_sigaction == trampoline as *const () as usize {
        HANDLERS[index].load(Ordering::Acquire)
    } else {
        // Installed before the library was (or without it): the program's all the same.
        if is_function(current.sa_sigaction) {
            FLAGS[index].store(current.sa_flags as usize, Ordering::Release);
            ACTION_MASKS[index].store(mask::from_set(&current.sa_mask), Ordering::Release);
            HANDLERS[index].store(current.sa_sigaction, Ordering::Release);
        }
        current.sa_sigaction
    };
    RESERVED_DISPOSITION.store(disposition, Ordering::Release);
    RESERVED_HANDLER.store(handler as usize, Ordering::Release);
    RESERVED.store(sig, Ordering::Release);
    // SAFETY: a valid action, our own handler.
    unsafe {
        (real.sigaction)(
            sig,
            &reserved_action(handler as usize),
            core::ptr::null_mut(),
        ) == 0
    }
}

/// The kernel's action for the reserved signal: the library's handler, restarting calls (a
/// delivery of its own must change nothing the program sees), blocking nothing else.
fn reserved_action(handler: usize) -> Action {
    // SAFETY: all-zero is a valid sigaction; fields set below.
    let mut act: Action = unsafe { core::mem::zeroed() };
    act.sa_sigaction = handler;
    act.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
    act
}

/// Is `sig` reserved by the library?
fn is_reserved(sig: c_int) -> bool {
    sig != 0 && RESERVED.load(Ordering::Acquire) == sig
}

/// A delivery of the reserved signal that is the program's: to the program's handler, as its
/// own signals go (SIG_DFL and SIG_IGN of SIGURG both ignore it).
pub fn forward(sig: c_int, info: *mut siginfo_t, context: *mut c_void) {
    if handled(sig) {
        trampoline(sig, info, context);
    }
}

/// A broken pipe or a fault belongs to the running thread (the kernel raises it in the call
/// that caused it): it interrupts no other thread's call, and waits for no other thread.
pub fn is_own(sig: c_int) -> bool {
    [
        libc::SIGPIPE,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGILL,
        libc::SIGTRAP,
        libc::SIGSYS,
    ]
    .contains(&sig)
}

extern "C" fn trampoline(sig: c_int, info: *mut siginfo_t, context: *mut c_void) {
    if !(1..SIGNALS as c_int).contains(&sig) {
        return;
    }
    if let Some(hub) = crate::hub::Hub::current() {
        interrupt::arrived(hub, sig);
        // SAFETY: the kernel's record of this delivery.
        if !is_own(sig) && unsafe { hub.masks().defer(hub.current_green(), sig, info) } {
            return;
        }
    }
    call_handler(sig, info, context);
}

/// Calls the program's handler for `sig`, keeping errno as it was (as the kernel's signal
/// frame does).
fn call_handler(sig: c_int, info: *mut siginfo_t, context: *mut c_void) {
    let index = sig as usize;
    let handler = HANDLERS[index].load(Ordering::Acquire);
    let flags = FLAGS[index].load(Ordering::Acquire) as c_int;
    if handler == 0 || handler == SIG_IGN || handler == SIG_DFL {
        return;
    }
    plain::handled();
    let saved = crate::sys::errno();
    crate::context::as_handler(|| {
        if flags & libc::SA_SIGINFO != 0 {
            // SAFETY: the program registered this three-argument handler for `sig`.
            let f: extern "C" fn(c_int, *mut siginfo_t, *mut c_void) =
                unsafe { core::mem::transmute(handler) };
            f(sig, info, context);
        } else {
            // SAFETY: the program registered this one-argument handler for `sig`.
            let f: extern "C" fn(c_int) = unsafe { core::mem::transmute(handler) };
            f(sig);
        }
    });
    crate::sys::set_errno(saved);
}

/// Runs a deferred signal's handler on the running thread, with the handler's mask (and the
/// signal itself, unless SA_NODEFER) added to the thread's for its duration, as the kernel
/// does. The context argument is a blank one: the interrupted context is long gone.
pub(crate) fn run_deferred(sig: c_int, info: &mut siginfo_t) {
    let Some(hub) = crate::hub::Hub::current() else {
        return;
    };
    let me = hub.current_green();
    let flags = FLAGS[sig as usize].load(Ordering::Acquire) as c_int;
    let mut during = ACTION_MASKS[sig as usize].load(Ordering::Acquire);
    if flags & libc::SA_NODEFER == 0 {
        during |= mask::bit(sig);
    }
    let before = hub.masks().replace(me, me.sigmask.get() | during);
    // SAFETY: an all-zero ucontext_t is a valid (blank) value.
    let mut context: libc::ucontext_t = unsafe { core::mem::zeroed() };
    call_handler(sig, info, (&raw mut context).cast());
    hub.masks().replace(me, before);
}

pub use interrupt::after_fork;
pub use interrupt::leave as interrupt_leave;

/// Does a handler of the program's run for `sig` (through the trampoline)?
pub fn handled(sig: c_int) -> bool {
    (1..SIGNALS as c_int).contains(&sig)
        && is_function(HANDLERS[sig as usize].load(Ordering::Acquire))
}

/// Did the program install `sig`'s handler with SA_RESTART?
pub fn restarts(sig: c_int) -> bool {
    (sig as usize) < SIGNALS
        && FLAGS[sig as usize].load(Ordering::Relaxed) as c_int & libc::SA_RESTART != 0
}

fn is_function(handler: usize) -> bool {
    handler != SIG_DFL && handler != SIG_IGN
}

/// `sigaction`.
///
/// # Safety
/// As `sigaction(2)`.
pub unsafe fn sigaction(sig: c_int, act: *const Action, old: *mut Action) -> c_int {
    let real = crate::real::get();
    let index = sig as usize;
    if !(1..SIGNALS).contains(&index) || sig == libc::SIGKILL || sig == libc::SIGSTOP {
        // SAFETY: the caller's arguments, to the real function.
        return unsafe { (real.sigaction)(sig, act, old) };
    }
    if crate::context::in_vfork_child() {
        // The handler table is the parent's: the child's own disposition only (it execs next).
        // SAFETY: the caller's arguments, to the real function.
        let rc = unsafe { (real.sigaction)(sig, act, old) };
        // SAFETY: writable when non-null (caller).
        if let Some(old) = unsafe { old.as_mut() }
            .filter(|old| rc == 0 && old.sa_sigaction == trampoline as *const () as usize)
        {
            old.sa_sigaction = HANDLERS[index].load(Ordering::Acquire);
            old.sa_flags = FLAGS[index].load(Ordering::Acquire) as c_int;
        }
        return rc;
    }
    let program = (
        HANDLERS[index].load(Ordering::Acquire),
        FLAGS[index].load(Ordering::Acquire),
    );
    // SAFETY: readable when non-null (caller).
    let wanted = unsafe { act.as_ref() }.copied();
    let reserved = is_reserved(sig);
    let ours = wanted.map(|mut act| {
        if reserved {
            act = reserved_action(RESERVED_HANDLER.load(Ordering::Acquire));
        } else if is_function(act.sa_sigaction) {
            act.sa_sigaction = trampoline as *const () as usize;
            act.sa_flags |= libc::SA_SIGINFO;
        }
        act
    });
    let reported = reserved.then(|| {
        // SAFETY: all-zero is a valid sigaction; fields set below.
        let mut old: Action = unsafe { core::mem::zeroed() };
        old.sa_sigaction = RESERVED_DISPOSITION.load(Ordering::Acquire);
        old.sa_flags = program.1 as c_int;
        old.sa_mask = mask::to_set(ACTION_MASKS[index].load(Ordering::Acquire));
        old
    });
    // SAFETY: an all-zero sigaction is a valid value for the kernel to fill.
    let mut previous: Action = unsafe { core::mem::zeroed() };
    // SAFETY: valid pointers: our copy (or null) and a local.
    let rc = unsafe {
        (real.sigaction)(
            sig,
            ours.as_ref().map_or(core::ptr::null(), |a| a),
            &mut previous,
        )
    };
    if rc != 0 {
        return rc;
    }
    if let Some(act) = wanted {
        let handler = if is_function(act.sa_sigaction) {
            act.sa_sigaction
        } else {
            0
        };
        FLAGS[index].store(act.sa_flags as usize, Ordering::Release);
        ACTION_MASKS[index].store(mask::from_set(&act.sa_mask), Ordering::Release);
        HANDLERS[index].store(handler, Ordering::Release);
        if reserved {
            RESERVED_DISPOSITION.store(act.sa_sigaction, Ordering::Release);
        }
    }
    // SAFETY: writable when non-null (caller).
    if let Some(old) = unsafe { old.as_mut() } {
        if let Some(reported) = reported {
            *old = reported;
            return 0;
        }
        *old = previous;
        if previous.sa_sigaction == trampoline as *const () as usize {
            old.sa_sigaction = program.0;
            old.sa_flags = program.1 as c_int;
        }
    }
    0
}

/// Handlers the program installed while the library was not engaged (linked, before the first
/// `greenworld_monkey_patch`) go through the trampoline from now on, with the same handler,
/// flags and mask, as if installed after: so a green wait sees their signals too. A `sigaction`
/// the program makes on another thread meanwhile may be undone (call monkey_patch early).
pub fn adopt_installed() {
    let real = crate::real::get();
    for sig in 1..SIGNALS as c_int {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: an all-zero sigaction is a valid value for the kernel to fill.
        let mut current: Action = unsafe { core::mem::zeroed() };
        // SAFETY: a query into a local; glibc's reserved signals fail harmlessly.
        if unsafe { (real.sigaction)(sig, core::ptr::null(), &mut current) } != 0 {
            continue;
        }
        if is_function(current.sa_sigaction)
            && !is_reserved(sig)
            && current.sa_sigaction != trampoline as *const () as usize
        {
            // SAFETY: the action the kernel holds, installed again through ours.
            unsafe { sigaction(sig, &current, core::ptr::null_mut()) };
        }
    }
}

/// The signal APIs older than `sigaction`, which glibc builds on its internal `__sigaction`
/// (no hook would see the handler): the same actions, through ours.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Semantics {
    /// `signal`, `bsd_signal`: the handler stays, the signal is blocked while it runs, and
    /// calls restart (unless `siginterrupt` said otherwise for the signal).
    Bsd,
    /// `sysv_signal` (what `signal` is under strict standards modes): one-shot
    /// (SA_RESETHAND), not blocked while it runs (SA_NODEFER), calls not restarted.
    SysV,
}

/// Signals whose BSD-style handlers do not restart calls (`siginterrupt(sig, 1)`).
static INTERRUPTING: AtomicU64 = AtomicU64::new(0);

/// `signal` refuses glibc's own signals with EINVAL, as it refuses a bad number.
fn valid_for_signal(sig: c_int, handler: libc::sighandler_t) -> bool {
    handler != libc::SIG_ERR
        && (1..SIGNALS as c_int).contains(&sig)
        && sig != mask::SIGCANCEL
        && sig != mask::SIGSETXID
}

/// `signal`, `bsd_signal`, `sysv_signal`: as glibc's, through `sigaction`.
///
/// # Safety
/// As `signal(2)`.
pub unsafe fn signal(
    sig: c_int,
    handler: libc::sighandler_t,
    how: Semantics,
) -> libc::sighandler_t {
    if !valid_for_signal(sig, handler) {
        crate::sys::set_errno(libc::EINVAL);
        return libc::SIG_ERR;
    }
    // SAFETY: all-zero is a valid sigaction; fields are set below.
    let mut act: Action = unsafe { core::mem::zeroed() };
    act.sa_sigaction = handler;
    match how {
        Semantics::Bsd => {
            act.sa_mask = mask::to_set(mask::bit(sig));
            if INTERRUPTING.load(Ordering::Acquire) & mask::bit(sig) == 0 {
                act.sa_flags = libc::SA_RESTART;
            }
        }
        Semantics::SysV => act.sa_flags = libc::SA_RESETHAND | libc::SA_NODEFER,
    }
    // SAFETY: as above.
    let mut old: Action = unsafe { core::mem::zeroed() };
    // SAFETY: valid pointers.
    if unsafe { sigaction(sig, &act, &mut old) } != 0 {
        return libc::SIG_ERR;
    }
    old.sa_sigaction
}

/// `siginterrupt`: whether `sig`'s handler lets calls restart, as glibc's (which later
/// `signal` calls remember).
pub fn siginterrupt(sig: c_int, interrupt: c_int) -> c_int {
    if !valid_for_signal(sig, libc::SIG_DFL) {
        crate::sys::set_errno(libc::EINVAL);
        return -1;
    }
    // SAFETY: all-zero is a valid sigaction to fill.
    let mut act: Action = unsafe { core::mem::zeroed() };
    // SAFETY: valid pointers: a query, then the same action with its flag changed.
    unsafe {
        if sigaction(sig, core::ptr::null(), &mut act) != 0 {
            return -1;
        }
        if interrupt != 0 {
            INTERRUPTING.fetch_or(mask::bit(sig), Ordering::AcqRel);
            act.sa_flags &= !libc::SA_RESTART;
        } else {
            INTERRUPTING.fetch_and(!mask::bit(sig), Ordering::AcqRel);
            act.sa_flags |= libc::SA_RESTART;
        }
        if sigaction(sig, &act, core::ptr::null_mut()) != 0 {
            return -1;
        }
    }
    0
}

/// `sigset` (System V): a handler (with `sig` unblocked), or SIG_HOLD (`sig` blocked); returns
/// the previous disposition, SIG_HOLD if `sig` was blocked. As glibc's, through our
/// `sigaction` and the calling thread's own mask.
///
/// # Safety
/// As `sigset(3)`.
pub unsafe fn sigset(sig: c_int, disposition: libc::sighandler_t) -> libc::sighandler_t {
    const SIG_HOLD: libc::sighandler_t = 2;
    if disposition == libc::SIG_ERR {
        crate::sys::set_errno(libc::EINVAL);
        return libc::SIG_ERR;
    }
    let one = mask::to_set(mask::bit(sig));
    let mut before = mask::to_set(0);
    // SAFETY: all-zero is a valid sigaction.
    let mut old: Action = unsafe { core::mem::zeroed() };
    // SAFETY: valid sets and actions, to our own sigaction and mask calls.
    unsafe {
        if disposition == SIG_HOLD {
            if procmask(libc::SIG_BLOCK, &one, &mut before) != 0 {
                return libc::SIG_ERR;
            }
            if libc::sigismember(&before, sig) == 1 {
                return SIG_HOLD;
            }
            if sigaction(sig, core::ptr::null(), &mut old) != 0 {
                return libc::SIG_ERR;
            }
            return old.sa_sigaction;
        }
        let mut act: Action = core::mem::zeroed();
        act.sa_sigaction = disposition;
        if sigaction(sig, &act, &mut old) != 0
            || procmask(libc::SIG_UNBLOCK, &one, &mut before) != 0
        {
            return libc::SIG_ERR;
        }
        if libc::sigismember(&before, sig) == 1 {
            SIG_HOLD
        } else {
            old.sa_sigaction
        }
    }
}

/// `sigprocmask` as the program's call would make it: the calling thread's own mask.
///
/// # Safety
/// `set` is null or readable; `old` is null or writable.
unsafe fn procmask(how: c_int, set: *const libc::sigset_t, old: *mut libc::sigset_t) -> c_int {
    // SAFETY: per our contract.
    match unsafe { mask::change(how, set, old) } {
        Some(Ok(())) => 0,
        Some(Err(code)) => {
            crate::sys::set_errno(code);
            -1
        }
        // SAFETY: per our contract, to the real function.
        None => unsafe { (crate::real::get().sigprocmask)(how, set, old) },
    }
}

/// `pause` and `sigsuspend`: a green wait a signal's handler ends (EINTR), as natively; other
/// green threads run meanwhile. `mask`: sigsuspend's, in force for the wait.
///
/// # Safety
/// `mask` is null or a readable set.
pub unsafe fn suspend(mask: *const libc::sigset_t) -> crate::outcome::Outcome<c_int> {
    use crate::outcome::Outcome::{Bypass, Errno};
    // Green with the other blocking waits of `select`'s subsystem, as it always was. Only once
    // the library is engaged do the program's handlers run through it: before (a twin,
    // `green_pause`, in a linked program), no handler would ever end a green wait: libc's.
    if !crate::patch::active(crate::patch::Subsystem::Select) || !crate::patch::engaged() {
        return Bypass;
    }
    let Some(hub) = crate::hub::Hub::current().filter(|hub| hub.parkable()) else {
        return Bypass;
    };
    // SAFETY: null or readable (our caller's contract).
    let mask = unsafe { mask.as_ref() };
    // A wait on nothing, with no timeout, that only a signal's handler ends.
    interruptibly_with_mask(hub, mask, |interrupt| {
        while !interrupt.happened.get() {
            crate::park::park_many(
                hub,
                core::iter::empty::<(usize, Option<&'static crate::park::Queue>)>(),
                None,
                crate::waiting::WaitOn::Signal.word(),
                || true,
            );
        }
    });
    Errno(libc::EINTR)
}
