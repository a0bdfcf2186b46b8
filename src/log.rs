//! Where vectord's own log lines go: a callback the embedding program sets,
//! or stderr (warnings and errors only) when none is set.
//!
//! The callback runs with no vectord lock held (not even this module's), so
//! it may call back into vectord, `set_log_callback` included. It may run on
//! any thread (the background saver's too), concurrently with itself, and
//! for a moment after it was replaced (a line already being delivered).

use std::sync::{Arc, RwLock};

pub const ERROR: u32 = 1;
pub const WARN: u32 = 2;
pub const INFO: u32 = 3;
pub const DEBUG: u32 = 4;

type Callback = Box<dyn Fn(u32, &str) + Send + Sync>;

static CALLBACK: RwLock<Option<Arc<Callback>>> = RwLock::new(None);

/// Sends log lines to `cb` (level, message); None restores the default
/// (warnings and errors to stderr).
pub fn set_log_callback(cb: Option<Callback>) {
    let old = std::mem::replace(
        &mut *CALLBACK.write().unwrap_or_else(|p| p.into_inner()),
        cb.map(Arc::new),
    );
    // Dropped after the lock is released: dropping user state may log too.
    drop(old);
}

pub fn log(level: u32, message: &str) {
    let cb = CALLBACK.read().unwrap_or_else(|p| p.into_inner()).clone();
    match cb {
        Some(f) => f(level, message),
        None if level <= WARN => {
            let tag = if level == ERROR { "error" } else { "warning" };
            eprintln!("vectord {tag}: {message}");
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A callback that replaces the callback (from inside a log line) must
    /// not deadlock; run in a thread so a regression fails instead of hanging.
    #[test]
    fn a_callback_may_call_back_into_the_logger() {
        static SEEN: AtomicUsize = AtomicUsize::new(0);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            set_log_callback(Some(Box::new(|_, _| {
                SEEN.fetch_add(1, Ordering::SeqCst);
                set_log_callback(None);
            })));
            log(ERROR, "first");
            let _ = tx.send(());
        });
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("the log callback deadlocked");
        assert_eq!(SEEN.load(Ordering::SeqCst), 1);
        assert!(CALLBACK.read().unwrap().is_none());
    }
}
