//! The token-usage and prompt-cache model of one API call: how much of the context is read
//! from the cache (the actor's own prefix while it is warm, a sub-agent sibling's or another
//! session's shared tools+system prefix), how much is written, the output size, and the
//! latencies (time to first token, response time) that follow from them.

use super::actor::Actor;
use super::Conv;
use crate::model::{Block, Usage};
use rand::Rng;

/// How long the API keeps a cached prefix.
const CACHE_TTL_MS: i64 = 5 * 60 * 1000;

/// Usage and latencies of one reply.
pub(super) struct Metered {
    pub(super) u: Usage,
    /// Time to first token (ms).
    pub(super) ttft: u64,
    /// Response time (ms).
    pub(super) rt: u64,
}

impl<'a> Conv<'a> {
    /// Meter actor `a`'s request sent now with a context of `total_in` tokens and answered
    /// with `blocks`; updates the actor's (and the sub-agents' shared) cache state.
    pub(super) fn meter(&mut self, a: &mut Actor, total_in: u64, blocks: &[Block]) -> Metered {
        let req_ms = a.now;
        let input = self.rng.gen_range(1..=9u64).min(total_in);
        let warm = a.last_req >= 0 && req_ms - a.last_req <= CACHE_TTL_MS;
        let prefix = a.tools.tokens + a.system_tokens;
        let read = if warm {
            a.cached_prefix.min(total_in - input)
        } else if a.sub
            && self
                .sub_warm_at
                .is_some_and(|t| req_ms > t + 1000 && req_ms - t < CACHE_TTL_MS)
        {
            prefix.min(total_in - input)
        } else if !a.sub && a.last_req >= 0 && self.rng.gen_bool(0.3) {
            // The shared tools+system prefix is often still warm from another session.
            prefix.min(total_in - input)
        } else {
            0
        };
        let create = total_in - input - read;
        a.cached_prefix = total_in - input;
        a.last_req = req_ms;
        if a.sub && self.sub_warm_at.is_none() {
            self.sub_warm_at = Some(req_ms);
        }
        let out_bytes: usize = blocks.iter().map(|b| b.content_len()).sum();
        let output = (out_bytes as u64 / 4 + self.rng.gen_range(5..40)).max(1);
        let u = Usage {
            input,
            cache_creation: create,
            cache_read: read,
            output,
        };
        let ttft = 400 + self.rng.gen_range(0..1500) + total_in / 120;
        let rt = ttft + output * self.rng.gen_range(6..20);
        Metered { u, ttft, rt }
    }

    /// The old proxy's non-streaming replay of a call metered as `first`: the same request
    /// moments later, so everything the first one wrote to the cache is read back.
    pub(super) fn meter_replay(&mut self, first: &Usage) -> Metered {
        let u = Usage {
            input: first.input,
            cache_creation: 0,
            cache_read: first.cache_read + first.cache_creation,
            output: first.output,
        };
        let ttft = 300 + self.rng.gen_range(0..800);
        let rt = ttft + u.output * self.rng.gen_range(6..20);
        Metered { u, ttft, rt }
    }
}
