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

use super::destmap::DestMap;
use super::neighbour::Neighbour;
use super::{Event, Incident, Lookahead, Node};
use crate::area::{self, AreaPlan};
use crate::ids::{Dest, IfIndex, NodeId};
use crate::time::Instant;
use crate::wire::{self, METRIC_INFINITY as INF, Tlv, seqno_newer};
use indexmap::IndexMap;
use rustc_hash::FxBuildHasher;
use std::time::Duration;

/// Routes kept per destination: the best few neighbours' offers. A fixed array keeps a
/// destination's state in one cache-friendly block.
pub(crate) const ROUTES_PER_DEST: usize = 4;
/// Updates of a control frame whose route entries are fetched ahead: a cold start's frames
/// carry a few; a dump's hundreds would flood the processor's queue of misses.
const UPDATE_HINTS_MAX: usize = 8;
/// A change of our metric smaller than half a hop waits for the periodic dump.
const TRIGGER_METRIC_DELTA: u16 = super::LINK_COST_UNIT / 2;
/// An unfeasible offer shorter than our route by this much is worth a seqno request.
const UNFEASIBLE_REQUEST_GAIN: u16 = 2 * super::LINK_COST_UNIT;

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

/// A seqno request forwarded: the newest seqno, until when it suppresses the same or older
/// ones, and which neighbour it went to (`None`: all of them).
#[derive(Copy, Clone, Debug)]
struct Forwarded {
    seqno: u16,
    until: Instant,
    toward: Option<u16>,
}

#[derive(Copy, Clone, Debug)]
struct Request {
    /// The seqno asked for: one more than our feasibility distance's.
    seqno: u16,
    resend_at: Instant,
    /// Resends so far; each waits twice as long as the one before, so the last ones go
    /// out after failure detection has settled and dead neighbours are flushed.
    attempts: u8,
    /// The neighbour last asked (`None`: all of them, with a route request).
    asked: Option<u16>,
}

/// Whether a destination's change still has to be advertised, and how soon. Ordered: a
/// more urgent reason replaces a less urgent one.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pending {
    None,
    /// Good news (a shorter route): batched for `triggered_update_delay`, so a burst of
    /// improvements (a cold start) goes out as one update per destination.
    Later,
    /// A worse metric on the same seqno (the mesh hunting for a path after a failure):
    /// batched for `urgent_update_delay`, so the burst of worsening offers a failure sets
    /// off travels as a few frames per hop rather than one per offer. Also a destination
    /// never advertised before: nobody downstream can reach it yet, and at 20 ms a hop a
    /// node starting at the edge of a 12-hop mesh was reachable from the far side only
    /// about 240 ms later.
    Soon,
    /// News others are waiting for: a node's newer seqno, or an area's that a request
    /// asked for. At the end of this input: recovery time is the sum of these hops.
    Now,
}

/// Destinations waiting at one urgency, and when they go out.
#[derive(Default)]
struct Batch {
    dests: Vec<NodeId>,
    due: Option<Instant>,
}

/// Fields in declaration order (`repr(C)`): what an update that refreshes a route reads
/// and writes (the feasibility distance, the routes) in the first 72 bytes, which span at
/// most two cache lines wherever the entry falls. With the compiler's order they were
/// spread over all 104 bytes of the table slot, two or three lines, and a route dump
/// refreshes hundreds of entries, each cold at 10,000 nodes.
#[derive(Clone, Debug)]
#[repr(C)]
struct DestEntry {
    fd: Option<Distance>,
    n_routes: u8,
    pending: Pending,
    routes: [Route; ROUTES_PER_DEST],
    selected: Option<Selected>,
    advertised: Option<Distance>,
    last_reachable: Instant,
}
const _: () = assert!(std::mem::offset_of!(DestEntry, selected) <= 72, "a refresh's fields outgrew 72 bytes");

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

/// Fields in declaration order (`repr(C)`): what forwarding and updates read first, the
/// request maps, read only while requests are out, last (see `Node`'s layout).
#[repr(C)]
pub(crate) struct RouteTable {
    dests: DestMap<DestEntry>,
    /// The forwarding table: by dense slot of `dests`, the selected route's next-hop slot,
    /// `NO_VIA` for none (or no entry). A compact copy of what `selected` says, written with
    /// it: forwarding a packet, and each step of the simulator's loop checker, reads two
    /// bytes here instead of an index slot and then an entry, a cache miss each at scale.
    fib: Vec<u16>,
    /// Triggered updates waiting, by urgency: [Later, Soon, Now].
    batches: [Batch; 3],
    /// The earliest `resend_at` among `requests`, kept so that computing the next wake-up,
    /// which drivers do after every input, does not walk every request.
    next_request_at: Option<Instant>,
    /// Seqno and route requests outstanding, by destination. Few at a time, so they live
    /// here rather than in every `DestEntry`, which stays small (the table holds hundreds).
    /// Removal is `swap_remove`: resends go out in a fixed order.
    requests: IndexMap<NodeId, Request, FxBuildHasher>,
    /// The newest seqno request forwarded per destination, for duplicate suppression. Not
    /// keyed by who asked: when a hub dies, hundreds of nodes ask for the same seqno at
    /// once, and one request toward the destination answers them all. Entries past `until`
    /// are dropped by the periodic update.
    forwarded: IndexMap<NodeId, Forwarded, FxBuildHasher>,
    scratch: Vec<NodeId>,
}

/// No next hop, in the forwarding table.
const NO_VIA: u16 = u16::MAX;

impl RouteTable {
    /// An empty table for a node routing flat (`plan` is `None`) or as a member of an area.
    pub fn new(plan: Option<(&AreaPlan, u32)>) -> Self {
        RouteTable {
            dests: DestMap::new(plan),
            batches: Default::default(),
            requests: IndexMap::default(),
            forwarded: IndexMap::default(),
            next_request_at: None,
            scratch: Vec::new(),
            fib: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.dests.len()
    }

    /// Heap bytes this table holds (capacity, not length: what the allocator gave it).
    pub fn heap_bytes(&self) -> usize {
        // An IndexMap keeps its entries (hash, key, value) in a Vec and their indices in a
        // hash table of `usize`s, plus a control byte each.
        let index = size_of::<usize>() + 1;
        self.dests.heap_bytes()
            + self.batches.iter().map(|b| b.dests.capacity()).sum::<usize>() * size_of::<NodeId>()
            + self.scratch.capacity() * size_of::<NodeId>()
            + self.fib.capacity() * size_of::<u16>()
            + self.requests.capacity() * (size_of::<(u64, NodeId, Request)>() + index)
            + self.forwarded.capacity() * (size_of::<(u64, NodeId, Forwarded)>() + index)
    }


    /// (next-hop slot, metric, seqno) of the selected route.
    pub fn selected(&self, dest: NodeId) -> Option<(u16, u16, u16)> {
        self.dests.get(dest)?.selected.map(|s| (s.via, s.metric, s.seqno))
    }

    /// The next-hop slot of `dest`'s selected route, from the forwarding table: `None` when
    /// `dest` has no dense slot (ask the entry), else whether it has one.
    fn fib_via(&self, dest: NodeId) -> Option<Option<u16>> {
        let slot = self.dests.slot(dest)?;
        Some(self.fib.get(slot).copied().filter(|&via| via != NO_VIA))
    }

    /// Records `selected`'s next hop in the forwarding table.
    fn write_fib(&mut self, dest: NodeId, selected: Option<Selected>) {
        let Some(slot) = self.dests.slot(dest) else { return };
        if slot >= self.fib.len() {
            self.fib.resize(slot + 1, NO_VIA);
        }
        self.fib[slot] = selected.map_or(NO_VIA, |s| s.via);
    }

    /// The metric the neighbour in slot `via` offers for `dest`, if it offers a route.
    pub fn offered(&self, dest: NodeId, via: u16) -> Option<u16> {
        let e = self.dests.get(dest)?;
        e.position(via).map(|i| e.routes[i].metric)
    }

    /// Whether a request for `dest` that this node sent or forwarded waits for a route of
    /// `seqno` or newer. A forwarded one is then answered, and forgotten: a later seqno is
    /// news for whoever asks for it next.
    fn answer_request(&mut self, dest: NodeId, seqno: u16) -> bool {
        let waits = |asked: u16| !seqno_newer(asked, seqno);
        let forwarded = self.forwarded.get(&dest).is_some_and(|f| waits(f.seqno));
        if forwarded {
            self.forwarded.swap_remove(&dest);
        }
        forwarded || self.requests.get(&dest).is_some_and(|r| waits(r.seqno))
    }

    /// The earliest of: a seqno request to resend, batched updates to flush.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.batches.iter().filter_map(|b| b.due).chain(self.next_request_at).min()
    }
}

impl Node {
    /// Our area's routing-table id, when routing by areas.
    fn own_area(&self) -> Option<NodeId> {
        self.area.map(area::area_id)
    }

    /// Whether an offer for `dest` at `metric` may create a table entry: flat, any node;
    /// with areas, every other area, every node of our own area, and nodes of other areas
    /// closer than the halo (see `crate::area`).
    fn in_scope(&self, dest: NodeId, metric: u16) -> bool {
        match (self.area, &self.cfg.area_starts) {
            (Some(mine), Some(_)) if area::is_area(dest) => dest != area::area_id(mine),
            (Some(mine), Some(plan)) => plan.area_of(dest) == mine || metric < self.cfg.area_halo_metric(),
            _ => !area::is_area(dest),
        }
    }

    /// The selected route (next-hop slot, metric, seqno) that carries traffic for node
    /// `dst`: that of `dst`'s own entry whenever we hold one, even without a route (then the packet is dropped, never sent toward the area:
    /// a neighbour may still route to `dst` through us, and would get it straight back).
    /// Otherwise, for a node of another area, that area's route.
    pub(super) fn forwarding_route(&self, dst: NodeId) -> Option<(u16, u16, u16)> {
        if area::is_area(dst) {
            return None;
        }
        // One lookup for a destination we hold, two for one reached through its area: this
        // runs for every forwarded packet and, in the simulator, every loop-checker step.
        match self.routes.dests.get(dst) {
            Some(e) => e.selected.map(|s| (s.via, s.metric, s.seqno)),
            None => self.routes.selected(self.area_key(dst)?),
        }
    }

    /// The next-hop slot of [`Node::forwarding_route`], read from the forwarding table
    /// wherever it holds the answer (every id but the halo's).
    pub(super) fn forwarding_via(&self, dst: NodeId) -> Option<u16> {
        if area::is_area(dst) {
            return None;
        }
        // Ids with a dense slot are our own area's members (or any node, routing flat): no
        // area route stands in for them.
        let via = match self.routes.fib_via(dst) {
            Some(via) => via,
            None => match self.routes.dests.get(dst) {
                Some(e) => e.selected.map(|s| s.via),
                None => self.routes.fib_via(self.area_key(dst)?).flatten(),
            },
        };
        debug_assert_eq!(via, self.forwarding_route(dst).map(|r| r.0), "the forwarding table disagrees for {dst:?}");
        via
    }

    /// The area route that forwarding to `dst`, a node outside this node's area, falls back on.
    fn area_key(&self, dst: NodeId) -> Option<NodeId> {
        let (mine, plan) = (self.area?, self.cfg.area_starts.as_ref()?);
        let theirs = plan.area_of(dst);
        (theirs != mine).then(|| area::area_id(theirs))
    }

    /// Reports to `fetch`, as (address, bytes), the memory forwarding to `dst` reads at
    /// `stage`: the neighbour keys and the forwarding table's cell for `dst` or its area,
    /// then the entry of the neighbour the packet leaves through (its address). A hint, as
    /// [`Node::datagram_memory`]; a halo destination's entry is not reported. The loop
    /// checker, which needs no address, asks only for the tables.
    pub fn route_memory(&self, stage: Lookahead, dst: NodeId, fetch: &mut impl FnMut(*const u8, usize)) {
        if area::is_area(dst) {
            return;
        }
        let Some(slot) = self.routes.dests.slot(dst).or_else(|| self.routes.dests.slot(self.area_key(dst)?)) else { return };
        match stage {
            Lookahead::Tables => {
                fetch(self.keys.as_ptr().cast(), size_of_val(self.keys.as_slice()));
                if let Some(cell) = self.routes.fib.get(slot) {
                    fetch(std::ptr::from_ref(cell).cast(), size_of::<u16>());
                }
            }
            Lookahead::Entries => {
                if let Some(nb) = self.routes.fib.get(slot).and_then(|&via| self.neighbours.get(usize::from(via))) {
                    fetch(std::ptr::from_ref(nb).cast(), size_of::<Option<Neighbour>>());
                }
            }
        }
    }

    /// Reports, as `route_memory` does for a data frame, the route entries the first
    /// updates of a control frame read: at a cold start and in route dumps, each update's
    /// first read of its entry is a miss. Only entries found by arithmetic (our area's
    /// members, areas) are reported.
    pub(super) fn update_memory(&self, stage: Lookahead, datagram: &[u8], fetch: &mut impl FnMut(*const u8, usize)) {
        let body = datagram.get(wire::HEADER_LEN..datagram.len().saturating_sub(wire::TRAILER_LEN)).unwrap_or_default();
        for dest in wire::peek_update_dests(body).take(UPDATE_HINTS_MAX) {
            match stage {
                Lookahead::Tables => {
                    if let Some(cell) = self.routes.dests.index_cell(dest) {
                        fetch(std::ptr::from_ref(cell).cast(), size_of::<u32>());
                    }
                }
                Lookahead::Entries => {
                    if self.routes.dests.slot(dest).is_some()
                        && let Some(entry) = self.routes.dests.get(dest)
                    {
                        fetch(std::ptr::from_ref(entry).cast(), size_of::<DestEntry>());
                    }
                }
            }
        }
    }

    fn suspected(&self, via: u16) -> bool {
        self.neighbours[usize::from(via)].as_ref().is_some_and(|n| n.public_state() == Some(super::NeighbourState::Suspected))
    }

    fn link_cost(&self, via: u16) -> u16 {
        self.neighbours[usize::from(via)].as_ref().map_or(INF, |n| n.cost)
    }

    /// Schedules a triggered update for `dest` at `urgency` (or keeps a more urgent one).
    fn mark_dirty(&mut self, dest: NodeId, urgency: Pending) {
        let Some(e) = self.routes.dests.get_mut(dest) else { return };
        if urgency <= e.pending {
            return;
        }
        // If it was waiting in a less urgent batch it stays listed there too; that flush
        // skips it, since its pending level no longer matches.
        e.pending = urgency;
        let delay = match urgency {
            Pending::None => return,
            Pending::Later => self.cfg.triggered_update_delay,
            Pending::Soon => self.cfg.urgent_update_delay,
            Pending::Now => std::time::Duration::ZERO,
        };
        let batch = &mut self.routes.batches[urgency as usize - 1];
        batch.dests.push(dest);
        batch.due.get_or_insert(self.now + delay);
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
        if Some(dest) == self.own_area() {
            // Another member's origination of our area: adopt its seqno if newer, so that
            // all members speak with one voice. Exactly, not one more: members that each
            // jumped past the other would count up forever.
            if seqno_newer(seqno, self.area_seqno) {
                self.area_seqno = seqno;
            }
            return;
        }
        if self.nb(slot).public_state().is_none_or(|s| s == super::NeighbourState::Down) {
            return;
        }
        let now = self.now;
        let interval = Duration::from_millis(u64::from(interval_ms));
        let expiry = now + self.cfg.route_expiry().max(interval * 7 / 2);
        let i = match self.routes.dests.index_of(dest) {
            Some(i) => i,
            None if metric == INF => return,
            None if !self.in_scope(dest, metric) => {
                self.stats.updates_out_of_scope += 1;
                return;
            }
            None if self.routes.dests.len() >= self.cfg.limits.max_destinations as usize => {
                self.stats.destination_table_full += 1;
                return;
            }
            None => self.routes.dests.insert_new(dest, DestEntry::new(now)),
        };
        let via = slot as u16;
        let e = self.routes.dests.get_index_mut(i).expect("an entry's own position");
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
            // newer seqno, which will make it (or a better one) feasible. For an area, also
            // an offer shorter than what we have by two link costs or more: its newer seqnos
            // travel only to whoever asks (see `reselect`), so the shorter way is asked for.
            let offered = add_metric(metric, self.link_cost(via));
            let worth_asking = self.routes.dests.get(dest).is_some_and(|e| match e.selected {
                None => true,
                Some(s) => area::is_area(dest) && u32::from(offered) + u32::from(UNFEASIBLE_REQUEST_GAIN) <= u32::from(s.metric),
            });
            if worth_asking && self.holddown_until.is_none() {
                self.start_request(dest, false, Some(via));
            }
        }
    }

    /// Chooses the best feasible route to `dest` and reacts to the change: event, triggered
    /// update, starvation handling.
    pub(super) fn reselect(&mut self, dest: NodeId) {
        // Found once: a 3,000-node cold start runs this 3.4 M times in its first simulated second.
        let Some(i) = self.routes.dests.index_of(dest) else { return };
        let e = self.routes.dests.get_index(i).expect("an entry's own position").1;
        let mut best: Option<Selected> = None;
        if self.holddown_until.is_none() {
            // A route through a neighbour under suspicion is the last resort: while its
            // failure is being confirmed, traffic already takes any other feasible path.
            let usable = |r: &Route| {
                let m = add_metric(r.metric, self.link_cost(r.via));
                (m != INF && feasible(e.fd, r.seqno, r.metric)).then(|| (self.suspected(r.via), m))
            };
            let mut best_key = None;
            for r in e.routes() {
                if let Some(key) = usable(r)
                    && best_key.is_none_or(|b| key < b)
                {
                    best_key = Some(key);
                    best = Some(Selected { via: r.via, seqno: r.seqno, metric: key.1 });
                }
            }
            // Hysteresis: keep the current next hop unless the challenger is clearly better.
            if let (Some(b), Some((b_suspect, _)), Some(cur)) = (best, best_key, e.selected)
                && b.via != cur.via
                && let Some(r) = e.position(cur.via).map(|i| e.routes[i])
                && let Some((suspect, m)) = usable(&r)
                && suspect == b_suspect
                && u32::from(b.metric) + u32::from(self.cfg.route_switch_hysteresis) > u32::from(m)
            {
                best = Some(Selected { via: r.via, seqno: r.seqno, metric: m });
            }
        }
        let (old, advertised) = (e.selected, e.advertised);
        // A node's newer seqno is relayed by all at once: whoever holds a route to the node
        // (its area and halo, at scale) learns it one link delay a hop, sooner than its own
        // request's answer would come (relaying only answers was measured to slow recovery;
        // docs/PERFORMANCE.md). An area's newer seqno is relayed at once only along the
        // paths of the requests that asked for it, as babeld does for every route: every
        // node holds every area's route, and relayed by all, one crash among 10,000 nodes
        // set off dozens of mesh-wide waves, a triggered update on every link for each.
        // Everyone else takes it with the next periodic update.
        let news = match (advertised, best) {
            (Some(a), Some(b)) if a.seqno != b.seqno => !area::is_area(dest) || self.routes.answer_request(dest, b.seqno),
            _ => false,
        };
        let now = self.now;
        let e = self.routes.dests.get_index_mut(i).expect("looked up above");
        e.selected = best;
        if best.is_some() {
            e.last_reachable = now;
        }
        let via_changed = old.map(|s| s.via) != best.map(|s| s.via);
        if via_changed {
            self.routes.write_fib(dest, best);
        }
        let urgency = match (advertised, best) {
            (a, None) if a.is_some_and(|a| a.metric != INF) => Pending::Soon,
            (_, None) => Pending::None,
            (None, Some(_)) => Pending::Soon,
            (Some(_), Some(_)) if news => Pending::Now,
            (Some(a), Some(_)) if a.metric == INF => Pending::Soon,
            (Some(a), Some(b)) if b.metric >= a.metric.saturating_add(TRIGGER_METRIC_DELTA) => Pending::Soon,
            (Some(a), Some(b)) if b.metric.saturating_add(TRIGGER_METRIC_DELTA) <= a.metric => Pending::Later,
            (Some(_), Some(_)) => Pending::None,
        };
        self.mark_dirty(dest, urgency);
        if via_changed {
            let hop = |s: Option<Selected>| s.and_then(|s| self.keys[usize::from(s.via)].map(|(_, id)| id));
            let (new_hop, old_hop) = (hop(best), hop(old));
            let metric = best.map_or(INF, |b| b.metric);
            self.emit(Event::Route { at: now, dest, next_hop: new_hop, previous: old_hop, metric });
        }
        if best.is_none() && old.is_some() {
            self.emit(Event::Incident { at: now, incident: Incident::Starved { dest } });
            self.start_request(dest, true, None);
        } else if best.is_some_and(|b| self.suspected(b.via)) {
            // Only the suspect leads there. Ask for a newer seqno now, through a neighbour
            // whose offer we may not take yet, so that if the suspicion is confirmed the
            // alternative is already feasible instead of starting to be sought then.
            self.start_request(dest, false, None);
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
        self.routes.scratch.extend(self.routes.dests.keys());
        self.reselect_scratch();
    }

    /// A link's cost changed: routes through it may win or lose.
    pub(super) fn reselect_via(&mut self, via: u16) {
        let RouteTable { dests, scratch, .. } = &mut self.routes;
        scratch.extend(dests.iter().filter(|(_, e)| e.position(via).is_some()).map(|(d, _)| d));
        self.reselect_scratch();
    }

    /// A neighbour is gone: every route through it is withdrawn.
    pub(super) fn flush_routes_via(&mut self, via: u16) {
        let RouteTable { dests, scratch, .. } = &mut self.routes;
        for (d, e) in dests.iter_mut() {
            if let Some(i) = e.position(via) {
                e.remove(i);
                scratch.push(d);
            }
        }
        self.reselect_scratch();
    }

    /// The neighbour offering the best route we may not take: the one to ask for a newer
    /// seqno, since its path leads to the destination. A suspect is never asked.
    fn best_unfeasible(&self, dest: NodeId) -> Option<u16> {
        let e = self.routes.dests.get(dest)?;
        e.routes()
            .iter()
            .filter(|r| r.metric != INF && !feasible(e.fd, r.seqno, r.metric) && !self.suspected(r.via))
            .map(|r| (add_metric(r.metric, self.link_cost(r.via)), r.via))
            .filter(|&(m, _)| m != INF)
            .min()
            .map(|(_, via)| via)
    }

    /// Asks for a way to `dest`. With an unfeasible offer on hand: a seqno request through
    /// that offer's neighbour, since only the destination can issue a newer seqno and make
    /// the offer feasible. With no offer at all (and `ask_neighbours`): a route request to
    /// the neighbours, one hop and not forwarded, for a route we did not keep; if the
    /// destination is simply gone nobody answers, where a mesh-wide request would start a
    /// storm nobody can answer. Unanswered, either is repeated with a doubling delay.
    /// `changed` is a neighbour whose offer just changed: asked again even if it was the
    /// one asked last, since a neighbour that just found a new path may now carry the
    /// request where its old path could not.
    fn start_request(&mut self, dest: NodeId, ask_neighbours: bool, changed: Option<u16>) {
        let (now, timeout) = (self.now, self.cfg.request_timeout);
        let via = self.best_unfeasible(dest);
        if via.is_none() && !ask_neighbours {
            return;
        }
        let Some(e) = self.routes.dests.get(dest) else { return };
        if let Some(&r) = self.routes.requests.get(&dest) {
            // Already asking. A new best offer (a neighbour that just found a route) is
            // asked at once rather than at the next resend: it knows a live path.
            if via.is_some() && (via != r.asked || via == changed) {
                self.ask(dest, r.seqno, via);
            }
            return;
        }
        let seqno = e.fd.map_or(0, |fd| fd.seqno.wrapping_add(1));
        self.routes.requests.insert(dest, Request { seqno, resend_at: now + timeout, attempts: 0, asked: via });
        let next = &mut self.routes.next_request_at;
        *next = Some(next.map_or(now + timeout, |t| t.min(now + timeout)));
        self.ask(dest, seqno, via);
        if ask_neighbours && via.is_some() {
            // The offer on hand may be as stale as the route just lost (its neighbour may be
            // starving too, or behind the same failure). A neighbour that still has a live
            // route answers this at once, and is then asked in turn (see above).
            self.outbox.push_all(Tlv::RouteRequest { dest }, self.ifaces());
        }
    }

    fn ask(&mut self, dest: NodeId, seqno: u16, via: Option<u16>) {
        if let Some(r) = self.routes.requests.get_mut(&dest) {
            r.asked = via;
        }
        match via {
            Some(via) => self.send_seqno_request(dest, seqno, via),
            None => self.outbox.push_all(Tlv::RouteRequest { dest }, self.ifaces()),
        }
    }

    /// Whether `dest` has a selected route through a neighbour above suspicion.
    fn satisfied(&self, dest: NodeId) -> bool {
        self.routes.dests.get(dest).and_then(|e| e.selected).is_some_and(|s| !self.suspected(s.via))
    }

    fn send_seqno_request(&mut self, dest: NodeId, seqno: u16, via: u16) {
        let Some(nb) = self.neighbours[usize::from(via)].as_ref() else { return };
        let (iface, addr) = (nb.iface, nb.addr);
        self.stats.seqno_requests_sent += 1;
        let tlv = Tlv::SeqnoRequest { dest, seqno, hop_count: self.cfg.request_hop_limit, origin: self.id };
        self.outbox.push(iface, Dest::Unicast(addr), tlv, self.ifaces());
    }

    /// Resends unanswered requests with a doubling delay; gives up after the configured
    /// number of resends.
    pub(super) fn request_timers(&mut self) {
        let (now, timeout, retries) = (self.now, self.cfg.request_timeout, self.cfg.request_retries);
        let mut i = 0;
        while i < self.routes.requests.len() {
            let (&dest, &r) = self.routes.requests.get_index(i).expect("index in range");
            // A request whose destination entry is gone has nobody to report to.
            let wanted = !self.satisfied(dest) && self.routes.dests.contains_key(dest);
            if wanted && now < r.resend_at {
                i += 1;
            } else if wanted && r.attempts < retries {
                let attempts = r.attempts + 1;
                let resend_at = now + timeout * (1u32 << attempts.min(16));
                self.routes.requests[i] = Request { attempts, resend_at, ..r };
                let via = self.best_unfeasible(dest);
                self.ask(dest, r.seqno, via);
                i += 1;
            } else {
                self.routes.requests.swap_remove_index(i);
            }
        }
        self.routes.next_request_at = self.routes.requests.values().map(|r| r.resend_at).min();
    }

    /// A neighbour asks about `dest`: answer if we can route there (a retraction would tell
    /// a starving neighbour nothing new).
    pub(super) fn on_route_request(&mut self, dest: NodeId) {
        if dest == self.id || Some(dest) == self.own_area() {
            self.self_dirty = true;
        } else if self.routes.dests.get(dest).is_some_and(|e| e.selected.is_some()) {
            self.mark_dirty(dest, Pending::Soon);
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
        if Some(dest) == self.own_area() {
            // The request reached our area: any member may issue the area's next seqno.
            if seqno_newer(seqno, self.area_seqno) {
                self.area_seqno = seqno;
            }
            self.self_dirty = true;
            return;
        }
        let now = self.now;
        // Half the resend interval: a resend by the same asker (one `request_timeout` after
        // its first try, along much the same path) must find the suppression over, or the
        // first resend dies where the first try was forwarded and recovery waits a round.
        let until = now + self.cfg.request_timeout / 2;
        let Some(e) = self.routes.dests.get(dest) else { return };
        if let Some(s) = e.selected
            && !seqno_newer(seqno, s.seqno)
        {
            // We can answer: our route is at least as new as asked.
            self.mark_dirty(dest, Pending::Soon);
            return;
        }
        if hop_count <= 1 || origin == self.id {
            return;
        }
        // Toward the destination along our route; if that leads back to the asker or to the
        // request's origin, along the best other offer we hold, feasible or not (RFC 8966
        // 3.8.1.2): they are likely losing the very route we use, and the other neighbour
        // may know a way round.
        let asker = from.map(|f| f as u16);
        let back = |via: u16| Some(via) == asker || self.neighbours[usize::from(via)].as_ref().is_some_and(|n| n.id == origin);
        // `None`: starving, to every neighbour (below).
        let toward = match e.selected {
            None => None,
            Some(s) if !back(s.via) => Some(s.via),
            Some(_) => {
                let other = e
                    .routes()
                    .iter()
                    .filter(|r| r.metric != INF && !back(r.via) && !self.suspected(r.via))
                    .min_by_key(|r| r.metric);
                match other {
                    Some(r) => Some(r.via),
                    // Only the way back leads there: nothing to forward.
                    None => return,
                }
            }
        };
        // Suppress what an answer to the request just forwarded would answer too: the same
        // seqno or an older one, going the same way. Matching the seqno exactly is not
        // enough: starving nodes ask for different seqnos (each one above its own FD), and
        // two interleaved floods would each pass every node that had last seen the other,
        // without end. A different way is not suppressed: our route has moved since, and
        // the request forwarded before may have gone round into a dead end.
        if let Some(f) = self.routes.forwarded.get(&dest)
            && !seqno_newer(seqno, f.seqno)
            && now < f.until
            && f.toward == toward
        {
            return;
        }
        self.routes.forwarded.insert(dest, Forwarded { seqno, until, toward });
        let tlv = Tlv::SeqnoRequest { dest, seqno, hop_count: hop_count - 1, origin };
        self.stats.seqno_requests_forwarded += 1;
        match toward {
            Some(via) => {
                let Some(nb) = self.neighbours[usize::from(via)].as_ref() else { return };
                let (iface, addr) = (nb.iface, nb.addr);
                self.outbox.push(iface, Dest::Unicast(addr), tlv, self.ifaces());
            }
            // Starving ourselves, we know no live way there; our stored offers are as stale
            // as the asker's. Pass it to every neighbour: each forwards a given (dest, seqno)
            // once, so this reaches whoever still has a route in one sweep of the starving
            // region, not in one retry per dead end.
            None => self.outbox.push_all(tlv, self.ifaces()),
        }
    }

    /// Advertises one destination (all interfaces, or just `only`), updating the FD.
    fn advertise(&mut self, dest: NodeId, only: Option<IfIndex>) {
        let interval_ms = self.cfg.update_interval.as_millis() as u16;
        let Some(e) = self.routes.dests.get_mut(dest) else { return };
        if only.is_none() {
            // Only an advertisement on every interface settles what is pending; a dump to
            // one new neighbour leaves the others still waiting for it.
            e.pending = Pending::None;
        }
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

    fn push_update(&mut self, mut tlv: Tlv, only: Option<IfIndex>) {
        if let Tlv::Update { dest, metric, .. } = &mut tlv {
            *metric = self.forged_metric(*dest, *metric);
        }
        let ifaces = self.ifaces();
        match only {
            Some(i) => self.outbox.push(i, Dest::Multicast, tlv, ifaces),
            None => self.outbox.push_all(tlv, ifaces),
        }
    }

    /// Our own route, and our area's route when routing by areas: both at metric 0.
    fn advertise_self(&mut self, only: Option<IfIndex>) {
        let interval_ms = self.cfg.update_interval.as_millis() as u16;
        let tlv = Tlv::Update { dest: self.id, seqno: self.own_seqno, metric: 0, interval_ms };
        self.push_update(tlv, only);
        if let Some(dest) = self.own_area() {
            self.push_update(Tlv::Update { dest, seqno: self.area_seqno, metric: 0, interval_ms }, only);
        }
    }

    /// Sends the triggered updates that are due: every batch whose time has come, most
    /// urgent first.
    pub(super) fn flush_triggered(&mut self) {
        if self.self_dirty {
            self.self_dirty = false;
            self.advertise_self(None);
        }
        for level in [Pending::Now, Pending::Soon, Pending::Later] {
            let i = level as usize - 1;
            if self.routes.batches[i].due.is_none_or(|t| self.now < t) {
                continue;
            }
            self.routes.batches[i].due = None;
            let mut dests = std::mem::take(&mut self.routes.batches[i].dests);
            for &d in &dests {
                if self.routes.dests.get(d).is_none_or(|e| e.pending != level) {
                    continue;
                }
                self.advertise(d, None);
                // A retraction is said twice: lost, it would leave neighbours routing into
                // us until the next full dump. (A worse metric, lost, only leaves them
                // optimistic, which the feasibility condition makes harmless.)
                if level == Pending::Soon && self.routes.dests.get(d).is_some_and(|e| e.selected.is_none()) {
                    self.mark_dirty(d, Pending::Later);
                }
            }
            dests.clear();
            self.routes.batches[i].dests = dests;
        }
    }

    /// A full dump: our own route, every selected route, and recent retractions.
    pub(super) fn dump_routes(&mut self, only: Option<IfIndex>) {
        self.advertise_self(only);
        let retract_after = self.now.saturating_sub(self.cfg.route_expiry());
        for i in 0..self.routes.dests.len() {
            let (dest, e) = self.routes.dests.get_index(i).expect("index in range");
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
                scratch.push(d);
            }
        }
        self.reselect_scratch();
        let gc_before = now.saturating_sub(self.cfg.source_gc());
        let RouteTable { dests, requests, forwarded, .. } = &mut self.routes;
        dests.retain(|d, e| {
            e.selected.is_some() || e.n_routes > 0 || requests.contains_key(&d) || e.last_reachable >= gc_before
        });
        forwarded.retain(|&d, f| now < f.until && dests.contains_key(d));
        self.dump_routes(None);
    }
}
