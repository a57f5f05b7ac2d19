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

use std::cmp::Ordering;

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
#[derive(Debug, Clone, Default, PartialEq)]
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
    /// Count a request whose hit prefix ends at block `hit` (`usize::MAX`: never).
    fn record(&mut self, r: &SimRequest<'_>, hit: usize, block_size: usize) {
        let hit_blocks = hit.min(r.blocks.len());
        let read = (hit_blocks * block_size).min(r.tokens);
        self.per_request.push(Hit {
            hit_blocks,
            read_tokens: read,
            write_tokens: r.tokens - read,
        });
        self.read_tokens += read as u64;
        self.input_tokens += r.tokens as u64;
    }

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

/// How many of the last requests [`simulate_many`] keeps the block slots of.
const RECENT_REQUESTS: usize = 4;

/// Simulate requests in the given order (callers pass them in time order).
/// `ttl = None` is an infinite cache.
pub fn simulate(requests: &[SimRequest<'_>], block_size: usize, ttl: Option<f64>) -> SimResult {
    simulate_many(requests, block_size, &[ttl])
        .pop()
        .unwrap_or_default()
}

/// [`simulate`] for several TTLs at once, one result per TTL in the order given. The
/// requests are walked once, with one lookup per block: a block's last use does not
/// depend on the TTL, and with the TTLs in ascending order the caches a block has expired
/// from are a prefix of them (those shorter than the time since its last use), as are the
/// caches whose hit prefix has ended (a longer TTL keeps at least as long a prefix).
pub fn simulate_many(
    requests: &[SimRequest<'_>],
    block_size: usize,
    ttls: &[Option<f64>],
) -> Vec<SimResult> {
    // Sorted: finite TTLs ascending, then the infinite cache(s); `order[j]` is the index
    // in `ttls` of sorted cache j.
    let mut order: Vec<usize> = (0..ttls.len()).collect();
    order.sort_by(|&a, &b| match (ttls[a], ttls[b]) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    });
    let n = order.len();
    let finite: Vec<f64> = order.iter().filter_map(|&i| ttls[i]).collect();
    let mut res: Vec<SimResult> = order
        .iter()
        .map(|&i| SimResult {
            ttl: ttls[i],
            per_request: Vec::with_capacity(requests.len()),
            ..SimResult::default()
        })
        .collect();
    // Per block (by slot): its last use (time and request), and per sorted cache the
    // request that started its current alive interval and its prefills.
    let mut slots: FxHashMap<u128, usize> = FxHashMap::default();
    let mut last_use: Vec<f64> = Vec::new();
    let mut last_at: Vec<u32> = Vec::new();
    let mut alive_at: Vec<u32> = Vec::new();
    let mut prefills: Vec<u32> = Vec::new();
    // Per sorted cache: alive intervals, as counts per request of those starting at its
    // time and of those ending TTL after it.
    let mut intervals: Vec<Intervals> = vec![Intervals::new(requests.len()); n];
    let mut hit_blocks = vec![usize::MAX; n];
    // The slots of the last few requests' blocks: a request mostly repeats one of them
    // (its conversation's previous request), and comparing a block with that request's
    // is cheaper than looking it up.
    let mut recent: Vec<(usize, Vec<usize>)> = Vec::with_capacity(RECENT_REQUESTS);
    let mut spare: Vec<usize> = Vec::new();
    for (at, r) in requests.iter().enumerate() {
        let mut own = std::mem::take(&mut spare);
        own.clear();
        let like = r.blocks.first().and_then(|first| {
            recent
                .iter()
                .rposition(|(i, _)| requests[*i].blocks.first() == Some(first))
        });
        let (like_blocks, like_slots): (&[u128], &[usize]) = match like {
            Some(j) => (requests[recent[j].0].blocks, &recent[j].1),
            None => (&[], &[]),
        };
        let mut repeating = true;
        let at_index = at;
        let at = at as u32;
        // The caches whose hit prefix has ended: sorted caches 0..ended. (A block met
        // twice in one request was first met at or after the end of the hit prefix, so
        // updating as we go leaves the prefix as it was before the request.)
        let mut ended = 0;
        hit_blocks.fill(usize::MAX);
        for (k, d) in r.blocks.iter().enumerate() {
            repeating = repeating && like_blocks.get(k) == Some(d);
            let known = match like_slots.get(k) {
                Some(&slot) if repeating => Some(slot),
                _ => slots.get(d).copied(),
            };
            let slot = match known {
                Some(slot) => {
                    // Expired from the caches whose TTL is shorter than the time since
                    // the last use: their alive interval ended TTL after that use.
                    let gap = r.t - last_use[slot];
                    // Not `gap <= ttl` (a NaN time expires every finite cache).
                    let expired = finite.partition_point(|&ttl| {
                        !matches!(
                            gap.partial_cmp(&ttl),
                            Some(Ordering::Less | Ordering::Equal)
                        )
                    });
                    let row = slot * n;
                    for j in 0..expired {
                        intervals[j].add(alive_at[row + j], Some(last_at[slot]));
                        alive_at[row + j] = at;
                    }
                    if expired > ended {
                        hit_blocks[ended..expired].fill(k);
                        ended = expired;
                    }
                    for (j, fills) in prefills[row..row + ended].iter_mut().enumerate() {
                        *fills += 1;
                        res[j].prefills += 1;
                    }
                    slot
                }
                None => {
                    hit_blocks[ended..].fill(k);
                    ended = n;
                    let slot = last_use.len();
                    slots.insert(*d, slot);
                    last_use.push(r.t);
                    last_at.push(at);
                    alive_at.extend(std::iter::repeat_n(at, n));
                    prefills.extend(std::iter::repeat_n(1, n));
                    for sim in res.iter_mut() {
                        sim.prefills += 1;
                    }
                    slot
                }
            };
            last_use[slot] = r.t;
            last_at[slot] = at;
            own.push(slot);
        }
        if recent.len() == RECENT_REQUESTS {
            spare = recent.remove(0).1;
        }
        recent.push((at_index, own));
        for (sim, &hit) in res.iter_mut().zip(&hit_blocks) {
            sim.record(r, hit, block_size);
        }
    }
    for (j, sim) in res.iter_mut().enumerate() {
        sim.distinct_blocks = last_use.len();
        sim.prefilled_once = (0..last_use.len())
            .filter(|slot| prefills[slot * n + j] == 1)
            .count();
        let finite = sim.ttl.is_some();
        for (slot, &last) in last_at.iter().enumerate() {
            intervals[j].add(alive_at[slot * n + j], finite.then_some(last));
        }
        intervals[j].sweep(sim, requests);
    }
    // Back to the order asked for.
    let mut out: Vec<Option<SimResult>> = vec![None; n];
    for (sim, &i) in res.into_iter().zip(&order) {
        out[i] = Some(sim);
    }
    out.into_iter().flatten().collect()
}

/// The alive intervals of one cache, counted per request: `starts[k]` begin at request
/// k's time, `ends[k]` end TTL after it (a block is alive until TTL after its last use).
#[derive(Debug, Clone)]
struct Intervals {
    starts: Vec<u32>,
    ends: Vec<u32>,
}

impl Intervals {
    fn new(requests: usize) -> Intervals {
        Intervals {
            starts: vec![0; requests],
            ends: vec![0; requests],
        }
    }

    /// An interval from request `from` to TTL after request `last` (`None`: never ends).
    fn add(&mut self, from: u32, last: Option<u32>) {
        self.starts[from as usize] += 1;
        if let Some(last) = last {
            self.ends[last as usize] += 1;
        }
    }

    /// The working set over time and its peak. Requests come in time order, so the start
    /// times and the end times are each already sorted: merged in one pass, no sort.
    /// (Requests out of order fall back to sorting the events.)
    fn sweep(&self, res: &mut SimResult, requests: &[SimRequest<'_>]) {
        let m = requests.len();
        let t = |k: usize| requests[k].t;
        let in_order = requests.iter().all(|r| r.t.is_finite())
            && requests.windows(2).all(|w| w[0].t <= w[1].t);
        if !in_order || res.ttl.is_some_and(|ttl| !ttl.is_finite()) {
            // Out of order: the events, sorted.
            let mut events: Vec<(f64, i8)> = Vec::new();
            for k in 0..m {
                events.extend(std::iter::repeat_n((t(k), 1), self.starts[k] as usize));
                if let Some(ttl) = res.ttl {
                    events.extend(std::iter::repeat_n((t(k) + ttl, -1), self.ends[k] as usize));
                }
            }
            sweep_events(res, events);
            return;
        }
        // Two cursors over the requests: the next start, and the next end (TTL later).
        let next = |counts: &[u32], mut k: usize| {
            while k < m && counts[k] == 0 {
                k += 1;
            }
            k
        };
        // The infinite cache: no interval ends.
        let (ttl, first_end) = match res.ttl {
            Some(ttl) => (ttl, next(&self.ends, 0)),
            None => (0.0, m),
        };
        let (mut i, mut k) = (next(&self.starts, 0), first_end);
        let mut alive: i64 = 0;
        let mut peak: i64 = 0;
        while i < m || k < m {
            let at = match (i < m, k < m) {
                (true, true) => t(i).min(t(k) + ttl),
                (true, false) => t(i),
                _ => t(k) + ttl,
            };
            // All starts at `at`, then the peak, then all ends at `at`.
            while i < m && t(i) == at {
                alive += i64::from(self.starts[i]);
                i = next(&self.starts, i + 1);
            }
            peak = peak.max(alive);
            while k < m && t(k) + ttl == at {
                alive -= i64::from(self.ends[k]);
                k = next(&self.ends, k + 1);
            }
            res.working_set.push((at, alive.max(0) as usize));
        }
        res.peak_blocks = peak.max(0) as usize;
    }
}

/// The working set over time and its peak, from the blocks' alive intervals (the oracle
/// of [`Intervals::sweep`] in the tests).
#[cfg(test)]
fn working_set(res: &mut SimResult, intervals: &[(f64, f64)]) {
    let mut events: Vec<(f64, i8)> = Vec::with_capacity(intervals.len() * 2);
    for &(a, b) in intervals {
        events.push((a, 1));
        if b.is_finite() {
            events.push((b, -1));
        }
    }
    sweep_events(res, events);
}

/// The working set over time and its peak from start (+1) and end (−1) events in any
/// order: sorted, then swept. At one instant starts go first, because a block is alive
/// up to and including TTL after its last use. (Events that compare equal are equal, so
/// an unstable sort gives the same order.)
fn sweep_events(res: &mut SimResult, mut events: Vec<(f64, i8)>) {
    events.sort_unstable_by(|x, y| x.0.total_cmp(&y.0).then(y.1.cmp(&x.1)));
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(t: f64, blocks: &[u128], tokens: usize) -> SimRequest<'_> {
        SimRequest { t, blocks, tokens }
    }

    struct BlockState {
        last_use: f64,
        alive_from: f64,
        prefills: u32,
    }

    /// The straightforward simulation of one TTL (a lookup per block per TTL): the
    /// oracle of [`simulate_many`].
    fn simulate_one(requests: &[SimRequest<'_>], block_size: usize, ttl: Option<f64>) -> SimResult {
        let mut state: FxHashMap<u128, BlockState> = FxHashMap::default();
        let mut intervals: Vec<(f64, f64)> = Vec::new();
        let mut res = SimResult {
            ttl,
            ..SimResult::default()
        };
        let cached = |s: &BlockState, t: f64| ttl.is_none_or(|ttl| t - s.last_use <= ttl);
        for r in requests {
            let mut hit_blocks = usize::MAX;
            for (k, d) in r.blocks.iter().enumerate() {
                match state.get_mut(d) {
                    Some(s) => {
                        if !cached(s, r.t) {
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
                        let s = BlockState {
                            last_use: r.t,
                            alive_from: r.t,
                            prefills: 1,
                        };
                        state.insert(*d, s);
                        res.prefills += 1;
                    }
                }
            }
            res.record(r, hit_blocks, block_size);
        }
        res.distinct_blocks = state.len();
        res.prefilled_once = state.values().filter(|s| s.prefills == 1).count();
        for s in state.values() {
            let end = ttl.map_or(f64::INFINITY, |ttl| s.last_use + ttl);
            intervals.push((s.alive_from, end));
        }
        working_set(&mut res, &intervals);
        res
    }

    /// A seeded stream of numbers below the bound asked for (a linear congruential
    /// generator's high bits).
    fn below(mut seed: u64) -> impl FnMut(u64) -> u64 {
        move |m: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % m
        }
    }

    #[test]
    fn all_ttls_at_once_equal_one_ttl_at_a_time() {
        // Requests over a small set of blocks (shared prefixes, repeats within a request,
        // changed blocks mid-context) at gaps around and exactly at the TTLs.
        let ttls = [
            Some(60.0),
            None,
            Some(10.0),
            Some(300.0),
            Some(10.0),
            Some(0.0),
            Some(3600.0),
        ];
        let mut next = below(7);
        let gaps = [
            0.0, 0.5, 10.0, 10.5, 60.0, 61.0, 300.0, 1000.0, 3600.0, 5000.0,
        ];
        let mut t = 0.0;
        let mut all: Vec<Vec<u128>> = Vec::new();
        let mut times = Vec::new();
        for _ in 0..400 {
            t += gaps[next(gaps.len() as u64) as usize];
            let len = 1 + next(12) as usize;
            let blocks: Vec<u128> = (0..len)
                .map(|k| match next(6) {
                    0 => u128::from(next(40) as u32) + 1000,
                    1 if k > 0 => 2000,
                    _ => k as u128 + 100 * u128::from(next(3) as u32),
                })
                .collect();
            all.push(blocks);
            times.push(t);
        }
        let reqs: Vec<SimRequest<'_>> = all
            .iter()
            .zip(&times)
            .map(|(b, &t)| req(t, b, b.len() * 3 - 1))
            .collect();
        let many = simulate_many(&reqs, 3, &ttls);
        assert_eq!(many.len(), ttls.len());
        for (sim, &ttl) in many.iter().zip(&ttls) {
            assert_eq!(*sim, simulate_one(&reqs, 3, ttl), "ttl {ttl:?}");
        }
        // Out of time order (the working set then sorts its events): still equal.
        let mut shuffled = reqs.clone();
        shuffled.swap(3, 250);
        shuffled.swap(17, 399);
        for (sim, &ttl) in simulate_many(&shuffled, 3, &ttls).iter().zip(&ttls) {
            assert_eq!(*sim, simulate_one(&shuffled, 3, ttl), "ttl {ttl:?}");
        }
        // The TTLs made a difference: the shortest cache hits least.
        assert!(many[5].read_tokens < many[3].read_tokens);
        assert!(many[3].read_tokens <= many[1].read_tokens);
        assert!(many[1].working_set.len() > 1);
    }

    #[test]
    fn interleaved_growing_conversations_equal_one_ttl_at_a_time() {
        // Conversations that grow a few blocks per request, taking turns at random (more
        // of them than the recent requests kept), some starting with another's first block
        // (a sub-agent with its parent's prefix), now and then one block rewritten.
        let mut next = below(11);
        let mut convs: Vec<Vec<u128>> = (0..7u128)
            .map(|c| vec![if c % 3 == 0 { 1 } else { 10 + c }, 100 + c])
            .collect();
        let (mut all, mut times, mut t) = (Vec::new(), Vec::new(), 0.0);
        for step in 0..600u128 {
            let c = next(convs.len() as u64) as usize;
            for _ in 0..1 + next(3) {
                let fresh = 1_000 + step * 10 + next(10) as u128;
                convs[c].push(fresh);
            }
            if next(8) == 0 {
                let at = next(convs[c].len() as u64) as usize;
                convs[c][at] = 5_000_000 + step;
            }
            t += [0.5, 5.0, 30.0, 400.0][next(4) as usize];
            all.push(convs[c].clone());
            times.push(t);
        }
        let reqs: Vec<SimRequest<'_>> = all
            .iter()
            .zip(&times)
            .map(|(b, &t)| req(t, b, b.len() * 3))
            .collect();
        let ttls = [Some(10.0), Some(300.0), None];
        let many = simulate_many(&reqs, 3, &ttls);
        for (sim, &ttl) in many.iter().zip(&ttls) {
            assert_eq!(*sim, simulate_one(&reqs, 3, ttl), "ttl {ttl:?}");
        }
        assert!(many[2].read_tokens > many[0].read_tokens);
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
