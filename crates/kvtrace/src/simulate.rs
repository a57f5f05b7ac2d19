//! Cache simulation over trace hash ids (spec §6).
//!
//! The model of validate-trace-cache and trace-stats: a block hits when its id was used
//! before (infinite cache) or within the last `ttl` seconds (every use, hit or miss,
//! refreshes it; a use exactly `ttl` seconds after the previous one still hits). In
//! global scope, sub-agent requests join the parent timeline at their entry's `t` plus
//! their own `t`; a parent request goes first on equal times, sub-agents keep entry order.

use rustc_hash::FxHashMap;

use crate::trace::read::{Item, Trace, TraceRequest};

/// Hits and blocks of a simulation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimResult {
    pub hits: u64,
    pub blocks: u64,
}

impl SimResult {
    /// Hit rate in percent (0 when there are no blocks).
    pub fn rate(&self) -> f64 {
        if self.blocks == 0 {
            0.0
        } else {
            100.0 * self.hits as f64 / self.blocks as f64
        }
    }
}

/// A request placed on the trace's timeline.
#[derive(Debug, Clone, Copy)]
pub struct Placed<'a> {
    pub time: f64,
    pub request: &'a TraceRequest,
    /// `None` for a parent request, else the index of its sub-agent entry.
    pub subagent: Option<usize>,
}

/// The requests a simulation covers, in time order: parents only, or (global scope)
/// parents and sub-agent requests flattened.
pub fn timeline(trace: &Trace, flatten_subagents: bool) -> Vec<Placed<'_>> {
    let mut out: Vec<(f64, u8, usize, usize, Placed<'_>)> = Vec::new();
    let mut sub_index = 0;
    for (pos, item) in trace.items.iter().enumerate() {
        match item {
            Item::Request(r) => out.push((
                r.t,
                0,
                pos,
                0,
                Placed {
                    time: r.t,
                    request: r,
                    subagent: None,
                },
            )),
            Item::Subagent(s) => {
                if flatten_subagents {
                    for (j, r) in s.requests.iter().enumerate() {
                        let time = s.t + r.t;
                        out.push((
                            time,
                            1,
                            pos,
                            j,
                            Placed {
                                time,
                                request: r,
                                subagent: Some(sub_index),
                            },
                        ));
                    }
                }
                sub_index += 1;
            }
        }
    }
    out.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
            .then(a.3.cmp(&b.3))
    });
    out.into_iter().map(|x| x.4).collect()
}

/// Whether validation flattens sub-agents: only hash ids of one id space can be compared,
/// and both scopes put a conversation and its sub-agents in one space (other, unknown
/// scopes simulate the parent alone).
pub fn flattens(trace: &Trace) -> bool {
    trace.scope == "global" || trace.scope == "local"
}

/// Simulate a cache over placed requests. `warm` blocks of the first request count as
/// already cached (the API's cross-session cache of the shared prefix).
pub fn simulate(placed: &[Placed<'_>], ttl: Option<f64>, warm: usize) -> SimResult {
    let mut last_use: FxHashMap<u64, f64> = FxHashMap::default();
    let mut res = SimResult::default();
    for (n, p) in placed.iter().enumerate() {
        for (k, &id) in p.request.hash_ids.iter().enumerate() {
            let cached = match (last_use.get(&id), ttl) {
                (Some(_), None) => true,
                (Some(&t0), Some(ttl)) => p.time - t0 <= ttl,
                (None, _) => false,
            };
            let warm_hit = n == 0 && k < warm;
            res.blocks += 1;
            if cached || warm_hit {
                res.hits += 1;
            }
            last_use.insert(id, p.time);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(t: f64, ids: &[u64]) -> TraceRequest {
        TraceRequest::example(t, 0, 0, ids)
    }

    fn placed(reqs: &[TraceRequest]) -> Vec<Placed<'_>> {
        reqs.iter()
            .map(|r| Placed {
                time: r.t,
                request: r,
                subagent: None,
            })
            .collect()
    }

    #[test]
    fn ttl_boundary_and_refresh() {
        let reqs = [
            req(0.0, &[1, 2]),
            req(300.0, &[1]),
            req(600.0, &[1, 2]),
            req(900.1, &[1]),
        ];
        let p = placed(&reqs);
        // Infinite: everything after first sight hits.
        assert_eq!(simulate(&p, None, 0), SimResult { hits: 4, blocks: 6 });
        // TTL 300: id 1 at 300 (exactly TTL) hits and refreshes, so it hits at 600;
        // id 2 idle for 600 s misses; id 1 at 900.1 is 300.1 s after its last use: miss.
        assert_eq!(
            simulate(&p, Some(300.0), 0),
            SimResult { hits: 2, blocks: 6 }
        );
    }

    #[test]
    fn warm_prefix_counts_first_blocks() {
        let reqs = [req(0.0, &[1, 2, 3]), req(1.0, &[1, 2, 3, 4])];
        assert_eq!(
            simulate(&placed(&reqs), None, 2),
            SimResult { hits: 5, blocks: 7 }
        );
    }
}
