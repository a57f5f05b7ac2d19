//! Identifiers (message ids, tool ids, request ids, uuids, agent ids) and the seedable RNG.
//!
//! Ids that must be unique (message ids, row ids, agent ids) embed a bijective mix of a
//! per-run unique counter, so uniqueness never depends on luck; the rest is random.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The RNG used everywhere: ChaCha8 is portable and stable across crate versions.
pub type SynthRng = ChaCha8Rng;

/// SplitMix64 finalizer: a bijection on u64 with good avalanche.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A deterministic RNG for stream `stream` of run seed `seed`.
pub fn rng_for(seed: u64, stream: u64) -> SynthRng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&mix64(seed).to_le_bytes());
    key[8..16].copy_from_slice(&mix64(seed ^ 0x5bd1_e995).to_le_bytes());
    key[16..24].copy_from_slice(&mix64(stream.wrapping_add(0x2545_F491)).to_le_bytes());
    key[24..].copy_from_slice(&stream.to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

const B62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn push_b62_fixed(out: &mut String, mut v: u64, width: usize) {
    let mut buf = [b'0'; 16];
    for i in (0..width).rev() {
        buf[i] = B62[(v % 62) as usize];
        v /= 62;
    }
    out.push_str(std::str::from_utf8(&buf[..width]).unwrap_or_default());
}

fn push_b62_random(out: &mut String, rng: &mut SynthRng, n: usize) {
    for _ in 0..n {
        out.push(B62[rng.gen_range(0..62)] as char);
    }
}

/// Unique-id source for one conversation (`conv` < 2^24 conversations per run).
pub struct IdGen {
    key: u64,
    conv: u64,
    counter: u64,
}

/// Id domains, so counters of different kinds never collide after mixing.
#[derive(Clone, Copy)]
enum Domain {
    Msg = 1,
    Row = 2,
    Agent = 3,
    Tool = 4,
}

impl IdGen {
    /// Ids for conversation `conv` of a run with seed `seed`.
    pub fn new(seed: u64, conv: u64) -> Self {
        IdGen {
            key: mix64(seed ^ 0xA076_1D64_78BD_642F),
            conv,
            counter: 0,
        }
    }

    fn unique(&mut self, d: Domain) -> u64 {
        self.counter += 1;
        let x = ((d as u64) << 58) | ((self.conv & 0xFF_FFFF) << 32) | (self.counter & 0xFFFF_FFFF);
        // xor with a constant keeps the map bijective; mix64 is a bijection.
        mix64(x ^ self.key)
    }

    /// `msg_01` + 22 base-62 characters.
    pub fn msg_id(&mut self, rng: &mut SynthRng) -> String {
        let mut s = String::with_capacity(28);
        s.push_str("msg_01");
        let u = self.unique(Domain::Msg);
        push_b62_fixed(&mut s, u, 11);
        push_b62_random(&mut s, rng, 11);
        s
    }

    /// `toolu_01` + 22 base-62 characters.
    pub fn tool_id(&mut self, rng: &mut SynthRng) -> String {
        let mut s = String::with_capacity(30);
        s.push_str("toolu_01");
        let u = self.unique(Domain::Tool);
        push_b62_fixed(&mut s, u, 11);
        push_b62_random(&mut s, rng, 11);
        s
    }

    /// A proxy row id (32 hex digits).
    pub fn row_id(&mut self, rng: &mut SynthRng) -> String {
        let u = self.unique(Domain::Row);
        format!("{:016x}{:016x}", u, rng.gen::<u64>())
    }

    /// A sub-agent id (16 hex digits).
    pub fn agent_id(&mut self) -> String {
        format!("{:016x}", self.unique(Domain::Agent))
    }
}

/// A random version-4 UUID.
pub fn uuid(rng: &mut SynthRng) -> String {
    let a: u64 = rng.gen();
    let b: u64 = rng.gen();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFF,
        0x8000 | ((b >> 48) & 0x3FFF),
        b & 0xFFFF_FFFF_FFFF
    )
}

/// An Anthropic request id (`req_011C…`), as seen in response headers and session logs.
pub fn api_request_id(rng: &mut SynthRng) -> String {
    let mut s = String::from("req_011C");
    push_b62_random(&mut s, rng, 20);
    s
}

/// Random base-64 text of `n` characters (thinking signatures).
pub fn base64ish(rng: &mut SynthRng, n: usize) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(n + 2);
    s.push_str("Eq");
    for _ in 0..n {
        s.push(B64[rng.gen_range(0..64)] as char);
    }
    while s.len() % 4 != 0 {
        s.push('=');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_shaped() {
        let mut rng = rng_for(1, 2);
        let mut g = IdGen::new(1, 7);
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let m = g.msg_id(&mut rng);
            assert_eq!(m.len(), 28);
            assert!(m.starts_with("msg_01"));
            assert!(seen.insert(m));
        }
        let u = uuid(&mut rng);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
