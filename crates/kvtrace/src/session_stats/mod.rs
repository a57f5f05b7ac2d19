//! session-stats: what happened in Claude Code sessions, read from their JSONL logs
//! (the log format is spec §3).
//!
//! Per file, per conversation (a session file with its sub-agents' files) and in total:
//! entries by type; user entries by kind (typed prompts apart from sub-agent tasks,
//! warm-ups, meta lines, slash commands, command output, interrupts, bash mode,
//! compaction summaries and task notifications); assistant responses (distinct
//! `message.id`: one response is often several lines), models, thinking and tool-use
//! shares; tool calls by name, tool results and tool errors; sub-agents spawned by type,
//! in the background, and written inline (`isSidechain` in 1.0.x); compactions and the
//! cache-read share on either side of each; active time apart from pauses; token usage
//! with cache writes split by TTL; how the cache-read share grows from the first
//! responses ("cache building") to the rest ("cache reuse"); stop reasons. Files are
//! read whole, then line by line; lines that are not JSON objects are counted, never
//! fatal (spec §3, §7).

mod count;
mod render;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use count::Accumulator;
pub use count::{user_kind, UserKind, WARMUP_PROMPT};
pub use render::{markdown, metrics_table};

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

/// A gap between two entries longer than this (seconds) is a pause, not active time:
/// the prompt cache's 5-minute TTL, so a pause is a gap after which the cache was cold.
pub const DEFAULT_PAUSE_S: f64 = 300.0;

/// Key used in `events_by_type` for entries without a `type`, in `responses_by_model`
/// for responses without a model, and in `subagents_by_type` for spawns without a
/// `subagent_type`.
pub const NONE_KEY: &str = "(none)";

/// Token usage summed over distinct responses (each response's last reported usage).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
    pub cache_creation: u64,
    pub cache_read: u64,
    /// Cache writes with the 1-hour TTL (`usage.cache_creation.ephemeral_1h_input_tokens`).
    pub cache_creation_1h: u64,
    /// Cache writes with the 5-minute TTL (`…ephemeral_5m_input_tokens`). Responses of
    /// versions that do not log the split add to neither.
    pub cache_creation_5m: u64,
}

impl TokenUsage {
    fn from_value(u: &serde_json::Map<String, Value>) -> TokenUsage {
        let int = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
        let split = |k: &str| {
            u.get("cache_creation")
                .and_then(|c| c.get(k))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        TokenUsage {
            input: int("input_tokens"),
            output: int("output_tokens"),
            cache_creation: int("cache_creation_input_tokens"),
            cache_read: int("cache_read_input_tokens"),
            cache_creation_1h: split("ephemeral_1h_input_tokens"),
            cache_creation_5m: split("ephemeral_5m_input_tokens"),
        }
    }

    fn add(&mut self, o: &TokenUsage) {
        self.input += o.input;
        self.output += o.output;
        self.cache_creation += o.cache_creation;
        self.cache_read += o.cache_read;
        self.cache_creation_1h += o.cache_creation_1h;
        self.cache_creation_5m += o.cache_creation_5m;
    }

    fn minus(&self, o: &TokenUsage) -> TokenUsage {
        TokenUsage {
            input: self.input.saturating_sub(o.input),
            output: self.output.saturating_sub(o.output),
            cache_creation: self.cache_creation.saturating_sub(o.cache_creation),
            cache_read: self.cache_read.saturating_sub(o.cache_read),
            cache_creation_1h: self.cache_creation_1h.saturating_sub(o.cache_creation_1h),
            cache_creation_5m: self.cache_creation_5m.saturating_sub(o.cache_creation_5m),
        }
    }

    /// All prompt tokens: uncached input + cache writes + cache reads.
    pub fn prompt(&self) -> u64 {
        self.input + self.cache_creation + self.cache_read
    }

    /// Cache reads over all prompt tokens.
    pub fn cache_read_share(&self) -> Option<f64> {
        let prompt = self.prompt();
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
        self.merge(&CachePhase {
            responses,
            input: u.input,
            cache_creation: u.cache_creation,
            cache_read: u.cache_read,
            cache_read_share: None,
        });
    }

    fn merge(&mut self, o: &CachePhase) {
        self.responses += o.responses;
        self.input += o.input;
        self.cache_creation += o.cache_creation;
        self.cache_read += o.cache_read;
        let prompt = self.input + self.cache_creation + self.cache_read;
        self.cache_read_share = (prompt > 0).then(|| self.cache_read as f64 / prompt as f64);
    }
}

/// The cache-read share early in a session vs later, over the responses of the file's
/// own chain (an inline sub-agent has a cache of its own, so its responses are left out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CacheOverTime {
    /// The first 10% of responses (at least one), in first-seen order.
    pub building: CachePhase,
    /// The remaining responses.
    pub reuse: CachePhase,
}

/// `user` entries by kind (see [`UserKind`]; each entry counts once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UserEntries {
    /// Prompts a person typed: main-chain prompts that are none of the kinds below.
    pub typed_prompts: u64,
    /// The task a parent gave a sub-agent (the first prompt of a sidechain).
    pub subagent_prompts: u64,
    /// `Warmup` prompts of warm-up sub-agents.
    pub warmup_prompts: u64,
    /// Entries carrying `tool_result` blocks.
    pub tool_results: u64,
    pub meta: u64,
    pub compact_summaries: u64,
    pub commands: u64,
    pub local_command_outputs: u64,
    pub interrupts: u64,
    pub bash_mode: u64,
    pub task_notifications: u64,
    /// Task notifications delivered as queued commands (`queue-operation` entries, 2.1.x)
    /// rather than as user entries; not a user entry, counted here to be found.
    pub queued_task_notifications: u64,
    pub no_text: u64,
}

/// When a log was written to, and how much of that was spent working.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Activity {
    pub first_timestamp: Option<String>,
    pub last_timestamp: Option<String>,
    /// Last − first timestamp, in seconds; null without timestamps.
    pub wall_s: Option<f64>,
    /// The gaps between consecutive timestamps that are not pauses, summed.
    pub active_s: Option<f64>,
    /// Gaps longer than `pause_threshold_s`.
    pub pauses: u64,
    pub longest_pause_s: Option<f64>,
    pub pause_threshold_s: f64,
}

/// The activity figures of a set of timestamps (in any order).
pub fn activity(mut stamps: Vec<Stamp>, pause_s: f64) -> Activity {
    stamps.sort_by_key(|s| s.micros);
    let mut a = Activity {
        pause_threshold_s: pause_s,
        ..Activity::default()
    };
    let (Some(first), Some(last)) = (stamps.first(), stamps.last()) else {
        return a;
    };
    a.first_timestamp = Some(first.isoformat());
    a.last_timestamp = Some(last.isoformat());
    a.wall_s = Some(last.seconds_since(first));
    let mut active = 0.0;
    for w in stamps.windows(2) {
        let gap = w[1].seconds_since(&w[0]);
        if gap > pause_s {
            a.pauses += 1;
            a.longest_pause_s = Some(a.longest_pause_s.map_or(gap, |l: f64| l.max(gap)));
        } else {
            active += gap;
        }
    }
    a.active_s = Some(active);
    a
}

/// One `compact_boundary` entry and the cache-read share of the responses around it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Compaction {
    pub timestamp: Option<String>,
    /// `auto` or `manual`, as logged in `compactMetadata.trigger`.
    pub trigger: Option<String>,
    /// The context size before the compaction (`compactMetadata.preTokens`).
    pub pre_tokens: Option<u64>,
    /// Cache-read share of the last response before the boundary.
    pub cache_read_share_before: Option<f64>,
    /// Cache-read share of the first response after it (the cache drop).
    pub cache_read_share_after: Option<f64>,
}

/// The metrics of one session file, or of all of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metrics {
    /// The session's title: the last `ai-title` entry, else the last `summary` entry.
    pub title: Option<String>,
    /// Non-blank lines.
    pub lines: u64,
    /// Lines that parse as JSON objects.
    pub events: u64,
    /// Non-blank lines that do not (bad JSON, not an object, invalid UTF-8).
    pub unparseable_lines: u64,
    pub events_by_type: BTreeMap<String, u64>,
    pub user: UserEntries,
    /// Distinct `message.id` of `assistant` entries.
    pub assistant_responses: u64,
    /// `assistant` entries (lines).
    pub assistant_lines: u64,
    /// Distinct responses per model (the model of a response's first line).
    pub responses_by_model: BTreeMap<String, u64>,
    /// Their usage per model.
    pub usage_by_model: BTreeMap<String, TokenUsage>,
    /// Entries Claude Code wrote for a failed API call (`isApiErrorMessage: true`).
    pub api_error_entries: u64,
    pub responses_with_thinking: u64,
    pub thinking_share: Option<f64>,
    pub responses_with_tool_use: u64,
    pub tool_use_share: Option<f64>,
    /// Distinct tool_use ids.
    pub tool_calls: u64,
    pub tool_calls_by_name: BTreeMap<String, u64>,
    /// `tool_result` blocks, and those with `is_error: true`.
    pub tool_results: u64,
    pub tool_errors: u64,
    pub tool_error_share: Option<f64>,
    /// Distinct `Task`/`Agent` tool_use blocks.
    pub subagents_spawned: u64,
    pub subagents_by_type: BTreeMap<String, u64>,
    /// Agents launched in the background (`toolUseResult.status: async_launched`).
    pub background_agents: u64,
    /// Sub-agents written inline in a session file (Claude Code 1.0.x): chains of
    /// `"isSidechain": true` entries in a file that also has main-chain turns. Their
    /// responses are also counted in the figures above.
    pub inline_subagents: u64,
    /// Distinct responses of those inline sub-agents, and their usage.
    pub inline_subagent_responses: u64,
    pub inline_subagent_usage: TokenUsage,
    /// `compact_boundary` entries.
    pub compactions: u64,
    pub activity: Activity,
    pub usage: TokenUsage,
    /// Responses whose usage splits cache writes by TTL (newer versions).
    pub responses_with_cache_creation_split: u64,
    pub cache_read_over_time: CacheOverTime,
    /// Distinct responses per final stop reason, where one was logged.
    pub stop_reasons: BTreeMap<String, u64>,
    /// Responses none of whose lines carries a stop reason (many versions log none).
    pub responses_without_stop_reason: u64,
}

/// What a log file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A session's own log.
    Session,
    /// A sub-agent's log (`agent-<id>.jsonl`, in either layout).
    Subagent,
    /// A warm-up agent: Claude Code's `Warmup` prompt, sent to fill the cache (2.0.x).
    Warmup,
    /// A compaction agent (`agent-acompact-*.jsonl`), which writes the summary.
    Compaction,
}

impl FileKind {
    pub fn label(self) -> &'static str {
        match self {
            FileKind::Session => "session",
            FileKind::Subagent => "sub-agent",
            FileKind::Warmup => "warm-up agent",
            FileKind::Compaction => "compaction agent",
        }
    }
}

/// One input file and its metrics.
#[derive(Debug, Clone, Serialize)]
pub struct SessionStats {
    /// The path as given, or relative to the folder given (named by its last component).
    pub file: String,
    pub kind: FileKind,
    /// A sub-agent log of any kind (`kind` is not `session`).
    pub subagent: bool,
    /// The session the file belongs to (see [`Conversation`]).
    pub conversation: String,
    #[serde(flatten)]
    pub metrics: Metrics,
    pub compaction_events: Vec<Compaction>,
}

/// Usage by the kind of file (or inline chain) it was spent in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UsageByKind {
    /// The sessions' own chains (inline sub-agents left out).
    pub main: TokenUsage,
    /// Sub-agents: their files and inline sidechains (background ones included).
    pub subagents: TokenUsage,
    /// Of those, the agents launched in the background.
    pub background: TokenUsage,
    pub warmup: TokenUsage,
    pub compaction: TokenUsage,
}

impl UsageByKind {
    fn add(&mut self, o: &UsageByKind) {
        self.main.add(&o.main);
        self.subagents.add(&o.subagents);
        self.background.add(&o.background);
        self.warmup.add(&o.warmup);
        self.compaction.add(&o.compaction);
    }
}

/// A session with all of its sub-agents: the session file (`<id>.jsonl`) plus the
/// agent files under `<id>/subagents/`, or beside it with `"sessionId": "<id>"`.
#[derive(Debug, Clone, Serialize)]
pub struct Conversation {
    pub session: String,
    pub files: u64,
    pub subagent_files: u64,
    pub warmup_agent_files: u64,
    pub compaction_agent_files: u64,
    pub typed_prompts: u64,
    pub responses: u64,
    pub usage: TokenUsage,
    pub usage_by_kind: UsageByKind,
    pub tool_errors: u64,
    pub compactions: u64,
    /// Over the timestamps of all its files together.
    pub activity: Activity,
}

/// All files together. Distinct counts are distinct across files; the cache phases,
/// inline sub-agents and compactions sum the files'; the activity is over all
/// timestamps together.
#[derive(Debug, Clone, Serialize)]
pub struct Total {
    pub files: u64,
    pub session_files: u64,
    /// Sub-agent files, not counting warm-up and compaction agents.
    pub subagent_files: u64,
    pub warmup_agent_files: u64,
    pub compaction_agent_files: u64,
    pub conversations: u64,
    pub usage_by_kind: UsageByKind,
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// What `session-stats` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub sessions: Vec<SessionStats>,
    pub conversations: Vec<Conversation>,
    pub total: Total,
    /// Files that could not be read (skipped).
    pub unreadable_files: Vec<crate::session::Unreadable>,
}

/// How to count.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Gaps longer than this (seconds) are pauses.
    pub pause_s: f64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            pause_s: DEFAULT_PAUSE_S,
        }
    }
}

/// Whether a log file belongs to a sub-agent: `agent-<id>.jsonl`, in either layout (the
/// rule every tool uses, [`crate::session::dir::is_agent_file`]).
pub fn is_subagent_file(path: &Path) -> bool {
    crate::session::dir::is_agent_file(path)
}

/// A file to read and the name it is reported under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    pub path: PathBuf,
    /// The path as given; for a file found in a folder, the folder's last component
    /// joined with the path below it (no absolute local paths in the report).
    pub name: String,
}

/// The files to read: each file as given, each directory's `*.jsonl` (recursively),
/// sorted by path so a parent comes before its `<session>/subagents/` files. A file
/// named twice (as a file and inside a folder, or by two spellings) is read once.
pub fn session_files(paths: &[PathBuf]) -> Result<Vec<InputFile>, SessionStatsError> {
    if paths.is_empty() {
        return Err(SessionStatsError::NoPaths);
    }
    let mut files = Vec::new();
    for p in paths {
        if p.is_file() {
            files.push(InputFile {
                path: p.clone(),
                name: p.display().to_string(),
            });
        } else if p.is_dir() {
            let mut found = crate::session::dir::jsonl_files_below(p);
            if found.is_empty() {
                return Err(SessionStatsError::NoFiles(p.clone()));
            }
            found.sort_by_cached_key(|f| sort_key(f));
            let base = p.canonicalize().ok();
            let label = base
                .as_deref()
                .and_then(Path::file_name)
                .map(PathBuf::from)
                .unwrap_or_default();
            files.extend(found.into_iter().map(|f| {
                let name = match f.strip_prefix(p) {
                    Ok(rel) => label.join(rel).display().to_string(),
                    Err(_) => f.display().to_string(),
                };
                InputFile { path: f, name }
            }));
        } else {
            return Err(SessionStatsError::Missing(p.clone()));
        }
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(f.path.canonicalize().unwrap_or_else(|_| f.path.clone())));
    Ok(files)
}

/// Orders a parent `<id>.jsonl` before its `<id>/subagents/*.jsonl`: files sort by
/// (session path without extension, sub-agent last, path).
fn sort_key(path: &Path) -> (PathBuf, bool, PathBuf) {
    match nested_session(path) {
        Some(session) => (session.to_owned(), true, path.to_owned()),
        None => (path.with_extension(""), false, path.to_owned()),
    }
}

/// `<dir>/<id>` for a file `<dir>/<id>/subagents/<name>`.
fn nested_session(path: &Path) -> Option<&Path> {
    path.parent()
        .filter(|p| p.file_name().is_some_and(|n| n == "subagents"))
        .and_then(Path::parent)
}

/// What a file is, from its name and its first sidechain prompt.
fn file_kind(path: &Path, first_side_prompt: Option<&str>) -> FileKind {
    if !is_subagent_file(path) {
        return FileKind::Session;
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.starts_with("agent-acompact") {
        FileKind::Compaction
    } else if first_side_prompt.is_some_and(|p| p.trim() == WARMUP_PROMPT) {
        FileKind::Warmup
    } else {
        FileKind::Subagent
    }
}

/// Statistics of the session files at `paths` (files or directories).
pub fn session_stats(paths: &[PathBuf], options: Options) -> Result<Report, SessionStatsError> {
    let files = session_files(paths)?;
    let mut total = Accumulator::default();
    let mut phases = CacheOverTime::default();
    let mut sessions = Vec::with_capacity(files.len());
    // Per file: its timestamps, agent id launched in the background, usage by kind.
    let mut stamps: Vec<Vec<Stamp>> = Vec::with_capacity(files.len());
    let mut background: Vec<Vec<String>> = Vec::with_capacity(files.len());
    let mut unreadable = Vec::new();
    for file in &files {
        // Read whole before counting, so a file that fails midway adds nothing.
        let bytes = match std::fs::read(&file.path) {
            Ok(b) => b,
            Err(e) => {
                unreadable.push(crate::session::Unreadable::new(&file.path, &e));
                continue;
            }
        };
        let mut acc = Accumulator::default();
        let mut session_id = None;
        for_each_entry(&bytes, |e| match e {
            Some(e) => {
                if session_id.is_none() {
                    session_id = e
                        .get("sessionId")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                }
                acc.entry(&e);
                total.entry(&e);
            }
            None => {
                acc.bad_line();
                total.bad_line();
            }
        });
        let kind = file_kind(&file.path, acc.first_side_prompt.as_deref());
        stamps.push(acc.stamps.clone());
        background.push(std::mem::take(&mut acc.background_ids));
        let (metrics, compaction_events) = acc.finish(options.pause_s);
        phases
            .building
            .merge(&metrics.cache_read_over_time.building);
        phases.reuse.merge(&metrics.cache_read_over_time.reuse);
        let conversation = match (kind, nested_session(&file.path)) {
            (FileKind::Session, _) => crate::session::dir::stem(&file.path),
            (_, Some(session)) => crate::session::dir::stem(session),
            (_, None) => session_id.unwrap_or_else(|| crate::session::dir::stem(&file.path)),
        };
        sessions.push(SessionStats {
            file: file.name.clone(),
            kind,
            subagent: kind != FileKind::Session,
            conversation,
            metrics,
            compaction_events,
        });
    }
    let conversations = conversations(&sessions, &stamps, &background, options);
    let (mut metrics, _) = total.finish(options.pause_s);
    // Per-file notions: the total sums the files'.
    metrics.cache_read_over_time = phases;
    metrics.title = None;
    metrics.inline_subagents = sessions.iter().map(|s| s.metrics.inline_subagents).sum();
    metrics.inline_subagent_responses = 0;
    metrics.inline_subagent_usage = TokenUsage::default();
    metrics.compactions = 0;
    for s in &sessions {
        metrics.inline_subagent_responses += s.metrics.inline_subagent_responses;
        metrics
            .inline_subagent_usage
            .add(&s.metrics.inline_subagent_usage);
        metrics.compactions += s.metrics.compactions;
    }
    let mut usage_by_kind = UsageByKind::default();
    for c in &conversations {
        usage_by_kind.add(&c.usage_by_kind);
    }
    let of_kind = |k: FileKind| sessions.iter().filter(|s| s.kind == k).count() as u64;
    let total = Total {
        files: sessions.len() as u64,
        session_files: of_kind(FileKind::Session),
        subagent_files: of_kind(FileKind::Subagent),
        warmup_agent_files: of_kind(FileKind::Warmup),
        compaction_agent_files: of_kind(FileKind::Compaction),
        conversations: conversations.len() as u64,
        usage_by_kind,
        metrics,
    };
    Ok(Report {
        sessions,
        conversations,
        total,
        unreadable_files: unreadable,
    })
}

/// The files grouped by conversation, in the order each conversation first appears.
fn conversations(
    sessions: &[SessionStats],
    stamps: &[Vec<Stamp>],
    background: &[Vec<String>],
    options: Options,
) -> Vec<Conversation> {
    let mut order: Vec<&str> = Vec::new();
    let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in sessions.iter().enumerate() {
        let key = s.conversation.as_str();
        if !members.contains_key(key) {
            order.push(key);
        }
        members.entry(key).or_default().push(i);
    }
    order
        .into_iter()
        .map(|key| {
            let idx = &members[key];
            let launched: std::collections::HashSet<&str> = idx
                .iter()
                .flat_map(|&i| background[i].iter().map(String::as_str))
                .collect();
            let mut c = Conversation {
                session: key.to_owned(),
                files: idx.len() as u64,
                subagent_files: 0,
                warmup_agent_files: 0,
                compaction_agent_files: 0,
                typed_prompts: 0,
                responses: 0,
                usage: TokenUsage::default(),
                usage_by_kind: UsageByKind::default(),
                tool_errors: 0,
                compactions: 0,
                activity: activity(
                    idx.iter()
                        .flat_map(|&i| stamps[i].iter().copied())
                        .collect(),
                    options.pause_s,
                ),
            };
            for &i in idx {
                let s = &sessions[i];
                let m = &s.metrics;
                c.typed_prompts += m.user.typed_prompts;
                c.responses += m.assistant_responses;
                c.usage.add(&m.usage);
                c.tool_errors += m.tool_errors;
                c.compactions += m.compactions;
                let u = &mut c.usage_by_kind;
                match s.kind {
                    FileKind::Session => {
                        u.main.add(&m.usage.minus(&m.inline_subagent_usage));
                        u.subagents.add(&m.inline_subagent_usage);
                    }
                    FileKind::Subagent => {
                        c.subagent_files += 1;
                        u.subagents.add(&m.usage);
                        let id = crate::session::dir::stem(Path::new(&s.file));
                        let id = id.strip_prefix("agent-").unwrap_or(&id);
                        if launched.contains(id) {
                            u.background.add(&m.usage);
                        }
                    }
                    FileKind::Warmup => {
                        c.warmup_agent_files += 1;
                        u.warmup.add(&m.usage);
                    }
                    FileKind::Compaction => {
                        c.compaction_agent_files += 1;
                        u.compaction.add(&m.usage);
                    }
                }
            }
            c
        })
        .collect()
}

/// Statistics of one log held in memory (for tests and callers that have the bytes).
pub fn metrics_of_bytes(bytes: &[u8]) -> Metrics {
    let mut acc = Accumulator::default();
    for_each_entry(bytes, |e| match e {
        Some(e) => acc.entry(&e),
        None => acc.bad_line(),
    });
    acc.finish(DEFAULT_PAUSE_S).0
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
        assert_eq!((m.user.typed_prompts, m.user.tool_results), (1, 1));
        assert_eq!(
            m.usage,
            TokenUsage {
                input: 3,
                output: 40,
                cache_creation: 2,
                cache_read: 7,
                ..TokenUsage::default()
            }
        );
        assert_eq!(m.subagents_by_type.get("Explore"), Some(&1));
        assert_eq!(m.stop_reasons.get("tool_use"), Some(&1));
        assert_eq!(m.responses_without_stop_reason, 0);
        assert_eq!(m.thinking_share, Some(1.0));
        assert_eq!(m.activity.wall_s, Some(62.5));
        assert_eq!(m.activity.active_s, Some(62.5));
        assert_eq!((m.tool_results, m.tool_errors), (1, 0));
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
