//! recover-conversations: rebuild conversations from a capture alone, when the session
//! logs are lost (algorithm and limits in docs/recovery.md).
//!
//! The run, in order:
//! 1. **Scan** ([`scan`]): one pass over the rows (rowid ranges in parallel) builds the
//!    message-id map and describes each row whose response did not fail (time, stream
//!    flag, normalized-content key, lineage key, one message or more); the candidates are
//!    those the map resolves to. (A table without rowids: its responses first, then the
//!    candidates' rows by id.)
//! 2. **Fold old-proxy pairs** ([`scan::fold_pairs`]) into turns; drop turns that a
//!    session log under `--exclude-indexed` already names (either row of a pair).
//! 3. **Digest and chain**, in time-ordered windows: the window's turns are tokenized in
//!    parallel, one incremental tokenizer per lineage (so a conversation's growing context
//!    is tokenized once), turns whose tools+system hold fewer than `--min-prefix-tokens`
//!    are skipped, and the rest are chained sequentially ([`chain::Chainer`]).
//! 4. **Write** one Claude Code session file per conversation ([`output`]).
//! 5. With `--validate-against`, **score** against the real logs ([`truth`], [`score`]).

pub mod chain;
pub mod link;
pub mod output;
pub mod scan;
pub mod score;
pub mod truth;

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use thiserror::Error;

use crate::capture::{session_of_headers, Capture, CaptureError, MessageIndex, Response};
use crate::encode::blocks::{chain_digests_from, Digest64, Salt, SaltError};
use crate::encode::{Stream, Tokenizer};
use crate::session::SessionDirError;
use crate::tokens::Token;

use chain::Chainer;
use scan::{RowInfo, RowSkip};
use score::Score;

/// Tokens per block of the chaining digests (the traces' default).
pub const BLOCK_SIZE: usize = 64;

/// A lineage's tokenizer state is dropped after this long without a turn (only a cache:
/// a later turn is tokenized from scratch, to the same tokens).
const LINEAGE_IDLE_MICROS: i64 = 3600 * 1_000_000;

/// Turns tokenized and chained per window (bounds memory to one window of digests plus
/// the open conversations).
const WINDOW: usize = 256;

/// Why a recovery cannot run.
#[derive(Debug, Error)]
pub enum RecoverError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    SessionDir(#[from] SessionDirError),
    #[error(transparent)]
    Salt(#[from] SaltError),
    #[error("cannot create the output directory {path}: {source}")]
    OutputDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start {0} worker threads")]
    Threads(usize),
}

/// What to recover and how.
#[derive(Debug, Clone)]
pub struct RecoverOptions {
    pub db: PathBuf,
    pub output_dir: PathBuf,
    /// Session logs whose requests must not be recovered again.
    pub exclude_indexed: Option<PathBuf>,
    /// Turns whose tools+system sections hold fewer tokens are skipped.
    pub min_prefix_tokens: usize,
    /// A turn continues a conversation only if its latest turn is at most this old.
    pub max_gap_seconds: f64,
    /// Worker threads (0: all cores).
    pub threads: usize,
    /// Real session logs of the same capture to score against.
    pub validate_against: Option<PathBuf>,
    /// Salt of the chaining digests (`None`: random; the digests never leave the run).
    pub salt: Option<Salt>,
}

impl Default for RecoverOptions {
    fn default() -> Self {
        RecoverOptions {
            db: PathBuf::new(),
            output_dir: PathBuf::from("recovered"),
            exclude_indexed: None,
            min_prefix_tokens: 0,
            max_gap_seconds: f64::INFINITY,
            threads: 0,
            validate_against: None,
            salt: None,
        }
    }
}

/// Scores against the logs as they are, and cut at compactions.
#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    /// Requests the real logs name.
    pub real_requests: usize,
    pub as_logged: Score,
    pub cut_at_compactions: Score,
    /// Sub-agents linked to the parent turn that spawned them.
    pub subagents: score::LinkScore,
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecoverSummary {
    /// Rows in the capture.
    pub rows: u64,
    /// Rows without a usable response (none, unparseable, an HTTP error, no msg_ id).
    pub unusable_responses: u64,
    /// Rows whose message id a later row also carries (the later row is used).
    pub superseded: u64,
    pub bad_bodies: u64,
    pub bad_timestamps: u64,
    /// Rows deleted while the run read the capture.
    pub missing_rows: u64,
    /// Described candidate rows.
    pub candidates: u64,
    /// Old-proxy (streaming, replay) pairs folded into one turn.
    pub old_proxy_pairs: u64,
    /// Turns after folding pairs.
    pub turns: u64,
    /// Turns already named by a session log under --exclude-indexed.
    pub excluded_indexed: u64,
    /// Rows with no usable id (NULL, REAL, a non-UTF-8 BLOB): counted, not read.
    pub rows_without_id: u64,
    /// Session logs of `--exclude-indexed` that could not be read (skipped; their rows
    /// may be recovered again).
    pub unreadable_files: Vec<crate::session::Unreadable>,
    /// Turns whose tools+system are under --min-prefix-tokens (titles, quota checks).
    pub small_prefix: u64,
    /// Cache warm-up turns of Claude Code 2.0.x (one message: `Warmup`), skipped.
    pub warmups: u64,
    /// Turns placed in a conversation.
    pub recovered_turns: u64,
    /// Turns that continued a conversation / had several candidates.
    pub continued: u64,
    pub ambiguous: u64,
    pub conversations: u64,
    /// Conversations of a single turn.
    pub single_turn_conversations: u64,
    /// Conversations linked as sub-agents to the parent turn that spawned them (written
    /// under the parent's `subagents/`), and how many of them the tool result named.
    pub subagents_linked: u64,
    pub agent_ids_from_results: u64,
    pub files: u64,
    pub output_dir: String,
    /// The session files written.
    #[serde(skip)]
    pub written: Vec<PathBuf>,
    pub validation: Option<Validation>,
}

/// Per-lineage tokenization state, reused across windows.
#[derive(Default)]
struct Lineage {
    stream: Stream,
    prev_digests: Vec<Digest64>,
    /// Reused buffer for the tokens past the blocks shared with the previous turn.
    rest: Vec<Token>,
    last_micros: i64,
}

/// What digesting one turn gave.
enum Outcome {
    /// The turn's block digests and how many of its blocks hold tools and system only.
    Digests(Vec<Digest64>, usize),
    Small,
    BadBody,
    Missing,
}

/// Tokenize and digest one turn's row with its lineage's state. The digests of the full
/// blocks inside the token prefix the turn shares with the lineage's previous turn are
/// that turn's; only later blocks are hashed, and the turn's tokens are never put
/// together whole.
fn digest_turn(
    cap: &Capture,
    tk: &mut Tokenizer,
    st: &mut Lineage,
    salt: &Salt,
    id: &str,
    min_prefix: usize,
) -> Result<Outcome, CaptureError> {
    let outcome = cap.with_row(id, |row| match row.body {
        Some(text) => digest_body(tk, st, salt, text, min_prefix),
        None => Outcome::BadBody,
    })?;
    Ok(outcome.unwrap_or(Outcome::Missing))
}

/// [`digest_turn`] given the row's stored body.
fn digest_body(
    tk: &mut Tokenizer,
    st: &mut Lineage,
    salt: &Salt,
    text: &str,
    min_prefix: usize,
) -> Outcome {
    let Ok((_, t)) = st.stream.tokenize_shared(tk, text) else {
        return Outcome::BadBody;
    };
    let (tools, system) = (t.tool_tokens, t.system_tokens);
    // Utility requests (titles, topics, quota checks, summaries of command output) carry
    // no tools; every turn of a conversation or sub-agent does. The shared count is
    // against the last request tokenized, small or not, and the digests kept are the last
    // digested turn's: they are dropped when a small request comes between.
    if tools == 0 || tools + system < min_prefix {
        st.prev_digests.clear();
        return Outcome::Small;
    }
    let keep = (t.shared / BLOCK_SIZE).min(st.prev_digests.len());
    let mut digests = st.prev_digests[..keep].to_vec();
    st.rest.clear();
    st.stream.tokens_from(&t, keep * BLOCK_SIZE, &mut st.rest);
    chain_digests_from(salt, &st.rest, BLOCK_SIZE, &mut digests);
    st.prev_digests.clone_from(&digests);
    Outcome::Digests(digests, (tools + system) / BLOCK_SIZE)
}

/// Recover the conversations of a capture and write them.
/// `progress(done, total)` is called as the candidate rows are read and tokenized (the
/// long part), from any thread.
pub fn run(
    opts: &RecoverOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<RecoverSummary, RecoverError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .map_err(|_| RecoverError::Threads(opts.threads))?;
    pool.install(|| run_in_pool(opts, progress))
}

/// The candidates' rows fetched by id and described in parallel (a table without rowids);
/// results in the candidates' order.
fn describe_by_id(
    db: &Path,
    usable: &[(String, String, ())],
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<Result<Option<Result<RowInfo, RowSkip>>, CaptureError>> {
    let total = usable.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    progress(0, total);
    usable
        .par_iter()
        .enumerate()
        .map_init(
            || (None::<Capture>, String::new(), scan::SectionMemo::default()),
            |(cap, scratch, memo), (order, (id, mid, ()))| {
                if cap.is_none() {
                    *cap = Some(Capture::open(db)?);
                }
                let out = match cap.as_ref() {
                    // The session header comes with the row (one query).
                    Some(c) => c.with_row_headers(id, |row, headers| {
                        scan::describe(row, order, mid, scratch, memo).map(|mut info| {
                            info.session = headers.and_then(session_of_headers);
                            info
                        })
                    }),
                    None => Ok(None),
                };
                progress(
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
                    total,
                );
                out
            },
        )
        .collect()
}

/// The candidates among classified rows (`None`: a response without a usable message
/// id), in table order: each row's message id goes into `index`; rows whose response
/// failed, or whose message id a later row took over, are counted in `s` and left out.
fn candidates<X>(
    items: Vec<Option<(String, String, bool, X)>>,
    index: &mut MessageIndex,
    s: &mut RecoverSummary,
) -> Vec<(String, String, X)> {
    let mut usable = Vec::new();
    for row in items {
        let Some((id, mid, failed, x)) = row else {
            s.unusable_responses += 1;
            continue;
        };
        index.insert(mid.clone(), id.clone());
        if failed {
            s.unusable_responses += 1;
            continue;
        }
        usable.push((id, mid, x));
    }
    let before = usable.len();
    usable.retain(|(id, mid, _)| index.get(mid) == Some(id.as_str()));
    s.superseded = (before - usable.len()) as u64;
    usable
}

fn run_in_pool(
    opts: &RecoverOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<RecoverSummary, RecoverError> {
    let mut s = RecoverSummary {
        output_dir: opts.output_dir.display().to_string(),
        ..RecoverSummary::default()
    };
    let salt = match &opts.salt {
        Some(salt) => salt.clone(),
        None => Salt::random()?,
    };
    let db = opts.db.as_path();

    // 1. The message-id map (as build-minimal-traces builds it) and the candidates.
    // Read as rowid ranges in parallel (a table without rowids: one scan in order).
    let mut index = MessageIndex::default();
    let classify = |id: &str, response: Option<&str>| {
        // The message id (`msg_…`) and the status alone, without the whole response parsed.
        let (mid, status) = response.and_then(Response::message_id_and_status_of)?;
        Some((id.to_owned(), mid, status.is_some_and(|c| c >= 400)))
    };
    type Described = Result<Option<Result<RowInfo, RowSkip>>, CaptureError>;
    // One pass over the table (rowid ranges in parallel): each row's response classified
    // and, unless it failed, its body described on the way, so every row is read once.
    // Rows a later row supersedes are described for nothing (few).
    let threads = rayon::current_num_threads();
    // The tokenizer's rank table is built by a worker of the pass (digesting needs it),
    // not later by the first turn digested while the other tasks wait.
    rayon::spawn(crate::tokens::warm);
    let merged = Capture::rows_parallel(
        db,
        threads,
        |(scratch, memo): &mut (String, scan::SectionMemo), row, headers| {
            let (id, mid, failed) = classify(row.id, row.response)?;
            let info = (!failed).then(|| {
                scan::describe(row, 0, &mid, scratch, memo).map(|mut info| {
                    info.session = headers.and_then(session_of_headers);
                    info
                })
            });
            Some((id, mid, failed, info))
        },
    )?;
    let described: Vec<Described> = match merged {
        Some((items, rows, without_id)) => {
            s.rows = rows;
            s.rows_without_id = without_id;
            let usable = candidates(items, &mut index, &mut s);
            progress(usable.len(), usable.len());
            // `order`: the place among the candidates, in table order.
            usable
                .into_iter()
                .enumerate()
                .map(|(order, (_, _, info))| {
                    Ok(info.map(|info| {
                        info.map(|mut info| {
                            info.order = order;
                            info
                        })
                    }))
                })
                .collect()
        }
        // A table without rowids: one scan of the responses in order, then the
        // candidates' rows fetched by id.
        None => {
            let mut scan = crate::capture::ResponseScan::default();
            scan.without_id = Capture::open(db)?.for_each_response(|id, r| {
                scan.rows += 1;
                scan.items
                    .push(classify(id, r).map(|(id, mid, failed)| (id, mid, failed, ())));
            })?;
            s.rows = scan.rows;
            s.rows_without_id = scan.without_id;
            let usable = candidates(scan.items, &mut index, &mut s);
            describe_by_id(db, &usable, progress)
        }
    };
    let mut rows: Vec<RowInfo> = Vec::with_capacity(described.len());
    for d in described {
        match d? {
            Some(Ok(info)) => rows.push(info),
            Some(Err(RowSkip::BadBody)) => s.bad_bodies += 1,
            Some(Err(RowSkip::BadTimestamp)) => s.bad_timestamps += 1,
            None => s.missing_rows += 1,
        }
    }
    s.candidates = rows.len() as u64;
    rows.sort_by_key(|r| (r.ts.micros, r.order));

    // 2. Turns, minus those the real logs already hold.
    let mut turns = scan::fold_pairs(&rows);
    for t in &turns {
        if let Some(p) = t.partner {
            rows[t.rep].started = rows[p].ts;
        }
    }
    s.old_proxy_pairs = turns.iter().filter(|t| t.partner.is_some()).count() as u64;
    s.turns = turns.len() as u64;
    if let Some(dir) = &opts.exclude_indexed {
        let (indexed, unreadable) = truth::indexed_rows(dir, &index)?;
        // An unreadable log cannot say which rows it holds: they may be recovered again.
        s.unreadable_files = unreadable;
        turns.retain(|t| {
            let named = indexed.contains(&rows[t.rep].id)
                || t.partner.is_some_and(|p| indexed.contains(&rows[p].id));
            !named
        });
        s.excluded_indexed = s.turns - turns.len() as u64;
    }

    // Claude Code 2.0.x's cache warm-ups: no conversation (their logs are agent files no
    // call links, never traced).
    let before = turns.len();
    turns.retain(|t| !rows[t.rep].warmup);
    s.warmups = (before - turns.len()) as u64;

    // 3. Digest and chain, window by window.
    // No gap by default: with a long shared prefix as evidence, time is no reason to split.
    let max_gap_micros = if opts.max_gap_seconds.is_finite() {
        (opts.max_gap_seconds.max(0.0) * 1e6) as i64
    } else {
        i64::MAX
    };
    let mut chainer = Chainer::new(max_gap_micros);
    let mut sessions: FxHashMap<String, u32> = FxHashMap::default();
    let mut chained_rows: Vec<usize> = Vec::new();
    let mut lineages: FxHashMap<u64, Lineage> = FxHashMap::default();
    // One connection and one tokenizer (its caches) per running task, lent and returned.
    let caps = crate::capture::Pool::new(Capture::open(db)?);
    let tokenizers = crate::conversation::ordered::Lender::<Tokenizer>::default();
    for window in turns.chunks(WINDOW) {
        let mut groups: Vec<(u64, Vec<usize>)> = Vec::new();
        let mut slot: FxHashMap<u64, usize> = FxHashMap::default();
        for (pos, t) in window.iter().enumerate() {
            let key = rows[t.rep].lineage;
            let g = *slot.entry(key).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(pos);
        }
        // Lineages with the most turns first: a window ends with its longest lineage (its
        // turns are digested in order on one thread), so that one must not start last.
        let estimates: Vec<u64> = groups.iter().map(|(_, m)| m.len() as u64).collect();
        /// A lineage and the places of its turns in the window, taken by the task.
        type Work = std::sync::Mutex<Option<(u64, Lineage, Vec<usize>)>>;
        let work: Vec<Work> = groups
            .into_iter()
            .map(|(key, members)| {
                let st = lineages.remove(&key).unwrap_or_default();
                std::sync::Mutex::new(Some((key, st, members)))
            })
            .collect();
        /// A lineage after its group of turns was processed, with each turn's outcome.
        type Done = (u64, Lineage, Vec<(usize, Outcome)>);
        let done: Vec<Result<Option<Done>, CaptureError>> =
            crate::conversation::ordered::map_largest_first(&estimates, |g| {
                let Some((key, mut st, members)) = work[g].lock().ok().and_then(|mut w| w.take())
                else {
                    return Ok(None);
                };
                let cap = caps.get()?;
                let mut out = Vec::with_capacity(members.len());
                // The lineage's turns in this window are read in one snapshot.
                tokenizers.with(|tk| {
                    cap.in_snapshot(|| {
                        for pos in members {
                            let row = &rows[window[pos].rep];
                            let min = opts.min_prefix_tokens;
                            let o = digest_turn(&cap, tk, &mut st, &salt, &row.id, min)?;
                            st.last_micros = row.ts.micros;
                            out.push((pos, o));
                        }
                        Ok(())
                    })
                })?;
                Ok(Some((key, st, out)))
            });
        let mut outcomes: Vec<Option<Outcome>> = (0..window.len()).map(|_| None).collect();
        for d in done {
            let Some((key, st, out)) = d? else { continue };
            lineages.insert(key, st);
            for (pos, o) in out {
                outcomes[pos] = Some(o);
            }
        }
        for (t, o) in window.iter().zip(outcomes) {
            let row = &rows[t.rep];
            match o {
                Some(Outcome::Digests(d, prefix_blocks)) => {
                    let next = sessions.len() as u32;
                    let session = row
                        .session
                        .as_ref()
                        .map(|s| *sessions.entry(s.clone()).or_insert(next));
                    let evidence = chain::Evidence {
                        can_continue: row.can_continue,
                        after_compaction: row.after_compaction,
                        session,
                        lineage: row.lineage,
                        writes_summary: row.writes_summary,
                        opens_with_summary: row.opens_with_summary,
                        prefix_blocks,
                    };
                    chainer.add(row.ts.micros, d, evidence, &row.history);
                    chained_rows.push(t.rep);
                }
                Some(Outcome::Small) => s.small_prefix += 1,
                Some(Outcome::BadBody) => s.bad_bodies += 1,
                Some(Outcome::Missing) | None => s.missing_rows += 1,
            }
        }
        // Forget tokenizer state of lineages idle for longer than a gap.
        if let Some(last) = window.last() {
            let now = rows[last.rep].ts.micros;
            lineages.retain(|_, st| now - st.last_micros <= LINEAGE_IDLE_MICROS);
        }
    }
    drop(lineages);
    s.recovered_turns = chained_rows.len() as u64;
    s.continued = chainer.continued as u64;
    s.ambiguous = chainer.ambiguous as u64;
    let conversations: Vec<Vec<usize>> = chainer
        .into_conversations()
        .into_iter()
        .map(|c| c.into_iter().map(|k| chained_rows[k]).collect())
        .collect();
    s.conversations = conversations.len() as u64;
    s.single_turn_conversations = conversations.iter().filter(|c| c.len() == 1).count() as u64;

    // 4. Write.
    std::fs::create_dir_all(&opts.output_dir).map_err(|source| RecoverError::OutputDir {
        path: opts.output_dir.clone(),
        source,
    })?;
    let links = link::link(&Capture::open(db)?, &rows, &conversations)?;
    s.subagents_linked = links.len() as u64;
    s.agent_ids_from_results = links
        .iter()
        .filter(|l| l.result.as_ref().and_then(|r| r.agent_id.as_ref()) == Some(&l.agent_id))
        .count() as u64;
    let (stems, written) = write_sessions(&opts.output_dir, &rows, &conversations, &links)?;
    s.files = written.len() as u64;
    s.written = written;

    // 5. Score.
    if let Some(dir) = &opts.validate_against {
        let real = truth::load(db, dir, &index)?;
        let recovered_links: Vec<(String, String)> = links
            .iter()
            .map(|l| {
                let child = &rows[conversations[l.child][0]].id;
                let parent = &rows[conversations[l.parent][l.turn]].id;
                (child.clone(), parent.clone())
            })
            .collect();
        let mut recovered: FxHashMap<String, u32> = FxHashMap::default();
        for (c, members) in conversations.iter().enumerate() {
            for &r in members {
                recovered.insert(rows[r].id.clone(), c as u32);
            }
        }
        s.validation = Some(Validation {
            real_requests: real.whole.len(),
            as_logged: score::score(&real.whole, &real.whole_names, &recovered, &stems),
            cut_at_compactions: score::score(&real.pieces, &real.piece_names, &recovered, &stems),
            subagents: score::score_links(&real.links, &recovered_links),
        });
    }
    Ok(s)
}

/// Write one session file per parent conversation and one agent file per linked
/// sub-agent (`<stem>/subagents/agent-<id>.jsonl`, the layout of current Claude Code);
/// returns every conversation's name in conversation order (a sub-agent's is
/// `<parent stem>/agent-<id>`) and the paths written.
fn write_sessions<'l>(
    dir: &Path,
    rows: &[RowInfo],
    conversations: &[Vec<usize>],
    links: &'l [link::Link],
) -> Result<(Vec<String>, Vec<PathBuf>), RecoverError> {
    let mut used: FxHashSet<String> = FxHashSet::default();
    let mut stems = vec![String::new(); conversations.len()];
    let mut written = Vec::new();
    let mut link_of_child: FxHashMap<usize, &link::Link> = FxHashMap::default();
    let mut links_of_parent: FxHashMap<usize, Vec<&link::Link>> = FxHashMap::default();
    for l in links {
        link_of_child.insert(l.child, l);
        links_of_parent.entry(l.parent).or_default().push(l);
    }
    let facts = |r: usize| output::EntryFacts {
        message_id: &rows[r].message_id,
        model: rows[r].model.as_deref().unwrap_or("unknown"),
        ts: rows[r].ts,
    };
    // The files are laid out here, in order, and written together at the end.
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let mut write = |path: PathBuf, text: String| -> PathBuf {
        files.push((path.clone(), text));
        path
    };
    for (c, members) in conversations.iter().enumerate() {
        let Some(&first) = members.first() else {
            continue;
        };
        if link_of_child.contains_key(&c) {
            continue;
        }
        let mut attempt = 0;
        let stem = loop {
            let stem = output::stem_for(&rows[first].id, attempt);
            if used.insert(stem.clone()) {
                break stem;
            }
            attempt += 1;
        };
        let mine = links_of_parent.remove(&c).unwrap_or_default();
        let mut w = output::SessionWriter::new(&stem, None);
        let entry = |l: &'l link::Link| -> (Option<usize>, output::LinkEntry<'l>) {
            let child = &conversations[l.child];
            let result = l.result.as_ref();
            // Without a result in the capture: when the sub-agent's last request was made.
            let ts = match result {
                Some(f) => rows[members[f.turn]].ts,
                None => rows[child[child.len() - 1]].ts,
            };
            (
                result.map(|f| f.turn),
                output::LinkEntry {
                    tool_use_id: &l.call.tool_use_id,
                    agent_id: &l.agent_id,
                    status: result.map_or("unknown", |f| f.status),
                    total_duration_ms: result.and_then(|f| f.duration_ms),
                    total_tokens: result.and_then(|f| f.total_tokens),
                    total_tool_use_count: result.and_then(|f| f.tool_uses),
                    ts,
                },
            )
        };
        let entries: Vec<(Option<usize>, output::LinkEntry<'_>)> =
            mine.iter().map(|l| entry(l)).collect();
        for (k, &r) in members.iter().enumerate() {
            for (_, e) in entries.iter().filter(|(at, _)| *at == Some(k)) {
                w.link(e);
            }
            let calls: Vec<&link::SpawnCall> = mine
                .iter()
                .filter(|l| l.turn == k)
                .map(|l| &l.call)
                .collect();
            w.assistant(&facts(r), &calls);
        }
        for (_, e) in entries.iter().filter(|(at, _)| at.is_none()) {
            w.link(e);
        }
        written.push(write(dir.join(format!("{stem}.jsonl")), w.finish()));
        for l in &mine {
            let child = &conversations[l.child];
            let mut a = output::SessionWriter::new(&stem, Some(&l.agent_id));
            a.prompt(&l.call.prompt, rows[child[0]].started);
            for &r in child {
                a.assistant(&facts(r), &[]);
            }
            let path = dir
                .join(&stem)
                .join("subagents")
                .join(format!("agent-{}.jsonl", l.agent_id));
            written.push(write(path, a.finish()));
            stems[l.child] = format!("{stem}/agent-{}", l.agent_id);
        }
        stems[c] = stem;
    }
    crate::trace::write_files_atomic(&files).map_err(|(path, source)| {
        // A folder that could not be made is named as such.
        if written.contains(&path) {
            RecoverError::Write { path, source }
        } else {
            RecoverError::OutputDir { path, source }
        }
    })?;
    Ok((stems, written))
}

impl RecoverSummary {
    /// The human summary, with the validation scores when there are some.
    pub fn text(&self) -> String {
        let s = self;
        let mut t = format!(
        "{} conversations ({} of one turn) from {} turns written to {} ({} files)\n\
         {} sub-agents linked to the parent turn that spawned them ({} agent ids named by the tool results)\n\
         rows {}, candidates {}, old-proxy pairs {}, turns {}, already indexed {}, small prefix {}, warm-ups {}\n\
         skipped: {} unusable responses, {} superseded, {} bad bodies, {} bad timestamps, {} missing rows",
        s.conversations,
        s.single_turn_conversations,
        s.recovered_turns,
        s.output_dir,
        s.files,
        s.subagents_linked,
        s.agent_ids_from_results,
        s.rows,
        s.candidates,
        s.old_proxy_pairs,
        s.turns,
        s.excluded_indexed,
        s.small_prefix,
        s.warmups,
        s.unusable_responses,
        s.superseded,
        s.bad_bodies,
        s.bad_timestamps,
        s.missing_rows,
    );
        if let Some(v) = &s.validation {
            t.push_str(&v.text());
        }
        t
    }
}

impl Validation {
    /// The scores as text lines.
    pub fn text(&self) -> String {
        let v = self;
        let mut t = format!(
            "\nvalidation ({} requests in the real logs):",
            v.real_requests
        );
        for (label, sc) in [
            ("as logged", &v.as_logged),
            ("cut at compactions", &v.cut_at_compactions),
        ] {
            t.push_str(&format!(
            "\n  {label}: precision {:.4} recall {:.4} over {} requests; {}/{} real conversations recovered exactly ({:.1}%)",
            sc.precision,
            sc.recall,
            sc.known_requests,
            sc.exact,
            sc.real_conversations,
            sc.exact_share * 100.0
        ));
            for o in &sc.worst_split {
                t.push_str(&format!(
                    "\n    split: {} ({} requests over {} recovered, {} pairs missed)",
                    o.name, o.requests, o.spread, o.lost_pairs
                ));
            }
            for o in &sc.worst_merged {
                t.push_str(&format!(
                    "\n    merged: {} ({} requests from {} real, {} false pairs)",
                    o.name, o.requests, o.spread, o.lost_pairs
                ));
            }
        }
        let l = &v.subagents;
        t.push_str(&format!(
            "\n  sub-agents: {}/{} linked to the turn that spawned them ({:.1}%), {} to another turn, {} unlinked, {} false links",
            l.linked_right,
            l.real_subagents,
            l.right_share * 100.0,
            l.linked_wrong,
            l.unlinked,
            l.false_links
        ));
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::blocks::chain_digests;

    fn body(tools: &str, messages: &[String]) -> String {
        let messages: Vec<String> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let role = if i % 2 == 0 { "user" } else { "assistant" };
                format!(r#"{{"role":"{role}","content":"{m}"}}"#)
            })
            .collect();
        format!(
            r#"{{"model":"m","tools":{tools},"system":"You are a careful helper. {}","messages":[{}]}}"#,
            "Rules follow. ".repeat(40),
            messages.join(",")
        )
    }

    /// Digests from a fresh stream, every token hashed from scratch.
    fn from_scratch(salt: &Salt, text: &str) -> Option<Vec<Digest64>> {
        let (_, (tokens, tools, _)) = Stream::default()
            .tokenize_text(&mut Tokenizer::default(), text)
            .ok()?;
        let mut out = Vec::new();
        chain_digests(salt, &tokens, BLOCK_SIZE, &mut out);
        (tools > 0).then_some(out)
    }

    #[test]
    fn reused_digests_equal_digests_hashed_from_scratch() {
        let salt = Salt::from_hex("00112233445566778899aabbccddeeff").unwrap();
        let tools_a = format!(
            r#"[{{"name":"Read","description":"{}"}}]"#,
            "Reads a file from disk. ".repeat(30)
        );
        let tools_b = format!(
            r#"[{{"name":"Read","description":"{}"}}]"#,
            "Reads a file from the disk. ".repeat(30)
        );
        let turn = |i: usize| format!("turn {i}: {}", "some words of context ".repeat(9 * i + 3));
        let mut msgs: Vec<String> = Vec::new();
        let mut bodies = Vec::new();
        for i in 0..6 {
            msgs.push(turn(i));
            bodies.push(body(&tools_a, &msgs));
        }
        // A utility request without tools, then the conversation goes on.
        bodies.push(r#"{"model":"m","messages":[{"role":"user","content":"title?"}]}"#.into());
        msgs.push(turn(6));
        bodies.push(body(&tools_a, &msgs));
        // A bad body, the tools change, then a compaction replaces the context.
        bodies.push(r#"{"model":"m","tools":[{"#.into());
        msgs.push(turn(7));
        bodies.push(body(&tools_b, &msgs));
        bodies.push(body(&tools_b, &[turn(1), turn(9)]));
        msgs = vec![turn(1), turn(9), turn(10)];
        bodies.push(body(&tools_b, &msgs));

        let mut tk = Tokenizer::default();
        let mut st = Lineage::default();
        let (mut digested, mut small, mut bad) = (0, 0, 0);
        for text in &bodies {
            match digest_body(&mut tk, &mut st, &salt, text, 0) {
                Outcome::Digests(d, head) => {
                    assert_eq!(Some(d.clone()), from_scratch(&salt, text));
                    assert!(head > 0 && head < d.len());
                    digested += 1;
                }
                Outcome::Small => small += 1,
                Outcome::BadBody => bad += 1,
                Outcome::Missing => unreachable!("no row lookups here"),
            }
        }
        assert_eq!((digested, small, bad), (bodies.len() - 2, 1, 1));
    }

    #[test]
    fn a_small_request_between_turns_drops_the_digests_kept() {
        // A turn, then a request below --min-prefix-tokens whose tools share a long start
        // with the next turn's (but not with the first turn's), then that next turn.
        let salt = Salt::from_hex("00112233445566778899aabbccddeeff").unwrap();
        let tool = |name: &str, words: &str, n: usize| {
            format!(r#"{{"name":"{name}","description":"{}"}}"#, words.repeat(n))
        };
        let one = tool("Read", "Reads a file from disk. ", 40);
        let two = tool("Grep", "Searches files for a pattern. ", 60);
        let other = tool("Bash", "Runs a shell command. ", 120);
        let msgs = ["hello there".to_owned()];
        let first = body(&format!("[{other}]"), &msgs);
        let small = body(&format!("[{one}]"), &msgs);
        let next = body(&format!("[{one},{two}]"), &msgs);
        let head = |text: &str| {
            let (_, (_, tools, system)) = Stream::default()
                .tokenize_text(&mut Tokenizer::default(), text)
                .unwrap();
            tools + system
        };
        let min_prefix = (head(&small) + head(&next)) / 2;
        assert!(head(&small) < min_prefix && head(&first) >= min_prefix);

        let mut tk = Tokenizer::default();
        let mut st = Lineage::default();
        let outcomes: Vec<Outcome> = [&first, &small, &next]
            .iter()
            .map(|text| digest_body(&mut tk, &mut st, &salt, text, min_prefix))
            .collect();
        assert!(matches!(outcomes[1], Outcome::Small));
        for (text, outcome) in [(&first, &outcomes[0]), (&next, &outcomes[2])] {
            let Outcome::Digests(d, _) = outcome else {
                panic!("a turn was not digested");
            };
            assert_eq!(Some(d.clone()), from_scratch(&salt, text));
        }
    }
}
