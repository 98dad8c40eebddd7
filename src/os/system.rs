//! `system`, as glibc 2.36 makes it (`sysdeps/posix/system.c`), with a green wait: SIGINT and
//! SIGQUIT ignored while any `system` runs (the first caller saves their actions, the last
//! restores them), SIGCHLD blocked in the calling thread, the shell started by `posix_spawn`
//! with the caller's mask and SIGINT/SIGQUIT back to default unless they were ignored, then
//! `waitpid` until it reports the shell. glibc's own waits with its internal `waitpid`, which
//! no hook sees; this one parks the calling green thread only, so any number of `system` calls
//! run at once, as natively, without holding pool threads.

use crate::outcome::Outcome::{self, Bypass, Done};
use crate::patch::{self, Subsystem};
use libc::{EINTR, SIG_BLOCK, SIG_IGN, SIG_SETMASK, SIGCHLD, SIGINT, SIGQUIT, c_char, c_int};
use std::sync::Mutex;

/// How many `system` calls run, and the SIGINT and SIGQUIT actions the first one replaced.
struct Running {
    count: usize,
    saved: Option<(libc::sigaction, libc::sigaction)>,
}

// SAFETY: sigaction records are plain data (a handler address, flags, a mask).
unsafe impl Send for Running {}

static RUNNING: Mutex<Running> = Mutex::new(Running {
    count: 0,
    saved: None,
});

fn running() -> std::sync::MutexGuard<'static, Running> {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// `system`. The real call where nothing else could run meanwhile.
///
/// # Safety
/// `line` is null or a NUL-terminated string.
pub unsafe fn system(line: *const c_char) -> Outcome<c_int> {
    if !patch::active(Subsystem::Os) || !crate::tpool::would_park() || super::in_vfork_child() {
        return Bypass;
    }
    if line.is_null() {
        // glibc: is there a shell? One that runs "exit 0" says so.
        // SAFETY: a NUL-terminated literal.
        return Done(c_int::from(unsafe { run(c"exit 0".as_ptr()) } == 0));
    }
    // SAFETY: a NUL-terminated string (caller).
    Done(unsafe { run(line) })
}

/// # Safety
/// `line` is a NUL-terminated string.
unsafe fn run(line: *const c_char) -> c_int {
    // SAFETY: an all-zero sigaction with SIG_IGN (0 flags, empty mask) is a valid action.
    let mut ignore: libc::sigaction = unsafe { core::mem::zeroed() };
    ignore.sa_sigaction = SIG_IGN;
    let (intr, quit) = {
        let mut running = running();
        if running.count == 0 {
            // SAFETY: zeroed records for the old actions to be written into.
            let (mut intr, mut quit) = unsafe { (core::mem::zeroed(), core::mem::zeroed()) };
            // SAFETY: valid signals, a valid action, writable old records.
            unsafe {
                crate::signal::sigaction(SIGINT, &ignore, &mut intr);
                crate::signal::sigaction(SIGQUIT, &ignore, &mut quit);
            }
            running.saved = Some((intr, quit));
        }
        running.count += 1;
        running
            .saved
            .unwrap_or_else(|| crate::fatal!("system: no saved SIGINT action"))
    };

    let mut chld = sigset();
    // SAFETY: a valid sigset_t.
    unsafe { libc::sigaddset(&mut chld, SIGCHLD) };
    let mut outside = sigset();
    set_mask(SIG_BLOCK, &chld, &mut outside);

    let mut reset = sigset();
    // SAFETY: a valid sigset_t.
    unsafe {
        if intr.sa_sigaction != SIG_IGN {
            libc::sigaddset(&mut reset, SIGINT);
        }
        if quit.sa_sigaction != SIG_IGN {
            libc::sigaddset(&mut reset, SIGQUIT);
        }
    }
    // SAFETY: a NUL-terminated string (caller).
    let (spawned, pid) = unsafe { spawn_shell(line, &outside, &reset) };
    let status = if spawned == 0 {
        wait_for_shell(pid)
    } else {
        // POSIX: as if the shell had run `_exit(127)`.
        127 << 8
    };

    {
        let mut running = running();
        running.count -= 1;
        if running.count == 0
            && let Some((intr, quit)) = running.saved.take()
        {
            // SAFETY: valid signals and the actions saved above.
            unsafe {
                crate::signal::sigaction(SIGINT, &intr, core::ptr::null_mut());
                crate::signal::sigaction(SIGQUIT, &quit, core::ptr::null_mut());
            }
        }
    }
    set_mask(SIG_SETMASK, &outside, core::ptr::null_mut());
    if spawned != 0 {
        crate::sys::set_errno(spawned);
    }
    status
}

/// glibc's `TEMP_FAILURE_RETRY (waitpid (pid, &status, 0)) != pid ? -1 : status`, the wait
/// green where it can be (the real one where nothing else could run meanwhile).
fn wait_for_shell(pid: libc::pid_t) -> c_int {
    let mut status = 0;
    loop {
        // SAFETY: our own status word.
        let got = match unsafe { super::wait::waitpid(pid, &mut status, 0) } {
            Outcome::Done(got) => got,
            Outcome::Errno(code) => {
                crate::sys::set_errno(code);
                -1
            }
            // SAFETY: as above.
            Outcome::Bypass => unsafe { (crate::real::get().waitpid)(pid, &mut status, 0) },
        };
        if got == pid {
            return status;
        }
        if got < 0 && crate::sys::errno() == EINTR {
            continue;
        }
        return -1;
    }
}

/// `posix_spawn` of `/bin/sh -c LINE` with `mask` and `defaults` (glibc's attributes).
/// Returns (posix_spawn's result, the pid).
///
/// # Safety
/// `line` is a NUL-terminated string.
unsafe fn spawn_shell(
    line: *const c_char,
    mask: &libc::sigset_t,
    defaults: &libc::sigset_t,
) -> (c_int, libc::pid_t) {
    let argv = [c"sh".as_ptr(), c"-c".as_ptr(), line, core::ptr::null()];
    let mut pid: libc::pid_t = 0;
    // SAFETY: an attribute object initialised, set and destroyed here; argv is NULL-terminated
    // and its strings outlive the call; environ is the process's environment.
    unsafe {
        let mut attr: libc::posix_spawnattr_t = core::mem::zeroed();
        libc::posix_spawnattr_init(&mut attr);
        libc::posix_spawnattr_setsigmask(&mut attr, mask);
        libc::posix_spawnattr_setsigdefault(&mut attr, defaults);
        libc::posix_spawnattr_setflags(
            &mut attr,
            (libc::POSIX_SPAWN_SETSIGDEF | libc::POSIX_SPAWN_SETSIGMASK) as libc::c_short,
        );
        unsafe extern "C" {
            static environ: *const *mut c_char;
        }
        let rc = libc::posix_spawn(
            &mut pid,
            c"/bin/sh".as_ptr(),
            core::ptr::null(),
            &attr,
            argv.as_ptr() as *const *mut c_char,
            environ,
        );
        libc::posix_spawnattr_destroy(&mut attr);
        (rc, pid)
    }
}

fn sigset() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set it is given.
    unsafe {
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        set
    }
}

/// The calling thread's mask, as `pthread_sigmask` changes it: the green thread's own, or the
/// OS thread's when signal masks are not the library's here.
fn set_mask(how: c_int, set: &libc::sigset_t, old: *mut libc::sigset_t) {
    // SAFETY: a readable set; `old` null or writable (the callers').
    if unsafe { crate::signal::mask::change(how, set, old) }.is_none() {
        // SAFETY: as above.
        unsafe { (crate::real::get().pthread_sigmask)(how, set, old) };
    }
}
