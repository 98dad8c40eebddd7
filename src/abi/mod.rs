//! The exported C surface: every `#[no_mangle]` symbol of the library, and nothing else. Each
//! shim forwards to its subsystem's op and acts on the [`Outcome`](crate::outcome::Outcome).
//! Each file declares its subsystem's hooks, one row each (see [`every_hook!`]). Unit-test
//! builds compile the rows (the real-function table and the registry are made of them) but
//! export nothing: the test binary would otherwise interpose libc for the test harness
//! (trap 15), so there the functions are unused.
#![cfg_attr(test, allow(dead_code))]

mod fileio;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod loader;
mod os;
mod resolver;
mod select;
mod socket;
mod stdio;
mod sync;
mod thread;
mod time;
#[cfg(test)]
mod twins_header;

/// Every hook, declared once: each abi file's `*_hooks!` macro holds that subsystem's rows,
/// and this hands all of them, concatenated, to `$consumer`, which makes of them what it
/// needs: `real` the table of real functions, `patch` the registry of hooked names. The file
/// itself makes its exports ([`shims`]). A row:
///
/// ```text
/// /// docs
/// Subsystem(flags) fn name(arg: CType, ...) -> CReturn => op;
/// ```
///
/// `Subsystem` names a [`crate::patch::Subsystem`]; `(flags)`, when there are any, is one of
/// `(optional)` (the real function may be missing from this glibc: see `real`),
/// `(version = "GLIBC_x")` (the real function at that symbol version), `(variadic)` (the
/// real function takes `...` after the arguments given). Without `=> op`, the export is
/// written by hand beside the rows (the compiler checks it has the row's signature, unless
/// variadic).
#[macro_export]
#[doc(hidden)]
macro_rules! every_hook {
    ($consumer:path) => {
        $crate::fileio_hooks!([
            $crate::os_hooks,
            $crate::resolver_hooks,
            $crate::select_hooks,
            $crate::socket_hooks,
            $crate::stdio_hooks,
            $crate::sync_hooks,
            $crate::thread_hooks,
            $crate::time_hooks,
            $consumer
        ] []);
    };
}

/// One link of [`every_hook!`]'s chain: `rows` added to those gathered so far, and on to the
/// next file's macro (the last link is the consumer, given `[] [every row]`).
macro_rules! next_hooks {
    ([$next:path $(, $rest:path)*] [$($gathered:tt)*] { $($rows:tt)* }) => {
        $next! { [$($rest),*] [$($gathered)* $($rows)*] }
    };
}
pub(crate) use next_hooks;

/// The consumer that makes a file's rows its exports: each `=> op` row a `#[no_mangle]`
/// function that acts on the op's [`Outcome`](crate::outcome::Outcome): its value, the real
/// function, or -1 with errno. A library linked on purpose and not yet asked to patch anything
/// is plain libc (see [`unengaged`]). Each also gets its green twin, `green_<name>`: the same op
/// for every caller, every subsystem active (README: "Green twins"). Unit-test builds keep the functions but not their C names
/// (the test binary would otherwise interpose libc for the test harness: trap 15).
macro_rules! shims {
    ([] [$($rows:tt)*]) => { $crate::abi::shims!(@rows false [$($rows)*]); };
    (@rows $plain_when_off:literal [$(
        $(#[$doc:meta])*
        $sub:ident $(($($flag:tt)*))? fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $(=> $op:expr)?;
    )*]) => {$(
        $crate::abi::shims!(@one $plain_when_off [$sub $($($flag)*)?] $(#[$doc])* fn $name($($arg: $ty),*) -> $ret $(=> $op)?);
    )*};
    // A row marked `(caller = NAME)` (at most four arguments) also hands its op the return
    // address of the call as NAME, a `usize` (0 where it is not known: a twin, or another
    // architecture): its export puts it in the fifth argument register (r8, x4) before the
    // jump through its route, so `act`, `slow` (which keeps the argument registers across
    // `pick`) and `shim` all get it as a fifth argument, and the real function ignores it.
    // Otherwise as the plain rows.
    (@one $plain_when_off:literal [$sub:ident caller = $caller:ident] $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty => $op:expr) => {
        const _: () = assert!([$(stringify!($arg)),*].len() <= 4, "the caller rides in the fifth register");
        $crate::abi::shims!(@routed $plain_when_off [$sub] [$caller: usize] $(#[$doc])* fn $name($($arg: $ty),*) -> $ret => $op);
    };
    // A row marked `(plain_fd)` (its first argument a descriptor, its op the plain libc call
    // and nothing else on a descriptor `plain_fds` marks): while descriptors may be marked,
    // its route is its `plain_router`, which jumps to the real function (through its
    // `PLAIN_FD`) when the descriptor's byte is set, else to `act`.
    (@one $plain_when_off:literal [$sub:ident plain_fd] $(#[$doc:meta])* fn $name:ident($fd:ident: $fd_ty:ty $(, $arg:ident: $ty:ty)*) -> $ret:ty => $op:expr) => {
        // The router reads the descriptor as the first argument register's low 32 bits.
        const _: fn($fd_ty) -> libc::c_int = |fd| fd;
        $crate::abi::shims!(@routed $plain_when_off [$sub] [] [PLAIN_FD] $(#[$doc])* fn $name($fd: $fd_ty $(, $arg: $ty)*) -> $ret => $op);
    };
    (@one $plain_when_off:literal [$sub:ident $($flag:tt)*] $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty => $op:expr) => {
        $crate::abi::shims!(@routed $plain_when_off [$sub] [] $(#[$doc])* fn $name($($arg: $ty),*) -> $ret => $op);
    };
    (@routed $plain_when_off:literal [$sub:ident] [$($caller:ident: $caller_ty:ty)?] $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty => $op:expr) => {
        $crate::abi::shims!(@routed $plain_when_off [$sub] [$($caller: $caller_ty)?] [] $(#[$doc])* fn $name($($arg: $ty),*) -> $ret => $op);
    };
    (@routed $plain_when_off:literal [$sub:ident] [$($caller:ident: $caller_ty:ty)?] [$($plain:ident)?] $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty => $op:expr) => {
        // The export is a router (see `route!`): one jump through `ROUTE`, to `act`, to the
        // real function, or to `slow`, which asks `pick` (scoped: the shim or the real
        // function, as the caller's object says). In a block: the Rust names are nobody's
        // business, the C one is the row's.
        const _: () = {
            $(#[$doc])*
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            #[cfg_attr(not(test), unsafe(export_name = stringify!($name)))]
            #[unsafe(naked)]
            unsafe extern "C" fn export($($arg: $ty),*) -> $ret {
                $crate::abi::route!(ROUTE, reroute $(, fifth = $caller)?)
            }
            $(
                /// Where [`plain_router`] sends a descriptor `plain_fds` marks: [`slow`] (always
                /// right) until [`reroute`] first points the route at the router, then the
                /// real function.
                #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
                static $plain: core::sync::atomic::AtomicPtr<()> =
                    core::sync::atomic::AtomicPtr::new(slow as *mut ());
                /// The route while descriptors may be marked (see `route_plain_fd!`); it
                /// takes and returns what the export does (naked: the types are not Rust's
                /// business).
                #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
                #[unsafe(naked)]
                unsafe extern "C" fn plain_router() {
                    $crate::abi::route_plain_fd!($plain, act)
                }
            )?
            /// Where the export jumps: [`slow`] until the first decision, and while patching
            /// is scoped; then [`act`] or the real function (see [`reroute`]).
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            static ROUTE: core::sync::atomic::AtomicPtr<()> =
                core::sync::atomic::AtomicPtr::new(slow as *mut ());
            /// The export's way through [`pick`] (see `route_slow!`).
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            #[unsafe(naked)]
            unsafe extern "C" fn slow($($arg: $ty),* $(, $caller: $caller_ty)?) -> $ret {
                $crate::abi::route_slow!(pick)
            }
            /// Points [`ROUTE`] where the patching state `bits` sends this row's calls (see
            /// `abi::route_for`); called under the routes' lock only.
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            extern "C" fn reroute(bits: u8) {
                let act: unsafe extern "C" fn($($ty),* $(, $caller_ty)?) -> $ret = act;
                let slow: unsafe extern "C" fn($($ty),* $(, $caller_ty)?) -> $ret = slow;
                let to = $crate::abi::route_for(
                    bits,
                    $crate::patch::Subsystem::$sub,
                    $plain_when_off,
                    act as usize,
                    slow as usize,
                    || $crate::real::get().$name as usize,
                );
                // Descriptors are marked only while the op runs for every caller, and no
                // green thread was made. Told first what to call when one is: the first green
                // thread either finds that (and points the routes anew, after this writer), or
                // was made before the look (then the route is `act`).
                $(let to = if to == act as usize
                    && $crate::plain_fds::on_green_made($crate::abi::reroute_all)
                {
                    $plain.store($crate::real::get().$name as *mut (), core::sync::atomic::Ordering::Release);
                    plain_router as *const () as usize
                } else {
                    to
                };)?
                ROUTE.store(to as *mut (), core::sync::atomic::Ordering::Release);
            }
            // Routers are written for x86-64 and aarch64: elsewhere the export is the shim,
            // and patching cannot be scoped (`scope::add` refuses).
            $(#[$doc])*
            #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
            #[cfg_attr(not(test), unsafe(export_name = stringify!($name)))]
            unsafe extern "C" fn export($($arg: $ty),*) -> $ret {
                // SAFETY: the caller's arguments.
                unsafe { shim($($arg),* $(, 0 as $caller_ty)?) }
            }
            /// The engaged library's work for every caller it serves.
            unsafe extern "C" fn act($($arg: $ty),* $(, $caller: $caller_ty)?) -> $ret {
                $crate::abi::shims!(@act $name($($arg),*) -> $ret => $op)
            }
            /// The slow way in (see `route!`): the first decision, or a library linked on
            /// purpose and not engaged (plain libc), or a scoped caller [`pick`] let in.
            unsafe extern "C" fn shim($($arg: $ty),* $(, $caller: $caller_ty)?) -> $ret {
                if $crate::abi::unengaged() {
                    // SAFETY: the caller's arguments, to the real function.
                    return unsafe { ($crate::real::get().$name)($($arg),*) };
                }
                // SAFETY: the caller's arguments.
                unsafe { act($($arg),* $(, $caller)?) }
            }
            /// Where a call the fast way does not take goes: the shim, unless patching is
            /// scoped and its caller's object is not green for the row's subsystem (then the
            /// real function, nothing else).
            #[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
            extern "C" fn pick(return_address: usize) -> usize {
                let to = if $crate::patch::routes_to_shim(return_address, $crate::patch::Subsystem::$sub) {
                    let to: unsafe extern "C" fn($($ty),* $(, $caller_ty)?) -> $ret = shim;
                    to as usize
                } else {
                    $crate::real::get().$name as usize
                };
                // Decided now (the first call, unless scoped): the next call jumps straight.
                #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
                $crate::abi::settle(reroute);
                to
            }
        };
        // Its green twin, `green_<name>`: the same op, green whatever is patched (see
        // `patch::Twin`), in a library linked on purpose too. In a block: the Rust name is
        // nobody's business, the C one is made with `concat!`.
        const _: () = {
            #[cfg_attr(not(test), unsafe(export_name = concat!("green_", stringify!($name))))]
            unsafe extern "C" fn twin($($arg: $ty),*) -> $ret {
                let _twin = $crate::patch::Twin::enter();
                $(let $caller: $caller_ty = 0;)?
                $crate::abi::shims!(@act $name($($arg),*) -> $ret => $op)
            }
        };
    };
    // What an export does with its op's `Outcome`: its value, the real function, or -1 (the
    // type's failure value) with errno.
    (@act $name:ident($($arg:ident),*) -> $ret:ty => $op:expr) => {
        // SAFETY: the caller upholds libc's contract for this function; the op and the real
        // function rely on nothing more.
        #[allow(unused_unsafe)]
        match unsafe { $op } {
            $crate::outcome::Outcome::Done(value) => value,
            // SAFETY: as above, with the caller's own arguments.
            $crate::outcome::Outcome::Bypass => unsafe { ($crate::real::get().$name)($($arg),*) },
            $crate::outcome::Outcome::Errno(code) => {
                $crate::sys::set_errno(code);
                <$ret as $crate::outcome::Failure>::FAILED
            }
        }
    };
    // Written by hand: a variadic C function has no Rust signature to check against.
    (@one $plain_when_off:literal [$sub:ident variadic $($flag:tt)*] $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty) => {};
    (@one $plain_when_off:literal [$sub:ident $($flag:tt)*] $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        const _: unsafe extern "C" fn($($ty),*) -> $ret = $name;
    };
}
pub(crate) use shims;

/// [`shims`] for a file whose every op is the real function and nothing else while its
/// subsystem is off (not in a green twin): with that subsystem off for every caller, the
/// exports jump straight to libc (see [`route!`]).
macro_rules! shims_plain_when_off {
    ([] [$($rows:tt)*]) => { $crate::abi::shims!(@rows true [$($rows)*]); };
}
pub(crate) use shims_plain_when_off;

/// The body of a naked export: one jump through the row's `$route` (a pointer the export
/// loads, relaxed, as the shims made before routing loaded the patching state): to its `act`
/// when the library is engaged, decided and not scoped; to the real function when the call is
/// plain libc for every caller (linked and not engaged, or, for a row whose op is nothing but
/// the real function while its subsystem is off, that subsystem off: see [`route_for`]); else
/// to its `slow` way ([`route_slow!`]). The row's `$reroute`, which points `$route` anew, goes
/// into the table of routes ([`reroute_all`]) as an offset from the entry (no relocation for
/// the loader).
#[cfg(target_arch = "x86_64")]
macro_rules! route {
    // `fifth = NAME` (a `caller =` row): the caller's return address put in the fifth
    // argument register, r8, first.
    ($route:ident, $reroute:ident $(, fifth = $caller:ident)?) => {
        core::arch::naked_asm!(
            $($crate::abi::route!(@fifth $caller),)?
            "jmp qword ptr [rip + {route}]",
            ".pushsection gw_routes,\"aR\"",
            ".balign 4",
            ".long {reroute} - .",
            ".popsection",
            route = sym $route,
            reroute = sym $reroute,
        )
    };
    (@fifth $caller:ident) => {
        "mov r8, [rsp]"
    };
}
#[cfg(target_arch = "x86_64")]
pub(crate) use route;

/// The body of a `plain_fd` row's router, its route while descriptors may be marked (see
/// `crate::plain_fds`): a descriptor (the first argument) whose byte is set goes where `$plain`
/// points (the real function), any other to `$act`. Six instructions before the jump; a
/// negative descriptor is above the limit, unsigned; eax and r11 are the call's scratch.
#[cfg(target_arch = "x86_64")]
macro_rules! route_plain_fd {
    ($plain:ident, $act:ident) => {
        core::arch::naked_asm!(
            "cmp edi, {limit}",
            "jae 2f",
            "mov eax, edi",
            "lea r11, [rip + {routes}]",
            "test byte ptr [r11 + rax], 1",
            "jz 2f",
            "jmp qword ptr [rip + {plain}]",
            "2:",
            "jmp {act}",
            plain = sym $plain,
            act = sym $act,
            routes = sym $crate::plain_fds::ROUTES,
            limit = const $crate::plain_fds::PLAIN_FDS,
        )
    };
}
#[cfg(target_arch = "x86_64")]
pub(crate) use route_plain_fd;

/// The slow way of an export (see [`route!`]): `$pick` is asked, with the return address the
/// caller pushed (read here, before anything moves the stack), where to jump: the shim or the
/// real function. The argument registers are kept across the question (and `rax`, for the
/// alignment); no routed function takes floating-point or variadic arguments, and those past
/// the sixth, on the stack, stay where the caller put them: the jump leaves the caller's frame
/// as it found it.
#[cfg(target_arch = "x86_64")]
macro_rules! route_slow {
    ($pick:ident) => {
        core::arch::naked_asm!(
            // Entry: rsp = 8 mod 16; seven pushes make the call's 16-byte alignment.
            "push rdi",
            "push rsi",
            "push rdx",
            "push rcx",
            "push r8",
            "push r9",
            "push rax",
            "mov rdi, [rsp + 56]",
            "call {pick}",
            "mov r11, rax",
            "pop rax",
            "pop r9",
            "pop r8",
            "pop rcx",
            "pop rdx",
            "pop rsi",
            "pop rdi",
            "jmp r11",
            pick = sym $pick,
        )
    };
}
#[cfg(target_arch = "x86_64")]
pub(crate) use route_slow;

/// [`route!`] for aarch64: the same jump through `$route`, by x16 (the register PLT stubs use,
/// and a `bti c` landing pad accepts).
#[cfg(target_arch = "aarch64")]
macro_rules! route {
    // `fifth = NAME`: the caller's return address (the link register) put in x4 first.
    ($route:ident, $reroute:ident $(, fifth = $caller:ident)?) => {
        core::arch::naked_asm!(
            $($crate::abi::route!(@fifth $caller),)?
            "adrp x16, {route}",
            "ldr x16, [x16, :lo12:{route}]",
            "br x16",
            ".pushsection gw_routes,\"aR\"",
            ".balign 4",
            ".word {reroute} - .",
            ".popsection",
            route = sym $route,
            reroute = sym $reroute,
        )
    };
    (@fifth $caller:ident) => {
        "mov x4, x30"
    };
}
#[cfg(target_arch = "aarch64")]
pub(crate) use route;

/// [`route_plain_fd!`] for aarch64: the descriptor in w0; x16 and x17 are the call's scratch
/// (the PLT's own), the jumps by x16 (as `route!`'s).
#[cfg(target_arch = "aarch64")]
macro_rules! route_plain_fd {
    ($plain:ident, $act:ident) => {
        core::arch::naked_asm!(
            "mov w17, #{limit}",
            "cmp w0, w17",
            "b.hs 2f",
            "adrp x16, {routes}",
            "add x16, x16, :lo12:{routes}",
            "ldrb w17, [x16, w0, uxtw]",
            "tbz w17, #0, 2f",
            "adrp x16, {plain}",
            "ldr x16, [x16, :lo12:{plain}]",
            "br x16",
            "2:",
            "b {act}",
            plain = sym $plain,
            act = sym $act,
            routes = sym $crate::plain_fds::ROUTES,
            limit = const $crate::plain_fds::PLAIN_FDS,
        )
    };
}
#[cfg(target_arch = "aarch64")]
pub(crate) use route_plain_fd;

/// [`route_slow!`] for aarch64: `$pick` is asked with the return address, which is the link
/// register at entry (the caller's `bl`, or its `blr` through the PLT stub, which branches
/// without linking; the export's `br` kept it), and the argument registers x0–x7 and x8 (the
/// indirect result) are kept in a frame of our own meanwhile, torn down before the jump through
/// x16: the caller's frame and arguments on the stack are as it left them.
#[cfg(target_arch = "aarch64")]
macro_rules! route_slow {
    ($pick:ident) => {
        core::arch::naked_asm!(
            "stp x29, x30, [sp, #-96]!",
            "mov x29, sp",
            "stp x0, x1, [sp, #16]",
            "stp x2, x3, [sp, #32]",
            "stp x4, x5, [sp, #48]",
            "stp x6, x7, [sp, #64]",
            "str x8, [sp, #80]",
            "mov x0, x30",
            "bl {pick}",
            "mov x16, x0",
            "ldp x0, x1, [sp, #16]",
            "ldp x2, x3, [sp, #32]",
            "ldp x4, x5, [sp, #48]",
            "ldp x6, x7, [sp, #64]",
            "ldr x8, [sp, #80]",
            "ldp x29, x30, [sp], #96",
            "br x16",
            pick = sym $pick,
        )
    };
}
#[cfg(target_arch = "aarch64")]
pub(crate) use route_slow;

/// Where a routed row's calls go in the patching state `bits` (see [`route!`]): `act`, the
/// real function (`real`, asked only then), or `slow`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) fn route_for(
    bits: u8,
    sub: crate::patch::Subsystem,
    plain_when_off: bool,
    act: usize,
    slow: usize,
    real: impl FnOnce() -> usize,
) -> usize {
    match crate::patch::route(bits, sub, plain_when_off) {
        crate::patch::Route::Act => act,
        crate::patch::Route::Real => real(),
        crate::patch::Route::Slow => slow,
    }
}

// The table of routes: one entry per routed export, the offset of its `reroute` from the entry
// (see `route!`), after a zero that makes the section exist whatever is compiled in.
#[cfg(all(target_arch = "x86_64", not(test)))]
core::arch::global_asm!(
    ".pushsection gw_routes,\"aR\"",
    ".balign 4",
    ".long 0",
    ".popsection"
);
#[cfg(all(target_arch = "aarch64", not(test)))]
core::arch::global_asm!(
    ".pushsection gw_routes,\"aR\"",
    ".balign 4",
    ".word 0",
    ".popsection"
);

#[cfg(all(any(target_arch = "x86_64", target_arch = "aarch64"), not(test)))]
unsafe extern "C" {
    // The linker's bounds of the table.
    static __start_gw_routes: [i32; 0];
    static __stop_gw_routes: [i32; 0];
}

/// Every routed export pointed where the patching state sends it now: after anything that
/// changes the state (`monkey_patch`, `import_patched`). Each writer reads the state under the
/// lock, so the last one to write saw the newest: a call that raced with the change went where
/// the state said an instant earlier, as it could have before.
pub(crate) fn reroute_all() {
    let _lock = crate::patch::RoutesLock::take();
    #[cfg(all(any(target_arch = "x86_64", target_arch = "aarch64"), not(test)))]
    {
        let bits = crate::patch::state();
        // The linker's bounds of one section of 4-byte entries.
        let start = (&raw const __start_gw_routes).cast::<i32>();
        let stop = (&raw const __stop_gw_routes).cast::<i32>();
        let mut entry = start;
        while entry < stop {
            // SAFETY: inside the table.
            let offset = unsafe { entry.read() };
            if offset != 0 {
                let at = (entry as usize).wrapping_add_signed(offset as isize);
                // SAFETY: `route!` wrote the offset of a row's `reroute`, of this type.
                let reroute = unsafe { core::mem::transmute::<usize, extern "C" fn(u8)>(at) };
                reroute(bits);
            }
            // SAFETY: the next entry, or the end.
            entry = unsafe { entry.add(1) };
        }
    }
    // A descriptor plain in the old state may not be in the new one (a pipe once `os` is
    // patched; any, once scoped).
    crate::plain_fds::withdraw_all();
}

/// A row's first call after the decision points its route (`reroute`) where the state sends
/// it, unless another writer holds the lock (it will have its say, or the next call will).
/// While patching is scoped, or undecided, there is nothing to settle: the route stays slow.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline]
pub(crate) fn settle(reroute: extern "C" fn(u8)) {
    if crate::patch::settled(crate::patch::state())
        && let Some(_lock) = crate::patch::RoutesLock::try_take()
    {
        reroute(crate::patch::state());
    }
}

/// The hooks exported by hand (rows without `=> op`) that have a green twin, written beside
/// them; every row with an op has its twin made with its export (see [`shims`]). Read by the
/// tests that make and check `greenworld.h`'s twins (`twins_header`).
#[cfg(test)]
const HAND_TWINS: &[&str] = &[
    "closefrom",
    "pause",
    "fcntl",
    "fcntl64",
    "ioctl",
    "open",
    "open64",
    "openat",
    "openat64",
    "pthread_exit",
    "thrd_exit",
    "thrd_yield",
    "call_once",
];

/// The hooks with no green twin, and why: `greenworld.h` lists them with these words.
#[cfg(test)]
const NO_TWIN: &[(&str, &str)] = &[
    ("sigaction", SIGNAL_STATE),
    ("signal", SIGNAL_STATE),
    ("bsd_signal", SIGNAL_STATE),
    ("sysv_signal", SIGNAL_STATE),
    ("__sysv_signal", SIGNAL_STATE),
    ("sigset", SIGNAL_STATE),
    ("siginterrupt", SIGNAL_STATE),
    (
        "syscall",
        "a raw system call never waits green (the hook only keeps the fd table true about the \
         calls that make or close descriptors); call the function's twin instead",
    ),
];

#[cfg(test)]
const SIGNAL_STATE: &str = "a handler is the whole process's, not one call's: handlers run \
     through the library once greenworld_monkey_patch() (or the preload) engaged it, for every \
     caller alike";

/// True in a program that linked the library and has not called `greenworld_monkey_patch`:
/// every hook then calls the real function and nothing else, not even bookkeeping (eventlet:
/// importing a library must not change how the program behaves). The fd table needs none of
/// what it misses: it learns a descriptor lazily (kind, flags) on first green use.
#[inline]
pub(crate) fn unengaged() -> bool {
    !crate::patch::engaged()
}

/// An op of a call that could have blocked: its entry is a safe point, where the running
/// thread yields when its time slice is spent or it woke `main` (see `hub::slice`).
macro_rules! safe_point {
    // `hub => op`: the op is handed the hub the safe point looked up (see `Hub::safe_point`).
    ($hub:ident => $op:expr) => {{
        let $hub = $crate::hub::Hub::safe_point();
        $op
    }};
    ($op:expr) => {{
        $crate::hub::Hub::safe_point();
        $op
    }};
}
pub(crate) use safe_point;

/// eventlet's `is_monkey_patched`: 1 or 0 for a subsystem ("socket") or a hooked function
/// ("nanosleep") name, -1 for a name the library does not know (or NULL).
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
///
/// Scoped, the answer is for the caller's object: its return address, which the export reads
/// before anything moves the stack and hands on as a second argument.
#[cfg(target_arch = "x86_64")]
#[cfg_attr(not(test), unsafe(no_mangle))]
#[unsafe(naked)]
pub unsafe extern "C" fn greenworld_is_monkey_patched(name: *const libc::c_char) -> libc::c_int {
    core::arch::naked_asm!("mov rsi, [rsp]", "jmp {answer}", answer = sym is_monkey_patched_for)
}

/// As on x86-64, the caller's return address being the link register at entry.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[cfg(target_arch = "aarch64")]
#[cfg_attr(not(test), unsafe(no_mangle))]
#[unsafe(naked)]
pub unsafe extern "C" fn greenworld_is_monkey_patched(name: *const libc::c_char) -> libc::c_int {
    core::arch::naked_asm!("mov x1, x30", "b {answer}", answer = sym is_monkey_patched_for)
}

/// As on x86-64; patching is never scoped elsewhere, so the caller does not matter.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn greenworld_is_monkey_patched(name: *const libc::c_char) -> libc::c_int {
    // SAFETY: as the caller promises.
    unsafe { is_monkey_patched_for(name, 0) }
}

/// [`greenworld_is_monkey_patched`]'s answer for a caller returning to `return_address`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
unsafe extern "C" fn is_monkey_patched_for(
    name: *const libc::c_char,
    return_address: usize,
) -> libc::c_int {
    if name.is_null() {
        return -1;
    }
    // SAFETY: NUL-terminated (caller).
    let name = unsafe { core::ffi::CStr::from_ptr(name) };
    let answer = |name: &str| crate::patch::is_patched(name, return_address);
    match name.to_str().ok().and_then(answer) {
        Some(true) => 1,
        Some(false) => 0,
        None => -1,
    }
}

/// eventlet's `monkey_patch`: the subsystems `GW_*` flags name (0: all) green for the whole
/// process from now on, on top of what already is, and with `GW_PSYCOPG` libpq's calls green
/// for every subsystem (`import_patched("libpq.so.5")`); 0, or EINVAL for an unknown bit,
/// ENOSYS when the program's calls do not reach the library (`dlopen`ed: see
/// `loaded::interposes`) or, for `GW_PSYCOPG`, when a caller's object cannot be told (as
/// `greenworld_import_patched`); nothing changes on an error. Idempotent, from any thread;
/// threads that already exist stay what they are.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn greenworld_monkey_patch(subsystems: libc::c_uint) -> libc::c_int {
    match crate::patch::from_flags(subsystems) {
        Ok(_) if !crate::loaded::interposes() => libc::ENOSYS,
        Ok(flags) => match crate::patch::monkey_patch_flags(flags) {
            Ok(engaged_now) => {
                reroute_all();
                if engaged_now {
                    crate::signal::adopt_installed();
                }
                0
            }
            Err(code) => code,
        },
        Err(code) => code,
    }
}

/// eventlet's `import_patched`: the subsystems `GW_*` flags name (0: all) green from now on
/// for the calls made from the shared object `library` (a soname such as "libcurl.so.4", a
/// file name, or a path with a '/'), loaded now or later; every other caller keeps what it
/// has. 0, or EINVAL (NULL, a bad name, an unknown bit, `GW_PSYCOPG`: a library, not a
/// subsystem), ENOSPC (16 objects named already), ENOSYS (the program's calls do not reach the
/// library, or glibc older than 2.35 cannot tell a caller's object). Idempotent, from any
/// thread.
///
/// # Safety
/// `library` is NULL or a NUL-terminated string.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn greenworld_import_patched(
    library: *const libc::c_char,
    subsystems: libc::c_uint,
) -> libc::c_int {
    if library.is_null() {
        return libc::EINVAL;
    }
    // SAFETY: NUL-terminated (caller).
    let library = unsafe { core::ffi::CStr::from_ptr(library) }.to_bytes();
    match crate::patch::from_flags(subsystems) {
        Ok(flags) if flags.psycopg => libc::EINVAL,
        Ok(_) if !crate::loaded::interposes() => libc::ENOSYS,
        Ok(flags) => match crate::patch::import_patched(library, flags.subs) {
            Ok(engaged_now) => {
                reroute_all();
                if engaged_now {
                    crate::signal::adopt_installed();
                }
                0
            }
            Err(code) => code,
        },
        Err(code) => code,
    }
}

/// The library's constructor. Early callers reach the same state lazily (trap 3).
#[cfg(not(test))]
extern "C" fn constructor() {
    crate::runtime::init();
}

#[cfg(not(test))]
#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn() = constructor;
