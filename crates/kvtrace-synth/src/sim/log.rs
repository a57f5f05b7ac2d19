//! The session-log writer: one JSONL file per agent, each entry chained to the previous one
//! by `parentUuid` and laid out in Claude Code's key order, with a byte count for the stats.

use crate::clock::iso_ms;
use crate::json::{write_str, Dialect};
use crate::SynthError;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// A session-log file being written.
pub(super) struct Log {
    w: BufWriter<File>,
    last: Option<String>,
    common: String,
    tail: String,
    pub(super) bytes: u64,
}

impl Log {
    /// Create the file (and its directory); `common` is spliced into every entry and
    /// `agent_id`, for a sub-agent, closes every entry.
    pub(super) fn create(
        path: &Path,
        common: String,
        agent_id: Option<&str>,
    ) -> Result<Log, SynthError> {
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        let tail = agent_id
            .map(|a| format!(",\"agentId\":\"{a}\""))
            .unwrap_or_default();
        Ok(Log {
            w: BufWriter::with_capacity(1 << 16, File::create(path)?),
            last: None,
            common,
            tail,
            bytes: 0,
        })
    }

    /// Write one line as is (summaries, file-history snapshots).
    pub(super) fn raw(&mut self, line: &str) -> Result<(), SynthError> {
        self.w.write_all(line.as_bytes())?;
        self.w.write_all(b"\n")?;
        self.bytes += line.len() as u64 + 1;
        Ok(())
    }

    /// Write an entry in Claude Code's key order; `mid` holds `,"message":…` and friends,
    /// `after` fields that follow the timestamp (toolUseResult …).
    pub(super) fn entry(
        &mut self,
        id: &str,
        typ: &str,
        ts: i64,
        mid: &str,
        after: &str,
    ) -> Result<(), SynthError> {
        let mut s = String::with_capacity(mid.len() + after.len() + 400);
        s.push_str("{\"parentUuid\":");
        match &self.last {
            Some(u) => write_str(&mut s, u, Dialect::Js),
            None => s.push_str("null"),
        }
        s.push(',');
        s.push_str(&self.common);
        s.push_str(",\"type\":");
        write_str(&mut s, typ, Dialect::Js);
        s.push_str(mid);
        s.push_str(",\"uuid\":\"");
        s.push_str(id);
        s.push_str("\",\"timestamp\":\"");
        s.push_str(&iso_ms(ts));
        s.push('"');
        s.push_str(after);
        s.push_str(&self.tail);
        s.push('}');
        self.last = Some(id.to_string());
        self.raw(&s)
    }

    /// Flush and close; returns the bytes written.
    pub(super) fn finish(mut self) -> Result<u64, SynthError> {
        self.w.flush()?;
        Ok(self.bytes)
    }
}
