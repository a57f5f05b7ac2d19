//! Minimal inline-SVG drawing for the dashboard: a plot frame with scales, axes, ticks,
//! titles and legends, and number formatting for tick labels. No external assets: every
//! chart is plain SVG text embedded in the page; hover values are `<title>` tooltips.

use std::fmt::Write as _;

use crate::report::units::clock;

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

    /// Opening tag, accessible title, chart title (left) and a background.
    pub fn open(&self, title: &str) -> String {
        format!(
            "<svg viewBox=\"0 0 {w} {h}\" width=\"100%\" role=\"img\" aria-label=\"{t}\"><title>{t}</title><text class=\"ct\" x=\"{l}\" y=\"22\">{t}</text>",
            w = self.w,
            h = self.h,
            t = esc(title),
            l = self.left
        )
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
                "<line class=\"a\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{y1:.1}\" y2=\"{:.1}\"/><text class=\"tk\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
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
            "<text class=\"al\" transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
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

    /// Round ticks of the x range.
    pub fn x_ticks(&self, n: usize) -> Vec<(f64, String)> {
        ticks(self.x.0, self.x.1, n)
            .into_iter()
            .map(|v| (v, short(v)))
            .collect()
    }

    /// A legend row at the top right: (colour, label, opacity).
    pub fn legend(&self, items: &[(&str, &str, f64)]) -> String {
        let width: f64 = items
            .iter()
            .map(|(_, l, _)| 22.0 + 7.0 * l.chars().count() as f64)
            .sum();
        let mut x = (self.w - self.right - width).max(self.left + 260.0);
        let mut o = String::new();
        for (colour, label, opacity) in items {
            let _ = write!(
                o,
                "<rect x=\"{x:.1}\" y=\"12\" width=\"12\" height=\"12\" fill=\"{colour}\" fill-opacity=\"{opacity}\"/><text class=\"lg\" x=\"{:.1}\" y=\"22\">{}</text>",
                x + 16.0,
                esc(label)
            );
            x += 22.0 + 7.0 * label.chars().count() as f64;
        }
        o
    }
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

    /// About `n` ticks at round shown positions, labelled with the real elapsed time.
    pub fn ticks(&self, n: usize) -> Vec<(f64, String)> {
        ticks(0.0, self.end().max(1.0), n)
            .into_iter()
            .map(|s| (s, clock(self.unmap(s))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(clock(3725.0), "1h02m");
    }
}
