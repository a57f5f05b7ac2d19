//! The real conversations of a capture, read from its session logs, for scoring a
//! recovery (`--validate-against`) and for `--exclude-indexed`.
//!
//! Every session file is one real conversation: each parent file and each agent file on
//! its own (the recovery cannot see sub-agent ↔ parent links, so it is scored without
//! them). Rows are matched and ordered exactly as build-minimal-traces does (spec §4.1,
//! via [`crate::conversation::gather`]); "cut at compactions" starts a new piece at each request
//! that keeps under 50% of its predecessor's blocks ([`is_context_reset`], §4.5).

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

use super::RecoverError;
use crate::capture::{Capture, MessageIndex};
use crate::conversation::{gather, Context};
use crate::encode::blocks::Salt;
use crate::encode::{is_context_reset, Tokenizer};
use crate::session::{SessionDir, SessionLog};

/// Request ids named by any session file under `dir` (parents and agents), as the
/// message-id map resolves them; plus the files that could not be read.
pub fn indexed_rows(
    dir: &Path,
    index: &MessageIndex,
) -> Result<(FxHashSet<String>, Vec<crate::session::Unreadable>), RecoverError> {
    let sessions = SessionDir::scan(dir)?;
    let mut rows = FxHashSet::default();
    let mut unreadable = Vec::new();
    for path in all_files(&sessions) {
        match SessionLog::read(&path) {
            Ok(log) => {
                let inline = log.inline_agents.values().flat_map(|a| &a.message_ids);
                for mid in log.message_ids.iter().chain(inline) {
                    if let Some(rid) = index.get(mid) {
                        rows.insert(rid.to_owned());
                    }
                }
            }
            Err(e) => unreadable.push(crate::session::Unreadable::new(&path, &e)),
        }
    }
    Ok((rows, unreadable))
}

fn all_files(sessions: &SessionDir) -> Vec<PathBuf> {
    let mut files = sessions.parents.clone();
    files.extend(sessions.agents.values().cloned());
    files
}

/// Real conversations as labels of request ids.
#[derive(Debug, Default)]
pub struct Truth {
    /// Request id → conversation (one per session file).
    pub whole: FxHashMap<String, u32>,
    pub whole_names: Vec<String>,
    /// Request id → piece (conversations cut at compactions).
    pub pieces: FxHashMap<String, u32>,
    pub piece_names: Vec<String>,
    /// Real sub-agents: (first request id of the sub-agent, request id of the parent turn
    /// whose reply spawned it), as the parent logs link them.
    pub links: Vec<(String, String)>,
}

/// Read the real conversations of `dir` against the capture `db`.
pub fn load(db: &Path, dir: &Path, index: &MessageIndex) -> Result<Truth, RecoverError> {
    let sessions = SessionDir::scan(dir)?;
    sessions.load_claims();
    // The cut decision compares digests within one run only: any salt will do.
    let salt = Salt::random()?;
    let ctx = Context {
        index,
        dir: &sessions,
        salt: &salt,
        block_size: super::BLOCK_SIZE,
        // Sidechains written inline (1.0.x) are conversations of their own; agent files
        // are read on their own below.
        include_subagents: true,
        inline_subagents_only: true,
        full: false,
        form: crate::pyjson::Form::Canonical,
    };
    // Warm-up agent files (Claude Code 2.0.x; no call links them, no trace holds them)
    // are not conversations: the recovery skips their requests too.
    let files: Vec<PathBuf> = all_files(&sessions)
        .into_iter()
        .filter(|f| {
            !sessions.agents.values().any(|a| a == f)
                || !SessionLog::read(f).is_ok_and(|l| {
                    l.first_prompt
                        .as_deref()
                        .is_some_and(|p| p.trim() == crate::session_stats::WARMUP_PROMPT)
                })
        })
        .collect();
    /// A session file's stem and its (request id, kept) list, then its inline sidechains'.
    type FileRequests = Vec<(String, Vec<(String, bool)>)>;
    let cuts = |requests: &[crate::encode::Processed]| {
        let mut rows = Vec::with_capacity(requests.len());
        let mut prev: Option<&[u64]> = None;
        for p in requests {
            let cut = prev.is_some_and(|d| is_context_reset(d, &p.digests));
            rows.push((p.request_id.clone(), cut));
            prev = Some(&p.digests);
        }
        rows
    };
    let gathered: Vec<Result<FileRequests, RecoverError>> = files
        .par_iter()
        .map_init(
            || (None::<Capture>, Tokenizer::default()),
            |(cap, tk), path| {
                if cap.is_none() {
                    *cap = Some(Capture::open(db)?);
                }
                let Some(cap) = cap.as_ref() else {
                    return Ok(Vec::new());
                };
                let g = gather(cap, tk, &ctx, path)?;
                let mut out = vec![(g.id.clone(), cuts(&g.requests))];
                for a in &g.agents {
                    out.push((format!("{}/{}", g.id, a.agent_id), cuts(&a.requests)));
                }
                Ok(out)
            },
        )
        .collect();
    let mut truth = Truth::default();
    let mut first_of: FxHashMap<String, String> = FxHashMap::default();
    for (name, rows) in gathered
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
    {
        let Some((first, _)) = rows.first() else {
            continue;
        };
        first_of.insert(name.clone(), first.clone());
        let conv = truth.whole_names.len() as u32;
        truth.whole_names.push(name.clone());
        let mut piece = truth.piece_names.len() as u32;
        truth.piece_names.push(name.clone());
        let mut k = 0;
        for (rid, cut) in rows {
            if truth.whole.contains_key(&rid) {
                // Named by two files: the first one keeps it.
                continue;
            }
            if cut {
                k += 1;
                piece = truth.piece_names.len() as u32;
                truth.piece_names.push(format!("{name}#{k}"));
            }
            truth.whole.insert(rid.clone(), conv);
            truth.pieces.insert(rid, piece);
        }
    }
    truth.links = real_links(&sessions, index, &first_of);
    Ok(truth)
}

/// Each parent log's links whose spawning call and sub-agent requests are in the capture.
/// `first_of`: first request id of each gathered file, by the name `load` gives it.
fn real_links(
    sessions: &SessionDir,
    index: &MessageIndex,
    first_of: &FxHashMap<String, String>,
) -> Vec<(String, String)> {
    let mut links = Vec::new();
    for path in &sessions.parents {
        // An unreadable parent is counted where it is gathered.
        let Ok(log) = SessionLog::read(path) else {
            continue;
        };
        let stem = log.stem();
        for link in &log.links {
            let Some(parent_row) = log
                .spawn_for(link)
                .and_then(|s| s.message_id.as_deref())
                .and_then(|m| index.get(m))
            else {
                continue;
            };
            let name = match log.inline_agent(&link.agent_id) {
                Some(_) => format!("{stem}/{}", link.agent_id),
                None => format!("agent-{}", link.agent_id),
            };
            if let Some(first) = first_of.get(&name) {
                links.push((first.clone(), parent_row.to_owned()));
            }
        }
    }
    links
}
