//! The benchmark floor (docs/benchmarks.md): read every byte of `body` and `response` of
//! every row of a capture once, through SQLite with its default settings, and exit. What a
//! tool that must see the captured requests cannot beat by reading alone.
//!
//! `read-floor requests.db` prints `rows bytes checksum` (the checksum keeps the read from
//! being optimized away). `--mmap` reads through a memory map instead of `read` calls.

use anyhow::{Context, Result};
use rusqlite::{types::ValueRef, Connection, OpenFlags};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    let mut mmap = false;
    for a in args.by_ref() {
        match a.as_str() {
            "--mmap" => mmap = true,
            "-h" | "--help" => {
                println!("usage: read-floor [--mmap] requests.db");
                return Ok(());
            }
            _ => path = Some(a),
        }
    }
    let path = path.context("usage: read-floor [--mmap] requests.db")?;
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {path}"))?;
    if mmap {
        conn.pragma_update(None, "mmap_size", 1i64 << 40)?;
    }
    let mut stmt = conn.prepare("SELECT body, response FROM requests")?;
    let mut rows = stmt.query([])?;
    let (mut n, mut bytes, mut sum) = (0u64, 0u64, 0u64);
    while let Some(r) = rows.next()? {
        n += 1;
        for i in 0..2 {
            if let ValueRef::Text(b) | ValueRef::Blob(b) = r.get_ref(i)? {
                bytes += b.len() as u64;
                // Every byte is read: 8 at a time, folded into the checksum.
                let mut chunks = b.chunks_exact(8);
                for c in chunks.by_ref() {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(c);
                    sum = sum.rotate_left(1) ^ u64::from_le_bytes(w);
                }
                for &x in chunks.remainder() {
                    sum = sum.rotate_left(1) ^ u64::from(x);
                }
            }
        }
    }
    println!("{n} {bytes} {sum:016x}");
    Ok(())
}
