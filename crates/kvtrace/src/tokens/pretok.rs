//! cl100k_base pre-tokenization for printable ASCII text (spec §4.3).
//!
//! Sections are serialized with `ensure_ascii` (§4.2), so the text we tokenize is always
//! printable ASCII (0x20..=0x7E): no newlines, no tabs, the space is the only white space.
//! On that alphabet cl100k's pattern
//! `'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s`
//! reduces to the hand-written matcher below, which is several times faster than a
//! regex engine. Text with any other byte goes through tiktoken-rs instead.
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

    #[test]
    fn splits_like_cl100k() {
        assert_eq!(pieces("a  b   c"), ["a", " ", " b", "  ", " c"]);
        assert_eq!(pieces("don't I'll"), ["don", "'t", " I", "'ll"]);
        assert_eq!(pieces("x 12345 y"), ["x", " ", "123", "45", " y"]);
        assert_eq!(pieces("{\"a\":1}  "), ["{\"", "a", "\":", "1", "}", "  "]);
        assert_eq!(pieces("'Sure"), ["'S", "ure"]);
        assert_eq!(pieces(" {x"), [" {", "x"]);
    }
}
