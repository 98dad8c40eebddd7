//! A hub's poller: one epoll instance and an eventfd to wake it from other OS threads, driven
//! with raw system calls.
//!
//! The `polling` crate did this first; its `wait` re-arms a timerfd and the notifier around
//! every `epoll_wait` (five system calls where one will do), and retries EINTR, which a hub
//! must see. On a socketpair ping-pong that was half of all system calls. The runtime never
//! goes through libc here (it will export `epoll_wait` itself): raw syscalls only.

use crate::own_fd::{self as own, OwnFd};
use core::sync::atomic::{AtomicBool, Ordering, fence};
use libc::{c_int, epoll_event};
use std::io;

/// The key of the notifier's own event.
const NOTIFY_KEY: u64 = u64::MAX;

pub struct Poller {
    /// The library's own descriptors (see `own_fd`): high, and out of the program's reach.
    epoll: OwnFd,
    notifier: OwnFd,
    /// A wake-up is pending in the eventfd: further notifies need not write.
    notified: AtomicBool,
    /// The hub's own thread spins for work instead of sleeping (`hub::spin`): it looks at
    /// everything a notify announces before it sleeps, so notifies need not write.
    spinning: AtomicBool,
}

/// One readiness event.
#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub key: usize,
    pub readable: bool,
    pub writable: bool,
    /// EPOLLPRI, EPOLLRDHUP, EPOLLHUP or EPOLLERR: urgent data, the peer's shutdown, a hang-up
    /// or an error, which a read may meet without a new edge after it.
    pub exceptional: bool,
}

fn check(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

impl Poller {
    pub fn new() -> io::Result<Poller> {
        let (epoll, notifier) = Poller::open()?;
        let epoll = own::adopt(epoll).inspect_err(|_| {
            // SAFETY: our own descriptor, never published.
            unsafe { crate::sys::syscall!(libc::SYS_close, notifier) };
        })?;
        let notifier = own::adopt(notifier).inspect_err(|_| epoll.close())?;
        Ok(Poller {
            epoll,
            notifier,
            notified: AtomicBool::new(false),
            spinning: AtomicBool::new(false),
        })
    }

    /// In a forked child: the epoll instance and eventfd are the parent's (a child waiting on
    /// them would take the parent's events), so this process gets its own. Registrations are
    /// not carried over: descriptors register again on their next wait.
    pub fn reopen(&self) -> io::Result<()> {
        let (old_epoll, old_notifier) = self.replace()?;
        // SAFETY: our own descriptors (the child's copies of them), closed once.
        unsafe {
            crate::sys::syscall!(libc::SYS_close, old_epoll);
            crate::sys::syscall!(libc::SYS_close, old_notifier);
        }
        Ok(())
    }

    /// In a fork child, for a hub whose OS thread the child does not have: its descriptors
    /// (the child's copies) are closed, so they neither leak nor keep watching the program's.
    pub fn close_in_child(&self) {
        self.epoll.close();
        self.notifier.close();
    }

    /// After a failed wait (the program closed or replaced our epoll behind the hooks' back,
    /// with a raw system call): a fresh instance. The old numbers are not closed — they may be
    /// the program's by now. Registrations are not carried over (see `fd::rewatch`).
    pub fn renew(&self) -> io::Result<()> {
        self.replace().map(drop)
    }

    /// A fresh epoll instance and eventfd in place of the current ones, whose numbers it returns.
    fn replace(&self) -> io::Result<(c_int, c_int)> {
        let (epoll, notifier) = Poller::open()?;
        let old_epoll = self.epoll.replace(epoll);
        let old_notifier = self.notifier.replace(notifier);
        self.notified.store(false, Ordering::Release);
        Ok((old_epoll, old_notifier))
    }

    fn open() -> io::Result<(c_int, c_int)> {
        // SAFETY: plain syscalls with constant arguments.
        let epoll =
            check(unsafe { crate::sys::syscall!(libc::SYS_epoll_create1, libc::EPOLL_CLOEXEC) })?
                as c_int;
        let epoll = own::move_high(epoll);
        // SAFETY: as above.
        let notifier = match check(unsafe {
            crate::sys::syscall!(
                libc::SYS_eventfd2,
                0,
                libc::EFD_CLOEXEC | libc::EFD_NONBLOCK,
            )
        }) {
            Ok(fd) => own::move_high(fd as c_int),
            Err(e) => {
                // SAFETY: our own descriptor, closed once.
                unsafe { crate::sys::syscall!(libc::SYS_close, epoll) };
                return Err(e);
            }
        };
        let mut event = epoll_event {
            events: libc::EPOLLIN as u32,
            u64: NOTIFY_KEY,
        };
        // SAFETY: registers our eventfd with our epoll; event is valid for the call.
        let rc = unsafe {
            crate::sys::syscall!(
                libc::SYS_epoll_ctl,
                epoll,
                libc::EPOLL_CTL_ADD,
                notifier,
                &raw mut event,
            )
        };
        if let Err(e) = check(rc) {
            // SAFETY: our own descriptors, closed once.
            unsafe {
                crate::sys::syscall!(libc::SYS_close, epoll);
                crate::sys::syscall!(libc::SYS_close, notifier);
            }
            return Err(e);
        }
        Ok((epoll, notifier))
    }

    fn ctl(&self, op: c_int, fd: c_int, events: u32, key: u64) -> io::Result<()> {
        let mut event = epoll_event { events, u64: key };
        let epoll = self.epoll.get();
        // SAFETY: event is a valid epoll_event for the duration of the call.
        check(unsafe { crate::sys::syscall!(libc::SYS_epoll_ctl, epoll, op, fd, &raw mut event) })
            .map(drop)
    }

    /// Watches `fd` for both directions, edge-triggered.
    pub fn add_edge(&self, fd: c_int, key: usize) -> io::Result<()> {
        let events =
            libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLPRI | libc::EPOLLET;
        self.ctl(libc::EPOLL_CTL_ADD, fd, events as u32, key as u64)
    }

    pub fn delete(&self, fd: c_int) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Is a wake-up pending in the eventfd (for a dump)?
    pub fn is_notified(&self) -> bool {
        self.notified.load(Ordering::Relaxed)
    }

    /// Wakes the thread blocked in `wait` (from any thread), or the next `wait`. The caller
    /// has stored what the wake-up is for (the hub's inbox flag, a look asked for, a root's
    /// token) before the call: a spinning hub finds it there without a write.
    pub fn notify(&self) -> io::Result<()> {
        // Pairs with the fence in `stop_spinning`: either the hub, once it stops, sees what
        // the caller stored, or this load sees it has stopped and the write wakes its wait.
        fence(Ordering::SeqCst);
        if self.spinning.load(Ordering::Relaxed) {
            return Ok(());
        }
        if self.notified.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd.
        check(unsafe {
            crate::sys::syscall!(libc::SYS_write, self.notifier.get(), &raw const one, 8)
        })
        .map(drop)
    }

    /// The hub's own thread spins for work: notifies need not write until `stop_spinning`.
    pub fn start_spinning(&self) {
        self.spinning.store(true, Ordering::Relaxed);
    }

    /// The hub's own thread stops spinning; it must look for work once more after this (a
    /// notify that saw it spinning did not write).
    pub fn stop_spinning(&self) {
        self.spinning.store(false, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Waits up to `timeout_ns` (None: forever) and passes each event to `on_event`. Returns
    /// early on a notify; the events the wait ended with (a notify counted: 0 when the whole
    /// timeout passed), or None when a signal handler ran (EINTR). A batch of several events
    /// is first shown whole to `prefetch`.
    pub fn wait(
        &self,
        buf: &mut [epoll_event],
        timeout_ns: Option<u64>,
        prefetch: impl FnOnce(&[epoll_event]),
        mut on_event: impl FnMut(Event),
    ) -> io::Result<Option<usize>> {
        let Some(n) = self.epoll_wait(buf, timeout_ns)? else {
            return Ok(None);
        };
        if n > 1 {
            prefetch(&buf[..n]);
        }
        for event in &buf[..n] {
            let (flags, key) = (event.events, event.u64);
            if key == NOTIFY_KEY {
                let mut count: u64 = 0;
                // SAFETY: reads 8 bytes into a valid u64 from our eventfd.
                unsafe {
                    crate::sys::syscall!(libc::SYS_read, self.notifier.get(), &raw mut count, 8)
                };
                self.notified.store(false, Ordering::Release);
                // Pairs with the fence in `notify`: the hub looks at its inbox after this
                // wait, and that load must not pass this store (x86 lets a load pass an
                // earlier store): a waker that still saw `notified` set did not write, so
                // the hub must see what it stored before. Without it a wake-up sat in the
                // inbox while the hub slept (test_hubs_sync, now and then, at HUBS=2).
                fence(Ordering::SeqCst);
                continue;
            }
            let broken = flags & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0;
            on_event(Event {
                key: key as usize,
                readable: broken
                    || flags & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI) as u32 != 0,
                writable: broken || flags & libc::EPOLLOUT as u32 != 0,
                exceptional: flags
                    & (libc::EPOLLPRI | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32
                    != 0,
            });
        }
        Ok(Some(n))
    }

    /// The number of events, or None when a signal interrupted the wait.
    fn epoll_wait(
        &self,
        buf: &mut [epoll_event],
        timeout_ns: Option<u64>,
    ) -> io::Result<Option<usize>> {
        static NO_PWAIT2: AtomicBool = AtomicBool::new(false);
        let (ptr, len) = (
            buf.as_mut_ptr(),
            buf.len().min(c_int::MAX as usize) as c_int,
        );
        let epoll = self.epoll.get();
        let mut rc = -1;
        if !NO_PWAIT2.load(Ordering::Relaxed) {
            let ts = timeout_ns.map(crate::sys::ns_timespec);
            let ts_ptr = ts
                .as_ref()
                .map_or(core::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: buf is writable for len events; ts is valid or null; no signal mask.
            rc = unsafe {
                crate::sys::syscall!(
                    libc::SYS_epoll_pwait2,
                    epoll,
                    ptr,
                    len,
                    ts_ptr,
                    0usize,
                    8usize,
                )
            };
            if rc < 0 && crate::sys::errno() == libc::ENOSYS {
                NO_PWAIT2.store(true, Ordering::Relaxed);
            }
        }
        if NO_PWAIT2.load(Ordering::Relaxed) {
            // Milliseconds, rounded up so a timer is never fired early.
            let ms = timeout_ns.map_or(-1, |ns| {
                ns.div_ceil(1_000_000).min(c_int::MAX as u64) as c_int
            });
            // SAFETY: as above.
            rc = unsafe {
                crate::sys::syscall!(libc::SYS_epoll_pwait, epoll, ptr, len, ms, 0usize, 8usize)
            };
        }
        match check(rc) {
            Ok(n) => Ok(Some(n as usize)),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
