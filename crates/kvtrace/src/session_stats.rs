//! session-stats: what happened in Claude Code sessions, read from their JSONL logs
//! (the log format is spec §3).
//!
//! Per file and in total: entries by type, user prompts vs tool results, assistant
//! responses (distinct `message.id`; one response is often several lines), models,
//! thinking and tool-use shares, tool calls by name, sub-agents spawned by type (tool_use
//! blocks named `Task` or `Agent`), duration, token usage and how the cache-read share
//! grows from the first responses ("cache building") to the rest ("cache reuse"), and
//! stop reasons. Files are streamed line by line; lines that are not JSON objects
//! (truncated, invalid UTF-8, debris) are counted, never fatal (spec §3, §7).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use crate::report::table::{Cell, Table};
use crate::report::units::group_thousands;
use crate::stamp::Stamp;

/// Why the inputs cannot be used at all (a bad line is counted instead).
#[derive(Debug, Error)]
pub enum SessionStatsError {
    #[error("no session files given")]
    NoPaths,
    #[error("{0}: no such file or directory")]
    Missing(PathBuf),
    #[error("{0}: no *.jsonl files below this directory")]
    NoFiles(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Share of responses, in first-seen order, that count as the cache-building phase.
pub const BUILDING_FRACTION: f64 = 0.10;

/// Key used in `stop_reasons` for responses whose lines never carry a stop reason,
/// in `events_by_type` for entries without a `type`, and in `subagents_by_type` for
/// spawns without a `subagent_type`.
pub const NONE_KEY: &str = "(none)";

/// Token usage summed over distinct responses (each response's last reported usage).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
    pub cache_creation: u64,
    pub cache_read: u64,
}

impl TokenUsage {
    fn from_value(u: &serde_json::Map<String, Value>) -> TokenUsage {
        let int = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
        TokenUsage {
            input: int("input_tokens"),
            output: int("output_tokens"),
            cache_creation: int("cache_creation_input_tokens"),
            cache_read: int("cache_read_input_tokens"),
        }
    }

    fn add(&mut self, o: &TokenUsage) {
        self.input += o.input;
        self.output += o.output;
        self.cache_creation += o.cache_creation;
        self.cache_read += o.cache_read;
    }

    /// Cache reads over all prompt tokens (uncached input + cache writes + cache reads).
    pub fn cache_read_share(&self) -> Option<f64> {
        let prompt = self.input + self.cache_creation + self.cache_read;
        (prompt > 0).then(|| self.cache_read as f64 / prompt as f64)
    }
}

/// Prompt tokens of one phase of a session and the share served from the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CachePhase {
    pub responses: u64,
    pub input: u64,
    pub cache_creation: u64,
    pub cache_read: u64,
    /// `cache_read / (input + cache_creation + cache_read)`; null without prompt tokens.
    pub cache_read_share: Option<f64>,
}

impl CachePhase {
    fn add(&mut self, responses: u64, u: &TokenUsage) {
        self.responses += responses;
        self.input += u.input;
        self.cache_creation += u.cache_creation;
        self.cache_read += u.cache_read;
        self.refresh();
    }

    fn merge(&mut self, o: &CachePhase) {
        self.responses += o.responses;
        self.input += o.input;
        self.cache_creation += o.cache_creation;
        self.cache_read += o.cache_read;
        self.refresh();
    }

    fn refresh(&mut self) {
        let u = TokenUsage {
            input: self.input,
            output: 0,
            cache_creation: self.cache_creation,
            cache_read: self.cache_read,
        };
        self.cache_read_share = u.cache_read_share();
    }
}

/// The cache-read share early in a session vs later.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CacheOverTime {
    /// The first 10% of responses (at least one), in first-seen order.
    pub building: CachePhase,
    /// The remaining responses.
    pub reuse: CachePhase,
}

/// The metrics of one session file, or of all of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metrics {
    /// Non-blank lines.
    pub lines: u64,
    /// Lines that parse as JSON objects.
    pub events: u64,
    /// Non-blank lines that do not (bad JSON, not an object, invalid UTF-8).
    pub unparseable_lines: u64,
    pub events_by_type: BTreeMap<String, u64>,
    /// `user` entries typed by a person (string content, or text/image blocks).
    pub user_prompts: u64,
    /// `user` entries carrying `tool_result` blocks.
    pub user_tool_results: u64,
    /// `user` entries that are neither.
    pub user_other: u64,
    /// Distinct `message.id` of `assistant` entries.
    pub assistant_responses: u64,
    /// `assistant` entries (lines).
    pub assistant_lines: u64,
    /// Distinct responses per model (the model of a response's first line).
    pub responses_by_model: BTreeMap<String, u64>,
    pub responses_with_thinking: u64,
    pub thinking_share: Option<f64>,
    pub responses_with_tool_use: u64,
    pub tool_use_share: Option<f64>,
    /// Distinct tool_use ids.
    pub tool_calls: u64,
    pub tool_calls_by_name: BTreeMap<String, u64>,
    /// Distinct `Task`/`Agent` tool_use blocks.
    pub subagents_spawned: u64,
    pub subagents_by_type: BTreeMap<String, u64>,
    /// Sub-agents written inline in a session file (Claude Code 1.0.x): chains of
    /// `"isSidechain": true` entries in a file that also has main-chain turns. Their
    /// responses are also counted in the figures above.
    pub inline_subagents: u64,
    /// Distinct responses of those inline sub-agents.
    pub inline_subagent_responses: u64,
    pub first_timestamp: Option<String>,
    pub last_timestamp: Option<String>,
    /// Last − first timestamp in seconds; null without timestamps.
    pub duration_s: Option<f64>,
    pub usage: TokenUsage,
    pub cache_read_over_time: CacheOverTime,
    /// Distinct responses per final stop reason.
    pub stop_reasons: BTreeMap<String, u64>,
}

/// One input file and its metrics.
#[derive(Debug, Clone, Serialize)]
pub struct SessionStats {
    pub file: String,
    /// A sub-agent log: named `agent-*.jsonl` or under a `subagents/` directory.
    pub subagent: bool,
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// All files together. Distinct counts are distinct across files; the cache phases
/// sum each file's phases; the duration spans the earliest to the latest timestamp.
#[derive(Debug, Clone, Serialize)]
pub struct Total {
    pub files: u64,
    pub subagent_files: u64,
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// What `session-stats` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub sessions: Vec<SessionStats>,
    pub total: Total,
    /// Files that could not be read (skipped).
    pub unreadable_files: Vec<crate::session::Unreadable>,
}

/// What is remembered of one response while its lines are read.
#[derive(Debug, Default)]
struct ResponseState {
    model: Option<String>,
    thinking: bool,
    tool_use: bool,
    usage: Option<TokenUsage>,
    stop_reason: Option<String>,
}

/// Running counts over a stream of entries.
#[derive(Debug, Default)]
struct Accumulator {
    m: Metrics,
    /// Responses in first-seen order, and their positions by id.
    responses: Vec<ResponseState>,
    response_pos: HashMap<String, usize>,
    tool_ids: HashSet<String>,
    first: Option<Stamp>,
    last: Option<Stamp>,
    /// User/assistant entries of the main chain (not `isSidechain`).
    main_turns: u64,
    /// Sidechain user entries with no parent: the first entry of each sidechain.
    side_roots: u64,
    side_responses: HashSet<String>,
}

impl Accumulator {
    fn bad_line(&mut self) {
        self.m.lines += 1;
        self.m.unparseable_lines += 1;
    }

    fn entry(&mut self, e: &serde_json::Map<String, Value>) {
        self.m.lines += 1;
        self.m.events += 1;
        let ty = e.get("type").and_then(Value::as_str);
        *self
            .m
            .events_by_type
            .entry(ty.unwrap_or(NONE_KEY).to_owned())
            .or_default() += 1;
        if let Some(t) = e
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(Stamp::parse)
        {
            if self.first.is_none_or(|f| t.micros < f.micros) {
                self.first = Some(t);
            }
            if self.last.is_none_or(|l| t.micros > l.micros) {
                self.last = Some(t);
            }
        }
        let message = e.get("message").and_then(Value::as_object);
        if matches!(ty, Some("user" | "assistant")) {
            if e.get("isSidechain") == Some(&Value::Bool(true)) {
                let root = e.get("parentUuid").is_none_or(Value::is_null);
                self.side_roots += u64::from(ty == Some("user") && root);
                if let Some(id) = message
                    .and_then(|m| m.get("id"))
                    .and_then(Value::as_str)
                    .filter(|_| ty == Some("assistant"))
                {
                    self.side_responses.insert(id.to_owned());
                }
            } else {
                self.main_turns += 1;
            }
        }
        match ty {
            Some("user") => self.user(message),
            Some("assistant") => self.assistant(message),
            _ => {}
        }
    }

    fn user(&mut self, message: Option<&serde_json::Map<String, Value>>) {
        let content = message.and_then(|m| m.get("content"));
        let block_types: Vec<&str> = match content {
            Some(Value::Array(blocks)) => blocks
                .iter()
                .filter_map(|b| b.get("type").and_then(Value::as_str))
                .collect(),
            _ => Vec::new(),
        };
        if block_types.contains(&"tool_result") {
            self.m.user_tool_results += 1;
        } else if matches!(content, Some(Value::String(_)))
            || block_types.iter().any(|t| matches!(*t, "text" | "image"))
        {
            self.m.user_prompts += 1;
        } else {
            self.m.user_other += 1;
        }
    }

    fn assistant(&mut self, message: Option<&serde_json::Map<String, Value>>) {
        self.m.assistant_lines += 1;
        let Some(msg) = message else { return };
        let blocks: &[Value] = match msg.get("content") {
            Some(Value::Array(b)) => b,
            _ => &[],
        };
        // Tool calls are counted once per tool_use id, even when a response's lines
        // repeat blocks; blocks without an id are counted each time.
        for b in blocks {
            if !matches!(
                b.get("type").and_then(Value::as_str),
                Some("tool_use" | "server_tool_use")
            ) {
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
                self.responses.push(ResponseState::default());
                self.responses.len() - 1
            }
        };
        let r = &mut self.responses[pos];
        if r.model.is_none() {
            r.model = msg.get("model").and_then(Value::as_str).map(str::to_owned);
        }
        for b in blocks {
            match b.get("type").and_then(Value::as_str) {
                Some("thinking" | "redacted_thinking") => r.thinking = true,
                Some("tool_use" | "server_tool_use") => r.tool_use = true,
                _ => {}
            }
        }
        // The API streams usage and stop_reason; the last line that has them wins.
        if let Some(Value::Object(u)) = msg.get("usage") {
            r.usage = Some(TokenUsage::from_value(u));
        }
        if let Some(s) = msg.get("stop_reason").and_then(Value::as_str) {
            r.stop_reason = Some(s.to_owned());
        }
    }

    /// The final metrics; `phases` replaces the per-file cache phases (for the total).
    fn finish(self, phases: Option<CacheOverTime>) -> Metrics {
        let mut m = self.m;
        let n = self.responses.len() as u64;
        m.assistant_responses = n;
        let building_n = if n == 0 {
            0
        } else {
            ((n as f64 * BUILDING_FRACTION).ceil() as u64).max(1)
        };
        let mut over_time = CacheOverTime::default();
        for (i, r) in self.responses.iter().enumerate() {
            let model = r.model.as_deref().unwrap_or(NONE_KEY);
            *m.responses_by_model.entry(model.to_owned()).or_default() += 1;
            m.responses_with_thinking += u64::from(r.thinking);
            m.responses_with_tool_use += u64::from(r.tool_use);
            let usage = r.usage.unwrap_or_default();
            m.usage.add(&usage);
            let phase = if (i as u64) < building_n {
                &mut over_time.building
            } else {
                &mut over_time.reuse
            };
            phase.add(1, &usage);
            let stop = r.stop_reason.as_deref().unwrap_or(NONE_KEY);
            *m.stop_reasons.entry(stop.to_owned()).or_default() += 1;
        }
        let share = |k: u64| (n > 0).then(|| k as f64 / n as f64);
        m.thinking_share = share(m.responses_with_thinking);
        m.tool_use_share = share(m.responses_with_tool_use);
        m.cache_read_over_time = phases.unwrap_or(over_time);
        if self.main_turns > 0 {
            m.inline_subagents = self.side_roots;
            m.inline_subagent_responses = self.side_responses.len() as u64;
        }
        m.first_timestamp = self.first.map(|t| t.isoformat());
        m.last_timestamp = self.last.map(|t| t.isoformat());
        m.duration_s = match (self.first, self.last) {
            (Some(f), Some(l)) => Some(l.seconds_since(&f)),
            _ => None,
        };
        m
    }
}

/// Whether a log file belongs to a sub-agent: `agent-<id>.jsonl`, in either layout (the
/// rule every tool uses, [`crate::session::dir::is_agent_file`]).
pub fn is_subagent_file(path: &Path) -> bool {
    crate::session::dir::is_agent_file(path)
}

/// The files to read: each file as given, each directory's `*.jsonl` (recursively),
/// sorted by path so a parent comes before its `<session>/subagents/` files.
pub fn session_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SessionStatsError> {
    if paths.is_empty() {
        return Err(SessionStatsError::NoPaths);
    }
    let mut files = Vec::new();
    for p in paths {
        if p.is_file() {
            files.push(p.clone());
        } else if p.is_dir() {
            let mut found = crate::session::dir::jsonl_files_below(p);
            if found.is_empty() {
                return Err(SessionStatsError::NoFiles(p.clone()));
            }
            found.sort_by_cached_key(|f| sort_key(f));
            files.extend(found);
        } else {
            return Err(SessionStatsError::Missing(p.clone()));
        }
    }
    // A file named twice (as a file and inside a folder, or by two spellings) counts once.
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(f.canonicalize().unwrap_or_else(|_| f.clone())));
    Ok(files)
}

/// Orders a parent `<id>.jsonl` before its `<id>/subagents/*.jsonl`: files sort by
/// (session path without extension, sub-agent last, path).
fn sort_key(path: &Path) -> (PathBuf, bool, PathBuf) {
    let nested = path
        .parent()
        .filter(|p| p.file_name().is_some_and(|n| n == "subagents"))
        .and_then(Path::parent);
    match nested {
        Some(session) => (session.to_owned(), true, path.to_owned()),
        None => (path.with_extension(""), false, path.to_owned()),
    }
}

/// Statistics of the session files at `paths` (files or directories).
pub fn session_stats(paths: &[PathBuf]) -> Result<Report, SessionStatsError> {
    let files = session_files(paths)?;
    let mut total = Accumulator::default();
    let mut phases = CacheOverTime::default();
    let mut sessions = Vec::with_capacity(files.len());
    let mut unreadable = Vec::new();
    for path in &files {
        // Read whole before counting, so a file that fails midway adds nothing.
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                unreadable.push(crate::session::Unreadable::new(path, &e));
                continue;
            }
        };
        let mut acc = Accumulator::default();
        for_each_entry(&bytes, |e| match e {
            Some(e) => {
                acc.entry(&e);
                total.entry(&e);
            }
            None => {
                acc.bad_line();
                total.bad_line();
            }
        });
        let metrics = acc.finish(None);
        phases
            .building
            .merge(&metrics.cache_read_over_time.building);
        phases.reuse.merge(&metrics.cache_read_over_time.reuse);
        sessions.push(SessionStats {
            file: path.display().to_string(),
            subagent: is_subagent_file(path),
            metrics,
        });
    }
    let mut metrics = total.finish(Some(phases));
    // Inline sub-agents are a per-file notion: the total sums the files'.
    metrics.inline_subagents = sessions.iter().map(|s| s.metrics.inline_subagents).sum();
    metrics.inline_subagent_responses = sessions
        .iter()
        .map(|s| s.metrics.inline_subagent_responses)
        .sum();
    let total = Total {
        files: sessions.len() as u64,
        subagent_files: sessions.iter().filter(|s| s.subagent).count() as u64,
        metrics,
    };
    Ok(Report {
        sessions,
        total,
        unreadable_files: unreadable,
    })
}

/// Statistics of one log held in memory (for tests and callers that have the bytes).
pub fn metrics_of_bytes(bytes: &[u8]) -> Metrics {
    let mut acc = Accumulator::default();
    for_each_entry(bytes, |e| match e {
        Some(e) => acc.entry(&e),
        None => acc.bad_line(),
    });
    acc.finish(None)
}

/// Call `f` with each non-blank line of a log: its entry, or `None` when it is not one.
fn for_each_entry(bytes: &[u8], mut f: impl FnMut(Option<serde_json::Map<String, Value>>)) {
    for line in bytes.split(|&b| b == b'\n') {
        let line = line.trim_ascii();
        if !line.is_empty() {
            f(parse_entry(line));
        }
    }
}

/// A line as a JSON object; `None` for invalid UTF-8, bad JSON or a non-object.
fn parse_entry(line: &[u8]) -> Option<serde_json::Map<String, Value>> {
    // CPython's reading: a line with a lone surrogate escape is still an entry.
    match crate::pyjson::to_serde(std::str::from_utf8(line).ok()?) {
        Some(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// The markdown report: one "Session Stats Summary" table per file, then the total.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    for s in &report.sessions {
        let kind = if s.subagent { "sub-agent" } else { "session" };
        out.push_str(&format!(
            "## Session Stats Summary: {} ({kind})\n\n",
            s.file
        ));
        out.push_str(&metrics_table(&s.metrics).markdown());
        out.push('\n');
    }
    let t = &report.total;
    out.push_str(&format!(
        "## Session Stats Summary: total ({} files, {} sub-agent)\n\n",
        group_thousands(&t.files.to_string()),
        group_thousands(&t.subagent_files.to_string())
    ));
    out.push_str(&metrics_table(&t.metrics).markdown());
    out
}

/// The rows of one "Session Stats Summary" table.
pub fn metrics_table(m: &Metrics) -> Table {
    let mut t = Table::new(&["Metric", "Value"]);
    let int = |x: u64| vec![Cell::Num(x as f64, 0, false)];
    let pct = |x: Option<f64>| vec![x.map_or(Cell::Empty, |v| Cell::Num(v * 100.0, 1, true))];
    let text = |s: &Option<String>| vec![s.clone().map_or(Cell::Empty, Cell::Text)];
    t.push("Lines", int(m.lines));
    t.push("Events (JSON lines)", int(m.events));
    t.push("Unparseable lines", int(m.unparseable_lines));
    for (k, v) in &m.events_by_type {
        t.push(&format!("Events: {k}"), int(*v));
    }
    t.push("User prompts", int(m.user_prompts));
    t.push("User tool results", int(m.user_tool_results));
    if m.user_other > 0 {
        t.push("User entries, other", int(m.user_other));
    }
    t.push("Assistant responses", int(m.assistant_responses));
    t.push("Assistant lines", int(m.assistant_lines));
    for (k, v) in &m.responses_by_model {
        t.push(&format!("Responses: {k}"), int(*v));
    }
    t.push("Responses with thinking", int(m.responses_with_thinking));
    t.push("Share with thinking", pct(m.thinking_share));
    t.push("Responses with tool use", int(m.responses_with_tool_use));
    t.push("Share with tool use", pct(m.tool_use_share));
    t.push("Tool calls", int(m.tool_calls));
    for (k, v) in &m.tool_calls_by_name {
        t.push(&format!("Tool calls: {k}"), int(*v));
    }
    t.push("Sub-agents spawned", int(m.subagents_spawned));
    for (k, v) in &m.subagents_by_type {
        t.push(&format!("Sub-agents: {k}"), int(*v));
    }
    if m.inline_subagents > 0 {
        t.push(
            "Sub-agents written inline (isSidechain)",
            int(m.inline_subagents),
        );
        t.push(
            "Responses of inline sub-agents",
            int(m.inline_subagent_responses),
        );
    }
    t.push("First timestamp", text(&m.first_timestamp));
    t.push("Last timestamp", text(&m.last_timestamp));
    t.push(
        "Duration (s)",
        vec![m.duration_s.map_or(Cell::Empty, |d| Cell::Num(d, 1, false))],
    );
    t.push("Input tokens", int(m.usage.input));
    t.push("Output tokens", int(m.usage.output));
    t.push("Cache creation tokens", int(m.usage.cache_creation));
    t.push("Cache read tokens", int(m.usage.cache_read));
    let b = &m.cache_read_over_time.building;
    let r = &m.cache_read_over_time.reuse;
    t.push(
        &format!(
            "Cache read share, cache building ({} responses)",
            b.responses
        ),
        pct(b.cache_read_share),
    );
    t.push(
        &format!("Cache read share, cache reuse ({} responses)", r.responses),
        pct(r.cache_read_share),
    );
    for (k, v) in &m.stop_reasons {
        t.push(&format!("Stop reason: {k}"), int(*v));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_ids_bad_lines_and_last_usage() {
        let mut bytes = concat!(
            r#"{"type":"user","timestamp":"2026-03-25T19:42:00.000Z","message":{"content":"hi"}}"#, "\n",
            r#"{"type":"assistant","timestamp":"2026-03-25T19:42:01.000Z","message":{"id":"msg_A","model":"m1","content":[{"type":"thinking","thinking":""}],"usage":{"input_tokens":1,"output_tokens":1}}}"#, "\n",
            r#"{"type":"assistant","timestamp":"2026-03-25T19:42:02.000Z","message":{"id":"msg_A","model":"m1","content":[{"type":"tool_use","id":"t1","name":"Agent","input":{"subagent_type":"Explore"}}],"stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":40,"cache_read_input_tokens":7,"cache_creation_input_tokens":2}}}"#, "\n",
            "not json\n",
            "\n",
            r#"{"type":"user","timestamp":"2026-03-25T19:43:02.500Z","message":{"content":[{"type":"tool_result","tool_use_id":"t1"}]}}"#, "\n",
        )
        .as_bytes()
        .to_vec();
        bytes.extend_from_slice(b"{\"type\":\"x\",\"v\":\"\xff\"}\n");
        bytes.extend_from_slice(br#"{"type":"assistant","message":{"id":"#);
        let m = metrics_of_bytes(&bytes);
        assert_eq!((m.lines, m.events, m.unparseable_lines), (7, 4, 3));
        assert_eq!((m.assistant_responses, m.assistant_lines), (1, 2));
        assert_eq!((m.user_prompts, m.user_tool_results), (1, 1));
        assert_eq!(
            m.usage,
            TokenUsage {
                input: 3,
                output: 40,
                cache_creation: 2,
                cache_read: 7
            }
        );
        assert_eq!(m.subagents_by_type.get("Explore"), Some(&1));
        assert_eq!(m.stop_reasons.get("tool_use"), Some(&1));
        assert_eq!(m.thinking_share, Some(1.0));
        assert_eq!(m.duration_s, Some(62.5));
        assert_eq!(m.cache_read_over_time.building.responses, 1);
        assert_eq!(
            m.cache_read_over_time.building.cache_read_share,
            Some(7.0 / 12.0)
        );
        assert_eq!(m.cache_read_over_time.reuse.cache_read_share, None);
    }

    #[test]
    fn subagent_files_are_recognized() {
        assert!(is_subagent_file(Path::new("x/agent-12.jsonl")));
        assert!(is_subagent_file(Path::new("x/s/subagents/agent-a1.jsonl")));
        assert!(!is_subagent_file(Path::new("x/044c.jsonl")));
    }
}
