//! Reading a claude-code-proxy capture, `requests.db` (spec §2).
//!
//! The database is opened read-only (a proxy may still be writing to it) and rows are
//! streamed, never loaded as a table: real captures are many GB. The message-id map is
//! built from one pass over `(id, response)`; request bodies are then fetched by key,
//! one conversation at a time.

pub mod attempts;
pub mod envelope;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use rustc_hash::FxHashMap;
use thiserror::Error;

pub use attempts::{FirstAttempts, KeyMaker};
pub use envelope::{Response, StreamSummary, Usage};

/// Why a capture cannot be used at all (a damaged row is skipped instead).
#[derive(Debug, Error)]
pub enum CaptureError {
    #[error("{0}: no such file")]
    Missing(PathBuf),
    #[error("{0}: not an SQLite database")]
    NotSqlite(PathBuf),
    #[error("{0}: no `requests` table (is this a claude-code-proxy capture?)")]
    NoRequestsTable(PathBuf),
    #[error("{path}: table `requests` lacks column `{column}`")]
    MissingColumn { path: PathBuf, column: &'static str },
    #[error(
        "{0}: a writer stopped in the middle of a transaction and left a hot journal \
         ({0}-journal) that must be rolled back first; kvtrace reads captures read-only and \
         never does that. Stop the proxy, then open the database once with write access \
         (e.g. `sqlite3 {0} \"PRAGMA quick_check\"` as its owner) to roll the unfinished \
         transaction back, or do so on a copy of both files"
    )]
    HotJournal(PathBuf),
    /// SQLite refused to open the capture (e.g. a WAL capture on read-only media).
    #[error("{path}: cannot open: {source}")]
    Unopenable {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// Columns every tool needs.
const REQUIRED_COLUMNS: [&str; 4] = ["id", "timestamp", "body", "response"];

/// About how much of the file one memory-mapped range of the message-id scan covers.
pub const MAPPED_RANGE_BYTES: u64 = 16 << 20;

/// An open capture.
pub struct Capture {
    conn: Connection,
    path: PathBuf,
    /// Whether `requests` has a `headers` column (optional: older or other proxies).
    has_headers: bool,
}

impl Capture {
    /// Open read-only and check that this is a capture.
    pub fn open(path: &Path) -> Result<Capture, CaptureError> {
        if !path.is_file() {
            return Err(CaptureError::Missing(path.to_owned()));
        }
        // Any SQLite error while opening means this capture cannot be used (exit 2); one
        // in the middle of a scan is the run's failure (exit 1).
        let classify = |path: &Path, e| match classify(path, e) {
            CaptureError::Sqlite { path, source } => CaptureError::Unopenable { path, source },
            other => other,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| classify(path, e))?;
        // Wait for a writer's short transactions rather than failing.
        let _ = conn.busy_timeout(std::time::Duration::from_secs(10));
        let columns: Vec<String> = match conn.prepare("PRAGMA table_info(requests)") {
            Ok(mut stmt) => stmt
                .query_map([], |r| r.get::<_, String>(1))
                .and_then(|rows| rows.collect())
                .map_err(|e| classify(path, e))?,
            Err(e) => return Err(classify(path, e)),
        };
        if columns.is_empty() {
            return Err(CaptureError::NoRequestsTable(path.to_owned()));
        }
        for column in REQUIRED_COLUMNS {
            if !columns.iter().any(|c| c == column) {
                return Err(CaptureError::MissingColumn {
                    path: path.to_owned(),
                    column,
                });
            }
        }
        Ok(Capture {
            conn,
            path: path.to_owned(),
            has_headers: columns.iter().any(|c| c == "headers"),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `select` (a query of `requests` without an ORDER BY) prepared to return rows in
    /// rowid order; a table without rowids is read in its own order.
    fn in_table_order(&self, select: &str) -> Result<rusqlite::Statement<'_>, CaptureError> {
        self.conn
            .prepare(&format!("{select} ORDER BY rowid"))
            .or_else(|_| self.conn.prepare(select))
            .map_err(|e| classify(&self.path, e))
    }

    /// Stream `(id, response)` in table order, calling `f` for each row with a usable id;
    /// returns how many rows had none (NULL, a number that is not an integer, a BLOB that
    /// is not UTF-8).
    pub fn for_each_response(
        &self,
        mut f: impl FnMut(&str, Option<&str>),
    ) -> Result<u64, CaptureError> {
        let err = |e| classify(&self.path, e);
        let mut stmt = self.in_table_order("SELECT id, response FROM requests")?;
        let mut rows = stmt.query([]).map_err(err)?;
        let mut without_id = 0;
        while let Some(row) = rows.next().map_err(err)? {
            let Some(id) = id_of(row.get_ref(0).ok()) else {
                without_id += 1;
                continue;
            };
            let response = text_of(row.get_ref(1).ok());
            f(&id, response);
        }
        Ok(without_id)
    }

    /// Stream `(id, timestamp, id stored as TEXT)` in table order for each row with a
    /// usable id, reading neither `body` nor `response` (the columns before them are in
    /// the row's first page).
    pub fn for_each_timestamp(
        &self,
        mut f: impl FnMut(&str, Option<&str>, bool),
    ) -> Result<(), CaptureError> {
        let err = |e| classify(&self.path, e);
        let mut stmt = self.in_table_order("SELECT id, timestamp FROM requests")?;
        let mut rows = stmt.query([]).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let cell = row.get_ref(0).ok();
            let Some(id) = id_of(cell) else { continue };
            let text_id = matches!(cell, Some(rusqlite::types::ValueRef::Text(_)));
            f(&id, text_of(row.get_ref(1).ok()), text_id);
        }
        Ok(())
    }

    /// Stream every row in table order, borrowed in place, calling `f` for each.
    pub fn for_each_row(&self, f: impl FnMut(RowRef<'_>)) -> Result<(), CaptureError> {
        self.for_each_row_where(|_| true, f)
    }

    /// [`Capture::for_each_row`] for the rows whose id `want` accepts: the others' `body`
    /// and `response` are never read (reaching `response` walks the whole row).
    pub fn for_each_row_where(
        &self,
        mut want: impl FnMut(&str) -> bool,
        mut f: impl FnMut(RowRef<'_>),
    ) -> Result<(), CaptureError> {
        let err = |e| classify(&self.path, e);
        let mut stmt = self.in_table_order("SELECT id, timestamp, body, response FROM requests")?;
        let mut rows = stmt.query([]).map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            let Some(id) = id_of(r.get_ref(0).ok()) else {
                continue;
            };
            if !want(&id) {
                continue;
            }
            f(RowRef {
                id: &id,
                timestamp: text_of(r.get_ref(1).ok()).unwrap_or_default(),
                body: text_of(r.get_ref(2).ok()),
                response: text_of(r.get_ref(3).ok()),
            });
        }
        Ok(())
    }

    /// Message id → request id for every row whose response carries a `msg_` id
    /// (§5.1). When two rows carry one message id, the later row in table order wins.
    pub fn message_index(&self) -> Result<MessageIndex, CaptureError> {
        let mut index = MessageIndex::default();
        index.without_id = self.for_each_response(|id, response| {
            index.rows += 1;
            let Some(text) = response else { return };
            index.with_response += 1;
            match Response::message_id_of(text) {
                Some(mid) => index.insert(mid, id.to_owned()),
                None => index.without_message_id += 1,
            }
        })?;
        Ok(index)
    }

    /// [`Capture::message_index`] scanned as rowid ranges in parallel on the current rayon
    /// pool, merged in table order, so the result is identical.
    ///
    /// Reaching a row's `response` walks its `body`'s overflow chain, one page at a time:
    /// through `read` calls that is a copy of most of the file. Each range is read through
    /// a memory map instead (SQLite's `mmap_size`), where walking the chain touches one
    /// word per page: about a third of the time. Mapped pages count in the resident set
    /// while the map is open, so ranges cover about [`MAPPED_RANGE_BYTES`] of the file
    /// each, with a connection of their own, closed (and unmapped) when done.
    pub fn message_index_parallel(path: &Path, parts: usize) -> Result<MessageIndex, CaptureError> {
        let mut index = MessageIndex::default();
        let mut with_response = 0;
        let mut without_message_id = 0;
        let scanned = Capture::responses_parallel(path, parts, |id, response| {
            let text = response?;
            Some(Response::message_id_of(text).map(|mid| (mid, id.to_owned())))
        });
        let Some(scan) = scanned? else {
            return Capture::open(path)?.message_index();
        };
        for entry in scan.items {
            with_response += 1;
            match entry {
                Some((mid, rid)) => index.insert(mid, rid),
                None => without_message_id += 1,
            }
        }
        index.rows = scan.rows;
        index.without_id = scan.without_id;
        index.with_response = with_response;
        index.without_message_id = without_message_id;
        Ok(index)
    }

    /// `f(id, response)` of every row with a usable id, in table order, the values it
    /// returns kept: the rows read as rowid ranges in parallel on the current rayon pool,
    /// each range through its own memory-mapped connection (see
    /// [`Capture::message_index_parallel`]). `Ok(None)` when the table has no rowid (the
    /// caller scans it with [`Capture::for_each_response`]).
    pub fn responses_parallel<T: Send>(
        path: &Path,
        parts: usize,
        f: impl Fn(&str, Option<&str>) -> Option<T> + Sync,
    ) -> Result<Option<ResponseScan<T>>, CaptureError> {
        let scanned = Capture::ranges_parallel(path, parts, |cap, a, b| {
            let err = |e| classify(path, e);
            let mut stmt = cap
                .conn
                .prepare("SELECT id, response FROM requests WHERE rowid BETWEEN ?1 AND ?2 ORDER BY rowid")
                .map_err(err)?;
            let mut rows = stmt.query([a, b]).map_err(err)?;
            let mut part = ResponseScan::default();
            while let Some(row) = rows.next().map_err(err)? {
                let Some(id) = id_of(row.get_ref(0).ok()) else {
                    part.without_id += 1;
                    continue;
                };
                part.rows += 1;
                part.items.extend(f(&id, text_of(row.get_ref(1).ok())));
            }
            Ok(part)
        })?;
        Ok(scanned.map(|parts| {
            let mut all = ResponseScan::default();
            for part in parts {
                all.rows += part.rows;
                all.without_id += part.without_id;
                all.items.extend(part.items);
            }
            all
        }))
    }

    /// Every row with its `headers` text (`None` when NULL or the table has no such
    /// column), read as rowid ranges in parallel (each through its own memory-mapped
    /// connection, see [`Capture::message_index_parallel`]): `f(state, row, headers)` for
    /// each row with a usable id, with a fresh `state` per range; the values it returns in
    /// table order, and how many rows had a usable id and how many had none. `Ok(None)`
    /// when the table has no rowid.
    pub fn rows_parallel<S: Default, T: Send>(
        path: &Path,
        parts: usize,
        f: impl Fn(&mut S, RowRef<'_>, Option<&str>) -> T + Sync,
    ) -> Result<Option<(Vec<T>, u64, u64)>, CaptureError> {
        let headers = if Capture::open(path)?.has_headers {
            "headers"
        } else {
            "NULL"
        };
        let sql = format!(
            "SELECT id, timestamp, body, response, {headers} FROM requests \
             WHERE rowid BETWEEN ?1 AND ?2 ORDER BY rowid"
        );
        let scanned = Capture::ranges_parallel(path, parts, |cap, a, b| {
            let err = |e| classify(path, e);
            let mut stmt = cap.conn.prepare(&sql).map_err(err)?;
            let mut rows = stmt.query([a, b]).map_err(err)?;
            let mut state = S::default();
            let (mut out, mut without_id) = (Vec::new(), 0);
            while let Some(r) = rows.next().map_err(err)? {
                let Some(id) = id_of(r.get_ref(0).ok()) else {
                    without_id += 1;
                    continue;
                };
                let row = RowRef {
                    id: &id,
                    timestamp: text_of(r.get_ref(1).ok()).unwrap_or_default(),
                    body: text_of(r.get_ref(2).ok()),
                    response: text_of(r.get_ref(3).ok()),
                };
                out.push(f(&mut state, row, text_of(r.get_ref(4).ok())));
            }
            Ok((out, without_id))
        })?;
        Ok(scanned.map(|parts| {
            let (mut all, mut without_id) = (Vec::new(), 0);
            for (part, none) in parts {
                all.extend(part);
                without_id += none;
            }
            let rows = all.len() as u64;
            (all, rows, without_id)
        }))
    }

    /// [`Capture::for_each_row_where`] as rowid ranges in parallel (each through its own
    /// memory-mapped connection, see [`Capture::message_index_parallel`]): `f(state, rowid,
    /// row)` for every row with a usable id that `want` accepts, with a fresh `state` per
    /// range; the values it returns in table order. Rows `want` refuses are never read
    /// past their id. `Ok(None)` when the table has no rowid.
    pub fn rows_where_parallel<S: Default, T: Send>(
        path: &Path,
        parts: usize,
        want: impl Fn(&str) -> bool + Sync,
        f: impl Fn(&mut S, i64, RowRef<'_>) -> Option<T> + Sync,
    ) -> Result<Option<Vec<T>>, CaptureError> {
        let scanned = Capture::ranges_parallel(path, parts, |cap, a, b| {
            let err = |e| classify(path, e);
            let mut stmt = cap
                .conn
                .prepare(
                    "SELECT rowid, id, timestamp, body, response FROM requests \
                     WHERE rowid BETWEEN ?1 AND ?2 ORDER BY rowid",
                )
                .map_err(err)?;
            let mut rows = stmt.query([a, b]).map_err(err)?;
            let mut state = S::default();
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(err)? {
                let Some(id) = id_of(r.get_ref(1).ok()) else {
                    continue;
                };
                if !want(&id) {
                    continue;
                }
                let rowid = r.get::<_, i64>(0).map_err(err)?;
                let row = RowRef {
                    id: &id,
                    timestamp: text_of(r.get_ref(2).ok()).unwrap_or_default(),
                    body: text_of(r.get_ref(3).ok()),
                    response: text_of(r.get_ref(4).ok()),
                };
                out.extend(f(&mut state, rowid, row));
            }
            Ok(out)
        })?;
        Ok(scanned.map(|parts| parts.into_iter().flatten().collect()))
    }

    /// `scan(connection, first rowid, last rowid)` over rowid ranges of about
    /// [`MAPPED_RANGE_BYTES`] of the file (at least `parts` of them), in parallel on the
    /// current rayon pool, each with a connection of its own reading through a memory map;
    /// the results in table order. `Ok(None)` when the table has no rowid.
    fn ranges_parallel<P: Send>(
        path: &Path,
        parts: usize,
        scan: impl Fn(&Capture, i64, i64) -> Result<P, CaptureError> + Sync,
    ) -> Result<Option<Vec<P>>, CaptureError> {
        use rayon::prelude::*;
        let first = Capture::open(path)?;
        let bounds = first
            .conn
            .query_row("SELECT min(rowid), max(rowid) FROM requests", [], |r| {
                Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?))
            })
            .ok();
        let (lo, hi) = match bounds {
            Some((Some(lo), Some(hi))) => (lo, hi),
            // An empty table has no range to scan.
            Some((None, None)) => return Ok(Some(Vec::new())),
            _ => return Ok(None),
        };
        drop(first);
        let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
        let chunks = (bytes / MAPPED_RANGE_BYTES).max(parts as u64).max(1);
        let span = (hi - lo).unsigned_abs() + 1;
        let step = (span / chunks).max(1) as i64;
        let mut ranges = Vec::new();
        let mut a = lo;
        while a <= hi {
            let b = a.saturating_add(step - 1).min(hi);
            ranges.push((a, b));
            match b.checked_add(1) {
                Some(next) => a = next,
                None => break,
            }
        }
        ranges
            .par_iter()
            .map(|&(a, b)| {
                let cap = Capture::open(path)?;
                // Best effort: a scan without memory maps reads the same rows.
                let _ =
                    cap.conn
                        .pragma_update(None, "mmap_size", MAPPED_RANGE_BYTES.max(bytes) as i64);
                scan(&cap, a, b)
            })
            .collect::<Result<Vec<P>, CaptureError>>()
            .map(Some)
    }
}

/// What [`Capture::responses_parallel`] gathered.
#[derive(Debug)]
pub struct ResponseScan<T> {
    /// Rows with a usable id.
    pub rows: u64,
    /// Rows without one.
    pub without_id: u64,
    /// The values `f` returned, in table order.
    pub items: Vec<T>,
}

impl<T> Default for ResponseScan<T> {
    fn default() -> Self {
        ResponseScan {
            rows: 0,
            without_id: 0,
            items: Vec::new(),
        }
    }
}

/// Read-only connections to one capture, lent one per task: a connection is never shared
/// between threads, and each is reused by later tasks.
pub struct Pool {
    path: PathBuf,
    free: std::sync::Mutex<Vec<Capture>>,
}

impl Pool {
    /// A pool that starts with `first`.
    pub fn new(first: Capture) -> Pool {
        Pool {
            path: first.path.clone(),
            free: std::sync::Mutex::new(vec![first]),
        }
    }

    /// A connection of the pool, or a new one; it returns to the pool when dropped.
    pub fn get(&self) -> Result<Pooled<'_>, CaptureError> {
        let free = self.free.lock().ok().and_then(|mut f| f.pop());
        let cap = match free {
            Some(cap) => cap,
            None => Capture::open(&self.path)?,
        };
        Ok(Pooled {
            pool: self,
            cap: Some(cap),
        })
    }
}

/// A connection lent by a [`Pool`].
pub struct Pooled<'a> {
    pool: &'a Pool,
    cap: Option<Capture>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Capture;
    fn deref(&self) -> &Capture {
        self.cap
            .as_ref()
            .expect("a pooled connection is present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let (Some(cap), Ok(mut free)) = (self.cap.take(), self.pool.free.lock()) {
            free.push(cap);
        }
    }
}

/// A row as check-streams reads it: with `routed_model` when the table has that column.
#[derive(Debug, Clone, Copy)]
pub struct RoutedRow<'a> {
    pub id: &'a str,
    pub body: Option<&'a str>,
    pub response: Option<&'a str>,
    pub routed_model: Option<&'a str>,
}

impl Capture {
    /// Stream rows (only `only` when given) in table order with their `routed_model`
    /// (NULL when the table has no such column); `f` returns `false` to stop.
    pub fn for_each_routed_row(
        &self,
        only: Option<&str>,
        mut f: impl FnMut(RoutedRow<'_>) -> bool,
    ) -> Result<(), CaptureError> {
        let err = |e| classify(&self.path, e);
        let has_routed = {
            let mut stmt = self
                .conn
                .prepare("PRAGMA table_info(requests)")
                .map_err(err)?;
            let cols: Vec<String> = stmt
                .query_map([], |r| r.get::<_, String>(1))
                .and_then(|rows| rows.collect())
                .map_err(err)?;
            cols.iter().any(|c| c == "routed_model")
        };
        let routed = if has_routed { "routed_model" } else { "NULL" };
        let filter = if only.is_some() { " WHERE id = ?1" } else { "" };
        let base = format!("SELECT id, body, response, {routed} FROM requests{filter}");
        let mut stmt = self.in_table_order(&base)?;
        let mut rows = match only {
            Some(id) => stmt.query([id]),
            None => stmt.query([]),
        }
        .map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            let id = id_of(r.get_ref(0).ok()).unwrap_or_default();
            let go_on = f(RoutedRow {
                id: &id,
                body: text_of(r.get_ref(1).ok()),
                response: text_of(r.get_ref(2).ok()),
                routed_model: text_of(r.get_ref(3).ok()),
            });
            if !go_on {
                break;
            }
        }
        Ok(())
    }
}

/// A stored request borrowed from SQLite for the duration of a callback.
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    pub id: &'a str,
    pub timestamp: &'a str,
    pub body: Option<&'a str>,
    pub response: Option<&'a str>,
}

impl Capture {
    /// Run `f` on the row `id` selected by `sql` (one `?1` parameter); `None`: no such row.
    fn by_id<T>(
        &self,
        sql: &str,
        id: &str,
        f: impl FnOnce(&rusqlite::Row<'_>) -> T,
    ) -> Result<Option<T>, CaptureError> {
        let err = |e| classify(&self.path, e);
        let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
        let mut rows = stmt.query([id]).map_err(err)?;
        Ok(rows.next().map_err(err)?.map(f))
    }

    /// Run `f` inside one read transaction: the queries it makes see one snapshot of the
    /// capture, and SQLite takes its shared lock (and checks the file for a hot journal
    /// and for changes) once instead of once per query.
    pub fn in_snapshot<T>(
        &self,
        f: impl FnOnce() -> Result<T, CaptureError>,
    ) -> Result<T, CaptureError> {
        let err = |e| classify(&self.path, e);
        self.conn.execute_batch("BEGIN").map_err(err)?;
        let out = f();
        // A read transaction has nothing to commit; ending it releases the lock.
        let end = self.conn.execute_batch("COMMIT").map_err(err);
        let out = out?;
        end?;
        Ok(out)
    }

    /// The `timestamp` of a request id (`None`: no such row).
    pub fn timestamp_of(&self, id: &str) -> Result<Option<String>, CaptureError> {
        self.by_id("SELECT timestamp FROM requests WHERE id = ?1", id, |r| {
            text_of(r.get_ref(0).ok()).unwrap_or_default().to_owned()
        })
    }

    /// Run `f` on a row borrowed in place (no copy of its body), by request id.
    pub fn with_row<T>(
        &self,
        id: &str,
        f: impl FnOnce(RowRef<'_>) -> T,
    ) -> Result<Option<T>, CaptureError> {
        let sql = "SELECT id, timestamp, body, response FROM requests WHERE id = ?1";
        self.by_id(sql, id, |r| {
            f(RowRef {
                id,
                timestamp: text_of(r.get_ref(1).ok()).unwrap_or_default(),
                body: text_of(r.get_ref(2).ok()),
                response: text_of(r.get_ref(3).ok()),
            })
        })
    }
}

impl Capture {
    /// [`Capture::with_row`], `f` also given the row's stored `headers` text (for
    /// [`session_of_headers`]; `None` when NULL, unreadable or the table has no `headers`
    /// column): one query for both.
    pub fn with_row_headers<T>(
        &self,
        id: &str,
        f: impl FnOnce(RowRef<'_>, Option<&str>) -> T,
    ) -> Result<Option<T>, CaptureError> {
        let sql = if self.has_headers {
            "SELECT id, timestamp, body, response, headers FROM requests WHERE id = ?1"
        } else {
            "SELECT id, timestamp, body, response, NULL FROM requests WHERE id = ?1"
        };
        self.by_id(sql, id, |r| {
            let row = RowRef {
                id,
                timestamp: text_of(r.get_ref(1).ok()).unwrap_or_default(),
                body: text_of(r.get_ref(2).ok()),
                response: text_of(r.get_ref(3).ok()),
            };
            f(row, text_of(r.get_ref(4).ok()))
        })
    }
}

/// The `X-Claude-Code-Session-Id` request header in a stored `headers` JSON object
/// (current Claude Code sends it; a sub-agent's requests carry their parent's; the first
/// of a list of values); `None` when it is missing, empty or the text is not an object.
pub fn session_of_headers(text: &str) -> Option<String> {
    let Ok(serde_json::Value::Object(headers)) = serde_json::from_str(text) else {
        return None;
    };
    let value = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-claude-code-session-id"))
        .map(|(_, v)| v);
    match value {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Array(a)) => a.first().and_then(|v| v.as_str()).map(str::to_owned),
        _ => None,
    }
    .filter(|s| !s.is_empty())
}

/// A request id: TEXT (or UTF-8 BLOB) as stored, an INTEGER in decimal (a table whose
/// `id` column has INTEGER affinity finds it again by that text); `None` for NULL, a
/// REAL or a BLOB that is not UTF-8 (such rows are counted, never used).
fn id_of(v: Option<rusqlite::types::ValueRef<'_>>) -> Option<std::borrow::Cow<'_, str>> {
    match v? {
        rusqlite::types::ValueRef::Integer(i) => Some(i.to_string().into()),
        other => text_of(Some(other)).map(Into::into),
    }
}

/// A TEXT (or UTF-8 BLOB) cell as `&str`; `None` for NULL, numbers or invalid UTF-8.
fn text_of(v: Option<rusqlite::types::ValueRef<'_>>) -> Option<&str> {
    match v? {
        rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
            std::str::from_utf8(b).ok()
        }
        _ => None,
    }
}

fn classify(path: &Path, e: rusqlite::Error) -> CaptureError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if matches!(f.code, rusqlite::ErrorCode::NotADatabase) {
            return CaptureError::NotSqlite(path.to_owned());
        }
        if f.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK {
            return CaptureError::HotJournal(path.to_owned());
        }
    }
    CaptureError::Sqlite {
        path: path.to_owned(),
        source: e,
    }
}

/// Message id → request id in first-insertion order (a later row replaces the value,
/// keeping the position, as a Python dict does), with counts of what the scan saw.
#[derive(Debug, Default, Clone)]
pub struct MessageIndex {
    entries: Vec<(String, String)>,
    pos: FxHashMap<String, usize>,
    pub rows: u64,
    pub with_response: u64,
    pub without_message_id: u64,
    /// Rows with no usable id (NULL, REAL, a non-UTF-8 BLOB): not in `rows`, never used.
    pub without_id: u64,
}

impl MessageIndex {
    pub fn insert(&mut self, message_id: String, request_id: String) {
        match self.pos.get(&message_id) {
            Some(&i) => self.entries[i].1 = request_id,
            None => {
                self.pos.insert(message_id.clone(), self.entries.len());
                self.entries.push((message_id, request_id));
            }
        }
    }

    /// The request id of a message id.
    pub fn get(&self, message_id: &str) -> Option<&str> {
        self.pos
            .get(message_id)
            .map(|&i| self.entries[i].1.as_str())
    }

    /// `(message id, request id)` pairs in insertion order.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::session_of_headers;

    #[test]
    fn session_header_of_stored_headers() {
        let id = |t: &str| session_of_headers(t);
        let want = Some("s-1".to_owned());
        assert_eq!(id(r#"{"X-Claude-Code-Session-Id":"s-1"}"#), want);
        // Any case; the proxy may keep a header's values as a list (the first counts).
        assert_eq!(id(r#"{"x-claude-code-session-id":["s-1","s-2"]}"#), want);
        assert_eq!(id(r#"{"user-agent":"claude-cli/2.1.7"}"#), None);
        assert_eq!(id(r#"{"X-Claude-Code-Session-Id":""}"#), None);
        assert_eq!(id(r#"{"X-Claude-Code-Session-Id":7}"#), None);
        assert_eq!(id(r#"["X-Claude-Code-Session-Id"]"#), None);
        assert_eq!(id("not json"), None);
    }
}
