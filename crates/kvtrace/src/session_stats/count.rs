//! Counting one stream of log entries: the running state behind [`super::Metrics`].
//!
//! Every line is classified on its own (entry type, user-entry kind, tool results);
//! responses are keyed by `message.id` because one API response is written as several
//! lines, and its last reported usage and stop reason win. What needs a whole file
//! (inline sub-agents, the cache phases of the file's own chain, compactions) is settled
//! in [`Accumulator::finish`].

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::{
    activity, CacheOverTime, Compaction, Metrics, TokenUsage, BUILDING_FRACTION, NONE_KEY,
};
use crate::stamp::Stamp;

/// The prompt Claude Code sends its warm-up sub-agents (2.0.x) to fill the cache.
pub const WARMUP_PROMPT: &str = "Warmup";

/// What one `user` entry is. The first rule that matches wins, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKind {
    /// `content` holds at least one `tool_result` block.
    ToolResult,
    /// `isMeta: true`: text Claude Code adds (caveats, reminders, skill bodies).
    Meta,
    /// `isCompactSummary: true`: the summary that opens the conversation after a compaction.
    CompactSummary,
    /// Neither string content nor a text block (an image alone, an empty list).
    NoText,
    /// A slash command's wrapper (`<command-name>` in the text).
    Command,
    /// `<local-command-stdout>`, `-stderr>` or `-caveat>`: output of a local command.
    LocalCommandOutput,
    /// `[Request interrupted …`: the marker written when the user pressed Esc.
    Interrupt,
    /// `<bash-input>`, `<bash-stdout>`, `<bash-stderr>`: bash mode (`!`) lines.
    BashMode,
    /// `<task-notification>`: a background agent or task reporting back.
    TaskNotification,
    /// Anything else: on the main chain a typed prompt, on a sidechain the task a parent
    /// gave its sub-agent (or the warm-up prompt).
    Prompt,
}

/// The kind of a `user` entry and, for a prompt, its text.
pub fn user_kind(entry: &Map<String, Value>) -> (UserKind, Option<String>) {
    let content = entry
        .get("message")
        .and_then(Value::as_object)
        .and_then(|m| m.get("content"));
    let blocks = content.and_then(Value::as_array);
    if blocks.is_some_and(|b| b.iter().any(|b| block_type(b) == Some("tool_result"))) {
        return (UserKind::ToolResult, None);
    }
    if entry.get("isMeta") == Some(&Value::Bool(true)) {
        return (UserKind::Meta, None);
    }
    if entry.get("isCompactSummary") == Some(&Value::Bool(true)) {
        return (UserKind::CompactSummary, None);
    }
    let text = match (content, blocks) {
        (Some(Value::String(s)), _) => s.clone(),
        (_, Some(blocks)) => {
            let parts: Vec<&str> = blocks
                .iter()
                .filter(|b| block_type(b) == Some("text"))
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            if parts.is_empty() {
                return (UserKind::NoText, None);
            }
            parts.join("\n")
        }
        _ => return (UserKind::NoText, None),
    };
    let t = text.trim_start();
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| t.starts_with(p));
    let kind = if t.contains("<command-name>") {
        UserKind::Command
    } else if starts(&[
        "<local-command-stdout>",
        "<local-command-stderr>",
        "<local-command-caveat>",
    ]) {
        UserKind::LocalCommandOutput
    } else if starts(&["[Request interrupted"]) {
        UserKind::Interrupt
    } else if starts(&["<bash-input>", "<bash-stdout>", "<bash-stderr>"]) {
        UserKind::BashMode
    } else if starts(&["<task-notification>"]) {
        UserKind::TaskNotification
    } else {
        return (UserKind::Prompt, Some(text));
    };
    (kind, None)
}

fn block_type(b: &Value) -> Option<&str> {
    b.get("type").and_then(Value::as_str)
}

/// What is remembered of one response while its lines are read.
#[derive(Debug, Default)]
struct ResponseState {
    model: Option<String>,
    thinking: bool,
    tool_use: bool,
    usage: Option<TokenUsage>,
    split: bool,
    stop_reason: Option<String>,
    sidechain: bool,
}

/// A `compact_boundary` line and the responses on either side of it (indexes into
/// the responses in first-seen order).
#[derive(Debug)]
struct Boundary {
    stamp: Option<Stamp>,
    trigger: Option<String>,
    pre_tokens: Option<u64>,
    before: Option<usize>,
    after: Option<usize>,
}

/// Running counts over a stream of entries.
#[derive(Debug, Default)]
pub struct Accumulator {
    m: Metrics,
    responses: Vec<ResponseState>,
    response_pos: HashMap<String, usize>,
    tool_ids: HashSet<String>,
    /// Every entry's timestamp, for the activity figures.
    pub stamps: Vec<Stamp>,
    /// User/assistant entries of the main chain (not `isSidechain`).
    main_turns: u64,
    /// Sidechain user entries with no parent: the first entry of each sidechain.
    side_roots: u64,
    boundaries: Vec<Boundary>,
    /// The first prompt of the stream, when it came on a sidechain (a sub-agent's task).
    pub first_side_prompt: Option<String>,
    title_rank: u8,
    /// Ids of agents launched in the background (`toolUseResult.status: async_launched`).
    pub background_ids: Vec<String>,
}

impl Accumulator {
    pub fn bad_line(&mut self) {
        self.m.lines += 1;
        self.m.unparseable_lines += 1;
    }

    pub fn entry(&mut self, e: &Map<String, Value>) {
        self.m.lines += 1;
        self.m.events += 1;
        let ty = e.get("type").and_then(Value::as_str);
        *self
            .m
            .events_by_type
            .entry(ty.unwrap_or(NONE_KEY).to_owned())
            .or_default() += 1;
        if e.get("isApiErrorMessage") == Some(&Value::Bool(true)) {
            self.m.api_error_entries += 1;
        }
        match ty {
            Some("ai-title") => self.title(e, "aiTitle", 2),
            Some("summary") => self.title(e, "summary", 1),
            _ => {}
        }
        let stamp = e
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(Stamp::parse);
        self.stamps.extend(stamp);
        let sidechain = e.get("isSidechain") == Some(&Value::Bool(true));
        let message = e.get("message").and_then(Value::as_object);
        if matches!(ty, Some("user" | "assistant")) {
            if sidechain {
                let root = e.get("parentUuid").is_none_or(Value::is_null);
                self.side_roots += u64::from(ty == Some("user") && root);
            } else {
                self.main_turns += 1;
            }
        }
        match ty {
            Some("user") => self.user(e, sidechain),
            Some("assistant") => self.assistant(message, sidechain),
            Some("system")
                if e.get("subtype").and_then(Value::as_str) == Some("compact_boundary") =>
            {
                let meta = e.get("compactMetadata");
                self.boundaries.push(Boundary {
                    stamp,
                    trigger: meta
                        .and_then(|m| m.get("trigger"))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    pre_tokens: meta
                        .and_then(|m| m.get("preTokens"))
                        .and_then(Value::as_u64),
                    before: self.own_responses().last(),
                    after: None,
                });
            }
            // 2.1.x delivers a background agent's report as a queued command.
            Some("queue-operation")
                if e.get("operation").and_then(Value::as_str) == Some("enqueue")
                    && e.get("content")
                        .and_then(Value::as_str)
                        .is_some_and(|c| c.trim_start().starts_with("<task-notification>")) =>
            {
                self.m.user.queued_task_notifications += 1;
            }
            _ => {}
        }
    }

    /// Keep the latest title of the best source: `ai-title` entries (rank 2) over
    /// `summary` entries (rank 1).
    fn title(&mut self, e: &Map<String, Value>, key: &str, rank: u8) {
        if let Some(t) = e.get(key).and_then(Value::as_str) {
            if rank >= self.title_rank {
                self.title_rank = rank;
                self.m.title = Some(t.to_owned());
            }
        }
    }

    /// Positions of the responses of the stream's own chain (sidechain responses of a
    /// file with main-chain turns belong to inline sub-agents).
    fn own_responses(&self) -> impl Iterator<Item = usize> + '_ {
        let inline = self.main_turns > 0;
        (0..self.responses.len()).filter(move |&i| !(inline && self.responses[i].sidechain))
    }

    fn user(&mut self, e: &Map<String, Value>, sidechain: bool) {
        let (kind, text) = user_kind(e);
        let u = &mut self.m.user;
        match kind {
            UserKind::ToolResult => u.tool_results += 1,
            UserKind::Meta => u.meta += 1,
            UserKind::CompactSummary => u.compact_summaries += 1,
            UserKind::NoText => u.no_text += 1,
            UserKind::Command => u.commands += 1,
            UserKind::LocalCommandOutput => u.local_command_outputs += 1,
            UserKind::Interrupt => u.interrupts += 1,
            UserKind::BashMode => u.bash_mode += 1,
            UserKind::TaskNotification => u.task_notifications += 1,
            UserKind::Prompt if !sidechain => u.typed_prompts += 1,
            UserKind::Prompt => {
                let text = text.unwrap_or_default();
                if text.trim() == WARMUP_PROMPT {
                    u.warmup_prompts += 1;
                } else {
                    u.subagent_prompts += 1;
                }
                if self.first_side_prompt.is_none() && self.main_turns == 0 {
                    self.first_side_prompt = Some(text);
                }
            }
        }
        if let Some(Value::Array(blocks)) = e
            .get("message")
            .and_then(Value::as_object)
            .and_then(|m| m.get("content"))
        {
            for b in blocks
                .iter()
                .filter(|b| block_type(b) == Some("tool_result"))
            {
                self.m.tool_results += 1;
                self.m.tool_errors += u64::from(b.get("is_error") == Some(&Value::Bool(true)));
            }
        }
        let result = e.get("toolUseResult");
        if result.and_then(|r| r.get("status")).and_then(Value::as_str) == Some("async_launched") {
            self.m.background_agents += 1;
            if let Some(id) = result
                .and_then(|r| r.get("agentId"))
                .and_then(Value::as_str)
            {
                self.background_ids.push(id.to_owned());
            }
        }
    }

    fn assistant(&mut self, message: Option<&Map<String, Value>>, sidechain: bool) {
        self.m.assistant_lines += 1;
        let Some(msg) = message else { return };
        let blocks: &[Value] = match msg.get("content") {
            Some(Value::Array(b)) => b,
            _ => &[],
        };
        // Tool calls are counted once per tool_use id, even when a response's lines
        // repeat blocks; blocks without an id are counted each time.
        for b in blocks {
            if !matches!(block_type(b), Some("tool_use" | "server_tool_use")) {
                continue;
            }
            if let Some(id) = b.get("id").and_then(Value::as_str) {
                if !self.tool_ids.insert(id.to_owned()) {
                    continue;
                }
            }
            let name = b.get("name").and_then(Value::as_str).unwrap_or(NONE_KEY);
            self.m.tool_calls += 1;
            *self
                .m
                .tool_calls_by_name
                .entry(name.to_owned())
                .or_default() += 1;
            if matches!(name, "Task" | "Agent") {
                let kind = b
                    .pointer("/input/subagent_type")
                    .and_then(Value::as_str)
                    .unwrap_or(NONE_KEY);
                self.m.subagents_spawned += 1;
                *self.m.subagents_by_type.entry(kind.to_owned()).or_default() += 1;
            }
        }
        let Some(id) = msg
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            return;
        };
        let pos = match self.response_pos.get(id) {
            Some(&p) => p,
            None => {
                self.response_pos
                    .insert(id.to_owned(), self.responses.len());
                self.responses.push(ResponseState {
                    sidechain,
                    ..ResponseState::default()
                });
                let pos = self.responses.len() - 1;
                let own = !(self.main_turns > 0 && sidechain);
                if own {
                    for b in self.boundaries.iter_mut().filter(|b| b.after.is_none()) {
                        b.after = Some(pos);
                    }
                }
                pos
            }
        };
        let r = &mut self.responses[pos];
        if r.model.is_none() {
            r.model = msg.get("model").and_then(Value::as_str).map(str::to_owned);
        }
        for b in blocks {
            match block_type(b) {
                Some("thinking" | "redacted_thinking") => r.thinking = true,
                Some("tool_use" | "server_tool_use") => r.tool_use = true,
                _ => {}
            }
        }
        // The API streams usage and stop_reason; the last line that has them wins.
        if let Some(Value::Object(u)) = msg.get("usage") {
            r.usage = Some(TokenUsage::from_value(u));
            r.split = u.get("cache_creation").is_some_and(Value::is_object);
        }
        if let Some(s) = msg.get("stop_reason").and_then(Value::as_str) {
            r.stop_reason = Some(s.to_owned());
        }
    }

    /// The final metrics and the compactions. `per_file` is false for the total, whose
    /// per-file notions (inline sub-agents, cache phases, compactions) are summed by the
    /// caller instead.
    pub fn finish(self, pause_s: f64) -> (Metrics, Vec<Compaction>) {
        let own: Vec<usize> = self.own_responses().collect();
        let mut m = self.m;
        let n = self.responses.len() as u64;
        m.assistant_responses = n;
        for r in &self.responses {
            let model = r.model.as_deref().unwrap_or(NONE_KEY);
            *m.responses_by_model.entry(model.to_owned()).or_default() += 1;
            m.usage_by_model
                .entry(model.to_owned())
                .or_default()
                .add(&r.usage.unwrap_or_default());
            m.responses_with_thinking += u64::from(r.thinking);
            m.responses_with_tool_use += u64::from(r.tool_use);
            m.responses_with_cache_creation_split += u64::from(r.split);
            m.usage.add(&r.usage.unwrap_or_default());
            match &r.stop_reason {
                Some(s) => *m.stop_reasons.entry(s.clone()).or_default() += 1,
                None => m.responses_without_stop_reason += 1,
            }
        }
        let share = |k: u64| (n > 0).then(|| k as f64 / n as f64);
        m.thinking_share = share(m.responses_with_thinking);
        m.tool_use_share = share(m.responses_with_tool_use);
        m.tool_error_share =
            (m.tool_results > 0).then(|| m.tool_errors as f64 / m.tool_results as f64);
        m.cache_read_over_time = phases(own.iter().map(|&i| &self.responses[i]));
        if self.main_turns > 0 {
            m.inline_subagents = self.side_roots;
            for r in self.responses.iter().filter(|r| r.sidechain) {
                m.inline_subagent_responses += 1;
                m.inline_subagent_usage.add(&r.usage.unwrap_or_default());
            }
        }
        let share_of = |i: Option<usize>| {
            i.and_then(|i| self.responses[i].usage)
                .and_then(|u| u.cache_read_share())
        };
        let compactions: Vec<Compaction> = self
            .boundaries
            .iter()
            .map(|b| Compaction {
                timestamp: b.stamp.map(|s| s.isoformat()),
                trigger: b.trigger.clone(),
                pre_tokens: b.pre_tokens,
                cache_read_share_before: share_of(b.before),
                cache_read_share_after: share_of(b.after),
            })
            .collect();
        m.compactions = compactions.len() as u64;
        m.activity = activity(self.stamps, pause_s);
        (m, compactions)
    }
}

/// The cache-read share of the first 10% of responses (at least one) and of the rest.
fn phases<'a>(responses: impl ExactSizeIterator<Item = &'a ResponseState>) -> CacheOverTime {
    let n = responses.len() as u64;
    let building_n = if n == 0 {
        0
    } else {
        ((n as f64 * BUILDING_FRACTION).ceil() as u64).max(1)
    };
    let mut over_time = CacheOverTime::default();
    for (i, r) in responses.enumerate() {
        let phase = if (i as u64) < building_n {
            &mut over_time.building
        } else {
            &mut over_time.reuse
        };
        phase.add(1, &r.usage.unwrap_or_default());
    }
    over_time
}
