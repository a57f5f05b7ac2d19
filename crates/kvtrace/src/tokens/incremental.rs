//! Incremental tokenization of texts that mostly extend the previous one.
//!
//! A conversation's serialized `messages` section grows by appending: request k+1's text
//! usually starts with request k's text minus its closing `]`. Re-tokenizing the whole
//! context every request costs the sum of all context sizes (quadratic in conversation
//! length); this encoder costs only the new bytes.
//!
//! Why reuse is exact: tokens are the concatenation of the byte-pair merges of the
//! pre-tokenizer's pieces, and each piece's merge depends on the piece alone. By the
//! locality property proved in [`super::pretok`], when the old and the new text share
//! bytes `[0, n)`, every old piece `[b, e)` with `e + 2 <= n` is also a piece of the new
//! text, and so are all pieces before it (pieces tile the text from offset 0). So we keep
//! the tokens of that piece prefix and tokenize the new text from the kept boundary on.
//! Texts outside printable ASCII fall back to a full encode (the proof covers only the
//! ASCII matcher), and the differential tests compare against full encoding.

use super::{pretok, Encoder, Token};

/// Bytes between two recorded restart boundaries (see [`IncrementalEncoder::piece_ends`]).
const RESTART_SPAN: usize = 64;

/// Tokenizes a sequence of texts, reusing the previous text's pieces.
#[derive(Default)]
pub struct IncrementalEncoder {
    text: Vec<u8>,
    tokens: Vec<Token>,
    /// Piece boundaries to restart from: a piece's end byte offset in `text` and the token
    /// count up to and including it, for one piece in about every [`RESTART_SPAN`] bytes
    /// (a new text re-tokenizes at most that much of what it shares with the last one).
    piece_ends: Vec<(u32, u32)>,
    /// Bytes tokenized afresh since creation (for benchmarks).
    pub fresh_bytes: u64,
    /// A reused buffer for the tokens a new text drops.
    spare: Vec<Token>,
}

impl IncrementalEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Tokens of `text`, identical to `Encoder::encode(text)`.
    pub fn encode(&mut self, enc: &mut Encoder, text: &str) -> &[Token] {
        self.encode_keeping(enc, text);
        &self.tokens
    }

    /// The tokens of the last text encoded.
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// [`IncrementalEncoder::encode`], returning how many tokens the new text's tokens
    /// share at the start with the previous text's (work proportional to the new
    /// tokens, not to all of them: the kept pieces' tokens are shared by construction).
    pub fn encode_keeping(&mut self, enc: &mut Encoder, text: &str) -> usize {
        self.encode_keeping_known(enc, text, 0)
    }

    /// [`IncrementalEncoder::encode_keeping`] when the caller knows that the first `known`
    /// bytes of `text` equal those of the previous text (a transcoder that kept them):
    /// only the bytes after them are compared. A `known` past the previous text kept here
    /// is cut to it.
    pub fn encode_keeping_known(&mut self, enc: &mut Encoder, text: &str, known: usize) -> usize {
        let s = text.as_bytes();
        let known = known.min(self.text.len()).min(s.len());
        debug_assert_eq!(self.text[..known], s[..known]);
        // `self.text` holds only printable ASCII (anything else is not kept), so only the
        // bytes past the shared prefix need checking.
        let shared = known + common_prefix(&self.text[known..], &s[known..]);
        if !pretok::is_printable_ascii(&s[shared..]) || s.len() > u32::MAX as usize {
            self.text.clear();
            self.piece_ends.clear();
            let old = std::mem::replace(&mut self.tokens, enc.encode(text));
            self.fresh_bytes += s.len() as u64;
            return common_tokens(&old, &self.tokens);
        }
        // Last kept piece: the final one whose end plus two bytes of look-ahead is shared.
        let keep = self
            .piece_ends
            .partition_point(|&(end, _)| end as usize + 2 <= shared);
        let (start, ntok) = match keep {
            0 => (0, 0),
            k => {
                let (end, cum) = self.piece_ends[k - 1];
                (end as usize, cum as usize)
            }
        };
        self.piece_ends.truncate(keep);
        // The dropped tokens, to find how far the new ones repeat them.
        let mut dropped = std::mem::take(&mut self.spare);
        dropped.clear();
        dropped.extend_from_slice(&self.tokens[ntok.min(self.tokens.len())..]);
        self.tokens.truncate(ntok);
        self.text.truncate(start);
        self.text.extend_from_slice(&s[start..]);
        self.fresh_bytes += (s.len() - start) as u64;
        let mut i = start;
        let mut next_restart = start + RESTART_SPAN;
        for e in pretok::Pieces::new(s, start) {
            enc.encode_piece(s, i, e, &mut self.tokens);
            if e >= next_restart {
                self.piece_ends.push((e as u32, self.tokens.len() as u32));
                next_restart = e + RESTART_SPAN;
            }
            i = e;
        }
        let kept = self.tokens.len().min(ntok);
        let common = kept + common_tokens(&dropped, &self.tokens[kept..]);
        self.spare = dropped;
        common
    }
}

/// Length of the longest common prefix of two token sequences; equal 32-token chunks are
/// compared as one slice each.
pub fn common_tokens(a: &[Token], b: &[Token]) -> usize {
    const CHUNK: usize = 32;
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + CHUNK <= n && a[i..i + CHUNK] == b[i..i + CHUNK] {
        i += CHUNK;
    }
    i + a[i..n]
        .iter()
        .zip(&b[i..n])
        .take_while(|(x, y)| x == y)
        .count()
}

/// Length of the longest common prefix: equal 256-byte chunks are compared as one slice
/// each (a vectorized `memcmp`; this runs over every byte of every request's context),
/// then eight bytes at a time.
pub fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const CHUNK: usize = 256;
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + CHUNK <= n && a[i..i + CHUNK] == b[i..i + CHUNK] {
        i += CHUNK;
    }
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().unwrap_or([0; 8]));
        let y = u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        if x != y {
            return i + ((x ^ y).trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_and_diverging_texts_match_full_encoding() {
        let mut enc = Encoder::new();
        let mut full = Encoder::new();
        let mut inc = IncrementalEncoder::new();
        let texts = [
            r#"[{"role":"user","content":"hello   world"}]"#,
            r#"[{"role":"user","content":"hello   world"},{"role":"assistant","content":"hi  12345"}]"#,
            r#"[{"role":"user","content":"hello   world"},{"role":"assistant","content":"hi  123456 more"}]"#,
            r#"[{"role":"user","content":"hello   "}]"#,
            r#"[{"role":"user","content":"hello    x"}]"#,
            r#"totally different"#,
            r#"totally different ünï"#,
            r#"totally different"#,
        ];
        let mut prev: Vec<Token> = Vec::new();
        for t in texts {
            let common = inc.encode_keeping(&mut enc, t);
            let tokens = full.encode(t);
            assert_eq!(inc.tokens(), tokens, "text {t:?}");
            let expected = prev.iter().zip(&tokens).take_while(|(a, b)| a == b).count();
            assert_eq!(common, expected, "text {t:?}");
            prev = tokens;
        }
    }

    #[test]
    fn long_texts_cut_anywhere_match_full_encoding_and_reuse_their_prefix() {
        // Kilobytes of JSON-like text (words, digit runs, space runs, punctuation), then
        // texts that extend it or diverge from it at every kind of byte: restarts come from
        // the recorded boundaries, one per RESTART_SPAN bytes or so.
        let words = [
            "alpha", " beta", "  gamma", "12345", "\\n", "{\"k\":", "'ll", "   ", "x9", ".",
        ];
        let mut seed = 7u32;
        let mut base = String::new();
        while base.len() < 6000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            base.push_str(words[(seed >> 16) as usize % words.len()]);
        }
        let mut enc = Encoder::new();
        let mut full = Encoder::new();
        let mut inc = IncrementalEncoder::new();
        let mut prev: Vec<Token> = Vec::new();
        let mut prev_text = String::new();
        for cut in [
            6000, 5999, 4000, 4001, 4063, 4064, 4065, 130, 129, 64, 63, 2, 0, 3000,
        ] {
            for tail in ["", " tail 42", "   ", "7"] {
                let text = format!("{}{tail}", &base[..cut.min(base.len())]);
                let before = inc.fresh_bytes;
                let common = inc.encode_keeping(&mut enc, &text);
                let tokens = full.encode(&text);
                assert_eq!(inc.tokens(), tokens, "cut {cut} tail {tail:?}");
                let expected = prev.iter().zip(&tokens).take_while(|(a, b)| a == b).count();
                assert_eq!(common, expected, "cut {cut} tail {tail:?}");
                // Only the bytes past what it shares with the last text, and at most about
                // one restart span before them, are tokenized again.
                let shared = common_prefix(prev_text.as_bytes(), text.as_bytes());
                let fresh = inc.fresh_bytes - before;
                assert!(
                    fresh <= (text.len() - shared + 2 * RESTART_SPAN + 16) as u64,
                    "cut {cut} tail {tail:?}: {fresh} fresh bytes, {shared} shared"
                );
                prev_text = text;
                prev = tokens;
            }
        }
    }

    #[test]
    fn common_prefix_finds_first_difference() {
        assert_eq!(common_prefix(b"abcdefghijk", b"abcdefghijX"), 10);
        assert_eq!(common_prefix(b"abcdefgh", b"abcdefgh"), 8);
        assert_eq!(common_prefix(b"abcXefghij", b"abcdefghij"), 3);
        assert_eq!(common_prefix(b"", b"abc"), 0);
        // Across and inside the 256-byte chunks.
        let a: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
        for at in [0, 7, 8, 255, 256, 257, 511, 512, 1000, 1999] {
            let mut b = a.clone();
            b[at] ^= 0x5a;
            assert_eq!(common_prefix(&a, &b), at);
            assert_eq!(common_prefix(&b[..at + 1], &a), at);
        }
        assert_eq!(common_prefix(&a, &a[..1500]), 1500);
    }
}
