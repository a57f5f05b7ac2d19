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
    Command::new(bin("build-minimal-traces"))
        .args(args)
        .output()
        .unwrap()
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
