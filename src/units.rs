//! Human units for configuration files: `100ms`, `2s`, `-50ms`, `5%`, `10Mbps`, `200ppm`.
//!
//! Values parse into exact integers (nanoseconds, parts per million, bits per second), never
//! floats, so `1.1s` means exactly 1_100_000_000 ns everywhere. Each type has a serde impl
//! whose error names the expected form; the YAML layer adds file, line and column.

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::fmt;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UnitError {
    #[error("{value:?} is not a duration: expected a number and a unit, like \"100ms\", \"2s\", \"1.5m\" (units: ns, us, ms, s, m, h, d)")]
    Duration { value: String },
    #[error("{value:?} is negative: a duration here must be zero or more")]
    NegativeDuration { value: String },
    #[error("{value:?} is not a percentage: expected a number and %, like \"5%\" or \"99.9%\", between 0% and 100%")]
    Percent { value: String },
    #[error("{value:?} is not a bandwidth: expected a number and a unit, like \"10Mbps\" (units: bps, kbps, Mbps, Gbps)")]
    Bandwidth { value: String },
    #[error("{value:?} is not a rate in parts per million: expected a number and ppm, like \"200ppm\" or \"-50ppm\"")]
    Ppm { value: String },
}

/// Parses an unsigned decimal like `12` or `1.25` into `value * scale`, exactly.
/// Returns `None` on any other spelling, on overflow, or on precision finer than `scale`.
fn parse_scaled(number: &str, scale: u64) -> Option<u64> {
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !all_digits(frac) || (number.contains('.') && frac.is_empty()) {
        return None;
    }
    let int_part: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut value = int_part.checked_mul(scale)?;
    let mut unit = scale;
    for digit in frac.bytes() {
        if !unit.is_multiple_of(10) {
            // Finer than the unit can express: trailing zeros are fine, anything else is
            // refused rather than rounded silently.
            if digit != b'0' {
                return None;
            }
            continue;
        }
        unit /= 10;
        value = value.checked_add(u64::from(digit - b'0') * unit)?;
    }
    Some(value)
}

/// Splits `"12.5ms"` into `("12.5", "ms")`.
fn split_unit(s: &str) -> (&str, &str) {
    let idx = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    (&s[..idx], s[idx..].trim())
}

fn duration_nanos_signed(raw: &str) -> Result<i128, UnitError> {
    let s = raw.trim();
    let err = || UnitError::Duration { value: raw.to_string() };
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (number, unit) = split_unit(body);
    let scale: u64 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => return Err(err()),
    };
    let ns = parse_scaled(number, scale).ok_or_else(err)?;
    let ns = i128::from(ns);
    Ok(if negative { -ns } else { ns })
}

/// Parses a non-negative duration such as `100ms`.
pub fn parse_duration(raw: &str) -> Result<Duration, UnitError> {
    let ns = duration_nanos_signed(raw)?;
    if ns < 0 {
        return Err(UnitError::NegativeDuration { value: raw.to_string() });
    }
    Ok(Duration::from_nanos(u64::try_from(ns).map_err(|_| UnitError::Duration { value: raw.to_string() })?))
}

/// Parses a signed duration such as `-50ms` (used for clock skew) into nanoseconds.
pub fn parse_signed_duration(raw: &str) -> Result<i64, UnitError> {
    let ns = duration_nanos_signed(raw)?;
    i64::try_from(ns).map_err(|_| UnitError::Duration { value: raw.to_string() })
}

/// A probability or ratio in parts per million, written `5%`. Integer so that loss decisions
/// are exact comparisons against a uniform integer draw.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent {
    ppm: u32,
}

impl Percent {
    pub const ZERO: Percent = Percent { ppm: 0 };
    pub const HUNDRED: Percent = Percent { ppm: 1_000_000 };

    pub fn from_ppm(ppm: u32) -> Self {
        Percent { ppm: ppm.min(1_000_000) }
    }

    /// From a ratio in `[0, 1]` (clamped), rounded to the nearest ppm.
    pub fn from_ratio(ratio: f64) -> Self {
        let ratio = if ratio.is_nan() { 0.0 } else { ratio.clamp(0.0, 1.0) };
        Percent { ppm: (ratio * 1e6).round() as u32 }
    }

    pub fn ppm(self) -> u32 {
        self.ppm
    }

    pub fn ratio(self) -> f64 {
        f64::from(self.ppm) / 1e6
    }

    pub fn parse(raw: &str) -> Result<Self, UnitError> {
        let err = || UnitError::Percent { value: raw.to_string() };
        let number = raw.trim().strip_suffix('%').ok_or_else(err)?.trim_end();
        // 1% = 10_000 ppm, so four decimal places are exact.
        let ppm = parse_scaled(number, 10_000).ok_or_else(err)?;
        if ppm > 1_000_000 {
            return Err(err());
        }
        Ok(Percent { ppm: ppm as u32 })
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = f64::from(self.ppm) / 10_000.0;
        if self.ppm.is_multiple_of(10_000) { write!(f, "{pct:.0}%") } else { write!(f, "{pct}%") }
    }
}

/// A link rate in bits per second, written `10Mbps`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bandwidth {
    bps: u64,
}

impl Bandwidth {
    pub fn from_bps(bps: u64) -> Self {
        Bandwidth { bps }
    }

    pub fn bps(self) -> u64 {
        self.bps
    }

    /// Time to clock `bytes` onto the wire at this rate.
    pub fn serialization_delay(self, bytes: usize) -> Duration {
        if self.bps == 0 {
            return Duration::ZERO;
        }
        let bits = (bytes as u128) * 8;
        Duration::from_nanos(((bits * 1_000_000_000) / u128::from(self.bps)) as u64)
    }

    pub fn parse(raw: &str) -> Result<Self, UnitError> {
        let err = || UnitError::Bandwidth { value: raw.to_string() };
        let (number, unit) = split_unit(raw.trim());
        let scale = match unit {
            "bps" => 1,
            "kbps" | "Kbps" => 1_000,
            "Mbps" => 1_000_000,
            "Gbps" => 1_000_000_000,
            _ => return Err(err()),
        };
        let bps = parse_scaled(number, scale).ok_or_else(err)?;
        if bps == 0 {
            return Err(err());
        }
        Ok(Bandwidth { bps })
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bps {
            b if b % 1_000_000_000 == 0 => write!(f, "{}Gbps", b / 1_000_000_000),
            b if b % 1_000_000 == 0 => write!(f, "{}Mbps", b / 1_000_000),
            b if b % 1_000 == 0 => write!(f, "{}kbps", b / 1_000),
            b => write!(f, "{b}bps"),
        }
    }
}

/// A clock rate error in parts per million, written `200ppm` (may be negative).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ppm(pub i32);

impl Ppm {
    pub fn parse(raw: &str) -> Result<Self, UnitError> {
        let err = || UnitError::Ppm { value: raw.to_string() };
        let s = raw.trim();
        let number = s.strip_suffix("ppm").ok_or_else(err)?.trim_end();
        let (negative, digits) = match number.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, number.strip_prefix('+').unwrap_or(number)),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let v: i32 = digits.parse().map_err(|_| err())?;
        // More than 10% rate error is not a clock, it is a different machine.
        if v > 100_000 {
            return Err(err());
        }
        Ok(Ppm(if negative { -v } else { v }))
    }
}

impl fmt::Display for Ppm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ppm", self.0)
    }
}

/// Serde adapters for fields of std types written in human units.
pub mod serde_duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&crate::time::DisplayDuration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map_err(de::Error::custom)
    }

    /// The same for `Option<Duration>` fields.
    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.collect_str(&crate::time::DisplayDuration(*d)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            let s = Option::<String>::deserialize(d)?;
            s.map(|s| parse_duration(&s).map_err(de::Error::custom)).transpose()
        }
    }
}

macro_rules! string_serde {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$ty>::parse(&s).map_err(de::Error::custom)
            }
        }
    };
}

string_serde!(Percent);
string_serde!(Bandwidth);
string_serde!(Ppm);

/// A signed duration in nanoseconds, written `-50ms` (clock skew).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SignedDuration(pub i64);

impl SignedDuration {
    pub fn parse(raw: &str) -> Result<Self, UnitError> {
        parse_signed_duration(raw).map(SignedDuration)
    }
}

impl fmt::Display for SignedDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{}", crate::time::DisplayDuration(Duration::from_nanos(self.0.unsigned_abs())))
    }
}

string_serde!(SignedDuration);
