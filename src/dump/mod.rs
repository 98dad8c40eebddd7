//! The green-thread dump (Go's goroutine dump on SIGQUIT): every green thread and hub root,
//! what each waits on and since when, where it started, and a backtrace of each parked one;
//! then each hub's and the pool's state. And the deadlock message, when every thread waits on
//! another and nothing else could ever wake one ([`deadlock`]).
//!
//! Asked for three ways, all printed by a hub at its next look, never from a signal handler:
//! `GREENWORLD_DUMP_AT_EXIT=1` (an atexit handler), `GREENWORLD_DUMP_SIGNAL` (a handler that
//! only asks: [`Hub::request_dump`]) and `greenrun --dump PID` ([`channel`]: an abstract unix
//! socket the oldest hub watches). A hub that is not switching (a green thread spinning, or
//! blocked in a call no hook sees) answers when it next switches; nothing is printed meanwhile.
//! Lines go out with raw `write(2)` (the library's copy of stderr, or the channel's socket),
//! never through the program's stdio.

pub mod channel;
pub mod deadlock;
pub mod symbols;

use crate::green::{Entry, Green, table};
use crate::hub::Hub;
use crate::waiting::WaitOn;
use core::fmt::Write;
use core::sync::atomic::Ordering;
use libc::c_int;
use symbols::Names;

/// Where a dump goes.
#[derive(Clone, Copy)]
pub enum Sink {
    Stderr,
    /// A reader's connection (the channel).
    Socket(c_int),
}

/// Whole lines, each `greenworld: `-prefixed, gathered and written in large pieces.
pub struct Out {
    sink: Sink,
    buf: Vec<u8>,
    line_start: bool,
}

impl Out {
    pub fn new(sink: Sink) -> Out {
        Out {
            sink,
            buf: Vec::with_capacity(16 << 10),
            line_start: true,
        }
    }

    fn flush(&mut self) {
        match self.sink {
            Sink::Stderr => crate::log::to_stderr(&self.buf),
            Sink::Socket(fd) => send_all(fd, &self.buf),
        }
        self.buf.clear();
    }
}

impl Write for Out {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for piece in s.split_inclusive('\n') {
            if self.line_start {
                self.buf.extend_from_slice(b"greenworld: ");
            }
            self.buf.extend_from_slice(piece.as_bytes());
            self.line_start = piece.ends_with('\n');
            if self.line_start && self.buf.len() > (12 << 10) {
                self.flush();
            }
        }
        Ok(())
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        if !self.line_start {
            self.buf.push(b'\n');
        }
        self.flush();
    }
}

/// Sends all of `bytes` on a connected socket, giving up on an error (the reader went away, or
/// stalled past its send timeout); never raises SIGPIPE in the program.
fn send_all(fd: c_int, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: sends from a valid buffer of its length, no address.
        let n = unsafe {
            crate::sys::syscall!(
                libc::SYS_sendto,
                fd,
                bytes.as_ptr(),
                bytes.len(),
                libc::MSG_NOSIGNAL,
                core::ptr::null::<libc::sockaddr>(),
                0
            )
        };
        if n < 0 && crate::sys::errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// Writes all of `bytes` to `fd` (the reading tool's stdout), giving up on an error.
pub fn write_all(fd: c_int, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writes from a valid buffer of its length.
        let n = unsafe { crate::sys::syscall!(libc::SYS_write, fd, bytes.as_ptr(), bytes.len()) };
        if n < 0 && crate::sys::errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// Sections other modules add to the dump, printed after the threads and hubs, in order.
const DUMP_SECTIONS: &[fn(&mut Out)] = &[pool_section, escapes_section];

/// Prints the whole dump: a header, each hub with its threads, then [`DUMP_SECTIONS`].
pub fn print(out: &mut Out, headline: &str) {
    let hubs: Vec<&'static Hub> = Hub::all().collect();
    let greens: Vec<&'static Green> = table::live().collect();
    let _ = writeln!(
        out,
        "{headline} pid {} ({}): green threads: {}, hubs: {}",
        crate::log::pid(),
        crate::log::program(),
        greens.len(),
        hubs.len()
    );
    // Objects can be named only with `_dl_find_object` (glibc 2.35 and later).
    let named = crate::scope::finder_ready();
    let mut ctx = Context {
        names: Names::default(),
        ours: symbols::object_start(print as *const () as usize).unwrap_or(0),
        named,
    };
    for (number, hub) in hubs.iter().rev().enumerate() {
        hub_line(out, number + 1, hub);
        thread_lines(out, &mut ctx, hub.root(), hub);
        for green in greens.iter().filter(|g| core::ptr::eq(g.hub(), *hub)) {
            thread_lines(out, &mut ctx, green, hub);
        }
    }
    for section in DUMP_SECTIONS {
        section(out);
    }
    let _ = writeln!(out, "end of dump");
}

struct Context {
    names: Names,
    /// Where this library's object starts.
    ours: usize,
    /// Objects can be named and stacks scanned (glibc 2.35+).
    named: bool,
}

fn hub_line(out: &mut Out, number: usize, hub: &Hub) {
    let facts = hub.facts();
    let opt = |v: Option<usize>| v.map_or_else(|| "?".to_string(), |v| v.to_string());
    let _ = writeln!(
        out,
        "hub {number} (OS thread {:#x}{}): runq {} inbox {} inbox_full {} notified {} alive {} timers {} watched fds {}",
        hub.os_thread(),
        if hub.is_mine() { ", printing this" } else { "" },
        opt(facts.run_queue),
        facts.inbox,
        facts.inbox_full,
        facts.notified,
        opt(facts.alive),
        opt(facts.timers),
        facts.watched,
    );
}

/// A thread's name for the dump: `thread N "name"` (N: its slot in the handle table, from 1).
fn thread_name(green: &Green) -> String {
    if green.is_root() {
        return "root (the OS thread's own stack)".to_string();
    }
    let number = (green.id.get() & !table::GREEN_ID_BIT) + 1;
    let name = *green.name.lock().unwrap_or_else(|e| e.into_inner());
    let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    let mut text = format!("thread {number}");
    if len > 0 {
        let _ = write!(text, " \"{}\"", String::from_utf8_lossy(&name[..len]));
    }
    text
}

fn thread_lines(out: &mut Out, ctx: &mut Context, green: &'static Green, hub: &Hub) {
    let token = green.current_token();
    // A hub's root is its current thread while the hub loop runs, parked all the same.
    let running = token == 0 && hub.is_mine() && core::ptr::eq(hub.current_green(), green);
    let mut line = format!("  {}", thread_name(green));
    if !green.is_root() {
        let _ = write!(line, " [{:#x}]", green as *const Green as usize);
    }
    let _ = line.write_str(": ");
    if running {
        let _ = line.write_str("running (printing this dump)");
    } else if token == 0 {
        let _ = line.write_str("runnable");
    } else {
        let on = WaitOn::unpack(green.waiting_on.load(Ordering::Relaxed));
        let since = crate::waiting::ns_since(green.waiting_since.load(Ordering::Relaxed));
        let _ = line.write_str("parked on ");
        describe_wait(&mut line, green, hub, on);
        let _ = write!(line, ", for {}", Seconds(since));
        if let Some(deadline) = hub.deadline_of(green, token) {
            let left = deadline.saturating_sub(crate::sys::now_ns());
            let _ = write!(line, ", deadline in {}", Seconds(left));
        }
    }
    let _ = writeln!(out, "{line}");
    if let Some(entry) = green.entry.get() {
        let start = match entry {
            Entry::Posix(f, _) => f as usize,
            Entry::C11(f, _) => f as usize,
        };
        let mut text = String::new();
        ctx.names.describe(&mut text, start);
        if green.created_at != 0 {
            let _ = text.write_str(", created at ");
            ctx.names.describe(&mut text, green.created_at);
        }
        let _ = writeln!(out, "      started at {text}");
    }
    if running || token == 0 {
        return;
    }
    backtrace(out, ctx, green, hub);
}

/// The parked thread's return addresses, read off its stack from where it switched out.
fn backtrace(out: &mut Out, ctx: &mut Context, green: &Green, hub: &Hub) {
    let (sp, top) = if green.is_root() {
        // A root parks in its own hub loop: when that hub prints, its stack is ours now.
        if !hub.is_mine() {
            return;
        }
        (crate::waiting::stack_pointer(), 0)
    } else {
        // A parked thread has started: its stack is settled.
        let stack = green.started_stack().unwrap_or_default();
        let sp = green.switched_sp.load(Ordering::Relaxed);
        let top = stack.low + stack.size;
        if !(stack.low..top).contains(&sp) {
            let _ = writeln!(
                out,
                "      (no backtrace: saved stack pointer off its stack)"
            );
            return;
        }
        match copied_view(green, hub, sp, top) {
            Some(view) => view,
            None => {
                let _ = writeln!(
                    out,
                    "      (no backtrace: its stack is copied out, GREENWORLD_STACK_COPY)"
                );
                return;
            }
        }
    };
    if !ctx.named {
        return;
    }
    let frames = symbols::frames(sp, top, ctx.ours, 12);
    for (i, addr) in frames.into_iter().enumerate() {
        let mut text = String::new();
        ctx.names.describe(&mut text, addr);
        let _ = writeln!(out, "      #{i} {text} (scan)");
    }
}

/// Where the bytes of `green`'s stack `[sp, top)` are to be read now: in place, or in its
/// saved copy while another thread runs on the region they share (`green::copied`), which only
/// its own hub's thread may read (another could catch a copy half made).
fn copied_view(green: &Green, hub: &Hub, sp: usize, top: usize) -> Option<(usize, usize)> {
    if !hub.is_mine() {
        return (!crate::green::copied::enabled()).then_some((sp, top));
    }
    if !green.shared_stack.get() {
        return Some((sp, top));
    }
    let from = hub.locate_on_stack(green, sp)?;
    Some((from, from + (top - sp)))
}

fn describe_wait(line: &mut String, green: &Green, hub: &Hub, on: Option<WaitOn>) {
    let _ = match on {
        None => line.write_str("something unrecorded"),
        Some(WaitOn::Sleep) => line.write_str("sleep"),
        Some(WaitOn::Join(handle)) => match table::lookup(handle) {
            Ok(Some(joined)) => write!(line, "join of {} [{handle:#x}]", thread_name(joined)),
            _ => write!(line, "join of [{handle:#x}]"),
        },
        Some(WaitOn::AllDone) => line.write_str("pthread_exit: every green thread's end"),
        Some(WaitOn::Serving) => line.write_str("serving its hub's green threads"),
        Some(WaitOn::Mutex(a)) => write!(line, "mutex {a:#x}"),
        Some(WaitOn::Cond(a)) => write!(line, "condition variable {a:#x}"),
        Some(WaitOn::RwLock(a)) => write!(line, "rwlock {a:#x}"),
        Some(WaitOn::Sem(a)) => write!(line, "semaphore {a:#x}"),
        Some(WaitOn::Barrier(a)) => write!(line, "barrier {a:#x}"),
        Some(WaitOn::Once(a)) => write!(line, "pthread_once {a:#x}"),
        Some(WaitOn::Futex(a)) => write!(line, "futex {a:#x}"),
        Some(WaitOn::FdRead(fd)) => write!(line, "fd {fd} readable"),
        Some(WaitOn::FdWrite(fd)) => write!(line, "fd {fd} writable"),
        Some(WaitOn::Fds(_)) if hub.is_mine() && green.sigwaiting.get() != 0 => {
            write!(line, "sigwait (signal mask {:#x})", green.sigwaiting.get())
        }
        Some(WaitOn::Fds(n)) => write!(line, "poll/select of {n} fds"),
        Some(WaitOn::Signal) => line.write_str("pause/sigsuspend (a signal's handler)"),
        Some(WaitOn::Pool) => line.write_str("a call on the thread pool"),
        Some(WaitOn::File) => line.write_str("a file call on the thread pool"),
        Some(WaitOn::Child) => line.write_str("a child process (wait)"),
    };
}

/// A duration as seconds with three decimals.
struct Seconds(u64);

impl core::fmt::Display for Seconds {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}.{:03}s",
            self.0 / 1_000_000_000,
            self.0 / 1_000_000 % 1000
        )
    }
}

/// The escaped-blocking table so far (`GREENWORLD_ESCAPES`), when a call escaped.
fn escapes_section(out: &mut Out) {
    crate::sysmon::escapes::for_each_line(|line| {
        let _ = out.write_str(line);
    });
}

fn pool_section(out: &mut Out) {
    let pool = crate::tpool::state();
    let _ = writeln!(
        out,
        "pool: {} threads, {} idle, {} calls queued",
        pool.threads, pool.idle, pool.queued
    );
}

/// Sets up what the configuration asks for (from the library's constructor): the dump at exit
/// and the dump signal's handler.
pub fn init(config: &crate::config::Config) {
    if config.dump_at_exit {
        // SAFETY: an extern "C" fn taking nothing, as atexit expects.
        if unsafe { libc::atexit(dump_at_exit) } != 0 {
            crate::log!(Warn, "cannot register the dump at exit with atexit");
        }
    }
    if config.dump_signal != 0 {
        install_signal(config.dump_signal);
    }
}

extern "C" fn dump_at_exit() {
    let mut out = Out::new(Sink::Stderr);
    print(&mut out, "dump at exit of");
}

fn install_signal(sig: c_int) {
    // SAFETY: an all-zero sigaction is valid; the handler is async-signal-safe (it only asks).
    let mut action: libc::sigaction = unsafe { core::mem::zeroed() };
    action.sa_sigaction = on_dump_signal as *const () as usize;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: the real sigaction (ours would take it for the program's) with a valid action.
    if unsafe { (crate::real::get().sigaction)(sig, &action, core::ptr::null_mut()) } != 0 {
        crate::log!(Warn, "cannot install the dump signal's handler ({sig})");
    }
}

/// Async-signal-safe: asks the oldest hub for a dump; with no hub (no green thread yet), says
/// so with one raw write.
extern "C" fn on_dump_signal(_sig: c_int) {
    let errno = crate::sys::errno();
    if !Hub::request_dump() {
        let line = b"greenworld: dump: no green threads yet\n";
        // SAFETY: a raw write of a constant: async-signal-safe.
        unsafe { crate::sys::syscall!(libc::SYS_write, 2, line.as_ptr(), line.len()) };
    }
    crate::sys::set_errno(errno);
}

/// The hub's [`crate::hub::Owners::dump`]: a dump to stderr, or to the channel's next reader.
pub fn on_request(hub: &Hub, from_channel: bool) {
    if from_channel {
        channel::serve(hub);
    } else {
        let mut out = Out::new(Sink::Stderr);
        print(&mut out, "dump of");
    }
}
