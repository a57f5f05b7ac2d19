//! The proxy's response envelope in all its stored shapes (spec §2, §4.5, §4.9.6–8).
//!
//! Shapes seen in captures: `{statusCode, headers, body: {...}}`; `body` stored as a JSON
//! *string*; an envelope without `body` that is itself the message; `bodyText` for errors;
//! `streamingChunks` (SSE lines) whose `content_block_start` / `message_delta` events hold
//! the true content types and stop reason of a streamed reply; timing in
//! `Server-Timing` / `X-Envoy-Upstream-Service-Time` headers or a fork's `ttft` field.
//! Every field is read on its own, so one odd value never loses the others (§4.9.8).

use serde_json::{Map, Value};
use std::borrow::Cow;

use crate::stamp::Stamp;

/// Token usage as the API reported it; a field is `None` when absent or not an integer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: Option<u64>,
    pub output: Option<u64>,
    pub cache_read: Option<u64>,
    pub cache_creation: Option<u64>,
}

impl Usage {
    fn from_value(v: Option<&Value>) -> Usage {
        let Some(Value::Object(u)) = v else {
            return Usage::default();
        };
        let int = |k: &str| u.get(k).and_then(Value::as_u64);
        Usage {
            input: int("input_tokens"),
            output: int("output_tokens"),
            cache_read: int("cache_read_input_tokens"),
            cache_creation: int("cache_creation_input_tokens"),
        }
    }

    /// Whether any cache field is present (some upstreams never return them).
    pub fn has_cache_fields(&self) -> bool {
        self.cache_read.is_some() || self.cache_creation.is_some()
    }
}

/// What the tools need from one stored response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    /// `body.id` when it starts with `msg_`.
    pub message_id: Option<String>,
    pub status_code: Option<i64>,
    pub model: Option<String>,
    pub usage: Usage,
    /// `stop_reason` when it is a string (possibly empty).
    pub stop_reason: Option<String>,
    /// `type` of each content block, when `content` is a list.
    pub content_types: Vec<String>,
    /// `responseTime` in ms, when numeric.
    pub response_time_ms: Option<f64>,
    pub completed_at: Option<Stamp>,
    /// Time to first token in ms: a fork's numeric `ttft`, else the timing headers.
    pub ttft_ms: Option<f64>,
    /// Timing values that are numbers but not finite (`dur=1e400`, `NaN`, `inf`):
    /// never written, counted as bad values.
    pub non_finite: usize,
    pub is_streaming: Option<bool>,
    /// Parsed SSE chunks, when the envelope has `streamingChunks`.
    pub chunks: Option<StreamSummary>,
    /// `bodyText` of an error envelope.
    pub error_text: Option<String>,
}

/// What the SSE chunks of a streamed reply say about its content and end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamSummary {
    /// `content_block_start.content_block.type`, in chunk order.
    pub block_types: Vec<String>,
    /// The last `message_delta.delta.stop_reason` that is a string.
    pub stop_reason: Option<String>,
    /// Lines that were not `data: {json}`.
    pub bad_lines: usize,
}

impl Response {
    /// Parse the `response` column. `None` when it is not a JSON object.
    pub fn parse(text: &str) -> Option<Response> {
        fast_response(text).or_else(|| Response::parse_tree(text))
    }

    /// [`Response::parse`] through the whole document as a tree: the definition, and the
    /// path for anything [`fast_response`] leaves undecided.
    fn parse_tree(text: &str) -> Option<Response> {
        let Some(Value::Object(env)) = crate::pyjson::to_serde(text) else {
            return None;
        };
        Some(Response::from_envelope(&env))
    }

    /// Only the message id of a `response` (what [`Response::parse`] would give as
    /// `message_id`), read without building the document: the message-id pass reads every
    /// row's response. Falls back to the full parse for anything unusual (a repeated key,
    /// text only CPython reads).
    pub fn message_id_of(text: &str) -> Option<String> {
        match fast_message_id(text) {
            Some(id) => id,
            None => Response::parse(text).and_then(|r| r.message_id),
        }
    }

    /// The message id and the envelope's `statusCode` of a `response` that has a
    /// message id (what [`Response::parse`] gives as `message_id` and `status_code`), read
    /// without building the document, as [`Response::message_id_of`] is.
    pub fn message_id_and_status_of(text: &str) -> Option<(String, Option<i64>)> {
        match fast_message_id_and_status(text) {
            Some(found) => found,
            None => Response::parse(text).and_then(|r| Some((r.message_id?, r.status_code))),
        }
    }

    fn from_envelope(env: &Map<String, Value>) -> Response {
        // The message: `body` as object, or as a JSON string holding one (§4.9.6);
        // without `body` the envelope is the message itself.
        let parsed_body;
        let msg: &Map<String, Value> = match env.get("body") {
            Some(Value::Object(b)) => b,
            Some(Value::String(s)) => match crate::pyjson::to_serde(s) {
                Some(Value::Object(b)) => {
                    parsed_body = b;
                    &parsed_body
                }
                _ => &EMPTY,
            },
            Some(_) => &EMPTY,
            None => env,
        };
        let content_types = match msg.get("content") {
            Some(Value::Array(blocks)) => blocks
                .iter()
                .filter_map(|b| b.get("type").and_then(Value::as_str))
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        let chunks = match env.get("streamingChunks") {
            Some(Value::Array(lines)) => {
                let mut s = StreamSummary::default();
                for line in lines {
                    s.add(line.as_str().map_or(Event::Bad, Event::of_line));
                }
                Some(s)
            }
            _ => None,
        };
        Response::assemble(env, msg, content_types, chunks)
    }

    /// A response from the members it reads: the envelope's, the message's (the
    /// envelope itself when it has no `body`), and what the content list and the chunks
    /// gave.
    fn assemble(
        env: &Map<String, Value>,
        msg: &Map<String, Value>,
        content_types: Vec<String>,
        chunks: Option<StreamSummary>,
    ) -> Response {
        let message_id = msg
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| id.starts_with("msg_"))
            .map(str::to_owned);
        Response {
            message_id,
            status_code: env.get("statusCode").and_then(Value::as_i64),
            model: msg.get("model").and_then(Value::as_str).map(str::to_owned),
            usage: Usage::from_value(msg.get("usage")),
            stop_reason: msg
                .get("stop_reason")
                .and_then(Value::as_str)
                .map(str::to_owned),
            content_types,
            response_time_ms: env.get("responseTime").and_then(Value::as_f64),
            completed_at: env
                .get("completedAt")
                .and_then(Value::as_str)
                .and_then(Stamp::parse),
            ttft_ms: env
                .get("ttft")
                .filter(|v| v.is_number())
                .and_then(Value::as_f64)
                .or_else(|| header_ttft_ms(env.get("headers"))),
            non_finite: non_finite_headers(env.get("headers")),
            is_streaming: env.get("isStreaming").and_then(Value::as_bool),
            chunks,
            error_text: env
                .get("bodyText")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }

    /// Sorted distinct output content types: the content list's block types together with
    /// the chunks' `content_block_start` types (§4.9.10). A streamed body holds only the
    /// text, so the chunks carry the thinking and tool_use blocks of the same reply.
    pub fn output_types(&self) -> Vec<String> {
        let mut types = self.content_types.clone();
        if let Some(c) = &self.chunks {
            types.extend(c.block_types.iter().cloned());
        }
        types.sort();
        types.dedup();
        types
    }

    /// The stop reason: the body's when non-empty, else the chunks', else `""`.
    pub fn stop(&self) -> String {
        match &self.stop_reason {
            Some(s) if !s.is_empty() => s.clone(),
            _ => self
                .chunks
                .as_ref()
                .and_then(|c| c.stop_reason.clone())
                .unwrap_or_default(),
        }
    }
}

/// The text of a stored reply: its body's text blocks, else the `text_delta`s of its
/// streamed chunks; `None` without any text.
pub fn reply_text(response: &str) -> Option<String> {
    let (env, body) = envelope_and_body(response)?;
    let mut text = String::new();
    if let Some(Value::Array(blocks)) = body.as_ref().and_then(|b| b.get("content")) {
        for b in blocks {
            if let Some(t) = b.get("text").and_then(Value::as_str) {
                text.push_str(t);
            }
        }
    }
    if text.is_empty() {
        if let Some(Value::Array(lines)) = env.get("streamingChunks") {
            for line in lines.iter().filter_map(Value::as_str) {
                let Some(event) = parse_sse_line(line) else {
                    continue;
                };
                if let Some(t) = event
                    .get("delta")
                    .filter(|d| d.get("type").and_then(Value::as_str) == Some("text_delta"))
                    .and_then(|d| d.get("text"))
                    .and_then(Value::as_str)
                {
                    text.push_str(t);
                }
            }
        }
    }
    (!text.is_empty()).then_some(text)
}

/// A stored reply's envelope and its message body (an object, or a string holding one).
fn envelope_and_body(response: &str) -> Option<(Map<String, Value>, Option<Value>)> {
    let Some(Value::Object(env)) = crate::pyjson::to_serde(response) else {
        return None;
    };
    let body = match env.get("body") {
        Some(Value::Object(b)) => Some(Value::Object(b.clone())),
        Some(Value::String(s)) => crate::pyjson::to_serde(s),
        _ => None,
    };
    Some((env, body))
}

/// A `tool_use` block of a reply: its id, tool name and input.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolUse {
    pub id: String,
    pub name: String,
    pub input: Value,
}

/// The `tool_use` blocks of a stored reply: its body's, then those its streamed chunks
/// open (`content_block_start`) that the body lacks (a proxy may rebuild the body with its
/// text blocks only), each input joined from its `input_json_delta` pieces. A block whose
/// joined input does not parse keeps the input the start event gave.
pub fn reply_tool_uses(response: &str) -> Vec<ToolUse> {
    let Some((env, body)) = envelope_and_body(response) else {
        return Vec::new();
    };
    let of_block = |b: &Value, input: Option<Value>| -> Option<ToolUse> {
        (b.get("type")?.as_str()? == "tool_use").then_some(())?;
        Some(ToolUse {
            id: b.get("id")?.as_str()?.to_owned(),
            name: b.get("name")?.as_str()?.to_owned(),
            input: input
                .or_else(|| b.get("input").cloned())
                .unwrap_or(Value::Null),
        })
    };
    let mut uses: Vec<ToolUse> = match body.as_ref().and_then(|b| b.get("content")) {
        Some(Value::Array(blocks)) => blocks.iter().filter_map(|b| of_block(b, None)).collect(),
        _ => Vec::new(),
    };
    let Some(Value::Array(lines)) = env.get("streamingChunks") else {
        return uses;
    };
    // (index, start block, joined partial input) in start order.
    let mut open: Vec<(u64, Value, String)> = Vec::new();
    for line in lines.iter().filter_map(Value::as_str) {
        let Some(event) = parse_sse_line(line) else {
            continue;
        };
        let index = event.get("index").and_then(Value::as_u64);
        match event.get("type").and_then(Value::as_str) {
            Some("content_block_start") => {
                if let (Some(i), Some(b)) = (index, event.get("content_block")) {
                    open.push((i, b.clone(), String::new()));
                }
            }
            Some("content_block_delta") => {
                let piece = event
                    .get("delta")
                    .filter(|d| d.get("type").and_then(Value::as_str) == Some("input_json_delta"))
                    .and_then(|d| d.get("partial_json"))
                    .and_then(Value::as_str);
                if let (Some(i), Some(piece)) = (index, piece) {
                    if let Some(entry) = open.iter_mut().rev().find(|e| e.0 == i) {
                        entry.2.push_str(piece);
                    }
                }
            }
            _ => {}
        }
    }
    for (_, b, joined) in &open {
        let input = (!joined.is_empty())
            .then(|| crate::pyjson::to_serde(joined))
            .flatten();
        if let Some(t) = of_block(b, input) {
            if !uses.iter().any(|u| u.id == t.id) {
                uses.push(t);
            }
        }
    }
    uses
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

/// First value of a header, looked up case-insensitively (HTTP names are).
fn header<'a>(headers: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    let v = headers.get(name).or_else(|| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })?;
    match v {
        Value::Array(items) => items.first()?.as_str(),
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// TTFT in ms from `Server-Timing` (`…dur=812…`) or `X-Envoy-Upstream-Service-Time`.
fn header_ttft_ms(headers: Option<&Value>) -> Option<f64> {
    let Some(Value::Object(h)) = headers else {
        return None;
    };
    if let Some(st) = header(h, "Server-Timing") {
        if let Some(pos) = st.find("dur=") {
            let rest = &st[pos + 4..];
            let end = rest.find([';', ',']).unwrap_or(rest.len());
            if let Some(ms) = finite(rest[..end].trim()) {
                return Some(ms);
            }
        }
    }
    header(h, "X-Envoy-Upstream-Service-Time").and_then(|v| finite(v.trim()))
}

/// How many timing headers hold a number that is not finite.
fn non_finite_headers(headers: Option<&Value>) -> usize {
    let Some(Value::Object(h)) = headers else {
        return 0;
    };
    let bad = |t: &str| t.trim().parse::<f64>().is_ok_and(|x| !x.is_finite());
    let st = header(h, "Server-Timing")
        .and_then(|st| st.find("dur=").map(|p| &st[p + 4..]))
        .map(|rest| &rest[..rest.find([';', ',']).unwrap_or(rest.len())]);
    let envoy = header(h, "X-Envoy-Upstream-Service-Time");
    [st, envoy].into_iter().flatten().filter(|t| bad(t)).count()
}

/// A header number that can be written back as JSON: `1e400`, `inf` and `NaN` are not
/// (Rust's float parser accepts them; a trace holding `Infinity` is invalid JSON).
fn finite(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// What one SSE line of `streamingChunks` says.
#[derive(Debug, PartialEq)]
enum Event {
    /// Not `data: {json object}` (or not a string).
    Bad,
    /// `content_block_start` whose block has a string `type`.
    BlockStart(String),
    /// `message_delta` whose delta has a string `stop_reason`.
    Stop(String),
    /// Any other event.
    Other,
}

impl Event {
    /// The event of one line, through the line's tree.
    fn of_line(line: &str) -> Event {
        let Some(event) = parse_sse_line(line).map(Value::Object) else {
            return Event::Bad;
        };
        let at = |pointer: &str| event.pointer(pointer).and_then(Value::as_str);
        match event.get("type").and_then(Value::as_str) {
            Some("content_block_start") => {
                at("/content_block/type").map_or(Event::Other, |t| Event::BlockStart(t.to_owned()))
            }
            Some("message_delta") => {
                at("/delta/stop_reason").map_or(Event::Other, |r| Event::Stop(r.to_owned()))
            }
            _ => Event::Other,
        }
    }

    /// [`Event::of_line`] reading only the members it needs (`type`, `content_block`,
    /// `delta`); `None` when serde_json does not read the line's payload as an object
    /// without a repeated one of them (then the tree decides).
    fn of_line_fast(line: &str) -> Option<Event> {
        #[derive(serde::Deserialize)]
        struct Fields<'a> {
            #[serde(borrow, default, rename = "type")]
            kind: Raw<'a>,
            #[serde(borrow, default)]
            content_block: Raw<'a>,
            #[serde(borrow, default)]
            delta: Raw<'a>,
        }
        let Some(payload) = line.strip_prefix("data:") else {
            return Some(Event::Bad);
        };
        let payload = payload.trim_start_matches(' ').trim_end();
        if !payload.starts_with('{') || !nested_within(payload.as_bytes(), SERDE_DEPTH) {
            return None;
        }
        let f: Fields = serde_json::from_str(payload).ok()?;
        let member = |raw: Raw<'_>, key: &str| -> Option<Option<String>> {
            Some(match raw.value()? {
                Some(v) => v.get(key).and_then(Value::as_str).map(str::to_owned),
                None => None,
            })
        };
        Some(match f.kind.value()?.as_ref().and_then(Value::as_str) {
            Some("content_block_start") => {
                member(f.content_block, "type")?.map_or(Event::Other, Event::BlockStart)
            }
            Some("message_delta") => {
                member(f.delta, "stop_reason")?.map_or(Event::Other, Event::Stop)
            }
            _ => Event::Other,
        })
    }
}

impl StreamSummary {
    fn add(&mut self, event: Event) {
        match event {
            Event::Bad => self.bad_lines += 1,
            Event::BlockStart(t) => self.block_types.push(t),
            Event::Stop(r) => self.stop_reason = Some(r),
            Event::Other => {}
        }
    }
}

/// A member kept as raw JSON text, `null` included (an `Option` would read `null` as
/// absent, and `"body": null` is not the same as no `body`).
#[derive(Default)]
struct Raw<'a>(Option<&'a serde_json::value::RawValue>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Raw<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&serde_json::value::RawValue>::deserialize(d).map(|r| Raw(Some(r)))
    }
}

impl Raw<'_> {
    /// The member as a tree: `Some(None)` when absent, `None` when serde_json does not
    /// read it.
    fn value(&self) -> Option<Option<Value>> {
        match self.0 {
            Some(raw) => serde_json::from_str(raw.get()).ok().map(Some),
            None => Some(None),
        }
    }

    /// The member's first byte (a raw value starts at its value, without whitespace).
    fn first(&self) -> Option<u8> {
        self.0.and_then(|r| r.get().as_bytes().first().copied())
    }
}

/// The members of an envelope, or of the message it holds, that [`Response`] reads;
/// every other member (the reply's text, tool inputs, the message start chunk…) is
/// skipped by serde_json without being built.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct Members<'a> {
    #[serde(borrow)]
    body: Raw<'a>,
    #[serde(borrow, rename = "statusCode")]
    status_code: Raw<'a>,
    #[serde(borrow)]
    headers: Raw<'a>,
    #[serde(borrow, rename = "responseTime")]
    response_time: Raw<'a>,
    #[serde(borrow, rename = "completedAt")]
    completed_at: Raw<'a>,
    #[serde(borrow)]
    ttft: Raw<'a>,
    #[serde(borrow, rename = "isStreaming")]
    is_streaming: Raw<'a>,
    #[serde(borrow, rename = "streamingChunks")]
    streaming_chunks: Lines<'a>,
    #[serde(borrow, rename = "bodyText")]
    body_text: Raw<'a>,
    #[serde(borrow)]
    id: Raw<'a>,
    #[serde(borrow)]
    model: Raw<'a>,
    #[serde(borrow)]
    usage: Raw<'a>,
    #[serde(borrow)]
    stop_reason: Raw<'a>,
    #[serde(borrow)]
    content: Raw<'a>,
}

/// `streamingChunks` read in the envelope's own pass (not skipped, then split, then
/// unescaped line by line): each element's text, `None` for an element that is no string;
/// `None` overall when the member is no array.
#[derive(Default)]
struct Lines<'a>(Option<Vec<Option<Cow<'a, str>>>>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Lines<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LinesVisitor(std::marker::PhantomData))
            .map(Lines)
    }
}

/// A string element's text (`None`: any other value, skipped).
struct Line<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Line<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LineVisitor(std::marker::PhantomData))
            .map(Line)
    }
}

/// Reads an array of lines; any other value is skipped and read as `None`.
struct LinesVisitor<'a>(std::marker::PhantomData<&'a ()>);
/// Reads a string; any other value is skipped and read as `None`.
struct LineVisitor<'a>(std::marker::PhantomData<&'a ()>);

/// The `visit_*` methods of a visitor that reads every value but the kinds it cares about
/// as `None` (containers are drained, so the document is still read whole).
macro_rules! none_for_other_values {
    () => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<M: serde::de::MapAccess<'de>>(
            self,
            mut map: M,
        ) -> Result<Self::Value, M::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(None)
        }
    };
}

impl<'de: 'a, 'a> serde::de::Visitor<'de> for LinesVisitor<'a> {
    type Value = Option<Vec<Option<Cow<'a, str>>>>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any value")
    }
    fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let mut lines = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(Line(line)) = seq.next_element()? {
            lines.push(line);
        }
        Ok(Some(lines))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    none_for_other_values!();
}

impl<'de: 'a, 'a> serde::de::Visitor<'de> for LineVisitor<'a> {
    type Value = Option<Cow<'a, str>>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }
    fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    none_for_other_values!();
}

/// `(name, member)` pairs as a map of trees, the absent ones left out; `None` when
/// serde_json does not read one.
fn tree_of(members: &[(&str, &Raw<'_>)]) -> Option<Map<String, Value>> {
    let mut map = Map::new();
    for (name, raw) in members {
        if let Some(v) = raw.value()? {
            map.insert((*name).to_owned(), v);
        }
    }
    Some(map)
}

/// [`Response::parse`] without building the reply's text, tool inputs or chunk payloads:
/// serde_json reads the members [`Response`] needs and skips the rest. `None` when
/// serde_json does not read the document as an object without a repeated member of
/// these, or any piece it needs is unusual (then the tree, with CPython's rules where
/// serde_json refuses, decides). Held equal to the tree path by the tests below.
fn fast_response(text: &str) -> Option<Response> {
    if !text.trim_start().starts_with('{') || !nested_within(text.as_bytes(), SERDE_DEPTH) {
        return None;
    }
    let env: Members = serde_json::from_str(text).ok()?;
    let inner: String;
    let body: Members;
    let msg: &Members = match env.body.first() {
        None => &env,
        Some(b'{') => {
            body = serde_json::from_str(env.body.0?.get()).ok()?;
            &body
        }
        Some(b'"') => {
            inner = serde_json::from_str(env.body.0?.get()).ok()?;
            if inner.trim_start().starts_with('{') {
                if !nested_within(inner.as_bytes(), SERDE_DEPTH) {
                    return None;
                }
                body = serde_json::from_str(&inner).ok()?;
            } else {
                // No object inside (JSON's whitespace is Unicode whitespace too): the
                // tree path reads an empty message.
                body = Members::default();
            }
            &body
        }
        Some(_) => {
            body = Members::default();
            &body
        }
    };
    let env_tree = tree_of(&[
        ("statusCode", &env.status_code),
        ("headers", &env.headers),
        ("responseTime", &env.response_time),
        ("completedAt", &env.completed_at),
        ("ttft", &env.ttft),
        ("isStreaming", &env.is_streaming),
        ("bodyText", &env.body_text),
    ])?;
    let msg_tree = tree_of(&[
        ("id", &msg.id),
        ("model", &msg.model),
        ("usage", &msg.usage),
        ("stop_reason", &msg.stop_reason),
    ])?;
    let mut content_types = Vec::new();
    if let (Some(b'['), Some(raw)) = (msg.content.first(), msg.content.0) {
        #[derive(serde::Deserialize)]
        struct Block<'a> {
            #[serde(borrow, default, rename = "type")]
            kind: Raw<'a>,
        }
        let blocks: Vec<&serde_json::value::RawValue> = serde_json::from_str(raw.get()).ok()?;
        for b in blocks.iter().filter(|b| b.get().starts_with('{')) {
            let block: Block = serde_json::from_str(b.get()).ok()?;
            if let Some(Value::String(t)) = block.kind.value()? {
                content_types.push(t);
            }
        }
    }
    let chunks = env.streaming_chunks.0.as_ref().map(|lines| {
        let mut s = StreamSummary::default();
        for line in lines {
            s.add(match line {
                Some(line) => Event::of_line_fast(line).unwrap_or_else(|| Event::of_line(line)),
                None => Event::Bad,
            });
        }
        s
    });
    Some(Response::assemble(
        &env_tree,
        &msg_tree,
        content_types,
        chunks,
    ))
}

/// The members of an envelope (or message) that decide the message id and the status;
/// others skipped.
#[derive(serde::Deserialize)]
struct IdFields<'a> {
    #[serde(borrow, default)]
    body: Raw<'a>,
    #[serde(borrow, default)]
    id: Raw<'a>,
    #[serde(borrow, default, rename = "statusCode")]
    status: Raw<'a>,
}

/// `Some(message id or None)` when serde_json reads the document as an object without a
/// repeated `body`/`id`/`statusCode` (then the full parse agrees); `None`: not decided
/// here.
fn fast_message_id(text: &str) -> Option<Option<String>> {
    Some(fast_id_fields(text)?.0)
}

/// [`fast_message_id`] with the envelope's status code: `Some(None)` when there is no
/// message id, `None` when not decided here.
fn fast_message_id_and_status(text: &str) -> Option<Option<(String, Option<i64>)>> {
    let (id, status) = fast_id_fields(text)?;
    let Some(id) = id else {
        return Some(None);
    };
    // As serde_json's `as_i64` reads the full parse's number: a plain integer in range.
    // Anything else that is a number (a fraction, an exponent, a negative zero) is left
    // to the full parse.
    let status = match status.0.map(|raw| raw.get()) {
        Some(n) if n.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => {
            if n.starts_with("-0") || !n.bytes().skip(1).all(|b| b.is_ascii_digit()) {
                return None;
            }
            n.parse::<i64>().ok()
        }
        _ => None,
    };
    Some(Some((id, status)))
}

/// The message id (`msg_…`, or none) and the envelope's raw `statusCode` when serde_json
/// reads the document as an object without a repeated `body`/`id`/`statusCode`; `None`:
/// not decided here.
fn fast_id_fields(text: &str) -> Option<(Option<String>, Raw<'_>)> {
    // serde would also read a struct from an array; and it skips ignored members at any
    // depth, where the full parse (serde_json's Value, then CPython's limit) may refuse.
    if !text.trim_start().starts_with('{') || !nested_within(text.as_bytes(), SERDE_DEPTH) {
        return None;
    }
    let env: IdFields = serde_json::from_str(text).ok()?;
    // The message: `body` as object, or as a JSON string holding one; without `body`, the
    // envelope itself.
    let id = match env.body.0 {
        None => env.id,
        Some(body) => match body.get().trim_start().as_bytes().first() {
            Some(b'{') => serde_json::from_str::<IdFields>(body.get()).ok()?.id,
            Some(b'"') => {
                let inner: String = serde_json::from_str(body.get()).ok()?;
                if !inner.trim_start().starts_with('{') {
                    // Not an object inside: the full parse decides (it reads it as EMPTY
                    // or through CPython's rules).
                    return None;
                }
                let msg: IdFields = serde_json::from_str(&inner).ok()?;
                let id = id_text(msg.id)?.filter(|id| id.starts_with("msg_"));
                return Some((id, env.status));
            }
            _ => return Some((None, env.status)),
        },
    };
    Some((id_text(id)?.filter(|id| id.starts_with("msg_")), env.status))
}

/// serde_json's nesting limit when it builds a `Value`.
const SERDE_DEPTH: usize = 127;

/// Whether no array or object of `text` (JSON) is nested deeper than `limit`.
fn nested_within(text: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => match crate::pyjson::string_end(text, i) {
                Some(end) => i = end,
                None => return true,
            },
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    true
}

/// `Some(Some(text))` for a JSON string, `Some(None)` for any other value or none.
fn id_text(id: Raw<'_>) -> Option<Option<String>> {
    match id.0 {
        Some(raw) if raw.get().starts_with('"') => serde_json::from_str(raw.get()).ok().map(Some),
        _ => Some(None),
    }
}

/// One SSE line `data: {json}` → its JSON object.
pub fn parse_sse_line(line: &str) -> Option<Map<String, Value>> {
    let payload = line.strip_prefix("data:")?.trim_start_matches(' ');
    match crate::pyjson::to_serde(payload.trim_end()) {
        Some(Value::Object(m)) => Some(m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_of_agrees_with_the_full_parse() {
        let cases = [
            r#"{"statusCode":200,"body":{"id":"msg_1","content":[]}}"#,
            r#"{"body":"{\"id\":\"msg_2\"}"}"#,
            r#"{"body":" {\"id\":\"msg_2b\"}"}"#,
            r#"{"body":"not json"}"#,
            r#"{"body":"[1]"}"#,
            r#"{"body":null,"id":"msg_3"}"#,
            r#"{"body":[1],"id":"msg_3"}"#,
            r#"{"body":7}"#,
            r#"{"id":"msg_4","type":"message"}"#,
            r#"{"id":"chatcmpl-1"}"#,
            r#"{"id":5}"#,
            r#"{"id":null}"#,
            r#"{"body":{"id":"msg_5"},"body":{"id":"msg_6"}}"#,
            r#"{"body":{"id":"msg_7","id":"msg_8"}}"#,
            r#"{"body":{"id":"msg_\u00e9"}}"#,
            r#"{"body":{"id":"msg_\ud800"}}"#,
            r#"{"body":{"id":"msg_9","x":NaN}}"#,
            r#"{"body":{"id":"msg_10"},"x":1e400}"#,
            r#"["msg_11","msg_12"]"#,
            r#"[{"id":"msg_13"},"x"]"#,
            r#"{"body":"{\"id\":\"msg_14\",\"id\":\"msg_15\"}"}"#,
            r#"{"body":{"content":[{"id":"msg_16"}]}}"#,
            "null",
            "",
            "{",
            r#"  {"body" : { "id" : "msg_17" } }  "#,
        ];
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let nested: Vec<String> = [100, 127, 128, 129, 999, 1000, 1001, 5000]
            .iter()
            .map(|&n| format!(r#"{{"body":{{"id":"msg_18","content":[{}]}}}}"#, deep(n)))
            .collect();
        let cases = cases
            .iter()
            .copied()
            .chain(nested.iter().map(String::as_str));
        let statuses = [
            r#"{"statusCode":500,"body":{"id":"msg_s1"}}"#,
            r#"{"statusCode":"500","body":{"id":"msg_s2"}}"#,
            r#"{"statusCode":500.0,"body":{"id":"msg_s3"}}"#,
            r#"{"statusCode":5e2,"body":{"id":"msg_s4"}}"#,
            r#"{"statusCode":-1,"body":{"id":"msg_s5"}}"#,
            r#"{"statusCode":-0,"body":{"id":"msg_s6"}}"#,
            r#"{"statusCode":99999999999999999999,"body":{"id":"msg_s7"}}"#,
            r#"{"statusCode":9223372036854775807,"body":{"id":"msg_s8"}}"#,
            r#"{"statusCode":null,"body":{"id":"msg_s9"}}"#,
            r#"{"statusCode":[400],"body":{"id":"msg_s10"}}"#,
            r#"{"statusCode":400,"statusCode":200,"body":{"id":"msg_s11"}}"#,
            r#"{"body":{"id":"msg_s12","statusCode":404}}"#,
            r#"{"body":"{\"id\":\"msg_s13\",\"statusCode\":404}","statusCode":429}"#,
            r#"{"statusCode":429,"id":"msg_s14"}"#,
            r#"{"statusCode":429,"body":{"id":"chatcmpl"}}"#,
            r#"{"statusCode":NaN,"body":{"id":"msg_s15"}}"#,
        ];
        let cases = cases.chain(statuses.iter().copied()).collect::<Vec<_>>();
        for text in cases {
            let full = Response::parse(text);
            assert_eq!(
                Response::message_id_of(text),
                full.as_ref().and_then(|r| r.message_id.clone()),
                "{text}"
            );
            assert_eq!(
                Response::message_id_and_status_of(text),
                full.and_then(|r| Some((r.message_id?, r.status_code))),
                "{text}"
            );
        }
    }

    /// Every stored response of the bundled and fixture captures (real Claude Code
    /// through the real proxy among them).
    fn response_corpus() -> Vec<String> {
        let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
        let mut dbs = vec![root.join("examples/requests.db")];
        for entry in walkdir::WalkDir::new(root.join("tests/fixtures")) {
            let entry = entry.unwrap();
            if entry.file_name() == "requests.db" {
                dbs.push(entry.into_path());
            }
        }
        let mut out = Vec::new();
        for db in &dbs {
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
            let conn = rusqlite::Connection::open_with_flags(db, flags).unwrap();
            let Ok(mut stmt) = conn.prepare("SELECT response FROM requests") else {
                continue;
            };
            let rows = stmt
                .query_map([], |r| r.get::<_, Option<String>>(0))
                .unwrap();
            out.extend(rows.filter_map(|r| r.ok().flatten()));
        }
        assert!(dbs.len() > 5 && out.len() > 100, "{} responses", out.len());
        out
    }

    #[test]
    fn the_member_parse_agrees_with_the_tree() {
        let chunk = |line: &str| serde_json::to_string(line).unwrap();
        let odd_lines = [
            r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","input":{}}}"#,
            r#"data:{"type":"message_delta","delta":{"stop_reason":"end_turn"}}"#,
            r#"data: {"type":"message_delta","delta":{"stop_reason":null}}"#,
            r#"data: {"type":"message_delta","delta":[1]}"#,
            r#"data: {"type":"content_block_start","content_block":"text"}"#,
            r#"data: {"type":"content_block_start","content_block":{"type":7}}"#,
            r#"data: {"type":"content_block_start","type":"message_delta","delta":{"stop_reason":"x"}}"#,
            r#"data: {"type":"message_delta","delta":{"stop_reason":"a","stop_reason":"b"}}"#,
            r#"data: {"type":"message_delta","delta":{"stop_reason":"\ud800"}}"#,
            r#"data: {"type":"message_delta","delta":{"stop_reason":"y"},"x":NaN}"#,
            r#"data: {"type":"message_delta","delta":{"stop_reason":"y"},"x":1e400}"#,
            "data: \t{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tab\"}}",
            r#"data: [1]"#,
            r#"data: "x""#,
            "data: ",
            "event: ping",
            "",
        ];
        let lines: Vec<String> = odd_lines.iter().map(|l| chunk(l)).collect();
        let mut odd: Vec<String> = vec![
            format!(
                r#"{{"isStreaming":true,"body":{{"id":"msg_1","content":null}},"streamingChunks":[{},7,null]}}"#,
                lines.join(",")
            ),
            r#"{"streamingChunks":"data: x"}"#.into(),
            r#"{"streamingChunks":{"a":["data: x"]},"isStreaming":true}"#.into(),
            r#"{"streamingChunks":[["data: x"],{"b":"data: y"},true,1.5,-2,"data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"z\"}}"]}"#.into(),
            r#"{"streamingChunks":7}"#.into(),
            r#"{"streamingChunks":[],"streamingChunks":["data: x"]}"#.into(),
            r#"{"streamingChunks":null,"statusCode":"200","ttft":null}"#.into(),
            r#"{"body":{"content":[{"type":"text","text":"hi"},7,{"text":"no type"},{"type":9},[{"type":"x"}]]}}"#.into(),
            r#"{"body":{"content":[{"type":"a","type":"b"}]}}"#.into(),
            r#"{"body":{"content":{"type":"text"}}}"#.into(),
            r#"{"body":"{\"id\":\"msg_2\",\"content\":[{\"type\":\"tool_use\"}]}"}"#.into(),
            r#"{"body":" [1]","statusCode":500}"#.into(),
            r#"{"body":"not json","bodyText":"x"}"#.into(),
            r#"{"body":"{not json"}"#.into(),
            r#"{"body":"\u00a0{\"id\":\"msg_3\"}"}"#.into(),
            r#"{"body":"{\"id\":\"msg_3b\",\"x\":NaN}"}"#.into(),
            r#"{"body":null,"id":"msg_4","usage":{"output_tokens":3}}"#.into(),
            r#"{"body":7,"id":"msg_5"}"#.into(),
            r#"{"body":{"id":"msg_6","usage":{"output_tokens":1e400}}}"#.into(),
            r#"{"body":{"id":"msg_7","usage":{"output_tokens":NaN}}}"#.into(),
            r#"{"body":{"id":"msg_8","usage":{"output_tokens":18446744073709551616}}}"#.into(),
            r#"{"body":{"id":"msg_9","content":[{"type":"text","text":"\ud83d"}]}}"#.into(),
            r#"{"body":{"id":"msg_10"},"body":{"id":"msg_11"}}"#.into(),
            r#"{"body":{"id":"msg_10","model":"a","model":"b"}}"#.into(),
            r#"{"headers":{"Server-Timing":["dur=5"],"server-timing":["dur=6"]},"responseTime":1.5,"completedAt":"2026-01-02T03:04:05Z"}"#.into(),
            r#"{"headers":{"Server-Timing":"dur=5"},"isStreaming":"yes"}"#.into(),
            r#"{"statusCode":529,"bodyText":"overloaded","x":[[[[{}]]]]}"#.into(),
            r#"  {"body" : { "id" : "msg_12" } }  "#.into(),
            "{}".into(),
            "[]".into(),
            "null".into(),
            "".into(),
            "{".into(),
        ];
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        for n in [100, 126, 127, 128, 129, 999, 1000, 1001] {
            odd.push(format!(
                r#"{{"body":{{"id":"msg_13","content":[{}]}}}}"#,
                deep(n)
            ));
            let line = chunk(&format!(
                r#"data: {{"type":"message_delta","delta":{{"stop_reason":"d"}},"x":{}}}"#,
                deep(n)
            ));
            odd.push(format!(r#"{{"streamingChunks":[{line}]}}"#));
        }
        let corpus = response_corpus();
        let (mut fast, mut fast_ids) = (0, 0);
        for text in corpus.iter().chain(&odd) {
            let tree = Response::parse_tree(text);
            fast_ids += usize::from(fast_message_id_and_status(text).is_some());
            assert_eq!(
                Response::message_id_and_status_of(text),
                tree.clone()
                    .and_then(|r| Some((r.message_id?, r.status_code))),
                "{text}"
            );
            if let Some(r) = fast_response(text) {
                fast += 1;
                assert_eq!(Some(&r), tree.as_ref(), "{text}");
            }
            assert_eq!(Response::parse(text), tree, "{text}");
        }
        // The fast path is the one taken for the captures' responses.
        assert!(fast >= corpus.len() * 9 / 10, "{fast} of {}", corpus.len());
        assert!(
            fast_ids >= corpus.len() * 9 / 10,
            "{fast_ids} of {}",
            corpus.len()
        );
        for line in odd_lines {
            if let Some(e) = Event::of_line_fast(line) {
                assert_eq!(e, Event::of_line(line), "{line}");
            }
        }
    }

    #[test]
    fn body_as_object_string_or_envelope() {
        let a = Response::parse(r#"{"statusCode":200,"body":{"id":"msg_1","content":[{"type":"text"}],"stop_reason":"end_turn","usage":{"output_tokens":5}}}"#).unwrap();
        assert_eq!(a.message_id.as_deref(), Some("msg_1"));
        assert_eq!(a.usage.output, Some(5));
        let b = Response::parse(r#"{"statusCode":200,"body":"{\"id\":\"msg_2\",\"usage\":null}"}"#)
            .unwrap();
        assert_eq!(b.message_id.as_deref(), Some("msg_2"));
        let c = Response::parse(r#"{"id":"msg_3","type":"message","content":null}"#).unwrap();
        assert_eq!(c.message_id.as_deref(), Some("msg_3"));
        assert!(c.output_types().is_empty());
        let d = Response::parse(r#"{"statusCode":529,"bodyText":"overloaded"}"#).unwrap();
        assert_eq!(
            (d.message_id, d.error_text.as_deref()),
            (None, Some("overloaded"))
        );
        assert!(Response::parse("null").is_none());
        assert!(Response::parse("{not json").is_none());
        let e = Response::parse(r#"{"body":{"id":"chatcmpl-1"}}"#).unwrap();
        assert_eq!(e.message_id, None, "ids must start with msg_");
    }

    #[test]
    fn streamed_reply_types_and_stop_come_from_chunks() {
        let r = Response::parse(r#"{"isStreaming":true,"body":{"id":"msg_1","content":null,"stop_reason":""},
            "streamingChunks":["data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\"}}",
            "event: ping", "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\"}}",
            "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"}}"]}"#).unwrap();
        assert_eq!(r.output_types(), ["text", "tool_use"]);
        assert_eq!(r.stop(), "tool_use");
        assert_eq!(r.chunks.unwrap().bad_lines, 1);
    }

    #[test]
    fn non_finite_header_values_are_not_timings() {
        for (name, value) in [
            ("Server-Timing", "upstream;dur=1e400"),
            ("Server-Timing", "dur=NaN"),
            ("Server-Timing", "dur=inf"),
            ("X-Envoy-Upstream-Service-Time", "NaN"),
            ("X-Envoy-Upstream-Service-Time", "-infinity"),
        ] {
            let env = format!(
                r#"{{"statusCode":200,"headers":{{"{name}":["{value}"]}},"body":{{"id":"msg_1"}}}}"#
            );
            let r = Response::parse(&env).unwrap();
            assert_eq!(r.ttft_ms, None, "{name}: {value}");
            assert_eq!(r.non_finite, 1, "{name}: {value}");
        }
    }

    #[test]
    fn ttft_sources_in_precedence_order() {
        let st =
            r#"{"headers":{"Server-Timing":["x-originResponse;dur=640.5, cdn-cache;desc=MISS"]}}"#;
        assert_eq!(Response::parse(st).unwrap().ttft_ms, Some(640.5));
        let envoy = r#"{"headers":{"X-Envoy-Upstream-Service-Time":["1530"]}}"#;
        assert_eq!(Response::parse(envoy).unwrap().ttft_ms, Some(1530.0));
        let fork = r#"{"ttft":377,"headers":{"X-Envoy-Upstream-Service-Time":["1530"]}}"#;
        assert_eq!(Response::parse(fork).unwrap().ttft_ms, Some(377.0));
        let fork_str = r#"{"ttft":"250","headers":{"X-Envoy-Upstream-Service-Time":["990"]}}"#;
        assert_eq!(Response::parse(fork_str).unwrap().ttft_ms, Some(990.0));
        let null_headers = r#"{"headers":null,"responseTime":"slow"}"#;
        let r = Response::parse(null_headers).unwrap();
        assert_eq!((r.ttft_ms, r.response_time_ms), (None, None));
    }
}
