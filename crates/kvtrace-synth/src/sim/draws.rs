//! Random shapes used across the simulation: a log-normal draw (also used by the run's
//! planner for conversation lengths), log-uniform content sizes, and the user's pause
//! between turns, from seconds to most of a day.

use super::Conv;
use crate::ids::SynthRng;
use rand::Rng;

/// A log-normal draw with the given median.
pub(crate) fn lognormal(rng: &mut SynthRng, median: f64, sigma: f64) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    median * (sigma * z).exp()
}

impl<'a> Conv<'a> {
    /// A size between 2^`lo_log2` and 2^`hi_log2`, uniform in log scale.
    pub(super) fn size(&mut self, lo_log2: f64, hi_log2: f64) -> usize {
        2f64.powf(self.rng.gen_range(lo_log2..hi_log2)) as usize
    }

    /// The user's think time before the next turn (ms): mostly seconds to minutes, now and
    /// then hours.
    pub(super) fn pause(&mut self) -> i64 {
        let r: f64 = self.rng.gen();
        if r < 0.55 {
            self.rng.gen_range(5_000..90_000)
        } else if r < 0.85 {
            self.rng.gen_range(90_000..1_200_000)
        } else if r < 0.97 {
            self.rng.gen_range(1_200_000..10_800_000)
        } else {
            self.rng.gen_range(10_800_000..50_400_000)
        }
    }
}
