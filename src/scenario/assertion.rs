//! Assertions like `mttd.p99 < 300ms`, parsed when the scenario is read so a typo is a
//! load-time error with a position, not a surprise at the end of a long run.

use crate::units::{Percent, parse_duration};
use serde::{Deserialize, Deserializer, de};
use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Time from injection to first detection, per fault.
    Mttd,
    /// Time from injection until every probed pair with a path succeeds again, per fault.
    Mttr,
    /// Time from injection until the steady-state hypothesis holds again, per fault.
    Steady,
    /// Hop count of the protocol's path over the shortest path, per sample.
    Stretch,
    /// Forwarding loops seen by the loop checker.
    Loops,
    /// Neighbours declared down while alive and connected.
    FalsePositives,
    /// Honest nodes isolated by honest nodes as Byzantine.
    HonestIsolated,
    /// Faults after which reachability did not come back within the recovery window.
    Unrecovered,
    /// Faults nobody detected.
    Undetected,
    /// Share of probes that succeeded after warmup, among pairs with a path.
    ProbeSuccess,
    /// Control bytes sent per node per second.
    Overhead,
}

impl Metric {
    const ALL: [(&'static str, Metric); 11] = [
        ("mttd", Metric::Mttd),
        ("mttr", Metric::Mttr),
        ("steady", Metric::Steady),
        ("stretch", Metric::Stretch),
        ("loops", Metric::Loops),
        ("false_positives", Metric::FalsePositives),
        ("honest_isolated", Metric::HonestIsolated),
        ("unrecovered", Metric::Unrecovered),
        ("undetected", Metric::Undetected),
        ("probe_success", Metric::ProbeSuccess),
        ("overhead", Metric::Overhead),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, m)| *m == self).map(|(n, _)| *n).expect("every metric is listed")
    }

    /// Whether the metric is a distribution (needs `.p99` and friends).
    pub fn is_distribution(self) -> bool {
        matches!(self, Metric::Mttd | Metric::Mttr | Metric::Steady | Metric::Stretch)
    }

    fn is_duration(self) -> bool {
        matches!(self, Metric::Mttd | Metric::Mttr | Metric::Steady)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    Count,
    Mean,
    P50,
    P95,
    P99,
    Max,
}

impl Stat {
    const ALL: [(&'static str, Stat); 6] =
        [("count", Stat::Count), ("mean", Stat::Mean), ("p50", Stat::P50), ("p95", Stat::P95), ("p99", Stat::P99), ("max", Stat::Max)];

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, s)| *s == self).map(|(n, _)| *n).expect("every stat is listed")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Comparison {
    const ALL: [(&'static str, Comparison); 6] = [
        ("<=", Comparison::Le),
        (">=", Comparison::Ge),
        ("==", Comparison::Eq),
        ("!=", Comparison::Ne),
        ("<", Comparison::Lt),
        (">", Comparison::Gt),
    ];

    pub fn symbol(self) -> &'static str {
        Self::ALL.iter().find(|(_, c)| *c == self).map(|(s, _)| *s).expect("every comparison is listed")
    }

    pub fn holds(self, actual: f64, threshold: f64) -> bool {
        match self {
            Comparison::Lt => actual < threshold,
            Comparison::Le => actual <= threshold,
            Comparison::Gt => actual > threshold,
            Comparison::Ge => actual >= threshold,
            Comparison::Eq => actual == threshold,
            Comparison::Ne => actual != threshold,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Duration(Duration),
    Number(f64),
    Percent(Percent),
}

impl Threshold {
    /// The threshold in the unit metrics are reported in: milliseconds for durations, a
    /// ratio in [0, 1] for percentages, the number itself otherwise.
    pub fn value(self) -> f64 {
        match self {
            Threshold::Duration(d) => d.as_secs_f64() * 1e3,
            Threshold::Number(n) => n,
            Threshold::Percent(p) => p.ratio(),
        }
    }
}

/// One parsed assertion.
#[derive(Debug, Clone, PartialEq)]
pub struct Assertion {
    pub text: String,
    pub metric: Metric,
    pub stat: Option<Stat>,
    pub comparison: Comparison,
    pub threshold: Threshold,
}

impl fmt::Display for Assertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Assertion {
    pub fn parse(raw: &str) -> Result<Assertion, String> {
        let text = raw.trim();
        let (cmp_at, comparison, cmp_len) = Comparison::ALL
            .iter()
            .filter_map(|(sym, c)| text.find(sym).map(|i| (i, *c, sym.len())))
            .min_by_key(|(i, _, len)| (*i, usize::MAX - len))
            .ok_or_else(|| format!("assertion {text:?} has no comparison; expected e.g. \"mttd.p99 < 300ms\" (one of < <= > >= == !=)"))?;
        let lhs = text[..cmp_at].trim();
        let rhs = text[cmp_at + cmp_len..].trim();
        let (metric_name, stat_name) = match lhs.split_once('.') {
            Some((m, s)) => (m.trim(), Some(s.trim())),
            None => (lhs, None),
        };
        let metric = Metric::ALL.iter().find(|(n, _)| *n == metric_name).map(|(_, m)| *m).ok_or_else(|| {
            let names: Vec<&str> = Metric::ALL.iter().map(|(n, _)| *n).collect();
            format!("assertion {text:?}: unknown metric {metric_name:?}; expected one of {}", names.join(", "))
        })?;
        let stat = match stat_name {
            None if metric.is_distribution() => {
                return Err(format!(
                    "assertion {text:?}: {} is a distribution; add a statistic, e.g. \"{}.p99\" (count, mean, p50, p95, p99, max)",
                    metric.name(),
                    metric.name()
                ));
            }
            None => None,
            Some(s) if !metric.is_distribution() => {
                return Err(format!("assertion {text:?}: {} is a single number; drop \".{s}\"", metric.name()));
            }
            Some(s) => Some(Stat::ALL.iter().find(|(n, _)| *n == s).map(|(_, st)| *st).ok_or_else(|| {
                format!("assertion {text:?}: unknown statistic {s:?}; expected one of count, mean, p50, p95, p99, max")
            })?),
        };
        let threshold = if metric.is_duration() && stat != Some(Stat::Count) {
            Threshold::Duration(parse_duration(rhs).map_err(|e| format!("assertion {text:?}: {e}"))?)
        } else if metric == Metric::ProbeSuccess {
            Threshold::Percent(Percent::parse(rhs).map_err(|e| format!("assertion {text:?}: {e}"))?)
        } else {
            let n: f64 = rhs
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite())
                .ok_or_else(|| format!("assertion {text:?}: {rhs:?} is not a number"))?;
            Threshold::Number(n)
        };
        Ok(Assertion { text: text.to_string(), metric, stat, comparison, threshold })
    }
}

impl<'de> Deserialize<'de> for Assertion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Assertion::parse(&s).map_err(de::Error::custom)
    }
}
