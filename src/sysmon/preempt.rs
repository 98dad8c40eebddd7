//! Preemption at the program's own code (trap 16), as Go's asynchronous preemption (`preempt.go`,
//! `signal_unix.go`'s `doSigPreempt`, `preempt_amd64.s`): the monitor asks a hub that ran one
//! thread for a slice, and sends its OS thread [`SIGNAL`]. The handler does not switch threads
//! (a switch inside a signal frame would run other threads with the signal's mask, on the
//! signal's stack): it judges whether the interrupted point is one a thread may be switched
//! out at and, if so, rewrites the interrupted context so that on return from the handler the
//! thread *calls* [`async_preempt`], as if the interrupted instruction had made that call.
//!
//! A point is safe when the running code is the program's, not the library's, libc's, the
//! loader's or the unwinder's (they hold locks and thread-shared state a switch would expose:
//! malloc's arenas, stdio's locks, the loader's lock), the thread runs no handler of the
//! program's (`context::in_handler`) and is no vfork child. Anything else: the monitor tries
//! again a little later. Frames of those objects *below* the program's code (a callback from
//! `qsort`, a thread's start routine under the library) are no worse than the hooked calls
//! such code may already make, which switch threads too.
//!
//! [`async_preempt`] (assembly) saves every general register, the flags and the whole
//! extended state (`xsave`, with the size `cpuid` gives for the features the OS enabled),
//! calls the hub's ordinary yield ([`crate::hub::Hub::preempted`]), restores everything and
//! returns to the interrupted instruction with `ret 128`, stepping over the red zone the
//! interrupted code may use below its stack pointer (the System V ABI's 128 bytes). It pushes
//! that return address itself, below the red zone, from the hub's slot where the handler left
//! it (with `r11`, which carries the slot's address): the handler writes nothing on the
//! interrupted stack, since the kernel's signal frame lies right below the red zone while the
//! handler runs. (A push from the handler there overwrote the frame's `FP_XSTATE_MAGIC2`
//! when the stack pointer was 8 past a multiple of 64; the kernel's sigreturn then restored
//! only the legacy SSE state and zeroed the upper halves of the AVX registers: OpenBLAS's
//! kernels, which align their stack, computed wrong products.) x86-64 only; other
//! architectures refuse.

use crate::hub::Hub;
use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use libc::siginfo_t;

/// How close two samples of the interrupted instruction must be to count as one loop.
const LOOP_SPAN: usize = 1024;
/// After how many looks in one turn any safe point will do.
const LOOKS_BEFORE_ANYWHERE: u32 = 6;

/// The monitor's deliveries carry this value (`sigqueue`-style, `SI_QUEUE`): a program's own
/// SIGURG, from the kernel, `kill` or `pthread_kill`, never does.
pub const MONITORS_VALUE: usize = 0x6777_7379_736d_6f6e; // "gwsysmon"

/// A capture request ([`capture`]) carries this value instead.
const CAPTURE_VALUE: usize = 0x6777_6361_7074_7572; // "gwcaptur"

/// Sends the monitor's preemption request to OS thread `tid` of this process.
pub fn send(tid: i32) {
    send_value(tid, MONITORS_VALUE);
}

fn send_value(tid: i32, value: usize) {
    // SAFETY: no arguments.
    let pid = unsafe { crate::sys::syscall!(libc::SYS_getpid) };
    // SAFETY: no arguments.
    let uid = unsafe { crate::sys::syscall!(libc::SYS_getuid) };
    // siginfo_t for SI_QUEUE on Linux: signo, errno, code, then pid, uid and the value.
    let mut info = [0u8; 128];
    info[0..4].copy_from_slice(&SIGNAL.to_ne_bytes());
    info[8..12].copy_from_slice(&libc::SI_QUEUE.to_ne_bytes());
    info[16..20].copy_from_slice(&(pid as i32).to_ne_bytes());
    info[20..24].copy_from_slice(&(uid as u32).to_ne_bytes());
    info[24..32].copy_from_slice(&value.to_ne_bytes());
    // SAFETY: a signal with a valid siginfo to a thread of this process (one that ended makes
    // it fail); a process may send itself any si_code.
    unsafe { crate::sys::syscall!(libc::SYS_rt_tgsigqueueinfo, pid, tid, SIGNAL, info.as_ptr()) };
}

/// The signal the monitor sends: SIGURG, as Go chose it. Its default action is to ignore it
/// (a stray one harms nothing), programs rarely use it (only for sockets' out-of-band data,
/// with F_SETOWN), it is no real-time signal (no queue to fill: two sent before delivery are
/// one) and no C library keeps it for itself. A program's own handler for it still runs: the
/// library keeps the kernel's action (`signal::reserve`, trap 19) and forwards what is not its
/// own.
pub const SIGNAL: c_int = libc::SIGURG;

/// The handler is installed (by [`install`]): [`capture`] may signal.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The OS thread a capture is asked of (0: none), and what its handler found: the interrupted
/// instruction, stack and frame pointers, then `CAPTURED` set.
static CAPTURE_TID: AtomicI32 = AtomicI32::new(0);
static CAPTURED_REGS: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];
static CAPTURED: AtomicBool = AtomicBool::new(false);

/// Where OS thread `tid`, running its own code, is right now: (pc, sp, fp), caught by this
/// signal's handler (a capture, not a preemption: nothing else is done to the thread). The
/// monitor's only, for the blocking detector's backtrace of a thread that keeps its hub in
/// its own code. None when the handler is not installed, the thread blocks the signal, or it
/// did not answer within a few milliseconds (in a system call after all: the signal, restarting,
/// waits there until it returns).
pub fn capture(tid: i32) -> Option<(usize, usize, usize)> {
    if !INSTALLED.load(Ordering::Acquire) {
        return None;
    }
    CAPTURED.store(false, Ordering::Relaxed);
    CAPTURE_TID.store(tid, Ordering::Release);
    send_value(tid, CAPTURE_VALUE);
    let mut answered = false;
    for _ in 0..20 {
        let ts = crate::sys::ns_timespec(500_000);
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
        if CAPTURED.load(Ordering::Acquire) {
            answered = true;
            break;
        }
    }
    CAPTURE_TID.store(0, Ordering::Release);
    answered.then(|| {
        let [pc, sp, fp] = &CAPTURED_REGS;
        (
            pc.load(Ordering::Relaxed),
            sp.load(Ordering::Relaxed),
            fp.load(Ordering::Relaxed),
        )
    })
}

/// The handler's part of [`capture`]: notes where this thread was interrupted, if asked.
fn note_capture(context: *mut c_void) {
    // SAFETY: no arguments.
    let me = unsafe { crate::sys::syscall!(libc::SYS_gettid) } as i32;
    if CAPTURE_TID.load(Ordering::Acquire) != me {
        return;
    }
    if let Some((pc, sp, fp)) = interrupted_regs(context) {
        let [a, b, c] = &CAPTURED_REGS;
        a.store(pc, Ordering::Relaxed);
        b.store(sp, Ordering::Relaxed);
        c.store(fp, Ordering::Relaxed);
        CAPTURED.store(true, Ordering::Release);
    }
}

/// Bytes `xsave` needs for the state the OS enabled (0: no preemption on this machine).
static XSAVE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// Readies preemption: the state size, the objects to keep out of, the signal's handler.
/// False when this machine or glibc cannot (the reason logged).
pub fn install() -> bool {
    if !cfg!(target_arch = "x86_64") {
        crate::log!(Info, "preemption is implemented on x86-64 only");
        return false;
    }
    let Some(size) = xsave_size() else {
        crate::log!(Info, "no XSAVE: preemption off");
        return false;
    };
    if !crate::scope::finder_ready() {
        crate::log!(Info, "no _dl_find_object (glibc < 2.35): preemption off");
        return false;
    }
    XSAVE_SIZE.store(size, Ordering::Release);
    let installed = crate::signal::reserve(SIGNAL, on_signal);
    INSTALLED.store(installed, Ordering::Release);
    installed
}

/// The size of the `xsave` area for the features enabled in XCR0, if the OS enabled XSAVE.
#[cfg(target_arch = "x86_64")]
fn xsave_size() -> Option<usize> {
    use core::arch::x86_64::__cpuid_count;
    let features = __cpuid_count(1, 0);
    const OSXSAVE: u32 = 1 << 27;
    if features.ecx & OSXSAVE == 0 {
        return None;
    }
    // Leaf 0xD exists where XSAVE does; EBX: the size for the features XCR0 enables.
    let size = __cpuid_count(0xd, 0).ebx as usize;
    (size >= 576).then_some(size)
}

#[cfg(not(target_arch = "x86_64"))]
fn xsave_size() -> Option<usize> {
    None
}

/// The kernel's handler for [`SIGNAL`]: the monitor's deliveries preempt, the others are the
/// program's.
extern "C" fn on_signal(sig: c_int, info: *mut siginfo_t, context: *mut c_void) {
    // SAFETY: the kernel's record of this delivery.
    match unsafe { monitor_value(info) } {
        Some(MONITORS_VALUE) => {}
        Some(CAPTURE_VALUE) => return note_capture(context),
        _ => {
            crate::signal::forward(sig, info, context);
            return;
        }
    }
    let saved = crate::sys::errno();
    if let Some(hub) = Hub::current()
        && hub.take_preemption()
    {
        // Asked for a thread woken from another hub (not for a slice spent)?
        let for_woken = hub.take_follow_up();
        match may_preempt(hub, context) {
            // SAFETY: the kernel's context of this delivery, judged safe to redirect.
            Verdict::Switch => unsafe { inject(context, &hub.preempt_return) },
            Verdict::LookAgain if for_woken => {
                hub.yield_at_next_safe_point();
                follow_up(hub);
            }
            Verdict::Not if for_woken => hub.yield_at_next_safe_point(),
            Verdict::LookAgain | Verdict::Not => {}
        }
    }
    crate::sys::set_errno(saved);
}

/// The value the monitor's delivery carries ([`send`], [`capture`]); None for another's.
///
/// # Safety
/// `info` is the kernel's record of a delivery.
unsafe fn monitor_value(info: *const siginfo_t) -> Option<usize> {
    // SAFETY: the kernel's record: si_code, then for SI_QUEUE the value at offset 24 on Linux.
    let (code, value) = unsafe {
        (
            (*info).si_code,
            info.cast::<u8>().add(24).cast::<usize>().read(),
        )
    };
    match (code, value) {
        (libc::SI_QUEUE, MONITORS_VALUE | CAPTURE_VALUE) | (libc::SI_TIMER, MONITORS_VALUE) => {
            Some(value)
        }
        _ => None,
    }
}

/// What the handler makes of a preemption request.
enum Verdict {
    /// The interrupted point is safe: the thread yields on return.
    Switch,
    /// Safe but for the loop rule: the thread was not found near here before in this turn.
    LookAgain,
    Not,
}

/// How soon after a delivery that could not yet tell a loop from a pass the handler's own
/// second look comes, when the request was for a thread woken from another hub: long enough
/// that a pass through a short function (an allocator's fast path) is over, short beside the
/// monitor's tick (the second delivery it would otherwise wait for).
pub const FOLLOW_UP_NS: u64 = 30_000;

/// Can the handler ask for its own second look (a timer could be made)? Cleared for good when
/// the kernel refuses one; the monitor then sends two deliveries itself.
static FOLLOWS_UP: AtomicBool = AtomicBool::new(true);

/// Does a preemption for a woken thread need one delivery only (the handler looks again by
/// itself: [`FOLLOW_UP_NS`])?
pub fn follows_up() -> bool {
    FOLLOWS_UP.load(Ordering::Relaxed)
}

/// In the handler, on the hub's own OS thread: asks for the preemption again and arms the
/// hub's one-shot timer to deliver it in [`FOLLOW_UP_NS`] (made on first need: a POSIX timer
/// that signals this OS thread with the monitor's value).
fn follow_up(hub: &Hub) {
    let mut timer = hub.follow_up_timer();
    if timer == 0 {
        timer = make_timer().map_or(0, |id| i64::from(id) + 1);
        if timer == 0 {
            FOLLOWS_UP.store(false, Ordering::Relaxed);
            return;
        }
        hub.keep_follow_up_timer(timer);
    }
    hub.want_preemption();
    let spec = libc::itimerspec {
        it_interval: crate::sys::ns_timespec(0),
        it_value: crate::sys::ns_timespec(FOLLOW_UP_NS),
    };
    // SAFETY: a timer of this process and a valid itimerspec; no old value wanted.
    unsafe {
        crate::sys::syscall!(
            libc::SYS_timer_settime,
            (timer - 1) as libc::c_int,
            0,
            &spec as *const libc::itimerspec,
            0
        )
    };
}

/// A one-shot CLOCK_MONOTONIC timer that sends [`SIGNAL`] with [`MONITORS_VALUE`] to this OS
/// thread (`SIGEV_THREAD_ID`); None when the kernel refuses.
fn make_timer() -> Option<libc::c_int> {
    // SAFETY: no arguments.
    let tid = unsafe { crate::sys::syscall!(libc::SYS_gettid) } as i32;
    // struct sigevent on Linux: the value, signo, notify, then the thread id; 64 bytes.
    let mut event = [0u8; 64];
    event[0..8].copy_from_slice(&MONITORS_VALUE.to_ne_bytes());
    event[8..12].copy_from_slice(&SIGNAL.to_ne_bytes());
    event[12..16].copy_from_slice(&libc::SIGEV_THREAD_ID.to_ne_bytes());
    event[16..20].copy_from_slice(&tid.to_ne_bytes());
    let mut id: libc::c_int = 0;
    // SAFETY: a valid sigevent and a place for the id.
    let rc = unsafe {
        crate::sys::syscall!(
            libc::SYS_timer_create,
            libc::CLOCK_MONOTONIC,
            event.as_ptr(),
            &mut id as *mut libc::c_int
        )
    };
    (rc == 0).then_some(id)
}

/// Is the interrupted point one the running thread may be switched out at (see the module)?
fn may_preempt(hub: &Hub, context: *mut c_void) -> Verdict {
    if XSAVE_SIZE.load(Ordering::Acquire) == 0
        || crate::context::in_handler()
        || crate::context::in_vfork_child()
        || (!hub.in_green() && hub.alive() == 0)
    {
        return Verdict::Not;
    }
    let Some((pc, sp)) = interrupted_at(context) else {
        return Verdict::Not;
    };
    let me = hub.current_green();
    // The injected call needs the saved state and a yield's frames below the red zone.
    let room = XSAVE_SIZE.load(Ordering::Relaxed) + (8 << 10);
    if !me.is_root() {
        let stack = me.started_stack().unwrap_or_default();
        if !(stack.low + room..stack.low + stack.size).contains(&sp) {
            // Not on its own stack (a handler on an alternate stack that no hook saw
            // installed, or not started yet: its hub makes its first run), or too near its end.
            return Verdict::Not;
        }
    }
    // A loop, not a pass: where the thread was found the time before too, within a little
    // code of here. A spin or a tight loop is found there again; a pass through an
    // allocator's fast path built into the program (its thread cache is a thread-local every
    // green thread of this OS thread shares) almost never is. A loop too large for that (an
    // interpreter's) is taken after a few looks anyway.
    let (before, samples) = hub.resample_pc(pc);
    let in_loop = before.is_some_and(|before| before.abs_diff(pc) <= LOOP_SPAN);
    let programs = match crate::scope::object_of(pc) {
        // Code in no object: a JIT's (HotSpot's, V8's), the program's own.
        None => true,
        Some(object) => {
            !super::is_runtime_object(object.start) && !object.file().starts_with(b"libgcc_s")
        }
    };
    if !programs {
        Verdict::Not
    } else if !in_loop && samples < LOOKS_BEFORE_ANYWHERE {
        Verdict::LookAgain
    } else {
        Verdict::Switch
    }
}

/// The interrupted instruction, stack and frame pointers.
#[cfg(target_arch = "x86_64")]
fn interrupted_regs(context: *mut c_void) -> Option<(usize, usize, usize)> {
    // SAFETY: the kernel's ucontext for this delivery.
    let context = unsafe { &*context.cast::<libc::ucontext_t>() };
    let regs = &context.uc_mcontext.gregs;
    Some((
        regs[libc::REG_RIP as usize] as usize,
        regs[libc::REG_RSP as usize] as usize,
        regs[libc::REG_RBP as usize] as usize,
    ))
}

#[cfg(not(target_arch = "x86_64"))]
fn interrupted_regs(_context: *mut c_void) -> Option<(usize, usize, usize)> {
    None
}

/// The interrupted instruction and stack pointer.
#[cfg(target_arch = "x86_64")]
fn interrupted_at(context: *mut c_void) -> Option<(usize, usize)> {
    // SAFETY: the kernel's ucontext for this delivery.
    let context = unsafe { &*context.cast::<libc::ucontext_t>() };
    let regs = &context.uc_mcontext.gregs;
    Some((
        regs[libc::REG_RIP as usize] as usize,
        regs[libc::REG_RSP as usize] as usize,
    ))
}

#[cfg(not(target_arch = "x86_64"))]
fn interrupted_at(_context: *mut c_void) -> Option<(usize, usize)> {
    None
}

/// Makes the interrupted thread call `async_preempt` when the handler returns: the
/// interrupted instruction's address and `r11` go to `slot` (the hub's), `r11` carries the
/// slot's address, and the stub pushes the return address itself and zeroes the slot's first
/// word. Nothing is written below the interrupted stack pointer here: the kernel's signal
/// frame is there until the handler returns (see the module). A slot not yet taken (a
/// program's signal handler that ran before the stub's first instructions, preempted in turn)
/// is left alone: this point is not taken, the next look may be.
///
/// # Safety
/// `context` is the kernel's ucontext of a delivery on this thread, interrupted in code that
/// keeps the System V red zone or less below its stack pointer; `slot` is this OS thread's hub's.
#[cfg(target_arch = "x86_64")]
unsafe fn inject(context: *mut c_void, slot: &core::cell::Cell<[u64; 2]>) {
    // SAFETY: per our contract.
    let context = unsafe { &mut *context.cast::<libc::ucontext_t>() };
    let regs = &mut context.uc_mcontext.gregs;
    if slot.get()[0] != 0 {
        return;
    }
    slot.set([
        regs[libc::REG_RIP as usize] as u64,
        regs[libc::REG_R11 as usize] as u64,
    ]);
    regs[libc::REG_R11 as usize] = slot.as_ptr() as i64;
    regs[libc::REG_RIP as usize] = async_preempt as *const () as usize as i64;
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn inject(_context: *mut c_void, _slot: &core::cell::Cell<[u64; 2]>) {}

/// Called by `async_preempt` with everything saved: the hub's yield, errno kept (the
/// interrupted code may be between a call and its errno check).
#[cfg(target_arch = "x86_64")]
extern "C" fn preempted() {
    let saved = crate::sys::errno();
    if let Some(hub) = Hub::current() {
        crate::stats::preempted();
        hub.preempted();
    }
    crate::sys::set_errno(saved);
}

#[cfg(target_arch = "x86_64")]
unsafe extern "C" {
    /// Entered by a return from the signal handler, at the interrupted stack pointer, with
    /// `r11` pointing at the hub's slot holding the interrupted instruction's address and
    /// `r11` (`inject`; see the module). A hidden symbol: not exported.
    #[link_name = "greenworld_async_preempt"]
    fn async_preempt();
}

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".pushsection .text.greenworld_async_preempt,\"ax\",@progbits",
    ".globl greenworld_async_preempt",
    ".hidden greenworld_async_preempt",
    ".type greenworld_async_preempt,@function",
    "greenworld_async_preempt:",
    // Over the red zone (`lea` and `mov` leave the flags alone), then the return address
    // from the hub's slot `r11` points at (`inject`), the slot marked taken, and the
    // interrupted `r11` back.
    "lea rsp, [rsp - 128]",
    "push qword ptr [r11]",
    "mov qword ptr [r11], 0",
    "mov r11, qword ptr [r11 + 8]",
    "pushfq",
    // The interrupted code may have set the direction flag; the ABI wants it clear in calls.
    "cld",
    "push rax",
    "push rbx",
    "push rcx",
    "push rdx",
    "push rsi",
    "push rdi",
    "push rbp",
    "push r8",
    "push r9",
    "push r10",
    "push r11",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "mov rbp, rsp",
    "mov rcx, qword ptr [rip + {size}]",
    "sub rsp, rcx",
    "and rsp, -64",
    // XRSTOR wants the header's reserved bytes zero; XSAVE writes only XSTATE_BV of it.
    "xor eax, eax",
    "mov qword ptr [rsp + 512], rax",
    "mov qword ptr [rsp + 520], rax",
    "mov qword ptr [rsp + 528], rax",
    "mov qword ptr [rsp + 536], rax",
    "mov qword ptr [rsp + 544], rax",
    "mov qword ptr [rsp + 552], rax",
    "mov qword ptr [rsp + 560], rax",
    "mov qword ptr [rsp + 568], rax",
    "mov eax, -1",
    "mov edx, -1",
    "xsave64 [rsp]",
    "call {preempted}",
    "mov eax, -1",
    "mov edx, -1",
    "xrstor64 [rsp]",
    "mov rsp, rbp",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop r11",
    "pop r10",
    "pop r9",
    "pop r8",
    "pop rbp",
    "pop rdi",
    "pop rsi",
    "pop rdx",
    "pop rcx",
    "pop rbx",
    "pop rax",
    "popfq",
    "ret 128",
    ".size greenworld_async_preempt, . - greenworld_async_preempt",
    ".popsection",
    size = sym XSAVE_SIZE,
    preempted = sym preempted,
);
