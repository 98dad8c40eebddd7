//! # greenworld
//!
//! Greens the world for unmodified Linux programs: loaded with `LD_PRELOAD` (or through
//! `scripts/greenrun`), it interposes libc and runs the program's threads as green threads —
//! stackful coroutines on a per-OS-thread hub — that yield whenever they would block.
//!
//! The map (each module has one job; the call path runs top to bottom):
//! - [`abi`]: the exported C surface, thin shims only (the one place with `#[no_mangle]`); each
//!   hook is one row there, which also makes its [`real`] function and its registry row.
//! - [`patch`]: what is patched — the hooked-function registry, the per-call decision — over
//!   [`subsystem`] (the subsystems as data) and [`config`], read from the environment once
//!   (eventlet's `monkey_patch` truth table), with what its first read sets up (log and stats
//!   sinks, the panic policy, the exit-time report); [`scope`]: which shared objects' calls are
//!   green when patching is scoped to them (eventlet's `import_patched`).
//! - one module per patched subsystem, named after eventlet's kwargs: [`os`], [`select`],
//!   [`socket`], [`thread`] and [`time`].
//! - [`fd`]: the fd table — what each descriptor is, the flags the program set, readiness —
//!   and the green I/O loop the `os` and `socket` subsystems share; [`stdio`] puts it in
//!   front of glibc's FILE reads, whose own `read` no hook sees.
//! - [`signal`]: the program's signal handlers, wrapped so that a waiting call they interrupt
//!   returns EINTR; `pthread_sigmask` and `pthread_kill` of a green thread.
//! - [`park`]: the parking lot, the wait queues of primitives and descriptors.
//! - [`sysmon`]: the monitor thread that watches every hub from outside: preemption of a
//!   thread that keeps its hub, the blocking detector, the escapes table.
//! - [`tpool`]: real OS threads for the calls that cannot be made non-blocking; [`resolver`]
//!   sends name resolution there, [`fileio`] regular-file I/O (`GREENWORLD_FILEIO=pool`).
//! - [`hub`]: a hub per OS thread, scheduling only — run queue, timers, poller, the root's loop,
//!   each thread's signal mask; what its poller's keys mean is its owners' (`hub::Owners`).
//! - [`green`]: green-thread control blocks, their handle table, their pooled stacks, their
//!   private thread-locals (`green::tls`), and the opt-in copied stacks (`green::copied`).
//! - [`real`]: the real libc functions, resolved once (a symbol some glibc lacks, on first call).
//! - [`runtime`]: the constructor; [`log`], [`stats`], [`sys`];
//!   [`context`]: whether the caller runs in a vfork child or a signal handler; [`own_fd`]: the
//!   library's own descriptors;
//!   [`inherit`]: at start-up, the library out of `LD_PRELOAD` when children must not inherit it;
//!   [`loaded`]: whether the library was preloaded or linked on purpose; [`plain_fds`]: the
//!   descriptors whose reads and writes the exports send straight to libc.
//!
//! The design, and the numbered traps that comments cite as "trap N": `docs/design.md`.
//!
//! Rules that hold everywhere: no panic crosses into C (release builds abort, after one
//! `greenworld:` line); the runtime never calls its own hooks (raw syscalls through
//! `sys::syscall!` — libc's `syscall` is hooked — or [`real`] only);
//! nothing allocates or locks on a path the allocator or the dynamic loader can re-enter.
#![deny(unsafe_op_in_unsafe_fn)]

mod abi;
pub mod config;
pub mod context;
pub mod dump;
pub mod fd;
pub mod fileio;
pub mod go_runtime;
pub mod green;
pub mod hub;
pub mod inherit;
pub mod loaded;
#[macro_use]
pub mod log;
pub mod os;
pub mod outcome;
pub mod own_fd;
pub mod park;
pub mod patch;
pub mod plain_fds;
pub mod real;
pub mod resolver;
pub mod runtime;
pub mod rust_std;
pub mod scope;
pub mod select;
pub mod signal;
pub mod socket;
pub mod stats;
pub mod stdio;
pub mod subsystem;
pub mod sys;
pub mod sysmon;
pub mod thread;
pub mod time;
pub mod tpool;
pub mod waiting;
