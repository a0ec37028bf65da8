//! Loop-free distance-vector routing in the spirit of Babel (RFC 8966).
//!
//! Each node originates a route to itself with a sequence number it alone increases. A route
//! learnt from a neighbour is *feasible* if its advertised distance `(seqno, metric)` is
//! strictly better than our *feasibility distance* (FD) for that destination: newer seqno,
//! or same seqno and smaller metric. Only feasible routes are selected, and the FD only ever
//! improves when we advertise. Following next hops therefore walks strictly decreasing
//! distances and cannot close a cycle, at every instant, whatever messages are late or
//! lost. When no feasible route is left the node is *starved*: it retracts the route and asks
//! the network for a newer seqno, which only the destination can issue, and which makes
//! every route feasible again.

use super::{Event, Incident, Node};
use crate::ids::{Dest, IfIndex, NodeId};
use crate::time::Instant;
use crate::wire::{METRIC_INFINITY as INF, Tlv, seqno_newer};
use indexmap::IndexMap;
use rustc_hash::FxBuildHasher;
use std::time::Duration;

/// Routes kept per destination: the best few neighbours' offers. A fixed array keeps a
/// destination's state in one cache-friendly block.
pub(crate) const ROUTES_PER_DEST: usize = 4;
/// A change of our metric smaller than half a hop waits for the periodic dump.
const TRIGGER_METRIC_DELTA: u16 = super::LINK_COST_UNIT / 2;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Distance {
    seqno: u16,
    metric: u16,
}

#[derive(Copy, Clone, Debug, Default)]
struct Route {
    via: u16,
    seqno: u16,
    metric: u16,
    expiry: Instant,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Selected {
    via: u16,
    seqno: u16,
    metric: u16,
}

#[derive(Copy, Clone, Debug)]
struct Request {
    seqno: u16,
    resend_at: Instant,
    retries_left: u8,
}

/// Whether a destination's change still has to be advertised, and how soon.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Pending {
    None,
    /// Good news (a new or shorter route): batched for `triggered_update_delay`, so a burst
    /// of improvements (a cold start) goes out as one update per destination.
    Later,
    /// Bad news or news others are waiting for (retraction, worse metric, new seqno,
    /// reachable again): after `urgent_update_delay`, which only gathers what arrives in
    /// the same instant burst into one frame.
    Now,
}

#[derive(Clone, Debug)]
struct DestEntry {
    fd: Option<Distance>,
    routes: [Route; ROUTES_PER_DEST],
    n_routes: u8,
    selected: Option<Selected>,
    advertised: Option<Distance>,
    pending: Pending,
    last_reachable: Instant,
    request: Option<Request>,
    /// The last seqno request forwarded, for duplicate suppression: (seqno, origin, until).
    forwarded: Option<(u16, NodeId, Instant)>,
}

impl DestEntry {
    fn new(now: Instant) -> Self {
        DestEntry {
            fd: None,
            routes: [Route::default(); ROUTES_PER_DEST],
            n_routes: 0,
            selected: None,
            advertised: None,
            pending: Pending::None,
            last_reachable: now,
            request: None,
            forwarded: None,
        }
    }

    fn routes(&self) -> &[Route] {
        &self.routes[..usize::from(self.n_routes)]
    }

    fn position(&self, via: u16) -> Option<usize> {
        self.routes().iter().position(|r| r.via == via)
    }

    fn remove(&mut self, i: usize) {
        let n = usize::from(self.n_routes);
        debug_assert!(i < n);
        self.routes[i] = self.routes[n - 1];
        self.n_routes -= 1;
    }
}

/// Babel's feasibility condition. Retractions are always acceptable (they never attract
/// traffic).
fn feasible(fd: Option<Distance>, seqno: u16, metric: u16) -> bool {
    metric == INF
        || match fd {
            None => true,
            Some(fd) => seqno_newer(seqno, fd.seqno) || (seqno == fd.seqno && metric < fd.metric),
        }
}

fn add_metric(advertised: u16, cost: u16) -> u16 {
    if advertised == INF || cost == INF {
        INF
    } else {
        (u32::from(advertised) + u32::from(cost)).min(u32::from(INF - 1)) as u16
    }
}

#[derive(Default)]
pub(crate) struct RouteTable {
    dests: IndexMap<NodeId, DestEntry, FxBuildHasher>,
    /// Destinations whose change goes out at `urgent_at`.
    dirty: Vec<NodeId>,
    urgent_at: Option<Instant>,
    /// Destinations whose change goes out at `flush_at`.
    later: Vec<NodeId>,
    flush_at: Option<Instant>,
    /// Destinations with a seqno request outstanding.
    requests: Vec<NodeId>,
    scratch: Vec<NodeId>,
}

impl RouteTable {
    pub fn len(&self) -> usize {
        self.dests.len()
    }


    /// (next-hop slot, metric, seqno) of the selected route.
    pub fn selected(&self, dest: NodeId) -> Option<(u16, u16, u16)> {
        self.dests.get(&dest)?.selected.map(|s| (s.via, s.metric, s.seqno))
    }

    /// The earliest of: a seqno request to resend, batched updates to flush.
    pub fn next_deadline(&self) -> Option<Instant> {
        let request = self.requests.iter().filter_map(|d| self.dests.get(d)?.request.map(|r| r.resend_at)).min();
        [request, self.flush_at, self.urgent_at].into_iter().flatten().min()
    }
}

impl Node {
    fn link_cost(&self, via: u16) -> u16 {
        self.neighbours[usize::from(via)].as_ref().map_or(INF, |n| n.cost)
    }

    /// Schedules a triggered update for `dest`, now or batched.
    fn mark_dirty(&mut self, dest: NodeId, urgency: Pending) {
        let Some(e) = self.routes.dests.get_mut(&dest) else { return };
        match (e.pending, urgency) {
            (Pending::Now, _) | (_, Pending::None) | (Pending::Later, Pending::Later) => {}
            (_, Pending::Now) => {
                // If it was batched it stays listed there too; the flush skips it then.
                e.pending = Pending::Now;
                self.routes.dirty.push(dest);
                if self.routes.urgent_at.is_none() {
                    self.routes.urgent_at = Some(self.now + self.cfg.urgent_update_delay);
                }
            }
            (Pending::None, Pending::Later) => {
                e.pending = Pending::Later;
                self.routes.later.push(dest);
                if self.routes.flush_at.is_none() {
                    self.routes.flush_at = Some(self.now + self.cfg.triggered_update_delay);
                }
            }
        }
    }

    pub(super) fn on_update(&mut self, slot: usize, dest: NodeId, seqno: u16, metric: u16, interval_ms: u16) {
        self.stats.updates_rx += 1;
        if dest == self.id {
            // Someone speaks of us with a newer seqno than ours: a past life of ours, or a
            // duplicate id. Jump ahead so our own routes win again.
            if seqno_newer(seqno, self.own_seqno) {
                self.own_seqno = seqno.wrapping_add(1);
                self.self_dirty = true;
            }
            return;
        }
        if self.nb(slot).public_state().is_none_or(|s| s == super::NeighbourState::Down) {
            return;
        }
        let now = self.now;
        let interval = Duration::from_millis(u64::from(interval_ms));
        let expiry = now + self.cfg.route_expiry().max(interval * 7 / 2);
        if !self.routes.dests.contains_key(&dest) {
            if metric == INF {
                return;
            }
            if self.routes.dests.len() >= self.cfg.limits.max_destinations as usize {
                self.stats.destination_table_full += 1;
                return;
            }
            self.routes.dests.insert(dest, DestEntry::new(now));
        }
        let via = slot as u16;
        let e = self.routes.dests.get_mut(&dest).expect("inserted above");
        let unfeasible = metric != INF && !feasible(e.fd, seqno, metric);
        let route = Route { via, seqno, metric, expiry };
        match e.position(via) {
            Some(i) if metric == INF => e.remove(i),
            Some(i) if (e.routes[i].seqno, e.routes[i].metric) == (seqno, metric) => {
                // A periodic refresh of what we already hold: nothing can change but the
                // expiry. Most updates are these, so they must stay cheap.
                e.routes[i].expiry = expiry;
                return;
            }
            Some(i) => e.routes[i] = route,
            None if metric == INF => {}
            None if usize::from(e.n_routes) < ROUTES_PER_DEST => {
                e.routes[usize::from(e.n_routes)] = route;
                e.n_routes += 1;
            }
            None => {
                // Full: the new offer replaces the worst unselected one, if it is better.
                let selected_via = e.selected.map(|s| s.via);
                let mut worst: Option<(u16, usize)> = None;
                for (i, r) in e.routes.iter().enumerate() {
                    if Some(r.via) == selected_via {
                        continue;
                    }
                    let cost = self.neighbours[usize::from(r.via)].as_ref().map_or(INF, |n| add_metric(r.metric, n.cost));
                    if worst.is_none_or(|(c, _)| cost >= c) {
                        worst = Some((cost, i));
                    }
                }
                let new_cost =
                    self.neighbours[usize::from(via)].as_ref().map_or(INF, |n| add_metric(metric, n.cost));
                match worst {
                    Some((c, w)) if c > new_cost => e.routes[w] = route,
                    _ => self.stats.route_slots_full += 1,
                }
            }
        }
        self.reselect(dest);
        if unfeasible {
            self.stats.updates_unfeasible += 1;
            // An offer we may not take while we have nothing: ask the destination for a
            // newer seqno, which will make it (or a better one) feasible.
            let starving = self.routes.dests.get(&dest).is_some_and(|e| e.selected.is_none());
            if starving && self.holddown_until.is_none() {
                self.start_request(dest);
            }
        }
    }

    /// Chooses the best feasible route to `dest` and reacts to the change: event, triggered
    /// update, starvation handling.
    pub(super) fn reselect(&mut self, dest: NodeId) {
        let Some(e) = self.routes.dests.get(&dest) else { return };
        let mut best: Option<Selected> = None;
        if self.holddown_until.is_none() {
            let usable = |r: &Route| {
                let m = add_metric(r.metric, self.link_cost(r.via));
                (m != INF && feasible(e.fd, r.seqno, r.metric)).then_some(m)
            };
            for r in e.routes() {
                if let Some(m) = usable(r)
                    && best.is_none_or(|b| m < b.metric)
                {
                    best = Some(Selected { via: r.via, seqno: r.seqno, metric: m });
                }
            }
            // Hysteresis: keep the current next hop unless the challenger is clearly better.
            if let (Some(b), Some(cur)) = (best, e.selected)
                && b.via != cur.via
                && let Some(r) = e.position(cur.via).map(|i| e.routes[i])
                && let Some(m) = usable(&r)
                && u32::from(b.metric) + u32::from(self.cfg.route_switch_hysteresis) > u32::from(m)
            {
                best = Some(Selected { via: r.via, seqno: r.seqno, metric: m });
            }
        }
        let (old, advertised) = (e.selected, e.advertised);
        let hop = |s: Option<Selected>| s.and_then(|s| self.neighbours[usize::from(s.via)].as_ref().map(|n| n.id));
        let (new_hop, old_hop) = (hop(best), hop(old));
        let now = self.now;
        let e = self.routes.dests.get_mut(&dest).expect("looked up above");
        e.selected = best;
        if best.is_some() {
            e.last_reachable = now;
            e.request = None;
        }
        let urgency = match (advertised, best) {
            (a, None) if a.is_some_and(|a| a.metric != INF) => Pending::Now,
            (_, None) => Pending::None,
            (None, Some(_)) => Pending::Later,
            (Some(a), Some(b)) if a.metric == INF || a.seqno != b.seqno => Pending::Now,
            (Some(a), Some(b)) if b.metric >= a.metric.saturating_add(TRIGGER_METRIC_DELTA) => Pending::Now,
            (Some(a), Some(b)) if b.metric.saturating_add(TRIGGER_METRIC_DELTA) <= a.metric => Pending::Later,
            (Some(_), Some(_)) => Pending::None,
        };
        self.mark_dirty(dest, urgency);
        if old.map(|s| s.via) != best.map(|s| s.via) {
            let metric = best.map_or(INF, |b| b.metric);
            self.emit(Event::Route { at: now, dest, next_hop: new_hop, previous: old_hop, metric });
        }
        if best.is_none() && old.is_some() {
            self.emit(Event::Incident { at: now, incident: Incident::Starved { dest } });
            self.start_request(dest);
        }
    }

    /// Re-runs selection for the destinations in `scratch` (which it empties).
    fn reselect_scratch(&mut self) {
        let mut list = std::mem::take(&mut self.routes.scratch);
        for &d in &list {
            self.reselect(d);
        }
        list.clear();
        self.routes.scratch = list;
    }

    pub(super) fn reselect_all(&mut self) {
        self.routes.scratch.extend(self.routes.dests.keys().copied());
        self.reselect_scratch();
    }

    /// A link's cost changed: routes through it may win or lose.
    pub(super) fn reselect_via(&mut self, via: u16) {
        let RouteTable { dests, scratch, .. } = &mut self.routes;
        scratch.extend(dests.iter().filter(|(_, e)| e.position(via).is_some()).map(|(d, _)| *d));
        self.reselect_scratch();
    }

    /// A neighbour is gone: every route through it is withdrawn.
    pub(super) fn flush_routes_via(&mut self, via: u16) {
        let RouteTable { dests, scratch, .. } = &mut self.routes;
        for (d, e) in dests.iter_mut() {
            if let Some(i) = e.position(via) {
                e.remove(i);
                scratch.push(*d);
            }
        }
        self.reselect_scratch();
    }

    /// The neighbour offering the best route we may not take: the one to ask for a newer
    /// seqno, since its path leads to the destination.
    fn best_unfeasible(&self, dest: NodeId) -> Option<u16> {
        let e = self.routes.dests.get(&dest)?;
        e.routes()
            .iter()
            .filter(|r| r.metric != INF && !feasible(e.fd, r.seqno, r.metric))
            .map(|r| (add_metric(r.metric, self.link_cost(r.via)), r.via))
            .filter(|&(m, _)| m != INF)
            .min()
            .map(|(_, via)| via)
    }

    /// Starved with an unfeasible offer on hand: ask, through that offer's neighbour, for
    /// a newer seqno. With no offer at all the destination is simply gone, and asking the
    /// whole mesh about it would only start a storm of requests nobody can answer.
    fn start_request(&mut self, dest: NodeId) {
        let (now, timeout, retries) = (self.now, self.cfg.request_timeout, self.cfg.request_retries);
        let Some(via) = self.best_unfeasible(dest) else { return };
        let Some(e) = self.routes.dests.get_mut(&dest) else { return };
        let Some(fd) = e.fd else { return };
        if e.request.is_some() {
            return;
        }
        let seqno = fd.seqno.wrapping_add(1);
        e.request = Some(Request { seqno, resend_at: now + timeout, retries_left: retries });
        if !self.routes.requests.contains(&dest) {
            self.routes.requests.push(dest);
        }
        self.send_seqno_request(dest, seqno, via);
    }

    fn send_seqno_request(&mut self, dest: NodeId, seqno: u16, via: u16) {
        let Some(nb) = self.neighbours[usize::from(via)].as_ref() else { return };
        let (iface, addr) = (nb.iface, nb.addr);
        self.stats.seqno_requests_sent += 1;
        let tlv = Tlv::SeqnoRequest { dest, seqno, hop_count: self.cfg.request_hop_limit, origin: self.id };
        self.outbox.push(iface, Dest::Unicast(addr), tlv, self.ifaces());
    }

    /// Resends unanswered seqno requests; gives up after the configured retries.
    pub(super) fn request_timers(&mut self) {
        enum Step {
            Wait,
            Resend(u16),
            Done,
        }
        let (now, timeout) = (self.now, self.cfg.request_timeout);
        let mut i = 0;
        while i < self.routes.requests.len() {
            let dest = self.routes.requests[i];
            let step = match self.routes.dests.get_mut(&dest) {
                None => Step::Done,
                Some(e) => match e.request {
                    None => Step::Done,
                    Some(_) if e.selected.is_some() => Step::Done,
                    Some(r) if now < r.resend_at => Step::Wait,
                    Some(r) if r.retries_left == 0 => Step::Done,
                    Some(mut r) => {
                        r.retries_left -= 1;
                        r.resend_at = now + timeout;
                        e.request = Some(r);
                        Step::Resend(r.seqno)
                    }
                },
            };
            let step = match step {
                Step::Resend(seqno) => match self.best_unfeasible(dest) {
                    Some(via) => {
                        self.send_seqno_request(dest, seqno, via);
                        Step::Wait
                    }
                    None => Step::Done,
                },
                other => other,
            };
            match step {
                Step::Wait | Step::Resend(_) => i += 1,
                Step::Done => {
                    if let Some(e) = self.routes.dests.get_mut(&dest) {
                        e.request = None;
                    }
                    self.routes.requests.swap_remove(i);
                }
            }
        }
    }

    pub(super) fn on_route_request(&mut self, dest: NodeId) {
        if dest == self.id {
            self.self_dirty = true;
        } else {
            self.mark_dirty(dest, Pending::Now);
        }
    }

    pub(super) fn on_seqno_request(&mut self, from: Option<usize>, dest: NodeId, seqno: u16, hop_count: u8, origin: NodeId) {
        if dest == self.id {
            if seqno_newer(seqno, self.own_seqno) {
                self.own_seqno = seqno;
            }
            self.self_dirty = true;
            return;
        }
        let now = self.now;
        let until = now + self.cfg.request_timeout;
        let Some(e) = self.routes.dests.get_mut(&dest) else { return };
        if let Some(s) = e.selected
            && !seqno_newer(seqno, s.seqno)
        {
            // We can answer: our route is at least as new as asked.
            self.mark_dirty(dest, Pending::Now);
            return;
        }
        if hop_count <= 1 || origin == self.id {
            return;
        }
        if let Some((s, o, t)) = e.forwarded
            && s == seqno
            && o == origin
            && now < t
        {
            return;
        }
        // Toward the destination: our next hop, else whoever offered the newest route.
        let target = e.selected.map(|s| s.via).or_else(|| {
            e.routes()
                .iter()
                .filter(|r| r.metric != INF)
                .max_by(|a, b| {
                    if seqno_newer(a.seqno, b.seqno) {
                        std::cmp::Ordering::Greater
                    } else if a.seqno == b.seqno {
                        b.metric.cmp(&a.metric)
                    } else {
                        std::cmp::Ordering::Less
                    }
                })
                .map(|r| r.via)
        });
        let Some(t) = target else { return };
        if from == Some(usize::from(t)) {
            return;
        }
        e.forwarded = Some((seqno, origin, until));
        let Some(nb) = self.neighbours[usize::from(t)].as_ref() else { return };
        let (iface, addr) = (nb.iface, nb.addr);
        self.stats.seqno_requests_forwarded += 1;
        let tlv = Tlv::SeqnoRequest { dest, seqno, hop_count: hop_count - 1, origin };
        self.outbox.push(iface, Dest::Unicast(addr), tlv, self.ifaces());
    }

    /// Advertises one destination (all interfaces, or just `only`), updating the FD.
    fn advertise(&mut self, dest: NodeId, only: Option<IfIndex>) {
        let interval_ms = self.cfg.update_interval.as_millis() as u16;
        let Some(e) = self.routes.dests.get_mut(&dest) else { return };
        e.pending = Pending::None;
        let (seqno, metric) = match e.selected {
            Some(s) => (s.seqno, s.metric),
            None => (e.advertised.map_or(0, |a| a.seqno), INF),
        };
        if metric != INF && feasible(e.fd, seqno, metric) {
            e.fd = Some(Distance { seqno, metric });
        }
        debug_assert!(metric == INF || e.fd.is_some(), "advertised a route without a feasibility distance");
        e.advertised = Some(Distance { seqno, metric });
        self.push_update(Tlv::Update { dest, seqno, metric, interval_ms }, only);
    }

    fn push_update(&mut self, tlv: Tlv, only: Option<IfIndex>) {
        let ifaces = self.ifaces();
        match only {
            Some(i) => self.outbox.push(i, Dest::Multicast, tlv, ifaces),
            None => self.outbox.push_all(tlv, ifaces),
        }
    }

    fn advertise_self(&mut self, only: Option<IfIndex>) {
        let interval_ms = self.cfg.update_interval.as_millis() as u16;
        let tlv = Tlv::Update { dest: self.id, seqno: self.own_seqno, metric: 0, interval_ms };
        self.push_update(tlv, only);
    }

    /// Sends triggered updates for everything marked dirty during this input.
    pub(super) fn flush_triggered(&mut self) {
        if self.self_dirty {
            self.self_dirty = false;
            self.advertise_self(None);
        }
        if self.routes.urgent_at.is_none_or(|t| self.now < t) {
            return self.flush_batched();
        }
        self.routes.urgent_at = None;
        let mut dirty = std::mem::take(&mut self.routes.dirty);
        for &d in &dirty {
            self.advertise(d, None);
            // A retraction is said twice: lost, it would leave neighbours routing into us
            // until the next full dump. (A worse metric, lost, only leaves them optimistic.)
            if self.routes.dests.get(&d).is_some_and(|e| e.selected.is_none()) {
                self.mark_dirty(d, Pending::Later);
            }
        }
        dirty.clear();
        self.routes.dirty = dirty;
        self.flush_batched();
    }

    fn flush_batched(&mut self) {
        if self.routes.flush_at.is_some_and(|t| self.now >= t) {
            self.routes.flush_at = None;
            let mut later = std::mem::take(&mut self.routes.later);
            for &d in &later {
                if self.routes.dests.get(&d).is_some_and(|e| e.pending == Pending::Later) {
                    self.advertise(d, None);
                }
            }
            later.clear();
            self.routes.later = later;
        }
    }

    /// A full dump: our own route, every selected route, and recent retractions.
    pub(super) fn dump_routes(&mut self, only: Option<IfIndex>) {
        self.advertise_self(only);
        let retract_after = self.now.saturating_sub(self.cfg.route_expiry());
        for i in 0..self.routes.dests.len() {
            let (&dest, e) = self.routes.dests.get_index(i).expect("index in range");
            let recently_lost = e.selected.is_none() && e.advertised.is_some() && e.last_reachable >= retract_after;
            if e.selected.is_some() || recently_lost {
                self.advertise(dest, only);
            }
        }
    }

    /// The periodic update: expire stale routes, forget long-gone destinations, dump.
    pub(super) fn periodic_update(&mut self) {
        let now = self.now;
        let RouteTable { dests, scratch, .. } = &mut self.routes;
        for (d, e) in dests.iter_mut() {
            let before = e.n_routes;
            let mut i = 0;
            while i < usize::from(e.n_routes) {
                if e.routes[i].expiry <= now { e.remove(i) } else { i += 1 }
            }
            if e.n_routes != before {
                scratch.push(*d);
            }
        }
        self.reselect_scratch();
        let gc_before = now.saturating_sub(self.cfg.source_gc());
        self.routes.dests.retain(|_, e| {
            e.selected.is_some() || e.n_routes > 0 || e.request.is_some() || e.last_reachable >= gc_before
        });
        self.dump_routes(None);
    }
}
