//! `pthread_once` and C11 `call_once`: the first caller runs the routine (which may itself
//! block, green); the others park until it is done. glibc's values: 0 not run, 1 in progress,
//! 2 done.

use crate::outcome::Outcome::{self, Bypass, Done};
use crate::park;
use crate::waiting::WaitOn;
use core::sync::atomic::{AtomicI32, Ordering};
use libc::c_int;

const IN_PROGRESS: i32 = 1;
const DONE: i32 = 2;

/// Runs `init` once for `once`.
///
/// # Safety
/// `once` points to a live `pthread_once_t` (or C11 `once_flag`).
pub unsafe fn once(once: *mut c_int, init: impl FnOnce()) -> Outcome<c_int> {
    if !crate::thread::active() {
        return Bypass;
    }
    // SAFETY: an aligned int (caller).
    let word = unsafe { &*once.cast::<AtomicI32>() };
    let key = once as usize;
    let mut init = Some(init);
    loop {
        match word.load(Ordering::Acquire) {
            DONE => return Done(0),
            0 if word
                .compare_exchange(0, IN_PROGRESS, Ordering::Acquire, Ordering::Acquire)
                .is_ok() =>
            {
                if let Some(init) = init.take() {
                    // The program's routine runs as the program wrote it, even when
                    // `green_pthread_once` called it (see `patch::Twin`).
                    let twin = crate::patch::leave_twin();
                    init();
                    crate::patch::resume_twin(twin);
                }
                word.store(DONE, Ordering::Release);
                super::cond::wake_all(key);
                return Done(0);
            }
            0 => continue,
            _ => {
                let bucket = park::lock(key);
                if word.load(Ordering::Acquire) == IN_PROGRESS {
                    bucket.park(key, 0, None, WaitOn::Once(key).word(), || {});
                }
            }
        }
    }
}
