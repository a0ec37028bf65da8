//! Protocol parameters: the `protocol:` section of a scenario and of a live node's config.
//! One struct, so that a name means the same thing in the simulator and on a real mesh.

use crate::area::AreaPlan;
use crate::units::{Percent, serde_duration};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use thiserror::Error;

/// Every knob of the protocol. Defaults target a wired or good wireless mesh with 100 ms
/// hellos: detection in about two hello intervals, rerouting within half a second.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProtocolConfig {
    /// Period of hellos on every interface. Also the heartbeat of the failure detector.
    #[serde(with = "serde_duration")]
    pub hello_interval: Duration,
    /// Period of full route dumps. Triggered updates carry changes in between, so this only
    /// bounds how long a lost update can linger.
    #[serde(with = "serde_duration")]
    pub update_interval: Duration,
    /// A route not refreshed for this long is dropped. Default: 3.5 update intervals (Babel).
    #[serde(with = "serde_duration::option")]
    pub route_expiry: Option<Duration>,
    /// After starting without state, select no route through a neighbour for this long, so
    /// every neighbour has seen our new incarnation and flushed routes through us before we
    /// can point back at them. Default: 3 hello intervals.
    #[serde(with = "serde_duration::option")]
    pub boot_holddown: Option<Duration>,
    pub detector: DetectorConfig,
    /// A different next hop must beat the current route by this much metric before we switch
    /// (one clean hop costs 256). Stops equal-cost routes from flapping on single lost hellos.
    pub route_switch_hysteresis: u16,
    /// Good news (a shorter route) waits this long to be advertised, so a burst of
    /// improvements goes out as one update per destination. Bad news never waits.
    #[serde(with = "serde_duration")]
    pub triggered_update_delay: Duration,
    /// A worse metric for a destination (the mesh hunting for a path after a failure), and a
    /// destination never advertised before (a node new to the mesh), wait this long, to
    /// gather a burst of such changes into few frames. Retractions, new
    /// seqnos and answers to requests never wait: recovery time is the sum of their hops.
    #[serde(with = "serde_duration")]
    pub urgent_update_delay: Duration,
    /// Link round-trip times up to this add no cost.
    #[serde(with = "serde_duration")]
    pub rtt_min: Duration,
    /// Link round-trip times from this on add the full `rtt_max_penalty`.
    #[serde(with = "serde_duration")]
    pub rtt_max: Duration,
    pub rtt_max_penalty: u16,
    /// How long to wait for an answer to a route or seqno request before asking again; each
    /// further wait is twice as long.
    #[serde(with = "serde_duration")]
    pub request_timeout: Duration,
    pub request_retries: u8,
    /// How far a seqno request may travel toward the destination.
    pub request_hop_limit: u8,
    /// Initial TTL of data packets.
    pub ttl: u8,
    /// How long the source waits for a probe reply before counting the probe lost.
    #[serde(with = "serde_duration")]
    pub probe_timeout: Duration,
    pub limits: Limits,
    /// Link security knobs; they apply when the node has an identity and a trust policy.
    pub security: SecurityConfig,
    /// Hierarchical routing: the first node id of every area (see `crate::area`). Absent:
    /// flat routing, one route per destination. The simulator fills this in when a
    /// scenario asks for `areas`; a live mesh lists its plan, as it would an address plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_starts: Option<AreaPlan>,
    /// With areas: routes to nodes of other areas are also kept by nodes within about this
    /// many hops of them, so an area whose inside is cut (a partition, a crashed neck) is
    /// still joined through its surroundings. 0: members only.
    pub area_halo_hops: u8,
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        ProtocolConfig {
            hello_interval: Duration::from_millis(100),
            update_interval: Duration::from_secs(10),
            route_expiry: None,
            boot_holddown: None,
            detector: DetectorConfig::default(),
            route_switch_hysteresis: 64,
            triggered_update_delay: Duration::from_millis(20),
            urgent_update_delay: Duration::from_millis(2),
            rtt_min: Duration::from_millis(10),
            rtt_max: Duration::from_millis(120),
            rtt_max_penalty: 96,
            request_timeout: Duration::from_millis(100),
            request_retries: 4,
            request_hop_limit: 64,
            ttl: 64,
            probe_timeout: Duration::from_secs(1),
            limits: Limits::default(),
            security: SecurityConfig::default(),
            area_starts: None,
            area_halo_hops: 3,
        }
    }
}

/// The failure detector: phi-accrual over hello arrivals, then direct confirmation.
///
/// A neighbour is *suspected* when phi, computed from the observed distribution of gaps
/// between its hellos, crosses `phi_suspect`; it is then pinged `confirm_interval` apart and
/// declared *down* if nothing answers within `confirm_timeout` (or four smoothed RTTs,
/// whichever is longer) of the last ping. A hello or pong in the meantime refutes the
/// suspicion. The number of pings is at least `confirm_probes`, and more on a lossy link:
/// enough that all of them failing by loss alone is less likely than `confirm_miss`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    pub phi_suspect: f64,
    /// Floor on the standard deviation of hello gaps. Stops a perfectly regular link from
    /// yielding a hair-trigger detector that fires on one late hello.
    #[serde(with = "serde_duration")]
    pub min_std_dev: Duration,
    /// How many recent gaps the mean and deviation are computed over.
    pub window: u16,
    pub confirm_probes: u8,
    pub confirm_miss: Percent,
    #[serde(with = "serde_duration")]
    pub confirm_interval: Duration,
    #[serde(with = "serde_duration")]
    pub confirm_timeout: Duration,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            phi_suspect: 8.0,
            min_std_dev: Duration::from_millis(25),
            window: 32,
            confirm_probes: 3,
            confirm_miss: Percent::from_ppm(100),
            confirm_interval: Duration::from_millis(10),
            confirm_timeout: Duration::from_millis(75),
        }
    }
}

/// Admission and sealing of links (see `crate::secure`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// A direction's key is ratcheted after this many frames...
    pub rekey_frames: u64,
    /// ...or after this long, whichever comes first.
    #[serde(with = "serde_duration")]
    pub rekey_interval: Duration,
    /// How long a handshake message waits for its answer before it is sent again.
    #[serde(with = "serde_duration")]
    pub handshake_timeout: Duration,
    /// Resends of one handshake message before the attempt is abandoned; the next try
    /// waits for the neighbour's next beacon after a pause of the same length as the attempt.
    pub handshake_retries: u8,
    /// Handshakes this node answers per second, at most (with a burst of as many): each
    /// answer costs a signature, so an Init flood costs a bounded share of a core.
    pub handshakes_per_s: u32,
    /// Evidence against one sender address is counted over this window; see `node::guard`.
    #[serde(with = "serde_duration")]
    pub evidence_window: Duration,
    /// Malformed frames from one address within the window that isolate it: far above
    /// what a noisy link corrupts (a neighbour sends tens of frames per second).
    pub malformed_max: u32,
    /// Identity proofs from one address within the window that fail (a certificate or id
    /// that is not the sender's, a bad signature) before the address is isolated.
    pub impersonations_max: u32,
    /// Replayed frames from one address within the window that report a replay attack.
    /// Replays cannot be pinned on the address they claim, so nothing is isolated.
    pub replays_max: u32,
    /// Probes lost through one next hop within `audit_window` that start an audit of it.
    pub audit_losses: u8,
    #[serde(with = "serde_duration")]
    pub audit_window: Duration,
    /// Audit probes sent by each side of an audit.
    pub audit_probes: u8,
    /// Failed audits of one neighbour within `audit_window` that isolate it.
    pub audit_strikes: u8,
    /// How long an isolated address or neighbour stays isolated.
    #[serde(with = "serde_duration")]
    pub isolation: Duration,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            rekey_frames: 1 << 24,
            rekey_interval: Duration::from_secs(600),
            handshake_timeout: Duration::from_millis(500),
            handshake_retries: 6,
            handshakes_per_s: 50,
            evidence_window: Duration::from_secs(2),
            malformed_max: 100,
            impersonations_max: 3,
            replays_max: 8,
            audit_losses: 3,
            audit_window: Duration::from_secs(10),
            audit_probes: 8,
            audit_strikes: 2,
            isolation: Duration::from_secs(300),
        }
    }
}

/// Bounds on every table and queue of a node. When a bound is hit the node drops the new
/// item, counts it in [`crate::node::NodeStats`], and keeps running.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_neighbours: u16,
    pub max_destinations: u32,
    /// Frames waiting in the outbox for the driver to send.
    pub max_outbox_frames: u32,
    /// Events waiting for the driver to drain.
    pub max_events: u32,
    /// Probes awaiting a reply at their source.
    pub max_pending_probes: u32,
    /// Application payloads awaiting the driver at their destination.
    pub max_deliveries: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_neighbours: 256,
            max_destinations: 1 << 20,
            max_outbox_frames: 16_384,
            max_events: 16_384,
            max_pending_probes: 4096,
            max_deliveries: 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Error)]
#[error("protocol.{field}: {problem}")]
pub struct ConfigError {
    pub field: &'static str,
    pub problem: String,
}

fn check(ok: bool, field: &'static str, problem: impl FnOnce() -> String) -> Result<(), ConfigError> {
    if ok { Ok(()) } else { Err(ConfigError { field, problem: problem() }) }
}

impl ProtocolConfig {
    /// Checks ranges the wire format and the algorithms rely on. The node asserts these
    /// hold, so a config that passes here cannot make it panic.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ms = |d: Duration| d.as_millis();
        check(
            (1..=65_535).contains(&ms(self.hello_interval)),
            "hello_interval",
            || "must be between 1ms and 65s (it travels as 16-bit milliseconds)".into(),
        )?;
        check(
            (1..=65_535).contains(&ms(self.update_interval)),
            "update_interval",
            || "must be between 1ms and 65s (it travels as 16-bit milliseconds)".into(),
        )?;
        check(self.route_expiry() > self.update_interval, "route_expiry", || {
            "must be longer than update_interval, or routes expire between refreshes".into()
        })?;
        let d = &self.detector;
        check(d.phi_suspect.is_finite() && (1.0..=40.0).contains(&d.phi_suspect), "detector.phi_suspect", || {
            format!("is {}, expected a number between 1 and 40 (8 is a good start)", d.phi_suspect)
        })?;
        check(!d.min_std_dev.is_zero(), "detector.min_std_dev", || "must be more than 0s".into())?;
        check(
            (2..=crate::node::DETECTOR_WINDOW_MAX as u16).contains(&d.window),
            "detector.window",
            || format!("is {}, expected 2 to {}", d.window, crate::node::DETECTOR_WINDOW_MAX),
        )?;
        check((1..=16).contains(&d.confirm_probes), "detector.confirm_probes", || "must be 1 to 16".into())?;
        check(d.confirm_miss > Percent::ZERO, "detector.confirm_miss", || "must be more than 0%".into())?;
        check(self.rtt_max > self.rtt_min, "rtt_max", || "must be greater than rtt_min".into())?;
        check(self.request_hop_limit >= 1, "request_hop_limit", || "must be at least 1".into())?;
        check(self.ttl >= 1, "ttl", || "must be at least 1".into())?;
        check(!self.probe_timeout.is_zero(), "probe_timeout", || "must be more than 0s".into())?;
        let sec = &self.security;
        check(sec.rekey_frames >= 1, "security.rekey_frames", || "must be at least 1".into())?;
        check(!sec.rekey_interval.is_zero(), "security.rekey_interval", || "must be more than 0s".into())?;
        check(!sec.handshake_timeout.is_zero(), "security.handshake_timeout", || "must be more than 0s".into())?;
        check(sec.handshakes_per_s >= 1, "security.handshakes_per_s", || {
            "must be at least 1, or no neighbour is ever admitted".into()
        })?;
        check(!sec.evidence_window.is_zero(), "security.evidence_window", || "must be more than 0s".into())?;
        check(!sec.audit_window.is_zero(), "security.audit_window", || "must be more than 0s".into())?;
        for (v, field) in [
            (sec.malformed_max, "security.malformed_max"),
            (sec.impersonations_max, "security.impersonations_max"),
            (sec.replays_max, "security.replays_max"),
            (u32::from(sec.audit_losses), "security.audit_losses"),
            (u32::from(sec.audit_strikes), "security.audit_strikes"),
        ] {
            check(v >= 1, field, || "must be at least 1".into())?;
        }
        check((1..=crate::node::AUDIT_PROBES_MAX).contains(&sec.audit_probes), "security.audit_probes", || {
            format!("must be 1 to {}", crate::node::AUDIT_PROBES_MAX)
        })?;
        let l = &self.limits;
        check(l.max_neighbours >= 1, "limits.max_neighbours", || "must be at least 1".into())?;
        check(l.max_destinations >= 1, "limits.max_destinations", || "must be at least 1".into())?;
        check(l.max_outbox_frames >= 16, "limits.max_outbox_frames", || "must be at least 16".into())?;
        check(l.max_events >= 16, "limits.max_events", || "must be at least 16".into())?;
        Ok(())
    }

    pub fn route_expiry(&self) -> Duration {
        self.route_expiry.unwrap_or(self.update_interval * 7 / 2)
    }

    /// The advertised metric below which a route to another area's node may be taken up:
    /// `area_halo_hops` clean hops and half a hop of slack.
    pub fn area_halo_metric(&self) -> u16 {
        let unit = u32::from(crate::node::LINK_COST_UNIT);
        (u32::from(self.area_halo_hops) * unit + unit / 2).min(u32::from(crate::wire::METRIC_INFINITY - 1)) as u16
    }

    pub fn boot_holddown(&self) -> Duration {
        self.boot_holddown.unwrap_or(self.hello_interval * 3)
    }

    /// How long a departed destination is remembered (its feasibility distance kept) after
    /// its last route is gone. Longer than any route that could still mention it.
    pub fn source_gc(&self) -> Duration {
        self.route_expiry() * 4
    }
}
