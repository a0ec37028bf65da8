//! Byzantine neighbours: evidence of misbehaviour, detection and isolation.
//!
//! Link security (`admission`) makes every frame name its sender truthfully, but an admitted
//! node can still lie in what it says and drop what it is given, and anyone on a link can
//! replay or spray bytes. The guard runs on nodes with link security (without it no
//! evidence names a sender) and looks for four signs, each with a bounded table and a
//! threshold in `protocol.security`:
//!
//! - **Malformed frames** from one address (a flood of garbage): the address is isolated,
//!   every frame from it dropped before decoding, for `isolation`.
//! - **Failed identity proofs** from one address: a certificate or id that is not the
//!   sender's, or a bad handshake signature. An impersonator holds the victim's public
//!   certificate, never its key. The *address* is isolated, never the claimed id, so the
//!   victim is untouched.
//! - **Replayed sealed frames**: reported as an attack, and nothing is isolated, because a
//!   replay carries the honest sender's address and anyone on the link can make one.
//! - **Traffic through a next hop that does not get through** (a blackhole advertising
//!   routes it lacks, a grey hole dropping what it forwards). Losses of our own probes
//!   through one neighbour start an *audit*: we send it [`Tlv::Audit`] and, at the same
//!   moment, audit probes to the same destination through it; it sends audit probes of its
//!   own and reports how many came back. Every audit probe's echo returns through the
//!   audited neighbour (the relay named in its payload), so ours and its own travel the same
//!   paths both ways, and a fault beyond it hits both alike. Ours failing while its own get
//!   through means it drops transit; it reporting no route while it still advertises one
//!   means it advertises what it lacks. Either is a strike; `audit_strikes` strikes within
//!   `audit_window` isolate it: its routes are flushed and its updates ignored.
//!
//! Assumption, stated where it matters: the audited node reports its own probes truthfully.
//! A node that drops transit *and* lies in its reports is not caught by the audit (ODSBR's
//! authenticated per-hop acknowledgements would be needed); it is named in ARCHITECTURE.md.

use super::{Event, Incident, Node};
use crate::ids::{Dest, IfIndex, NodeId, PeerAddr};
use crate::time::Instant;
use crate::units::Percent;
use crate::wire::{Data, DataClass, Tlv};
use rand::{Rng, RngExt};

/// Most audit probes one side of an audit sends (they are tracked in a 16-bit mask).
pub const AUDIT_PROBES_MAX: u8 = 16;
/// Addresses with evidence against them that are remembered at once; beyond it the one
/// with the oldest evidence (and not isolated) is forgotten, so a spray of made-up
/// addresses costs a fixed amount of memory.
const SUSPECTS_MAX: usize = 32;
/// Audits this node runs at once, and audits of it by neighbours it answers at once.
const AUDITS_MAX: usize = 8;
/// Marks the probe ids of audits we answer, apart from those of audits we run.
const JOB_ID: u64 = 1 << 63;

/// What a neighbour was caught doing.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Misbehaviour {
    MalformedFlood,
    Impersonation,
    Replay,
    /// Blackhole or grey hole: what is sent through it does not get through while its own
    /// traffic does, or it advertises routes it says it does not have.
    DropsTransit,
}

impl Misbehaviour {
    pub fn label(self) -> &'static str {
        match self {
            Misbehaviour::MalformedFlood => "malformed_flood",
            Misbehaviour::Impersonation => "impersonation",
            Misbehaviour::Replay => "replay",
            Misbehaviour::DropsTransit => "drops_transit",
        }
    }

    /// Whether isolation for this drops every frame from the address unread, so that a
    /// driver may drop them earlier, in the kernel (x0-node's XDP blocklist), for the same
    /// `security.isolation`. A neighbour isolated for dropping transit is still heard: only
    /// its routes are refused, and its own route is kept.
    pub fn drops_frames(self) -> bool {
        matches!(self, Misbehaviour::MalformedFlood | Misbehaviour::Impersonation)
    }

}

/// How this node behaves. Anything but `Honest` is a compromised node in a chaos
/// experiment: the misbehaviour lives here, in the one protocol implementation, so the
/// simulator and a live node misbehave the same way.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Behaviour {
    #[default]
    Honest,
    /// Advertises every destination at one hop, reachable or not, and drops every packet it
    /// is given to forward.
    Blackhole,
    /// Drops this share of the packets it is given to forward.
    GreyHole { drop: Percent },
}

struct Suspect {
    iface: IfIndex,
    addr: PeerAddr,
    window_start: Instant,
    malformed: u32,
    impersonations: u32,
    replays: u32,
    blocked_until: Instant,
    /// A replay attack from here is not reported again before this.
    quiet_until: Instant,
}

/// Transit evidence against one neighbour.
struct Watch {
    slot: u16,
    peer: NodeId,
    losses: u8,
    losses_since: Instant,
    strikes: u8,
    strikes_since: Instant,
    isolated_until: Instant,
}

/// An audit we run on a neighbour.
struct Run {
    slot: u16,
    peer: NodeId,
    nonce: u32,
    dest: NodeId,
    deadline: Instant,
    sent: u8,
    echoed: u16,
    report: Option<Report>,
}

/// What an audited neighbour says of its own probes.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Report {
    pub delivered: u8,
    /// 0: it has no route.
    pub sent: u8,
    pub next_hop: NodeId,
    /// The metric of its own selected route.
    pub metric: u16,
}

/// An audit a neighbour asked of us.
struct Job {
    slot: u16,
    peer: NodeId,
    nonce: u32,
    deadline: Instant,
    sent: u8,
    echoed: u16,
    dest: NodeId,
    /// Our next hop toward `dest` when the probes left: slot and id.
    via: Option<(u16, NodeId)>,
}

#[derive(Default)]
pub(crate) struct Guard {
    suspects: Vec<Suspect>,
    /// Any suspect is blocked: lets the per-frame check skip the table in the common case.
    blocking: bool,
    watches: Vec<Watch>,
    runs: Vec<Run>,
    jobs: Vec<Job>,
}

impl Guard {
    pub fn heap_bytes(&self) -> usize {
        self.suspects.capacity() * size_of::<Suspect>()
            + self.watches.capacity() * size_of::<Watch>()
            + self.runs.capacity() * size_of::<Run>()
            + self.jobs.capacity() * size_of::<Job>()
    }

    pub fn next_deadline(&self) -> Instant {
        let runs = self.runs.iter().map(|r| r.deadline);
        runs.chain(self.jobs.iter().map(|j| j.deadline)).min().unwrap_or(Instant::NEVER)
    }

    fn watch(&mut self, slot: u16, peer: NodeId, now: Instant) -> &mut Watch {
        let i = match self.watches.iter().position(|w| w.slot == slot) {
            Some(i) => i,
            None => {
                self.watches.push(Watch {
                    slot,
                    peer,
                    losses: 0,
                    losses_since: now,
                    strikes: 0,
                    strikes_since: now,
                    isolated_until: Instant::ZERO,
                });
                self.watches.len() - 1
            }
        };
        let w = &mut self.watches[i];
        if w.peer != peer {
            // The slot now holds another neighbour: the evidence was about the old one.
            *w = Watch { slot, peer, losses: 0, losses_since: now, strikes: 0, strikes_since: now, isolated_until: Instant::ZERO };
        }
        w
    }
}

fn count_bits(mask: u16) -> u8 {
    mask.count_ones() as u8
}

impl Node {
    /// Makes this node misbehave (or behave again) from now on.
    pub fn set_behaviour(&mut self, now: Instant, behaviour: Behaviour) {
        self.advance(now);
        self.behaviour = behaviour;
        // Routes go out again at once, forged or true.
        self.dump_routes(None);
        self.finish_input();
    }

    pub fn behaviour(&self) -> Behaviour {
        self.behaviour
    }

    /// Whether a misbehaving node drops the packet it was just given to forward.
    pub(super) fn drops_transit(&mut self) -> bool {
        match self.behaviour {
            Behaviour::Honest => false,
            Behaviour::Blackhole => true,
            Behaviour::GreyHole { drop } => self.rng.random_range(0..1_000_000) < drop.ppm(),
        }
    }

    /// The metric a blackhole claims for `dest` in place of `metric`.
    pub(super) fn forged_metric(&self, dest: NodeId, metric: u16) -> u16 {
        if self.behaviour == Behaviour::Blackhole && dest != self.id && !crate::area::is_area(dest) {
            super::LINK_COST_UNIT
        } else {
            metric
        }
    }

    /// Whether frames from `src` on `iface` are dropped unread: the address was isolated.
    pub(super) fn blocked(&mut self, iface: IfIndex, src: PeerAddr) -> bool {
        let now = self.now;
        let Some(g) = self.guard.as_mut() else { return false };
        if !g.blocking {
            return false;
        }
        let hit = g.suspects.iter().any(|s| s.iface == iface && s.addr == src && s.blocked_until > now);
        if hit {
            self.stats.blocked_rx += 1;
        } else if g.suspects.iter().all(|s| s.blocked_until <= now) {
            g.blocking = false;
        }
        hit
    }

    /// One piece of evidence of `kind` against whoever sends from `src` on `iface`.
    pub(super) fn evidence(&mut self, iface: IfIndex, src: PeerAddr, kind: Misbehaviour) {
        let (now, c) = (self.now, &self.cfg.security);
        let (window, isolation) = (c.evidence_window, c.isolation);
        let Some(g) = self.guard.as_mut() else { return };
        let i = match g.suspects.iter().position(|s| s.iface == iface && s.addr == src) {
            Some(i) => i,
            None => {
                let fresh = Suspect {
                    iface,
                    addr: src,
                    window_start: now,
                    malformed: 0,
                    impersonations: 0,
                    replays: 0,
                    blocked_until: Instant::ZERO,
                    quiet_until: Instant::ZERO,
                };
                if g.suspects.len() < SUSPECTS_MAX {
                    g.suspects.push(fresh);
                    g.suspects.len() - 1
                } else {
                    let oldest = g
                        .suspects
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| s.blocked_until <= now)
                        .min_by_key(|(_, s)| s.window_start)
                        .map(|(i, _)| i);
                    // Every entry is an isolated address: the table is full of attackers
                    // already held off, and this one waits for a place.
                    let Some(i) = oldest else { return };
                    g.suspects[i] = fresh;
                    i
                }
            }
        };
        let s = &mut g.suspects[i];
        if now.saturating_since(s.window_start) > window {
            s.window_start = now;
            s.malformed = 0;
            s.impersonations = 0;
            s.replays = 0;
        }
        let (count, max) = match kind {
            Misbehaviour::MalformedFlood => (&mut s.malformed, c.malformed_max),
            Misbehaviour::Impersonation => (&mut s.impersonations, c.impersonations_max),
            Misbehaviour::Replay => (&mut s.replays, c.replays_max),
            Misbehaviour::DropsTransit => unreachable!("transit evidence is kept per neighbour"),
        };
        *count += 1;
        if *count < max {
            return;
        }
        *count = 0;
        let incident = if kind == Misbehaviour::Replay {
            if now < s.quiet_until {
                return;
            }
            s.quiet_until = now + isolation;
            self.stats.attacks_reported += 1;
            Incident::Attack { iface, addr: src, misbehaviour: kind }
        } else {
            s.blocked_until = now + isolation;
            g.blocking = true;
            self.stats.isolations += 1;
            Incident::Isolated { iface, addr: src, misbehaviour: kind }
        };
        self.emit(Event::Incident { at: now, incident });
    }

    /// Whether the neighbour in `slot` is isolated: its updates are not taken.
    pub(super) fn isolated(&self, slot: usize) -> bool {
        let Some(g) = self.guard.as_ref() else { return false };
        g.watches.iter().any(|w| usize::from(w.slot) == slot && w.isolated_until > self.now && Some(w.peer) == self.neighbours[slot].as_ref().map(|n| n.id))
    }

    /// A probe of ours sent through the neighbour in `slot` (then `peer`) to `dest` was lost.
    pub(super) fn transit_lost(&mut self, slot: u16, peer: NodeId, dest: NodeId) {
        if self.guard.is_none() {
            return;
        }
        let (now, c) = (self.now, &self.cfg.security);
        let (window, trigger) = (c.audit_window, c.audit_losses);
        let usable = self.neighbours.get(usize::from(slot)).and_then(Option::as_ref).is_some_and(|nb| {
            nb.id == peer && nb.link == super::neighbour::Link::Up
        });
        if !usable || self.isolated(usize::from(slot)) {
            return;
        }
        let Some(g) = self.guard.as_mut() else { return };
        let busy = g.runs.len() >= AUDITS_MAX || g.runs.iter().any(|r| r.slot == slot);
        let w = g.watch(slot, peer, now);
        if now.saturating_since(w.losses_since) > window {
            w.losses = 0;
            w.losses_since = now;
        }
        w.losses = w.losses.saturating_add(1);
        if w.losses >= trigger && !busy {
            w.losses = 0;
            self.start_audit(slot, peer, dest);
        }
    }

    fn start_audit(&mut self, slot: u16, peer: NodeId, dest: NodeId) {
        let nonce = self.rng.next_u32();
        let (iface, addr) = {
            let nb = self.nb(usize::from(slot));
            (nb.iface, nb.addr)
        };
        self.outbox.push(iface, Dest::Unicast(addr), Tlv::Audit { dest, nonce }, self.ifaces());
        let relay = peer.0.to_be_bytes();
        let mut sent = 0;
        for k in 0..self.cfg.security.audit_probes {
            let probe = self.audit_probe(dest, (u64::from(nonce) << 8) | u64::from(k), &relay);
            // Through this neighbour whatever our route is now: it is the one on trial.
            if self.outbox.push_data(iface, Dest::Unicast(addr), &probe, &mut self.scratch) {
                sent += 1;
            }
        }
        let deadline = self.now + self.cfg.probe_timeout * 3 / 2;
        let g = self.guard.as_mut().expect("audits run on guarded nodes");
        g.runs.push(Run { slot, peer, nonce, dest, deadline, sent, echoed: 0, report: None });
        self.stats.audits_started += 1;
    }

    fn audit_probe<'a>(&self, dest: NodeId, id: u64, relay: &'a [u8; 4]) -> Data<'a> {
        let origin_ts = self.now.as_nanos();
        Data { src: self.id, dst: dest, ttl: self.cfg.ttl, class: DataClass::AuditProbe, id, origin_ts, payload: relay }
    }

    /// A neighbour asks us to audit our own delivery to `dest`.
    pub(super) fn on_audit(&mut self, slot: usize, dest: NodeId, nonce: u32) {
        let peer = self.nb(slot).id;
        let Some(g) = self.guard.as_ref() else { return };
        if g.jobs.len() >= AUDITS_MAX || g.jobs.iter().any(|j| j.nonce == nonce) {
            return;
        }
        // Echoes of our own come straight back to us: we are our own relay.
        let relay = self.id.0.to_be_bytes();
        let (mut sent, mut via) = (0, None);
        for k in 0..self.cfg.security.audit_probes {
            let probe = self.audit_probe(dest, JOB_ID | (u64::from(nonce) << 8) | u64::from(k), &relay);
            if let Ok(v) = self.route_data(&probe) {
                sent += 1;
                via = Some((v, self.nb(usize::from(v)).id));
            }
        }
        // With no route there is nothing to wait for: report at once.
        let deadline = if sent == 0 { self.now } else { self.now + self.cfg.probe_timeout };
        let g = self.guard.as_mut().expect("checked above");
        g.jobs.push(Job { slot: slot as u16, peer, nonce, deadline, sent, echoed: 0, dest, via });
    }

    pub(super) fn on_audit_report(&mut self, slot: usize, nonce: u32, report: Report) {
        let Some(g) = self.guard.as_mut() else { return };
        if let Some(r) = g.runs.iter_mut().find(|r| usize::from(r.slot) == slot && r.nonce == nonce) {
            r.report = Some(report);
        }
    }

    /// The echo of one of our audit probes came back.
    pub(super) fn audit_echo(&mut self, id: u64) {
        let Some(g) = self.guard.as_mut() else { return };
        let nonce = (id >> 8) as u32;
        let bit = 1u16 << (id & 0xff).min(15);
        if id & JOB_ID != 0 {
            if let Some(j) = g.jobs.iter_mut().find(|j| j.nonce == nonce) {
                j.echoed |= bit;
            }
        } else if let Some(r) = g.runs.iter_mut().find(|r| r.nonce == nonce) {
            r.echoed |= bit;
        }
    }

    /// Reports finished jobs and judges finished audits.
    pub(super) fn guard_timers(&mut self) {
        let now = self.now;
        while let Some(g) = self.guard.as_mut()
            && let Some(i) = g.jobs.iter().position(|j| j.deadline <= now)
        {
            let j = g.jobs.swap_remove(i);
            let delivered = count_bits(j.echoed);
            let next_hop = j.via.map_or(NodeId(0), |(_, id)| id);
            let metric = self.forwarding_route(j.dest).map_or(crate::wire::METRIC_INFINITY, |(_, m, _)| m);
            let report = Tlv::AuditReport { nonce: j.nonce, delivered, sent: j.sent, next_hop, metric };
            // Our own probes lost too: evidence about our next hop, as our own traffic's is.
            if let Some((slot, id)) = j.via {
                for _ in delivered..j.sent {
                    self.transit_lost(slot, id, j.dest);
                }
            }
            let nb = self.neighbours.get(usize::from(j.slot)).and_then(Option::as_ref).filter(|nb| nb.id == j.peer);
            if let Some((iface, addr)) = nb.map(|nb| (nb.iface, nb.addr)) {
                self.outbox.push(iface, Dest::Unicast(addr), report, self.ifaces());
                self.stats.audits_answered += 1;
            }
        }
        while let Some(g) = self.guard.as_mut()
            && let Some(i) = g.runs.iter().position(|r| r.deadline <= now)
        {
            let r = g.runs.swap_remove(i);
            self.judge(r);
        }
    }

    fn judge(&mut self, r: Run) {
        let ours = count_bits(r.echoed);
        // Ours mostly lost: at most a quarter back.
        let ours_lost = u32::from(ours) * 4 <= u32::from(r.sent);
        // What it still offers us for the destination, a whole audit after the losses.
        let offered = self.routes.offered(r.dest, r.slot);
        let strike = ours_lost
            && match r.report {
                // Its own through (all, or all but one) while ours were not. Strict on its
                // side because an honest node upstream of a grey hole sees its own probes
                // lost at random too: all of them getting through by luck is what must stay
                // unlikely, twice in a window.
                Some(p) if p.sent > 0 && p.delivered + 1 >= p.sent => true,
                // It offers a route more than a hop better than the one it has (or one it
                // does not have): honest nodes advertise a worse metric at once, so this
                // is a forged advertisement, a blackhole's lure.
                Some(p) if offered.is_some_and(|o| u32::from(p.metric) > u32::from(o) + u32::from(super::LINK_COST_UNIT)) => true,
                // Its own lost too, but through us: it routes the destination back to the
                // neighbour that routes it through it. Honest routing is loop-free at every
                // instant (the feasibility condition), so the loop is of its making.
                Some(p) => p.sent > 0 && p.next_hop == self.id,
                // No report: lost, or withheld. Not counted; see the module's assumption.
                None => false,
            };
        if !strike {
            return;
        }
        let (now, c) = (self.now, &self.cfg.security);
        let (window, strikes_max, isolation) = (c.audit_window, c.audit_strikes, c.isolation);
        let g = self.guard.as_mut().expect("judged on guarded nodes");
        let w = g.watch(r.slot, r.peer, now);
        if now.saturating_since(w.strikes_since) > window {
            w.strikes = 0;
            w.strikes_since = now;
        }
        w.strikes += 1;
        if w.strikes < strikes_max {
            return;
        }
        w.strikes = 0;
        w.isolated_until = now + isolation;
        self.stats.isolations += 1;
        let (iface, addr) = (self.nb(usize::from(r.slot)).iface, self.nb(usize::from(r.slot)).addr);
        let incident = Incident::Isolated { iface, addr, misbehaviour: Misbehaviour::DropsTransit };
        self.emit(Event::Incident { at: now, incident });
        self.flush_routes_via(r.slot);
        // The flush took our route to the neighbour itself too; that one it may still give.
        self.outbox.push(iface, Dest::Unicast(addr), Tlv::RouteRequest { dest: r.peer }, self.ifaces());
    }
}
