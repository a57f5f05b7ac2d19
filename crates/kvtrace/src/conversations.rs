//! list-conversations: one summary row per parent conversation of a capture.
//!
//! Rows are matched as spec §4.1 says (session message ids → message-id map → rows);
//! sub-agents come from the parent's links (§3) whose agent file exists. The API cache-read
//! share is computed over the parent's own matched rows, like validate-trace-cache's API
//! side (§6): read / (input + read + creation). Rows are sorted by start time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use thiserror::Error;

use crate::capture::{Capture, CaptureError, FirstAttempts, Response};
use crate::conversation::matched_rows;
use crate::conversation::Counts;
use crate::report::table::{Cell, Table};
use crate::report::units::{duration_text, group_thousands};
use crate::session::{SessionDir, SessionDirError};
use crate::stamp::Stamp;

#[derive(Debug, Error)]
pub enum ConversationsError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Dir(#[from] SessionDirError),
}

/// One parent conversation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Conversation {
    pub id: String,
    /// Rows of the capture matched by the parent's message ids.
    pub matched_requests: usize,
    /// Distinct assistant message ids in the parent log.
    pub assistant_messages: usize,
    /// First and last matched row time (else the log's), ISO-8601.
    pub start: Option<String>,
    pub end: Option<String>,
    pub duration_s: Option<f64>,
    /// Sorted distinct models of the parent's assistant messages.
    pub models: Vec<String>,
    /// Linked sub-agents whose agent file exists.
    pub subagents: usize,
    /// Sub-agent type → count, sorted by type (`unknown` when the spawn is not found).
    pub subagent_types: BTreeMap<String, usize>,
    /// Rows matched by the sub-agents' message ids.
    pub subagent_requests: usize,
    pub api_cache_read: u64,
    pub api_input_total: u64,
    /// api_cache_read / api_input_total × 100; `None` without cache data.
    pub api_cache_read_pct: Option<f64>,
    #[serde(skip)]
    start_micros: Option<i64>,
}

/// Every parent conversation, and the session files that could not be read.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub conversations: Vec<Conversation>,
    pub unreadable: Vec<crate::session::Unreadable>,
}

/// Summaries of every parent conversation, sorted by start time (then id). A session file
/// that cannot be read is skipped and named in [`Listing::unreadable`].
pub fn list(db: &Path, jsonl_dir: &Path) -> Result<Listing, ConversationsError> {
    let cap = Capture::open(db)?;
    let dir = SessionDir::scan(jsonl_dir)?;
    // The message-id pass and the session files' claims side by side (as the build).
    let (index, _) = rayon::join(
        || Capture::message_index_parallel(db, rayon::current_num_threads()),
        || dir.load_claims(),
    );
    let index = index?;
    // The API's figures of a fallback-twin turn are its first attempt's.
    let attempts = FirstAttempts::for_dir(&cap, &index, &dir)?;
    // Parent files are summarized in parallel (one connection per task), in file order.
    let caps = crate::capture::Pool::new(cap);
    let summarize = |path: &std::path::PathBuf| -> Result<
        Result<Conversation, crate::session::Unreadable>,
        ConversationsError,
    > {
        let cap = caps.get()?;
        let mut keys = crate::capture::KeyMaker::default();
        let log = match dir.read_parent(path) {
            Ok(log) => log,
            Err(e) => return Ok(Err(crate::session::Unreadable::new(path, &e))),
        };
        let mut counts = Counts::default();
        let rows = matched_rows(&cap, &index, &log, &mut counts)?;
        let (mut read, mut total, mut has_cache) = (0u64, 0u64, false);
        let mut times: Vec<Stamp> = Vec::new();
        for key in &rows {
            if let Some(t) = Stamp::parse(&key.timestamp) {
                times.push(t);
            }
            let usage = cap.with_row(&key.id, |r| {
                r.response
                    .and_then(Response::parse)
                    .map(|resp| attempts.usage_for(r, resp.usage, None, &mut keys))
            })?;
            if let Some(Some(u)) = usage {
                has_cache |= u.has_cache_fields();
                let r = u.cache_read.unwrap_or(0);
                read += r;
                total += u.input.unwrap_or(0) + r + u.cache_creation.unwrap_or(0);
            }
        }
        if times.is_empty() {
            times.extend(log.first_time);
            times.extend(log.last_time);
        }
        let first = times.iter().min_by_key(|t| t.micros).copied();
        let last = times.iter().max_by_key(|t| t.micros).copied();
        let mut models: Vec<String> = log
            .messages
            .iter()
            .filter_map(|m| m.model.clone())
            .collect();
        models.sort();
        models.dedup();
        let mut types: BTreeMap<String, usize> = BTreeMap::new();
        let mut subagent_requests = 0;
        for link in &log.links {
            let Some(agent_log) = dir.agent_log(&log, &link.agent_id) else {
                continue;
            };
            let kind = log
                .spawn_for(link)
                .and_then(|s| s.subagent_type.clone())
                .unwrap_or_else(|| "unknown".to_owned());
            *types.entry(kind).or_default() += 1;
            if let Ok(agent_log) = agent_log {
                subagent_requests += matched_rows(&cap, &index, &agent_log, &mut counts)?.len();
            }
        }
        Ok(Ok(Conversation {
            id: log.stem(),
            matched_requests: rows.len(),
            assistant_messages: log.message_ids.len(),
            start: first.map(|t| t.isoformat()),
            end: last.map(|t| t.isoformat()),
            duration_s: first.zip(last).map(|(a, b)| b.seconds_since(&a)),
            models,
            subagents: types.values().sum(),
            subagent_types: types,
            subagent_requests,
            api_cache_read: read,
            api_input_total: total,
            api_cache_read_pct: (has_cache && total > 0)
                .then(|| read as f64 / total as f64 * 100.0),
            start_micros: first.map(|t| t.micros),
        }))
    };
    use rayon::prelude::*;
    let summaries = dir
        .parents
        .par_iter()
        .map(summarize)
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    let mut unreadable = Vec::new();
    for s in summaries {
        match s {
            Ok(c) => out.push(c),
            Err(u) => unreadable.push(u),
        }
    }
    // Conversations without any time go last.
    out.sort_by(|a, b| {
        let key = |c: &Conversation| (c.start_micros.is_none(), c.start_micros);
        key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id))
    });
    Ok(Listing {
        conversations: out,
        unreadable,
    })
}

/// `Explore×4, Plan×1`.
pub fn types_text(types: &BTreeMap<String, usize>) -> String {
    types
        .iter()
        .map(|(k, n)| format!("{k}×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

const HEADER: [&str; 10] = [
    "conversation",
    "requests",
    "start",
    "end",
    "duration",
    "models",
    "sub-agents",
    "sub-agent types",
    "sub-agent requests",
    "API cache read",
];

fn table(rows: &[Conversation]) -> Table {
    let mut t = Table::new(&HEADER);
    for c in rows {
        let dur = c
            .duration_s
            .map_or(Cell::Empty, |d| Cell::Text(duration_text(d)));
        let text = |s: &Option<String>| s.clone().map(Cell::Text).unwrap_or(Cell::Empty);
        t.push(
            &c.id,
            vec![
                Cell::Text(format!("{}/{}", c.matched_requests, c.assistant_messages)),
                text(&c.start),
                text(&c.end),
                dur,
                Cell::Text(c.models.join(" ")),
                Cell::Num(c.subagents as f64, 0, false),
                Cell::Text(types_text(&c.subagent_types)),
                Cell::Num(c.subagent_requests as f64, 0, false),
                c.api_cache_read_pct
                    .map(|p| Cell::Num(p, 1, true))
                    .unwrap_or(Cell::Empty),
            ],
        );
    }
    t
}

/// An aligned plain-text table (numbers right-aligned), then a count line.
pub fn text(rows: &[Conversation]) -> String {
    let mut o = aligned(&table(rows));
    let requests: usize = rows.iter().map(|c| c.matched_requests).sum();
    let sub: usize = rows.iter().map(|c| c.subagents).sum();
    let _ = writeln!(
        o,
        "\n{} conversation(s), {} matched parent request(s), {} sub-agent(s)",
        rows.len(),
        group_thousands(&requests.to_string()),
        sub
    );
    o
}

/// CSV, one value per column: one row per conversation, duration in seconds, the
/// cache-read share in percent with one decimal, models `;`-separated, and one
/// `subagents_<type>` column per sub-agent type found in any conversation.
pub fn csv(rows: &[Conversation]) -> String {
    let types: std::collections::BTreeSet<&String> =
        rows.iter().flat_map(|c| c.subagent_types.keys()).collect();
    let mut header: Vec<String> = [
        "conversation",
        "matched_requests",
        "assistant_messages",
        "start",
        "end",
        "duration_s",
        "models",
        "subagents",
        "subagent_requests",
        "api_cache_read",
        "api_input_total",
        "api_cache_read_pct",
    ]
    .map(str::to_owned)
    .to_vec();
    header.extend(types.iter().map(|t| format!("subagents_{t}")));
    let opt = |s: &Option<String>| s.clone().unwrap_or_default();
    let records = rows.iter().map(|c| {
        let mut r = vec![
            c.id.clone(),
            c.matched_requests.to_string(),
            c.assistant_messages.to_string(),
            opt(&c.start),
            opt(&c.end),
            c.duration_s.map(|d| format!("{d:.0}")).unwrap_or_default(),
            c.models.join(";"),
            c.subagents.to_string(),
            c.subagent_requests.to_string(),
            c.api_cache_read.to_string(),
            c.api_input_total.to_string(),
            c.api_cache_read_pct
                .map(|p| format!("{p:.1}"))
                .unwrap_or_default(),
        ];
        r.extend(
            types
                .iter()
                .map(|t| c.subagent_types.get(*t).copied().unwrap_or(0).to_string()),
        );
        r
    });
    crate::report::table::csv_text(std::iter::once(header).chain(records))
}

/// A [`Table`] as aligned columns: text left-aligned, numbers right-aligned.
pub fn aligned(t: &Table) -> String {
    let mut grid: Vec<Vec<(String, bool)>> =
        vec![t.header.iter().map(|h| (h.clone(), false)).collect()];
    for (label, cells) in &t.rows {
        let mut row = vec![(label.clone(), false)];
        row.extend(
            cells
                .iter()
                .map(|c| (c.human(), matches!(c, Cell::Num(..)))),
        );
        grid.push(row);
    }
    let ncol = grid.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..ncol)
        .map(|i| {
            grid.iter()
                .filter_map(|r| r.get(i))
                .map(|(s, _)| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    // A column holding numbers has its header right-aligned too.
    let numeric: Vec<bool> = (0..ncol)
        .map(|i| grid.iter().any(|r| r.get(i).is_some_and(|c| c.1)))
        .collect();
    let mut o = String::new();
    for (k, row) in grid.iter().enumerate() {
        let mut line = String::new();
        for (i, (s, right)) in row.iter().enumerate() {
            let right = *right || (k == 0 && numeric[i]);
            let pad = widths[i].saturating_sub(s.chars().count());
            if i > 0 {
                line.push_str("  ");
            }
            if right {
                line.push_str(&" ".repeat(pad));
                line.push_str(s);
            } else {
                line.push_str(s);
                line.push_str(&" ".repeat(pad));
            }
        }
        o.push_str(line.trim_end());
        o.push('\n');
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_types() {
        assert_eq!(duration_text(12.4), "12s");
        assert_eq!(duration_text(187.0), "3m 07s");
        assert_eq!(duration_text(3725.0), "1h 02m 05s");
        assert_eq!(
            types_text(&BTreeMap::from([("Explore".into(), 4), ("Plan".into(), 1)])),
            "Explore×4, Plan×1"
        );
    }

    #[test]
    fn aligned_right_aligns_numbers() {
        let mut t = Table::new(&["a", "n"]);
        t.push("x", vec![Cell::Num(1234.0, 0, false)]);
        t.push("yy", vec![Cell::Num(5.0, 0, false)]);
        assert_eq!(aligned(&t), "a       n\nx   1,234\nyy      5\n");
    }
}
