//! The hand-off: a green thread that parks runs the next runnable thread itself, from its own
//! stack, instead of suspending to the root and having the root's loop resume it (issue 15).
//!
//! corosensei's coroutines are asymmetric: a resume links the resumed coroutine to the stack
//! that resumed it, and its suspend returns there. Through the root, a hand-off from A to B costs
//! two switches (A to the root, the root to B) and a pass of the root's loop; a mutex + condvar
//! round trip four. Here A, parking, becomes the *host*: it resumes B itself (B's suspend then
//! returns to A, not to the root), and when B parks after waking A, A finds itself at the head
//! of the run queue and simply goes on: one switch per hand-off, and no loop pass.
//!
//! One host at a time, and only a thread the root resumed: a thread the host resumed suspends
//! to it as it would to the root ([`Hub::host`] is set), and the host is never resumed by
//! anyone (it is popped from the run queue by itself only). The host gives the hub back to the
//! root (suspends as before, still parked) whenever the root's loop has something to do:
//! - the loop's periodic look (inbox, due timers, the poller, a requested look) is due: the
//!   host counts its hand-offs in the loop's counter ([`Hub::checks_due_in`]), so a ping-pong
//!   between two threads never starves them;
//! - the root was woken (its token taken: `main` runs as soon as a thread woke it, as through
//!   the loop), or is not waiting at all (a yielding root runs each ready thread once itself),
//!   or it is a fork child's (`root_gone`);
//! - the run queue is empty, or its head is a thread the host may not run: one not started
//!   yet (its first run builds its stack and thread-locals: the root's job), or one on a
//!   copied stack (`green::copied`: entering it would copy over the host's own frames).
//!
//! A host on a copied stack, an exiting thread, and a host with less than [`HOST_ROOM`] of its
//! stack left never host. What each resume does (errno, thread-locals, the turn, the monitor's
//! record, the end of a thread) is [`Hub::resume`]'s, the same as from the root, with the host
//! in the root's place; the host saves its own errno around it and installs its own
//! thread-locals again before it goes on.

use super::Hub;
use crate::green::Green;
use crate::waiting as wait_record;
use core::ptr;

/// The stack a host keeps free below its frame for the resumes it makes (a resume, and the end
/// of a thread that finishes in it, run there).
const HOST_ROOM: usize = 32 << 10;

impl Hub {
    /// `me`, a green thread the root resumed, parks (or yields): it runs the runnable threads
    /// itself while it may. True when it was woken meanwhile and taken off the run queue (it
    /// goes on without a switch); false when it must suspend to the root as usual.
    #[inline]
    pub(super) fn hand_off(&self, me: &'static Green) -> bool {
        self.host.get().is_null()
            && !me.exiting.get()
            && !me.shared_stack.get()
            && self.host_while_possible(me)
    }

    #[inline(never)]
    fn host_while_possible(&self, me: &'static Green) -> bool {
        let mut hosting = false;
        let mut woken = false;
        while self.checks_due_in.get() != 0
            && !self.root_gone.get()
            && self.root.current_token() != 0
        {
            let Some(next) = self.run_queue.borrow_mut().pop_front() else {
                break;
            };
            // Counted either way: a thread that yields in a loop, alone, must still let the
            // loop look at the poller now and then.
            self.checks_due_in.set(self.checks_due_in.get() - 1);
            if ptr::eq(next, me) {
                woken = true;
                break;
            }
            if !runnable_from_a_host(next) || !(hosting || has_room(me)) {
                self.run_queue.borrow_mut().push_front(next);
                self.checks_due_in.set(self.checks_due_in.get() + 1);
                break;
            }
            if !hosting {
                hosting = true;
                self.host.set(me);
                // SAFETY: this OS thread's errno (hubs are made on their own OS thread).
                me.errno.set(unsafe { *self.errno_at });
            }
            self.resume(next, me);
        }
        if hosting {
            self.host.set(ptr::null());
            self.install_own_tls(me);
            // SAFETY: as above.
            unsafe { *self.errno_at = me.errno.get() };
        }
        woken
    }

    /// Installs `me`'s thread-locals again after threads it hosted ran: its private ones, or
    /// the OS thread's when it shares those.
    #[inline]
    fn install_own_tls(&self, me: &'static Green) {
        if me.tls.get().is_private() {
            self.install_tls_of(me);
        } else {
            self.tls_home();
        }
    }
}

/// May a host resume `green`: started (its coroutine made) and on a stack of its own?
#[inline]
fn runnable_from_a_host(green: &'static Green) -> bool {
    // SAFETY: only this hub's OS thread touches the coroutine slot, and nothing holds a
    // reference to it here.
    let started = unsafe { (*green.coroutine.get()).is_some() };
    started && !green.shared_stack.get()
}

/// Has `me` at least [`HOST_ROOM`] of its stack left below the calling frame?
#[inline]
fn has_room(me: &'static Green) -> bool {
    let sp = wait_record::stack_pointer();
    me.started_stack()
        .is_some_and(|stack| sp > stack.low && sp - stack.low >= HOST_ROOM)
}
