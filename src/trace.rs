//! The event-trace fingerprint: a hash of every event in order, with its time and node.
//! Same seed and same commit give the same fingerprint; any change in behaviour, however
//! small, changes it. Drivers feed it in the order events happened.

use crate::ids::NodeId;
use crate::node::{Event, Incident, NeighbourState, ProbeOutcome};
use crate::time::Instant;
use std::fmt;
use xxhash_rust::xxh3::Xxh3;

/// Streaming fingerprint of an event trace.
#[derive(Clone)]
pub struct Fingerprint {
    hasher: Xxh3,
    records: u64,
}

impl Default for Fingerprint {
    fn default() -> Self {
        Fingerprint { hasher: Xxh3::new(), records: 0 }
    }
}

/// A finished fingerprint, printed as 32 hex digits.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub u128);

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl Fingerprint {
    fn words(&mut self, tag: u8, words: &[u64]) {
        self.records += 1;
        self.hasher.update(&[tag]);
        for w in words {
            self.hasher.update(&w.to_le_bytes());
        }
    }

    /// A node event, at driver time `t`.
    pub fn event(&mut self, t: Instant, node: NodeId, e: &Event) {
        let opt = |n: Option<NodeId>| n.map_or(u64::MAX, |n| u64::from(n.0));
        let (t, n) = (t.as_nanos(), u64::from(node.0));
        match *e {
            Event::Neighbour { iface, peer, state, .. } => {
                let s = match state {
                    NeighbourState::Up => 0,
                    NeighbourState::Suspected => 1,
                    NeighbourState::Down => 2,
                };
                self.words(1, &[t, n, u64::from(iface.0), u64::from(peer.0), s]);
            }
            Event::Route { dest, next_hop, previous, metric, .. } => {
                self.words(2, &[t, n, u64::from(dest.0), opt(next_hop), opt(previous), u64::from(metric)]);
            }
            Event::Probe { id, dst, outcome, .. } => {
                let (o, rtt) = match outcome {
                    ProbeOutcome::Delivered { rtt } => (0, rtt.as_nanos() as u64),
                    ProbeOutcome::Lost => (1, 0),
                    ProbeOutcome::NoRoute => (2, 0),
                };
                self.words(3, &[t, n, id, u64::from(dst.0), o, rtt]);
            }
            Event::Incident { incident, .. } => {
                let (k, a, b) = match incident {
                    Incident::Starved { dest } => (0, u64::from(dest.0), 0),
                    Incident::NeighbourRestarted { iface, peer } => (1, u64::from(iface.0), u64::from(peer.0)),
                    Incident::TtlExpired { src, dst } => (2, u64::from(src.0), u64::from(dst.0)),
                    Incident::Isolated { iface, addr, misbehaviour } | Incident::Attack { iface, addr, misbehaviour } => {
                        let k = if matches!(incident, Incident::Isolated { .. }) { 3 } else { 4 };
                        let ip = u128::from_be_bytes(addr.ip);
                        let words = [ip as u64, (ip >> 64) as u64, u64::from(addr.port)];
                        self.words(4, &[t, n, k, u64::from(iface.0), misbehaviour as u64, words[0], words[1], words[2]]);
                        return;
                    }
                };
                self.words(4, &[t, n, k, a, b]);
            }
        }
    }

    /// A driver-level record (fault injected or healed, packet delivered...): a tag the
    /// driver chooses and up to a few words.
    pub fn driver(&mut self, tag: u8, words: &[u64]) {
        self.words(0x80 | tag, words);
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    pub fn digest(&self) -> Digest {
        Digest(self.hasher.digest128())
    }

    /// Combines per-seed digests, in seed order, into one.
    pub fn combine(digests: &[Digest]) -> Digest {
        let mut h = Xxh3::new();
        for d in digests {
            h.update(&d.0.to_le_bytes());
        }
        Digest(h.digest128())
    }
}
