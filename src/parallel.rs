//! The one worker pattern: run indexed jobs on a few scoped threads, with
//! the calling thread as one of the workers.
//!
//! Starting a thread can fail (EAGAIN from a pids or thread limit). That is
//! never an error here: the work goes on with the threads that did start,
//! down to the calling thread alone, so a caller never has to undo half a
//! job because a helper thread was refused.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Fault injection for tests: the next `n` thread starts fail as if the
/// system had refused them. Hidden: not part of the supported API.
#[doc(hidden)]
pub fn inject_spawn_failures(n: usize) {
    FAIL_SPAWNS.store(n, Ordering::SeqCst);
}

static FAIL_SPAWNS: AtomicUsize = AtomicUsize::new(0);

/// True when an injected failure should refuse this thread start.
fn injected_failure() -> bool {
    FAIL_SPAWNS
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// The number of cores this process may use (1 when unknown).
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Starts `f` on a scoped thread; on failure (real or injected) hands `f`
/// back so the caller can run it itself.
fn try_spawn<'scope, 'env, F>(
    sc: &'scope std::thread::Scope<'scope, 'env>,
    name: String,
    f: F,
) -> Result<(), F>
where
    F: FnOnce() + Send + 'scope,
{
    if injected_failure() {
        return Err(f);
    }
    // spawn_scoped consumes the closure even when it fails, so it travels
    // in a cell the caller can take it back from.
    let cell = std::sync::Arc::new(Mutex::new(Some(f)));
    let theirs = cell.clone();
    let spawned = std::thread::Builder::new()
        .name(name)
        .spawn_scoped(sc, move || {
            let f = theirs.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(f) = f {
                f()
            }
        });
    match spawned {
        Ok(_) => Ok(()),
        Err(_) => {
            let f = cell.lock().unwrap_or_else(|p| p.into_inner()).take();
            // Not started, so the closure is still in the cell.
            f.map_or(Ok(()), Err)
        }
    }
}

/// Runs `work(&mut state, i)` for every `i` in `0..n`, on up to `threads`
/// threads including the caller's; each thread makes its own `state` with
/// `init`. Jobs are handed out one index at a time, in increasing order.
/// Threads that cannot be started are skipped (see the module docs).
/// Returns the number of threads that ran jobs.
pub fn parallel_for<S, I, W>(n: usize, threads: usize, init: I, work: W) -> usize
where
    I: Fn() -> S + Sync,
    W: Fn(&mut S, usize) + Sync,
{
    let threads = threads.clamp(1, n.max(1));
    let next = AtomicUsize::new(0);
    let run = || {
        let mut state = init();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                break;
            }
            work(&mut state, i);
        }
    };
    if threads == 1 {
        run();
        return 1;
    }
    std::thread::scope(|sc| {
        let mut started = 1;
        for k in 1..threads {
            if try_spawn(sc, format!("vectord-worker-{k}"), run).is_ok() {
                started += 1;
            }
        }
        run();
        started
    })
}

/// `f(i)` for every `i` in `0..n`, computed as [`parallel_for`] does,
/// returned in order of `i`.
pub fn parallel_map<T, F>(n: usize, threads: usize, f: F) -> Vec<T>
where
    T: Send + Sync,
    F: Fn(usize) -> T + Sync,
{
    let out: Vec<OnceLock<T>> = (0..n).map(|_| OnceLock::new()).collect();
    parallel_for(
        n,
        threads,
        || (),
        |_, i| {
            let _ = out[i].set(f(i));
        },
    );
    out.into_iter()
        .map(|v| v.into_inner().expect("parallel_for runs every index"))
        .collect()
}

/// Runs `a` on the caller's thread and `b` on a second thread when one can
/// be started (else after `a`, on the caller's thread); returns both results.
pub fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA,
    B: FnOnce() -> RB + Send,
    RB: Send,
{
    let slot: Mutex<Option<RB>> = Mutex::new(None);
    let ra = std::thread::scope(|sc| {
        let job = || {
            let rb = b();
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(rb);
        };
        let inline = try_spawn(sc, "vectord-worker-1".into(), job).err();
        let ra = a();
        if let Some(job) = inline {
            job();
        }
        ra
    });
    let rb = slot
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .expect("join runs b");
    (ra, rb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    // One test owns the global fault counter, so tests cannot race on it.
    #[test]
    fn every_job_runs_once_whatever_threads_start() {
        for (threads, failures) in [(1, 0), (4, 0), (4, 1), (4, 3), (4, 10), (8, 2)] {
            inject_spawn_failures(failures);
            let sum = AtomicU64::new(0);
            let ran = parallel_for(
                1000,
                threads,
                || (),
                |_, i| {
                    sum.fetch_add(i as u64 + 1, Ordering::Relaxed);
                },
            );
            inject_spawn_failures(0);
            assert_eq!(sum.into_inner(), 1000 * 1001 / 2);
            assert!(ran >= 1 && ran <= threads);
            if failures >= threads {
                assert_eq!(ran, 1, "threads {threads}, failures {failures}");
            }
            let v = parallel_map(100, threads, |i| i * 2);
            assert_eq!(v, (0..100).map(|i| i * 2).collect::<Vec<_>>());
        }
        inject_spawn_failures(1);
        let (a, b) = join(|| 1, || 2);
        assert_eq!((a, b), (1, 2));
        inject_spawn_failures(0);
        let (a, b) = join(|| "a", || "b");
        assert_eq!((a, b), ("a", "b"));
    }
}
