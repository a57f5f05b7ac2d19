//! Gathering a conversation: session file → matched rows → processed requests, and its
//! sub-agents (spec §4.1, §4.7, §4.9.2).

use std::path::Path;

use super::{matched_rows, Counts, RowKey};
use crate::capture::{Capture, CaptureError, MessageIndex};
use crate::encode::blocks::Salt;
use crate::encode::{Processed, Skip, Stream, Tokenizer};
use crate::session::{SessionDir, SessionLog, Unreadable};
use crate::stamp::Stamp;

/// A sub-agent of a conversation, processed.
#[derive(Debug, Clone)]
pub struct GatheredAgent {
    pub agent_id: String,
    pub subagent_type: Option<String>,
    /// Earliest time in the agent file, else the spawning entry, else the tool_result.
    pub spawn: Option<Stamp>,
    pub link: crate::session::AgentLink,
    pub requests: Vec<Processed>,
}

/// A parent conversation, processed.
#[derive(Debug, Clone)]
pub struct Gathered {
    /// File stem = session id.
    pub id: String,
    /// Rows matched for the conversation (`_analysis.indexed`).
    pub indexed: usize,
    pub requests: Vec<Processed>,
    pub agents: Vec<GatheredAgent>,
    pub counts: Counts,
    /// Session files that could not be read (also counted in `counts`).
    pub unreadable: Vec<Unreadable>,
}

/// Everything a worker needs, shared read-only.
pub struct Context<'a> {
    pub index: &'a MessageIndex,
    pub dir: &'a SessionDir,
    pub salt: &'a Salt,
    pub block_size: usize,
    pub include_subagents: bool,
    /// With `include_subagents`: only the sub-agents written inline in the parent file
    /// (1.0.x sidechains), not agent files (which a caller reads on their own).
    pub inline_subagents_only: bool,
    /// Tokenize every request from scratch (baseline / oracle).
    pub full: bool,
    /// The form content is hashed in.
    pub form: crate::pyjson::Form,
}

/// The rows a session file names, processed in order: how many matched, and the
/// requests. Its queries share one read snapshot (one lock, one check of the file).
fn requests_of(
    cap: &Capture,
    log: &SessionLog,
    tk: &mut Tokenizer,
    ctx: &Context<'_>,
    counts: &mut Counts,
) -> Result<(usize, Vec<Processed>), CaptureError> {
    cap.in_snapshot(|| {
        let rows = matched_rows(cap, ctx.index, log, counts)?;
        Ok((rows.len(), process_rows(cap, &rows, tk, ctx, counts)?))
    })
}

fn process_rows(
    cap: &Capture,
    rows: &[RowKey],
    tk: &mut Tokenizer,
    ctx: &Context<'_>,
    counts: &mut Counts,
) -> Result<Vec<Processed>, CaptureError> {
    let mut stream = Stream::new(ctx.full, ctx.form);
    let mut out = Vec::with_capacity(rows.len());
    for key in rows {
        match cap.with_row(&key.id, |row| {
            stream.process(tk, ctx.salt, ctx.block_size, row)
        })? {
            Some(Ok(p)) => {
                counts.bad_values += p.response.as_ref().map_or(0, |r| r.non_finite);
                out.push(p)
            }
            Some(Err(Skip::BadBody)) => counts.bad_bodies += 1,
            Some(Err(Skip::BadTimestamp)) => counts.bad_timestamps += 1,
            // Deleted since it was indexed (a live capture).
            None => counts.missing_rows += 1,
        }
    }
    Ok(out)
}

/// Gather one parent conversation from its session file.
pub fn gather(
    cap: &Capture,
    tk: &mut Tokenizer,
    ctx: &Context<'_>,
    path: &Path,
) -> Result<Gathered, CaptureError> {
    let mut counts = Counts::default();
    let mut unreadable = Vec::new();
    let log = match ctx.dir.read_parent(path) {
        Ok(log) => log,
        Err(e) => {
            counts.unreadable_files += 1;
            unreadable.push(Unreadable::new(path, &e));
            SessionLog::default()
        }
    };
    counts.unparseable_lines += log.unparseable_lines;
    counts.duplicate_links += log.duplicate_links;
    counts.claimed_elsewhere += log.claimed_elsewhere;
    let (indexed, requests) = requests_of(cap, &log, tk, ctx, &mut counts)?;
    let mut agents = Vec::new();
    if ctx.include_subagents {
        for link in &log.links {
            if ctx.inline_subagents_only && log.inline_agent(&link.agent_id).is_none() {
                continue;
            }
            let agent_log = match ctx.dir.agent_log(&log, &link.agent_id) {
                Some(Ok(l)) => l,
                Some(Err(e)) => {
                    counts.unreadable_files += 1;
                    let file = ctx
                        .dir
                        .agents
                        .get(&link.agent_id)
                        .map_or(path, |p| p.as_path());
                    unreadable.push(Unreadable::new(file, &e));
                    continue;
                }
                None => {
                    counts.missing_agent_files += 1;
                    continue;
                }
            };
            counts.unparseable_lines += agent_log.unparseable_lines;
            let (_, requests) = requests_of(cap, &agent_log, tk, ctx, &mut counts)?;
            if requests.is_empty() {
                continue;
            }
            let spawn_entry = log.spawn_for(link);
            let spawn = log.spawn_time(link, &agent_log);
            agents.push(GatheredAgent {
                agent_id: link.agent_id.clone(),
                subagent_type: spawn_entry.and_then(|s| s.subagent_type.clone()),
                spawn,
                link: link.clone(),
                requests,
            });
        }
    }
    Ok(Gathered {
        id: crate::session::dir::stem(path),
        indexed,
        requests,
        agents,
        counts,
        unreadable,
    })
}
