//! Hardening, trace files that are not traces and outputs that cannot be written: exit 2
//! (or 1) with one line, never a partial file (spec §7).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

mod common;
use common::harness::*;
use common::{golden, SALT};

// ---------------------------------------------------------------------------------------
// Trace tools: files that are not traces
// ---------------------------------------------------------------------------------------

fn junk_traces(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("a.json"), "{\"not\": \"a trace\"}").unwrap();
    std::fs::write(dir.join("b.json"), "garbage").unwrap();
    std::fs::write(dir.join("c.json"), b"\xff\xfe{").unwrap();
    std::fs::write(dir.join("d.json"), deep(10_000)).unwrap();
    std::fs::write(
        dir.join("e.json"),
        "{\"id\": \"x\", \"block_size\": 64, \"requests\": [{\"t\": NaN, \"hash_ids\": [1e400]}]}",
    )
    .unwrap();
    std::fs::write(dir.join("f.json"), "").unwrap();
}

#[test]
fn trace_files_that_are_not_traces() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let junk = t.join("junk");
    junk_traces(&junk);
    let mixed = t.join("mixed");
    junk_traces(&mixed);
    copy_dir(&golden().join("expected/run02"), &mixed);
    let cap = golden().join("capture");
    let db = cap.join("requests.db");
    let jsonl = cap.join("jsonl");

    // trace-stats: warns per file, fails only when nothing is left.
    let r = run(
        "trace-stats",
        &[junk.as_os_str(), "--format".as_ref(), "json".as_ref()],
    );
    r.unusable().contains("no trace files");
    let r = run(
        "trace-stats",
        &[mixed.as_os_str(), "--format".as_ref(), "json".as_ref()],
    );
    r.json();
    assert_eq!(
        r.stderr
            .lines()
            .filter(|l| l.starts_with("warning: skipped"))
            .count(),
        6
    );

    // export-traces: any unreadable trace is unusable input; nothing is written.
    for dir in [&junk, &mixed] {
        let out = t.join("export.jsonl");
        let r = run(
            "export-traces",
            &[
                dir.as_os_str(),
                "--format".as_ref(),
                "mooncake".as_ref(),
                "--output".as_ref(),
                out.as_os_str(),
            ],
        );
        r.unusable().contains("not a trace");
        assert!(!out.exists());
    }

    // validate-trace-cache: a bad file is reported on its own line, the rest is validated.
    let r = run(
        "validate-trace-cache",
        &[
            mixed.as_os_str(),
            "--db".as_ref(),
            db.as_os_str(),
            "--jsonl-dir".as_ref(),
            jsonl.as_os_str(),
            "--json".as_ref(),
        ],
    );
    // The report covers every trace; the run fails (exit 1) for the one in error.
    let v = r.reported();
    assert_eq!(count(&v, "valid"), 3, "{v}");

    // merge-traces: a shard holding a file that is not a trace is refused as a whole.
    let shard = t.join("shard");
    let map = t.join("shard.idmap");
    shard_with_map(&db, &jsonl, &shard, &map);
    std::fs::write(shard.join("zz-garbage.json"), "garbage").unwrap();
    let merged = t.join("merged");
    let spec = format!("{}={}", shard.display(), map.display());
    let r = run(
        "merge-traces",
        &[spec.as_str(), "--output-dir", merged.to_str().unwrap()],
    );
    r.unusable().contains("zz-garbage.json");
    assert!(
        walk(&merged).is_empty(),
        "partial merge output: {:?}",
        walk(&merged)
    );
    std::fs::write(&map, "garbage\n").unwrap();
    std::fs::remove_file(shard.join("zz-garbage.json")).unwrap();
    run(
        "merge-traces",
        &[spec.as_str(), "--output-dir", merged.to_str().unwrap()],
    )
    .unusable()
    .contains("expected id");
    assert!(walk(&merged).is_empty());
    no_temp_files(t);
}

#[test]
fn session_stats_unusable_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    run("session-stats", &[missing.as_os_str()]).unusable();
    std::fs::create_dir(tmp.path().join("empty")).unwrap();
    let r = run("session-stats", &[tmp.path().join("empty").as_os_str()]);
    assert!(matches!(r.code, Some(0 | 2)), "{}", r.stderr);
    if r.code == Some(2) {
        r.unusable();
    }
}

// ---------------------------------------------------------------------------------------
// Outputs that cannot be written
// ---------------------------------------------------------------------------------------

/// Every tool that writes files, aimed at `target` (a directory path or a file path
/// inside it): (tool, arguments).
fn writers(target: &Path) -> Vec<(&'static str, Vec<OsString>)> {
    let cap = golden().join("capture");
    let db = cap.join("requests.db").into_os_string();
    let jsonl = cap.join("jsonl").into_os_string();
    let traces = golden().join("expected/run02").into_os_string();
    let t = |name: &str| target.join(name).into_os_string();
    let s = |x: &str| OsString::from(x);
    vec![
        (
            "build-minimal-traces",
            vec![
                db.clone(),
                s("--jsonl-dir"),
                jsonl.clone(),
                s("--output-dir"),
                t("out"),
                s("--salt"),
                s(SALT),
                s("--quiet"),
            ],
        ),
        (
            "build-minimal-traces",
            vec![
                db.clone(),
                s("--jsonl-dir"),
                jsonl.clone(),
                s("--conversation-id"),
                s("9d3e"),
                s("--output"),
                t("one.json"),
                s("--salt"),
                s(SALT),
                s("--quiet"),
            ],
        ),
        (
            "build-message-index",
            vec![db.clone(), s("--output"), t("idx.json")],
        ),
        (
            "export-traces",
            vec![
                traces.clone(),
                s("--format"),
                s("mooncake"),
                s("--output"),
                t("x.jsonl"),
            ],
        ),
        (
            "visualize-cache",
            vec![
                db.clone(),
                s("--jsonl-dir"),
                jsonl.clone(),
                s("--conversation-id"),
                s("all"),
                s("--output-dir"),
                t("viz"),
                s("--quiet"),
            ],
        ),
        (
            "validate-trace-cache",
            vec![
                traces.clone(),
                s("--db"),
                db.clone(),
                s("--jsonl-dir"),
                jsonl.clone(),
                s("--csv"),
                t("v.csv"),
            ],
        ),
    ]
}

#[test]
fn output_under_a_regular_file() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file.txt");
    std::fs::write(&file, "x").unwrap();
    for (tool, args) in writers(&file) {
        let r = run(tool, &args);
        r.failed_with(1);
    }
    assert_eq!(
        walk(tmp.path()),
        vec![file.clone()],
        "nothing else was created"
    );
    // merge-traces too.
    let tmp2 = tempfile::tempdir().unwrap();
    let shard = tmp2.path().join("shard");
    let map = tmp2.path().join("shard.idmap");
    let cap = golden().join("capture");
    shard_with_map(&cap.join("requests.db"), &cap.join("jsonl"), &shard, &map);
    let spec = format!("{}={}", shard.display(), map.display());
    let r = run(
        "merge-traces",
        &[
            spec.as_str(),
            "--output-dir",
            file.join("m").to_str().unwrap(),
        ],
    );
    assert!(matches!(r.code, Some(1 | 2)), "{}", r.stderr);
    assert_eq!(r.error_lines().len(), 1, "{}", r.stderr);
    no_temp_files(tmp.path());
}

fn is_char_device(p: &str) -> bool {
    use std::os::unix::fs::FileTypeExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.file_type().is_char_device())
}

#[test]
fn device_outputs_are_written_through_not_replaced() {
    // Renaming a temporary file over /dev/null or /dev/full would replace the device node
    // when run as root; devices are written through instead.
    if !is_char_device("/dev/full") || !is_char_device("/dev/null") {
        common::unavailable("/dev/full and /dev/null");
        return;
    }
    let cap = golden().join("capture");
    let db = cap.join("requests.db");
    let traces = golden().join("expected/run02");
    for dev in ["/dev/null", "/dev/full"] {
        let r = run(
            "build-message-index",
            &[db.as_os_str(), "--output".as_ref(), dev.as_ref()],
        );
        let r2 = run(
            "export-traces",
            &[
                traces.as_os_str(),
                "--format".as_ref(),
                "mooncake".as_ref(),
                "--output".as_ref(),
                dev.as_ref(),
            ],
        );
        assert!(is_char_device(dev), "{dev} was replaced");
        for r in [r, r2] {
            if dev == "/dev/full" {
                r.failed_with(1).contains("No space left");
            } else {
                r.ok();
            }
        }
    }
}

/// A 64 KiB tmpfs, unmounted on drop; `None` where mounting is not allowed.
struct Tmpfs(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mnt)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(mnt, dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn disk_full() {
    let Some(fs) = Tmpfs::mount("64k") else {
        common::unavailable("a 64 KiB tmpfs (mount -t tmpfs, as root)");
        return;
    };
    let root = fs.0.clone();
    // Leave a few KiB free: enough for the first small file, not for everything.
    let filler = root.join("filler");
    std::fs::write(&filler, vec![0u8; 52 * 1024]).unwrap();
    for (tool, args) in writers(&root) {
        let r = run(tool, &args);
        assert!(
            matches!(r.code, Some(0 | 1)),
            "{}: {:?} {}",
            r.what,
            r.code,
            r.stderr
        );
        if r.code == Some(1) {
            r.failed_with(1);
        }
        no_temp_files(&root);
    }
    // Whatever was written is complete.
    complete_traces(&root.join("out"));
    if let Ok(text) = std::fs::read_to_string(root.join("idx.json")) {
        serde_json::from_str::<Value>(&text).expect("complete index");
    }
    // Nothing fits now: every writer fails cleanly.
    let pad = root.join("pad");
    let used: u64 = walk(&root)
        .iter()
        .map(|f| f.metadata().unwrap().len())
        .sum();
    let free = (64 * 1024u64).saturating_sub(used);
    let _ = std::fs::write(&pad, vec![0u8; free as usize]);
    let _ = std::fs::write(root.join("pad2"), vec![0u8; 4096]);
    let before = walk(&root);
    let r = run(
        "build-message-index",
        &[
            golden().join("capture/requests.db").as_os_str(),
            "--output".as_ref(),
            root.join("idx2.json").as_os_str(),
        ],
    );
    r.failed_with(1);
    assert_eq!(walk(&root), before, "no partial index");
    let r = run(
        "build-minimal-traces",
        &[
            golden().join("capture/requests.db").as_os_str(),
            "--jsonl-dir".as_ref(),
            golden().join("capture/jsonl").as_os_str(),
            "--output-dir".as_ref(),
            root.join("out2").as_os_str(),
            "--salt".as_ref(),
            SALT.as_ref(),
            "--quiet".as_ref(),
        ],
    );
    r.failed_with(1);
    no_temp_files(&root);
    assert_eq!(complete_traces(&root.join("out2")), 0);
}

/// A build with global ids into `shard`, writing its id map to `map` (a batch shard).
fn shard_with_map(db: &Path, jsonl: &Path, shard: &Path, map: &Path) {
    run(
        "build-minimal-traces",
        &[
            db.as_os_str(),
            "--jsonl-dir".as_ref(),
            jsonl.as_os_str(),
            "--output-dir".as_ref(),
            shard.as_os_str(),
            "--salt".as_ref(),
            SALT.as_ref(),
            "--global-hash-ids".as_ref(),
            "--id-map".as_ref(),
            map.as_os_str(),
            "--quiet".as_ref(),
        ],
    )
    .ok();
}
