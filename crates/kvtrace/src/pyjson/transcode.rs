//! Streaming CPython serialization: stored JSON text → `json.dumps(normalized, separators=(',', ':'))`
//! in one pass, without building a tree (spec §4.2).
//!
//! This is the hot path of trace building: every request body is read once, its top-level
//! members located ([`split_body`]), and only the sections that need it transcoded. Volatile
//! keys (`cache_control`, `signature`) are dropped on the way. A repeated key inside an
//! object needs dict semantics (first position, last value), which a one-pass writer cannot
//! give cheaply, so the transcoder reports [`TranscodeError::DuplicateKey`] and callers
//! fall back to the tree parser — rare in practice, exact in both cases.

use super::{is_volatile_key, Form, JsonError, Lexer, MAX_DEPTH};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TranscodeError {
    Json(JsonError),
    /// An object repeats a key: use the tree parser.
    DuplicateKey,
}

impl From<JsonError> for TranscodeError {
    fn from(e: JsonError) -> Self {
        TranscodeError::Json(e)
    }
}

/// The top-level members of a request body the trace builder reads. Section values are
/// raw slices of the stored text; a repeated top-level key keeps its last value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body<'a> {
    /// `model` when it is a string (unescaped).
    pub model: Option<String>,
    /// `stream` is the literal `true`.
    pub stream: bool,
    pub tools: Option<&'a str>,
    pub system: Option<&'a str>,
    pub messages: Option<&'a str>,
}

/// Locate the members of a body object without transcoding them.
pub fn split_body(text: &str) -> Result<Body<'_>, JsonError> {
    split_body_with(text, &mut |lx| skip_value(lx, 0), None)
}

/// The `tools` and `system` values (stored bytes) of the last body split with it. The
/// bodies of one conversation repeat them byte for byte, tens of kilobytes each time: a
/// body that does is stepped over them with one compare instead of lexing them again.
/// Only values opening with `[`, `{` or `"` are kept: such a value ends where its closing
/// byte is, whatever follows, so the same bytes are the same value, valid the same way.
#[derive(Debug, Default)]
pub struct KnownMembers {
    tools: Vec<u8>,
    system: Vec<u8>,
}

/// [`split_body`], stepping over each `messages` value with `messages`, which must leave
/// the lexer just past the value (or fail): a caller that transcodes the messages anyway
/// does it here, so the body's largest member is scanned once, not twice. With `known`,
/// `tools` and `system` values equal to the last body's are not lexed again.
pub(crate) fn split_body_with<'a>(
    text: &'a str,
    messages: &mut dyn FnMut(&mut Lexer<'a>) -> Result<(), JsonError>,
    mut known: Option<&mut KnownMembers>,
) -> Result<Body<'a>, JsonError> {
    let mut lx = Lexer::new(text);
    let mut body = Body::default();
    lx.skip_ws();
    if lx.peek() != Some(b'{') {
        return Err(lx.err("a request body must be a JSON object"));
    }
    lx.i += 1;
    lx.skip_ws();
    if lx.peek() == Some(b'}') {
        lx.i += 1;
        lx.finish()?;
        return Ok(body);
    }
    let mut key = String::new();
    let mut scratch = String::new();
    loop {
        lx.skip_ws();
        if lx.peek() != Some(b'"') {
            return Err(lx.err("expected a key"));
        }
        key.clear();
        lx.string_into(&mut key)?;
        lx.colon()?;
        let start = lx.i;
        match key.as_str() {
            "model" if lx.peek() == Some(b'"') => {
                scratch.clear();
                lx.string_into(&mut scratch)?;
                body.model = Some(super::unescape(&scratch));
            }
            _ => {
                let kept = match (known.as_deref_mut(), key.as_str()) {
                    (Some(k), "tools") => Some(&mut k.tools),
                    (Some(k), "system") => Some(&mut k.system),
                    _ => None,
                };
                if key == "messages" {
                    messages(&mut lx)?;
                } else if let Some(kept) = kept {
                    if !kept.is_empty() && lx.s[start..].starts_with(kept) {
                        lx.i += kept.len();
                    } else {
                        kept.clear();
                        skip_value(&mut lx, 0)?;
                        if matches!(lx.s[start], b'[' | b'{' | b'"') {
                            kept.extend_from_slice(&lx.s[start..lx.i]);
                        }
                    }
                } else {
                    skip_value(&mut lx, 0)?;
                }
                let raw = &text[start..lx.i];
                match key.as_str() {
                    "model" => body.model = None,
                    "stream" => body.stream = raw == "true",
                    "tools" => body.tools = Some(raw),
                    "system" => body.system = Some(raw),
                    "messages" => body.messages = Some(raw),
                    _ => {}
                }
            }
        }
        if lx.next_member(b'}')? {
            lx.finish()?;
            return Ok(body);
        }
    }
}

/// The raw text of each element of a JSON array, in order (`None`: the text is not an
/// array, or not valid JSON). Elements are validated, not parsed.
pub fn array_elements(raw: &str) -> Option<Vec<&str>> {
    let spans = element_spans(raw)?;
    spans.iter().map(|&(a, b)| raw.get(a..b)).collect()
}

/// A lexer just inside the array `raw` opens, and whether the array is empty (then the
/// lexer is past its `]`); `None`: `raw` does not open with an array.
fn open_array(raw: &str) -> Option<(Lexer<'_>, bool)> {
    let mut lx = Lexer::new(raw);
    lx.skip_ws();
    if lx.peek() != Some(b'[') {
        return None;
    }
    lx.i += 1;
    lx.skip_ws();
    let empty = lx.peek() == Some(b']');
    if empty {
        lx.i += 1;
    }
    Some((lx, empty))
}

/// The raw text of the first element of an array, lexing nothing after it (`None`: empty,
/// or not an array up to there). The rest of the text is not looked at: callers pass
/// arrays already validated.
pub fn first_element(raw: &str) -> Option<&str> {
    let (mut lx, empty) = open_array(raw)?;
    if empty {
        return None;
    }
    let start = lx.i;
    skip_value(&mut lx, 1).ok()?;
    raw.get(start..lx.i)
}

/// The byte span of each element of the array `raw` (`None`: not a valid array).
fn element_spans(raw: &str) -> Option<Vec<(usize, usize)>> {
    let mut spans = Vec::new();
    let (mut lx, empty) = open_array(raw)?;
    if !empty {
        loop {
            lx.skip_ws();
            let start = lx.i;
            skip_value(&mut lx, 1).ok()?;
            spans.push((start, lx.i));
            if lx.next_member(b']').ok()? {
                break;
            }
        }
    }
    lx.finish().ok()?;
    Some(spans)
}

/// Validate and step over one value.
fn skip_value(lx: &mut Lexer<'_>, depth: usize) -> Result<(), JsonError> {
    if depth > MAX_DEPTH {
        return Err(JsonError::TooDeep);
    }
    match lx.peek() {
        None => Err(lx.err("unexpected end")),
        Some(b'"') => skip_string(lx),
        Some(open @ (b'{' | b'[')) => {
            let close = if open == b'{' { b'}' } else { b']' };
            lx.i += 1;
            lx.skip_ws();
            if lx.peek() == Some(close) {
                lx.i += 1;
                return Ok(());
            }
            loop {
                lx.skip_ws();
                if open == b'{' {
                    if lx.peek() != Some(b'"') {
                        return Err(lx.err("expected a key"));
                    }
                    skip_string(lx)?;
                    lx.colon()?;
                }
                skip_value(lx, depth + 1)?;
                if lx.next_member(close)? {
                    return Ok(());
                }
            }
        }
        Some(b'-' | b'0'..=b'9') if !lx.s[lx.i..].starts_with(b"-Infinity") => {
            let mut sink = String::new();
            lx.number_into(&mut sink)
        }
        Some(_) => lx
            .literal()
            .map(|_| ())
            .ok_or(lx.err("unexpected character")),
    }
}

/// Step over a string: find the closing quote, checking escapes.
fn skip_string(lx: &mut Lexer<'_>) -> Result<(), JsonError> {
    lx.i += 1;
    let s = lx.s;
    loop {
        let Some(pos) = memchr::memchr2(b'"', b'\\', &s[lx.i..]) else {
            return Err(lx.err("unterminated string"));
        };
        lx.i += pos;
        if s[lx.i] == b'"' {
            lx.i += 1;
            return Ok(());
        }
        match s.get(lx.i + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => lx.i += 2,
            Some(b'u')
                if s.get(lx.i + 2..lx.i + 6)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
            {
                lx.i += 6
            }
            _ => return Err(lx.err("invalid escape")),
        }
    }
}

/// Append the normalized CPython serialization of one JSON value to `out` (stored form).
pub fn transcode(raw: &str, out: &mut String) -> Result<(), TranscodeError> {
    transcode_with(raw, out, Form::Raw)
}

/// [`transcode`] in the given form: with [`Form::Canonical`], every `content` member's
/// one-text-block list is written as its string ([`collapse_single_text`]).
pub fn transcode_with(raw: &str, out: &mut String, form: Form) -> Result<(), TranscodeError> {
    let mut lx = Lexer::new(raw);
    lx.skip_ws();
    value(&mut lx, out, 0, &mut Walk::new(form))?;
    lx.finish()?;
    Ok(())
}

/// If `out[start..]` (a value just serialized) is `[{"type":"text","text":S}]` or
/// `[{"text":S,"type":"text"}]`, replace it by the string `S`. Works on the serialized
/// form, so the streaming transcoder needs no tree.
pub fn collapse_single_text(out: &mut String, start: usize) {
    const TYPE_FIRST: &str = r#"[{"type":"text","text":"#;
    const TEXT_FIRST: &str = r#"[{"text":"#;
    let v = &out[start..];
    let (lit_start, tail) = if v.starts_with(TYPE_FIRST) {
        (TYPE_FIRST.len(), "}]")
    } else if v.starts_with(TEXT_FIRST) {
        (TEXT_FIRST.len(), r#","type":"text"}]"#)
    } else {
        return;
    };
    let Some(lit_end) = string_literal_end(&v.as_bytes()[lit_start..]) else {
        return;
    };
    if &v[lit_start + lit_end..] != tail {
        return;
    }
    let (a, b) = (start + lit_start, start + lit_start + lit_end);
    out.replace_range(start..a, "");
    out.truncate(b - (a - start));
}

/// Length of the serialized string literal at the start of `s` (quotes included).
fn string_literal_end(s: &[u8]) -> Option<usize> {
    if s.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// What the transcoder carries down the tree: the form, and the key ranges (in `out`) of
/// the members written so far at each nesting level (reused between objects).
struct Walk {
    form: Form,
    keys: Vec<Vec<(usize, usize)>>,
}

impl Walk {
    fn new(form: Form) -> Walk {
        Walk {
            form,
            keys: Vec::new(),
        }
    }
}

type Done = Result<(), TranscodeError>;

fn value(lx: &mut Lexer<'_>, out: &mut String, depth: usize, w: &mut Walk) -> Done {
    if depth > MAX_DEPTH {
        return Err(JsonError::TooDeep.into());
    }
    match lx.peek() {
        None => Err(lx.err("unexpected end").into()),
        Some(b'"') => {
            out.push('"');
            lx.string_into(out)?;
            out.push('"');
            Ok(())
        }
        Some(b'{') => object(lx, out, depth, w),
        Some(b'[') => {
            lx.i += 1;
            out.push('[');
            lx.skip_ws();
            if lx.peek() == Some(b']') {
                lx.i += 1;
                out.push(']');
                return Ok(());
            }
            let mut first = true;
            loop {
                lx.skip_ws();
                if !first {
                    out.push(',');
                }
                first = false;
                value(lx, out, depth + 1, w)?;
                if lx.next_member(b']')? {
                    out.push(']');
                    return Ok(());
                }
            }
        }
        Some(b'-' | b'0'..=b'9') if !lx.s[lx.i..].starts_with(b"-Infinity") => {
            Ok(lx.number_into(out)?)
        }
        Some(_) => match lx.literal() {
            Some(lit) => {
                out.push_str(lit);
                Ok(())
            }
            None => Err(lx.err("unexpected character").into()),
        },
    }
}

fn object(lx: &mut Lexer<'_>, out: &mut String, depth: usize, w: &mut Walk) -> Done {
    let form = w.form;
    lx.i += 1;
    out.push('{');
    lx.skip_ws();
    if lx.peek() == Some(b'}') {
        lx.i += 1;
        out.push('}');
        return Ok(());
    }
    // Key ranges (in `out`) of the members written so far, per nesting level, reused.
    if w.keys.len() <= depth {
        w.keys.resize_with(depth + 1, Vec::new);
    }
    w.keys[depth].clear();
    let mut emitted = 0usize;
    loop {
        lx.skip_ws();
        if lx.peek() != Some(b'"') {
            return Err(lx.err("expected a key").into());
        }
        let member_start = out.len();
        if emitted > 0 {
            out.push(',');
        }
        out.push('"');
        let key_start = out.len();
        lx.string_into(out)?;
        let key_end = out.len();
        lx.colon()?;
        if is_volatile_key(&out[key_start..key_end]) {
            // Dropped with its value (validated, then discarded).
            out.truncate(member_start);
            let mut sink = String::new();
            value(lx, &mut sink, depth + 1, w)?;
        } else {
            let key = &out[key_start..key_end];
            if w.keys[depth].iter().any(|&(a, b)| &out[a..b] == key) {
                return Err(TranscodeError::DuplicateKey);
            }
            let collapse = form == Form::Canonical && key == "content";
            w.keys[depth].push((key_start, key_end));
            out.push_str("\":");
            let value_start = out.len();
            value(lx, out, depth + 1, w)?;
            if collapse {
                collapse_single_text(out, value_start);
            }
            emitted += 1;
        }
        if lx.next_member(b'}')? {
            out.push('}');
            return Ok(());
        }
    }
}

/// Where a top-level array element ended: in the stored text and in the output.
pub type Mark = (usize, usize);

/// Keys of a compact serialized JSON array's prefixes, one per element: the text up to the
/// end of element `i` (its closing byte), keyed as [`ArrayTranscoder::prefix_keys`] keys a
/// transcoder's output (a [`prefix_key`] chain), in one pass over the text. For text the
/// tree path serialized (an object repeats a key).
pub fn prefix_keys(text: &str) -> Vec<u64> {
    let b = text.as_bytes();
    let mut keys = Vec::new();
    if b.first() != Some(&b'[') {
        return keys;
    }
    let mut key = 0u64;
    let mut fed = 0usize;
    let mut depth = 0usize;
    let mut i = 0usize;
    while i < b.len() {
        let c = b[i];
        let end_of_element = match c {
            b'"' => {
                // Skip the string (most bytes are in strings).
                i = super::string_end(b, i).map_or(b.len(), |end| end + 1);
                continue;
            }
            b'[' | b'{' => {
                depth += 1;
                false
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                // The array's own `]` ends the last element.
                depth == 0 && i > 1
            }
            b',' => depth == 1,
            _ => false,
        };
        if end_of_element {
            key = prefix_key(key, &b[fed..i]);
            fed = i;
            keys.push(key);
        }
        i += 1;
    }
    keys
}

/// Incremental transcoding of a top-level array (a conversation's `messages`).
///
/// Request k+1's stored messages usually repeat request k's and append a few. Each
/// element's output depends only on its own bytes, so when the stored texts share a prefix,
/// every element that ends inside it has the same output, and the same position in the
/// output. We keep the previous stored text, its output and the end marks of its elements,
/// and transcode only from the last element that ends inside the shared prefix.
#[derive(Debug, Default)]
pub struct ArrayTranscoder {
    /// The form elements are written in (fixed for the transcoder's life).
    pub form: Form,
    raw: Vec<u8>,
    out: String,
    marks: Vec<Mark>,
    /// Where each element of `marks` starts (relative to the value's start).
    starts: Vec<usize>,
    /// How many elements the last call kept from the one before, and whether it ended
    /// with the marks of an array (not an error, not another kind of value).
    kept_elements: usize,
    array: bool,
    /// With [`ArrayTranscoder::with_prefix_keys`]: the [`prefix_key`] chain of the output
    /// up to each element's end, in step with `marks` (only new elements are hashed).
    keys: Option<Vec<u64>>,
    /// Values transcoded so far (calls of `value_at`), and how many bytes at the start of
    /// the last call's output were kept unchanged from the call before.
    calls: u64,
    kept_output: usize,
    /// Stored bytes transcoded afresh (for benchmarks).
    pub fresh_bytes: u64,
}

/// The next link of a chain of keys over a text cut into pieces: `prev` is the key of
/// the text before `piece` (0 at the start). Equal chains, equal texts (up to 64-bit
/// collisions); the key of a prefix does not depend on what follows it.
pub fn prefix_key(prev: u64, piece: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(piece, prev)
}

impl ArrayTranscoder {
    /// A transcoder writing `form`.
    pub fn new(form: Form) -> Self {
        ArrayTranscoder {
            form,
            ..ArrayTranscoder::default()
        }
    }

    /// A transcoder writing `form` that also keeps the key of its output up to the end of
    /// each top-level element ([`ArrayTranscoder::prefix_keys`]).
    pub fn with_prefix_keys(form: Form) -> Self {
        ArrayTranscoder {
            form,
            keys: Some(Vec::new()),
            ..ArrayTranscoder::default()
        }
    }

    /// With [`ArrayTranscoder::with_prefix_keys`], for the last value transcoded (an
    /// array): key `i` chains [`prefix_key`] over the output cut just before the `,` or
    /// `]` after each element — the first piece from the `[` to the end of element 0,
    /// each next one from that `,` to the end of the next element. Empty for other values,
    /// for an empty array, and without prefix keys.
    pub fn prefix_keys(&self) -> &[u64] {
        self.keys.as_deref().unwrap_or(&[])
    }

    /// The normalized CPython serialization of `raw`, reusing the previous call's work.
    pub fn transcode(&mut self, raw: &str) -> Result<&str, TranscodeError> {
        let mut lx = Lexer::new(raw);
        let done = self.value_at(&mut lx).and_then(|()| Ok(lx.finish()?));
        if let Err(e) = done {
            self.forget();
            return Err(e);
        }
        Ok(&self.out)
    }

    /// The last value transcoded.
    pub fn output(&self) -> &str {
        &self.out
    }

    /// How many values were transcoded (or stepped over) so far, failed ones included.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// How many bytes at the start of [`ArrayTranscoder::output`] were kept from the call
    /// before (they equal that call's output): the elements reused, up to the last one's
    /// end. 0 after a call that failed or started afresh.
    pub fn kept_output(&self) -> usize {
        self.kept_output
    }

    /// The raw text of each element of the last value transcoded, `raw` being that value's
    /// stored text, and how many of them the call took unchanged from the call before;
    /// `None` unless that call succeeded on an array. Lexing is not repeated: the
    /// transcoder kept where each element starts and ends.
    pub fn element_texts<'r>(&self, raw: &'r str) -> Option<(usize, Vec<&'r str>)> {
        if !self.array {
            return None;
        }
        let texts = self
            .starts
            .iter()
            .zip(&self.marks)
            .map(|(&a, &(b, _))| raw.get(a..b))
            .collect::<Option<Vec<_>>>()?;
        Some((self.kept_elements, texts))
    }

    /// Transcode the value at the lexer's cursor, leaving the cursor just past it; what
    /// follows is not looked at. `Ok(false)`: an object repeats a key, the value was only
    /// stepped over (validated), and [`ArrayTranscoder::output`] holds nothing.
    pub(crate) fn step_over(&mut self, lx: &mut Lexer<'_>) -> Result<bool, JsonError> {
        let start = lx.i;
        match self.value_at(lx) {
            Ok(()) => Ok(true),
            Err(e) => {
                self.forget();
                match e {
                    TranscodeError::Json(e) => Err(e),
                    TranscodeError::DuplicateKey => {
                        lx.i = start;
                        skip_value(lx, 0)?;
                        Ok(false)
                    }
                }
            }
        }
    }

    fn forget(&mut self) {
        self.kept_output = 0;
        self.kept_elements = 0;
        self.array = false;
        self.raw.clear();
        self.marks.clear();
        self.starts.clear();
        self.out.clear();
        if let Some(keys) = &mut self.keys {
            keys.clear();
        }
    }

    /// The value at the cursor, resumed from the last element of the previous value that
    /// ends inside the bytes both share.
    fn value_at(&mut self, lx: &mut Lexer<'_>) -> Result<(), TranscodeError> {
        self.calls += 1;
        self.kept_output = 0;
        self.kept_elements = 0;
        self.array = false;
        let start = lx.i;
        let rest = &lx.s[start..];
        let shared = crate::tokens::incremental::common_prefix(&self.raw, rest);
        let keep = self
            .marks
            .partition_point(|&(raw_end, _)| raw_end <= shared);
        let from = start + keep.checked_sub(1).map_or(0, |k| self.marks[k].0);
        if keep > 0 {
            let (raw_end, out_end) = self.marks[keep - 1];
            self.kept_output = out_end;
            self.kept_elements = keep;
            self.array = true;
            self.marks.truncate(keep);
            self.starts.truncate(keep);
            if let Some(keys) = &mut self.keys {
                keys.truncate(keep);
            }
            self.out.truncate(out_end);
            lx.i = start + raw_end;
            if lx.next_member(b']')? {
                self.out.push(']');
            } else {
                self.elements(lx, start, false)?;
            }
        } else {
            self.fresh(lx, start)?;
        }
        self.fresh_bytes += (lx.i - from) as u64;
        // Only the bytes past the shared prefix are copied.
        let value = &lx.s[start..lx.i];
        self.raw.truncate(shared.min(value.len()));
        self.raw.extend_from_slice(&value[self.raw.len()..]);
        Ok(())
    }

    fn fresh(&mut self, lx: &mut Lexer<'_>, start: usize) -> Result<(), TranscodeError> {
        self.out.clear();
        self.marks.clear();
        self.starts.clear();
        if let Some(keys) = &mut self.keys {
            keys.clear();
        }
        lx.skip_ws();
        if lx.peek() != Some(b'[') {
            // Not an array: transcoded whole, nothing to reuse next time.
            return value(lx, &mut self.out, 0, &mut Walk::new(self.form));
        }
        lx.i += 1;
        self.array = true;
        self.out.push('[');
        lx.skip_ws();
        if lx.peek() == Some(b']') {
            lx.i += 1;
            self.out.push(']');
            return Ok(());
        }
        self.elements(lx, start, true)
    }

    /// Elements from the cursor (just after `[` or a `,`) to the closing `]`.
    /// Element end marks are relative to `start`, where the value begins.
    fn elements(
        &mut self,
        lx: &mut Lexer<'_>,
        start: usize,
        mut first: bool,
    ) -> Result<(), TranscodeError> {
        let mut walk = Walk::new(self.form);
        loop {
            lx.skip_ws();
            if !first {
                self.out.push(',');
            }
            first = false;
            self.starts.push(lx.i - start);
            value(lx, &mut self.out, 1, &mut walk)?;
            if let Some(keys) = &mut self.keys {
                let from = self.marks.last().map_or(0, |m| m.1);
                let prev = keys.last().copied().unwrap_or(0);
                keys.push(prefix_key(prev, &self.out.as_bytes()[from..]));
            }
            self.marks.push((lx.i - start, self.out.len()));
            if lx.next_member(b']')? {
                self.out.push(']');
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_elements_are_the_raw_texts_of_valid_arrays_only() {
        assert_eq!(
            array_elements(r#" [ {"a": [1, "]"]} , "x\"" ,[] ] "#),
            Some(vec![r#"{"a": [1, "]"]}"#, r#""x\"""#, "[]"])
        );
        assert_eq!(array_elements("[]"), Some(vec![]));
        assert_eq!(
            first_element(r#" [ {"a": [1, "]"]} , 2 ]"#),
            Some(r#"{"a": [1, "]"]}"#)
        );
        assert_eq!(first_element("[ ]"), None);
        assert_eq!(first_element("{}"), None);
        for bad in ["", "{}", "[1,]", "[1 2]", "[1] x", "[\"open]", "[1"] {
            assert_eq!(array_elements(bad), None, "{bad}");
        }
    }

    /// A growing array: the start of the sequences below.
    const GROWING: [&str; 3] = [
        r#"[{"a": 1}, "x"]"#,
        r#"[{"a": 1}, "x", {"b": [2, "]"]}]"#,
        r#"[{"a": 1}, "x", {"b": [2, "]"]}, 3]"#,
    ];

    #[test]
    fn kept_output_is_a_prefix_of_the_previous_output() {
        // Growing arrays, an edit inside an element, a failed value and a non-array in
        // between: the bytes reported kept always equal the previous call's output.
        let texts = GROWING.into_iter().chain([
            r#"[{"a": 1}, "y", {"b": [2, "]"]}, 3]"#,
            r#"[{"a": 1}, "y", {"b": [2, "]"]}, 3"#,
            r#"[{"a": 1}, "y", {"b": [2, "]"]}, 3, 4]"#,
            r#""not an array""#,
            r#"[{"a": 1}, "y"]"#,
            r#"[{"a": 1}, "y", 5]"#,
        ]);
        let mut t = ArrayTranscoder::new(Form::Canonical);
        let mut prev: Option<String> = None;
        let mut kept_some = 0;
        for (i, raw) in texts.enumerate() {
            assert_eq!(t.calls(), i as u64);
            let out = t.transcode(raw).ok().map(str::to_owned);
            let kept = t.kept_output();
            match (&prev, &out) {
                (Some(p), Some(o)) => {
                    assert_eq!(p.get(..kept), o.get(..kept), "{raw}");
                    kept_some += usize::from(kept > 0);
                }
                _ => assert_eq!(kept, 0, "{raw}"),
            }
            prev = out;
        }
        assert!(kept_some >= 4);
    }

    #[test]
    fn transcoder_elements_are_array_elements() {
        // Growing arrays, edits inside and between elements, whitespace, invalid arrays
        // in between, a shared prefix ending mid-element or at a separator, a value that
        // is not an array.
        let texts = GROWING.into_iter().chain([
            r#"[{"a": 1}, "x", {"b": [2, "]"]}  ,  3 , []]"#,
            r#"[{"a": 1}, "x", {"b": [2, "]"]}, 3"#,
            r#"[{"a": 1}, "x", {"b": [2, "]"]}, 3] x"#,
            r#"[{"a": 1}, "x", {"b": [2, "]"]}, 3]"#,
            r#"[{"a": 1}, "xy"]"#,
            r#"[{"a": 12}, "xy"]"#,
            r#"[{"a": 12}, "xy",]"#,
            r#"[{"a": 12}, "xy", "z"]"#,
            "[]",
            "[ ]",
            r#"[{"a": 12}]"#,
            r#"[{"a": 12}]"#,
            r#"{"a": 12}"#,
            r#"[{"a": 12}, ["\u00e9", "é"]]"#,
            r#"[{"a": 12}, ["\u00e9", "é"], 1.5e3]"#,
            "",
            r#"[{"a": 12}, ["\u00e9", "é"], 1.5e3]"#,
        ]);
        let mut json = ArrayTranscoder::new(Form::Canonical);
        let (mut kept, mut arrays) = (0, 0);
        for text in texts {
            let got = match json.transcode(text) {
                Ok(_) => json.element_texts(text),
                Err(_) => {
                    assert_eq!(json.element_texts(text), None, "{text}");
                    continue;
                }
            };
            let want = array_elements(text);
            assert_eq!(got.as_ref().map(|g| &g.1), want.as_ref(), "{text}");
            if let Some((k, elements)) = got {
                // Kept elements are the previous array's leading elements, unchanged.
                assert!(k <= elements.len(), "{text}");
                kept += k;
                arrays += 1;
            }
        }
        assert!(kept >= 12 && arrays >= 12, "{kept} {arrays}");
    }

    use crate::pyjson::parse;

    fn tree(raw: &str) -> String {
        let mut v = parse(raw).unwrap();
        v.normalize();
        v.to_python()
    }

    #[test]
    fn transcoding_equals_tree_serialization() {
        for raw in [
            r#"{"a": [1, 2.50, -0, 1e5, "x\u003cy", {"cache_control": {"type": "ephemeral"}, "b": null}], "signature": "s", "c": true}"#,
            r#"[{"type":"text","text":"caf\u00e9 \ud83d\ude00 \ud800","cache_control":{}} , {"signature":"x"}]"#,
            r#"  {"nested": {"signature": {"cache_control": 1}, "keep": {"a": {"signature": "x", "b": 1}}}}  "#,
            r#""plain""#,
            "NaN",
            "-Infinity",
            "{}",
            "[]",
        ] {
            let mut out = String::new();
            transcode(raw, &mut out).unwrap();
            assert_eq!(out, tree(raw), "{raw}");
        }
    }

    #[test]
    fn duplicates_and_errors() {
        let mut out = String::new();
        assert_eq!(
            transcode(r#"{"a":1,"b":{"a":2},"a":3}"#, &mut out),
            Err(TranscodeError::DuplicateKey)
        );
        // The same key in sibling objects is not a duplicate.
        out.clear();
        transcode(r#"[{"a":1},{"a":2}]"#, &mut out).unwrap();
        assert_eq!(out, r#"[{"a":1},{"a":2}]"#);
        for bad in ["{", "[1,]", "{\"a\" 1}", "\"\\x\"", "01"] {
            assert!(transcode(bad, &mut String::new()).is_err(), "{bad}");
        }
        let deep = "[".repeat(5000) + &"]".repeat(5000);
        assert_eq!(
            transcode(&deep, &mut String::new()),
            Err(TranscodeError::Json(JsonError::TooDeep))
        );
    }

    #[test]
    fn array_transcoder_reuses_only_what_is_shared() {
        let texts = [
            r#"[{"role":"user","content":[{"type":"text","text":"a","cache_control":{"type":"ephemeral"}}]}]"#,
            r#"[{"role":"user","content":[{"type":"text","text":"a"}]}, {"role":"assistant","content":"b\u00e9"}]"#,
            r#"[{"role":"user","content":[{"type":"text","text":"a"}]}, {"role":"assistant","content":"b\u00e9"},{"x":1}]"#,
            r#"[{"role":"user","content":[{"type":"text","text":"a"}]}]"#,
            r#"[{"role":"user","content":[{"type":"text","text":"a"}]}, {"a":1,"a":2}]"#,
            r#"[{"role":"user","content":[{"type":"text","text":"a"}]},{"z":[]}]"#,
            r#"[]"#,
            r#""not an array""#,
            r#"[{"k":"v"}]"#,
        ];
        for form in [Form::Raw, Form::Canonical] {
            let mut at = ArrayTranscoder::new(form);
            for raw in texts {
                let want = {
                    let mut out = String::new();
                    transcode_with(raw, &mut out, form).map(|_| out)
                };
                let got = at.transcode(raw).map(str::to_owned);
                assert_eq!(got, want, "{raw}");
            }
        }
    }

    fn canonical(raw: &str) -> String {
        let mut out = String::new();
        transcode_with(raw, &mut out, Form::Canonical).unwrap();
        let mut v = parse(raw).unwrap();
        v.normalize();
        v.canonicalize();
        assert_eq!(out, v.to_python(), "streaming and tree disagree on {raw}");
        out
    }

    #[test]
    fn canonical_content_collapses_one_text_block_lists() {
        // A cache-marked one-block list and the plain string hash alike.
        assert_eq!(
            canonical(
                r#"[{"role":"system","content":[{"type":"text","text":"env \"x\"","cache_control":{"type":"ephemeral"}}]}]"#
            ),
            canonical(r#"[{"role":"system","content":"env \"x\""}]"#),
        );
        // Either key order; tool_result content at depth.
        assert_eq!(
            canonical(r#"{"content":[{"text":"a","type":"text"}]}"#),
            r#"{"content":"a"}"#
        );
        assert_eq!(
            canonical(
                r#"[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"out"}]}]}]"#
            ),
            r#"[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"out"}]}]"#
        );
        // Not collapsed: two blocks, an extra key, another type, a non-string text,
        // a key other than `content`.
        for raw in [
            r#"{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}"#,
            r#"{"content":[{"type":"text","text":"a","citations":null}]}"#,
            r#"{"content":[{"type":"image","text":"a"}]}"#,
            r#"{"content":[{"type":"text","text":1}]}"#,
            r#"{"contents":[{"type":"text","text":"a"}]}"#,
            r#"{"content":[{"type":"text"}]}"#,
        ] {
            let mut raw_out = String::new();
            transcode(raw, &mut raw_out).unwrap();
            assert_eq!(canonical(raw), raw_out, "{raw}");
        }
        // A string holding what looks like the end of the pattern stays whole.
        assert_eq!(
            canonical(r#"{"content":[{"type":"text","text":"a\"}]"}]}"#),
            r#"{"content":"a\"}]"}"#
        );
    }

    #[test]
    fn splitting_while_transcoding_equals_splitting_then_transcoding() {
        let bodies = [
            r#"{"model":"m","messages":[{"role":"user","content":"a"}],"tools":[{"name":"t"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"a"}, {"role":"assistant","content":[{"type":"text","text":"b","cache_control":{}}]}],"tools":[{"name":"t"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"a"}, {"role":"assistant","content":[{"type":"text","text":"b"}]},{"a":1,"a":2}],"system":"s"}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"a"}, {"role":"assistant","content":[{"type":"text","text":"b"}]}]  ,"system":"s"}"#,
            r#"{"messages":[{"role":"user","content":"a"}],"messages":[{"role":"user","content":"c"}]}"#,
            r#"{"messages":[{"x":1,"x":2}],"messages":[{"role":"user","content":"c"}]}"#,
            r#"{"messages":[{"role":"user","content":"c"}],"messages":[{"x":1,"x":2}]}"#,
            r#"{"messages":"text","stream":true}"#,
            r#"{"messages":[],"stream":true}"#,
            r#"{"messages":[{"role":"user","content":"c"},],"stream":true}"#,
            r#"{"messages":[{"role":"user","content":"c\q"}]}"#,
            r#"{"messages":[{"role":"user","content":"c"}]"#,
            r#"{"stream":true}"#,
        ];
        for form in [Form::Raw, Form::Canonical] {
            let mut at = ArrayTranscoder::new(form);
            for text in bodies {
                let want = split_body(text).ok().map(|b| {
                    let out = b.messages.map(|raw| {
                        let mut out = String::new();
                        transcode_with(raw, &mut out, form).map(|()| out)
                    });
                    (b, out)
                });
                let mut last = None;
                let got = split_body_with(
                    text,
                    &mut |lx| {
                        last = Some(at.step_over(lx)?);
                        Ok(())
                    },
                    None,
                )
                .ok()
                .map(|b| {
                    let out = b.messages.map(|_| match last {
                        Some(true) => Ok(at.output().to_owned()),
                        _ => Err(TranscodeError::DuplicateKey),
                    });
                    (b, out)
                });
                // A body whose messages do not transcode (bad JSON inside) is refused by
                // both; a repeated key is left to the tree parser by both.
                let want =
                    want.filter(|(_, out)| !matches!(out, Some(Err(TranscodeError::Json(_)))));
                assert_eq!(got, want, "{text}");
            }
        }
    }

    #[test]
    fn known_members_split_as_lexing_does() {
        // One KnownMembers across a stream of bodies (as a conversation's rows): every
        // split equals a split from scratch, errors included.
        let tools = r#"[{"name":"Read","description":"Reads a \"file\"","input_schema":{"type":"object"}}]"#;
        let bodies = [
            format!(r#"{{"model":"m","tools":{tools},"system":"s","messages":[]}}"#),
            format!(
                r#"{{"model":"m","tools":{tools},"system":"s","messages":[{{"role":"user","content":"a"}}]}}"#
            ),
            // The known bytes, then more of an unfinished value: both refuse it.
            format!(r#"{{"tools":{tools}1,"messages":[]}}"#),
            format!(r#"{{"tools":{tools}"#),
            // A prefix of the known value only.
            format!(r#"{{"tools":{},"messages":[]}}"#, &tools[..20]),
            format!(r#"{{"tools":{tools} ,"system" : "s"  ,"messages":[]}}"#),
            // Changed values, numbers and literals (never kept: their end depends on
            // what follows), a repeated key.
            r#"{"tools":[],"system":[{"type":"text","text":"x"}],"messages":[]}"#.to_owned(),
            r#"{"tools":5,"system":"s","messages":[]}"#.to_owned(),
            r#"{"tools":56,"system":"s","messages":[]}"#.to_owned(),
            r#"{"tools":null,"system":"s","system":"t","messages":[]}"#.to_owned(),
            r#"{"tools":nul,"system":"s","messages":[]}"#.to_owned(),
            format!(r#"{{"tools":{tools},"system":"s\q","messages":[]}}"#),
            format!(r#"{{"tools":{tools},"system":"s","messages":[]}}"#),
            format!(r#"{{"tools":{tools},"tools":{tools},"messages":[]}}"#),
        ];
        let mut known = KnownMembers::default();
        for text in &bodies {
            let got = split_body_with(text, &mut |lx| skip_value(lx, 0), Some(&mut known));
            assert_eq!(got, split_body(text), "{text}");
        }
        assert_eq!(known.tools, tools.as_bytes());
    }

    #[test]
    fn split_body_finds_sections() {
        let b = split_body(r#"{"model":"claude-\u0078","messages":[{"role":"user","content":"hi"}],"max_tokens":10,"system":"s","stream":true,"tools":null,"stream":false,"stream":true}"#).unwrap();
        assert_eq!(b.model.as_deref(), Some("claude-x"));
        assert!(b.stream);
        assert_eq!(b.messages, Some(r#"[{"role":"user","content":"hi"}]"#));
        assert_eq!(b.system, Some(r#""s""#));
        assert_eq!(b.tools, Some("null"));
        assert!(split_body("[1]").is_err());
        assert!(split_body(r#"{"model":"x"} trailing"#).is_err());
    }
}
