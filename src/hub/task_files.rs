//! The `/proc` files of a hub's OS thread that other threads read — its `stat` (is it running
//! user code, does it block the preemption signal: the monitor before each delivery, a waker
//! on another hub) and its `syscall` (the blocking detector's look) — kept open as library
//! descriptors, opened by the hub's own thread as it is made (again in a fork child, whose
//! thread id is new), and read with `pread` at offset 0 (the kernel renders them afresh).
//!
//! Opened at each reading instead, the file took the lowest free number for a moment, while
//! the program ran on other OS threads: a program that had just closed every descriptor from
//! 3 up saw 3 open, and a close loop could close it under the reader, whose `read` then went
//! to whatever the program opened there next (README, "The library's descriptors").

use crate::own_fd::{self as own, OwnFd};
use core::fmt::Write;
use std::sync::OnceLock;

/// Which file.
#[derive(Clone, Copy)]
pub enum TaskFile {
    Stat,
    Syscall,
}

impl TaskFile {
    pub fn name(self) -> &'static str {
        match self {
            TaskFile::Stat => "stat",
            TaskFile::Syscall => "syscall",
        }
    }
}

/// One hub's files (each slot set once; a fork child replaces the number in it).
#[derive(Default)]
pub(super) struct Kept {
    files: [OnceLock<OwnFd>; 2],
}

impl Kept {
    /// Opens the files the monitor will read of OS thread `tid` (the caller's own), in place
    /// of any kept before (a fork child's copies name its parent's thread).
    pub(super) fn open(&self, tid: i32) {
        // What the monitor will read, by the configuration's own answers (the hub layer may
        // not ask `sysmon`).
        let config = crate::config::get();
        let (stat, syscall) = (config.reads_hub_stat(), config.follows_blocks());
        for (file, wanted) in [(TaskFile::Stat, stat), (TaskFile::Syscall, syscall)] {
            let slot = &self.files[file as usize];
            let fd = if wanted { open(tid, file) } else { None };
            match (slot.get(), fd) {
                (Some(own), Some(fd)) => {
                    let old = own.replace(fd);
                    close(old);
                }
                (Some(own), None) => own.close(),
                (None, Some(fd)) => {
                    if let Ok(own) = own::adopt(fd) {
                        let _ = slot.set(own);
                    }
                }
                (None, None) => {}
            }
        }
    }

    /// Reads `file` into `buf`: the bytes read, None when it is not kept (not wanted when the
    /// hub was made, or it could not be opened) or cannot be read.
    pub(super) fn read(&self, file: TaskFile, buf: &mut [u8]) -> Option<usize> {
        let fd = self.files[file as usize].get()?.get();
        if fd < 0 {
            return None;
        }
        // SAFETY: a valid buffer of its length; our own descriptor (raw: the monitor never
        // calls a hook).
        let n =
            unsafe { crate::sys::syscall!(libc::SYS_pread64, fd, buf.as_mut_ptr(), buf.len(), 0) };
        (n > 0).then_some(n as usize)
    }

    /// In a fork child, for a hub whose OS thread it does not have.
    pub(super) fn close(&self) {
        for slot in &self.files {
            if let Some(own) = slot.get() {
                own.close();
            }
        }
    }
}

fn open(tid: i32, file: TaskFile) -> Option<libc::c_int> {
    let mut path = crate::sys::LineBuf::new();
    let _ = write!(path, "/proc/self/task/{tid}/{}\0", file.name());
    let path = core::ffi::CStr::from_bytes_with_nul(path.as_bytes()).ok()?;
    crate::sys::open_raw(path, libc::O_RDONLY | libc::O_CLOEXEC)
}

fn close(fd: libc::c_int) {
    if fd >= 0 {
        // SAFETY: our own descriptor, just replaced in its slot.
        unsafe { crate::sys::syscall!(libc::SYS_close, fd) };
    }
}
