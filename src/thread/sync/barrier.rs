//! `pthread_barrier_wait`, in glibc's `pthread_barrier_t` (`in`, `current_round`, `count`,
//! `shared` as `pthread_barrier_init` wrote them). Arrivals are counted under the barrier's
//! parking-lot bucket; the last one releases the round. A process-shared barrier keeps glibc's
//! protocol (other processes take part), waited for by a pool thread.

use crate::outcome::Outcome::{self, Bypass, Done};
use crate::park::{self, WakeList};
use crate::waiting::WaitOn;
use libc::{PTHREAD_BARRIER_SERIAL_THREAD, c_int, pthread_barrier_t};

/// `pthread_barrier_wait`.
///
/// # Safety
/// `b` is initialised.
pub unsafe fn wait(b: *mut pthread_barrier_t) -> Outcome<c_int> {
    let fields = b.cast::<u32>();
    if !crate::thread::active() {
        return Bypass;
    }
    // SAFETY: `shared` is the fourth u32 of the 32-byte object.
    if unsafe { fields.add(3).read_volatile() } != 0 {
        // Other processes take part with glibc's protocol: a pool thread waits for us.
        let b = b as usize;
        // SAFETY: the caller's barrier, valid while this call waits.
        return Done(crate::tpool::run(|| unsafe {
            (crate::real::get().pthread_barrier_wait)(b as *mut pthread_barrier_t)
        }));
    }
    let key = b as usize;
    let bucket = park::lock(key);
    // SAFETY: `in` (0) and `count` (2) are only touched under this bucket's lock from here on.
    let (arrived, count) = unsafe { (&mut *fields, *fields.add(2)) };
    *arrived += 1;
    if *arrived < count {
        bucket.park(key, 0, None, WaitOn::Barrier(key).word(), || {});
        return Done(0);
    }
    *arrived = 0;
    // SAFETY: `current_round` (1), under the bucket lock.
    unsafe { *fields.add(1) = (*fields.add(1)).wrapping_add(1) };
    let mut bucket = bucket;
    let mut wakers = WakeList::default();
    bucket.unpark_all(key, |_| true, &mut wakers);
    drop(bucket);
    wakers.wake_all();
    Done(PTHREAD_BARRIER_SERIAL_THREAD)
}
