//! Writes cl100k_base's rank table as a compact blob (`OUT_DIR/cl100k_ranks.bin`) that the
//! tokenizer loads in a few milliseconds: building it at run time through tiktoken-rs costs
//! ~0.1 s of every process (docs/benchmarks.md). Format: for each rank 0, 1, …, a
//! little-endian u16 byte length then the token's bytes.

use std::io::Write;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let bpe = tiktoken_rs::cl100k_base().expect("tiktoken-rs ships cl100k_base");
    let mut blob = Vec::with_capacity(1 << 20);
    // Ordinary ranks are 0..100256; special tokens sit above and never merge.
    for rank in 0..100_256u32 {
        let bytes = bpe
            .decode_bytes(&[rank])
            .expect("every ordinary rank decodes");
        let len = u16::try_from(bytes.len()).expect("tokens are short");
        blob.extend_from_slice(&len.to_le_bytes());
        blob.extend_from_slice(&bytes);
    }
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("cl100k_ranks.bin");
    let mut f = std::fs::File::create(out).expect("OUT_DIR is writable");
    f.write_all(&blob).expect("OUT_DIR is writable");
}
