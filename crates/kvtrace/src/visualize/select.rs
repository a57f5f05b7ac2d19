//! Which requests a dashboard shows, and what each one is made of.
//!
//! - one conversation: its parent rows (spec §4.1) and its sub-agents' rows, labelled
//!   `SA1`, `SA2`, … in spawn order (§4.9.2: earliest agent-file time, else the spawning
//!   entry, else the tool_result; ties by link order);
//! - `combined`: every row of the capture whose body parses, each turn counted once: an
//!   old-proxy pair (a streaming request and, within 30 s after it, a non-streaming one
//!   with the same normalized tools + system + messages) counts as the non-streaming one.
//!
//! Each request is tokenized as the traces are (§4.2–§4.3, the library's `Stream`), but
//! cut into blocks *with* the final partial block, and hashed with an unsalted chained
//! 128-bit xxh3: the digests never leave the process, they only have to be equal exactly
//! when the token prefixes are. The context is also split into parts (tools, system, user
//! text, assistant text, tool_use, tool_result) for the composition chart; the message
//! parts are apportioned by serialized bytes, which is approximate by design.

use std::path::Path;

use rustc_hash::FxHashMap;

use crate::capture::{Capture, KeyMaker, MessageIndex, Response, RowRef, Usage};
use crate::conversation::matched_rows;
use crate::conversation::Counts;
use crate::encode::{Stream, Tokenizer};
use crate::pyjson::{self, Value};
use crate::session::{SessionDir, SessionLog};
use crate::stamp::Stamp;
use crate::tokens::Token;

use super::VisualizeError;

/// What a stretch of the context holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    Tools,
    System,
    UserText,
    AssistantText,
    ToolUse,
    ToolResult,
}

impl Part {
    pub const ALL: [Part; 6] = [
        Part::Tools,
        Part::System,
        Part::UserText,
        Part::AssistantText,
        Part::ToolUse,
        Part::ToolResult,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Part::Tools => "tools",
            Part::System => "system",
            Part::UserText => "user text",
            Part::AssistantText => "assistant text",
            Part::ToolUse => "tool_use",
            Part::ToolResult => "tool_result",
        }
    }
}

/// One request of a selection.
#[derive(Debug, Clone)]
pub struct Request {
    pub request_id: String,
    pub ts: Stamp,
    /// Seconds since the selection's first request.
    pub t: f64,
    pub streaming: bool,
    pub model: String,
    pub tokens_in: usize,
    pub tool_tokens: usize,
    pub system_tokens: usize,
    /// Chained digests of the blocks, the final partial block included.
    pub blocks: Vec<u128>,
    /// The context in order, as (part, tokens) runs summing to `tokens_in`.
    pub parts: Vec<(Part, usize)>,
    pub out: u64,
    pub usage: Usage,
    /// responseTime in seconds.
    pub api_time: Option<f64>,
    pub completed_at: Option<Stamp>,
    /// Seconds since the latest earlier `completedAt` of the same source.
    pub think: Option<f64>,
    pub stop: String,
    /// Index into [`Selection::sources`].
    pub source: usize,
}

impl Request {
    /// API input total: input + cache read + cache creation.
    pub fn api_total(&self) -> u64 {
        self.usage.input.unwrap_or(0)
            + self.usage.cache_read.unwrap_or(0)
            + self.usage.cache_creation.unwrap_or(0)
    }

    /// The API's cache-read share in percent, when it reported cache fields.
    pub fn api_read_pct(&self) -> Option<f64> {
        let total = self.api_total();
        (self.usage.has_cache_fields() && total > 0)
            .then(|| self.usage.cache_read.unwrap_or(0) as f64 / total as f64 * 100.0)
    }
}

/// Where requests come from: a parent conversation, a sub-agent, or unknown rows.
#[derive(Debug, Clone)]
pub struct Source {
    /// `parent`, `SA1`…, or (combined) the first 8 chars of the conversation id.
    pub label: String,
    pub conversation: String,
    pub subagent: bool,
    pub subagent_type: Option<String>,
}

/// The requests of one dashboard, in time order.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Conversation id or `combined`.
    pub name: String,
    pub block_size: usize,
    pub sources: Vec<Source>,
    pub requests: Vec<Request>,
    /// Rows skipped: unparseable body or timestamp, missing rows.
    pub skipped: usize,
    /// Old-proxy pairs counted once (combined).
    pub pairs_merged: usize,
    /// Session files that could not be read (combined; skipped).
    pub unreadable: Vec<crate::session::Unreadable>,
}

/// The capture, its message-id map and its session directory, opened once.
pub struct Inputs {
    /// Connections to the capture, one per task (dashboards are built in parallel).
    caps: crate::capture::Pool,
    pub index: MessageIndex,
    pub dir: SessionDir,
    /// First attempts of fallback twins, whose usage the API figures show.
    pub attempts: crate::capture::FirstAttempts,
    /// Tokenizers (and their caches) lent to the tasks that load streams.
    tokenizers: crate::conversation::ordered::Lender<Tokenizer>,
}

impl Inputs {
    pub fn open(db: &Path, jsonl_dir: &Path) -> Result<Inputs, VisualizeError> {
        let cap = Capture::open(db)?;
        let dir = SessionDir::scan(jsonl_dir)?;
        // The message-id pass, the session files' claims and the tokenizer's rank table
        // side by side (as the build).
        let (index, _) = rayon::join(
            || Capture::message_index_parallel(db, rayon::current_num_threads()),
            || rayon::join(|| dir.load_claims(), crate::tokens::warm),
        );
        let index = index?;
        let attempts = crate::capture::FirstAttempts::for_dir(&cap, &index, &dir)?;
        Ok(Inputs {
            caps: crate::capture::Pool::new(cap),
            index,
            dir,
            attempts,
            tokenizers: Default::default(),
        })
    }
}

impl Inputs {
    /// A connection to the capture for this task.
    pub fn cap(&self) -> Result<crate::capture::Pooled<'_>, crate::capture::CaptureError> {
        self.caps.get()
    }
}

/// A sub-agent found from a parent log: (agent id, type, spawn time, agent log).
fn subagents(
    inputs: &Inputs,
    log: &SessionLog,
) -> Vec<(Option<String>, Option<Stamp>, SessionLog)> {
    let mut out = Vec::new();
    for link in &log.links {
        let Some(Ok(agent_log)) = inputs.dir.agent_log(log, &link.agent_id) else {
            continue;
        };
        let spawn_entry = log.spawn_for(link);
        let spawn = log.spawn_time(link, &agent_log);
        out.push((
            spawn_entry.and_then(|s| s.subagent_type.clone()),
            spawn,
            agent_log,
        ));
    }
    // Spawn order; unknown spawn times last; ties keep link order (stable sort).
    out.sort_by_key(|(_, spawn, _)| (spawn.is_none(), spawn.map(|s| s.micros)));
    out
}

/// One conversation (session id or unique prefix) with its sub-agents.
pub fn conversation(
    inputs: &Inputs,
    id: &str,
    block_size: usize,
) -> Result<Selection, VisualizeError> {
    let path = inputs
        .dir
        .find_parent(id)
        .map_err(VisualizeError::Selection)?
        .to_owned();
    let log = inputs
        .dir
        .read_parent(&path)
        .map_err(|source| VisualizeError::Io {
            path: path.clone(),
            source,
        })?;
    let name = log.stem();
    let mut sources = vec![Source {
        label: "parent".into(),
        conversation: name.clone(),
        subagent: false,
        subagent_type: None,
    }];
    let mut counts = Counts::default();
    let mut plan: Vec<(usize, Vec<String>)> = vec![(
        0,
        matched_rows(&*inputs.cap()?, &inputs.index, &log, &mut counts)?
            .into_iter()
            .map(|k| k.id)
            .collect(),
    )];
    for (kind, _, agent_log) in subagents(inputs, &log) {
        let rows: Vec<String> =
            matched_rows(&*inputs.cap()?, &inputs.index, &agent_log, &mut counts)?
                .into_iter()
                .map(|k| k.id)
                .collect();
        if rows.is_empty() {
            continue;
        }
        sources.push(Source {
            label: format!("SA{}", sources.len()),
            conversation: name.clone(),
            subagent: true,
            subagent_type: kind,
        });
        plan.push((sources.len() - 1, rows));
    }
    let mut sel = Selection {
        name,
        block_size,
        sources,
        requests: Vec::new(),
        skipped: counts.missing_rows,
        pairs_merged: 0,
        unreadable: Vec::new(),
    };
    // The parent and each sub-agent are separate streams, appended in plan order (time
    // order is restored, stably, by `finish`).
    let plan: Vec<(usize, Vec<(usize, String)>)> = plan
        .into_iter()
        .map(|(source, rows)| (source, rows.into_iter().enumerate().collect()))
        .collect();
    for (_, request) in load_streams(inputs, &plan, block_size, &mut sel.skipped)? {
        sel.requests.push(request);
    }
    finish(&mut sel);
    Ok(sel)
}

/// Every turn of the capture, counted once.
pub fn combined(inputs: &Inputs, block_size: usize) -> Result<Selection, VisualizeError> {
    // Which source each known row belongs to (for labels, lanes and tokenizer streams).
    let mut sources: Vec<Source> = Vec::new();
    let mut owner: FxHashMap<String, usize> = FxHashMap::default();
    let mut unreadable = Vec::new();
    for path in &inputs.dir.parents {
        let log = match inputs.dir.read_parent(path) {
            Ok(log) => log,
            Err(e) => {
                unreadable.push(crate::session::Unreadable::new(path, &e));
                continue;
            }
        };
        let conv = log.stem();
        let short: String = conv.chars().take(8).collect();
        let mut add = |log: &SessionLog, src: Source, sources: &mut Vec<Source>| {
            sources.push(src);
            for mid in &log.message_ids {
                if let Some(rid) = inputs.index.get(mid) {
                    owner.entry(rid.to_owned()).or_insert(sources.len() - 1);
                }
            }
        };
        add(
            &log,
            Source {
                label: short.clone(),
                conversation: conv.clone(),
                subagent: false,
                subagent_type: None,
            },
            &mut sources,
        );
        for (i, (kind, _, agent_log)) in subagents(inputs, &log).into_iter().enumerate() {
            add(
                &agent_log,
                Source {
                    label: format!("{short}/SA{}", i + 1),
                    conversation: conv.clone(),
                    subagent: true,
                    subagent_type: kind,
                },
                &mut sources,
            );
        }
    }
    let unknown = sources.len();
    sources.push(Source {
        label: "other".into(),
        conversation: String::new(),
        subagent: false,
        subagent_type: None,
    });
    // Every row id in table order, with its time; then time order (stable).
    // A row's time is that of the first row its id finds (`Capture::timestamp_of`), read
    // in the same scan when the id is stored as text; other ids are looked up.
    let cap = inputs.cap()?;
    let mut rows: Vec<(String, Option<Option<String>>)> = Vec::new();
    let mut first: FxHashMap<String, Option<String>> = FxHashMap::default();
    cap.for_each_timestamp(|id, ts, text_id| {
        let ts = text_id.then(|| {
            first
                .entry(id.to_owned())
                .or_insert_with(|| ts.map(str::to_owned))
                .clone()
        });
        rows.push((id.to_owned(), ts));
    })?;
    let mut keyed: Vec<(i64, String)> = Vec::with_capacity(rows.len());
    let mut skipped = 0;
    for (id, ts) in rows {
        let ts = match ts {
            Some(ts) => Some(ts.unwrap_or_default()),
            None => cap.timestamp_of(&id)?,
        };
        match ts.as_deref().and_then(Stamp::parse) {
            Some(t) => keyed.push((t.micros, id)),
            None => skipped += 1,
        }
    }
    keyed.sort_by_key(|(t, _)| *t);
    let mut sel = Selection {
        name: "combined".into(),
        block_size,
        sources,
        requests: Vec::new(),
        skipped,
        pairs_merged: 0,
        unreadable,
    };
    // Each source is its own stream (tokenizer state, key maker): the sources are loaded
    // in parallel, largest first, each holding its state only while it runs; the requests
    // are then put back in the time order above.
    let mut groups: Vec<(usize, Vec<(usize, String)>)> = Vec::new();
    let mut slot: FxHashMap<usize, usize> = FxHashMap::default();
    for (place, (_, id)) in keyed.into_iter().enumerate() {
        let source = owner.get(&id).copied().unwrap_or(unknown);
        let g = *slot.entry(source).or_insert_with(|| {
            groups.push((source, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push((place, id));
    }
    let mut placed = load_streams(inputs, &groups, block_size, &mut sel.skipped)?;
    placed.sort_by_key(|(place, _)| *place);
    sel.requests = placed.into_iter().map(|(_, r)| r).collect();
    sel.pairs_merged = merge_pairs(&mut sel.requests);
    finish(&mut sel);
    Ok(sel)
}

/// Load streams of rows, each `(source, [(place, request id)])` in its own order with its
/// own tokenizer state, in parallel, largest first; returns the loaded requests with their
/// places, stream by stream in the order given, and adds the rows skipped to `skipped`.
fn load_streams(
    inputs: &Inputs,
    streams: &[(usize, Vec<(usize, String)>)],
    block_size: usize,
    skipped: &mut usize,
) -> Result<Vec<(usize, Request)>, VisualizeError> {
    let estimates: Vec<u64> = streams.iter().map(|(_, rows)| rows.len() as u64).collect();
    let loaded = crate::conversation::ordered::map_largest_first(&estimates, |g| {
        let (source, rows) = &streams[g];
        let (mut stream, mut keys) = (Lineage::default(), KeyMaker::default());
        let mut part = Selection {
            name: String::new(),
            block_size,
            sources: Vec::new(),
            requests: Vec::new(),
            skipped: 0,
            pairs_merged: 0,
            unreadable: Vec::new(),
        };
        let mut places = Vec::with_capacity(rows.len());
        inputs.tokenizers.with(|tk| {
            for (place, id) in rows {
                let before = part.requests.len();
                load(inputs, &mut stream, &mut keys, tk, id, *source, &mut part)?;
                if part.requests.len() > before {
                    places.push(*place);
                }
            }
            Ok::<_, VisualizeError>((places, part))
        })
    });
    let mut placed = Vec::new();
    for r in loaded {
        let (places, part) = r?;
        *skipped += part.skipped;
        placed.extend(places.into_iter().zip(part.requests));
    }
    Ok(placed)
}

/// Old-proxy pairs: drop a streaming request when a non-streaming one with the same
/// token stream follows it within 30 s. Returns how many were dropped.
pub fn merge_pairs(requests: &mut Vec<Request>) -> usize {
    let key = |r: &Request| (r.tokens_in, r.blocks.last().copied());
    let mut open: FxHashMap<(usize, Option<u128>), Vec<usize>> = FxHashMap::default();
    let mut drop = vec![false; requests.len()];
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by_key(|&i| requests[i].ts.micros);
    for i in order {
        let r = &requests[i];
        if r.streaming {
            open.entry(key(r)).or_default().push(i);
            continue;
        }
        let Some(cands) = open.get_mut(&key(r)) else {
            continue;
        };
        // The latest unpaired streaming twin at most 30 s before.
        let found = cands.iter().rposition(|&s| {
            let dt = r.ts.micros - requests[s].ts.micros;
            (0..=30_000_000).contains(&dt)
        });
        if let Some(pos) = found {
            drop[cands.remove(pos)] = true;
        }
    }
    let n = drop.iter().filter(|&&d| d).count();
    let mut i = 0;
    requests.retain(|_| {
        i += 1;
        !drop[i - 1]
    });
    n
}

/// Time order (stable), `t` from the first request, think times per source.
fn finish(sel: &mut Selection) {
    sel.requests.sort_by_key(|r| r.ts.micros);
    let Some(t0) = sel.requests.first().map(|r| r.ts) else {
        return;
    };
    let mut last_done: FxHashMap<usize, Stamp> = FxHashMap::default();
    for r in &mut sel.requests {
        r.t = r.ts.seconds_since(&t0);
        r.think = last_done
            .get(&r.source)
            .map(|d| r.ts.seconds_since(d).max(0.0));
        if let Some(c) = r.completed_at {
            let e = last_done.entry(r.source).or_insert(c);
            if c.micros > e.micros {
                *e = c;
            }
        }
    }
}

/// Fetch, tokenize and describe one row; a bad row is counted, not fatal.
#[allow(clippy::too_many_arguments)]
fn load(
    inputs: &Inputs,
    stream: &mut Lineage,
    keys: &mut KeyMaker,
    tk: &mut Tokenizer,
    id: &str,
    source: usize,
    sel: &mut Selection,
) -> Result<(), VisualizeError> {
    let bs = sel.block_size;
    let got = inputs.cap()?.with_row(id, |row| {
        describe(stream, tk, row, bs, source).map(|mut r| {
            let own = r.usage;
            r.usage = inputs.attempts.usage_for(row, own, Some(r.streaming), keys);
            // `out` stays the matched row's own (the reply the log names).
            r.usage.output = own.output;
            r
        })
    })?;
    match got {
        Some(Some(r)) => sel.requests.push(r),
        _ => sel.skipped += 1,
    }
    Ok(())
}

fn describe(
    lineage: &mut Lineage,
    tk: &mut Tokenizer,
    row: RowRef<'_>,
    block_size: usize,
    source: usize,
) -> Option<Request> {
    let ts = Stamp::parse(row.timestamp)?;
    let before = lineage.stream.messages_calls();
    let (body, t) = lineage.stream.tokenize_shared(tk, row.body?).ok()?;
    let (tool_tokens, system_tokens) = (t.tool_tokens, t.system_tokens);
    // The digests of the full blocks inside the prefix shared with the previous request
    // are its digests; only the blocks after them are hashed.
    let bs = block_size.max(1);
    let keep = (t.shared / bs).min(lineage.prev_blocks.len());
    let mut blocks = lineage.prev_blocks[..keep].to_vec();
    lineage.rest.clear();
    lineage.stream.tokens_from(&t, keep * bs, &mut lineage.rest);
    chain_from(&lineage.rest, bs, &mut blocks);
    lineage.prev_blocks.clone_from(&blocks);
    let message_tokens = t.tokens_in.saturating_sub(tool_tokens + system_tokens);
    let mut parts = vec![(Part::Tools, tool_tokens), (Part::System, system_tokens)];
    // The transcoder's elements when it was over this request's messages (it was not
    // when a key repeats inside them); else the section split afresh.
    let call = lineage.stream.messages_calls();
    let elements = body.messages.and_then(|raw| {
        let seen = (call > before).then(|| lineage.stream.message_elements(raw));
        seen.flatten()
            .or_else(|| pyjson::array_elements(raw).map(|e| (0, e)))
    });
    parts.extend(message_parts(
        &mut lineage.parts,
        call,
        elements,
        message_tokens,
    ));
    parts.retain(|p| p.1 > 0);
    let response = row.response.and_then(Response::parse);
    let (usage, out, stop, api_time, completed_at) = match &response {
        Some(r) => (
            r.usage,
            r.usage.output.unwrap_or(0),
            r.stop(),
            r.response_time_ms.map(|ms| ms / 1000.0),
            r.completed_at,
        ),
        None => (Usage::default(), 0, String::new(), None, None),
    };
    Some(Request {
        request_id: row.id.to_owned(),
        ts,
        t: 0.0,
        streaming: body.stream,
        model: body.model.unwrap_or_else(|| "unknown".to_owned()),
        tokens_in: t.tokens_in,
        tool_tokens,
        system_tokens,
        blocks,
        parts,
        out,
        usage,
        api_time,
        completed_at,
        think: None,
        stop,
        source,
    })
}

/// Chained 128-bit digests of every block, the final partial one included. A block's
/// digest covers the previous digest, its length and its tokens, so equal digests mean
/// equal token prefixes (up to 2⁻¹²⁸ collisions).
pub fn chain(tokens: &[Token], block_size: usize) -> Vec<u128> {
    let mut out = Vec::with_capacity(tokens.len().div_ceil(block_size.max(1)));
    chain_from(tokens, block_size, &mut out);
    out
}

/// [`chain`] continued: `out` holds the digests of the full blocks before `rest`.
pub fn chain_from(rest: &[Token], block_size: usize, out: &mut Vec<u128>) {
    let mut prev: u128 = out.last().copied().unwrap_or(0);
    let mut buf: Vec<u8> = Vec::with_capacity(block_size * 4 + 24);
    for block in rest.chunks(block_size.max(1)) {
        buf.clear();
        buf.extend_from_slice(&prev.to_le_bytes());
        buf.extend_from_slice(&(block.len() as u64).to_le_bytes());
        for t in block {
            buf.extend_from_slice(&t.to_le_bytes());
        }
        prev = xxhash_rust::xxh3::xxh3_128(&buf);
        out.push(prev);
    }
}

/// One stream of requests (a conversation, a sub-agent, a source of `combined`): the
/// tokenizer's state and the last request's block digests.
struct Lineage {
    stream: Stream,
    prev_blocks: Vec<u128>,
    /// Reused buffer for the tokens past the shared blocks.
    rest: Vec<Token>,
    /// The byte runs of the last request's messages.
    parts: PartsMemo,
}

impl Default for Lineage {
    fn default() -> Self {
        Lineage {
            stream: Stream::new(false, crate::pyjson::Form::Canonical),
            prev_blocks: Vec::new(),
            rest: Vec::new(),
            parts: PartsMemo::default(),
        }
    }
}

/// The byte runs of a stream's messages, remembered from one request to the next: each
/// request repeats the messages of the one before, so the leading elements the stream's
/// transcoder kept keep their runs, and any other message's runs are looked up by the
/// hash of its raw text (they are a pure function of it).
#[derive(Default)]
struct PartsMemo {
    /// The transcoder call (`Stream::messages_calls`) whose elements `last` describes.
    call: u64,
    /// Runs of each element of that call's messages.
    last: Vec<Vec<(Part, usize)>>,
    by_hash: FxHashMap<u128, Vec<(Part, usize)>>,
}

impl PartsMemo {
    /// The runs of every element, in order: `kept` leading elements taken from the call
    /// before (when that is the call `last` describes), the others from the hash memo or
    /// made; `None` when an element is not JSON.
    fn runs(&mut self, call: u64, kept: usize, elements: &[&str]) -> Option<Vec<(Part, usize)>> {
        let kept = if self.call + 1 == call { kept } else { 0 };
        self.call = call;
        self.last.truncate(kept);
        if self.by_hash.len() > 1 << 14 {
            self.by_hash.clear();
        }
        for e in elements.get(self.last.len()..).unwrap_or_default() {
            let key = xxhash_rust::xxh3::xxh3_128(e.as_bytes());
            let r = match self.by_hash.get(&key) {
                Some(r) => r.clone(),
                None => {
                    let Some(r) = message_runs(e) else {
                        // Not JSON: nothing of this call is kept for the next.
                        self.last.clear();
                        return None;
                    };
                    self.by_hash.insert(key, r.clone());
                    r
                }
            };
            self.last.push(r);
        }
        Some(self.last.concat())
    }
}

/// The messages section as (part, tokens) runs: each content block's share of
/// `total` tokens is its share of the serialized bytes (the message envelope goes
/// with its first block). Adjacent runs of one part are merged. `elements`: the
/// section's raw elements and how many the stream's transcoder kept (`None` when it is
/// missing or not an array); `call`: that transcoder call.
fn message_parts(
    memo: &mut PartsMemo,
    call: u64,
    elements: Option<(usize, Vec<&str>)>,
    total: usize,
) -> Vec<(Part, usize)> {
    let runs = match elements {
        Some((kept, elements)) => memo.runs(call, kept, &elements),
        None => {
            memo.last.clear();
            None
        }
    };
    match runs {
        Some(bytes) => share_out(&bytes, total),
        None => vec![(Part::UserText, total)],
    }
}

/// `total` tokens shared out over byte runs in proportion to their bytes (all to user
/// text when the runs have no bytes), adjacent runs of one part merged.
fn share_out(bytes: &[(Part, usize)], total: usize) -> Vec<(Part, usize)> {
    let sum: usize = bytes.iter().map(|b| b.1).sum();
    if sum == 0 {
        return if total > 0 {
            vec![(Part::UserText, total)]
        } else {
            Vec::new()
        };
    }
    let mut out: Vec<(Part, usize)> = Vec::new();
    let (mut cum_bytes, mut given) = (0usize, 0usize);
    for &(part, b) in bytes {
        cum_bytes += b;
        let upto = (cum_bytes as u128 * total as u128 / sum as u128) as usize;
        let n = upto - given;
        given = upto;
        match out.last_mut() {
            Some(last) if last.0 == part => last.1 += n,
            _ => out.push((part, n)),
        }
    }
    out
}

/// One message's byte runs: each content block's serialized size (after normalizing)
/// with its part, the message envelope added to the first (`None`: not JSON).
fn message_runs(raw: &str) -> Option<Vec<(Part, usize)>> {
    let mut m = pyjson::parse(raw).ok()?;
    m.normalize();
    let mut scratch = String::new();
    let mut size = |v: &Value| {
        scratch.clear();
        v.write_to(&mut scratch);
        scratch.len()
    };
    let assistant = matches!(m.get("role"), Some(Value::Str(s)) if &**s == "assistant");
    let text_part = if assistant {
        Part::AssistantText
    } else {
        Part::UserText
    };
    let whole = size(&m);
    let mut runs = Vec::new();
    match m.get("content") {
        Some(Value::Array(blocks)) if !blocks.is_empty() => {
            let mut inner = 0;
            for b in blocks {
                let n = size(b);
                inner += n;
                let part = match b.get("type") {
                    Some(Value::Str(t)) => match &**t {
                        "tool_use" | "server_tool_use" => Part::ToolUse,
                        "tool_result" => Part::ToolResult,
                        _ => text_part,
                    },
                    _ => text_part,
                };
                runs.push((part, n));
            }
            // The message envelope (role, brackets) goes with its first block.
            runs[0].1 += whole.saturating_sub(inner);
        }
        _ => runs.push((text_part, whole)),
    }
    Some(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_blocks_equal_blocks_hashed_from_scratch() {
        let msg = |i: usize| {
            format!(
                r#"{{"role":"user","content":"step {i}: read   the file number {}"}}"#,
                i * 13
            )
        };
        let body = |tools: &str, n: usize, from: usize| {
            let m: Vec<String> = (from..n).map(msg).collect();
            format!(
                r#"{{"model":"m","stream":true,"tools":{tools},"system":"sys prompt","messages":[{}]}}"#,
                m.join(",")
            )
        };
        let t1 = r#"[{"name":"Read","description":"Reads a file"}]"#;
        let t2 = r#"[{"name":"Edit","description":"Reads a file"}]"#;
        let bodies = [
            body(t1, 1, 0),
            body(t1, 4, 0),
            body(t1, 4, 0),
            body(t1, 9, 0),
            body(t2, 10, 0),
            "{bad".to_owned(),
            body(t2, 12, 0),
            body(t2, 12, 5),
            body(t1, 3, 0),
            r#"{"model":"m","messages":[]}"#.to_owned(),
            body(t1, 14, 0),
        ];
        for bs in [1, 3, 64] {
            let mut lineage = Lineage::default();
            let mut tk = Tokenizer::default();
            let mut full = Stream::new(true, crate::pyjson::Form::Canonical);
            let mut full_tk = Tokenizer::default();
            for (i, b) in bodies.iter().enumerate() {
                let row = RowRef {
                    id: "r",
                    timestamp: "2025-01-01T00:00:00Z",
                    body: Some(b),
                    response: None,
                };
                let got = describe(&mut lineage, &mut tk, row, bs, 0);
                let want = full.tokenize_text(&mut full_tk, b).ok();
                match (got, want) {
                    (Some(r), Some((_, (tokens, _, _)))) => {
                        assert_eq!(r.tokens_in, tokens.len(), "request {i}, blocks of {bs}");
                        assert_eq!(r.blocks, chain(&tokens, bs), "request {i}, blocks of {bs}");
                    }
                    (None, None) => {}
                    (g, w) => panic!("request {i}: {:?} vs {:?}", g.is_some(), w.is_some()),
                }
            }
        }
    }

    #[test]
    fn message_parts_reused_along_a_stream_equal_parts_made_afresh() {
        // Messages of every kind of part; the stream grows, repeats, meets a message with a
        // repeated key (the transcoder steps over it), a compaction (its first messages
        // change), messages that are not an array, and a body without messages.
        let kinds = [
            r#"{"role":"user","content":"hello there, read the file"}"#,
            r#"{"role":"assistant","content":[{"type":"text","text":"ok, reading"},{"type":"tool_use","id":"t1","name":"Read","input":{"path":"a.rs"}}]}"#,
            r#"{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"fn main() {}\nfn other() {}"}]}"#,
            r#"{"role":"assistant","content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"done"}]}"#,
        ];
        let msgs = |from: usize, n: usize| -> String {
            let m: Vec<&str> = (from..n).map(|i| kinds[i % kinds.len()]).collect();
            m.join(",")
        };
        let body =
            |messages: &str| format!(r#"{{"model":"m","system":"s","messages":{messages}}}"#);
        let dup = r#"{"role":"user","role":"assistant","content":"twice"}"#;
        let bodies = [
            body(&format!("[{}]", msgs(0, 1))),
            body(&format!("[{}]", msgs(0, 3))),
            body(&format!("[{}]", msgs(0, 3))),
            body(&format!("[{}]", msgs(0, 6))),
            body(&format!("[{},{dup}]", msgs(0, 6))),
            body(&format!("[{},{dup},{}]", msgs(0, 6), msgs(6, 8))),
            body(&format!("[{}]", msgs(0, 9))),
            // Skipped after its messages were transcoded (the body breaks after them):
            // the next request's kept elements are this one's, not the last described.
            format!(r#"{{"messages":[{}],"system":}}"#, msgs(1, 10)),
            body(&format!("[{}]", msgs(1, 11))),
            body(&format!("[{}]", msgs(2, 9))),
            body(&format!("[{}]", msgs(2, 11))),
            body(r#""not an array""#),
            body(&format!("[{}]", msgs(2, 12))),
            r#"{"model":"m"}"#.to_owned(),
            body(&format!("[{}]", msgs(2, 13))),
        ];
        let mut lineage = Lineage::default();
        let mut tk = Tokenizer::default();
        let mut described = 0;
        for (i, b) in bodies.iter().enumerate() {
            let row = RowRef {
                id: "r",
                timestamp: "2025-01-01T00:00:00Z",
                body: Some(b),
                response: None,
            };
            let got = describe(&mut lineage, &mut tk, row, 64, 0).map(|r| r.parts);
            let want = describe(&mut Lineage::default(), &mut tk, row, 64, 0).map(|r| r.parts);
            assert_eq!(got, want, "request {i}");
            described += usize::from(got.is_some_and(|p| p.len() > 3));
        }
        // Most requests have message parts of several kinds (the test is not vacuous).
        assert!(described >= 9, "{described}");
    }

    #[test]
    fn chain_includes_partial_block_and_is_prefix_stable() {
        let a = chain(&[1, 2, 3, 4, 5], 2);
        let b = chain(&[1, 2, 3, 4, 5, 6], 2);
        assert_eq!(a.len(), 3);
        assert_eq!(b.len(), 3);
        assert_eq!(a[..2], b[..2]);
        assert_ne!(a[2], b[2]);
        assert_ne!(chain(&[9, 2], 2)[0], chain(&[1, 2], 2)[0]);
    }

    #[test]
    fn parts_follow_bytes_and_sum_to_total() {
        let raw = r#"[{"role":"user","content":"hello there"},{"role":"assistant","content":[{"type":"text","text":"ok"},{"type":"tool_use","id":"t","name":"Read","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"xxxxxxxxxxxxxxxxxxxxxxxx"}]}]"#;
        let elements = pyjson::array_elements(raw).map(|e| (0, e));
        let p = message_parts(&mut PartsMemo::default(), 1, elements, 100);
        assert_eq!(p.iter().map(|x| x.1).sum::<usize>(), 100);
        let kinds: Vec<Part> = p.iter().map(|x| x.0).collect();
        assert_eq!(
            kinds,
            [
                Part::UserText,
                Part::AssistantText,
                Part::ToolUse,
                Part::ToolResult
            ]
        );
    }
}
