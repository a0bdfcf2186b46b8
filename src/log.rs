//! Where vectord's own log lines go: a callback the embedding program sets,
//! or stderr (warnings and errors only) when none is set.

use std::sync::RwLock;

pub const ERROR: u32 = 1;
pub const WARN: u32 = 2;
pub const INFO: u32 = 3;
pub const DEBUG: u32 = 4;

type Callback = Box<dyn Fn(u32, &str) + Send + Sync>;

static CALLBACK: RwLock<Option<Callback>> = RwLock::new(None);

/// Sends log lines to `cb` (level, message); None restores the default
/// (warnings and errors to stderr).
pub fn set_log_callback(cb: Option<Callback>) {
    *CALLBACK.write().unwrap_or_else(|p| p.into_inner()) = cb;
}

pub fn log(level: u32, message: &str) {
    let cb = CALLBACK.read().unwrap_or_else(|p| p.into_inner());
    match &*cb {
        Some(f) => f(level, message),
        None if level <= WARN => {
            let tag = if level == ERROR { "error" } else { "warning" };
            eprintln!("vectord {tag}: {message}");
        }
        None => {}
    }
}
