//! Claude Code session logs (spec §3): entries, message ids, sub-agent links.
//!
//! A log is one JSON object per line. Lines that are not JSON objects (truncated last
//! lines, invalid UTF-8, debris) are skipped and counted, never fatal. One API response
//! is often written as several assistant lines sharing one `message.id`; ids are
//! de-duplicated keeping first-seen order.

pub mod claims;
pub mod dir;
pub mod prune;

use std::path::{Path, PathBuf};

use rustc_hash::FxHashSet;
use serde_json::Value;

use crate::stamp::Stamp;

pub use claims::Claims;
pub use dir::{SessionDir, SessionDirError};

/// A session file that could not be read (skipped and counted by every tool, and named in
/// its summary).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unreadable {
    pub path: PathBuf,
    pub error: String,
}

impl Unreadable {
    pub fn new(path: &Path, error: &std::io::Error) -> Unreadable {
        Unreadable {
            path: path.to_owned(),
            error: error.to_string(),
        }
    }
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.error)
    }
}

/// An assistant response as the log records it (first line of its id wins, except
/// `usage`/`stop_reason`, which take the last line's, as the API streams them).
#[derive(Debug, Clone, Default)]
pub struct AssistantMessage {
    pub id: String,
    pub model: Option<String>,
    pub timestamp: Option<Stamp>,
    pub lines: usize,
    /// Index of its first line among the file's assistant lines.
    pub assistant_line: usize,
}

/// A spawning `tool_use` block (named `Task` or `Agent`, §4.9.1).
#[derive(Debug, Clone, Default)]
pub struct Spawn {
    pub tool_use_id: String,
    pub subagent_type: Option<String>,
    /// `input.prompt`: the first user message of the sub-agent it starts.
    pub prompt: Option<String>,
    /// Time of the assistant entry holding the tool_use.
    pub entry_time: Option<Stamp>,
    /// `message.id` of that entry (the response that made the call).
    pub message_id: Option<String>,
}

/// A parent → sub-agent link: a user entry whose `toolUseResult` has `agentId`.
#[derive(Debug, Clone)]
pub struct AgentLink {
    pub agent_id: String,
    /// `tool_use_id` of the first content block of the user entry.
    pub tool_use_id: Option<String>,
    /// Time of the tool_result entry (when the sub-agent finished).
    pub result_time: Option<Stamp>,
    pub duration_ms: Value,
    pub total_tokens: Value,
    pub tool_use_count: Value,
    pub status: Value,
}

impl AgentLink {
    /// A link whose sub-agent has not reported a result (yet).
    fn unfinished(tool_use_id: &str) -> AgentLink {
        AgentLink {
            agent_id: String::new(),
            tool_use_id: Some(tool_use_id.to_owned()),
            result_time: None,
            duration_ms: Value::Null,
            total_tokens: Value::Null,
            tool_use_count: Value::Null,
            status: "unknown".into(),
        }
    }
}

/// The text of a user entry's message (string content, or its text blocks joined).
fn user_text(e: &Value) -> Option<String> {
    if e.get("type").and_then(Value::as_str) != Some("user") {
        return None;
    }
    match e.pointer("/message/content")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(blocks) => {
            let texts: Vec<&str> = blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            (!texts.is_empty()).then(|| texts.concat())
        }
        _ => None,
    }
}

/// Everything the tools read from one session file.
#[derive(Debug, Clone, Default)]
pub struct SessionLog {
    pub path: PathBuf,
    /// Assistant `msg_` ids, de-duplicated, first-seen order.
    pub message_ids: Vec<String>,
    pub messages: Vec<AssistantMessage>,
    pub spawns: Vec<Spawn>,
    /// Links to sub-agents, one per agent id (the first link wins; a `-c` continuation of
    /// Claude Code 2.0.x writes the earlier chain, links included, a second time).
    pub links: Vec<AgentLink>,
    /// Links dropped because an earlier one named the same agent.
    pub duplicate_links: usize,
    /// Responses (and links) left out because an earlier session file holds them (the
    /// copy of the previous chain a 1.0.x `-c` continuation opens with): see [`Claims`].
    pub claimed_elsewhere: usize,
    /// Earliest `timestamp` of any entry.
    pub first_time: Option<Stamp>,
    pub last_time: Option<Stamp>,
    /// Lines that parsed as JSON objects.
    pub entries: usize,
    /// Non-empty lines that did not (bad JSON, not an object, invalid UTF-8).
    pub unparseable_lines: usize,
    /// Assistant lines seen (with or without a message id).
    pub assistant_lines: usize,
    /// The first user message's text (a sub-agent's prompt; `Warmup` in a warm-up file).
    pub first_prompt: Option<String>,
    /// The first user/assistant entry is an assistant reply: the file lacks the prompt
    /// that opened it (agent files of some 2.0.x versions start with the first reply).
    pub opens_with_reply: bool,
    /// Sub-agents written inline (Claude Code 1.0.x): each chain of `"isSidechain": true`
    /// entries in a file that also has main-chain entries, by its agent id
    /// (`sidechain-<uuid of its first entry>`). Linked from [`SessionLog::links`].
    pub inline_agents: std::collections::BTreeMap<String, SessionLog>,
    /// Tool results without an `agentId` (1.0.x sub-agent results): tool_use id → link
    /// fields, used to link inline sidechains.
    results: Vec<AgentLink>,
}

impl SessionLog {
    /// Read and parse a session file. Only I/O errors fail; bad lines are counted.
    pub fn read(path: &Path) -> std::io::Result<SessionLog> {
        let bytes = std::fs::read(path)?;
        let mut log = SessionLog::parse_bytes(&bytes);
        log.path = path.to_owned();
        for sub in log.inline_agents.values_mut() {
            sub.path = path.to_owned();
        }
        Ok(log)
    }

    /// Parse the bytes of a session file.
    pub fn parse_bytes(bytes: &[u8]) -> SessionLog {
        Self::parse_bytes_with(bytes, true)
    }

    /// [`SessionLog::parse_bytes`], each line built whole (`pruned == false`: the oracle
    /// of the pruned parse's tests) or with only the members read ([`prune`]).
    fn parse_bytes_with(bytes: &[u8], pruned: bool) -> SessionLog {
        let mut log = SessionLog::default();
        let mut entries: Vec<Value> = Vec::new();
        let mut start = 0;
        let ends = memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len()));
        for end in ends {
            let line = bytes[start..end].trim_ascii();
            start = end + 1;
            if line.is_empty() {
                continue;
            }
            // CPython's reading: a line with a lone surrogate escape is still an entry.
            let full = |text: &str| crate::pyjson::to_serde(text);
            match std::str::from_utf8(line).ok().and_then(|text| {
                pruned
                    .then(|| prune::parse(text, &prune::ENTRY))
                    .flatten()
                    .or_else(|| full(text))
            }) {
                Some(v @ Value::Object(_)) => entries.push(v),
                _ => log.unparseable_lines += 1,
            }
        }
        log.entries = entries.len();
        log.opens_with_reply = entries
            .iter()
            .find_map(|e| match e.get("type").and_then(Value::as_str) {
                Some(t @ ("user" | "assistant")) => Some(t == "assistant"),
                _ => None,
            })
            .unwrap_or(false);
        // A file with main-chain turns holds its sidechains inline (1.0.x): each chain is
        // a sub-agent of its own. A file of sidechain entries only is an agent file.
        let is_side = |e: &Value| e.get("isSidechain") == Some(&Value::Bool(true));
        let is_turn = |e: &Value| {
            matches!(
                e.get("type").and_then(Value::as_str),
                Some("user" | "assistant")
            )
        };
        let inline = entries.iter().any(|e| is_turn(e) && !is_side(e))
            && entries.iter().any(|e| is_turn(e) && is_side(e));
        let mut seen: FxHashSet<String> = FxHashSet::default();
        let mut chains: Vec<(String, SessionLog, FxHashSet<String>)> = Vec::new();
        let mut chain_of: rustc_hash::FxHashMap<String, usize> = rustc_hash::FxHashMap::default();
        for e in &entries {
            if !(inline && is_side(e)) {
                log.add_entry(e, &mut seen);
                if log.first_prompt.is_none() {
                    log.first_prompt = user_text(e);
                }
                continue;
            }
            let uuid = e.get("uuid").and_then(Value::as_str).unwrap_or_default();
            let parent = e.get("parentUuid").and_then(Value::as_str);
            let n = match parent.and_then(|p| chain_of.get(p)) {
                Some(&n) => n,
                None => {
                    chains.push((
                        format!("sidechain-{uuid}"),
                        SessionLog::default(),
                        FxHashSet::default(),
                    ));
                    chains.len() - 1
                }
            };
            if !uuid.is_empty() {
                chain_of.insert(uuid.to_owned(), n);
            }
            let (_, sub, sub_seen) = &mut chains[n];
            sub.entries += 1;
            sub.add_entry(e, sub_seen);
            if sub.first_prompt.is_none() {
                sub.first_prompt = user_text(e);
            }
        }
        log.link_inline(chains);
        log
    }

    /// Link each inline chain to the Task call whose prompt opened it, with the fields of
    /// that call's tool result. A chain no call opened stays unlinked (not traced).
    fn link_inline(&mut self, chains: Vec<(String, SessionLog, FxHashSet<String>)>) {
        for (id, mut sub, _) in chains {
            sub.path = self.path.clone();
            let spawn = sub.first_prompt.as_deref().and_then(|p| {
                self.spawns
                    .iter()
                    .find(|s| s.prompt.as_deref() == Some(p))
                    .map(|s| s.tool_use_id.clone())
            });
            if let Some(tool_use_id) = spawn {
                if !self
                    .links
                    .iter()
                    .any(|l| l.tool_use_id.as_deref() == Some(&tool_use_id))
                {
                    let mut link = self
                        .results
                        .iter()
                        .find(|r| r.tool_use_id.as_deref() == Some(&tool_use_id))
                        .cloned()
                        .unwrap_or_else(|| AgentLink::unfinished(&tool_use_id));
                    link.agent_id = id.clone();
                    self.links.push(link);
                }
            }
            self.inline_agents.insert(id, sub);
        }
    }

    fn add_entry(&mut self, e: &Value, seen: &mut FxHashSet<String>) {
        let time = e
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(Stamp::parse);
        if let Some(t) = time {
            if self.first_time.is_none_or(|f| t.micros < f.micros) {
                self.first_time = Some(t);
            }
            if self.last_time.is_none_or(|l| t.micros > l.micros) {
                self.last_time = Some(t);
            }
        }
        let message = e.get("message");
        match e.get("type").and_then(Value::as_str) {
            Some("assistant") => {
                self.assistant_lines += 1;
                let Some(msg) = message else { return };
                if let Some(id) = msg
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|id| id.starts_with("msg_"))
                {
                    if seen.insert(id.to_owned()) {
                        self.message_ids.push(id.to_owned());
                        self.messages.push(AssistantMessage {
                            id: id.to_owned(),
                            model: msg.get("model").and_then(Value::as_str).map(str::to_owned),
                            timestamp: time,
                            lines: 1,
                            assistant_line: self.assistant_lines - 1,
                        });
                    } else if let Some(m) = self.messages.iter_mut().rev().find(|m| m.id == id) {
                        m.lines += 1;
                    }
                }
                let message_id = msg.get("id").and_then(Value::as_str);
                if let Some(Value::Array(blocks)) = msg.get("content") {
                    for b in blocks {
                        let is_spawn = b.get("type").and_then(Value::as_str) == Some("tool_use")
                            && matches!(
                                b.get("name").and_then(Value::as_str),
                                Some("Task" | "Agent")
                            );
                        let Some(id) = b.get("id").and_then(Value::as_str).filter(|_| is_spawn)
                        else {
                            continue;
                        };
                        self.spawns.push(Spawn {
                            tool_use_id: id.to_owned(),
                            prompt: text_at(b, "/input/prompt"),
                            subagent_type: text_at(b, "/input/subagent_type"),
                            entry_time: time,
                            message_id: message_id.map(str::to_owned),
                        });
                    }
                }
            }
            Some("user") => {
                let Some(Value::Object(tur)) = e.get("toolUseResult") else {
                    return;
                };
                let agent_id = tur.get("agentId").and_then(Value::as_str);
                let tool_use_id = message
                    .and_then(|m| m.get("content"))
                    .and_then(|c| c.get(0))
                    .and_then(|b| b.get("tool_use_id"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let field = |k: &str| tur.get(k).cloned().unwrap_or(Value::Null);
                let link = AgentLink {
                    agent_id: agent_id.unwrap_or_default().to_owned(),
                    tool_use_id,
                    result_time: time,
                    duration_ms: field("totalDurationMs"),
                    total_tokens: field("totalTokens"),
                    tool_use_count: field("totalToolUseCount"),
                    // The reference defaults a missing status to "unknown".
                    status: tur
                        .get("status")
                        .cloned()
                        .unwrap_or_else(|| "unknown".into()),
                };
                if let Some(id) = agent_id {
                    if self.links.iter().any(|l| l.agent_id == id) {
                        self.duplicate_links += 1;
                    } else {
                        self.links.push(link);
                    }
                } else if tur.contains_key("totalDurationMs") {
                    // A 1.0.x sub-agent result: linked to its inline chain later.
                    self.results.push(link);
                }
            }
            _ => {}
        }
    }

    /// The log of a linked sub-agent written inline in this file, if it is one.
    pub fn inline_agent(&self, agent_id: &str) -> Option<&SessionLog> {
        self.inline_agents.get(agent_id)
    }

    /// When a linked sub-agent started: the earliest time in its own log, else the time
    /// of the assistant entry holding the spawning tool_use, else the tool_result's.
    /// An agent file that opens with a reply (no prompt line) started before its first
    /// time: then the spawning entry's time comes first, when known.
    pub fn spawn_time(&self, link: &AgentLink, agent: &SessionLog) -> Option<Stamp> {
        let call = self.spawn_for(link).and_then(|s| s.entry_time);
        let own = agent.first_time;
        let first = if agent.opens_with_reply {
            call.or(own)
        } else {
            own.or(call)
        };
        first.or(link.result_time)
    }

    /// The spawning tool_use of a link, if the log has it.
    pub fn spawn_for(&self, link: &AgentLink) -> Option<&Spawn> {
        let id = link.tool_use_id.as_deref()?;
        self.spawns.iter().find(|s| s.tool_use_id == id)
    }

    /// File stem (the session id for parent files).
    pub fn stem(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The string at a JSON pointer, owned; `None` when absent or not a string.
fn text_at(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_file_without_its_prompt_starts_at_the_spawning_call() {
        let parent = SessionLog::parse_bytes(concat!(
            r#"{"type":"assistant","timestamp":"2025-10-01T10:00:00.000Z","message":{"id":"msg_P","content":[{"type":"tool_use","id":"tu1","name":"Task","input":{"prompt":"go"}}]}}"#, "\n",
            r#"{"type":"user","timestamp":"2025-10-01T10:01:00.000Z","toolUseResult":{"agentId":"a1","status":"completed"},"message":{"content":[{"type":"tool_result","tool_use_id":"tu1"}]}}"#,
        ).as_bytes());
        let reply_first = SessionLog::parse_bytes(
            br#"{"type":"assistant","timestamp":"2025-10-01T10:00:05.000Z","message":{"id":"msg_A","content":[]}}"#,
        );
        let prompt_first = SessionLog::parse_bytes(concat!(
            r#"{"type":"user","timestamp":"2025-10-01T10:00:02.000Z","message":{"content":"go"}}"#, "\n",
            r#"{"type":"assistant","timestamp":"2025-10-01T10:00:05.000Z","message":{"id":"msg_A","content":[]}}"#,
        ).as_bytes());
        let link = &parent.links[0];
        let at = |log: &SessionLog| parent.spawn_time(link, log).map(|t| t.isoformat());
        assert!(reply_first.opens_with_reply && !prompt_first.opens_with_reply);
        assert_eq!(
            at(&reply_first).as_deref(),
            Some("2025-10-01T10:00:00+00:00")
        );
        assert_eq!(
            at(&prompt_first).as_deref(),
            Some("2025-10-01T10:00:02+00:00")
        );
    }

    #[test]
    fn dedupes_ids_counts_bad_lines_and_finds_links() {
        let mut bytes = concat!(
                r#"{"type":"assistant","timestamp":"2026-03-25T19:42:10.600Z","message":{"id":"msg_A","model":"m","content":[{"type":"tool_use","id":"tu1","name":"Agent","input":{"subagent_type":"Explore"}}]}}"#, "\n",
                r#"{"type":"assistant","timestamp":"2026-03-25T19:42:10.900Z","message":{"id":"msg_A","content":[{"type":"tool_use","id":"tu2","name":"Task","input":{}}]}}"#, "\n",
                "not json\n",
                "[1,2]\n",
                r#"{"type":"progress"}"#, "\n",
                r#"{"type":"user","timestamp":"2026-03-25T19:42:30Z","message":{"content":[{"type":"tool_result","tool_use_id":"tu1"}]},"toolUseResult":{"agentId":"abc","totalDurationMs":5}}"#, "\n",
                r#"{"type":"assistant","message":{"id":"msg_B"}}"#, "\n",
        )
        .as_bytes()
        .to_vec();
        bytes.extend_from_slice(b"{\"type\":\"assistant\",\"message\":{\"id\":\"msg_\xff\"}}\n");
        bytes.extend_from_slice(br#"{"type":"assistant","message":{"id":"#);
        let log = SessionLog::parse_bytes(&bytes);
        assert_eq!(log.message_ids, ["msg_A", "msg_B"]);
        assert_eq!(log.messages[0].lines, 2);
        assert_eq!((log.entries, log.unparseable_lines), (5, 4));
        assert_eq!(log.spawns.len(), 2);
        let link = &log.links[0];
        assert_eq!(link.agent_id, "abc");
        assert_eq!(link.status, Value::from("unknown"));
        assert_eq!(link.duration_ms, Value::from(5));
        let spawn = log.spawn_for(link).unwrap();
        assert_eq!(spawn.subagent_type.as_deref(), Some("Explore"));
        assert_eq!(
            log.first_time.unwrap().isoformat(),
            "2026-03-25T19:42:10.600000+00:00"
        );
    }

    #[test]
    fn lone_surrogates_are_read_as_cpython_reads_them() {
        // Claude Code before 2.1.132 cut text inside an emoji and wrote a lone `\ud83d`.
        let log = SessionLog::parse_bytes(
            br#"{"type":"assistant","timestamp":"2026-03-25T19:42:10Z","message":{"id":"msg_A","content":[{"type":"text","text":"cut \ud83d"}]}}"#,
        );
        assert_eq!((log.entries, log.unparseable_lines), (1, 0));
        assert_eq!(log.message_ids, ["msg_A"]);
    }

    /// Every session file of the fixtures and examples (real Claude Code logs 1.0–2.1
    /// among them) and a set of odd lines read the same pruned as in full: each pruned line
    /// is its full parse restricted to the members read, and the logs are equal.
    #[test]
    fn pruned_lines_read_as_the_full_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files: Vec<PathBuf> = ["tests/fixtures", "examples"]
            .iter()
            .flat_map(|d| walkdir::WalkDir::new(root.join(d)))
            .filter_map(Result::ok)
            .map(walkdir::DirEntry::into_path)
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        files.sort();
        assert!(files.len() >= 50, "fixtures not found: {}", files.len());
        let odd = concat!(
            // Keys read, written twice: the last wins, in both.
            r#"{"type":"user","type":"assistant","message":{"id":"msg_1","id":"msg_2","content":[]}}"#, "\n",
            // A lone surrogate or NaN where nothing is read: the full parse (CPython's).
            r#"{"type":"assistant","message":{"id":"msg_3","content":[{"type":"text","text":"ok","x":"\ud800"}]}}"#, "\n",
            r#"{"type":"assistant","junk":NaN,"message":{"id":"msg_4"}}"#, "\n",
            // Members of the wrong kind are kept whole.
            r#"{"type":"assistant","message":["msg_5",{"id":"msg_6"}]}"#, "\n",
            r#"{"type":"user","message":{"content":"plain text"},"toolUseResult":"Error: x"}"#, "\n",
            r#"{"type":"user","toolUseResult":{"agentId":"a","status":null,"totalTokens":1e400},"message":{"content":[{"tool_use_id":"t","content":[{"deep":[[[[1]]]]}]}]}}"#, "\n",
            r#"{"type":"user","toolUseResult":{"totalDurationMs":12.50,"big":123456789012345678901234567890}}"#, "\n",
            // Nested past serde_json's limit where nothing is read.
            "{\"type\":\"assistant\",\"x\":", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
            "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "}\n",
            // Not objects, not JSON, trailing text.
            "[1,2]\n\"s\"\n{\"type\":\"user\"} x\n{\"type\":\n",
        );
        let mut pruned_lines = 0;
        let mut texts: Vec<(String, Vec<u8>)> = vec![("odd lines".into(), odd.into())];
        texts.extend(
            files
                .iter()
                .map(|f| (f.display().to_string(), std::fs::read(f).unwrap())),
        );
        for (name, bytes) in &texts {
            for line in String::from_utf8_lossy(bytes).lines() {
                let line = line.trim();
                if let Some(p) = prune::parse(line, &prune::ENTRY) {
                    pruned_lines += 1;
                    let full = crate::pyjson::to_serde(line).expect("pruned, so parseable");
                    assert_eq!(p, prune::restrict(&full, &prune::ENTRY), "{name}: {line}");
                }
            }
            let pruned = SessionLog::parse_bytes_with(bytes, true);
            let full = SessionLog::parse_bytes_with(bytes, false);
            assert_eq!(format!("{pruned:?}"), format!("{full:?}"), "{name}");
        }
        assert!(pruned_lines > 1000, "{pruned_lines}");
    }
}
