//! cl100k_base tokenization identical to tiktoken's
//! `encode_for_model("gpt-4").encode(text, disallowed_special=())` (spec §4.3).
//!
//! Two paths give the same tokens:
//! - printable-ASCII text (every serialized section, §4.2) is split by the hand-written
//!   pre-tokenizer in [`pretok`] and each piece is byte-pair merged here, with a per-encoder
//!   cache of pieces already seen (tool definitions and growing contexts repeat most
//!   pieces thousands of times);
//! - any other text goes through tiktoken-rs, the reference implementation.
//!
//! The rank table is taken from tiktoken-rs (which ships OpenAI's cl100k_base file) at
//! build time, so both paths share one vocabulary.

pub mod incremental;
pub mod pretok;

use std::sync::OnceLock;

use rustc_hash::FxHashMap;
use tiktoken_rs::CoreBPE;

/// Token id type (cl100k_base has ~100K ranks).
pub type Token = u32;

/// Pieces longer than this are merged by tiktoken-rs, whose heap-based merge is
/// O(n log n); the simple merge below is quadratic in the piece length.
const LONG_PIECE: usize = 256;

/// Cached pieces are dropped wholesale past this many entries, bounding memory.
const CACHE_LIMIT: usize = 1 << 18;

fn core() -> &'static CoreBPE {
    tiktoken_rs::cl100k_base_singleton()
}

/// The rank of every ordinary token's bytes. Loaded from the blob `build.rs` writes from
/// tiktoken-rs's own table (one vocabulary for both paths), without building tiktoken-rs's
/// encoder, which only text outside printable ASCII and very long pieces need.
fn ranks() -> &'static Ranks {
    static BLOB: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cl100k_ranks.bin"));
    static RANKS: OnceLock<Ranks> = OnceLock::new();
    RANKS.get_or_init(|| {
        let mut map = Ranks::default();
        let mut rest = BLOB;
        let mut rank: Token = 0;
        while let [a, b, tail @ ..] = rest {
            let len = usize::from(u16::from_le_bytes([*a, *b])).min(tail.len());
            let (bytes, tail) = tail.split_at(len);
            map.insert(bytes, rank);
            rank += 1;
            rest = tail;
        }
        map
    })
}

/// Token bytes → rank. Most lookups are of a few bytes (whole pieces, then pairs being
/// merged): tokens of up to [`SHORT`] bytes are keyed by their bytes packed into an
/// integer, so such a lookup hashes and compares one word instead of a slice.
#[derive(Default)]
struct Ranks {
    short: FxHashMap<u64, Token>,
    long: FxHashMap<&'static [u8], Token>,
}

/// The longest token kept in [`Ranks::short`].
const SHORT: usize = 7;

/// Up to [`SHORT`] bytes and their count packed into one word (distinct for distinct
/// byte strings, zero bytes included).
fn pack(bytes: &[u8]) -> u64 {
    let mut key = (bytes.len() as u64) << 56;
    for (i, &b) in bytes.iter().enumerate() {
        key |= u64::from(b) << (8 * i);
    }
    key
}

impl Ranks {
    fn insert(&mut self, bytes: &'static [u8], rank: Token) {
        if bytes.len() <= SHORT {
            self.short.insert(pack(bytes), rank);
        } else {
            self.long.insert(bytes, rank);
        }
    }

    fn get(&self, bytes: &[u8]) -> Option<Token> {
        if bytes.len() <= SHORT {
            self.short.get(&pack(bytes)).copied()
        } else {
            self.long.get(bytes).copied()
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.short.len() + self.long.len()
    }
}

/// Encode with tiktoken-rs alone: the reference path, used as a test oracle and for
/// text outside printable ASCII.
pub fn reference_encode(text: &str) -> Vec<Token> {
    core().encode_ordinary(text)
}

/// Slots of [`Encoder::front`] (a power of two): 64 KB, small enough to stay in a core's
/// L2 cache, where a probe of the 100 K-entry rank table is mostly a miss to memory.
const FRONT_SLOTS: usize = 1 << 12;

/// A cl100k_base encoder with a piece cache. Cheap to create; one per worker thread.
pub struct Encoder {
    ranks: &'static Ranks,
    /// The rank lookups of short whole pieces met last, direct-mapped by packed key:
    /// `(key, rank)`, `rank == Token::MAX` for a piece that is no single token. Slots start as
    /// `(0, Token::MAX)`: key 0 is the empty piece's, which is no token.
    front: Box<[(u64, Token)]>,
    cache: FxHashMap<Box<[u8]>, Box<[Token]>>,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    pub fn new() -> Self {
        Encoder {
            ranks: ranks(),
            front: vec![(0, Token::MAX); FRONT_SLOTS].into_boxed_slice(),
            cache: FxHashMap::default(),
        }
    }

    /// Tokens of `text`.
    pub fn encode(&mut self, text: &str) -> Vec<Token> {
        let mut out = Vec::with_capacity(text.len() / 3);
        self.encode_into(text, &mut out);
        out
    }

    /// Append the tokens of `text` to `out`.
    pub fn encode_into(&mut self, text: &str, out: &mut Vec<Token>) {
        let s = text.as_bytes();
        if !pretok::is_printable_ascii(s) {
            out.extend(reference_encode(text));
            return;
        }
        let mut i = 0;
        while i < s.len() {
            let e = pretok::piece_end(s, i);
            self.encode_piece(&s[i..e], out);
            i = e;
        }
    }

    /// Append the tokens of one pre-tokenizer piece (printable ASCII).
    #[inline(always)]
    pub(crate) fn encode_piece(&mut self, piece: &[u8], out: &mut Vec<Token>) {
        if let Some(rank) = self.whole_piece_rank(piece) {
            out.push(rank);
            return;
        }
        self.encode_split_piece(piece, out);
    }

    /// [`Encoder::encode_piece`] for a piece that is not one token: from the piece cache,
    /// or merged.
    #[inline(never)]
    fn encode_split_piece(&mut self, piece: &[u8], out: &mut Vec<Token>) {
        if let Some(tokens) = self.cache.get(piece) {
            out.extend_from_slice(tokens);
            return;
        }
        let tokens: Vec<Token> = if piece.len() > LONG_PIECE {
            // An ASCII piece re-splits into itself: every alternative is maximal.
            reference_encode(std::str::from_utf8(piece).unwrap_or_default())
        } else {
            byte_pair_merge(self.ranks, piece)
        };
        out.extend_from_slice(&tokens);
        if self.cache.len() >= CACHE_LIMIT {
            self.cache.clear();
        }
        self.cache.insert(piece.into(), tokens.into_boxed_slice());
    }

    /// The rank of `piece` if it is one token, through [`Encoder::front`] for short ones.
    #[inline(always)]
    fn whole_piece_rank(&mut self, piece: &[u8]) -> Option<Token> {
        if piece.len() > SHORT {
            return self.ranks.get(piece);
        }
        let key = pack(piece);
        // Fibonacci hashing: the top bits of the product mix every byte of the key.
        let slot = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - FRONT_SLOTS.trailing_zeros()))
            as usize;
        let entry = &mut self.front[slot];
        if entry.0 != key {
            let rank = self.ranks.short.get(&key).copied().unwrap_or(Token::MAX);
            *entry = (key, rank);
        }
        (entry.1 != Token::MAX).then_some(entry.1)
    }
}

/// Byte-pair merge of one piece: repeatedly join the adjacent pair whose joined bytes have
/// the lowest rank (leftmost on ties), until no joined pair is in the vocabulary.
fn byte_pair_merge(ranks: &Ranks, piece: &[u8]) -> Vec<Token> {
    // bounds[k] = start of part k; the last entry is piece.len().
    let mut bounds: Vec<usize> = (0..=piece.len()).collect();
    let pair_rank = |bounds: &[usize], k: usize| -> Token {
        if k + 2 < bounds.len() {
            ranks
                .get(&piece[bounds[k]..bounds[k + 2]])
                .unwrap_or(Token::MAX)
        } else {
            Token::MAX
        }
    };
    let mut pair: Vec<Token> = (0..bounds.len()).map(|k| pair_rank(&bounds, k)).collect();
    loop {
        let mut best = Token::MAX;
        let mut at = 0;
        for (k, &r) in pair.iter().enumerate() {
            if r < best {
                best = r;
                at = k;
            }
        }
        if best == Token::MAX {
            break;
        }
        bounds.remove(at + 1);
        pair.remove(at + 1);
        pair[at] = pair_rank(&bounds, at);
        if at > 0 {
            pair[at - 1] = pair_rank(&bounds, at - 1);
        }
    }
    bounds
        .windows(2)
        .map(|w| ranks.get(&piece[w[0]..w[1]]).unwrap_or(Token::MAX))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_table_is_tiktoken_rs_table() {
        let table = ranks();
        assert_eq!(table.len(), 100_256);
        for rank in (0..100_256u32).step_by(7) {
            let bytes = core().decode_bytes(&[rank]).unwrap();
            assert_eq!(table.get(bytes.as_slice()), Some(rank), "rank {rank}");
        }
        // Packed keys are distinct: a zero byte, or a shorter string, is not another's.
        assert_ne!(pack(b"a"), pack(b"a\0"));
        assert_ne!(pack(b""), pack(b"\0"));
        assert_eq!(table.get(b"a\0"), None);
        assert!(table.short.len() > 50_000 && !table.long.is_empty());
    }

    #[test]
    fn fast_path_matches_reference_on_json_like_text() {
        let text = r#"[{"role":"user","content":"Fix the bug in parser.py \u00fc  and don't   stop 1234567 {x} 'LL"}]   "#;
        let mut enc = Encoder::new();
        assert_eq!(enc.encode(text), reference_encode(text));
        // Second run hits the piece cache and must agree too.
        assert_eq!(enc.encode(text), reference_encode(text));
    }

    #[test]
    fn front_cache_evictions_keep_tokens_exact() {
        // Far more distinct short pieces than the front cache has slots, each met twice:
        // slots are overwritten over and over, and every lookup must still be exact.
        let words: Vec<String> = (0..3 * FRONT_SLOTS)
            .map(|i| format!(" {}{}", (b'a' + (i % 26) as u8) as char, i % 997))
            .collect();
        let text = words.join("") + &words.join(",");
        let mut enc = Encoder::new();
        assert_eq!(enc.encode(&text), reference_encode(&text));
        assert_eq!(enc.encode(&text), reference_encode(&text));
    }
}
