//! One stored request → its tokens, block digests and response facts (spec §4.2–§4.5).
//!
//! This is the per-request work, done in parallel before any id is assigned. It is
//! independent of segments and id scopes, which the sequential assembly applies later.
//! Cost is kept proportional to new content: the `tools` and `system` sections are
//! tokenized once per distinct text (a section memo), `messages` go through the
//! incremental encoder, and block digests of an unchanged token prefix are reused.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::blocks::{chain_digests, Digest64, Salt};
use crate::capture::{Response, RowRef};
use crate::pyjson::{self, Body, Form, TranscodeError, Value};
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
    sections: FxHashMap<(u128, usize, Section, Form), SectionTokens>,
    /// Bytes of section text tokenized (after memo hits are excluded).
    pub fresh_bytes: u64,
}

/// Memo entries beyond this are dropped wholesale (bounded memory on huge runs).
const SECTION_MEMO_LIMIT: usize = 256;

/// A section's tokens, memoized by the hash of its *stored* text: equal stored bytes give
/// equal normalized serializations, so a repeated tools or system section is neither
/// transcoded nor tokenized again. `None` memoizes an empty section.
type SectionTokens = Option<Arc<[Token]>>;

impl Tokenizer {
    fn section(
        &mut self,
        raw: &str,
        section: Section,
        form: Form,
        scratch: &mut String,
    ) -> Result<SectionTokens, Skip> {
        let key = (
            xxhash_rust::xxh3::xxh3_128(raw.as_bytes()),
            raw.len(),
            section,
            form,
        );
        if let Some(t) = self.sections.get(&key) {
            return Ok(t.clone());
        }
        let contributes = serialize_section(raw, section, form, scratch)?;
        let tokens: SectionTokens = if !contributes {
            None
        } else {
            self.fresh_bytes += scratch.len() as u64;
            Some(self.enc.encode(scratch).into())
        };
        if self.sections.len() >= SECTION_MEMO_LIMIT {
            self.sections.clear();
        }
        self.sections.insert(key, tokens.clone());
        Ok(tokens)
    }
}

/// The three sections of a request body that are hashed, in hashing order (§4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    Tools,
    System,
    Messages,
}

impl Section {
    /// The form a section is written in: canonical content touches `messages` (every
    /// `content` member) and the `system` value itself, never `tools`.
    fn transcode_form(self, form: Form) -> Form {
        match self {
            Section::Messages => form,
            Section::Tools | Section::System => Form::Raw,
        }
    }
}

/// Normalized CPython serialization of one stored section into `out` (cleared first), in
/// `form`: the one-pass transcoder, or the tree parser when an object repeats a key.
/// Returns whether the section contributes (is not empty, judged before canonical form).
pub fn serialize_section(
    raw: &str,
    section: Section,
    form: Form,
    out: &mut String,
) -> Result<bool, Skip> {
    out.clear();
    match pyjson::transcode_with(raw, out, section.transcode_form(form)) {
        Ok(()) => {
            let contributes = !is_empty_text(out);
            if contributes && section == Section::System && form == Form::Canonical {
                pyjson::collapse_single_text(out, 0);
            }
            Ok(contributes)
        }
        Err(TranscodeError::DuplicateKey) => {
            out.clear();
            let v = tree_section(raw, section, form)?;
            if let Some(v) = &v {
                v.write_to(out);
            }
            Ok(v.is_some())
        }
        Err(TranscodeError::Json(_)) => Err(Skip::BadBody),
    }
}

/// [`serialize_section`] of a `messages` section in the transcoder's form, through an
/// incremental transcoder: the same text, reusing the previous call's work where the
/// stored texts share a prefix. `scratch` holds the text when an object repeats a key
/// (the tree path decides which value counts).
pub fn serialize_messages<'s>(
    transcoder: &'s mut pyjson::ArrayTranscoder,
    raw: &str,
    scratch: &'s mut String,
) -> Result<&'s str, Skip> {
    let transcoded = match transcoder.transcode(raw) {
        Ok(_) => true,
        Err(TranscodeError::DuplicateKey) => false,
        Err(TranscodeError::Json(_)) => return Err(Skip::BadBody),
    };
    transcoded_messages(transcoder, raw, transcoded, scratch)
}

/// The serialized `messages` section `raw` once `transcoder` has been over it: its output,
/// or, when it was not transcoded because an object repeats a key, the tree path's text in
/// `scratch` (the tree decides which value counts).
pub fn transcoded_messages<'s>(
    transcoder: &'s pyjson::ArrayTranscoder,
    raw: &str,
    transcoded: bool,
    scratch: &'s mut String,
) -> Result<&'s str, Skip> {
    if transcoded {
        return Ok(transcoder.output());
    }
    serialize_section(raw, Section::Messages, transcoder.form, scratch)?;
    Ok(scratch)
}

/// A section parsed as a tree, normalized and put in `form`; `None` when it contributes
/// nothing (Python falsiness of the stored value).
pub fn tree_section(raw: &str, section: Section, form: Form) -> Result<Option<Value>, Skip> {
    let mut v = pyjson::parse(raw).map_err(|_| Skip::BadBody)?;
    if v.is_empty_section() {
        return Ok(None);
    }
    v.normalize();
    if form == Form::Canonical {
        match section {
            Section::Messages => v.canonicalize(),
            Section::System => v.collapse_single_text(),
            Section::Tools => {}
        }
    }
    Ok(Some(v))
}

/// Python falsiness of a serialized section (`if tools:` in the reference, §4.2).
pub(crate) fn is_empty_text(text: &str) -> bool {
    matches!(
        text,
        "null" | "false" | "[]" | "{}" | "\"\"" | "0" | "0.0" | "-0.0"
    )
}

/// A request's tokens (every section, in hashing order), and the tools and system sizes.
pub type Tokenized = (Vec<Token>, usize, usize);

/// A stream of requests of one conversation (or sub-agent), in order.
#[derive(Default)]
pub struct Stream {
    messages: IncrementalEncoder,
    messages_json: pyjson::ArrayTranscoder,
    scratch: String,
    prev_tokens: Vec<Token>,
    /// Reused buffer for the next request's tokens (swapped with `prev_tokens`), so large
    /// token vectors are not reallocated — and their pages not faulted in — per request.
    next_tokens: Vec<Token>,
    prev_digests: Vec<Digest64>,
    /// The form content is hashed in.
    form: Form,
    /// `true`: every request is serialized and tokenized from scratch (the baseline /
    /// differential-test oracle): no section memo, no incremental encoding, no digest reuse.
    pub full: bool,
}

impl Stream {
    /// A new stream hashing content in `form`; `full` disables every reuse (the baseline /
    /// oracle path).
    pub fn new(full: bool, form: Form) -> Self {
        Stream {
            full,
            form,
            messages_json: pyjson::ArrayTranscoder::new(form),
            ..Stream::default()
        }
    }

    /// A stored body split into its members, and [`Stream::tokenize`]'s result for it. The
    /// `messages` value is transcoded while the body is split (reusing the previous
    /// request's work up to the bytes both share), so it is scanned once.
    pub fn tokenize_text<'a>(
        &mut self,
        tk: &mut Tokenizer,
        text: &'a str,
    ) -> Result<(Body<'a>, Tokenized), Skip> {
        if self.full {
            let body = pyjson::split_body(text).map_err(|_| Skip::BadBody)?;
            let t = self.tokenize(tk, &body)?;
            return Ok((body, t));
        }
        // Whether the last `messages` value (a repeated key keeps the last) was transcoded.
        let mut transcoded = false;
        let json = &mut self.messages_json;
        let body = pyjson::split_body_with(text, &mut |lx| {
            transcoded = json.step_over(lx)?;
            Ok(())
        })
        .map_err(|_| Skip::BadBody)?;
        let t = self.tokenize_with(tk, &body, Some(transcoded))?;
        Ok((body, t))
    }

    /// Tokens of a body's three sections, concatenated, and the tools and system sizes.
    pub fn tokenize(&mut self, tk: &mut Tokenizer, body: &Body<'_>) -> Result<Tokenized, Skip> {
        self.tokenize_with(tk, body, None)
    }

    /// [`Stream::tokenize`]; `transcoded`: the messages were already stepped over by the
    /// transcoder (`Some(true)`: its output holds them; `Some(false)`: a key repeats).
    fn tokenize_with(
        &mut self,
        tk: &mut Tokenizer,
        body: &Body<'_>,
        transcoded: Option<bool>,
    ) -> Result<Tokenized, Skip> {
        let mut all = std::mem::take(&mut self.next_tokens);
        all.clear();
        let mut sizes = [0usize; 2];
        if self.full {
            // The straightforward algorithm (benchmark baseline and differential oracle):
            // tree parse, normalize, serialize and tokenize every section of every request
            // with tiktoken-rs, no memo, no piece cache, no reuse.
            let sections = [
                (Section::Tools, body.tools),
                (Section::System, body.system),
                (Section::Messages, body.messages),
            ];
            for (i, (section, raw)) in sections.into_iter().enumerate() {
                let Some(raw) = raw else { continue };
                let Some(v) = tree_section(raw, section, self.form)? else {
                    continue;
                };
                let text = v.to_python();
                tk.fresh_bytes += text.len() as u64;
                let t = crate::tokens::reference_encode(&text);
                if i < 2 {
                    sizes[i] = t.len();
                }
                all.extend_from_slice(&t);
            }
            return Ok((all, sizes[0], sizes[1]));
        }
        let sections = [(Section::Tools, body.tools), (Section::System, body.system)];
        for (i, (section, raw)) in sections.into_iter().enumerate() {
            let Some(raw) = raw else { continue };
            if let Some(t) = tk.section(raw, section, self.form, &mut self.scratch)? {
                sizes[i] = t.len();
                all.extend_from_slice(&t);
            }
        }
        if let Some(raw) = body.messages {
            let ready = match transcoded {
                Some(ready) => ready,
                None => match self.messages_json.transcode(raw) {
                    Ok(_) => true,
                    Err(TranscodeError::DuplicateKey) => false,
                    Err(TranscodeError::Json(_)) => return Err(Skip::BadBody),
                },
            };
            let text = transcoded_messages(&self.messages_json, raw, ready, &mut self.scratch)?;
            if !is_empty_text(text) {
                let before = self.messages.fresh_bytes;
                all.extend_from_slice(self.messages.encode(&mut tk.enc, text));
                tk.fresh_bytes += self.messages.fresh_bytes - before;
            }
        }
        Ok((all, sizes[0], sizes[1]))
    }

    /// The block digests of a request's `tokens`, those of the token prefix it shares
    /// with the previous request of the stream reused, its token count, and whether it
    /// replaced that request's context (§4.5). The tokens and digests are kept for the
    /// next request.
    pub fn chain(
        &mut self,
        salt: &Salt,
        block_size: usize,
        tokens: Vec<Token>,
    ) -> (Vec<Digest64>, usize, bool) {
        let shared_blocks = if self.full {
            0
        } else {
            common_prefix(&self.prev_tokens, &tokens) / block_size
        };
        let mut digests: Vec<Digest64> =
            self.prev_digests[..shared_blocks.min(self.prev_digests.len())].to_vec();
        chain_digests(salt, &tokens, block_size, &mut digests);
        let reset = is_context_reset(&self.prev_digests, &digests);
        self.prev_digests.clone_from(&digests);
        let tokens_in = tokens.len();
        self.next_tokens = std::mem::replace(&mut self.prev_tokens, tokens);
        (digests, tokens_in, reset)
    }

    /// Process one row. The digests of the token prefix shared with the previous request
    /// are reused: the chain depends only on the salt and the tokens.
    pub fn process(
        &mut self,
        tk: &mut Tokenizer,
        salt: &Salt,
        block_size: usize,
        row: RowRef<'_>,
    ) -> Result<Processed, Skip> {
        let ts = Stamp::parse(row.timestamp).ok_or(Skip::BadTimestamp)?;
        let body_text = row.body.ok_or(Skip::BadBody)?;
        let (body, (tokens, tool_tokens, system_tokens)) = self.tokenize_text(tk, body_text)?;
        let (digests, tokens_in, reset) = self.chain(salt, block_size, tokens);
        // Message content types are needed only where the context was replaced (§4.5):
        // parse the messages as a tree just for those requests.
        let message_types = if reset {
            body.messages
                .and_then(|raw| pyjson::parse(raw).ok())
                .map(|v| message_types(Some(&v)))
        } else {
            None
        };
        Ok(Processed {
            request_id: row.id.to_owned(),
            ts,
            ts_text: row.timestamp.to_owned(),
            streaming: body.stream,
            model: body.model.unwrap_or_else(|| "unknown".to_owned()),
            tokens_in,
            tool_tokens,
            system_tokens,
            digests,
            message_types: message_types.unwrap_or_default(),
            response: row.response.and_then(Response::parse),
        })
    }
}

/// A context reset: fewer than half of the previous request's blocks survive (§4.5).
pub fn is_context_reset(prev: &[Digest64], cur: &[Digest64]) -> bool {
    if prev.is_empty() || cur.is_empty() {
        return false;
    }
    // Fast path: chained values in a shared prefix are distinct and all preserved, so a
    // prefix of at least half the previous request settles it without building sets.
    let shared = prev.iter().zip(cur).take_while(|(a, b)| a == b).count();
    if shared * 2 >= prev.len() {
        return false;
    }
    let cur: rustc_hash::FxHashSet<Digest64> = cur.iter().copied().collect();
    let prev_set: rustc_hash::FxHashSet<Digest64> = prev.iter().copied().collect();
    let preserved = prev_set.iter().filter(|d| cur.contains(d)).count();
    (preserved as f64) / (prev.len() as f64) < 0.5
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

/// Tokens two sequences share at the start: equal 32-token chunks are skipped with one
/// slice comparison each (this runs over every token of every request).
fn common_prefix(a: &[Token], b: &[Token]) -> usize {
    const CHUNK: usize = 32;
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + CHUNK <= n && a[i..i + CHUNK] == b[i..i + CHUNK] {
        i += CHUNK;
    }
    i + a[i..n]
        .iter()
        .zip(&b[i..n])
        .take_while(|(x, y)| x == y)
        .count()
}

#[cfg(test)]
mod tests {
    use super::common_prefix;

    #[test]
    fn common_prefix_of_token_sequences() {
        let a: Vec<u32> = (0..100).collect();
        for at in [0, 1, 31, 32, 33, 64, 99] {
            let mut b = a.clone();
            b[at] = 9999;
            assert_eq!(common_prefix(&a, &b), at);
        }
        assert_eq!(common_prefix(&a, &a), 100);
        assert_eq!(common_prefix(&a[..40], &a), 40);
        assert_eq!(common_prefix(&[], &a), 0);
    }
}
