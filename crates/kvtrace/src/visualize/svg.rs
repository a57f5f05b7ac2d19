//! Minimal inline-SVG drawing for the dashboard: a plot frame with scales, axes, ticks,
//! titles and legends, and number formatting for tick labels. No external assets: every
//! chart is plain SVG text embedded in the page; hover values are `<title>` tooltips.
//!
//! Layout is computed, not hoped for: text widths are estimated from DejaVu Sans metrics
//! (the usual `system-ui` on Linux, wider than Helvetica or Segoe UI, so an upper bound
//! elsewhere); a legend that does not fit beside the title wraps into rows below it and
//! the frame grows; time ticks sit on round real times and never overlap.

use std::fmt::Write as _;

/// Escape text for XML content and attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A coordinate or percentage written as `{:.N}` writes an `f64` (N ≤ 3), without the
/// general float formatter where the rounding is plain: the charts write tens of
/// thousands of them. `Px(x)` and `x` print the same text with every format spec.
#[derive(Debug, Clone, Copy)]
pub struct Px(pub f64);

impl std::fmt::Display for Px {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plain = f.width().is_none() && !f.sign_plus() && !f.alternate();
        let fast = f
            .precision()
            .filter(|&p| p <= 3 && plain)
            .and_then(|p| fixed(self.0, p));
        match &fast {
            Some((buf, len)) => match std::str::from_utf8(&buf[..*len]) {
                Ok(text) => f.write_str(text),
                Err(_) => std::fmt::Display::fmt(&self.0, f),
            },
            None => std::fmt::Display::fmt(&self.0, f),
        }
    }
}

/// `v` with `p` decimals, rounded to nearest, when the rounding cannot be in doubt: the
/// scaled value is below 10^12 (so the product `|v| * 10^p` is within 2^-14 of the exact
/// one) and its fraction is not within 10^-3 of one half. `None`: format it in full.
fn fixed(v: f64, p: usize) -> Option<([u8; 24], usize)> {
    const SCALE: [f64; 4] = [1.0, 10.0, 100.0, 1000.0];
    const UNIT: [u64; 4] = [1, 10, 100, 1000];
    let scaled = v.abs() * SCALE[p];
    // Also turns away NaN and the infinities.
    if !scaled.is_finite() || scaled >= 1e12 {
        return None;
    }
    let whole = scaled.floor();
    let frac = scaled - whole;
    if (frac - 0.5).abs() < 1e-3 {
        return None;
    }
    let n = whole as u64 + u64::from(frac > 0.5);
    let mut buf = [0u8; 24];
    let mut len = 0;
    if v.is_sign_negative() {
        buf[0] = b'-';
        len = 1;
    }
    let mut int = itoa::Buffer::new();
    let digits = int.format(n / UNIT[p]).as_bytes();
    buf[len..len + digits.len()].copy_from_slice(digits);
    len += digits.len();
    if p > 0 {
        buf[len] = b'.';
        len += 1;
        let mut rest = n % UNIT[p];
        for k in (0..p).rev() {
            buf[len + k] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        len += p;
    }
    Some((buf, len))
}

/// Compact tick label: `950`, `12k`, `1.5M`, `0.25`.
pub fn short(v: f64) -> String {
    let a = v.abs();
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    if a >= 1e6 {
        format!("{}M", trim(format!("{:.1}", v / 1e6)))
    } else if a >= 1e3 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        trim(format!("{v:.2}"))
    }
}

/// About `n` round tick values covering `lo..=hi`.
pub fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater)
        || !lo.is_finite()
        || !hi.is_finite()
    {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut v = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while v <= hi + step * 1e-9 && out.len() < 50 {
        out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        v += step;
    }
    out
}

/// Font sizes of the page's CSS classes, in px.
pub const TITLE_PX: f64 = 15.0;
pub const LEGEND_PX: f64 = 12.0;
pub const TICK_PX: f64 = 11.0;

/// Advance width of one character in em (DejaVu Sans, rounded up).
fn char_em(c: char) -> f64 {
    match c {
        'i' | 'j' | 'l' | 'I' | 'J' | '\'' | '`' => 0.3,
        ' ' | '.' | ',' | ':' | ';' | '!' | '|' | '/' | '\\' => 0.34,
        'f' | 't' | 'r' | '(' | ')' | '[' | ']' | '{' | '}' | '-' => 0.42,
        'c' | 's' | 'z' | '"' | '*' => 0.56,
        'm' => 0.98,
        'w' => 0.82,
        'M' | 'W' | '%' | '@' | '—' | '…' => 1.0,
        '–' | '_' => 0.5,
        '0'..='9' | 'a'..='z' | '$' | '?' => 0.64,
        'A'..='Z' | '&' => 0.78,
        '×' | '≥' | '≤' | '+' | '=' | '<' | '>' | '∞' | '#' | '~' | '^' => 0.84,
        c if c.is_ascii() => 0.7,
        // CJK and other wide scripts.
        c if c as u32 >= 0x2E80 => 1.0,
        _ => 0.75,
    }
}

/// Estimated width of `s` in px at `px` font size (bold is about 10% wider).
pub fn text_width(s: &str, px: f64, bold: bool) -> f64 {
    let em: f64 = s.chars().map(char_em).sum();
    em * px * if bold { 1.1 } else { 1.0 }
}

/// `s` if it fits in `max` px at `px`, else its head and tail around an ellipsis (the
/// tail keeps a sub-agent suffix such as `/SA12` whole).
pub fn ellipsize(s: &str, px: f64, max: f64) -> String {
    if text_width(s, px, false) <= max {
        return s.to_owned();
    }
    let chars: Vec<char> = s.chars().collect();
    // A short last `/` segment (`/SA12`) is kept whole when it leaves room for a head.
    let suffix = chars
        .iter()
        .rposition(|c| *c == '/')
        .map(|p| chars.len() - p)
        .filter(|n| *n <= 6);
    for keep in (1..chars.len()).rev() {
        let tail = match suffix {
            Some(n) if n + 2 <= keep => n,
            _ => keep * 2 / 5,
        };
        let head = keep - tail;
        let out: String = chars[..head]
            .iter()
            .chain(['…'].iter())
            .chain(chars[chars.len() - tail..].iter())
            .collect();
        if text_width(&out, px, false) <= max {
            return out;
        }
    }
    "…".to_owned()
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swatch {
    /// A filled square (bars, areas).
    Box,
    /// A small dot (scatter points).
    Dot,
    /// A solid line.
    Line,
    /// A dashed line (markers).
    Dash,
    /// No mark: the label is a plain note.
    Text,
}

/// One legend entry.
#[derive(Debug, Clone)]
pub struct Key {
    pub colour: String,
    pub label: String,
    pub opacity: f64,
    pub swatch: Swatch,
}

impl Key {
    pub fn new(swatch: Swatch, colour: &str, label: &str) -> Key {
        Key {
            colour: colour.to_owned(),
            label: label.to_owned(),
            opacity: 1.0,
            swatch,
        }
    }

    pub fn boxed(colour: &str, label: &str) -> Key {
        Key::new(Swatch::Box, colour, label)
    }

    fn width(&self) -> f64 {
        let mark = if self.swatch == Swatch::Text {
            0.0
        } else {
            18.0
        };
        mark + text_width(&self.label, LEGEND_PX, false)
    }

    fn draw(&self, x: f64, baseline: f64) -> String {
        let c = esc(&self.colour);
        let op = self.opacity;
        let mid = baseline - 4.0;
        let mark = match self.swatch {
            Swatch::Box => format!(
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{c}\" fill-opacity=\"{op}\"/>",
                baseline - 10.0
            ),
            Swatch::Dot => format!(
                "<circle cx=\"{:.1}\" cy=\"{mid:.1}\" r=\"3.5\" fill=\"{c}\" fill-opacity=\"{op}\"/>",
                x + 6.0
            ),
            Swatch::Line => format!(
                "<line x1=\"{x:.1}\" x2=\"{:.1}\" y1=\"{mid:.1}\" y2=\"{mid:.1}\" stroke=\"{c}\" stroke-width=\"2\" stroke-opacity=\"{op}\"/>",
                x + 13.0
            ),
            Swatch::Dash => format!(
                "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{c}\" stroke-width=\"1.5\" stroke-dasharray=\"3 2\"/>",
                x + 6.0,
                x + 6.0,
                baseline - 11.0,
                baseline + 2.0
            ),
            Swatch::Text => String::new(),
        };
        let tx = if self.swatch == Swatch::Text {
            x
        } else {
            x + 18.0
        };
        format!(
            "{mark}<text class=\"lg\" x=\"{tx:.1}\" y=\"{baseline:.1}\">{}</text>",
            esc(&self.label)
        )
    }
}

/// A plot area inside an SVG of `w × h` user units.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub w: f64,
    pub h: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
    pub x: (f64, f64),
    pub y: (f64, f64),
}

/// Baseline of the chart title, and the height of one legend row.
const TITLE_Y: f64 = 22.0;
const LEGEND_ROW: f64 = 20.0;
/// Space between legend entries, and between the title and a legend beside it.
const KEY_GAP: f64 = 16.0;
const TITLE_GAP: f64 = 28.0;

impl Frame {
    pub fn new(w: f64, h: f64, x: (f64, f64), y: (f64, f64)) -> Frame {
        let fix = |r: (f64, f64)| if r.1 > r.0 { r } else { (r.0, r.0 + 1.0) };
        Frame {
            w,
            h,
            left: 70.0,
            right: 20.0,
            top: 40.0,
            bottom: 48.0,
            x: fix(x),
            y: fix(y),
        }
    }

    pub fn plot_w(&self) -> f64 {
        self.w - self.left - self.right
    }

    pub fn plot_h(&self) -> f64 {
        self.h - self.top - self.bottom
    }

    pub fn sx(&self, v: f64) -> f64 {
        self.left + (v - self.x.0) / (self.x.1 - self.x.0) * self.plot_w()
    }

    pub fn sy(&self, v: f64) -> f64 {
        self.top + self.plot_h() - (v - self.y.0) / (self.y.1 - self.y.0) * self.plot_h()
    }

    /// Legend rows: (x, baseline, key index). One row right of the title when everything
    /// fits there, else rows under the title, wrapped at the frame's width.
    fn legend_layout(&self, title: &str, keys: &[Key]) -> Vec<(f64, f64, usize)> {
        if keys.is_empty() {
            return Vec::new();
        }
        let right = self.w - self.right;
        let total: f64 =
            keys.iter().map(Key::width).sum::<f64>() + KEY_GAP * (keys.len() - 1) as f64;
        let title_end = self.left + text_width(title, TITLE_PX, true);
        let mut out = Vec::with_capacity(keys.len());
        if title_end + TITLE_GAP + total <= right {
            let mut x = right - total;
            for (i, k) in keys.iter().enumerate() {
                out.push((x, TITLE_Y, i));
                x += k.width() + KEY_GAP;
            }
            return out;
        }
        let (mut x, mut y) = (self.left, TITLE_Y + LEGEND_ROW);
        for (i, k) in keys.iter().enumerate() {
            if x > self.left && x + k.width() > right {
                x = self.left;
                y += LEGEND_ROW;
            }
            out.push((x, y, i));
            x += k.width() + KEY_GAP;
        }
        out
    }

    /// Opening tag, accessible title, chart title (left) and the legend. A legend that
    /// does not fit beside the title goes in rows below it: the frame grows by those rows
    /// (top margin and height), so the plot keeps its size and nothing overlaps.
    pub fn open(&mut self, title: &str, keys: &[Key]) -> String {
        let layout = self.legend_layout(title, keys);
        let last = layout.iter().map(|l| l.1).fold(TITLE_Y, f64::max);
        let extra = last - TITLE_Y;
        self.top += extra;
        self.h += extra;
        let mut o = format!(
            "<svg viewBox=\"0 0 {w} {h}\" width=\"100%\" role=\"img\" aria-label=\"{t}\"><title>{t}</title><text class=\"ct\" x=\"{l}\" y=\"{TITLE_Y}\">{t}</text>",
            w = self.w,
            h = self.h,
            t = esc(title),
            l = self.left
        );
        for (x, y, i) in layout {
            o.push_str(&keys[i].draw(x, y));
        }
        o
    }

    /// Gridlines, tick labels and axis labels. `xt`/`yt`: (value, label).
    pub fn axes(
        &self,
        xt: &[(f64, String)],
        yt: &[(f64, String)],
        xlabel: &str,
        ylabel: &str,
    ) -> String {
        let mut o = String::new();
        let (x0, x1) = (self.left, self.left + self.plot_w());
        let (y0, y1) = (self.top, self.top + self.plot_h());
        for (v, label) in yt {
            let y = self.sy(*v);
            let _ = write!(
                o,
                "<line class=\"g\" x1=\"{x0:.1}\" x2=\"{x1:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text class=\"tk\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                x0 - 6.0,
                y + 4.0,
                esc(label)
            );
        }
        for (v, label) in xt {
            let x = self.sx(*v);
            let _ = write!(
                o,
                "<line class=\"a\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{y1:.1}\" y2=\"{:.1}\"/><text class=\"tk xt\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                y1 + 4.0,
                y1 + 17.0,
                esc(label)
            );
        }
        let _ = write!(
            o,
            "<line class=\"a\" x1=\"{x0:.1}\" x2=\"{x1:.1}\" y1=\"{y1:.1}\" y2=\"{y1:.1}\"/><line class=\"a\" x1=\"{x0:.1}\" x2=\"{x0:.1}\" y1=\"{y0:.1}\" y2=\"{y1:.1}\"/>"
        );
        let _ = write!(
            o,
            "<text class=\"al\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            (x0 + x1) / 2.0,
            self.h - 8.0,
            esc(xlabel)
        );
        let _ = write!(
            o,
            "<text class=\"al\" transform=\"translate({:.1} {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
            (self.left - 54.0).max(16.0),
            (y0 + y1) / 2.0,
            esc(ylabel)
        );
        o
    }

    /// Round ticks of the y range, labelled with [`short`] and a suffix.
    pub fn y_ticks(&self, suffix: &str) -> Vec<(f64, String)> {
        ticks(self.y.0, self.y.1, 5)
            .into_iter()
            .map(|v| (v, format!("{}{suffix}", short(v))))
            .collect()
    }
}

/// Round pause lengths tried as the marking threshold (above the shortening gap).
pub const PAUSE_THRESHOLDS: [f64; 16] = [
    5.0 * MIN,
    10.0 * MIN,
    15.0 * MIN,
    30.0 * MIN,
    HOUR,
    2.0 * HOUR,
    3.0 * HOUR,
    6.0 * HOUR,
    12.0 * HOUR,
    DAY,
    2.0 * DAY,
    7.0 * DAY,
    14.0 * DAY,
    28.0 * DAY,
    91.0 * DAY,
    364.0 * DAY,
];

/// A round duration: `0`, `45s`, `2m30s`, `20m`, `1h30m`, `2d6h`. Zero units are left out,
/// so a tick on a 15-minute step reads `1h15m`, never `1h15m00s`.
pub fn duration(secs: f64) -> String {
    let s = if secs.is_finite() {
        secs.max(0.0).round() as u64
    } else {
        0
    };
    if s == 0 {
        return "0".into();
    }
    let parts = [
        (s / 86_400, "d"),
        (s / 3600 % 24, "h"),
        (s / 60 % 60, "m"),
        (s % 60, "s"),
    ];
    let mut o = String::new();
    for (v, unit) in parts {
        if v > 0 {
            let _ = write!(o, "{v}{unit}");
        }
    }
    o
}

/// Room per time tick aimed at (px; about 8 on a 1,100 px axis); the least distance between
/// two ticks of one step (px); the least room between two tick labels (px).
const PX_PER_TIME_TICK: f64 = 135.0;
const TICK_ROOM: f64 = 64.0;
const TICK_PAD: f64 = 14.0;

/// The pause markers of a time axis.
#[derive(Debug, Clone, PartialEq)]
pub struct PauseMarks {
    /// (shown position of the pause's middle, real length in seconds), in time order.
    pub marked: Vec<(f64, f64)>,
    /// Shortened pauses (longer than the gap), marked or not.
    pub all: usize,
    /// Every marked pause is longer than this (seconds).
    pub over: f64,
    /// Only the longest pauses over `over` are marked (not all of them).
    pub longest_only: bool,
}

/// A time axis on which pauses longer than `gap` seconds are shortened to `gap`, so
/// bursts of requests separated by hours stay readable. Piecewise linear and monotonic.
#[derive(Debug, Clone)]
pub struct TimeAxis {
    /// (real seconds, shown seconds) at each request time.
    knots: Vec<(f64, f64)>,
    pub gap: f64,
}

impl TimeAxis {
    /// `times` in ascending order.
    pub fn new(times: &[f64], gap: f64) -> TimeAxis {
        let mut knots: Vec<(f64, f64)> = Vec::with_capacity(times.len());
        for &t in times {
            match knots.last() {
                None => knots.push((t, 0.0)),
                Some(&(r, s)) if t > r => knots.push((t, s + (t - r).min(gap))),
                _ => {}
            }
        }
        if knots.is_empty() {
            knots.push((0.0, 0.0));
        }
        TimeAxis { knots, gap }
    }

    /// Shown position of a real time.
    pub fn map(&self, t: f64) -> f64 {
        let (r0, s0) = self.knots[0];
        if t <= r0 {
            return s0 - (r0 - t).min(self.gap);
        }
        let i = self.knots.partition_point(|k| k.0 <= t);
        if i >= self.knots.len() {
            let (r, s) = self.knots[self.knots.len() - 1];
            return s + (t - r).min(self.gap);
        }
        let (ra, sa) = self.knots[i - 1];
        let (rb, sb) = self.knots[i];
        sa + (t - ra) / (rb - ra) * (sb - sa)
    }

    /// Real time of a shown position.
    pub fn unmap(&self, s: f64) -> f64 {
        let i = self.knots.partition_point(|k| k.1 <= s);
        if i == 0 {
            return self.knots[0].0;
        }
        if i >= self.knots.len() {
            let (r, sh) = self.knots[self.knots.len() - 1];
            return r + (s - sh);
        }
        let (ra, sa) = self.knots[i - 1];
        let (rb, sb) = self.knots[i];
        ra + (s - sa) / (sb - sa) * (rb - ra)
    }

    /// Shown length of the axis (last request).
    pub fn end(&self) -> f64 {
        self.knots[self.knots.len() - 1].1
    }

    /// Shortened pauses: (shown position of the pause's middle, real length in seconds).
    pub fn breaks(&self) -> Vec<(f64, f64)> {
        self.knots
            .windows(2)
            .filter(|w| w[1].0 - w[0].0 > self.gap)
            .map(|w| ((w[0].1 + w[1].1) / 2.0, w[1].0 - w[0].0))
            .collect()
    }

    /// The pauses worth a marker: those longer than the smallest round threshold (the
    /// shortening gap, then [`PAUSE_THRESHOLDS`] above it) that leaves at most `max`. When
    /// the next round threshold would leave none, the `max` longest instead.
    pub fn marked_breaks(&self, max: usize) -> PauseMarks {
        let all = self.breaks();
        let count = |t: f64| all.iter().filter(|b| b.1 > t).count();
        let mut over = self.gap;
        for t in PAUSE_THRESHOLDS.into_iter().filter(|t| *t > self.gap) {
            if count(over) <= max {
                break;
            }
            if count(t) == 0 {
                // Too many over `over`, none over `t`: the longest ones.
                let mut by_len: Vec<(f64, f64)> = all.clone();
                by_len.sort_by(|a, b| b.1.total_cmp(&a.1));
                by_len.truncate(max);
                by_len.sort_by(|a, b| a.0.total_cmp(&b.0));
                return PauseMarks {
                    marked: by_len,
                    all: all.len(),
                    over,
                    longest_only: true,
                };
            }
            over = t;
        }
        let marked: Vec<(f64, f64)> = all.iter().copied().filter(|b| b.1 > over).collect();
        PauseMarks {
            longest_only: marked.len() > max,
            marked: if marked.len() > max {
                let mut by_len = marked;
                by_len.sort_by(|a, b| b.1.total_cmp(&a.1));
                by_len.truncate(max);
                by_len.sort_by(|a, b| a.0.total_cmp(&b.0));
                by_len
            } else {
                marked
            },
            all: all.len(),
            over,
        }
    }

    /// Multiples of `step` (real seconds) in `(0, real_end]`, ascending. Inside a knot segment
    /// where multiples are closer than [`TICK_ROOM`] px only the first and the last can
    /// ever be labelled (the others have a same-level neighbour too close), so only those.
    fn candidates(&self, step: f64, real_end: f64, px_per_shown: f64) -> Vec<f64> {
        let mut segs: Vec<((f64, f64), (f64, f64))> =
            self.knots.windows(2).map(|w| (w[0], w[1])).collect();
        let (rl, sl) = self.knots[self.knots.len() - 1];
        if real_end > rl {
            segs.push(((rl, sl), (real_end, self.map(real_end))));
        }
        let mut out = Vec::new();
        for ((ra, sa), (rb, sb)) in segs {
            if rb <= ra {
                continue;
            }
            let first = (ra / step).floor() + 1.0;
            let last = (rb / step).floor();
            if last < first {
                continue;
            }
            let px_per_step = step * (sb - sa) / (rb - ra) * px_per_shown;
            if px_per_step >= TICK_ROOM {
                let mut k = first;
                while k <= last {
                    out.push(k * step);
                    k += 1.0;
                }
            } else {
                out.push(first * step);
                if last > first {
                    out.push(last * step);
                }
            }
        }
        out
    }

    /// The ticks of one chain of nested steps, coarse to fine, growing from 0: a multiple
    /// of a step is kept when a neighbour one step away is kept already (so each step fills
    /// runs between and beside coarser ticks, never a lone `5h52m`), both its neighbours
    /// are at least [`TICK_ROOM`] px away and its label collides with no kept one. Then
    /// stretches left empty get multiples of a step no finer than the one that placed the
    /// most. As (x px, shown position, label), by x.
    fn chain_ticks(&self, chain: &[f64], f: &Frame, real_end: f64) -> Vec<(f64, f64, String)> {
        let px_per_shown = f.plot_w() / (f.x.1 - f.x.0);
        let px = |t: f64| f.sx(self.map(t));
        let key = |t: f64| (t * 1000.0).round() as i64;
        let mut kept: Vec<(f64, f64, String)> = Vec::new();
        let mut kept_at: rustc_hash::FxHashSet<i64> = Default::default();
        if self.map(0.0) >= f.x.0 - 1e-9 {
            kept.push((px(0.0), self.map(0.0), duration(0.0)));
            kept_at.insert(key(0.0));
        }
        // The step that placed the most ticks (ties: the coarser).
        let mut main = (0usize, chain[0]);
        for &step in chain {
            let before = kept.len();
            let cands = self.candidates(step, real_end, px_per_shown);
            // Runs grow both ways from kept ticks: passes alternate in direction until
            // neither adds a tick.
            let mut idle = 0;
            let mut forward = true;
            while idle < 2 {
                let mut changed = false;
                let order: Box<dyn Iterator<Item = &f64>> = if forward {
                    Box::new(cands.iter())
                } else {
                    Box::new(cands.iter().rev())
                };
                for &t in order {
                    if kept_at.contains(&key(t))
                        || !(kept_at.contains(&key(t - step)) || kept_at.contains(&key(t + step)))
                    {
                        continue;
                    }
                    let shown = self.map(t);
                    if shown < f.x.0 - 1e-9 || shown > f.x.1 + 1e-9 {
                        continue;
                    }
                    let x = px(t);
                    let label = duration(t);
                    let w = text_width(&label, TICK_PX, false);
                    if x - w / 2.0 < f.left - 30.0 || x + w / 2.0 > f.w - 2.0 {
                        continue;
                    }
                    let crowded =
                        |u: f64| (0.0..=real_end).contains(&u) && (px(u) - x).abs() < TICK_ROOM;
                    if crowded(t - step) || crowded(t + step) {
                        continue;
                    }
                    let collides = kept.iter().any(|(kx, _, kl)| {
                        (kx - x).abs() < (w + text_width(kl, TICK_PX, false)) / 2.0 + TICK_PAD
                    });
                    if !collides {
                        kept.push((x, shown, label));
                        kept_at.insert(key(t));
                        changed = true;
                    }
                }
                idle = if changed { 0 } else { idle + 1 };
                forward = !forward;
            }
            if kept.len() - before > main.0 {
                main = (kept.len() - before, step);
            }
        }
        // Stretches the runs could not reach (where steps are crowded) still get ticks,
        // well away from every other one: multiples of the coarsest step first, down to
        // the step that placed the most.
        for &step in chain.iter().filter(|s| **s >= main.1) {
            for t in self.candidates(step, real_end, px_per_shown) {
                let shown = self.map(t);
                let (x, label) = (px(t), duration(t));
                let w = text_width(&label, TICK_PX, false);
                let clear = kept
                    .iter()
                    .all(|(kx, _, _)| (kx - x).abs() >= 1.5 * TICK_ROOM);
                if clear && shown <= f.x.1 + 1e-9 && x + w / 2.0 <= f.w - 2.0 {
                    kept.push((x, shown, label));
                }
            }
        }
        kept.sort_by(|a, b| a.0.total_cmp(&b.0));
        kept
    }

    /// Ticks at round real times, labelled by [`duration`], for a frame whose x range is
    /// shown seconds. Coarse steps first, finer ones only where they have room, so a long
    /// pause-shortened axis reads `0, 1m, 2m, 3m, 1h, 6h, 12h` and a plain one `0, 5m, 10m,
    /// …`. Of the [`TICK_CHAINS`], the one nearest one tick per [`PX_PER_TIME_TICK`] wins.
    /// Pauses make the spacing uneven, never the values.
    pub fn ticks(&self, f: &Frame) -> Vec<(f64, String)> {
        let real_end = self.unmap(f.x.1);
        let target = (f.plot_w() / PX_PER_TIME_TICK).round().clamp(3.0, 12.0) as usize;
        let mut best: Option<Vec<(f64, f64, String)>> = None;
        for chain in &TICK_CHAINS {
            let t = self.chain_ticks(chain, f, real_end);
            let better = best
                .as_ref()
                .is_none_or(|b| t.len().abs_diff(target) < b.len().abs_diff(target));
            if better {
                best = Some(t);
            }
        }
        best.unwrap_or_default()
            .into_iter()
            .map(|(_, s, l)| (s, l))
            .collect()
    }
}

const MIN: f64 = 60.0;
const HOUR: f64 = 3600.0;
const DAY: f64 = 86_400.0;

/// Chains of round time steps, coarse to fine, each step dividing the one before (so the
/// finer ticks fall evenly between the coarser ones): 1/5/15/30 and 1/3/6/12 h, 7 days;
/// or 1/2/10/30 and 1/2/6/12 h, 2 days.
pub const TICK_CHAINS: [[f64; 17]; 2] = [
    [
        364.0 * DAY,
        28.0 * DAY,
        14.0 * DAY,
        7.0 * DAY,
        DAY,
        12.0 * HOUR,
        6.0 * HOUR,
        3.0 * HOUR,
        HOUR,
        30.0 * MIN,
        15.0 * MIN,
        5.0 * MIN,
        MIN,
        30.0,
        15.0,
        5.0,
        1.0,
    ],
    [
        364.0 * DAY,
        28.0 * DAY,
        14.0 * DAY,
        2.0 * DAY,
        DAY,
        12.0 * HOUR,
        6.0 * HOUR,
        2.0 * HOUR,
        HOUR,
        30.0 * MIN,
        10.0 * MIN,
        2.0 * MIN,
        MIN,
        30.0,
        10.0,
        2.0,
        1.0,
    ],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn px_prints_what_the_float_formatter_prints() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut values = vec![
            0.0,
            -0.0,
            0.05,
            0.15,
            0.25,
            0.35,
            2.5,
            -2.5,
            0.045,
            1.005,
            1e11,
            999_999_999_999.9,
            1e12,
            1e15,
            -0.04,
            -0.06,
            123.456,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            5e-324,
            0.95,
            9.95,
            99.95,
            0.0005,
            0.0015,
        ];
        for _ in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let unit = (seed >> 11) as f64 / (1u64 << 53) as f64;
            let magnitude = 10f64.powi((seed % 16) as i32 - 4);
            let sign = if seed & 1 == 0 { 1.0 } else { -1.0 };
            values.push(sign * unit * magnitude);
            // Values on and next to the half-way points of each precision.
            let half = ((seed >> 20) % 100_000) as f64 + 0.5;
            values.push(half / 10f64.powi((seed % 4) as i32));
        }
        for v in values {
            for (got, want) in [
                (format!("{:.0}", Px(v)), format!("{v:.0}")),
                (format!("{:.1}", Px(v)), format!("{v:.1}")),
                (format!("{:.2}", Px(v)), format!("{v:.2}")),
                (format!("{:.3}", Px(v)), format!("{v:.3}")),
                (format!("{:>9.1}", Px(v)), format!("{v:>9.1}")),
                (format!("{:+.1}", Px(v)), format!("{v:+.1}")),
                (format!("{}", Px(v)), format!("{v}")),
            ] {
                assert_eq!(got, want, "{v:e}");
            }
        }
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(
            ticks(0.0, 100.0, 5),
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        assert_eq!(short(25_400.0), "25.4k");
        assert_eq!(short(2_000_000.0), "2M");
        assert_eq!(short(0.5), "0.5");
        assert_eq!(esc("a<b&\"c\""), "a&lt;b&amp;&quot;c&quot;");
    }

    #[test]
    fn time_axis_shortens_pauses() {
        let a = TimeAxis::new(&[0.0, 10.0, 1010.0, 1020.0], 120.0);
        assert_eq!(a.end(), 140.0);
        assert_eq!(a.map(10.0), 10.0);
        assert_eq!(a.map(510.0), 70.0);
        assert_eq!(a.unmap(70.0), 510.0);
        assert_eq!(a.map(5000.0), 260.0);
        assert_eq!(a.breaks(), vec![(70.0, 1000.0)]);
    }
}
