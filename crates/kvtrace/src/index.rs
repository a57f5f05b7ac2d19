//! The message index and the conversation index (spec §5).
//!
//! `build-message-index` maps every response's `msg_` id to its request id and writes the
//! map as JSON. `build-conversation-index` is the only tool that writes to the capture:
//! it replaces one table, `conversation_index`, in a single transaction and never touches
//! `requests`.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use thiserror::Error;

use crate::capture::{Capture, CaptureError, MessageIndex};
use crate::pyjson::escape_str;
use crate::session::SessionLog;
use crate::trace::write_atomic;

#[derive(Debug, Error)]
pub enum IndexError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("{0}: no such directory")]
    MissingDir(PathBuf),
    #[error("{path}: {message}")]
    BadIndexFile { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// The message index as JSON text: `{"msg_…": "req-…", …}` with two-space indentation.
pub fn message_index_json(index: &MessageIndex) -> String {
    if index.is_empty() {
        return "{}".to_owned();
    }
    let mut out = String::from("{\n");
    for (i, (mid, rid)) in index.entries().iter().enumerate() {
        if i > 0 {
            out.push_str(",\n");
        }
        out.push_str("  \"");
        escape_str(mid, &mut out);
        out.push_str("\": \"");
        escape_str(rid, &mut out);
        out.push('"');
    }
    out.push_str("\n}");
    out
}

/// Summary of `build-message-index`.
#[derive(Debug, Clone, Serialize)]
pub struct MessageIndexSummary {
    pub rows: u64,
    pub rows_with_response: u64,
    pub rows_without_message_id: u64,
    /// Rows with no usable id (NULL, REAL, a non-UTF-8 BLOB): counted, not read. INTEGER
    /// ids are read as their decimal text.
    pub rows_without_id: u64,
    pub message_ids: usize,
    pub output: PathBuf,
}

/// Scan the capture and write the message index to `output` atomically.
pub fn write_message_index(db: &Path, output: &Path) -> Result<MessageIndexSummary, IndexError> {
    let index = Capture::message_index_parallel(db, rayon::current_num_threads())?;
    write_atomic(output, message_index_json(&index).as_bytes()).map_err(|source| {
        IndexError::Write {
            path: output.to_owned(),
            source,
        }
    })?;
    Ok(MessageIndexSummary {
        rows: index.rows,
        rows_with_response: index.with_response,
        rows_without_message_id: index.without_message_id,
        rows_without_id: index.without_id,
        message_ids: index.len(),
        output: output.to_owned(),
    })
}

/// Read a message index file written by [`write_message_index`] (or the reference).
pub fn read_message_index(path: &Path) -> Result<MessageIndex, IndexError> {
    let bad = |message: String| IndexError::BadIndexFile {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let serde_json::Value::Object(map) = value else {
        return Err(bad("not a JSON object".into()));
    };
    let mut index = MessageIndex::default();
    for (mid, rid) in map {
        if let serde_json::Value::String(rid) = rid {
            index.insert(mid, rid);
        }
    }
    Ok(index)
}

/// Summary of `build-conversation-index`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConversationIndexSummary {
    pub files: usize,
    pub message_ids: usize,
    pub matched: usize,
    pub rows_inserted: usize,
    pub unparseable_lines: usize,
    /// matched / message_ids, in percent.
    pub match_rate: f64,
    /// Session files that could not be read (skipped).
    pub unreadable_files: Vec<crate::session::Unreadable>,
}

/// Create or replace `conversation_index` from every `*.jsonl` under `projects`.
pub fn build_conversation_index(
    db: &Path,
    projects: &Path,
    message_index: Option<&Path>,
) -> Result<ConversationIndexSummary, IndexError> {
    if !projects.is_dir() {
        return Err(IndexError::MissingDir(projects.to_owned()));
    }
    // Validate the capture (read-only) before anything is written.
    let cap = Capture::open(db)?;
    let index = match message_index {
        Some(p) if p.is_file() => read_message_index(p)?,
        _ => Capture::message_index_parallel(cap.path(), rayon::current_num_threads())?,
    };
    // Symlinked files and folders are followed, as every other tool does (walkdir skips
    // link loops with an error entry, dropped here).
    let files = crate::session::dir::jsonl_files_below(projects);

    let sql = |source| IndexError::Sqlite {
        path: db.to_owned(),
        source,
    };
    let mut conn =
        Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(sql)?;
    let _ = conn.busy_timeout(std::time::Duration::from_secs(30));
    // Take the write lock up front: a deferred transaction that reads first and then
    // upgrades fails at once with "database is locked" while the proxy writes, without
    // waiting for the busy timeout.
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql)?;
    tx.execute_batch(
        "DROP TABLE IF EXISTS conversation_index;
         CREATE TABLE conversation_index (
             conversation_id TEXT NOT NULL,
             request_id TEXT NOT NULL,
             timestamp DATETIME NOT NULL,
             turn_number INTEGER,
             message_id TEXT,
             PRIMARY KEY (conversation_id, request_id));
         CREATE INDEX idx_conversation_index_conversation ON conversation_index(conversation_id);
         CREATE INDEX idx_conversation_index_message ON conversation_index(message_id);",
    )
    .map_err(sql)?;
    let mut summary = ConversationIndexSummary {
        files: files.len(),
        ..Default::default()
    };
    {
        let mut ts_of = tx
            .prepare("SELECT timestamp FROM requests WHERE id = ?1")
            .map_err(sql)?;
        let mut insert = tx
            .prepare(
                "INSERT OR IGNORE INTO conversation_index
                 (conversation_id, request_id, timestamp, turn_number, message_id)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(sql)?;
        for file in &files {
            let log = match SessionLog::read(file) {
                Ok(log) => log,
                Err(e) => {
                    summary
                        .unreadable_files
                        .push(crate::session::Unreadable::new(file, &e));
                    continue;
                }
            };
            summary.unparseable_lines += log.unparseable_lines;
            let conversation = crate::session::dir::stem(file);
            for m in &log.messages {
                let (turn, mid) = (m.assistant_line, &m.id);
                summary.message_ids += 1;
                let Some(rid) = index.get(mid) else { continue };
                let ts: Option<String> = ts_of
                    .query_row([rid], |r| r.get::<_, Option<String>>(0))
                    .unwrap_or(None);
                let Some(ts) = ts else { continue };
                summary.matched += 1;
                summary.rows_inserted += insert
                    .execute(rusqlite::params![conversation, rid, ts, turn as i64, mid])
                    .map_err(sql)?;
            }
        }
    }
    tx.commit().map_err(sql)?;
    if summary.message_ids > 0 {
        summary.match_rate = 100.0 * summary.matched as f64 / summary.message_ids as f64;
    }
    Ok(summary)
}
