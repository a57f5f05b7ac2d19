//! Conversations worked on in parallel, their results handed over in file order.
//!
//! Tools that produce one output per conversation (visualize-cache `all`) run each
//! conversation as a task on the current rayon pool and take the results on the calling
//! thread strictly in order. At most a window of conversations past the next one to hand
//! over are started (bounded memory); of those that become eligible, the largest are
//! started first, so a big conversation met late does not run alone at the end. Unlike
//! fixed chunks, no worker waits for the slowest conversation of its chunk.

use std::collections::BTreeMap;
use std::path::Path;

/// The work a conversation stands for: the bytes of its session file and of its
/// `<session>/subagents/` folder.
pub fn work_estimate(parent: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let agents = parent.with_extension("").join("subagents");
    let nested: u64 = std::fs::read_dir(agents)
        .map(|d| d.flatten().map(|e| size(&e.path())).sum())
        .unwrap_or(0);
    size(parent) + nested
}

/// Run `work(i)` for `i` in `0..estimates.len()` on the current rayon pool, at most
/// `window` (≥ 1) past the next result to hand over, eligible ones largest estimate first;
/// hand each result to `sink` on this thread in index order. The first error of `sink`
/// stops the run (tasks already started finish; their results are dropped) and is
/// returned. Call it outside the pool's tasks.
pub fn for_each_ordered<R, E>(
    estimates: &[u64],
    window: usize,
    work: impl Fn(usize) -> R + Sync,
    mut sink: impl FnMut(usize, R) -> Result<(), E>,
) -> Result<(), E>
where
    R: Send,
{
    let n = estimates.len();
    let window = window.max(1);
    // A task that panics hands over its panic, which is resumed here (the results before
    // it are handed over first), instead of leaving this thread waiting for its result.
    type Outcome<R> = std::thread::Result<R>;
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Outcome<R>)>();
    rayon::in_place_scope(|scope| {
        let work = &work;
        let mut spawned = 0usize;
        let spawn_upto = |spawned: &mut usize, end: usize| {
            let end = end.min(n);
            let mut eligible: Vec<usize> = (*spawned..end).collect();
            eligible.sort_by_key(|&i| std::cmp::Reverse(estimates[i]));
            for i in eligible {
                let tx = tx.clone();
                scope.spawn(move |_| {
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(i)));
                    let _ = tx.send((i, r));
                });
            }
            *spawned = (*spawned).max(end);
        };
        spawn_upto(&mut spawned, window);
        let mut ready: BTreeMap<usize, Outcome<R>> = BTreeMap::new();
        let mut next = 0usize;
        while next < n {
            let Ok((i, r)) = rx.recv() else { break };
            ready.insert(i, r);
            while let Some(r) = ready.remove(&next) {
                match r {
                    Ok(r) => sink(next, r)?,
                    Err(panic) => std::panic::resume_unwind(panic),
                }
                next += 1;
            }
            spawn_upto(&mut spawned, next + window);
        }
        Ok(())
    })
}

/// `f(i)` for `i` in `0..estimates.len()` on the current rayon pool, started largest
/// estimate first (FIFO spawns, so every worker takes the next largest), results in index
/// order. A barrier, unlike [`for_each_ordered`], but safe inside a pool's task (the
/// calling thread works on the spawned tasks while it waits).
pub fn map_largest_first<R: Send>(estimates: &[u64], f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let mut order: Vec<usize> = (0..estimates.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(estimates[i]));
    let slots: Vec<std::sync::Mutex<Option<R>>> = (0..estimates.len())
        .map(|_| std::sync::Mutex::new(None))
        .collect();
    rayon::scope_fifo(|scope| {
        for i in order {
            let (f, slots) = (&f, &slots);
            scope.spawn_fifo(move |_| {
                let r = f(i);
                if let Ok(mut slot) = slots[i].lock() {
                    *slot = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .filter_map(|m| m.into_inner().ok().flatten())
        .collect()
}

/// Values with state worth keeping (tokenizers and their caches) lent to tasks and
/// returned: at most one per task running at once is ever made, and each lives for the run.
pub struct Lender<T>(std::sync::Mutex<Vec<T>>);

impl<T> Default for Lender<T> {
    fn default() -> Self {
        Lender(std::sync::Mutex::new(Vec::new()))
    }
}

impl<T> Lender<T> {
    /// A lender that starts with `free`.
    pub fn new(free: Vec<T>) -> Self {
        Lender(std::sync::Mutex::new(free))
    }
}

impl<T: Default> Lender<T> {
    /// Run `f` with a value lent for the time of the call (a new one when none is free).
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let popped = self.0.lock().ok().and_then(|mut free| free.pop());
        let mut value = popped.unwrap_or_default();
        let out = f(&mut value);
        if let Ok(mut free) = self.0.lock() {
            free.push(value);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_first_results_keep_index_order() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let estimates: Vec<u64> = (0..29).map(|i| (i * 31 % 11) as u64).collect();
        // Inside a task of a 2-thread pool too (no deadlock).
        let got = pool.install(|| {
            map_largest_first(&estimates, |i| {
                std::thread::sleep(std::time::Duration::from_micros(estimates[i] * 40));
                (i, estimates[i])
            })
        });
        let want: Vec<(usize, u64)> = estimates.iter().copied().enumerate().collect();
        assert_eq!(got, want);
        // On one thread the largest run first.
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let started = std::sync::Mutex::new(Vec::new());
        one.install(|| map_largest_first(&[3, 9, 1, 5], |i| started.lock().unwrap().push(i)));
        assert_eq!(started.into_inner().unwrap(), [1, 3, 0, 2]);
    }

    #[test]
    fn results_come_in_order_whatever_the_sizes_and_window() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for window in [1, 2, 5, 100] {
            let estimates: Vec<u64> = (0..37).map(|i| (i * 7919 % 13) as u64).collect();
            let mut got = Vec::new();
            let r: Result<(), ()> = pool.install(|| {
                for_each_ordered(
                    &estimates,
                    window,
                    |i| {
                        // Uneven work, so tasks finish out of order.
                        std::thread::sleep(std::time::Duration::from_micros(estimates[i] * 50));
                        i * i
                    },
                    |i, r| {
                        got.push((i, r));
                        Ok(())
                    },
                )
            });
            assert_eq!(r, Ok(()));
            let want: Vec<(usize, usize)> = (0..37).map(|i| (i, i * i)).collect();
            assert_eq!(got, want, "window {window}");
        }
    }

    #[test]
    fn the_first_sink_error_stops_the_run() {
        let started = std::sync::atomic::AtomicUsize::new(0);
        let mut seen = Vec::new();
        let r = for_each_ordered(
            &[1; 50],
            2,
            |i| {
                started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                i
            },
            |i, _| {
                seen.push(i);
                if i == 3 {
                    Err("stop")
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(r, Err("stop"));
        assert_eq!(seen, [0, 1, 2, 3]);
        // Nothing past the window of the failing result was started.
        assert!(started.load(std::sync::atomic::Ordering::Relaxed) <= 3 + 2);
    }

    #[test]
    #[should_panic(expected = "task 5 failed")]
    fn a_task_that_panics_panics_the_caller_instead_of_hanging() {
        let _ = for_each_ordered(
            &[1; 9],
            3,
            |i| {
                assert!(i != 5, "task {i} failed");
                i
            },
            |_, _| Ok::<(), ()>(()),
        );
    }

    #[test]
    fn a_lent_value_comes_back_with_its_state() {
        let lender: Lender<Vec<u32>> = Lender::default();
        lender.with(|v| v.push(1));
        // Free again: the same value, not a new one.
        assert_eq!(lender.with(|v| v.clone()), [1]);
        // Two at once: the second is a new one.
        lender.with(|outer| {
            outer.push(2);
            assert!(lender.with(|inner| inner.is_empty()));
        });
    }

    #[test]
    fn nothing_to_do() {
        let r: Result<(), ()> = for_each_ordered(&[], 4, |i| i, |_, _| Err(()));
        assert_eq!(r, Ok(()));
    }
}
