//! Logging. The library reports through the [`log`] facade only (it never prints): what an
//! application sees depends on the logger it installs.
//!
//! * The binaries (`panderm`, `panderm-tools`) install [`init_cli`]: messages on stderr as
//!   `warning: …` / `error: …` (the same words the commands print themselves), `info` messages
//!   bare, `debug`/`trace` messages prefixed with their level and module. The filter is
//!   `--log-level` when given, else `RUST_LOG` (env_logger's syntax: `debug`,
//!   `panderm_edge::classify=debug,warn`, …; a bare level applies to every crate, tract
//!   included), else the binary's default: [`PANDERM_DEFAULT`] or [`TOOLS_DEFAULT`], where
//!   dependencies only show errors (tract warns about `/proc/cpuinfo` under qemu, for instance,
//!   which says nothing about the result).
//! * Firmware using the C ABI registers a callback with `panderm_set_log_callback`
//!   (`src/capi.rs`, docs/c-api.md).
//! * A Rust application installs any `log` logger it likes.
//!
//! Targets are module paths (`panderm_edge::classify`, `panderm_tools::extract`, …).

use std::io::Write;

use log::{Level, LevelFilter};

/// `panderm`'s default filter: its own and the runtime library's warnings, dependencies' errors.
pub const PANDERM_DEFAULT: &str = "error,panderm=warn,panderm_edge=warn";
/// `panderm-tools`' default filter: the tools' notes and progress (`info`, which they always
/// printed), the runtime's warnings, dependencies' errors.
pub const TOOLS_DEFAULT: &str = "error,panderm_tools=info,panderm_edge=warn";

/// The words in front of a message on stderr.
fn prefix(level: Level) -> &'static str {
    match level {
        Level::Error => "error: ",
        Level::Warn => "warning: ",
        Level::Info => "",
        Level::Debug => "debug: ",
        Level::Trace => "trace: ",
    }
}

/// [`check_filter`] as a clap value parser for both binaries' `--log-level`: the value itself when
/// it is valid.
pub fn parse_filter(spec: &str) -> std::result::Result<String, String> {
    check_filter(spec).map(|()| spec.to_owned())
}

/// Checks a `--log-level` value: `off`, `error`, `warn`, `info`, `debug`, `trace`, or
/// comma-separated `module=level` directives with at most one bare level (`RUST_LOG` syntax,
/// stricter: a bare word must be a level). [`init_cli`] applies it.
pub fn check_filter(spec: &str) -> std::result::Result<(), String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err("an empty log level (one of off, error, warn, info, debug, trace)".into());
    }
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level = directive.rsplit_once('=').map_or(directive, |(_, l)| l.trim());
        if level.parse::<LevelFilter>().is_err() {
            return Err(format!("`{level}` is not a log level (off, error, warn, info, debug, trace)"));
        }
    }
    Ok(())
}

/// Installs the command-line logger on stderr: the filter is `level` (`--log-level`) if given,
/// else `RUST_LOG` if set, else `default` (e.g. [`PANDERM_DEFAULT`]). Does nothing if a logger is
/// already installed (a second call, or a test harness).
pub fn init_cli(level: Option<&str>, default: &str) {
    let mut builder = env_logger::Builder::new();
    match level.map(str::to_owned).or_else(|| std::env::var("RUST_LOG").ok().filter(|s| !s.trim().is_empty())) {
        Some(spec) => builder.parse_filters(&spec),
        None => builder.parse_filters(default),
    };
    builder
        .format(|out, record| match record.level() {
            Level::Debug | Level::Trace => {
                writeln!(out, "{}{}: {}", prefix(record.level()), record.target(), record.args())
            }
            l => writeln!(out, "{}{}", prefix(l), record.args()),
        })
        .target(env_logger::Target::Stderr);
    let _ = builder.try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_level_values() {
        for ok in ["warn", "DEBUG", "off", "panderm_edge::classify=debug,warn"] {
            assert!(check_filter(ok).is_ok(), "{ok}");
        }
        for bad in ["", "  ", "loud", "panderm_edge", "panderm_edge=loud"] {
            assert!(check_filter(bad).is_err(), "{bad}");
        }
        assert_eq!(prefix(Level::Warn), "warning: ");
        assert_eq!(prefix(Level::Info), "");
    }
}
