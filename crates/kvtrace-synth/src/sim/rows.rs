//! Proxy rows: the [`Row`] handed to the database writer and the per-conversation buffer that
//! holds rows until they can leave in request-time order (sub-agents interleave in time, so
//! rows are produced out of order and sorted by time, then creation order, on flush).

use super::Conv;
use crate::clock::{row_stamp, sqlite_stamp};
use crate::SynthError;
use std::sync::Arc;

/// One row of the `requests` table.
#[derive(Clone, Debug)]
pub struct Row {
    /// `id`
    pub id: String,
    /// `timestamp`
    pub timestamp: String,
    /// `headers`
    pub headers: Arc<str>,
    /// `body`
    pub body: String,
    /// `user_agent`
    pub user_agent: Arc<str>,
    /// `response` (NULL when None)
    pub response: Option<String>,
    /// `model`, `original_model`, `routed_model`
    pub model: &'static str,
    /// `created_at`
    pub created_at: String,
    at_ms: i64,
    seq: u64,
}

impl<'a> Conv<'a> {
    /// A `timestamp` column value in this conversation's style.
    fn ts(&self, ms: i64) -> String {
        row_stamp(ms, self.style)
    }

    /// Buffer a row for a request sent at `at`.
    pub(super) fn push_row(
        &mut self,
        at: i64,
        body: String,
        response: Option<String>,
        model: &'static str,
    ) {
        self.seq += 1;
        let row = Row {
            id: self.ids.row_id(&mut self.rng),
            timestamp: self.ts(at),
            headers: self.who.req_headers.clone(),
            body,
            user_agent: self.who.user_agent.clone(),
            response,
            model,
            created_at: sqlite_stamp(at),
            at_ms: at,
            seq: self.seq,
        };
        self.pending.push(row);
    }

    /// Emit every buffered row in time order.
    pub(super) fn flush(
        &mut self,
        emit: &mut dyn FnMut(Row) -> Result<(), SynthError>,
    ) -> Result<(), SynthError> {
        self.pending.sort_by_key(|r| (r.at_ms, r.seq));
        for r in self.pending.drain(..) {
            self.stats.rows += 1;
            emit(r)?;
        }
        Ok(())
    }
}
