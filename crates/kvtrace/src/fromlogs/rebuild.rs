//! The requests of a session log, rebuilt in the API's shape from the log alone.
//!
//! A log holds every message of the conversation in order: user entries (prompts, tool
//! results, meta text, compaction summaries) and assistant entries (one line per content
//! block of a response, sharing `message.id`). Replaying them gives, before each response,
//! the `messages` list Claude Code sent: consecutive entries of one role form one message
//! (parallel tool results are one user message, a response's blocks one assistant
//! message), a `compact_boundary` starts the list again (the summary entry that follows
//! opens the new context), and thinking blocks stay where they were (their signatures are
//! dropped by the normal serialization rules, spec §4.2). What the log does not hold —
//! the tool definitions, the system prompt, the reminders Claude Code injects — is not
//! here; see `super::prefix`.

use crate::capture::{Response, Usage};
use crate::pyjson::{self, Value};
use crate::stamp::Stamp;

/// One response of the log and the request that produced it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// `message.id` of the response.
    pub message_id: String,
    /// When the request was sent: the time of the entry before the response's first line
    /// (the prompt or tool result it answers), else that first line's own.
    pub time: Stamp,
    pub model: String,
    /// The `messages` section, serialized (CPython's compact form, log key order), as the
    /// change from the previous request of its stream: [`Replay`] gives the text back.
    pub messages: Delta,
    /// The API's prompt tokens for it: input + cache read + cache creation (last line).
    pub api_prompt_tokens: Option<u64>,
    /// The response as a capture would describe it (usage, stop, content types, times).
    pub response: Response,
    /// The Claude Code version that wrote the response's first line.
    pub version: Option<String>,
    /// The tools and system prompt sent, when the log journals its requests.
    pub shape: Option<std::sync::Arc<Shape>>,
    /// `messages` is the journal's copy of what was sent, not a rebuild.
    pub journaled: bool,
}

/// A text stored as the change from the one before it: keep the first `keep` bytes of
/// that text, then append `tail`. Each request re-sends its conversation so far, so a
/// stream's texts held whole would grow with the square of its length; as deltas they
/// take about the size of its last one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    keep: usize,
    tail: String,
}

impl Delta {
    /// The change from `before` to `after`.
    pub fn between(before: &str, after: &str) -> Delta {
        let mut keep =
            crate::tokens::incremental::common_prefix(before.as_bytes(), after.as_bytes());
        while !after.is_char_boundary(keep) {
            keep -= 1;
        }
        Delta {
            keep,
            tail: after[keep..].to_owned(),
        }
    }
}

/// Turns a stream's deltas, applied in order, back into its texts.
#[derive(Debug, Default)]
pub struct Replay {
    text: String,
}

impl Replay {
    /// The next text of the stream.
    pub fn apply(&mut self, d: &Delta) -> &str {
        let keep = if self.text.is_char_boundary(d.keep) {
            d.keep
        } else {
            0
        };
        self.text.truncate(keep);
        self.text.push_str(&d.tail);
        &self.text
    }
}

/// Keep the requests `keep` accepts, their deltas recomputed against each other.
pub fn retain(requests: &mut Vec<LoggedRequest>, keep: impl Fn(&LoggedRequest) -> bool) {
    if requests.iter().all(&keep) {
        return;
    }
    let mut replay = Replay::default();
    let mut last = String::new();
    for mut r in std::mem::take(requests) {
        let text = replay.apply(&r.messages);
        if keep(&r) {
            r.messages = Delta::between(&last, text);
            text.clone_into(&mut last);
            requests.push(r);
        }
    }
}

/// The `tools` and `system` sections of a request, serialized, from the request journal
/// Claude Code 2.1.x writes into its logs: an `api-request-shape` entry holds a shape
/// (keyed by `shapeHash`), and each `api-request` entry, written as the request is sent,
/// names the shape it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub tools: String,
    pub system: String,
}

impl Shape {
    /// A journal shape as it goes on the wire: each tool's `input_schema` loses its
    /// `$schema` member and each tool its `defer_loading` flag, which Claude Code keeps
    /// locally and does not send (checked against the proxy's copy of the same requests).
    pub(super) fn from_entry(shape: &Value) -> Option<Shape> {
        let mut tools = shape.get("tools")?.clone();
        if let Value::Array(list) = &mut tools {
            for tool in list {
                if let Value::Object(members) = tool {
                    members.retain(|(k, _)| &**k != "defer_loading");
                    for (k, v) in members.iter_mut() {
                        if let (true, Value::Object(schema)) = (&**k == "input_schema", v) {
                            schema.retain(|(k, _)| &**k != "$schema");
                        }
                    }
                }
            }
        }
        let system = shape.get("system")?;
        let mut out = Shape {
            tools: String::new(),
            system: String::new(),
        };
        tools.write_to(&mut out.tools);
        system.write_to(&mut out.system);
        Some(out)
    }
}

/// A message being built: its role and its content blocks.
struct Message {
    role: &'static str,
    /// A string content kept as it is while the message has only that.
    content: Content,
}

enum Content {
    Text(Value),
    Blocks(Vec<Value>),
}

impl Message {
    /// Changes whenever the message does (entries only ever join it).
    fn version(&self) -> (bool, usize) {
        match &self.content {
            Content::Text(_) => (true, 1),
            Content::Blocks(b) => (false, b.len()),
        }
    }

    fn content_value(&self) -> Value {
        match &self.content {
            Content::Text(v) => v.clone(),
            Content::Blocks(b) => Value::Array(b.clone()),
        }
    }
}

impl From<Value> for Content {
    fn from(v: Value) -> Content {
        match v {
            Value::Array(blocks) => Content::Blocks(blocks),
            other => Content::Text(other),
        }
    }
}

impl Content {
    fn into_blocks(self) -> Vec<Value> {
        match self {
            Content::Blocks(b) => b,
            // A string becomes one text block when a second entry joins the message.
            Content::Text(s) => vec![Value::Object(vec![
                ("type".into(), Value::Str("text".into())),
                ("text".into(), s),
            ])],
        }
    }
}

/// Which entries of a file make the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chain {
    /// The main chain of a parent file (its inline sidechains are sub-agents of their own).
    Main,
    /// Every entry (an agent file).
    Whole,
    /// One inline sidechain (1.0.x): the sidechain entry with this `uuid` and the
    /// sidechain entries descending from it by `parentUuid`.
    Inline(String),
}

/// The rebuilt requests of one log, in order.
pub fn requests_of(bytes: &[u8], chain: &Chain) -> Vec<LoggedRequest> {
    let mut members: rustc_hash::FxHashSet<String> = rustc_hash::FxHashSet::default();
    let mut out: Vec<LoggedRequest> = Vec::new();
    let mut messages: Vec<Message> = Vec::new();
    // Each response's request and assistant message, by id: a response whose lines are
    // interleaved with the results of its first tool calls (background agents, 2.1.x)
    // is still one response and one message.
    let mut seen: rustc_hash::FxHashMap<String, (usize, usize)> = Default::default();
    let mut before: Option<Stamp> = None;
    // The request journal, when the log has one (2.1.x), and which version of each
    // transcript message it has hashed: (index, text or block count).
    let mut journal = super::journal::Journal::default();
    // The previous request's messages, whole (each request keeps only its delta): the
    // journal's copy, or `texts`' (rebuilt) text.
    let mut last: Option<String> = None;
    let mut texts = Texts::default();
    let mut hashed: Vec<(bool, usize)> = Vec::new();
    for line in bytes.split(|&b| b == b'\n') {
        let Some(entry) = std::str::from_utf8(line.trim_ascii())
            .ok()
            .filter(|l| !l.is_empty())
            .and_then(|l| pyjson::parse(l).ok())
        else {
            continue;
        };
        let side = entry.get("isSidechain") == Some(&Value::Bool(true));
        let take = match chain {
            Chain::Main => !side,
            Chain::Whole => true,
            Chain::Inline(root) => {
                let uuid = entry.get("uuid").and_then(Value::as_string);
                let parent = entry.get("parentUuid").and_then(Value::as_string);
                let ours = side
                    && (uuid.as_deref() == Some(root.as_str())
                        || parent.is_some_and(|p| members.contains(&p)));
                if ours {
                    members.extend(uuid);
                }
                ours
            }
        };
        if !take {
            continue;
        }
        let stamp = entry
            .get("timestamp")
            .and_then(Value::as_string)
            .and_then(|t| Stamp::parse(&t));
        let kind = entry.get("type").and_then(Value::as_string);
        match kind.as_deref() {
            Some(k @ "api-request") => {
                // The messages it names are the transcript's as they stand now.
                hashed.truncate(messages.len());
                for (i, m) in messages.iter().enumerate() {
                    let version = m.version();
                    if hashed.get(i) != Some(&version) {
                        journal.saw(m.role, &m.content_value());
                        match hashed.get_mut(i) {
                            Some(h) => *h = version,
                            None => hashed.push(version),
                        }
                    }
                }
                journal.read(k, &entry);
            }
            Some(k @ ("api-request-shape" | "api-request-blob")) => {
                journal.read(k, &entry);
            }
            Some("system")
                if entry.get("subtype").and_then(Value::as_string).as_deref()
                    == Some("compact_boundary") =>
            {
                messages.clear();
                texts.changed(0);
                seen.clear();
                hashed.clear();
            }
            Some("user") => {
                let Some(content) = entry.get("message").and_then(|m| m.get("content")) else {
                    continue;
                };
                push(&mut messages, "user", content.clone());
                texts.changed(messages.len() - 1);
                before = stamp.or(before);
            }
            Some("assistant") => {
                let Some(msg) = entry.get("message") else {
                    continue;
                };
                let model = msg.get("model").and_then(Value::as_string);
                // Locally written stubs (API errors, "No response requested") are not
                // responses of the API.
                if model.as_deref() == Some("<synthetic>") {
                    continue;
                }
                let Some(id) = msg.get("id").and_then(Value::as_string) else {
                    continue;
                };
                let content = msg
                    .get("content")
                    .cloned()
                    .unwrap_or(Value::Array(Vec::new()));
                if let Some(&(request, message)) = seen.get(&id) {
                    describe(&mut out[request], msg, &content, stamp);
                    texts.changed(message);
                    if let Some(m) = messages.get_mut(message) {
                        let mut blocks =
                            std::mem::replace(&mut m.content, Content::Blocks(Vec::new()))
                                .into_blocks();
                        blocks.extend(Content::from(content).into_blocks());
                        m.content = Content::Blocks(blocks);
                    }
                    before = stamp.or(before);
                    continue;
                }
                let Some(time) = before.or(stamp) else {
                    continue;
                };
                let sent = entry
                    .get("requestRef")
                    .and_then(Value::as_string)
                    .and_then(|r| journal.take(&r))
                    .unwrap_or_default();
                let journaled = sent.messages.is_some();
                let delta = match sent.messages {
                    Some(text) => {
                        let before = last.as_deref().unwrap_or(texts.text());
                        let delta = Delta::between(before, &text);
                        last = Some(text);
                        delta
                    }
                    None => {
                        let keep = texts.update(&messages);
                        let text = texts.text();
                        match last.take() {
                            // After a journaled request.
                            Some(before) => Delta::between(&before, text),
                            // After a rebuilt one, or the first (`keep` is 0).
                            None => Delta {
                                keep,
                                tail: text[keep..].to_owned(),
                            },
                        }
                    }
                };
                out.push(LoggedRequest {
                    message_id: id.clone(),
                    time,
                    model: model.clone().unwrap_or_else(|| "unknown".to_owned()),
                    journaled,
                    messages: delta,
                    api_prompt_tokens: None,
                    response: Response {
                        message_id: Some(id.clone()),
                        model: model.clone(),
                        is_streaming: Some(true),
                        ..Response::default()
                    },
                    version: entry.get("version").and_then(Value::as_string),
                    shape: sent.shape,
                });
                let request = out.len() - 1;
                describe(&mut out[request], msg, &content, stamp);
                push(&mut messages, "assistant", content);
                texts.changed(messages.len() - 1);
                seen.insert(id, (request, messages.len() - 1));
                before = stamp.or(before);
            }
            _ => {}
        }
    }
    out
}

/// Update a request's response with one more line of it (the last line's usage and stop
/// reason win, as the API streams them).
fn describe(r: &mut LoggedRequest, msg: &Value, content: &Value, stamp: Option<Stamp>) {
    if let Value::Array(blocks) = content {
        for b in blocks {
            if let Some(t) = b.get("type").and_then(Value::as_string) {
                if !r.response.content_types.contains(&t) {
                    r.response.content_types.push(t);
                }
            }
        }
    }
    if let Some(u) = msg.get("usage") {
        let int = |k: &str| {
            u.get(k).and_then(|v| match v {
                Value::Number(n) => n.parse::<u64>().ok(),
                _ => None,
            })
        };
        r.response.usage = Usage {
            input: int("input_tokens"),
            output: int("output_tokens"),
            cache_read: int("cache_read_input_tokens"),
            cache_creation: int("cache_creation_input_tokens"),
        };
        let u = r.response.usage;
        r.api_prompt_tokens = u
            .input
            .map(|i| i + u.cache_read.unwrap_or(0) + u.cache_creation.unwrap_or(0));
    }
    if let Some(s) = msg.get("stop_reason").and_then(Value::as_string) {
        r.response.stop_reason = Some(s);
    }
    if let Some(done) = stamp {
        r.response.completed_at = Some(done);
        r.response.response_time_ms = Some((done.micros - r.time.micros).max(0) as f64 / 1000.0);
    }
}

/// Append an entry's content as a message of `role`, joining the previous message when it
/// has the same role.
fn push(messages: &mut Vec<Message>, role: &'static str, content: Value) {
    let content = Content::from(content);
    match messages.last_mut() {
        Some(last) if last.role == role => {
            let mut blocks =
                std::mem::replace(&mut last.content, Content::Blocks(Vec::new())).into_blocks();
            blocks.extend(content.into_blocks());
            last.content = Content::Blocks(blocks);
        }
        _ => messages.push(Message { role, content }),
    }
}

/// The messages as the API's `messages` array, serialized, updated in place: a request
/// re-sends every message of the one before, so only the messages from the first that
/// changed are serialized again, and the text before them is kept (re-serializing and
/// copying every message per request grew with the square of the conversation's length).
#[derive(Default)]
struct Texts {
    /// The text of the messages as last updated.
    text: String,
    /// The end in `text` of each message's serialization.
    ends: Vec<usize>,
    /// How many leading messages are unchanged since the last update.
    valid: usize,
}

impl Texts {
    /// Message `i` (and any after it) changed, appeared or went away.
    fn changed(&mut self, i: usize) {
        self.valid = self.valid.min(i);
    }

    /// The text as last updated (empty before the first update).
    fn text(&self) -> &str {
        &self.text
    }

    /// Bring the text up to `messages`; returns how many of its leading bytes are
    /// unchanged from the text before (0 on the first update).
    fn update(&mut self, messages: &[Message]) -> usize {
        let unchanged = self.valid.min(self.ends.len()).min(messages.len());
        let keep = match unchanged {
            _ if self.text.is_empty() => 0,
            0 => 1,
            n => self.ends[n - 1],
        };
        self.text.truncate(keep);
        if keep == 0 {
            self.text.push('[');
        }
        self.ends.truncate(unchanged);
        for (i, m) in messages.iter().enumerate().skip(unchanged) {
            if i > 0 {
                self.text.push(',');
            }
            self.text.push_str("{\"role\":\"");
            self.text.push_str(m.role);
            self.text.push_str("\",\"content\":");
            match &m.content {
                Content::Text(v) => v.write_to(&mut self.text),
                Content::Blocks(b) => Value::Array(b.clone()).write_to(&mut self.text),
            }
            self.text.push('}');
            self.ends.push(self.text.len());
        }
        self.text.push(']');
        self.valid = messages.len();
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_grow_merge_and_restart_after_a_compaction() {
        let log = concat!(
            r#"{"type":"user","timestamp":"2026-01-01T00:00:00Z","message":{"role":"user","content":"hi"}}"#,
            "\n",
            r#"{"type":"assistant","timestamp":"2026-01-01T00:00:02Z","version":"2.1.0","message":{"id":"m1","model":"x","content":[{"type":"thinking","thinking":"t","signature":"s"}]}}"#,
            "\n",
            r#"{"type":"assistant","timestamp":"2026-01-01T00:00:03Z","message":{"id":"m1","model":"x","content":[{"type":"tool_use","id":"a","name":"Read","input":{}},{"type":"tool_use","id":"b","name":"Read","input":{}}],"stop_reason":"tool_use","usage":{"input_tokens":3,"cache_read_input_tokens":100,"output_tokens":9}}}"#,
            "\n",
            r#"{"type":"user","timestamp":"2026-01-01T00:00:04Z","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"a","content":"1"}]}}"#,
            "\n",
            r#"{"type":"user","timestamp":"2026-01-01T00:00:05Z","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"b","content":"2"}]}}"#,
            "\n",
            r#"{"type":"user","isSidechain":true,"timestamp":"2026-01-01T00:00:05Z","message":{"role":"user","content":"inline agent"}}"#,
            "\n",
            r#"{"type":"assistant","timestamp":"2026-01-01T00:00:07Z","message":{"id":"m2","model":"x","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn"}}"#,
            "\n",
            r#"{"type":"system","subtype":"compact_boundary","timestamp":"2026-01-01T00:01:00Z"}"#,
            "\n",
            r#"{"type":"user","isCompactSummary":true,"timestamp":"2026-01-01T00:01:01Z","message":{"role":"user","content":"Summary"}}"#,
            "\n",
            r#"{"type":"assistant","timestamp":"2026-01-01T00:01:03Z","message":{"id":"m3","model":"<synthetic>","content":[]}}"#,
            "\n",
            r#"{"type":"assistant","timestamp":"2026-01-01T00:01:04Z","message":{"id":"m4","model":"x","content":[{"type":"text","text":"go"}]}}"#,
            "\n",
        );
        let r = requests_of(log.as_bytes(), &Chain::Main);
        let mut replay = Replay::default();
        let texts: Vec<String> = r
            .iter()
            .map(|r| replay.apply(&r.messages).to_owned())
            .collect();
        let ids: Vec<&str> = r.iter().map(|r| r.message_id.as_str()).collect();
        assert_eq!(ids, ["m1", "m2", "m4"]);
        assert_eq!(texts[0], r#"[{"role":"user","content":"hi"}]"#);
        assert_eq!(r[0].version.as_deref(), Some("2.1.0"));
        // The response's two lines are one assistant message; the two results one user
        // message; the inline sidechain entry is left out.
        assert_eq!(
            texts[1],
            concat!(
                r#"[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"s"},"#,
                r#"{"type":"tool_use","id":"a","name":"Read","input":{}},{"type":"tool_use","id":"b","name":"Read","input":{}}]},"#,
                r#"{"role":"user","content":[{"type":"tool_result","tool_use_id":"a","content":"1"},{"type":"tool_result","tool_use_id":"b","content":"2"}]}]"#
            )
        );
        assert_eq!(r[1].time, Stamp::parse("2026-01-01T00:00:05Z").unwrap());
        assert_eq!(r[0].api_prompt_tokens, Some(103));
        assert_eq!(r[0].response.stop(), "tool_use");
        assert_eq!(r[0].response.output_types(), ["thinking", "tool_use"]);
        assert_eq!(r[0].response.response_time_ms, Some(3000.0));
        // After the compaction the list starts again from the summary.
        assert_eq!(texts[2], r#"[{"role":"user","content":"Summary"}]"#);
        // Dropping a request keeps the others' texts.
        let mut kept = r.clone();
        retain(&mut kept, |r| r.message_id != "m2");
        let mut replay = Replay::default();
        let again: Vec<String> = kept
            .iter()
            .map(|r| replay.apply(&r.messages).to_owned())
            .collect();
        assert_eq!(again, [texts[0].clone(), texts[2].clone()]);
    }

    #[test]
    fn deltas_replay_to_their_texts() {
        let texts = [
            "",
            "[1]",
            "[1,2]",
            "[1,2,\"\u{e9}\"]",
            "[1,2,\"\u{e8}\"]",
            "[9]",
            "",
        ];
        let mut last = "";
        let mut replay = Replay::default();
        for t in texts {
            let d = Delta::between(last, t);
            assert!(d.tail.len() <= t.len());
            assert_eq!(replay.apply(&d), t);
            last = t;
        }
        // é and è share their first UTF-8 byte: the delta keeps whole characters.
        let d = Delta::between("\u{e9}", "\u{e8}");
        assert_eq!((d.keep, d.tail.as_str()), (0, "\u{e8}"));
    }

    #[test]
    fn texts_updated_in_place_equal_texts_from_scratch() {
        // Messages appended, extended, replaced and cleared (a compaction), as requests_of
        // does between requests: each update equals a serialization from scratch, and the
        // bytes it reports unchanged are the previous text's.
        let text = |s: &str| Content::Text(Value::Str(s.into()));
        let block = |s: &str| Value::Str(s.into());
        let mut messages: Vec<Message> = Vec::new();
        let mut texts = Texts::default();
        let mut before = String::new();
        for step in 0..40 {
            match step % 7 {
                0 | 3 => {
                    messages.push(Message {
                        role: if messages.len() % 2 == 0 {
                            "user"
                        } else {
                            "assistant"
                        },
                        content: text(&format!("m{step}")),
                    });
                    texts.changed(messages.len() - 1);
                }
                1 => {
                    messages.push(Message {
                        role: "assistant",
                        content: Content::Blocks(vec![block("b")]),
                    });
                    texts.changed(messages.len() - 1);
                }
                2 | 5 => {
                    let at = step % messages.len().max(1);
                    if let Some(m) = messages.get_mut(at) {
                        m.content = Content::Blocks(vec![block("x"), block(&step.to_string())]);
                        texts.changed(at);
                    }
                }
                4 if step > 20 => {
                    messages.clear();
                    texts.changed(0);
                }
                _ => {}
            }
            let keep = texts.update(&messages);
            let mut fresh = Texts::default();
            assert_eq!(fresh.update(&messages), 0);
            assert_eq!(texts.text(), fresh.text(), "step {step}");
            assert_eq!(texts.text()[..keep], before[..keep], "step {step}");
            before = texts.text().to_owned();
        }
        assert!(before.starts_with('[') && before.ends_with(']'));
    }
}
