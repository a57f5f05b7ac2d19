//! build-minimal-traces: captures + session logs → block traces (spec §4).
//!
//! Two phases. Gathering (parallel, one conversation per task, one read-only SQLite
//! connection and one tokenizer per thread) reads rows by key and turns every request
//! into tokens and salted block digests. Assembly (sequential, in file-name order) hands
//! out integer ids and lays out the trace documents, so outputs are byte-identical
//! whatever the thread count.

pub mod assemble;
pub mod batch;
pub mod vocabulary;

use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use serde::Serialize;
use thiserror::Error;

use crate::capture::{Capture, CaptureError};
use crate::conversation::gather::{self, Context, Gathered};
use crate::conversation::ordered::Lender;
use crate::conversation::Counts;
use crate::encode::blocks::{IdMap, Salt};
use crate::encode::Tokenizer;
use crate::session::{SessionDir, SessionDirError};
pub use assemble::{BuiltTrace, Shape};

/// Where traces go.
#[derive(Debug, Clone)]
pub enum Output {
    /// `<dir>/<id cut to 16>.json` per trace.
    Dir(PathBuf),
    /// One file (with `--conversation-id`); `_sN` inserted before the extension when split.
    File(PathBuf),
}

/// Everything a build run needs.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub db: PathBuf,
    pub jsonl_dir: PathBuf,
    pub conversation_id: Option<String>,
    pub output: Output,
    pub shape: Shape,
    pub salt: Salt,
    /// The form content is hashed in (canonical by default; raw = the reference).
    pub content_form: crate::pyjson::Form,
    /// Worker threads (0 = rayon's default).
    pub threads: usize,
    /// Tokenize every request from scratch (the benchmark baseline).
    pub full_tokenization: bool,
    /// Set (e.g. by a Ctrl-C handler) to stop after the traces already written.
    pub cancel: Option<Arc<AtomicBool>>,
    /// The number of the first anonymized trace (`trace_0001` = 1); a batch continues
    /// the count across rows.
    pub first_trace_number: usize,
    /// Build from the session logs alone (no capture; `db` unused): docs/logs-only.md.
    pub logs_only: bool,
    /// Logs only: API tokens per token of ours, to size the stand-in prefix (`None`:
    /// measured on the journaled requests, else 1).
    pub api_token_ratio: Option<f64>,
}

#[derive(Debug, Error)]
pub enum BuildError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    SessionDir(#[from] SessionDirError),
    #[error("{0}")]
    Conversation(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start worker threads: {0}")]
    Threads(String),
    #[error("interrupted: {0} complete traces were written, nothing partial")]
    Interrupted(usize),
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BuildSummary {
    pub conversations: usize,
    pub traces: usize,
    pub parent_requests: usize,
    pub subagents: usize,
    pub subagent_requests: usize,
    pub unique_blocks: usize,
    pub files: Vec<PathBuf>,
    /// Trace files that replaced a file of the same run. Names are chosen so that this
    /// cannot happen ([`file_name`]); kept in the summary as a guard.
    pub overwritten: Vec<PathBuf>,
    pub skipped: Counts,
    /// The session files counted in `skipped.unreadable_files`, with why.
    pub unreadable_files: Vec<crate::session::Unreadable>,
    /// Logs only: the stand-in prefix of each Claude Code version (and sub-agent type),
    /// in tokens (`<version>/main`, `<version>/agent/<type>`).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub stand_in_prefixes: std::collections::BTreeMap<String, usize>,
    /// Logs only: requests sent with the tools and system prompt of the logs' request
    /// journal (Claude Code 2.1.x), and requests whose messages are the journal's copy.
    #[serde(skip_serializing_if = "is_zero")]
    pub journaled_prefixes: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub journaled_messages: usize,
    /// Logs only, with stand-in prefixes: the API tokens per token of ours they were sized
    /// with, and where that ratio came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_token_ratio: Option<crate::fromlogs::Ratio>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl BuildSummary {
    /// Warnings for stderr: trace files this run replaced (never expected: names are
    /// chosen not to collide) and session files that could not be read.
    pub fn warnings(&self) -> Vec<String> {
        let replaced = self
            .overwritten
            .iter()
            .map(|p| format!("a trace file of this run was replaced: {}", p.display()));
        let unreadable = self
            .unreadable_files
            .iter()
            .map(|u| format!("cannot read {u}; skipped"));
        replaced.chain(unreadable).collect()
    }

    /// The human summary: totals, then what was skipped, when anything was.
    pub fn text(&self) -> String {
        let mut o = format!(
            "{} traces from {} conversations: {} requests, {} sub-agents ({} requests), {} unique blocks",
            self.traces,
            self.conversations,
            self.parent_requests,
            self.subagents,
            self.subagent_requests,
            self.unique_blocks
        );
        let k = &self.skipped;
        if k.damaged() + k.missing_rows + k.missing_agent_files + k.bad_values > 0 {
            o.push_str(&format!(
                "\nskipped: {} unparseable lines, {} bad bodies, {} bad timestamps, {} missing rows, {} missing agent files, {} bad values",
                k.unparseable_lines, k.bad_bodies, k.bad_timestamps, k.missing_rows, k.missing_agent_files, k.bad_values
            ));
        }
        if self.journaled_prefixes + self.journaled_messages > 0 {
            o.push_str(&format!(
                "\nfrom the request journal of the session logs: tools and system prompt of {} requests, messages of {} (of {})",
                self.journaled_prefixes,
                self.journaled_messages,
                self.parent_requests + self.subagent_requests
            ));
        }
        if !self.stand_in_prefixes.is_empty() {
            let list: Vec<String> = self
                .stand_in_prefixes
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            o.push_str(&format!(
                "\nfrom session logs alone: tools and system stood in for by estimated prefixes (tokens): {}",
                list.join(", ")
            ));
            if let Some(r) = &self.api_token_ratio {
                o.push_str(&format!("; {r}"));
            }
        }
        if k.claimed_elsewhere > 0 {
            o.push_str(&format!(
                "\n{} responses named by two session files (a copied chain) were traced once, in the file that wrote them first",
                k.claimed_elsewhere
            ));
        }
        o
    }
}

/// Conversations gathered in parallel per window; assembly and writing follow in order.
/// The window bounds memory to a few conversations per thread, whatever the DB size.
const WINDOW_PER_THREAD: usize = 8;

/// The window also reaches as far as this many bytes of session logs (a conversation's
/// and its sub-agents') past the next conversation to assemble, when that is further:
/// many small conversations ahead let a large one behind them start early instead of
/// running alone at the end. A gathered conversation holds about 0.4 byte per byte of its
/// logs until it is written, so this adds at most ~26 MB.
const WINDOW_BYTES: u64 = 64 << 20;

/// Gather and assemble every selected conversation, handing each trace to `emit` in
/// output order (ids, anonymized names and all). Memory stays bounded: conversations
/// are gathered a window at a time and dropped once their traces are emitted.
pub fn build_with(
    opts: &BuildOptions,
    global: &mut IdMap,
    progress: &(dyn Fn(usize, usize) + Sync),
    emit: &mut dyn FnMut(BuiltTrace) -> Result<(), BuildError>,
) -> Result<BuildSummary, BuildError> {
    let cap = if opts.logs_only {
        None
    } else {
        Some(Capture::open(&opts.db)?)
    };
    let dir = SessionDir::scan(&opts.jsonl_dir)?;
    let parents: Vec<&Path> = match &opts.conversation_id {
        Some(id) => vec![dir.find_parent(id).map_err(BuildError::Conversation)?],
        None => dir.parents.iter().map(PathBuf::as_path).collect(),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .map_err(|e| BuildError::Threads(e.to_string()))?;
    let parts = pool.current_num_threads();
    // The message-id pass and the session files' claims (needed before any task reads a
    // parent file: SessionDir::load_claims) are independent: run side by side, so the
    // second's tail (one large session file) overlaps the first's work.
    let with_capture = cap.is_some();
    let index = pool.install(|| {
        let (index, _) = rayon::join(
            || {
                if with_capture {
                    Capture::message_index_parallel(&opts.db, parts)
                } else {
                    Ok(crate::capture::MessageIndex::default())
                }
            },
            // The rank table too, or the first request tokenized builds it while the
            // other tasks wait.
            || rayon::join(|| dir.load_claims(), crate::tokens::warm),
        );
        index
    })?;
    let ctx = Context {
        index: &index,
        dir: &dir,
        salt: &opts.salt,
        block_size: opts.shape.block_size,
        include_subagents: opts.shape.include_subagents,
        inline_subagents_only: false,
        full: opts.full_tokenization,
        form: opts.content_form,
    };
    // Logs only: a first pass estimates the stand-in prefixes (crate::fromlogs).
    let logs = opts.logs_only.then(|| {
        pool.install(|| {
            crate::fromlogs::LogsGatherer::new(
                &dir,
                &parents,
                &opts.salt,
                opts.shape.block_size,
                opts.shape.include_subagents,
                opts.content_form,
                opts.api_token_ratio,
            )
        })
    });
    // Per-thread state (a read-only connection, a tokenizer with its caches), lent to
    // tasks and returned, so caches live for the whole run.
    let states: Lender<(Option<Capture>, Tokenizer)> =
        Lender::new(vec![(cap, Tokenizer::default())]);
    let done = AtomicUsize::new(0);
    let total = parents.len();
    let window = pool.current_num_threads().max(1) * WINDOW_PER_THREAD;

    let mut summary = BuildSummary {
        conversations: parents.len(),
        stand_in_prefixes: logs
            .as_ref()
            .map(|l| l.prefixes.clone())
            .unwrap_or_default(),
        api_token_ratio: logs
            .as_ref()
            .filter(|l| !l.prefixes.is_empty())
            .map(|l| l.ratio),
        ..BuildSummary::default()
    };
    let ids_before = global.len();
    let mut max_local = 0;
    let mut emitted = 0usize;
    let cancelled = || {
        opts.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    };
    // Conversations are gathered as independent tasks on the pool, at most `window` ahead
    // of the one being handed over; this thread takes them strictly in order as they
    // arrive, so workers never wait for each other, for the sequential numbering (or, with
    // global ids, the sequential id assignment), or for writes, and memory stays bounded by
    // the window.
    let gather_one = |path: &Path| -> Result<Ready, CaptureError> {
        let g = states.with(|(cap, tk)| match &logs {
            Some(logs) => Ok(logs.gather(tk, path)),
            None => {
                let c = match cap.take() {
                    Some(c) => c,
                    None => Capture::open(&opts.db)?,
                };
                let g = gather::gather(&c, tk, &ctx, path);
                *cap = Some(c);
                g
            }
        });
        progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
        // With ids local to each trace (the default), nothing of the assembly depends on
        // the conversations before: assembled here, on the pool, not on the main thread.
        let mut g = g?;
        let assembled = opts.shape.local_ids.then(|| {
            let mut local = IdMap::new();
            let traces = assemble::assemble(&g, &opts.shape, &mut local);
            g.requests = Vec::new();
            g.agents = Vec::new();
            (traces, local.len())
        });
        Ok(Ready { g, assembled })
    };
    let (tx, rx) = std::sync::mpsc::channel::<Done>();
    let estimates: Vec<u64> = parents
        .iter()
        .map(|p| crate::conversation::ordered::work_estimate(p))
        .collect();
    let ahead: Vec<u64> = std::iter::once(0)
        .chain(estimates.iter().scan(0u64, |sum, &e| {
            *sum += e;
            Some(*sum)
        }))
        .collect();
    let result = pool.in_place_scope(|scope| -> Result<(), BuildError> {
        let mut spawned = 0usize;
        let mut next = 0usize;
        let mut ready: std::collections::BTreeMap<usize, Result<Ready, CaptureError>> =
            std::collections::BTreeMap::new();
        // Conversations that became eligible are started largest first, so a big one met
        // late does not run alone at the end while the other workers idle.
        let spawn_more = |spawned: &mut usize, next: usize| {
            // ahead[i]: log bytes of the conversations before i.
            let by_bytes =
                ahead.partition_point(|&b| b.saturating_sub(ahead[next]) <= WINDOW_BYTES) - 1;
            let end = parents.len().min((next + window).max(by_bytes));
            if *spawned >= end || cancelled() {
                return;
            }
            let mut eligible: Vec<usize> = (*spawned..end).collect();
            eligible.sort_by_key(|&i| std::cmp::Reverse(estimates[i]));
            for i in eligible {
                let (path, tx, gather_one) = (parents[i], tx.clone(), &gather_one);
                scope.spawn(move |_| {
                    let _ = tx.send(Done::caught(|| Done::Gathered(i, gather_one(path))));
                });
            }
            *spawned = end;
        };
        spawn_more(&mut spawned, next);
        // Traces are numbered (and, with global ids, assembled) in order on this thread,
        // laid out as JSON on the pool, and emitted in order again.
        let mut assembled = 0usize;
        let mut laid_out: std::collections::BTreeMap<usize, BuiltTrace> =
            std::collections::BTreeMap::new();
        while next < spawned || emitted < assembled {
            let Ok(done) = rx.recv() else { break };
            let (i, g) = match done {
                Done::Gathered(i, g) => (i, g),
                Done::Panicked(panic) => std::panic::resume_unwind(panic),
                Done::LaidOut(k, t) => {
                    laid_out.insert(k, t);
                    while let Some(t) = laid_out.remove(&emitted) {
                        if cancelled() {
                            return Err(BuildError::Interrupted(emitted));
                        }
                        emitted += 1;
                        emit(t)?;
                    }
                    continue;
                }
            };
            ready.insert(i, g);
            while let Some(g) = ready.remove(&next) {
                next += 1;
                let Ready { g, assembled: pre } = g?;
                summary.skipped.add(&g.counts);
                summary.journaled_prefixes += g.counts.journaled_prefixes;
                summary.journaled_messages += g.counts.journaled_messages;
                summary
                    .unreadable_files
                    .extend(g.unreadable.iter().cloned());
                let (traces, local) = match pre {
                    Some(done) => done,
                    None => (assemble::assemble(&g, &opts.shape, global), 0),
                };
                for mut t in traces {
                    if opts.logs_only {
                        t.doc.source = Some(crate::fromlogs::SOURCE);
                    }
                    if cancelled() {
                        return Err(BuildError::Interrupted(emitted));
                    }
                    summary.parent_requests += t.parent_requests;
                    summary.subagents += t.subagents;
                    summary.subagent_requests += t.subagent_requests;
                    if opts.shape.anonymize {
                        let number = opts.first_trace_number + assembled;
                        vocabulary::anonymize(&mut t.doc, number, &opts.salt);
                        t.id.clone_from(&t.doc.id);
                    }
                    let (k, tx) = (assembled, tx.clone());
                    scope.spawn(move |_| {
                        let _ = tx.send(Done::caught(move || {
                            t.layout = Some(t.doc.to_json().to_layout());
                            Done::LaidOut(k, t)
                        }));
                    });
                    assembled += 1;
                }
                max_local = max_local.max(local);
                spawn_more(&mut spawned, next);
            }
        }
        if cancelled() {
            return Err(BuildError::Interrupted(emitted));
        }
        Ok(())
    });
    result?;
    summary.traces = emitted;
    summary.unique_blocks = if opts.shape.local_ids {
        max_local
    } else {
        global.len() - ids_before
    };
    Ok(summary)
}

/// A gathered conversation; with ids local to each trace, already assembled (its traces
/// and how many ids the largest took), its requests dropped.
struct Ready {
    g: Gathered,
    assembled: Option<(Vec<BuiltTrace>, usize)>,
}

/// What a task of [`build_with`]'s pool hands back: a conversation gathered (by its place
/// in output order), or a trace laid out (by its place among the traces).
enum Done {
    Gathered(usize, Result<Ready, CaptureError>),
    LaidOut(usize, BuiltTrace),
    /// A task panicked: resumed on the main thread, which would otherwise wait for the
    /// task's result forever.
    Panicked(Box<dyn std::any::Any + Send>),
}

impl Done {
    /// Run a task's work, its panic caught and handed over as [`Done::Panicked`].
    fn caught(work: impl FnOnce() -> Done) -> Done {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(Done::Panicked)
    }
}

/// Build and write the traces; returns the summary with the files written.
pub fn run(
    opts: &BuildOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<BuildSummary, BuildError> {
    run_with(opts, &mut IdMap::new(), progress)
}

/// [`run`] allocating ids from `global` (shared by the rows of a batch).
pub fn run_with(
    opts: &BuildOptions,
    global: &mut IdMap,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<BuildSummary, BuildError> {
    // The output folder is created with the first trace: a run that fails on its input,
    // or writes nothing, leaves nothing behind.
    let write = |path: PathBuf, t: &BuiltTrace| -> Result<PathBuf, BuildError> {
        let laid_out;
        let text = match &t.layout {
            Some(text) => text,
            None => {
                laid_out = t.doc.to_json().to_layout();
                &laid_out
            }
        };
        crate::trace::write_in_folder(&path, text.as_bytes())
            .map_err(|(path, source)| BuildError::Write { path, source })?;
        Ok(path)
    };
    let mut files = Vec::new();
    let mut seen: rustc_hash::FxHashSet<PathBuf> = rustc_hash::FxHashSet::default();
    let mut names: rustc_hash::FxHashSet<String> = rustc_hash::FxHashSet::default();
    let mut overwritten = Vec::new();
    // --output names files after the count of traces written (`_s1`, `_s2`, … when more
    // than one, as the reference), so that conversation's traces are collected first.
    let mut single: Vec<BuiltTrace> = Vec::new();
    let mut summary = build_with(opts, global, progress, &mut |t: BuiltTrace| {
        match &opts.output {
            Output::Dir(dir) => {
                let name = file_name(&t.id, &mut names);
                let path = write(dir.join(name), &t)?;
                if seen.insert(path.clone()) {
                    files.push(path);
                } else {
                    overwritten.push(path);
                }
            }
            Output::File(_) => single.push(t),
        }
        Ok(())
    })?;
    if let Output::File(file) = &opts.output {
        let many = single.len() > 1;
        for (i, t) in single.iter().enumerate() {
            let path = if many {
                with_suffix(file, i + 1)
            } else {
                file.clone()
            };
            files.push(write(path, t)?);
        }
    }
    summary.files = files;
    summary.overwritten = overwritten;
    Ok(summary)
}

/// The file name of a trace: its id cut to 16 characters, as the reference names it; when
/// an earlier trace of the run already has that name (`<12>_s100` and `<12>_s10` cut alike,
/// or session ids alike in their first 12 characters), the whole id, then `-2`, `-3`, …,
/// so no trace of a run replaces another. The id inside the file is unchanged.
pub fn file_name(id: &str, used: &mut rustc_hash::FxHashSet<String>) -> String {
    let cut: String = id.chars().take(16).collect();
    let mut name = format!("{cut}.json");
    let mut n = 1;
    while !used.insert(name.clone()) {
        n += 1;
        name = if n == 2 && cut.len() < id.len() {
            format!("{id}.json")
        } else {
            format!("{id}-{n}.json")
        };
    }
    name
}

/// `out.json` + `2` → `out_s2.json`.
fn with_suffix(file: &Path, n: usize) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match file.extension() {
        Some(ext) => format!("{stem}_s{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}_s{n}"),
    };
    file.with_file_name(name)
}

/// What the benchmark's bare scan read.
#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn trace_file_names_never_collide_within_a_run() {
        let mut used = rustc_hash::FxHashSet::default();
        let base = "5f0c9e2a-7b1";
        let mut names: Vec<String> = (1..=300)
            .map(|n| file_name(&format!("{base}_s{n}"), &mut used))
            .collect();
        // The reference's names where they are unique; the whole id where the cut collides.
        assert_eq!(names[0], "5f0c9e2a-7b1_s1.json");
        assert_eq!(names[9], "5f0c9e2a-7b1_s10.json");
        assert_eq!(names[99], "5f0c9e2a-7b1_s100.json");
        assert_eq!(names[100], "5f0c9e2a-7b1_s101.json");
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 300);
        // Two session ids alike in their first 12 characters.
        assert_eq!(file_name("aaaaaaaa-bbb", &mut used), "aaaaaaaa-bbb.json");
        assert_eq!(file_name("aaaaaaaa-bbb", &mut used), "aaaaaaaa-bbb-2.json");
        assert_eq!(file_name("aaaaaaaa-bbb", &mut used), "aaaaaaaa-bbb-3.json");
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanSummary {
    pub rows: usize,
    pub bytes: u64,
    /// Seconds to build the message index and read the session logs.
    pub select_seconds: f64,
    /// Seconds to read every byte of `body` and `response` of the used rows.
    pub scan_seconds: f64,
    /// A checksum of the bytes, so the read cannot be optimized away.
    pub checksum: u64,
}

/// The benchmark floor: select the rows a build would use (message index, session logs,
/// sub-agent files) and read every byte of their `body` and `response`, doing nothing else.
pub fn scan_used_rows(opts: &BuildOptions) -> Result<ScanSummary, BuildError> {
    let t0 = std::time::Instant::now();
    let cap = Capture::open(&opts.db)?;
    let dir = SessionDir::scan(&opts.jsonl_dir)?;
    let index = Capture::message_index_parallel(&opts.db, rayon::current_num_threads())?;
    let mut ids: Vec<String> = Vec::new();
    let mut counts = Counts::default();
    for parent in &dir.parents {
        let log = dir.read_parent(parent).unwrap_or_default();
        ids.extend(
            crate::conversation::matched_rows(&cap, &index, &log, &mut counts)?
                .into_iter()
                .map(|k| k.id),
        );
        if opts.shape.include_subagents {
            for link in &log.links {
                if let Some(alog) = dir.agent_log(&log, &link.agent_id) {
                    let alog = alog.unwrap_or_default();
                    ids.extend(
                        crate::conversation::matched_rows(&cap, &index, &alog, &mut counts)?
                            .into_iter()
                            .map(|k| k.id),
                    );
                }
            }
        }
    }
    let select_seconds = t0.elapsed().as_secs_f64();
    let t1 = std::time::Instant::now();
    let mut s = ScanSummary {
        select_seconds,
        ..ScanSummary::default()
    };
    for id in &ids {
        let got = cap.with_row(id, |r| {
            let mut sum = 0u64;
            let mut n = 0u64;
            for part in [r.body, r.response].into_iter().flatten() {
                n += part.len() as u64;
                sum = sum.wrapping_add(part.as_bytes().iter().map(|&b| u64::from(b)).sum::<u64>());
            }
            (n, sum)
        })?;
        if let Some((n, sum)) = got {
            s.rows += 1;
            s.bytes += n;
            s.checksum ^= sum;
        }
    }
    s.scan_seconds = t1.elapsed().as_secs_f64();
    Ok(s)
}
