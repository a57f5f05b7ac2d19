//! cl100k_base pre-tokenization for printable ASCII text (spec §4.3).
//!
//! Sections are serialized with `ensure_ascii` (§4.2), so the text we tokenize is always
//! printable ASCII (0x20..=0x7E): no newlines, no tabs, the space is the only white space.
//! On that alphabet cl100k's pattern
//! `'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s`
//! reduces to the hand-written matcher below ([`piece_end`], one decision per piece),
//! several times faster than a regex engine; [`Pieces`] finds the same pieces from bit
//! masks of 64 bytes at a time, twice as fast again, and is what the encoders use
//! ([`piece_end`] stays as its test oracle). Text with any other byte goes through
//! tiktoken-rs instead.
//!
//! Locality (used by the incremental encoder): no alternative looks behind, and the
//! piece `[b, e)` that starts at `b` is decided by the bytes `[b, e)` plus at most TWO
//! bytes after it: one for every alternative that stops where a character class changes
//! (`s[e]`), and two for `\s+(?!\S)`, which gives back the last space of a run only after
//! seeing the non-space behind it (`s[e]` is that space, `s[e + 1]` the non-space).
//! `\s++$` asks whether the text ends, which cannot happen while two more bytes follow.
//! Hence if two texts share bytes `[0, n)`, they share every piece `[b, e)` with
//! `e + 2 <= n`, and all pieces before it.

/// Whether `text` is entirely printable ASCII, the alphabet this matcher handles.
pub fn is_printable_ascii(text: &[u8]) -> bool {
    // Branch-free within 64-byte chunks, so the compiler vectorizes it: this runs over
    // every byte of every request's serialized messages.
    let printable = |b: &u8| b.wrapping_sub(0x20) < 0x5f;
    let mut chunks = text.chunks_exact(64);
    chunks.all(|c| c.iter().fold(true, |ok, b| ok & printable(b)))
        && chunks.remainder().iter().all(printable)
}

#[inline]
fn is_letter(b: u8) -> bool {
    b.is_ascii_alphabetic()
}

#[inline]
fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

/// Punctuation in the pattern's sense: not white space, not a letter, not a digit.
#[inline]
fn is_punct(b: u8) -> bool {
    b != b' ' && !is_letter(b) && !is_digit(b)
}

/// End of the piece that starts at `i` (`i < s.len()`, `s` printable ASCII).
#[inline(always)]
pub fn piece_end(s: &[u8], i: usize) -> usize {
    let n = s.len();
    let c = s[i];
    // 1. contractions: 's 't 'm 'd 'll 've 're, case-insensitive.
    if c == b'\'' && i + 1 < n {
        let a = s[i + 1].to_ascii_lowercase();
        if matches!(a, b's' | b'd' | b'm' | b't') {
            return i + 2;
        }
        if i + 2 < n {
            let b = s[i + 2].to_ascii_lowercase();
            if matches!((a, b), (b'l', b'l') | (b'v', b'e') | (b'r', b'e')) {
                return i + 3;
            }
        }
    }
    // 2. an optional non-letter, non-digit character, then letters.
    if is_letter(c) {
        return letters_end(s, i + 1);
    }
    if !is_digit(c) && i + 1 < n && is_letter(s[i + 1]) {
        return letters_end(s, i + 2);
    }
    // 3. one to three digits.
    if is_digit(c) {
        let mut j = i + 1;
        while j < n && j < i + 3 && is_digit(s[j]) {
            j += 1;
        }
        return j;
    }
    // 4. an optional space, then punctuation ([\r\n]* never matches here).
    if is_punct(c) {
        return punct_end(s, i + 1);
    }
    if i + 1 < n && is_punct(s[i + 1]) {
        // c is a space
        return punct_end(s, i + 2);
    }
    // c is a space followed by a space, a letter-less digit, or the end.
    let mut j = i + 1;
    while j < n && s[j] == b' ' {
        j += 1;
    }
    // 5. `\s++$`: spaces up to the end of the text.
    if j == n {
        return n;
    }
    // 7. `\s+(?!\S)`: all but the last space before a non-space; 8. else one space.
    if j - i >= 2 {
        j - 1
    } else {
        i + 1
    }
}

fn letters_end(s: &[u8], mut j: usize) -> usize {
    while j < s.len() && is_letter(s[j]) {
        j += 1;
    }
    j
}

fn punct_end(s: &[u8], mut j: usize) -> usize {
    while j < s.len() && is_punct(s[j]) {
        j += 1;
    }
    j
}

/// The pieces of printable ASCII text, as the end offset of each in turn: the same pieces
/// as calling [`piece_end`] from `start` on, found 64 bytes at a time instead of one
/// decision per piece.
///
/// Each block of 64 bytes is turned into bit masks of its character classes (letters,
/// digits, spaces, punctuation, apostrophes) by word-wide arithmetic, and the piece starts
/// are bit operations on them and on the same masks shifted by a byte or two:
///
/// - a run of letters starts a piece unless a space or a lone punctuation mark that
///   itself starts a piece comes just before it (alternative 2 takes that character);
/// - a run of punctuation starts a piece unless a space comes just before it
///   (alternative 4 takes the space);
/// - a run of digits starts a piece, and so does every third digit of a longer run;
/// - a run of spaces starts a piece, and so does its last space when a non-space follows
///   (alternative 7 gives that space back, and it starts the next piece; a run that ends
///   the text is one piece, alternative 5);
/// - a contraction (`'s` … `'re`, where an apostrophe starts a piece) ends a piece after
///   it when letters follow.
///
/// Digit runs of four or more and apostrophes are rarer; they are settled one at a time.
/// `start` must be a piece boundary of the text (0, or an end this iterator or
/// [`piece_end`] gave): no piece before it is looked at, as none influences the pieces
/// after it.
pub struct Pieces<'a> {
    s: &'a [u8],
    /// Offset of the block whose boundaries are in `bits`.
    base: usize,
    /// Piece starts of that block not yet given, bit k for offset `base + k`.
    bits: u64,
    /// Whether the final end (the text's length) was given.
    done: bool,
    carry: Carry,
}

/// What a block needs to know about the bytes before it.
#[derive(Clone, Copy, Default)]
struct Carry {
    /// Bit 63 of the previous block's letter, digit, space and punctuation masks, and of
    /// its lone punctuation starts, as bit 0.
    letter: u64,
    digit: u64,
    space: u64,
    punct: u64,
    lone: u64,
    /// The previous block's top three digit bits (bit 2: the byte just before).
    digit_tail: u64,
    /// How many digits end the text before the block.
    digit_run: usize,
    /// Piece starts in this block found by the previous one (after a contraction).
    pending: u64,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `x` (every byte below 0x80) set where the byte is in
/// `lo..=hi` (`lo >= 1`): the sums never carry into the next byte.
#[inline(always)]
fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    let ge = x.wrapping_add(ONES * u64::from(0x80 - lo));
    let gt = x.wrapping_add(ONES * u64::from(0x7f - hi));
    ge & !gt & HIGH
}

/// The high bits of the eight bytes of `flags` as the low eight bits (byte i → bit i):
/// the multiplier moves byte i's bit to bit 56 + i, and no two partial products meet.
#[inline(always)]
fn gather(flags: u64) -> u64 {
    ((flags >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// Class masks of up to 64 bytes (bit k for byte k; bytes past the block are in no class).
#[derive(Clone, Copy)]
struct Classes {
    letter: u64,
    digit: u64,
    space: u64,
    quote: u64,
    valid: u64,
}

#[inline(always)]
fn classes(block: &[u8]) -> Classes {
    let mut padded = [0u8; 64];
    let bytes: &[u8] = if block.len() == 64 {
        block
    } else {
        padded[..block.len()].copy_from_slice(block);
        &padded
    };
    let (mut letter, mut digit, mut space, mut quote) = (0, 0, 0, 0);
    for (w, word) in bytes.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        let shift = 8 * w;
        // `| 0x20` folds capitals onto small letters and nothing else onto them.
        letter |= gather(in_range(x | (ONES * 0x20), b'a', b'z')) << shift;
        digit |= gather(in_range(x, b'0', b'9')) << shift;
        space |= gather(in_range(x, b' ', b' ')) << shift;
        quote |= gather(in_range(x, b'\'', b'\'')) << shift;
    }
    let valid = if block.len() >= 64 {
        u64::MAX
    } else {
        (1u64 << block.len()) - 1
    };
    Classes {
        letter,
        digit,
        space,
        quote,
        valid,
    }
}

/// Bits 0, 3, 6, … 63.
const EVERY_THIRD: u64 = 0x9249_2492_4924_9249;

/// The low `n` bits set (`n <= 64`).
#[inline(always)]
fn low_bits(n: u32) -> u64 {
    u64::MAX.checked_shr(64 - n).unwrap_or(0)
}

/// Length of the contraction (`'s 'd 'm 't 'll 've 're`, any case) at `s[i]`, else 0.
fn contraction(s: &[u8], i: usize) -> usize {
    let lower = |k: usize| s.get(i + k).map(u8::to_ascii_lowercase);
    match (lower(1), lower(2)) {
        (Some(b's' | b'd' | b'm' | b't'), _) => 2,
        (Some(b'l'), Some(b'l')) | (Some(b'v' | b'r'), Some(b'e')) => 3,
        _ => 0,
    }
}

impl<'a> Pieces<'a> {
    /// The pieces of `s[start..]`; `s` printable ASCII, `start` a piece boundary.
    pub fn new(s: &'a [u8], start: usize) -> Self {
        let start = start.min(s.len());
        let mut p = Pieces {
            s,
            base: start,
            bits: 0,
            done: start == s.len(),
            carry: Carry::default(),
        };
        if !p.done {
            // The first start is `start` itself, not an end.
            p.bits = p.block(start) & !1;
        }
        p
    }

    /// The piece starts of the block at `base`, the carry updated for the next block.
    #[inline(never)]
    fn block(&mut self, base: usize) -> u64 {
        let s = self.s;
        let end = (base + 64).min(s.len());
        let c = classes(&s[base..end]);
        let k = self.carry;
        let (l, d, sp) = (c.letter, c.digit, c.space);
        let p = c.valid & !(l | d | sp);
        let (pl, pd, ps, pp) = (
            l << 1 | k.letter,
            d << 1 | k.digit,
            sp << 1 | k.space,
            p << 1 | k.punct,
        );
        // Punctuation that starts a piece: the first of its run, no space before it.
        let lone = p & !pp & !ps;
        let plone = lone << 1 | k.lone;
        // The byte after the block: a space, or any byte at all.
        let next = s.get(end);
        let next_space = u64::from(next == Some(&b' ')) << 63;
        let next_exists = u64::from(next.is_some()) << 63;
        let ns = sp >> 1 | next_space;
        let ne = c.valid >> 1 | next_exists;
        let mut bits =
            (l & !pl & !ps & !plone) | lone | (d & !pd) | (sp & !ps) | (sp & !ns & ne) | k.pending;
        let mut pending = 0;
        // Contractions: an apostrophe that starts a piece, then the letters.
        let mut quotes = c.quote & lone;
        while quotes != 0 {
            let q = quotes.trailing_zeros() as usize;
            quotes &= quotes - 1;
            let len = contraction(s, base + q);
            if len > 0 && s.get(base + q + len).is_some_and(u8::is_ascii_alphabetic) {
                match q + len {
                    at @ 0..64 => bits |= 1 << at,
                    at => pending |= 1 << (at - 64),
                }
            }
        }
        // Digit runs longer than three: a piece every three digits from the run's start.
        let t = k.digit_tail;
        let long = d & (d << 1 | t >> 2) & (d << 2 | t >> 1) & (d << 3 | t);
        let mut rest = long;
        while rest != 0 {
            // One run at a time: from its start (in an earlier block when no non-digit
            // comes before it here), every third digit after the start, to the run's end.
            let at = rest.trailing_zeros();
            let before = !d & low_bits(at);
            let start = match before {
                0 => -(k.digit_run as i64),
                b => i64::from(64 - b.leading_zeros()),
            };
            let stop = (at + (!d >> at).trailing_zeros()).min(64);
            let phase = start.rem_euclid(3) as u32;
            let from = (start + 1).max(0) as u32;
            bits |= (EVERY_THIRD << phase) & low_bits(stop) & !low_bits(from);
            rest &= !low_bits(stop);
        }
        let digit_run = if d == u64::MAX {
            k.digit_run + 64
        } else {
            d.leading_ones() as usize
        };
        self.carry = Carry {
            letter: l >> 63,
            digit: d >> 63,
            space: sp >> 63,
            punct: p >> 63,
            lone: lone >> 63,
            digit_tail: d >> 61,
            digit_run,
            pending,
        };
        bits
    }
}

impl Iterator for Pieces<'_> {
    type Item = usize;

    /// The end of the next piece.
    #[inline(always)]
    fn next(&mut self) -> Option<usize> {
        loop {
            if self.bits != 0 {
                let k = self.bits.trailing_zeros() as usize;
                self.bits &= self.bits - 1;
                return Some(self.base + k);
            }
            let next = self.base + 64;
            if next >= self.s.len() {
                if self.done {
                    return None;
                }
                self.done = true;
                return Some(self.s.len());
            }
            self.base = next;
            self.bits = self.block(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_ascii_at_every_position_and_length() {
        for len in [0, 1, 63, 64, 65, 130, 200] {
            let text = vec![b'a'; len];
            assert!(is_printable_ascii(&text));
            for at in 0..len {
                for bad in [0x1f, 0x7f, 0x80, 0xff, b'\n'] {
                    let mut t = text.clone();
                    t[at] = bad;
                    assert!(!is_printable_ascii(&t), "len {len}, {bad:#x} at {at}");
                }
                let mut t = text.clone();
                t[at] = b' ';
                t[len - 1] = b'~';
                assert!(is_printable_ascii(&t));
            }
        }
    }

    fn pieces(text: &str) -> Vec<&str> {
        let s = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < s.len() {
            let e = piece_end(s, i);
            out.push(&text[i..e]);
            i = e;
        }
        out
    }

    /// Piece ends by [`piece_end`], one decision per piece.
    fn ends_one_by_one(s: &[u8], start: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut i = start;
        while i < s.len() {
            i = piece_end(s, i);
            out.push(i);
        }
        out
    }

    /// Texts over an alphabet weighted to the matcher's edges: contractions in any case,
    /// apostrophes next to spaces and punctuation, digit runs, space runs.
    fn tricky_text(seed: u64, len: usize) -> Vec<u8> {
        const ALPHABET: &[u8] = b"aZsSdmtTlLvVrReE'''    0123456789.,\"{}:-_x";
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let r = next();
            let b = ALPHABET[(r >> 32) as usize % ALPHABET.len()];
            // Runs of one byte now and then (long digit and space runs).
            let times = if r & 7 == 0 {
                (r >> 8) as usize % 9 + 1
            } else {
                1
            };
            out.extend(std::iter::repeat_n(b, times));
        }
        out.truncate(len);
        out
    }

    #[test]
    fn mask_pieces_equal_piece_by_piece_from_every_boundary() {
        let mut texts: Vec<Vec<u8>> = Vec::new();
        for seed in 0..600u64 {
            texts.push(tricky_text(seed, (seed as usize * 7) % 300));
        }
        // Long runs of each class across block edges (64, 128) and at the end.
        for len in [1, 2, 3, 4, 5, 6, 7, 62, 63, 64, 65, 66, 127, 128, 129, 200] {
            for fill in [b'7', b' ', b'x', b'.', b'\''] {
                for tail in ["", "s", "ll", " x", "1", ".", "  "] {
                    for head in ["", "a", " ", "'", ".", "12"] {
                        let mut t = head.as_bytes().to_vec();
                        t.extend(std::iter::repeat_n(fill, len));
                        t.extend_from_slice(tail.as_bytes());
                        texts.push(t);
                    }
                }
            }
        }
        // Contractions whose letters cross a block edge at every offset.
        for at in 56..70 {
            for word in ["'s", "'tx", "'ll", "'llx", "'ve ", "'REx", "'l", "'v"] {
                for before in [b'a', b' ', b'.', b'1'] {
                    let mut t = vec![b'q'; at];
                    t[at - 1] = before;
                    t.extend_from_slice(word.as_bytes());
                    t.extend_from_slice(b"abc");
                    texts.push(t);
                }
            }
        }
        for text in &texts {
            let shown = String::from_utf8_lossy(text);
            let expected = ends_one_by_one(text, 0);
            assert_eq!(
                Pieces::new(text, 0).collect::<Vec<_>>(),
                expected,
                "{shown:?}"
            );
            for &b in &expected {
                assert_eq!(
                    Pieces::new(text, b).collect::<Vec<_>>(),
                    ends_one_by_one(text, b),
                    "{shown:?} from {b}"
                );
            }
        }
    }

    #[test]
    fn splits_like_cl100k() {
        assert_eq!(pieces("a  b   c"), ["a", " ", " b", "  ", " c"]);
        assert_eq!(pieces("don't I'll"), ["don", "'t", " I", "'ll"]);
        assert_eq!(pieces("x 12345 y"), ["x", " ", "123", "45", " y"]);
        assert_eq!(pieces("{\"a\":1}  "), ["{\"", "a", "\":", "1", "}", "  "]);
        assert_eq!(pieces("'Sure"), ["'S", "ure"]);
        assert_eq!(pieces(" {x"), [" {", "x"]);
        // The same through the mask matcher.
        let text = "a  b   c don't I'll x 12345 y {\"a\":1}  'Sure {x";
        assert_eq!(
            Pieces::new(text.as_bytes(), 0).collect::<Vec<_>>(),
            ends_one_by_one(text.as_bytes(), 0)
        );
    }
}
