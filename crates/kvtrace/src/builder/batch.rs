//! Batch runs over many captures, id maps, and merging shards.
//!
//! A manifest (`name,db,jsonl_dir` rows) is processed with one salt and, by default, one
//! global hash-id space, so identical prefixes in different captures get the same ids.
//! Traces of row `name` go to `<output-dir>/<name>/`, and `batch_summary.csv` lists every
//! row. A batch too large for one machine is split into shards, each run anywhere with the
//! same salt and `--id-map FILE` (id → salted digest, private). [`merge_shards`] then
//! renumbers the shards, in manifest order, into the ids one global run would have given:
//! ids were handed out in first-appearance order inside each shard, so walking a shard's
//! ids in order and giving each new digest the next global id replays the global run.

use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

use super::{run_with, BuildError, BuildOptions, Output};
use crate::encode::blocks::IdMap;
use crate::trace::json::J;
use crate::trace::write_atomic;

/// One manifest row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRow {
    pub name: String,
    pub db: PathBuf,
    pub jsonl_dir: PathBuf,
}

#[derive(Debug, Error)]
pub enum BatchError {
    #[error("{path}: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("row {name}: {source}")]
    Row {
        name: String,
        #[source]
        source: BuildError,
    },
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("{path}: {message}")]
    Shard { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Read a manifest: CSV with columns `name,db,jsonl_dir` (a header row naming them is
/// optional); relative paths are taken from the manifest's folder.
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestRow>, BatchError> {
    let bad = |message: String| BatchError::Manifest {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut rows: Vec<ManifestRow> = Vec::new();
    for (n, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| bad(e.to_string()))?;
        if rec.iter().all(str::is_empty) {
            continue;
        }
        if n == 0 && rec.get(0) == Some("name") && rec.get(1) == Some("db") {
            continue;
        }
        let [name, db, jsonl] = [0, 1, 2].map(|i| rec.get(i).unwrap_or("").to_owned());
        if rec.len() != 3 || name.is_empty() || db.is_empty() || jsonl.is_empty() {
            return Err(bad(format!("line {}: expected name,db,jsonl_dir", n + 1)));
        }
        if name == "." || name == ".." || name.contains(['/', '\\']) {
            return Err(bad(format!(
                "line {}: name {name:?} must be a plain folder name",
                n + 1
            )));
        }
        if name == "batch_summary.csv" {
            return Err(bad(format!(
                "line {}: name {name:?} is the batch's own summary file",
                n + 1
            )));
        }
        if rows.iter().any(|r| r.name == name) {
            return Err(bad(format!("line {}: name {name:?} appears twice", n + 1)));
        }
        rows.push(ManifestRow {
            name,
            db: base.join(db),
            jsonl_dir: base.join(jsonl),
        });
    }
    if rows.is_empty() {
        return Err(bad("no rows".into()));
    }
    Ok(rows)
}

/// One row of `batch_summary.csv`.
#[derive(Debug, Clone, Serialize)]
pub struct RowSummary {
    pub name: String,
    pub db: String,
    pub jsonl_dir: String,
    pub status: String,
    pub traces: usize,
    pub requests: usize,
    pub subagents: usize,
    pub subagent_requests: usize,
    pub unique_blocks: usize,
    pub skipped: usize,
    pub error: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchSummary {
    pub rows: Vec<RowSummary>,
    pub failed: usize,
    pub unique_blocks: usize,
    pub summary_csv: PathBuf,
    pub id_map: Option<PathBuf>,
    /// Trace files written, every row.
    #[serde(skip)]
    pub files: Vec<PathBuf>,
}

impl BatchSummary {
    /// The human summary: one line per row, then the totals.
    pub fn text(&self) -> String {
        let mut o = String::new();
        for r in &self.rows {
            o.push_str(&match r.status.as_str() {
                "ok" => format!(
                    "{}: {} traces, {} requests, {} new unique blocks\n",
                    r.name, r.traces, r.requests, r.unique_blocks
                ),
                _ => format!("{}: skipped: {}\n", r.name, r.error),
            });
        }
        o.push_str(&format!(
            "{} rows ({} failed), {} unique blocks; summary in {}",
            self.rows.len(),
            self.failed,
            self.unique_blocks,
            self.summary_csv.display()
        ));
        o
    }
}

/// Run every manifest row with `template`'s options (salt, shape, threads). A row whose
/// capture is unusable is reported and skipped, or fails the batch with `strict`.
pub fn run_batch(
    template: &BuildOptions,
    rows: &[ManifestRow],
    output_dir: &Path,
    strict: bool,
    id_map: Option<&Path>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<BatchSummary, BatchError> {
    let mut ids = if id_map.is_some() {
        IdMap::with_digests()
    } else {
        IdMap::new()
    };
    let mut out = Vec::new();
    let mut failed = 0;
    let mut numbered = 0;
    let mut files = Vec::new();
    for row in rows {
        let mut opts = template.clone();
        opts.db = row.db.clone();
        opts.jsonl_dir = row.jsonl_dir.clone();
        opts.conversation_id = None;
        opts.output = Output::Dir(output_dir.join(&row.name));
        // Anonymized ids continue across rows: no two traces of a batch share an id.
        opts.first_trace_number = template.first_trace_number + numbered;
        let mut line = RowSummary {
            name: row.name.clone(),
            db: row.db.display().to_string(),
            jsonl_dir: row.jsonl_dir.display().to_string(),
            status: "ok".into(),
            traces: 0,
            requests: 0,
            subagents: 0,
            subagent_requests: 0,
            unique_blocks: 0,
            skipped: 0,
            error: String::new(),
        };
        // A local scope numbers each conversation anyway; a global one spans the batch.
        match run_with(&opts, &mut ids, progress) {
            Ok(s) => {
                numbered += s.traces;
                files.extend(s.files.iter().cloned());
                line.traces = s.traces;
                line.requests = s.parent_requests;
                line.subagents = s.subagents;
                line.subagent_requests = s.subagent_requests;
                line.unique_blocks = s.unique_blocks;
                line.skipped =
                    s.skipped.damaged() + s.skipped.missing_rows + s.skipped.missing_agent_files;
            }
            Err(e @ (BuildError::Capture(_) | BuildError::SessionDir(_))) if !strict => {
                failed += 1;
                line.status = "error".into();
                line.error = e.to_string();
            }
            Err(source) => {
                return Err(BatchError::Row {
                    name: row.name.clone(),
                    source,
                })
            }
        }
        out.push(line);
    }
    std::fs::create_dir_all(output_dir).map_err(|source| BatchError::Write {
        path: output_dir.to_owned(),
        source,
    })?;
    let summary_csv = output_dir.join("batch_summary.csv");
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in &out {
        w.serialize(r).map_err(|e| BatchError::Write {
            path: summary_csv.clone(),
            source: std::io::Error::other(e),
        })?;
    }
    let bytes = w.into_inner().map_err(|e| BatchError::Write {
        path: summary_csv.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    write_atomic(&summary_csv, &bytes).map_err(|source| BatchError::Write {
        path: summary_csv.clone(),
        source,
    })?;
    if let Some(path) = id_map {
        write_id_map(path, &ids)?;
    }
    Ok(BatchSummary {
        files,
        rows: out,
        failed,
        unique_blocks: ids.len(),
        summary_csv,
        id_map: id_map.map(Path::to_owned),
    })
}

/// Write an id map file (atomically, owner-readable only: it is keyed by the salt).
pub fn write_id_map(path: &Path, ids: &IdMap) -> Result<(), BatchError> {
    let w = |source| BatchError::Write {
        path: path.to_owned(),
        source,
    };
    write_atomic(path, ids.to_tsv().as_bytes()).map_err(w)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(w)?;
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct MergeSummary {
    pub shards: usize,
    pub traces: usize,
    pub unique_blocks: usize,
    /// Trace files written.
    #[serde(skip)]
    pub files: Vec<PathBuf>,
}

/// Renumber shard outputs into one id space. `shards` are (output folder, id-map file)
/// in manifest order; traces keep their paths relative to their shard folder.
pub fn merge_shards(
    shards: &[(PathBuf, PathBuf)],
    output_dir: &Path,
) -> Result<MergeSummary, BatchError> {
    // Two passes: every shard is read and renumbered before anything is written, so a
    // damaged shard (a file that is not a trace, a bad id map) leaves no partial output.
    let mut global = IdMap::new();
    let mut plan: Vec<(&Path, Vec<PathBuf>, Vec<u64>)> = Vec::new();
    // Anonymized ids (`trace_0001`, …) restart in every shard: they are renumbered across
    // the merge, in shard then file order, so no two merged traces share an id.
    let mut anonymized = 0usize;
    let mut targets: rustc_hash::FxHashMap<PathBuf, PathBuf> = rustc_hash::FxHashMap::default();
    for (dir, map) in shards {
        let text = std::fs::read_to_string(map).map_err(|e| BatchError::Shard {
            path: map.clone(),
            message: e.to_string(),
        })?;
        let digests = IdMap::parse_tsv(&text).map_err(|message| BatchError::Shard {
            path: map.clone(),
            message,
        })?;
        // Replaying first appearances in shard order gives the global run's ids.
        let new_ids: Vec<u64> = digests.iter().map(|&d| global.id(d)).collect();
        let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
            .sort_by_file_name()
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "json")
            })
            .map(walkdir::DirEntry::into_path)
            .collect();
        files.sort();
        for file in &files {
            let (rel, _) = merged_trace(dir, file, &new_ids, &mut anonymized)?;
            // Two shards writing one path (same batch row name, or same file name) would
            // replace each other's traces.
            if let Some(first) = targets.insert(rel.clone(), file.clone()) {
                return Err(BatchError::Shard {
                    path: file.clone(),
                    message: format!(
                        "would be merged to the same path ({}) as {}: rename one of the batch rows",
                        rel.display(),
                        first.display()
                    ),
                });
            }
        }
        plan.push((dir.as_path(), files, new_ids));
    }
    let mut traces = 0;
    let mut written = Vec::new();
    anonymized = 0;
    for (dir, files, new_ids) in &plan {
        for file in files {
            let (rel, bytes) = merged_trace(dir, file, new_ids, &mut anonymized)?;
            let target = output_dir.join(rel);
            crate::trace::write_in_folder(&target, bytes.as_bytes())
                .map_err(|(path, source)| BatchError::Write { path, source })?;
            traces += 1;
            written.push(target);
        }
    }
    Ok(MergeSummary {
        files: written,
        shards: shards.len(),
        traces,
        unique_blocks: global.len(),
    })
}

/// Whether a trace id is an anonymized one (`trace_0001`).
fn is_anonymized(id: &str) -> bool {
    id.strip_prefix("trace_")
        .is_some_and(|n| n.len() >= 4 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// One shard trace renumbered: its path in the merged folder (relative to the shard
/// folder, renamed with its new id when anonymized) and its new text. `anonymized` counts
/// the anonymized traces merged so far.
fn merged_trace(
    dir: &Path,
    file: &Path,
    new_ids: &[u64],
    anonymized: &mut usize,
) -> Result<(PathBuf, String), BatchError> {
    let shard_err = |message: String| BatchError::Shard {
        path: dir.to_owned(),
        message,
    };
    let rel = file
        .strip_prefix(dir)
        .map_err(|e| shard_err(e.to_string()))?;
    let text =
        std::fs::read_to_string(file).map_err(|e| shard_err(format!("{}: {e}", file.display())))?;
    // Only traces are merged (finite numbers, the fields a trace has).
    let trace = crate::trace::read::Trace::parse(&text)
        .map_err(|e| shard_err(format!("{}: not a trace ({e})", file.display())))?;
    let value =
        crate::pyjson::parse(&text).map_err(|e| shard_err(format!("{}: {e}", file.display())))?;
    if value.get("hash_id_scope") == Some(&crate::pyjson::Value::Str("local".into())) {
        return Err(shard_err(format!(
            "{}: hash_id_scope is local: each trace already has its own id space, so there is \
             nothing to merge (build the shards with a global hash-id scope to merge them)",
            file.display()
        )));
    }
    let mut doc = J::from_py(&value);
    renumber(&mut doc, new_ids).map_err(|m| shard_err(format!("{}: {m}", file.display())))?;
    let mut rel = rel.to_owned();
    if is_anonymized(&trace.id) {
        *anonymized += 1;
        let id = format!("trace_{:04}", *anonymized);
        if let J::Map(members) = &mut doc {
            if let Some((_, v)) = members.iter_mut().find(|(k, _)| k == "id") {
                *v = J::Str(id.clone());
            }
        }
        if rel.file_stem().is_some_and(|s| *s == *trace.id) {
            rel.set_file_name(format!("{id}.json"));
        }
    }
    Ok((rel, doc.to_layout()))
}

/// Replace every id in every `hash_ids` list (sub-agents included).
fn renumber(doc: &mut J, new_ids: &[u64]) -> Result<(), String> {
    match doc {
        J::Map(members) => {
            for (k, v) in members.iter_mut() {
                if k == "hash_ids" {
                    let J::List(ids) = v else {
                        return Err("hash_ids is not a list".into());
                    };
                    for id in ids.iter_mut() {
                        let old: usize = match id {
                            J::Raw(r) => r.parse().map_err(|_| format!("bad hash id {r}"))?,
                            _ => return Err("bad hash id".into()),
                        };
                        let new = old
                            .checked_sub(1)
                            .and_then(|i| new_ids.get(i))
                            .ok_or(format!("hash id {old} is not in the shard's id map"))?;
                        *id = J::Int(*new as i64);
                    }
                } else {
                    renumber(v, new_ids)?;
                }
            }
            Ok(())
        }
        J::List(items) => items.iter_mut().try_for_each(|x| renumber(x, new_ids)),
        _ => Ok(()),
    }
}
