//! `sigwait`, `sigwaitinfo`, `sigtimedwait` of the `os` subsystem: green waits on a signalfd,
//! a descriptor like any other (so here, above `fd` and `signal`, which it uses both).

use libc::{c_int, siginfo_t};

/// `sigwait`, `sigwaitinfo`, `sigtimedwait`: a green wait for one of `set` (which the program
/// blocks) to be pending, then taken, through a signalfd; other green threads run meanwhile.
/// Returns the signal number, or Err(errno).
///
/// # Safety
/// `set` is a readable set; `info` is null or writable.
pub unsafe fn wait_for(
    set: *const libc::sigset_t,
    info: *mut siginfo_t,
    timeout: Option<u64>,
) -> crate::outcome::Outcome<c_int> {
    use crate::outcome::Outcome::{Bypass, Done, Errno};
    if !crate::patch::active(crate::patch::Subsystem::Os)
        || !crate::hub::Hub::current().is_some_and(|hub| hub.parkable())
    {
        return Bypass;
    }
    // SAFETY: a readable set (caller); a fresh non-blocking, close-on-exec signalfd.
    let fd =
        unsafe { (crate::real::get().signalfd)(-1, set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
    if fd < 0 {
        return Bypass;
    }
    // High, and out of the program's reach while it waits (see `own_fd`).
    let Ok(own) = crate::own_fd::adopt(fd) else {
        return Bypass;
    };
    crate::fd::born(own.get(), crate::fd::Kind::Unknown);
    let deadline = timeout.map(|t| crate::sys::now_ns().saturating_add(t));
    // SAFETY: all-zero is a valid signalfd_siginfo to read into.
    let mut record: libc::signalfd_siginfo = unsafe { core::mem::zeroed() };
    let size = size_of::<libc::signalfd_siginfo>();
    let hub = crate::hub::Hub::current().expect("checked above");
    let me = hub.current_green();
    // SAFETY: a readable set (caller).
    let wanted = crate::signal::mask::from_set(unsafe { &*set });
    // `pthread_kill` of this thread with one of them wakes it (see `signal::mask::send_to`).
    me.sigwaiting.set(wanted);
    let outcome = loop {
        if let Some(sent) = hub.masks().take_sent(me, wanted) {
            record.ssi_signo = sent.si_signo as u32;
            record.ssi_code = sent.si_code;
            // SAFETY: a record made by `sent_info`, whose union holds a sender.
            unsafe {
                record.ssi_pid = sent.si_pid() as u32;
                record.ssi_uid = sent.si_uid();
            }
            break Done(sent.si_signo);
        }
        // SAFETY: reads one record into a valid buffer of its size (the real read: ours would
        // see a plain descriptor anyway).
        let n = unsafe { (crate::real::get().read)(own.get(), (&raw mut record).cast(), size) };
        if n == size as isize {
            break Done(record.ssi_signo as c_int);
        }
        if deadline.is_some_and(|d| crate::sys::now_ns() >= d) {
            break Errno(libc::EAGAIN);
        }
        if let Err(not_ready) =
            crate::fd::wait::wait_any(hub, core::iter::once(own.get()), deadline, None)
        {
            break Errno(not_ready.errno());
        }
    };
    me.sigwaiting.set(0);
    crate::fd::forget(own.get());
    own.close();
    // SAFETY: info is NULL or the caller's siginfo_t.
    if let (Done(_), Some(info)) = (&outcome, unsafe { info.as_mut() }) {
        // SAFETY: all-zero is a valid siginfo_t; the fields glibc's sigwaitinfo fills from the
        // kernel's record are copied over it.
        *info = unsafe { core::mem::zeroed() };
        info.si_signo = record.ssi_signo as c_int;
        info.si_errno = record.ssi_errno;
        info.si_code = record.ssi_code;
        if record.ssi_code == libc::SI_TKILL || record.ssi_code == libc::SI_USER {
            crate::signal::mask::set_sender(info, record.ssi_pid as libc::pid_t, record.ssi_uid);
        }
    }
    outcome
}
