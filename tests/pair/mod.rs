//! Two nodes on one link, with a hand-rolled clock and delivery: the harness of the tests
//! that drive the core `Node` directly.
#![allow(dead_code)] // Each test binary uses its own subset.

use std::time::Duration;
use x0tta6bl4::config::ProtocolConfig;
use x0tta6bl4::ids::{Dest, IfIndex, NodeId, PeerAddr};
use x0tta6bl4::node::{Event, NeighbourState, Node};
use x0tta6bl4::pq::{CryptoRng, SigningKey};
use x0tta6bl4::secure::{Certificate, Trust, TrustPolicy};
use x0tta6bl4::time::Instant;

pub const LATENCY: Duration = Duration::from_millis(1);

/// Two nodes joined by one link. `alive[i] == false` silences node i (a crash: it neither
/// sends nor receives); `drop` decides per frame whether the link loses it. With
/// `hosts_answer`, a unicast frame reaching a silenced node comes back to its sender as a
/// port-unreachable report, as a live host's kernel answers for its dead process.
pub struct Pair {
    pub nodes: [Node; 2],
    pub now: Instant,
    pub alive: [bool; 2],
    pub hosts_answer: bool,
    in_flight: Vec<InFlight>,
    pub events: Vec<(Instant, usize, Event)>,
    pub sent: [u64; 2],
}

impl Pair {
    /// Nodes 0 and 1 without link security.
    pub fn new(cfg: ProtocolConfig) -> Pair {
        let mk = |i: u32| Node::new(NodeId(i), cfg.clone(), [i as u8 + 1; 32], Instant::ZERO).expect("valid config");
        Pair::with_nodes([mk(0), mk(1)])
    }

    /// Two nodes made by the caller; node `i` hears node `1 - i` at the synthetic address
    /// of its id.
    pub fn with_nodes(nodes: [Node; 2]) -> Pair {
        let mut p = Pair {
            nodes,
            now: Instant::ZERO,
            alive: [true, true],
            hosts_answer: false,
            in_flight: Vec::new(),
            events: Vec::new(),
            sent: [0, 0],
        };
        for i in 0..2 {
            p.nodes[i].add_interface(Instant::ZERO);
            p.drain(i, &mut |_, _| false);
        }
        p
    }

    pub fn drain(&mut self, i: usize, drop: &mut dyn FnMut(usize, &[u8]) -> bool) {
        let mut buf = Vec::new();
        while let Some(tx) = self.nodes[i].poll_transmit(&mut buf) {
            self.sent[i] += 1;
            if self.alive[i] && !drop(i, &buf) {
                let unicast = matches!(tx.dest, Dest::Unicast(_));
                self.in_flight.push(InFlight { at: self.now + LATENCY, to: 1 - i, bytes: buf.clone(), unicast, bounced: false });
            }
        }
        while let Some(e) = self.nodes[i].poll_event() {
            self.events.push((self.now, i, e));
        }
    }

    /// Runs until `until`, delivering frames and firing timers in time order.
    pub fn run_until(&mut self, until: Instant, drop: &mut dyn FnMut(usize, &[u8]) -> bool) {
        loop {
            let next_frame = self.in_flight.iter().map(|f| f.at).min();
            let next_timer = (0..2).filter(|&i| self.alive[i]).map(|i| self.nodes[i].poll_timeout()).min();
            let t = match (next_frame, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).expect("something is always scheduled"),
            };
            if t > until {
                self.now = until;
                return;
            }
            self.now = self.now.max(t);
            if next_frame == Some(t) {
                let k = self.in_flight.iter().position(|f| f.at == t).expect("present");
                let f = self.in_flight.remove(k);
                let (to, other) = (f.to, PeerAddr::synthetic(self.nodes[1 - f.to].id()));
                if f.bounced {
                    self.nodes[to].handle_unreachable(self.now, IfIndex(0), other, &f.bytes);
                    self.drain(to, drop);
                } else if self.alive[to] {
                    self.nodes[to].handle_datagram(self.now, IfIndex(0), other, &f.bytes);
                    self.drain(to, drop);
                } else if self.hosts_answer && f.unicast {
                    self.in_flight.push(InFlight { at: self.now + LATENCY, to: 1 - to, bounced: true, ..f });
                }
            } else {
                for i in 0..2 {
                    if self.alive[i] && self.nodes[i].poll_timeout() <= self.now {
                        self.nodes[i].handle_timeout(self.now);
                        self.drain(i, drop);
                    }
                }
            }
        }
    }

    pub fn neighbour_events(&self, observer: usize) -> Vec<(Instant, NeighbourState)> {
        self.events
            .iter()
            .filter(|(_, i, _)| *i == observer)
            .filter_map(|(t, _, e)| match e {
                Event::Neighbour { state, .. } => Some((*t, *state)),
                _ => None,
            })
            .collect()
    }
}

/// A frame on the link, or a report of one coming back.
struct InFlight {
    at: Instant,
    to: usize,
    bytes: Vec<u8>,
    unicast: bool,
    /// A port-unreachable report quoting `bytes`, for their sender.
    bounced: bool,
}

pub fn secs(s: f64) -> Instant {
    Instant::from_nanos((s * 1e9) as u64)
}

pub fn no_drop() -> impl FnMut(usize, &[u8]) -> bool {
    |_, _| false
}

pub fn rng(n: u8) -> CryptoRng {
    CryptoRng::from_seed([n; 32])
}

/// A mesh whose anchor certifies nodes 1, 2, ... until `not_after_s`.
pub struct Anchored {
    pub anchor: SigningKey,
}

impl Anchored {
    pub fn new() -> Self {
        Anchored { anchor: SigningKey::generate(&mut rng(200)) }
    }

    pub fn node(&self, id: u32, not_after_s: u64) -> Trust {
        let key = SigningKey::generate(&mut rng(id as u8));
        let cert = Certificate::issue(&self.anchor, &mut rng(100 + id as u8), NodeId(id), key.public().key_id(), not_after_s);
        Trust {
            key,
            certificate: Some(cert),
            policy: TrustPolicy::Anchor(self.anchor.public().clone()),
            clock_origin_s: 0,
        }
    }
}

