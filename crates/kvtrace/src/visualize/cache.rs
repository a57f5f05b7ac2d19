//! The prefix-cache model of visualize-cache. It differs on purpose from
//! validate-trace-cache's (spec §6), which counts every block use on its own:
//!
//! - a request's context is cut into blocks, the final partial block included;
//! - its hit is the **longest cached prefix** of blocks; every block after the first miss
//!   is (re)written — a prefill of that block — even if a copy happens to be cached;
//! - with a TTL a block is cached when its last use is at most TTL seconds ago (a use
//!   exactly TTL seconds later still hits); every use, hit or write, refreshes it;
//! - a block is *alive* from a use until TTL seconds after its last use; the working set
//!   at a moment is the number of alive blocks (× block size in tokens).
//!
//! The simulated split of a request's input: cache read = the hit prefix's tokens,
//! cache creation = the rest (every missed block is written); nothing stays uncached.

use rustc_hash::FxHashMap;

/// One request as the simulation sees it.
#[derive(Debug, Clone, Copy)]
pub struct SimRequest<'a> {
    /// Seconds since the start of the selection.
    pub t: f64,
    pub blocks: &'a [u128],
    pub tokens: usize,
}

/// The outcome of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Hit {
    pub hit_blocks: usize,
    /// Tokens of the hit prefix (the partial last block counts its real size).
    pub read_tokens: usize,
    /// Tokens after the first miss (written).
    pub write_tokens: usize,
}

/// Everything one simulation measures.
#[derive(Debug, Clone, Default)]
pub struct SimResult {
    pub ttl: Option<f64>,
    pub per_request: Vec<Hit>,
    pub read_tokens: u64,
    pub input_tokens: u64,
    pub distinct_blocks: usize,
    /// Block writes (misses), i.e. prefills.
    pub prefills: u64,
    /// Distinct blocks written exactly once.
    pub prefilled_once: usize,
    /// Most blocks alive at one moment.
    pub peak_blocks: usize,
    /// Alive blocks after each change: (seconds, blocks), in time order.
    pub working_set: Vec<(f64, usize)>,
}

impl SimResult {
    /// Cache-read share of input tokens, in percent.
    pub fn hit_rate(&self) -> f64 {
        if self.input_tokens == 0 {
            0.0
        } else {
            self.read_tokens as f64 / self.input_tokens as f64 * 100.0
        }
    }

    /// Mean prefills per distinct block (1.0 = every block computed once).
    pub fn prefills_per_block(&self) -> f64 {
        if self.distinct_blocks == 0 {
            0.0
        } else {
            self.prefills as f64 / self.distinct_blocks as f64
        }
    }

    /// Share of distinct blocks prefilled exactly once, in percent.
    pub fn once_pct(&self) -> f64 {
        if self.distinct_blocks == 0 {
            0.0
        } else {
            self.prefilled_once as f64 / self.distinct_blocks as f64 * 100.0
        }
    }
}

struct BlockState {
    last_use: f64,
    /// Start of the current alive interval.
    alive_from: f64,
    prefills: u32,
}

/// Simulate requests in the given order (callers pass them in time order).
/// `ttl = None` is an infinite cache.
pub fn simulate(requests: &[SimRequest<'_>], block_size: usize, ttl: Option<f64>) -> SimResult {
    let mut state: FxHashMap<u128, BlockState> = FxHashMap::default();
    let mut intervals: Vec<(f64, f64)> = Vec::new();
    let mut res = SimResult {
        ttl,
        ..SimResult::default()
    };
    let cached = |s: &BlockState, t: f64| ttl.is_none_or(|ttl| t - s.last_use <= ttl);
    for r in requests {
        // One lookup per block: the hit prefix ends at the first block missing or expired
        // before this request. (A block met twice in one request was first met at or
        // after the end of the hit prefix — its first meeting ends it or follows it — so
        // updating as we go leaves the prefix as it was before the request.)
        let mut hit_blocks = usize::MAX;
        for (k, d) in r.blocks.iter().enumerate() {
            match state.get_mut(d) {
                Some(s) => {
                    let was_cached = cached(s, r.t);
                    if !was_cached {
                        // Expired: its alive interval ended TTL after its last use.
                        intervals.push((s.alive_from, s.last_use + ttl.unwrap_or(0.0)));
                        s.alive_from = r.t;
                        hit_blocks = hit_blocks.min(k);
                    }
                    if k >= hit_blocks {
                        s.prefills += 1;
                        res.prefills += 1;
                    }
                    s.last_use = r.t;
                }
                None => {
                    hit_blocks = hit_blocks.min(k);
                    state.insert(
                        *d,
                        BlockState {
                            last_use: r.t,
                            alive_from: r.t,
                            prefills: 1,
                        },
                    );
                    res.prefills += 1;
                }
            }
        }
        let hit_blocks = hit_blocks.min(r.blocks.len());
        let read = (hit_blocks * block_size).min(r.tokens);
        res.per_request.push(Hit {
            hit_blocks,
            read_tokens: read,
            write_tokens: r.tokens - read,
        });
        res.read_tokens += read as u64;
        res.input_tokens += r.tokens as u64;
    }
    res.distinct_blocks = state.len();
    res.prefilled_once = state.values().filter(|s| s.prefills == 1).count();
    for s in state.values() {
        let end = ttl.map_or(f64::INFINITY, |ttl| s.last_use + ttl);
        intervals.push((s.alive_from, end));
    }
    // Sweep: +1 at a start, −1 at an end; at one instant starts go first, because a
    // block is alive up to and including TTL after its last use.
    let mut events: Vec<(f64, i8)> = Vec::with_capacity(intervals.len() * 2);
    for (a, b) in intervals {
        events.push((a, 1));
        if b.is_finite() {
            events.push((b, -1));
        }
    }
    events.sort_by(|x, y| x.0.total_cmp(&y.0).then(y.1.cmp(&x.1)));
    let mut alive: i64 = 0;
    let mut peak: i64 = 0;
    let mut i = 0;
    while i < events.len() {
        let t = events[i].0;
        // All starts at t, then the peak, then all ends at t.
        while i < events.len() && events[i].0 == t && events[i].1 > 0 {
            alive += 1;
            i += 1;
        }
        peak = peak.max(alive);
        while i < events.len() && events[i].0 == t && events[i].1 < 0 {
            alive -= 1;
            i += 1;
        }
        res.working_set.push((t, alive.max(0) as usize));
    }
    res.peak_blocks = peak.max(0) as usize;
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(t: f64, blocks: &[u128], tokens: usize) -> SimRequest<'_> {
        SimRequest { t, blocks, tokens }
    }

    #[test]
    fn ttl_boundary_is_inclusive_and_uses_refresh() {
        let a = [1u128, 2, 3];
        let reqs = [
            req(0.0, &a, 3),
            req(10.0, &a, 3),
            req(20.0, &a, 3),
            req(30.5, &a, 3),
        ];
        let r = simulate(&reqs, 1, Some(10.0));
        let hits: Vec<usize> = r.per_request.iter().map(|h| h.hit_blocks).collect();
        // 10 s later: hit (boundary); refreshed at 10, so 20 hits too; 30.5 misses.
        assert_eq!(hits, [0, 3, 3, 0]);
        assert_eq!(r.prefills, 6);
        assert_eq!(r.distinct_blocks, 3);
        assert_eq!(r.prefilled_once, 0);
        assert_eq!(r.peak_blocks, 3);
    }

    #[test]
    fn longest_prefix_and_rewrite_after_miss() {
        let a = [1u128, 2, 3];
        let b = [1u128, 9, 3];
        let r = simulate(&[req(0.0, &a, 130), req(1.0, &b, 130)], 64, None);
        assert_eq!(r.per_request[1].hit_blocks, 1);
        assert_eq!(r.per_request[1].read_tokens, 64);
        assert_eq!(r.per_request[1].write_tokens, 66);
        // Block 3 was cached but lies after the miss: written again.
        assert_eq!(r.prefills, 5);
        assert_eq!(r.distinct_blocks, 4);
        assert_eq!(r.prefilled_once, 3);
        assert_eq!(r.peak_blocks, 4);
    }

    #[test]
    fn working_set_expires() {
        let a = [1u128, 2];
        let b = [5u128];
        let r = simulate(&[req(0.0, &a, 2), req(100.0, &b, 1)], 1, Some(60.0));
        assert_eq!(r.peak_blocks, 2);
        assert_eq!(
            r.working_set,
            vec![(0.0, 2), (60.0, 0), (100.0, 1), (160.0, 0)]
        );
    }
}
