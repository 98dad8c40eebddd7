//! `pthread_key_*` per green thread (trap 7). Keys are still created by glibc, so numbering and
//! the main thread's values stay native; green threads keep their own values and run the
//! destructors when they end, as glibc does for real threads.

use super::active;
use crate::green::Green;
use crate::hub::Hub;
use crate::outcome::Outcome::{self, Bypass, Done};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use libc::{c_int, c_void, pthread_key_t};

/// glibc's PTHREAD_KEYS_MAX and PTHREAD_DESTRUCTOR_ITERATIONS.
const KEYS_MAX: usize = 1024;
const DESTRUCTOR_ROUNDS: usize = 4;

/// Keys created through us, and their destructors (0 for none).
static IN_USE: [AtomicBool; KEYS_MAX] = [const { AtomicBool::new(false) }; KEYS_MAX];
static DESTRUCTORS: [AtomicUsize; KEYS_MAX] = [const { AtomicUsize::new(0) }; KEYS_MAX];

fn ours(key: pthread_key_t) -> bool {
    (key as usize) < KEYS_MAX && IN_USE[key as usize].load(Ordering::Acquire)
}

/// The running green thread, when the call comes from one.
fn current_green() -> Option<&'static Green> {
    Hub::current()
        .filter(|hub| hub.in_green())
        .map(Hub::current_green)
}

/// `pthread_key_create`.
///
/// # Safety
/// As `pthread_key_create(3)`.
pub unsafe fn create(
    key: *mut pthread_key_t,
    destructor: Option<crate::real::KeyDestructor>,
) -> Outcome<c_int> {
    if !active() {
        return Bypass;
    }
    // SAFETY: same arguments as our caller's, to the real function.
    let rc = unsafe { (crate::real::get().pthread_key_create)(key, destructor) };
    if rc == 0 {
        // SAFETY: the real call succeeded, so *key was written.
        let k = unsafe { *key } as usize;
        if k < KEYS_MAX {
            DESTRUCTORS[k].store(destructor.map_or(0, |d| d as usize), Ordering::Relaxed);
            IN_USE[k].store(true, Ordering::Release);
        }
    }
    Done(rc)
}

/// `pthread_key_delete`.
pub fn delete(key: pthread_key_t) -> Outcome<c_int> {
    if !active() {
        return Bypass;
    }
    // SAFETY: the real function accepts any key value.
    let rc = unsafe { (crate::real::get().pthread_key_delete)(key) };
    if rc == 0 && (key as usize) < KEYS_MAX {
        IN_USE[key as usize].store(false, Ordering::Release);
        DESTRUCTORS[key as usize].store(0, Ordering::Relaxed);
    }
    Done(rc)
}

/// `pthread_getspecific`.
pub fn get(key: pthread_key_t) -> Outcome<*mut c_void> {
    match current_green() {
        Some(green) if ours(key) => {
            // SAFETY: only the green thread itself touches its key table, and not re-entrantly.
            let keys = unsafe { &*green.keys.get() };
            Done(
                keys.iter()
                    .find(|(k, _)| *k == key)
                    .map_or(core::ptr::null_mut(), |&(_, v)| v),
            )
        }
        _ => Bypass,
    }
}

/// `pthread_setspecific`. A key we did not see created (or a deleted one) goes to glibc, which
/// answers EINVAL for an unused key.
pub fn set(key: pthread_key_t, value: *const c_void) -> Outcome<c_int> {
    match current_green() {
        Some(green) if ours(key) => {
            set_value(green, key, value as *mut c_void);
            Done(0)
        }
        _ => Bypass,
    }
}

fn set_value(green: &Green, key: pthread_key_t, value: *mut c_void) {
    // SAFETY: only the green thread itself touches its key table, and not re-entrantly.
    let keys = unsafe { &mut *green.keys.get() };
    match keys.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None if !value.is_null() => keys.push((key, value)),
        None => {}
    }
}

/// Runs the key destructors of an ending green thread, on its own stack, in rounds as glibc.
pub fn run_destructors(green: &Green) {
    for _ in 0..DESTRUCTOR_ROUNDS {
        let mut ran = false;
        let mut i = 0;
        loop {
            // SAFETY: the thread's own table, re-borrowed each step because a destructor may
            // call pthread_setspecific.
            let keys = unsafe { &mut *green.keys.get() };
            let Some(&mut (key, value)) = keys.get_mut(i) else {
                break;
            };
            i += 1;
            let destructor = DESTRUCTORS[key as usize % KEYS_MAX].load(Ordering::Relaxed);
            if value.is_null() || !ours(key) || destructor == 0 {
                continue;
            }
            keys[i - 1].1 = core::ptr::null_mut();
            // SAFETY: the program registered this destructor for this key with
            // pthread_key_create, and glibc calls it with the non-null value the same way.
            let destructor: crate::real::KeyDestructor =
                unsafe { core::mem::transmute(destructor) };
            // SAFETY: as above.
            unsafe { destructor(value) };
            ran = true;
        }
        if !ran {
            break;
        }
    }
    // SAFETY: the thread's own table; no destructor runs any more.
    unsafe { (*green.keys.get()).clear() };
}
