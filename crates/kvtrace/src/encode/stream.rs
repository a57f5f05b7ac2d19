//! One stored request → its tokens, block digests and response facts (spec §4.2–§4.5).
//!
//! This is the per-request work, done in parallel before any id is assigned. It is
//! independent of segments and id scopes, which the sequential assembly applies later.
//! Cost is kept proportional to new content: the `tools` and `system` sections are
//! tokenized once per distinct text (a section memo), `messages` go through the
//! incremental encoder, and block digests of an unchanged token prefix are reused.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::blocks::{chain_digests, chain_digests_from, Digest64, Salt};
use crate::capture::{Response, RowRef};
use crate::pyjson::{self, Body, Form, TranscodeError, Value};
use crate::stamp::Stamp;
use crate::tokens::incremental::{common_tokens, IncrementalEncoder};
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
pub(crate) type SectionTokens = Option<Arc<[Token]>>;

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
    /// The last body's tools and system values, stepped over by a compare when repeated.
    known: pyjson::KnownMembers,
    scratch: String,
    prev_tokens: Vec<Token>,
    /// Reused buffer for the next request's tokens (swapped with `prev_tokens`), so large
    /// token vectors are not reallocated — and their pages not faulted in — per request.
    next_tokens: Vec<Token>,
    prev_digests: Vec<Digest64>,
    /// [`Stream::process`]'s record of the last request chained: its tools and system
    /// tokens and its message token count. Its tokens are never put together: the token
    /// prefix a request shares with it is found section by section.
    prev_head: [SectionTokens; 2],
    prev_messages: usize,
    /// Whether the incremental encoder's last text was that request's messages.
    messages_synced: bool,
    /// The transcoder's call count when its output was the text the incremental encoder
    /// encoded last (`None`: that text came from elsewhere).
    encoded_call: Option<u64>,
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
        let (body, transcoded) = self.split_transcoding(text)?;
        let t = self.tokenize_with(tk, &body, Some(transcoded))?;
        Ok((body, t))
    }

    /// A stored body split into its members, its `messages` value transcoded on the way
    /// (reusing the previous request's work up to the bytes both share); whether the last
    /// `messages` value (a repeated key keeps the last) was transcoded.
    fn split_transcoding<'a>(&mut self, text: &'a str) -> Result<(Body<'a>, bool), Skip> {
        let mut transcoded = false;
        let json = &mut self.messages_json;
        let body = pyjson::split_body_with(
            text,
            &mut |lx| {
                transcoded = json.step_over(lx)?;
                Ok(())
            },
            Some(&mut self.known),
        )
        .map_err(|_| Skip::BadBody)?;
        Ok((body, transcoded))
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
        self.messages_synced = false;
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
        let (head, messages) = self.encode_parts(tk, body, transcoded)?;
        for (size, t) in sizes.iter_mut().zip(&head) {
            if let Some(t) = t {
                *size = t.len();
                all.extend_from_slice(t);
            }
        }
        if messages {
            all.extend_from_slice(self.messages.tokens());
        }
        Ok((all, sizes[0], sizes[1]))
    }

    /// How many tokens [`Stream::tokenize`] gives a body, without putting them together.
    pub fn count(&mut self, tk: &mut Tokenizer, body: &Body<'_>) -> Result<usize, Skip> {
        if self.full {
            return self.tokenize(tk, body).map(|(t, _, _)| t.len());
        }
        self.messages_synced = false;
        let (head, messages) = self.encode_parts(tk, body, None)?;
        let head: usize = head.iter().flatten().map(|t| t.len()).sum();
        Ok(head
            + if messages {
                self.messages.tokens().len()
            } else {
                0
            })
    }

    /// The tools and system tokens of a body, from the section memo.
    fn head_of(&mut self, tk: &mut Tokenizer, body: &Body<'_>) -> Result<[SectionTokens; 2], Skip> {
        let mut head: [SectionTokens; 2] = [None, None];
        let sections = [(Section::Tools, body.tools), (Section::System, body.system)];
        for (slot, (section, raw)) in head.iter_mut().zip(sections) {
            if let Some(raw) = raw {
                *slot = tk.section(raw, section, self.form, &mut self.scratch)?;
            }
        }
        Ok(head)
    }

    /// Transcode a `messages` value; `false`: an object repeats a key (the tree path
    /// serializes it).
    fn transcode_messages(&mut self, raw: &str) -> Result<bool, Skip> {
        match self.messages_json.transcode(raw) {
            Ok(_) => Ok(true),
            Err(TranscodeError::DuplicateKey) => Ok(false),
            Err(TranscodeError::Json(_)) => Err(Skip::BadBody),
        }
    }

    /// The tools and system tokens of a body (from the section memo), and whether its
    /// messages contribute (then the incremental encoder's tokens are theirs).
    fn encode_parts(
        &mut self,
        tk: &mut Tokenizer,
        body: &Body<'_>,
        transcoded: Option<bool>,
    ) -> Result<([SectionTokens; 2], bool), Skip> {
        let head = self.head_of(tk, body)?;
        let Some(raw) = body.messages else {
            return Ok((head, false));
        };
        let ready = match transcoded {
            Some(ready) => ready,
            None => self.transcode_messages(raw)?,
        };
        let known = self.known_prefix(ready);
        let text = transcoded_messages(&self.messages_json, raw, ready, &mut self.scratch)?;
        if is_empty_text(text) {
            return Ok((head, false));
        }
        let before = self.messages.fresh_bytes;
        self.messages.encode_keeping_known(&mut tk.enc, text, known);
        self.encoded_call = ready.then(|| self.messages_json.calls());
        tk.fresh_bytes += self.messages.fresh_bytes - before;
        Ok((head, true))
    }

    /// How many leading bytes of the transcoder's output (when `transcoded`: it holds the
    /// messages about to be encoded) equal the text the incremental encoder saw last: the
    /// bytes the transcoder kept from its previous output, when that output is the text
    /// the encoder encoded last; they need no compare.
    fn known_prefix(&self, transcoded: bool) -> usize {
        let json = &self.messages_json;
        match self.encoded_call {
            Some(c) if transcoded && c + 1 == json.calls() => json.kept_output(),
            _ => 0,
        }
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
            common_tokens(&self.prev_tokens, &tokens) / block_size
        };
        // `process`'s record no longer describes the last request.
        self.prev_head = [None, None];
        self.messages_synced = false;
        let mut digests: Vec<Digest64> =
            self.prev_digests[..shared_blocks.min(self.prev_digests.len())].to_vec();
        chain_digests(salt, &tokens, block_size, &mut digests);
        let reset = is_context_reset(&self.prev_digests, &digests);
        self.prev_digests.clone_from(&digests);
        let tokens_in = tokens.len();
        self.next_tokens = std::mem::replace(&mut self.prev_tokens, tokens);
        (digests, tokens_in, reset)
    }

    /// [`Stream::tokenize_text`] without putting the request's tokens together, with how
    /// many tokens it shares at the start with the previous request tokenized this way:
    /// its tools and system tokens when they are the same memo entries (or equal), then
    /// the message tokens the incremental encoder kept or re-made equal. The count is
    /// exact or short, never long: whatever is derived from a token prefix (block
    /// digests) can be reused up to it. [`Stream::tokens_from`] gives the tokens.
    pub fn tokenize_shared<'a>(
        &mut self,
        tk: &mut Tokenizer,
        text: &'a str,
    ) -> Result<(Body<'a>, SharedTokens), Skip> {
        let synced = std::mem::replace(&mut self.messages_synced, false);
        let (body, transcoded) = self.split_transcoding(text)?;
        let t = self.shared_tokens(tk, &body, synced, transcoded, None)?;
        Ok((body, t))
    }

    /// How many `messages` values the stream's transcoder has been over (failed ones
    /// included): a caller compares it before and after a call to know whether the
    /// transcoder saw that request's messages.
    pub fn messages_calls(&self) -> u64 {
        self.messages_json.calls()
    }

    /// The raw elements of the `messages` value `raw` the transcoder was over last, and how
    /// many it kept from the value before ([`pyjson::ArrayTranscoder::element_texts`]).
    pub fn message_elements<'r>(&self, raw: &'r str) -> Option<(usize, Vec<&'r str>)> {
        self.messages_json.element_texts(raw)
    }

    /// [`Stream::tokenize_shared`] of a body already split, its `messages` not yet
    /// transcoded; `head`, when given, stands for its tools and system tokens (the
    /// stand-in prefix of a request rebuilt from session logs).
    pub fn tokenize_body_shared(
        &mut self,
        tk: &mut Tokenizer,
        body: &Body<'_>,
        head: Option<[SectionTokens; 2]>,
    ) -> Result<SharedTokens, Skip> {
        let synced = std::mem::replace(&mut self.messages_synced, false);
        let transcoded = match body.messages {
            Some(raw) => self.transcode_messages(raw)?,
            None => true,
        };
        self.shared_tokens(tk, body, synced, transcoded, head)
    }

    /// The rest of [`Stream::tokenize_shared`] once the messages went through the
    /// transcoder (`transcoded`: its output holds them); `synced`: the encoder's last text
    /// was the previous request's messages.
    fn shared_tokens(
        &mut self,
        tk: &mut Tokenizer,
        body: &Body<'_>,
        synced: bool,
        transcoded: bool,
        head: Option<[SectionTokens; 2]>,
    ) -> Result<SharedTokens, Skip> {
        let head = match head {
            Some(head) => head,
            None => self.head_of(tk, body)?,
        };
        let mut shared_messages = 0;
        let mut encoded = false;
        if let Some(raw) = body.messages {
            let known = self.known_prefix(transcoded);
            let text =
                transcoded_messages(&self.messages_json, raw, transcoded, &mut self.scratch)?;
            if !is_empty_text(text) {
                let before = self.messages.fresh_bytes;
                let common = self.messages.encode_keeping_known(&mut tk.enc, text, known);
                tk.fresh_bytes += self.messages.fresh_bytes - before;
                self.encoded_call = transcoded.then(|| self.messages_json.calls());
                if synced {
                    shared_messages = common.min(self.prev_messages);
                }
                encoded = true;
            }
        }
        let messages = if encoded {
            self.messages.tokens().len()
        } else {
            0
        };
        let len = |t: &SectionTokens| t.as_deref().map_or(0, <[Token]>::len);
        let (tool_tokens, system_tokens) = (len(&head[0]), len(&head[1]));
        let same = |a: &SectionTokens, b: &SectionTokens| match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a[..] == b[..],
            _ => false,
        };
        let shared = if same(&self.prev_head[0], &head[0]) && same(&self.prev_head[1], &head[1]) {
            tool_tokens + system_tokens + shared_messages
        } else {
            // The tools or the system prompt changed: the prefix shared within them.
            let tokens = |h: &[SectionTokens; 2]| {
                let [a, b] = h.clone();
                a.into_iter().chain(b).flat_map(|t| t.to_vec())
            };
            tokens(&self.prev_head)
                .zip(tokens(&head))
                .take_while(|(a, b)| a == b)
                .count()
        };
        self.prev_messages = messages;
        self.prev_head.clone_from(&head);
        self.messages_synced = encoded;
        // `chain`'s record no longer describes the last request.
        self.prev_tokens.clear();
        Ok(SharedTokens {
            head,
            messages: encoded,
            shared,
            tool_tokens,
            system_tokens,
            tokens_in: tool_tokens + system_tokens + messages,
        })
    }

    /// Append the tokens of the request [`Stream::tokenize_shared`] just gave, from token
    /// `from` on, to `out`.
    pub fn tokens_from(&self, t: &SharedTokens, from: usize, out: &mut Vec<Token>) {
        let messages = if t.messages {
            self.messages.tokens()
        } else {
            &[]
        };
        let mut skip = from;
        let parts = [t.head[0].as_deref(), t.head[1].as_deref(), Some(messages)];
        for part in parts.into_iter().flatten() {
            if skip < part.len() {
                out.extend_from_slice(&part[skip..]);
            }
            skip = skip.saturating_sub(part.len());
        }
    }

    /// [`Stream::tokenize_text`] then [`Stream::chain`], through
    /// [`Stream::tokenize_shared`]: only the tokens past the last shared block are
    /// gathered and hashed. Same digests as the two calls (digests depend only on the
    /// salt and the tokens).
    fn tokenize_and_chain<'a>(
        &mut self,
        tk: &mut Tokenizer,
        salt: &Salt,
        block_size: usize,
        text: &'a str,
    ) -> Result<(Body<'a>, Chained), Skip> {
        let (body, t) = self.tokenize_shared(tk, text)?;
        Ok((body, self.chain_shared(salt, block_size, &t)))
    }

    /// [`Stream::chain`] of the request [`Stream::tokenize_shared`] (or
    /// [`Stream::tokenize_body_shared`]) just gave: only the tokens past the last shared
    /// block are gathered and hashed.
    pub(crate) fn chain_shared(
        &mut self,
        salt: &Salt,
        block_size: usize,
        t: &SharedTokens,
    ) -> Chained {
        let mut digests: Vec<Digest64> =
            self.prev_digests[..(t.shared / block_size).min(self.prev_digests.len())].to_vec();
        let from = digests.len() * block_size;
        if from + block_size <= t.tokens_in {
            let mut rest = std::mem::take(&mut self.next_tokens);
            rest.clear();
            self.tokens_from(t, from, &mut rest);
            chain_digests_from(salt, &rest, block_size, &mut digests);
            self.next_tokens = rest;
        }
        let reset = is_context_reset(&self.prev_digests, &digests);
        self.prev_digests.clone_from(&digests);
        Chained {
            digests,
            tokens_in: t.tokens_in,
            reset,
            tool_tokens: t.tool_tokens,
            system_tokens: t.system_tokens,
        }
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
        let (body, chained) = if self.full {
            let (body, (tokens, tool_tokens, system_tokens)) = self.tokenize_text(tk, body_text)?;
            let (digests, tokens_in, reset) = self.chain(salt, block_size, tokens);
            let chained = Chained {
                digests,
                tokens_in,
                reset,
                tool_tokens,
                system_tokens,
            };
            (body, chained)
        } else {
            self.tokenize_and_chain(tk, salt, block_size, body_text)?
        };
        let Chained {
            digests,
            tokens_in,
            reset,
            tool_tokens,
            system_tokens,
        } = chained;
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

/// A request's tokens as [`Stream::tokenize_shared`] gives them: kept in their sections.
pub struct SharedTokens {
    head: [SectionTokens; 2],
    /// Whether the messages contribute (their tokens are the incremental encoder's).
    messages: bool,
    /// Tokens shared at the start with the previous request (exact or short).
    pub shared: usize,
    pub tool_tokens: usize,
    pub system_tokens: usize,
    pub tokens_in: usize,
}

/// A request's block digests and sizes, and whether it replaced the previous context.
pub(crate) struct Chained {
    pub digests: Vec<Digest64>,
    pub tokens_in: usize,
    pub reset: bool,
    pub tool_tokens: usize,
    pub system_tokens: usize,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix_of_token_sequences() {
        let a: Vec<u32> = (0..100).collect();
        for at in [0, 1, 31, 32, 33, 64, 99] {
            let mut b = a.clone();
            b[at] = 9999;
            assert_eq!(common_tokens(&a, &b), at);
        }
        assert_eq!(common_tokens(&a, &a), 100);
        assert_eq!(common_tokens(&a[..40], &a), 40);
        assert_eq!(common_tokens(&[], &a), 0);
    }

    /// A request body: `tools` and `system` as given (JSON text, `None` leaves the member
    /// out), and one user message per text.
    fn body(tools: Option<&str>, system: Option<&str>, texts: &[String]) -> String {
        let messages: Vec<String> = texts
            .iter()
            .map(|t| {
                format!(
                    r#"{{"role":"user","content":{}}}"#,
                    serde_json::to_string(t).unwrap()
                )
            })
            .collect();
        let mut members = vec![r#""model":"m","stream":true"#.to_owned()];
        if let Some(t) = tools {
            members.push(format!(r#""tools":{t}"#));
        }
        if let Some(s) = system {
            members.push(format!(r#""system":{s}"#));
        }
        members.push(format!(r#""messages":[{}]"#, messages.join(",")));
        format!("{{{}}}", members.join(","))
    }

    #[test]
    fn process_shares_prefixes_exactly_as_the_full_path() {
        let t1 = r#"[{"name":"Read","description":"Reads a file from the local filesystem at the given path","input_schema":{}}]"#;
        let t2 = r#"[{"name":"Read","description":"Reads a file from the local filesystem at the given path","input_schema":{}},{"name":"Bash"}]"#;
        let s1 = r#""You are a helpful assistant that writes careful code.""#;
        let s2 = r#"[{"type":"text","text":"You are a helpful assistant that writes careful code, always."}]"#;
        let turn = |i: usize| {
            format!(
                "turn {i}: please look at src/lib.rs line {} and fix    the bug",
                i * 7
            )
        };
        let turns = |n: usize| (0..n).map(turn).collect::<Vec<String>>();
        let mut grown = turns(6);
        grown.push("Üñíçødé text 😀 mixed in".to_owned());
        let bodies: Vec<String> = vec![
            body(Some(t1), Some(s1), &turns(1)),
            body(Some(t1), Some(s1), &turns(3)),
            body(Some(t1), Some(s1), &turns(3)),
            body(Some(t1), Some(s1), &turns(5)),
            body(Some(t2), Some(s1), &turns(6)),
            body(Some(t2), Some(s2), &turns(6)),
            body(Some(t2), Some(s2), &[]),
            body(Some(t2), Some(s2), &turns(7)),
            "{not json".to_owned(),
            body(Some(t2), Some(s2), &turns(8)),
            body(Some(t2), Some(s2), &grown),
            body(Some(t2), Some(s2), &grown[..5]),
            body(Some(t2), Some(s2), &[turn(40), turn(41)]),
            body(None, Some(s2), &[turn(40), turn(41), turn(42)]),
            body(None, None, &[turn(40), turn(41), turn(42), turn(43)]),
            body(Some(t1), None, &[turn(40), turn(41), turn(42), turn(43)]),
            body(Some("[]"), Some(s1), &turns(9)),
            r#"{"model":"m","messages":[{"role":"user","content":"a","content":"b b b b b b b b b"}]}"#.to_owned(),
            r#"{"model":"m","messages":[{"role":"user","content":"a","content":"b b b b b b b b b c"}]}"#.to_owned(),
            body(Some(t1), Some(s1), &turns(12)),
            // Tools of the same token count, not the same tokens.
            body(Some(&t1.replace("Read", "Edit")), Some(s1), &turns(12)),
            body(Some(t1), Some(s1), &turns(13)),
        ];
        let salt = Salt::from_hex("00112233445566778899aabbccddeeff").unwrap();
        for form in [Form::Canonical, Form::Raw] {
            for block_size in [1, 4, 64] {
                let mut fast = Stream::new(false, form);
                let mut full = Stream::new(true, form);
                let (mut fast_tk, mut full_tk) = (Tokenizer::default(), Tokenizer::default());
                for (i, text) in bodies.iter().enumerate() {
                    let row = RowRef {
                        id: "r",
                        timestamp: "2025-01-01T00:00:00Z",
                        body: Some(text),
                        response: None,
                    };
                    let a = fast.process(&mut fast_tk, &salt, block_size, row);
                    let z = full.process(&mut full_tk, &salt, block_size, row);
                    let facts = |p: &Result<Processed, Skip>| {
                        p.as_ref().map_err(|e| *e).map(|p| {
                            let sizes = (p.tokens_in, p.tool_tokens, p.system_tokens);
                            (sizes, p.digests.clone(), p.message_types.clone())
                        })
                    };
                    assert_eq!(
                        facts(&a),
                        facts(&z),
                        "request {i}, {form:?}, blocks of {block_size}"
                    );
                }
            }
            // Split bodies with stand-in heads (two, shared by pointer or equal by value) or
            // their own: chained digests equal digests of the whole tokens from scratch.
            let stand_in = |n: u32| -> Arc<[Token]> { (0..n).map(|k| k % 7 + 100).collect() };
            let heads = [
                Some(stand_in(150)),
                Some(stand_in(150)),
                None,
                Some(stand_in(90)),
            ];
            let mut shared = Stream::new(false, form);
            let mut alone = Stream::new(false, form);
            let (mut tk, mut alone_tk) = (Tokenizer::default(), Tokenizer::default());
            for (i, text) in bodies.iter().enumerate() {
                let Ok(body) = pyjson::split_body(text) else {
                    continue;
                };
                let head = heads[i % heads.len()].clone().map(|h| [Some(h), None]);
                let got = shared
                    .tokenize_body_shared(&mut tk, &body, head.clone())
                    .map(|t| shared.chain_shared(&salt, 4, &t).digests);
                let want = alone
                    .tokenize(&mut alone_tk, &body)
                    .map(|(t, tools, system)| {
                        let mut all: Vec<Token> = match &head {
                            Some([Some(h), _]) => h.to_vec(),
                            _ => Vec::new(),
                        };
                        let own_head = if head.is_some() { tools + system } else { 0 };
                        all.extend_from_slice(&t[own_head..]);
                        let mut digests = Vec::new();
                        chain_digests(&salt, &all, 4, &mut digests);
                        digests
                    });
                assert_eq!(got, want, "request {i}, {form:?}");
            }
            // Counting without putting the tokens together gives the full path's count.
            let mut counting = Stream::new(false, form);
            let mut full = Stream::new(true, form);
            let (mut tk, mut full_tk) = (Tokenizer::default(), Tokenizer::default());
            for (i, text) in bodies.iter().enumerate() {
                let Ok(body) = pyjson::split_body(text) else {
                    continue;
                };
                let counted = counting.count(&mut tk, &body);
                let tokens = full.tokenize(&mut full_tk, &body).map(|t| t.0.len());
                assert_eq!(counted, tokens, "request {i}, {form:?}");
            }
        }
    }
}
