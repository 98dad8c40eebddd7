//! `greenworld:`-prefixed diagnostics on stderr, written with the raw syscall and formatted
//! into a stack buffer: safe from any hook, any green thread, before or after `main`.

use crate::config::LogLevel;
use crate::sys::{LineBuf, write_stderr};
use core::fmt::Write;

/// Is `level` enabled by GREENWORLD_LOG?
#[inline]
pub fn enabled(level: LogLevel) -> bool {
    level != LogLevel::Off && level <= crate::runtime::config().log
}

/// Writes one `greenworld: ...` line (the macros below are the way in).
pub fn line(prefix: &str, args: core::fmt::Arguments<'_>) {
    let mut buf = LineBuf::new();
    let _ = buf.write_str("greenworld: ");
    let _ = buf.write_str(prefix);
    let _ = buf.write_fmt(args);
    let _ = buf.write_str("\n");
    write_stderr(buf.as_bytes());
}

#[macro_export]
macro_rules! log {
    ($level:ident, $($arg:tt)*) => {
        if $crate::log::enabled($crate::config::LogLevel::$level) {
            $crate::log::line(
                const { $crate::log::prefix($crate::config::LogLevel::$level) },
                format_args!($($arg)*),
            );
        }
    };
}

/// An internal failure the host cannot survive: one line, then abort (never unwinding into C).
#[macro_export]
macro_rules! fatal {
    ($($arg:tt)*) => {{
        $crate::log::line("fatal: ", format_args!($($arg)*));
        ::std::process::abort()
    }};
}

pub const fn prefix(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Off => "",
        LogLevel::Error => "error: ",
        LogLevel::Warn => "warn: ",
        LogLevel::Info => "info: ",
        LogLevel::Debug => "debug: ",
    }
}
