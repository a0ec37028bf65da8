//! Human units parse exactly, and everything else is refused with the expected form.

use std::time::Duration;
use x0tta6bl4::units::{Bandwidth, Percent, Ppm, parse_duration, parse_signed_duration};

#[test]
fn durations() {
    assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("1.1s"), Ok(Duration::from_nanos(1_100_000_000)), "exact, no float rounding");
    assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    assert_eq!(parse_signed_duration("-50ms"), Ok(-50_000_000));
    for bad in ["100", "ms", "1.5.2s", "10 parsecs", "1e3ms", "", "-5s", "0.5ns", "1.s"] {
        assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn percentages() {
    assert_eq!(Percent::parse("5%").map(Percent::ppm), Ok(50_000));
    assert_eq!(Percent::parse("99.9%").map(Percent::ppm), Ok(999_000));
    assert_eq!(Percent::parse("0.0001%").map(Percent::ppm), Ok(1));
    assert_eq!(Percent::parse("100%"), Ok(Percent::HUNDRED));
    for bad in ["5", "150%", "-1%", "abc%", "0.00001%"] {
        assert!(Percent::parse(bad).is_err(), "{bad:?} accepted");
    }
    assert_eq!(Percent::from_ppm(50_000).to_string(), "5%");
}

#[test]
fn bandwidths_and_rates() {
    assert_eq!(Bandwidth::parse("10Mbps").map(Bandwidth::bps), Ok(10_000_000));
    assert_eq!(Bandwidth::parse("1.5Gbps").map(Bandwidth::bps), Ok(1_500_000_000));
    assert_eq!(Bandwidth::from_bps(8_000).serialization_delay(1000), Duration::from_secs(1));
    assert!(Bandwidth::parse("0Mbps").is_err());
    assert!(Bandwidth::parse("10MB/s").is_err());
    assert_eq!(Ppm::parse("200ppm"), Ok(Ppm(200)));
    assert_eq!(Ppm::parse("-50ppm"), Ok(Ppm(-50)));
    assert!(Ppm::parse("2%").is_err());
}
