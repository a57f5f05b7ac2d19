//! Outputs never overwrite inputs: every tool names its inputs and checks each output path
//! against them before it opens anything for writing (exit 2 otherwise).
//!
//! Paths are compared after resolution (symlinks, `..`, relative paths; an output that does
//! not exist yet is resolved through its nearest existing ancestor), and existing files
//! also by device and inode, so a hard link or a second spelling is caught too.

use std::path::{Component, Path, PathBuf};

use crate::{unusable, Failure};

/// One input of a run.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A file that is read (a capture, a trace, a message index). A SQLite capture's
    /// journal, WAL and shared-memory files are covered too.
    File(&'a Path),
    /// A folder whose files with this extension are read (session logs: `jsonl`; traces:
    /// `json`): an output that is such a file, or the folder itself, is refused.
    Tree(&'a Path, &'a str),
}

/// The path as the file system will see it: absolute, symlinks of the existing part
/// resolved, `.`/`..` of the rest applied.
pub fn resolve(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_owned()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    if let Ok(c) = abs.canonicalize() {
        return c;
    }
    // Resolve the longest existing ancestor, then append the rest.
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    let mut base = abs.as_path();
    loop {
        if let Ok(c) = base.canonicalize() {
            let mut out = c;
            for part in rest.iter().rev() {
                match Path::new(part).components().next() {
                    Some(Component::ParentDir) => {
                        out.pop();
                    }
                    Some(Component::CurDir) => {}
                    _ => out.push(part),
                }
            }
            return out;
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                base = parent;
            }
            _ => return abs,
        }
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    resolve(a) == resolve(b)
}

/// Refuse (exit 2) an output path that is one of the inputs. `what` names the flag.
pub fn output_is_not_an_input(what: &str, output: &Path, inputs: &[Input]) -> Result<(), Failure> {
    let out = resolve(output);
    for input in inputs {
        let clash = match *input {
            Input::File(f) => {
                let mut files = vec![f.to_owned()];
                for suffix in ["-journal", "-wal", "-shm"] {
                    let mut s = f.as_os_str().to_owned();
                    s.push(suffix);
                    files.push(PathBuf::from(s));
                }
                files
                    .iter()
                    .any(|f| resolve(f) == out || same_file(f, output))
            }
            Input::Tree(dir, ext) => {
                let root = resolve(dir);
                out == root
                    || (out.starts_with(&root)
                        && out.extension().is_some_and(|x| x == ext)
                        && (!output.exists() || output.is_file()))
            }
        };
        if clash {
            return Err(unusable(anyhow::anyhow!(
                "{what} {} is one of this run's inputs; refusing to overwrite it",
                output.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_links_and_trees_are_caught() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("requests.db"), b"x").unwrap();
        std::fs::create_dir_all(d.join("logs/p")).unwrap();
        std::fs::write(d.join("logs/p/s.jsonl"), b"{}").unwrap();
        let db = d.join("requests.db");
        let logs = d.join("logs");
        let inputs = [Input::File(&db), Input::Tree(&logs, "jsonl")];
        let refused = |p: PathBuf| output_is_not_an_input("--output", &p, &inputs).is_err();
        assert!(refused(d.join("logs/../requests.db")));
        assert!(refused(d.join("requests.db-wal")));
        assert!(refused(d.join("logs/p/s.jsonl")));
        assert!(refused(d.join("logs/p/new.jsonl")));
        assert!(refused(d.join("logs")));
        std::fs::hard_link(&db, d.join("hard.db")).unwrap();
        assert!(refused(d.join("hard.db")));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&db, d.join("soft.db")).unwrap();
            assert!(refused(d.join("soft.db")));
        }
        assert!(!refused(d.join("out.json")));
        assert!(!refused(d.join("logs/p/trace.json")));
        assert!(!refused(d.join("new/dir/requests.db")));
    }
}

/// What an output folder may already hold from an earlier run.
#[derive(Debug, Clone, Copy)]
pub enum Earlier {
    /// Trace files (`*.json` with a trace's outline: `id`, `block_size`, `requests`).
    Traces,
    /// Session logs written by recover-conversations (`*-recovered*.jsonl` and their
    /// sub-agents' `*-recovered/subagents/agent-*.jsonl`).
    RecoveredLogs,
}

impl Earlier {
    /// Named like an output of this kind (cheap: the path alone).
    fn named_like(self, path: &Path) -> bool {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match self {
            Earlier::Traces => name.ends_with(".json"),
            Earlier::RecoveredLogs => {
                // `<stem>-recovered.jsonl`, or a sub-agent's file beside it:
                // `<stem>-recovered/subagents/agent-<id>.jsonl`.
                let component = |up: usize| {
                    path.ancestors()
                        .nth(up)
                        .and_then(Path::file_name)
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                };
                name.ends_with(".jsonl")
                    && (name.contains("-recovered")
                        || (name.starts_with("agent-")
                            && component(1) == "subagents"
                            && component(2).ends_with("-recovered")))
            }
        }
    }

    /// An output of this kind: named like one and, for traces, holding a trace's outline.
    fn holds(self, path: &Path) -> bool {
        self.named_like(path)
            && match self {
                Earlier::Traces => std::fs::read_to_string(path)
                    .is_ok_and(|t| kvtrace::trace::read::has_trace_outline(&t)),
                Earlier::RecoveredLogs => true,
            }
    }
}

/// The files of an output folder that may be outputs of an earlier run: named like one,
/// listed before the run. Whether each really is one (for traces: read and checked in
/// full) is decided only where it matters: when refusing the folder, and after a
/// successful `--force` run for the files it did not rewrite (the rewritten ones, usually
/// all of them, are never read back).
#[derive(Debug, Default)]
pub struct EarlierOutputs {
    kind: Option<Earlier>,
    candidates: Vec<PathBuf>,
}

impl EarlierOutputs {
    /// No folder to look at (a single `--output` file).
    pub fn none() -> EarlierOutputs {
        EarlierOutputs::default()
    }
}

/// The output-folder policy (docs/robustness.md, "Outputs"): a folder that already holds
/// outputs of this kind from an earlier run is refused (exit 2) unless `force`, so a new
/// run never mixes with an old one. With `force` the earlier files are returned, and the
/// caller removes those this run did not rewrite ([`remove_stale`]) once it succeeded.
pub fn earlier_outputs(
    flag: &str,
    dir: &Path,
    kind: Earlier,
    force: bool,
) -> Result<EarlierOutputs, Failure> {
    if !dir.is_dir() {
        return Ok(EarlierOutputs::none());
    }
    let mut candidates: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && kind.named_like(e.path()))
        .map(walkdir::DirEntry::into_path)
        .collect();
    candidates.sort();
    if !force {
        let mut found = candidates.iter().filter(|p| kind.holds(p));
        if let Some(first) = found.next() {
            return Err(unusable(anyhow::anyhow!(
                "{flag} {} already holds {} file(s) of an earlier run (e.g. {}); choose an empty \
                 folder, or pass --force to replace them",
                dir.display(),
                1 + found.count(),
                first.display()
            )));
        }
    }
    Ok(EarlierOutputs {
        kind: Some(kind),
        candidates,
    })
}

/// Remove the earlier outputs this run did not rewrite; returns how many were removed.
pub fn remove_stale(earlier: &EarlierOutputs, written: &[PathBuf]) -> Result<usize, Failure> {
    let Some(kind) = earlier.kind else {
        return Ok(0);
    };
    let written: std::collections::HashSet<PathBuf> = written.iter().map(|p| resolve(p)).collect();
    let mut removed = 0;
    for p in &earlier.candidates {
        if !written.contains(&resolve(p)) && kind.holds(p) {
            std::fs::remove_file(p)
                .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", p.display()))?;
            removed += 1;
        }
    }
    Ok(removed)
}
