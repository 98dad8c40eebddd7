//! The green twins' section of `include/greenworld.h`, made from the hook rows (a consumer of
//! [`every_hook!`](crate::every_hook)), and the tests that keep the header, the rows and the
//! built library's exports the same: `make header` writes the section
//! (`GREENWORLD_WRITE_HEADER=1`), every other run compares it and fails on a difference.

use super::{HAND_TWINS, NO_TWIN};
use std::collections::BTreeSet;
use std::fmt::Write;

/// A hook row, as text.
pub struct Row {
    name: &'static str,
    subsystem: &'static str,
    flags: &'static str,
    args: &'static [(&'static str, &'static str)],
    ret: &'static str,
    has_op: bool,
}

macro_rules! rows {
    ([] [$(
        $(#[$doc:meta])*
        $sub:ident $(($($flag:tt)*))? fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $(=> $op:expr)?;
    )*]) => {
        pub const ROWS: &[Row] = &[$(Row {
            name: stringify!($name),
            subsystem: stringify!($sub),
            flags: stringify!($($($flag)*)?),
            args: &[$((stringify!($arg), stringify!($ty))),*],
            ret: stringify!($ret),
            has_op: rows!(@op $($op)?),
        },)*];
    };
    (@op) => { false };
    (@op $op:expr) => { true };
}
pub(crate) use rows;

crate::every_hook!(crate::abi::twins_header::rows);

const BEGIN: &str = "/* ---- green twins: made by `make header` from the hook rows (src/abi/); do not \
                     edit ---- */\n";
const END: &str = "/* ---- end of the green twins ---- */\n";

/// The rows that have a twin: every row with an op, and the hand-written ones in `HAND_TWINS`.
fn twins() -> Vec<&'static Row> {
    ROWS.iter()
        .filter(|r| r.has_op || HAND_TWINS.contains(&r.name))
        .collect()
}

/// C11's names for the pthread types its functions take (the rows use glibc's layout).
fn is_c11(name: &str) -> bool {
    ["thrd_", "mtx_", "cnd_"]
        .iter()
        .any(|p| name.starts_with(p))
        || name == "call_once"
}

/// The C declarator of a Rust type: `{}` stands for the parameter's (or function's) name.
fn c_declarator(function: &str, rust: &str) -> String {
    // `stringify!` spaces the tokens: `* mut libc :: c_void`.
    let rust = rust
        .replace("libc :: ", "")
        .replace("libc::", "")
        .replace("* mut", "*mut")
        .replace("* const", "*const");
    let rust = rust.trim();
    let mut rest = rust;
    let mut stars = Vec::new();
    loop {
        if let Some(r) = rest.strip_prefix("*mut ") {
            stars.push(false);
            rest = r.trim_start();
        } else if let Some(r) = rest.strip_prefix("*const ") {
            stars.push(true);
            rest = r.trim_start();
        } else {
            break;
        }
    }
    let fnptr = |text: &str| {
        assert!(
            stars.is_empty(),
            "{function}: a pointer to a function pointer"
        );
        text.to_owned()
    };
    let base = match rest {
        "c_int" => "int",
        "c_uint" => "unsigned int",
        "c_long" => "long",
        "c_ulong" => "unsigned long",
        "c_char" => "char",
        "c_void" | "()" => "void",
        "!" => "void",
        "off64_t" => "__off64_t",
        "useconds_t" => "__useconds_t",
        "size_t" | "ssize_t" | "off_t" | "mode_t" | "pid_t" | "id_t" | "idtype_t" | "clockid_t"
        | "socklen_t" | "nfds_t" | "sigset_t" | "siginfo_t" | "FILE" | "fd_set"
        | "pthread_attr_t" | "pthread_rwlock_t" | "pthread_barrier_t" | "pthread_key_t"
        | "sem_t" | "cpu_set_t" => rest,
        "pthread_t" if is_c11(function) => "thrd_t",
        "pthread_mutex_t" if is_c11(function) => "mtx_t",
        "pthread_cond_t" if is_c11(function) => "cnd_t",
        "pthread_once_t" if is_c11(function) => "once_flag",
        "pthread_t" | "pthread_mutex_t" | "pthread_cond_t" | "pthread_once_t" => rest,
        "timespec" | "timeval" | "rusage" | "iovec" | "sockaddr" | "msghdr" | "mmsghdr"
        | "pollfd" | "epoll_event" | "addrinfo" | "hostent" | "sched_param" => {
            return pointers(&format!("struct {rest}"), &stars);
        }
        "sigval" => "union sigval",
        "StartRoutine" => return fnptr("void *(*{})(void *)"),
        "C11Start" => return fnptr("thrd_start_t {}"),
        "OnceRoutine" => return fnptr("void (*{})(void)"),
        "Option<KeyDestructor>" | "Option < KeyDestructor >" => {
            return fnptr("void (*{})(void *)");
        }
        other => panic!("{function}: no C spelling for the Rust type `{other}`: add it here"),
    };
    pointers(base, &stars)
}

/// `base` behind `stars` pointers (outermost first; true: to const).
fn pointers(base: &str, stars: &[bool]) -> String {
    let mut text = String::new();
    // Only the innermost pointer may point to const (the rows have no other).
    if let Some((&innermost, outer)) = stars.split_last() {
        assert!(!outer.contains(&true), "{base}: const behind a pointer");
        if innermost {
            text.push_str("const ");
        }
    }
    text.push_str(base);
    text.push(' ');
    text.push_str(&"*".repeat(stars.len()));
    text.push_str("{}");
    text
}

/// `green_<name>`'s declaration.
fn declaration(row: &Row) -> String {
    let name = format!("green_{}", row.name);
    let mut params: Vec<String> = row
        .args
        .iter()
        .map(|(arg, ty)| {
            // A C++ keyword is no parameter name there.
            let arg = if *arg == "new" { "new_fd" } else { arg };
            c_declarator(row.name, ty).replace("{}", arg)
        })
        .collect();
    if row.flags.contains("variadic") {
        params.push("...".to_owned());
    }
    let params = if params.is_empty() {
        "void".to_owned()
    } else {
        params.join(", ")
    };
    let head = c_declarator(row.name, row.ret).replace("{}", &format!("{name}({params})"));
    let noreturn = if row.ret.trim() == "!" {
        "__attribute__((__noreturn__)) "
    } else {
        ""
    };
    format!("{noreturn}{head};\n")
}

/// Wraps `text` at 100 columns, each line `/* ` or ` * ` led.
fn comment(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("/*");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 97 {
            out.push_str(&line);
            out.push('\n');
            line = String::from(" *");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push_str(" */\n");
    out
}

/// The section between [`BEGIN`] and [`END`], both included.
pub fn section() -> String {
    let mut out = String::from(BEGIN);
    out.push_str(&comment(
        "Every hooked function's green twin: the same signature, results and errno, green \
         whatever is patched (README.md, \"C API\").",
    ));
    out.push_str(
        "#include <sys/types.h>\n#include <pthread.h>\n#include <semaphore.h>\n\
         #include <signal.h>\n#include <stdio.h>\n#include <sys/socket.h>\n#include <poll.h>\n\
         #include <sys/select.h>\n#include <sys/wait.h>\n#include <sched.h>\n",
    );
    let mut structs = BTreeSet::new();
    for row in twins() {
        for ty in row.args.iter().map(|(_, t)| *t).chain([row.ret]) {
            let decl = c_declarator(row.name, ty);
            if let Some(rest) = decl
                .strip_prefix("const ")
                .unwrap_or(&decl)
                .strip_prefix("struct ")
            {
                structs.insert(rest.split(' ').next().unwrap().to_owned());
            }
        }
    }
    out.push_str("\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    for name in &structs {
        let _ = writeln!(out, "struct {name};");
    }
    let gnu_only = |decl: &str| decl.contains("cpu_set_t");
    let mut subsystems: Vec<&str> = Vec::new();
    for row in ROWS {
        if !subsystems.contains(&row.subsystem) {
            subsystems.push(row.subsystem);
        }
    }
    for subsystem in subsystems {
        let of = |row: &&&Row| row.subsystem == subsystem && !is_c11(row.name);
        let rows: Vec<&Row> = twins().into_iter().filter(|r| of(&r)).collect();
        let plain: Vec<String> = rows
            .iter()
            .filter(|r| !r.name.starts_with("__"))
            .map(|r| declaration(r))
            .collect();
        let _ = write!(out, "\n/* {} */\n", subsystem.to_lowercase());
        for decl in plain.iter().filter(|d| !gnu_only(d)) {
            out.push_str(decl);
        }
        let gnu: Vec<&String> = plain.iter().filter(|d| gnu_only(d)).collect();
        if !gnu.is_empty() {
            out.push_str("#ifdef _GNU_SOURCE /* cpu_set_t */\n");
            for decl in gnu {
                out.push_str(decl);
            }
            out.push_str("#endif\n");
        }
        let internal: Vec<String> = rows
            .iter()
            .filter(|r| r.name.starts_with("__"))
            .map(|r| declaration(r))
            .collect();
        if !internal.is_empty() {
            out.push_str(
                "/* glibc's internal entry points (what _FORTIFY_SOURCE and stdio's macros \
                 compile to) */\n",
            );
            for decl in internal {
                out.push_str(&decl);
            }
        }
    }
    out.push_str(
        "\n/* C11 threads (thread subsystem) */\n\
         #if !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L\n\
         #include <threads.h>\n",
    );
    for row in twins().into_iter().filter(|r| is_c11(r.name)) {
        out.push_str(&declaration(row));
    }
    out.push_str("#endif\n\n#ifdef __cplusplus\n}\n#endif\n\n");
    let mut reasons: Vec<&str> = NO_TWIN.iter().map(|(_, why)| *why).collect();
    reasons.dedup();
    for why in reasons {
        let names: Vec<&str> = NO_TWIN
            .iter()
            .filter(|(_, w)| *w == why)
            .map(|(n, _)| *n)
            .collect();
        out.push_str(&comment(&format!(
            "No twin for {}: {why}.",
            names.join(", ")
        )));
    }
    out.push_str(END);
    out
}

const HEADER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/include/greenworld.h");

/// The header's twins section, as it is in the file.
fn checked_in() -> (String, std::ops::Range<usize>) {
    let header = std::fs::read_to_string(HEADER).expect("include/greenworld.h");
    let start = header
        .find(BEGIN)
        .expect("greenworld.h has no twins section");
    let end = header[start..]
        .find(END)
        .expect("greenworld.h: the twins section never ends")
        + start
        + END.len();
    (header, start..end)
}

#[test]
fn the_header_declares_every_twin() {
    let made = section();
    let (header, range) = checked_in();
    if std::env::var_os("GREENWORLD_WRITE_HEADER").is_some() {
        let mut new = header.clone();
        new.replace_range(range, &made);
        std::fs::write(HEADER, new).expect("write include/greenworld.h");
        return;
    }
    assert!(
        header[range] == made,
        "include/greenworld.h's green twins differ from the hook rows: run `make header` and \
         commit the header"
    );
}

#[test]
fn every_hand_written_hook_has_a_twin_or_a_reason() {
    let names: Vec<&str> = ROWS.iter().map(|r| r.name).collect();
    for name in HAND_TWINS.iter().chain(NO_TWIN.iter().map(|(n, _)| n)) {
        assert!(names.contains(name), "{name} is no hook row");
    }
    for row in ROWS {
        let hand = HAND_TWINS.contains(&row.name);
        let none = NO_TWIN.iter().any(|(n, _)| *n == row.name);
        if row.has_op {
            assert!(
                !hand && !none,
                "{}: made with its op, listed as hand-written",
                row.name
            );
        } else {
            assert!(
                hand != none,
                "{}: written by hand: a twin or a reason, one of them",
                row.name
            );
        }
    }
}

/// The built library's dynamic `green_*` exports are the twins, both ways.
#[test]
fn every_twin_is_exported() {
    let functions = crate::patch::tests::built_library_functions();
    let exported: BTreeSet<&str> = functions
        .iter()
        .filter_map(|name| name.strip_prefix("green_"))
        .collect();
    let twins: BTreeSet<&str> = twins().iter().map(|r| r.name).collect();
    let missing: Vec<&&str> = twins.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "twins not exported (green_ +): {missing:?}"
    );
    let strays: Vec<&&str> = exported.difference(&twins).collect();
    assert!(
        strays.is_empty(),
        "green_ exports that are no hook's twin: {strays:?}"
    );
}

/// Compiles `source` with `compiler` and `flags`; panics with its errors.
fn compiles(compiler: &str, flags: &[&str], suffix: &str, source: &str) {
    let dir = std::env::temp_dir().join(format!("gw-twins-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!(
        "check-{}{suffix}",
        flags.join("").replace(['-', '=', '/'], "")
    ));
    std::fs::write(&file, source).unwrap();
    let include = concat!(env!("CARGO_MANIFEST_DIR"), "/include");
    let out = std::process::Command::new(compiler)
        .args(["-fsyntax-only", "-Wall", "-Werror", "-I", include])
        .args(flags)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{compiler}: {e}"));
    assert!(
        out.status.success(),
        "{compiler} {flags:?} on greenworld.h:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Each twin has its function's C type: redeclared with `__typeof__` of libc's own
/// declaration, a different one is an error. In C, but for the calls glibc's GNU mode declares
/// with a transparent union for the address: those in C++ (two C functions of one name, two
/// types: an error; they are cancellation points, so glibc gives them no `noexcept` there).
#[test]
fn every_twin_has_its_functions_c_type() {
    const SOCKADDR_UNION: &[&str] = &["connect", "accept", "accept4", "recvfrom", "sendto"];
    let includes = "#include <fcntl.h>\n#include <unistd.h>\n#include <sys/ioctl.h>\n\
                    #include <sys/epoll.h>\n#include <sys/eventfd.h>\n#include <sys/timerfd.h>\n\
                    #include <sys/signalfd.h>\n#include <sys/inotify.h>\n#include <sys/mman.h>\n\
                    #include <sys/sendfile.h>\n#include <sys/resource.h>\n#include <netdb.h>\n\
                    #include <stdlib.h>\n#include <time.h>\n#include <sys/uio.h>\n\
                    #include \"greenworld.h\"\n";
    // glibc's internal names have no public declaration to compare with.
    let public: Vec<&Row> = twins()
        .into_iter()
        .filter(|r| !r.name.starts_with("__"))
        .collect();
    let mut cpp = format!("{includes}extern \"C\" {{\n");
    let mut c = format!("#define _GNU_SOURCE\n{includes}#include <threads.h>\n");
    for row in public {
        let line = format!("__typeof__({0}) green_{0};\n", row.name);
        if SOCKADDR_UNION.contains(&row.name) {
            cpp.push_str(&line);
        } else {
            c.push_str(&line);
        }
    }
    cpp.push_str("}\n");
    compiles("c++", &[], ".cc", &cpp);
    compiles("cc", &[], ".c", &c);
    // And the header alone, in the modes a program may use.
    let alone = "#include \"greenworld.h\"\nint main(void) { return 0; }\n";
    compiles("cc", &[], ".c", alone);
    compiles(
        "cc",
        &["-std=c11", "-D_POSIX_C_SOURCE=200809L"],
        ".c",
        alone,
    );
    compiles("cc", &["-D_GNU_SOURCE"], ".c", alone);
    compiles("c++", &[], ".cc", alone);
}
