//! Content blocks and messages, and how each program writes them (spec §2, §3).
//!
//! One block is written four ways: in a request body as the Go proxy re-marshals it (a free-form
//! map: keys sorted, Go escaping), in a non-streaming API reply (API key order), in SSE chunks,
//! and in the session log (API key order, JavaScript escaping). Also here: reply bodies,
//! SSE chunk lines and the proxy's response envelope (Go `ResponseLog` field order).

use crate::ids::SynthRng;
use crate::json::{write_str, Dialect, J};
use rand::Rng;

/// The content of a `tool_result` block.
#[derive(Clone, Debug)]
pub enum ToolContent {
    /// A plain string.
    Text(String),
    /// A list of text blocks (what sub-agent results look like).
    Blocks(Vec<String>),
}

/// One content block.
#[derive(Clone, Debug)]
pub enum Block {
    /// `text`
    Text(String),
    /// `thinking` with its signature.
    Thinking {
        /// The reasoning text.
        text: String,
        /// Opaque signature.
        sig: String,
    },
    /// `tool_use`
    ToolUse {
        /// `toolu_…`
        id: String,
        /// Tool name.
        name: String,
        /// Input object (model's key order).
        input: J,
    },
    /// `tool_result`
    ToolResult {
        /// The `tool_use` it answers.
        id: String,
        /// Result content.
        content: ToolContent,
        /// Whether the tool failed.
        is_error: bool,
    },
}

const CC: &str = "\"cache_control\":{\"type\":\"ephemeral\"},";

impl Block {
    /// The block's `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Block::Text(_) => "text",
            Block::Thinking { .. } => "thinking",
            Block::ToolUse { .. } => "tool_use",
            Block::ToolResult { .. } => "tool_result",
        }
    }

    /// Go map order (sorted keys): `cache_control` sorts before every other key.
    pub fn write_go(&self, out: &mut String, cc: bool) {
        out.push('{');
        if cc {
            out.push_str(CC);
        }
        match self {
            Block::Text(t) => {
                out.push_str("\"text\":");
                write_str(out, t, Dialect::Go);
                out.push_str(",\"type\":\"text\"");
            }
            Block::Thinking { text, sig } => {
                out.push_str("\"signature\":");
                write_str(out, sig, Dialect::Go);
                out.push_str(",\"thinking\":");
                write_str(out, text, Dialect::Go);
                out.push_str(",\"type\":\"thinking\"");
            }
            Block::ToolUse { id, name, input } => {
                out.push_str("\"id\":");
                write_str(out, id, Dialect::Go);
                out.push_str(",\"input\":");
                input.write(out, Dialect::Go);
                out.push_str(",\"name\":");
                write_str(out, name, Dialect::Go);
                out.push_str(",\"type\":\"tool_use\"");
            }
            Block::ToolResult {
                id,
                content,
                is_error,
            } => {
                out.push_str("\"content\":");
                match content {
                    ToolContent::Text(t) => write_str(out, t, Dialect::Go),
                    ToolContent::Blocks(v) => text_blocks(out, v, true),
                }
                if *is_error {
                    out.push_str(",\"is_error\":true");
                }
                out.push_str(",\"tool_use_id\":");
                write_str(out, id, Dialect::Go);
                out.push_str(",\"type\":\"tool_result\"");
            }
        }
        out.push('}');
    }

    /// API / Claude Code key order in dialect `d`.
    pub fn write_api(&self, out: &mut String, d: Dialect) {
        match self {
            Block::Text(t) => {
                out.push_str("{\"type\":\"text\",\"text\":");
                write_str(out, t, d);
            }
            Block::Thinking { text, sig } => {
                out.push_str("{\"type\":\"thinking\",\"thinking\":");
                write_str(out, text, d);
                out.push_str(",\"signature\":");
                write_str(out, sig, d);
            }
            Block::ToolUse { id, name, input } => {
                out.push_str("{\"type\":\"tool_use\",\"id\":");
                write_str(out, id, d);
                out.push_str(",\"name\":");
                write_str(out, name, d);
                out.push_str(",\"input\":");
                input.write(out, d);
            }
            Block::ToolResult {
                id,
                content,
                is_error,
            } => {
                out.push_str("{\"tool_use_id\":");
                write_str(out, id, d);
                out.push_str(",\"type\":\"tool_result\",\"content\":");
                match content {
                    ToolContent::Text(t) => write_str(out, t, d),
                    ToolContent::Blocks(v) => {
                        out.push('[');
                        for (i, t) in v.iter().enumerate() {
                            if i > 0 {
                                out.push(',');
                            }
                            out.push_str("{\"type\":\"text\",\"text\":");
                            write_str(out, t, d);
                            out.push('}');
                        }
                        out.push(']');
                    }
                }
                if *is_error {
                    out.push_str(",\"is_error\":true");
                }
            }
        }
        out.push('}');
    }

    /// Rough size of the generated content in bytes (for output-token estimates).
    pub fn content_len(&self) -> usize {
        match self {
            Block::Text(t) => t.len(),
            Block::Thinking { text, .. } => text.len(),
            Block::ToolUse { input, .. } => input.to_string_in(Dialect::Js).len(),
            Block::ToolResult {
                content: ToolContent::Text(t),
                ..
            } => t.len(),
            Block::ToolResult {
                content: ToolContent::Blocks(v),
                ..
            } => v.iter().map(|t| t.len()).sum(),
        }
    }
}

/// One message of a request's `messages` list, with its Go serialization cached
/// (messages never change once appended; only the cache_control marker moves).
pub struct Msg {
    /// `user` or `assistant`.
    pub user: bool,
    /// Content blocks.
    pub blocks: Vec<Block>,
    /// `{"role":…,"content":[…]}` as the proxy stores it, without cache_control.
    pub go: String,
}

impl Msg {
    /// Build and serialize.
    pub fn new(user: bool, blocks: Vec<Block>) -> Msg {
        let mut m = Msg {
            user,
            blocks,
            go: String::new(),
        };
        let mut s = String::with_capacity(
            m.blocks.iter().map(|b| b.content_len() + 64).sum::<usize>() + 32,
        );
        m.write_go_fresh(&mut s, false);
        m.go = s;
        m
    }

    fn write_go_fresh(&self, out: &mut String, cc_last: bool) {
        // The proxy's AnthropicMessage struct: role, then content (interface{}).
        out.push_str(if self.user {
            "{\"role\":\"user\",\"content\":["
        } else {
            "{\"role\":\"assistant\",\"content\":["
        });
        let n = self.blocks.len();
        for (i, b) in self.blocks.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            b.write_go(out, cc_last && i + 1 == n);
        }
        out.push_str("]}");
    }

    /// Append the Go form, with a cache_control marker on the last block if `cc_last`.
    pub fn write_go(&self, out: &mut String, cc_last: bool) {
        if cc_last {
            self.write_go_fresh(out, true);
        } else {
            out.push_str(&self.go);
        }
    }
}

/// Token usage of one reply.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// Uncached input after the last cache breakpoint.
    pub input: u64,
    /// Input written to the cache.
    pub cache_creation: u64,
    /// Input read from the cache.
    pub cache_read: u64,
    /// Generated tokens.
    pub output: u64,
}

impl Usage {
    fn write_api(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            out,
            "{{\"input_tokens\":{},\"cache_creation_input_tokens\":{},\"cache_read_input_tokens\":{},\"output_tokens\":{}",
            self.input, self.cache_creation, self.cache_read, self.output
        );
    }
}

/// A reply's message id, model, content blocks and stop reason: what every stored form of
/// it (API message, Go-compacted stream body, SSE lines) writes.
#[derive(Clone, Copy)]
pub struct Reply<'a> {
    pub id: &'a str,
    pub model: &'a str,
    pub blocks: &'a [Block],
    pub stop: &'a str,
}

/// A non-streaming reply as the API sends it (key order id, type, role, model, content,
/// stop_reason, stop_sequence, usage), in dialect `d`.
pub fn api_message(out: &mut String, r: &Reply, u: &Usage, d: Dialect) {
    let (id, model, blocks, stop) = (r.id, r.model, r.blocks, r.stop);
    out.push_str("{\"id\":");
    write_str(out, id, d);
    out.push_str(",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    write_str(out, model, d);
    out.push_str(",\"content\":[");
    for (i, b) in blocks.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        b.write_api(out, d);
    }
    out.push_str("],\"stop_reason\":");
    write_str(out, stop, d);
    out.push_str(",\"stop_sequence\":null,\"usage\":");
    u.write_api(out);
    out.push_str(",\"service_tier\":\"standard\"}}");
}

/// The body the proxy rebuilds for a streamed reply: Go `AnthropicResponse` field order,
/// only text content (`null` when there was none), `cache_*` usage omitted when zero.
/// A list of text blocks in Go's JSON: keys sorted (`text`, `type`) as Go writes a map,
/// or in struct order (`type`, `text`).
fn text_blocks<S: AsRef<str>>(out: &mut String, texts: &[S], sorted_keys: bool) {
    out.push('[');
    for (i, t) in texts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if sorted_keys {
            out.push_str("{\"text\":");
            write_str(out, t.as_ref(), Dialect::Go);
            out.push_str(",\"type\":\"text\"}");
        } else {
            out.push_str("{\"type\":\"text\",\"text\":");
            write_str(out, t.as_ref(), Dialect::Go);
            out.push('}');
        }
    }
    out.push(']');
}

pub fn stream_body_go(out: &mut String, r: &Reply, u: &Usage) {
    let (id, model, blocks, stop) = (r.id, r.model, r.blocks, r.stop);
    let texts: Vec<&str> = blocks
        .iter()
        .filter_map(|b| {
            if let Block::Text(t) = b {
                Some(t.as_str())
            } else {
                None
            }
        })
        .collect();
    if texts.is_empty() {
        out.push_str("{\"content\":null");
    } else {
        out.push_str("{\"content\":");
        text_blocks(out, &texts, false);
    }
    out.push_str(",\"id\":");
    write_str(out, id, Dialect::Go);
    out.push_str(",\"model\":");
    write_str(out, model, Dialect::Go);
    out.push_str(",\"role\":\"assistant\",\"stop_reason\":");
    write_str(out, stop, Dialect::Go);
    use std::fmt::Write;
    let _ = write!(out, ",\"stop_sequence\":null,\"type\":\"message\",\"usage\":{{\"input_tokens\":{},\"output_tokens\":{}", u.input, u.output);
    if u.cache_creation > 0 {
        let _ = write!(out, ",\"cache_creation_input_tokens\":{}", u.cache_creation);
    }
    if u.cache_read > 0 {
        let _ = write!(out, ",\"cache_read_input_tokens\":{}", u.cache_read);
    }
    out.push_str("}}");
}

/// Split `s` into pieces of roughly `lo..hi` bytes on character boundaries.
fn pieces<'a>(rng: &mut SynthRng, s: &'a str, lo: usize, hi: usize) -> Vec<&'a str> {
    let mut v = Vec::new();
    let mut start = 0;
    while start < s.len() {
        let mut end = (start + rng.gen_range(lo..hi)).min(s.len());
        while !s.is_char_boundary(end) {
            end += 1;
        }
        v.push(&s[start..end]);
        start = end;
    }
    v
}

/// The `data: {…}` SSE lines of a streamed reply, as the API sends them (JSON.stringify-like).
pub fn sse_lines(rng: &mut SynthRng, r: &Reply, u: &Usage) -> Vec<String> {
    let (id, model, blocks, stop) = (r.id, r.model, r.blocks, r.stop);
    let d = Dialect::Js;
    let mut v = Vec::with_capacity(8 + blocks.len() * 8);
    let mut s = String::from("data: {\"type\":\"message_start\",\"message\":{\"id\":");
    write_str(&mut s, id, d);
    s.push_str(",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    write_str(&mut s, model, d);
    s.push_str(",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
    Usage { output: 1, ..*u }.write_api(&mut s);
    s.push_str("}}}");
    v.push(s);
    if rng.gen_bool(0.7) {
        v.push("data: {\"type\":\"ping\"}".to_string());
    }
    let delta = |i: usize, kind: &str, field: &str, piece: &str| {
        let mut s = format!("data: {{\"type\":\"content_block_delta\",\"index\":{i},\"delta\":{{\"type\":\"{kind}\",\"{field}\":");
        write_str(&mut s, piece, d);
        s.push_str("}}");
        s
    };
    for (i, b) in blocks.iter().enumerate() {
        match b {
            Block::Thinking { text, sig } => {
                v.push(format!(
                    "data: {{\"type\":\"content_block_start\",\"index\":{i},\"content_block\":{{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}}}"
                ));
                for p in pieces(rng, text, 40, 400) {
                    v.push(delta(i, "thinking_delta", "thinking", p));
                }
                v.push(delta(i, "signature_delta", "signature", sig));
            }
            Block::Text(t) => {
                v.push(format!(
                    "data: {{\"type\":\"content_block_start\",\"index\":{i},\"content_block\":{{\"type\":\"text\",\"text\":\"\"}}}}"
                ));
                for p in pieces(rng, t, 20, 300) {
                    v.push(delta(i, "text_delta", "text", p));
                }
            }
            Block::ToolUse { id, name, input } => {
                let mut s = format!("data: {{\"type\":\"content_block_start\",\"index\":{i},\"content_block\":{{\"type\":\"tool_use\",\"id\":");
                write_str(&mut s, id, d);
                s.push_str(",\"name\":");
                write_str(&mut s, name, d);
                s.push_str(",\"input\":{}}}");
                v.push(s);
                v.push(delta(i, "input_json_delta", "partial_json", ""));
                let js = input.to_string_in(d);
                for p in pieces(rng, &js, 10, 120) {
                    v.push(delta(i, "input_json_delta", "partial_json", p));
                }
            }
            Block::ToolResult { .. } => {}
        }
        v.push(format!(
            "data: {{\"type\":\"content_block_stop\",\"index\":{i}}}"
        ));
    }
    let mut s = String::from("data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":");
    write_str(&mut s, stop, d);
    s.push_str(&format!(
        ",\"stop_sequence\":null}},\"usage\":{{\"output_tokens\":{}}}}}",
        u.output
    ));
    v.push(s);
    v.push("data: {\"type\":\"message_stop\"}".to_string());
    v
}

/// How the envelope stores the reply body.
pub enum EnvBody<'a> {
    /// No body (errors, which carry bodyText).
    None,
    /// Raw JSON object text (already in its final dialect).
    Raw(&'a str),
    /// A fork that stores the message as a JSON string.
    Str(&'a str),
}

/// The proxy's `ResponseLog` envelope (Go struct field order).
pub struct Envelope<'a> {
    /// HTTP status.
    pub status: u16,
    /// Response headers (name, single value), sorted by name; `None` writes `null`.
    pub headers: Option<&'a [(&'a str, String)]>,
    /// Reply body.
    pub body: EnvBody<'a>,
    /// Error text.
    pub body_text: Option<&'a str>,
    /// Milliseconds.
    pub response_time: u64,
    /// SSE lines of a streamed reply.
    pub chunks: Option<&'a [String]>,
    /// Whether the request asked for a stream.
    pub is_streaming: bool,
    /// RFC3339Nano completion time.
    pub completed_at: &'a str,
    /// A fork's time-to-first-token field (ms), written last.
    pub ttft: Option<J>,
}

impl Envelope<'_> {
    /// Serialize as Go's json.Marshal would.
    pub fn to_json(&self) -> String {
        let cap = match self.body {
            EnvBody::Raw(b) | EnvBody::Str(b) => b.len() + b.len() / 8,
            EnvBody::None => 0,
        } + self
            .chunks
            .map_or(0, |c| c.iter().map(|l| l.len() + l.len() / 5 + 4).sum())
            + 512;
        let mut s = String::with_capacity(cap);
        s.push_str(&format!("{{\"statusCode\":{},\"headers\":", self.status));
        match self.headers {
            None => s.push_str("null"),
            Some(h) => {
                s.push('{');
                for (i, (k, v)) in h.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    write_str(&mut s, k, Dialect::Go);
                    s.push_str(":[");
                    write_str(&mut s, v, Dialect::Go);
                    s.push(']');
                }
                s.push('}');
            }
        }
        match self.body {
            EnvBody::None => {}
            EnvBody::Raw(b) => {
                s.push_str(",\"body\":");
                s.push_str(b);
            }
            EnvBody::Str(b) => {
                s.push_str(",\"body\":");
                write_str(&mut s, b, Dialect::Go);
            }
        }
        if let Some(t) = self.body_text {
            s.push_str(",\"bodyText\":");
            write_str(&mut s, t, Dialect::Go);
        }
        s.push_str(&format!(",\"responseTime\":{}", self.response_time));
        if let Some(c) = self.chunks {
            s.push_str(",\"streamingChunks\":[");
            for (i, l) in c.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                write_str(&mut s, l, Dialect::Go);
            }
            s.push(']');
        }
        s.push_str(if self.is_streaming {
            ",\"isStreaming\":true"
        } else {
            ",\"isStreaming\":false"
        });
        s.push_str(",\"completedAt\":");
        write_str(&mut s, self.completed_at, Dialect::Go);
        if let Some(t) = &self.ttft {
            s.push_str(",\"ttft\":");
            t.write(&mut s, Dialect::Go);
        }
        s.push('}');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_blocks_sorted_with_cache_control() {
        let b = Block::ToolResult {
            id: "t1".into(),
            content: ToolContent::Text("a<b".into()),
            is_error: true,
        };
        let mut s = String::new();
        b.write_go(&mut s, true);
        assert_eq!(
            s,
            r#"{"cache_control":{"type":"ephemeral"},"content":"a\u003cb","is_error":true,"tool_use_id":"t1","type":"tool_result"}"#
        );
        let m = Msg::new(false, vec![Block::Text("hi".into())]);
        assert_eq!(
            m.go,
            r#"{"role":"assistant","content":[{"text":"hi","type":"text"}]}"#
        );
    }

    #[test]
    fn stream_body_null_content() {
        let mut s = String::new();
        let u = Usage {
            input: 3,
            cache_creation: 0,
            cache_read: 5,
            output: 9,
        };
        let blocks = [Block::ToolUse {
            id: "t".into(),
            name: "Bash".into(),
            input: J::Obj(vec![]),
        }];
        let r = Reply {
            id: "msg_01x",
            model: "m",
            blocks: &blocks,
            stop: "",
        };
        stream_body_go(&mut s, &r, &u);
        assert_eq!(
            s,
            r#"{"content":null,"id":"msg_01x","model":"m","role":"assistant","stop_reason":"","stop_sequence":null,"type":"message","usage":{"input_tokens":3,"output_tokens":9,"cache_read_input_tokens":5}}"#
        );
    }
}
