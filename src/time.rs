//! Time as a value. The core never reads a clock: every input carries `now`, and every
//! deadline the core hands back is an [`Instant`] on the same axis. The simulator feeds
//! virtual nanoseconds; the live driver feeds nanoseconds since it started.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::time::Duration;

/// A point on a monotonic time axis, in nanoseconds since that axis' origin.
///
/// Integer nanoseconds keep arithmetic exact, so the same inputs give the same decisions on
/// every machine (floating-point time would not).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    pub const ZERO: Instant = Instant(0);
    /// Far enough in the future to mean "never" while staying addable without overflow.
    pub const NEVER: Instant = Instant(u64::MAX / 2);

    pub const fn from_nanos(ns: u64) -> Self {
        Instant(ns)
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    pub fn as_micros(self) -> u64 {
        self.0 / 1_000
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// Time elapsed since `earlier`, or zero if `earlier` is in the future.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    pub fn saturating_sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(duration_nanos(d)))
    }
}

/// A node's clock as it reads a driver's global time (nanoseconds): `local = anchor_l +
/// (g - anchor_g)(1 + ppm/1e6)`. Drivers use it to inject clock faults, the simulator per
/// virtual node and x0-node on its own monotonic clock, with the same arithmetic.
#[derive(Copy, Clone, Debug, Default)]
pub struct NodeClock {
    anchor_g: u64,
    anchor_l: u64,
    ppm: i64,
}

impl NodeClock {
    pub fn local(&self, g: u64) -> Instant {
        if self.ppm == 0 {
            // The exact value of the general formula below, without its 128-bit division:
            // every frame and timer of every node converts time twice.
            return Instant::from_nanos(self.anchor_l.saturating_add(g.saturating_sub(self.anchor_g)));
        }
        let dt = i128::from(g.saturating_sub(self.anchor_g));
        let l = i128::from(self.anchor_l) + dt * (1_000_000 + i128::from(self.ppm)) / 1_000_000;
        Instant::from_nanos(l.max(0) as u64)
    }

    /// The global time at which the local clock reads `l`, rounded up so the node is never
    /// woken before its own deadline.
    pub fn global(&self, l: Instant) -> u64 {
        let dl = i128::from(l.as_nanos()) - i128::from(self.anchor_l);
        if dl <= 0 {
            return self.anchor_g;
        }
        let dg = if self.ppm == 0 {
            // Exact without the division (see `local`).
            dl
        } else {
            let rate = 1_000_000 + i128::from(self.ppm);
            (dl * 1_000_000 + rate - 1) / rate
        };
        (i128::from(self.anchor_g) + dg).min(i128::from(u64::MAX / 2)) as u64
    }

    /// Steps the clock by `skew_ns` and changes its rate by `ppm` from global time `g` on.
    pub fn adjust(&mut self, g: u64, skew_ns: i64, ppm: i64) {
        let l = i128::from(self.local(g).as_nanos()) + i128::from(skew_ns);
        self.anchor_l = l.max(0) as u64;
        self.anchor_g = g;
        self.ppm += ppm;
    }
}

/// A duration in nanoseconds as `u64`. Durations in configuration are bounded far below
/// the 584-year limit of `u64`, so this saturates only on nonsense input.
pub fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(duration_nanos(d)))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Panics in debug builds if `rhs` is later: callers compare first, or use
    /// [`Instant::saturating_since`] when order is not known.
    fn sub(self, rhs: Instant) -> Duration {
        debug_assert!(self >= rhs, "instant subtraction underflow: {self} - {rhs}");
        self.saturating_since(rhs)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", DisplayDuration(Duration::from_nanos(self.0)))
    }
}

/// Formats a duration the way scenario files write them (`250ms`, `1.5s`, `20us`).
pub struct DisplayDuration(pub Duration);

impl fmt::Display for DisplayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = duration_nanos(self.0);
        if ns == 0 {
            write!(f, "0s")
        } else if ns.is_multiple_of(1_000_000_000) {
            write!(f, "{}s", ns / 1_000_000_000)
        } else if ns >= 1_000_000_000 {
            write!(f, "{:.3}s", ns as f64 / 1e9)
        } else if ns.is_multiple_of(1_000_000) {
            write!(f, "{}ms", ns / 1_000_000)
        } else if ns >= 1_000_000 {
            write!(f, "{:.3}ms", ns as f64 / 1e6)
        } else if ns.is_multiple_of(1_000) {
            write!(f, "{}us", ns / 1_000)
        } else {
            write!(f, "{ns}ns")
        }
    }
}
