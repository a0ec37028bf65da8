//! Hop-by-hop forwarding of data packets with a TTL, and end-to-end probes.

use super::{CommandError, Event, Incident, Node, ProbeOutcome};
use crate::ids::{Dest, IfIndex, NodeId};
use crate::time::Instant;
use crate::wire::{self, Data, DataClass};

/// A probe awaiting its reply. Deadlines are `sent + probe_timeout` with one timeout for
/// all, so the queue is ordered by deadline and only its head needs a timer.
#[derive(Copy, Clone, Debug)]
pub(crate) struct PendingProbe {
    pub id: u64,
    pub dst: NodeId,
    pub deadline: Instant,
    /// The neighbour slot it left through, and who was there: a loss is evidence about it.
    pub via: u16,
    pub via_id: NodeId,
}

impl Node {
    /// Hands a packet to the next hop toward `d.dst`; returns that neighbour's slot.
    pub(super) fn route_data(&mut self, d: &Data<'_>) -> Result<u16, CommandError> {
        let Some(via) = self.forwarding_via(d.dst) else {
            self.stats.data_no_route += 1;
            return Err(CommandError::NoRoute(d.dst));
        };
        let nb = self.nb(usize::from(via));
        let (iface, addr) = (nb.iface, nb.addr);
        if !self.outbox.push_data(iface, Dest::Unicast(addr), d, &mut self.scratch) {
            return Err(CommandError::QueueFull { what: "outbox", limit: self.cfg.limits.max_outbox_frames });
        }
        Ok(via)
    }

    pub(super) fn send_probe(&mut self, dst: NodeId, id: u64) -> Result<(), CommandError> {
        let now = self.now;
        self.stats.probes_sent += 1;
        if dst == self.id {
            let outcome = ProbeOutcome::Delivered { rtt: std::time::Duration::ZERO };
            self.emit(Event::Probe { at: now, id, dst, outcome });
            return Ok(());
        }
        let limit = self.cfg.limits.max_pending_probes;
        if self.probes.len() >= limit as usize {
            self.stats.pending_probes_full += 1;
            return Err(CommandError::QueueFull { what: "pending probes", limit });
        }
        let probe = Data {
            src: self.id,
            dst,
            ttl: self.cfg.ttl,
            class: DataClass::Probe,
            id,
            origin_ts: now.as_nanos(),
            payload: &[],
        };
        match self.route_data(&probe) {
            Ok(via) => {
                let deadline = now + self.cfg.probe_timeout;
                let via_id = self.nb(usize::from(via)).id;
                self.probes.push_back(PendingProbe { id, dst, deadline, via, via_id });
                Ok(())
            }
            Err(CommandError::NoRoute(_)) => {
                self.emit(Event::Probe { at: now, id, dst, outcome: ProbeOutcome::NoRoute });
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    pub(super) fn send_app(&mut self, dst: NodeId, payload: &[u8]) -> Result<(), CommandError> {
        let max = self.outbox.frame_len_max() - wire::HEADER_LEN - wire::TRAILER_LEN - wire::DATA_HEADER_LEN;
        if payload.len() > max {
            return Err(CommandError::PayloadTooLarge { len: payload.len(), max });
        }
        let d = Data { src: self.id, dst, ttl: self.cfg.ttl, class: DataClass::App, id: 0, origin_ts: 0, payload };
        if dst == self.id {
            self.deliver(&d);
            return Ok(());
        }
        self.route_data(&d).map(|_| ())
    }

    fn deliver(&mut self, d: &Data<'_>) {
        self.stats.data_delivered += 1;
        if !self.deliveries.push(d.src, d.payload) {
            self.stats.deliveries_dropped += 1;
        }
    }

    pub(super) fn handle_data(&mut self, _iface: IfIndex, _sender: NodeId, d: Data<'_>) {
        let now = self.now;
        if d.dst != self.id {
            if d.ttl <= 1 {
                self.stats.ttl_expired += 1;
                self.emit(Event::Incident { at: now, incident: Incident::TtlExpired { src: d.src, dst: d.dst } });
                return;
            }
            if self.drops_transit() {
                return;
            }
            let fwd = Data { ttl: d.ttl - 1, ..d };
            if self.route_data(&fwd).is_ok() {
                self.stats.data_forwarded += 1;
            }
            return;
        }
        match d.class {
            DataClass::App => self.deliver(&d),
            DataClass::Probe => {
                let reply = Data {
                    src: self.id,
                    dst: d.src,
                    ttl: self.cfg.ttl,
                    class: DataClass::ProbeReply,
                    id: d.id,
                    origin_ts: d.origin_ts,
                    payload: &[],
                };
                let _ = self.route_data(&reply);
            }
            DataClass::ProbeReply => {
                let Some(i) = self.probes.iter().position(|p| p.id == d.id && p.dst == d.src) else {
                    // Late: already counted lost.
                    return;
                };
                let p = self.probes.remove(i).expect("position is in range");
                self.stats.probes_delivered += 1;
                let rtt = now.saturating_since(Instant::from_nanos(d.origin_ts));
                self.emit(Event::Probe { at: now, id: p.id, dst: p.dst, outcome: ProbeOutcome::Delivered { rtt } });
            }
            DataClass::AuditProbe => {
                let Some(relay) = payload_id(d.payload) else { return self.decode_error(wire::DecodeError::TruncatedData) };
                let sender = d.src.0.to_be_bytes();
                let echo = Data { src: self.id, dst: relay, ttl: self.cfg.ttl, class: DataClass::AuditEcho, payload: &sender, ..d };
                let _ = self.route_data(&echo);
            }
            DataClass::AuditEcho => {
                let Some(origin) = payload_id(d.payload) else { return self.decode_error(wire::DecodeError::TruncatedData) };
                if origin == self.id {
                    return self.audit_echo(d.id);
                }
                // We are the relay: the audit's origin is our neighbour, and the echo goes
                // straight to it, as everything it sends through us would come back.
                let Some((iface, addr)) = self
                    .neighbours
                    .iter()
                    .flatten()
                    .find(|nb| nb.id == origin && nb.link == super::neighbour::Link::Up)
                    .map(|nb| (nb.iface, nb.addr))
                else {
                    return;
                };
                if self.drops_transit() {
                    return;
                }
                let echo = Data { dst: origin, ttl: self.cfg.ttl, ..d };
                let _ = self.outbox.push_data(iface, Dest::Unicast(addr), &echo, &mut self.scratch);
            }
        }
    }

    pub(super) fn probe_timers(&mut self) {
        while let Some(p) = self.probes.front().copied() {
            if p.deadline > self.now {
                break;
            }
            self.probes.pop_front();
            self.stats.probes_lost += 1;
            self.transit_lost(p.via, p.via_id, p.dst);
            self.emit(Event::Probe { at: self.now, id: p.id, dst: p.dst, outcome: ProbeOutcome::Lost });
        }
    }
}

/// The node id an audit payload carries.
fn payload_id(payload: &[u8]) -> Option<NodeId> {
    Some(NodeId(u32::from_be_bytes(payload.try_into().ok()?)))
}
