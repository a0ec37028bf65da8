//! Node events as flat records: the JSON lines `x0-node` streams, and the rows of
//! `events.parquet`. One definition that reads back into [`TimedEvent`] without loss, so that
//! metrics computed from a live mesh use the same code, on the same values, as the simulator.

use crate::ids::{IfIndex, NodeId, PeerAddr};
use crate::metrics::TimedEvent;
use crate::node::{Event, Incident, Misbehaviour, NeighbourState, ProbeOutcome};
use crate::time::Instant;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use thiserror::Error;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Neighbour,
    Route,
    Probe,
    Incident,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Neighbour => "neighbour",
            Kind::Route => "route",
            Kind::Probe => "probe",
            Kind::Incident => "incident",
        }
    }
}

/// The state, outcome or incident an event reports, where its kind has several.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detail {
    Up,
    Suspected,
    Down,
    Delivered,
    Lost,
    NoRoute,
    Starved,
    NeighbourRestarted,
    TtlExpired,
    Isolated,
    Attack,
}

impl Detail {
    pub fn as_str(self) -> &'static str {
        match self {
            Detail::Up => "up",
            Detail::Suspected => "suspected",
            Detail::Down => "down",
            Detail::Delivered => "delivered",
            Detail::Lost => "lost",
            Detail::NoRoute => "no_route",
            Detail::Starved => "starved",
            Detail::NeighbourRestarted => "neighbour_restarted",
            Detail::TtlExpired => "ttl_expired",
            Detail::Isolated => "isolated",
            Detail::Attack => "attack",
        }
    }
}

/// One event of one node. `t_ns` is the driver's time (virtual in the simulator, Unix time
/// on a live mesh, so that streams from several nodes of one machine interleave);
/// `at_ns` is the node's own clock. Fields a kind does not use are absent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub t_ns: u64,
    pub node: u32,
    pub at_ns: u64,
    pub event: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iface: Option<u16>,
    /// The neighbour (neighbour events, restarts) or the source (TTL expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ns: Option<u64>,
    /// The sender address an isolation or attack names, as `[ipv6]:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misbehaviour: Option<Misbehaviour>,
}

/// A record that does not describe an event: which field is missing or wrong, and where.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("a {kind:?} event needs field `{field}`")]
    Missing { kind: Kind, field: &'static str },
    #[error("a {kind:?} event cannot have detail `{}`", detail.as_str())]
    Detail { kind: Kind, detail: Detail },
    #[error("`addr` is {0:?}, expected an IPv6 socket address like [fe80::1]:6696")]
    BadAddr(String),
}

impl From<&TimedEvent> for EventRecord {
    fn from(e: &TimedEvent) -> Self {
        let mut r = EventRecord {
            t_ns: e.t.as_nanos(),
            node: e.node.0,
            at_ns: e.event.at().as_nanos(),
            event: Kind::Incident,
            detail: None,
            iface: None,
            peer: None,
            dest: None,
            next_hop: None,
            previous: None,
            metric: None,
            probe_id: None,
            rtt_ns: None,
            addr: None,
            misbehaviour: None,
        };
        match e.event {
            Event::Neighbour { iface, peer, state, .. } => {
                r.event = Kind::Neighbour;
                r.detail = Some(match state {
                    NeighbourState::Up => Detail::Up,
                    NeighbourState::Suspected => Detail::Suspected,
                    NeighbourState::Down => Detail::Down,
                });
                (r.iface, r.peer) = (Some(iface.0), Some(peer.0));
            }
            Event::Route { dest, next_hop, previous, metric, .. } => {
                r.event = Kind::Route;
                (r.dest, r.next_hop, r.previous, r.metric) = (Some(dest.0), next_hop.map(|n| n.0), previous.map(|n| n.0), Some(metric));
            }
            Event::Probe { id, dst, outcome, .. } => {
                r.event = Kind::Probe;
                (r.probe_id, r.dest) = (Some(id), Some(dst.0));
                r.detail = Some(match outcome {
                    ProbeOutcome::Delivered { rtt } => {
                        r.rtt_ns = Some(u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX));
                        Detail::Delivered
                    }
                    ProbeOutcome::Lost => Detail::Lost,
                    ProbeOutcome::NoRoute => Detail::NoRoute,
                });
            }
            Event::Incident { incident, .. } => {
                r.detail = Some(match incident {
                    Incident::Starved { dest } => {
                        r.dest = Some(dest.0);
                        Detail::Starved
                    }
                    Incident::NeighbourRestarted { iface, peer } => {
                        (r.iface, r.peer) = (Some(iface.0), Some(peer.0));
                        Detail::NeighbourRestarted
                    }
                    Incident::TtlExpired { src, dst } => {
                        (r.peer, r.dest) = (Some(src.0), Some(dst.0));
                        Detail::TtlExpired
                    }
                    Incident::Isolated { iface, addr, misbehaviour } | Incident::Attack { iface, addr, misbehaviour } => {
                        r.iface = Some(iface.0);
                        r.addr = Some(addr.to_string());
                        r.misbehaviour = Some(misbehaviour);
                        if matches!(incident, Incident::Isolated { .. }) { Detail::Isolated } else { Detail::Attack }
                    }
                });
            }
        }
        r
    }
}

impl TryFrom<&EventRecord> for TimedEvent {
    type Error = RecordError;

    fn try_from(r: &EventRecord) -> Result<Self, RecordError> {
        let kind = r.event;
        let need = |v: Option<u32>, field: &'static str| v.map(NodeId).ok_or(RecordError::Missing { kind, field });
        let iface = |field| r.iface.map(IfIndex).ok_or(RecordError::Missing { kind, field });
        let detail = r.detail.ok_or(RecordError::Missing { kind, field: "detail" });
        let wrong = |detail| RecordError::Detail { kind, detail };
        let at = Instant::from_nanos(r.at_ns);
        let event = match kind {
            Kind::Neighbour => Event::Neighbour {
                at,
                iface: iface("iface")?,
                peer: need(r.peer, "peer")?,
                state: match detail? {
                    Detail::Up => NeighbourState::Up,
                    Detail::Suspected => NeighbourState::Suspected,
                    Detail::Down => NeighbourState::Down,
                    d => return Err(wrong(d)),
                },
            },
            Kind::Route => Event::Route {
                at,
                dest: need(r.dest, "dest")?,
                next_hop: r.next_hop.map(NodeId),
                previous: r.previous.map(NodeId),
                metric: r.metric.ok_or(RecordError::Missing { kind, field: "metric" })?,
            },
            Kind::Probe => Event::Probe {
                at,
                id: r.probe_id.ok_or(RecordError::Missing { kind, field: "probe_id" })?,
                dst: need(r.dest, "dest")?,
                outcome: match detail? {
                    Detail::Delivered => ProbeOutcome::Delivered {
                        rtt: Duration::from_nanos(r.rtt_ns.ok_or(RecordError::Missing { kind, field: "rtt_ns" })?),
                    },
                    Detail::Lost => ProbeOutcome::Lost,
                    Detail::NoRoute => ProbeOutcome::NoRoute,
                    d => return Err(wrong(d)),
                },
            },
            Kind::Incident => Event::Incident {
                at,
                incident: match detail? {
                    Detail::Starved => Incident::Starved { dest: need(r.dest, "dest")? },
                    Detail::NeighbourRestarted => {
                        Incident::NeighbourRestarted { iface: iface("iface")?, peer: need(r.peer, "peer")? }
                    }
                    Detail::TtlExpired => Incident::TtlExpired { src: need(r.peer, "peer")?, dst: need(r.dest, "dest")? },
                    d @ (Detail::Isolated | Detail::Attack) => {
                        let text = r.addr.as_deref().ok_or(RecordError::Missing { kind, field: "addr" })?;
                        let addr: PeerAddr = text.parse().map_err(|_| RecordError::BadAddr(text.to_string()))?;
                        let misbehaviour = r.misbehaviour.ok_or(RecordError::Missing { kind, field: "misbehaviour" })?;
                        let iface = iface("iface")?;
                        if d == Detail::Isolated {
                            Incident::Isolated { iface, addr, misbehaviour }
                        } else {
                            Incident::Attack { iface, addr, misbehaviour }
                        }
                    }
                    d => return Err(wrong(d)),
                },
            },
        };
        Ok(TimedEvent { t: Instant::from_nanos(r.t_ns), node: NodeId(r.node), event })
    }
}
