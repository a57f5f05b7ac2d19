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
        // Sized up front: growing the tables as they fill rehashes every entry several
        // times, on the path of the first request every tool tokenizes.
        let short = entries(BLOB).filter(|b| b.len() <= SHORT).count();
        let long = entries(BLOB).count() - short;
        let mut map = Ranks {
            short: FxHashMap::with_capacity_and_hasher(short, Default::default()),
            long: FxHashMap::with_capacity_and_hasher(long, Default::default()),
        };
        for (rank, bytes) in (0..).zip(entries(BLOB)) {
            map.insert(bytes, rank);
        }
        map
    })
}

/// The token texts of the rank blob in rank order: each a little-endian `u16` length and
/// that many bytes.
fn entries(blob: &'static [u8]) -> impl Iterator<Item = &'static [u8]> {
    let mut rest = blob;
    std::iter::from_fn(move || {
        let [a, b, tail @ ..] = rest else {
            return None;
        };
        let len = usize::from(u16::from_le_bytes([*a, *b])).min(tail.len());
        let (bytes, tail) = tail.split_at(len);
        rest = tail;
        Some(bytes)
    })
}

/// Build the rank table now (it is otherwise built by the first request tokenized, while
/// every other task waits for it): tools call it beside their first pass over the input.
pub fn warm() {
    ranks();
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

/// Slots of [`Encoder::front`] (a power of two): 256 KB, small enough to stay in a core's
/// L2 cache, where a probe of the 100 K-entry rank table or of the piece cache is mostly a
/// miss to memory.
const FRONT_SLOTS: usize = 1 << 13;

/// The longest piece [`Encoder::front`] holds: its bytes and length fill a `u128` key.
const FRONT_PIECE: usize = 15;

/// Tokens of a piece held in one [`Front`] slot.
const FRONT_TOKENS: usize = 3;

/// One slot of [`Encoder::front`]: a piece's packed key and its tokens, `len` of them
/// (`len > FRONT_TOKENS`: more than the slot holds, in [`Encoder::cache`]).
#[derive(Clone, Copy)]
struct Front {
    key: u128,
    tokens: [Token; FRONT_TOKENS],
    len: u32,
}

/// Up to [`FRONT_PIECE`] bytes and their count packed into one `u128` (distinct for
/// distinct byte strings; the empty piece, never looked up, packs to 0).
#[inline(always)]
fn pack_front(s: &[u8], i: usize, e: usize) -> u128 {
    let len = e - i;
    let bytes = match s.get(i..i + 16) {
        // Sixteen bytes readable from the piece's start: one load, the tail masked off.
        Some(w) => {
            u128::from_le_bytes(w.try_into().unwrap_or([0; 16])) & ((1u128 << (8 * len)) - 1)
        }
        None => s[i..e]
            .iter()
            .enumerate()
            .fold(0u128, |k, (j, &b)| k | u128::from(b) << (8 * j)),
    };
    bytes | (len as u128) << 120
}

/// A cl100k_base encoder with piece caches. Cheap to create; one per worker thread.
pub struct Encoder {
    ranks: &'static Ranks,
    /// The tokens of the pieces of up to [`FRONT_PIECE`] bytes met last, direct-mapped by
    /// packed key. Slots start with key 0, the empty piece's, which is never looked up.
    front: Box<[Front]>,
    cache: FxHashMap<Box<[u8]>, Box<[Token]>>,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    pub fn new() -> Self {
        let empty = Front {
            key: 0,
            tokens: [0; FRONT_TOKENS],
            len: 0,
        };
        Encoder {
            ranks: ranks(),
            front: vec![empty; FRONT_SLOTS].into_boxed_slice(),
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
        for e in pretok::Pieces::new(s, 0) {
            self.encode_piece(s, i, e, out);
            i = e;
        }
    }

    /// Append the tokens of the pre-tokenizer piece `s[i..e]` (printable ASCII).
    #[inline(always)]
    pub(crate) fn encode_piece(&mut self, s: &[u8], i: usize, e: usize, out: &mut Vec<Token>) {
        if e - i > FRONT_PIECE {
            self.encode_uncached(&s[i..e], out);
            return;
        }
        let key = pack_front(s, i, e);
        // Fibonacci hashing of both halves: the top bits of the product mix every byte.
        let mixed = (key as u64) ^ ((key >> 64) as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        let slot = (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            >> (64 - FRONT_SLOTS.trailing_zeros())) as usize;
        let entry = &self.front[slot];
        if entry.key == key {
            if entry.len == 1 {
                out.push(entry.tokens[0]);
                return;
            }
            if let Some(tokens) = entry.tokens.get(..entry.len as usize) {
                out.extend_from_slice(tokens);
                return;
            }
        }
        self.fill_front(&s[i..e], key, slot, out);
    }

    /// [`Encoder::encode_piece`] for a piece its front slot does not hold: its tokens
    /// found, appended, and put in the slot.
    #[inline(never)]
    fn fill_front(&mut self, piece: &[u8], key: u128, slot: usize, out: &mut Vec<Token>) {
        let before = out.len();
        self.encode_uncached(piece, out);
        let made = &out[before..];
        let mut tokens = [0; FRONT_TOKENS];
        let held = made.len().min(FRONT_TOKENS);
        tokens[..held].copy_from_slice(&made[..held]);
        self.front[slot] = Front {
            key,
            tokens,
            len: made.len() as u32,
        };
    }

    /// [`Encoder::encode_piece`] without the front cache (a piece longer than
    /// [`FRONT_PIECE`], or one its slot does not hold): one token, or split.
    #[inline(never)]
    fn encode_uncached(&mut self, piece: &[u8], out: &mut Vec<Token>) {
        match self.ranks.get(piece) {
            Some(rank) => out.push(rank),
            None => self.encode_split_piece(piece, out),
        }
    }

    /// The tokens of a piece that is not one token: from the piece cache, or merged.
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
    fn front_slots_hold_pieces_of_every_length_and_token_count() {
        // Letter runs of 1 to 20 bytes (random letters: up to a token per byte or two,
        // more than a slot holds), each in mid-text and as the text's last piece (packed
        // without the sixteen-byte load), each met twice (the second from the slot).
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut word = |len: usize| -> String {
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (b'a' + (x % 26) as u8) as char
                })
                .collect()
        };
        let mut enc = Encoder::new();
        let mut overfull = 0;
        for len in 1..=20 {
            for _ in 0..20 {
                let w = word(len);
                if len < FRONT_PIECE && reference_encode(&format!(" {w}")).len() > FRONT_TOKENS {
                    overfull += 1;
                }
                for text in [format!(" {w}, next"), format!("x {w}"), format!("({w}")] {
                    for _ in 0..2 {
                        assert_eq!(enc.encode(&text), reference_encode(&text), "{text:?}");
                    }
                }
            }
        }
        assert!(
            overfull > 0,
            "no piece in a slot had more tokens than it holds"
        );
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
