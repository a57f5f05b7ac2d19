//! One stored request → its tokens, block digests and response facts (SPEC §4.2–§4.5).
//!
//! This is the per-request work, done in parallel before any id is assigned. It is
//! independent of segments and id scopes, which the sequential assembly applies later.
//! Cost is kept proportional to new content: the `tools` and `system` sections are
//! tokenized once per distinct text (a section memo), `messages` go through the
//! incremental encoder, and block digests of an unchanged token prefix are reused.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::blocks::{chain_digests, Digest64, Salt};
use crate::capture::{Response, Row};
use crate::pyjson::{self, Value};
use crate::stamp::Stamp;
use crate::tokens::incremental::IncrementalEncoder;
use crate::tokens::{Encoder, Token};

/// What a trace record needs from one request, before ids are assigned.
#[derive(Debug, Clone)]
pub struct Processed {
    pub request_id: String,
    pub ts: Stamp,
    pub ts_text: String,
    pub streaming: bool,
    pub model: String,
    pub tokens_in: usize,
    pub tool_tokens: usize,
    pub system_tokens: usize,
    pub digests: Vec<Digest64>,
    /// Sorted distinct content types of the request's messages (for context resets).
    pub message_types: Vec<String>,
    pub response: Option<Response>,
}

impl Processed {
    /// `usage.output_tokens` when an integer, else 0 (§4.9.8).
    pub fn out(&self) -> u64 {
        self.response
            .as_ref()
            .and_then(|r| r.usage.output)
            .unwrap_or(0)
    }
}

/// Why a matched row was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    BadTimestamp,
    BadBody,
}

/// Per-thread tokenization state: the encoder's piece cache and the section memo.
#[derive(Default)]
pub struct Tokenizer {
    enc: Encoder,
    sections: FxHashMap<(u128, usize), Arc<[Token]>>,
    /// Bytes of section text tokenized (after memo hits are excluded).
    pub fresh_bytes: u64,
}

/// Memo entries beyond this are dropped wholesale (bounded memory on huge runs).
const SECTION_MEMO_LIMIT: usize = 4096;

impl Tokenizer {
    /// Tokens of a section text that repeats across requests (tools, system).
    fn memo(&mut self, text: &str) -> Arc<[Token]> {
        let key = (xxhash_rust::xxh3::xxh3_128(text.as_bytes()), text.len());
        if let Some(t) = self.sections.get(&key) {
            return t.clone();
        }
        self.fresh_bytes += text.len() as u64;
        let tokens: Arc<[Token]> = self.enc.encode(text).into();
        if self.sections.len() >= SECTION_MEMO_LIMIT {
            self.sections.clear();
        }
        self.sections.insert(key, tokens.clone());
        tokens
    }
}

/// A stream of requests of one conversation (or sub-agent), in order.
#[derive(Default)]
pub struct Stream {
    messages: IncrementalEncoder,
    prev_tokens: Vec<Token>,
    prev_digests: Vec<Digest64>,
    /// `true`: every request is tokenized from scratch (the baseline / oracle path).
    pub full: bool,
}

impl Stream {
    /// A new stream; `full` disables every reuse (the baseline / oracle path).
    pub fn new(full: bool) -> Self {
        Stream {
            full,
            ..Stream::default()
        }
    }

    /// Tokens of a body's three sections, concatenated, and the section sizes.
    pub fn tokenize(&mut self, tk: &mut Tokenizer, body: &Value) -> (Vec<Token>, usize, usize) {
        let mut all: Vec<Token> = Vec::new();
        let mut sizes = [0usize; 2];
        for (i, name) in ["tools", "system"].into_iter().enumerate() {
            if let Some(text) = section_text(body, name) {
                if self.full {
                    tk.fresh_bytes += text.len() as u64;
                    let t = tk.enc.encode(&text);
                    sizes[i] = t.len();
                    all.extend_from_slice(&t);
                } else {
                    let t = tk.memo(&text);
                    sizes[i] = t.len();
                    all.extend_from_slice(&t);
                }
            }
        }
        if let Some(text) = section_text(body, "messages") {
            if self.full {
                tk.fresh_bytes += text.len() as u64;
                tk.enc.encode_into(&text, &mut all);
            } else {
                let before = self.messages.fresh_bytes;
                all.extend_from_slice(self.messages.encode(&mut tk.enc, &text));
                tk.fresh_bytes += self.messages.fresh_bytes - before;
            }
        }
        (all, sizes[0], sizes[1])
    }

    /// Process one row. The digests of the token prefix shared with the previous request
    /// are reused: the chain depends only on the salt and the tokens.
    pub fn process(
        &mut self,
        tk: &mut Tokenizer,
        salt: &Salt,
        block_size: usize,
        row: &Row,
    ) -> Result<Processed, Skip> {
        let ts = Stamp::parse(&row.timestamp).ok_or(Skip::BadTimestamp)?;
        let body_text = row.body.as_deref().ok_or(Skip::BadBody)?;
        let mut body = pyjson::parse(body_text).map_err(|_| Skip::BadBody)?;
        if !matches!(body, Value::Object(_)) {
            return Err(Skip::BadBody);
        }
        // Normalizing the whole body once equals normalizing each section (§4.2).
        body.normalize();
        let (tokens, tool_tokens, system_tokens) = self.tokenize(tk, &body);
        let shared_blocks = if self.full {
            0
        } else {
            common_prefix(&self.prev_tokens, &tokens) / block_size
        };
        let mut digests = std::mem::take(&mut self.prev_digests);
        digests.truncate(shared_blocks);
        chain_digests(salt, &tokens, block_size, &mut digests);
        self.prev_digests = digests.clone();
        let tokens_in = tokens.len();
        self.prev_tokens = tokens;
        Ok(Processed {
            request_id: row.id.clone(),
            ts,
            ts_text: row.timestamp.clone(),
            streaming: body.get("stream") == Some(&Value::Bool(true)),
            model: body
                .get("model")
                .and_then(Value::as_string)
                .unwrap_or_else(|| "unknown".to_owned()),
            tokens_in,
            tool_tokens,
            system_tokens,
            digests,
            message_types: message_types(body.get("messages")),
            response: row.response.as_deref().and_then(Response::parse),
        })
    }
}

/// The Python-serialized text of a section of a normalized body, `None` if it is empty.
pub fn section_text(body: &Value, name: &str) -> Option<String> {
    let v = body.get(name)?;
    if v.is_empty_section() {
        return None;
    }
    Some(v.to_python())
}

/// Sorted distinct content types of all messages (`"text"` for string content).
fn message_types(messages: Option<&Value>) -> Vec<String> {
    let mut types: Vec<String> = Vec::new();
    let Some(Value::Array(msgs)) = messages else {
        return types;
    };
    for m in msgs {
        match m.get("content") {
            // The reference reads a missing content as "" (a string).
            None | Some(Value::Str(_)) if matches!(m, Value::Object(_)) => {
                types.push("text".into())
            }
            Some(Value::Array(blocks)) => {
                for b in blocks {
                    if let Some(t) = b.get("type").and_then(Value::as_string) {
                        if !t.is_empty() {
                            types.push(t);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    types.sort();
    types.dedup();
    types
}

fn common_prefix(a: &[Token], b: &[Token]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}
