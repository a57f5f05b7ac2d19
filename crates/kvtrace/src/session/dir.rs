//! A `--jsonl-dir`: parent session files and sub-agent files in both layouts (spec §3, §4.1).
//!
//! Parents are the top-level `*.jsonl` files whose names do not start with `agent-`,
//! sorted by file name. Sub-agents live in `agent-<agentId>.jsonl` beside the parents
//! (older Claude Code) or in `<session-id>/subagents/agent-<agentId>.jsonl` (newer).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum SessionDirError {
    #[error("{0}: no such directory")]
    Missing(PathBuf),
    #[error("{0}: no session file (*.jsonl) here nor in any project folder below")]
    Empty(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The session files of one directory.
#[derive(Debug, Clone, Default)]
pub struct SessionDir {
    pub root: PathBuf,
    /// Parent session files, sorted by file name.
    pub parents: Vec<PathBuf>,
    /// Agent id → agent file. The newer layout wins when both hold one id.
    pub agents: BTreeMap<String, PathBuf>,
    /// Responses and links named by several parent files (computed on first use).
    claims: std::sync::OnceLock<super::Claims>,
    /// Parent logs parsed by the claims pass, each kept until [`SessionDir::read_parent`]
    /// takes it, so a build parses every parent file once.
    parsed: Parsed,
}

/// Parsed parent logs by parent index (not cloned with the directory).
#[derive(Default)]
struct Parsed(std::sync::OnceLock<Vec<std::sync::Mutex<Option<super::SessionLog>>>>);

impl Clone for Parsed {
    fn clone(&self) -> Self {
        Parsed::default()
    }
}

impl std::fmt::Debug for Parsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Parsed")
    }
}

/// The claims pass keeps parsed parent logs while their files total at most this many
/// bytes (a parsed log is much smaller than its file); past it, files are parsed again.
const KEEP_PARSED_BYTES: u64 = 512 << 20;

impl SessionDir {
    /// Scan a project folder (`~/.claude/projects/<project>`) or the projects root (a
    /// folder of project folders: every project is read; session ids are UUIDs, unique
    /// across projects). A folder with no session file at all is an error.
    pub fn scan(root: &Path) -> Result<SessionDir, SessionDirError> {
        if !root.is_dir() {
            return Err(SessionDirError::Missing(root.to_owned()));
        }
        let mut dir = SessionDir {
            root: root.to_owned(),
            ..SessionDir::default()
        };
        let mut nested: Vec<(String, PathBuf)> = Vec::new();
        let projects = dir.scan_project(root, &mut nested)?;
        for project in projects {
            dir.scan_project(&project, &mut nested)?;
        }
        // Deterministic whatever the directory listing order: by path, later wins.
        nested.sort_by(|a, b| a.1.cmp(&b.1));
        for (id, path) in nested {
            dir.agents.insert(id, path);
        }
        dir.parents
            .sort_by(|a, b| a.file_name().cmp(&b.file_name()).then(a.cmp(b)));
        if dir.parents.is_empty() && dir.agents.is_empty() {
            return Err(SessionDirError::Empty(root.to_owned()));
        }
        Ok(dir)
    }

    /// Read one folder's session files; returns its sub-folders that look like project
    /// folders (they hold `*.jsonl` files of their own).
    fn scan_project(
        &mut self,
        folder: &Path,
        nested: &mut Vec<(String, PathBuf)>,
    ) -> Result<Vec<PathBuf>, SessionDirError> {
        let io = |source| SessionDirError::Io {
            path: folder.to_owned(),
            source,
        };
        let mut projects = Vec::new();
        for entry in std::fs::read_dir(folder).map_err(io)? {
            let entry = entry.map_err(io)?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                let sub = path.join("subagents");
                if sub.is_dir() {
                    nested.extend(agent_files(&sub));
                } else if holds_jsonl(&path) {
                    projects.push(path);
                }
                continue;
            }
            // Regular files only (symlinks followed): a FIFO named *.jsonl would block.
            if !name.ends_with(".jsonl") || !path.is_file() {
                continue;
            }
            match agent_id_of(&name) {
                Some(id) => {
                    self.agents.insert(id, path);
                }
                None => self.parents.push(path),
            }
        }
        projects.sort();
        Ok(projects)
    }

    /// Which parent file owns each response or link that several parent files name (a
    /// 1.0.x `-c` continuation opens with a copy of the previous chain). Reads every
    /// parent file once on first use, on this thread; callers about to read parents from
    /// parallel tasks call [`SessionDir::load_claims`] first.
    pub fn claims(&self) -> &super::Claims {
        self.claims.get_or_init(|| self.compute_claims(false))
    }

    /// Compute the claims now, reading the parent files in parallel (on the current rayon
    /// pool). Call it outside parallel tasks: a task that waits on the claims while they
    /// are computed on the same pool could be handed its own work back.
    pub fn load_claims(&self) -> &super::Claims {
        self.claims.get_or_init(|| self.compute_claims(true))
    }

    fn compute_claims(&self, parallel: bool) -> super::Claims {
        use rayon::prelude::*;
        use std::sync::atomic::{AtomicU64, Ordering};
        let kept = AtomicU64::new(0);
        let named = |(i, p): (usize, &PathBuf)| {
            let read = super::SessionLog::read(p);
            let readable = read.is_ok();
            let log = read.unwrap_or_default();
            let named = super::claims::Named::of(&log);
            let size = std::fs::metadata(p).map_or(u64::MAX, |m| m.len());
            // An unreadable file is read again by the caller, to report why.
            let keep = parallel
                && readable
                && kept.fetch_add(size.min(KEEP_PARSED_BYTES), Ordering::Relaxed) + size
                    <= KEEP_PARSED_BYTES;
            (i, named, keep.then_some(log))
        };
        let read: Vec<_> = if parallel {
            self.parents.par_iter().enumerate().map(named).collect()
        } else {
            self.parents.iter().enumerate().map(named).collect()
        };
        let mut logs = Vec::with_capacity(read.len());
        let mut named = Vec::with_capacity(read.len());
        for (i, n, log) in read {
            named.push((i, n));
            logs.push(std::sync::Mutex::new(log));
        }
        let _ = self.parsed.0.set(logs);
        super::Claims::from_named(named)
    }

    /// Read a parent session file, leaving out what an earlier file holds
    /// ([`SessionDir::claims`]). `path` should be one of [`SessionDir::parents`]; any other
    /// file is read as is.
    pub fn read_parent(&self, path: &Path) -> std::io::Result<super::SessionLog> {
        // Parents are sorted by (file name, path): a binary search, not a scan per read.
        let found = self.parents.binary_search_by(|p| {
            p.file_name()
                .cmp(&path.file_name())
                .then_with(|| p.as_path().cmp(path))
        });
        let Ok(i) = found else {
            return super::SessionLog::read(path);
        };
        let kept = self
            .parsed
            .0
            .get()
            .and_then(|logs| logs.get(i))
            .and_then(|m| m.lock().ok().and_then(|mut l| l.take()));
        let mut log = match kept {
            Some(log) => log,
            None => super::SessionLog::read(path)?,
        };
        self.claims().apply(i, &mut log);
        Ok(log)
    }

    /// Run `f` on parent file `i`'s log as the file holds it (nothing left out for the
    /// claims): the one the claims pass parsed and kept, when it did and no
    /// [`SessionDir::read_parent`] has taken it yet, else read now.
    pub fn with_raw_parent<T>(
        &self,
        i: usize,
        f: impl FnOnce(&super::SessionLog) -> T,
    ) -> std::io::Result<T> {
        let kept = self.parsed.0.get().and_then(|logs| logs.get(i));
        if let Some(guard) = kept.and_then(|m| m.lock().ok()) {
            if let Some(log) = guard.as_ref() {
                return Ok(f(log));
            }
        }
        let path = self.parents.get(i).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such parent file")
        })?;
        Ok(f(&super::SessionLog::read(path)?))
    }

    /// The log of a sub-agent linked from `parent`: written inline in the parent file
    /// (1.0.x sidechains), else its agent file. `None`: no such agent.
    pub fn agent_log(
        &self,
        parent: &super::SessionLog,
        agent_id: &str,
    ) -> Option<std::io::Result<super::SessionLog>> {
        if let Some(inline) = parent.inline_agent(agent_id) {
            return Some(Ok(inline.clone()));
        }
        self.agents
            .get(agent_id)
            .map(|p| super::SessionLog::read(p))
    }

    /// The file of a parent session by id: the exact stem, else a unique stem prefix.
    pub fn find_parent(&self, id: &str) -> Result<&Path, String> {
        if let Some(p) = self.parents.iter().find(|p| stem(p) == id) {
            return Ok(p);
        }
        let matches: Vec<&PathBuf> = self
            .parents
            .iter()
            .filter(|p| stem(p).starts_with(id))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one),
            [] => Err(format!("no session file for conversation id {id:?}")),
            many => Err(format!(
                "conversation id {id:?} matches {} session files",
                many.len()
            )),
        }
    }
}

/// Every `*.jsonl` regular file below `root`, at any depth (symlinks followed, link loops
/// skipped), sorted by path: what the tools that read "all logs" read (the conversation
/// index, session-stats).
pub fn jsonl_files_below(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .follow_links(true)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "jsonl"))
        .map(walkdir::DirEntry::into_path)
        .collect();
    files.sort();
    files
}

/// Whether a session file is a sub-agent's: `agent-<id>.jsonl` (in either layout).
pub fn is_agent_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| agent_id_of(n).is_some())
}

fn agent_id_of(name: &str) -> Option<String> {
    name.strip_prefix("agent-")?
        .strip_suffix(".jsonl")
        .map(str::to_owned)
}

/// Whether a folder directly holds a `*.jsonl` file (a project folder).
fn holds_jsonl(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
    })
}

fn agent_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf)> = rd
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            agent_id_of(&name)
                .filter(|_| e.path().is_file())
                .map(|id| (id, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// File stem as a string.
pub fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(id: &str, t: &str) -> String {
        format!(
            r#"{{"type":"assistant","timestamp":"{t}","message":{{"id":"{id}","content":[]}}}}"#
        )
    }

    #[test]
    fn a_raw_parent_is_the_file_as_written_whoever_parsed_it() {
        let tmp = tempfile::tempdir().unwrap();
        // File a (sorts first) opens with a later copy of b's first response.
        let a = [
            reply("msg_1", "2025-01-02T10:00:00.000Z"),
            reply("msg_3", "2025-01-02T10:01:00.000Z"),
        ];
        let b = [
            reply("msg_1", "2025-01-01T09:00:00.000Z"),
            reply("msg_2", "2025-01-01T09:01:00.000Z"),
        ];
        std::fs::write(tmp.path().join("a.jsonl"), a.join("\n")).unwrap();
        std::fs::write(tmp.path().join("b.jsonl"), b.join("\n")).unwrap();
        let raw =
            |dir: &SessionDir, i: usize| dir.with_raw_parent(i, |l| l.message_ids.clone()).unwrap();
        let dir = SessionDir::scan(tmp.path()).unwrap();
        // Before the claims pass: read from the file.
        assert_eq!(raw(&dir, 0), ["msg_1", "msg_3"]);
        dir.load_claims();
        // Kept by the claims pass: unchanged, and still there for read_parent, which
        // leaves out the response b claims.
        assert_eq!(raw(&dir, 0), ["msg_1", "msg_3"]);
        assert_eq!(raw(&dir, 1), ["msg_1", "msg_2"]);
        let taken = dir.read_parent(&dir.parents[0]).unwrap();
        assert_eq!(taken.message_ids, ["msg_3"]);
        // Taken: read from the file again, as written.
        assert_eq!(raw(&dir, 0), ["msg_1", "msg_3"]);
        assert!(dir.with_raw_parent(2, |_| ()).is_err());
    }
}
