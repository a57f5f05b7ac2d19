//! Unusable input: one `error: …` line on stderr and exit code 2, for every tool.

mod common;
use common::*;

/// Conversation e7a1 of the capture `db` into `--output out`.
fn one_conversation<'a>(db: &'a str, jsonl: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        db,
        "--jsonl-dir",
        jsonl,
        "--conversation-id",
        "e7a1",
        "--output",
        out,
    ]
}

fn assert_unusable(name: &str, args: &[&str], needle: &str) {
    let out = run(name, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("warning:"))
        .collect();
    assert_eq!(lines.len(), 1, "one line expected, got {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(
        lines[0].contains(needle),
        "{name}: {:?} lacks {needle:?}",
        lines[0]
    );
}

struct Bad {
    _dir: tempfile::TempDir,
    missing: String,
    not_sqlite: String,
    empty: String,
    no_table: String,
    jsonl: String,
    out: String,
}

fn bad_inputs() -> Bad {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    std::fs::write(
        dir.path().join("not.db"),
        "this is not a database, just text\n".repeat(100),
    )
    .unwrap();
    std::fs::write(dir.path().join("empty.db"), "").unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("other.db")).unwrap();
    conn.execute_batch("CREATE TABLE things (id TEXT)").unwrap();
    drop(conn);
    std::fs::create_dir(dir.path().join("jsonl")).unwrap();
    Bad {
        missing: p("missing.db"),
        not_sqlite: p("not.db"),
        empty: p("empty.db"),
        no_table: p("other.db"),
        jsonl: p("jsonl"),
        out: p("out"),
        _dir: dir,
    }
}

#[test]
fn build_minimal_traces_rejects_unusable_input() {
    let b = bad_inputs();
    let t = "build-minimal-traces";
    assert_unusable(
        t,
        &[&b.missing, "--jsonl-dir", &b.jsonl, "--output-dir", &b.out],
        "no such file",
    );
    assert_unusable(
        t,
        &[
            &b.not_sqlite,
            "--jsonl-dir",
            &b.jsonl,
            "--output-dir",
            &b.out,
        ],
        "not an SQLite database",
    );
    assert_unusable(
        t,
        &[&b.empty, "--jsonl-dir", &b.jsonl, "--output-dir", &b.out],
        "no `requests` table",
    );
    assert_unusable(
        t,
        &[&b.no_table, "--jsonl-dir", &b.jsonl, "--output-dir", &b.out],
        "no `requests` table",
    );
    let db = golden().join("capture/requests.db").display().to_string();
    assert_unusable(
        t,
        &[&db, "--jsonl-dir", &b.missing, "--output-dir", &b.out],
        "no such directory",
    );
    assert_unusable(
        t,
        &[&db, "--jsonl-dir", &b.jsonl, "--salt", "xyz"],
        "32 hexadecimal",
    );
    assert!(
        !std::path::Path::new(&b.out).exists(),
        "no output on failure"
    );
}

#[test]
fn index_tools_reject_unusable_input() {
    let b = bad_inputs();
    for db in [&b.missing, &b.not_sqlite, &b.empty, &b.no_table] {
        let out = format!("{}/idx.json", b.out);
        let out = out.as_str();
        let needle = if db == &b.missing {
            "no such file"
        } else if db == &b.not_sqlite {
            "not an SQLite"
        } else {
            "no `requests` table"
        };
        assert_unusable("build-message-index", &[db, "--output", out], needle);
        assert_unusable(
            "build-conversation-index",
            &[db, "--projects-path", &b.jsonl],
            needle,
        );
    }
    let db = golden().join("capture/requests.db").display().to_string();
    assert_unusable(
        "build-conversation-index",
        &[&db, "--projects-path", &b.missing],
        "no such directory",
    );
}

#[test]
fn unbounded_salt_files_and_thread_counts_are_refused() {
    let db = examples().join("requests.db").display().to_string();
    let jsonl = examples().join("jsonl").display().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out").display().to_string();
    let base = [db.as_str(), "--jsonl-dir", &jsonl, "--output-dir", &out];
    // /dev/zero would be read without end; a salt file is read a few hundred bytes at most.
    if std::path::Path::new("/dev/zero").exists() {
        assert_unusable(
            "build-minimal-traces",
            &[&base[..], &["--salt-file", "/dev/zero"]].concat(),
            "32 hexadecimal characters",
        );
    }
    let big = tmp.path().join("big.hex");
    std::fs::write(&big, "00112233445566778899aabbccddeeff".repeat(1000)).unwrap();
    assert_unusable(
        "build-minimal-traces",
        &[&base[..], &["--salt-file", big.to_str().unwrap()]].concat(),
        "32 hexadecimal characters",
    );
    // 100,000 threads would take minutes to spawn.
    let r = run(
        "build-minimal-traces",
        &[&base[..], &["--threads", "100000"]].concat(),
    );
    assert_eq!(r.status.code(), Some(2));
    assert!(!std::path::Path::new(&out).exists());
}

/// Copy a folder tree (files only).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for e in walkdir::WalkDir::new(from).into_iter().flatten() {
        let rel = e.path().strip_prefix(from).unwrap();
        if e.file_type().is_dir() {
            std::fs::create_dir_all(to.join(rel)).unwrap();
        } else {
            std::fs::copy(e.path(), to.join(rel)).unwrap();
        }
    }
}

#[test]
fn an_output_that_is_an_input_is_refused_and_the_input_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    copy_tree(&golden().join("capture"), &d.join("cap"));
    copy_tree(&golden().join("expected/run02"), &d.join("traces"));
    let db = d.join("cap/requests.db");
    let jsonl = d.join("cap/jsonl");
    let log = jsonl.join("e7a1c2b3-4d5e-4f60-8a9b-c0d1e2f3a4b5.jsonl");
    let trace = std::fs::read_dir(d.join("traces"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .next()
        .unwrap();
    // Another spelling of the capture: through `..`.
    let db_alias = d.join("cap/jsonl/../requests.db");
    let s = |p: &std::path::Path| p.display().to_string();
    let before: Vec<Vec<u8>> = [&db, &log, &trace]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let (db, jsonl, log, trace, alias) = (s(&db), s(&jsonl), s(&log), s(&trace), s(&db_alias));
    let traces = s(&d.join("traces"));
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("build-message-index", vec![&db, "--output", &alias]),
        ("build-minimal-traces", one_conversation(&db, &jsonl, &db)),
        ("build-minimal-traces", one_conversation(&db, &jsonl, &log)),
        ("visualize-cache", one_conversation(&db, &jsonl, &db)),
        (
            "validate-trace-cache",
            vec![&traces, "--db", &db, "--jsonl-dir", &jsonl, "--csv", &alias],
        ),
        (
            "validate-trace-cache",
            vec![&traces, "--db", &db, "--jsonl-dir", &jsonl, "--csv", &trace],
        ),
        (
            "export-traces",
            vec![&traces, "--format", "mooncake", "--output", &trace],
        ),
    ];
    for (tool, args) in &cases {
        assert_unusable(tool, args, "is one of this run's inputs");
    }
    let after: Vec<Vec<u8>> = [&db, &log, &trace]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(before == after, "an input changed");

    // merge-traces: one shard twice, or the output inside a shard.
    let shard = d.join("shard");
    build_shard(db.as_ref(), jsonl.as_ref(), &shard, &d.join("shard.idmap"));
    let merged = s(&d.join("merged"));
    assert_unusable(
        "merge-traces",
        &[
            &s(&shard),
            &format!("{}/", s(&shard)),
            "--output-dir",
            &merged,
        ],
        "given twice",
    );
    assert_unusable(
        "merge-traces",
        &[&s(&shard), "--output-dir", &s(&shard.join("sub"))],
        "inside the shard",
    );
    // recover-conversations: recovered logs never land among the real ones.
    assert_unusable(
        "recover-conversations",
        &[
            &db,
            "--output-dir",
            &format!("{jsonl}/rec"),
            "--validate-against",
            &jsonl,
        ],
        "inside the session logs",
    );
}

#[test]
fn a_folder_with_an_earlier_runs_outputs_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let out = d.join("out");
    let s = |p: &std::path::Path| p.display().to_string();
    let db = s(&golden().join("capture/requests.db"));
    let jsonl = s(&golden().join("capture/jsonl"));
    let build = |extra: &[&str]| {
        let mut args = vec![
            db.as_str(),
            "--jsonl-dir",
            jsonl.as_str(),
            "--salt",
            SALT,
            "-q",
        ];
        let o = s(&out);
        args.extend(["--output-dir", &o]);
        args.extend(extra);
        run("build-minimal-traces", &args)
    };
    // An earlier run: plain traces, plus a stale trace of a session no longer there and
    // files that are not traces.
    assert!(build(&[]).status.success());
    let first = dir_files(&out);
    let stale = out.join("0000stale000.json");
    std::fs::copy(out.join(&first[0].0), &stale).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    std::fs::write(out.join("config.json"), "{\"mine\": true}").unwrap();

    // A second run into it is refused, naming the flag; nothing changes.
    let before = dir_files(&out);
    let o = build(&["--anonymize"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("already holds") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(dir_files(&out), before);

    // --force: the new run replaces the earlier traces; other files are kept.
    let o = build(&["--anonymize", "--force"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let names: Vec<String> = dir_files(&out).into_iter().map(|(n, _)| n).collect();
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("trace_") || n == "notes.txt" || n == "config.json"),
        "{names:?}"
    );
    assert!(names.contains(&"notes.txt".to_owned()) && names.contains(&"config.json".to_owned()));
    assert!(!stale.exists());

    // recover-conversations and merge-traces follow the same policy.
    let rec = d.join("rec");
    let rec_s = s(&rec);
    let real = s(&fixtures().join("real/cc2.1-event-proxy/requests.db"));
    let recover = |force: bool| {
        let mut a = vec![real.as_str(), "--output-dir", rec_s.as_str(), "-q"];
        if force {
            a.push("--force");
        }
        run("recover-conversations", &a)
    };
    assert!(recover(false).status.success());
    assert!(std::fs::read_dir(&rec).unwrap().count() > 0);
    assert_eq!(recover(false).status.code(), Some(2));
    assert!(recover(true).status.success());
    let shard = d.join("shard");
    build_shard(db.as_ref(), jsonl.as_ref(), &shard, &d.join("shard.idmap"));
    let merged = s(&d.join("merged"));
    let merge = |force: bool| {
        let sh = s(&shard);
        let mut a = vec![sh.as_str(), "--output-dir", merged.as_str(), "-q"];
        if force {
            a.push("--force");
        }
        run("merge-traces", &a)
    };
    assert!(merge(false).status.success());
    assert_eq!(merge(false).status.code(), Some(2));
    assert!(merge(true).status.success());
}

#[test]
fn every_tool_ends_quietly_when_its_stdout_is_closed() {
    // `tool | head -0`: stdout's reader is gone before the tool writes. No panic (exit
    // 101), no error line: the tool ends as if its output had been read.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let s = |p: &std::path::Path| p.display().to_string();
    let db = s(&golden().join("capture/requests.db"));
    let jsonl = s(&golden().join("capture/jsonl"));
    let traces = s(&golden().join("expected/run02"));
    let copy = d.join("copy.db");
    std::fs::copy(golden().join("capture/requests.db"), &copy).unwrap();
    let shard = d.join("shard");
    build_shard(db.as_ref(), jsonl.as_ref(), &shard, &d.join("shard.idmap"));
    let out = |n: &str| s(&d.join(n));
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "build-minimal-traces",
            vec![
                db.clone(),
                "--jsonl-dir".into(),
                jsonl.clone(),
                "--output-dir".into(),
                out("t"),
                "--json".into(),
            ],
        ),
        (
            "build-message-index",
            vec![
                db.clone(),
                "--output".into(),
                out("i.json"),
                "--json".into(),
            ],
        ),
        (
            "build-conversation-index",
            vec![
                s(&copy),
                "--projects-path".into(),
                jsonl.clone(),
                "--json".into(),
            ],
        ),
        (
            "build-conversation-index",
            vec![s(&copy), "--projects-path".into(), jsonl.clone()],
        ),
        ("check-streams", vec![db.clone()]),
        (
            "export-traces",
            vec![
                traces.clone(),
                "--format".into(),
                "mooncake".into(),
                "--output".into(),
                out("m.jsonl"),
            ],
        ),
        (
            "list-conversations",
            vec![db.clone(), "--jsonl-dir".into(), jsonl.clone()],
        ),
        (
            "merge-traces",
            vec![
                s(&shard),
                "--output-dir".into(),
                out("merged"),
                "--json".into(),
            ],
        ),
        (
            "recover-conversations",
            vec![
                db.clone(),
                "--output-dir".into(),
                out("rec"),
                "--json".into(),
            ],
        ),
        ("session-stats", vec![jsonl.clone()]),
        ("trace-stats", vec![traces.clone()]),
        (
            "validate-trace-cache",
            vec![
                traces.clone(),
                "--db".into(),
                db.clone(),
                "--jsonl-dir".into(),
                jsonl.clone(),
            ],
        ),
        (
            "visualize-cache",
            vec![
                db.clone(),
                "--jsonl-dir".into(),
                jsonl.clone(),
                "--conversation-id".into(),
                "all".into(),
                "--timeline".into(),
            ],
        ),
    ];
    for (tool, args) in cases {
        let mut child = std::process::Command::new(bin(tool))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let got = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&got.stderr);
        assert!(!stderr.contains("panicked"), "{tool}: {stderr}");
        assert_ne!(got.status.code(), Some(101), "{tool}: {stderr}");
        assert!(
            !stderr.lines().any(|l| l.starts_with("error:")),
            "{tool}: {stderr}"
        );
    }
}

#[test]
fn every_tool_follows_the_cli_conventions() {
    // One convention across the tools: `--version` names the tool, `--help` shows a worked
    // example, and every tool takes `-q/--quiet` and `--json`.
    let bins = std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect::<Vec<_>>();
    assert_eq!(bins.len(), 12);
    for tool in &bins {
        let version = ok(tool, &["--version"]);
        assert!(
            version.starts_with(&format!("{tool} ")),
            "{tool}: {version}"
        );
        let help = ok(tool, &["--help"]);
        assert!(help.contains("EXAMPLE:"), "{tool}: no example in --help");
        for flag in ["--json", "--quiet", "-q,"] {
            assert!(help.contains(flag), "{tool}: no {flag} in --help");
        }
        // The session-log folder has one name wherever a tool takes one.
        assert!(
            !help.contains("--projects-path <"),
            "{tool}: --projects-path"
        );
        // A man page and completions from the tool's own flags.
        let man = ok(tool, &["--generate", "man"]);
        assert!(man.contains(&format!(".TH {tool} 1")), "{tool}: {man}");
        assert!(
            man.contains("\\-\\-json"),
            "{tool}: man page without --json"
        );
        let bash = ok(tool, &["--generate", "complete-bash"]);
        assert!(bash.contains("--quiet"), "{tool}: {bash}");
        assert!(
            bash.contains(&format!("complete -F _{}", tool.replace('-', "__"))),
            "{tool}"
        );
        let zsh = ok(tool, &["--generate", "complete-zsh"]);
        assert!(
            zsh.starts_with(&format!("#compdef {tool}")),
            "{tool}: {zsh}"
        );
        let fish = ok(tool, &["--generate", "complete-fish"]);
        assert!(fish.contains(&format!("complete -c {tool}")), "{tool}");
    }
}
