//! Threads, cancellation and the split of the m × n work into tiles.
//!
//! Work is a grid of (query block, reference chunk) items run on a rayon pool of the requested
//! size. Normally each item is one block of query rows against *all* reference rows, so a row's
//! state never leaves its thread; when there are too few query blocks to keep every thread busy
//! (e.g. one query against 60,000 references) the references are split into chunks as well and
//! the partial states are merged afterwards. Small problems run serially on the calling thread,
//! where starting threads would cost more than the work.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;

use crate::error::KernelError;

/// A cancellation flag, checked by every kernel between tiles.
#[derive(Debug, Default)]
pub struct Cancel(AtomicBool);

impl Cancel {
    pub fn new() -> Self {
        Self(AtomicBool::new(false))
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    pub(crate) fn check(&self) -> Result<(), KernelError> {
        if self.is_cancelled() {
            Err(KernelError::Interrupted)
        } else {
            Ok(())
        }
    }
}

/// Resolve `0` to the number of available cores.
pub fn resolve_threads(n_threads: usize) -> usize {
    if n_threads > 0 {
        n_threads
    } else {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    }
}

fn pool(threads: usize) -> Result<Arc<rayon::ThreadPool>, KernelError> {
    // Pools are cached per size: starting threads on every call would dominate small calls. A
    // forked child inherits the cache but not the threads behind it, so a cache made by another
    // process is abandoned (leaked: dropping it would signal threads that do not exist here).
    struct Cache {
        pid: u32,
        pools: HashMap<usize, Arc<rayon::ThreadPool>>,
    }
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    let pid = std::process::id();
    let mut cache = CACHE
        .get_or_init(|| Mutex::new(Cache { pid, pools: HashMap::new() }))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if cache.pid != pid {
        std::mem::forget(std::mem::take(&mut cache.pools));
        cache.pid = pid;
    }
    if let Some(p) = cache.pools.get(&threads) {
        return Ok(p.clone());
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("gancore-{i}"))
        .build()
        .map_err(|e| KernelError::ThreadPool { threads, reason: e.to_string() })?;
    let p = Arc::new(p);
    cache.pools.insert(threads, p.clone());
    Ok(p)
}

/// One unit of work: query rows `q0..q1` against reference rows `r0..r1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WorkItem {
    pub q0: usize,
    pub q1: usize,
    pub r0: usize,
    pub r1: usize,
}

/// Work below this many multiply-adds runs on the calling thread.
const SERIAL_WORK: f64 = 4.0e6;

/// Split `m` query rows (blocks of `qb`) and `n` reference rows (tiles of `rt`) into work items
/// for `threads` workers.
pub(crate) fn plan(m: usize, n: usize, qb: usize, rt: usize, threads: usize) -> Vec<WorkItem> {
    let qblocks = m.div_ceil(qb).max(1);
    let rtiles = n.div_ceil(rt).max(1);
    // Enough items for load balance (≥ 2 per thread), without cutting references needlessly.
    let want = 2 * threads;
    let splits = if qblocks >= want { 1 } else { want.div_ceil(qblocks).min(rtiles) };
    let tiles_per_split = rtiles.div_ceil(splits);
    let mut items = Vec::with_capacity(qblocks * splits);
    for b in 0..qblocks {
        let (q0, q1) = (b * qb, ((b + 1) * qb).min(m));
        for s in 0..splits {
            let r0 = (s * tiles_per_split * rt).min(n);
            let r1 = ((s + 1) * tiles_per_split * rt).min(n);
            if r0 < r1 {
                items.push(WorkItem { q0, q1, r0, r1 });
            }
        }
    }
    items
}

/// Run `f` on every work item, on `n_threads` threads (0 = all cores), stopping early on error or
/// cancellation. Results come back in item order.
pub(crate) fn run_items<S, F>(
    items: &[WorkItem],
    d: usize,
    n_threads: usize,
    cancel: &Cancel,
    f: F,
) -> Result<Vec<S>, KernelError>
where
    S: Send,
    F: Fn(WorkItem) -> Result<S, KernelError> + Sync,
{
    let work: f64 = items.iter().map(|w| ((w.q1 - w.q0) * (w.r1 - w.r0)) as f64 * d as f64).sum();
    let threads = resolve_threads(n_threads);
    if threads == 1 || work < SERIAL_WORK || items.len() == 1 {
        return items.iter().map(|&w| f(w)).collect();
    }
    let pool = pool(threads)?;
    pool.install(|| {
        items
            .par_iter()
            .with_max_len(1)
            .map(|&w| {
                cancel.check()?;
                f(w)
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_covers_every_pair_exactly_once() {
        for &(m, n, qb, rt, t) in
            &[(0, 5, 4, 2, 2), (1, 60000, 256, 1024, 2), (10, 7, 4, 2, 8), (1000, 1000, 256, 512, 2)]
        {
            let items = plan(m, n, qb, rt, t);
            let mut seen = vec![0u8; m.max(1) * n];
            for w in &items {
                for i in w.q0..w.q1 {
                    for j in w.r0..w.r1 {
                        seen[i * n + j] += 1;
                    }
                }
            }
            assert!(seen[..m * n].iter().all(|&c| c == 1), "{m} {n} {qb} {rt} {t}");
        }
    }
}
