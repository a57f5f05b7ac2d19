//! Which rows a session file names, and their order (spec §4.1).

use rustc_hash::FxHashSet;

use super::Counts;
use crate::capture::{Capture, CaptureError, MessageIndex};
use crate::session::SessionLog;
use crate::stamp::Stamp;

/// A matched row: request id and `timestamp` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowKey {
    pub id: String,
    pub timestamp: String,
}

/// Rows named by a session's message ids, ordered as §4.1 says. Only ids and timestamps
/// are read here; bodies are fetched one at a time when processed (bounded memory).
pub fn matched_rows(
    cap: &Capture,
    index: &MessageIndex,
    log: &SessionLog,
    counts: &mut Counts,
) -> Result<Vec<RowKey>, CaptureError> {
    let mut seen: FxHashSet<&str> = FxHashSet::default();
    let mut rows = Vec::new();
    for mid in &log.message_ids {
        let Some(rid) = index.get(mid) else {
            counts.unmatched_messages += 1;
            continue;
        };
        if !seen.insert(rid) {
            continue;
        }
        match cap.timestamp_of(rid)? {
            Some(timestamp) => rows.push(RowKey {
                id: rid.to_owned(),
                timestamp,
            }),
            None => counts.missing_rows += 1,
        }
    }
    // In time order: by the instant each timestamp names, so mixed zone offsets cannot give
    // negative times (spec §4.1 sorts the text, which is the same order when every row is
    // written in one zone, as the proxy writes them). Equal instants keep first-mention
    // order (stable sort); unreadable timestamps go last, by text (they are skipped later
    // and counted).
    rows.sort_by_cached_key(|r| {
        let instant = Stamp::parse(&r.timestamp).map(|s| s.micros);
        (
            instant.is_none(),
            instant,
            instant.is_none().then(|| r.timestamp.clone()),
        )
    });
    Ok(rows)
}
