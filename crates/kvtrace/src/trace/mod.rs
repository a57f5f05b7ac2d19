//! Trace documents: the output value model and layout ([`json`]) and atomic writes
//! (spec §4.5–§4.6).

pub mod doc;
pub mod json;
pub mod read;

use std::io::Write as _;
use std::path::Path;

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

/// Whether an output path names standard output (`-` or `/dev/stdout`).
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-" || path.as_os_str() == "/dev/stdout"
}
