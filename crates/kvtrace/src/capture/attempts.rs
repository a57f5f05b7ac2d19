//! First attempts: the streaming twin of a non-streaming row (docs/spec.md, "Validation").
//!
//! The unmodified claude-code-proxy forwards only the SSE `data:` lines, so current
//! Claude Code never sees `message_start`, falls back to a non-streaming request, and
//! repeats every turn: a streaming row (its message id in no session log) followed, a
//! second later, by a non-streaming row (the one the log names) that reads the cache its
//! twin just filled. The twin's usage is what the turn cost the cache; the repeat's reads
//! nearly everything. Every tool that reports the API's cache figures uses the first
//! attempt's usage in place of the matched row's, so fallback captures do not show a
//! 100 % API hit rate.
//!
//! A matched row's first attempt is a row that no session file names, whose body has
//! `"stream": true`, the same `model`, and a `messages` section that serializes (stored
//! form) to the same text, timestamped no later than the matched row and at most
//! [`WINDOW_SECONDS`] before it; of several, the latest, then the later in table order.

use rustc_hash::{FxHashMap, FxHashSet};

use super::{Capture, CaptureError, Response, RowRef, Usage};
use crate::encode::{serialize_messages, transcoded_messages};
use crate::pyjson::{self, Form};
use crate::stamp::Stamp;

/// How far before the matched row its first attempt may be.
pub const WINDOW_SECONDS: i64 = 600;

/// Model and digest of the serialized `messages` section.
pub(crate) type Key = (String, u128);

/// Streaming rows no session file names, by (model, messages digest).
#[derive(Debug, Default)]
pub struct FirstAttempts {
    /// Per key: (timestamp µs, place in table order (rowid), usage), in table order.
    candidates: FxHashMap<Key, Vec<(i64, i64, Usage)>>,
    /// Every candidate's timestamp (µs), sorted: a row with no candidate in its window
    /// needs no key (serializing its messages is the costly part).
    times: Vec<i64>,
}

impl FirstAttempts {
    /// Index the candidate rows of a capture. `named` holds the request ids that session
    /// files name; only streaming rows outside it with a readable usage are kept. Reads
    /// every row once (bodies of unnamed rows only).
    pub fn build(cap: &Capture, named: &FxHashSet<String>) -> Result<FirstAttempts, CaptureError> {
        // Rowid ranges in parallel, a key maker per range; a row's rowid orders it. A
        // table without rowids is read in one scan, rows ordered by their place in it.
        let unnamed = |id: &str| !named.contains(id);
        let threads = rayon::current_num_threads();
        let found =
            match Capture::rows_where_parallel(cap.path(), threads, unnamed, |keys, rowid, row| {
                FirstAttempts::candidate(row, rowid, keys)
            })? {
                Some(found) => found,
                None => {
                    let mut found = Vec::new();
                    let mut keys = KeyMaker::default();
                    let order = std::cell::Cell::new(0i64);
                    cap.for_each_row_where(
                        |id| {
                            order.set(order.get() + 1);
                            unnamed(id)
                        },
                        |row| found.extend(FirstAttempts::candidate(row, order.get(), &mut keys)),
                    )?;
                    found
                }
            };
        let mut fa = FirstAttempts::default();
        for (key, ts, order, usage) in found {
            fa.candidates
                .entry(key)
                .or_default()
                .push((ts, order, usage));
        }
        fa.times = fa.candidates.values().flatten().map(|c| c.0).collect();
        fa.times.sort_unstable();
        Ok(fa)
    }

    /// An unnamed row as a candidate, when it is a streaming row with a readable usage:
    /// its key, time (µs), `order` and usage.
    fn candidate(
        row: RowRef<'_>,
        order: i64,
        keys: &mut KeyMaker,
    ) -> Option<(Key, i64, i64, Usage)> {
        let usage = row.response.and_then(Response::parse).map(|r| r.usage)?;
        if !readable(&usage) {
            return None;
        }
        let (key, ts, streaming) = keys.key(row)?;
        streaming.then_some((key, ts.micros, order, usage))
    }

    /// [`FirstAttempts::build`] with the rows named by every session file of `dir`
    /// (parents and agent files). Parent files are taken as the claims pass parsed them
    /// ([`SessionDir::load_claims`](crate::session::SessionDir::load_claims), run here
    /// when it has not run yet: call this outside parallel tasks), so they are not parsed
    /// twice.
    pub fn for_dir(
        cap: &Capture,
        index: &super::MessageIndex,
        dir: &crate::session::SessionDir,
    ) -> Result<FirstAttempts, CaptureError> {
        use rayon::prelude::*;
        dir.load_claims();
        let rows = |log: &crate::session::SessionLog| -> Vec<String> {
            log.message_ids
                .iter()
                .filter_map(|m| index.get(m))
                .map(str::to_owned)
                .collect()
        };
        let parents = (0..dir.parents.len())
            .into_par_iter()
            .map(|i| dir.with_raw_parent(i, rows).unwrap_or_default());
        let agents = dir
            .agents
            .values()
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|path| rows(&crate::session::SessionLog::read(path).unwrap_or_default()));
        let named: FxHashSet<String> = parents.chain(agents).flatten_iter().collect();
        FirstAttempts::build(cap, &named)
    }

    /// Whether any candidate exists (captures without fallback twins have none).
    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    /// The usage the API side counts for a matched row: its first attempt's when it has
    /// one, else `own`. Only a row that does not stream has a first attempt: `streaming`,
    /// when the caller already split the body, spares making the key of one that does.
    pub fn usage_for(
        &self,
        row: RowRef<'_>,
        own: Usage,
        streaming: Option<bool>,
        keys: &mut KeyMaker,
    ) -> Usage {
        if self.is_empty() || streaming == Some(true) {
            return own;
        }
        // No candidate at all in the row's window: no need for its key.
        let Some(ts) = Stamp::parse(row.timestamp) else {
            return own;
        };
        let earliest = ts.micros - WINDOW_SECONDS * 1_000_000;
        let from = self.times.partition_point(|&t| t < earliest);
        if self.times.get(from).is_none_or(|&t| t > ts.micros) {
            return own;
        }
        match keys.key(row) {
            Some((key, ts, false)) => self.find(&key, ts).unwrap_or(own),
            _ => own,
        }
    }

    /// [`FirstAttempts::usage_for`] of a row whose key (`KeyMaker::key`) is made.
    pub(crate) fn usage_with(&self, key: &(Key, Stamp, bool), own: Usage) -> Usage {
        match key {
            (key, ts, false) if !self.is_empty() => self.find(key, *ts).unwrap_or(own),
            _ => own,
        }
    }

    fn find(&self, key: &Key, ts: Stamp) -> Option<Usage> {
        let earliest = ts.micros - WINDOW_SECONDS * 1_000_000;
        self.candidates
            .get(key)?
            .iter()
            .filter(|(t, _, _)| *t <= ts.micros && *t >= earliest)
            .max_by_key(|(t, order, _)| (*t, *order))
            .map(|&(_, _, usage)| usage)
    }
}

/// A usage with something to count.
fn readable(u: &Usage) -> bool {
    u.input.is_some() || u.has_cache_fields()
}

/// Makes rows' keys: (model, digest of the stored-form `messages`), timestamp and
/// streaming flag. `messages` is transcoded incrementally: consecutive rows of one
/// conversation repeat each other's messages, so only what is new is transcoded (the
/// output equals a transcoding from scratch).
pub struct KeyMaker {
    messages: pyjson::ArrayTranscoder,
    known: pyjson::KnownMembers,
    scratch: String,
}

impl Default for KeyMaker {
    fn default() -> Self {
        KeyMaker {
            messages: pyjson::ArrayTranscoder::new(Form::Raw),
            known: pyjson::KnownMembers::default(),
            scratch: String::new(),
        }
    }
}

impl KeyMaker {
    /// A row's key, time and streaming flag; `None` when its time or body is unusable
    /// (the body is split and validated as the builder does).
    pub(crate) fn key(&mut self, row: RowRef<'_>) -> Option<(Key, Stamp, bool)> {
        let ts = Stamp::parse(row.timestamp)?;
        // The messages value is transcoded while the body is split (scanned once).
        let mut stepped = None;
        let transcoder = &mut self.messages;
        let body = pyjson::split_body_with(
            row.body?,
            &mut |lx| {
                stepped = Some(transcoder.step_over(lx)?);
                Ok(())
            },
            Some(&mut self.known),
        )
        .ok()?;
        let text = match (body.messages, stepped) {
            (Some(raw), Some(transcoded)) => {
                transcoded_messages(&self.messages, raw, transcoded, &mut self.scratch).ok()?
            }
            (raw, _) => {
                serialize_messages(&mut self.messages, raw.unwrap_or("null"), &mut self.scratch)
                    .ok()?
            }
        };
        let digest = xxhash_rust::xxh3::xxh3_128(text.as_bytes());
        let model = body.model.unwrap_or_else(|| "unknown".to_owned());
        Some(((model, digest), ts, body.stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_keys_equal_keys_made_from_scratch() {
        let bodies = [
            r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"a"}]}"#,
            r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"text","text":"b","cache_control":{"type":"ephemeral"}}]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b2"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x","content":"y"}]}"#,
            r#"{"model":"m","messages":"not a list"}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"a"}"#,
            r#"{"model":"n","stream":true,"messages":[{"role":"user","content":"a"}]}"#,
        ];
        let mut incremental = KeyMaker::default();
        let mut keys = Vec::new();
        for body in bodies {
            let row = RowRef {
                id: "r",
                timestamp: "2026-01-01T00:00:00Z",
                body: Some(body),
                response: None,
            };
            let k = incremental.key(row);
            assert_eq!(k, KeyMaker::default().key(row), "{body}");
            keys.push(k.map(|(key, _, streaming)| (key, streaming)));
        }
        // Damaged JSON has no key; the model and the messages are part of it.
        assert_eq!(keys[5], None);
        assert!(keys[..5].iter().all(Option::is_some));
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[0].as_ref().unwrap().0, keys[6].as_ref().unwrap().0);
        assert_eq!(
            keys[0].as_ref().unwrap().0 .1,
            keys[6].as_ref().unwrap().0 .1
        );
    }
}
