//! Shims of the `os` subsystem: pipes, descriptor I/O, and the descriptor bookkeeping calls.

use super::safe_point;
use crate::os;
use crate::outcome::Outcome::Bypass;
use crate::signal::Semantics;
use libc::{c_int, c_ulong, c_void, iovec, size_t, ssize_t};

#[macro_export]
#[doc(hidden)]
macro_rules! os_hooks {
    ($($chain:tt)*) => { $crate::abi::next_hooks! { $($chain)* {
        Os fn pipe(fds: *mut c_int) -> c_int => os::pipe(fds, None);
        Os fn pipe2(fds: *mut c_int, flags: c_int) -> c_int => os::pipe(fds, Some(flags));
        Os(plain_fd) fn read(fd: c_int, buf: *mut c_void, len: size_t) -> ssize_t => safe_point!(hub => os::read(fd, buf, len, hub));
        Os(plain_fd) fn write(fd: c_int, buf: *const c_void, len: size_t) -> ssize_t => safe_point!(hub => os::write(fd, buf, len, hub));
        Os(plain_fd) fn readv(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t => safe_point!(hub => os::readv(fd, iov, count, hub)
            .or_plain(|| os::plain_if_socket(fd, $crate::signal::plain::SocketWait::Input, || ($crate::real::get().readv)(fd, iov, count))));
        Os(plain_fd) fn writev(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t => safe_point!(hub => os::writev(fd, iov, count, hub)
            .or_plain(|| os::plain_if_socket(fd, $crate::signal::plain::SocketWait::Output, || ($crate::real::get().writev)(fd, iov, count))));
        Os fn __read_chk(fd: c_int, buf: *mut c_void, len: size_t, buflen: size_t) -> ssize_t
            => safe_point!(hub => if len > buflen { Bypass } else { os::read(fd, buf, len, hub) });
        Os fn close(fd: c_int) -> c_int => os::close(fd);
        Os fn fclose(stream: *mut libc::FILE) -> c_int => os::fclose(stream);
        Os(optional) fn close_range(first: libc::c_uint, last: libc::c_uint, flags: c_int) -> c_int => os::close_range(first, last, flags);
        Os fn wait(status: *mut c_int) -> libc::pid_t => os::wait::waitpid(-1, status, 0);
        Os fn waitpid(pid: libc::pid_t, status: *mut c_int, options: c_int) -> libc::pid_t
            => os::wait::waitpid(pid, status, options);
        Os fn wait4(pid: libc::pid_t, status: *mut c_int, options: c_int, usage: *mut libc::rusage) -> libc::pid_t
            => os::wait::wait4(pid, status, options, usage);
        Os fn wait3(status: *mut c_int, options: c_int, usage: *mut libc::rusage) -> libc::pid_t
            => os::wait::wait4(-1, status, options, usage);
        Os fn waitid(idtype: libc::idtype_t, id: libc::id_t, info: *mut libc::siginfo_t, options: c_int) -> c_int
            => os::wait::waitid(idtype, id, info, options);
        Os fn system(command: *const libc::c_char) -> c_int => os::system::system(command);
        Os fn pclose(stream: *mut libc::FILE) -> c_int => os::pclose(stream);
        Os fn dup(fd: c_int) -> c_int => $crate::own_fd::protect_own_fd(fd, -1, || {
            let new = $crate::own_fd::lowest_for_program(($crate::real::get().dup)(fd), 0, false);
            os::duplicated(new);
            new
        });
        // Calls that make a descriptor: its number starts afresh in the fd table.
        Os fn eventfd(count: libc::c_uint, flags: c_int) -> c_int
            => os::made_fd(($crate::real::get().eventfd)(count, flags));
        Os fn epoll_create(size: c_int) -> c_int => os::made_fd(($crate::real::get().epoll_create)(size));
        Os fn epoll_create1(flags: c_int) -> c_int => os::made_fd(($crate::real::get().epoll_create1)(flags));
        Os fn timerfd_create(clock: libc::clockid_t, flags: c_int) -> c_int
            => os::made_fd(($crate::real::get().timerfd_create)(clock, flags));
        Os fn signalfd(fd: c_int, mask: *const libc::sigset_t, flags: c_int) -> c_int => {
            let made = ($crate::real::get().signalfd)(fd, mask, flags);
            // Given a signalfd, the call changes that one's mask: nothing new.
            if fd == -1 { os::made_fd(made) } else { $crate::outcome::Outcome::Done::<c_int>(made) }
        };
        Os fn inotify_init() -> c_int => os::made_fd(($crate::real::get().inotify_init)());
        Os fn inotify_init1(flags: c_int) -> c_int => os::made_fd(($crate::real::get().inotify_init1)(flags));
        Os fn memfd_create(name: *const libc::c_char, flags: libc::c_uint) -> c_int
            => os::made_fd(($crate::real::get().memfd_create)(name, flags));
        Os fn dup2(old: c_int, new: c_int) -> c_int => $crate::own_fd::protect_own_fd(old, new, || {
            os::replace(old, new, || ($crate::real::get().dup2)(old, new))
        });
        Os fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int => $crate::own_fd::protect_own_fd(old, new, || {
            os::replace(old, new, || ($crate::real::get().dup3)(old, new, flags))
        });
        Os fn sigsuspend(mask: *const libc::sigset_t) -> c_int => $crate::signal::suspend(mask)
            .or_plain(|| $crate::signal::plain::restarting(|| ($crate::real::get().sigsuspend)(mask), $crate::signal::plain::failed_eintr));
        Os fn sigwaitinfo(set: *const libc::sigset_t, info: *mut libc::siginfo_t) -> c_int
            => $crate::os::sigwait::wait_for(set, info, None)
                .or_plain(|| $crate::signal::plain::restarting(|| ($crate::real::get().sigwaitinfo)(set, info), $crate::signal::plain::failed_eintr));
        Os fn sigtimedwait(set: *const libc::sigset_t, info: *mut libc::siginfo_t, timeout: *const libc::timespec) -> c_int
            => match timeout.as_ref().map($crate::sys::duration_ns) {
                None => $crate::os::sigwait::wait_for(set, info, None),
                Some(Some(ns)) => $crate::os::sigwait::wait_for(set, info, Some(ns)),
                Some(None) => $crate::outcome::Outcome::Bypass,
            }.or_plain(|| {
                let mut left = $crate::signal::plain::TimespecLeft::new(timeout);
                $crate::signal::plain::restarting(|| ($crate::real::get().sigtimedwait)(set, info, left.for_try()), $crate::signal::plain::failed_eintr)
            });
        Os fn sigwait(set: *const libc::sigset_t, sig: *mut c_int) -> c_int
            => match $crate::os::sigwait::wait_for(set, core::ptr::null_mut(), None) {
                $crate::outcome::Outcome::Done(n) => {
                    *sig = n;
                    $crate::outcome::Outcome::Done(0)
                }
                // sigwait returns the error number instead of setting errno.
                $crate::outcome::Outcome::Errno(code) => $crate::outcome::Outcome::Done(code),
                $crate::outcome::Outcome::Bypass => $crate::outcome::Outcome::Bypass,
            };
        // Exported by hand below: their answers are not an op's Outcome (void, a handler, the
        // variadic calls read as fixed arguments: trap 5).
        Os(optional) fn closefrom(first: c_int) -> ();
        Os fn sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int;
        Os fn signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t;
        Os fn bsd_signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t;
        Os fn sysv_signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t;
        Os fn __sysv_signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t;
        Os fn siginterrupt(sig: c_int, flag: c_int) -> c_int;
        Os fn sigset(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t;
        Os fn pause() -> c_int;
        Os(variadic) fn fcntl(fd: c_int, cmd: c_int) -> c_int;
        Os(variadic) fn fcntl64(fd: c_int, cmd: c_int) -> c_int;
        Os(variadic) fn ioctl(fd: c_int, request: c_ulong) -> c_int;
        Os(variadic) fn syscall(number: libc::c_long) -> libc::c_long;
    } } };
}
crate::os_hooks!([crate::abi::shims] []);

/// `closefrom`: as `close_range(first, ~0U, 0)`, passing over the library's own descriptors.
///
/// # Safety
/// None beyond glibc's.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn closefrom(first: c_int) {
    if super::unengaged() {
        // SAFETY: the caller's arguments, to the real function.
        return unsafe { (crate::real::get().closefrom)(first) };
    }
    close_from(first);
}

/// `green_closefrom`: `closefrom`, the library's own descriptors passed over in a library
/// linked on purpose too.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn green_closefrom(first: c_int) {
    let _twin = crate::patch::Twin::enter();
    close_from(first);
}

fn close_from(first: c_int) {
    if let crate::outcome::Outcome::Bypass = os::closefrom(first) {
        // SAFETY: the caller's argument.
        unsafe { (crate::real::get().closefrom)(first) }
    }
}

/// `sigaction`: the program's handler runs through greenworld's trampoline.
///
/// # Safety
/// As `sigaction(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    if super::unengaged() {
        // SAFETY: the caller's arguments, to the real function.
        return unsafe { (crate::real::get().sigaction)(sig, act, old) };
    }
    // SAFETY: the caller's arguments.
    let rc = unsafe { crate::signal::sigaction(sig, act, old) };
    if rc < 0 { rc } else { 0 }
}

/// `signal` (glibc's BSD semantics).
///
/// # Safety
/// As `signal(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    if super::unengaged() {
        // SAFETY: the caller's arguments, to the real function.
        return unsafe { (crate::real::get().signal)(sig, handler) };
    }
    // SAFETY: the caller's arguments.
    unsafe { crate::signal::signal(sig, handler, Semantics::Bsd) }
}

/// `bsd_signal`: `signal`.
///
/// # Safety
/// As `signal(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn bsd_signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    if super::unengaged() {
        // SAFETY: the caller's arguments, to the real function.
        return unsafe { (crate::real::get().bsd_signal)(sig, handler) };
    }
    // SAFETY: the caller's arguments.
    unsafe { crate::signal::signal(sig, handler, Semantics::Bsd) }
}

/// `sysv_signal`.
///
/// # Safety
/// As `signal(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn sysv_signal(
    sig: c_int,
    handler: libc::sighandler_t,
) -> libc::sighandler_t {
    if super::unengaged() {
        // SAFETY: the caller's arguments, to the real function.
        return unsafe { (crate::real::get().sysv_signal)(sig, handler) };
    }
    // SAFETY: the caller's arguments.
    unsafe { crate::signal::signal(sig, handler, Semantics::SysV) }
}

/// `__sysv_signal`: what `signal` is in programs built in a strict standards mode.
///
/// # Safety
/// As `signal(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn __sysv_signal(
    sig: c_int,
    handler: libc::sighandler_t,
) -> libc::sighandler_t {
    if super::unengaged() {
        // SAFETY: the caller's arguments, to the real function.
        return unsafe { (crate::real::get().__sysv_signal)(sig, handler) };
    }
    // SAFETY: the caller's arguments.
    unsafe { crate::signal::signal(sig, handler, Semantics::SysV) }
}

/// `siginterrupt`.
///
/// # Safety
/// None beyond POSIX's.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn siginterrupt(sig: c_int, interrupt: c_int) -> c_int {
    if super::unengaged() {
        // SAFETY: the caller's arguments, to the real function.
        return unsafe { (crate::real::get().siginterrupt)(sig, interrupt) };
    }
    crate::signal::siginterrupt(sig, interrupt)
}

/// `sigset`.
///
/// # Safety
/// As `sigset(3)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn sigset(sig: c_int, disposition: libc::sighandler_t) -> libc::sighandler_t {
    if super::unengaged() {
        // SAFETY: the caller's arguments, to the real function.
        return unsafe { (crate::real::get().sigset)(sig, disposition) };
    }
    // SAFETY: the caller's arguments.
    unsafe { crate::signal::sigset(sig, disposition) }
}

/// `pause`: other green threads run until a signal's handler ends it (-1, EINTR).
///
/// # Safety
/// None beyond POSIX's.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn pause() -> c_int {
    if super::unengaged() {
        // SAFETY: the caller's arguments, to the real function.
        return unsafe { (crate::real::get().pause)() };
    }
    suspend_until_signal()
}

/// `green_pause`: `pause`, green whatever is patched.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn green_pause() -> c_int {
    let _twin = crate::patch::Twin::enter();
    suspend_until_signal()
}

fn suspend_until_signal() -> c_int {
    // SAFETY: no mask.
    match unsafe { crate::signal::suspend(core::ptr::null()) } {
        crate::outcome::Outcome::Bypass => crate::signal::plain::restarting(
            // SAFETY: the real pause, no arguments.
            || unsafe { (crate::real::get().pause)() },
            crate::signal::plain::failed_eintr,
        ),
        _ => {
            crate::sys::set_errno(libc::EINTR);
            -1
        }
    }
}

/// Runs the real variadic `fcntl`-like call, then keeps the fd table true.
fn control(
    fd: c_int,
    cmd: c_int,
    arg: usize,
    real: unsafe extern "C" fn(c_int, c_int, ...) -> c_int,
) -> c_int {
    if super::unengaged() {
        // SAFETY: the caller's arguments, passed on as the variadic call received them.
        return unsafe { real(fd, cmd, arg) };
    }
    control_engaged(fd, cmd, arg, real)
}

/// [`control`] once the library acts: the library's own descriptors hidden, the fd table kept
/// true. Its twins (`green_fcntl`...) come straight here: a program that reads green must tell
/// the table when it makes a descriptor non-blocking.
fn control_engaged(
    fd: c_int,
    cmd: c_int,
    arg: usize,
    real: unsafe extern "C" fn(c_int, c_int, ...) -> c_int,
) -> c_int {
    if crate::own_fd::is_own(fd) {
        crate::sys::set_errno(libc::EBADF); // the library's: not open, as far as the program knows
        return -1;
    }
    // SAFETY: the caller's arguments, passed on as the variadic call received them.
    let rc = unsafe { real(fd, cmd, arg) };
    let duplicates = rc >= 0 && matches!(cmd, libc::F_DUPFD | libc::F_DUPFD_CLOEXEC);
    let rc = if duplicates {
        crate::own_fd::lowest_for_program(rc, arg as c_int, cmd == libc::F_DUPFD_CLOEXEC)
    } else {
        rc
    };
    os::after_control(rc, rc >= 0 && cmd == libc::F_SETFL, duplicates);
    rc
}

/// `fcntl`. Variadic in C; on x86-64 and aarch64 Linux a fixed pointer-sized third argument
/// reads the caller's argument correctly (trap 5), whatever its type.
///
/// # Safety
/// As `fcntl(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    control(fd, cmd, arg, crate::real::variadic().fcntl)
}

/// `fcntl64`, as `fcntl`.
///
/// # Safety
/// As `fcntl(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    control(fd, cmd, arg, crate::real::variadic().fcntl64)
}

/// `green_fcntl`: `fcntl`, the fd table kept true in a library linked on purpose too.
///
/// # Safety
/// As `fcntl(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn green_fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    control_engaged(fd, cmd, arg, crate::real::variadic().fcntl)
}

/// `green_fcntl64`, as `green_fcntl`.
///
/// # Safety
/// As `fcntl(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn green_fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    control_engaged(fd, cmd, arg, crate::real::variadic().fcntl64)
}

/// `syscall`. Variadic in C: up to six arguments follow the number, read here as fixed
/// long-sized ones (trap 5; reading a slot the caller did not fill reads a register or the
/// caller's stack, harmlessly). The numbers that change what a descriptor number means keep the
/// fd table true; a private futex wait or wake from the program parks or wakes green threads
/// (`thread::futex`); every other goes straight to the kernel, with nothing allocated or locked
/// (the library's own Rust futexes come this way: the caller's address tells them apart).
/// Naked: it passes the caller's return address to [`syscall_from`] as an eighth argument, in a
/// frame of its own.
///
/// # Safety
/// As `syscall(2)`.
#[cfg(target_arch = "x86_64")]
#[cfg_attr(not(test), unsafe(no_mangle))]
#[unsafe(naked)]
pub unsafe extern "C" fn syscall(
    number: libc::c_long,
    a1: libc::c_long,
    a2: libc::c_long,
    a3: libc::c_long,
    a4: libc::c_long,
    a5: libc::c_long,
    a6: libc::c_long,
) -> libc::c_long {
    core::arch::naked_asm!(
        // Entry: rsp = 8 mod 16, [rsp] the return address, [rsp + 8] the seventh argument.
        "mov rax, [rsp]",
        "mov r10, [rsp + 8]",
        "sub rsp, 24",
        "mov [rsp], r10",
        "mov [rsp + 8], rax",
        "call {inner}",
        "add rsp, 24",
        "ret",
        inner = sym syscall_from,
    )
}

/// `syscall` where no naked entry passes the caller's address (0: unknown, so no futex is
/// green).
///
/// # Safety
/// As `syscall(2)`.
#[cfg(not(target_arch = "x86_64"))]
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn syscall(
    number: libc::c_long,
    a1: libc::c_long,
    a2: libc::c_long,
    a3: libc::c_long,
    a4: libc::c_long,
    a5: libc::c_long,
    a6: libc::c_long,
) -> libc::c_long {
    // SAFETY: per our contract.
    unsafe { syscall_from(number, a1, a2, a3, a4, a5, a6, 0) }
}

/// `syscall`'s body, with the address it was called from.
///
/// # Safety
/// As `syscall(2)`.
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn syscall_from(
    number: libc::c_long,
    a1: libc::c_long,
    a2: libc::c_long,
    a3: libc::c_long,
    a4: libc::c_long,
    a5: libc::c_long,
    a6: libc::c_long,
    caller: usize,
) -> libc::c_long {
    let args = [a1, a2, a3, a4, a5, a6];
    if number == libc::SYS_futex && !super::unengaged() {
        // SAFETY: the caller's futex call.
        if let Some(answer) = unsafe { crate::thread::futex::call(args, caller) } {
            return answer;
        }
    }
    match os::syscall::effect(number) {
        // SAFETY: as below.
        Some(effect) if !super::unengaged() => unsafe { os::syscall::call(effect, number, args) },
        // SAFETY: the caller's system call, made as glibc's syscall makes it.
        _ => unsafe { crate::sys::syscall6(number, args) },
    }
}

/// `ioctl`: FIONBIO changes the descriptor's O_NONBLOCK.
///
/// # Safety
/// As `ioctl(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: usize) -> c_int {
    if super::unengaged() {
        // SAFETY: the caller's arguments, to the real function.
        return unsafe { (crate::real::variadic().ioctl)(fd, request, arg) };
    }
    // SAFETY: the caller's arguments.
    unsafe { green_ioctl(fd, request, arg) }
}

/// `green_ioctl`: `ioctl`, FIONBIO told to the fd table in a library linked on purpose too.
///
/// # Safety
/// As `ioctl(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn green_ioctl(fd: c_int, request: c_ulong, arg: usize) -> c_int {
    // SAFETY: the caller's arguments, passed on as the variadic call received them.
    let rc = unsafe { (crate::real::variadic().ioctl)(fd, request, arg) };
    os::after_control(rc, rc >= 0 && request == libc::FIONBIO, false);
    rc
}
