//! check-streams: verify the recorded SSE streams of a capture (the envelope's
//! `streamingChunks` are described in spec §2) against the event grammar of the
//! Anthropic Messages streaming API.
//!
//! Each rule has a stable snake_case name ([`Rule::name`]); a violation names the rule,
//! the index of the chunk where it shows, and a detail. Rows are streamed from a
//! read-only connection, one at a time, never loading the table (spec §7).
//!
//! Grammar checked: `message_start`, then content blocks one after another (each
//! `content_block_start`, deltas for its index only, `content_block_stop`; indices 0, 1,
//! 2, …), then one `message_delta` (stop reason and usage), then `message_stop` last.
//! `ping` may appear anywhere after `message_start`. An `error` event is reported as
//! such, and a stream it cut short is not blamed again for its missing end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::capture::{Capture, CaptureError};

/// The rules a stream must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// `streamingChunks` is an empty list.
    EmptyStream,
    /// A chunk is not `data: ` followed by one JSON object.
    NotSseData,
    /// An event whose `type` is missing or not one of the API's.
    UnknownEvent,
    /// The first event is not `message_start` (or there is none).
    MessageStartFirst,
    /// More than one `message_start`.
    MessageStartOnce,
    /// An event after `message_stop`, or a stream that does not end with one.
    MessageStopLast,
    /// More than one `message_stop`.
    MessageStopOnce,
    /// `content_block_start` indices are not 0, 1, 2, … (unique, in order).
    BlockIndexSequence,
    /// A block starts while another is still open.
    BlockOverlap,
    /// A delta for a block that is not the open one.
    DeltaOutsideBlock,
    /// A `content_block_stop` for a block that is not the open one.
    StopOutsideBlock,
    /// A block never stopped before `message_delta`/`message_stop`/the end.
    BlockNotStopped,
    /// A delta type that does not belong in its block type.
    DeltaTypeMismatch,
    /// The accumulated `input_json_delta`s of a tool_use block are not JSON.
    ToolInputJson,
    /// No `message_delta`, or more than one.
    MessageDeltaOnce,
    /// `message_delta` while a block is open, or a block event after it.
    MessageDeltaOrder,
    /// `message_delta.delta.stop_reason` missing or not one of the API's.
    StopReason,
    /// `message_delta` without a `usage` object.
    DeltaUsage,
    /// The `message_start` model is not the model the request asked for.
    ModelMismatch,
    /// An `error` event.
    ErrorEvent,
}

impl Rule {
    pub const ALL: [Rule; 20] = [
        Rule::EmptyStream,
        Rule::NotSseData,
        Rule::UnknownEvent,
        Rule::MessageStartFirst,
        Rule::MessageStartOnce,
        Rule::MessageStopLast,
        Rule::MessageStopOnce,
        Rule::BlockIndexSequence,
        Rule::BlockOverlap,
        Rule::DeltaOutsideBlock,
        Rule::StopOutsideBlock,
        Rule::BlockNotStopped,
        Rule::DeltaTypeMismatch,
        Rule::ToolInputJson,
        Rule::MessageDeltaOnce,
        Rule::MessageDeltaOrder,
        Rule::StopReason,
        Rule::DeltaUsage,
        Rule::ModelMismatch,
        Rule::ErrorEvent,
    ];

    /// The stable name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Rule::EmptyStream => "empty_stream",
            Rule::NotSseData => "not_sse_data",
            Rule::UnknownEvent => "unknown_event",
            Rule::MessageStartFirst => "message_start_first",
            Rule::MessageStartOnce => "message_start_once",
            Rule::MessageStopLast => "message_stop_last",
            Rule::MessageStopOnce => "message_stop_once",
            Rule::BlockIndexSequence => "block_index_sequence",
            Rule::BlockOverlap => "block_overlap",
            Rule::DeltaOutsideBlock => "delta_outside_block",
            Rule::StopOutsideBlock => "stop_outside_block",
            Rule::BlockNotStopped => "block_not_stopped",
            Rule::DeltaTypeMismatch => "delta_type_mismatch",
            Rule::ToolInputJson => "tool_input_json",
            Rule::MessageDeltaOnce => "message_delta_once",
            Rule::MessageDeltaOrder => "message_delta_order",
            Rule::StopReason => "stop_reason",
            Rule::DeltaUsage => "delta_usage",
            Rule::ModelMismatch => "model_mismatch",
            Rule::ErrorEvent => "error_event",
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Stop reasons the Messages API defines.
pub const STOP_REASONS: [&str; 6] = [
    "end_turn",
    "tool_use",
    "max_tokens",
    "stop_sequence",
    "pause_turn",
    "refusal",
];

/// One broken rule in one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub request_id: String,
    /// Index in `streamingChunks` where the violation shows (for something missing at
    /// the end: the last chunk).
    pub chunk: usize,
    pub rule: Rule,
    pub detail: String,
}

/// A violation inside one stream, before it is tied to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamViolation {
    pub chunk: usize,
    pub rule: Rule,
    pub detail: String,
}

/// What `check-streams` reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamReport {
    /// Streaming responses checked.
    pub checked: u64,
    /// Of those, how many broke at least one rule.
    pub with_violations: u64,
    /// Violations per rule name (every rule listed, zero included).
    pub by_rule: BTreeMap<&'static str, u64>,
    pub violations: Vec<Violation>,
    /// Rows read.
    pub rows: u64,
    /// Rows whose response is not a JSON object with a `streamingChunks` list.
    pub not_streaming: u64,
}

impl StreamReport {
    fn new() -> StreamReport {
        StreamReport {
            by_rule: Rule::ALL.iter().map(|r| (r.name(), 0)).collect(),
            ..StreamReport::default()
        }
    }

    /// One line per violation, then the summary.
    pub fn text(&self) -> String {
        let mut o = String::new();
        for v in &self.violations {
            let _ = writeln!(
                o,
                "{} chunk {}: {}: {}",
                v.request_id, v.chunk, v.rule, v.detail
            );
        }
        if !self.violations.is_empty() {
            o.push('\n');
        }
        let _ = writeln!(
            o,
            "streams checked: {}, with violations: {} ({} rows, {} without a stream)",
            self.checked, self.with_violations, self.rows, self.not_streaming
        );
        let broken: Vec<_> = self.by_rule.iter().filter(|(_, n)| **n > 0).collect();
        if broken.is_empty() {
            o.push_str("no violations\n");
        }
        for (rule, n) in broken {
            let _ = writeln!(o, "{rule}: {n}");
        }
        o
    }
}

/// Which rows to check.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Only this request.
    pub request_id: Option<String>,
    /// At most this many streaming responses.
    pub limit: Option<u64>,
}

#[derive(Debug, Error)]
pub enum StreamsError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("no request {0} in the capture")]
    NoSuchRequest(String),
}

/// The only envelope field needed; the rest is skipped without being built.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "streamingChunks")]
    chunks: Option<Value>,
}

/// The only request field needed.
#[derive(Deserialize)]
struct RequestBody {
    model: Option<Value>,
}

/// Check every streaming response of the capture at `path`.
pub fn check_capture(path: &Path, opts: &CheckOptions) -> Result<StreamReport, StreamsError> {
    let capture = Capture::open(path)?;
    let mut report = StreamReport::new();
    capture.for_each_routed_row(opts.request_id.as_deref(), |row| {
        if opts.limit.is_some_and(|l| report.checked >= l) {
            return false;
        }
        report.rows += 1;
        let chunks = row
            .response
            .and_then(|t| serde_json::from_str::<Envelope>(t).ok())
            .and_then(|e| e.chunks);
        let Some(Value::Array(chunks)) = chunks else {
            report.not_streaming += 1;
            return true;
        };
        let expected = row
            .routed_model
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .or_else(|| {
                row.body
                    .and_then(|b| serde_json::from_str::<RequestBody>(b).ok())
                    .and_then(|b| b.model)
                    .and_then(|m| m.as_str().map(str::to_owned))
            });
        let found = check_stream(&chunks, expected.as_deref());
        report.checked += 1;
        if !found.is_empty() {
            report.with_violations += 1;
        }
        for v in found {
            *report.by_rule.entry(v.rule.name()).or_default() += 1;
            report.violations.push(Violation {
                request_id: row.id.to_owned(),
                chunk: v.chunk,
                rule: v.rule,
                detail: v.detail,
            });
        }
        true
    })?;
    if let Some(id) = &opts.request_id {
        if report.rows == 0 {
            return Err(StreamsError::NoSuchRequest(id.clone()));
        }
    }
    Ok(report)
}

/// The open content block.
struct Block {
    index: u64,
    kind: String,
    start_chunk: usize,
    json: String,
}

/// Delta types allowed in a block type; blocks of other types take no deltas.
fn allowed_deltas(kind: &str) -> &'static [&'static str] {
    match kind {
        "thinking" => &["thinking_delta", "signature_delta"],
        "text" => &["text_delta", "citations_delta"],
        "tool_use" | "server_tool_use" => &["input_json_delta"],
        _ => &[],
    }
}

/// Whether the response model is the requested one: equal, or the requested alias
/// resolved to a dated snapshot (`claude-x` → `claude-x-20250101`).
fn model_matches(expected: &str, got: &str) -> bool {
    if expected == got {
        return true;
    }
    got.strip_prefix(expected)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
}

/// `data: {json object}` exactly; `None` otherwise.
fn data_event(line: &str) -> Option<Value> {
    let payload = line.strip_prefix("data: ")?;
    serde_json::from_str::<Value>(payload)
        .ok()
        .filter(Value::is_object)
}

/// At most 80 characters of a chunk, for details.
fn snippet(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{out:?}")
}

/// Check one stream. `expected_model` is the model the request asked for.
pub fn check_stream(chunks: &[Value], expected_model: Option<&str>) -> Vec<StreamViolation> {
    let mut out = Vec::new();
    let mut v = |chunk: usize, rule: Rule, detail: String| {
        out.push(StreamViolation {
            chunk,
            rule,
            detail,
        })
    };
    if chunks.is_empty() {
        v(0, Rule::EmptyStream, "streamingChunks is empty".into());
        return out;
    }
    let mut events = 0usize;
    let mut start_at: Option<usize> = None;
    let mut stop_at: Option<usize> = None;
    let mut after_stop_reported = false;
    let mut delta_at: Option<usize> = None;
    let mut error_seen = false;
    let mut open: Option<Block> = None;
    let mut next_index: u64 = 0;
    for (i, raw) in chunks.iter().enumerate() {
        let Some(line) = raw.as_str() else {
            v(i, Rule::NotSseData, format!("chunk is not a string: {raw}"));
            continue;
        };
        let Some(ev) = data_event(line) else {
            v(
                i,
                Rule::NotSseData,
                format!("expected `data: {{json}}`, got {}", snippet(line)),
            );
            continue;
        };
        let ty = ev.get("type").and_then(Value::as_str).unwrap_or("");
        // An error may come first (the API fails before starting the message).
        if events == 0 && ty != "message_start" && ty != "error" {
            v(i, Rule::MessageStartFirst, format!("first event is {ty:?}"));
        }
        events += 1;
        if let Some(s) = stop_at {
            if ty != "message_stop" && !after_stop_reported {
                v(
                    i,
                    Rule::MessageStopLast,
                    format!("{ty:?} after message_stop at chunk {s}"),
                );
                after_stop_reported = true;
            }
        }
        let index = ev.get("index").and_then(Value::as_u64);
        match ty {
            "message_start" => match start_at {
                Some(s) => v(
                    i,
                    Rule::MessageStartOnce,
                    format!("second message_start (first at chunk {s})"),
                ),
                None => {
                    start_at = Some(i);
                    let got = ev.pointer("/message/model").and_then(Value::as_str);
                    match (expected_model, got) {
                        (Some(want), Some(got)) if !model_matches(want, got) => v(
                            i,
                            Rule::ModelMismatch,
                            format!("stream model {got:?}, request model {want:?}"),
                        ),
                        (Some(want), None) => v(
                            i,
                            Rule::ModelMismatch,
                            format!("message_start has no model, request model {want:?}"),
                        ),
                        _ => {}
                    }
                }
            },
            "ping" => {}
            "content_block_start" => {
                if let Some(d) = delta_at {
                    v(
                        i,
                        Rule::MessageDeltaOrder,
                        format!("content_block_start after message_delta at chunk {d}"),
                    );
                }
                let kind = ev
                    .pointer("/content_block/type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                if let Some(b) = &open {
                    v(
                        i,
                        Rule::BlockOverlap,
                        format!(
                            "block {index:?} starts while block {} (chunk {}) is open",
                            b.index, b.start_chunk
                        ),
                    );
                }
                match index {
                    None => v(
                        i,
                        Rule::BlockIndexSequence,
                        "content_block_start without an integer index".into(),
                    ),
                    Some(n) if n != next_index => v(
                        i,
                        Rule::BlockIndexSequence,
                        format!("index {n}, expected {next_index}"),
                    ),
                    Some(_) => {}
                }
                let n = index.unwrap_or(next_index);
                next_index = next_index.max(n + 1);
                open = Some(Block {
                    index: n,
                    kind,
                    start_chunk: i,
                    json: String::new(),
                });
            }
            "content_block_delta" => {
                let dty = ev
                    .pointer("/delta/type")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                match &mut open {
                    Some(b) if index == Some(b.index) => {
                        if !allowed_deltas(&b.kind).contains(&dty) {
                            v(
                                i,
                                Rule::DeltaTypeMismatch,
                                format!("{dty:?} in a {:?} block (index {})", b.kind, b.index),
                            );
                        } else if dty == "input_json_delta" {
                            match ev.pointer("/delta/partial_json").and_then(Value::as_str) {
                                Some(p) => b.json.push_str(p),
                                None => v(
                                    i,
                                    Rule::ToolInputJson,
                                    "input_json_delta without a partial_json string".into(),
                                ),
                            }
                        }
                    }
                    Some(b) => v(
                        i,
                        Rule::DeltaOutsideBlock,
                        format!("delta for index {index:?}, open block is {}", b.index),
                    ),
                    None => v(
                        i,
                        Rule::DeltaOutsideBlock,
                        format!("delta for index {index:?} with no open block"),
                    ),
                }
            }
            "content_block_stop" => match open.take() {
                Some(b) if index == Some(b.index) => {
                    if matches!(b.kind.as_str(), "tool_use" | "server_tool_use") {
                        let text = if b.json.trim().is_empty() {
                            "{}"
                        } else {
                            b.json.as_str()
                        };
                        if let Err(e) = serde_json::from_str::<Value>(text) {
                            v(
                                i,
                                Rule::ToolInputJson,
                                format!("tool input of block {} is not JSON: {e}", b.index),
                            );
                        }
                    }
                }
                other => {
                    let what = match &other {
                        Some(b) => format!("open block is {}", b.index),
                        None => "no open block".to_owned(),
                    };
                    v(
                        i,
                        Rule::StopOutsideBlock,
                        format!("content_block_stop for index {index:?}, {what}"),
                    );
                    open = other;
                }
            },
            "message_delta" => {
                if let Some(b) = open.take() {
                    v(
                        i,
                        Rule::MessageDeltaOrder,
                        format!("message_delta while block {} is open", b.index),
                    );
                    v(
                        i,
                        Rule::BlockNotStopped,
                        format!("block {} (chunk {}) never stopped", b.index, b.start_chunk),
                    );
                }
                if let Some(d) = delta_at {
                    v(
                        i,
                        Rule::MessageDeltaOnce,
                        format!("second message_delta (first at chunk {d})"),
                    );
                }
                delta_at.get_or_insert(i);
                match ev.pointer("/delta/stop_reason") {
                    Some(Value::String(r)) if STOP_REASONS.contains(&r.as_str()) => {}
                    Some(Value::String(r)) => {
                        v(i, Rule::StopReason, format!("unknown stop_reason {r:?}"))
                    }
                    other => v(
                        i,
                        Rule::StopReason,
                        format!("stop_reason is {}", other.unwrap_or(&Value::Null)),
                    ),
                }
                if !matches!(ev.get("usage"), Some(Value::Object(_))) {
                    v(
                        i,
                        Rule::DeltaUsage,
                        "message_delta without a usage object".into(),
                    );
                }
            }
            "message_stop" => {
                match stop_at {
                    Some(s) => v(
                        i,
                        Rule::MessageStopOnce,
                        format!("second message_stop (first at chunk {s})"),
                    ),
                    None => stop_at = Some(i),
                }
                if let Some(b) = open.take() {
                    v(
                        i,
                        Rule::BlockNotStopped,
                        format!("block {} (chunk {}) never stopped", b.index, b.start_chunk),
                    );
                }
                if delta_at.is_none() && stop_at == Some(i) {
                    v(
                        i,
                        Rule::MessageDeltaOnce,
                        "message_stop without message_delta".into(),
                    );
                }
            }
            "error" => {
                error_seen = true;
                let kind = ev
                    .pointer("/error/type")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                let msg = ev
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                v(i, Rule::ErrorEvent, format!("{kind}: {msg}"));
            }
            other => v(i, Rule::UnknownEvent, format!("event type {other:?}")),
        }
    }
    // What is missing at the end; a stream cut by an error event is not blamed again.
    let last = chunks.len() - 1;
    if events > 0 && !error_seen {
        if let Some(b) = open {
            v(
                last,
                Rule::BlockNotStopped,
                format!("block {} (chunk {}) never stopped", b.index, b.start_chunk),
            );
        }
        if stop_at.is_none() {
            if delta_at.is_none() {
                v(
                    last,
                    Rule::MessageDeltaOnce,
                    "stream has no message_delta".into(),
                );
            }
            v(
                last,
                Rule::MessageStopLast,
                "stream ends without message_stop".into(),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(lines: &[&str]) -> Vec<Value> {
        lines
            .iter()
            .map(|l| Value::from(format!("data: {l}")))
            .collect()
    }

    const START: &str = r#"{"type":"message_start","message":{"model":"claude-x","usage":{}}}"#;
    const DELTA: &str = r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":3}}"#;
    const STOP: &str = r#"{"type":"message_stop"}"#;

    #[test]
    fn valid_stream_passes() {
        let s = stream(&[
            START,
            r#"{"type":"ping"}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"a"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"s"}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","input":{}}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"1}"}}"#,
            r#"{"type":"content_block_stop","index":1}"#,
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","input":{}}}"#,
            r#"{"type":"content_block_stop","index":2}"#,
            DELTA,
            STOP,
        ]);
        assert_eq!(check_stream(&s, Some("claude-x")), []);
        assert!(check_stream(&s, Some("claude"))
            .iter()
            .any(|v| v.rule == Rule::ModelMismatch));
        assert!(model_matches("claude-x", "claude-x-20250101"));
    }

    #[test]
    fn missing_end_is_reported_at_the_last_chunk() {
        let s = stream(&[
            START,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text"}}"#,
        ]);
        let rules: Vec<(usize, Rule)> = check_stream(&s, None)
            .iter()
            .map(|v| (v.chunk, v.rule))
            .collect();
        assert_eq!(
            rules,
            [
                (1, Rule::BlockNotStopped),
                (1, Rule::MessageDeltaOnce),
                (1, Rule::MessageStopLast)
            ]
        );
    }
}
