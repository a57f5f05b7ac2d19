//! Throughput of the build's inner kernels on a capture's own bytes, one core:
//! `cargo run --release -p kvtrace --example kernels -- requests.db [MB]`.
//!
//! Whole-program runs on the project's VM vary by ±15–30 %; a kernel timed alone over the
//! same bytes (median of 7) moves by a few percent, enough to tell a change to one of them
//! apart from noise. Reads every body and response in table order (bodies up to MB
//! megabytes, default 64, spread over the table by taking every k-th), then times:
//!
//! - `split_body`: locating a body's top-level members (the whole body lexed);
//! - `transcode`: each body's `messages` rewritten as CPython's `json.dumps` writes them;
//! - `pre-tok (scalar)`, `pre-tok (masks)`: that text cut into pre-tokenizer pieces by
//!   [`kvtrace::tokens::pretok::piece_end`] and by [`kvtrace::tokens::pretok::Pieces`];
//! - `tokenize`: that text encoded with one [`Encoder`] (its piece cache warm, as a
//!   worker's is), MB/s of text;
//! - `Response::parse`: every stored response's envelope;
//! - `message_id_of`: the message-id pass's look at each response.

use std::time::Instant;

use kvtrace::capture::Response;
use kvtrace::pyjson::{split_body, transcode};
use kvtrace::session::SessionLog;
use kvtrace::tokens::Encoder;
use rusqlite::{types::ValueRef, Connection, OpenFlags};

fn text(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Text(b) | ValueRef::Blob(b) => std::str::from_utf8(b).ok().map(str::to_owned),
        _ => None,
    }
}

/// Median seconds of 7 runs of `f`, and what the last run returned.
fn time<T>(mut f: impl FnMut() -> T) -> (f64, T) {
    let mut secs = Vec::new();
    let mut last = None;
    for _ in 0..7 {
        let t = Instant::now();
        let out = f();
        secs.push(t.elapsed().as_secs_f64());
        last = Some(out);
    }
    secs.sort_by(f64::total_cmp);
    (secs[secs.len() / 2], last.expect("seven runs"))
}

fn report(name: &str, bytes: usize, secs: f64) -> std::io::Result<()> {
    let mb = bytes as f64 / 1e6;
    say(&format!(
        "{name:<16} {mb:>8.1} MB {secs:>8.4} s {:>8.1} MB/s",
        mb / secs
    ))
}

/// A line on standard output; an error (a closed pipe) ends the run instead of a panic.
fn say(line: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    writeln!(std::io::stdout().lock(), "{line}")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: kernels requests.db [MB]")?;
    let budget: usize = args.next().map_or(Ok(64), |a| a.parse())? << 20;
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let total: usize = conn.query_row(
        "SELECT coalesce(sum(length(CAST(body AS BLOB))), 0) FROM requests",
        [],
        |r| r.get::<_, i64>(0),
    )? as usize;
    let every = total.div_ceil(budget.max(1)).max(1);
    let mut bodies = Vec::new();
    let mut responses = Vec::new();
    let mut stmt = conn.prepare("SELECT body, response FROM requests ORDER BY rowid")?;
    let mut rows = stmt.query([])?;
    let mut k = 0usize;
    while let Some(r) = rows.next()? {
        if k % every == 0 {
            bodies.extend(text(r.get_ref(0)?));
        }
        k += 1;
        responses.extend(text(r.get_ref(1)?));
    }
    say(&format!(
        "{} bodies (every {every}), {} responses",
        bodies.len(),
        responses.len()
    ))?;

    let body_bytes: usize = bodies.iter().map(String::len).sum();
    let (s, messages) = time(|| {
        bodies
            .iter()
            .filter_map(|b| split_body(b).ok()?.messages)
            .collect::<Vec<&str>>()
    });
    report("split_body", body_bytes, s)?;

    let raw_bytes: usize = messages.iter().map(|m| m.len()).sum();
    let (s, texts) = time(|| {
        messages
            .iter()
            .map(|m| {
                let mut out = String::with_capacity(m.len());
                transcode(m, &mut out).ok().map(|()| out)
            })
            .collect::<Vec<Option<String>>>()
    });
    report("transcode", raw_bytes, s)?;

    let texts: Vec<String> = texts.into_iter().flatten().collect();
    let text_bytes: usize = texts.iter().map(String::len).sum();
    let (s, pieces) = time(|| {
        texts
            .iter()
            .map(|t| {
                let (b, mut i, mut n) = (t.as_bytes(), 0, 0usize);
                while i < b.len() {
                    i = kvtrace::tokens::pretok::piece_end(b, i);
                    n += 1;
                }
                n
            })
            .sum::<usize>()
    });
    report("pre-tok (scalar)", text_bytes, s)?;
    let (s, masked) = time(|| {
        texts
            .iter()
            .map(|t| kvtrace::tokens::pretok::Pieces::new(t.as_bytes(), 0).count())
            .sum::<usize>()
    });
    report("pre-tok (masks)", text_bytes, s)?;
    say(&format!("{:<16} {pieces} pieces, {masked} by masks", ""))?;
    let mut encoder = Encoder::new();
    let (s, tokens) = time(|| texts.iter().map(|t| encoder.encode(t).len()).sum::<usize>());
    report("tokenize", text_bytes, s)?;
    say(&format!("{:<16} {tokens} tokens", ""))?;

    let response_bytes: usize = responses.iter().map(String::len).sum();
    let (s, parsed) = time(|| responses.iter().filter_map(|r| Response::parse(r)).count());
    report("Response::parse", response_bytes, s)?;
    let (s, ids) = time(|| {
        responses
            .iter()
            .filter_map(|r| Response::message_id_of(r))
            .count()
    });
    report("message_id_of", response_bytes, s)?;
    say(&format!("{:<16} {parsed} parsed, {ids} message ids", ""))?;

    // Session logs beside the capture (`jsonl/`, as synth-capture lays them out).
    let jsonl = std::path::Path::new(&path).with_file_name("jsonl");
    let logs: Vec<Vec<u8>> = walkdir::WalkDir::new(&jsonl)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect();
    if !logs.is_empty() {
        let log_bytes: usize = logs.iter().map(Vec::len).sum();
        let (s, entries) = time(|| {
            logs.iter()
                .map(|b| SessionLog::parse_bytes(b).entries)
                .sum::<usize>()
        });
        report("session logs", log_bytes, s)?;
        say(&format!(
            "{:<16} {} files, {entries} entries",
            "",
            logs.len()
        ))?;
    }
    Ok(())
}
