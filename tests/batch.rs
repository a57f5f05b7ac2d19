//! Batch runs over a manifest (one salt, one id space, a broken row skipped), and shards
//! merged with their id maps into exactly the ids of one global run.

use std::path::Path;
use std::process::Command;

mod common;
use common::*;

fn synth(dir: &Path, seed: u64) {
    let cfg = kvtrace_synth::Config {
        seed,
        conversations: 2,
        median_requests: 8,
        max_context_tokens: 30_000,
        ..kvtrace_synth::Config::default()
    };
    kvtrace_synth::generate(&cfg, dir).unwrap();
}

fn bmt(args: &[&str]) -> std::process::Output {
    common::run("build-minimal-traces", args)
}

fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in std::fs::read_dir(dir).unwrap() {
        let sub = sub.unwrap().path();
        if sub.is_dir() {
            for (name, bytes) in dir_files(&sub) {
                out.push((
                    format!("{}/{name}", sub.file_name().unwrap().to_string_lossy()),
                    bytes,
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn batch_global_ids_and_merged_shards_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    for (name, seed) in [("alpha", 21), ("beta", 22), ("gamma", 23)] {
        synth(&t.join(name), seed);
    }
    std::fs::write(t.join("broken.db"), "not a database at all").unwrap();
    let row = |n: &str| format!("{n},{n}/requests.db,{n}/jsonl\n");
    std::fs::write(
        t.join("all.csv"),
        format!(
            "name,db,jsonl_dir\n{}{}broken,broken.db,alpha/jsonl\n{}",
            row("alpha"),
            row("beta"),
            row("gamma")
        ),
    )
    .unwrap();
    std::fs::write(t.join("s1.csv"), row("alpha")).unwrap();
    std::fs::write(
        t.join("s2.csv"),
        format!(
            "{}broken,broken.db,alpha/jsonl\n{}",
            row("beta"),
            row("gamma")
        ),
    )
    .unwrap();
    let s = |p: &str| t.join(p).display().to_string();

    // One global run over the whole manifest; the broken row is reported and skipped.
    let out = bmt(&[
        "--batch",
        &s("all.csv"),
        "--output-dir",
        &s("global"),
        "--salt",
        SALT,
        "--global-hash-ids",
        "--include-subagents",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["failed"], 1);
    let csv = std::fs::read_to_string(t.join("global/batch_summary.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(
        csv.lines().nth(3).unwrap().starts_with("broken,") && csv.contains(",error,"),
        "{csv}"
    );
    let global = tree(&t.join("global"));
    assert!(global.iter().any(|(n, _)| n.starts_with("gamma/")));

    // Identical prefixes in different captures share ids: alpha's and beta's first
    // requests carry the same tool definitions, so beta's first trace starts at id 1 too.
    for cap in ["alpha", "beta"] {
        let (_, bytes) = global
            .iter()
            .find(|(n, _)| n.starts_with(&format!("{cap}/")))
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(v["requests"][0]["hash_ids"][0], 1, "{cap}");
    }

    // --strict turns the broken row into a failure.
    let strict = bmt(&[
        "--batch",
        &s("all.csv"),
        "--output-dir",
        &s("strict"),
        "--salt",
        SALT,
        "--strict",
        "-q",
    ]);
    assert!(!strict.status.success());

    // The same manifest as two shards with id maps, merged in manifest order.
    for shard in ["s1", "s2"] {
        let out = bmt(&[
            "--batch",
            &s(&format!("{shard}.csv")),
            "--output-dir",
            &s(&format!("shards/{shard}")),
            "--salt",
            SALT,
            "--global-hash-ids",
            "--include-subagents",
            "--id-map",
            &s(&format!("shards/{shard}.idmap")),
            "-q",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Shard 2 alone numbers its ids from 1, unlike the global run.
    assert_ne!(
        tree(&t.join("shards/s2")),
        global
            .iter()
            .filter(|(n, _)| !n.starts_with("alpha/"))
            .cloned()
            .collect::<Vec<_>>()
    );
    let merged = Command::new(env!("CARGO_BIN_EXE_merge-traces"))
        .args([
            s("shards/s1"),
            s("shards/s2"),
            "--output-dir".into(),
            s("merged"),
        ])
        .output()
        .unwrap();
    assert!(
        merged.status.success(),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    assert_eq!(
        tree(&t.join("merged")),
        global,
        "merged shards must equal the global run byte for byte"
    );

    // Local-scope shards (the default) have nothing to merge: refused, saying why.
    let local = bmt(&[
        "--batch",
        &s("s1.csv"),
        "--output-dir",
        &s("local/s1"),
        "--salt",
        SALT,
        "-q",
    ]);
    assert!(local.status.success());
    std::fs::write(t.join("local/s1.idmap"), "").unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_merge-traces"))
        .args([s("local/s1"), "--output-dir".into(), s("local-merged")])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("hash_id_scope is local"), "{err}");
    assert!(!t.join("local-merged").exists());

    // The id map is private and never written without the flag.
    assert!(!t.join("global").read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("idmap")));
}

/// Every trace file under `dir` (any depth), parsed: (path relative to `dir`, trace).
fn traces_below(dir: &Path) -> Vec<(String, serde_json::Value)> {
    let mut out: Vec<(String, serde_json::Value)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            (
                rel,
                serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn anonymized_ids_are_unique_across_a_batch_and_a_merge_and_collisions_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    for (name, seed) in [("alpha", 31), ("beta", 32)] {
        synth(&t.join(name), seed);
    }
    let row = |n: &str| format!("{n},{n}/requests.db,{n}/jsonl\n");
    std::fs::write(
        t.join("all.csv"),
        format!("{}{}", row("alpha"), row("beta")),
    )
    .unwrap();
    std::fs::write(t.join("s1.csv"), row("alpha")).unwrap();
    std::fs::write(t.join("s2.csv"), row("beta")).unwrap();
    let s = |p: &str| t.join(p).display().to_string();
    let batch = |manifest: &str, out: &str, map: Option<&str>, anonymize: bool| {
        let mut args = vec![
            "--batch".to_owned(),
            s(manifest),
            "--output-dir".into(),
            s(out),
            "--salt".into(),
            SALT.into(),
            "--global-hash-ids".into(),
            "-q".into(),
        ];
        if anonymize {
            args.push("--anonymize".into());
        }
        if let Some(m) = map {
            args.extend(["--id-map".to_owned(), s(m)]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = bmt(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    batch("all.csv", "global", None, true);
    let global = traces_below(&t.join("global"));
    let ids: Vec<&str> = global
        .iter()
        .map(|(_, v)| v["id"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (1..=ids.len()).map(|k| format!("trace_{k:04}")).collect();
    assert!(ids.len() >= 4);
    assert_eq!(ids, expected, "one numbering across the rows of a batch");

    // Shards number from trace_0001 each; the merge renumbers them as the batch did.
    batch("s1.csv", "shards/s1", Some("shards/s1.idmap"), true);
    batch("s2.csv", "shards/s2", Some("shards/s2.idmap"), true);
    let merge = |shards: &[String], out: &str| {
        let mut args: Vec<String> = shards.to_vec();
        args.extend(["--output-dir".to_owned(), s(out)]);
        Command::new(bin("merge-traces"))
            .args(&args)
            .output()
            .unwrap()
    };
    let o = merge(&[s("shards/s1"), s("shards/s2")], "merged");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        tree(&t.join("merged")),
        tree(&t.join("global"))
            .into_iter()
            .filter(|(n, _)| !n.ends_with(".csv"))
            .collect::<Vec<_>>(),
        "merged anonymized shards equal the batch byte for byte"
    );

    // Two shards holding one row name (traces named by session) would overwrite each
    // other: refused.
    batch("s1.csv", "named/s1", Some("named/s1.idmap"), false);
    batch("s1.csv", "again/s1", Some("again/s1.idmap"), false);
    let o = merge(&[s("named/s1"), s("again/s1")], "collide");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("same path"));
    assert!(!t.join("collide").exists());

    // A shard file that is not a trace (here a non-finite number) is refused.
    let (rel, _) = &traces_below(&t.join("shards/s2"))[0];
    let file = t.join("shards/s2").join(rel);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("\"t\": 0.0", "\"t\": NaN", 1)).unwrap();
    let o = merge(&[s("shards/s1"), s("shards/s2")], "nan");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a trace"));
    assert!(!t.join("nan").exists());

    // A batch row may not take the summary's name.
    std::fs::write(
        t.join("bad.csv"),
        "batch_summary.csv,alpha/requests.db,alpha/jsonl\n",
    )
    .unwrap();
    let o = bmt(&["--batch", &s("bad.csv"), "--output-dir", &s("bad"), "-q"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("summary file"));
}
