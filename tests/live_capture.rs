//! Captures that are still being written: the readers succeed while a writer
//! appends rows, the writer is never blocked for long, and no tool but
//! build-conversation-index changes the database (that one is covered by
//! tests/index_tools.rs).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

mod common;
use common::{build_args, golden, ok, validate_args, visualize_all_args, SALT};

fn run(name: &str, args: &[&std::ffi::OsStr]) -> Output {
    let out = common::run(name, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    out
}

fn copy_golden_db(dir: &Path, journal: &str) -> PathBuf {
    let db = dir.join("requests.db");
    std::fs::copy(golden().join("capture/requests.db"), &db).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mode: String = conn
        .query_row(&format!("PRAGMA journal_mode={journal}"), [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode.to_lowercase(), journal.to_lowercase());
    db
}

/// Append rows (copies of a real row, ~100 KB bodies) until `stop`; returns the commit
/// latencies (BEGIN IMMEDIATE … COMMIT) and the number of rows written.
fn writer(db: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(Vec<Duration>, usize)> {
    std::thread::spawn(move || {
        let mut conn = rusqlite::Connection::open(&db).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        let pad = "x".repeat(100_000);
        let mut latencies = Vec::new();
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            let t0 = Instant::now();
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .unwrap();
            tx.execute(
                "INSERT INTO requests (id, timestamp, method, endpoint, headers, body, user_agent,
                                       content_type, response, model)
                 SELECT 'live-' || ?1, timestamp, method, endpoint, headers,
                        replace(body, '\"messages\": [', '\"pad\": \"' || ?2 || '\", \"messages\": ['),
                        user_agent, content_type, response, model
                 FROM requests WHERE id = 'req-0201'",
                rusqlite::params![n, pad],
            )
            .unwrap();
            tx.commit().unwrap();
            latencies.push(t0.elapsed());
            n += 1;
            std::thread::sleep(Duration::from_millis(3));
        }
        (latencies, n)
    })
}

fn live_capture(journal: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let db = copy_golden_db(tmp.path(), journal);
    let jsonl = golden().join("capture/jsonl");
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(db.clone(), stop.clone());
    for i in 0..4 {
        let out = tmp.path().join(format!("out{i}"));
        let flags = ["--salt", SALT, "--include-subagents", "--quiet"];
        common::build_traces(&db, &jsonl, &out, &flags);
        // The rows of the log's conversations were not touched: same traces every time.
        assert_eq!(
            common::dir_files(&out).len(),
            3,
            "{journal}: run {i} gave other traces"
        );
        let idx = tmp.path().join(format!("idx{i}.json"));
        ok(
            "build-message-index",
            &[
                db.as_os_str(),
                "--output".as_ref(),
                idx.as_os_str(),
                "--quiet".as_ref(),
            ],
        );
        let map: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&idx).unwrap()).unwrap();
        assert!(map.as_object().unwrap().len() >= 27);
        // The index writer takes its lock up front and waits for the proxy's commits
        // (a deferred transaction failed at once with "database is locked").
        ok(
            "build-conversation-index",
            &[
                db.as_os_str(),
                "--projects-path".as_ref(),
                jsonl.as_os_str(),
                "--quiet".as_ref(),
            ],
        );
    }
    stop.store(true, Ordering::SeqCst);
    let (latencies, rows) = w.join().unwrap();
    let worst = latencies.iter().max().copied().unwrap_or_default();
    eprintln!("{journal}: {rows} rows written, slowest commit {worst:?}");
    assert!(rows > 0, "the writer never committed");
    assert!(
        worst < Duration::from_secs(2),
        "{journal}: a commit waited {worst:?}"
    );
    let n: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM requests", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n as usize, 29 + rows);
}

#[test]
fn readers_and_a_writer_rollback_journal() {
    live_capture("DELETE");
}

#[test]
fn readers_and_a_writer_wal() {
    live_capture("WAL");
}

fn fingerprint(db: &Path) -> (Vec<u8>, SystemTime) {
    (
        std::fs::read(db).unwrap(),
        std::fs::metadata(db).unwrap().modified().unwrap(),
    )
}

/// Run every reading tool on `db`, checking after each that the file is byte-for-byte
/// unchanged with the same mtime.
fn readers_leave_db_untouched(db: &Path, scratch: &Path) {
    let jsonl = golden().join("capture/jsonl");
    let traces = golden().join("expected/run02");
    let before = fingerprint(db);
    let out = scratch.join("out");
    let idx = scratch.join("idx.json");
    let viz = scratch.join("viz");
    let cases: Vec<(&str, Vec<&std::ffi::OsStr>)> = vec![
        ("build-minimal-traces", build_args(db, &jsonl, &out)),
        (
            "build-message-index",
            vec![db.as_os_str(), "--output".as_ref(), idx.as_os_str()],
        ),
        ("check-streams", vec![db.as_os_str()]),
        (
            "list-conversations",
            vec![db.as_os_str(), "--jsonl-dir".as_ref(), jsonl.as_os_str()],
        ),
        ("visualize-cache", visualize_all_args(db, &jsonl, &viz)),
        ("validate-trace-cache", validate_args(&traces, db, &jsonl)),
    ];
    for (name, args) in cases {
        ok(name, &args);
        assert!(fingerprint(db) == before, "{name} changed {}", db.display());
    }
}

#[test]
fn readers_never_write_the_capture() {
    for journal in ["DELETE", "WAL"] {
        let tmp = tempfile::tempdir().unwrap();
        let db = copy_golden_db(tmp.path(), journal);
        // Let the mtime granularity show any write.
        std::thread::sleep(Duration::from_millis(20));
        readers_leave_db_untouched(&db, tmp.path());
    }
}

/// A read-only bind mount stops even root from writing: the strongest check we can make
/// as root (chmod 0444 does not stop root).
struct ReadOnlyMount(PathBuf);

impl ReadOnlyMount {
    fn new(src: &Path, target: &Path) -> Option<ReadOnlyMount> {
        std::fs::create_dir_all(target).ok()?;
        let run = |args: &[&std::ffi::OsStr]| {
            Command::new("mount")
                .args(args)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !run(&["--bind".as_ref(), src.as_os_str(), target.as_os_str()]) {
            return None;
        }
        let m = ReadOnlyMount(target.to_owned());
        run(&[
            "-o".as_ref(),
            "remount,ro,bind".as_ref(),
            target.as_os_str(),
        ])
        .then_some(m)
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn readers_work_on_a_read_only_file_system() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    copy_golden_db(&src, "DELETE");
    let wal_src = tmp.path().join("wal");
    std::fs::create_dir(&wal_src).unwrap();
    copy_golden_db(&wal_src, "WAL");
    let Some(ro) = ReadOnlyMount::new(&src, &tmp.path().join("ro")) else {
        common::unavailable("a read-only bind mount (mount --bind, as root)");
        return;
    };
    assert!(
        std::fs::write(ro.0.join("probe"), "x").is_err(),
        "the mount is writable"
    );
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    readers_leave_db_untouched(&ro.0.join("requests.db"), &scratch);

    // A WAL capture on read-only media cannot be opened by SQLite (it needs to create the
    // -shm file): one clear error line and exit 2, no panic (docs/robustness.md).
    let Some(ro_wal) = ReadOnlyMount::new(&wal_src, &tmp.path().join("ro-wal")) else {
        return;
    };
    let idx = scratch.join("wal-idx.json");
    let out = run(
        "build-message-index",
        &[
            ro_wal.0.join("requests.db").as_os_str(),
            "--output".as_ref(),
            idx.as_os_str(),
        ],
    );
    if !out.status.success() {
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(!idx.exists());
    }
}
