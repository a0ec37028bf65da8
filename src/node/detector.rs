//! Phi-accrual failure detection over heartbeat gaps (Hayashibara et al., 2004), in integer
//! arithmetic.
//!
//! Phi at elapsed time `t` since the last heartbeat is `-log10(P(gap > t))` under a normal
//! model of recent gaps. Crossing a fixed phi threshold is the same as `t` crossing
//! `mean + z * std` for a `z` that depends only on the threshold, so the detector computes
//! that deadline directly: `z` is derived once from the configuration, and every decision at
//! run time is integer comparison of nanoseconds. That keeps decisions identical on every
//! machine, which floating-point `exp` in the hot path would not guarantee.

use crate::time::Instant;
use std::time::Duration;

/// Upper bound on the configurable window, so the ring buffer is a fixed array.
pub const DETECTOR_WINDOW_MAX: usize = 64;

/// The detector's configuration in the units it computes with.
#[derive(Copy, Clone, Debug)]
pub(crate) struct DetectorParams {
    pub window: u16,
    pub min_std_us: u64,
    /// Normal quantile of the phi threshold, in thousandths.
    pub z_milli: u64,
}

/// The window's ring comes last (`repr(C)`): a node configured for fewer than
/// `DETECTOR_WINDOW_MAX` gaps never touches its tail (see [`PhiDetector::bytes_used`]).
#[derive(Clone, Debug)]
#[repr(C)]
pub(crate) struct PhiDetector {
    len: u16,
    next: u16,
    sum_us: u64,
    sum_sq_us: u128,
    last: Instant,
    /// When phi crosses the threshold, recomputed whenever an input changes it so that
    /// asking (on every wake-up computation) costs nothing.
    deadline: Instant,
    gaps_us: [u32; DETECTOR_WINDOW_MAX],
}

impl PhiDetector {
    pub fn new(now: Instant, p: &DetectorParams, announced: Duration) -> Self {
        let mut d = PhiDetector {
            gaps_us: [0; DETECTOR_WINDOW_MAX],
            len: 0,
            next: 0,
            sum_us: 0,
            sum_sq_us: 0,
            last: now,
            deadline: now,
        };
        d.recompute(p, announced);
        d
    }

    /// Records a heartbeat. The gap since the previous one joins the window, clamped to
    /// four announced intervals so one long outage cannot blind the detector for the next
    /// minute. A gap under half the announced interval is an extra hello (the answer a
    /// node sends at once to a new or returning neighbour), not the rhythm: it restarts the
    /// clock and joins no gap. Counted, two such gaps of a few ms at first contact made
    /// the mean a few ms, and the deadline fell before the first regular hello was due.
    pub fn heartbeat(&mut self, now: Instant, p: &DetectorParams, announced: Duration) {
        let gap = now.saturating_since(self.last);
        if gap < announced / 2 {
            return self.touch(now, p, announced);
        }
        let gap = gap.min(announced * 4);
        let gap_us = u32::try_from(gap.as_micros()).unwrap_or(u32::MAX);
        let window = usize::from(p.window).clamp(1, DETECTOR_WINDOW_MAX);
        if usize::from(self.len) >= window {
            let old = self.gaps_us[usize::from(self.next)];
            self.sum_us -= u64::from(old);
            self.sum_sq_us -= u128::from(old) * u128::from(old);
        } else {
            self.len += 1;
        }
        self.gaps_us[usize::from(self.next)] = gap_us;
        self.sum_us += u64::from(gap_us);
        self.sum_sq_us += u128::from(gap_us) * u128::from(gap_us);
        self.next = ((usize::from(self.next) + 1) % window) as u16;
        self.last = now;
        self.recompute(p, announced);
    }

    /// Restarts the clock without recording a gap: evidence of life that is not a regular
    /// heartbeat (a pong answering our ping, or our own return from a stall).
    pub fn touch(&mut self, now: Instant, p: &DetectorParams, announced: Duration) {
        self.last = self.last.max(now);
        self.recompute(p, announced);
    }

    /// Forgets history (after the neighbour was down or restarted).
    pub fn reset(&mut self, now: Instant, p: &DetectorParams, announced: Duration) {
        *self = PhiDetector::new(now, p, announced);
    }

    /// The leading bytes of a detector that one with `p`'s window ever reads.
    pub fn bytes_used(p: &DetectorParams) -> usize {
        std::mem::offset_of!(PhiDetector, gaps_us) + size_of::<u32>() * usize::from(p.window).clamp(1, DETECTOR_WINDOW_MAX)
    }

    /// When phi crosses the threshold.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The last heartbeat (or touch).
    pub fn last(&self) -> Instant {
        self.last
    }

    /// `last + mean + z * max(std, min_std)`. Before any gap is observed the announced
    /// interval stands in for the mean.
    fn recompute(&mut self, p: &DetectorParams, announced: Duration) {
        let (mean_us, std_us) = if self.len == 0 {
            (duration_us(announced), 0)
        } else {
            let n = u128::from(self.len);
            let mean = u128::from(self.sum_us) / n;
            let var = (self.sum_sq_us / n).saturating_sub(mean * mean);
            (mean as u64, var.isqrt() as u64)
        };
        let margin_us = std_us.max(p.min_std_us).saturating_mul(p.z_milli) / 1000;
        self.deadline = self.last + Duration::from_micros(mean_us.saturating_add(margin_us));
    }
}

fn duration_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The standard-normal quantile `z` at which phi equals `phi`, in thousandths.
///
/// Uses the logistic approximation of the normal tail that Akka's detector uses,
/// `P(X > y) ~= e / (1 + e)` with `e = exp(-y (1.5976 + 0.070566 y^2))`, solved for `y` by
/// bisection. Runs once per configuration, so its floating point never reaches a decision.
pub fn phi_to_z_milli(phi: f64) -> u64 {
    let phi_of = |y: f64| {
        let e = (-y * (1.5976 + 0.070566 * y * y)).exp();
        -(e / (1.0 + e)).log10()
    };
    let (mut lo, mut hi) = (0.0_f64, 40.0_f64);
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if phi_of(mid) < phi { lo = mid } else { hi = mid }
    }
    (hi * 1000.0).round() as u64
}
