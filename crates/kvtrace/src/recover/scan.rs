//! Candidate rows and turns: which rows can be turns of a conversation, and the
//! old proxy's (streaming, non-streaming replay) pairs folded into one turn.
//!
//! A candidate is a row whose response parses, is not an HTTP error, and carries a `msg_`
//! message id that the message-id map resolves to this very row (the row a session log
//! line would name). Each candidate is described once, cheaply: its time, `stream` flag,
//! a 128-bit key of its normalized tools+system+messages (the pairing key), whether its
//! `messages` hold more than one message (only then can it continue a conversation), and a
//! **lineage** key (the first bytes of its normalized messages) that routes requests of one
//! conversation to one incremental tokenizer later. Nothing is tokenized here.

use rustc_hash::FxHashMap;
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use crate::capture::{Response, RowRef};
use crate::encode::{serialize_section, transcoded_messages, Section};
use crate::pyjson::{self, Form};
use crate::stamp::Stamp;

/// Old proxy: the non-streaming replay follows its streaming request within this window.
pub const PAIR_WINDOW_MICROS: i64 = 30 * 1_000_000;

/// Bytes of normalized messages that name a lineage.
const LINEAGE_BYTES: usize = 2048;

/// A candidate row, described.
#[derive(Debug, Clone)]
pub struct RowInfo {
    /// Position in table order (ties of equal times keep it).
    pub order: usize,
    pub id: String,
    pub message_id: String,
    pub ts: Stamp,
    pub streaming: bool,
    /// Body `model`, else the response's.
    pub model: Option<String>,
    /// Key of the normalized tools + system + messages.
    pub content: u128,
    pub lineage: u64,
    /// `messages` holds at least two messages.
    pub can_continue: bool,
    /// The first message is a compaction's summary ("This session is being continued
    /// from a previous conversation…"): the request continues a compacted conversation.
    pub after_compaction: bool,
    /// The `X-Claude-Code-Session-Id` header (current Claude Code), when present.
    pub session: Option<String>,
    /// The reply is a compaction's summary: the key of its core ([`summary_key`]).
    pub writes_summary: Option<u64>,
    /// The request opens with a compaction's summary: the key of its core.
    pub opens_with_summary: Option<u64>,
    /// The `Task`/`Agent` calls of the reply (sub-agents it spawns).
    pub spawns: Vec<super::link::SpawnCall>,
    /// Key of its normalized messages up to the end of each message (see
    /// [`pyjson::prefix_keys`]): a later turn of the same conversation starts with the
    /// same keys, whatever its tools and system prompt.
    pub history: Vec<u64>,
    /// A cache warm-up of Claude Code 2.0.x: one message, the text `Warmup`.
    pub warmup: bool,
    /// When the turn this row represents started: its streaming partner's time for an
    /// old-proxy pair (set by [`fold_pairs`]'s caller), else its own.
    pub started: Stamp,
}

/// The key of a compaction summary's core, the same on both sides: in the model's reply
/// (after `<summary>`, or after the first line of a reply that is the whole continuation
/// text) and in the message that opens the next request (after `Summary:`, or after the
/// first line): its first 256 characters, white space folded.
pub fn summary_key(text: &str) -> Option<u64> {
    let core = if let Some(i) = text.find("<summary>") {
        &text[i + "<summary>".len()..]
    } else if let Some(i) = text.find("Summary:\n") {
        &text[i + "Summary:\n".len()..]
    } else if text.trim_start().starts_with(CONTINUED) {
        text.split_once('\n')?.1
    } else {
        return None;
    };
    let folded = core.split_whitespace().collect::<Vec<_>>().join(" ");
    let snippet: String = folded.chars().take(256).collect();
    (snippet.len() >= 32).then(|| xxh3_64(snippet.as_bytes()))
}

/// The text of the first message of a `messages` section (its texts, joined by newlines).
/// Only that message is parsed: the section was validated when the body was split.
fn first_message_text(messages: &str) -> Option<String> {
    let v = pyjson::to_serde(pyjson::first_element(messages)?)?;
    let content = v.get("content")?;
    matches!(
        content,
        serde_json::Value::String(_) | serde_json::Value::Array(_)
    )
    .then(|| super::link::texts_of(content).join("\n"))
}

/// The prompt of Claude Code 2.0.x's cache warm-up requests.
const WARMUP: &str = crate::session_stats::WARMUP_PROMPT;

/// How Claude Code opens the first message after a compaction.
const CONTINUED: &str = "This session is being continued from a previous conversation";

/// Why a candidate row was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowSkip {
    BadTimestamp,
    BadBody,
}

/// The message id of a usable response: parses, no HTTP error status, `msg_` id.
pub fn usable_message_id(response: Option<&str>) -> Option<String> {
    let r = Response::parse(response?)?;
    if r.status_code.is_some_and(|s| s >= 400) {
        return None;
    }
    r.message_id.filter(|m| m.starts_with("msg_"))
}

/// Describe one candidate row. `scratch` is a reusable buffer.
/// Canonical keys of tools and system sections already seen by a worker, by the key of
/// their stored text: those sections repeat in almost every request (a fifth of the
/// bytes), and are transcoded once per worker instead of once per row.
///
/// It also keeps incremental transcoders of `messages`, one per conversation met lately
/// (told apart by the hash of the stored text's first [`LEAD_BYTES`]): rows reach a worker
/// in table order, conversations interleaved, and each row of a conversation repeats the
/// previous one's messages, so only what is new is transcoded (the output equals a
/// transcoding from scratch).
#[derive(Default)]
pub struct SectionMemo {
    keys: FxHashMap<u128, Option<u128>>,
    known: pyjson::KnownMembers,
    transcoders: Vec<(u64, pyjson::ArrayTranscoder)>,
    next: usize,
}

/// How many conversations' transcoders a worker keeps.
const TRANSCODERS: usize = 8;

/// The stored bytes of `messages` that tell conversations apart for the transcoders.
const LEAD_BYTES: usize = 2048;

impl SectionMemo {
    /// The transcoder of the conversation whose `messages` value starts `rest` (the body
    /// from that value on).
    fn transcoder_for(&mut self, rest: &[u8]) -> usize {
        let lead = xxh3_64(&rest[..rest.len().min(LEAD_BYTES)]);
        match self.transcoders.iter().position(|(k, _)| *k == lead) {
            Some(at) => at,
            None if self.transcoders.len() < TRANSCODERS => {
                self.transcoders.push((
                    lead,
                    pyjson::ArrayTranscoder::with_prefix_keys(Form::Canonical),
                ));
                self.transcoders.len() - 1
            }
            None => {
                let at = self.next % TRANSCODERS;
                self.next += 1;
                self.transcoders[at] = (
                    lead,
                    pyjson::ArrayTranscoder::with_prefix_keys(Form::Canonical),
                );
                at
            }
        }
    }

    /// A stored body split into its members, its `messages` value transcoded on the way
    /// (scanned once, only what the conversation's previous row did not have transcoded),
    /// and the transcoder that did it (`false`: an object repeats a key, so the tree path
    /// must serialize the messages).
    fn split_body<'a>(
        &mut self,
        text: &'a str,
    ) -> Result<(pyjson::Body<'a>, Option<(usize, bool)>), RowSkip> {
        let mut transcoded = None;
        let mut known = std::mem::take(&mut self.known);
        let body = pyjson::split_body_with(
            text,
            &mut |lx| {
                let at = self.transcoder_for(&lx.s[lx.i..]);
                transcoded = Some((at, self.transcoders[at].1.step_over(lx)?));
                Ok(())
            },
            Some(&mut known),
        );
        self.known = known;
        let body = body.map_err(|_| RowSkip::BadBody)?;
        Ok((body, transcoded))
    }

    /// The canonical serialization of a body's `messages` (`raw`, stepped over by
    /// [`SectionMemo::split_body`] as `transcoded` says) and its [`pyjson::prefix_keys`],
    /// `None` when it contributes nothing; `scratch` holds it when an object repeats a key
    /// (the tree path). The transcoder's keys are taken as they are: it hashed only the
    /// elements the conversation's previous row did not have.
    fn messages<'s>(
        &'s self,
        raw: &str,
        transcoded: Option<(usize, bool)>,
        scratch: &'s mut String,
    ) -> Result<Option<(&'s str, Vec<u64>)>, RowSkip> {
        let keyed = match transcoded {
            Some((at, true)) => Some(&self.transcoders[at].1),
            _ => None,
        };
        let text = match transcoded {
            Some((at, transcoded)) => {
                transcoded_messages(&self.transcoders[at].1, raw, transcoded, scratch)
            }
            None => serialize_section(raw, Section::Messages, Form::Canonical, scratch)
                .map(|_| scratch.as_str()),
        }
        .map_err(|_| RowSkip::BadBody)?;
        if crate::encode::stream::is_empty_text(text) {
            return Ok(None);
        }
        let keys = match keyed {
            Some(t) => t.prefix_keys().to_vec(),
            None => pyjson::prefix_keys(text),
        };
        Ok(Some((text, keys)))
    }

    /// The canonical key of a tools or system section (`None`: it contributes nothing).
    fn key(
        &mut self,
        raw: &str,
        section: Section,
        scratch: &mut String,
    ) -> Result<Option<u128>, RowSkip> {
        let raw_key = xxhash_rust::xxh3::xxh3_128(raw.as_bytes()) ^ (section as u128);
        if let Some(&k) = self.keys.get(&raw_key) {
            return Ok(k);
        }
        let contributes = serialize_section(raw, section, Form::Canonical, scratch)
            .map_err(|_| RowSkip::BadBody)?;
        let k = contributes.then(|| xxhash_rust::xxh3::xxh3_128(scratch.as_bytes()));
        if self.keys.len() >= 256 {
            self.keys.clear();
        }
        self.keys.insert(raw_key, k);
        Ok(k)
    }
}

pub fn describe(
    row: RowRef<'_>,
    order: usize,
    message_id: &str,
    scratch: &mut String,
    memo: &mut SectionMemo,
) -> Result<RowInfo, RowSkip> {
    let ts = Stamp::parse(row.timestamp).ok_or(RowSkip::BadTimestamp)?;
    let text = row.body.ok_or(RowSkip::BadBody)?;
    let (body, transcoded) = memo.split_body(text)?;
    let mut hasher = Xxh3::new();
    let mut lineage = 0u64;
    let mut can_continue = false;
    let mut after_compaction = false;
    let mut history = Vec::new();
    // The content key hashes each section's canonical key (tools and system, from the
    // memo) and the canonical messages: equal canonical content, equal key. Canonical:
    // the prefix keeps its identity when Claude Code switches a message between the
    // one-block list and the string form.
    for (section, raw) in [(Section::Tools, body.tools), (Section::System, body.system)] {
        if let Some(raw) = raw {
            if let Some(k) = memo.key(raw, section, scratch)? {
                hasher.update(&k.to_le_bytes());
            }
        }
        // Section separator.
        hasher.update(&[0]);
    }
    if let Some(raw) = body.messages {
        if let Some((text, keys)) = memo.messages(raw, transcoded, scratch)? {
            // An array's text is its last prefix key's text and the closing `]`: the key
            // and the length stand for it (only new elements were hashed).
            match keys.last() {
                Some(k) => {
                    hasher.update(&k.to_le_bytes());
                    hasher.update(&(text.len() as u64).to_le_bytes());
                }
                None => hasher.update(text.as_bytes()),
            }
            lineage = xxh3_64(&text.as_bytes()[..text.len().min(LINEAGE_BYTES)]);
            history = keys;
            can_continue = history.len() >= 2;
            let end = (0..=text.len().min(1024))
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            after_compaction = text[..end].contains(CONTINUED);
        }
    }
    let model = body
        .model
        .or_else(|| row.response.and_then(Response::parse).and_then(|r| r.model));
    // A summary is rare: look only at replies that mention one (Go escapes `<` as
    // `\u003c`, so the word itself is the filter).
    let writes_summary = row
        .response
        .filter(|r| r.contains("summary") || r.contains(CONTINUED))
        .and_then(crate::capture::envelope::reply_text)
        .and_then(|t| summary_key(&t));
    let warmup = !can_continue
        && body.messages.is_some_and(|m| m.contains(WARMUP))
        && body
            .messages
            .and_then(first_message_text)
            .is_some_and(|t| t.trim() == WARMUP);
    let opens_with_summary = if after_compaction {
        body.messages
            .and_then(first_message_text)
            .and_then(|t| summary_key(&t))
    } else {
        None
    };
    let spawns = row
        .response
        .map(super::link::spawn_calls)
        .unwrap_or_default();
    Ok(RowInfo {
        order,
        id: row.id.to_owned(),
        message_id: message_id.to_owned(),
        ts,
        streaming: body.stream,
        model,
        content: hasher.digest128(),
        lineage,
        can_continue,
        after_compaction,
        session: None,
        writes_summary,
        opens_with_summary,
        spawns,
        history,
        warmup,
        started: ts,
    })
}

/// A turn: the row that represents it and, for an old-proxy pair, the streaming partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    pub rep: usize,
    pub partner: Option<usize>,
}

/// Fold old-proxy pairs: each non-streaming row takes the latest unpaired streaming row
/// with the same content key that is 0–30 s earlier (or at the same second); the pair is
/// one turn, represented by the non-streaming row. Every other row is a turn of its own.
/// `rows` must be sorted by time; turns come back in time order of their representative.
pub fn fold_pairs(rows: &[RowInfo]) -> Vec<Turn> {
    let mut streaming: FxHashMap<u128, Vec<usize>> = FxHashMap::default();
    for (i, r) in rows.iter().enumerate() {
        if r.streaming {
            streaming.entry(r.content).or_default().push(i);
        }
    }
    let mut paired = vec![false; rows.len()];
    let mut partner_of: Vec<Option<usize>> = vec![None; rows.len()];
    for (i, r) in rows.iter().enumerate() {
        if r.streaming {
            continue;
        }
        let Some(list) = streaming.get(&r.content) else {
            continue;
        };
        // Streaming rows of this content at or before r (by time), latest first.
        let end = list.partition_point(|&s| rows[s].ts.micros <= r.ts.micros);
        let found = list[..end]
            .iter()
            .rev()
            .take_while(|&&s| r.ts.micros - rows[s].ts.micros <= PAIR_WINDOW_MICROS)
            .find(|&&s| !paired[s]);
        if let Some(&s) = found {
            paired[s] = true;
            partner_of[i] = Some(s);
        }
    }
    rows.iter()
        .enumerate()
        .filter(|&(i, _)| !paired[i])
        .map(|(i, _)| Turn {
            rep: i,
            partner: partner_of[i],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(order: usize, secs: i64, streaming: bool, content: u128) -> RowInfo {
        RowInfo {
            order,
            id: format!("r{order}"),
            message_id: format!("msg_{order}"),
            ts: Stamp {
                micros: secs * 1_000_000,
                offset_min: Some(0),
            },
            streaming,
            model: None,
            content,
            lineage: 0,
            can_continue: true,
            after_compaction: false,
            session: None,
            writes_summary: None,
            opens_with_summary: None,
            spawns: Vec::new(),
            history: Vec::new(),
            warmup: false,
            started: Stamp {
                micros: secs * 1_000_000,
                offset_min: Some(0),
            },
        }
    }

    #[test]
    fn prefix_keys_follow_elements() {
        let a = pyjson::prefix_keys(r#"[{"a":"x,]"},[1,2]]"#);
        let b = pyjson::prefix_keys(r#"[{"a":"x,]"},[1,2],{"c":3}]"#);
        assert_eq!(a.len(), 2);
        assert_eq!(b.len(), 3);
        assert_eq!(a[..], b[..2]);
        let c = pyjson::prefix_keys(r#"[{"a":"y,]"},[1,2]]"#);
        assert_ne!(a[0], c[0]);
        assert!(pyjson::prefix_keys("[]").is_empty());
        assert!(pyjson::prefix_keys("{}").is_empty());
    }

    #[test]
    fn a_transcoders_prefix_keys_equal_keys_of_its_output() {
        // Growing conversations, an edit in the middle, volatile keys dropped, strings
        // holding separators and escapes, a non-array, an invalid value and a repeated key
        // in between, an empty array.
        let texts = [
            r#"[{"role":"user","content":"a, ] b"}]"#,
            r#"[{"role":"user","content":"a, ] b"}, {"role":"assistant","content":[{"type":"text","text":"x\"y","cache_control":{"type":"ephemeral"}}]}]"#,
            r#"[{"role":"user","content":"a, ] b"}, {"role":"assistant","content":[{"type":"text","text":"x\"y"}]}, {"role":"user","content":"\u00e9\ud83d\ude00"}]"#,
            r#"[{"role":"user","content":"a, ] c"}, {"role":"assistant","content":[{"type":"text","text":"x\"y"}]}]"#,
            r#""just text""#,
            r#"[{"role":"user","content":"a, ] c"}, {"role":"assistant""#,
            r#"[{"role":"user","content":"a, ] c"}, {"a":1,"a":2}]"#,
            r#"[{"role":"user","content":"a, ] c"},   {"role":"assistant","content":"z"}  ]"#,
            r#"[]"#,
            r#"[{"role":"user","content":"a, ] c"}, {"role":"assistant","content":"z"}, 3]"#,
        ];
        let mut t = pyjson::ArrayTranscoder::with_prefix_keys(Form::Canonical);
        let mut checked = 0;
        for raw in texts {
            match t.transcode(raw) {
                Ok(out) => {
                    let out = out.to_owned();
                    assert_eq!(t.prefix_keys(), &pyjson::prefix_keys(&out)[..], "{raw}");
                    checked += 1;
                }
                Err(_) => assert!(t.prefix_keys().is_empty()),
            }
        }
        assert_eq!(checked, texts.len() - 2);
        // Keys follow the text, not the transcoder's history.
        let mut fresh = pyjson::ArrayTranscoder::with_prefix_keys(Form::Canonical);
        fresh.transcode(texts[9]).unwrap();
        assert_eq!(fresh.prefix_keys(), t.prefix_keys());
        assert_eq!(fresh.prefix_keys().len(), 3);
    }

    #[test]
    fn two_elements() {
        let n = |t: &str| pyjson::prefix_keys(t).len();
        assert_eq!(n("[{\"a\":\"x,y\"}]"), 1);
        assert_eq!(n("[{\"a\":[1,2]},{\"b\":2}]"), 2);
        assert_eq!(n("[\"\\\",\"]"), 1);
        assert_eq!(n("{}"), 0);
    }

    #[test]
    fn pairs_fold_within_the_window() {
        let rows = vec![
            row(0, 0, true, 1),
            row(1, 0, false, 1), // same second: paired with 0
            row(2, 10, true, 2),
            row(3, 50, false, 2), // 40 s later: not paired
            row(4, 60, true, 3),  // no replay: its own turn
            row(5, 61, false, 9), // different content: its own turn
        ];
        let turns = fold_pairs(&rows);
        let reps: Vec<(usize, Option<usize>)> = turns.iter().map(|t| (t.rep, t.partner)).collect();
        assert_eq!(
            reps,
            vec![(1, Some(0)), (2, None), (3, None), (4, None), (5, None)]
        );
    }
}
