//! The real conversations of a capture, read from its session logs, for scoring a
//! recovery (`--validate-against`) and for `--exclude-indexed` (issue 10).
//!
//! Every session file is one real conversation: each parent file and each agent file on
//! its own (the recovery cannot see sub-agent ↔ parent links, so it is scored without
//! them). Rows are matched and ordered exactly as build-minimal-traces does (SPEC §4.1,
//! via [`crate::build::gather`]); "cut at compactions" starts a new piece at each request
//! that keeps under 50% of its predecessor's blocks ([`is_context_reset`], §4.5).

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

use super::RecoverError;
use crate::blocks::Salt;
use crate::build::gather::{gather, Context};
use crate::build::request::{is_context_reset, Tokenizer};
use crate::capture::{Capture, MessageIndex};
use crate::session::{SessionDir, SessionLog};

/// Request ids named by any session file under `dir` (parents and agents), as the
/// message-id map resolves them; plus the number of unreadable files.
pub fn indexed_rows(
    dir: &Path,
    index: &MessageIndex,
) -> Result<(FxHashSet<String>, usize), RecoverError> {
    let sessions = SessionDir::scan(dir)?;
    let mut rows = FxHashSet::default();
    let mut unreadable = 0;
    for path in all_files(&sessions) {
        match SessionLog::read(&path) {
            Ok(log) => {
                for mid in &log.message_ids {
                    if let Some(rid) = index.get(mid) {
                        rows.insert(rid.to_owned());
                    }
                }
            }
            Err(_) => unreadable += 1,
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
}

/// Read the real conversations of `dir` against the capture `db`.
pub fn load(db: &Path, dir: &Path, index: &MessageIndex) -> Result<Truth, RecoverError> {
    let sessions = SessionDir::scan(dir)?;
    // The cut decision compares digests within one run only: any salt will do.
    let salt = Salt::random()?;
    let ctx = Context {
        index,
        dir: &sessions,
        salt: &salt,
        block_size: super::BLOCK_SIZE,
        include_subagents: false,
        full: false,
        form: crate::pyjson::Form::Canonical,
    };
    let files = all_files(&sessions);
    /// A session file's stem and its (request id, kept) list.
    type FileRequests = (String, Vec<(String, bool)>);
    let gathered: Vec<Result<FileRequests, RecoverError>> = files
        .par_iter()
        .map_init(
            || (None::<Capture>, Tokenizer::default()),
            |(cap, tk), path| {
                if cap.is_none() {
                    *cap = Some(Capture::open(db)?);
                }
                let Some(cap) = cap.as_ref() else {
                    return Ok((String::new(), Vec::new()));
                };
                let g = gather(cap, tk, &ctx, path)?;
                let mut rows = Vec::with_capacity(g.requests.len());
                let mut prev: Option<&[u64]> = None;
                for p in &g.requests {
                    let cut = prev.is_some_and(|d| is_context_reset(d, &p.digests));
                    rows.push((p.request_id.clone(), cut));
                    prev = Some(&p.digests);
                }
                Ok((g.id, rows))
            },
        )
        .collect();
    let mut truth = Truth::default();
    for item in gathered {
        let (name, rows) = item?;
        if rows.is_empty() {
            continue;
        }
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
    Ok(truth)
}
