//! Trace documents: the output value model and layout ([`json`]) and atomic writes
//! (spec §4.5–§4.6).

pub mod doc;
pub mod json;
pub mod read;

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Write `bytes` to `path` atomically: a temporary file in the same directory, flushed
/// and renamed over the target, so readers never see a partial file.
///
/// `-` (and `/dev/stdout`) means standard output: the bytes are written there directly (a
/// rename over `/dev/stdout` would replace the file the shell redirected it to).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if is_stdout(path) {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)?;
        return out.flush();
    }
    // A device or FIFO (`--output /dev/null`, `/dev/stdout`) cannot be replaced atomically,
    // and renaming over it would replace the device node itself when run as root: write
    // through it instead.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
        f.write_all(bytes)?;
        return f.flush();
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".kvtrace-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_data()?;
    // Temporary files are created 0600; outputs get the usual 0644 (less the umask).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = tmp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// [`write_atomic`] after creating the file's folder (and its parents) if needed; on
/// failure, the path that could not be made (the folder, or the file) and why.
pub fn write_in_folder(path: &Path, bytes: &[u8]) -> Result<(), WriteFailure> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| (parent.to_owned(), e))?;
    }
    write_atomic(path, bytes).map_err(|e| (path.to_owned(), e))
}

/// Threads [`write_files_atomic`] writes with at most. Each waits on its file's flush to
/// disk far longer than it computes: several flushes in flight share the file system's
/// journal commits, so many small files take a few commits' time, not one each.
const WRITERS: usize = 8;

/// A failed write: the path that could not be made (a file's folder, or the file) and why.
pub type WriteFailure = (PathBuf, std::io::Error);

/// [`write_atomic`] of every `(path, text)`, its folder created first, on up to
/// [`WRITERS`] threads. On failure, the first file's (in the given order). Each file is
/// atomic; which of the others were written when one fails is not. A path given twice
/// ends with its last text, as if the files were written one after another.
pub fn write_files_atomic(files: &[(PathBuf, String)]) -> Result<(), WriteFailure> {
    let mut seen = std::collections::HashSet::new();
    let mut last: Vec<&(PathBuf, String)> = files
        .iter()
        .rev()
        .filter(|(path, _)| seen.insert(path))
        .collect();
    last.reverse();
    let files = last;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..WRITERS.min(files.len()) {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((path, text)) = files.get(k) else {
                    break;
                };
                if let Err(failure) = write_in_folder(path, text.as_bytes()) {
                    failures
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((k, failure));
                }
            });
        }
    });
    let failures = failures
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match failures.into_iter().min_by_key(|(k, _)| *k) {
        Some((_, failure)) => Err(failure),
        None => Ok(()),
    }
}

/// Whether an output path names standard output (`-` or `/dev/stdout`).
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-" || path.as_os_str() == "/dev/stdout"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_files_are_written_whole_and_the_first_failure_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<(PathBuf, String)> = (0..40)
            .map(|i| {
                let path = dir.path().join(format!("s{}/sub/f{i}.jsonl", i % 3));
                (path, format!("line {i}\n").repeat(i + 1))
            })
            .collect();
        write_files_atomic(&files).unwrap();
        for (path, text) in &files {
            assert_eq!(&std::fs::read_to_string(path).unwrap(), text);
        }
        // A folder that is a file: every file below it fails; the first in order is named,
        // by the folder that could not be made; the others are still written.
        std::fs::write(dir.path().join("blocker"), "x").unwrap();
        let mixed: Vec<(PathBuf, String)> = vec![
            (dir.path().join("ok/a.json"), "a".into()),
            (dir.path().join("blocker/x/b.json"), "b".into()),
            (dir.path().join("blocker/y/c.json"), "c".into()),
            (dir.path().join("ok/d.json"), "d".into()),
        ];
        let (path, _) = write_files_atomic(&mixed).unwrap_err();
        assert_eq!(path, dir.path().join("blocker/x"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("ok/d.json")).unwrap(),
            "d"
        );
        assert!(write_files_atomic(&[]).is_ok());
        // A path given twice ends with its last text.
        let twice: Vec<(PathBuf, String)> = (0..20)
            .map(|i| (dir.path().join("twice.json"), format!("{i}")))
            .collect();
        write_files_atomic(&twice).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("twice.json")).unwrap(),
            "19"
        );
    }
}
