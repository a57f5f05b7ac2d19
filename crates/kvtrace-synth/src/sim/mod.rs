//! Simulation of one Claude Code conversation: the parent agent, its sub-agents, the proxy
//! rows every API call leaves in requests.db (spec §2) and the session logs (spec §3).
//!
//! A conversation is a sequence of user turns; each turn is an agentic loop of API calls
//! (tool_use → tool_result → …) ending with a text answer. Contexts only grow by appending,
//! except at a compaction, where the context is replaced by a summary. Sub-agents are
//! spawned several at once by one assistant message and run interleaved in time; their rows
//! are buffered and merged by time before they are emitted, so rows leave this module in
//! request-time order and one conversation never needs more memory than its own context.
//!
//! This file holds the public plan/stats types, the [`Conv`] state and its driver
//! ([`Conv::run`]); the pieces it drives live in the submodules:
//!
//! | module | holds |
//! |---|---|
//! | `identity` | [`Conv::new`]: the per-conversation draws (session, CLI version, project, quirks) |
//! | `actor` | [`Shared`] prompts/tools and the `Actor` (parent or sub-agent) context |
//! | `turn` | one user turn and its agentic loop of steps |
//! | `tools` | tool calls (one generator per tool) and the delivery of their results |
//! | `subagent` | fan-outs and the sub-agents they run |
//! | `compaction` | replacing a full context by a summary |
//! | `api_call` | one API call: proxy rows for fixed/old proxies and the assistant log lines |
//! | `usage` | the token usage and prompt-cache model, with latencies |
//! | `request` / `response` | request bodies and response envelopes as the proxy stores them |
//! | `unrelated` | rows no session log references (quota checks, titles, summaries) |
//! | `rows` | [`Row`] and the time-ordered row buffer |
//! | `log` | the session-log (JSONL) writer |
//! | `draws` | shared random shapes: log-normal, log-uniform sizes, pauses |

mod actor;
mod api_call;
mod compaction;
mod draws;
mod identity;
mod log;
mod request;
mod response;
mod rows;
mod subagent;
mod tools;
mod turn;
mod unrelated;
mod usage;

pub use actor::Shared;
pub(crate) use draws::lognormal;
pub use rows::Row;

use crate::clock::StampStyle;
use crate::ids::{uuid, IdGen, SynthRng};
use crate::json::{quoted, Dialect};
use crate::text;
use crate::SynthError;
use log::Log;
use rand::Rng;
use std::path::PathBuf;
use turn::FanoutBudget;

/// Parent models.
pub const OPUS: &str = "claude-opus-4-6";
/// Parent models.
pub const SONNET: &str = "claude-sonnet-4-5-20250929";
/// Sub-agent and utility model.
pub const HAIKU: &str = "claude-haiku-4-5-20251001";

/// A fan-out forced at a given parent request (used by the example preset).
#[derive(Clone, Debug)]
pub struct ForcedFanout {
    /// 0-based index of the parent request whose reply spawns the agents.
    pub at_request: usize,
    /// How many agents.
    pub count: usize,
    /// `subagent_type`
    pub kind: &'static str,
    /// Requests per agent.
    pub requests: usize,
}

/// What one conversation should look like.
#[derive(Clone, Debug)]
pub struct ConvPlan {
    /// Parent API calls (sub-agents come on top).
    pub target_requests: usize,
    /// Compact when the context exceeds this many tokens.
    pub max_context_tokens: u64,
    /// Old proxy: a streaming request plus a non-streaming replay per call.
    pub old_proxy: bool,
    /// Forced fan-out, if any.
    pub forced_fanout: Option<ForcedFanout>,
    /// Allow random fan-outs.
    pub random_fanout: bool,
    /// Emit rows that no session log references (quota checks, titles, summaries).
    pub unrelated: bool,
    /// Emit odd rows (errors, NULL responses, string bodies, forks' ttft).
    pub oddities: bool,
    /// Force the parent model (else opus or sonnet at random).
    pub parent_model: Option<&'static str>,
    /// Multiplier of tool-result sizes (1.0 = default).
    pub content_scale: f64,
    /// Sub-agent file layout: None = drawn per conversation; Some(0) older (beside the
    /// parent), Some(1) newer (`<session>/subagents/`), Some(2) alternating.
    pub layout: Option<u8>,
}

/// Counts for one conversation.
#[derive(Clone, Debug, Default)]
pub struct ConvStats {
    /// API calls referenced by the session logs (parent + sub-agents).
    pub requests: u64,
    /// Rows emitted.
    pub rows: u64,
    /// Sub-agents spawned.
    pub subagents: u64,
    /// JSONL files written.
    pub jsonl_files: u64,
    /// JSONL bytes written.
    pub jsonl_bytes: u64,
    /// Largest context seen (≈ tokens).
    pub max_context_tokens: u64,
    /// Compactions.
    pub compactions: u64,
    /// Time of the last event (ms since epoch).
    pub end_ms: i64,
}

/// One conversation being generated.
pub struct Conv<'a> {
    shared: &'a Shared,
    plan: ConvPlan,
    rng: SynthRng,
    ids: IdGen,
    dir: PathBuf,
    /// Who is talking (session, version, tool names, folder, headers).
    who: identity::Identity,
    style: StampStyle,
    offset_min: i32,
    timing_header: u8,
    fork_ttft: bool,
    string_bodies: f64,
    layout: u8,
    pending: Vec<Row>,
    seq: u64,
    sub_warm_at: Option<i64>,
    stats: ConvStats,
}

impl<'a> Conv<'a> {
    /// The session id (parent file stem).
    pub fn session_id(&self) -> &str {
        &self.who.session
    }

    /// Generate the whole conversation starting at `start_ms`, emitting rows in time order.
    pub fn run(
        mut self,
        start_ms: i64,
        emit: &mut dyn FnMut(Row) -> Result<(), SynthError>,
    ) -> Result<ConvStats, SynthError> {
        let log = self.open_parent_log()?;
        let model =
            self.plan
                .parent_model
                .unwrap_or(if self.rng.gen_bool(0.6) { OPUS } else { SONNET });
        let mut a = self.new_actor(model, false, log, start_ms);
        if self.plan.unrelated && self.rng.gen_bool(0.5) {
            self.quota_check(start_ms);
        }
        let target = self.plan.target_requests.max(1);
        let mut budget = FanoutBudget::default();
        let mut first = true;
        while (a.requests as usize) < target {
            let mut carry = None;
            if !first {
                a.now += self.pause();
                if a.context_tokens() > self.plan.max_context_tokens {
                    carry = Some(self.compact(&mut a)?);
                }
            }
            self.user_turn(&mut a, first, carry)?;
            first = false;
            self.agent_loop(&mut a, target, &mut budget, emit)?;
        }
        self.flush(emit)?;
        self.stats.end_ms = a.now;
        self.stats.jsonl_bytes += a.log.bytes;
        a.log.finish()?;
        Ok(self.stats)
    }

    /// Create the parent's session log, sometimes opening with a `summary` line.
    fn open_parent_log(&mut self) -> Result<Log, SynthError> {
        let path = self.dir.join(format!("{}.jsonl", self.who.session));
        let mut log = Log::create(&path, self.common(false), None)?;
        self.stats.jsonl_files += 1;
        if self.rng.gen_bool(0.25) {
            let leaf = uuid(&mut self.rng);
            let s = format!(
                "{{\"type\":\"summary\",\"summary\":{},\"leafUuid\":\"{leaf}\"}}",
                quoted(&text::prose(&mut self.rng, 50, 0.1), Dialect::Js)
            );
            log.raw(s.trim_end())?;
        }
        Ok(log)
    }
}
