//! Salt, chained salted block hashes and integer hash ids (spec §4.3–§4.4).
//!
//! Block `k` with tokens `t0..tB-1` and previous hash `p` (`"0"` for the first block) has
//! hash `first 16 hex of sha256("{salt}:{p}:{k}:" + " ".join(tokens))`. Because each hash
//! folds in its predecessor, equal hashes mean equal *prefixes*, which is what a prefix
//! cache keys on. Digests are kept as `u64` (the 16 hex digits) and only turned into
//! text inside the hash input.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;

use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::tokens::Token;

/// A run's secret salt: 32 lowercase hex characters.
#[derive(Clone, PartialEq, Eq)]
pub struct Salt(String);

impl std::fmt::Debug for Salt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret, not even in debug output.
        f.write_str("Salt(<hidden>)")
    }
}

/// Bytes read from a salt file at most (a salt is 32 hex characters plus a line end).
const SALT_FILE_LIMIT: u64 = 256;

#[derive(Debug, Error)]
pub enum SaltError {
    #[error("a salt must be 32 hexadecimal characters (16 bytes)")]
    Malformed,
    #[error("cannot read the salt file {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the operating system's random source failed: {0}")]
    Random(#[source] std::io::Error),
}

impl Salt {
    /// 16 random bytes from the operating system.
    pub fn random() -> Result<Salt, SaltError> {
        let mut bytes = [0u8; 16];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .or_else(|_| {
                use rand::RngCore as _;
                rand::rngs::OsRng
                    .try_fill_bytes(&mut bytes)
                    .map_err(std::io::Error::other)
            })
            .map_err(SaltError::Random)?;
        let mut s = String::with_capacity(32);
        for b in bytes {
            let _ = write!(s, "{b:02x}");
        }
        Ok(Salt(s))
    }

    /// A fixed salt given as 32 hex characters (case-insensitive, stored lowercase).
    pub fn from_hex(hex: &str) -> Result<Salt, SaltError> {
        let hex = hex.trim();
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SaltError::Malformed);
        }
        Ok(Salt(hex.to_ascii_lowercase()))
    }

    /// A fixed salt read from a file holding 32 hex characters.
    pub fn from_file(path: &Path) -> Result<Salt, SaltError> {
        use std::io::Read as _;
        let err = |source| SaltError::File {
            path: path.display().to_string(),
            source,
        };
        // At most a few bytes more than a salt and its line end: `/dev/zero` or a huge
        // file must not be read without bound.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(err)?
            .take(SALT_FILE_LIMIT)
            .read_to_end(&mut bytes)
            .map_err(err)?;
        if bytes.len() as u64 >= SALT_FILE_LIMIT {
            return Err(SaltError::Malformed);
        }
        Salt::from_hex(std::str::from_utf8(&bytes).map_err(|_| SaltError::Malformed)?)
    }

    /// The hex text, for code that must scan outputs for leaks.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A block digest: the 16 hex characters of the chained hash, as a number.
pub type Digest64 = u64;

/// Chained digests of the full `block_size` blocks of `tokens`, appended to `out`.
/// The first `out.len()` blocks are taken as already computed (callers pass the digests
/// of a shared token prefix), so only the remaining blocks are hashed.
pub fn chain_digests(salt: &Salt, tokens: &[Token], block_size: usize, out: &mut Vec<Digest64>) {
    if let Some(rest) = tokens.get(out.len() * block_size..) {
        chain_digests_from(salt, rest, block_size, out);
    }
}

/// [`chain_digests`] given only the tokens from the first block still to hash on: `rest`
/// starts at token `out.len() * block_size` of the request.
pub fn chain_digests_from(salt: &Salt, rest: &[Token], block_size: usize, out: &mut Vec<Digest64>) {
    let first = out.len();
    let nblocks = first + rest.len() / block_size;
    if first >= nblocks {
        return;
    }
    // The hashed text is written into a fixed buffer (every piece is ASCII): the salt
    // once, then per block the previous digest, the index and the tokens, each token one
    // 8-byte copy from a table of decimal texts.
    let salt = salt.0.as_bytes();
    let mut buf = vec![0u8; salt.len() + 40 + block_size * MAX_TOKEN_TEXT];
    buf[..salt.len()].copy_from_slice(salt);
    buf[salt.len()] = b':';
    let table = decimals();
    for k in out.len()..nblocks {
        let mut pos = salt.len() + 1;
        match k {
            0 => {
                buf[pos] = b'0';
                pos += 1;
            }
            _ => {
                write_hex16(&mut buf[pos..pos + 16], out[k - 1]);
                pos += 16;
            }
        }
        buf[pos] = b':';
        pos += 1;
        pos += write_decimal(&mut buf[pos..], k as u64);
        buf[pos] = b':';
        pos += 1;
        for &t in &rest[(k - first) * block_size..(k - first + 1) * block_size] {
            match table.get(t as usize) {
                Some(entry) => {
                    buf[pos..pos + 8].copy_from_slice(entry);
                    pos += usize::from(entry[7]);
                }
                None => {
                    pos += write_decimal(&mut buf[pos..], u64::from(t));
                    buf[pos] = b' ';
                    pos += 1;
                }
            }
        }
        // Tokens are joined by spaces: drop the one after the last.
        let hash = Sha256::digest(&buf[..pos - 1]);
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash[..8]);
        out.push(u64::from_be_bytes(first));
    }
}

/// Room for one token's text in the hash input: 10 digits (a `u32`) and a space, plus
/// the slack of an 8-byte table copy.
const MAX_TOKEN_TEXT: usize = 18;

/// Tokens below this have their text in the table (cl100k_base has 100,277).
const DECIMALS: usize = 1 << 17;

/// For each value below [`DECIMALS`]: its decimal digits and a space (at most 7 bytes),
/// then in byte 7 the length of that text.
fn decimals() -> &'static [[u8; 8]] {
    static TABLE: std::sync::OnceLock<Box<[[u8; 8]]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..DECIMALS as u64)
            .map(|v| {
                let mut entry = [0u8; 8];
                let n = write_decimal(&mut entry, v);
                entry[n] = b' ';
                entry[7] = n as u8 + 1;
                entry
            })
            .collect()
    })
}

/// `v` in decimal at the start of `out` (which must have room); returns its length.
fn write_decimal(out: &mut [u8], mut v: u64) -> usize {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let n = digits.len() - i;
    out[..n].copy_from_slice(&digits[i..]);
    n
}

/// `v` as 16 lowercase hex digits (`{:016x}`).
fn write_hex16(out: &mut [u8], v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, o) in out.iter_mut().take(16).enumerate() {
        *o = HEX[((v >> ((15 - i) * 4)) & 0xf) as usize];
    }
}

/// Assigns integer ids 1, 2, 3, … to digests in order of first appearance.
#[derive(Default)]
pub struct IdMap {
    ids: FxHashMap<Digest64, u64>,
    /// `digests[id - 1]` is the digest of `id` (kept only when `keep_digests` is set).
    digests: Vec<Digest64>,
    keep_digests: bool,
}

impl IdMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// A map that also remembers each id's digest, for `--id-map` files.
    pub fn with_digests() -> Self {
        IdMap {
            keep_digests: true,
            ..Self::default()
        }
    }

    /// The id of `digest`, allocating the next one on first sight.
    pub fn id(&mut self, digest: Digest64) -> u64 {
        let next = self.ids.len() as u64 + 1;
        let id = *self.ids.entry(digest).or_insert(next);
        if id == next && self.keep_digests {
            self.digests.push(digest);
        }
        id
    }

    /// Digests in id order (`[0]` is id 1), when kept.
    pub fn digests(&self) -> &[Digest64] {
        &self.digests
    }

    /// The id-map file: one `id<TAB>digest` line per id, in id order. Private: the
    /// digests depend on the salt and must never travel with the traces.
    pub fn to_tsv(&self) -> String {
        let mut out = String::with_capacity(self.digests.len() * 24);
        for (i, d) in self.digests.iter().enumerate() {
            let _ = writeln!(out, "{}\t{d:016x}", i + 1);
        }
        out
    }

    /// Parse an id-map file back into digests in id order.
    pub fn parse_tsv(text: &str) -> Result<Vec<Digest64>, String> {
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            let (id, hex) = line
                .split_once('\t')
                .ok_or(format!("line {}: expected id<TAB>digest", n + 1))?;
            let id: usize = id.parse().map_err(|_| format!("line {}: bad id", n + 1))?;
            if id != out.len() + 1 {
                return Err(format!("line {}: ids must be 1, 2, 3, … in order", n + 1));
            }
            out.push(
                u64::from_str_radix(hex, 16).map_err(|_| format!("line {}: bad digest", n + 1))?,
            );
        }
        Ok(out)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha_hex16(s: &str) -> u64 {
        let h = Sha256::digest(s.as_bytes());
        u64::from_be_bytes(h[..8].try_into().unwrap())
    }

    #[test]
    fn chain_matches_the_formula() {
        let salt = Salt::from_hex("00112233445566778899AABBCCDDEEFF").unwrap();
        let tokens: Vec<Token> = (0..10).collect();
        let mut out = Vec::new();
        chain_digests(&salt, &tokens, 4, &mut out);
        assert_eq!(out.len(), 2, "the partial last block is dropped");
        let h0 = sha_hex16("00112233445566778899aabbccddeeff:0:0:0 1 2 3");
        let h1 = sha_hex16(&format!(
            "00112233445566778899aabbccddeeff:{h0:016x}:1:4 5 6 7"
        ));
        assert_eq!(out, [h0, h1]);
        // Resuming from a computed prefix gives the same chain.
        let mut resumed = vec![h0];
        chain_digests(&salt, &tokens, 4, &mut resumed);
        assert_eq!(resumed, out);
        // Values past the decimal table, at its edges and of every width; a 1-token block
        // (no space at all); a block of many digits.
        let edge = [
            99_999,
            100_276,
            131_071,
            131_072,
            4_000_000_000,
            u32::MAX,
            7,
            0,
        ];
        let mut out = Vec::new();
        chain_digests(&salt, &edge, 2, &mut out);
        let mut want = Vec::new();
        let mut prev = "0".to_owned();
        for (k, pair) in edge.chunks(2).enumerate() {
            let h = sha_hex16(&format!(
                "00112233445566778899aabbccddeeff:{prev}:{k}:{} {}",
                pair[0], pair[1]
            ));
            prev = format!("{h:016x}");
            want.push(h);
        }
        assert_eq!(out, want);
        let mut one = Vec::new();
        chain_digests(&salt, &[u32::MAX], 1, &mut one);
        assert_eq!(
            one,
            [sha_hex16(&format!(
                "00112233445566778899aabbccddeeff:0:0:{}",
                u32::MAX
            ))]
        );
    }

    #[test]
    fn id_map_round_trips() {
        let mut m = IdMap::with_digests();
        for d in [7, 3, 7, 0xffff_ffff_ffff_ffff] {
            m.id(d);
        }
        assert_eq!(
            IdMap::parse_tsv(&m.to_tsv()).unwrap(),
            [7, 3, 0xffff_ffff_ffff_ffff]
        );
        assert!(IdMap::parse_tsv("2\t00").is_err());
    }

    #[test]
    fn ids_follow_first_appearance() {
        let mut m = IdMap::new();
        assert_eq!([m.id(7), m.id(3), m.id(7), m.id(9)], [1, 2, 1, 3]);
    }

    #[test]
    fn salts_are_validated_and_hidden() {
        assert!(Salt::from_hex("xyz").is_err());
        let s = Salt::random().unwrap();
        assert_eq!(s.expose().len(), 32);
        assert!(!format!("{s:?}").contains(s.expose()));
    }
}
