//! A node's clock as drivers read it: the conversions between global and local time agree
//! with the clock's definition and with each other, drifting or not.

use proptest::prelude::*;
use x0tta6bl4::time::{Instant, NodeClock};

/// Global times up to about a year, in ns.
const G_MAX: u64 = 1 << 55;

proptest! {
    /// `local = anchor_l + (g - anchor_g)(1 + ppm/1e6)`, rounded down; `global` is the
    /// earliest global time at which the local clock has reached a reading, so a node is
    /// never woken before its own deadline.
    #[test]
    fn local_and_global_agree(at in 0..G_MAX / 2, skew in -1_000_000_000i64..1_000_000_000, ppm in prop_oneof![Just(0i64), -500i64..500], dt in 0..G_MAX / 2) {
        let mut clock = NodeClock::default();
        clock.adjust(at, skew, ppm);
        let anchor_l = i128::from(at) + i128::from(skew);
        let g = at + dt;
        let want = (anchor_l.max(0) + i128::from(dt) * (1_000_000 + i128::from(ppm)) / 1_000_000) as u64;
        prop_assert_eq!(clock.local(g), Instant::from_nanos(want));
        let back = clock.global(clock.local(g));
        prop_assert!(back <= g, "global({}) = {back} is after {g}, whose reading it is", clock.local(g));
        prop_assert!(clock.local(back) >= clock.local(g), "woken at {back}, before the reading");
        if ppm == 0 && anchor_l >= 0 {
            prop_assert_eq!(back, g, "without drift the conversion is exact");
        }
    }
}
